/*
 * Outbound webhook actions (cfimages-webhook(8) ACTIONS): one attempt of
 * a NAME.webhook run, and `check` for an action file.
 *
 * Who is trusted with what here: the action file, its template and the
 * files it names belong to the owner of hooks_dir (the runner checked the
 * action file's owner and mode as it does a script's).  The sender reaches
 * an action only as values inside the payload, which is built as JSON by
 * construction (action_render), never as text pasted into a URL or a
 * header.  Secrets (${file:} and ${env:} values, the signing keys) go into
 * the request and nowhere else: never the run's output, never the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#ifdef HAVE_CURL
#include <curl/curl.h>
#endif

#include "action.h"
#include "auth.h"
#include "cabundle.h"
#include "config.h"
#include "json.h"
#ifdef HAVE_CURL
#include "lazy_curl.h"
#endif
#include "outbound.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

/* Most problems of one action file reported. */
#define PROBLEMS_MAX 32
/* Longest expanded header line, bytes (a token read from a file may be long). */
#define HEADER_EXPANDED_BYTES (ACTION_HEADER_BYTES + 2 * OUTBOUND_SECRET_BYTES)
/* Most keys in a secret_file (one per line: several while rotating). */
#define SIGNING_KEYS_MAX 8
/* Room for one "v1,BASE64" signature. */
#define SIGNATURE_BYTES 128

bool outbound_is_action(const char *name)
{
	size_t n = strlen(name), s = strlen(OUTBOUND_SUFFIX);
	return n > s && strcmp(name + n - s, OUTBOUND_SUFFIX) == 0;
}

bool outbound_available(char *why, size_t cap)
{
#ifdef HAVE_CURL
	/* Loaded on first use (README, Build and install). */
	const char *err = lazy_curl_load();
	if (err == NULL)
		return true;
	if (why != NULL)
		snprintf(why, cap,
		         "libcurl cannot be loaded: %s (install it: Debian package libcurl4)", err);
#else
	if (why != NULL)
		snprintf(why, cap, "this program was built without libcurl (--without-curl)");
#endif
	return false;
}

/* ---- Reading files ---- */

/*
 * Reads a whole regular file of at most max bytes into a malloc'd buffer
 * (NUL-terminated; *len excludes the NUL).  Returns NULL with why set to
 * a short reason: strerror, "is not a regular file" or "is too large".
 * O_NONBLOCK: a FIFO put where a file was expected must not hang us.
 */
static char *read_small_file(const char *path, size_t max, size_t *len, const char **why)
{
	struct stat st;
	char *buf = NULL;
	size_t have = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	*why = NULL;
	if (fd < 0) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = "is not a regular file";
		goto fail;
	}
	if ((uintmax_t)st.st_size > max) {
		*why = "is too large";
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		*why = "out of memory";
		goto fail;
	}
	for (;;) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = strerror(errno);
			goto fail;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have > (size_t)st.st_size) { /* it grew meanwhile */
			*why = "is too large";
			goto fail;
		}
	}
	close(fd);
	buf[have] = '\0';
	*len = have;
	return buf;
fail:
	if (buf) {
		OPENSSL_cleanse(buf, have);
		free(buf);
	}
	close(fd);
	return NULL;
}

static void wipe_free(char *p, size_t n)
{
	if (p) {
		OPENSSL_cleanse(p, n);
		free(p);
	}
}

/* Blanks, tabs and line ends at either end of s[0..*n) removed; returns the start. */
static char *trim_span(char *s, size_t *n)
{
	while (*n && strchr(" \t\r\n", s[0]) != NULL) {
		s++;
		(*n)--;
	}
	while (*n && strchr(" \t\r\n", s[*n - 1]) != NULL)
		(*n)--;
	return s;
}

/* ---- Problems ---- */

/* Where problems go: a report function (check) or the run's output. */
struct problems {
	outbound_report_fn fn;
	void *arg;
	char *out; /* the run's output, when fn is NULL */
	size_t *out_len, out_cap;
	int count;
};

