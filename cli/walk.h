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
	size_t n, cap;
};

/* 0, or MD_EINVAL/MD_EIO/MD_EPERM/MD_EREFUSED/MD_ETOOBIG with a detail. */
int walk_folder(const char *dir, struct walk *w);
void walk_free(struct walk *w);

#endif
