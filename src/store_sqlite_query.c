/*
 * The SQLite backend's read queries (the operator commands) and the
 * outbox: claiming, finishing, reclaiming and requeueing hook runs.
 * Times are the store's text format, which sorts in time order, so
 * comparisons are plain text comparisons on indexed columns.  These
 * statements run rarely (a command, a hook run), so they are prepared
 * when used.
 *
 * The outbox's writes queue on DB-write.lock like the deliveries' batches
 * (sqlite_write_lock) instead of polling for SQLite's own lock beside
 * them, and hold it for their statement alone: it is prepared before, and
 * a claim's flush comes after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"
#include "util.h"

/* Prepares sql on the store's handle; logs and returns NULL on failure. */
static sqlite3_stmt *prepare(struct sqlite_store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		sqlite_log_error(st, "preparing a query");
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

/*
 * prepare() for a write, whose commit waits for the disk when wait is
 * true and durability asks it (sqlite_wait_for_disk).
 */
static sqlite3_stmt *prepare_write(struct sqlite_store *st, const char *sql, bool wait)
{
	if (sqlite_wait_for_disk(st, wait) < 0) {
		sqlite_log_error(st, "setting PRAGMA synchronous");
		return NULL;
	}
	return prepare(st, sql);
}

static void bind_time(sqlite3_stmt *s, int i, int64_t ms)
{
	char t[TIME_TEXT_SIZE];
	time_format_ms(ms, t);
	sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
}

static char *dup_column(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return strdup(t ? (const char *)t : "");
}

/* Takes DB-write.lock for one write: false (logged) when it timed out. */
static bool write_lock(struct sqlite_store *st, bool *held)
{
	bool busy;

	*held = sqlite_write_lock(st, "hook_runs", &busy);
	return !busy;
}

static void write_unlock(struct sqlite_store *st, bool held)
{
	if (held)
		sqlite_write_unlock(st);
}

/* Steps a write that returns no row, under DB-write.lock; returns 0 or
 * -1 (logged). */
static int run_once(struct sqlite_store *st, sqlite3_stmt *s)
{
	bool held;
	int rc;

	if (!write_lock(st, &held))
		return -1;
	rc = sqlite3_step(s);
	write_unlock(st, held);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		sqlite_log_error(st, "hook_runs");
		return -1;
	}
	return 0;
}

int sqlite_claim(struct store *base, int64_t now_ms, int64_t lease_ms, const char *host,
                 struct hook_run *run)
{
	static const char sql[] =
		"UPDATE hook_runs SET state = 'running', attempts = attempts + 1,"
		" started_at = ?1, lease_until = ?2, host = ?3, pgid = NULL, pg_start = NULL"
		" WHERE id = (SELECT id FROM hook_runs AS r"
		"  WHERE r.state = 'queued' AND r.next_attempt_at <= ?1"
		"  AND NOT EXISTS (SELECT 1 FROM hook_runs AS o"
		"   WHERE o.state = 'running' AND o.image_id = r.image_id)"
		"  ORDER BY r.next_attempt_at, r.id LIMIT 1)"
		" RETURNING id, attempts, image_id, status, previous_status, event, hook, path,"
		" input";
	struct sqlite_store *st = SQ(base);
	/* Committed without waiting for the disk, so that nobody waits behind
	 * the lock meanwhile; flushed after it at full, before the hook runs
	 * (a claim lost by a crash would run the hook again).  The flush also
	 * carries the outcome of the runner's previous run. */
	sqlite3_stmt *s = prepare_write(st, sql, false);
	int rc, result = -1;
	bool held;
	const void *input;

