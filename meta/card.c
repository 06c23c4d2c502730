/*
 * meta/card.c — README.md front matter parsing with libyaml (event API, our
 * own tree builder so that every cap is ours) and field normalization.
 * See card.h for the contract and the caps.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "common/err.h"
#include "common/util.h"
#include "meta/card.h"
#include "meta/spdx.h"

/* ---- front matter --------------------------------------------------------- */

/* Is s[0..n) a "---" delimiter line (trailing spaces/CR allowed)? */
static int delim_line(const char *s, size_t n)
{
	if (n < 3 || memcmp(s, "---", 3))
		return 0;
	for (size_t i = 3; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

/*
 * Find the front matter: returns 1 and its bounds, 0 when the card has none,
 * -1 with *why set when it is there but unusable.
 */
static int front_matter(const char *buf, size_t len, size_t *start, size_t *end, const char **why)
{
	size_t i = 0;
	if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
	    (unsigned char)buf[2] == 0xBF)
		i = 3;
	const char *nl = memchr(buf + i, '\n', len - i);
	if (!nl || !delim_line(buf + i, (size_t)(nl - (buf + i))))
		return 0;
	*start = (size_t)(nl - buf) + 1;
	size_t limit = len;
	if (limit > *start + CARD_MAX_FRONT + 8)
		limit = *start + CARD_MAX_FRONT + 8;
	size_t p = *start;
	while (p < limit) {
		const char *e = memchr(buf + p, '\n', limit - p);
		size_t ll = e ? (size_t)(e - (buf + p)) : limit - p;
		if (!e && limit < len) /* line cut by the scan limit */
			break;
		if (delim_line(buf + p, ll) || (ll >= 3 && !memcmp(buf + p, "...", 3) && ll <= 4)) {
			*end = p;
			if (*end - *start > CARD_MAX_FRONT) {
				*why = "front matter exceeds the 1 MiB cap";
				return -1;
			}
			return 1;
		}
		if (!e)
			break;
		p += ll + 1;
	}
	*why = limit < len ? "front matter exceeds the 1 MiB cap (no closing '---' within it)"
			   : "front matter is not closed by a '---' line";
	return -1;
}

/* ---- YAML -> JSON tree with caps ------------------------------------------ */

struct frame {
	json_t *node;   /* object or array being filled */
	char *key;      /* pending mapping key (object frames) */
	char *anchor;   /* anchor to register when the node completes */
	size_t nodes0;  /* node count when the frame opened */
};

struct anchor {
	char *name;
	json_t *node;
	size_t cost;    /* nodes in the anchored subtree */
};

struct builder {
	struct frame stack[CARD_MAX_DEPTH + 1];
	int depth;
	struct anchor anchors[CARD_MAX_ANCHORS];
	int nanchors;
	int naliases;
	size_t nodes;
	json_t *root;
	char reason[256];
	size_t ndup;     /* keys repeated in a mapping (the last value is kept) */
	char dup[64];    /* the first of them */
	int oom;
};

static int refuse(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct builder *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->reason, sizeof b->reason, fmt, ap);
	va_end(ap);
	return -1;
}

static int add_anchor(struct builder *b, const char *name, json_t *node, size_t cost)
{
	if (!name)
		return 0;
	for (int i = 0; i < b->nanchors; i++)
		if (!strcmp(b->anchors[i].name, name)) { /* redefinition: latest wins */
			json_decref(b->anchors[i].node);
			b->anchors[i].node = json_incref(node);
			b->anchors[i].cost = cost;
			return 0;
		}
	if (b->nanchors == CARD_MAX_ANCHORS)
		return refuse(b, "more than %d YAML anchors", CARD_MAX_ANCHORS);
	char *n = strdup(name);
	if (!n) {
		b->oom = 1;
		return -1;
	}
	b->anchors[b->nanchors].name = n;
	b->anchors[b->nanchors].node = json_incref(node);
	b->anchors[b->nanchors].cost = cost;
	b->nanchors++;
	return 0;
}

