/*
 * The outbox runner (cfimages-webhook(8) HOOKS, "The runner"): takes up
 * the runs whose runner died, claims due runs one at a time and executes
 * them, records how each ended; started detached after an answer, or by
 * `hooks run` from cron.
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "hook_exec.h"
#include "hook_runner.h"
#include "hooks.h"
#include "outbound.h"
#include "outbox.h"
#include "util.h"

extern char **environ;

/* Longest path of a hook file. */
#define HOOK_PATH_BYTES 4096

static bool join_path(char *buf, size_t cap, const char *a, const char *b)
{
	int n = snprintf(buf, cap, "%s/%s", a, b);
	return n > 0 && (size_t)n < cap;
}


/* What readlink(/proc/self/exe) appends once the file was replaced. */
#define DELETED_SUFFIX " (deleted)"

/* Extra seconds past timeout + grace before a running row counts as abandoned. */
#define HOOK_STALE_SLACK_SECONDS 10
/* Longest wait from a claim to its hook's start: the hook, its timeout and
 * its grace must end within the lease, with 2 s left to record it. */
#define HOOK_START_MAX_DELAY_MS ((HOOK_STALE_SLACK_SECONDS - 2) * 1000)
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
	int64_t claimed_ms;
};

/* Records the hook's group; false when the run was taken up by another
 * runner meanwhile (this one was held up past its lease): the hook is
 * then stopped at once, so that the run does not execute twice. */
