/*
 * The parts of `check` (cfimages-webhook(8) COMMANDS, SHARED HOSTING) that
 * catch the mistakes of an upload-and-go install on a host we do not
 * control: files the web server would hand to anyone (the database, the
 * secret, the hooks inside the document root), a configuration every
 * account on the host can read, an executable suEXEC refuses to run, and
 * no CA bundle for the TLS of outbound actions.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cabundle.h"
#include "check.h"
#include "config.h"
#include "hooks.h"
#include "outbound.h"
#include "store.h"
#include "util.h"

/* Room for a path and for one .htaccess line. */
#define HOSTING_PATH_BYTES 4096
#define HTACCESS_LINE_BYTES 1024

/*
 * Directory names that hosting panels and web servers serve as a site's
 * document root (cPanel and DirectAdmin public_html / private_html, Plesk
 * httpdocs, XAMPP htdocs, Debian /var/www/html, IIS-style wwwroot, and
 * the www of many hosts).  Only consulted when DOCUMENT_ROOT is not set.
 */
static const char *const docroot_names[] = {
	"public_html", "private_html", "httpdocs", "htdocs", "html", "www", "wwwroot", NULL,
};

/*
 * Writes to root the directory the web server serves that contains path's
 * directory, and to why how it was recognized; returns false when path
 * looks unserved (or its directory does not exist).  With DOCUMENT_ROOT
 * in the environment (CGI sets it; an operator may export it) that is the
 * only root considered; otherwise the nearest ancestor named like a
 * document root, or holding an .htaccess (Apache reads those only in
 * directories it serves).
 */
static bool served_root(const char *path, char *root, size_t cap, const char **why)
{
	char dir[HOSTING_PATH_BYTES], real[PATH_MAX], docroot[PATH_MAX];
	const char *env = getenv("DOCUMENT_ROOT");
	char *slash;

	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (realpath(dir, real) == NULL)
		return false;
	if (env != NULL && env[0] != '\0') {
		size_t n;
		if (realpath(env, docroot) == NULL)
			return false;
		n = strlen(docroot);
		if (strcmp(docroot, "/") != 0 &&
		    (strncmp(real, docroot, n) != 0 || (real[n] != '\0' && real[n] != '/')))
			return false;
		snprintf(root, cap, "%s", docroot);
		*why = "DOCUMENT_ROOT";
		return true;
	}
	for (;;) {
		char probe[PATH_MAX + 16];
		const char *base = strrchr(real, '/');

		base = base ? base + 1 : real;
		for (size_t i = 0; docroot_names[i] != NULL; i++)
			if (strcmp(base, docroot_names[i]) == 0) {
				snprintf(root, cap, "%s", real);
				*why = "a document root's usual name";
				return true;
			}
		snprintf(probe, sizeof probe, "%s/.htaccess", strcmp(real, "/") == 0 ? "" : real);
		if (access(probe, F_OK) == 0) {
			snprintf(root, cap, "%s", real);
			*why = "it has an .htaccess";
			return true;
		}
		slash = strrchr(real, '/');
		if (slash == NULL || strcmp(real, "/") == 0)
			return false;
		*(slash == real ? slash + 1 : slash) = '\0';
	}
}

/* True when line (trimmed) is a directive denying every client. */
static bool denies_all(const char *line)
{
	return strncasecmp(line, "require all denied", 18) == 0 ||
	       strncasecmp(line, "deny from all", 13) == 0;
}

/*
 * True when the section opened by line (`<Files NAME>`, `<Files ~ RE>`,
 * `<FilesMatch RE>`, the argument quoted or not) applies to the file
 * called name: Apache matches <Files> with shell wildcards and the others
 * with regular expressions (PCRE; POSIX extended ones are close enough for
 * the patterns people write here).
 */
