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
	int rc = conv_convert_info(fd, size, ci, p, r, &res);
	if (rc == MD_ENOMEM || rc == MD_ENOSPC || rc == MD_ETOOBIG)
		goto out;
	if (rc)
		fuzz_die("conv_convert_info", rc);
	struct pack *pk;
	struct recipe *rp;
	if ((rc = pack_open(p, PACK_VERIFY_DATA, &pk)))
		fuzz_die("pack_open", rc);
	if ((rc = recipe_open(r, res.pack_size, &rp)))
		fuzz_die("recipe_open", rc);
	if ((rc = recipe_verify(rp, p)))
		fuzz_die("recipe_verify", rc);
	recipe_close(rp);
	pack_close(pk);
out:
	close(p);
	close(r);
}

#endif
