/* Firmware boot: see boot_firmware.h. */
#include "core/boot_firmware.h"
#include "core/le.h"

#include "core/acpi.h"
#include "core/boot_bios.h"
#include "core/boot_linux.h"
#include "core/bus.h"
#include "core/log.h"
#include "core/machine_internal.h"
#include "core/machine_net.h"
#include "core/machine_pci.h"
#include "core/machine_storage.h"
#include "devices/display/vga.h"
#include "devices/pc/acpi_pm.h"
#include "devices/pc/fw_cfg.h"
#include "devices/pc/pci_host.h"
#include "devices/pc/pflash.h"
#include "devices/pc/piix.h"
#include "devices/pc/rtc.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_FW_TAG "firmware"
#define BOOT_FW_RSDP_LEN 36
#define BOOT_FW_TABLES "etc/acpi/tables"
#define BOOT_FW_RSDP "etc/acpi/rsdp"
#define BOOT_FW_LOADER "etc/table-loader"
/* linuxboot layout (QEMU's choice for protocol >= 2.02 kernels loaded high). */
#define BOOT_FW_REAL_ADDR 0x10000u
#define BOOT_FW_CMDLINE_ADDR 0x20000u
#define BOOT_FW_PROT_ADDR 0x100000u
/* Top of low RAM the initrd stays under: SeaBIOS/OVMF keep their tables there. */
#define BOOT_FW_HIGH_RESERVE (1u << 20)
/* CMOS byte SeaBIOS reads for the number of APs to wait for (QEMU sets it too). */
#define BOOT_FW_CMOS_SMP_COUNT 0x5f

struct boot_fw {
    struct fw_cfg *fc;   /* the fw_cfg device at 0x510 */
    struct piix *piix;   /* 00:01.0 ISA bridge, 00:01.3 PM */
    struct vga *vga;     /* 00:02.0 stdvga */
    struct pflash *vars; /* UEFI variable store below OVMF_CODE, or NULL */
    uint64_t vars_base;  /* its guest address */
    struct machine *m;
    bool acpi_fresh; /* tables rebuilt for the current PM base since reset */
};

