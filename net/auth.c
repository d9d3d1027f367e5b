/* auth.c -- the handshake's proofs and randomness (auth.h). */
#include "auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define LABEL "xoscar node proof v1"

int xi_auth_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

static size_t put_part(unsigned char *p, const unsigned char *bytes,
                       size_t size)
{
    xi_put_u32(p, (uint32_t)size);
    memcpy(p + 4, bytes, size);
    return 4 + size;
}

void xi_auth_proof(const unsigned char secret[32], enum xi_auth_role role,
                   const unsigned char *hello_connector, size_t hc_size,
                   const unsigned char *hello_acceptor, size_t ha_size,
                   unsigned char out[XI_WIRE_MAC])
{
    /* Each HELLO is at most XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX. */
    unsigned char msg[sizeof(LABEL) + 1 +
                      2 * (4 + XI_WIRE_HELLO_FIXED + XI_WIRE_NAME_MAX)];
    size_t n = 0;
    memcpy(msg, LABEL, sizeof(LABEL)); /* its NUL ends the label */
    n += sizeof(LABEL);
    msg[n++] = role == XI_AUTH_CONNECTOR ? 'C' : 'A';
    n += put_part(msg + n, hello_connector, hc_size);
    n += put_part(msg + n, hello_acceptor, ha_size);
    unsigned int len = XI_WIRE_MAC;
    HMAC(EVP_sha256(), secret, 32, msg, n, out, &len);
}

bool xi_auth_equal(const unsigned char a[XI_WIRE_MAC],
                   const unsigned char b[XI_WIRE_MAC])
{
    return CRYPTO_memcmp(a, b, XI_WIRE_MAC) == 0;
}
