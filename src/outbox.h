/*
 * The hook_runs table as an outbox (cfimages-webhook(8) HOOKS): claiming a
 * due run atomically, recording how it ended, finding runs whose runner
 * died, and the `hooks` commands' writes.  Implemented by each store
 * backend; every function uses the calling process's store handle.
 *
 * A claimed run holds a lease (lease_until): it belongs to the runner that
 * claimed it until then, on whichever host.  A run still running after
 * its lease (its runner, or its whole node, died) is taken up again by
 * any runner; the host column says which host ran it, so that only a
 * runner on that host ever considers signalling what it left behind.
 */
#ifndef CFW_OUTBOX_H
#define CFW_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Hook run states, as stored. */
#define RUN_QUEUED "queued"
#define RUN_RUNNING "running"
#define RUN_DONE "done"
#define RUN_FAILED "failed"

/* A claimed run: everything needed to execute it.  Owned strings. */
struct hook_run {
	int64_t id;
	int64_t attempt;        /* this attempt's number, 1 for the first */
	char *image_id;
	char *status;
	char *previous_status;
	char *event;
	char *hook;             /* name relative to hooks_dir */
	char *path;             /* absolute path queued with the run */
	unsigned char *input;   /* the delivery's body */
	size_t input_len;
};

/*
 * Claims the oldest due queued run (next_attempt_at <= now) whose image
 * has no other run in progress, atomically even between hosts: state
 * becomes running, attempts + 1, started_at now, lease_until now +
 * lease_ms, host as given.  Returns 1 with *run filled (free with
 * hook_run_free), 0 when nothing is due, -1 on a database error.
 */
int outbox_claim(struct store *st, int64_t now_ms, int64_t lease_ms, const char *host,
                 struct hook_run *run);

/*
 * Records the process group (and its start time, for safe killing later)
 * of attempt number attempt, claimed at claimed_ms (the now_ms of its
 * outbox_claim), if the run is still that claim: the number alone could
 * be an attempt of a later claim, since `hooks retry` counts again from
 * 0.  Committed without waiting for the disk: a process group means
 * nothing after the machine restarted.  Returns 1 when recorded, 0 when
 * the run is no longer that claim (another runner took it up), -1 on a
 * database error.
 */
int outbox_set_pgid(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                    int64_t pgid, int64_t pg_start);

/*
 * Records the end of attempt number attempt, claimed at claimed_ms: state
 * done / failed / queued (a retry at next_ms), exit_code (has_exit false
 * stores NULL) and the output tail -- only while the run is still running
 * that claim (as outbox_set_pgid): a run
 * reclaimed meanwhile (this runner was stopped past the timeout) belongs
 * to whoever took it up.  Committed at once but, on SQLite, not waited
 * for on the disk: the runner's next claim (which is flushed at
 * durability = full, as the hook must not run again) or outbox_flush
 * makes it durable, so that under load one flush per run serves both.
 */
int outbox_finish(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                  const char *state,
                  bool has_exit, int exit_code, const char *output, size_t output_len,
                  int64_t next_ms, int64_t now_ms);

/*
 * Makes the outcomes recorded by outbox_finish durable (durability =
 * full); a runner calls it before it looks away from the queue.  Returns 0
 * or -1.
 */
int outbox_flush(struct store *st);

/* Longest host name kept with a run. */
#define OUTBOX_HOST_BYTES 256

/* A run still running after its lease: its runner died. */
struct stale_run {
	int64_t id;
	int64_t attempts;
	int64_t pgid;     /* 0 when none was recorded */
	int64_t pg_start; /* start time (clock ticks since boot) of that group's leader */
	char host[OUTBOX_HOST_BYTES]; /* who ran it ("" when unknown) */
	char claim[40];   /* the backend's token of the claim (its started_at), for outbox_reclaim */
};

/*
 * Lists up to cap stale runs (state running, lease_until before now).
 * Returns how many, or -1.
 */
int outbox_stale(struct store *st, int64_t now_ms, struct stale_run *out, size_t cap);

/*
 * Requeues a stale run (due now) or, with its attempts used up, marks it
 * failed; only if it is still running the claim outbox_stale listed (the
 * same attempt number and claim time) and that claim's lease has passed:
 * another process may have reclaimed it first, and even a `hooks retry`
 * and a new claim, with its attempts counted from 1 again, may have
 * followed.  Returns 1 when this call changed it.
 */
int outbox_reclaim(struct store *st, const struct stale_run *run, int64_t max_attempts,
                   int64_t now_ms);

/*
 * True in *due when a queued run is due or a running one's lease has
 * passed.  Cheap: one indexed query.
 */
int outbox_any_due(struct store *st, int64_t now_ms, bool *due);

/* Earliest next_attempt_at of a queued run, ms; -1 when none; -2 on error. */
int64_t outbox_next_due_ms(struct store *st);

/*
 * `hooks retry RUN_ID`: a run that is not running is queued again, due
 * now, with its attempts reset.  Returns 1 done, 0 no such run (or it is
 * running), -1 error.
 */
int outbox_retry(struct store *st, int64_t run_id, int64_t now_ms);

void hook_run_free(struct hook_run *run);

#endif
