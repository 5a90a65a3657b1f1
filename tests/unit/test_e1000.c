/* Unit tests for devices/net/e1000: EEPROM (EERD and microwire), PHY over MDIC,
 * interrupt registers, transmit (legacy, checksum offload, TSO) and receive
 * descriptors, receive checksum offload, interrupt moderation (ITR, RDTR/RADV, FPD),
 * and garbage rings that must leave the device working. */
#include "devices/net/e1000.h"
#include "net/net.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RAM (1u << 20)
#define TX_RING 0x1000
#define RX_RING 0x2000
#define BUFS 0x10000
#define MOCK_MAX 8

struct mock_be {
    struct net_backend be;        /* base */
    uint8_t frames[MOCK_MAX][4096]; /* what output() got */
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

struct irq_rec {
    int level; /* last level set */
    int raises; /* rising edges */
};

static void irq_cb(void *opaque, int line, int level)
{
    struct irq_rec *r = opaque;
    if (level && !r->level) {
        r->raises++;
    }
    r->level = level;
}

static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

struct fx {
    struct guestmem mem;
    struct mock_be *mb;
    struct e1000 *s;
    struct irq_rec irq;
};

static void fx_start(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&f->mem, "ram", 0, RAM, false), 0);
    f->mb = calloc(1, sizeof(*f->mb));
    net_backend_init(&f->mb->be, &mock_ops, NULL);
    f->s = e1000_new(&f->mem, mac, &f->mb->be);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->s);
    struct irq_line l = {.set = irq_cb, .opaque = &f->irq, .line = 10};
    pci_dev_attach(e1000_pci(f->s), NULL, NULL, &l, NULL);
    pci_dev_config_write(e1000_pci(f->s), 4, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

static void fx_stop(struct fx *f)
{
    e1000_free(f->s);
    net_backend_free(&f->mb->be);
    guestmem_free(&f->mem);
}

static uint32_t rd(struct fx *f, uint32_t off)
{
    return (uint32_t)e1000_mmio_read(f->s, off, 4);
}

static void wr(struct fx *f, uint32_t off, uint32_t v)
{
    e1000_mmio_write(f->s, off, v, 4);
}

static void test_pci_ids(void)
{
    struct fx f;
    fx_start(&f);
    CU_ASSERT_EQUAL(pci_dev_config_read(e1000_pci(f.s), 0, 4), 0x100e8086u);
    CU_ASSERT_EQUAL(pci_dev_config_read(e1000_pci(f.s), 0x0a, 2), 0x0200); /* Ethernet */
    fx_stop(&f);
}

static uint16_t eerd(struct fx *f, unsigned word)
{
    wr(f, E1000_EERD, (word << 8) | E1000_EERD_START);
    uint32_t v = rd(f, E1000_EERD);
    CU_ASSERT_TRUE(v & E1000_EERD_DONE);
    return (uint16_t)(v >> 16);
}

static void test_eeprom_eerd(void)
{
    struct fx f;
    fx_start(&f);
    CU_ASSERT_EQUAL(eerd(&f, 0), 0x5452);
    CU_ASSERT_EQUAL(eerd(&f, 1), 0x1200);
    CU_ASSERT_EQUAL(eerd(&f, 2), 0x5634);
    uint16_t sum = 0;
    for (unsigned i = 0; i < E1000_EEPROM_WORDS; i++) {
        sum = (uint16_t)(sum + eerd(&f, i));
    }
    CU_ASSERT_EQUAL(sum, E1000_EEPROM_SUM);
    fx_stop(&f);
}

/* Bit-bangs a microwire READ the way Linux's e1000_read_eeprom does for 82540. */
static void ee_clock_out(struct fx *f, uint32_t *eecd, unsigned bit)
{
    *eecd = bit ? (*eecd | E1000_EECD_DI) : (*eecd & ~E1000_EECD_DI);
    wr(f, E1000_EECD, *eecd);
    wr(f, E1000_EECD, *eecd | E1000_EECD_SK);
    wr(f, E1000_EECD, *eecd);
}

static uint16_t ee_read_microwire(struct fx *f, unsigned word)
{
    uint32_t eecd = rd(f, E1000_EECD);
    CU_ASSERT_TRUE(eecd & E1000_EECD_PRES);
    eecd |= E1000_EECD_REQ;
    wr(f, E1000_EECD, eecd);
    CU_ASSERT_TRUE(rd(f, E1000_EECD) & E1000_EECD_GNT);
    eecd = E1000_EECD_REQ | E1000_EECD_CS;
    wr(f, E1000_EECD, eecd);
    unsigned cmd = (0x6u << 6) | word; /* start bit, READ opcode 10, 6 address bits */
    for (int i = 8; i >= 0; i--) {
        ee_clock_out(f, &eecd, (cmd >> i) & 1);
    }
    uint16_t v = 0;
    eecd &= ~E1000_EECD_DI;
    for (int i = 0; i < 16; i++) {
        wr(f, E1000_EECD, eecd | E1000_EECD_SK);
        v = (uint16_t)(v << 1 | ((rd(f, E1000_EECD) & E1000_EECD_DO) ? 1 : 0));
        wr(f, E1000_EECD, eecd);
    }
    wr(f, E1000_EECD, E1000_EECD_REQ);
    wr(f, E1000_EECD, 0);
    return v;
}

static void test_eeprom_microwire(void)
{
    struct fx f;
    fx_start(&f);
    CU_ASSERT_EQUAL(ee_read_microwire(&f, 0), 0x5452);
    CU_ASSERT_EQUAL(ee_read_microwire(&f, 2), 0x5634);
    CU_ASSERT_EQUAL(ee_read_microwire(&f, 0x0d), E1000_DEVICE_82540EM);
    fx_stop(&f);
}

static uint32_t mdic(struct fx *f, uint32_t v)
{
    wr(f, E1000_MDIC, v);
    uint32_t r = rd(f, E1000_MDIC);
    CU_ASSERT_TRUE(r & E1000_MDIC_READY);
    return r;
}

static void test_phy_and_link(void)
{
    struct fx f;
    fx_start(&f);
    uint32_t phy1 = 1u << 21;
    CU_ASSERT_EQUAL(mdic(&f, E1000_MDIC_OP_READ | phy1 | (2u << 16)) & 0xffff, 0x0141);
    CU_ASSERT_EQUAL(mdic(&f, E1000_MDIC_OP_READ | phy1 | (3u << 16)) & 0xfff0, 0x0c20);
    CU_ASSERT_TRUE(mdic(&f, E1000_MDIC_OP_READ | phy1 | (1u << 16)) & 0x4); /* link */
    CU_ASSERT_TRUE(mdic(&f, E1000_MDIC_OP_READ | (2u << 21) | (1u << 16)) & E1000_MDIC_ERROR);
    /* PHY reset self-clears. */
    mdic(&f, E1000_MDIC_OP_WRITE | phy1 | 0x9140);
    CU_ASSERT_FALSE(mdic(&f, E1000_MDIC_OP_READ | phy1) & 0x8000);
    CU_ASSERT_TRUE(rd(&f, E1000_STATUS) & E1000_STATUS_LU);
    wr(&f, E1000_IMS, E1000_ICR_LSC);
    e1000_set_link(f.s, false);
    CU_ASSERT_FALSE(rd(&f, E1000_STATUS) & E1000_STATUS_LU);
    CU_ASSERT_EQUAL(f.irq.level, 1);
    CU_ASSERT_TRUE(rd(&f, E1000_ICR) & E1000_ICR_LSC);
    CU_ASSERT_EQUAL(f.irq.level, 0);
    fx_stop(&f);
}

static void test_interrupt_registers(void)
{
    struct fx f;
    fx_start(&f);
    wr(&f, E1000_ICS, E1000_ICR_RXT0);
    CU_ASSERT_EQUAL(f.irq.level, 0); /* masked */
    wr(&f, E1000_IMS, E1000_ICR_RXT0 | E1000_ICR_TXDW);
    CU_ASSERT_EQUAL(f.irq.level, 1);
    wr(&f, E1000_IMC, E1000_ICR_RXT0);
    CU_ASSERT_EQUAL(f.irq.level, 0);
    CU_ASSERT_EQUAL(rd(&f, E1000_IMS), E1000_ICR_TXDW);
    wr(&f, E1000_IMS, E1000_ICR_RXT0);
    uint32_t icr = rd(&f, E1000_ICR);
    CU_ASSERT_EQUAL(icr, E1000_ICR_RXT0 | E1000_ICR_ASSERTED);
    CU_ASSERT_EQUAL(rd(&f, E1000_ICR), 0); /* read to clear */
    CU_ASSERT_EQUAL(f.irq.level, 0);
    fx_stop(&f);
}

static void put_desc(struct fx *f, uint64_t at, uint64_t addr, uint32_t w2, uint32_t w3)
{
    uint8_t d[16];
    for (int i = 0; i < 8; i++) {
        d[i] = (uint8_t)(addr >> (8 * i));
    }
    for (int i = 0; i < 4; i++) {
        d[8 + i] = (uint8_t)(w2 >> (8 * i));
        d[12 + i] = (uint8_t)(w3 >> (8 * i));
    }
    guestmem_write(&f->mem, at, d, sizeof(d));
}

static void tx_setup(struct fx *f, unsigned ndesc)
{
    wr(f, E1000_TDBAL, TX_RING);
    wr(f, E1000_TDBAH, 0);
    wr(f, E1000_TDLEN, ndesc * E1000_DESC_SIZE);
    wr(f, E1000_TDH, 0);
    wr(f, E1000_TDT, 0);
    wr(f, E1000_TCTL, E1000_TCTL_EN);
    wr(f, E1000_IMS, E1000_ICR_TXDW | E1000_ICR_RXT0);
}

static void test_tx_legacy(void)
{
    struct fx f;
    fx_start(&f);
    tx_setup(&f, 8);
    uint8_t frame[100];
    for (size_t i = 0; i < sizeof(frame); i++) {
        frame[i] = (uint8_t)(0x30 + i);
    }
    guestmem_write(&f.mem, BUFS, frame, 60);
    guestmem_write(&f.mem, BUFS + 0x1000, frame + 60, 40);
    /* Two descriptors, EOP on the second; RS asks for DD. */
    put_desc(&f, TX_RING, BUFS, 60, 0);
    put_desc(&f, TX_RING + 16, BUFS + 0x1000,
             40 | (uint32_t)(E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS) << 24, 0);
    wr(&f, E1000_TDT, 2);
    CU_ASSERT_EQUAL_FATAL(f.mb->n, 1);
    CU_ASSERT_EQUAL(f.mb->lens[0], sizeof(frame));
    CU_ASSERT_EQUAL(memcmp(f.mb->frames[0], frame, sizeof(frame)), 0);
    CU_ASSERT_EQUAL(rd(&f, E1000_TDH), 2);
    uint8_t st;
    guestmem_read(&f.mem, TX_RING + 16 + 12, &st, 1);
    CU_ASSERT_TRUE(st & E1000_TXD_STAT_DD);
    CU_ASSERT_EQUAL(f.irq.level, 1);
    CU_ASSERT_TRUE(rd(&f, E1000_ICR) & E1000_ICR_TXDW);
    fx_stop(&f);
}

/* Ethernet + IPv4 + TCP (20-byte header) + payload; checksums left wrong. */
static size_t build_tcp(uint8_t *p, size_t payload)
{
    memset(p, 0, 54 + payload);
    memcpy(p, mac, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14;
    ip[0] = 0x45;
    ip[8] = 64;
    ip[9] = 6;
    ip[12] = 10, ip[15] = 15, ip[16] = 10, ip[19] = 2;
    uint8_t *t = ip + 20;
    t[1] = 80, t[3] = 99;
    t[12] = 0x50;
    for (size_t i = 0; i < payload; i++) {
        t[20 + i] = (uint8_t)i;
    }
    return 54 + payload;
}

static bool tcp_ok(const uint8_t *p, size_t len)
{
    const uint8_t *ip = p + 14;
    size_t l4 = len - 34;
    uint32_t ps = net_checksum(ip + 12, 8, 0);
    ps += 6 + (uint32_t)l4;
    return net_checksum(ip, 20, 0) == 0xffff && net_checksum(ip + 20, l4, ps) == 0xffff &&
           (size_t)(ip[2] << 8 | ip[3]) == len - 14;
}

static void test_tx_tso(void)
{
    struct fx f;
    fx_start(&f);
    tx_setup(&f, 8);
    static uint8_t frame[3054];
    size_t len = build_tcp(frame, 3000);
    guestmem_write(&f.mem, BUFS, frame, len);
    /* Context: IP at 14 (csum at 24), TCP at 34 (csum at 50), TSE, MSS 1460, hdr 54. */
    put_desc(&f, TX_RING, (uint64_t)14 | 24 << 8 | (uint64_t)34 << 32 | (uint64_t)50 << 40,
             3000 | (uint32_t)(E1000_TXD_CMD_DEXT | E1000_TXD_CMD_TSE | 0x3) << 24,
             54u << 8 | 1460u << 16);
    put_desc(&f, TX_RING + 16, BUFS,
             (uint32_t)len | E1000_TXD_DTYP_D << 20 |
                 (uint32_t)(E1000_TXD_CMD_DEXT | E1000_TXD_CMD_TSE | E1000_TXD_CMD_EOP) << 24,
             (E1000_TXD_POPTS_IXSM | E1000_TXD_POPTS_TXSM) << 8);
    wr(&f, E1000_TDT, 2);
    CU_ASSERT_EQUAL_FATAL(f.mb->n, 1);
    CU_ASSERT_EQUAL(f.mb->lens[0], len);
    CU_ASSERT_TRUE(tcp_ok(f.mb->frames[0], len));
    fx_stop(&f);
}

static void test_tx_csum_offload(void)
{
    struct fx f;
    fx_start(&f);
    tx_setup(&f, 8);
    uint8_t frame[200];
    size_t len = build_tcp(frame, 100);
    frame[16] = 0, frame[17] = (uint8_t)(len - 14);
    uint16_t ic = (uint16_t)~net_checksum(frame + 14, 20, 0);
    frame[24] = (uint8_t)(ic >> 8), frame[25] = (uint8_t)ic;
    /* Seed the TCP checksum with the pseudo-header sum, as the driver does. */
    uint32_t ps = net_checksum(frame + 26, 8, 0);
    uint16_t seed = net_checksum("", 0, ps + 6 + (uint32_t)(len - 34));
    frame[50] = (uint8_t)(seed >> 8), frame[51] = (uint8_t)seed;
    guestmem_write(&f.mem, BUFS, frame, len);
    put_desc(&f, TX_RING, (uint64_t)34 << 32 | (uint64_t)50 << 40,
             (uint32_t)(E1000_TXD_CMD_DEXT | 0x1) << 24, 0);
    put_desc(&f, TX_RING + 16, BUFS,
             (uint32_t)len | E1000_TXD_DTYP_D << 20 |
                 (uint32_t)(E1000_TXD_CMD_DEXT | E1000_TXD_CMD_EOP) << 24,
             E1000_TXD_POPTS_TXSM << 8);
    wr(&f, E1000_TDT, 2);
    CU_ASSERT_EQUAL_FATAL(f.mb->n, 1);
    CU_ASSERT_TRUE(tcp_ok(f.mb->frames[0], len));
    fx_stop(&f);
}

static void rx_setup(struct fx *f, unsigned ndesc, unsigned tail)
{
    for (unsigned i = 0; i < ndesc; i++) {
        put_desc(f, RX_RING + 16 * i, BUFS + 0x800 * i, 0, 0);
    }
    wr(f, E1000_RDBAL, RX_RING);
    wr(f, E1000_RDLEN, ndesc * E1000_DESC_SIZE);
    wr(f, E1000_RDH, 0);
    wr(f, E1000_RDT, tail);
    wr(f, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_BAM);
    wr(f, E1000_IMS, E1000_ICR_RXT0);
}

static void test_rx(void)
{
    struct fx f;
    fx_start(&f);
    rx_setup(&f, 8, 4);
    uint8_t frame[100];
    memcpy(frame, mac, 6);
    for (size_t i = 6; i < sizeof(frame); i++) {
        frame[i] = (uint8_t)i;
    }
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    uint8_t d[16];
    guestmem_read(&f.mem, RX_RING, d, sizeof(d));
    CU_ASSERT_EQUAL(d[8] | d[9] << 8, sizeof(frame) + 4); /* FCS included */
    CU_ASSERT_EQUAL(d[12] & (E1000_RXD_STAT_DD | E1000_RXD_STAT_EOP),
                    E1000_RXD_STAT_DD | E1000_RXD_STAT_EOP);
    uint8_t got[sizeof(frame)];
    guestmem_read(&f.mem, BUFS, got, sizeof(got));
    CU_ASSERT_EQUAL(memcmp(got, frame, sizeof(frame)), 0);
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 1);
    CU_ASSERT_EQUAL(f.irq.level, 1);
    CU_ASSERT_TRUE(rd(&f, E1000_ICR) & E1000_ICR_RXT0);
    /* Someone else's unicast address: filtered. */
    frame[5] ^= 1;
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 1);
    /* Ring full (head reaches tail): the backend holds the frame until RDT moves. */
    frame[5] ^= 1;
    for (int i = 0; i < 4; i++) {
        net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    }
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 4);
    CU_ASSERT_EQUAL(f.mb->be.rxq.length, 1);
    wr(&f, E1000_RDT, 6);
    CU_ASSERT_EQUAL(f.mb->be.rxq.length, 0);
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 5);
    fx_stop(&f);
}

