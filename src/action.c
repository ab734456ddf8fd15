/*
 * Outbound webhook actions, the pure part (see action.h): the .webhook file
 * reader, the template renderer and the default payload.
 *
 * The renderer never decodes a JSON string to build another: it works on
 * the escaped form.  The template and every value are first checked with
 * json_validate(), so their string contents are already valid escaped JSON
 * and can be copied between quotes as they are; a placeholder is found by
 * its literal "{{", which no JSON escape contains.  Numbers are copied as
 * written, never through a double.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "action.h"
#include "json.h"
#include "util.h"

/* The keys that may be given once; `header` may repeat. */
enum single_key {
	KEY_URL,
	KEY_METHOD,
	KEY_TIMEOUT,
	KEY_TEMPLATE,
	KEY_SECRET_FILE,
	KEY_CA_FILE,
	KEY_PROXY,
	KEY_COUNT
};
static const char *const single_key_names[KEY_COUNT] = {
    "url", "method", "timeout", "template", "secret_file", "ca_file", "proxy"};

/* The root names a placeholder path may start with. */
static const char *const root_names[] = {"image", "status", "previous_status", "event", "delivery"};
#define ROOT_COUNT (sizeof root_names / sizeof root_names[0])

const char *action_error_text(enum action_error e)
{
	switch (e) {
	case ACTION_OK:
		return "ok";
	case ACTION_BAD_LINE:
		return "expected `key = value`";
	case ACTION_LINE_TOO_LONG:
		return "line longer than 8190 bytes, or holding a NUL byte";
	case ACTION_EMPTY_VALUE:
		return "empty value";
	case ACTION_UNKNOWN_KEY:
		return "unknown key (expected url, method, header, timeout, template, secret_file, "
		       "ca_file or proxy)";
	case ACTION_BAD_URL:
		return "expected an http:// or https:// URL with a host";
	case ACTION_BAD_METHOD:
		return "expected POST, PUT or PATCH";
	case ACTION_DUPLICATE_KEY:
		return "given twice (only header may repeat)";
	case ACTION_BAD_HEADER:
		return "expected `Name: value` (a token name, no control characters in the value)";
	case ACTION_TOO_MANY_HEADERS:
		return "too many header lines (at most 32)";
	case ACTION_BAD_REFERENCE:
		return "expected ${file:/ABSOLUTE/PATH} or ${env:NAME}";
	case ACTION_BAD_TIMEOUT:
		return "expected seconds between 1 and 86400";
	case ACTION_BAD_PATH:
		return "path too long or holding control characters";
	case ACTION_BAD_PROXY:
		return "proxy too long or holding blanks or control characters";
	case ACTION_MISSING_URL:
		return "no url line";
	}
	return "invalid";
}

const char *action_render_error_text(enum action_render_error e)
{
	switch (e) {
	case ACTION_RENDER_OK:
		return "ok";
	case ACTION_RENDER_BAD_JSON:
		return "the template is not valid JSON (RFC 8259, no \\u0000)";
	case ACTION_RENDER_BAD_PLACEHOLDER:
		return "expected a placeholder such as {{ image.id }}";
	case ACTION_RENDER_UNKNOWN_ROOT:
		return "unknown placeholder root (expected image, status, previous_status, event "
		       "or delivery)";
	case ACTION_RENDER_BAD_VALUES:
		return "the values are not valid JSON";
	case ACTION_RENDER_TOO_LARGE:
		return "the payload would be larger than 16 MiB";
	case ACTION_RENDER_NO_MEMORY:
		return "out of memory";
	}
	return "invalid";
}

/* ---- The action file ---- */

static void add_problem(struct action_problem *probs, size_t cap, size_t *n, unsigned line,
                        enum action_error code)
{
	if (*n < cap) {
		probs[*n].line = line;
		probs[*n].code = code;
	}
	(*n)++;
}