static int boot_fw_why(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int boot_fw_why(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* ---- CLI helpers ------------------------------------------------------------------- */

int boot_firmware_parse_kind(const char *name, enum boot_fw_kind *kind)
{
    if (strcmp(name, "bios") == 0 || strcmp(name, "seabios") == 0) {
        *kind = BOOT_FW_BIOS;
    } else if (strcmp(name, "uefi") == 0 || strcmp(name, "ovmf") == 0) {
        *kind = BOOT_FW_UEFI;
    } else {
        return -EINVAL;
    }
    return 0;
}

int boot_firmware_parse_file(struct boot_fw_config *fc, const char *spec, char *why, size_t len)
{
    if (fc->nfiles >= BOOT_FW_MAX_FILES) {
        return boot_fw_why(why, len, "at most %d files", BOOT_FW_MAX_FILES);
    }
    const char *name = NULL, *file = NULL;
    size_t nlen = 0;
    if (strncmp(spec, "name=", 5) == 0) {
        name = spec + 5;
        const char *comma = strstr(name, ",file=");
        if (comma) {
            nlen = (size_t)(comma - name);
            file = comma + 6;
        }
    }
    if (!name || !file) {
        return boot_fw_why(why, len, "'%s' is not name=NAME,file=PATH", spec);
    }
    if (nlen == 0 || nlen >= sizeof(fc->files[0].name)) {
        return boot_fw_why(why, len, "name must be 1 to 55 bytes");
    }
    if (strncmp(name, "etc/", 4) == 0) {
        return boot_fw_why(why, len, "names under etc/ are the machine's (use opt/NAME)");
    }
    if (!*file || strlen(file) >= sizeof(fc->files[0].path)) {
        return boot_fw_why(why, len, "file= needs a path");
    }
    struct boot_fw_file *f = &fc->files[fc->nfiles++];
    memcpy(f->name, name, nlen);
    f->name[nlen] = '\0';
    snprintf(f->path, sizeof(f->path), "%s", file);
    return 0;
}

int boot_firmware_parse_boot(struct boot_fw_config *fc, const char *spec, char *why, size_t len)
{
    char out[sizeof(fc->boot)] = "";
    gchar **parts = g_strsplit(spec, ",", -1);
    int rc = 0;
    for (int i = 0; parts[i] && rc == 0; i++) {
        const char *p = parts[i];
        const char *w = NULL;
        if (strcmp(p, "cdrom") == 0 || strcmp(p, "d") == 0) {
            w = "cdrom";
        } else if (strcmp(p, "disk") == 0 || strcmp(p, "c") == 0) {
            w = "disk";
        } else if (strcmp(p, "net") == 0 || strcmp(p, "n") == 0) {
            w = "net";
        }
        if (!w) {
            rc = boot_fw_why(why, len, "'%s' is not cdrom, disk or net", p);
        } else if (strlen(out) + strlen(w) + 2 > sizeof(out)) {
            rc = boot_fw_why(why, len, "list too long");
        } else {
            if (out[0]) {
                strcat(out, ",");
            }
            strcat(out, w);
        }
    }
    g_strfreev(parts);
    if (rc == 0) {
        memcpy(fc->boot, out, sizeof(out));
    }
    return rc;
}

int boot_firmware_load_image(enum boot_fw_kind kind, const char *path, uint8_t **data, size_t *len,
                             char *why, size_t whylen)
{
    const char *p = path ? path : kind == BOOT_FW_UEFI ? BOOT_FW_OVMF_CODE : BOOT_FW_SEABIOS;
    gchar *buf = NULL;
    gsize n = 0;
    if (!g_file_get_contents(p, &buf, &n, NULL)) {
        if (path) {
            snprintf(why, whylen, "%s: cannot read the firmware image", p);
        } else if (kind == BOOT_FW_UEFI) {
            snprintf(why, whylen, "OVMF not found (%s): apt-get install ovmf", p);
        } else {
            snprintf(why, whylen, "SeaBIOS not found (%s): apt-get install seabios", p);
        }
        return -ENOENT;
    }
    *data = (uint8_t *)buf;
    *len = n;
    return 0;
}

/* ---- ACPI through the table loader ------------------------------------------------- */

/* Length of the table at off, or 0 when it does not fit the blob. */
static uint32_t boot_fw_table_len(const uint8_t *t, size_t n, uint64_t off)
{
    if (off < BOOT_FW_RSDP_LEN || off + 36 > n) {
        return 0;
    }
    uint32_t len = le32_get(t + off + 4);
    return len >= 36 && off + len <= n ? len : 0;
}

/* Pointer field at off (size bytes) in the tables blob: relocate it when it is set. */
static void boot_fw_reloc(struct fw_cfg_loader *l, const uint8_t *t, uint64_t off, uint8_t size)
{
    uint64_t v = size == 8 ? le64_get(t + off) : le32_get(t + off);
    if (v) {
        fw_cfg_loader_add_pointer(l, BOOT_FW_TABLES, BOOT_FW_TABLES, (uint32_t)off, size);
    }
}

int boot_firmware_acpi_blobs(const struct acpi_config *ac, uint8_t **tables, size_t *tables_len,
                             uint8_t **rsdp, size_t *rsdp_len, uint8_t **loader, size_t *loader_len)
{
    /* Built at guest address 0, every pointer in the tables is an offset into the
     * blob: the loader adds the blob's address to each one. */
    uint8_t *t = calloc(1, ACPI_TABLES_SIZE);
    uint8_t *r = calloc(1, BOOT_FW_RSDP_LEN);
    if (!t || !r) {
        free(t);
        free(r);
        return -ENOMEM;
    }
    int n = acpi_build(ac, 0, t, ACPI_TABLES_SIZE);
    if (n < 0) {
        free(t);
        free(r);
        return n;
    }
    memcpy(r, t, BOOT_FW_RSDP_LEN);
    memset(t, 0, BOOT_FW_RSDP_LEN); /* no second "RSD PTR " in the tables */
    size_t tn = (size_t)n;

    struct fw_cfg_loader l = {0};
    fw_cfg_loader_allocate(&l, BOOT_FW_RSDP, 16, FW_CFG_LOADER_ZONE_FSEG);
    fw_cfg_loader_allocate(&l, BOOT_FW_TABLES, 64, FW_CFG_LOADER_ZONE_HIGH);
    uint64_t rsdt = le32_get(r + 16), xsdt = le64_get(r + 24);
    uint32_t rsdt_len = boot_fw_table_len(t, tn, rsdt);
    uint32_t xsdt_len = boot_fw_table_len(t, tn, xsdt);
    if (!rsdt_len || !xsdt_len) {
        free(t);
        free(r);
        fw_cfg_loader_free(&l);
        return -EINVAL;
    }
    fw_cfg_loader_add_pointer(&l, BOOT_FW_RSDP, BOOT_FW_TABLES, 16, 4);
    fw_cfg_loader_add_pointer(&l, BOOT_FW_RSDP, BOOT_FW_TABLES, 24, 8);
    uint64_t sums[16];
    uint32_t sum_len[16];
    int nsums = 0;
    for (uint32_t i = 0; 36 + 4 * i + 4 <= rsdt_len; i++) {
        uint64_t e = le32_get(t + rsdt + 36 + 4 * i);
        uint32_t elen = boot_fw_table_len(t, tn, e);
        boot_fw_reloc(&l, t, rsdt + 36 + 4 * i, 4);
        if (36 + 8 * i + 8 <= xsdt_len) {
            boot_fw_reloc(&l, t, xsdt + 36 + 8 * i, 8);
        }
        if (!elen || nsums >= 14) {
            continue;
        }
        sums[nsums] = e;
        sum_len[nsums++] = elen;
        if (memcmp(t + e, "FACP", 4) == 0 && elen >= 148) {
            uint64_t dsdt = le32_get(t + e + 40);
            boot_fw_reloc(&l, t, e + 36, 4);
            boot_fw_reloc(&l, t, e + 40, 4);
            boot_fw_reloc(&l, t, e + 132, 8);
            boot_fw_reloc(&l, t, e + 140, 8);
            uint32_t dlen = boot_fw_table_len(t, tn, dsdt);
            if (dlen) {
                sums[nsums] = dsdt;
                sum_len[nsums++] = dlen;
            }
        }
    }
    sums[nsums] = rsdt;
    sum_len[nsums++] = rsdt_len;
    sums[nsums] = xsdt;
    sum_len[nsums++] = xsdt_len;
    /* The loader's checksum field must start at zero: OVMF writes the negated sum of the
     * range including that byte (SeaBIOS subtracts, which tolerates any start value), and
     * skips a table whose sum is not zero, so a prefilled field hides every table. */
    for (int i = 0; i < nsums; i++) {
        t[sums[i] + 9] = 0;
        fw_cfg_loader_add_checksum(&l, BOOT_FW_TABLES, (uint32_t)sums[i] + 9, (uint32_t)sums[i],
                                   sum_len[i]);
    }
    r[8] = 0;
    r[32] = 0;
    /* ACPI 5.2.5.3: the first checksum covers 20 bytes, the extended one all 36. */
    fw_cfg_loader_add_checksum(&l, BOOT_FW_RSDP, 8, 0, 20);
    fw_cfg_loader_add_checksum(&l, BOOT_FW_RSDP, 32, 0, BOOT_FW_RSDP_LEN);
    if (l.error) {
        int rc = l.error;
        free(t);
        free(r);
        fw_cfg_loader_free(&l);
        return rc;
    }
    *tables = t;
    *tables_len = tn;
    *rsdp = r;
    *rsdp_len = BOOT_FW_RSDP_LEN;
    *loader = l.buf;
    *loader_len = l.len;
    return 0;
}

static void boot_fw_acpi_config(struct boot_fw *fw, uint16_t pm_base, struct acpi_config *ac)
{
    struct machine *m = fw->m;
    *ac = (struct acpi_config){.ncpus = m->nvcpus,
                               .hpet = m->hpet != NULL,
                               .pm_base = pm_base,
                               .sci_irq = ACPI_PM_SCI_IRQ,
                               .s5_typ = ACPI_PM_S5_TYP,
                               .pci_root = true,
                               .irq0_to_gsi2 = !m->kernel_irqchip};
}

/* (Re)build the three ACPI files for the PM base in use. */
static int boot_fw_acpi_update(struct boot_fw *fw, uint16_t pm_base)
{
    struct acpi_config ac;
    boot_fw_acpi_config(fw, pm_base, &ac);
    uint8_t *t, *r, *l;
    size_t tn, rn, ln;
    int rc = boot_firmware_acpi_blobs(&ac, &t, &tn, &r, &rn, &l, &ln);
    if (rc < 0) {
        return rc;
    }
    rc = fw_cfg_add_file(fw->fc, BOOT_FW_TABLES, t, tn);
    if (rc == 0) {
        rc = fw_cfg_add_file(fw->fc, BOOT_FW_RSDP, r, rn);
    }
    if (rc == 0) {
        rc = fw_cfg_add_file(fw->fc, BOOT_FW_LOADER, l, ln);
    }
    free(t);
    free(r);
    free(l);
    return rc;
}

/* The firmware reads the loader after it set PMBA: describe the block where it is. */
static void boot_fw_acpi_hook(void *opaque, struct fw_cfg *fc)
{
    struct boot_fw *fw = opaque;
    (void)fc;
    if (fw->acpi_fresh) {
        return;
    }
    fw->acpi_fresh = true;
    uint16_t base = piix_pm_base(fw->piix);
    if (boot_fw_acpi_update(fw, base) < 0) {
        log_warn(BOOT_FW_TAG, "cannot rebuild the ACPI tables");
    }
    log_debug(BOOT_FW_TAG, "ACPI tables built for PM base 0x%x", base);
}

/* ---- Linux through fw_cfg ------------------------------------------------------------- */

static void boot_fw_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void boot_fw_put32(uint8_t *p, uint32_t v)
{
    boot_fw_put16(p, (uint16_t)v);
    boot_fw_put16(p + 2, (uint16_t)(v >> 16));
}

int boot_firmware_add_kernel(struct fw_cfg *fc, const uint8_t *kernel, size_t kernel_size,
                             const uint8_t *initrd, size_t initrd_size, const char *cmdline,
                             uint64_t low_end, char *why, size_t whylen)
{
    struct boot_linux_header h;
    if (boot_linux_parse(kernel, kernel_size, &h, why, whylen) < 0) {
        return -ENOEXEC;
    }
    size_t setup_size = h.pm_offset;
    if (setup_size > kernel_size || setup_size < 0x300 || !(h.loadflags & 1)) {
        return boot_fw_why(why, whylen, "not a bzImage this firmware path can load");
    }
    const char *cl = cmdline ? cmdline : "";
    size_t cl_len = strlen(cl) + 1;
    if (cl_len > h.cmdline_size + 1 || cl_len > BOOT_LINUX_CMDLINE_MAX) {
        return boot_fw_why(why, whylen, "kernel command line is longer than the kernel takes");
    }
    uint8_t *setup = malloc(setup_size);
    if (!setup) {
        return -ENOMEM;
    }
    memcpy(setup, kernel, setup_size);
    /* boot.rst: loader type "undefined" (0xFF would be wrong: 0xB0 is QEMU's id),
     * heap up to the command line, command line pointer. */
    setup[0x210] = 0xb0;
    setup[0x211] |= 0x80; /* CAN_USE_HEAP */
    boot_fw_put16(setup + 0x224, BOOT_FW_CMDLINE_ADDR - BOOT_FW_REAL_ADDR - 0x200);
    boot_fw_put32(setup + 0x228, BOOT_FW_CMDLINE_ADDR);
    /* vga= is the boot loader's to honour (boot.rst "Special command line options"):
     * the real-mode setup code then sets that mode through the VGA BIOS / VBE. */
    const char *vga = strstr(cl, "vga=");
    if (vga && (vga == cl || vga[-1] == ' ')) {
        const char *val = vga + 4;
        long mode = -1;
        if (strncmp(val, "normal", 6) == 0) {
            mode = 0xffff;
        } else if (strncmp(val, "ext", 3) == 0) {
            mode = 0xfffe;
        } else if (strncmp(val, "ask", 3) == 0) {
            mode = 0xfffd;
        } else {
            char *end = NULL;
            mode = strtol(val, &end, 0);
            if (end == val || (*end && *end != ' ') || mode < 0 || mode > 0xffff) {
                mode = -1;
            }
        }
        if (mode >= 0) {
            boot_fw_put16(setup + 0x1fa, (uint16_t)mode);
        }
    }
    int rc = 0;
    if (initrd && initrd_size) {
        uint64_t max = h.initrd_addr_max ? h.initrd_addr_max : 0x37ffffffu;
        if (low_end < BOOT_FW_HIGH_RESERVE * 2 || max > low_end - BOOT_FW_HIGH_RESERVE - 1) {
            max = low_end - BOOT_FW_HIGH_RESERVE - 1;
        }
        uint64_t kernel_top =
            BOOT_FW_PROT_ADDR + (h.init_size > kernel_size ? h.init_size : kernel_size);
        if (initrd_size > max || ((max - initrd_size) & ~0xfffull) < kernel_top) {
            free(setup);
            return boot_fw_why(why, whylen, "initrd does not fit in guest RAM (use more --mem)");
        }
        uint32_t addr = (uint32_t)((max - initrd_size) & ~0xfffull);
        boot_fw_put32(setup + 0x218, addr);
        boot_fw_put32(setup + 0x21c, (uint32_t)initrd_size);
        rc |= fw_cfg_add_i32(fc, FW_CFG_INITRD_ADDR, addr);
        rc |= fw_cfg_add_i32(fc, FW_CFG_INITRD_SIZE, (uint32_t)initrd_size);
        rc |= fw_cfg_add_bytes(fc, FW_CFG_INITRD_DATA, initrd, initrd_size);
    }
    rc |= fw_cfg_add_i32(fc, FW_CFG_SETUP_ADDR, BOOT_FW_REAL_ADDR);
    rc |= fw_cfg_add_i32(fc, FW_CFG_SETUP_SIZE, (uint32_t)setup_size);
    rc |= fw_cfg_add_bytes(fc, FW_CFG_SETUP_DATA, setup, setup_size);
    rc |= fw_cfg_add_i32(fc, FW_CFG_KERNEL_ADDR, BOOT_FW_PROT_ADDR);
    rc |= fw_cfg_add_i32(fc, FW_CFG_KERNEL_SIZE, (uint32_t)(kernel_size - setup_size));
    rc |= fw_cfg_add_bytes(fc, FW_CFG_KERNEL_DATA, kernel + setup_size, kernel_size - setup_size);
    rc |= fw_cfg_add_i32(fc, FW_CFG_CMDLINE_ADDR, BOOT_FW_CMDLINE_ADDR);
    rc |= fw_cfg_add_i32(fc, FW_CFG_CMDLINE_SIZE, (uint32_t)cl_len);
    rc |= fw_cfg_add_bytes(fc, FW_CFG_CMDLINE_DATA, cl, cl_len);
    free(setup);
    if (rc) {
        return boot_fw_why(why, whylen, "out of memory for the kernel items");
    }
    gchar *rom = NULL;
    gsize romlen = 0;
    if (!g_file_get_contents(BOOT_FW_LINUXBOOT, &rom, &romlen, NULL)) {
        snprintf(why, whylen,
                 "%s not found (the option ROM that boots --kernel through "
                 "firmware): apt-get install qemu-system-data",
                 BOOT_FW_LINUXBOOT);
        return -ENOENT;
    }
    rc = fw_cfg_add_file(fc, "genroms/linuxboot_dma.bin", rom, romlen);
    g_free(rom);
    return rc;
}

/* ---- machine glue --------------------------------------------------------------------- */

static int boot_fw_add_dev(struct machine *m, const struct device_ops *ops, void *dev)
{
    if (m->ndevs >= MACHINE_MAX_DEVS) {
        return -ENOSPC;
    }
    m->devs[m->ndevs++] = (struct machine_dev){.ops = ops, .dev = dev};
    return 0;
}

static void boot_fw_reset(void *dev)
{
    struct boot_fw *fw = dev;
    fw->acpi_fresh = false;
    if (fw->vars) {
        pflash_reset(fw->vars);
    }
    /* After the RTC's reset (it comes earlier in the device list). */
    if (fw->m->rtc) {
        rtc_cmos_set(fw->m->rtc, BOOT_FW_CMOS_SMP_COUNT, (uint8_t)(fw->m->nvcpus - 1));
    }
}

static const struct device_ops boot_fw_device_ops = {.name = "firmware", .reset = boot_fw_reset};

/* etc/e820: packed {le64 addr, le64 len, le32 type} RAM entries (QEMU's layout). */
static int boot_fw_add_e820(struct boot_fw *fw)
{
    struct machine *m = fw->m;
    uint8_t buf[2 * 20];
    size_t n = 0;
    uint64_t ranges[2][2] = {{0, m->low_size}, {E820_4G, m->high_size}};
    for (int i = 0; i < 2; i++) {
        if (!ranges[i][1]) {
            continue;
        }
        for (int b = 0; b < 8; b++) {
            buf[n + b] = (uint8_t)(ranges[i][0] >> (8 * b));
            buf[n + 8 + b] = (uint8_t)(ranges[i][1] >> (8 * b));
        }
        boot_fw_put32(buf + n + 16, E820_RAM);
        n += 20;
    }
    return fw_cfg_add_file(fw->fc, "etc/e820", buf, n);
}

/* bootorder: one OpenFirmware path per line, in --boot order (SeaBIOS matches them
 * as prefixes against its own device paths). Disks are the AHCI disks, then the
 * virtio-blk functions; cdrom is the AHCI CD-ROM drives; net is the NICs (their
 * iPXE ROMs, core/machine_net.c). */
static int boot_fw_add_bootorder(struct boot_fw *fw, const struct boot_fw_config *bc)
{
    struct machine *m = fw->m;
    GString *s = g_string_new("");
    gchar **parts = g_strsplit(bc->boot, ",", -1);
    int ndrives = m->cfg.pci ? m->cfg.pci->ndrives : 0;
    int nnics = m->cfg.pci ? m->cfg.pci->nnics : 0;
    char paths[MACHINE_STORAGE_MAX * 64];
    for (int i = 0; parts[i]; i++) {
        bool disk = strcmp(parts[i], "disk") == 0;
        if (disk || strcmp(parts[i], "cdrom") == 0) {
            machine_storage_boot_paths(m->cfg.storage, !disk, paths, sizeof(paths));
            g_string_append(s, paths);
        }
        if (disk) {
            for (int d = 0; d < ndrives; d++) {
                g_string_append_printf(s, "/pci@i0cf8/scsi@%x/disk@0,0\n",
                                       MACHINE_PCI_FIRST_SLOT + d);
            }
        }
        if (strcmp(parts[i], "net") == 0) {
            /* QEMU's path for a NIC: SeaBIOS's glob for the NIC's ROM entry (any node
             * name at @10) matches it as a prefix; OVMF translates it to Pci(0x10,0x0). */
            for (int n = 0; n < nnics; n++) {
                g_string_append_printf(s, "/pci@i0cf8/ethernet@%x/ethernet-phy@0\n",
                                       MACHINE_NET_FIRST_SLOT + n);
            }
        }
    }
    g_strfreev(parts);
    int rc = 0;
    if (s->len) {
        rc = fw_cfg_add_file(fw->fc, "bootorder", s->str, s->len + 1);
    }
    g_string_free(s, TRUE);
    return rc;
}

/* stdvga at 00:02.0 with its ports; SeaBIOS finds the VGA BIOS as the hard-coded
 * ROM file "pci1234,1111.rom" (its lookup_hardcode), OVMF drives the card itself. */
static int boot_fw_add_vga(struct boot_fw *fw)
{
    struct machine *m = fw->m;
    fw->vga = vga_new(&m->mem);
    if (!fw->vga) {
        return -ENOMEM;
    }
    struct pci_dev *pd = vga_pci_dev(fw->vga);
    pci_dev_attach(pd, m->pio, m->mmio, NULL, NULL);
    int rc = pci_host_add_device(m->pci_host, BOOT_FW_VGA_SLOT, 0, &pci_dev_config_ops, pd);
    if (rc == 0) {
        rc = bus_register(m->pio, VGA_IO_BASE, VGA_IO_LEN, &vga_io_bus_ops, fw->vga, "vga");
    }
    if (rc == 0) {
        rc = bus_register(m->pio, VGA_VBE_IO_BASE, VGA_VBE_IO_LEN, &vga_vbe_bus_ops, fw->vga,
                          "vga-vbe");
    }
    if (rc == 0) {
        /* The legacy window: machine_create leaves no RAM there with firmware. */
        rc = bus_register(m->mmio, VGA_WINDOW_BASE, VGA_WINDOW_SIZE, &vga_mem_bus_ops, fw->vga,
                          "vga-mem");
    }
    if (rc == 0) {
        rc = boot_fw_add_dev(m, &vga_device_ops, fw->vga);
    }
    if (rc == 0 && m->cfg.fw->kind == BOOT_FW_BIOS) {
        gchar *rom = NULL;
        gsize len = 0;
        if (g_file_get_contents(BOOT_FW_VGABIOS, &rom, &len, NULL)) {
            rc = fw_cfg_add_file(fw->fc, "pci1234,1111.rom", rom, len);
            g_free(rom);
        } else {
            log_warn(BOOT_FW_TAG, "%s not found: no VGA BIOS (apt-get install seabios)",
                     BOOT_FW_VGABIOS);
        }
    }
    return rc;
}

/* The UEFI variable store: a CFI flash right below OVMF_CODE (QEMU's pflash unit 1
 * place), filled from the per-VM NVRAM file (created from Debian's template when
 * missing) or, without --uefi-vars, from the template for this run only. */
static int boot_fw_add_vars(struct boot_fw *fw, struct machine_error *err)
{
    struct machine *m = fw->m;
    const char *path = m->cfg.fw->vars[0] ? m->cfg.fw->vars : NULL;
    gchar *data = NULL;
    gsize len = 0;
    int fd = -1;
    if (path && g_file_get_contents(path, &data, &len, NULL)) {
        fd = open(path, O_RDWR | O_CLOEXEC);
    } else if (g_file_get_contents(BOOT_FW_OVMF_VARS, &data, &len, NULL)) {
        if (path) {
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd >= 0 && write(fd, data, len) != (ssize_t)len) {
                close(fd);
                fd = -1;
            }
        }
    } else {
        err->user = true;
        snprintf(err->msg, sizeof(err->msg), "OVMF not found (%s): apt-get install ovmf",
                 BOOT_FW_OVMF_VARS);
        return -ENOENT;
    }
    if (path && fd < 0) {
        g_free(data);
        err->user = true;
        snprintf(err->msg, sizeof(err->msg), "--uefi-vars %.400s: cannot open for writing", path);
        return -EACCES;
    }
    fw->vars = pflash_new((const uint8_t *)data, len, fd);
    g_free(data);
    if (!fw->vars) {
        if (fd >= 0) {
            close(fd);
        }
        err->user = true;
        snprintf(err->msg, sizeof(err->msg),
                 "%.400s: not a variable store (size %zu is not a "
                 "multiple of 4 KiB)",
                 path ? path : BOOT_FW_OVMF_VARS, (size_t)len);
        return -EINVAL;
    }
    uint64_t code = boot_bios_rom_size(m->cfg.bios_size);
    fw->vars_base = E820_4G - code - len;
    int rc = bus_register(m->mmio, fw->vars_base, len, &pflash_bus_ops, fw->vars, "uefi-vars");
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "machine: cannot place the UEFI variable store "
                 "at 0x%llx",
                 (unsigned long long)fw->vars_base);
        return rc;
    }
    return 0;
}

