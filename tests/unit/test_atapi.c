/* Unit tests for devices/storage/atapi: the MMC packet commands a Linux sr driver,
 * GRUB and SeaBIOS issue, answered from a synthetic disc (CD and DVD sizes), with
 * sense data, media events and the tray. */
#include "devices/storage/atapi.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

/* A disc whose byte at offset o is a function of o, of any size, without storage. */
static int pat_pread(void *o, void *buf, uint64_t len, uint64_t off)
{
    (void)o;
    uint8_t *b = buf;
    for (uint64_t i = 0; i < len; i++) {
        uint64_t x = off + i;
        b[i] = (uint8_t)(x ^ (x >> 11));
    }
    return 0;
}

static struct storage_backend disc(uint64_t blocks)
{
    return (struct storage_backend){NULL, pat_pread, NULL, NULL, blocks * ATAPI_BLOCK_SIZE, true};
}

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A drive with a CD of `blocks` blocks, its power-on UA consumed. */
static void drive(struct atapi *a, uint64_t blocks)
{
    atapi_init(a);
    struct storage_backend be = disc(blocks);
    atapi_insert(a, &be);
    a->unit_attention = false;
    a->media_event = ATAPI_MEC_NONE;
}

static void exec(struct atapi *a, const uint8_t *c, struct atapi_result *r)
{
    uint8_t cdb[12] = {0};
    memcpy(cdb, c, 12);
    atapi_exec(a, cdb, r);
}

static void test_sense_after_error(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 1000);
    uint8_t bad[12] = {0xff};
    exec(&a, bad, &r);
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_EQUAL(a.sense_key, ATAPI_SENSE_ILLEGAL_REQUEST);
    uint8_t rs[12] = {0x03, 0, 0, 0, 252};
    exec(&a, rs, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.len, 18);
    CU_ASSERT_EQUAL(r.buf[0], 0x70);
    CU_ASSERT_EQUAL(r.buf[2], ATAPI_SENSE_ILLEGAL_REQUEST);
    CU_ASSERT_EQUAL(r.buf[12], ATAPI_ASC_INVALID_OPCODE);
    /* Consumed: the next REQUEST SENSE says NO SENSE. */
    exec(&a, rs, &r);
    CU_ASSERT_EQUAL(r.buf[2], ATAPI_SENSE_NONE);
    /* Allocation length limits the answer. */
    rs[4] = 8;
    exec(&a, rs, &r);
    CU_ASSERT_EQUAL(r.len, 8);
}

