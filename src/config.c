/*
 * Settings: defaults, config file, environment (see config.h), the secret
 * set and the allow_from check.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

#define DEFAULT_DB LOCALSTATEDIR "/lib/cfimages-webhook/webhook.db"
#define DEFAULT_HOOKS_DIR SYSCONFDIR "/cfimages-webhook/hooks"
#define DEFAULT_DB_MODE 0600

static void set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->db_mode = DEFAULT_DB_MODE;
	cfg->hook_timeout_seconds = HOOK_TIMEOUT_SECONDS_DEFAULT;
	cfg->hook_attempts = HOOK_ATTEMPTS_DEFAULT;
	cfg->max_body_bytes = MAX_BODY_BYTES_DEFAULT;
	cfg->tolerance_seconds = TOLERANCE_SECONDS_DEFAULT;
	cfg->read_timeout_seconds = READ_TIMEOUT_SECONDS_DEFAULT;
	cfg->durability_full = true;
	cfg->log_level = LOG_LEVEL_INFO;
}

/* Replaces an owned string; returns false when out of memory. */
static bool replace_string(char **slot, const char *value)
{
	char *copy = strdup(value);
	if (copy == NULL)
		return false;
	if (*slot) {
		OPENSSL_cleanse(*slot, strlen(*slot));
		free(*slot);
	}
	*slot = copy;
	return true;
}

const char *config_error_text(enum config_error e)
{
	switch (e) {
	case CONFIG_OK:
		return "ok";
	case CONFIG_UNKNOWN_KEY:
		return "unknown key";
	case CONFIG_EMPTY_VALUE:
		return "empty value";
	case CONFIG_BLANK_SECRET:
		return "a secret of blanks only (use at least 16 random bytes)";
	case CONFIG_NO_MEMORY:
		return "out of memory";
	case CONFIG_BAD_HOOK_TIMEOUT:
		return "expected seconds between 1 and 86400";
	case CONFIG_BAD_HOOK_ATTEMPTS:
		return "expected a number of attempts between 1 and 100";
	case CONFIG_BAD_MAX_BODY:
		return "expected bytes between 1 and 67108864";
	case CONFIG_BAD_TOLERANCE:
		return "expected seconds between 0 and 31536000";
	case CONFIG_BAD_READ_TIMEOUT:
		return "expected seconds between 1 and 3600";
	case CONFIG_BAD_BOOL:
		return "expected yes or no";
	case CONFIG_BAD_MODE:
		return "expected an octal mode such as 0600 or 0660";
	case CONFIG_MODE_TOO_WIDE:
		return "mode bits above 0777 are not allowed";
	case CONFIG_MODE_OWNER:
		return "the owner needs read and write access (at least 0600)";
	case CONFIG_MODE_EXECUTABLE:
		return "a database is not executable (use 0600, 0640 or 0660)";
	case CONFIG_BAD_CIDR_LIST:
		return "expected a comma-separated list of CIDRs such as 10.0.0.0/8, ::1";
	case CONFIG_TOO_MANY_CIDRS:
		return "too many CIDRs (at most 64)";
	case CONFIG_BAD_CIDR:
		return "not a valid CIDR list (e.g. 10.0.0.0/8, 2001:db8::/32, ::1)";
	case CONFIG_BAD_DURABILITY:
		return "expected full or normal";
	case CONFIG_BAD_LOG_LEVEL:
		return "expected error, warn, info or debug";
	case CONFIG_BAD_OUTBOUND_ALLOW:
		return "expected comma-separated http:// or https:// URL prefixes, each with a host";
	}
	return "invalid value";
}

static enum config_error set_string(char **slot, const char *value)
{
	return replace_string(slot, value) ? CONFIG_OK : CONFIG_NO_MEMORY;
}

