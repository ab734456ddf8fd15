/*
 * The request contract (cfimages-webhook(8), "THE REQUEST CONTRACT"), row
 * by row, without a web server: a fake request (parameters and a body
 * read through the transport's callback) goes through handler_handle()
 * against a real SQLite database in a temporary directory, and each check
 * looks at the answer (status, body, Allow), the delivery row it left (or
 * did not), the image's status, and whether the body was read at all.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "handler.h"
#include "testlib.h"
#include "util.h"

#define SECRET "handler-test-secret"
#define MAX_BODY 4096

static char tmpdir[] = "/tmp/test_handler.XXXXXX";
static char db_path[256];

/* The transport's side of a request: parameters and a body to read. */
struct fake {
	const char *params[16];
	size_t n_params;
	char storage[16][512];
	const char *body;
	size_t body_len;     /* bytes the transport has */
	size_t offset;
	bool fail_read;      /* reading fails (connection gone, read_timeout) */
	int reads;           /* read_body calls */
};

static ssize_t fake_read(void *ctx, char *buf, size_t len)
{
	struct fake *f = ctx;
	size_t n = f->body_len - f->offset;

	f->reads++;
	if (f->fail_read)
		return -1;
	if (n > len)
		n = len;
	memcpy(buf, f->body + f->offset, n);
	f->offset += n;
	return (ssize_t)n;
}

static void param(struct fake *f, const char *name, const char *value)
{
	snprintf(f->storage[f->n_params], sizeof f->storage[0], "%s=%s", name, value);
	f->params[f->n_params] = f->storage[f->n_params];
	f->n_params++;
	f->params[f->n_params] = NULL;
}

/* A POST of body, signed with the hex scheme unless sig is given ("" for none). */
static void post(struct fake *f, const char *body, const char *sig)
{
	unsigned char mac[SHA256_BYTES];
	char hex[2 * SHA256_BYTES + 1], len[32];

	memset(f, 0, sizeof *f);
	f->body = body;
	f->body_len = strlen(body);
	param(f, "REQUEST_METHOD", "POST");
	param(f, "REMOTE_ADDR", "127.0.0.1");
	snprintf(len, sizeof len, "%zu", f->body_len);
	param(f, "CONTENT_LENGTH", len);
	if (sig == NULL) {
		hmac_sha256(SECRET, strlen(SECRET), body, strlen(body), mac);
		hex_encode(mac, sizeof mac, hex);
		param(f, "HTTP_X_SIGNATURE", hex);
	} else if (sig[0]) {
		param(f, "HTTP_X_SIGNATURE", sig);
	}
}

static void run(struct handler *h, struct fake *f, struct answer *ans)
{
	struct request r = {.params = (char *const *)f->params, .read_body = fake_read,
	                    .read_ctx = f};
	memset(ans, 0, sizeof *ans);
	handler_handle(h, &r, ans);
}

static long q_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long v = -1;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static char last_reason[64];

/* The newest delivery row's reason and status code; -1 without rows. */
static long last_delivery(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long code = -1;

	last_reason[0] = '\0';
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db,
	                       "SELECT status_code, reason FROM webhook_deliveries "
	                       "ORDER BY id DESC LIMIT 1",
	                       -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW) {
		code = (long)sqlite3_column_int64(s, 0);
		snprintf(last_reason, sizeof last_reason, "%s",
		         (const char *)sqlite3_column_text(s, 1));
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return code;
}

static long deliveries(void)
{
	return q_int("SELECT count(*) FROM webhook_deliveries");
}

static void image_status(const char *id, char *buf, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;

	snprintf(buf, cap, "(none)");
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT status FROM cloudflare_images WHERE cloudflare_id = ?",
	                       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(s, 0));
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* Expects the answer and one new delivery row with this reason. */
#define EXPECT(ans, code, text, reason, before)                                        \
	do {                                                                           \
		CHECK_MSG((ans).status == (code), "status %d", (ans).status);         \
		CHECK_STR((ans).body, (text));                                         \
		CHECK((ans).allow_post == ((code) == 405));                            \
		CHECK_MSG(deliveries() == (before) + 1, "%ld rows", deliveries());     \
		CHECK_MSG(last_delivery() == (code), "row status %s", last_reason);    \
		CHECK_STR(last_reason, (reason));                                      \
	} while (0)

static void init_handler(struct handler *h, const char *extra_name, const char *extra_value)
{
	char conf[300], env[8][512];
	char *envp[9];
	size_t n = 0;

	snprintf(conf, sizeof conf, "%s/empty.conf", tmpdir);
	fclose(fopen(conf, "w"));
	snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_CONFIG=%s", conf);
	if (extra_name == NULL || strcmp(extra_name, "DB") != 0)
		snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_DB=%s", db_path);
	snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_HOOKS_DIR=%s/hooks", tmpdir);
	snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_SECRET=%s", SECRET);
	snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_MAX_BODY=%d", MAX_BODY);
	snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_LOG_LEVEL=error");
	if (extra_name)
		snprintf(env[n++], sizeof env[0], "CFIMAGES_WEBHOOK_%s=%s", extra_name, extra_value);
	for (size_t i = 0; i < n; i++)
		envp[i] = env[i];
	envp[n] = NULL;
	handler_init(h, NULL, envp, NULL);
}

static void register_image(const char *id)
{
	sqlite3 *db = NULL;
	char sql[256];

	snprintf(sql, sizeof sql,
	         "INSERT INTO cloudflare_images (cloudflare_id, status, created_at, updated_at) "
	         "VALUES ('%s', 'pending', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')",
	         id);
	CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
}

