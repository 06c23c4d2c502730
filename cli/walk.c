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
			if (!inside(w->root, real)) {
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

int walk_folder(const char *dir, struct walk *w)
{
	memset(w, 0, sizeof *w);
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(dir, real) || stat(real, &st) < 0)
		return md_fail(md_from_errno(errno), "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return md_fail(MD_EINVAL, "%s: not a directory", dir);
	if (!(w->root = strdup(real)))
		return MD_ENOMEM;
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

void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->rel[i]);
	free(w->rel);
	free(w->root);
	memset(w, 0, sizeof *w);
}
