/*
 * savina.cpp -- the Savina benchmarks of shared/BENCH.md written for the C++
 * Actor Framework (CAF 0.17), for comparison with xoscar-bench in the same
 * run (bench/compare-peers.sh).
 *
 *   caf-savina [CAF options] NAME [ARGS...]
 *
 * NAME and ARGS are xoscar-bench's: pingpong round_trips=1e6, threadring
 * hops=1e7 ring=1000, fanin per_sender=5e6 senders=2, forkjoin
 * per_worker=2e5 workers=60, spawn actors=1e6 window=1000, spawn_burst
 * actors=5e4 window=0, counting messages=1e7. Each run checks what it
 * computed (the checks of the C benchmarks in bench/), exits 1 when it is
 * wrong, 3 when the measured part hangs for 300 s, 2 on bad arguments, and
 * prints one line in xoscar-bench's format with peer=caf.
 *
 * The program is written as a CAF user writes one, and runs as such a user
 * runs it: an actor_system built from actor_system_config, which parses the
 * command line and caf-application.ini like CAF_MAIN does (so
 * --scheduler.max-threads=N and the other scheduler options work), and
 * otherwise CAF's defaults: the work-stealing scheduler with its default
 * number of workers (`workers` in extra says how many ran). Actors are
 * untyped event-based actors with behaviours and atoms; state lives in
 * stateful_actor; messages are sent with send, and the counting reply is a
 * request/then.
 *
 * The measured part is xoscar's: the main thread (a scoped_actor) reads the
 * clock, sends the kick-off, and blocks in receive until the completion
 * message arrives, then reads the clock again. Spawning and wiring the
 * actors happen before (except in the spawn benchmarks, where spawning is
 * what is measured); stopping them after. Failures found by an actor come
 * to the main thread as a (fail, why) message.
 */
#include <caf/all.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace caf;

namespace {

using kick_atom = atom_constant<atom("kick")>;
using ball_atom = atom_constant<atom("ball")>;
using next_atom = atom_constant<atom("next")>;
using wired_atom = atom_constant<atom("wired")>;
using token_atom = atom_constant<atom("token")>;
using item_atom = atom_constant<atom("item")>;
using work_atom = atom_constant<atom("work")>;
using hello_atom = atom_constant<atom("hello")>;
using inc_atom = atom_constant<atom("inc")>;
using get_atom = atom_constant<atom("get")>;
using done_atom = atom_constant<atom("done")>;
using fail_atom = atom_constant<atom("fail")>;

constexpr auto hang_timeout = std::chrono::seconds(300);

// ---- the result line, the process's memory, the clock ---------------------

struct bench_result {
  std::string name;
  uint64_t ops = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, std::string>> extra;

  template <class T>
  void add(const std::string& key, T value) {
    std::ostringstream os;
    os << value;
    extra.emplace_back(key, os.str());
  }

  void add_fixed(const std::string& key, double value, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, value);
    extra.emplace_back(key, buf);
  }

  void print() const {
    std::printf("RESULT name=%s peer=caf ops=%llu seconds=%.6f rate=%.0f "
                "extra=",
                name.c_str(), static_cast<unsigned long long>(ops), seconds,
                seconds > 0 ? static_cast<double>(ops) / seconds : 0.0);
    for (size_t i = 0; i < extra.size(); ++i)
      std::printf("%s%s=%s", i ? "," : "", extra[i].first.c_str(),
                  extra[i].second.c_str());
    std::printf("\n");
    std::fflush(stdout);
  }
};

// A field of /proc/self/status in KiB (VmRSS, VmHWM), 0 if unreadable.
uint64_t status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t len = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, len, field) == 0 && line.size() > len
        && line[len] == ':')
      return std::strtoull(line.c_str() + len + 1, nullptr, 10);
  return 0;
}

using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// ---- the main thread's side ---------------------------------------------

// The main thread as an actor: it kicks runs off and waits for their end.
class driver {
public:
  driver(actor_system& sys, const char* name) : self_(sys), name_(name) {
  }

  actor handle() {
    return actor_cast<actor>(self_);
  }

  scoped_actor& self() {
    return self_;
  }

  // Waits for one message that one of `fs` handles, or for a failure
  // report; a measured part that sends nothing for 300 s has hung.
  template <class... Fs>
  bool await(Fs... fs) {
    bool ok = true;
    self_->receive(
      fs...,
      [&](fail_atom, const std::string& why) {
        std::fprintf(stderr, "%s: %s\n", name_, why.c_str());
        ok = false;
      },
      after(hang_timeout) >> [&] {
        std::fprintf(stderr, "%s: no completion after %lld s: hung\n", name_,
                     static_cast<long long>(hang_timeout.count()));
        std::fflush(nullptr);
        // The actor system would wait for the hung actors: leave at once.
        std::_Exit(3);
      });
    return ok;
  }

