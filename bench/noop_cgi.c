/*
 * bench/limits.sh's CGI reference: a CGI program that reads its body
 * (CONTENT_LENGTH bytes of stdin) and answers 200.  Built by the
 * benchmark (cc noop_cgi.c); never installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	const char *cl = getenv("CONTENT_LENGTH");
	long want = cl ? atol(cl) : 0;
	char buf[4096];

	while (want > 0) {
		ssize_t n = read(0, buf, want < (long)sizeof buf ? (size_t)want : sizeof buf);
		if (n <= 0)
			break;
		want -= n;
	}
	fputs("Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
	      "Content-Length: 2\r\n\r\nOK",
	      stdout);
	return 0;
}
