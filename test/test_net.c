/*
 * test_net.c -- nodes over TCP (net/, docs/net.md), two runtimes in this
 * process over loopback, plus "fake" peers made of a raw socket and the
 * wire's own encoder (net/wire.h, net/auth.h): a peer that proves the
 * secret and then misbehaves (garbage, oversized and truncated frames,
 * silence, a full socket), or one that cannot prove it.
 *
 * The two-process tests (the node program of net_node.c, SIGKILL, a
 * partition made with network namespaces) are in test_net_process.c.
 * Nothing here asserts a time: waits are for events, bounded only by
 * ctest's timeout; the loss timeouts are short so that the suite is.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/auth.h"
#include "net/net.h"
#include "net/wire.h"
#include "net_actors.h"
#include "net_common.h"
#include "support.h"

/* ---- two runtimes ---------------------------------------------------- */

struct two {
    xo_runtime_t *a, *b;
    unsigned b_at_a; /* B's number on A */
    unsigned port_b;
};

/* cfg.on_event of node A: events counted by state. */
static _Atomic int a_events[XO_NODE_DOWN + 1];

static void count_event(xo_runtime_t *rt, const xo_node_event_t *ev,
                        void *user)
{
    (void)rt;
    (void)user;
    if (ev->state >= XO_NODE_CONNECTING && ev->state <= XO_NODE_DOWN)
        atomic_fetch_add(&a_events[ev->state], 1);
}

/* A heartbeat interval for two_up other than net_test_config's (0: its). */
static uint64_t two_heartbeat_ns;

static void two_up(struct two *t, uint64_t loss_ns)
{
    t->a = start_runtime(2);
    t->b = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, loss_ns);
    if (two_heartbeat_ns != 0)
        cfg.heartbeat_ns = two_heartbeat_ns;
    cfg.on_log = quiet_log;
    cfg.max_batch = TEST_MAX_BATCH;
    cfg.name = "a";
    cfg.on_event = count_event;
    cr_assert_eq(xo_node_start(t->a, &cfg), 0);
    cfg.on_event = NULL;
    cfg.name = "b";
    cr_assert_eq(xo_node_start(t->b, &cfg), 0);
    cr_assert_eq(net_actors_setup(t->b), 0);
    cr_assert_eq(xo_node_port(t->b, &t->port_b), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", t->port_b);
    int rc = xo_node_connect(t->a, addr, -1, &t->b_at_a);
    cr_assert_eq(rc, 0, "connect: %s", xo_strerror(rc));
}

static void two_down(struct two *t)
{
    stop_runtime(t->a);
    stop_runtime(t->b);
}

