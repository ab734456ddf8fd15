/*
 * Hook scripts (cfimages-webhook(8), HOOKS): finding the ones to queue for
 * a status, executing one (fork/exec with a clean environment, a timeout
 * that kills the whole process group), and the outbox runner that claims
 * due runs and records how they ended.  The runner is a detached process
 * (double fork, setsid) so neither a CGI process nor a FastCGI accept loop
 * ever waits for a hook.
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

/* Adds name/path to the list if it is a safe executable regular file. */
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

/* --- Executing hooks ------------------------------------------------- */

/* Poll interval while a hook runs, ms: bounds how late an exit is noticed. */
#define HOOK_POLL_MS 20

int64_t hook_backoff_seconds(int64_t attempt)
{
	int64_t s = HOOK_BACKOFF_BASE_SECONDS;
	for (int64_t i = 1; i < attempt && s < HOOK_BACKOFF_MAX_SECONDS; i++)
		s *= 2;
	return s > HOOK_BACKOFF_MAX_SECONDS ? HOOK_BACKOFF_MAX_SECONDS : s;
}

/*
 * Fields 5 (process group) and 22 (start time, clock ticks since boot) of
 * a /proc/PID/stat text.  The command name (field 2) is in parentheses and
 * may hold spaces and parentheses, so fields are counted from the last ')'.
 */
static bool parse_stat(const char *text, int64_t *pgrp, int64_t *start)
{
	const char *p = strrchr(text, ')');
	for (int field = 2; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
		if (p && field + 1 == 5)
			*pgrp = strtoll(p + 1, NULL, 10);
	}
	if (p == NULL)
		return false;
	*start = strtoll(p + 1, NULL, 10);
	return true;
}

