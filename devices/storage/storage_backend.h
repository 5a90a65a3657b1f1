/* The block backend an AHCI port reads and writes through. The machine fills it
 * from snapshot/image.h; a unit test passes an in-memory disk. Offsets and lengths
 * are bytes; calls return 0 or -errno and never transfer short. */
#ifndef LODGE_DEVICES_STORAGE_STORAGE_BACKEND_H
#define LODGE_DEVICES_STORAGE_STORAGE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct storage_backend {
    void *opaque;
    int (*pread)(void *opaque, void *buf, uint64_t len, uint64_t off);
    int (*pwrite)(void *opaque, const void *buf, uint64_t len, uint64_t off); /* NULL: RO */
    int (*flush)(void *opaque);                                               /* may be NULL */
    uint64_t length;                                                          /* bytes */
    bool readonly; /* writes fail with a write-protect error */
};

#endif
