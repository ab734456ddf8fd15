/*
 * FastCGI, CGI and the `serve` socket.  This is the only file that knows
 * libfcgi; past handler_handle() every transport shares every line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi.h"
#include "group_commit.h"
#include "store.h"
#include "util.h"

/* Backlog of the `serve` listening socket. */
#define LISTEN_BACKLOG 128
/* systemd's first passed descriptor (sd_listen_fds(3)). */
#define SD_LISTEN_FDS_START 3

/*
 * Signal handling.  TERM, INT and HUP are blocked in every thread and
 * deliverable only while the main thread waits in ppoll(), so no read of
 * a request is ever cut short by EINTR and the handler only sets a flag:
 * the main thread then stops taking connections, lets the workers finish
 * the requests in hand (each bounded by read_timeout while it is still
 * being received) and returns.
 */
static volatile sig_atomic_t stop_requested;

static void on_terminate(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void termination_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

static void install_signals(void)
{
	struct sigaction sa;
	sigset_t term;

	termination_signals(&term);
	sigprocmask(SIG_BLOCK, &term, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_terminate;
	sa.sa_mask = term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL); /* a vanished server is an error return, not death */
	sigaction(SIGUSR1, &sa, NULL); /* mod_fcgid's graceful-restart signal: finish normally */
}

bool fcgi_detect(int *listen_fd)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int64_t p, n;

	if (pid && fds && parse_int64(pid, 1, INT32_MAX, &p) && p == (int64_t)getpid() &&
	    parse_int64(fds, 1, 1024, &n)) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		*listen_fd = SD_LISTEN_FDS_START;
		return true;
	}
	if (!FCGX_IsCGI()) {
		*listen_fd = 0;
		return true;
	}
	/* FCGX_IsCGI() initialised libfcgi, which installed handlers for TERM,
	 * USR1 and PIPE that only set a flag: a CGI process waiting for a body
	 * that never comes, a command, or a hook runner must die of TERM like
	 * any program (nothing is committed before a body is read). */
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	return false;
}

