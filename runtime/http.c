/*
 * http.c -- the built-in /metrics endpoint (design in http.h).
 *
 * We bind the socket ourselves and hand it to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET): bind's errno is then ours to read, so a
 * port that is taken gives XO_EADDRINUSE and an address that is not this
 * host's XO_EINVAL, and the port the system picked for
 * XO_METRICS_PORT_ANY is known before the server runs. Once it has the
 * socket, MHD owns it: it closes it when it stops, and when its start
 * fails (libmicrohttpd 0.9.75, Debian 12's).
 *
 * Threads. MHD runs one thread of its own (MHD_USE_INTERNAL_POLLING_THREAD
 * with the best poller it has), which accepts, reads requests and calls
 * `answer`: each GET /metrics builds the body with open_memstream and
 * xo_metrics_write, which takes read-side sections like any outside
 * reader and waits for nothing, so a scrape never holds the runtime up. A
 * slow client cannot hold the thread either: at most
 * XI_HTTP_CONNECTIONS connections, each closed after XI_HTTP_IDLE_S
 * seconds without progress.
 *
 * Shutdown. xo_runtime_stop calls xi_http_stop first, once the runtime is
 * marked closing: MHD_stop_daemon closes the socket and joins MHD's
 * thread, so when it returns no request runs, and none can start. A
 * request caught in flight is finished first: 200 with what it had read,
 * or 503 when its walk found the runtime closing. The runtime object a
 * request reads outlives the thread (it goes in xo_runtime_free, after
 * the stop).
 */
#include "runtime.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define XI_HTTP_CONNECTIONS 16u
#define XI_HTTP_IDLE_S 10u
#define XI_HTTP_BACKLOG 64

#define XI_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct xi_http {
    struct MHD_Daemon *daemon; /* NULL once stopped */
    unsigned port;
};

/* ---- answering ------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *r, const char *type)
{
    if (r == NULL)
        return MHD_NO; /* no memory: MHD closes the connection */
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                 type);
    if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A short plain-text answer from static memory. */
static enum MHD_Result reply_text(struct MHD_Connection *conn,
                                  unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    return reply(conn, status, r, "text/plain; charset=utf-8");
}

static enum MHD_Result reply_metrics(xo_runtime_t *rt,
                                     struct MHD_Connection *conn)
{
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "xoscar: out of memory\n");
    int rc = xo_metrics_write(rt, f);
    if (fclose(f) != 0 && rc == 0)
        rc = XO_ENOMEM; /* the stream could not grow */
    if (rc != 0) {
        free(body);
        if (rc == XO_ECLOSED)
            return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "xoscar: the runtime is stopping\n");
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "xoscar: out of memory\n");
    }
    /* MHD frees the body with free() once it is sent. */
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL)
        free(body);
    return reply(conn, MHD_HTTP_OK, r, XI_METRICS_TYPE);
}

/* MHD's access handler: called on its thread once the request's headers
   are in (and again per piece of a body, which we never read: the answer
   is queued on the first call). */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "xoscar: only GET and HEAD\n");
    if (strcmp(url, "/metrics") != 0)
        return reply_text(conn, MHD_HTTP_NOT_FOUND,
                          "xoscar: not found; the metrics are at /metrics\n");
    return reply_metrics(cls, conn);
}

/* ---- the socket ------------------------------------------------------------ */

static int errno_code(int e)
{
    switch (e) {
    case EADDRINUSE:
        return XO_EADDRINUSE;
    case EACCES:        /* a privileged port */
    case EADDRNOTAVAIL: /* not an address of this host */
    case EAFNOSUPPORT:  /* no IPv6 here */
    case EINVAL:
        return XO_EINVAL;
    default:            /* EMFILE, ENFILE, ENOBUFS, ENOMEM */
        return XO_ENOMEM;
    }
}

/* A listening socket on addr:port (port 0: any), into *fd, and the port
   it got. */
static int listen_on(const char *addr, unsigned port, int *fd,
                     unsigned *bound)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* Numbers only: a start never waits for a name lookup. */
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    int g = getaddrinfo(addr, service, &hints, &ai);
    if (g != 0)
        return g == EAI_MEMORY ? XO_ENOMEM : XO_EINVAL;
    int s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = 0;
    if (s < 0) {
        rc = errno_code(errno);
        goto out;
    }
    /* A restarted program can bind again while the old connections are
       in TIME_WAIT; a second listener on the port is still refused. */
    int one = 1;
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(s, XI_HTTP_BACKLOG) != 0 ||
        getsockname(s, (struct sockaddr *)&ss, &sl) != 0) {
        rc = errno_code(errno);
        close(s);
        goto out;
    }
    *bound = ss.ss_family == AF_INET6
                 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd = s;
out:
    freeaddrinfo(ai);
    return rc;
}

/* ---- start and stop ---------------------------------------------------------- */

int xi_http_start(xo_runtime_t *rt)
{
    unsigned port = rt->cfg.metrics_port;
    if (port == 0)
        return 0;
    if (port == XO_METRICS_PORT_ANY)
        port = 0;
    const char *addr = rt->cfg.metrics_addr != NULL ? rt->cfg.metrics_addr
                                                    : "127.0.0.1";
    rt->cfg.metrics_addr = NULL; /* the caller's string: read at start only */
    struct xi_http *h = xi_mem_alloc(&rt->mem, sizeof(*h));
    if (h == NULL)
        return XO_ENOMEM;
    int fd = -1;
    int rc = listen_on(addr, port, &fd, &h->port);
    if (rc != 0) {
        xi_mem_free(&rt->mem, h, sizeof(*h));
        return rc;
    }
    h->daemon = MHD_start_daemon(
        MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer,
        rt, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        XI_HTTP_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, XI_HTTP_IDLE_S,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        /* MHD closed fd (see the top of the file). */
        xi_mem_free(&rt->mem, h, sizeof(*h));
        return XO_ENOMEM;
    }
    rt->http = h;
    return 0;
}

void xi_http_stop(xo_runtime_t *rt)
{
    struct xi_http *h = rt->http;
    if (h == NULL || h->daemon == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
}

void xi_http_free(xo_runtime_t *rt)
{
    struct xi_http *h = rt->http;
    if (h == NULL)
        return;
    rt->http = NULL;
    xi_mem_free(&rt->mem, h, sizeof(*h));
}

int xo_metrics_port(const xo_runtime_t *rt, unsigned *port)
{
    if (rt == NULL || port == NULL)
        return XO_EINVAL;
    if (xi_rt_closing((xo_runtime_t *)rt))
        return XO_ECLOSED;
    if (rt->http == NULL)
        return XO_ENOTEXIST;
    *port = rt->http->port;
    return 0;
}
