/*
 * The store against real SQLite databases in a temporary directory: file
 * and directory modes whatever the umask, the schema version and its
 * refusal of newer databases, and every rule of cfimages-webhook(8) STATUSES as
 * store_apply() commits it (counting the rows of every table after each
 * step, so a stray write fails a check).  Events are built by hand so this
 * test depends on the store alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "event.h"
#include "config.h"
#include "hook_runner.h"
#include "outbox.h"
#include "store.h"
#include "store_sqlite.h" /* white box: this is the SQLite backend's test */
#include "testlib.h"
#include "util.h"

/* The backend's connection, for the test's own queries. */
static sqlite3 *store_db(struct store *st)
{
	return SQ(st)->db;
}

/* A fixed delivery time: 2023-11-14T22:13:20.123Z. */
#define T0_MS INT64_C(1700000000123)
#define T0_TEXT "2023-11-14T22:13:20.123Z"
/* Busy timeout used to prove a held lock ends in a 500, milliseconds. */
#define SHORT_BUSY_MS 200

static char tmpdir[] = "/tmp/test_store.XXXXXX";

static int db_serial;

/* Rows in each table, to prove exactly which ones a step wrote. */
struct counts {
	long images, logs, deliveries, hook_runs;
};

/* A fresh database path in the temporary directory. */
static void new_path(char *buf, size_t cap, const char *sub)
{
	snprintf(buf, cap, "%s/%s%d.db", tmpdir, sub ? sub : "", ++db_serial);
}

static struct store *open_db(const char *path, unsigned mode, bool create, bool durable)
{
	struct store_options o = {
	    .path = path, .db_mode = mode, .durable = durable, .create = create};
	char err[512] = "";
	struct store *st = store_open(&o, err, sizeof err);

	if (st == NULL && create)
		fprintf(stderr, "store_open(%s): %s\n", path, err);
	return st;
}

/* A new database (durable or not) at a new path, written to path; NULL (a failed check) if it cannot be made. */
static struct store *new_db(char *path, size_t cap, const char *sub, bool durable)
{
	struct store *st;

	new_path(path, cap, sub);
	st = open_db(path, 0600, true, durable);
	CHECK(st != NULL);
	return st;
}

/* Runs a query with an optional text parameter; the first column as an integer. */
static long q_int(struct store *st, const char *sql, const char *arg)
{
	sqlite3_stmt *s = NULL;
	long v = -12345;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "prepare %s: %s\n", sql, sqlite3_errmsg(store_db(st)));
		return v;
	}
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Same, the first column as a malloc'd string (NULL for SQL NULL or no row). */
static char *q_text(struct store *st, const char *sql, const char *arg)
{
	sqlite3_stmt *s = NULL;
	char *v = NULL;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "prepare %s: %s\n", sql, sqlite3_errmsg(store_db(st)));
		return NULL;
	}
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return v;
}

#define CHECK_SQL(st, sql, arg, want)                                                              \
	do {                                                                                       \
		char *got_ = q_text((st), (sql), (arg));                                           \
		CHECK_STR(got_, (want));                                                           \
		free(got_);                                                                        \
	} while (0)

static void exec_sql(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(store_db(st), sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "exec %s: %s\n", sql, msg ? msg : "?");
		test_failures++;
	}
	sqlite3_free(msg);
}

static struct counts get_counts(struct store *st)
{
	struct counts c;

	c.images = q_int(st, "SELECT count(*) FROM cloudflare_images", NULL);
	c.logs = q_int(st, "SELECT count(*) FROM cloudflare_image_logs", NULL);
	c.deliveries = q_int(st, "SELECT count(*) FROM webhook_deliveries", NULL);
	c.hook_runs = q_int(st, "SELECT count(*) FROM hook_runs", NULL);
	return c;
}

#define CHECK_COUNTS(c, i, l, d, h)                                                                \
	CHECK_MSG((c).images == (i) && (c).logs == (l) && (c).deliveries == (d) &&                 \
	              (c).hook_runs == (h),                                                        \
	          "images %ld logs %ld deliveries %ld hook_runs %ld", (c).images, (c).logs,        \
	          (c).deliveries, (c).hook_runs)

/* A delivery as the handler would fill it before store_apply. */
static struct delivery make_delivery(int64_t when, const char *body)
{
	struct delivery d;

	memset(&d, 0, sizeof d);
	d.received_ms = when;
	d.remote_addr = "192.0.2.7";
	d.scheme = "hex";
	d.has_body = true;
	sha256(body, strlen(body), d.body_sha256);
	d.body_size = strlen(body);
	return d;
}

/* An event with only an id and a status; the strings stay the caller's. */
static struct event make_event(char *id, const char *status, char *name)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.image_id = id;
	ev.status = status;
	ev.event_name = name;
	ev.require_signed_urls = -1;
	return ev;
}

static const struct hook_ref two_hooks[] = {
    {"uploaded", "/etc/cfimages-webhook/hooks/uploaded"},
    {"uploaded.d/10-thumbs", "/etc/cfimages-webhook/hooks/uploaded.d/10-thumbs"},
};

static bool same_stat_time(const struct stat *a, const struct stat *b)
{
	return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Files and the directory get db_mode (and its x-where-r form) exactly, under any umask. */
static void test_modes(void)
{
	static const mode_t umasks[] = {022, 077};
	static const unsigned modes[] = {0600, 0660};
	char path[512], side[600], sub[64];
	struct stat sb;

	for (size_t u = 0; u < 2; u++) {
		for (size_t m = 0; m < 2; m++) {
			mode_t old = umask(umasks[u]);
			struct store *st;
			unsigned want_dir = modes[m] == 0600 ? 0700 : 0770;

			snprintf(sub, sizeof sub, "dir%zu%zu/", u, m);
			new_path(path, sizeof path, sub);
			st = open_db(path, modes[m], true, true);
			CHECK(st != NULL);
			CHECK(stat(path, &sb) == 0);
			CHECK_MSG((sb.st_mode & 07777) == modes[m], "db mode %o under umask %o",
			          (unsigned)(sb.st_mode & 07777), (unsigned)umasks[u]);
			*strrchr(path, '/') = '\0';
			CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
			CHECK_MSG((sb.st_mode & 07777) == want_dir, "dir mode %o under umask %o",
			          (unsigned)(sb.st_mode & 07777), (unsigned)umasks[u]);
			path[strlen(path)] = '/';
			if (st != NULL) {
				CHECK(store_register(st, "modes/1", NULL, -1) == 1);
				snprintf(side, sizeof side, "%s-wal", path);
				CHECK(stat(side, &sb) == 0);
				CHECK_MSG((sb.st_mode & 07777) == modes[m], "wal mode %o",
				          (unsigned)(sb.st_mode & 07777));
				snprintf(side, sizeof side, "%s-shm", path);
				CHECK(stat(side, &sb) == 0);
				CHECK_MSG((sb.st_mode & 07777) == modes[m], "shm mode %o",
				          (unsigned)(sb.st_mode & 07777));
			}
			store_close(st);
			umask(old);
		}
	}
}

/* Without create, a missing file is an error that says how to make one, and nothing is made. */
static void test_missing_without_create(void)
{
	struct store_options o = {.db_mode = 0600, .durable = true, .create = false};
	char path[512], err[512] = "";
	struct stat sb;

	new_path(path, sizeof path, "missing/");
	o.path = path;
	CHECK(store_open(&o, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, "no database at ") != NULL && strstr(err, path) != NULL &&
	              strstr(err, "cfimages-webhook init") != NULL,
	          "err: %s", err);
	CHECK(stat(path, &sb) != 0 && errno == ENOENT);
	*strrchr(path, '/') = '\0';
	CHECK(stat(path, &sb) != 0 && errno == ENOENT);
}

/* A new database is at STORE_SQLITE_SCHEMA_VERSION, in WAL mode; reopening changes nothing. */
static void test_schema_and_reopen(void)
{
	char path[512];
	struct store *st;

	st = new_db(path, sizeof path, NULL, true);
	if (st == NULL)
		return;
	CHECK(store_schema_version(st) == STORE_SQLITE_SCHEMA_VERSION);
	CHECK(q_int(st, "PRAGMA user_version", NULL) == 4);
	CHECK_SQL(st, "PRAGMA journal_mode", NULL, "wal");
	CHECK(q_int(st, "PRAGMA cache_size", NULL) == -STORE_CACHE_KIB);
	CHECK(q_int(st,
	            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
	            "('cloudflare_images', 'cloudflare_image_logs', 'webhook_deliveries', "
	            "'hook_runs')",
	            NULL) == 4);
	CHECK(q_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'index'", NULL) == 7);
	/* no index by time on the deliveries: every delivery would pay for it */
	CHECK(q_int(st, "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'webhook_deliveries'"
	                " AND type = 'index' AND sql LIKE '%received_at%'",
	            NULL) == 0);
	CHECK_SQL(st, "SELECT group_concat(name, ',') FROM pragma_table_info('cloudflare_images')",
	          NULL,
	          "cloudflare_id,status,filename,metadata,variants,require_signed_urls,error,"
	          "uploaded_at,expires_at,result,created_at,updated_at");
	CHECK_SQL(st,
	          "SELECT group_concat(name, ',') FROM pragma_table_info('cloudflare_image_logs')",
	          NULL, "id,image_id,event_type,message,data,timestamp,delivery_id");
	CHECK_SQL(st, "SELECT group_concat(name, ',') FROM pragma_table_info('webhook_deliveries')",
	          NULL,
	          "id,received_at,status_code,reason,remote_addr,scheme,message_id,image_id,"
	          "body_sha256,body_size");
	CHECK_SQL(st, "SELECT group_concat(name, ',') FROM pragma_table_info('hook_runs')", NULL,
	          "id,image_id,status,hook,path,state,attempts,exit_code,output,next_attempt_at,"
	          "created_at,finished_at,previous_status,event,input,delivery_id,started_at,pgid,"
	          "pg_start,lease_until,host");
	/* an application may insert a pending row itself, with only the id */
	exec_sql(st, "INSERT INTO cloudflare_images (cloudflare_id) VALUES ('app/1')");
	CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "app/1",
	          "pending");
	CHECK(q_int(st,
	            "SELECT length(created_at) = 24 AND created_at LIKE '____-__-__T__:__:__.___Z'"
	            " AND updated_at = created_at FROM cloudflare_images",
	            NULL) == 1);
	store_close(st);

	st = open_db(path, 0600, false, true);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_schema_version(st) == STORE_SQLITE_SCHEMA_VERSION);
	CHECK(q_int(st, "SELECT count(*) FROM sqlite_master", NULL) == 11);
	CHECK(q_int(st, "SELECT count(*) FROM cloudflare_images", NULL) == 1);
	store_close(st);
}

