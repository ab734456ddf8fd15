/*
 * The SQLite backend of the store (cfimages-webhook(8) STATUSES and
 * DATABASE): connection, schema and the delivery transaction; its read
 * queries and the outbox are in store_sqlite_query.c.  One connection per
 * thread that writes (a FastCGI process has one: its group commit's), in
 * WAL mode with a busy timeout so several processes can write at once;
 * every statement the responder uses is prepared once, when the handle is
 * opened (a CGI process's one-shot handle: when first used), and reset
 * after each use, so a process that answers millions of requests neither
 * re-parses SQL nor grows.
 *
 * Deliveries are written in batches (store_write_batch: one transaction,
 * a savepoint per delivery; see "Group commit" below).
 *
 * Durability is chosen per transaction with PRAGMA synchronous, which
 * SQLite only lets us change between transactions: FULL for a transaction
 * in which a delivery changed a status and whose 200 promises its effect
 * is on disk (durability = full), NORMAL for one that only records
 * duplicates, stale and rejected requests, so that neither a sender's
 * retries nor unauthenticated traffic force an fsync per request.  The
 * current setting is tracked so the pragma is only issued when it
 * changes.
 *
 * Schema upgrades: migrations[v] takes a database from user_version v to
 * v + 1, each in its own BEGIN IMMEDIATE transaction that re-reads the
 * version first (two processes may start on a fresh file together).  The
 * first migration uses CREATE ... IF NOT EXISTS, so a database that already
 * holds other tables (user_version 0, e.g. the application's own) simply
 * gains ours; a same-named table with other columns is reported when the
 * statements are prepared.  A database newer than this binary is refused
 * before anything (even the switch to WAL) writes to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <sqlite3.h>

#include "json.h"
#include "store_sqlite.h"
#include "util.h"

/* Room for the PRAGMAs built with a number in them. */
#define PRAGMA_TEXT_SIZE 64

/* Sleeps of the busy handler, microseconds: grows from MIN by MIN a try. */
#define STORE_BUSY_SLEEP_MIN_US 200
#define STORE_BUSY_SLEEP_MAX_US 5000

/* PRAGMA synchronous levels, as SQLite numbers them; 0 here means "not set yet". */
#define SYNC_UNKNOWN 0
#define SYNC_NORMAL 1
#define SYNC_FULL 2



/* Version 0 (an empty or foreign database) to version 1. */
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS cloudflare_images ("
    " cloudflare_id TEXT PRIMARY KEY,"
    " status TEXT NOT NULL DEFAULT 'pending',"
    " filename TEXT,"
    " metadata TEXT,"
    " variants TEXT,"
    " require_signed_urls INTEGER,"
    " error TEXT,"
    " uploaded_at TEXT,"
    " expires_at TEXT,"
    " result TEXT,"
    " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
    " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));"
    "CREATE INDEX IF NOT EXISTS cloudflare_images_status ON cloudflare_images(status);"
    "CREATE INDEX IF NOT EXISTS cloudflare_images_created_at"
    " ON cloudflare_images(created_at);"
    "CREATE TABLE IF NOT EXISTS cloudflare_image_logs ("
    " id INTEGER PRIMARY KEY,"
    " image_id TEXT NOT NULL,"
    " event_type TEXT NOT NULL,"
    " message TEXT,"
    " data TEXT,"
    " timestamp TEXT NOT NULL,"
    " delivery_id INTEGER);"
    "CREATE INDEX IF NOT EXISTS cloudflare_image_logs_image"
    " ON cloudflare_image_logs(image_id, id);"
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    " id INTEGER PRIMARY KEY,"
    " received_at TEXT NOT NULL,"
    " status_code INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " remote_addr TEXT,"
    " scheme TEXT,"
    " message_id TEXT,"
    " image_id TEXT,"
    " body_sha256 TEXT,"
    " body_size INTEGER);"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_message_id"
    " ON webhook_deliveries(message_id) WHERE message_id IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_received_at"
    " ON webhook_deliveries(received_at);"
    "CREATE TABLE IF NOT EXISTS hook_runs ("
    " id INTEGER PRIMARY KEY,"
    " image_id TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " hook TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'queued'"
    "  CHECK (state IN ('queued', 'running', 'done', 'failed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " exit_code INTEGER,"
    " output TEXT,"
    " next_attempt_at TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " finished_at TEXT,"
    " previous_status TEXT NOT NULL DEFAULT '',"
    " event TEXT,"
    " input BLOB,"
    " delivery_id INTEGER,"
    " started_at TEXT,"
    " pgid INTEGER,"
    " pg_start INTEGER);"
    "CREATE INDEX IF NOT EXISTS hook_runs_due ON hook_runs(state, next_attempt_at);";

/*
 * Version 1 to 2: hook runs carry a lease and the host that claimed them
 * (cfimages-webhook(8) HOOKS).  A run left running by an older binary
 * gets a lease of an hour from its start.  The runs of an image are found
 * by an index on (image_id, state).  (SQLite needs no unique index for
 * replays: BEGIN IMMEDIATE serializes writers, so a second delivery of a
 * webhook-id sees the first one's effect and is a duplicate.)
 */
static const char schema_v2[] =
    "ALTER TABLE hook_runs ADD COLUMN lease_until TEXT;"
    "ALTER TABLE hook_runs ADD COLUMN host TEXT;"
    "UPDATE hook_runs SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '+1 hour')"
    " WHERE state = 'running';"
    "CREATE INDEX IF NOT EXISTS hook_runs_image ON hook_runs(image_id, state);";

/*
 * Version 2 to 3: no index on webhook_deliveries(received_at).  Only
 * `prune` looked rows up by it, while every delivery paid for it: one
 * more page written per transaction (a quarter of a duplicate's).  prune
 * finds the rows by a read-only scan instead (sq_prune).
 */
static const char schema_v3[] = "DROP INDEX IF EXISTS webhook_deliveries_received_at;";

/*
 * Version 3 to 4: the outbox's indexes hold only the runs their queries
 * look for: the queued ones, by due time (the claim, `hooks run`'s next
 * due run), and the running ones, by image (the claim skips an image
 * with a run in progress; a lease's end).  Whole-table indexes on
 * (state, next_attempt_at) and (image_id, state) were written at every
 * claim and every outcome (an entry moved from one state to another),
 * and the image's at every queued run (a leaf anywhere in the index): a
 * hook run wrote about eleven pages, now about six.  Finished runs are
 * looked up only by `prune` and the operator's listings, which scan.
 */
static const char schema_v4[] =
    "DROP INDEX IF EXISTS hook_runs_due;"
    "DROP INDEX IF EXISTS hook_runs_image;"
    "CREATE INDEX IF NOT EXISTS hook_runs_queued ON hook_runs(next_attempt_at)"
    " WHERE state = 'queued';"
    "CREATE INDEX IF NOT EXISTS hook_runs_running ON hook_runs(image_id)"
    " WHERE state = 'running';";

/* migrations[v] brings user_version v to v + 1. */
static const char *const migrations[STORE_SQLITE_SCHEMA_VERSION] = {schema_v1, schema_v2,
                                                                    schema_v3, schema_v4};

/* Every statement the handle keeps prepared. */
enum stmt_id {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_USER_VERSION,
	STMT_DELIVERY_INSERT,
	STMT_MESSAGE_SEEN,
	STMT_IMAGE_STATUS,
	STMT_IMAGE_INSERT,
	STMT_IMAGE_UPDATE,
	STMT_LOG_INSERT,
	STMT_HOOK_INSERT,
	STMT_REGISTER,
	STMT_EXPIRE_DUE,
	STMT_EXPIRE_UNREADABLE,
	STMT_EXPIRE_UPDATE,
	STMT_PRUNE_DELIVERIES_UPTO,
	STMT_PRUNE_LOGS_UPTO,
	STMT_PRUNE_DELIVERIES,
	STMT_PRUNE_LOGS,
	STMT_PRUNE_HOOK_RUNS,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_COUNT
};
_Static_assert(STMT_COUNT <= SQLITE_KEPT_STATEMENTS, "sqlite_store.stmt is too small");

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_USER_VERSION] = "PRAGMA user_version",
    [STMT_DELIVERY_INSERT] = "INSERT INTO webhook_deliveries (received_at, status_code, reason,"
                             " remote_addr, scheme, message_id, image_id, body_sha256, body_size)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_MESSAGE_SEEN] = "SELECT 1 FROM webhook_deliveries"
                          " WHERE message_id = ?1 AND status_code = 200 LIMIT 1",
    [STMT_IMAGE_STATUS] = "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?1",
    [STMT_IMAGE_INSERT] = "INSERT INTO cloudflare_images (cloudflare_id, status, created_at,"
                          " updated_at) VALUES (?1, 'pending', ?2, ?2)",
    [STMT_IMAGE_UPDATE] = "UPDATE cloudflare_images SET status = ?2, updated_at = ?3,"
                          " filename = COALESCE(?4, filename),"
                          " metadata = COALESCE(?5, metadata),"
                          " variants = COALESCE(?6, variants),"
                          " require_signed_urls = COALESCE(?7, require_signed_urls),"
                          " uploaded_at = COALESCE(?8, uploaded_at),"
                          " result = COALESCE(?9, result),"
                          " error = ?10"
                          " WHERE cloudflare_id = ?1",
    [STMT_LOG_INSERT] = "INSERT INTO cloudflare_image_logs (image_id, event_type, message, data,"
                        " timestamp, delivery_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_HOOK_INSERT] = "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,"
                         " next_attempt_at, created_at, previous_status, event, input,"
                         " delivery_id) VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?5, ?6, ?7,"
                         " ?8, ?9)",
    [STMT_REGISTER] = "INSERT OR IGNORE INTO cloudflare_images (cloudflare_id, status, metadata,"
                      " expires_at, created_at, updated_at)"
                      " VALUES (?1, 'pending', ?2, ?3, ?4, ?4)",
    [STMT_EXPIRE_DUE] = "SELECT cloudflare_id, status FROM cloudflare_images"
                        " WHERE status IN ('pending', 'draft')"
                        " AND " SQL_TIME_MS "(expires_at) <= ?1"
                        " ORDER BY " SQL_TIME_MS "(expires_at), cloudflare_id",
    [STMT_EXPIRE_UNREADABLE] = "SELECT count(*) FROM cloudflare_images"
                               " WHERE status IN ('pending', 'draft') AND expires_at IS NOT NULL"
                               " AND " SQL_TIME_MS "(expires_at) IS NULL",
    [STMT_EXPIRE_UPDATE] = "UPDATE cloudflare_images SET status = 'expired', updated_at = ?2"
                           " WHERE cloudflare_id = ?1",
    [STMT_PRUNE_DELIVERIES_UPTO] = "SELECT max(id) FROM webhook_deliveries WHERE received_at < ?1",
    [STMT_PRUNE_LOGS_UPTO] = "SELECT max(id) FROM cloudflare_image_logs WHERE timestamp < ?1",
    [STMT_PRUNE_DELIVERIES] = "DELETE FROM webhook_deliveries WHERE id <= ?2 AND received_at < ?1",
    [STMT_PRUNE_LOGS] = "DELETE FROM cloudflare_image_logs WHERE id <= ?2 AND timestamp < ?1",
    [STMT_PRUNE_HOOK_RUNS] = "DELETE FROM hook_runs WHERE state IN ('done', 'failed')"
                             " AND COALESCE(finished_at, created_at) < ?1",
    [STMT_SAVEPOINT] = "SAVEPOINT job",
    [STMT_RELEASE] = "RELEASE job",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO job",
};


