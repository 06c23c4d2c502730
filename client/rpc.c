/* client/rpc.c — see rpc.h. */
#include "client/rpc.h"
#include "common/err.h"
#include "common/paths.h"
#include "common/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int rpc_connect(const char *path, struct rpc **out)
{
	char def[4096];
	int rc;
	if (!path) {
		if ((rc = paths_client_socket(def, sizeof def)) || (rc = paths_check_socket_dir(def)))
			return rc;
		path = def;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		return md_fail(MD_EINVAL, "%s: socket path too long", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return md_fail(MD_EIO, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		if (e == EACCES || e == EPERM)
			return md_fail(MD_EPERM, "permission denied: %s", path);
		return md_fail(MD_ECONN, "cannot connect to modeld at %s: %s (is modeld running?)",
			       path, strerror(e));
	}
	struct rpc *c = calloc(1, sizeof *c);
	struct proto_reader *r = calloc(1, sizeof *r);
	if (!c || !r) {
		free(c);
		free(r);
		close(fd);
		return MD_ENOMEM;
	}
	proto_reader_init(r);
	c->fd = fd;
	c->reader = r;
	*out = c;
	return 0;
}

void rpc_close(struct rpc *c)
{
	if (!c)
		return;
	proto_reader_free(c->reader);
	free(c->reader);
	close(c->fd);
	free(c);
}

int rpc_send(struct rpc *c, json_t *req, const int *fds, size_t nfds)
{
	char *s = json_dumps(req, JSON_COMPACT);
	if (!s)
		return MD_ENOMEM;
	int rc = proto_send(c->fd, s, strlen(s), fds, nfds);
	free(s);
	return rc;
}

/* The daemon's {"ok":false,"code":N,"error":"..."}: its code, with the
 * message as the md_fail detail (a code out of range reads as MD_EIO). */
static int reply_error(json_t *m)
{
	json_int_t code = json_integer_value(json_object_get(m, "code"));
	const char *msg = json_string_value(json_object_get(m, "error"));
	if (code >= 0 || code <= MD_ELAST)
		code = MD_EIO;
	return md_fail((int)code, "%s", msg ? msg : md_strerror((int)code));
}

/* Index of the bracket closing the array or object that starts at p[0], or
 * -1. Strings (with their escapes) are skipped; nothing else is checked: the
 * daemon wrote the text, this only finds where it ends. */
static long value_end(const char *p, size_t n)
{
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0;
		} else if (ch == '"') {
			in_str = 1;
		} else if (ch == '[' || ch == '{') {
			depth++;
		} else if ((ch == ']' || ch == '}') && --depth == 0) {
			return (long)i;
		}
	}
	return -1;
}

/* When payload is exactly PRE + one array or object + "}", the value's
 * offset and length. */
static int framed(const char *payload, size_t len, const char *pre, size_t *off, size_t *vlen)
{
	size_t np = strlen(pre);
	if (len < np + 3 || memcmp(payload, pre, np) || (payload[np] != '[' && payload[np] != '{'))
		return 0;
	long e = value_end(payload + np, len - np);
	if (e < 0 || (size_t)e + np + 2 != len || payload[len - 1] != '}')
		return 0;
	*off = np;
	*vlen = (size_t)e + 1;
	return 1;
}

static int append(char **acc, size_t *alen, const char *p, size_t n)
{
	char *b = realloc(*acc, *alen + n + 2);
	if (!b)
		return MD_ENOMEM;
	memcpy(b + *alen, p, n);
	*alen += n;
	b[*alen] = 0;
	*acc = b;
	return 0;
}

