/* registry/stindex.c — see stindex.h. */
#include "registry/stindex.h"
#include "converters/pack.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int stindex_is_index(const char *relpath)
{
	const char *base = strrchr(relpath, '/');
	base = base ? base + 1 : relpath;
	size_t n = strlen(base), k = strlen(STINDEX_SUFFIX);
	return n >= k && !strcmp(base + n - k, STINDEX_SUFFIX);
}

/* Untrusted text for a one-line message: control bytes shown as '?',
 * at most 200 bytes. */
static const char *shown(const char *s, char *buf, size_t n)
{
	size_t i = 0;
	for (; s[i] && i + 4 < n && i < 200; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i])
		buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
	buf[i] = 0;
	return buf;
}

/* The index file's JSON object, its weight_map in *wm (borrowed from it). */
static int load_index(const json_t *f, const char *path, stindex_open_fn open_blob, void *arg,
		      json_t **root, json_t **wm)
{
	json_int_t size = json_integer_value(json_object_get(f, "size"));
	const char *blob = json_string_value(json_object_get(f, "blob"));
	if (!blob)
		return md_fail(MD_EREFUSED, "%s: not a JSON safetensors index", path);
	if (size < 0 || (uint64_t)size > STINDEX_MAX_BYTES)
		return md_fail(MD_ETOOBIG, "%s: index of %lld bytes refused (at most %u MiB)", path,
			       (long long)size, STINDEX_MAX_BYTES >> 20);
	int fd = open_blob(arg, f, blob);
	if (fd < 0)
		return md_fail_prefix(fd, path);
	char *buf = malloc((size_t)size + 1);
	if (!buf) {
		close(fd);
		return MD_ENOMEM;
	}
	ssize_t got = util_pread_full(fd, buf, (size_t)size, 0);
	close(fd);
	if (got != (ssize_t)size) {
		free(buf);
		return md_fail(MD_EIO, "%s: short read of the staged index", path);
	}
	json_error_t e;
	*root = json_loadb(buf, (size_t)size, JSON_REJECT_DUPLICATES, &e);
	free(buf);
	char m[256];
	if (!*root)
		return md_fail(MD_EREFUSED, "%s: not a valid JSON index: %s (line %d)", path,
			       shown(e.text, m, sizeof m), e.line);
	*wm = json_object_get(*root, "weight_map");
	if (!json_is_object(*root) || !json_is_object(*wm)) {
		json_decref(*root);
		*root = NULL;
		return md_fail(MD_EREFUSED, "%s: not a JSON object with a \"weight_map\" object", path);
	}
	return 0;
}

/* dir (the index's folder with its '/', or "") + shard name into out;
 * 0 or MD_EREFUSED naming the index and the tensor. */
static int shard_path(const char *index, size_t dirlen, const char *tensor, const json_t *v,
		      char *out, size_t n)
{
	const char *s = json_string_value(v);
	char a[256], b[256];
	if (!s)
		return md_fail(MD_EREFUSED, "%s: tensor %s: shard is not a string", index,
			       shown(tensor, a, sizeof a));
	if ((size_t)snprintf(out, n, "%.*s%s", (int)dirlen, index, s) >= n || !*s ||
	    strchr(s, '/') || util_check_relpath(out))
		return md_fail(MD_EREFUSED, "%s: tensor %s: shard path '%s' refused (a file name "
			       "in the index's folder expected)", index, shown(tensor, a, sizeof a),
			       shown(s, b, sizeof b));
	return 0;
}

static int check_index(const json_t *files, const json_t *byname, const json_t *fi,
		       stindex_open_fn open_blob, void *arg)
{
	const char *index = json_string_value(json_object_get(fi, "path"));
	const char *slash = strrchr(index, '/');
	size_t dirlen = slash ? (size_t)(slash - index) + 1 : 0;
	json_t *root = NULL, *wm, *v, *f;
	int rc = load_index(fi, index, open_blob, arg, &root, &wm);
	if (rc)
		return rc;
	json_t *present = json_object(), *seen = json_object();
	const char *name;
	char sp[1100], a[256], b[256];
	if (!present || !seen)
		rc = MD_ENOMEM;
	/* every shard path safe; note the shards this import has */
	json_object_foreach(wm, name, v) {
		if (rc || (rc = shard_path(index, dirlen, name, v, sp, sizeof sp)))
			break;
		if (json_object_get(byname, sp) && json_object_set_new(present, sp, json_true()))
			rc = MD_ENOMEM;
	}
	/* the shards' tensors, in path order: each in one shard, the one the
	 * index names when it names one */
	size_t i;
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		if (rc)
			break;
		if (!json_object_get(present, path))
			continue;
		const char *fmt = json_string_value(json_object_get(f, "format"));
		const char *pack = json_string_value(json_object_get(f, "pack"));
		if (!pack || !fmt || strcmp(fmt, "safetensors")) {
			rc = md_fail(MD_EREFUSED, "%s: shard %s is not a safetensors weight file", index,
				     path);
			break;
		}
		int fd = open_blob(arg, f, pack);
		struct pack *p;
		if (fd < 0) {
			rc = md_fail_prefix(fd, path);
			break;
		}
		rc = pack_open(fd, PACK_SKIP_META, &p);
		close(fd);
		if (rc) {
			rc = md_fail_prefix(rc, path);
			break;
		}
		for (size_t k = 0; k < pack_count(p) && !rc; k++) {
			const char *t = pack_tensor(p, k)->name;
			const char *prev = json_string_value(json_object_get(seen, t));
			v = json_object_get(wm, t);
			if (prev)
				rc = md_fail(MD_EREFUSED, "%s: tensor %s: in both %s and %s", index,
					     shown(t, a, sizeof a), prev, path);
			else if (v && shard_path(index, dirlen, t, v, sp, sizeof sp) == 0 &&
				 strcmp(sp, path))
				rc = md_fail(MD_EREFUSED, "%s: tensor %s: in %s, but the index maps it "
					     "to %s", index, shown(t, a, sizeof a), path,
					     shown(sp, b, sizeof b));
			else if (json_object_set_new(seen, t, json_string(path)))
				rc = MD_ENOMEM;
		}
		pack_close(p);
	}
	/* every tensor mapped to a shard of the import is in it */
	json_object_foreach(wm, name, v) {
		if (rc)
			break;
		if (shard_path(index, dirlen, name, v, sp, sizeof sp) == 0 &&
		    json_object_get(present, sp) && !json_object_get(seen, name))
			rc = md_fail(MD_EREFUSED, "%s: tensor %s: not in %s", index,
				     shown(name, a, sizeof a), sp);
	}
	json_decref(present);
	json_decref(seen);
	json_decref(root);
	return rc;
}

int stindex_check(const json_t *files, stindex_open_fn open_blob, void *arg)
{
	json_t *byname = NULL, *f;
	size_t i;
	int rc = 0;
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		if (!path || !stindex_is_index(path))
			continue;
		if (!byname) {   /* built once, only for an import that has an index */
			size_t k;
			json_t *g;
			if (!(byname = json_object()))
				return MD_ENOMEM;
			json_array_foreach(files, k, g)
				if (json_object_set(byname, json_string_value(json_object_get(g, "path")),
						    g)) {
					json_decref(byname);
					return MD_ENOMEM;
				}
		}
		if ((rc = check_index(files, byname, f, open_blob, arg)))
			break;
	}
	json_decref(byname);
	return rc;
}
