/*
 * The transport-neutral request and answer.  CGI, FastCGI and `serve`
 * fill a struct request from what they received and write out the struct
 * answer the handler returns; nothing past the transport knows which one
 * it was.
 */
#ifndef CFW_REQUEST_H
#define CFW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct request {
	/* CGI/FastCGI parameters, "NAME=value" strings, NULL-terminated. */
	char *const *params;
	/*
	 * Reads up to len body bytes into buf; returns the number read, 0 at
	 * the end of the body, -1 on an error (the connection failed or the
	 * transport's read timeout passed: the request is dropped).  Called only after the
	 * CONTENT_LENGTH check, never for more than CONTENT_LENGTH bytes.
	 */
	ssize_t (*read_body)(void *ctx, char *buf, size_t len);
	void *read_ctx;
};

/* What to send back.  Every string is static. */
struct answer {
	int status;          /* 200, 400, ... */
	const char *phrase;  /* "OK", "Bad Request", ... for the Status line */
	const char *body;    /* plain text, cfimages-webhook(8) REQUEST CONTRACT */
	bool allow_post;     /* add "Allow: POST" (405) */
};

/* The value of a request parameter, or NULL when absent. */
const char *request_param(const struct request *req, const char *name);

#endif
