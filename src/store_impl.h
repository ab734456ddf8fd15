/*
 * Private to the store: what a backend provides (struct store_ops) and the
 * pieces every backend shares.  The handler, the hooks and the commands
 * see only store.h and outbox.h; each backend (store_sqlite*.c,
 * store_pg.c) fills one struct store_ops and embeds struct store as the
 * first member of its own handle.  A backend implements each operation
 * whole, in its own SQL and with its own locking (BEGIN IMMEDIATE for
 * SQLite, row locks and SKIP LOCKED for PostgreSQL); what must be the
 * same on every backend -- the rules of a status change, the words of the
 * log rows, the `show` object -- is decided here, once.
 */
#ifndef CFW_STORE_IMPL_H
#define CFW_STORE_IMPL_H

#include "outbox.h"
#include "store.h"

/* Room for a status read back from the database; longer (foreign) ones are truncated. */
#define STATUS_TEXT_SIZE 64
/* Room for a log row's message ("pending -> uploaded" and the like). */
#define LOG_MESSAGE_SIZE 192
/* Lower-case hex of a SHA-256 digest, with its NUL. */
#define SHA256_HEX_SIZE (2 * SHA256_BYTES + 1)
/* Output tails of hook runs are kept at most this long (cfimages-webhook(8) HOOKS). */
#define OUTPUT_TAIL_BYTES 4096

/* Log event types (cloudflare_image_logs.event_type), fixed tokens. */
#define LOG_STATUS_CHANGED "status_changed"
#define LOG_DUPLICATE "duplicate"
#define LOG_STALE "stale"
#define LOG_REGISTERED "registered"
#define LOG_EXPIRED "expired"
#define LOG_IGNORED "ignored"

/* The CFIMAGES_EVENT of runs queued by `expire` (cfimages-webhook(8) HOOKS). */
#define EXPIRE_EVENT_NAME "expire"
#define EXPIRED_STATUS "expired"

struct store_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(struct store *st);
	int (*schema_version)(struct store *st);
	void (*set_busy_timeout)(struct store *st, int ms);
	int (*record)(struct store *st, struct delivery *d);
	int (*record_ignored)(struct store *st, struct delivery *d, const char *body,
	                      size_t body_len, const char *message);
	int (*message_seen)(struct store *st, const char *message_id, bool *seen);
	enum store_outcome (*apply)(struct store *st, const struct event *ev, const char *body,
	                            size_t body_len, const struct hook_ref *hooks, size_t n_hooks,
	                            bool auto_register, struct delivery *d);
	/* NULL: store.c runs the jobs one by one through record, record_ignored,
	 * message_seen and apply. */
	int (*write_batch)(struct store *st, struct store_job *jobs, size_t n);
	void (*idle)(struct store *st); /* NULL: nothing to do */
	int (*sync)(struct store *st);  /* NULL: write_batch never sets sync_after */
	int (*image_status)(struct store *st, const char *id, char *buf, size_t cap);
	int (*register_image)(struct store *st, const char *id, const char *metadata_json,
	                      int64_t expires_ms);
	int (*expire)(struct store *st, int64_t now_ms, const struct hook_ref *hooks,
	              size_t n_hooks, long *count);
	int (*prune)(struct store *st, int64_t cutoff_ms, struct store_prune_counts *out);
	int (*query)(struct store *st, enum store_query q, const char *arg, int64_t limit,
	             store_row_fn fn, void *fn_arg);
	/* The outbox (outbox.h). */
	int (*claim)(struct store *st, int64_t now_ms, int64_t lease_ms, const char *host,
	             struct hook_run *run);
	int (*set_pgid)(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
	                int64_t pgid, int64_t pg_start);
	int (*finish)(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
	              const char *state,
	              bool has_exit, int exit_code, const char *output, size_t output_len,
	              int64_t next_ms, int64_t now_ms);
	int (*stale)(struct store *st, int64_t now_ms, struct stale_run *out, size_t cap);
	int (*reclaim)(struct store *st, const struct stale_run *run, int64_t max_attempts,
	               int64_t now_ms);
	int (*any_due)(struct store *st, int64_t now_ms, bool *due);
	int64_t (*next_due_ms)(struct store *st);
	int (*retry)(struct store *st, int64_t run_id, int64_t now_ms);
	int (*take_runner_slot)(struct store *st, int max);
	void (*release_runner_slot)(struct store *st);
	/* `copy` (NULL where the backend is not a source, or not a target). */
	int (*dump)(struct store *st, enum store_table t, store_row_fn fn, void *fn_arg);
	int (*load_begin)(struct store *st, bool append);
	int (*load_row)(struct store *st, enum store_table t, const char *const *cols);
	int (*load_end)(struct store *st, bool commit);
};

/* The part of every backend's handle that the common code reads. */
struct store {
	const struct store_ops *ops;
	bool durable; /* durability = full: applied deliveries wait for the disk */
};

/* The backends' constructors; same contract as store_open(). */
struct store *store_sqlite_open(const struct store_options *opts, char *err, size_t errlen);
/* store_runner_slots_taken() for an SQLite database at path. */
bool sqlite_runner_slots_taken(const char *path, int max);
#ifdef HAVE_POSTGRESQL
struct store *store_pg_open(const struct store_options *opts, char *err, size_t errlen);
/*
 * PQlibVersion(): major * 10000 + minor; -1 with *why set when libpq
 * cannot be loaded (lazy_pq.h), else *why NULL.
 */
int store_pg_library_version(const char **why);
#endif

/*
 * The rules of a status change (cfimages-webhook(8) STATUSES), in order,
 * for an image whose status is prev ("" for one just auto-registered) and
 * an event moving it to next: duplicate, stale, or applied.  Fills the
 * delivery reason token, the log row's event type and its message.
 */
enum store_outcome store_decide(const char *prev, const char *next, const char **reason,
                                const char **log_type, char *message, size_t message_cap);

/*
 * The `show` object from the ten columns of STORE_QUERY_IMAGE, as text
 * (NULL for SQL NULL): keys in the order of cfimages-webhook(8) COMMANDS,
 * JSON columns embedded as the stored text (whitespace between tokens
 * removed), anything else a JSON string.  Returns a malloc'd line, or
 * NULL when out of memory.
 */
char *store_show_from_columns(const char *const *cols);

/* The hook input of an expired image: {"id":ID,"status":"expired"}, malloc'd. */
char *store_expire_input(const char *id);

/* Formats a one-line reason into the caller's error buffer (err may be NULL). */
void store_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies s for a struct hook_run: never NULL unless out of memory. */
char *store_strdup_or_empty(const char *s);

#endif
