/* common/util.c — see util.h. */
#include "common/util.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return md_from_errno(errno) == MD_ENOSPC ? MD_ENOSPC : MD_EIO;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int util_same_contents(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	struct stat sa, sb;
	const size_t half = 1u << 20;
	uint8_t *buf = NULL;
	int rc = fa < 0 || fb < 0 || fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0 ? MD_EIO : 0;
	int same = !rc && sa.st_size == sb.st_size;
	if (same && !(buf = malloc(2 * half)))
		rc = MD_ENOMEM;
	for (off_t o = 0; same && !rc && o < sa.st_size; o += (off_t)half) {
		size_t n = sa.st_size - o < (off_t)half ? (size_t)(sa.st_size - o) : half;
		if (util_pread_full(fa, buf, n, o) != (ssize_t)n ||
		    util_pread_full(fb, buf + half, n, o) != (ssize_t)n)
			rc = MD_EIO;
		else
			same = !memcmp(buf, buf + half, n);
	}
	free(buf);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return rc ? rc : same;
}

int util_copy_range(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t n)
{
	loff_t a = (loff_t)in_off, b = (loff_t)out_off;
	while (n) {
		ssize_t w = copy_file_range(in, &a, out, &b, n > (1u << 30) ? (1u << 30) : n, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;   /* not supported here (or in ended): the buffer below says which */
		n -= (uint64_t)w;
	}
	if (!n)
		return 0;
	size_t cap = 4u << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return MD_ENOMEM;
	int rc = 0;
	while (n && !rc) {
		size_t k = n < cap ? (size_t)n : cap;
		ssize_t g = util_pread_full(in, buf, k, (off_t)a);
		if (g != (ssize_t)k) {
			rc = g < 0 ? MD_EIO : MD_ECORRUPT;
			break;
		}
		for (size_t done = 0; done < k && !rc;) {
			ssize_t w = pwrite(out, buf + done, k - done, (off_t)b + (off_t)done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				rc = w < 0 && errno == ENOSPC ? MD_ENOSPC : MD_EIO;
			else
				done += (size_t)w;
		}
		a += (loff_t)k;
		b += (loff_t)k;
		n -= k;
	}
	free(buf);
	return rc;
}

ssize_t util_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return MD_EIO;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

ssize_t util_pread_full(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return MD_EIO;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

void util_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int util_unhex(const char *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo = hi < 0 ? -1 : hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return MD_EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return in[2 * n] ? MD_EINVAL : 0;
}

int util_is_hex(const char *s, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == 0;
}

void util_now_iso(char *out, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double util_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void util_human_size(uint64_t b, char *out, size_t n)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, n, "%llu B", (unsigned long long)b);
	else
		snprintf(out, n, "%.1f %s", v, u[i]);
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return md_fail(MD_EINVAL, "%s: path too long", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return md_fail(md_from_errno(errno), "%s: %s", buf, strerror(errno));
			*p = c;
			if (!c)
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return md_fail(MD_EIO, "%s: not a directory", path);
	return 0;
}

int util_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return md_fail(MD_EIO, "%s: %s", path, strerror(errno));
	int rc = fsync(fd) < 0 ? MD_EIO : 0;
	close(fd);
	return rc;
}

size_t util_bom_len(const char *buf, size_t len)
{
	return buf && len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

int util_read_token_file(const char *path, const char *what, size_t max, char **out)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return md_fail(MD_EIO, "%s: %s", what, strerror(errno));
	char *buf = calloc(1, max + 1);
	if (!buf) {
		close(fd);
		return MD_ENOMEM;
	}
	ssize_t n = util_read_full(fd, buf, max);
	int e = errno, rc = 0;
	close(fd);
	if (n < 0) {
		free(buf);
		return md_fail(MD_EIO, "%s: %s", what, strerror(e));
	}
	/* "FILE:1: invalid UTF-8 byte 0xFF at offset 6", "...: NUL byte ..." */
	if ((rc = util_check_text(buf, (size_t)n, path))) {
		explicit_bzero(buf, max + 1);
		free(buf);
		return rc;
	}
	size_t b = util_bom_len(buf, (size_t)n), l = strcspn(buf + b, "\r\n");
	memmove(buf, buf + b, l);
	memset(buf + l, 0, (size_t)n + 1 - l);
	while (l > 0 && (buf[l - 1] == ' ' || buf[l - 1] == '\t'))
		buf[--l] = 0;
	for (size_t i = 0; i < l && !rc; i++)
		if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f)
			rc = md_fail(MD_EINVAL, "%s: the token has spaces, control characters or "
						"non-ASCII bytes", what);
	if (!rc && !l)
		rc = md_fail(MD_EINVAL, "%s: empty", what);
	if (rc) {
		explicit_bzero(buf, max + 1);
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

char *util_pct_decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *w = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] != '%') {
			*w++ = s[i];
			continue;
		}
		if (n - i < 3 || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0 ||
		    !(h | l)) {
			explicit_bzero(o, n + 1);
			free(o);
			return NULL;
		}
		*w++ = (char)(h << 4 | l);
		i += 2;
	}
	*w = 0;
	return o;
}

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

