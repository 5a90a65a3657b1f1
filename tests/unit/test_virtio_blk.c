/* Unit tests for devices/virtio/virtio_blk over the modern PCI transport with an
 * in-memory disk: identity, feature negotiation, the request types, range and
 * read-only checks, MSI-X completion interrupts and malformed requests. */
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_rng.h"
#include "virtio_harness.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QN 16
#define DISK_SECTORS 64

struct memdisk {
    uint8_t data[DISK_SECTORS * 512]; /* contents */
    int flushes;                      /* flush calls */
    int fail;                         /* make every call fail with -EIO */
    int preads, pwrites;              /* backend calls */
    int nowaits;                      /* pread_nowait calls */
    int would_block;                  /* make pread_nowait answer -EAGAIN */
};

static int md_pread(void *o, void *buf, uint64_t len, uint64_t off)
{
    struct memdisk *m = o;
    m->preads++;
    if (m->fail || off + len > sizeof(m->data)) {
        return -EIO;
    }
    memcpy(buf, m->data + off, len);
    return 0;
}

static int md_pwrite(void *o, const void *buf, uint64_t len, uint64_t off)
{
    struct memdisk *m = o;
    m->pwrites++;
    if (m->fail || off + len > sizeof(m->data)) {
        return -EIO;
    }
    memcpy(m->data + off, buf, len);
    return 0;
}

static int md_pread_nowait(void *o, void *buf, uint64_t len, uint64_t off)
{
    struct memdisk *m = o;
    m->nowaits++;
    if (m->would_block) {
        return -EAGAIN;
    }
    if (off + len > sizeof(m->data)) {
        return -EIO;
    }
    memcpy(buf, m->data + off, len);
    return 0;
}

static int md_slow_pread(void *o, void *buf, uint64_t len, uint64_t off)
{
    usleep(20000);
    return md_pread(o, buf, len, off);
}

static int md_flush(void *o)
{
    struct memdisk *m = o;
    m->flushes++;
    return m->fail ? -EIO : 0;
}

static int md_zero(void *o, uint64_t off, uint64_t len)
{
    struct memdisk *m = o;
    memset(m->data + off, 0, len);
    return 0;
}

struct msi_log {
    int n;         /* messages */
    uint32_t data; /* last data */
};

static int msi_record(void *opaque, uint64_t addr, uint32_t data)
{
    struct msi_log *l = opaque;
    l->n++;
    l->data = data;
    return 0;
}

static struct vdrv drv;
static struct memdisk disk;
static struct virtio_blk *blk;
static struct virtio_pci *vp;
static uint16_t next_head;

