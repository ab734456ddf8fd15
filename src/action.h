/*
 * Outbound webhook actions, the pure part: reading a NAME.webhook file into
 * a struct action, rendering a payload template against the values of a
 * hook run, and building the default Standard Webhooks payload.  No I/O, no
 * globals; every input is a buffer and a length, so each function can be
 * fuzzed.  Fetching ${file:} and ${env:} values, reading the template file
 * and making the HTTP call belong to the runner, not here.
 */
#ifndef CFW_ACTION_H
#define CFW_ACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Longest line of an action file, bytes, its line end included. */
#define ACTION_LINE_BYTES 8192
/* Longest url or proxy, bytes, NUL included. */
#define ACTION_URL_BYTES 2048
/* Longest path (template, secret_file, ca_file), bytes, NUL included. */
#define ACTION_PATH_BYTES 4096
/* Longest header line `Name: value` as written, bytes, NUL included. */
#define ACTION_HEADER_BYTES 2048
/* Most header lines in one action. */
#define ACTION_MAX_HEADERS 32
/* Longest timeout accepted, seconds (the config's hook_timeout bound). */
#define ACTION_TIMEOUT_SECONDS_MAX 86400
/* Largest rendered payload, bytes (a delivery body is at most 64 MiB; a
 * template may quote it, but not without end). */
#define ACTION_RENDER_BYTES_MAX (16 * 1024 * 1024)
/* Longest placeholder path `image.metadata.userId`, bytes, NUL included. */
#define ACTION_PATH_EXPR_BYTES 256

enum action_method { ACTION_POST = 0, ACTION_PUT, ACTION_PATCH };

/* One `header = Name: value` line; the value is kept unexpanded. */
struct action_header {
	char line[ACTION_HEADER_BYTES]; /* "Name: value" as written, trimmed */
	size_t name_len;                /* bytes of Name in line */
	size_t value_start;             /* offset of value in line (after ':' and blanks) */
	unsigned lineno;                /* its line in the file */
};

/* An action file, parsed.  Empty strings mean "not set". */
struct action {
	char url[ACTION_URL_BYTES];
	enum action_method method; /* ACTION_POST unless `method` says otherwise */
	struct action_header headers[ACTION_MAX_HEADERS];
	size_t n_headers;
	int64_t timeout_seconds; /* 0: not set (the runner uses hook_timeout) */
	char template_path[ACTION_PATH_BYTES];
	char secret_file[ACTION_PATH_BYTES];
	char ca_file[ACTION_PATH_BYTES];
	char proxy[ACTION_URL_BYTES];
	/* The line each setting came from (0: not set), for messages. */
	unsigned url_line, template_line, secret_file_line, ca_file_line;
};

/* Why a line of an action file (or the file) is wrong. */
enum action_error {
	ACTION_OK = 0,
	ACTION_BAD_LINE,         /* not `key = value` */
	ACTION_LINE_TOO_LONG,    /* longer than ACTION_LINE_BYTES, or holds a NUL byte */
	ACTION_EMPTY_VALUE,      /* `key =` with nothing after it */
	ACTION_UNKNOWN_KEY,      /* none of the keys below */
	ACTION_BAD_URL,          /* not an absolute http:// or https:// URL */
	ACTION_BAD_METHOD,       /* not POST, PUT or PATCH */
	ACTION_DUPLICATE_KEY,    /* a key other than header given twice */
	ACTION_BAD_HEADER,       /* not `Name: value` with a token name and a clean value */
	ACTION_TOO_MANY_HEADERS, /* more than ACTION_MAX_HEADERS header lines */
	ACTION_BAD_REFERENCE,    /* a ${ that is not ${file:/PATH} or ${env:NAME} */
	ACTION_BAD_TIMEOUT,      /* not whole seconds in 1..ACTION_TIMEOUT_SECONDS_MAX */
	ACTION_BAD_PATH,         /* a path too long or holding control characters */
	ACTION_BAD_PROXY,        /* a proxy too long or holding blanks or controls */
	ACTION_MISSING_URL,      /* the file has no url line (reported with line 0) */
};

/* One problem: where, and which. */
struct action_problem {
	unsigned line; /* 1-based; 0 for the file as a whole */
	enum action_error code;
};

/* A short English text for e, for `check` and the run's output. */
const char *action_error_text(enum action_error e);

