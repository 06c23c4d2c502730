/* Unit tests for common/: names, paths, hex, framing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/progress.h"
#include "common/proto.h"
#include "common/sha256.h"
#include "common/util.h"

static void test_model_names(void **state)
{
	(void)state;
	assert_int_equal(util_check_model_name("acme/tiny-llama"), 0);
	assert_int_equal(util_check_model_name("meta-llama/Llama-3.1-8B"), 0);
	assert_int_not_equal(util_check_model_name("acme"), 0);
	assert_int_not_equal(util_check_model_name("acme/x/y"), 0);
	assert_int_not_equal(util_check_model_name("../x"), 0);
	assert_int_not_equal(util_check_model_name("acme/.x"), 0);
	assert_int_not_equal(util_check_model_name("acme/a..b"), 0);
	assert_int_not_equal(util_check_model_name("/x"), 0);
	char *n, *r;
	assert_int_equal(util_parse_modelref("acme/x@main", &n, &r), 0);
	assert_string_equal(n, "acme/x");
	assert_string_equal(r, "main");
	free(n);
	free(r);
	assert_int_equal(util_parse_modelref("acme/x", &n, &r), 0);
	assert_null(r);
	free(n);
	assert_int_not_equal(util_parse_modelref("acme/x@", &n, &r), 0);
	assert_int_not_equal(util_parse_modelref("acme/x@../../etc", &n, &r), 0);
}

static void test_relpaths(void **state)
{
	(void)state;
	assert_int_equal(util_check_relpath("config.json"), 0);
	assert_int_equal(util_check_relpath("onnx/model.onnx"), 0);
	assert_int_equal(util_check_relpath("d\xc3\xa9j\xc3\xa0.txt"), 0);
	assert_int_equal(util_check_relpath("../etc/passwd"), MD_EREFUSED);
	assert_int_equal(util_check_relpath("/etc/passwd"), MD_EREFUSED);
	assert_int_equal(util_check_relpath("a//b"), MD_EREFUSED);
	assert_int_equal(util_check_relpath("a/./b"), MD_EREFUSED);
	assert_int_equal(util_check_relpath("a/"), MD_EREFUSED);
	assert_int_equal(util_check_relpath(""), MD_EREFUSED);
	assert_int_equal(util_check_relpath("a\\b"), MD_EREFUSED);
	assert_int_equal(util_check_relpath("bad\xff"), MD_EREFUSED);
	assert_int_equal(util_check_relpath("ctl\x01"), MD_EREFUSED);
}

/* a detail wrapped in more context: the argument is md_errmsg()'s own
 * buffer, which md_fail overwrites */
static void test_fail_wraps_own_detail(void **state)
{
	(void)state;
	md_clearerr();
	util_check_relpath("h/../x");
	char want[256];
	snprintf(want, sizeof want, "outer: %s", md_errmsg(MD_EREFUSED));
	md_fail(MD_EREFUSED, "outer: %s", md_errmsg(MD_EREFUSED));
	assert_string_equal(md_errmsg(MD_EREFUSED), want);
	md_fail(MD_EIO, "%s", md_errmsg(MD_EIO));
	assert_string_equal(md_errmsg(MD_EIO), want);
	char buf[16];
	assert_string_equal(util_printable("a\nb\x7f", buf, sizeof buf), "a?b?");
	assert_string_equal(util_printable("0123456789abcdefghij", buf, sizeof buf), "0123456789ab...");
	assert_string_equal(util_printable("0123456789abcde", buf, sizeof buf), "0123456789abcde");
	/* a cut never splits a UTF-8 character: 'é' (2 bytes) at offsets 11-12 */
	assert_string_equal(util_printable("0123456789a\xc3\xa9" "cdefgh", buf, sizeof buf), "0123456789a...");
	assert_string_equal(util_printable("0123456789\xc3\xa9" "bcdefgh", buf, sizeof buf), "0123456789\xc3\xa9" "...");
}

static void test_hex_sha(void **state)
{
	(void)state;
	char hex[65];
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	uint8_t b[32];
	assert_int_equal(util_unhex(hex, b, 32), 0);
	char back[65];
	util_hex(b, 32, back);
	assert_string_equal(back, hex);
	assert_true(util_is_hex(hex, 64));
	assert_false(util_is_hex("ABCD", 4));
}