static bool record_pgid(void *ctx, pid_t pgid)
{
	struct started_ctx *c = ctx;
	return outbox_set_pgid(c->st, c->run_id, c->attempt, c->claimed_ms, pgid,
	                       process_start_time(pgid)) != 0;
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
	if (strcmp(name, OUTBOUND_SUFFIX) == 0) {
		name = ""; /* STATUS.webhook, beside STATUS */
	} else if (*name != '\0') {
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
	if (!outbound_is_action(run->hook) && access(path, X_OK) < 0)
		return "is not executable";
	return NULL;
}

/*
 * One attempt of an outbound action (cfimages-webhook(8) ACTIONS), told in
 * the terms of a hook's result: exit_code is the HTTP status (none for a
 * transport error).  *give_up: fail the run now, whatever attempts remain.
 */
static void attempt_action(struct store *st, const struct config *cfg, const struct hook_run *run,
                           const char *path, struct hook_result *r, bool *ok, bool *give_up)
{
	struct outbound_result *o = malloc(sizeof *o);

	if (o == NULL) {
		*ok = false;
		*give_up = false;
		return;
	}
	outbound_attempt(cfg, st, run, path, o);
	r->started = o->has_status;
	r->exit_code = o->has_status ? o->status : 0;
	memcpy(r->output, o->output, o->output_len);
	r->output_len = o->output_len;
	*ok = o->verdict == OUTBOUND_SUCCESS;
	*give_up = o->verdict == OUTBOUND_GIVE_UP;
	free(o);
}

/*
 * Records a run's outcome, retrying while the database cannot take it (a
 * PostgreSQL restarting, a lock held past the busy timeout, a full disk):
 * given up, the run would stay running until its lease passes and its
 * hook would then run a second time for the same change.  The write only
 * lands while the run is still this claim, so a retry after another
 * runner took the run up changes nothing.  Pauses grow from 100 ms to
 * 2 s; gives up after HOOK_OUTCOME_RETRY_S.
 */
static void record_outcome(struct store *st, const struct hook_run *run, int64_t claimed_ms,
                           const char *state, const struct hook_result *r, int64_t next,
                           int64_t now)
{
	int64_t give_up_at = time_now_ms() + HOOK_OUTCOME_RETRY_S * 1000;
	unsigned pause_ms = 100;

	for (int tries = 1;; tries++) {
		if (outbox_finish(st, run->id, run->attempt, claimed_ms, state, r->started,
		                  r->exit_code, r->output, r->output_len, next, now) == 0) {
			if (tries > 1)
				log_info("hook run %lld: outcome recorded at try %d", (long long)run->id,
				         tries);
			return;
		}
		if (time_now_ms() >= give_up_at) {
			log_error("hook run %lld: could not record its outcome for %d s; the run "
			          "stays running until its lease passes, and then runs again",
			          (long long)run->id, HOOK_OUTCOME_RETRY_S);
			return;
		}
		if (tries == 1)
			log_warn("hook run %lld: could not record its outcome; trying again for up "
			         "to %d s",
			         (long long)run->id, HOOK_OUTCOME_RETRY_S);
		usleep(pause_ms * 1000);
		pause_ms = pause_ms * 2 < 2000 ? pause_ms * 2 : 2000;
	}
}

/*
 * Executes one claimed run (claimed at claimed_ms) and records its
 * outcome.
 */
static void execute_run(struct store *st, const struct config *cfg, const char *db_path,
                        struct hook_run *run, int64_t claimed_ms)
{
	struct hook_result *r = calloc(1, sizeof *r);
	struct started_ctx sc = {st, run->id, run->attempt, claimed_ms};
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
	bool ok = false, give_up = false, action = outbound_is_action(run->hook);

	if (r == NULL)
		return; /* left running: reclaimed after the timeout */
	if (time_now_ms() - claimed_ms > HOOK_START_MAX_DELAY_MS) {
		/* Held up since the claim (the write lock, a hung disk): the hook
		 * could outlive its lease and run beside its next attempt. */
		log_warn("hook %s for %s: not started, %lld ms after its claim; a runner takes "
		         "it up again after its lease",
		         run->hook, run->image_id, (long long)(time_now_ms() - claimed_ms));
		free(r);
		return;
	}
	problem = run_path(cfg, run, path, sizeof path);
	if (problem) {
		log_warn("hook %s refused: %s", run->hook, problem);
		snprintf(r->output, sizeof r->output, "[cfimages-webhook: hook %s refused: %s]\n",
		         run->hook, problem);
		r->output_len = strlen(r->output);
	} else if (action) {
		attempt_action(st, cfg, run, path, r, &ok, &give_up);
	} else if (hook_execute(&x, r) < 0) {
		snprintf(r->output, sizeof r->output, "[cfimages-webhook: could not start the hook]\n");
		r->output_len = strlen(r->output);
	} else if (r->abandoned) {
		log_warn("hook %s for %s: stopped at its start: the run was taken up by another "
		         "runner meanwhile (this one was held up past its lease)",
		         run->hook, run->image_id);
		free(r);
		return;
	} else {
		ok = r->started && !r->timed_out && r->exit_code == 0;
	}
	now = time_now_ms();
	next = now;
	if (ok)
		state = RUN_DONE;
	else if (give_up || run->attempt >= cfg->hook_attempts)
		state = RUN_FAILED;
	else {
		state = RUN_QUEUED;
		next = now + hook_backoff_seconds(run->attempt) * 1000;
	}
	record_outcome(st, run, claimed_ms, state, r, next, now);
	if (ok)
		log_info("hook %s for %s: done", run->hook, run->image_id);
	else if (action)
		log_warn("action %s for %s: attempt %lld of %lld failed (%s%.0d)%s", run->hook,
		         run->image_id, (long long)run->attempt, (long long)cfg->hook_attempts,
		         r->started ? "HTTP " : "no HTTP answer", r->started ? r->exit_code : 0,
		         strcmp(state, RUN_QUEUED) == 0 ? ", will retry"
		         : give_up                      ? ", not retried"
		                                        : "");
	else
		log_warn("hook %s for %s: attempt %lld of %lld %s (exit %d)%s", run->hook,
		         run->image_id, (long long)run->attempt, (long long)cfg->hook_attempts,
		         r->timed_out ? "timed out" : "failed", r->exit_code,
		         strcmp(state, RUN_QUEUED) == 0 ? ", will retry" : "");
	free(r);
}

/*
 * SIGCHLD ignored (execve keeps an ignored signal, so whoever started us
 * may pass that on) makes the kernel reap our children itself: a hook's
 * exit status would be lost, and every run counted done.  Back to the
 * default, which the runner needs (it has no handler of its own).
 */
static void keep_exit_status(void)
{
	struct sigaction sa;

	if (sigaction(SIGCHLD, NULL, &sa) != 0)
		return;
	if (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT)) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGCHLD, &sa, NULL);
	}
}

