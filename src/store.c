/*
 * The store's front: store_open() chooses the backend from the `db`
 * setting, every other public function hands over to the backend's
 * operation, and what must be the same on every backend is here: the
 * rules of a status change and the words they leave in the log, the
 * `show` object, and the masking of a password in a URI.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>
#include <sqlite3.h>

#include "json.h"
#include "store_impl.h"
#include "util.h"

#define URI_POSTGRESQL "postgresql://"
#define URI_POSTGRES "postgres://"

bool store_is_postgresql(const char *db)
{
	return db != NULL && (strncasecmp(db, URI_POSTGRESQL, strlen(URI_POSTGRESQL)) == 0 ||
	                      strncasecmp(db, URI_POSTGRES, strlen(URI_POSTGRES)) == 0);
}

/*
 * True when the query parameter name starting at p (ending at '=') is
 * "password" or "sslpassword" (the passphrase of the client's key) once
 * percent-decoded, as libpq decodes it; in any case, to mask too much
 * rather than too little.
 */
bool store_is_secret_param(const char *p)
{
	static const char *const secrets[] = {"password", "sslpassword"};
	char name[16];
	size_t i = 0;

	while (*p && *p != '=' && *p != '&' && *p != '#') {
		char c = *p++;
		unsigned char decoded;
		if (c == '%' && p[0] != '\0' && p[1] != '\0' && hex_decode(p, 1, &decoded)) {
			c = (char)decoded;
			p += 2;
		}
		if (i >= sizeof name - 1)
			return false;
		name[i++] = (char)(c | 0x20);
	}
	name[i] = '\0';
	if (*p != '=')
		return false;
	for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++)
		if (strcmp(name, secrets[k]) == 0)
			return true;
	return false;
}

const char *store_uri_userinfo_end(const char *db)
{
	const char *p = strstr(db, "://"), *end, *at = NULL;

	if (p == NULL)
		return NULL;
	p += 3;
	/* Up to the first '/' (libpq's own reading, also when the password
	 * holds '?' or '#'), else up to the first '?' (a password holding
	 * '/'): never into the query, whose values may hold '@' too. */
	end = p + strcspn(p, "/");
	for (int pass = 0; pass < 2 && at == NULL; pass++) {
		for (const char *q = p; q < end; q++)
			if (*q == '@')
				at = q;
		end = p + strcspn(p, "?");
	}
	return at;
}

/*
 * Masks the secrets of a libpq URI: the password of the userinfo
 * "user:PASSWORD@", which ends at the last '@' before the first '/', or
 * when there is none there before the first '?' (libpq ends it at the
 * first '@' or '/', but a password holding either unencoded is still the
 * operator's secret, whatever libpq makes of it), and the values of the
 * "password" and "sslpassword" query parameters, their names
 * percent-decoded as libpq decodes them.  Anything not a URI is shown as
 * it is.
 */
const char *store_display_name(const char *db, char *buf, size_t cap)
{
	const char *p, *colon = NULL, *at;
	size_t out = 0;

	if (cap == 0)
		return "";
	buf[0] = '\0';
	if (db == NULL)
		return buf;
	if (!store_is_postgresql(db)) {
		snprintf(buf, cap, "%s", db);
		return buf;
	}
	p = strstr(db, "://") + 3;
	at = store_uri_userinfo_end(db);
	if (at)
		colon = memchr(p, ':', (size_t)(at - p));
	if (colon) {
		out = (size_t)snprintf(buf, cap, "%.*s:***", (int)(colon - db), db);
		p = at;
	} else {
		p = db;
	}
	/* The rest, with the value of every secret parameter masked. */
	while (*p && out < cap - 1) {
		bool param_start = (*p == '?' || *p == '&');
		int n = snprintf(buf + out, cap - out, "%c", *p);
		out += (size_t)n;
		p++;
		if (param_start && store_is_secret_param(p)) {
			size_t name = strcspn(p, "=");
			n = snprintf(buf + out, cap - out, "%.*s=***", (int)name, p);
			out += (size_t)n;
			p += name + 1;
			p += strcspn(p, "&#");
		}
	}
	if (out >= cap)
		buf[cap - 1] = '\0';
	return buf;
}

struct store *store_open(const struct store_options *opts, char *err, size_t errlen)
{
	if (store_is_postgresql(opts->path)) {
#ifdef HAVE_POSTGRESQL
		return store_pg_open(opts, err, errlen);
#else
		snprintf(err, errlen,
		         "this binary was built without PostgreSQL: rebuild it with "
		         "./configure --with-postgresql (libpq, Debian package libpq-dev)");
		return NULL;
#endif
	}
	return store_sqlite_open(opts, err, errlen);
}

