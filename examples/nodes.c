/*
 * nodes.c -- two nodes talking over TCP (docs/net.md), in two commands:
 *
 *   nodes serve [PORT]     a node on 127.0.0.1:PORT (default 7300) with an
 *                          actor "counter" and a spawnable type "greeter";
 *                          runs until Ctrl-C
 *   nodes call HOST:PORT   another node: it connects, sends the counter a
 *                          thousand tells, asks for the sum, spawns a
 *                          greeter over there and calls it
 *
 * Both read the shared secret from XOSCAR_SECRET (64 hex digits, e.g. from
 * `openssl rand -hex 32`); without it they use a demonstration secret and
 * say so. Payloads are plain C values here: both ends are this program.
 */
#define _POSIX_C_SOURCE 200809L /* sigwait, pthread_sigmask */

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xoscar/xoscar.h>

enum { ADD = 1, SUM = 2, HELLO = 3 };

/* ---- the serving node's actors ---- */

static int counter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    uint64_t *sum = state;
    if (m->tag == ADD && m->size == sizeof(uint64_t))
        *sum += *(const uint64_t *)m->data;
    if (m->tag == SUM && m->request != NULL)
        return xo_reply(m->request, SUM, sum, sizeof(*sum));
    return 0;
}

static const xo_actor_def_t counter_def = {
    .name = "counter", .state_size = sizeof(uint64_t),
    .on_message = counter_message,
};

struct greeter {
    char name[64];
};

static int greeter_create(xo_ctx_t *ctx, void *state, const void *arg,
                          size_t size)
{
    (void)ctx;
    struct greeter *g = state;
    snprintf(g->name, sizeof(g->name), "%.*s", (int)size, (const char *)arg);
    return 0;
}

static int greeter_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    struct greeter *g = state;
    if (m->tag != HELLO || m->request == NULL)
        return 0;
    char text[160];
    int n = snprintf(text, sizeof(text), "hello %.*s, this is %s",
                     (int)m->size, (const char *)m->data, g->name);
    return xo_reply(m->request, HELLO, text, (size_t)n + 1);
}

static const xo_actor_def_t greeter_def = {
    .name = "greeter", .state_size = sizeof(struct greeter),
    .on_create = greeter_create, .on_message = greeter_message,
};

/* ---- both ---- */

static void on_event(xo_runtime_t *rt, const xo_node_event_t *ev, void *user)
{
    (void)rt;
    (void)user;
    printf("node %u (%s) is %s\n", ev->node, ev->name,
           ev->state == XO_NODE_UP ? "up" : "gone");
    fflush(stdout);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "nodes: %s: %s\n", what, xo_strerror(rc));
    return 1;
}

static void secret(xo_node_config_t *cfg)
{
    const char *hex = getenv("XOSCAR_SECRET");
    if (hex != NULL && xo_node_secret_parse(hex, cfg->secret) == 0)
        return;
    fprintf(stderr, "nodes: XOSCAR_SECRET is not set (64 hex digits): "
                    "using the demonstration secret\n");
    for (unsigned i = 0; i < XO_NODE_SECRET_SIZE; i++)
        cfg->secret[i] = (unsigned char)(0xA5 ^ (i * 29));
}

static int serve(unsigned port)
{
    /* Ctrl-C is waited for below, not delivered to a thread. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    xo_runtime_t *rt;
    int rc = xo_runtime_start(NULL, &rt);
    if (rc != 0)
        return fail("xo_runtime_start", rc);
    xo_node_config_t cfg;
    xo_node_config_init(&cfg);
    secret(&cfg);
    cfg.name = "server";
    cfg.listen_port = port;
    cfg.on_event = on_event;
    xo_spawn_opts_t so;
    xo_spawn_opts_init(&so);
    so.uid = "counter";
    xo_ref_t counter;
    if ((rc = xo_node_start(rt, &cfg)) != 0 ||
        (rc = xo_node_register(rt, "greeter", &greeter_def, NULL)) != 0 ||
        (rc = xo_spawn(rt, &counter_def, &so, &counter)) != 0 ||
        (rc = xo_node_port(rt, &port)) != 0) {
        xo_runtime_free(rt);
        return fail("serve", rc);
    }
    printf("node server listening on 127.0.0.1:%u (Ctrl-C stops it)\n", port);
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    printf("stopping\n");
    return xo_runtime_free(rt) == 0 ? 0 : 1;
}

static int call(const char *address)
{
    xo_runtime_t *rt;
    int rc = xo_runtime_start(NULL, &rt);
    if (rc != 0)
        return fail("xo_runtime_start", rc);
    xo_node_config_t cfg;
    xo_node_config_init(&cfg);
    secret(&cfg);
    cfg.name = "client";
    cfg.listen = false;
    unsigned node;
    xo_ref_t counter, greeter;
    xo_future_t *f = NULL;
    xo_result_t r;
    if ((rc = xo_node_start(rt, &cfg)) != 0 ||
        (rc = xo_node_connect(rt, address, 5000000000ll, &node)) != 0) {
        xo_runtime_free(rt);
        return fail(address, rc);
    }
    printf("connected to %s: node %u\n", address, node);
    /* A thousand tells to an actor over there, in order, then a call. */
    if ((rc = xo_node_lookup(rt, node, "counter", -1, &counter)) != 0)
        goto out;
    for (uint64_t i = 1; i <= 1000; i++)
        while ((rc = xo_tell(counter, ADD, &i, sizeof(i))) == XO_EFULL)
            sched_yield(); /* the send queue is full: try again */
    if (rc != 0 || (rc = xo_call(counter, SUM, NULL, 0, &f)) != 0 ||
        (rc = xo_future_wait(f, -1)) != 0 ||
        (rc = xo_future_result(f, 0, &r)) != 0)
        goto out;
    printf("the counter over there holds %llu after 1000 tells\n",
           (unsigned long long)*(const uint64_t *)r.data);
    xo_future_release(f);
    f = NULL;
    /* An actor spawned over there by its type's name, then called. */
    if ((rc = xo_node_spawn(rt, node, "greeter", NULL, "Ada", 3, -1,
                            &greeter)) != 0 ||
        (rc = xo_call(greeter, HELLO, "client", 6, &f)) != 0 ||
        (rc = xo_future_wait(f, -1)) != 0 ||
        (rc = xo_future_result(f, 0, &r)) != 0)
        goto out;
    printf("greeter says: %s\n", (const char *)r.data);
out:
    if (f != NULL)
        xo_future_release(f);
    xo_runtime_free(rt);
    return rc == 0 ? 0 : fail("call", rc);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0 && argc <= 3) {
        char *end = NULL;
        unsigned long port = argc == 3 ? strtoul(argv[2], &end, 10) : 7300;
        if (argc == 2 || (*end == '\0' && port <= 65535))
            return serve((unsigned)port);
    } else if (argc == 3 && strcmp(argv[1], "call") == 0) {
        return call(argv[2]);
    }
    fprintf(stderr, "usage: nodes serve [PORT]   (0: any free port)\n"
                    "       nodes call HOST:PORT\n");
    return 2;
}
