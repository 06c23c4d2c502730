/* daemon/server.c — see server.h. */
#include "daemon/server.h"
#include "daemon/jobs.h"
#include "daemon/ops.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUTQ_MAX 256   /* frames queued for one slow connection before it is dropped */
/* Descriptors queued for one connection above which it gets no new request
 * read until it has taken them (a client pipelining `open`s without reading
 * the replies must not run the daemon out of descriptors: 1024 connections x
 * (256 + one reply's 200) stays under LimitNOFILE). */
#define OUTQ_MAX_FDS 256
/* Frames queued for one connection above which it gets no new request read
 * either: replies without descriptors (errors, e.g. past the lease cap)
 * would otherwise pile up to OUTQ_MAX and drop a client that is merely
 * reading more slowly than it pipelines. Half of OUTQ_MAX leaves room for
 * what requests already in flight still post. */
#define OUTQ_READ_MAX (OUTQ_MAX / 2)

struct outmsg {
	struct outmsg *next;
	uint8_t *buf;
	size_t len, off;
	int fds[PROTO_MAX_FDS];
	size_t nfds;
	int final;
};

struct conn {
	struct conn *next;
	int fd;
	struct ops_peer peer;
	struct proto_reader rd;
	struct outmsg *out, *out_tail;
	size_t nout;
	size_t nout_fds; /* descriptors in out, not yet sent */
	int busy;      /* a request is in flight: read nothing more */
	int closing;   /* close once the output is flushed */
	int dead;
};

/* Whether the next request of c may be read: not while the replies it has
 * not taken hold OUTQ_MAX_FDS descriptors or OUTQ_READ_MAX frames. */
static int may_read(const struct conn *c)
{
	return c->nout_fds < OUTQ_MAX_FDS && c->nout < OUTQ_READ_MAX;
}

struct mail {
	struct mail *next;
	uint64_t conn_id;
	struct outmsg *m;
	int droppable;
};

struct server {
	struct daemon *d;
	int lfd;
	int wake[2];
	struct conn *conns;
	size_t nconns;
	uint64_t next_conn;
	pthread_mutex_t mu;
	struct mail *mail, *mail_tail;
	uint64_t accept_paused_until;   /* monotonic ms: out of descriptors */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void free_out(struct outmsg *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	free(m->buf);
	free(m);
}

static struct outmsg *make_out(json_t *msg, int *fds, size_t nfds, int final)
{
	struct outmsg *m = calloc(1, sizeof *m);
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	size_t n = s ? strlen(s) : 0;
	if (nfds > PROTO_MAX_FDS)
		nfds = PROTO_MAX_FDS; /* callers never pass more; belt and braces */
	if (!m || !s || n > PROTO_MAX_PAYLOAD || !(m->buf = malloc(PROTO_HDR + n))) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		free(s);
		if (m)
			free(m->buf);
		free(m);
		return NULL;
	}
	proto_hdr_encode(m->buf, (uint32_t)n, (uint32_t)nfds);
	memcpy(m->buf + PROTO_HDR, s, n);
	free(s);
	m->len = PROTO_HDR + n;
	if (nfds)
		memcpy(m->fds, fds, nfds * sizeof(int));
	m->nfds = nfds;
	m->final = final;
	return m;
}

static struct outmsg *make_out_raw(const char *prefix, const char *json, size_t len,
				   const char *suffix, int final)
{
	size_t a = strlen(prefix), c = strlen(suffix), n = a + len + c;
	struct outmsg *m = calloc(1, sizeof *m);
	if (!m || n > PROTO_MAX_PAYLOAD || !(m->buf = malloc(PROTO_HDR + n))) {
		free(m);
		return NULL;
	}
	proto_hdr_encode(m->buf, (uint32_t)n, 0);
	memcpy(m->buf + PROTO_HDR, prefix, a);
	memcpy(m->buf + PROTO_HDR + a, json, len);
	memcpy(m->buf + PROTO_HDR + a + len, suffix, c);
	m->len = PROTO_HDR + n;
	m->final = final;
	return m;
}

