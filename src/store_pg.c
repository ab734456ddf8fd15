/*
 * The PostgreSQL backend of the store (cfimages-webhook(8) DATABASE),
 * chosen by a postgresql:// or postgres:// `db` setting.  The same tables
 * and columns as the SQLite backend, with PostgreSQL types, and the same
 * semantics for every operation (store_sqlite.c and store_sqlite_query.c
 * are the reference): one connection per handle, one transaction per
 * delivery, the outbox claimed under an advisory lock with FOR UPDATE SKIP
 * LOCKED so that any number of nodes share the hook runs.
 *
 * Times are bound as our RFC 3339 text and read back through to_char()
 * in the same text, so every command prints what it prints on SQLite.
 *
 * The connection may break (a PostgreSQL restarted, a network cut).
 * Before each operation the input the server sent meanwhile is read, so
 * a connection the server closed is known to be broken before anything
 * is sent on it, and a broken connection is reset once (its session
 * settings and prepared statements set up again).  An operation that
 * fails because the connection broke is retried once on a new
 * connection, unless its COMMIT (or its autocommit write) had been sent:
 * then its outcome is unknown and it fails (a delivery is answered 500,
 * and the sender's retry is a duplicate or a replay).  A PostgreSQL that
 * is down makes operations fail with a one-line error; the first
 * operation after it is back succeeds, in the same process.
 *
 * Durability: synchronous_commit is on for what an answer promises when
 * durability = full, off otherwise, and always off for the rows of
 * rejected, ignored and unknown-image requests.  The session's setting is
 * tracked and changed between transactions only when it differs.
 *
 * Nothing here ever shows the `db` setting itself: every message uses
 * store_display_name(), and any text libpq returns is cleaned of the
 * password before it is kept.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <libpq-fe.h>

#include "lazy_pq.h"
#include "store_impl.h"
#include "util.h"

/*
 * Advisory lock keys.  Single bigint keys and (integer, integer) pairs
 * are separate key spaces in PostgreSQL; these are "cfw" followed by a
 * number, unlikely to collide with an application's.
 */
#define PG_LOCK_SCHEMA "1667659521"       /* bigint: creating the schema */
#define PG_LOCK_CLAIM "1667659522"        /* bigint: claiming a hook run */
#define PG_LOCK_RUNNER_CLASS "1667659523" /* integer class of the runner slots */

/* Connection defaults, overridden by the URI's own parameters. */
#define PG_CONNECT_TIMEOUT_SECONDS "10"
#define PG_APPLICATION_NAME PROGRAM_NAME

/* The unique index that makes a second 200 for one webhook-id a replay. */
#define PG_REPLAY_INDEX "webhook_deliveries_message_applied"

/* SQLSTATEs we act on (PostgreSQL Appendix A). */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03" /* lock_timeout */
#define SQLSTATE_QUERY_CANCELED "57014"     /* statement_timeout */

/* Room for a kept error message, a SQLSTATE, a constraint name. */
#define PG_ERROR_SIZE 768
/* Room for one line of libpq's or the server's text, less than PG_ERROR_SIZE. */
#define PG_LINE_SIZE 640
#define PG_SQLSTATE_SIZE 6
#define PG_NAME_SIZE 64
/* Room for the `db` setting as shown (password masked). */
#define PG_SHOWN_SIZE 1024
/* Room for a decimal int64 with its sign and NUL. */
#define INT_TEXT_SIZE 24
/* Most passwords a URI can carry (userinfo and a password= parameter). */
#define PG_SECRETS_MAX 16
/* Most columns a query returns. */
#define QUERY_MAX_COLUMNS 16

/* A time column read back as the store's RFC 3339 text with milliseconds. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* A run's claim as outbox_stale reports it and outbox_reclaim matches it:
 * its started_at in microseconds since the epoch (exact, whatever the
 * session's settings), "-1" when there is none. */
#define CLAIM_TOKEN "coalesce((extract(epoch FROM started_at) * 1000000)::bigint, -1)::text"

/* synchronous_commit as this session has it; unknown after a (re)connection. */
enum pg_sync { SYNC_UNKNOWN = 0, SYNC_OFF, SYNC_ON };

/* What an operation's body returns to pg_with_retry(). */
enum pg_rc {
	PG_OK = 0,
	PG_FAILED = -1,  /* the error is kept in the handle; maybe retried */
	PG_ABANDONED = 1 /* rolled back on purpose (a replay): no log, no retry */
};

struct pg_store {
	struct store base;             /* first: a struct store * is this */
	PGconn *conn;                  /* one session, reset when it breaks */
	char shown[PG_SHOWN_SIZE];     /* the `db` setting with its password masked */
	char *secrets[PG_SECRETS_MAX]; /* passwords the URI holds, scrubbed from errors */
	int timeout_ms;                /* statement_timeout and lock_timeout */
	bool prepared;                 /* this session has our statements */
	bool session_set;              /* this session has setup_session's settings */
	bool slot_to_retake;           /* a new session: the runner slot is taken again */
	bool server_closing;           /* the server sent FATAL while we were idle */
	enum pg_sync sync;             /* the session's synchronous_commit */
	int slot;                      /* the runner slot held, or -1 */
	bool commit_sent;              /* the operation's outcome is now unknown if it breaks */
	char error[PG_ERROR_SIZE];     /* the last error, one line, no password */
	char sqlstate[PG_SQLSTATE_SIZE];
	char constraint[PG_NAME_SIZE]; /* of a constraint violation */
};

static inline struct pg_store *PG(struct store *st)
{
	return (struct pg_store *)st;
}

