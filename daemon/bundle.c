/* daemon/bundle.c — see bundle.h; format in docs/airgap.md. */
#include "daemon/bundle.h"
#include "daemon/worker.h"
#include "daemon/describe.h"
#include "meta/licdetect.h"
#include "meta/sign.h"
#include "converters/pack.h"
#include "registry/catalog.h"
#include "registry/ingest.h"
#include "registry/maint.h"
#include "registry/reader.h"
#include "common/err.h"
#include "common/log.h"
#include "common/lazylib.h"
#include "common/sha256.h"
#include "common/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IOBUF (1u << 20)

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Read a whole small descriptor (a key) into a NUL-terminated buffer. */
static int read_small_fd(int fd, size_t cap, char **out, size_t *len)
{
	char *b = malloc(cap + 1);
	if (!b)
		return MD_ENOMEM;
	ssize_t n = util_pread_full(fd, b, cap + 1, 0);
	if (n < 0)
		n = util_read_full(fd, b, cap + 1);
	if (n < 0 || (size_t)n > cap) {
		free(b);
		return n < 0 ? md_fail(MD_EIO, "key: %s", strerror(errno))
			     : md_fail(MD_ETOOBIG, "key: more than %zu bytes", cap);
	}
	b[n] = 0;
	*out = b;
	*len = (size_t)n;
	return 0;
}

/* ---- export ----------------------------------------------------------- */

struct xrev {
	char *name;
	char rev[CATALOG_REV_LEN + 1];
	json_t *manifest;   /* public manifest */
	json_t *stored;     /* the catalog's manifest (blob references) */
	json_t *refs;
	json_t *meta;       /* [{"path","data"(string)}] metadata entries of this revision */
};

/* libarchive's own text for a failed write(2) is a bare "Write error" with
 * the errno beside it: a system error is said with its strerror, so a full
 * disk reads "No space left on device". */
static int awerr(struct archive *a, const char *what)
{
	const char *m = archive_error_string(a);
	int e = archive_errno(a);
	int sys = e > 0 && e != EILSEQ && e != EINVAL; /* libarchive: format, misuse */
	if (sys)
		return md_fail(md_from_errno(e) == MD_ENOSPC ? MD_ENOSPC : MD_EIO,
			       "bundle: writing %s to the output file: %s", what, strerror(e));
	return md_fail(MD_EIO, "bundle: writing %s: %s", what, m ? m : "archive error");
}

static int write_header(struct archive *a, struct archive_entry *e, const char *path,
			uint64_t size, time_t mtime)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, mtime, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		return awerr(a, path);
	return 0;
}

static int write_mem(struct archive *a, struct archive_entry *e, const char *path,
		     const char *data, size_t len, time_t mtime)
{
	int rc = write_header(a, e, path, len, mtime);
	if (rc)
		return rc;
	if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
		return awerr(a, path);
	return 0;
}

static char *dump(json_t *o)
{
	return json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
}

/* The metadata entries of one revision: manifest, provenance, license texts. */
static int rev_meta(struct xrev *x, const char *dir, const char *now)
{
	x->meta = json_array();
	char p[256];
	char *s = dump(x->manifest);
	if (!s)
		return MD_ENOMEM;
	snprintf(p, sizeof p, "%s/manifest.json", dir);
	json_array_append_new(x->meta, json_pack("{s:s,s:s}", "path", p, "data", s));
	free(s);
	json_t *prov = json_pack("{s:i,s:s,s:s,s:O*,s:O*,s:O*,s:s,s:s}", "v", 1, "name", x->name,
				 "revision", x->rev, "source",
				 json_object_get(x->manifest, "source"), "imported_at",
				 json_object_get(x->manifest, "imported_at"), "provenance",
				 json_object_get(x->manifest, "provenance"), "exported_at", now,
				 "exported_by", "modeld " MODELD_VERSION);
	s = prov ? dump(prov) : NULL;
	json_decref(prov);
	if (!s)
		return MD_ENOMEM;
	snprintf(p, sizeof p, "%s/provenance.json", dir);
	json_array_append_new(x->meta, json_pack("{s:s,s:s}", "path", p, "data", s));
	free(s);
	/* the corpus texts of the declared and detected licenses */
	json_t *lic = json_object_get(x->manifest, "license");
	const char *ids[2] = { jstr(lic, "spdx"), jstr(json_object_get(lic, "detected"), "id") };
	for (int k = 0; k < 2; k++) {
		if (!ids[k] || (k == 1 && ids[0] && !strcmp(ids[0], ids[1])))
			continue;
		for (size_t i = 0; i < licdetect_corpus_n; i++) {
			if (strcmp(licdetect_corpus[i].id, ids[k]))
				continue;
			snprintf(p, sizeof p, "%s/licenses/%.80s.txt", dir, ids[k]);
			if (util_check_relpath(p) == 0)
				json_array_append_new(x->meta, json_pack("{s:s,s:s}", "path", p, "data",
									 licdetect_corpus[i].text));
			break;
		}
	}
	return 0;
}

static void xrevs_free(struct xrev *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(x[i].name);
		json_decref(x[i].manifest);
		json_decref(x[i].stored);
		json_decref(x[i].refs);
		json_decref(x[i].meta);
	}
	free(x);
}

static int resolve_all(struct daemon *d, json_t *refs, struct xrev **out, size_t *nout)
{
	size_t n = json_array_size(refs), k = 0, i;
	json_t *r;
	if (!n)
		return md_fail(MD_EINVAL, "export: no model given");
	if (n > BUNDLE_MAX_REVS)
		return md_fail(MD_ETOOBIG, "export: more than %d revisions", BUNDLE_MAX_REVS);
	struct xrev *x = calloc(n, sizeof *x);
	MDB_txn *txn;
	if (!x)
		return MD_ENOMEM;
	int rc = store_txn(d->st, 0, &txn);
	if (rc) {
		free(x);
		return rc;
	}
	json_array_foreach(refs, i, r) {
		char *name = NULL, *want = NULL;
		const char *s = json_string_value(r);
		if (!s) {
			rc = md_fail(MD_EINVAL, "export: refs must be strings");
			break;
		}
		if ((rc = util_parse_modelref(s, &name, &want)))
			break;
		char rev[CATALOG_REV_LEN + 1];
		json_t *m = NULL;
		if ((rc = catalog_resolve(d->st, txn, name, want, rev)) ||
		    (rc = catalog_get_rev(d->st, txn, name, rev, &m))) {
			free(name);
			free(want);
			break;
		}
		free(want);
		int dup = 0;
		for (size_t q = 0; q < k; q++)
			dup |= !strcmp(x[q].name, name) && !strcmp(x[q].rev, rev);
		if (dup) {
			free(name);
			json_decref(m);
			continue;
		}
		x[k].name = name;
		memcpy(x[k].rev, rev, sizeof rev);
		x[k].stored = m;
		x[k].refs = catalog_refs_to(d->st, txn, name, rev);
		json_t *pm = json_deep_copy(m);
		json_object_del(pm, "v");
		size_t fi;
		json_t *f;
		json_array_foreach(json_object_get(pm, "files"), fi, f) {
			json_object_del(f, "blob");
			json_object_del(f, "staged");
		}
		x[k].manifest = pm;
		k++;
	}
	mdb_txn_abort(txn);
	if (rc) {
		xrevs_free(x, n);
		return rc;
	}
	*out = x;
	*nout = k;
	return 0;
}