	memset(run, 0, sizeof *run);
	if (s == NULL)
		return -1;
	if (!write_lock(st, &held)) {
		sqlite3_finalize(s);
		return -1;
	}
	bind_time(s, 1, now_ms);
	bind_time(s, 2, now_ms + lease_ms);
	sqlite3_bind_text(s, 3, host, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		result = 0;
	} else if (rc == SQLITE_ROW) {
		run->id = sqlite3_column_int64(s, 0);
		run->attempt = sqlite3_column_int64(s, 1);
		run->image_id = dup_column(s, 2);
		run->status = dup_column(s, 3);
		run->previous_status = dup_column(s, 4);
		run->event = dup_column(s, 5);
		run->hook = dup_column(s, 6);
		run->path = dup_column(s, 7);
		input = sqlite3_column_blob(s, 8);
		run->input_len = (size_t)sqlite3_column_bytes(s, 8);
		run->input = malloc(run->input_len + 1);
		if (run->input && input)
			memcpy(run->input, input, run->input_len);
		result = 1;
		if (!run->image_id || !run->status || !run->previous_status || !run->event ||
		    !run->hook || !run->path || !run->input) {
			log_error("hook_runs: out of memory claiming run %lld", (long long)run->id);
			result = -1;
		}
		/* Finish the statement: its last step commits the UPDATE, and
		 * a claim that did not commit must not run the hook. */
		while (rc == SQLITE_ROW)
			rc = sqlite3_step(s);
		if (rc != SQLITE_DONE) {
			sqlite_log_error(st, "claiming a hook run");
			result = -1;
		}
	} else {
		sqlite_log_error(st, "claiming a hook run");
	}
	sqlite3_finalize(s);
	write_unlock(st, held);
	/* Not known to be on disk, the claim is not acted on: its lease runs
	 * out and a runner takes it up again. */
	if (result == 1 && outbox_flush(base) != 0) {
		log_error("hook run %lld: its claim could not be flushed to the disk; not run now",
		          (long long)run->id);
		result = -1;
	}
	if (result < 0)
		hook_run_free(run);
	return result;
}

int sqlite_set_pgid(struct store *base, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                    int64_t pgid, int64_t pg_start)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = prepare_write(st,
	                                "UPDATE hook_runs SET pgid = ?2, pg_start = ?3"
	                                " WHERE id = ?1 AND state = 'running'"
	                                " AND attempts = ?4 AND started_at = ?5",
	                                false);
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, pgid);
	sqlite3_bind_int64(s, 3, pg_start);
	sqlite3_bind_int64(s, 4, attempt);
	bind_time(s, 5, claimed_ms);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	return rc < 0 ? -1 : sqlite3_changes(st->db) > 0;
}

int sqlite_finish(struct store *base, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                  const char *state,
                  bool has_exit, int exit_code, const char *output, size_t output_len,
                  int64_t next_ms, int64_t now_ms)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s =
	    prepare_write(st,
	                  "UPDATE hook_runs SET state = ?2, exit_code = ?3,"
	                  " output = ?4, next_attempt_at = ?5,"
	                  " finished_at = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?6 END,"
	                  " pgid = NULL, pg_start = NULL"
	                  " WHERE id = ?1 AND state = 'running' AND attempts = ?7"
	                  " AND started_at = ?8",
	                  false);
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
	if (has_exit)
		sqlite3_bind_int(s, 3, exit_code);
	sqlite3_bind_text(s, 4, output ? output : "", (int)output_len, SQLITE_STATIC);
	bind_time(s, 5, next_ms);
	bind_time(s, 6, now_ms);
	sqlite3_bind_int64(s, 7, attempt);
	bind_time(s, 8, claimed_ms);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		log_warn("hook run %lld: taken up by another runner meanwhile; outcome of attempt "
		         "%lld not recorded", (long long)run_id, (long long)attempt);
	return rc;
}

/* The runs in progress are few, and have an index of their own: without
 * the hint the planner would scan the whole table for the ORDER BY. */
int sqlite_stale(struct store *base, int64_t now_ms, struct stale_run *out, size_t cap)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = prepare(st, "SELECT id, attempts, coalesce(pgid, 0), coalesce(pg_start, 0),"
	                              " coalesce(host, ''), coalesce(started_at, '')"
	                              " FROM hook_runs INDEXED BY hook_runs_running"
	                              " WHERE state = 'running'"
	                              " AND coalesce(lease_until, started_at) < ?1"
	                              " ORDER BY id LIMIT ?2");
	size_t n = 0;
	int rc;
	if (s == NULL)
		return -1;
	bind_time(s, 1, now_ms);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)cap);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < cap) {
		out[n].id = sqlite3_column_int64(s, 0);
		out[n].attempts = sqlite3_column_int64(s, 1);
		out[n].pgid = sqlite3_column_int64(s, 2);
		out[n].pg_start = sqlite3_column_int64(s, 3);
		snprintf(out[n].host, sizeof out[n].host, "%s",
		         (const char *)sqlite3_column_text(s, 4));
		snprintf(out[n].claim, sizeof out[n].claim, "%s",
		         (const char *)sqlite3_column_text(s, 5));
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		sqlite_log_error(st, "looking for stale hook runs");
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return (int)n;
}

