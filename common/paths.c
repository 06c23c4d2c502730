/* common/paths.c — see paths.h. */
#include "common/paths.h"
#include "common/err.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
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