static int stream_file(struct archive *a, struct store *st, json_t *entry, const char *apath,
		       uint8_t *buf, struct ingest_ctl *ctl)
{
	struct reader r;
	int rc = reader_open(st, entry, &r);
	if (rc)
		return rc;
	uint64_t off = 0;
	while (off < r.size) {
		if (atomic_load(&ctl->cancel)) {
			rc = md_fail(MD_ECANCELED, "export canceled");
			break;
		}
		size_t want = r.size - off < IOBUF ? (size_t)(r.size - off) : IOBUF;
		ssize_t got = reader_pread(&r, buf, want, off);
		if (got < 0) {
			rc = (int)got;
			break;
		}
		if ((size_t)got != want) {
			rc = md_fail(MD_ECORRUPT, "%s: stored file is shorter than its manifest", apath);
			break;
		}
		if (archive_write_data(a, buf, (size_t)got) != got) {
			rc = awerr(a, apath);
			break;
		}
		off += (uint64_t)got;
		atomic_fetch_add(&ctl->done, (uint64_t)got);
	}
	reader_close(&r);
	return rc;
}

static int export_run(struct daemon *d, struct job *j, json_t **res)
{
	struct xrev *x = NULL;
	size_t nx = 0;
	int sign = json_is_true(json_object_get(j->args, "sign"));
	const char *comp = jstr(j->args, "compression");
	json_int_t level = json_integer_value(json_object_get(j->args, "level"));
	if (!comp)
		comp = "none";
	if (strcmp(comp, "none") && strcmp(comp, "zstd"))
		return md_fail(MD_EINVAL, "export: compression '%s': want none or zstd", comp);
	int rc = md_lib_need(MD_LIB_ARCHIVE, "export");
	if (rc)
		return rc;
	if (level < 1 || level > 19)
		level = 1;
	if (j->nfds != (size_t)(sign ? 2 : 1))
		return md_fail(MD_EPROTO, "export: %zu descriptors, expected %d", j->nfds, sign ? 2 : 1);
	if ((rc = resolve_all(d, json_object_get(j->args, "refs"), &x, &nx)))
		return rc;
	char now[32];
	util_now_iso(now, sizeof now);
	time_t mtime = time(NULL);
	json_t *index = json_pack("{s:s,s:i,s:s,s:s,s:[]}", "format", "modeld-bundle", "version", 1,
				  "created", now, "created_by", "modeld " MODELD_VERSION, "revisions");
	json_t *sums = json_array(); /* [{path, sha256}] in archive order */
	char *idx = NULL, *sumtxt = NULL, *sigtxt = NULL, *key = NULL;
	size_t keylen = 0;
	uint64_t total = 0, nfiles = 0;
	struct archive *a = NULL;
	struct archive_entry *e = NULL;
	uint8_t *buf = NULL;
	for (size_t i = 0; i < nx; i++) {
		char dir[32];
		snprintf(dir, sizeof dir, "r%zu", i);
		json_t *m = x[i].manifest;
		json_array_append_new(json_object_get(index, "revisions"),
				      json_pack("{s:s,s:s,s:O,s:s,s:I,s:O}", "name", x[i].name,
						"revision", x[i].rev, "refs", x[i].refs, "dir", dir,
						"file_count", (json_int_t)json_array_size(
								      json_object_get(m, "files")),
						"total_size", json_object_get(m, "total_size")));
		if ((rc = rev_meta(&x[i], dir, now)))
			goto out;
	}
	if (!(idx = dump(index))) {
		rc = MD_ENOMEM;
		goto out;
	}
	char hex[65];
	sha256_hex(idx, strlen(idx), hex);
	json_array_append_new(sums, json_pack("{s:s,s:s}", "path", BUNDLE_INDEX, "sha256", hex));
	for (size_t i = 0; i < nx; i++) {
		size_t k;
		json_t *me, *f;
		json_array_foreach(x[i].meta, k, me) {
			const char *data = jstr(me, "data");
			sha256_hex(data, strlen(data), hex);
			json_array_append_new(sums, json_pack("{s:s,s:s}", "path", jstr(me, "path"),
							      "sha256", hex));
		}
		json_array_foreach(json_object_get(x[i].manifest, "files"), k, f) {
			char p[1200];
			snprintf(p, sizeof p, "r%zu/files/%s", i, jstr(f, "path"));
			json_array_append_new(sums, json_pack("{s:s,s:s}", "path", p, "sha256",
							      jstr(f, "sha256")));
			total += (uint64_t)json_integer_value(json_object_get(f, "size"));
			nfiles++;
		}
	}
	atomic_store(&j->ctl.total, total);
	/* SHA256SUMS, sha256sum's format */
	size_t cap = 0, len = 0, k;
	json_t *s;
	json_array_foreach(sums, k, s)
		cap += strlen(jstr(s, "path")) + 64 + 4;
	if (!(sumtxt = malloc(cap + 1))) {
		rc = MD_ENOMEM;
		goto out;
	}
	json_array_foreach(sums, k, s)
		len += (size_t)sprintf(sumtxt + len, "%s  %s\n", jstr(s, "sha256"), jstr(s, "path"));
	if (sign) {
		json_t *stmt = NULL, *sb = NULL;
		if ((rc = read_small_fd(j->fds[1], SIGN_MAX_PEM, &key, &keylen)) ||
		    (rc = sign_statement("modeld-bundle", sums, &stmt)) ||
		    (rc = sign_bundle(stmt, key, keylen, &sb))) {
			json_decref(stmt);
			md_fail_prefix(rc, "export: --sign");
			goto out;
		}
		sigtxt = dump(sb);
		json_decref(stmt);
		json_decref(sb);
		if (!sigtxt) {
			rc = MD_ENOMEM;
			goto out;
		}
	}
	if (!(buf = malloc(IOBUF)) || !(a = archive_write_new()) || !(e = archive_entry_new())) {
		rc = MD_ENOMEM;
		goto out;
	}
	archive_write_set_format_pax_restricted(a);
	if (!strcmp(comp, "zstd")) {
		char opt[64];
		snprintf(opt, sizeof opt, "zstd:compression-level=%d", (int)level);
		if (archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
		    archive_write_set_options(a, opt) != ARCHIVE_OK) {
			rc = md_fail(MD_EUNSUP, "export: zstd: %s", archive_error_string(a));
			goto out;
		}
	}
	archive_write_set_bytes_per_block(a, 0); /* unblocked: our 1 MiB pieces go straight out */
	if (archive_write_open_fd(a, j->fds[0]) != ARCHIVE_OK) {
		rc = awerr(a, "the output");
		goto out;
	}
	if ((rc = write_mem(a, e, BUNDLE_INDEX, idx, strlen(idx), mtime)) ||
	    (rc = write_mem(a, e, BUNDLE_SUMS, sumtxt, len, mtime)) ||
	    (sigtxt && (rc = write_mem(a, e, BUNDLE_SIG, sigtxt, strlen(sigtxt), mtime))))
		goto out;
	for (size_t i = 0; i < nx && !rc; i++) {
		json_t *me, *f;
		json_array_foreach(x[i].meta, k, me) {
			const char *data = jstr(me, "data");
			if ((rc = write_mem(a, e, jstr(me, "path"), data, strlen(data), mtime)))
				break;
		}
		json_array_foreach(json_object_get(x[i].stored, "files"), k, f) {
			if (rc)
				break;
			char p[1200];
			snprintf(p, sizeof p, "r%zu/files/%s", i, jstr(f, "path"));
			if (!(rc = write_header(a, e, p, (uint64_t)json_integer_value(
								 json_object_get(f, "size")), mtime)))
				rc = stream_file(a, d->st, f, p, buf, &j->ctl);
		}
	}
	if (!rc && archive_write_close(a) != ARCHIVE_OK)
		rc = awerr(a, "the end of the archive");
	if (!rc) {
		json_t *revs = json_array();
		for (size_t i = 0; i < nx; i++)
			json_array_append_new(revs, json_pack("{s:s,s:s}", "name", x[i].name,
							      "revision", x[i].rev));
		*res = json_pack("{s:o,s:I,s:I,s:b,s:s}", "revisions", revs, "files",
				 (json_int_t)nfiles, "bytes", (json_int_t)total, "signed", sign,
				 "compression", comp);
	}
out:
	if (a) {
		if (rc)
			archive_write_fail(a);
		archive_write_free(a);
	}
	archive_entry_free(e);
	free(buf);
	if (key) {
		explicit_bzero(key, keylen);
		free(key);
	}
	free(idx);
	free(sumtxt);
	free(sigtxt);
	json_decref(index);
	json_decref(sums);
	xrevs_free(x, nx);
	return rc;
}

