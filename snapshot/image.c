/* Disk image front end: format probing, the per-image lock, range checks, and the
 * helpers the format drivers share. */
#include "snapshot/image_int.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define IMAGE_TAG "image"

static const struct {
    const char *name;
    enum image_format fmt;
} image_format_names[] = {
    {"raw", IMAGE_FORMAT_RAW},
    {"qcow2", IMAGE_FORMAT_QCOW2},
    {"vmdk", IMAGE_FORMAT_VMDK},
    {"vdi", IMAGE_FORMAT_VDI},
};

const char *image_format_name(enum image_format fmt)
{
    for (size_t i = 0; i < sizeof(image_format_names) / sizeof(image_format_names[0]); i++) {
        if (image_format_names[i].fmt == fmt) {
            return image_format_names[i].name;
        }
    }
    return "auto";
}

int image_format_parse(const char *name, enum image_format *out)
{
    for (size_t i = 0; i < sizeof(image_format_names) / sizeof(image_format_names[0]); i++) {
        if (strcmp(image_format_names[i].name, name) == 0) {
            *out = image_format_names[i].fmt;
            return 0;
        }
    }
    return -EINVAL;
}

static const struct image_driver *image_driver_for(enum image_format fmt)
{
    switch (fmt) {
    case IMAGE_FORMAT_RAW:
        return &image_driver_raw;
    case IMAGE_FORMAT_QCOW2:
        return &image_driver_qcow2;
    case IMAGE_FORMAT_VMDK:
        return &image_driver_vmdk;
    case IMAGE_FORMAT_VDI:
        return &image_driver_vdi;
    default:
        return NULL;
    }
}

static void image_fmt_err(char *err, size_t errlen, const char *path, int e, const char *what)
{
    if (err && errlen) {
        snprintf(err, errlen, "%s: %s", path, what ? what : strerror(-e));
    }
}

