#include "core/guestmem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUESTMEM_HUGE (2ull << 20)

/* Private anonymous memory aligned to 2 MiB, so that transparent huge pages back it: the soft
 * CPU's random accesses (a decompressor's dictionary, page tables) then miss the host TLB far
 * less. Shared memfd memory gets no huge pages unless shmem THP is switched on host-wide. */
static void *map_private(uint64_t size)
{
    uint64_t span = size + GUESTMEM_HUGE;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return MAP_FAILED;
    }
    uint8_t *a = (uint8_t *)(((uintptr_t)p + GUESTMEM_HUGE - 1) & ~(uintptr_t)(GUESTMEM_HUGE - 1));
    if (a > p) {
        munmap(p, (size_t)(a - p));
    }
    uint8_t *end = p + span;
    if (end > a + size) {
        munmap(a + size, (size_t)(end - (a + size)));
    }
    madvise(a, size, MADV_HUGEPAGE);
    return a;
}

static int region_add(struct guestmem *gm, const char *name, uint64_t gpa, uint64_t size,
                      bool readonly, bool shared)
{
    if (gm->n == GUESTMEM_MAX_REGIONS) {
        return -ENOSPC;
    }
    if (size == 0 || (size & 0xfff) || (gpa & 0xfff) || gpa + size < gpa) {
        return -EINVAL;
    }
    for (int i = 0; i < gm->n; i++) {
        if (gpa < gm->r[i].gpa + gm->r[i].size && gm->r[i].gpa < gpa + size) {
            return -EEXIST;
        }
    }
    int fd = -1;
    void *p;
    if (shared) {
        fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0) {
            return -errno;
        }
        if (ftruncate(fd, (off_t)size) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    } else {
        p = map_private(size);
    }
    if (p == MAP_FAILED) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return -e;
    }
    struct guestmem_region *r = &gm->r[gm->n++];
    r->gpa = gpa;
    r->size = size;
    r->hva = p;
    r->fd = fd;
    r->readonly = readonly;
    snprintf(r->name, sizeof(r->name), "%s", name);
    return 0;
}

int guestmem_add(struct guestmem *gm, const char *name, uint64_t gpa, uint64_t size,
                 bool readonly)
{
    return region_add(gm, name, gpa, size, readonly, false);
}

int guestmem_add_shared(struct guestmem *gm, const char *name, uint64_t gpa, uint64_t size)
{
    return region_add(gm, name, gpa, size, false, true);
}

void guestmem_free(struct guestmem *gm)
{
    for (int i = 0; i < gm->n; i++) {
        munmap(gm->r[i].hva, gm->r[i].size);
        if (gm->r[i].fd >= 0) {
            close(gm->r[i].fd);
        }
    }
    gm->n = 0;
}

const struct guestmem_region *guestmem_find(const struct guestmem *gm, uint64_t gpa)
{
    for (int i = 0; i < gm->n; i++) {
        if (gpa - gm->r[i].gpa < gm->r[i].size) {
            return &gm->r[i];
        }
    }
    return NULL;
}

void *guestmem_ptr(const struct guestmem *gm, uint64_t gpa, uint64_t len)
{
    const struct guestmem_region *r = guestmem_find(gm, gpa);
    if (!r || len > r->size - (gpa - r->gpa)) {
        return NULL;
    }
    return r->hva + (gpa - r->gpa);
}

void *guestmem_ptr_rw(const struct guestmem *gm, uint64_t gpa, uint64_t len)
{
    const struct guestmem_region *r = guestmem_find(gm, gpa);
    if (!r || r->readonly || len > r->size - (gpa - r->gpa)) {
        return NULL;
    }
    return r->hva + (gpa - r->gpa);
}

int guestmem_read(const struct guestmem *gm, uint64_t gpa, void *buf, size_t len)
{
    void *p = guestmem_ptr(gm, gpa, len);
    if (!p) {
        return -EFAULT;
    }
    memcpy(buf, p, len);
    return 0;
}

int guestmem_write(const struct guestmem *gm, uint64_t gpa, const void *buf, size_t len)
{
    void *p = guestmem_ptr(gm, gpa, len);
    if (!p) {
        return -EFAULT;
    }
    memcpy(p, buf, len);
    guestmem_dma_written(gm, gpa, len);
    return 0;
}

uint64_t guestmem_ram_size(const struct guestmem *gm)
{
    uint64_t total = 0;
    for (int i = 0; i < gm->n; i++) {
        if (!gm->r[i].readonly) {
            total += gm->r[i].size;
        }
    }
    return total;
}
