/*
 * daemon/config.h — modeld's configuration: embedded defaults, then the
 * config file (key = value lines, '#' comments), then the command line.
 * Documented in modeld(8).
 */
#ifndef MD_CONFIG_H
#define MD_CONFIG_H

#include <stdint.h>

struct config {
	char *store;          /* store root */
	char *socket;         /* control socket path */
	char *socket_group;   /* group that may read (socket 0660), or NULL */
	int log_level;        /* LOG_LVL_* */
	int workers;          /* job worker threads (1..64) */
	char *hub;            /* default hub URL for pull */
	char *token_file;     /* hub token file */
	char *ca_file;        /* CA certificates (PEM) trusted for https hubs, or NULL:
				 the system's */
	char *git_credentials; /* git/LFS credential file (https://user:token@host lines) */
	char *http;           /* ADDR:PORT of the mirror endpoint, or NULL */
	char *upstream;       /* hub the mirror pulls through from on a miss, or NULL */
	char *http_token_file; /* bearer token the mirror requires, or NULL */
	char *policy;         /* license policy file */
	char *size_classes;   /* catalog size-class thresholds (units.h), or NULL: default */
	uint64_t limit_rate;  /* bytes/s for pulls, 0 = unlimited */
	uint64_t catalog_max; /* the most bytes the LMDB catalog may hold (at start) */
	char *config_path;    /* the file that was read, or NULL */
};

/* Fill embedded defaults. 0 or MD_ENOMEM / MD_ETOOBIG. */
int config_defaults(struct config *c);
/*
 * Read a config file over the current values. A missing file is MD_ENOENT
 * (callers decide whether that matters); a bad line is MD_EINVAL with a
 * detail "FILE:LINE: unknown key 'x'", as are a key given twice, an empty
 * value, text that is not UTF-8 (or holds a NUL), a directory.
 */
int config_load(struct config *c, const char *path);
/*
 * Set one key from a string (used by the file reader, the command line and
 * tests). Values are checked as the daemon will use them, so `modeld -n`
 * and start-up agree: numbers must be whole and in range, http a numeric
 * ADDR:PORT, hub and upstream http(s) URLs. MD_EINVAL with a detail that
 * starts with the key ("workers 'abc': want 1..64").
 */
int config_set(struct config *c, const char *key, const char *value);

/*
 * Check an http (mirror) address "ADDR:PORT", "[V6]:PORT" or ":PORT":
 * numeric address (empty: every address) and port 1..65535. With ai
 * non-NULL, *ai is the resolved listening address (freeaddrinfo by the
 * caller). 0 or MD_EINVAL ("http 'x': ...").
 */
struct addrinfo;
int config_http_addr(const char *addr, struct addrinfo **ai);
void config_free(struct config *c);

#endif
