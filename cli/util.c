/* cli/util.c — connection, errors, progress bar, JSON output. */
#include "cli/cli.h"
#include "common/err.h"
#include "common/progress.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

static int json_errors; /* --json: errors are also a document on stdout */
static int printed;     /* a document is already on stdout */

void cli_json_errors(int on)
{
	json_errors = on;
}

void cli_error_doc(int code, const char *msg)
{
	if (!json_errors || printed)
		return;
	json_t *e = json_pack("{s:{s:i,s:s}}", "error", "code", code, "message", msg ? msg : "");
	if (e)
		cli_print_json(e);
	json_decref(e);
}

int cli_fail(int rc)
{
	const char *msg = md_errmsg(rc);
	fprintf(stderr, "modelctl: %s\n", msg);
	cli_error_doc(rc, msg);
	return EXIT_FAIL;
}

int cli_check_ref(const char *ref)
{
	char *name, *rev;
	int rc = util_parse_modelref(ref, &name, &rev);
	if (rc)
		return cli_usage(md_errmsg(rc));
	free(name);
	free(rev);
	return 0;
}

int cli_connect(struct cli *c)
{
	if (c->rpc)
		return 0;
	int rc = rpc_connect(c->socket, &c->rpc);
	return rc ? cli_fail(rc) : 0;
}

struct bar {
	double last;
	int shown;
	struct progress p;
};

static void progress(json_t *p, void *arg)
{
	struct bar *b = arg;
	double now = util_mono();
	if (now - b->last < 0.1)
		return;
	b->last = now;
	char line[256];
	progress_line(&b->p, now, (uint64_t)json_integer_value(json_object_get(p, "done")),
		      (uint64_t)json_integer_value(json_object_get(p, "total")),
		      json_string_value(json_object_get(p, "op")), line, sizeof line);
	fprintf(stderr, "\r%s   ", line);
	b->shown = 1;
}

static int wait_reply_key(struct cli *c, json_t **res, int **fds, size_t *nfds, const char *key)
{
	struct bar b = { 0 };
	int tty = !c->quiet && isatty(2);
	int rc = rpc_wait(c->rpc, tty ? progress : NULL, &b, res, fds, nfds);
	if (b.shown)
		fprintf(stderr, "\r\033[K");
	const char *m = rc && key ? md_errmsg(rc) : NULL, *k = m ? strstr(m, "key: ") : NULL;
	if (k && (k == m || (k - m >= 2 && k[-2] == ':' && k[-1] == ' '))) /* "[op: ]key: why" */
		md_fail(rc, "%.*s%s: %s", (int)(k - m), m, key, k + 5);
	if (rc == MD_EINVAL && c->einval_is_usage)
		return cli_usage(md_errmsg(rc)); /* an argument the daemon checks */
	return rc ? cli_fail(rc) : 0;
}

static int wait_reply(struct cli *c, json_t **res, int **fds, size_t *nfds)
{
	return wait_reply_key(c, res, fds, nfds, NULL);
}

int cli_wait_key(struct cli *c, const char *key, json_t **res)
{
	return wait_reply_key(c, res, NULL, NULL, key);
}

/* Whether a PEM file holds a private key (its first 4 KiB name one): only
 * then are loose permissions a secret's exposure; anything else is left to
 * the daemon's "not a PEM private key". */
static int holds_private_key(int fd)
{
	char buf[4097];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	return memmem(buf, (size_t)n, "PRIVATE KEY-----", 16) != NULL;
}

int cli_open_key(const char *path, int is_private, int *fd)
{
	struct stat st;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return cli_fail(md_fail(MD_EIO, "%s: %s", path, strerror(errno)));
	int rc = 0;
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode))
		rc = md_fail(MD_EINVAL, "%s: not a file", path);
	else if (is_private && (st.st_mode & 077) && holds_private_key(*fd))
		rc = md_fail(MD_EPERM, "%s: private key is accessible by group or others (mode %04o): chmod 600 it",
			     path, (unsigned)(st.st_mode & 07777));
	else if (!is_private && holds_private_key(*fd))
		/* a verifier needs only the public half; do not spread the other */
		rc = md_fail(MD_EINVAL, "%s: a private key; verify with the public key "
					"(openssl pkey -in %s -pubout)", path, path);
	if (rc) {
		close(*fd);
		*fd = -1;
		return cli_fail(rc);
	}
	return 0;
}

