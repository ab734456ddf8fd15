/*
 * Executing one hook run, and proving whom a recorded process group
 * belongs to (hook_exec.c).
 */
#ifndef CFW_HOOK_EXEC_H
#define CFW_HOOK_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The last bytes of a hook's stdout+stderr that are kept (cfimages-webhook(8) HOOKS: 4 KiB). */
#define HOOK_OUTPUT_BYTES 4096
/* After TERM at the timeout, how long the group has before KILL. */
#define HOOK_KILL_GRACE_SECONDS 5
/* Retry backoff: 30 s x 2^(attempt-1), at most an hour (cfimages-webhook(8) HOOKS). */
#define HOOK_BACKOFF_BASE_SECONDS 30
#define HOOK_BACKOFF_MAX_SECONDS 3600
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
	/* Called once the process group exists, to record it (may be NULL);
	 * false: the run is no longer ours, and the group is killed at once. */
	bool (*started)(void *ctx, pid_t pgid);
	void *ctx;
};

/* How an execution ended. */
struct hook_result {
	bool started;      /* false: fork/exec setup failed before the script ran */
	bool timed_out;    /* hook_timeout passed; the group was killed */
	bool abandoned;    /* started said the run was no longer ours; the group was killed */
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

#endif
