/*
 * common/lazylib.h — the shared libraries modeld loads on first use.
 *
 * libcurl, libgit2, libarchive and libmicrohttpd (with what they pull in:
 * TLS, Kerberos, LDAP, libxml2, ICU...) cost an idle daemon several MiB of
 * RSS in pages the dynamic loader touches, though most daemons never pull,
 * export or serve HTTP. modeld (lazy/) does not link them: it dlopen()s
 * each one the first time an operation needs it. Every other program
 * (modelctl, the unit tests, the benches) links them as usual.
 *
 * Each operation that uses one of these libraries calls md_lib_need() before
 * its first call into it, so that a missing library fails that operation
 * with one line ("pull: cannot load libcurl.so.4: ...") and the daemon
 * keeps running. Thread-safe.
 */
#ifndef MD_LAZYLIB_H
#define MD_LAZYLIB_H

enum md_lib {
	MD_LIB_CURL,     /* libcurl.so.4: pulls, LFS, hub search */
	MD_LIB_GIT2,     /* libgit2.so.1.5: git+ pulls */
	MD_LIB_ARCHIVE,  /* libarchive.so.13: bundle export and import */
	MD_LIB_MHD,      /* libmicrohttpd.so.12: the HTTP mirror */
	MD_LIB_COUNT
};

/*
 * 0 when LIB can be called: always in a program that links it; in modeld,
 * once it is loaded (the first call loads it; a failed load is tried again
 * on the next call, so installing the package fixes a running daemon).
 * Otherwise MD_EUNSUP, detail "WHAT: cannot load SONAME: <dlerror>".
 */
int md_lib_need(enum md_lib lib, const char *what);

/* How modeld loads them (lazy/lazy.c installs it at start); NULL, the
 * default, means the libraries are linked. */
typedef int md_lib_loader_fn(enum md_lib lib, const char *what);
void md_lib_set_loader(md_lib_loader_fn *fn);

#endif
