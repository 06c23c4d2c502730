/* registry/ingest.c — see ingest.h. */
#include "registry/ingest.h"
#include "registry/catalog.h"
#include "registry/share.h"
#include "registry/stindex.h"
#include "registry/wfacts.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (4u << 20)

struct ingest {
	struct store *st;
	struct ingest_ctl *ctl;
	char dir[4096];
	int lock_fd;
	json_t *files;        /* [{path,size,sha256,blob,staged}] */
	json_t *paths;        /* set of relpaths, for duplicates */
	json_t *pathlist;     /* last ingest_paths() answer */
	unsigned seq;
	uint8_t *buf;
	const struct ingest_converter *conv;
	struct share_map *share;   /* tensors of the packs staged so far */
	int replace;          /* ingest_set_replace */
	pthread_mutex_t mu;   /* files, paths, seq: ingest_add_file may run in
				 several threads at once */
};

void ingest_set_converter(struct ingest *ing, const struct ingest_converter *conv)
{
	ing->conv = conv;
}

void ingest_set_replace(struct ingest *ing)
{
	ing->replace = 1;
}

json_t *ingest_files(struct ingest *ing)
{
	return ing->files;
}

int ingest_begin(struct store *st, struct ingest_ctl *ctl, struct ingest **out)
{
	struct ingest *ing = calloc(1, sizeof *ing);
	if (!ing)
		return MD_ENOMEM;
	ing->st = st;
	ing->ctl = ctl;
	pthread_mutex_init(&ing->mu, NULL);
	ing->lock_fd = -1;
	ing->files = json_array();
	ing->paths = json_object();
	ing->share = share_map_new();
	snprintf(ing->dir, sizeof ing->dir, "%s/tmp/ing-XXXXXX", st->root);
	if (!ing->files || !ing->paths || !ing->share || !mkdtemp(ing->dir)) {
		int rc = md_fail(MD_EIO, "%s: %s", ing->dir, strerror(errno));
		ing->dir[0] = 0;
		ingest_free(ing);
		return rc;
	}
	char p[4200];
	snprintf(p, sizeof p, "%s/.lock", ing->dir);
	ing->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ing->lock_fd < 0 || flock(ing->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = md_fail(MD_EIO, "%s: %s", p, strerror(errno));
		ingest_free(ing);
		return rc;
	}
	*out = ing;
	return 0;
}

const char *ingest_dir(const struct ingest *ing)
{
	return ing->dir;
}

int ingest_open(struct ingest *ing, const char *relpath)
{
	size_t i;
	json_t *f;
	json_array_foreach(ing->files, i, f) {
		if (strcmp(json_string_value(json_object_get(f, "path")), relpath))
			continue;
		const char *blob = json_string_value(json_object_get(f, "blob"));
		const char *staged = json_string_value(json_object_get(json_object_get(f, "stage"),
								       blob ? blob : ""));
		if (!blob)
			return md_fail(MD_EUNSUP, "%s: converted weight file", relpath);
		char p[4200];
		if (staged)
			snprintf(p, sizeof p, "%s/%s", ing->dir, staged);
		else /* ingest_add_existing: the stored blob */
			store_blob_path(ing->st, blob, p, sizeof p);
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		return fd < 0 ? md_fail(MD_EIO, "%s: %s", relpath, strerror(errno)) : fd;
	}
	return md_fail(MD_ENOENT, "%s: not in this import", relpath);
}

json_t *ingest_paths(struct ingest *ing)
{
	json_t *a = json_array();
	size_t i;
	json_t *f;
	json_array_foreach(ing->files, i, f)
		json_array_append(a, json_object_get(f, "path"));
	json_decref(ing->pathlist);
	ing->pathlist = a;
	return a;
}

static int claim_path(struct ingest *ing, const char *relpath)
{
	int rc = util_check_relpath(relpath);
	if (rc)
		return rc;
	pthread_mutex_lock(&ing->mu);
	if (json_object_get(ing->paths, relpath))
		rc = md_fail(MD_EREFUSED, "%s: duplicate file", relpath);
	else if (json_object_size(ing->paths) >= INGEST_MAX_FILES)
		rc = md_fail(MD_ETOOBIG, "more than %d files", INGEST_MAX_FILES);
	else
		json_object_set_new(ing->paths, relpath, json_true());
	pthread_mutex_unlock(&ing->mu);
	return rc;
}

/* Take back a claim whose add failed before anything was recorded. */
static void unclaim_path(struct ingest *ing, const char *relpath)
{
	pthread_mutex_lock(&ing->mu);
	json_object_del(ing->paths, relpath);
	pthread_mutex_unlock(&ing->mu);
}

static unsigned next_seq(struct ingest *ing)
{
	pthread_mutex_lock(&ing->mu);
	unsigned n = ing->seq++;
	pthread_mutex_unlock(&ing->mu);
	return n;
}