/*
 * Archive entry names are the store's paths, which are UTF-8. libarchive
 * converts names between the locale's charset and the tar headers; modeld
 * runs in the C locale (ASCII), where a path such as "sub/ü.txt" cannot be
 * converted ("Can't translate pathname"). The bundle jobs therefore run with
 * a UTF-8 LC_CTYPE for their own thread (util_utf8_enter).
 */
int bundle_export_job(struct daemon *d, struct job *j, json_t **res)
{
	locale_t old = util_utf8_enter();
	int rc = export_run(d, j, res);
	util_utf8_leave(old);
	return rc;
}

/* ---- import ----------------------------------------------------------- */

struct irev {
	const char *name, *rev, *dir;   /* borrowed from the index */
	const char *ref;                /* "main" when the index lists it, else NULL */
	json_t *refs;                   /* every ref the index lists (borrowed) */
	json_t *manifest;               /* owned, once read */
	json_t *provfile;               /* rN/provenance.json, owned, once read */
	struct ingest *ing;
	struct ingest_converter conv;   /* weight files become packs on import too */
	size_t files_seen;
	int committed;                  /* by this bundle (not "existed") */
};

struct imp {
	struct daemon *d;
	struct job *j;
	struct archive *a;
	json_t *index;
	json_t *sums;          /* object path -> {"sha256", "seen"} */
	json_t *sumlist;       /* [{path, sha256}] for the signature */
	struct irev *revs;
	size_t nrevs;
	uint64_t cap_total;    /* uncompressed bytes allowed */
	uint64_t arch_size;
	uint8_t *buf;
	unsigned seq;
	int fd;                /* the bundle, read through bundle_read */
	uint8_t *rbuf;         /* bundle_read's buffer */
	struct sha256 whole;   /* over every byte of the bundle file as read */
	int whole_ok;          /* whole is initialised */
	int read_errno;        /* a read(2) of the bundle failed */
};

/* libarchive reads the bundle through here, so that the bundle's own sha256
 * (recorded in the provenance) costs no second read */
static la_ssize_t bundle_read(struct archive *a, void *arg, const void **out)
{
	(void)a;
	struct imp *im = arg;
	for (;;) {
		ssize_t n = read(im->fd, im->rbuf, IOBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			im->read_errno = errno;
			return -1;
		}
		sha256_update(&im->whole, im->rbuf, (size_t)n);
		*out = im->rbuf;
		return n;
	}
}

/* The sha256 of the whole bundle: what libarchive read plus what it left
 * (the tar's end-of-archive padding). 0 or MD_EIO. */