static char *trim(char *s)
{
	size_t n;
	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Copies value into slot[size]; false when it does not fit. */
static bool copy_bounded(char *slot, size_t size, const char *value)
{
	size_t n = strlen(value);
	if (n >= size)
		return false;
	memcpy(slot, value, n + 1);
	return true;
}

/* True when every byte is printable ASCII, without blanks. */
static bool all_visible_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * RFC 9110 section 5.6.2: token = 1*tchar, tchar = "!" / "#" / "$" / "%" /
 * "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT /
 * ALPHA.
 */
static bool is_tchar(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * An absolute http or https URL (RFC 3986 section 3): the scheme, "//", an
 * authority with a non-empty host and an optional port in 1..65535, then
 * anything visible.  Printable ASCII only: a URL with blanks or raw UTF-8
 * must be percent-encoded by its author, not guessed at by us.
 */
static bool url_valid(const char *url)
{
	const char *auth, *end, *host, *at, *port = NULL;
	size_t host_len;

	if (!all_visible_ascii(url))
		return false;
	if (strncasecmp(url, "http://", 7) == 0)
		auth = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		auth = url + 8;
	else
		return false;
	end = auth + strcspn(auth, "/?#");
	host = auth;
	for (at = auth; at < end; at++)
		if (*at == '@')
			host = at + 1;
	if (host < end && *host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (close == NULL || close == host + 1)
			return false;
		for (const char *p = host + 1; p < close; p++)
			if (!(is_alnum(*p) || *p == ':' || *p == '.' || *p == '%'))
				return false;
		if (close + 1 < end) {
			if (close[1] != ':')
				return false;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));
		host_len = (size_t)((colon ? colon : end) - host);
		if (host_len == 0)
			return false;
		for (size_t i = 0; i < host_len; i++)
			if (!(is_alnum(host[i]) || strchr("-._~%", host[i]) != NULL))
				return false;
		if (colon)
			port = colon + 1;
	}
	if (port) {
		long v = 0;
		if (port == end || end - port > 5)
			return false;
		for (const char *p = port; p < end; p++) {
			if (*p < '0' || *p > '9')
				return false;
			v = v * 10 + (*p - '0');
		}
		if (v < 1 || v > 65535)
			return false;
	}
	return true;
}

bool action_references_valid(const char *value)
{
	const char *p = value;
	while ((p = strstr(p, "${")) != NULL) {
		const char *body = p + 2, *close = strchr(body, '}');
		if (close == NULL)
			return false;
		if (strncmp(body, "file:", 5) == 0) {
			const char *path = body + 5;
			if (path >= close || *path != '/')
				return false;
			for (const char *q = path; q < close; q++)
				if (*q == '{' || *q == '$')
					return false;
		} else if (strncmp(body, "env:", 4) == 0) {
			const char *name = body + 4;
			if (name >= close || (*name >= '0' && *name <= '9'))
				return false;
			for (const char *q = name; q < close; q++)
				if (!(is_alnum(*q) || *q == '_'))
					return false;
		} else {
			return false;
		}
		p = close + 1;
	}
	return true;
}

/* Checks and stores one `header` line. */
static enum action_error add_header(struct action *a, const char *value)
{
	struct action_header *h;
	const char *colon = strchr(value, ':'), *v;

	if (colon == NULL || colon == value)
		return ACTION_BAD_HEADER;
	for (const char *p = value; p < colon; p++)
		if (!is_tchar(*p))
			return ACTION_BAD_HEADER;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	/* RFC 9110 section 5.5: field-vchar, SP and HTAB; obs-text (0x80-0xff) passes. */
	for (const char *p = v; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return ACTION_BAD_HEADER;
	if (!action_references_valid(v))
		return ACTION_BAD_REFERENCE;
	if (a->n_headers == ACTION_MAX_HEADERS)
		return ACTION_TOO_MANY_HEADERS;
	h = &a->headers[a->n_headers];
	if (!copy_bounded(h->line, sizeof h->line, value))
		return ACTION_BAD_HEADER;
	h->name_len = (size_t)(colon - value);
	h->value_start = (size_t)(v - value);
	a->n_headers++;
	return ACTION_OK;
}

static enum action_error set_path(char *slot, size_t size, const char *value)
{
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ACTION_BAD_PATH;
	return copy_bounded(slot, size, value) ? ACTION_OK : ACTION_BAD_PATH;
}

/* Applies one `key = value`; seen[] records the single keys already given. */
static enum action_error set_key(struct action *a, bool seen[KEY_COUNT], const char *key,
                                 const char *value)
{
	int k = -1;

	if (strcmp(key, "header") == 0)
		return value[0] == '\0' ? ACTION_EMPTY_VALUE : add_header(a, value);
	for (int i = 0; i < KEY_COUNT; i++)
		if (strcmp(key, single_key_names[i]) == 0)
			k = i;
	if (k < 0)
		return ACTION_UNKNOWN_KEY;
	if (seen[k])
		return ACTION_DUPLICATE_KEY;
	seen[k] = true;
	if (value[0] == '\0')
		return ACTION_EMPTY_VALUE;
	switch ((enum single_key)k) {
	case KEY_URL:
		if (!url_valid(value) || !copy_bounded(a->url, sizeof a->url, value))
			return ACTION_BAD_URL;
		return ACTION_OK;
	case KEY_METHOD:
		/* RFC 9110 section 9.1: the method token is case-sensitive. */
		if (strcmp(value, "POST") == 0)
			a->method = ACTION_POST;
		else if (strcmp(value, "PUT") == 0)
			a->method = ACTION_PUT;
		else if (strcmp(value, "PATCH") == 0)
			a->method = ACTION_PATCH;
		else
			return ACTION_BAD_METHOD;
		return ACTION_OK;
	case KEY_TIMEOUT:
		return parse_int64(value, 1, ACTION_TIMEOUT_SECONDS_MAX, &a->timeout_seconds)
		           ? ACTION_OK
		           : ACTION_BAD_TIMEOUT;
	case KEY_TEMPLATE:
		return set_path(a->template_path, sizeof a->template_path, value);
	case KEY_SECRET_FILE:
		return set_path(a->secret_file, sizeof a->secret_file, value);
	case KEY_CA_FILE:
		return set_path(a->ca_file, sizeof a->ca_file, value);
	case KEY_PROXY:
		if (!all_visible_ascii(value) || !copy_bounded(a->proxy, sizeof a->proxy, value))
			return ACTION_BAD_PROXY;
		return ACTION_OK;
	case KEY_COUNT:
		break;
	}
	return ACTION_UNKNOWN_KEY;
}

/*
 * Cuts a trailing comment off a value: a '#' after a blank starts one, so
 * `url = https://h/x   # note` is the URL alone while `abc#def` and a
 * URL's #fragment stay whole.
 */
static void strip_comment(char *value)
{
	for (char *p = value; *p; p++) {
		if (*p == '#' && p > value && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			while (p > value && (p[-1] == ' ' || p[-1] == '\t'))
				*--p = '\0';
			return;
		}
	}
}

/* Records where an accepted setting came from. */
static void note_line(struct action *a, const char *key, unsigned lineno)
{
	if (strcmp(key, "header") == 0)
		a->headers[a->n_headers - 1].lineno = lineno;
	else if (strcmp(key, "url") == 0)
		a->url_line = lineno;
	else if (strcmp(key, "template") == 0)
		a->template_line = lineno;
	else if (strcmp(key, "secret_file") == 0)
		a->secret_file_line = lineno;
	else if (strcmp(key, "ca_file") == 0)
		a->ca_file_line = lineno;
}

size_t action_parse(const char *text, size_t len, struct action *out, struct action_problem *probs,
                    size_t cap)
{
	char line[ACTION_LINE_BYTES];
	bool seen[KEY_COUNT] = {false};
	size_t pos = 0, n = 0;
	unsigned lineno = 0;

	memset(out, 0, sizeof *out);
	out->method = ACTION_POST;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len, line_len = end - pos;
		char *key, *eq, *value;
		enum action_error why;

		lineno++;
		if (line_len > ACTION_LINE_BYTES - 2 || memchr(text + pos, '\0', line_len)) {
			add_problem(probs, cap, &n, lineno, ACTION_LINE_TOO_LONG);
			pos = end + 1;
			continue;
		}
		memcpy(line, text + pos, line_len);
		line[line_len] = '\0';
		pos = end + 1;
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			add_problem(probs, cap, &n, lineno, ACTION_BAD_LINE);
			continue;
		}
		*eq = '\0';
		value = trim(eq + 1);
		key = trim(key);
		strip_comment(value);
		why = set_key(out, seen, key, value);
		if (why != ACTION_OK)
			add_problem(probs, cap, &n, lineno, why);
		else
			note_line(out, key, lineno);
	}
	if (!seen[KEY_URL])
		add_problem(probs, cap, &n, 0, ACTION_MISSING_URL);
	return n;
}

