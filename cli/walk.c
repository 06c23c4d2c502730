/* cli/walk.c — see walk.h. */
#include "cli/walk.h"
#include "common/err.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int add(struct walk *w, const char *rel)
{
	if (w->n >= WALK_MAX_FILES)
		return md_fail(MD_ETOOBIG, "more than %d files", WALK_MAX_FILES);
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		char **nr = realloc(w->rel, nc * sizeof *nr);
		if (!nr)
			return MD_ENOMEM;
		w->rel = nr;
		w->cap = nc;
	}
	if (!(w->rel[w->n] = strdup(rel)))
		return MD_ENOMEM;
	w->n++;
	return 0;
}

static int inside(const char *root, const char *p)
{
	size_t n = strlen(root);
	return !strncmp(root, p, n) && (p[n] == '/' || p[n] == 0);
}

static int walk_dir(struct walk *w, const char *rel, int depth)
{
	char abs[PATH_MAX + 2];
	if (depth > WALK_MAX_DEPTH)
		return md_fail(MD_ETOOBIG, "%s: nested too deep", rel);
	snprintf(abs, sizeof abs, "%s%s%s", w->root, *rel ? "/" : "", rel);
	DIR *d = opendir(abs);
	if (!d)
		return md_fail(md_from_errno(errno), "%s: %s", *rel ? rel : abs, strerror(errno));
	struct dirent *e;
	int rc = 0;
	while (!rc && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char r[PATH_MAX], p[PATH_MAX * 2];
		if ((size_t)snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= sizeof r) {
			rc = md_fail(MD_ETOOBIG, "%s/%s: path too long", rel, e->d_name);
			break;
		}
		if (!strcmp(r, ".git") || !strcmp(r, ".cache/huggingface"))
			continue;
		snprintf(p, sizeof p, "%s/%s", w->root, r);
		struct stat st;
		if (lstat(p, &st) < 0) {
			rc = md_fail(md_from_errno(errno), "%s: %s", r, strerror(errno));
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			char real[PATH_MAX];
			if (!realpath(p, real)) {
				rc = md_fail(MD_EINVAL, "%s: broken symlink", r);
				break;
			}
			if (!inside(w->allow ? w->allow : w->root, real)) {
				rc = md_fail(MD_EREFUSED, "%s: symlink points outside the folder", r);
				break;
			}
			if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
				rc = md_fail(MD_EINVAL, "%s: symlink to something that is not a file", r);
				break;
			}
		}
		if (S_ISDIR(st.st_mode)) {
			rc = walk_dir(w, r, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			if ((rc = util_check_relpath(r)))
				break;
			if (access(p, R_OK) < 0) {
				rc = md_fail(MD_EPERM, "%s: %s", r, strerror(errno));
				break;
			}
			rc = add(w, r);
		} else {
			rc = md_fail(MD_EINVAL, "%s: not a regular file (%s)", r,
				     S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket"
								      : "a device");
		}
	}
	closedir(d);
	return rc;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_root(const char *dir, const char *allow, struct walk *w)
{
	memset(w, 0, sizeof *w);
	if (allow && !(w->allow = strdup(allow)))
		return MD_ENOMEM;
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(dir, real) || stat(real, &st) < 0) {
		walk_free(w);
		return md_fail(md_from_errno(errno), "%s: %s", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode)) {
		walk_free(w);
		return md_fail(MD_EINVAL, "%s: not a directory", dir);
	}
	if (!(w->root = strdup(real))) {
		walk_free(w);
		return MD_ENOMEM;
	}
	int rc = walk_dir(w, "", 0);
	if (!rc && w->n == 0)
		rc = md_fail(MD_EINVAL, "%s: no files to import", dir);
	if (rc) {
		walk_free(w);
		return rc;
	}
	qsort(w->rel, w->n, sizeof *w->rel, cmp);
	return 0;
}

int walk_folder(const char *dir, struct walk *w)
{
	return walk_root(dir, NULL, w);
}

void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->rel[i]);
	free(w->rel);
	free(w->root);
	free(w->allow);
	memset(w, 0, sizeof *w);
}

static int is_dir(const char *base, const char *sub)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", base, sub);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int walk_is_hf_cache(const char *dir)
{
	return is_dir(dir, "blobs") && is_dir(dir, "snapshots");
}

int walk_hf_cache(const char *dir, struct walk *w, char *name, size_t namelen, char rev[41])
{
	char real[PATH_MAX], p[PATH_MAX + 64];
	memset(w, 0, sizeof *w);
	if (!realpath(dir, real))
		return md_fail(md_from_errno(errno), "%s: %s", dir, strerror(errno));
	/* the name: models--ORG--NAME */
	const char *base = strrchr(real, '/');
	base = base ? base + 1 : real;
	if (strncmp(base, "models--", 8))
		return md_fail(MD_EINVAL, "%s: a hub cache folder is named models--ORG--NAME", dir);
	const char *org = base + 8, *sep = strstr(org, "--");
	if (sep)
		snprintf(name, namelen, "%.*s/%s", (int)(sep - org), org, sep + 2);
	else
		snprintf(name, namelen, "local/%s", org);
	int rc = util_check_model_name(name);
	if (rc)
		return md_fail(MD_EINVAL, "%s: %s (use --name)", base, md_errmsg(rc));
	/* the revision: refs/main, else the only snapshot */
	snprintf(p, sizeof p, "%s/refs/main", real);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	rev[0] = 0;
	if (fd >= 0) {
		char b[64];
		ssize_t n = util_read_full(fd, b, sizeof b - 1);
		close(fd);
		while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == ' '))
			n--;
		if (n != 40 || (b[40] = 0, !util_is_hex(b, 40)))
			return md_fail(MD_EINVAL, "%s/refs/main: not a 40-hex commit", base);
		memcpy(rev, b, 41);
	} else {
		snprintf(p, sizeof p, "%s/snapshots", real);
		DIR *d = opendir(p);
		struct dirent *e;
		int count = 0;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			count++;
			if (strlen(e->d_name) == 40 && util_is_hex(e->d_name, 40))
				memcpy(rev, e->d_name, 41);
		}
		if (d)
			closedir(d);
		if (count != 1 || !rev[0])
			return md_fail(MD_EINVAL, "%s: no refs/main and %d snapshots: import one "
						  "snapshots/REV folder with --name instead", base, count);
	}
	snprintf(p, sizeof p, "%s/snapshots/%s", real, rev);
	/* the snapshot's symlinks point into ../../blobs: allow the cache folder */
	return walk_root(p, real, w);
}
