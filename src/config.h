/*
 * Settings (cfimages-webhook.conf(5)): built-in defaults, then the config file, then
 * the process environment (CFIMAGES_WEBHOOK_<KEY>), highest last.  In
 * FastCGI mode the request's parameters are never consulted: the caller
 * passes the process environment only.  Also the secret list (with
 * secret_file re-read when it changes) and the allow_from address check.
 */
#ifndef CFW_CONFIG_H
#define CFW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth.h"
#include "util.h"

#define CONFIG_FILE_NAME "cfimages-webhook.conf"
#define CONFIG_ENV_PREFIX "CFIMAGES_WEBHOOK_"
/* Bounds on numeric settings, with their units. */
#define HOOK_TIMEOUT_SECONDS_DEFAULT 30
#define HOOK_TIMEOUT_SECONDS_MAX 86400
#define HOOK_ATTEMPTS_DEFAULT 5
#define HOOK_ATTEMPTS_MAX 100
#define MAX_BODY_BYTES_DEFAULT 1048576
#define MAX_BODY_BYTES_MAX (64 * 1048576)
#define TOLERANCE_SECONDS_DEFAULT 300
#define TOLERANCE_SECONDS_MAX (86400 * 365)
#define READ_TIMEOUT_SECONDS_DEFAULT 30
#define READ_TIMEOUT_SECONDS_MAX 3600
#define CONFIG_LINE_BYTES 8192
#define CONFIG_MAX_CIDRS 64
#define CONFIG_MAX_SECRETS 64
#define CONFIG_SECRET_BYTES 4096
/* `check` warns about a secret shorter than this. */
#define SECRET_MIN_BYTES 16
/*
 * The coarsest file timestamp granularity trusted (FAT keeps 2 s): a
 * secret_file read this soon after its last change is read again on the
 * next refresh, since a rewrite within the same tick may not show in its
 * times.
 */
#define SECRET_FILE_SETTLE_MS 2000
#define CONFIG_ERROR_BYTES 512

/* One allow_from entry: an address family, the network bytes and a prefix length. */
struct cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];  /* network address, 4 or 16 bytes used */
	int prefix;              /* bits */
};

struct config {
	char *path;              /* the config file that was read, or NULL */
	char *secret;            /* `secret`, or NULL; wiped on free */
	char *secret_file;       /* `secret_file`, or NULL */
	char *db;                /* database path */
	unsigned db_mode;        /* permission bits for a new database file */
	bool db_mode_set;        /* db_mode was given (it means nothing for PostgreSQL) */
	char *hooks_dir;         /* hook scripts directory */
	int64_t hook_timeout_seconds;
	int64_t hook_attempts;
	int64_t max_body_bytes;
	int64_t tolerance_seconds;
	bool auto_register;
	size_t n_allow;          /* 0: any sender */
	struct cidr allow_from[CONFIG_MAX_CIDRS];
	bool durability_full;
	enum log_level log_level;
	int64_t read_timeout_seconds; /* a FastCGI connection's time to send its request */
	char *outbound_allow;    /* `outbound_allow`: comma-separated URL prefixes, or NULL (any) */
	char *ca_file;           /* `ca_file`: PEM CA bundle for TLS, or NULL (see cabundle.h) */
};

/*
 * Loads the settings.  explicit_path is --config (or NULL); envp is the
 * process environment (NULL-terminated "NAME=value" strings); exe_dir is
 * the directory of the executable (or NULL).  The file is explicit_path,
 * else $CFIMAGES_WEBHOOK_CONFIG, else exe_dir/cfimages-webhook.conf, else
 * SYSCONFDIR/cfimages-webhook.conf, each only if present (an explicit one
 * must exist).  Returns 0, or -1 with a message naming the file, line and
 * key (or the variable) in err.  Unknown CFIMAGES_WEBHOOK_* variables are
 * logged as warnings.  Free with config_free() in either case.
 */
int config_load(struct config *cfg, const char *explicit_path, char *const *envp,
                const char *exe_dir, char *err, size_t errlen);

/* Releases what cfg owns, wiping the secret; cfg may then be reused. */
void config_free(struct config *cfg);

/*
 * Why config_set() refused a setting.  Callers decide on the code, never
 * on its text: config_error_text() may be reworded freely.
 */