int cli_call_text(struct cli *c, json_t *req, char **text)
{
	int rc = cli_connect(c);
	if (rc)
		return rc;
	if ((rc = rpc_send(c->rpc, req, NULL, 0)))
		return cli_fail(rc);
	struct bar b = { 0 };
	int tty = !c->quiet && isatty(2);
	rc = rpc_wait_text(c->rpc, tty ? progress : NULL, &b, text);
	if (b.shown)
		fprintf(stderr, "\r\033[K");
	return rc ? cli_fail(rc) : 0;
}

int cli_wait(struct cli *c, json_t **res)
{
	return wait_reply(c, res, NULL, NULL);
}

int cli_call(struct cli *c, json_t *req, json_t **res, int **fds, size_t *nfds)
{
	int rc = cli_connect(c);
	if (rc)
		return rc;
	if ((rc = rpc_send(c->rpc, req, NULL, 0)))
		return cli_fail(rc);
	return wait_reply(c, res, fds, nfds);
}

void cli_print_json(json_t *j)
{
	printed = 1;
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
}

int cli_print_detached(const json_t *res)
{
	json_t *id = json_object_get(res, "job");
	if (!json_is_integer(id))
		return 0;
	printf("job %lld\n", (long long)json_integer_value(id));
	return 1;
}

void cli_short_time(const char *iso, char *out, size_t n)
{
	if (!iso || strlen(iso) < 16) {
		snprintf(out, n, "-");
		return;
	}
	snprintf(out, n, "%.10s %.5s", iso, iso + 11);
}

/* Walk s a character at a time: the byte length and columns of each, under
 * a C.UTF-8 locale for this thread only (the CLI's own stays "C"). */
struct chars {
	const char *s;
	mbstate_t st;
	locale_t old;   /* util_utf8_enter's: 0 when there is no C.UTF-8 */
};

static void chars_begin(struct chars *c, const char *s)
{
	memset(c, 0, sizeof *c);
	c->s = s;
	c->old = util_utf8_enter();
}

static void chars_end(struct chars *c)
{
	util_utf8_leave(c->old);
}

/* The next character's bytes (0 at the end) and columns in *cols. */
static size_t chars_next(struct chars *c, int *cols)
{
	if (!*c->s)
		return 0;
	wchar_t w;
	size_t n = c->old ? mbrtowc(&w, c->s, MB_CUR_MAX, &c->st) : (size_t)-1;
	int cw = -1;
	if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
		memset(&c->st, 0, sizeof c->st);
		n = 1;
	} else {
		cw = wcwidth(w);
	}
	*cols = cw < 0 ? 1 : cw;
	c->s += n;
	return n;
}

int cli_width(const char *s)
{
	struct chars c;
	int w = 0, cols;
	chars_begin(&c, s ? s : "");
	while (chars_next(&c, &cols))
		w += cols;
	chars_end(&c);
	return w;
}

void cli_cell(const char *s, int width, int cut)
{
	if (!s)
		s = "-";
	int w = cli_width(s);
	if (cut > 1 && w > cut) { /* keep whole characters up to cut - 1 columns */
		struct chars c;
		int used = 0, cols;
		size_t n;
		const char *p = s;
		chars_begin(&c, s);
		while ((n = chars_next(&c, &cols)) && used + cols <= cut - 1) {
			fwrite(p, 1, n, stdout);
			p += n;
			used += cols;
		}
		chars_end(&c);
		fputc('~', stdout);
		w = used + 1;
	} else {
		fputs(s, stdout);
	}
	for (; w < width; w++)
		fputc(' ', stdout);
}

const char *cli_plural(long long n)
{
	return n == 1 ? "" : "s";
}

const char *cli_safe(const char *s, char *buf, size_t n)
{
	return s ? util_printable(s, buf, n) : "-";
}

/* cli_safe() into one of 8 rotating buffers, so a printf may take several. */
const char *cli_text(const char *s)
{
	static char sb[8][256];
	static int sbi;
	sbi = (sbi + 1) % 8;
	return cli_safe(s, sb[sbi], sizeof sb[0]);
}
