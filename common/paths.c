/* common/paths.c — see paths.h. */
#include "common/paths.h"
#include "common/err.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(char *out, size_t n, int w)
{
	(void)out;
	return (w < 0 || (size_t)w >= n) ? md_fail(MD_ETOOBIG, "default path too long") : 0;
}

static const char *home(void)
{
	const char *h = getenv("HOME");
	if (h && *h)
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw ? pw->pw_dir : "/";
}

int paths_default_socket(char *out, size_t n)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (x && *x)
		return put(out, n, snprintf(out, n, "%s/modeld.sock", x));
	if (getuid() == 0)
		return put(out, n, snprintf(out, n, "%s", PATHS_SYSTEM_SOCKET));
	return put(out, n, snprintf(out, n, "/tmp/modeld-%u/modeld.sock", (unsigned)getuid()));
}

int paths_client_socket(char *out, size_t n)
{
	const char *e = getenv("MODELD_SOCKET");
	struct stat st;
	if (e && *e)
		return put(out, n, snprintf(out, n, "%s", e));
	int rc = paths_default_socket(out, n);
	if (rc == 0 && stat(out, &st) < 0 && stat(PATHS_SYSTEM_SOCKET, &st) == 0)
		return put(out, n, snprintf(out, n, "%s", PATHS_SYSTEM_SOCKET));
	return rc;
}

int paths_default_store(char *out, size_t n)
{
	const char *x = getenv("XDG_DATA_HOME");
	if (x && *x)
		return put(out, n, snprintf(out, n, "%s/modeld", x));
	return put(out, n, snprintf(out, n, "%s/.local/share/modeld", home()));
}

int paths_default_config(char *out, size_t n)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	if (getuid() == 0 && !(x && *x))
		return put(out, n, snprintf(out, n, "/etc/modeld/modeld.conf"));
	if (x && *x)
		return put(out, n, snprintf(out, n, "%s/modeld/modeld.conf", x));
	return put(out, n, snprintf(out, n, "%s/.config/modeld/modeld.conf", home()));
}

int paths_check_socket_dir(const char *sock)
{
	char dir[4096];
	const char *slash = strrchr(sock, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == sock)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - sock), sock);
	struct stat st;
	if (stat(dir, &st) < 0)
		return 0; /* connect or bind says what is wrong */
	if (st.st_uid != getuid() && st.st_uid != 0)
		return md_fail(MD_EPERM, "%s: socket directory owned by uid %u, not by you or root; "
					 "refusing to use it", dir, (unsigned)st.st_uid);
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
		return md_fail(MD_EPERM, "%s: socket directory writable by others (mode %04o); "
					 "refusing to use it", dir, (unsigned)(st.st_mode & 07777));
	return 0;
}
