/*
 * config.c: file parsing, precedence, error messages naming file, line and
 * key, allow_from CIDRs, and the secret set with rotation and trimming.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cabundle.h"
#include "config.h"
#include "testlib.h"

static char dir[] = "/tmp/cfw-test-config-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void)
{
	struct config cfg;
	char err[CONFIG_ERROR_BYTES];
	char *env[] = {NULL};
	CHECK(config_load(&cfg, NULL, env, "/nonexistent", err, sizeof err) == 0);
	CHECK(cfg.secret == NULL && cfg.secret_file == NULL);
	CHECK(cfg.db_mode == 0600);
	CHECK(cfg.hook_timeout_seconds == 30 && cfg.hook_attempts == 5);
	CHECK(cfg.max_body_bytes == 1048576 && cfg.tolerance_seconds == 300);
	CHECK(!cfg.auto_register && cfg.durability_full && cfg.n_allow == 0);
	CHECK(cfg.log_level == LOG_LEVEL_INFO);
	CHECK(cfg.db && strstr(cfg.db, "/lib/cfimages-webhook/webhook.db"));
	CHECK(cfg.hooks_dir && strstr(cfg.hooks_dir, "/cfimages-webhook/hooks"));
	config_free(&cfg);
}

static void test_file_and_precedence(void)
{
	struct config cfg;
	char err[CONFIG_ERROR_BYTES];
	const char *path = write_file("a.conf", "# comment\n"
	                                        "\n"
	                                        "secret = s3cr#t with spaces  \n"
	                                        "db=/tmp/x.db\n"
	                                        "  hook_timeout\t=  7\n"
	                                        "db_mode = 0660\n"
	                                        "auto_register = yes\n"
	                                        "allow_from = 10.0.0.0/8, ::1\n"
	                                        "durability = normal\n"
	                                        "log_level = debug\n"
	                                        "max_body = 2048\r\n");
	char *env[] = {"CFIMAGES_WEBHOOK_DB=/tmp/from-env.db", "CFIMAGES_WEBHOOK_TOLERANCE=60",
	               "OTHER=1", NULL};
	CHECK_MSG(config_load(&cfg, path, env, NULL, err, sizeof err) == 0, "%s", err);
	CHECK_STR(cfg.secret, "s3cr#t with spaces");
	CHECK_STR(cfg.db, "/tmp/from-env.db"); /* environment over file */
	CHECK(cfg.hook_timeout_seconds == 7);
	CHECK(cfg.db_mode == 0660);
	CHECK(cfg.auto_register);
	CHECK(cfg.n_allow == 2);
	CHECK(!cfg.durability_full);
	CHECK(cfg.log_level == LOG_LEVEL_DEBUG);
	CHECK(cfg.max_body_bytes == 2048);
	CHECK(cfg.tolerance_seconds == 60);
	CHECK_STR(cfg.path, path);
	config_free(&cfg);
	log_set_level(LOG_LEVEL_INFO);

	/* CFIMAGES_WEBHOOK_CONFIG names the file when --config is absent. */
	char var[600];
	snprintf(var, sizeof var, "CFIMAGES_WEBHOOK_CONFIG=%s", path);
	char *env2[] = {var, NULL};
	CHECK(config_load(&cfg, NULL, env2, NULL, err, sizeof err) == 0);
	CHECK_STR(cfg.db, "/tmp/x.db");
	config_free(&cfg);

	/* The file beside the executable is found. */
	write_file(CONFIG_FILE_NAME, "hooks_dir = /srv/hooks\n");
	char *env3[] = {NULL};
	CHECK(config_load(&cfg, NULL, env3, dir, err, sizeof err) == 0);
	CHECK_STR(cfg.hooks_dir, "/srv/hooks");
	config_free(&cfg);
}

