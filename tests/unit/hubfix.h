/*
 * tests/unit/hubfix.h — start/stop tests/fixtures/hubd.py on a free loopback
 * port for a cmocka test file, talk to its /_ctl/ endpoints. Header-only
 * (static functions) so that each test binary stays one .c file.
 */
#ifndef MD_TEST_HUBFIX_H
#define MD_TEST_HUBFIX_H

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct hubfix {
	pid_t pid;
	int port;
	char root[64];
	char url[64];      /* http://127.0.0.1:PORT */
	char url_alt[64];  /* http://localhost:PORT (another host name) */
};

struct hubfix_buf {
	char *p;
	size_t n;
};

static size_t hubfix_w(char *b, size_t s, size_t m, void *a)
{
	struct hubfix_buf *x = a;
	char *np = realloc(x->p, x->n + s * m + 1);
	if (!np)
		return 0;
	x->p = np;
	memcpy(x->p + x->n, b, s * m);
	x->n += s * m;
	x->p[x->n] = 0;
	return s * m;
}

/* GET url; returns malloc'd body or NULL. */
static __attribute__((unused)) char *hubfix_get(const char *url)
{
	struct hubfix_buf b = { NULL, 0 };
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, hubfix_w);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	CURLcode cc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	if (cc != CURLE_OK) {
		free(b.p);
		return NULL;
	}
	return b.p ? b.p : strdup("");
}

/* GET {hub}/_ctl/{what}; 0 ok. */
static int hubfix_ctl(const struct hubfix *h, const char *what)
{
	char u[1024];
	snprintf(u, sizeof u, "%s/_ctl/%s", h->url, what);
	char *b = hubfix_get(u);
	int ok = b && strstr(b, "\"ok\"");
	free(b);
	return ok ? 0 : -1;
}

/* The request log as a JSON array (caller decrefs). */
static json_t *hubfix_log(const struct hubfix *h)
{
	char u[256];
	snprintf(u, sizeof u, "%s/_ctl/log", h->url);
	char *b = hubfix_get(u);
	if (!b)
		return NULL;
	json_t *j = json_loads(b, 0, NULL);
	free(b);
	return j;
}

static int hubfix_start(struct hubfix *h)
{
	memset(h, 0, sizeof *h);
	snprintf(h->root, sizeof h->root, "/tmp/md-hubd-XXXXXX");
	if (!mkdtemp(h->root))
		return -1;
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	const char *src = getenv("MD_SRCDIR");
	char script[1024];
	snprintf(script, sizeof script, "%s/tests/fixtures/hubd.py", src ? src : ".");
	h->pid = fork();
	if (h->pid < 0)
		return -1;
	if (h->pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl("/usr/bin/python3", "python3", script, "--root", h->root, "--make", "--port", "0",
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	char line[64] = "";
	if (!f || !fgets(line, sizeof line, f)) {
		if (f)
			fclose(f);
		kill(h->pid, SIGTERM);
		waitpid(h->pid, NULL, 0);
		return -1;
	}
	fclose(f);
	h->port = atoi(line);
	snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d", h->port);
	snprintf(h->url_alt, sizeof h->url_alt, "http://localhost:%d", h->port);
	return h->port > 0 ? 0 : -1;
}

static void hubfix_rm(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0) {
		/* best effort */
	}
}

static void hubfix_stop(struct hubfix *h)
{
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
	}
	if (h->root[0])
		hubfix_rm(h->root);
}

/* Read a whole file (malloc'd, *n set) or NULL. */
static __attribute__((unused)) char *hubfix_slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long l = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)l + 1);
	if (b && fread(b, 1, (size_t)l, f) != (size_t)l) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[l] = 0;
		*n = (size_t)l;
	}
	return b;
}

/* 1 if the two files have identical bytes. */
static __attribute__((unused)) int hubfix_same(const char *a, const char *b)
{
	size_t na = 0, nb = 0;
	char *x = hubfix_slurp(a, &na), *y = hubfix_slurp(b, &nb);
	int same = x && y && na == nb && !memcmp(x, y, na);
	free(x);
	free(y);
	return same;
}

#endif
