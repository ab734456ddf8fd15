/*
 * bench/limits.sh's storage limit: SQLite's own commit rate on this disk.
 *
 *   sqlite_rate DB FULL|NORMAL SECONDS
 *
 * One connection, WAL, the given synchronous level; for SECONDS it commits
 * transactions of two one-row INSERTs (a delivery row and a log row, the
 * least a receiver that records deliveries does) with statements prepared
 * once, and prints the transactions per second.  Built by the benchmark
 * (cc sqlite_rate.c -lsqlite3); never installed.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *a, *b;
	char pragma[64];
	double start, seconds;
	long n = 0;

	if (argc != 4)
		return 2;
	seconds = atof(argv[3]);
	if (sqlite3_open(argv[1], &db) != SQLITE_OK)
		return 1;
	snprintf(pragma, sizeof pragma, "PRAGMA synchronous = %s", argv[2]);
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db,
	                 "CREATE TABLE IF NOT EXISTS d (id INTEGER PRIMARY KEY, t TEXT, c INTEGER);"
	                 "CREATE TABLE IF NOT EXISTS l (id INTEGER PRIMARY KEY, t TEXT, data TEXT);",
	                 NULL, NULL, NULL) != SQLITE_OK)
		return 1;
	sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
	sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO d (t, c) VALUES ('2024-05-01T12:00:00.000Z', 200)", -1,
	                   &a, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO l (t, data) VALUES ('2024-05-01T12:00:00.000Z',"
	                       " '{\"id\":\"bench-image\",\"uploaded\":\"2024-05-01T12:00:00.000Z\"}')",
	                   -1, &b, NULL);
	start = now();
	while (now() - start < seconds) {
		sqlite3_stmt *s[4] = {begin, a, b, commit};
		for (int i = 0; i < 4; i++) {
			if (sqlite3_step(s[i]) != SQLITE_DONE)
				return 1;
			sqlite3_reset(s[i]);
		}
		n++;
	}
	printf("%.0f\n", n / (now() - start));
	sqlite3_close_v2(db);
	return 0;
}
