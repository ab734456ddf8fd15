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
 * A durable batch is committed without waiting for the disk where the
 * store allows it (store_sync): the thread gives the role up first, then
 * waits for the disk, then wakes its batch's threads.  The next batch is
 * written meanwhile, and the waits of several batches and processes
 * overlap: one flush of the log serves every commit made before it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "group_commit.h"
#include "outbox.h"
#include "util.h"

/* One submitted job, on its submitter's stack. */
struct waiter {
	struct store_job *job;
	pthread_cond_t wake; /* its job is done, or it is to write the next batch */
	bool done;           /* its batch is over */
	bool no_store;       /* the database could not be opened */
	struct waiter *next;
};

struct group_commit {
	pthread_mutex_t lock;
	struct waiter *head, *tail;     /* queued jobs, oldest first */
	bool writing;                   /* a thread holds the writer role */
	const struct config *cfg;       /* borrowed */
	struct store *store;            /* opened by the first writer, used only by the writer */
	int64_t last_due_check_ms;      /* when due hook runs were last looked for */
};

struct group_commit *group_commit_new(const struct config *cfg)
{
	struct group_commit *g = calloc(1, sizeof *g);

	if (g == NULL)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
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
 * The writer's turn: takes the oldest queued jobs (the lock held on entry
 * and on return, released while writing), writes them in one batch and
 * marks them done.
 */
static void write_batch(struct group_commit *g)
{
	struct store_job jobs[STORE_BATCH_MAX];
	struct waiter *taken[STORE_BATCH_MAX];
	size_t n = 0;
	bool opened, sync_after = false;

	while (g->head != NULL && n < STORE_BATCH_MAX) {
		taken[n] = g->head;
		jobs[n] = *g->head->job;
		jobs[n].may_defer_sync = true;
		g->head = g->head->next;
		n++;
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
	for (size_t i = 0; i < n; i++) {
		if (opened) {
			*taken[i]->job = jobs[i];
		} else {
			taken[i]->job->rc = -1;
			taken[i]->job->outcome = STORE_ERROR;
			taken[i]->no_store = true;
		}
		taken[i]->done = true;
		pthread_cond_signal(&taken[i]->wake);
	}
	if (!sync_after)
		give_role_up(g);
}

bool group_commit_submit(struct group_commit *g, struct store_job *job)
{
	struct waiter w = {.job = job};

	pthread_cond_init(&w.wake, NULL);
	pthread_mutex_lock(&g->lock);
	if (g->tail != NULL)
		g->tail->next = &w;
	else
		g->head = &w;
	g->tail = &w;
	while (!w.done) {
		/* The role goes to the oldest job's thread (it may be this one). */
		if (!g->writing && g->head == &w)
			write_batch(g);
		else
			pthread_cond_wait(&w.wake, &g->lock);
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