const char *store_library_versions(char *buf, size_t cap)
{
#ifdef HAVE_POSTGRESQL
	const char *why;
	int pq = store_pg_library_version(&why);
	if (why != NULL)
		snprintf(buf, cap, "SQLite %s, libpq: cannot be loaded (%s)", sqlite3_libversion(),
		         why);
	else
		snprintf(buf, cap, "SQLite %s, libpq %d.%d", sqlite3_libversion(), pq / 10000,
		         pq % 10000);
#else
	snprintf(buf, cap, "SQLite %s, libpq: not built in (./configure --with-postgresql)",
	         sqlite3_libversion());
#endif
	return buf;
}

const char *store_backend(const struct store *st)
{
	return st->ops->name;
}

void store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

int store_schema_version(struct store *st)
{
	return st->ops->schema_version(st);
}

void store_set_busy_timeout(struct store *st, int ms)
{
	st->ops->set_busy_timeout(st, ms);
}

int store_record(struct store *st, struct delivery *d)
{
	return st->ops->record(st, d);
}

int store_record_ignored(struct store *st, struct delivery *d, const char *body, size_t body_len,
                         const char *message)
{
	return st->ops->record_ignored(st, d, body, body_len, message);
}

int store_message_seen(struct store *st, const char *message_id, bool *seen)
{
	return st->ops->message_seen(st, message_id, seen);
}

enum store_outcome store_apply(struct store *st, const struct event *ev, const char *body,
                               size_t body_len, const struct hook_ref *hooks, size_t n_hooks,
                               bool auto_register, struct delivery *d)
{
	return st->ops->apply(st, ev, body, body_len, hooks, n_hooks, auto_register, d);
}

/* One job through the single operations, in transactions of their own. */
static void run_job(struct store *st, struct store_job *j)
{
	bool seen = false;

	j->rc = 0;
	switch (j->kind) {
	case STORE_JOB_RECORD:
		j->rc = st->ops->record(st, j->d);
		break;
	case STORE_JOB_RECORD_IGNORED:
		j->rc = st->ops->record_ignored(st, j->d, j->body, j->body_len, j->message);
		break;
	case STORE_JOB_APPLY:
		if (j->d->message_id && st->ops->message_seen(st, j->d->message_id, &seen) < 0) {
			j->outcome = STORE_ERROR;
			j->rc = -1;
			break;
		}
		if (seen) {
			j->d->status_code = 200;
			j->d->reason = "replay";
			j->outcome = STORE_REPLAY;
			j->rc = st->ops->record(st, j->d);
			if (j->rc < 0)
				j->outcome = STORE_ERROR;
			break;
		}
		j->outcome = st->ops->apply(st, j->ev, j->body, j->body_len, j->hooks, j->n_hooks,
		                            j->auto_register, j->d);
		j->rc = j->outcome == STORE_ERROR ? -1 : 0;
		break;
	}
}

int store_write_batch(struct store *st, struct store_job *jobs, size_t n)
{
	int failed = 0;

	if (st->ops->write_batch != NULL)
		return st->ops->write_batch(st, jobs, n);
	for (size_t i = 0; i < n; i++) {
		run_job(st, &jobs[i]);
		failed += jobs[i].rc < 0;
	}
	return failed;
}

int store_sync(struct store *st)
{
	return st->ops->sync != NULL ? st->ops->sync(st) : 0;
}

void store_idle(struct store *st)
{
	if (st != NULL && st->ops->idle != NULL)
		st->ops->idle(st);
}

int store_image_status(struct store *st, const char *id, char *buf, size_t cap)
{
	return st->ops->image_status(st, id, buf, cap);
}

int store_register(struct store *st, const char *id, const char *metadata_json, int64_t expires_ms)
{
	return st->ops->register_image(st, id, metadata_json, expires_ms);
}

int store_expire(struct store *st, int64_t now_ms, const struct hook_ref *hooks, size_t n_hooks,
                 long *count)
{
	return st->ops->expire(st, now_ms, hooks, n_hooks, count);
}

int store_prune(struct store *st, int64_t cutoff_ms, struct store_prune_counts *out)
{
	return st->ops->prune(st, cutoff_ms, out);
}

int store_query(struct store *st, enum store_query q, const char *arg, int64_t limit,
                store_row_fn fn, void *fn_arg)
{
	return st->ops->query(st, q, arg, limit, fn, fn_arg);
}

