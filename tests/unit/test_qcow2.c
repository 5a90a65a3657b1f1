/* qcow2 through snapshot/image.h: cluster allocation, read-modify-write across
 * cluster boundaries, backing chains and copy-on-write, zero and compressed
 * clusters, refcount table growth, resize, check, and refusal of broken headers. */
#include "snapshot/image.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tdir[64];

static const char *tpath(const char *name)
{
    static char buf[8][128];
    static int n;
    char *p = buf[n++ % 8];
    snprintf(p, 128, "%s/%s", tdir, name);
    return p;
}

static uint8_t pat(uint64_t off, unsigned seed)
{
    uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 48);
    return (uint8_t)((x >> 29) ^ (x >> 7));
}

static void fill(uint8_t *b, uint64_t off, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        b[i] = pat(off + i, seed);
    }
}

/* 1 when [off, off+len) of IMG holds pattern SEED (seed 0: zeros). */
static int holds(struct image *img, uint64_t off, size_t len, unsigned seed)
{
    uint8_t *b = malloc(len);
    int ok = image_pread(img, b, len, off) == 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = b[i] == (seed ? pat(off + i, seed) : 0);
    }
    free(b);
    return ok;
}

static int put(struct image *img, uint64_t off, size_t len, unsigned seed)
{
    uint8_t *b = malloc(len);
    fill(b, off, len, seed);
    int r = image_pwrite(img, b, len, off);
    free(b);
    return r;
}

