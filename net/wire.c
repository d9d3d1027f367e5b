/*
 * wire.c -- the frame's encoding, and the decoder every connection runs on
 * what it reads (design in wire.h).
 *
 * The decoder trusts nothing it reads. A header is checked whole before
 * its payload is waited for: the version, the type, the flags that type
 * may carry, the payload's size against that type's own limit, and
 * whether the type may come at all (before the handshake ended only
 * HELLO, AUTH and BYE may; a CHUNK only inside a chunked payload; a data
 * frame never inside one; a batch of one kind to one actor, at most
 * max_batch long). The first frame that fails closes the connection with
 * a line that says why; nothing it claimed was allocated, since an
 * assembly grows with the bytes that actually came.
 */
#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xoscar/xoscar.h"

void xi_wire_put_hdr(unsigned char out[XI_WIRE_HDR],
                     const struct xi_wire_hdr *h)
{
    xi_put_u32(out, h->size);
    out[4] = h->version;
    out[5] = h->type;
    out[6] = (unsigned char)h->flags;
    out[7] = (unsigned char)(h->flags >> 8);
    xi_put_u64(out + 8, h->a);
    xi_put_u64(out + 16, h->b);
    xi_put_u32(out + 24, h->tag);
    xi_put_u32(out + 28, h->c);
}

void xi_wire_get_hdr(const unsigned char in[XI_WIRE_HDR],
                     struct xi_wire_hdr *h)
{
    h->size = xi_get_u32(in);
    h->version = in[4];
    h->type = in[5];
    h->flags = (uint16_t)(in[6] | (in[7] << 8));
    h->a = xi_get_u64(in + 8);
    h->b = xi_get_u64(in + 16);
    h->tag = xi_get_u32(in + 24);
    h->c = xi_get_u32(in + 28);
}

/* What each type may be: its flags, its payload's bounds, whether it may
   come before the handshake ended. */
struct type_rule {
    const char *name;
    uint16_t flags;
    uint32_t min, max;
    bool before_auth;
};

static const struct type_rule rules[XI_WT_COUNT] = {
    [XI_WT_HELLO] = { "HELLO", 0, XI_WIRE_HELLO_FIXED + 1,
                      XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX, true },
    [XI_WT_AUTH] = { "AUTH", 0, XI_WIRE_MAC, XI_WIRE_MAC, true },
    [XI_WT_BYE] = { "BYE", 0, 0, XI_WIRE_TEXT_MAX, true },
    [XI_WT_HEARTBEAT] = { "HEARTBEAT", XI_WF_REPLY, 0, 0, false },
    [XI_WT_CANCEL] = { "CANCEL", 0, 0, 0, false },
    [XI_WT_LOOKUP] = { "LOOKUP", 0, 1, XI_WIRE_NAME_MAX, false },
    [XI_WT_TELL] = { "TELL", XI_WF_MORE | XI_WF_CHUNKED, 0,
                     XI_WIRE_PAYLOAD_MAX, false },
    [XI_WT_CALL] = { "CALL", XI_WF_MORE | XI_WF_CHUNKED, 0,
                     XI_WIRE_PAYLOAD_MAX, false },
    [XI_WT_REPLY] = { "REPLY", XI_WF_EMPTY | XI_WF_CHUNKED, 0,
                      XI_WIRE_PAYLOAD_MAX, false },
    [XI_WT_PART] = { "PART", XI_WF_CHUNKED, 0, XI_WIRE_PAYLOAD_MAX, false },
    [XI_WT_DOWN] = { "DOWN", 0, 0, XI_WIRE_TEXT_MAX, false },
    [XI_WT_SPAWN] = { "SPAWN", XI_WF_CHUNKED, XI_WIRE_SPAWN_FIXED + 1,
                      XI_WIRE_PAYLOAD_MAX, false },
    [XI_WT_MONITOR] = { "MONITOR", 0, 0, 0, false },
    [XI_WT_CHUNK] = { "CHUNK", XI_WF_LAST, 1, XI_WIRE_PAYLOAD_MAX, false },
    [XI_WT_BUF] = { "BUF", XI_WF_CHUNKED, 1, XI_WIRE_PAYLOAD_MAX, false },
};

const char *xi_wire_type_name(unsigned type)
{
    return type > 0 && type < XI_WT_COUNT ? rules[type].name : "?";
}

