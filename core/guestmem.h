/* Guest physical memory: a few RAM/ROM regions, each a private anonymous mapping (the
 * framebuffer: a memfd the display process maps too).
 *
 * Everything that reads or writes guest memory on behalf of a device, a loader or
 * an engine goes through these helpers, which check the whole [gpa, gpa+len) range
 * against the regions first: a guest-supplied address never becomes a raw pointer
 * outside guest RAM. */
#ifndef LODGE_CORE_GUESTMEM_H
#define LODGE_CORE_GUESTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUESTMEM_MAX_REGIONS 8

struct guestmem_region {
    uint64_t gpa;     /* guest physical base */
    uint64_t size;    /* bytes, a multiple of 4 KiB */
    uint8_t *hva;     /* host mapping of the whole region */
    int fd;           /* memfd holding the contents (shared regions), else -1 */
    bool readonly;    /* ROM: guest writes are dropped (soft CPU) or exit as MMIO (KVM) */
    char name[16];    /* "ram-low", "ram-high", "bios" */
};

struct guestmem {
    struct guestmem_region r[GUESTMEM_MAX_REGIONS];
    int n;
    /* Told about writes that bypass the engine (device DMA, loaders), so a software CPU can
     * drop code it translated from those bytes. Set by the engine at vm_create; any thread. */
    void (*write_notify)(void *opaque, uint64_t gpa, uint64_t len);
    void *write_notify_opaque;
};

/* A device (or loader) wrote [gpa, gpa+len) through a guestmem_ptr/_ptr_rw pointer: call it
 * after the write. guestmem_write calls it itself. */
static inline void guestmem_dma_written(const struct guestmem *gm, uint64_t gpa, uint64_t len)
{
    if (gm->write_notify && len) {
        gm->write_notify(gm->write_notify_opaque, gpa, len);
    }
}

/* Add a region of zeroed private memory (huge-page backed where the host allows). Returns 0
 * or -errno. */
int guestmem_add(struct guestmem *gm, const char *name, uint64_t gpa, uint64_t size,
                 bool readonly);
/* Add a region backed by a memfd (region.fd), for memory another process maps too (the
 * framebuffer the display shows). */
int guestmem_add_shared(struct guestmem *gm, const char *name, uint64_t gpa, uint64_t size);
void guestmem_free(struct guestmem *gm);

/* Host pointer for [gpa, gpa+len) when it lies inside one region, else NULL. */
void *guestmem_ptr(const struct guestmem *gm, uint64_t gpa, uint64_t len);
/* Like guestmem_ptr but refuses read-only regions. */
void *guestmem_ptr_rw(const struct guestmem *gm, uint64_t gpa, uint64_t len);
/* Region holding gpa, or NULL. */
const struct guestmem_region *guestmem_find(const struct guestmem *gm, uint64_t gpa);

/* Copy helpers: 0, or -EFAULT when any byte is outside RAM (nothing is copied then).
 * guestmem_write also writes ROM regions: loaders use it to place firmware. */
int guestmem_read(const struct guestmem *gm, uint64_t gpa, void *buf, size_t len);
int guestmem_write(const struct guestmem *gm, uint64_t gpa, const void *buf, size_t len);

/* Total RAM (read-write regions) in bytes. */
uint64_t guestmem_ram_size(const struct guestmem *gm);

#endif