/*
 * Parses text[0..len), a .webhook file: `key = value` lines with the config
 * file's syntax (blanks around key and value trimmed, a CR before the line
 * end ignored; '#' starts a comment as the first non-blank of a line or
 * after a blank, so `url = https://h/x  # note` is the URL alone while a
 * value such as `abc#def` or a URL's #fragment keeps its '#').  Keys: url, method, header (repeatable),
 * timeout, template, secret_file, ca_file, proxy.  Reading goes on after a
 * problem, so one pass reports them all: the first cap of them are stored
 * in probs[] in line order.  Returns the number of problems found (0: *out
 * is a usable action); *out is filled as far as the lines allowed.
 */
size_t action_parse(const char *text, size_t len, struct action *out, struct action_problem *probs,
                    size_t cap);

/*
 * Checks value, a header value, for ${...} references: each must be
 * ${file:PATH} with an absolute PATH holding no '}', or ${env:NAME} with
 * NAME in [A-Za-z_][A-Za-z0-9_]*.  A '$' not followed by '{' is literal.
 * Returns true when every reference is well formed.
 */
bool action_references_valid(const char *value);

/* Why a template cannot be rendered. */
enum action_render_error {
	ACTION_RENDER_OK = 0,
	ACTION_RENDER_BAD_JSON,        /* the template is not one RFC 8259 text (or holds \u0000) */
	ACTION_RENDER_BAD_PLACEHOLDER, /* a "{{" not followed by ` path }}` */
	ACTION_RENDER_UNKNOWN_ROOT,    /* a path whose first name is not a known root */
	ACTION_RENDER_BAD_VALUES,      /* root_values is not an object, or a root is not JSON */
	ACTION_RENDER_TOO_LARGE,       /* the output would pass ACTION_RENDER_BYTES_MAX */
	ACTION_RENDER_NO_MEMORY,
};

/* A short English text for e. */
const char *action_render_error_text(enum action_render_error e);

/*
 * Checks a template without values: template_json[0..len) must be one
 * RFC 8259 text, and every "{{" in its string values must open a
 * placeholder `{{ root.name.name }}` (blanks inside the braces optional)
 * whose root is image, status, previous_status, event or delivery.  On an
 * error, stores in *offset (when not NULL) the byte offset of the string
 * where it was found.  Object member names are never placeholders.
 */
enum action_render_error action_template_check(const char *template_json, size_t len,
                                               size_t *offset);

/*
 * Renders a template (see action_template_check) into a malloc'd,
 * NUL-terminated JSON text stored in *out, which the caller frees.
 *
 * root_values is an object whose members are the roots.  A member may be a
 * cJSON_Raw item holding a JSON text (the image as `show` prints it, the
 * delivery as received): paths are then resolved in that text and values
 * copied as written, so 12345678901234567890 stays exact.  Any other cJSON
 * value is printed by cJSON first.  A path names object members from the
 * root down; one that does not resolve is "missing".
 *
 * A string value that is exactly one placeholder becomes the value itself
 * (missing: null).  A placeholder inside a longer string is replaced by the
 * value as text: a string by its characters, anything else by its compact
 * JSON text (missing: nothing).  Everything else of the template is kept
 * byte for byte.  Strings are escaped by construction, and '<', '>', '&',
 * U+2028 and U+2029 coming from values are written as \u escapes, so the
 * output can sit in a <script> element.  The output is checked against
 * RFC 8259 before it is returned.  On an error *out is NULL.
 */
enum action_render_error action_render(const char *template_json, size_t len,
                                       const cJSON *root_values, char **out);

/*
 * The default payload, the Standard Webhooks shape:
 *   {"type":"image.STATUS","timestamp":"TIMESTAMP","data":{...image...,
 *    "previous_status":PREVIOUS,"event":EVENT}}
 * image_json[0..len) is the image object as `show` prints it; its members
 * are copied as written (compacted), except any named previous_status or
 * event, which the two members added last replace.  previous_status and
 * event are always present: JSON null when the argument is NULL.  Stores a
 * malloc'd NUL-terminated text in *out (the caller frees it).  Returns
 * ACTION_RENDER_BAD_VALUES when image_json is not a JSON object or a
 * string argument is not valid UTF-8.
 */
enum action_render_error action_default_payload(const char *image_json, size_t len,
                                                const char *status, const char *previous_status,
                                                const char *event, const char *timestamp,
                                                char **out);

#endif
