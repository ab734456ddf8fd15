/*
 * The status matrix of SPEC section 4: composes config, auth, event, store
 * and hook discovery into one answer per request, and runs the due hook
 * runs after the answer has been sent.
 */
#ifndef CFW_HANDLER_H
#define CFW_HANDLER_H

#include <stdbool.h>

#include "config.h"
#include "request.h"
#include "store.h"

/* How often the accept loop looks for due hook runs it did not queue itself. */
#define HANDLER_DUE_CHECK_SECONDS 5

/* Per-process state kept across requests in the accept loop. */
struct handler {
	struct config cfg;
	bool cfg_ok;                       /* false: every request answers 500 */
	char cfg_error[CONFIG_ERROR_BYTES]; /* why, logged once per request */
	struct store *store;               /* opened on first use, kept open */
	struct secret_set secrets;
	bool warned_no_secret;
	bool hooks_pending;                /* a run was queued: execute after the answer */
	bool cgi;                          /* one request per process: detach quietly */
	int64_t last_due_check_ms;         /* when waiting runs were last looked for */
};

/*
 * Loads the configuration (see config_load) into h.  Never fails: a bad
 * configuration is remembered and makes every request answer 500 with the
 * reason logged, as SPEC section 3 asks.
 */
void handler_init(struct handler *h, const char *config_path, char *const *envp,
                  const char *exe_dir);

/* Answers one request; *ans holds only static strings. */
void handler_handle(struct handler *h, const struct request *req, struct answer *ans);

/*
 * After the answer is complete: when this request queued hook runs, or
 * (looked for at most every HANDLER_DUE_CHECK_SECONDS) runs are due from
 * earlier, starts a detached hook runner.  Never waits for a hook.
 */
void handler_after_answer(struct handler *h);

/* Closes the store and frees the configuration. */
void handler_fini(struct handler *h);

#endif
