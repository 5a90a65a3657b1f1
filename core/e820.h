/* The BIOS E820 memory map a PC guest sees (ACPI spec "System Address Map Interfaces").
 * Built once per machine from its RAM layout; the Linux loader copies it into the
 * zero page. */
#ifndef LODGE_CORE_E820_H
#define LODGE_CORE_E820_H

#include <stdint.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3

#define E820_MAX_ENTRIES 32

/* Fixed PC layout below 1 MiB and under 4 GiB. */
#define E820_EBDA_START 0x9fc00ull    /* extended BIOS data area: reserved up to 640 KiB */
#define E820_LOW_TOP 0xa0000ull       /* end of conventional memory */
#define E820_BIOS_START 0xe0000ull    /* ACPI tables and the BIOS alias live above this */
#define E820_HIGH_START 0x100000ull   /* first byte of extended memory */
#define E820_MMIO_START 0xfec00000ull /* IOAPIC, HPET, LAPIC: reserved */
#define E820_MMIO_END 0xff000000ull
#define E820_4G 0x100000000ull

struct e820_entry {
    uint64_t addr; /* first byte */
    uint64_t size; /* bytes */
    uint32_t type; /* E820_RAM, E820_RESERVED, E820_ACPI */
};

struct e820_table {
    struct e820_entry e[E820_MAX_ENTRIES];
    int n;
};

/* Append one range (entries must be added in address order, non-overlapping).
 * 0, -EINVAL (empty, overlaps or out of order) or -ENOSPC. */
int e820_add(struct e820_table *t, uint64_t addr, uint64_t size, uint32_t type);

/* The PC map for low RAM [0, low_end) and high RAM [4 GiB, 4 GiB + high_size).
 * low_end must be at least 1 MiB + 4 KiB and at most E820_MMIO_START. 0 or -EINVAL. */
int e820_build_pc(struct e820_table *t, uint64_t low_end, uint64_t high_size);

/* Type of the entry holding addr, or 0 when addr is in no entry. */
uint32_t e820_type_at(const struct e820_table *t, uint64_t addr);

#endif
