/* VM bundles: $XDG_DATA_HOME/lodge/vms/NAME/ holds vm.conf (a GKeyFile: hardware,
 * disks, boot, network), the disk images, the UEFI NVRAM (nvram.fd, created by lodge run
 * on the first UEFI start) and logs/. */
#ifndef LODGE_CORE_BUNDLE_H
#define LODGE_CORE_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUNDLE_CONF "vm.conf"
#define BUNDLE_DISK "disk.qcow2"
#define BUNDLE_NVRAM "nvram.fd"
#define BUNDLE_DEFAULT_MEM (1024ull << 20)
#define BUNDLE_DEFAULT_DISK (20ull << 30)

enum bundle_firmware {
    BUNDLE_FW_BIOS,   /* SeaBIOS */
    BUNDLE_FW_UEFI,   /* OVMF with a per-VM variable store */
    BUNDLE_FW_KERNEL, /* direct Linux boot: kernel/initrd/append */
};

struct bundle_config {
    char *name;
    uint64_t mem; /* bytes */
    int cpus;
    enum bundle_firmware firmware;
    char *kernel, *initrd, *append; /* absolute paths / text, or NULL */
    char *iso;                      /* absolute path of an installer ISO, or NULL */
    uint64_t disk_size;             /* bytes; 0: no disk */
    char *disk;                     /* file name inside the bundle, or NULL */
    char *network;                  /* "user" or "none" */
};

/* $XDG_DATA_HOME/lodge/vms (default ~/.local/share/lodge/vms). Caller frees. */
char *bundle_root(void);
/* The bundle folder for name, or NULL for an invalid name. Caller frees. */
char *bundle_dir(const char *name);
const char *bundle_firmware_name(enum bundle_firmware fw);
int bundle_firmware_parse(const char *s, enum bundle_firmware *out);

/* Create the folder, vm.conf, the disk (qcow2) and logs/. -EEXIST when the bundle
 * exists, -EINVAL for a bad name or config; err says which. Nothing is left behind
 * on failure. */
int bundle_create(const struct bundle_config *cfg, char *err, size_t errlen);
/* Read vm.conf. -ENOENT when there is no such VM. */
int bundle_load(const char *name, struct bundle_config *out, char *err, size_t errlen);
/* Rewrite vm.conf (settings dialog). */
int bundle_save(const struct bundle_config *cfg, char *err, size_t errlen);
void bundle_config_clear(struct bundle_config *c);
/* Names of all bundles (folders with a vm.conf), sorted; NULL-terminated, g_strfreev. */
char **bundle_list(void);
/* Remove the bundle folder and everything in it (symlinks are removed, not followed). */
int bundle_delete(const char *name, char *err, size_t errlen);
/* Whether the VM's control socket answers (it is running). */
bool bundle_running(const char *name);

#endif