/* A version 2 database loses its index on received_at, and nothing else. */
static void test_upgrade_from_2(void)
{
	char path[512];
	struct store *st;

	st = new_db(path, sizeof path, NULL, true);
	if (st == NULL)
		return;
	exec_sql(st, "CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries(received_at);"
	             "INSERT INTO webhook_deliveries (received_at, status_code, reason) VALUES"
	             " ('" T0_TEXT "', 200, 'applied');"
	             "PRAGMA user_version = 2");
	store_close(st);
	st = open_db(path, 0600, false, true);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_schema_version(st) == STORE_SQLITE_SCHEMA_VERSION);
	CHECK(q_int(st, "SELECT count(*) FROM sqlite_master WHERE name ="
	                " 'webhook_deliveries_received_at'",
	            NULL) == 0);
	CHECK(q_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'index'", NULL) == 7);
	CHECK(q_int(st, "SELECT count(*) FROM webhook_deliveries", NULL) == 1);
	store_close(st);
}

/* The outbox's indexes: only the queued runs by due time, only the running ones by image. */
#define OUTBOX_INDEXES                                                                        \
	"SELECT group_concat(name || ':' || sql, ';') FROM (SELECT name, sql FROM sqlite_master" \
	" WHERE type = 'index' AND tbl_name = 'hook_runs' ORDER BY name)"
#define OUTBOX_INDEXES_V4                                                                     \
	"hook_runs_queued:CREATE INDEX hook_runs_queued ON hook_runs(next_attempt_at)"           \
	" WHERE state = 'queued';hook_runs_running:CREATE INDEX hook_runs_running"               \
	" ON hook_runs(image_id) WHERE state = 'running'"

/*
 * Version 3 to 4: the whole-table indexes of hook_runs give way to the
 * partial ones, and the runs stay; a new database has the same.
 */
static void test_upgrade_from_3(void)
{
	char path[512];
	struct store *st;

	st = new_db(path, sizeof path, NULL, true);
	if (st == NULL)
		return;
	CHECK_SQL(st, OUTBOX_INDEXES, NULL, OUTBOX_INDEXES_V4);
	exec_sql(st, "DROP INDEX hook_runs_queued; DROP INDEX hook_runs_running;"
	             "CREATE INDEX hook_runs_due ON hook_runs(state, next_attempt_at);"
	             "CREATE INDEX hook_runs_image ON hook_runs(image_id, state);"
	             "INSERT INTO hook_runs (image_id, status, hook, path, next_attempt_at,"
	             " created_at) VALUES ('up/3', 'uploaded', 'uploaded', '/x', '" T0_TEXT "', '"
	             T0_TEXT "');"
	             "PRAGMA user_version = 3");
	store_close(st);
	st = open_db(path, 0600, false, true);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_schema_version(st) == 4);
	CHECK_SQL(st, OUTBOX_INDEXES, NULL, OUTBOX_INDEXES_V4);
	CHECK_SQL(st, "SELECT image_id || '|' || state FROM hook_runs", NULL, "up/3|queued");
	store_close(st);
}

/* A database from a newer program is refused, named with both versions, and left as it was. */
static void test_newer_refused(void)
{
	char path[512], side[600], err[512] = "";
	struct store_options o = {.db_mode = 0600, .durable = true, .create = true};
	struct stat before, after, sb;
	char *bytes_before, *bytes_after;
	size_t len_before = 0, len_after = 0;
	sqlite3 *db = NULL;

	new_path(path, sizeof path, NULL);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
	                   "CREATE TABLE future (x); INSERT INTO future VALUES (1);"
	                   " PRAGMA user_version = 99",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	bytes_before = test_read_file(path, &len_before);
	CHECK(stat(path, &before) == 0);
	/* make a rewrite visible even within the file system's timestamp granularity */
	sleep(1);

	o.path = path;
	CHECK(store_open(&o, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, "99") != NULL && strstr(err, "version") != NULL &&
	              strstr(err, "program's 4") != NULL,
	          "err: %s", err);
	bytes_after = test_read_file(path, &len_after);
	CHECK(stat(path, &after) == 0);
	CHECK(bytes_before != NULL && bytes_after != NULL && len_before == len_after &&
	      memcmp(bytes_before, bytes_after, len_before) == 0);
	CHECK(same_stat_time(&before, &after));
	snprintf(side, sizeof side, "%s-wal", path);
	CHECK(stat(side, &sb) != 0);
	free(bytes_before);
	free(bytes_after);
}

/* A user_version 0 database with other tables gains ours; theirs are kept. */
static void test_foreign_database(void)
{
	char path[512], err[512] = "";
	struct store_options o = {.db_mode = 0600, .durable = true, .create = false};
	struct store *st;
	sqlite3 *db = NULL;

	new_path(path, sizeof path, NULL);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
	                   "CREATE TABLE app_users (name TEXT); INSERT INTO app_users"
	                   " VALUES ('ann')",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	st = open_db(path, 0600, false, true);
	CHECK(st != NULL);
	if (st != NULL) {
		CHECK(store_schema_version(st) == STORE_SQLITE_SCHEMA_VERSION);
		CHECK_SQL(st, "SELECT name FROM app_users", NULL, "ann");
		CHECK(q_int(st, "SELECT count(*) FROM hook_runs", NULL) == 0);
		store_close(st);
	}

	/* a same-named table with other columns is reported, not used */
	new_path(path, sizeof path, NULL);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE cloudflare_images (cloudflare_id TEXT, state TEXT)",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	o.path = path;
	CHECK(store_open(&o, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, path) != NULL && strstr(err, "status") != NULL, "err: %s", err);
}

/* register is idempotent: a second call leaves the row and writes no log row. */
static void test_register(struct store *st)
{
	struct counts c;

	CHECK(store_register(st, "reg/1", "{\"owner\":\"ann\"}", T0_MS) == 1);
	CHECK(store_register(st, "reg/1", "{\"owner\":\"bob\"}", -1) == 0);
	CHECK(store_register(st, "reg/2", NULL, -1) == 1);
	c = get_counts(st);
	CHECK_COUNTS(c, 2, 2, 0, 0);
	CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "reg/1",
	          "pending");
	CHECK_SQL(st, "SELECT metadata FROM cloudflare_images WHERE cloudflare_id = ?", "reg/1",
	          "{\"owner\":\"ann\"}");
	CHECK_SQL(st, "SELECT expires_at FROM cloudflare_images WHERE cloudflare_id = ?", "reg/1",
	          T0_TEXT);
	CHECK_SQL(st, "SELECT expires_at FROM cloudflare_images WHERE cloudflare_id = ?", "reg/2",
	          NULL);
	CHECK_SQL(st,
	          "SELECT group_concat(event_type) FROM cloudflare_image_logs WHERE image_id = ?",
	          "reg/1", "registered");
	CHECK(q_int(st,
	            "SELECT count(*) FROM cloudflare_images WHERE created_at = updated_at"
	            " AND created_at LIKE '20__-__-__T__:__:__.___Z'",
	            NULL) == 2);
}

/* 404 without auto_register: only the delivery row, committed without FULL sync. */
static void test_not_found(struct store *st)
{
	static const char body[] = "{\"id\":\"nf/1\",\"uploaded\":\"2023-11-14T22:13:20Z\"}";
	struct counts before = get_counts(st), after;
	char id[] = "nf/1", name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS, body);
	char hex[2 * SHA256_BYTES + 1];

	d.message_id = "msg_nf";
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_NOT_FOUND);
	CHECK(d.status_code == 404);
	CHECK_STR(d.reason, "not_found");
	CHECK(d.id > 0);
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs, before.deliveries + 1, before.hook_runs);
	CHECK(q_int(st, "PRAGMA synchronous", NULL) == 1);
	CHECK(q_int(st,
	            "SELECT count(*) FROM webhook_deliveries WHERE status_code = 404 AND"
	            " reason = 'not_found' AND image_id = 'nf/1' AND scheme = 'hex' AND"
	            " remote_addr = '192.0.2.7' AND message_id = 'msg_nf' AND body_size = 47"
	            " AND received_at = '" T0_TEXT "'",
	            NULL) == 1);
	hex_encode(d.body_sha256, SHA256_BYTES, hex);
	CHECK_SQL(st, "SELECT body_sha256 FROM webhook_deliveries WHERE image_id = ?", "nf/1", hex);
}

/* auto_register creates the row; its previous status is "" in the hook run. */
static void test_auto_register(struct store *st)
{
	static const char body[] = "{\"id\":\"auto/1\",\"uploaded\":\"2023-11-14T22:13:20Z\"}";
	struct counts before = get_counts(st), after;
	char id[] = "auto/1", name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS, body);

	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 1, true, &d) == STORE_APPLIED);
	CHECK(d.status_code == 200);
	CHECK_STR(d.reason, "applied");
	after = get_counts(st);
	CHECK_COUNTS(after, before.images + 1, before.logs + 1, before.deliveries + 1,
	             before.hook_runs + 1);
	CHECK(q_int(st, "PRAGMA synchronous", NULL) == 2);
	CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "auto/1",
	          "uploaded");
	CHECK_SQL(st,
	          "SELECT created_at || ' ' || updated_at FROM cloudflare_images"
	          " WHERE cloudflare_id = ?",
	          "auto/1", T0_TEXT " " T0_TEXT);
	CHECK_SQL(st, "SELECT '[' || previous_status || ']' FROM hook_runs WHERE image_id = ?",
	          "auto/1", "[]");
	CHECK_SQL(st, "SELECT message FROM cloudflare_image_logs WHERE image_id = ?", "auto/1",
	          "(new) -> uploaded");
}

/* The same status again: a duplicate row and log row; the image and its hooks untouched. */
static void test_duplicate(struct store *st)
{
	static const char body[] = "{\"id\":\"auto/1\",\"uploaded\":\"2023-11-14T22:13:21Z\","
	                           "\"filename\":\"changed.png\"}";
	struct counts before = get_counts(st), after;
	char id[] = "auto/1", name[] = "upload.complete", filename[] = "changed.png";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS + 60000, body);

	ev.filename = filename;
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_DUPLICATE);
	CHECK(d.status_code == 200);
	CHECK_STR(d.reason, "duplicate");
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs + 1, before.deliveries + 1,
	             before.hook_runs);
	CHECK_SQL(st, "SELECT updated_at FROM cloudflare_images WHERE cloudflare_id = ?", "auto/1",
	          T0_TEXT);
	CHECK_SQL(st, "SELECT filename FROM cloudflare_images WHERE cloudflare_id = ?", "auto/1",
	          NULL);
	CHECK(q_int(st,
	            "SELECT count(*) FROM cloudflare_image_logs l JOIN webhook_deliveries d"
	            " ON d.id = l.delivery_id WHERE l.image_id = ? AND l.event_type = 'duplicate'"
	            " AND d.reason = 'duplicate'",
	            "auto/1") == 1);
}