/* ---- Output buffer ---- */

/* A growing output; a failed append leaves err set and later appends do nothing. */
struct out {
	char *p;
	size_t len, cap;
	enum action_render_error err;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->err != ACTION_RENDER_OK)
		return;
	if (n > ACTION_RENDER_BYTES_MAX - o->len) {
		o->err = ACTION_RENDER_TOO_LARGE;
		return;
	}
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		char *p;
		while (cap < o->len + n + 1)
			cap *= 2;
		p = realloc(o->p, cap);
		if (p == NULL) {
			o->err = ACTION_RENDER_NO_MEMORY;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/*
 * Writes s[0..n), bytes that are already valid JSON (a compact value, or
 * the escaped contents of a string), with '<', '>', '&', U+2028 and U+2029
 * written as \u escapes, which mean the same characters to a JSON parser
 * but cannot close a <script> element or end a JavaScript line.  Outside
 * strings, valid compact JSON holds none of these bytes.
 */
static void put_safe(struct out *o, const char *s, size_t n)
{
	size_t from = 0;
	for (size_t i = 0; i < n; i++) {
		const char *esc = NULL;
		size_t skip = 1;
		if (s[i] == '<')
			esc = "\\u003c";
		else if (s[i] == '>')
			esc = "\\u003e";
		else if (s[i] == '&')
			esc = "\\u0026";
		else if ((unsigned char)s[i] == 0xe2 && i + 2 < n &&
		         (unsigned char)s[i + 1] == 0x80 &&
		         ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
			esc = (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
			skip = 3;
		}
		if (esc) {
			put(o, s + from, i - from);
			put_str(o, esc);
			i += skip - 1;
			from = i + 1;
		}
	}
	put(o, s + from, n - from);
}

/*
 * Writes s[0..n), any bytes, as the contents of a JSON string (RFC 8259
 * section 7): '"', '\\' and control characters escaped, then as put_safe().
 * Invalid UTF-8 passes through and is caught by the final validation.
 */
static void put_escaped(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t from = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char u[7];
		const char *esc = NULL;
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c < 0x20 || c == 0x7f) {
			memcpy(u, "\\u00", 4);
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			u[6] = '\0';
			esc = u;
		}
		if (esc) {
			put_safe(o, s + from, i - from);
			put_str(o, esc);
			from = i + 1;
		}
	}
	put_safe(o, s + from, n - from);
}

