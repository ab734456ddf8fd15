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
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "commands.h"
#include "config.h"
#include "hooks.h"
#include "json.h"
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

/* Filesystem magic numbers of network filesystems, where WAL does not work. */
#define NFS_SUPER_MAGIC 0x6969
#define SMB_SUPER_MAGIC 0x517B
#define CIFS_SUPER_MAGIC 0xFF534D42
#define SMB2_SUPER_MAGIC 0xFE534D42
#define FUSE_SUPER_MAGIC 0x65735546
#define CEPH_SUPER_MAGIC 0x00C36400

/* Everything a command may need, loaded on demand. */
struct ctx {
	const struct cli *cli;
	struct config cfg;
	bool cfg_loaded;
	char cfg_error[CONFIG_ERROR_BYTES];
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
	c->cfg_loaded = true;
	return true;
}

/* Opens the store (creating it only for init and register). */
static bool open_store(struct ctx *c, bool create)
{
	char err[512];
	struct store_options opts;

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
	printf("database %s ready (schema version %d)\n", c->cfg.db,
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
		return fail("register", "could not write to %s", c->cfg.db);
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
		return fail("show", "could not read %s", c->cfg.db);
	if (r == 0)
		return fail("show", "no image with id %s", argv[1]);
	printf("%s\n", json);
	free(json);
	return EXIT_OK;
}

/* Text of column i, "" for NULL. */
static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

/*
 * Prepares sql, binds the NULL-terminated text arguments and the limit
 * (when >= 0, as the last parameter), and prints each row through row().
 */
static int query_rows(struct ctx *c, const char *what, const char *sql, const char *const *args,
                      int64_t limit, void (*row)(sqlite3_stmt *st))
{
	sqlite3 *db = store_db(c->store);
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (; args && args[n]; n++)
		sqlite3_bind_text(st, n + 1, args[n], -1, SQLITE_STATIC);
	if (limit >= 0)
		sqlite3_bind_int64(st, n + 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		row(st);
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	return EXIT_OK;
fail:
	fail(what, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return EXIT_FAIL;
}

static void print_image_row(sqlite3_stmt *st)
{
	printf("%s\t%s\t%s\n", col(st, 1), col(st, 2), col(st, 0));
}

static int cmd_list(struct ctx *c, int argc, char **argv)
{
	static const char usage[] = "list [--status S] [--json]";
	const char *status = NULL;
	const char *args[2] = {NULL, NULL};
	bool json = false;
	char sql[256];

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
	args[0] = status;
	snprintf(sql, sizeof sql,
	         "SELECT cloudflare_id, status, updated_at FROM cloudflare_images%s "
	         "ORDER BY created_at DESC, rowid DESC",
	         status ? " WHERE status = ?1" : "");
	if (!json)
		return query_rows(c, "list", sql, args, -1, print_image_row);
	{
		sqlite3_stmt *st = NULL;
		sqlite3 *db = store_db(c->store);
		int rc;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			return fail("list", "%s", sqlite3_errmsg(db));
		if (status)
			sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			char *line = NULL;
			if (store_show_json(c->store, col(st, 0), &line) == 1)
				printf("%s\n", line);
			free(line);
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return fail("list", "%s", sqlite3_errmsg(db));
	}
	return EXIT_OK;
}

static void print_log_row(sqlite3_stmt *st)
{
	printf("%s\t%s\t%s\t%s\n", col(st, 0), col(st, 1), col(st, 2), col(st, 3));
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
	return query_rows(c, "log",
	                  args[0] ? "SELECT timestamp, event_type, image_id, message "
	                            "FROM cloudflare_image_logs WHERE image_id = ?1 "
	                            "ORDER BY id DESC LIMIT ?2"
	                          : "SELECT timestamp, event_type, image_id, message "
	                            "FROM cloudflare_image_logs ORDER BY id DESC LIMIT ?1",
	                  args, limit, print_log_row);
}

static void print_delivery_row(sqlite3_stmt *st)
{
	printf("%s\t%s\t%s\t%s\t%s\t%s\n", col(st, 0), col(st, 1), col(st, 2),
	       col(st, 3)[0] ? col(st, 3) : "-", col(st, 4)[0] ? col(st, 4) : "-", col(st, 5));
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
	return query_rows(c, "deliveries",
	                  args[0] ? "SELECT received_at, status_code, reason, scheme, remote_addr, "
	                            "image_id FROM webhook_deliveries WHERE status_code = "
	                            "CAST(?1 AS INTEGER) ORDER BY id DESC LIMIT ?2"
	                          : "SELECT received_at, status_code, reason, scheme, remote_addr, "
	                            "image_id FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
	                  args, limit, print_delivery_row);
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
static void report(int *problems, bool is_problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(int *problems, bool is_problem, const char *fmt, ...)
{
	va_list ap;
	printf("%s: ", is_problem ? "problem" : "warning");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (is_problem)
		(*problems)++;
}

/* store_access_problems() callback: each unwritable database file is a problem. */
static void report_access_problem(void *arg, const char *problem)
{
	report(arg, true, "database: %s", problem);
}

static void check_database(struct ctx *c, int *problems)
{
	struct statfs fs;
	struct stat st;
	char dir[4096], *slash;
	char err[512];
	struct store_options opts = {.path = c->cfg.db, .db_mode = c->cfg.db_mode,
	                             .durable = c->cfg.durability_full, .create = false};

	snprintf(dir, sizeof dir, "%s", c->cfg.db);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	if (statfs(dir, &fs) == 0) {
		unsigned long magic = (unsigned long)fs.f_type;
		if (magic == NFS_SUPER_MAGIC || magic == SMB_SUPER_MAGIC ||
		    magic == CIFS_SUPER_MAGIC || magic == SMB2_SUPER_MAGIC ||
		    magic == FUSE_SUPER_MAGIC || magic == CEPH_SUPER_MAGIC)
			report(problems, true,
			       "database directory %s is on a network filesystem; SQLite's WAL "
			       "needs a local one (move db to local disk)",
			       dir);
	}
	if (stat(c->cfg.db, &st) < 0) {
		report(problems, true, "database %s: %s (run `%s init`)", c->cfg.db, strerror(errno),
		       PROGRAM_NAME);
		return;
	}
	if ((st.st_mode & 07777) != c->cfg.db_mode)
		report(problems, false,
		       "database %s has mode %04o but db_mode is %04o (chmod %04o %s if intended)",
		       c->cfg.db, (unsigned)(st.st_mode & 07777), c->cfg.db_mode, c->cfg.db_mode,
		       c->cfg.db);
	if (st.st_mode & S_IWOTH)
		report(problems, true, "database %s is writable by others (chmod o-w %s)", c->cfg.db,
		       c->cfg.db);
	/* store_open would refuse these too, but only name the first. */
	if (store_access_problems(c->cfg.db, report_access_problem, problems) > 0)
		return;
	c->store = store_open(&opts, err, sizeof err);
	if (c->store == NULL)
		report(problems, true, "database: %s", err);
	else
		printf("ok: database %s (schema version %d)\n", c->cfg.db,
		       store_schema_version(c->store));
}

/* Reports every script in an S.d directory that would be refused. */
static void check_hook_dir_entries(const char *dir, int *problems)
{
	struct dirent **entries = NULL;
	int n = scandir(dir, &entries, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		const char *name = entries[i]->d_name;
		size_t len = strlen(name);
		char path[4096];
		enum hook_path_problem p;
		struct stat st;

		if (name[0] != '.' && name[len - 1] != '~' &&
		    snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    (p = hooks_path_problem(path, false)) != HOOK_PATH_OK)
			report(problems, true, "hook %s %s", path, hooks_path_problem_text(p));
		free(entries[i]);
	}
	free(entries);
}

static void check_hooks(struct ctx *c, int *problems)
{
	enum hook_path_problem problem = hooks_path_problem(c->cfg.hooks_dir, true);
	size_t total = 0;

	if (problem == HOOK_PATH_MISSING) {
		report(problems, false, "hooks_dir %s does not exist: no hook will run",
		       c->cfg.hooks_dir);
		return;
	}
	if (problem != HOOK_PATH_OK) {
		report(problems, true, "hooks_dir %s %s", c->cfg.hooks_dir,
		       hooks_path_problem_text(problem));
		return;
	}
	for (size_t i = 0; i < STATUS_COUNT; i++) {
		char path[4096];
		struct hook_list list;
		enum hook_path_problem p;

		snprintf(path, sizeof path, "%s/%s", c->cfg.hooks_dir, status_names[i]);
		p = hooks_path_problem(path, false);
		if (p != HOOK_PATH_OK && p != HOOK_PATH_MISSING && p != HOOK_PATH_NOT_REGULAR)
			report(problems, true, "hook %s %s", path, hooks_path_problem_text(p));
		else if (p == HOOK_PATH_OK && access(path, X_OK) < 0)
			report(problems, true, "hook %s is not executable (chmod u+x %s)", path, path);
		snprintf(path, sizeof path, "%s/%s.d", c->cfg.hooks_dir, status_names[i]);
		p = hooks_path_problem(path, true);
		if (p != HOOK_PATH_OK && p != HOOK_PATH_MISSING)
			report(problems, true, "hook directory %s %s", path,
			       hooks_path_problem_text(p));
		else if (p == HOOK_PATH_OK)
			check_hook_dir_entries(path, problems);
		if (hooks_discover(c->cfg.hooks_dir, status_names[i], &list) == 0) {
			total += list.n;
			hook_list_free(&list);
		}
	}
	printf("ok: hooks_dir %s (%zu runnable hook%s)\n", c->cfg.hooks_dir, total,
	       total == 1 ? "" : "s");
}

static void print_output_lines(const char *text)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		int len = nl ? (int)(nl - text) : (int)strlen(text);
		printf("\t| %.*s\n", len, text);
		text = nl ? nl + 1 : NULL;
	}
}

static void print_run_row(sqlite3_stmt *st)
{
	const char *state = col(st, 1);
	printf("%s\t%s\tattempts=%s\texit=%s\t%s\t%s\tcreated=%s\t%s=%s\n", col(st, 0), state,
	       col(st, 2), col(st, 3)[0] ? col(st, 3) : "-", col(st, 4), col(st, 5), col(st, 6),
	       strcmp(state, "queued") == 0 ? "next" : "finished",
	       strcmp(state, "queued") == 0 ? col(st, 8) : (col(st, 7)[0] ? col(st, 7) : "-"));
	print_output_lines(col(st, 9));
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
		return query_rows(c, "hooks list",
		                  args[0] ? "SELECT id, state, attempts, exit_code, hook, image_id,"
		                            " created_at, finished_at, next_attempt_at, output"
		                            " FROM hook_runs WHERE state = ?1 ORDER BY id DESC LIMIT ?2"
		                          : "SELECT id, state, attempts, exit_code, hook, image_id,"
		                            " created_at, finished_at, next_attempt_at, output"
		                            " FROM hook_runs ORDER BY id DESC LIMIT ?1",
		                  args, limit, print_run_row);
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
			return fail("hooks run", "could not read or update hook_runs in %s", c->cfg.db);
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
			return fail("hooks retry", "could not update %s", c->cfg.db);
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
		return fail("expire", "could not update %s", c->cfg.db);
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
		return fail("prune", "could not update %s", c->cfg.db);
	printf("pruned %ld deliveries, %ld log rows, %ld hook runs older than %lld days\n",
	       n.deliveries, n.logs, n.hook_runs, (long long)days);
	return EXIT_OK;
}

/* One group of `stats`: a metric name, its label, and the GROUP BY query. */
struct stat_group {
	const char *metric;
	const char *help;
	const char *label;
	const char *sql;
};

static int cmd_stats(struct ctx *c, int argc, char **argv)
{
	static const struct stat_group groups[] = {
		{"cfimages_webhook_images", "Images by status.", "status",
		 "SELECT status, count(*) FROM cloudflare_images GROUP BY status ORDER BY status"},
		{"cfimages_webhook_deliveries", "Recorded deliveries by HTTP status code.", "code",
		 "SELECT status_code, count(*) FROM webhook_deliveries GROUP BY status_code"
		 " ORDER BY status_code"},
		{"cfimages_webhook_hook_runs", "Hook runs by state.", "state",
		 "SELECT state, count(*) FROM hook_runs GROUP BY state ORDER BY state"},
	};
	bool prometheus = argc == 2 && strcmp(argv[1], "--prometheus") == 0;
	sqlite3 *db;

	if (argc > 2 || (argc == 2 && !prometheus))
		return usage_error("stats [--prometheus]");
	if (!open_store(c, false))
		return EXIT_FAIL;
	db = store_db(c->store);
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
		sqlite3_stmt *st = NULL;
		int rc;
		if (sqlite3_prepare_v2(db, groups[g].sql, -1, &st, NULL) != SQLITE_OK)
			return fail("stats", "%s", sqlite3_errmsg(db));
		if (prometheus)
			printf("# HELP %s %s\n# TYPE %s gauge\n", groups[g].metric, groups[g].help,
			       groups[g].metric);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (prometheus) {
				/* Label values are our own tokens or numbers; an application
				 * may write other statuses, so escape per the text format. */
				printf("%s{%s=\"", groups[g].metric, groups[g].label);
				for (const char *p = col(st, 0); *p; p++) {
					if (*p == '\\' || *p == '"')
						putchar('\\');
					if (*p == '\n')
						fputs("\\n", stdout);
					else
						putchar(*p);
				}
				printf("\"} %lld\n", (long long)sqlite3_column_int64(st, 1));
			} else {
				printf("%s\t%s\t%lld\n", groups[g].metric + strlen("cfimages_webhook_"),
				       col(st, 0), (long long)sqlite3_column_int64(st, 1));
			}
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return fail("stats", "%s", sqlite3_errmsg(db));
	}
	return EXIT_OK;
}

/*
 * Warns about each secret shorter than SECRET_MIN_BYTES, naming where it
 * is (the setting, or the line of secret_file) and never its bytes: a
 * short secret is guessable, a cf-webhook-auth secret above all, since
 * that header carries it as it is.
 */
static void check_secret_lengths(const struct secret_set *set, const struct config *cfg,
                                 int *problems)
{
	for (size_t i = 0; i < set->n; i++) {
		if (set->items[i].len >= SECRET_MIN_BYTES)
			continue;
		if (set->lines[i] == 0)
			report(problems, false,
			       "secret is %zu bytes long: use at least %d random bytes (e.g. "
			       "openssl rand -hex 32)",
			       set->items[i].len, SECRET_MIN_BYTES);
		else
			report(problems, false,
			       "secret_file %s line %u: a secret of %zu bytes: use at least %d "
			       "random bytes (e.g. openssl rand -hex 32)",
			       cfg->secret_file, set->lines[i], set->items[i].len, SECRET_MIN_BYTES);
	}
}

static int cmd_check(struct ctx *c, int argc, char **argv)
{
	struct secret_set set = {0};
	int problems = 0;

	(void)argv;
	if (argc != 1)
		return usage_error("check");
	if (!load_config(c, false)) {
		report(&problems, true, "configuration: %s", c->cfg_error);
		return EXIT_FAIL;
	}
	printf("ok: configuration %s\n", c->cfg.path ? c->cfg.path : "(defaults and environment)");
	if (c->cfg.secret == NULL && c->cfg.secret_file == NULL)
		report(&problems, false,
		       "no secret configured: every well-formed delivery is accepted (set secret "
		       "or secret_file)");
	else if (secret_set_refresh(&set, &c->cfg) < 0)
		report(&problems, true, "secret_file %s cannot be read or holds no secret",
		       c->cfg.secret_file);
	else
		printf("ok: %zu secret%s configured\n", set.n, set.n == 1 ? "" : "s");
	check_secret_lengths(&set, &c->cfg, &problems);
	secret_set_free(&set);
	check_database(c, &problems);
	check_hooks(c, &problems);
	return problems ? EXIT_FAIL : EXIT_OK;
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
	};
	struct ctx c = {.cli = cli};
	int rc = -1;

	if (strcmp(argv[0], "--version") == 0 || strcmp(argv[0], "version") == 0) {
		printf("%s %s\n", PROGRAM_NAME, PACKAGE_VERSION);
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
