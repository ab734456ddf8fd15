/*
 * The status matrix of cfimages-webhook(8) REQUEST CONTRACT: composes config, auth, event, store
 * and hook discovery into one answer per request, and runs the due hook
 * runs after the answer has been sent.
 */
#ifndef CFW_HANDLER_H
#define CFW_HANDLER_H

#include <stdbool.h>

#include "config.h"
#include "event.h"
#include "hooks_cache.h"
#include "request.h"
#include "store.h"

/* How often the accept loop looks for due hook runs it did not queue itself. */
#define HANDLER_DUE_CHECK_SECONDS 5

/*
 * State kept across requests: one per thread that answers requests (the
 * secret cache and the hooks cache are not shared between threads; the
 * configuration is loaded once and borrowed by the others' clones, and
 * so is the process's group commit, whose writer owns the one database
 * handle of a FastCGI process).
 */
struct group_commit;
struct handler {
	struct config cfg;
	bool cfg_ok;                       /* false: every request answers 500 */
	bool borrowed_cfg;                 /* cfg belongs to the handler cloned */
	char cfg_error[CONFIG_ERROR_BYTES]; /* why, logged once per request */
	bool cfg_error_logged;              /* handler_init logged it: the next request need not */
	struct store *store;               /* without a group: opened on first use, kept open */
	struct group_commit *group;        /* FastCGI: the process's writer (borrowed), or NULL */
	struct hooks_cache hooks_cache;    /* the hooks found for each status, while unchanged */
	struct secret_set secrets;
	bool hooks_pending;                /* a run was queued: execute after the answer */
	bool cgi;                          /* one request per process: detach quietly */
	int64_t last_due_check_ms;         /* when waiting runs were last looked for */
};

/*
 * Loads the configuration (see config_load) into h.  Never fails: a bad
 * configuration is remembered and makes every request answer 500 with the
 * reason logged, as cfimages-webhook.conf(5) asks.
 */
void handler_init(struct handler *h, const char *config_path, char *const *envp,
                  const char *exe_dir);

/*
 * A handler for another thread: it borrows parent's configuration (which
 * must outlive it) and has its own store handle and secret cache.
 */
void handler_clone(struct handler *h, const struct handler *parent);

struct outcome;

/*
 * One request between its two halves.  handler_receive() fills it from
 * the connection (the checks that need no database, and the body);
 * handler_process() decides the answer and writes the rows.  A transport
 * bounds the first half by its read timeout; the second half needs
 * nothing more from the client.
 */
struct received {
	struct delivery d;
	const struct outcome *decided; /* the answer, when rows 1-3 settled it */
	char *body;                    /* malloc'd, NUL-terminated */
	size_t got;                    /* bytes in body */
	int64_t clen;                  /* CONTENT_LENGTH */
	bool clen_ok;                  /* CONTENT_LENGTH was digits (or absent) */
	bool body_read;                /* the body was read up to CONTENT_LENGTH or its end */
	bool dropped;                  /* reading failed: nobody is left to answer */
};

/* Rows 1-3 and the body; never touches the database. */
void handler_receive(struct handler *h, const struct request *req, struct received *rx);

/*
 * The rest of the matrix: authentication, payload, the store, the answer
 * (*ans holds only static strings).  req must be the one received.
 */
void handler_process(struct handler *h, const struct request *req, struct received *rx,
                     struct answer *ans);

/*
 * The second half in two steps, for a transport that commits several
 * requests' jobs together: handler_prepare() does everything up to the
 * store and returns true when the request has a job to commit (pr->job:
 * its delivery row, and the event's effect), false when *ans is final
 * already; once the job was committed (group_commit_submit_many, or
 * store_write_batch), handler_complete() sets *ans from its result
 * (opened: the database could be opened).  pr->job points into rx, pr
 * and h's hooks cache: they must stay as they are until then.
 * handler_process() is the two with the job committed alone.
 */
enum handler_after { AFTER_FINISH, AFTER_IGNORED, AFTER_APPLY };
struct prepared {
	struct store_job job;
	enum handler_after after;      /* what the job's result decides */
	const struct outcome *o;       /* AFTER_FINISH: the answer, if the row is written */
	struct event ev;               /* the parsed payload (freed by handler_complete) */
};
bool handler_prepare(struct handler *h, const struct request *req, struct received *rx,
                     struct prepared *pr, struct answer *ans);
void handler_complete(struct handler *h, struct prepared *pr, bool opened, struct answer *ans);

/* Frees what handler_receive allocated. */
void handler_received_free(struct received *rx);

/* Both halves: answers one request. */
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
