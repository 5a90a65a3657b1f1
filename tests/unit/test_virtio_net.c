/* Unit tests for devices/virtio/virtio_net: config space, transmit (plain, partial
 * checksum, hostile chains), mergeable receive, flow control with the backend. */
#include "devices/virtio/virtio_net.h"
#include "net/net.h"
#include "tests/unit/virtio_harness.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MOCK_MAX 8

/* A backend without a thread: frames the NIC sends are recorded. */
struct mock_be {
    struct net_backend be; /* base */
    uint8_t frames[MOCK_MAX][2048]; /* what output() got */
    size_t lens[MOCK_MAX];
    int n;
};

static void mock_output(struct net_backend *be, const uint8_t *frame, size_t len)
{
    struct mock_be *m = (struct mock_be *)be;
    if (m->n < MOCK_MAX && len <= sizeof(m->frames[0])) {
        memcpy(m->frames[m->n], frame, len);
        m->lens[m->n] = len;
    }
    m->n++;
}

static void mock_destroy(struct net_backend *be)
{
    free(be);
}

static const struct net_backend_ops mock_ops = {
    .kind = "mock", .output = mock_output, .destroy = mock_destroy};

static struct mock_be *mock_new(void)
{
    struct mock_be *m = calloc(1, sizeof(*m));
    net_backend_init(&m->be, &mock_ops, NULL);
    return m;
}

static const uint8_t test_mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};

struct fixture {
    struct vdrv d;
    struct mock_be *mb;
    struct virtio_net *n;
    struct virtio_pci *vp;
};

static void fx_start_n(struct fixture *f, unsigned q, uint64_t features, uint16_t num)
{
    CU_ASSERT_EQUAL_FATAL(vdrv_init(&f->d, num), 0);
    f->mb = mock_new();
    f->n = virtio_net_new(&f->d.mem, test_mac, NET_MTU_MAX, &f->mb->be);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->n);
    f->vp = virtio_net_transport(f->n);
    uint8_t st = vdrv_start(&f->d, f->vp, features, q);
    CU_ASSERT_TRUE(st & VIRTIO_STATUS_DRIVER_OK);
}

static void fx_start(struct fixture *f, unsigned q, uint64_t features)
{
    fx_start_n(f, q, features, 16);
}

static void fx_stop(struct fixture *f)
{
    virtio_net_free(f->n);
    net_backend_free(&f->mb->be);
    vdrv_free(&f->d);
}

static void test_config_space(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_TXQ, 0);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(virtio_pci_main_read(f.vp, VIRTIO_PCI_DEVCFG_OFF + i, 1), test_mac[i]);
    }
    CU_ASSERT_EQUAL(virtio_pci_main_read(f.vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_NET_CFG_STATUS, 2),
                    VIRTIO_NET_S_LINK_UP);
    CU_ASSERT_EQUAL(virtio_pci_main_read(f.vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_NET_CFG_MTU, 2),
                    NET_MTU_MAX);
    /* Offered features include MAC, STATUS, MTU, MRG_RXBUF. */
    virtio_pci_main_write(f.vp, VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    uint32_t df = (uint32_t)virtio_pci_main_read(f.vp, VIRTIO_PCI_COMMON_OFF +
                                                           VIRTIO_PCI_COMMON_DF, 4);
    CU_ASSERT_TRUE(df & (1u << VIRTIO_NET_F_MAC));
    CU_ASSERT_TRUE(df & (1u << VIRTIO_NET_F_STATUS));
    CU_ASSERT_TRUE(df & (1u << VIRTIO_NET_F_MTU));
    CU_ASSERT_TRUE(df & (1u << VIRTIO_NET_F_MRG_RXBUF));
    virtio_net_set_link(f.n, false);
    CU_ASSERT_EQUAL(virtio_pci_main_read(f.vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_NET_CFG_STATUS, 2),
                    0);
    fx_stop(&f);
}

/* Puts header + frame in one readable buffer and kicks the transmit queue. */
static void tx_one(struct fixture *f, unsigned desc, const uint8_t *hdr, const uint8_t *frame,
                   size_t len)
{
    uint64_t b = vdrv_alloc(&f->d, (uint32_t)(VIRTIO_NET_HDR_LEN + len));
    guestmem_write(&f->d.mem, b, hdr, VIRTIO_NET_HDR_LEN);
    guestmem_write(&f->d.mem, b + VIRTIO_NET_HDR_LEN, frame, len);
    vdrv_desc(&f->d, VDRV_DESC, desc, b, (uint32_t)(VIRTIO_NET_HDR_LEN + len), 0, 0);
    vdrv_publish(&f->d, (uint16_t)desc);
    vdrv_kick(f->vp, VIRTIO_NET_TXQ);
}