static void setup_dev_nowait(bool readonly, bool nowait)
{
    vdrv_free(&drv);
    CU_ASSERT_EQUAL_FATAL(vdrv_init(&drv, QN), 0);
    memset(&disk, 0, sizeof(disk));
    for (unsigned i = 0; i < sizeof(disk.data); i++) {
        disk.data[i] = (uint8_t)(i / 512 + 1);
    }
    struct virtio_blk_backend be = {.opaque = &disk,
                                    .pread = md_pread,
                                    .pwrite = md_pwrite,
                                    .flush = md_flush,
                                    .discard = md_zero,
                                    .write_zeroes = md_zero,
                                    .length = sizeof(disk.data),
                                    .readonly = readonly,
                                    .pread_nowait = nowait ? md_pread_nowait : NULL};
    blk = virtio_blk_new(&drv.mem, &be, "lodge-disk-0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk);
    vp = virtio_blk_transport(blk);
    next_head = 0;
}

static void setup_dev(bool readonly)
{
    setup_dev_nowait(readonly, false);
}

static void teardown_dev(void)
{
    virtio_blk_free(blk);
    blk = NULL;
}

/* Submits header + optional data + status as a 3-descriptor chain; waits for the
 * device; returns the status byte (0xee when untouched) and the used length. */
static uint8_t submit(uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t data_len,
                      bool data_writable, uint32_t *used_len)
{
    uint64_t hdr = vdrv_alloc(&drv, 16), st = vdrv_alloc(&drv, 1);
    uint8_t h[16] = {0};
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    guestmem_write(&drv.mem, hdr, h, 16);
    uint8_t ee = 0xee;
    guestmem_write(&drv.mem, st, &ee, 1);
    uint16_t d0 = next_head, d1 = (uint16_t)((d0 + 1) % QN), d2 = (uint16_t)((d0 + 2) % QN);
    next_head = (uint16_t)((d0 + 3) % QN);
    if (data_len) {
        vdrv_desc(&drv, VDRV_DESC, d0, hdr, 16, VIRTQ_DESC_F_NEXT, d1);
        vdrv_desc(&drv, VDRV_DESC, d1, data_gpa, data_len,
                  VIRTQ_DESC_F_NEXT | (data_writable ? VIRTQ_DESC_F_WRITE : 0), d2);
        vdrv_desc(&drv, VDRV_DESC, d2, st, 1, VIRTQ_DESC_F_WRITE, 0);
    } else {
        vdrv_desc(&drv, VDRV_DESC, d0, hdr, 16, VIRTQ_DESC_F_NEXT, d1);
        vdrv_desc(&drv, VDRV_DESC, d1, st, 1, VIRTQ_DESC_F_WRITE, 0);
    }
    uint16_t before = vdrv_used_idx(&drv);
    vdrv_publish(&drv, d0);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), (uint16_t)(before + 1));
    uint32_t id = 0, len = 0;
    vdrv_used_elem(&drv, before, &id, &len);
    CU_ASSERT_EQUAL(id, d0);
    if (used_len) {
        *used_len = len;
    }
    uint8_t s;
    guestmem_read(&drv.mem, st, &s, 1);
    return s;
}

/* Descriptors for one request at ring slot FIRST: header, NSEG data buffers, status.
 * Returns the next free slot. */
