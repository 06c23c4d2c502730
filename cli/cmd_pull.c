/* cli/cmd_pull.c — modelctl pull ORG/NAME[@REV] | git+URL[@REF] [--source git] [--hub URL] [--token-file F]
 * [--include GLOB]... [--exclude GLOB]... [--limit-rate R] [--name N] [--detach] */
#include "cli/cli.h"
#include "common/err.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 4096

/* --token-file's token (util_read_token_file); NULL with md_fail detail. */
static char *read_token(const char *path)
{
	char what[4200], *tok;
	snprintf(what, sizeof what, "--token-file %s", path);
	return util_read_token_file(path, what, TOKEN_MAX, &tok) ? NULL : tok;
}

int cmd_pull(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("pull takes one ORG/NAME[@REV]");
	/* git+URL[@REF] (or a URL with --source git) goes to daemon/pull_git.c */
	int git = !strncmp(c->argv[0], "git+", 4);
	if (c->source && strcmp(c->source, "git") && strcmp(c->source, "hub"))
		return cli_usage("--source: want git or hub");
	if (c->source && !strcmp(c->source, "git"))
		git = 1;
	int rc;
	if (!git) {
		char *name, *rev;
		if ((rc = util_parse_modelref(c->argv[0], &name, &rev)))
			return cli_usage(md_errmsg(rc));
		free(name);
		free(rev);
	}
	if (c->name && (rc = util_check_model_name(c->name)))
		return cli_usage(md_errmsg(rc));
	uint64_t rate = 0;
	if (c->limit_rate && (rc = units_parse_rate(c->limit_rate, "--limit-rate", &rate)))
		return cli_usage(md_errmsg(rc));
	const char *hub = c->hub ? c->hub : getenv("HF_ENDPOINT");
	const char *why = !c->hub && hub && *hub && !git ? util_hub_url_problem(hub) : NULL;
	if (why) {   /* (--hub was checked with the other options) */
		char msg[300];
		snprintf(msg, sizeof msg, "$HF_ENDPOINT '%.200s': %s", hub, why);
		return cli_usage(msg);
	}
	json_t *req = json_pack("{s:s,s:s,s:b}", "op", "pull", "ref", c->argv[0], "detach", c->detach);
	if (hub && *hub && !git)
		json_object_set_new(req, "hub", json_string(hub));
	if (git)
		json_object_set_new(req, "source", json_string("git"));
	if (c->name)
		json_object_set_new(req, "name", json_string(c->name));
	if (c->limit_rate)   /* 0: no cap, whatever the config says */
		json_object_set_new(req, "limit_rate", json_integer((json_int_t)rate));
	json_t *inc = json_array(), *exc = json_array();
	for (int i = 0; i < c->ninclude; i++)
		json_array_append_new(inc, json_string(c->include[i]));
	for (int i = 0; i < c->nexclude; i++)
		json_array_append_new(exc, json_string(c->exclude[i]));
	json_object_set_new(req, "include", inc);
	json_object_set_new(req, "exclude", exc);
	/* the token goes to the daemon over the local socket, never elsewhere */
	char *token = NULL;
	if (c->token_file) {
		if (!(token = read_token(c->token_file))) {
			json_decref(req);
			return cli_fail(MD_EIO);
		}
	} else if (getenv("HF_TOKEN") && *getenv("HF_TOKEN")) {
		const char *env = getenv("HF_TOKEN");
		if (util_check_text(env, strlen(env), "HF_TOKEN")) {
			json_decref(req);
			return cli_fail(MD_EINVAL);
		}
		token = strdup(env);
	}
	if (token && json_object_set_new(req, "token", json_string(token))) {
		memset(token, 0, strlen(token));
		free(token);
		json_decref(req);
		return cli_fail(md_fail(MD_ENOMEM, "could not add the token to the request"));
	}
	json_t *res;
	rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
	} else if (!cli_print_detached(res)) {
		char sz[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(res, "total_size")), sz, sizeof sz);
		long long nf = (long long)json_integer_value(json_object_get(res, "file_count"));
		printf("%s %s@%s: %lld file%s, %s\n",
		       json_is_true(json_object_get(res, "existed")) ? "up to date" : "pulled",
		       json_string_value(json_object_get(res, "name")),
		       json_string_value(json_object_get(res, "revision")), nf, cli_plural(nf), sz);
	}
	json_decref(res);
	return EXIT_OK;
}
