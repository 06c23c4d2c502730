/*
 * cli/walk.h — listing an HF-layout folder for import.
 *
 * Every regular file under the folder, recursively, with its path relative
 * to the folder. Skipped: the directories .git and .cache/huggingface (git
 * and huggingface_hub metadata). A symlink is followed when its target is a
 * regular file inside the folder; one pointing outside, a FIFO, a socket or
 * a device, an unreadable file or a bad file name is an error naming the
 * file. No files at all is an error.
 */
#ifndef MD_WALK_H
#define MD_WALK_H

#include <stddef.h>

#define WALK_MAX_FILES 100000
#define WALK_MAX_DEPTH 32

struct walk {
	char *root;          /* realpath of the folder; owned */
	char **rel;          /* relative paths; owned */
	char *allow;         /* symlinks may point inside this folder instead of root
				(a hub cache's top folder); owned, may be NULL */
	size_t n, cap;
};

/* 0, or MD_EINVAL/MD_EIO/MD_EPERM/MD_EREFUSED/MD_ETOOBIG with a detail. */
int walk_folder(const char *dir, struct walk *w);
void walk_free(struct walk *w);

/*
 * huggingface_hub cache folders: models--ORG--NAME/ with blobs/, snapshots/
 * and refs/. walk_is_hf_cache says whether dir is one. walk_hf_cache lists
 * the snapshot that refs/main names (or the only snapshot when there is no
 * refs/main); its symlinks may point into the cache's blobs/. name gets
 * "ORG/NAME" ("local/NAME" for a repo without an org), rev the snapshot's
 * 40-hex commit. 0 or an MD_E* code with a detail.
 */
int walk_is_hf_cache(const char *dir);
int walk_hf_cache(const char *dir, struct walk *w, char *name, size_t namelen, char rev[41]);

#endif
