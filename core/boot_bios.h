/* Raw firmware boot: a flat image mapped so its last byte is at 0xFFFFFFFF, the way
 * a PC's flash sits under 4 GiB, entered at the reset vector F000:FFF0. */
#ifndef LODGE_CORE_BOOT_BIOS_H
#define LODGE_CORE_BOOT_BIOS_H

#include <stddef.h>
#include <stdint.h>

struct guestmem;

#define BOOT_BIOS_MAX_SIZE (16ull << 20)
#define BOOT_BIOS_ALIAS_END 0x100000ull /* legacy alias: last 128 KiB end at 1 MiB */
#define BOOT_BIOS_ALIAS_SIZE 0x20000ull

/* ROM region size for an image of len bytes (rounded up to 4 KiB), or 0 when the
 * image is empty or larger than BOOT_BIOS_MAX_SIZE. */
uint64_t boot_bios_rom_size(size_t len);

/* Copy the image to the top of the ROM region at [4 GiB - rom_size, 4 GiB) and its
 * last 128 KiB (or all of it when smaller) into low RAM so it ends at 1 MiB.
 * 0 or -EFAULT when a region is missing. */
int boot_bios_load(struct guestmem *gm, const uint8_t *img, size_t len);

#endif
