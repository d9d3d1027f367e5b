/* hello.c -- the smallest xoscar program: one actor, one message. */
#include <stdio.h>
#include <xoscar/xoscar.h>

enum { GREET = 1 };

struct greeter {
    int greeted;
};

static int greeter_on_message(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    struct greeter *g = state;
    (void)ctx;
    if (m->tag == GREET) {
        printf("hello, %.*s!\n", (int)m->size, (const char *)m->data);
        g->greeted++;
    }
    return 0;
}

static int greeter_on_destroy(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    printf("greeter said hello %d time(s)\n",
           ((struct greeter *)state)->greeted);
    return 0;
}

static const xo_actor_def_t greeter = {
    .name = "greeter",
    .state_size = sizeof(struct greeter),
    .on_message = greeter_on_message,
    .on_destroy = greeter_on_destroy,
};

int main(void)
{
    xo_runtime_t *rt;
    int rc = xo_runtime_start(NULL, &rt);
    if (rc != 0) {
        fprintf(stderr, "start: %s\n", xo_strerror(rc));
        return 1;
    }
    xo_ref_t g;
    rc = xo_spawn(rt, &greeter, NULL, &g);
    if (rc == 0)
        rc = xo_tell(g, GREET, "world", 5);
    if (rc != 0)
        fprintf(stderr, "hello: %s\n", xo_strerror(rc));
    xo_runtime_stop(rt); /* handles the message, then runs on_destroy */
    xo_runtime_free(rt);
    return rc == 0 ? 0 : 1;
}
