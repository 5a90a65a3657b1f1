#include "core/boot_bios.h"

#include "core/guestmem.h"

#include <errno.h>

#define BOOT_BIOS_4G 0x100000000ull

uint64_t boot_bios_rom_size(size_t len)
{
    if (len == 0 || len > BOOT_BIOS_MAX_SIZE) {
        return 0;
    }
    return ((uint64_t)len + 0xfff) & ~0xfffull;
}

int boot_bios_load(struct guestmem *gm, const uint8_t *img, size_t len)
{
    if (boot_bios_rom_size(len) == 0) {
        return -EINVAL;
    }
    if (guestmem_write(gm, BOOT_BIOS_4G - len, img, len) < 0) {
        return -EFAULT;
    }
    size_t alias = len < BOOT_BIOS_ALIAS_SIZE ? len : BOOT_BIOS_ALIAS_SIZE;
    if (guestmem_write(gm, BOOT_BIOS_ALIAS_END - alias, img + len - alias, alias) < 0) {
        return -EFAULT;
    }
    return 0;
}
