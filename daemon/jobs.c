/* daemon/jobs.c — see jobs.h. */
#include "daemon/jobs.h"
#include "daemon/server.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBS_RECENT 50   /* finished jobs kept for `modelctl jobs` */

struct jobs {
	struct daemon *d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *queue, *queue_tail;
	struct job *running;
	json_t *recent;
	pthread_t *threads;
	int n;
	int stop;
	uint64_t next_id;
};

static void put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static json_t *job_json(const struct job *j)
{
	json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)j->id, "op", j->op,
			      "target", j->target ? j->target : "", "state", j->state,
			      "started", j->started_iso);
	json_object_set_new(o, "done", json_integer((json_int_t)atomic_load(&j->ctl.done)));
	json_object_set_new(o, "total", json_integer((json_int_t)atomic_load(&j->ctl.total)));
	if (j->error)
		json_object_set_new(o, "error", json_string(j->error));
	return o;
}

/* Best effort: the job record in the catalog. */
static void record(struct jobs *js, const struct job *j)
{
	MDB_txn *txn;
	if (store_txn(js->d->st, 1, &txn))
		return;
	json_t *o = job_json(j);
	json_object_set_new(o, "v", json_integer(STORE_SCHEMA));
	if (strcmp(j->state, "running")) {
		char now[32];
		util_now_iso(now, sizeof now);
		json_object_set_new(o, "finished", json_string(now));
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	uint8_t kb[8];
	put_be64(kb, j->id);
	MDB_val k = { 8, kb }, v = { s ? strlen(s) : 0, s };
	if (s && mdb_put(txn, js->d->st->jobs, &k, &v, 0) == 0)
		store_commit(txn);
	else
		mdb_txn_abort(txn);
	free(s);
}

/* Start-up: find the next id and mark records of a dead modeld. Only the
 * last JOBS_RECENT records and those that may say running or queued are
 * parsed: a store keeps a record of every job it ever ran. */
static void recover(struct jobs *js)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_stat ms;
	js->next_id = 1;
	if (store_txn(js->d->st, 1, &txn))
		return;
	if (mdb_stat(txn, js->d->st->jobs, &ms) || mdb_cursor_open(txn, js->d->st->jobs, &c)) {
		mdb_txn_abort(txn);
		return;
	}
	size_t left = ms.ms_entries;
	int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	for (; rc == 0; left--) {
		int tail = left <= JOBS_RECENT;
		if (k.mv_size == 8) {
			uint64_t id = 0;
			for (int i = 0; i < 8; i++)
				id = id << 8 | ((uint8_t *)k.mv_data)[i];
			if (id >= js->next_id)
				js->next_id = id + 1;
		}
		if (k.mv_size == 8 && (tail || memmem(v.mv_data, v.mv_size, "running", 7) ||
				       memmem(v.mv_data, v.mv_size, "queued", 6))) {
			json_t *o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
			const char *st = json_string_value(json_object_get(o, "state"));
			if (st && (!strcmp(st, "running") || !strcmp(st, "queued"))) {
				json_object_set_new(o, "state", json_string("interrupted"));
				char *s = json_dumps(o, JSON_COMPACT);
				MDB_val nv = { s ? strlen(s) : 0, s };
				if (s)
					mdb_cursor_put(c, &k, &nv, MDB_CURRENT);
				free(s);
			}
			if (o && tail)
				json_array_append_new(js->recent, o);
			else
				json_decref(o);
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	store_commit(txn);
	while (json_array_size(js->recent) > JOBS_RECENT)
		json_array_remove(js->recent, 0);
}

static void free_job(struct job *j)
{
	for (size_t i = 0; i < j->nfds; i++)
		if (j->fds[i] >= 0)
			close(j->fds[i]);
	free(j->fds);
	json_decref(j->args);
	free(j->target);
	free(j->error);
	free(j);
}

void jobs_free(struct job *j)
{
	if (j)
		free_job(j);
}

static void unlink_running(struct jobs *js, struct job *j)
{
	for (struct job **p = &js->running; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			return;
		}
}

static void *worker(void *arg)
{
	struct jobs *js = arg;
	for (;;) {
		pthread_mutex_lock(&js->mu);
		while (!js->queue && !js->stop)
			pthread_cond_wait(&js->cv, &js->mu);
		if (!js->queue && js->stop) {
			pthread_mutex_unlock(&js->mu);
			return NULL;
		}
		struct job *j = js->queue;
		js->queue = j->next;
		if (!js->queue)
			js->queue_tail = NULL;
		j->state = "running";
		j->next = js->running;
		js->running = j;
		pthread_mutex_unlock(&js->mu);

		record(js, j);
		json_t *result = NULL;
		md_clearerr();
		int rc = atomic_load(&j->ctl.cancel) ? md_fail(MD_ECANCELED, "canceled")
						     : j->run(js->d, j, &result);
		const char *msg = rc ? md_errmsg(rc) : NULL;

		pthread_mutex_lock(&js->mu);
		unlink_running(js, j);
		j->state = rc == 0 ? "done" : rc == MD_ECANCELED ? "canceled" : "failed";
		if (rc == MD_ECANCELED && js->stop) {
			/* nobody canceled it: modeld is stopping (SIGTERM) */
			j->state = "interrupted";
			if (!strcmp(j->op, "pull"))
				md_fail(MD_ECANCELED, "%s: modeld is shutting down; pull again to resume",
					j->target ? j->target : "pull");
			else
				md_fail(MD_ECANCELED, "%s%s%s: modeld is shutting down; run it again",
					j->op, j->target && *j->target ? " " : "",
					j->target ? j->target : "");
			msg = md_errmsg(MD_ECANCELED);
		}
		if (rc)
			j->error = strdup(msg);
		j->finished = util_mono();
		uint64_t conn = j->conn_id;
		json_array_append_new(js->recent, job_json(j));
		while (json_array_size(js->recent) > JOBS_RECENT)
			json_array_remove(js->recent, 0);
		pthread_mutex_unlock(&js->mu);

		if (rc)
			log_info("job %llu %s %s: %s", (unsigned long long)j->id, j->op,
				 j->target ? j->target : "", msg);
		else
			log_info("job %llu %s %s: done in %.2fs", (unsigned long long)j->id, j->op,
				 j->target ? j->target : "", j->finished - j->started);
		record(js, j);
		if (conn) {
			if (rc) {
				server_reply_err(js->d->srv, conn, rc, msg);
				json_decref(result);
			} else {
				server_reply_ok(js->d->srv, conn, result, NULL, 0);
			}
		} else {
			json_decref(result);
		}
		free_job(j);
	}
}

int jobs_init(struct daemon *d, int n, struct jobs **out)
{
	struct jobs *js = calloc(1, sizeof *js);
	if (!js)
		return MD_ENOMEM;
	js->d = d;
	js->recent = json_array();
	pthread_mutex_init(&js->mu, NULL);
	pthread_cond_init(&js->cv, NULL);
	recover(js);
	js->threads = calloc((size_t)n, sizeof *js->threads);
	if (!js->threads) {
		free(js);
		return MD_ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		if (pthread_create(&js->threads[i], NULL, worker, js))
			break;
		js->n++;
	}
	if (!js->n) {
		free(js->threads);
		free(js);
		return md_fail(MD_ENOMEM, "cannot start worker threads");
	}
	*out = js;
	return 0;
}

void jobs_shutdown(struct jobs *js)
{
	if (!js)
		return;
	pthread_mutex_lock(&js->mu);
	js->stop = 1;
	for (struct job *j = js->queue; j; j = j->next)
		atomic_store(&j->ctl.cancel, 1);
	for (struct job *j = js->running; j; j = j->next)
		atomic_store(&j->ctl.cancel, 1);
	pthread_cond_broadcast(&js->cv);
	pthread_mutex_unlock(&js->mu);
	for (int i = 0; i < js->n; i++)
		pthread_join(js->threads[i], NULL);
	free(js->threads);
	json_decref(js->recent);
	pthread_mutex_destroy(&js->mu);
	pthread_cond_destroy(&js->cv);
	free(js);
}

struct job *jobs_new(const char *op, const char *target, json_t *args, int *fds,
		     size_t nfds, uint64_t conn_id, uid_t uid, job_fn *run)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j || (target && !(j->target = strdup(target)))) {
		free(j);
		json_decref(args);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		free(fds);
		return NULL;
	}
	snprintf(j->op, sizeof j->op, "%s", op);
	j->args = args;
	j->fds = fds;
	j->nfds = nfds;
	j->conn_id = conn_id;
	j->uid = uid;
	j->run = run;
	j->state = "queued";
	j->detach = json_is_true(json_object_get(args, "detach"));
	return j;
}

