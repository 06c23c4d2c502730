/* cli/cmd_sign.c — sign REF --key KEY [-o FILE]; verify REF --signature FILE
 * --key PUB. Keys travel to the daemon as descriptors (docs/signing.md). */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIG_FILE_MAX (64u << 20)

static int send_with_key(struct cli *c, json_t *req, const char *key, int is_private, json_t **res)
{
	int fd, rc = cli_open_key(key, is_private, &fd);
	if (rc)
		return rc;
	rc = cli_connect(c);
	if (!rc && (rc = rpc_send(c->rpc, req, &fd, 1)))
		rc = cli_fail(rc);
	close(fd);
	return rc ? rc : cli_wait_key(c, key, res);
}

/* The signature into FILE.part, flushed, then renamed over FILE: a kill or
 * a full disk leaves the old FILE as it was, never a truncated one. */
static int write_replacing(const char *path, const json_t *doc)
{
	char part[PATH_MAX];
	if (snprintf(part, sizeof part, "%s.part", path) >= (int)sizeof part)
		return md_fail(MD_EINVAL, "%s: path too long", path);
	char *text = json_dumps(doc, JSON_INDENT(2));
	if (!text)
		return md_fail(MD_ENOMEM, "%s: out of memory", path);
	unlink(part);
	int fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), rc = 0;
	if (fd < 0 || util_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
		rc = md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
	if (!rc && rename(part, path) < 0)
		rc = md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
	if (rc && fd >= 0)
		unlink(part);
	free(text);
	return rc;
}

int cmd_sign(struct cli *c)
{
	if (c->argc != 1 || !c->key)
		return cli_usage("sign takes ORG/NAME[@REV] --key PRIVATE.pem [-o FILE]");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:s}", "op", "sign", "ref", c->argv[0]), *res;
	int rc = send_with_key(c, req, c->key, 1, &res);
	json_decref(req);
	if (rc)
		return rc;
	if (c->output) {
		if ((rc = write_replacing(c->output, res))) {
			json_decref(res);
			return cli_fail(rc);
		}
		if (!c->json)
			printf("signed %s: %s\n", c->argv[0], c->output);
		else
			cli_print_json(res);
	} else {
		cli_print_json(res);
	}
	json_decref(res);
	return EXIT_OK;
}

int cmd_verify_signature(struct cli *c)
{
	if (c->argc != 1 || !c->key)
		return cli_usage("verify --signature FILE takes ORG/NAME[@REV] --key PUBLIC.pem");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_error_t e;
	json_t *bundle = json_load_file(c->signature, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(bundle)) {
		json_decref(bundle);
		return cli_fail(md_fail(MD_EINVAL, "%s: not a signature bundle: %s", c->signature, e.text));
	}
	json_t *req = json_pack("{s:s,s:s,s:o}", "op", "verify_signature", "ref", c->argv[0],
				"bundle", bundle), *res;
	int rc = send_with_key(c, req, c->key, 0, &res);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(res);
	else
		printf("signature OK: %s@%.12s, %lld files\n",
		       json_string_value(json_object_get(res, "name")),
		       json_string_value(json_object_get(res, "revision")),
		       (long long)json_integer_value(json_object_get(res, "files")));
	json_decref(res);
	return EXIT_OK;
}