static void test_tx_plain(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_TXQ, 0);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
    uint8_t frame[60];
    for (size_t i = 0; i < sizeof(frame); i++) {
        frame[i] = (uint8_t)(i * 7);
    }
    tx_one(&f, 0, hdr, frame, sizeof(frame));
    CU_ASSERT_EQUAL(f.mb->n, 1);
    CU_ASSERT_EQUAL(f.mb->lens[0], sizeof(frame));
    CU_ASSERT_EQUAL(memcmp(f.mb->frames[0], frame, sizeof(frame)), 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&f.d), 1);
    fx_stop(&f);
}

/* Ethernet + IPv4 + UDP with 8 payload bytes; UDP checksum seeded with the
 * pseudo-header sum as Linux does for CHECKSUM_PARTIAL. */
static size_t build_udp(uint8_t *p, bool seed)
{
    memset(p, 0, 64);
    memset(p, 0xff, 6);
    memcpy(p + 6, test_mac, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14;
    ip[0] = 0x45;
    ip[3] = 28 + 8;
    ip[8] = 64;
    ip[9] = 17;
    uint8_t src[4] = {10, 0, 2, 15}, dst[4] = {10, 0, 2, 2};
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    uint16_t ic = (uint16_t)~net_checksum(ip, 20, 0);
    ip[10] = (uint8_t)(ic >> 8);
    ip[11] = (uint8_t)ic;
    uint8_t *u = ip + 20;
    u[0] = 0x12, u[1] = 0x34, u[2] = 0x00, u[3] = 0x35, u[5] = 16;
    memcpy(u + 8, "LODGENET", 8);
    if (seed) {
        uint32_t ps = (10 << 8 | 0) + (2 << 8 | 15) + (10 << 8 | 0) + (2 << 8 | 2) + 17 + 16;
        uint16_t s = net_checksum("", 0, ps);
        u[6] = (uint8_t)(s >> 8);
        u[7] = (uint8_t)s;
    }
    return 14 + 20 + 16;
}

/* Verifies the UDP checksum of a frame built by build_udp. */
static bool udp_ok(const uint8_t *p)
{
    const uint8_t *ip = p + 14;
    uint32_t ps = net_checksum(ip + 12, 8, 0);
    ps += 17 + 16;
    return net_checksum(ip + 20, 16, ps) == 0xffff;
}

static void test_tx_partial_csum(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_TXQ, 1ull << VIRTIO_NET_F_CSUM);
    uint8_t frame[64];
    size_t len = build_udp(frame, true);
    CU_ASSERT_FALSE(udp_ok(frame));
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM};
    hdr[6] = 34; /* csum_start: the UDP header */
    hdr[8] = 6;  /* csum_offset: UDP checksum field */
    tx_one(&f, 0, hdr, frame, len);
    CU_ASSERT_EQUAL_FATAL(f.mb->n, 1);
    CU_ASSERT_TRUE(udp_ok(f.mb->frames[0]));
    fx_stop(&f);
}

static void test_tx_gso_fixup(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_TXQ,
             (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4));
    uint8_t frame[64];
    size_t len = build_udp(frame, false);
    frame[14 + 2] = 0; /* a GSO super-frame may carry any IP length */
    frame[14 + 3] = 0;
    frame[14 + 20 + 6] = 0xde; /* and a wrong checksum */
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4};
    tx_one(&f, 0, hdr, frame, len);
    CU_ASSERT_EQUAL_FATAL(f.mb->n, 1);
    const uint8_t *ip = f.mb->frames[0] + 14;
    CU_ASSERT_EQUAL(ip[2] << 8 | ip[3], 36);
    CU_ASSERT_EQUAL(net_checksum(ip, 20, 0), 0xffff);
    CU_ASSERT_TRUE(udp_ok(f.mb->frames[0]));
    fx_stop(&f);
}

