/*
 * Hook scripts (cfimages-webhook(8), HOOKS): finding the ones to queue for
 * a status, executing one (fork/exec with a clean environment, a timeout
 * that kills the whole process group), and the outbox runner that claims
 * due runs and records how they ended.  The runner is a detached process
 * (double fork, a process group of its own) so neither a CGI process nor
 * a FastCGI accept loop ever waits for a hook.
 *
 * Who is trusted with what here:
 * - The sender: with nothing.  The image id, event and body reach a hook
 *   only as argv, environment values and stdin, never through a shell.
 * - Whoever can write the database (the db_mode group): with rows only.
 *   A row never chooses code (a run executes hooks_dir/NAME rebuilt from
 *   its name and checked again, never its stored path: run_path), never a
 *   signal (a stale run's group is killed only when the leader's own
 *   environment proves we started it for that run: hooks_group_of_run),
 *   and never a file mode (the lock file beside the database is not
 *   followed through symlinks: open_lock_file).
 * - The owner of hooks_dir (this user or root, nobody else may write
 *   there): with code, by design.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "hooks.h"
#include "outbound.h"
#include "outbox.h"
#include "util.h"

extern char **environ;

#define HOOK_PATH_BYTES 4096

/*
 * The rule for anything we are about to execute: owned by us or root, not
 * writable by group or others.  Otherwise someone else could choose what
 * runs with our rights.  stat() follows symbolic links, so the target is
 * what is judged.
 */
enum hook_path_problem hooks_path_problem(const char *path, bool want_dir)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return errno == ENOENT ? HOOK_PATH_MISSING : HOOK_PATH_UNEXAMINABLE;
	if (want_dir && !S_ISDIR(st.st_mode))
		return HOOK_PATH_NOT_DIRECTORY;
	if (!want_dir && !S_ISREG(st.st_mode))
		return HOOK_PATH_NOT_REGULAR;
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return HOOK_PATH_FOREIGN_OWNER;
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return HOOK_PATH_WRITABLE;
	return HOOK_PATH_OK;
}

const char *hooks_path_problem_text(enum hook_path_problem problem)
{
	switch (problem) {
	case HOOK_PATH_OK:
		return "";
	case HOOK_PATH_MISSING:
		return "does not exist";
	case HOOK_PATH_UNEXAMINABLE:
		return "cannot be examined";
	case HOOK_PATH_NOT_DIRECTORY:
		return "is not a directory";
	case HOOK_PATH_NOT_REGULAR:
		return "is not a regular file";
	case HOOK_PATH_FOREIGN_OWNER:
		return "is owned by another user (must be this user or root)";
	case HOOK_PATH_WRITABLE:
		return "is writable by group or others (chmod go-w)";
	}
	return "has an unknown problem";
}

/*
 * Adds name/path to the list if it is a safe executable regular file, or a
 * safe NAME.webhook action file (read, not executed: no execute bit needed).
 */
static int consider(struct hook_list *out, const char *name, const char *path)
{
	struct stat st;
	enum hook_path_problem problem;
	char *n, *p;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	problem = hooks_path_problem(path, false);
	if (problem != HOOK_PATH_OK) {
		log_warn("hook %s refused: %s", path, hooks_path_problem_text(problem));
		return 0;
	}
	if (!outbound_is_action(name) && access(path, X_OK) < 0) {
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
	enum hook_path_problem problem;
	int n, rc = 0;

	memset(out, 0, sizeof *out);
	problem = hooks_path_problem(hooks_dir, true);
	if (problem == HOOK_PATH_MISSING) {
		log_debug("hooks_dir %s does not exist: no hooks", hooks_dir);
		return 0;
	}
	if (problem != HOOK_PATH_OK) {
		log_warn("hooks_dir %s refused: %s", hooks_dir, hooks_path_problem_text(problem));
		return 0;
	}
	if (!join_path(path, sizeof path, hooks_dir, status) || consider(out, status, path) < 0)
		goto fail;
	snprintf(name, sizeof name, "%s" OUTBOUND_SUFFIX, status);
	if (!join_path(path, sizeof path, hooks_dir, name) || consider(out, name, path) < 0)
		goto fail;
	snprintf(dir_name, sizeof dir_name, "%s.d", status);
	if (!join_path(path, sizeof path, hooks_dir, dir_name))
		goto fail;
	problem = hooks_path_problem(path, true);
	if (problem == HOOK_PATH_MISSING || problem == HOOK_PATH_NOT_DIRECTORY)
		return 0;
	if (problem != HOOK_PATH_OK) {
		log_warn("hook directory %s refused: %s", path, hooks_path_problem_text(problem));
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