enum config_error {
	CONFIG_OK = 0,
	CONFIG_UNKNOWN_KEY,  /* not a setting (an environment variable is only warned about) */
	CONFIG_EMPTY_VALUE,  /* `key =` with nothing after it */
	CONFIG_BLANK_SECRET, /* a secret of spaces, tabs and line ends only */
	CONFIG_NO_MEMORY,
	CONFIG_BAD_HOOK_TIMEOUT,
	CONFIG_BAD_HOOK_ATTEMPTS,
	CONFIG_BAD_MAX_BODY,
	CONFIG_BAD_TOLERANCE,
	CONFIG_BAD_READ_TIMEOUT,
	CONFIG_BAD_BOOL,        /* not yes/no/true/false/on/off/1/0 */
	CONFIG_BAD_MODE,        /* not 3 or 4 octal digits */
	CONFIG_MODE_TOO_WIDE,   /* bits above 0777 */
	CONFIG_MODE_OWNER,      /* the owner lacks read or write */
	CONFIG_MODE_EXECUTABLE, /* an execute bit is set */
	CONFIG_BAD_CIDR_LIST,   /* an empty or overlong item, a trailing comma */
	CONFIG_TOO_MANY_CIDRS,  /* more than CONFIG_MAX_CIDRS */
	CONFIG_BAD_CIDR,        /* an item that is not an address or network */
	CONFIG_BAD_DURABILITY,
	CONFIG_BAD_LOG_LEVEL,
	CONFIG_BAD_OUTBOUND_ALLOW, /* an item that is not an http:// or https:// URL prefix */
};

/* The reason as a short phrase for an error message ("unknown key", ...). */
const char *config_error_text(enum config_error e);

/*
 * Applies one `key = value` setting (the value already trimmed).  Returns
 * CONFIG_OK, or why the setting was refused.  Exposed for tests and
 * fuzzing.
 */
enum config_error config_set(struct config *cfg, const char *key, const char *value);

/*
 * Parses one CIDR ("10.0.0.0/8", "2001:db8::/32", or a bare address as a
 * host route).  Returns true on success.
 */
bool cidr_parse(const char *text, struct cidr *out);

/*
 * True when the textual address (REMOTE_ADDR) is inside one of the
 * configured networks, or when allow_from is unset.  An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is matched as IPv4.  An unparsable address is
 * outside every network.
 */
bool config_allows(const struct config *cfg, const char *addr);

/*
 * True when an outbound action may call url: outbound_allow is unset, or
 * url starts with one of its prefixes (scheme and host compared without
 * regard to case).  A prefix that ends with the host (and port) matches
 * only at the end of the URL's authority, so https://app.example.com
 * allows neither https://app.example.com.evil.example/ nor
 * https://app.example.com@evil.example/.  A URL whose path holds a "."
 * or ".." segment (also percent-encoded) or a backslash never matches:
 * it could leave the allowed path once normalised.
 */
bool config_outbound_allows(const struct config *cfg, const char *url);

/*
 * The current secrets: `secret` plus every line of secret_file, trimmed of
 * spaces, tabs and CR at both ends (lines left empty are skipped).  The
 * file is re-read when its device, inode, size, modification or change
 * time (to the nanosecond) differs from the copy held, and for
 * SECRET_FILE_SETTLE_MS after any change, so rotation needs no restart:
 * one stat per call.
 */
struct secret_set {
	struct auth_secret items[CONFIG_MAX_SECRETS];
	unsigned lines[CONFIG_MAX_SECRETS]; /* secret_file line of each item; 0: `secret` */
	size_t n;
	char *file_data;        /* owned copy of the file's bytes, wiped on change */
	size_t file_len;        /* bytes in file_data */
	size_t file_secrets;    /* how many of items came from the file */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;       /* st_ctim: set by the kernel; utimes cannot put it back */
	bool settling;          /* read within SECRET_FILE_SETTLE_MS of its last change */
	bool loaded;
};

/*
 * Refreshes *set from cfg.  Returns 0, or -1 (logged) when secret_file is
 * configured but cannot be read, or holds no usable line (the operator
 * asked for authentication; an empty or blank file must not switch it
 * off, nor leave only `secret` by accident): the caller must then refuse
 * to authenticate anyone (fail closed).
 */
int secret_set_refresh(struct secret_set *set, const struct config *cfg);
/* Wipes and frees; the set may then be refreshed again. */
void secret_set_free(struct secret_set *set);

#endif