int boot_firmware_vga_dump(struct machine *m)
{
    struct boot_fw *fw = m->fw;
    if (!fw || !fw->vga || !m->cfg.fw->vga_dump[0]) {
        return 0;
    }
    const char *path = m->cfg.fw->vga_dump;
    size_t n = strlen(path);
    if (n > 4 && strcmp(path + n - 4, ".txt") == 0) {
        char buf[132 * 60 + 64];
        int len = vga_text(fw->vga, buf, sizeof(buf));
        if (len < 0) {
            return len;
        }
        return g_file_set_contents(path, buf, len, NULL) ? 0 : -EIO;
    }
    return vga_write_ppm(fw->vga, path);
}

struct vga *boot_firmware_vga(struct machine *m)
{
    return m->fw ? m->fw->vga : NULL;
}

int boot_firmware_add_devices(struct machine *m, struct machine_error *err)
{
    const struct boot_fw_config *bc = m->cfg.fw;
    if (!bc || bc->kind == BOOT_FW_NONE) {
        return 0;
    }
    if (m->cfg.fb_width) {
        /* The display's framebuffer region would sit where firmware puts VGA BAR0, and
         * the VGA renderer is not connected to ui/surface.h yet. */
        err->user = true;
        snprintf(err->msg, sizeof(err->msg),
                 "--display: not available with --firmware yet (use --vga-dump FILE)");
        return -ENOTSUP;
    }
    struct boot_fw *fw = calloc(1, sizeof(*fw));
    if (!fw) {
        snprintf(err->msg, sizeof(err->msg), "machine: out of memory");
        return -ENOMEM;
    }
    m->fw = fw;
    fw->m = m;
    fw->fc = fw_cfg_new(&m->mem);
    fw->piix = piix_new(m->pio, m->acpi_pm, ACPI_PM_BASE_DEFAULT);
    if (!fw->fc || !fw->piix) {
        snprintf(err->msg, sizeof(err->msg), "machine: out of memory");
        return -ENOMEM;
    }
    int rc = piix_attach(fw->piix, m->pci_host);
    if (rc == 0) {
        rc = bus_register(m->pio, FW_CFG_IO_BASE, FW_CFG_IO_LEN, &fw_cfg_bus_ops, fw->fc, "fw_cfg");
    }
    if (rc == 0) {
        rc = boot_fw_add_dev(m, &piix_device_ops, fw->piix);
    }
    if (rc == 0) {
        rc = boot_fw_add_dev(m, &fw_cfg_device_ops, fw->fc);
    }
    if (rc == 0) {
        rc = boot_fw_add_dev(m, &boot_fw_device_ops, fw);
    }
    if (rc == 0) {
        rc = boot_fw_add_vga(fw);
    }
    if (rc == 0 && bc->kind == BOOT_FW_UEFI) {
        rc = boot_fw_add_vars(fw, err);
        if (rc < 0) {
            return rc;
        }
    }
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg), "machine: cannot add the firmware devices: %s",
                 strerror(-rc));
        return rc;
    }
    struct fw_cfg *fc = fw->fc;
    rc |= fw_cfg_add_i64(fc, FW_CFG_RAM_SIZE, m->cfg.mem_size);
    rc |= fw_cfg_add_i16(fc, FW_CFG_NB_CPUS, (uint16_t)m->nvcpus);
    rc |= fw_cfg_add_i16(fc, FW_CFG_MAX_CPUS, (uint16_t)m->nvcpus);
    rc |= fw_cfg_add_i16(fc, FW_CFG_NOGRAPHIC, 0);
    rc |= fw_cfg_add_i16(fc, FW_CFG_BOOT_MENU, 0);
    rc |= boot_fw_add_e820(fw);
    /* SeaBIOS: seconds to wait before rebooting after a failed boot; -1 waits forever
     * (QEMU's default). */
    uint8_t wait[4] = {0xff, 0xff, 0xff, 0xff};
    rc |= fw_cfg_add_file(fc, "etc/boot-fail-wait", wait, sizeof(wait));
    rc |= boot_fw_add_bootorder(fw, bc);
    rc |= boot_fw_acpi_update(fw, BOOT_FW_PM_BASE);
    rc |= fw_cfg_set_select_hook(fc, BOOT_FW_LOADER, boot_fw_acpi_hook, fw);
    rc |= fw_cfg_set_select_hook(fc, BOOT_FW_TABLES, boot_fw_acpi_hook, fw);
    rc |= fw_cfg_set_select_hook(fc, BOOT_FW_RSDP, boot_fw_acpi_hook, fw);
    if (rc) {
        snprintf(err->msg, sizeof(err->msg), "machine: cannot fill fw_cfg (out of memory)");
        return -ENOMEM;
    }
    for (int i = 0; i < bc->nfiles; i++) {
        gchar *data = NULL;
        gsize len = 0;
        if (!g_file_get_contents(bc->files[i].path, &data, &len, NULL)) {
            err->user = true;
            snprintf(err->msg, sizeof(err->msg), "--fw-cfg: %s: cannot read the file",
                     bc->files[i].path);
            return -ENOENT;
        }
        rc = fw_cfg_add_file(fc, bc->files[i].name, data, len);
        g_free(data);
        if (rc < 0) {
            snprintf(err->msg, sizeof(err->msg), "--fw-cfg %s: %s", bc->files[i].name,
                     strerror(-rc));
            return rc;
        }
    }
    if (m->cfg.kernel) {
        char why[400];
        rc = boot_firmware_add_kernel(fc, m->cfg.kernel, m->cfg.kernel_size, m->cfg.initrd,
                                      m->cfg.initrd_size, m->cfg.append, m->low_size, why,
                                      sizeof(why));
        if (rc < 0) {
            err->user = true;
            snprintf(err->msg, sizeof(err->msg), "%s: %s",
                     m->cfg.kernel_path ? m->cfg.kernel_path : "--kernel", why);
            return rc;
        }
    }
    return 0;
}

void boot_firmware_free(struct machine *m)
{
    struct boot_fw *fw = m->fw;
    if (!fw) {
        return;
    }
    if (fw->vga) {
        boot_firmware_vga_dump(m);
    }
    fw_cfg_free(fw->fc);
    piix_free(fw->piix);
    vga_free(fw->vga);
    pflash_free(fw->vars); /* its bus range goes with the bus, freed after us */
    free(fw);
    m->fw = NULL;
}