static bool section_matches(const char *line, const char *name)
{
	char arg[HTACCESS_LINE_BYTES];
	bool regex = false;
	const char *p;
	size_t n;

	if (strncasecmp(line, "<FilesMatch", 11) == 0) {
		p = line + 11;
		regex = true;
	} else if (strncasecmp(line, "<Files", 6) == 0) {
		p = line + 6;
	} else {
		return false;
	}
	p += strspn(p, " \t");
	if (p[0] == '~') {
		regex = true;
		p++;
		p += strspn(p, " \t");
	}
	n = strcspn(p, ">");
	if (n >= sizeof arg)
		return false;
	memcpy(arg, p, n);
	arg[n] = '\0';
	while (n > 0 && (arg[n - 1] == ' ' || arg[n - 1] == '\t'))
		arg[--n] = '\0';
	if (n >= 2 && (arg[0] == '"' || arg[0] == '\'') && arg[n - 1] == arg[0]) {
		memmove(arg, arg + 1, n - 2);
		arg[n - 2] = '\0';
	}
	if (regex) {
		regex_t re;
		bool hit;
		if (regcomp(&re, arg, REG_EXTENDED | REG_NOSUB) != 0)
			return false;
		hit = regexec(&re, name, 0, NULL, 0) == 0;
		regfree(&re);
		return hit;
	}
	return fnmatch(arg, name, 0) == 0;
}

/* True when dir/.htaccess has a <Files…> section for name that denies everyone. */
static bool htaccess_denies(const char *dir, const char *name)
{
	char path[PATH_MAX + 16], line[HTACCESS_LINE_BYTES];
	bool in_section = false, denied = false;
	FILE *f;

	if (snprintf(path, sizeof path, "%s/.htaccess", dir) >= (int)sizeof path ||
	    (f = fopen(path, "r")) == NULL)
		return false;
	while (!denied && fgets(line, sizeof line, f) != NULL) {
		const char *l = line + strspn(line, " \t");
		if (strncasecmp(l, "</Files", 7) == 0)
			in_section = false;
		else if (strncasecmp(l, "<Files", 6) == 0)
			in_section = section_matches(l, name);
		else if (in_section && denies_all(l))
			denied = true;
	}
	fclose(f);
	return denied;
}

/*
 * True when an .htaccess in path's directory or an ancestor up to root
 * denies the file to every client.
 */
static bool protected_by_htaccess(const char *path, const char *root)
{
	char dir[PATH_MAX];
	const char *base = strrchr(path, '/');
	char *slash;
	size_t rlen = strlen(root);

	base = base ? base + 1 : path;
	if (realpath(path, dir) == NULL)
		return false;
	for (;;) {
		slash = strrchr(dir, '/');
		if (slash == NULL || slash == dir)
			return false;
		*slash = '\0';
		if (htaccess_denies(dir, base))
			return true;
		if (strlen(dir) <= rlen)
			return false;
	}
}

/* True when the file has a `secret = …` line (it then holds a secret). */
static bool file_has_secret(const char *path)
{
	char line[CONFIG_LINE_BYTES];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL) {
		const char *l = line + strspn(line, " \t");
		if (strncmp(l, "secret", 6) == 0 && l[6 + strspn(l + 6, " \t")] == '=')
			found = true;
	}
	fclose(f);
	return found;
}

/* The database, the secrets and the hooks must not be where the web server serves files. */
static void check_document_root(const struct config *cfg, int *problems)
{
	char root[HOSTING_PATH_BYTES], hooks_probe[HOSTING_PATH_BYTES];
	const char *why;

	if (cfg->path != NULL && served_root(cfg->path, root, sizeof root, &why)) {
		if (protected_by_htaccess(cfg->path, root))
			printf("ok: configuration %s is inside the served directory %s, and an "
			       ".htaccess denies it to clients\n",
			       cfg->path, root);
		else
			check_report(problems, true,
			             "configuration %s is inside %s, which the web server serves (%s), "
			             "and no .htaccess denies it: anyone can download it (add <Files "
			             "\"%s\"> Require all denied </Files> to the .htaccess beside it)",
			             cfg->path, root, why,
			             strrchr(cfg->path, '/') ? strrchr(cfg->path, '/') + 1 : cfg->path);
	}
	if (!store_is_postgresql(cfg->db) && served_root(cfg->db, root, sizeof root, &why))
		check_report(problems, true,
		             "database %s is inside %s, which the web server serves (%s): move it "
		             "(and its -wal and -shm files) to a directory outside the document "
		             "root and set db",
		             cfg->db, root, why);
	if (cfg->secret_file != NULL && served_root(cfg->secret_file, root, sizeof root, &why))
		check_report(problems, true,
		             "secret_file %s is inside %s, which the web server serves (%s): move it "
		             "outside the document root",
		             cfg->secret_file, root, why);
	/* served_root looks at a path's directory: probe a name inside hooks_dir. */
	snprintf(hooks_probe, sizeof hooks_probe, "%s/.", cfg->hooks_dir);
	if (served_root(hooks_probe, root, sizeof root, &why))
		check_report(problems, true,
		             "hooks_dir %s is inside %s, which the web server serves (%s): anyone "
		             "can read the hooks, and the server may run them; move it outside "
		             "the document root",
		             cfg->hooks_dir, root, why);
}

