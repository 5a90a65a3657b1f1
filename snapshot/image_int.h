/* Internal to snapshot/: the per-format driver table behind snapshot/image.h.
 * image.c takes the image's mutex and checks ranges before calling a driver, so
 * drivers see only in-range requests and never run concurrently on one image. */
#ifndef LODGE_SNAPSHOT_IMAGE_INT_H
#define LODGE_SNAPSHOT_IMAGE_INT_H

#include "snapshot/image.h"

#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>

/* Longest backing chain we follow: protects against loops (a -> b -> a). */
#define IMAGE_MAX_CHAIN 64

struct image_driver {
    enum image_format format;
    /* Parse the file and fill img->length/priv. DEPTH is the backing chain depth. */
    int (*open)(struct image *img, int depth);
    void (*close)(struct image *img);
    int (*pread)(struct image *img, void *buf, uint64_t len, uint64_t off);
    /* Optional: pread that never waits; -EAGAIN (no state changed) when it would. */
    int (*pread_nowait)(struct image *img, void *buf, uint64_t len, uint64_t off);
    int (*pwrite)(struct image *img, const void *buf, uint64_t len, uint64_t off);
    int (*flush)(struct image *img);
    int (*discard)(struct image *img, uint64_t off, uint64_t len);
    int (*write_zeroes)(struct image *img, uint64_t off, uint64_t len);
    int (*block_status)(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum);
    int (*resize)(struct image *img, uint64_t new_size);
    int (*write_compressed)(struct image *img, const void *buf, uint64_t off);
    int (*set_backing)(struct image *img, const char *name, enum image_format fmt);
    int (*check)(struct image *img, bool repair, struct image_check_result *res, FILE *log);
};

struct image {
    const struct image_driver *drv;
    pthread_mutex_t lock;
    int fd;
    char *path;
    int flags;       /* IMAGE_OPEN_* */
    uint64_t length; /* virtual size in bytes */
    uint64_t cluster_size;
    struct image *backing;
    char *backing_name;
    enum image_format backing_format;
    void *priv;                /* driver state */
    dev_t dev;                 /* identity of the open file: a backing chain that comes back */
    ino_t ino;                 /* to a file already in it is a loop (and would lock itself out) */
    const struct image *child; /* while opening a backing file: the image above it */
    char err[IMAGE_ERR_LEN];
};

extern const struct image_driver image_driver_raw;
extern const struct image_driver image_driver_qcow2;
extern const struct image_driver image_driver_vmdk;
extern const struct image_driver image_driver_vdi;

/* Record "PATH: message" as the image's last error; returns ERRNO_NEG unchanged. */
int image_set_error(struct image *img, int errno_neg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Full-length pread/pwrite on a file descriptor: 0, -EIO on a short read past
 * the end, or -errno. */
int image_file_pread(int fd, void *buf, size_t len, uint64_t off);
/* image_file_pread from the page cache only (preadv2 RWF_NOWAIT): -EAGAIN when a byte is
 * not cached, the kernel cannot tell, or the file ends first. */
int image_file_pread_nowait(int fd, void *buf, size_t len, uint64_t off);
int image_file_pwrite(int fd, const void *buf, size_t len, uint64_t off);

/* Open the backing file NAME of IMG (relative to IMG's folder) read-only at
 * chain depth DEPTH+1 into img->backing. */
int image_open_backing(struct image *img, const char *name, enum image_format fmt, int depth);
/* Resolve NAME against the folder of BASE_PATH; caller frees. */
char *image_resolve_relative(const char *base_path, const char *name);

/* Read from IMG's backing (zeros past its end or without one). Caller holds
 * IMG's lock; the backing has its own. */
int image_read_backing(struct image *img, void *buf, uint64_t len, uint64_t off);

int qcow2_create(const char *path, const struct image_create_opts *opts, uint64_t size, char *err,
                 size_t errlen);

static inline uint16_t image_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t image_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t image_le64(const uint8_t *p)
{
    return (uint64_t)image_le32(p) | ((uint64_t)image_le32(p + 4) << 32);
}
static inline uint16_t image_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t image_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t image_be64(const uint8_t *p)
{
    return ((uint64_t)image_be32(p) << 32) | image_be32(p + 4);
}
static inline void image_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void image_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void image_put_be64(uint8_t *p, uint64_t v)
{
    image_put_be32(p, (uint32_t)(v >> 32));
    image_put_be32(p + 4, (uint32_t)v);
}

#endif
