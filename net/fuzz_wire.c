/*
 * fuzz_wire.c -- the frame decoder as a libFuzzer target (docs/net.md,
 * "Fuzzing"): the bytes a peer could send, fed to the decoder (wire.c) in
 * the pieces a connection's reads would give, with every payload checked
 * as the I/O thread checks it. A crash, a sanitizer report, a leak or an
 * allocation past libFuzzer's limit is a finding.
 *
 * The input's first byte picks the mode: bit 0, the handshake is over
 * already (otherwise an AUTH frame ends it, as on a connection); the
 * other bits, the size of each read. The seeds (net/fuzz/corpus) are
 * well-formed conversations made by make-corpus.py, the input of each
 * bug found (regression-*), and the inputs a long run found that reach
 * new code (found-*, merged with -merge=1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define MAX_MESSAGE ((uint64_t)256 << 10) /* small: a lie costs little */
#define MAX_BATCH 64u
#define RBUF ((size_t)256 << 10)        /* as io.c's read buffer */

static void *grow(void *ctx, void *p, size_t old_size, size_t new_size)
{
    (void)ctx;
    (void)old_size;
    return realloc(p, new_size);
}

static void release(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

struct state {
    struct xi_wire_rx *rx;
    unsigned long sum;
};

static int on_frame(void *ctx, struct xi_wire_frame *f,
                    struct xi_wire_fault *fault)
{
    struct state *st = ctx;
    switch (f->h.type) {
    case XI_WT_HELLO: {
        struct xi_wire_hello h;
        if (xi_wire_get_hello(f->payload, f->size, &h, fault) != 0)
            return -1;
        break;
    }
    case XI_WT_AUTH:
        st->rx->authenticated = true; /* the handshake ends here */
        break;
    case XI_WT_BYE:
    case XI_WT_DOWN:
        if (xi_wire_check_text(f->payload, f->size, fault) != 0)
            return -1;
        break;
    case XI_WT_REPLY:
        if ((int32_t)f->h.c < 0 &&
            xi_wire_check_text(f->payload, f->size, fault) != 0)
            return -1;
        break;
    case XI_WT_LOOKUP:
        if (xi_wire_check_name("a uid", f->payload, f->size, fault) != 0)
            return -1;
        break;
    case XI_WT_BUF:
        if (xi_wire_check_buf(&f->h, f->size, fault) != 0)
            return -1;
        break;
    case XI_WT_SPAWN: {
        struct xi_wire_spawn s;
        if (xi_wire_get_spawn(f->payload, f->size, &s, fault) != 0)
            return -1;
        break;
    }
    default:
        break;
    }
    /* Every byte handed over is read: out of bounds is a finding. */
    for (size_t i = 0; i < f->size; i++)
        st->sum += f->payload[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    struct xi_wire_alloc alloc = { grow, release, NULL };
    struct xi_wire_rx rx;
    xi_wire_rx_init(&rx, MAX_MESSAGE, MAX_BATCH, &alloc);
    rx.authenticated = mode & 1;
    size_t piece = 1 + (size_t)(mode >> 1) * 37;
    static unsigned char buf[RBUF];
    struct state st = { &rx, 0 };
    size_t len = 0, off = 0;
    while (off < size) {
        size_t take = size - off < piece ? size - off : piece;
        if (take > RBUF - len)
            take = RBUF - len;
        memcpy(buf + len, data + off, take);
        len += take;
        off += take;
        /* What was read so far, in a block of its exact size: a read
           past it is AddressSanitizer's to report. */
        unsigned char *window = malloc(len);
        if (window == NULL)
            break;
        memcpy(window, buf, len);
        struct xi_wire_fault fault;
        long used = xi_wire_rx_feed(&rx, window, len, on_frame, &st, &fault);
        free(window);
        if (used < 0)
            break; /* the connection would be closed here */
        memmove(buf, buf + used, len - (size_t)used);
        len -= (size_t)used;
        if (len == RBUF)
            abort(); /* a frame that cannot fit a read buffer got through */
    }
    xi_wire_rx_fini(&rx);
    return 0;
}