static int listen_unix(const char *path, int mode, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
	    (mode >= 0 && chmod(path, (mode_t)mode) < 0) || listen(fd, LISTEN_BACKLOG) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int listen_tcp(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *h = spec;
	size_t hlen;
	struct addrinfo hints = {0}, *res = NULL;
	int fd = -1, one = 1, gai;

	if (colon == NULL || colon[1] == '\0') {
		snprintf(err, errlen, "%s: expected PATH, HOST:PORT or [IPV6]:PORT", spec);
		return -1;
	}
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		h = spec + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof host) {
		snprintf(err, errlen, "%s: expected PATH, HOST:PORT or [IPV6]:PORT", spec);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	gai = getaddrinfo(host, colon + 1, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(gai));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int fcgi_listen(const char *spec, int mode, char *err, size_t errlen)
{
	if (spec[0] == '/' || spec[0] == '.')
		return listen_unix(spec, mode, err, errlen);
	return listen_tcp(spec, err, errlen);
}

/*
 * The FastCGI accept loop.
 *
 * The main thread owns every connection that is not in a worker's hands:
 * it accepts them, watches them with epoll (edge-triggered) until a whole
 * request has arrived, and only then queues them for one of a few worker
 * threads, each with its own FCGX_Request and its own handler (database
 * handle).  So a connection that sends nothing, or half a request, holds
 * no worker: it is closed once read_timeout has passed since it was
 * accepted (or since its first byte, on a connection kept open).  A
 * request too large to wait for (GATE_PEEK_BYTES) is handed over while
 * its body still streams in; the worker's reading is then bounded by the
 * same deadline, enforced by the main thread shutting the socket down.
 * Kept-open connections (FCGI_KEEP_CONN) return to the main thread
 * between requests; others are closed after draining what the server
 * still sends, so that it never sees a reset instead of the answer.
 *
 * libfcgi reads a request from FCGX_Request.ipcFd when it is already set
 * (it accepts only when it is -1); the worker gives it a dup() of the
 * connection and keeps the original open, so the descriptor number the
 * main thread may shut down is never reused while the worker runs.
 */

/* Threads answering requests at once in one process (a -D may set it
 * for a measurement). */
#ifndef WORKER_THREADS
#define WORKER_THREADS 16
#endif
#define WORKER_STACK_BYTES (1024 * 1024)
/* malloc arenas of a process (glibc), whatever the number of threads. */
#define MALLOC_ARENAS 2
/* Connections held open at once; beyond it the oldest idle kept-open
 * connection is closed, or else the new one. */
#define MAX_CONNECTIONS 256
/* A request is queued once complete, or once this many bytes wait. */
#define GATE_PEEK_BYTES 65536
/* Records looked at before a request is queued anyway. */
#define GATE_MAX_RECORDS 256
/* How long a finished connection's remaining input is drained. */
#define LINGER_MS 2000
/* How long a kept-open connection may wait for its next request. */
#define KEEPALIVE_IDLE_MS (600 * 1000)
/* Least time a worker has to read a request that waited in the queue. */
#define QUEUED_GRACE_MS 2000
/* How long accepting pauses after running out of descriptors. */
#define ACCEPT_PAUSE_MS 1000
/* Requests the main thread answers together (answer_here): one submit. */
#define HERE_BATCH_MAX 16
_Static_assert(HERE_BATCH_MAX <= STORE_BATCH_MAX, "a batch is one group commit submit");
/* FastCGI record header (FastCGI specification, section 3.3). */
#define FCGI_HEADER_BYTES 8
#define FCGI_RECORD_PARAMS 4
#define FCGI_RECORD_STDIN 5

enum conn_state {
	CONN_FREE = 0,
	CONN_ARRIVING, /* main thread: waiting for a whole request */
	CONN_WORKER,   /* queued for a worker, or in its hands (only the
	                * main thread writes the state) */
	CONN_LINGER,   /* main thread: answered, draining before close */
};

struct conn {
	int fd;
	enum conn_state state;
	int64_t deadline_ms; /* ARRIVING: drop it then; LINGER: close it then */
	int64_t since_ms;    /* accepted, or handed back by its worker */
	bool started;        /* ARRIVING: bytes of a request have been seen */
	size_t gate_need;    /* ARRIVING: bytes needed before peeking again */
	bool keep;           /* set by the worker: may carry another request */
	bool is_unix;        /* a unix socket (no reset on close, see worker_main) */
	bool closed;         /* the worker closed it: only its slot is left to free */
	bool watched;        /* registered with epoll */
};

struct worker {
	struct pool *pool;
	pthread_t thread;
	pthread_cond_t wake;
	bool idle;            /* on the pool's idle stack */
	struct handler h;     /* this thread's handler (own database handle) */
	FCGX_Request req;
	/* The worker's connection and deadline, between it and the main
	 * thread (a lock of its own: the pool's is busy with dispatching). */
	pthread_mutex_t dl_lock;
	int conn;             /* index in pool->conns of the request in hand, or -1 */
	int64_t deadline_ms;  /* while receiving or sending: shut the connection down then; else 0 */
	bool shut;            /* the deadline passed and the connection was shut down */
};

/* A request the main thread answers, one of a batch. */
struct here {
	struct handler h;     /* one per request: its job points into its hooks cache */
	FCGX_Request req;
	struct request r;
	struct received rx;
	struct prepared pr;
	struct answer ans;
	bool begun;           /* request_begin succeeded */
	bool has_job;         /* pr.job is to be committed */
	bool input_done;      /* its input was read to its end */
};

struct pool {
	pthread_mutex_t lock;
	struct worker workers[WORKER_THREADS];
	int n_workers;
	int idle[WORKER_THREADS]; /* LIFO: the last worker to finish takes the next request */
	int n_idle;
	int queue[MAX_CONNECTIONS]; /* conns waiting for a worker, FIFO */
	size_t q_head, q_len;
	int done[MAX_CONNECTIONS]; /* conns handed back by workers */
	size_t n_done;
	bool stopping;            /* workers exit once the queue is empty */
	bool draining;            /* the main thread waits for the requests in hand */
	int wake_fd;              /* eventfd: a worker handed a connection back */
	int64_t read_timeout_ms;
	const char *web_server_addrs; /* FCGI_WEB_SERVER_ADDRS, or NULL */
	struct conn conns[MAX_CONNECTIONS];
	size_t n_conns;
	bool answer_here;            /* complete requests are answered by the main thread */
	struct group_commit *group; /* the process's group commit (borrowed) */
	struct here here[HERE_BATCH_MAX];
	int ready[HERE_BATCH_MAX];   /* conns whose requests it answers next, together */
	int n_ready;
};

static ssize_t fcgi_read(void *ctx, char *buf, size_t len)
{
	FCGX_Stream *in = ctx;
	int want = len > (size_t)INT32_MAX ? INT32_MAX : (int)len;
	int n = FCGX_GetStr(buf, want, in);
	if (n == 0 && FCGX_GetError(in) != 0)
		return -1; /* the connection failed or was shut down at its deadline */
	return n;
}

/* The CGI-style header block and body both transports send. */
static int format_answer(const struct answer *ans, char *buf, size_t cap)
{
	return snprintf(buf, cap,
	                "Status: %d %s\r\n"
	                "%s"
	                "Content-Type: text/plain; charset=utf-8\r\n"
	                "Content-Length: %zu\r\n"
	                "Cache-Control: no-store\r\n"
	                "\r\n"
	                "%s",
	                ans->status, ans->phrase, ans->allow_post ? "Allow: POST\r\n" : "",
	                strlen(ans->body), ans->body);
}

/*
 * The start of a request on connection c: libfcgi reads its parameters
 * from a dup() of the connection.  False when it is not a request (EOF,
 * garbage, or shut down at the deadline).
 */
static bool request_begin(FCGX_Request *req, struct conn *c, struct request *r)
{
	req->ipcFd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	if (req->ipcFd < 0) {
		log_error("FastCGI: dup: %s", strerror(errno));
		return false;
	}
	/* Not closed by the Finish that FCGX_Accept_r starts with; and
	 * closed without libfcgi's own blocking drain when it closes it. */
	req->keepConnection = 1;
	req->detached = 1;
	if (FCGX_Accept_r(req) < 0) {
		req->ipcFd = -1; /* libfcgi closed it */
		return false;
	}
	r->params = req->envp;
	r->read_body = fcgi_read;
	r->read_ctx = req->in;
	return true;
}

/* Whether the request's input was read to its end: whatever the handler
 * did not read means the connection cannot be reused; reading one byte
 * tells (the request is complete here). */
static bool input_read(FCGX_Request *req, const struct received *rx)
{
	return !rx->dropped && FCGX_GetChar(req->in) == EOF && FCGX_GetError(req->in) == 0;
}

/*
 * Writes the answer; false when that failed.  The error stream is closed
 * first (it carries nothing: our log goes to stderr itself), so that
 * closing the output writes the answer, its end and FCGI_END_REQUEST in
 * one write: a server that closes the connection once it has the
 * answer's end (lighttpd does) would make a second write fail.
 */
static bool answer_send(FCGX_Request *req, const struct answer *ans)
{
	char out[512];
	int n = format_answer(ans, out, sizeof out);
	bool ok = FCGX_PutStr(out, n, req->out) >= 0;

	ok &= FCGX_FClose(req->err) == 0;
	ok &= FCGX_FClose(req->out) == 0;
	return ok;
}

/*
 * The end of a request whose answer was sent (sent: without error):
 * returns whether the connection may carry another request: the server
 * asked to keep it (FCGI_KEEP_CONN), the request's input was read to its
 * end and nothing failed.  *read_all tells whether the input was read to
 * its end (nothing the server still sends is left unread).
 */
static bool request_end(FCGX_Request *req, bool input_done, bool sent, bool *read_all)
{
	bool keep = req->keepConnection && input_done && sent && FCGX_GetError(req->in) == 0;

	*read_all = input_done && sent;
	req->keepConnection = 0;
	req->detached = 1;
	FCGX_Finish_r(req); /* closes only libfcgi's dup */
	return keep;
}

/*
 * One request on connection c, in worker w: the handler receives the body
 * (under the deadline), then processes it and the answer is written
 * (under the deadline too).  Returns request_end's answer.
 */
static bool serve_one(struct worker *w, struct conn *c, bool *read_all)
{
	struct pool *p = w->pool;
	struct received rx;
	struct answer ans = {0};
	struct request r;
	bool input_done, timed_out, sent;

	*read_all = false;
	if (!request_begin(&w->req, c, &r))
		return false;
	handler_receive(&w->h, &r, &rx);
	input_done = input_read(&w->req, &rx);
	pthread_mutex_lock(&w->dl_lock);
	w->deadline_ms = 0;
	timed_out = w->shut;
	pthread_mutex_unlock(&w->dl_lock);

	/* A writer about to commit waits a moment for this delivery. */
	group_commit_expect(w->h.group);
	handler_process(&w->h, &r, &rx, &ans);
	group_commit_unexpect(w->h.group);
	handler_received_free(&rx);
	/* Sending is bounded as receiving is: a client that does not read
	 * its answers must not hold this thread past read_timeout. */
	pthread_mutex_lock(&w->dl_lock);
	if (!w->shut)
		w->deadline_ms = time_now_ms() + p->read_timeout_ms;
	pthread_mutex_unlock(&w->dl_lock);
	sent = !timed_out && answer_send(&w->req, &ans);
	pthread_mutex_lock(&w->dl_lock);
	w->deadline_ms = 0;
	sent = sent && !w->shut;
	pthread_mutex_unlock(&w->dl_lock);
	if (!sent && !timed_out)
		log_warn("the web server went away before the answer was sent");
	return request_end(&w->req, input_done, sent, read_all);
}

/*
 * After a request on c: a unix socket that carries no more requests, and
 * whose request was read to its end, is closed at once (returns true):
 * nothing is left for the server to send (a server still sending a body
 * we did not read would see its write fail), and a unix socket is never
 * reset, so it needs no lingering.  Its worker's deadline is 0 by then,
 * so the main thread no longer looks at its descriptor.
 */
static bool close_finished(struct conn *c, bool keep, bool read_all)
{
	bool closed = !keep && read_all && c->is_unix;

	if (closed)
		close(c->fd);
	return closed;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;
	int64_t one = 1;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		int ci;
		int64_t deadline;
		bool keep, closed, wake, read_all;

		while (p->q_len == 0 && !p->stopping) {
			if (!w->idle) {
				p->idle[p->n_idle++] = (int)(w - p->workers);
				w->idle = true;
			}
			pthread_cond_wait(&w->wake, &p->lock);
		}
		if (p->q_len == 0)
			break; /* stopping, and nothing left */
		if (w->idle) { /* woken by something else than a dispatch to us */
			for (int i = 0; i < p->n_idle; i++)
				if (p->idle[i] == (int)(w - p->workers)) {
					p->idle[i] = p->idle[--p->n_idle];
					break;
				}
			w->idle = false;
		}
		ci = p->queue[p->q_head];
		p->q_head = (p->q_head + 1) % MAX_CONNECTIONS;
		p->q_len--;
		deadline = p->conns[ci].deadline_ms;
		pthread_mutex_unlock(&p->lock);
		/* The deadline the request started arriving with: handing it to
		 * a worker does not give the client more time (but a request that
		 * waited for a worker past it gets a moment to be read). */
		if (deadline < time_now_ms() + QUEUED_GRACE_MS)
			deadline = time_now_ms() + QUEUED_GRACE_MS;
		pthread_mutex_lock(&w->dl_lock);
		w->conn = ci;
		w->shut = false;
		w->deadline_ms = deadline;
		pthread_mutex_unlock(&w->dl_lock);

		keep = serve_one(w, &p->conns[ci], &read_all);
		/* Whatever way it ended, its connection is no longer the
		 * worker's to be shut down at a deadline (the slot may soon
		 * carry another connection). */
		pthread_mutex_lock(&w->dl_lock);
		w->deadline_ms = 0;
		w->conn = -1;
		pthread_mutex_unlock(&w->dl_lock);
		/* The main thread need not be woken for a connection closed here
		 * (it frees the slot when it next wakes, for a new connection or
		 * within a second). */
		closed = close_finished(&p->conns[ci], keep, read_all);
		if (closed)
			handler_after_answer(&w->h); /* nobody waits for the slot */
		pthread_mutex_lock(&p->lock);
		p->conns[ci].keep = keep;
		p->conns[ci].closed = closed;
		p->done[p->n_done++] = ci;
		wake = !closed || p->draining;
		if (wake) {
			pthread_mutex_unlock(&p->lock);
			if (write(p->wake_fd, &one, sizeof one) < 0)
				log_error("FastCGI: waking the main thread: %s", strerror(errno));
			if (!closed)
				handler_after_answer(&w->h);
			pthread_mutex_lock(&p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Queues a complete (or large) request for the workers. */
static void conn_returned(struct pool *p, int epfd, int ci, bool stopping);

static void dispatch(struct pool *p, int epfd, int ci)
{
	struct conn *c = &p->conns[ci];
	struct worker *w = NULL;

	if (c->watched)
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->watched = false;
	pthread_mutex_lock(&p->lock);
	c->state = CONN_WORKER;
	p->queue[(p->q_head + p->q_len) % MAX_CONNECTIONS] = ci;
	p->q_len++;
	if (p->n_idle > 0) {
		w = &p->workers[p->idle[--p->n_idle]];
		w->idle = false;
	}
	pthread_mutex_unlock(&p->lock);
	/* Woken after the unlock, so that it does not wake to a held lock
	 * (it finds the queue as it is then: nothing is lost). */
	if (w != NULL)
		pthread_cond_signal(&w->wake);
}

/*
 * Answers the requests of p->ready on the main thread (answer_here), in
 * one transaction.  Each arrived whole, so every byte of it is in its
 * socket's queue and reading it cannot block, and its answer is a few
 * hundred bytes into an empty socket buffer; an SQLite transaction takes
 * microseconds (and at durability = full one flush of the log, which
 * serves the whole batch: the longer the flush, the more requests wait
 * for the next one).  Handing each request to a worker, and the worker's
 * answer back, would cost more than the work: the requests that arrive
 * together are received and checked one after the other, committed
 * together, then answered.
 */
static void answer_ready(struct pool *p, int epfd)
{
	struct store_job jobs[HERE_BATCH_MAX];
	size_t n_jobs = 0, k = 0;
	int n = p->n_ready;
	bool opened = true, hooks = false;

	p->n_ready = 0;
	for (int i = 0; i < n; i++) {
		struct here *x = &p->here[i];
		x->begun = request_begin(&x->req, &p->conns[p->ready[i]], &x->r);
		x->has_job = false;
		if (!x->begun)
			continue;
		handler_receive(&x->h, &x->r, &x->rx);
		x->input_done = input_read(&x->req, &x->rx);
		x->has_job = handler_prepare(&x->h, &x->r, &x->rx, &x->pr, &x->ans);
		if (x->has_job)
			jobs[n_jobs++] = x->pr.job;
	}
	if (n_jobs > 0)
		opened = group_commit_submit_many(p->group, jobs, n_jobs);
	for (int i = 0; i < n; i++) {
		struct here *x = &p->here[i];
		int ci = p->ready[i];
		struct conn *c = &p->conns[ci];
		bool keep = false, read_all = false;

		if (x->begun) {
			bool sent;
			if (x->has_job) {
				x->pr.job = jobs[k++];
				handler_complete(&x->h, &x->pr, opened, &x->ans);
			}
			handler_received_free(&x->rx);
			sent = answer_send(&x->req, &x->ans);
			if (!sent)
				log_warn("the web server went away before the answer was sent");
			keep = request_end(&x->req, x->input_done, sent, &read_all);
			hooks = hooks || x->h.hooks_pending;
			x->h.hooks_pending = false;
		}
		/* As a worker does, but no slot to hand back. */
		c->keep = keep;
		c->closed = close_finished(c, keep, read_all);
		conn_returned(p, epfd, ci, stop_requested);
	}
	p->here[0].h.hooks_pending = hooks;
	handler_after_answer(&p->here[0].h);
}

/* A request ready for its answer: here when it may be, else by a worker. */
static void hand_over(struct pool *p, int epfd, int ci, bool complete)
{
	struct conn *c = &p->conns[ci];

	if (!complete || !p->answer_here || stop_requested) {
		dispatch(p, epfd, ci);
		return;
	}
	if (c->watched)
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->watched = false;
	c->state = CONN_WORKER;
	p->ready[p->n_ready++] = ci;
	if (p->n_ready == HERE_BATCH_MAX)
		answer_ready(p, epfd);
}

static void conn_close(struct pool *p, int epfd, int ci)
{
	struct conn *c = &p->conns[ci];

	if (c->watched)
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	memset(c, 0, sizeof *c);
	c->fd = -1;
	p->n_conns--;
}

/*
 * Whether the request arriving on c is complete: the FastCGI records in
 * the socket's queue (looked at, not taken) end both the PARAMS and the
 * STDIN stream (*complete is then true).  Also true for anything a
 * worker should see now: a management record, a request too large to
 * wait for, a malformed stream (libfcgi then refuses it).
 */
static bool gate_open(struct conn *c, bool *complete)
{
	static unsigned char buf[GATE_PEEK_BYTES];
	size_t off = 0, n, records = 0;
	bool params_done = false;
	ssize_t got;
	int avail = 0;

	*complete = false;
	if (ioctl(c->fd, FIONREAD, &avail) < 0 || avail <= 0)
		return false;
	c->started = true;
	if ((size_t)avail >= GATE_PEEK_BYTES)
		return true;
	if ((size_t)avail < c->gate_need)
		return false;
	got = recv(c->fd, buf, (size_t)avail, MSG_PEEK | MSG_DONTWAIT);
	if (got <= 0)
		return false;
	n = (size_t)got;
	while (off + FCGI_HEADER_BYTES <= n) {
		const unsigned char *h = buf + off;
		size_t clen = ((size_t)h[4] << 8) | h[5];
		unsigned request_id = ((unsigned)h[2] << 8) | h[3];

		if (h[0] != 1 || request_id == 0 || ++records > GATE_MAX_RECORDS)
			return true;
		if (clen == 0 && h[1] == FCGI_RECORD_PARAMS)
			params_done = true;
		if (clen == 0 && h[1] == FCGI_RECORD_STDIN && params_done)
			return *complete = true;
		off += FCGI_HEADER_BYTES + clen + h[6];
	}
	c->gate_need = off + FCGI_HEADER_BYTES;
	return false;
}

/* Events on a connection the main thread holds. */
static void conn_event(struct pool *p, int epfd, int ci, uint32_t events)
{
	struct conn *c = &p->conns[ci];

	if (c->state == CONN_LINGER) {
		char trash[4096];
		ssize_t n;
		while ((n = recv(c->fd, trash, sizeof trash, MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_close(p, epfd, ci);
		return;
	}
	if (c->state != CONN_ARRIVING)
		return;
	{
		bool was_started = c->started, complete;
		bool open = gate_open(c, &complete);
		if (c->started && !was_started)
			c->deadline_ms = time_now_ms() + p->read_timeout_ms;
		if (open) {
			hand_over(p, epfd, ci, complete);
			return;
		}
	}
	if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		int avail = 0;
		/* The peer is gone (or stopped sending) before a whole request
		 * arrived: nothing more can complete it. */
		if (!c->started || ioctl(c->fd, FIONREAD, &avail) < 0 || avail == 0 ||
		    (events & (EPOLLHUP | EPOLLERR)))
			conn_close(p, epfd, ci);
		else
			dispatch(p, epfd, ci); /* half-closed after its data: libfcgi decides */
	}
}

static int conn_watch(struct pool *p, int epfd, int ci)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)ci + 2};

	p->conns[ci].watched = epoll_ctl(epfd, EPOLL_CTL_ADD, p->conns[ci].fd, &ev) == 0;
	return p->conns[ci].watched ? 0 : -1;
}

/* The connections the workers handed back since the main thread last looked. */
static void take_done(struct pool *p, int epfd, bool stopping)
{
	int done[MAX_CONNECTIONS];
	size_t nd;

	pthread_mutex_lock(&p->lock);
	nd = p->n_done;
	memcpy(done, p->done, nd * sizeof done[0]);
	p->n_done = 0;
	pthread_mutex_unlock(&p->lock);
	for (size_t k = 0; k < nd; k++)
		conn_returned(p, epfd, done[k], stopping);
}

/* A connection a worker handed back: wait for its next request, or close it. */
static void conn_returned(struct pool *p, int epfd, int ci, bool stopping)
{
	struct conn *c = &p->conns[ci];
	int64_t now = time_now_ms();

	if (c->closed) {
		memset(c, 0, sizeof *c);
		c->fd = -1;
		p->n_conns--;
		return;
	}
	c->started = false;
	c->gate_need = 0;
	c->since_ms = now;
	if (c->keep && !stopping) {
		c->state = CONN_ARRIVING;
		c->deadline_ms = now + KEEPALIVE_IDLE_MS;
	} else {
		c->state = CONN_LINGER;
		c->deadline_ms = now + LINGER_MS;
		shutdown(c->fd, SHUT_WR);
	}
	if (conn_watch(p, epfd, ci) < 0)
		conn_close(p, epfd, ci);
}

/*
 * The web server addresses libfcgi would accept (FCGI_WEB_SERVER_ADDRS,
 * read once when the loop starts: list, or NULL for any).
 */
static bool peer_allowed(const char *list, const struct sockaddr_storage *sa)
{
	char addr[INET6_ADDRSTRLEN];
	size_t n;

	if (list == NULL || sa->ss_family == AF_UNIX)
		return true;
	if (sa->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
	else if (sa->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);
	else
		return false;
	n = strlen(addr);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, addr, n) == 0)
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

/*
 * Makes room for one more connection by closing the oldest one that is
 * not being answered: one draining, else one still arriving or idle.  A
 * web server's requests arrive whole at once and go to a worker, so this
 * costs a stalled client its connection, not a request in progress.
 * False when every connection is in a worker's hands or queued for one.
 */
static bool make_room(struct pool *p, int epfd)
{
	int oldest = -1;

	if (p->n_conns < MAX_CONNECTIONS)
		return true;
	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		struct conn *c = &p->conns[i];
		if (c->state != CONN_LINGER && c->state != CONN_ARRIVING)
			continue;
		if (oldest < 0 || (c->state == CONN_LINGER) > (p->conns[oldest].state == CONN_LINGER) ||
		    ((c->state == CONN_LINGER) == (p->conns[oldest].state == CONN_LINGER) &&
		     c->since_ms < p->conns[oldest].since_ms))
			oldest = i;
	}
	if (oldest < 0)
		return false;
	conn_close(p, epfd, oldest);
	return true;
}

/* Accepts what the listening socket has; returns false when it failed. */
static bool accept_all(struct pool *p, int epfd, int listen_fd)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof sa;
		int fd = accept4(listen_fd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC), ci = -1, one = 1;
		bool complete;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED || errno == EPROTO)
				return true;
			log_error("FastCGI: accept: %s", strerror(errno));
			return false;
		}
		if (!peer_allowed(p->web_server_addrs, &sa)) {
			close(fd);
			continue;
		}
		if (!make_room(p, epfd)) {
			log_warn("FastCGI: %d connections in progress: closing a new one", MAX_CONNECTIONS);
			close(fd);
			continue;
		}
		if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		for (int k = 0; k < MAX_CONNECTIONS; k++)
			if (p->conns[k].state == CONN_FREE) {
				ci = k;
				break;
			}
		p->conns[ci] = (struct conn){.fd = fd,
		                             .state = CONN_ARRIVING,
		                             .since_ms = time_now_ms(),
		                             .is_unix = sa.ss_family == AF_UNIX};
		p->conns[ci].deadline_ms = p->conns[ci].since_ms + p->read_timeout_ms;
		p->n_conns++;
		/* A web server usually sends the whole request right after it
		 * connects: when it is there already it goes to a worker without
		 * a round through epoll.  (Registering later loses nothing: epoll
		 * reports input already queued when a descriptor is added.) */
		if (gate_open(&p->conns[ci], &complete))
			hand_over(p, epfd, ci, complete);
		else if (conn_watch(p, epfd, ci) < 0)
			conn_close(p, epfd, ci);
	}
	return true;
}

