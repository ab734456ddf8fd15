/*
 * Operator commands (cfimages-webhook(8) COMMANDS).  Each command is a function taking
 * its own arguments; they share the configuration, the store and one way
 * of reporting errors: "cfimages-webhook: WHAT: WHY" on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#ifdef HAVE_CURL
#include <curl/curl.h>
#endif
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>

#include "auth.h"
#include "check.h"
#include "commands.h"
#include "config.h"
#include "hook_exec.h"
#include "hook_runner.h"
#include "hooks.h"
#include "json.h"
#ifdef HAVE_CURL
#include "lazy_curl.h"
#endif
#include "outbox.h"
#include "store.h"
#include "util.h"

extern char **environ;

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 1000000
#define SIGN_FILE_MAX_BYTES (64 * 1048576)


/* Room for the database's name in messages. */
#define DB_SHOWN_BYTES 4096

/* Everything a command may need, loaded on demand. */
struct ctx {
	const struct cli *cli;
	struct config cfg;
	bool cfg_loaded;
	char cfg_error[CONFIG_ERROR_BYTES];
	char db_shown[DB_SHOWN_BYTES]; /* cfg.db as messages show it (no password) */
	struct store *store;
};

static int fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const char *what, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: %s: ", PROGRAM_NAME, what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

static int usage_error(const char *usage)
{
	fprintf(stderr, "usage: %s %s\n", PROGRAM_NAME, usage);
	return EXIT_USAGE;
}

void commands_usage(FILE *out)
{
	fprintf(out,
	        "usage: %s [--config FILE] [--db PATH] COMMAND [ARGS]\n"
	        "\n"
	        "Started by a web server it answers webhooks (FastCGI on fd 0, or CGI).\n"
	        "Commands:\n"
	        "  serve --listen PATH|HOST:PORT [--socket-mode MODE]   FastCGI on our own socket\n"
	        "  init                                create or upgrade the database\n"
	        "  register ID [--metadata JSON] [--expires-at TIME]   add a pending image\n"
	        "  show ID                             the image as one JSON line\n"
	        "  list [--status S] [--json]          images, newest first\n"
	        "  log [ID] [--limit N]                status log, newest first\n"
	        "  deliveries [--limit N] [--status CODE]   received requests, newest first\n"
	        "  sign [--scheme hex|cf|stream|standard] [--secret S] FILE   headers to send\n"
	        "  hooks list [--state S] [--limit N]  hook runs, newest first, with their output\n"
	        "  hooks run                           run the due hook runs now (cron)\n"
	        "  hooks retry RUN_ID                  queue a run again\n"
	        "  expire                              expire pending/draft images past expires_at\n"
	        "  prune [--older-than DAYS]           delete old deliveries, logs, finished runs\n"
	        "  stats [--prometheus]                counts by status, code and hook state\n"
	        "  copy --to postgresql://... [--append]   copy the SQLite database into PostgreSQL\n"
	        "  check                               validate configuration, database, hooks\n"
	        "  --version, --help\n"
	        "\n"
	        "See cfimages-webhook(8) and cfimages-webhook.conf(5).\n",
	        PROGRAM_NAME);
}

/* Loads the configuration once; applies --db.  Returns false (reported) on error. */
static bool load_config(struct ctx *c, bool report)
{
	if (c->cfg_loaded)
		return true;
	if (config_load(&c->cfg, c->cli->config_path, environ, c->cli->exe_dir, c->cfg_error,
	                sizeof c->cfg_error) < 0) {
		if (report)
			fail("configuration", "%s", c->cfg_error);
		return false;
	}
	log_set_level(c->cfg.log_level);
	if (c->cli->db_path) {
		free(c->cfg.db);
		c->cfg.db = strdup(c->cli->db_path);
		if (c->cfg.db == NULL)
			return false;
	}
	store_display_name(c->cfg.db, c->db_shown, sizeof c->db_shown);
	c->cfg_loaded = true;
	return true;
}

