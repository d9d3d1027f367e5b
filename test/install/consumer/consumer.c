/* A program built against the installed xoscar package. */
#include <stdio.h>
#include <xoscar/xoscar.h>

static int count(xo_ctx_t *ctx, void *state, const xo_msg_t *m)
{
    (void)ctx;
    (void)m;
    (*(int *)state)++;
    return 0;
}

static int report(xo_ctx_t *ctx, void *state)
{
    (void)ctx;
    printf("consumer: %d messages handled\n", *(int *)state);
    return 0;
}

static const xo_actor_def_t def = {
    .name = "counter", .state_size = sizeof(int),
    .on_message = count, .on_destroy = report,
};

int main(void)
{
    xo_runtime_t *rt;
    xo_ref_t r;
    if (xo_runtime_start(NULL, &rt) != 0 || xo_spawn(rt, &def, NULL, &r) != 0)
        return 1;
    for (int i = 0; i < 3; i++)
        if (xo_tell(r, 1, &i, sizeof(i)) != 0)
            return 1;
    xo_runtime_stop(rt);
    xo_runtime_free(rt);
    return 0;
}
