/* cli/cmd_weights.c — tensors REF; export REF --format safetensors|gguf -o DIR. */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cmd_tensors(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("tensors takes one ORG/NAME[@REV]");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:s}", "op", "tensors", "ref", c->argv[0]), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
		json_decref(res);
		return EXIT_OK;
	}
	printf("%-48s %-8s %-22s %12s %12s %s\n", "NAME", "DTYPE", "SHAPE", "BYTES", "OFFSET", "FILE");
	size_t i;
	json_t *t;
	json_array_foreach(res, i, t) {
		char shape[64] = "[", *s = shape + 1;
		size_t k;
		json_t *dim;
		json_array_foreach(json_object_get(t, "shape"), k, dim) {
			int w = snprintf(s, (size_t)(shape + sizeof shape - s), "%s%lld", k ? "," : "",
					 (long long)json_integer_value(dim));
			if (w < 0 || s + w >= shape + sizeof shape - 2)
				break;
			s += w;
		}
		snprintf(s, (size_t)(shape + sizeof shape - s), "]");
		/* names come from the weight files' headers: untrusted text */
		char name[1024];
		printf("%-48s %-8s %-22s %12lld %12lld %s%s\n",
		       cli_safe(json_string_value(json_object_get(t, "name")), name, sizeof name),
		       json_string_value(json_object_get(t, "dtype")), shape,
		       (long long)json_integer_value(json_object_get(t, "bytes")),
		       (long long)json_integer_value(json_object_get(t, "offset")),
		       json_string_value(json_object_get(t, "file")),
		       json_object_get(t, "alias") ? " (tied)" : "");
	}
	json_decref(res);
	return EXIT_OK;
}

/* "dir/model.bin" -> "dir/model.gguf" (the stem with the new extension). */
static void out_name(const char *path, const char *ext, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	size_t stem = dot ? (size_t)(dot - path) : strlen(path);
	snprintf(out, n, "%.*s.%s", (int)stem, path, ext);
}

/*
 * The output name of each converted file (modelctl(1)): the stem with the
 * format's extension, unique within one export. A file that already has
 * the extension keeps its name; the others, in path order, take the stem
 * name when it is free, else their whole name with the extension added
 * ("model.bin" -> "model.bin.safetensors" next to "model.safetensors").
 * *names: one relative name per file, in the order of files. 0 or
 * MD_EEXIST naming the file that has no free name, MD_ENOMEM.
 */
static int out_names(json_t *files, const char *ext, json_t **names)
{
	size_t n = json_array_size(files), i;
	json_t *taken = json_object(), *out = json_array(), *f;
	int rc = taken && out ? 0 : MD_ENOMEM;
	for (i = 0; i < n && !rc; i++)
		if (json_array_append_new(out, json_null()))
			rc = MD_ENOMEM;
	for (int pass = 0; pass < 2 && !rc; pass++) {
		json_array_foreach(files, i, f) {
			const char *path = json_string_value(json_object_get(f, "path"));
			char stem[4200], full[4200];
			out_name(path, ext, stem, sizeof stem);
			int same = !strcmp(stem, path);   /* already has the extension */
			if (same != !pass)
				continue;
			snprintf(full, sizeof full, "%s.%s", path, ext);
			const char *pick = !json_object_get(taken, stem) ? stem
					 : !same && !json_object_get(taken, full) ? full : NULL;
			if (!pick) {
				rc = md_fail(MD_EEXIST, "%s: no free output name (%s%s%s taken by "
					     "another file of the export)", path, stem,
					     same ? "" : " and ", same ? "" : full);
				break;
			}
			if (json_object_set_new(taken, pick, json_string(path)) ||
			    json_array_set_new(out, i, json_string(pick))) {
				rc = MD_ENOMEM;
				break;
			}
		}
	}
	json_decref(taken);
	if (rc)
		json_decref(out);
	else
		*names = out;
	return rc;
}

/* Move a finished FILE.part to FILE without replacing a FILE that appeared
 * meanwhile (link where the filesystem cannot rename without replacing). */
static int place_output(const char *part, const char *full)
{
	if (renameat2(AT_FDCWD, part, AT_FDCWD, full, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(part, full) < 0)
		return -1;
	unlink(part);
	return 0;
}

static int rmdir_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(p);   /* fails, and keeps it, when something else is in it */
	return 0;
}

/* A failed export removes the folders it created, not only its files: a
 * rerun (or a user's ls) should not find an empty DIR nobody asked to keep. */
static void remove_made_dirs(const char *top)
{
	if (top)
		nftw(top, rmdir_one, 16, FTW_DEPTH | FTW_PHYS);
}

