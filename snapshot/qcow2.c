/* qcow2 images (versions 2 and 3): header, L1/L2 tables, reads and writes with
 * copy-on-write from the backing file, zero and compressed clusters, create,
 * resize and backing-file rewrites. Refcounts and allocation: qcow2_refcount.c. */
#include "snapshot/qcow2.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int qcow2_check_offset(struct image *img, uint64_t off, uint64_t len, bool aligned,
                       const char *what)
{
    struct qcow2 *q = qcow2_state(img);
    if (aligned && (off & (q->cs - 1))) {
        return image_set_error(img, -EUCLEAN, "corrupt qcow2: %s offset 0x%llx not cluster-aligned",
                               what, (unsigned long long)off);
    }
    if (off >= q->file_end || len > q->file_end - off) {
        return image_set_error(img, -EUCLEAN, "corrupt qcow2: %s offset 0x%llx outside the file",
                               what, (unsigned long long)off);
    }
    return 0;
}

int qcow2_sync(struct image *img)
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

static int qcow2_write_meta(struct image *img, const void *buf, size_t len, uint64_t off)
{
    int r = image_file_pwrite(img->fd, buf, len, off);
    if (r < 0) {
        return image_set_error(img, r, "metadata write at 0x%llx: %s", (unsigned long long)off,
                               strerror(-r));
    }
    return 0;
}

/* Read LEN bytes at OFF; whatever lies past the end of the file reads as zeros
 * (the last data cluster may be shorter than a cluster). */
static int qcow2_read_host(struct image *img, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(img->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int r = -errno;
            return image_set_error(img, r, "read at 0x%llx: %s", (unsigned long long)off,
                                   strerror(-r));
        }
        if (n == 0) {
            memset(p, 0, len);
            return 0;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* ---- caches ---- */

static int qcow2_cache_write_slot(struct image *img, struct qcow2_cache *c,
                                  struct qcow2_cache_slot *s)
{
    struct qcow2 *q = qcow2_state(img);
    if (c->is_l2) {
        /* An L2 entry must never reach the disk before the refcount of the cluster
         * it points to (and that cluster's data). */
        int r = qcow2_flush_refcounts(img);
        if (r < 0) {
            return r;
        }
    }
    int r = qcow2_write_meta(img, s->data, q->cs, s->offset);
    if (r < 0) {
        return r;
    }
    s->dirty = false;
    if (c->is_l2) {
        q->l2_unsynced = true;
    } else {
        q->data_unsynced = true;
    }
    return 0;
}

int qcow2_cache_get(struct image *img, struct qcow2_cache *c, uint64_t off, bool fill,
                    uint8_t **data)
{
    struct qcow2 *q = qcow2_state(img);
    struct qcow2_cache_slot *victim = NULL;
    if (c->hint < c->nslots && c->slot[c->hint].offset == off && c->slot[c->hint].data) {
        struct qcow2_cache_slot *s = &c->slot[c->hint];
        s->used = ++c->tick;
        if (!fill) {
            memset(s->data, 0, q->cs);
            s->dirty = true;
        }
        *data = s->data;
        return 0;
    }
    for (unsigned i = 0; i < c->nslots; i++) {
        struct qcow2_cache_slot *s = &c->slot[i];
        if (s->offset == off && s->data) {
            c->hint = i;
            s->used = ++c->tick;
            if (!fill) {
                memset(s->data, 0, q->cs);
                s->dirty = true;
            }
            *data = s->data;
            return 0;
        }
        /* Prefer an empty slot, then the least recently used clean one: evicting
         * a dirty L2 table costs a refcount flush and an fdatasync. */
        if (!victim) {
            victim = s;
        } else if (victim->offset == 0) {
            continue;
        } else if (s->offset == 0 || (!s->dirty && victim->dirty) ||
                   (s->dirty == victim->dirty && s->used < victim->used)) {
            victim = s;
        }
    }
    if (victim->offset && victim->dirty) {
        /* For L2 tables write every dirty one: a single refcount flush then
         * covers them all, instead of one fdatasync per eviction. */
        int r = c->is_l2 ? qcow2_cache_write_dirty(img, c, NULL)
                         : qcow2_cache_write_slot(img, c, victim);
        if (r < 0) {
            return r;
        }
    }
    if (!victim->data) {
        victim->data = malloc(q->cs);
        if (!victim->data) {
            return -ENOMEM;
        }
    }
    victim->offset = 0;
    if (fill) {
        int r = image_file_pread(img->fd, victim->data, q->cs, off);
        if (r < 0) {
            return image_set_error(img, r, "reading metadata at 0x%llx: %s",
                                   (unsigned long long)off, strerror(-r));
        }
        victim->dirty = false;
    } else {
        memset(victim->data, 0, q->cs);
        victim->dirty = true;
    }
    victim->offset = off;
    victim->used = ++c->tick;
    c->hint = (unsigned)(victim - c->slot);
    *data = victim->data;
    return 0;
}

int qcow2_cache_reserve(struct qcow2_cache *c, unsigned n)
{
    if (n <= c->nslots) {
        return 0;
    }
    struct qcow2_cache_slot *s = realloc(c->slot, n * sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    memset(s + c->nslots, 0, (n - c->nslots) * sizeof(*s));
    c->slot = s;
    c->nslots = n;
    return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    qcow2_cache_drop(c);
    free(c->slot);
    c->slot = NULL;
    c->nslots = 0;
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off)
{
    for (unsigned i = 0; i < c->nslots; i++) {
        if (c->slot[i].offset == off) {
            c->slot[i].offset = 0;
            c->slot[i].dirty = false;
        }
    }
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t off)
{
    if (c->hint < c->nslots && c->slot[c->hint].offset == off && c->slot[c->hint].data) {
        c->slot[c->hint].dirty = true;
        return;
    }
    for (unsigned i = 0; i < c->nslots; i++) {
        if (c->slot[i].offset == off && c->slot[i].data) {
            c->slot[i].dirty = true;
        }
    }
}

int qcow2_cache_write_dirty(struct image *img, struct qcow2_cache *c, bool *wrote)
{
    for (unsigned i = 0; i < c->nslots; i++) {
        struct qcow2_cache_slot *s = &c->slot[i];
        if (s->offset && s->dirty) {
            int r = qcow2_cache_write_slot(img, c, s);
            if (r < 0) {
                return r;
            }
            if (wrote) {
                *wrote = true;
            }
        }
    }
    return 0;
}

void qcow2_cache_drop(struct qcow2_cache *c)
{
    for (unsigned i = 0; i < c->nslots; i++) {
        free(c->slot[i].data);
        c->slot[i].data = NULL;
        c->slot[i].offset = 0;
        c->slot[i].dirty = false;
    }
}

/* ---- flush ---- */

static int qcow2_write_l1(struct image *img)
{
    struct qcow2 *q = qcow2_state(img);
    size_t bytes = (size_t)q->l1_size * 8;
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < q->l1_size; i++) {
        image_put_be64(buf + i * 8, q->l1[i]);
    }
    int r = bytes ? qcow2_write_meta(img, buf, bytes, q->l1_offset) : 0;
    free(buf);
    if (r == 0) {
        q->l1_dirty = false;
    }
    return r;
}

int qcow2_flush_all(struct image *img)
{
    struct qcow2 *q = qcow2_state(img);
    int r = qcow2_flush_refcounts(img); /* includes an fdatasync: data + refcounts */
    if (r < 0) {
        return r;
    }
    r = qcow2_cache_write_dirty(img, &q->l2c, NULL);
    if (r < 0) {
        return r;
    }
    if (q->l2_unsynced) {
        r = qcow2_sync(img);
        if (r < 0) {
            return r;
        }
        q->l2_unsynced = false;
    }
    if (q->l1_dirty) {
        r = qcow2_write_l1(img);
        if (r == 0) {
            r = qcow2_sync(img);
        }
        if (r < 0) {
            return r;
        }
    }
    if (q->n_pending) {
        r = qcow2_apply_pending_frees(img);
        if (r == 0) {
            r = qcow2_flush_refcounts(img);
        }
    }
    return r;
}

/* ---- tables ---- */

/* Find the L2 table for virtual cluster VCL. With ALLOC, allocate it (or copy it
 * when shared with a snapshot). *L2 is NULL when there is none. */
static int qcow2_get_l2(struct image *img, uint64_t vcl, bool alloc, uint8_t **l2, uint64_t *idx)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t l1_idx = vcl / q->l2_entries;
    *idx = vcl % q->l2_entries;
    *l2 = NULL;
    if (l1_idx >= q->l1_size) {
        return image_set_error(img, -EUCLEAN, "corrupt qcow2: L1 table too small");
    }
    uint64_t e = q->l1[l1_idx];
    uint64_t off = e & QCOW2_OFFSET_MASK;
    if (off) {
        int r = qcow2_check_offset(img, off, q->cs, true, "L2 table");
        if (r < 0) {
            return r;
        }
    }
    if (off && (!alloc || (e & QCOW2_OFLAG_COPIED))) {
        return qcow2_cache_get(img, &q->l2c, off, true, l2);
    }
    if (!alloc) {
        return 0;
    }
    uint8_t *copy = NULL;
    if (off) {
        /* Shared with a snapshot (COPIED clear): write a private copy. */
        uint8_t *old;
        copy = malloc(q->cs);
        if (!copy) {
            return -ENOMEM;
        }
        int r = qcow2_cache_get(img, &q->l2c, off, true, &old);
        if (r < 0) {
            free(copy);
            return r;
        }
        memcpy(copy, old, q->cs);
    }
    uint64_t noff;
    int r = qcow2_alloc_clusters(img, 1, &noff);
    if (r == 0) {
        r = qcow2_cache_get(img, &q->l2c, noff, false, l2);
    }
    if (r == 0 && copy) {
        memcpy(*l2, copy, q->cs);
    }
    free(copy);
    if (r < 0) {
        return r;
    }
    if (off) {
        r = qcow2_free_later(img, off, q->cs);
        if (r < 0) {
            return r;
        }
    }
    q->l1[l1_idx] = noff | QCOW2_OFLAG_COPIED;
    q->l1_dirty = true;
    return 0;
}

static uint64_t qcow2_l2_offset_of(struct image *img, uint64_t vcl)
{
    struct qcow2 *q = qcow2_state(img);
    return q->l1[vcl / q->l2_entries] & QCOW2_OFFSET_MASK;
}

void qcow2_compressed_range(struct qcow2 *q, uint64_t entry, uint64_t *off, uint64_t *len)
{
    unsigned x = 62 - (q->cluster_bits - 8);
    uint64_t o = entry & ((1ull << x) - 1);
    uint64_t nsec = ((entry >> x) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;
    *off = o;
    *len = nsec * 512 - (o & 511);
}

static int qcow2_read_compressed(struct image *img, uint64_t entry)
{
    struct qcow2 *q = qcow2_state(img);
    if (q->cbuf_entry == entry) {
        return 0;
    }
    uint64_t off, len;
    qcow2_compressed_range(q, entry, &off, &len);
    if (len > 2 * q->cs) {
        len = 2 * q->cs;
    }
    int r = qcow2_check_offset(img, off, 1, false, "compressed cluster");
    if (r < 0) {
        return r;
    }
    r = qcow2_read_host(img, q->zbuf, len, off);
    if (r < 0) {
        return r;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -15) != Z_OK) {
        return -ENOMEM;
    }
    zs.next_in = q->zbuf;
    zs.avail_in = (uInt)len;
    zs.next_out = q->cbuf;
    zs.avail_out = (uInt)q->cs;
    int zr = inflate(&zs, Z_FINISH);
    uint64_t out = q->cs - zs.avail_out;
    inflateEnd(&zs);
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) || out != q->cs) {
        q->cbuf_entry = 0;
        return image_set_error(img, -EUCLEAN,
                               "corrupt qcow2: compressed cluster at 0x%llx does not inflate",
                               (unsigned long long)off);
    }
    q->cbuf_entry = entry;
    return 0;
}

