/* daemon/config.c — see config.h. */
#include "daemon/config.h"
#include "registry/store.h"
#include "common/err.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/units.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONFIG_MAX_LINE 4096   /* longer lines are an error */
#define CONFIG_CATALOG_MIN ((uint64_t)1 << 20) /* catalog_max bounds */
#define CONFIG_CATALOG_MAX ((uint64_t)64 << 40)

static int setstr(char **dst, const char *v)
{
	char *n = strdup(v);
	if (!n)
		return MD_ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

int config_defaults(struct config *c)
{
	char buf[4096];
	int rc;
	memset(c, 0, sizeof *c);
	c->log_level = LOG_LVL_INFO;
	c->workers = 4;
	c->catalog_max = STORE_MAPSIZE;
	if ((rc = paths_default_store(buf, sizeof buf)) || (rc = setstr(&c->store, buf)))
		return rc;
	if ((rc = paths_default_socket(buf, sizeof buf)) || (rc = setstr(&c->socket, buf)))
		return rc;
	return setstr(&c->hub, "https://huggingface.co");
}

int config_http_addr(const char *addr, struct addrinfo **out)
{
	char host[256], port[16];
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1] || (size_t)(colon - addr) >= 256 || strlen(colon + 1) >= 16)
		return md_fail(MD_EINVAL, "http '%s': want ADDR:PORT", addr);
	snprintf(host, 256, "%.*s", (int)(colon - addr), addr);
	snprintf(port, 16, "%s", colon + 1);
	if (host[0] == '[') { /* [::1] */
		size_t k = strlen(host);
		if (k < 2 || host[k - 1] != ']')
			return md_fail(MD_EINVAL, "http '%s': bad IPv6 address", addr);
		memmove(host, host + 1, k - 2);
		host[k - 2] = 0;
	}
	char *end;
	long p = strtol(port, &end, 10);
	if (*end || p < 1 || p > 65535)
		return md_fail(MD_EINVAL, "http '%s': port '%s': want 1..65535", addr, port);
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (g)
		return md_fail(MD_EINVAL, "http '%s': %s (numeric address and port expected)", addr,
			       gai_strerror(g));
	if (out)
		*out = ai;
	else
		freeaddrinfo(ai);
	return 0;
}

static int seturl(char **dst, const char *key, const char *v)
{
	const char *why = util_hub_url_problem(v);
	if (why)
		return md_fail(MD_EINVAL, "%s '%s': %s", key, v, why);
	return setstr(dst, v);
}