int hooks_run_due(struct store *st, const struct config *cfg, bool linger)
{
	char db_path[PATH_MAX], host[OUTBOX_HOST_BYTES];
	int64_t linger_until = time_now_ms() + HOOK_RUNNER_LINGER_SECONDS * 1000;
	int ran = 0;

	malloc_keep_heap(); /* each run's transactions follow other processes' commits */
	keep_exit_status();
	hooks_host_name(host, sizeof host);
	if (store_is_postgresql(cfg->db))
		store_display_name(cfg->db, db_path, sizeof db_path);
	else if (realpath(cfg->db, db_path) == NULL)
		snprintf(db_path, sizeof db_path, "%s", cfg->db);
	for (;;) {
		struct hook_run run;
		int64_t now, next;
		bool recorded = false;
		int c;

		reclaim_stale(st, cfg, db_path);
		/* Each claim is flushed, and so carries the outcome recorded
		 * just before it to the disk; the last one is flushed here. */
		int64_t claimed_ms;

		while ((c = outbox_claim(st, claimed_ms = time_now_ms(), hooks_lease_ms(cfg), host,
		                         &run)) == 1) {
			execute_run(st, cfg, db_path, &run, claimed_ms);
			hook_run_free(&run);
			ran++;
			recorded = true;
			linger_until = time_now_ms() + HOOK_RUNNER_LINGER_SECONDS * 1000;
		}
		if (recorded && outbox_flush(st) < 0) {
			log_error("hook runner: could not flush the outcomes of its runs to the disk");
			return -1;
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
	int64_t stuck_since = 0;
	unsigned pause_s = 1;

	for (;;) {
		bool due = false;
		int ran;

		st = store_open(&opts, err, sizeof err);
		if (st == NULL) {
			log_error("hook runner: %s", err);
			return;
		}
		if (store_take_runner_slot(st, HOOK_RUNNERS_MAX) < 0) {
			store_close(st);
			return; /* the runners holding the slots will see our runs */
		}
		ran = hooks_run_due(st, cfg, true);
		store_release_runner_slot(st); /* first, then look again: no run is stranded */
		if (outbox_any_due(st, time_now_ms(), &due) < 0)
			due = false;
		store_close(st);
		if (!due)
			return;
		if (ran > 0) {
			stuck_since = 0;
			pause_s = 1;
			continue;
		}
		/* Due, yet nothing could be run: the database can be read but
		 * not written (a full disk, a read-only standby), or a stale run
		 * cannot be taken up.  Pauses growing to HOOK_STUCK_PAUSE_MAX_S,
		 * not a loop, and after HOOK_RUNNER_LINGER_SECONDS of it the
		 * next delivery or `hooks run` tries again. */
		if (stuck_since == 0)
			stuck_since = time_now_ms();
		else if (time_now_ms() - stuck_since > HOOK_RUNNER_LINGER_SECONDS * 1000) {
			log_error("hook runner: runs are due but none could be run for %d s; "
			          "giving up until the next start",
			          HOOK_RUNNER_LINGER_SECONDS);
			return;
		}
		sleep(pause_s);
		pause_s = pause_s * 2 < HOOK_STUCK_PAUSE_MAX_S ? pause_s * 2 : HOOK_STUCK_PAUSE_MAX_S;
	}
}

/*
 * True for the variables a web server sets for one CGI request (RFC 3875
 * section 4.1 and the usual extensions): the request's, not the site's.
 */
static bool is_request_variable(const char *e)
{
	static const char *const prefixes[] = {
	    "HTTP_",       "CONTENT_",  "REMOTE_",      "REQUEST_",    "SERVER_",
	    "SCRIPT_",     "PATH_INFO=", "PATH_TRANSLATED=", "QUERY_STRING=", "AUTH_TYPE=",
	    "GATEWAY_INTERFACE=", "DOCUMENT_", "CONTEXT_", "REDIRECT_", "HTTPS=",
	    "UNIQUE_ID=", "FCGI_",      "SSL_",
	};
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (strncmp(e, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * The environment handed to the runner: this process's, which is what the
 * operator gave the program (lighttpd bin-environment, Apache
 * FcgidInitialEnv, systemd Environment=; actions read it through
 * ${env:NAME}), less two things: anything of a CGI request
 * (GATEWAY_INTERFACE would make the runner a CGI responder, HTTP_* are the
 * sender's) and our config and database choices, which the runner gets
 * from its arguments and db_setting.  Hooks themselves never see it: they
 * get a clean environment of their own (hook_exec.c).
 */
static size_t runner_environment(char **out, size_t cap, char *db_setting)
{
	static const char db_prefix[] = CONFIG_ENV_PREFIX "DB=";
	static const char config_prefix[] = CONFIG_ENV_PREFIX "CONFIG=";
	size_t n = 0;
	for (char **e = environ; *e && n + 2 < cap; e++)
		if (!is_request_variable(*e) && strncmp(*e, config_prefix, strlen(config_prefix)) != 0 &&
		    strncmp(*e, db_prefix, strlen(db_prefix)) != 0)
			out[n++] = *e;
	if (db_setting != NULL)
		out[n++] = db_setting;
	out[n] = NULL;
	return n;
}

/*
 * Starts `cfimages-webhook [--config FILE] hooks run --detached` as a
 * grandchild in its own process group, at nice HOOK_RUNNER_NICE, with
 * CFIMAGES_WEBHOOK_DB naming this process's database (which --db may have
 * chosen).  It is a fresh program image: nothing of
 * this process's SQLite state (whose inode and shared-memory bookkeeping
 * would otherwise be inherited by fork and point at descriptors that are
 * not ours) or libfcgi state crosses over.
 */
void hooks_spawn_runner(const struct config *cfg, bool quiet)
{
	char *argv[10], *envp[256], exe[PATH_MAX], *db_setting = NULL;
	sigset_t none;
	ssize_t n;
	size_t argc = 0;
	pid_t a;
	int devnull, tty;

	/* Under load every slot is held by a runner still at work, which
	 * looks for due runs again before it lets its slot go: a runner
	 * started now would only find no slot (two forks and an exec, each
	 * answer or batch of answers, for nothing). */
	if (store_runner_slots_taken(cfg->db, HOOK_RUNNERS_MAX))
		return;
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
	argv[argc++] = "hooks";
	argv[argc++] = "run";
	argv[argc++] = "--detached";
	argv[argc] = NULL;
	/* The database goes in the environment, never in argv: a URI may
	 * hold a password, and anyone can read argv in ps. */
	if (asprintf(&db_setting, CONFIG_ENV_PREFIX "DB=%s", cfg->db) < 0) {
		log_error("cannot start the hook runner: out of memory");
		return;
	}
	runner_environment(envp, sizeof envp / sizeof envp[0], db_setting);

	a = fork();
	if (a < 0) {
		log_error("cannot start the hook runner: fork: %s", strerror(errno));
		free(db_setting);
		return;
	}
	if (a > 0) {
		while (waitpid(a, NULL, 0) < 0 && errno == EINTR)
			;
		free(db_setting);
		return;
	}
	/* Intermediate child: a process group of its own (out of reach of
	 * whatever signals the server's group), then the runner as its child,
	 * niced.  Not a session of its own: with the kernel's automatic
	 * scheduling groups each session weighs as much as the whole web
	 * server, and four busy runners took four fifths of the CPU from the
	 * answers.  (Only system calls here: the parent may have threads.) */
	setpgid(0, 0);
	(void)!nice(HOOK_RUNNER_NICE); /* a failure leaves it at the receiver's */
	/* No controlling terminal (a receiver started from a shell has one):
	 * a hook that opens /dev/tty fails at once instead of being stopped
	 * for reading from the background.  We lead no session, so this
	 * concerns this process alone. */
	tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty >= 0) {
		(void)ioctl(tty, TIOCNOTTY);
		close(tty);
	}
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
	close_from(3);
	execve(exe, argv, envp);
	_exit(127);
}
