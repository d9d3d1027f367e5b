/*
 * none.c -- the node API in a build without the net layer (-DXO_NET=OFF):
 * every call answers XO_ENOSYS, so a program written for nodes still links
 * and learns at run time that this build cannot join a network.
 */
#include <string.h>

#include "xoscar/xoscar.h"

void xo_node_config_init(xo_node_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

int xo_node_secret_parse(const char *hex,
                         unsigned char out[XO_NODE_SECRET_SIZE])
{
    (void)hex;
    (void)out;
    return XO_ENOSYS;
}

int xo_node_start(xo_runtime_t *rt, const xo_node_config_t *cfg)
{
    (void)rt;
    (void)cfg;
    return XO_ENOSYS;
}

int xo_node_port(xo_runtime_t *rt, unsigned *port)
{
    (void)rt;
    (void)port;
    return XO_ENOSYS;
}

int xo_node_connect(xo_runtime_t *rt, const char *address,
                    int64_t timeout_ns, unsigned *node)
{
    (void)rt;
    (void)address;
    (void)timeout_ns;
    (void)node;
    return XO_ENOSYS;
}

int xo_node_disconnect(xo_runtime_t *rt, unsigned node)
{
    (void)rt;
    (void)node;
    return XO_ENOSYS;
}

int xo_node_find(xo_runtime_t *rt, const char *name, unsigned *node)
{
    (void)rt;
    (void)name;
    (void)node;
    return XO_ENOSYS;
}

int xo_node_info(xo_runtime_t *rt, unsigned node, xo_node_info_t *out)
{
    (void)rt;
    (void)node;
    (void)out;
    return XO_ENOSYS;
}

int xo_node_lookup(xo_runtime_t *rt, unsigned node, const char *uid,
                   int64_t timeout_ns, xo_ref_t *out)
{
    (void)rt;
    (void)node;
    (void)uid;
    (void)timeout_ns;
    (void)out;
    return XO_ENOSYS;
}

int xo_node_register(xo_runtime_t *rt, const char *type,
                     const xo_actor_def_t *def, const xo_spawn_opts_t *opts)
{
    (void)rt;
    (void)type;
    (void)def;
    (void)opts;
    return XO_ENOSYS;
}

int xo_node_spawn(xo_runtime_t *rt, unsigned node, const char *type,
                  const char *uid, const void *arg, size_t arg_size,
                  int64_t timeout_ns, xo_ref_t *out)
{
    (void)rt;
    (void)node;
    (void)type;
    (void)uid;
    (void)arg;
    (void)arg_size;
    (void)timeout_ns;
    (void)out;
    return XO_ENOSYS;
}

int xo_node_subscribe(xo_ref_t watcher, bool on)
{
    (void)watcher;
    (void)on;
    return XO_ENOSYS;
}