static void test_tx_hostile(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_TXQ, 0);
    /* Shorter than header + Ethernet header: dropped, returned, device fine. */
    uint64_t b = vdrv_alloc(&f.d, 8);
    vdrv_desc(&f.d, VDRV_DESC, 0, b, 8, 0, 0);
    vdrv_publish(&f.d, 0);
    /* Claims 1 MiB: larger than any frame (and than RAM past b): never read. */
    vdrv_desc(&f.d, VDRV_DESC, 1, 0x100, 0x10000 + 200, 0, 0);
    vdrv_publish(&f.d, 1);
    vdrv_kick(f.vp, VIRTIO_NET_TXQ);
    CU_ASSERT_EQUAL(f.mb->n, 0);
    CU_ASSERT_EQUAL(vdrv_used_idx(&f.d), 2);
    CU_ASSERT_FALSE(virtio_pci_status(f.vp) & VIRTIO_STATUS_NEEDS_RESET);
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
    uint8_t frame[60] = {1, 2, 3};
    tx_one(&f, 2, hdr, frame, sizeof(frame));
    CU_ASSERT_EQUAL(f.mb->n, 1);
    /* A buffer outside guest RAM breaks the ring: NEEDS_RESET, no crash. */
    vdrv_desc(&f.d, VDRV_DESC, 3, VDRV_RAM + 0x1000, 100, 0, 0);
    vdrv_publish(&f.d, 3);
    vdrv_kick(f.vp, VIRTIO_NET_TXQ);
    CU_ASSERT_TRUE(virtio_pci_status(f.vp) & VIRTIO_STATUS_NEEDS_RESET);
    CU_ASSERT_EQUAL(f.mb->n, 1);
    fx_stop(&f);
}

static void test_rx_mergeable(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF);
    uint64_t bufs[3];
    for (unsigned i = 0; i < 3; i++) {
        bufs[i] = vdrv_alloc(&f.d, 64);
        vdrv_desc(&f.d, VDRV_DESC, i, bufs[i], 64, VIRTQ_DESC_F_WRITE, 0);
        vdrv_publish(&f.d, (uint16_t)i);
    }
    uint8_t frame[150];
    for (size_t i = 0; i < sizeof(frame); i++) {
        frame[i] = (uint8_t)(i + 1);
    }
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL_FATAL(vdrv_used_idx(&f.d), 3);
    uint32_t id, len, total = 0;
    for (unsigned i = 0; i < 3; i++) {
        vdrv_used_elem(&f.d, i, &id, &len);
        CU_ASSERT_EQUAL(id, i);
        total += len;
    }
    CU_ASSERT_EQUAL(total, VIRTIO_NET_HDR_LEN + sizeof(frame));
    CU_ASSERT_EQUAL(vdrv_r16(&f.d, bufs[0] + 10), 3); /* num_buffers */
    uint8_t got[sizeof(frame)];
    guestmem_read(&f.d.mem, bufs[0] + VIRTIO_NET_HDR_LEN, got, 64 - VIRTIO_NET_HDR_LEN);
    guestmem_read(&f.d.mem, bufs[1], got + 52, 64);
    guestmem_read(&f.d.mem, bufs[2], got + 116, sizeof(frame) - 116);
    CU_ASSERT_EQUAL(memcmp(got, frame, sizeof(frame)), 0);
    fx_stop(&f);
}

static void test_rx_flow_control(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF);
    uint8_t frame[100] = {0x52, 0x54};
    /* No buffers: the backend keeps the frame... */
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL(vdrv_used_idx(&f.d), 0);
    CU_ASSERT_EQUAL(f.mb->be.rxq.length, 1);
    /* ...and hands it over when the driver adds one and kicks. */
    uint64_t b = vdrv_alloc(&f.d, 2048);
    vdrv_desc(&f.d, VDRV_DESC, 0, b, 2048, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&f.d, 0);
    vdrv_kick(f.vp, VIRTIO_NET_RXQ);
    CU_ASSERT_EQUAL(vdrv_used_idx(&f.d), 1);
    CU_ASSERT_EQUAL(f.mb->be.rxq.length, 0);
    uint32_t id, len;
    vdrv_used_elem(&f.d, 0, &id, &len);
    CU_ASSERT_EQUAL(len, VIRTIO_NET_HDR_LEN + sizeof(frame));
    fx_stop(&f);
}