static int bundle_digest(struct imp *im, char hex[65])
{
	for (;;) {
		ssize_t n = read(im->fd, im->rbuf, IOBUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return md_fail(MD_EIO, "bundle: %s", strerror(errno));
		if (!n)
			break;
		sha256_update(&im->whole, im->rbuf, (size_t)n);
	}
	uint8_t dg[32];
	sha256_final(&im->whole, dg);
	util_hex(dg, 32, hex);
	return 0;
}

static int bomb_check(struct imp *im)
{
	uint64_t out = (uint64_t)archive_filter_bytes(im->a, 0);
	uint64_t in = (uint64_t)archive_filter_bytes(im->a, -1);
	atomic_store(&im->j->ctl.done, in);
	if (out > im->cap_total)
		return md_fail(MD_ETOOBIG, "bundle refused: decompression bomb: more than %llu MiB "
					   "uncompressed (the declared sizes plus %llu MiB)",
			       (unsigned long long)(im->cap_total >> 20),
			       (unsigned long long)(BUNDLE_SLACK >> 20));
	if (out > BUNDLE_RATIO_GRACE && in && out / in > BUNDLE_MAX_RATIO)
		return md_fail(MD_ETOOBIG, "bundle refused: decompression bomb: compression ratio "
					   "over %d:1 (%llu MiB out of %llu KiB)", BUNDLE_MAX_RATIO,
			       (unsigned long long)(out >> 20), (unsigned long long)(in >> 10));
	if (atomic_load(&im->j->ctl.cancel))
		return md_fail(MD_ECANCELED, "bundle import canceled");
	return 0;
}

static int arerr(struct imp *im, const char *what)
{
	const char *m = im->read_errno ? strerror(im->read_errno) : archive_error_string(im->a);
	int rc = bomb_check(im);
	if (rc)
		return rc;
	return md_fail(MD_ECORRUPT, "bundle refused: %s: truncated or damaged archive (%s)", what,
		       m ? m : "read error");
}

/* Read the current entry's data into memory (at most BUNDLE_MAX_META). */
static int read_meta(struct imp *im, struct archive_entry *e, const char *path, char **out,
		     size_t *len)
{
	la_int64_t sz = archive_entry_size(e);
	if (!archive_entry_size_is_set(e) || sz < 0 || (uint64_t)sz > BUNDLE_MAX_META)
		return md_fail(MD_ETOOBIG, "bundle refused: %s: metadata over %u MiB", path,
			       BUNDLE_MAX_META >> 20);
	char *b = malloc((size_t)sz + 1);
	if (!b)
		return MD_ENOMEM;
	size_t got = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(im->a, b + got, (size_t)sz + 1 - got);
		if (n < 0) {
			free(b);
			return arerr(im, path);
		}
		if (n == 0)
			break;
		got += (size_t)n;
		int rc = bomb_check(im);
		if (rc || got > (size_t)sz) {
			free(b);
			return rc ? rc : md_fail(MD_ECORRUPT, "bundle refused: %s: longer than its header", path);
		}
	}
	if (got != (size_t)sz) {
		free(b);
		return md_fail(MD_ECORRUPT, "bundle refused: %s: truncated", path);
	}
	b[got] = 0;
	*out = b;
	*len = got;
	return 0;
}

/* An entry name: "rN/files/" and a store path, which may itself be as long
 * as util_check_relpath allows (1024 bytes), so the whole name may be
 * longer; anything else is checked as one relative path. */
static int check_name(const char *p)
{
	const char *s = p + 1;
	if (strlen(p) <= 1024 || p[0] != 'r' || !isdigit((unsigned char)*s))
		return util_check_relpath(p);
	while (isdigit((unsigned char)*s))
		s++;
	if (strncmp(s, "/files/", 7))
		return util_check_relpath(p);
	return util_check_relpath(s + 7);
}

/* The entry's checksum must be listed, once, and match. */
static int check_sum(struct imp *im, const char *path, const char *hex)
{
	json_t *s = json_object_get(im->sums, path);
	if (!s)
		return md_fail(MD_EREFUSED, "bundle refused: %s: not listed in SHA256SUMS", path);
	if (json_is_true(json_object_get(s, "seen")))
		return md_fail(MD_EREFUSED, "bundle refused: %s: duplicate entry", path);
	json_object_set_new(s, "seen", json_true());
	if (hex && strcmp(jstr(s, "sha256"), hex))
		return md_fail(MD_ECORRUPT, "bundle refused: %s: sha256 %s does not match SHA256SUMS (%s)",
			       path, hex, jstr(s, "sha256"));
	return 0;
}

static int parse_sums(struct imp *im, char *txt)
{
	im->sums = json_object();
	im->sumlist = json_array();
	char *save = NULL;
	for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strlen(line) < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))
			return md_fail(MD_EREFUSED, "bundle refused: SHA256SUMS: malformed line");
		line[64] = 0;
		const char *path = line + 66;
		if (!util_is_hex(line, 64))
			return md_fail(MD_EREFUSED, "bundle refused: SHA256SUMS: %s: bad digest", path);
		if (check_name(path)) {
			char shown[256];
			return md_fail(MD_EREFUSED, "bundle refused: SHA256SUMS: unsafe path '%s'",
				       util_printable(path, shown, sizeof shown));
		}
		if (json_object_get(im->sums, path))
			return md_fail(MD_EREFUSED, "bundle refused: SHA256SUMS lists %s twice", path);
		json_object_set_new(im->sums, path, json_pack("{s:s,s:b}", "sha256", line, "seen", 0));
		json_array_append_new(im->sumlist, json_pack("{s:s,s:s}", "path", path, "sha256", line));
	}
	return 0;
}

static int parse_index(struct imp *im, const char *txt, size_t len)
{
	json_error_t err;
	im->index = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &err);
	json_t *revs = json_object_get(im->index, "revisions");
	if (!im->index || !json_is_object(im->index) ||
	    strcmp(jstr(im->index, "format") ? jstr(im->index, "format") : "", "modeld-bundle"))
		return md_fail(MD_EREFUSED, "bundle refused: %s is not a modeld bundle index",
			       BUNDLE_INDEX);
	if (json_integer_value(json_object_get(im->index, "version")) != 1)
		return md_fail(MD_EUNSUP, "bundle: format version %lld is not supported",
			       (long long)json_integer_value(json_object_get(im->index, "version")));
	size_t n = json_array_size(revs), i;
	if (!n || n > BUNDLE_MAX_REVS)
		return md_fail(MD_EREFUSED, "bundle refused: %zu revisions", n);
	if (!(im->revs = calloc(n, sizeof *im->revs)))
		return MD_ENOMEM;
	im->nrevs = n;
	uint64_t total = 0;
	json_t *r;
	json_array_foreach(revs, i, r) {
		struct irev *ir = &im->revs[i];
		char want[32];
		snprintf(want, sizeof want, "r%zu", i);
		ir->name = jstr(r, "name");
		ir->rev = jstr(r, "revision");
		ir->dir = jstr(r, "dir");
		json_int_t ts = json_integer_value(json_object_get(r, "total_size"));
		if (!ir->name || util_check_model_name(ir->name) || !ir->rev ||
		    !util_is_hex(ir->rev, CATALOG_REV_LEN) || !ir->dir || strcmp(ir->dir, want) || ts < 0)
			return md_fail(MD_EREFUSED, "bundle refused: index entry %zu is malformed", i);
		size_t k;
		json_t *ref;
		ir->refs = json_object_get(r, "refs");
		json_array_foreach(json_object_get(r, "refs"), k, ref)
			if (json_is_string(ref) && !strcmp(json_string_value(ref), "main"))
				ir->ref = "main";
		total += (uint64_t)ts;
		if (total > BUNDLE_MAX_TOTAL)
			return md_fail(MD_ETOOBIG, "bundle refused: declares more than %llu GiB",
				       (unsigned long long)(BUNDLE_MAX_TOTAL >> 30));
	}
	im->cap_total = total + BUNDLE_SLACK;
	return 0;
}

/* rN/... -> the revision (by number), the rest after "rN/". */
static struct irev *rev_of(struct imp *im, const char *path, const char **rest)
{
	if (path[0] != 'r')
		return NULL;
	char *end;
	unsigned long n = strtoul(path + 1, &end, 10);
	if (end == path + 1 || *end != '/' || n >= im->nrevs || (path[1] == '0' && end != path + 2))
		return NULL;
	*rest = end + 1;
	return &im->revs[n];
}

