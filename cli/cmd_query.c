/* cli/cmd_query.c — list, show, cat, status. */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

static const char *license_of(json_t *m)
{
	json_t *l = json_object_get(m, "license");
	const char *s = json_string_value(json_object_get(l, "spdx"));
	if (!s)
		s = json_string_value(json_object_get(l, "declared"));
	if (!s)
		s = json_string_value(l);
	return s ? s : "-";
}

int cmd_list(struct cli *c)
{
	if (cli_has_filters(c) || c->sort)
		return cmd_find(c); /* indexed; the plain list stays on the raw path */
	if (c->argc > 1)
		return cli_usage("list takes at most one model name");
	int nrc;
	if (c->argc == 1 && (nrc = util_check_model_name(c->argv[0])))
		return cli_usage(md_errmsg(nrc));
	json_t *req = json_pack("{s:s}", "op", "list"), *res;
	if (c->argc == 1)
		json_object_set_new(req, "name", json_string(c->argv[0]));
	if (c->json) {
		/* 10,000 models are 6 MB of JSON: print the daemon's text as it
		 * came (compact), without parsing and dumping it again */
		char *text;
		int rc = cli_call_text(c, req, &text);
		json_decref(req);
		if (rc)
			return rc;
		size_t n = strlen(text);
		int bad = fwrite(text, 1, n, stdout) != n || fputc('\n', stdout) == EOF;
		free(text);
		return bad ? cli_fail(md_fail(MD_EIO, "stdout: %s", strerror(errno))) : EXIT_OK;
	}
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	/* the name and license columns as wide as their longest cell (names
	 * are never cut), so a long name does not shift the columns after it */
	int nw = 40, lw = 14;
	size_t i;
	json_t *m;
	json_array_foreach(res, i, m) {
		int w = cli_width(json_string_value(json_object_get(m, "name")));
		int l = cli_width(license_of(m));
		nw = w > nw ? w : nw;
		lw = l > lw ? (l > 40 ? 40 : l) : lw;
	}
	printf("%-*s %-12s %5s %10s %-*s %s\n", nw, "NAME", "REVISION", "FILES", "SIZE", lw,
	       "LICENSE", "IMPORTED");
	json_array_foreach(res, i, m) {
		char sz[32], when[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(m, "total_size")), sz,
				sizeof sz);
		cli_short_time(json_string_value(json_object_get(m, "imported_at")), when,
			       sizeof when);
		cli_cell(json_string_value(json_object_get(m, "name")), nw, 0);
		printf(" %-12.12s %5lld %10s ", json_string_value(json_object_get(m, "revision")),
		       (long long)json_integer_value(json_object_get(m, "file_count")), sz);
		cli_cell(license_of(m), lw, 40);
		printf(" %s\n", when);
	}
	json_decref(res);
	return EXIT_OK;
}

int cmd_show(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("show takes one ORG/NAME[@REV]");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:s}", "op", "show", "ref", c->argv[0]), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
		json_decref(res);
		return EXIT_OK;
	}
	char sz[32], when[32];
	util_human_size((uint64_t)json_integer_value(json_object_get(res, "total_size")), sz,
			sizeof sz);
	cli_short_time(json_string_value(json_object_get(res, "imported_at")), when, sizeof when);
	printf("name:      %s\n", json_string_value(json_object_get(res, "name")));
	printf("revision:  %s\n", json_string_value(json_object_get(res, "revision")));
	printf("refs:      ");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(res, "refs"), i, x)
		printf("%s%s", i ? ", " : "", json_string_value(x));
	printf("%s\n", json_array_size(json_object_get(res, "refs")) ? "" : "-");
	printf("imported:  %s\n", when);
	json_t *src = json_object_get(res, "source");
	const char *st = json_string_value(json_object_get(src, "type"));
	const char *where = json_string_value(json_object_get(src, "path"));
	if (!where)
		where = json_string_value(json_object_get(src, "url"));
	printf("source:    %s%s%s\n", st ? st : "-", where ? " " : "", where ? where : "");
	/* a pull (hub or git) records whether its filters left files of the commit out */
	json_t *prov = json_object_get(res, "provenance");
	if (json_is_boolean(json_object_get(prov, "partial"))) {
		int partial = json_is_true(json_object_get(prov, "partial"));
		printf("pulled:    %s", partial ? "partial, some files of the commit left out"
					    : "every file of the commit");
		const char *opt[2] = { "include", "exclude" };
		for (int k = 0; k < 2 && partial; k++)
			json_array_foreach(json_object_get(prov, opt[k]), i, x)
				printf(" --%s '%s'", opt[k], json_string_value(x));
		printf("\n");
	}
	printf("license:   %s\n", license_of(res));
	printf("size:      %s in %lld files\n", sz,
	       (long long)json_integer_value(json_object_get(res, "file_count")));
	cli_show_facts(res);
	printf("files:\n");
	json_array_foreach(json_object_get(res, "files"), i, x) {
		char fsz[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(x, "size")), fsz,
				sizeof fsz);
		printf("  %-48s %10s  sha256:%.16s\n", json_string_value(json_object_get(x, "path")),
		       fsz, json_string_value(json_object_get(x, "sha256")));
	}
	json_decref(res);
	return EXIT_OK;
}

