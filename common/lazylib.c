/* common/lazylib.c — see lazylib.h. */
#include "common/lazylib.h"

static md_lib_loader_fn *loader;

void md_lib_set_loader(md_lib_loader_fn *fn)
{
	loader = fn;
}

int md_lib_need(enum md_lib lib, const char *what)
{
	return loader ? loader(lib, what) : 0;
}