static void test_matrix(void)
{
	struct handler h;
	struct fake f;
	struct answer a;
	char status[32];
	long before;

	init_handler(&h, NULL, NULL);
	CHECK(h.cfg_ok);

	/* Row 11 first, so the database exists: a registered image uploaded. */
	post(&f, "{\"id\":\"img-1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}", NULL);
	run(&h, &f, &a);
	CHECK_MSG(a.status == 404, "status %d", a.status); /* not registered yet */
	register_image("img-1");
	before = deliveries();
	f.offset = 0;
	run(&h, &f, &a);
	EXPECT(a, 200, "OK", "applied", before);
	image_status("img-1", status, sizeof status);
	CHECK_STR(status, "uploaded");

	before = deliveries();
	f.offset = 0;
	run(&h, &f, &a);
	EXPECT(a, 200, "OK", "duplicate", before);

	before = deliveries();
	post(&f, "{\"id\":\"img-1\",\"error\":\"boom\"}", NULL);
	run(&h, &f, &a);
	EXPECT(a, 200, "OK", "stale", before);
	image_status("img-1", status, sizeof status);
	CHECK_STR(status, "uploaded");

	/* Row 2: not POST, body never read. */
	before = deliveries();
	post(&f, "{}", NULL);
	f.params[0] = "REQUEST_METHOD=GET";
	run(&h, &f, &a);
	EXPECT(a, 405, "Method not allowed", "method_not_allowed", before);
	CHECK(f.reads == 0);

	/* Row 3: CONTENT_LENGTH above max_body, refused before reading. */
	before = deliveries();
	post(&f, "{}", NULL);
	snprintf(f.storage[2], sizeof f.storage[2], "CONTENT_LENGTH=%d", MAX_BODY + 1);
	run(&h, &f, &a);
	EXPECT(a, 413, "Payload too large", "payload_too_large", before);
	CHECK(f.reads == 0);

	/* Rows 4 and 5. */
	before = deliveries();
	post(&f, "{\"id\":\"img-1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}", "");
	run(&h, &f, &a);
	EXPECT(a, 401, "Missing signature", "missing_signature", before);
	before = deliveries();
	post(&f, "{\"id\":\"img-1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}",
	     "0000000000000000000000000000000000000000000000000000000000000000");
	run(&h, &f, &a);
	EXPECT(a, 401, "Invalid signature", "invalid_signature", before);

	/* Row 6: not JSON; and a body shorter than CONTENT_LENGTH. */
	before = deliveries();
	post(&f, "{\"id\":", NULL);
	run(&h, &f, &a);
	EXPECT(a, 400, "Invalid JSON", "invalid_json", before);
	before = deliveries();
	post(&f, "{\"id\":\"img-1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}", NULL);
	snprintf(f.storage[2], sizeof f.storage[2], "CONTENT_LENGTH=%zu", f.body_len + 10);
	run(&h, &f, &a);
	EXPECT(a, 400, "Invalid JSON", "invalid_json", before);

	/* Row 7. */
	before = deliveries();
	post(&f, "{\"id\":\"img-1\",\"uploaded\":\"yesterday\"}", NULL);
	run(&h, &f, &a);
	EXPECT(a, 400, "Invalid payload", "invalid_payload", before);

	/* Row 8: Cloudflare's "Save and Test" probe. */
	before = deliveries();
	post(&f, "{\"text\":\"Hello World!\"}", NULL);
	run(&h, &f, &a);
	EXPECT(a, 200, "Ignored", "ignored", before);

	/* Row 9. */
	before = deliveries();
	post(&f, "{\"id\":\"img-unknown\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}", NULL);
	run(&h, &f, &a);
	EXPECT(a, 404, "Image not found", "not_found", before);
	image_status("img-unknown", status, sizeof status);
	CHECK_STR(status, "(none)");

	/* A body that cannot be read (connection gone, read_timeout): dropped,
	 * no row, nothing applied. */
	register_image("img-2");
	before = deliveries();
	post(&f, "{\"id\":\"img-2\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}", NULL);
	f.fail_read = true;
	run(&h, &f, &a);
	CHECK(a.status == 500);
	CHECK(deliveries() == before);
	image_status("img-2", status, sizeof status);
	CHECK_STR(status, "pending");

	handler_fini(&h);
}

/* Row 1, with allow_from; row 10, with a database that cannot be opened. */
static void test_forbidden_and_internal(void)
{
	struct handler h;
	struct fake f;
	struct answer a;
	char bad[300];
	long before;

	init_handler(&h, "ALLOW_FROM", "10.0.0.0/8");
	before = deliveries();
	post(&f, "{}", NULL);
	run(&h, &f, &a);
	EXPECT(a, 403, "Forbidden", "forbidden", before);
	CHECK(f.reads == 0);
	handler_fini(&h);

	snprintf(bad, sizeof bad, "%s/empty.conf/x.db", tmpdir); /* under a file */
	init_handler(&h, "DB", bad);
	before = deliveries();
	post(&f, "{\"id\":\"img-1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}", NULL);
	run(&h, &f, &a);
	CHECK(a.status == 500);
	CHECK_STR(a.body, "Internal server error");
	CHECK(deliveries() == before);
	handler_fini(&h);

	/* An invalid configuration: every request is a 500, nothing read. */
	init_handler(&h, "HOOK_TIMEOUT", "soon");
	CHECK(!h.cfg_ok);
	post(&f, "{}", NULL);
	run(&h, &f, &a);
	CHECK(a.status == 500);
	CHECK(f.reads == 0);
	handler_fini(&h);
}

int main(void)
{
	char cmd[300];

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(db_path, sizeof db_path, "%s/webhook.db", tmpdir);
	test_matrix();
	test_forbidden_and_internal();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return test_done("test_handler");
}
