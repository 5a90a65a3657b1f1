/* lodge: the command-line entry point. Subcommands live in their own files. */
#include "core/cli.h"
#include "hostdrv/doctor.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void main_usage(FILE *f)
{
    fprintf(f, "usage: lodge COMMAND [OPTIONS]\n"
               "\n"
               "commands:\n"
               "  run      boot a guest (lodge run --help)\n"
               "  doctor   check this host's virtualization support (lodge doctor --help)\n"
            "  img      create, inspect, check and convert disk images (lodge img --help)\n"
               "  ctl      control a running VM (lodge ctl --help)\n"
            "  create   make a VM bundle (lodge create --help)\n"
            "  start    run a VM bundle by name\n"
            "  list     list VM bundles and their state\n"
            "  delete   remove a VM bundle\n"
            "  gui      the graphical VM manager\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* guest serial output must appear as it comes */
    /* A closed output pipe (lodge run | head) must not kill us with the terminal in
     * raw mode: writes fail with EPIPE instead and the output is dropped. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        main_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "run") == 0) {
        return cli_run_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "img") == 0) {
        return cli_img_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "ctl") == 0) {
        return cli_ctl_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "start") == 0 || strcmp(cmd, "list") == 0 ||
        strcmp(cmd, "delete") == 0) {
        return cli_vm_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "gui") == 0) {
        return cli_gui_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "doctor") == 0) {
        return doctor_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "lodge: %s: unknown command (try lodge --help)\n", cmd);
    return 2;
}