/* pending -> uploaded: the fields, the log row and one queued run per hook, body as input. */
static void test_pending_to_uploaded(struct store *st)
{
	static const char body[] =
	    "{\"id\":\"img/2\",\"uploaded\":\"2023-11-14T22:13:20.5Z\",\"filename\":\"cat.png\","
	    "\"metadata\":{\"k\":\"v\"},\"variants\":[\"https://imagedelivery.net/a/img/2/"
	    "public\"],"
	    "\"requireSignedURLs\":true,\"extra\":\"kept\"}";
	struct counts before, after;
	char id[] = "img/2", name[] = "upload.complete", filename[] = "cat.png",
	     meta[] = "{\"k\":\"v\"}",
	     variants[] = "[\"https://imagedelivery.net/a/img/2/public\"]";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS + 1000, body);
	sqlite3_stmt *s = NULL;
	int rows = 0;

	CHECK(store_register(st, "img/2", "{\"old\":1}", -1) == 1);
	before = get_counts(st);
	ev.filename = filename;
	ev.metadata_json = meta;
	ev.variants_json = variants;
	ev.require_signed_urls = 1;
	ev.has_uploaded = true;
	ev.uploaded_ms = 1700000000500;
	d.message_id = "msg_2";
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_APPLIED);
	CHECK(d.status_code == 200);
	CHECK_STR(d.reason, "applied");
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs + 1, before.deliveries + 1,
	             before.hook_runs + 2);
	CHECK_SQL(st,
	          "SELECT status || '|' || filename || '|' || metadata || '|' || variants || '|' ||"
	          " require_signed_urls || '|' || uploaded_at || '|' || updated_at ||"
	          " '|' || ifnull(error, 'NULL') || '|' || ifnull(result, 'NULL')"
	          " FROM cloudflare_images WHERE cloudflare_id = ?",
	          "img/2",
	          "uploaded|cat.png|{\"k\":\"v\"}|[\"https://imagedelivery.net/a/img/2/public\"]|1|"
	          "2023-11-14T22:13:20.500Z|2023-11-14T22:13:21.123Z|NULL|NULL");
	CHECK_SQL(
	    st,
	    "SELECT event_type || '|' || message || '|' || timestamp FROM cloudflare_image_logs"
	    " WHERE image_id = ? ORDER BY id DESC LIMIT 1",
	    "img/2", "status_changed|pending -> uploaded|2023-11-14T22:13:21.123Z");
	CHECK_SQL(st,
	          "SELECT data FROM cloudflare_image_logs WHERE image_id = ? ORDER BY id DESC"
	          " LIMIT 1",
	          "img/2", body);
	CHECK(q_int(st,
	            "SELECT delivery_id FROM cloudflare_image_logs WHERE image_id = ?"
	            " ORDER BY id DESC LIMIT 1",
	            "img/2") == d.id);

	CHECK(sqlite3_prepare_v2(store_db(st),
	                         "SELECT hook, path, state, attempts, next_attempt_at, created_at,"
	                         " previous_status, event, input, delivery_id, status, exit_code,"
	                         " finished_at, typeof(input) FROM hook_runs WHERE image_id = ?"
	                         " ORDER BY id",
	                         -1, &s, NULL) == SQLITE_OK);
	sqlite3_bind_text(s, 1, "img/2", -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		CHECK(rows < 2);
		if (rows >= 2)
			break;
		CHECK_STR((const char *)sqlite3_column_text(s, 0), two_hooks[rows].name);
		CHECK_STR((const char *)sqlite3_column_text(s, 1), two_hooks[rows].path);
		CHECK_STR((const char *)sqlite3_column_text(s, 2), "queued");
		CHECK(sqlite3_column_int(s, 3) == 0);
		CHECK_STR((const char *)sqlite3_column_text(s, 4), "2023-11-14T22:13:21.123Z");
		CHECK_STR((const char *)sqlite3_column_text(s, 5), "2023-11-14T22:13:21.123Z");
		CHECK_STR((const char *)sqlite3_column_text(s, 6), "pending");
		CHECK_STR((const char *)sqlite3_column_text(s, 7), "upload.complete");
		CHECK(sqlite3_column_bytes(s, 8) == (int)strlen(body) &&
		      memcmp(sqlite3_column_blob(s, 8), body, strlen(body)) == 0);
		CHECK(sqlite3_column_int64(s, 9) == d.id);
		CHECK_STR((const char *)sqlite3_column_text(s, 10), "uploaded");
		CHECK(sqlite3_column_type(s, 11) == SQLITE_NULL);
		CHECK(sqlite3_column_type(s, 12) == SQLITE_NULL);
		CHECK_STR((const char *)sqlite3_column_text(s, 13), "blob");
		rows++;
	}
	sqlite3_finalize(s);
	CHECK(rows == 2);
}

/* Out of uploaded to failed: stale, logged, nothing else. */
static void test_stale(struct store *st)
{
	static const char body[] = "{\"id\":\"img/2\",\"error\":\"late failure\"}";
	struct counts before = get_counts(st), after;
	char id[] = "img/2", name[] = "upload.failed", error[] = "late failure";
	struct event ev = make_event(id, "failed", name);
	struct delivery d = make_delivery(T0_MS + 2000, body);

	ev.error_text = error;
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_STALE);
	CHECK(d.status_code == 200);
	CHECK_STR(d.reason, "stale");
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs + 1, before.deliveries + 1,
	             before.hook_runs);
	CHECK_SQL(st,
	          "SELECT status || '|' || ifnull(error, 'NULL') || '|' || updated_at"
	          " FROM cloudflare_images WHERE cloudflare_id = ?",
	          "img/2", "uploaded|NULL|2023-11-14T22:13:21.123Z");
	CHECK_SQL(st,
	          "SELECT event_type || '|' || message FROM cloudflare_image_logs"
	          " WHERE image_id = ? ORDER BY id DESC LIMIT 1",
	          "img/2", "stale|uploaded -> failed not applied (stale)");
}

/* failed, then uploaded: both applied; the error is cleared, earlier fields kept. */
static void test_failed_then_uploaded(struct store *st)
{
	static const char body1[] = "{\"id\":\"img/3\",\"error\":\"boom\",\"metadata\":{\"a\":1}}";
	static const char body2[] = "{\"id\":\"img/3\",\"uploaded\":\"2023-11-14T22:13:25Z\"}";
	char id[] = "img/3", n1[] = "upload.failed", n2[] = "upload.complete", error[] = "boom",
	     meta[] = "{\"a\":1}";
	struct event ev1 = make_event(id, "failed", n1), ev2 = make_event(id, "uploaded", n2);
	struct delivery d1 = make_delivery(T0_MS + 3000, body1), d2;
	struct counts before;

	CHECK(store_register(st, "img/3", NULL, -1) == 1);
	before = get_counts(st);
	ev1.error_text = error;
	ev1.metadata_json = meta;
	CHECK(store_apply(st, &ev1, body1, strlen(body1), NULL, 0, false, &d1) == STORE_APPLIED);
	CHECK_SQL(st,
	          "SELECT status || '|' || error || '|' || metadata FROM cloudflare_images"
	          " WHERE cloudflare_id = ?",
	          "img/3", "failed|boom|{\"a\":1}");
	d2 = make_delivery(T0_MS + 4000, body2);
	ev2.has_uploaded = true;
	ev2.uploaded_ms = 1700000005000;
	CHECK(store_apply(st, &ev2, body2, strlen(body2), two_hooks, 1, false, &d2) ==
	      STORE_APPLIED);
	CHECK_SQL(st,
	          "SELECT status || '|' || ifnull(error, 'NULL') || '|' || metadata || '|' ||"
	          " uploaded_at FROM cloudflare_images WHERE cloudflare_id = ?",
	          "img/3", "uploaded|NULL|{\"a\":1}|2023-11-14T22:13:25.000Z");
	CHECK_SQL(st, "SELECT previous_status FROM hook_runs WHERE image_id = ?", "img/3",
	          "failed");
	CHECK(q_int(st, "SELECT count(*) FROM hook_runs WHERE image_id = ?", "img/3") == 1);
	CHECK(get_counts(st).hook_runs == before.hook_runs + 1);
}

/* A job: queued -> completed with its result stored. */
static void test_job(struct store *st)
{
	static const char body1[] = "{\"event\":\"job.queued\",\"job_id\":\"job/7\"}";
	static const char body2[] = "{\"event\":\"job.completed\",\"job_id\":\"job/7\","
	                            "\"result\":{\"width\":800}}";
	char id[] = "job/7", n1[] = "job.queued", n2[] = "job.completed",
	     result[] = "{\"width\":800}";
	struct event ev1 = make_event(id, "queued", n1), ev2 = make_event(id, "completed", n2);
	struct delivery d1 = make_delivery(T0_MS + 5000, body1),
	                d2 = make_delivery(T0_MS + 6000, body2);
	static const struct hook_ref hook = {"completed", "/hooks/completed"};

	CHECK(store_register(st, "job/7", NULL, -1) == 1);
	CHECK(store_apply(st, &ev1, body1, strlen(body1), NULL, 0, false, &d1) == STORE_APPLIED);
	ev2.result_json = result;
	CHECK(store_apply(st, &ev2, body2, strlen(body2), &hook, 1, false, &d2) == STORE_APPLIED);
	CHECK_SQL(st,
	          "SELECT status || '|' || result FROM cloudflare_images"
	          " WHERE cloudflare_id = ?",
	          "job/7", "completed|{\"width\":800}");
	CHECK_SQL(st,
	          "SELECT previous_status || '|' || event || '|' || hook FROM hook_runs"
	          " WHERE image_id = ?",
	          "job/7", "queued|job.completed|completed");
	/* out of completed, even to failed, is stale */
	d1 = make_delivery(T0_MS + 7000, body1);
	CHECK(store_apply(st, &ev1, body1, strlen(body1), NULL, 0, false, &d1) == STORE_STALE);
}

/*
 * show: one line, keys in the order of cfimages-webhook(8), JSON columns embedded as stored
 * (less the whitespace between tokens: numbers and escapes byte for byte,
 * never re-printed), junk kept as a string.
 */
static void test_show(struct store *st)
{
	char *json = NULL;

	exec_sql(st, "INSERT INTO cloudflare_images VALUES ('show/1', 'uploaded', 'a.png',"
	             " '{\"a\": [1, 2],\n \"b\": \"\\u00e9\"}', '[\"https://x.example/1\"]', 1,"
	             " NULL, '2024-01-02T03:04:05.678Z', NULL, 'not json {',"
	             " '2024-01-01T00:00:00.000Z', '2024-01-02T03:04:05.679Z')");
	CHECK(store_show_json(st, "show/1", &json) == 1);
	CHECK_STR(json, "{\"id\":\"show/1\",\"status\":\"uploaded\",\"metadata\":{\"a\":[1,2],"
	                "\"b\":\"\\u00e9\"},\"variants\":[\"https://x.example/1\"],"
	                "\"result\":\"not json {\",\"error\":null,"
	                "\"uploaded_at\":\"2024-01-02T03:04:05.678Z\",\"expires_at\":null,"
	                "\"created_at\":\"2024-01-01T00:00:00.000Z\","
	                "\"updated_at\":\"2024-01-02T03:04:05.679Z\"}");
	free(json);
	json = NULL;

	/* an error text with quotes and a newline stays one line of valid JSON */
	exec_sql(st, "INSERT INTO cloudflare_images (cloudflare_id, status, error, metadata,"
	             " created_at, updated_at) VALUES ('show/2', 'failed', 'bad \"x\"' || char(10),"
	             " '\"\\u0000\"', 'c', 'u')");
	CHECK(store_show_json(st, "show/2", &json) == 1);
	CHECK_STR(json, "{\"id\":\"show/2\",\"status\":\"failed\",\"metadata\":\"\\u0000\","
	                "\"variants\":null,\"result\":null,\"error\":\"bad \\\"x\\\"\\n\","
	                "\"uploaded_at\":null,\"expires_at\":null,\"created_at\":\"c\","
	                "\"updated_at\":\"u\"}");
	free(json);
	json = NULL;

	/* numbers a double cannot hold keep every digit */
	exec_sql(st, "INSERT INTO cloudflare_images (cloudflare_id, status, metadata, result,"
	             " created_at, updated_at) VALUES ('show/3', 'completed',"
	             " '{\"userId\":1234567890123456789,\"big\":1e400}', '{\"n\": -0.0E-0}',"
	             " 'c', 'u')");
	CHECK(store_show_json(st, "show/3", &json) == 1);
	CHECK_STR(json, "{\"id\":\"show/3\",\"status\":\"completed\","
	                "\"metadata\":{\"userId\":1234567890123456789,\"big\":1e400},"
	                "\"variants\":null,\"result\":{\"n\":-0.0E-0},\"error\":null,"
	                "\"uploaded_at\":null,\"expires_at\":null,\"created_at\":\"c\","
	                "\"updated_at\":\"u\"}");
	free(json);
	json = (char *)"untouched";
	CHECK(store_show_json(st, "show/none", &json) == 0);
	CHECK(json == NULL);
}