int image_file_pread_nowait(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        struct iovec iov = {.iov_base = p, .iov_len = len};
        ssize_t n = preadv2(fd, &iov, 1, (off_t)off, RWF_NOWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -EAGAIN; /* not cached, RWF_NOWAIT unsupported, or end of file */
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int image_file_pread(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int image_file_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int image_set_error(struct image *img, int errno_neg, const char *fmt, ...)
{
    char msg[IMAGE_ERR_LEN - 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(img->err, sizeof(img->err), "%s: %s", img->path, msg);
    return errno_neg;
}

static int image_probe_fd(int fd, enum image_format *out)
{
    uint8_t buf[512] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        return -errno;
    }
    if (n >= 4 && memcmp(buf, "QFI\xfb", 4) == 0) {
        *out = IMAGE_FORMAT_QCOW2;
    } else if ((n >= 4 && memcmp(buf, "KDMV", 4) == 0) ||
               (n >= 21 && memcmp(buf, "# Disk DescriptorFile", 21) == 0)) {
        *out = IMAGE_FORMAT_VMDK;
    } else if (n >= 0x48 && image_le32(buf + 0x40) == 0xbeda107f) {
        *out = IMAGE_FORMAT_VDI;
    } else {
        *out = IMAGE_FORMAT_RAW;
    }
    return 0;
}

int image_probe(const char *path, enum image_format *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        image_fmt_err(err, errlen, path, e, NULL);
        return e;
    }
    int r = image_probe_fd(fd, out);
    if (r < 0) {
        image_fmt_err(err, errlen, path, r, NULL);
    }
    close(fd);
    return r;
}

/* ---- locking ---- */

/* QEMU's lock bytes (docs/system/qemu-block-drivers "Disk image file locking"):
 * permission p held -> shared lock on byte 100 + p; permission p not shared with
 * other users -> shared lock on byte 200 + p. A program wanting p checks that
 * nobody holds 200 + p; one refusing p checks that nobody holds 100 + p. */
#define IMAGE_LOCK_PERM_BASE 100
#define IMAGE_LOCK_SHARED_BASE 200
#define IMAGE_PERM_READ (1u << 0) /* BLK_PERM_CONSISTENT_READ */
#define IMAGE_PERM_WRITE (1u << 1)
#define IMAGE_PERM_RESIZE (1u << 3)
#define IMAGE_PERM_BITS 4

static const char *const image_perm_names[IMAGE_PERM_BITS] = {"consistent read", "write",
                                                              "write unchanged", "resize"};

/* 0, -EAGAIN when another open file holds a conflicting lock, or -errno. */
static int image_lock_byte(int fd, int cmd, short type, off_t byte)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    if (fcntl(fd, cmd, &fl) < 0) {
        return errno == EACCES ? -EAGAIN : -errno;
    }
    if (cmd == F_OFD_GETLK && fl.l_type != F_UNLCK) {
        return -EAGAIN;
    }
    return 0;
}

/* Take the locks for a reader (RW false) or a writer on FD. Lock first, check
 * second: two programs racing can both fail, never both succeed. */
static int image_lock_fd(int fd, bool rw, const char *path, char *err, size_t errlen)
{
    unsigned held = IMAGE_PERM_READ | (rw ? IMAGE_PERM_WRITE | IMAGE_PERM_RESIZE : 0);
    unsigned unshared = IMAGE_PERM_WRITE | IMAGE_PERM_RESIZE;
    const char *what = NULL;
    bool shared_kind = false;
    int r = 0;
    for (unsigned i = 0; i < IMAGE_PERM_BITS && r == 0; i++) {
        if (held & (1u << i)) {
            r = image_lock_byte(fd, F_OFD_SETLK, F_RDLCK, IMAGE_LOCK_PERM_BASE + i);
            what = image_perm_names[i];
        }
        if (r == 0 && (unshared & (1u << i))) {
            r = image_lock_byte(fd, F_OFD_SETLK, F_RDLCK, IMAGE_LOCK_SHARED_BASE + i);
            what = image_perm_names[i];
            shared_kind = true;
        }
    }
    for (unsigned i = 0; i < IMAGE_PERM_BITS && r == 0; i++) {
        if (held & (1u << i)) {
            r = image_lock_byte(fd, F_OFD_GETLK, F_WRLCK, IMAGE_LOCK_SHARED_BASE + i);
            what = image_perm_names[i];
            shared_kind = false;
        }
        if (r == 0 && (unshared & (1u << i))) {
            r = image_lock_byte(fd, F_OFD_GETLK, F_WRLCK, IMAGE_LOCK_PERM_BASE + i);
            what = image_perm_names[i];
            shared_kind = true;
        }
    }
    if (r == -EAGAIN) {
        if (err && errlen) {
            snprintf(err, errlen,
                     "%s: image is in use by another process (a running VM?): cannot get the "
                     "%s\"%s\" lock%s",
                     path, shared_kind ? "shared " : "", what,
                     rw ? "" : "; it is open for writing elsewhere");
        }
        return -EBUSY;
    }
    if (r < 0) {
        /* A file system without OFD locks (some network mounts): like QEMU, go on
         * unlocked rather than refuse the disk. */
        log_warn(IMAGE_TAG, "%s: cannot lock the image (%s); opened without locking", path,
                 strerror(-r));
    }
    return 0;
}

/* Refuse to recreate PATH while another process uses it. */
static int image_lock_check_free(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return 0; /* nothing there (or nothing we could lock): creation reports errors */
    }
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        r = image_lock_fd(fd, true, path, err, errlen);
    }
    close(fd);
    return r;
}