static enum config_error set_number(int64_t *slot, const char *value, int64_t min, int64_t max,
                                    enum config_error why)
{
	int64_t v;
	if (!parse_int64(value, min, max, &v))
		return why;
	*slot = v;
	return CONFIG_OK;
}

static enum config_error set_bool(bool *slot, const char *value)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(value, yes[i]) == 0) {
			*slot = true;
			return CONFIG_OK;
		}
		if (strcmp(value, no[i]) == 0) {
			*slot = false;
			return CONFIG_OK;
		}
	}
	return CONFIG_BAD_BOOL;
}

/* Parses an octal file mode; the owner must keep read and write access. */
static enum config_error set_mode(unsigned *slot, const char *value)
{
	unsigned v = 0;
	size_t n = strlen(value);
	if (n < 3 || n > 4)
		return CONFIG_BAD_MODE;
	for (size_t i = 0; i < n; i++) {
		if (value[i] < '0' || value[i] > '7')
			return CONFIG_BAD_MODE;
		v = v * 8 + (unsigned)(value[i] - '0');
	}
	if (v > 0777)
		return CONFIG_MODE_TOO_WIDE;
	if ((v & 0600) != 0600)
		return CONFIG_MODE_OWNER;
	if (v & 0111)
		return CONFIG_MODE_EXECUTABLE;
	*slot = v;
	return CONFIG_OK;
}

/* Parses a comma-separated CIDR list, replacing the current one. */
static enum config_error set_allow_from(struct config *cfg, const char *value)
{
	char item[128];
	const char *p = value;
	size_t n = 0;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 || len >= sizeof item)
			return CONFIG_BAD_CIDR_LIST;
		if (n == CONFIG_MAX_CIDRS)
			return CONFIG_TOO_MANY_CIDRS;
		memcpy(item, p, len);
		item[len] = '\0';
		if (!cidr_parse(item, &cfg->allow_from[n]))
			return CONFIG_BAD_CIDR;
		n++;
		if (end == NULL)
			break;
		p = end + 1;
		if (*p == '\0')
			return CONFIG_BAD_CIDR_LIST;
	}
	cfg->n_allow = n;
	return CONFIG_OK;
}

/* Length of the scheme and "://" of an http or https URL, 0 for anything else. */
static size_t http_scheme_len(const char *s)
{
	if (strncasecmp(s, "http://", 7) == 0)
		return 7;
	if (strncasecmp(s, "https://", 8) == 0)
		return 8;
	return 0;
}

/*
 * Checks a comma-separated list of URL prefixes and stores it as given,
 * blanks around items removed: each item an http:// or https:// prefix with
 * a host, visible ASCII only.
 */
static enum config_error set_outbound_allow(struct config *cfg, const char *value)
{
	char *list = malloc(strlen(value) + 1), *w = list;
	const char *p = value;

	if (list == NULL)
		return CONFIG_NO_MEMORY;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p), scheme;
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		scheme = len ? http_scheme_len(p) : 0;
		if (scheme == 0 || len == scheme || p[scheme] == '/')
			goto bad;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
				goto bad;
		if (w != list)
			*w++ = ',';
		memcpy(w, p, len);
		w += len;
		if (end == NULL)
			break;
		p = end + 1;
	}
	*w = '\0';
	free(cfg->outbound_allow);
	cfg->outbound_allow = list;
	return CONFIG_OK;
bad:
	free(list);
	return CONFIG_BAD_OUTBOUND_ALLOW;
}

/*
 * True when a path segment s[0..n) is "." or ".." once percent-decoded
 * (any mix of '.' and "%2e"), which a client or server would remove.
 */
static bool dot_segment(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return false;
	while (i < n) {
		if (s[i] == '.')
			i++;
		else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e')
			i += 3;
		else
			return false;
	}
	return true;
}

