/* Helpers shared by test_pack.c, test_safetensors.c and test_gguf.c (static:
 * included by each). Fixtures come from tests/unit/conv_fixtures.py run with
 * /usr/bin/python3; outputs are checked byte for byte against the source. */
#ifndef CONV_TESTUTIL_H
#define CONV_TESTUTIL_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"
#include "converters/convert.h"
#include "converters/export.h"
#include "converters/pack.h"
#include "converters/recipe.h"

/* The one pack a recipe reads from (no referenced packs). */
#define FX_PACKS(fd) ((struct recipe_packs){ &(fd), 1 })

static char fx_dir[256];
static char fx_script[512];

static inline int fx_sh(char *out, size_t outn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int fx_sh(char *out, size_t outn, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t n = 0;
	if (out) {
		n = fread(out, 1, outn - 1, f);
		out[n] = 0;
	} else {
		char tmp[4096];
		while (fread(tmp, 1, sizeof tmp, f) > 0)
			;
	}
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* mkdtemp + python fixtures ("make" and "hostile"). */
static inline int fx_setup(void **state)
{
	(void)state;
	const char *src = __FILE__;
	const char *slash = strrchr(src, '/');
	snprintf(fx_script, sizeof fx_script, "%.*s/conv_fixtures.py",
		 slash ? (int)(slash - src) : 1, slash ? src : ".");
	snprintf(fx_dir, sizeof fx_dir, "/tmp/md-conv-XXXXXX");
	if (!mkdtemp(fx_dir))
		return -1;
	if (fx_sh(NULL, 0, "/usr/bin/python3 %s make %s && /usr/bin/python3 %s hostile %s",
		  fx_script, fx_dir, fx_script, fx_dir))
		return -1;
	return 0;
}

static inline int fx_teardown(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf %s", fx_dir);
	if (getenv("FX_KEEP"))
		return 0;
	return system(cmd) == 0 ? 0 : -1;
}

static inline int fx_open(const char *name, uint64_t *size)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", fx_dir, name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && size && !fstat(fd, &st))
		*size = (uint64_t)st.st_size;
	return fd;
}

static inline int fx_tmp(void)
{
	int fd = open(fx_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	return fd;
}

/* Write an fd's contents to fx_dir/name (for the python reader). */
static inline int fx_save(int fd, const char *name)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", fx_dir, name);
	int out = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct stat st;
	if (out < 0 || fstat(fd, &st))
		return -1;
	uint8_t buf[65536];
	for (off_t o = 0; o < st.st_size;) {
		ssize_t n = pread(fd, buf, sizeof buf, o);
		if (n <= 0 || util_write_all(out, buf, (size_t)n))
			return -1;
		o += n;
	}
	close(out);
	return 0;
}

static inline void fx_sha_fd(int fd, uint8_t out[32])
{
	struct sha256 h;
	uint8_t buf[65536];
	ssize_t n;
	off_t o = 0;
	assert_int_equal(sha256_init(&h), 0);
	while ((n = pread(fd, buf, sizeof buf, o)) > 0) {
		sha256_update(&h, buf, (size_t)n);
		o += n;
	}
	sha256_final(&h, out);
}

struct fx_conv {
	int src, pack, recipe;
	uint64_t size;
	struct conv_result res;
	struct pack *p;
	struct recipe *r;
};

static inline void fx_conv_free(struct fx_conv *c)
{
	recipe_close(c->r);
	pack_close(c->p);
	close(c->src);
	if (c->pack >= 0)
		close(c->pack);
	if (c->recipe >= 0)
		close(c->recipe);
}

/* Convert a fixture; on success open the pack (verified) and recipe. */
static inline int fx_convert(const char *name, struct fx_conv *c)
{
	memset(c, 0, sizeof *c);
	c->src = fx_open(name, &c->size);
	assert_true(c->src >= 0);
	c->pack = fx_tmp();
	c->recipe = fx_tmp();
	assert_true(c->pack >= 0 && c->recipe >= 0);
	int rc = conv_convert(c->src, c->size, name, NULL, c->pack, c->recipe, &c->res);
	if (rc)
		return rc;
	assert_int_equal(pack_open(c->pack, PACK_VERIFY_DATA, &c->p), 0);
	assert_int_equal(recipe_open(c->recipe, &c->res.pack_size, 1, &c->r), 0);
	return 0;
}

/* Everything a round trip must satisfy. */
static inline void fx_check_roundtrip(struct fx_conv *c)
{
	uint8_t d[32];
	struct stat st;
	/* the reported digests are the files' */
	fx_sha_fd(c->src, d);
	assert_memory_equal(d, c->res.src_sha256, 32);
	/* a pack is named by its root digest (the verified reader's) */
	assert_memory_equal(pack_root(c->p), c->res.pack_root, 32);
	fx_sha_fd(c->recipe, d);
	assert_memory_equal(d, c->res.recipe_sha256, 32);
	assert_int_equal(fstat(c->pack, &st), 0);
	assert_int_equal((uint64_t)st.st_size, c->res.pack_size);
	assert_int_equal(fstat(c->recipe, &st), 0);
	assert_int_equal((uint64_t)st.st_size, c->res.recipe_size);
	/* every tensor: aligned, equal to its source bytes */
	assert_int_equal(pack_count(c->p), c->res.ntensors);
	for (size_t i = 0; i < pack_count(c->p); i++) {
		const struct pack_tensor *t = pack_tensor(c->p, i);
		assert_int_equal(t->offset % 4096, 0);
		assert_ptr_equal(pack_find(c->p, t->name), t);
		uint8_t *a = malloc(t->length + 1), *b = malloc(t->length + 1);
		assert_int_equal(util_pread_full(c->pack, a, t->length, (off_t)t->offset),
				 (ssize_t)t->length);
		assert_int_equal(util_pread_full(c->src, b, t->length, (off_t)t->src_off),
				 (ssize_t)t->length);
		assert_memory_equal(a, b, t->length);
		free(a);
		free(b);
	}
	/* the original, bit-exact, whole and by ranges */
	assert_int_equal(recipe_orig_size(c->r), c->size);
	assert_memory_equal(recipe_orig_sha256(c->r), c->res.src_sha256, 32);
	assert_memory_equal(recipe_pack_root(c->r), c->res.pack_root, 32);
	assert_int_equal(recipe_verify(c->r, FX_PACKS(c->pack)), 0);
	int out = fx_tmp();
	assert_int_equal(recipe_copy(c->r, FX_PACKS(c->pack), 0, c->size, out), 0);
	fx_sha_fd(out, d);
	assert_memory_equal(d, c->res.src_sha256, 32);
	close(out);
	uint8_t *orig = malloc(c->size + 1), *got = malloc(c->size + 1);
	assert_int_equal(util_pread_full(c->src, orig, c->size, 0), (ssize_t)c->size);
	srand(7);
	for (int k = 0; k < 200; k++) {
		uint64_t off = c->size ? (uint64_t)rand() % c->size : 0;
		uint64_t len = (uint64_t)rand() % (k < 100 ? 64 : 70000);
		if (len > c->size - off)
			len = c->size - off;
		assert_int_equal(recipe_read(c->r, FX_PACKS(c->pack), off, got, len), 0);
		assert_memory_equal(got, orig + off, len);
		if (k % 50 == 0) {
			int o2 = fx_tmp();
			assert_int_equal(recipe_copy(c->r, FX_PACKS(c->pack), off, len, o2), 0);
			assert_int_equal(util_pread_full(o2, got, len, 0), (ssize_t)len);
			assert_memory_equal(got, orig + off, len);
			close(o2);
		}
	}
	assert_int_equal(recipe_read(c->r, FX_PACKS(c->pack), c->size, got, 1), MD_EINVAL);
	/* segments cover the original in order */
	uint64_t pos = 0;
	for (size_t i = 0; i < recipe_nseg(c->r); i++) {
		const struct recipe_seg *s = recipe_seg(c->r, i);
		assert_int_equal(s->orig_off, pos);
		assert_int_equal(recipe_find(c->r, pos), i);
		pos += s->len;
	}
	assert_int_equal(pos, c->size);
	free(orig);
	free(got);
}

/* A file placed as conv_plan says (what a pull downloads), from a head of
 * its first head_len bytes, becomes the very pack and recipe conv_convert
 * made from it (c, fx_convert); known: the file's sha256 is given, as a
 * pull gives it. A placed file whose header differs from the head the plan
 * was made from is refused. */
static inline int fx_head(int src, uint64_t n)
{
	int fd = fx_tmp();
	uint8_t *b = malloc(n + 1);
	assert_int_equal(util_pread_full(src, b, n, 0), (ssize_t)n);
	assert_int_equal(util_write_all(fd, b, n), 0);
	free(b);
	return fd;
}

static inline void fx_check_placed(const char *name, struct fx_conv *c, uint64_t head_len,
				   int known)
{
	int head = fx_head(c->src, head_len);
	struct pack_seg *seg;
	size_t nseg;
	uint64_t psize;
	assert_int_equal(conv_plan(head, c->size, name, &seg, &nseg, &psize), 0);
	/* the pieces cover the file once, in order */
	uint64_t pos = 0;
	int placed = fx_tmp(), recipe = fx_tmp();
	uint8_t *b = malloc(c->size + 1);
	assert_int_equal(util_pread_full(c->src, b, c->size, 0), (ssize_t)c->size);
	for (size_t k = 0; k < nseg; k++) {
		assert_int_equal(seg[k].src, pos);
		assert_true(seg[k].dst + seg[k].len <= psize);
		pos += seg[k].len;
		assert_int_equal(pwrite(placed, b + seg[k].src, seg[k].len, (off_t)seg[k].dst),
				 (ssize_t)seg[k].len);
	}
	assert_int_equal(pos, c->size);
	struct conv_result r;
	const uint8_t *sha = known ? c->res.src_sha256 : NULL;
	assert_int_equal(conv_convert_placed(head, placed, c->size, name, sha, recipe, &r), 0);
	assert_memory_equal(r.src_sha256, c->res.src_sha256, 32);
	assert_memory_equal(r.pack_root, c->res.pack_root, 32);
	assert_memory_equal(r.recipe_sha256, c->res.recipe_sha256, 32);
	assert_int_equal(r.pack_size, c->res.pack_size);
	assert_int_equal(r.params, c->res.params);
	uint8_t d1[32], d2[32];
	fx_sha_fd(placed, d1);
	fx_sha_fd(c->pack, d2);
	assert_memory_equal(d1, d2, 32);   /* byte for byte the same pack */
	/* the placed header is not the head's: refused */
	assert_int_equal(ftruncate(placed, 0), 0);
	for (size_t k = 0; k < nseg; k++)
		assert_int_equal(pwrite(placed, b + seg[k].src, seg[k].len, (off_t)seg[k].dst),
				 (ssize_t)seg[k].len);
	assert_int_equal(pwrite(placed, "X", 1, (off_t)seg[0].dst + 9), 1);
	assert_int_equal(conv_convert_placed(head, placed, c->size, name, sha, recipe, &r),
			 MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "other header bytes"));
	free(b);
	free(seg);
	close(head);
	close(placed);
	close(recipe);
}

/* Conversion must fail, write nothing, and say why. Never MD_EUNSUP: that
 * means "not a weight file" and gets a file stored unchecked. */
static inline void fx_expect_refused(const char *name, const char *needle)
{
	struct fx_conv c;
	int rc = fx_convert(name, &c);
	const char *msg = md_errmsg(rc);
	if (rc == 0 || rc == MD_EUNSUP || !strstr(msg, needle))
		fail_msg("%s: rc %d, message \"%s\", expected \"%s\"", name, rc, msg, needle);
	struct stat st;
	assert_int_equal(fstat(c.pack, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(fstat(c.recipe, &st), 0);
	assert_int_equal(st.st_size, 0);
	fx_conv_free(&c);
}

#endif
