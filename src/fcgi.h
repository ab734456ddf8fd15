/*
 * The transports: FastCGI (the only user of libfcgi), plain CGI, and the
 * listening socket of `serve --listen`.  Each turns what it received into
 * a struct request, lets the handler answer, writes the answer out and
 * only then runs the hooks.
 */
#ifndef CFW_FCGI_H
#define CFW_FCGI_H

#include <stdbool.h>

#include "handler.h"

/*
 * True when started as a FastCGI application: a listening socket on fd 0
 * (FCGX_IsCGI() says so), or systemd socket activation (LISTEN_PID is us
 * and LISTEN_FDS >= 1, socket on fd 3).  Stores the listening fd.  When
 * it returns false, the signal handlers libfcgi installed are undone.
 */
bool fcgi_detect(int *listen_fd);

/*
 * Opens the listening socket for `serve --listen`: a path is a unix
 * socket (a stale socket file is replaced; mode applied when >= 0);
 * HOST:PORT or [V6]:PORT is TCP.  Returns the fd, or -1 with err filled.
 */
int fcgi_listen(const char *spec, int mode, char *err, size_t errlen);

/*
 * The accept loop: answers requests on listen_fd until SIGTERM (the
 * request in hand is finished first) or SIGINT/SIGHUP.  Returns the exit
 * status (0 after a signal).
 */
int fcgi_serve(struct handler *h, int listen_fd);

/*
 * One CGI request: parameters from the environment, body from fd 0,
 * answer to fd 1, which is then closed so the server sees the answer
 * complete before any hook runs.  Returns the exit status.
 */
int cgi_serve(struct handler *h, char *const *envp);

#endif
