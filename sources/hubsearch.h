/*
 * sources/hubsearch.h — searching a Hugging Face-style hub's model list:
 * GET HUB/api/models?search=&author=&filter=&sort=&limit= with cursor
 * pagination through the Link: <URL>; rel="next" response header. libcurl
 * easy interface; runs on a job worker thread (it blocks).
 *
 * Everything the hub sends is untrusted. Hard caps (set here):
 *   HUBSEARCH_MAX_BODY   one response body: 16 MiB
 *   HUBSEARCH_MAX_PAGES  pages followed: 50
 *   HUBSEARCH_MAX_LIMIT  results asked for: 1000
 *   HUBSEARCH_MAX_HEADER one header line kept (Link): 8 KiB
 *   ids longer than 256 bytes or with control characters are dropped;
 *   a next link to another origin (scheme, host, port) than the hub's is
 *   refused. Only http and https, no redirects, 10 s to connect, 60 s per
 *   page.
 */
#ifndef MD_HUBSEARCH_H
#define MD_HUBSEARCH_H

#include <stddef.h>
#include <jansson.h>

#define HUBSEARCH_MAX_BODY (16u << 20)
#define HUBSEARCH_MAX_PAGES 50
#define HUBSEARCH_MAX_LIMIT 1000
#define HUBSEARCH_MAX_HEADER 8192

struct hubsearch_req {
	const char *hub;        /* "https://huggingface.co" (no trailing path needed) */
	const char *search;     /* free text, or NULL */
	const char *author;     /* an org, or NULL */
	const char *filter[4];  /* tag filters ("text-generation", "license:mit"), NULL-ended */
	const char *sort;       /* "downloads", "likes", "lastModified"..., or NULL */
	size_t limit;           /* results wanted, 1..HUBSEARCH_MAX_LIMIT */
};

/*
 * Run the search. *out gets a new array (caller decrefs) of at most limit
 * objects {id, author?, pipeline_tag?, library_name?, license?, downloads?,
 * likes?, last_modified?, parameters?, tags[]} (license from a "license:X"
 * tag, parameters from safetensors.total), in the hub's order, each id
 * once (paging stops at a page with no new id, or a next link to itself);
 * *pages the number of pages fetched. Errors: MD_EINVAL (bad hub URL), MD_ENET
 * (connection, HTTP status, timeout; the detail names the URL and status),
 * MD_EAUTH (401/403), MD_ETOOBIG (a cap), MD_ECORRUPT (body not a JSON
 * array), MD_EREFUSED (next link to another origin), MD_ENOMEM.
 */
int hubsearch_query(const struct hubsearch_req *r, json_t **out, int *pages);

#endif