static void test_framing(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(proto_send(sv[0], "{\"op\":\"x\"}", 10, &pfd[0], 1), 0);
	assert_int_equal(proto_send(sv[0], "{}", 2, NULL, 0), 0);
	struct proto_reader r;
	proto_reader_init(&r);
	char *p;
	size_t len, nfds;
	int fds[PROTO_MAX_FDS];
	assert_int_equal(proto_recv(&r, sv[1], &p, &len, fds, &nfds), 1);
	assert_string_equal(p, "{\"op\":\"x\"}");
	assert_int_equal(nfds, 1);
	free(p);
	/* the received descriptor is a working duplicate of the pipe's end */
	assert_int_equal(write(pfd[1], "z", 1), 1);
	char c = 0;
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, 'z');
	close(fds[0]);
	assert_int_equal(proto_recv(&r, sv[1], &p, &len, fds, &nfds), 1);
	assert_int_equal(len, 2);
	free(p);
	/* a bad version kills the connection */
	uint8_t hdr[PROTO_HDR];
	proto_hdr_encode(hdr, 0, 0);
	hdr[2] = 9;
	assert_int_equal(write(sv[0], hdr, sizeof hdr), (ssize_t)sizeof hdr);
	assert_int_equal(proto_recv(&r, sv[1], &p, &len, fds, &nfds), MD_EPROTO);
	proto_reader_free(&r);
	/* a 2 GB length prefix is refused before anything is allocated */
	proto_reader_init(&r);
	proto_hdr_encode(hdr, 0x80000000u, 0);
	assert_int_equal(write(sv[0], hdr, sizeof hdr), (ssize_t)sizeof hdr);
	assert_int_equal(proto_recv(&r, sv[1], &p, &len, fds, &nfds), MD_EPROTO);
	proto_reader_free(&r);
	close(sv[0]);
	close(sv[1]);
	close(pfd[0]);
	close(pfd[1]);
}

/* The bar shows no rate or ETA until it has measured one: not from the
 * job's start (resolving, listing), nor counting resumed bytes. */
/* One reader for the hub token, the mirror's and --token-file's. */
static void test_token_files(void **state)
{
	(void)state;
	char path[] = "/tmp/md-token-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	static const struct {
		const char *text, *want; /* want NULL: refused with `why` */
		const char *why;
	} cases[] = {
		{ "hf_abc\n", "hf_abc", NULL },
		{ "\xEF\xBB\xBFhf_abc\r\n", "hf_abc", NULL },
		{ "hf_abc  \nsecond line\n", "hf_abc", NULL },
		{ "", NULL, "tok: empty" },
		{ "\n\nhf_abc\n", NULL, "tok: empty" },
		{ "hf a\n", NULL, "tok: the token has spaces" },
		{ "hf_\xC3\xA9\n", NULL, "tok: the token has spaces" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(cases[i].text, f);
		fclose(f);
		char *tok = NULL;
		int rc = util_read_token_file(path, "tok", 4096, &tok);
		if (cases[i].want) {
			assert_int_equal(rc, 0);
			assert_string_equal(tok, cases[i].want);
			free(tok);
		} else {
			assert_int_equal(rc, MD_EINVAL);
			assert_null(tok);
			assert_non_null(strstr(md_errmsg(rc), cases[i].why));
		}
	}
	unlink(path);
	char *tok = NULL;
	assert_int_equal(util_read_token_file(path, "tok", 4096, &tok), MD_EIO);
	assert_non_null(strstr(md_errmsg(MD_EIO), "tok: No such file"));
}

/* URL user info for git remotes, credential files and hub URLs alike. */
static void test_pct_decode(void **state)
{
	(void)state;
	char *d = util_pct_decode("p%40ss%2Fw%23rd%3a", 18);
	assert_string_equal(d, "p@ss/w#rd:");
	free(d);
	assert_null(util_pct_decode("p%4", 3));
	assert_null(util_pct_decode("p%zz", 4));
	assert_null(util_pct_decode("p%00", 4));
	d = util_pct_decode("abc%41def", 6); /* n bytes only: "abc%41" */
	assert_string_equal(d, "abcA");
	free(d);
}