static int take_manifest(struct imp *im, struct irev *ir, const char *txt, size_t len)
{
	json_error_t err;
	json_t *m = json_loadb(txt, len, JSON_REJECT_DUPLICATES, &err);
	json_t *files = json_object_get(m, "files");
	if (!json_is_object(m) || !json_is_array(files) || !json_array_size(files) ||
	    json_array_size(files) > INGEST_MAX_FILES || !jstr(m, "name") ||
	    strcmp(jstr(m, "name"), ir->name) || !jstr(m, "revision") ||
	    strcmp(jstr(m, "revision"), ir->rev)) {
		json_decref(m);
		return md_fail(MD_EREFUSED, "bundle refused: %s/manifest.json does not match the index",
			       ir->dir);
	}
	ir->manifest = m;
	size_t i;
	json_t *f;
	uint64_t total = 0;
	json_t *seen = json_object();
	int rc = 0;
	(void)total;
	json_array_foreach(files, i, f) {
		const char *p = jstr(f, "path"), *h = jstr(f, "sha256");
		json_int_t sz = json_integer_value(json_object_get(f, "size"));
		char ap[1200];
		if (!p || (rc = util_check_relpath(p)) || !h || !util_is_hex(h, 64) || sz < 0 ||
		    !json_is_integer(json_object_get(f, "size"))) {
			rc = md_fail(MD_EREFUSED, "bundle refused: %s/manifest.json: bad file entry %s",
				     ir->dir, p ? p : "?");
			break;
		}
		if (json_object_get(seen, p)) {
			rc = md_fail(MD_EREFUSED, "bundle refused: %s/manifest.json lists %s twice",
				     ir->dir, p);
			break;
		}
		json_object_set_new(seen, p, json_true());
		snprintf(ap, sizeof ap, "%s/files/%s", ir->dir, p);
		json_t *s = json_object_get(im->sums, ap);
		if (!s || strcmp(jstr(s, "sha256"), h)) {
			rc = md_fail(MD_EREFUSED, "bundle refused: %s: manifest and SHA256SUMS disagree",
				     ap);
			break;
		}
		total += (uint64_t)sz;
	}
	json_decref(seen);
	if (rc || (rc = ingest_begin(im->d->st, &im->j->ctl, &ir->ing)))
		return rc;
	worker_converter(&ir->conv, &im->j->ctl.cancel);
	ingest_set_converter(ir->ing, &ir->conv);
	return 0;
}

/*
 * Hashing a large file while it is written: a second thread follows the
 * staged file through the page cache up to what the writer has written, so
 * sha256 and the archive reading/writing use both cores (as zstd | tar
 * does) and nothing is read twice.
 */
#define FOLLOW_MIN (4u << 20)   /* smaller files are hashed inline */

struct follower {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t written;          /* bytes the writer has written */
	int done;                  /* the writer stopped */
	int fd;                    /* the staged file, read-only */
	int err;                   /* errno of a failed read */
	struct sha256 h;
	uint8_t *buf;
};

static void *follow(void *arg)
{
	struct follower *f = arg;
	uint64_t off = 0;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (off == f->written && !f->done)
			pthread_cond_wait(&f->cv, &f->mu);
		uint64_t upto = f->written;
		int done = f->done;
		pthread_mutex_unlock(&f->mu);
		while (off < upto && !f->err) {
			size_t n = upto - off < IOBUF ? (size_t)(upto - off) : IOBUF;
			ssize_t got = pread(f->fd, f->buf, n, (off_t)off);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				f->err = got < 0 ? errno : EIO;
				break;
			}
			sha256_update(&f->h, f->buf, (size_t)got);
			off += (uint64_t)got;
		}
		if (f->err || (done && off == upto))
			return NULL;
	}
}

static void follower_advance(struct follower *f, uint64_t n, int done)
{
	pthread_mutex_lock(&f->mu);
	f->written += n;
	f->done |= done;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* A file of a revision: staged and hashed in one pass, checked against the
 * manifest, handed to the ingest without being read again. */
static int take_file(struct imp *im, struct irev *ir, struct archive_entry *e,
		     const char *apath, const char *rel)
{
	json_t *f = reader_find(ir->manifest, rel);
	if (!f)
		return md_fail(MD_EREFUSED, "bundle refused: %s: not in %s/manifest.json", apath, ir->dir);
	int rc = check_sum(im, apath, NULL);
	if (rc)
		return rc;
	uint64_t want = (uint64_t)json_integer_value(json_object_get(f, "size"));
	if (!archive_entry_size_is_set(e) || (uint64_t)archive_entry_size(e) != want)
		return md_fail(MD_ECORRUPT, "bundle refused: %s: %lld bytes in the archive, %llu in "
					    "the manifest", apath, (long long)archive_entry_size(e),
			       (unsigned long long)want);
	char staged[32], p[4200];
	snprintf(staged, sizeof staged, "b%06u", im->seq++);
	snprintf(p, sizeof p, "%s/%s", ingest_dir(ir->ing), staged);
	int out = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return md_fail(MD_EIO, "%s: %s", p, strerror(errno));
	struct follower fo = { .fd = -1 };
	pthread_t th;
	int threaded = 0;
	if ((rc = sha256_init(&fo.h))) {
		close(out);
		unlink(p);
		return rc;
	}
	if (want >= FOLLOW_MIN) {
		pthread_mutex_init(&fo.mu, NULL);
		pthread_cond_init(&fo.cv, NULL);
		fo.fd = open(p, O_RDONLY | O_CLOEXEC);
		fo.buf = malloc(IOBUF);
		threaded = fo.fd >= 0 && fo.buf && pthread_create(&th, NULL, follow, &fo) == 0;
	}
	uint64_t got = 0;
	for (;;) {
		const void *blk;
		size_t n;
		la_int64_t boff;
		int r = archive_read_data_block(im->a, &blk, &n, &boff);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = arerr(im, apath);
			break;
		}
		if (boff < 0 || (uint64_t)boff != got) { /* sparse entries are not ours */
			rc = md_fail(MD_EREFUSED, "bundle refused: %s: sparse file entry", apath);
			break;
		}
		if (!n)
			continue;
		got += (uint64_t)n;
		if ((rc = bomb_check(im)))
			break;
		if (got > want) {
			rc = md_fail(MD_ECORRUPT, "bundle refused: %s: longer than its manifest", apath);
			break;
		}
		if ((rc = util_write_all(out, blk, n))) {
			rc = md_fail(rc, "%s: %s: write to the store: %s", ir->name, rel,
				     rc == MD_ENOSPC ? "no space left on device" : strerror(errno));
			break;
		}
		if (threaded)
			follower_advance(&fo, n, 0);
		else
			sha256_update(&fo.h, blk, n);
	}
	if (threaded) {
		follower_advance(&fo, 0, 1);
		pthread_join(th, NULL);
		if (fo.err && !rc)
			rc = md_fail(MD_EIO, "%s: reading back: %s", rel, strerror(fo.err));
	}
	if (fo.fd >= 0)
		close(fo.fd);
	free(fo.buf);
	if (want >= FOLLOW_MIN) {
		pthread_mutex_destroy(&fo.mu);
		pthread_cond_destroy(&fo.cv);
	}
	if (close(out) < 0 && !rc)
		rc = md_fail(MD_EIO, "%s: close: %s", rel, strerror(errno));
	if (!rc && got != want)
		rc = md_fail(MD_ECORRUPT, "bundle refused: %s: truncated (%llu of %llu bytes)", apath,
			     (unsigned long long)got, (unsigned long long)want);
	char hex[65];
	if (rc) {
		sha256_free(&fo.h);
	} else {
		uint8_t d[32];
		sha256_final(&fo.h, d);
		util_hex(d, 32, hex);
		if (strcmp(hex, jstr(f, "sha256")))
			rc = md_fail(MD_ECORRUPT, "bundle refused: %s: sha256 %s does not match the "
						  "manifest (%s)", apath, hex, jstr(f, "sha256"));
	}
	/* the store's own trouble (a full disk, I/O, memory) is not the bundle's */
	if (!rc && (rc = ingest_add_hashed(ir->ing, rel, staged, hex)))
		md_fail_prefix(rc, rc == MD_ENOSPC || rc == MD_EIO || rc == MD_ENOMEM ||
				   rc == MD_ECANCELED ? ir->name : "bundle refused");
	if (rc)
		unlink(p);
	else
		ir->files_seen++;
	return rc;
}

