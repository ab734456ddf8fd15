/*
 * Payload normalization, cfimages-webhook(8) PAYLOADS: the raw body is validated as
 * RFC 8259 JSON by json_validate(), parsed by cJSON, checked for duplicate
 * keys, then recognized as one of the shapes (Images envelope, job event,
 * Cloudflare Notifications envelope, "Save and Test" probe, flat Cloudflare
 * payload) and turned into one struct event.  Pure: no I/O, no globals;
 * everything allocated is handed back in the event or freed here.
 *
 * cJSON decides the shape and the types; the JSON-valued fields
 * (metadata, variants, result) are then copied from the body's own text,
 * found by json_member_span(), because printing them again with cJSON
 * would change them: numbers pass through a double (1234567890123456789
 * becomes 1.2345678901234568e+18, 1e400 becomes null).
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "event.h"
#include "json.h"
#include "util.h"

/* CFIMAGES_EVENT names of the flat Cloudflare shapes (cfimages-webhook(8) HOOKS). */
#define FLAT_EVENT_COMPLETE "upload.complete"
#define FLAT_EVENT_FAILED "upload.failed"
#define FLAT_EVENT_DRAFT "upload.draft"

/* Statuses an event can move an image to (cfimages-webhook(8) STATUSES). */
#define STATUS_UPLOADED "uploaded"
#define STATUS_DRAFT "draft"
#define STATUS_FAILED "failed"
#define STATUS_QUEUED "queued"
#define STATUS_COMPLETED "completed"

/* The reason given for an allocation failure. */
static const char WHY_NO_MEMORY[] = "out of memory";

/*
 * A growable array of key pointers, reused for every object of one
 * document so the duplicate check allocates O(widest object) once.
 */
struct key_buffer {
	const char **keys; /* borrowed from the cJSON tree */
	size_t cap;        /* slots allocated */
};

/* The member named key of obj, compared byte for byte (never case-folded). */
static const cJSON *member(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* A malloc'd copy of the NUL-terminated s, or NULL when memory runs out. */
static char *copy_string(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

/* True when s starts with prefix, byte for byte. */
static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ASCII lower case of c; other bytes unchanged (no locale). */
static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* True when s starts with the lower-case ASCII prefix in any letter case. */
static bool has_prefix_nocase(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++)
		if (ascii_lower(*s) != *prefix)
			return false;
	return true;
}

/*
 * A variant URL: the scheme is http or https (RFC 3986 section 3.1: schemes
 * are case-insensitive) followed by "//" and at least one more byte.  This
 * keeps javascript:, data: and relative references out of the database.
 */
static bool is_http_url(const char *s)
{
	if (has_prefix_nocase(s, "https://"))
		return s[8] != '\0';
	if (has_prefix_nocase(s, "http://"))
		return s[7] != '\0';
	return false;
}

/* qsort comparator for an array of NUL-terminated key pointers. */
static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Checks that no object in the tree under node repeats a key
 * (cfimages-webhook(8) PAYLOADS; cJSON keeps both and looks up the first, while many hook languages
 * take the last).  Keys are compared after escape decoding, so "a" and
 * "\u0061" collide.  Each object costs O(k log k) for k keys: sort the key
 * pointers, compare neighbours.  Recursion is bounded by JSON_MAX_DEPTH,
 * which json_validate() enforced before cJSON built the tree.  Returns NULL
 * when there is no duplicate, else a static reason.
 */
static const char *find_duplicate_keys(const cJSON *node, struct key_buffer *kb)
{
	const cJSON *child;

	if (cJSON_IsObject(node)) {
		size_t n = 0;
		for (child = node->child; child != NULL; child = child->next)
			n++;
		if (n > kb->cap) {
			const char **grown = realloc(kb->keys, n * sizeof *grown);
			if (grown == NULL)
				return WHY_NO_MEMORY;
			kb->keys = grown;
			kb->cap = n;
		}
		n = 0;
		for (child = node->child; child != NULL; child = child->next)
			kb->keys[n++] = child->string != NULL ? child->string : "";
		if (n > 1) {
			qsort(kb->keys, n, sizeof *kb->keys, compare_keys);
			for (size_t i = 1; i < n; i++)
				if (strcmp(kb->keys[i - 1], kb->keys[i]) == 0)
					return "an object has a duplicate key";
		}
	}
	if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
		for (child = node->child; child != NULL; child = child->next) {
			const char *why = find_duplicate_keys(child, kb);
			if (why != NULL)
				return why;
		}
	}
	return NULL;
}

