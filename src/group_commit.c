/*
 * Group commit: a queue of waiting jobs, and a writer role that one
 * thread at a time holds (see group_commit.h).  The role is taken by a
 * thread whose job is queued when nobody holds it; the thread writes one
 * batch (at most STORE_BATCH_MAX jobs, oldest first), marks those jobs
 * done, gives the role up and wakes the threads of those jobs (they
 * return their answers) and the thread of the oldest job still queued
 * (it takes the role for the next batch): each thread is woken only when
 * it has something to do.  The queue is bounded by the number of threads that
 * submit (each waits for its own job).
 *
 * A writer whose batch could grow waits a moment before it starts: while
 * other threads hold requests they have not submitted yet (arriving: from
 * group_commit_expect to their submit), it waits until they have, the
 * batch is full, or GATHER_US has passed, whichever comes first.  A
 * transaction costs about the same for one delivery as for many, so
 * under load this turns many one-delivery commits into a few larger
 * ones; a delivery that arrives alone (nobody arriving) waits for nobody.
 *
 * A durable batch is committed without waiting for the disk where the
 * store allows it (store_sync): the thread gives the role up first, then
 * waits for the disk, then wakes its batch's threads.  The next batch is
 * written meanwhile, and the waits of several batches and processes
 * overlap: one flush of the log serves every commit made before it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "group_commit.h"
#include "outbox.h"
#include "util.h"

/* Longest a writer waits for the jobs of arriving threads (a -D may set
 * it for a measurement). */
#ifndef GATHER_US
#define GATHER_US 1000
#endif

/* The jobs of one submit, on its submitter's stack. */
struct waiter {
	struct store_job *jobs;
	size_t n_jobs;
	pthread_cond_t wake; /* its job is done, or it is to write the next batch */
	bool done;           /* its batch is over */
	bool no_store;       /* the database could not be opened */
	struct waiter *next;
};

struct group_commit {
	pthread_mutex_t lock;
	struct waiter *head, *tail;     /* queued submits, oldest first */
	size_t queued;                  /* their jobs */
	int arriving;                   /* threads between group_commit_expect and their submit */
	bool gathering;                 /* the writer (head's thread) waits for them */
	bool writing;                   /* a thread holds the writer role */
	const struct config *cfg;       /* borrowed */
	struct store *store;            /* opened by the first writer, used only by the writer */
	int64_t last_due_check_ms;      /* when due hook runs were last looked for */
};

/* Whether this thread counts in its group's arriving. */
static _Thread_local bool expecting;

/* Condition variables of waiters time their waits on the monotonic clock. */
static pthread_condattr_t wake_attr;
static pthread_once_t wake_attr_once = PTHREAD_ONCE_INIT;

static void wake_attr_init(void)
{
	pthread_condattr_init(&wake_attr);
	pthread_condattr_setclock(&wake_attr, CLOCK_MONOTONIC);
}

struct group_commit *group_commit_new(const struct config *cfg)
{
	struct group_commit *g = calloc(1, sizeof *g);

	if (g == NULL)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	pthread_once(&wake_attr_once, wake_attr_init);
	g->cfg = cfg;
	return g;
}