/* Attach a completed value (reference stolen) to the current container. */
static int attach(struct builder *b, json_t *v)
{
	if (!v) {
		b->oom = 1;
		return -1;
	}
	if (b->depth == 0) {
		if (b->root) {
			json_decref(v);
			return 0;
		}
		b->root = v;
		return 0;
	}
	struct frame *f = &b->stack[b->depth - 1];
	if (json_is_array(f->node)) {
		if (json_array_append_new(f->node, v)) {
			b->oom = 1;
			return -1;
		}
		return 0;
	}
	if (!f->key) { /* this value is a key */
		if (!json_is_string(v)) {
			json_decref(v);
			return refuse(b, "a mapping key is not a scalar (complex keys are refused)");
		}
		f->key = strdup(json_string_value(v)); /* cut at an embedded NUL */
		json_decref(v);
		if (!f->key) {
			b->oom = 1;
			return -1;
		}
		return 0;
	}
	if (json_object_get(f->node, f->key) && !b->ndup++)
		snprintf(b->dup, sizeof b->dup, "%s", f->key);
	int rc = json_object_set_new(f->node, f->key, v);
	free(f->key);
	f->key = NULL;
	if (rc) {
		b->oom = 1;
		return -1;
	}
	return 0;
}

static int count_node(struct builder *b, size_t cost)
{
	b->nodes += cost;
	if (b->nodes > CARD_MAX_NODES)
		return refuse(b, "more than %d YAML nodes (alias expansion counted)", CARD_MAX_NODES);
	return 0;
}

/* YAML 1.2 core schema resolution of a plain scalar. Keys are always kept
 * as strings by the caller (is_key). */
