/*
 * cfimages-webhook: argv and the environment decide the mode (cfimages-webhook(8) DESCRIPTION).
 *
 *   FastCGI   a listening socket on fd 0 (or systemd's fd 3): accept loop
 *   CGI       GATEWAY_INTERFACE set: one request; argv is NOT read, since a
 *             CGI server turns an ISINDEX query ("?a+b") into arguments
 *   serve     `serve --listen PATH|HOST:PORT`: our own FastCGI socket
 *   commands  the operator commands of cfimages-webhook(8) COMMANDS (commands.c)
 *   otherwise usage on stderr, exit 2
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "fcgi.h"
#include "handler.h"
#include "util.h"

extern char **environ;

/* The directory holding the executable, where shared hosting puts the config. */
static const char *exe_directory(char *buf, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
	char *slash;
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	return buf[0] ? buf : "/";
}

/* --db PATH (trusted: it comes from the server's configuration, not a request). */
static void override_db(struct handler *h, const char *db_path)
{
	char *copy;
	if (!h->cfg_ok || db_path == NULL)
		return;
	copy = strdup(db_path);
	if (copy == NULL) {
		h->cfg_ok = false;
		snprintf(h->cfg_error, sizeof h->cfg_error, "out of memory");
		return;
	}
	free(h->cfg.db);
	h->cfg.db = copy;
}

/* `serve --listen SPEC [--socket-mode MODE]` */
static int serve(struct handler *h, int argc, char **argv)
{
	const char *listen_spec = NULL;
	int mode = -1, fd, rc;
	char err[512];

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			listen_spec = argv[++i];
		} else if (strcmp(argv[i], "--socket-mode") == 0 && i + 1 < argc) {
			char *end;
			long m = strtol(argv[++i], &end, 8);
			if (*end != '\0' || m < 0 || m > 0777) {
				fprintf(stderr, "%s: serve: --socket-mode: expected an octal mode\n",
				        PROGRAM_NAME);
				return 2;
			}
			mode = (int)m;
		} else {
			fprintf(stderr, "usage: %s serve --listen PATH|HOST:PORT [--socket-mode MODE]\n",
			        PROGRAM_NAME);
			return 2;
		}
	}
	if (listen_spec == NULL) {
		fprintf(stderr, "usage: %s serve --listen PATH|HOST:PORT [--socket-mode MODE]\n",
		        PROGRAM_NAME);
		return 2;
	}
	if (!h->cfg_ok) {
		fprintf(stderr, "%s: configuration: %s\n", PROGRAM_NAME, h->cfg_error);
		return 1;
	}
	fd = fcgi_listen(listen_spec, mode, err, sizeof err);
	if (fd < 0) {
		fprintf(stderr, "%s: serve: %s\n", PROGRAM_NAME, err);
		return 1;
	}
	log_info("listening on %s", listen_spec);
	rc = fcgi_serve(h, fd);
	close(fd);
	if (listen_spec[0] == '/' || listen_spec[0] == '.')
		unlink(listen_spec);
	return rc;
}

int main(int argc, char **argv)
{
	struct handler h;
	struct cli cli = {0};
	char exe_buf[PATH_MAX];
	int listen_fd, i, rc;
	bool fastcgi;

	cli.exe_dir = exe_directory(exe_buf, sizeof exe_buf);
	fastcgi = fcgi_detect(&listen_fd); /* libfcgi first (cfimages-webhook(8) DESCRIPTION) */
	if (!fastcgi && getenv("GATEWAY_INTERFACE")) {
		handler_init(&h, NULL, environ, cli.exe_dir);
		rc = cgi_serve(&h, environ);
		handler_fini(&h);
		return rc;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cli.config_path = argv[++i];
		else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			cli.db_path = argv[++i];
		else
			break;
	}
	if (fastcgi) {
		handler_init(&h, cli.config_path, environ, cli.exe_dir);
		override_db(&h, cli.db_path);
		rc = fcgi_serve(&h, listen_fd);
		handler_fini(&h);
		return rc;
	}
	if (i < argc && strcmp(argv[i], "serve") == 0) {
		handler_init(&h, cli.config_path, environ, cli.exe_dir);
		override_db(&h, cli.db_path);
		rc = serve(&h, argc - i - 1, argv + i + 1);
		handler_fini(&h);
		return rc;
	}
	if (i >= argc) {
		commands_usage(stderr);
		return 2;
	}
	return commands_run(&cli, argc - i, argv + i);
}
