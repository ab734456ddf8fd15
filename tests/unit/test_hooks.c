/*
 * hooks.c: the retry backoff, the path rules as values, discovery of
 * scripts and NAME.webhook actions in their order, and the proof that
 * a recorded process group is the hook started for a run before a stale
 * run's group may be killed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hook_exec.h"
#include "hook_runner.h"
#include "hooks.h"
#include "testlib.h"

#define RUN_ID 7
#define RUN_ENV "CFIMAGES_HOOK_RUN_ID=7"
#define DB "/srv/images/webhook.db"
#define DB_ENV "CFIMAGES_DB=" DB
#define OWN_GROUP_ARG "--own-group"

static void test_backoff(void)
{
	static const int64_t want[] = {30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CHECK_MSG(hook_backoff_seconds((int64_t)i + 1) == want[i], "attempt %zu: %lld",
		          i + 1, (long long)hook_backoff_seconds((int64_t)i + 1));
	CHECK(hook_backoff_seconds(64) == 3600);
	CHECK(hook_backoff_seconds(1000000) == 3600);
	CHECK(hook_backoff_seconds(INT64_MAX) == 3600);
}

static void test_path_problems(void)
{
	char dir[] = "/tmp/cfw-test-hooks.XXXXXX", path[256], link_path[256];
	const char *texts[7];

	if (mkdtemp(dir) == NULL) {
		CHECK_MSG(false, "mkdtemp: %s", strerror(errno));
		return;
	}
	chmod(dir, 0755);
	snprintf(path, sizeof path, "%s/hook", dir);
	snprintf(link_path, sizeof link_path, "%s/link", dir);
	CHECK(hooks_path_problem(path, false) == HOOK_PATH_MISSING);
	CHECK(hooks_path_problem(dir, true) == HOOK_PATH_OK);
	CHECK(hooks_path_problem(dir, false) == HOOK_PATH_NOT_REGULAR);
	fclose(fopen(path, "w"));
	chmod(path, 0755);
	CHECK(hooks_path_problem(path, false) == HOOK_PATH_OK);
	CHECK(hooks_path_problem(path, true) == HOOK_PATH_NOT_DIRECTORY);
	CHECK(symlink(path, link_path) == 0);
	CHECK(hooks_path_problem(link_path, false) == HOOK_PATH_OK); /* the target is judged */
	chmod(path, 0775);
	CHECK(hooks_path_problem(path, false) == HOOK_PATH_WRITABLE);
	CHECK(hooks_path_problem(link_path, false) == HOOK_PATH_WRITABLE);
	chmod(path, 0757);
	CHECK(hooks_path_problem(path, false) == HOOK_PATH_WRITABLE);
	chmod(path, 0755);
	if (geteuid() == 0) {
		CHECK(chown(path, 12345, 0) == 0);
		CHECK(hooks_path_problem(path, false) == HOOK_PATH_FOREIGN_OWNER);
	}
	texts[0] = hooks_path_problem_text(HOOK_PATH_OK);
	texts[1] = hooks_path_problem_text(HOOK_PATH_MISSING);
	texts[2] = hooks_path_problem_text(HOOK_PATH_UNEXAMINABLE);
	texts[3] = hooks_path_problem_text(HOOK_PATH_NOT_DIRECTORY);
	texts[4] = hooks_path_problem_text(HOOK_PATH_NOT_REGULAR);
	texts[5] = hooks_path_problem_text(HOOK_PATH_FOREIGN_OWNER);
	texts[6] = hooks_path_problem_text(HOOK_PATH_WRITABLE);
	CHECK_STR(texts[0], "");
	for (int i = 1; i < 7; i++) {
		CHECK_MSG(texts[i] && texts[i][0] != '\0', "text of problem %d", i);
		for (int j = 1; j < i; j++)
			CHECK_MSG(strcmp(texts[i], texts[j]) != 0, "problems %d and %d read alike",
			          i, j);
	}
	unlink(link_path);
	unlink(path);
	rmdir(dir);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * Starts `sleep 30` leading its own process group (and, with session, its
 * own session, as a hook's `setsid worker` would) with the environment
 * envp, and waits until it has executed (its environment is then the one
 * given).  Returns its PID, or -1.
 */
static pid_t start_group_in(char *const envp[], bool session)
{
	char *const argv[] = {"sleep", "30", NULL};
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (session)
			setsid();
		else
			setpgid(0, 0);
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	if (!session)
		setpgid(pid, pid);
	for (int i = 0; i < 500; i++) {
		char path[64], comm[64] = "";
		FILE *f;
		snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(comm, sizeof comm, f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		if (strcmp(comm, "sleep\n") == 0)
			return pid;
		pause_ms(10);
	}
	return pid;
}

static pid_t start_group(char *const envp[])
{
	return start_group_in(envp, false);
}

static void stop_group(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/*
 * In a child that leads its own group and carries the run's environment:
 * everything about it is the proof but for one rule, that our own group is
 * never ours to kill.  Exits 0 when the rule holds.
 */
static int own_group_main(void)
{
	pid_t me = getpid();
	if (getpgrp() != me) {
		fprintf(stderr, "test_hooks " OWN_GROUP_ARG ": not a group leader\n");
		return 2;
	}
	return hooks_group_of_run(me, process_start_time(me), RUN_ID, DB) == HOOK_GROUP_NOT_OURS
	           ? 0
	           : 1;
}

static void test_own_group(const char *self)
{
	char *const argv[] = {(char *)self, OWN_GROUP_ARG, NULL};
	char *const envp[] = {RUN_ENV, DB_ENV, NULL};
	int status = -1;
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		execve(self, argv, envp);
		_exit(127);
	}
	CHECK(pid > 0);
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "our own process group counted as a hook's (status %d)", status);
}

static void test_group_proof(const char *self)
{
	char *const ours[] = {"PATH=/bin", RUN_ENV, DB_ENV, NULL};
	char *const other_run[] = {"CFIMAGES_HOOK_RUN_ID=70", DB_ENV, NULL};
	char *const no_db[] = {RUN_ENV, NULL};
	char *const prefix_db[] = {RUN_ENV, DB_ENV "-wal", NULL};
	char *const nothing[] = {NULL};
	pid_t pid;
	int64_t start;

	/* Never pgid 1 (kill(-1) reaches every process), 0 or below. */
	CHECK(hooks_group_of_run(1, process_start_time(1), RUN_ID, DB) == HOOK_GROUP_NOT_OURS);
	CHECK(hooks_group_of_run(0, 0, RUN_ID, DB) == HOOK_GROUP_NOT_OURS);
	CHECK(hooks_group_of_run(-1, 0, RUN_ID, DB) == HOOK_GROUP_NOT_OURS);
	CHECK(hooks_group_of_run(-12345, 0, RUN_ID, DB) == HOOK_GROUP_NOT_OURS);
	CHECK(hooks_group_of_run((int64_t)1 << 40, 0, RUN_ID, DB) == HOOK_GROUP_NOT_OURS);
	CHECK(hooks_group_of_run(getpgrp(), process_start_time(getpgrp()), RUN_ID, DB) ==
	      HOOK_GROUP_NOT_OURS);

	pid = start_group(ours);
	CHECK(pid > 0);
	if (pid > 0) {
		start = process_start_time(pid);
		CHECK(start > 0);
		CHECK(hooks_group_of_run(pid, start, RUN_ID, DB) == HOOK_GROUP_OURS);
		CHECK(hooks_group_of_run(pid, start + 1, RUN_ID, DB) == HOOK_GROUP_NOT_OURS);
		CHECK(hooks_group_of_run(pid, start, RUN_ID + 1, DB) == HOOK_GROUP_NOT_OURS);
		CHECK(hooks_group_of_run(pid, start, 70, DB) == HOOK_GROUP_NOT_OURS);
		CHECK(hooks_group_of_run(pid, start, RUN_ID, DB "x") == HOOK_GROUP_NOT_OURS);
		CHECK(hooks_group_of_run(pid, start, RUN_ID, "/srv/images/webhook") ==
		      HOOK_GROUP_NOT_OURS);
		stop_group(pid);
		CHECK(hooks_group_of_run(pid, start, RUN_ID, DB) == HOOK_GROUP_GONE);
	}
	char *const *not_ours[] = {other_run, no_db, prefix_db, nothing};
	for (size_t i = 0; i < sizeof not_ours / sizeof not_ours[0]; i++) {
		pid = start_group(not_ours[i]);
		CHECK(pid > 0);
		if (pid <= 0)
			continue;
		CHECK_MSG(hooks_group_of_run(pid, process_start_time(pid), RUN_ID, DB) ==
		              HOOK_GROUP_NOT_OURS,
		          "environment %zu taken as proof", i);
		stop_group(pid);
	}
	/* A session leader with the run's environment: something the hook
	 * started with setsid, not the hook. */
	pid = start_group_in(ours, true);
	CHECK(pid > 0);
	if (pid > 0) {
		CHECK_MSG(hooks_group_of_run(pid, process_start_time(pid), RUN_ID, DB) ==
		              HOOK_GROUP_NOT_OURS,
		          "a session leader taken as the run's hook");
		stop_group(pid);
	}
	test_own_group(self);
}

/* Creates dir/name with mode; false on failure. */
static bool make_file(const char *dir, const char *name, mode_t mode)
{
	char path[512];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return false;
	fputs("#!/bin/sh\n", f);
	fclose(f);
	return chmod(path, mode) == 0;
}

/*
 * Discovery (cfimages-webhook(8) HOOKS, ACTIONS): STATUS, STATUS.webhook,
 * then STATUS.d/ in name order; an action needs no execute bit but the
 * same ownership and mode as a script; a script needs its execute bit.
 */
static void test_discover_actions(void)
{
	char dir[] = "/tmp/cfw-test-discover.XXXXXX", sub[512];
	static const char *const want[] = {"uploaded", "uploaded.webhook", "uploaded.d/10-a",
	                                   "uploaded.d/20-b.webhook", "uploaded.d/25-e.webhook"};
	struct hook_list list;
	size_t n = sizeof want / sizeof want[0];

	if (mkdtemp(dir) == NULL) {
		CHECK_MSG(false, "mkdtemp: %s", strerror(errno));
		return;
	}
	chmod(dir, 0755);
	snprintf(sub, sizeof sub, "%s/uploaded.d", dir);
	CHECK(mkdir(sub, 0755) == 0);
	CHECK(make_file(dir, "uploaded", 0755));
	CHECK(make_file(dir, "uploaded.webhook", 0644));
	CHECK(make_file(dir, "failed.webhook", 0644)); /* another status */
	CHECK(make_file(sub, "10-a", 0755));
	CHECK(make_file(sub, "20-b.webhook", 0600));
	CHECK(make_file(sub, "25-e.webhook", 0755)); /* executable: still an action */
	CHECK(make_file(sub, "30-c", 0644));          /* a script without x: skipped */
	CHECK(make_file(sub, "40-d.webhook", 0664));  /* group-writable: refused */
	CHECK(make_file(sub, "50-f.webhook~", 0644)); /* an editor's backup */
	CHECK(make_file(sub, "60-notify.webhook.example", 0644)); /* a sample: neither */
	CHECK(hooks_discover(dir, "uploaded", &list) == 0);
	CHECK_MSG(list.n == n, "%zu hooks", list.n);
	for (size_t i = 0; i < n && i < list.n; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, want[i]);
		CHECK_STR(list.items[i].name, want[i]);
		CHECK_STR(list.items[i].path, path);
	}
	hook_list_free(&list);
	{
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		CHECK(system(cmd) == 0);
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], OWN_GROUP_ARG) == 0)
		return own_group_main();
	test_backoff();
	test_path_problems();
	test_discover_actions();
	test_group_proof(argv[0]);
	return test_done("test_hooks");
}