static uint16_t chain(uint16_t first, uint64_t hdr, const uint64_t *gpa, const uint32_t *len,
                      unsigned nseg, bool writable, uint64_t st)
{
    uint16_t d = first;
    vdrv_desc(&drv, VDRV_DESC, d, hdr, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
    for (unsigned i = 0; i < nseg; i++) {
        d++;
        vdrv_desc(&drv, VDRV_DESC, d, gpa[i], len[i],
                  VIRTQ_DESC_F_NEXT | (writable ? VIRTQ_DESC_F_WRITE : 0), (uint16_t)(d + 1));
    }
    d++;
    vdrv_desc(&drv, VDRV_DESC, d, st, 1, VIRTQ_DESC_F_WRITE, 0);
    return (uint16_t)(d + 1);
}

static uint64_t blk_hdr(uint32_t type, uint64_t sector)
{
    uint64_t hdr = vdrv_alloc(&drv, 16);
    uint8_t h[16] = {0};
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    guestmem_write(&drv.mem, hdr, h, 16);
    return hdr;
}

/* A guest's page list: small buffers, some adjacent in memory, some not. The data
 * lands in the right places and the backend sees one call per request. */
static void test_scatter_gather(void)
{
    setup_dev(false);
    CU_ASSERT_TRUE(vdrv_start(&drv, vp, 0, 0) & VIRTIO_STATUS_DRIVER_OK);
    uint64_t base = vdrv_alloc(&drv, 4096);
    uint64_t gpa[4] = {base, base + 512, base + 1536, base + 3072};
    uint32_t len[4] = {512, 512, 1024, 512};
    uint64_t st = vdrv_alloc(&drv, 1);
    /* Read sectors 10..14. */
    chain(0, blk_hdr(VIRTIO_BLK_T_IN, 10), gpa, len, 4, true, st);
    disk.preads = 0;
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    uint8_t s = 0xee;
    guestmem_read(&drv.mem, st, &s, 1);
    CU_ASSERT_EQUAL(s, VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(disk.preads, 1);
    uint8_t b[1024];
    unsigned sector = 10;
    for (unsigned i = 0; i < 4; i++) {
        guestmem_read(&drv.mem, gpa[i], b, len[i]);
        for (unsigned k = 0; k < len[i]; k += 512, sector++) {
            CU_ASSERT_EQUAL(b[k], sector + 1);
            CU_ASSERT_EQUAL(b[k + 511], sector + 1);
        }
    }
    /* The gaps between the buffers are untouched. */
    guestmem_read(&drv.mem, base + 1024, b, 512);
    CU_ASSERT_EQUAL(b[0], 0);
    CU_ASSERT_EQUAL(b[511], 0);
    /* Write them back at sector 20, each buffer its own byte. */
    for (unsigned i = 0; i < 4; i++) {
        memset(guestmem_ptr_rw(&drv.mem, gpa[i], len[i]), 0xa0 + (int)i, len[i]);
    }
    chain(6, blk_hdr(VIRTIO_BLK_T_OUT, 20), gpa, len, 4, false, st);
    disk.pwrites = 0;
    vdrv_publish(&drv, 6);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 2);
    guestmem_read(&drv.mem, st, &s, 1);
    CU_ASSERT_EQUAL(s, VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(disk.pwrites, 1);
    const uint8_t want[5] = {0xa0, 0xa1, 0xa2, 0xa2, 0xa3};
    for (unsigned i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(disk.data[(20 + i) * 512], want[i]);
        CU_ASSERT_EQUAL(disk.data[(20 + i) * 512 + 511], want[i]);
    }
    CU_ASSERT_EQUAL(disk.data[25 * 512], 26);
    teardown_dev();
}

/* Requests queued before one kick all complete, in one used-ring update. */
static void test_batch_per_kick(void)
{
    setup_dev(false);
    CU_ASSERT_TRUE(vdrv_start(&drv, vp, 0, 0) & VIRTIO_STATUS_DRIVER_OK);
    uint64_t st[3], buf[3];
    uint32_t len = 512;
    uint16_t slot = 0, heads[3];
    for (unsigned i = 0; i < 3; i++) {
        st[i] = vdrv_alloc(&drv, 1);
        buf[i] = vdrv_alloc(&drv, 512);
        heads[i] = slot;
        slot = chain(slot, blk_hdr(i < 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 30 + i), &buf[i],
                     &len, 1, i < 2, st[i]);
        vdrv_publish(&drv, heads[i]);
    }
    memset(guestmem_ptr_rw(&drv.mem, buf[2], 512), 0x77, 512);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 3);
    for (unsigned i = 0; i < 3; i++) {
        uint32_t id = 0xffff, ul = 0;
        vdrv_used_elem(&drv, i, &id, &ul);
        CU_ASSERT_EQUAL(id, heads[i]); /* in order */
        CU_ASSERT_EQUAL(ul, i < 2 ? 513 : 1);
        uint8_t s = 0xee;
        guestmem_read(&drv.mem, st[i], &s, 1);
        CU_ASSERT_EQUAL(s, VIRTIO_BLK_S_OK);
    }
    uint8_t b = 0;
    guestmem_read(&drv.mem, buf[1], &b, 1);
    CU_ASSERT_EQUAL(b, 32);
    CU_ASSERT_EQUAL(disk.data[32 * 512], 0x77);
    teardown_dev();
}

/* A read the backend can serve without blocking completes during the kick itself (no
 * worker, no drain needed); one that would block, or that follows a write in the same
 * kick, goes to a worker and still sees the write. */
static void test_inline_reads(void)
{
    setup_dev_nowait(false, true);
    CU_ASSERT_TRUE(vdrv_start(&drv, vp, 0, 0) & VIRTIO_STATUS_DRIVER_OK);
    uint32_t len = 1024;
    uint64_t st = vdrv_alloc(&drv, 1), buf = vdrv_alloc(&drv, 1024);
    uint16_t slot = chain(0, blk_hdr(VIRTIO_BLK_T_IN, 5), &buf, &len, 1, true, st);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1); /* before any drain */
    uint32_t id = 0xffff, ul = 0;
    vdrv_used_elem(&drv, 0, &id, &ul);
    CU_ASSERT_EQUAL(id, 0);
    CU_ASSERT_EQUAL(ul, 1025);
    uint8_t s = 0xee, b[2] = {0};
    guestmem_read(&drv.mem, st, &s, 1);
    CU_ASSERT_EQUAL(s, VIRTIO_BLK_S_OK);
    guestmem_read(&drv.mem, buf, &b[0], 1);
    guestmem_read(&drv.mem, buf + 1023, &b[1], 1);
    CU_ASSERT_EQUAL(b[0], 6); /* sector 5 */
    CU_ASSERT_EQUAL(b[1], 7); /* sector 6 */
    CU_ASSERT_EQUAL(disk.preads, 0);
    CU_ASSERT_TRUE(disk.nowaits >= 1);

    /* Would block: the worker reads it. */
    disk.would_block = 1;
    uint64_t st2 = vdrv_alloc(&drv, 1), buf2 = vdrv_alloc(&drv, 1024);
    uint16_t head2 = slot;
    slot = chain(slot, blk_hdr(VIRTIO_BLK_T_IN, 9), &buf2, &len, 1, true, st2);
    vdrv_publish(&drv, head2);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 2);
    guestmem_read(&drv.mem, st2, &s, 1);
    CU_ASSERT_EQUAL(s, VIRTIO_BLK_S_OK);
    guestmem_read(&drv.mem, buf2, &b[0], 1);
    CU_ASSERT_EQUAL(b[0], 10);
    CU_ASSERT_EQUAL(disk.preads, 1);

    /* A write then a read of the same sector in one kick: the read waits its turn. */
    disk.would_block = 0;
    disk.nowaits = 0;
    uint32_t wlen = 512;
    uint64_t stw = vdrv_alloc(&drv, 1), bw = vdrv_alloc(&drv, 512);
    uint64_t str = vdrv_alloc(&drv, 1), br = vdrv_alloc(&drv, 512);
    memset(guestmem_ptr_rw(&drv.mem, bw, 512), 0x5a, 512);
    uint16_t hw = slot;
    slot = chain(slot, blk_hdr(VIRTIO_BLK_T_OUT, 40), &bw, &wlen, 1, false, stw);
    uint16_t hr = slot;
    chain(slot, blk_hdr(VIRTIO_BLK_T_IN, 40), &br, &wlen, 1, true, str);
    vdrv_publish(&drv, hw);
    vdrv_publish(&drv, hr);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 4);
    vdrv_used_elem(&drv, 2, &id, &ul);
    CU_ASSERT_EQUAL(id, hw);
    vdrv_used_elem(&drv, 3, &id, &ul);
    CU_ASSERT_EQUAL(id, hr);
    guestmem_read(&drv.mem, br, &b[0], 1);
    CU_ASSERT_EQUAL(b[0], 0x5a);
    CU_ASSERT_EQUAL(disk.nowaits, 0);

    /* Past the end of the disk: not tried inline, the worker reports IOERR. */
    uint64_t buf3 = vdrv_alloc(&drv, 1024);
    next_head = (uint16_t)(hr + 3);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_IN, DISK_SECTORS - 1, buf3, 1024, true, NULL),
                    VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(disk.nowaits, 0);
    teardown_dev();
}