/*
 * The schema (cfimages-webhook(8) DATABASE): the tables and columns of
 * the SQLite schema version 2, in PostgreSQL types.  JSON columns are
 * `json`, not `jsonb`: the contract keeps metadata, variants, result and
 * the log's data as the exact text the sender sent, and only `json` keeps
 * its text byte for byte (jsonb rewrites numbers such as 1e400, reorders
 * keys and drops duplicates and whitespace).  Every statement is IF NOT
 * EXISTS and the whole runs in one transaction under an advisory lock, so
 * that several nodes may run `init` at once.
 */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS cloudflare_images ("
    " cloudflare_id text PRIMARY KEY,"
    " status text NOT NULL DEFAULT 'pending',"
    " filename text,"
    " metadata json,"
    " variants json,"
    " require_signed_urls boolean,"
    " error text,"
    " uploaded_at timestamptz,"
    " expires_at timestamptz,"
    " result json,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX IF NOT EXISTS cloudflare_images_status ON cloudflare_images (status);"
    "CREATE INDEX IF NOT EXISTS cloudflare_images_created_at"
    " ON cloudflare_images (created_at);"
    "CREATE TABLE IF NOT EXISTS cloudflare_image_logs ("
    " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " image_id text NOT NULL,"
    " event_type text NOT NULL,"
    " message text,"
    " data json,"
    " \"timestamp\" timestamptz NOT NULL,"
    " delivery_id bigint);"
    "CREATE INDEX IF NOT EXISTS cloudflare_image_logs_image"
    " ON cloudflare_image_logs (image_id, id);"
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " received_at timestamptz NOT NULL,"
    " status_code integer NOT NULL,"
    " reason text NOT NULL,"
    " remote_addr text,"
    " scheme text,"
    " message_id text,"
    " image_id text,"
    " body_sha256 text,"
    " body_size bigint);"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_message_id"
    " ON webhook_deliveries (message_id) WHERE message_id IS NOT NULL;"
    "CREATE UNIQUE INDEX IF NOT EXISTS " PG_REPLAY_INDEX " ON webhook_deliveries (message_id)"
    " WHERE message_id IS NOT NULL AND reason IN ('applied', 'duplicate', 'stale');"
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_received_at"
    " ON webhook_deliveries (received_at);"
    "CREATE TABLE IF NOT EXISTS hook_runs ("
    " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " image_id text NOT NULL,"
    " status text NOT NULL,"
    " hook text NOT NULL,"
    " path text NOT NULL,"
    " state text NOT NULL DEFAULT 'queued'"
    "  CHECK (state IN ('queued', 'running', 'done', 'failed')),"
    " attempts integer NOT NULL DEFAULT 0,"
    " exit_code integer,"
    " output text,"
    " next_attempt_at timestamptz NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " finished_at timestamptz,"
    " previous_status text NOT NULL DEFAULT '',"
    " event text,"
    " input bytea,"
    " delivery_id bigint,"
    " started_at timestamptz,"
    " pgid bigint,"
    " pg_start bigint,"
    " lease_until timestamptz,"
    " host text);"
    "CREATE INDEX IF NOT EXISTS hook_runs_due ON hook_runs (state, next_attempt_at);"
    "CREATE INDEX IF NOT EXISTS hook_runs_image ON hook_runs (image_id, state);";

/* The statements every session prepares (the delivery path and the outbox). */
enum pg_stmt {
	PS_DELIVERY_INSERT,
	PS_MESSAGE_SEEN,
	PS_IMAGE_STATUS,
	PS_IMAGE_STATUS_LOCK,
	PS_IMAGE_INSERT,
	PS_IMAGE_UPDATE,
	PS_LOG_INSERT,
	PS_HOOK_INSERT,
	PS_CLAIM,
	PS_SET_PGID,
	PS_FINISH,
	PS_ANY_DUE,
	PS_COUNT
};

struct pg_stmt_def {
	const char *name;
	const char *sql;
};

static const struct pg_stmt_def stmts[PS_COUNT] = {
    [PS_DELIVERY_INSERT] = {"cfw_delivery_insert",
                            "INSERT INTO webhook_deliveries (received_at, status_code, reason,"
                            " remote_addr, scheme, message_id, image_id, body_sha256, body_size)"
                            " VALUES ($1::timestamptz, $2::integer, $3, $4, $5, $6, $7, $8,"
                            " $9::bigint) RETURNING id"},
    [PS_MESSAGE_SEEN] = {"cfw_message_seen",
                         "SELECT 1 FROM webhook_deliveries"
                         " WHERE message_id = $1 AND status_code = 200 LIMIT 1"},
    [PS_IMAGE_STATUS] = {"cfw_image_status",
                         "SELECT status FROM cloudflare_images WHERE cloudflare_id = $1"},
    [PS_IMAGE_STATUS_LOCK] = {"cfw_image_status_lock",
                              "SELECT status FROM cloudflare_images WHERE cloudflare_id = $1"
                              " FOR UPDATE"},
    [PS_IMAGE_INSERT] = {"cfw_image_insert",
                         "INSERT INTO cloudflare_images (cloudflare_id, status, created_at,"
                         " updated_at) VALUES ($1, 'pending', $2::timestamptz, $2::timestamptz)"
                         " ON CONFLICT (cloudflare_id) DO NOTHING"},
    [PS_IMAGE_UPDATE] = {"cfw_image_update",
                         "UPDATE cloudflare_images SET status = $2, updated_at = $3::timestamptz,"
                         " filename = COALESCE($4, filename),"
                         " metadata = COALESCE($5::json, metadata),"
                         " variants = COALESCE($6::json, variants),"
                         " require_signed_urls = COALESCE($7::boolean, require_signed_urls),"
                         " uploaded_at = COALESCE($8::timestamptz, uploaded_at),"
                         " result = COALESCE($9::json, result),"
                         " error = $10"
                         " WHERE cloudflare_id = $1"},
    [PS_LOG_INSERT] = {"cfw_log_insert",
                       "INSERT INTO cloudflare_image_logs (image_id, event_type, message, data,"
                       " \"timestamp\", delivery_id)"
                       " VALUES ($1, $2, $3, $4::json, $5::timestamptz, $6::bigint)"},
    [PS_HOOK_INSERT] = {"cfw_hook_insert",
                        "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,"
                        " next_attempt_at, created_at, previous_status, event, input,"
                        " delivery_id) VALUES ($1, $2, $3, $4, 'queued', 0, $5::timestamptz,"
                        " $5::timestamptz, $6, $7, $8::bytea, $9::bigint)"},
    [PS_CLAIM] = {"cfw_claim",
                  "UPDATE hook_runs SET state = 'running', attempts = attempts + 1,"
                  " started_at = $1::timestamptz,"
                  " lease_until = clock_timestamp() + $2::bigint * interval '1 millisecond',"
                  " host = $3,"
                  " pgid = NULL, pg_start = NULL"
                  " WHERE id = (SELECT r.id FROM hook_runs AS r"
                  "  WHERE r.state = 'queued' AND r.next_attempt_at <= $1::timestamptz"
                  "  AND NOT EXISTS (SELECT 1 FROM hook_runs AS o"
                  "   WHERE o.state = 'running' AND o.image_id = r.image_id)"
                  "  ORDER BY r.next_attempt_at, r.id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                  " RETURNING id, attempts, image_id, status, previous_status, event, hook,"
                  " path, input"},
    [PS_SET_PGID] = {"cfw_set_pgid",
                     "UPDATE hook_runs SET pgid = $2::bigint, pg_start = $3::bigint"
                     " WHERE id = $1::bigint AND state = 'running' AND attempts = $4::integer"
                     " AND started_at = $5::timestamptz"},
    [PS_FINISH] = {"cfw_finish",
                   "UPDATE hook_runs SET state = $2::text, exit_code = $3::integer,"
                   " output = $4, next_attempt_at = $5::timestamptz,"
                   " finished_at = CASE WHEN $2::text = 'queued' THEN NULL"
                   "  ELSE $6::timestamptz END,"
                   " pgid = NULL, pg_start = NULL"
                   " WHERE id = $1::bigint AND state = 'running' AND attempts = $7::integer"
                   " AND started_at = $8::timestamptz"},
    [PS_ANY_DUE] = {"cfw_any_due",
                    "SELECT EXISTS (SELECT 1 FROM hook_runs"
                    "  WHERE state = 'queued' AND next_attempt_at <= $1::timestamptz)"
                    " OR EXISTS (SELECT 1 FROM hook_runs WHERE state = 'running'"
                    "  AND coalesce(lease_until, started_at, '-infinity') < clock_timestamp())"},
};

static const struct store_ops pg_ops;

/*
 * Copies text into buf as one line: line breaks and tabs become spaces,
 * runs of spaces one space, no space at either end (libpq's messages end
 * in a newline and may hold several lines).
 */
static void one_line(char *buf, size_t cap, const char *text)
{
	size_t n = 0;
	bool space = false;

	for (const char *p = text ? text : ""; *p && n + 1 < cap; p++) {
		bool blank = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
		if (blank) {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < cap)
			buf[n++] = ' ';
		space = false;
		buf[n++] = *p;
	}
	if (cap > 0)
		buf[n < cap ? n : cap - 1] = '\0';
}

/*
 * Replaces every occurrence of the URI's passwords in buf by "***", so
 * that no text libpq returns (which may quote a part of the URI it could
 * not parse) can show one.
 */
static void scrub(const struct pg_store *st, char *buf, size_t cap)
{
	for (size_t i = 0; i < PG_SECRETS_MAX; i++) {
		const char *secret = st->secrets[i];
		size_t len = secret ? strlen(secret) : 0;
		char *from = buf, *hit;

		if (len == 0)
			continue;
		while ((hit = strstr(from, secret)) != NULL) {
			size_t rest = strlen(hit + len);
			if (len < 3 && strlen(buf) + 3 - len >= cap) {
				memset(hit, '*', len); /* no room to grow: mask in place */
				from = hit + len;
				continue;
			}
			memmove(hit + 3, hit + len, rest + 1);
			memcpy(hit, "***", 3);
			from = hit + 3;
		}
	}
}

/* Adds a copy of len bytes of s to the secrets to scrub. */
static void add_secret(struct pg_store *st, const char *s, size_t len)
{
	for (size_t i = 0; len > 0 && i < PG_SECRETS_MAX; i++) {
		if (st->secrets[i] == NULL) {
			st->secrets[i] = strndup(s, len);
			return;
		}
	}
}

/*
 * Finds the secrets the `db` URI holds, so that errors can be scrubbed of
 * them: the password and sslpassword libpq reads (PQconninfoParse); the
 * userinfo's password as store_display_name reads it, and each part of it
 * between '@'s and '/'s of 4 bytes or more (libpq ends the userinfo at the
 * first '@' or '/' and shows the rest as a host name or a port); every
 * "password=" and "sslpassword=" parameter as written (percent-encoded).
 */
static void find_secrets(struct pg_store *st, const char *uri)
{
	const char *p = strstr(uri, "://"), *at = store_uri_userinfo_end(uri), *colon = NULL;
	PQconninfoOption *opts;

	/* libpq's own reading first, should the slots run out. */
	opts = PQconninfoParse(uri, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if ((strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0) &&
		    o->val)
			add_secret(st, o->val, strlen(o->val));
	PQconninfoFree(opts);
	if (p != NULL) {
		p += 3;
		if (at)
			colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			const char *part = colon + 1;
			add_secret(st, part, (size_t)(at - part));
			while (part < at) {
				size_t len = strcspn(part, "@/");
				if (part + len > at)
					len = (size_t)(at - part);
				if (len >= 4)
					add_secret(st, part, len);
				part += len + 1;
			}
		}
		for (const char *q = p; *q; q++)
			if ((*q == '?' || *q == '&') && store_is_secret_param(q + 1)) {
				const char *v = q + 1 + strcspn(q + 1, "=") + 1;
				add_secret(st, v, strcspn(v, "&#"));
			}
	}
}

/* Keeps a connection-level error (libpq's own message) as the last error. */
static void keep_conn_error(struct pg_store *st, const char *doing)
{
	char line[PG_LINE_SIZE];

	one_line(line, sizeof line, st->conn ? PQerrorMessage(st->conn) : "out of memory");
	snprintf(st->error, sizeof st->error, "%.64s%s%s", doing ? doing : "", doing ? ": " : "",
	         line);
	scrub(st, st->error, sizeof st->error);
	st->sqlstate[0] = '\0';
	st->constraint[0] = '\0';
}

/*
 * Keeps the error of a failed statement: the server's primary message
 * and its SQLSTATE when the server answered, else libpq's message (the
 * connection broke, or nothing could be sent).
 */
static void keep_error(struct pg_store *st, const PGresult *res)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *name = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	char line[PG_LINE_SIZE];

	if (primary == NULL) {
		keep_conn_error(st, NULL);
		if (state)
			snprintf(st->sqlstate, sizeof st->sqlstate, "%s", state);
		return;
	}
	one_line(line, sizeof line, primary);
	snprintf(st->error, sizeof st->error, "%s (SQLSTATE %s)", line, state ? state : "?");
	scrub(st, st->error, sizeof st->error);
	snprintf(st->sqlstate, sizeof st->sqlstate, "%s", state ? state : "");
	snprintf(st->constraint, sizeof st->constraint, "%s", name ? name : "");
}

/* Returns res when it is a success, else clears it, keeps its error and returns NULL. */
static PGresult *checked(struct pg_store *st, PGresult *res)
{
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return res;
	keep_error(st, res);
	PQclear(res);
	return NULL;
}

/*
 * Runs sql with n text parameters (NULL for SQL NULL); with none, as a
 * simple query (which may hold several statements).  Returns the result
 * (the caller clears it) or NULL with the error kept.
 */
static PGresult *sql_exec(struct pg_store *st, const char *sql, int n, const char *const *values)
{
	if (n == 0)
		return checked(st, PQexec(st->conn, sql));
	return checked(st, PQexecParams(st->conn, sql, n, NULL, values, NULL, NULL, 0));
}

/* sql_exec() without a result: 0 or -1. */
static int sql_run(struct pg_store *st, const char *sql, int n, const char *const *values)
{
	PGresult *res = sql_exec(st, sql, n, values);

	PQclear(res);
	return res ? 0 : -1;
}

/*
 * Runs a prepared statement.  lengths and formats may be NULL (all text);
 * a binary parameter (formats[i] = 1) is lengths[i] bytes.  Returns the
 * result (text columns) or NULL with the error kept.
 */
static PGresult *stmt_exec(struct pg_store *st, enum pg_stmt id, int n, const char *const *values,
                           const int *lengths, const int *formats)
{
	return checked(st,
	               PQexecPrepared(st->conn, stmts[id].name, n, values, lengths, formats, 0));
}

/* stmt_exec() with text parameters and no result wanted: 0 or -1. */
static int stmt_run(struct pg_store *st, enum pg_stmt id, int n, const char *const *values)
{
	PGresult *res = stmt_exec(st, id, n, values, NULL, NULL);

	PQclear(res);
	return res ? 0 : -1;
}

