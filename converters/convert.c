/* converters/convert.c — conv_convert: converter + pack + recipe; see
 * convert.h. */
#include "converters/convert.h"
#include "converters/pack.h"
#include "converters/recipe.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int find_and_parse(int src_fd, uint64_t src_size, const char *path,
			  struct conv_info *ci)
{
	const struct converter *cv;
	int tentative;
	int rc = conv_find_fd(src_fd, path, &cv, &tentative);
	if (rc)
		return rc;
	if (cv && tentative && cv->probe(src_fd, src_size) != 1)
		cv = NULL;
	if (!cv)
		return md_fail(MD_EUNSUP, "%s: not a weight file", path ? path : "file");
	rc = cv->parse(src_fd, src_size, ci);
	/* The file is a weight file from here on: MD_EUNSUP ("not a weight
	 * file, store it plain") would let it in unchecked. */
	if (rc == MD_EUNSUP) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", md_errmsg(rc));
		rc = strncmp(msg, "refused: ", 9) ? md_fail(MD_EREFUSED, "refused: %s", msg)
						  : md_fail(MD_EREFUSED, "%s", msg);
	}
	if (rc)
		return path ? md_fail_prefix(rc, path) : rc;
	if (!ci->format)
		ci->format = cv->name;
	return 0;
}

struct lit_arg {
	int fd;
	uint64_t base, pos;
};

static int lit_write(void *arg, uint64_t src_off, const uint8_t *p, size_t n)
{
	struct lit_arg *a = arg;
	(void)src_off;
	while (n) {
		ssize_t w = pwrite(a->fd, p, n, (off_t)(a->base + a->pos));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return md_fail(errno == ENOSPC ? MD_ENOSPC : MD_EIO, "recipe: write: %s",
				       strerror(errno));
		p += w;
		n -= (size_t)w;
		a->pos += (uint64_t)w;
	}
	return 0;
}