Test(net, connect_numbers_each_end_and_info_tells_them_apart)
{
    struct two t;
    two_up(&t, 2000000000ull);
    cr_assert_geq(t.b_at_a, 1);
    xo_node_info_t ia, ib;
    cr_assert_eq(xo_node_info(t.a, t.b_at_a, &ia), 0);
    cr_assert_eq(ia.state, XO_NODE_UP);
    cr_assert_str_eq(ia.name, "b");
    cr_assert(ia.outbound, "A made the connection");
    unsigned a_at_b;
    wait_until(xo_node_find(t.b, "a", &a_at_b) == 0);
    cr_assert_eq(xo_node_info(t.b, a_at_b, &ib), 0);
    cr_assert_str_eq(ib.name, "a");
    cr_assert_not(ib.outbound);
    cr_assert_neq(ia.incarnation, ib.incarnation);
    xo_node_info_t self;
    cr_assert_eq(xo_node_info(t.a, 0, &self), 0);
    cr_assert_str_eq(self.name, "a");
    cr_assert_eq(self.incarnation, ib.incarnation);
    /* A second connect to the same address gives the same number. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", t.port_b);
    unsigned again;
    cr_assert_eq(xo_node_connect(t.a, addr, -1, &again), 0);
    cr_assert_eq(again, t.b_at_a);
    two_down(&t);
}

Test(net, every_sending_function_crosses_nodes_with_exact_accounting)
{
    struct two t;
    two_up(&t, 2000000000ull);
    every_sending_function(t.a, t.b_at_a, 2000);
    two_down(&t);
}

Test(net, tells_from_several_actors_keep_each_pair_in_order)
{
    struct two t;
    two_up(&t, 2000000000ull);
    per_pair_order(t.a, t.b_at_a, 4, 3000);
    two_down(&t);
}

Test(net, a_chunked_message_arrives_whole_and_keeps_its_place)
{
    struct two t;
    two_up(&t, 2000000000ull);
    chunked_in_order(t.a, t.b_at_a);
    two_down(&t);
}

Test(net, lookup_and_spawn_by_type_name_on_another_node)
{
    struct two t;
    two_up(&t, 2000000000ull);
    lookup_and_spawn(t.a, t.b_at_a);
    two_down(&t);
}

Test(net, a_remote_stream_gives_every_part_then_its_end)
{
    struct two t;
    two_up(&t, 2000000000ull);
    remote_stream(t.a, t.b_at_a, 500);
    two_down(&t);
}

Test(net, cancel_reaches_a_running_remote_handler_and_skips_a_queued_call)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_ref_t streamer = remote_lookup(t.a, t.b_at_a, "streamer");
    xo_future_t *running, *queued;
    cr_assert_eq(xo_call(streamer, T_WAIT_CANCEL, NULL, 0, &running), 0);
    cr_assert_eq(xo_call(streamer, T_STREAM, NULL, 0, &queued), 0);
    wait_until(atomic_load(&streamer_waiting) == 1);
    /* The second is queued behind the first on a stateful actor. */
    cr_assert_eq(xo_future_cancel(queued), 0);
    cr_assert_eq(xo_future_wait(queued, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(queued, 0, &r), XO_ECANCELED);
    cr_assert_eq(xo_future_cancel(running), 0);
    cr_assert_eq(xo_future_wait(running, -1), 0);
    cr_assert_eq(xo_future_result(running, 0, &r), XO_ECANCELED);
    cr_assert_str_eq(r.error, "saw the cancel",
                     "the handler itself answered: %s", r.error);
    cr_assert(xo_ref_eq(r.from, streamer));
    xo_future_release(queued);
    xo_future_release(running);
    two_down(&t);
}

Test(net, a_monitor_of_a_remote_actor_gets_down_with_its_reason)
{
    struct two t;
    two_up(&t, 2000000000ull);
    monitor_remote(t.a, t.b_at_a);
    two_down(&t);
}

Test(net, a_lost_node_fails_every_call_in_flight_and_fires_monitors)
{
    struct two t;
    two_up(&t, 2000000000ull);
    struct lost_check lc;
    lost_prepare(&lc, t.a, t.b_at_a, 200);
    cr_assert_eq(xi_net_sever(t.b), 0);
    lost_verify(&lc);
    two_down(&t);
}

Test(net, the_connecting_node_reconnects_and_old_refs_work_again)
{
    struct two t;
    two_up(&t, 2000000000ull);
    struct events ev;
    events_watch(&ev, t.a);
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    cr_assert_eq(xi_net_sever(t.b), 0);
    /* Lost, then back under the same number (same process there). */
    events_wait(&ev, t.b_at_a, XO_NODE_CONNECTING);
    events_wait(&ev, t.b_at_a, XO_NODE_UP);
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(t.a, t.b_at_a, &info), 0);
    cr_assert_eq(info.state, XO_NODE_UP);
    cr_assert_geq(info.connects, 2);
    cr_assert_eq(info.losses, 1);
    call_echo_ok(echo);
    events_stop(&ev);
    two_down(&t);
}

Test(net, a_restarted_node_gets_a_new_number_and_old_refs_fail)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_ref_t old_echo = remote_lookup(t.a, t.b_at_a, "echo");
    stop_runtime(t.b);
    /* A new process (here: a new runtime) on the same address. */
    t.b = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, 2000000000ull);
    cfg.name = "b";
    cfg.on_log = quiet_log;
    cfg.listen_port = t.port_b;
    int rc;
    while ((rc = xo_node_start(t.b, &cfg)) == XO_EADDRINUSE)
        sleep_ms(20);
    cr_assert_eq(rc, 0, "restart: %s", xo_strerror(rc));
    cr_assert_eq(net_actors_setup(t.b), 0);
    unsigned now_b;
    wait_until(xo_node_find(t.a, "b", &now_b) == 0 && now_b != t.b_at_a &&
               node_state(t.a, now_b) == XO_NODE_UP);
    cr_assert_eq(node_state(t.a, t.b_at_a), XO_NODE_DOWN);
    xo_future_t *f;
    cr_assert_eq(xo_tell(old_echo, T_PLAIN, NULL, 0), XO_ENODELOST);
    cr_assert_eq(xo_call(old_echo, T_PLAIN, NULL, 0, &f), XO_ENODELOST);
    call_echo_ok(remote_lookup(t.a, now_b, "echo"));
    two_down(&t);
}

Test(net, node_events_reach_subscribers_and_the_callback)
{
    struct two t;
    two_up(&t, 2000000000ull);
    struct events ev;
    events_watch(&ev, t.a);
    cr_assert_eq(xi_net_sever(t.b), 0);
    events_wait(&ev, t.b_at_a, XO_NODE_CONNECTING);
    events_wait(&ev, t.b_at_a, XO_NODE_UP);
    cr_assert_eq(ev.last_reason_down, XO_ECLOSED,
                 "the connection closed: %s",
                 xo_strerror(ev.last_reason_down));
    /* The callback saw them too: up at the connect and again, and the
       loss in between (it runs before the subscribers are told). */
    cr_assert_eq(atomic_load(&a_events[XO_NODE_UP]), 2);
    cr_assert_eq(atomic_load(&a_events[XO_NODE_CONNECTING]), 1);
    events_stop(&ev);
    two_down(&t);
}

