/* bench/convert_main.c — converts one file with conv_convert and prints the
 * result and the wall time; used by bench/convert.sh (not part of the
 * daemon). Usage: bench-convert SRC PACK RECIPE [SRC_SHA256]
 * With SRC_SHA256 the source is not hashed again (as in a pull, which hashes
 * while downloading). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "converters/convert.h"

int main(int argc, char **argv)
{
	uint8_t sha[32];
	if ((argc != 4 && argc != 5) || (argc == 5 && util_unhex(argv[4], sha, 32))) {
		fprintf(stderr, "usage: %s SRC PACK RECIPE [SRC_SHA256]\n", argv[0]);
		return 2;
	}
	int src = open(argv[1], O_RDONLY | O_CLOEXEC);
	int p = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r = open(argv[3], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct stat st;
	if (src < 0 || p < 0 || r < 0 || fstat(src, &st)) {
		perror("open");
		return 1;
	}
	struct timespec a, b;
	struct conv_result res;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = conv_convert(src, (uint64_t)st.st_size, argv[1], argc == 5 ? sha : NULL, p, r,
			      &res);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (rc) {
		fprintf(stderr, "convert: %s\n", md_errmsg(rc));
		return 1;
	}
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("format=%s tensors=%llu params=%llu src=%llu pack=%llu recipe=%llu seconds=%.3f\n",
	       res.format, (unsigned long long)res.ntensors, (unsigned long long)res.params,
	       (unsigned long long)res.src_size, (unsigned long long)res.pack_size,
	       (unsigned long long)res.recipe_size, s);
	printf("src_sha256=%s\npack_root=%s\nrecipe_sha256=%s\n", res.src_hex, res.pack_hex,
	       res.recipe_hex);
	return 0;
}