static void test_identity_and_config(void)
{
    setup_dev(false);
    struct pci_dev *pd = virtio_pci_pci(vp);
    CU_ASSERT_EQUAL(pci_dev_config_read(pd, PCI_VENDOR_ID, 2), 0x1af4);
    CU_ASSERT_EQUAL(pci_dev_config_read(pd, PCI_DEVICE_ID, 2), 0x1042);
    CU_ASSERT_EQUAL(pci_dev_config_read(pd, PCI_REVISION_ID, 1), 1);
    CU_ASSERT_TRUE(pci_dev_config_read(pd, PCI_SUBSYSTEM_ID, 2) >= 0x40);
    /* The four virtio structures plus the PCI cfg window are vendor capabilities
     * pointing into BAR4. */
    int types = 0;
    unsigned p = pci_dev_config_read(pd, PCI_CAPABILITY_LIST, 1);
    while (p) {
        if (pci_dev_config_read(pd, p, 1) == PCI_CAP_ID_VNDR) {
            unsigned t = pci_dev_config_read(pd, p + 3, 1);
            types |= 1 << t;
            if (t != VIRTIO_PCI_CAP_PCI_CFG) {
                CU_ASSERT_EQUAL(pci_dev_config_read(pd, p + 4, 1), VIRTIO_PCI_BAR_MAIN);
            }
            if (t == VIRTIO_PCI_CAP_NOTIFY_CFG) {
                CU_ASSERT_EQUAL(pci_dev_config_read(pd, p + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
            }
        }
        p = pci_dev_config_read(pd, p + 1, 1);
    }
    CU_ASSERT_EQUAL(types, 0x3e);
    /* Device config: capacity in sectors. */
    uint64_t cap = virtio_pci_main_read(vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_BLK_CFG_CAPACITY, 4);
    CU_ASSERT_EQUAL(cap, DISK_SECTORS);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_BLK_CFG_BLK_SIZE, 4),
                    512);
    /* Offered features: VERSION_1 in the high word, FLUSH/DISCARD in the low. */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
    CU_ASSERT_TRUE(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_DF, 4) & 1);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    uint32_t lo = (uint32_t)virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_DF, 4);
    CU_ASSERT_TRUE(lo & (1u << VIRTIO_BLK_F_FLUSH));
    CU_ASSERT_TRUE(lo & (1u << VIRTIO_BLK_F_DISCARD));
    CU_ASSERT_TRUE(lo & (1u << VIRTIO_F_EVENT_IDX));
    CU_ASSERT_FALSE(lo & (1u << VIRTIO_BLK_F_RO));
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_NUMQ, 2), 1);
    teardown_dev();
}

