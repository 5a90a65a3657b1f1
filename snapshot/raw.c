/* raw images: the file is the disk, byte for byte. */
#include "snapshot/image_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int raw_open(struct image *img, int depth)
{
    struct stat st;
    if (fstat(img->fd, &st) < 0) {
        return -errno;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz = 0;
        if (ioctl(img->fd, BLKGETSIZE64, &sz) < 0) {
            return -errno;
        }
        img->length = sz;
    } else {
        img->length = (uint64_t)st.st_size;
    }
    return 0;
}

static void raw_close(struct image *img)
{
}

static int raw_pread(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    int r = image_file_pread(img->fd, buf, len, off);
    if (r < 0) {
        return image_set_error(img, r, "read at 0x%llx: %s", (unsigned long long)off, strerror(-r));
    }
    return 0;
}

static int raw_pread_nowait(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    return image_file_pread_nowait(img->fd, buf, len, off);
}

static int raw_pwrite(struct image *img, const void *buf, uint64_t len, uint64_t off)
{
    int r = image_file_pwrite(img->fd, buf, len, off);
    if (r < 0) {
        return image_set_error(img, r, "write at 0x%llx: %s", (unsigned long long)off,
                               strerror(-r));
    }
    return 0;
}

static int raw_flush(struct image *img)
{
    if (img->flags & IMAGE_OPEN_UNSAFE) {
        return 0;
    }
    if (fdatasync(img->fd) < 0) {
        int r = -errno;
        return image_set_error(img, r, "flush: %s", strerror(-r));
    }
    return 0;
}

static int raw_write_zeroes(struct image *img, uint64_t off, uint64_t len)
{
    if (fallocate(img->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
        0) {
        return 0;
    }
    if (fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
        0) {
        return 0;
    }
    static const uint8_t zeros[65536];
    while (len > 0) {
        uint64_t n = len < sizeof(zeros) ? len : sizeof(zeros);
        int r = raw_pwrite(img, zeros, n, off);
        if (r < 0) {
            return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

static int raw_discard(struct image *img, uint64_t off, uint64_t len)
{
    /* Punching a hole reads back as zeros, which is what image.h promises. */
    return raw_write_zeroes(img, off, len);
}

static int raw_block_status(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
    off_t data = lseek(img->fd, (off_t)off, SEEK_DATA);
    if (data < 0) {
        /* ENXIO: only a hole up to the end of the file. */
        if (errno == ENXIO) {
            *pnum = len;
            return IMAGE_BLOCK_ZERO;
        }
        *pnum = len;
        return IMAGE_BLOCK_DATA;
    }
    if ((uint64_t)data > off) {
        uint64_t n = (uint64_t)data - off;
        *pnum = n < len ? n : len;
        return IMAGE_BLOCK_ZERO;
    }
    off_t hole = lseek(img->fd, (off_t)off, SEEK_HOLE);
    if (hole < 0 || (uint64_t)hole <= off) {
        *pnum = len;
    } else {
        uint64_t n = (uint64_t)hole - off;
        *pnum = n < len ? n : len;
    }
    return IMAGE_BLOCK_DATA;
}

static int raw_resize(struct image *img, uint64_t new_size)
{
    if (ftruncate(img->fd, (off_t)new_size) < 0) {
        int r = -errno;
        return image_set_error(img, r, "resize: %s", strerror(-r));
    }
    img->length = new_size;
    return raw_flush(img);
}

const struct image_driver image_driver_raw = {
    .format = IMAGE_FORMAT_RAW,
    .open = raw_open,
    .close = raw_close,
    .pread = raw_pread,
    .pread_nowait = raw_pread_nowait,
    .pwrite = raw_pwrite,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .block_status = raw_block_status,
    .resize = raw_resize,
};
