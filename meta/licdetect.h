/*
 * meta/licdetect.h — detect which license a LICENSE text is.
 *
 * Method (docs/licenses.md): both the text and every corpus license are
 * normalized as the SPDX matching guidelines say (case, whitespace,
 * punctuation, quotes and dashes, list markers, copyright notice lines,
 * Markdown emphasis/headings/links, http/https, British/American spellings,
 * hyphenated words), split into words, and turned into the set of word
 * bigrams. The score against a corpus license is the Dice coefficient
 * 2|A∩B| / (|A|+|B|). A text matches the best-scoring license when
 *     score >= LICDETECT_MATCH (0.90)  and  coverage >= LICDETECT_COVERAGE
 * where coverage = |A∩B| / |B| is the share of the license's own bigrams
 * found in the text: a text that drops a whole paragraph (e.g. Apache-2.0
 * without its patent grant) fails on coverage even when Dice stays high.
 * A license's optional text (Apache-2.0's APPENDIX, as SPDX templates mark
 * <<beginOptional>>) is left out of the text's bigrams before scoring: it
 * is neither required nor counted in "extra".
 *
 * The corpus ships with modeld (meta/licenses/ID.txt, embedded at build
 * time). It is prepared on first use (pthread_once), then shared read-only
 * by all threads; everything here is thread-safe.
 */
#ifndef MD_LICDETECT_H
#define MD_LICDETECT_H

#include <stddef.h>

#define LICDETECT_MATCH 0.90
#define LICDETECT_COVERAGE 0.93
/* Hard cap on the text examined: bytes past it are ignored (a LICENSE file
 * is a few tens of KiB; the longest corpus text is ~32 KiB). */
#define LICDETECT_MAX_TEXT (1024 * 1024)

/* One embedded corpus text (generated: build/gen/license_corpus.c). */
struct licdetect_text {
	const char *id;   /* SPDX or LicenseRef- id, the file name */
	const char *text;
};
extern const struct licdetect_text licdetect_corpus[];
extern const size_t licdetect_corpus_n;

struct licdetect_result {
	char id[80];        /* best-scoring corpus id ("" when the text is empty) */
	double score;       /* its Dice score, 0..1 */
	double coverage;    /* share of its bigrams present in the text, 0..1 */
	int matched;        /* 1 when score and coverage pass the thresholds */
	char runner_up[80]; /* second-best id, for reports */
	double runner_up_score;
	size_t words;       /* words in the normalized text */
	size_t extra;       /* bigrams of the text not in the best license:
	                       text added to it (headers, appendices, or
	                       changed terms); see lic_flags */
	size_t license_bigrams; /* bigrams of the best license */
};

/*
 * Detect the license of text[0..len) (need not be NUL-terminated; not
 * retained). Fills *res. Returns 0 (also when nothing matches: res->matched
 * is 0 then), MD_ENOMEM, or MD_EINVAL for a NULL argument. Texts longer than
 * LICDETECT_MAX_TEXT are examined up to the cap.
 */
int licdetect_text(const char *text, size_t len, struct licdetect_result *res);

/*
 * Score text against one corpus id only (tests, "why not X?" reports).
 * Returns 0, MD_ENOENT when id is not in the corpus, or MD_ENOMEM.
 */
int licdetect_score(const char *text, size_t len, const char *id, double *score,
		    double *coverage);

/*
 * The normalized word sequence of a text, space-separated, malloc'd into
 * *out (caller frees). For tests and docs. 0 or MD_ENOMEM.
 */
int licdetect_normalize(const char *text, size_t len, char **out);

/* Whether id is in the shipped corpus. */
int licdetect_has(const char *id);

#endif