static int append_file(struct ingest *ing, json_t *f)
{
	if (!f)
		return MD_ENOMEM;
	pthread_mutex_lock(&ing->mu);
	int rc = json_array_append_new(ing->files, f) ? MD_ENOMEM : 0;
	pthread_mutex_unlock(&ing->mu);
	return rc;
}

/*
 * Hold on to stored blob hex for the entry of relpath with a hard link in
 * staging, recorded in its "stage" map: an rm and gc before the commit
 * cannot take it away, since place_blobs puts it back. MD_ENOENT (not
 * logged) when the store has no such blob.
 */
static int hold_stored(struct ingest *ing, const char *relpath, json_t *stage, const char *hex)
{
	char src[4096], name[16], dst[4200];
	if (json_object_get(stage, hex))
		return 0;
	store_blob_path(ing->st, hex, src, sizeof src);
	snprintf(name, sizeof name, "x%06u", next_seq(ing));
	snprintf(dst, sizeof dst, "%s/%s", ing->dir, name);
	if (link(src, dst) < 0)
		return errno == ENOENT ? MD_ENOENT
				       : md_fail(md_from_errno(errno), "%s: %s", relpath,
						 strerror(errno));
	return json_object_set_new(stage, hex, json_string(name)) ? MD_ENOMEM : 0;
}

/* "stage" maps each blob the entry needs to its staged file name. */
static int record(struct ingest *ing, const char *relpath, uint64_t size,
		  const char *hex, const char *staged)
{
	return append_file(ing, json_pack("{s:s,s:I,s:s,s:s,s:{s:s}}", "path", relpath, "size",
					  (json_int_t)size, "sha256", hex, "blob", hex, "stage",
					  hex, staged));
}

static int stage_open(struct ingest *ing, char *name, size_t n, char prefix)
{
	char p[4200];
	snprintf(name, n, "%c%06u", prefix, next_seq(ing));
	snprintf(p, sizeof p, "%s/%s", ing->dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	return fd < 0 ? md_fail(MD_EIO, "%s: %s", p, strerror(errno)) : fd;
}

static void stage_unlink(struct ingest *ing, const char *name)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", ing->dir, name);
	unlink(p);
}

static int claims(struct ingest *ing, int fd, const char *relpath)
{
	return ing->conv && ing->conv->claims(ing->conv->arg, fd, relpath);
}

struct share_open {
	struct ingest *ing;
	char pn[32], rn[32];   /* staged names of the outputs opened */
};

static int share_open_out(void *arg, char kind, char *path, size_t n)
{
	struct share_open *o = arg;
	char *name = kind == 'p' ? o->pn : o->rn;
	int fd = stage_open(o->ing, name, 32, kind);
	if (fd >= 0 && path)
		snprintf(path, n, "%s/%s", o->ing->dir, name);
	return fd;
}

/* Store once what the store or this import holds already: when the pack
 * can share tensors, the staged pack and recipe (*pfd/pn, *rfd/rn) are
 * replaced by rewritten ones, info gets their names and sizes and *refs
 * the packs they refer to. */
static int share_staged(struct ingest *ing, const char *relpath, int *pfd, char *pn, int *rfd,
			char *rn, json_t *info, json_t **refs)
{
	struct share_open o = { ing, "", "" };
	struct share_out out;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", ing->dir, pn);
	int rc = share_pack(ing->st, ing->share, *pfd, path, *rfd, share_open_out, &o, &out);
	if (rc <= 0) {
		if (o.pn[0])
			stage_unlink(ing, o.pn);
		if (o.rn[0])
			stage_unlink(ing, o.rn);
		/* no room for the rewrite: keep the file as converted (sharing
		 * saves space; it must not be why an import fails) */
		if (rc == MD_ENOSPC)
			return 0;
		return rc < 0 ? md_fail_prefix(rc, relpath) : 0;
	}
	int np = -1, nr = -1;
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", ing->dir, o.pn);
	np = open(p, O_RDONLY | O_CLOEXEC);
	snprintf(p, sizeof p, "%s/%s", ing->dir, o.rn);
	nr = open(p, O_RDONLY | O_CLOEXEC);
	if (np < 0 || nr < 0) {
		rc = md_fail(MD_EIO, "%s: %s", relpath, strerror(errno));
		if (np >= 0)
			close(np);
		if (nr >= 0)
			close(nr);
		stage_unlink(ing, o.pn);
		stage_unlink(ing, o.rn);
		json_decref(out.refs);
		return rc;
	}
	close(*pfd);
	close(*rfd);
	stage_unlink(ing, pn);
	stage_unlink(ing, rn);
	*pfd = np;
	*rfd = nr;
	memcpy(pn, o.pn, 32);
	memcpy(rn, o.rn, 32);
	json_object_set_new(info, "pack", json_string(out.pack));
	json_object_set_new(info, "recipe", json_string(out.recipe));
	json_object_set_new(info, "pack_size", json_integer((json_int_t)out.pack_size));
	json_object_set_new(info, "recipe_size", json_integer((json_int_t)out.recipe_size));
	*refs = out.refs;
	return 0;
}

