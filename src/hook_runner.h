/*
 * The outbox runner (hook_runner.c): executes due hook runs, detached
 * after an answer or from `hooks run`.
 */
#ifndef CFW_HOOK_RUNNER_H
#define CFW_HOOK_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Hook runners allowed at once per database (detached processes). */
#define HOOK_RUNNERS_MAX 4
/* How much lower a detached runner's (and its hooks') CPU priority is
 * than the receiver's: answers go first when the CPU is busy. */
#define HOOK_RUNNER_NICE 10
/* How long a detached runner waits for a retry that falls due soon. */
#define HOOK_RUNNER_LINGER_SECONDS 300
/* How long a runner keeps trying to record a run's outcome. */
#define HOOK_OUTCOME_RETRY_S 300
/* Longest pause of a runner that finds runs due but can run none. */
#define HOOK_STUCK_PAUSE_MAX_S 30

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
 * zombies.  The runner is this program executed afresh (double fork, a
 * process group of its own without a controlling terminal, nice
 * HOOK_RUNNER_NICE, `hooks run --detached`), so it shares no state with
 * the caller.
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

#endif
