/*
 * test_net_process.c -- nodes in two processes: this one and the node
 * program (net_node.c), started with posix_spawn and told to stop by
 * closing its stdin, or killed. The same checks as in-process
 * (net_common.h), a SIGKILL with 200 calls in flight, and a partition
 * made with network namespaces: a veth pair between this namespace and
 * one the test creates (root only; skipped, saying so, otherwise).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net_actors.h"
#include "net_common.h"
#include "support.h"

extern char **environ;

struct child {
    pid_t pid;
    int in;      /* its stdin: closing it stops it */
    unsigned port;
};

/* Start the node program: argv after the program's name; its port is
   read from the "port N" line it prints. */
static void child_start(struct child *c, const char *const *args)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    const char *argv[16];
    unsigned n = 0;
    while (args[n] != NULL && n < 15) {
        argv[n] = args[n];
        n++;
    }
    argv[n] = NULL;
    int rc = posix_spawn(&c->pid, argv[0], &fa, NULL, (char **)argv,
                         environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", argv[0], strerror(rc));
    close(in[0]);
    close(out[1]);
    c->in = in[1];
    FILE *f = fdopen(out[0], "r");
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "port %u", &c->port), 1,
                 "the node program printed its port");
    fclose(f);
}

static void child_start_local(struct child *c)
{
    const char *args[] = { XO_TEST_NODE, "--name", "far", NULL };
    child_start(c, args);
}

/* Close its stdin: it stops its runtime and exits 0. */
static void child_stop(struct child *c)
{
    close(c->in);
    int status;
    cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the node program stopped cleanly (status %d)", status);
}

static void child_kill(struct child *c)
{
    cr_assert_eq(kill(c->pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
    cr_assert(WIFSIGNALED(status));
    close(c->in);
}

static xo_runtime_t *local_node(uint64_t loss_ns)
{
    xo_runtime_t *rt = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, loss_ns);
    cfg.name = "near";
    cfg.on_log = quiet_log;
    cr_assert_eq(xo_node_start(rt, &cfg), 0);
    return rt;
}

static unsigned connect_to(xo_runtime_t *rt, const char *host,
                           unsigned port)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "%s:%u", host, port);
    unsigned node;
    int rc = xo_node_connect(rt, addr, -1, &node);
    cr_assert_eq(rc, 0, "connect %s: %s", addr, xo_strerror(rc));
    return node;
}

Test(net_process, every_sending_function_crosses_to_another_process)
{
    struct child c;
    child_start_local(&c);
    xo_runtime_t *rt = local_node(2000000000ull);
    unsigned node = connect_to(rt, "127.0.0.1", c.port);
    every_sending_function(rt, node, 2000);
    per_pair_order(rt, node, 3, 2000);
    stop_runtime(rt);
    child_stop(&c);
}

Test(net_process, chunks_streams_lookup_spawn_and_monitors_across_processes)
{
    struct child c;
    child_start_local(&c);
    xo_runtime_t *rt = local_node(2000000000ull);
    unsigned node = connect_to(rt, "127.0.0.1", c.port);
    chunked_in_order(rt, node);
    remote_stream(rt, node, 300);
    lookup_and_spawn(rt, node);
    monitor_remote(rt, node);
    stop_runtime(rt);
    child_stop(&c);
}

/* The other process dies with 200 calls in flight: every one completes
   with XO_ENODELOST (none hangs: a hang fails by ctest's timeout), the
   monitor gets DOWN, and a new process of it can be connected to. */
Test(net_process, sigkill_with_200_calls_in_flight_fails_them_all)
{
    struct child c;
    child_start_local(&c);
    xo_runtime_t *rt = local_node(2000000000ull);
    unsigned node = connect_to(rt, "127.0.0.1", c.port);
    xo_ref_t echo = remote_lookup(rt, node, "echo");
    struct lost_check lc;
    lost_prepare(&lc, rt, node, 200);
    child_kill(&c);
    lost_verify(&lc);
    cr_assert_eq(xo_tell(echo, T_PLAIN, NULL, 0), XO_ENODELOST,
                 "sends to its refs fail");
    struct child again;
    child_start_local(&again);
    unsigned node2 = connect_to(rt, "127.0.0.1", again.port);
    cr_assert_neq(node2, node, "a new process, a new number");
    call_echo_ok(remote_lookup(rt, node2, "echo"));
    stop_runtime(rt);
    child_stop(&again);
}

/* ---- a partition ----------------------------------------------------- */

