/*
 * A cache in front of hooks_discover() for a process that answers many
 * requests: the hooks found for a status are kept while the hooks
 * directory and the status's S.d directory are unchanged (same inode,
 * modification and change times: a script added, removed or renamed, or
 * a directory's mode or owner changed, is seen at once), and at most
 * HOOKS_CACHE_MS (a script's own mode or owner changed is seen after
 * that; its rules are checked again before it runs anyway).  So a
 * delivery costs two stat() calls instead of a directory scan and a few
 * calls per script.  One cache per thread.
 */
#ifndef CFW_HOOKS_CACHE_H
#define CFW_HOOKS_CACHE_H

#include <stdint.h>
#include <sys/stat.h>

#include "hooks.h"

/* Statuses kept at once (there are seven). */
#define HOOKS_CACHE_ENTRIES 8
/* Longest a result is kept, milliseconds. */
#define HOOKS_CACHE_MS 1000
/* Room for a status name; longer ones are not cached. */
#define HOOKS_CACHE_STATUS_BYTES 32

struct hooks_cache_entry {
	char status[HOOKS_CACHE_STATUS_BYTES]; /* "" when unused */
	int64_t found_ms;                      /* when hooks_discover() ran */
	struct stat dir, sub;                  /* hooks_dir and hooks_dir/S.d then */
	int dir_errno, sub_errno;              /* their stat() errors then, or 0 */
	struct hook_list list;
};

struct hooks_cache {
	char *hooks_dir; /* the directory the entries are for (malloc'd) */
	struct hooks_cache_entry entries[HOOKS_CACHE_ENTRIES];
	struct hook_list scratch; /* a result not cached */
};

/*
 * hooks_discover(hooks_dir, status), from the cache when it is still
 * valid.  *out points into the cache and stays valid until the next call
 * or hooks_cache_free (never free it).  Returns 0 or -1 (out of memory).
 */
int hooks_cache_discover(struct hooks_cache *c, const char *hooks_dir, const char *status,
                         const struct hook_list **out);

/* Frees what the cache holds; a zeroed cache is empty and valid. */
void hooks_cache_free(struct hooks_cache *c);

#endif
