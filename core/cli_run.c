/* lodge run: parse the command line, load the images, build and run the machine. */
#include "core/cli.h"

#include "core/boot_firmware.h"
#include "core/boot_multiboot.h"
#include "core/cli_run_ui.h"
#include "core/log.h"
#include "core/machine.h"
#include "core/machine_pci.h"
#include "core/machine_storage.h"
#include "core/options.h"
#include "devices/pc/debugcon.h"
#include "devices/pc/test_exit.h"
#include "hostdrv/accel.h"
#include "hostdrv/doctor.h"

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_EXIT_USAGE 2

static void cli_run_usage(FILE *f)
{
    fprintf(
        f,
        "usage: lodge run (--kernel FILE [--initrd FILE] [--append TEXT] | --bios FILE)\n"
        "                 [OPTIONS]\n"
        "\n"
        "Boot a PC guest: a Linux bzImage directly (64-bit boot protocol) or a raw\n"
        "firmware image mapped below 4 GiB and started at the reset vector.\n"
        "\n"
        "  --kernel FILE      Linux bzImage to boot\n"
        "  --initrd FILE      initial ramdisk for --kernel\n"
        "  --append TEXT      kernel command line (e.g. \"console=ttyS0\")\n"
        "  --bios FILE        raw firmware image (up to 16M), instead of --kernel\n"
        "  --mem SIZE         guest RAM: bytes or with K, M, G suffix (default 512M)\n"
        "  --cpus N           virtual CPUs, 1..64 (default 1)\n"
        "  --accel ENGINE     auto, kvm or soft (default auto: see lodge doctor)\n"
        "  --serial SPEC      COM1 backend: stdio, file:PATH, unix:PATH or none\n"
        "                     (default stdio; Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A)\n"
        "  --no-reboot        exit (status 0) when the guest resets instead of rebooting\n"
        "  --kernel-inflate auto|host|guest\n"
        "                     who decompresses a bzImage: the host loader (no KASLR, much\n"
        "                     faster on the soft CPU) or the kernel itself (auto: host on soft)\n"
        "  --log SPEC         logging, e.g. debug or machine=info,dev.uart=trace\n"
        "  --device test-exit[,iobase=0xf4,size=4]\n"
        "                     a guest write of V to the ports ends the run with\n"
        "                     exit status (V << 1) | 1\n"
        "  --drive file=F[,format=raw|qcow2][,readonly=on]\n"
        "                     a virtio-blk disk (up to 4)\n"
        "  --disk FILE[,format=raw|qcow2][,readonly=on]\n"
        "                     a SATA disk on the AHCI controller\n"
        "  --cdrom FILE       an ISO in a SATA (ATAPI) CD/DVD-ROM drive, read-only\n"
        "  --device virtio-rng | virtio-serial | virtio-tablet\n"
        "                     entropy device / multiport serial device\n"
        "  --virtio-port name=NAME[,console=on],chardev=SPEC\n"
        "                     a virtio-serial port (/dev/virtio-ports/NAME in the\n"
        "                     guest) backed by SPEC: stdio, file:PATH, unix:PATH, none\n"
        "  --net user[,hostfwd=tcp|udp:[HADDR]:HPORT-[GADDR]:GPORT][,restrict=on]\n"
        "        [,model=virtio|e1000][,mac=52:54:00:12:34:56][,mtu=1500..65520]\n"
        "        [,tftp=DIR,bootfile=NAME]   (repeatable; none: no NIC)\n"
        "  --debugcon SPEC    debug port (stdio or file:PATH, [,iobase=0xe9]): guest\n"
        "                     bytes written to it go to SPEC unbuffered\n" CLI_RUN_UI_HELP
        "  --firmware bios|uefi\n"
        "                     boot Debian's SeaBIOS or OVMF (default bios when --drive is\n"
        "                     given without --kernel/--bios); --kernel then boots through it\n"
        "  --boot LIST        firmware boot order: cdrom,disk,net\n"
        "  --fw-cfg name=opt/NAME,file=PATH\n"
        "                     a file the firmware/guest reads over fw_cfg\n"
        "  --uefi-vars FILE   with --firmware uefi: the VM's UEFI variable store (created\n"
        "                     from OVMF_VARS_4M.fd when missing; default: not kept)\n"
        "  --vga-dump FILE    with --firmware: the VGA screen when the run ends, as\n"
        "                     text (FILE.txt, text modes) or a PPM image\n"
        "  -h, --help         show this help\n"
        "\n"
        "A multiboot kernel (ELF32 or a.out kludge) takes --initrd as a module list:\n"
        "--initrd \"FILE [ARGS],FILE2 [ARGS]\"; ARGS is that module's command line.\n"
        "\n"
        "Exit status: 0 the guest powered off, 1 the guest or the engine failed,\n"
        "2 bad command line or input files.\n");
}