/* message_seen: only a 200 for that webhook-id counts. */
static void test_message_seen(struct store *st)
{
	static const char body[] = "{}";
	struct delivery d = make_delivery(T0_MS, body);
	bool seen = true;

	d.status_code = 401;
	d.reason = "invalid_signature";
	d.scheme = NULL;
	d.message_id = "msg_401";
	CHECK(store_record(st, &d) == 0);
	CHECK(store_message_seen(st, "msg_401", &seen) == 0 && !seen);
	CHECK(store_message_seen(st, "msg_2", &seen) == 0 && seen);
	CHECK(store_message_seen(st, "msg_nf", &seen) == 0 && !seen);
	CHECK(store_message_seen(st, "never", &seen) == 0 && !seen);
	CHECK(q_int(st,
	            "SELECT count(*) FROM pragma_index_list('webhook_deliveries')"
	            " WHERE name = 'webhook_deliveries_message_id' AND partial = 1",
	            NULL) == 1);
}

/* store_record: one row, NULL scheme and body columns when absent, NORMAL sync. */
static void test_record(struct store *st)
{
	struct counts before = get_counts(st), after;
	struct delivery d;

	memset(&d, 0, sizeof d);
	d.received_ms = T0_MS;
	d.status_code = 403;
	d.reason = "forbidden";
	d.remote_addr = "198.51.100.1";
	CHECK(store_record(st, &d) == 0);
	CHECK(d.id > 0);
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs, before.deliveries + 1, before.hook_runs);
	CHECK(q_int(st, "PRAGMA synchronous", NULL) == 1);
	CHECK(q_int(st,
	            "SELECT count(*) FROM webhook_deliveries WHERE reason = 'forbidden' AND"
	            " status_code = 403 AND scheme IS NULL AND message_id IS NULL AND image_id IS"
	            " NULL AND body_sha256 IS NULL AND body_size IS NULL AND remote_addr ="
	            " '198.51.100.1' AND received_at = '" T0_TEXT "'",
	            NULL) == 1);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A writer holding the lock past the busy timeout: a 500, nothing committed, no hang. */
static void test_busy(const char *path)
{
	static const char body[] = "{\"id\":\"busy/1\",\"uploaded\":\"2023-11-14T22:13:20Z\"}";
	struct store *st = open_db(path, 0600, false, true);
	char id[] = "busy/1", name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS, body);
	struct counts before, after;
	sqlite3 *other = NULL;
	double t;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_register(st, "busy/1", NULL, -1) == 1);
	before = get_counts(st);
	CHECK(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	store_set_busy_timeout(st, SHORT_BUSY_MS);
	t = now_seconds();
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_ERROR);
	t = now_seconds() - t;
	CHECK_MSG(t >= SHORT_BUSY_MS / 1000.0 * 0.9 && t < 3.0, "waited %.3f s", t);
	CHECK(d.status_code == 500);
	CHECK_STR(d.reason, "internal_error");
	d = make_delivery(T0_MS, body);
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, true, &d) == STORE_ERROR);
	CHECK(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(other);
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs, before.deliveries, before.hook_runs);
	CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "busy/1",
	          "pending");
	/* the handle is still usable once the lock is gone */
	d = make_delivery(T0_MS, body);
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_APPLIED);
	store_close(st);
}

/* What the busy handler below does to the database while store_apply waits to BEGIN. */
struct race {
	sqlite3 *other;  /* holds BEGIN IMMEDIATE until the handler runs */
	const char *sql; /* run on other, then COMMIT */
	int calls;
};

/* A busy handler that lets another writer change the image between look-up and BEGIN. */
static int race_busy(void *arg, int count)
{
	struct race *r = arg;

	(void)count;
	if (r->calls++ == 0) {
		CHECK(sqlite3_exec(r->other, r->sql, NULL, NULL, NULL) == SQLITE_OK);
		CHECK(sqlite3_exec(r->other, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	}
	return r->calls < 50;
}

/*
 * The image appears (or vanishes) between store_apply's look-up and its
 * BEGIN: a registration made meanwhile is applied, and with the durable
 * setting although the look-up chose NORMAL; a vanished one is a 404.
 */
static void test_races(const char *path)
{
	static const char body[] = "{\"id\":\"race/1\",\"uploaded\":\"2023-11-14T22:13:20Z\"}";
	struct store *st = open_db(path, 0600, false, true);
	char id[] = "race/1", name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS, body);
	struct race r = {NULL, NULL, 0};
	struct counts before, after;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(sqlite3_open_v2(path, &r.other, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);

	r.sql = "INSERT INTO cloudflare_images (cloudflare_id) VALUES ('race/1')";
	CHECK(sqlite3_exec(r.other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_busy_handler(store_db(st), race_busy, &r);
	before = get_counts(st);
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 1, false, &d) == STORE_APPLIED);
	CHECK(r.calls == 1);
	CHECK(q_int(st, "PRAGMA synchronous", NULL) == 2);
	after = get_counts(st);
	CHECK_COUNTS(after, before.images + 1, before.logs + 1, before.deliveries + 1,
	             before.hook_runs + 1);
	CHECK_SQL(st, "SELECT previous_status FROM hook_runs WHERE image_id = ?", "race/1",
	          "pending");

	r.sql = "DELETE FROM cloudflare_images WHERE cloudflare_id = 'race/1'";
	r.calls = 0;
	CHECK(sqlite3_exec(r.other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	ev.status = "failed";
	d = make_delivery(T0_MS + 1, body);
	before = get_counts(st);
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 1, false, &d) == STORE_NOT_FOUND);
	CHECK(r.calls == 1);
	after = get_counts(st);
	CHECK_COUNTS(after, before.images - 1, before.logs, before.deliveries + 1,
	             before.hook_runs);
	store_set_busy_timeout(st, STORE_BUSY_TIMEOUT_MS);
	sqlite3_close(r.other);
	store_close(st);
}

/*
 * Any other error inside the transaction rolls back all of it (image,
 * delivery, log row, earlier hook runs); a 500 row is then recorded alone.
 */
static void test_error_rolls_back(const char *path)
{
	static const char body[] = "{\"id\":\"err/1\",\"uploaded\":\"2023-11-14T22:13:20Z\"}";
	struct store *st = open_db(path, 0600, false, true);
	char id[] = "err/1", name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS, body);
	struct counts before, after;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK(store_register(st, "err/1", NULL, -1) == 1);
	/* the second hook run fails, after the first was written */
	exec_sql(st, "CREATE TEMP TRIGGER fail_second BEFORE INSERT ON hook_runs"
	             " WHEN (SELECT count(*) FROM hook_runs WHERE image_id = NEW.image_id) >= 1"
	             " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
	before = get_counts(st);
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_ERROR);
	CHECK(d.status_code == 500);
	CHECK_STR(d.reason, "internal_error");
	CHECK(d.id > 0);
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs, before.deliveries + 1, before.hook_runs);
	CHECK(q_int(st,
	            "SELECT count(*) FROM webhook_deliveries WHERE status_code = 500 AND"
	            " reason = 'internal_error' AND image_id = 'err/1'",
	            NULL) == 1);
	CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "err/1",
	          "pending");
	exec_sql(st, "DROP TRIGGER fail_second");
	d = make_delivery(T0_MS, body);
	CHECK(store_apply(st, &ev, body, strlen(body), two_hooks, 2, false, &d) == STORE_APPLIED);
	CHECK(q_int(st, "SELECT count(*) FROM hook_runs WHERE image_id = ?", "err/1") == 2);
	store_close(st);
}

/* expire: due pending/draft images move to expired, with log rows and hook runs. */
static void test_expire(struct store *st)
{
	static const struct hook_ref hook = {"expired", "/hooks/expired"};
	struct counts before, after;
	long n = -1;

	CHECK(store_register(st, "exp/past", NULL, T0_MS - 1) == 1);
	CHECK(store_register(st, "exp/now", NULL, T0_MS) == 1);
	CHECK(store_register(st, "exp/future", NULL, T0_MS + 1) == 1);
	CHECK(store_register(st, "exp/draft", NULL, T0_MS - 1000) == 1);
	CHECK(store_register(st, "exp/uploaded", NULL, T0_MS - 1000) == 1);
	exec_sql(st, "UPDATE cloudflare_images SET status = 'draft' WHERE cloudflare_id ="
	             " 'exp/draft'");
	exec_sql(st, "UPDATE cloudflare_images SET status = 'uploaded' WHERE cloudflare_id ="
	             " 'exp/uploaded'");
	before = get_counts(st);
	CHECK(store_expire(st, T0_MS, &hook, 1, &n) == 0);
	/* reg/1 (test_register) expires at T0 too */
	CHECK(n == 4);
	CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "reg/1",
	          "expired");
	after = get_counts(st);
	CHECK_COUNTS(after, before.images, before.logs + 4, before.deliveries,
	             before.hook_runs + 4);
	CHECK_SQL(st,
	          "SELECT group_concat(cloudflare_id || '=' || status, ' ') FROM (SELECT *"
	          " FROM cloudflare_images WHERE cloudflare_id LIKE 'exp/%' ORDER BY"
	          " cloudflare_id)",
	          NULL,
	          "exp/draft=expired exp/future=pending exp/now=expired exp/past=expired"
	          " exp/uploaded=uploaded");
	CHECK_SQL(st,
	          "SELECT CAST(input AS TEXT) || '|' || event || '|' || previous_status ||"
	          " '|' || status || '|' || next_attempt_at FROM hook_runs WHERE image_id = ?",
	          "exp/draft",
	          "{\"id\":\"exp/draft\",\"status\":\"expired\"}|expire|draft|expired|" T0_TEXT);
	CHECK_SQL(st,
	          "SELECT event_type || '|' || message || '|' || data FROM"
	          " cloudflare_image_logs WHERE image_id = ? ORDER BY id DESC LIMIT 1",
	          "exp/past",
	          "expired|pending -> expired|{\"id\":\"exp/past\",\"status\":\"expired\"}");
	CHECK(store_expire(st, T0_MS, &hook, 1, &n) == 0);
	CHECK(n == 0);
}