/* Reads name (relative to the directory dir) into buf, NUL-terminated; bytes read or -1. */
static ssize_t read_at(int dir, const char *name, char *buf, size_t cap)
{
	size_t len = 0;
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

int64_t process_start_time(pid_t pid)
{
	char path[64], buf[1024];
	int64_t pgrp = 0, start;
	int dir;
	bool ok;

	snprintf(path, sizeof path, "/proc/%ld", (long)pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	ok = read_at(dir, "stat", buf, sizeof buf) > 0 && parse_stat(buf, &pgrp, &start);
	close(dir);
	return ok ? start : -1;
}

/* True when the NUL-separated list env[0..len) holds the entry want exactly. */
static bool has_entry(const char *env, size_t len, const char *want)
{
	size_t i = 0;
	while (i < len) {
		size_t n = strnlen(env + i, len - i);
		if (n < len - i && strcmp(env + i, want) == 0)
			return true;
		i += n + 1;
	}
	return false;
}

/* Most bytes of a group leader's environment read for the proof. */
#define HOOK_ENVIRON_BYTES 65536

enum hook_group hooks_group_of_run(int64_t pgid, int64_t pg_start, int64_t run_id,
                                   const char *db_path)
{
	char path[64], stat_text[1024], want_run[64], *want_db = NULL, *env = NULL;
	int64_t pgrp = 0, start = -1;
	enum hook_group verdict = HOOK_GROUP_NOT_OURS;
	struct stat st;
	ssize_t len;
	int dir = -1;

	/* kill(-1) reaches every process we may signal, 0 our own group. */
	if (pgid <= 1 || pgid > INT_MAX || (pid_t)pgid == getpgrp() || (pid_t)pgid == getpid())
		return HOOK_GROUP_NOT_OURS;
	snprintf(path, sizeof path, "/proc/%lld", (long long)pgid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		verdict = errno == ENOENT ? HOOK_GROUP_GONE : HOOK_GROUP_NOT_OURS;
		goto out;
	}
	/* Through this one descriptor every read below is of the same
	 * process: once it has gone they fail, even if its PID is reused. */
	if (fstat(dir, &st) < 0 || st.st_uid != geteuid())
		goto out;
	if (read_at(dir, "stat", stat_text, sizeof stat_text) <= 0 ||
	    !parse_stat(stat_text, &pgrp, &start) || pgrp != pgid || start != pg_start)
		goto out;
	snprintf(want_run, sizeof want_run, "CFIMAGES_HOOK_RUN_ID=%lld", (long long)run_id);
	env = malloc(HOOK_ENVIRON_BYTES);
	if (env == NULL || asprintf(&want_db, "CFIMAGES_DB=%s", db_path) < 0) {
		want_db = NULL;
		goto out;
	}
	len = read_at(dir, "environ", env, HOOK_ENVIRON_BYTES);
	if (len > 0 && has_entry(env, (size_t)len, want_run) &&
	    has_entry(env, (size_t)len, want_db))
		verdict = HOOK_GROUP_OURS;
out:
	if (dir >= 0)
		close(dir);
	free(env);
	free(want_db);
	return verdict;
}

/* An anonymous, already-unlinked file holding the input, positioned at 0. */
static int input_file(const void *data, size_t len)
{
	size_t off = 0;
	int fd = memfd_create("cfimages-hook-input", MFD_CLOEXEC);
	if (fd < 0)
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Appends bytes to the result's output, keeping only the last HOOK_OUTPUT_BYTES. */
static void keep_tail(struct hook_result *r, const char *data, size_t n)
{
	if (n >= HOOK_OUTPUT_BYTES) {
		memcpy(r->output, data + n - HOOK_OUTPUT_BYTES, HOOK_OUTPUT_BYTES);
		r->output_len = HOOK_OUTPUT_BYTES;
		return;
	}
	if (r->output_len + n > HOOK_OUTPUT_BYTES) {
		size_t drop = r->output_len + n - HOOK_OUTPUT_BYTES;
		memmove(r->output, r->output + drop, r->output_len - drop);
		r->output_len -= drop;
	}
	memcpy(r->output + r->output_len, data, n);
	r->output_len += n;
}

/* Adds one of our own notes after the tail (room is reserved for it). */
static void note(struct hook_result *r, const char *text)
{
	size_t n = strlen(text), room = sizeof r->output - r->output_len;
	if (n > room)
		n = room;
	memcpy(r->output + r->output_len, text, n);
	r->output_len += n;
}

/*
 * In the child, between fork and execve: only async-signal-safe calls.
 * Builds nothing from request data but argv and environment values, which
 * execve passes as data (no shell is involved).
 */
static void exec_child(const struct hook_exec *x, int in_fd, int out_fd, char *const argv[],
                       char *const envp[])
{
	struct sigaction dfl;
	sigset_t none;

	setpgid(0, 0);
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++) {
		/* glibc refuses its reserved real-time signals (32, 33), which an
		 * ignored disposition inherited from our parent would otherwise
		 * pass on: ask the kernel directly.  An all-zero kernel sigaction
		 * is SIG_DFL with no flags and an empty mask on every layout. */
		struct {
			unsigned long words[4];
		} kdfl = {{0}};
		if (sigaction(sig, &dfl, NULL) < 0)
			syscall(SYS_rt_sigaction, sig, &kdfl, NULL, sizeof(unsigned long));
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		_exit(126);
	closefrom(3);
	if (chdir(x->hooks_dir) < 0) {
		static const char msg[] = "cfimages-webhook: cannot enter the hooks directory\n";
		(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
		_exit(126);
	}
	execve(x->path, argv, envp);
	{
		static const char msg[] = "cfimages-webhook: cannot execute the hook\n";
		(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
	}
	_exit(127);
}

/* Reads what the pipe holds now into the tail; returns false at EOF or error. */
static bool drain(int fd, struct hook_result *r)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			keep_tail(r, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

int hook_execute(const struct hook_exec *x, struct hook_result *r)
{
	char run_id[32], attempt[32];
	char *env_image = NULL, *env_status = NULL, *env_prev = NULL, *env_event = NULL,
	     *env_db = NULL;
	int in_fd = -1, pipefd[2] = {-1, -1}, status = 0, rc = -1;
	bool open_pipe = true, exited = false, termed = false;
	int64_t deadline, kill_at = 0;
	pid_t pid;

	memset(r, 0, sizeof *r);
	snprintf(run_id, sizeof run_id, "CFIMAGES_HOOK_RUN_ID=%lld", (long long)x->run_id);
	snprintf(attempt, sizeof attempt, "CFIMAGES_HOOK_ATTEMPT=%lld", (long long)x->attempt);
	if (asprintf(&env_image, "CFIMAGES_IMAGE_ID=%s", x->image_id) < 0)
		env_image = NULL;
	if (asprintf(&env_status, "CFIMAGES_STATUS=%s", x->status) < 0)
		env_status = NULL;
	if (asprintf(&env_prev, "CFIMAGES_PREVIOUS_STATUS=%s", x->previous_status) < 0)
		env_prev = NULL;
	if (asprintf(&env_event, "CFIMAGES_EVENT=%s", x->event) < 0)
		env_event = NULL;
	if (asprintf(&env_db, "CFIMAGES_DB=%s", x->db_path) < 0)
		env_db = NULL;
	if (!env_image || !env_status || !env_prev || !env_event || !env_db)
		goto out;
	char *const argv[] = {(char *)x->path, (char *)x->image_id, (char *)x->status, NULL};
	char *const envp[] = {HOOK_PATH_ENV, env_image, env_status, env_prev, env_event,
	                      env_db,        attempt,   run_id,     NULL};

	in_fd = input_file(x->input, x->input_len);
	if (in_fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		log_error("hook %s: cannot set up its input or output: %s", x->path, strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		log_error("hook %s: fork: %s", x->path, strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_child(x, in_fd, pipefd[1], argv, envp);
	setpgid(pid, pid); /* also here: no window where the group does not exist */
	close(pipefd[1]);
	pipefd[1] = -1;
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	r->started = true;
	if (x->started)
		x->started(x->ctx, pid);

	deadline = time_now_ms() + x->timeout_seconds * 1000;
	while (!exited) {
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		int64_t now = time_now_ms();
		pid_t w;

		if (!termed && now >= deadline) {
			kill(-pid, SIGTERM);
			termed = true;
			r->timed_out = true;
			kill_at = now + HOOK_KILL_GRACE_SECONDS * 1000;
		} else if (termed && kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = 0;
		}
		if (open_pipe)
			poll(&pfd, 1, HOOK_POLL_MS);
		else
			usleep(HOOK_POLL_MS * 1000);
		if (open_pipe && !drain(pipefd[0], r))
			open_pipe = false;
		do
			w = waitpid(pid, &status, WNOHANG);
		while (w < 0 && errno == EINTR);
		if (w == pid || (w < 0 && errno == ECHILD))
			exited = true;
	}
	/* What the leader wrote before exiting; children it left may hold the
	 * pipe open, so take what is there and do not wait for EOF. */
	if (open_pipe)
		drain(pipefd[0], r);
	if (r->timed_out) {
		kill(-pid, SIGKILL); /* the rest of the group, e.g. a child it spawned */
		char msg[128];
		bool newline = r->output_len > 0 && r->output[r->output_len - 1] != '\n';
		snprintf(msg, sizeof msg, "%s[cfimages-webhook: killed after hook_timeout (%lld s)]\n",
		         newline ? "\n" : "", (long long)x->timeout_seconds);
		note(r, msg);
	}
	if (WIFEXITED(status))
		r->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r->exit_code = -WTERMSIG(status);
	rc = 0;
out:
	if (in_fd >= 0)
		close(in_fd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(env_image);
	free(env_status);
	free(env_prev);
	free(env_event);
	free(env_db);
	return rc;
}

/* --- The outbox runner ----------------------------------------------- */

/* What readlink(/proc/self/exe) appends once the file was replaced. */
#define DELETED_SUFFIX " (deleted)"

/* Extra seconds past timeout + grace before a running row counts as abandoned. */
#define HOOK_STALE_SLACK_SECONDS 10
/* How often a lingering runner looks for new work, ms. */
#define HOOK_LINGER_POLL_MS 1000
/* Stale runs handled per pass. */
#define HOOK_STALE_BATCH 32

void hooks_host_name(char *buf, size_t cap)
{
	if (gethostname(buf, cap) != 0)
		buf[0] = '\0';
	buf[cap - 1] = '\0';
}

int64_t hooks_lease_ms(const struct config *cfg)
{
	return (cfg->hook_timeout_seconds + HOOK_KILL_GRACE_SECONDS + HOOK_STALE_SLACK_SECONDS) *
	       1000;
}

/*
 * Takes up the runs a dead runner left behind.  Their rows may have been
 * written by anyone in the database's group, who must not be able to make
 * us signal a process: a recorded process group is killed only when
 * hooks_group_of_run proves it is the hook we started for that run;
 * otherwise the run is taken up without killing anything.
 */
static void reclaim_stale(struct store *st, const struct config *cfg, const char *db_path)
{
	struct stale_run runs[HOOK_STALE_BATCH];
	int64_t now = time_now_ms();
	int n = outbox_stale(st, now, runs, HOOK_STALE_BATCH);
	char host[OUTBOX_HOST_BYTES];

	hooks_host_name(host, sizeof host);
	for (int i = 0; i < n; i++) {
		enum hook_group g = HOOK_GROUP_GONE;
		/* A run of another host left nothing here to signal. */
		if (runs[i].pgid != 0 && (runs[i].host[0] == '\0' || strcmp(runs[i].host, host) == 0))
			g = hooks_group_of_run(runs[i].pgid, runs[i].pg_start, runs[i].id, db_path);
		if (g == HOOK_GROUP_OURS) {
			log_warn("hook run %lld: killing process group %lld left by a dead runner",
			         (long long)runs[i].id, (long long)runs[i].pgid);
			kill(-(pid_t)runs[i].pgid, SIGKILL);
		} else if (g == HOOK_GROUP_NOT_OURS) {
			log_warn("hook run %lld: recorded process group %lld not killed: nothing "
			         "shows it is this run's hook",
			         (long long)runs[i].id, (long long)runs[i].pgid);
		}
		if (outbox_reclaim(st, &runs[i], cfg->hook_attempts, now) == 1)
			log_warn("hook run %lld: its runner died; taken up again",
			         (long long)runs[i].id);
	}
}

struct started_ctx {
	struct store *st;
	int64_t run_id;
	int64_t attempt;
};

static void record_pgid(void *ctx, pid_t pgid)
{
	struct started_ctx *c = ctx;
	outbox_set_pgid(c->st, c->run_id, c->attempt, pgid, process_start_time(pgid));
}

/*
 * The file a run executes, rebuilt from hooks_dir and the run's hook name
 * (never the path stored in the row: whoever may write the database, e.g.
 * the application's group with db_mode 0660, must not choose a program).
 * The name must be STATUS or STATUS.d/NAME as discovery makes them, and
 * the directories and the file must still pass the ownership and mode
 * rules.  Returns NULL with path filled, or a short reason.
 */
static const char *run_path(const struct config *cfg, const struct hook_run *run, char *path,
                            size_t cap)
{
	char dir[HOOK_PATH_BYTES];
	size_t n = strlen(run->status);
	enum hook_path_problem problem;
	const char *name;

	if (!status_is_known(run->status) || strncmp(run->hook, run->status, n) != 0)
		return "is not a hook name discovery would queue";
	name = run->hook + n;
	if (*name != '\0') {
		size_t len;
		if (strncmp(name, ".d/", 3) != 0)
			return "is not a hook name discovery would queue";
		name += 3;
		len = strlen(name);
		if (len == 0 || name[0] == '.' || name[len - 1] == '~' || strchr(name, '/'))
			return "is not a hook name discovery would queue";
	}
	if ((problem = hooks_path_problem(cfg->hooks_dir, true)) != HOOK_PATH_OK)
		return hooks_path_problem_text(problem);
	if (*name != '\0') {
		if (snprintf(dir, sizeof dir, "%s/%s.d", cfg->hooks_dir, run->status) >= (int)sizeof dir)
			return "path too long";
		if ((problem = hooks_path_problem(dir, true)) != HOOK_PATH_OK)
			return hooks_path_problem_text(problem);
	}
	if (!join_path(path, cap, cfg->hooks_dir, run->hook))
		return "path too long";
	if ((problem = hooks_path_problem(path, false)) != HOOK_PATH_OK)
		return hooks_path_problem_text(problem);
	if (access(path, X_OK) < 0)
		return "is not executable";
	return NULL;
}

/* Executes one claimed run and records its outcome. */
static void execute_run(struct store *st, const struct config *cfg, const char *db_path,
                        struct hook_run *run)
{
	struct hook_result *r = calloc(1, sizeof *r);
	struct started_ctx sc = {st, run->id, run->attempt};
	char path[HOOK_PATH_BYTES];
	struct hook_exec x = {
		.path = path,
		.hooks_dir = cfg->hooks_dir,
		.image_id = run->image_id,
		.status = run->status,
		.previous_status = run->previous_status,
		.event = run->event,
		.db_path = db_path,
		.run_id = run->id,
		.attempt = run->attempt,
		.input = run->input,
		.input_len = run->input_len,
		.timeout_seconds = cfg->hook_timeout_seconds,
		.started = record_pgid,
		.ctx = &sc,
	};
	const char *problem, *state;
	int64_t now, next;
	bool ok;

	if (r == NULL)
		return; /* left running: reclaimed after the timeout */
	problem = run_path(cfg, run, path, sizeof path);
	if (problem) {
		log_warn("hook %s refused: %s", run->hook, problem);
		snprintf(r->output, sizeof r->output, "[cfimages-webhook: hook %s refused: %s]\n",
		         run->hook, problem);
		r->output_len = strlen(r->output);
	} else if (hook_execute(&x, r) < 0) {
		snprintf(r->output, sizeof r->output, "[cfimages-webhook: could not start the hook]\n");
		r->output_len = strlen(r->output);
	}
	ok = r->started && !r->timed_out && r->exit_code == 0;
	now = time_now_ms();
	next = now;
	if (ok)
		state = RUN_DONE;
	else if (run->attempt >= cfg->hook_attempts)
		state = RUN_FAILED;
	else {
		state = RUN_QUEUED;
		next = now + hook_backoff_seconds(run->attempt) * 1000;
	}
	if (outbox_finish(st, run->id, run->attempt, state, r->started, r->exit_code, r->output, r->output_len,
	                  next, now) < 0)
		log_error("hook run %lld: could not record its outcome", (long long)run->id);
	if (ok)
		log_info("hook %s for %s: done", run->hook, run->image_id);
	else
		log_warn("hook %s for %s: attempt %lld of %lld %s (exit %d)%s", run->hook,
		         run->image_id, (long long)run->attempt, (long long)cfg->hook_attempts,
		         r->timed_out ? "timed out" : "failed", r->exit_code,
		         strcmp(state, RUN_QUEUED) == 0 ? ", will retry" : "");
	free(r);
}

int hooks_run_due(struct store *st, const struct config *cfg, bool linger)
{
	char db_path[PATH_MAX], host[OUTBOX_HOST_BYTES];
	int64_t linger_until = time_now_ms() + HOOK_RUNNER_LINGER_SECONDS * 1000;
	int ran = 0;

	hooks_host_name(host, sizeof host);
	if (store_is_postgresql(cfg->db))
		store_display_name(cfg->db, db_path, sizeof db_path);
	else if (realpath(cfg->db, db_path) == NULL)
		snprintf(db_path, sizeof db_path, "%s", cfg->db);
	for (;;) {
		struct hook_run run;
		int64_t now, next;
		int c;

		reclaim_stale(st, cfg, db_path);
		while ((c = outbox_claim(st, time_now_ms(), hooks_lease_ms(cfg), host, &run)) == 1) {
			execute_run(st, cfg, db_path, &run);
			hook_run_free(&run);
			ran++;
			linger_until = time_now_ms() + HOOK_RUNNER_LINGER_SECONDS * 1000;
		}
		if (c < 0)
			return -1;
		if (!linger)
			return ran;
		now = time_now_ms();
		next = outbox_next_due_ms(st);
		if (next < 0 || now >= linger_until || next - now > HOOK_RUNNER_LINGER_SECONDS * 1000)
			return ran;
		usleep(HOOK_LINGER_POLL_MS * 1000);
	}
}

void hooks_runner_main(const struct config *cfg)
{
	char err[512];
	struct store_options opts = {.path = cfg->db,
	                             .db_mode = cfg->db_mode,
	                             .durable = cfg->durability_full,
	                             .create = false};
	struct store *st;

	for (;;) {
		bool due = false;
		st = store_open(&opts, err, sizeof err);
		if (st == NULL) {
			log_error("hook runner: %s", err);
			return;
		}
		if (store_take_runner_slot(st, HOOK_RUNNERS_MAX) < 0) {
			store_close(st);
			return; /* the runners holding the slots will see our runs */
		}
		hooks_run_due(st, cfg, true);
		store_release_runner_slot(st); /* first, then look again: no run is stranded */
		if (outbox_any_due(st, time_now_ms(), &due) < 0)
			due = false;
		store_close(st);
		if (!due)
			return;
	}
}

/*
 * The environment handed to the runner: only our own settings, so it loads
 * the same configuration; nothing of a CGI request (GATEWAY_INTERFACE would
 * make it a CGI responder, HTTP_* are the sender's).
 */
static size_t runner_environment(char **out, size_t cap)
{
	size_t n = 0;
	for (char **e = environ; *e && n + 1 < cap; e++)
		if (strncmp(*e, CONFIG_ENV_PREFIX, strlen(CONFIG_ENV_PREFIX)) == 0 &&
		    strncmp(*e, CONFIG_ENV_PREFIX "CONFIG=", strlen(CONFIG_ENV_PREFIX "CONFIG=")) != 0)
			out[n++] = *e;
	out[n] = NULL;
	return n;
}

/*
 * Starts `cfimages-webhook [--config FILE] --db DB hooks run --detached` as
 * a grandchild in its own session.  It is a fresh program image: nothing of
 * this process's SQLite state (whose inode and shared-memory bookkeeping
 * would otherwise be inherited by fork and point at descriptors that are
 * not ours) or libfcgi state crosses over.
 */
void hooks_spawn_runner(const struct config *cfg, bool quiet)
{
	char *argv[10], *envp[64], exe[PATH_MAX];
	sigset_t none;
	ssize_t n;
	size_t argc = 0;
	pid_t a;
	int devnull;

	/* readlink, not "/proc/self/exe" itself: under valgrind the former
	 * names our program and the latter valgrind's tool. */
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) {
		log_error("cannot start the hook runner: /proc/self/exe: %s", strerror(errno));
		return;
	}
	exe[n] = '\0';
	/* After an upgrade replaced the binary, the link reads "PATH (deleted)":
	 * start the new one at PATH. */
	if ((size_t)n > strlen(DELETED_SUFFIX) &&
	    strcmp(exe + n - strlen(DELETED_SUFFIX), DELETED_SUFFIX) == 0)
		exe[n - strlen(DELETED_SUFFIX)] = '\0';
	argv[argc++] = PROGRAM_NAME;
	if (cfg->path) {
		argv[argc++] = "--config";
		argv[argc++] = cfg->path;
	}
	argv[argc++] = "--db";
	argv[argc++] = cfg->db;
	argv[argc++] = "hooks";
	argv[argc++] = "run";
	argv[argc++] = "--detached";
	argv[argc] = NULL;
	runner_environment(envp, sizeof envp / sizeof envp[0]);

	a = fork();
	if (a < 0) {
		log_error("cannot start the hook runner: fork: %s", strerror(errno));
		return;
	}
	if (a > 0) {
		while (waitpid(a, NULL, 0) < 0 && errno == EINTR)
			;
		return;
	}
	/* Intermediate child: a new session, then the runner as its child. */
	setsid();
	if (fork() != 0)
		_exit(0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		if (quiet)
			dup2(devnull, STDERR_FILENO);
	}
	closefrom(3);
	execve(exe, argv, envp);
	_exit(127);
}
