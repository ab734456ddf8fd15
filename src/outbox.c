/*
 * hook_runs as an outbox: the SQL of claiming, finishing, reclaiming and
 * requeueing runs.  Times are the store's text format, which sorts in time
 * order, so comparisons are plain text comparisons on indexed columns.
 */
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "util.h"

/* Output tails are kept at most this long (cfimages-webhook(8) HOOKS: the last 4 KiB). */
#define OUTPUT_TAIL_BYTES 4096

/* Prepares sql on the store's handle; logs and returns NULL on failure. */
static sqlite3_stmt *prepare(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("hook_runs: %s", sqlite3_errmsg(store_db(st)));
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
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

/* Steps a statement that returns no row; returns 0 or -1 (logged). */
static int run_once(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("hook_runs: %s", sqlite3_errmsg(store_db(st)));
		return -1;
	}
	return 0;
}

int outbox_claim(struct store *st, int64_t now_ms, struct hook_run *run)
{
	static const char sql[] =
		"UPDATE hook_runs SET state = 'running', attempts = attempts + 1,"
		" started_at = ?1, pgid = NULL, pg_start = NULL"
		" WHERE id = (SELECT id FROM hook_runs AS r"
		"  WHERE r.state = 'queued' AND r.next_attempt_at <= ?1"
		"  AND NOT EXISTS (SELECT 1 FROM hook_runs AS o"
		"   WHERE o.state = 'running' AND o.image_id = r.image_id)"
		"  ORDER BY r.next_attempt_at, r.id LIMIT 1)"
		" RETURNING id, attempts, image_id, status, previous_status, event, hook, path,"
		" input";
	sqlite3_stmt *s = prepare(st, sql);
	int rc, result = -1;
	const void *input;

	memset(run, 0, sizeof *run);
	if (s == NULL)
		return -1;
	bind_time(s, 1, now_ms);
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
		/* Finish the statement so the UPDATE is complete before we go on. */
		while (rc == SQLITE_ROW)
			rc = sqlite3_step(s);
	} else {
		log_error("hook_runs: claim: %s", sqlite3_errmsg(store_db(st)));
	}
	sqlite3_finalize(s);
	if (result < 0)
		hook_run_free(run);
	return result;
}

int outbox_set_pgid(struct store *st, int64_t run_id, int64_t attempt, int64_t pgid,
                    int64_t pg_start)
{
	sqlite3_stmt *s = prepare(st, "UPDATE hook_runs SET pgid = ?2, pg_start = ?3"
	                              " WHERE id = ?1 AND state = 'running' AND attempts = ?4");
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, pgid);
	sqlite3_bind_int64(s, 3, pg_start);
	sqlite3_bind_int64(s, 4, attempt);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	return rc;
}

int outbox_finish(struct store *st, int64_t run_id, int64_t attempt, const char *state,
                  bool has_exit, int exit_code, const char *output, size_t output_len,
                  int64_t next_ms, int64_t now_ms)
{
	sqlite3_stmt *s = prepare(st, "UPDATE hook_runs SET state = ?2, exit_code = ?3,"
	                              " output = ?4, next_attempt_at = ?5,"
	                              " finished_at = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?6 END,"
	                              " pgid = NULL, pg_start = NULL"
	                              " WHERE id = ?1 AND state = 'running' AND attempts = ?7");
	int rc;
	if (s == NULL)
		return -1;
	if (output_len > OUTPUT_TAIL_BYTES) {
		output += output_len - OUTPUT_TAIL_BYTES;
		output_len = OUTPUT_TAIL_BYTES;
	}
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, state, -1, SQLITE_STATIC);
	if (has_exit)
		sqlite3_bind_int(s, 3, exit_code);
	sqlite3_bind_text(s, 4, output ? output : "", (int)output_len, SQLITE_STATIC);
	bind_time(s, 5, next_ms);
	bind_time(s, 6, now_ms);
	sqlite3_bind_int64(s, 7, attempt);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	if (rc == 0 && sqlite3_changes(store_db(st)) == 0)
		log_warn("hook run %lld: taken up by another runner meanwhile; outcome of attempt "
		         "%lld not recorded", (long long)run_id, (long long)attempt);
	return rc;
}