  // Stops the actors a run spawned (not measured).
  void stop(const std::vector<actor>& actors) {
    for (auto& a : actors)
      self_->send_exit(a, exit_reason::user_shutdown);
  }

  bool error(const char* why) {
    std::fprintf(stderr, "%s: %s\n", name_, why);
    return false;
  }

private:
  scoped_actor self_;
  const char* name_;
};

// An actor found its result wrong: tell the main thread, once, and stop.
template <class Self>
void fail(Self* self, const actor& main, const char* why) {
  self->send(main, fail_atom::value, std::string(why));
  self->quit(exit_reason::user_shutdown);
}

// ---- pingpong -------------------------------------------------------------
// ping sends n to pong, pong echoes it, ping checks the echo and sends n + 1.

behavior pong_actor(event_based_actor*) {
  return {
    [](ball_atom, uint64_t n) { return std::make_tuple(ball_atom::value, n); },
  };
}

struct ping_state {
  uint64_t sent = 0;   // the value of the ball in flight
  uint64_t echoed = 0; // round trips completed and checked
};

behavior ping_actor(stateful_actor<ping_state>* self, actor pong,
                    uint64_t rounds, actor main) {
  return {
    [=](kick_atom) { self->send(pong, ball_atom::value, self->state.sent); },
    [=](ball_atom, uint64_t n) {
      auto& s = self->state;
      if (n != s.sent)
        return fail(self, main, "the echo differs from the ball");
      if (++s.echoed == rounds) {
        self->send(main, done_atom::value, s.echoed);
        return;
      }
      self->send(pong, ball_atom::value, ++s.sent);
    },
  };
}

bool run_pingpong(actor_system& sys, const uint64_t* args, bench_result& r) {
  driver d(sys, "pingpong");
  uint64_t rounds = args[0], echoed = 0;
  auto pong = sys.spawn(pong_actor);
  auto ping = sys.spawn(ping_actor, pong, rounds, d.handle());
  auto t0 = clock_type::now();
  d.self()->send(ping, kick_atom::value);
  bool ok = d.await([&](done_atom, uint64_t n) { echoed = n; });
  r.seconds = since(t0);
  d.stop({ping, pong});
  if (ok && echoed != rounds)
    ok = d.error("fewer echoes than round trips");
  r.ops = rounds;
  r.add_fixed("ns_per_rt", r.seconds * 1e9 / static_cast<double>(rounds), 1);
  return ok;
}

// ---- threadring -----------------------------------------------------------
// A token with the hops left goes around the ring, decremented at each node;
// the node that receives 0 reports its index, which must be hops % ring.

struct node_state {
  actor next;
};

behavior ring_node(stateful_actor<node_state>* self, uint64_t index,
                   actor main) {
  return {
    [=](next_atom, actor next) {
      self->state.next = std::move(next);
      self->send(main, wired_atom::value);
    },
    [=](token_atom, uint64_t left) {
      if (left > 0)
        self->send(self->state.next, token_atom::value, left - 1);
      else
        self->send(main, done_atom::value, index);
    },
  };
}

bool run_threadring(actor_system& sys, const uint64_t* args, bench_result& r) {
  driver d(sys, "threadring");
  uint64_t hops = args[0], size = args[1], last = size;
  std::vector<actor> nodes;
  nodes.reserve(size);
  for (uint64_t i = 0; i < size; ++i)
    nodes.push_back(sys.spawn(ring_node, i, d.handle()));
  bool ok = true;
  for (uint64_t i = 0; i < size; ++i)
    d.self()->send(nodes[i], next_atom::value, nodes[(i + 1) % size]);
  for (uint64_t i = 0; ok && i < size; ++i)
    ok = d.await([](wired_atom) {});
  auto t0 = clock_type::now();
  if (ok) {
    d.self()->send(nodes[0], token_atom::value, hops);
    ok = d.await([&](done_atom, uint64_t node) { last = node; });
  }
  r.seconds = since(t0);
  d.stop(nodes); // the ring holds itself: it ends only when told
  if (ok && last != hops % size)
    ok = d.error("the token ended at the wrong node");
  r.ops = hops;
  r.add("ring", size);
  r.add_fixed("ns_per_hop",
              r.seconds * 1e9 / static_cast<double>(hops ? hops : 1), 1);
  return ok;
}

