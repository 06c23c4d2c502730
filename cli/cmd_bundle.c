/*
 * cli/cmd_bundle.c — modelctl export REF... -o FILE.tar[.zst] [--sign KEY]
 * and modelctl import FILE.tar[.zst] [--verify-key PUB] (docs/airgap.md).
 * modelctl opens the files; the daemon gets descriptors, never paths.
 */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && !strcmp(s + n - k, suf);
}

int cmd_export_bundle(struct cli *c)
{
	if (c->argc < 1)
		return cli_usage("export takes at least one ORG/NAME[@REV]");
	if (!c->output)
		return cli_usage("export needs -o FILE.tar or -o FILE.tar.zst");
	json_t *refs = json_array();
	for (int i = 0; i < c->argc; i++) {
		char *n, *r;
		int rc = util_parse_modelref(c->argv[i], &n, &r);
		if (rc) {
			json_decref(refs);
			return cli_usage(md_errmsg(rc));
		}
		free(n);
		free(r);
		json_array_append_new(refs, json_string(c->argv[i]));
	}
	int zst = ends_with(c->output, ".zst") || ends_with(c->output, ".tzst") ||
		  ends_with(c->output, ".zstd");
	int fds[2] = { -1, -1 }, rc;
	if (c->sign_key && (rc = cli_open_key(c->sign_key, 1, &fds[1]))) {
		json_decref(refs);
		return rc;
	}
	if ((rc = cli_connect(c))) {
		json_decref(refs);
		if (fds[1] >= 0)
			close(fds[1]);
		return rc;
	}
	/* a regular file is written as FILE.part and renamed on success, so a
	 * failed export leaves neither a partial bundle nor a clobbered old one;
	 * a device or pipe (/dev/stdout) is written directly */
	struct stat ost;
	int direct = stat(c->output, &ost) == 0 && !S_ISREG(ost.st_mode);
	char part[4200];
	snprintf(part, sizeof part, "%s%s", c->output, direct ? "" : ".part");
	fds[0] = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fds[0] < 0) {
		rc = md_fail(MD_EIO, "%s: %s", part, strerror(errno));
		json_decref(refs);
		if (fds[1] >= 0)
			close(fds[1]);
		return cli_fail(rc);
	}
	json_t *req = json_pack("{s:s,s:s,s:o,s:s,s:i,s:b}", "op", "bundle_export", "ref",
				c->argv[0], "refs", refs, "compression", zst ? "zstd" : "none",
				"level", 1, "sign", c->sign_key != NULL);
	rc = rpc_send(c->rpc, req, fds, c->sign_key ? 2 : 1);
	json_decref(req);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	json_t *res;
	int ret = rc ? cli_fail(rc) : cli_wait_key(c, c->sign_key, &res);
	if (!ret && !direct && rename(part, c->output) < 0)
		ret = cli_fail(md_fail(MD_EIO, "%s: %s", c->output, strerror(errno)));
	if (ret) {
		if (!direct)
			unlink(part); /* no half-written bundle left behind */
		return ret;
	}
	if (c->json) {
		json_object_set_new(res, "file", json_string(c->output));
		cli_print_json(res);
	} else {
		char sz[32];
		util_human_size((uint64_t)json_integer_value(json_object_get(res, "bytes")), sz, sizeof sz);
		long long nr = (long long)json_array_size(json_object_get(res, "revisions"));
		long long nf = (long long)json_integer_value(json_object_get(res, "files"));
		printf("exported %lld revision%s, %lld file%s, %s to %s%s\n", nr, cli_plural(nr), nf,
		       cli_plural(nf), sz, c->output,
		       json_is_true(json_object_get(res, "signed")) ? " (signed)" : "");
	}
	json_decref(res);
	return EXIT_OK;
}

int cli_is_bundle(const char *file)
{
	unsigned char b[512];
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	ssize_t n = util_read_full(fd, b, sizeof b);
	close(fd);
	if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
		return 1; /* zstd */
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return 1; /* gzip */
	if (n >= 6 && !memcmp(b, "\xfd" "7zXZ", 5))
		return 1; /* xz */
	return n == 512 && !memcmp(b + 257, "ustar", 5); /* tar */
}

int cmd_import_bundle(struct cli *c, const char *file)
{
	if (c->name)
		return cli_usage("--name does not apply to bundles (they carry their names)");
	int fds[2] = { -1, -1 }, rc;
	fds[0] = open(file, O_RDONLY | O_CLOEXEC);
	if (fds[0] < 0)
		return cli_fail(md_fail(MD_EIO, "%s: %s", file, strerror(errno)));
	if (c->verify_key && (rc = cli_open_key(c->verify_key, 0, &fds[1]))) {
		close(fds[0]);
		return rc;
	}
	if ((rc = cli_connect(c))) {
		close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		return rc;
	}
	json_t *req = json_pack("{s:s,s:s,s:b,s:b}", "op", "bundle_import", "ref", "bundle",
				"verify", c->verify_key != NULL, "detach", c->detach);
	rc = rpc_send(c->rpc, req, fds, c->verify_key ? 2 : 1);
	json_decref(req);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	json_t *res;
	int ret = rc ? cli_fail(rc) : cli_wait_key(c, c->verify_key, &res);
	if (ret)
		return ret;
	if (c->json) {
		cli_print_json(res);
	} else if (!cli_print_detached(res)) {
		size_t i;
		json_t *r;
		json_array_foreach(json_object_get(res, "revisions"), i, r) {
			char sz[32];
			util_human_size((uint64_t)json_integer_value(json_object_get(r, "total_size")),
					sz, sizeof sz);
			long long nf = (long long)json_integer_value(json_object_get(r, "file_count"));
			printf("%s %s@%s: %lld file%s, %s\n",
			       json_is_true(json_object_get(r, "existed")) ? "unchanged" : "imported",
			       json_string_value(json_object_get(r, "name")),
			       json_string_value(json_object_get(r, "revision")), nf, cli_plural(nf), sz);
		}
		printf("bundle %s: every file verified; signature %s\n", file,
		       json_string_value(json_object_get(res, "signature")));
	}
	json_decref(res);
	return EXIT_OK;
}
