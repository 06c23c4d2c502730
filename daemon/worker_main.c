/*
 * daemon/worker_main.c — modeld-worker: parses one untrusted weight file in a
 * confined process (daemon/sandbox.h) and converts it to a pack and a recipe.
 *
 *   modeld-worker convert PATH [SHA256]
 *                                 fd 3: the source (read-only)
 *                                 fd 4: the pack, fd 5: the recipe (empty, rw)
 *   SHA256: the source's digest, already verified by the daemon (it is not
 *   hashed again).
 *   modeld-worker plan PATH SIZE  fd 3: the first bytes of a safetensors file
 *                                 of SIZE bytes (at least its header)
 *   -> {"ok":true,"segments":[[src,dst,len],...],"placed_size":N}: where a
 *   pull should write each byte (conv_plan).
 *   modeld-worker convert-placed PATH SIZE SHA256
 *                                 fd 3: the head the plan was made from,
 *                                 fd 4: the file downloaded as planned (rw;
 *                                 it becomes the pack), fd 5: the recipe
 *
 * It can open no path, reach no network and start no program; it sees only
 * those descriptors. One JSON object goes to stdout: {"ok":true, ...conv
 * result...} or {"ok":false,"code":N,"error":"..."}. Exit status 0 when that
 * object was written; anything else (a crash, a seccomp kill) is a failure
 * the daemon reports as such.
 */
#include "converters/convert.h"
#include "converters/pack.h"
#include "daemon/sandbox.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
/* LeakSanitizer stops the world with ptrace and a new process at exit,
 * which the sandbox forbids; the converters' leaks are checked by the unit
 * tests under ASan instead. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static int emit(json_t *o)
{
	int rc = json_dumpf(o, stdout, JSON_COMPACT) == 0 && fputc('\n', stdout) != EOF &&
		 fflush(stdout) == 0;
	json_decref(o);
	return rc ? 0 : 1;
}

static int fail(int code)
{
	return emit(json_pack("{s:b,s:i,s:s}", "ok", 0, "code", code, "error", md_errmsg(code)));
}

static int usage(void)
{
	fprintf(stderr, "usage: modeld-worker convert PATH [SHA256] (fds 3, 4, 5)\n"
			"       modeld-worker plan PATH SIZE (fd 3)\n"
			"       modeld-worker convert-placed PATH SIZE SHA256 (fds 3, 4, 5)\n");
	return 2;
}

static int plan(const char *path, uint64_t size)
{
	struct pack_seg *seg;
	size_t n;
	uint64_t psize;
	int rc = conv_plan(3, size, path, &seg, &n, &psize);
	if (rc)
		return fail(rc);
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("[I,I,I]", (json_int_t)seg[i].src,
						   (json_int_t)seg[i].dst, (json_int_t)seg[i].len));
	free(seg);
	return emit(json_pack("{s:b,s:o,s:I}", "ok", 1, "segments", a, "placed_size",
			      (json_int_t)psize));
}

int main(int argc, char **argv)
{
	uint8_t sha[32];
	uint64_t size = 0;
	int placed = argc == 5 && !strcmp(argv[1], "convert-placed");
	int planning = argc == 4 && !strcmp(argv[1], "plan");
	int known = (argc == 4 && !planning) || placed;
	const char *hex = placed ? argv[4] : argv[3];
	if (placed || planning) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(argv[3], &end, 10);
		if (errno || end == argv[3] || *end)
			return usage();
		size = v;
	} else if (argc < 3 || argc > 4 || strcmp(argv[1], "convert")) {
		return usage();
	}
	if (known && (!util_is_hex(hex, 64) || util_unhex(hex, sha, 32)))
		return usage();
	/* die with modeld: a worker left running after a kill -9 would go on
	 * converting (a placed download in place) under the next modeld's feet */
	const char *parent = getenv("MODELD_PARENT");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (parent && strtol(parent, NULL, 10) != (long)getppid())
		return fail(md_fail(MD_ECANCELED, "%s: modeld is gone", argv[2]));
	struct rlimit core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &core);
	struct stat st;
	if (fstat(3, &st) < 0 || !S_ISREG(st.st_mode))
		return fail(md_fail(MD_EINVAL, "%s: source is not a regular file", argv[2]));
	int sb = sandbox_enter();
	if (sb < 0)
		return fail(sb);
	if (planning)
		return plan(argv[2], size);
	struct conv_result r;
	memset(&r, 0, sizeof r);
	int rc = placed ? conv_convert_placed(3, 4, size, argv[2], sha, 5, &r)
			: conv_convert(3, (uint64_t)st.st_size, argv[2], known ? sha : NULL, 4, 5, &r);
	if (rc)
		return fail(rc);
	json_t *dt = json_object();
	for (size_t i = 0; i < r.ndtypes; i++) {
		/* "GGML_Q4_0" as `tensors` and the serving protocol name it */
		char buf[32];
		const char *n = conv_dtype_key(r.dtypes[i].dtype, buf);
		json_object_set_new(dt, n, json_integer((json_int_t)r.dtypes[i].bytes));
	}
	return emit(json_pack("{s:b,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:i}",
			      "ok", 1, "format", r.format, "tensors", (json_int_t)r.ntensors,
			      "stored", (json_int_t)r.nstored, "params", (json_int_t)r.params,
			      "size", (json_int_t)r.src_size, "sha256", r.src_hex,
			      "pack", r.pack_hex, "recipe", r.recipe_hex,
			      "pack_size", (json_int_t)r.pack_size,
			      "recipe_size", (json_int_t)r.recipe_size,
			      "literal", (json_int_t)r.recipe_literal, "dtype_bytes", dt,
			      "sandbox", sb));
}