/* Index just past the string token that starts at s[i] (a '"'); s is valid JSON. */
static size_t string_end(const char *s, size_t i)
{
	i++;
	while (s[i] != '"')
		i += s[i] == '\\' ? 2 : 1;
	return i + 1;
}

/*
 * In compact valid JSON, the index just past the value starting at s[i]:
 * after a string's quote or a container's bracket, or at the ',', '}' or
 * ']' that ends a number or literal.
 */
static size_t value_end(const char *s, size_t len, size_t i)
{
	int depth = 0;
	while (i < len) {
		char c = s[i];
		if (c == '"') {
			i = string_end(s, i);
			if (depth == 0)
				return i;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;
			if (--depth == 0)
				return i + 1;
		} else if (c == ',' && depth == 0) {
			return i;
		}
		i++;
	}
	return i;
}

/* ---- Templates ---- */

/* One placeholder: its root, its member names, and how many bytes it took. */
struct placeholder {
	size_t root;                       /* index in root_names */
	char path[ACTION_PATH_EXPR_BYTES]; /* the names after the root, '.'-separated */
	size_t used;                       /* bytes from "{{" to "}}" inclusive */
};

/*
 * Parses the placeholder at s[0..n), which starts with "{{":
 * "{{" *SP name *("." name) *SP "}}", name = 1*(ALPHA / DIGIT / "_" / "-").
 */