/* Opens the store (creating it only for init and register). */
static bool open_store(struct ctx *c, bool create)
{
	char err[512];
	struct store_options opts = {0};

	if (c->store)
		return true;
	if (!load_config(c, true))
		return false;
	opts.path = c->cfg.db;
	opts.db_mode = c->cfg.db_mode;
	opts.durable = c->cfg.durability_full;
	opts.create = create;
	c->store = store_open(&opts, err, sizeof err);
	if (c->store == NULL)
		fail("database", "%s", err);
	return c->store != NULL;
}

static bool parse_limit(const char *s, int64_t *out)
{
	return parse_int64(s, 1, LIST_LIMIT_MAX, out);
}

static int cmd_init(struct ctx *c, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error("init");
	if (!open_store(c, true))
		return EXIT_FAIL;
	printf("database %s ready (schema version %d)\n", c->db_shown,
	       store_schema_version(c->store));
	return EXIT_OK;
}

/* True when text is one JSON object, validated as strictly as a delivery. */
static bool is_json_object(const char *text)
{
	struct json_check info;
	cJSON *v;
	bool ok;
	if (!json_validate(text, strlen(text), &info) || info.has_nul_escape)
		return false;
	v = cJSON_Parse(text);
	ok = v && cJSON_IsObject(v);
	cJSON_Delete(v);
	return ok;
}

static int cmd_register(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "register ID [--metadata JSON] [--expires-at TIME]";
	const char *id = NULL, *metadata = NULL, *problem;
	int64_t expires_ms = -1;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--metadata") == 0 && i + 1 < argc) {
			metadata = argv[++i];
		} else if (strcmp(argv[i], "--expires-at") == 0 && i + 1 < argc) {
			const char *t = argv[++i];
			if (!rfc3339_parse(t, strlen(t), &expires_ms)) {
				fprintf(stderr, "%s: register: --expires-at: not an RFC 3339 time: %s\n",
				        PROGRAM_NAME, t);
				return EXIT_USAGE;
			}
		} else if (id == NULL && strcmp(argv[i], "--") == 0 && i + 1 < argc) {
			id = argv[++i]; /* an id that starts with '-' */
		} else if (id == NULL && (argv[i][0] != '-' || argv[i][1] == '\0')) {
			id = argv[i];
		} else {
			return usage_error(usage);
		}
	}
	if (id == NULL)
		return usage_error(usage);
	problem = image_id_problem(id);
	if (problem) {
		fprintf(stderr, "%s: register: bad id: %s\n", PROGRAM_NAME, problem);
		return EXIT_USAGE;
	}
	if (metadata && !is_json_object(metadata)) {
		fprintf(stderr, "%s: register: --metadata: not a JSON object\n", PROGRAM_NAME);
		return EXIT_USAGE;
	}
	if (!open_store(c, true))
		return EXIT_FAIL;
	r = store_register(c->store, id, metadata, expires_ms);
	if (r < 0)
		return fail("register", "could not write to %s", c->db_shown);
	printf(r ? "registered %s\n" : "%s was already registered\n", id);
	return EXIT_OK;
}

static int cmd_show(struct ctx *c, int argc, char **argv)
{
	char *json = NULL;
	int r;
	if (argc != 2)
		return usage_error("show ID");
	if (!open_store(c, false))
		return EXIT_FAIL;
	r = store_show_json(c->store, argv[1], &json);
	if (r < 0)
		return fail("show", "could not read %s", c->db_shown);
	if (r == 0)
		return fail("show", "no image with id %s", argv[1]);
	printf("%s\n", json);
	free(json);
	return EXIT_OK;
}

/* Column i of a row, "" for NULL. */
static const char *col(const char *const *cols, size_t i)
{
	return cols[i] ? cols[i] : "";
}