static void say(struct problems *p, bool is_problem, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof line, fmt, ap);
	if (is_problem)
		p->count++;
	if (p->fn) {
		p->fn(p->arg, is_problem, line);
	} else if (p->out && is_problem) {
		int n = snprintf(p->out + *p->out_len, p->out_cap - *p->out_len,
		                 "[cfimages-webhook: %s]\n", line);
		if (n > 0)
			*p->out_len += (size_t)n < p->out_cap - *p->out_len
			                   ? (size_t)n
			                   : p->out_cap - *p->out_len - 1;
	}
}

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warning(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct problems *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(p, true, fmt, ap);
	va_end(ap);
}

static void warning(struct problems *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	say(p, false, fmt, ap);
	va_end(ap);
}

/* "PATH:LINE: " when the line is known, "PATH: " otherwise. */
static const char *where(char *buf, size_t cap, const char *path, unsigned line)
{
	if (line)
		snprintf(buf, cap, "%s:%u", path, line);
	else
		snprintf(buf, cap, "%s", path);
	return buf;
}

/*
 * Makes a relative path of an action file (template, secret_file,
 * ca_file) relative to the directory holding the action file, whoever
 * reads it from wherever: `check` from a shell, a runner from hooks_dir.
 * False when the result does not fit.
 */
static bool beside(const char *action_path, char *slot, size_t cap)
{
	const char *slash = strrchr(action_path, '/');
	char joined[ACTION_PATH_BYTES];
	int n;

	if (slot[0] == '\0' || slot[0] == '/' || slash == NULL)
		return true;
	n = snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - action_path), action_path,
	             slot);
	if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof joined)
		return false;
	memcpy(slot, joined, (size_t)n + 1);
	return true;
}

/*
 * Reads and parses the action file into *a (malloc'd by the caller);
 * every problem reported.  Returns the file's problems count (0: usable).
 */
static int load_action(const char *path, struct action *a, struct problems *p)
{
	struct action_problem probs[PROBLEMS_MAX];
	char w[4200];
	const char *why;
	size_t len, n;
	char *text = read_small_file(path, OUTBOUND_FILE_BYTES, &len, &why);

	memset(a, 0, sizeof *a);
	if (text == NULL) {
		problem(p, "%s: %s", path, why);
		return 1;
	}
	n = action_parse(text, len, a, probs, PROBLEMS_MAX);
	free(text);
	for (size_t i = 0; i < n && i < PROBLEMS_MAX; i++)
		problem(p, "%s: %s", where(w, sizeof w, path, probs[i].line),
		        action_error_text(probs[i].code));
	if (!beside(path, a->template_path, sizeof a->template_path)) {
		problem(p, "%s: template: the path is too long", where(w, sizeof w, path, a->template_line));
		n++;
	}
	if (!beside(path, a->secret_file, sizeof a->secret_file)) {
		problem(p, "%s: secret_file: the path is too long",
		        where(w, sizeof w, path, a->secret_file_line));
		n++;
	}
	if (!beside(path, a->ca_file, sizeof a->ca_file)) {
		problem(p, "%s: ca_file: the path is too long", where(w, sizeof w, path, a->ca_file_line));
		n++;
	}
	return (int)n;
}

/* ---- Signing keys ---- */

struct signing_keys {
	char *data; /* the file, wiped on free */
	size_t data_len;
	struct auth_secret keys[SIGNING_KEYS_MAX];
	size_t n;
};

static void signing_keys_free(struct signing_keys *k)
{
	wipe_free(k->data, k->data_len);
	memset(k, 0, sizeof *k);
}

/*
 * Reads secret_file: one key per non-blank line (blanks and CR trimmed), a
 * whsec_ key or raw bytes; several lines sign with each (key rotation).
 * Returns NULL or why it cannot be used.
 */
static const char *signing_keys_load(const char *file, struct signing_keys *k)
{
	const char *why;
	char *line, *end;

	memset(k, 0, sizeof *k);
	k->data = read_small_file(file, OUTBOUND_SECRET_BYTES, &k->data_len, &why);
	if (k->data == NULL)
		return why;
	line = k->data;
	end = k->data + k->data_len;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line)), *stop = nl ? nl : end;
		size_t n = (size_t)(stop - line);
		char *key = trim_span(line, &n);
		if (n > 0) {
			char probe[SIGNATURE_BYTES];
			if (k->n == SIGNING_KEYS_MAX)
				return "holds more than 8 keys";
			k->keys[k->n].bytes = key;
			k->keys[k->n].len = n;
			/* A whsec_ key that is not base64 cannot sign: say so now. */
			if (auth_sign_standard(&k->keys[k->n], "probe", 0, (const unsigned char *)"", 0,
			                       probe, sizeof probe) < 0)
				return "holds a whsec_ key that is not valid base64";
			k->n++;
		}
		line = stop + 1;
	}
	if (k->n == 0)
		return "holds no key";
	return NULL;
}