static void post_out(struct server *srv, uint64_t conn_id, struct outmsg *m, int droppable);

void server_post_raw(struct server *srv, uint64_t conn_id, const char *prefix, const char *json,
		     size_t len, const char *suffix, int final)
{
	post_out(srv, conn_id, make_out_raw(prefix, json, len, suffix, final), 0);
}

void server_wake(struct server *srv)
{
	char c = 1;
	ssize_t w = write(srv->wake[1], &c, 1);
	(void)w; /* a full pipe already means "wake up" */
}

void server_post(struct server *srv, uint64_t conn_id, json_t *msg, int *fds, size_t nfds,
		 int final, int droppable)
{
	post_out(srv, conn_id, make_out(msg, fds, nfds, final), droppable);
}

static void post_out(struct server *srv, uint64_t conn_id, struct outmsg *m, int droppable)
{
	struct mail *ml = m ? calloc(1, sizeof *ml) : NULL;
	if (!ml) {
		free_out(m);
		log_error("out of memory posting a reply; dropping connection %llu",
			  (unsigned long long)conn_id);
		/* the connection would hang waiting: post a bare close marker */
		ml = calloc(1, sizeof *ml);
		if (!ml)
			return;
	}
	ml->conn_id = conn_id;
	ml->m = m;
	ml->droppable = droppable;
	pthread_mutex_lock(&srv->mu);
	if (srv->mail_tail)
		srv->mail_tail->next = ml;
	else
		srv->mail = ml;
	srv->mail_tail = ml;
	pthread_mutex_unlock(&srv->mu);
	server_wake(srv);
}

void server_reply_ok(struct server *srv, uint64_t conn_id, json_t *result, int *fds, size_t nfds)
{
	json_t *m = json_object();
	json_object_set_new(m, "ok", json_true());
	json_object_set_new(m, "result", result ? result : json_object());
	server_post(srv, conn_id, m, fds, nfds, 1, 0);
}

void server_reply_err(struct server *srv, uint64_t conn_id, int rc, const char *msg)
{
	json_t *m = json_pack("{s:b,s:i,s:s}", "ok", 0, "code", rc, "error",
			      msg ? msg : md_strerror(rc));
	server_post(srv, conn_id, m, NULL, 0, 1, 0);
}

int server_init(struct daemon *d, int lfd, struct server **out)
{
	struct server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return MD_ENOMEM;
	srv->d = d;
	srv->lfd = lfd;
	srv->next_conn = 1;
	if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(srv);
		return md_fail(MD_EIO, "pipe: %s", strerror(errno));
	}
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	pthread_mutex_init(&srv->mu, NULL);
	*out = srv;
	return 0;
}

static void conn_free(struct server *srv, struct conn *c)
{
	if (srv->d->jobs)
		jobs_conn_closed(srv->d->jobs, c->peer.conn_id);
	ops_conn_closed(srv->d, &c->peer);
	while (c->out) {
		struct outmsg *m = c->out;
		c->out = m->next;
		free_out(m);
	}
	proto_reader_free(&c->rd);
	close(c->fd);
	free(c);
}

