/* daemon/sdnotify.c — see sdnotify.h. */
#include "daemon/sdnotify.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_uint(const char *s, unsigned long *out)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int sdn_listen_fds(void)
{
	unsigned long pid, n;
	int rc = 0;
	const char *p = getenv("LISTEN_PID");
	if (p) {
		if (parse_uint(p, &pid) || parse_uint(getenv("LISTEN_FDS"), &n) ||
		    n > 4096 - SDN_LISTEN_FDS_START)
			rc = md_fail(MD_EINVAL, "socket activation: bad LISTEN_PID or LISTEN_FDS");
		else if (pid == (unsigned long)getpid())
			rc = (int)n;
	}
	for (int fd = SDN_LISTEN_FDS_START; rc > 0 && fd < SDN_LISTEN_FDS_START + rc; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
			rc = md_fail(MD_EINVAL, "socket activation: descriptor %d: %s", fd,
				     strerror(errno));
			break;
		}
	}
	/* not for the children (modeld-worker) */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

int sdn_notify(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
		return md_fail(MD_EINVAL, "NOTIFY_SOCKET '%s': want a path or @abstract name", path);
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = 0;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof msg)
		return md_fail(MD_EINVAL, "notify: state too long");
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return md_fail(MD_EIO, "notify: socket: %s", strerror(errno));
	ssize_t w = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	int e = errno;
	close(fd);
	if (w != n)
		return md_fail(MD_EIO, "notify %s: %s", path, w < 0 ? strerror(e) : "short send");
	return 1;
}
