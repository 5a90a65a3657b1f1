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

/* lodge create/start/list/delete (argv[0] says which): VM bundles in core/bundle.h. */
int cli_vm_main(int argc, char **argv);
/* lodge gui: the GTK3 manager (runs the lodge-gui program). */
int cli_gui_main(int argc, char **argv);

#endif
