/*
 * The store (cfimages-webhook(8) STATUSES and DATABASE): every statement
 * the program runs, behind one interface.  The `db` setting chooses the
 * backend: a postgresql:// or postgres:// URI is PostgreSQL
 * (store_pg.c), anything else an SQLite file (store_sqlite*.c); nothing
 * outside the store knows which one runs.  Schema creation and upgrades,
 * one transaction per delivery, the outbox (outbox.h), the writes and the
 * read queries of the operator commands.  One struct store per thread and
 * per process (never share a handle across fork() or between threads).
 */
#ifndef CFW_STORE_H
#define CFW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

/* The schema versions this binary writes, one per backend: they are
 * numbered apart (SQLite: PRAGMA user_version; PostgreSQL: the
 * cfimages_schema table).  Same tables and columns in both. */
#define STORE_SQLITE_SCHEMA_VERSION 4
#define STORE_PG_SCHEMA_VERSION 2
/* How long a writer waits for another process's transaction. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* Page cache bound, KiB (PRAGMA cache_size = -N), for a flat memory profile. */
#define STORE_CACHE_KIB 1024

struct store;

struct store_options {
	const char *path;     /* the `db` setting: an SQLite file, or a PostgreSQL URI */
	unsigned db_mode;     /* permission bits the file is created with, e.g. 0600 */
	bool durable;         /* durability = full: synchronous=FULL for applied deliveries */
	bool create;          /* create the file (and schema) when missing */
	bool responder;       /* a request's handle: no checkpoint on the request path
	                       * (store_idle does it), none on close */
	bool one_shot;        /* CGI: one request, then exit; statements are prepared
	                       * when first used, not all at open */
};

/*
 * Opens the database opts->path names and brings its schema to its
 * backend's version (above); a database whose schema is newer than this
 * binary's is refused untouched.  SQLite: created with opts->db_mode when
 * missing and opts->create (the parent directory too, one level); WAL
 * mode, busy timeout, bounded cache.  PostgreSQL: one connection, the
 * schema created when missing and opts->create.  On failure returns NULL
 * and writes a one-line reason into err (never a password).
 */
struct store *store_open(const struct store_options *opts, char *err, size_t errlen);

/* True when db (the `db` setting) names a PostgreSQL database. */
bool store_is_postgresql(const char *db);

/*
 * db as it may be shown in logs, errors and to hooks: a URI's password
 * (user:PASSWORD@, password=... or sslpassword=...) replaced by "***".
 * Writes into buf.
 */
const char *store_display_name(const char *db, char *buf, size_t cap);

/* Whether the URI query parameter whose name starts at p (up to its '=')
 * holds a secret: password or sslpassword, percent-decoded. */
bool store_is_secret_param(const char *p);

/* The '@' that ends a postgresql:// URI's userinfo as store_display_name
 * reads it, or NULL. */
const char *store_uri_userinfo_end(const char *db);

/*
 * The database libraries built in, for --version: "SQLite 3.40.1, libpq
 * 15.18" (or "libpq: not built in (./configure --with-postgresql)").
 */
const char *store_library_versions(char *buf, size_t cap);

/* The backend of an open store: "sqlite" or "postgresql". */
const char *store_backend(const struct store *st);
/* Receives one problem of store_access_problems(): what is wrong, and the fix. */
typedef void (*store_problem_fn)(void *arg, const char *problem);
/*
 * Checks, without opening anything, that the running user (effective ids)
 * may read and write what SQLite writes in WAL mode: the database file at
 * path, its -wal and -shm files when they exist, and its directory.
 * Calls found(arg, text) once per problem, the text naming the file and
 * the command that fixes it.  Returns the number of problems.  store_open
 * refuses a database with a problem, so that SQLite never opens it
 * read-only (and never creates a -shm with a read-only mode).
 */
int store_access_problems(const char *path, store_problem_fn found, void *arg);

/* Closes; NULL is a no-op. */
void store_close(struct store *st);
/* The schema version of the open database, or -1 on error (logged). */
int store_schema_version(struct store *st);
/*
 * Replaces STORE_BUSY_TIMEOUT_MS for this handle (tests use a short one to
 * prove that a lock held past the timeout is a 500, not a hang).
 */
