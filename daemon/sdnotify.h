/*
 * daemon/sdnotify.h — the two pieces of systemd's service protocol modeld
 * speaks, without libsystemd (whose load costs an idle daemon ~0.9 MiB of
 * RSS for libgcrypt, liblzma, libzstd, liblz4 and libcap it never uses).
 * Both follow the interfaces systemd documents as stable: sd_listen_fds(3)
 * and sd_notify(3).
 */
#ifndef MD_SDNOTIFY_H
#define MD_SDNOTIFY_H

#define SDN_LISTEN_FDS_START 3

/*
 * Sockets passed by socket activation: the count N (descriptors 3..3+N-1,
 * now close-on-exec), 0 when none were passed to this process ($LISTEN_PID
 * is not ours), or MD_EINVAL when $LISTEN_FDS is malformed. Unsets
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Call before any thread starts.
 */
int sdn_listen_fds(void);

/*
 * Send one state datagram ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET (a
 * path, or an abstract name written "@name"). Best effort: does nothing
 * without $NOTIFY_SOCKET; returns 1 when sent, 0 when not asked, or a
 * negative MD_E* code.
 */
int sdn_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