/* Runs a store query, printing each row through row(); reports a failure. */
static int query_rows(struct ctx *c, const char *what, enum store_query q, const char *arg,
                      int64_t limit, store_row_fn row, void *row_arg)
{
	if (store_query(c->store, q, arg, limit, row, row_arg) < 0)
		return fail(what, "could not read %s", c->db_shown);
	return EXIT_OK;
}

static int print_image_row(void *arg, const char *const *cols, size_t n)
{
	(void)arg;
	(void)n;
	printf("%s\t%s\t%s\n", col(cols, 1), col(cols, 2), col(cols, 0));
	return 0;
}

static int print_image_json(void *arg, const char *const *cols, size_t n)
{
	struct ctx *c = arg;
	char *line = NULL;

	(void)n;
	if (store_show_json(c->store, col(cols, 0), &line) == 1)
		printf("%s\n", line);
	free(line);
	return 0;
}

static int cmd_list(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "list [--status S] [--json]";
	const char *status = NULL;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0 && i + 1 < argc)
			status = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return usage_error(usage);
	}
	if (status && !status_is_known(status)) {
		fprintf(stderr, "%s: list: unknown status %s\n", PROGRAM_NAME, status);
		return EXIT_USAGE;
	}
	if (!open_store(c, false))
		return EXIT_FAIL;
	return query_rows(c, "list", STORE_QUERY_IMAGES, status, -1,
	                  json ? print_image_json : print_image_row, c);
}

static int print_log_row(void *arg, const char *const *cols, size_t n)
{
	(void)arg;
	(void)n;
	printf("%s\t%s\t%s\t%s\n", col(cols, 0), col(cols, 1), col(cols, 2), col(cols, 3));
	return 0;
}

static int cmd_log(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "log [ID] [--limit N]";
	const char *args[2] = {NULL, NULL};
	int64_t limit = LIST_LIMIT_DEFAULT;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (!parse_limit(argv[++i], &limit))
				return usage_error(usage);
		} else if (args[0] == NULL && strcmp(argv[i], "--") == 0 && i + 1 < argc) {
			args[0] = argv[++i];
		} else if (args[0] == NULL && argv[i][0] != '-') {
			args[0] = argv[i];
		} else {
			return usage_error(usage);
		}
	}
	if (!open_store(c, false))
		return EXIT_FAIL;
	return query_rows(c, "log", STORE_QUERY_LOGS, args[0], limit, print_log_row, NULL);
}

static int print_delivery_row(void *arg, const char *const *cols, size_t n)
{
	(void)arg;
	(void)n;
	printf("%s\t%s\t%s\t%s\t%s\t%s\n", col(cols, 0), col(cols, 1), col(cols, 2),
	       col(cols, 3)[0] ? col(cols, 3) : "-", col(cols, 4)[0] ? col(cols, 4) : "-",
	       col(cols, 5));
	return 0;
}

static int cmd_deliveries(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "deliveries [--limit N] [--status CODE]";
	const char *args[2] = {NULL, NULL};
	int64_t limit = LIST_LIMIT_DEFAULT, code;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (!parse_limit(argv[++i], &limit))
				return usage_error(usage);
		} else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc) {
			args[0] = argv[++i];
			if (!parse_int64(args[0], 100, 599, &code))
				return usage_error(usage);
		} else {
			return usage_error(usage);
		}
	}
	if (!open_store(c, false))
		return EXIT_FAIL;
	return query_rows(c, "deliveries", STORE_QUERY_DELIVERIES, args[0], limit,
	                  print_delivery_row, NULL);
}

/* Reads a whole file ("-" for stdin) into a malloc'd buffer. */
static char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *bigger;
			if (cap >= SIGN_FILE_MAX_BYTES)
				goto fail;
			cap = cap ? cap * 2 : 4096;
			bigger = realloc(buf, cap + 1);
			if (bigger == NULL)
				goto fail;
			buf = bigger;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
		goto fail;
	if (f != stdin)
		fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}