/*
 * Deadlines: connections still arriving, or lingering, past theirs are
 * closed; a worker still receiving past its deadline has its connection
 * shut down, which ends its reads.  Returns the milliseconds until the
 * next deadline (at most 1 s).
 */
static int check_deadlines(struct pool *p, int epfd)
{
	int64_t now = time_now_ms(), next = now + 1000;

	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		struct conn *c = &p->conns[i];
		if (c->state != CONN_ARRIVING && c->state != CONN_LINGER)
			continue;
		if (c->deadline_ms <= now) {
			if (c->state == CONN_ARRIVING && c->started)
				log_warn("FastCGI: a request did not arrive within read_timeout: dropped");
			conn_close(p, epfd, i);
		} else if (c->deadline_ms < next) {
			next = c->deadline_ms;
		}
	}
	for (int i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		pthread_mutex_lock(&w->dl_lock);
		if (w->deadline_ms != 0 && !w->shut) {
			if (w->deadline_ms <= now) {
				log_warn("FastCGI: a request did not arrive, or its answer was not "
				         "taken, within read_timeout: connection shut down");
				shutdown(p->conns[w->conn].fd, SHUT_RDWR);
				w->shut = true;
			} else if (w->deadline_ms < next) {
				next = w->deadline_ms;
			}
		}
		pthread_mutex_unlock(&w->dl_lock);
	}
	return (int)(next - now) + 1;
}

