/*
 * common/sha256.h — incremental SHA-256 over OpenSSL's libcrypto (EVP).
 * A struct sha256 is owned by its caller; sha256_init allocates the EVP
 * context and sha256_final frees it (also call sha256_free on abandon).
 */
#ifndef MD_SHA256_H
#define MD_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	void *ctx; /* EVP_MD_CTX */
};

/* 0 or MD_ENOMEM. */
int sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t n);
/* Writes 32 bytes to out and releases the context. */
void sha256_final(struct sha256 *h, uint8_t out[32]);
void sha256_free(struct sha256 *h);
/* Digest of bytes [0, size) of the file fd (pread; the file offset does not
 * move). 0, MD_ENOMEM, MD_EIO (a read failed or the file is shorter). */
int sha256_fd(int fd, uint64_t size, uint8_t out[32]);
/* One shot: hex digest (65 bytes) of a buffer. */
void sha256_hex(const void *data, size_t n, char out[65]);

#endif
