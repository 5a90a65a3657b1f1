/* VDI import (read-only): VirtualBox's format, version 1.1, dynamic or fixed. A
 * block map of little-endian u32 entries maps each block to its place in the data
 * area; 0xffffffff and 0xfffffffe mean "not allocated" and "zero". */
#include "snapshot/image_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_UNALLOCATED 0xfffffffeu /* this and above: reads as zeros */
#define VDI_MAX_BLOCK (64u << 20)

struct vdi {
    uint32_t *bmap;       /* block map (header offset_bmap) */
    uint32_t blocks;      /* blocks_in_image */
    uint64_t block_size;  /* header block_size */
    uint64_t data_offset; /* header offset_data */
    uint64_t file_size;
};

static void vdi_close(struct image *img)
{
    struct vdi *d = img->priv;
    if (d) {
        free(d->bmap);
        free(d);
    }
    img->priv = NULL;
}

static int vdi_open(struct image *img, int depth)
{
    struct stat st;
    if (fstat(img->fd, &st) < 0) {
        return -errno;
    }
    uint8_t h[0x190];
    if ((uint64_t)st.st_size < sizeof(h) || image_file_pread(img->fd, h, sizeof(h), 0) < 0 ||
        image_le32(h + 0x40) != VDI_SIGNATURE) {
        return image_set_error(img, -EINVAL, "not a vdi image (bad magic)");
    }
    if (image_le32(h + 0x44) != VDI_VERSION_1_1) {
        return image_set_error(img, -ENOTSUP, "vdi version 0x%x not supported",
                               image_le32(h + 0x44));
    }
    uint32_t type = image_le32(h + 0x4c);
    uint64_t bmap_off = image_le32(h + 0x154);
    uint64_t data_off = image_le32(h + 0x158);
    uint64_t disk_size = image_le64(h + 0x170);
    uint32_t block_size = image_le32(h + 0x178);
    uint32_t block_extra = image_le32(h + 0x17c);
    uint32_t blocks = image_le32(h + 0x180);
    if ((type != 1 && type != 2) || block_extra != 0) {
        return image_set_error(img, -ENOTSUP, "vdi image type %u / block extra %u not supported",
                               type, block_extra);
    }
    if (block_size < 512 || block_size > VDI_MAX_BLOCK || (block_size & (block_size - 1)) ||
        (uint64_t)blocks * block_size < disk_size) {
        return image_set_error(img, -EUCLEAN, "corrupt vdi: bad block geometry");
    }
    if (bmap_off + (uint64_t)blocks * 4 > (uint64_t)st.st_size) {
        return image_set_error(img, -EUCLEAN, "corrupt vdi: block map outside the file");
    }
    struct vdi *d = calloc(1, sizeof(*d));
    uint8_t *raw = malloc((size_t)blocks * 4 + 1);
    if (!d || !raw) {
        free(d);
        free(raw);
        return -ENOMEM;
    }
    img->priv = d;
    d->bmap = malloc((size_t)blocks * 4 + 4);
    if (!d->bmap) {
        free(raw);
        vdi_close(img);
        return -ENOMEM;
    }
    int r = image_file_pread(img->fd, raw, (size_t)blocks * 4, bmap_off);
    for (uint32_t i = 0; r == 0 && i < blocks; i++) {
        d->bmap[i] = image_le32(raw + i * 4);
    }
    free(raw);
    if (r < 0) {
        vdi_close(img);
        return image_set_error(img, r, "reading block map");
    }
    d->blocks = blocks;
    d->block_size = block_size;
    d->data_offset = data_off;
    d->file_size = (uint64_t)st.st_size;
    img->length = disk_size;
    img->cluster_size = block_size;
    return 0;
}

static int vdi_pread(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    struct vdi *d = img->priv;
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t b = off / d->block_size, in = off % d->block_size;
        uint64_t n = d->block_size - in < len ? d->block_size - in : len;
        uint32_t e = b < d->blocks ? d->bmap[b] : VDI_UNALLOCATED;
        if (e >= VDI_UNALLOCATED) {
            memset(p, 0, n);
        } else {
            uint64_t host = d->data_offset + (uint64_t)e * d->block_size;
            if (host >= d->file_size) {
                return image_set_error(img, -EUCLEAN,
                                       "corrupt vdi: block %llu offset 0x%llx outside the file",
                                       (unsigned long long)b, (unsigned long long)host);
            }
            uint64_t avail = 0;
            if (host + in < d->file_size) {
                avail = d->file_size - host - in < n ? d->file_size - host - in : n;
            }
            int r = avail ? image_file_pread(img->fd, p, avail, host + in) : 0;
            if (r < 0) {
                return image_set_error(img, r, "read: %s", strerror(-r));
            }
            memset(p + avail, 0, n - avail);
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vdi_block_status(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
    struct vdi *d = img->priv;
    uint64_t b = off / d->block_size, in = off % d->block_size;
    *pnum = d->block_size - in < len ? d->block_size - in : len;
    uint32_t e = b < d->blocks ? d->bmap[b] : VDI_UNALLOCATED;
    return e >= VDI_UNALLOCATED ? IMAGE_BLOCK_ZERO : IMAGE_BLOCK_DATA;
}

const struct image_driver image_driver_vdi = {
    .format = IMAGE_FORMAT_VDI,
    .open = vdi_open,
    .close = vdi_close,
    .pread = vdi_pread,
    .block_status = vdi_block_status,
};