static int cmd_sign(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "sign [--scheme hex|cf|stream|standard] [--secret S] FILE";
	const char *scheme = "hex", *file = NULL, *secret_arg = NULL;
	struct secret_set set = {0};
	struct auth_secret secret;
	char value[512];
	char *body = NULL;
	size_t len = 0;
	int rc = EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--scheme") == 0 && i + 1 < argc)
			scheme = argv[++i];
		else if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
			secret_arg = argv[++i];
		else if (file == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0))
			file = argv[i];
		else
			return usage_error(usage);
	}
	if (file == NULL || (strcmp(scheme, "hex") && strcmp(scheme, "cf") &&
	                     strcmp(scheme, "stream") && strcmp(scheme, "standard")))
		return usage_error(usage);
	if (secret_arg) {
		secret.bytes = secret_arg;
		secret.len = strlen(secret_arg);
	} else {
		if (!load_config(c, true))
			return EXIT_FAIL;
		if (secret_set_refresh(&set, &c->cfg) < 0 || set.n == 0) {
			fail("sign", "no secret configured (set secret or secret_file, or pass --secret)");
			goto out;
		}
		secret = set.items[0];
	}
	body = read_all(file, &len);
	if (body == NULL) {
		fail("sign", "%s: %s", file, errno ? strerror(errno) : "cannot read");
		goto out;
	}
	if (strcmp(scheme, "cf") == 0) {
		printf("cf-webhook-auth: %.*s\n", (int)secret.len, secret.bytes);
	} else if (strcmp(scheme, "hex") == 0) {
		if (auth_sign_hex(&secret, (unsigned char *)body, len, value, sizeof value) < 0)
			goto out;
		printf("X-Signature: %s\n", value);
	} else if (strcmp(scheme, "stream") == 0) {
		if (auth_sign_stream(&secret, time_now_ms() / 1000, (unsigned char *)body, len, value,
		                     sizeof value) < 0)
			goto out;
		printf("Webhook-Signature: %s\n", value);
	} else {
		unsigned char rnd[16];
		char id[64], hex[33];
		int64_t t = time_now_ms() / 1000;
		if (RAND_bytes(rnd, sizeof rnd) != 1)
			goto out;
		hex_encode(rnd, sizeof rnd, hex);
		snprintf(id, sizeof id, "msg_%s", hex);
		if (auth_sign_standard(&secret, id, t, (unsigned char *)body, len, value,
		                       sizeof value) < 0) {
			fail("sign", "the secret is not a valid whsec_ base64 key");
			goto out;
		}
		printf("webhook-id: %s\nwebhook-timestamp: %lld\nwebhook-signature: %s\n", id,
		       (long long)t, value);
	}
	rc = EXIT_OK;
out:
	free(body);
	secret_set_free(&set);
	OPENSSL_cleanse(value, sizeof value);
	return rc;
}

/* One line of `check` output; problems make the exit status 1. */
static void print_output_lines(const char *text)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		int len = nl ? (int)(nl - text) : (int)strlen(text);
		printf("\t| %.*s\n", len, text);
		text = nl ? nl + 1 : NULL;
	}
}

static int print_run_row(void *arg, const char *const *cols, size_t n)
{
	const char *state = col(cols, 1);

	(void)arg;
	(void)n;
	printf("%s\t%s\tattempts=%s\texit=%s\t%s\t%s\tcreated=%s\t%s=%s", col(cols, 0), state,
	       col(cols, 2), col(cols, 3)[0] ? col(cols, 3) : "-", col(cols, 4), col(cols, 5),
	       col(cols, 6), strcmp(state, "queued") == 0 ? "next" : "finished",
	       strcmp(state, "queued") == 0 ? col(cols, 8)
	                                    : (col(cols, 7)[0] ? col(cols, 7) : "-"));
	if (col(cols, 10)[0])
		printf("\thost=%s", col(cols, 10));
	putchar('\n');
	print_output_lines(col(cols, 9));
	return 0;
}

