/* Unit tests for devices/virtio/virtio_console: the multiport control handshake
 * (DEVICE_READY -> DEVICE_ADD, PORT_READY -> PORT_NAME + PORT_OPEN), data in both
 * directions on a named port, and the guest's PORT_OPEN gating host input. */
#include "devices/virtio/virtio_console.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#define RAM (1u << 20)
#define QN 8
#define Q_CTRL_RX 2
#define Q_CTRL_TX 3
#define Q_P1_RX 4
#define Q_P1_TX 5

struct ring {
    unsigned q;                 /* queue index */
    uint64_t desc, avail, used; /* GPAs */
    uint16_t avail_idx;         /* driver's avail->idx */
    uint16_t used_seen;         /* used entries consumed by the test */
};

static struct guestmem mem;
static uint64_t heap;
static struct virtio_console *vc;
static struct virtio_pci *vp;
static struct ring rings[4];
static char host_out[256]; /* bytes the port's backend received */
static size_t host_len;

static void backend_write(void *opaque, const uint8_t *buf, size_t len)
{
    if (host_len + len <= sizeof(host_out)) {
        memcpy(host_out + host_len, buf, len);
        host_len += len;
    }
}

static uint64_t alloc(uint32_t n)
{
    uint64_t a = heap;
    heap += (n + 15) & ~15u;
    return a;
}

static void w16(uint64_t gpa, uint16_t v)
{
    guestmem_write(&mem, gpa, &v, 2);
}

static uint16_t r16(uint64_t gpa)
{
    uint16_t v = 0;
    guestmem_read(&mem, gpa, &v, 2);
    return v;
}

static void cw(unsigned off, uint64_t v, unsigned size)
{
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_OFF + off, v, size);
}

/* Adds one buffer as a single descriptor (slot = avail_idx % QN) and kicks. */
static void give(struct ring *r, uint64_t buf, uint32_t len, bool writable)
{
    unsigned d = r->avail_idx % QN;
    uint8_t b[16] = {0};
    uint16_t flags = writable ? VIRTQ_DESC_F_WRITE : 0;
    memcpy(b, &buf, 8);
    memcpy(b + 8, &len, 4);
    memcpy(b + 12, &flags, 2);
    guestmem_write(&mem, r->desc + 16 * d, b, 16);
    w16(r->avail + 4 + 2 * (r->avail_idx % QN), (uint16_t)d);
    r->avail_idx++;
    w16(r->avail + 2, r->avail_idx);
    virtio_pci_main_write(vp, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * r->q, r->q, 2);
}

/* Next used entry: its descriptor's buffer and length; false when none. */
static bool take(struct ring *r, uint64_t *buf, uint32_t *len)
{
    if (r16(r->used + 2) == r->used_seen) {
        return false;
    }
    uint32_t id = 0;
    guestmem_read(&mem, r->used + 4 + 8 * (r->used_seen % QN), &id, 4);
    guestmem_read(&mem, r->used + 8 + 8 * (r->used_seen % QN), len, 4);
    guestmem_read(&mem, r->desc + 16 * id, buf, 8);
    r->used_seen++;
    return true;
}

static void send_ctrl(uint32_t id, uint16_t event, uint16_t value)
{
    uint64_t m = alloc(8);
    guestmem_write(&mem, m, &id, 4);
    guestmem_write(&mem, m + 4, &event, 2);
    guestmem_write(&mem, m + 6, &value, 2);
    give(&rings[1], m, 8, false);
}

/* Reads the next control message from the device; false when none. */
static bool recv_ctrl(uint32_t *id, uint16_t *event, uint16_t *value, char *payload)
{
    uint64_t buf;
    uint32_t len;
    if (!take(&rings[0], &buf, &len)) {
        return false;
    }
    guestmem_read(&mem, buf, id, 4);
    guestmem_read(&mem, buf + 4, event, 2);
    guestmem_read(&mem, buf + 6, value, 2);
    if (payload) {
        memset(payload, 0, 64);
        if (len > 8 && len < 72) {
            guestmem_read(&mem, buf + 8, payload, len - 8);
        }
    }
    return true;
}