/* ---- authentication ------------------------------------------------------ */

Test(net, a_wrong_secret_is_refused_every_time_and_the_listener_goes_on)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_runtime_t *c = start_runtime(1);
    xo_node_config_t cfg;
    net_test_config(&cfg, 2000000000ull);
    cfg.secret[7] ^= 1; /* one bit off */
    cfg.name = "intruder";
    cfg.on_log = quiet_log;
    unsigned lines = log_lines();
    cr_assert_eq(xo_node_start(c, &cfg), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", t.port_b);
    for (int i = 0; i < 3; i++) {
        unsigned n;
        int rc = xo_node_connect(c, addr, -1, &n);
        cr_assert_eq(rc, XO_EAUTH, "attempt %d: %s", i, xo_strerror(rc));
    }
    xo_node_info_t self;
    cr_assert_eq(xo_node_info(t.b, 0, &self), 0);
    cr_assert_eq(self.refused, 3);
    cr_assert_eq(xo_node_find(t.b, "intruder", &(unsigned){ 0 }),
                 XO_ENOTEXIST, "a refused node gets no number");
    /* The good connection is untouched, and a new one is welcome. */
    call_echo_ok(remote_lookup(t.a, t.b_at_a, "echo"));
    xo_runtime_t *d = start_runtime(1);
    net_test_config(&cfg, 2000000000ull);
    cfg.name = "friend";
    cfg.on_log = quiet_log;
    cr_assert_eq(xo_node_start(d, &cfg), 0);
    unsigned n;
    cr_assert_eq(xo_node_connect(d, addr, -1, &n), 0);
    cr_assert_geq(log_lines(), lines + 3, "each refusal logged");
    stop_runtime(c);
    stop_runtime(d);
    two_down(&t);
}

Test(net, a_node_without_the_secret_is_refused)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_node_config_t cfg;
    xo_node_config_init(&cfg); /* no secret */
    cr_assert_eq(xo_node_start(rt, &cfg), XO_EINVAL);
    net_test_config(&cfg, 2000000000ull);
    cfg.handshake_timeout_ns = 300000000ull;
    cfg.on_log = quiet_log;
    cr_assert_eq(xo_node_start(rt, &cfg), 0);
    unsigned port;
    cr_assert_eq(xo_node_port(rt, &port), 0);
    /* A peer that says HELLO and answers with a proof it cannot make. */
    for (int i = 0; i < 3; i++) {
        struct fake f;
        fake_connect(&f, port);
        fake_hello(&f, "nosecret", 0);
        cr_assert_eq(fake_read_hello(&f), 0);
        unsigned char zero[XI_WIRE_MAC] = { 0 };
        struct xi_wire_hdr h = { .type = XI_WT_AUTH };
        fake_send(&f, &h, zero, sizeof(zero));
        struct xi_wire_hdr got;
        cr_assert_eq(fake_read_frame(&f, &got, NULL, 0), 0);
        cr_assert_eq(got.type, XI_WT_BYE, "told why: %s",
                     xi_wire_type_name(got.type));
        cr_assert_eq((int)got.c, XO_EAUTH);
        cr_assert(fake_closed(&f));
        fake_close(&f);
    }
    /* One that says nothing at all is closed at the handshake's end. */
    struct fake mute;
    fake_connect(&mute, port);
    cr_assert(fake_closed(&mute));
    fake_close(&mute);
    xo_node_info_t self;
    cr_assert_eq(xo_node_info(rt, 0, &self), 0);
    cr_assert_eq(self.refused, 3);
    stop_runtime(rt);
}

/* ---- bad frames ------------------------------------------------------------ */

/* Each kind of bad input, from a peer that proved the secret; only its
   connection goes, and the good one beside it keeps working. */
Test(net, truncated_oversized_or_garbage_frames_close_only_that_connection)
{
    struct two t;
    two_up(&t, 2000000000ull);
    unsigned lines = log_lines();
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    uint64_t faults_before = node_faults(t.b);
    for (int kind = 0; kind < BAD_KINDS; kind++) {
        struct fake f;
        fake_connect(&f, t.port_b);
        fake_authenticate(&f, "bad");
        fake_send_bad(&f, kind);
        cr_assert(fake_closed(&f), "bad frame %d: closed", kind);
        fake_close(&f);
        call_echo_ok(echo);
    }
    /* Every kind but the plain truncation (a peer that goes mid-frame is
       just gone) is counted as a fault and logged. */
    wait_until(node_faults(t.b) >= faults_before + BAD_KINDS - 1);
    cr_assert_geq(log_lines(), lines + BAD_KINDS - 1);
    cr_assert_eq(node_state(t.a, t.b_at_a), XO_NODE_UP);
    two_down(&t);
}

/* A batch from the wire that arrives in pieces (a read each) is delivered
   when its last message came, whole; one whose connection dies first is
   not delivered at all. */
