/*
 * Unit tests for sources/git (URL parsing, credential files) and
 * sources/lfs (strict pointer parsing, endpoint derivation): every hostile
 * or malformed input refused, the forms git-lfs writes accepted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/err.h"
#include "sources/git.h"
#include "sources/lfs.h"

#define OID "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"

static void pointer_ok(void **state)
{
	(void)state;
	const char *p = "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 12345\n";
	char oid[65];
	uint64_t sz = 0;
	assert_int_equal(lfs_parse_pointer(p, strlen(p), oid, &sz), 1);
	assert_string_equal(oid, OID);
	assert_int_equal(sz, 12345);
	const char *z = "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 0\n";
	assert_int_equal(lfs_parse_pointer(z, strlen(z), oid, &sz), 1);
	assert_int_equal(sz, 0);
}

static void pointer_not(void **state)
{
	(void)state;
	char oid[65];
	uint64_t sz;
	const char *s = "{\"hidden_size\": 64}\n";
	assert_int_equal(lfs_parse_pointer(s, strlen(s), oid, &sz), 0);
	assert_int_equal(lfs_parse_pointer("", 0, oid, &sz), 0);
	const char *v = "version https://example.org/spec/v1\noid sha256:" OID "\nsize 1\n";
	assert_int_equal(lfs_parse_pointer(v, strlen(v), oid, &sz), 0);
}

static void pointer_bad(void **state)
{
	(void)state;
	const char *bad[] = {
		"version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 12\nextra x\n",
		"version https://git-lfs.github.com/spec/v1\nsize 12\noid sha256:" OID "\n",
		"version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 012\n",
		"version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize -1\n",
		"version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 12",
		"version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 99999999999999999999\n",
		"version https://git-lfs.github.com/spec/v1\noid sha256:4D7A214614AB2935C943F9E0FF69D22EADBB8F32B1258DAAA5E2CA24D17E2393\nsize 1\n",
		"version https://git-lfs.github.com/spec/v1\noid sha1:" OID "\nsize 1\n",
		"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n",
		"version https://git-lfs.github.com/spec/v1\r\noid sha256:" OID "\r\nsize 1\r\n",
		"version https://git-lfs.github.com/spec/v1",
		"version https://git-lfs.github.com/spec/v2\noid sha256:" OID "\nsize 1\n",
	};
	char oid[65];
	uint64_t sz;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = lfs_parse_pointer(bad[i], strlen(bad[i]), oid, &sz);
		if (rc != MD_ECORRUPT)
			fail_msg("case %zu: %d", i, rc);
	}
	/* 1024 bytes or more is never a pointer */
	char big[1100];
	memset(big, 'x', sizeof big);
	memcpy(big, "version https://git-lfs.github.com/spec/v1\n", 43);
	assert_int_equal(lfs_parse_pointer(big, sizeof big, oid, &sz), MD_ECORRUPT);
}

static void url_forms(void **state)
{
	(void)state;
	struct gitsrc_url *u;
	assert_int_equal(gitsrc_url_parse("git+https://host.example/org/repo.git@v1.0", 0, &u), 0);
	assert_string_equal(u->url, "https://host.example/org/repo.git");
	assert_string_equal(u->ref, "v1.0");
	assert_string_equal(u->name, "org/repo");
	gitsrc_url_free(u);
	assert_int_equal(gitsrc_url_parse("git+https://bob:tok@host.example/a/b/org/repo@feature/x", 0, &u), 0);
	assert_string_equal(u->url, "https://bob:tok@host.example/a/b/org/repo");
	assert_string_equal(u->clean, "https://host.example/a/b/org/repo");
	assert_string_equal(u->user, "bob");
	assert_string_equal(u->pass, "tok");
	assert_string_equal(u->ref, "feature/x");
	assert_string_equal(u->name, "org/repo");
	gitsrc_url_free(u);
	assert_int_equal(gitsrc_url_parse("git+ssh://git@host.example:2222/org/m.git", 0, &u), 0);
	assert_string_equal(u->clean, "ssh://host.example:2222/org/m.git");
	assert_null(u->ref);
	assert_string_equal(u->name, "org/m");
	gitsrc_url_free(u);
	assert_int_equal(gitsrc_url_parse("file:///srv/git/org/m/.git", 1, &u), 0);
	assert_string_equal(u->name, "org/m");
	gitsrc_url_free(u);
	assert_int_equal(gitsrc_url_parse("git+https://host.example/repo.git", 0, &u), 0);
	assert_null(u->name); /* one component: --name needed */
	gitsrc_url_free(u);
	/* user info is %-decoded, as git and curl do: a token holding '@',
	 * ':' or '/' can only be written encoded */
	assert_int_equal(gitsrc_url_parse("git+https://b%6Fb:p%40ss%3Aw%2Frd@h.example/o/r.git", 0, &u), 0);
	assert_string_equal(u->user, "bob");
	assert_string_equal(u->pass, "p@ss:w/rd");
	assert_string_equal(u->clean, "https://h.example/o/r.git");
	gitsrc_url_free(u);
	assert_int_equal(gitsrc_url_parse("git+https://bob:p%4@h.example/o/r.git", 0, &u), MD_EINVAL);
	assert_int_equal(gitsrc_url_parse("git+https://bob:p%00@h.example/o/r.git", 0, &u), MD_EINVAL);
	assert_null(strstr(md_errmsg(MD_EINVAL), "p%"));
}

