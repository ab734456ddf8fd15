/*
 * `check` (cfimages-webhook(8) COMMANDS): validates the configuration, the
 * secrets, the database (its files and modes for SQLite, the connection
 * and the schema for both backends) and the hooks directory, printing an
 * "ok:" line for each part that is well and each problem with its fix.
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

#include "check.h"
#include "config.h"
#include "hooks.h"
#include "outbound.h"
#include "store.h"
#include "util.h"

/* Filesystem magic numbers of network filesystems, where WAL does not work. */
#define NFS_SUPER_MAGIC 0x6969
#define SMB_SUPER_MAGIC 0x517B
#define CIFS_SUPER_MAGIC 0xFF534D42
#define SMB2_SUPER_MAGIC 0xFE534D42
#define FUSE_SUPER_MAGIC 0x65735546
#define CEPH_SUPER_MAGIC 0x00C36400

static void vreport(int *problems, bool is_problem, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void vreport(int *problems, bool is_problem, const char *fmt, va_list ap)
{
	printf("%s: ", is_problem ? "problem" : "warning");
	vprintf(fmt, ap);
	putchar('\n');
	if (is_problem)
		(*problems)++;
}

static void report(int *problems, bool is_problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(int *problems, bool is_problem, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(problems, is_problem, fmt, ap);
	va_end(ap);
}

void check_report(int *problems, bool is_problem, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(problems, is_problem, fmt, ap);
	va_end(ap);
}

/* store_access_problems() callback: each unwritable database file is a problem. */
static void report_access_problem(void *arg, const char *problem)
{
	report(arg, true, "database: %s", problem);
}

static void check_database(const struct config *cfg, const char *db_shown, int *problems)
{
	struct statfs fs;
	struct stat st;
	char dir[4096], *slash;
	char err[512];
	struct store *store;
	struct store_options opts = {.path = cfg->db, .db_mode = cfg->db_mode,
	                             .durable = cfg->durability_full, .create = false};

	if (store_is_postgresql(cfg->db)) {
		if (cfg->db_mode_set)
			report(problems, false,
			       "db_mode is set but means nothing for a PostgreSQL database "
			       "(remove it)");
		store = store_open(&opts, err, sizeof err);
		if (store == NULL)
			report(problems, true, "database: %s", err);
		else
			printf("ok: database %s (PostgreSQL, schema version %d)\n", db_shown,
			       store_schema_version(store));
		store_close(store);
		return;
	}
	snprintf(dir, sizeof dir, "%s", cfg->db);
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
	if (stat(cfg->db, &st) < 0) {
		report(problems, true, "database %s: %s (run `%s init`)", cfg->db, strerror(errno),
		       PROGRAM_NAME);
		return;
	}
	if ((st.st_mode & 07777) != cfg->db_mode)
		report(problems, false,
		       "database %s has mode %04o but db_mode is %04o (chmod %04o %s if intended)",
		       cfg->db, (unsigned)(st.st_mode & 07777), cfg->db_mode, cfg->db_mode,
		       cfg->db);
	if (st.st_mode & S_IWOTH)
		report(problems, true, "database %s is writable by others (chmod o-w %s)", cfg->db,
		       cfg->db);
	/* store_open would refuse these too, but only name the first. */
	if (store_access_problems(cfg->db, report_access_problem, problems) > 0)
		return;
	store = store_open(&opts, err, sizeof err);
	if (store == NULL)
		report(problems, true, "database: %s", err);
	else
		printf("ok: database %s (schema version %d)\n", db_shown,
		       store_schema_version(store));
	store_close(store);
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

/* outbound_check() callback: "PATH:LINE: what", a problem or a warning. */
static void report_action(void *arg, bool is_problem, const char *text)
{
	report(arg, is_problem, "action %s", text);
}

/* Returns how many outbound actions discovery finds. */
static size_t check_hooks(const struct config *cfg, int *problems)
{
	enum hook_path_problem problem = hooks_path_problem(cfg->hooks_dir, true);
	size_t total = 0, actions = 0, bad_actions = 0;

	if (problem == HOOK_PATH_MISSING) {
		report(problems, false, "hooks_dir %s does not exist: no hook will run",
		       cfg->hooks_dir);
		return 0;
	}
	if (problem != HOOK_PATH_OK) {
		report(problems, true, "hooks_dir %s %s", cfg->hooks_dir,
		       hooks_path_problem_text(problem));
		return 0;
	}
	for (size_t i = 0; i < STATUS_COUNT; i++) {
		char path[4096];
		struct hook_list list;
		enum hook_path_problem p;

		snprintf(path, sizeof path, "%s/%s", cfg->hooks_dir, status_names[i]);
		p = hooks_path_problem(path, false);
		if (p != HOOK_PATH_OK && p != HOOK_PATH_MISSING && p != HOOK_PATH_NOT_REGULAR)
			report(problems, true, "hook %s %s", path, hooks_path_problem_text(p));
		else if (p == HOOK_PATH_OK && access(path, X_OK) < 0)
			report(problems, true, "hook %s is not executable (chmod u+x %s)", path, path);
		snprintf(path, sizeof path, "%s/%s" OUTBOUND_SUFFIX, cfg->hooks_dir, status_names[i]);
		p = hooks_path_problem(path, false);
		if (p != HOOK_PATH_OK && p != HOOK_PATH_MISSING)
			report(problems, true, "action %s %s", path, hooks_path_problem_text(p));
		snprintf(path, sizeof path, "%s/%s.d", cfg->hooks_dir, status_names[i]);
		p = hooks_path_problem(path, true);
		if (p != HOOK_PATH_OK && p != HOOK_PATH_MISSING)
			report(problems, true, "hook directory %s %s", path,
			       hooks_path_problem_text(p));
		else if (p == HOOK_PATH_OK)
			check_hook_dir_entries(path, problems);
		if (hooks_discover(cfg->hooks_dir, status_names[i], &list) == 0) {
			for (size_t j = 0; j < list.n; j++) {
				if (!outbound_is_action(list.items[j].name))
					continue;
				actions++;
				if (outbound_check(cfg, list.items[j].path, report_action, problems) > 0)
					bad_actions++;
			}
			total += list.n;
			hook_list_free(&list);
		}
	}
	printf("ok: hooks_dir %s (%zu runnable hook%s)\n", cfg->hooks_dir, total,
	       total == 1 ? "" : "s");
	if (actions > 0 && bad_actions == 0)
		printf("ok: %zu outbound action%s\n", actions, actions == 1 ? "" : "s");
	return actions;
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

int check_all(const struct config *cfg, const char *cfg_error, const char *db_shown)
{
	struct secret_set set = {0};
	int problems = 0;
	size_t actions;

	if (cfg == NULL) {
		report(&problems, true, "configuration: %s", cfg_error);
		return problems;
	}
	printf("ok: configuration %s\n", cfg->path ? cfg->path : "(defaults and environment)");
	if (cfg->secret == NULL && cfg->secret_file == NULL)
		report(&problems, false,
		       "no secret configured: every well-formed delivery is accepted (set secret "
		       "or secret_file)");
	else if (secret_set_refresh(&set, cfg) < 0)
		report(&problems, true, "secret_file %s cannot be read or holds no secret",
		       cfg->secret_file);
	else
		printf("ok: %zu secret%s configured\n", set.n, set.n == 1 ? "" : "s");
	check_secret_lengths(&set, cfg, &problems);
	secret_set_free(&set);
	check_database(cfg, db_shown, &problems);
	actions = check_hooks(cfg, &problems);
	check_hosting(cfg, &problems);
	check_ca_bundle(cfg, actions > 0, &problems);
	return problems;
}