#ifdef HAVE_CURL
/* ---- Header references ---- */

/*
 * Copies a reference's value into out at o, or says why it cannot be: a
 * control character (a line break would end the header) or no room.
 */
static const char *put_value(char *out, size_t cap, size_t o, const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
			return "holds a line break or another control character";
	if (o + len >= cap)
		return "makes the header too long";
	memcpy(out + o, value, len);
	return NULL;
}

/*
 * Expands the ${file:PATH} and ${env:NAME} references of header h into
 * out.  A file's content is trimmed of blanks and line ends at both ends;
 * a value holding a control character (a line break inside) is refused,
 * since it would end the header.  Returns false after reporting why, by
 * the reference's name, never its value.
 */
static bool expand_header(const struct action_header *h, char *out, size_t cap,
                          const char *path, struct problems *p)
{
	const char *v = h->line + h->value_start;
	size_t o = h->value_start;
	char w[4200];
	int name_len = (int)h->name_len;

	if (h->value_start >= cap)
		return false;
	memcpy(out, h->line, h->value_start);
	while (*v) {
		const char *ref = strstr(v, "${"), *close;
		size_t lit = ref ? (size_t)(ref - v) : strlen(v);
		char *value = NULL, name[ACTION_PATH_BYTES];
		size_t value_len = 0, data_len, name_n;
		const char *why = NULL;
		bool from_file;

		if (o + lit >= cap)
			goto too_long;
		memcpy(out + o, v, lit);
		o += lit;
		if (ref == NULL)
			break;
		close = strchr(ref, '}'); /* action_parse checked the syntax */
		from_file = strncmp(ref + 2, "file:", 5) == 0;
		if (close == NULL || (size_t)(close - ref) < 7 ||
		    (name_n = (size_t)(close - ref) - (from_file ? 7 : 6)) >= sizeof name)
			return false;
		memcpy(name, ref + (from_file ? 7 : 6), name_n);
		name[name_n] = '\0';
		if (from_file) {
			char *data = read_small_file(name, OUTBOUND_SECRET_BYTES, &value_len, &why);
			if (data == NULL) {
				problem(p, "%s: header %.*s: ${file:%s}: %s",
				        where(w, sizeof w, path, h->lineno), name_len, h->line, name, why);
				return false;
			}
			data_len = value_len;
			value = trim_span(data, &value_len);
			why = put_value(out, cap, o, value, value_len);
			wipe_free(data, data_len);
		} else {
			value = getenv(name);
			if (value == NULL) {
				problem(p, "%s: header %.*s: ${env:%s} is not set in the runner's environment",
				        where(w, sizeof w, path, h->lineno), name_len, h->line, name);
				return false;
			}
			value_len = strlen(value);
			why = put_value(out, cap, o, value, value_len);
		}
		if (why) {
			problem(p, "%s: header %.*s: ${%s:%s} %s", where(w, sizeof w, path, h->lineno),
			        name_len, h->line, from_file ? "file" : "env", name, why);
			return false;
		}
		o += value_len;
		v = close + 1;
	}
	out[o] = '\0';
	return true;
too_long:
	problem(p, "%s: header %.*s is too long", where(w, sizeof w, path, h->lineno), name_len,
	        h->line);
	return false;
}

/* True when one of a's headers is named name (case-insensitive, RFC 9110). */
static bool has_header(const struct action *a, const char *name)
{
	for (size_t i = 0; i < a->n_headers; i++)
		if (a->headers[i].name_len == strlen(name) &&
		    strncasecmp(a->headers[i].line, name, a->headers[i].name_len) == 0)
			return true;
	return false;
}

/* ---- The payload ---- */

/*
 * The run's webhook-id: the run's number and a digest of what it is for,
 * so that it is the same on every retry of the run (the receiver can
 * deduplicate) and differs between runs, and between databases that
 * happen to share run numbers.
 */