/* Status and errors bytes of receive descriptor i. */
static void rx_status(struct fx *f, unsigned i, uint8_t *status, uint8_t *errors)
{
    uint8_t d[16];
    guestmem_read(&f->mem, RX_RING + 16 * i, d, sizeof(d));
    *status = d[12];
    *errors = d[13];
}

static void test_rx_csum_offload(void)
{
    struct fx f;
    fx_start(&f);
    rx_setup(&f, 8, 7);
    uint8_t frame[200];
    size_t len = build_tcp(frame, 100);
    net_frame_fix_checksums(frame, len);
    uint8_t st, err;
    /* RXCSUM off: the driver is told to ignore the checksum bits (IXSM). */
    net_backend_deliver(&f.mb->be, frame, len);
    rx_status(&f, 0, &st, &err);
    CU_ASSERT_EQUAL(st & (E1000_RXD_STAT_IXSM | E1000_RXD_STAT_IPCS | E1000_RXD_STAT_TCPCS),
                    E1000_RXD_STAT_IXSM);
    /* IPOFLD + TUOFLD: both sums checked and good. */
    wr(&f, E1000_RXCSUM, E1000_RXCSUM_IPOFLD | E1000_RXCSUM_TUOFLD);
    net_backend_deliver(&f.mb->be, frame, len);
    rx_status(&f, 1, &st, &err);
    CU_ASSERT_EQUAL(st & (E1000_RXD_STAT_IXSM | E1000_RXD_STAT_IPCS | E1000_RXD_STAT_TCPCS),
                    E1000_RXD_STAT_IPCS | E1000_RXD_STAT_TCPCS);
    CU_ASSERT_EQUAL(err, 0);
    /* A payload byte flipped on the wire: TCPE, the IP header is still fine. */
    frame[80] ^= 0x40;
    net_backend_deliver(&f.mb->be, frame, len);
    rx_status(&f, 2, &st, &err);
    CU_ASSERT_TRUE(st & E1000_RXD_STAT_TCPCS);
    CU_ASSERT_EQUAL(err & (E1000_RXD_ERR_TCPE | E1000_RXD_ERR_IPE), E1000_RXD_ERR_TCPE);
    /* A bad IP header checksum: IPE. */
    frame[80] ^= 0x40;
    frame[24] ^= 0x01;
    net_backend_deliver(&f.mb->be, frame, len);
    rx_status(&f, 3, &st, &err);
    CU_ASSERT_TRUE(err & E1000_RXD_ERR_IPE);
    /* A backend that built the frame itself is believed without summing it again. */
    f.mb->be.rx_csum_good = true;
    frame[24] ^= 0x01;
    frame[80] ^= 0x40;
    net_backend_deliver(&f.mb->be, frame, len);
    rx_status(&f, 4, &st, &err);
    CU_ASSERT_EQUAL(st & (E1000_RXD_STAT_IPCS | E1000_RXD_STAT_TCPCS),
                    E1000_RXD_STAT_IPCS | E1000_RXD_STAT_TCPCS);
    CU_ASSERT_EQUAL(err, 0);
    fx_stop(&f);
}