/* `hooks list [--state S] [--limit N]`, `hooks run`, `hooks retry RUN_ID` */
static int cmd_hooks(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "hooks list [--state S] [--limit N] | hooks run | "
	                            "hooks retry RUN_ID";
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		const char *args[2] = {NULL, NULL};
		int64_t limit = LIST_LIMIT_DEFAULT;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
				args[0] = argv[++i];
				if (strcmp(args[0], "queued") && strcmp(args[0], "running") &&
				    strcmp(args[0], "done") && strcmp(args[0], "failed"))
					return usage_error(usage);
			} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
				if (!parse_limit(argv[++i], &limit))
					return usage_error(usage);
			} else {
				return usage_error(usage);
			}
		}
		if (!open_store(c, false))
			return EXIT_FAIL;
		return query_rows(c, "hooks list", STORE_QUERY_HOOK_RUNS, args[0], limit,
		                  print_run_row, NULL);
	}
	if (argc == 3 && strcmp(argv[1], "run") == 0 && strcmp(argv[2], "--detached") == 0) {
		if (load_config(c, true))
			hooks_runner_main(&c->cfg);
		return EXIT_OK;
	}
	if (argc == 2 && strcmp(argv[1], "run") == 0) {
		int ran;
		if (!open_store(c, false))
			return EXIT_FAIL;
		ran = hooks_run_due(c->store, &c->cfg, false);
		if (ran < 0)
			return fail("hooks run", "could not read or update hook_runs in %s", c->db_shown);
		printf("ran %d hook run%s\n", ran, ran == 1 ? "" : "s");
		return EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "retry") == 0) {
		int64_t id;
		int r;
		if (!parse_int64(argv[2], 1, INT64_MAX, &id))
			return usage_error(usage);
		if (!open_store(c, false))
			return EXIT_FAIL;
		r = outbox_retry(c->store, id, time_now_ms());
		if (r < 0)
			return fail("hooks retry", "could not update %s", c->db_shown);
		if (r == 0)
			return fail("hooks retry", "no hook run %lld, or it is running now", (long long)id);
		printf("hook run %lld queued again\n", (long long)id);
		return EXIT_OK;
	}
	return usage_error(usage);
}

static int cmd_expire(struct ctx *c, int argc, char **argv)
{
	struct hook_list hooks;
	long count = 0;
	int rc;

	(void)argv;
	if (argc != 1)
		return usage_error("expire");
	if (!open_store(c, false))
		return EXIT_FAIL;
	if (hooks_discover(c->cfg.hooks_dir, "expired", &hooks) < 0)
		return fail("expire", "out of memory");
	rc = store_expire(c->store, time_now_ms(), hooks.items, hooks.n, &count);
	hook_list_free(&hooks);
	if (rc < 0)
		return fail("expire", "could not update %s", c->db_shown);
	printf("expired %ld image%s\n", count, count == 1 ? "" : "s");
	if (count > 0 && hooks_run_due(c->store, &c->cfg, false) < 0)
		return fail("expire", "could not run the expired hooks");
	return EXIT_OK;
}

static int cmd_prune(struct ctx *c, int argc, char **argv)
{
	struct store_prune_counts n = {0};
	int64_t days = 30;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--older-than") == 0 && i + 1 < argc) {
			if (!parse_int64(argv[++i], 0, 36500, &days))
				return usage_error("prune [--older-than DAYS]");
		} else {
			return usage_error("prune [--older-than DAYS]");
		}
	}
	if (!open_store(c, false))
		return EXIT_FAIL;
	if (store_prune(c->store, time_now_ms() - days * 86400 * 1000, &n) < 0)
		return fail("prune", "could not update %s", c->db_shown);
	printf("pruned %ld deliveries, %ld log rows, %ld hook runs older than %lld days\n",
	       n.deliveries, n.logs, n.hook_runs, (long long)days);
	return EXIT_OK;
}

/* One group of `stats`: a metric name, its label, and the GROUP BY query. */
struct stat_group {
	const char *metric;
	const char *help;
	const char *label;
	enum store_query query;
};