Test(net, a_batch_split_across_reads_is_delivered_whole_or_not_at_all)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_ref_t counter = remote_spawn(t.a, t.b_at_a, "counter", NULL);
    uint64_t to = counter.id & ~((uint64_t)0xFFF << 28); /* B's own id */
    for (int round = 0; round < 2; round++) {
        struct fake f;
        fake_connect(&f, t.port_b);
        fake_authenticate(&f, "batcher");
        for (uint64_t seq = 0; seq < 4; seq++) {
            struct xi_wire_hdr h = { .type = XI_WT_TELL, .a = to,
                                     .tag = T_SEQ, .flags = XI_WF_MORE };
            fake_send(&f, &h, &seq, sizeof(seq));
            sleep_ms(20); /* each its own read there */
        }
        struct counts c = get_counts(counter);
        cr_assert_eq(c.by_tag[T_SEQ], (uint64_t)round * 5,
                     "round %d: nothing of an open batch", round);
        if (round == 0) {
            uint64_t seq = 4;
            struct xi_wire_hdr h = { .type = XI_WT_TELL, .a = to,
                                     .tag = T_SEQ };
            fake_send(&f, &h, &seq, sizeof(seq));
            do
                c = get_counts(counter);
            while (c.by_tag[T_SEQ] < 5);
            cr_assert_eq(c.by_tag[T_SEQ], 5);
            cr_assert_eq(c.out_of_order, 0);
        }
        fake_close(&f); /* round 1: its last message never comes */
    }
    sleep_ms(50);
    struct counts c = get_counts(counter);
    cr_assert_eq(c.by_tag[T_SEQ], 5, "the unfinished batch was dropped");
    two_down(&t);
}

/* ---- flow control, silence ---------------------------------------------- */

Test(net, a_peer_that_stops_reading_fills_the_queue_and_sends_get_efull)
{
    xo_runtime_t *a = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, 20000000000ull); /* no loss during the test */
    cfg.send_queue = 16;
    cfg.send_queue_bytes = (size_t)1 << 20;
    cfg.on_log = quiet_log;
    cr_assert_eq(xo_node_start(a, &cfg), 0);
    struct fake_listener fl;
    fake_listen(&fl);
    unsigned node;
    fake_accept_async(&fl); /* it answers the handshake, then never reads */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", fl.port);
    cr_assert_eq(xo_node_connect(a, addr, -1, &node), 0);
    xo_ref_t far = { a, ((uint64_t)1 << 40) | ((uint64_t)node << 28) | 5 };
    static unsigned char big[64 << 10];
    int rc = 0;
    long sent = 0;
    for (long i = 0; i < 100000 && rc == 0; i++) {
        rc = xo_tell(far, T_BLOB, big, sizeof(big));
        if (rc == 0)
            sent++;
    }
    cr_assert_eq(rc, XO_EFULL, "after %ld sends: %s", sent, xo_strerror(rc));
    cr_assert_gt(sent, 0);
    /* A monitor of an actor there needs room in the same queue. */
    static struct downs d;
    xo_ref_t w = watcher_new(a, &d);
    xo_monitor_t mon;
    cr_assert_eq(xo_monitor(w, far, &mon), XO_EFULL);
    /* Refused means refused: nothing of it was queued. */
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(a, node, &info), 0);
    cr_assert_leq(info.msgs_sent, (uint64_t)sent);
    fake_listener_close(&fl);
    wait_until(node_state(a, node) != XO_NODE_UP);
    stop_runtime(a);
}

Test(net, a_silent_peer_is_lost_within_the_loss_timeout)
{
    xo_runtime_t *a = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, 400000000ull);
    cfg.reconnect = false;
    cfg.on_log = quiet_log;
    cr_assert_eq(xo_node_start(a, &cfg), 0);
    struct fake_listener fl;
    fake_listen(&fl);
    fake_accept_async(&fl); /* it never answers a heartbeat */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", fl.port);
    unsigned node;
    cr_assert_eq(xo_node_connect(a, addr, -1, &node), 0);
    struct events ev;
    events_watch(&ev, a);
    xo_ref_t far = { a, ((uint64_t)1 << 40) | ((uint64_t)node << 28) | 5 };
    xo_future_t *f;
    cr_assert_eq(xo_call(far, T_PLAIN, NULL, 0, &f), 0);
    cr_assert_eq(xo_future_wait(f, -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f, 0, &r), XO_ENODELOST, "%s", r.error);
    xo_future_release(f);
    events_wait(&ev, node, XO_NODE_DOWN);
    cr_assert_eq(ev.last_reason_down, XO_ENODELOST);
    cr_assert_eq(xo_tell(far, T_PLAIN, NULL, 0), XO_ENODELOST);
    events_stop(&ev);
    fake_listener_close(&fl);
    stop_runtime(a);
}