/* "218 MB", "3.6 MB", "900 bytes" (powers of 1000), for messages. */
static void human(uint64_t v, char *out, size_t n)
{
	static const char *const unit[] = { "kB", "MB", "GB", "TB", "PB", "EB" };
	if (v < 1000) {
		snprintf(out, n, "%llu bytes", (unsigned long long)v);
		return;
	}
	double d = (double)v / 1000;
	size_t u = 0;
	while (d >= 1000 && u + 1 < sizeof unit / sizeof unit[0]) {
		d /= 1000;
		u++;
	}
	snprintf(out, n, d < 100 ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

/* DESIGN 7: what an untrusted file can make us write is capped. Each stored
 * tensor takes a 4096-byte-aligned slot and a table entry, so a small file
 * of many tiny tensors would blow up in the store (50,000 one-byte tensors:
 * 3.6 MB -> 218 MB). The pack may exceed its source by at most the source's
 * size plus CONV_PACK_SLACK (docs/pack-format.md, section 4). */
static int check_growth(const struct conv_info *ci, const struct pack_layout *lay, uint64_t src_size)
{
	uint64_t limit = src_size > (UINT64_MAX - CONV_PACK_SLACK) / 2 ? UINT64_MAX
								: 2 * src_size + CONV_PACK_SLACK;
	if (lay->file_size <= limit)
		return 0;
	char p[32], s[32];
	human(lay->file_size, p, sizeof p);
	human(src_size, s, sizeof s);
	return md_fail(MD_EREFUSED, "refused: %zu tensors would need a %s pack for a %s file "
		       "(at most twice the file plus 64 MiB)", ci->n, p, s);
}

static void add_dtype(struct conv_result *r, uint32_t dt, uint64_t bytes)
{
	for (size_t i = 0; i < r->ndtypes; i++)
		if (r->dtypes[i].dtype == dt) {
			r->dtypes[i].tensors++;
			r->dtypes[i].bytes += bytes;
			return;
		}
	if (r->ndtypes < CONV_RESULT_MAX_DTYPES)
		r->dtypes[r->ndtypes++] = (struct conv_dtype_stat){ dt, 1, bytes };
}

int conv_convert(int src_fd, uint64_t src_size, const char *path, const uint8_t *src_sha256,
		 int pack_fd, int recipe_fd, struct conv_result *out)
{
	struct conv_info ci = { 0 };
	int rc;
	memset(out, 0, sizeof *out);
	if (!(rc = find_and_parse(src_fd, src_size, path, &ci))) {
		rc = conv_convert_info(src_fd, src_size, &ci, src_sha256, pack_fd, recipe_fd, out);
		if (rc && path)
			md_fail_prefix(rc, path);
	}
	conv_info_free(&ci);
	return rc;
}

/* conv_convert_info, or with placed_fd >= 0 the same from a placed file
 * (pack_write_placed; pack_fd unused). */
static int convert_info(int src_fd, int placed_fd, uint64_t src_size, const struct conv_info *cip,
			const uint8_t *src_sha256, int pack_fd, int recipe_fd,
			struct conv_result *out)
{
	const struct conv_info ci = *cip;
	struct pack_layout lay = { 0 };
	struct recipe_builder rb = { 0 };
	struct pack_written pw;
	int rc, wrote = 0;
	memset(out, 0, sizeof *out);
	if ((rc = pack_layout_init(&ci, src_size, &lay)) || (rc = check_growth(&ci, &lay, src_size)) ||
	    (rc = recipe_build(&ci, &lay, &rb)))
		goto out;
	wrote = 1;
	if (ftruncate(recipe_fd, 0)) {
		rc = md_fail(MD_EIO, "recipe: cannot truncate: %s", strerror(errno));
		goto out;
	}
	struct lit_arg la = { recipe_fd, recipe_lit_base(&rb), 0 };
	if (placed_fd >= 0) {
		pack_fd = placed_fd;
		rc = pack_write_placed(placed_fd, &ci, &lay, src_sha256, lit_write, &la, &pw);
	} else {
		rc = pack_write(src_fd, &ci, &lay, src_sha256, pack_fd, lit_write, &la, &pw);
	}
	if (rc)
		goto out;
	if (la.pos != rb.lit_len) {
		rc = md_fail(MD_EIO, "recipe: %llu literal bytes written, %llu planned",
			     (unsigned long long)la.pos, (unsigned long long)rb.lit_len);
		goto out;
	}
	if ((rc = recipe_write_index(recipe_fd, &rb, pw.src_sha256, pw.root)))
		goto out;
	out->recipe_size = recipe_lit_base(&rb) + rb.lit_len;
	if ((rc = sha256_fd(recipe_fd, out->recipe_size, out->recipe_sha256))) {
		md_fail(rc, "recipe: cannot read back");
		goto out;
	}
	snprintf(out->format, sizeof out->format, "%s", ci.format);
	out->ntensors = ci.n;
	out->nstored = lay.nstored;
	out->src_size = src_size;
	out->pack_size = pw.size;
	out->recipe_literal = rb.lit_len;
	memcpy(out->src_sha256, pw.src_sha256, 32);
	memcpy(out->pack_root, pw.root, 32);
	util_hex(out->src_sha256, 32, out->src_hex);
	util_hex(out->pack_root, 32, out->pack_hex);
	util_hex(out->recipe_sha256, 32, out->recipe_hex);
	for (size_t i = 0; i < ci.n; i++) {
		if (lay.alias[i] >= 0)
			continue;
		uint64_t ne = 1;
		for (uint32_t d = 0; d < ci.t[i].ndim; d++)
			ne *= ci.t[i].shape[d];   /* cannot overflow: checked by the layout */
		out->params += ne;
		add_dtype(out, ci.t[i].dtype, ci.t[i].len);
	}
out:
	if (rc && wrote) {
		if (ftruncate(pack_fd, 0) || ftruncate(recipe_fd, 0))
			(void)0;
	}
	if (rc)
		memset(out, 0, sizeof *out);
	recipe_builder_free(&rb);
	pack_layout_free(&lay);
	return rc;
}

int conv_convert_info(int src_fd, uint64_t src_size, const struct conv_info *ci,
		      const uint8_t *src_sha256, int pack_fd, int recipe_fd,
		      struct conv_result *out)
{
	return convert_info(src_fd, -1, src_size, ci, src_sha256, pack_fd, recipe_fd, out);
}

/* ---- placed files ---- */

/* Parse the head as a safetensors or GGUF file of src_size bytes and lay
 * it out. Both describe every tensor before the first tensor's bytes; a
 * torch zip's records are found from its end, so no head can plan it. */
static int placed_layout(int head_fd, uint64_t src_size, const char *path, struct conv_info *ci,
			 struct pack_layout *lay)
{
	int rc = find_and_parse(head_fd, src_size, path, ci);
	if (rc)
		return rc;
	if (strcmp(ci->format, "safetensors") && strcmp(ci->format, "gguf"))
		return md_fail(MD_EUNSUP, "%s: only safetensors and GGUF files are placed", path);
	if ((rc = pack_layout_init(ci, src_size, lay)) || (rc = check_growth(ci, lay, src_size)))
		return path ? md_fail_prefix(rc, path) : rc;
	return 0;
}

int conv_plan(int head_fd, uint64_t src_size, const char *path, struct pack_seg **segs,
	      size_t *nseg, uint64_t *placed_size)
{
	struct conv_info ci = { 0 };
	struct pack_layout lay = { 0 };
	int rc = placed_layout(head_fd, src_size, path, &ci, &lay);
	if (!rc)
		rc = pack_place(&ci, &lay, segs, nseg, placed_size);
	pack_layout_free(&lay);
	conv_info_free(&ci);
	return rc;
}

/* The header the plan was made from (the head's first piece: the header
 * and any hole after it) must be the placed file's: the download is what
 * was verified. Tensor bytes the head holds past it do not matter (a byte
 * damaged there in transit changes no plan). */
static int same_head(int head_fd, int placed_fd, const struct pack_seg *seg, size_t nseg,
		     const char *path)
{
	struct stat st;
	uint8_t a[1 << 16], b[1 << 16];
	if (fstat(head_fd, &st) < 0)
		return md_fail(MD_EIO, "%s: head: %s", path, strerror(errno));
	uint64_t end = nseg && seg[0].src == 0 ? seg[0].len : 0;
	if (end > (uint64_t)st.st_size)
		end = (uint64_t)st.st_size;
	for (uint64_t o = 0; o < end;) {
		size_t k = end - o < sizeof a ? (size_t)(end - o) : sizeof a;
		if (util_pread_full(head_fd, a, k, (off_t)o) != (ssize_t)k ||
		    util_pread_full(placed_fd, b, k, (off_t)(seg[0].dst + o)) != (ssize_t)k)
			return md_fail(MD_EIO, "%s: cannot read the placed file back", path);
		if (memcmp(a, b, k))
			return md_fail(MD_ECORRUPT, "%s: the hub sent other header bytes to a "
				       "ranged request than in the file", path);
		o += k;
	}
	return 0;
}

int conv_convert_placed(int head_fd, int placed_fd, uint64_t src_size, const char *path,
			const uint8_t *src_sha256, int recipe_fd, struct conv_result *out)
{
	struct conv_info ci = { 0 };
	struct pack_layout lay = { 0 };
	struct pack_seg *seg = NULL;
	size_t nseg = 0;
	uint64_t psize;
	memset(out, 0, sizeof *out);
	int rc = placed_layout(head_fd, src_size, path, &ci, &lay);
	if (!rc && !(rc = pack_place(&ci, &lay, &seg, &nseg, &psize)) &&
	    !(rc = same_head(head_fd, placed_fd, seg, nseg, path ? path : "file"))) {
		rc = convert_info(-1, placed_fd, src_size, &ci, src_sha256, -1, recipe_fd, out);
		if (rc && path)
			md_fail_prefix(rc, path);
	}
	free(seg);
	pack_layout_free(&lay);
	conv_info_free(&ci);
	return rc;
}