/* Whether one prefix p[0..n) allows url (see config_outbound_allows). */
static bool prefix_allows(const char *p, size_t n, const char *url)
{
	size_t scheme = http_scheme_len(p), auth_end = scheme;

	while (auth_end < n && p[auth_end] != '/' && p[auth_end] != '?' && p[auth_end] != '#')
		auth_end++;
	if (strlen(url) < n || strncasecmp(url, p, auth_end) != 0 ||
	    memcmp(url + auth_end, p + auth_end, n - auth_end) != 0)
		return false;
	if (auth_end == n) /* the prefix ends with the authority: so must the URL's */
		return url[n] == '\0' || url[n] == '/' || url[n] == '?' || url[n] == '#';
	return true;
}

bool config_outbound_allows(const struct config *cfg, const char *url)
{
	const char *p, *path, *end;
	size_t scheme;

	if (cfg->outbound_allow == NULL)
		return true;
	scheme = http_scheme_len(url);
	if (scheme == 0 || strchr(url, '\\') != NULL)
		return false;
	path = url + scheme + strcspn(url + scheme, "/?#");
	end = path + strcspn(path, "?#");
	while (path < end && *path == '/') {
		const char *seg = path + 1;
		size_t len = strcspn(seg, "/?#");
		if (seg + len > end)
			len = (size_t)(end - seg);
		if (dot_segment(seg, len))
			return false;
		path = seg + len;
	}
	for (p = cfg->outbound_allow;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (prefix_allows(p, n, url))
			return true;
		if (comma == NULL)
			return false;
		p = comma + 1;
	}
}

/*
 * True when text holds nothing but spaces, tabs and line ends: such a
 * secret is the same easy guess for everyone (and a web server strips it
 * from a cf-webhook-auth header anyway).
 */
static bool is_blank(const char *text)
{
	return text[strspn(text, " \t\r\n")] == '\0';
}

enum config_error config_set(struct config *cfg, const char *key, const char *value)
{
	if (value[0] == '\0')
		return CONFIG_EMPTY_VALUE;
	if (strcmp(key, "secret") == 0)
		return is_blank(value) ? CONFIG_BLANK_SECRET : set_string(&cfg->secret, value);
	if (strcmp(key, "secret_file") == 0)
		return set_string(&cfg->secret_file, value);
	if (strcmp(key, "db") == 0)
		return set_string(&cfg->db, value);
	if (strcmp(key, "hooks_dir") == 0)
		return set_string(&cfg->hooks_dir, value);
	if (strcmp(key, "ca_file") == 0)
		return set_string(&cfg->ca_file, value);
	if (strcmp(key, "db_mode") == 0) {
		cfg->db_mode_set = true;
		return set_mode(&cfg->db_mode, value);
	}
	if (strcmp(key, "hook_timeout") == 0)
		return set_number(&cfg->hook_timeout_seconds, value, 1, HOOK_TIMEOUT_SECONDS_MAX,
		                  CONFIG_BAD_HOOK_TIMEOUT);
	if (strcmp(key, "hook_attempts") == 0)
		return set_number(&cfg->hook_attempts, value, 1, HOOK_ATTEMPTS_MAX,
		                  CONFIG_BAD_HOOK_ATTEMPTS);
	if (strcmp(key, "max_body") == 0)
		return set_number(&cfg->max_body_bytes, value, 1, MAX_BODY_BYTES_MAX,
		                  CONFIG_BAD_MAX_BODY);
	if (strcmp(key, "tolerance") == 0)
		return set_number(&cfg->tolerance_seconds, value, 0, TOLERANCE_SECONDS_MAX,
		                  CONFIG_BAD_TOLERANCE);
	if (strcmp(key, "read_timeout") == 0)
		return set_number(&cfg->read_timeout_seconds, value, 1, READ_TIMEOUT_SECONDS_MAX,
		                  CONFIG_BAD_READ_TIMEOUT);
	if (strcmp(key, "auto_register") == 0)
		return set_bool(&cfg->auto_register, value);
	if (strcmp(key, "allow_from") == 0)
		return set_allow_from(cfg, value);
	if (strcmp(key, "durability") == 0) {
		if (strcmp(value, "full") == 0)
			cfg->durability_full = true;
		else if (strcmp(value, "normal") == 0)
			cfg->durability_full = false;
		else
			return CONFIG_BAD_DURABILITY;
		return CONFIG_OK;
	}
	if (strcmp(key, "log_level") == 0)
		return log_level_parse(value, &cfg->log_level) ? CONFIG_OK : CONFIG_BAD_LOG_LEVEL;
	if (strcmp(key, "outbound_allow") == 0)
		return set_outbound_allow(cfg, value);
	return CONFIG_UNKNOWN_KEY;
}

