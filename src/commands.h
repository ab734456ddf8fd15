/*
 * The operator commands of cfimages-webhook(8) COMMANDS.
 */
#ifndef CFW_COMMANDS_H
#define CFW_COMMANDS_H

#include <stdio.h>

/* Options given before the command. */
struct cli {
	const char *config_path; /* --config FILE */
	const char *db_path;     /* --db PATH: overrides the configured database */
	const char *exe_dir;     /* directory of the executable */
};

/* Prints the usage text. */
void commands_usage(FILE *out);

/*
 * Runs argv[0] (the command) with its arguments.  Returns the exit status:
 * 0 success, 1 failure (reported on stderr as "cfimages-webhook: WHAT:
 * WHY"), 2 usage.
 */
int commands_run(const struct cli *cli, int argc, char **argv);

#endif