// ---- fanin ----------------------------------------------------------------
// Each sender sends (id, seq) for seq = 0 .. per_sender-1 in one loop to one
// receiver, which checks every sender's sequence arrives in order.

behavior fanin_sender(event_based_actor* self, uint64_t id,
                      uint64_t per_sender, actor receiver) {
  return {
    [=](kick_atom) {
      for (uint64_t seq = 0; seq < per_sender; ++seq)
        self->send(receiver, item_atom::value, id, seq);
    },
  };
}

struct receiver_state {
  std::vector<uint64_t> next_seq; // per sender
  uint64_t received = 0;
};

behavior fanin_receiver(stateful_actor<receiver_state>* self, uint64_t senders,
                        uint64_t per_sender, actor main) {
  self->state.next_seq.assign(senders, 0);
  return {
    [=](item_atom, uint64_t id, uint64_t seq) {
      auto& s = self->state;
      if (id >= senders)
        return fail(self, main, "a message from no known sender");
      if (seq != s.next_seq[id]++)
        return fail(self, main, "a sender's messages out of order");
      if (++s.received == per_sender * senders) {
        for (auto next : s.next_seq)
          if (next != per_sender)
            return fail(self, main, "messages were lost");
        self->send(main, done_atom::value, s.received);
      }
    },
  };
}

bool run_fanin(actor_system& sys, const uint64_t* args, bench_result& r) {
  driver d(sys, "fanin");
  uint64_t per_sender = args[0], senders = args[1], received = 0;
  auto receiver = sys.spawn(fanin_receiver, senders, per_sender, d.handle());
  std::vector<actor> all{receiver};
  for (uint64_t id = 0; id < senders; ++id)
    all.push_back(sys.spawn(fanin_sender, id, per_sender, receiver));
  auto t0 = clock_type::now();
  for (uint64_t id = 0; id < senders; ++id)
    d.self()->send(all[id + 1], kick_atom::value);
  bool ok = d.await([&](done_atom, uint64_t n) { received = n; });
  r.seconds = since(t0);
  d.stop(all);
  if (ok && received != per_sender * senders)
    ok = d.error("messages were lost");
  r.ops = per_sender * senders;
  r.add("senders", senders);
  return ok;
}

// ---- forkjoin -------------------------------------------------------------
// A driver loops i = 0 .. per_worker-1 sending i to every worker; each
// worker adds i and sin(i)^2, and reports its sums after its last message.

struct sums {
  uint64_t count = 0, sum = 0;
  double fsum = 0;

  void add(uint64_t i) {
    double x = std::sin(static_cast<double>(i));
    ++count;
    sum += i;
    fsum += x * x;
  }
};

behavior fj_driver(event_based_actor* self, std::vector<actor> workers,
                   uint64_t per_worker) {
  return {
    [=](kick_atom) {
      for (uint64_t i = 0; i < per_worker; ++i)
        for (auto& w : workers)
          self->send(w, work_atom::value, i);
    },
  };
}

behavior fj_worker(stateful_actor<sums>* self, uint64_t index,
                   uint64_t per_worker, actor main) {
  return {
    [=](work_atom, uint64_t i) {
      auto& s = self->state;
      s.add(i);
      if (s.count == per_worker)
        self->send(main, done_atom::value, index, s.count, s.sum, s.fsum);
    },
  };
}

bool run_forkjoin(actor_system& sys, const uint64_t* args, bench_result& r) {
  driver d(sys, "forkjoin");
  uint64_t per_worker = args[0], nworkers = args[1];
  std::vector<actor> workers;
  for (uint64_t w = 0; w < nworkers; ++w)
    workers.push_back(sys.spawn(fj_worker, w, per_worker, d.handle()));
  auto drv = sys.spawn(fj_driver, workers, per_worker);
  std::vector<sums> filed(nworkers);
  std::vector<bool> seen(nworkers, false);
  auto t0 = clock_type::now();
  d.self()->send(drv, kick_atom::value);
  bool ok = true;
  for (uint64_t k = 0; ok && k < nworkers; ++k)
    ok = d.await([&](done_atom, uint64_t w, uint64_t count, uint64_t sum,
                     double fsum) {
      if (w < nworkers && !seen[w]) {
        seen[w] = true;
        filed[w].count = count;
        filed[w].sum = sum;
        filed[w].fsum = fsum;
      }
    });
  r.seconds = since(t0);
  workers.push_back(drv);
  d.stop(workers);
  sums want;
  for (uint64_t i = 0; i < per_worker; ++i)
    want.add(i);
  for (uint64_t w = 0; ok && w < nworkers; ++w) {
    if (!seen[w] || filed[w].count != want.count || filed[w].sum != want.sum)
      ok = d.error("a worker missed messages");
    else if (std::memcmp(&filed[w].fsum, &filed[0].fsum, sizeof(double)) != 0)
      ok = d.error("float sums differ between workers");
  }
  if (ok
      && std::fabs(filed[0].fsum - want.fsum)
           > 1e-9 * (1 + std::fabs(want.fsum)))
    ok = d.error("float sums differ from the expected");
  r.ops = per_worker * nworkers;
  r.add("worker_actors", nworkers);
  return ok;
}

