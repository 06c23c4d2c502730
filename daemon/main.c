/*
 * daemon/main.c — modeld: options, configuration, the store, the socket
 * (or systemd's), signals, readiness. See modeld(8).
 */
#include "daemon/config.h"
#include "daemon/describe.h"
#include "daemon/daemon.h"
#include "daemon/jobs.h"
#include "daemon/pull.h"
#include "daemon/mirror.h"
#include "daemon/sdnotify.h"
#include "daemon/server.h"
#include "daemon/worker.h"
#include "meta/policy.h"
#include "registry/catalog.h"
#include "registry/tindex.h"
#include "registry/maint.h"
#include "registry/store.h"
#include "sources/xfer.h"
#include "lazy/lazy.h"
#include "common/err.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static struct daemon D;

static void usage(FILE *f)
{
	fprintf(f, "usage: modeld [--store DIR] [--socket PATH] [--config FILE] [--log-level L]\n"
		   "              [--workers N] [--policy FILE] [--http ADDR:PORT] [--upstream URL]\n"
		   "              [-n] [-f]\n"
		   "  --http  serve the store read-only over the Hugging Face API (docs/airgap.md)\n"
		   "  --upstream  with --http: pull what the store lacks from this hub\n"
		   "  -n   check the configuration, print \"configuration OK\" and exit\n"
		   "  -f   stay in the foreground (default when started by systemd)\n");
}

static void on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGHUP)
		atomic_store(&D.reload, 1);
	else
		atomic_store(&D.stopping, 1);
	if (D.srv)
		server_wake(D.srv);
	errno = saved;
}

/* The policy: the configured file, else /etc/modeld/policy.conf when it
 * exists, else none (allow everything). */
static int load_policy(struct config *c, struct policy **out)
{
	*out = NULL;
	int rc = 0;
	if (c->policy)
		rc = policy_load(c->policy, out);
	else if (access("/etc/modeld/policy.conf", F_OK) == 0)
		rc = policy_load("/etc/modeld/policy.conf", out);
	/* a rule that likely does not say what was meant (a typo'd id) */
	for (size_t i = 0; !rc && i < policy_nwarnings(*out); i++)
		log_warn("policy: %s", policy_warning(*out, i));
	return rc;
}

static void reload(struct daemon *d)
{
	struct config c;
	if (!d->cfg->config_path) {
		log_info("SIGHUP: no configuration file to reload");
		return;
	}
	if (config_defaults(&c) || config_load(&c, d->cfg->config_path)) {
		log_error("SIGHUP: %s; keeping the running configuration", md_errmsg(MD_EINVAL));
		config_free(&c);
		return;
	}
	log_info("SIGHUP: configuration reloaded from %s (store, socket and workers need a restart)",
		 d->cfg->config_path);
	log_set_level(c.log_level);
	d->cfg->log_level = c.log_level;
	d->cfg->limit_rate = c.limit_rate;
	struct policy *pol;
	if (load_policy(&c, &pol)) {
		log_error("SIGHUP: policy: %s; keeping the previous policy", md_errmsg(MD_EINVAL));
	} else {
		/* a job may still be reading the old one: retire it, free it later */
		static struct policy *retired[8];
		static unsigned nret;
		if (d->pol) {
			policy_free(retired[nret % 8]);
			retired[nret++ % 8] = d->pol;
			log_info("SIGHUP: license policy replaced");
		}
		d->pol = pol;
	}
	config_free(&c);
}

/* Bind the control socket: 0660, parent directory created, a stale socket
 * file replaced, a live one refused. */
static int bind_socket(struct config *c, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->socket) >= sizeof sa.sun_path)
		return md_fail(MD_EINVAL, "%s: socket path too long", c->socket);
	strcpy(sa.sun_path, c->socket);
	char dir[sizeof sa.sun_path];
	strcpy(dir, c->socket);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		int rc = util_mkdir_p(dir, 0755);
		if (rc)
			return rc;
	}
	int crc = paths_check_socket_dir(c->socket);
	if (crc)
		return crc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return md_fail(MD_EIO, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		close(fd);
		return md_fail(MD_EBUSY, "%s: another modeld is listening there", c->socket);
	}
	unlink(c->socket);
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || listen(fd, 128) < 0) {
		rc = md_fail(md_from_errno(errno), "%s: %s", c->socket, strerror(errno));
		close(fd);
		return rc;
	}
	chmod(c->socket, 0660);
	if (c->socket_group) {
		struct group *g = getgrnam(c->socket_group);
		if (!g || chown(c->socket, (uid_t)-1, g->gr_gid) < 0) {
			close(fd);
			return md_fail(MD_EINVAL, "socket_group %s: %s", c->socket_group,
				       g ? strerror(errno) : "no such group");
		}
	}
	*out = fd;
	return 0;
}