/* One line, "lodge: <thing>: <problem>", and the usage exit status. */
static int cli_bad(const char *thing, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cli_bad(const char *thing, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lodge: %s: ", thing);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_USAGE;
}

static int cli_read_file(const char *path, uint8_t **data, size_t *len)
{
    gchar *buf = NULL;
    gsize n = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(path, &buf, &n, &gerr)) {
        /* GLib's message already names the file: print ours for one consistent format. */
        int e = gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_NOENT ? ENOENT : EIO;
        if (gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_ACCES) {
            e = EACCES;
        } else if (gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_ISDIR) {
            e = EISDIR;
        }
        g_error_free(gerr);
        return -e;
    }
    *data = (uint8_t *)buf;
    *len = n;
    return 0;
}

enum {
    OPT_KERNEL = 0x100,
    OPT_INITRD,
    OPT_APPEND,
    OPT_BIOS,
    OPT_MEM,
    OPT_CPUS,
    OPT_ACCEL,
    OPT_SERIAL,
    OPT_NO_REBOOT,
    OPT_LOG,
    OPT_DEVICE,
    OPT_DEBUGCON,
    OPT_DRIVE,
    OPT_VIRTIO_PORT,
    OPT_DISPLAY, /* OPT_DISPLAY..OPT_NAME follow enum cli_run_ui_opt */
    OPT_CTL,
    OPT_NAME,
    OPT_TABLET,
    OPT_KERNEL_INFLATE,
    OPT_DISK,
    OPT_CDROM,
    OPT_FIRMWARE,
    OPT_BOOT,
    OPT_FW_CFG,
    OPT_VGA_DUMP,
    OPT_UEFI_VARS,
    OPT_NET,
};