uint64_t jobs_submit(struct jobs *js, struct job *j)
{
	pthread_mutex_lock(&js->mu);
	j->id = js->next_id++;
	j->started = util_mono();
	util_now_iso(j->started_iso, sizeof j->started_iso);
	if (js->queue_tail)
		js->queue_tail->next = j;
	else
		js->queue = j;
	js->queue_tail = j;
	uint64_t id = j->id;
	pthread_cond_signal(&js->cv);
	pthread_mutex_unlock(&js->mu);
	return id;
}

void jobs_conn_closed(struct jobs *js, uint64_t conn_id)
{
	pthread_mutex_lock(&js->mu);
	struct job *lists[2] = { js->queue, js->running };
	for (int l = 0; l < 2; l++)
		for (struct job *j = lists[l]; j; j = j->next)
			if (j->conn_id == conn_id) {
				if (!j->detach)
					atomic_store(&j->ctl.cancel, 1);
				j->conn_id = 0;
			}
	pthread_mutex_unlock(&js->mu);
}

int jobs_cancel(struct jobs *js, uint64_t id)
{
	int rc = md_fail(MD_ENOENT, "job %llu: no such running job", (unsigned long long)id);
	pthread_mutex_lock(&js->mu);
	struct job *lists[2] = { js->queue, js->running };
	for (int l = 0; l < 2; l++)
		for (struct job *j = lists[l]; j; j = j->next)
			if (j->id == id) {
				atomic_store(&j->ctl.cancel, 1);
				rc = 0;
			}
	if (rc) { /* one that ended: say how, not that there is none */
		size_t i;
		json_t *o;
		json_array_foreach(js->recent, i, o)
			if ((uint64_t)json_integer_value(json_object_get(o, "id")) == id &&
			    json_string_value(json_object_get(o, "state")))
				rc = md_fail(MD_ENOENT, "job %llu: already ended (%s)",
					     (unsigned long long)id,
					     json_string_value(json_object_get(o, "state")));
	}
	pthread_mutex_unlock(&js->mu);
	return rc;
}

json_t *jobs_list(struct jobs *js)
{
	json_t *a = json_array();
	pthread_mutex_lock(&js->mu);
	size_t i;
	json_t *o;
	json_array_foreach(js->recent, i, o)
		json_array_append(a, o);
	for (struct job *j = js->running; j; j = j->next)
		json_array_append_new(a, job_json(j));
	for (struct job *j = js->queue; j; j = j->next)
		json_array_append_new(a, job_json(j));
	pthread_mutex_unlock(&js->mu);
	return a;
}

void jobs_tick(struct jobs *js)
{
	pthread_mutex_lock(&js->mu);
	for (struct job *j = js->running; j; j = j->next) {
		if (!j->conn_id)
			continue;
		json_t *p = json_pack("{s:{s:I,s:s,s:I,s:I}}", "progress", "job", (json_int_t)j->id,
				      "op", j->op, "done", (json_int_t)atomic_load(&j->ctl.done),
				      "total", (json_int_t)atomic_load(&j->ctl.total));
		server_post(js->d->srv, j->conn_id, p, NULL, 0, 0, 1);
	}
	pthread_mutex_unlock(&js->mu);
}