static json_t *scalar(const char *s, size_t n, int plain, int is_key)
{
	if (!plain || is_key)
		return json_stringn(s, n);
	if (n == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	if (n < 32) {
		char *e;
		errno = 0;
		long long ll = strtoll(s, &e, 10);
		if (*e == '\0' && e != s && errno == 0 && (s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
			return json_integer(ll);
		errno = 0;
		double d = strtod(s, &e);
		if (*e == '\0' && e != s && errno == 0 && strspn(s, "+-0123456789.eE") == n)
			return json_real(d);
	}
	return json_stringn(s, n);
}

static int handle(struct builder *b, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		if (count_node(b, 1))
			return -1;
		const char *s = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;
		if (memchr(s, '\0', n))
			return refuse(b, "a scalar contains a NUL character");
		int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.plain_implicit;
		if (ev->data.scalar.tag && !strcmp((const char *)ev->data.scalar.tag, "tag:yaml.org,2002:str"))
			plain = 0;
		int is_key = b->depth > 0 && json_is_object(b->stack[b->depth - 1].node) &&
			     !b->stack[b->depth - 1].key;
		json_t *v = scalar(s, n, plain, is_key);
		if (!v) /* json_stringn refuses invalid UTF-8 (e.g. escaped surrogates) */
			return refuse(b, "a scalar is not valid UTF-8");
		if (ev->data.scalar.anchor && add_anchor(b, (const char *)ev->data.scalar.anchor, v, 1)) {
			json_decref(v);
			return -1;
		}
		return attach(b, v);
	}
	case YAML_ALIAS_EVENT: {
		if (++b->naliases > CARD_MAX_ALIASES)
			return refuse(b, "more than %d YAML alias uses", CARD_MAX_ALIASES);
		const char *name = (const char *)ev->data.alias.anchor;
		for (int i = b->nanchors - 1; i >= 0; i--)
			if (!strcmp(b->anchors[i].name, name)) {
				if (count_node(b, b->anchors[i].cost))
					return -1;
				return attach(b, json_incref(b->anchors[i].node));
			}
		return refuse(b, "alias *%.64s names no completed anchor", name);
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		if (b->depth == CARD_MAX_DEPTH)
			return refuse(b, "YAML nesting deeper than %d", CARD_MAX_DEPTH);
		if (count_node(b, 1))
			return -1;
		int map = ev->type == YAML_MAPPING_START_EVENT;
		if (b->depth > 0 && json_is_object(b->stack[b->depth - 1].node) && !b->stack[b->depth - 1].key)
			return refuse(b, "a mapping key is not a scalar (complex keys are refused)");
		json_t *c = map ? json_object() : json_array();
		if (!c) {
			b->oom = 1;
			return -1;
		}
		const yaml_char_t *a = map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
		char *an = a ? strdup((const char *)a) : NULL;
		if (a && !an) {
			json_decref(c);
			b->oom = 1;
			return -1;
		}
		struct frame *f = &b->stack[b->depth++];
		f->node = c;
		f->key = NULL;
		f->anchor = an;
		f->nodes0 = b->nodes - 1;
		return 0;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		if (b->depth == 0)
			return refuse(b, "unbalanced YAML collection end");
		struct frame *f = &b->stack[--b->depth];
		json_t *c = f->node;
		free(f->key);
		f->key = NULL;
		int rc = 0;
		if (f->anchor)
			rc = add_anchor(b, f->anchor, c, b->nodes - f->nodes0);
		free(f->anchor);
		f->anchor = NULL;
		if (rc) {
			json_decref(c);
			return -1;
		}
		return attach(b, c);
	}
	default:
		return 0;
	}
}

static void builder_free(struct builder *b)
{
	while (b->depth > 0) {
		struct frame *f = &b->stack[--b->depth];
		json_decref(f->node);
		free(f->key);
		free(f->anchor);
	}
	for (int i = 0; i < b->nanchors; i++) {
		free(b->anchors[i].name);
		json_decref(b->anchors[i].node);
	}
	json_decref(b->root);
}

/* Parse the front matter into a JSON tree. 0 and *root (and in dup a
 * warning when a mapping repeats a key, else ""), -1 with reason, or
 * MD_ENOMEM. */
static int yaml_tree(const char *s, size_t n, json_t **root, char *reason, size_t rsz,
		     char *dup, size_t dsz)
{
	struct builder *b = calloc(1, sizeof *b);
	if (!b)
		return md_fail(MD_ENOMEM, "card: out of memory");
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p)) {
		free(b);
		return md_fail(MD_ENOMEM, "card: out of memory");
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)s, n);
	int rc = 0, docs = 0;
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_MEMORY_ERROR) {
				b->oom = 1;
			} else {
				snprintf(b->reason, sizeof b->reason, "YAML error at line %zu column %zu: %s%s%s",
					 p.problem_mark.line + 2, p.problem_mark.column + 1,
					 p.problem ? p.problem : "syntax error", p.context ? " " : "",
					 p.context ? p.context : "");
			}
			rc = -1;
			break;
		}
		int done = ev.type == YAML_STREAM_END_EVENT;
		if (ev.type == YAML_DOCUMENT_END_EVENT)
			done = ++docs >= 1;
		int hr = handle(b, &ev);
		yaml_event_delete(&ev);
		if (hr) {
			rc = -1;
			break;
		}
		if (done)
			break;
	}
	yaml_parser_delete(&p);
	if (b->oom) {
		builder_free(b);
		free(b);
		return md_fail(MD_ENOMEM, "card: out of memory");
	}
	if (rc) {
		snprintf(reason, rsz, "%s", b->reason[0] ? b->reason : "YAML error");
		builder_free(b);
		free(b);
		return -1;
	}
	*root = b->root;
	b->root = NULL;
	dup[0] = 0;
	if (b->ndup) /* YAML forbids them; other parsers take the first or fail */
		snprintf(dup, dsz, "duplicate key '%s'%s: the last value is used", b->dup,
			 b->ndup > 1 ? " (and others)" : "");
	builder_free(b);
	free(b);
	return 0;
}

/* ---- normalization ------------------------------------------------------- */

struct norm {
	json_t *out;
	json_t *warnings;
	int oom;
};

static void warn(struct norm *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct norm *n, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (json_array_size(n->warnings) < 100 && json_array_append_new(n->warnings, json_string(buf)))
		n->oom = 1;
}

static void set(struct norm *n, const char *key, json_t *v)
{
	if (!v || json_object_set_new(n->out, key, v))
		n->oom = 1;
}

/* A scalar as a string (numbers and booleans are written out), or NULL. */
static json_t *as_string(json_t *v)
{
	char buf[64];
	if (json_is_string(v)) {
		size_t l = json_string_length(v);
		if (l == 0 || l > CARD_MAX_STRING)
			return NULL;
		return json_stringn(json_string_value(v), l);
	}
	if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
		return json_string(buf);
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof buf, "%g", json_real_value(v));
		return json_string(buf);
	}
	if (json_is_boolean(v))
		return json_string(json_is_true(v) ? "true" : "false");
	return NULL;
}

