/* Writes pack and recipe seeds for the fuzz corpus: converts each file named
 * on the command line and stores DIR/pack/<name>.pack and
 * DIR/recipe/<name>.recipe. Built by hand when the corpus is refreshed:
 *   cc -I. -D_GNU_SOURCE tests/fuzz/seedgen.c build/libmdcore.a \
 *      $(pkg-config --libs jansson libcrypto libxxhash) -lpthread -o build/seedgen */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "converters/convert.h"

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	for (int i = 2; i < argc; i++) {
		char pp[1024], rp[1024], nm[512];
		snprintf(nm, sizeof nm, "%s", argv[i]);
		const char *base = basename(nm);
		snprintf(pp, sizeof pp, "%s/pack/%s.pack", argv[1], base);
		snprintf(rp, sizeof rp, "%s/recipe/%s.recipe", argv[1], base);
		int src = open(argv[i], O_RDONLY);
		int p = open(pp, O_RDWR | O_CREAT | O_TRUNC, 0644);
		int r = open(rp, O_RDWR | O_CREAT | O_TRUNC, 0644);
		struct stat st;
		struct conv_result res;
		if (src < 0 || p < 0 || r < 0 || fstat(src, &st))
			return 1;
		int rc = conv_convert(src, (uint64_t)st.st_size, base, NULL, p, r, &res);
		if (rc) {
			fprintf(stderr, "%s: %s\n", argv[i], md_errmsg(rc));
			unlink(pp);
			unlink(rp);
		}
		close(src);
		close(p);
		close(r);
	}
	return 0;
}
