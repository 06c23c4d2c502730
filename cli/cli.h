/*
 * cli/cli.h — modelctl's shared state and helpers. modelctl links only
 * libmodeld (client/ + common/); see modelctl(1).
 */
#ifndef MD_CLI_H
#define MD_CLI_H

#include <jansson.h>

#include "client/rpc.h"

/* Exit codes (DESIGN 7). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cli {
	const char *socket;       /* --socket, or NULL for the default */
	int json;                 /* --json: exactly one JSON document on stdout */
	int quiet;                /* -q: no progress */
	int einval_is_usage;      /* the daemon's MD_EINVAL means a bad argument: exit 2 */
	int detach;               /* --detach: return a job id at once */
	int partial;              /* --partial (gc): drop interrupted pulls too */
	const char *name;         /* --name (import) */
	const char *policy;       /* --policy FILE (audit) */
	const char *format;       /* --format (audit, export) */
	const char *output;       /* -o, --output: FILE (bundle) or DIR (--format) */
	const char *hub;          /* --hub URL (pull) */
	const char *token_file;   /* --token-file (pull) */
	const char *source;       /* --source git|hub (pull) */
	const char *limit_rate;   /* --limit-rate (pull) */
	const char *include[64];  /* --include GLOB (pull), repeatable */
	int ninclude;
	const char *exclude[64];  /* --exclude GLOB (pull), repeatable */
	int nexclude;
	const char *sign_key;     /* --sign KEY (export) */
	const char *verify_key;   /* --verify-key KEY (import of a bundle) */
	const char *key;          /* --key FILE (sign, verify --signature) */
	const char *signature;    /* --signature FILE (verify) */
	/* catalog filters (list, search; cmd_catalog.c) */
	const char *task, *provider, *license, *library, *size, *sort;
	const char *min_params, *max_params, *fits, *limit; /* and hub (pull, search) */
	int argc;                 /* operands after the command word */
	char **argv;
	struct rpc *rpc;
};

/* Connect (once). On failure prints the reason and returns EXIT_FAIL. */
int cli_connect(struct cli *c);
/* Print "modelctl: <detail>" for rc and return EXIT_FAIL. */
int cli_fail(int rc);
/* Print the one line "modelctl: <msg>" (msg NULL: no command given, the
 * whole usage summary) on stderr; return EXIT_USAGE. */
int cli_usage(const char *msg);
/* A model reference operand (ORG/NAME[@REV]) checked before it is sent: a
 * malformed one is a bad argument value, so a usage error (exit 2) naming it;
 * returns 0 when well-formed, else cli_usage's EXIT_USAGE. */
int cli_check_ref(const char *ref);
/* With --json (on != 0), cli_fail and cli_usage also print
 * {"error": {"code": MD_E* (negative, as in the protocol; usage: MD_EINVAL),
 * "message": "<the stderr line>"}} on stdout, unless a document is already
 * there: every command then prints exactly one JSON document. */
void cli_json_errors(int on);
/* That document for code and msg (nothing without --json). */
void cli_error_doc(int code, const char *msg);
/* Send req (borrowed) with a progress bar on a TTY, wait for the result.
 * Returns 0 and *res, or prints the error and returns EXIT_FAIL. */
int cli_call(struct cli *c, json_t *req, json_t **res, int **fds, size_t *nfds);
/* Wait for the reply to a request already sent (progress bar on a TTY). */
int cli_wait(struct cli *c, json_t **res);
/* Open a key file to send to the daemon (sign, verify --signature, export
 * --sign, import --verify-key). It must be a regular file; a private key
 * (is_private) must not be accessible to group or others, as ssh requires
 * (`chmod 600 KEY`). On failure prints "modelctl: KEY: why" and returns
 * EXIT_FAIL (*fd -1). */
int cli_open_key(const char *path, int is_private, int *fd);
/* cli_wait for a request that carried the key file `key`: the daemon's
 * "key: ..." errors are reported as "KEY: ...", naming the file. */
int cli_wait_key(struct cli *c, const char *key, json_t **res);
/* cli_call for a result that is only printed as JSON: the daemon's text,
 * unparsed (malloc'd; rpc_wait_text). */
int cli_call_text(struct cli *c, json_t *req, char **text);
/* Print one JSON document to stdout. */
void cli_print_json(json_t *j);
/* "" for 1, "s" otherwise: "%lld file%s". */
const char *cli_plural(long long n);
/* Untrusted text (a card's license, a hub's tag, a base model's name) made fit
 * for the terminal: util_printable (control characters and DEL shown as '?',
 * cut with "..." past 255 bytes); NULL gives "-". The result lives in one of 8
 * static buffers, reused on the 9th call: a printf may take up to 8. cli_safe()
 * is the same into the caller's buf of n bytes (n >= 4). */
const char *cli_text(const char *s);
const char *cli_safe(const char *s, char *buf, size_t n);
/* A detached job's reply ({"job": ID, "detached": true}) in text mode:
 * prints "job ID" and returns 1; 0 (nothing printed) for any other reply. */
int cli_print_detached(const json_t *res);
/* "2026-11-23 08:01" from an ISO time stamp. */
void cli_short_time(const char *iso, char *out, size_t n);
/* Table cells: the terminal columns UTF-8 text s takes (wcwidth under
 * C.UTF-8; a byte that is not UTF-8, or a character with no width, counts
 * 1), and s printed left-aligned in width columns, cut to at most cut
 * columns (0: never cut) on a character boundary with a trailing "~". */
int cli_width(const char *s);
void cli_cell(const char *s, int width, int cut);

/* Commands: each returns an exit code. */
int cmd_import(struct cli *c);
int cmd_list(struct cli *c);
int cmd_show(struct cli *c);
int cmd_cat(struct cli *c);
int cmd_verify(struct cli *c);
int cmd_rm(struct cli *c);
int cmd_gc(struct cli *c);
int cmd_jobs(struct cli *c);
int cmd_cancel(struct cli *c);
int cmd_status(struct cli *c);
int cmd_license(struct cli *c);
int cmd_audit(struct cli *c);
int cmd_tensors(struct cli *c);
int cmd_pull(struct cli *c);
int cmd_sign(struct cli *c);
int cmd_verify_signature(struct cli *c);
int cmd_export(struct cli *c);
int cmd_export_weights(struct cli *c);
int cmd_export_bundle(struct cli *c);               /* cli/cmd_bundle.c */
int cmd_import_bundle(struct cli *c, const char *file);
int cli_is_bundle(const char *file);   /* a tar, tar.zst/gz/xz by its first bytes */
/* cmd_catalog.c: filtered list, search, compare, and show's catalog part */
int cmd_search(struct cli *c);
int cmd_compare(struct cli *c);
int cli_has_filters(const struct cli *c);
int cmd_find(struct cli *c);
void cli_show_facts(json_t *manifest);

#endif
