/*
 * Outbound webhook actions (cfimages-webhook(8) ACTIONS): a NAME.webhook
 * file in hooks_dir is an HTTP call instead of a program.  This is the
 * impure half of them: reading the action file, its template and its
 * secrets, checking it for `check`, and making one attempt of a run with
 * libcurl.  The pure half (parsing, rendering) is action.h.
 */
#ifndef CFW_OUTBOUND_H
#define CFW_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hook_exec.h"

struct config;
struct store;
struct hook_run;

/* The suffix that makes a hook file an action. */
#define OUTBOUND_SUFFIX ".webhook"
/* Largest action file read, bytes. */
#define OUTBOUND_FILE_BYTES (256 * 1024)
/* Largest template file read, bytes. */
#define OUTBOUND_TEMPLATE_BYTES (4 * 1024 * 1024)
/* Largest value a ${file:PATH} reference or a secret_file may hold, bytes. */
#define OUTBOUND_SECRET_BYTES 8192

/* True when name (a hook name or path) ends in OUTBOUND_SUFFIX. */
bool outbound_is_action(const char *name);

/*
 * Whether this binary can make outbound calls: it was built with libcurl,
 * and libcurl can be loaded (it is loaded on first use: README, Build and
 * install).  If not, and why is not NULL, why not, in why.
 */
bool outbound_available(char *why, size_t cap);

/* How one attempt ended, for the runner. */
enum outbound_verdict {
	OUTBOUND_SUCCESS, /* a 2xx answer: the run is done */
	OUTBOUND_RETRY,   /* failed: retried with the hook backoff while attempts remain */
	OUTBOUND_GIVE_UP, /* failed for good: 410 Gone, a URL outside outbound_allow, no libcurl */
};

struct outbound_result {
	enum outbound_verdict verdict;
	bool has_status; /* an HTTP answer came: status holds its code */
	int status;
	char output[HOOK_OUTPUT_BYTES + 256]; /* "HTTP <code>\n" + the answer's first bytes, or why */
	size_t output_len;
};

/*
 * Makes one attempt of run, whose action file is path (already checked for
 * ownership and mode by the runner): reads and parses the file, builds the
 * payload (the template, or the default Standard Webhooks shape with the
 * image as `show` prints it now), expands the header references, signs,
 * and calls the URL with a timeout of the action's `timeout` capped by
 * hook_timeout.  Never follows a redirect; never takes a proxy from the
 * environment.  Secrets (header values, the signing key) never reach the
 * output or the log.
 */
void outbound_attempt(const struct config *cfg, struct store *st, const struct hook_run *run,
                      const char *path, struct outbound_result *r);

/*
 * Receives one line "PATH:LINE: what" (or "PATH: what") from
 * outbound_check: a problem, or with is_problem false a warning.
 */
typedef void (*outbound_report_fn)(void *arg, bool is_problem, const char *text);

/*
 * `check` for one action file: everything that can be known without
 * calling: the file's syntax (each problem with its line), the template
 * (present, readable, JSON, known placeholder roots), secret_file and
 * ca_file (readable; the key decodes), the URL against outbound_allow,
 * and whether this binary has libcurl; files holding secrets that others
 * may read are warned about.  Returns the number of problems.
 */
int outbound_check(const struct config *cfg, const char *path, outbound_report_fn fn, void *arg);

#endif
