/*
 * What the C libraries do not give us as we need it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

/* Without /proc and close_range, the descriptors tried above lowfd. */
#define CLOSEFROM_SCAN_MAX 65536

/* struct linux_dirent64, as getdents64(2) fills it. */
struct dirent64_record {
	unsigned long long d_ino;
	long long d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * close_from's second way: the entries of /proc/self/fd, read with
 * getdents64 into a stack buffer (no malloc).  False when /proc could not
 * be read to its end.
 */
bool close_from_proc(int lowfd)
{
	char buf[4096];
	long n;
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0)
		return false;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64_record *d = (struct dirent64_record *)(buf + off);
			int fd = 0;
			const char *p = d->d_name;
			for (; *p >= '0' && *p <= '9'; p++)
				fd = fd * 10 + (*p - '0');
			if (*p == '\0' && p != d->d_name && fd >= lowfd && fd != dir)
				close(fd);
			off += d->d_reclen;
		}
	}
	close(dir);
	return n == 0;
}

/* close_from's last way: every number up to the descriptor limit (at most
 * CLOSEFROM_SCAN_MAX: an empty chroot has no /proc). */
void close_from_each(int lowfd)
{
	struct rlimit rl;
	long max = CLOSEFROM_SCAN_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (long fd = lowfd; fd < max; fd++)
		close((int)fd);
}

/*
 * Closes every descriptor >= lowfd.  Called between vfork and exec of a
 * threaded process, so only system calls: close_range(2) (Linux 5.9),
 * else the entries of /proc/self/fd, else every number up to the
 * descriptor limit.  Not the C library's closefrom(): musl has none, and
 * glibc's aborts the process when a kernel older than 5.9 meets a chroot
 * without /proc, which a shared host may well be.
 */
void close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	if (!close_from_proc(lowfd))
		close_from_each(lowfd);
}