/* IEEE 802.3 CRC-32 (reflected, as the FCS is sent least significant byte first). */
static uint32_t fcs32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        }
    }
    return ~c;
}

/* A short frame is padded to 60 bytes and the FCS over frame + padding follows (SDM 3.2.4);
 * without RCTL.LPE a frame over 1522 bytes with FCS is dropped (SDM 13.4.22), with it the
 * frame is received. */
static void test_rx_fcs_and_lpe(void)
{
    struct fx f;
    fx_start(&f);
    rx_setup(&f, 8, 7);
    uint8_t frame[1600];
    memcpy(frame, mac, 6);
    for (size_t i = 6; i < sizeof(frame); i++) {
        frame[i] = (uint8_t)(i * 7);
    }
    guestmem_write(&f.mem, BUFS, frame + 100, 64); /* stale bytes where the padding goes */
    net_backend_deliver(&f.mb->be, frame, 20);
    uint8_t d[16];
    guestmem_read(&f.mem, RX_RING, d, sizeof(d));
    CU_ASSERT_EQUAL(d[8] | d[9] << 8, 64);
    uint8_t got[64], want[60] = {0};
    memcpy(want, frame, 20);
    guestmem_read(&f.mem, BUFS, got, sizeof(got));
    CU_ASSERT_EQUAL(memcmp(got, want, 60), 0);
    uint32_t fcs = fcs32(want, 60);
    CU_ASSERT_EQUAL((uint32_t)got[60] | (uint32_t)got[61] << 8 | (uint32_t)got[62] << 16 |
                        (uint32_t)got[63] << 24,
                    fcs);
    /* 1518 bytes + FCS: the largest standard frame, received. */
    net_backend_deliver(&f.mb->be, frame, 1518);
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 2);
    guestmem_read(&f.mem, RX_RING + 16, d, sizeof(d));
    CU_ASSERT_EQUAL(d[8] | d[9] << 8, 1522);
    uint8_t big[1522];
    guestmem_read(&f.mem, BUFS + 0x800, big, sizeof(big));
    CU_ASSERT_EQUAL(memcmp(big, frame, 1518), 0);
    fcs = fcs32(frame, 1518);
    CU_ASSERT_EQUAL((uint32_t)big[1518] | (uint32_t)big[1519] << 8 |
                        (uint32_t)big[1520] << 16 | (uint32_t)big[1521] << 24,
                    fcs);
    /* One byte more: a long packet, dropped without LPE. */
    net_backend_deliver(&f.mb->be, frame, 1519);
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 2);
    CU_ASSERT_EQUAL(f.mb->be.rxq.length, 0);
    wr(&f, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_BAM | E1000_RCTL_LPE | E1000_RCTL_SECRC);
    net_backend_deliver(&f.mb->be, frame, 1600);
    CU_ASSERT_EQUAL(rd(&f, E1000_RDH), 3);
    guestmem_read(&f.mem, RX_RING + 32, d, sizeof(d));
    CU_ASSERT_EQUAL(d[8] | d[9] << 8, 1600); /* SECRC: no FCS */
    fx_stop(&f);
}