int sqlite_reclaim(struct store *base, const struct stale_run *run, int64_t max_attempts,
                   int64_t now_ms)
{
	struct sqlite_store *st = SQ(base);
	static const char note[] = "[cfimages-webhook: the process running this hook died; "
	                           "run taken up again]\n";
	sqlite3_stmt *s =
	    prepare_write(st,
	                  "UPDATE hook_runs SET"
	                  " state = CASE WHEN attempts >= ?3 THEN 'failed' ELSE 'queued' END,"
	                  " finished_at = CASE WHEN attempts >= ?3 THEN ?4 ELSE NULL END,"
	                  " next_attempt_at = ?4, pgid = NULL, pg_start = NULL,"
	                  " lease_until = NULL,"
	                  " output = coalesce(output, '') || ?5"
	                  " WHERE id = ?1 AND state = 'running' AND attempts = ?2"
	                  " AND coalesce(started_at, '') = ?6"
	                  " AND coalesce(lease_until, started_at) < ?4",
	                  true);
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run->id);
	sqlite3_bind_int64(s, 2, run->attempts);
	sqlite3_bind_int64(s, 3, max_attempts);
	bind_time(s, 4, now_ms);
	sqlite3_bind_text(s, 5, note, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, run->claim, -1, SQLITE_STATIC);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	if (rc < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

int sqlite_any_due(struct store *base, int64_t now_ms, bool *due)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = prepare(st, "SELECT EXISTS (SELECT 1 FROM hook_runs"
	                              "  WHERE state = 'queued' AND next_attempt_at <= ?1)"
	                              " OR EXISTS (SELECT 1 FROM hook_runs"
	                              "  WHERE state = 'running'"
	                              "  AND coalesce(lease_until, started_at) < ?1)");
	int rc;
	*due = false;
	if (s == NULL)
		return -1;
	bind_time(s, 1, now_ms);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*due = sqlite3_column_int(s, 0) != 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int64_t sqlite_next_due_ms(struct store *base)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = prepare(st, "SELECT min(next_attempt_at) FROM hook_runs"
	                              " WHERE state = 'queued'");
	int64_t ms = -2;
	const unsigned char *t;
	if (s == NULL)
		return -2;
	if (sqlite3_step(s) == SQLITE_ROW) {
		t = sqlite3_column_text(s, 0);
		if (t == NULL)
			ms = -1;
		else if (!rfc3339_parse((const char *)t, strlen((const char *)t), &ms))
			ms = -2;
	}
	sqlite3_finalize(s);
	return ms;
}