locale_t util_utf8_enter(void)
{
	pthread_once(&utf8_once, utf8_init);
	return utf8_locale ? uselocale(utf8_locale) : (locale_t)0;
}

void util_utf8_leave(locale_t old)
{
	if (old)
		uselocale(old);
}

static void strip_slashes(char *p)
{
	size_t l = strlen(p);
	while (l > 1 && p[l - 1] == '/')
		p[--l] = 0;
}

void util_parent(char *path)
{
	strip_slashes(path);
	char *slash = strrchr(path, '/');
	if (!slash) {
		if (*path)   /* a name's parent, and "."'s own, is "." */
			strcpy(path, ".");
		return;
	}
	slash[slash == path ? 1 : 0] = 0;
	strip_slashes(path);
}

char *util_first_missing(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		errno = EEXIST;
		return NULL;
	}
	if (errno != ENOENT)
		return NULL;
	char *top = strdup(path), *up = strdup(path);
	if (!top || !up) {
		free(top);
		free(up);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		strcpy(up, top);   /* a parent is never longer */
		util_parent(up);
		if (!strcmp(up, top) || lstat(up, &sb) == 0 || errno != ENOENT)
			break;
		strcpy(top, up);
	}
	free(up);
	return top;
}

int util_rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : MD_EIO;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[4400];
		if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) {
			rc = MD_EIO;
			continue;
		}
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (util_rmtree(p))
				rc = MD_EIO;
		} else if (unlink(p) < 0) {
			rc = MD_EIO;
		}
	}
	closedir(d);
	if (rmdir(dir) < 0)
		rc = MD_EIO;
	return rc;
}

uint64_t util_tree_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[4400];
		if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
			continue;
		struct stat sb;
		if (lstat(p, &sb) < 0)
			continue;
		if (S_ISREG(sb.st_mode) && sb.st_nlink == 1)
			n += (uint64_t)sb.st_blocks * 512;
		else if (S_ISDIR(sb.st_mode))
			n += util_tree_bytes(p);
	}
	closedir(d);
	return n;
}

/* Length of the UTF-8 sequence at p, or 0 if invalid (overlongs, surrogates
 * and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];
	if (c < 0x80) return 1;
	if (c >= 0xc2 && c <= 0xdf) return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
		if (c == 0xe0 && p[1] < 0xa0) return 0;
		if (c == 0xed && p[1] >= 0xa0) return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90) return 0;
		if (c == 0xf4 && p[1] >= 0x90) return 0;
		return 4;
	}
	return 0;
}

int util_check_text(const char *buf, size_t len, const char *what)
{
	size_t line = 1;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\0')
			return md_fail(MD_EINVAL, "%s:%zu: NUL byte at offset %zu", what, line, i);
		if (c == '\n')
			line++;
		/* utf8_seq reads up to 4 bytes: give it a zero-padded copy at the end */
		unsigned char q[4] = { 0, 0, 0, 0 };
		memcpy(q, buf + i, len - i < 4 ? len - i : 4);
		size_t n = utf8_seq(q);
		if (!n)
			return md_fail(MD_EINVAL, "%s:%zu: invalid UTF-8 byte 0x%02X at offset %zu", what, line,
				       (unsigned)c, i);
		i += n;
	}
	return 0;
}