/* Whether every request in hand has been answered (when stopping). */
static bool requests_in_hand(struct pool *p)
{
	bool any = false;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		enum conn_state s = p->conns[i].state;
		if (s == CONN_WORKER ||
		    (s == CONN_ARRIVING && p->conns[i].started))
			any = true;
	}
	any = any || p->n_done > 0;
	pthread_mutex_unlock(&p->lock);
	return any;
}

static int start_workers(struct pool *p, struct handler *parent)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
	for (int i = 0; i < WORKER_THREADS; i++) {
		struct worker *w = &p->workers[i];
		w->pool = p;
		w->conn = -1;
		handler_clone(&w->h, parent);
		pthread_cond_init(&w->wake, NULL);
		pthread_mutex_init(&w->dl_lock, NULL);
		FCGX_InitRequest(&w->req, -1, 0); /* never accepts: listen_sock -1 */
		if (pthread_create(&w->thread, &attr, worker_main, w) != 0) {
			log_error("FastCGI: cannot start a worker thread");
			handler_fini(&w->h);
			pthread_cond_destroy(&w->wake);
			pthread_mutex_destroy(&w->dl_lock);
			break;
		}
		p->n_workers++;
	}
	pthread_attr_destroy(&attr);
	if (p->n_workers == 0)
		return -1;
	for (int i = 0; i < HERE_BATCH_MAX; i++) {
		handler_clone(&p->here[i].h, parent);
		FCGX_InitRequest(&p->here[i].req, -1, 0);
	}
	p->group = parent->group;
	/* Where committing waits for nothing but SQLite and the local disk. */
	p->answer_here = parent->cfg_ok && !store_is_postgresql(parent->cfg.db);
	return 0;
}