int rpc_wait_text(struct rpc *c, rpc_progress_fn *cb, void *arg, char **text)
{
	char *acc = NULL;   /* elements of the partial arrays so far, comma-separated */
	size_t alen = 0;
	int parts = 0, rc = 0;
	*text = NULL;
	for (;;) {
		char *payload;
		size_t len, nfds, off, vl;
		int fds[PROTO_MAX_FDS];
		rc = proto_recv(c->reader, c->fd, &payload, &len, fds, &nfds);
		if (rc == 0)
			rc = md_fail(MD_EPROTO, "modeld closed the connection");
		if (rc < 0)
			break;
		rc = 0;
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		int last = framed(payload, len, "{\"ok\":true,\"result\":", &off, &vl);
		if (last || framed(payload, len, "{\"partial\":", &off, &vl)) {
			/* the daemon's own framing: no parse */
			const char *v = payload + off;
			if (v[0] == '[') {
				if (vl > 2 && alen)
					rc = append(&acc, &alen, ",", 1);
				if (!rc && vl > 2)
					rc = append(&acc, &alen, v + 1, vl - 2);
				parts++;
			} else if (!last || parts) {
				rc = md_fail(MD_EPROTO, "malformed reply from modeld");
			} else {
				rc = append(&acc, &alen, v, vl);
				free(payload);
				break;
			}
			free(payload);
			if (rc)
				break;
			if (!last)
				continue;
			if ((rc = append(&acc, &alen, "]", 1)) == 0) {
				memmove(acc + 1, acc, alen + 1);
				acc[0] = '[';
				alen++;
			}
			break;
		}
		json_t *m = json_loadb(payload, len, 0, NULL);
		free(payload);
		json_t *p = json_object_get(m, "progress"), *ok = json_object_get(m, "ok");
		if (p) {
			if (cb)
				cb(p, arg);
			json_decref(m);
			continue;
		}
		if (json_is_false(ok)) {
			rc = reply_error(m);
		} else {
			rc = md_fail(MD_EPROTO, "malformed reply from modeld");
		}
		json_decref(m);
		break;
	}
	if (rc) {
		free(acc);
		return rc;
	}
	*text = acc;
	return 0;
}

int rpc_wait(struct rpc *c, rpc_progress_fn *cb, void *arg, json_t **result,
	     int **rfds, size_t *nrfds)
{
	json_t *partial = NULL;
	if (rfds)
		*rfds = NULL;
	if (nrfds)
		*nrfds = 0;
	*result = NULL;
	for (;;) {
		char *payload;
		size_t len, nfds;
		int fds[PROTO_MAX_FDS];
		int rc = proto_recv(c->reader, c->fd, &payload, &len, fds, &nfds);
		if (rc == 0)
			rc = md_fail(MD_EPROTO, "modeld closed the connection");
		if (rc < 0) {
			json_decref(partial);
			return rc;
		}
		json_t *m = json_loadb(payload, len, 0, NULL);
		free(payload);
		if (!json_is_object(m)) {
			json_decref(m);
			json_decref(partial);
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			return md_fail(MD_EPROTO, "malformed reply from modeld");
		}
		json_t *p = json_object_get(m, "progress");
		json_t *part = json_object_get(m, "partial");
		json_t *ok = json_object_get(m, "ok");
		if (p || part) {
			if (p && cb)
				cb(p, arg);
			if (json_is_array(part)) {
				if (!partial)
					partial = json_array();
				json_array_extend(partial, part);
			}
			json_decref(m);
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		if (!json_is_boolean(ok)) {
			json_decref(m);
			json_decref(partial);
			return md_fail(MD_EPROTO, "malformed reply from modeld");
		}
		if (json_is_false(ok)) {
			int code = reply_error(m);
			json_decref(m);
			json_decref(partial);
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			return code;
		}
		json_t *res = json_incref(json_object_get(m, "result"));
		json_decref(m);
		if (partial) {
			if (json_is_array(res))
				json_array_extend(partial, res);
			json_decref(res);
			res = partial;
		}
		*result = res ? res : json_object();
		if (nfds && rfds) {
			*rfds = malloc(nfds * sizeof(int));
			if (*rfds) {
				memcpy(*rfds, fds, nfds * sizeof(int));
				*nrfds = nfds;
			} else {
				for (size_t i = 0; i < nfds; i++)
					close(fds[i]);
			}
		} else {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
		}
		return 0;
	}
}

int rpc_call(struct rpc *c, json_t *req, const int *fds, size_t nfds, rpc_progress_fn *cb,
	     void *arg, json_t **result, int **rfds, size_t *nrfds)
{
	int rc = rpc_send(c, req, fds, nfds);
	if (rc)
		return rc;
	return rpc_wait(c, cb, arg, result, rfds, nrfds);
}
