/*
 * hooks_cache.c: the hooks found for a status are those hooks_discover()
 * finds now, whatever the cache held: a script added beside the others,
 * one added to S.d, one removed, and (after HOOKS_CACHE_MS) one whose
 * mode changed in place are all seen.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hooks_cache.h"
#include "testlib.h"

static char dir[] = "/tmp/cfw-test-hooks-cache.XXXXXX";

/* Creates dir/name as an executable (mode) script. */
static void script(const char *name, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, "#!/bin/sh\nexit 0\n", 17) == 17);
		close(fd);
	}
	CHECK(chmod(path, mode) == 0);
}

/* The names found for status, "a,b" (at most cap bytes). */
static const char *found(struct hooks_cache *c, const char *status, char *buf, size_t cap)
{
	const struct hook_list *list = NULL;
	size_t off = 0;

	buf[0] = '\0';
	CHECK(hooks_cache_discover(c, dir, status, &list) == 0);
	for (size_t i = 0; list != NULL && i < list->n; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," : "", list->items[i].name);
	return buf;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int main(void)
{
	struct hooks_cache c;
	char buf[512], path[512];

	memset(&c, 0, sizeof c);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	chmod(dir, 0755);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "");

	/* A script added to the hooks directory: seen at once (its mtime). */
	script("uploaded", 0755);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded");
	/* Another status has its own entry. */
	CHECK_STR(found(&c, "failed", buf, sizeof buf), "");

	/* S.d created, then a script added into it: seen at once each time. */
	snprintf(path, sizeof path, "%s/uploaded.d", dir);
	CHECK(mkdir(path, 0755) == 0);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded");
	script("uploaded.d/20-b", 0755);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded,uploaded.d/20-b");
	script("uploaded.d/10-a", 0755);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded,uploaded.d/10-a,uploaded.d/20-b");

	/* Removed: seen at once. */
	snprintf(path, sizeof path, "%s/uploaded.d/10-a", dir);
	CHECK(unlink(path) == 0);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded,uploaded.d/20-b");

	/* A mode changed in place (no directory changes): seen after HOOKS_CACHE_MS. */
	snprintf(path, sizeof path, "%s/uploaded.d/20-b", dir);
	CHECK(chmod(path, 0644) == 0);
	sleep_ms(HOOKS_CACHE_MS + 100);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded");

	/* The hooks directory's own mode made unsafe: refused at once (its ctime). */
	CHECK(chmod(dir, 0777) == 0);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "");
	CHECK(chmod(dir, 0755) == 0);
	CHECK_STR(found(&c, "uploaded", buf, sizeof buf), "uploaded");

	hooks_cache_free(&c);
	snprintf(path, sizeof path, "%s/uploaded.d/20-b", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/uploaded.d", dir);
	rmdir(path);
	snprintf(path, sizeof path, "%s/uploaded", dir);
	unlink(path);
	rmdir(dir);
	return test_done("test_hooks_cache");
}