void group_commit_free(struct group_commit *g)
{
	if (g == NULL)
		return;
	store_close(g->store);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Opens the store on first use, by the writer; false (logged) when it cannot be. */
static bool writer_store(struct group_commit *g)
{
	char err[512];
	struct store_options opts = {
	    .path = g->cfg->db,
	    .db_mode = g->cfg->db_mode,
	    .durable = g->cfg->durability_full,
	    .create = true,
	    .responder = true,
	};

	if (g->store == NULL && (g->store = store_open(&opts, err, sizeof err)) == NULL)
		log_error("database: %s", err);
	return g->store != NULL;
}

/* Gives the writer role up (the lock held) to the oldest queued job's thread. */
static void give_role_up(struct group_commit *g)
{
	g->writing = false;
	if (g->head != NULL)
		pthread_cond_signal(&g->head->wake);
}

/*
 * The writer's turn: takes the oldest queued submits (the lock held on
 * entry and on return, released while writing), as many as fit in one
 * batch (the head always does), writes their jobs in one batch and marks
 * them done.
 */
static void write_batch(struct group_commit *g)
{
	struct store_job jobs[STORE_BATCH_MAX];
	struct waiter *taken[STORE_BATCH_MAX];
	size_t n = 0, n_taken = 0;
	bool opened, sync_after = false;

	while (g->head != NULL && n + g->head->n_jobs <= STORE_BATCH_MAX) {
		struct waiter *w = g->head;
		for (size_t k = 0; k < w->n_jobs; k++) {
			jobs[n] = w->jobs[k];
			jobs[n].may_defer_sync = true;
			n++;
		}
		taken[n_taken++] = w;
		g->head = w->next;
		g->queued -= w->n_jobs;
	}
	if (g->head == NULL)
		g->tail = NULL;
	g->writing = true;
	pthread_mutex_unlock(&g->lock);

	opened = writer_store(g);
	if (opened) {
		store_write_batch(g->store, jobs, n);
		if (n > 1)
			log_debug("group commit: %zu deliveries in one transaction", n);
		for (size_t i = 0; i < n; i++)
			sync_after = sync_after || jobs[i].sync_after;
	}
	if (sync_after) {
		/* The next batch need not wait for this one's disk. */
		pthread_mutex_lock(&g->lock);
		give_role_up(g);
		pthread_mutex_unlock(&g->lock);
		if (store_sync(g->store) != 0) {
			/* Committed, but not known to be on disk: no 200 may say it
			 * is; the sender's retry is then a duplicate or a replay. */
			for (size_t i = 0; i < n; i++)
				if (jobs[i].kind == STORE_JOB_APPLY && jobs[i].rc == 0) {
					jobs[i].rc = -1;
					jobs[i].outcome = STORE_ERROR;
				}
		}
	}

	pthread_mutex_lock(&g->lock);
	n = 0;
	for (size_t i = 0; i < n_taken; i++) {
		struct waiter *w = taken[i];
		for (size_t k = 0; k < w->n_jobs; k++, n++) {
			if (opened) {
				w->jobs[k] = jobs[n];
			} else {
				w->jobs[k].rc = -1;
				w->jobs[k].outcome = STORE_ERROR;
			}
		}
		w->no_store = !opened;
		w->done = true;
		pthread_cond_signal(&w->wake);
	}
	if (!sync_after)
		give_role_up(g);
}

/* The lock held: this thread's request no longer counts as arriving;
 * the gathering writer is told when it need wait no longer. */
static void unexpect_locked(struct group_commit *g)
{
	if (expecting) {
		expecting = false;
		g->arriving--;
	}
	if (g->gathering && (g->arriving <= 0 || g->queued >= STORE_BATCH_MAX))
		pthread_cond_signal(&g->head->wake);
}

void group_commit_expect(struct group_commit *g)
{
	if (g == NULL || expecting)
		return;
	pthread_mutex_lock(&g->lock);
	g->arriving++;
	expecting = true;
	pthread_mutex_unlock(&g->lock);
}

void group_commit_unexpect(struct group_commit *g)
{
	if (g == NULL || !expecting)
		return;
	pthread_mutex_lock(&g->lock);
	unexpect_locked(g);
	pthread_mutex_unlock(&g->lock);
}

/*
 * The writer's wait for the jobs of arriving threads (the lock held, w
 * the head): at most GATHER_US, holding the role so that they queue.
 * None when nobody is arriving or the batch is full already.
 */
static void gather(struct group_commit *g, struct waiter *w)
{
	struct timespec until;

	if (g->arriving <= 0 || g->queued >= STORE_BATCH_MAX)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += GATHER_US / 1000000;
	until.tv_nsec += (GATHER_US % 1000000) * 1000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	g->writing = true;
	g->gathering = true;
	while (g->arriving > 0 && g->queued < STORE_BATCH_MAX)
		if (pthread_cond_timedwait(&w->wake, &g->lock, &until) == ETIMEDOUT)
			break;
	g->gathering = false;
	g->writing = false;
}

bool group_commit_submit(struct group_commit *g, struct store_job *job)
{
	return group_commit_submit_many(g, job, 1);
}

bool group_commit_submit_many(struct group_commit *g, struct store_job *jobs, size_t n)
{
	struct waiter w = {.jobs = jobs, .n_jobs = n};

	pthread_cond_init(&w.wake, &wake_attr);
	pthread_mutex_lock(&g->lock);
	if (g->tail != NULL)
		g->tail->next = &w;
	else
		g->head = &w;
	g->tail = &w;
	g->queued += n;
	unexpect_locked(g);
	while (!w.done) {
		/* The role goes to the oldest job's thread (it may be this one). */
		if (!g->writing && g->head == &w) {
			gather(g, &w);
			write_batch(g); /* w is the head: its jobs are in this batch */
		} else {
			pthread_cond_wait(&w.wake, &g->lock);
		}
	}
	pthread_mutex_unlock(&g->lock);
	pthread_cond_destroy(&w.wake);
	return !w.no_store;
}

void group_commit_idle(struct group_commit *g, int64_t due_check_ms, bool *due)
{
	int64_t now = time_now_ms();
	bool check_due;

	pthread_mutex_lock(&g->lock);
	if (g->writing || g->store == NULL || g->head != NULL) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	g->writing = true;
	check_due = now - g->last_due_check_ms >= due_check_ms;
	if (check_due)
		g->last_due_check_ms = now;
	pthread_mutex_unlock(&g->lock);

	store_idle(g->store);
	if (check_due && outbox_any_due(g->store, now, due) < 0)
		*due = false;

	pthread_mutex_lock(&g->lock);
	give_role_up(g);
	pthread_mutex_unlock(&g->lock);
}
