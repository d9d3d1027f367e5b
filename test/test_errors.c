/*
 * Error codes and argument checking: every code has a name and a message,
 * and every API entry point rejects bad arguments with XO_EINVAL instead of
 * crashing.
 */
#include "support.h"

#include <string.h>

Test(errors, every_code_has_a_name_and_a_message)
{
    const int codes[] = { XO_EINVAL,    XO_ENOMEM,    XO_EEXIST,
                          XO_ENOTEXIST, XO_ECLOSED,   XO_ETIMEDOUT,
                          XO_EDEADLK,   XO_ECANCELED, XO_EEOF,
                          XO_ENOSLOT,   XO_EFULL,     XO_EDEPTH,
                          XO_ELINKED,   XO_EADDRINUSE, XO_ENOSYS };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        cr_assert(codes[i] < 0);
        cr_assert(strcmp(xo_strerror(codes[i]), "unknown error") != 0);
        cr_assert(strcmp(xo_err_name(codes[i]), "UNKNOWN") != 0);
    }
    cr_assert_str_eq(xo_err_name(XO_ENOTEXIST), "ENOTEXIST");
    cr_assert_str_eq(xo_strerror(0), "success");
    cr_assert_str_eq(xo_strerror(12345), "unknown error");
    cr_assert_str_eq(xo_err_name(12345), "UNKNOWN");
}

static const xo_actor_def_t plain = { .name = "plain" };

Test(errors, bad_arguments_are_rejected_with_einval)
{
    xo_config_t cfg;
    xo_config_init(&cfg);
    xo_runtime_t *rt = NULL;
    cr_assert_eq(xo_runtime_start(&cfg, NULL), XO_EINVAL);
    cfg.batch = 0;
    cr_assert_eq(xo_runtime_start(&cfg, &rt), XO_EINVAL);
    cr_assert_null(rt);

    rt = start_runtime(1);
    xo_ref_t ref;
    xo_spawn_opts_t opts;
    xo_spawn_opts_init(&opts);
    cr_assert_eq(xo_spawn(NULL, &plain, NULL, &ref), XO_EINVAL);
    cr_assert_eq(xo_spawn(rt, NULL, NULL, &ref), XO_EINVAL);
    cr_assert_eq(xo_spawn(rt, &plain, NULL, NULL), XO_EINVAL);
    opts.pool = 1; /* only pool 0 exists */
    cr_assert_eq(xo_spawn(rt, &plain, &opts, &ref), XO_EINVAL);
    opts.pool = -7;
    cr_assert_eq(xo_spawn(rt, &plain, &opts, &ref), XO_EINVAL);
    xo_spawn_opts_init(&opts);
    char long_uid[XO_UID_MAX + 2];
    memset(long_uid, 'u', sizeof(long_uid) - 1);
    long_uid[sizeof(long_uid) - 1] = 0;
    opts.uid = long_uid;
    cr_assert_eq(xo_spawn(rt, &plain, &opts, &ref), XO_EINVAL);
    opts.uid = "";
    cr_assert_eq(xo_spawn(rt, &plain, &opts, &ref), XO_EINVAL);
    xo_spawn_opts_init(&opts);
    opts.arg_size = 4; /* with arg == NULL */
    cr_assert_eq(xo_spawn(rt, &plain, &opts, &ref), XO_EINVAL);
    xo_actor_def_t huge = plain;
    huge.state_size = SIZE_MAX; /* would wrap the cell size */
    cr_assert_eq(xo_spawn(rt, &huge, NULL, &ref), XO_EINVAL);
    huge.state_size = XO_STATE_MAX + 1;
    cr_assert_eq(xo_spawn(rt, &huge, NULL, &ref), XO_EINVAL);

    cr_assert_eq(xo_spawn(rt, &plain, NULL, &ref), 0);
    cr_assert_eq(xo_tell(ref, 1, NULL, 8), XO_EINVAL);
    cr_assert_eq(xo_tell(XO_REF_NONE, 1, "x", 1), XO_EINVAL);
    cr_assert_eq(xo_tell((xo_ref_t){ rt, 0 }, 1, "x", 1), XO_ENOTEXIST);
    cr_assert_eq(xo_tell((xo_ref_t){ rt, 0xffffffffull }, 1, "x", 1),
                 XO_ENOTEXIST, "an index far past the table");
    cr_assert_eq(xo_lookup(rt, NULL, &ref), XO_EINVAL);
    cr_assert_eq(xo_lookup(rt, "", &ref), XO_EINVAL);
    cr_assert_eq(xo_lookup(rt, long_uid, &ref), XO_EINVAL);
    cr_assert_eq(xo_destroy(XO_REF_NONE), XO_EINVAL);
    cr_assert_eq(xo_send(ref, NULL), XO_EINVAL);
    xo_msg_t *m;
    cr_assert_eq(xo_msg_alloc(rt, 1, (size_t)UINT32_MAX + 1, &m), XO_EINVAL);
    /* The size limit is XO_MSG_MAX_SIZE for every kind of send. The data
       pointer is never read past its byte: the size is refused first. */
    char byte = 0;
    xo_future_t *f = NULL;
    cr_assert_eq(xo_tell(ref, 1, &byte, (size_t)UINT32_MAX), XO_EINVAL);
    cr_assert_eq(xo_tell(ref, 1, &byte, XO_MSG_MAX_SIZE + 1), XO_EINVAL);
    cr_assert_eq(xo_tell_after(ref, 1, 1, &byte, XO_MSG_MAX_SIZE + 1),
                 XO_EINVAL);
    cr_assert_eq(xo_call(ref, 1, &byte, XO_MSG_MAX_SIZE + 1, &f), XO_EINVAL);
    cr_assert_null(f);
    xo_batch_item_t big = { 1, &byte, XO_MSG_MAX_SIZE + 1 };
    cr_assert_eq(xo_tell_batch(ref, &big, 1), XO_EINVAL);
    cr_assert_eq(xo_call_batch(ref, &big, 1, &f), XO_EINVAL);
    cr_assert_eq(xo_msg_alloc(rt, 1, XO_MSG_MAX_SIZE + 1, &m), XO_EINVAL);
    cr_assert_eq(xo_msg_wrap(rt, 1, &byte, XO_MSG_MAX_SIZE + 1, NULL, NULL,
                             &m),
                 XO_EINVAL);
    /* ... and exactly XO_MSG_MAX_SIZE is taken (the block is reserved,
       never touched). */
    cr_assert_eq(xo_msg_alloc(rt, 1, XO_MSG_MAX_SIZE, &m), 0);
    cr_assert_eq(m->size, XO_MSG_MAX_SIZE);
    xo_msg_free(rt, m);
    cr_assert_eq(xo_msg_wrap(rt, 1, &byte, XO_MSG_MAX_SIZE, NULL, NULL, &m),
                 0);
    xo_msg_free(rt, m);
    cr_assert_eq(xo_msg_alloc(NULL, 1, 8, &m), XO_EINVAL);
    cr_assert_eq(xo_msg_wrap(rt, 1, NULL, 8, NULL, NULL, &m), XO_EINVAL);
    xo_pool_info_t info;
    cr_assert_eq(xo_pool_info(rt, 1, &info), XO_EINVAL);
    cr_assert_eq(xo_actor_stats(ref, NULL), XO_EINVAL);
    cr_assert_not(xo_ref_alive(XO_REF_NONE));
    stop_runtime(rt);
}