/* Content of one whole virtual cluster whose L2 entry is ENTRY (for COW). */
static int qcow2_read_cluster_by_entry(struct image *img, uint64_t vcl, uint64_t entry,
                                       uint8_t *buf)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t off = entry & QCOW2_OFFSET_MASK;
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        int r = qcow2_read_compressed(img, entry);
        if (r == 0) {
            memcpy(buf, q->cbuf, q->cs);
        }
        return r;
    }
    if (q->version >= 3 && (entry & QCOW2_OFLAG_ZERO)) {
        memset(buf, 0, q->cs);
        return 0;
    }
    if (off) {
        int r = qcow2_check_offset(img, off, 1, true, "data cluster");
        if (r < 0) {
            return r;
        }
        return qcow2_read_host(img, buf, q->cs, off);
    }
    uint64_t voff = vcl << q->cluster_bits;
    uint64_t n = img->length - voff < q->cs ? img->length - voff : q->cs;
    memset(buf + n, 0, q->cs - n);
    return image_read_backing(img, buf, n, voff);
}

static int qcow2_pread(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    struct qcow2 *q = qcow2_state(img);
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t vcl = off >> q->cluster_bits;
        uint64_t in = off & (q->cs - 1);
        uint64_t n = q->cs - in < len ? q->cs - in : len;
        uint8_t *l2;
        uint64_t idx;
        int r = qcow2_get_l2(img, vcl, false, &l2, &idx);
        if (r < 0) {
            return r;
        }
        uint64_t entry = l2 ? image_be64(l2 + idx * 8) : 0;
        uint64_t hoff = entry & QCOW2_OFFSET_MASK;
        if (entry & QCOW2_OFLAG_COMPRESSED) {
            r = qcow2_read_compressed(img, entry);
            if (r == 0) {
                memcpy(p, q->cbuf + in, n);
            }
        } else if (q->version >= 3 && (entry & QCOW2_OFLAG_ZERO)) {
            memset(p, 0, n);
        } else if (hoff) {
            /* Clusters stored back to back are one read. */
            uint64_t k = 1;
            while (n < len && idx + k < q->l2_entries) {
                uint64_t e2 = image_be64(l2 + (idx + k) * 8);
                if ((e2 & (QCOW2_OFLAG_COMPRESSED | (q->version >= 3 ? QCOW2_OFLAG_ZERO : 0))) ||
                    (e2 & QCOW2_OFFSET_MASK) != hoff + k * q->cs) {
                    break;
                }
                n = n + q->cs < len ? n + q->cs : len;
                k++;
            }
            r = qcow2_check_offset(img, hoff, (k - 1) * q->cs + 1, true, "data cluster");
            if (r == 0) {
                r = qcow2_read_host(img, p, n, hoff + in);
            }
        } else {
            r = image_read_backing(img, p, n, off);
        }
        if (r < 0) {
            return r;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* The cached copy of the table at host offset OFF, or NULL: no read, no eviction. */
static const uint8_t *qcow2_cache_peek(const struct qcow2_cache *c, uint64_t off)
{
    if (c->hint < c->nslots && c->slot[c->hint].offset == off && c->slot[c->hint].data) {
        return c->slot[c->hint].data;
    }
    for (unsigned i = 0; i < c->nslots; i++) {
        if (c->slot[i].offset == off && c->slot[i].data) {
            return c->slot[i].data;
        }
    }
    return NULL;
}

/* qcow2_pread's common cases without waiting: L2 tables already cached, data clusters
 * in the page cache, zero clusters, unallocated clusters without a backing file. The
 * rest (a table to load, which may evict a dirty one and write; compressed clusters;
 * backing files) is -EAGAIN and goes through qcow2_pread on an I/O thread. */
static int qcow2_pread_nowait(struct image *img, void *buf, uint64_t len, uint64_t off)
{
    struct qcow2 *q = qcow2_state(img);
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t vcl = off >> q->cluster_bits;
        uint64_t in = off & (q->cs - 1);
        uint64_t n = q->cs - in < len ? q->cs - in : len;
        uint64_t l1_idx = vcl / q->l2_entries;
        if (l1_idx >= q->l1_size) {
            return -EAGAIN; /* corrupt: let qcow2_pread say so */
        }
        uint64_t l2off = q->l1[l1_idx] & QCOW2_OFFSET_MASK;
        uint64_t entry = 0;
        if (l2off) {
            const uint8_t *l2 = qcow2_cache_peek(&q->l2c, l2off);
            if (!l2) {
                return -EAGAIN;
            }
            entry = image_be64(l2 + (vcl % q->l2_entries) * 8);
        }
        uint64_t hoff = entry & QCOW2_OFFSET_MASK;
        if (entry & QCOW2_OFLAG_COMPRESSED) {
            return -EAGAIN;
        } else if ((q->version >= 3 && (entry & QCOW2_OFLAG_ZERO)) || (!hoff && !img->backing)) {
            memset(p, 0, n);
        } else if (!hoff || (hoff & (q->cs - 1)) || hoff >= q->file_end ||
                   q->file_end - hoff < in + n ||
                   image_file_pread_nowait(img->fd, p, n, hoff + in) < 0) {
            return -EAGAIN;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Part of a cluster whose old content reads as zeros (unallocated without a backing file,
 * or an unallocated zero cluster) goes to a new cluster. When that cluster lies past
 * everything the file has held since it was opened, fallocate reserves it (reading as
 * zeros) and only the N new bytes are written, as QEMU does, instead of a whole cluster of
 * mostly zeros: a 4 KiB guest write into 64 KiB clusters no longer writes, and at the next
 * flush writes back, 16 times its size. Otherwise (a reused freed cluster, no fallocate)
 * the whole cluster is written. */
static int qcow2_write_new_zero_cluster(struct image *img, uint64_t vcl, uint64_t in,
                                        const uint8_t *src, uint64_t n)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t fresh = (q->file_end + q->cs - 1) & ~(q->cs - 1);
    uint64_t noff;
    int r = qcow2_alloc_clusters(img, 1, &noff);
    if (r < 0) {
        return r;
    }
    q->data_unsynced = true;
    if (noff >= fresh && fallocate(img->fd, 0, (off_t)noff, (off_t)q->cs) == 0) {
        r = image_file_pwrite(img->fd, src, n, noff + in);
    } else {
        uint8_t *buf = calloc(1, q->cs);
        if (!buf) {
            return -ENOMEM;
        }
        memcpy(buf + in, src, n);
        r = image_file_pwrite(img->fd, buf, q->cs, noff);
        free(buf);
    }
    if (r < 0) {
        return image_set_error(img, r, "write: %s", strerror(-r));
    }
    uint8_t *l2;
    uint64_t l2off = qcow2_l2_offset_of(img, vcl);
    r = qcow2_cache_get(img, &q->l2c, l2off, true, &l2);
    if (r < 0) {
        return r;
    }
    image_put_be64(l2 + (vcl % q->l2_entries) * 8, noff | QCOW2_OFLAG_COPIED);
    qcow2_cache_mark_dirty(&q->l2c, l2off);
    return 0;
}

/* Write N bytes at IN within virtual cluster VCL. */
static int qcow2_write_cluster(struct image *img, uint64_t vcl, uint64_t in, const uint8_t *src,
                               uint64_t n)
{
    struct qcow2 *q = qcow2_state(img);
    uint8_t *l2;
    uint64_t idx;
    int r = qcow2_get_l2(img, vcl, true, &l2, &idx);
    if (r < 0) {
        return r;
    }
    uint64_t l2off = qcow2_l2_offset_of(img, vcl);
    uint64_t entry = image_be64(l2 + idx * 8);
    uint64_t hoff = entry & QCOW2_OFFSET_MASK;
    bool zero = q->version >= 3 && (entry & QCOW2_OFLAG_ZERO);
    bool compressed = entry & QCOW2_OFLAG_COMPRESSED;
    if (!compressed && hoff && (entry & QCOW2_OFLAG_COPIED)) {
        r = qcow2_check_offset(img, hoff, 1, true, "data cluster");
        if (r < 0) {
            return r;
        }
        if (!zero) {
            r = image_file_pwrite(img->fd, src, n, hoff + in);
            q->data_unsynced = true;
            if (r < 0) {
                return image_set_error(img, r, "write: %s", strerror(-r));
            }
            return 0;
        }
    }
    if (n < q->cs && !hoff && !compressed && (zero || !img->backing)) {
        return qcow2_write_new_zero_cluster(img, vcl, in, src, n);
    }
    /* Build the whole new cluster: old content (backing, zeros, compressed or a
     * shared cluster) with the new bytes over it. */
    uint8_t *buf = malloc(q->cs);
    if (!buf) {
        return -ENOMEM;
    }
    if (n == q->cs) {
        memcpy(buf, src, n);
    } else {
        r = qcow2_read_cluster_by_entry(img, vcl, entry, buf);
        if (r < 0) {
            free(buf);
            return r;
        }
        memcpy(buf + in, src, n);
    }
    uint64_t noff = hoff;
    bool reuse = !compressed && hoff && (entry & QCOW2_OFLAG_COPIED); /* preallocated zero */
    if (!reuse) {
        r = qcow2_alloc_clusters(img, 1, &noff);
        if (r < 0) {
            free(buf);
            return r;
        }
    }
    r = image_file_pwrite(img->fd, buf, q->cs, noff);
    q->data_unsynced = true;
    free(buf);
    if (r < 0) {
        return image_set_error(img, r, "write: %s", strerror(-r));
    }
    if (!reuse) {
        if (compressed) {
            uint64_t co, cl;
            qcow2_compressed_range(q, entry, &co, &cl);
            r = qcow2_free_later(img, co & ~511ull, cl + (co & 511));
        } else if (hoff) {
            r = qcow2_free_later(img, hoff, q->cs);
        }
        if (r < 0) {
            return r;
        }
    }
    /* The allocation may have evicted our L2 table from its cache slot. */
    r = qcow2_cache_get(img, &q->l2c, l2off, true, &l2);
    if (r < 0) {
        return r;
    }
    image_put_be64(l2 + idx * 8, noff | QCOW2_OFLAG_COPIED);
    qcow2_cache_mark_dirty(&q->l2c, l2off);
    return 0;
}

/* Plain data cluster we may overwrite in place: its host offset, else 0. */
static uint64_t qcow2_inplace_offset(const struct qcow2 *q, uint64_t entry)
{
    if ((entry & QCOW2_OFLAG_COMPRESSED) || !(entry & QCOW2_OFLAG_COPIED) ||
        (q->version >= 3 && (entry & QCOW2_OFLAG_ZERO))) {
        return 0;
    }
    return entry & QCOW2_OFFSET_MASK;
}

/* Write LEN bytes at OFF (IN bytes into virtual cluster VCL) with as few syscalls as
 * the layout allows: a run of clusters already allocated back to back is one
 * pwrite; a run of whole unallocated clusters gets contiguous new clusters and one
 * pwrite. *DONE gets the bytes written; 0 means "use qcow2_write_cluster". */
static int qcow2_write_run(struct image *img, const uint8_t *src, uint64_t len, uint64_t off,
                           uint64_t *done)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t vcl = off >> q->cluster_bits, in = off & (q->cs - 1);
    *done = 0;
    uint8_t *l2;
    uint64_t idx;
    int r = qcow2_get_l2(img, vcl, false, &l2, &idx);
    if (r < 0) {
        return r;
    }
    uint64_t max = q->l2_entries - idx; /* runs stay inside one L2 table */
    if (l2) {
        uint64_t h0 = qcow2_inplace_offset(q, image_be64(l2 + idx * 8));
        if (h0) {
            uint64_t k = 1, bytes = q->cs - in;
            while (k < max && bytes < len &&
                   qcow2_inplace_offset(q, image_be64(l2 + (idx + k) * 8)) == h0 + k * q->cs) {
                k++;
                bytes += q->cs;
            }
            if (k < 2) {
                return 0;
            }
            bytes = bytes < len ? bytes : len;
            r = qcow2_check_offset(img, h0, k * q->cs, true, "data cluster");
            if (r < 0) {
                return r;
            }
            r = image_file_pwrite(img->fd, src, bytes, h0 + in);
            q->data_unsynced = true;
            if (r < 0) {
                return image_set_error(img, r, "write: %s", strerror(-r));
            }
            *done = bytes;
        }
        if (h0 || in) {
            return 0;
        }
    }
    if (in || len < 2 * q->cs) {
        return 0;
    }
    /* Whole clusters with nothing stored (unallocated or a plain zero cluster): the
     * old content does not matter, nothing is freed. */
    r = qcow2_get_l2(img, vcl, true, &l2, &idx);
    if (r < 0) {
        return r;
    }
    uint64_t k = 0, want = len >> q->cluster_bits;
    while (k < max && k < want) {
        uint64_t e = image_be64(l2 + (idx + k) * 8);
        if ((e & QCOW2_OFLAG_COMPRESSED) || (e & QCOW2_OFFSET_MASK)) {
            break;
        }
        k++;
    }
    if (k < 2) {
        return 0;
    }
    uint64_t l2off = qcow2_l2_offset_of(img, vcl);
    uint64_t noff;
    r = qcow2_alloc_clusters(img, k, &noff);
    if (r < 0) {
        return r;
    }
    r = image_file_pwrite(img->fd, src, k * q->cs, noff);
    q->data_unsynced = true;
    if (r < 0) {
        return image_set_error(img, r, "write: %s", strerror(-r));
    }
    /* The allocation may have evicted the L2 table from its cache slot. */
    r = qcow2_cache_get(img, &q->l2c, l2off, true, &l2);
    if (r < 0) {
        return r;
    }
    for (uint64_t i = 0; i < k; i++) {
        image_put_be64(l2 + (idx + i) * 8, (noff + i * q->cs) | QCOW2_OFLAG_COPIED);
    }
    qcow2_cache_mark_dirty(&q->l2c, l2off);
    *done = k * q->cs;
    return 0;
}

static int qcow2_pwrite(struct image *img, const void *buf, uint64_t len, uint64_t off)
{
    struct qcow2 *q = qcow2_state(img);
    const uint8_t *p = buf;
    q->cbuf_entry = 0;
    while (len > 0) {
        uint64_t in = off & (q->cs - 1);
        uint64_t n = q->cs - in < len ? q->cs - in : len;
        uint64_t done = 0;
        int r = 0;
        if (n < len) {
            r = qcow2_write_run(img, p, len, off, &done);
        }
        if (r == 0 && done == 0) {
            r = qcow2_write_cluster(img, off >> q->cluster_bits, in, p, n);
            done = n;
        }
        if (r < 0) {
            return r;
        }
        p += done;
        off += done;
        len -= done;
    }
    return 0;
}

/* Make whole cluster VCL read as zeros (ZERO true) or fall through to the
 * backing file (ZERO false, discard on an image without backing). */
static int qcow2_zero_cluster(struct image *img, uint64_t vcl)
{
    struct qcow2 *q = qcow2_state(img);
    bool have_backing = img->backing_name != NULL;
    if (q->version < 3 && have_backing) {
        uint8_t *z = calloc(1, q->cs);
        if (!z) {
            return -ENOMEM;
        }
        int r = qcow2_write_cluster(img, vcl, 0, z, q->cs);
        free(z);
        return r;
    }
    uint8_t *l2;
    uint64_t idx;
    int r = qcow2_get_l2(img, vcl, false, &l2, &idx);
    if (r < 0) {
        return r;
    }
    if (!l2 && !have_backing) {
        return 0; /* unallocated without backing already reads zeros */
    }
    r = qcow2_get_l2(img, vcl, true, &l2, &idx);
    if (r < 0) {
        return r;
    }
    uint64_t l2off = qcow2_l2_offset_of(img, vcl);
    uint64_t entry = image_be64(l2 + idx * 8);
    uint64_t nentry = q->version >= 3 && have_backing ? QCOW2_OFLAG_ZERO : 0;
    if (entry == nentry) {
        return 0;
    }
    image_put_be64(l2 + idx * 8, nentry);
    qcow2_cache_mark_dirty(&q->l2c, l2off);
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        uint64_t co, cl;
        qcow2_compressed_range(q, entry, &co, &cl);
        return qcow2_free_later(img, co & ~511ull, cl + (co & 511));
    }
    if (entry & QCOW2_OFFSET_MASK) {
        return qcow2_free_later(img, entry & QCOW2_OFFSET_MASK, q->cs);
    }
    return 0;
}

static int qcow2_zero_range(struct image *img, uint64_t off, uint64_t len, bool partial_too)
{
    struct qcow2 *q = qcow2_state(img);
    q->cbuf_entry = 0;
    while (len > 0) {
        uint64_t in = off & (q->cs - 1);
        uint64_t n = q->cs - in < len ? q->cs - in : len;
        bool whole = in == 0 && (n == q->cs || off + n == img->length);
        int r = 0;
        if (whole) {
            r = qcow2_zero_cluster(img, off >> q->cluster_bits);
        } else if (partial_too) {
            uint8_t *z = calloc(1, n);
            if (!z) {
                return -ENOMEM;
            }
            r = qcow2_write_cluster(img, off >> q->cluster_bits, in, z, n);
            free(z);
        }
        if (r < 0) {
            return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

static int qcow2_write_zeroes(struct image *img, uint64_t off, uint64_t len)
{
    return qcow2_zero_range(img, off, len, true);
}

static int qcow2_discard(struct image *img, uint64_t off, uint64_t len)
{
    return qcow2_zero_range(img, off, len, false);
}

static int qcow2_block_status(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum)
{
    struct qcow2 *q = qcow2_state(img);
    int status = -1;
    uint64_t done = 0;
    while (done < len) {
        uint64_t o = off + done;
        uint64_t in = o & (q->cs - 1);
        uint64_t n = q->cs - in < len - done ? q->cs - in : len - done;
        uint8_t *l2;
        uint64_t idx;
        int r = qcow2_get_l2(img, o >> q->cluster_bits, false, &l2, &idx);
        if (r < 0) {
            return r;
        }
        uint64_t e = l2 ? image_be64(l2 + idx * 8) : 0;
        int s;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            s = IMAGE_BLOCK_DATA;
        } else if (q->version >= 3 && (e & QCOW2_OFLAG_ZERO)) {
            s = IMAGE_BLOCK_ZERO;
        } else if (e & QCOW2_OFFSET_MASK) {
            s = IMAGE_BLOCK_DATA;
        } else {
            s = IMAGE_BLOCK_BACKING;
        }
        if (status >= 0 && s != status) {
            break;
        }
        status = s;
        done += n;
    }
    *pnum = done;
    return status;
}

static int qcow2_write_compressed(struct image *img, const void *buf, uint64_t off)
{
    struct qcow2 *q = qcow2_state(img);
    if (off & (q->cs - 1)) {
        return -EINVAL;
    }
    uint64_t vcl = off >> q->cluster_bits;
    uint8_t *out = malloc(q->cs);
    if (!out) {
        return -ENOMEM;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(out);
        return -ENOMEM;
    }
    zs.next_in = (uint8_t *)buf;
    zs.avail_in = (uInt)q->cs;
    zs.next_out = out;
    zs.avail_out = (uInt)q->cs;
    int zr = deflate(&zs, Z_FINISH);
    uint64_t clen = q->cs - zs.avail_out;
    deflateEnd(&zs);
    if (zr != Z_STREAM_END || clen + 512 >= q->cs) {
        free(out);
        return qcow2_write_cluster(img, vcl, 0, buf, q->cs); /* does not shrink */
    }
    uint8_t *l2;
    uint64_t idx;
    int r = qcow2_get_l2(img, vcl, true, &l2, &idx);
    if (r == 0 && image_be64(l2 + idx * 8) != 0) {
        r = image_set_error(img, -EEXIST, "compressed write to an allocated cluster");
    }
    uint64_t l2off = qcow2_l2_offset_of(img, vcl);
    if (r == 0) {
        uint64_t pos = q->comp_pos;
        if (pos == 0 || ((pos - 1) >> q->cluster_bits) != ((pos + clen - 1) >> q->cluster_bits) ||
            (pos & (q->cs - 1)) == 0) {
            r = qcow2_alloc_clusters(img, 1, &pos);
        } else {
            r = qcow2_update_refcount(img, pos >> q->cluster_bits, 1);
        }
        if (r == 0) {
            r = image_file_pwrite(img->fd, out, clen, pos);
            q->data_unsynced = true;
        }
        if (r == 0) {
            unsigned x = 62 - (q->cluster_bits - 8);
            uint64_t extra = ((pos + clen - 1) >> 9) - (pos >> 9);
            uint64_t e = QCOW2_OFLAG_COMPRESSED | (extra << x) | pos;
            q->comp_pos = pos + clen;
            r = qcow2_cache_get(img, &q->l2c, l2off, true, &l2);
            if (r == 0) {
                image_put_be64(l2 + idx * 8, e);
                qcow2_cache_mark_dirty(&q->l2c, l2off);
            }
        }
    }
    free(out);
    return r;
}

/* ---- header ---- */

static int qcow2_write_header_fields(struct image *img, uint64_t off, const void *buf, size_t len)
{
    int r = qcow2_write_meta(img, buf, len, off);
    if (r == 0) {
        r = qcow2_sync(img);
    }
    return r;
}

static int qcow2_resize(struct image *img, uint64_t new_size)
{
    struct qcow2 *q = qcow2_state(img);
    if (new_size < img->length) {
        return image_set_error(img, -ENOTSUP, "shrinking qcow2 images is not supported");
    }
    uint64_t span = q->cs * q->l2_entries;
    uint64_t need = (new_size + span - 1) / span;
    if (need * 8 > QCOW2_MAX_L1_BYTES) {
        return image_set_error(img, -EFBIG, "size too large for this cluster size");
    }
    int r = qcow2_flush_all(img);
    if (r < 0) {
        return r;
    }
    uint64_t old_l1 = q->l1_offset, old_cap = q->l1_capacity;
    uint64_t new_l1 = old_l1;
    if (need > q->l1_size) {
        uint64_t *nl1 = realloc(q->l1, need * 8);
        if (!nl1) {
            return -ENOMEM;
        }
        memset(nl1 + q->l1_size, 0, (need - q->l1_size) * 8);
        q->l1 = nl1;
    }
    if (need > q->l1_capacity) {
        uint64_t nclusters = (need * 8 + q->cs - 1) / q->cs;
        r = qcow2_alloc_clusters(img, nclusters, &new_l1);
        if (r < 0) {
            return r;
        }
        uint8_t *z = calloc(nclusters, q->cs);
        if (!z) {
            return -ENOMEM;
        }
        for (uint64_t i = 0; i < q->l1_size; i++) {
            image_put_be64(z + i * 8, q->l1[i]);
        }
        r = qcow2_write_meta(img, z, nclusters * q->cs, new_l1);
        free(z);
        if (r == 0) {
            r = qcow2_flush_refcounts(img);
        }
        if (r < 0) {
            return r;
        }
        q->l1_capacity = nclusters * q->cs / 8;
    } else if (need > q->l1_size) {
        /* The new entries live in the L1's last cluster: make sure they are zero. */
        uint32_t old_size = q->l1_size;
        q->l1_size = (uint32_t)need;
        r = qcow2_write_l1(img);
        q->l1_size = old_size;
        if (r == 0) {
            r = qcow2_sync(img);
        }
        if (r < 0) {
            return r;
        }
    }
    uint8_t h[24];
    image_put_be64(h, new_size);
    image_put_be32(h + 8, 0);
    image_put_be32(h + 12, (uint32_t)(need > q->l1_size ? need : q->l1_size));
    image_put_be64(h + 16, new_l1);
    r = qcow2_write_header_fields(img, QCOW2_HDR_SIZE, h, sizeof(h));
    if (r < 0) {
        return r;
    }
    if (need > q->l1_size) {
        q->l1_size = (uint32_t)need;
    }
    q->l1_offset = new_l1;
    img->length = new_size;
    if (new_l1 != old_l1) {
        uint64_t oc = (old_cap * 8 + q->cs - 1) / q->cs;
        for (uint64_t i = 0; i < oc; i++) {
            r = qcow2_update_refcount(img, (old_l1 >> q->cluster_bits) + i, -1);
            if (r < 0) {
                return r;
            }
        }
        r = qcow2_flush_refcounts(img);
    }
    return r;
}

/* Build the header extension area + backing name into cluster 0's buffer H. */
static int qcow2_build_header_tail(uint8_t *h, size_t cs, uint32_t header_length,
                                   const char *backing, enum image_format bfmt, const uint8_t *keep,
                                   size_t keep_len)
{
    size_t pos = header_length;
    if (backing && bfmt != IMAGE_FORMAT_AUTO) {
        const char *fn = image_format_name(bfmt);
        size_t l = strlen(fn);
        size_t padded = (l + 7) & ~(size_t)7;
        if (pos + 8 + padded > cs) {
            return -EFBIG;
        }
        image_put_be32(h + pos, QCOW2_EXT_BACKING_FORMAT);
        image_put_be32(h + pos + 4, (uint32_t)l);
        memset(h + pos + 8, 0, padded);
        memcpy(h + pos + 8, fn, l);
        pos += 8 + padded;
    }
    if (keep_len) {
        if (pos + keep_len > cs) {
            return -EFBIG;
        }
        memcpy(h + pos, keep, keep_len);
        pos += keep_len;
    }
    if (pos + 8 > cs) {
        return -EFBIG;
    }
    memset(h + pos, 0, 8);
    pos += 8;
    uint64_t boff = 0;
    uint32_t blen = 0;
    if (backing) {
        blen = (uint32_t)strlen(backing);
        if (blen > QCOW2_MAX_BACKING_NAME || pos + blen > cs) {
            return -EFBIG;
        }
        boff = pos;
        memcpy(h + pos, backing, blen);
        pos += blen;
    }
    image_put_be64(h + QCOW2_HDR_BACKING_OFFSET, boff);
    image_put_be32(h + QCOW2_HDR_BACKING_SIZE, blen);
    return (int)pos;
}

static int qcow2_set_backing(struct image *img, const char *name, enum image_format fmt)
{
    struct qcow2 *q = qcow2_state(img);
    int r = qcow2_flush_all(img);
    if (r < 0) {
        return r;
    }
    uint8_t *h = calloc(1, q->cs);
    if (!h) {
        return -ENOMEM;
    }
    r = image_file_pread(img->fd, h, q->header_length, 0);
    if (r == 0) {
        r = qcow2_build_header_tail(h, q->cs, q->header_length, name, fmt, q->ext_keep,
                                    q->ext_keep_len);
        if (r == -EFBIG) {
            image_set_error(img, r, "backing file name does not fit the header cluster");
        }
    }
    if (r >= 0) {
        r = qcow2_write_header_fields(img, 0, h, (size_t)r);
    }
    free(h);
    if (r < 0) {
        return r;
    }
    free(img->backing_name);
    img->backing_name = name ? strdup(name) : NULL;
    img->backing_format = name ? fmt : IMAGE_FORMAT_AUTO;
    if (img->backing) {
        image_close(img->backing);
        img->backing = NULL;
    }
    if (name && !(img->flags & IMAGE_OPEN_NO_BACKING)) {
        return image_open_backing(img, name, fmt, 0);
    }
    return 0;
}

static void qcow2_free_state(struct qcow2 *q)
{
    if (!q) {
        return;
    }
    qcow2_cache_destroy(&q->l2c);
    qcow2_cache_destroy(&q->rbc);
    free(q->l1);
    free(q->rct);
    free(q->pending_free);
    free(q->ext_keep);
    free(q->cbuf);
    free(q->zbuf);
    free(q);
}

static void qcow2_close(struct image *img)
{
    struct qcow2 *q = qcow2_state(img);
    if (q && (img->flags & IMAGE_OPEN_RDWR) && qcow2_flush_all(img) < 0) {
        log_error("img", "%s", img->err);
    }
    qcow2_free_state(q);
    img->priv = NULL;
}

static int qcow2_parse_extensions(struct image *img, const uint8_t *h, uint64_t end)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t pos = q->header_length;
    while (pos + 8 <= end) {
        uint32_t type = image_be32(h + pos);
        uint32_t len = image_be32(h + pos + 4);
        uint64_t padded = ((uint64_t)len + 7) & ~7ull;
        if (type == QCOW2_EXT_END) {
            return 0;
        }
        if (pos + 8 + len > end) {
            return image_set_error(img, -EUCLEAN,
                                   "corrupt qcow2: header extension 0x%x extends past the "
                                   "header cluster",
                                   type);
        }
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            char fmt[32];
            if (len >= sizeof(fmt)) {
                return image_set_error(img, -EUCLEAN, "corrupt qcow2: bad backing format");
            }
            memcpy(fmt, h + pos + 8, len);
            fmt[len] = 0;
            if (image_format_parse(fmt, &img->backing_format) < 0) {
                return image_set_error(img, -ENOTSUP, "backing file format '%s' not supported",
                                       fmt);
            }
        } else {
            uint64_t take = pos + 8 + padded <= end ? 8 + padded : 8 + len;
            uint8_t *k = realloc(q->ext_keep, q->ext_keep_len + 8 + padded);
            if (!k) {
                return -ENOMEM;
            }
            memset(k + q->ext_keep_len, 0, 8 + padded);
            memcpy(k + q->ext_keep_len, h + pos, take);
            q->ext_keep = k;
            q->ext_keep_len += 8 + padded;
        }
        pos += 8 + padded;
    }
    return 0;
}

static int qcow2_open_fail(struct image *img, int r)
{
    qcow2_free_state(qcow2_state(img));
    img->priv = NULL;
    if (img->backing) {
        image_close(img->backing);
        img->backing = NULL;
    }
    return r;
}

static int qcow2_open(struct image *img, int depth)
{
    struct stat st;
    if (fstat(img->fd, &st) < 0) {
        return -errno;
    }
    uint8_t h0[QCOW2_V3_HEADER_LEN] = {0};
    if ((uint64_t)st.st_size < QCOW2_V2_HEADER_LEN ||
        image_file_pread(img->fd, h0, QCOW2_V2_HEADER_LEN, 0) < 0) {
        return image_set_error(img, -EINVAL, "not a qcow2 image (truncated header)");
    }
    if (image_be32(h0) != QCOW2_MAGIC) {
        return image_set_error(img, -EINVAL, "not a qcow2 image (bad magic)");
    }
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q) {
        return -ENOMEM;
    }
    img->priv = q;
    q->l2c.is_l2 = true;
    if (qcow2_cache_reserve(&q->l2c, QCOW2_CACHE_SLOTS) < 0 ||
        qcow2_cache_reserve(&q->rbc, QCOW2_CACHE_SLOTS) < 0) {
        return qcow2_open_fail(img, -ENOMEM);
    }
    q->file_end = (uint64_t)st.st_size;
    q->version = image_be32(h0 + 4);
    if (q->version != 2 && q->version != 3) {
        return qcow2_open_fail(
            img, image_set_error(img, -ENOTSUP, "qcow2 version %u not supported", q->version));
    }
    q->cluster_bits = image_be32(h0 + 20);
    if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return qcow2_open_fail(img, image_set_error(img, -EUCLEAN,
                                                    "corrupt qcow2: cluster_bits %u out of range",
                                                    q->cluster_bits));
    }
    q->cs = 1ull << q->cluster_bits;
    q->l2_entries = q->cs / 8;
    img->cluster_size = q->cs;
    img->length = image_be64(h0 + QCOW2_HDR_SIZE);
    if (image_be32(h0 + 32) != 0) {
        return qcow2_open_fail(img,
                               image_set_error(img, -ENOTSUP, "encrypted qcow2 not supported"));
    }
    q->l1_size = image_be32(h0 + QCOW2_HDR_L1_SIZE);
    uint64_t l2_slots = q->l1_size;
    uint64_t l2_max = QCOW2_L2_CACHE_MAX_BYTES >> q->cluster_bits;
    l2_max = l2_max < QCOW2_L2_CACHE_MAX_SLOTS ? l2_max : QCOW2_L2_CACHE_MAX_SLOTS;
    if (l2_slots > l2_max) {
        l2_slots = l2_max;
    }
    if (qcow2_cache_reserve(&q->l2c, (unsigned)l2_slots) < 0) {
        return qcow2_open_fail(img, -ENOMEM);
    }
    q->l1_offset = image_be64(h0 + QCOW2_HDR_L1_OFFSET);
    q->rct_offset = image_be64(h0 + QCOW2_HDR_RCT_OFFSET);
    q->rct_clusters = image_be32(h0 + QCOW2_HDR_RCT_CLUSTERS);
    q->nb_snapshots = image_be32(h0 + 60);
    q->snapshots_offset = image_be64(h0 + 64);
    q->refcount_order = 4;
    q->header_length = QCOW2_V2_HEADER_LEN;
    if (q->version == 3) {
        if ((uint64_t)st.st_size < 104 || image_file_pread(img->fd, h0, 104, 0) < 0) {
            return qcow2_open_fail(
                img, image_set_error(img, -EINVAL, "not a qcow2 image (truncated header)"));
        }
        q->incompat = image_be64(h0 + 72);
        q->compat = image_be64(h0 + 80);
        q->autoclear = image_be64(h0 + 88);
        q->refcount_order = image_be32(h0 + 96);
        q->header_length = image_be32(h0 + 100);
        if (q->header_length < 104 || q->header_length > q->cs || (q->header_length & 7)) {
            return qcow2_open_fail(img,
                                   image_set_error(img, -EUCLEAN, "corrupt qcow2: header length %u",
                                                   q->header_length));
        }
        if (q->incompat & ~QCOW2_INCOMPAT_KNOWN) {
            uint64_t bad = q->incompat & ~QCOW2_INCOMPAT_KNOWN;
            const char *what = bad == (1u << 2)   ? " (external data file)"
                               : bad == (1u << 3) ? " (compression type other than zlib)"
                               : bad == (1u << 4) ? " (extended L2 entries)"
                                                  : "";
            return qcow2_open_fail(img, image_set_error(img, -ENOTSUP,
                                                        "qcow2 incompatible features 0x%llx%s "
                                                        "not supported",
                                                        (unsigned long long)bad, what));
        }
        if (q->refcount_order > 6) {
            return qcow2_open_fail(img, image_set_error(img, -EUCLEAN,
                                                        "corrupt qcow2: refcount_order %u",
                                                        q->refcount_order));
        }
    }
    q->rb_entries = (q->cs * 8) >> q->refcount_order;
    unsigned bits = 1u << q->refcount_order;
    q->refcount_max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    bool rw = img->flags & IMAGE_OPEN_RDWR;
    bool repair = img->flags & IMAGE_OPEN_REPAIR;
    if (rw && !repair && (q->incompat & QCOW2_INCOMPAT_CORRUPT)) {
        return qcow2_open_fail(img, image_set_error(img, -EUCLEAN,
                                                    "image is marked corrupt; refusing to "
                                                    "write (lodge img check --repair)"));
    }
    if (rw && !repair && (q->incompat & QCOW2_INCOMPAT_DIRTY)) {
        return qcow2_open_fail(img, image_set_error(img, -EUCLEAN,
                                                    "image is marked dirty (refcounts may be "
                                                    "stale); run lodge img check --repair"));
    }
    if (rw && q->nb_snapshots) {
        return qcow2_open_fail(img, image_set_error(img, -ENOTSUP,
                                                    "writing images with internal snapshots "
                                                    "is not supported"));
    }
    /* L1 table */
    uint64_t span = q->cs * q->l2_entries;
    uint64_t need = img->length / span + (img->length % span != 0);
    if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES || q->l1_size < need) {
        return qcow2_open_fail(img,
                               image_set_error(img, -EUCLEAN,
                                               "corrupt qcow2: L1 table size %u wrong for %llu "
                                               "bytes",
                                               q->l1_size, (unsigned long long)img->length));
    }
    if (q->l1_size) {
        int r = qcow2_check_offset(img, q->l1_offset, (uint64_t)q->l1_size * 8, true, "L1 table");
        if (r < 0) {
            return qcow2_open_fail(img, r);
        }
    }
    q->l1_capacity = (((uint64_t)q->l1_size * 8 + q->cs - 1) / q->cs) * q->cs / 8;
    q->l1 = calloc(q->l1_capacity ? q->l1_capacity : 1, 8);
    uint8_t *tmp = malloc(q->l1_size ? (size_t)q->l1_size * 8 : 1);
    if (!q->l1 || !tmp) {
        free(tmp);
        return qcow2_open_fail(img, -ENOMEM);
    }
    if (q->l1_size && image_file_pread(img->fd, tmp, (size_t)q->l1_size * 8, q->l1_offset) < 0) {
        free(tmp);
        return qcow2_open_fail(img, image_set_error(img, -EIO, "cannot read the L1 table"));
    }
    for (uint32_t i = 0; i < q->l1_size; i++) {
        q->l1[i] = image_be64(tmp + i * 8);
    }
    free(tmp);
    /* refcount table */
    if (q->rct_clusters == 0 || (uint64_t)q->rct_clusters * q->cs > QCOW2_MAX_RCT_BYTES) {
        return qcow2_open_fail(img, image_set_error(img, -EUCLEAN,
                                                    "corrupt qcow2: refcount table size %u",
                                                    q->rct_clusters));
    }
    int r = qcow2_check_offset(img, q->rct_offset, q->rct_clusters * q->cs, true, "refcount table");
    if (r < 0) {
        return qcow2_open_fail(img, r);
    }
    q->rct_entries = q->rct_clusters * q->cs / 8;
    q->rct = malloc(q->rct_entries * 8);
    tmp = malloc(q->rct_entries * 8);
    if (!q->rct || !tmp) {
        free(tmp);
        return qcow2_open_fail(img, -ENOMEM);
    }
    if (image_file_pread(img->fd, tmp, q->rct_entries * 8, q->rct_offset) < 0) {
        free(tmp);
        return qcow2_open_fail(img, image_set_error(img, -EIO, "cannot read the refcount table"));
    }
    for (uint64_t i = 0; i < q->rct_entries; i++) {
        q->rct[i] = image_be64(tmp + i * 8);
    }
    free(tmp);
    /* header extensions and backing file name, all inside cluster 0 */
    uint8_t *h = calloc(1, q->cs);
    q->cbuf = malloc(q->cs);
    q->zbuf = malloc(2 * q->cs);
    if (!h || !q->cbuf || !q->zbuf) {
        free(h);
        return qcow2_open_fail(img, -ENOMEM);
    }
    uint64_t hlen = q->cs < (uint64_t)st.st_size ? q->cs : (uint64_t)st.st_size;
    if (image_file_pread(img->fd, h, hlen, 0) < 0) {
        free(h);
        return qcow2_open_fail(img, -EIO);
    }
    uint64_t boff = image_be64(h + QCOW2_HDR_BACKING_OFFSET);
    uint32_t blen = image_be32(h + QCOW2_HDR_BACKING_SIZE);
    uint64_t ext_end = boff && boff < hlen ? boff : hlen;
    r = qcow2_parse_extensions(img, h, ext_end);
    if (r == 0 && boff) {
        if (blen == 0 || blen > QCOW2_MAX_BACKING_NAME || boff > hlen || blen > hlen - boff) {
            r = image_set_error(img, -EUCLEAN, "corrupt qcow2: backing file name at 0x%llx",
                                (unsigned long long)boff);
        } else {
            img->backing_name = strndup((const char *)h + boff, blen);
            if (!img->backing_name || strlen(img->backing_name) != blen) {
                r = image_set_error(img, -EUCLEAN, "corrupt qcow2: backing file name");
            }
        }
    }
    free(h);
    if (r < 0) {
        return qcow2_open_fail(img, r);
    }
    if (img->backing_name && !(img->flags & IMAGE_OPEN_NO_BACKING)) {
        r = image_open_backing(img, img->backing_name, img->backing_format, depth);
        if (r < 0) {
            return qcow2_open_fail(img, r);
        }
    }
    if (rw && q->version == 3 && q->autoclear) {
        /* We do not keep bitmaps or other autoclear data in sync: drop the claims. */
        uint8_t z[8] = {0};
        r = qcow2_write_header_fields(img, QCOW2_HDR_AUTOCLEAR, z, 8);
        if (r < 0) {
            return qcow2_open_fail(img, r);
        }
        q->autoclear = 0;
    }
    return 0;
}