static int setup(void)
{
    if (guestmem_add(&mem, "ram", 0, RAM, false) < 0) {
        return -1;
    }
    heap = 0x40000;
    vc = virtio_console_new(&mem);
    if (!vc) {
        return -1;
    }
    vp = virtio_console_transport(vc);
    struct virtio_console_backend be = {.write = backend_write};
    if (virtio_console_add_port(vc, "org.lodge.agent.0", false, &be) != 1) {
        return -1;
    }
    pci_dev_config_write(virtio_pci_pci(vp), PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
                         2);
    cw(VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    cw(VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    cw(VIRTIO_PCI_COMMON_GF, 1u << VIRTIO_CONSOLE_F_MULTIPORT, 4);
    cw(VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    cw(VIRTIO_PCI_COMMON_GF, 1, 4);
    cw(VIRTIO_PCI_COMMON_STATUS, 0x0b, 1);
    unsigned qs[4] = {Q_CTRL_RX, Q_CTRL_TX, Q_P1_RX, Q_P1_TX};
    for (int i = 0; i < 4; i++) {
        struct ring *r = &rings[i];
        r->q = qs[i];
        r->desc = 0x1000 + 0x1000 * (uint64_t)(3 * i);
        r->avail = r->desc + 0x1000;
        r->used = r->desc + 0x2000;
        cw(VIRTIO_PCI_COMMON_Q_SELECT, r->q, 2);
        cw(VIRTIO_PCI_COMMON_Q_SIZE, QN, 2);
        cw(VIRTIO_PCI_COMMON_Q_DESCLO, r->desc, 8);
        cw(VIRTIO_PCI_COMMON_Q_AVAILLO, r->avail, 8);
        cw(VIRTIO_PCI_COMMON_Q_USEDLO, r->used, 8);
        cw(VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    }
    cw(VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
    return (virtio_pci_status(vp) & VIRTIO_STATUS_DRIVER_OK) ? 0 : -1;
}

static int teardown(void)
{
    virtio_console_free(vc);
    guestmem_free(&mem);
    return 0;
}

static void test_config(void)
{
    /* max_nr_ports at offset 4 of the device config (5.3.4). */
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_DEVCFG_OFF + 4, 4),
                    VIRTIO_CONSOLE_MAX_PORTS);
    cw(VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    CU_ASSERT_EQUAL(virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_NUMQ, 2),
                    2 * VIRTIO_CONSOLE_MAX_PORTS + 2);
}

static void test_handshake(void)
{
    uint32_t id;
    uint16_t ev, val;
    char name[64];
    /* Control buffers first, then DEVICE_READY. */
    for (int i = 0; i < 4; i++) {
        give(&rings[0], alloc(72), 72, true);
    }
    send_ctrl(0, VIRTIO_CONSOLE_DEVICE_READY, 1);
    CU_ASSERT_TRUE(recv_ctrl(&id, &ev, &val, NULL));
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_EQUAL(ev, VIRTIO_CONSOLE_DEVICE_ADD);
    CU_ASSERT_FALSE(recv_ctrl(&id, &ev, &val, NULL)); /* no console port 0 configured */
    send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1);
    CU_ASSERT_TRUE(recv_ctrl(&id, &ev, &val, name));
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_EQUAL(ev, VIRTIO_CONSOLE_PORT_NAME);
    CU_ASSERT_STRING_EQUAL(name, "org.lodge.agent.0");
    CU_ASSERT_TRUE(recv_ctrl(&id, &ev, &val, NULL));
    CU_ASSERT_EQUAL(ev, VIRTIO_CONSOLE_PORT_OPEN);
    CU_ASSERT_EQUAL(val, 1);
    /* A message for a port that does not exist is ignored. */
    send_ctrl(7, VIRTIO_CONSOLE_PORT_READY, 1);
    CU_ASSERT_FALSE(recv_ctrl(&id, &ev, &val, NULL));
    CU_ASSERT_EQUAL(virtio_pci_status(vp) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void test_data(void)
{
    /* Host input waits until the guest opens the port. */
    CU_ASSERT_EQUAL(virtio_console_port_receive(vc, 1, (const uint8_t *)"hi", 2), 0);
    send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
    /* ... and until it has receive buffers. */
    CU_ASSERT_EQUAL(virtio_console_port_receive(vc, 1, (const uint8_t *)"hi", 2), 0);
    give(&rings[2], alloc(4), 4, true);
    CU_ASSERT_EQUAL(virtio_console_port_receive(vc, 1, (const uint8_t *)"hello", 5), 4);
    uint64_t buf;
    uint32_t len;
    CU_ASSERT_TRUE(take(&rings[2], &buf, &len));
    CU_ASSERT_EQUAL(len, 4);
    char got[4];
    guestmem_read(&mem, buf, got, 4);
    CU_ASSERT_EQUAL(memcmp(got, "hell", 4), 0);
    /* Guest -> host. */
    uint64_t out = alloc(6);
    guestmem_write(&mem, out, "{ping}", 6);
    give(&rings[3], out, 6, false);
    CU_ASSERT_EQUAL(host_len, 6);
    CU_ASSERT_EQUAL(memcmp(host_out, "{ping}", 6), 0);
    CU_ASSERT_TRUE(take(&rings[3], &buf, &len));
    /* Closed again: input waits. */
    send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 0);
    give(&rings[2], alloc(4), 4, true);
    CU_ASSERT_EQUAL(virtio_console_port_receive(vc, 1, (const uint8_t *)"x", 1), 0);
}

/* The guest's view (port open, control messages still owed) survives save and
 * load into a fresh device with the same ports; bad streams change nothing. */
static void test_save_load(void)
{
    uint32_t id;
    uint16_t ev, val;
    send_ctrl(1, VIRTIO_CONSOLE_PORT_OPEN, 1);
    /* Drain the control buffers, then a second PORT_READY owes PORT_NAME + PORT_OPEN. */
    while (recv_ctrl(&id, &ev, &val, NULL)) {
    }
    give(&rings[0], alloc(72), 72, true);
    while (recv_ctrl(&id, &ev, &val, NULL)) {
    }
    send_ctrl(1, VIRTIO_CONSOLE_PORT_READY, 1); /* PORT_NAME delivered, PORT_OPEN pending */
    CU_ASSERT_TRUE(recv_ctrl(&id, &ev, &val, NULL));
    CU_ASSERT_EQUAL(ev, VIRTIO_CONSOLE_PORT_NAME);
    GByteArray *st = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(virtio_console_device_ops.save(vc, st), 0);

    /* A device without port 1 refuses the stream; so does a truncated one. */
    struct virtio_console *other = virtio_console_new(&mem);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    CU_ASSERT_EQUAL(virtio_console_device_ops.load(other, st->data, st->len), -EINVAL);
    virtio_console_free(other);
    struct virtio_console *fresh = virtio_console_new(&mem);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
    struct virtio_console_backend be = {.write = backend_write};
    CU_ASSERT_EQUAL(virtio_console_add_port(fresh, "org.lodge.agent.0", false, &be), 1);
    CU_ASSERT_EQUAL(virtio_console_device_ops.load(fresh, st->data, st->len - 3), -EINVAL);
    CU_ASSERT_EQUAL(virtio_console_device_ops.load(fresh, st->data, 40), -EINVAL);
    CU_ASSERT_EQUAL(virtio_pci_status(virtio_console_transport(fresh)), 0);
    CU_ASSERT_EQUAL(virtio_console_port_receive(fresh, 1, (const uint8_t *)"x", 1), 0);
    /* The whole stream: the fresh device takes over the rings where the old one was. */
    CU_ASSERT_EQUAL_FATAL(virtio_console_device_ops.load(fresh, st->data, st->len), 0);
    g_byte_array_free(st, TRUE);
    virtio_console_free(vc);
    vc = fresh;
    vp = virtio_console_transport(vc);
    CU_ASSERT_TRUE(virtio_pci_status(vp) & VIRTIO_STATUS_DRIVER_OK);
    /* The owed PORT_OPEN arrives once the guest gives a control buffer. */
    give(&rings[0], alloc(72), 72, true);
    CU_ASSERT_TRUE(recv_ctrl(&id, &ev, &val, NULL));
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_EQUAL(ev, VIRTIO_CONSOLE_PORT_OPEN);
    CU_ASSERT_EQUAL(val, 1);
    /* The guest had the port open: host input flows without a new PORT_OPEN. */
    give(&rings[2], alloc(8), 8, true);
    CU_ASSERT_EQUAL(virtio_console_port_receive(vc, 1, (const uint8_t *)"after", 5), 5);
    uint64_t buf;
    uint32_t len;
    char got[16];
    size_t n = 0; /* the 4-byte buffer test_data left queued fills first */
    while (take(&rings[2], &buf, &len) && n + len <= sizeof(got)) {
        guestmem_read(&mem, buf, got + n, len);
        n += len;
    }
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(memcmp(got, "after", 5), 0);
    /* Guest -> host still reaches the backend. */
    host_len = 0;
    uint64_t out = alloc(4);
    guestmem_write(&mem, out, "pong", 4);
    give(&rings[3], out, 4, false);
    CU_ASSERT_EQUAL(host_len, 4);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("virtio_console", setup, teardown);
    CU_add_test(s, "config", test_config);
    CU_add_test(s, "control handshake", test_handshake);
    CU_add_test(s, "port data", test_data);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
