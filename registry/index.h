/*
 * registry/index.h — the catalog's indexes, so that filtered lists and
 * searches never scan every model (docs/catalog.md, "Indexes").
 *
 * Four derived databases, kept in step with `revisions` inside the same
 * write transaction by catalog_put_rev / catalog_del_rev, and rebuilt at
 * start-up (index_ensure) when their version or entry count does not match.
 * Each indexed revision gets a 64-bit id (meta "index_next" counts them), so
 * posting lists are arrays of 8-byte integers (MDB_DUPFIXED: dense pages,
 * read a page at a time, intersected as sorted integers):
 *
 *   index         (DUPSORT|DUPFIXED|INTEGERDUP) "FIELD\0VALUE" -> id, FIELD one
 *                 of task, provider, license, library, arch (values lower-
 *                 cased, cut at INDEX_MAX_VALUE bytes), "w" (a search word of
 *                 the name, tags, task, library, languages, datasets, base
 *                 models, architecture, license and card text) and "n" (a
 *                 word of the name only, for ranking)
 *   index_rows    "NAME\0REV" -> struct index_num (with the id), then the
 *                 row: compact JSON of what a filtered list shows, so that
 *                 answering a filter never touches manifests or summaries,
 *                 and a large result in name order is one sequential walk
 *   index_ids     id (INTEGERKEY) -> "NAME\0REV"
 *   index_ranges  KIND u64be(VALUE) u64be(id) -> "" with KIND 'p' parameters,
 *                 's' total size, 'm' memory at the stored dtype, 't' import
 *                 time: range filters are cursor walks over a key range
 *
 * Facts are read from the manifest: facts.{task,provider,license,library,
 * tags,languages,datasets,base_model,architecture,context_length,
 * parameters,dtype_bytes}, license.{spdx,detected}, card.text, total_size,
 * imported_at.
 *
 * A row: {"name","revision","total_size","imported_at","parameters",
 * "memory" (bytes at the stored dtype),"memory_estimated"?,"task",
 * "provider","library","license","architecture","context_length"}, null
 * where unknown.
 */
#ifndef MD_INDEX_H
#define MD_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "registry/store.h"

#define INDEX_VERSION 2         /* 2: one-letter words of names */
#define INDEX_MAX_VALUE 200     /* bytes of an indexed value; longer ones are cut */
#define INDEX_MAX_WORDS 128     /* search words kept per revision */
#define INDEX_MAX_QUERY_WORDS 8 /* words of a search query used */
#define INDEX_MAX_EXPAND 4096   /* index keys one query word's prefix may expand to */
#define INDEX_ORDERED_WALK 4096 /* more candidates than this: walk an ordered index, no sort */

#define INDEX_HAS_PARAMS 1u     /* index_num.params is known */
#define INDEX_HAS_MEM 2u        /* index_num.mem is known */
#define INDEX_MEM_ESTIMATED 4u  /* mem = params x 2: no bytes per dtype recorded */

struct index_num {
	uint32_t version;      /* INDEX_VERSION */
	uint32_t flags;        /* INDEX_HAS_* */
	uint64_t params;       /* facts.parameters */
	uint64_t size;         /* total_size (bytes of the original files) */
	uint64_t mem;          /* bytes to load at the stored dtype */
	int64_t imported;      /* imported_at, seconds since the epoch */
	uint64_t id;           /* the revision's index id */
};

/* The numbers recorded for a manifest (pure; used by ops for show too). */
void index_num_of(json_t *manifest, struct index_num *out);

/* The license a manifest is filed under: facts.license (the card's, SPDX),
 * else license.spdx, else the detected license when it matched; NULL or
 * "NOASSERTION" when none. Borrowed from m. */
const char *index_license(json_t *m);

/* Add / remove the index records of a manifest inside the caller's write
 * transaction. 0, MD_EDB, MD_ENOSPC, MD_ENOMEM. */
int index_put(struct store *st, MDB_txn *txn, const char *name, const char *rev, json_t *m);
int index_del(struct store *st, MDB_txn *txn, const char *name, const char *rev, json_t *m);

/* Rebuild the indexes when meta "index" is not INDEX_VERSION or index_nums
 * and revisions differ in size. Own write transaction. 0, MD_EDB. */
int index_ensure(struct store *st);

enum { INDEX_SORT_NAME, INDEX_SORT_PARAMS, INDEX_SORT_SIZE, INDEX_SORT_IMPORTED };

struct index_query {
	const char *task, *provider, *license, *library; /* NULL: any (case-insensitive) */
	const char *text;        /* search words (prefix match, all must match), or NULL */
	int has_min, has_max;    /* parameter bounds, both inclusive */
	uint64_t min_params, max_params;
	int has_mem;             /* memory at the stored dtype <= max_mem */
	uint64_t max_mem;
	int sort;                /* INDEX_SORT_*; params/size/imported sort descending */
};

struct index_hit {
	const char *key;         /* "NAME\0REV", borrowed from the transaction */
	size_t klen;
	const char *row;         /* the row JSON (not NUL-terminated), borrowed too */
	size_t rowlen;
	struct index_num num;
	int score;               /* text queries: query words found in the name */
};

/*
 * Run a query in a read transaction. *hits (malloc'd, caller frees; keys
 * borrowed until the transaction ends) gets the matching revisions, sorted
 * by q->sort (text queries: by score first), *n their count. The
 * borrowed pointers are valid only in a read-only transaction.
 * 0, MD_EINVAL (a query with no usable word), MD_EDB, MD_ENOMEM.
 */
int index_query(struct store *st, MDB_txn *txn, const struct index_query *q,
		struct index_hit **hits, size_t *n);

/*
 * Split text into lower-cased words (runs of letters, digits and UTF-8
 * bytes; min (at least 1)..40 bytes; ASCII only is case-folded) and call fn
 * for each one. Pure. A nonzero return from fn stops and is returned.
 * Indexed text uses min 2, except a model's name (min 1); queries min 1.
 */
typedef int index_word_fn(const char *word, size_t len, void *arg);
int index_words(const char *text, size_t len, size_t min, index_word_fn *fn, void *arg);

#endif