int cmd_export_weights(struct cli *c)
{
	const char *fmt = c->format;
	if (c->argc != 1 || !c->output)
		return cli_usage("export takes ORG/NAME[@REV] --format safetensors|gguf -o DIR");
	if (strcmp(fmt, "safetensors") && strcmp(fmt, "gguf"))
		return cli_usage("--format: want safetensors or gguf");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:s}", "op", "weights", "ref", c->argv[0]), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	json_t *files = json_object_get(res, "files");
	if (!json_array_size(files)) {
		json_decref(res);
		return cli_fail(md_fail(MD_ENOENT, "%s: no converted weight files", c->argv[0]));
	}
	char *made_dir = util_first_missing(c->output);   /* NULL: DIR exists */
	if ((rc = util_mkdir_p(c->output, 0755))) {
		json_decref(res);
		free(made_dir);
		return cli_fail(rc);
	}
	json_t *names;
	if ((rc = out_names(files, fmt, &names))) {
		json_decref(res);
		remove_made_dirs(made_dir);
		free(made_dir);
		return cli_fail(rc);
	}
	size_t n = json_array_size(files);
	int *fds = calloc(n, sizeof *fds);
	json_t *paths = json_array(), *outs = json_array();
	size_t i;
	json_t *f;
	int ret = EXIT_OK;
	json_array_foreach(files, i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		char full[8400];
		snprintf(full, sizeof full, "%s/%s", c->output,
			 json_string_value(json_array_get(names, i)));
		char *slash = strrchr(full, '/');
		if (slash && slash > full + strlen(c->output)) {
			*slash = 0;
			util_mkdir_p(full, 0755);
			*slash = '/';
		}
		/* never overwrite: an existing file is refused, and only files
		 * this export created are removed on failure. Each is written
		 * as FILE.part and renamed when the whole export is done, so a
		 * modelctl killed mid-export leaves no half-written FILE that
		 * the next run would refuse; that run replaces the stale
		 * FILE.part with a new file (a writer still on the old one
		 * keeps its own inode). */
		struct stat sb;
		char part[8500];
		snprintf(part, sizeof part, "%s.part", full);
		int there = lstat(full, &sb) == 0;
		if (there || errno != ENOENT) {
			ret = cli_fail(there
				       ? md_fail(MD_EEXIST, "%s: exists; not overwritten", full)
				       : md_fail(MD_EIO, "%s: %s", full, strerror(errno)));
			n = i;
			break;
		}
		unlink(part);
		fds[i] = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fds[i] < 0) {
			ret = cli_fail(md_fail(MD_EIO, "%s: %s", part, strerror(errno)));
			n = i;
			break;
		}
		json_array_append_new(paths, json_string(path));
		json_array_append_new(outs, json_string(full));
	}
	if (ret == EXIT_OK) {
		json_t *r2;
		req = json_pack("{s:s,s:s,s:s,s:O}", "op", "export_weights", "ref", c->argv[0],
				"format", fmt, "files", paths);
		if ((rc = cli_connect(c)) == 0 && (rc = rpc_send(c->rpc, req, fds, n)) != 0)
			rc = cli_fail(rc);
		json_decref(req);
		if (!rc && !(rc = cli_wait(c, &r2))) {
			if (c->json) {
				cli_print_json(r2);
			} else {
				json_array_foreach(outs, i, f)
					printf("wrote %s\n", json_string_value(f));
			}
			json_decref(r2);
		}
		ret = rc ? EXIT_FAIL : EXIT_OK;
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	size_t placed = 0;
	json_array_foreach(outs, i, f) {
		if (ret != EXIT_OK)
			break;
		char part[8500];
		snprintf(part, sizeof part, "%s.part", json_string_value(f));
		if (place_output(part, json_string_value(f)) < 0)
			ret = cli_fail(errno == EEXIST
				       ? md_fail(MD_EEXIST, "%s: exists; not overwritten",
						 json_string_value(f))
				       : md_fail(MD_EIO, "%s: %s", json_string_value(f),
						 strerror(errno)));
		else
			placed++;
	}
	if (ret != EXIT_OK) {
		json_array_foreach(outs, i, f) {
			char part[8500];
			snprintf(part, sizeof part, "%s.part", json_string_value(f));
			unlink(part);
			if (i < placed)
				unlink(json_string_value(f));
		}
		remove_made_dirs(made_dir);
	}
	free(made_dir);
	free(fds);
	json_decref(paths);
	json_decref(outs);
	json_decref(names);
	json_decref(res);
	return ret;
}

/* export with --format writes weight files; without, a bundle (cmd_bundle.c) */
int cmd_export(struct cli *c)
{
	return c->format ? cmd_export_weights(c) : cmd_export_bundle(c);
}