static void stop_workers(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	for (int i = 0; i < p->n_workers; i++)
		pthread_cond_signal(&p->workers[i].wake);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		pthread_join(w->thread, NULL);
		FCGX_Free(&w->req, 1);
		handler_fini(&w->h);
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->dl_lock);
	}
	for (int i = 0; i < HERE_BATCH_MAX; i++) {
		FCGX_Free(&p->here[i].req, 1);
		handler_fini(&p->here[i].h);
	}
}

int fcgi_serve(struct handler *h, int listen_fd)
{
	struct pool *p;
	sigset_t unblocked;
	int epfd = -1, flags, rc = 0;
	bool stopping = false, listening = false;
	int64_t pause_until = 0;

	/* libfcgi's first FCGX_Init() installs handlers of its own (for USR1,
	 * PIPE and TERM): ours must come after it. */
	if (FCGX_Init() != 0) {
		log_error("cannot initialise libfcgi");
		return 1;
	}
	install_signals();
	sigprocmask(SIG_BLOCK, NULL, &unblocked);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGHUP);
	/* Non-blocking: several processes may share the socket, and another
	 * one may take the connection epoll announced. */
	flags = fcntl(listen_fd, F_GETFL);
	if (flags >= 0)
		fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
	p = calloc(1, sizeof *p);
	if (p == NULL) {
		log_error("out of memory");
		return 1;
	}
	pthread_mutex_init(&p->lock, NULL);
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		p->conns[i].fd = -1;
	p->read_timeout_ms = (h->cfg_ok ? h->cfg.read_timeout_seconds : READ_TIMEOUT_SECONDS_DEFAULT) * 1000;
	p->web_server_addrs = getenv("FCGI_WEB_SERVER_ADDRS");
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->wake_fd < 0 || epfd < 0) {
		log_error("FastCGI: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
		epoll_ctl(epfd, EPOLL_CTL_ADD, p->wake_fd, &ev);
	}
#ifdef M_ARENA_MAX
	/* glibc gives each thread that allocates an arena of its own, whose
	 * touched pages stay private to the process: with WORKER_THREADS
	 * threads that would be megabytes.  Requests allocate little, and
	 * one at a time per thread: a few arenas are enough. */
	mallopt(M_ARENA_MAX, MALLOC_ARENAS);
#endif
	malloc_keep_heap();
	/* One writer for every thread: their deliveries are committed together. */
	h->group = group_commit_new(&h->cfg);
	if (h->group == NULL) {
		log_error("out of memory");
		rc = 1;
		goto out;
	}
	if (start_workers(p, h) < 0) {
		rc = 1;
		goto out;
	}
	log_debug("FastCGI accept loop on fd %d, %d threads", listen_fd, p->n_workers);
	for (;;) {
		struct epoll_event evs[64];
		int timeout, n;
		int64_t now;

		if (stop_requested && !stopping) {
			stopping = true;
			pthread_mutex_lock(&p->lock);
			p->draining = true; /* every hand-back wakes us from now on */
			pthread_mutex_unlock(&p->lock);
			take_done(p, epfd, stopping);
			for (int i = 0; i < MAX_CONNECTIONS; i++)
				if (p->conns[i].state == CONN_ARRIVING && !p->conns[i].started)
					conn_close(p, epfd, i);
		}
		if (stopping && !requests_in_hand(p))
			break;
		now = time_now_ms();
		if (!stopping && !listening && now >= pause_until) {
			struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
			listening = epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) == 0;
		}
		if (listening && stopping) {
			epoll_ctl(epfd, EPOLL_CTL_DEL, listen_fd, NULL);
			listening = false;
		}
		timeout = check_deadlines(p, epfd);
		if (!listening && !stopping && pause_until > now && pause_until - now < timeout)
			timeout = (int)(pause_until - now);
		n = epoll_pwait(epfd, evs, 64, timeout, &unblocked);
		if (n < 0 && errno != EINTR) {
			log_error("FastCGI: waiting for a request: %s", strerror(errno));
			rc = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == 0) {
				int64_t count;
				if (read(p->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
					log_error("FastCGI: eventfd: %s", strerror(errno));
			} else if (tag == 1) {
				if (!stopping && !accept_all(p, epfd, listen_fd)) {
					epoll_ctl(epfd, EPOLL_CTL_DEL, listen_fd, NULL);
					listening = false;
					pause_until = time_now_ms() + ACCEPT_PAUSE_MS;
				}
			} else {
				conn_event(p, epfd, (int)(tag - 2), evs[i].events);
			}
		}
		if (p->n_ready > 0)
			answer_ready(p, epfd);
		take_done(p, epfd, stopping);
	}
	stop_workers(p);
	take_done(p, epfd, true);
out:
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		if (p->conns[i].state != CONN_FREE && !p->conns[i].closed)
			close(p->conns[i].fd);
	if (epfd >= 0)
		close(epfd);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	group_commit_free(h->group);
	h->group = NULL;
	return rc;
}

