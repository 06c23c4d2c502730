/* The placed path a pull takes, for the harnesses of the formats a pull
 * places (safetensors, GGUF): conv_plan from the file as head, the file
 * written piece by piece where the plan says, conv_convert_placed, which
 * must give the same pack and recipe, byte for byte, as an ordinary
 * conversion; and a plan from any shorter head is none or the same plan
 * (a pull plans from the first bytes only). */
#ifndef FUZZ_PLACED_H
#define FUZZ_PLACED_H

#include <string.h>

#include "tests/fuzz/fuzz_common.h"

/* fd's first n bytes, or NULL when it holds another count */
static uint8_t *slurp(int fd, size_t *n)
{
	struct stat st;
	if (fstat(fd, &st))
		abort();
	*n = (size_t)st.st_size;
	uint8_t *b = malloc(*n ? *n : 1);
	if (!b || util_pread_full(fd, b, *n, 0) != (ssize_t)*n)
		abort();
	return b;
}

static int same_bytes(int a, int b)
{
	size_t na, nb;
	uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
	int eq = na == nb && memcmp(x, y, na) == 0;
	free(x);
	free(y);
	return eq;
}

static int soft(int rc)   /* a failure that is no bug: resources, or refused */
{
	return rc == MD_ENOMEM || rc == MD_ENOSPC || rc == MD_ETOOBIG;
}

static void fuzz_placed(int fd, const uint8_t *data, size_t size, const char *name)
{
	int p1 = memfd_create("pack", MFD_CLOEXEC), r1 = memfd_create("recipe", MFD_CLOEXEC);
	struct conv_result a, b;
	int rc1 = conv_convert(fd, size, name, NULL, p1, r1, &a);
	struct pack_seg *seg = NULL;
	size_t nseg = 0;
	uint64_t psize = 0;
	int rcp = conv_plan(fd, size, name, &seg, &nseg, &psize);
	if (rcp) {
		/* no plan for a file that converts: only what cannot be placed
		 * (overlapping tensors, too many pieces) or resources */
		if (!rc1 && rcp != MD_EUNSUP && !soft(rcp))
			fuzz_die("conv_plan of a convertible file", rcp);
		goto out;
	}
	if (rc1 && soft(rc1))
		goto out;
	/* the pieces cover the file in order, exactly once, inside the
	 * placed file, and no two land on the same bytes */
	uint64_t cov = 0;
	for (size_t i = 0; i < nseg; i++) {
		if (seg[i].src != cov || !seg[i].len || seg[i].dst > psize ||
		    seg[i].len > psize - seg[i].dst)
			fuzz_die("a piece out of place", MD_ECORRUPT);
		for (size_t j = 0; j < i; j++)
			if (seg[j].dst < seg[i].dst + seg[i].len && seg[i].dst < seg[j].dst + seg[j].len)
				fuzz_die("two pieces overlap", MD_ECORRUPT);
		cov += seg[i].len;
	}
	if (cov != size)
		fuzz_die("the pieces do not cover the file", MD_ECORRUPT);
	/* a head of the file's first k bytes (k from its last byte) plans the
	 * same or not at all */
	size_t k = size ? (size_t)((uint64_t)size * data[size - 1] / 256) : 0;
	int hd = fuzz_memfd(data, k);
	struct pack_seg *seg2 = NULL;
	size_t nseg2 = 0;
	uint64_t psize2 = 0;
	if (conv_plan(hd, size, name, &seg2, &nseg2, &psize2) == 0 &&
	    (nseg2 != nseg || psize2 != psize || memcmp(seg2, seg, nseg * sizeof *seg)))
		fuzz_die("a shorter head gave another plan", MD_ECORRUPT);
	free(seg2);
	close(hd);
	int pl = memfd_create("placed", MFD_CLOEXEC), r2 = memfd_create("recipe2", MFD_CLOEXEC);
	/* what the placed file holds between pieces is arbitrary: 0xa5 in
	 * its first MiB, zeros after */
	uint8_t junk[4096];
	memset(junk, 0xa5, sizeof junk);
	if (ftruncate(pl, (off_t)psize))
		abort();
	for (uint64_t o = 0; o < psize && o < (1u << 20); o += sizeof junk)
		if (pwrite(pl, junk, psize - o < sizeof junk ? psize - o : sizeof junk, (off_t)o) < 0)
			abort();
	for (size_t i = 0; i < nseg; i++)
		if (pwrite(pl, data + seg[i].src, seg[i].len, (off_t)seg[i].dst) != (ssize_t)seg[i].len)
			abort();
	int rc2 = conv_convert_placed(fd, pl, size, name, NULL, r2, &b);
	if (rc1 && !rc2)   /* the same checks must refuse it */
		fuzz_die("a placed conversion of a file that does not convert", rc1);
	if (!rc1 && rc2 && !soft(rc2))
		fuzz_die("conv_convert_placed", rc2);
	if (!rc1 && !rc2) {
		if (!same_bytes(p1, pl))
			fuzz_die("the placed pack differs from the ordinary one", MD_ECORRUPT);
		if (!same_bytes(r1, r2))
			fuzz_die("the placed recipe differs from the ordinary one", MD_ECORRUPT);
		if (memcmp(a.src_sha256, b.src_sha256, 32) || memcmp(a.pack_root, b.pack_root, 32) ||
		    memcmp(a.recipe_sha256, b.recipe_sha256, 32) || a.params != b.params)
			fuzz_die("the placed result differs from the ordinary one", MD_ECORRUPT);
	}
	close(pl);
	close(r2);
out:
	free(seg);
	close(p1);
	close(r1);
}

#endif