void store_set_busy_timeout(struct store *st, int ms);

/* One webhook_deliveries row.  Strings are borrowed, NULL stores NULL. */
struct delivery {
	int64_t received_ms;
	int status_code;        /* set by the caller, or by store_apply */
	const char *reason;     /* token (README "Delivery reasons"), same */
	const char *remote_addr;
	const char *scheme;     /* auth_scheme_token(), or NULL before authentication */
	const char *message_id; /* Standard Webhooks webhook-id */
	const char *image_id;
	bool has_body;          /* body_sha256 / body_size are meaningful */
	unsigned char body_sha256[SHA256_BYTES];
	size_t body_size;
	int64_t id;             /* set on return: the row's id */
};

/*
 * Writes a rejected (or ignored) request's delivery row alone, in its own
 * transaction with synchronous=NORMAL: it does not wait for the disk.
 * Returns 0, or -1 after logging why.
 */
int store_record(struct store *st, struct delivery *d);

/*
 * Like store_record, plus a log row keeping the body (event_type "ignored",
 * image_id "" unless d->image_id is set, message as given), in one
 * transaction without waiting for the disk.  Returns 0 or -1 (logged).
 */
int store_record_ignored(struct store *st, struct delivery *d, const char *body, size_t body_len,
                         const char *message);

/* True when a delivery with this message_id was already answered 200. */
int store_message_seen(struct store *st, const char *message_id, bool *seen);

/* A hook script to queue: name relative to hooks_dir, and its full path. */
struct hook_ref {
	const char *name; /* "uploaded" or "uploaded.d/10-thumbs" */
	const char *path; /* absolute */
};

enum store_outcome {
	STORE_APPLIED = 0, /* 200 "applied": status changed, hooks queued */
	STORE_DUPLICATE,   /* 200 "duplicate": same status as now */
	STORE_STALE,       /* 200 "stale": out of uploaded/completed, not applied */
	STORE_NOT_FOUND,   /* 404 "not_found": unknown id, auto_register off */
	STORE_REPLAY,      /* 200 "replay": its webhook-id was applied meanwhile (by another
	                    * process or node; a backend that cannot tell answers duplicate) */
	STORE_ERROR        /* 500: nothing committed (delivery row best effort) */
};

/*
 * Applies one event in a single BEGIN IMMEDIATE transaction (cfimages-webhook(8) STATUSES):
 * reads the image's status (inserting it with previous status "" when
 * unknown and auto_register), decides duplicate / stale / applied, updates
 * the image's fields, writes the log row (event_type "status_changed",
 * "duplicate" or "stale"; data = the raw body), the delivery row (status
 * code and reason filled in here) and, when applied, one queued hook_runs
 * row per hook with the body kept as the run's input.  Commits with
 * synchronous=FULL when the store is durable.  A 404 row is written
 * without waiting for the disk.  *d is completed (status_code, reason, id).
 */
enum store_outcome store_apply(struct store *st, const struct event *ev, const char *body,
                               size_t body_len, const struct hook_ref *hooks, size_t n_hooks,
                               bool auto_register, struct delivery *d);

/* What one delivery asks of store_write_batch(). */
enum store_job_kind {
	STORE_JOB_RECORD,         /* store_record: the delivery row alone */
	STORE_JOB_RECORD_IGNORED, /* store_record_ignored: plus a log row keeping the body */
	STORE_JOB_APPLY,          /* store_apply, after the replay check of message_id */
};

/*
 * One delivery's writes, as store_write_batch() takes them.  The inputs
 * are borrowed and must outlive the call; d is completed as the single
 * operation would complete it (status_code, reason, id).
 */
struct store_job {
	enum store_job_kind kind;
	struct delivery *d;
	const struct event *ev;       /* APPLY */
	const char *body;             /* APPLY, RECORD_IGNORED: kept in the log row */
	size_t body_len;
	const struct hook_ref *hooks; /* APPLY: queued when the status changes */
	size_t n_hooks;
	bool auto_register;           /* APPLY */
	const char *message;          /* RECORD_IGNORED: the log row's message */
	enum store_outcome outcome;   /* out, APPLY: as store_apply returns it (STORE_REPLAY
	                               * when d->message_id was answered 200 before) */
	int rc;                       /* out: 0, or -1 when nothing of it was committed */
	bool may_defer_sync;          /* in: the caller calls store_sync() before answering
	                               * a job whose sync_after is set */
	bool sync_after;              /* out: committed, but on disk only once store_sync()
	                               * has returned 0 */
};