static void accept_all(struct server *srv)
{
	for (;;) {
		int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* the pending connection stays queued and the socket
				 * readable: stop polling it for a while instead of
				 * spinning (connections closing free descriptors) */
				if (!srv->accept_paused_until)
					log_warn("accept: %s; new connections wait", strerror(errno));
				srv->accept_paused_until = now_ms() + SERVER_ACCEPT_PAUSE_MS;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				log_warn("accept: %s", strerror(errno));
			}
			return;
		}
		if (srv->accept_paused_until) {
			srv->accept_paused_until = 0;
			log_info("accept: connections accepted again");
		}
		struct ucred cr;
		socklen_t len = sizeof cr;
		/* fail closed: no credentials, no service */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof cr) {
			log_warn("connection without readable peer credentials refused");
			close(fd);
			continue;
		}
		if (cr.uid != 0 && cr.uid != geteuid()) {
			/* another user may not take every slot (clients may hold
			 * connections, and their leases, as long as they run) */
			size_t mine = 0;
			for (struct conn *o = srv->conns; o; o = o->next)
				mine += o->peer.uid == cr.uid;
			if (mine >= SERVER_MAX_CONNS_PER_UID) {
				log_warn("connection from uid %u refused: it has %zu open",
					 (unsigned)cr.uid, mine);
				close(fd);
				continue;
			}
		}
		if (srv->nconns >= SERVER_MAX_CONNS) {
			log_warn("connection from uid %u refused: %d connections open",
				 (unsigned)cr.uid, SERVER_MAX_CONNS);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->peer.conn_id = srv->next_conn++;
		c->peer.uid = cr.uid;
		c->peer.gid = cr.gid;
		c->peer.pid = cr.pid;
		c->peer.can_write = cr.uid == 0 || cr.uid == geteuid();
		proto_reader_init(&c->rd);
		c->next = srv->conns;
		srv->conns = c;
		srv->nconns++;
		log_debug("connection %llu from uid %u pid %d", (unsigned long long)c->peer.conn_id,
			  (unsigned)cr.uid, (int)cr.pid);
	}
}

static struct conn *find_conn(struct server *srv, uint64_t id)
{
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->peer.conn_id == id)
			return c;
	return NULL;
}

static void drain_mail(struct server *srv)
{
	char buf[256];
	while (read(srv->wake[0], buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&srv->mu);
	struct mail *ml = srv->mail;
	srv->mail = srv->mail_tail = NULL;
	pthread_mutex_unlock(&srv->mu);
	while (ml) {
		struct mail *next = ml->next;
		struct conn *c = find_conn(srv, ml->conn_id);
		if (!c || c->dead || (ml->droppable && c->out)) {
			free_out(ml->m);
		} else if (!ml->m || c->nout >= OUTQ_MAX) {
			free_out(ml->m);
			c->dead = 1;
		} else {
			if (c->out_tail)
				c->out_tail->next = ml->m;
			else
				c->out = ml->m;
			c->out_tail = ml->m;
			c->nout++;
			c->nout_fds += ml->m->nfds;
			if (ml->m->final)
				c->busy = 0;
		}
		free(ml);
		ml = next;
	}
}

static void flush_conn(struct conn *c)
{
	while (c->out && !c->dead) {
		struct outmsg *m = c->out;
		struct iovec iov = { m->buf + m->off, m->len - m->off };
		union {
			char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
			struct cmsghdr align;
		} cm;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (m->off == 0 && m->nfds) {
			memset(&cm, 0, sizeof cm);
			msg.msg_control = cm.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
			struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
			h->cmsg_level = SOL_SOCKET;
			h->cmsg_type = SCM_RIGHTS;
			h->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
			memcpy(CMSG_DATA(h), m->fds, sizeof(int) * m->nfds);
		}
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			c->dead = 1;
			return;
		}
		m->off += (size_t)w;
		if (m->off < m->len)
			return;
		c->out = m->next;
		if (!c->out)
			c->out_tail = NULL;
		c->nout--;
		c->nout_fds -= m->nfds;
		free_out(m);
	}
	if (!c->out && c->closing)
		c->dead = 1;
}

static void read_conn(struct server *srv, struct conn *c)
{
	for (;;) {
		if (!c->busy && !may_read(c))
			return; /* until the client takes the replies it has */
		if (!c->busy) {
			char *payload;
			size_t len, nfds;
			int fds[PROTO_MAX_FDS];
			int rc = proto_reader_next(&c->rd, &payload, &len, fds, &nfds);
			if (rc < 0) {
				log_info("connection %llu (uid %u pid %d): %s; disconnected",
					 (unsigned long long)c->peer.conn_id, (unsigned)c->peer.uid,
					 (int)c->peer.pid, md_errmsg(rc));
				c->dead = 1;
				return;
			}
			if (rc == 1) {
				c->busy = 1;
				int r = ops_handle(srv->d, &c->peer, payload, len, fds, nfds);
				free(payload);
				if (r == OPS_MORE)
					c->busy = 0;
				else if (r == OPS_CLOSE)
					c->closing = 1;
				continue;
			}
		} else {
			return; /* leave further bytes in the socket until the reply */
		}
		long n = proto_reader_fill(&c->rd, c->fd);
		if (n == MD_EBUSY)
			return;
		if (n <= 0) {
			if (n < 0)
				log_info("connection %llu: %s", (unsigned long long)c->peer.conn_id,
					 md_errmsg((int)n));
			c->dead = 1;
			return;
		}
	}
}