static const struct store_ops sqlite_ops;
static void sq_close(struct store *base);
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages);
static int on_busy(void *ctx, int count);
static int open_lock_file(const char *path, mode_t mode, const char *who);
static void sq_set_busy_timeout(struct store *base, int ms);

/* One image found due by `expire`, copied out before it is changed. */
struct expiring {
	char *id;                    /* malloc'd */
	char prev[STATUS_TEXT_SIZE]; /* "pending" or "draft" */
};

/*
 * Binds a NUL-terminated string, or NULL as SQL NULL.  The text is not
 * copied: it must outlive the statement's next reset.
 */
static int bind_text(sqlite3_stmt *s, int idx, const char *text)
{
	if (text == NULL)
		return sqlite3_bind_null(s, idx);
	return sqlite3_bind_text(s, idx, text, -1, SQLITE_STATIC);
}

/* Binds an integer, or SQL NULL when present is false. */
static int bind_int64_or_null(sqlite3_stmt *s, int idx, bool present, int64_t v)
{
	if (!present)
		return sqlite3_bind_null(s, idx);
	return sqlite3_bind_int64(s, idx, v);
}

/* Leaves a kept statement ready for its next use, dropping borrowed bindings. */
static void stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/*
 * Steps a kept statement (already bound) until it is done, ignoring any
 * rows, and resets it.  Returns SQLITE_OK or the step's error code; on
 * error sqlite3_errmsg() still describes it when this returns.
 */
/*
 * The kept statement id, prepared now when the handle prepares lazily (a
 * CGI process answers one request: it prepares what that request uses).
 * NULL when it cannot be prepared; the connection then holds the error.
 */
static sqlite3_stmt *kept(struct sqlite_store *st, enum stmt_id id)
{
	if (st->stmt[id] == NULL && sqlite3_prepare_v3(st->db, stmt_sql[id], -1,
	                                               SQLITE_PREPARE_PERSISTENT, &st->stmt[id],
	                                               NULL) != SQLITE_OK)
		return NULL;
	return st->stmt[id];
}

/* The error code to return when kept() gave NULL: never SQLITE_OK. */
static int kept_error(struct sqlite_store *st)
{
	int rc = sqlite3_errcode(st->db);
	return rc == SQLITE_OK ? SQLITE_ERROR : rc;
}

static int run(struct sqlite_store *st, enum stmt_id id)
{
	sqlite3_stmt *s = kept(st, id);
	int rc;

	if (s == NULL)
		return kept_error(st);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	if (rc == SQLITE_DONE) {
		stmt_done(s);
		return SQLITE_OK;
	}
	sqlite3_clear_bindings(s);
	/* sqlite3_reset() repeats the error and leaves the message in place. */
	sqlite3_reset(s);
	return rc;
}

/*
 * Sets PRAGMA synchronous when it differs from the setting in force.  Must
 * be called outside a transaction (SQLite refuses the change inside one).
 * The pragma takes effect when it is compiled, so it cannot be kept
 * prepared; it is cheap and issued only on a change.
 */
static int set_sync(struct sqlite_store *st, int level)
{
	int rc;

	if (st->sync == level)
		return SQLITE_OK;
	rc = sqlite3_exec(st->db,
	                  level == SYNC_FULL ? "PRAGMA synchronous = FULL"
	                                     : "PRAGMA synchronous = NORMAL",
	                  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		st->sync = level;
	return rc;
}

/* The synchronous level for a transaction whose success is promised to someone. */
static int durable_sync(const struct sqlite_store *st)
{
	return st->base.durable ? SYNC_FULL : SYNC_NORMAL;
}

int sqlite_wait_for_disk(struct sqlite_store *st, bool wait)
{
	return set_sync(st, wait ? durable_sync(st) : SYNC_NORMAL) == SQLITE_OK ? 0 : -1;
}

/*
 * Rolls back the open transaction, if there is one.  Used on error paths,
 * after the error has been logged (a successful ROLLBACK replaces the
 * connection's error message).
 */
static void rollback(struct sqlite_store *st)
{
	if (!sqlite3_get_autocommit(st->db) && run(st, STMT_ROLLBACK) != SQLITE_OK)
		log_error("store: rollback failed: %s", sqlite3_errmsg(st->db));
}

/* Logs the connection's last error once, naming what was being done. */
void sqlite_log_error(struct sqlite_store *st, const char *doing)
{
	log_error("store: %s: %s (code %d)", doing, sqlite3_errmsg(st->db),
	          sqlite3_extended_errcode(st->db));
}

/*
 * Reads an image's status into buf (truncated to cap - 1 bytes: statuses
 * we write are short, and a longer foreign value cut at cap - 1 >= 10
 * bytes still equals none of ours).  *found tells whether the row exists;
 * buf is "" when it does not.  Returns SQLITE_OK or an error code.
 */
static int read_status(struct sqlite_store *st, const char *id, char *buf, size_t cap, bool *found)
{
	sqlite3_stmt *s = kept(st, STMT_IMAGE_STATUS);
	const unsigned char *text;
	int rc;

	*found = false;
	if (cap > 0)
		buf[0] = '\0';
	if (s == NULL)
		return kept_error(st);
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		text = sqlite3_column_text(s, 0);
		if (cap > 0)
			snprintf(buf, cap, "%s", text ? (const char *)text : "");
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		sqlite3_clear_bindings(s);
		sqlite3_reset(s);
		return rc;
	}
	stmt_done(s);
	return SQLITE_OK;
}

/*
 * Inserts one webhook_deliveries row from *d and stores its id in d->id.
 * received_at comes from d->received_ms; body_sha256 is lower-case hex.
 */
static int insert_delivery(struct sqlite_store *st, struct delivery *d)
{
	sqlite3_stmt *s = kept(st, STMT_DELIVERY_INSERT);
	char when[TIME_TEXT_SIZE], hex[SHA256_HEX_SIZE];
	int rc;

	if (s == NULL)
		return kept_error(st);
	time_format_ms(d->received_ms, when);
	if (d->has_body)
		hex_encode(d->body_sha256, SHA256_BYTES, hex);
	bind_text(s, 1, when);
	sqlite3_bind_int(s, 2, d->status_code);
	bind_text(s, 3, d->reason);
	bind_text(s, 4, d->remote_addr);
	bind_text(s, 5, d->scheme);
	bind_text(s, 6, d->message_id);
	bind_text(s, 7, d->image_id);
	bind_text(s, 8, d->has_body ? hex : NULL);
	bind_int64_or_null(s, 9, d->has_body, (int64_t)d->body_size);
	rc = run(st, STMT_DELIVERY_INSERT);
	if (rc == SQLITE_OK)
		d->id = sqlite3_last_insert_rowid(st->db);
	return rc;
}

/*
 * Inserts one cloudflare_image_logs row.  data (data_len bytes, not
 * necessarily NUL-terminated) may be NULL; delivery_id <= 0 stores NULL.
 */
static int insert_log(struct sqlite_store *st, const char *image_id, const char *type, const char *message,
                      const char *data, size_t data_len, const char *when, int64_t delivery_id)
{
	sqlite3_stmt *s = kept(st, STMT_LOG_INSERT);

	if (s == NULL)
		return kept_error(st);
	bind_text(s, 1, image_id);
	bind_text(s, 2, type);
	bind_text(s, 3, message);
	if (data != NULL)
		sqlite3_bind_text64(s, 4, data, data_len, SQLITE_STATIC, SQLITE_UTF8);
	else
		sqlite3_bind_null(s, 4);
	bind_text(s, 5, when);
	bind_int64_or_null(s, 6, delivery_id > 0, delivery_id);
	return run(st, STMT_LOG_INSERT);
}

/*
 * Queues one hook run: state queued, no attempts yet, due now.  input
 * (input_len bytes) is kept as a BLOB so a retry in another process feeds
 * the hook the very bytes received; delivery_id <= 0 stores NULL.
 */
static int insert_hook_run(struct sqlite_store *st, const char *image_id, const char *status,
                           const struct hook_ref *hook, const char *when, const char *prev,
                           const char *event_name, const char *input, size_t input_len,
                           int64_t delivery_id)
{
	sqlite3_stmt *s = kept(st, STMT_HOOK_INSERT);

	if (s == NULL)
		return kept_error(st);
	bind_text(s, 1, image_id);
	bind_text(s, 2, status);
	bind_text(s, 3, hook->name);
	bind_text(s, 4, hook->path);
	bind_text(s, 5, when);
	bind_text(s, 6, prev);
	bind_text(s, 7, event_name);
	sqlite3_bind_blob64(s, 8, input != NULL ? input : "", input != NULL ? input_len : 0,
	                    SQLITE_STATIC);
	bind_int64_or_null(s, 9, delivery_id > 0, delivery_id);
	return run(st, STMT_HOOK_INSERT);
}

/*
 * Reads PRAGMA user_version with a throw-away statement (used while the
 * schema, and so the kept statements, may not exist yet).
 */