int outbox_claim(struct store *st, int64_t now_ms, int64_t lease_ms, const char *host,
                 struct hook_run *run)
{
	return st->ops->claim(st, now_ms, lease_ms, host, run);
}

int outbox_set_pgid(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                    int64_t pgid, int64_t pg_start)
{
	return st->ops->set_pgid(st, run_id, attempt, claimed_ms, pgid, pg_start);
}

int outbox_finish(struct store *st, int64_t run_id, int64_t attempt, int64_t claimed_ms,
                  const char *state,
                  bool has_exit, int exit_code, const char *output, size_t output_len,
                  int64_t next_ms, int64_t now_ms)
{
	if (output_len > OUTPUT_TAIL_BYTES) {
		output += output_len - OUTPUT_TAIL_BYTES;
		output_len = OUTPUT_TAIL_BYTES;
	}
	return st->ops->finish(st, run_id, attempt, claimed_ms, state, has_exit, exit_code, output,
	                       output_len, next_ms, now_ms);
}

int outbox_flush(struct store *st)
{
	return st->durable ? store_sync(st) : 0;
}

int outbox_stale(struct store *st, int64_t now_ms, struct stale_run *out, size_t cap)
{
	return st->ops->stale(st, now_ms, out, cap);
}

int outbox_reclaim(struct store *st, const struct stale_run *run, int64_t max_attempts,
                   int64_t now_ms)
{
	return st->ops->reclaim(st, run, max_attempts, now_ms);
}

int outbox_any_due(struct store *st, int64_t now_ms, bool *due)
{
	return st->ops->any_due(st, now_ms, due);
}

int64_t outbox_next_due_ms(struct store *st)
{
	return st->ops->next_due_ms(st);
}

int outbox_retry(struct store *st, int64_t run_id, int64_t now_ms)
{
	return st->ops->retry(st, run_id, now_ms);
}

bool store_runner_slots_taken(const char *db, int max)
{
	return !store_is_postgresql(db) && sqlite_runner_slots_taken(db, max);
}

int store_take_runner_slot(struct store *st, int max)
{
	return st->ops->take_runner_slot(st, max);
}

void store_release_runner_slot(struct store *st)
{
	st->ops->release_runner_slot(st);
}

static const char *const image_columns[] = {
    "cloudflare_id", "status",     "filename", "metadata",   "variants",   "require_signed_urls",
    "error",         "uploaded_at", "expires_at", "result", "created_at", "updated_at"};
static const char *const log_columns[] = {"id",   "image_id",  "event_type", "message",
                                          "data", "timestamp", "delivery_id"};
static const char *const delivery_columns[] = {
    "id",         "received_at", "status_code", "reason",      "remote_addr",
    "scheme",     "message_id",  "image_id",    "body_sha256", "body_size"};
static const char *const run_columns[] = {
    "id",          "image_id",     "status",      "hook",           "path",   "state",
    "attempts",    "exit_code",    "output",      "next_attempt_at", "created_at",
    "finished_at", "previous_status", "event",    "input",          "delivery_id",
    "started_at",  "pgid",         "pg_start",    "lease_until",    "host"};

static const struct {
	const char *name;
	const char *const *columns;
	size_t n;
} tables[STORE_TABLE_COUNT] = {
    [STORE_TABLE_IMAGES] = {"cloudflare_images", image_columns,
                            sizeof image_columns / sizeof image_columns[0]},
    [STORE_TABLE_LOGS] = {"cloudflare_image_logs", log_columns,
                          sizeof log_columns / sizeof log_columns[0]},
    [STORE_TABLE_DELIVERIES] = {"webhook_deliveries", delivery_columns,
                                sizeof delivery_columns / sizeof delivery_columns[0]},
    [STORE_TABLE_HOOK_RUNS] = {"hook_runs", run_columns,
                               sizeof run_columns / sizeof run_columns[0]},
};

const char *store_table_name(enum store_table t)
{
	return tables[t].name;
}

const char *const *store_table_columns(enum store_table t, size_t *n)
{
	*n = tables[t].n;
	return tables[t].columns;
}

int store_dump(struct store *st, enum store_table t, store_row_fn fn, void *fn_arg)
{
	if (st->ops->dump == NULL) {
		log_error("store: a %s database cannot be copied from", st->ops->name);
		return -1;
	}
	return st->ops->dump(st, t, fn, fn_arg);
}

int store_load_begin(struct store *st, bool append)
{
	if (st->ops->load_begin == NULL) {
		log_error("store: a %s database cannot be copied to", st->ops->name);
		return -1;
	}
	return st->ops->load_begin(st, append);
}

