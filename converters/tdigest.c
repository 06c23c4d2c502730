/* converters/tdigest.c — see tdigest.h. */
#include "converters/tdigest.h"
#include "common/err.h"

#include <string.h>
#include <xxhash.h>

int tdigest_init(struct tdigest *d, enum tdigest_alg alg)
{
	memset(d, 0, sizeof *d);
	d->alg = alg;
	if (alg == TDIGEST_SHA256)
		return sha256_init(&d->sha);
	if (alg != TDIGEST_XXH3)
		return MD_EINVAL;
	if (!(d->xxh = XXH3_createState()))
		return MD_ENOMEM;
	XXH3_128bits_reset(d->xxh);
	return 0;
}

void tdigest_update(struct tdigest *d, const void *p, size_t n)
{
	if (d->alg == TDIGEST_SHA256)
		sha256_update(&d->sha, p, n);
	else
		XXH3_128bits_update(d->xxh, p, n);
}

void tdigest_final(struct tdigest *d, uint8_t out[TDIGEST_SIZE])
{
	memset(out, 0, TDIGEST_SIZE);
	if (d->alg == TDIGEST_SHA256) {
		sha256_final(&d->sha, out);
		return;
	}
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(d->xxh));
	memcpy(out, c.digest, sizeof c.digest);
	tdigest_free(d);
}

void tdigest_free(struct tdigest *d)
{
	if (d->sha.ctx)
		sha256_free(&d->sha);
	if (d->xxh)
		XXH3_freeState(d->xxh);
	d->xxh = NULL;
}

size_t tdigest_len(enum tdigest_alg alg)
{
	return alg == TDIGEST_SHA256 ? 32 : alg == TDIGEST_XXH3 ? 16 : 0;
}

const char *tdigest_name(enum tdigest_alg alg)
{
	return alg == TDIGEST_SHA256 ? "sha256" : alg == TDIGEST_XXH3 ? "xxh3-128" : NULL;
}
