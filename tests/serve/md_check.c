/*
 * tests/serve/md_check.c — drives libmodeld through its installed interface
 * only (modeld.h, -lmodeld): md_check SOCKET REF [REF2]
 * Prints "model NAME REVISION NTENSORS NPACKS", then per tensor
 * "NAME DTYPE NDIM SHAPE... LENGTH FNV1A64(bytes)", then "defaults K of
 * NPACKS" (md_model_pack_default), then "closed"; on an error
 * "error CODE STRERROR: DETAIL" and exit 3. With REF2 it also opens a second
 * model on the same connection first and keeps it open until the end.
 */
#include <modeld.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int fail(int rc)
{
	printf("error %d %s: %s\n", rc, md_strerror(rc), md_errmsg(rc));
	return 3;
}

int main(int argc, char **argv)
{
	struct md_conn *c;
	struct md_model *m, *m2 = NULL;
	int rc;
	if (argc < 3)
		return 2;
	if ((rc = md_connect(argv[1], &c)))
		return fail(rc);
	if (argc > 3 && (rc = md_open(c, argv[3], &m2)))
		return fail(rc);
	if ((rc = md_open(c, argv[2], &m))) {
		md_close(m2);
		md_disconnect(c);
		return fail(rc);
	}
	printf("model %s %s %zu %zu\n", md_model_name(m), md_model_revision(m), md_model_count(m),
	       md_model_npacks(m));
	for (size_t i = 0; i < md_model_count(m); i++) {
		const struct md_tensor *t = md_model_tensor(m, i);
		const void *p;
		size_t n;
		if ((rc = md_tensor_map(m, t, &p, &n)))
			return fail(rc);
		uint64_t h = 1469598103934665603ull;
		for (size_t k = 0; k < n; k++)
			h = (h ^ ((const unsigned char *)p)[k]) * 1099511628211ull;
		printf("%s %s %u", t->name, t->dtype, t->ndim);
		for (uint32_t k = 0; k < t->ndim; k++)
			printf(" %" PRIu64, t->shape[k]);
		printf(" %zu %016" PRIx64 "\n", n, h);
		const struct md_tensor *f = md_model_find(m, t->name);
		if (f == NULL || strcmp(t->digest_alg, "xxh3-128") || strlen(t->digest) != 32 ||
		    (md_model_pack_default(m, t->pack) && !md_model_pack_default(m, f->pack)))
			return fail(-1);
	}
	size_t nd = 0;
	for (size_t i = 0; i < md_model_npacks(m); i++)
		nd += md_model_pack_default(m, i) == 1;
	printf("defaults %zu of %zu\n", nd, md_model_npacks(m));
	if (md_model_find(m, "no such tensor") != NULL)
		return fail(-1);
	md_close(m);
	md_close(m2);
	md_disconnect(c);
	printf("closed\n");
	return 0;
}