// ---- spawn, spawn_burst ---------------------------------------------------
// A driver spawns children; each says hello to the driver when it starts and
// stays alive. window > 0: at most window children spawned and not yet heard
// from; window = 0: all spawned in one loop.

behavior child_actor(event_based_actor* self, actor driver) {
  self->send(driver, hello_atom::value);
  // A behaviour keeps it alive; it answers nothing in this benchmark.
  return {
    [](hello_atom) {},
  };
}

struct spawner_state {
  std::vector<actor> children; // the driver keeps them, so they stay alive
  uint64_t spawned = 0, hellos = 0;
};

behavior spawn_driver(stateful_actor<spawner_state>* self, uint64_t actors,
                      uint64_t window, actor main) {
  self->state.children.reserve(actors);
  auto spawn_some = [=](uint64_t n) {
    auto& s = self->state;
    for (; n > 0 && s.spawned < actors; --n, ++s.spawned)
      s.children.push_back(
        self->spawn(child_actor, actor_cast<actor>(self)));
  };
  return {
    [=](kick_atom) { spawn_some(window ? window : actors); },
    [=](hello_atom) {
      auto& s = self->state;
      if (++s.hellos == actors)
        self->send(main, done_atom::value, s.hellos);
      else if (window)
        spawn_some(1);
    },
  };
}

bool run_spawn(actor_system& sys, const char* name, const uint64_t* args,
               bench_result& r) {
  driver d(sys, name);
  uint64_t actors = args[0], window = args[1], hellos = 0;
  auto drv = sys.spawn(spawn_driver, actors, window, d.handle());
  size_t running0 = sys.registry().running();
  uint64_t rss_before = status_kib("VmRSS");
  auto t0 = clock_type::now();
  d.self()->send(drv, kick_atom::value);
  bool ok = d.await([&](done_atom, uint64_t n) { hellos = n; });
  r.seconds = since(t0);
  uint64_t peak = status_kib("VmHWM");
  size_t alive = sys.registry().running() - running0;
  // The children go with the driver's state, which holds the last handles.
  d.stop({drv});
  if (ok && hellos != actors)
    ok = d.error("hellos missing");
  if (ok && alive != actors)
    ok = d.error("children not alive at the end");
  r.ops = actors;
  r.add("window", window);
  r.add_fixed("bytes_per_actor",
              peak > rss_before ? static_cast<double>(peak - rss_before) * 1024
                                    / static_cast<double>(actors)
                                : 0.0,
              0);
  return ok;
}

// ---- counting -------------------------------------------------------------
// A producer sends increments in one loop, then requests the value, which
// must equal the number of increments.

behavior counter_actor(stateful_actor<uint64_t>* self) {
  return {
    [=](inc_atom) { ++self->state; },
    [=](get_atom) { return self->state; },
  };
}

behavior producer_actor(event_based_actor* self, actor counter,
                        uint64_t messages, actor main) {
  return {
    [=](kick_atom) {
      for (uint64_t i = 0; i < messages; ++i)
        self->send(counter, inc_atom::value);
      self->request(counter, infinite, get_atom::value)
        .then(
          [=](uint64_t value) {
            if (value != messages)
              return fail(self, main, "the counter has the wrong value");
            self->send(main, done_atom::value, value);
          },
          [=](error&) { fail(self, main, "the get request failed"); });
    },
  };
}

