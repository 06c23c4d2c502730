/*
 * meta/wlayout.h — which weight files of a repository are its model(s) and
 * which are other copies of them, for the catalog's parameter count
 * (docs/catalog.md, "Parameters"). A change to these rules raises
 * DESCRIBE_VERSION (daemon/describe.h).
 *
 * A repository often ships one model several times under different tensor
 * names: Mistral's consolidated.safetensors beside its transformers shards,
 * Llama 3's original/consolidated.00.pth, a GGUF quantization beside
 * model.safetensors, a Stable Diffusion single-file checkpoint beside the
 * diffusers folders. Counting tensor names once (registry/wfacts.h) cannot
 * see those, so the loaders' own layout decides, as `from_pretrained` and
 * the Hub's parameter count do:
 *
 *   - a LOADER file is one transformers, diffusers or PEFT loads by name:
 *     STEM[.VARIANT].EXT or STEM[.VARIANT]-NNNNN-of-NNNNN.EXT, where
 *     STEM.EXT is model.safetensors, pytorch_model.bin,
 *     diffusion_pytorch_model.{safetensors,bin} or
 *     adapter_model.{safetensors,bin} (model.fp16.safetensors,
 *     model-00001-of-00003.safetensors);
 *   - in a folder that holds a loader weight file, its other weight files
 *     are alternates (consolidated.safetensors, model-Q4_K_M.gguf, and
 *     optimizer.pt in a training checkpoint, which is not the model);
 *   - under a folder named "original" whose parent holds a loader weight
 *     file, every weight file is an alternate;
 *   - at the root of a diffusers pipeline (a model_index.json at the root)
 *     whose components hold loader weight files, the root's weight files
 *     are alternates (single-file checkpoints of the same pipeline).
 *
 * Everything else counts: a repository of GGUF files only, shards and the
 * components in their own folders (unet/, vae/). Pure: paths only.
 */
#ifndef MD_WLAYOUT_H
#define MD_WLAYOUT_H

#include <stddef.h>
#include <jansson.h>

/* Whether a file's base name (no folder) is a loader file name (above). */
int wlayout_is_loader(const char *base);

/*
 * paths[0..n): every file path of one revision ('/'-separated, relative);
 * weight[i] nonzero marks path i as a weight file. Sets alt[i] to 1 for a
 * weight file that is an alternate (above) and to 0 for every other path.
 * 0, or MD_ENOMEM.
 */
int wlayout_alternates(const char *const *paths, size_t n, const unsigned char *weight,
		       unsigned char *alt);

/*
 * The weight files a loader reads when not told which (modeld.load_state_dict
 * without files=): pick[i] = 1 for a weight file that is no alternate and,
 * among one folder's loader files of one library (transformers: model /
 * pytorch_model; diffusers; PEFT), only those of the kind its
 * from_pretrained reads: no variant before a variant, safetensors before
 * bin (model.safetensors over pytorch_model.bin and model.fp16.safetensors);
 * files of one variant when every file has one; all of them when the
 * variants differ (the caller then has to choose). 0 for every other path.
 * 0, or MD_ENOMEM.
 */
int wlayout_defaults(const char *const *paths, size_t n, const unsigned char *weight,
		     unsigned char *pick);

/*
 * Either of the above over a manifest's (or an ingest's) file records
 * ({path, pack?...}: a weight file is one with a "pack"): *out (malloc'd,
 * the caller frees) gets one mark per record, 0 for a record without a
 * path. defaults: 0 wlayout_alternates, 1 wlayout_defaults. 0, MD_ENOMEM.
 */
int wlayout_mark_files(const json_t *files, int defaults, unsigned char **out);

#endif