static int image_open_depth(const char *path, enum image_format fmt, int flags, int depth,
                            const struct image *child, struct image **out, char *err, size_t errlen)
{
    *out = NULL;
    if (depth > IMAGE_MAX_CHAIN) {
        image_fmt_err(err, errlen, path, -ELOOP, "backing chain too long (a loop?)");
        return -ELOOP;
    }
    bool rw = flags & IMAGE_OPEN_RDWR;
    int fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        image_fmt_err(err, errlen, path, e, NULL);
        return e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        close(fd);
        image_fmt_err(err, errlen, path, -EINVAL, "not a regular file or block device");
        return -EINVAL;
    }
    for (const struct image *c = child; c; c = c->child) {
        if (c->dev == st.st_dev && c->ino == st.st_ino) {
            close(fd);
            image_fmt_err(err, errlen, path, -ELOOP, "backing chain too long (a loop?)");
            return -ELOOP;
        }
    }
    if (!(flags & IMAGE_OPEN_SHARE)) {
        int lr = image_lock_fd(fd, rw, path, err, errlen);
        if (lr < 0) {
            close(fd);
            return lr;
        }
    }
    enum image_format probed;
    int r = image_probe_fd(fd, &probed);
    if (r < 0) {
        close(fd);
        image_fmt_err(err, errlen, path, r, NULL);
        return r;
    }
    if (fmt == IMAGE_FORMAT_AUTO) {
        fmt = probed;
    }
    const struct image_driver *drv = image_driver_for(fmt);
    if (!drv) {
        close(fd);
        image_fmt_err(err, errlen, path, -EINVAL, "unknown image format");
        return -EINVAL;
    }
    if (rw && !drv->pwrite) {
        close(fd);
        if (err && errlen) {
            snprintf(err, errlen, "%s: %s images can only be opened read-only", path,
                     image_format_name(fmt));
        }
        return -EROFS;
    }
    struct image *img = calloc(1, sizeof(*img));
    if (!img) {
        close(fd);
        return -ENOMEM;
    }
    img->drv = drv;
    img->fd = fd;
    img->path = strdup(path);
    img->flags = flags;
    img->dev = st.st_dev;
    img->ino = st.st_ino;
    img->child = child;
    pthread_mutex_init(&img->lock, NULL);
    if (!img->path) {
        image_close(img);
        return -ENOMEM;
    }
    r = drv->open(img, depth);
    if (r < 0) {
        if (err && errlen) {
            if (img->err[0]) {
                snprintf(err, errlen, "%s", img->err);
            } else {
                image_fmt_err(err, errlen, path, r, NULL);
            }
        }
        img->drv = NULL; /* the driver cleaned up after itself */
        image_close(img);
        return r;
    }
    img->child = NULL; /* only meaningful while the chain below is being opened */
    *out = img;
    return 0;
}

int image_open(const char *path, enum image_format fmt, int flags, struct image **out, char *err,
               size_t errlen)
{
    return image_open_depth(path, fmt, flags, 0, NULL, out, err, errlen);
}

void image_close(struct image *img)
{
    if (!img) {
        return;
    }
    if (img->drv) {
        img->drv->close(img);
    }
    if (img->backing) {
        image_close(img->backing);
    }
    if (img->fd >= 0) {
        close(img->fd);
    }
    pthread_mutex_destroy(&img->lock);
    free(img->backing_name);
    free(img->path);
    free(img);
}

char *image_resolve_relative(const char *base_path, const char *name)
{
    if (name[0] == '/') {
        return strdup(name);
    }
    const char *slash = strrchr(base_path, '/');
    if (!slash) {
        return strdup(name);
    }
    size_t dlen = (size_t)(slash - base_path) + 1;
    char *s = malloc(dlen + strlen(name) + 1);
    if (s) {
        memcpy(s, base_path, dlen);
        strcpy(s + dlen, name);
    }
    return s;
}

