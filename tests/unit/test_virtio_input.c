/* Unit tests for devices/virtio/virtio_input: the tablet's config space and its
 * eventq/statusq, driven through the PCI transport by the fake driver. */
#include "devices/virtio/virtio_input.h"

#include "virtio_harness.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#define CFG(off) (VIRTIO_PCI_DEVCFG_OFF + (off))

static struct vdrv drv;
static struct virtio_input *vi;
static struct virtio_pci *vp;

static void setup_dev(void)
{
    CU_ASSERT_EQUAL_FATAL(vdrv_init(&drv, 16), 0);
    vi = virtio_input_new_tablet(&drv.mem);
    CU_ASSERT_PTR_NOT_NULL_FATAL(vi);
    vp = virtio_input_transport(vi);
}

static void teardown_dev(void)
{
    virtio_input_free(vi);
    vdrv_free(&drv);
}

static void cfg_select(uint8_t sel, uint8_t sub)
{
    virtio_pci_main_write(vp, CFG(0), sel, 1);
    virtio_pci_main_write(vp, CFG(1), sub, 1);
}

static uint8_t cfg_size(void)
{
    return (uint8_t)virtio_pci_main_read(vp, CFG(2), 1);
}

static uint8_t cfg_byte(unsigned i)
{
    return (uint8_t)virtio_pci_main_read(vp, CFG(8 + i), 1);
}

static void test_identity_and_config(void)
{
    setup_dev();
    struct pci_dev *pd = virtio_pci_pci(vp);
    CU_ASSERT_EQUAL(pci_dev_config_read(pd, PCI_VENDOR_ID, 2), 0x1af4);
    CU_ASSERT_EQUAL(pci_dev_config_read(pd, PCI_DEVICE_ID, 2), 0x1040 + 18);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
    /* Unset select: size 0. */
    CU_ASSERT_EQUAL(cfg_size(), 0);
    cfg_select(VIRTIO_INPUT_CFG_ID_NAME, 0);
    uint8_t n = cfg_size();
    CU_ASSERT_TRUE(n > 0 && n <= 128);
    char name[129] = "";
    for (unsigned i = 0; i < n; i++) {
        name[i] = (char)cfg_byte(i);
    }
    CU_ASSERT_STRING_EQUAL(name, "Lodge Virtio Tablet");
    /* select/subsel read back. */
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, CFG(0), 2), VIRTIO_INPUT_CFG_ID_NAME);
    cfg_select(VIRTIO_INPUT_CFG_ID_DEVIDS, 0);
    CU_ASSERT_EQUAL(cfg_size(), 8);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, CFG(8), 2), 0x06); /* BUS_VIRTUAL */
    /* EV_KEY: exactly BTN_LEFT, BTN_RIGHT, BTN_MIDDLE (0x110..0x112). */
    cfg_select(VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_KEY);
    CU_ASSERT_EQUAL(cfg_size(), 0x23);
    CU_ASSERT_EQUAL(cfg_byte(0x22), 0x07);
    int others = 0;
    for (unsigned i = 0; i < 0x22; i++) {
        others |= cfg_byte(i);
    }
    CU_ASSERT_EQUAL(others, 0);
    cfg_select(VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_ABS);
    CU_ASSERT_EQUAL(cfg_size(), 1);
    CU_ASSERT_EQUAL(cfg_byte(0), 0x03);
    cfg_select(VIRTIO_INPUT_CFG_EV_BITS, VIRTIO_INPUT_EV_REL);
    CU_ASSERT_EQUAL(cfg_size(), 2);
    CU_ASSERT_EQUAL(cfg_byte(0), 0x00);
    CU_ASSERT_EQUAL(cfg_byte(1), 0x01);         /* REL_WHEEL = 8 */
    cfg_select(VIRTIO_INPUT_CFG_EV_BITS, 0x11); /* EV_LED: none */
    CU_ASSERT_EQUAL(cfg_size(), 0);
    cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, VIRTIO_INPUT_ABS_Y);
    CU_ASSERT_EQUAL(cfg_size(), 20);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, CFG(8), 4), 0);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, CFG(12), 4), 32767);
    cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, 0x2f);
    CU_ASSERT_EQUAL(cfg_size(), 0);
    cfg_select(VIRTIO_INPUT_CFG_PROP_BITS, 0);
    CU_ASSERT_EQUAL(cfg_size(), 0);
    /* Writes to size or the union are ignored; reads past the end are 0. */
    virtio_pci_main_write(vp, CFG(2), 0x55, 1);
    virtio_pci_main_write(vp, CFG(8), 0xffffffff, 4);
    cfg_select(VIRTIO_INPUT_CFG_ABS_INFO, VIRTIO_INPUT_ABS_X);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, CFG(8), 4), 0);
    CU_ASSERT_EQUAL(cfg_size(), 20);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, CFG(132), 4), 0);
    teardown_dev();
}