static int entry_kind_ok(struct archive_entry *e, const char *path)
{
	if (archive_entry_hardlink(e))
		return md_fail(MD_EREFUSED, "bundle refused: %s: hard link", path);
	if (archive_entry_symlink(e) || archive_entry_filetype(e) == AE_IFLNK)
		return md_fail(MD_EREFUSED, "bundle refused: %s: symbolic link", path);
	switch (archive_entry_filetype(e)) {
	case AE_IFREG: return 0;
	case AE_IFDIR: return 1;
	case AE_IFCHR: case AE_IFBLK:
		return md_fail(MD_EREFUSED, "bundle refused: %s: device file", path);
	default:
		return md_fail(MD_EREFUSED, "bundle refused: %s: not a regular file", path);
	}
}

static int read_all(struct imp *im, const char *pubkey, size_t publen, const char **sigstate)
{
	struct archive_entry *e;
	int rc = 0, nentry = 0, have_sig = 0;
	*sigstate = "none";
	for (;;) {
		int r = archive_read_next_header(im->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return arerr(im, nentry ? "after the last complete entry" : "the first entry");
		const char *path = archive_entry_pathname(e);
		if (!path)
			return md_fail(MD_EREFUSED, "bundle refused: entry %d has no usable name", nentry);
		/* tar writes directory names with one trailing '/': check the
		 * name without it (a directory entry is then skipped) */
		char dname[4096];
		size_t pl = strlen(path);
		if (archive_entry_filetype(e) == AE_IFDIR && pl > 1 && pl < sizeof dname &&
		    path[pl - 1] == '/' && path[pl - 2] != '/') {
			memcpy(dname, path, pl - 1);
			dname[pl - 1] = 0;
			path = dname;
		}
		if (check_name(path)) {
			char shown[256];
			return md_fail(MD_EREFUSED, "bundle refused: unsafe path '%s'",
				       util_printable(path, shown, sizeof shown));
		}
		if ((rc = entry_kind_ok(e, path)) < 0)
			return rc;
		if (rc == 1) { /* a directory entry: nothing to store */
			rc = 0;
			continue;
		}
		if ((rc = bomb_check(im)))
			return rc;
		nentry++;
		char *txt = NULL;
		size_t len = 0;
		char hex[65];
		if (nentry == 1 || nentry == 2) {
			const char *want = nentry == 1 ? BUNDLE_INDEX : BUNDLE_SUMS;
			if (strcmp(path, want))
				return md_fail(MD_EREFUSED, "bundle refused: entry %d is %s, expected %s",
					       nentry, path, want);
			if ((rc = read_meta(im, e, path, &txt, &len)))
				return rc;
			rc = nentry == 1 ? parse_index(im, txt, len) : parse_sums(im, txt);
			if (nentry == 1) {
				sha256_hex(txt, len, hex);
				json_object_set_new(im->index, "_sha", json_string(hex));
			}
			free(txt);
			if (rc)
				return rc;
			if (nentry == 2 && (rc = check_sum(im, BUNDLE_INDEX,
							  jstr(im->index, "_sha"))))
				return rc;
			continue;
		}
		if (nentry == 3 && !strcmp(path, BUNDLE_SIG)) {
			if ((rc = read_meta(im, e, path, &txt, &len)))
				return rc;
			have_sig = 1;
			*sigstate = "unverified";
			if (pubkey) {
				json_error_t err;
				json_t *sb = json_loadb(txt, len, 0, &err);
				rc = sb ? sign_verify(sb, pubkey, publen, im->sumlist, NULL)
					: md_fail(MD_ECORRUPT, "signature is not JSON");
				json_decref(sb);
				free(txt);
				txt = NULL;
				if (rc)
					return md_fail_prefix(rc == MD_ECORRUPT ? MD_EAUTH : rc,
							      "bundle refused: signature");
				*sigstate = "verified";
			}
			free(txt);
			continue;
		}
		if (pubkey && !have_sig)
			return md_fail(MD_EAUTH, "bundle refused: --verify-key given but the bundle is not signed");
		const char *rest;
		struct irev *ir = rev_of(im, path, &rest);
		if (!ir)
			return md_fail(MD_EREFUSED, "bundle refused: unexpected entry %s", path);
		if (!strncmp(rest, "files/", 6)) {
			if (!ir->manifest)
				return md_fail(MD_EREFUSED, "bundle refused: %s comes before %s/manifest.json",
					       path, ir->dir);
			if ((rc = take_file(im, ir, e, path, rest + 6)))
				return rc;
			continue;
		}
		/* metadata of a revision */
		if ((rc = read_meta(im, e, path, &txt, &len)))
			return rc;
		sha256_hex(txt, len, hex);
		if (!(rc = check_sum(im, path, hex)) && !strcmp(rest, "manifest.json"))
			rc = take_manifest(im, ir, txt, len);
		else if (!rc && !strcmp(rest, "provenance.json") && !ir->provfile) {
			/* informational (the manifest is what is checked): kept
			 * when it is a JSON object, ignored otherwise */
			json_t *pj = json_loadb(txt, len, 0, NULL);
			if (json_is_object(pj))
				ir->provfile = pj;
			else
				json_decref(pj);
		}
		free(txt);
		if (rc)
			return rc;
	}
	if (nentry < 2)
		return md_fail(MD_EREFUSED, "bundle refused: no %s", nentry ? BUNDLE_SUMS : BUNDLE_INDEX);
	if (pubkey && !have_sig)
		return md_fail(MD_EAUTH, "bundle refused: --verify-key given but the bundle is not signed");
	const char *k;
	json_t *s;
	json_object_foreach(im->sums, k, s)
		if (!json_is_true(json_object_get(s, "seen")))
			return md_fail(MD_ECORRUPT, "bundle refused: %s is listed in SHA256SUMS but missing "
						    "(truncated bundle?)", k);
	for (size_t i = 0; i < im->nrevs; i++)
		if (!im->revs[i].manifest ||
		    im->revs[i].files_seen != json_array_size(json_object_get(im->revs[i].manifest, "files")))
			return md_fail(MD_ECORRUPT, "bundle refused: %s@%.12s is incomplete",
				       im->revs[i].name, im->revs[i].rev);
	return 0;
}

/* How a bundle arrived: recorded in each revision's provenance. */
struct arrival {
	char sha256[65];         /* of the bundle file */
	const char *signature;   /* "verified", "unverified" or "none" */
	char keyid[65];          /* the --verify-key's id when verified, else "" */
	char at[32];             /* when it was imported */
};

/*
 * A bundled revision's provenance: the origin's own record, as it was
 * (manifest.provenance, else rN/provenance.json's copy), and how it
 * arrived here: the bundle's sha256, its signature and signer, the time,
 * and what each file was checked against.
 */
static json_t *bundle_provenance(const struct imp *im, const struct irev *ir,
				 const struct arrival *how)
{
	json_t *m = ir->manifest;
	json_t *origin = json_object_get(m, "provenance");
	if (!json_is_object(origin))
		origin = json_object_get(ir->provfile, "provenance");
	const char *against = !strcmp(how->signature, "verified")
				      ? "bundle manifest and SHA256SUMS (signature verified)"
			      : !strcmp(how->signature, "unverified")
				      ? "bundle manifest and SHA256SUMS (signature not verified)"
				      : "bundle manifest and SHA256SUMS (unsigned)";
	json_t *files = json_array(), *f;
	size_t k;
	json_array_foreach(ingest_files(ir->ing), k, f)
		json_array_append_new(files, json_pack("{s:O,s:O,s:s}", "path", json_object_get(f, "path"),
						       "sha256", json_object_get(f, "sha256"),
						       "verified_against", against));
	json_t *p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:O*,s:O*,s:O*,s:O*,s:o,s:{s:s,s:s}}",
		"type", "bundle", "bundle_sha256", how->sha256, "signature", how->signature,
		"retrieved_at", how->at, "modeld_version", MODELD_VERSION,
		"bundle_created", jstr(im->index, "created") ? jstr(im->index, "created") : "",
		"bundle_created_by", json_object_get(im->index, "created_by"),
		"exported_at", json_object_get(ir->provfile, "exported_at"),
		"origin", json_is_object(origin) ? origin : NULL,
		"origin_source", json_object_get(m, "source"),
		"files", files, "converters", "pack_format", PACK_VERSION_STR, "recipe_format", "1");
	if (p && how->keyid[0])
		json_object_set_new(p, "signer_keyid", json_string(how->keyid));
	return p;
}