int image_open_backing(struct image *img, const char *name, enum image_format fmt, int depth)
{
    char *path = image_resolve_relative(img->path, name);
    if (!path) {
        return -ENOMEM;
    }
    char err[IMAGE_ERR_LEN];
    int r = image_open_depth(path, fmt, img->flags & IMAGE_OPEN_SHARE, depth + 1, img,
                             &img->backing, err, sizeof(err));
    free(path);
    if (r == -ELOOP) {
        return image_set_error(img, r, "backing chain too long (a loop?)");
    }
    if (r < 0) {
        return image_set_error(img, r, "backing file: %s", err);
    }
    return 0;
}

int image_read_backing(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    struct image *b = img->backing;
    uint64_t blen = b ? image_length(b) : 0;
    uint64_t n = 0;
    if (off < blen) {
        n = len < blen - off ? len : blen - off;
        int r = image_pread(b, buf, n, off);
        if (r < 0) {
            return image_set_error(img, r, "reading backing file: %s", image_error(b));
        }
    }
    if (n < len) {
        memset((uint8_t *)buf + n, 0, len - n);
    }
    return 0;
}

int image_create(const char *path, const struct image_create_opts *opts, char *err, size_t errlen)
{
    uint64_t size = opts->size;
    int lr = image_lock_check_free(path, err, errlen);
    if (lr < 0) {
        return lr;
    }
    if (opts->backing) {
        if (opts->format != IMAGE_FORMAT_QCOW2) {
            image_fmt_err(err, errlen, path, -EINVAL, "only qcow2 images can have a backing file");
            return -EINVAL;
        }
        char *bpath = image_resolve_relative(path, opts->backing);
        if (!bpath) {
            return -ENOMEM;
        }
        struct image *b;
        int r = image_open(bpath, opts->backing_format, IMAGE_OPEN_NO_BACKING, &b, err, errlen);
        free(bpath);
        if (r < 0) {
            return r;
        }
        if (size == 0) {
            size = image_length(b);
        }
        image_close(b);
    }
    if (opts->format == IMAGE_FORMAT_QCOW2) {
        return qcow2_create(path, opts, size, err, errlen);
    }
    if (opts->format != IMAGE_FORMAT_RAW && opts->format != IMAGE_FORMAT_AUTO) {
        image_fmt_err(err, errlen, path, -ENOTSUP, "can only create raw and qcow2 images");
        return -ENOTSUP;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = -errno;
        image_fmt_err(err, errlen, path, e, NULL);
        return e;
    }
    int r = 0;
    if (ftruncate(fd, (off_t)size) < 0 || fdatasync(fd) < 0) {
        r = -errno;
        image_fmt_err(err, errlen, path, r, NULL);
    }
    close(fd);
    return r;
}

static bool image_range_ok(struct image *img, uint64_t len, uint64_t off)
{
    return off <= img->length && len <= img->length - off;
}

#define IMAGE_LOCKED(img, expr)                                                                    \
    ({                                                                                             \
        pthread_mutex_lock(&(img)->lock);                                                          \
        int image_r_ = (expr);                                                                     \
        pthread_mutex_unlock(&(img)->lock);                                                        \
        image_r_;                                                                                  \
    })

int image_pread(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    if (!image_range_ok(img, len, off)) {
        return -EINVAL;
    }
    if (len == 0) {
        return 0;
    }
    return IMAGE_LOCKED(img, img->drv->pread(img, buf, len, off));
}

int image_pread_nowait(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    if (!image_range_ok(img, len, off)) {
        return -EINVAL;
    }
    if (len == 0) {
        return 0;
    }
    if (!img->drv->pread_nowait || pthread_mutex_trylock(&img->lock) != 0) {
        return -EAGAIN;
    }
    int r = img->drv->pread_nowait(img, buf, len, off);
    pthread_mutex_unlock(&img->lock);
    return r;
}

static int image_check_write(struct image *img, uint64_t len, uint64_t off)
{
    if (!(img->flags & IMAGE_OPEN_RDWR)) {
        return image_set_error(img, -EROFS, "image is open read-only");
    }
    if (!image_range_ok(img, len, off)) {
        return -EINVAL;
    }
    return 0;
}