static int record_converted(struct ingest *ing, const char *relpath, uint64_t size,
			    const char *expect, int rc, json_t *info, int pfd, char *pn, int rfd,
			    char *rn);

/* Stage the recipe (rn[32]) beside the staged pack pn; on failure the pack
 * is closed and unstaged. The recipe's fd, or an MD_E* code. */
static int stage_recipe(struct ingest *ing, int pfd, const char *pn, char *rn)
{
	int rfd = stage_open(ing, rn, 32, 'r');
	if (rfd < 0) {
		close(pfd);
		stage_unlink(ing, pn);
	}
	return rfd;
}

/* Convert fd into a staged pack and recipe through the daemon's worker.
 * MD_EUNSUP when it turns out not to be a weight file. */
static int add_converted(struct ingest *ing, const char *relpath, int fd, uint64_t size,
			 const char *expect)
{
	char pn[32], rn[32];
	int pfd = stage_open(ing, pn, sizeof pn, 'p');
	if (pfd < 0)
		return pfd;
	int rfd = stage_recipe(ing, pfd, pn, rn);
	if (rfd < 0)
		return rfd;
	json_t *info = NULL;
	int rc = ing->conv->convert(ing->conv->arg, fd, size, relpath, expect, pfd, rfd, &info);
	return record_converted(ing, relpath, size, expect, rc, info, pfd, pn, rfd, rn);
}

/* What a conversion (rc, info) gave for relpath: checked, shared, fsync'd
 * and recorded; the staged outputs (pfd/pn, rfd/rn, closed here) are
 * removed on failure. */
static int record_converted(struct ingest *ing, const char *relpath, uint64_t size,
			    const char *expect, int rc, json_t *info, int pfd, char *pn, int rfd,
			    char *rn)
{
	const char *sha = json_string_value(json_object_get(info, "sha256"));
	const char *pack = json_string_value(json_object_get(info, "pack"));
	const char *recipe = json_string_value(json_object_get(info, "recipe"));
	if (!rc && (!sha || !pack || !recipe || !util_is_hex(sha, 64) || !util_is_hex(pack, 64) ||
		    !util_is_hex(recipe, 64)))
		rc = md_fail(MD_EIO, "%s: malformed converter result", relpath);
	if (!rc && (uint64_t)json_integer_value(json_object_get(info, "size")) != size)
		rc = md_fail(MD_ECORRUPT, "%s: changed size while being imported", relpath);
	if (!rc && expect && strcmp(expect, sha))
		rc = md_fail(MD_ECORRUPT, "%s: sha256 %s does not match the expected %s", relpath,
			     sha, expect);
	json_t *refs = NULL;
	if (!rc)
		rc = share_staged(ing, relpath, &pfd, pn, &rfd, rn, info, &refs);
	pack = json_string_value(json_object_get(info, "pack"));
	recipe = json_string_value(json_object_get(info, "recipe"));
	if (!rc && (fdatasync(pfd) < 0 || fdatasync(rfd) < 0))
		rc = md_fail(md_from_errno(errno), "%s: fsync: %s", relpath, strerror(errno));
	close(pfd);
	close(rfd);
	if (rc) {
		stage_unlink(ing, pn);
		stage_unlink(ing, rn);
		json_decref(info);
		json_decref(refs);
		return rc;
	}
	json_t *f = json_pack("{s:s,s:I,s:s,s:s,s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:{s:s,s:s}}",
			      "path", relpath, "size", (json_int_t)size, "sha256", sha,
			      "pack", pack, "recipe", recipe,
			      "pack_size", json_object_get(info, "pack_size"),
			      "recipe_size", json_object_get(info, "recipe_size"),
			      "format", json_object_get(info, "format"),
			      "tensors", json_object_get(info, "tensors"),
			      "params", json_object_get(info, "params"),
			      "dtype_bytes", json_object_get(info, "dtype_bytes"),
			      "stage", pack, pn, recipe, rn);
	if (f && refs) {
		json_object_set(f, "refs", refs);
		/* a referenced pack in the store is held like ingest_add_existing's
		 * blobs; one this import staged itself is not in the store yet */
		size_t k;
		json_t *r;
		json_array_foreach(refs, k, r) {
			int hr = hold_stored(ing, relpath, json_object_get(f, "stage"),
					     json_string_value(json_object_get(r, "pack")));
			if (hr && hr != MD_ENOENT) {
				stage_unlink(ing, pn);
				stage_unlink(ing, rn);
				json_decref(f);
				json_decref(refs);
				json_decref(info);
				return hr;
			}
		}
	}
	json_decref(refs);
	json_decref(info);
	if ((rc = append_file(ing, f)))
		return rc;
	if (ing->ctl)
		atomic_fetch_add(&ing->ctl->done, size);
	return 0;
}

