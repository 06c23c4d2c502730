/*
 * registry/ingest.h — bringing one revision into the store.
 *
 * An ingest owns a staging directory STORE/tmp/ing-XXXXXX (flock'd while it
 * lives, so gc leaves it alone). Files are copied (or downloaded by a
 * source) into it, hashed and fsync'd; ingest_commit then moves the blobs
 * into place and records the manifest in one catalog write transaction.
 * Until that commit nothing of the revision is visible; after a crash the
 * staging directory and any blob renamed without a commit are garbage for
 * gc. An ingest is used by one thread at a time.
 */
#ifndef MD_INGEST_H
#define MD_INGEST_H

#include <stdatomic.h>
#include <stdint.h>

#include "registry/store.h"

#define INGEST_MAX_FILES 100000   /* files in one revision */

/* Shared with the job that runs the ingest: progress out, cancel in. */
struct ingest_ctl {
	_Atomic uint64_t done;    /* bytes processed so far */
	_Atomic uint64_t total;   /* bytes expected, when known */
	_Atomic int cancel;       /* set to 1 to stop at the next buffer */
};

struct ingest;

/*
 * Converts one weight file (src_fd, size bytes, relpath) into the empty
 * staged files pack_fd and recipe_fd; *info gets {format, tensors, params,
 * sha256 (of the source), pack (its root digest), recipe (its sha256),
 * dtype_bytes, ...}. sha256 (may be NULL) is the source's digest when the
 * registry verified it already; the converter then need not hash it.
 * MD_EUNSUP means "not a weight file after all" (no converter claims it):
 * stored as a plain blob. Any other failure of a claimed file, including a
 * format feature we do not convert (MD_EREFUSED), fails the import.
 * Supplied by the daemon (it runs the parser in a confined process).
 */
struct ingest_converter {
	/* 1 when the file (fd, relpath) is a weight file to convert. */
	int (*claims)(void *arg, int fd, const char *relpath);
	int (*convert)(void *arg, int src_fd, uint64_t size, const char *relpath,
		       const char *sha256, int pack_fd, int recipe_fd, json_t **info);
	/* A file downloaded in pack layout (xfer_item.place) as planned from
	 * head_fd: placed_fd becomes the pack in place; NULL: none. */
	int (*convert_placed)(void *arg, int head_fd, int placed_fd, uint64_t size,
			      const char *relpath, const char *sha256, int recipe_fd,
			      json_t **info);
	void *arg;
};

/* Convert the files conv claims instead of storing them as plain blobs
 * (conv is borrowed for the ingest's life). Without it nothing is
 * converted. */
void ingest_set_converter(struct ingest *ing, const struct ingest_converter *conv);

/* Create a staging directory. ctl is borrowed for the ingest's life (may be
 * NULL). 0, MD_EIO, MD_ENOMEM. */
int ingest_begin(struct store *st, struct ingest_ctl *ctl, struct ingest **out);

/* The staging directory; borrowed, valid until ingest_free. Sources may
 * write files there and hand them over with ingest_add_hashed. */
const char *ingest_dir(const struct ingest *ing);

/*
 * Copy a regular file from fd (read from its current size, not trusted to
 * stay put) into staging while hashing it; record it as relpath. A weight
 * file is converted instead (pack + recipe, the original is not kept).
 * relpath is checked with util_check_relpath. Errors name relpath:
 * MD_EREFUSED (bad path, duplicate), MD_EINVAL (not a regular file),
 * MD_EIO, MD_ENOSPC, MD_ECANCELED, MD_ECORRUPT (file changed while read).
 */
int ingest_add_fd(struct ingest *ing, const char *relpath, int fd);

/*
 * Hand over a file a source already wrote into ingest_dir() as staged_name
 * and hashed while writing it (sha256: 64 lower-case hex digits, verified by
 * the caller against what it expected): it is fsync'd and recorded without
 * being read again, and moved, not copied (a weight file is converted
 * instead: pack + recipe, MD_EREFUSED or MD_ECORRUPT when it cannot be).
 * For sources that stream and hash in one pass (bundles, daemon/bundle.c).
 * Errors name relpath: MD_EREFUSED
 * (bad or duplicate path), MD_EINVAL (bad staged name, malformed digest),
 * MD_EIO, MD_ENOSPC, MD_ENOMEM.
 */
int ingest_add_hashed(struct ingest *ing, const char *relpath, const char *staged_name,
		      const char *sha256);

/*
 * Open a file added so far, by its relative path, for reading (the staged
 * copy, or the stored blob of one added with ingest_add_existing: metadata
 * extraction reads the card and license from it). Returns a descriptor the
 * caller closes, MD_ENOENT, or MD_EUNSUP for a converted weight file.
 */
int ingest_open(struct ingest *ing, const char *relpath);

/* The relative paths added so far, as a JSON array borrowed until the next
 * add or ingest_free. */
json_t *ingest_paths(struct ingest *ing);