int image_pwrite(struct image *img, const void *buf, uint64_t len, uint64_t off)
{
    int r = image_check_write(img, len, off);
    if (r < 0 || len == 0) {
        return r;
    }
    return IMAGE_LOCKED(img, img->drv->pwrite(img, buf, len, off));
}

int image_flush(struct image *img)
{
    if (!(img->flags & IMAGE_OPEN_RDWR)) {
        return 0;
    }
    return IMAGE_LOCKED(img, img->drv->flush(img));
}

int image_discard(struct image *img, uint64_t off, uint64_t len)
{
    int r = image_check_write(img, len, off);
    if (r < 0 || len == 0) {
        return r;
    }
    return IMAGE_LOCKED(img, img->drv->discard(img, off, len));
}

int image_write_zeroes(struct image *img, uint64_t off, uint64_t len)
{
    int r = image_check_write(img, len, off);
    if (r < 0 || len == 0) {
        return r;
    }
    return IMAGE_LOCKED(img, img->drv->write_zeroes(img, off, len));
}

uint64_t image_length(struct image *img)
{
    return img->length;
}

enum image_format image_get_format(struct image *img)
{
    return img->drv->format;
}

const char *image_path(struct image *img)
{
    return img->path;
}

bool image_is_writable(struct image *img)
{
    return img->flags & IMAGE_OPEN_RDWR;
}

const char *image_error(struct image *img)
{
    return img->err;
}

int image_block_status(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
    if (!image_range_ok(img, len, off) || len == 0) {
        return -EINVAL;
    }
    if (!img->drv->block_status) {
        *pnum = len;
        return IMAGE_BLOCK_DATA;
    }
    return IMAGE_LOCKED(img, img->drv->block_status(img, off, len, pnum));
}

struct image *image_backing(struct image *img)
{
    return img->backing;
}

const char *image_backing_name(struct image *img)
{
    return img->backing_name;
}

enum image_format image_backing_format(struct image *img)
{
    return img->backing_format;
}

uint64_t image_cluster_size(struct image *img)
{
    return img->cluster_size;
}

int image_resize(struct image *img, uint64_t new_size)
{
    if (!(img->flags & IMAGE_OPEN_RDWR)) {
        return image_set_error(img, -EROFS, "image is open read-only");
    }
    if (!img->drv->resize) {
        return image_set_error(img, -ENOTSUP, "resizing %s images is not supported",
                               image_format_name(img->drv->format));
    }
    return IMAGE_LOCKED(img, img->drv->resize(img, new_size));
}

int image_write_compressed(struct image *img, const void *buf, uint64_t off)
{
    int r = image_check_write(img, img->cluster_size, off);
    if (r < 0) {
        return r;
    }
    if (!img->drv->write_compressed) {
        return image_set_error(img, -ENOTSUP, "%s images cannot store compressed data",
                               image_format_name(img->drv->format));
    }
    return IMAGE_LOCKED(img, img->drv->write_compressed(img, buf, off));
}

int image_set_backing(struct image *img, const char *name, enum image_format fmt)
{
    if (!(img->flags & IMAGE_OPEN_RDWR)) {
        return image_set_error(img, -EROFS, "image is open read-only");
    }
    if (!img->drv->set_backing) {
        return image_set_error(img, -ENOTSUP, "%s images cannot have a backing file",
                               image_format_name(img->drv->format));
    }
    return IMAGE_LOCKED(img, img->drv->set_backing(img, name, fmt));
}

int image_check(struct image *img, bool repair, struct image_check_result *res, FILE *log)
{
    memset(res, 0, sizeof(*res));
    if (repair && !(img->flags & IMAGE_OPEN_RDWR)) {
        return image_set_error(img, -EROFS, "image is open read-only");
    }
    if (!img->drv->check) {
        return 0;
    }
    return IMAGE_LOCKED(img, img->drv->check(img, repair, res, log));
}
