/*
 * wire.h -- the frame: its header, its types, the limits on what a peer
 * may send, and the receiver's decoder (wire.c). Nothing here touches a
 * runtime or a socket: the decoder takes bytes and gives frames, so the
 * libFuzzer target (fuzz_wire.c) drives exactly the code a connection
 * runs.
 *
 * Every frame is a 32-byte header and a payload (docs/net.md draws it):
 *
 *   0  u32 size     payload bytes after the header (<= XI_WIRE_PAYLOAD_MAX)
 *   4  u8  version  XI_WIRE_VERSION
 *   5  u8  type     enum xi_wire_type
 *   6  u16 flags    XI_WF_*, each allowed on some types only
 *   8  u64 a        by type: the receiving actor, a call's id, a target
 *  16  u64 b        by type: the sending actor, an item's index, a code
 *  24  u32 tag      the message's tag
 *  28  u32 c        by type: a call's id, a status, a reason
 *
 * all little-endian. Actor ids on the wire are the owner's own (node bits
 * 0): a receiver puts the sender's node number into the ids it keeps.
 *
 * A payload larger than XI_WIRE_PAYLOAD_MAX is cut into chunks: the frame
 * itself carries XI_WF_CHUNKED, its payload starts with the whole
 * payload's size (u64) followed by the first part, and CHUNK frames carry
 * the rest, the last one flagged XI_WF_LAST. Data frames of a connection
 * are written in order and never interleave with each other, so a chunked
 * message's CHUNK frames follow it with only control frames between: one
 * assembly at a time per connection.
 */
#ifndef XI_NET_WIRE_H
#define XI_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XI_WIRE_VERSION 1u
#define XI_WIRE_HDR 32u
/* The largest payload of one frame: larger ones go in chunks. */
#define XI_WIRE_PAYLOAD_MAX ((uint32_t)64 << 10)
/* Limits that are not the user's to set (docs/net.md, "Limits"). */
#define XI_WIRE_TEXT_MAX 1024u  /* an error message, a BYE's reason */
#define XI_WIRE_NAME_MAX 255u   /* node names, type names, uids */
#define XI_WIRE_NONCE 32u
#define XI_WIRE_MAC 32u
#define XI_WIRE_MAGIC UINT32_C(0x584F4E31) /* "XON1" */

enum xi_wire_type {
    /* Control lane: written between data frames, never behind a chunk. */
    XI_WT_HELLO = 1,  /* handshake: who I am, my challenge */
    XI_WT_AUTH,       /* handshake: my answer to your challenge */
    XI_WT_BYE,        /* I close: c = reason code, payload = text */
    XI_WT_HEARTBEAT,  /* a = sender's clock; XI_WF_REPLY: the echo */
    XI_WT_CANCEL,     /* a = call id, b = count: the caller cancelled or
                         left */
    XI_WT_LOOKUP,     /* c = call id, payload = uid */
    /* Data lane: in order, chunked when large. */
    XI_WT_TELL,       /* a = to, b = from, tag; MORE: same batch */
    XI_WT_CALL,       /* a = to, b = from, tag, c = call id; MORE */
    XI_WT_REPLY,      /* a = call id, tag, c = status; EMPTY: no reply
                         message; status < 0: payload = error text */
    XI_WT_PART,       /* a = call id, tag: one part of a stream */
    XI_WT_DOWN,       /* a = target, b = code, c = reason, payload =
                         its message */
    XI_WT_SPAWN,      /* c = call id, payload = struct xi_wire_spawn */
    XI_WT_MONITOR,    /* a = target: watch it, send DOWN at its end (in
                         order with the messages: it is set up before a
                         message sent after it can end the target) */
    XI_WT_CHUNK,      /* the next part of a chunked payload; LAST */
    XI_WT_BUF,        /* a = to, b = from, tag, c = data bytes: a buffer
                         message, payload = the buffer's bytes (at least
                         one), then c bytes of message data */
    XI_WT_COUNT
};

#define XI_WF_MORE 1u     /* TELL, CALL: the batch goes on */
#define XI_WF_CHUNKED 2u  /* the payload goes on in CHUNK frames */
#define XI_WF_LAST 4u     /* CHUNK: the last one */
#define XI_WF_REPLY 8u    /* HEARTBEAT: an echo */
#define XI_WF_EMPTY 16u   /* REPLY: no reply message (an end, an error) */

struct xi_wire_hdr {
    uint32_t size;
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint64_t a, b;
    uint32_t tag, c;
};

/* The control lane's types (the others are data). */
static inline bool xi_wire_is_control(unsigned type)
{
    return type >= XI_WT_HELLO && type <= XI_WT_LOOKUP;
}

void xi_wire_put_hdr(unsigned char out[XI_WIRE_HDR],
                     const struct xi_wire_hdr *h);
void xi_wire_get_hdr(const unsigned char in[XI_WIRE_HDR],
                     struct xi_wire_hdr *h);
/* "HELLO", "TELL", ...; "?" for anything else. */
const char *xi_wire_type_name(unsigned type);

