/* lazy/lazy.c — see lazy.h. */
#include "lazy/lazy.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/log.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

int lazy_load(struct lazy_lib *l, char *err, size_t errlen)
{
	if (atomic_load_explicit(&l->loaded, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&mu);
	int rc = 0;
	if (!atomic_load_explicit(&l->loaded, memory_order_relaxed)) {
		/* RTLD_NOW: a missing dependency fails here, not in mid-transfer;
		 * RTLD_LOCAL: its symbols stay out of everyone else's way. Never
		 * closed: libcurl, libgit2 and TLS keep process-wide state. */
		void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			const char *e = dlerror();
			snprintf(err, errlen, "%s", e ? e : "dlopen failed");
			rc = -1;
		}
		for (size_t i = 0; h && i < l->n; i++) {
			dlerror();
			l->slot[i] = dlsym(h, l->names[i]);
			if (!l->slot[i]) {
				snprintf(err, errlen, "no symbol %s", l->names[i]);
				dlclose(h);
				h = NULL;
				rc = -1;
			}
		}
		if (h) {
			atomic_store_explicit(&l->loaded, 1, memory_order_release);
			log_debug("loaded %s", l->soname);
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void lazy_load_or_die(struct lazy_lib *l)
{
	char err[512];
	if (lazy_load(l, err, sizeof err) == 0)
		return;
	log_error("cannot load %s: %s (called without md_lib_need)", l->soname, err);
	abort();
}

static struct lazy_lib *const libs[MD_LIB_COUNT] = {
	[MD_LIB_CURL] = &lazy_curl,
	[MD_LIB_GIT2] = &lazy_git2,
	[MD_LIB_ARCHIVE] = &lazy_archive,
	[MD_LIB_MHD] = &lazy_mhd,
};

static int need(enum md_lib lib, const char *what)
{
	if ((unsigned)lib >= MD_LIB_COUNT)
		return md_fail(MD_EINVAL, "%s: no such library (%d)", what, (int)lib);
	char err[512];
	if (lazy_load(libs[lib], err, sizeof err) == 0)
		return 0;
	return md_fail(MD_EUNSUP, "%s: cannot load %s: %s", what, libs[lib]->soname, err);
}

void lazy_install(void)
{
	md_lib_set_loader(need);
}