int config_set(struct config *c, const char *k, const char *v)
{
	if (!*v) { /* "store =": no value is a mistake, not a default */
		char pk[128];
		return md_fail(MD_EINVAL, "%s '': want a value", util_printable(k, pk, sizeof pk));
	}
	if (!strcmp(k, "store")) return setstr(&c->store, v);
	if (!strcmp(k, "socket")) {
		/* checked here, so that -n sees what bind() would refuse at start */
		if (strlen(v) >= sizeof ((struct sockaddr_un *)0)->sun_path)
			return md_fail(MD_EINVAL, "socket '%.200s%s': %zu bytes, longer than a Unix "
				       "socket path can be (%zu)", v, strlen(v) > 200 ? "..." : "",
				       strlen(v), sizeof ((struct sockaddr_un *)0)->sun_path - 1);
		return setstr(&c->socket, v);
	}
	if (!strcmp(k, "socket_group")) return setstr(&c->socket_group, v);
	if (!strcmp(k, "hub")) return seturl(&c->hub, k, v);
	if (!strcmp(k, "token_file")) return setstr(&c->token_file, v);
	if (!strcmp(k, "ca_file")) return setstr(&c->ca_file, v);
	if (!strcmp(k, "git_credentials")) return setstr(&c->git_credentials, v);
	if (!strcmp(k, "http")) {
		int rc = config_http_addr(v, NULL);
		return rc ? rc : setstr(&c->http, v);
	}
	if (!strcmp(k, "upstream")) return seturl(&c->upstream, k, v);
	if (!strcmp(k, "http_token_file")) return setstr(&c->http_token_file, v);
	if (!strcmp(k, "policy")) return setstr(&c->policy, v);
	if (!strcmp(k, "size_classes")) {
		uint64_t t[UNITS_MAX_CLASSES];
		size_t n;
		return units_parse_thresholds(v, t, &n) ? MD_EINVAL : setstr(&c->size_classes, v);
	}
	if (!strcmp(k, "log_level")) {
		int l = log_parse_level(v);
		if (l < 0)
			return md_fail(MD_EINVAL, "log_level '%s': want error, warn, info or debug", v);
		c->log_level = l;
		return 0;
	}
	if (!strcmp(k, "workers")) {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (end == v || *end || errno || n < 1 || n > 64)
			return md_fail(MD_EINVAL, "workers '%s': want 1..64", v);
		c->workers = (int)n;
		return 0;
	}
	if (!strcmp(k, "catalog_max")) {
		uint64_t b;
		if (units_parse_bytes(v, &b) || b < CONFIG_CATALOG_MIN || b > CONFIG_CATALOG_MAX)
			return md_fail(MD_EINVAL, "catalog_max '%s': want a size from 1MiB to 64TiB "
				       "(e.g. 64GiB)", v);
		c->catalog_max = b;
		return 0;
	}
	if (!strcmp(k, "limit_rate")) {
		return units_parse_rate(v, "limit_rate", &c->limit_rate);
	}
	char pk[128];
	return md_fail(MD_EINVAL, "unknown key '%s'", util_printable(k, pk, sizeof pk));
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* The whole file, at most CONFIG_MAX_FILE bytes: a directory or a read
 * error is an error naming the file, not an empty configuration
 * (/dev/null still reads as an empty one). */
#define CONFIG_MAX_FILE (1u << 20)
static int read_config_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return md_fail(MD_EINVAL, "%s: is a directory, not a configuration file", path);
	}
	char *buf = malloc(CONFIG_MAX_FILE + 1);
	if (!buf) {
		close(fd);
		return MD_ENOMEM;
	}
	ssize_t n = util_read_full(fd, buf, CONFIG_MAX_FILE + 1);
	int e = errno;
	close(fd);
	if (n < 0 || (size_t)n > CONFIG_MAX_FILE) {
		free(buf);
		return n < 0 ? md_fail(md_from_errno(e), "%s: %s", path, strerror(e))
			     : md_fail(MD_EINVAL, "%s: larger than %u bytes", path, CONFIG_MAX_FILE);
	}
	buf[n] = 0;
	*out = buf;
	*len = (size_t)n;
	return 0;
}

int config_load(struct config *c, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = read_config_file(path, &buf, &len);
	if (rc)
		return rc;
	/* text only: "modeld.conf:3: invalid UTF-8 byte 0xFF at offset 40" */
	if ((rc = util_check_text(buf, len, path))) {
		free(buf);
		return rc;
	}
	/* key -> its line: a key given twice is an error (which one wins
	 * would be a guess) */
	json_t *seen = json_object();
	if (!seen) {
		free(buf);
		return MD_ENOMEM;
	}
	int lineno = 0;
	for (char *p = buf + util_bom_len(buf, len); !rc && p < buf + len; ) {
		char *line = p, *nl = strchr(p, '\n');
		if (nl) {
			*nl = 0;
			p = nl + 1;
		} else {
			p = buf + len;
		}
		lineno++;
		if (strlen(line) > CONFIG_MAX_LINE) {
			rc = md_fail(MD_EINVAL, "%s:%d: line too long", path, lineno);
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = md_fail(MD_EINVAL, "%s:%d: expected 'key = value'", path, lineno);
			break;
		}
		*eq = 0;
		char *k = trim(s), *v = trim(eq + 1);
		if ((rc = config_set(c, k, v))) {
			char where[4200];
			snprintf(where, sizeof where, "%s:%d", path, lineno);
			md_fail_prefix(rc, where);
		} else if (json_object_get(seen, k)) { /* a known key: config_set took it */
			rc = md_fail(MD_EINVAL, "%s:%d: duplicate key '%s' (first on line %d)", path,
				     lineno, k, (int)json_integer_value(json_object_get(seen, k)));
		} else if (json_object_set_new(seen, k, json_integer(lineno))) {
			rc = MD_ENOMEM;
		}
	}
	json_decref(seen);
	free(buf);
	if (!rc && setstr(&c->config_path, path))
		rc = MD_ENOMEM;
	return rc;
}

void config_free(struct config *c)
{
	free(c->store);
	free(c->socket);
	free(c->socket_group);
	free(c->hub);
	free(c->token_file);
	free(c->git_credentials);
	free(c->http);
	free(c->upstream);
	free(c->ca_file);
	free(c->http_token_file);
	free(c->policy);
	free(c->size_classes);
	free(c->config_path);
	memset(c, 0, sizeof *c);
}
