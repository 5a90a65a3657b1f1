/* VMDK import (read-only): monolithicSparse and streamOptimized extents, i.e. the
 * single-file sparse format with a grain directory, grain tables and (for
 * streamOptimized) deflate-compressed grains behind markers. All integers are
 * little-endian; offsets in the header and tables count 512-byte sectors. */
#include "snapshot/image_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define VMDK_MAGIC 0x564d444bu /* "KDMV" */
#define VMDK_GD_AT_END 0xffffffffffffffffull
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS (1u << 17)
#define VMDK_MAX_GRAIN (64ull << 20)

struct vmdk {
    uint32_t flags;       /* SparseExtentHeader.flags */
    uint64_t grain_bytes; /* grainSize * 512 */
    uint64_t gte_per_gt;  /* numGTEsPerGT */
    uint32_t *gd;         /* grain directory: GT sector offsets */
    uint64_t gd_entries;
    uint32_t *gt;         /* one cached grain table */
    uint64_t gt_sector;   /* its sector (0 = none cached) */
    uint8_t *grain;       /* one inflated grain */
    uint64_t grain_index; /* which (UINT64_MAX = none) */
    uint64_t file_size;
};

struct vmdk_header {
    uint32_t version, flags;
    uint64_t capacity, grain_size, gd_offset;
    uint32_t gte_per_gt;
};

static void vmdk_parse_header(const uint8_t *h, struct vmdk_header *vh)
{
    vh->version = image_le32(h + 4);
    vh->flags = image_le32(h + 8);
    vh->capacity = image_le64(h + 12);
    vh->grain_size = image_le64(h + 20);
    vh->gte_per_gt = image_le32(h + 44);
    vh->gd_offset = image_le64(h + 56);
}

static void vmdk_close(struct image *img)
{
    struct vmdk *v = img->priv;
    if (v) {
        free(v->gd);
        free(v->gt);
        free(v->grain);
        free(v);
    }
    img->priv = NULL;
}

static int vmdk_fail(struct image *img, int r)
{
    vmdk_close(img);
    return r;
}