static int print_stat_row(void *arg, const char *const *cols, size_t n)
{
	const struct stat_group *g = ((const struct stat_group *const *)arg)[0];
	bool prometheus = ((const struct stat_group *const *)arg)[1] != NULL;

	(void)n;
	if (prometheus) {
		/* Label values are our own tokens or numbers; an application
		 * may write other statuses, so escape per the text format. */
		printf("%s{%s=\"", g->metric, g->label);
		for (const char *p = col(cols, 0); *p; p++) {
			if (*p == '\\' || *p == '"')
				putchar('\\');
			if (*p == '\n')
				fputs("\\n", stdout);
			else
				putchar(*p);
		}
		printf("\"} %s\n", col(cols, 1));
	} else {
		printf("%s\t%s\t%s\n", g->metric + strlen("cfimages_webhook_"), col(cols, 0),
		       col(cols, 1));
	}
	return 0;
}

static int cmd_stats(struct ctx *c, int argc, char **argv)
{
	static const struct stat_group groups[] = {
		{"cfimages_webhook_images", "Images by status.", "status", STORE_QUERY_IMAGE_COUNTS},
		{"cfimages_webhook_deliveries", "Recorded deliveries by HTTP status code.", "code",
		 STORE_QUERY_DELIVERY_COUNTS},
		{"cfimages_webhook_hook_runs", "Hook runs by state.", "state", STORE_QUERY_RUN_COUNTS},
	};
	bool prometheus = argc == 2 && strcmp(argv[1], "--prometheus") == 0;

	if (argc > 2 || (argc == 2 && !prometheus))
		return usage_error("stats [--prometheus]");
	if (!open_store(c, false))
		return EXIT_FAIL;
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
		const struct stat_group *arg[2] = {&groups[g], prometheus ? &groups[g] : NULL};
		if (prometheus)
			printf("# HELP %s %s\n# TYPE %s gauge\n", groups[g].metric, groups[g].help,
			       groups[g].metric);
		if (query_rows(c, "stats", groups[g].query, NULL, -1, print_stat_row, arg) != EXIT_OK)
			return EXIT_FAIL;
	}
	return EXIT_OK;
}

struct copy_ctx {
	struct store *to;
	enum store_table table;
	long rows;
};

static int copy_row(void *arg, const char *const *cols, size_t n)
{
	struct copy_ctx *cc = arg;

	(void)n;
	if (store_load_row(cc->to, cc->table, cols) < 0)
		return -1;
	cc->rows++;
	return 0;
}

/* `copy --to URI [--append]`: the SQLite database, whole, into PostgreSQL. */
static int cmd_copy(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "copy --to postgresql://... [--append]";
	const char *to = NULL;
	bool append = false;
	char err[512], shown[DB_SHOWN_BYTES];
	struct store_options opts = {0};
	struct copy_ctx cc = {0};
	long counts[STORE_TABLE_COUNT] = {0};
	int rc, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--append") == 0)
			append = true;
		else
			return usage_error(usage);
	}
	if (to == NULL)
		return usage_error(usage);
	store_display_name(to, shown, sizeof shown);
	if (!store_is_postgresql(to))
		return fail("copy", "--to %s: expected a postgresql:// or postgres:// URI", shown);
	if (!load_config(c, true))
		return EXIT_FAIL;
	if (store_is_postgresql(c->cfg.db))
		return fail("copy", "the database to copy is %s: copy reads an SQLite database",
		            c->db_shown);
	if (!open_store(c, false))
		return EXIT_FAIL;
	opts.path = to;
	opts.durable = true;
	opts.create = true;
	cc.to = store_open(&opts, err, sizeof err);
	if (cc.to == NULL)
		return fail("copy", "%s", err);
	rc = store_load_begin(cc.to, append);
	if (rc == -2) {
		store_close(cc.to);
		return fail("copy", "%s already holds rows (use --append to add to them)", shown);
	}
	for (i = 0; rc == 0 && i < STORE_TABLE_COUNT; i++) {
		cc.table = (enum store_table)i;
		cc.rows = 0;
		rc = store_dump(c->store, cc.table, copy_row, &cc);
		counts[i] = cc.rows;
	}
	if (rc != 0 || store_load_end(cc.to, true) < 0) {
		if (rc != 0)
			store_load_end(cc.to, false);
		store_close(cc.to);
		return fail("copy", "nothing copied: the %s rows could not be %s",
		            store_table_name(cc.table), rc != 0 ? "copied" : "committed");
	}
	store_close(cc.to);
	printf("copied %ld images, %ld log rows, %ld deliveries and %ld hook runs to %s\n",
	       counts[STORE_TABLE_IMAGES], counts[STORE_TABLE_LOGS], counts[STORE_TABLE_DELIVERIES],
	       counts[STORE_TABLE_HOOK_RUNS], shown);
	return EXIT_OK;
}

