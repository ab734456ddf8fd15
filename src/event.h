/*
 * Payload normalization (cfimages-webhook(8) PAYLOADS), pure: raw body bytes in, one
 * normalized event (or a reason for refusing it) out.  Uses cJSON only on
 * bytes json_validate() has accepted.
 */
#ifndef CFW_EVENT_H
#define CFW_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum event_result {
	EVENT_OK = 0,      /* *ev holds an event to apply */
	EVENT_BAD_JSON,    /* 400 Invalid JSON */
	EVENT_BAD_PAYLOAD, /* 400 Invalid payload */
	EVENT_IGNORED,     /* 200 Ignored: a valid payload we do not act on */
	EVENT_INTERNAL     /* 500: out of memory, nothing decided */
};

/* Longest event name (CFIMAGES_EVENT), printable ASCII only. */
#define EVENT_NAME_MAX_BYTES 128

/*
 * A normalized event.  Every pointer is owned by the event and freed by
 * event_free(); optional fields are NULL when the payload did not carry
 * them.  JSON-valued fields hold the value's text exactly as the body
 * writes it (whitespace inside it included, none around it), never
 * re-printed: numbers keep every digit.
 */
struct event {
	char *image_id;        /* validated id (image id, or job_id for job events) */
	const char *status;    /* static: "uploaded", "draft", "failed", "queued", "completed" */
	char *event_name;      /* CFIMAGES_EVENT: "upload.complete", "image.uploaded", ... */
	char *filename;        /* "filename", when a string */
	char *metadata_json;   /* "metadata" (else "meta") object */
	char *variants_json;   /* "variants" array of URLs */
	char *result_json;     /* job "result" object */
	char *error_text;      /* error string, or error object's message (else code) */
	int64_t uploaded_ms;   /* "uploaded" time, valid when has_uploaded */
	bool has_uploaded;
	int require_signed_urls; /* -1 absent, else 0 or 1 */
	bool keep_body;          /* EVENT_IGNORED whose body should be kept in the log */
};

/*
 * Parses and validates body[0..len).  On EVENT_OK fills *ev (free it with
 * event_free); on any other result *ev is left empty (all NULL) except that
 * ev->image_id may be set when an id could be read, for the delivery row.
 * When why is not NULL a short static explanation is stored for the log
 * (never containing request data).
 */
enum event_result event_parse(const char *body, size_t len, struct event *ev, const char **why);

/* Frees what *ev owns and empties it; safe on an empty or already freed event. */
void event_free(struct event *ev);

#endif
