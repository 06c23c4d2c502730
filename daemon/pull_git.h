/*
 * daemon/pull_git.h — the pull job for git-hosted repositories
 * (sources/git.h, sources/lfs.h): fetch into the bare cache
 * STORE/git/<sha256 of URL>.git, resolve the ref, write ordinary blobs from
 * the object database and LFS objects (batch API + sources/xfer.h, or a
 * file:// remote's lfs/objects) into STORE/tmp/pull-KEY, convert, record
 * provenance (remote, ref, commit, tree) and commit the revision under the
 * git commit id.
 */
#ifndef MD_PULL_GIT_H
#define MD_PULL_GIT_H

#include "daemon/jobs.h"

/*
 * args: {"ref": "git+URL[@REF]" (or a plain URL with "source": "git"),
 * "name"?: ORG/NAME, "include"?: [glob], "exclude"?: [glob] (as hub pulls;
 * the whole tree is still checked for refused entries)}. Credentials: the URL's user info, else
 * the daemon's git_credentials file; never logged or stored (provenance and
 * errors carry the URL without user info). A commit already stored in part
 * by a filtered pull (provenance "partial") is completed as by pull_job:
 * the missing selected files are taken and the union committed again. A refused tree (submodule,
 * symlink, bad path), an unknown ref, a missing or wrong-size LFS object:
 * an error naming the thing, nothing stored.
 * rate: the LFS downloads' cap in bytes per second (0: none), as pull_job
 * worked it out (pull_rate).
 */
int pull_git_job(struct daemon *d, struct job *j, uint64_t rate, json_t **res);

/*
 * gc of the bare caches: STORE/git/<key>.git whose remote no stored
 * revision came from (source.type "git", key = sha256 of source.url) is
 * removed, unless a pull holds it. Adds "git_caches_removed" and
 * "git_cache_bytes_freed" to res. 0, MD_EDB, MD_EIO, MD_ENOMEM.
 */
int pull_git_gc(struct daemon *d, json_t *res);

#endif