struct netns {
    char ns[32], here[16], there[16];
    char ip_here[32], ip_there[32];
    bool made_ns, made_link;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void skip_because(const char *why)
{
    fprintf(stderr, "net_process: partition test skipped: %s\n", why);
    cr_skip_test("%s", why);
}

static void netns_down(struct netns *n)
{
    if (n->made_link)
        (void)sh("ip link del %s 2>/dev/null", n->here);
    if (n->made_ns)
        (void)sh("ip netns del %s 2>/dev/null", n->ns);
}

/* The namespaces of earlier runs whose test process is gone (it failed
   before it could remove its own): removing a namespace removes the veth
   pair with it. */
static void netns_sweep(void)
{
    FILE *f = popen("ip netns list 2>/dev/null", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned pid;
        if (sscanf(line, "xo_net_%u", &pid) == 1 &&
            kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            (void)sh("ip netns del xo_net_%u 2>/dev/null", pid);
    }
    pclose(f);
}

/* A namespace with one end of a veth pair; the other end here. */
static bool netns_up(struct netns *n)
{
    netns_sweep();
    unsigned id = (unsigned)getpid();
    memset(n, 0, sizeof(*n));
    snprintf(n->ns, sizeof(n->ns), "xo_net_%u", id);
    snprintf(n->here, sizeof(n->here), "xo%ua", id % 100000u);
    snprintf(n->there, sizeof(n->there), "xo%ub", id % 100000u);
    unsigned hi = 200 + id % 50, mid = (id / 50) % 250;
    snprintf(n->ip_here, sizeof(n->ip_here), "10.%u.%u.1", hi, mid);
    snprintf(n->ip_there, sizeof(n->ip_there), "10.%u.%u.2", hi, mid);
    if (sh("ip netns add %s", n->ns) != 0)
        return false;
    n->made_ns = true;
    if (sh("ip link add %s type veth peer name %s", n->here, n->there) != 0)
        return false;
    n->made_link = true;
    return sh("ip link set %s netns %s", n->there, n->ns) == 0 &&
           sh("ip addr add %s/30 dev %s", n->ip_here, n->here) == 0 &&
           sh("ip link set %s up", n->here) == 0 &&
           sh("ip netns exec %s ip addr add %s/30 dev %s", n->ns,
              n->ip_there, n->there) == 0 &&
           sh("ip netns exec %s ip link set %s up", n->ns, n->there) == 0 &&
           sh("ip netns exec %s ip link set lo up", n->ns) == 0;
}

/* The link between the two goes down and comes back: the loss is found
   by silence (no reset comes through a dead link), the calls in flight
   fail, the monitor fires; then this node, which made the connection,
   reconnects under the same number and the same refs work again. */
Test(net_process, a_partition_is_detected_then_healed_by_reconnecting)
{
    if (geteuid() != 0)
        skip_because("it needs root to make a network namespace");
    if (sh("command -v ip >/dev/null 2>&1") != 0)
        skip_because("no ip command (Debian: iproute2)");
    struct netns n;
    if (!netns_up(&n)) {
        netns_down(&n);
        skip_because("this host refused a network namespace or a veth "
                     "pair");
    }
    struct child c;
    const char *args[] = { "/usr/bin/env", "ip", "netns", "exec", n.ns,
                           XO_TEST_NODE, "--listen", n.ip_there,
                           "--name", "far", "--loss-ms", "600", NULL };
    child_start(&c, args);
    xo_runtime_t *rt = local_node(600000000ull);
    struct events ev;
    events_watch(&ev, rt);
    unsigned node = connect_to(rt, n.ip_there, c.port);
    xo_ref_t echo = remote_lookup(rt, node, "echo");
    struct lost_check lc;
    lost_prepare(&lc, rt, node, 50);
    cr_assert_eq(sh("ip netns exec %s ip link set %s down", n.ns, n.there),
                 0);
    lost_verify(&lc);
    events_wait(&ev, node, XO_NODE_CONNECTING);
    cr_assert_eq(ev.last_reason_down, XO_ENODELOST,
                 "found by silence: %s", xo_strerror(ev.last_reason_down));
    cr_assert_eq(xo_tell(echo, T_PLAIN, NULL, 0), XO_ENODELOST);
    cr_assert_eq(sh("ip netns exec %s ip link set %s up", n.ns, n.there), 0);
    events_wait(&ev, node, XO_NODE_UP);
    call_echo_ok(echo); /* the same ref, the same process */
    events_stop(&ev);
    stop_runtime(rt);
    child_stop(&c);
    netns_down(&n);
}