static ssize_t cgi_read(void *ctx, char *buf, size_t len)
{
	ssize_t n;
	(void)ctx;
	do
		n = read(STDIN_FILENO, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

int cgi_serve(struct handler *h, char *const *envp)
{
	struct answer ans = {0};
	struct request r = {.params = envp, .read_body = cgi_read, .read_ctx = NULL};
	char out[512];
	size_t off = 0, n;
	sigset_t hold;
	int devnull;

	signal(SIGPIPE, SIG_IGN);
	h->cgi = true;
	handler_handle(h, &r, &ans);
	n = (size_t)format_answer(&ans, out, sizeof out);
	while (off < n) {
		ssize_t w = write(STDOUT_FILENO, out + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_warn("the web server went away before the answer was sent");
			break;
		}
		off += (size_t)w;
	}
	/*
	 * The server waits for EOF on our stdout: give it now, before any
	 * hook.  Once it has the whole answer, Apache (mod_cgi, mod_cgid)
	 * and lighttpd signal a CGI process that is still there (TERM, then
	 * KILL seconds later): hold TERM, HUP and INT off until the runner
	 * is started, or the runs just queued would wait for the next
	 * request.  The runner starts with no signal blocked.
	 */
	sigemptyset(&hold);
	sigaddset(&hold, SIGTERM);
	sigaddset(&hold, SIGHUP);
	sigaddset(&hold, SIGINT);
	sigprocmask(SIG_BLOCK, &hold, NULL);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDOUT_FILENO);
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	} else {
		close(STDOUT_FILENO);
	}
	handler_after_answer(h);
	return 0;
}
