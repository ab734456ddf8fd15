/*
 * Hook scripts: finding the ones to queue for a status (SPEC section 9).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks.h"
#include "util.h"

#define HOOK_PATH_BYTES 4096

/*
 * The rule for anything we are about to execute: owned by us or root, not
 * writable by group or others.  Otherwise someone else could choose what
 * runs with our rights.  stat() follows symbolic links, so the target is
 * what is judged.
 */
const char *hooks_path_problem(const char *path, bool want_dir)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return errno == ENOENT ? "does not exist" : "cannot be examined";
	if (want_dir && !S_ISDIR(st.st_mode))
		return "is not a directory";
	if (!want_dir && !S_ISREG(st.st_mode))
		return "is not a regular file";
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return "is owned by another user (must be this user or root)";
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return "is writable by group or others (chmod go-w)";
	return NULL;
}

/* Adds name/path to the list if it is a safe executable regular file. */
static int consider(struct hook_list *out, const char *name, const char *path)
{
	struct stat st;
	const char *problem;
	char *n, *p;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	problem = hooks_path_problem(path, false);
	if (problem) {
		log_warn("hook %s refused: %s", path, problem);
		return 0;
	}
	if (access(path, X_OK) < 0) {
		log_debug("hook %s skipped: not executable", path);
		return 0;
	}
	if (out->n == HOOKS_MAX) {
		log_warn("hook %s skipped: more than %d hooks for one status", path, HOOKS_MAX);
		return 0;
	}
	n = strdup(name);
	p = strdup(path);
	if (n == NULL || p == NULL) {
		free(n);
		free(p);
		return -1;
	}
	out->strings[2 * out->n] = n;
	out->strings[2 * out->n + 1] = p;
	out->items[out->n].name = n;
	out->items[out->n].path = p;
	out->n++;
	return 0;
}

/* Writes "a/b" into buf; false when it does not fit (the entry is then skipped). */
static bool join_path(char *buf, size_t cap, const char *a, const char *b)
{
	int n = snprintf(buf, cap, "%s/%s", a, b);
	return n > 0 && (size_t)n < cap;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_entry(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return !(e->d_name[0] == '.' || (n && e->d_name[n - 1] == '~'));
}

int hooks_discover(const char *hooks_dir, const char *status, struct hook_list *out)
{
	char path[HOOK_PATH_BYTES], name[HOOK_PATH_BYTES], dir_name[64];
	struct dirent **entries = NULL;
	const char *problem;
	int n, rc = 0;

	memset(out, 0, sizeof *out);
	problem = hooks_path_problem(hooks_dir, true);
	if (problem) {
		if (strcmp(problem, "does not exist") == 0)
			log_debug("hooks_dir %s does not exist: no hooks", hooks_dir);
		else
			log_warn("hooks_dir %s refused: %s", hooks_dir, problem);
		return 0;
	}
	if (!join_path(path, sizeof path, hooks_dir, status) || consider(out, status, path) < 0)
		goto fail;
	snprintf(dir_name, sizeof dir_name, "%s.d", status);
	if (!join_path(path, sizeof path, hooks_dir, dir_name))
		goto fail;
	problem = hooks_path_problem(path, true);
	if (problem) {
		if (strcmp(problem, "does not exist") != 0 && strcmp(problem, "is not a directory"))
			log_warn("hook directory %s refused: %s", path, problem);
		return 0;
	}
	n = scandir(path, &entries, skip_entry, by_name);
	for (int i = 0; i < n; i++) {
		if (rc == 0 && join_path(name, sizeof name, dir_name, entries[i]->d_name) &&
		    join_path(path, sizeof path, hooks_dir, name) && consider(out, name, path) < 0)
			rc = -1;
		free(entries[i]);
	}
	free(entries);
	if (rc == 0)
		return 0;
fail:
	hook_list_free(out);
	return -1;
}

void hook_list_free(struct hook_list *list)
{
	for (size_t i = 0; i < 2 * list->n; i++)
		free(list->strings[i]);
	memset(list, 0, sizeof *list);
}
