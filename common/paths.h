/*
 * common/paths.h — where modeld and modelctl look for their socket, store
 * and config when nothing is given on the command line.
 *
 * Socket: $MODELD_SOCKET (clients only), else $XDG_RUNTIME_DIR/modeld.sock,
 * else /run/modeld/modeld.sock for root, else /tmp/modeld-UID/modeld.sock.
 * A client whose per-user socket does not exist falls back to the system
 * socket /run/modeld/modeld.sock when that exists.
 * Store: $XDG_DATA_HOME/modeld, else ~/.local/share/modeld.
 * Config: $XDG_CONFIG_HOME/modeld/modeld.conf (~/.config/...) for users,
 * /etc/modeld/modeld.conf for root; used only when the file exists.
 */
#ifndef MD_PATHS_H
#define MD_PATHS_H

#include <stddef.h>

#define PATHS_SYSTEM_SOCKET "/run/modeld/modeld.sock"
#define PATHS_SYSTEM_STORE "/var/lib/modeld"

/* Each writes a NUL-terminated path into out; 0 or MD_ETOOBIG. */
int paths_default_socket(char *out, size_t n);
int paths_client_socket(char *out, size_t n);
int paths_default_store(char *out, size_t n);
int paths_default_config(char *out, size_t n);
/*
 * The directory holding socket path sock must be owned by the caller or
 * root, and not writable by others unless sticky (/tmp): in one another
 * user could swap the socket for theirs and be handed modelctl import's
 * file descriptors. 0 (also when it does not exist yet) or MD_EPERM
 * naming the directory.
 */
int paths_check_socket_dir(const char *sock);

#endif
