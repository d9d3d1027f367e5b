/*
 * net_node.c -- the other node of the net suite's two-process tests: a
 * runtime that joins the network with the test secret, registers and
 * spawns the actors of net_actors.h, prints "port N" on stdout, and runs
 * until its stdin closes (then it stops cleanly and exits 0) or it is
 * killed (the SIGKILL test).
 *
 *   net_node [--listen ADDR] [--port N] [--name NAME] [--loss-ms MS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_actors.h"

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1", *name = NULL;
    unsigned port = 0;
    uint64_t loss_ms = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--loss-ms") == 0)
            loss_ms = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "net_node: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    xo_config_t cfg;
    xo_config_init(&cfg);
    cfg.pools = 2;
    cfg.spin_ns = 5000;
    xo_runtime_t *rt;
    int rc = xo_runtime_start(&cfg, &rt);
    if (rc != 0) {
        fprintf(stderr, "net_node: runtime: %s\n", xo_strerror(rc));
        return 1;
    }
    xo_node_config_t ncfg;
    net_test_config(&ncfg, loss_ms * 1000000ull);
    ncfg.listen_addr = listen;
    ncfg.listen_port = port;
    ncfg.name = name;
    if ((rc = xo_node_start(rt, &ncfg)) != 0 ||
        (rc = net_actors_setup(rt)) != 0 ||
        (rc = xo_node_port(rt, &port)) != 0) {
        fprintf(stderr, "net_node: %s\n", xo_strerror(rc));
        xo_runtime_free(rt);
        return 1;
    }
    printf("port %u\n", port);
    fflush(stdout);
    char buf[64];
    for (;;) {
        ssize_t n = read(0, buf, sizeof(buf));
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
    rc = xo_runtime_stop(rt);
    xo_runtime_free(rt);
    return rc == 0 ? 0 : 1;
}