int ingest_add_fd(struct ingest *ing, const char *relpath, int fd)
{
	struct stat st;
	int rc = claim_path(ing, relpath);
	if (rc)
		return rc;
	if (fstat(fd, &st) < 0)
		return md_fail(MD_EIO, "%s: %s", relpath, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return md_fail(MD_EINVAL, "%s: not a regular file", relpath);
	if (claims(ing, fd, relpath)) {
		rc = add_converted(ing, relpath, fd, (uint64_t)st.st_size, NULL);
		if (rc != MD_EUNSUP)
			return rc;
	}
	if (!ing->buf && !(ing->buf = malloc(COPY_BUF)))
		return MD_ENOMEM;
	char staged[32], p[4200];
	snprintf(staged, sizeof staged, "f%06u", next_seq(ing));
	snprintf(p, sizeof p, "%s/%s", ing->dir, staged);
	int out = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (out < 0)
		return md_fail(MD_EIO, "%s: %s", p, strerror(errno));
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	struct sha256 h;
	if ((rc = sha256_init(&h))) {
		close(out);
		return rc;
	}
	uint64_t got = 0;
	off_t off = 0;
	for (;;) {
		if (ing->ctl && atomic_load(&ing->ctl->cancel)) {
			rc = md_fail(MD_ECANCELED, "%s: canceled", relpath);
			break;
		}
		ssize_t n = pread(fd, ing->buf, COPY_BUF, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = md_fail(MD_EIO, "%s: read: %s", relpath, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		sha256_update(&h, ing->buf, (size_t)n);
		if ((rc = util_write_all(out, ing->buf, (size_t)n))) {
			rc = md_fail(rc, "%s: write to the store: %s", relpath,
				     rc == MD_ENOSPC ? "no space left on device" : strerror(errno));
			break;
		}
		off += n;
		got += (uint64_t)n;
		if (ing->ctl)
			atomic_fetch_add(&ing->ctl->done, (uint64_t)n);
	}
	if (!rc && got != (uint64_t)st.st_size)
		rc = md_fail(MD_ECORRUPT, "%s: changed size while being imported", relpath);
	if (!rc && fdatasync(out) < 0)
		rc = md_fail(md_from_errno(errno), "%s: fsync: %s", relpath, strerror(errno));
	if (close(out) < 0 && !rc)
		rc = md_fail(MD_EIO, "%s: close: %s", relpath, strerror(errno));
	if (rc) {
		sha256_free(&h);
		unlink(p);
		return rc;
	}
	uint8_t d[32];
	char hex[65];
	sha256_final(&h, d);
	util_hex(d, 32, hex);
	return record(ing, relpath, got, hex, staged);
}

int ingest_add_existing(struct ingest *ing, const char *relpath, json_t *entry)
{
	int rc = claim_path(ing, relpath);
	if (rc)
		return rc;
	json_t *f = json_deep_copy(entry);
	if (!f)
		return MD_ENOMEM;
	json_object_set_new(f, "path", json_string(relpath));
	json_t *stage = json_object();
	json_object_set_new(f, "stage", stage);
	const char *hx[STORE_ENTRY_MAX_BLOBS];
	size_t n = store_entry_blobs(f, hx, NULL, STORE_ENTRY_MAX_BLOBS);
	for (size_t k = 0; k < n && !rc; k++)
		rc = hold_stored(ing, relpath, stage, hx[k]);
	if (rc == MD_ENOENT)
		rc = md_fail(MD_EBUSY, "%s: stored data went away during the import; retry", relpath);
	if (rc) {
		json_decref(f);
		return rc;
	}
	if ((rc = append_file(ing, f)))
		return rc;
	if (ing->ctl)
		atomic_fetch_add(&ing->ctl->done, (uint64_t)json_integer_value(json_object_get(f, "size")));
	return 0;
}

/* Open a download at abs_path whose writer verified sha256 (flags:
 * O_RDONLY or O_RDWR) into *sb: the fd, or an MD_E* code naming relpath. */
static int open_download(const char *relpath, const char *abs_path, const char *sha256,
			 int flags, struct stat *sb)
{
	int rc;
	if (!sha256 || !util_is_hex(sha256, 64))
		return md_fail(MD_EINVAL, "%s: no verified sha256", relpath);
	int fd = open(abs_path, flags | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		rc = md_fail(MD_EIO, "%s: %s", relpath, fd < 0 ? strerror(errno) : "not a file");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

int ingest_add_file(struct ingest *ing, const char *relpath, const char *abs_path,
		    const char *sha256)
{
	struct stat sb;
	int rc = claim_path(ing, relpath), fd;
	if (rc)
		return rc;
	if ((fd = open_download(relpath, abs_path, sha256, O_RDONLY, &sb)) < 0)
		return fd;
	if (claims(ing, fd, relpath)) {
		rc = add_converted(ing, relpath, fd, (uint64_t)sb.st_size, sha256);
		close(fd);
		if (rc != MD_EUNSUP)
			return rc;
		if ((fd = open(abs_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			return md_fail(MD_EIO, "%s: %s", relpath, strerror(errno));
	}
	/* the writer may have left the bytes to us to make durable */
	rc = fdatasync(fd) < 0 ? md_fail(md_from_errno(errno), "%s: fsync: %s", relpath,
					  strerror(errno)) : 0;
	close(fd);
	if (rc)
		return rc;
	char staged[32], p[4200];
	snprintf(staged, sizeof staged, "f%06u", next_seq(ing));
	snprintf(p, sizeof p, "%s/%s", ing->dir, staged);
	if (link(abs_path, p) < 0)
		return md_fail(md_from_errno(errno), "%s: %s", relpath, strerror(errno));
	chmod(p, 0444);
	if (ing->ctl)
		atomic_fetch_add(&ing->ctl->done, (uint64_t)sb.st_size);
	return record(ing, relpath, (uint64_t)sb.st_size, sha256, staged);
}

static int add_placed(struct ingest *ing, const char *relpath, const char *abs_path,
		      int head_fd, uint64_t size, const char *sha256)
{
	struct stat sb;
	int rc, fd = open_download(relpath, abs_path, sha256, O_RDWR, &sb);
	if (fd < 0)
		return fd;
	/* the download becomes the staged pack (a second name for it: the
	 * caller removes abs_path once what was staged is kept) */
	char pn[32], rn[32], p[4200];
	snprintf(pn, sizeof pn, "p%06u", next_seq(ing));
	snprintf(p, sizeof p, "%s/%s", ing->dir, pn);
	if (link(abs_path, p) < 0) {
		rc = md_fail(md_from_errno(errno), "%s: %s", relpath, strerror(errno));
		close(fd);
		return rc;
	}
	int rfd = stage_recipe(ing, fd, pn, rn);
	if (rfd < 0)
		return rfd;
	json_t *info = NULL;
	rc = ing->conv->convert_placed(ing->conv->arg, head_fd, fd, size, relpath, sha256, rfd,
				       &info);
	if (!rc && fchmod(fd, 0444) < 0)
		rc = md_fail(MD_EIO, "%s: chmod: %s", relpath, strerror(errno));
	return record_converted(ing, relpath, size, sha256, rc, info, fd, pn, rfd, rn);
}

int ingest_add_placed(struct ingest *ing, const char *relpath, const char *abs_path,
		      int head_fd, uint64_t size, const char *sha256)
{
	if (!ing->conv || !ing->conv->convert_placed)
		return md_fail(MD_EINVAL, "%s: no converter for a placed file", relpath);
	int rc = claim_path(ing, relpath);
	if (rc)
		return rc;
	if ((rc = add_placed(ing, relpath, abs_path, head_fd, size, sha256)))
		unclaim_path(ing, relpath);
	return rc;
}

int ingest_add_hashed(struct ingest *ing, const char *relpath, const char *staged_name,
		      const char *sha256)
{
	if (!sha256 || !util_is_hex(sha256, 64))
		return md_fail(MD_EINVAL, "%s: malformed sha256", relpath);
	int rc = claim_path(ing, relpath);
	if (rc)
		return rc;
	if (strchr(staged_name, '/') || staged_name[0] == '.')
		return md_fail(MD_EINVAL, "%s: bad staged name", staged_name);
	char p[4200];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", ing->dir, staged_name);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return md_fail(MD_EIO, "%s: %s", relpath, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return md_fail(MD_EIO, "%s: not a staged file", relpath);
	}
	if (claims(ing, fd, relpath)) {
		/* a weight file: keep its pack + recipe, not the staged copy */
		rc = add_converted(ing, relpath, fd, (uint64_t)st.st_size, sha256);
		close(fd);
		if (rc == 0)
			unlink(p);
		if (rc != MD_EUNSUP)
			return rc;
		if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			return md_fail(MD_EIO, "%s: %s", relpath, strerror(errno));
		rc = 0;
	}
	if (fdatasync(fd) < 0)
		rc = md_fail(md_from_errno(errno), "%s: fsync: %s", relpath, strerror(errno));
	fchmod(fd, 0444);
	close(fd);
	return rc ? rc : record(ing, relpath, (uint64_t)st.st_size, sha256, staged_name);
}

static int cmp_path(const void *a, const void *b)
{
	json_t *const *x = a, *const *y = b;
	return strcmp(json_string_value(json_object_get(*x, "path")),
		      json_string_value(json_object_get(*y, "path")));
}

static void sort_files(json_t *files)
{
	size_t n = json_array_size(files);
	json_t **v = malloc(n * sizeof *v);
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(files, i));
	qsort(v, n, sizeof *v, cmp_path);
	json_array_clear(files);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(files, v[i]);
	free(v);
}

static void content_rev(json_t *files, char rev[41])
{
	struct sha256 h;
	uint8_t d[32];
	char hex[65];
	size_t i;
	json_t *f;
	if (sha256_init(&h)) {
		memset(rev, '0', 40);
		rev[40] = 0;
		return;
	}
	json_array_foreach(files, i, f) {
		char line[1200];
		int n = snprintf(line, sizeof line, "%s%c%" JSON_INTEGER_FORMAT "%c%s\n",
				 json_string_value(json_object_get(f, "path")), 0,
				 json_integer_value(json_object_get(f, "size")), 0,
				 json_string_value(json_object_get(f, "sha256")));
		sha256_update(&h, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	}
	sha256_final(&h, d);
	util_hex(d, 32, hex);
	memcpy(rev, hex, 40);
	rev[40] = 0;
}

/*
 * A converted pack whose name (root digest) is stored already, or staged
 * twice by this import, is kept once; the root commits to the tensors
 * through their digests, which are not collision-resistant
 * (converters/tdigest.h), so the files must be equal. They are in any
 * genuine case; a file crafted to collide is refused before anything is
 * placed.
 */
static int check_same_packs(struct ingest *ing)
{
	json_t *first = json_object(), *f;
	size_t i;
	int rc = first ? 0 : MD_ENOMEM;
	json_array_foreach(ing->files, i, f) {
		const char *hex = json_string_value(json_object_get(f, "pack"));
		const char *st = json_string_value(json_object_get(json_object_get(f, "stage"), hex));
		char src[4200], dst[4200];
		struct stat a, b;
		if (rc)
			break;
		if (!hex || !st)
			continue;
		snprintf(src, sizeof src, "%s/%s", ing->dir, st);
		const char *seen = json_string_value(json_object_get(first, hex));
		if (seen)
			snprintf(dst, sizeof dst, "%s", seen);
		else
			store_blob_path(ing->st, hex, dst, sizeof dst);
		if (!seen && json_object_set_new(first, hex, json_string(src)))
			rc = MD_ENOMEM;
		if (rc || stat(dst, &b) < 0 ||
		    (stat(src, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino))
			continue;   /* not stored, or held by a link to the stored one */
		const char *path = json_string_value(json_object_get(f, "path"));
		int same = util_same_contents(src, dst);
		if (same < 0)
			rc = md_fail(same, "%s: cannot compare with pack %.12s", path, hex);
		else if (!same)
			rc = md_fail(MD_ECORRUPT, "%s: converted to a pack named %.12s like another, but "
				     "with other bytes (tensor digest collision); not imported", path,
				     hex);
	}
	json_decref(first);
	return rc;
}

/* Move each staged file into blobs/ unless the blob is there already, then
 * check that every blob the files name is there (a file may refer to
 * another's pack). Runs inside the write transaction, so no rm or gc can
 * interleave (nor another import place the same pack
 * between the comparison and the rename). */
static int place_blobs(struct ingest *ing)
{
	size_t i;
	json_t *f;
	int rc = check_same_packs(ing);
	if (rc)
		return rc;
	json_array_foreach(ing->files, i, f) {
		const char *hex;
		json_t *st;
		json_object_foreach(json_object_get(f, "stage"), hex, st) {
			char src[4200], dst[4096], dir[4096];
			snprintf(src, sizeof src, "%s/%s", ing->dir, json_string_value(st));
			store_blob_path(ing->st, hex, dst, sizeof dst);
			if (access(dst, F_OK) == 0) {
				unlink(src);
				continue;
			}
			snprintf(dir, sizeof dir, "%s/blobs/sha256/%.2s", ing->st->root, hex);
			if (mkdir(dir, 0755) < 0 && errno != EEXIST)
				return md_fail(MD_EIO, "%s: %s", dir, strerror(errno));
			if (rename(src, dst) < 0)
				return md_fail(md_from_errno(errno), "%s: %s",
					       json_string_value(json_object_get(f, "path")),
					       strerror(errno));
			if (util_fsync_dir(dir))
				return md_fail(MD_EIO, "%s: fsync failed", dir);
		}
	}
	json_array_foreach(ing->files, i, f) {
		const char *hx[STORE_ENTRY_MAX_BLOBS];
		size_t n = store_entry_blobs(f, hx, NULL, STORE_ENTRY_MAX_BLOBS);
		for (size_t k = 0; k < n; k++) {
			char dst[4096];
			if (json_object_get(json_object_get(f, "stage"), hx[k]))
				continue;   /* placed just above */
			store_blob_path(ing->st, hx[k], dst, sizeof dst);
			if (access(dst, F_OK) < 0)
				return md_fail(MD_EBUSY, "%s: stored data went away during the import; retry",
					       json_string_value(json_object_get(f, "path")));
		}
	}
	char top[4096];
	snprintf(top, sizeof top, "%s/blobs/sha256", ing->st->root);
	return util_fsync_dir(top);
}

/* stindex_open_fn: blob hex of entry f, staged by this ingest or stored. */
static int open_entry_blob(void *arg, const json_t *f, const char *hex)
{
	struct ingest *ing = arg;
	const char *staged = json_string_value(json_object_get(json_object_get(f, "stage"), hex));
	char p[4200];
	if (staged)
		snprintf(p, sizeof p, "%s/%s", ing->dir, staged);
	else
		store_blob_path(ing->st, hex, p, sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? md_fail(md_from_errno(errno), "%s: %s", hex, strerror(errno)) : fd;
}

int ingest_weight_facts(struct ingest *ing, json_t **out)
{
	return wfacts_compute(ing->files, open_entry_blob, ing, out);
}

int ingest_commit(struct ingest *ing, const char *name, const char *rev, const char *ref,
		  json_t *extra, json_t **manifest_out)
{
	int rc;
	if (json_array_size(ing->files) == 0)
		return md_fail(MD_EINVAL, "%s: no files to import", name);
	sort_files(ing->files);
	/* a sharded safetensors index must agree with the shards it names */
	if ((rc = stindex_check(ing->files, open_entry_blob, ing)))
		return rc;
	char crev[41], now[32];
	if (!rev) {
		content_rev(ing->files, crev);
		rev = crev;
	}
	util_now_iso(now, sizeof now);
	json_t *files = json_array();
	uint64_t total = 0;
	size_t i;
	json_t *f;
	json_array_foreach(ing->files, i, f) {
		json_t *c = json_deep_copy(f);
		json_object_del(c, "stage");
		json_array_append_new(files, c);
		total += (uint64_t)json_integer_value(json_object_get(f, "size"));
	}
	json_t *m = json_pack("{s:i,s:s,s:s,s:o,s:I,s:s}", "v", STORE_SCHEMA, "name", name,
			      "revision", rev, "files", files, "total_size", (json_int_t)total,
			      "imported_at", now);
	if (!m)
		return MD_ENOMEM;
	if (extra)
		json_object_update_missing(m, extra);
	MDB_txn *txn;
	if ((rc = store_txn(ing->st, 1, &txn))) {
		json_decref(m);
		return rc;
	}
	int existed = 0;
	if ((rc = place_blobs(ing)) || (rc = share_map_commit(ing->share, ing->st, txn)) ||
	    (rc = (ing->replace ? catalog_replace_rev : catalog_put_rev)(ing->st, txn, m, ref,
									  &existed))) {
		mdb_txn_abort(txn);
		json_decref(m);
		return rc;
	}
	if ((rc = store_commit(txn))) {
		json_decref(m);
		return rc;
	}
	if (existed && !ing->replace) {
		/* report the stored record, not the one we built */
		json_t *old;
		if (store_txn(ing->st, 0, &txn) == 0) {
			if (catalog_get_rev(ing->st, txn, name, rev, &old) == 0) {
				json_decref(m);
				m = old;
			}
			mdb_txn_abort(txn);
		}
		json_object_set_new(m, "existed", json_true());
	}
	if (manifest_out)
		*manifest_out = m;
	else
		json_decref(m);
	return 0;
}

void ingest_free(struct ingest *ing)
{
	if (!ing)
		return;
	if (ing->dir[0])
		util_rmtree(ing->dir);
	if (ing->lock_fd >= 0)
		close(ing->lock_fd);
	json_decref(ing->files);
	json_decref(ing->paths);
	json_decref(ing->pathlist);
	share_map_free(ing->share);
	free(ing->buf);
	pthread_mutex_destroy(&ing->mu);
	free(ing);
}

/* ---- keeping stored files across an interrupted pull ---- */

int ingest_keep(struct ingest *ing, const char *relpath, const char *dir, const char *key)
{
	json_t *rec = NULL;
	pthread_mutex_lock(&ing->mu);
	/* newest first: the caller keeps the file it has just added */
	for (size_t i = json_array_size(ing->files); i-- > 0 && !rec;) {
		json_t *f = json_array_get(ing->files, i);
		if (!strcmp(json_string_value(json_object_get(f, "path")), relpath))
			rec = json_deep_copy(f);
	}
	/* packs it refers to that other files of this import staged are kept
	 * with it: a later pull may adopt it alone */
	size_t ri;
	json_t *r;
	json_array_foreach(rec ? json_object_get(rec, "refs") : NULL, ri, r) {
		const char *h = json_string_value(json_object_get(r, "pack"));
		for (size_t i = 0; h && i < json_array_size(ing->files); i++) {
			json_t *sn = json_object_get(json_object_get(json_array_get(ing->files, i),
								     "stage"), h);
			if (sn) {
				json_object_set(json_object_get(rec, "stage"), h, sn);
				break;
			}
		}
	}
	pthread_mutex_unlock(&ing->mu);
	if (!rec)
		return md_fail(MD_ENOENT, "%s: not in this import", relpath);
	json_t *stage = json_object_get(rec, "stage"), *kept = json_object();
	const char *hex;
	json_t *st;
	int rc = kept ? 0 : MD_ENOMEM, k = 0;
	json_object_foreach(stage, hex, st) {
		char src[4200], dst[4200], name[160];
		snprintf(name, sizeof name, "%s.%d", key, k++);
		snprintf(src, sizeof src, "%s/%s", ing->dir, json_string_value(st));
		snprintf(dst, sizeof dst, "%s/%s", dir, name);
		unlink(dst);
		if (link(src, dst) < 0) {
			rc = md_fail(md_from_errno(errno), "%s: keep: %s", relpath, strerror(errno));
			break;
		}
		json_object_set_new(kept, hex, json_string(name));
	}
	char tmp[4200], fin[4200];
	snprintf(tmp, sizeof tmp, "%s/%s.json.tmp", dir, key);
	snprintf(fin, sizeof fin, "%s/%s.json", dir, key);
	if (!rc) {
		json_object_set_new(rec, "stage", kept);
		kept = NULL;
		if (json_dump_file(rec, tmp, JSON_COMPACT) || rename(tmp, fin) < 0 || util_fsync_dir(dir))
			rc = md_fail(MD_EIO, "%s: keep: cannot write %s", relpath, fin);
	}
	json_decref(kept);
	json_decref(rec);
	return rc;
}

int ingest_adopt(struct ingest *ing, const char *relpath, const char *dir, const char *key,
		 const char *sha256, uint64_t size)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s.json", dir, key);
	json_t *rec = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
	const char *rs = json_string_value(json_object_get(rec, "sha256"));
	const char *rp = json_string_value(json_object_get(rec, "path"));
	json_t *stage = json_object_get(rec, "stage");
	if (!rec || !rs || !rp || strcmp(rp, relpath) || !json_is_object(stage) ||
	    (uint64_t)json_integer_value(json_object_get(rec, "size")) != size ||
	    (sha256 && strcmp(sha256, rs))) {
		json_decref(rec);
		return MD_ENOENT;
	}
	/* every blob the entry names must be kept here (or, for the packs its
	 * pack refers to, be in the store: checked again at commit) */
	const char *hx[STORE_ENTRY_MAX_BLOBS];
	size_t n = store_entry_blobs(rec, hx, NULL, STORE_ENTRY_MAX_BLOBS);
	json_t *fresh = json_object();
	int rc = n && fresh ? 0 : MD_ENOENT;
	for (size_t k = 0; k < n && !rc; k++) {
		const char *name = json_string_value(json_object_get(stage, hx[k]));
		char src[4200], dst[4200], staged[32];
		if (!util_is_hex(hx[k], 64)) {
			rc = MD_ENOENT;
			break;
		}
		if (!name && k >= 2 && json_object_get(rec, "pack")) {   /* a referenced pack */
			store_blob_path(ing->st, hx[k], dst, sizeof dst);
			if (access(dst, F_OK) < 0)
				rc = MD_ENOENT;
			continue;
		}
		if (!name || strchr(name, '/')) {
			rc = MD_ENOENT;
			break;
		}
		snprintf(src, sizeof src, "%s/%s", dir, name);
		snprintf(staged, sizeof staged, "k%06u", next_seq(ing));
		snprintf(dst, sizeof dst, "%s/%s", ing->dir, staged);
		if (link(src, dst) < 0) {
			rc = MD_ENOENT;
			break;
		}
		json_object_set_new(fresh, hx[k], json_string(staged));
	}
	/* what later files of this import may share with */
	const char *pk = json_string_value(json_object_get(rec, "pack"));
	const char *ps = pk ? json_string_value(json_object_get(fresh, pk)) : NULL;
	if (!rc && ps) {
		char q[4200];
		snprintf(q, sizeof q, "%s/%s", ing->dir, ps);
		int fd = open(q, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || share_map_add(ing->share, pk, fd, q))
			rc = MD_ENOENT;   /* a broken kept pack: fetch the file again */
		if (fd >= 0)
			close(fd);
	}
	if (!rc && (rc = claim_path(ing, relpath)) == 0) {
		json_object_set_new(rec, "stage", fresh);
		fresh = NULL;
		rc = append_file(ing, json_incref(rec));
	}
	if (rc && fresh) {   /* undo the links */
		const char *h;
		json_t *s;
		json_object_foreach(fresh, h, s) {
			char q[4200];
			snprintf(q, sizeof q, "%s/%s", ing->dir, json_string_value(s));
			unlink(q);
		}
	}
	json_decref(fresh);
	json_decref(rec);
	return rc;
}
