/* lodge subcommands implemented in core/ (each takes argv with argv[0] = the
 * subcommand name and returns the process exit status). */
#ifndef LODGE_CORE_CLI_H
#define LODGE_CORE_CLI_H

/* lodge run: 0 guest powered off (or reset with --no-reboot), 1 engine/guest error,
 * 2 bad input. */
int cli_run_main(int argc, char **argv);
/* lodge img: disk image tool; 0 done, 1 failed, 2 bad usage (check: 3 leaks only). */
int cli_img_main(int argc, char **argv);

/* lodge ctl: one control-socket command to a running VM; 0 ok, 1 refused, 2 bad usage. */
int cli_ctl_main(int argc, char **argv);

#endif