static int cmd_check(struct ctx *c, int argc, char **argv)
{
	bool loaded;

	(void)argv;
	if (argc != 1)
		return usage_error("check");
	loaded = load_config(c, false);
	return check_all(loaded ? &c->cfg : NULL, c->cfg_error, c->db_shown) ? EXIT_FAIL
	                                                                      : EXIT_OK;
}

/*
 * One line naming every library built in and its version, and how the
 * program was linked, so that a support question is answered by pasting
 * it.  libfcgi has no version call: its version is the one configure saw.
 */
static void print_version(void)
{
	char dbs[1280], curl[1280];
#ifdef HAVE_CURL
	/* Loaded on first use (README, Build and install): say so if it cannot be. */
	const char *why = lazy_curl_load();
	if (why != NULL)
		snprintf(curl, sizeof curl, "libcurl: cannot be loaded (%s)", why);
	else
		snprintf(curl, sizeof curl, "libcurl %s",
		         curl_version_info(CURLVERSION_NOW)->version);
#else
	snprintf(curl, sizeof curl, "libcurl: not built in (./configure --with-curl)");
#endif
#ifdef FCGI_BUILD_VERSION
	const char *fcgi = FCGI_BUILD_VERSION;
#else
	const char *fcgi = "(version unknown)";
#endif
#ifdef CFW_PORTABLE
	const char *build = "portable (static, musl)";
#else
	const char *build = "shared libraries";
#endif
	printf("%s %s (%s, %s, cJSON %s, libfcgi %s, %s; build: %s)\n", PROGRAM_NAME,
	       PACKAGE_VERSION, store_library_versions(dbs, sizeof dbs),
	       OpenSSL_version(OPENSSL_VERSION), cJSON_Version(), fcgi, curl, build);
}

int commands_run(const struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct ctx *, int, char **);
	} table[] = {
		{"init", cmd_init},     {"register", cmd_register},     {"show", cmd_show},
		{"list", cmd_list},     {"log", cmd_log},               {"deliveries", cmd_deliveries},
		{"sign", cmd_sign},     {"check", cmd_check},       {"hooks", cmd_hooks},
		{"expire", cmd_expire}, {"prune", cmd_prune},       {"stats", cmd_stats},
		{"copy", cmd_copy},
	};
	struct ctx c = {.cli = cli};
	int rc = -1;

	if (strcmp(argv[0], "--version") == 0 || strcmp(argv[0], "version") == 0) {
		print_version();
		return EXIT_OK;
	}
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0 ||
	    strcmp(argv[0], "-h") == 0) {
		commands_usage(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(argv[0], table[i].name) == 0)
			rc = table[i].fn(&c, argc, argv);
	if (rc < 0) {
		fprintf(stderr, "%s: unknown command %s\n", PROGRAM_NAME, argv[0]);
		commands_usage(stderr);
		rc = EXIT_USAGE;
	}
	store_close(c.store);
	config_free(&c.cfg);
	return rc;
}