static void times(void **state)
{
	(void)state;
	const time_t t = 1795514400;   /* 2026-11-24T10:00:00Z */
	assert_int_equal(lfs_parse_time("2026-11-24T10:00:00Z"), t);
	assert_int_equal(lfs_parse_time("2026-11-24T10:00:00.123456Z"), t);
	assert_int_equal(lfs_parse_time("2026-11-24T10:00:00"), t);
	assert_int_equal(lfs_parse_time("2026-11-24T11:00:00+01:00"), t);
	assert_int_equal(lfs_parse_time("2026-11-24T05:00:00-0500"), t);
	assert_int_equal(lfs_parse_time("2026-11-24T15:30:00.5+05:30"), t);
	assert_int_equal(lfs_parse_time("2026-11-24T10:00:00 junk"), 0);
	assert_int_equal(lfs_parse_time("2026-11-24T10:00:00+25:00"), 0);
	assert_int_equal(lfs_parse_time("tomorrow"), 0);
	assert_int_equal(lfs_parse_time(NULL), 0);
}

static void url_refused(void **state)
{
	(void)state;
	const char *bad[] = {
		"https://host/org/repo.git",          /* no git+ */
		"git+ftp://host/org/repo.git",
		"git+https://host/org/repo.git@",
		"git+https://host/org/repo.git@a..b",
		"git+https://host/org/repo.git@-x",
		"git+https://host/org/repo.git@x:y",
		"git+https:///org/repo.git",
		"git+file://host/org/repo.git",
		"git+https://host/org/re po.git",
		"git+https://host/org/re\npo.git",
		"git+https://host",
		"git+nothing",
		"git+ssh://git@host.example:org/x.git",   /* scp-like, not a URL */
		"git+https://host:/org/x.git",
		"git+https://host:80a/org/x.git",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct gitsrc_url *u = NULL;
		int rc = gitsrc_url_parse(bad[i], 0, &u);
		if (rc >= 0)
			fail_msg("accepted %s", bad[i]);
		assert_null(u);
	}
	struct gitsrc_url *u = NULL;
	assert_int_equal(gitsrc_url_parse("git+ssh://git@h.example:org/x.git", 0, &u), MD_EINVAL);
	assert_non_null(strstr(md_errmsg(MD_EINVAL), "written ssh://host/path"));
	assert_int_equal(gitsrc_url_parse("git+http://[::1]:8080/org/x.git", 0, &u), 0);
	gitsrc_url_free(u);
	u = NULL;
	assert_true(gitsrc_url_parse("git+https://bob:SECRET@host/o/r.git@a..b", 0, &u) < 0);
	assert_null(strstr(md_errmsg(MD_EINVAL), "SECRET"));
}

static void endpoints(void **state)
{
	(void)state;
	char *e;
	assert_int_equal(lfs_endpoint("https", "https://h/o/r.git", &e), 0);
	assert_string_equal(e, "https://h/o/r.git/info/lfs");
	free(e);
	assert_int_equal(lfs_endpoint("https", "https://h/o/r", &e), 0);
	assert_string_equal(e, "https://h/o/r.git/info/lfs");
	free(e);
	assert_int_equal(lfs_endpoint("ssh", "ssh://h:2222/o/r.git", &e), 0);
	assert_string_equal(e, "https://h/o/r.git/info/lfs");
	free(e);
	assert_int_equal(lfs_endpoint("file", "file:///x/y", &e), 0);
	assert_null(e);
}

static void creds(void **state)
{
	(void)state;
	char path[] = "/tmp/test_gitsrc_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *txt = "# comment\n\nhttps://bob:tok1@Host.Example\nhttp://amy:tok2@127.0.0.1:8080\n"
			  "https://c%40d:t%2Fk@git.example\n"; /* git-credential-store encodes */
	assert_int_equal(write(fd, txt, strlen(txt)), (ssize_t)strlen(txt));
	close(fd);
	struct gitsrc_creds *c;
	const char *user, *pass;
	assert_int_equal(gitsrc_creds_load(path, &c), 0);
	assert_int_equal(gitsrc_creds_find(c, "https://host.example/o/r.git/info/lfs", &user, &pass), 1);
	assert_string_equal(user, "bob");
	assert_string_equal(pass, "tok1");
	assert_int_equal(gitsrc_creds_find(c, "https://host.example:8443/o", &user, &pass), 0);
	assert_int_equal(gitsrc_creds_find(c, "http://host.example/o", &user, &pass), 0);
	assert_int_equal(gitsrc_creds_find(c, "http://127.0.0.1:8080/x", &user, &pass), 1);
	assert_string_equal(pass, "tok2");
	assert_int_equal(gitsrc_creds_find(c, "https://git.example/o", &user, &pass), 1);
	assert_string_equal(user, "c@d");
	assert_string_equal(pass, "t/k");
	gitsrc_creds_free(c);
	/* a line without a token: refused naming the line, not echoing it */
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *bad = "https://host.example\nhttps://x:SECRET\n";
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	assert_int_equal(gitsrc_creds_load(path, &c), MD_EINVAL);
	assert_non_null(strstr(md_errmsg(MD_EINVAL), "line 1"));
	unlink(path);
	assert_int_equal(gitsrc_creds_load("/nonexistent/creds", &c), 0);
	gitsrc_creds_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pointer_ok),
		cmocka_unit_test(pointer_not),
		cmocka_unit_test(pointer_bad),
		cmocka_unit_test(url_forms),
		cmocka_unit_test(url_refused),
		cmocka_unit_test(times),
		cmocka_unit_test(endpoints),
		cmocka_unit_test(creds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
