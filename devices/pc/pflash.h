/* CFI parallel flash with the Intel/Sharp command set (CFI vendor 0x0001), the way QEMU's
 * pflash_cfi01 presents OVMF's variable store: reads return the array, byte writes are
 * commands (Intel "3 Volt Advanced+ Boot Block Flash Memory" datasheet, 4.x):
 *   0xFF/0x00 read array, 0x70 read status, 0x50 clear status, 0x10/0x40 program one
 *   byte (the next write), 0x20 + 0xD0 erase the block at that address (to 0xFF),
 *   0x90 read identifier, 0x98 CFI query (both read as 0 here).
 * Status bit 7 (ready) is set after a program or erase; clear status zeroes it, which
 * is what OVMF's QemuFlashDetected probe expects.
 *
 * Contents live in host memory; when a backing file descriptor is given, every
 * program/erase is written through to it (the per-VM NVRAM file).
 * Locking: one mutex. */
#ifndef LODGE_DEVICES_PC_PFLASH_H
#define LODGE_DEVICES_PC_PFLASH_H

#include "core/bus.h"

#include <stddef.h>
#include <stdint.h>

#define PFLASH_BLOCK_SIZE 4096u

struct pflash;

/* A flash of len bytes (a multiple of PFLASH_BLOCK_SIZE) holding a copy of data; fd
 * (or -1) receives the writes at the same offsets and is closed by pflash_free. */
struct pflash *pflash_new(const uint8_t *data, size_t len, int fd);
void pflash_free(struct pflash *f);

uint64_t pflash_read(struct pflash *f, uint64_t off, unsigned size);
void pflash_write(struct pflash *f, uint64_t off, uint64_t val, unsigned size);
/* Contents (tests). */
const uint8_t *pflash_data(struct pflash *f, size_t *len);
/* Back to read-array mode (machine reset). */
void pflash_reset(struct pflash *f);

extern const struct bus_ops pflash_bus_ops; /* opaque = struct pflash * */

#endif