/*
 * expire compares instants, not text: expires_at written by an
 * application in another RFC 3339 form (an offset, no milliseconds, more
 * fraction digits, lower-case t and z) expires when its instant has
 * passed.  Each "wrong" row below is one that comparing the text with
 * T0_TEXT (2023-11-14T22:13:20.123Z) decides the other way.  A text that
 * is no RFC 3339 time never expires.
 */
static void test_expire_forms(struct store *st)
{
	long n = -1;

	exec_sql(st,
	         "INSERT INTO cloudflare_images (cloudflare_id, status, expires_at, created_at,"
	         " updated_at) VALUES"
	         /* T0 - 1 h at +05:00; wrong as text */
	         " ('form/past-offset', 'pending', '2023-11-15T02:13:20.123+05:00', 'c', 'u'),"
	         /* T0 + 1 h at -05:00; wrong as text */
	         " ('form/future-offset', 'pending', '2023-11-14T18:13:20.123-05:00', 'c', 'u'),"
	         /* exactly T0 at +01:00; wrong as text */
	         " ('form/now-offset', 'draft', '2023-11-14T23:13:20.123+01:00', 'c', 'u'),"
	         /* T0 - 123 ms, no milliseconds; wrong as text ('Z' sorts after '.') */
	         " ('form/past-no-ms', 'pending', '2023-11-14T22:13:20Z', 'c', 'u'),"
	         /* T0 - 1.123 s, lower case; wrong as text ('t' sorts after 'T') */
	         " ('form/past-lower', 'pending', '2023-11-14t22:13:19z', 'c', 'u'),"
	         /* T0 + 0.877 s, lower case */
	         " ('form/future-lower', 'pending', '2023-11-14t22:13:21z', 'c', 'u'),"
	         /* T0 - 1 ms with seven fraction digits; T0 + 1 ms */
	         " ('form/past-fraction', 'pending', '2023-11-14T22:13:20.1229999Z', 'c', 'u'),"
	         " ('form/future-ms', 'pending', '2023-11-14T22:13:20.124Z', 'c', 'u'),"
	         /* not RFC 3339: SQLite's datetime() form, and junk */
	         " ('form/sqlite-form', 'pending', '2000-01-01 00:00:00', 'c', 'u'),"
	         " ('form/junk', 'pending', 'yesterday', 'c', 'u')");
	CHECK(store_expire(st, T0_MS, NULL, 0, &n) == 0);
	CHECK(n == 5);
	CHECK_SQL(st,
	          "SELECT group_concat(cloudflare_id || '=' || status, ' ') FROM (SELECT *"
	          " FROM cloudflare_images WHERE cloudflare_id LIKE 'form/%' ORDER BY"
	          " cloudflare_id)",
	          NULL,
	          "form/future-lower=pending form/future-ms=pending form/future-offset=pending"
	          " form/junk=pending form/now-offset=expired form/past-fraction=expired"
	          " form/past-lower=expired form/past-no-ms=expired form/past-offset=expired"
	          " form/sqlite-form=pending");
	/* in the order of their instants */
	CHECK_SQL(st,
	          "SELECT group_concat(image_id, ' ') FROM (SELECT image_id FROM"
	          " cloudflare_image_logs WHERE event_type = 'expired' AND image_id LIKE 'form/%'"
	          " ORDER BY id)",
	          NULL,
	          "form/past-offset form/past-lower form/past-no-ms form/past-fraction"
	          " form/now-offset");
	/* an hour later the future ones are due too (and exp/future of test_expire) */
	CHECK(store_expire(st, T0_MS + 3600 * 1000, NULL, 0, &n) == 0);
	CHECK(n == 4);
	CHECK_SQL(st,
	          "SELECT group_concat(cloudflare_id, ' ') FROM (SELECT cloudflare_id FROM"
	          " cloudflare_images WHERE cloudflare_id LIKE 'form/%' AND status = 'pending'"
	          " ORDER BY cloudflare_id)",
	          NULL, "form/junk form/sqlite-form");
	exec_sql(st, "DELETE FROM cloudflare_images WHERE cloudflare_id LIKE 'form/%'");
}

/*
 * prune: old deliveries, log rows and finished runs go; queued and running
 * runs stay.  An old row added after a newer one (ids and times in
 * different orders) goes too, and the newer one stays.
 */
static void test_prune(const char *path)
{
	struct store *st = open_db(path, 0600, false, false);
	struct store_prune_counts pc = {-1, -1, -1};
	struct counts c;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	exec_sql(st,
	         "DELETE FROM webhook_deliveries; DELETE FROM cloudflare_image_logs;"
	         " DELETE FROM hook_runs;"
	         "INSERT INTO webhook_deliveries (received_at, status_code, reason) VALUES"
	         " ('2020-01-01T00:00:00.000Z', 200, 'applied'),"
	         " ('" T0_TEXT "', 200, 'applied'),"
	         " ('2023-11-14T22:13:20.122Z', 403, 'forbidden');"
	         "INSERT INTO cloudflare_image_logs (image_id, event_type, timestamp) VALUES"
	         " ('a', 'stale', '" T0_TEXT "'), ('a', 'stale', '2020-01-01T00:00:00.000Z');"
	         "INSERT INTO hook_runs (image_id, status, hook, path, state, next_attempt_at,"
	         " created_at, finished_at) VALUES"
	         " ('a', 'uploaded', 'h', '/h', 'done', 'x', '2020-01-01T00:00:00.000Z',"
	         "  '2020-01-01T00:00:01.000Z'),"
	         " ('a', 'uploaded', 'h', '/h', 'failed', 'x', '2020-01-01T00:00:00.000Z',"
	         "  '" T0_TEXT "'),"
	         " ('a', 'uploaded', 'h', '/h', 'queued', 'x', '2020-01-01T00:00:00.000Z', NULL),"
	         " ('a', 'uploaded', 'h', '/h', 'running', 'x', '2020-01-01T00:00:00.000Z',"
	         "  NULL)");
	CHECK(store_prune(st, T0_MS, &pc) == 0);
	CHECK(pc.deliveries == 2 && pc.logs == 1 && pc.hook_runs == 1);
	c = get_counts(st);
	CHECK(c.deliveries == 1 && c.logs == 1 && c.hook_runs == 3);
	CHECK(q_int(st, "SELECT id FROM webhook_deliveries WHERE received_at = '" T0_TEXT "'",
	            NULL) == 2);
	CHECK(q_int(st, "SELECT id FROM cloudflare_image_logs WHERE timestamp = '" T0_TEXT "'",
	            NULL) == 1);
	CHECK(q_int(st, "PRAGMA synchronous", NULL) == 1);
	store_close(st);
}

/* A 32-bit field of the database's wal-index (SQLite's -shm file, native byte order). */
static unsigned shm_u32(const char *path, off_t offset)
{
	char shm[600];
	unsigned v = 0;
	int fd;

	snprintf(shm, sizeof shm, "%s-shm", path);
	fd = open(shm, O_RDONLY);
	if (fd < 0 || pread(fd, &v, sizeof v, offset) != (ssize_t)sizeof v)
		v = 0;
	if (fd >= 0)
		close(fd);
	return v;
}

/* The wal-index header's mxFrame (frames in the log) and nBackfill (checkpointed). */
#define SHM_MX_FRAME 16
#define SHM_N_BACKFILL 96

/* Commits rejected deliveries' rows until the WAL holds at least frames frames. */
static void grow_wal(struct store *st, const char *path, unsigned frames)
{
	for (int i = 0; i < 20000 && shm_u32(path, SHM_MX_FRAME) < frames; i++) {
		struct delivery d = make_delivery(T0_MS, "{}");
		d.status_code = 403;
		d.reason = "forbidden";
		CHECK(store_record(st, &d) == 0);
	}
	CHECK_MSG(shm_u32(path, SHM_MX_FRAME) >= frames, "the WAL holds %u frames",
	          shm_u32(path, SHM_MX_FRAME));
}

/* A new database opened as a responder's (its checkpointer on), or NULL (counted). */
static struct store *new_responder_db(char *path, size_t cap, const char *sub)
{
	struct store_options o = {.path = path, .db_mode = 0600, .create = true, .responder = true};
	char err[512] = "";
	struct store *st;

	new_path(path, cap, sub);
	st = store_open(&o, err, sizeof err);
	CHECK_MSG(st != NULL, "%s", err);
	return st;
}

/*
 * A responder's checkpoints (man DATABASE): store_idle only asks its
 * checkpointer thread, which copies the WAL into the database on a
 * connection of its own; while another process holds DB-write.lock it
 * does not wait for it (an open file description lock taken here
 * conflicts with the checkpointer's); a long WAL, checkpointed whole,
 * starts over at the next commit.
 */