bool run_counting(actor_system& sys, const uint64_t* args, bench_result& r) {
  driver d(sys, "counting");
  uint64_t messages = args[0], value = 0;
  auto counter = sys.spawn(counter_actor);
  auto producer = sys.spawn(producer_actor, counter, messages, d.handle());
  auto t0 = clock_type::now();
  d.self()->send(producer, kick_atom::value);
  bool ok = d.await([&](done_atom, uint64_t v) { value = v; });
  r.seconds = since(t0);
  d.stop({producer, counter});
  if (ok && value != messages)
    ok = d.error("no reply with the count");
  r.ops = messages;
  return ok;
}

// ---- the command line -----------------------------------------------------

struct bench_def {
  const char* name;
  bool (*run)(actor_system&, const uint64_t*, bench_result&);
  unsigned nargs;
  const char* arg_names[2];
  const char* defaults[2];
  double minimum[2];
};

bool run_spawn_windowed(actor_system& sys, const uint64_t* args,
                        bench_result& r) {
  return run_spawn(sys, "spawn", args, r);
}

bool run_spawn_burst(actor_system& sys, const uint64_t* args, bench_result& r) {
  return run_spawn(sys, "spawn_burst", args, r);
}

const bench_def benches[] = {
  {"pingpong", run_pingpong, 1, {"round_trips"}, {"1e6"}, {1}},
  {"threadring", run_threadring, 2, {"hops", "ring"}, {"1e7", "1000"}, {1, 1}},
  {"fanin", run_fanin, 2, {"per_sender", "senders"}, {"5e6", "2"}, {1, 1}},
  {"forkjoin", run_forkjoin, 2, {"per_worker", "workers"}, {"2e5", "60"},
   {1, 1}},
  {"spawn", run_spawn_windowed, 2, {"actors", "window"}, {"1e6", "1000"},
   {1, 0}},
  {"spawn_burst", run_spawn_burst, 2, {"actors", "window"}, {"5e4", "0"},
   {1, 0}},
  {"counting", run_counting, 1, {"messages"}, {"1e7"}, {1}},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: caf-savina [CAF options] NAME [ARGS...]\n"
                  "benchmarks (ARGS in order, defaults):\n");
  for (auto& d : benches) {
    std::fprintf(f, "  %-12s", d.name);
    for (unsigned a = 0; a < d.nargs; ++a)
      std::fprintf(f, " %s=%s", d.arg_names[a], d.defaults[a]);
    std::fprintf(f, "\n");
  }
  std::fprintf(f, "CAF options (e.g. --scheduler.max-threads=N): "
                  "caf-savina --help\n");
}

// A whole number in [min, 1e12], written as 1000000 or 1e6 (xoscar-bench's).
bool parse_size(const std::string& s, double min, uint64_t& out) {
  char* end;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || v != std::floor(v)
      || v < min || v > 1e12)
    return false;
  out = static_cast<uint64_t>(v);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  actor_system_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "caf-savina: " << actor_system_config::render(err) << "\n";
    return 2;
  }
  if (cfg.cli_helptext_printed) {
    usage(stdout);
    return 0;
  }
  const auto& words = cfg.remainder;
  if (words.empty()) {
    usage(stderr);
    return 2;
  }
  const bench_def* def = nullptr;
  for (auto& d : benches)
    if (words[0] == d.name)
      def = &d;
  if (def == nullptr) {
    std::fprintf(stderr, "caf-savina: no benchmark named %s\n",
                 words[0].c_str());
    usage(stderr);
    return 2;
  }
  if (words.size() - 1 > def->nargs) {
    std::fprintf(stderr, "%s: takes at most %u arguments\n", def->name,
                 def->nargs);
    return 2;
  }
  uint64_t args[2] = {0, 0};
  for (unsigned a = 0; a < def->nargs; ++a) {
    std::string word = a + 1 < words.size() ? words[a + 1] : def->defaults[a];
    if (!parse_size(word, def->minimum[a], args[a])) {
      std::fprintf(stderr, "%s: bad %s: %s\n", def->name, def->arg_names[a],
                   word.c_str());
      return 2;
    }
  }
  bench_result r;
  r.name = def->name;
  bool ok;
  size_t workers;
  {
    actor_system sys{cfg};
    workers = sys.scheduler().num_workers();
    ok = def->run(sys, args, r);
  } // waits for every actor to end
  if (!ok) {
    std::fprintf(stderr, "%s: FAILED\n", def->name);
    return 1;
  }
  r.add("peak_rss_kib", status_kib("VmHWM"));
  r.add("workers", workers);
  r.add("caf", std::to_string(CAF_MAJOR_VERSION) + "."
                 + std::to_string(CAF_MINOR_VERSION) + "."
                 + std::to_string(CAF_PATCH_VERSION));
  r.print();
  return 0;
}