static enum action_render_error parse_placeholder(const char *s, size_t n, struct placeholder *ph)
{
	size_t i = 2, start, root_end, plen;
	bool found = false;

	while (i < n && s[i] == ' ')
		i++;
	start = i;
	for (;;) {
		size_t name_start = i;
		while (i < n && (is_alnum(s[i]) || s[i] == '_' || s[i] == '-'))
			i++;
		if (i == name_start)
			return ACTION_RENDER_BAD_PLACEHOLDER;
		if (i < n && s[i] == '.') {
			i++;
			continue;
		}
		break;
	}
	plen = i - start;
	while (i < n && s[i] == ' ')
		i++;
	if (i + 1 >= n || s[i] != '}' || s[i + 1] != '}' || plen >= ACTION_PATH_EXPR_BYTES)
		return ACTION_RENDER_BAD_PLACEHOLDER;
	ph->used = i + 2;
	root_end = start;
	while (root_end < start + plen && s[root_end] != '.')
		root_end++;
	for (size_t r = 0; r < ROOT_COUNT; r++) {
		if (strlen(root_names[r]) == root_end - start &&
		    memcmp(root_names[r], s + start, root_end - start) == 0) {
			ph->root = r;
			found = true;
		}
	}
	if (!found)
		return ACTION_RENDER_UNKNOWN_ROOT;
	if (root_end < start + plen) {
		memcpy(ph->path, s + root_end + 1, plen - (root_end - start) - 1);
		ph->path[plen - (root_end - start) - 1] = '\0';
	} else {
		ph->path[0] = '\0';
	}
	return ACTION_RENDER_OK;
}

/* The roots' JSON texts, each valid; text NULL for a root not given. */
struct roots {
	const char *text[ROOT_COUNT];
	size_t len[ROOT_COUNT];
	char *owned[ROOT_COUNT]; /* what cJSON printed, freed by roots_free */
};

static void roots_free(struct roots *r)
{
	for (size_t i = 0; i < ROOT_COUNT; i++)
		free(r->owned[i]);
}

static enum action_render_error roots_load(struct roots *r, const cJSON *values)
{
	memset(r, 0, sizeof *r);
	if (!cJSON_IsObject(values))
		return ACTION_RENDER_BAD_VALUES;
	for (size_t i = 0; i < ROOT_COUNT; i++) {
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(values, root_names[i]);
		struct json_check info;
		if (item == NULL)
			continue;
		if (cJSON_IsRaw(item)) {
			r->text[i] = item->valuestring;
		} else {
			r->owned[i] = cJSON_PrintUnformatted(item);
			if (r->owned[i] == NULL)
				return ACTION_RENDER_NO_MEMORY;
			r->text[i] = r->owned[i];
		}
		if (r->text[i] == NULL)
			return ACTION_RENDER_BAD_VALUES;
		r->len[i] = strlen(r->text[i]);
		if (!json_validate(r->text[i], r->len[i], &info))
			return ACTION_RENDER_BAD_VALUES;
	}
	return ACTION_RENDER_OK;
}

/* Finds the value a placeholder names; false when it is missing. */
static bool resolve(const struct roots *r, const struct placeholder *ph, const char **text,
                    struct json_span *span)
{
	char name[ACTION_PATH_EXPR_BYTES];
	const char *p = ph->path;