int outbox_stale(struct store *st, int64_t stale_before_ms, struct stale_run *out, size_t cap)
{
	sqlite3_stmt *s = prepare(st, "SELECT id, attempts, coalesce(pgid, 0), coalesce(pg_start, 0)"
	                              " FROM hook_runs WHERE state = 'running' AND started_at < ?1"
	                              " ORDER BY id LIMIT ?2");
	size_t n = 0;
	int rc;
	if (s == NULL)
		return -1;
	bind_time(s, 1, stale_before_ms);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)cap);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < cap) {
		out[n].id = sqlite3_column_int64(s, 0);
		out[n].attempts = sqlite3_column_int64(s, 1);
		out[n].pgid = sqlite3_column_int64(s, 2);
		out[n].pg_start = sqlite3_column_int64(s, 3);
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("hook_runs: %s", sqlite3_errmsg(store_db(st)));
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return (int)n;
}

int outbox_reclaim(struct store *st, const struct stale_run *run, int64_t max_attempts,
                   int64_t now_ms)
{
	static const char note[] = "[cfimages-webhook: the process running this hook died; "
	                           "run taken up again]\n";
	sqlite3_stmt *s = prepare(st, "UPDATE hook_runs SET"
	                              " state = CASE WHEN attempts >= ?3 THEN 'failed' ELSE 'queued' END,"
	                              " finished_at = CASE WHEN attempts >= ?3 THEN ?4 ELSE NULL END,"
	                              " next_attempt_at = ?4, pgid = NULL, pg_start = NULL,"
	                              " output = coalesce(output, '') || ?5"
	                              " WHERE id = ?1 AND state = 'running' AND attempts = ?2");
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run->id);
	sqlite3_bind_int64(s, 2, run->attempts);
	sqlite3_bind_int64(s, 3, max_attempts);
	bind_time(s, 4, now_ms);
	sqlite3_bind_text(s, 5, note, -1, SQLITE_STATIC);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	if (rc < 0)
		return -1;
	return sqlite3_changes(store_db(st)) > 0;
}

int outbox_any_due(struct store *st, int64_t now_ms, int64_t stale_before_ms, bool *due)
{
	sqlite3_stmt *s = prepare(st, "SELECT EXISTS (SELECT 1 FROM hook_runs"
	                              "  WHERE state = 'queued' AND next_attempt_at <= ?1)"
	                              " OR EXISTS (SELECT 1 FROM hook_runs"
	                              "  WHERE state = 'running' AND started_at < ?2)");
	int rc;
	*due = false;
	if (s == NULL)
		return -1;
	bind_time(s, 1, now_ms);
	bind_time(s, 2, stale_before_ms);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*due = sqlite3_column_int(s, 0) != 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

int64_t outbox_next_due_ms(struct store *st)
{
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

int outbox_retry(struct store *st, int64_t run_id, int64_t now_ms)
{
	sqlite3_stmt *s = prepare(st, "UPDATE hook_runs SET state = 'queued', attempts = 0,"
	                              " next_attempt_at = ?2, finished_at = NULL"
	                              " WHERE id = ?1 AND state != 'running'");
	int rc;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	bind_time(s, 2, now_ms);
	rc = run_once(st, s);
	sqlite3_finalize(s);
	if (rc < 0)
		return -1;
	return sqlite3_changes(store_db(st)) > 0;
}

void hook_run_free(struct hook_run *run)
{
	free(run->image_id);
	free(run->status);
	free(run->previous_status);
	free(run->event);
	free(run->hook);
	free(run->path);
	free(run->input);
	memset(run, 0, sizeof *run);
}
