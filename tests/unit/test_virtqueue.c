/* Unit tests for devices/virtio/virtqueue (split rings) and, through the rng
 * device, the transport's reaction to hostile rings: DEVICE_NEEDS_RESET. */
#include "devices/virtio/virtio_rng.h"
#include "devices/virtio/virtqueue.h"
#include "virtio_harness.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QN 8

static struct vdrv drv;
static struct virtq vq;
static struct virtq_elem *el;

static void fresh(bool event_idx)
{
    vdrv_free(&drv);
    CU_ASSERT_EQUAL_FATAL(vdrv_init(&drv, QN), 0);
    virtq_init(&vq, &drv.mem, QN, VDRV_DESC, VDRV_AVAIL, VDRV_USED, event_idx);
}

static void test_simple_chain(void)
{
    fresh(false);
    uint64_t req = vdrv_alloc(&drv, 16), resp = vdrv_alloc(&drv, 8);
    guestmem_write(&drv.mem, req, "0123456789abcdef", 16);
    vdrv_desc(&drv, VDRV_DESC, 3, req, 16, VIRTQ_DESC_F_NEXT, 5);
    vdrv_desc(&drv, VDRV_DESC, 5, resp, 8, VIRTQ_DESC_F_WRITE, 0);
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 0);
    CU_ASSERT_FALSE(virtq_has_work(&vq));
    vdrv_publish(&drv, 3);
    CU_ASSERT_TRUE(virtq_has_work(&vq));
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 1);
    CU_ASSERT_EQUAL(el->head, 3);
    CU_ASSERT_EQUAL(el->nout, 1);
    CU_ASSERT_EQUAL(el->nin, 1);
    CU_ASSERT_EQUAL(el->out_len, 16);
    CU_ASSERT_EQUAL(el->in_len, 8);
    char buf[16];
    CU_ASSERT_EQUAL(virtq_iov_to_buf(el->iov, el->nout, 4, buf, 16), 12);
    CU_ASSERT_EQUAL(memcmp(buf, "456789abcdef", 12), 0);
    CU_ASSERT_EQUAL(virtq_iov_from_buf(el->iov + el->nout, el->nin, 0, "response", 8), 8);
    CU_ASSERT_EQUAL(virtq_push(&vq, el, 8), 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    uint32_t id, len;
    vdrv_used_elem(&drv, 0, &id, &len);
    CU_ASSERT_EQUAL(id, 3);
    CU_ASSERT_EQUAL(len, 8);
    guestmem_read(&drv.mem, resp, buf, 8);
    CU_ASSERT_EQUAL(memcmp(buf, "response", 8), 0);
    CU_ASSERT_TRUE(virtq_should_notify(&vq));
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 0);
    /* The driver asks for no interrupts. */
    vdrv_w16(&drv, VDRV_AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    vdrv_publish(&drv, 3);
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 1);
    virtq_push(&vq, el, 0);
    CU_ASSERT_FALSE(virtq_should_notify(&vq));
}

static void test_indirect(void)
{
    fresh(false);
    uint64_t table = vdrv_alloc(&drv, 3 * 16);
    uint64_t a = vdrv_alloc(&drv, 100), b = vdrv_alloc(&drv, 200), c = vdrv_alloc(&drv, 300);
    vdrv_desc(&drv, table, 0, a, 100, VIRTQ_DESC_F_NEXT, 1);
    vdrv_desc(&drv, table, 1, b, 200, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    vdrv_desc(&drv, table, 2, c, 300, VIRTQ_DESC_F_WRITE, 0);
    vdrv_desc(&drv, VDRV_DESC, 0, table, 48, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_publish(&drv, 0);
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 1);
    CU_ASSERT_EQUAL(el->head, 0);
    CU_ASSERT_EQUAL(el->nout, 1);
    CU_ASSERT_EQUAL(el->nin, 2);
    CU_ASSERT_EQUAL(el->in_len, 500);
    CU_ASSERT_PTR_EQUAL(el->iov[1].iov_base, guestmem_ptr(&drv.mem, b, 200));
}

static void test_event_idx(void)
{
    fresh(true);
    uint64_t buf = vdrv_alloc(&drv, 64);
    for (unsigned i = 0; i < QN; i++) {
        vdrv_desc(&drv, VDRV_DESC, i, buf, 64, VIRTQ_DESC_F_WRITE, 0);
    }
    uint64_t used_event = VDRV_AVAIL + 4 + 2 * QN;
    uint64_t avail_event = VDRV_USED + 4 + 8 * QN;
    vdrv_w16(&drv, used_event, 2); /* interrupt when entry 2 is used (the 3rd) */
    for (unsigned i = 0; i < 4; i++) {
        vdrv_publish(&drv, (uint16_t)i);
    }
    bool notes[4];
    for (unsigned i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(virtq_pop(&vq, el), 1);
        /* The device asks to be kicked for the next new entry. */
        CU_ASSERT_EQUAL(vdrv_r16(&drv, avail_event), i + 1);
        virtq_push(&vq, el, 1);
        notes[i] = virtq_should_notify(&vq);
    }
    /* The first is always signalled; then only crossing used_event = 2. */
    CU_ASSERT_TRUE(notes[0]);
    CU_ASSERT_FALSE(notes[1]);
    CU_ASSERT_TRUE(notes[2]);
    CU_ASSERT_FALSE(notes[3]);
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 0);
    CU_ASSERT_EQUAL(vdrv_r16(&drv, avail_event), 4);
}

