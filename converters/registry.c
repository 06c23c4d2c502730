/* converters/registry.c — the list of converters, tried in order. */
#include "converters/converter.h"
#include "common/err.h"
#include "common/util.h"

#include <stddef.h>

extern const struct converter conv_torch;

static const struct converter *const all[] = {
	&conv_gguf,
	&conv_safetensors,
	&conv_torch,
	NULL
};

const struct converter *conv_find(const char *path, const uint8_t *head, size_t nhead,
				  int *tentative)
{
	if (tentative)
		*tentative = 0;
	for (size_t i = 0; all[i]; i++)
		if (all[i]->match(path, head, nhead))
			return all[i];
	for (size_t i = 0; all[i]; i++)
		if (all[i]->maybe && all[i]->maybe(head, nhead)) {
			if (tentative)
				*tentative = 1;
			return all[i];
		}
	return NULL;
}

int conv_find_fd(int fd, const char *path, const struct converter **cv, int *tentative)
{
	uint8_t head[CONV_HEAD_BYTES];
	*cv = NULL;
	ssize_t got = util_pread_full(fd, head, sizeof head, 0);
	if (got < 0)
		return md_fail(MD_EIO, "%s: cannot read", path ? path : "file");
	*cv = conv_find(path, head, (size_t)got, tentative);
	return 0;
}