Test(net, an_idle_connection_stays_up_on_heartbeats)
{
    struct two t;
    two_up(&t, 1000000000ull);
    sleep_ms(2500); /* two and a half loss timeouts with nothing to send */
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(t.a, t.b_at_a, &info), 0);
    cr_assert_eq(info.state, XO_NODE_UP);
    cr_assert_eq(info.losses, 0);
    cr_assert_gt(info.rtt_ns, 0, "heartbeats were echoed");
    two_down(&t);
}

Test(net, a_disconnect_loses_the_node_for_good_on_both_ends)
{
    struct two t;
    two_up(&t, 2000000000ull);
    struct events ev;
    events_watch(&ev, t.a);
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    unsigned a_at_b;
    wait_until(xo_node_find(t.b, "a", &a_at_b) == 0 &&
               node_state(t.b, a_at_b) == XO_NODE_UP);
    cr_assert_eq(xo_node_disconnect(t.a, t.b_at_a), 0);
    events_wait(&ev, t.b_at_a, XO_NODE_DOWN);
    cr_assert_eq(ev.last_reason_down, XO_ECLOSED);
    cr_assert_eq(xo_tell(echo, T_PLAIN, NULL, 0), XO_ENODELOST);
    wait_until(node_state(t.b, a_at_b) == XO_NODE_DOWN);
    sleep_ms(100); /* several reconnect intervals: none comes */
    cr_assert_eq(node_state(t.a, t.b_at_a), XO_NODE_DOWN);
    /* Connecting again is the user's to do, and gives the same number. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", t.port_b);
    unsigned again;
    cr_assert_eq(xo_node_connect(t.a, addr, -1, &again), 0);
    cr_assert_eq(again, t.b_at_a);
    call_echo_ok(echo);
    events_stop(&ev);
    two_down(&t);
}

Test(net, calls_past_the_incoming_limit_fail_with_efull)
{
    xo_runtime_t *a = start_runtime(2), *b = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, 2000000000ull);
    cfg.on_log = quiet_log;
    cr_assert_eq(xo_node_start(a, &cfg), 0);
    cfg.max_incoming_calls = 3;
    cr_assert_eq(xo_node_start(b, &cfg), 0);
    cr_assert_eq(net_actors_setup(b), 0);
    unsigned port, node;
    cr_assert_eq(xo_node_port(b, &port), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    cr_assert_eq(xo_node_connect(a, addr, -1, &node), 0);
    xo_ref_t holder = remote_lookup(a, node, "holder");
    xo_future_t *f[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(xo_call(holder, T_PLAIN, NULL, 0, &f[i]), 0);
    /* Three are held there; the fourth is refused. */
    cr_assert_eq(xo_future_wait(f[3], -1), 0);
    xo_result_t r;
    cr_assert_eq(xo_future_result(f[3], 0, &r), XO_EFULL, "%s", r.error);
    for (int i = 0; i < 3; i++)
        cr_assert_not(xo_future_done(f[i]), "call %d is held", i);
    stop_runtime(b); /* the holder answers its three as it ends */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(xo_future_wait(f[i], -1), 0);
        xo_future_release(f[i]);
    }
    stop_runtime(a);
}

/* Each allocation of a remote call, tell and monitor may fail: the caller
   gets XO_ENOMEM (or, for one the I/O thread made, the call completes
   with it), nothing is left behind (the sanitizer builds check), and the
   next ones work. */
Test(net, remote_sends_survive_each_failed_allocation)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    int failures = 0;
    for (long k = 1; k <= 6; k++) {
        xi_mem_fail_after(&t.a->mem, k);
        xo_future_t *f = NULL;
        int rc = xo_call(echo, T_PLAIN, "x", 1, &f);
        xi_mem_fail_after(&t.a->mem, 0);
        if (rc != 0) {
            cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k,
                         xo_strerror(rc));
            failures++;
            continue;
        }
        cr_assert_eq(xo_future_wait(f, -1), 0);
        xo_result_t r;
        rc = xo_future_result(f, 0, &r);
        cr_assert(rc == 0 || rc == XO_ENOMEM, "allocation %ld: %s", k,
                  xo_strerror(rc));
        xo_future_release(f);
    }
    cr_assert_geq(failures, 3, "the future, the envelope, the call's record");
    xi_mem_fail_after(&t.a->mem, 1);
    cr_assert_eq(xo_tell(echo, T_PLAIN, NULL, 0), XO_ENOMEM);
    static struct downs d;
    xo_ref_t w = watcher_new(t.a, &d);
    xo_ref_t target = remote_spawn(t.a, t.b_at_a, "counter", NULL);
    xo_monitor_t mon;
    for (long k = 1;; k++) {
        xi_mem_fail_after(&t.a->mem, k);
        int rc = xo_monitor(w, target, &mon);
        xi_mem_fail_after(&t.a->mem, 0);
        if (rc == 0)
            break;
        cr_assert_eq(rc, XO_ENOMEM, "allocation %ld: %s", k, xo_strerror(rc));
        cr_assert_lt(k, 10);
    }
    tell_quit(target);
    downs_wait(&d, 1);
    cr_assert_eq(d.last.reason, XO_EXIT_DESTROYED, "one monitor, one DOWN");
    call_echo_ok(echo);
    sleep_ms(50);
    cr_assert_eq(d.n, 1, "the refused monitors left nothing behind");
    cr_assert_eq(xo_destroy(w), 0);
    two_down(&t);
}