static void test_index_wrap(void)
{
    fresh(false);
    uint64_t buf = vdrv_alloc(&drv, 16);
    vdrv_desc(&drv, VDRV_DESC, 1, buf, 16, 0, 0);
    /* Start just below the 16-bit wrap on both sides. */
    vq.last_avail = 0xfffe;
    vq.used_idx = 0xfffe;
    vdrv_set_avail_idx(&drv, 0xfffe);
    for (int i = 0; i < 4; i++) {
        vdrv_publish(&drv, 1);
    }
    CU_ASSERT_EQUAL(drv.avail_idx, 2);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(virtq_pop(&vq, el), 1);
        CU_ASSERT_EQUAL(virtq_push(&vq, el, 16), 0);
    }
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 2);
}

/* Each hostile layout must make virtq_pop fail, without touching anything. */
static void expect_broken(void)
{
    CU_ASSERT_EQUAL(virtq_pop(&vq, el), -EIO);
}

static void test_hostile_rings(void)
{
    uint64_t buf;
    /* A descriptor loop. */
    fresh(false);
    buf = vdrv_alloc(&drv, 16);
    vdrv_desc(&drv, VDRV_DESC, 0, buf, 16, VIRTQ_DESC_F_NEXT, 1);
    vdrv_desc(&drv, VDRV_DESC, 1, buf, 16, VIRTQ_DESC_F_NEXT, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* next beyond the table */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, VDRV_HEAP, 16, VIRTQ_DESC_F_NEXT, QN);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* head beyond the table */
    fresh(false);
    vdrv_publish(&drv, QN + 3);
    expect_broken();
    /* buffer outside RAM */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, 0x7fff00000000ull, 16, 0, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* buffer inside RAM but longer than RAM */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, VDRV_HEAP, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* address that wraps the 64-bit space */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, ~0ull - 4, 16, 0, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* avail index jumping by more than the queue size */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, VDRV_HEAP, 16, 0, 0);
    vdrv_set_avail_idx(&drv, QN + 1);
    expect_broken();
    /* indirect inside indirect */
    fresh(false);
    uint64_t t1 = vdrv_alloc(&drv, 16), t2 = vdrv_alloc(&drv, 16);
    vdrv_desc(&drv, t2, 0, VDRV_HEAP, 16, 0, 0);
    vdrv_desc(&drv, t1, 0, t2, 16, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_desc(&drv, VDRV_DESC, 0, t1, 16, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* indirect with NEXT */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, t1, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* indirect table of a length that is not a multiple of 16 */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, VDRV_HEAP, 24, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* loop inside an indirect table */
    fresh(false);
    t1 = vdrv_alloc(&drv, 32);
    vdrv_desc(&drv, t1, 0, VDRV_HEAP, 16, VIRTQ_DESC_F_NEXT, 1);
    vdrv_desc(&drv, t1, 1, VDRV_HEAP, 16, VIRTQ_DESC_F_NEXT, 0);
    vdrv_desc(&drv, VDRV_DESC, 0, t1, 32, VIRTQ_DESC_F_INDIRECT, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* readable descriptor after a writable one */
    fresh(false);
    vdrv_desc(&drv, VDRV_DESC, 0, VDRV_HEAP, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    vdrv_desc(&drv, VDRV_DESC, 1, VDRV_HEAP, 16, 0, 0);
    vdrv_publish(&drv, 0);
    expect_broken();
    /* rings themselves outside RAM */
    fresh(false);
    virtq_init(&vq, &drv.mem, QN, VDRV_DESC, VDRV_RAM - 2, VDRV_USED, false);
    expect_broken();
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 0);
}

/* Random descriptor tables and indices: pop must return 1, 0 or -EIO, every buffer it
 * hands out must lie inside guest RAM, and nothing may crash (run under ASan). */
static void test_random_rings(void)
{
    uint32_t seed = 12345;
    int results[3] = {0};
    for (int round = 0; round < 400; round++) {
        fresh(round & 1);
        for (unsigned i = 0; i < QN; i++) {
            seed = seed * 1103515245u + 12345u;
            uint64_t addr =
                (seed >> 8) % 3 == 0 ? ((uint64_t)seed << 24) : VDRV_HEAP + seed % 0x8000;
            uint32_t len = (seed >> 4) % 5 == 0 ? seed : (seed >> 12) % 0x2000;
            uint16_t flags = (uint16_t)((seed >> 20) & 7);
            uint16_t next = (uint16_t)((seed >> 24) % (QN + 2));
            vdrv_desc(&drv, VDRV_DESC, i, addr, len, flags, next);
            /* an indirect table in RAM with the same kind of garbage */
            vdrv_desc(&drv, VDRV_HEAP + 0x9000, i, addr, len, (uint16_t)(flags & 3), next);
        }
        seed = seed * 1103515245u + 12345u;
        vdrv_set_avail_idx(&drv, (uint16_t)(seed % (QN + 3)));
        for (unsigned i = 0; i < QN; i++) {
            vdrv_w16(&drv, VDRV_AVAIL + 4 + 2 * i, (uint16_t)((seed >> i) % (QN + 1)));
        }
        for (int k = 0; k < QN + 2; k++) {
            int rc = virtq_pop(&vq, el);
            CU_ASSERT_TRUE(rc == 1 || rc == 0 || rc == -EIO);
            results[rc < 0 ? 2 : rc]++;
            if (rc != 1) {
                break;
            }
            for (unsigned j = 0; j < el->nout + el->nin; j++) {
                uint8_t *p = el->iov[j].iov_base;
                const struct guestmem_region *r = &drv.mem.r[0];
                CU_ASSERT_TRUE(p >= r->hva && p + el->iov[j].iov_len <= r->hva + r->size);
            }
            virtq_push(&vq, el, 0);
        }
    }
    /* The generator must exercise both outcomes. */
    CU_ASSERT_TRUE(results[1] > 0);
    CU_ASSERT_TRUE(results[2] > 0);
}

/* Through a device: a broken ring sets NEEDS_RESET, later kicks are ignored, and
 * a driver reset brings the device back. */
static void test_needs_reset_via_transport(void)
{
    fresh(false);
    struct virtio_rng *r = virtio_rng_new(&drv.mem);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    struct virtio_pci *vp = virtio_rng_transport(r);
    uint8_t st = vdrv_start(&drv, vp, 0, 0);
    CU_ASSERT_TRUE(st & VIRTIO_STATUS_DRIVER_OK);
    /* A good request first: 32 random bytes. */
    uint64_t buf = vdrv_alloc(&drv, 32);
    vdrv_desc(&drv, VDRV_DESC, 0, buf, 32, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    uint32_t id, len;
    vdrv_used_elem(&drv, 0, &id, &len);
    CU_ASSERT_EQUAL(len, 32);
    /* Now a loop. */
    vdrv_desc(&drv, VDRV_DESC, 1, buf, 32, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    vdrv_publish(&drv, 1);
    vdrv_kick(vp, 0);
    st = virtio_pci_status(vp);
    CU_ASSERT_TRUE(st & VIRTIO_STATUS_NEEDS_RESET);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    /* Config-change interrupt reason in ISR; reading clears it. */
    CU_ASSERT_TRUE(virtio_pci_main_read(vp, VIRTIO_PCI_ISR_OFF, 1) & VIRTIO_PCI_ISR_CONFIG);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_ISR_OFF, 1), 0);
    /* Good buffers are no longer processed. */
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    /* A driver reset clears it; the device works again on fresh rings. */
    memset(guestmem_ptr_rw(&drv.mem, VDRV_AVAIL, 0x2000), 0, 0x2000);
    drv.avail_idx = 0;
    st = vdrv_start(&drv, vp, 0, 0);
    CU_ASSERT_EQUAL(st & VIRTIO_STATUS_NEEDS_RESET, 0);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    /* Enabling a queue whose ring lies outside RAM is refused the same way. */
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_Q_USEDLO, 0xfff00000, 4);
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    CU_ASSERT_TRUE(virtio_pci_status(vp) & VIRTIO_STATUS_NEEDS_RESET);
    virtio_rng_free(r);
}

int main(void)
{
    el = malloc(sizeof(*el));
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("virtqueue", NULL, NULL);
    CU_add_test(s, "simple chain", test_simple_chain);
    CU_add_test(s, "indirect table", test_indirect);
    CU_add_test(s, "event index", test_event_idx);
    CU_add_test(s, "16-bit index wrap", test_index_wrap);
    CU_add_test(s, "hostile rings", test_hostile_rings);
    CU_add_test(s, "random rings", test_random_rings);
    CU_add_test(s, "NEEDS_RESET via transport", test_needs_reset_via_transport);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    vdrv_free(&drv);
    free(el);
    return fails ? 1 : 0;
}
