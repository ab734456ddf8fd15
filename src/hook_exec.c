/*
 * Executing one hook run (cfimages-webhook(8) HOOKS, "Execution"): a
 * fresh process in its own group, argv and environment built here (never
 * a shell string), stdin from a file holding the delivery's body, output
 * kept to its last bytes, the whole group killed at the timeout; and the
 * proof that a recorded process group is a hook we started, without which
 * nothing is ever signalled (see the trust boundaries in hooks.c).
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

#include "hook_exec.h"
#include "util.h"

extern char **environ;


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
 * Fields 5 (process group), 6 (session) and 22 (start time, clock ticks
 * since boot) of a /proc/PID/stat text.  The command name (field 2) is in
 * parentheses and may hold spaces and parentheses, so fields are counted
 * from the last ')'.
 */
static bool parse_stat(const char *text, int64_t *pgrp, int64_t *session, int64_t *start)
{
	const char *p = strrchr(text, ')');
	for (int field = 2; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
		if (p && field + 1 == 5)
			*pgrp = strtoll(p + 1, NULL, 10);
		else if (p && field + 1 == 6)
			*session = strtoll(p + 1, NULL, 10);
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
	int64_t pgrp = 0, session = 0, start;
	int dir;
	bool ok;

	snprintf(path, sizeof path, "/proc/%ld", (long)pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	ok = read_at(dir, "stat", buf, sizeof buf) > 0 && parse_stat(buf, &pgrp, &session, &start);
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
	int64_t pgrp = 0, session = 0, start = -1;
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
	/* A hook leads its group but not a session (we never call setsid
	 * for it): a session leader is something a hook started with setsid,
	 * which inherited the run's environment but is not the run's. */
	if (read_at(dir, "stat", stat_text, sizeof stat_text) <= 0 ||
	    !parse_stat(stat_text, &pgrp, &session, &start) || pgrp != pgid || session == pgid ||
	    start != pg_start)
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
 * In the child, between vfork and execve: only system calls, on our own
 * stack frame; nothing of the parent's memory is written (it is shared
 * until execve), and the child never returns.  Builds nothing from
 * request data but argv and environment values, which execve passes as
 * data (no shell is involved).
 */
static _Noreturn void exec_child(const struct hook_exec *x, int in_fd, int out_fd,
                                 char *const argv[], char *const envp[])
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
			unsigned long words[8];
		} kdfl = {{0}};
		if (sigaction(sig, &dfl, NULL) < 0)
			syscall(SYS_rt_sigaction, sig, &kdfl, NULL, (size_t)(NSIG - 1) / 8);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		_exit(126);
	close_from(3);
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

/* The parent's side of vfork, alone in a function of its own: nothing
 * of the caller's is live across it. */
static pid_t start_child(const struct hook_exec *x, int in_fd, int out_fd, char *const argv[],
                         char *const envp[])
{
	pid_t pid = vfork();

	if (pid == 0)
		exec_child(x, in_fd, out_fd, argv, envp);
	return pid;
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
	int nap_ms = 1, fork_errno;
	sigset_t all, saved;
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
	/* vfork: the child borrows our memory until its execve, so a run
	 * copies none of our page tables and takes no copy-on-write faults
	 * (with fork they were a quarter of a runner's CPU time per run).
	 * Every signal stays blocked across it, so that no handler of ours
	 * runs in the child, which sets them all to the default first. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = start_child(x, in_fd, pipefd[1], argv, envp);
	fork_errno = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0) {
		log_error("hook %s: fork: %s", x->path, strerror(fork_errno));
		goto out;
	}
	/* Also here, for where vfork is a fork (valgrind): no window where the
	 * group does not exist.  After a real vfork the child has exec'd, and
	 * this fails (it made the group itself). */
	setpgid(pid, pid);
	close(pipefd[1]);
	pipefd[1] = -1;
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	r->started = true;
	/* The timeout counts from the start, not from the group's record
	 * (which may wait for the database's write lock). */
	deadline = time_now_ms() + x->timeout_seconds * 1000;
	if (x->started && !x->started(x->ctx, pid)) {
		kill(-pid, SIGKILL);
		r->abandoned = true;
	}

	while (!exited) {
		struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
		int64_t now = time_now_ms();
		siginfo_t info;
		int w;

		if (!termed && now >= deadline) {
			kill(-pid, SIGTERM);
			termed = true;
			r->timed_out = true;
			kill_at = now + HOOK_KILL_GRACE_SECONDS * 1000;
		} else if (termed && kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = 0;
		}
		/* The pipe's end is closed a moment before the process can be
		 * waited for: the first naps after it are short, or every hook
		 * would take up to HOOK_POLL_MS more. */
		if (open_pipe) {
			poll(&pfd, 1, HOOK_POLL_MS);
		} else {
			usleep((useconds_t)nap_ms * 1000);
			nap_ms = nap_ms * 2 < HOOK_POLL_MS ? nap_ms * 2 : HOOK_POLL_MS;
		}
		if (open_pipe && !drain(pipefd[0], r))
			open_pipe = false;
		/* Not reaped yet (WNOWAIT): while the leader is a zombie its PID,
		 * and so the group's number, cannot be reused, and the group
		 * can still be killed below without reaching someone else's. */
		memset(&info, 0, sizeof info);
		do
			w = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
		while (w < 0 && errno == EINTR);
		if ((w == 0 && info.si_pid == pid) || (w < 0 && errno == ECHILD))
			exited = true;
	}
	/* What the leader wrote before exiting; children it left may hold the
	 * pipe open, so take what is there and do not wait for EOF. */
	if (open_pipe)
		drain(pipefd[0], r);
	if (r->timed_out || r->abandoned)
		kill(-pid, SIGKILL); /* the rest of the group, e.g. a child it spawned */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r->timed_out) {
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

