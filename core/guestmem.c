#include "core/guestmem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int guestmem_add(struct guestmem *gm, const char *name, uint64_t gpa, uint64_t size,
                 bool readonly)
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
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    madvise(p, size, MADV_HUGEPAGE);
    struct guestmem_region *r = &gm->r[gm->n++];
    r->gpa = gpa;
    r->size = size;
    r->hva = p;
    r->fd = fd;
    r->readonly = readonly;
    snprintf(r->name, sizeof(r->name), "%s", name);
    return 0;
}

void guestmem_free(struct guestmem *gm)
{
    for (int i = 0; i < gm->n; i++) {
        munmap(gm->r[i].hva, gm->r[i].size);
        close(gm->r[i].fd);
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
