/* Shared by the libFuzzer harnesses: inputs reach the parsers through a
 * memfd, exactly as untrusted files do (pread on an fd). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "converters/convert.h"
#include "converters/export.h"
#include <sys/stat.h>
#include "converters/pack.h"
#include "converters/recipe.h"

static int fuzz_memfd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && util_write_all(fd, data, size))
		abort();
	return fd;
}

static void fuzz_die(const char *what, int rc)
{
	fprintf(stderr, "fuzz: %s: %s\n", what, md_errmsg(rc));
	abort();
}

/* An accepted file must convert, give a valid pack and a recipe that
 * reproduces it bit-exactly: anything else is a bug, so abort. */
static void fuzz_convert_accepted(int fd, uint64_t size, const struct conv_info *ci)
{
	int p = memfd_create("pack", MFD_CLOEXEC), r = memfd_create("recipe", MFD_CLOEXEC);
	struct conv_result res;
	int rc = conv_convert_info(fd, size, ci, NULL, p, r, &res);
	if (rc == MD_ENOMEM || rc == MD_ENOSPC || rc == MD_ETOOBIG)
		goto out;
	if (rc)
		fuzz_die("conv_convert_info", rc);
	struct pack *pk;
	struct recipe *rp;
	if ((rc = pack_open(p, PACK_VERIFY_DATA, &pk)))
		fuzz_die("pack_open", rc);
	if ((rc = recipe_open(r, &res.pack_size, 1, &rp)))
		fuzz_die("recipe_open", rc);
	if ((rc = recipe_verify(rp, (struct recipe_packs){ &p, 1 })))
		fuzz_die("recipe_verify", rc);
	/* an export we produce must be accepted by our own strict readers,
	 * with the same tensors */
	for (int k = 0; k < 2; k++) {
		int o = memfd_create("export", MFD_CLOEXEC);
		rc = k ? export_gguf(pk, &p, o) : export_safetensors(pk, &p, o);
		if (rc == 0) {
			struct stat st;
			struct conv_info e = { 0 };
			if (fstat(o, &st))
				abort();
			const struct converter *cv = k ? &conv_gguf : &conv_safetensors;
			if ((rc = cv->parse(o, (uint64_t)st.st_size, &e)))
				fuzz_die(k ? "re-parse of the GGUF export" :
					 "re-parse of the safetensors export", rc);
			if (e.n != pack_count(pk))
				fuzz_die("export lost tensors", MD_ECORRUPT);
			for (size_t i = 0; i < e.n; i++) {
				const struct pack_tensor *t = pack_find(pk, e.t[i].name);
				if (!t || t->length != e.t[i].len)
					fuzz_die("export changed a tensor", MD_ECORRUPT);
			}
			conv_info_free(&e);
		} else if (rc != MD_EUNSUP && rc != MD_ENOMEM) {
			fuzz_die(k ? "export_gguf" : "export_safetensors", rc);
		}
		close(o);
	}
	recipe_close(rp);
	pack_close(pk);
out:
	close(p);
	close(r);
}

#endif
