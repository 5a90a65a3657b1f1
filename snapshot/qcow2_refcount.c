/* qcow2 refcounts: lookup and update, cluster allocation (creating refcount blocks
 * and growing the refcount table on the way), deferred frees, and the consistency
 * check behind `lodge img check`. */
#include "snapshot/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t qcow2_rb_get(struct qcow2 *q, const uint8_t *rb, uint64_t i)
{
    switch (q->refcount_order) {
    case 3:
        return rb[i];
    case 4:
        return image_be16(rb + i * 2);
    case 5:
        return image_be32(rb + i * 4);
    case 6:
        return image_be64(rb + i * 8);
    default: {
        unsigned bits = 1u << q->refcount_order;
        uint64_t bit = i * bits;
        return (rb[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    }
}

static void qcow2_rb_set(struct qcow2 *q, uint8_t *rb, uint64_t i, uint64_t v)
{
    switch (q->refcount_order) {
    case 3:
        rb[i] = (uint8_t)v;
        break;
    case 4:
        image_put_be16(rb + i * 2, (uint16_t)v);
        break;
    case 5:
        image_put_be32(rb + i * 4, (uint32_t)v);
        break;
    case 6:
        image_put_be64(rb + i * 8, v);
        break;
    default: {
        unsigned bits = 1u << q->refcount_order;
        uint64_t bit = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        rb[bit / 8] = (uint8_t)((rb[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
        break;
    }
    }
}

/* The refcount block holding CLUSTER's refcount; *RB NULL when there is none. */
static int qcow2_refblock(struct image *img, uint64_t cluster, uint8_t **rb, uint64_t *rbo)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t k = cluster / q->rb_entries;
    *rb = NULL;
    *rbo = 0;
    if (k >= q->rct_entries) {
        return 0;
    }
    uint64_t off = q->rct[k] & QCOW2_REFT_OFFSET_MASK;
    if (!off) {
        return 0;
    }
    int r = qcow2_check_offset(img, off, q->cs, true, "refcount block");
    if (r < 0) {
        return r;
    }
    *rbo = off;
    return qcow2_cache_get(img, &q->rbc, off, true, rb);
}

int qcow2_get_refcount(struct image *img, uint64_t cluster, uint64_t *rc)
{
    struct qcow2 *q = qcow2_state(img);
    uint8_t *rb;
    uint64_t rbo;
    int r = qcow2_refblock(img, cluster, &rb, &rbo);
    *rc = 0;
    if (r < 0 || !rb) {
        return r;
    }
    *rc = qcow2_rb_get(q, rb, cluster % q->rb_entries);
    return 0;
}

int qcow2_update_refcount(struct image *img, uint64_t cluster, int64_t delta)
{
    struct qcow2 *q = qcow2_state(img);
    uint8_t *rb;
    uint64_t rbo;
    int r = qcow2_refblock(img, cluster, &rb, &rbo);
    if (r < 0) {
        return r;
    }
    if (!rb) {
        return image_set_error(img, -EUCLEAN, "corrupt qcow2: no refcount block for cluster %llu",
                               (unsigned long long)cluster);
    }
    uint64_t i = cluster % q->rb_entries;
    uint64_t v = qcow2_rb_get(q, rb, i);
    if ((delta < 0 && v < (uint64_t)-delta) ||
        (delta > 0 && q->refcount_max - v < (uint64_t)delta)) {
        return image_set_error(img, -EUCLEAN,
                               "corrupt qcow2: refcount of cluster %llu would leave its range",
                               (unsigned long long)cluster);
    }
    v = (uint64_t)((int64_t)v + delta);
    qcow2_rb_set(q, rb, i, v);
    qcow2_cache_mark_dirty(&q->rbc, rbo);
    if (v == 0) {
        uint64_t off = cluster << q->cluster_bits;
        qcow2_cache_forget(&q->l2c, off);
        qcow2_cache_forget(&q->rbc, off);
        if (cluster < q->free_hint) {
            q->free_hint = cluster;
        }
    }
    return 0;
}

static bool qcow2_has_refblock(struct qcow2 *q, uint64_t k)
{
    return k < q->rct_entries && (q->rct[k] & QCOW2_REFT_OFFSET_MASK);
}

/* Grow the refcount table to at least NEED entries. The new table and the
 * refcount blocks that describe it go at the end of the file; the header switches
 * over only once they are durable. */
static int qcow2_grow_rct(struct image *img, uint64_t need)
{
    struct qcow2 *q = qcow2_state(img);
    uint64_t e = (q->file_end + q->cs - 1) >> q->cluster_bits;
    uint64_t entries = need > q->rct_entries ? need : q->rct_entries;
    uint64_t nt = 0, nrb = 0;
    for (int iter = 0; iter < 64; iter++) {
        nt = (entries * 8 + q->cs - 1) / q->cs;
        uint64_t cnt = 0, last_k = 0;
        for (uint64_t k = e / q->rb_entries; k <= (e + nt + nrb - 1) / q->rb_entries; k++) {
            if (!qcow2_has_refblock(q, k)) {
                cnt++;
                last_k = k;
            }
        }
        bool stable = cnt == nrb && last_k < entries;
        nrb = cnt;
        if (last_k >= entries) {
            entries = last_k + 1;
        }
        if (stable) {
            break;
        }
    }
    nt = (entries * 8 + q->cs - 1) / q->cs;
    if (nt * q->cs > QCOW2_MAX_RCT_BYTES) {
        return image_set_error(img, -EFBIG, "refcount table would exceed its maximum size");
    }
    uint64_t new_entries = nt * q->cs / 8;
    uint64_t *nrct = calloc(new_entries, 8);
    uint8_t *tbuf = calloc(nt, q->cs);
    uint8_t *rbuf = calloc(nrb ? nrb : 1, q->cs);
    uint64_t *rbk = calloc(nrb ? nrb : 1, 8);
    int r = 0;
    if (!nrct || !tbuf || !rbuf || !rbk) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(nrct, q->rct, q->rct_entries * 8);
    uint64_t j = 0;
    for (uint64_t k = e / q->rb_entries; k <= (e + nt + nrb - 1) / q->rb_entries && j < nrb; k++) {
        if (!qcow2_has_refblock(q, k)) {
            rbk[j] = k;
            nrct[k] = (e + nt + j) << q->cluster_bits;
            j++;
        }
    }
    for (uint64_t x = e; x < e + nt + nrb; x++) {
        uint64_t k = x / q->rb_entries;
        bool is_new = false;
        for (uint64_t i = 0; i < nrb; i++) {
            if (rbk[i] == k) {
                qcow2_rb_set(q, rbuf + i * q->cs, x % q->rb_entries, 1);
                is_new = true;
                break;
            }
        }
        if (!is_new) {
            r = qcow2_update_refcount(img, x, 1);
            if (r < 0) {
                goto out;
            }
        }
    }
    for (uint64_t i = 0; i < new_entries; i++) {
        image_put_be64(tbuf + i * 8, nrct[i]);
    }
    r = image_file_pwrite(img->fd, tbuf, nt * q->cs, e << q->cluster_bits);
    if (r == 0 && nrb) {
        r = image_file_pwrite(img->fd, rbuf, nrb * q->cs, (e + nt) << q->cluster_bits);
    }
    if (r < 0) {
        r = image_set_error(img, r, "writing refcount table: %s", strerror(-r));
        goto out;
    }
    q->data_unsynced = true;
    r = qcow2_flush_refcounts(img);
    if (r < 0) {
        goto out;
    }
    uint8_t h[12];
    image_put_be64(h, e << q->cluster_bits);
    image_put_be32(h + 8, (uint32_t)nt);
    r = image_file_pwrite(img->fd, h, sizeof(h), QCOW2_HDR_RCT_OFFSET);
    if (r == 0) {
        r = qcow2_sync(img);
    }
    if (r < 0) {
        goto out;
    }
    uint64_t old_off = q->rct_offset, old_n = q->rct_clusters;
    free(q->rct);
    q->rct = nrct;
    nrct = NULL;
    q->rct_entries = new_entries;
    q->rct_offset = e << q->cluster_bits;
    q->rct_clusters = (uint32_t)nt;
    if ((e + nt + nrb) << q->cluster_bits > q->file_end) {
        q->file_end = (e + nt + nrb) << q->cluster_bits;
    }
    for (uint64_t i = 0; i < old_n && r == 0; i++) {
        r = qcow2_update_refcount(img, (old_off >> q->cluster_bits) + i, -1);
    }
out:
    free(nrct);
    free(tbuf);
    free(rbuf);
    free(rbk);
    return r;
}

/* Give range K of clusters a refcount block, stored in the range's first cluster
 * (free: without a block every refcount in the range is zero). */
static int qcow2_create_refblock(struct image *img, uint64_t k)
{
    struct qcow2 *q = qcow2_state(img);
    if (k >= q->rct_entries) {
        return qcow2_grow_rct(img, k + 1);
    }
    if (k == 0) {
        return image_set_error(img, -EUCLEAN, "corrupt qcow2: first refcount block missing");
    }
    uint64_t c = k * q->rb_entries;
    uint64_t off = c << q->cluster_bits;
    uint8_t *rb;
    int r = qcow2_cache_get(img, &q->rbc, off, false, &rb);
    if (r < 0) {
        return r;
    }
    qcow2_rb_set(q, rb, 0, 1);
    r = image_file_pwrite(img->fd, rb, q->cs, off);
    if (r == 0) {
        r = qcow2_sync(img);
    }
    if (r < 0) {
        return image_set_error(img, r, "writing refcount block: %s", strerror(-r));
    }
    if (off + q->cs > q->file_end) {
        q->file_end = off + q->cs;
    }
    uint8_t be[8];
    image_put_be64(be, off);
    r = image_file_pwrite(img->fd, be, 8, q->rct_offset + k * 8);
    if (r < 0) {
        return image_set_error(img, r, "writing refcount table: %s", strerror(-r));
    }
    q->rct[k] = off;
    q->data_unsynced = true;
    return 0;
}

int qcow2_alloc_clusters(struct image *img, uint64_t n, uint64_t *off)
{
    struct qcow2 *q = qcow2_state(img);
    for (int attempt = 0; attempt < 1000; attempt++) {
        uint64_t end = (q->file_end + q->cs - 1) >> q->cluster_bits;
        uint64_t c = q->free_hint, run = 0;
        while (run < n) {
            uint64_t rc = 0;
            if (c < end) {
                int r = qcow2_get_refcount(img, c, &rc);
                if (r < 0) {
                    return r;
                }
            }
            run = rc ? 0 : run + 1;
            if (rc && c == q->free_hint) {
                q->free_hint = c + 1;
            }
            c++;
        }
        uint64_t start = c - n;
        bool created = false;
        for (uint64_t k = start / q->rb_entries; k <= (start + n - 1) / q->rb_entries; k++) {
            if (!qcow2_has_refblock(q, k)) {
                int r = qcow2_create_refblock(img, k);
                if (r < 0) {
                    return r;
                }
                created = true;
                break;
            }
        }
        if (created) {
            continue;
        }
        for (uint64_t i = 0; i < n; i++) {
            int r = qcow2_update_refcount(img, start + i, 1);
            if (r < 0) {
                return r;
            }
        }
        if ((start + n) << q->cluster_bits > q->file_end) {
            q->file_end = (start + n) << q->cluster_bits;
        }
        if (start == q->free_hint) {
            q->free_hint = start + n;
        }
        *off = start << q->cluster_bits;
        return 0;
    }
    return image_set_error(img, -EUCLEAN, "corrupt qcow2: cannot allocate a cluster");
}

int qcow2_free_later(struct image *img, uint64_t off, uint64_t len)
{
    struct qcow2 *q = qcow2_state(img);
    if (q->n_pending + 2 > q->cap_pending) {
        size_t cap = q->cap_pending ? q->cap_pending * 2 : 64;
        uint64_t *p = realloc(q->pending_free, cap * 8);
        if (!p) {
            return -ENOMEM;
        }
        q->pending_free = p;
        q->cap_pending = cap;
    }
    q->pending_free[q->n_pending++] = off;
    q->pending_free[q->n_pending++] = len;
    return 0;
}

int qcow2_apply_pending_frees(struct image *img)
{
    struct qcow2 *q = qcow2_state(img);
    int r = 0;
    for (size_t i = 0; i + 1 < q->n_pending && r == 0; i += 2) {
        uint64_t off = q->pending_free[i], len = q->pending_free[i + 1];
        if (len == 0) {
            continue;
        }
        for (uint64_t c = off >> q->cluster_bits; c <= (off + len - 1) >> q->cluster_bits; c++) {
            r = qcow2_update_refcount(img, c, -1);
            if (r < 0) {
                break;
            }
        }
    }
    q->n_pending = 0;
    /* The cluster compressed data was being packed into may have just been freed. */
    q->comp_pos = 0;
    return r;
}

int qcow2_flush_refcounts(struct image *img)
{
    struct qcow2 *q = qcow2_state(img);
    bool wrote = false;
    int r = qcow2_cache_write_dirty(img, &q->rbc, &wrote);
    if (r < 0) {
        return r;
    }
    if (wrote || q->data_unsynced) {
        r = qcow2_sync(img);
        if (r == 0) {
            q->data_unsynced = false;
        }
    }
    return r;
}

/* ---- check ---- */

struct qcow2_checker {
    struct image *img;
    struct qcow2 *q;
    uint32_t *ref;
    uint64_t nclusters;
    uint64_t file_size;
    struct image_check_result *res;
    FILE *log;
};

static void qcow2_check_report(struct qcow2_checker *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void qcow2_check_report(struct qcow2_checker *ck, const char *fmt, ...)
{
    if (!ck->log) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(ck->log, fmt, ap);
    va_end(ap);
    fputc('\n', ck->log);
}

static void qcow2_check_add(struct qcow2_checker *ck, uint64_t off, uint64_t len, const char *what)
{
    if (len == 0) {
        return;
    }
    uint64_t cb = ck->q->cluster_bits;
    for (uint64_t c = off >> cb; c <= (off + len - 1) >> cb; c++) {
        if (c >= ck->nclusters) {
            ck->res->corruptions++;
            qcow2_check_report(ck, "ERROR %s at 0x%llx is past the end of the file", what,
                               (unsigned long long)off);
            return;
        }
        if (ck->ref[c] < UINT32_MAX) {
            ck->ref[c]++;
        }
    }
}

/* Count the references of one L1 table and everything below it. */
static int qcow2_check_l1(struct qcow2_checker *ck, const uint64_t *l1, uint64_t l1_size)
{
    struct qcow2 *q = ck->q;
    uint8_t *l2 = malloc(q->cs);
    if (!l2) {
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < l1_size; i++) {
        uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
        if (!off) {
            continue;
        }
        if ((off & (q->cs - 1)) || off + q->cs > ck->file_size) {
            ck->res->corruptions++;
            qcow2_check_report(ck, "ERROR L2 table offset 0x%llx %s", (unsigned long long)off,
                               (off & (q->cs - 1)) ? "not cluster-aligned" : "outside the file");
            continue;
        }
        qcow2_check_add(ck, off, q->cs, "L2 table");
        if (image_file_pread(ck->img->fd, l2, q->cs, off) < 0) {
            ck->res->corruptions++;
            continue;
        }
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t e = image_be64(l2 + j * 8);
            if (e & QCOW2_OFLAG_COMPRESSED) {
                uint64_t co, cl;
                qcow2_compressed_range(q, e, &co, &cl);
                qcow2_check_add(ck, co & ~511ull, cl + (co & 511), "compressed cluster");
                continue;
            }
            uint64_t ho = e & QCOW2_OFFSET_MASK;
            if (!ho) {
                continue;
            }
            if (ho & (q->cs - 1)) {
                ck->res->corruptions++;
                qcow2_check_report(ck, "ERROR data cluster offset 0x%llx not cluster-aligned",
                                   (unsigned long long)ho);
                continue;
            }
            qcow2_check_add(ck, ho, q->cs, "data cluster");
        }
    }
    free(l2);
    return 0;
}

static int qcow2_check_snapshots(struct qcow2_checker *ck)
{
    struct qcow2 *q = ck->q;
    uint64_t pos = q->snapshots_offset;
    for (uint32_t i = 0; i < q->nb_snapshots; i++) {
        uint8_t h[40];
        if (pos + sizeof(h) > ck->file_size || image_file_pread(ck->img->fd, h, sizeof(h), pos)) {
            ck->res->corruptions++;
            qcow2_check_report(ck, "ERROR snapshot table outside the file");
            return 0;
        }
        uint64_t l1o = image_be64(h);
        uint32_t l1s = image_be32(h + 8);
        pos += sizeof(h) + image_be32(h + 36) + image_be16(h + 12) + image_be16(h + 14);
        pos = (pos + 7) & ~7ull;
        if ((uint64_t)l1s * 8 > QCOW2_MAX_L1_BYTES || (l1o & (q->cs - 1)) ||
            l1o + (uint64_t)l1s * 8 > ck->file_size) {
            ck->res->corruptions++;
            qcow2_check_report(ck, "ERROR snapshot %u L1 table at 0x%llx", i,
                               (unsigned long long)l1o);
            continue;
        }
        qcow2_check_add(ck, l1o, (uint64_t)l1s * 8, "snapshot L1 table");
        uint8_t *raw = malloc((size_t)l1s * 8 + 1);
        uint64_t *l1 = malloc((size_t)l1s * 8 + 8);
        if (!raw || !l1) {
            free(raw);
            free(l1);
            return -ENOMEM;
        }
        if (image_file_pread(ck->img->fd, raw, (size_t)l1s * 8, l1o) == 0) {
            for (uint32_t j = 0; j < l1s; j++) {
                l1[j] = image_be64(raw + j * 8);
            }
            qcow2_check_l1(ck, l1, l1s);
        }
        free(raw);
        free(l1);
    }
    if (q->nb_snapshots) {
        qcow2_check_add(ck, q->snapshots_offset, pos - q->snapshots_offset, "snapshot table");
    }
    return 0;
}

/* QCOW_OFLAG_COPIED must be set exactly on active clusters with refcount 1. */
static int qcow2_check_copied(struct qcow2_checker *ck, bool repair)
{
    struct qcow2 *q = ck->q;
    uint8_t *l2 = malloc(q->cs);
    if (!l2) {
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < q->l1_size; i++) {
        uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK;
        if (!off || (off & (q->cs - 1)) || off + q->cs > ck->file_size) {
            continue;
        }
        bool want = ck->ref[off >> q->cluster_bits] == 1;
        if (want != !!(q->l1[i] & QCOW2_OFLAG_COPIED)) {
            ck->res->corruptions++;
            qcow2_check_report(ck, "ERROR OFLAG_COPIED L2 cluster: l1_index=%llu",
                               (unsigned long long)i);
            if (repair) {
                q->l1[i] = want ? q->l1[i] | QCOW2_OFLAG_COPIED : q->l1[i] & ~QCOW2_OFLAG_COPIED;
                q->l1_dirty = true;
                ck->res->repaired++;
            }
        }
        if (image_file_pread(ck->img->fd, l2, q->cs, off) < 0) {
            continue;
        }
        bool changed = false;
        for (uint64_t j = 0; j < q->l2_entries; j++) {
            uint64_t e = image_be64(l2 + j * 8);
            uint64_t ho = e & QCOW2_OFFSET_MASK;
            if ((e & QCOW2_OFLAG_COMPRESSED) || !ho || (ho & (q->cs - 1)) ||
                (ho >> q->cluster_bits) >= ck->nclusters) {
                continue;
            }
            bool w = ck->ref[ho >> q->cluster_bits] == 1;
            if (w != !!(e & QCOW2_OFLAG_COPIED)) {
                ck->res->corruptions++;
                qcow2_check_report(ck, "ERROR OFLAG_COPIED data cluster: l2_entry=%llx",
                                   (unsigned long long)e);
                if (repair) {
                    e = w ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
                    image_put_be64(l2 + j * 8, e);
                    changed = true;
                    ck->res->repaired++;
                }
            }
        }
        if (changed && image_file_pwrite(ck->img->fd, l2, q->cs, off) < 0) {
            free(l2);
            return -EIO;
        }
    }
    free(l2);
    return 0;
}

int qcow2_check(struct image *img, bool repair, struct image_check_result *res, FILE *log)
{
    struct qcow2 *q = qcow2_state(img);
    res->checked = true;
    if (img->flags & IMAGE_OPEN_RDWR) {
        int r = qcow2_flush_all(img);
        if (r < 0) {
            return r;
        }
    }
    qcow2_cache_drop(&q->l2c);
    struct stat st;
    if (fstat(img->fd, &st) < 0) {
        return -errno;
    }
    struct qcow2_checker ck = {
        .img = img,
        .q = q,
        .file_size = (uint64_t)st.st_size,
        .res = res,
        .log = log,
    };
    ck.nclusters = (ck.file_size + q->cs - 1) >> q->cluster_bits;
    ck.ref = calloc(ck.nclusters ? ck.nclusters : 1, sizeof(uint32_t));
    if (!ck.ref) {
        return -ENOMEM;
    }
    qcow2_check_add(&ck, 0, q->cs, "header");
    qcow2_check_add(&ck, q->l1_offset, (uint64_t)q->l1_size * 8, "L1 table");
    int r = qcow2_check_l1(&ck, q->l1, q->l1_size);
    qcow2_check_add(&ck, q->rct_offset, (uint64_t)q->rct_clusters * q->cs, "refcount table");
    for (uint64_t k = 0; k < q->rct_entries; k++) {
        uint64_t rbo = q->rct[k] & QCOW2_REFT_OFFSET_MASK;
        if (rbo) {
            if ((rbo & (q->cs - 1)) || rbo + q->cs > ck.file_size) {
                res->corruptions++;
                qcow2_check_report(&ck, "ERROR refcount block %llu at 0x%llx %s",
                                   (unsigned long long)k, (unsigned long long)rbo,
                                   (rbo & (q->cs - 1)) ? "not cluster-aligned"
                                                       : "outside the file");
                continue;
            }
            qcow2_check_add(&ck, rbo, q->cs, "refcount block");
        }
    }
    if (r == 0) {
        r = qcow2_check_snapshots(&ck);
    }
    /* Compare stored and counted refcounts one refcount block range at a time:
     * ranges without a block can only be checked for missing references. */
    uint64_t nranges = (ck.nclusters + q->rb_entries - 1) / q->rb_entries;
    if (q->rct_entries > nranges) {
        nranges = q->rct_entries;
    }
    for (uint64_t k = 0; k < nranges && r == 0; k++) {
        uint64_t first = k * q->rb_entries;
        bool has_rb = qcow2_has_refblock(q, k);
        if (!has_rb && first >= ck.nclusters) {
            continue;
        }
        if (has_rb) {
            uint64_t rbo = q->rct[k] & QCOW2_REFT_OFFSET_MASK;
            if ((rbo & (q->cs - 1)) || rbo + q->cs > ck.file_size) {
                continue; /* already counted as a corruption */
            }
        }
        for (uint64_t c = first; c < first + q->rb_entries && r == 0; c++) {
            if (!has_rb && c >= ck.nclusters) {
                break;
            }
            uint64_t stored = 0;
            uint64_t want = c < ck.nclusters ? ck.ref[c] : 0;
            if (has_rb) {
                r = qcow2_get_refcount(img, c, &stored);
                if (r < 0) {
                    break;
                }
            }
            if (want) {
                res->allocated_clusters++;
            }
            if (stored == want) {
                continue;
            }
            if (stored < want) {
                res->corruptions++;
                qcow2_check_report(&ck, "ERROR cluster %llu refcount=%llu reference=%llu",
                                   (unsigned long long)c, (unsigned long long)stored,
                                   (unsigned long long)want);
            } else {
                res->leaks++;
                qcow2_check_report(&ck, "Leaked cluster %llu refcount=%llu reference=%llu",
                                   (unsigned long long)c, (unsigned long long)stored,
                                   (unsigned long long)want);
            }
            if (repair && has_rb && want <= q->refcount_max) {
                r = qcow2_update_refcount(img, c, (int64_t)want - (int64_t)stored);
                res->repaired++;
            } else if (repair) {
                qcow2_check_report(&ck, "cannot repair cluster %llu: no refcount block",
                                   (unsigned long long)c);
            }
        }
    }
    if (r == 0) {
        r = qcow2_check_copied(&ck, repair);
    }
    free(ck.ref);
    if (r == 0 && repair) {
        r = qcow2_flush_all(img);
        if (r == 0 && (q->incompat & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT))) {
            uint8_t be[8];
            q->incompat &= ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT);
            image_put_be64(be, q->incompat);
            r = image_file_pwrite(img->fd, be, 8, QCOW2_HDR_INCOMPAT);
            if (r == 0) {
                r = qcow2_sync(img);
            }
        }
    }
    if (r < 0 && !img->err[0]) {
        image_set_error(img, r, "check failed: %s", strerror(-r));
    }
    return r;
}