/* Where each model's "main" pointed before this bundle: "" when it had none. */
static void mains_before(struct imp *im, char (*old)[CATALOG_REV_LEN + 1])
{
	MDB_txn *txn;
	for (size_t i = 0; i < im->nrevs; i++)
		old[i][0] = 0;
	if (store_txn(im->d->st, 0, &txn))
		return;
	for (size_t i = 0; i < im->nrevs; i++)
		if (im->revs[i].ref && catalog_resolve(im->d->st, txn, im->revs[i].name, "main", old[i]))
			old[i][0] = 0;
	mdb_txn_abort(txn);
}

/* Point each model's "main" back where it was before this bundle (when
 * that revision is still stored): rolling back must not lose the ref. */
static void mains_restore(struct imp *im, char (*old)[CATALOG_REV_LEN + 1])
{
	MDB_txn *txn;
	if (store_txn(im->d->st, 1, &txn))
		return;
	int rc = 0;
	for (size_t i = 0; i < im->nrevs && !rc; i++) {
		char now[CATALOG_REV_LEN + 1];
		json_t *m = NULL;
		int existed;
		if (!old[i][0] || (catalog_resolve(im->d->st, txn, im->revs[i].name, "main", now) == 0 &&
				   !strcmp(now, old[i])))
			continue;
		if (catalog_get_rev(im->d->st, txn, im->revs[i].name, old[i], &m) == 0)
			rc = catalog_put_rev(im->d->st, txn, m, "main", &existed);
		json_decref(m);
	}
	if (rc)
		mdb_txn_abort(txn);
	else
		store_commit(txn);
}

/*
 * The refs other than main that the source store had on each revision
 * (tags, branches) are created where the importing store has no ref of
 * that name for the model; one it has is left where it points (the
 * summary lists it under "refs_kept"). Runs after every commit succeeded:
 * a failure here leaves the revisions stored, without those refs.
 */
static int other_refs(struct imp *im, json_t *out)
{
	MDB_txn *txn;
	int rc = store_txn(im->d->st, 1, &txn);
	if (rc)
		return rc;
	for (size_t i = 0; i < im->nrevs && !rc; i++) {
		struct irev *ir = &im->revs[i];
		json_t *sum = json_array_get(out, i), *set = json_array(), *kept = json_array();
		size_t k;
		json_t *r;
		json_array_foreach(ir->refs, k, r) {
			const char *ref = json_string_value(r);
			char cur[CATALOG_REV_LEN + 1];
			size_t len = ref ? strlen(ref) : 0;
			/* a ref that reads as a commit prefix would not resolve as a ref */
			if (!ref || !strcmp(ref, "main") || util_check_ref(ref) ||
			    (len >= 7 && strspn(ref, "0123456789abcdef") == len)) {
				md_clearerr();
				continue;
			}
			if (catalog_resolve(im->d->st, txn, ir->name, ref, cur) == 0) {
				if (strcmp(cur, ir->rev))
					json_array_append_new(kept, json_string(ref));
				continue;
			}
			md_clearerr();
			json_t *m = NULL;
			int existed;
			if ((rc = catalog_get_rev(im->d->st, txn, ir->name, ir->rev, &m)) == 0 &&
			    (rc = catalog_put_rev(im->d->st, txn, m, ref, &existed)) == 0)
				json_array_append_new(set, json_string(ref));
			json_decref(m);
			if (rc)
				break;
		}
		if (json_array_size(set))
			json_object_set(sum, "refs_set", set);
		if (json_array_size(kept))
			json_object_set(sum, "refs_kept", kept);
		json_decref(set);
		json_decref(kept);
	}
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return store_commit(txn);
}