static inline void xi_put_u32(unsigned char *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void xi_put_u64(unsigned char *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t xi_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t xi_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- payloads -------------------------------------------------------- */

/* HELLO: the same from both ends. */
struct xi_wire_hello {
    uint32_t magic;
    uint8_t role;                 /* 0: made the connection; 1: accepted;
                                     2: made a control lane (io.c) */
    uint16_t listen_port;         /* where it listens (0: it does not) */
    uint64_t incarnation;         /* random, per process start, never 0 */
    unsigned char nonce[XI_WIRE_NONCE];
    uint8_t name_len;             /* 1..XI_WIRE_NAME_MAX */
    char name[XI_WIRE_NAME_MAX + 1];
};

#define XI_WIRE_ROLE_LANE 2u      /* a control lane's connector */
#define XI_WIRE_HELLO_FIXED 48u   /* the bytes before the name */

/* Encode into out (room for XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX);
   returns the payload's size. */
size_t xi_wire_put_hello(unsigned char *out, const struct xi_wire_hello *h);

/* SPAWN: u8 type length, u8 uid length (0: none), the type, the uid, then
   the argument to the end. */
struct xi_wire_spawn {
    const char *type;
    size_t type_len;
    const char *uid;              /* NULL: none */
    size_t uid_len;
    const unsigned char *arg;
    size_t arg_size;
};

#define XI_WIRE_SPAWN_FIXED 2u

size_t xi_wire_spawn_size(const struct xi_wire_spawn *s);
void xi_wire_put_spawn(unsigned char *out, const struct xi_wire_spawn *s);

/* ---- the decoder ------------------------------------------------------- */

/* Why a connection was closed for what it sent (the log line's text). */
struct xi_wire_fault {
    int code;                     /* XO_EPROTO */
    char why[160];
};

/*
 * A decoded frame, as the decoder hands it over. `payload` points into
 * the bytes fed (valid during the callback), or, for a chunked payload
 * put back together, into `owned`: a block of `owned_size` bytes from the
 * decoder's allocator that the callback takes (or leaves, NULL-ing
 * nothing: the decoder frees it if the callback returns with it still
 * set). The header's size is the payload's whole size then, and its
 * CHUNKED flag is cleared.
 */
struct xi_wire_frame {
    struct xi_wire_hdr h;
    const unsigned char *payload;
    size_t size;
    void *owned;
    size_t owned_size;
};

/* The frame is well formed; act on it. Non-zero: stop (a fault of the
   caller's: it fills the fault), the decoder returns it. */
typedef int (*xi_wire_frame_fn)(void *ctx, struct xi_wire_frame *f,
                                struct xi_wire_fault *fault);

struct xi_wire_alloc {
    void *(*grow)(void *ctx, void *p, size_t old_size, size_t new_size);
    void (*release)(void *ctx, void *p, size_t size);
    void *ctx;
};

struct xi_wire_rx {
    /* Limits (set before the first feed). */
    uint64_t max_message;         /* a chunked payload's whole size */
    uint32_t max_batch;           /* messages in one batch */
    bool authenticated;           /* false: only HELLO, AUTH and BYE */
    struct xi_wire_alloc alloc;
    /* State. */
    uint32_t batch_len;           /* MORE frames seen in a row */
    uint8_t batch_type;           /* and the kind and target they had */
    uint64_t batch_to;
    bool assembling;
    struct xi_wire_hdr ahdr;      /* the chunked frame's header */
    unsigned char *abuf;
    uint64_t alen, atotal, acap;
};

void xi_wire_rx_init(struct xi_wire_rx *rx, uint64_t max_message,
                     uint32_t max_batch, const struct xi_wire_alloc *alloc);
/* Release an assembly in progress. */
void xi_wire_rx_fini(struct xi_wire_rx *rx);

/*
 * Decode the frames in buf[0..len): each whole one goes to fn, in order.
 * Returns the bytes consumed (a partial frame at the end is left for the
 * next feed, with more bytes after it), or -1 with *fault filled: the
 * connection must be closed (a frame it cannot take, or fn's refusal).
 * Nothing is allocated for a size a peer only claims: an assembly grows
 * with the bytes that arrive.
 */
long xi_wire_rx_feed(struct xi_wire_rx *rx, const unsigned char *buf,
                     size_t len, xi_wire_frame_fn fn, void *ctx,
                     struct xi_wire_fault *fault);

/* Payload decoders: 0, or -1 with *fault filled. */
int xi_wire_get_hello(const unsigned char *p, size_t size,
                      struct xi_wire_hello *out, struct xi_wire_fault *fault);
int xi_wire_get_spawn(const unsigned char *p, size_t size,
                      struct xi_wire_spawn *out, struct xi_wire_fault *fault);
/* A text payload (an error, a reason): at most XI_WIRE_TEXT_MAX bytes, no
   NUL inside. */
int xi_wire_check_text(const unsigned char *p, size_t size,
                       struct xi_wire_fault *fault);
/* A BUF frame whole (put back together when it came chunked): its data
   bytes (c) leave at least one byte of buffer before them. */
int xi_wire_check_buf(const struct xi_wire_hdr *h, size_t size,
                      struct xi_wire_fault *fault);
/* A name (uid, type): 1..XI_WIRE_NAME_MAX bytes, no NUL inside. */
int xi_wire_check_name(const char *what, const unsigned char *p, size_t size,
                       struct xi_wire_fault *fault);

#endif /* XI_NET_WIRE_H */
