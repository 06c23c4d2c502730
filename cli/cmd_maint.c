/* cli/cmd_maint.c — verify, rm, gc, jobs, cancel. */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_verify(struct cli *c)
{
	if (c->signature)
		return cmd_verify_signature(c);
	if (c->argc > 1)
		return cli_usage("verify takes at most one ORG/NAME[@REV]");
	if (c->argc && cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:b}", "op", "verify", "detach", c->detach), *res;
	if (c->argc)
		json_object_set_new(req, "ref", json_string(c->argv[0]));
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	int ok = json_is_true(json_object_get(res, "ok")) || json_object_get(res, "job");
	if (c->json) {
		cli_print_json(res);
	} else if (!cli_print_detached(res)) {
		char sz[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(res, "bytes")), sz,
				sizeof sz);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(res, "errors"), i, e) {
			const char *n = json_string_value(json_object_get(e, "name"));
			if (n && *n)
				fprintf(stderr, "modelctl: %s@%.12s %s: %s\n", n,
					json_string_value(json_object_get(e, "revision")),
					json_string_value(json_object_get(e, "path")),
					json_string_value(json_object_get(e, "error")));
			else
				fprintf(stderr, "modelctl: %s\n",
					json_string_value(json_object_get(e, "error")));
		}
		long long nf = (long long)json_integer_value(json_object_get(res, "files"));
		long long nr = (long long)json_integer_value(json_object_get(res, "revisions"));
		printf("verified %lld file%s (%s) in %lld revision%s: %s\n", nf, cli_plural(nf), sz, nr,
		       cli_plural(nr), ok ? "OK" : "ERRORS");
		json_int_t orph = json_integer_value(json_object_get(res, "orphans"));
		json_int_t stale = json_integer_value(json_object_get(res, "stale_staging"));
		if (orph || stale)
			printf("garbage: %lld unreferenced blobs, %lld stale staging dirs "
			       "(run 'modelctl gc')\n", (long long)orph, (long long)stale);
	}
	json_decref(res);
	return ok ? EXIT_OK : EXIT_FAIL;
}

int cmd_rm(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("rm takes one ORG/NAME[@REV]");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:s}", "op", "rm", "ref", c->argv[0]), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
	} else {
		char sz[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(res, "bytes_freed")), sz,
				sizeof sz);
		size_t i;
		json_t *r;
		json_array_foreach(json_object_get(res, "removed"), i, r)
			printf("removed %s@%s\n", json_string_value(json_object_get(res, "name")),
			       json_string_value(r));
		printf("freed %s\n", sz);
	}
	json_decref(res);
	return EXIT_OK;
}

int cmd_gc(struct cli *c)
{
	if (c->argc)
		return cli_usage("gc takes no arguments");
	json_t *req = json_pack("{s:s,s:b}", "op", "gc", "partial", c->partial), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
	} else {
		char sz[32], ssz[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(res, "bytes_freed")), sz,
				sizeof sz);
		util_human_size((uint64_t)json_integer_value(json_object_get(res, "staging_bytes_freed")),
				ssz, sizeof ssz);
		printf("removed %lld unreferenced blobs (%s) and %lld staging dirs (%s)",
		       (long long)json_integer_value(json_object_get(res, "blobs_removed")), sz,
		       (long long)json_integer_value(json_object_get(res, "staging_removed")), ssz);
		json_int_t ng = json_integer_value(json_object_get(res, "git_caches_removed"));
		if (ng) {
			util_human_size((uint64_t)json_integer_value(json_object_get(res, "git_cache_bytes_freed")),
					ssz, sizeof ssz);
			printf(", %lld unused git caches (%s)", (long long)ng, ssz);
		}
		putchar('\n');
	}
	json_decref(res);
	return EXIT_OK;
}

int cmd_jobs(struct cli *c)
{
	if (c->argc)
		return cli_usage("jobs takes no arguments");
	json_t *req = json_pack("{s:s}", "op", "jobs"), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
	} else {
		printf("%-6s %-8s %-36s %-11s %-9s %s\n", "ID", "OP", "TARGET", "STATE", "PROGRESS",
		       "STARTED");
		size_t i;
		json_t *j;
		json_array_foreach(res, i, j) {
			char when[32], prog[16] = "-";
			json_int_t done = json_integer_value(json_object_get(j, "done"));
			json_int_t total = json_integer_value(json_object_get(j, "total"));
			if (total > 0)
				snprintf(prog, sizeof prog, "%d%%", (int)(100 * done / total));
			cli_short_time(json_string_value(json_object_get(j, "started")), when,
				       sizeof when);
			printf("%-6lld %-8s %-36s %-11s %-9s %s\n",
			       (long long)json_integer_value(json_object_get(j, "id")),
			       json_string_value(json_object_get(j, "op")),
			       json_string_value(json_object_get(j, "target")),
			       json_string_value(json_object_get(j, "state")), prog, when);
		}
	}
	json_decref(res);
	return EXIT_OK;
}

int cmd_cancel(struct cli *c)
{
	char *end;
	if (c->argc != 1)
		return cli_usage("cancel takes one job id");
	errno = 0;
	long long id = strtoll(c->argv[0], &end, 10);
	if (end == c->argv[0] || *end || id <= 0 || errno == ERANGE || c->argv[0][0] < '0' ||
	    c->argv[0][0] > '9') {
		char msg[300];
		snprintf(msg, sizeof msg, "cancel: job id '%.200s': want a positive whole number "
			 "(see modelctl jobs)", c->argv[0]);
		return cli_usage(msg);
	}
	json_t *req = json_pack("{s:s,s:I}", "op", "cancel", "id", (json_int_t)id), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(res);
	else
		printf("job %lld canceled\n", id);
	json_decref(res);
	return EXIT_OK;
}
