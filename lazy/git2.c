/*
 * lazy/git2.c — modeld's stand-ins for libgit2 (lazy/lazy.h).
 */
#include <git2.h>

#include "lazy/lazy.h"

#include <stdarg.h>

#define GIT2_FUNCS(F, V, H) \
	V(git_blob_free, (git_blob *blob), (blob)) \
	F(int, git_blob_lookup, \
	  (git_blob **blob, git_repository *repo, const git_oid *id), (blob, repo, id)) \
	F(const void *, git_blob_rawcontent, (const git_blob *blob), (blob)) \
	F(git_object_size_t, git_blob_rawsize, (const git_blob *blob), (blob)) \
	V(git_buf_dispose, (git_buf *buffer), (buffer)) \
	V(git_commit_free, (git_commit *commit), (commit)) \
	F(const git_oid *, git_commit_id, (const git_commit *commit), (commit)) \
	F(int, git_commit_lookup, \
	  (git_commit **commit, git_repository *repo, const git_oid *id), (commit, repo, id)) \
	F(int, git_commit_lookup_prefix, \
	  (git_commit **commit, git_repository *repo, const git_oid *id, size_t len), \
	  (commit, repo, id, len)) \
	F(int, git_commit_tree, \
	  (git_tree **tree_out, const git_commit *commit), (tree_out, commit)) \
	F(const git_oid *, git_commit_tree_id, (const git_commit *commit), (commit)) \
	V(git_config_free, (git_config *cfg), (cfg)) \
	F(int, git_config_get_string_buf, \
	  (git_buf *out, const git_config *cfg, const char *name), (out, cfg, name)) \
	F(int, git_config_open_ondisk, (git_config **out, const char *path), (out, path)) \
	F(int, git_credential_ssh_key_from_agent, \
	  (git_credential **out, const char *username), (out, username)) \
	F(int, git_credential_username_new, \
	  (git_credential **out, const char *username), (out, username)) \
	F(int, git_credential_userpass_plaintext_new, \
	  (git_credential **out, const char *username, const char *password), \
	  (out, username, password)) \
	V(git_error_clear, (void), ()) \
	F(const git_error *, git_error_last, (void), ()) \
	F(int, git_libgit2_init, (void), ()) \
	H(git_libgit2_opts) \
	V(git_object_free, (git_object *object), (object)) \
	V(git_odb_free, (git_odb *db), (db)) \
	F(const void *, git_odb_object_data, (git_odb_object *object), (object)) \
	V(git_odb_object_free, (git_odb_object *object), (object)) \
	F(size_t, git_odb_object_size, (git_odb_object *object), (object)) \
	F(int, git_odb_read, \
	  (git_odb_object **out, git_odb *db, const git_oid *id), (out, db, id)) \
	F(int, git_odb_read_header, \
	  (size_t *len_out, git_object_t *type_out, git_odb *db, const git_oid *id), \
	  (len_out, type_out, db, id)) \
	F(int, git_oid_fromstr, (git_oid *out, const char *str), (out, str)) \
	F(int, git_oid_fromstrn, \
	  (git_oid *out, const char *str, size_t length), (out, str, length)) \
	F(char *, git_oid_tostr, (char *out, size_t n, const git_oid *id), (out, n, id)) \
	V(git_reference_free, (git_reference *ref), (ref)) \
	F(int, git_reference_lookup, \
	  (git_reference **out, git_repository *repo, const char *name), (out, repo, name)) \
	F(int, git_reference_peel, \
	  (git_object **out, const git_reference *ref, git_object_t type), (out, ref, type)) \
	F(int, git_remote_connect, \
	  (git_remote *remote, git_direction direction, const git_remote_callbacks *callbacks, \
	   const git_proxy_options *proxy_opts, const git_strarray *custom_headers), \
	  (remote, direction, callbacks, proxy_opts, custom_headers)) \
	F(int, git_remote_create_with_opts, \
	  (git_remote **out, const char *url, const git_remote_create_options *opts), \
	  (out, url, opts)) \
	F(int, git_remote_default_branch, (git_buf *out, git_remote *remote), (out, remote)) \
	F(int, git_remote_disconnect, (git_remote *remote), (remote)) \
	F(int, git_remote_download, \
	  (git_remote *remote, const git_strarray *refspecs, const git_fetch_options *opts), \
	  (remote, refspecs, opts)) \
	V(git_remote_free, (git_remote *remote), (remote)) \
	F(int, git_remote_ls, (const git_remote_head ***out, size_t *size, git_remote *remote), \
	  (out, size, remote)) \
	F(int, git_remote_update_tips, \
	  (git_remote *remote, const git_remote_callbacks *callbacks, int update_fetchhead, \
	   git_remote_autotag_option_t download_tags, const char *reflog_message), \
	  (remote, callbacks, update_fetchhead, download_tags, reflog_message)) \
	V(git_repository_free, (git_repository *repo), (repo)) \
	F(int, git_repository_init, \
	  (git_repository **out, const char *path, unsigned is_bare), (out, path, is_bare)) \
	F(int, git_repository_odb, (git_odb **out, git_repository *repo), (out, repo)) \
	F(int, git_repository_open_bare, \
	  (git_repository **out, const char *bare_path), (out, bare_path)) \
	F(git_filemode_t, git_tree_entry_filemode, (const git_tree_entry *entry), (entry)) \
	F(const git_oid *, git_tree_entry_id, (const git_tree_entry *entry), (entry)) \
	F(const char *, git_tree_entry_name, (const git_tree_entry *entry), (entry)) \
	V(git_tree_free, (git_tree *tree), (tree)) \
	F(int, git_tree_walk, \
	  (const git_tree *tree, git_treewalk_mode mode, git_treewalk_cb callback, void *payload), \
	  (tree, mode, callback, payload))

#define LAZY_VAR lazy_git2
LAZY_LIBRARY("libgit2.so.1.5", GIT2_FUNCS)

/* The argument list depends on the option: forwarded for the options modeld
 * sets (sources/git.c); any other returns -1, as libgit2 does for an
 * option it does not know. */
int git_libgit2_opts(int option, ...)
{
	va_list ap;
	va_start(ap, option);
	int rc = -1;
	switch (option) {
	case GIT_OPT_SET_OWNER_VALIDATION:   /* int */
		rc = LAZY_FN(git_libgit2_opts)(option, va_arg(ap, int));
		break;
	}
	va_end(ap);
	return rc;
}