static void test_feature_negotiation(void)
{
    setup_dev(false);
    uint8_t base = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
    /* Without VERSION_1 FEATURES_OK does not stick (legacy drivers refused). */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, base, 1);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_GF, 1u << VIRTIO_BLK_F_FLUSH, 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, base | VIRTIO_STATUS_FEATURES_OK, 1);
    CU_ASSERT_EQUAL(virtio_pci_status(vp) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* Unknown feature bits are refused too. */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_GF, 1 | (1u << 20), 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, base | VIRTIO_STATUS_FEATURES_OK, 1);
    CU_ASSERT_EQUAL(virtio_pci_status(vp) & VIRTIO_STATUS_FEATURES_OK, 0);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_GF, 1, 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, base | VIRTIO_STATUS_FEATURES_OK, 1);
    CU_ASSERT_TRUE(virtio_pci_status(vp) & VIRTIO_STATUS_FEATURES_OK);
    CU_ASSERT_EQUAL(virtio_pci_features(vp),
                    (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH));
    /* Frozen after FEATURES_OK. */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_GF, 0, 4);
    CU_ASSERT_EQUAL(virtio_pci_features(vp) >> 32, 1);
    /* Reset clears everything. */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    CU_ASSERT_EQUAL(virtio_pci_status(vp), 0);
    CU_ASSERT_EQUAL(virtio_pci_features(vp), 0);
    teardown_dev();
}

