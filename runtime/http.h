/*
 * http.h -- the runtime's optional /metrics server (http.c): GET /metrics
 * answers xo_metrics_write's text, from a thread of libmicrohttpd's own.
 * Started by xo_runtime_start when cfg.metrics_port is set, stopped first
 * thing by xo_runtime_stop. docs/metrics.md.
 */
#ifndef XI_RUNTIME_HTTP_H
#define XI_RUNTIME_HTTP_H

#include "xoscar/xoscar.h"

/* Bind cfg.metrics_addr:cfg.metrics_port and start serving (no-op when
   the port is 0). 0, or XO_EINVAL (not an address of this host, or a
   port this process may not bind), XO_EADDRINUSE, XO_ENOMEM; on error
   nothing is left open. */
int xi_http_start(xo_runtime_t *rt);
/* Stop serving: closes the socket and joins the server's thread, so no
   request runs afterwards (a request in flight is answered first). Once,
   from xo_runtime_stop. */
void xi_http_stop(xo_runtime_t *rt);
/* Free what is left (xo_runtime_free). */
void xi_http_free(xo_runtime_t *rt);

#endif /* XI_RUNTIME_HTTP_H */
