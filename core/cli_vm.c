/* lodge create / start / list / delete: VM bundles (core/bundle.h). */
#include "core/cli.h"

#include "core/bundle.h"
#include "core/ctl.h"
#include "core/options.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CLI_VM_USAGE 2

static void cli_create_usage(FILE *f)
{
    fprintf(f, "usage: lodge create NAME [--iso FILE] [--disk-size SIZE] [--mem SIZE] [--cpus N]\n"
               "                         [--firmware bios|uefi|kernel]\n"
               "                         [--kernel FILE [--initrd FILE] [--append TEXT]]\n"
               "\n"
               "Create a VM bundle in $XDG_DATA_HOME/lodge/vms/NAME: vm.conf, a qcow2 disk,\n"
               "logs/ (a uefi VM gets nvram.fd on its first start). --kernel implies\n"
               "--firmware kernel (direct boot).\n"
               "Defaults: --disk-size 20G (0 for none), --mem 1G, --cpus 1, --firmware bios.\n");
}

static int cli_vm_bad(const char *thing, const char *msg)
{
    fprintf(stderr, "lodge: %s: %s\n", thing, msg);
    return CLI_VM_USAGE;
}

/* An input file: must exist; stored as an absolute path. */
static char *cli_vm_abs_file(const char *opt, const char *path, int *status)
{
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        fprintf(stderr, "lodge: %s: %s: no such file\n", opt, path);
        *status = CLI_VM_USAGE;
        return NULL;
    }
    return g_canonicalize_filename(path, NULL);
}

static int cli_create_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"iso", required_argument, NULL, 'I'},      {"disk-size", required_argument, NULL, 'D'},
        {"mem", required_argument, NULL, 'm'},      {"cpus", required_argument, NULL, 'c'},
        {"firmware", required_argument, NULL, 'f'}, {"kernel", required_argument, NULL, 'k'},
        {"initrd", required_argument, NULL, 'i'},   {"append", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct bundle_config cfg = {.mem = BUNDLE_DEFAULT_MEM,
                                .cpus = 1,
                                .firmware = BUNDLE_FW_BIOS,
                                .disk_size = BUNDLE_DEFAULT_DISK};
    bool fw_given = false;
    int status = -1;
    long cpus;
    optind = 1;
    opterr = 0;
    int c;
    while (status < 0 && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'I':
            g_free(cfg.iso);
            cfg.iso = cli_vm_abs_file("--iso", optarg, &status);
            break;
        case 'D':
            if (options_parse_size(optarg, &cfg.disk_size) < 0) {
                status = cli_vm_bad("--disk-size", "not a size (e.g. 20G, or 0 for no disk)");
            }
            break;
        case 'm':
            if (options_parse_size(optarg, &cfg.mem) < 0 || cfg.mem < (32ull << 20)) {
                status = cli_vm_bad("--mem", "not a size of at least 32M");
            }
            cfg.mem = (cfg.mem + 0xfff) & ~0xfffull;
            break;
        case 'c':
            if (options_parse_int(optarg, 1, 64, &cpus) < 0) {
                status = cli_vm_bad("--cpus", "not a CPU count in 1..64");
            }
            cfg.cpus = (int)cpus;
            break;
        case 'f':
            if (bundle_firmware_parse(optarg, &cfg.firmware) < 0) {
                status = cli_vm_bad("--firmware", "use bios, uefi or kernel");
            }
            fw_given = true;
            break;
        case 'k':
            g_free(cfg.kernel);
            cfg.kernel = cli_vm_abs_file("--kernel", optarg, &status);
            break;
        case 'i':
            g_free(cfg.initrd);
            cfg.initrd = cli_vm_abs_file("--initrd", optarg, &status);
            break;
        case 'a':
            g_free(cfg.append);
            cfg.append = g_strdup(optarg);
            break;
        case 'h':
            cli_create_usage(stdout);
            status = 0;
            break;
        case ':':
            status = cli_vm_bad(argv[optind - 1], "needs a value (see lodge create --help)");
            break;
        default:
            status = cli_vm_bad(argv[optind - 1], "unknown option (see lodge create --help)");
            break;
        }
    }
    if (status < 0) {
        if (optind != argc - 1) {
            status = cli_vm_bad("create", "give exactly one NAME (see lodge create --help)");
        } else {
            cfg.name = g_strdup(argv[optind]);
            if (cfg.kernel && !fw_given) {
                cfg.firmware = BUNDLE_FW_KERNEL;
            }
            char err[512];
            int rc = bundle_create(&cfg, err, sizeof(err));
            if (rc < 0) {
                fprintf(stderr, "lodge: %s\n", err);
                status = rc == -EINVAL || rc == -EEXIST ? CLI_VM_USAGE : 1;
            } else {
                char *dir = bundle_dir(cfg.name);
                printf("created %s in %s\n", cfg.name, dir);
                g_free(dir);
                status = 0;
            }
        }
    }
    bundle_config_clear(&cfg);
    return status;
}