static void test_read_write_flush_id(void)
{
    setup_dev(false);
    CU_ASSERT_TRUE(vdrv_start(&drv, vp, 1ull << VIRTIO_BLK_F_FLUSH, 0) & VIRTIO_STATUS_DRIVER_OK);
    uint32_t len;
    /* Read sectors 2..3. */
    uint64_t buf = vdrv_alloc(&drv, 1024);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_IN, 2, buf, 1024, true, &len), VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 1025);
    uint8_t got[1024];
    guestmem_read(&drv.mem, buf, got, sizeof(got));
    CU_ASSERT_EQUAL(got[0], 3);
    CU_ASSERT_EQUAL(got[1023], 4);
    /* Write sector 5. */
    uint64_t wb = vdrv_alloc(&drv, 512);
    memset(guestmem_ptr_rw(&drv.mem, wb, 512), 0x5a, 512);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_OUT, 5, wb, 512, false, &len), VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(disk.data[5 * 512], 0x5a);
    CU_ASSERT_EQUAL(disk.data[6 * 512 - 1], 0x5a);
    CU_ASSERT_EQUAL(disk.data[6 * 512], 7);
    /* Flush reaches the backend. */
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(disk.flushes, 1);
    /* GET_ID: 20 bytes, zero padded. */
    uint64_t idb = vdrv_alloc(&drv, 20);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_GET_ID, 0, idb, 20, true, &len), VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(len, 21);
    char id[20];
    guestmem_read(&drv.mem, idb, id, 20);
    CU_ASSERT_EQUAL(memcmp(id, "lodge-disk-0\0\0\0\0\0\0\0\0", 20), 0);
    /* Unknown type. */
    CU_ASSERT_EQUAL(submit(99, 0, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
    /* Beyond the end of the disk, and a sector number that overflows bytes. */
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_IN, DISK_SECTORS - 1, buf, 1024, true, NULL),
                    VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_OUT, 1ull << 60, wb, 512, false, NULL), VIRTIO_BLK_S_IOERR);
    /* Backend failure is an I/O error, not a crash. */
    disk.fail = 1;
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_IN, 0, buf, 512, true, NULL), VIRTIO_BLK_S_IOERR);
    disk.fail = 0;
    CU_ASSERT_EQUAL(virtio_pci_status(vp) & VIRTIO_STATUS_NEEDS_RESET, 0);
    teardown_dev();
}

static void test_discard_write_zeroes(void)
{
    setup_dev(false);
    vdrv_start(&drv, vp, (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES), 0);
    uint64_t seg = vdrv_alloc(&drv, 16);
    uint8_t s[16] = {0};
    uint64_t sector = 10;
    uint32_t n = 2;
    memcpy(s, &sector, 8);
    memcpy(s + 8, &n, 4);
    guestmem_write(&drv.mem, seg, s, 16);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 16, false, NULL), VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(disk.data[10 * 512], 0);
    CU_ASSERT_EQUAL(disk.data[12 * 512 - 1], 0);
    CU_ASSERT_EQUAL(disk.data[12 * 512], 13);
    sector = DISK_SECTORS - 1; /* runs off the end */
    memcpy(s, &sector, 8);
    guestmem_write(&drv.mem, seg, s, 16);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_DISCARD, 0, seg, 16, false, NULL), VIRTIO_BLK_S_IOERR);
    teardown_dev();
}

static void test_readonly(void)
{
    setup_dev(true);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    CU_ASSERT_TRUE(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_DF, 4) & (1u << VIRTIO_BLK_F_RO));
    vdrv_start(&drv, vp, 1ull << VIRTIO_BLK_F_RO, 0);
    uint64_t wb = vdrv_alloc(&drv, 512);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_OUT, 0, wb, 512, false, NULL), VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(disk.data[0], 1);
    teardown_dev();
}