int server_run(struct server *srv)
{
	struct pollfd *pfd = NULL;
	struct conn **who = NULL;
	size_t cap = 0;
	double last_tick = util_mono();
	int active = 1;   /* something happened since the last idle trim (start-up did) */
	while (!atomic_load(&srv->d->stopping)) {
		size_t need = srv->nconns + 2;
		if (need > cap) {
			cap = need * 2;
			struct pollfd *np = realloc(pfd, cap * sizeof *pfd);
			struct conn **nw = np ? realloc(who, cap * sizeof *who) : NULL;
			if (!np || !nw) {
				free(np ? np : pfd);
				log_error("out of memory in the socket loop");
				return MD_ENOMEM;
			}
			pfd = np;
			who = nw;
		}
		size_t n = 0;
		pfd[n++] = (struct pollfd){ .fd = srv->lfd,
					    .events = now_ms() < srv->accept_paused_until ? 0 : POLLIN };
		pfd[n++] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
		for (struct conn *c = srv->conns; c; c = c->next) {
			short ev = POLLRDHUP;
			if (!c->busy && !c->closing && may_read(c))
				ev |= POLLIN;
			if (c->out)
				ev |= POLLOUT;
			who[n] = c;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		int r = poll(pfd, n, 200);
		if (r < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (r == 0 && active) {
			/* idle: hand freed heap and catalog pages back (RSS) */
			malloc_trim(0);
			store_release_memory(srv->d->st);
			active = 0;
		} else if (r > 0) {
			active = 1;
		}
		drain_mail(srv);
		if (atomic_exchange(&srv->d->reload, 0) && srv->d->on_reload)
			srv->d->on_reload(srv->d);
		if (r > 0 && (pfd[0].revents & POLLIN))
			accept_all(srv);
		for (size_t i = 2; r > 0 && i < n; i++) {
			struct conn *c = who[i];
			if (pfd[i].revents & POLLIN)
				read_conn(srv, c);
			else if (pfd[i].revents & (POLLHUP | POLLERR | POLLRDHUP))
				c->dead = 1;
		}
		/* replies posted by inline ops and the mail just drained */
		drain_mail(srv);
		/* requests that arrived while the previous one was in flight */
		for (struct conn *c = srv->conns; c; c = c->next)
			if (!c->busy && !c->dead && !c->closing && c->rd.len >= PROTO_HDR)
				read_conn(srv, c);
		drain_mail(srv);
		for (struct conn *c = srv->conns; c; c = c->next)
			if (c->out)
				flush_conn(c);
		/* requests held back while replies waited for the client
		 * (may_read): their replies wake the loop */
		for (struct conn *c = srv->conns; c; c = c->next)
			if (!c->busy && !c->dead && !c->closing && c->rd.len >= PROTO_HDR &&
			    may_read(c))
				read_conn(srv, c);
		for (struct conn **p = &srv->conns; *p;) {
			struct conn *c = *p;
			if (c->dead) {
				*p = c->next;
				srv->nconns--;
				conn_free(srv, c);
			} else {
				p = &c->next;
			}
		}
		double now = util_mono();
		if (now - last_tick >= 0.2) {
			last_tick = now;
			jobs_tick(srv->d->jobs);
		}
	}
	free(pfd);
	free(who);
	return 0;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	drain_mail(srv);
	while (srv->conns) {
		struct conn *c = srv->conns;
		srv->conns = c->next;
		flush_conn(c);
		conn_free(srv, c);
	}
	close(srv->lfd);
	close(srv->wake[0]);
	close(srv->wake[1]);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