/* Files holding the secret are readable by their owner, and a group at most. */
static void check_secret_modes(const struct config *cfg, int *problems)
{
	struct stat st;

	if (cfg->path != NULL && stat(cfg->path, &st) == 0 && (st.st_mode & S_IROTH) &&
	    file_has_secret(cfg->path))
		check_report(problems, true,
		             "configuration %s holds the secret and every account on this host can "
		             "read it (chmod 0600 %s when the program runs as you, as under "
		             "suEXEC; else chmod 0640 and give it the web server's group)",
		             cfg->path, cfg->path);
	if (cfg->secret_file != NULL && stat(cfg->secret_file, &st) == 0 &&
	    (st.st_mode & S_IROTH))
		check_report(problems, false,
		             "secret_file %s is readable by every account on this host (chmod 0600 "
		             "or 0640 %s)",
		             cfg->secret_file, cfg->secret_file);
}

/*
 * Apache's suEXEC (and suexec-like setups: mod_fcgid and CGI on most
 * shared hosts) refuses to run a program that is writable by group or
 * others, set-user-ID or set-group-ID, or in a directory writable by group
 * or others; and one not owned by the user it runs as, who must also own
 * the directory.  Checked on this executable itself.
 */
static void check_suexec(int *problems)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	struct stat st, dst;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash;

	if (n <= 0)
		return;
	exe[n] = '\0';
	snprintf(dir, sizeof dir, "%s", exe);
	slash = strrchr(dir, '/');
	if (slash == NULL || stat(exe, &st) < 0)
		return;
	*(slash == dir ? slash + 1 : slash) = '\0';
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		check_report(problems, true,
		             "executable %s is writable by %s: suEXEC refuses to run it, and anyone "
		             "able to write it runs code as you (chmod 0755 %s)",
		             exe, (st.st_mode & S_IWOTH) ? "others" : "its group", exe);
	if (st.st_mode & (S_ISUID | S_ISGID))
		check_report(problems, true,
		             "executable %s is set-user-ID or set-group-ID: suEXEC refuses to run "
		             "it (chmod 0755 %s)",
		             exe, exe);
	if (stat(dir, &dst) == 0) {
		if (dst.st_mode & (S_IWGRP | S_IWOTH))
			check_report(problems, true,
			             "directory %s of the executable is writable by %s: suEXEC refuses "
			             "to run programs there (chmod 0755 %s)",
			             dir, (dst.st_mode & S_IWOTH) ? "others" : "its group", dir);
		if (st.st_uid != 0 && dst.st_uid != st.st_uid)
			check_report(problems, false,
			             "executable %s and its directory %s have different owners: "
			             "suEXEC runs a program only when the user it runs as owns both",
			             exe, dir);
	}
}

void check_ca_bundle(const struct config *cfg, bool needed, int *problems)
{
	const char *bundle = tls_ca_bundle(cfg);

	/* Built without libcurl, or it cannot be loaded (check_hooks says so
	 * for each action): no TLS is made, nothing to verify against. */
	if (cfg->ca_file == NULL && !outbound_available(NULL, 0))
		return;
	if (bundle == NULL) {
		check_report(problems, needed,
		             "no CA bundle found (looked at %s and the other usual places): HTTPS "
		             "calls of .webhook actions cannot verify their server and will fail "
		             "(install the ca-certificates package, or set ca_file to a PEM bundle)",
		             tls_ca_bundle_paths[0]);
		return;
	}
	if (!tls_ca_bundle_usable(bundle)) {
		check_report(problems, true,
		             "%s %s: %s: HTTPS calls of .webhook actions will fail (set ca_file to "
		             "a readable PEM bundle)",
		             cfg->ca_file ? "ca_file" : "CA bundle", bundle,
		             errno == EINVAL ? "holds no PEM certificate" : strerror(errno));
		return;
	}
	printf("ok: CA bundle %s%s\n", bundle, cfg->ca_file ? " (ca_file)" : "");
}

void check_hosting(const struct config *cfg, int *problems)
{
	check_document_root(cfg, problems);
	check_secret_modes(cfg, problems);
	check_suexec(problems);
}