/* Room for an error code number written as text. */
#define ERROR_CODE_TEXT_SIZE 32

/*
 * Validates an "error" member: a string, or an object with a string
 * "message".  cfimages-webhook(8) PAYLOADS stores "an error object's message (else its
 * code)", so an object without "message" but with a "code" is accepted
 * too: a string, or an integer (Cloudflare's error codes are numbers),
 * written as decimal text into buf.  On success points *text into the tree
 * or buf and returns NULL.
 */
static const char *read_error(const cJSON *err, const char **text,
                              char buf[ERROR_CODE_TEXT_SIZE])
{
	const cJSON *msg, *code;

	if (cJSON_IsString(err)) {
		*text = err->valuestring;
		return NULL;
	}
	if (!cJSON_IsObject(err))
		return "error is neither a string nor an object";
	msg = member(err, "message");
	if (msg != NULL) {
		if (!cJSON_IsString(msg))
			return "error message is not a string";
		*text = msg->valuestring;
		return NULL;
	}
	code = member(err, "code");
	if (cJSON_IsString(code)) {
		*text = code->valuestring;
		return NULL;
	}
	if (cJSON_IsNumber(code) && code->valuedouble == (double)(long long)code->valuedouble &&
	    code->valuedouble > -1e15 && code->valuedouble < 1e15) {
		snprintf(buf, ERROR_CODE_TEXT_SIZE, "%lld", (long long)code->valuedouble);
		*text = buf;
		return NULL;
	}
	return "error object has no string message, nor a string or integer code";
}

/* Validates an optional RFC 3339 member; stores its time when out_ms is not NULL. */
static const char *read_time(const cJSON *obj, const char *key, int64_t *out_ms, bool *present)
{
	const cJSON *item = member(obj, key);
	int64_t ms;

	if (present != NULL)
		*present = false;
	if (item == NULL)
		return NULL;
	if (!cJSON_IsString(item) ||
	    !rfc3339_parse(item->valuestring, strlen(item->valuestring), &ms))
		return "a time is not an RFC 3339 string";
	if (out_ms != NULL)
		*out_ms = ms;
	if (present != NULL)
		*present = true;
	return NULL;
}

/*
 * Where in the body the object being read is written: the body (validated
 * by json_validate) and the span of that object.
 */
struct source {
	const char *body;      /* the whole body, not NUL-terminated */
	struct json_span span; /* the object cJSON read as obj */
};

/*
 * The value of member key of the source's object, exactly as the sender
 * wrote it (whitespace inside it included), into a malloc'd NUL-terminated
 * *out.  The member exists (cJSON found it), and names compare the same
 * way in both, so not finding it would be a bug: refused, not guessed.
 */
static const char *copy_member_text(const struct source *src, const char *key, char **out)
{
	struct json_span value;
	size_t n;

	if (!json_member_span(src->body, src->span, key, &value))
		return "a member cJSON found is not in the body's text";
	n = value.end - value.start;
	if ((*out = malloc(n + 1)) == NULL)
		return WHY_NO_MEMORY;
	memcpy(*out, src->body + value.start, n);
	(*out)[n] = '\0';
	return NULL;
}

/*
 * The source of member key (an object) of the source's object, for reading
 * a nested payload: an envelope's "image", a notification's "data".
 */
static const char *nested_source(const struct source *outer, const char *key, struct source *inner)
{
	inner->body = outer->body;
	if (!json_member_span(outer->body, outer->span, key, &inner->span))
		return "a member cJSON found is not in the body's text";
	return NULL;
}

