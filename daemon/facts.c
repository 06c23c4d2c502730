/* daemon/facts.c — see facts.h. */
#include "daemon/facts.h"
#include "meta/config_facts.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int config_part(struct ingest *ing, json_t *facts, int *tie)
{
	char *buf = NULL;
	ssize_t n = -1;
	int fd = ingest_open(ing, "config.json");
	if (fd >= 0) {
		buf = malloc(CONFIG_FACTS_MAX_JSON + 1);
		n = buf ? util_read_full(fd, buf, CONFIG_FACTS_MAX_JSON + 1) : -1;
		close(fd);
	}
	json_t *cf;
	/* an over-long or unreadable config gives nulls, like a missing one */
	int rc = config_facts_parse(n > 0 && (size_t)n <= CONFIG_FACTS_MAX_JSON ? buf : NULL,
				    n > 0 ? (size_t)n : 0, &cf);
	free(buf);
	if (rc)
		return rc;
	*tie = json_is_true(json_object_get(cf, "tie_word_embeddings"));
	json_object_del(cf, "tie_word_embeddings");
	rc = json_object_update(facts, cf) ? MD_ENOMEM : 0;
	json_decref(cf);
	return rc;
}

/* The README body after the front matter, first FACTS_MAX_CARD_TEXT bytes,
 * as valid UTF-8 (other bytes dropped). */
static void card_text(struct ingest *ing, json_t *card)
{
	if (!json_is_object(card))
		return;
	int fd = ingest_open(ing, "README.md");
	if (fd < 0)
		return;
	char *buf = malloc(FACTS_MAX_README);
	ssize_t n = buf ? util_read_full(fd, buf, FACTS_MAX_README) : -1;
	close(fd);
	if (n <= 0) {
		free(buf);
		return;
	}
	size_t s = 0, len = (size_t)n;
	if (len >= 4 && !memcmp(buf, "---", 3)) { /* skip the front matter */
		char *e = NULL;
		for (size_t i = 3; i + 4 <= len; i++)
			if (buf[i] == '\n' && !memcmp(buf + i + 1, "---", 3)) {
				e = buf + i + 4;
				break;
			}
		s = e ? (size_t)(e - buf) : len;
	}
	size_t tl = len - s > FACTS_MAX_CARD_TEXT ? FACTS_MAX_CARD_TEXT : len - s;
	json_t *t = json_stringn(buf + s, tl);
	for (size_t cut = 1; !t && cut <= 3 && cut < tl; cut++) /* a UTF-8 sequence cut at the end */
		t = json_stringn(buf + s, tl - cut);
	if (!t) { /* not UTF-8: keep the ASCII */
		size_t o = 0;
		for (size_t i = 0; i < tl; i++)
			if ((unsigned char)buf[s + i] < 0x80 && buf[s + i])
				buf[o++] = buf[s + i];
		t = json_stringn(buf, o);
	}
	if (t)
		json_object_set_new(card, "text", t);
	free(buf);
}

/* facts' converter counts without a tied lm_head.weight (wfacts' tied_head). */
static int untie(json_t *facts, const json_t *th)
{
	json_int_t p = json_integer_value(json_object_get(facts, "parameters")) -
		       json_integer_value(json_object_get(th, "parameters"));
	const char *dt = json_string_value(json_object_get(th, "dtype"));
	json_t *db = json_deep_copy(json_object_get(facts, "dtype_bytes"));
	if (!db || !dt)
		return db ? (json_decref(db), 0) : MD_ENOMEM;
	json_int_t b = json_integer_value(json_object_get(db, dt)) -
		       json_integer_value(json_object_get(th, "bytes"));
	int bad = b > 0 ? json_object_set_new(db, dt, json_integer(b)) : json_object_del(db, dt);
	bad |= json_object_set_new(facts, "dtype_bytes", db);
	bad |= json_object_set_new(facts, "parameters", json_integer(p > 0 ? p : 0));
	return bad ? MD_ENOMEM : 0;
}

int facts_add(struct ingest *ing, json_t *facts, json_t *card, const json_t *weights)
{
	int tie = 0, rc = config_part(ing, facts, &tie);
	if (rc)
		return rc;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(weights, "gguf"), k, v) {
		if (json_is_null(json_object_get(facts, k)) &&
		    json_object_set(facts, k, v))
			return MD_ENOMEM;
	}
	json_t *pp = json_object_get(weights, "parameters");
	if (json_is_integer(pp)) { /* the converters' exact count wins */
		json_object_set(facts, "parameters", pp);
		json_t *db = json_object_get(weights, "dtype_bytes");
		json_object_set(facts, "dtype_bytes", json_is_object(db) ? db : json_null());
		json_object_set_new(facts, "parameters_source", json_string("converter"));
		json_t *alts = json_object_get(weights, "alternates");
		if (alts && json_object_set(facts, "parameters_alternates", alts))
			return MD_ENOMEM;
		const json_t *th = json_object_get(weights, "tied_head");
		if (tie && th && (rc = untie(facts, th)))
			return rc;
	} else { /* no weight file */
		json_object_set_new(facts, "parameters", json_null());
		json_object_set_new(facts, "dtype_bytes", json_null());
	}
	card_text(ing, card);
	return 0;
}
