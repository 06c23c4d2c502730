/* cli/cmd_import.c — modelctl import DIR [--name ORG/NAME] [--detach]. */
#include "cli/cli.h"
#include "cli/walk.h"
#include "common/err.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 128   /* files (descriptors) per frame, under PROTO_MAX_FDS */

/* "local/<folder name>" with characters a model name cannot hold replaced
 * and runs of dots made one. */
static void default_name(const char *root, char *out, size_t n)
{
	const char *base = strrchr(root, '/');
	base = base ? base + 1 : root;
	char clean[97];
	size_t k = 0;
	for (const char *p = base; *p && k < sizeof clean - 1; p++) {
		char ch = *p;
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		if (ch == '.' && k && clean[k - 1] == '.')
			continue; /* "a..b" would not be a name: "a.b" */
		clean[k++] = ok ? ch : '-';
	}
	clean[k] = 0;
	while (clean[0] == '.' || clean[0] == '-')
		memmove(clean, clean + 1, strlen(clean));
	snprintf(out, n, "local/%s", clean[0] ? clean : "model");
}

static void print_summary(json_t *r)
{
	char sz[32];
	util_human_size((uint64_t)json_integer_value(json_object_get(r, "total_size")), sz, sizeof sz);
	long long nf = (long long)json_integer_value(json_object_get(r, "file_count"));
	printf("%s %s@%s: %lld file%s, %s\n",
	       json_is_true(json_object_get(r, "existed")) ? "unchanged" : "imported",
	       json_string_value(json_object_get(r, "name")),
	       json_string_value(json_object_get(r, "revision")), nf, cli_plural(nf), sz);
}

int cmd_import(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("import takes one folder or bundle file");
	struct walk w;
	struct stat ast;
	int rc;
	if (stat(c->argv[0], &ast) == 0 && S_ISREG(ast.st_mode)) {
		if (cli_is_bundle(c->argv[0]))
			return cmd_import_bundle(c, c->argv[0]);   /* cli/cmd_bundle.c */
		/* a file is never a model folder: say what it is not */
		const char *b = strrchr(c->argv[0], '/') ? strrchr(c->argv[0], '/') + 1 : c->argv[0];
		int tarname = strstr(b, ".tar") || strstr(b, ".tgz") || strstr(b, ".tzst");
		return cli_fail(md_fail(MD_EINVAL, "%s: not a %s (%s)", c->argv[0],
					tarname ? "tar archive" : "directory or a bundle",
					ast.st_size ? "no tar, zstd, gzip or xz header" : "empty file"));
	}
	if (c->verify_key)
		return cli_usage("--verify-key applies to bundle files");
	if (c->name && (rc = util_check_model_name(c->name)))
		return cli_usage(md_errmsg(rc));
	char name[128], hfname[128], hfrev[41] = "";
	int hf = walk_is_hf_cache(c->argv[0]);
	if ((rc = hf ? walk_hf_cache(c->argv[0], &w, hfname, sizeof hfname, hfrev)
		     : walk_folder(c->argv[0], &w)))
		return cli_fail(rc);
	if (c->name) {
		snprintf(name, sizeof name, "%s", c->name);
	} else if (hf) {
		snprintf(name, sizeof name, "%s", hfname);
	} else {
		default_name(w.root, name, sizeof name);
	}
	if ((rc = cli_connect(c))) {
		walk_free(&w);
		return rc;
	}
	int ret = EXIT_OK;
	for (size_t at = 0; at < w.n && ret == EXIT_OK; at += CHUNK) {
		size_t k = w.n - at < CHUNK ? w.n - at : CHUNK;
		int fds[CHUNK];
		size_t opened = 0;
		json_t *files = json_array();
		for (size_t i = 0; i < k; i++) {
			char p[8192];
			snprintf(p, sizeof p, "%s/%s", w.root, w.rel[at + i]);
			int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
			struct stat st;
			if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
				rc = md_fail(MD_EIO, "%s: %s", w.rel[at + i],
					     fd < 0 ? strerror(errno) : "not a regular file");
				if (fd >= 0)
					close(fd);
				ret = cli_fail(rc);
				break;
			}
			fds[opened++] = fd;
			json_array_append_new(files, json_pack("{s:s}", "path", w.rel[at + i]));
		}
		if (ret == EXIT_OK) {
			json_t *req = json_pack("{s:s,s:s,s:o,s:b,s:b}", "op", "import", "name", name,
						"files", files, "more", at + k < w.n, "detach",
						c->detach);
			files = NULL;
			if (hf) {
				json_object_set_new(req, "source", json_pack("{s:s,s:s,s:s,s:s}", "type",
						"hf-cache", "path", w.allow, "repo", hfname, "commit", hfrev));
				json_object_set_new(req, "revision", json_string(hfrev));
			} else {
				json_object_set_new(req, "source", json_pack("{s:s,s:s}", "type",
						"local", "path", w.root));
			}
			if ((rc = rpc_send(c->rpc, req, fds, opened))) {
				/* the daemon refused an earlier frame and hung up:
				 * its reply, still in the socket, says why */
				json_t *res = NULL;
				ret = cli_wait(c, &res);
				json_decref(res);
				if (ret == EXIT_OK)
					ret = cli_fail(rc);
			}
			json_decref(req);
		}
		json_decref(files);
		for (size_t i = 0; i < opened; i++)
			close(fds[i]);
	}
	walk_free(&w);
	if (ret != EXIT_OK)
		return ret;
	json_t *res;
	/* the request is sent; wait for its reply with a progress bar */
	if ((ret = cli_wait(c, &res)))
		return ret;
	if (c->json)
		cli_print_json(res);
	else if (!cli_print_detached(res))
		print_summary(res);
	json_decref(res);
	return EXIT_OK;
}
