/*
 * The hooks cache (hooks_cache.h): an entry per status, checked with one
 * stat() of the hooks directory and one of the status's S.d directory.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_cache.h"
#include "util.h"

/* stat() of path into *st; the errno of a failure (0 on success). */
static int stat_errno(const char *path, struct stat *st)
{
	if (stat(path, st) == 0)
		return 0;
	memset(st, 0, sizeof *st);
	return errno ? errno : EIO;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Whether a directory is as it was when an entry was filled. */
static bool unchanged(const struct stat *then, int then_errno, const struct stat *now,
                      int now_errno)
{
	if (then_errno != now_errno)
		return false;
	if (now_errno != 0)
		return true; /* missing then and now */
	return then->st_dev == now->st_dev && then->st_ino == now->st_ino &&
	       same_time(&then->st_mtim, &now->st_mtim) && same_time(&then->st_ctim, &now->st_ctim);
}

void hooks_cache_free(struct hooks_cache *c)
{
	for (size_t i = 0; i < HOOKS_CACHE_ENTRIES; i++)
		hook_list_free(&c->entries[i].list);
	hook_list_free(&c->scratch);
	free(c->hooks_dir);
	memset(c, 0, sizeof *c);
}

int hooks_cache_discover(struct hooks_cache *c, const char *hooks_dir, const char *status,
                         const struct hook_list **out)
{
	char sub_path[4096];
	struct stat dir, sub;
	int dir_errno, sub_errno;
	int64_t now = time_now_ms();
	struct hooks_cache_entry *e = NULL, *oldest = NULL;

	*out = &c->scratch;
	hook_list_free(&c->scratch);
	if (strlen(status) >= HOOKS_CACHE_STATUS_BYTES ||
	    snprintf(sub_path, sizeof sub_path, "%s/%s.d", hooks_dir, status) >= (int)sizeof sub_path)
		return hooks_discover(hooks_dir, status, &c->scratch);
	if (c->hooks_dir == NULL || strcmp(c->hooks_dir, hooks_dir) != 0) {
		hooks_cache_free(c);
		if ((c->hooks_dir = strdup(hooks_dir)) == NULL)
			return hooks_discover(hooks_dir, status, &c->scratch);
	}
	/* Looked at before the scan, so a change during it is seen next time. */
	dir_errno = stat_errno(hooks_dir, &dir);
	sub_errno = stat_errno(sub_path, &sub);
	for (size_t i = 0; i < HOOKS_CACHE_ENTRIES; i++) {
		struct hooks_cache_entry *x = &c->entries[i];
		if (strcmp(x->status, status) == 0 && x->status[0] != '\0') {
			e = x;
			break;
		}
		if (oldest == NULL || x->status[0] == '\0' ||
		    (oldest->status[0] != '\0' && x->found_ms < oldest->found_ms))
			oldest = x;
	}
	if (e != NULL && now - e->found_ms < HOOKS_CACHE_MS && now >= e->found_ms &&
	    unchanged(&e->dir, e->dir_errno, &dir, dir_errno) &&
	    unchanged(&e->sub, e->sub_errno, &sub, sub_errno)) {
		*out = &e->list;
		return 0;
	}
	if (e == NULL)
		e = oldest;
	hook_list_free(&e->list);
	e->status[0] = '\0';
	if (hooks_discover(hooks_dir, status, &e->list) < 0)
		return -1;
	snprintf(e->status, sizeof e->status, "%s", status);
	e->found_ms = now;
	e->dir = dir;
	e->dir_errno = dir_errno;
	e->sub = sub;
	e->sub_errno = sub_errno;
	*out = &e->list;
	return 0;
}