static int cli_start_main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            printf("usage: lodge start NAME [RUN OPTIONS]\n\nRun the VM NAME (see lodge list) "
                   "in this process; lodge ctl NAME controls it.\nRUN OPTIONS (e.g. --display "
                   "none, --accel soft) are passed to lodge run.\n");
            return 0;
        }
        return cli_vm_bad("start", "usage: lodge start NAME [RUN OPTIONS]");
    }
    struct bundle_config cfg;
    char err[512];
    int rc = bundle_load(argv[1], &cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "lodge: %s\n", err);
        return CLI_VM_USAGE;
    }
    if (bundle_running(cfg.name)) {
        fprintf(stderr, "lodge: %s: already running\n", cfg.name);
        bundle_config_clear(&cfg);
        return 1;
    }
    char *dir = bundle_dir(cfg.name);
    GPtrArray *av = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(av, g_strdup("run"));
    g_ptr_array_add(av, g_strdup("--name"));
    g_ptr_array_add(av, g_strdup(cfg.name));
    g_ptr_array_add(av, g_strdup_printf("--mem=%lluM", (unsigned long long)(cfg.mem >> 20)));
    g_ptr_array_add(av, g_strdup_printf("--cpus=%d", cfg.cpus));
    switch (cfg.firmware) {
    case BUNDLE_FW_KERNEL:
        g_ptr_array_add(av, g_strdup_printf("--kernel=%s", cfg.kernel));
        if (cfg.initrd) {
            g_ptr_array_add(av, g_strdup_printf("--initrd=%s", cfg.initrd));
        }
        if (cfg.append) {
            g_ptr_array_add(av, g_strdup_printf("--append=%s", cfg.append));
        }
        break;
    case BUNDLE_FW_BIOS:
        g_ptr_array_add(av, g_strdup("--firmware=bios"));
        break;
    case BUNDLE_FW_UEFI:
        /* lodge run creates the store from the OVMF template on the first start. */
        g_ptr_array_add(av, g_strdup("--firmware=uefi"));
        g_ptr_array_add(av, g_strdup_printf("--uefi-vars=%s/%s", dir, BUNDLE_NVRAM));
        break;
    }
    if (cfg.disk) {
        g_ptr_array_add(av, g_strdup_printf("--drive=file=%s/%s,format=qcow2", dir, cfg.disk));
    }
    if (cfg.network && strcmp(cfg.network, "user") == 0) {
        g_ptr_array_add(av, g_strdup("--net=user"));
    }
    /* The console log lives in the bundle; the screen is the display window. */
    g_ptr_array_add(av, g_strdup_printf("--serial=file:%s/logs/serial.log", dir));
    if (cfg.iso) {
        /* The installer first; after the install the disk boots once the ISO is gone. */
        g_ptr_array_add(av, g_strdup_printf("--cdrom=%s", cfg.iso));
        if (cfg.firmware != BUNDLE_FW_KERNEL) {
            g_ptr_array_add(av, g_strdup(cfg.disk ? "--boot=cdrom,disk" : "--boot=cdrom"));
        }
    }
    for (int i = 2; i < argc; i++) {
        g_ptr_array_add(av, g_strdup(argv[i])); /* later options win in lodge run */
    }
    g_ptr_array_add(av, NULL);
    int status = cli_run_main((int)av->len - 1, (char **)av->pdata);
    g_ptr_array_free(av, TRUE);
    g_free(dir);
    bundle_config_clear(&cfg);
    return status;
}

static int cli_list_main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            printf("usage: lodge list\n\nVM bundles with their state, memory and CPUs.\n");
            return 0;
        }
        return cli_vm_bad("list", "takes no arguments");
    }
    char **names = bundle_list();
    if (names[0]) {
        printf("%-24s %-8s %8s %4s  %s\n", "NAME", "STATE", "MEMORY", "CPUS", "BOOT");
    }
    for (int i = 0; names[i]; i++) {
        struct bundle_config cfg;
        char err[512];
        if (bundle_load(names[i], &cfg, err, sizeof(err)) < 0) {
            printf("%-24s %-8s (%s)\n", names[i], "broken", err);
            continue;
        }
        printf("%-24s %-8s %7lluM %4d  %s\n", cfg.name,
               bundle_running(cfg.name) ? "running" : "stopped",
               (unsigned long long)(cfg.mem >> 20), cfg.cpus, bundle_firmware_name(cfg.firmware));
        bundle_config_clear(&cfg);
    }
    g_strfreev(names);
    return 0;
}

static int cli_delete_main(int argc, char **argv)
{
    bool yes = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0) {
            yes = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: lodge delete NAME [--yes]\n\nRemove the VM NAME with its disks and "
                   "NVRAM; asks first unless --yes.\n");
            return 0;
        } else if (argv[i][0] == '-' || name) {
            return cli_vm_bad(argv[i], "unexpected argument (usage: lodge delete NAME [--yes])");
        } else {
            name = argv[i];
        }
    }
    if (!name) {
        return cli_vm_bad("delete", "usage: lodge delete NAME [--yes]");
    }
    char *dir = bundle_dir(name);
    if (!dir) {
        return cli_vm_bad(name, "not a VM name");
    }
    if (!yes) {
        fprintf(stderr, "Delete VM %s and everything in %s? [y/N] ", name, dir);
        char answer[16] = "";
        if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
            fprintf(stderr, "lodge: %s: not deleted\n", name);
            g_free(dir);
            return 1;
        }
    }
    g_free(dir);
    char err[512];
    int rc = bundle_delete(name, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "lodge: %s\n", err);
        return rc == -ENOENT || rc == -EINVAL ? CLI_VM_USAGE : 1;
    }
    printf("deleted %s\n", name);
    return 0;
}

int cli_vm_main(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "create") == 0) {
        return cli_create_main(argc, argv);
    }
    if (strcmp(cmd, "start") == 0) {
        return cli_start_main(argc, argv);
    }
    if (strcmp(cmd, "list") == 0) {
        return cli_list_main(argc, argv);
    }
    if (strcmp(cmd, "delete") == 0) {
        return cli_delete_main(argc, argv);
    }
    return cli_vm_bad(cmd, "unknown command");
}
