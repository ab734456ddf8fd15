/*
 * Hook scripts (cfimages-webhook(8) HOOKS): discovery of the scripts for a
 * status, and the ownership and permission rules they must pass.
 * Executing a run is hook_exec.h; the outbox runner is hook_runner.h.
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
 * Finds the hooks for a change into status: hooks_dir/STATUS,
 * hooks_dir/STATUS.webhook, then hooks_dir/STATUS.d/ entries in name order
 * (names starting with '.' or ending in '~' skipped), keeping regular
 * executable files and NAME.webhook action files (cfimages-webhook(8)
 * ACTIONS; read, not executed, so they need no execute bit).  A file or
 * directory writable by group or others, or owned by someone other than
 * this user or root, is refused and logged (and so is everything under an
 * insecure hooks_dir).  A missing hooks_dir or script is not an error.
 * Returns 0 (with out filled, free with hook_list_free) or -1 on an
 * allocation failure.
 */
int hooks_discover(const char *hooks_dir, const char *status, struct hook_list *out);
void hook_list_free(struct hook_list *list);

/*
 * What is wrong with a path that is to be executed or to hold hooks, by
 * the ownership and permission rules above.  Callers decide on these
 * values; hooks_path_problem_text gives the words (which may change).
 */
enum hook_path_problem {
	HOOK_PATH_OK = 0,
	HOOK_PATH_MISSING,       /* does not exist */
	HOOK_PATH_UNEXAMINABLE,  /* stat failed otherwise */
	HOOK_PATH_NOT_DIRECTORY, /* a directory was wanted */
	HOOK_PATH_NOT_REGULAR,   /* a regular file was wanted */
	HOOK_PATH_FOREIGN_OWNER, /* owned by neither this user nor root */
	HOOK_PATH_WRITABLE,      /* writable by group or others */
};

/*
 * Checks path (a directory with want_dir, else a regular file) for the
 * rules above; stat() follows symbolic links, so the target is judged.
 * Used by `check` as well.
 */
enum hook_path_problem hooks_path_problem(const char *path, bool want_dir);

/* The problem in words, to follow the path in a message ("" for HOOK_PATH_OK). */
const char *hooks_path_problem_text(enum hook_path_problem problem);

#endif
