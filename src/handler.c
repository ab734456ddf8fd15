/*
 * The request contract of cfimages-webhook(8) REQUEST CONTRACT, in the order of its table: each
 * check either decides the answer (and the delivery row that records it)
 * or hands over to the next.  Only this file maps result codes to HTTP.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "event.h"
#include "handler.h"
#include "hook_exec.h"
#include "hook_runner.h"
#include "group_commit.h"
#include "hooks.h"
#include "hooks_cache.h"
#include "outbox.h"
#include "util.h"

/* One row of the status matrix: code, Status-line phrase, body, reason token. */
struct outcome {
	int status;
	const char *phrase;
	const char *body;
	const char *reason;
};

static const struct outcome FORBIDDEN = {403, "Forbidden", "Forbidden", "forbidden"};
static const struct outcome METHOD = {405, "Method Not Allowed", "Method not allowed",
                                      "method_not_allowed"};
static const struct outcome TOO_LARGE = {413, "Payload Too Large", "Payload too large",
                                         "payload_too_large"};
static const struct outcome MISSING_SIG = {401, "Unauthorized", "Missing signature",
                                           "missing_signature"};
static const struct outcome INVALID_SIG = {401, "Unauthorized", "Invalid signature",
                                           "invalid_signature"};
static const struct outcome BAD_JSON = {400, "Bad Request", "Invalid JSON", "invalid_json"};
static const struct outcome BAD_PAYLOAD = {400, "Bad Request", "Invalid payload",
                                           "invalid_payload"};
static const struct outcome IGNORED = {200, "OK", "Ignored", "ignored"};
static const struct outcome INTERNAL = {500, "Internal Server Error", "Internal server error",
                                        "internal_error"};
/* Outcomes whose delivery row is already written (or could not be): no reason. */
static const struct outcome PROCESSED = {200, "OK", "OK", NULL};
static const struct outcome NOT_FOUND_RECORDED = {404, "Not Found", "Image not found", NULL};
static const struct outcome IGNORED_RECORDED = {200, "OK", "Ignored", NULL};
static const struct outcome INTERNAL_UNRECORDED = {500, "Internal Server Error",
                                                   "Internal server error", NULL};

/* "No secret configured" is logged once per process, whichever thread sees it. */
static atomic_bool warned_no_secret;

/* Most names request_params looks for in one pass. */
#define REQUEST_PARAMS_MAX 8

/*
 * The values of the n (at most REQUEST_PARAMS_MAX) names in req's
 * parameters, NULL where absent, the first one where a name repeats:
 * found in one pass over them, however many names.
 */
static void request_params(const struct request *req, const char *const *names, size_t n,
                           const char **values)
{
	size_t lens[REQUEST_PARAMS_MAX];

	for (size_t i = 0; i < n; i++) {
		lens[i] = strlen(names[i]);
		values[i] = NULL;
	}
	for (size_t k = 0; req->params && req->params[k]; k++) {
		const char *param = req->params[k], *eq = strchr(param, '=');
		size_t len;

		if (eq == NULL)
			continue;
		len = (size_t)(eq - param);
		for (size_t i = 0; i < n; i++)
			if (lens[i] == len && values[i] == NULL && memcmp(param, names[i], len) == 0) {
				values[i] = eq + 1;
				break;
			}
	}
}

const char *request_param(const struct request *req, const char *name)
{
	const char *value;

	request_params(req, &name, 1, &value);
	return value;
}

void handler_init(struct handler *h, const char *config_path, char *const *envp,
                  const char *exe_dir)
{
	memset(h, 0, sizeof *h);
	h->cfg_ok = config_load(&h->cfg, config_path, envp, exe_dir, h->cfg_error,
	                        sizeof h->cfg_error) == 0;
	if (h->cfg_ok)
		log_set_level(h->cfg.log_level);
	else
		log_error("configuration: %s", h->cfg_error);
	h->cfg_error_logged = !h->cfg_ok;
}

void handler_clone(struct handler *h, const struct handler *parent)
{
	memset(h, 0, sizeof *h);
	h->cfg = parent->cfg;
	h->cfg_ok = parent->cfg_ok;
	memcpy(h->cfg_error, parent->cfg_error, sizeof h->cfg_error);
	h->cgi = parent->cgi;
	h->group = parent->group;
	h->borrowed_cfg = true;
}

void handler_fini(struct handler *h)
{
	store_close(h->store);
	hooks_cache_free(&h->hooks_cache);
	secret_set_free(&h->secrets);
	if (!h->borrowed_cfg)
		config_free(&h->cfg);
	memset(h, 0, sizeof *h);
}

static void set_answer(struct answer *ans, const struct outcome *o)
{
	ans->status = o->status;
	ans->phrase = o->phrase;
	ans->body = o->body;
	ans->allow_post = o->status == 405;
}