static void test_checkpointer(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	struct delivery d = make_delivery(T0_MS, "{}");
	char path[512], lock[600];
	struct store *st = new_responder_db(path, sizeof path, "ckpt");
	int fd;

	if (st == NULL)
		return;
	/* Past the 1000 frames after which the checkpointer is asked. */
	grow_wal(st, path, 1100);
	CHECK(shm_u32(path, SHM_N_BACKFILL) == 0);
	store_idle(st);
	sqlite_checkpoint_wait(SQ(st));
	CHECK_MSG(shm_u32(path, SHM_N_BACKFILL) >= 1100, "%u frames checkpointed",
	          shm_u32(path, SHM_N_BACKFILL));

	/* Past the 8000 after which it also takes the lock, held here. */
	snprintf(lock, sizeof lock, "%s-write.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
	grow_wal(st, path, 8100);
	store_idle(st);
	sqlite_checkpoint_wait(SQ(st)); /* returns: the lock is not waited for */
	CHECK(shm_u32(path, SHM_N_BACKFILL) == shm_u32(path, SHM_MX_FRAME));
	fl.l_type = F_UNLCK;
	CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
	if (fd >= 0)
		close(fd);
	/* Checkpointed whole: the next commit writes the WAL from its start. */
	d.status_code = 403;
	d.reason = "forbidden";
	CHECK(store_record(st, &d) == 0);
	CHECK_MSG(shm_u32(path, SHM_MX_FRAME) < 100, "the WAL holds %u frames",
	          shm_u32(path, SHM_MX_FRAME));
	store_close(st);
}

/*
 * The checkpointer's second pass while a writer of this process holds
 * DB-write.lock: it leaves the lock alone and the writer keeps it (the
 * checkpointer once opened and closed a descriptor of the file for each
 * pass, and closing any descriptor of a file gives up every record lock
 * the process holds on it).  Another process sees the lock held by us.
 */
static void test_checkpointer_keeps_writer_lock(void)
{
	char path[512], lock[600], seen = '?';
	struct store *st = new_responder_db(path, sizeof path, "ckpt-keeps");
	bool busy = true;
	int answer[2] = {-1, -1};
	pid_t child;

	if (st == NULL)
		return;
	snprintf(lock, sizeof lock, "%s-write.lock", path);
	grow_wal(st, path, 8100);
	CHECK(sqlite_write_lock(SQ(st), "testing", &busy) && !busy);
	store_idle(st);
	sqlite_checkpoint_wait(SQ(st));
	CHECK_MSG(shm_u32(path, SHM_N_BACKFILL) >= 8100, "%u frames checkpointed",
	          shm_u32(path, SHM_N_BACKFILL));
	/* The child answers through a pipe: under valgrind its exit status
	 * is valgrind's (the other threads' memory looks lost in a child). */
	CHECK(pipe(answer) == 0);
	child = fork();
	if (child == 0) {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		int fd = open(lock, O_RDWR | O_CLOEXEC);
		char c = fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK &&
		                 fl.l_pid == getppid()
		             ? 'y'
		             : 'n';
		_exit(write(answer[1], &c, 1) == 1 ? 0 : 1);
	}
	CHECK(child > 0 && read(answer[0], &seen, 1) == 1);
	CHECK_MSG(seen == 'y', "DB-write.lock is no longer held by the writer after a checkpoint");
	if (child > 0)
		waitpid(child, NULL, 0);
	close(answer[0]);
	close(answer[1]);
	sqlite_write_unlock(SQ(st));
	store_close(st);
}

/*
 * store_runner_slots_taken(): runners, each a process of its own holding
 * a slot taken with store_take_runner_slot(), one more at a time.
 */
static void test_runner_slots_taken(void)
{
	struct store_options o = {.path = NULL, .db_mode = 0600, .create = true};
	int release[2], ready[2];
	pid_t kids[HOOK_RUNNERS_MAX];
	char path[512], err[512] = "";
	struct store *st;

	new_path(path, sizeof path, "slots");
	o.path = path;
	st = store_open(&o, err, sizeof err);
	CHECK(st != NULL);
	if (st == NULL)
		return;
	store_close(st);
	/* No runner ever: no lock file, so nothing is taken. */
	CHECK(!store_runner_slots_taken(path, HOOK_RUNNERS_MAX));
	CHECK(!store_runner_slots_taken("postgresql:///nowhere", HOOK_RUNNERS_MAX));
	if (pipe(release) != 0 || pipe(ready) != 0) {
		CHECK(false);
		return;
	}
	for (int k = 0; k < HOOK_RUNNERS_MAX; k++) {
		char c;
		kids[k] = fork();
		if (kids[k] == 0) {
			struct store *mine;
			close(release[1]); /* so that the parent's close is an EOF here */
			mine = store_open(&o, err, sizeof err);
			c = mine != NULL && store_take_runner_slot(mine, HOOK_RUNNERS_MAX) == k ? 'y' : 'n';
			if (write(ready[1], &c, 1) != 1 || read(release[0], &c, 1) < 0)
				_exit(1);
			_exit(0);
		}
		CHECK(kids[k] > 0 && read(ready[0], &c, 1) == 1 && c == 'y');
		CHECK_MSG(store_runner_slots_taken(path, HOOK_RUNNERS_MAX) == (k == HOOK_RUNNERS_MAX - 1),
		          "%d of %d slots held", k + 1, HOOK_RUNNERS_MAX);
		/* Fewer slots asked about, all of them held. */
		CHECK(store_runner_slots_taken(path, k + 1));
	}
	if (geteuid() == 0) {
		/* Not ours (planted by the database's group): a runner would
		 * refuse it, so one is started, to say so. */
		char lock[600];
		snprintf(lock, sizeof lock, "%s-hooks.lock", path);
		CHECK(chown(lock, 65534, (gid_t)-1) == 0);
		CHECK(!store_runner_slots_taken(path, HOOK_RUNNERS_MAX));
		CHECK(chown(lock, 0, (gid_t)-1) == 0);
		CHECK(store_runner_slots_taken(path, HOOK_RUNNERS_MAX));
	}
	close(release[1]); /* every runner goes */
	for (int k = 0; k < HOOK_RUNNERS_MAX; k++)
		if (kids[k] > 0)
			waitpid(kids[k], NULL, 0);
	CHECK(!store_runner_slots_taken(path, HOOK_RUNNERS_MAX));
	close(release[0]);
	close(ready[0]);
	close(ready[1]);
}

/*
 * A VFS over the default one that counts the syncs SQLite asks for: which
 * of the runner's writes wait for the disk.
 */
static sqlite3_vfs *real_vfs;
static int syncs;

struct counted_file {
	sqlite3_file base;
	sqlite3_file *real; /* allocated right after this struct */
};

#define REAL(f) (((struct counted_file *)(f))->real)
static int cf_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int cf_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int cf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int cf_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int cf_sync(sqlite3_file *f, int flags)
{
	syncs++;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int cf_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int cf_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int cf_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int cf_check(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int cf_control(sqlite3_file *f, int op, void *a)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int cf_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int cf_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int cf_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p);
}
static int shm_shared_locks; /* read transactions begun */
static int cf_shm_lock(sqlite3_file *f, int o, int n, int fl)
{
	if (fl == (SQLITE_SHM_LOCK | SQLITE_SHM_SHARED))
		shm_shared_locks++;
	return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void cf_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int cf_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

/* Version 2: no memory-mapped fetches, so SQLite reads through xRead. */
static const sqlite3_io_methods counted_methods = {
    2,           cf_close,       cf_read,      cf_write,   cf_truncate, cf_sync,  cf_size,
    cf_lock,     cf_unlock,      cf_check,     cf_control, cf_sector,   cf_chars, cf_shm_map,
    cf_shm_lock, cf_shm_barrier, cf_shm_unmap, NULL,       NULL};

static int cf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct counted_file *c = (struct counted_file *)f;
	int rc;
	(void)vfs;
	c->real = (sqlite3_file *)(c + 1);
	rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out);
	f->pMethods = c->real->pMethods ? &counted_methods : NULL;
	return rc;
}

static sqlite3_vfs counted_vfs;

/* Counts with the default VFS wrapped; false when it cannot be set up. */
static bool counting_on(void)
{
	if (sqlite3_vfs_find("counted") != NULL)
		return true; /* on already (wrapping itself would recurse) */
	real_vfs = sqlite3_vfs_find(NULL);
	if (real_vfs == NULL)
		return false;
	counted_vfs = *real_vfs;
	counted_vfs.zName = "counted";
	counted_vfs.szOsFile = (int)sizeof(struct counted_file) + real_vfs->szOsFile;
	counted_vfs.xOpen = cf_open;
	counted_vfs.pNext = NULL;
	return sqlite3_vfs_register(&counted_vfs, 1) == SQLITE_OK;
}

/* How many store_syncs the store has done. */
static unsigned long store_syncs(struct store *st)
{
	return atomic_load(&SQ(st)->syncs);
}

/* hooks_dir with two `exit 0` hooks, and their refs, for the runner tests. */
static struct hook_ref runner_hooks[2];
static char runner_hooks_dir[600], runner_hook_paths[2][700];

static void make_runner_hooks(void)
{
	static const char *const names[] = {"uploaded", "uploaded.d/10-more"};
	char sub[700];

	snprintf(runner_hooks_dir, sizeof runner_hooks_dir, "%s/hooks", tmpdir);
	snprintf(sub, sizeof sub, "%s/uploaded.d", runner_hooks_dir);
	CHECK(mkdir(runner_hooks_dir, 0755) == 0 && mkdir(sub, 0755) == 0);
	for (int i = 0; i < 2; i++) {
		FILE *f;
		snprintf(runner_hook_paths[i], sizeof runner_hook_paths[i], "%s/%s", runner_hooks_dir,
		         names[i]);
		f = fopen(runner_hook_paths[i], "w");
		CHECK(f != NULL && fputs("#!/bin/sh\nexit 0\n", f) >= 0 && fclose(f) == 0);
		CHECK(chmod(runner_hook_paths[i], 0755) == 0);
		runner_hooks[i].name = names[i];
		runner_hooks[i].path = runner_hook_paths[i];
	}
}

/* A fresh database (durable or not) holding one applied change with two runs queued. */
static struct store *two_runs_queued(const char *sub, bool durable, char *path, size_t cap)
{
	static const char body[] = "{\"id\":\"run/1\",\"uploaded\":\"2023-11-14T22:13:20.5Z\"}";
	char id[] = "run/1", name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name);
	struct delivery d = make_delivery(T0_MS, body);
	struct store *st;

	st = new_db(path, cap, sub, durable);
	if (st == NULL)
		return NULL;
	CHECK(store_register(st, "run/1", NULL, -1) == 1);
	CHECK(store_apply(st, &ev, body, strlen(body), runner_hooks, 2, false, &d) == STORE_APPLIED);
	return st;
}

/*
 * A runner's writes land only while the run is still its claim, not
 * merely an attempt with the same number: `hooks retry` counts the
 * attempts again from 0, so the first attempt after it is number 1 again,
 * and a runner still trying to record the outcome of an earlier attempt 1
 * (its writes failed past its lease) must not write over the new one.
 */
static void test_outbox_claim_identity(void)
{
	static const char row[] = "SELECT state || '|' || attempts || '|' || coalesce(pgid, '-')"
	                          " FROM hook_runs WHERE id = ?";
	char path[512], id_text[32];
	struct hook_run run, other;
	struct store *st = two_runs_queued("claim-identity", false, path, sizeof path);
	int64_t old_id;

	if (st == NULL)
		return;
	CHECK(outbox_claim(st, T0_MS + 5000, 60000, "host", &run) == 1);
	CHECK(outbox_finish(st, run.id, run.attempt, T0_MS + 5000, RUN_DONE, true, 0, "", 0,
	                    T0_MS + 5500, T0_MS + 5500) == 0);
	CHECK(outbox_claim(st, T0_MS + 5000, 60000, "host", &other) == 1);
	CHECK(outbox_finish(st, other.id, other.attempt, T0_MS + 5000, RUN_DONE, true, 0, "", 0,
	                    T0_MS + 5500, T0_MS + 5500) == 0);
	hook_run_free(&other);
	old_id = run.id;
	CHECK(run.attempt == 1);
	hook_run_free(&run);
	CHECK(outbox_retry(st, old_id, T0_MS + 7000) == 1);
	CHECK(outbox_claim(st, T0_MS + 8000, 60000, "host", &run) == 1);
	CHECK(run.id == old_id && run.attempt == 1);
	snprintf(id_text, sizeof id_text, "%lld", (long long)old_id);
	/* The writes of the claim at T0 + 5000 (attempt 1 too) change nothing. */
	CHECK(outbox_set_pgid(st, old_id, 1, T0_MS + 5000, 4242, 99) == 0);
	CHECK(outbox_finish(st, old_id, 1, T0_MS + 5000, RUN_FAILED, true, 1, "old", 3,
	                    T0_MS + 9000, T0_MS + 9000) == 0);
	CHECK_SQL(st, row, id_text, "running|1|-");
	/* The current claim's do. */
	CHECK(outbox_set_pgid(st, old_id, 1, T0_MS + 8000, 4242, 99) == 1);
	CHECK_SQL(st, row, id_text, "running|1|4242");
	CHECK(outbox_finish(st, old_id, 1, T0_MS + 8000, RUN_DONE, true, 0, "", 0, T0_MS + 9000,
	                    T0_MS + 9000) == 0);
	CHECK_SQL(st, row, id_text, "done|1|-");
	hook_run_free(&run);
	store_close(st);
}