static struct image *mk(const char *name, uint64_t size, unsigned cb, const char *backing,
                        unsigned version)
{
    struct image_create_opts o = {.format = IMAGE_FORMAT_QCOW2,
                                  .size = size,
                                  .cluster_bits = cb,
                                  .backing = backing,
                                  .qcow2_version = version};
    char err[IMAGE_ERR_LEN];
    if (image_create(tpath(name), &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    struct image *img = NULL;
    if (image_open(tpath(name), IMAGE_FORMAT_AUTO, IMAGE_OPEN_RDWR, &img, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
    }
    return img;
}

static off_t fsize(const char *name)
{
    struct stat st;
    return stat(tpath(name), &st) == 0 ? st.st_size : -1;
}

static struct image_check_result check(struct image *img)
{
    struct image_check_result r;
    CU_ASSERT_EQUAL(image_check(img, false, &r, NULL), 0);
    return r;
}

/* One write or read spanning many clusters: partial ends, whole unallocated runs
 * (allocated back to back), runs already stored in place, zero clusters and
 * clusters from a backing file in the middle. */
static void test_multi_cluster_runs(void)
{
    const uint64_t cs = 4096;
    struct image *base = mk("runs-base.qcow2", 1 << 20, 12, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    CU_ASSERT_EQUAL(put(base, 60 * cs, 8 * cs, 9), 0);
    image_close(base);
    struct image *img = mk("runs.qcow2", 1 << 20, 12, "runs-base.qcow2", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    off_t before = fsize("runs.qcow2");
    CU_ASSERT_EQUAL(put(img, 2 * cs, 16 * cs, 1), 0); /* whole clusters only */
    CU_ASSERT_EQUAL(image_flush(img), 0);
    /* 16 data clusters, plus at most the L2 table: nothing allocated twice */
    CU_ASSERT(fsize("runs.qcow2") - before <= (off_t)(17 * cs));
    CU_ASSERT_EQUAL(put(img, 30 * cs + 100, 10 * cs, 2), 0); /* partial ends */
    CU_ASSERT_EQUAL(put(img, 51 * cs, cs, 3), 0);            /* host order 51 before 50 */
    CU_ASSERT_EQUAL(image_write_zeroes(img, 53 * cs, cs), 0);
    CU_ASSERT_EQUAL(put(img, 50 * cs + 7, 14 * cs, 4), 0); /* over backing data at 60.. */
    CU_ASSERT_EQUAL(put(img, 4 * cs + 5, 6 * cs, 5), 0);   /* in place, back to back */
    for (int pass = 0; pass < 2; pass++) {
        CU_ASSERT(holds(img, 0, 2 * cs, 0));
        CU_ASSERT(holds(img, 2 * cs, 2 * cs + 5, 1));
        CU_ASSERT(holds(img, 4 * cs + 5, 6 * cs, 5));
        CU_ASSERT(holds(img, 10 * cs + 5, 8 * cs - 5, 1));
        CU_ASSERT(holds(img, 30 * cs + 100, 10 * cs, 2));
        CU_ASSERT(holds(img, 50 * cs + 7, 14 * cs, 4));
        CU_ASSERT(holds(img, 64 * cs + 7, 4 * cs - 7, 9)); /* backing data after the write */
        CU_ASSERT(holds(img, 68 * cs, cs, 0));
        struct image_check_result r = check(img);
        CU_ASSERT_EQUAL(r.corruptions, 0);
        CU_ASSERT_EQUAL(r.leaks, 0);
        image_close(img);
        char err[IMAGE_ERR_LEN];
        img = NULL;
        CU_ASSERT_EQUAL_FATAL(
            image_open(tpath("runs.qcow2"), 0, IMAGE_OPEN_RDWR, &img, err, sizeof(err)), 0);
    }
    image_close(img);
}

/* More L2 tables than the cache holds (512-byte clusters: one table maps 32 KiB, the
 * cache at most 1024 tables): dirty tables are evicted and written back in order. */
static void test_l2_cache_eviction(void)
{
    const uint64_t span = 64 * 512, n = 1500;
    struct image *img = mk("evict.qcow2", n * span, 9, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    for (uint64_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(put(img, i * span + 100, 8, 7), 0);
    }
    for (int pass = 0; pass < 2; pass++) {
        int bad = 0;
        for (uint64_t i = 0; i < n; i++) {
            bad += !holds(img, i * span + 100, 8, 7) || !holds(img, i * span + 512, 8, 0);
        }
        CU_ASSERT_EQUAL(bad, 0);
        struct image_check_result r = check(img);
        CU_ASSERT_EQUAL(r.corruptions, 0);
        CU_ASSERT_EQUAL(r.leaks, 0);
        image_close(img);
        char err[IMAGE_ERR_LEN];
        img = NULL;
        CU_ASSERT_EQUAL_FATAL(
            image_open(tpath("evict.qcow2"), 0, IMAGE_OPEN_RDWR, &img, err, sizeof(err)), 0);
    }
    image_close(img);
}

static void test_create_reopen(void)
{
    struct image *img = mk("c.qcow2", 5000000, 0, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_EQUAL(image_get_format(img), IMAGE_FORMAT_QCOW2);
    CU_ASSERT_EQUAL(image_length(img), 5000000);
    CU_ASSERT_EQUAL(image_cluster_size(img), 65536);
    CU_ASSERT_TRUE(holds(img, 0, 5000000, 0));
    CU_ASSERT_EQUAL(image_pread(img, (uint8_t[2]){0}, 2, 4999999), -EINVAL);
    struct image_check_result r = check(img);
    CU_ASSERT_TRUE(r.checked);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    image_close(img);
}

static void test_allocation(void)
{
    struct image *img = mk("a.qcow2", 1 << 20, 16, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    off_t before = fsize("a.qcow2");
    CU_ASSERT_EQUAL(before, 4 * 65536); /* header, refcount table, refcount block, L1 */
    CU_ASSERT_EQUAL(put(img, 3 * 65536, 65536, 1), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_EQUAL(fsize("a.qcow2"), 6 * 65536); /* + one L2 table + one data cluster */
    uint64_t pnum;
    CU_ASSERT_EQUAL(image_block_status(img, 3 * 65536, 2 * 65536, &pnum), IMAGE_BLOCK_DATA);
    CU_ASSERT_EQUAL(pnum, 65536);
    CU_ASSERT_EQUAL(image_block_status(img, 0, 3 * 65536, &pnum), IMAGE_BLOCK_BACKING);
    CU_ASSERT_EQUAL(pnum, 3 * 65536);
    /* rewriting an allocated cluster must not allocate again */
    CU_ASSERT_EQUAL(put(img, 3 * 65536 + 100, 1000, 2), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_EQUAL(fsize("a.qcow2"), 6 * 65536);
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    CU_ASSERT_EQUAL(r.allocated_clusters, 6);
    image_close(img);
    /* the data survives a reopen */
    char err[IMAGE_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(
        image_open(tpath("a.qcow2"), IMAGE_FORMAT_AUTO, 0, &img, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(holds(img, 3 * 65536, 100, 1));
    CU_ASSERT_TRUE(holds(img, 3 * 65536 + 100, 1000, 2));
    CU_ASSERT_TRUE(holds(img, 3 * 65536 + 1100, 65536 - 1100, 1));
    image_close(img);
}

static void test_rmw_boundaries(void)
{
    struct image *img = mk("rmw.qcow2", 1 << 20, 12, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    /* straddles three 4 KiB clusters with unaligned ends */
    CU_ASSERT_EQUAL(put(img, 4096 - 7, 4096 + 19, 3), 0);
    CU_ASSERT_TRUE(holds(img, 0, 4096 - 7, 0));
    CU_ASSERT_TRUE(holds(img, 4096 - 7, 4096 + 19, 3));
    CU_ASSERT_TRUE(holds(img, 2 * 4096 + 12, 4096 - 12, 0));
    /* a one-byte overwrite in the middle keeps both neighbours */
    CU_ASSERT_EQUAL(put(img, 4096, 1, 4), 0);
    CU_ASSERT_TRUE(holds(img, 4095, 1, 3));
    CU_ASSERT_TRUE(holds(img, 4096, 1, 4));
    CU_ASSERT_TRUE(holds(img, 4097, 100, 3));
    CU_ASSERT_EQUAL(image_flush(img), 0);
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    image_close(img);
}

static void test_backing_chain(void)
{
    struct image_create_opts o = {.format = IMAGE_FORMAT_RAW, .size = 1 << 20};
    char err[IMAGE_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(image_create(tpath("base.raw"), &o, err, sizeof(err)), 0);
    struct image *base;
    CU_ASSERT_EQUAL_FATAL(
        image_open(tpath("base.raw"), IMAGE_FORMAT_AUTO, IMAGE_OPEN_RDWR, &base, err, sizeof(err)),
        0);
    CU_ASSERT_EQUAL(put(base, 0, 1 << 20, 5), 0);
    image_close(base);
    struct image *mid = mk("mid.qcow2", 0, 12, "base.raw", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mid);
    CU_ASSERT_EQUAL(image_length(mid), 1 << 20); /* size taken from the backing file */
    CU_ASSERT_EQUAL(put(mid, 10000, 5000, 6), 0);
    image_close(mid);
    struct image *top = mk("top.qcow2", 2 << 20, 16, "mid.qcow2", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(top);
    CU_ASSERT_PTR_NOT_NULL(image_backing(top));
    CU_ASSERT_PTR_NOT_NULL(image_backing(image_backing(top)));
    CU_ASSERT_STRING_EQUAL(image_backing_name(top), "mid.qcow2");
    CU_ASSERT_TRUE(holds(top, 0, 10000, 5));
    CU_ASSERT_TRUE(holds(top, 10000, 5000, 6));
    CU_ASSERT_TRUE(holds(top, 15000, (1 << 20) - 15000, 5));
    CU_ASSERT_TRUE(holds(top, 1 << 20, 1 << 20, 0)); /* past the backing's end */
    /* a partial write copies the rest of its cluster up from the chain */
    CU_ASSERT_EQUAL(put(top, 12000, 10, 7), 0);
    CU_ASSERT_EQUAL(image_flush(top), 0);
    image_close(top);
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("top.qcow2"), IMAGE_FORMAT_AUTO, IMAGE_OPEN_NO_BACKING,
                                     &top, err, sizeof(err)),
                          0);
    CU_ASSERT_PTR_NULL(image_backing(top));
    CU_ASSERT_TRUE(holds(top, 0, 10000, 5));
    CU_ASSERT_TRUE(holds(top, 10000, 2000, 6));
    CU_ASSERT_TRUE(holds(top, 12000, 10, 7));
    CU_ASSERT_TRUE(holds(top, 12010, 2990, 6));
    CU_ASSERT_TRUE(holds(top, 15000, 65536 - 15000, 5));
    CU_ASSERT_TRUE(holds(top, 65536, 4096, 0)); /* not copied: comes from the chain */
    image_close(top);
}

static void test_zero_clusters(void)
{
    char err[IMAGE_ERR_LEN];
    struct image_create_opts o = {.format = IMAGE_FORMAT_RAW, .size = 256 << 10};
    CU_ASSERT_EQUAL_FATAL(image_create(tpath("zb.raw"), &o, err, sizeof(err)), 0);
    struct image *b;
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("zb.raw"), 0, IMAGE_OPEN_RDWR, &b, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(put(b, 0, 256 << 10, 8), 0);
    image_close(b);
    for (unsigned version = 2; version <= 3; version++) {
        struct image *img = mk(version == 3 ? "z3.qcow2" : "z2.qcow2", 0, 12, "zb.raw", version);
        CU_ASSERT_PTR_NOT_NULL_FATAL(img);
        /* two whole clusters plus a partial one on each side */
        CU_ASSERT_EQUAL(image_write_zeroes(img, 4000, 3 * 4096), 0);
        CU_ASSERT_TRUE(holds(img, 0, 4000, 8));
        CU_ASSERT_TRUE(holds(img, 4000, 3 * 4096, 0));
        CU_ASSERT_TRUE(holds(img, 4000 + 3 * 4096, 1000, 8));
        uint64_t pnum;
        int st = image_block_status(img, 8192, 4096, &pnum);
        CU_ASSERT_EQUAL(st, version == 3 ? IMAGE_BLOCK_ZERO : IMAGE_BLOCK_DATA);
        /* writing into a zero cluster keeps the rest of it zero */
        CU_ASSERT_EQUAL(put(img, 8192 + 100, 10, 9), 0);
        CU_ASSERT_TRUE(holds(img, 8192, 100, 0));
        CU_ASSERT_TRUE(holds(img, 8192 + 100, 10, 9));
        CU_ASSERT_TRUE(holds(img, 8192 + 110, 4096 - 110, 0));
        /* discard over the backing file also reads zeros */
        CU_ASSERT_EQUAL(image_discard(img, 65536, 65536), 0);
        CU_ASSERT_TRUE(holds(img, 65536, 65536, 0));
        CU_ASSERT_EQUAL(image_flush(img), 0);
        struct image_check_result r = check(img);
        CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
        image_close(img);
    }
}

static void test_discard_frees(void)
{
    struct image *img = mk("d.qcow2", 1 << 20, 12, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_EQUAL(put(img, 0, 64 << 10, 10), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    uint64_t used = check(img).allocated_clusters;
    CU_ASSERT_EQUAL(image_discard(img, 0, 32 << 10), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    CU_ASSERT_EQUAL(r.allocated_clusters, used - 8);
    CU_ASSERT_TRUE(holds(img, 0, 32 << 10, 0));
    CU_ASSERT_TRUE(holds(img, 32 << 10, 32 << 10, 10));
    /* the freed clusters are reused before the file grows */
    off_t sz = fsize("d.qcow2");
    CU_ASSERT_EQUAL(put(img, 512 << 10, 16 << 10, 11), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_EQUAL(fsize("d.qcow2"), sz);
    /* A partial write into a reused cluster (it held pattern 10): the rest reads as zeros,
     * in a cluster past the old end too. */
    CU_ASSERT_EQUAL(image_discard(img, 32 << 10, 8 << 10), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_EQUAL(put(img, (600 << 10) + 1000, 100, 12), 0);
    CU_ASSERT_EQUAL(put(img, (700 << 10) + 4096, 512, 13), 0);
    /* More than the freed clusters left: the last ones are new at the end of the file. */
    off_t before = fsize("d.qcow2");
    for (unsigned i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(put(img, (800 << 10) + i * 8192 + 2048, 1024, 14), 0);
    }
    CU_ASSERT_TRUE(fsize("d.qcow2") > before);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    for (unsigned i = 0; i < 8; i++) {
        uint64_t c = (800 << 10) + i * 8192;
        CU_ASSERT_TRUE(holds(img, c, 2048, 0));
        CU_ASSERT_TRUE(holds(img, c + 2048, 1024, 14));
        CU_ASSERT_TRUE(holds(img, c + 3072, 8192 - 3072, 0));
    }
    CU_ASSERT_TRUE(holds(img, 600 << 10, 1000, 0));
    CU_ASSERT_TRUE(holds(img, (600 << 10) + 1000, 100, 12));
    CU_ASSERT_TRUE(holds(img, (600 << 10) + 1100, 4096 - 1100, 0));
    CU_ASSERT_TRUE(holds(img, 700 << 10, 4096, 0));
    CU_ASSERT_TRUE(holds(img, (700 << 10) + 4096, 512, 13));
    CU_ASSERT_TRUE(holds(img, (700 << 10) + 4608, (64 << 10) - 4608, 0));
    r = check(img);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    image_close(img);
}

static void test_compressed(void)
{
    struct image *img = mk("cz.qcow2", 1 << 20, 16, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    uint8_t *b = malloc(65536);
    for (int i = 0; i < 65536; i++) {
        b[i] = (uint8_t)(i / 300); /* compressible */
    }
    CU_ASSERT_EQUAL(image_write_compressed(img, b, 65536), 0);
    CU_ASSERT_EQUAL(image_write_compressed(img, b, 3 * 65536), 0);
    CU_ASSERT_EQUAL(image_write_compressed(img, b, 100), -EINVAL);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_TRUE(fsize("cz.qcow2") < 6 * 65536); /* both packed into one cluster */
    uint8_t *r = malloc(65536);
    CU_ASSERT_EQUAL(image_pread(img, r, 65536, 3 * 65536), 0);
    CU_ASSERT_EQUAL(memcmp(r, b, 65536), 0);
    struct image_check_result c = check(img);
    CU_ASSERT_EQUAL(c.corruptions + c.leaks, 0);
    /* overwrite part of a compressed cluster: the rest is kept */
    CU_ASSERT_EQUAL(image_pwrite(img, "xyz", 3, 65536 + 1000), 0);
    CU_ASSERT_EQUAL(image_pread(img, r, 65536, 65536), 0);
    CU_ASSERT_EQUAL(memcmp(r, b, 1000), 0);
    CU_ASSERT_EQUAL(memcmp(r + 1000, "xyz", 3), 0);
    CU_ASSERT_EQUAL(memcmp(r + 1003, b + 1003, 65536 - 1003), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    c = check(img);
    CU_ASSERT_EQUAL(c.corruptions + c.leaks, 0);
    free(b);
    free(r);
    image_close(img);
}

static void test_refcount_growth(void)
{
    /* 512-byte clusters: one refcount table cluster covers only 8 MiB */
    struct image *img = mk("g.qcow2", 24 << 20, 9, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_EQUAL(put(img, 0, 12 << 20, 12), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_TRUE(holds(img, 0, 12 << 20, 12));
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.corruptions, 0);
    CU_ASSERT_EQUAL(r.leaks, 0);
    CU_ASSERT_TRUE(r.allocated_clusters > 24576);
    image_close(img);
}

static void test_resize(void)
{
    struct image *img = mk("rs.qcow2", 64 << 10, 9, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_EQUAL(put(img, 0, 64 << 10, 13), 0);
    CU_ASSERT_EQUAL(image_resize(img, 32 << 10), -ENOTSUP);
    CU_ASSERT_EQUAL(image_resize(img, 10 << 20), 0); /* needs a bigger L1 table */
    CU_ASSERT_EQUAL(image_length(img), 10 << 20);
    CU_ASSERT_EQUAL(put(img, (10 << 20) - 5000, 5000, 14), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    image_close(img);
    char err[IMAGE_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("rs.qcow2"), 0, 0, &img, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(image_length(img), 10 << 20);
    CU_ASSERT_TRUE(holds(img, 0, 64 << 10, 13));
    CU_ASSERT_TRUE(holds(img, 64 << 10, (10 << 20) - (64 << 10) - 5000, 0));
    CU_ASSERT_TRUE(holds(img, (10 << 20) - 5000, 5000, 14));
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    image_close(img);
}

static void poke(const char *name, off_t off, const void *data, size_t len)
{
    int fd = open(tpath(name), O_WRONLY);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pwrite(fd, data, len, off), (ssize_t)len);
    close(fd);
}

static int try_open(const char *name, int flags, char *err)
{
    struct image *img;
    int r = image_open(tpath(name), IMAGE_FORMAT_QCOW2, flags, &img, err, IMAGE_ERR_LEN);
    if (r == 0) {
        image_close(img);
    }
    return r;
}

static void test_corrupt_headers(void)
{
    char err[IMAGE_ERR_LEN];
    struct image *img = mk("h.qcow2", 1 << 20, 16, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    CU_ASSERT_EQUAL(put(img, 0, 100000, 15), 0);
    image_close(img);
    int fd = open(tpath("h.qcow2"), O_RDONLY);
    uint8_t good[65536 * 7];
    ssize_t glen = read(fd, good, sizeof(good));
    close(fd);
    CU_ASSERT_TRUE_FATAL(glen > 4 * 65536);
    static const struct {
        int off;
        const char *bytes;
        int len;
        const char *msg;
    } cases[] = {
        {0, "QFI\xfa", 4, "not a qcow2 image (bad magic)"},
        {4, "\0\0\0\4", 4, "qcow2 version 4 not supported"},
        {20, "\0\0\0\x1e", 4, "cluster_bits 30 out of range"},
        {40, "\0\0\0\0\0\x03\0\0", 8, "L1 table offset 0x30000 outside the file"},
        {40, "\0\0\0\0\0\0\x02\0", 8, "L1 table offset 0x200 not cluster-aligned"},
        {48, "\0\0\0\0\x01\0\0\0", 8, "refcount table offset 0x1000000 outside the file"},
        {36, "\0\0\0\0", 4, "L1 table size 0 wrong"},
        {72, "\0\0\0\0\0\0\0\x20", 8, "incompatible features 0x20 not supported"},
        {100, "\0\0\0\x03", 4, "header length 3"},
        {8, "\0\0\0\0\0\0\xff\xf0", 8, "backing file name"},
        {32, "\0\0\0\1", 4, "encrypted qcow2 not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fd = open(tpath("bad.qcow2"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CU_ASSERT_EQUAL(write(fd, good, (size_t)glen), glen);
        close(fd);
        if (cases[i].off == 40 && cases[i].bytes[5] == 3) {
            CU_ASSERT_EQUAL(truncate(tpath("bad.qcow2"), 3 * 65536), 0);
        }
        if (cases[i].off == 8) {
            poke("bad.qcow2", 16, "\0\0\0\x40", 4);
        }
        poke("bad.qcow2", cases[i].off, cases[i].bytes, (size_t)cases[i].len);
        err[0] = 0;
        CU_ASSERT_TRUE(try_open("bad.qcow2", 0, err) < 0);
        if (!strstr(err, cases[i].msg) || !strstr(err, "bad.qcow2: ")) {
            fprintf(stderr, "\ncase %zu: got \"%s\", want \"%s\"\n", i, err, cases[i].msg);
            CU_FAIL("wrong message");
        }
    }
    /* truncated headers */
    for (int n = 0; n < 120; n += 13) {
        fd = open(tpath("bad.qcow2"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CU_ASSERT_EQUAL(write(fd, good, (size_t)n), n);
        close(fd);
        CU_ASSERT_TRUE(try_open("bad.qcow2", 0, err) < 0);
    }
    /* an L2 offset outside the file is reported on use, not followed */
    fd = open(tpath("bad.qcow2"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_EQUAL(write(fd, good, (size_t)glen), glen);
    close(fd);
    poke("bad.qcow2", 3 * 65536, "\x80\0\0\x01\0\0\0\0", 8);
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("bad.qcow2"), 0, 0, &img, err, sizeof(err)), 0);
    uint8_t b[16];
    CU_ASSERT_EQUAL(image_pread(img, b, 16, 0), -EUCLEAN);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(image_error(img), "corrupt qcow2: L2 table offset 0x100000000 outside the file"));
    struct image_check_result r;
    CU_ASSERT_EQUAL(image_check(img, false, &r, NULL), 0);
    CU_ASSERT_TRUE(r.corruptions > 0);
    image_close(img);
    /* garbled headers: every open either fails cleanly or gives a readable image */
    unsigned seed = 1;
    for (int iter = 0; iter < 300; iter++) {
        fd = open(tpath("fuzz.qcow2"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CU_ASSERT_EQUAL(write(fd, good, (size_t)glen), glen);
        close(fd);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245 + 12345;
            uint8_t v = (uint8_t)(seed >> 16);
            seed = seed * 1103515245 + 12345;
            off_t off = (seed >> 8) % (iter % 2 ? 112 : 4 * 65536 + 64);
            poke("fuzz.qcow2", off, &v, 1);
        }
        if (image_open(tpath("fuzz.qcow2"), IMAGE_FORMAT_QCOW2, IMAGE_OPEN_NO_BACKING, &img, err,
                       sizeof(err)) == 0) {
            uint64_t len = image_length(img) < (4 << 20) ? image_length(img) : (4 << 20);
            uint8_t *buf = malloc(len + 1);
            image_pread(img, buf, len, 0);
            free(buf);
            image_check(img, false, &r, NULL);
            image_close(img);
        }
    }
}

static void test_marked_images(void)
{
    char err[IMAGE_ERR_LEN];
    struct image *img = mk("m.qcow2", 1 << 20, 16, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    image_close(img);
    poke("m.qcow2", 79, "\x02", 1); /* corrupt bit */
    CU_ASSERT_EQUAL(try_open("m.qcow2", IMAGE_OPEN_RDWR, err), -EUCLEAN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "marked corrupt"));
    CU_ASSERT_EQUAL(try_open("m.qcow2", 0, err), 0);
    poke("m.qcow2", 79, "\x01", 1); /* dirty bit: refcounts may be stale */
    CU_ASSERT_EQUAL(try_open("m.qcow2", IMAGE_OPEN_RDWR, err), -EUCLEAN);
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("m.qcow2"), 0, IMAGE_OPEN_RDWR | IMAGE_OPEN_REPAIR, &img,
                                     err, sizeof(err)),
                          0);
    struct image_check_result r;
    CU_ASSERT_EQUAL(image_check(img, true, &r, NULL), 0);
    image_close(img);
    CU_ASSERT_EQUAL(try_open("m.qcow2", IMAGE_OPEN_RDWR, err), 0); /* repair cleared it */
}

static void test_leak_repair(void)
{
    struct image *img = mk("l.qcow2", 1 << 20, 16, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    image_close(img);
    /* refcount 1 for cluster 4, which nothing references */
    poke("l.qcow2", 2 * 65536 + 8, "\0\1", 2);
    CU_ASSERT_EQUAL(truncate(tpath("l.qcow2"), 5 * 65536), 0);
    char err[IMAGE_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("l.qcow2"), 0, 0, &img, err, sizeof(err)), 0);
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.leaks, 1);
    CU_ASSERT_EQUAL(r.corruptions, 0);
    image_close(img);
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("l.qcow2"), 0, IMAGE_OPEN_RDWR | IMAGE_OPEN_REPAIR, &img,
                                     err, sizeof(err)),
                          0);
    CU_ASSERT_EQUAL(image_check(img, true, &r, NULL), 0);
    CU_ASSERT_EQUAL(r.repaired, 1);
    r = check(img);
    CU_ASSERT_EQUAL(r.leaks + r.corruptions, 0);
    /* the freed cluster is the next one handed out */
    CU_ASSERT_EQUAL(put(img, 0, 1, 16), 0);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    r = check(img);
    CU_ASSERT_EQUAL(r.leaks + r.corruptions, 0);
    CU_ASSERT_EQUAL(fsize("l.qcow2"), 6 * 65536);
    image_close(img);
}

struct thread_arg {
    struct image *img;
    unsigned id;
};

static void *writer_thread(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 40; i++) {
        uint64_t off = (uint64_t)(i * 4 + a->id) * 5000;
        put(a->img, off, 5000, a->id + 20);
    }
    return NULL;
}

static void test_threads(void)
{
    struct image *img = mk("t.qcow2", 1 << 20, 12, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    pthread_t th[4];
    struct thread_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){img, i};
        pthread_create(&th[i], NULL, writer_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < 160; i++) {
        CU_ASSERT_TRUE(holds(img, (uint64_t)i * 5000, 5000, (unsigned)(i % 4) + 20));
    }
    CU_ASSERT_EQUAL(image_flush(img), 0);
    struct image_check_result r = check(img);
    CU_ASSERT_EQUAL(r.corruptions + r.leaks, 0);
    image_close(img);
}

static int suite_init(void)
{
    snprintf(tdir, sizeof(tdir), "/tmp/lodge-qcow2.XXXXXX");
    return mkdtemp(tdir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* image_pread_nowait: what needs no file I/O always succeeds, what needs a table load, a
 * backing file or a compressed cluster is -EAGAIN, and cached data (page cache permitting)
 * reads as image_pread would. */
static void test_pread_nowait(void)
{
    struct image *img = mk("nowait.qcow2", 4 << 20, 16, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    uint8_t *b = malloc(1 << 17);
    uint8_t *want = malloc(1 << 17);
    /* Nothing allocated: zeros, without touching the file. */
    memset(b, 0xaa, 8192);
    CU_ASSERT_EQUAL(image_pread_nowait(img, b, 8192, 3 << 20), 0);
    CU_ASSERT_EQUAL(b[0], 0);
    CU_ASSERT_EQUAL(b[8191], 0);
    CU_ASSERT_EQUAL(image_pread_nowait(img, b, 512, (4 << 20) - 256), -EINVAL);
    CU_ASSERT_EQUAL(put(img, 70000, 90000, 3), 0);
    int r = image_pread_nowait(img, b, 90000, 70000);
    CU_ASSERT_TRUE(r == 0 || r == -EAGAIN); /* -EAGAIN only if the page cache dropped it */
    if (r == 0) {
        fill(want, 70000, 90000, 3);
        CU_ASSERT_EQUAL(memcmp(b, want, 90000), 0);
    }
    image_close(img);
    char err[IMAGE_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("nowait.qcow2"), IMAGE_FORMAT_AUTO, IMAGE_OPEN_RDWR,
                                     &img, err, sizeof(err)),
                          0);
    /* The L2 table is not cached after the reopen: loading it could wait. */
    CU_ASSERT_EQUAL(image_pread_nowait(img, b, 4096, 70000), -EAGAIN);
    CU_ASSERT_TRUE(holds(img, 70000, 90000, 3));
    r = image_pread_nowait(img, b, 4096, 70000);
    CU_ASSERT_TRUE(r == 0 || r == -EAGAIN);
    if (r == 0) {
        fill(want, 70000, 4096, 3);
        CU_ASSERT_EQUAL(memcmp(b, want, 4096), 0);
    }
    image_close(img);
    /* Clusters that come from a backing file are always left to image_pread. */
    struct image *top = mk("nowait-top.qcow2", 0, 16, "nowait.qcow2", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(top);
    CU_ASSERT_EQUAL(image_pread_nowait(top, b, 4096, 70000), -EAGAIN);
    CU_ASSERT_TRUE(holds(top, 70000, 4096, 3));
    image_close(top);
    free(want);
    free(b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("qcow2", suite_init, suite_clean);
    CU_add_test(s, "create and reopen", test_create_reopen);
    CU_add_test(s, "cluster allocation", test_allocation);
    CU_add_test(s, "read-modify-write across cluster boundaries", test_rmw_boundaries);
    CU_add_test(s, "backing chain reads and copy-on-write", test_backing_chain);
    CU_add_test(s, "zero clusters (v2 and v3)", test_zero_clusters);
    CU_add_test(s, "discard frees clusters", test_discard_frees);
    CU_add_test(s, "compressed clusters", test_compressed);
    CU_add_test(s, "refcount table growth", test_refcount_growth);
    CU_add_test(s, "resize", test_resize);
    CU_add_test(s, "corrupt headers refused", test_corrupt_headers);
    CU_add_test(s, "corrupt and dirty bits", test_marked_images);
    CU_add_test(s, "leak found and repaired", test_leak_repair);
    CU_add_test(s, "threads share one image", test_threads);
    CU_add_test(s, "multi-cluster writes and reads", test_multi_cluster_runs);
    CU_add_test(s, "L2 cache eviction", test_l2_cache_eviction);
    CU_add_test(s, "reads that must not block", test_pread_nowait);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
