/*
 * Group commit's gathering (src/group_commit.c), white box, on a real
 * SQLite database in a temporary directory: a writer whose batch could
 * grow waits while another thread is arriving (between
 * group_commit_expect and its submit or group_commit_unexpect), and stops
 * waiting as soon as that thread submits or gives up; a submit with
 * nobody arriving does not wait; the jobs of one submit share a
 * transaction.  Commits are counted with SQLite's
 * commit hook on the group's own connection, so "in one transaction" is
 * observed, not inferred from the log.
 *
 * group_commit.c is compiled into this program with a gather time of
 * 3 s instead of 1 ms: every case here ends (when the code is right) long
 * before that, so the upper bounds below hold even under valgrind on a
 * busy machine, while a writer that waits the gather time out, or does
 * not wait at all, is told apart by far more than scheduling noise.  (A
 * gather time of a second or more also checks that gather() carries whole
 * seconds into its deadline: with a tv_nsec of a second or more
 * pthread_cond_timedwait fails with EINVAL without letting the lock go.)
 */
#undef GATHER_US /* a -D given for a measurement must not shorten it here */
#define GATHER_US 3000000
#include "../../src/group_commit.c"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "config.h"
#include "store.h"
#include "store_sqlite.h" /* white box: the commit hook goes on the group's connection */
#include "testlib.h"
#include "util.h"

/* Every upper bound on a wait: two thirds of the gather time, so a
 * writer that waits the gather time out always fails it. */
#define WELL_BEFORE_GATHER_US (GATHER_US / 3 * 2)
/* How long the arriving thread holds its request once the writer waits:
 * long enough to see that the writer waited, short beside the bound. */
#define PAUSE_MS 100

static char tmpdir[] = "/tmp/test_group_commit.XXXXXX";
static char db_path[512];
static struct config cfg;
static struct group_commit *g;

/* Commits on the group's connection (the writer's thread counts them). */
static atomic_int commits;
/* The main thread's submit has returned (an arriving thread stops waiting for it). */
static atomic_bool main_returned;
/* The arriving thread has called group_commit_expect. */
static pthread_barrier_t expected;