int util_check_relpath(const char *p)
{
	size_t len = strlen(p);
	if (len == 0 || len > 1024)
		return md_fail(MD_EREFUSED, "path of %zu bytes refused", len);
	if (p[0] == '/')
		return md_fail(MD_EREFUSED, "%s: absolute path refused", p);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)p[i];
		/* name the path (shown printable) so the user can find the file */
		if (c < 0x20 || c == 0x7f || c == '\\') {
			char pp[256];
			return md_fail(MD_EREFUSED, "%s: path with a control character or backslash refused",
				       util_printable(p, pp, sizeof pp));
		}
		size_t n = utf8_seq((const unsigned char *)p + i);
		if (!n) /* the bytes before i are printable UTF-8 */
			return md_fail(MD_EREFUSED, "%.*s\\x%02X...: path with invalid UTF-8 refused",
				       (int)(i < 200 ? i : 200), p, c);
		i += n;
	}
	const char *s = p;
	for (;;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return md_fail(MD_EREFUSED, "%s: path component '%.*s' refused", p, (int)n, s);
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

char *util_printable(const char *s, char *buf, size_t n)
{
	size_t len = strlen(s), i;
	for (i = 0; i < len && i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[i] = 0;
	if (i < len) {
		/* cut before "...", and not inside a UTF-8 character */
		size_t k = n - 4, j = k;
		while (j > 0 && ((unsigned char)buf[j - 1] & 0xC0) == 0x80)
			j--;
		if (j > 0 && ((unsigned char)buf[j - 1] & 0xC0) == 0xC0) {
			unsigned char lead = (unsigned char)buf[j - 1];
			size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
			if (k - (j - 1) < want)
				k = j - 1;
		}
		memcpy(buf + k, "...", 4);
	}
	return buf;
}

static int name_part_ok(const char *s, size_t n)
{
	if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
		if (c == '.' && i + 1 < n && s[i + 1] == '.')
			return 0;
	}
	return 1;
}

int util_check_model_name(const char *name)
{
	const char *slash = strchr(name, '/');
	char shown[128];
	if (!slash || !name_part_ok(name, (size_t)(slash - name)) ||
	    !name_part_ok(slash + 1, strlen(slash + 1)))
		return md_fail(MD_EINVAL, "%s: not a model name (expected ORG/NAME)",
			       *name ? util_printable(name, shown, sizeof shown) : "''");
	return 0;
}

int util_check_ref(const char *ref)
{
	size_t n = strlen(ref);
	char shown[128];
	if (n == 0 || n > 255 || ref[0] == '/' || ref[0] == '-' || ref[n - 1] == '/' ||
	    strstr(ref, "..") || strstr(ref, "//"))
		return md_fail(MD_EINVAL, "%s: not a revision", util_printable(ref, shown, sizeof shown));
	for (size_t i = 0; i < n; i++) {
		char c = ref[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/'))
			return md_fail(MD_EINVAL, "%s: not a revision",
				       util_printable(ref, shown, sizeof shown));
	}
	return 0;
}

int util_parse_modelref(const char *ref, char **name, char **rev)
{
	const char *at = strchr(ref, '@');
	*name = *rev = NULL;
	*name = at ? strndup(ref, (size_t)(at - ref)) : strdup(ref);
	if (!*name)
		return MD_ENOMEM;
	int rc = util_check_model_name(*name);
	if (rc == 0 && at) {
		rc = util_check_ref(at + 1);
		if (rc == MD_EINVAL) { /* name the whole reference, not just what follows '@' */
			char shown[300];
			rc = md_fail(MD_EINVAL, "%s: not a revision after '@' (want a ref or a revision id)",
				     util_printable(ref, shown, sizeof shown));
		}
		if (rc == 0 && !(*rev = strdup(at + 1)))
			rc = MD_ENOMEM;
	}
	if (rc) {
		free(*name);
		*name = NULL;
	}
	return rc;
}

int util_url_strip_userinfo(const char *url, char *out, size_t n, char **userinfo)
{
	if (userinfo)
		*userinfo = NULL;
	const char *sep = strstr(url, "://");
	const char *auth = sep ? sep + 3 : NULL;
	const char *end = auth ? auth + strcspn(auth, "/?#") : NULL, *at = NULL;
	for (const char *c = auth; c && c < end; c++)
		if (*c == '@')
			at = c;
	int w = at ? snprintf(out, n, "%.*s%s", (int)(auth - url), url, at + 1)
		   : snprintf(out, n, "%s", url);
	if (w < 0 || (size_t)w >= n) {
		if (n)
			out[0] = 0;
		return MD_EINVAL;
	}
	if (!at)
		return 0;
	if (userinfo && !(*userinfo = strndup(auth, (size_t)(at - auth))))
		return MD_ENOMEM;
	return 1;
}

const char *util_hub_url_problem(const char *url)
{
	if (!url || (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8)))
		return "want an http:// or https:// URL";
	if (strlen(url) > 2048)
		return "URL longer than 2048 bytes";
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return "space or control character in the URL";
	if (strpbrk(url, "?#"))
		return "a hub URL takes no query or fragment";
	const char *auth = strstr(url, "://") + 3;
	const char *end = auth + strcspn(auth, "/"), *host = auth;
	for (const char *c = auth; c < end; c++)
		if (*c == '@')
			host = c + 1;
	const char *port = NULL;
	if (host < end && *host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (!rb || rb == host + 1 || strspn(host + 1, "0123456789abcdefABCDEF:.") !=
						     (size_t)(rb - host - 1))
			return "bad IPv6 address in the URL (want [ADDRESS])";
		if (rb + 1 < end && rb[1] != ':')
			return "bad host in the URL";
		port = rb + 1 < end ? rb + 1 : NULL;
	} else {
		port = memchr(host, ':', (size_t)(end - host));
		const char *he = port ? port : end;
		if (he == host)
			return "no host in the URL";
		for (const char *c = host; c < he; c++)
			if (strchr("[]@\\", *c))
				return "bad host in the URL";
	}
	if (port) {
		size_t nd = (size_t)(end - port - 1);
		if (nd == 0 || nd > 5 || strspn(port + 1, "0123456789") < nd ||
		    atol(port + 1) < 1 || atol(port + 1) > 65535)
			return "bad port in the URL";
	}
	return NULL;
}