int store_load_row(struct store *st, enum store_table t, const char *const *cols)
{
	return st->ops->load_row(st, t, cols);
}

int store_load_end(struct store *st, bool commit)
{
	return st->ops->load_end(st, commit);
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

void store_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

char *store_strdup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* True for the statuses a delivery may not move an image out of. */
static bool status_is_final(const char *status)
{
	return strcmp(status, "uploaded") == 0 || strcmp(status, "completed") == 0;
}

enum store_outcome store_decide(const char *prev, const char *next, const char **reason,
                                const char **log_type, char *message, size_t message_cap)
{
	if (strcmp(prev, next) == 0) {
		*reason = "duplicate";
		*log_type = LOG_DUPLICATE;
		snprintf(message, message_cap, "already %s", prev);
		return STORE_DUPLICATE;
	}
	if (status_is_final(prev)) {
		*reason = "stale";
		*log_type = LOG_STALE;
		snprintf(message, message_cap, "%s -> %s not applied (stale)", prev, next);
		return STORE_STALE;
	}
	*reason = "applied";
	*log_type = LOG_STATUS_CHANGED;
	snprintf(message, message_cap, "%s -> %s", prev[0] ? prev : "(new)", next);
	return STORE_APPLIED;
}

char *store_expire_input(const char *id)
{
	cJSON *obj = cJSON_CreateObject();
	char *input = NULL;

	if (obj != NULL && cJSON_AddStringToObject(obj, "id", id) != NULL &&
	    cJSON_AddStringToObject(obj, "status", EXPIRED_STATUS) != NULL)
		input = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	return input;
}

/* Adds a text column as a JSON string, or null. */
static bool add_text(cJSON *obj, const char *key, const char *text)
{
	cJSON *item = text ? cJSON_CreateString(text) : cJSON_CreateNull();

	return item != NULL && cJSON_AddItemToObject(obj, key, item);
}

/*
 * Adds a JSON-valued column embedded as JSON, without parsing it into
 * cJSON values: a number cJSON holds as a double would lose digits
 * (1234567890123456789) or become null (1e400).  The text is validated
 * by json_validate() and embedded as it is stored, less the whitespace
 * between its tokens (so the line stays one line; strings, numbers and
 * escapes are kept byte for byte).  A value that is not valid JSON (an
 * application may have written anything) is embedded as a JSON string
 * instead, so nothing stored is lost or misrepresented.
 */
static bool add_json(cJSON *obj, const char *key, const char *text)
{
	size_t len = text ? strlen(text) : 0;
	cJSON *item = NULL;
	char *compact;

	if (text == NULL) {
		item = cJSON_CreateNull();
	} else if (json_validate(text, len, NULL)) {
		if ((compact = malloc(len + 1)) == NULL)
			return false;
		json_compact(text, len, compact);
		item = cJSON_CreateRaw(compact);
		free(compact);
	} else {
		item = cJSON_CreateString(text);
	}
	return item != NULL && cJSON_AddItemToObject(obj, key, item);
}

char *store_show_from_columns(const char *const *cols)
{
	static const char *const keys[] = {"id",    "status",      "metadata",   "variants",
	                                   "result", "error",      "uploaded_at", "expires_at",
	                                   "created_at", "updated_at"};
	cJSON *obj = cJSON_CreateObject();
	char *out = NULL;
	size_t i;

	for (i = 0; obj != NULL && i < sizeof keys / sizeof keys[0]; i++) {
		bool json_valued = i >= 2 && i <= 4;
		if (!(json_valued ? add_json(obj, keys[i], cols[i]) : add_text(obj, keys[i], cols[i])))
			break;
	}
	if (obj != NULL && i == sizeof keys / sizeof keys[0])
		out = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	return out;
}

struct show_ctx {
	char *json;
	bool oom;
};

static int show_row(void *arg, const char *const *cols, size_t n_cols)
{
	struct show_ctx *c = arg;

	(void)n_cols;
	c->json = store_show_from_columns(cols);
	c->oom = c->json == NULL;
	return 1;
}

/* `show`: one query, then the object built here for every backend. */
int store_show_json(struct store *st, const char *id, char **out)
{
	struct show_ctx c = {NULL, false};
	int rc = store_query(st, STORE_QUERY_IMAGE, id, -1, show_row, &c);

	*out = NULL;
	if (rc < 0)
		return -1;
	if (c.oom) {
		log_error("store: showing an image: out of memory");
		return -1;
	}
	*out = c.json;
	return c.json != NULL ? 1 : 0;
}