/* Most jobs store_write_batch() takes at once. */
#define STORE_BATCH_MAX 64

/*
 * Group commit: the n (at most STORE_BATCH_MAX) jobs, in order, in one
 * transaction where the backend can (one commit, so one wait for the disk
 * for all of them), each inside a savepoint of its own: a job that fails
 * leaves nothing behind (its 500 row is recorded instead, as store_apply
 * records it) and does not fail the others.  The commit waits for the
 * disk only when a job changed an image's status on a durable store:
 * rejected, ignored, unknown-image, duplicate, stale and replayed
 * deliveries promise nothing that is not on disk already.  Returns the
 * number of jobs whose rc is -1.
 */
int store_write_batch(struct store *st, struct store_job *jobs, size_t n);

/*
 * Group commit across processes and batches: a batch whose every job has
 * may_defer_sync set may be committed without waiting for the disk where
 * the backend can make it durable afterwards (SQLite: an fdatasync of the
 * write-ahead log, which holds every commit made before it).  Its jobs
 * then have sync_after set, and the caller calls store_sync() -- without
 * holding anything the next writer needs -- before answering them.
 * Several such waits, of this process's next batch or of other processes,
 * then overlap instead of queueing one after another.  Returns 0 once
 * everything committed before the call is on disk, -1 (logged) if that
 * cannot be promised.  Safe to call from any thread while another thread
 * writes with st.
 */
int store_sync(struct store *st);

/*
 * Housekeeping a responder does between requests, after its answers are
 * out: SQLite checkpoints its write-ahead log once it has grown (a
 * responder's handle never checkpoints on the request path).  Cheap when
 * there is nothing to do; errors are logged and otherwise ignored.
 */
void store_idle(struct store *st);

/*
 * Previous status of an image into buf ("" when unknown); returns 1 when
 * the image exists, 0 when not, -1 on error.
 */
int store_image_status(struct store *st, const char *id, char *buf, size_t cap);

/*
 * `register`: inserts a pending image unless it exists (idempotent: an
 * existing row is left as it is).  metadata_json may be NULL; expires_ms < 0
 * means none.  Logs a "registered" row when inserted.  Returns 1 inserted,
 * 0 existed, -1 error (logged).
 */
int store_register(struct store *st, const char *id, const char *metadata_json,
                   int64_t expires_ms);

/*
 * `show`: the image as one line of JSON, keys in the order of cfimages-webhook(8) COMMANDS, into a
 * malloc'd string the caller frees.  Returns 1 found, 0 unknown, -1 error.
 */
int store_show_json(struct store *st, const char *id, char **out);

/*
 * `expire`: in one transaction, moves every "pending" or "draft" image whose
 * expires_at is at or before now_ms to "expired": a log row (event_type
 * "expired", data = the hook input) and one queued hook_runs row per hook
 * (event "expire", input {"id":ID,"status":"expired"}).  Stores how many
 * images expired in *count.  Returns 0, or -1 after logging why (nothing
 * committed).
 */
int store_expire(struct store *st, int64_t now_ms, const struct hook_ref *hooks, size_t n_hooks,
                 long *count);

/* What store_prune deleted. */
struct store_prune_counts {
	long deliveries; /* webhook_deliveries rows */
	long logs;       /* cloudflare_image_logs rows */
	long hook_runs;  /* hook_runs rows in state done or failed */
};

/*
 * `prune`: in one transaction, deletes deliveries received, log rows written
 * and finished (done/failed) hook runs finished before cutoff_ms; queued and
 * running hook runs are kept whatever their age.  Then runs PRAGMA optimize.
 * Returns 0, or -1 after logging why (nothing deleted).
 */
int store_prune(struct store *st, int64_t cutoff_ms, struct store_prune_counts *out);

