/* common/err.c — see err.h. */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[1024];

static const char *const texts[] = {
	"ok",
	"invalid argument",
	"not found",
	"already exists",
	"I/O error",
	"out of memory",
	"permission denied",
	"corrupt data",
	"protocol error",
	"resource busy",
	"canceled",
	"no space left on device",
	"catalog error",
	"network error",
	"unsupported",
	"too large",
	"refused",
	"authentication failed",
	"cannot connect to modeld",
};

const char *md_strerror(int code)
{
	if (code > 0 || code <= MD_ELAST)
		return "unknown error";
	return texts[-code];
}

int md_fail(int code, const char *fmt, ...)
{
	/* format into a copy first: an argument may be md_errmsg()'s own
	 * buffer (a detail wrapped in more context), and vsnprintf's source
	 * and destination must not overlap */
	char tmp[sizeof detail];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	memcpy(detail, tmp, sizeof detail);
	return code;
}

int md_fail_prefix(int code, const char *prefix)
{
	char tmp[sizeof detail];
	const char *cur = detail[0] ? detail : md_strerror(code);
	size_t pl = strnlen(prefix, sizeof tmp / 2);
	memcpy(tmp, prefix, pl);
	tmp[pl] = ':';
	tmp[pl + 1] = ' ';
	size_t cl = strnlen(cur, sizeof tmp - pl - 3);
	memcpy(tmp + pl + 2, cur, cl);
	tmp[pl + 2 + cl] = 0;
	memcpy(detail, tmp, sizeof detail);
	return code;
}

const char *md_errmsg(int code)
{
	return detail[0] ? detail : md_strerror(code);
}

void md_clearerr(void)
{
	detail[0] = 0;
}

int md_from_errno(int e)
{
	switch (e) {
	case 0: return MD_OK;
	case ENOENT: case ENOTDIR: return MD_ENOENT;
	case EEXIST: return MD_EEXIST;
	case ENOMEM: return MD_ENOMEM;
	case EACCES: case EPERM: return MD_EPERM;
	case ENOSPC: case EDQUOT: return MD_ENOSPC;
	case EBUSY: return MD_EBUSY;
	case EINVAL: return MD_EINVAL;
	case ECANCELED: return MD_ECANCELED;
	case EFBIG: case E2BIG: case EOVERFLOW: return MD_ETOOBIG;
	case ECONNREFUSED: return MD_ECONN;
	default: return MD_EIO;
	}
}