static int read_user_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*version = sqlite3_column_int(s, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

/*
 * Creates the parent directory of path when it is missing (one level: its
 * own parent must exist), with mode dir_mode exactly, whatever the umask.
 */
static int make_parent_dir(const char *path, mode_t dir_mode, char *err, size_t errlen)
{
	char *dir = strdup(path);
	char *slash;
	struct stat sb;
	int fd = -1, ret = -1;

	if (dir == NULL) {
		store_set_err(err, errlen, "out of memory");
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir) {
		ret = 0; /* the current directory or "/" */
		goto out;
	}
	*slash = '\0';
	if (stat(dir, &sb) == 0) {
		ret = 0;
		goto out;
	}
	if (errno != ENOENT) {
		store_set_err(err, errlen, "cannot access directory %s: %s", dir, strerror(errno));
		goto out;
	}
	if (mkdir(dir, dir_mode) != 0) {
		if (errno == EEXIST) {
			ret = 0; /* another process made it first; its mode is its own */
			goto out;
		}
		store_set_err(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
		goto out;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, dir_mode) != 0) {
		store_set_err(err, errlen, "cannot set the mode of directory %s: %s", dir,
		        strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/*
 * Creates the (empty) database file with mode exactly, whatever the umask:
 * SQLite would create it 0644 & ~umask.  A file another process created
 * meanwhile is accepted as it is.
 */
static int create_db_file(const char *path, mode_t mode, char *err, size_t errlen)
{
	int fd, ret = -1;

	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		store_set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) != 0) {
		store_set_err(err, errlen, "cannot set the mode of %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/* Room for a path with a "-wal" or "-shm" suffix, or the database's directory. */
#define STORE_PATH_SIZE 4096
/* Room for one access problem: two paths and the fix. */
#define STORE_PROBLEM_SIZE (3 * STORE_PATH_SIZE)

/*
 * One file or directory SQLite must write for path, checked with the
 * effective ids (faccessat with AT_EACCESS, as open() would check them):
 * read and write, plus search for a directory.  A missing -wal or -shm
 * (optional) is no problem.  When access is refused, writes the problem
 * and its fix into buf and returns true.  The fix depends on whose the
 * file is: its owner adds the permission, anyone else's file is handed to
 * the running user (root may do either).
 */
static bool access_problem(const char *file, bool is_dir, bool optional, char *buf, size_t cap)
{
	const char *why = is_dir ? "SQLite creates the database's -wal and -shm files there"
	                         : "SQLite would open the database read-only";
	int amode = R_OK | W_OK | (is_dir ? X_OK : 0);
	unsigned uid = (unsigned)geteuid();
	struct stat sb;

	if (stat(file, &sb) != 0) {
		if (errno == ENOENT && optional)
			return false;
		snprintf(buf, cap, "cannot access %s: %s", file, strerror(errno));
		return true;
	}
	if (faccessat(AT_FDCWD, file, amode, AT_EACCESS) == 0)
		return false;
	if (errno == EROFS) {
		snprintf(buf, cap,
		         "%s is on a read-only filesystem (remount it read-write, or move db to a "
		         "writable one)",
		         file);
	} else if (errno != EACCES && errno != EPERM) {
		snprintf(buf, cap, "cannot access %s: %s", file, strerror(errno));
	} else if (sb.st_uid == uid) {
		snprintf(
		    buf, cap,
		    "%s is not writable by uid %u, its owner (mode %04o); %s (fix: chmod u+%s %s)",
		    file, uid, (unsigned)(sb.st_mode & 07777), why, is_dir ? "rwx" : "rw", file);
	} else {
		snprintf(
		    buf, cap,
		    "%s is not writable by uid %u (owner uid %u, mode %04o); %s (fix: chown %u "
		    "%s, or give write access to a group uid %u is in)",
		    file, uid, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777), why, uid, file,
		    uid);
	}
	return true;
}

/*
 * The checks of store_access_problems(), in the order SQLite meets the
 * files: the directory (where SQLite creates and removes -wal and -shm),
 * the database, then -wal and -shm when they exist.
 */
int store_access_problems(const char *path, store_problem_fn found, void *arg)
{
	static const char *const suffixes[] = {"-wal", "-shm"};
	char file[STORE_PATH_SIZE], problem[STORE_PROBLEM_SIZE], *slash;
	int n = 0;

	if (store_is_postgresql(path))
		return 0; /* no file of ours */

	if (snprintf(file, sizeof file, "%s", path) >= (int)sizeof file) {
		found(arg, "the database path is too long");
		return 1;
	}
	slash = strrchr(file, '/');
	if (slash == NULL)
		snprintf(file, sizeof file, ".");
	else
		slash[slash == file ? 1 : 0] = '\0';
	if (access_problem(file, true, false, problem, sizeof problem)) {
		found(arg, problem);
		n++;
	}
	if (access_problem(path, false, false, problem, sizeof problem)) {
		found(arg, problem);
		n++;
	}
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		if (snprintf(file, sizeof file, "%s%s", path, suffixes[i]) >= (int)sizeof file)
			continue;
		if (access_problem(file, false, true, problem, sizeof problem)) {
			found(arg, problem);
			n++;
		}
	}
	return n;
}

/* The first problem store_access_problems() finds, kept as store_open's reason. */
struct first_problem {
	char *err;     /* the caller's buffer */
	size_t errlen; /* its size */
	bool set;      /* a problem is in it */
};

static void keep_first_problem(void *arg, const char *problem)
{
	struct first_problem *fp = arg;

	if (!fp->set)
		store_set_err(fp->err, fp->errlen, "%s", problem);
	fp->set = true;
}

/*
 * SQL function cfw_time_ms(value): the instant of an RFC 3339 date-time
 * text as milliseconds since the epoch, parsed by rfc3339_parse() (so a
 * "+02:00" offset, no fraction or more digits of it, and lower-case "t"
 * and "z" all count), or NULL for anything else.  expires_at may be
 * written by an application in any of these forms, and comparing such
 * texts as text compares the wrong things ("...T10:00:00+02:00" is
 * 08:00Z; "t" sorts after "T"), while SQLite's own date functions do not
 * accept every RFC 3339 form.  Deterministic and innocuous: it reads
 * nothing but its argument.
 */
static void sql_time_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *text;
	int64_t ms;

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
		sqlite3_result_null(ctx);
		return;
	}
	text = sqlite3_value_text(argv[0]);
	if (text != NULL &&
	    rfc3339_parse((const char *)text, (size_t)sqlite3_value_bytes(argv[0]), &ms))
		sqlite3_result_int64(ctx, ms);
	else
		sqlite3_result_null(ctx);
}

/* The refusal of a database written by a newer version of the program. */
static void refuse_newer(const char *path, int version, char *err, size_t errlen)
{
	store_set_err(err, errlen,
	        "%s has schema version %d, newer than this program's %d; refusing to touch it "
	        "(upgrade " PROGRAM_NAME ")",
	        path, version, STORE_SQLITE_SCHEMA_VERSION);
}

/*
 * Switches the database to WAL mode and checks that it really switched:
 * SQLite quietly keeps the old journal mode where WAL is impossible.
 */
static int enable_wal(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *mode;
	int rc, ret = -1;

	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		store_set_err(err, errlen, "%s: cannot switch to WAL mode: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	mode = sqlite3_column_text(s, 0);
	if (mode == NULL || strcasecmp((const char *)mode, "wal") != 0) {
		store_set_err(err, errlen,
		        "%s: cannot switch to WAL mode (journal_mode stays %s); is it on a "
		        "network filesystem?",
		        path, mode ? (const char *)mode : "unknown");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	return ret;
}

/*
 * Brings the schema to STORE_SQLITE_SCHEMA_VERSION, one migration per
 * transaction.  The version is read again under the write lock so that
 * two processes opening a fresh file together migrate it once.
 */
static int migrate(struct sqlite_store *st, const char *path, char *err, size_t errlen)
{
	char pragma[PRAGMA_TEXT_SIZE];
	int version, again, rc;

	for (;;) {
		rc = read_user_version(st->db, &version);
		if (rc != SQLITE_OK)
			goto fail;
		if (version > STORE_SQLITE_SCHEMA_VERSION) {
			refuse_newer(path, version, err, errlen);
			return -1;
		}
		if (version == STORE_SQLITE_SCHEMA_VERSION)
			return 0;
		if ((rc = set_sync(st, SYNC_FULL)) != SQLITE_OK ||
		    (rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK ||
		    (rc = read_user_version(st->db, &again)) != SQLITE_OK)
			goto fail;
		if (again != version) {
			rc = sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			if (rc != SQLITE_OK)
				goto fail;
			continue;
		}
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
		if ((rc = sqlite3_exec(st->db, migrations[version], NULL, NULL, NULL)) !=
		        SQLITE_OK ||
		    (rc = sqlite3_exec(st->db, pragma, NULL, NULL, NULL)) != SQLITE_OK ||
		    (rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
			goto fail;
	}
fail:
	store_set_err(err, errlen, "%s: cannot create or upgrade the schema: %s", path,
	        sqlite3_errmsg(st->db));
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Opens the database as cfimages-webhook(8) DATABASE describes.  The order matters: the
 * file is created by us (for its mode), the version is checked before the
 * first write (the switch to WAL rewrites the header), and statements are
 * prepared last, which also proves the tables have the columns we use.
 */
struct store *store_sqlite_open(const struct store_options *opts, char *err, size_t errlen)
{
	struct sqlite_store *st = NULL;
	mode_t mode = (mode_t)(opts->db_mode & 0777);
	mode_t dir_mode = mode | ((mode & 0444) >> 2);
	char pragma[PRAGMA_TEXT_SIZE], *slash;
	struct first_problem first = {NULL, 0, false};
	struct stat sb;
	int version, rc, i;

	if (stat(opts->path, &sb) != 0) {
		if (errno != ENOENT) {
			store_set_err(err, errlen, "cannot access %s: %s", opts->path, strerror(errno));
			goto fail;
		}
		if (!opts->create) {
			store_set_err(err, errlen, "no database at %s (run `" PROGRAM_NAME " init`)",
			        opts->path);
			goto fail;
		}
		if (make_parent_dir(opts->path, dir_mode, err, errlen) != 0 ||
		    create_db_file(opts->path, mode, err, errlen) != 0)
			goto fail;
	}

	/*
	 * SQLite quietly opens a file it cannot write read-only, and then
	 * creates -wal and -shm with the database's (read-only) mode: every
	 * write fails, and goes on failing once the database's mode is fixed.
	 * So nothing is opened unless everything it writes is writable.
	 */
	first.err = err;
	first.errlen = errlen;
	if (store_access_problems(opts->path, keep_first_problem, &first) > 0)
		goto fail;

	st = calloc(1, sizeof *st);
	if (st == NULL) {
		store_set_err(err, errlen, "out of memory");
		goto fail;
	}
	st->base.ops = &sqlite_ops;
	st->base.durable = opts->durable;
	st->slot_fd = -1;
	st->write_fd = -1;
	pthread_mutex_init(&st->synced_lock, NULL);
	pthread_mutex_init(&st->ckpt_lock, NULL);
	pthread_cond_init(&st->ckpt_wake, NULL);
	st->lazy = opts->one_shot;
	st->responder = opts->responder;
	st->db_mode = opts->db_mode;
	st->path = strdup(opts->path);
	if (st->path == NULL) {
		store_set_err(err, errlen, "out of memory");
		goto fail;
	}
	st->sync = SYNC_UNKNOWN;
	rc =
	    sqlite3_open_v2(opts->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		store_set_err(err, errlen, "cannot open %s: %s", opts->path,
		        st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* SQLite resolves symbolic links: its log is beside the file it opened
	 * (a full path, so it holds a slash). */
	st->db_file = strdup(sqlite3_db_filename(st->db, "main"));
	st->db_dir = st->db_file ? strdup(st->db_file) : NULL;
	if (st->db_dir == NULL || asprintf(&st->wal_file, "%s-wal", st->db_file) < 0) {
		st->wal_file = NULL;
		store_set_err(err, errlen, "out of memory");
		goto fail;
	}
	slash = strrchr(st->db_dir, '/');
	if (slash == st->db_dir)
		slash[1] = '\0'; /* "/" */
	else if (slash != NULL)
		*slash = '\0';
	if (sqlite3_db_readonly(st->db, "main") != 0) {
		store_set_err(err, errlen,
		        "%s: SQLite could only open it read-only (check its mode, owner and "
		        "filesystem)",
		        opts->path);
		goto fail;
	}
	sq_set_busy_timeout(&st->base, STORE_BUSY_TIMEOUT_MS);
	rc = sqlite3_create_function_v2(st->db, SQL_TIME_MS, 1,
	                                SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                                sql_time_ms, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		store_set_err(err, errlen, "%s: cannot add the function " SQL_TIME_MS ": %s", opts->path,
		        sqlite3_errmsg(st->db));
		goto fail;
	}

	rc = read_user_version(st->db, &version);
	if (rc != SQLITE_OK) {
		store_set_err(err, errlen, "cannot read %s: %s", opts->path, sqlite3_errmsg(st->db));
		goto fail;
	}
	if (version > STORE_SQLITE_SCHEMA_VERSION) {
		refuse_newer(opts->path, version, err, errlen);
		goto fail;
	}

	if (enable_wal(st->db, opts->path, err, errlen) != 0)
		goto fail;
	snprintf(pragma, sizeof pragma, "PRAGMA cache_size = -%d", STORE_CACHE_KIB);
	if (sqlite3_exec(st->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(st->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) != SQLITE_OK) {
		store_set_err(err, errlen, "%s: %s", opts->path, sqlite3_errmsg(st->db));
		goto fail;
	}
	if (version != STORE_SQLITE_SCHEMA_VERSION && migrate(st, opts->path, err, errlen) != 0)
		goto fail;
	if (st->responder) {
		/* Checkpoints happen in store_idle(), after the answers. */
		sqlite3_wal_hook(st->db, on_wal_commit, st);
		sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	}

	for (i = 0; !st->lazy && i < STMT_COUNT; i++) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                        &st->stmt[i], NULL);
		if (rc != SQLITE_OK) {
			store_set_err(err, errlen, "%s: unexpected schema: %s", opts->path,
			        sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	return &st->base;
fail:
	if (st != NULL)
		sq_close(&st->base);
	return NULL;
}

/*
 * Finalizes the kept statements and closes.  Should a statement still be
 * open, the close is deferred to its finalization and a warning logged.
 */
static void sq_close(struct store *base)
{
	struct sqlite_store *st = SQ(base);
	int i;

	if (st == NULL)
		return;
	if (st->ckpt_started) {
		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_stop = true;
		pthread_cond_broadcast(&st->ckpt_wake);
		pthread_mutex_unlock(&st->ckpt_lock);
		pthread_join(st->ckpt_thread, NULL);
	}
	pthread_cond_destroy(&st->ckpt_wake);
	pthread_mutex_destroy(&st->ckpt_lock);
	for (i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK) {
		log_warn("store: closing with statements still open: %s", sqlite3_errmsg(st->db));
		sqlite3_close_v2(st->db);
	}
	if (st->slot_fd >= 0)
		close(st->slot_fd);
	if (st->write_fd >= 0)
		close(st->write_fd);
	pthread_mutex_destroy(&st->synced_lock);
	free(st->db_file);
	free(st->wal_file);
	free(st->db_dir);
	free(st->path);
	free(st);
}


/* user_version as the database holds it now. */
static int sq_schema_version(struct store *base)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = st->stmt[STMT_USER_VERSION];
	int version = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	else
		sqlite_log_error(st, "reading the schema version");
	stmt_done(s);
	return version;
}

/*
 * The busy handler: SQLite's own (sqlite3_busy_timeout) sleeps 1, 2, 5 ...
 * up to 100 ms between tries, so with a few FastCGI processes writing, a
 * waiting writer oversleeps while another takes the lock again.  Our
 * transactions last about a millisecond: poll every 0.2 ms at first and
 * never sleep more than STORE_BUSY_SLEEP_MAX_US, until the timeout.
 * Returns non-zero to try again.
 */
static int on_busy(void *ctx, int count)
{
	struct sqlite_store *st = ctx;
	int64_t now = time_now_ms();
	useconds_t us;

	if (count == 0)
		st->busy_since_ms = now;
	if (now - st->busy_since_ms >= st->busy_timeout_ms)
		return 0;
	us = (useconds_t)(STORE_BUSY_SLEEP_MIN_US * (count + 1));
	if (us > STORE_BUSY_SLEEP_MAX_US)
		us = STORE_BUSY_SLEEP_MAX_US;
	usleep(us);
	return 1;
}

/* Sets this handle's busy timeout, in milliseconds. */
static void sq_set_busy_timeout(struct store *base, int ms)
{
	struct sqlite_store *st = SQ(base);
	st->busy_timeout_ms = ms;
	sqlite3_busy_handler(st->db, on_busy, st);
}

/*
 * A single INSERT outside any transaction is its own transaction; with
 * synchronous = NORMAL in WAL mode its commit does not wait for the disk.
 */
static int sq_record(struct store *base, struct delivery *d)
{
	struct sqlite_store *st = SQ(base);
	if (set_sync(st, SYNC_NORMAL) != SQLITE_OK || insert_delivery(st, d) != SQLITE_OK) {
		sqlite_log_error(st, "recording a delivery");
		return -1;
	}
	return 0;
}

/*
 * An ignored delivery whose body must be kept for inspection (an image
 * notification of a shape Cloudflare has not published): its delivery row
 * and a log row (image_id "", event_type "ignored", data = the body) in one
 * transaction, without waiting for the disk.
 */
static int sq_record_ignored(struct store *base, struct delivery *d, const char *body, size_t body_len,
                         const char *message)
{
	struct sqlite_store *st = SQ(base);
	char when[TIME_TEXT_SIZE];
	int rc;

	time_format_ms(d->received_ms, when);
	if ((rc = set_sync(st, SYNC_NORMAL)) != SQLITE_OK || (rc = run(st, STMT_BEGIN)) != SQLITE_OK)
		goto fail;
	if ((rc = insert_delivery(st, d)) != SQLITE_OK ||
	    (rc = insert_log(st, d->image_id ? d->image_id : "", LOG_IGNORED, message, body,
	                     body_len, when, d->id)) != SQLITE_OK ||
	    (rc = run(st, STMT_COMMIT)) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	sqlite_log_error(st, "recording an ignored delivery");
	rollback(st);
	return -1;
}

/* Uses the partial index on message_id; only a 200 makes a message "seen". */
static int sq_message_seen(struct store *base, const char *message_id, bool *seen)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = kept(st, STMT_MESSAGE_SEEN);
	int rc, ret = 0;

	*seen = false;
	if (s == NULL) {
		sqlite_log_error(st, "looking up a message id");
		return -1;
	}
	bind_text(s, 1, message_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*seen = true;
	else if (rc != SQLITE_DONE) {
		sqlite_log_error(st, "looking up a message id");
		ret = -1;
	}
	stmt_done(s);
	return ret;
}

/* Public face of read_status(): logs its own errors. */
static int sq_image_status(struct store *base, const char *id, char *buf, size_t cap)
{
	struct sqlite_store *st = SQ(base);
	bool found;

	if (read_status(st, id, buf, cap, &found) != SQLITE_OK) {
		sqlite_log_error(st, "reading an image's status");
		return -1;
	}
	return found ? 1 : 0;
}


/*
 * Stores the new status and the fields the event carries; absent fields
 * keep their stored values, and the error text is kept only in "failed".
 */
static int update_image(struct sqlite_store *st, const struct event *ev, const char *when)
{
	sqlite3_stmt *s = kept(st, STMT_IMAGE_UPDATE);
	char uploaded[TIME_TEXT_SIZE];
	bool failed = strcmp(ev->status, "failed") == 0;

	if (s == NULL)
		return kept_error(st);
	if (ev->has_uploaded)
		time_format_ms(ev->uploaded_ms, uploaded);
	bind_text(s, 1, ev->image_id);
	bind_text(s, 2, ev->status);
	bind_text(s, 3, when);
	bind_text(s, 4, ev->filename);
	bind_text(s, 5, ev->metadata_json);
	bind_text(s, 6, ev->variants_json);
	bind_int64_or_null(s, 7, ev->require_signed_urls >= 0, ev->require_signed_urls);
	bind_text(s, 8, ev->has_uploaded ? uploaded : NULL);
	bind_text(s, 9, ev->result_json);
	bind_text(s, 10, failed ? ev->error_text : NULL);
	return run(st, STMT_IMAGE_UPDATE);
}

/*
 * The body of store_apply's transaction, entered with the write lock held
 * and the image's status already read (found, prev).  Decides the outcome
 * by the rules of cfimages-webhook(8) STATUSES in order, then writes the delivery row first (its id
 * goes into the log row and the hook runs), the image, the log row and the
 * hook runs.  Returns SQLITE_OK or the first error; the caller commits or
 * rolls back.
 */
static int apply_locked(struct sqlite_store *st, const struct event *ev, const char *body, size_t body_len,
                        const struct hook_ref *hooks, size_t n_hooks, bool auto_register,
                        bool found, char *prev, const char *when, struct delivery *row,
                        enum store_outcome *outcome)
{
	char message[LOG_MESSAGE_SIZE];
	const char *log_type;
	size_t i;
	int rc;

	if (!found && !auto_register) {
		*outcome = STORE_NOT_FOUND;
		row->status_code = 404;
		row->reason = "not_found";
		return insert_delivery(st, row);
	}
	if (!found) {
		sqlite3_stmt *s = kept(st, STMT_IMAGE_INSERT);
		if (s == NULL)
			return kept_error(st);
		bind_text(s, 1, ev->image_id);
		bind_text(s, 2, when);
		if ((rc = run(st, STMT_IMAGE_INSERT)) != SQLITE_OK)
			return rc;
		prev[0] = '\0';
	}

	*outcome = store_decide(prev, ev->status, &row->reason, &log_type, message, sizeof message);
	row->status_code = 200;
	if ((rc = insert_delivery(st, row)) != SQLITE_OK)
		return rc;
	if (*outcome == STORE_APPLIED && (rc = update_image(st, ev, when)) != SQLITE_OK)
		return rc;
	rc = insert_log(st, ev->image_id, log_type, message, body, body_len, when, row->id);
	if (rc != SQLITE_OK || *outcome != STORE_APPLIED)
		return rc;
	for (i = 0; i < n_hooks; i++) {
		rc = insert_hook_run(st, ev->image_id, ev->status, &hooks[i], when, prev,
		                     ev->event_name, body, body_len, row->id);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/*
 * Group commit (store_write_batch).  Writers of every process queue on a
 * blocking lock of DB-write.lock, taken before BEGIN IMMEDIATE and let go
 * after COMMIT, instead of polling SQLite's lock with the busy handler:
 * the lock is granted in turn, and while one process commits the others
 * collect more jobs for their own next batch.  The lock only orders our
 * own writers; SQLite's lock (and the busy timeout) stays what makes a
 * transaction safe, so a writer that does not take it (a command, the
 * hook runner, the application) is merely waited for as before.
 *
 * The wait is bounded by the busy timeout: a thread-directed timer signal
 * interrupts it (LOCK_TIMER_SIGNAL, a no-op handler installed once).
 * Where that is not available the lock is not used.
 */
#if defined(__GLIBC__) && defined(SIGEV_THREAD_ID) && !defined(sigev_notify_thread_id)
#define sigev_notify_thread_id _sigev_un._tid /* glibc before 2.37 names it only so */
#endif
#if defined(SIGEV_THREAD_ID) && defined(sigev_notify_thread_id) && defined(SYS_gettid)
#define HAVE_TIMED_LOCK 1
#define LOCK_TIMER_SIGNAL (SIGRTMIN + 4)
/* After the deadline, the timer fires again this often, in case its first
 * signal came between the deadline check and the blocking call. */
#define LOCK_TIMER_REPEAT_NS (10 * 1000 * 1000)

static void on_lock_timer(int sig)
{
	(void)sig;
}

static pthread_once_t lock_signal_once = PTHREAD_ONCE_INIT;

static void install_lock_signal(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_lock_timer; /* no SA_RESTART: fcntl() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(LOCK_TIMER_SIGNAL, &sa, NULL);
}
#endif

/* A new descriptor of DB-write.lock, or -1 (logged). */
static int open_write_lock_file(const struct sqlite_store *st)
{
	char path[STORE_PATH_SIZE];

	if (snprintf(path, sizeof path, "%s-write.lock", st->path) >= (int)sizeof path)
		return -1;
	return open_lock_file(path, (mode_t)(st->db_mode & 0777), "store");
}

/* Opens DB-write.lock once; on failure (logged) writers use the busy handler alone. */
static void open_write_lock(struct sqlite_store *st)
{
	if (st->write_fd >= 0 || st->write_fd_failed)
		return;
#ifdef HAVE_TIMED_LOCK
	st->write_fd = open_write_lock_file(st);
	pthread_once(&lock_signal_once, install_lock_signal);
#endif
	st->write_fd_failed = st->write_fd < 0;
}

bool sqlite_write_lock(struct sqlite_store *st, const char *doing, bool *busy)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	bool held = false;

	*busy = false;
	open_write_lock(st);
	if (st->write_fd < 0)
		return false;
	if (fcntl(st->write_fd, F_SETLK, &fl) == 0)
		return true;
#ifdef HAVE_TIMED_LOCK
	{
		struct sigevent sev;
		struct itimerspec its;
		timer_t timer;
		int64_t deadline = time_now_ms() + st->busy_timeout_ms;

		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = LOCK_TIMER_SIGNAL;
		sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
		if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0)
			return false;
		memset(&its, 0, sizeof its);
		its.it_value.tv_sec = st->busy_timeout_ms / 1000;
		its.it_value.tv_nsec = (long)(st->busy_timeout_ms % 1000) * 1000000L + 1;
		its.it_interval.tv_nsec = LOCK_TIMER_REPEAT_NS;
		timer_settime(timer, 0, &its, NULL);
		for (;;) {
			if (fcntl(st->write_fd, F_SETLKW, &fl) == 0) {
				held = true;
				break;
			}
			if (errno != EINTR)
				break; /* e.g. EDEADLK: the busy handler decides */
			if (time_now_ms() >= deadline) {
				*busy = true;
				break;
			}
		}
		timer_delete(timer);
	}
#endif
	if (*busy)
		log_error("store: %s: another writer held %s-write.lock for %d ms", doing, st->path,
		          st->busy_timeout_ms);
	return held;
}

void sqlite_write_unlock(struct sqlite_store *st)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};

	if (st->write_fd >= 0)
		fcntl(st->write_fd, F_SETLK, &fl);
}

/* Where a job of a batch stands. */
enum job_state {
	JOB_PENDING,   /* to be written in the next transaction */
	JOB_DONE,      /* written in the open transaction */
	JOB_FAILED,    /* failed: its 500 row (if any) is written in the open transaction */
	JOB_FAILED_ROW /* failed: its 500 row still to be written */
};

struct batch {
	struct store_job *jobs;
	size_t n;
	enum job_state state[STORE_BATCH_MAX];
	struct delivery start[STORE_BATCH_MAX]; /* each delivery as given */
	const char *when[STORE_BATCH_MAX];      /* points into times[] */
	char times[STORE_BATCH_MAX][TIME_TEXT_SIZE];
	bool defer; /* a durable commit is made durable by store_sync() (every job allows it) */
};

/* A failed job's answer: 500, and a row recorded unless the database was busy. */
static void job_failed(struct batch *b, size_t i, int rc)
{
	struct store_job *j = &b->jobs[i];
	int primary = rc & 0xff;

	*j->d = b->start[i];
	j->d->id = 0;
	j->rc = -1;
	j->outcome = STORE_ERROR;
	b->state[i] = JOB_FAILED;
	if (j->kind != STORE_JOB_APPLY)
		return; /* a rejection's row is the row: nothing else to record */
	if (j->d->image_id == NULL)
		j->d->image_id = j->ev->image_id;
	j->d->status_code = 500;
	j->d->reason = "internal_error";
	if (primary != SQLITE_BUSY && primary != SQLITE_LOCKED)
		b->state[i] = JOB_FAILED_ROW;
}

/*
 * One job inside the open transaction (and its savepoint).  Returns
 * SQLITE_OK or the first error; j->d and j->outcome are filled.
 */
static int do_job(struct sqlite_store *st, struct batch *b, size_t i)
{
	struct store_job *j = &b->jobs[i];
	char prev[STATUS_TEXT_SIZE];
	bool found = false, seen = false;
	int rc;

	*j->d = b->start[i];
	j->rc = 0;
	switch (j->kind) {
	case STORE_JOB_RECORD:
		return insert_delivery(st, j->d);
	case STORE_JOB_RECORD_IGNORED:
		if ((rc = insert_delivery(st, j->d)) != SQLITE_OK)
			return rc;
		return insert_log(st, j->d->image_id ? j->d->image_id : "", LOG_IGNORED, j->message,
		                  j->body, j->body_len, b->when[i], j->d->id);
	case STORE_JOB_APPLY:
		break;
	}
	if (j->d->image_id == NULL)
		j->d->image_id = j->ev->image_id;
	if (j->d->message_id && sq_message_seen(&st->base, j->d->message_id, &seen) < 0)
		return kept_error(st);
	if (seen) {
		/* Applied meanwhile by another process: answered 200 again, nothing re-applied. */
		j->outcome = STORE_REPLAY;
		j->d->status_code = 200;
		j->d->reason = "replay";
		return insert_delivery(st, j->d);
	}
	if ((rc = read_status(st, j->ev->image_id, prev, sizeof prev, &found)) != SQLITE_OK)
		return rc;
	return apply_locked(st, j->ev, j->body, j->body_len, j->hooks, j->n_hooks, j->auto_register,
	                    found, prev, b->when[i], j->d, &j->outcome);
}

/*
 * Whether an APPLY job's answer promises that something is on the disk:
 * every 200 does.  "applied" promises its own change; "duplicate",
 * "stale" and "replay" promise the change they found, which may be
 * another writer's commit whose flush has not returned yet (a deferred
 * commit is visible before it is durable: store_sync).  Their commit,
 * or the flush after it, covers that one too: the log is flushed
 * through every commit before it.  Only a 404 promises nothing.
 */
static bool promises_durability(const struct store_job *j)
{
	return j->kind == STORE_JOB_APPLY && j->outcome != STORE_NOT_FOUND &&
	       j->outcome != STORE_ERROR;
}

/*
 * Whether the batch needs the durable commit: some job is expected to
 * be answered 200 (its image looked up now, outside the transaction;
 * the transaction starts again durably should one turn out to be after
 * all).
 */
static int batch_sync(struct sqlite_store *st, struct batch *b, int *sync)
{
	*sync = SYNC_NORMAL;
	if (durable_sync(st) == SYNC_NORMAL)
		return SQLITE_OK;
	for (size_t i = 0; i < b->n; i++) {
		struct store_job *j = &b->jobs[i];
		char prev[STATUS_TEXT_SIZE];
		bool found = false;
		int rc;

		if (j->kind != STORE_JOB_APPLY)
			continue;
		if ((rc = read_status(st, j->ev->image_id, prev, sizeof prev, &found)) != SQLITE_OK)
			return rc;
		if (found || j->auto_register) {
			*sync = SYNC_FULL;
			return SQLITE_OK;
		}
	}
	return SQLITE_OK;
}

/*
 * One transaction over the pending jobs.  Returns SQLITE_OK when it
 * committed, SQLITE_SCHEMA-like "again" (BATCH_AGAIN) when it must be
 * run again (a job turned out to need the durable commit, or a job's
 * failure ended the transaction), or the error that failed all of it.
 */
#define BATCH_AGAIN (-1)

/*
 * The transaction ended without a commit (rolled back by us, or by SQLite
 * on an error such as a full disk): nothing of it stays, so the jobs it
 * had done go again, and the failed ones whose 500 row it held get their
 * row written again.  Returns BATCH_AGAIN.
 */
static int transaction_ended(struct batch *b)
{
	for (size_t k = 0; k < b->n; k++)
		if (b->state[k] == JOB_DONE)
			b->state[k] = JOB_PENDING;
		else if (b->state[k] == JOB_FAILED && b->jobs[k].d->id > 0)
			b->state[k] = JOB_FAILED_ROW;
	return BATCH_AGAIN;
}

static int batch_once(struct sqlite_store *st, struct batch *b, int *sync)
{
	int rc, level = *sync == SYNC_FULL && b->defer ? SYNC_NORMAL : *sync;

	if ((rc = set_sync(st, level)) != SQLITE_OK || (rc = run(st, STMT_BEGIN)) != SQLITE_OK)
		return rc;
	for (size_t i = 0; i < b->n; i++) {
		if (b->state[i] == JOB_FAILED_ROW) {
			/* A 500 row left from a transaction that ended: written now, alone. */
			if (run(st, STMT_SAVEPOINT) != SQLITE_OK)
				goto whole;
			if (insert_delivery(st, b->jobs[i].d) == SQLITE_OK) {
				b->state[i] = JOB_FAILED;
				if ((rc = run(st, STMT_RELEASE)) != SQLITE_OK)
					goto whole;
				continue;
			}
			sqlite_log_error(st, "recording a failed delivery");
			b->jobs[i].d->id = 0;
			b->state[i] = JOB_FAILED; /* its row is given up */
			if (sqlite3_get_autocommit(st->db))
				return transaction_ended(b);
			if ((rc = run(st, STMT_ROLLBACK_TO)) != SQLITE_OK ||
			    (rc = run(st, STMT_RELEASE)) != SQLITE_OK)
				goto whole;
			continue;
		}
		if (b->state[i] != JOB_PENDING)
			continue;
		if ((rc = run(st, STMT_SAVEPOINT)) != SQLITE_OK)
			goto whole;
		rc = do_job(st, b, i);
		if (rc == SQLITE_OK) {
			if (promises_durability(&b->jobs[i]) && *sync != durable_sync(st)) {
				/* This answer promises durability: when deferred, the
				 * commit stays at NORMAL and store_sync() follows;
				 * else the look-up was wrong (changed meanwhile) and
				 * the transaction starts again durably. */
				*sync = durable_sync(st);
				if (!b->defer) {
					rollback(st);
					return transaction_ended(b);
				}
			}
			if ((rc = run(st, STMT_RELEASE)) != SQLITE_OK)
				goto whole;
			b->state[i] = JOB_DONE;
			continue;
		}
		sqlite_log_error(st, b->jobs[i].kind == STORE_JOB_APPLY ? "applying a delivery"
		                                                        : "recording a delivery");
		job_failed(b, i, rc);
		/* An error that ended the whole transaction: the others go again. */
		if (sqlite3_get_autocommit(st->db))
			return transaction_ended(b);
		if (run(st, STMT_ROLLBACK_TO) != SQLITE_OK || run(st, STMT_RELEASE) != SQLITE_OK)
			goto whole;
		if (b->state[i] == JOB_FAILED_ROW) {
			/* Its 500 row, in the same transaction. */
			if (insert_delivery(st, b->jobs[i].d) != SQLITE_OK) {
				sqlite_log_error(st, "recording a failed delivery");
				b->jobs[i].d->id = 0;
				if (sqlite3_get_autocommit(st->db))
					return transaction_ended(b); /* its row is tried again, alone */
			}
			b->state[i] = JOB_FAILED;
		}
	}
	if ((rc = run(st, STMT_COMMIT)) == SQLITE_OK)
		return SQLITE_OK;
whole:
	if (rc == SQLITE_OK)
		rc = kept_error(st);
	return rc;
}

/*
 * store_write_batch on SQLite: one BEGIN IMMEDIATE transaction, a
 * savepoint per job, one commit (durable when a job changed a status).
 * Without auto_register an unknown image is a 404 committed without
 * waiting for the disk; should the image appear between the look-up and
 * BEGIN, the transaction starts again durably.  A job's error rolls back
 * its savepoint and records its 500 row in the same transaction; an error
 * that ends the whole transaction (SQLite rolls it back by itself on some,
 * e.g. disk full) fails that job and runs the others again.  An error of
 * BEGIN or COMMIT fails every job of the transaction; their 500 rows are
 * then recorded each alone, except when the database is busy or locked: a
 * second wait of the busy timeout would double the sender's wait for a
 * row cfimages-webhook(8) DATABASE lets us skip.
 */
static int sq_write_batch(struct store *base, struct store_job *jobs, size_t n)
{
	struct sqlite_store *st = SQ(base);
	struct batch *b = malloc(sizeof *b);
	int failed = 0, rc = SQLITE_NOMEM, sync = SYNC_NORMAL;
	bool locked = false, busy = false;

	if (n > STORE_BATCH_MAX)
		n = STORE_BATCH_MAX;
	if (b == NULL) {
		log_error("store: applying deliveries: out of memory");
		for (size_t i = 0; i < n; i++) {
			jobs[i].rc = -1;
			jobs[i].outcome = STORE_ERROR;
		}
		return (int)n;
	}
	b->jobs = jobs;
	b->n = n;
	b->defer = true;
	for (size_t i = 0; i < n; i++) {
		b->defer = b->defer && jobs[i].may_defer_sync;
		jobs[i].sync_after = false;
		b->state[i] = JOB_PENDING;
		b->start[i] = *jobs[i].d;
		b->when[i] = b->times[i];
		time_format_ms(jobs[i].d->received_ms, b->times[i]);
		jobs[i].outcome = STORE_ERROR;
		jobs[i].rc = 0;
	}
	/* After a failed flush nothing more of this store is answered as on
	 * disk (sq_sync): a change applied now would be answered 500 while its
	 * delivery row said 200, and its hooks ran for a delivery its sender
	 * was told to send again.  Refused instead, with a 500 row;
	 * rejections are recorded as ever (their rows promise nothing). */
	if (atomic_load(&st->sync_failed))
		for (size_t i = 0; i < n; i++)
			if (jobs[i].kind == STORE_JOB_APPLY)
				job_failed(b, i, SQLITE_IOERR);
	/* A deferred batch learns in its transaction whether a flush is due
	 * (a look-up before it would read the same pages twice: another
	 * process's commit in between empties our page cache). */
	if (!b->defer && (rc = batch_sync(st, b, &sync)) != SQLITE_OK) {
		sqlite_log_error(st, "applying deliveries");
		goto fail;
	}
	locked = sqlite_write_lock(st, "applying deliveries", &busy);
	if (busy) {
		rc = SQLITE_BUSY;
		goto fail;
	}
	/* Each round ends a pending job, gives up a 500 row or makes the
	 * commit durable (once), unless it commits. */
	for (size_t round = 0; round <= 2 * n + 1; round++) {
		rc = batch_once(st, b, &sync);
		if (rc != BATCH_AGAIN)
			break;
	}
	if (rc == SQLITE_OK) {
		/* Committed at NORMAL where FULL was due: the caller syncs the WAL. */
		if (sync == SYNC_FULL && b->defer)
			for (size_t i = 0; i < n; i++)
				jobs[i].sync_after = true;
		goto out;
	}
	if (rc != BATCH_AGAIN)
		sqlite_log_error(st, "applying deliveries");
	rollback(st);
fail:
	/* Nothing of this transaction was committed. */
	for (size_t i = 0; i < n; i++)
		if (b->state[i] != JOB_FAILED || jobs[i].d->id > 0)
			job_failed(b, i, rc == BATCH_AGAIN ? SQLITE_ERROR : rc);
	for (size_t i = 0; i < n; i++)
		if (b->state[i] == JOB_FAILED_ROW && sq_record(base, jobs[i].d) != 0)
			jobs[i].d->id = 0;
out:
	if (locked)
		sqlite_write_unlock(st);
	for (size_t i = 0; i < n; i++)
		failed += jobs[i].rc < 0;
	free(b);
	return failed;
}

/*
 * store_sync on SQLite: a commit made at synchronous=NORMAL (sq_write_batch
 * with defer) is in the write-ahead log, which only grows until a
 * checkpoint has copied it into the database and synced both; so an
 * fdatasync of the log file now makes it, and every commit before it,
 * durable, as synchronous=FULL would have at the commit.  SQLite removes
 * the log only when its last connection closes, and ours is open (the
 * store opens in WAL mode or not at all): a log that is gone was removed
 * by someone else, and the commits in it would not survive a restart, so
 * that is a failure (the answers are not given).  The database file is
 * not opened instead: closing a descriptor of it would give up the
 * POSIX locks SQLite holds on it for this process.  A log file new since
 * our last look also gets its directory synced, as SQLite syncs it with
 * FULL, so that a crash cannot lose the file's entry itself.  It needs
 * nothing of the connection: another thread may write meanwhile.
 *
 * A failed flush fails every later one of this store: the kernel reports
 * a write error once (to the descriptors open when it happened), the
 * pages it could not write are then clean in its cache though not on the
 * disk, and a later flush through a new descriptor would succeed while
 * the log on the disk has a hole, after which a recovery reads nothing.
 * Every commit after it would be promised on top of that hole.
 */
static int sq_sync(struct store *base)
{
	struct sqlite_store *st = SQ(base);
	const char *file = st->wal_file;
	struct stat sb;
	int fd, dfd = -1, ret = -1;
	bool new_file;

	if (atomic_load(&st->sync_failed))
		return -1;
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && fdatasync(fd) != 0) {
		log_error("store: flushing %s: %s; until the receiver is restarted nothing "
		          "more is answered as on disk (the commits after this one could "
		          "not be)",
		          file, strerror(errno));
		atomic_store(&st->sync_failed, true);
		goto out;
	}
	if (fd < 0 || fstat(fd, &sb) != 0) {
		log_error("store: syncing %s: %s", file, strerror(errno));
		goto out;
	}
	pthread_mutex_lock(&st->synced_lock);
	new_file = st->synced_wal != sb.st_ino;
	pthread_mutex_unlock(&st->synced_lock);
	if (new_file) {
		dfd = open(st->db_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0 && fsync(dfd) != 0) {
			log_error("store: flushing directory %s: %s; until the receiver is "
			          "restarted nothing more is answered as on disk",
			          st->db_dir, strerror(errno));
			atomic_store(&st->sync_failed, true);
			goto out;
		}
		if (dfd < 0) {
			log_error("store: syncing directory %s: %s", st->db_dir, strerror(errno));
			goto out;
		}
		pthread_mutex_lock(&st->synced_lock);
		st->synced_wal = sb.st_ino;
		pthread_mutex_unlock(&st->synced_lock);
	}
	atomic_fetch_add_explicit(&st->syncs, 1, memory_order_relaxed);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return ret;
}

/* store_apply: a batch of one. */
static enum store_outcome sq_apply(struct store *base, const struct event *ev, const char *body,
                                   size_t body_len, const struct hook_ref *hooks, size_t n_hooks,
                                   bool auto_register, struct delivery *d)
{
	struct store_job j = {.kind = STORE_JOB_APPLY,
	                      .d = d,
	                      .ev = ev,
	                      .body = body,
	                      .body_len = body_len,
	                      .hooks = hooks,
	                      .n_hooks = n_hooks,
	                      .auto_register = auto_register};

	sq_write_batch(base, &j, 1);
	return j.outcome;
}

/*
 * A responder's checkpoints run on a thread of their own, with a
 * connection of their own, so that no request waits for one: it is asked
 * each time the WAL has grown by WAL_CHECKPOINT_PAGES frames since it was
 * last asked, and copies them into the database without taking any lock
 * (SQLite lets writers go on meanwhile).  The WAL starts over from its
 * beginning only after a checkpoint that left nothing out, and under load
 * another process always commits during one; so once the WAL holds
 * WAL_RESTART_PAGES frames the checkpointer finishes with a second pass
 * holding DB-write.lock, which only has the frames committed during the
 * first to copy.  That is the one moment writers wait for a checkpoint
 * (its two flushes), once every WAL_RESTART_PAGES frames.
 *
 * A one-shot (CGI) process truncates the WAL itself, much sooner: the
 * first connection to open a WAL database rebuilds the WAL's index by
 * reading all of it, forgetting how much of it was checkpointed already
 * (so the WAL would never start over), and in CGI mode every request is
 * such a first connection.  The truncating checkpoint needs a moment
 * without other readers and writers: it does not wait for one (a later
 * process will find it).
 */
_Static_assert(MALLOC_KEEP_BYTES >= STORE_CACHE_KIB * 1024,
               "a page cache freed whole stays in the heap (util.h)");

#define WAL_CHECKPOINT_PAGES 1000
#define WAL_RESTART_PAGES 8000
#define WAL_CHECKPOINT_PAGES_ONE_SHOT 32
#define CHECKPOINTER_STACK_BYTES (256 * 1024)

/* Records the WAL's size after each commit of this connection. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct sqlite_store *st = arg;

	(void)db;
	(void)name;
	st->wal_pages = pages;
	return SQLITE_OK;
}

/*
 * The checkpointer's second pass: holding DB-write.lock, taken without
 * waiting (a holder is writing: the next time, then).  An open file
 * description lock, on a descriptor of its own: it conflicts with the
 * record lock a writer thread of this process holds (record locks are
 * the process's: taking one would succeed beside it, and giving it back
 * would take the writer's away).  The descriptor stays open as long as
 * the checkpointer: closing any descriptor of a file gives up every
 * record lock the process holds on it, the writer's included.
 */
static void checkpoint_locked(sqlite3 *db, int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};

	if (fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0) {
		int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY) /* busy: another process's checkpoint */
			log_warn("store: checkpoint: %s", sqlite3_errmsg(db));
		fl.l_type = F_UNLCK;
		fcntl(fd, F_OFD_SETLK, &fl);
	}
}

static void *checkpointer_main(void *arg)
{
	struct sqlite_store *st = arg;
	sqlite3 *db = NULL;
	int lock_fd = -1;

	pthread_mutex_lock(&st->ckpt_lock);
	for (;;) {
		int rc, log_frames = 0;

		while (!st->ckpt_asked && !st->ckpt_stop)
			pthread_cond_wait(&st->ckpt_wake, &st->ckpt_lock);
		if (st->ckpt_stop)
			break;
		st->ckpt_asked = false;
		st->ckpt_running = true;
		pthread_mutex_unlock(&st->ckpt_lock);

		if (db == NULL) {
			/* A first read tells the connection the database is in WAL
			 * mode (else a checkpoint does nothing). */
			if (sqlite3_open_v2(st->db_file, &db,
			                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
			    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK ||
			    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK ||
			    sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK) {
				log_warn("store: checkpoint: cannot open %s: %s", st->db_file,
				         db ? sqlite3_errmsg(db) : "out of memory");
				sqlite3_close(db);
				db = NULL;
			}
		}
		if (db != NULL) {
			rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
			                               NULL);
			if (rc != SQLITE_OK && rc != SQLITE_BUSY)
				log_warn("store: checkpoint: %s", sqlite3_errmsg(db));
			if (rc == SQLITE_OK && log_frames >= WAL_RESTART_PAGES) {
				if (lock_fd < 0)
					lock_fd = open_write_lock_file(st);
				checkpoint_locked(db, lock_fd);
			}
		}

		pthread_mutex_lock(&st->ckpt_lock);
		st->ckpt_running = false;
		pthread_cond_broadcast(&st->ckpt_wake);
	}
	pthread_mutex_unlock(&st->ckpt_lock);
	sqlite3_close(db);
	if (lock_fd >= 0)
		close(lock_fd);
	return NULL;
}

/* Asks the checkpointer for a checkpoint (it is started the first time). */
static void checkpoint_ask(struct sqlite_store *st)
{
	pthread_mutex_lock(&st->ckpt_lock);
	if (!st->ckpt_started) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, CHECKPOINTER_STACK_BYTES);
		st->ckpt_started = pthread_create(&st->ckpt_thread, &attr, checkpointer_main, st) == 0;
		pthread_attr_destroy(&attr);
		if (!st->ckpt_started)
			log_warn("store: cannot start the checkpointer thread");
	}
	st->ckpt_asked = st->ckpt_started;
	pthread_cond_broadcast(&st->ckpt_wake);
	pthread_mutex_unlock(&st->ckpt_lock);
}

void sqlite_checkpoint_wait(struct sqlite_store *st)
{
	pthread_mutex_lock(&st->ckpt_lock);
	while (st->ckpt_started && (st->ckpt_asked || st->ckpt_running))
		pthread_cond_wait(&st->ckpt_wake, &st->ckpt_lock);
	pthread_mutex_unlock(&st->ckpt_lock);
}

/* After the answers: the one-shot truncation, or the checkpointer asked. */
static void sq_idle(struct store *base)
{
	struct sqlite_store *st = SQ(base);
	int rc;

	if (!st->responder)
		return;
	if (st->lazy) {
		if (st->wal_pages < WAL_CHECKPOINT_PAGES_ONE_SHOT)
			return;
		st->wal_pages = 0;
		sqlite3_busy_handler(st->db, NULL, NULL);
		rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		sqlite3_busy_handler(st->db, on_busy, st);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warn("store: checkpoint: %s", sqlite3_errmsg(st->db));
		return;
	}
	if (st->wal_pages < st->ckpt_asked_at)
		st->ckpt_asked_at = 0; /* the WAL started over */
	if (st->wal_pages - st->ckpt_asked_at < WAL_CHECKPOINT_PAGES)
		return;
	st->ckpt_asked_at = st->wal_pages;
	checkpoint_ask(st);
}

/*
 * INSERT OR IGNORE keeps an existing row exactly as it is; only a real
 * insertion gets a "registered" log row.  Commits durably: the operator
 * is told it is done.
 */
static int sq_register(struct store *base, const char *id, const char *metadata_json, int64_t expires_ms)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = st->stmt[STMT_REGISTER];
	char now[TIME_TEXT_SIZE], expires[TIME_TEXT_SIZE], message[LOG_MESSAGE_SIZE];
	int rc, inserted = 0;

	time_format_ms(time_now_ms(), now);
	if (expires_ms >= 0) {
		time_format_ms(expires_ms, expires);
		snprintf(message, sizeof message, "registered as pending, expires %s", expires);
	} else {
		snprintf(message, sizeof message, "registered as pending");
	}
	if ((rc = set_sync(st, durable_sync(st))) != SQLITE_OK ||
	    (rc = run(st, STMT_BEGIN)) != SQLITE_OK)
		goto fail;
	bind_text(s, 1, id);
	bind_text(s, 2, metadata_json);
	bind_text(s, 3, expires_ms >= 0 ? expires : NULL);
	bind_text(s, 4, now);
	if ((rc = run(st, STMT_REGISTER)) != SQLITE_OK)
		goto fail;
	inserted = sqlite3_changes(st->db) > 0;
	if (inserted &&
	    (rc = insert_log(st, id, LOG_REGISTERED, message, NULL, 0, now, 0)) != SQLITE_OK)
		goto fail;
	if ((rc = run(st, STMT_COMMIT)) != SQLITE_OK)
		goto fail;
	return inserted;
fail:
	sqlite_log_error(st, "registering an image");
	rollback(st);
	return -1;
}

/* Frees a list of expiring images. */
static void free_expiring(struct expiring *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i].id);
	free(list);
}

/*
 * Collects the images due to expire (inside the caller's transaction)
 * into a malloc'd list, so that they are changed after the SELECT is done
 * rather than under it.  expires_at is compared as an instant (see
 * sql_time_ms), whatever RFC 3339 form it was written in.  Returns
 * SQLITE_OK or an error code.
 */
static int collect_expiring(struct sqlite_store *st, int64_t now_ms, struct expiring **out, size_t *n)
{
	sqlite3_stmt *s = st->stmt[STMT_EXPIRE_DUE];
	struct expiring *list = NULL, *bigger;
	size_t count = 0, cap = 0;
	const unsigned char *id, *status;
	int rc;

	sqlite3_bind_int64(s, 1, now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? 2 * cap : 16;
			bigger = realloc(list, cap * sizeof *list);
			if (bigger == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			list = bigger;
		}
		id = sqlite3_column_text(s, 0);
		status = sqlite3_column_text(s, 1);
		list[count].id = strdup(id ? (const char *)id : "");
		if (list[count].id == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		snprintf(list[count].prev, sizeof list[count].prev, "%s",
		         status ? (const char *)status : "");
		count++;
	}
	stmt_done(s);
	if (rc != SQLITE_DONE) {
		free_expiring(list, count);
		return rc;
	}
	*out = list;
	*n = count;
	return SQLITE_OK;
}

/*
 * Expires one image inside the caller's transaction: its status, a log
 * row and its queued hook runs, all carrying the hook input
 * {"id":ID,"status":"expired"} that cfimages-webhook(8) HOOKS gives `expire` hooks.
 */
static int expire_one(struct sqlite_store *st, const struct expiring *img, const char *now,
                      const struct hook_ref *hooks, size_t n_hooks)
{
	sqlite3_stmt *s = st->stmt[STMT_EXPIRE_UPDATE];
	char message[LOG_MESSAGE_SIZE];
	char *input = store_expire_input(img->id);
	size_t i, len;
	int rc = SQLITE_NOMEM;

	if (input == NULL)
		goto out;
	len = strlen(input);
	bind_text(s, 1, img->id);
	bind_text(s, 2, now);
	if ((rc = run(st, STMT_EXPIRE_UPDATE)) != SQLITE_OK)
		goto out;
	snprintf(message, sizeof message, "%s -> %s", img->prev, EXPIRED_STATUS);
	rc = insert_log(st, img->id, LOG_EXPIRED, message, input, len, now, 0);
	for (i = 0; rc == SQLITE_OK && i < n_hooks; i++)
		rc = insert_hook_run(st, img->id, EXPIRED_STATUS, &hooks[i], now, img->prev,
		                     EXPIRE_EVENT_NAME, input, len, 0);
out:
	cJSON_free(input);
	return rc;
}

/*
 * Logs a warning when pending or draft images have an expires_at that is
 * not an RFC 3339 time (an application may write anything): they never
 * expire, and the operator should know.
 */
static int warn_unreadable_expiry(struct sqlite_store *st)
{
	sqlite3_stmt *s = st->stmt[STMT_EXPIRE_UNREADABLE];
	int64_t count = 0;
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		count = sqlite3_column_int64(s, 0);
		rc = SQLITE_DONE;
	}
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return rc;
	if (count > 0)
		log_warn("expire: %lld pending or draft image%s an expires_at that is not an RFC "
		         "3339 time (e.g. 2024-01-31T12:00:00Z); they never expire",
		         (long long)count, count == 1 ? " has" : "s have");
	return SQLITE_OK;
}

/* All due images in one transaction: `expire` either happens or not. */
static int sq_expire(struct store *base, int64_t now_ms, const struct hook_ref *hooks, size_t n_hooks,
                 long *count)
{
	struct sqlite_store *st = SQ(base);
	char now[TIME_TEXT_SIZE];
	struct expiring *list = NULL;
	size_t n = 0, i;
	int rc, ret = -1;

	*count = 0;
	time_format_ms(now_ms, now);
	if ((rc = set_sync(st, durable_sync(st))) != SQLITE_OK ||
	    (rc = run(st, STMT_BEGIN)) != SQLITE_OK ||
	    (rc = collect_expiring(st, now_ms, &list, &n)) != SQLITE_OK ||
	    (rc = warn_unreadable_expiry(st)) != SQLITE_OK)
		goto fail;
	for (i = 0; i < n; i++)
		if ((rc = expire_one(st, &list[i], now, hooks, n_hooks)) != SQLITE_OK)
			goto fail;
	if ((rc = run(st, STMT_COMMIT)) != SQLITE_OK)
		goto fail;
	*count = (long)n;
	ret = 0;
	goto out;
fail:
	if (rc == SQLITE_NOMEM)
		log_error("store: expiring images: out of memory");
	else
		sqlite_log_error(st, "expiring images");
	rollback(st);
out:
	free_expiring(list, n);
	return ret;
}

/*
 * The highest id among the rows older than cutoff (0 when none) that the
 * kept statement id selects: read by a scan outside the write
 * transaction, so that writers are not held while it runs.
 */
static int prune_upto(struct sqlite_store *st, enum stmt_id id, const char *cutoff,
                      int64_t *upto)
{
	sqlite3_stmt *s = kept(st, id);
	int rc;

	*upto = 0;
	if (s == NULL)
		return kept_error(st);
	bind_text(s, 1, cutoff);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*upto = sqlite3_column_int64(s, 0);
		rc = SQLITE_DONE;
	}
	stmt_done(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Runs one DELETE of the rows older than cutoff (?1) whose id is at most
 * upto (?2, where the statement has it), and sets *deleted to how many it
 * removed.
 */
static int prune_table(struct sqlite_store *st, enum stmt_id id, const char *cutoff,
                       int64_t upto, long *deleted)
{
	sqlite3_stmt *s = kept(st, id);
	int rc;

	if (s == NULL)
		return kept_error(st);
	bind_text(s, 1, cutoff);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, upto);
	rc = run(st, id);
	if (rc == SQLITE_OK)
		*deleted = (long)sqlite3_changes(st->db);
	return rc;
}

/*
 * Times are stored in one fixed-width UTC format, so comparing the text
 * compares the instants.  Deliveries and log rows are not indexed by
 * time (every delivery would pay for it): the rows to go are found by a
 * read-only scan first, and the write transaction then deletes by id,
 * which is the order rows are added in, so it reads little more than the
 * rows it deletes.  A row committed between the two (received before the
 * cutoff, committed while prune ran) is left for the next prune.  PRAGMA
 * optimize afterwards is advisory: its failure is logged as a warning
 * only.
 */
static int sq_prune(struct store *base, int64_t cutoff_ms, struct store_prune_counts *out)
{
	struct sqlite_store *st = SQ(base);
	char cutoff[TIME_TEXT_SIZE];
	struct store_prune_counts counts = {0, 0, 0};
	int64_t deliveries_upto, logs_upto;
	int rc;

	time_format_ms(cutoff_ms, cutoff);
	if ((rc = prune_upto(st, STMT_PRUNE_DELIVERIES_UPTO, cutoff, &deliveries_upto)) !=
	        SQLITE_OK ||
	    (rc = prune_upto(st, STMT_PRUNE_LOGS_UPTO, cutoff, &logs_upto)) != SQLITE_OK ||
	    (rc = set_sync(st, durable_sync(st))) != SQLITE_OK ||
	    (rc = run(st, STMT_BEGIN)) != SQLITE_OK ||
	    (rc = prune_table(st, STMT_PRUNE_DELIVERIES, cutoff, deliveries_upto,
	                      &counts.deliveries)) != SQLITE_OK ||
	    (rc = prune_table(st, STMT_PRUNE_LOGS, cutoff, logs_upto, &counts.logs)) !=
	        SQLITE_OK ||
	    (rc = prune_table(st, STMT_PRUNE_HOOK_RUNS, cutoff, INT64_MAX, &counts.hook_runs)) !=
	        SQLITE_OK ||
	    (rc = run(st, STMT_COMMIT)) != SQLITE_OK) {
		sqlite_log_error(st, "pruning");
		rollback(st);
		return -1;
	}
	if (sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("store: PRAGMA optimize: %s", sqlite3_errmsg(st->db));
	if (out != NULL)
		*out = counts;
	return 0;
}

/*
 * Opens a lock file beside the database, path (the runner slots', the
 * writers'), logging as who.  Its directory is the
 * database's, which the db_mode group may write, so what is found there
 * may have been planted: a symbolic link is never followed (it could make
 * us change the mode of any file of ours), and anything but a regular
 * file owned by this user is refused.  The mode is set only on a file
 * this call created (like the database's: the umask does not decide).
 * Returns the descriptor, or -1 (logged).
 */
/* A lock file we may use: a regular file owned by this user. */
static bool lock_file_ours(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid();
}

static int open_lock_file(const char *path, mode_t mode, const char *who)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd >= 0) {
		(void)fchmod(fd, mode);
		return fd;
	}
	if (errno != EEXIST) {
		log_error("%s: cannot create %s: %s", who, path, strerror(errno));
		return -1;
	}
	/* O_NONBLOCK: a FIFO planted there must not hang us in open(). */
	fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		log_error("%s: %s refused: %s", who, path,
		          errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return -1;
	}
	if (!lock_file_ours(fd)) {
		log_error("%s: %s refused: not a regular file owned by this user", who, path);
		close(fd);
		return -1;
	}
	return fd;
}

/* DB-hooks.lock's path, false when it does not fit. */
static bool runner_lock_path(char *buf, size_t cap, const char *db)
{
	int n = snprintf(buf, cap, "%s-hooks.lock", db);
	return n > 0 && (size_t)n < cap;
}

/* A runner slot: a write lock on one byte of DB-hooks.lock. */
static int sq_take_runner_slot(struct store *base, int max)
{
	struct sqlite_store *st = SQ(base);
	char path[STORE_PATH_SIZE];
	int fd;

	if (st->slot_fd >= 0)
		return -1;
	if (!runner_lock_path(path, sizeof path, st->path))
		return -1;
	fd = open_lock_file(path, (mode_t)(st->db_mode & 0777), "hook runner");
	if (fd < 0)
		return -1;
	for (int i = 0; i < max; i++) {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = i, .l_len = 1};
		if (fcntl(fd, F_SETLK, &fl) == 0) {
			st->slot_fd = fd;
			return i;
		}
	}
	close(fd);
	return -1;
}