/* On the callee's node, each allocation the answer needs may fail (the
   envelope from the wire, the proxy future, the reply, its frame): the
   call still completes, with its answer, an error, or the loss of the
   connection the callee's node closed rather than drop the answer; none
   waits forever, and the next calls work (after the reconnect). */
Test(net, a_callee_out_of_memory_never_leaves_a_call_waiting)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    int answered = 0, failed = 0;
    for (long k = 1; k <= 8; k++) {
        wait_until(node_state(t.a, t.b_at_a) == XO_NODE_UP);
        xo_future_t *f;
        xi_mem_fail_after(&t.b->mem, k);
        cr_assert_eq(xo_call(echo, T_PLAIN, "x", 1, &f), 0);
        cr_assert_eq(xo_future_wait(f, -1), 0, "allocation %ld", k);
        xi_mem_fail_after(&t.b->mem, 0);
        xo_result_t r;
        int rc = xo_future_result(f, 0, &r);
        cr_assert(rc == 0 || rc == XO_ENOMEM || rc == XO_ENODELOST,
                  "allocation %ld: %s", k, xo_strerror(rc));
        if (rc == 0)
            answered++;
        else
            failed++;
        xo_future_release(f);
    }
    cr_assert_gt(failed, 0, "some allocation on the way failed a call");
    wait_until(node_state(t.a, t.b_at_a) == XO_NODE_UP);
    call_echo_ok(echo);
    (void)answered;
    two_down(&t);
}

static void no_free(void *data, void *extra)
{
    (void)data;
    (void)extra;
}

/* A message that carries more than its bytes and is not a buffer
   message (the one tailed envelope the net layer knows how to send:
   test_net_gpu.c) does not cross: the sender hears XO_ENOSYS and keeps
   it. */
Test(net, a_tailed_message_that_is_no_buffer_message_is_refused)
{
    struct two t;
    two_up(&t, 2000000000ull);
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    struct xi_envelope *env;
    void *extra;
    cr_assert_eq(xi_envelope_new_tailed(t.a, T_PLAIN, 4, 16, no_free, &env,
                                        &extra),
                 0);
    cr_assert_eq(xi_enqueue(echo, env), XO_ENOSYS);
    xi_envelope_free(t.a, env);
    call_echo_ok(echo);
    two_down(&t);
}

Test(net, node_api_errors)
{
    xo_runtime_t *rt = start_runtime(1);
    xo_node_config_t cfg;
    unsigned n;
    xo_ref_t r;
    cr_assert_eq(xo_node_connect(rt, "127.0.0.1:1", 0, &n), XO_ENOTEXIST,
                 "no node started");
    net_test_config(&cfg, 2000000000ull);
    cfg.loss_timeout_ns = cfg.heartbeat_ns; /* must be twice at least */
    cr_assert_eq(xo_node_start(rt, &cfg), XO_EINVAL);
    net_test_config(&cfg, 2000000000ull);
    cfg.listen_addr = "not an address";
    cr_assert_eq(xo_node_start(rt, &cfg), XO_EINVAL);
    net_test_config(&cfg, 2000000000ull);
    cr_assert_eq(xo_node_start(rt, &cfg), 0);
    cr_assert_eq(xo_node_start(rt, &cfg), XO_EINVAL, "one node a runtime");
    cr_assert_eq(xo_node_connect(rt, "nonsense", 0, &n), XO_EINVAL);
    cr_assert_eq(xo_node_connect(rt, "127.0.0.1:99999", 0, &n), XO_EINVAL);
    /* Nobody listens on a port we just closed. */
    int port = free_port();
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cr_assert_eq(xo_node_connect(rt, addr, -1, &n), XO_ECONNREFUSED);
    cr_assert_eq(xo_node_lookup(rt, 7, "x", -1, &r), XO_ENOTEXIST);
    cr_assert_eq(xo_node_spawn(rt, 7, "echo", NULL, NULL, 0, -1, &r),
                 XO_ENOTEXIST);
    xo_ref_t nowhere = { rt, ((uint64_t)1 << 40) | ((uint64_t)9 << 28) | 1 };
    cr_assert_eq(xo_tell(nowhere, 1, NULL, 0), XO_ENOTEXIST);
    cr_assert_eq(xo_node_register(rt, "echo", &net_echo_def, NULL), 0);
    cr_assert_eq(xo_node_register(rt, "echo", &net_echo_def, NULL),
                 XO_EEXIST);
    unsigned char s[XO_NODE_SECRET_SIZE];
    cr_assert_eq(xo_node_secret_parse("00ff", s), XO_EINVAL);
    char hex[65];
    for (int i = 0; i < 64; i++)
        hex[i] = "0123456789abcdef"[i % 16];
    hex[64] = '\0';
    cr_assert_eq(xo_node_secret_parse(hex, s), 0);
    cr_assert_eq(s[0], 0x01);
    cr_assert_eq(s[31], 0xef);
    hex[10] = 'g';
    cr_assert_eq(xo_node_secret_parse(hex, s), XO_EINVAL);
    stop_runtime(rt);
}

