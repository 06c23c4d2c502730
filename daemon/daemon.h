/*
 * daemon/daemon.h — the process-wide state of modeld, shared by the server
 * loop, the ops and the job workers. One instance, owned by main.c.
 */
#ifndef MD_DAEMON_H
#define MD_DAEMON_H

#include <stdatomic.h>

#include "common/version.h"
#include "daemon/config.h"
#include "registry/store.h"

struct server;
struct jobs;
struct policy;

struct daemon {
	struct config *cfg;
	struct store *st;
	struct server *srv;
	struct jobs *jobs;
	struct policy *pol;        /* license policy, or NULL (allow all) */
	double started;            /* util_mono() at start */
	_Atomic int stopping;
	_Atomic int reload;        /* SIGHUP seen: the loop calls on_reload */
	void (*on_reload)(struct daemon *d);
};

#endif
