/* qcow2 internals shared by qcow2.c (tables, I/O, create) and qcow2_refcount.c
 * (refcounts, cluster allocation, check). Layout and flag names follow QEMU's
 * docs/interop/qcow2.txt; all on-disk integers are big-endian.
 *
 * Crash consistency: metadata lives in write-back caches and reaches the disk in
 * dependency order, each step made durable before the next starts:
 *   data clusters and refcount increments -> fdatasync -> L2 tables -> fdatasync
 *   -> L1 table -> fdatasync -> refcount decrements of clusters no longer referenced.
 * So a crash at any moment leaves at worst leaked clusters, never a reference to a
 * cluster whose refcount is zero. */
#ifndef LODGE_SNAPSHOT_QCOW2_H
#define LODGE_SNAPSHOT_QCOW2_H

#include "snapshot/image_int.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_V3_HEADER_LEN 112
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_RCT_BYTES (8u << 20)
#define QCOW2_MAX_BACKING_NAME 1023

#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull

#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_KNOWN (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QCOW2_EXT_END 0u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u

/* Header field offsets (docs/interop/qcow2.txt "Header"). */
#define QCOW2_HDR_BACKING_OFFSET 8
#define QCOW2_HDR_BACKING_SIZE 16
#define QCOW2_HDR_SIZE 24
#define QCOW2_HDR_L1_SIZE 36
#define QCOW2_HDR_L1_OFFSET 40
#define QCOW2_HDR_RCT_OFFSET 48
#define QCOW2_HDR_RCT_CLUSTERS 56
#define QCOW2_HDR_INCOMPAT 72
#define QCOW2_HDR_AUTOCLEAR 88

#define QCOW2_CACHE_SLOTS 32 /* refcount blocks; the minimum for L2 tables */
/* L2 tables: enough slots to map the whole disk, as QEMU does, so that random I/O
 * over a big disk does not evict dirty tables (each eviction costs an fdatasync),
 * within this much memory and this many slots (lookups scan the slots). */
#define QCOW2_L2_CACHE_MAX_BYTES (32u << 20)
#define QCOW2_L2_CACHE_MAX_SLOTS 1024

struct qcow2_cache_slot {
    uint64_t offset; /* host offset of the cached cluster; 0 = empty slot */
    uint8_t *data;
    bool dirty;
    uint64_t used; /* LRU tick */
};

struct qcow2_cache {
    struct qcow2_cache_slot *slot; /* nslots entries; data allocated on first use */
    unsigned nslots;
    unsigned hint; /* slot of the last hit: sequential I/O stays in one table */
    uint64_t tick;
    bool is_l2; /* L2 tables wait for refcounts to be durable before they are written */
};

struct qcow2 {
    uint32_t version;
    unsigned cluster_bits;
    uint64_t cs;          /* cluster size in bytes */
    uint64_t l2_entries;  /* entries per L2 table */
    uint64_t *l1;         /* host byte order */
    uint32_t l1_size;     /* entries in use */
    uint64_t l1_capacity; /* entries that fit the clusters the L1 table occupies */
    uint64_t l1_offset;
    bool l1_dirty;
    uint64_t *rct; /* refcount table, host byte order */
    uint64_t rct_entries;
    uint64_t rct_offset;
    uint32_t rct_clusters;
    unsigned refcount_order;
    uint64_t rb_entries; /* refcounts per refcount block */
    uint64_t refcount_max;
    uint64_t incompat, compat, autoclear;
    uint32_t header_length;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t file_end;  /* bytes: every cluster at or past this is free */
    uint64_t free_hint; /* cluster index: no free cluster below it */
    struct qcow2_cache l2c, rbc;
    bool l2_unsynced;       /* L2 tables written since the last fdatasync */
    bool data_unsynced;     /* data or refcount blocks written since the last fdatasync */
    uint64_t *pending_free; /* host offsets/lengths, pairs, freed after the L1 is durable */
    size_t n_pending, cap_pending;
    uint64_t comp_pos; /* next free byte of the cluster compressed data is packed into */
    uint8_t *ext_keep; /* header extensions we keep verbatim when rewriting the header */
    size_t ext_keep_len;
    uint8_t *cbuf;       /* one decompressed cluster */
    uint64_t cbuf_entry; /* L2 entry cbuf holds (0 = none) */
    uint8_t *zbuf;       /* compressed input, 2 clusters */
};

static inline struct qcow2 *qcow2_state(struct image *img)
{
    return img->priv;
}

/* -EUCLEAN with "corrupt qcow2: WHAT offset 0x... outside the file/unaligned"
 * unless [off, off+len) is cluster-aligned (when ALIGNED) and inside the file. */
int qcow2_check_offset(struct image *img, uint64_t off, uint64_t len, bool aligned,
                       const char *what);

/* Write-back caches of L2 tables and refcount blocks. *DATA stays valid until the
 * next get on the same cache. FILL reads from disk; otherwise the slot is zeroed. */
int qcow2_cache_get(struct image *img, struct qcow2_cache *c, uint64_t off, bool fill,
                    uint8_t **data);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t off);
int qcow2_cache_write_dirty(struct image *img, struct qcow2_cache *c, bool *wrote);
void qcow2_cache_drop(struct qcow2_cache *c);
/* Make room for N slots (never shrinks); 0 or -ENOMEM. Free with qcow2_cache_destroy. */
int qcow2_cache_reserve(struct qcow2_cache *c, unsigned n);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Forget a cached cluster that was freed (its contents must never be written back). */
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off);
int qcow2_sync(struct image *img);
/* Everything durable, in dependency order (see the top of this file). */
int qcow2_flush_all(struct image *img);

/* Refcounts (qcow2_refcount.c). */
int qcow2_get_refcount(struct image *img, uint64_t cluster, uint64_t *rc);
int qcow2_update_refcount(struct image *img, uint64_t cluster, int64_t delta);
/* Allocate N contiguous clusters with refcount 1; *OFF gets the first one's offset. */
int qcow2_alloc_clusters(struct image *img, uint64_t n, uint64_t *off);
/* Queue host range [off, off+len) for a refcount decrement once the tables that
 * referenced it are durable. */
int qcow2_free_later(struct image *img, uint64_t off, uint64_t len);
int qcow2_apply_pending_frees(struct image *img);
/* Write dirty refcount blocks and fdatasync (also makes data writes durable). */
int qcow2_flush_refcounts(struct image *img);
int qcow2_check(struct image *img, bool repair, struct image_check_result *res, FILE *log);

/* Host range [off, off+len) a compressed L2 entry's data covers. */
void qcow2_compressed_range(struct qcow2 *q, uint64_t entry, uint64_t *off, uint64_t *len);

#endif