int sqlite_retry(struct store *base, int64_t run_id, int64_t now_ms)
{
	struct sqlite_store *st = SQ(base);
	sqlite3_stmt *s = prepare_write(st,
	                                "UPDATE hook_runs SET state = 'queued', attempts = 0,"
	                                " next_attempt_at = ?2, finished_at = NULL"
	                                " WHERE id = ?1 AND state != 'running'",
	                                true);
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	bind_time(s, 2, now_ms);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	if (rc < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

/* The SQL of each read query, with and without its argument. */
struct query_sql {
	const char *all;     /* arg NULL; the limit (if any) is ?1 */
	const char *one;     /* arg as ?1; the limit (if any) is ?2 */
	bool limited;
};

static const struct query_sql queries[] = {
    [STORE_QUERY_IMAGE] = {NULL,
                           "SELECT cloudflare_id, status, metadata, variants, result, error,"
                           " uploaded_at, expires_at, created_at, updated_at"
                           " FROM cloudflare_images WHERE cloudflare_id = ?1",
                           false},
    [STORE_QUERY_IMAGES] = {"SELECT cloudflare_id, status, updated_at FROM cloudflare_images"
                            " ORDER BY created_at DESC, rowid DESC",
                            "SELECT cloudflare_id, status, updated_at FROM cloudflare_images"
                            " WHERE status = ?1 ORDER BY created_at DESC, rowid DESC",
                            false},
    [STORE_QUERY_LOGS] = {"SELECT timestamp, event_type, image_id, message"
                          " FROM cloudflare_image_logs ORDER BY id DESC LIMIT ?1",
                          "SELECT timestamp, event_type, image_id, message"
                          " FROM cloudflare_image_logs WHERE image_id = ?1"
                          " ORDER BY id DESC LIMIT ?2",
                          true},
    [STORE_QUERY_DELIVERIES] = {"SELECT received_at, status_code, reason, scheme, remote_addr,"
                                " image_id FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
                                "SELECT received_at, status_code, reason, scheme, remote_addr,"
                                " image_id FROM webhook_deliveries"
                                " WHERE status_code = CAST(?1 AS INTEGER)"
                                " ORDER BY id DESC LIMIT ?2",
                                true},
    [STORE_QUERY_HOOK_RUNS] = {"SELECT id, state, attempts, exit_code, hook, image_id,"
                               " created_at, finished_at, next_attempt_at, output, host"
                               " FROM hook_runs ORDER BY id DESC LIMIT ?1",
                               "SELECT id, state, attempts, exit_code, hook, image_id,"
                               " created_at, finished_at, next_attempt_at, output, host"
                               " FROM hook_runs WHERE state = ?1 ORDER BY id DESC LIMIT ?2",
                               true},
    [STORE_QUERY_IMAGE_COUNTS] = {"SELECT status, count(*) FROM cloudflare_images"
                                  " GROUP BY status ORDER BY status",
                                  NULL, false},
    [STORE_QUERY_DELIVERY_COUNTS] = {"SELECT status_code, count(*) FROM webhook_deliveries"
                                     " GROUP BY status_code ORDER BY status_code",
                                     NULL, false},
    [STORE_QUERY_RUN_COUNTS] = {"SELECT state, count(*) FROM hook_runs"
                                " GROUP BY state ORDER BY state",
                                NULL, false},
};

/* Most columns a query returns. */
#define QUERY_MAX_COLUMNS 16

int sqlite_query(struct store *base, enum store_query q, const char *arg, int64_t limit,
                 store_row_fn fn, void *fn_arg)
{
	struct sqlite_store *st = SQ(base);
	const char *cols[QUERY_MAX_COLUMNS];
	const char *sql;
	sqlite3_stmt *s;
	int rc, n, ret = 0, next = 1;

	if ((size_t)q >= sizeof queries / sizeof queries[0])
		return -1;
	sql = arg ? queries[q].one : queries[q].all;
	if (sql == NULL || (s = prepare(st, sql)) == NULL)
		return -1;
	if (arg)
		sqlite3_bind_text(s, next++, arg, -1, SQLITE_STATIC);
	if (queries[q].limited)
		sqlite3_bind_int64(s, next, limit >= 0 ? limit : -1);
	n = sqlite3_column_count(s);
	if (n > QUERY_MAX_COLUMNS)
		n = QUERY_MAX_COLUMNS;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (int i = 0; i < n; i++)
			cols[i] = (const char *)sqlite3_column_text(s, i);
		if ((ret = fn(fn_arg, cols, (size_t)n)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		sqlite_log_error(st, "reading");
		ret = -1;
	}
	sqlite3_finalize(s);
	return ret;
}

/* Most columns of a table `copy` moves. */
#define DUMP_MAX_COLUMNS 32

int sqlite_dump(struct store *base, enum store_table t, store_row_fn fn, void *fn_arg)
{
	struct sqlite_store *st = SQ(base);
	size_t n, len = 0;
	const char *const *names = store_table_columns(t, &n);
	const char *order = t == STORE_TABLE_IMAGES ? "rowid" : "id";
	const char *cols[DUMP_MAX_COLUMNS];
	char sql[1024];
	sqlite3_stmt *s;
	int rc, ret = 0;

	len += (size_t)snprintf(sql + len, sizeof sql - len, "SELECT ");
	for (size_t i = 0; i < n && len < sizeof sql; i++) {
		bool blob = t == STORE_TABLE_HOOK_RUNS && strcmp(names[i], "input") == 0;
		if (blob)
			len += (size_t)snprintf(sql + len, sizeof sql - len,
			                        "%sCASE WHEN %s IS NULL THEN NULL"
			                        " ELSE '\\x' || lower(hex(%s)) END",
			                        i ? ", " : "", names[i], names[i]);
		else
			len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s", i ? ", " : "",
			                        names[i]);
	}
	if (len < sizeof sql)
		len += (size_t)snprintf(sql + len, sizeof sql - len, " FROM %s ORDER BY %s",
		                        store_table_name(t), order);
	if (len >= sizeof sql || n > DUMP_MAX_COLUMNS || (s = prepare(st, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (size_t i = 0; i < n; i++)
			cols[i] = (const char *)sqlite3_column_text(s, (int)i);
		if ((ret = fn(fn_arg, cols, n)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		sqlite_log_error(st, "copying");
		ret = -1;
	}
	sqlite3_finalize(s);
	return ret;
}