static void test_interrupt_moderation(void)
{
    struct fx f;
    fx_start(&f);
    struct timerq *q = timerq_new(true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_EQUAL_FATAL(e1000_set_timerq(f.s, q), 0);
    rx_setup(&f, 16, 15);
    uint8_t frame[64] = {0};
    memcpy(frame, mac, 6);
    /* ITR: 1000 x 256 ns. The first interrupt comes at once... */
    wr(&f, E1000_ITR, 1000);
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL(f.irq.raises, 1);
    CU_ASSERT_TRUE(rd(&f, E1000_ICR) & E1000_ICR_RXT0);
    CU_ASSERT_EQUAL(f.irq.level, 0);
    /* ...the next ones inside the interval wait for its end and come as one. */
    timerq_advance(q, 100000);
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL(f.irq.raises, 1);
    timerq_advance(q, 100000);
    CU_ASSERT_EQUAL(f.irq.raises, 1);
    timerq_advance(q, 60000); /* 260 us since the first interrupt */
    CU_ASSERT_EQUAL(f.irq.raises, 2);
    CU_ASSERT_EQUAL(f.irq.level, 1);
    CU_ASSERT_TRUE(rd(&f, E1000_ICR) & E1000_ICR_RXT0);
    /* RDTR 10 (10.24 us) restarts with every frame; RADV 30 caps the wait. */
    wr(&f, E1000_ITR, 0);
    wr(&f, E1000_RDTR, 10);
    wr(&f, E1000_RADV, 30);
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    timerq_advance(q, 8000);
    CU_ASSERT_EQUAL(f.irq.raises, 2);
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    timerq_advance(q, 8000); /* 8 us after the last frame: RDTR still runs */
    CU_ASSERT_EQUAL(f.irq.raises, 2);
    timerq_advance(q, 3000);
    CU_ASSERT_EQUAL(f.irq.raises, 3);
    rd(&f, E1000_ICR);
    for (int i = 0; i < 4; i++) { /* a frame every 8 us: only RADV (30.72 us) ends it */
        net_backend_deliver(&f.mb->be, frame, sizeof(frame));
        timerq_advance(q, 8000);
    }
    CU_ASSERT_EQUAL(f.irq.raises, 4);
    CU_ASSERT_TRUE(rd(&f, E1000_ICR) & E1000_ICR_RXT0);
    /* RDTR with FPD delivers what is pending at once. */
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    CU_ASSERT_EQUAL(f.irq.raises, 4);
    wr(&f, E1000_RDTR, E1000_RDTR_FPD | 10);
    CU_ASSERT_EQUAL(f.irq.raises, 5);
    e1000_free(f.s);
    f.s = NULL;
    timerq_free(q);
    net_backend_free(&f.mb->be);
    guestmem_free(&f.mem);
}

static void test_save_load(void)
{
    struct fx a, b;
    fx_start(&a);
    fx_start(&b);
    tx_setup(&a, 8);
    wr(&a, E1000_ITR, 500);
    wr(&a, E1000_RXCSUM, E1000_RXCSUM_TUOFLD);
    wr(&a, E1000_RAL0, 0x44332211);
    /* A packet in two data descriptors; only the first is posted before the save. */
    uint8_t frame[200];
    size_t len = build_tcp(frame, 120);
    net_frame_fix_checksums(frame, len);
    guestmem_write(&a.mem, BUFS, frame, len);
    put_desc(&a, TX_RING, BUFS,
             100 | E1000_TXD_DTYP_D << 20 | (uint32_t)E1000_TXD_CMD_DEXT << 24, 0);
    wr(&a, E1000_TDT, 1);
    CU_ASSERT_EQUAL(a.mb->n, 0);
    GByteArray *img = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(e1000_device_ops.save(a.s, img), 0);
    /* A truncated stream is refused and leaves the device as it was. */
    CU_ASSERT_EQUAL(e1000_device_ops.load(b.s, img->data, img->len - 7), -EINVAL);
    CU_ASSERT_EQUAL(rd(&b, E1000_ITR), 0);
    CU_ASSERT_EQUAL(rd(&b, E1000_TDT), 0);
    CU_ASSERT_EQUAL_FATAL(e1000_device_ops.load(b.s, img->data, img->len), 0);
    CU_ASSERT_EQUAL(rd(&b, E1000_ITR), 500);
    CU_ASSERT_EQUAL(rd(&b, E1000_RXCSUM), E1000_RXCSUM_TUOFLD);
    CU_ASSERT_EQUAL(rd(&b, E1000_RAL0), 0x44332211);
    CU_ASSERT_EQUAL(rd(&b, E1000_TDH), 1);
    CU_ASSERT_EQUAL(rd(&b, E1000_TCTL), E1000_TCTL_EN);
    /* The restored device finishes the half-gathered packet. */
    guestmem_write(&b.mem, BUFS, frame, len);
    put_desc(&b, TX_RING + 16, BUFS + 100,
             (uint32_t)(len - 100) | E1000_TXD_DTYP_D << 20 |
                 (uint32_t)(E1000_TXD_CMD_DEXT | E1000_TXD_CMD_EOP) << 24,
             0);
    wr(&b, E1000_TDT, 2);
    CU_ASSERT_EQUAL_FATAL(b.mb->n, 1);
    CU_ASSERT_EQUAL(b.mb->lens[0], len);
    CU_ASSERT_EQUAL(memcmp(b.mb->frames[0], frame, len), 0);
    g_byte_array_free(img, TRUE);
    fx_stop(&a);
    fx_stop(&b);
}

static void test_garbage_rings(void)
{
    struct fx f;
    fx_start(&f);
    /* Ring outside RAM, tail beyond the ring, zero length: nothing sent, no crash. */
    wr(&f, E1000_TDBAL, 0xfff00000u);
    wr(&f, E1000_TDBAH, 0x12);
    wr(&f, E1000_TDLEN, 128);
    wr(&f, E1000_TCTL, E1000_TCTL_EN);
    wr(&f, E1000_TDT, 3);
    wr(&f, E1000_TDT, 200);
    wr(&f, E1000_TDLEN, 0);
    wr(&f, E1000_TDT, 1);
    CU_ASSERT_EQUAL(f.mb->n, 0);
    /* Descriptors with buffers outside RAM or absurd lengths: dropped. */
    tx_setup(&f, 8);
    put_desc(&f, TX_RING, 0x7ffffffff000ull, 1000 | (uint32_t)E1000_TXD_CMD_EOP << 24, 0);
    put_desc(&f, TX_RING + 16, BUFS,
             0xfffff | E1000_TXD_DTYP_D << 20 |
                 (uint32_t)(E1000_TXD_CMD_DEXT | E1000_TXD_CMD_EOP) << 24, 0);
    put_desc(&f, TX_RING + 32, BUFS, 4 | (uint32_t)E1000_TXD_CMD_EOP << 24, 0); /* runt */
    wr(&f, E1000_TDT, 3);
    CU_ASSERT_EQUAL(f.mb->n, 0);
    CU_ASSERT_EQUAL(rd(&f, E1000_TDH), 3);
    /* Receive ring pointing outside RAM; oversized and runt frames. */
    wr(&f, E1000_RDBAL, 0xfffff000u);
    wr(&f, E1000_RDLEN, 128);
    wr(&f, E1000_RDT, 5);
    wr(&f, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_UPE);
    uint8_t frame[64] = {0};
    net_backend_deliver(&f.mb->be, frame, sizeof(frame));
    net_backend_deliver(&f.mb->be, frame, 3);
    /* Still a working NIC afterwards. */
    uint8_t ok[60] = {1, 2, 3, 4, 5, 6};
    guestmem_write(&f.mem, BUFS, ok, sizeof(ok));
    put_desc(&f, TX_RING + 48, BUFS, 60 | (uint32_t)E1000_TXD_CMD_EOP << 24, 0);
    wr(&f, E1000_TDT, 4);
    CU_ASSERT_EQUAL(f.mb->n, 1);
    fx_stop(&f);
}

static void test_reset(void)
{
    struct fx f;
    fx_start(&f);
    wr(&f, E1000_IMS, 0xff);
    wr(&f, E1000_RCTL, E1000_RCTL_EN);
    wr(&f, E1000_CTRL, E1000_CTRL_RST);
    CU_ASSERT_EQUAL(rd(&f, E1000_IMS), 0);
    CU_ASSERT_EQUAL(rd(&f, E1000_RCTL), 0);
    CU_ASSERT_FALSE(rd(&f, E1000_CTRL) & E1000_CTRL_RST);
    CU_ASSERT_EQUAL(rd(&f, E1000_RAL0), 0x12005452u); /* reloaded from the EEPROM */
    CU_ASSERT_EQUAL(rd(&f, E1000_RAH0), 0x5634u | E1000_RAH_AV);
    fx_stop(&f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("e1000", NULL, NULL);
    CU_add_test(s, "PCI IDs", test_pci_ids);
    CU_add_test(s, "EEPROM via EERD", test_eeprom_eerd);
    CU_add_test(s, "EEPROM via microwire", test_eeprom_microwire);
    CU_add_test(s, "PHY and link", test_phy_and_link);
    CU_add_test(s, "interrupt registers", test_interrupt_registers);
    CU_add_test(s, "transmit legacy", test_tx_legacy);
    CU_add_test(s, "transmit TSO", test_tx_tso);
    CU_add_test(s, "transmit checksum offload", test_tx_csum_offload);
    CU_add_test(s, "receive", test_rx);
    CU_add_test(s, "receive checksum offload", test_rx_csum_offload);
    CU_add_test(s, "interrupt moderation", test_interrupt_moderation);
    CU_add_test(s, "receive FCS, padding and long packets", test_rx_fcs_and_lpe);
    CU_add_test(s, "save and load", test_save_load);
    CU_add_test(s, "garbage rings", test_garbage_rings);
    CU_add_test(s, "reset", test_reset);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