/*
 * A command-line flag over the config: the same checks as a config key,
 * the error naming the flag ("--workers 'abc': want 1..64").
 */
static int set_flag(struct config *cfg, const char *flag, const char *key, const char *v)
{
	int rc = config_set(cfg, key, v);
	if (!rc)
		return 0;
	char msg[1024];
	size_t kl = strlen(key);
	snprintf(msg, sizeof msg, "%s", md_errmsg(rc));
	if (!strncmp(msg, key, kl) && msg[kl] == ' ')
		return md_fail(rc, "%s%s", flag, msg + kl);
	return md_fail_prefix(rc, flag);
}

/* Raise the descriptor limit: imports hold one descriptor per file. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Fork into the background; the parent exits once the child is ready. */
static int daemonize(int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char c = 1;
		close(p[1]);
		ssize_t n = read(p[0], &c, 1);
		_exit(n == 1 && c == 0 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		close(nul);
	}
	*ready_fd = p[1];
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	const char *opt_store = NULL, *opt_socket = NULL, *opt_config = NULL, *opt_level = NULL,
		   *opt_policy = NULL, *opt_http = NULL, *opt_upstream = NULL, *opt_workers = NULL;
	int check = 0, foreground = 0;
	static const struct option lo[] = {
		{ "store", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, 'S' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "policy", required_argument, NULL, 'p' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "http", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	log_init("modeld");
	lazy_install(); /* libcurl, libgit2, libarchive, libmicrohttpd: on first use */
	int ch;
	/* -n anywhere makes a bad command line exit 1 (modeld(8)): know it first */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (argv[i][0] == '-' && argv[i][1] && argv[i][1] != '-' &&
		    strspn(argv[i] + 1, "nf") == strlen(argv[i] + 1) && strchr(argv[i], 'n'))
			check = 1; /* -n, -fn, -nf */
	opterr = 0; /* one line of our own naming the argument, not getopt's and the usage */
	const char **one = NULL; /* the option's variable, when it takes one value */
	while ((ch = getopt_long(argc, argv, ":nfc:h", lo, NULL)) != -1) {
		switch (ch) {
		case 's': one = &opt_store; break;
		case 'S': one = &opt_socket; break;
		case 'c': one = &opt_config; break;
		case 'l': one = &opt_level; break;
		case 'w': one = &opt_workers; break;
		case 'p': one = &opt_policy; break;
		case 'u': one = &opt_upstream; break;
		case 'H': one = &opt_http; break;
		case 'n': check = 1; break;
		case 'f': foreground = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("modeld %s\n", MODELD_VERSION); return 0;
		case ':':
			fprintf(stderr, "modeld: %.200s: missing value (see modeld --help)\n",
				argv[optind - 1]);
			return check ? 1 : 2;
		default:
			/* a long option is named by its word; a short one, maybe inside
			 * a cluster such as -nx, by its letter */
			if (!strncmp(argv[optind - 1], "--", 2) || !optopt || optopt >= 256)
				fprintf(stderr, "modeld: unknown option '%.200s' (see modeld --help)\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "modeld: unknown option '-%c' (see modeld --help)\n",
					optopt);
			return check ? 1 : 2;
		}
		if (one) {
			/* as a repeated key in the configuration file: which one
			 * was meant would be a guess */
			if (*one) {
				const char *flag = "?";
				for (const struct option *o = lo; o->name; o++)
					if (o->val == ch)
						flag = o->name;
				fprintf(stderr, "modeld: --%s given twice ('%.200s' and '%.200s'); "
						"give it once\n", flag, *one, optarg);
				return check ? 1 : 2;
			}
			*one = optarg;
			one = NULL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "modeld: unexpected argument '%.200s' (modeld takes only options; "
				"see modeld --help)\n", argv[optind]);
		return check ? 1 : 2;
	}
	if (config_defaults(&cfg)) {
		fprintf(stderr, "modeld: %s\n", md_errmsg(MD_ENOMEM));
		return 1;
	}
	char defcfg[4096];
	int rc = 0;
	if (opt_config) {
		rc = config_load(&cfg, opt_config);
	} else if (paths_default_config(defcfg, sizeof defcfg) == 0 && access(defcfg, F_OK) == 0) {
		rc = config_load(&cfg, defcfg);
	}
	if (!rc && opt_store) rc = set_flag(&cfg, "--store", "store", opt_store);
	if (!rc && opt_socket) rc = set_flag(&cfg, "--socket", "socket", opt_socket);
	if (!rc && opt_level) rc = set_flag(&cfg, "--log-level", "log_level", opt_level);
	if (!rc && opt_policy) rc = set_flag(&cfg, "--policy", "policy", opt_policy);
	if (!rc && opt_upstream) rc = set_flag(&cfg, "--upstream", "upstream", opt_upstream);
	if (!rc && opt_http) rc = set_flag(&cfg, "--http", "http", opt_http);
	if (!rc && opt_workers) rc = set_flag(&cfg, "--workers", "workers", opt_workers);
	if (rc) {
		fprintf(stderr, "modeld: %s\n", md_errmsg(rc));
		config_free(&cfg);
		return check ? 1 : 2;
	}
	log_set_level(cfg.log_level);
	if (cfg.ca_file && access(cfg.ca_file, R_OK) < 0) {
		fprintf(stderr, "modeld: ca_file %s: %s\n", cfg.ca_file, strerror(errno));
		config_free(&cfg);
		return 1;
	}
	if (cfg.ca_file && xfer_set_ca_file(cfg.ca_file)) {
		config_free(&cfg);
		return 1;
	}
	if (cfg.token_file) {
		/* the hub token: a file pulls cannot read would make every pull
		 * of a private repository fail as "not found" */
		char *tok = NULL;
		if ((rc = pull_read_token_file(cfg.token_file, &tok))) {
			fprintf(stderr, "modeld: %s\n", md_errmsg(rc));
			config_free(&cfg);
			return 1;
		}
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	struct policy *pol = NULL;
	if ((rc = load_policy(&cfg, &pol))) {
		fprintf(stderr, "modeld: policy: %s\n", md_errmsg(rc));
		config_free(&cfg);
		return 1;
	}
	if (check) {
		policy_free(pol);
		/* what start-up would refuse later: the socket group, the
		 * mirror's token file (its address was checked when set) */
		if (cfg.socket_group && !getgrnam(cfg.socket_group)) {
			fprintf(stderr, "modeld: socket_group %s: no such group\n", cfg.socket_group);
			config_free(&cfg);
			return 1;
		}
		char *tok = NULL;
		if (cfg.http && cfg.http_token_file &&
		    (rc = mirror_read_token(cfg.http_token_file, &tok))) {
			fprintf(stderr, "modeld: %s\n", md_errmsg(rc));
			config_free(&cfg);
			return 1;
		}
		if (tok) {
			explicit_bzero(tok, strlen(tok));
			free(tok);
		}
		/* an existing store must open (the lock is not taken); a missing
		 * one must be creatable, and -n creates nothing */
		struct stat sb;
		int missing = stat(cfg.store, &sb) < 0 && errno == ENOENT;
		struct store *st;
		if ((rc = missing ? store_creatable(cfg.store)
				  : store_open(cfg.store, STORE_NOLOCK, cfg.catalog_max, &st))) {
			fprintf(stderr, "modeld: %s\n", md_errmsg(rc));
			config_free(&cfg);
			return 1;
		}
		if (!missing)
			store_close(st);
		printf("configuration OK\n");
		config_free(&cfg);
		return 0;
	}

	int listen_fd = -1, ready_fd = -1;
	int n = sdn_listen_fds();
	if (n < 0) {
		log_warn("%s; binding the socket itself", md_errmsg(n));
		n = 0;
	}
	if (n > 1) {
		log_error("socket activation passed %d sockets; expected one", n);
		return 1;
	}
	if (n == 1)
		listen_fd = SDN_LISTEN_FDS_START;
	if (!foreground && !getenv("NOTIFY_SOCKET") && daemonize(&ready_fd) < 0) {
		log_error("fork: %s", strerror(errno));
		return 1;
	}
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);

	D.cfg = &cfg;
	D.started = util_mono();
	D.on_reload = reload;
	D.pol = pol;
	if ((rc = store_open(cfg.store, 0, cfg.catalog_max, &D.st))) {
		log_error("%s", md_errmsg(rc));
		config_free(&cfg);
		return 1;
	}
	if ((rc = worker_init()))
		log_warn("%s", md_errmsg(rc));
	uint64_t cused, cmax;
	store_catalog_usage(D.st, &cused, &cmax);
	if (cused > cmax / 10 * 9) {
		char a[32], b[32];
		util_human_size(cused, a, sizeof a);
		util_human_size(cmax, b, sizeof b);
		log_warn("catalog %s of %s used: raise catalog_max in modeld.conf before it is full",
			 a, b);
	}
	uint64_t nstale, stale_bytes;
	if ((rc = maint_clean_staging(D.st, &nstale, &stale_bytes)))
		log_warn("staging: %s", md_errmsg(rc));
	else if (nstale)
		log_info("removed %llu staging entries (%llu bytes) left by an earlier run",
			 (unsigned long long)nstale, (unsigned long long)stale_bytes);
	if ((rc = catalog_ensure_summaries(D.st)))
		log_warn("catalog summaries: %s", md_errmsg(rc));
	if ((rc = tindex_ensure(D.st)))
		log_warn("tensor index: %s", md_errmsg(rc));
	size_t nre, nrefail;
	if ((rc = describe_refresh(&D, &nre, &nrefail)))
		log_warn("describing stored revisions again: %s", md_errmsg(rc));
	else if (nre || nrefail)
		log_info("described %zu stored revisions again, %zu failed", nre, nrefail);
	if (listen_fd < 0 && (rc = bind_socket(&cfg, &listen_fd))) {
		log_error("%s", md_errmsg(rc));
		store_close(D.st);
		config_free(&cfg);
		return 1;
	}
	if ((rc = pull_init()) || (rc = server_init(&D, listen_fd, &D.srv)) ||
	    (rc = jobs_init(&D, cfg.workers, &D.jobs))) {
		log_error("%s", md_errmsg(rc));
		return 1;
	}
	struct mirror *mirror = NULL; /* daemon/mirror.c: the HF-compatible endpoint */
	if (cfg.http && (rc = mirror_start(&D, cfg.http, cfg.http_token_file, &mirror))) {
		log_error("%s", md_errmsg(rc));
		return 1;
	}
	if (mirror && cfg.upstream)
		mirror_set_upstream(mirror, pull_through, &D);
	if (mirror)
		log_info("mirror: serving the Hugging Face API on http://%s%s", cfg.http,
			 cfg.http_token_file ? " (bearer token required)" : "");
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	log_info("modeld %s ready: store %s, socket %s, %d workers", MODELD_VERSION, cfg.store,
		 n == 1 ? "(from systemd)" : cfg.socket, cfg.workers);
	sdn_notify("READY=1\nSTATUS=serving %s\nMAINPID=%d", cfg.store, (int)getpid());
	if (ready_fd >= 0) {
		char c = 0;
		if (write(ready_fd, &c, 1) != 1)
			log_warn("could not tell the parent we are ready");
		close(ready_fd);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 2);
			close(nul);
		}
	}

	server_run(D.srv);

	sdn_notify("STOPPING=1");
	mirror_stop(mirror);
	log_info("stopping: canceling running jobs");
	jobs_shutdown(D.jobs);   /* cancels jobs; their replies go to the mail */
	D.jobs = NULL;
	server_free(D.srv);      /* flushes what it can, closes connections */
	if (n != 1)
		unlink(cfg.socket);
	store_close(D.st);
	policy_free(D.pol);
	log_info("stopped");
	config_free(&cfg);
	return 0;
}
