/* CFI flash (Intel command set): see pflash.h. */
#include "devices/pc/pflash.h"

#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PFLASH_TAG "dev.pflash"
#define PFLASH_STATUS_READY 0x80

enum pflash_mode {
    PFLASH_ARRAY,   /* reads return contents */
    PFLASH_STATUS,  /* reads return the status register */
    PFLASH_ID,      /* identifier / CFI query: reads return 0 */
    PFLASH_PROGRAM, /* the next write is data */
    PFLASH_ERASE,   /* waiting for the 0xD0 confirm */
};

struct pflash {
    pthread_mutex_t lock;
    uint8_t *data; /* array contents */
    size_t len;
    int fd;                /* write-through backing file, or -1 */
    enum pflash_mode mode; /* command state machine */
    uint8_t status;        /* status register (datasheet 4.3) */
};

struct pflash *pflash_new(const uint8_t *data, size_t len, int fd)
{
    if (len == 0 || len % PFLASH_BLOCK_SIZE) {
        return NULL;
    }
    struct pflash *f = calloc(1, sizeof(*f));
    if (!f || !(f->data = malloc(len))) {
        free(f);
        return NULL;
    }
    memcpy(f->data, data, len);
    f->len = len;
    f->fd = fd;
    pthread_mutex_init(&f->lock, NULL);
    f->mode = PFLASH_ARRAY;
    return f;
}

void pflash_free(struct pflash *f)
{
    if (!f) {
        return;
    }
    if (f->fd >= 0) {
        close(f->fd);
    }
    pthread_mutex_destroy(&f->lock);
    free(f->data);
    free(f);
}

/* Write [off, off+n) to the backing file. Lock held. */
static void pflash_persist(struct pflash *f, size_t off, size_t n)
{
    if (f->fd < 0) {
        return;
    }
    if (pwrite(f->fd, f->data + off, n, (off_t)off) != (ssize_t)n) {
        log_warn(PFLASH_TAG, "cannot write the NVRAM file at 0x%zx", off);
    }
}

uint64_t pflash_read(struct pflash *f, uint64_t off, unsigned size)
{
    uint64_t v = 0;
    pthread_mutex_lock(&f->lock);
    switch (f->mode) {
    case PFLASH_ARRAY:
        if (size <= 8 && off < f->len && size <= f->len - off) {
            memcpy(&v, f->data + off, size);
        } else {
            v = ~0ull;
        }
        break;
    case PFLASH_STATUS:
    case PFLASH_PROGRAM:
    case PFLASH_ERASE:
        /* The status byte repeats across the bus width. */
        for (unsigned i = 0; i < size; i++) {
            v |= (uint64_t)f->status << (8 * i);
        }
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&f->lock);
    return v;
}

void pflash_write(struct pflash *f, uint64_t off, uint64_t val, unsigned size)
{
    pthread_mutex_lock(&f->lock);
    uint8_t cmd = (uint8_t)val;
    if (off >= f->len || size > 8 || size > f->len - off) {
        pthread_mutex_unlock(&f->lock);
        return;
    }
    switch (f->mode) {
    case PFLASH_PROGRAM:
        memcpy(f->data + off, &val, size);
        pflash_persist(f, off, size);
        f->status |= PFLASH_STATUS_READY;
        f->mode = PFLASH_STATUS;
        break;
    case PFLASH_ERASE:
        if (cmd == 0xd0) {
            size_t blk = off & ~(size_t)(PFLASH_BLOCK_SIZE - 1);
            memset(f->data + blk, 0xff, PFLASH_BLOCK_SIZE);
            pflash_persist(f, blk, PFLASH_BLOCK_SIZE);
            f->status |= PFLASH_STATUS_READY;
        } else {
            f->status |= 0x30; /* command sequence error */
        }
        f->mode = PFLASH_STATUS;
        break;
    default:
        switch (cmd) {
        case 0x10:
        case 0x40:
            f->mode = PFLASH_PROGRAM;
            break;
        case 0x20:
            f->mode = PFLASH_ERASE;
            break;
        case 0x50:
            f->status = 0;
            f->mode = PFLASH_ARRAY;
            break;
        case 0x70:
            f->mode = PFLASH_STATUS;
            break;
        case 0x90:
        case 0x98:
            f->mode = PFLASH_ID;
            break;
        case 0x00:
        case 0xff:
            f->mode = PFLASH_ARRAY;
            break;
        default:
            log_debug(PFLASH_TAG, "unknown command 0x%02x at 0x%llx", cmd, (unsigned long long)off);
            f->mode = PFLASH_ARRAY;
            break;
        }
        break;
    }
    pthread_mutex_unlock(&f->lock);
}

const uint8_t *pflash_data(struct pflash *f, size_t *len)
{
    *len = f->len;
    return f->data;
}

void pflash_reset(struct pflash *f)
{
    pthread_mutex_lock(&f->lock);
    f->mode = PFLASH_ARRAY;
    f->status = 0;
    pthread_mutex_unlock(&f->lock);
}

static uint64_t pflash_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return pflash_read(opaque, off, size);
}

static void pflash_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    pflash_write(opaque, off, val, size);
}

const struct bus_ops pflash_bus_ops = {.read = pflash_bus_read, .write = pflash_bus_write};
