/*
 * bench/limits.sh's ceiling: a FastCGI responder that does nothing but
 * what every responder must: accept a request, read its body, answer 200.
 * Built by the benchmark (cc noop_fcgi.c -lfcgi); never installed.
 */
#include <fcgiapp.h>

int main(void)
{
	FCGX_Request req;
	char buf[4096];

	FCGX_Init();
	FCGX_InitRequest(&req, 0, 0);
	while (FCGX_Accept_r(&req) >= 0) {
		while (FCGX_GetStr(buf, sizeof buf, req.in) > 0)
			;
		FCGX_FPrintF(req.out, "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
		                      "Content-Length: 2\r\n\r\nOK");
		FCGX_Finish_r(&req);
	}
	return 0;
}
