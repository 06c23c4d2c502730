/* common/sha256.c — see sha256.h. */
#include "common/sha256.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>

#include <openssl/evp.h>

int sha256_init(struct sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		h->ctx = NULL;
		return MD_ENOMEM;
	}
	h->ctx = c;
	return 0;
}

void sha256_update(struct sha256 *h, const void *data, size_t n)
{
	EVP_DigestUpdate(h->ctx, data, n);
}

void sha256_final(struct sha256 *h, uint8_t out[32])
{
	unsigned int len = 32;
	EVP_DigestFinal_ex(h->ctx, out, &len);
	sha256_free(h);
}

void sha256_free(struct sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int sha256_fd(int fd, uint64_t size, uint8_t out[32])
{
	struct sha256 h;
	uint8_t *buf = malloc(1u << 20);
	if (!buf || sha256_init(&h)) {
		free(buf);
		return MD_ENOMEM;
	}
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
		if (util_pread_full(fd, buf, n, (off_t)off) != (ssize_t)n) {
			sha256_free(&h);
			free(buf);
			return MD_EIO;
		}
		sha256_update(&h, buf, n);
		off += n;
	}
	sha256_final(&h, out);
	free(buf);
	return 0;
}

void sha256_hex(const void *data, size_t n, char out[65])
{
	uint8_t d[32];
	unsigned int len = 32;
	EVP_Digest(data, n, d, &len, EVP_sha256(), NULL);
	util_hex(d, 32, out);
}
