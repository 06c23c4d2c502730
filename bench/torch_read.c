/*
 * bench/torch_read.c — drive conv_torch on one file: parse it, then pread
 * every tensor range once (the part of a conversion that is ours; the pack
 * writer is not measured). Prints one line per tensor with -l, copies the
 * ranges to OUT with -o, and the timing with -t.
 *   torch_read [-l] [-t] [-o OUT] FILE
 */
#include "converters/converter.h"
#include "common/err.h"
#include "common/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct converter conv_torch;

int main(int argc, char **argv)
{
	int list = 0, timing = 0, opt;
	const char *outp = NULL;
	while ((opt = getopt(argc, argv, "lto:")) != -1) {
		if (opt == 'l') list = 1;
		else if (opt == 't') timing = 1;
		else if (opt == 'o') outp = optarg;
		else return 2;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: torch_read [-l] [-t] [-o OUT] FILE\n");
		return 2;
	}
	const char *path = argv[optind];
	double t0 = util_mono();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb)) {
		perror(path);
		return 1;
	}
	struct conv_info ci = { 0 };
	int rc = conv_torch.parse(fd, (uint64_t)sb.st_size, &ci);
	if (rc) {
		fprintf(stderr, "%s: %s\n", path, md_errmsg(rc));
		conv_info_free(&ci);
		return 1;
	}
	double t1 = util_mono();
	int ofd = -1;
	if (outp && (ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		perror(outp);
		return 1;
	}
	size_t bcap = 8u << 20;
	uint8_t *buf = malloc(bcap);
	uint64_t total = 0, sum = 0;
	for (size_t i = 0; i < ci.n; i++) {
		struct conv_tensor *t = &ci.t[i];
		if (list) {
			printf("%s\t%s\t", t->name, conv_dtype_name(t->dtype));
			for (uint32_t d = 0; d < t->ndim; d++)
				printf("%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
			printf("\t%llu\t%llu\t%lld\n", (unsigned long long)t->src_off,
			       (unsigned long long)t->len, (long long)t->alias);
		}
		if (t->alias >= 0)
			continue;
		for (uint64_t o = 0; o < t->len;) {
			size_t k = t->len - o < bcap ? (size_t)(t->len - o) : bcap;
			if (util_pread_full(fd, buf, k, (off_t)(t->src_off + o)) != (ssize_t)k) {
				fprintf(stderr, "%s: short read\n", path);
				return 1;
			}
			sum += buf[0];
			if (ofd >= 0 && util_write_all(ofd, buf, k)) {
				fprintf(stderr, "%s: write error\n", outp);
				return 1;
			}
			o += k;
		}
		total += t->len;
	}
	if (ofd >= 0)
		close(ofd);
	double t2 = util_mono();
	if (timing)
		printf("tensors %zu bytes %llu parse_s %.6f read_s %.6f total_s %.6f (%llu)\n", ci.n,
		       (unsigned long long)total, t1 - t0, t2 - t1, t2 - t0, (unsigned long long)sum % 7);
	free(buf);
	conv_info_free(&ci);
	close(fd);
	return 0;
}