static void message_id(const struct hook_run *run, char *out, size_t cap)
{
	unsigned char d[SHA256_BYTES];
	char hex[2 * SHA256_BYTES + 1], *buf = NULL;
	int n = asprintf(&buf, "%lld\n%s\n%s\n%s", (long long)run->id, run->image_id,
	                 run->status, run->hook);

	if (n < 0) {
		snprintf(out, cap, "cfw_%lld", (long long)run->id);
		return;
	}
	sha256(buf, (size_t)n, d);
	free(buf);
	hex_encode(d, 12, hex);
	hex[24] = '\0';
	snprintf(out, cap, "cfw_%lld_%s", (long long)run->id, hex);
}

#endif

/* The image as `show` prints it, or a minimal object when it is gone. */
static char *image_json(struct store *st, const struct hook_run *run)
{
	char *json = NULL;
	cJSON *o;

	if (store_show_json(st, run->image_id, &json) == 1)
		return json;
	free(json);
	o = cJSON_CreateObject();
	if (o == NULL || !cJSON_AddStringToObject(o, "id", run->image_id) ||
	    !cJSON_AddStringToObject(o, "status", run->status)) {
		cJSON_Delete(o);
		return NULL;
	}
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return json;
}

static cJSON *string_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/*
 * The values a template may name: image (as `show` prints it), status,
 * previous_status, event, and delivery.body (the received body when it is
 * JSON, else null).
 */
static cJSON *template_roots(const char *image, const struct hook_run *run)
{
	cJSON *roots = cJSON_CreateObject();
	char *delivery = NULL;
	bool body_json = run->input_len > 0 && json_validate((const char *)run->input,
	                                                     run->input_len, &(struct json_check){0});

	if (roots == NULL)
		return NULL;
	if (body_json) {
		delivery = malloc(run->input_len + 16);
		if (delivery) {
			memcpy(delivery, "{\"body\":", 8);
			memcpy(delivery + 8, run->input, run->input_len);
			memcpy(delivery + 8 + run->input_len, "}", 2);
		}
	}
	if (!cJSON_AddItemToObject(roots, "image", cJSON_CreateRaw(image)) ||
	    !cJSON_AddItemToObject(roots, "status", string_or_null(run->status)) ||
	    !cJSON_AddItemToObject(roots, "previous_status", string_or_null(run->previous_status)) ||
	    !cJSON_AddItemToObject(roots, "event", string_or_null(run->event)) ||
	    !cJSON_AddItemToObject(roots, "delivery",
	                           cJSON_CreateRaw(delivery ? delivery : "{\"body\":null}"))) {
		cJSON_Delete(roots);
		roots = NULL;
	}
	free(delivery);
	return roots;
}

/* Builds the body to send, malloc'd; NULL after reporting why. */
static char *build_payload(const struct action *a, struct store *st, const struct hook_run *run,
                           const char *path, struct problems *p)
{
	char stamp[TIME_TEXT_SIZE], w[4200], *image = image_json(st, run), *out = NULL;
	enum action_render_error e;

	if (image == NULL) {
		problem(p, "out of memory");
		return NULL;
	}
	if (a->template_path[0] == '\0') {
		time_format_ms(time_now_ms(), stamp);
		e = action_default_payload(image, strlen(image), run->status, run->previous_status,
		                           run->event, stamp, &out);
		if (e != ACTION_RENDER_OK)
			problem(p, "the payload: %s", action_render_error_text(e));
	} else {
		const char *why;
		size_t len;
		char *tmpl = read_small_file(a->template_path, OUTBOUND_TEMPLATE_BYTES, &len, &why);
		cJSON *roots = tmpl ? template_roots(image, run) : NULL;

		if (tmpl == NULL)
			problem(p, "%s: template %s: %s", where(w, sizeof w, path, a->template_line),
			        a->template_path, why);
		else if (roots == NULL)
			problem(p, "out of memory");
		else if ((e = action_render(tmpl, len, roots, &out)) != ACTION_RENDER_OK)
			problem(p, "%s: template %s: %s", where(w, sizeof w, path, a->template_line),
			        a->template_path, action_render_error_text(e));
		cJSON_Delete(roots);
		free(tmpl);
	}
	free(image);
	return out;
}