static char *trim(char *s)
{
	size_t n;
	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/*
 * Reads `key = value` lines; '#' starts a comment only at the start of a
 * line (a secret may contain '#').  Stops at the first error.
 */
static int read_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char line[CONFIG_LINE_BYTES];
	FILE *f = fopen(path, "re");
	unsigned lineno = 0;
	int rc = -1;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		char *eq, *key, *value;
		enum config_error why;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
			         CONFIG_LINE_BYTES - 2);
			goto out;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "%s:%u: expected `key = value`", path, lineno);
			goto out;
		}
		*eq = '\0';
		value = trim(eq + 1);
		key = trim(key);
		why = config_set(cfg, key, value);
		if (why != CONFIG_OK) {
			snprintf(err, errlen, "%s:%u: %s: %s", path, lineno, key,
			         config_error_text(why));
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(line, sizeof line);
	fclose(f);
	return rc;
}

/*
 * A relative path is taken from the working directory at start-up, and
 * stored absolute: hooks run in hooks_dir, and the hook runner and the
 * hooks (CFIMAGES_DB) must find the same files.
 */
static bool make_absolute(char **path)
{
	char cwd[4096], *abs;
	if ((*path)[0] == '/' || strstr(*path, "://") != NULL)
		return true; /* absolute, or a URI (a PostgreSQL database) */
	if (getcwd(cwd, sizeof cwd) == NULL || asprintf(&abs, "%s/%s", cwd, *path) < 0)
		return false;
	free(*path);
	*path = abs;
	return true;
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Applies every CFIMAGES_WEBHOOK_<KEY> variable; warns about unknown ones. */
static int read_environment(struct config *cfg, char *const *envp, char *err, size_t errlen)
{
	size_t plen = strlen(CONFIG_ENV_PREFIX);
	for (size_t i = 0; envp && envp[i]; i++) {
		char key[64];
		const char *name = envp[i], *eq = strchr(name, '=');
		enum config_error why;
		size_t klen;

		if (eq == NULL || strncmp(name, CONFIG_ENV_PREFIX, plen) != 0)
			continue;
		klen = (size_t)(eq - name) - plen;
		if (klen == 0 || klen >= sizeof key) {
			log_warn("ignoring unknown environment variable %.*s", (int)(eq - name),
			         name);
			continue;
		}
		for (size_t k = 0; k < klen; k++) {
			char c = name[plen + k];
			key[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		key[klen] = '\0';
		if (strcmp(key, "config") == 0)
			continue;
		why = config_set(cfg, key, eq + 1);
		switch (why) {
		case CONFIG_OK:
			break;
		case CONFIG_UNKNOWN_KEY:
			log_warn("ignoring unknown environment variable %.*s", (int)(eq - name),
			         name);
			break;
		default:
			snprintf(err, errlen, "environment %.*s: %s: %s", (int)(eq - name), name,
			         key, config_error_text(why));
			return -1;
		}
	}
	return 0;
}

int config_load(struct config *cfg, const char *explicit_path, char *const *envp,
                const char *exe_dir, char *err, size_t errlen)
{
	char candidate[4096];
	const char *path = explicit_path;

	set_defaults(cfg);
	err[0] = '\0';
	if (path == NULL)
		path = env_get(envp, CONFIG_ENV_PREFIX "CONFIG");
	if (path == NULL && exe_dir) {
		snprintf(candidate, sizeof candidate, "%s/%s", exe_dir, CONFIG_FILE_NAME);
		if (file_exists(candidate))
			path = candidate;
	}
	if (path == NULL && file_exists(SYSCONFDIR "/" CONFIG_FILE_NAME))
		path = SYSCONFDIR "/" CONFIG_FILE_NAME;
	if (path) {
		if (!replace_string(&cfg->path, path)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (read_file(cfg, path, err, errlen) < 0)
			return -1;
	}
	if (read_environment(cfg, envp, err, errlen) < 0)
		return -1;
	if ((cfg->db == NULL && !replace_string(&cfg->db, DEFAULT_DB)) ||
	    (cfg->hooks_dir == NULL && !replace_string(&cfg->hooks_dir, DEFAULT_HOOKS_DIR)) ||
	    !make_absolute(&cfg->db) || !make_absolute(&cfg->hooks_dir) ||
	    (cfg->ca_file != NULL && !make_absolute(&cfg->ca_file))) {
		snprintf(err, errlen, "out of memory, or no working directory");
		return -1;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	if (cfg->secret)
		OPENSSL_cleanse(cfg->secret, strlen(cfg->secret));
	free(cfg->secret);
	free(cfg->path);
	free(cfg->secret_file);
	free(cfg->db);
	free(cfg->hooks_dir);
	free(cfg->outbound_allow);
	free(cfg->ca_file);
	set_defaults(cfg);
}

bool cidr_parse(const char *text, struct cidr *out)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	int64_t prefix;
	int max;

	if (alen == 0 || alen >= sizeof addr)
		return false;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return false;
	}
	if (slash == NULL)
		prefix = max;
	else if (!parse_int64(slash + 1, 0, max, &prefix))
		return false;
	out->prefix = (int)prefix;
	/* Reject host bits set below the prefix: "10.0.0.1/8" is a typo. */
	for (int bit = out->prefix; bit < max; bit++)
		if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

static bool prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, net, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

bool config_allows(const struct config *cfg, const char *addr)
{
	static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char bytes[16], v4[4];
	bool is4 = false, is6 = false;

	if (cfg->n_allow == 0)
		return true;
	if (addr == NULL)
		return false;
	if (inet_pton(AF_INET, addr, v4) == 1) {
		is4 = true;
	} else if (inet_pton(AF_INET6, addr, bytes) == 1) {
		is6 = true;
		if (memcmp(bytes, v4_mapped, sizeof v4_mapped) == 0) {
			memcpy(v4, bytes + 12, 4);
			is4 = true;
		}
	}
	for (size_t i = 0; i < cfg->n_allow; i++) {
		const struct cidr *c = &cfg->allow_from[i];
		if (c->family == AF_INET && is4 && prefix_match(v4, c->addr, c->prefix))
			return true;
		if (c->family == AF_INET6 && is6 && prefix_match(bytes, c->addr, c->prefix))
			return true;
	}
	return false;
}

static void secret_set_wipe_file(struct secret_set *set)
{
	if (set->file_data) {
		OPENSSL_cleanse(set->file_data, set->file_len);
		free(set->file_data);
	}
	set->file_data = NULL;
}

void secret_set_free(struct secret_set *set)
{
	secret_set_wipe_file(set);
	memset(set, 0, sizeof *set);
}

/* What a secret_file line is trimmed of at both ends. */
static bool is_secret_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * Reads the whole secret file into set->file_data and splits it into
 * lines, each trimmed; the items point into file_data.
 */
static int load_secret_file(struct secret_set *set, const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0, size;
	unsigned lineno = 0;
	char *data;

	/* Identity and size come from the file actually opened, so a rename
	 * between the caller's stat and this open cannot mix two files. */
	if (fd < 0 || fstat(fd, st) < 0) {
		log_error("secret_file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st->st_size > CONFIG_MAX_SECRETS * CONFIG_SECRET_BYTES) {
		log_error("secret_file %s: larger than %d bytes", path,
		          CONFIG_MAX_SECRETS * CONFIG_SECRET_BYTES);
		close(fd);
		return -1;
	}
	size = (size_t)st->st_size;
	data = malloc(size + 1);
	if (data == NULL) {
		close(fd);
		return -1;
	}
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	set->file_data = data;
	set->file_len = got;
	for (char *line = data; line < data + got && set->n < CONFIG_MAX_SECRETS;) {
		char *nl = memchr(line, '\n', (size_t)(data + got - line));
		size_t len = nl ? (size_t)(nl - line) : (size_t)(data + got - line);
		char *start = line;

		lineno++;
		while (len && is_secret_blank(*start)) {
			start++;
			len--;
		}
		while (len && is_secret_blank(start[len - 1]))
			len--;
		if (len > 0) {
			set->items[set->n].bytes = start;
			set->items[set->n].len = len;
			set->lines[set->n] = lineno;
			set->n++;
		}
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return 0;
}

/* Starts the set with the `secret` setting, if any. */
static void set_inline_secret(struct secret_set *set, const struct config *cfg)
{
	set->n = 0;
	if (cfg->secret) {
		set->items[0].bytes = cfg->secret;
		set->items[0].len = strlen(cfg->secret);
		set->lines[0] = 0;
		set->n = 1;
	}
}

static int64_t timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/*
 * True when st describes the file already held, unchanged.  Size and
 * modification time alone miss an in-place rewrite of the same size whose
 * mtime was put back (cp -p, rsync -t, touch -r); the change time cannot
 * be put back that way, so it is compared too, to the nanosecond.  Timestamps only
 * move with the filesystem's clock tick, so a file read soon after its
 * last change (settling) is never taken as unchanged: git's "racy clean"
 * rule.
 */
static bool same_file(const struct secret_set *set, const struct stat *st)
{
	return set->loaded && !set->settling && set->dev == st->st_dev && set->ino == st->st_ino &&
	       set->size == st->st_size && set->mtime_ns == timespec_ns(&st->st_mtim) &&
	       set->ctime_ns == timespec_ns(&st->st_ctim);
}

int secret_set_refresh(struct secret_set *set, const struct config *cfg)
{
	struct stat st;
	int64_t changed_ms;

	if (cfg->secret_file == NULL) {
		if (!set->loaded)
			set_inline_secret(set, cfg);
		set->loaded = true;
		return 0;
	}
	if (stat(cfg->secret_file, &st) < 0) {
		log_error("secret_file %s: %s", cfg->secret_file, strerror(errno));
		secret_set_free(set);
		return -1;
	}
	if (same_file(set, &st))
		return set->file_secrets ? 0 : -1;
	secret_set_free(set);
	set_inline_secret(set, cfg);
	size_t inline_secrets = set->n;
	if (load_secret_file(set, cfg->secret_file, &st) < 0) {
		secret_set_free(set);
		return -1;
	}
	set->file_secrets = set->n - inline_secrets;
	set->dev = st.st_dev;
	set->ino = st.st_ino;
	set->size = st.st_size;
	set->mtime_ns = timespec_ns(&st.st_mtim);
	set->ctime_ns = timespec_ns(&st.st_ctim);
	changed_ms = (set->ctime_ns > set->mtime_ns ? set->ctime_ns : set->mtime_ns) / 1000000;
	set->settling = time_now_ms() - changed_ms < SECRET_FILE_SETTLE_MS;
	set->loaded = true;
	if (set->file_secrets == 0) {
		log_error("secret_file %s holds no secret: refusing every delivery",
		          cfg->secret_file);
		return -1;
	}
	return 0;
}
