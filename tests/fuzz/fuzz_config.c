/*
 * libFuzzer target for configuration lines: the input is a config file;
 * loading it must never crash, whatever it holds, and a successful load
 * must give values inside their documented bounds.  The input goes through
 * one file in $TMPDIR (else /tmp), removed after each run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[4096];
	struct config cfg;
	char err[CONFIG_ERROR_BYTES];
	char *env[] = {NULL};
	FILE *f;
	int rc;

	if (path[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(path, sizeof path, "%s/cfw-fuzz-config-%ld.conf",
		         tmp && tmp[0] ? tmp : "/tmp", (long)getpid());
		log_set_level(LOG_LEVEL_ERROR);
	}
	f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	rc = config_load(&cfg, path, env, NULL, err, sizeof err);
	/* Removed at once: libFuzzer ends the process without a hook of
	 * ours, and nothing may be left behind (run.sh checks). */
	unlink(path);
	if (rc == 0) {
		if (cfg.hook_timeout_seconds < 1 || cfg.hook_timeout_seconds > HOOK_TIMEOUT_SECONDS_MAX ||
		    cfg.max_body_bytes < 1 || cfg.max_body_bytes > MAX_BODY_BYTES_MAX ||
		    (cfg.db_mode & 0600) != 0600 || cfg.n_allow > CONFIG_MAX_CIDRS)
			abort();
		for (size_t i = 0; i < cfg.n_allow; i++)
			(void)config_allows(&cfg, "10.0.0.1");
	}
	config_free(&cfg);
	return 0;
}