/* ---- The call ---- */

#ifdef HAVE_CURL
static const char *method_name(enum action_method m)
{
	switch (m) {
	case ACTION_PUT:
		return "PUT";
	case ACTION_PATCH:
		return "PATCH";
	case ACTION_POST:
		break;
	}
	return "POST";
}

static void set_output(struct outbound_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_output(struct outbound_result *r, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(r->output + r->output_len, sizeof r->output - r->output_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->output_len += (size_t)n < sizeof r->output - r->output_len
		                     ? (size_t)n
		                     : sizeof r->output - r->output_len - 1;
}

/* Ends a run's output when the answer's body did not fit. */
#define CUT_NOTE "\n[cfimages-webhook: the rest of the answer was cut]\n"

/* The answer's first HOOK_OUTPUT_BYTES; reading stops there. */
struct answer {
	char buf[HOOK_OUTPUT_BYTES];
	size_t len;
	bool cut;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct answer *ans = ctx;
	size_t bytes = size * nmemb, room = sizeof ans->buf - ans->len;

	if (bytes > room) {
		memcpy(ans->buf + ans->len, data, room);
		ans->len += room;
		ans->cut = true;
		return 0; /* enough: stop reading (CURLE_WRITE_ERROR, expected) */
	}
	memcpy(ans->buf + ans->len, data, bytes);
	ans->len += bytes;
	return bytes;
}

/* Adds one header line to *list; false when out of memory. */
static bool add(struct curl_slist **list, const char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);
	if (n == NULL)
		return false;
	*list = n;
	return true;
}

/* Frees a header list after wiping its lines (they may hold tokens). */
static void headers_free(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

/*
 * The request's headers: ours (Content-Type and User-Agent unless the
 * action sets them; Expect cleared so no 100-continue round trip), the
 * action's with references expanded, and the signature.
 */
static bool build_headers(const struct action *a, const struct hook_run *run, const char *body,
                          size_t body_len, const char *path, struct problems *p,
                          struct curl_slist **list)
{
	char *line = malloc(HEADER_EXPANDED_BYTES);
	bool ok = line != NULL;

	*list = NULL;
	if (ok && !has_header(a, "Content-Type"))
		ok = add(list, "Content-Type: application/json");
	if (ok && !has_header(a, "User-Agent"))
		ok = add(list, "User-Agent: " PROGRAM_NAME "/" PACKAGE_VERSION);
	if (ok)
		ok = add(list, "Expect:");
	for (size_t i = 0; ok && i < a->n_headers; i++) {
		if (!expand_header(&a->headers[i], line, HEADER_EXPANDED_BYTES, path, p)) {
			OPENSSL_cleanse(line, HEADER_EXPANDED_BYTES);
			free(line);
			headers_free(*list);
			*list = NULL;
			return false;
		}
		ok = add(list, line);
	}
	if (line) {
		OPENSSL_cleanse(line, HEADER_EXPANDED_BYTES);
		free(line);
	}
	if (ok && a->secret_file[0]) {
		struct signing_keys keys;
		char id[96], sig[SIGNING_KEYS_MAX * SIGNATURE_BYTES], hdr[sizeof sig + 64], w[4200];
		const char *why = signing_keys_load(a->secret_file, &keys);
		int64_t t = time_now_ms() / 1000;
		size_t used = 0;

		if (why) {
			problem(p, "%s: secret_file %s: %s", where(w, sizeof w, path, a->secret_file_line),
			        a->secret_file, why);
			signing_keys_free(&keys);
			headers_free(*list);
			*list = NULL;
			return false;
		}
		message_id(run, id, sizeof id);
		for (size_t i = 0; i < keys.n; i++) {
			if (i)
				sig[used++] = ' ';
			auth_sign_standard(&keys.keys[i], id, t, (const unsigned char *)body, body_len,
			                   sig + used, sizeof sig - used);
			used += strlen(sig + used);
		}
		signing_keys_free(&keys);
		snprintf(hdr, sizeof hdr, "webhook-id: %s", id);
		ok = add(list, hdr);
		snprintf(hdr, sizeof hdr, "webhook-timestamp: %lld", (long long)t);
		ok = ok && add(list, hdr);
		snprintf(hdr, sizeof hdr, "webhook-signature: %s", sig);
		ok = ok && add(list, hdr);
	}
	if (!ok) {
		problem(p, "out of memory");
		headers_free(*list);
		*list = NULL;
	}
	return ok;
}

/* Makes the call; fills r from the answer or the transport error. */
static void call(const struct config *cfg, const struct action *a, const char *body,
                 size_t body_len, struct curl_slist *headers, struct outbound_result *r)
{
	static bool initialised;
	char errbuf[CURL_ERROR_SIZE] = "";
	int64_t timeout = cfg->hook_timeout_seconds;
	struct answer *ans = calloc(1, sizeof *ans);
	const char *ca;
	CURL *c;
	CURLcode res;
	long code = 0;

	if (a->timeout_seconds > 0 && a->timeout_seconds < timeout)
		timeout = a->timeout_seconds;
	/* The runner is one thread: initialise on first use. */
	if (!initialised && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		initialised = true;
	c = initialised && ans ? curl_easy_init() : NULL;
	if (c == NULL) {
		set_output(r, "[cfimages-webhook: cannot start an HTTP client]\n");
		r->verdict = OUTBOUND_RETRY;
		free(ans);
		return;
	}
	curl_easy_setopt(c, CURLOPT_URL, a->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	/* "" disables the proxy variables of the environment. */
	curl_easy_setopt(c, CURLOPT_PROXY, a->proxy);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	/* The action's CA file, else the configured or system bundle (a static
	 * binary knows no system's paths by itself: cabundle.c looks). */
	ca = a->ca_file[0] ? a->ca_file : tls_ca_bundle(cfg);
	if (ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	if (a->method != ACTION_POST)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_name(a->method));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

	res = curl_easy_perform(c);
	if (res == CURLE_OK || (res == CURLE_WRITE_ERROR && ans->cut)) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		r->has_status = true;
		r->status = (int)code;
		size_t room, keep;
		set_output(r, "HTTP %ld\n", code);
		/* The whole output within the hooks' bound (whose tail is what
		 * is kept): the status line, the body's first bytes, the note. */
		room = HOOK_OUTPUT_BYTES - r->output_len - strlen(CUT_NOTE);
		keep = ans->len < room ? ans->len : room;
		memcpy(r->output + r->output_len, ans->buf, keep);
		r->output_len += keep;
		if (ans->cut || keep < ans->len)
			set_output(r, "%s", CUT_NOTE);
		if (code >= 200 && code <= 299)
			r->verdict = OUTBOUND_SUCCESS;
		else if (code == 410)
			r->verdict = OUTBOUND_GIVE_UP;
		else
			r->verdict = OUTBOUND_RETRY;
	} else if (res == CURLE_OPERATION_TIMEDOUT) {
		set_output(r, "[cfimages-webhook: %s: no answer within %lld s]\n",
		           method_name(a->method), (long long)timeout);
		r->verdict = OUTBOUND_RETRY;
	} else {
		set_output(r, "[cfimages-webhook: %s failed: %s%s%s%s]\n", method_name(a->method),
		           curl_easy_strerror(res), errbuf[0] ? ": " : "", errbuf,
		           ca == NULL ? " (no CA bundle was found: set ca_file)" : "");
		r->verdict = OUTBOUND_RETRY;
	}
	curl_easy_cleanup(c);
	free(ans);
}
#endif

void outbound_attempt(const struct config *cfg, struct store *st, const struct hook_run *run,
                      const char *path, struct outbound_result *r)
{
	struct problems p = {.out = r->output, .out_len = &r->output_len,
	                     .out_cap = sizeof r->output};
	struct action *a = malloc(sizeof *a);
	char *body = NULL;
	char why[1400];

	memset(r, 0, sizeof *r);
	r->verdict = OUTBOUND_RETRY;
	if (a == NULL) {
		problem(&p, "out of memory");
		return;
	}
	if (load_action(path, a, &p) > 0)
		goto out; /* retried: the file may be mended meanwhile */
	if (!outbound_available(why, sizeof why)) {
		problem(&p, "%s: %s: actions cannot run", path, why);
		/* A build without libcurl never can: given up.  A libcurl that
		 * cannot be loaded may be installed before the next attempt (a
		 * process of its own): retried. */
#ifndef HAVE_CURL
		r->verdict = OUTBOUND_GIVE_UP;
#endif
		goto out;
	}
	if (!config_outbound_allows(cfg, a->url)) {
		char w[4200];
		problem(&p, "%s: url is not allowed by outbound_allow: not called",
		        where(w, sizeof w, path, a->url_line));
		r->verdict = OUTBOUND_GIVE_UP;
		goto out;
	}
	body = build_payload(a, st, run, path, &p);
	if (body == NULL)
		goto out;
#ifdef HAVE_CURL
	{
		struct curl_slist *headers;
		if (build_headers(a, run, body, strlen(body), path, &p, &headers)) {
			call(cfg, a, body, strlen(body), headers, r);
			headers_free(headers);
		}
	}
#endif
out:
	free(body);
	free(a);
}

/* ---- check ---- */

/* Warns when a file holding a secret can be read by others. */
static void check_secret_mode(const char *file, const char *what, const char *at,
                              struct problems *p)
{
	struct stat st;
	if (stat(file, &st) == 0 && (st.st_mode & S_IROTH))
		warning(p, "%s: %s %s is readable by others (chmod o-r %s)", at, what, file, file);
}

int outbound_check(const struct config *cfg, const char *path, outbound_report_fn fn, void *arg)
{
	struct problems p = {.fn = fn, .arg = arg};
	struct action *a = malloc(sizeof *a);
	char w[4200], why_not[1400];
	const char *why;
	size_t len;

	if (a == NULL)
		return 1;
	load_action(path, a, &p);
	if (!outbound_available(why_not, sizeof why_not))
		problem(&p, "%s: %s: the action cannot run", path, why_not);
	if (a->url[0] && !config_outbound_allows(cfg, a->url))
		problem(&p, "%s: url is not allowed by outbound_allow (the action would never call it)",
		        where(w, sizeof w, path, a->url_line));
	if (a->template_path[0]) {
		char *tmpl = read_small_file(a->template_path, OUTBOUND_TEMPLATE_BYTES, &len, &why);
		where(w, sizeof w, path, a->template_line);
		if (tmpl == NULL) {
			problem(&p, "%s: template %s: %s", w, a->template_path, why);
		} else {
			size_t at = 0;
			enum action_render_error e = action_template_check(tmpl, len, &at);
			if (e == ACTION_RENDER_BAD_JSON)
				problem(&p, "%s: template %s: %s", w, a->template_path,
				        action_render_error_text(e));
			else if (e != ACTION_RENDER_OK)
				problem(&p, "%s: template %s: %s (the string at byte %zu)", w,
				        a->template_path, action_render_error_text(e), at);
			free(tmpl);
		}
	}
	if (a->secret_file[0]) {
		struct signing_keys keys;
		where(w, sizeof w, path, a->secret_file_line);
		why = signing_keys_load(a->secret_file, &keys);
		signing_keys_free(&keys);
		if (why)
			problem(&p, "%s: secret_file %s: %s", w, a->secret_file, why);
		else
			check_secret_mode(a->secret_file, "secret_file", w, &p);
	}
	if (a->ca_file[0] && !tls_ca_bundle_usable(a->ca_file))
		problem(&p, "%s: ca_file %s: %s", where(w, sizeof w, path, a->ca_file_line),
		        a->ca_file, errno == EINVAL ? "holds no PEM certificate" : strerror(errno));
	for (size_t i = 0; i < a->n_headers; i++) {
		const char *v = a->headers[i].line + a->headers[i].value_start;
		where(w, sizeof w, path, a->headers[i].lineno);
		while ((v = strstr(v, "${file:")) != NULL) {
			char file[ACTION_PATH_BYTES];
			const char *close = strchr(v, '}');
			size_t n = close ? (size_t)(close - v - 7) : 0;
			if (close == NULL || n >= sizeof file)
				break;
			memcpy(file, v + 7, n);
			file[n] = '\0';
			if (access(file, R_OK) < 0)
				problem(&p, "%s: header %.*s: ${file:%s}: %s", w,
				        (int)a->headers[i].name_len, a->headers[i].line, file,
				        strerror(errno));
			else
				check_secret_mode(file, "header file", w, &p);
			v = close + 1;
		}
	}
	free(a);
	return p.count;
}