/*
 * Opens the store on first use; false (logged) when it cannot be opened.
 * This is the handle of a handler without a group commit (CGI, tests):
 * one request per process in CGI mode, so statements are prepared when
 * first used.
 */
static bool ensure_store(struct handler *h)
{
	char err[512];
	struct store_options opts = {
		.path = h->cfg.db,
		.db_mode = h->cfg.db_mode,
		.durable = h->cfg.durability_full,
		.create = true,
		.responder = true,
		.one_shot = h->cgi,
	};
	if (h->store)
		return true;
	h->store = store_open(&opts, err, sizeof err);
	if (h->store == NULL)
		log_error("database: %s", err);
	return h->store != NULL;
}

/*
 * Writes one request's rows: through the process's group commit when
 * there is one, else in a transaction of its own.  False when the
 * database could not be opened (job->rc is then -1).
 */
static bool commit_job(struct handler *h, struct store_job *job)
{
	if (h->group != NULL)
		return group_commit_submit(h->group, job);
	if (!ensure_store(h)) {
		job->rc = -1;
		job->outcome = STORE_ERROR;
		return false;
	}
	store_write_batch(h->store, job, 1);
	return true;
}

/*
 * The job that writes the delivery row of a request that changed nothing
 * else (its answer is set by handler_complete).
 */
static void prepare_finish(struct prepared *pr, struct delivery *d, const struct outcome *o)
{
	d->status_code = o->status;
	d->reason = o->reason;
	pr->job = (struct store_job){.kind = STORE_JOB_RECORD, .d = d};
	pr->after = AFTER_FINISH;
	pr->o = o;
}

/*
 * Parses CONTENT_LENGTH: absent means an empty body; digits too many for
 * an int64 are INT64_MAX (certainly above max_body); anything but plain
 * digits is reported as malformed (the body is then treated as truncated).
 */
static bool content_length(const struct request *req, int64_t *len)
{
	const char *v = request_param(req, "CONTENT_LENGTH");
	*len = 0;
	if (v == NULL || v[0] == '\0')
		return true;
	if (parse_int64(v, 0, INT64_MAX, len))
		return true;
	if (strspn(v, "0123456789") != strlen(v))
		return false;
	*len = INT64_MAX;
	return true;
}

/*
 * Reads exactly want bytes if the transport has them.  Returns a malloc'd
 * buffer (NUL-terminated for convenience) and the count actually read; a
 * short count means the body was truncated (the transport said it ended).
 * A read error (the connection failed or read_timeout passed) sets
 * *dropped and returns NULL: there is nobody left to answer.
 */