	if (r->text[ph->root] == NULL)
		return false;
	*text = r->text[ph->root];
	*span = json_text_span(*text, r->len[ph->root]);
	while (*p) {
		size_t n = strcspn(p, ".");
		memcpy(name, p, n);
		name[n] = '\0';
		if (!json_member_span(*text, *span, name, span))
			return false;
		p += n + (p[n] == '.');
	}
	return true;
}

/* Writes a value compacted: as JSON when as_text is false, else as string contents. */
static void put_value(struct out *o, const char *text, struct json_span span, bool as_text)
{
	size_t n = span.end - span.start;
	char *compact;

	if (as_text && text[span.start] == '"') {
		put_safe(o, text + span.start + 1, n - 2);
		return;
	}
	compact = malloc(n + 1);
	if (compact == NULL) {
		if (o->err == ACTION_RENDER_OK)
			o->err = ACTION_RENDER_NO_MEMORY;
		return;
	}
	n = json_compact(text + span.start, n, compact);
	if (as_text)
		put_escaped(o, compact, n);
	else
		put_safe(o, compact, n);
	free(compact);
}

/*
 * Handles the contents s[0..n) of one string value of the template: checks
 * its placeholders and, when o is not NULL, writes the string or what
 * replaces it.
 */
static enum action_render_error render_string(const char *s, size_t n, const struct roots *r,
                                              struct out *o)
{
	struct placeholder ph;
	enum action_render_error e;
	const char *text;
	struct json_span span;
	size_t i = 0, from = 0;

	if (n >= 2 && s[0] == '{' && s[1] == '{') {
		e = parse_placeholder(s, n, &ph);
		if (e != ACTION_RENDER_OK)
			return e;
		if (ph.used == n) {
			if (o == NULL)
				return ACTION_RENDER_OK;
			if (resolve(r, &ph, &text, &span))
				put_value(o, text, span, false);
			else
				put_str(o, "null");
			return ACTION_RENDER_OK;
		}
	}
	if (o)
		put_str(o, "\"");
	while (i + 1 < n) {
		if (s[i] != '{' || s[i + 1] != '{') {
			i++;
			continue;
		}
		e = parse_placeholder(s + i, n - i, &ph);
		if (e != ACTION_RENDER_OK)
			return e;
		if (o) {
			put(o, s + from, i - from);
			if (resolve(r, &ph, &text, &span))
				put_value(o, text, span, true);
		}
		i += ph.used;
		from = i;
	}
	if (o) {
		put(o, s + from, n - from);
		put_str(o, "\"");
	}
	return ACTION_RENDER_OK;
}

/*
 * Walks a valid template: everything but string values is copied (when o
 * is not NULL); each string value goes through render_string().  A string
 * followed by ':' is a member name and is copied as it is.
 */
static enum action_render_error walk(const char *t, size_t len, const struct roots *r,
                                     struct out *o, size_t *offset)
{
	size_t i = 0;
	while (i < len) {
		size_t end, k;
		enum action_render_error e;
		if (t[i] != '"') {
			if (o)
				put(o, t + i, 1);
			i++;
			continue;
		}
		end = string_end(t, i);
		k = end;
		while (k < len && (t[k] == ' ' || t[k] == '\t' || t[k] == '\n' || t[k] == '\r'))
			k++;
		if (k < len && t[k] == ':') {
			if (o)
				put(o, t + i, end - i);
		} else {
			e = render_string(t + i + 1, end - i - 2, r, o);
			if (e != ACTION_RENDER_OK) {
				if (offset)
					*offset = i;
				return e;
			}
		}
		i = end;
	}
	return ACTION_RENDER_OK;
}

enum action_render_error action_template_check(const char *template_json, size_t len,
                                               size_t *offset)
{
	struct json_check info;
	if (offset)
		*offset = 0;
	if (!json_validate(template_json, len, &info) || info.has_nul_escape)
		return ACTION_RENDER_BAD_JSON;
	return walk(template_json, len, NULL, NULL, offset);
}

/*
 * Checks o's text against RFC 8259 and hands a compact copy to *out: the
 * guarantee that the payload is valid JSON does not rest on the escapers
 * alone.
 */
