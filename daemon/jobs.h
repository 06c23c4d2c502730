/*
 * daemon/jobs.h — long operations (import, pull, rm, gc, verify) run as jobs
 * on a pool of worker threads so the socket loop keeps answering.
 *
 * A job belongs to the connection that asked for it: its progress and its
 * final reply go there (server_post). When that connection closes, a job not
 * started with "detach" is canceled. Job records are kept in the catalog's
 * jobs database ({"v","id","op","target","state","started","finished",
 * "error"}); at start-up, records left "running" by a dead modeld become
 * "interrupted", and so do jobs that jobs_shutdown stops (their error says
 * modeld is shutting down, not that they were canceled).
 */
#ifndef MD_JOBS_H
#define MD_JOBS_H

#include <stdint.h>

#include <jansson.h>

#include "daemon/daemon.h"
#include "registry/ingest.h"

struct job;
/* Runs on a worker thread. Returns 0 and a new *result, or an MD_E* code
 * with a detail set (md_fail). */
typedef int job_fn(struct daemon *d, struct job *j, json_t **result);

struct job {
	uint64_t id;
	char op[16];
	char *target;              /* what it works on, for listings; owned */
	json_t *args;              /* the request; owned */
	int *fds;                  /* descriptors that came with it; owned */
	size_t nfds;
	uint64_t conn_id;          /* where replies go; 0 once detached */
	int detach;
	uid_t uid;
	job_fn *run;
	struct ingest_ctl ctl;     /* progress and cancel */
	uint64_t ctl_base;         /* bytes done before the current transfer */
	const char *state;         /* "queued", "running", "done", "failed", "canceled",
	                              "interrupted" */
	char *error;               /* owned, when failed */
	double started, finished;  /* util_mono() */
	char started_iso[32];
	struct job *next;
};

/* Start n worker threads. 0, MD_ENOMEM. Marks dead "running" records. */
int jobs_init(struct daemon *d, int n, struct jobs **out);
/* Cancel everything, wait for the workers, free. */
void jobs_shutdown(struct jobs *js);

/* New job (args and fds are taken over). NULL on ENOMEM (args and fds are
 * then released). */
struct job *jobs_new(const char *op, const char *target, json_t *args, int *fds,
		     size_t nfds, uint64_t conn_id, uid_t uid, job_fn *run);
/* Free a job that was never submitted (one run in place, e.g. a mirror's
 * pull-through). */
void jobs_free(struct job *j);

/* Queue it; the job is owned by the pool from now on. Returns its id. */
uint64_t jobs_submit(struct jobs *js, struct job *j);

/* A connection went away: cancel its attached jobs, detach the rest. */
void jobs_conn_closed(struct jobs *js, uint64_t conn_id);
/* Cancel one job. 0 or MD_ENOENT. */
int jobs_cancel(struct jobs *js, uint64_t id);
/* Queued and running jobs plus recent records: a new array. */
json_t *jobs_list(struct jobs *js);
/* Post a progress frame for each running job attached to a connection. */
void jobs_tick(struct jobs *js);

#endif