/* Offers count 8-byte writable buffers on the eventq; returns the first's address. */
static uint64_t offer_buffers(unsigned count, uint32_t len)
{
    uint64_t first = 0;
    for (unsigned i = 0; i < count; i++) {
        uint64_t a = vdrv_alloc(&drv, len);
        if (i == 0) {
            first = a;
        }
        unsigned idx = drv.avail_idx % drv.num;
        vdrv_desc(&drv, VDRV_DESC, idx, a, len, VIRTQ_DESC_F_WRITE, 0);
        vdrv_publish(&drv, (uint16_t)idx);
    }
    return first;
}

static void read_event(uint64_t gpa, struct virtio_input_event *ev)
{
    uint8_t b[8];
    guestmem_read(&drv.mem, gpa, b, 8);
    ev->type = (uint16_t)(b[0] | b[1] << 8);
    ev->code = (uint16_t)(b[2] | b[3] << 8);
    ev->value = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
}

static void test_events_reach_eventq(void)
{
    setup_dev();
    CU_ASSERT_FALSE(virtio_input_ready(vi));
    CU_ASSERT_TRUE(vdrv_start(&drv, vp, 0, VIRTIO_INPUT_QUEUE_EVENTS) & VIRTIO_STATUS_DRIVER_OK);
    CU_ASSERT_TRUE(virtio_input_ready(vi));
    /* Events before the driver offers buffers wait in the device. */
    CU_ASSERT_EQUAL(virtio_input_tablet_event(vi, 16384, 40000, 0, 0x1), 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 0);
    uint64_t base = offer_buffers(3, 8);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 3);
    struct virtio_input_event ev;
    read_event(base, &ev);
    CU_ASSERT_TRUE(ev.type == VIRTIO_INPUT_EV_ABS && ev.code == VIRTIO_INPUT_ABS_X &&
                   ev.value == 16384);
    read_event(base + 16, &ev);
    CU_ASSERT_TRUE(ev.type == VIRTIO_INPUT_EV_ABS && ev.code == VIRTIO_INPUT_ABS_Y &&
                   ev.value == 32767); /* clamped */
    read_event(base + 32, &ev);
    CU_ASSERT_TRUE(ev.type == VIRTIO_INPUT_EV_KEY && ev.code == VIRTIO_INPUT_BTN_LEFT &&
                   ev.value == 1);
    uint32_t id, len;
    vdrv_used_elem(&drv, 0, &id, &len);
    CU_ASSERT_EQUAL(len, 8);
    /* The SYN waits for a buffer; the next one gets it. */
    base = offer_buffers(1, 8);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 4);
    read_event(base, &ev);
    CU_ASSERT_TRUE(ev.type == VIRTIO_INPUT_EV_SYN && ev.code == 0 && ev.value == 0);
    /* With buffers waiting, a report is written at once; unchanged buttons are not
     * repeated, the wheel is a relative event. */
    base = offer_buffers(4, 8);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    CU_ASSERT_EQUAL(virtio_input_tablet_event(vi, -5, 100, -1, 0x1), 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 8);
    read_event(base, &ev);
    CU_ASSERT_EQUAL(ev.value, 0);
    read_event(base + 32, &ev);
    CU_ASSERT_TRUE(ev.type == VIRTIO_INPUT_EV_REL && ev.code == VIRTIO_INPUT_REL_WHEEL &&
                   ev.value == 0xffffffffu);
    read_event(base + 48, &ev);
    CU_ASSERT_EQUAL(ev.type, VIRTIO_INPUT_EV_SYN);
    /* A buffer too small for an event goes back empty; the event takes the next. */
    base = offer_buffers(1, 4);
    uint64_t next = offer_buffers(3, 8);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    CU_ASSERT_EQUAL(virtio_input_tablet_event(vi, 1, 2, 0, 0x4), 0);
    vdrv_used_elem(&drv, 8, &id, &len);
    CU_ASSERT_EQUAL(len, 0);
    read_event(next + 32, &ev);
    CU_ASSERT_TRUE(ev.type == VIRTIO_INPUT_EV_KEY && ev.code == VIRTIO_INPUT_BTN_LEFT &&
                   ev.value == 0);
    (void)base;
    teardown_dev();
}

