/*
 * Hook scripts (cfimages-webhook(8) HOOKS): discovery of the scripts for a status.
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

/* The last bytes of a hook's stdout+stderr that are kept (cfimages-webhook(8) HOOKS: 4 KiB). */
#define HOOK_OUTPUT_BYTES 4096
/* After TERM at the timeout, how long the group has before KILL. */
#define HOOK_KILL_GRACE_SECONDS 5
/* Retry backoff: 30 s x 2^(attempt-1), at most an hour (cfimages-webhook(8) HOOKS). */
#define HOOK_BACKOFF_BASE_SECONDS 30
#define HOOK_BACKOFF_MAX_SECONDS 3600
/* Hook runners allowed at once per database (detached processes). */
#define HOOK_RUNNERS_MAX 4
/* How long a detached runner waits for a retry that falls due soon. */
#define HOOK_RUNNER_LINGER_SECONDS 300
/* The PATH a hook gets. */
#define HOOK_PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"

/* One execution of a hook script. */
struct hook_exec {
	const char *path;            /* the script */
	const char *hooks_dir;       /* its working directory */
	const char *image_id;        /* argv[1], CFIMAGES_IMAGE_ID */
	const char *status;          /* argv[2], CFIMAGES_STATUS */
	const char *previous_status; /* CFIMAGES_PREVIOUS_STATUS */
	const char *event;           /* CFIMAGES_EVENT */
	const char *db_path;         /* CFIMAGES_DB */
	int64_t run_id;              /* CFIMAGES_HOOK_RUN_ID */
	int64_t attempt;             /* CFIMAGES_HOOK_ATTEMPT */
	const void *input;           /* stdin: the delivery's body */
	size_t input_len;
	int64_t timeout_seconds;     /* hook_timeout */
	/* Called once the process group exists, to record it (may be NULL). */
	void (*started)(void *ctx, pid_t pgid);
	void *ctx;
};

/* How an execution ended. */
struct hook_result {
	bool started;      /* false: fork/exec setup failed before the script ran */
	bool timed_out;    /* hook_timeout passed; the group was killed */
	int exit_code;     /* exit status, or -N for death by signal N */
	char output[HOOK_OUTPUT_BYTES + 256]; /* the tail of stdout+stderr (+ our notes) */
	size_t output_len;
};

/*
 * Runs one hook to completion (or to its timeout) and waits for it:
 * execve(path, [path, image_id, status], clean environment), stdin from an
 * anonymous file holding the input, stdout and stderr into one pipe whose
 * last HOOK_OUTPUT_BYTES are kept, signal dispositions reset, its own
 * process group, working directory hooks_dir, no other descriptors.  At
 * the timeout the whole group gets TERM, then KILL after the grace
 * period.  Returns 0 (see *r), -1 when it could not be started.
 */
int hook_execute(const struct hook_exec *x, struct hook_result *r);

/* Seconds before retry number attempt + 1, after attempt failed. */
int64_t hook_backoff_seconds(int64_t attempt);

/*
 * Start time of a process (field 22 of /proc/PID/stat, clock ticks since
 * boot), or -1 when there is no such process.  Used to make sure a recorded
 * process group is still the one we started before killing it.
 */
int64_t process_start_time(pid_t pid);

/* Whom a recorded process group belongs to, as far as can be proved. */
enum hook_group {
	HOOK_GROUP_OURS,     /* the hook we started for the run: ours to kill */
	HOOK_GROUP_GONE,     /* no process has that PID any more */
	HOOK_GROUP_NOT_OURS, /* someone else's, or it cannot be told: never signalled */
};

/*
 * Whether process group pgid, recorded with leader start time pg_start, is
 * the hook this program started for run run_id of the database db_path
 * (absolute, as given to the hook in CFIMAGES_DB).  The row it comes from
 * may have been written by anyone who can write the database, and a start
 * time is public (/proc/PID/stat), so the proof is what they cannot
 * forge: the group leader runs as this user, still leads that group, has
 * that start time, and its environment (/proc/PID/environ, readable only
 * by its owner) holds CFIMAGES_HOOK_RUN_ID and CFIMAGES_DB as
 * hook_execute set them.  pgid 1 or less and our own group are never
 * ours.  HOOK_GROUP_NOT_OURS whenever in doubt.
 */
enum hook_group hooks_group_of_run(int64_t pgid, int64_t pg_start, int64_t run_id,
                                   const char *db_path);

struct config;

/*
 * The lease a runner takes with a run: hook_timeout + the kill grace + a
 * slack.  A run still running after it belongs to a runner that died.
 */
int64_t hooks_lease_ms(const struct config *cfg);

/* This host's name, as hook_runs.host records it ("" when unknown). */
void hooks_host_name(char *buf, size_t cap);

/*
 * The outbox runner: reclaims runs left behind by dead processes, then
 * claims and executes due runs one at a time until none is due.  With
 * linger, it then waits for a retry due within HOOK_RUNNER_LINGER_SECONDS.
 * Returns the number of runs executed, or -1 on a database error.
 */
int hooks_run_due(struct store *st, const struct config *cfg, bool linger);

/*
 * Starts a detached runner and returns at once, having reaped the
 * intermediate child: the caller never waits for a hook and accumulates no
 * zombies.  The runner is this program executed afresh (double fork,
 * setsid, `hooks run --detached`), so it shares no state with the caller.
 * With quiet, its fds 0-2 are /dev/null (CGI: the server waits for EOF on
 * them); otherwise stderr stays the server's error log.
 */
void hooks_spawn_runner(const struct config *cfg, bool quiet);

/*
 * The detached runner (`hooks run --detached`): takes one of
 * HOOK_RUNNERS_MAX slots per database (or leaves the work to the runners
 * holding them), runs due runs with linger, and before exiting looks once
 * more so no run queued meanwhile is stranded.
 */
void hooks_runner_main(const struct config *cfg);

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