static enum action_render_error finish(struct out *o, char **out)
{
	struct json_check info;
	char *compact;

	if (o->err == ACTION_RENDER_OK && o->p == NULL)
		o->err = ACTION_RENDER_BAD_VALUES;
	if (o->err == ACTION_RENDER_OK && !json_validate(o->p, o->len, &info))
		o->err = ACTION_RENDER_BAD_VALUES;
	if (o->err == ACTION_RENDER_OK) {
		compact = malloc(o->len + 1);
		if (compact == NULL) {
			o->err = ACTION_RENDER_NO_MEMORY;
		} else {
			json_compact(o->p, o->len, compact);
			*out = compact;
		}
	}
	free(o->p);
	o->p = NULL;
	return o->err;
}

enum action_render_error action_render(const char *template_json, size_t len,
                                       const cJSON *root_values, char **out)
{
	struct roots r;
	struct out o = {NULL, 0, 0, ACTION_RENDER_OK};
	enum action_render_error e;

	*out = NULL;
	e = action_template_check(template_json, len, NULL);
	if (e != ACTION_RENDER_OK)
		return e;
	e = roots_load(&r, root_values);
	if (e == ACTION_RENDER_OK) {
		e = walk(template_json, len, &r, &o, NULL);
		if (e == ACTION_RENDER_OK)
			e = finish(&o, out);
	}
	free(o.p);
	roots_free(&r);
	return e;
}

/* ---- The default payload ---- */

/* Writes "s" (escaped), or null when s is NULL. */
static void put_string_or_null(struct out *o, const char *s)
{
	if (s == NULL) {
		put_str(o, "null");
		return;
	}
	put_str(o, "\"");
	put_escaped(o, s, strlen(s));
	put_str(o, "\"");
}

/* True when the member name token s[0..n) (quotes included) decodes to name. */
static bool name_is(const char *s, size_t n, const char *name)
{
	cJSON *decoded;
	bool same;

	if (memchr(s, '\\', n) == NULL)
		return n == strlen(name) + 2 && memcmp(s + 1, name, n - 2) == 0;
	decoded = cJSON_ParseWithLength(s, n);
	same = cJSON_IsString(decoded) && strcmp(decoded->valuestring, name) == 0;
	cJSON_Delete(decoded);
	return same;
}

enum action_render_error action_default_payload(const char *image_json, size_t len,
                                                const char *status, const char *previous_status,
                                                const char *event, const char *timestamp,
                                                char **out)
{
	struct out o = {NULL, 0, 0, ACTION_RENDER_OK};
	struct json_check info;
	char *image = NULL;
	size_t n, i;
	bool first = true;

	*out = NULL;
	if (status == NULL || timestamp == NULL || !json_validate(image_json, len, &info))
		return ACTION_RENDER_BAD_VALUES;
	image = malloc(len + 1);
	if (image == NULL)
		return ACTION_RENDER_NO_MEMORY;
	n = json_compact(image_json, len, image);
	if (image[0] != '{') {
		free(image);
		return ACTION_RENDER_BAD_VALUES;
	}
	put_str(&o, "{\"type\":\"image.");
	put_escaped(&o, status, strlen(status));
	put_str(&o, "\",\"timestamp\":");
	put_string_or_null(&o, timestamp);
	put_str(&o, ",\"data\":{");
	for (i = 1; i < n && image[i] == '"';) {
		size_t name_end = string_end(image, i);
		size_t end = value_end(image, n, name_end + 1);
		if (!name_is(image + i, name_end - i, "previous_status") &&
		    !name_is(image + i, name_end - i, "event")) {
			if (!first)
				put_str(&o, ",");
			put_safe(&o, image + i, end - i);
			first = false;
		}
		i = end + (image[end] == ',');
	}
	if (!first)
		put_str(&o, ",");
	put_str(&o, "\"previous_status\":");
	put_string_or_null(&o, previous_status);
	put_str(&o, ",\"event\":");
	put_string_or_null(&o, event);
	put_str(&o, "}}");
	free(image);
	return finish(&o, out);
}
