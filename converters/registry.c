/* converters/registry.c — the list of converters, tried in order. */
#include "converters/converter.h"

#include <stddef.h>

extern const struct converter conv_torch;

static const struct converter *const all[] = {
	&conv_gguf,
	&conv_safetensors,
	&conv_torch,
	NULL
};

const struct converter *conv_find(const char *path, const uint8_t *head, size_t nhead)
{
	for (size_t i = 0; all[i]; i++)
		if (all[i]->match(path, head, nhead))
			return all[i];
	return NULL;
}