/* The number of rows a command changed (PQcmdTuples), 0 when it says none. */
static long changed_rows(const PGresult *res)
{
	return strtol(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* The value of an int64 column (0 for NULL). */
static int64_t int_value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *int_text(int64_t v, char buf[INT_TEXT_SIZE])
{
	snprintf(buf, INT_TEXT_SIZE, "%" PRId64, v);
	return buf;
}

static int begin(struct pg_store *st)
{
	return sql_run(st, "BEGIN", 0, NULL);
}

/* COMMIT; from the moment it is sent, a broken connection leaves the outcome unknown. */
static int commit(struct pg_store *st)
{
	st->commit_sent = true;
	return sql_run(st, "COMMIT", 0, NULL);
}

/* Rolls back an open (or failed) transaction, if the connection still has one. */
static void rollback(struct pg_store *st)
{
	PGresult *res;

	if (PQstatus(st->conn) != CONNECTION_OK || PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		return;
	res = checked(st, PQexec(st->conn, "ROLLBACK"));
	if (res == NULL)
		log_error("store: %s: rollback failed: %s", st->shown, st->error);
	PQclear(res);
}

/*
 * Sets the session's synchronous_commit (outside a transaction) when it
 * differs from the setting in force.
 */
static int set_sync(struct pg_store *st, enum pg_sync level)
{
	if (st->sync == level)
		return 0;
	if (sql_run(st,
	            level == SYNC_ON ? "SET synchronous_commit = on"
	                             : "SET synchronous_commit = off",
	            0, NULL) != 0)
		return -1;
	st->sync = level;
	return 0;
}

/* The synchronous_commit of a transaction whose success is promised to someone. */
static enum pg_sync durable_sync(const struct pg_store *st)
{
	return st->base.durable ? SYNC_ON : SYNC_OFF;
}

/* Notices (e.g. "relation already exists, skipping") go to the debug log, not stderr. */
/*
 * Notices, and the errors the server sends while no statement runs: a
 * server shutting down or restarting sends FATAL ("terminating connection
 * due to administrator command") before it closes the connection, and
 * libpq hands that to us here while the connection still looks fine.
 */
static void on_notice(void *arg, const PGresult *res)
{
	struct pg_store *st = arg;
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char line[PG_LINE_SIZE];

	if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
		st->server_closing = true;
	one_line(line, sizeof line, primary ? primary : PQresultErrorMessage(res));
	log_debug("store: postgresql: %s", line);
}

/* Session settings, applied on every (re)connection. */
static int setup_session(struct pg_store *st)
{
	char sql[256];

	snprintf(sql, sizeof sql,
	         "SET statement_timeout = %d; SET lock_timeout = %d; SET TimeZone = 'UTC';"
	         " SET client_min_messages = warning",
	         st->timeout_ms, st->timeout_ms);
	st->sync = SYNC_UNKNOWN;
	return sql_run(st, sql, 0, NULL);
}

/*
 * Prepares our statements on this session (after DEALLOCATE ALL, in case
 * an earlier attempt prepared some).  A failure here on an intact
 * connection means the tables lack a column we use.
 */
static int prepare_all(struct pg_store *st)
{
	st->prepared = false;
	if (sql_run(st, "DEALLOCATE ALL", 0, NULL) != 0)
		return -1;
	for (int i = 0; i < PS_COUNT; i++) {
		PGresult *res =
		    checked(st, PQprepare(st->conn, stmts[i].name, stmts[i].sql, 0, NULL));
		if (res == NULL)
			return -1;
		PQclear(res);
	}
	st->prepared = true;
	return 0;
}

/* Takes a runner slot on this session: pg_try_advisory_lock; 1 taken, 0 not, -1 error. */
static int try_slot(struct pg_store *st, int slot)
{
	char buf[INT_TEXT_SIZE];
	const char *v[1] = {int_text(slot, buf)};
	PGresult *res = sql_exec(
	    st, "SELECT pg_try_advisory_lock(" PG_LOCK_RUNNER_CLASS ", $1::integer)", 1, v);
	int taken;

	if (res == NULL)
		return -1;
	taken = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return taken;
}

/*
 * Reads what the server sent while we were idle, as long as there is
 * something: libpq reads a FATAL message and the end of the connection
 * after it in two calls, and only parses a message (handing a FATAL to
 * on_notice) when asked whether it is busy.
 */
static void read_idle_input(struct pg_store *st)
{
	struct pollfd p = {.fd = PQsocket(st->conn), .events = POLLIN};

	for (int i = 0; i < 8 && PQstatus(st->conn) == CONNECTION_OK; i++) {
		p.revents = 0;
		if (p.fd < 0 || poll(&p, 1, 0) != 1 || !PQconsumeInput(st->conn))
			break;
		(void)PQisBusy(st->conn);
	}
}

/*
 * Makes the connection usable before an operation.  Input the server sent
 * while we were idle is read first: a server that shut down or was
 * restarted has sent FATAL and closed the connection, and this is how we
 * learn it before sending anything (the FATAL may arrive before the end
 * of the connection can be seen: either one means a new connection).  A
 * broken connection is reset once; after a reset the session settings
 * and statements are set up again, and a runner slot held on the old
 * session is taken again, each until it has succeeded.  Returns 0, or -1
 * with the error kept.
 */
static int pg_ready(struct pg_store *st)
{
	if (PQstatus(st->conn) == CONNECTION_OK && PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		read_idle_input(st);
	if (PQstatus(st->conn) == CONNECTION_OK && !st->server_closing && st->prepared)
		return 0;
	if (PQstatus(st->conn) != CONNECTION_OK || st->server_closing) {
		st->server_closing = false;
		st->prepared = false;
		st->session_set = false;
		PQreset(st->conn);
		if (PQstatus(st->conn) != CONNECTION_OK) {
			keep_conn_error(st, "cannot reconnect");
			return -1;
		}
		log_info("store: %s: reconnected", st->shown);
		st->slot_to_retake = st->slot >= 0;
	}
	if (!st->session_set) {
		if (setup_session(st) != 0)
			return -1;
		st->session_set = true;
	}
	if (st->slot_to_retake) {
		if (try_slot(st, st->slot) != 1) {
			log_warn("store: %s: hook runner slot %d lost with the old connection",
			         st->shown, st->slot);
			st->slot = -1;
		}
		st->slot_to_retake = false;
	}
	return prepare_all(st);
}

/* An operation's body: one transaction, or one statement. */
typedef enum pg_rc (*pg_body_fn)(struct pg_store *st, void *ctx);

/*
 * Runs body, retrying it once on a new connection when it failed because
 * the connection broke before its COMMIT (or its autocommit write) was
 * sent.  An error is logged here, once, naming what was being done.
 * Returns PG_OK, PG_FAILED (st->sqlstate tells why) or PG_ABANDONED.
 */
static enum pg_rc pg_with_retry(struct pg_store *st, const char *doing, pg_body_fn body, void *ctx)
{
	enum pg_rc rc = PG_FAILED;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (pg_ready(st) != 0) {
			rc = PG_FAILED;
			break;
		}
		st->commit_sent = false;
		rc = body(st, ctx);
		if (rc == PG_OK)
			return rc;
		rollback(st);
		if (rc == PG_ABANDONED)
			return rc;
		if (PQstatus(st->conn) == CONNECTION_OK || st->commit_sent || attempt > 0)
			break;
		log_warn("store: %s: %s: %s; reconnecting to try again", st->shown, doing,
		         st->error);
	}
	if (st->commit_sent && PQstatus(st->conn) != CONNECTION_OK)
		log_error("store: %s: %s: %s (the connection broke after the commit was sent: "
		          "its outcome is unknown)",
		          st->shown, doing, st->error);
	else
		log_error("store: %s: %s: %s", st->shown, doing, st->error);
	return rc;
}

/*
 * Reads the schema version: 0 when there is no cfimages_schema table (or
 * it holds no row).  Returns 0 or -1 (error kept).
 */
static int read_version(struct pg_store *st, int *version)
{
	PGresult *res = sql_exec(st, "SELECT to_regclass('cfimages_schema') IS NOT NULL", 0, NULL);
	bool exists;

	*version = 0;
	if (res == NULL)
		return -1;
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!exists)
		return 0;
	res = sql_exec(st, "SELECT coalesce(max(version), 0) FROM cfimages_schema", 0, NULL);
	if (res == NULL)
		return -1;
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* The refusal of a database written by a newer version of the program. */
static void refuse_newer(const char *shown, int version, char *err, size_t errlen)
{
	store_set_err(err, errlen,
	        "%s has schema version %d, newer than this program's %d; refusing to touch it "
	        "(upgrade " PROGRAM_NAME ")",
	        shown, version, STORE_PG_SCHEMA_VERSION);
}

/*
 * Brings the schema to STORE_PG_SCHEMA_VERSION.  A database at that version
 * is only read; a newer one is refused before anything is written; a
 * missing schema is created when create is set, in one transaction under
 * an advisory lock that makes other nodes' `init` wait, after which the
 * version is read again (another node may have created it meanwhile).
 */
static int ensure_schema(struct pg_store *st, bool create, char *err, size_t errlen)
{
	int version;

	if (read_version(st, &version) != 0)
		goto fail;
	if (version > STORE_PG_SCHEMA_VERSION) {
		refuse_newer(st->shown, version, err, errlen);
		return -1;
	}
	if (version == STORE_PG_SCHEMA_VERSION)
		return 0;
	if (!create) {
		store_set_err(err, errlen, "no database schema at %s (run `" PROGRAM_NAME " init`)",
		        st->shown);
		return -1;
	}
	if (set_sync(st, SYNC_ON) != 0 || begin(st) != 0 ||
	    sql_run(st, "SELECT pg_advisory_xact_lock(" PG_LOCK_SCHEMA ")", 0, NULL) != 0 ||
	    sql_run(st, "CREATE TABLE IF NOT EXISTS cfimages_schema (version integer NOT NULL)", 0,
	            NULL) != 0 ||
	    read_version(st, &version) != 0)
		goto fail;
	if (version > STORE_PG_SCHEMA_VERSION) {
		rollback(st);
		refuse_newer(st->shown, version, err, errlen);
		return -1;
	}
	if (version < STORE_PG_SCHEMA_VERSION &&
	    (sql_run(st, schema_sql, 0, NULL) != 0 ||
	     sql_run(st, "DELETE FROM cfimages_schema", 0, NULL) != 0 ||
	     sql_run(st, "INSERT INTO cfimages_schema (version) VALUES (2)", 0, NULL) != 0))
		goto fail;
	if (commit(st) != 0)
		goto fail;
	return 0;
fail:
	store_set_err(err, errlen, "%s: cannot create or read the schema: %s", st->shown, st->error);
	rollback(st);
	return -1;
}
_Static_assert(STORE_PG_SCHEMA_VERSION == 2, "schema_sql and ensure_schema write version 2");

static void pg_close(struct store *base)
{
	struct pg_store *st = PG(base);

	if (st == NULL)
		return;
	/* PQfinish ends the session, which releases a runner slot too. */
	if (st->conn != NULL)
		PQfinish(st->conn);
	for (size_t i = 0; i < PG_SECRETS_MAX; i++) {
		if (st->secrets[i] != NULL)
			explicit_bzero(st->secrets[i], strlen(st->secrets[i]));
		free(st->secrets[i]);
	}
	free(st);
}

/*
 * Connects (libpq reads the URI; connect_timeout and application_name
 * are defaults the URI may override), sets the session up, brings the
 * schema to our version and prepares the statements, which also proves
 * the tables have the columns we use.
 */
int store_pg_library_version(const char **why)
{
	*why = lazy_pq_load();
	return *why ? -1 : PQlibVersion();
}

struct store *store_pg_open(const struct store_options *opts, char *err, size_t errlen)
{
	static const char *const keywords[] = {"connect_timeout", "fallback_application_name",
	                                       "dbname", NULL};
	const char *values[] = {PG_CONNECT_TIMEOUT_SECONDS, PG_APPLICATION_NAME, opts->path, NULL};
	const char *why = lazy_pq_load();
	struct pg_store *st;

	/* libpq is loaded on first use (README, Build and install). */
	if (why != NULL) {
		store_set_err(err, errlen,
		              "PostgreSQL support needs libpq, which cannot be loaded: %s "
		              "(install it: Debian package libpq5)",
		              why);
		return NULL;
	}
	st = calloc(1, sizeof *st);
	if (st == NULL) {
		store_set_err(err, errlen, "out of memory");
		return NULL;
	}
	st->base.ops = &pg_ops;
	st->base.durable = opts->durable;
	st->timeout_ms = STORE_BUSY_TIMEOUT_MS;
	st->slot = -1;
	store_display_name(opts->path, st->shown, sizeof st->shown);
	find_secrets(st, opts->path);
	st->conn = PQconnectdbParams(keywords, values, 1);
	if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK) {
		keep_conn_error(st, NULL);
		store_set_err(err, errlen, "cannot connect to %s: %s", st->shown, st->error);
		goto fail;
	}
	PQsetNoticeReceiver(st->conn, on_notice, st);
	if (setup_session(st) != 0) {
		store_set_err(err, errlen, "%s: %s", st->shown, st->error);
		goto fail;
	}
	st->session_set = true;
	if (ensure_schema(st, opts->create, err, errlen) != 0)
		goto fail;
	if (prepare_all(st) != 0) {
		store_set_err(err, errlen, "%s: unexpected schema: %s", st->shown, st->error);
		goto fail;
	}
	return &st->base;
fail:
	pg_close(&st->base);
	return NULL;
}

static enum pg_rc schema_version_body(struct pg_store *st, void *ctx)
{
	return read_version(st, ctx) == 0 ? PG_OK : PG_FAILED;
}

static int pg_schema_version(struct store *base)
{
	int version = -1;

	if (pg_with_retry(PG(base), "reading the schema version", schema_version_body, &version) !=
	    PG_OK)
		return -1;
	return version;
}

/* statement_timeout and lock_timeout: a lock held past them is an error, not a hang. */
static void pg_set_busy_timeout(struct store *base, int ms)
{
	struct pg_store *st = PG(base);
	char sql[128];

	st->timeout_ms = ms;
	if (PQstatus(st->conn) != CONNECTION_OK || PQtransactionStatus(st->conn) != PQTRANS_IDLE)
		return; /* setup_session applies it on the next connection */
	snprintf(sql, sizeof sql, "SET statement_timeout = %d; SET lock_timeout = %d", ms, ms);
	if (sql_run(st, sql, 0, NULL) != 0)
		log_warn("store: %s: setting the timeouts: %s", st->shown, st->error);
}

/*
 * Inserts one webhook_deliveries row from *d and stores its id in d->id.
 * Returns 0 or -1 (error kept: a replay is SQLSTATE 23505 on PG_REPLAY_INDEX).
 */
static int insert_delivery(struct pg_store *st, struct delivery *d)
{
	char when[TIME_TEXT_SIZE], hex[SHA256_HEX_SIZE], code[INT_TEXT_SIZE], size[INT_TEXT_SIZE];
	const char *v[9];
	PGresult *res;

	time_format_ms(d->received_ms, when);
	if (d->has_body)
		hex_encode(d->body_sha256, SHA256_BYTES, hex);
	v[0] = when;
	v[1] = int_text(d->status_code, code);
	v[2] = d->reason;
	v[3] = d->remote_addr;
	v[4] = d->scheme;
	v[5] = d->message_id;
	v[6] = d->image_id;
	v[7] = d->has_body ? hex : NULL;
	v[8] = d->has_body ? int_text((int64_t)d->body_size, size) : NULL;
	res = stmt_exec(st, PS_DELIVERY_INSERT, 9, v, NULL, NULL);
	if (res == NULL)
		return -1;
	d->id = int_value(res, 0, 0);
	PQclear(res);
	return 0;
}

/*
 * Inserts one cloudflare_image_logs row.  data (data_len bytes, valid
 * UTF-8 JSON, not necessarily NUL-terminated) may be NULL; it travels as
 * a binary parameter, which for json is its text.  delivery_id <= 0
 * stores NULL.
 */
static int insert_log(struct pg_store *st, const char *image_id, const char *type,
                      const char *message, const char *data, size_t data_len, const char *when,
                      int64_t delivery_id)
{
	char id[INT_TEXT_SIZE];
	const char *v[6] = {image_id, type, message,
	                    data,     when, delivery_id > 0 ? int_text(delivery_id, id) : NULL};
	int lengths[6] = {0, 0, 0, (int)data_len, 0, 0};
	int formats[6] = {0, 0, 0, 1, 0, 0};
	PGresult *res;

	if (data_len > INT32_MAX) {
		snprintf(st->error, sizeof st->error, "a log row's data is too large");
		st->sqlstate[0] = '\0';
		return -1;
	}
	res = stmt_exec(st, PS_LOG_INSERT, 6, v, lengths, formats);
	PQclear(res);
	return res ? 0 : -1;
}

/*
 * Queues one hook run: due now, its input (input_len bytes) kept as bytea
 * so that a retry on any node feeds the hook the very bytes received.
 */
static int insert_hook_run(struct pg_store *st, const char *image_id, const char *status,
                           const struct hook_ref *hook, const char *when, const char *prev,
                           const char *event_name, const char *input, size_t input_len,
                           int64_t delivery_id)
{
	char id[INT_TEXT_SIZE];
	const char *v[9] = {image_id,
	                    status,
	                    hook->name,
	                    hook->path,
	                    when,
	                    prev,
	                    event_name,
	                    input ? input : "",
	                    delivery_id > 0 ? int_text(delivery_id, id) : NULL};
	int lengths[9] = {0, 0, 0, 0, 0, 0, 0, input ? (int)input_len : 0, 0};
	int formats[9] = {0, 0, 0, 0, 0, 0, 0, 1, 0};
	PGresult *res;

	if (input_len > INT32_MAX) {
		snprintf(st->error, sizeof st->error, "a hook run's input is too large");
		st->sqlstate[0] = '\0';
		return -1;
	}
	res = stmt_exec(st, PS_HOOK_INSERT, 9, v, lengths, formats);
	PQclear(res);
	return res ? 0 : -1;
}

/* A single INSERT in autocommit, without waiting for the disk. */
static enum pg_rc record_body(struct pg_store *st, void *ctx)
{
	if (set_sync(st, SYNC_OFF) != 0)
		return PG_FAILED;
	st->commit_sent = true;
	return insert_delivery(st, ctx) == 0 ? PG_OK : PG_FAILED;
}

static int pg_record(struct store *base, struct delivery *d)
{
	return pg_with_retry(PG(base), "recording a delivery", record_body, d) == PG_OK ? 0 : -1;
}

struct ignored_ctx {
	struct delivery *d;
	const char *body;
	size_t body_len;
	const char *message;
};

/* The delivery row and a log row keeping the body, in one transaction. */
static enum pg_rc record_ignored_body(struct pg_store *st, void *ctx)
{
	struct ignored_ctx *c = ctx;
	char when[TIME_TEXT_SIZE];

	time_format_ms(c->d->received_ms, when);
	if (set_sync(st, SYNC_OFF) != 0 || begin(st) != 0 || insert_delivery(st, c->d) != 0 ||
	    insert_log(st, c->d->image_id ? c->d->image_id : "", LOG_IGNORED, c->message, c->body,
	               c->body_len, when, c->d->id) != 0 ||
	    commit(st) != 0)
		return PG_FAILED;
	return PG_OK;
}

static int pg_record_ignored(struct store *base, struct delivery *d, const char *body,
                             size_t body_len, const char *message)
{
	struct ignored_ctx c = {d, body, body_len, message};

	return pg_with_retry(PG(base), "recording an ignored delivery", record_ignored_body, &c) ==
	               PG_OK
	           ? 0
	           : -1;
}

struct seen_ctx {
	const char *message_id;
	bool *seen;
};

static enum pg_rc message_seen_body(struct pg_store *st, void *ctx)
{
	struct seen_ctx *c = ctx;
	const char *v[1] = {c->message_id};
	PGresult *res = stmt_exec(st, PS_MESSAGE_SEEN, 1, v, NULL, NULL);

	if (res == NULL)
		return PG_FAILED;
	*c->seen = PQntuples(res) > 0;
	PQclear(res);
	return PG_OK;
}

/* Uses the partial index on message_id; only a 200 makes a message "seen". */
static int pg_message_seen(struct store *base, const char *message_id, bool *seen)
{
	struct seen_ctx c = {message_id, seen};

	*seen = false;
	return pg_with_retry(PG(base), "looking up a message id", message_seen_body, &c) == PG_OK
	           ? 0
	           : -1;
}

/*
 * Reads an image's status into buf (truncated to cap - 1 bytes, as the
 * SQLite backend does), with FOR UPDATE when lock is set.  *found tells
 * whether the row exists; buf is "" when it does not.
 */
static int read_status(struct pg_store *st, const char *id, bool lock, char *buf, size_t cap,
                       bool *found)
{
	const char *v[1] = {id};
	PGresult *res =
	    stmt_exec(st, lock ? PS_IMAGE_STATUS_LOCK : PS_IMAGE_STATUS, 1, v, NULL, NULL);

	*found = false;
	if (cap > 0)
		buf[0] = '\0';
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		*found = true;
		if (cap > 0)
			snprintf(buf, cap, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return 0;
}

struct status_ctx {
	const char *id;
	char *buf;
	size_t cap;
	bool found;
};

static enum pg_rc image_status_body(struct pg_store *st, void *ctx)
{
	struct status_ctx *c = ctx;

	return read_status(st, c->id, false, c->buf, c->cap, &c->found) == 0 ? PG_OK : PG_FAILED;
}

static int pg_image_status(struct store *base, const char *id, char *buf, size_t cap)
{
	struct status_ctx c = {id, buf, cap, false};

	if (pg_with_retry(PG(base), "reading an image's status", image_status_body, &c) != PG_OK)
		return -1;
	return c.found ? 1 : 0;
}

/*
 * Stores the new status and the fields the event carries; absent fields
 * keep their stored values, and the error text is kept only in "failed".
 */
static int update_image(struct pg_store *st, const struct event *ev, const char *when)
{
	char uploaded[TIME_TEXT_SIZE];
	bool failed = strcmp(ev->status, "failed") == 0;
	const char *v[10];

	if (ev->has_uploaded)
		time_format_ms(ev->uploaded_ms, uploaded);
	v[0] = ev->image_id;
	v[1] = ev->status;
	v[2] = when;
	v[3] = ev->filename;
	v[4] = ev->metadata_json;
	v[5] = ev->variants_json;
	v[6] = ev->require_signed_urls < 0 ? NULL : ev->require_signed_urls ? "true" : "false";
	v[7] = ev->has_uploaded ? uploaded : NULL;
	v[8] = ev->result_json;
	v[9] = failed ? ev->error_text : NULL;
	return stmt_run(st, PS_IMAGE_UPDATE, 10, v);
}

struct apply_ctx {
	const struct event *ev;
	const char *body;
	size_t body_len;
	const struct hook_ref *hooks;
	size_t n_hooks;
	bool auto_register;
	const char *when;
	struct delivery start; /* the delivery as the caller gave it */
	struct delivery row;   /* as written */
	enum store_outcome outcome;
};

/*
 * One delivery, one transaction.  With auto_register the image is
 * inserted unless it exists (ON CONFLICT DO NOTHING waits for a
 * concurrent insertion of the same id, then leaves it); then its row is
 * locked, so that deliveries for one image are decided one after the
 * other on every node.  An image this transaction created has the
 * previous status "" (cfimages-webhook(8) STATUSES).  The delivery row is
 * written first (its id goes into the log row and the hook runs); when
 * it breaks the replay index, another process or node applied this
 * webhook-id meanwhile and the transaction is abandoned.  A 404 is
 * committed without waiting for the disk (SET LOCAL), whatever the
 * session's setting.
 */
static enum pg_rc apply_in_tx(struct pg_store *st, struct apply_ctx *c)
{
	const struct event *ev = c->ev;
	const char *v[2] = {ev->image_id, c->when};
	char prev[STATUS_TEXT_SIZE], message[LOG_MESSAGE_SIZE];
	const char *log_type;
	bool found, inserted = false;
	PGresult *res;

	c->row = c->start;
	c->outcome = STORE_ERROR;
	if (c->auto_register) {
		if ((res = stmt_exec(st, PS_IMAGE_INSERT, 2, v, NULL, NULL)) == NULL)
			return PG_FAILED;
		inserted = changed_rows(res) > 0;
		PQclear(res);
	}
	if (read_status(st, ev->image_id, true, prev, sizeof prev, &found) != 0)
		return PG_FAILED;
	if (!found) {
		c->outcome = STORE_NOT_FOUND;
		c->row.status_code = 404;
		c->row.reason = "not_found";
		return insert_delivery(st, &c->row) == 0 ? PG_OK : PG_FAILED;
	}
	if (inserted)
		prev[0] = '\0';
	c->outcome =
	    store_decide(prev, ev->status, &c->row.reason, &log_type, message, sizeof message);
	c->row.status_code = 200;
	if (insert_delivery(st, &c->row) != 0) {
		if (strcmp(st->sqlstate, SQLSTATE_UNIQUE_VIOLATION) == 0 &&
		    strcmp(st->constraint, PG_REPLAY_INDEX) == 0) {
			c->outcome = STORE_REPLAY;
			return PG_ABANDONED;
		}
		return PG_FAILED;
	}
	if (c->outcome == STORE_APPLIED && update_image(st, ev, c->when) != 0)
		return PG_FAILED;
	if (insert_log(st, ev->image_id, log_type, message, c->body, c->body_len, c->when,
	               c->row.id) != 0)
		return PG_FAILED;
	for (size_t i = 0; c->outcome == STORE_APPLIED && i < c->n_hooks; i++)
		if (insert_hook_run(st, ev->image_id, ev->status, &c->hooks[i], c->when, prev,
		                    ev->event_name, c->body, c->body_len, c->row.id) != 0)
			return PG_FAILED;
	return PG_OK;
}

/* Without waiting for the disk, whatever the session's setting (SET LOCAL). */
static int commit_not_durable(struct pg_store *st)
{
	if (st->sync != SYNC_OFF && sql_run(st, "SET LOCAL synchronous_commit = off", 0, NULL) != 0)
		return -1;
	return 0;
}

static enum pg_rc apply_body(struct pg_store *st, void *ctx)
{
	struct apply_ctx *c = ctx;
	enum pg_rc rc;

	if (set_sync(st, durable_sync(st)) != 0 || begin(st) != 0)
		return PG_FAILED;
	if ((rc = apply_in_tx(st, c)) != PG_OK)
		return rc;
	if (c->outcome == STORE_NOT_FOUND && commit_not_durable(st) != 0)
		return PG_FAILED;
	return commit(st) == 0 ? PG_OK : PG_FAILED;
}

/*
 * store_apply on PostgreSQL.  A replay (see apply_body) is recorded as a
 * delivery row of its own, reason "replay", and answered 200.  Any other
 * error rolls everything back and records a 500 row in its own
 * transaction, except when the cause was a lock or statement timeout (a
 * second wait would double the sender's wait for a row cfimages-webhook(8)
 * DATABASE lets us skip) or the connection is gone.
 */
static enum store_outcome pg_apply(struct store *base, const struct event *ev, const char *body,
                                   size_t body_len, const struct hook_ref *hooks, size_t n_hooks,
                                   bool auto_register, struct delivery *d)
{
	struct pg_store *st = PG(base);
	char when[TIME_TEXT_SIZE];
	struct apply_ctx c = {ev,   body, body_len, hooks,      n_hooks, auto_register,
	                      when, *d,   *d,       STORE_ERROR};
	enum pg_rc rc;

	if (c.start.image_id == NULL)
		c.start.image_id = ev->image_id;
	time_format_ms(d->received_ms, when);
	rc = pg_with_retry(st, "applying a delivery", apply_body, &c);
	if (rc == PG_ABANDONED) {
		c.row = c.start;
		c.row.status_code = 200;
		c.row.reason = "replay";
		c.row.id = 0;
		if (pg_record(base, &c.row) != 0)
			rc = PG_FAILED;
	}
	if (rc == PG_FAILED) {
		bool timed_out = strcmp(st->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 ||
		                 strcmp(st->sqlstate, SQLSTATE_QUERY_CANCELED) == 0;
		c.outcome = STORE_ERROR;
		c.row = c.start;
		c.row.status_code = 500;
		c.row.reason = "internal_error";
		c.row.id = 0;
		if (!timed_out && PQstatus(st->conn) == CONNECTION_OK)
			pg_record(base, &c.row);
	}
	d->status_code = c.row.status_code;
	d->reason = c.row.reason;
	d->id = c.row.id;
	return c.outcome;
}

/* store_write_batch on PostgreSQL: the jobs, and where each stands. */
struct pg_batch {
	struct store_job *jobs;
	size_t n;
	size_t order[STORE_BATCH_MAX];          /* the jobs sorted by image id */
	struct delivery start[STORE_BATCH_MAX]; /* each delivery as given */
	char when[STORE_BATCH_MAX][TIME_TEXT_SIZE];
};

/* The image a job locks ("" for none), for the order of the batch. */
static const char *job_image(const struct store_job *j)
{
	if (j->kind != STORE_JOB_APPLY)
		return "";
	return j->ev->image_id;
}

/*
 * A job that failed inside the batch: its answer is a 500, and an
 * applying job's 500 row is written in the same transaction (unless the
 * cause was a lock or statement timeout, as pg_apply decides).  Returns
 * 0, or -1 when the transaction cannot go on.
 */
static int job_failed_in_tx(struct pg_store *st, struct pg_batch *b, size_t i)
{
	struct store_job *j = &b->jobs[i];
	bool timed_out = strcmp(st->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 ||
	                 strcmp(st->sqlstate, SQLSTATE_QUERY_CANCELED) == 0;

	log_error("store: %s: %s: %s", st->shown,
	          j->kind == STORE_JOB_APPLY ? "applying a delivery" : "recording a delivery",
	          st->error);
	*j->d = b->start[i];
	j->d->id = 0;
	j->rc = -1;
	j->outcome = STORE_ERROR;
	if (PQstatus(st->conn) != CONNECTION_OK ||
	    sql_run(st, "ROLLBACK TO SAVEPOINT job", 0, NULL) != 0)
		return -1;
	if (j->kind != STORE_JOB_APPLY || timed_out)
		return 0;
	if (j->d->image_id == NULL)
		j->d->image_id = j->ev->image_id;
	j->d->status_code = 500;
	j->d->reason = "internal_error";
	if (insert_delivery(st, j->d) != 0) {
		j->d->id = 0;
		return sql_run(st, "ROLLBACK TO SAVEPOINT job", 0, NULL);
	}
	return 0;
}

/* One job inside the batch's transaction (and its savepoint). */
static enum pg_rc job_in_tx(struct pg_store *st, struct pg_batch *b, size_t i)
{
	struct store_job *j = &b->jobs[i];
	struct apply_ctx c = {j->ev,      j->body, j->body_len, j->hooks,   j->n_hooks,
	                      j->auto_register, b->when[i], b->start[i], b->start[i], STORE_ERROR};
	const char *v[1];
	PGresult *res;
	enum pg_rc rc;
	bool seen;

	switch (j->kind) {
	case STORE_JOB_RECORD:
		return insert_delivery(st, j->d) == 0 ? PG_OK : PG_FAILED;
	case STORE_JOB_RECORD_IGNORED:
		if (insert_delivery(st, j->d) != 0 ||
		    insert_log(st, j->d->image_id ? j->d->image_id : "", LOG_IGNORED, j->message,
		               j->body, j->body_len, b->when[i], j->d->id) != 0)
			return PG_FAILED;
		return PG_OK;
	case STORE_JOB_APPLY:
		break;
	}
	if (c.start.image_id == NULL)
		c.start.image_id = j->ev->image_id;
	if (j->d->message_id != NULL) {
		v[0] = j->d->message_id;
		if ((res = stmt_exec(st, PS_MESSAGE_SEEN, 1, v, NULL, NULL)) == NULL)
			return PG_FAILED;
		seen = PQntuples(res) > 0;
		PQclear(res);
		if (seen) {
			rc = PG_ABANDONED;
			goto replay;
		}
	}
	rc = apply_in_tx(st, &c);
	if (rc == PG_OK) {
		*j->d = c.row;
		j->outcome = c.outcome;
		return PG_OK;
	}
	if (rc != PG_ABANDONED)
		return rc;
	if (sql_run(st, "ROLLBACK TO SAVEPOINT job", 0, NULL) != 0)
		return PG_FAILED;
replay:
	/* Answered 200 before (or meanwhile, by another process or node). */
	*j->d = c.start;
	j->d->status_code = 200;
	j->d->reason = "replay";
	j->outcome = STORE_REPLAY;
	return insert_delivery(st, j->d) == 0 ? PG_OK : PG_FAILED;
}

/*
 * The batch's transaction: the jobs in the order of their images (so
 * that two processes lock the rows of their images in one order and
 * cannot deadlock; the jobs of one image keep their order), each in a
 * savepoint; committed without waiting for the disk unless a job changed
 * a status.  A job's error rolls back its savepoint only.
 */
static enum pg_rc batch_body(struct pg_store *st, void *ctx)
{
	struct pg_batch *b = ctx;
	bool durable = false;

	if (set_sync(st, durable_sync(st)) != 0 || begin(st) != 0)
		return PG_FAILED;
	for (size_t k = 0; k < b->n; k++) {
		size_t i = b->order[k];
		struct store_job *j = &b->jobs[i];
		enum pg_rc rc;

		*j->d = b->start[i];
		j->rc = 0;
		j->outcome = STORE_ERROR;
		if (sql_run(st, "SAVEPOINT job", 0, NULL) != 0)
			return PG_FAILED;
		rc = job_in_tx(st, b, i);
		if (rc == PG_OK) {
			if (j->kind == STORE_JOB_APPLY && j->outcome == STORE_APPLIED)
				durable = true;
			if (sql_run(st, "RELEASE SAVEPOINT job", 0, NULL) != 0)
				return PG_FAILED;
			continue;
		}
		if (job_failed_in_tx(st, b, i) != 0 ||
		    sql_run(st, "RELEASE SAVEPOINT job", 0, NULL) != 0)
			return PG_FAILED;
	}
	if (!durable && commit_not_durable(st) != 0)
		return PG_FAILED;
	return commit(st) == 0 ? PG_OK : PG_FAILED;
}

/*
 * store_write_batch on PostgreSQL: one transaction (retried once on a new
 * connection when it broke before its COMMIT was sent).  When the whole
 * transaction fails, every job fails, and the applying jobs' 500 rows are
 * recorded each alone, as pg_apply records them.
 */
static int pg_write_batch(struct store *base, struct store_job *jobs, size_t n)
{
	struct pg_store *st = PG(base);
	struct pg_batch *b = malloc(sizeof *b);
	int failed = 0;

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
	for (size_t i = 0; i < n; i++) {
		size_t k = i;
		b->start[i] = *jobs[i].d;
		time_format_ms(jobs[i].d->received_ms, b->when[i]);
		/* A stable insertion sort by image id: n is small. */
		while (k > 0 && strcmp(job_image(&jobs[b->order[k - 1]]), job_image(&jobs[i])) > 0) {
			b->order[k] = b->order[k - 1];
			k--;
		}
		b->order[k] = i;
	}
	if (pg_with_retry(st, "applying deliveries", batch_body, b) != PG_OK) {
		bool timed_out = strcmp(st->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 ||
		                 strcmp(st->sqlstate, SQLSTATE_QUERY_CANCELED) == 0;
		for (size_t i = 0; i < n; i++) {
			struct store_job *j = &jobs[i];
			*j->d = b->start[i];
			j->d->id = 0;
			j->rc = -1;
			j->outcome = STORE_ERROR;
			if (j->kind != STORE_JOB_APPLY)
				continue;
			if (j->d->image_id == NULL)
				j->d->image_id = j->ev->image_id;
			j->d->status_code = 500;
			j->d->reason = "internal_error";
			if (!timed_out && PQstatus(st->conn) == CONNECTION_OK)
				pg_record(base, j->d);
		}
	}
	for (size_t i = 0; i < n; i++)
		failed += jobs[i].rc < 0;
	free(b);
	return failed;
}

struct register_ctx {
	const char *id;
	const char *metadata_json;
	int64_t expires_ms;
	int inserted;
};

/* ON CONFLICT DO NOTHING keeps an existing row as it is; only an insertion is logged. */
static enum pg_rc register_body(struct pg_store *st, void *ctx)
{
	struct register_ctx *c = ctx;
	char now[TIME_TEXT_SIZE], expires[TIME_TEXT_SIZE], message[LOG_MESSAGE_SIZE];
	const char *v[4];
	PGresult *res;

	time_format_ms(time_now_ms(), now);
	if (c->expires_ms >= 0) {
		time_format_ms(c->expires_ms, expires);
		snprintf(message, sizeof message, "registered as pending, expires %s", expires);
	} else {
		snprintf(message, sizeof message, "registered as pending");
	}
	v[0] = c->id;
	v[1] = c->metadata_json;
	v[2] = c->expires_ms >= 0 ? expires : NULL;
	v[3] = now;
	if (set_sync(st, durable_sync(st)) != 0 || begin(st) != 0)
		return PG_FAILED;
	res = sql_exec(st,
	               "INSERT INTO cloudflare_images (cloudflare_id, status, metadata, expires_at,"
	               " created_at, updated_at) VALUES ($1, 'pending', $2::json, $3::timestamptz,"
	               " $4::timestamptz, $4::timestamptz) ON CONFLICT (cloudflare_id) DO NOTHING",
	               4, v);
	if (res == NULL)
		return PG_FAILED;
	c->inserted = changed_rows(res) > 0;
	PQclear(res);
	if (c->inserted && insert_log(st, c->id, LOG_REGISTERED, message, NULL, 0, now, 0) != 0)
		return PG_FAILED;
	return commit(st) == 0 ? PG_OK : PG_FAILED;
}

static int pg_register(struct store *base, const char *id, const char *metadata_json,
                       int64_t expires_ms)
{
	struct register_ctx c = {id, metadata_json, expires_ms, 0};

	if (pg_with_retry(PG(base), "registering an image", register_body, &c) != PG_OK)
		return -1;
	return c.inserted;
}

struct expire_ctx {
	int64_t now_ms;
	const struct hook_ref *hooks;
	size_t n_hooks;
	long count;
};

/*
 * Expires one image inside the caller's transaction: its status, a log
 * row and its queued hook runs, all carrying the hook input
 * {"id":ID,"status":"expired"} that cfimages-webhook(8) HOOKS gives
 * `expire` hooks.
 */
static int expire_one(struct pg_store *st, const char *id, const char *prev, const char *now,
                      const struct hook_ref *hooks, size_t n_hooks)
{
	char message[LOG_MESSAGE_SIZE];
	char *input = store_expire_input(id);
	const char *v[2] = {id, now};
	size_t len;
	int rc = -1;

	if (input == NULL) {
		snprintf(st->error, sizeof st->error, "out of memory");
		st->sqlstate[0] = '\0';
		return -1;
	}
	len = strlen(input);
	if (sql_run(st,
	            "UPDATE cloudflare_images SET status = 'expired', updated_at = $2::timestamptz"
	            " WHERE cloudflare_id = $1",
	            2, v) != 0)
		goto out;
	snprintf(message, sizeof message, "%s -> %s", prev, EXPIRED_STATUS);
	rc = insert_log(st, id, LOG_EXPIRED, message, input, len, now, 0);
	for (size_t i = 0; rc == 0 && i < n_hooks; i++)
		rc = insert_hook_run(st, id, EXPIRED_STATUS, &hooks[i], now, prev,
		                     EXPIRE_EVENT_NAME, input, len, 0);
out:
	cJSON_free(input);
	return rc;
}

/*
 * All due images in one transaction, locked as they are read.  expires_at
 * is a timestamptz, so it compares as an instant whatever offset it was
 * written with; the order is SQLite's (expiry, then id byte by byte).
 */
static enum pg_rc expire_body(struct pg_store *st, void *ctx)
{
	struct expire_ctx *c = ctx;
	char now[TIME_TEXT_SIZE];
	const char *v[1] = {now};
	PGresult *due;
	enum pg_rc rc = PG_FAILED;
	int n;

	c->count = 0;
	time_format_ms(c->now_ms, now);
	if (set_sync(st, durable_sync(st)) != 0 || begin(st) != 0)
		return PG_FAILED;
	/* Locked in id order, as a batch of deliveries locks its images (no
	 * deadlock between the two), then taken in expiry order. */
	due = sql_exec(st,
	               "SELECT cloudflare_id, status FROM"
	               " (SELECT cloudflare_id, status, expires_at FROM cloudflare_images"
	               "  WHERE status IN ('pending', 'draft') AND expires_at <= $1::timestamptz"
	               "  ORDER BY cloudflare_id COLLATE \"C\" FOR UPDATE) AS locked"
	               " ORDER BY expires_at, cloudflare_id COLLATE \"C\"",
	               1, v);
	if (due == NULL)
		return PG_FAILED;
	n = PQntuples(due);
	for (int i = 0; i < n; i++)
		if (expire_one(st, PQgetvalue(due, i, 0), PQgetvalue(due, i, 1), now, c->hooks,
		               c->n_hooks) != 0)
			goto out;
	if (commit(st) != 0)
		goto out;
	c->count = n;
	rc = PG_OK;
out:
	PQclear(due);
	return rc;
}

static int pg_expire(struct store *base, int64_t now_ms, const struct hook_ref *hooks,
                     size_t n_hooks, long *count)
{
	struct expire_ctx c = {now_ms, hooks, n_hooks, 0};

	*count = 0;
	if (pg_with_retry(PG(base), "expiring images", expire_body, &c) != PG_OK)
		return -1;
	*count = c.count;
	return 0;
}

struct prune_ctx {
	int64_t cutoff_ms;
	struct store_prune_counts counts;
};

/* Runs one DELETE with the cutoff as $1 and stores how many rows it removed. */
static int prune_table(struct pg_store *st, const char *sql, const char *cutoff, long *deleted)
{
	const char *v[1] = {cutoff};
	PGresult *res = sql_exec(st, sql, 1, v);

	if (res == NULL)
		return -1;
	*deleted = changed_rows(res);
	PQclear(res);
	return 0;
}

/*
 * The three DELETEs in one transaction.  A prune of a large backlog may
 * take longer than the statement timeout meant for deliveries, so this
 * transaction has none (lock_timeout still bounds its waits).  There is
 * no PRAGMA optimize: autovacuum and autoanalyze keep the tables.
 */
static enum pg_rc prune_body(struct pg_store *st, void *ctx)
{
	struct prune_ctx *c = ctx;
	char cutoff[TIME_TEXT_SIZE];

	time_format_ms(c->cutoff_ms, cutoff);
	memset(&c->counts, 0, sizeof c->counts);
	if (set_sync(st, durable_sync(st)) != 0 || begin(st) != 0 ||
	    sql_run(st, "SET LOCAL statement_timeout = 0", 0, NULL) != 0 ||
	    prune_table(st, "DELETE FROM webhook_deliveries WHERE received_at < $1::timestamptz",
	                cutoff, &c->counts.deliveries) != 0 ||
	    prune_table(st,
	                "DELETE FROM cloudflare_image_logs WHERE \"timestamp\" < $1::timestamptz",
	                cutoff, &c->counts.logs) != 0 ||
	    prune_table(st,
	                "DELETE FROM hook_runs WHERE state IN ('done', 'failed')"
	                " AND COALESCE(finished_at, created_at) < $1::timestamptz",
	                cutoff, &c->counts.hook_runs) != 0 ||
	    commit(st) != 0)
		return PG_FAILED;
	return PG_OK;
}

static int pg_prune(struct store *base, int64_t cutoff_ms, struct store_prune_counts *out)
{
	struct prune_ctx c = {cutoff_ms, {0, 0, 0}};

	if (pg_with_retry(PG(base), "pruning", prune_body, &c) != PG_OK)
		return -1;
	if (out != NULL)
		*out = c.counts;
	return 0;
}

/*
 * The read queries of the commands: the columns, order and NULLs of the
 * SQLite backend's, times as its text.  Where SQLite breaks ties by
 * rowid, images are ordered by id; text orders use COLLATE "C" (byte
 * order, as SQLite's BINARY), whatever the database's collation.
 */
struct query_sql {
	const char *all; /* arg NULL; the limit (if any) is $1 */
	const char *one; /* arg as $1; the limit (if any) is $2 */
	bool limited;
};

/* clang-format off */
static const struct query_sql queries[] = {
    [STORE_QUERY_IMAGE] = {NULL,
                           "SELECT cloudflare_id, status, metadata, variants, result, error, "
                           TS("uploaded_at") ", " TS("expires_at") ", "
                           TS("created_at") ", " TS("updated_at")
                           " FROM cloudflare_images WHERE cloudflare_id = $1",
                           false},
    [STORE_QUERY_IMAGES] = {"SELECT cloudflare_id, status, " TS("updated_at")
                            " FROM cloudflare_images"
                            " ORDER BY created_at DESC, cloudflare_id COLLATE \"C\" DESC",
                            "SELECT cloudflare_id, status, " TS("updated_at")
                            " FROM cloudflare_images WHERE status = $1"
                            " ORDER BY created_at DESC, cloudflare_id COLLATE \"C\" DESC",
                            false},
    [STORE_QUERY_LOGS] = {"SELECT " TS("\"timestamp\"") ", event_type, image_id, message"
                          " FROM cloudflare_image_logs ORDER BY id DESC LIMIT $1::bigint",
                          "SELECT " TS("\"timestamp\"") ", event_type, image_id, message"
                          " FROM cloudflare_image_logs WHERE image_id = $1"
                          " ORDER BY id DESC LIMIT $2::bigint",
                          true},
    [STORE_QUERY_DELIVERIES] = {"SELECT " TS("received_at") ", status_code, reason, scheme,"
                                " remote_addr, image_id FROM webhook_deliveries"
                                " ORDER BY id DESC LIMIT $1::bigint",
                                "SELECT " TS("received_at") ", status_code, reason, scheme,"
                                " remote_addr, image_id FROM webhook_deliveries"
                                " WHERE status_code = $1::integer"
                                " ORDER BY id DESC LIMIT $2::bigint",
                                true},
    [STORE_QUERY_HOOK_RUNS] = {"SELECT id, state, attempts, exit_code, hook, image_id, "
                               TS("created_at") ", " TS("finished_at") ", "
                               TS("next_attempt_at") ", output, host"
                               " FROM hook_runs ORDER BY id DESC LIMIT $1::bigint",
                               "SELECT id, state, attempts, exit_code, hook, image_id, "
                               TS("created_at") ", " TS("finished_at") ", "
                               TS("next_attempt_at") ", output, host"
                               " FROM hook_runs WHERE state = $1"
                               " ORDER BY id DESC LIMIT $2::bigint",
                               true},
    [STORE_QUERY_IMAGE_COUNTS] = {"SELECT status, count(*) FROM cloudflare_images"
                                  " GROUP BY status ORDER BY status COLLATE \"C\"",
                                  NULL, false},
    [STORE_QUERY_DELIVERY_COUNTS] = {"SELECT status_code, count(*) FROM webhook_deliveries"
                                     " GROUP BY status_code ORDER BY status_code",
                                     NULL, false},
    [STORE_QUERY_RUN_COUNTS] = {"SELECT state, count(*) FROM hook_runs"
                                " GROUP BY state ORDER BY state COLLATE \"C\"",
                                NULL, false},
};
/* clang-format on */

struct query_ctx {
	enum store_query q;
	const char *arg;
	int64_t limit;
	store_row_fn fn;
	void *fn_arg;
	int ret; /* fn's non-zero return */
};

/*
 * The whole result arrives before the first row is handed over, so a
 * broken connection is always found before fn has seen anything and the
 * query can be retried without handing a row over twice.
 */
static enum pg_rc query_body(struct pg_store *st, void *ctx)
{
	struct query_ctx *c = ctx;
	const char *v[2], *cols[QUERY_MAX_COLUMNS];
	const char *sql = c->arg ? queries[c->q].one : queries[c->q].all;
	char limit[INT_TEXT_SIZE];
	PGresult *res;
	int n = 0, rows, ncols;

	if (c->arg)
		v[n++] = c->arg;
	if (queries[c->q].limited)
		v[n++] = c->limit >= 0 ? int_text(c->limit, limit) : NULL;
	if ((res = sql_exec(st, sql, n, v)) == NULL)
		return PG_FAILED;
	rows = PQntuples(res);
	ncols = PQnfields(res);
	if (ncols > QUERY_MAX_COLUMNS)
		ncols = QUERY_MAX_COLUMNS;
	c->ret = 0;
	for (int r = 0; r < rows && c->ret == 0; r++) {
		for (int i = 0; i < ncols; i++)
			cols[i] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
		c->ret = c->fn(c->fn_arg, cols, (size_t)ncols);
	}
	PQclear(res);
	return PG_OK;
}

static int pg_query(struct store *base, enum store_query q, const char *arg, int64_t limit,
                    store_row_fn fn, void *fn_arg)
{
	struct query_ctx c = {q, arg, limit, fn, fn_arg, 0};
	const char *sql;

	if ((size_t)q >= sizeof queries / sizeof queries[0])
		return -1;
	sql = arg ? queries[q].one : queries[q].all;
	if (sql == NULL)
		return -1;
	if (pg_with_retry(PG(base), "reading", query_body, &c) != PG_OK)
		return -1;
	return c.ret;
}

struct claim_ctx {
	int64_t now_ms;
	int64_t lease_ms;
	const char *host;
	struct hook_run *run;
	int result;
};

/* Copies a column for a struct hook_run ("" for NULL). */
static char *dup_value(const PGresult *res, int col)
{
	return store_strdup_or_empty(PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col));
}

/* Fills *run from the claim's RETURNING row; false when out of memory. */
static bool fill_run(const PGresult *res, struct hook_run *run)
{
	unsigned char *input = NULL;
	size_t len = 0;

	run->id = int_value(res, 0, 0);
	run->attempt = int_value(res, 0, 1);
	run->image_id = dup_value(res, 2);
	run->status = dup_value(res, 3);
	run->previous_status = dup_value(res, 4);
	run->event = dup_value(res, 5);
	run->hook = dup_value(res, 6);
	run->path = dup_value(res, 7);
	if (!PQgetisnull(res, 0, 8) &&
	    (input = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 8), &len)) == NULL)
		return false;
	run->input = malloc(len + 1);
	if (run->input != NULL) {
		if (len > 0)
			memcpy(run->input, input, len);
		run->input[len] = '\0';
		run->input_len = len;
	}
	PQfreemem(input);
	return run->image_id && run->status && run->previous_status && run->event && run->hook &&
	       run->path && run->input;
}

/*
 * The claim, in one transaction under a transaction-level advisory lock:
 * claims are taken one at a time across every node, so the rule "never
 * two runs of one image at once" (the NOT EXISTS) sees every claim
 * committed before it; SKIP LOCKED keeps a claim from waiting on a run
 * another transaction holds (a finish or a reclaim).
 */
static enum pg_rc claim_body(struct pg_store *st, void *ctx)
{
	struct claim_ctx *c = ctx;
	char now[TIME_TEXT_SIZE], lease[INT_TEXT_SIZE];
	const char *v[3] = {now, int_text(c->lease_ms, lease), c->host};
	PGresult *res;

	hook_run_free(c->run);
	c->result = 0;
	time_format_ms(c->now_ms, now);
	if (set_sync(st, durable_sync(st)) != 0 || begin(st) != 0 ||
	    sql_run(st, "SELECT pg_advisory_xact_lock(" PG_LOCK_CLAIM ")", 0, NULL) != 0 ||
	    (res = stmt_exec(st, PS_CLAIM, 3, v, NULL, NULL)) == NULL)
		return PG_FAILED;
	if (PQntuples(res) > 0) {
		c->result = 1;
		if (!fill_run(res, c->run)) {
			PQclear(res);
			snprintf(st->error, sizeof st->error, "out of memory claiming a run");
			st->sqlstate[0] = '\0';
			return PG_FAILED;
		}
	}
	PQclear(res);
	return commit(st) == 0 ? PG_OK : PG_FAILED;
}

static int pg_claim(struct store *base, int64_t now_ms, int64_t lease_ms, const char *host,
                    struct hook_run *run)
{
	struct claim_ctx c = {now_ms, lease_ms, host, run, 0};

	memset(run, 0, sizeof *run);
	if (pg_with_retry(PG(base), "claiming a hook run", claim_body, &c) != PG_OK) {
		hook_run_free(run);
		return -1;
	}
	return c.result;
}

/* One autocommit write of the outbox: the statement, its text parameters, the rows changed. */
struct write_ctx {
	enum pg_stmt id; /* a prepared statement, or PS_COUNT for sql */
	const char *sql;
	int n;
	const char *const *values;
	long changed;
};

/* Once sent, an autocommit write's outcome is unknown if the connection breaks. */
static enum pg_rc write_body(struct pg_store *st, void *ctx)
{
	struct write_ctx *c = ctx;
	PGresult *res;

	/* The outbox's writes wait for the disk as durability says. */
	if (set_sync(st, durable_sync(st)) != 0)
		return PG_FAILED;
	st->commit_sent = true;
	res = c->id < PS_COUNT ? stmt_exec(st, c->id, c->n, c->values, NULL, NULL)
	                       : sql_exec(st, c->sql, c->n, c->values);
	if (res == NULL)
		return PG_FAILED;
	c->changed = changed_rows(res);
	PQclear(res);
	return PG_OK;
}

static int pg_set_pgid(struct store *base, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                       int64_t pgid, int64_t pg_start)
{
	char b[4][INT_TEXT_SIZE], claimed[TIME_TEXT_SIZE];
	const char *v[5] = {int_text(run_id, b[0]), int_text(pgid, b[1]), int_text(pg_start, b[2]),
	                    int_text(attempt, b[3]), claimed};
	struct write_ctx c = {PS_SET_PGID, NULL, 5, v, 0};

	time_format_ms(claimed_ms, claimed);

	if (pg_with_retry(PG(base), "recording a hook's process group", write_body, &c) != PG_OK)
		return -1;
	return c.changed > 0;
}

/*
 * Decodes one well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no NUL) at p, of at most n bytes.
 * Returns its length, or 0 when the bytes there are not one.
 */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
	unsigned c = p[0], lo = 0x80, hi = 0xBF;
	size_t len;

	if (c >= 0x01 && c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/*
 * A hook's output as PostgreSQL text can hold it: a text column of a
 * UTF-8 database refuses NUL bytes and malformed UTF-8, which a hook may
 * print (and the 4 KiB tail may begin inside a character).  Each such
 * byte becomes U+FFFD.  Returns a malloc'd string, or NULL when out of
 * memory.
 */
static char *text_from_output(const char *output, size_t len)
{
	const unsigned char *p = (const unsigned char *)(output ? output : "");
	char *out = malloc(3 * len + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i, len - i);
		if (n == 0) {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		} else {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		}
	}
	*o = '\0';
	return out;
}

static int pg_finish(struct store *base, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                     const char *state,
                     bool has_exit, int exit_code, const char *output, size_t output_len,
                     int64_t next_ms, int64_t now_ms)
{
	char b[3][INT_TEXT_SIZE], next[TIME_TEXT_SIZE], now[TIME_TEXT_SIZE], claimed[TIME_TEXT_SIZE];
	char *text = text_from_output(output, output_len);
	const char *v[8];
	struct write_ctx c = {PS_FINISH, NULL, 8, v, 0};
	int rc;

	if (text == NULL) {
		log_error("hook run %lld: out of memory recording its outcome", (long long)run_id);
		return -1;
	}
	time_format_ms(next_ms, next);
	time_format_ms(now_ms, now);
	v[0] = int_text(run_id, b[0]);
	v[1] = state;
	v[2] = has_exit ? int_text(exit_code, b[1]) : NULL;
	v[3] = text;
	v[4] = next;
	v[5] = now;
	v[6] = int_text(attempt, b[2]);
	time_format_ms(claimed_ms, claimed);
	v[7] = claimed;
	rc = pg_with_retry(PG(base), "recording a hook run's outcome", write_body, &c) == PG_OK
	         ? 0
	         : -1;
	free(text);
	if (rc == 0 && c.changed == 0)
		log_warn("hook run %lld: taken up by another runner meanwhile; outcome of attempt "
		         "%lld not recorded",
		         (long long)run_id, (long long)attempt);
	return rc;
}

struct stale_ctx {
	int64_t now_ms;
	struct stale_run *out;
	size_t cap;
	int n;
};

/* A run without a lease (or a start) counts as past it. */
static enum pg_rc stale_body(struct pg_store *st, void *ctx)
{
	struct stale_ctx *c = ctx;
	char cap[INT_TEXT_SIZE];
	const char *v[1] = {int_text((int64_t)c->cap, cap)};
	PGresult *res;
	int rows;

	/* Leases are given and judged by the server's clock (clock_timestamp),
	 * never a node's: nodes whose clocks disagree by more than the slack
	 * would otherwise take up each other's live runs. */
	res = sql_exec(st,
	               "SELECT id, attempts, coalesce(pgid, 0), coalesce(pg_start, 0),"
	               " coalesce(host, ''), " CLAIM_TOKEN " FROM hook_runs WHERE state = 'running'"
	               " AND coalesce(lease_until, started_at, '-infinity') < clock_timestamp()"
	               " ORDER BY id LIMIT $1::bigint",
	               1, v);
	if (res == NULL)
		return PG_FAILED;
	rows = PQntuples(res);
	c->n = 0;
	for (int r = 0; r < rows && (size_t)c->n < c->cap; r++, c->n++) {
		c->out[c->n].id = int_value(res, r, 0);
		c->out[c->n].attempts = int_value(res, r, 1);
		c->out[c->n].pgid = int_value(res, r, 2);
		c->out[c->n].pg_start = int_value(res, r, 3);
		snprintf(c->out[c->n].host, sizeof c->out[c->n].host, "%s", PQgetvalue(res, r, 4));
		snprintf(c->out[c->n].claim, sizeof c->out[c->n].claim, "%s", PQgetvalue(res, r, 5));
	}
	PQclear(res);
	return PG_OK;
}

static int pg_stale(struct store *base, int64_t now_ms, struct stale_run *out, size_t cap)
{
	struct stale_ctx c = {now_ms, out, cap, 0};

	if (pg_with_retry(PG(base), "looking for stale hook runs", stale_body, &c) != PG_OK)
		return -1;
	return c.n;
}

static int pg_reclaim(struct store *base, const struct stale_run *run, int64_t max_attempts,
                      int64_t now_ms)
{
	static const char note[] = "[cfimages-webhook: the process running this hook died; "
	                           "run taken up again]\n";
	char b[3][INT_TEXT_SIZE], now[TIME_TEXT_SIZE];
	const char *v[6] = {int_text(run->id, b[0]), int_text(run->attempts, b[1]),
	                    int_text(max_attempts, b[2]), now, note, run->claim};
	struct write_ctx c = {
	    PS_COUNT,
	    "UPDATE hook_runs SET"
	    " state = CASE WHEN attempts >= $3::integer THEN 'failed' ELSE 'queued' END,"
	    " finished_at = CASE WHEN attempts >= $3::integer THEN $4::timestamptz ELSE NULL END,"
	    " next_attempt_at = $4::timestamptz, pgid = NULL, pg_start = NULL,"
	    " lease_until = NULL, output = coalesce(output, '') || $5"
	    " WHERE id = $1::bigint AND state = 'running' AND attempts = $2::integer"
	    " AND " CLAIM_TOKEN " = $6::text"
	    " AND coalesce(lease_until, started_at, '-infinity') < clock_timestamp()",
	    6, v, 0};

	time_format_ms(now_ms, now);
	if (pg_with_retry(PG(base), "taking up a stale hook run", write_body, &c) != PG_OK)
		return -1;
	return c.changed > 0;
}

struct due_ctx {
	int64_t now_ms;
	bool due;
};

static enum pg_rc any_due_body(struct pg_store *st, void *ctx)
{
	struct due_ctx *c = ctx;
	char now[TIME_TEXT_SIZE];
	const char *v[1] = {now};
	PGresult *res;

	time_format_ms(c->now_ms, now);
	if ((res = stmt_exec(st, PS_ANY_DUE, 1, v, NULL, NULL)) == NULL)
		return PG_FAILED;
	c->due = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return PG_OK;
}

static int pg_any_due(struct store *base, int64_t now_ms, bool *due)
{
	struct due_ctx c = {now_ms, false};
	int rc = pg_with_retry(PG(base), "looking for due hook runs", any_due_body, &c) == PG_OK
	             ? 0
	             : -1;

	*due = c.due;
	return rc;
}

static enum pg_rc next_due_body(struct pg_store *st, void *ctx)
{
	int64_t *ms = ctx;
	PGresult *res =
	    sql_exec(st,
	             "SELECT floor(extract(epoch FROM min(next_attempt_at)) * 1000)::bigint"
	             " FROM hook_runs WHERE state = 'queued'",
	             0, NULL);

	if (res == NULL)
		return PG_FAILED;
	*ms = PQgetisnull(res, 0, 0) ? -1 : int_value(res, 0, 0);
	PQclear(res);
	return PG_OK;
}

static int64_t pg_next_due_ms(struct store *base)
{
	int64_t ms = -2;

	if (pg_with_retry(PG(base), "looking for the next due hook run", next_due_body, &ms) !=
	    PG_OK)
		return -2;
	return ms;
}

static int pg_retry(struct store *base, int64_t run_id, int64_t now_ms)
{
	char id[INT_TEXT_SIZE], now[TIME_TEXT_SIZE];
	const char *v[2] = {int_text(run_id, id), now};
	struct write_ctx c = {PS_COUNT,
	                      "UPDATE hook_runs SET state = 'queued', attempts = 0,"
	                      " next_attempt_at = $2::timestamptz, finished_at = NULL"
	                      " WHERE id = $1::bigint AND state <> 'running'",
	                      2, v, 0};

	time_format_ms(now_ms, now);
	if (pg_with_retry(PG(base), "requeueing a hook run", write_body, &c) != PG_OK)
		return -1;
	return c.changed > 0;
}

struct slot_ctx {
	int max;
	int slot;
};

static enum pg_rc slot_body(struct pg_store *st, void *ctx)
{
	struct slot_ctx *c = ctx;

	c->slot = -1;
	for (int i = 0; i < c->max; i++) {
		int taken = try_slot(st, i);
		if (taken < 0)
			return PG_FAILED;
		if (taken) {
			c->slot = i;
			break;
		}
	}
	return PG_OK;
}

/*
 * A runner slot is a session-level advisory lock (class
 * PG_LOCK_RUNNER_CLASS, the slot number), so the slots are shared by
 * every node; it goes with the session (store_close, or a process that
 * died).
 */
static int pg_take_runner_slot(struct store *base, int max)
{
	struct pg_store *st = PG(base);
	struct slot_ctx c = {max, -1};

	if (st->slot >= 0)
		return -1;
	if (pg_with_retry(st, "taking a hook runner slot", slot_body, &c) != PG_OK)
		return -1;
	st->slot = c.slot;
	return c.slot;
}

static void pg_release_runner_slot(struct store *base)
{
	struct pg_store *st = PG(base);
	char buf[INT_TEXT_SIZE];
	const char *v[1];

	if (st->slot < 0)
		return;
	v[0] = int_text(st->slot, buf);
	st->slot = -1;
	if (PQstatus(st->conn) != CONNECTION_OK)
		return; /* the session, and its lock, are gone */
	if (sql_run(st, "SELECT pg_advisory_unlock(" PG_LOCK_RUNNER_CLASS ", $1::integer)", 1, v) !=
	    0)
		log_warn("store: %s: releasing the hook runner slot: %s", st->shown, st->error);
}

/* --- copy: the writing side ------------------------------------------ */

/* Room for one table's INSERT of every column. */
#define LOAD_SQL_SIZE 1024
/* Most columns of a table copy loads. */
#define LOAD_MAX_COLUMNS 32

/*
 * One transaction for the whole copy.  Unless append, a target that holds
 * any row is refused (-2) before anything is written.
 */
static int pg_load_begin(struct store *base, bool append)
{
	struct pg_store *st = PG(base);
	PGresult *res;
	int64_t rows;

	if (pg_ready(st) < 0 || set_sync(st, SYNC_ON) < 0 || begin(st) < 0)
		goto fail;
	if (append)
		return 0;
	res = sql_exec(st,
	               "SELECT (SELECT count(*) FROM cloudflare_images)"
	               " + (SELECT count(*) FROM cloudflare_image_logs)"
	               " + (SELECT count(*) FROM webhook_deliveries)"
	               " + (SELECT count(*) FROM hook_runs)",
	               0, NULL);
	if (res == NULL)
		goto fail;
	rows = int_value(res, 0, 0);
	PQclear(res);
	if (rows > 0) {
		rollback(st);
		return -2;
	}
	return 0;
fail:
	log_error("store: %s: copy: %s", st->shown, st->error);
	rollback(st);
	return -1;
}

/*
 * One row, its id kept: every column as text, which PostgreSQL's input
 * functions read as the SQLite backend writes it (RFC 3339 times, 0/1
 * booleans, "\x" hex for bytea, JSON text).
 */
static int pg_load_row(struct store *base, enum store_table t, const char *const *cols)
{
	struct pg_store *st = PG(base);
	char sql[LOAD_SQL_SIZE], *output = NULL;
	size_t n, len;
	const char *const *names = store_table_columns(t, &n);
	const char *values[LOAD_MAX_COLUMNS];
	int rc;

	if (n > LOAD_MAX_COLUMNS)
		return -1;
	len = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s (", store_table_name(t));
	for (size_t i = 0; i < n && len < sizeof sql; i++)
		len += (size_t)snprintf(sql + len, sizeof sql - len, "%s\"%s\"", i ? ", " : "",
		                        names[i]);
	for (size_t i = 0; i < n && len < sizeof sql; i++)
		len += (size_t)snprintf(sql + len, sizeof sql - len, "%s$%zu", i ? ", " : ") VALUES (",
		                        i + 1);
	if (len < sizeof sql)
		len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
	if (len >= sizeof sql)
		return -1;
	/*
	 * A hook's output is whatever bytes it printed, and SQLite keeps them
	 * as they were: bytes that are not UTF-8 would make PostgreSQL refuse
	 * the row, and with it the whole copy.  They become U+FFFD, as
	 * pg_finish stores a hook's output in the first place.
	 */
	if (t == STORE_TABLE_HOOK_RUNS) {
		for (size_t i = 0; i < n; i++) {
			if (strcmp(names[i], "output") != 0 || cols[i] == NULL)
				continue;
			output = text_from_output(cols[i], strlen(cols[i]));
			if (output == NULL)
				return -1;
			memcpy(values, cols, n * sizeof *cols);
			values[i] = output;
			cols = values;
			break;
		}
	}
	rc = sql_run(st, sql, (int)n, cols);
	if (rc < 0)
		log_error("store: %s: copy: a row of %s (%s %s): %s", st->shown, store_table_name(t),
		          names[0], cols[0] ? cols[0] : "NULL", st->error);
	free(output);
	return rc < 0 ? -1 : 0;
}

/* Commits, with each identity continuing after the ids copied; or rolls back. */
static int pg_load_end(struct store *base, bool commit_it)
{
	static const char *const with_ids[] = {"cloudflare_image_logs", "webhook_deliveries",
	                                       "hook_runs"};
	struct pg_store *st = PG(base);
	char sql[256];

	if (!commit_it) {
		rollback(st);
		return 0;
	}
	for (size_t i = 0; i < sizeof with_ids / sizeof with_ids[0]; i++) {
		snprintf(sql, sizeof sql,
		         "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
		         " (SELECT coalesce(max(id), 0) + 1 FROM %s), false)",
		         with_ids[i], with_ids[i]);
		if (sql_run(st, sql, 0, NULL) < 0)
			goto fail;
	}
	if (commit(st) < 0)
		goto fail;
	return 0;
fail:
	log_error("store: %s: copy: %s", st->shown, st->error);
	rollback(st);
	return -1;
}

static const struct store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .schema_version = pg_schema_version,
    .set_busy_timeout = pg_set_busy_timeout,
    .record = pg_record,
    .record_ignored = pg_record_ignored,
    .message_seen = pg_message_seen,
    .apply = pg_apply,
    .write_batch = pg_write_batch,
    .image_status = pg_image_status,
    .register_image = pg_register,
    .expire = pg_expire,
    .prune = pg_prune,
    .query = pg_query,
    .claim = pg_claim,
    .set_pgid = pg_set_pgid,
    .finish = pg_finish,
    .stale = pg_stale,
    .reclaim = pg_reclaim,
    .any_due = pg_any_due,
    .next_due_ms = pg_next_due_ms,
    .retry = pg_retry,
    .take_runner_slot = pg_take_runner_slot,
    .release_runner_slot = pg_release_runner_slot,
    .load_begin = pg_load_begin,
    .load_row = pg_load_row,
    .load_end = pg_load_end,
};
