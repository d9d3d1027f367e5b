#!/usr/bin/env bash
# Regenerate docs/images/xoscar-top.txt and docs/images/xoscar-top.png from
# a real run: examples/busy, watched by xoscar-top in a tmux pane, captured
# with its colours (capture-pane -e), then drawn as an image (the capture
# becomes an SVG of monospace text, and rsvg-convert, or ImageMagick's
# convert, makes the PNG). No build or test runs this.
#
#   tools/screenshot-top.sh [BUILD_DIR]     (default: build/rel)
#
# Needs tmux, python3, and rsvg-convert (librsvg2-bin) or ImageMagick;
# the DejaVu Sans Mono font is used when fontconfig has it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/rel}
busy=$build/examples/busy
top=$build/tools/xoscar-top
out=$root/docs/images
cols=132
rows=16
settle=${SETTLE_SECONDS:-8}

for f in "$busy" "$top"; do
    [ -x "$f" ] || { echo "screenshot-top: no $f: build $build first" >&2; exit 1; }
done
command -v tmux >/dev/null || { echo "screenshot-top: needs tmux" >&2; exit 1; }
if command -v rsvg-convert >/dev/null; then
    render() { rsvg-convert -o "$2" "$1"; }
elif command -v convert >/dev/null && convert -version 2>/dev/null | grep -q ImageMagick; then
    render() { convert -density 96 "$1" "$2"; }
else
    echo "screenshot-top: needs rsvg-convert (apt-get install librsvg2-bin) or ImageMagick" >&2
    exit 1
fi

work=$(mktemp -d)
sock="xoscar-top-shot-$$"
echo 'set -g default-terminal screen' >"$work/tmux.conf"
tmux_() { tmux -L "$sock" -f "$work/tmux.conf" "$@"; }
cleanup() {
    tmux_ kill-server 2>/dev/null || true
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$busy" 120 >"$work/busy.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    grep -q '^busy: pid' "$work/busy.out" && break
    sleep 0.1
done
tmux_ new-session -d -x "$cols" -y "$rows" "$top $pid"
# Long enough for rates, a backlog, a few alerts and handler samples.
sleep "$settle"
mkdir -p "$out"
tmux_ capture-pane -p -e >"$out/xoscar-top.txt"
tmux_ send-keys q
kill -TERM "$pid"
wait "$pid" || true
pid=

# The capture as SVG: one <text> per run of cells that share a style.
python3 - "$out/xoscar-top.txt" "$work/shot.svg" "$cols" "$rows" <<'PY'
import html, re, sys
src, dst, cols, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
size, pad = 15, 14
cw, lh = size * 0.602, size * 1.3
bg_default, fg_default = "#1d1f21", "#d8dee9"
palette = ["#1d1f21", "#e06c75", "#98c379", "#e5c07b",
           "#61afef", "#c678dd", "#56b6c2", "#d8dee9"]
bright = ["#5c6370", "#ff7b86", "#b5e890", "#ffd68a",
          "#82c4ff", "#e099ff", "#7fd4de", "#ffffff"]

def colour(n):
    if n < 8: return palette[n]
    if n < 16: return bright[n - 8]
    if n >= 232: g = 8 + (n - 232) * 10; return "#%02x%02x%02x" % (g, g, g)
    n -= 16; v = [0, 95, 135, 175, 215, 255]
    return "#%02x%02x%02x" % (v[n // 36], v[n // 6 % 6], v[n % 6])

def sgr(state, params):
    ps = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(ps):
        p = ps[i]
        if p == 0: state.update(fg=None, bg=None, bold=False, dim=False, rev=False)
        elif p == 1: state["bold"] = True
        elif p == 2: state["dim"] = True
        elif p == 7: state["rev"] = True
        elif p == 22: state.update(bold=False, dim=False)
        elif p == 27: state["rev"] = False
        elif 30 <= p <= 37: state["fg"] = colour(p - 30)
        elif 90 <= p <= 97: state["fg"] = colour(p - 90 + 8)
        elif p == 39: state["fg"] = None
        elif 40 <= p <= 47: state["bg"] = colour(p - 40)
        elif 100 <= p <= 107: state["bg"] = colour(p - 100 + 8)
        elif p == 49: state["bg"] = None
        elif p in (38, 48) and i + 2 < len(ps) and ps[i + 1] == 5:
            state["fg" if p == 38 else "bg"] = colour(ps[i + 2]); i += 2
        i += 1

out = []
width, height = pad * 2 + cols * cw, pad * 2 + rows * lh
out.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d">' % (width, height))
out.append('<rect width="100%%" height="100%%" rx="8" fill="%s"/>' % bg_default)
state = dict(fg=None, bg=None, bold=False, dim=False, rev=False)
token = re.compile(r"\x1b\[([0-9;]*)m|([^\x1b]+)|\x1b[^m]*m?")
with open(src, encoding="utf-8", errors="replace") as f:
    lines = f.read().split("\n")[:rows]
for y, line in enumerate(lines):
    col = 0
    for m in token.finditer(line):
        if m.group(1) is not None or m.group(2) is None:
            if m.group(1) is not None: sgr(state, m.group(1))
            continue
        text = m.group(2)
        fg = state["fg"] or fg_default
        bg = state["bg"]
        if state["rev"]: fg, bg = (bg or bg_default), (state["fg"] or fg_default)
        x, top = pad + col * cw, pad + y * lh
        if bg: out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                          % (x, top, len(text) * cw, lh, bg))
        if text.strip():
            style = ' font-weight="bold"' if state["bold"] else ""
            if state["dim"]: style += ' fill-opacity="0.65"'
            out.append('<text x="%.1f" y="%.1f" fill="%s"%s xml:space="preserve">%s</text>'
                       % (x, top + size, fg, style, html.escape(text)))
        col += len(text)
out.append("</svg>")
svg = "\n".join(out).replace("<svg ", '<svg font-family="DejaVu Sans Mono, monospace" font-size="%d" ' % size, 1)
open(dst, "w").write(svg + "\n")
PY
render "$work/shot.svg" "$out/xoscar-top.png"
echo "screenshot-top: $out/xoscar-top.txt and $out/xoscar-top.png"
