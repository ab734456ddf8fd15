/*
 * Hook scripts (SPEC section 9): discovery of the scripts for a status.
 * Execution of queued runs lives here too (see hooks_run_due).
 */
#ifndef CFW_HOOKS_H
#define CFW_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* Most scripts queued for one status change. */
#define HOOKS_MAX 64

struct hook_list {
	size_t n;
	struct hook_ref items[HOOKS_MAX];
	char *strings[2 * HOOKS_MAX]; /* owned names and paths */
};

/*
 * Finds the hooks for a change into status: hooks_dir/STATUS and then
 * hooks_dir/STATUS.d/ entries in name order (names starting with '.' or
 * ending in '~' skipped), keeping regular executable files.  A file or
 * directory writable by group or others, or owned by someone other than
 * this user or root, is refused and logged (and so is everything under an
 * insecure hooks_dir).  A missing hooks_dir or script is not an error.
 * Returns 0 (with out filled, free with hook_list_free) or -1 on an
 * allocation failure.
 */
int hooks_discover(const char *hooks_dir, const char *status, struct hook_list *out);
void hook_list_free(struct hook_list *list);

/*
 * Checks a path for the ownership and permission rules above; returns NULL
 * when safe, else a short static reason.  Used by `check` as well.
 */
const char *hooks_path_problem(const char *path, bool want_dir);

#endif
