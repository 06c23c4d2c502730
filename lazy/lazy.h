/*
 * lazy/lazy.h — modeld's stand-ins for libcurl, libgit2, libarchive and
 * libmicrohttpd (common/lazylib.h says why).
 *
 * Only build/modeld links lazy/ (all of it), in place of -lcurl -lgit2
 * -larchive -lmicrohttpd. Each lazy/LIB.c defines every function of LIB
 * that modeld calls, under its own name and with the prototype of the
 * library's own header (which it includes: a prototype that drifts from the
 * header does not compile). Each stand-in forwards to the real function, found with
 * dlsym() in the library dlopen()ed on first use. The executable does not
 * export these names (nothing it links refers to them), so they never
 * interpose on the library's calls to itself.
 *
 * A library's symbols are all resolved when it loads: a library that lacks
 * one fails to load, as a whole, with a one-line reason. Callers check with
 * md_lib_need() first; a stand-in called while its library cannot be
 * loaded is a bug in modeld: it logs the reason and aborts.
 */
#ifndef MD_LAZY_H
#define MD_LAZY_H

#include <stdatomic.h>
#include <stddef.h>

struct lazy_lib {
	const char *soname;        /* "libcurl.so.4" */
	const char *const *names;  /* symbols, in slot order */
	void **slot;               /* their addresses once loaded */
	size_t n;
	atomic_int loaded;         /* slot[] is complete */
};

/* Load L (under a process-wide lock) unless it is loaded. 0, or -1 with the
 * reason in err: dlerror()'s ("libcurl.so.4: cannot open shared object
 * file: ...") or "no symbol NAME". */
int lazy_load(struct lazy_lib *l, char *err, size_t errlen);

/* The stand-ins' slow path: load L or log why not and abort(). */
void lazy_load_or_die(struct lazy_lib *l);

/* modeld's main() calls this first: md_lib_need() now loads with lazy_load.
 * Loads nothing itself. */
void lazy_install(void);

static inline void *lazy_sym(struct lazy_lib *l, size_t i)
{
	if (!atomic_load_explicit(&l->loaded, memory_order_acquire))
		lazy_load_or_die(l);
	return l->slot[i];
}

/*
 * In lazy/LIB.c: #define LAZY_VAR lazy_LIB, then LAZY_LIBRARY("soname", LIST)
 * defines struct lazy_lib LAZY_VAR and the stand-ins. LIST(F, V, H) names
 * every symbol once:
 *   F(ret, name, (params), (args))  a function returning ret
 *   V(name, (params), (args))       a function returning void
 *   H(name)                         resolved only; its stand-in (a variadic
 *                                   one) is written by hand with LAZY_FN
 */
extern struct lazy_lib lazy_curl, lazy_git2, lazy_archive, lazy_mhd;

#define LAZY_IDX_F(ret, name, params, args) LAZY_I_##name,
#define LAZY_IDX_V(name, params, args) LAZY_I_##name,
#define LAZY_IDX_H(name) LAZY_I_##name,
#define LAZY_STR_F(ret, name, params, args) #name,
#define LAZY_STR_V(name, params, args) #name,
#define LAZY_STR_H(name) #name,
#define LAZY_DEF_F(ret, name, params, args) \
	ret name params { return LAZY_FN(name) args; }
#define LAZY_DEF_V(name, params, args) \
	void name params { LAZY_FN(name) args; }
#define LAZY_DEF_H(name)

#define LAZY_LIBRARY(soname, LIST)                                                \
	enum { LIST(LAZY_IDX_F, LAZY_IDX_V, LAZY_IDX_H) LAZY_N };                 \
	static const char *const lazy_names[] = {                                 \
		LIST(LAZY_STR_F, LAZY_STR_V, LAZY_STR_H)                          \
	};                                                                        \
	static void *lazy_slot[LAZY_N];                                           \
	struct lazy_lib LAZY_VAR = { soname, lazy_names, lazy_slot, LAZY_N, 0 };  \
	LIST(LAZY_DEF_F, LAZY_DEF_V, LAZY_DEF_H)

/* the real NAME of this file's library, typed as its header declares it */
#define LAZY_FN(name) ((__typeof__(&name))lazy_sym(&LAZY_VAR, LAZY_I_##name))

#endif