static char *read_body(const struct request *req, size_t want, size_t *got, bool *dropped)
{
	char *buf = malloc(want + 1);
	*got = 0;
	*dropped = false;
	if (buf == NULL)
		return NULL;
	while (*got < want) {
		ssize_t n = req->read_body(req->read_ctx, buf + *got, want - *got);
		if (n < 0) {
			*dropped = true;
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	buf[*got] = '\0';
	return buf;
}

static void collect_headers(const struct request *req, struct auth_headers *hd)
{
	static const char *const names[] = {
	    "HTTP_X_SIGNATURE",       "HTTP_X_CLOUDFLARE_SIGNATURE", "HTTP_X_IMGGO_SIGNATURE",
	    "HTTP_X_HUB_SIGNATURE_256", "HTTP_CF_WEBHOOK_AUTH",      "HTTP_WEBHOOK_SIGNATURE",
	    "HTTP_WEBHOOK_ID",        "HTTP_WEBHOOK_TIMESTAMP"};
	enum { N_NAMES = sizeof names / sizeof names[0] };
	_Static_assert(N_NAMES <= REQUEST_PARAMS_MAX, "request_params looks for fewer names");
	const char *v[N_NAMES];

	request_params(req, names, N_NAMES, v);
	hd->x_signature = v[0];
	hd->x_cloudflare_signature = v[1];
	hd->x_imggo_signature = v[2];
	hd->x_hub_signature_256 = v[3];
	hd->cf_webhook_auth = v[4];
	hd->webhook_signature = v[5];
	hd->webhook_id = v[6];
	hd->webhook_timestamp = v[7];
}

/*
 * Authenticates (rows 4 and 5).  Returns NULL when the delivery may go on,
 * else the outcome that ends it.  Sets d->scheme and d->message_id.
 */
static const struct outcome *authenticate(struct handler *h, const struct request *req,
                                          const char *body, size_t len, struct delivery *d)
{
	struct auth_headers hd = {0};
	enum auth_scheme scheme = AUTH_SCHEME_NONE;
	enum auth_result r;

	collect_headers(req, &hd);
	if (secret_set_refresh(&h->secrets, &h->cfg) < 0)
		return &INTERNAL;
	if (h->secrets.n == 0) {
		if (!atomic_exchange(&warned_no_secret, true))
			log_warn("no secret configured: accepting unauthenticated deliveries");
		d->scheme = auth_scheme_token(AUTH_SCHEME_NONE);
		d->message_id = hd.webhook_id;
		return NULL;
	}
	r = auth_verify(&hd, (const unsigned char *)body, len, h->secrets.items, h->secrets.n,
	                d->received_ms / 1000, h->cfg.tolerance_seconds, &scheme);
	if (r == AUTH_MISSING)
		return &MISSING_SIG;
	if (r != AUTH_OK)
		return &INVALID_SIG;
	d->scheme = auth_scheme_token(scheme);
	if (scheme == AUTH_SCHEME_STANDARD)
		d->message_id = hd.webhook_id;
	return NULL;
}

/*
 * Rows 6 to 11, once the body is authenticated (a replay, row 11, is told
 * by the store, in the same transaction), up to the store: returns the
 * outcome that ends the delivery, or NULL when its job is prepared (pr).
 */
static const struct outcome *apply(struct handler *h, const char *body, size_t len,
                                   struct delivery *d, struct prepared *pr)
{
	const struct hook_list *hooks = NULL;
	const char *why = NULL;
	struct event *ev = &pr->ev;
	struct store_job job = {.d = d, .ev = ev, .body = body, .body_len = len};

	switch (event_parse(body, len, ev, &why)) {
	case EVENT_OK:
		break;
	case EVENT_BAD_JSON:
		d->image_id = ev->image_id;
		log_info("delivery refused: invalid JSON (%s)", why ? why : "?");
		return &BAD_JSON;
	case EVENT_BAD_PAYLOAD:
		d->image_id = ev->image_id;
		log_info("delivery refused: invalid payload (%s)", why ? why : "?");
		return &BAD_PAYLOAD;
	case EVENT_INTERNAL:
		log_error("out of memory parsing a delivery");
		return &INTERNAL;
	case EVENT_IGNORED:
		d->image_id = ev->image_id;
		log_debug("delivery ignored (%s)", why ? why : "event type not acted on");
		if (ev->keep_body) {
			log_info("delivery ignored and kept in the log for inspection (%s)", why);
			d->status_code = IGNORED.status;
			d->reason = IGNORED.reason;
			job.kind = STORE_JOB_RECORD_IGNORED;
			job.message = why;
			pr->job = job;
			pr->after = AFTER_IGNORED;
			return NULL;
		}
		return &IGNORED;
	}
	d->image_id = ev->image_id;
	if (hooks_cache_discover(&h->hooks_cache, h->cfg.hooks_dir, ev->status, &hooks) < 0)
		return &INTERNAL;
	job.kind = STORE_JOB_APPLY;
	job.hooks = hooks->items;
	job.n_hooks = hooks->n;
	job.auto_register = h->cfg.auto_register;
	pr->job = job;
	pr->after = AFTER_APPLY;
	return NULL;
}

/* The outcome of an applied event's job (its row is written, or could not be). */
static const struct outcome *applied(struct handler *h, const struct prepared *pr, bool opened)
{
	const struct store_job *job = &pr->job;
	const struct event *ev = &pr->ev;
	const struct delivery *d = job->d;

	if (opened && job->outcome == STORE_APPLIED && job->n_hooks)
		h->hooks_pending = true;
	if (!opened)
		return &INTERNAL_UNRECORDED;
	switch (job->outcome) {
	case STORE_APPLIED:
		log_info("image %s: now %s (%s)", ev->image_id, ev->status, ev->event_name);
		return &PROCESSED;
	case STORE_DUPLICATE:
	case STORE_STALE:
		log_info("image %s: %s %s not applied (%s)", ev->image_id, ev->event_name,
		         ev->status, job->outcome == STORE_STALE ? "stale" : "duplicate");
		return &PROCESSED;
	case STORE_REPLAY:
		log_info("image %s: message %s applied meanwhile by another process (replay)",
		         ev->image_id, d->message_id ? d->message_id : "?");
		return &PROCESSED;
	case STORE_NOT_FOUND:
		log_info("image %s: not registered (auto_register is off)", ev->image_id);
		return &NOT_FOUND_RECORDED;
	case STORE_ERROR:
		break;
	}
	return &INTERNAL_UNRECORDED; /* the store logged it and tried to record a 500 */
}

/*
 * Rows 1 to 3 and the body: everything a request needs from its
 * connection, decided without the database (rows 1-3 are recorded later,
 * by handler_process).  A transport that must bound how long a client may
 * take to send its request bounds exactly this call.
 */
void handler_receive(struct handler *h, const struct request *req, struct received *rx)
{
	const char *method = request_param(req, "REQUEST_METHOD");

	memset(rx, 0, sizeof *rx);
	rx->d.received_ms = time_now_ms();
	rx->d.remote_addr = request_param(req, "REMOTE_ADDR");
	if (!h->cfg_ok)
		return; /* answered 500 by handler_process, no row */
	if (!config_allows(&h->cfg, rx->d.remote_addr)) {
		rx->decided = &FORBIDDEN;
		return;
	}
	if (method == NULL || strcmp(method, "POST") != 0) {
		rx->decided = &METHOD;
		return;
	}
	rx->clen_ok = content_length(req, &rx->clen);
	if (rx->clen_ok && rx->clen > h->cfg.max_body_bytes) {
		rx->decided = &TOO_LARGE;
		return;
	}
	rx->body = read_body(req, rx->clen_ok ? (size_t)rx->clen : 0, &rx->got, &rx->dropped);
	if (rx->dropped)
		return;
	if (rx->body == NULL) {
		log_error("out of memory reading a %lld-byte body", (long long)rx->clen);
		rx->decided = &INTERNAL;
		return;
	}
	rx->body_read = true;
	rx->d.has_body = true;
	rx->d.body_size = rx->got;
	sha256(rx->body, rx->got, rx->d.body_sha256);
}

bool handler_prepare(struct handler *h, const struct request *req, struct received *rx,
                     struct prepared *pr, struct answer *ans)
{
	struct delivery *d = &rx->d;
	const struct outcome *o = rx->decided;

	memset(pr, 0, sizeof *pr);
	if (!h->cfg_ok) {
		/* Logged for every request, but the first one after handler_init
		 * logged it (a CGI request would say it twice). */
		if (!h->cfg_error_logged)
			log_error("configuration: %s", h->cfg_error);
		h->cfg_error_logged = false;
		set_answer(ans, &INTERNAL);
		return false;
	}
	if (rx->dropped) {
		log_warn("request from %s dropped: its body was not received (read error or "
		         "read_timeout)",
		         d->remote_addr ? d->remote_addr : "?");
		set_answer(ans, &INTERNAL);
		return false;
	}
	if (o == NULL) {
		o = authenticate(h, req, rx->body, rx->got, d);
		if (o == NULL && (!rx->clen_ok || rx->got < (size_t)rx->clen))
			o = &BAD_JSON; /* truncated: fewer bytes than CONTENT_LENGTH */
		if (o == NULL)
			o = apply(h, rx->body, rx->got, d, pr);
		if (o == NULL)
			return true; /* apply prepared the job */
	}
	prepare_finish(pr, d, o);
	return true;
}

void handler_complete(struct handler *h, struct prepared *pr, bool opened, struct answer *ans)
{
	const struct outcome *o = pr->o;

	switch (pr->after) {
	case AFTER_FINISH:
		/* When even the row cannot be written (no database, or an error
		 * the store has logged) the rejection still stands -- the first
		 * failed check decides (cfimages-webhook(8) REQUEST CONTRACT) --
		 * except for a 200, which would tell the sender its delivery was
		 * recorded: that becomes a 500 so it retries. */
		if ((!opened || pr->job.rc < 0) && o->status == 200)
			o = &INTERNAL;
		break;
	case AFTER_IGNORED:
		o = !opened || pr->job.rc < 0 ? &INTERNAL_UNRECORDED : &IGNORED_RECORDED;
		break;
	case AFTER_APPLY:
		o = applied(h, pr, opened);
		break;
	}
	set_answer(ans, o);
	event_free(&pr->ev);
}

void handler_process(struct handler *h, const struct request *req, struct received *rx,
                     struct answer *ans)
{
	struct prepared pr;

	if (handler_prepare(h, req, rx, &pr, ans))
		handler_complete(h, &pr, commit_job(h, &pr.job), ans);
}

void handler_received_free(struct received *rx)
{
	free(rx->body);
	rx->body = NULL;
}

void handler_handle(struct handler *h, const struct request *req, struct answer *ans)
{
	struct received rx;

	handler_receive(h, req, &rx);
	handler_process(h, req, &rx, ans);
	handler_received_free(&rx);
}

void handler_after_answer(struct handler *h)
{
	int64_t now;
	bool due = h->hooks_pending;

	h->hooks_pending = false;
	if (h->group != NULL) {
		group_commit_idle(h->group, due ? INT64_MAX : HANDLER_DUE_CHECK_SECONDS * 1000, &due);
	} else if (h->store) {
		store_idle(h->store);
		now = time_now_ms();
		if (!due && now - h->last_due_check_ms >= HANDLER_DUE_CHECK_SECONDS * 1000) {
			h->last_due_check_ms = now;
			if (outbox_any_due(h->store, now, &due) < 0)
				due = false;
		}
	}
	if (due)
		hooks_spawn_runner(&h->cfg, h->cgi);
}