/* Say which model failed, unless the message already does. */
static void name_it(int rc, const char *name)
{
	if (strncmp(md_errmsg(rc), name, strlen(name)))
		md_fail_prefix(rc, name);
}

static int commit_all(struct imp *im, const struct arrival *how, json_t *out)
{
	int rc = 0;
	size_t n = im->nrevs ? im->nrevs : 1;
	json_t **extra = calloc(n, sizeof *extra);
	char (*old)[CATALOG_REV_LEN + 1] = calloc(n, sizeof *old);
	if (!extra || !old) {
		free(extra);
		free(old);
		return MD_ENOMEM;
	}
	/* every revision described (and the license policy applied) before
	 * the first commit, so a refused one leaves the others uncommitted */
	for (size_t i = 0; i < im->nrevs && !rc; i++) {
		struct irev *ir = &im->revs[i];
		json_t *m = ir->manifest;
		json_t *src = json_pack("{s:s,s:s,s:O*,s:O*}", "type", "bundle", "bundle_created",
					jstr(im->index, "created") ? jstr(im->index, "created") : "",
					"origin", json_object_get(m, "source"), "origin_imported_at",
					json_object_get(m, "imported_at"));
		extra[i] = json_pack("{s:o,s:o}", "source", src, "provenance",
				     bundle_provenance(im, ir, how));
		if (!extra[i])
			rc = MD_ENOMEM;
		else if ((rc = describe_revision(im->d, ir->name, ir->ing, extra[i])))
			name_it(rc, ir->name);
	}
	if (!rc)
		mains_before(im, old);
	for (size_t i = 0; i < im->nrevs && !rc; i++) {
		struct irev *ir = &im->revs[i];
		json_t *res = NULL;
		if ((rc = ingest_commit(ir->ing, ir->name, ir->rev, ir->ref, extra[i], &res))) {
			name_it(rc, ir->name);
			break;
		}
		ir->committed = !json_is_true(json_object_get(res, "existed"));
		json_t *sum = json_deep_copy(res);
		json_object_del(sum, "files");
		json_object_del(sum, "v");
		json_object_set_new(sum, "file_count", json_integer((json_int_t)json_array_size(
								       json_object_get(res, "files"))));
		json_array_append_new(out, sum);
		json_decref(res);
	}
	if (!rc) {
		int rr = other_refs(im, out);
		if (rr) /* every revision is committed; only these refs are missing */
			log_warn("bundle import: revisions stored, their tags and branches not: %s",
				 md_errmsg(rr));
	} else { /* all or nothing: take back what this bundle added */
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", md_errmsg(rc));
		for (size_t i = 0; i < im->nrevs; i++) {
			json_t *r = NULL;
			if (im->revs[i].committed && maint_rm(im->d->st, im->revs[i].name,
							      im->revs[i].rev, &r) == 0)
				json_decref(r);
		}
		mains_restore(im, old);
		md_fail(rc, "%s", msg);
	}
	for (size_t i = 0; i < im->nrevs; i++)
		json_decref(extra[i]);
	free(extra);
	free(old);
	return rc;
}

static int import_run(struct daemon *d, struct job *j, json_t **res)
{
	int verify = json_is_true(json_object_get(j->args, "verify"));
	if (j->nfds != (size_t)(verify ? 2 : 1))
		return md_fail(MD_EPROTO, "bundle import: %zu descriptors, expected %d", j->nfds,
			       verify ? 2 : 1);
	int rc = md_lib_need(MD_LIB_ARCHIVE, "import");
	if (rc)
		return rc;
	struct imp im = { .d = d, .j = j, .cap_total = BUNDLE_MAX_TOTAL };
	char *key = NULL;
	size_t keylen = 0;
	const char *sigstate = "none";
	struct stat sb;
	if (fstat(j->fds[0], &sb) == 0 && S_ISREG(sb.st_mode))
		atomic_store(&j->ctl.total, (uint64_t)sb.st_size);
	if (verify && (rc = read_small_fd(j->fds[1], SIGN_MAX_PEM, &key, &keylen)))
		return md_fail_prefix(rc, "--verify-key");
	if (!(im.buf = malloc(IOBUF)) || !(im.a = archive_read_new())) {
		rc = MD_ENOMEM;
		goto out;
	}
	archive_read_support_format_tar(im.a);
	archive_read_support_filter_none(im.a);
	archive_read_support_filter_zstd(im.a);
	archive_read_support_filter_gzip(im.a);
	archive_read_support_filter_xz(im.a);
	im.fd = j->fds[0];
	if (!(im.rbuf = malloc(IOBUF)) || sha256_init(&im.whole)) {
		rc = MD_ENOMEM;
		goto out;
	}
	im.whole_ok = 1;
	if (archive_read_open(im.a, &im, NULL, bundle_read, NULL) != ARCHIVE_OK) {
		rc = md_fail(MD_EREFUSED, "bundle refused: not a tar archive (%s)",
			     archive_error_string(im.a));
		goto out;
	}
	if ((rc = read_all(&im, key, keylen, &sigstate)))
		goto out;
	struct arrival how = { .signature = sigstate };
	if ((rc = bundle_digest(&im, how.sha256)))
		goto out;
	if (!strcmp(sigstate, "verified") && (rc = sign_keyid(key, keylen, how.keyid)))
		goto out;
	util_now_iso(how.at, sizeof how.at);
	json_t *revs = json_array();
	if ((rc = commit_all(&im, &how, revs))) {
		json_decref(revs);
		goto out;
	}
	*res = json_pack("{s:o,s:s}", "revisions", revs, "signature", sigstate);
out:
	if (im.a)
		archive_read_free(im.a);
	for (size_t i = 0; i < im.nrevs; i++) {
		if (im.revs[i].ing)
			ingest_free(im.revs[i].ing);
		json_decref(im.revs[i].manifest);
		json_decref(im.revs[i].provfile);
	}
	free(im.revs);
	if (im.whole_ok)
		sha256_free(&im.whole);
	free(im.rbuf);
	json_decref(im.sums);
	json_decref(im.sumlist);
	json_decref(im.index);
	free(im.buf);
	free(key);
	return rc;
}

int bundle_import_job(struct daemon *d, struct job *j, json_t **res)
{
	locale_t old = util_utf8_enter();
	int rc = import_run(d, j, res);
	util_utf8_leave(old);
	return rc;
}
