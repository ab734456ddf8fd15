/*
 * The `check` command's checks (check.c).
 */
#ifndef CFW_CHECK_H
#define CFW_CHECK_H

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

#endif