static int count_commit(void *arg)
{
	(void)arg;
	atomic_fetch_add(&commits, 1);
	return 0; /* let it commit */
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A rejected delivery's row, tagged by its remote address (one per case). */
struct record {
	struct delivery d;
	struct store_job job;
};

static void make_record(struct record *r, const char *addr)
{
	memset(r, 0, sizeof *r);
	r->d.received_ms = time_now_ms();
	r->d.status_code = 401;
	r->d.reason = "invalid_signature";
	r->d.remote_addr = addr;
	r->job.kind = STORE_JOB_RECORD;
	r->job.d = &r->d;
	r->job.rc = -2; /* neither of the values submit sets */
}

/* Rows from addr, counted on a connection of the test's own. */
static long rows_from(const char *addr)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long n = -1;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM webhook_deliveries WHERE remote_addr = ?",
	                       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, addr, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			n = (long)sqlite3_column_int64(s, 0);
	} else {
		fprintf(stderr, "counting rows: %s\n", db ? sqlite3_errmsg(db) : "out of memory");
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

/* Whether some thread's job is queued (the group's lock taken to look). */
static bool job_queued(void)
{
	bool queued;

	pthread_mutex_lock(&g->lock);
	queued = g->head != NULL;
	pthread_mutex_unlock(&g->lock);
	return queued;
}

/* The other thread of cases 2 and 3: a request that arrives while main writes. */
struct arriver {
	bool submit; /* submit its job after the pause; else unexpect without one */
	struct record rec;
	bool ok;           /* what its submit returned */
	int64_t before_us; /* just before it submitted or unexpected */
};

static void *arrive(void *arg)
{
	struct arriver *a = arg;

	group_commit_expect(g);
	pthread_barrier_wait(&expected);
	/*
	 * The pause starts once main's job is queued (main then holds the
	 * writer role and gathers), not when main was let go: on a busy
	 * machine main may be scheduled late, and this thread's submit must
	 * not overtake it.  A writer that does not gather returns instead.
	 */
	while (!job_queued() && !atomic_load(&main_returned))
		sleep_ms(1);
	sleep_ms(PAUSE_MS);
	a->before_us = now_us();
	if (a->submit)
		a->ok = group_commit_submit(g, &a->rec.job);
	else
		group_commit_unexpect(g);
	return NULL;
}

/*
 * Runs an arriving thread a beside main's submit of main_rec, and returns
 * what that submit returned once both threads are done: *returned_us is
 * when the submit returned, *waited_us how long it took.
 */
static bool submit_beside(struct arriver *a, struct record *main_rec, int64_t *returned_us,
                          int64_t *waited_us)
{
	pthread_t t;
	int64_t start;
	bool ok;

	atomic_store(&main_returned, false);
	if (pthread_create(&t, NULL, arrive, a) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		exit(99);
	}
	pthread_barrier_wait(&expected);
	start = now_us();
	ok = group_commit_submit(g, &main_rec->job);
	*returned_us = now_us();
	*waited_us = *returned_us - start;
	atomic_store(&main_returned, true);
	pthread_join(t, NULL);
	return ok;
}

/* 1. Nobody arriving: the job is written at once, in a transaction of its own. */
static void test_alone(void)
{
	struct record r;
	int64_t start, waited;
	bool ok;

	make_record(&r, "192.0.2.1");
	atomic_store(&commits, 0);
	start = now_us();
	ok = group_commit_submit(g, &r.job);
	waited = now_us() - start;
	CHECK(ok);
	CHECK(r.job.rc == 0);
	CHECK(r.d.id > 0);
	CHECK_MSG(waited < WELL_BEFORE_GATHER_US, "alone, the submit took %lld us",
	          (long long)waited);
	CHECK_MSG(atomic_load(&commits) == 1, "%d commits", atomic_load(&commits));
	CHECK_MSG(rows_from("192.0.2.1") == 1, "%ld rows", rows_from("192.0.2.1"));
}

/* 2. Gathering: main's writer waits for the arriving thread's job, and
 * commits both in one transaction as soon as it is queued. */
static void test_gathers(void)
{
	struct arriver a = {.submit = true};
	struct record r;
	int64_t returned, waited;
	bool ok;

	make_record(&r, "192.0.2.2");
	make_record(&a.rec, "192.0.2.2");
	atomic_store(&commits, 0);
	ok = submit_beside(&a, &r, &returned, &waited);
	CHECK(ok && a.ok);
	CHECK(r.job.rc == 0 && a.rec.job.rc == 0);
	CHECK(r.d.id > 0 && a.rec.d.id > 0 && r.d.id != a.rec.d.id);
	/* Main cannot be done before the job it waited for was submitted... */
	CHECK_MSG(returned >= a.before_us,
	          "main returned %lld us before the other thread submitted",
	          (long long)(a.before_us - returned));
	/* ...and it stopped waiting then, not at the end of the gather time. */
	CHECK_MSG(waited < WELL_BEFORE_GATHER_US, "gathering took %lld us", (long long)waited);
	CHECK_MSG(atomic_load(&commits) == 1, "%d commits for the two jobs", atomic_load(&commits));
	CHECK_MSG(rows_from("192.0.2.2") == 2, "%ld rows", rows_from("192.0.2.2"));
	CHECK(g->arriving == 0 && !g->gathering && !g->writing && g->head == NULL);
}

/* 3. The arriving thread gives its request up: the wait ends then, and
 * main's job is committed alone. */
static void test_unexpect(void)
{
	struct arriver a = {.submit = false};
	struct record r;
	int64_t returned, waited;
	bool ok;

	make_record(&r, "192.0.2.3");
	atomic_store(&commits, 0);
	ok = submit_beside(&a, &r, &returned, &waited);
	CHECK(ok);
	CHECK(r.job.rc == 0);
	CHECK_MSG(returned >= a.before_us,
	          "main returned %lld us before the other thread unexpected",
	          (long long)(a.before_us - returned));
	CHECK_MSG(waited < WELL_BEFORE_GATHER_US, "the wait took %lld us", (long long)waited);
	CHECK_MSG(atomic_load(&commits) == 1, "%d commits", atomic_load(&commits));
	CHECK_MSG(rows_from("192.0.2.3") == 1, "%ld rows", rows_from("192.0.2.3"));
	CHECK(g->arriving == 0 && !g->gathering && !g->writing && g->head == NULL);
}

/* 4. Several jobs of one thread (the main thread's batch, src/fcgi.c):
 * one transaction, and each job's own result given back. */
static void test_many(void)
{
	struct record r[3];
	struct store_job jobs[3];
	bool ok;

	for (int i = 0; i < 3; i++) {
		make_record(&r[i], "192.0.2.4");
		jobs[i] = r[i].job;
	}
	atomic_store(&commits, 0);
	ok = group_commit_submit_many(g, jobs, 3);
	CHECK(ok);
	for (int i = 0; i < 3; i++)
		CHECK_MSG(jobs[i].rc == 0 && r[i].d.id > 0, "job %d: rc %d, id %lld", i, jobs[i].rc,
		          (long long)r[i].d.id);
	CHECK(r[0].d.id != r[1].d.id && r[1].d.id != r[2].d.id && r[0].d.id != r[2].d.id);
	CHECK_MSG(atomic_load(&commits) == 1, "%d commits for the three jobs",
	          atomic_load(&commits));
	CHECK_MSG(rows_from("192.0.2.4") == 3, "%ld rows", rows_from("192.0.2.4"));
	CHECK(g->queued == 0 && !g->writing && g->head == NULL);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(db_path, sizeof db_path, "%s/deliveries.db", tmpdir);
	/* Not durable: these rejected deliveries never wait for the disk anyway. */
	cfg.db = db_path;
	cfg.db_mode = 0600;
	if ((g = group_commit_new(&cfg)) == NULL || pthread_barrier_init(&expected, NULL, 2) != 0) {
		fprintf(stderr, "out of memory\n");
		return 99;
	}
	/* The group opens its store when it first writes; opened here instead
	 * (nobody else runs yet), the commit hook counts from the first case. */
	pthread_mutex_lock(&g->lock);
	if (!writer_store(g)) {
		pthread_mutex_unlock(&g->lock);
		return 99;
	}
	pthread_mutex_unlock(&g->lock);
	sqlite3_commit_hook(SQ(g->store)->db, count_commit, NULL);

	test_alone();
	test_gathers();
	test_unexpect();
	test_many();

	group_commit_free(g);
	pthread_barrier_destroy(&expected);
	if (test_failures == 0) {
		char cmd[600];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return test_done("test_group_commit");
}
