/* QEMU firmware configuration device (fw_cfg), the interface SeaBIOS and OVMF read
 * the machine description through (QEMU docs/specs/fw_cfg.rst).
 *
 * x86 I/O layout, offsets from FW_CFG_IO_BASE (0x510):
 *   0x0 selector (16-bit write): item key; 0x1 data (8-bit, reads advance an offset);
 *   0x4 DMA address, big-endian 64 bits: high dword at 0x4, low dword at 0x8; writing
 *   the low dword (or all 64 bits at 0x4) runs the transfer the FWCfgDmaAccess
 *   structure at that guest address describes. Reading 0x4 gives "QEMU CFG".
 *
 * Items are copied in; files get keys from FW_CFG_FILE_FIRST in name order and are
 * listed in FW_CFG_FILE_DIR (big-endian count, then {be32 size, be16 select, be16
 * reserved, char name[56]}). Guest writes to items are refused (DMA error bit).
 *
 * The table loader (etc/table-loader) is a list of 128-byte commands built with the
 * fw_cfg_loader_* helpers (QEMU hw/acpi/bios-linker-loader.c format).
 *
 * Locking: one mutex. A file's select hook runs with it released, before the
 * selection takes effect, so it may replace the file's contents (lazy ACPI tables). */
#ifndef LODGE_DEVICES_PC_FW_CFG_H
#define LODGE_DEVICES_PC_FW_CFG_H

#include "core/bus.h"
#include "devices/device.h"

#include <stddef.h>
#include <stdint.h>

struct guestmem;

#define FW_CFG_IO_BASE 0x510
#define FW_CFG_IO_LEN 0xc
#define FW_CFG_OFF_SELECTOR 0x0
#define FW_CFG_OFF_DATA 0x1
#define FW_CFG_OFF_DMA_HI 0x4
#define FW_CFG_OFF_DMA_LO 0x8

/* Item keys (fw_cfg.rst "Selector Register"). */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_UUID 0x02
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NOGRAPHIC 0x04
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MACHINE_ID 0x06
#define FW_CFG_KERNEL_ADDR 0x07
#define FW_CFG_KERNEL_SIZE 0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR 0x0a
#define FW_CFG_INITRD_SIZE 0x0b
#define FW_CFG_BOOT_DEVICE 0x0c
#define FW_CFG_NUMA 0x0d
#define FW_CFG_BOOT_MENU 0x0e
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_KERNEL_ENTRY 0x10
#define FW_CFG_KERNEL_DATA 0x11
#define FW_CFG_INITRD_DATA 0x12
#define FW_CFG_CMDLINE_ADDR 0x13
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_SETUP_ADDR 0x16
#define FW_CFG_SETUP_SIZE 0x17
#define FW_CFG_SETUP_DATA 0x18
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_ARCH_LOCAL 0x8000
#define FW_CFG_E820_TABLE (FW_CFG_ARCH_LOCAL + 3)
#define FW_CFG_WRITE_FLAG 0x4000
#define FW_CFG_KEY_MASK 0x3fff
#define FW_CFG_MAX_ITEMS 0x400 /* per key space (generic and arch-local) */
#define FW_CFG_MAX_FILES (FW_CFG_MAX_ITEMS - FW_CFG_FILE_FIRST)
#define FW_CFG_NAME_LEN 56

/* FW_CFG_ID bits */
#define FW_CFG_VERSION_TRADITIONAL 0x1
#define FW_CFG_VERSION_DMA 0x2

/* FWCfgDmaAccess.control bits */
#define FW_CFG_DMA_ERROR 0x01
#define FW_CFG_DMA_READ 0x02
#define FW_CFG_DMA_SKIP 0x04
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE 0x10
#define FW_CFG_DMA_SIGNATURE 0x51454d5520434647ull /* "QEMU CFG" */

/* Table loader (etc/table-loader) */
#define FW_CFG_LOADER_CMD_SIZE 128
#define FW_CFG_LOADER_ALLOCATE 1
#define FW_CFG_LOADER_ADD_POINTER 2
#define FW_CFG_LOADER_ADD_CHECKSUM 3
#define FW_CFG_LOADER_ZONE_HIGH 1
#define FW_CFG_LOADER_ZONE_FSEG 2

struct fw_cfg;

/* mem is where DMA transfers land (bounds-checked by core/guestmem.h); NULL turns
 * DMA off (FW_CFG_ID then says traditional only). */
struct fw_cfg *fw_cfg_new(const struct guestmem *mem);
void fw_cfg_free(struct fw_cfg *fc);

/* Set item key (not a file key) to a copy of data. 0, -EINVAL or -ENOMEM. */
int fw_cfg_add_bytes(struct fw_cfg *fc, uint16_t key, const void *data, size_t len);
int fw_cfg_add_i16(struct fw_cfg *fc, uint16_t key, uint16_t v); /* little-endian */
int fw_cfg_add_i32(struct fw_cfg *fc, uint16_t key, uint32_t v);
int fw_cfg_add_i64(struct fw_cfg *fc, uint16_t key, uint64_t v);
/* Add or replace the named file (name shorter than 56 bytes). 0, -EINVAL, -ENOSPC,
 * -ENOMEM. Keys are reassigned in name order when a new name comes in: add every
 * file before the guest runs. */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len);
/* Called (lock released) each time the guest selects the named file. 0 or -ENOENT. */
int fw_cfg_set_select_hook(struct fw_cfg *fc, const char *name,
                           void (*hook)(void *opaque, struct fw_cfg *fc), void *opaque);
/* Contents of an item or file (tests, hooks); NULL when absent. */
const uint8_t *fw_cfg_get_file(struct fw_cfg *fc, const char *name, size_t *len);
const uint8_t *fw_cfg_get_item(struct fw_cfg *fc, uint16_t key, size_t *len);

uint64_t fw_cfg_read(struct fw_cfg *fc, uint64_t off, unsigned size);
void fw_cfg_write(struct fw_cfg *fc, uint64_t off, uint64_t val, unsigned size);

extern const struct bus_ops fw_cfg_bus_ops;       /* opaque = fw_cfg, FW_CFG_IO_LEN ports */
extern const struct device_ops fw_cfg_device_ops; /* dev = struct fw_cfg * */

/* Table loader command list under construction. */
struct fw_cfg_loader {
    uint8_t *buf; /* commands, FW_CFG_LOADER_CMD_SIZE each */
    size_t len;
    int error; /* first failure (-EINVAL, -ENOMEM); later calls do nothing */
};

void fw_cfg_loader_allocate(struct fw_cfg_loader *l, const char *file, uint32_t align,
                            uint8_t zone);
/* Add the allocated address of src_file to the size-byte little-endian value at
 * offset in dest_file. */
void fw_cfg_loader_add_pointer(struct fw_cfg_loader *l, const char *dest_file, const char *src_file,
                               uint32_t offset, uint8_t size);
/* Make bytes [start, start+length) of file sum to zero by adjusting the byte at offset. */
void fw_cfg_loader_add_checksum(struct fw_cfg_loader *l, const char *file, uint32_t offset,
                                uint32_t start, uint32_t length);
void fw_cfg_loader_free(struct fw_cfg_loader *l);

#endif
