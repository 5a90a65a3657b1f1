/* SATA storage of the PC machine: one AHCI HBA (devices/storage/ahci.h) carrying
 * --disk images and --cdrom ISOs, in the order given on the command line.
 *
 * The CLI fills a struct machine_storage_config with the parse helpers and hands
 * it to machine_new through machine_config.storage; the machine calls
 * machine_storage_add() after its other PCI devices, machine_storage_reset() on
 * every reset and machine_storage_free() before the buses go away.
 *
 * Placement: the HBA is 00:1f.0 (ICH9 puts its AHCI function in slot 31); ABAR is
 * pre-assigned at MACHINE_STORAGE_ABAR with memory decoding and bus mastering on,
 * as firmware would leave it for a direct kernel boot (SeaBIOS reassigns it);
 * INTx through the PIIX swizzle, MSI when the guest enables it. Port i holds the
 * i-th --disk/--cdrom. */
#ifndef LODGE_CORE_MACHINE_STORAGE_H
#define LODGE_CORE_MACHINE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#define MACHINE_STORAGE_MAX 6 /* AHCI_NUM_PORTS */
#define MACHINE_STORAGE_SLOT 31
#define MACHINE_STORAGE_ABAR 0xe2000000u

struct machine_storage_drive {
    char path[4096]; /* image or ISO file; "" for an empty CD-ROM drive */
    int format;      /* enum image_format: AUTO probes */
    bool cdrom;      /* ATAPI CD/DVD-ROM (read-only medium) instead of a disk */
    bool readonly;   /* readonly=on for a disk */
};

struct machine_storage_config {
    struct machine_storage_drive drives[MACHINE_STORAGE_MAX];
    int ndrives;
};

/* --disk FILE[,format=raw|qcow2|vmdk|vdi][,readonly=on|off]. 0 or -EINVAL with why. */
int machine_storage_parse_disk(struct machine_storage_config *sc, const char *spec, char *why,
                               size_t len);
/* --cdrom FILE (FILE may be empty: a drive with no disc). 0 or -EINVAL with why. */
int machine_storage_parse_cdrom(struct machine_storage_config *sc, const char *path, char *why,
                                size_t len);

/* For fw_cfg "bootorder": appends the OpenFirmware path of each drive of the kind asked
 * (cdrom: CD-ROM drives, else disks), one per line, in port order, as QEMU writes it for
 * ich9-ahci: "/pci@i0cf8/pci8086,2922@1f/drive@PORT/disk@0" (SeaBIOS matches it with a
 * glob on the function name, OVMF translates it to Pci(0x1F,0x0)/Sata(PORT,0xFFFF,0x0)).
 * Returns the number of paths (none: 0; NULL sc is fine); out is always
 * NUL-terminated and a path that does not fit is left out. */
int machine_storage_boot_paths(const struct machine_storage_config *sc, bool cdrom, char *out,
                               size_t len);

struct machine;
struct machine_error;
int machine_storage_add(struct machine *m, struct machine_error *err);
void machine_storage_reset(struct machine *m);
void machine_storage_free(struct machine *m);

/* Media change for the control socket: put PATH (an ISO) into CD-ROM drive n (the
 * n-th --cdrom, from 0), or take the disc out (force overrides a guest lock).
 * 0 or -errno with why. Any thread. */
int machine_cdrom_insert(struct machine *m, int n, const char *path, char *why, size_t len);
int machine_cdrom_eject(struct machine *m, int n, bool force, char *why, size_t len);

#endif