static void test_read_ranges(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 1000);
    uint8_t r10[12] = {0x28, 0, 0, 0, 0x03, 0xe0, 0, 0, 8}; /* LBA 992, 8 blocks */
    exec(&a, r10, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_TRUE(r.is_read);
    CU_ASSERT_EQUAL(r.read_off, 992ull * 2048);
    CU_ASSERT_EQUAL(r.len, 8 * 2048);
    r10[8] = 9; /* one block past the end */
    exec(&a, r10, &r);
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_EQUAL(a.asc, ATAPI_ASC_LBA_OUT_OF_RANGE);
    /* READ(12) with a 32-bit count that would overflow an LBA + count sum. */
    uint8_t r12[12] = {0xa8, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
    exec(&a, r12, &r);
    CU_ASSERT_FALSE(r.ok);
    uint8_t r12b[12] = {0xa8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1};
    exec(&a, r12b, &r);
    CU_ASSERT_FALSE(r.ok);
    /* Zero blocks is a valid no-op. */
    uint8_t r0[12] = {0x28, 0, 0, 0, 0, 5};
    exec(&a, r0, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.len, 0);
}

static void test_toc_formats(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 4500); /* 1 minute of frames: lead-out at 01:02:00 */
    uint8_t sess[12] = {0x43, 0, 1, 0, 0, 0, 0, 0, 12};
    exec(&a, sess, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(be16(r.buf), 10);
    CU_ASSERT_EQUAL(r.buf[6], 1);
    CU_ASSERT_EQUAL(be32(r.buf + 8), 0);
    uint8_t raw[12] = {0x43, 2, 2, 0, 0, 0, 0, 0x01, 0};
    exec(&a, raw, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(be16(r.buf), 2 + 4 * 11);
    const uint8_t *a2 = r.buf + 4 + 2 * 11;
    CU_ASSERT_EQUAL(a2[3], 0xa2);
    CU_ASSERT_EQUAL(a2[8], 1);  /* PMIN */
    CU_ASSERT_EQUAL(a2[9], 2);  /* PSEC */
    CU_ASSERT_EQUAL(a2[10], 0); /* PFRAME */
    CU_ASSERT_EQUAL(r.buf[4 + 0 * 11 + 3], 0xa0);
    CU_ASSERT_EQUAL(r.buf[4 + 0 * 11 + 8], 1); /* first track */
    /* Lead-out only, and a track that does not exist. */
    uint8_t lo[12] = {0x43, 0, 0, 0, 0, 0, 0xaa, 0, 20};
    exec(&a, lo, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(be16(r.buf), 10);
    CU_ASSERT_EQUAL(be32(r.buf + 8), 4500);
    lo[6] = 2;
    exec(&a, lo, &r);
    CU_ASSERT_FALSE(r.ok);
    uint8_t bad[12] = {0x43, 0, 7};
    exec(&a, bad, &r);
    CU_ASSERT_FALSE(r.ok);
}

/* Walks GET CONFIGURATION's descriptors; returns the one with code, or NULL. */
static const uint8_t *find_feature(const struct atapi_result *r, uint16_t code)
{
    uint32_t end = be32(r->buf) + 4;
    if (end > r->len) {
        end = r->len;
    }
    for (uint32_t off = 8; off + 4 <= end; off += 4u + r->buf[off + 3]) {
        if (be16(r->buf + off) == code) {
            return r->buf + off;
        }
    }
    return NULL;
}

static void test_get_configuration(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 1000);
    uint8_t gc[12] = {0x46, 0, 0, 0, 0, 0, 0, 0x01, 0};
    exec(&a, gc, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(be16(r.buf + 6), 0x0008); /* CD-ROM */
    const uint8_t *pl = find_feature(&r, 0x0000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pl);
    CU_ASSERT_EQUAL(be16(pl + 4), 0x0010);
    CU_ASSERT_EQUAL(pl[6] & 1, 0);
    CU_ASSERT_EQUAL(be16(pl + 8), 0x0008);
    CU_ASSERT_EQUAL(pl[10] & 1, 1);
    CU_ASSERT_PTR_NOT_NULL(find_feature(&r, 0x0001));
    const uint8_t *rm = find_feature(&r, 0x0003);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rm);
    CU_ASSERT_EQUAL(rm[4] >> 5, 1); /* tray */
    CU_ASSERT_TRUE(rm[2] & 1);
    const uint8_t *cd = find_feature(&r, 0x001e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cd);
    CU_ASSERT_TRUE(cd[2] & 1);
    CU_ASSERT_FALSE(find_feature(&r, 0x001f)[2] & 1);
    /* RT=2: only the feature asked for. */
    uint8_t one[12] = {0x46, 2, 0, 0x10, 0, 0, 0, 0x01, 0};
    exec(&a, one, &r);
    CU_ASSERT_EQUAL(be32(r.buf), 4 + 12);
    CU_ASSERT_EQUAL(be16(r.buf + 8), 0x0010);
    CU_ASSERT_EQUAL(be32(r.buf + 12), 2048);
    /* A disc bigger than a CD is a DVD. */
    struct storage_backend big = disc(2295104);
    atapi_insert(&a, &big);
    exec(&a, gc, &r);
    CU_ASSERT_EQUAL(be16(r.buf + 6), 0x0010);
    CU_ASSERT_TRUE(find_feature(&r, 0x001f)[2] & 1);
    /* No disc: no current profile. */
    atapi_eject(&a);
    exec(&a, gc, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(be16(r.buf + 6), 0);
    /* Allocation length 8 returns only the header but the full data length. */
    atapi_insert(&a, &big);
    gc[7] = 0;
    gc[8] = 8;
    exec(&a, gc, &r);
    CU_ASSERT_EQUAL(r.len, 8);
    CU_ASSERT_TRUE(be32(r.buf) > 4);
}

static void test_events_and_unit_attention(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 1000);
    uint8_t gesn[12] = {0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8};
    exec(&a, gesn, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.len, 8);
    CU_ASSERT_EQUAL(r.buf[2], 4);
    CU_ASSERT_EQUAL(r.buf[4], ATAPI_MEC_NONE);
    CU_ASSERT_EQUAL(r.buf[5], 2); /* media present, door closed */
    atapi_eject(&a);
    exec(&a, gesn, &r);
    CU_ASSERT_EQUAL(r.buf[4], ATAPI_MEC_MEDIA_REMOVAL);
    CU_ASSERT_EQUAL(r.buf[5], 0);
    exec(&a, gesn, &r);
    CU_ASSERT_EQUAL(r.buf[4], ATAPI_MEC_NONE); /* reported once */
    struct storage_backend be = disc(500);
    atapi_insert(&a, &be);
    exec(&a, gesn, &r); /* GESN does not consume the unit attention */
    CU_ASSERT_EQUAL(r.buf[4], ATAPI_MEC_NEW_MEDIA);
    uint8_t tur[12] = {0};
    exec(&a, tur, &r);
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_EQUAL(a.sense_key, ATAPI_SENSE_UNIT_ATTENTION);
    CU_ASSERT_EQUAL(a.asc, ATAPI_ASC_MEDIUM_CHANGED);
    exec(&a, tur, &r);
    CU_ASSERT_TRUE(r.ok);
    uint8_t cap[12] = {0x25};
    exec(&a, cap, &r);
    CU_ASSERT_EQUAL(be32(r.buf), 499);
    /* Asynchronous GESN is refused; no requested class gives NEA. */
    gesn[1] = 0;
    exec(&a, gesn, &r);
    CU_ASSERT_FALSE(r.ok);
    gesn[1] = 1;
    gesn[4] = 0x02;
    exec(&a, gesn, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_TRUE(r.buf[2] & 0x80);
}

static void test_tray_and_lock(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 1000);
    uint8_t lock[12] = {0x1e, 0, 0, 0, 1};
    uint8_t eject[12] = {0x1b, 0, 0, 0, 0x02};
    uint8_t load[12] = {0x1b, 0, 0, 0, 0x03};
    uint8_t tur[12] = {0};
    uint8_t ms[12] = {0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8};
    exec(&a, lock, &r);
    CU_ASSERT_TRUE(r.ok);
    exec(&a, eject, &r);
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_EQUAL(a.asc, ATAPI_ASC_REMOVAL_PREVENTED);
    lock[4] = 0;
    exec(&a, lock, &r);
    exec(&a, eject, &r);
    CU_ASSERT_TRUE(r.ok);
    exec(&a, tur, &r);
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_EQUAL(a.asc, ATAPI_ASC_NO_MEDIUM);
    exec(&a, ms, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.len, 8);
    CU_ASSERT_TRUE(r.buf[1] & 0x10); /* door open */
    exec(&a, load, &r);
    CU_ASSERT_TRUE(r.ok);
    exec(&a, tur, &r); /* the reloaded disc is a medium change */
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_EQUAL(a.sense_key, ATAPI_SENSE_UNIT_ATTENTION);
    exec(&a, tur, &r);
    CU_ASSERT_TRUE(r.ok);
    exec(&a, ms, &r);
    CU_ASSERT_FALSE(r.buf[1] & 0x10);
}

static void test_mode_sense_and_misc(void)
{
    struct atapi a;
    struct atapi_result r;
    drive(&a, 1000);
    uint8_t ms[12] = {0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 128};
    exec(&a, ms, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(be16(r.buf) + 2, r.len);
    CU_ASSERT_EQUAL(be16(r.buf + 6), 0); /* no block descriptors */
    CU_ASSERT_EQUAL(r.buf[8], 0x2a);
    CU_ASSERT_EQUAL(r.buf[9] + 2 + 8, r.len);
    CU_ASSERT_TRUE(r.buf[8 + 6] & 0x08); /* eject supported */
    ms[2] = 0x3f;
    exec(&a, ms, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.buf[8], 0x01);
    ms[2] = 0x05;
    exec(&a, ms, &r);
    CU_ASSERT_FALSE(r.ok);
    ms[2] = 0xea; /* saved values */
    exec(&a, ms, &r);
    CU_ASSERT_EQUAL(a.asc, ATAPI_ASC_SAVING_NOT_SUPPORTED);
    uint8_t di[12] = {0x51, 0, 0, 0, 0, 0, 0, 0, 34};
    exec(&a, di, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.len, 34);
    CU_ASSERT_EQUAL(be16(r.buf), 32);
    CU_ASSERT_EQUAL(r.buf[2] & 3, 2); /* disc complete */
    uint8_t speed[12] = {0xbb, 0, 0xff, 0xff};
    exec(&a, speed, &r);
    CU_ASSERT_TRUE(r.ok);
    uint8_t inq[12] = {0x12, 1, 0x80, 0, 36};
    exec(&a, inq, &r);
    CU_ASSERT_FALSE(r.ok); /* no VPD pages */
    inq[1] = 0;
    inq[2] = 0;
    exec(&a, inq, &r);
    CU_ASSERT_TRUE(r.ok);
    CU_ASSERT_EQUAL(r.len, 36);
    CU_ASSERT_EQUAL(r.buf[0], 5);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("atapi", NULL, NULL);
    CU_add_test(s, "sense after an error", test_sense_after_error);
    CU_add_test(s, "READ ranges", test_read_ranges);
    CU_add_test(s, "READ TOC formats", test_toc_formats);
    CU_add_test(s, "GET CONFIGURATION", test_get_configuration);
    CU_add_test(s, "events and unit attention", test_events_and_unit_attention);
    CU_add_test(s, "tray and lock", test_tray_and_lock);
    CU_add_test(s, "MODE SENSE and others", test_mode_sense_and_misc);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