/* ---- the control lane ------------------------------------------------------ */

static struct xi_lane_info lane_of(xo_runtime_t *rt, unsigned node)
{
    struct xi_lane_info li;
    cr_assert_eq(xi_net_lane_info(rt, node, &li), 0);
    return li;
}

static unsigned node_named(xo_runtime_t *rt, const char *name)
{
    unsigned n;
    cr_assert_eq(xo_node_find(rt, name, &n), 0);
    return n;
}

/* Both ends of A-B see their lane up, for the n-th time. */
static void lanes_up(struct two *t, uint64_t n)
{
    unsigned a_at_b = node_named(t->b, "a");
    wait_until(lane_of(t->a, t->b_at_a).up && lane_of(t->b, a_at_b).up &&
               lane_of(t->a, t->b_at_a).ups == n &&
               lane_of(t->b, a_at_b).ups == n);
}

/* A HELLO that opens a lane in the name of node `name`, incarnation inc. */
static void lane_hello(struct fake *f, const char *name, uint64_t inc)
{
    fake_hello_as(f, name, XI_WIRE_ROLE_LANE, inc);
}

static uint64_t refused_at(xo_runtime_t *rt)
{
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(rt, 0, &info), 0);
    return info.refused;
}

/* A lane handshake refused: the node's BYE carries `code`, then it closes;
   it counted the refusal, and A-B is untouched (no loss, lane up); the
   listener still takes a node. */
static void lane_refused(struct two *t, struct fake *f, int code,
                         uint64_t refused_before)
{
    struct xi_wire_hdr h;
    cr_assert_eq(fake_read_frame(f, &h, NULL, 0), 0);
    cr_assert_eq(h.type, XI_WT_BYE, "a %s", xi_wire_type_name(h.type));
    cr_assert_eq((int)h.c, code, "refused with %s", xo_strerror((int)h.c));
    cr_assert(fake_closed(f));
    fake_close(f);
    cr_assert_eq(refused_at(t->b), refused_before + 1);
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(t->a, t->b_at_a, &info), 0);
    cr_assert_eq(info.state, XO_NODE_UP);
    cr_assert_eq(info.losses, 0);
    cr_assert(lane_of(t->a, t->b_at_a).up);
    struct fake other;
    fake_connect(&other, t->port_b);
    fake_authenticate(&other, "other");
    fake_close(&other);
    call_echo_ok(remote_lookup(t->a, t->b_at_a, "echo"));
}

Test(net, the_control_lane_comes_up_with_the_connection_and_after_a_reconnect)
{
    struct two t;
    two_up(&t, 2000000000ull);
    lanes_up(&t, 1);
    cr_assert_eq(xi_net_sever(t.b), 0);
    lanes_up(&t, 2);
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(t.a, t.b_at_a, &info), 0);
    cr_assert_eq(info.losses, 1);
    call_echo_ok(remote_lookup(t.a, t.b_at_a, "echo"));
    two_down(&t);
}

Test(net, closing_the_control_lane_alone_loses_the_node_once_and_it_comes_back)
{
    struct two t;
    two_up(&t, 2000000000ull);
    lanes_up(&t, 1);
    struct events ev;
    events_watch(&ev, t.a);
    xo_ref_t echo = remote_lookup(t.a, t.b_at_a, "echo");
    cr_assert_eq(xi_net_sever_lane(t.a, t.b_at_a), 0);
    events_wait(&ev, t.b_at_a, XO_NODE_CONNECTING);
    events_wait(&ev, t.b_at_a, XO_NODE_UP);
    lanes_up(&t, 2);
    /* Lost once at each end: the lane and its data connection together. */
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(t.a, t.b_at_a, &info), 0);
    cr_assert_eq(info.losses, 1);
    cr_assert_eq(xo_node_info(t.b, node_named(t.b, "a"), &info), 0);
    cr_assert_eq(info.losses, 1);
    call_echo_ok(echo);
    events_stop(&ev);
    two_down(&t);
}