static void test_overflow_and_reset(void)
{
    setup_dev();
    /* No driver: the ring fills, then whole batches are refused. */
    int ok = 0, full = 0;
    for (int i = 0; i < VIRTIO_INPUT_PENDING; i++) {
        int rc = virtio_input_tablet_event(vi, i, i, 0, 0);
        ok += rc == 0;
        full += rc == -ENOSPC;
    }
    CU_ASSERT_EQUAL(ok, VIRTIO_INPUT_PENDING / 3);
    CU_ASSERT_EQUAL(ok + full, VIRTIO_INPUT_PENDING);
    struct virtio_input_event e = {VIRTIO_INPUT_EV_SYN, 0, 0};
    CU_ASSERT_EQUAL(virtio_input_send(vi, &e, 0), -EINVAL);
    /* A device reset forgets them: a fresh driver sees only new events. */
    vdrv_start(&drv, vp, 0, VIRTIO_INPUT_QUEUE_EVENTS);
    uint64_t base = offer_buffers(4, 8);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 0);
    CU_ASSERT_EQUAL(virtio_input_tablet_event(vi, 777, 0, 0, 0), 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 3);
    struct virtio_input_event ev;
    read_event(base, &ev);
    CU_ASSERT_EQUAL(ev.value, 777);
    teardown_dev();
}

static void test_hostile_eventq(void)
{
    setup_dev();
    vdrv_start(&drv, vp, 0, VIRTIO_INPUT_QUEUE_EVENTS);
    /* A buffer outside guest RAM breaks the queue: NEEDS_RESET, no crash, no write. */
    vdrv_desc(&drv, VDRV_DESC, 0, VDRV_RAM + 0x1000, 8, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    virtio_input_tablet_event(vi, 1, 1, 0, 0);
    CU_ASSERT_TRUE(virtio_pci_status(vp) & VIRTIO_STATUS_NEEDS_RESET);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 0);
    /* A read-only buffer is not a place to put an event either. */
    vdrv_free(&drv);
    virtio_input_free(vi);
    setup_dev();
    vdrv_start(&drv, vp, 0, VIRTIO_INPUT_QUEUE_EVENTS);
    vdrv_desc(&drv, VDRV_DESC, 0, vdrv_alloc(&drv, 8), 8, 0, 0);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_EVENTS);
    virtio_input_tablet_event(vi, 1, 1, 0, 0);
    uint32_t id, len = 99;
    vdrv_used_elem(&drv, 0, &id, &len);
    CU_ASSERT_EQUAL(len, 0);
    teardown_dev();
}

static void test_statusq_drained(void)
{
    setup_dev();
    vdrv_start(&drv, vp, 0, VIRTIO_INPUT_QUEUE_STATUS);
    uint64_t a = vdrv_alloc(&drv, 8);
    static const uint8_t led[8] = {0x11, 0, 0, 0, 1, 0, 0, 0}; /* EV_LED LED_NUML on */
    guestmem_write(&drv.mem, a, led, 8);
    vdrv_desc(&drv, VDRV_DESC, 0, a, 8, 0, 0);
    vdrv_publish(&drv, 0);
    vdrv_kick(vp, VIRTIO_INPUT_QUEUE_STATUS);
    CU_ASSERT_EQUAL(vdrv_used_idx(&drv), 1);
    uint32_t id, len;
    vdrv_used_elem(&drv, 0, &id, &len);
    CU_ASSERT_EQUAL(id, 0);
    CU_ASSERT_EQUAL(len, 0);
    teardown_dev();
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("virtio_input", NULL, NULL);
    CU_add_test(s, "identity and config select", test_identity_and_config);
    CU_add_test(s, "events reach the eventq", test_events_reach_eventq);
    CU_add_test(s, "overflow and reset", test_overflow_and_reset);
    CU_add_test(s, "hostile eventq", test_hostile_eventq);
    CU_add_test(s, "statusq drained", test_statusq_drained);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