int qcow2_create(const char *path, const struct image_create_opts *opts, uint64_t size, char *err,
                 size_t errlen)
{
    unsigned cb = opts->cluster_bits ? opts->cluster_bits : 16;
    unsigned version = opts->qcow2_version ? opts->qcow2_version : 3;
    if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS ||
        (version != 2 && version != 3)) {
        snprintf(err, errlen, "%s: bad cluster size or qcow2 version", path);
        return -EINVAL;
    }
    uint64_t cs = 1ull << cb;
    uint64_t span = cs * (cs / 8);
    uint64_t l1_size = size / span + (size % span != 0);
    if (l1_size == 0) {
        l1_size = 1;
    }
    uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
    uint64_t total = 3 + l1_clusters;
    if (l1_size * 8 > QCOW2_MAX_L1_BYTES || total > cs * 8 / 16) {
        snprintf(err, errlen, "%s: size too large for a %llu-byte cluster size", path,
                 (unsigned long long)cs);
        return -EFBIG;
    }
    uint8_t *buf = calloc(3, cs);
    if (!buf) {
        return -ENOMEM;
    }
    uint8_t *h = buf;
    uint32_t hl = version == 3 ? QCOW2_V3_HEADER_LEN : QCOW2_V2_HEADER_LEN;
    image_put_be32(h, QCOW2_MAGIC);
    image_put_be32(h + 4, version);
    image_put_be32(h + 20, cb);
    image_put_be64(h + QCOW2_HDR_SIZE, size);
    image_put_be32(h + QCOW2_HDR_L1_SIZE, (uint32_t)l1_size);
    image_put_be64(h + QCOW2_HDR_L1_OFFSET, 3 * cs);
    image_put_be64(h + QCOW2_HDR_RCT_OFFSET, cs);
    image_put_be32(h + QCOW2_HDR_RCT_CLUSTERS, 1);
    if (version == 3) {
        image_put_be32(h + 96, 4);
        image_put_be32(h + 100, hl);
    }
    /* A feature name table lets other tools name our feature bits. */
    static const struct {
        uint8_t type, bit;
        const char *name;
    } features[] = {
        {0, 0, "dirty bit"},
        {0, 1, "corrupt bit"},
        {1, 0, "lazy refcounts"},
    };
    size_t nf = sizeof(features) / sizeof(features[0]);
    uint8_t ft[8 + 3 * 48] = {0};
    image_put_be32(ft, QCOW2_EXT_FEATURE_TABLE);
    image_put_be32(ft + 4, (uint32_t)(nf * 48));
    for (size_t i = 0; i < nf; i++) {
        ft[8 + i * 48] = features[i].type;
        ft[8 + i * 48 + 1] = features[i].bit;
        memcpy(ft + 8 + i * 48 + 2, features[i].name, strlen(features[i].name));
    }
    size_t blen = opts->backing ? strlen(opts->backing) : 0;
    bool with_ft = version == 3 && hl + sizeof(ft) + 64 + blen <= cs;
    int pos = qcow2_build_header_tail(h, cs, hl, opts->backing, opts->backing_format,
                                      with_ft ? ft : NULL, with_ft ? sizeof(ft) : 0);
    if (pos < 0) {
        free(buf);
        snprintf(err, errlen, "%s: backing file name too long for the header", path);
        return pos;
    }
    image_put_be64(buf + cs, 2 * cs);
    for (uint64_t i = 0; i < total; i++) {
        image_put_be16(buf + 2 * cs + i * 2, 1);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int r = 0;
    if (fd < 0) {
        r = -errno;
    } else {
        if (ftruncate(fd, (off_t)(total * cs)) < 0) {
            r = -errno;
        }
        if (r == 0) {
            r = image_file_pwrite(fd, buf, 3 * cs, 0);
        }
        if (r == 0 && fdatasync(fd) < 0) {
            r = -errno;
        }
        close(fd);
    }
    free(buf);
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    }
    return r;
}

const struct image_driver image_driver_qcow2 = {
    .format = IMAGE_FORMAT_QCOW2,
    .open = qcow2_open,
    .close = qcow2_close,
    .pread = qcow2_pread,
    .pread_nowait = qcow2_pread_nowait,
    .pwrite = qcow2_pwrite,
    .flush = qcow2_flush_all,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .block_status = qcow2_block_status,
    .resize = qcow2_resize,
    .write_compressed = qcow2_write_compressed,
    .set_backing = qcow2_set_backing,
    .check = qcow2_check,
};