static void test_rx_tiny_buffers(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF);
    /* Buffers smaller than the header: NEEDS_RESET instead of a write past them. */
    uint64_t b = vdrv_alloc(&f.d, 4);
    vdrv_desc(&f.d, VDRV_DESC, 0, b, 4, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&f.d, 0);
    uint64_t b2 = vdrv_alloc(&f.d, 64);
    vdrv_desc(&f.d, VDRV_DESC, 1, b2, 64, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&f.d, 1);
    uint8_t frame[20] = {0};
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_TRUE(virtio_pci_status(f.vp) & VIRTIO_STATUS_NEEDS_RESET);
    fx_stop(&f);
}

/* An Ethernet + IPv4 + TCP frame with payload bytes, checksums filled in. */
static size_t build_tcp(uint8_t *p, size_t payload)
{
    memset(p, 0, 54 + payload);
    memcpy(p, test_mac, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14;
    ip[0] = 0x45, ip[8] = 64, ip[9] = 6;
    ip[12] = 10, ip[15] = 2, ip[16] = 10, ip[19] = 15;
    uint8_t *t = ip + 20;
    t[1] = 80, t[3] = 99, t[12] = 0x50;
    for (size_t i = 0; i < payload; i++) {
        t[20 + i] = (uint8_t)(i * 7);
    }
    net_frame_fix_checksums(p, 54 + payload);
    return 54 + payload;
}

/* Delivers frame into a fresh 2 KiB buffer (descriptor desc) and returns the header's flags. */
static uint8_t rx_flags(struct fixture *f, unsigned desc, const uint8_t *frame, size_t len)
{
    uint64_t b = vdrv_alloc(&f->d, 2048);
    vdrv_desc(&f->d, VDRV_DESC, desc, b, 2048, VIRTQ_DESC_F_WRITE, 0);
    vdrv_publish(&f->d, (uint16_t)desc);
    uint16_t before = vdrv_used_idx(&f->d);
    net_backend_deliver(&f->mb->be, frame, len);
    CU_ASSERT_EQUAL(vdrv_used_idx(&f->d), (uint16_t)(before + 1));
    uint8_t flags = 0xee;
    guestmem_read(&f->d.mem, b, &flags, 1);
    return flags;
}

static void test_rx_data_valid(void)
{
    struct fixture f;
    fx_start(&f, VIRTIO_NET_RXQ,
             (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_GUEST_CSUM));
    uint8_t frame[300];
    size_t len = build_tcp(frame, 200);
    /* GUEST_CSUM: a frame whose sums the host checked is marked DATA_VALID... */
    CU_ASSERT_EQUAL(rx_flags(&f, 0, frame, len), VIRTIO_NET_HDR_F_DATA_VALID);
    /* ...one damaged on the way is not: the guest's own check must drop it. */
    frame[100] ^= 0x10;
    CU_ASSERT_EQUAL(rx_flags(&f, 1, frame, len), 0);
    /* A backend that built the frame is believed without summing (slirp). */
    f.mb->be.rx_csum_good = true;
    frame[100] ^= 0x10;
    CU_ASSERT_EQUAL(rx_flags(&f, 2, frame, len), VIRTIO_NET_HDR_F_DATA_VALID);
    /* Not TCP/UDP (an ARP frame): nothing to vouch for. */
    uint8_t arp[60] = {0};
    memcpy(arp, test_mac, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    CU_ASSERT_EQUAL(rx_flags(&f, 3, arp, sizeof(arp)), 0);
    fx_stop(&f);
    /* Without GUEST_CSUM the header flags stay 0 (5.1.6.4). */
    fx_start(&f, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF);
    len = build_tcp(frame, 200);
    CU_ASSERT_EQUAL(rx_flags(&f, 0, frame, len), 0);
    fx_stop(&f);
}

static void test_save_load(void)
{
    struct fixture a, b;
    fx_start(&a, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF);
    fx_start(&b, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF);
    /* Two 64-byte buffers cannot hold a 150-byte frame: the device holds them popped. */
    for (unsigned i = 0; i < 2; i++) {
        vdrv_desc(&a.d, VDRV_DESC, i, vdrv_alloc(&a.d, 64), 64, VIRTQ_DESC_F_WRITE, 0);
        vdrv_publish(&a.d, (uint16_t)i);
    }
    uint8_t frame[150] = {0};
    memcpy(frame, test_mac, 6);
    net_backend_deliver(&a.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL(vdrv_used_idx(&a.d), 0);
    CU_ASSERT_EQUAL(a.mb->be.rxq.length, 1);
    virtio_net_set_link(a.n, false);
    GByteArray *img = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(virtio_net_device_ops.save(a.n, img), 0);
    /* Another NIC's state (its MAC differs) is refused. */
    GByteArray *bad = g_byte_array_new();
    g_byte_array_append(bad, img->data, img->len);
    bad->data[4 + strlen("virtio-net") + 8] ^= 1; /* first MAC byte of the payload */
    CU_ASSERT_EQUAL(virtio_net_device_ops.load(b.n, bad->data, bad->len), -EINVAL);
    CU_ASSERT_EQUAL(virtio_pci_main_read(b.vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_NET_CFG_STATUS, 2),
                    VIRTIO_NET_S_LINK_UP);
    CU_ASSERT_EQUAL_FATAL(virtio_net_device_ops.load(b.n, img->data, img->len), 0);
    CU_ASSERT_EQUAL(virtio_pci_main_read(b.vp, VIRTIO_PCI_DEVCFG_OFF + VIRTIO_NET_CFG_STATUS, 2),
                    0);
    /* The two held chains come back to the driver (length 0) instead of being lost. */
    CU_ASSERT_EQUAL_FATAL(vdrv_used_idx(&b.d), 2);
    uint32_t id, len;
    for (unsigned i = 0; i < 2; i++) {
        vdrv_used_elem(&b.d, i, &id, &len);
        CU_ASSERT_EQUAL(id, i);
        CU_ASSERT_EQUAL(len, 0);
    }
    g_byte_array_free(bad, TRUE);
    g_byte_array_free(img, TRUE);
    fx_stop(&a);
    fx_stop(&b);
}

static void test_rx_frame_too_big(void)
{
    struct fixture f;
    fx_start_n(&f, VIRTIO_NET_RXQ, 1ull << VIRTIO_NET_F_MRG_RXBUF, 128);
    /* 100 buffers of 16 bytes: more than the device gathers for one frame (64 chains). */
    for (unsigned i = 0; i < 100; i++) {
        vdrv_desc(&f.d, VDRV_DESC, i, vdrv_alloc(&f.d, 16), 16, VIRTQ_DESC_F_WRITE, 0);
        vdrv_publish(&f.d, (uint16_t)i);
    }
    static uint8_t big[1500];
    memcpy(big, test_mac, 6);
    net_backend_deliver(&f.mb->be, big, sizeof(big));
    /* Dropped (5.1.6.3.1), not held and not leaked... */
    CU_ASSERT_EQUAL(vdrv_used_idx(&f.d), 0);
    CU_ASSERT_EQUAL(f.mb->be.rxq.length, 0);
    CU_ASSERT_FALSE(virtio_pci_status(f.vp) & VIRTIO_STATUS_NEEDS_RESET);
    /* ...the chains it gathered carry the next frame, in ring order. */
    uint8_t small[60] = {0};
    memcpy(small, test_mac, 6);
    net_backend_deliver(&f.mb->be, small, sizeof(small));
    CU_ASSERT_EQUAL_FATAL(vdrv_used_idx(&f.d), 5); /* 12 + 60 bytes in 16-byte buffers */
    uint32_t id, len;
    vdrv_used_elem(&f.d, 0, &id, &len);
    CU_ASSERT_EQUAL(id, 0);
    vdrv_used_elem(&f.d, 4, &id, &len);
    CU_ASSERT_EQUAL(id, 4);
    CU_ASSERT_EQUAL(len, 8);
    fx_stop(&f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("virtio_net", NULL, NULL);
    CU_add_test(s, "config space", test_config_space);
    CU_add_test(s, "transmit plain", test_tx_plain);
    CU_add_test(s, "transmit partial checksum", test_tx_partial_csum);
    CU_add_test(s, "transmit GSO fix-up", test_tx_gso_fixup);
    CU_add_test(s, "transmit hostile chains", test_tx_hostile);
    CU_add_test(s, "receive mergeable", test_rx_mergeable);
    CU_add_test(s, "receive flow control", test_rx_flow_control);
    CU_add_test(s, "receive tiny buffers", test_rx_tiny_buffers);
    CU_add_test(s, "receive DATA_VALID", test_rx_data_valid);
    CU_add_test(s, "receive frame too big for the buffers", test_rx_frame_too_big);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