static void test_msix_completion(void)
{
    setup_dev(false);
    struct msi_log log = {0};
    struct pci_dev *pd = virtio_pci_pci(vp);
    struct pci_msi_sink sink = {.send = msi_record, .opaque = &log};
    pci_dev_attach(pd, NULL, NULL, NULL, &sink);
    vdrv_start(&drv, vp, 0, 0);
    /* Enable MSI-X, program vector 1 (queue 0), unmask it. */
    unsigned c = pci_dev_config_read(pd, PCI_CAPABILITY_LIST, 1);
    while (pci_dev_config_read(pd, c, 1) != PCI_CAP_ID_MSIX) {
        c = pci_dev_config_read(pd, c + 1, 1);
    }
    pci_dev_config_write(pd, c + 2, PCI_MSIX_CTRL_ENABLE, 2);
    pci_dev_bar_write(pd, VIRTIO_PCI_BAR_MSIX, 16, 0xfee00000, 4);
    pci_dev_bar_write(pd, VIRTIO_PCI_BAR_MSIX, 24, 0x51, 4);
    pci_dev_bar_write(pd, VIRTIO_PCI_BAR_MSIX, 28, 0, 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
    /* A vector the table does not have reads back as NO_VECTOR. */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_MSIX, 500, 2);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
    uint64_t buf = vdrv_alloc(&drv, 512);
    submit(VIRTIO_BLK_T_IN, 0, buf, 512, true, NULL);
    CU_ASSERT_EQUAL(log.n, 1);
    CU_ASSERT_EQUAL(log.data, 0x51);
    teardown_dev();
}

static void test_malformed_request(void)
{
    setup_dev(false);
    vdrv_start(&drv, vp, 0, 0);
    /* A header of 8 bytes and no writable status byte. */
    uint64_t hdr = vdrv_alloc(&drv, 8);
    vdrv_desc(&drv, VDRV_DESC, 0, hdr, 8, 0, 0);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, 0);
    virtio_blk_drain(blk);
    CU_ASSERT_TRUE(virtio_pci_status(vp) & VIRTIO_STATUS_NEEDS_RESET);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 0);
    teardown_dev();
}

/* A driver reset while requests are in flight waits for them: afterwards nothing
 * touches the rings, and the device works again after renegotiation. */
static void test_reset_with_inflight_io(void)
{
    vdrv_free(&drv);
    CU_ASSERT_EQUAL_FATAL(vdrv_init(&drv, QN), 0);
    struct virtio_blk_backend be = {
        .opaque = &disk, .pread = md_slow_pread, .pwrite = md_pwrite, .length = sizeof(disk.data)};
    blk = virtio_blk_new(&drv.mem, &be, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blk);
    vp = virtio_blk_transport(blk);
    vdrv_start(&drv, vp, 0, 0);
    for (uint16_t r = 0; r < 4; r++) {
        uint64_t hdr = vdrv_alloc(&drv, 16), data = vdrv_alloc(&drv, 512), st = vdrv_alloc(&drv, 1);
        uint8_t h[16] = {0};
        guestmem_write(&drv.mem, hdr, h, 16); /* VIRTIO_BLK_T_IN, sector 0 */
        vdrv_desc(&drv, VDRV_DESC, 3 * r, hdr, 16, VIRTQ_DESC_F_NEXT, 3 * r + 1);
        vdrv_desc(&drv, VDRV_DESC, 3 * r + 1, data, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
                  3 * r + 2);
        vdrv_desc(&drv, VDRV_DESC, 3 * r + 2, st, 1, VIRTQ_DESC_F_WRITE, 0);
        vdrv_publish(&drv, 3 * r);
    }
    vdrv_kick(vp, 0);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, 0, 1); /* returns after the drain */
    uint16_t used = vdrv_used_idx(&drv);
    CU_ASSERT_EQUAL(used, 4); /* popped before the reset: completed by the drain */
    usleep(50000);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), used);
    CU_ASSERT_EQUAL(virtio_pci_status(vp), 0);
    virtio_blk_free(blk);
    blk = NULL;
}

