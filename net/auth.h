/*
 * auth.h -- the handshake's cryptography, all of it from OpenSSL's
 * libcrypto: random nonces and incarnations (RAND_bytes), proofs
 * (HMAC-SHA256 keyed by the shared secret), and their comparison in
 * constant time (CRYPTO_memcmp). docs/net.md, "The handshake", says what
 * is proved and what it protects against.
 */
#ifndef XI_NET_AUTH_H
#define XI_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

enum xi_auth_role { XI_AUTH_CONNECTOR = 0, XI_AUTH_ACCEPTOR = 1 };

/* n cryptographically random bytes; 0, or -1 when the generator fails. */
int xi_auth_random(void *buf, size_t n);

/*
 * The proof `role` gives: HMAC-SHA256 under the secret of a label, the
 * prover's role, and both HELLO payloads (the connector's first), each
 * with its length. Both nonces are in it, so a proof answers one
 * challenge of one connection only, and the role keeps either end from
 * reflecting the other's proof back.
 */
void xi_auth_proof(const unsigned char secret[32], enum xi_auth_role role,
                   const unsigned char *hello_connector, size_t hc_size,
                   const unsigned char *hello_acceptor, size_t ha_size,
                   unsigned char out[XI_WIRE_MAC]);
/* In constant time. */
bool xi_auth_equal(const unsigned char a[XI_WIRE_MAC],
                   const unsigned char b[XI_WIRE_MAC]);

#endif /* XI_NET_AUTH_H */
