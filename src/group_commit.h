/*
 * Group commit (cfimages-webhook(8) DATABASE): the one writer of a
 * FastCGI process.  The threads that answer requests hand their
 * deliveries' writes (struct store_job) to it; everything queued is
 * committed in one transaction (store_write_batch), and only then are the
 * answers released, so a 200 still means committed.  There is no writer
 * thread: the first thread that finds nobody writing writes the batch
 * (its own job and whatever else is queued) and wakes the others, so a
 * delivery that arrives alone waits for nobody, and under load one commit
 * (one wait for the disk) serves many deliveries.  The process has one
 * database handle, used only by whichever thread is writing.
 */
#ifndef CFW_GROUP_COMMIT_H
#define CFW_GROUP_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct group_commit;

/*
 * A writer for the database cfg names (borrowed: it must outlive the
 * group), opened on first use as a responder's handle.  NULL when out of
 * memory.
 */
struct group_commit *group_commit_new(const struct config *cfg);

/* Closes the database handle and frees g; NULL is a no-op. */
void group_commit_free(struct group_commit *g);

/*
 * Runs job in the process's next batch and returns once that batch is
 * committed (or failed): job->rc and job->outcome are then set.  Returns
 * false, with job->rc -1, when the database cannot be opened (logged).
 */
bool group_commit_submit(struct group_commit *g, struct store_job *job);

/*
 * The same for n jobs (1 to STORE_BATCH_MAX) of one thread, committed in
 * one batch: one transaction, each job in a savepoint of its own.
 */
bool group_commit_submit_many(struct group_commit *g, struct store_job *jobs, size_t n);

/*
 * The calling thread holds a request whose job it will submit (or not:
 * then it calls group_commit_unexpect once done with it).  A writer
 * about to commit waits a moment for such jobs (group_commit.c).  g may
 * be NULL (no group: a no-op).
 */
void group_commit_expect(struct group_commit *g);
void group_commit_unexpect(struct group_commit *g);

/*
 * Housekeeping after an answer, done only when nobody is writing (it is
 * skipped, never waited for, otherwise): store_idle(), and, at most every
 * due_check_ms, whether hook runs are due (*due set true when so).
 */
void group_commit_idle(struct group_commit *g, int64_t due_check_ms, bool *due);

#endif