/*
 * Reads one payload object (a flat Cloudflare payload, an envelope's
 * "image", a notification's "data", a job event) into *ev: the id under
 * id_key, which must pass image_id_problem(), then every optional field of
 * cfimages-webhook(8) PAYLOADS that is present, each type-checked.  The status is left
 * to the caller.  src tells where obj is written in the body, for the
 * JSON-valued fields.  Returns NULL, or a static reason when something
 * fails; ev->image_id is set as soon as the id itself is known to be valid.
 */
/*
 * Member key of obj; with null_is_absent, a JSON null counts as no member.
 * Only the Standard Webhooks shape reads nulls so: its "data" may be the
 * image as `show` prints it (an action of another instance sends that),
 * where null means "not known".  In the other shapes a null is refused, as
 * ever: "error": null says neither success nor failure.
 */
static const cJSON *optional(const cJSON *obj, const char *key, bool null_is_absent)
{
	const cJSON *item = member(obj, key);
	return null_is_absent && cJSON_IsNull(item) ? NULL : item;
}

static const char *read_payload(const cJSON *obj, const struct source *src, const char *id_key,
                                bool standard, struct event *ev)
{
	const cJSON *id = member(obj, id_key), *item, *v;
	const cJSON *metadata = optional(obj, "metadata", standard), *meta = member(obj, "meta");
	const char *why, *text = NULL;
	char code_text[ERROR_CODE_TEXT_SIZE];

	if (id == NULL)
		return "payload has no id";
	if (!cJSON_IsString(id))
		return "id is not a string";
	if ((why = image_id_problem(id->valuestring)) != NULL)
		return why;
	if ((ev->image_id = copy_string(id->valuestring)) == NULL)
		return WHY_NO_MEMORY;

	if ((item = optional(obj, "filename", standard)) != NULL) {
		if (!cJSON_IsString(item))
			return "filename is not a string";
		if ((ev->filename = copy_string(item->valuestring)) == NULL)
			return WHY_NO_MEMORY;
	}
	if ((why = read_time(obj, "uploaded", &ev->uploaded_ms, &ev->has_uploaded)) != NULL ||
	    (why = read_time(obj, "timestamp", NULL, NULL)) != NULL)
		return why;
	/* Our own image object (`show`) says uploaded_at. */
	if (standard && !ev->has_uploaded && optional(obj, "uploaded_at", true) != NULL &&
	    (why = read_time(obj, "uploaded_at", &ev->uploaded_ms, &ev->has_uploaded)) != NULL)
		return why;
	if ((item = optional(obj, "variants", standard)) != NULL) {
		if (!cJSON_IsArray(item))
			return "variants is not an array";
		for (v = item->child; v != NULL; v = v->next)
			if (!cJSON_IsString(v) || !is_http_url(v->valuestring))
				return "a variant is not an http(s) URL";
		if ((why = copy_member_text(src, "variants", &ev->variants_json)) != NULL)
			return why;
	}
	if ((item = optional(obj, "requireSignedURLs", standard)) != NULL) {
		if (!cJSON_IsBool(item))
			return "requireSignedURLs is not a boolean";
		ev->require_signed_urls = cJSON_IsTrue(item) ? 1 : 0;
	}
	if ((item = member(obj, "draft")) != NULL && !cJSON_IsBool(item))
		return "draft is not a boolean";
	if ((metadata != NULL && !cJSON_IsObject(metadata)) ||
	    (meta != NULL && !cJSON_IsObject(meta)))
		return "metadata is not an object";
	if (metadata != NULL || meta != NULL) {
		if ((why = copy_member_text(src, metadata != NULL ? "metadata" : "meta",
		                            &ev->metadata_json)) != NULL)
			return why;
	}
	if ((item = optional(obj, "result", standard)) != NULL) {
		if (!cJSON_IsObject(item))
			return "result is not an object";
		if ((why = copy_member_text(src, "result", &ev->result_json)) != NULL)
			return why;
	}
	if ((item = optional(obj, "error", standard)) != NULL) {
		if ((why = read_error(item, &text, code_text)) != NULL)
			return why;
		if ((ev->error_text = copy_string(text)) == NULL)
			return WHY_NO_MEMORY;
	}
	return NULL;
}