static int vmdk_open(struct image *img, int depth)
{
    struct stat st;
    if (fstat(img->fd, &st) < 0) {
        return -errno;
    }
    uint8_t h[512];
    if (st.st_size < 512 || image_file_pread(img->fd, h, sizeof(h), 0) < 0) {
        return image_set_error(img, -EINVAL, "not a vmdk image (truncated header)");
    }
    if (image_le32(h) != VMDK_MAGIC) {
        return image_set_error(img, -ENOTSUP,
                               "not a vmdk sparse extent (descriptor-only or split VMDKs are "
                               "not supported)");
    }
    struct vmdk *v = calloc(1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    img->priv = v;
    v->file_size = (uint64_t)st.st_size;
    v->grain_index = UINT64_MAX;
    struct vmdk_header vh;
    vmdk_parse_header(h, &vh);
    if (vh.gd_offset == VMDK_GD_AT_END) {
        /* streamOptimized: the real header is the footer, 1024 bytes from the end. */
        if (v->file_size < 1536 || image_file_pread(img->fd, h, sizeof(h), v->file_size - 1024) ||
            image_le32(h) != VMDK_MAGIC) {
            return vmdk_fail(img, image_set_error(img, -EUCLEAN, "corrupt vmdk: footer missing"));
        }
        vmdk_parse_header(h, &vh);
    }
    if (vh.version < 1 || vh.version > 3) {
        return vmdk_fail(
            img, image_set_error(img, -ENOTSUP, "vmdk version %u not supported", vh.version));
    }
    v->flags = vh.flags;
    if (vh.grain_size == 0 || (vh.grain_size & (vh.grain_size - 1)) ||
        vh.grain_size * 512 > VMDK_MAX_GRAIN || vh.gte_per_gt == 0 || vh.gte_per_gt > (1u << 20) ||
        vh.capacity > (1ull << 46)) {
        return vmdk_fail(img, image_set_error(img, -EUCLEAN, "corrupt vmdk: bad geometry"));
    }
    v->grain_bytes = vh.grain_size * 512;
    v->gte_per_gt = vh.gte_per_gt;
    img->length = vh.capacity * 512;
    img->cluster_size = v->grain_bytes;
    uint64_t span = vh.grain_size * vh.gte_per_gt;
    v->gd_entries = (vh.capacity + span - 1) / span;
    if (vh.gd_offset == 0 || vh.gd_offset > v->file_size / 512 ||
        v->gd_entries * 4 > v->file_size - vh.gd_offset * 512) {
        return vmdk_fail(img, image_set_error(img, -EUCLEAN,
                                              "corrupt vmdk: grain directory at sector %llu "
                                              "outside the file",
                                              (unsigned long long)vh.gd_offset));
    }
    uint8_t *raw = malloc(v->gd_entries * 4 + 1);
    v->gd = malloc(v->gd_entries * 4 + 4);
    v->gt = malloc(v->gte_per_gt * 4);
    v->grain = malloc(v->grain_bytes);
    if (!raw || !v->gd || !v->gt || !v->grain) {
        free(raw);
        return vmdk_fail(img, -ENOMEM);
    }
    int r = image_file_pread(img->fd, raw, v->gd_entries * 4, vh.gd_offset * 512);
    for (uint64_t i = 0; r == 0 && i < v->gd_entries; i++) {
        v->gd[i] = image_le32(raw + i * 4);
    }
    free(raw);
    if (r < 0) {
        return vmdk_fail(img, image_set_error(img, r, "reading grain directory"));
    }
    return 0;
}

static int vmdk_load_grain(struct image *img, uint64_t g, const uint8_t **data)
{
    struct vmdk *v = img->priv;
    *data = NULL;
    uint64_t gdi = g / v->gte_per_gt, gti = g % v->gte_per_gt;
    if (gdi >= v->gd_entries || v->gd[gdi] == 0) {
        return 0;
    }
    uint64_t gts = v->gd[gdi];
    if (gts * 512 + v->gte_per_gt * 4 > v->file_size) {
        return image_set_error(img, -EUCLEAN,
                               "corrupt vmdk: grain table offset 0x%llx outside the file",
                               (unsigned long long)gts * 512);
    }
    if (v->gt_sector != gts) {
        uint8_t *raw = malloc(v->gte_per_gt * 4);
        if (!raw) {
            return -ENOMEM;
        }
        int r = image_file_pread(img->fd, raw, v->gte_per_gt * 4, gts * 512);
        for (uint64_t i = 0; r == 0 && i < v->gte_per_gt; i++) {
            v->gt[i] = image_le32(raw + i * 4);
        }
        free(raw);
        if (r < 0) {
            v->gt_sector = 0;
            return image_set_error(img, r, "reading grain table");
        }
        v->gt_sector = gts;
    }
    uint64_t gs = v->gt[gti];
    if (gs == 0 || (gs == 1 && (v->flags & VMDK_FLAG_ZERO_GRAIN))) {
        return 0;
    }
    uint64_t off = gs * 512;
    if (off >= v->file_size) {
        return image_set_error(img, -EUCLEAN, "corrupt vmdk: grain offset 0x%llx outside the file",
                               (unsigned long long)off);
    }
    if (v->grain_index == g) {
        *data = v->grain;
        return 0;
    }
    if (!(v->flags & VMDK_FLAG_COMPRESSED)) {
        uint64_t n = v->file_size - off < v->grain_bytes ? v->file_size - off : v->grain_bytes;
        memset(v->grain, 0, v->grain_bytes);
        int r = image_file_pread(img->fd, v->grain, n, off);
        if (r < 0) {
            return image_set_error(img, r, "reading grain");
        }
    } else {
        uint64_t len = v->file_size - off;
        if (v->flags & VMDK_FLAG_MARKERS) {
            uint8_t m[12];
            if (len < 12 || image_file_pread(img->fd, m, 12, off) < 0) {
                return image_set_error(img, -EUCLEAN, "corrupt vmdk: grain marker");
            }
            off += 12;
            len = image_le32(m + 8);
            if (len > v->file_size - off) {
                return image_set_error(img, -EUCLEAN,
                                       "corrupt vmdk: compressed grain past the end of the file");
            }
        }
        if (len > 2 * v->grain_bytes + 1024) {
            len = 2 * v->grain_bytes + 1024;
        }
        uint8_t *z = malloc(len ? len : 1);
        if (!z) {
            return -ENOMEM;
        }
        int r = image_file_pread(img->fd, z, len, off);
        uLongf out = v->grain_bytes;
        int zr = r == 0 ? uncompress(v->grain, &out, z, len) : Z_DATA_ERROR;
        free(z);
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            v->grain_index = UINT64_MAX;
            return image_set_error(img, -EUCLEAN, "corrupt vmdk: grain %llu does not inflate",
                                   (unsigned long long)g);
        }
        if (out < v->grain_bytes) {
            memset(v->grain + out, 0, v->grain_bytes - out);
        }
    }
    v->grain_index = g;
    *data = v->grain;
    return 0;
}

static int vmdk_pread(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    struct vmdk *v = img->priv;
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t in = off % v->grain_bytes;
        uint64_t n = v->grain_bytes - in < len ? v->grain_bytes - in : len;
        const uint8_t *g;
        int r = vmdk_load_grain(img, off / v->grain_bytes, &g);
        if (r < 0) {
            return r;
        }
        if (g) {
            memcpy(p, g + in, n);
        } else {
            memset(p, 0, n);
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vmdk_block_status(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
    struct vmdk *v = img->priv;
    uint64_t in = off % v->grain_bytes;
    *pnum = v->grain_bytes - in < len ? v->grain_bytes - in : len;
    uint64_t g = off / v->grain_bytes;
    uint64_t gdi = g / v->gte_per_gt;
    if (gdi >= v->gd_entries || v->gd[gdi] == 0) {
        return IMAGE_BLOCK_ZERO;
    }
    return IMAGE_BLOCK_DATA;
}

const struct image_driver image_driver_vmdk = {
    .format = IMAGE_FORMAT_VMDK,
    .open = vmdk_open,
    .close = vmdk_close,
    .pread = vmdk_pread,
    .block_status = vmdk_block_status,
};
