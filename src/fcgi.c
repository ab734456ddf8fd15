/*
 * FastCGI, CGI and the `serve` socket.  This is the only file that knows
 * libfcgi; past handler_handle() every transport shares every line.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi.h"
#include "util.h"

/* Backlog of the `serve` listening socket. */
#define LISTEN_BACKLOG 128
/* systemd's first passed descriptor (sd_listen_fds(3)). */
#define SD_LISTEN_FDS_START 3

/*
 * Signal handling of the accept loop.  TERM, INT and HUP stay blocked
 * except while the loop waits in ppoll() for the next connection, so no
 * read of a request is ever cut short by EINTR and the handler only sets a
 * flag: a signal that arrives while waiting ends the wait at once, one that
 * arrives during a request is delivered at the next wait, after the answer
 * and the hooks, and ends the loop there.
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

static ssize_t fcgi_read(void *ctx, char *buf, size_t len)
{
	FCGX_Stream *in = ctx;
	int want = len > (size_t)INT32_MAX ? INT32_MAX : (int)len;
	return FCGX_GetStr(buf, want, in);
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
 * Waits until the next request can be read without blocking: a new
 * connection on the listening socket, or the next request on a connection
 * the server keeps open (FCGI_KEEP_CONN).  Termination signals are
 * deliverable only here.  Returns false when the loop should stop.
 */
static bool wait_for_request(const FCGX_Request *req, int listen_fd, const sigset_t *unblocked)
{
	struct pollfd pfd = {.fd = req->ipcFd >= 0 ? req->ipcFd : listen_fd, .events = POLLIN};

	while (!stop_requested) {
		int r = ppoll(&pfd, 1, NULL, unblocked);
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR) {
			log_error("FastCGI: waiting for a request: %s", strerror(errno));
			return false;
		}
	}
	return false;
}

int fcgi_serve(struct handler *h, int listen_fd)
{
	FCGX_Request req;
	sigset_t unblocked;
	char out[512];
	int flags;

	install_signals();
	sigprocmask(SIG_BLOCK, NULL, &unblocked);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGHUP);
	/* Non-blocking: when several processes share the socket and another
	 * one took the connection ppoll announced, accept fails with EAGAIN
	 * instead of blocking us where no signal can reach. */
	flags = fcntl(listen_fd, F_GETFL);
	if (flags >= 0)
		fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, listen_fd, 0) != 0) {
		log_error("cannot initialise libfcgi");
		return 1;
	}
	log_debug("FastCGI accept loop on fd %d", listen_fd);
	while (wait_for_request(&req, listen_fd, &unblocked)) {
		struct answer ans = {0};
		struct request r;
		int n;

		if (FCGX_Accept_r(&req) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			log_error("FastCGI accept failed: %s", strerror(errno));
			FCGX_Free(&req, 1);
			return 1;
		}
		r.params = req.envp;
		r.read_body = fcgi_read;
		r.read_ctx = req.in;
		handler_handle(h, &r, &ans);
		n = format_answer(&ans, out, sizeof out);
		if (FCGX_PutStr(out, n, req.out) < 0)
			log_warn("the web server went away before the answer was sent");
		FCGX_Finish_r(&req);
		handler_after_answer(h);
	}
	FCGX_Free(&req, 1);
	return 0;
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
	/* The server waits for EOF on our stdout: give it now, before any hook. */
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