/*
 * Sets the event's name to a copy of name.  The name reaches hooks as
 * CFIMAGES_EVENT and the log, so it must be short printable ASCII.
 */
static const char *set_event_name(struct event *ev, const char *name)
{
	size_t n = strlen(name);
	if (n > EVENT_NAME_MAX_BYTES)
		return "event name longer than 128 bytes";
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x21 || name[i] > 0x7e)
			return "event name is not printable ASCII";
	return (ev->event_name = copy_string(name)) == NULL ? WHY_NO_MEMORY : NULL;
}

/*
 * Drops an error text that a non-failure status does not store (an
 * "error" member is still type-checked, as cfimages-webhook(8) PAYLOADS asks).
 */
static void keep_error_only_when_failed(struct event *ev)
{
	if (strcmp(ev->status, STATUS_FAILED) != 0) {
		free(ev->error_text);
		ev->error_text = NULL;
	}
}

/*
 * The flat Cloudflare shapes, also used for a notification's "data": an id
 * plus "error" is a failure (error wins over uploaded), an id plus any of
 * "uploaded", "variants", "draft" is an upload ("draft": true makes it a
 * draft).  An id with none of these has nothing to apply.  name is the
 * sender's event name, or NULL for the flat names upload.complete,
 * upload.failed, upload.draft.
 */
static enum event_result flat_payload(const cJSON *obj, const struct source *src, const char *name,
                                      struct event *ev, const char **why)
{
	const cJSON *draft = member(obj, "draft");

	if ((*why = read_payload(obj, src, "id", false, ev)) != NULL)
		return EVENT_BAD_PAYLOAD;
	if (member(obj, "error") != NULL) {
		ev->status = STATUS_FAILED;
		name = name != NULL ? name : FLAT_EVENT_FAILED;
	} else if (member(obj, "uploaded") == NULL && member(obj, "variants") == NULL &&
	           draft == NULL) {
		*why = "payload has an id but nothing to apply";
		return EVENT_BAD_PAYLOAD;
	} else if (cJSON_IsTrue(draft)) {
		ev->status = STATUS_DRAFT;
		name = name != NULL ? name : FLAT_EVENT_DRAFT;
	} else {
		ev->status = STATUS_UPLOADED;
		name = name != NULL ? name : FLAT_EVENT_COMPLETE;
	}
	if ((*why = set_event_name(ev, name)) != NULL)
		return EVENT_BAD_PAYLOAD;
	return EVENT_OK;
}

/*
 * The Images envelope: {"event":"image.…","timestamp",…,"image":{…}}.
 * image.uploaded → uploaded; image.failed and image.upload_failed →
 * failed, with the error of the image object, else the envelope's own
 * "error".  Other image.* types are ignored before anything else is read.
 */
static enum event_result image_envelope(const cJSON *root, const struct source *src,
                                        const char *name, const char *image_key,
                                        struct event *ev, const char **why)
{
	const cJSON *image = member(root, image_key), *top_error = member(root, "error");
	const char *top_text = NULL;
	struct source image_src;
	char code_text[ERROR_CODE_TEXT_SIZE];

	if (strcmp(name, "image.uploaded") == 0) {
		ev->status = STATUS_UPLOADED;
	} else if (strcmp(name, "image.failed") == 0 || strcmp(name, "image.upload_failed") == 0) {
		ev->status = STATUS_FAILED;
	} else {
		*why = "image event type not acted on";
		return EVENT_IGNORED;
	}
	if (!cJSON_IsObject(image)) {
		*why = strcmp(image_key, "image") == 0 ? "image envelope has no image object"
		                                       : "Standard Webhooks payload has no data object";
		return EVENT_BAD_PAYLOAD;
	}
	if ((*why = read_time(root, "timestamp", NULL, NULL)) != NULL ||
	    (top_error != NULL && (*why = read_error(top_error, &top_text, code_text)) != NULL) ||
	    (*why = nested_source(src, image_key, &image_src)) != NULL ||
	    (*why = read_payload(image, &image_src, "id", strcmp(image_key, "data") == 0, ev)) != NULL)
		return EVENT_BAD_PAYLOAD;
	if (ev->error_text == NULL && top_text != NULL &&
	    (ev->error_text = copy_string(top_text)) == NULL) {
		*why = WHY_NO_MEMORY;
		return EVENT_BAD_PAYLOAD;
	}
	keep_error_only_when_failed(ev);
	if ((*why = set_event_name(ev, name)) != NULL)
		return EVENT_BAD_PAYLOAD;
	return EVENT_OK;
}