/*
 * A reclaim takes up only the claim outbox_stale listed, and only once its
 * lease has passed: between the listing and the reclaim, another runner
 * may have reclaimed the run, an operator retried it (attempts counted
 * from 0 again) and a runner claimed it anew as attempt 1 with a fresh
 * lease.  The late reclaim must leave that live claim alone (it would be
 * queued and run a second time beside it).
 */
static void test_outbox_reclaim_identity(void)
{
	static const char row[] = "SELECT state || '|' || attempts FROM hook_runs WHERE id = ?";
	char path[512], id_text[32];
	struct hook_run run, other;
	struct stale_run listed[4], late;
	struct store *st = two_runs_queued("reclaim-identity", false, path, sizeof path);

	if (st == NULL)
		return;
	/* The first run claimed with a 1 s lease, which passes. */
	CHECK(outbox_claim(st, T0_MS + 5000, 1000, "host", &run) == 1);
	snprintf(id_text, sizeof id_text, "%lld", (long long)run.id);
	CHECK(outbox_stale(st, T0_MS + 7000, listed, 4) == 1);
	late = listed[0]; /* a runner lists it, then is held up */
	CHECK(late.id == run.id && late.attempts == 1);
	/* Another runner takes it up; it is retried, and claimed again. */
	CHECK(outbox_reclaim(st, &listed[0], 5, T0_MS + 7000) == 1);
	CHECK_SQL(st, row, id_text, "queued|1");
	/* (the other run goes first: due earlier) */
	CHECK(outbox_claim(st, T0_MS + 7100, 60000, "host", &other) == 1);
	CHECK(outbox_finish(st, other.id, other.attempt, T0_MS + 7100, RUN_DONE, true, 0, "", 0,
	                    T0_MS + 7200, T0_MS + 7200) == 0);
	hook_run_free(&other);
	CHECK(outbox_retry(st, run.id, T0_MS + 7300) == 1);
	hook_run_free(&run);
	CHECK(outbox_claim(st, T0_MS + 8000, 60000, "host", &run) == 1);
	CHECK(run.attempt == 1);
	CHECK_SQL(st, row, id_text, "running|1");
	/* The held-up runner's reclaim changes nothing. */
	CHECK(outbox_reclaim(st, &late, 5, T0_MS + 9000) == 0);
	CHECK_SQL(st, row, id_text, "running|1");
	/* Nor does one of the live claim itself before its lease passed. */
	CHECK(outbox_stale(st, T0_MS + 9000, listed, 4) == 0);
	hook_run_free(&run);
	store_close(st);
}

/*
 * The runner's writes at durability = full: a claim is flushed to the disk
 * before it is returned (a claim lost by a crash would run the hook
 * again), even right after a write that did not wait, but after its
 * commit, which does not wait (nobody waits behind the lock meanwhile);
 * the process group and the outcome are not flushed (the next claim, or
 * outbox_flush, carries them); a command's retry waits.  At normal
 * nothing waits.  hooks_run_due flushes what it recorded.
 */
static void test_outbox_syncs(void)
{
	char path[512], err[512] = "", env_db[600], env_hooks[700];
	struct hook_run run;
	struct config cfg;
	struct store *st;
	int before;

	make_runner_hooks();
	if (!counting_on()) {
		CHECK(false);
		return;
	}
	for (int durable = 1; durable >= 0; durable--) {
		st = two_runs_queued(durable ? "syncs-full" : "syncs-normal", durable, path, sizeof path);
		if (st == NULL)
			break;
		for (int k = 0; k < 2; k++) {
			unsigned long flushes = store_syncs(st);
			before = syncs;
			CHECK(outbox_claim(st, T0_MS + 5000, 60000, "host", &run) == 1);
			/* The commit itself never waits (nobody waits behind the
			 * lock meanwhile); the log is flushed after it at full, and
			 * only then is the run returned. */
			CHECK_MSG(syncs == before, "claim %d: %d syncs in the commit", k + 1,
			          syncs - before);
			CHECK_MSG(store_syncs(st) - flushes == (unsigned long)durable,
			          "claim %d: %lu flushes after it, durable %d", k + 1,
			          store_syncs(st) - flushes, durable);
			before = syncs;
			flushes = store_syncs(st);
			CHECK(outbox_set_pgid(st, run.id, run.attempt, T0_MS + 5000, 4242, 99) == 1);
			CHECK(outbox_finish(st, run.id, run.attempt, T0_MS + 5000, RUN_DONE, true, 0,
			                    "ok\n", 3, T0_MS + 6000, T0_MS + 6000) == 0);
			CHECK_MSG(syncs == before && store_syncs(st) == flushes,
			          "process group and outcome: %d syncs, %lu flushes", syncs - before,
			          store_syncs(st) - flushes);
			/* Finished: no longer that attempt's to record. */
			CHECK(outbox_set_pgid(st, run.id, run.attempt, T0_MS + 5000, 4243, 99) == 0);
			if (k == 0)
				hook_run_free(&run);
		}
		before = (int)store_syncs(st);
		CHECK(outbox_flush(st) == 0);
		CHECK_MSG(((int)store_syncs(st) > before) == durable, "outbox_flush at durable %d",
		          durable);
		CHECK_SQL(st, "SELECT group_concat(state || '|' || exit_code || '|' || output, ',')"
		              " FROM hook_runs", NULL, "done|0|ok\n,done|0|ok\n");
		before = syncs;
		CHECK(outbox_retry(st, run.id, T0_MS + 7000) == 1);
		CHECK_MSG((syncs > before) == durable, "retry: %d syncs, durable %d", syncs - before,
		          durable);
		hook_run_free(&run);
		store_close(st);

		/* The runner itself: both runs executed, their outcomes flushed. */
		st = two_runs_queued(durable ? "run-due-full" : "run-due-normal", durable, path,
		                     sizeof path);
		if (st == NULL)
			break;
		snprintf(env_db, sizeof env_db, "CFIMAGES_WEBHOOK_DB=%s", path);
		snprintf(env_hooks, sizeof env_hooks, "CFIMAGES_WEBHOOK_HOOKS_DIR=%s", runner_hooks_dir);
		char *env[] = {env_db, env_hooks, NULL};
		CHECK_MSG(config_load(&cfg, NULL, env, "/nonexistent", err, sizeof err) == 0, "%s", err);
		CHECK(hooks_run_due(st, &cfg, false) == 2);
		CHECK_SQL(st, "SELECT group_concat(state || '|' || exit_code, ',') FROM hook_runs", NULL,
		          "done|0,done|0");
		/* One flush per claim, and the outcomes' after the last. */
		CHECK_MSG(store_syncs(st) == (durable ? 3u : 0u), "hooks_run_due at durable %d: %lu",
		          durable, store_syncs(st));
		config_free(&cfg);
		store_close(st);
	}
	sqlite3_vfs_unregister(&counted_vfs);
}

/* Rewrites one of the runner tests' hooks. */
static void write_hook(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0);
}

/*
 * A runner started with SIGCHLD ignored (execve keeps an ignored signal,
 * so whoever starts it may pass that on): the kernel would reap each hook
 * itself and its exit status would be lost, every run counted done.  The
 * hook's exit status is still what is recorded.
 */
static void test_runner_sigchld_ignored(void)
{
	char path[512], err[512] = "", env_db[600], env_hooks[700];
	struct sigaction ign, old;
	struct config cfg;
	struct store *st = two_runs_queued("sigchld", false, path, sizeof path);

	if (st == NULL)
		return;
	write_hook(runner_hook_paths[1], "#!/bin/sh\nexit 3\n");
	snprintf(env_db, sizeof env_db, "CFIMAGES_WEBHOOK_DB=%s", path);
	snprintf(env_hooks, sizeof env_hooks, "CFIMAGES_WEBHOOK_HOOKS_DIR=%s", runner_hooks_dir);
	char *env[] = {env_db, env_hooks, NULL};
	CHECK_MSG(config_load(&cfg, NULL, env, "/nonexistent", err, sizeof err) == 0, "%s", err);
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	CHECK(sigaction(SIGCHLD, &ign, &old) == 0);
	CHECK(hooks_run_due(st, &cfg, false) == 2);
	CHECK(sigaction(SIGCHLD, &old, NULL) == 0);
	CHECK_SQL(st, "SELECT group_concat(state || '|' || exit_code, ',') FROM hook_runs", NULL,
	          "done|0,queued|3");
	write_hook(runner_hook_paths[1], "#!/bin/sh\nexit 0\n");
	config_free(&cfg);
	store_close(st);
}

/*
 * A batch whose caller flushes after it (may_defer_sync) is one
 * transaction: no look-up before BEGIN, whose pages another process's
 * commit would make it read twice.  It learns in the transaction whether
 * an answer promises durability: at full, a changed status sets
 * sync_after (and the commit itself waits for nothing), and so does a
 * duplicate (the change it found may be a deferred commit not flushed
 * yet); a 404 does not, nor anything at normal.  Without may_defer_sync
 * the look-up decides the commit's level first.
 */
static void test_deferred_batch(void)
{
	static const char body[] = "{\"id\":\"defer/1\"}";
	char path[512], id[] = "defer/1", id2[] = "defer/2", id3[] = "defer/3",
	                name[] = "upload.complete";
	struct event ev = make_event(id, "uploaded", name), ev2 = make_event(id2, "uploaded", name),
	             ev3 = make_event(id3, "uploaded", name);

	if (!counting_on()) {
		CHECK(false);
		return;
	}
	for (int durable = 1; durable >= 0; durable--) {
		struct store *st = new_db(path, sizeof path, durable ? "defer-full" : "defer-normal",
		                          durable);
		if (st == NULL)
			return;
		/* 0 applied, 1 duplicate, 3 a 404, deferred; 2 applied, 4 a
		 * duplicate, not deferred. */
		for (int k = 0; k < 5; k++) {
			struct delivery d = make_delivery(T0_MS + k, body);
			struct store_job j = {.kind = STORE_JOB_APPLY,
			                      .d = &d,
			                      .ev = k == 2 ? &ev2 : k == 3 ? &ev3 : &ev,
			                      .body = body,
			                      .body_len = strlen(body),
			                      .auto_register = k < 3,
			                      .may_defer_sync = k != 2 && k != 4};
			int locks = shm_shared_locks, before = syncs;
			enum store_outcome want = k == 1 || k == 4 ? STORE_DUPLICATE
			                          : k == 3 ? STORE_NOT_FOUND
			                                   : STORE_APPLIED;

			CHECK(store_write_batch(st, &j, 1) == 0 && j.rc == 0);
			CHECK_MSG(j.outcome == want, "job %d: outcome %d", k, (int)j.outcome);
			CHECK_MSG(j.sync_after == (durable && k < 2), "job %d, durable %d: sync_after %d",
			          k, durable, (int)j.sync_after);
			/* At full, only a job not deferred waits in its commit. */
			CHECK_MSG(durable && (k == 2 || k == 4) ? syncs > before : syncs == before,
			          "job %d, durable %d: %d syncs in the commit", k, durable, syncs - before);
			CHECK_MSG(shm_shared_locks - locks == ((k == 2 || k == 4) && durable ? 2 : 1),
			          "job %d, durable %d: %d transactions", k, durable,
			          shm_shared_locks - locks);
		}
		store_close(st);
	}
}