static const struct option cli_run_opts[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"append", required_argument, NULL, OPT_APPEND},
    {"bios", required_argument, NULL, OPT_BIOS},
    {"mem", required_argument, NULL, OPT_MEM},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
    {"log", required_argument, NULL, OPT_LOG},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"debugcon", required_argument, NULL, OPT_DEBUGCON},
    {"drive", required_argument, NULL, OPT_DRIVE},
    {"virtio-port", required_argument, NULL, OPT_VIRTIO_PORT},
    {"display", required_argument, NULL, OPT_DISPLAY},
    {"ctl", required_argument, NULL, OPT_CTL},
    {"name", required_argument, NULL, OPT_NAME},
    {"tablet", required_argument, NULL, OPT_TABLET},
    {"kernel-inflate", required_argument, NULL, OPT_KERNEL_INFLATE},
    {"disk", required_argument, NULL, OPT_DISK},
    {"cdrom", required_argument, NULL, OPT_CDROM},
    {"net", required_argument, NULL, OPT_NET},
    {"firmware", required_argument, NULL, OPT_FIRMWARE},
    {"boot", required_argument, NULL, OPT_BOOT},
    {"fw-cfg", required_argument, NULL, OPT_FW_CFG},
    {"vga-dump", required_argument, NULL, OPT_VGA_DUMP},
    {"uefi-vars", required_argument, NULL, OPT_UEFI_VARS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct cli_run_args {
    const char *kernel, *initrd, *append, *bios, *accel, *serial, *log;
    const char *test_exit, *debugcon;
    const char *mem_text;
    uint64_t mem;
    long cpus;
    bool no_reboot;
    struct cli_run_ui ui;          /* --display, --ctl, --name (core/cli_run_ui.c) */
    int kernel_inflate;            /* MACHINE_INFLATE_* */
    struct machine_pci_config pci; /* --drive, --device virtio-*, --virtio-port */
    struct machine_storage_config storage; /* --disk, --cdrom (AHCI) */
    struct boot_fw_config fw;      /* --firmware, --boot, --fw-cfg (core/boot_firmware.c) */
};

/* Returns -1 to go on, or an exit status. */
static int cli_run_parse(int argc, char **argv, struct cli_run_args *a)
{
    a->mem = 512ull << 20;
    a->cpus = 1;
    a->accel = "auto";
    a->serial = "stdio";
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", cli_run_opts, NULL)) != -1) {
        int rc;
        switch (c) {
        case OPT_KERNEL:
            a->kernel = optarg;
            break;
        case OPT_INITRD:
            a->initrd = optarg;
            break;
        case OPT_APPEND:
            a->append = optarg;
            break;
        case OPT_BIOS:
            a->bios = optarg;
            break;
        case OPT_MEM:
            a->mem_text = optarg;
            rc = options_parse_size(optarg, &a->mem);
            if (rc == -ERANGE) {
                return cli_bad("--mem", "%s is too large", optarg);
            }
            if (rc < 0) {
                return cli_bad("--mem",
                               "%s is not a size (use bytes or a K, M or G suffix, e.g. "
                               "512M)",
                               optarg);
            }
            break;
        case OPT_CPUS:
            rc = options_parse_int(optarg, 1, MACHINE_MAX_CPUS, &a->cpus);
            if (rc < 0) {
                return cli_bad("--cpus", "%s is not a CPU count in 1..%d", optarg,
                               MACHINE_MAX_CPUS);
            }
            break;
        case OPT_ACCEL:
            if (strcmp(optarg, "auto") != 0 && !accel_find(optarg)) {
                return cli_bad("--accel", "unknown engine '%s' (use auto, kvm or soft)", optarg);
            }
            a->accel = optarg;
            break;
        case OPT_SERIAL:
            if (strcmp(optarg, "stdio") != 0 && strcmp(optarg, "none") != 0 &&
                strncmp(optarg, "file:", 5) != 0 && strncmp(optarg, "unix:", 5) != 0) {
                return cli_bad("--serial",
                               "unknown backend '%s' (use stdio, file:PATH, "
                               "unix:PATH or none)",
                               optarg);
            }
            if ((optarg[0] == 'f' || optarg[0] == 'u') && optarg[5] == '\0') {
                return cli_bad("--serial", "%s needs a path", optarg);
            }
            a->serial = optarg;
            break;
        case OPT_DISPLAY:
        case OPT_CTL:
        case OPT_NAME:
        case OPT_TABLET:
            if (cli_run_ui_parse((enum cli_run_ui_opt)(c - OPT_DISPLAY), optarg, &a->ui) < 0) {
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_DRIVE:
        case OPT_VIRTIO_PORT: {
            char why[256];
            if ((c == OPT_DRIVE ? machine_pci_parse_drive
                                : machine_pci_parse_port)(&a->pci, optarg, why, sizeof(why)) < 0) {
                return cli_bad(c == OPT_DRIVE ? "--drive" : "--virtio-port", "%s", why);
            }
            break;
        }
        case OPT_DEVICE: {
            struct test_exit_config tc;
            char why[256];
            if (machine_pci_parse_device(&a->pci, optarg) > 0) {
                break;
            }
            if (test_exit_parse(optarg, &tc, why, sizeof(why)) < 0) {
                return cli_bad("--device", "%s", why);
            }
            a->test_exit = optarg;
            break;
        }
        case OPT_DEBUGCON: {
            struct debugcon_config *dc = g_new(struct debugcon_config, 1);
            char why[256];
            int bad = debugcon_parse(optarg, dc, why, sizeof(why));
            g_free(dc);
            if (bad < 0) {
                return cli_bad("--debugcon", "%s", why);
            }
            a->debugcon = optarg;
            break;
        }
        case OPT_DISK:
        case OPT_CDROM: {
            char why[256];
            if ((c == OPT_DISK ? machine_storage_parse_disk : machine_storage_parse_cdrom)(
                    &a->storage, optarg, why, sizeof(why)) < 0) {
                return cli_bad(c == OPT_DISK ? "--disk" : "--cdrom", "%s", why);
            }
            break;
        }
        case OPT_NO_REBOOT:
            a->no_reboot = true;
            break;
        case OPT_NET: {
            char why[256];
            bool none;
            if (a->pci.nnics >= NET_MAX_NICS) {
                return cli_bad("--net", "at most %d NICs", NET_MAX_NICS);
            }
            if (net_parse_nic(optarg, &a->pci.nics[a->pci.nnics], &none, why, sizeof(why)) < 0) {
                return cli_bad("--net", "%s", why);
            }
            if (!none) {
                a->pci.nnics++;
            }
            break;
        }
        case OPT_KERNEL_INFLATE:
            if (strcmp(optarg, "auto") == 0) {
                a->kernel_inflate = MACHINE_INFLATE_AUTO;
            } else if (strcmp(optarg, "host") == 0) {
                a->kernel_inflate = MACHINE_INFLATE_HOST;
            } else if (strcmp(optarg, "guest") == 0) {
                a->kernel_inflate = MACHINE_INFLATE_GUEST;
            } else {
                return cli_bad("--kernel-inflate", "'%s' is not auto, host or guest", optarg);
            }
            break;
        case OPT_LOG:
            if (log_configure(optarg) < 0) {
                return cli_bad("--log",
                               "bad spec '%s' (use LEVEL or TAG=LEVEL,...; levels: off, "
                               "error, warn, info, debug, trace)",
                               optarg);
            }
            a->log = optarg;
            break;
        case OPT_UEFI_VARS:
            snprintf(a->fw.vars, sizeof(a->fw.vars), "%s", optarg);
            break;
        case OPT_VGA_DUMP:
            snprintf(a->fw.vga_dump, sizeof(a->fw.vga_dump), "%s", optarg);
            break;
        case OPT_FIRMWARE:
            if (boot_firmware_parse_kind(optarg, &a->fw.kind) < 0) {
                return cli_bad("--firmware", "'%s' is not bios or uefi", optarg);
            }
            break;
        case OPT_BOOT:
        case OPT_FW_CFG: {
            char why[256];
            if ((c == OPT_BOOT ? boot_firmware_parse_boot
                               : boot_firmware_parse_file)(&a->fw, optarg, why, sizeof(why)) < 0) {
                return cli_bad(c == OPT_BOOT ? "--boot" : "--fw-cfg", "%s", why);
            }
            break;
        }
        case 'h':
            cli_run_usage(stdout);
            return 0;
        case ':':
            return cli_bad(argv[optind - 1], "needs a value (see lodge run --help)");
        case '?':
        default:
            return cli_bad(argv[optind - 1], "unknown option (see lodge run --help)");
        }
    }
    if (optind < argc) {
        return cli_bad(argv[optind], "unexpected argument (see lodge run --help)");
    }
    if (!a->kernel && !a->bios && !a->fw.kind &&
        (a->pci.ndrives > 0 || a->storage.ndrives > 0)) {
        a->fw.kind = BOOT_FW_BIOS;
    }
    if (a->fw.kind && a->bios) {
        return cli_bad("run", "--firmware and --bios exclude each other");
    }
    if (!a->kernel && !a->bios && !a->fw.kind) {
        return cli_bad("run", "nothing to boot: give --kernel FILE or --bios FILE");
    }
    if (a->kernel && a->bios) {
        return cli_bad("run", "--kernel and --bios exclude each other");
    }
    if (!a->fw.kind && (a->fw.boot[0] || a->fw.nfiles || a->fw.vga_dump[0])) {
        return cli_bad(a->fw.boot[0] ? "--boot" : a->fw.nfiles ? "--fw-cfg" : "--vga-dump",
                       "only works with --firmware");
    }
    if ((a->initrd || a->append) && !a->kernel) {
        return cli_bad(a->initrd ? "--initrd" : "--append", "only works with --kernel");
    }
    if (a->mem < MACHINE_MIN_MEM) {
        return cli_bad("--mem", "%s is too little (at least 32M)", a->mem_text ? a->mem_text : "?");
    }
    a->mem = (a->mem + 0xfff) & ~0xfffull;
    return -1;
}

static const struct accel_ops *cli_pick_accel(const char *name)
{
    if (strcmp(name, "auto") != 0) {
        return accel_find(name);
    }
    char why[512] = "";
    const char *pick = accel_choose_auto(why, sizeof(why));
    log_info("cli", "--accel auto picked %s: %s", pick, why);
    return accel_find(pick);
}

int cli_run_main(int argc, char **argv)
{
    struct cli_run_args a = {0};
    int status = cli_run_parse(argc, argv, &a);
    if (status >= 0) {
        return status;
    }
    struct machine_config cfg = {.mem_size = a.mem,
                                 .ncpus = (int)a.cpus,
                                 .append = a.append,
                                 .serial = a.serial,
                                 .no_reboot = a.no_reboot,
                                 .kernel_inflate = a.kernel_inflate,
                                 .kernel_path = a.kernel,
                                 .initrd_path = a.initrd,
                                 .bios_path = a.bios};
    uint8_t *kernel = NULL, *initrd = NULL, *bios = NULL;
    int rc = 0;
    if (a.kernel && (rc = cli_read_file(a.kernel, &kernel, &cfg.kernel_size)) < 0) {
        return cli_bad(a.kernel, "%s", strerror(-rc));
    }
    cfg.test_exit = a.test_exit;
    cfg.pci = &a.pci;
    cfg.storage = &a.storage;
    cfg.debugcon = a.debugcon;
    /* A multiboot kernel's --initrd is a list of modules, each with a command line. */
    struct boot_mb_module *mb_mods = NULL;
    if (kernel && a.initrd && boot_mb_detect(kernel, cfg.kernel_size)) {
        char why[512];
        rc = boot_mb_modules_read(a.initrd, &mb_mods, &cfg.mb_nmodules, why, sizeof(why));
        if (rc < 0) {
            g_free(kernel);
            fprintf(stderr, "lodge: %s\n", why);
            return CLI_EXIT_USAGE;
        }
        cfg.mb_modules = mb_mods;
    } else if (a.initrd && (rc = cli_read_file(a.initrd, &initrd, &cfg.initrd_size)) < 0) {
        g_free(kernel);
        return cli_bad(a.initrd, "%s", strerror(-rc));
    }
    if (a.bios && (rc = cli_read_file(a.bios, &bios, &cfg.bios_size)) < 0) {
        return cli_bad(a.bios, "%s", strerror(-rc));
    }
    if (a.fw.kind) {
        char why[512];
        if (boot_firmware_load_image(a.fw.kind, NULL, &bios, &cfg.bios_size, why, sizeof(why)) <
            0) {
            g_free(kernel);
            g_free(initrd);
            boot_mb_modules_free(mb_mods, cfg.mb_nmodules);
            fprintf(stderr, "lodge: %s\n", why);
            return CLI_EXIT_USAGE;
        }
        cfg.bios_path = a.fw.kind == BOOT_FW_UEFI ? BOOT_FW_OVMF_CODE : BOOT_FW_SEABIOS;
        cfg.fw = &a.fw;
    }
    cfg.kernel = kernel;
    cfg.initrd = initrd;
    cfg.bios = bios;
    cfg.accel = cli_pick_accel(a.accel);
    status = 1;
    if (!cfg.accel) {
        fprintf(stderr, "lodge: --accel: no engine available\n");
    } else {
        struct machine *m = NULL;
        struct machine_error err;
        cli_run_ui_config(&a.ui, &cfg); /* framebuffer size (core/cli_run_ui.c) */
        a.pci.tablet = a.pci.tablet || cli_run_ui_tablet(&a.ui);
        rc = machine_new(&cfg, &m, &err);
        if (rc < 0) {
            fprintf(stderr, "lodge: %s\n", err.msg);
            status = err.user ? CLI_EXIT_USAGE : 1;
        } else {
            struct ui_session *ui = NULL;
            if (cli_run_ui_start(&a.ui, m, &ui) == 0) {
                status = machine_run(m);
                cli_run_ui_stop(ui);
            }
            machine_free(m);
        }
    }
    g_free(kernel);
    g_free(initrd);
    boot_mb_modules_free(mb_mods, cfg.mb_nmodules);
    g_free(bios);
    return status;
}
