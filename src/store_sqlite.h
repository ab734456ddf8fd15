/*
 * Private to the SQLite backend: its handle, shared by store_sqlite.c
 * (connection, schema, the delivery transaction) and store_sqlite_query.c
 * (the commands' read queries and the outbox).
 */
#ifndef CFW_STORE_SQLITE_H
#define CFW_STORE_SQLITE_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <sys/types.h>

#include "store_impl.h"

/*
 * The SQL function each connection adds: the instant of an RFC 3339 text
 * in milliseconds (NULL when it is not one).  Only our own statements use
 * it; it is never written into the schema, so other connections need not
 * know it.
 */
#define SQL_TIME_MS "cfw_time_ms"

/* Prepared statements the delivery path keeps (store_sqlite.c). */
#define SQLITE_KEPT_STATEMENTS 32

struct sqlite_store {
	struct store base;              /* first: a struct store * is this */
	sqlite3 *db;                    /* opened by this thread, never shared across fork */
	sqlite3_stmt *stmt[SQLITE_KEPT_STATEMENTS]; /* prepared once, reset after every use */
	int sync;                       /* PRAGMA synchronous now in force, SYNC_* */
	int busy_timeout_ms;            /* how long a writer waits for the lock */
	int64_t busy_since_ms;          /* when the current wait began */
	char *path;                     /* the database file */
	unsigned db_mode;               /* its mode, for the runner lock file too */
	int slot_fd;                    /* the runner slot's lock file, or -1 */
	int write_fd;                   /* DB-write.lock (writers queue on it), -1: not open */
	bool write_fd_failed;           /* it could not be opened: the busy handler alone */
	bool lazy;                      /* statements prepared when first used (one_shot) */
	bool responder;                 /* checkpoints left to store_idle() */
	int wal_pages;                  /* frames in the WAL after our last commit */
	char *db_file;                  /* the file SQLite opened (symbolic links resolved) */
	char *wal_file;                 /* its write-ahead log: db_file + "-wal" */
	char *db_dir;                   /* the directory holding both */
	pthread_mutex_t synced_lock;    /* guards synced_wal (store_sync runs beside writers) */
	ino_t synced_wal;               /* the WAL whose directory entry is known on disk, 0: none */
	atomic_ulong syncs;             /* store_syncs done (for tests) */
	atomic_bool sync_failed;        /* a flush failed: every later store_sync fails */
	/* A responder's checkpointer thread (store_sqlite.c, sq_idle). */
	int ckpt_asked_at;              /* wal_pages when it was last asked (writer's side) */
	pthread_mutex_t ckpt_lock;      /* guards the fields below */
	pthread_cond_t ckpt_wake;       /* asked, stopping, or (for waiters) done */
	pthread_t ckpt_thread;
	bool ckpt_started, ckpt_stop;
	bool ckpt_asked;                /* a checkpoint is wanted */
	bool ckpt_running;              /* one is in progress */
};

static inline struct sqlite_store *SQ(struct store *st)
{
	return (struct sqlite_store *)st;
}

/* Waits until the checkpointer has done what it was asked (for tests). */
void sqlite_checkpoint_wait(struct sqlite_store *st);

/*
 * Whether the next commits wait for the disk: wait true, as durability
 * asks (synchronous=FULL at full); false, never (NORMAL: on disk once the
 * log is next flushed, by a later FULL commit or store_sync).  0 or -1.
 */
int sqlite_wait_for_disk(struct sqlite_store *st, bool wait);

/*
 * DB-write.lock, on which writers queue (a blocking lock, where SQLite's
 * own busy handler would poll): waits at most the busy timeout.  Returns
 * true when it is held; false when it timed out (*busy true, logged with
 * what was being done: SQLITE_BUSY for the caller) or there is no lock
 * file to take (*busy false: the caller goes on, SQLite's busy handler
 * alone).  Taken before SQLite's
 * own write lock, never after it; held by one thread of a process at a
 * time (a record lock: the process's).
 */
bool sqlite_write_lock(struct sqlite_store *st, const char *doing, bool *busy);
void sqlite_write_unlock(struct sqlite_store *st);

/* Logs the connection's last error once, naming what was being done. */
void sqlite_log_error(struct sqlite_store *st, const char *doing);

/* The operations of store_sqlite_query.c, for the backend's table. */
int sqlite_query(struct store *st, enum store_query q, const char *arg, int64_t limit,
                 store_row_fn fn, void *fn_arg);
int sqlite_claim(struct store *st, int64_t now_ms, int64_t lease_ms, const char *host,
                 struct hook_run *run);
int sqlite_set_pgid(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                    int64_t pgid, int64_t pg_start);
int sqlite_finish(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                  const char *state,
                  bool has_exit, int exit_code, const char *output, size_t output_len,
                  int64_t next_ms, int64_t now_ms);
int sqlite_stale(struct store *st, int64_t now_ms, struct stale_run *out, size_t cap);
int sqlite_reclaim(struct store *st, const struct stale_run *run, int64_t max_attempts,
                   int64_t now_ms);
int sqlite_any_due(struct store *st, int64_t now_ms, bool *due);
int64_t sqlite_next_due_ms(struct store *st);
int sqlite_retry(struct store *st, int64_t run_id, int64_t now_ms);
int sqlite_dump(struct store *st, enum store_table t, store_row_fn fn, void *fn_arg);

#endif
