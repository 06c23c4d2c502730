/*
 * common/err.h — error codes shared by every module, daemon and client.
 *
 * Convention (DESIGN 7): a module function returns 0 or a negative MD_E*
 * code. When it fails it may also leave a one-line detail for the calling
 * thread with md_fail(); md_errmsg() returns it. The detail names the thing
 * at fault ("config.json: truncated"), the code says what kind of failure.
 */
#ifndef MD_ERR_H
#define MD_ERR_H

enum {
	MD_OK = 0,
	MD_EINVAL = -1,     /* bad argument or bad input from the caller */
	MD_ENOENT = -2,     /* no such model, revision, file or job */
	MD_EEXIST = -3,     /* already exists */
	MD_EIO = -4,        /* I/O error on a local file */
	MD_ENOMEM = -5,     /* out of memory */
	MD_EPERM = -6,      /* permission denied */
	MD_ECORRUPT = -7,   /* data does not match its digest or its format */
	MD_EPROTO = -8,     /* malformed or unexpected protocol message */
	MD_EBUSY = -9,      /* resource in use */
	MD_ECANCELED = -10, /* operation canceled */
	MD_ENOSPC = -11,    /* no space left on the store's filesystem */
	MD_EDB = -12,       /* catalog (LMDB) failure */
	MD_ENET = -13,      /* network or remote server failure */
	MD_EUNSUP = -14,    /* unsupported format, version or feature */
	MD_ETOOBIG = -15,   /* a hard size cap was exceeded */
	MD_EREFUSED = -16,  /* untrusted input refused (hostile or disallowed) */
	MD_EAUTH = -17,     /* authentication required or refused by a remote */
	MD_ECONN = -18,     /* cannot connect to the daemon */
	MD_ELAST = -19
};

/* Static text for a code; never NULL. */
const char *md_strerror(int code);

/*
 * Record a printf-style detail for this thread and return code, so that
 * `return md_fail(MD_EIO, "%s: %s", path, strerror(errno));` reads naturally.
 * An argument may be md_errmsg()'s text: the detail is formatted into a copy
 * before it replaces the old one.
 */
int md_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current thread's detail with "prefix: ". Returns code. */
int md_fail_prefix(int code, const char *prefix);

/*
 * The calling thread's last detail, or md_strerror(code) when none was set
 * since md_clearerr(). Borrowed: valid until the thread's next md_fail.
 */
const char *md_errmsg(int code);
void md_clearerr(void);

/* Map an errno value to an MD_E* code. */
int md_from_errno(int e);

#endif