Test(net, a_control_lane_with_a_wrong_proof_is_refused_and_the_listener_goes_on)
{
    struct two t;
    two_up(&t, 2000000000ull);
    lanes_up(&t, 1);
    xo_node_info_t a_info;
    cr_assert_eq(xo_node_info(t.b, node_named(t.b, "a"), &a_info), 0);
    uint64_t refused = refused_at(t.b);
    /* A's very name and incarnation, but no proof of A's session and
       secret: the proof covers the data connection's nonces. */
    struct fake f;
    fake_connect(&f, t.port_b);
    lane_hello(&f, "a", a_info.incarnation);
    cr_assert_eq(fake_read_hello(&f), 0);
    unsigned char mac[XI_WIRE_MAC];
    xi_auth_proof(net_test_secret, XI_AUTH_CONNECTOR, f.mine, f.mine_size,
                  f.theirs, f.theirs_size, mac);
    struct xi_wire_hdr h = { .type = XI_WT_AUTH };
    fake_send(&f, &h, mac, sizeof(mac));
    lane_refused(&t, &f, XO_EAUTH, refused);
    two_down(&t);
}

Test(net, a_control_lane_naming_an_unknown_session_is_refused)
{
    struct two t;
    two_up(&t, 2000000000ull);
    lanes_up(&t, 1);
    xo_node_info_t a_info;
    cr_assert_eq(xo_node_info(t.b, node_named(t.b, "a"), &a_info), 0);
    struct fake f;
    /* A node B does not know; then A's name with another incarnation. */
    const char *names[2] = { "nobody", "a" };
    for (int i = 0; i < 2; i++) {
        uint64_t refused = refused_at(t.b);
        fake_connect(&f, t.port_b);
        lane_hello(&f, names[i], a_info.incarnation ^ 0x10);
        cr_assert_eq(fake_read_hello(&f), 0);
        lane_refused(&t, &f, XO_ENOTEXIST, refused);
    }
    two_down(&t);
}

Test(net, heartbeats_flow_on_the_control_lane_while_a_large_message_is_in_flight)
{
    struct two t;
    two_heartbeat_ns = 1000000ull; /* 1 ms */
    two_up(&t, 2000000000ull);
    two_heartbeat_ns = 0;
    lanes_up(&t, 1);
    unsigned a_at_b = node_named(t.b, "a");
    xo_ref_t counter = remote_lookup(t.a, t.b_at_a, "counter");
    size_t size = (size_t)32 << 20;
    unsigned char *big = malloc(size);
    cr_assert_not_null(big);
    for (size_t i = 0; i < size; i++)
        big[i] = blob_byte(i, size);
    uint64_t before = lane_of(t.b, a_at_b).echoes_in_transfer;
    cr_assert_eq(xo_tell(counter, T_BLOB, big, size), 0);
    free(big);
    struct counts c;
    do
        c = get_counts(counter);
    while (c.by_tag[T_BLOB] < 1);
    cr_assert_eq(c.blob_bytes, size);
    cr_assert_eq(c.bad_blobs, 0);
    /* B, receiving the message, sent heartbeats on its lane meanwhile and
       A answered them while it was writing the message: their echoes
       reached B while the message was still arriving. */
    struct xi_lane_info li = lane_of(t.b, a_at_b);
    cr_assert_gt(li.echoes_in_transfer, before,
                 "no heartbeat echo during the transfer (%llu in all)",
                 (unsigned long long)li.echoes);
    two_down(&t);
}

static _Atomic int no_lane_lines;

static void lane_log(xo_runtime_t *rt, const char *line, void *user)
{
    (void)rt;
    (void)user;
    if (strstr(line, "has no control connection") != NULL)
        atomic_fetch_add(&no_lane_lines, 1);
}

Test(net, a_peer_without_a_control_lane_keeps_its_one_connection)
{
    xo_runtime_t *a = start_runtime(2);
    xo_node_config_t cfg;
    net_test_config(&cfg, 20000000000ull); /* no loss during the test */
    cfg.handshake_timeout_ns = 300000000ull;
    cfg.on_log = lane_log;
    cr_assert_eq(xo_node_start(a, &cfg), 0);
    /* A peer as a build before lanes: it answers the first connection's
       handshake and never the lane's. */
    struct fake_listener fl;
    fake_listen(&fl);
    fake_accept_async(&fl);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", fl.port);
    unsigned node;
    cr_assert_eq(xo_node_connect(a, addr, -1, &node), 0);
    wait_until(atomic_load(&no_lane_lines) == 1);
    xo_node_info_t info;
    cr_assert_eq(xo_node_info(a, node, &info), 0);
    cr_assert_eq(info.state, XO_NODE_UP);
    cr_assert_eq(info.losses, 0);
    struct xi_lane_info li = lane_of(a, node);
    cr_assert(!li.up);
    cr_assert_eq(li.ups, 0);
    xo_ref_t far = { a, ((uint64_t)1 << 40) | ((uint64_t)node << 28) | 5 };
    cr_assert_eq(xo_tell(far, T_PLAIN, NULL, 0), 0);
    fake_listener_close(&fl);
    wait_until(node_state(a, node) != XO_NODE_UP);
    stop_runtime(a);
}
