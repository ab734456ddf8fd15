/*
 * The `check` command's checks (check.c).
 */
#ifndef CFW_CHECK_H
#define CFW_CHECK_H

#include <stdbool.h>

#include "config.h"

/*
 * Checks everything `check` reports, printing to stdout an "ok: ..." line
 * for each part that is well and a "problem: ..." or "warning: ..." line,
 * with its fix, for each that is not.  cfg is NULL when
 * the configuration did not load (cfg_error says why); db_shown is the
 * database as messages may show it (no password).  Returns the number of
 * problems (warnings are not counted).
 */
int check_all(const struct config *cfg, const char *cfg_error, const char *db_shown);

/*
 * Prints one "problem: ..." line (is_problem, counted in *problems) or
 * "warning: ..." line: the one format of every check.
 */
void check_report(int *problems, bool is_problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The shared-hosting checks (check_hosting.c): the configuration, the
 * database, secret_file or hooks_dir inside the directory the web server
 * serves (DOCUMENT_ROOT when set, else guessed from directory names and
 * .htaccess files); a configuration holding the secret, or secret_file,
 * readable by others; this executable or its directory writable by group
 * or others, or set-ID (suEXEC refuses to run it).
 */
void check_hosting(const struct config *cfg, int *problems);

/*
 * The CA bundle for the TLS of outbound actions (cabundle.h): reported
 * when it cannot be found or read or holds no certificate, a problem when
 * ca_file is set or needed (`check` found .webhook actions), a warning
 * otherwise.  Builds without libcurl, or whose libcurl cannot be loaded,
 * check only a configured ca_file.
 */
void check_ca_bundle(const struct config *cfg, bool needed, int *problems);

#endif
