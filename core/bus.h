/* PIO and MMIO dispatch shared by every engine.
 *
 * A bus is a sorted table of non-overlapping ranges. KVM exits and the soft CPU's
 * I/O and MMIO slow paths both call bus_read()/bus_write(). The table is replaced
 * copy-on-write when a range is added, removed or moved (PCI BARs), and retired
 * tables are kept until bus_free(), so a dispatch running on another vCPU thread
 * never sees freed memory. Lookups take no lock. */
#ifndef LODGE_CORE_BUS_H
#define LODGE_CORE_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
    /* off is relative to the range base; size is 1, 2, 4 or 8. */
    uint64_t (*read)(void *opaque, uint64_t off, unsigned size);
    void (*write)(void *opaque, uint64_t off, uint64_t val, unsigned size);
};

struct bus;

struct bus *bus_new(const char *name);
void bus_free(struct bus *bus);

/* Returns 0, -EEXIST when the range overlaps another, -EINVAL for an empty range. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
                 void *opaque, const char *name);
/* Removes the range registered at base by opaque. Returns 0 or -ENOENT. */
int bus_unregister(struct bus *bus, uint64_t base, void *opaque);
/* Moves a range (e.g. a PCI BAR). Returns 0, -ENOENT or -EEXIST. */
int bus_move(struct bus *bus, uint64_t old_base, void *opaque, uint64_t new_base);

/* Dispatch. Unclaimed reads return all ones and unclaimed writes are dropped;
 * the return value says whether a device claimed the access. */
bool bus_read(struct bus *bus, uint64_t addr, unsigned size, uint64_t *val);
bool bus_write(struct bus *bus, uint64_t addr, unsigned size, uint64_t val);

/* Name of the range holding addr, or NULL (for logs and tests). */
const char *bus_lookup_name(struct bus *bus, uint64_t addr);

#endif
