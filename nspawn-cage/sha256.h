/* sha256.h: SHA-256 (FIPS 180-4), for the keys of the closure cache
 * (closurecache.h): nothing here needs more than a stream of bytes in and
 * 32 bytes or 64 hex digits out. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Sha256 {
        uint32_t h[8];
        uint64_t length; /* bytes hashed so far */
        uint8_t block[64];
        size_t used;
} Sha256;

void sha256_init(Sha256 *c);
void sha256_update(Sha256 *c, const void *data, size_t size);
void sha256_final(Sha256 *c, uint8_t ret[32]);
/* The digest as 64 lowercase hex digits and a NUL. */
void sha256_final_hex(Sha256 *c, char ret[65]);