__attribute__((format(printf, 2, 3))) static int
fail(struct xi_wire_fault *fault, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fault->code = XO_EPROTO;
    vsnprintf(fault->why, sizeof(fault->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- payloads ---------------------------------------------------------- */

size_t xi_wire_put_hello(unsigned char *out, const struct xi_wire_hello *h)
{
    xi_put_u32(out, h->magic);
    out[4] = h->role;
    out[5] = h->name_len;
    out[6] = (unsigned char)h->listen_port;
    out[7] = (unsigned char)(h->listen_port >> 8);
    xi_put_u64(out + 8, h->incarnation);
    memcpy(out + 16, h->nonce, XI_WIRE_NONCE);
    memcpy(out + XI_WIRE_HELLO_FIXED, h->name, h->name_len);
    return XI_WIRE_HELLO_FIXED + h->name_len;
}

int xi_wire_check_name(const char *what, const unsigned char *p, size_t size,
                       struct xi_wire_fault *fault)
{
    if (size == 0 || size > XI_WIRE_NAME_MAX)
        return fail(fault, "%s of %zu bytes (1 to %u allowed)", what, size,
                    XI_WIRE_NAME_MAX);
    if (memchr(p, '\0', size) != NULL)
        return fail(fault, "%s with a NUL byte inside", what);
    return 0;
}

int xi_wire_check_text(const unsigned char *p, size_t size,
                       struct xi_wire_fault *fault)
{
    if (size > XI_WIRE_TEXT_MAX)
        return fail(fault, "a text of %zu bytes (at most %u)", size,
                    XI_WIRE_TEXT_MAX);
    if (size > 0 && memchr(p, '\0', size) != NULL)
        return fail(fault, "a text with a NUL byte inside");
    return 0;
}

int xi_wire_check_buf(const struct xi_wire_hdr *h, size_t size,
                      struct xi_wire_fault *fault)
{
    if ((size_t)h->c >= size)
        return fail(fault, "a BUF frame of %zu bytes with %u bytes of data "
                           "(no buffer left)",
                    size, h->c);
    return 0;
}

int xi_wire_get_hello(const unsigned char *p, size_t size,
                      struct xi_wire_hello *out, struct xi_wire_fault *fault)
{
    if (size < XI_WIRE_HELLO_FIXED + 1)
        return fail(fault, "a HELLO of %zu bytes", size);
    out->magic = xi_get_u32(p);
    if (out->magic != XI_WIRE_MAGIC)
        return fail(fault, "not an xoscar node (magic 0x%08x)",
                    (unsigned)out->magic);
    out->role = p[4];
    out->name_len = p[5];
    out->listen_port = (uint16_t)(p[6] | (p[7] << 8));
    out->incarnation = xi_get_u64(p + 8);
    memcpy(out->nonce, p + 16, XI_WIRE_NONCE);
    if (out->role > XI_WIRE_ROLE_LANE)
        return fail(fault, "a HELLO with role %u", out->role);
    if (out->incarnation == 0)
        return fail(fault, "a HELLO with incarnation 0");
    if (size != XI_WIRE_HELLO_FIXED + (size_t)out->name_len)
        return fail(fault, "a HELLO of %zu bytes for a name of %u", size,
                    out->name_len);
    if (xi_wire_check_name("a node name", p + XI_WIRE_HELLO_FIXED,
                           out->name_len, fault) != 0)
        return -1;
    memcpy(out->name, p + XI_WIRE_HELLO_FIXED, out->name_len);
    out->name[out->name_len] = '\0';
    return 0;
}

size_t xi_wire_spawn_size(const struct xi_wire_spawn *s)
{
    return XI_WIRE_SPAWN_FIXED + s->type_len + s->uid_len + s->arg_size;
}

void xi_wire_put_spawn(unsigned char *out, const struct xi_wire_spawn *s)
{
    out[0] = (unsigned char)s->type_len;
    out[1] = (unsigned char)s->uid_len;
    memcpy(out + 2, s->type, s->type_len);
    if (s->uid_len > 0)
        memcpy(out + 2 + s->type_len, s->uid, s->uid_len);
    if (s->arg_size > 0)
        memcpy(out + 2 + s->type_len + s->uid_len, s->arg, s->arg_size);
}

int xi_wire_get_spawn(const unsigned char *p, size_t size,
                      struct xi_wire_spawn *out, struct xi_wire_fault *fault)
{
    if (size < XI_WIRE_SPAWN_FIXED)
        return fail(fault, "a SPAWN of %zu bytes", size);
    out->type_len = p[0];
    out->uid_len = p[1];
    if (size < XI_WIRE_SPAWN_FIXED + out->type_len + out->uid_len)
        return fail(fault, "a SPAWN of %zu bytes for names of %zu and %zu",
                    size, out->type_len, out->uid_len);
    const unsigned char *type = p + XI_WIRE_SPAWN_FIXED;
    if (xi_wire_check_name("a type name", type, out->type_len, fault) != 0)
        return -1;
    out->type = (const char *)type;
    out->uid = NULL;
    if (out->uid_len > 0) {
        const unsigned char *uid = type + out->type_len;
        if (xi_wire_check_name("a uid", uid, out->uid_len, fault) != 0)
            return -1;
        out->uid = (const char *)uid;
    }
    out->arg = type + out->type_len + out->uid_len;
    out->arg_size = size - XI_WIRE_SPAWN_FIXED - out->type_len - out->uid_len;
    return 0;
}

/* ---- the decoder --------------------------------------------------------- */

void xi_wire_rx_init(struct xi_wire_rx *rx, uint64_t max_message,
                     uint32_t max_batch, const struct xi_wire_alloc *alloc)
{
    memset(rx, 0, sizeof(*rx));
    rx->max_message = max_message;
    rx->max_batch = max_batch;
    rx->alloc = *alloc;
}

static void drop_assembly(struct xi_wire_rx *rx)
{
    if (rx->abuf != NULL)
        rx->alloc.release(rx->alloc.ctx, rx->abuf, rx->acap);
    rx->abuf = NULL;
    rx->assembling = false;
    rx->alen = rx->atotal = rx->acap = 0;
}

void xi_wire_rx_fini(struct xi_wire_rx *rx)
{
    drop_assembly(rx);
}

/* The header alone: may this frame come now, with this size? */
static int check_header(struct xi_wire_rx *rx, const struct xi_wire_hdr *h,
                        struct xi_wire_fault *fault)
{
    if (h->version != XI_WIRE_VERSION)
        return fail(fault, "protocol version %u (this node speaks %u)",
                    h->version, XI_WIRE_VERSION);
    if (h->type == 0 || h->type >= XI_WT_COUNT)
        return fail(fault, "unknown frame type %u", h->type);
    const struct type_rule *r = &rules[h->type];
    if (h->flags & ~r->flags)
        return fail(fault, "flags 0x%x on a %s frame", h->flags, r->name);
    if (h->size > r->max || h->size < r->min)
        return fail(fault, "a %s frame of %u bytes (%u to %u allowed)",
                    r->name, h->size, r->min, r->max);
    if (!rx->authenticated && !r->before_auth)
        return fail(fault, "a %s frame before the handshake ended", r->name);
    if (rx->authenticated && (h->type == XI_WT_HELLO || h->type == XI_WT_AUTH))
        return fail(fault, "a %s frame after the handshake", r->name);
    if (xi_wire_is_control(h->type))
        return 0;
    if (rx->assembling && h->type != XI_WT_CHUNK)
        return fail(fault, "a %s frame inside a chunked %s", r->name,
                    rules[rx->ahdr.type].name);
    if (!rx->assembling && h->type == XI_WT_CHUNK)
        return fail(fault, "a CHUNK frame outside a chunked message");
    if (rx->batch_len > 0 && h->type != XI_WT_CHUNK &&
        (h->type != rx->batch_type || h->a != rx->batch_to))
        return fail(fault, "a batch of %s frames to %#llx went on with a "
                           "%s frame",
                    rules[rx->batch_type].name,
                    (unsigned long long)rx->batch_to, r->name);
    if ((h->flags & XI_WF_CHUNKED) && h->size < 8)
        return fail(fault, "a chunked %s frame of %u bytes", r->name,
                    h->size);
    return 0;
}

/* Room for `need` bytes of the assembly, growing by doubling (up to the
   whole size): memory follows the bytes received, not what was claimed. */
static int assembly_room(struct xi_wire_rx *rx, uint64_t need,
                         struct xi_wire_fault *fault)
{
    if (need <= rx->acap)
        return 0;
    uint64_t cap = rx->acap ? rx->acap * 2 : (uint64_t)XI_WIRE_PAYLOAD_MAX * 2;
    if (cap < need)
        cap = need;
    if (cap > rx->atotal)
        cap = rx->atotal;
    void *p = rx->alloc.grow(rx->alloc.ctx, rx->abuf, rx->acap, (size_t)cap);
    if (p == NULL) {
        fault->code = XO_ENOMEM;
        snprintf(fault->why, sizeof(fault->why),
                 "out of memory for a chunked message at %llu of %llu bytes",
                 (unsigned long long)need, (unsigned long long)rx->atotal);
        return -1;
    }
    rx->abuf = p;
    rx->acap = cap;
    return 0;
}

static int begin_assembly(struct xi_wire_rx *rx, const struct xi_wire_hdr *h,
                          const unsigned char *payload,
                          struct xi_wire_fault *fault)
{
    uint64_t total = xi_get_u64(payload);
    uint64_t first = h->size - 8;
    if (total > rx->max_message)
        return fail(fault, "a chunked %s of %llu bytes (at most %llu)",
                    rules[h->type].name, (unsigned long long)total,
                    (unsigned long long)rx->max_message);
    if (total <= first)
        return fail(fault, "a chunked %s of %llu bytes whose first part "
                           "has %llu",
                    rules[h->type].name, (unsigned long long)total,
                    (unsigned long long)first);
    rx->assembling = true;
    rx->ahdr = *h;
    rx->atotal = total;
    rx->alen = 0;
    if (assembly_room(rx, first, fault) != 0) {
        drop_assembly(rx);
        return -1;
    }
    if (first > 0) /* a first part may be empty: abuf may be NULL yet */
        memcpy(rx->abuf, payload + 8, first);
    rx->alen = first;
    return 0;
}

/* A CHUNK: append; the last one hands the whole frame over. */
static int add_chunk(struct xi_wire_rx *rx, const struct xi_wire_hdr *h,
                     const unsigned char *payload, xi_wire_frame_fn fn,
                     void *ctx, struct xi_wire_fault *fault)
{
    uint64_t after = rx->alen + h->size;
    bool last = (h->flags & XI_WF_LAST) != 0;
    if (after > rx->atotal || (last && after != rx->atotal) ||
        (!last && after == rx->atotal))
        return fail(fault, "chunks of %llu bytes for a message of %llu%s",
                    (unsigned long long)after,
                    (unsigned long long)rx->atotal,
                    last ? " (last)" : " (not last)");
    if (assembly_room(rx, after, fault) != 0)
        return -1;
    memcpy(rx->abuf + rx->alen, payload, h->size);
    rx->alen = after;
    if (!last)
        return 0;
    struct xi_wire_frame f = { rx->ahdr, rx->abuf, (size_t)rx->atotal,
                               rx->abuf, (size_t)rx->acap };
    f.h.flags &= (uint16_t)~XI_WF_CHUNKED;
    f.h.size = (uint32_t)(rx->atotal > UINT32_MAX ? UINT32_MAX : rx->atotal);
    rx->abuf = NULL; /* the frame's now */
    rx->assembling = false;
    rx->alen = rx->atotal = rx->acap = 0;
    int rc = fn(ctx, &f, fault);
    if (f.owned != NULL)
        rx->alloc.release(rx->alloc.ctx, f.owned, f.owned_size);
    return rc;
}

/* One whole frame: batch accounting, then to fn (or into an assembly). */
static int take_frame(struct xi_wire_rx *rx, const struct xi_wire_hdr *h,
                      const unsigned char *payload, xi_wire_frame_fn fn,
                      void *ctx, struct xi_wire_fault *fault)
{
    if (h->type == XI_WT_CHUNK)
        return add_chunk(rx, h, payload, fn, ctx, fault);
    if (h->type == XI_WT_TELL || h->type == XI_WT_CALL) {
        if (rx->batch_len >= rx->max_batch)
            return fail(fault, "a batch of more than %u messages",
                        rx->max_batch);
        if (h->flags & XI_WF_MORE) {
            rx->batch_len++;
            rx->batch_type = h->type; /* what the batch must go on with */
            rx->batch_to = h->a;
        } else {
            rx->batch_len = 0;
        }
    }
    if (h->flags & XI_WF_CHUNKED)
        return begin_assembly(rx, h, payload, fault);
    struct xi_wire_frame f = { *h, payload, h->size, NULL, 0 };
    return fn(ctx, &f, fault);
}

long xi_wire_rx_feed(struct xi_wire_rx *rx, const unsigned char *buf,
                     size_t len, xi_wire_frame_fn fn, void *ctx,
                     struct xi_wire_fault *fault)
{
    size_t off = 0;
    while (len - off >= XI_WIRE_HDR) {
        struct xi_wire_hdr h;
        xi_wire_get_hdr(buf + off, &h);
        if (check_header(rx, &h, fault) != 0)
            return -1;
        if (len - off - XI_WIRE_HDR < h.size)
            break; /* the rest comes with the next read */
        if (take_frame(rx, &h, buf + off + XI_WIRE_HDR, fn, ctx, fault) != 0)
            return -1;
        off += XI_WIRE_HDR + h.size;
    }
    return (long)off;
}
