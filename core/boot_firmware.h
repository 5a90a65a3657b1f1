/* Firmware boot (--firmware bios|uefi): Debian's SeaBIOS or OVMF mapped under 4 GiB,
 * configured through fw_cfg (devices/pc/fw_cfg.h), on the i440FX + PIIX chipset
 * (devices/pc/piix.h).
 *
 * The CLI finds and reads the firmware image with boot_firmware_find() and passes it
 * as machine_config.bios together with a struct boot_fw_config; the machine then
 * calls boot_firmware_add_devices() after its platform devices and
 * boot_firmware_free() before its buses go away.
 *
 * What the firmware reads over fw_cfg: RAM size, CPU counts, etc/e820, bootorder,
 * etc/boot-fail-wait, ACPI through etc/table-loader + etc/acpi/tables + etc/acpi/rsdp
 * (built by core/acpi.c when the firmware first asks, so the FADT names the PM base
 * the firmware programmed into PIIX4 PMBA), the kernel/initrd/cmdline items for
 * --kernel (booted by QEMU's linuxboot_dma.bin option ROM, from Debian's
 * qemu-system-data, offered as genroms/linuxboot_dma.bin) and --fw-cfg opt/ files.
 *
 * Shadow RAM: 0xC0000-0xFFFFF is plain RAM that holds a copy of the image's last
 * 128 KiB after every reset; the i440FX PAM registers are stored but do not
 * write-protect it (SeaBIOS only relies on it being writable while it initialises). */
#ifndef LODGE_CORE_BOOT_FIRMWARE_H
#define LODGE_CORE_BOOT_FIRMWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOT_FW_SEABIOS "/usr/share/seabios/bios.bin"
#define BOOT_FW_VGABIOS "/usr/share/seabios/vgabios-stdvga.bin"
#define BOOT_FW_LINUXBOOT "/usr/share/qemu/linuxboot_dma.bin"
#define BOOT_FW_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define BOOT_FW_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define BOOT_FW_MAX_FILES 8
#define BOOT_FW_PM_BASE 0x600 /* where SeaBIOS puts the PIIX4 PM block (OVMF: 0xb000) */
#define BOOT_FW_VGA_SLOT 2    /* stdvga at 00:02.0, as on QEMU's pc machine */

enum boot_fw_kind {
    BOOT_FW_NONE = 0, /* --kernel/--bios direct boot */
    BOOT_FW_BIOS,     /* SeaBIOS */
    BOOT_FW_UEFI,     /* OVMF */
};

struct boot_fw_file {
    char name[56];   /* fw_cfg file name, e.g. "opt/x" */
    char path[4096]; /* host file */
};

struct boot_fw_config {
    enum boot_fw_kind kind;
    char boot[64];                                /* --boot list: cdrom,disk,net */
    struct boot_fw_file files[BOOT_FW_MAX_FILES]; /* --fw-cfg name=...,file=... */
    int nfiles;
    char vars[4096];     /* UEFI NVRAM file (per VM), or "" */
    char vga_dump[4096]; /* --vga-dump: screen at exit, text (.txt) or PPM image; or "" */
};

/* --firmware NAME: 0 with kind set, or -EINVAL. */
int boot_firmware_parse_kind(const char *name, enum boot_fw_kind *kind);
/* --fw-cfg name=NAME,file=PATH (name shorter than 56 bytes, not starting "etc/").
 * 0 or -EINVAL with why. */
int boot_firmware_parse_file(struct boot_fw_config *fc, const char *spec, char *why, size_t len);
/* --boot LIST: letters or words from cdrom, disk, net. 0 or -EINVAL with why. */
int boot_firmware_parse_boot(struct boot_fw_config *fc, const char *spec, char *why, size_t len);

/* Read the firmware image for kind (path overrides the packaged location). 0, or
 * -ENOENT with a message naming the package to install in why. */
int boot_firmware_load_image(enum boot_fw_kind kind, const char *path, uint8_t **data, size_t *len,
                             char *why, size_t whylen);

/* The ACPI blobs for the table loader: tables (RSDP-relative pointers rewritten to
 * offsets), rsdp and the loader command list, from core/acpi.c's builder. Caller
 * frees the three buffers. 0 or -errno. */
struct acpi_config;
int boot_firmware_acpi_blobs(const struct acpi_config *ac, uint8_t **tables, size_t *tables_len,
                             uint8_t **rsdp, size_t *rsdp_len, uint8_t **loader,
                             size_t *loader_len);

/* Linux through fw_cfg: the items QEMU's linuxboot ROM reads for a bzImage. */
struct fw_cfg;
int boot_firmware_add_kernel(struct fw_cfg *fc, const uint8_t *kernel, size_t kernel_size,
                             const uint8_t *initrd, size_t initrd_size, const char *cmdline,
                             uint64_t low_end, char *why, size_t whylen);

struct machine;
struct machine_error;
int boot_firmware_add_devices(struct machine *m, struct machine_error *err);
void boot_firmware_free(struct machine *m);
/* Write the VGA screen to --vga-dump's file (called when the run ends). 0 or -errno. */
int boot_firmware_vga_dump(struct machine *m);
/* The stdvga device, or NULL (no firmware devices). */
struct vga *boot_firmware_vga(struct machine *m);

#endif