/* fdatasync as the store calls it (linked with --wrap=fdatasync):
 * failing with EIO while fail_fdatasync is set. */
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
static bool fail_fdatasync;

int __wrap_fdatasync(int fd)
{
	if (fail_fdatasync) {
		errno = EIO;
		return -1;
	}
	return __real_fdatasync(fd);
}

/*
 * A failed flush of the log fails every later one of the store, even once
 * the disk answers again: the kernel reports a write error once, and the
 * commits after it would be promised on top of a log whose lost pages a
 * recovery stops at.  A new store (a restarted receiver) flushes again.
 */
static void test_sync_failure_sticks(void)
{
	char path[512];
	struct store *st = new_db(path, sizeof path, "sync-fails", true), *again;

	if (st == NULL)
		return;
	CHECK(store_sync(st) == 0);
	fail_fdatasync = true;
	CHECK(store_sync(st) == -1);
	fail_fdatasync = false;
	CHECK_MSG(store_sync(st) == -1, "a flush succeeded after an earlier one failed");
	/* A change is then refused (500, its row saying so), not applied and
	 * answered 500 with a 200 row; a rejection is recorded as ever. */
	{
		static const char body[] = "{}";
		char id[] = "after-fail", name[] = "upload.complete";
		struct event ev = make_event(id, "uploaded", name);
		struct delivery d[2] = {make_delivery(T0_MS, body), make_delivery(T0_MS + 1, body)};
		struct store_job j[2] = {
		    {.kind = STORE_JOB_APPLY, .d = &d[0], .ev = &ev, .body = body,
		     .body_len = strlen(body), .hooks = two_hooks, .n_hooks = 1, .may_defer_sync = true},
		    {.kind = STORE_JOB_RECORD, .d = &d[1], .may_defer_sync = true}};

		d[1].status_code = 401;
		d[1].reason = "invalid_signature";
		CHECK(store_register(st, "after-fail", NULL, -1) == 1);
		CHECK(store_write_batch(st, j, 2) == 1);
		CHECK_MSG(j[0].rc == -1 && j[0].outcome == STORE_ERROR && d[0].status_code == 500,
		          "the change after a failed flush: rc %d outcome %d code %d", j[0].rc,
		          (int)j[0].outcome, d[0].status_code);
		CHECK(j[1].rc == 0);
		CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?",
		          "after-fail", "pending");
		CHECK_SQL(st, "SELECT group_concat(status_code, ',') FROM"
		              " (SELECT status_code FROM webhook_deliveries ORDER BY id)",
		          NULL, "500,401");
		CHECK(q_int(st, "SELECT count(*) FROM hook_runs", NULL) == 0);
	}
	again = open_db(path, 0600, false, true);
	CHECK(again != NULL && store_sync(again) == 0);
	if (again != NULL)
		store_close(again);
	store_close(st);
}

/*
 * A batch whose transaction ends without a commit (a job's 500 row whose
 * insert rolls back the whole transaction, as SQLite does on a full disk;
 * here an application's trigger) runs its other jobs again: none is
 * answered for writes that were rolled back, nor failed for writes that
 * were committed.  Image "bad" refuses its update (the statement only),
 * and its 500 row's insert ends the transaction: in the first case while
 * the good job's 200 row is in it (the good job came first, and was
 * answered 200 for writes rolled back), in the second case always (the
 * bad job came first; the good one's writes were committed by the release
 * of its savepoint outside any transaction, and it was answered 500).
 * Either way the bad job's row is given up after its second try.
 */
static void test_batch_transaction_ends(void)
{
	static const char body[] = "{}";
	char path[512], good[] = "good", bad[] = "bad", name[] = "upload.complete";
	struct event ev_good = make_event(good, "uploaded", name),
	             ev_bad = make_event(bad, "uploaded", name);

	for (int c = 0; c < 2; c++) {
		struct store *st = new_db(path, sizeof path, c ? "ends-always" : "ends-once", true);
		struct delivery d[2] = {make_delivery(T0_MS, body), make_delivery(T0_MS + 1, body)};
		struct store_job j[2];
		int g = c ? 1 : 0; /* the good job's place */
		char idtext[32];

		if (st == NULL)
			return;
		CHECK(store_register(st, "good", NULL, -1) == 1 && store_register(st, "bad", NULL, -1) == 1);
		exec_sql(st, "CREATE TEMP TRIGGER bad_image BEFORE UPDATE ON cloudflare_images"
		             " WHEN NEW.cloudflare_id = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); END");
		exec_sql(st, c ? "CREATE TEMP TRIGGER row_500 BEFORE INSERT ON webhook_deliveries"
		                 " WHEN NEW.status_code = 500 BEGIN SELECT RAISE(ROLLBACK, 'no'); END"
		               : "CREATE TEMP TRIGGER row_500 BEFORE INSERT ON webhook_deliveries"
		                 " WHEN NEW.status_code = 500 AND (SELECT count(*) FROM"
		                 " webhook_deliveries WHERE status_code = 200) > 0"
		                 " BEGIN SELECT RAISE(ROLLBACK, 'no'); END");
		for (int k = 0; k < 2; k++)
			j[k] = (struct store_job){.kind = STORE_JOB_APPLY,
			                          .d = &d[k],
			                          .ev = k == g ? &ev_good : &ev_bad,
			                          .body = body,
			                          .body_len = strlen(body),
			                          .hooks = two_hooks,
			                          .n_hooks = 1,
			                          .may_defer_sync = true};
		CHECK(store_write_batch(st, j, 2) == 1);
		CHECK_MSG(j[g].rc == 0 && j[g].outcome == STORE_APPLIED && d[g].status_code == 200 &&
		              d[g].id > 0,
		          "case %d: the good job: rc %d outcome %d code %d id %lld", c, j[g].rc,
		          (int)j[g].outcome, d[g].status_code, (long long)d[g].id);
		CHECK_MSG(j[1 - g].rc == -1 && d[1 - g].status_code == 500, "case %d: the bad job: rc %d",
		          c, j[1 - g].rc);
		CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "good",
		          "uploaded");
		CHECK_SQL(st, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?", "bad",
		          "pending");
		snprintf(idtext, sizeof idtext, "%lld", (long long)d[g].id);
		CHECK_MSG(q_int(st, "SELECT status_code FROM webhook_deliveries WHERE id = ?", idtext) ==
		              200,
		          "case %d: the good job's row %s is not its 200 row", c, idtext);
		CHECK(q_int(st, "SELECT count(*) FROM webhook_deliveries WHERE status_code = 200", NULL) ==
		      1);
		CHECK(q_int(st, "SELECT count(*) FROM webhook_deliveries WHERE status_code = 500", NULL) ==
		      0);
		CHECK(q_int(st, "SELECT count(*) FROM hook_runs WHERE image_id = ?", "good") == 1);
		CHECK(q_int(st, "SELECT count(*) FROM hook_runs", NULL) == 1);
		store_close(st);
	}
}

/*
 * store_sync with the write-ahead log gone (removed by someone else while
 * the store is open: its commits would not survive a restart) fails, and
 * leaves SQLite's own locks on the database file alone: it does not flush
 * the database file instead through a descriptor of its own, whose close
 * would give up every POSIX lock this process holds on that file.
 */
static void test_sync_wal_gone(void)
{
	char path[512], wal[600];
	struct store *st = new_db(path, sizeof path, "sync-wal-gone", true);

	if (st == NULL)
		return;
	snprintf(wal, sizeof wal, "%s-wal", path);
	CHECK(store_sync(st) == 0);
	CHECK(unlink(wal) == 0);
	CHECK_MSG(store_sync(st) == -1, "store_sync succeeded with %s removed", wal);
	store_close(st);
}

/*
 * The outbox's writes queue on DB-write.lock, as the deliveries' batches
 * do: while another holds it, a claim or an outcome waits for it (the
 * busy timeout, then fails and changes nothing) instead of writing beside
 * it; once it is free they go through.  The lock is taken here as an open
 * file description lock, which conflicts with the store's record lock in
 * the same process.
 */
static void test_outbox_queues(void)
{
	static const char states[] = "SELECT group_concat(state, ',')"
	                             " FROM (SELECT state FROM hook_runs ORDER BY id)";
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	char path[512], lock_path[600];
	struct hook_run run;
	struct store *st = two_runs_queued("queues", true, path, sizeof path);
	int fd;
	double t;

	if (st == NULL)
		return;
	snprintf(lock_path, sizeof lock_path, "%s-write.lock", path);
	fd = open(lock_path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	store_set_busy_timeout(st, SHORT_BUSY_MS);
	for (int step = 0; step < 2; step++) {
		/* Held by another: nothing written after the busy timeout. */
		fl.l_type = F_WRLCK;
		CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
		t = now_seconds();
		if (step == 0)
			CHECK(outbox_claim(st, T0_MS + 5000, 60000, "host", &run) == -1);
		else
			CHECK(outbox_finish(st, run.id, run.attempt, T0_MS + 5000, RUN_DONE, true, 0,
			                    "ok\n", 3, T0_MS + 6000, T0_MS + 6000) == -1);
		t = now_seconds() - t;
		CHECK_MSG(t >= SHORT_BUSY_MS / 1000.0 * 0.9 && t < 3.0, "step %d waited %.3f s", step,
		          t);
		CHECK_SQL(st, states, NULL, step == 0 ? "queued,queued" : "running,queued");
		/* Free: it goes through. */
		fl.l_type = F_UNLCK;
		CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
		if (step == 0)
			CHECK(outbox_claim(st, T0_MS + 5000, 60000, "host", &run) == 1);
		else
			CHECK(outbox_finish(st, run.id, run.attempt, T0_MS + 5000, RUN_DONE, true, 0,
			                    "ok\n", 3, T0_MS + 6000, T0_MS + 6000) == 0);
		CHECK_SQL(st, states, NULL, step == 0 ? "running,queued" : "done,queued");
	}
	hook_run_free(&run);
	if (fd >= 0)
		close(fd);
	store_close(st);
}

int main(void)
{
	char path[512];
	struct store *st;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_modes();
	test_missing_without_create();
	test_schema_and_reopen();
	test_newer_refused();
	test_upgrade_from_2();
	test_upgrade_from_3();
	test_foreign_database();

	st = new_db(path, sizeof path, NULL, true);
	if (st != NULL) {
		test_register(st);
		test_not_found(st);
		test_auto_register(st);
		test_duplicate(st);
		test_pending_to_uploaded(st);
		test_stale(st);
		test_failed_then_uploaded(st);
		test_job(st);
		test_show(st);
		test_message_seen(st);
		test_record(st);
		test_expire(st);
		test_expire_forms(st);
		store_close(st);
	}
	test_busy(path);
	test_races(path);
	test_error_rolls_back(path);
	test_prune(path);
	test_checkpointer();
	test_checkpointer_keeps_writer_lock();
	test_deferred_batch();
	test_sync_wal_gone();
	test_batch_transaction_ends();
	test_sync_failure_sticks();
	test_runner_slots_taken();
	test_outbox_syncs();
	test_outbox_claim_identity();
	test_outbox_reclaim_identity();
	test_outbox_queues();
	test_runner_sigchld_ignored();

	if (test_failures == 0) {
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return test_done("test_store");
}
