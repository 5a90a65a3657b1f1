#include "core/e820.h"

#include <errno.h>
#include <string.h>

int e820_add(struct e820_table *t, uint64_t addr, uint64_t size, uint32_t type)
{
    if (size == 0 || addr + size < addr) {
        return -EINVAL;
    }
    if (t->n > 0) {
        const struct e820_entry *last = &t->e[t->n - 1];
        if (addr < last->addr + last->size) {
            return -EINVAL;
        }
    }
    if (t->n == E820_MAX_ENTRIES) {
        return -ENOSPC;
    }
    t->e[t->n++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
    return 0;
}

int e820_build_pc(struct e820_table *t, uint64_t low_end, uint64_t high_size)
{
    if (low_end <= E820_HIGH_START || low_end > E820_MMIO_START) {
        return -EINVAL;
    }
    memset(t, 0, sizeof(*t));
    int rc = 0;
    rc |= e820_add(t, 0, E820_EBDA_START, E820_RAM);
    rc |= e820_add(t, E820_EBDA_START, E820_LOW_TOP - E820_EBDA_START, E820_RESERVED);
    /* The ACPI tables sit in the 0xE0000 segment, so the whole BIOS area stays reserved. */
    rc |= e820_add(t, E820_BIOS_START, E820_HIGH_START - E820_BIOS_START, E820_RESERVED);
    rc |= e820_add(t, E820_HIGH_START, low_end - E820_HIGH_START, E820_RAM);
    rc |= e820_add(t, E820_MMIO_START, E820_MMIO_END - E820_MMIO_START, E820_RESERVED);
    if (high_size) {
        rc |= e820_add(t, E820_4G, high_size, E820_RAM);
    }
    return rc ? -EINVAL : 0;
}

uint32_t e820_type_at(const struct e820_table *t, uint64_t addr)
{
    for (int i = 0; i < t->n; i++) {
        if (addr - t->e[i].addr < t->e[i].size) {
            return t->e[i].type;
        }
    }
    return 0;
}