/*
 * An image-processing job event: {"event":"job.…","job_id",…}.  The id is
 * job_id; job.queued → queued, job.completed → completed (its "result"
 * stored), job.failed → failed (its error stored).  Other job.* types are
 * ignored before anything else is read.
 */
static enum event_result job_event(const cJSON *root, const struct source *src, const char *name,
                                   struct event *ev, const char **why)
{
	if (strcmp(name, "job.queued") == 0) {
		ev->status = STATUS_QUEUED;
	} else if (strcmp(name, "job.completed") == 0) {
		ev->status = STATUS_COMPLETED;
	} else if (strcmp(name, "job.failed") == 0) {
		ev->status = STATUS_FAILED;
	} else {
		*why = "job event type not acted on";
		return EVENT_IGNORED;
	}
	if ((*why = read_payload(root, src, "job_id", false, ev)) != NULL)
		return EVENT_BAD_PAYLOAD;
	keep_error_only_when_failed(ev);
	if ((*why = set_event_name(ev, name)) != NULL)
		return EVENT_BAD_PAYLOAD;
	return EVENT_OK;
}

/*
 * The Cloudflare Notifications envelope: an image alert type
 * ("image_notification", or one starting "images_") carries a flat payload
 * in "data".  Cloudflare publishes no example of that data, so a "data"
 * without an id is answered Ignored rather than refused (a refusal would
 * only make Cloudflare retry) and marked keep_body, so the handler keeps
 * the whole body in a log row for the operator to inspect.
 */
static enum event_result notification(const cJSON *root, const struct source *src, const char *name,
                                      struct event *ev, const char **why)
{
	const cJSON *data = member(root, "data");
	struct source data_src;

	if (strcmp(name, "image_notification") != 0 && !has_prefix(name, "images_")) {
		*why = "notification alert type not acted on";
		return EVENT_IGNORED;
	}
	if (!cJSON_IsObject(data) || member(data, "id") == NULL) {
		*why = "image notification without an id";
		ev->keep_body = true;
		return EVENT_IGNORED;
	}
	if ((*why = nested_source(src, "data", &data_src)) != NULL)
		return EVENT_BAD_PAYLOAD;
	return flat_payload(data, &data_src, name, ev, why);
}

/*
 * Recognizes the shape of a duplicate-free top-level object, in the order
 * of cfimages-webhook(8) PAYLOADS: an "event" field, then an "alert_type"
 * field, then a Standard Webhooks "type" of image.* with "data", then the
 * "Save and Test" probe, then the flat shapes.
 */
