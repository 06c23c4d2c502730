/* daemon/worker.c — see worker.h. */
#include "daemon/worker.h"
#include "converters/converter.h"
#include "registry/ingest.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char worker_path[PATH_MAX];

int worker_init(void)
{
	const char *env = getenv("MODELD_WORKER");
	if (env && *env) {
		snprintf(worker_path, sizeof worker_path, "%s", env);
	} else {
		char self[PATH_MAX - 32];
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0)
			return md_fail(MD_ENOENT, "cannot find our own executable");
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = 0;
		snprintf(worker_path, sizeof worker_path, "%s/modeld-worker", self);
	}
	if (access(worker_path, X_OK) < 0)
		return md_fail(MD_ENOENT, "%s: %s (the converter worker is needed to import "
			       "weight files)", worker_path, strerror(errno));
	return 0;
}

/* Run modeld-worker with argv and fds[k] as descriptor 3+k (-1: none);
 * its JSON result in *info. path names the file in details. */
static int run(char *const argv[], const int fds[3], const char *path, _Atomic int *cancel,
	       json_t **info)
{
	int out[2];
	*info = NULL;
	if (!worker_path[0] && worker_init())
		return MD_ENOENT;
	if (pipe2(out, O_CLOEXEC) < 0)
		return md_fail(MD_EIO, "pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	/* dup2 clears close-on-exec on the targets; the originals stay closed */
	for (int k = 0; k < 3; k++)
		if (fds[k] >= 0)
			posix_spawn_file_actions_adddup2(&fa, fds[k], 3 + k);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	char parent[40];
	snprintf(parent, sizeof parent, "MODELD_PARENT=%ld", (long)getpid());
	char *envp[] = { "LC_ALL=C", parent, NULL }; /* nothing else of ours leaks in */
	pid_t pid;
	int rc = posix_spawn(&pid, worker_path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	if (rc) {
		close(out[0]);
		return md_fail(MD_EIO, "%s: cannot start %s: %s", path, worker_path, strerror(rc));
	}
	char *buf = malloc(WORKER_MAX_OUTPUT + 1);
	size_t len = 0;
	int killed = 0;
	while (buf) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int r = poll(&p, 1, 200);
		if (cancel && atomic_load(cancel) && !killed) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (r <= 0)
			continue;
		ssize_t n = read(out[0], buf + len, WORKER_MAX_OUTPUT - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == WORKER_MAX_OUTPUT)
			break;
	}
	close(out[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!buf)
		return MD_ENOMEM;
	buf[len] = 0;
	if (killed) {
		free(buf);
		return md_fail(MD_ECANCELED, "%s: canceled", path);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(buf);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
			return md_fail(MD_ECORRUPT, "%s: the file shrank while being converted", path);
		if (WIFSIGNALED(status))
			return md_fail(MD_EIO, "%s: converter worker killed by signal %d", path,
				       WTERMSIG(status));
		return md_fail(MD_EIO, "%s: converter worker failed (exit %d)", path,
			       WEXITSTATUS(status));
	}
	json_t *j = json_loads(buf, 0, NULL);
	free(buf);
	if (!json_is_object(j)) {
		json_decref(j);
		return md_fail(MD_EIO, "%s: converter worker gave no result", path);
	}
	if (!json_is_true(json_object_get(j, "ok"))) {
		json_int_t code = json_integer_value(json_object_get(j, "code"));
		const char *msg = json_string_value(json_object_get(j, "error"));
		if (code >= 0 || code <= MD_ELAST)
			code = MD_EIO;
		md_fail((int)code, "%s", msg ? msg : md_strerror((int)code));
		json_decref(j);
		return (int)code;
	}
	*info = j;
	return 0;
}

int worker_convert(int src_fd, uint64_t size, const char *path, const char *sha256,
		   int pack_fd, int recipe_fd, _Atomic int *cancel, json_t **info)
{
	(void)size;
	char *argv[] = { "modeld-worker", "convert", (char *)path, (char *)sha256, NULL };
	return run(argv, (int[3]){ src_fd, pack_fd, recipe_fd }, path, cancel, info);
}

int worker_plan(int head_fd, uint64_t size, const char *path, _Atomic int *cancel,
		struct xfer_seg **segs, size_t *nseg, uint64_t *placed_size)
{
	char sz[24];
	json_t *j;
	snprintf(sz, sizeof sz, "%" PRIu64, size);
	char *argv[] = { "modeld-worker", "plan", (char *)path, sz, NULL };
	*segs = NULL;
	*nseg = 0;
	int rc = run(argv, (int[3]){ head_fd, -1, -1 }, path, cancel, &j);
	if (rc)
		return rc;
	json_t *a = json_object_get(j, "segments"), *e;
	json_int_t ps = json_integer_value(json_object_get(j, "placed_size"));
	size_t n = json_array_size(a), i;
	struct xfer_seg *v = n ? calloc(n, sizeof *v) : NULL;
	if (n && !v)
		rc = MD_ENOMEM;
	json_array_foreach(a, i, e) {
		json_int_t x[3];
		if (rc || json_unpack(e, "[III!]", &x[0], &x[1], &x[2]) || x[0] < 0 || x[1] < 0 ||
		    x[2] <= 0) {
			rc = rc ? rc : md_fail(MD_EIO, "%s: malformed plan from the worker", path);
			break;
		}
		v[i] = (struct xfer_seg){ (uint64_t)x[0], (uint64_t)x[1], (uint64_t)x[2] };
	}
	if (!rc && (!n || ps <= 0))
		rc = md_fail(MD_EIO, "%s: malformed plan from the worker", path);
	json_decref(j);
	if (rc) {
		free(v);
		return rc;
	}
	/* xfer checks the pieces (xfer_item.place) before it writes a byte */
	*segs = v;
	*nseg = n;
	*placed_size = (uint64_t)ps;
	return 0;
}

int worker_convert_placed(int head_fd, int placed_fd, uint64_t size, const char *path,
			  const char *sha256, int recipe_fd, _Atomic int *cancel, json_t **info)
{
	char sz[24];
	snprintf(sz, sizeof sz, "%" PRIu64, size);
	char *argv[] = { "modeld-worker", "convert-placed", (char *)path, sz, (char *)sha256, NULL };
	return run(argv, (int[3]){ head_fd, placed_fd, recipe_fd }, path, cancel, info);
}

/* The same test the worker's conv_convert makes (conv_find_fd: the same
 * head bytes), so that no weight file is passed over as a plain file. A
 * file we cannot read is claimed: the conversion then fails on it. A
 * tentative claim (any zip: torch.load reads one under any name) goes to
 * the worker too, whose probe answers MD_EUNSUP for what is not a torch
 * checkpoint: then it is stored as it is. */
static int claims(void *arg, int fd, const char *relpath)
{
	const struct converter *cv;
	(void)arg;
	return conv_find_fd(fd, relpath, &cv, NULL) != 0 || cv != NULL;
}

static int convert(void *arg, int src_fd, uint64_t size, const char *relpath,
		   const char *sha256, int pack_fd, int recipe_fd, json_t **info)
{
	return worker_convert(src_fd, size, relpath, sha256, pack_fd, recipe_fd, arg, info);
}

static int convert_placed(void *arg, int head_fd, int placed_fd, uint64_t size,
			  const char *relpath, const char *sha256, int recipe_fd, json_t **info)
{
	return worker_convert_placed(head_fd, placed_fd, size, relpath, sha256, recipe_fd, arg,
				     info);
}

void worker_converter(struct ingest_converter *conv, _Atomic int *cancel)
{
	conv->claims = claims;
	conv->convert = convert;
	conv->convert_placed = convert_placed;
	conv->arg = (void *)cancel;
}