/* Save a running device, load it into a fresh one: the driver carries on where it
 * was. Streams for another device type, or cut short, are refused. */
static void test_save_load(void)
{
    setup_dev(false);
    vdrv_start(&drv, vp, 1ull << VIRTIO_BLK_F_FLUSH, 0);
    uint64_t buf = vdrv_alloc(&drv, 512);
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_IN, 1, buf, 512, true, NULL), VIRTIO_BLK_S_OK);
    GByteArray *st = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(virtio_pci_device_ops.save(vp, st), 0);
    struct virtio_blk *old = blk;

    struct virtio_blk_backend be = {.opaque = &disk,
                                    .pread = md_pread,
                                    .pwrite = md_pwrite,
                                    .flush = md_flush,
                                    .discard = md_zero,
                                    .write_zeroes = md_zero,
                                    .length = sizeof(disk.data)};
    blk = virtio_blk_new(&drv.mem, &be, "lodge-disk-0");
    vp = virtio_blk_transport(blk);
    CU_ASSERT_EQUAL(virtio_pci_status(vp), 0);
    /* Truncated: refused, nothing changes. */
    CU_ASSERT_EQUAL(virtio_pci_device_ops.load(vp, st->data, st->len - 3), -EINVAL);
    CU_ASSERT_EQUAL(virtio_pci_status(vp), 0);
    CU_ASSERT_EQUAL(virtio_pci_device_ops.load(vp, st->data, st->len), 0);
    CU_ASSERT_TRUE(virtio_pci_status(vp) & VIRTIO_STATUS_DRIVER_OK);
    CU_ASSERT_EQUAL(virtio_pci_features(vp),
                    (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_FLUSH));
    CU_ASSERT_EQUAL(pci_dev_config_read(virtio_pci_pci(vp), PCI_COMMAND, 2),
                    PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    /* The next request goes through the restored ring (used index continues at 2). */
    CU_ASSERT_EQUAL(submit(VIRTIO_BLK_T_IN, 2, buf, 512, true, NULL), VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 2);
    uint8_t b;
    guestmem_read(&drv.mem, buf, &b, 1);
    CU_ASSERT_EQUAL(b, 3);

    /* A virtio-blk stream does not load into virtio-rng. */
    struct virtio_rng *r = virtio_rng_new(&drv.mem);
    CU_ASSERT_EQUAL(virtio_pci_device_ops.load(virtio_rng_transport(r), st->data, st->len),
                    -EINVAL);
    CU_ASSERT_EQUAL(virtio_pci_status(virtio_rng_transport(r)), 0);
    virtio_rng_free(r);
    g_byte_array_unref(st);
    virtio_blk_free(old);
    teardown_dev();
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("virtio_blk", NULL, NULL);
    CU_add_test(s, "identity and config", test_identity_and_config);
    CU_add_test(s, "feature negotiation", test_feature_negotiation);
    CU_add_test(s, "read, write, flush, get-id", test_read_write_flush_id);
    CU_add_test(s, "discard and write-zeroes", test_discard_write_zeroes);
    CU_add_test(s, "read-only disk", test_readonly);
    CU_add_test(s, "MSI-X completion", test_msix_completion);
    CU_add_test(s, "malformed request", test_malformed_request);
    CU_add_test(s, "reset with in-flight I/O", test_reset_with_inflight_io);
    CU_add_test(s, "save and load", test_save_load);
    CU_add_test(s, "scatter-gather through few backend calls", test_scatter_gather);
    CU_add_test(s, "every request of one kick completes", test_batch_per_kick);
    CU_add_test(s, "reads that need not wait complete at the kick", test_inline_reads);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    vdrv_free(&drv);
    return fails ? 1 : 0;
}