/* The file records so far ({path,size,sha256, blob | pack+recipe+format+
 * params+dtype_bytes...}); borrowed, do not modify. */
json_t *ingest_files(struct ingest *ing);

/*
 * Record a file whose content the store already holds: entry is a file
 * entry without "path" (catalog_origin); borrowed. Every blob it names is
 * hard-linked into staging at once, so an rm and gc before the commit
 * cannot take it away: the commit puts it back. 0, MD_EREFUSED (bad or
 * duplicate path), MD_EBUSY (a blob was removed before this call: retry),
 * MD_EIO, MD_ENOMEM.
 */
int ingest_add_existing(struct ingest *ing, const char *relpath, json_t *entry);

/*
 * Hand over a file another part of the store wrote at abs_path (a pull's
 * staging directory, same filesystem) whose sha256 the writer verified
 * while writing: it is hard-linked (plain, fsync'd first) or converted
 * (weight files; the source is not hashed again), not re-hashed. abs_path
 * is left in place for the caller to remove once what was staged is safe
 * from a kill (ingest_keep): a pull killed in between finds the download
 * still there and does not fetch it again. Errors as
 * ingest_add_hashed. Several threads may call it at once on one ingest
 * (a pull converts two files at a time); no other call may run meanwhile.
 */
int ingest_add_file(struct ingest *ing, const char *relpath, const char *abs_path,
		    const char *sha256);

/*
 * ingest_add_file for a safetensors or GGUF file a pull downloaded in pack layout
 * (size: the file's size as served; head_fd: the head its placement was
 * planned from): abs_path is converted in place by the converter's
 * convert_placed and staged as the pack under a second name, so a kill
 * before ingest_keep may leave abs_path half converted (its size then is
 * no longer the placed size: xfer fetches it again). Errors as
 * ingest_add_file; after one, relpath is free again, so that the caller
 * may add the file downloaded as it is instead.
 */
int ingest_add_placed(struct ingest *ing, const char *relpath, const char *abs_path,
		      int head_fd, uint64_t size, const char *sha256);

/*
 * Resuming an interrupted pull without fetching again what it had stored:
 * ingest_keep() hard-links what the ingest staged for relpath (the pack and
 * recipe of a converted file, or the plain blob) into dir as KEY.N and
 * writes its file record to dir/KEY.json (dir: the pull's own staging
 * directory, same filesystem, kept across restarts). 0, MD_ENOENT (relpath
 * not added), MD_EIO. Safe alongside ingest_add_file.
 * ingest_adopt() is the way back in a later ingest: when dir/KEY.json is a
 * record for relpath of that size (and sha256, when given) whose files are
 * all there, it links them into this ingest's staging and records relpath
 * as if it had been added. 0, or MD_ENOENT when there is nothing usable
 * (the caller then fetches the file), MD_EREFUSED (duplicate), MD_ENOMEM.
 */
int ingest_keep(struct ingest *ing, const char *relpath, const char *dir, const char *key);
int ingest_adopt(struct ingest *ing, const char *relpath, const char *dir, const char *key,
		 const char *sha256, uint64_t size);

/*
 * Make ingest_commit replace a stored revision of the same name and id with
 * the manifest it builds (catalog_replace_rev) instead of keeping the stored
 * one: a pull that completes a revision an earlier filtered pull stored in
 * part adds the stored files (ingest_add_existing) and the missing ones.
 * The result then has no "existed".
 */
void ingest_set_replace(struct ingest *ing);

/*
 * Parameters, bytes per dtype and a GGUF file's architecture, from the
 * packs of the converted files added so far (wfacts_compute,
 * registry/wfacts.h: each tensor name counted once over all files). *out
 * new, the caller decrefs. Same errors.
 */
int ingest_weight_facts(struct ingest *ing, json_t **out);

/*
 * Commit: build the manifest {v,name,revision,files[{path,size,sha256,blob}],
 * total_size,imported_at} merged with the members of extra (borrowed; e.g.
 * source, provenance), then in one write transaction move blobs into place,
 * store it and point ref (may be NULL) at it. rev NULL derives the revision
 * from the content: the first 40 hex digits of sha256 over the sorted
 * "path\0size\0sha256\n" lines, so the same bytes give the same revision.
 * *manifest_out (may be NULL) gets a new reference; "existed" is set in it
 * when that revision was already stored. First every sharded safetensors
 * index among the files is checked against its shards (registry/stindex.h);
 * a violation is MD_EREFUSED naming the index and the tensor or shard, and
 * nothing is committed. 0, MD_EINVAL (no files), MD_EREFUSED, MD_ETOOBIG,
 * MD_EIO, MD_ENOSPC, MD_EDB.
 */
int ingest_commit(struct ingest *ing, const char *name, const char *rev, const char *ref,
		  json_t *extra, json_t **manifest_out);

/* Remove the staging directory (whatever was not committed) and free. */
void ingest_free(struct ingest *ing);

#endif