static enum event_result recognize(const cJSON *root, const struct source *src, struct event *ev,
                                   const char **why)
{
	const cJSON *event = member(root, "event"), *alert = member(root, "alert_type");
	const cJSON *type = member(root, "type");

	if (event != NULL) {
		if (!cJSON_IsString(event)) {
			*why = "event is not a string";
			return EVENT_BAD_PAYLOAD;
		}
		if (has_prefix(event->valuestring, "image."))
			return image_envelope(root, src, event->valuestring, "image", ev, why);
		if (has_prefix(event->valuestring, "job."))
			return job_event(root, src, event->valuestring, ev, why);
		*why = "event type not acted on";
		return EVENT_IGNORED;
	}
	if (alert != NULL) {
		if (!cJSON_IsString(alert)) {
			*why = "alert_type is not a string";
			return EVENT_BAD_PAYLOAD;
		}
		return notification(root, src, alert->valuestring, ev, why);
	}
	/* The Standard Webhooks shape (what this program's own outbound
	 * actions send): "type" is read as "event", "data" as "image".  Only
	 * an image.* type with a data member: a flat payload may carry an
	 * unrelated "type" field of its own. */
	if (cJSON_IsString(type) && has_prefix(type->valuestring, "image.") &&
	    member(root, "data") != NULL)
		return image_envelope(root, src, type->valuestring, "data", ev, why);
	if (member(root, "text") != NULL && member(root, "id") == NULL &&
	    member(root, "job_id") == NULL) {
		*why = "notification test message";
		return EVENT_IGNORED;
	}
	return flat_payload(root, src, NULL, ev, why);
}

/* Empties *ev: every pointer NULL, no uploaded time, requireSignedURLs absent. */
static void event_clear(struct event *ev)
{
	memset(ev, 0, sizeof *ev);
	ev->require_signed_urls = -1;
}

/*
 * The order of cfimages-webhook(8) REQUEST CONTRACT rows 6 and 7: bytes that are not RFC 8259
 * JSON are "Invalid JSON"; valid JSON that is not a payload of section 6
 * is "Invalid payload".  On a result other than EVENT_OK everything is
 * freed except ev->image_id, which stays set when the payload's id was
 * itself valid (only then: the delivery row should not record an id the
 * rules refuse), so the handler can record which image a refused delivery
 * was about.  An allocation failure is EVENT_INTERNAL (a 500: the sender
 * retries).
 */
enum event_result event_parse(const char *body, size_t len, struct event *ev, const char **why)
{
	struct json_check check;
	struct source src;
	struct key_buffer kb = {NULL, 0};
	cJSON *root = NULL;
	enum event_result result;
	const char *reason = NULL;
	char *keep_id;

	event_clear(ev);
	if (!json_validate(body, len, &check)) {
		result = EVENT_BAD_JSON;
		reason = "body is not RFC 8259 JSON";
		goto out;
	}
	root = cJSON_ParseWithLength(body, len);
	if (root == NULL) {
		result = EVENT_BAD_JSON;
		reason = "cJSON could not parse the body";
		goto out;
	}
	result = EVENT_BAD_PAYLOAD;
	if (!cJSON_IsObject(root)) {
		reason = "top level is not an object";
		goto out;
	}
	if ((reason = find_duplicate_keys(root, &kb)) != NULL)
		goto out;
	/*
	 * cJSON stores strings NUL-terminated, so a \u0000 would silently cut a
	 * key or value short: we could not store what was sent, so refuse it.
	 */
	if (check.has_nul_escape) {
		reason = "a string contains \\u0000";
		goto out;
	}
	src.body = body;
	src.span = json_text_span(body, len);
	result = recognize(root, &src, ev, &reason);
	if (result == EVENT_OK)
		reason = "ok";
out:
	free(kb.keys);
	cJSON_Delete(root);
	if (reason == WHY_NO_MEMORY)
		result = EVENT_INTERNAL;
	if (result != EVENT_OK) {
		bool keep_body = result == EVENT_IGNORED && ev->keep_body;
		keep_id = result == EVENT_BAD_PAYLOAD ? ev->image_id : NULL;
		if (keep_id == NULL)
			free(ev->image_id);
		ev->image_id = NULL;
		event_free(ev);
		ev->image_id = keep_id;
		ev->keep_body = keep_body;
	}
	if (why != NULL)
		*why = reason;
	return result;
}

/*
 * Frees what *ev owns and leaves it empty, so a second call (or a call on
 * an event that was never filled) is harmless.
 */
void event_free(struct event *ev)
{
	if (ev == NULL)
		return;
	free(ev->image_id);
	free(ev->event_name);
	free(ev->filename);
	free(ev->metadata_json);
	free(ev->variants_json);
	free(ev->result_json);
	free(ev->error_text);
	event_clear(ev);
}