/*
 * F_GETLK asks without taking anything; a lock of this process would not
 * count (POSIX locks never conflict with their own process's), and no
 * responder holds a slot: runners are processes of their own.  A file a
 * runner would refuse (open_lock_file()) answers false: the runner started
 * then logs why.
 */
bool sqlite_runner_slots_taken(const char *path, int max)
{
	char lock_path[STORE_PATH_SIZE];
	bool taken;
	int fd;

	if (!runner_lock_path(lock_path, sizeof lock_path, path))
		return false;
	fd = open(lock_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	taken = lock_file_ours(fd);
	for (int i = 0; i < max && taken; i++) {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = i, .l_len = 1};
		taken = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
	}
	close(fd);
	return taken;
}

static void sq_release_runner_slot(struct store *base)
{
	struct sqlite_store *st = SQ(base);

	if (st->slot_fd >= 0)
		close(st->slot_fd);
	st->slot_fd = -1;
}


static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .set_busy_timeout = sq_set_busy_timeout,
    .record = sq_record,
    .record_ignored = sq_record_ignored,
    .message_seen = sq_message_seen,
    .apply = sq_apply,
    .write_batch = sq_write_batch,
    .sync = sq_sync,
    .idle = sq_idle,
    .image_status = sq_image_status,
    .register_image = sq_register,
    .expire = sq_expire,
    .prune = sq_prune,
    .query = sqlite_query,
    .claim = sqlite_claim,
    .set_pgid = sqlite_set_pgid,
    .finish = sqlite_finish,
    .stale = sqlite_stale,
    .reclaim = sqlite_reclaim,
    .any_due = sqlite_any_due,
    .next_due_ms = sqlite_next_due_ms,
    .retry = sqlite_retry,
    .take_runner_slot = sq_take_runner_slot,
    .release_runner_slot = sq_release_runner_slot,
    .dump = sqlite_dump,
};