static void test_progress_eta(void **state)
{
	(void)state;
	struct progress p = { 0 };
	char l[256];
	const uint64_t MiB = 1 << 20, total = 256 * MiB;
	progress_line(&p, 100.0, 212, total, "pull", l, sizeof l);
	if (!strstr(l, " 0% 212 B/256.0 MiB --/s ETA --"))
		fail_msg("first frame: %s", l);
	progress_line(&p, 100.5, 300 * 1024, total, "pull", l, sizeof l);
	if (!strstr(l, "--/s ETA --"))
		fail_msg("half a second: %s", l);
	progress_line(&p, 101.0, 2 * MiB + 212, total, "pull", l, sizeof l);
	if (!strstr(l, " 2.0 MiB/s ETA 127s"))
		fail_msg("after a second: %s", l);

	/* a resumed pull: 200 MiB on disk before the first frame */
	struct progress r = { 0 };
	progress_line(&r, 0.0, 200 * MiB, total, "pull", l, sizeof l);
	assert_non_null(strstr(l, "ETA --"));
	progress_line(&r, 1.0, 201 * MiB, total, "pull", l, sizeof l);
	if (!strstr(l, " 78% 201.0 MiB/256.0 MiB 1.0 MiB/s ETA 55s"))
		fail_msg("resumed: %s", l);

	/* a slow link gets a rate after PROGRESS_SLOW_SPAN_S */
	struct progress s = { 0 };
	for (int i = 0; i <= 49; i++) {
		progress_line(&s, i * 0.1, (uint64_t)i * 200, 1000000, "pull", l, sizeof l);
		assert_non_null(strstr(l, "--/s ETA --"));
	}
	progress_line(&s, 5.0, 10000, 1000000, "pull", l, sizeof l);
	if (!strstr(l, " 9.8 KiB/976.6 KiB 2.0 KiB/s ETA 495s"))
		fail_msg("slow: %s", l);

	/* a moving window: the rate follows a change of speed */
	struct progress w = { 0 };
	uint64_t done = 0;
	for (int i = 0; i <= 300; i++) {
		done += i <= 200 ? MiB / 10 : MiB / 5;
		progress_line(&w, i * 0.1, done, 1024 * MiB, "pull", l, sizeof l);
	}
	if (!strstr(l, " 2.0 MiB/s ETA "))
		fail_msg("window: %s", l);

	/* stalled: rate 0, no ETA; no total: no bar */
	progress_line(&w, 40.0, done, 1024 * MiB, "pull", l, sizeof l);
	progress_line(&w, 55.0, done, 1024 * MiB, "pull", l, sizeof l);
	if (!strstr(l, " 0 B/s ETA --"))
		fail_msg("stalled: %s", l);
	struct progress z = { 0 };
	progress_line(&z, 0, 5, 0, "gc", l, sizeof l);
	assert_string_equal(l, "gc      5 B --/s");
}

static void test_parent_and_first_missing(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "a/b/", "a" }, { "a//b", "a" }, { "a", "." }, { ".", "." }, { "/a", "/" },
		{ "/", "/" }, { "/x/y/z", "/x/y" }, { "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char b[32];
		strcpy(b, cases[i][0]);
		util_parent(b);
		assert_string_equal(b, cases[i][1]);
	}
	char tmpl[] = "/tmp/md-test-fm-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char deep[128], want[128];
	snprintf(deep, sizeof deep, "%s/new/deeper/", tmpl);
	snprintf(want, sizeof want, "%s/new", tmpl);
	char *top = util_first_missing(deep);
	assert_non_null(top);
	assert_string_equal(top, want);
	free(top);
	errno = 0;
	assert_null(util_first_missing(tmpl));
	assert_int_equal(errno, EEXIST);
	rmdir(tmpl);
}

/* What a hub URL may look like; each refusal says why. */
static void test_hub_url(void **state)
{
	(void)state;
	const char *ok[] = { "http://127.0.0.1", "https://huggingface.co", "http://h:1/",
			     "HTTPS://hub.example:65535/base/path", "http://[::1]:8080",
			     "http://[fe80::1]", "https://user:pw@hub.example:443/x",
			     "https://xn--bcher-kva.example" };
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		assert_null(util_hub_url_problem(ok[i]));
	struct { const char *url, *why; } bad[] = {
		{ NULL, "want an http:// or https:// URL" },
		{ "ftp://h", "want an http:// or https:// URL" },
		{ "huggingface.co", "want an http:// or https:// URL" },
		{ "http://", "no host in the URL" },
		{ "http:///api", "no host in the URL" },
		{ "http://:80", "no host in the URL" },
		{ "http://u@", "no host in the URL" },
		{ "http://[::1", "bad IPv6 address in the URL (want [ADDRESS])" },
		{ "http://[]", "bad IPv6 address in the URL (want [ADDRESS])" },
		{ "http://[::1]x", "bad host in the URL" },
		{ "http://h]", "bad host in the URL" },
		{ "http://h:0", "bad port in the URL" },
		{ "http://h:65536", "bad port in the URL" },
		{ "http://h:8o", "bad port in the URL" },
		{ "http://h:", "bad port in the URL" },
		{ "http://h:-1", "bad port in the URL" },
		{ "http://h h", "space or control character in the URL" },
		{ "http://h\n", "space or control character in the URL" },
		{ "http://h/#x", "a hub URL takes no query or fragment" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *why = util_hub_url_problem(bad[i].url);
		assert_non_null(why);
		assert_string_equal(why, bad[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_names),
		cmocka_unit_test(test_relpaths),
		cmocka_unit_test(test_fail_wraps_own_detail),
		cmocka_unit_test(test_hex_sha),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_progress_eta),
		cmocka_unit_test(test_token_files),
		cmocka_unit_test(test_pct_decode),
		cmocka_unit_test(test_parent_and_first_missing),
		cmocka_unit_test(test_hub_url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