static void str_field(struct norm *n, json_t *card, const char *key, const char *outkey)
{
	json_t *v = json_object_get(card, key);
	if (!v || json_is_null(v))
		return;
	json_t *s = as_string(v);
	if (!s) {
		warn(n, "%s: not a usable string, ignored", key);
		return;
	}
	set(n, outkey, s);
}

/* string or list of scalars -> array of strings */
static void list_field(struct norm *n, json_t *card, const char *key, const char *outkey)
{
	json_t *v = json_object_get(card, key);
	if (!v || json_is_null(v))
		return;
	json_t *arr = json_array();
	if (!arr) {
		n->oom = 1;
		return;
	}
	if (json_is_array(v)) {
		size_t i, bad = 0;
		json_t *it;
		json_array_foreach(v, i, it) {
			if (json_array_size(arr) >= CARD_MAX_LIST) {
				warn(n, "%s: more than %d items, rest ignored", key, CARD_MAX_LIST);
				break;
			}
			json_t *s = as_string(it);
			if (!s) {
				bad++;
				continue;
			}
			if (json_array_append_new(arr, s))
				n->oom = 1;
		}
		if (bad)
			warn(n, "%s: %zu item(s) not strings, ignored", key, bad);
	} else {
		json_t *s = as_string(v);
		if (!s) {
			warn(n, "%s: not a string or a list, ignored", key);
			json_decref(arr);
			return;
		}
		if (json_array_append_new(arr, s))
			n->oom = 1;
	}
	set(n, outkey, arr);
}

static const char *sub_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= CARD_MAX_STRING
		       ? json_string_value(v)
		       : NULL;
}

static void put_str(struct norm *n, json_t *o, const char *key, const char *val)
{
	if (val && json_object_set_new(o, key, json_string(val)))
		n->oom = 1;
}

static void model_index(struct norm *n, json_t *card)
{
	json_t *mi = json_object_get(card, "model-index");
	if (!mi || json_is_null(mi))
		return;
	if (!json_is_array(mi)) {
		warn(n, "model-index: not a list, ignored");
		return;
	}
	json_t *res = json_array();
	if (!res) {
		n->oom = 1;
		return;
	}
	size_t skipped = 0, i, j, k;
	json_t *model, *r, *m;
	json_array_foreach(mi, i, model) {
		if (!json_is_object(model)) {
			skipped++;
			continue;
		}
		if (i == 0 && sub_str(model, "name"))
			set(n, "model_name", json_string(sub_str(model, "name")));
		json_t *results = json_object_get(model, "results");
		if (!json_is_array(results))
			continue;
		json_array_foreach(results, j, r) {
			json_t *task = json_object_get(r, "task"), *ds = json_object_get(r, "dataset");
			json_t *metrics = json_object_get(r, "metrics"), *src = json_object_get(r, "source");
			const char *task_type = sub_str(task, "type"), *task_name = sub_str(task, "name");
			const char *ds_type = sub_str(ds, "type"), *ds_name = sub_str(ds, "name");
			if (!json_is_array(metrics) || !(task_type || task_name) || !(ds_type || ds_name)) {
				skipped++;
				continue;
			}
			json_array_foreach(metrics, k, m) {
				const char *mt = sub_str(m, "type"), *mn = sub_str(m, "name");
				json_t *val = json_object_get(m, "value");
				if (!(mt || mn) || !val || !(json_is_number(val) || json_is_string(val))) {
					skipped++;
					continue;
				}
				if (json_array_size(res) >= CARD_MAX_RESULTS) {
					skipped++;
					continue;
				}
				json_t *e = json_object();
				if (!e) {
					n->oom = 1;
					break;
				}
				put_str(n, e, "task", task_type ? task_type : task_name);
				if (task_type && task_name)
					put_str(n, e, "task_name", task_name);
				put_str(n, e, "dataset", ds_type ? ds_type : ds_name);
				if (ds_type && ds_name)
					put_str(n, e, "dataset_name", ds_name);
				json_t *cfg = json_object_get(ds, "config");
				json_t *cs = cfg ? as_string(cfg) : NULL;
				if (cs && json_object_set_new(e, "dataset_config", cs))
					n->oom = 1;
				put_str(n, e, "split", sub_str(ds, "split"));
				put_str(n, e, "metric", mt ? mt : mn);
				if (mt && mn)
					put_str(n, e, "metric_name", mn);
				json_t *v = NULL;
				if (json_is_string(val)) {
					char *end;
					const char *sv = json_string_value(val);
					errno = 0;
					double d = strtod(sv, &end);
					if (*sv && *end == '\0' && errno == 0)
						v = json_real(d);
					else
						v = as_string(val);
				} else {
					v = json_deep_copy(val);
				}
				if (!v || json_object_set_new(e, "value", v))
					n->oom = 1;
				json_t *ver = json_object_get(m, "verified");
				if (json_is_boolean(ver) && json_object_set_new(e, "verified", json_boolean(json_is_true(ver))))
					n->oom = 1;
				put_str(n, e, "source_name", sub_str(src, "name"));
				put_str(n, e, "source_url", sub_str(src, "url"));
				if (json_array_append_new(res, e))
					n->oom = 1;
			}
		}
	}
	if (skipped)
		warn(n, "model-index: %zu result(s) without task, dataset, metric or value, ignored", skipped);
	set(n, "model_index", res);
}