/*
 * Takes one of max slots for a detached hook runner, held until released
 * or the store is closed (or the process dies).  SQLite: a write lock on
 * one byte of DB-hooks.lock beside the database (never followed through
 * a symbolic link, refused unless a regular file of ours); PostgreSQL: a
 * session advisory lock, so the slots are shared by every node.  Returns
 * the slot, or -1 when all are taken or the lock cannot be had (logged).
 */
int store_take_runner_slot(struct store *st, int max);
void store_release_runner_slot(struct store *st);

/*
 * True when another process holds every one of the max runner slots of the
 * database db (a path or URI; no store needed): a runner started now would
 * find none and exit, and the runners holding them look for due runs once
 * more after letting their slot go, so nothing queued before this call is
 * stranded (unless every holder dies first, as then before: the runs wait
 * for the next due check, cron's `hooks run`, or the lease).  SQLite only
 * (a test lock on each byte of DB-hooks.lock, which is never created
 * here); false for PostgreSQL and whenever unsure.
 */
bool store_runner_slots_taken(const char *db, int max);

/*
 * The read queries of the operator commands.  Each row is handed over as
 * text columns, the same text on every backend: NULL for SQL NULL, times
 * in the stored RFC 3339 form with milliseconds, numbers in decimal, JSON
 * as stored.
 */
enum store_query {
	/* arg: an image id.  id, status, metadata, variants, result, error,
	 * uploaded_at, expires_at, created_at, updated_at. */
	STORE_QUERY_IMAGE,
	/* arg: a status, or NULL for all.  id, status, updated_at; newest first. */
	STORE_QUERY_IMAGES,
	/* arg: an image id, or NULL; limit.  timestamp, event_type, image_id,
	 * message; newest first. */
	STORE_QUERY_LOGS,
	/* arg: a status code, or NULL; limit.  received_at, status_code,
	 * reason, scheme, remote_addr, image_id; newest first. */
	STORE_QUERY_DELIVERIES,
	/* arg: a state, or NULL; limit.  id, state, attempts, exit_code, hook,
	 * image_id, created_at, finished_at, next_attempt_at, output, host;
	 * newest first. */
	STORE_QUERY_HOOK_RUNS,
	/* status, count; by status. */
	STORE_QUERY_IMAGE_COUNTS,
	/* status_code, count; by code. */
	STORE_QUERY_DELIVERY_COUNTS,
	/* state, count; by state. */
	STORE_QUERY_RUN_COUNTS,
};

/* Receives one row; a non-zero return stops the query (and is returned). */
typedef int (*store_row_fn)(void *arg, const char *const *cols, size_t n_cols);

/*
 * Runs query q (arg and limit as its comment says; limit < 0: none) and
 * hands each row to fn.  Returns 0, fn's non-zero return, or -1 on a
 * database error (logged).
 */
int store_query(struct store *st, enum store_query q, const char *arg, int64_t limit,
                store_row_fn fn, void *fn_arg);

/* The tables `copy` moves, in the order it moves them. */
enum store_table {
	STORE_TABLE_IMAGES,
	STORE_TABLE_LOGS,
	STORE_TABLE_DELIVERIES,
	STORE_TABLE_HOOK_RUNS,
	STORE_TABLE_COUNT
};

/* The table's name and its columns as `copy` moves them: all of them. */
const char *store_table_name(enum store_table t);
const char *const *store_table_columns(enum store_table t, size_t *n);

/*
 * `copy`, the reading side: every row of table t, ordered by id, handed to
 * fn as text columns in store_table_columns() order (NULL for SQL NULL;
 * times as stored; a BLOB as "\x" and lower-case hex).  Returns 0, fn's
 * non-zero return, or -1 (logged).
 */
int store_dump(struct store *st, enum store_table t, store_row_fn fn, void *fn_arg);

/*
 * `copy`, the writing side, in one transaction: begin (refused with -2
 * when a table already holds rows, unless append), one call per row in
 * store_dump()'s form (ids kept), then end, which commits (making later
 * ids follow the copied ones) or, with commit false, rolls back.  Each
 * returns 0 or -1 (logged).  Backends that cannot be a target return -1
 * with a message.
 */
int store_load_begin(struct store *st, bool append);
int store_load_row(struct store *st, enum store_table t, const char *const *cols);
int store_load_end(struct store *st, bool commit);

#endif
