#define _POSIX_C_SOURCE 200809L
/*
 * pingpong.c -- two actors bounce a counter. `ping` sends n to `pong`, pong
 * echoes it, ping checks it and sends n + 1, until n reaches the number of
 * round trips. The main thread waits for the result on a pipe.
 *
 *   example_pingpong [round_trips]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <xoscar/xoscar.h>

enum { BALL = 1, START = 2 };

struct ping {
    xo_ref_t pong;
    uint64_t rounds, done;
    int notify_fd; /* written once when done */
};

struct ping_args {
    xo_ref_t pong;
    uint64_t rounds;
    int notify_fd;
};

static int ping_create(xo_ctx_t *ctx, void *state, const void *arg,
                       size_t size)
{
    struct ping *p = state;
    const struct ping_args *a = arg;
    (void)ctx;
    if (size != sizeof(*a))
        return XO_EINVAL;
    p->pong = a->pong;
    p->rounds = a->rounds;
    p->notify_fd = a->notify_fd;
    return 0;
}

static int ping_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct ping *p = state;
    (void)ctx;
    uint64_t n = 0;
    if (m->tag == BALL) {
        n = *(const uint64_t *)m->data;
        if (n != p->done)
            return XO_EINVAL; /* the echo must be what we sent */
        p->done = ++n;
    }
    if (n == p->rounds) {
        char ok = 1;
        return write(p->notify_fd, &ok, 1) == 1 ? 0 : XO_EINVAL;
    }
    return xo_tell(p->pong, BALL, &n, sizeof(n));
}

static int pong_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)state;
    return xo_tell(m->sender, BALL, m->data, m->size);
}

static const xo_actor_def_t ping_def = {
    .name = "ping", .state_size = sizeof(struct ping),
    .on_create = ping_create, .on_message = ping_message,
};
static const xo_actor_def_t pong_def = {
    .name = "pong", .on_message = pong_message,
};

static bool parse_rounds(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || v == 0 || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t rounds = 100000;
    if (argc > 2 || (argc == 2 && !parse_rounds(argv[1], &rounds))) {
        fprintf(stderr, "usage: %s [ROUND_TRIPS]  (a whole number > 0, "
                        "default 100000)\n", argv[0]);
        return 2;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pingpong: pipe");
        return 1;
    }
    xo_runtime_t *rt;
    if (xo_runtime_start(NULL, &rt) != 0)
        return 1;
    xo_ref_t pong, ping;
    struct ping_args args = { .rounds = rounds, .notify_fd = fds[1] };
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    opts.arg = &args;
    opts.arg_size = sizeof(args);
    int rc = xo_spawn(rt, &pong_def, NULL, &pong);
    args.pong = pong;
    if (rc == 0)
        rc = xo_spawn(rt, &ping_def, &opts, &ping);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rc == 0)
        rc = xo_tell(ping, START, NULL, 0);
    char done = 0;
    if (rc == 0 && read(fds[0], &done, 1) != 1)
        rc = XO_EINVAL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    xo_runtime_stop(rt);
    xo_runtime_free(rt);
    if (rc != 0) {
        fprintf(stderr, "pingpong: %s\n", xo_strerror(rc));
        return 1;
    }
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%llu round trips in %.3f s (%.0f ns per round trip)\n",
           (unsigned long long)rounds, s, s * 1e9 / (double)rounds);
    return 0;
}