/* Copy len bytes at off of fd to stdout, with sendfile when it can. */
static int copy_out(int fd, off_t off, uint64_t len)
{
	while (len > 0) {
		size_t want = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = sendfile(1, fd, &off, want);
		if (n < 0 && (errno == EINVAL || errno == ENOSYS))
			break; /* stdout cannot take sendfile: fall back to read/write */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return md_fail(MD_EIO, "stdout: %s", n < 0 ? strerror(errno) : "short write");
		len -= (uint64_t)n;
	}
	char buf[1 << 16];
	while (len > 0) {
		ssize_t n = pread(fd, buf, len < sizeof buf ? (size_t)len : sizeof buf, off);
		if (n <= 0)
			return md_fail(MD_EIO, "store read: %s", n < 0 ? strerror(errno) : "short");
		if (util_write_all(1, buf, (size_t)n))
			return md_fail(MD_EIO, "stdout: %s", strerror(errno));
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

int cmd_cat(struct cli *c)
{
	if (c->argc != 2)
		return cli_usage("cat takes ORG/NAME[@REV] PATH");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	if (c->json) /* its output is the file's bytes, not a document */
		return cli_usage("cat writes the file's bytes and takes no --json "
				 "(show --json gives each file's size and sha256)");
	json_t *req = json_pack("{s:s,s:s,s:s}", "op", "cat", "ref", c->argv[0], "path", c->argv[1]);
	json_t *res;
	int *fds = NULL;
	size_t nfds = 0;
	int rc = cli_call(c, req, &res, &fds, &nfds);
	json_decref(req);
	if (rc)
		return rc;
	size_t i;
	json_t *seg;
	json_array_foreach(json_object_get(res, "segments"), i, seg) {
		json_int_t k = json_integer_value(json_object_get(seg, "fd"));
		json_int_t off = json_integer_value(json_object_get(seg, "offset"));
		json_int_t len = json_integer_value(json_object_get(seg, "length"));
		if (k < 0 || (size_t)k >= nfds || off < 0 || len < 0) {
			rc = md_fail(MD_EPROTO, "malformed cat reply");
		} else {
			rc = copy_out(fds[k], (off_t)off, (uint64_t)len);
		}
		if (rc)
			break;
	}
	for (size_t j = 0; j < nfds; j++)
		close(fds[j]);
	free(fds);
	json_decref(res);
	return rc ? cli_fail(rc) : EXIT_OK;
}

int cmd_status(struct cli *c)
{
	if (c->argc)
		return cli_usage("status takes no arguments");
	json_t *req = json_pack("{s:s}", "op", "ping"), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	json_t *cat = json_object_get(res, "catalog");
	char used[32], max[32];
	util_human_size((uint64_t)json_integer_value(json_object_get(cat, "used")), used, sizeof used);
	util_human_size((uint64_t)json_integer_value(json_object_get(cat, "max")), max, sizeof max);
	if (c->json)
		cli_print_json(res);
	else
		printf("modeld %s (protocol %lld), pid %lld, store %s, up %.0fs, catalog %s of %s%s\n",
		       json_string_value(json_object_get(res, "version")),
		       (long long)json_integer_value(json_object_get(res, "protocol")),
		       (long long)json_integer_value(json_object_get(res, "pid")),
		       json_string_value(json_object_get(res, "store")),
		       json_real_value(json_object_get(res, "uptime")), used, max,
		       json_is_true(json_object_get(res, "can_write")) ? "" : " (read-only for you)");
	json_decref(res);
	return EXIT_OK;
}