/* Loads a one-line file and expects an error message containing want. */
static void expect_error(const char *text, const char *want)
{
	struct config cfg;
	char err[CONFIG_ERROR_BYTES];
	char *env[] = {NULL};
	const char *path = write_file("bad.conf", text);
	CHECK_MSG(config_load(&cfg, path, env, NULL, err, sizeof err) < 0, "accepted: %s", text);
	CHECK_MSG(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
	CHECK_MSG(strstr(err, path) != NULL, "error \"%s\" lacks the file name", err);
	config_free(&cfg);
}

static void test_errors(void)
{
	expect_error("# ok\nbogus = 1\n", ":2: bogus: unknown key");
	expect_error("secret =\n", ":1: secret: empty value");
	expect_error("\n\nhook_timeout = 0\n", ":3: hook_timeout:");
	expect_error("hook_timeout = 10s\n", ":1: hook_timeout:");
	expect_error("hook_attempts = 1000\n", ":1: hook_attempts:");
	expect_error("max_body = -1\n", ":1: max_body:");
	expect_error("tolerance = abc\n", ":1: tolerance:");
	expect_error("auto_register = maybe\n", ":1: auto_register:");
	expect_error("durability = fast\n", ":1: durability:");
	expect_error("log_level = loud\n", ":1: log_level:");
	expect_error("db_mode = 0400\n", ":1: db_mode:");
	expect_error("db_mode = 0755\n", ":1: db_mode:");
	expect_error("db_mode = 0999\n", ":1: db_mode:");
	expect_error("allow_from = 10.0.0.0/33\n", ":1: allow_from:");
	expect_error("allow_from = 10.0.0.1/8\n", ":1: allow_from:");
	expect_error("allow_from = 10.0.0.0/8,\n", ":1: allow_from:");
	expect_error("allow_from = example.com\n", ":1: allow_from:");
	expect_error("just words\n", ":1: expected `key = value`");

	/* A missing explicit file is an error. */
	struct config cfg;
	char err[CONFIG_ERROR_BYTES];
	char *env[] = {NULL};
	CHECK(config_load(&cfg, "/nonexistent/x.conf", env, NULL, err, sizeof err) < 0);
	CHECK(strstr(err, "/nonexistent/x.conf") != NULL);
	config_free(&cfg);

	/* A bad environment value names the variable; unknown ones are only warned about. */
	char *env2[] = {"CFIMAGES_WEBHOOK_HOOK_TIMEOUT=forever", NULL};
	CHECK(config_load(&cfg, NULL, env2, NULL, err, sizeof err) < 0);
	CHECK(strstr(err, "CFIMAGES_WEBHOOK_HOOK_TIMEOUT") != NULL);
	config_free(&cfg);
	char *env3[] = {"CFIMAGES_WEBHOOK_NOPE=1", NULL};
	CHECK(config_load(&cfg, NULL, env3, NULL, err, sizeof err) == 0);
	config_free(&cfg);
}

/*
 * config_set() answers with a code; callers decide on it, never on the
 * text, and every code has a phrase of its own for the message.
 */
static void test_error_codes(void)
{
	struct config cfg;
	memset(&cfg, 0, sizeof cfg);
	CHECK(config_set(&cfg, "bogus", "1") == CONFIG_UNKNOWN_KEY);
	CHECK(config_set(&cfg, "db", "") == CONFIG_EMPTY_VALUE);
	CHECK(config_set(&cfg, "hook_timeout", "0") == CONFIG_BAD_HOOK_TIMEOUT);
	CHECK(config_set(&cfg, "hook_attempts", "101") == CONFIG_BAD_HOOK_ATTEMPTS);
	CHECK(config_set(&cfg, "max_body", "0") == CONFIG_BAD_MAX_BODY);
	CHECK(config_set(&cfg, "tolerance", "-1") == CONFIG_BAD_TOLERANCE);
	CHECK(config_set(&cfg, "read_timeout", "0") == CONFIG_BAD_READ_TIMEOUT);
	CHECK(config_set(&cfg, "read_timeout", "3601") == CONFIG_BAD_READ_TIMEOUT);
	CHECK(config_set(&cfg, "read_timeout", "5") == CONFIG_OK && cfg.read_timeout_seconds == 5);
	CHECK(config_set(&cfg, "auto_register", "maybe") == CONFIG_BAD_BOOL);
	CHECK(config_set(&cfg, "db_mode", "rw") == CONFIG_BAD_MODE);
	CHECK(config_set(&cfg, "db_mode", "1600") == CONFIG_MODE_TOO_WIDE);
	CHECK(config_set(&cfg, "db_mode", "0400") == CONFIG_MODE_OWNER);
	CHECK(config_set(&cfg, "db_mode", "0700") == CONFIG_MODE_EXECUTABLE);
	CHECK(config_set(&cfg, "allow_from", "10.0.0.0/8,") == CONFIG_BAD_CIDR_LIST);
	CHECK(config_set(&cfg, "allow_from", "example.com") == CONFIG_BAD_CIDR);
	CHECK(config_set(&cfg, "durability", "fast") == CONFIG_BAD_DURABILITY);
	CHECK(config_set(&cfg, "log_level", "loud") == CONFIG_BAD_LOG_LEVEL);
	CHECK(config_set(&cfg, "log_level", "info") == CONFIG_OK);
	char many[65 * 16] = "";
	for (int i = 0; i <= CONFIG_MAX_CIDRS; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%s10.0.%d.0/24",
		         i ? "," : "", i);
	CHECK(config_set(&cfg, "allow_from", many) == CONFIG_TOO_MANY_CIDRS);
	for (int a = CONFIG_OK; a <= CONFIG_BAD_LOG_LEVEL; a++) {
		const char *ta = config_error_text((enum config_error)a);
		CHECK_MSG(ta != NULL && ta[0] != '\0', "code %d has no text", a);
		for (int b = CONFIG_OK; b < a; b++)
			CHECK_MSG(strcmp(ta, config_error_text((enum config_error)b)) != 0,
			          "codes %d and %d share the text \"%s\"", a, b, ta);
	}
}

/* outbound_allow (cfimages-webhook.conf(5)): URL prefixes, matched safely. */
static void test_outbound_allow(void)
{
	struct config cfg;
	memset(&cfg, 0, sizeof cfg);
	CHECK(config_outbound_allows(&cfg, "https://anything.example/")); /* unset: any */
	CHECK(config_set(&cfg, "outbound_allow",
	                 " https://app.example.com/hooks/ ,http://127.0.0.1:8000") == CONFIG_OK);
	CHECK_STR(cfg.outbound_allow, "https://app.example.com/hooks/,http://127.0.0.1:8000");
	CHECK(config_outbound_allows(&cfg, "https://app.example.com/hooks/images"));
	CHECK(config_outbound_allows(&cfg, "HTTPS://APP.example.com/hooks/x")); /* host: any case */
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/Hooks/x")); /* path: exact */
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/other"));
	CHECK(!config_outbound_allows(&cfg, "http://app.example.com/hooks/x")); /* scheme */
	CHECK(config_outbound_allows(&cfg, "http://127.0.0.1:8000"));
	CHECK(config_outbound_allows(&cfg, "http://127.0.0.1:8000/x?y#z"));
	CHECK(config_outbound_allows(&cfg, "http://127.0.0.1:8000?q"));
	/* a prefix ending with the authority ends the URL's authority too */
	CHECK(!config_outbound_allows(&cfg, "http://127.0.0.1:80001/"));
	CHECK(!config_outbound_allows(&cfg, "http://127.0.0.1:8000@evil.example/"));
	CHECK(!config_outbound_allows(&cfg, "http://127.0.0.1:8000.evil.example/"));
	/* dot segments (plain or percent-encoded) and backslashes never match */
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/hooks/../admin"));
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/hooks/%2e%2E/admin"));
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/hooks/.%2e"));
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/hooks/./x"));
	CHECK(!config_outbound_allows(&cfg, "https://app.example.com/hooks/a\\..\\b"));
	CHECK(config_outbound_allows(&cfg, "https://app.example.com/hooks/a..b/.x?p=/../"));
	CHECK(!config_outbound_allows(&cfg, "ftp://app.example.com/hooks/"));
	CHECK(!config_outbound_allows(&cfg, ""));
	/* bad lists are refused and keep the old one */
	CHECK(config_set(&cfg, "outbound_allow", "app.example.com/") == CONFIG_BAD_OUTBOUND_ALLOW);
	CHECK(config_set(&cfg, "outbound_allow", "https://") == CONFIG_BAD_OUTBOUND_ALLOW);
	CHECK(config_set(&cfg, "outbound_allow", "https:///x") == CONFIG_BAD_OUTBOUND_ALLOW);
	CHECK(config_set(&cfg, "outbound_allow", "https://a/,") == CONFIG_BAD_OUTBOUND_ALLOW);
	CHECK(config_set(&cfg, "outbound_allow", "https://a b/") == CONFIG_BAD_OUTBOUND_ALLOW);
	CHECK(config_set(&cfg, "outbound_allow", "ftp://a/") == CONFIG_BAD_OUTBOUND_ALLOW);
	CHECK_STR(cfg.outbound_allow, "https://app.example.com/hooks/,http://127.0.0.1:8000");
	config_free(&cfg);
}

static void test_allow_from(void)
{
	struct config cfg;
	memset(&cfg, 0, sizeof cfg);
	CHECK(config_allows(&cfg, "203.0.113.9")); /* unset: anyone */
	CHECK(config_set(&cfg, "allow_from", "10.0.0.0/8, 192.168.1.7, 2001:db8::/32, ::1") ==
	      CONFIG_OK);
	CHECK(cfg.n_allow == 4);
	CHECK(config_allows(&cfg, "10.1.2.3"));
	CHECK(config_allows(&cfg, "192.168.1.7"));
	CHECK(!config_allows(&cfg, "192.168.1.8"));
	CHECK(!config_allows(&cfg, "11.0.0.1"));
	CHECK(config_allows(&cfg, "2001:db8:1::5"));
	CHECK(!config_allows(&cfg, "2001:db9::1"));
	CHECK(config_allows(&cfg, "::1"));
	CHECK(config_allows(&cfg, "::ffff:10.9.8.7")); /* IPv4-mapped */
	CHECK(!config_allows(&cfg, "::ffff:11.9.8.7"));
	CHECK(!config_allows(&cfg, "not an address"));
	CHECK(!config_allows(&cfg, NULL));
	CHECK(!config_allows(&cfg, ""));
	CHECK(config_set(&cfg, "allow_from", "0.0.0.0/0") == CONFIG_OK);
	CHECK(config_allows(&cfg, "8.8.8.8") && !config_allows(&cfg, "::2"));
	struct cidr c;
	CHECK(cidr_parse("172.16.0.0/12", &c) && c.prefix == 12);
	CHECK(!cidr_parse("172.16.0.0/", &c));
	CHECK(!cidr_parse("/12", &c));
	CHECK(!cidr_parse("::1/129", &c));
	CHECK(!cidr_parse("10.0.0.0/8x", &c));
}

static void test_secret_rotation(void)
{
	struct config cfg;
	struct secret_set set = {0};
	char err[CONFIG_ERROR_BYTES];
	char *env[] = {NULL};
	char conf[1024];
	const char *secrets = write_file("secrets", "old-secret\n\nnew-secret\r\n");

	snprintf(conf, sizeof conf, "secret_file = %s\nsecret = inline\n", secrets);
	CHECK(config_load(&cfg, write_file("s.conf", conf), env, NULL, err, sizeof err) == 0);
	CHECK(secret_set_refresh(&set, &cfg) == 0);
	CHECK(set.n == 3);
	CHECK(set.n == 3 && set.items[0].len == 6 && memcmp(set.items[0].bytes, "inline", 6) == 0);
	CHECK(set.n == 3 && set.items[1].len == 10 &&
	      memcmp(set.items[1].bytes, "old-secret", 10) == 0);
	CHECK(set.n == 3 && set.items[2].len == 10 &&
	      memcmp(set.items[2].bytes, "new-secret", 10) == 0);
	/* Rewritten (a different size): picked up without a restart. */
	write_file("secrets", "rotated-secret-2\n");
	CHECK(secret_set_refresh(&set, &cfg) == 0);
	CHECK(set.n == 2 && set.items[1].len == 16 &&
	      memcmp(set.items[1].bytes, "rotated-secret-2", 16) == 0);
	/* Emptied, blank, or removed: fail closed, though `secret` is set. */
	write_file("secrets", "\n");
	CHECK(secret_set_refresh(&set, &cfg) < 0);
	write_file("secrets", "   \n\t\r\n \t \n");
	CHECK(secret_set_refresh(&set, &cfg) < 0);
	unlink(secrets);
	CHECK(secret_set_refresh(&set, &cfg) < 0);
	secret_set_free(&set);
	config_free(&cfg);
}

/* True when item i of set is exactly text. */
static bool item_is(const struct secret_set *set, size_t i, const char *text)
{
	return i < set->n && set->items[i].len == strlen(text) &&
	       memcmp(set->items[i].bytes, text, strlen(text)) == 0;
}

/*
 * Blank secrets are refused: `secret` of blanks (the file's values are
 * trimmed, so only the environment can pass one) is a configuration error;
 * secret_file lines are trimmed of spaces, tabs and CR and skipped when
 * nothing is left.
 */
static void test_blank_secrets(void)
{
	struct config cfg;
	struct secret_set set = {0};
	char err[CONFIG_ERROR_BYTES];
	char conf[1024];

	memset(&cfg, 0, sizeof cfg);
	CHECK(config_set(&cfg, "secret", " ") == CONFIG_BLANK_SECRET);
	CHECK(config_set(&cfg, "secret", " \t\r\n") == CONFIG_BLANK_SECRET);
	CHECK(cfg.secret == NULL);

	char *env[] = {"CFIMAGES_WEBHOOK_SECRET= ", NULL};
	CHECK(config_load(&cfg, NULL, env, NULL, err, sizeof err) < 0);
	CHECK_MSG(strstr(err, "CFIMAGES_WEBHOOK_SECRET") && strstr(err, "blank"), "%s", err);
	config_free(&cfg);
	char *env2[] = {"CFIMAGES_WEBHOOK_SECRET=\t", NULL};
	CHECK(config_load(&cfg, NULL, env2, NULL, err, sizeof err) < 0);
	config_free(&cfg);
	char *env3[] = {"CFIMAGES_WEBHOOK_SECRET=", NULL};
	CHECK(config_load(&cfg, NULL, env3, NULL, err, sizeof err) < 0);
	config_free(&cfg);
	expect_error("secret =  \t \n", ":1: secret: empty value");

	const char *secrets = write_file("blank-secrets", "  old secret \t\r\n"
	                                                  " \t \r\n"
	                                                  "\tnew-secret\n"
	                                                  "   \n"
	                                                  "\r\n"
	                                                  "last");
	char *env4[] = {NULL};
	snprintf(conf, sizeof conf, "secret_file = %s\n", secrets);
	CHECK(config_load(&cfg, write_file("b.conf", conf), env4, NULL, err, sizeof err) == 0);
	CHECK(secret_set_refresh(&set, &cfg) == 0);
	CHECK_MSG(set.n == 3, "%zu secrets", set.n);
	CHECK(item_is(&set, 0, "old secret") && set.lines[0] == 1);
	CHECK(item_is(&set, 1, "new-secret") && set.lines[1] == 3);
	CHECK(item_is(&set, 2, "last") && set.lines[2] == 6);
	secret_set_free(&set);
	config_free(&cfg);
}

/*
 * An in-place rewrite of the same size whose modification time is put
 * back (cp -p, rsync -t, touch -r) is still noticed: the change time
 * moved.  A file read just after a change is re-read on the next refresh
 * whatever its times say, since they move only with the filesystem's tick.
 */
static void test_secret_same_size_rewrite(void)
{
	struct config cfg;
	struct secret_set set = {0};
	char err[CONFIG_ERROR_BYTES];
	char conf[1024];
	char *env[] = {NULL};
	struct stat before, after;
	char secrets[512];

	snprintf(secrets, sizeof secrets, "%s", write_file("same-size", "first-secret-0001\n"));

	snprintf(conf, sizeof conf, "secret_file = %s\n", secrets);
	CHECK(config_load(&cfg, write_file("ss.conf", conf), env, NULL, err, sizeof err) == 0);
	CHECK(secret_set_refresh(&set, &cfg) == 0);
	CHECK(item_is(&set, 0, "first-secret-0001"));
	CHECK(set.settling); /* just written */
	CHECK(stat(secrets, &before) == 0);

	/* As if the file were old: only its identity and times decide now. */
	set.settling = false;
	CHECK(secret_set_refresh(&set, &cfg) == 0);
	CHECK(item_is(&set, 0, "first-secret-0001"));

	/* Past the coarsest kernel clock tick, rewritten in place. */
	usleep(50 * 1000);
	FILE *f = fopen(secrets, "r+");
	CHECK(f != NULL);
	if (f) {
		fputs("second-secret-002\n", f);
		fclose(f);
	}
	struct timespec times[2] = {before.st_atim, before.st_mtim};
	CHECK(utimensat(AT_FDCWD, secrets, times, 0) == 0);
	CHECK(stat(secrets, &after) == 0);
	CHECK(after.st_ino == before.st_ino && after.st_size == before.st_size);
	CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	      after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
	CHECK(secret_set_refresh(&set, &cfg) == 0);
	CHECK(set.n == 1 && item_is(&set, 0, "second-secret-002"));
	secret_set_free(&set);
	config_free(&cfg);
}

/*
 * ca_file (cfimages-webhook.conf(5)): a relative path is made absolute like
 * db's, and tls_ca_bundle() returns it as set, readable or not; unset, it
 * returns one of the usual places, readable, or NULL.
 */
static void test_ca_file(void)
{
	struct config cfg;
	char err[CONFIG_ERROR_BYTES], cwd[4096], want[4200];
	char *env[] = {NULL};
	const char *found;

	CHECK(config_load(&cfg, write_file("ca.conf", "ca_file = certs/bundle.pem\n"), env, NULL,
	                  err, sizeof err) == 0);
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	snprintf(want, sizeof want, "%s/certs/bundle.pem", cwd);
	CHECK_STR(cfg.ca_file, want);
	CHECK_STR(tls_ca_bundle(&cfg), want);
	config_free(&cfg);
	CHECK(cfg.ca_file == NULL);

	CHECK(config_load(&cfg, write_file("noca.conf", "log_level = info\n"), env, NULL, err,
	                  sizeof err) == 0);
	found = tls_ca_bundle(&cfg);
	if (found != NULL) {
		bool listed = false;
		for (size_t i = 0; tls_ca_bundle_paths[i] != NULL; i++)
			listed = listed || strcmp(found, tls_ca_bundle_paths[i]) == 0;
		CHECK(listed);
		CHECK(access(found, R_OK) == 0);
	}
	config_free(&cfg);
	CHECK(config_set(&cfg, "ca_file", "") == CONFIG_EMPTY_VALUE);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 99;
	test_defaults();
	test_file_and_precedence();
	test_errors();
	test_error_codes();
	test_allow_from();
	test_outbound_allow();
	test_secret_rotation();
	test_blank_secrets();
	test_secret_same_size_rewrite();
	test_ca_file();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 99;
	return test_done("test_config");
}