static void normalize(struct norm *n, json_t *card)
{
	str_field(n, card, "license", "license");
	str_field(n, card, "license_name", "license_name");
	str_field(n, card, "license_link", "license_link");
	json_t *lic = json_object_get(card, "license");
	if (json_is_array(lic)) { /* some cards list several: keep them, use the first */
		list_field(n, card, "license", "licenses");
		json_t *first = json_array_get(json_object_get(n->out, "licenses"), 0);
		if (first)
			set(n, "license", json_incref(first));
		warn(n, "license: a list; the first entry is used as the declared license");
	}
	const char *l = json_string_value(json_object_get(n->out, "license"));
	if (l) {
		char *id;
		if (spdx_normalize(l, json_string_value(json_object_get(n->out, "license_name")), &id))
			n->oom = 1;
		else {
			set(n, "license_spdx", json_string(id));
			free(id);
		}
	}
	list_field(n, card, "base_model", "base_model");
	json_t *rel = json_object_get(card, "base_model_relation");
	if (rel && !json_is_null(rel)) {
		const char *r = json_string_value(rel);
		static const char *const ok[] = { "finetune", "quantized", "merge", "adapter" };
		int found = -1;
		for (int i = 0; r && i < 4; i++)
			if (!strcasecmp(r, ok[i]))
				found = i;
		if (found >= 0)
			set(n, "base_model_relation", json_string(ok[found]));
		else
			warn(n, "base_model_relation: not one of finetune, quantized, merge, adapter; ignored");
	}
	list_field(n, card, "datasets", "datasets");
	str_field(n, card, "pipeline_tag", "pipeline_tag");
	str_field(n, card, "library_name", "library_name");
	list_field(n, card, "tags", "tags");
	list_field(n, card, "language", "language");
	model_index(n, card);
	json_t *g = json_object_get(card, "gated");
	if (g && !json_is_null(g)) {
		if (json_is_boolean(g))
			set(n, "gated", json_boolean(json_is_true(g)));
		else if (json_is_string(g) && (!strcasecmp(json_string_value(g), "auto") ||
					       !strcasecmp(json_string_value(g), "manual")))
			set(n, "gated", json_string(!strcasecmp(json_string_value(g), "auto") ? "auto" : "manual"));
		else
			warn(n, "gated: not a boolean, auto or manual; ignored");
	}
	const char *key;
	json_t *v, *eg = NULL;
	json_object_foreach(card, key, v) {
		if (strncmp(key, "extra_gated_", 12) || !key[12])
			continue;
		if (!eg && !(eg = json_object())) {
			n->oom = 1;
			return;
		}
		json_t *c = json_deep_copy(v);
		if (!c || json_object_set_new(eg, key + 12, c))
			n->oom = 1;
	}
	if (eg)
		set(n, "extra_gated", eg);
}

static int unknown(json_t **out, const char *status, const char *reason)
{
	*out = json_pack("{s:s, s:s}", "status", status, "reason", reason);
	return *out ? 0 : md_fail(MD_ENOMEM, "card: out of memory");
}

int card_parse(const char *buf, size_t len, json_t **out)
{
	if (!buf || !out)
		return md_fail(MD_EINVAL, "card_parse: NULL argument");
	*out = NULL;
	size_t s, e;
	const char *why = NULL;
	int fm = front_matter(buf, len, &s, &e, &why);
	if (fm == 0)
		return unknown(out, "none", "README has no YAML front matter");
	if (fm < 0)
		return unknown(out, "unknown", why);
	if (memchr(buf + s, '\0', e - s))
		return unknown(out, "unknown", "front matter contains NUL bytes (binary data)");
	for (size_t i = s; i < e; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c < 0x20 && c != '\n' && c != '\r' && c != '\t')
			return unknown(out, "unknown", "front matter contains control characters (binary data)");
	}
	json_t *root = NULL;
	char reason[256], dup[160];
	int rc = yaml_tree(buf + s, e - s, &root, reason, sizeof reason, dup, sizeof dup);
	if (rc == MD_ENOMEM)
		return rc;
	if (rc)
		return unknown(out, "unknown", reason);
	if (!root || json_is_null(root)) {
		json_decref(root);
		return unknown(out, "none", "front matter is empty");
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return unknown(out, "unknown", "front matter is not a YAML mapping");
	}
	struct norm n = { json_object(), json_array(), 0 };
	if (n.out && n.warnings && dup[0])
		warn(&n, "%s", dup);
	if (n.out && n.warnings)
		normalize(&n, root);
	json_decref(root);
	if (!n.out || !n.warnings || n.oom) {
		json_decref(n.out);
		json_decref(n.warnings);
		return md_fail(MD_ENOMEM, "card: out of memory");
	}
	int bad = json_object_set_new(n.out, "status", json_string("ok"));
	if (json_array_size(n.warnings))
		bad |= json_object_set_new(n.out, "warnings", n.warnings);
	else
		json_decref(n.warnings);
	if (bad) {
		json_decref(n.out);
		return md_fail(MD_ENOMEM, "card: out of memory");
	}
	*out = n.out;
	return 0;
}

int card_parse_fd(int fd, json_t **out)
{
	size_t cap = CARD_MAX_FRONT + 16; /* front matter cap + both delimiters */
	char *buf = malloc(cap);
	if (!buf)
		return md_fail(MD_ENOMEM, "card: out of memory");
	ssize_t n = util_read_full(fd, buf, cap);
	if (n < 0) {
		free(buf);
		return md_fail(MD_EIO, "README.md: read error");
	}
	int rc = card_parse(buf, (size_t)n, out);
	free(buf);
	return rc;
}

static json_t *copy_or(const json_t *card, const char *key, json_t *dflt)
{
	json_t *v = json_object_get(card, key);
	if (v) {
		json_decref(dflt);
		return json_deep_copy(v);
	}
	return dflt;
}

int card_facts(const json_t *card, const char *model_name, json_t **out)
{
	*out = NULL;
	json_t *o = json_object();
	if (!o)
		return md_fail(MD_ENOMEM, "card: out of memory");
	json_t *prov = json_null();
	const char *slash = model_name ? strchr(model_name, '/') : NULL;
	if (slash && slash > model_name) {
		json_decref(prov);
		prov = json_stringn(model_name, (size_t)(slash - model_name));
	}
	const char *st = json_string_value(json_object_get(card, "status"));
	int bad = 0;
	bad |= json_object_set_new(o, "task", copy_or(card, "pipeline_tag", json_null()));
	bad |= json_object_set_new(o, "library", copy_or(card, "library_name", json_null()));
	bad |= json_object_set_new(o, "languages", copy_or(card, "language", json_array()));
	bad |= json_object_set_new(o, "datasets", copy_or(card, "datasets", json_array()));
	bad |= json_object_set_new(o, "base_model", copy_or(card, "base_model", json_array()));
	bad |= json_object_set_new(o, "provider", prov);
	bad |= json_object_set_new(o, "license", copy_or(card, "license_spdx", json_string("NOASSERTION")));
	bad |= json_object_set_new(o, "tags", copy_or(card, "tags", json_array()));
	bad |= json_object_set_new(o, "gated", copy_or(card, "gated", json_false()));
	bad |= json_object_set_new(o, "benchmarks", copy_or(card, "model_index", json_array()));
	bad |= json_object_set_new(o, "card_status", json_string(st ? st : "none"));
	if (bad) {
		json_decref(o);
		return md_fail(MD_ENOMEM, "card: out of memory");
	}
	*out = o;
	return 0;
}
