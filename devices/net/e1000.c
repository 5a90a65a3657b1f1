/* Intel 82540EM model (see e1000.h). */
#include "devices/net/e1000.h"

#include "core/log.h"

#include "devices/device.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define E1000_TAG "dev.e1000"
#define E1000_NREGS (E1000_MMIO_SIZE / 4)
#define E1000_TX_MAX (NET_MAX_FRAME + 4096) /* one packet, TSO super-frames included */
#define E1000_MIN_FRAME 60                  /* without FCS (802.3 minimum) */
#define E1000_MAX_STD_FRAME 1518            /* without FCS: 1522 with it (VLAN-tagged 1500) */
#define E1000_PHY_ADDR 1

struct e1000_eeprom_bus {
    uint32_t old;     /* last SK/CS/DI written to EECD (SDM 5.6.2) */
    uint32_t val_in;  /* bits shifted in since CS rose */
    unsigned bits_in; /* how many */
    bool reading;     /* a READ opcode and address were received */
    unsigned out_bit; /* next bit to drive on DO: word * 16 + bit (MSB first) */
};

/* Offload parameters from the last context descriptor (SDM 3.3.6). */
struct e1000_tx_ctx {
    uint8_t ipcss, ipcso;   /* IP checksum start / offset */
    uint16_t ipcse;         /* IP checksum end (0: to the end) */
    uint8_t tucss, tucso;   /* TCP/UDP checksum start / offset */
    uint16_t tucse;         /* TCP/UDP checksum end (0: to the end) */
    uint8_t tucmd;          /* TSE, TCP, IP */
};

struct e1000 {
    struct pci_dev pd;              /* PCI function 8086:100E */
    const struct guestmem *mem;     /* DMA target: descriptor rings and buffers */
    struct net_backend *be;         /* host side */
    pthread_mutex_t lock;           /* everything below */
    uint32_t regs[E1000_NREGS];     /* register file, indexed by offset / 4 (SDM 13.4) */
    uint16_t eeprom[E1000_EEPROM_WORDS]; /* EEPROM image (SDM 5.6) */
    struct e1000_eeprom_bus ee;     /* microwire state behind EECD */
    uint16_t phy[E1000_PHY_REGS];   /* PHY registers behind MDIC (SDM 13.4.9) */
    uint32_t ioaddr;                /* IOADDR of the I/O window (SDM 13.2.2) */
    bool link_up;                   /* carrier */
    struct e1000_tx_ctx ctx;        /* last context descriptor */
    uint8_t *tx_buf;                /* packet being gathered from data descriptors */
    size_t tx_len;                  /* bytes in tx_buf */
    bool tx_tse;                    /* the packet being gathered is a TSO super-frame */
    uint8_t tx_popts;               /* POPTS of the packet's first data descriptor */
    bool tx_overflow;               /* it outgrew tx_buf: dropped at EOP */
    bool rx_kick;                   /* tell the backend after the lock is dropped */
    bool tx_flush;                  /* frames queued: flush after the lock is dropped */
    /* Interrupt moderation (SDM 3.2.7, 3.4, 13.4.18); timers only with a timer queue. */
    struct timerq *tq;              /* clock for the timers below (NULL: no moderation) */
    struct timer *itr_timer;        /* ITR: end of the current throttle interval */
    struct timer *rx_timer;         /* RDTR packet delay timer */
    struct timer *rx_abs_timer;     /* RADV absolute delay timer */
    struct timer *tx_timer;         /* TIDV transmit delay timer */
    struct timer *tx_abs_timer;     /* TADV absolute transmit delay timer */
    bool irq_level;                 /* INTx as last driven */
    uint64_t itr_last_ns;           /* when INTx last rose (ITR measures from there) */
};

static uint32_t *e1000_reg(struct e1000 *s, uint32_t off)
{
    return &s->regs[(off & (E1000_MMIO_SIZE - 1)) / 4];
}

/* ---- interrupts ----------------------------------------------------------------------- */

static void e1000_update_irq(struct e1000 *s)
{
    uint32_t icr = *e1000_reg(s, E1000_ICR) & ~E1000_ICR_ASSERTED;
    bool level = (icr & *e1000_reg(s, E1000_IMS)) != 0;
    uint32_t itr = *e1000_reg(s, E1000_ITR) & 0xffff;
    if (level && !s->irq_level && s->tq) {
        /* ITR (SDM 13.4.18): the line rises at most once per interval; causes that come
         * sooner wait in ICR for the interval's end, so one interrupt takes them all. */
        uint64_t now = timerq_now_ns(s->tq);
        uint64_t next = s->itr_last_ns + (uint64_t)itr * E1000_ITR_UNIT_NS;
        if (itr && s->itr_last_ns && now < next) {
            timer_mod(s->itr_timer, next);
            level = false;
        } else {
            s->itr_last_ns = now ? now : 1;
        }
    }
    s->irq_level = level;
    *e1000_reg(s, E1000_ICR) = icr | (level ? E1000_ICR_ASSERTED : 0);
    pci_dev_set_intx(&s->pd, level);
}

static void e1000_raise(struct e1000 *s, uint32_t cause)
{
    *e1000_reg(s, E1000_ICR) |= cause;
    e1000_update_irq(s);
}

/* A delay timer pair (SDM 3.2.7): the packet timer restarts on every completion, the
 * absolute one runs from the first completion it covers; whichever fires first raises
 * cause and stops both. delay/abs are in 1.024 us units; 0 means "not used". */
static void e1000_delay_cause(struct e1000 *s, struct timer *t, struct timer *abs_t,
                              uint32_t delay, uint32_t abs, uint32_t cause)
{
    if (!s->tq || delay == 0) {
        if (t) {
            timer_del(t);
            timer_del(abs_t);
        }
        e1000_raise(s, cause);
        return;
    }
    uint64_t now = timerq_now_ns(s->tq);
    timer_mod(t, now + (uint64_t)delay * E1000_DELAY_UNIT_NS);
    if (abs && !timer_pending(abs_t)) {
        timer_mod(abs_t, now + (uint64_t)abs * E1000_DELAY_UNIT_NS);
    }
}

static void e1000_delay_fire(struct e1000 *s, struct timer *t, struct timer *abs_t,
                             uint32_t cause)
{
    pthread_mutex_lock(&s->lock);
    timer_del(t);
    timer_del(abs_t);
    e1000_raise(s, cause);
    pthread_mutex_unlock(&s->lock);
}

static void e1000_itr_cb(void *opaque)
{
    struct e1000 *s = opaque;
    pthread_mutex_lock(&s->lock);
    e1000_update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

static void e1000_rx_timer_cb(void *opaque)
{
    struct e1000 *s = opaque;
    e1000_delay_fire(s, s->rx_timer, s->rx_abs_timer, E1000_ICR_RXT0);
}

static void e1000_tx_timer_cb(void *opaque)
{
    struct e1000 *s = opaque;
    e1000_delay_fire(s, s->tx_timer, s->tx_abs_timer, E1000_ICR_TXDW);
}

/* ---- EEPROM and PHY ------------------------------------------------------------------- */

static void e1000_eeprom_init(struct e1000 *s, const uint8_t mac[6])
{
    memset(s->eeprom, 0, sizeof(s->eeprom));
    for (int i = 0; i < 3; i++) {
        s->eeprom[i] = (uint16_t)(mac[2 * i] | mac[2 * i + 1] << 8);
    }
    s->eeprom[0x0a] = 0x4408; /* init control 1: load vendor/subsystem IDs, valid signature */
    s->eeprom[0x0b] = 0x001e; /* subsystem ID */
    s->eeprom[0x0c] = E1000_VENDOR;
    s->eeprom[0x0d] = E1000_DEVICE_82540EM;
    s->eeprom[0x0e] = E1000_VENDOR;
    uint16_t sum = 0;
    for (int i = 0; i < E1000_EEPROM_WORDS - 1; i++) {
        sum = (uint16_t)(sum + s->eeprom[i]);
    }
    s->eeprom[E1000_EEPROM_WORDS - 1] = (uint16_t)(E1000_EEPROM_SUM - sum);
}

static uint32_t e1000_eecd_read(struct e1000 *s)
{
    uint32_t v = (*e1000_reg(s, E1000_EECD) & ~E1000_EECD_DO) | E1000_EECD_PRES;
    if (v & E1000_EECD_REQ) {
        v |= E1000_EECD_GNT; /* no firmware competes for the EEPROM */
    }
    /* DO idles high; while reading it carries the addressed word, MSB first. */
    unsigned w = (s->ee.out_bit >> 4) & (E1000_EEPROM_WORDS - 1);
    if (!s->ee.reading || ((s->eeprom[w] >> (15 - (s->ee.out_bit & 15))) & 1)) {
        v |= E1000_EECD_DO;
    }
    return v;
}

static void e1000_eecd_write(struct e1000 *s, uint32_t val)
{
    const uint32_t pins = E1000_EECD_SK | E1000_EECD_CS | E1000_EECD_DI;
    uint32_t old = s->ee.old;
    *e1000_reg(s, E1000_EECD) = val & ~(E1000_EECD_GNT | E1000_EECD_DO | E1000_EECD_PRES);
    s->ee.old = val & pins;
    if (!(val & E1000_EECD_CS)) {
        s->ee.reading = false;
        return;
    }
    if (!(old & E1000_EECD_CS)) { /* chip select rose: a new command starts */
        s->ee.val_in = 0;
        s->ee.bits_in = 0;
        s->ee.reading = false;
        s->ee.out_bit = 0;
    }
    if (!((old ^ val) & E1000_EECD_SK)) {
        return;
    }
    if (!(val & E1000_EECD_SK)) { /* falling clock: the EEPROM drives the next bit */
        s->ee.out_bit++;
        return;
    }
    /* Rising clock: sample DI. Start bit + opcode 10 (read) + 6 address bits. */
    s->ee.val_in = (s->ee.val_in << 1) | ((val & E1000_EECD_DI) ? 1 : 0);
    if (++s->ee.bits_in == 9 && !s->ee.reading) {
        s->ee.reading = ((s->ee.val_in >> 6) & 7) == 6;
        s->ee.out_bit = (s->ee.val_in & 0x3f) * 16 - 1;
    }
}

static void e1000_phy_init(struct e1000 *s)
{
    memset(s->phy, 0, sizeof(s->phy));
    s->phy[E1000_PHY_CTRL] = 0x1140;  /* autoneg on, full duplex, 1000 Mb/s */
    s->phy[E1000_PHY_STATUS] = 0x7949; /* capabilities, extended status, autoneg able */
    s->phy[E1000_PHY_ID1] = 0x0141;   /* Marvell OUI */
    s->phy[E1000_PHY_ID2] = 0x0c20;   /* 88E1011 (what the 82540EM carries) */
    s->phy[4] = 0x0de1;               /* autoneg advertisement */
    s->phy[5] = 0x45e1;               /* link partner ability: 10/100 FD/HD, acked */
    s->phy[6] = 0x0001;               /* autoneg expansion: partner autoneg able */
    s->phy[9] = 0x0e00;               /* 1000BASE-T control */
    s->phy[10] = 0x3c00;              /* 1000BASE-T status: partner 1000 FD/HD */
    s->phy[15] = 0x3000;              /* extended status: 1000BASE-T FD/HD */
    s->phy[16] = 0x0068;              /* M88 PHY specific control */
    if (s->link_up) {
        s->phy[E1000_PHY_STATUS] |= 0x0024; /* link up, autoneg complete */
        s->phy[17] = 0xac00;               /* M88 specific status: 1000 FD, resolved, link */
    }
}

static void e1000_mdic_write(struct e1000 *s, uint32_t val)
{
    unsigned phy = (val >> 21) & 0x1f;
    unsigned reg = (val >> 16) & 0x1f;
    uint32_t op = val & (3u << 26);
    uint32_t out = val & ~(E1000_MDIC_READY | E1000_MDIC_ERROR);
    if (phy != E1000_PHY_ADDR || (op != E1000_MDIC_OP_READ && op != E1000_MDIC_OP_WRITE)) {
        out |= E1000_MDIC_ERROR;
    } else if (op == E1000_MDIC_OP_READ) {
        out = (out & ~0xffffu) | s->phy[reg];
    } else {
        uint16_t d = (uint16_t)val;
        if (reg == E1000_PHY_CTRL) {
            /* Reset (bit 15) and autoneg restart (bit 9) complete at once. */
            d &= (uint16_t)~0x8200;
            s->phy[reg] = d;
        } else if (reg != E1000_PHY_STATUS && reg != E1000_PHY_ID1 && reg != E1000_PHY_ID2 &&
                   reg != 17) {
            s->phy[reg] = d;
        }
    }
    *e1000_reg(s, E1000_MDIC) = out | E1000_MDIC_READY;
}

/* ---- transmit ------------------------------------------------------------------------- */

static void e1000_put_csum(uint8_t *p, size_t len, size_t start, size_t at, size_t end, bool zero)
{
    if (end == 0 || end >= len) {
        end = len - 1;
    }
    if (start >= len || at + 2 > len || end < start) {
        return;
    }
    if (zero) {
        p[at] = 0;
        p[at + 1] = 0;
    }
    uint16_t c = (uint16_t)~net_checksum(p + start, end - start + 1, 0);
    p[at] = (uint8_t)(c >> 8);
    p[at + 1] = (uint8_t)c;
}

static void e1000_tx_packet(struct e1000 *s)
{
    uint8_t *p = s->tx_buf;
    size_t len = s->tx_len;
    if (s->tx_overflow || len < NET_ETH_HLEN) {
        return;
    }
    if (s->tx_tse) {
        net_frame_fix_checksums(p, len);
    } else {
        if (s->tx_popts & E1000_TXD_POPTS_IXSM) {
            e1000_put_csum(p, len, s->ctx.ipcss, s->ctx.ipcso, s->ctx.ipcse, true);
        }
        if (s->tx_popts & E1000_TXD_POPTS_TXSM) {
            /* The driver seeded the field with the pseudo-header sum. */
            e1000_put_csum(p, len, s->ctx.tucss, s->ctx.tucso, s->ctx.tucse, false);
        }
    }
    if (s->be && s->link_up && net_backend_queue(s->be, p, len) == 0) {
        s->tx_flush = true;
    }
}

static void e1000_tx_append(struct e1000 *s, uint64_t addr, uint32_t len)
{
    if (s->tx_overflow || len == 0) {
        return;
    }
    if (len > E1000_TX_MAX - s->tx_len ||
        guestmem_read(s->mem, addr, s->tx_buf + s->tx_len, len) < 0) {
        s->tx_overflow = true;
        return;
    }
    s->tx_len += len;
}

static void e1000_tx_end_packet(struct e1000 *s)
{
    e1000_tx_packet(s);
    s->tx_len = 0;
    s->tx_tse = false;
    s->tx_popts = 0;
    s->tx_overflow = false;
}

static uint16_t e1000_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t e1000_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Returns whether the descriptor asks for a delayed interrupt (IDE, SDM 3.3.3). */
static bool e1000_tx_desc(struct e1000 *s, uint8_t *d)
{
    uint64_t addr = (uint64_t)e1000_le32(d) | (uint64_t)e1000_le32(d + 4) << 32;
    uint8_t cmd = d[11];
    bool ide = (cmd & E1000_TXD_CMD_IDE) != 0;
    if (!(cmd & E1000_TXD_CMD_DEXT)) { /* legacy (SDM 3.3.3) */
        e1000_tx_append(s, addr, e1000_le16(d + 8));
        if (cmd & E1000_TXD_CMD_EOP) {
            if ((cmd & E1000_TXD_CMD_IC) && !s->tx_overflow && s->tx_len) {
                /* CSO/CSS come from the last descriptor; CSS counts from the packet start. */
                e1000_put_csum(s->tx_buf, s->tx_len, d[13], d[10], 0, false);
            }
            e1000_tx_end_packet(s);
        }
        return ide;
    }
    unsigned dtyp = (d[10] >> 4) & 0xf;
    if (dtyp == E1000_TXD_DTYP_C) { /* context (SDM 3.3.6) */
        s->ctx.ipcss = d[0];
        s->ctx.ipcso = d[1];
        s->ctx.ipcse = e1000_le16(d + 2);
        s->ctx.tucss = d[4];
        s->ctx.tucso = d[5];
        s->ctx.tucse = e1000_le16(d + 6);
        s->ctx.tucmd = cmd;
        return ide;
    }
    if (dtyp != E1000_TXD_DTYP_D) {
        return false; /* reserved type: skipped, as hardware would */
    }
    uint32_t len = e1000_le32(d + 8) & 0xfffff;
    if (s->tx_len == 0) {
        s->tx_popts = d[13];
        s->tx_tse = (cmd & E1000_TXD_CMD_TSE) != 0;
    }
    e1000_tx_append(s, addr, len);
    if (cmd & E1000_TXD_CMD_EOP) {
        e1000_tx_end_packet(s);
    }
    return ide;
}

static void e1000_tx_run(struct e1000 *s)
{
    if (!(*e1000_reg(s, E1000_TCTL) & E1000_TCTL_EN) || !pci_dev_bus_master(&s->pd)) {
        return;
    }
    uint64_t base = (uint64_t)*e1000_reg(s, E1000_TDBAH) << 32 | *e1000_reg(s, E1000_TDBAL);
    uint32_t count = *e1000_reg(s, E1000_TDLEN) / E1000_DESC_SIZE;
    uint32_t tail = *e1000_reg(s, E1000_TDT);
    uint32_t *head = e1000_reg(s, E1000_TDH);
    if (count == 0 || tail >= count || *head >= count) {
        return;
    }
    bool done = false, now = false;
    for (uint32_t n = 0; *head != tail && n < count; n++) {
        uint8_t d[E1000_DESC_SIZE];
        uint64_t at = base + (uint64_t)*head * E1000_DESC_SIZE;
        if (guestmem_read(s->mem, at, d, sizeof(d)) < 0) {
            log_warn(E1000_TAG, "transmit ring at 0x%llx is outside RAM",
                     (unsigned long long)at);
            break;
        }
        if (!e1000_tx_desc(s, d)) {
            now = true;
        }
        /* Descriptor done write-back (SDM 3.3.3.2): status byte 12. */
        uint8_t st = d[12] | E1000_TXD_STAT_DD;
        guestmem_write(s->mem, at + 12, &st, 1);
        *head = (*head + 1) % count;
        done = true;
    }
    if (done) {
        if (*head == tail) {
            *e1000_reg(s, E1000_ICR) |= E1000_ICR_TXQE;
        }
        /* Only descriptors with IDE wait for TIDV/TADV (SDM 3.4); any other interrupts now. */
        e1000_delay_cause(s, s->tx_timer, s->tx_abs_timer,
                          now ? 0 : *e1000_reg(s, E1000_TIDV) & 0xffff,
                          *e1000_reg(s, E1000_TADV) & 0xffff, E1000_ICR_TXDW);
    }
}

/* ---- receive -------------------------------------------------------------------------- */

static uint32_t e1000_rx_bufsize(uint32_t rctl)
{
    static const uint32_t sizes[2][4] = {{2048, 1024, 512, 256}, {2048, 16384, 8192, 4096}};
    return sizes[(rctl & E1000_RCTL_BSEX) ? 1 : 0][(rctl >> 16) & 3];
}

static bool e1000_rx_filter(struct e1000 *s, const uint8_t *frame)
{
    uint32_t rctl = *e1000_reg(s, E1000_RCTL);
    if (rctl & E1000_RCTL_UPE) {
        return true;
    }
    if (frame[0] & 1) {
        static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        if (!memcmp(frame, bcast, 6)) {
            return (rctl & E1000_RCTL_BAM) != 0;
        }
        /* Multicast: MPE, else the MTA hash selected by RCTL.MO (SDM 13.5.1). */
        if (rctl & E1000_RCTL_MPE) {
            return true;
        }
        static const unsigned shifts[4] = {4, 3, 2, 0}; /* MO: address bits 47:36..43:32 */
        unsigned shift = shifts[(rctl >> 12) & 3];
        unsigned h = ((frame[4] >> shift) | ((unsigned)frame[5] << (8 - shift))) & 0xfff;
        return (*e1000_reg(s, E1000_MTA + (h >> 5) * 4) >> (h & 31)) & 1;
    }
    for (int i = 0; i < 16; i++) {
        uint32_t lo = *e1000_reg(s, E1000_RAL0 + 8 * (uint32_t)i);
        uint32_t hi = *e1000_reg(s, E1000_RAH0 + 8 * (uint32_t)i);
        if (!(hi & E1000_RAH_AV)) {
            continue;
        }
        uint8_t ra[6] = {(uint8_t)lo, (uint8_t)(lo >> 8), (uint8_t)(lo >> 16),
                         (uint8_t)(lo >> 24), (uint8_t)hi, (uint8_t)(hi >> 8)};
        if (!memcmp(frame, ra, 6)) {
            return true;
        }
    }
    return false;
}

static bool e1000_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct e1000 *s = opaque;
    pthread_mutex_lock(&s->lock);
    uint32_t rctl = *e1000_reg(s, E1000_RCTL);
    if (!(rctl & E1000_RCTL_EN) || !s->link_up || len < NET_ETH_HLEN || len > NET_MAX_FRAME ||
        !pci_dev_bus_master(&s->pd) || !e1000_rx_filter(s, frame)) {
        pthread_mutex_unlock(&s->lock);
        return true; /* not for us, or nobody listens: gone */
    }
    uint64_t base = (uint64_t)*e1000_reg(s, E1000_RDBAH) << 32 | *e1000_reg(s, E1000_RDBAL);
    uint32_t count = *e1000_reg(s, E1000_RDLEN) / E1000_DESC_SIZE;
    uint32_t *head = e1000_reg(s, E1000_RDH);
    uint32_t tail = *e1000_reg(s, E1000_RDT);
    if (count == 0 || tail >= count || *head >= count) {
        pthread_mutex_unlock(&s->lock);
        return true;
    }
    if (!(rctl & E1000_RCTL_LPE) && len > E1000_MAX_STD_FRAME) {
        /* Without Long Packet Enable the MAC discards frames over 1522 bytes with FCS
         * (SDM 13.4.22): Linux then sizes its buffers to 1522, whatever BSIZE says. */
        pthread_mutex_unlock(&s->lock);
        return true;
    }
    /* What goes to the guest: the frame as it is, then end[]: padding to the minimum and
     * the FCS unless SECRC strips it (the frame itself is not copied to a staging buffer). */
    uint8_t end[E1000_MIN_FRAME + 4];
    size_t elen = len < E1000_MIN_FRAME ? E1000_MIN_FRAME - len : 0;
    memset(end, 0, elen);
    if (!(rctl & E1000_RCTL_SECRC)) {
        uLong crc = crc32_z(0L, frame, len);
        crc = crc32_z(crc, end, elen);
        for (int i = 0; i < 4; i++) {
            end[elen++] = (uint8_t)(crc >> (8 * i));
        }
    }
    size_t flen = len + elen;
    uint32_t bufsize = e1000_rx_bufsize(rctl);
    uint32_t need = (uint32_t)((flen + bufsize - 1) / bufsize);
    uint32_t avail = (tail + count - *head) % count; /* head == tail: none (SDM 3.2.6) */
    if (avail < need) {
        if (need >= count) {
            e1000_raise(s, E1000_ICR_RXO); /* can never fit: dropped */
            pthread_mutex_unlock(&s->lock);
            return true;
        }
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    /* Receive checksum offload (SDM 3.2.9): IPv4 only on the 82540; else IXSM. */
    uint8_t cs_stat = E1000_RXD_STAT_IXSM, cs_err = 0;
    uint32_t rxcsum = *e1000_reg(s, E1000_RXCSUM);
    if (rxcsum & (E1000_RXCSUM_IPOFLD | E1000_RXCSUM_TUOFLD)) {
        unsigned c = net_frame_check_csums(frame, len, net_backend_rx_csum_good(s->be));
        if (c & NET_CSUM_IP4) {
            cs_stat = 0;
            if (rxcsum & E1000_RXCSUM_IPOFLD) {
                cs_stat |= E1000_RXD_STAT_IPCS;
                cs_err |= (c & NET_CSUM_IP4_BAD) ? E1000_RXD_ERR_IPE : 0;
            }
            if ((rxcsum & E1000_RXCSUM_TUOFLD) && (c & NET_CSUM_L4)) {
                cs_stat |= E1000_RXD_STAT_TCPCS;
                cs_err |= (c & NET_CSUM_L4_BAD) ? E1000_RXD_ERR_TCPE : 0;
            }
        }
    }
    size_t done = 0;
    while (done < flen) {
        uint64_t at = base + (uint64_t)*head * E1000_DESC_SIZE;
        uint8_t d[E1000_DESC_SIZE];
        if (guestmem_read(s->mem, at, d, sizeof(d)) < 0) {
            log_warn(E1000_TAG, "receive ring at 0x%llx is outside RAM", (unsigned long long)at);
            break;
        }
        uint64_t addr = (uint64_t)e1000_le32(d) | (uint64_t)e1000_le32(d + 4) << 32;
        size_t chunk = flen - done < bufsize ? flen - done : bufsize;
        uint8_t errors = cs_err;
        size_t from_frame = done < len ? (len - done < chunk ? len - done : chunk) : 0;
        int rc = 0;
        if (addr && from_frame) {
            rc = guestmem_write(s->mem, addr, frame + done, from_frame);
        }
        if (addr && rc == 0 && chunk > from_frame) {
            rc = guestmem_write(s->mem, addr + from_frame, end + (done + from_frame - len),
                                chunk - from_frame);
        }
        if (rc < 0) {
            errors |= 0x80; /* RXE: the buffer is not in RAM */
        }
        done += chunk;
        uint8_t wb[8] = {(uint8_t)chunk, (uint8_t)(chunk >> 8), 0, 0,
                         E1000_RXD_STAT_DD | cs_stat | (done == flen ? E1000_RXD_STAT_EOP : 0),
                         errors, 0, 0};
        guestmem_write(s->mem, at + 8, wb, sizeof(wb));
        *head = (*head + 1) % count;
    }
    e1000_delay_cause(s, s->rx_timer, s->rx_abs_timer, *e1000_reg(s, E1000_RDTR) & 0xffff,
                      *e1000_reg(s, E1000_RADV) & 0xffff, E1000_ICR_RXT0);
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* ---- registers ------------------------------------------------------------------------ */

static void e1000_reset_locked(struct e1000 *s)
{
    memset(s->regs, 0, sizeof(s->regs));
    memset(&s->ee, 0, sizeof(s->ee));
    memset(&s->ctx, 0, sizeof(s->ctx));
    s->tx_len = 0;
    s->tx_tse = false;
    s->tx_overflow = false;
    *e1000_reg(s, E1000_CTRL) = E1000_CTRL_SLU | 0x00000200; /* SLU, speed 1000 */
    *e1000_reg(s, E1000_STATUS) =
        E1000_STATUS_FD | E1000_STATUS_SPEED_1000 | (s->link_up ? E1000_STATUS_LU : 0);
    *e1000_reg(s, E1000_EECD) = 0;
    *e1000_reg(s, E1000_MDIC) = E1000_MDIC_READY;
    *e1000_reg(s, 0x1000) = 0x00100030; /* PBA: 48 KiB receive, 16 KiB transmit */
    /* RA[0] from the EEPROM, as the hardware loads it (SDM 13.5.2). */
    *e1000_reg(s, E1000_RAL0) = (uint32_t)s->eeprom[0] | (uint32_t)s->eeprom[1] << 16;
    *e1000_reg(s, E1000_RAH0) = (uint32_t)s->eeprom[2] | E1000_RAH_AV;
    e1000_phy_init(s);
    if (s->tq) {
        timer_del(s->itr_timer);
        timer_del(s->rx_timer);
        timer_del(s->rx_abs_timer);
        timer_del(s->tx_timer);
        timer_del(s->tx_abs_timer);
    }
    s->irq_level = false;
    s->itr_last_ns = 0;
    pci_dev_set_intx(&s->pd, 0);
}

static uint32_t e1000_read32(struct e1000 *s, uint32_t off)
{
    switch (off) {
    case E1000_EECD:
        return e1000_eecd_read(s);
    case E1000_ICR: {
        uint32_t v = *e1000_reg(s, E1000_ICR);
        *e1000_reg(s, E1000_ICR) = 0; /* read to clear (SDM 13.4.17) */
        e1000_update_irq(s);
        return v;
    }
    case E1000_ICS:
    case E1000_IMC:
        return 0; /* write-only */
    default:
        if (off >= 0x4000 && off < 0x4100) {
            return 0; /* statistics: nothing is counted; read-to-clear anyway */
        }
        return *e1000_reg(s, off);
    }
}

static void e1000_write32(struct e1000 *s, uint32_t off, uint32_t val)
{
    switch (off) {
    case E1000_CTRL:
        if (val & E1000_CTRL_RST) {
            e1000_reset_locked(s);
            return;
        }
        *e1000_reg(s, off) = val & ~E1000_CTRL_RST;
        return;
    case E1000_STATUS:
        return; /* read-only */
    case E1000_EECD:
        e1000_eecd_write(s, val);
        return;
    case E1000_EERD: {
        uint32_t a = (val >> 8) & 0xff;
        uint32_t v = (val & 0xff00) | E1000_EERD_DONE;
        if ((val & E1000_EERD_START) && a < E1000_EEPROM_WORDS) {
            v |= (uint32_t)s->eeprom[a] << 16;
        }
        *e1000_reg(s, off) = v;
        return;
    }
    case E1000_MDIC:
        e1000_mdic_write(s, val);
        return;
    case E1000_ICR:
        *e1000_reg(s, off) &= ~val; /* write 1 to clear */
        e1000_update_irq(s);
        return;
    case E1000_ICS:
        e1000_raise(s, val & ~E1000_ICR_ASSERTED);
        return;
    case E1000_IMS:
        *e1000_reg(s, E1000_IMS) |= val;
        e1000_update_irq(s);
        return;
    case E1000_IMC:
        *e1000_reg(s, E1000_IMS) &= ~val;
        e1000_update_irq(s);
        return;
    case E1000_RCTL:
        *e1000_reg(s, off) = val;
        s->rx_kick = (val & E1000_RCTL_EN) != 0;
        return;
    case E1000_RDTR:
        *e1000_reg(s, off) = val & 0xffff;
        if ((val & E1000_RDTR_FPD) && s->tq && timer_pending(s->rx_timer)) {
            /* Flush partial descriptor block (SDM 13.4.31): the pending RXT0 now. */
            timer_del(s->rx_timer);
            timer_del(s->rx_abs_timer);
            e1000_raise(s, E1000_ICR_RXT0);
        }
        return;
    case E1000_ITR:
    case E1000_RADV:
    case E1000_TIDV:
    case E1000_TADV:
        *e1000_reg(s, off) = val & 0xffff;
        return;
    case E1000_RDLEN:
    case E1000_TDLEN:
        *e1000_reg(s, off) = val & 0xfff80; /* multiple of 128 bytes (SDM 13.4.29) */
        return;
    case E1000_RDH:
    case E1000_RDT:
    case E1000_TDH:
        *e1000_reg(s, off) = val & 0xffff;
        s->rx_kick = off == E1000_RDT;
        return;
    case E1000_TDT:
        *e1000_reg(s, off) = val & 0xffff;
        e1000_tx_run(s);
        return;
    case E1000_TCTL:
        *e1000_reg(s, off) = val;
        e1000_tx_run(s);
        return;
    default:
        if (off >= 0x4000 && off < 0x4100) {
            return;
        }
        *e1000_reg(s, off) = val;
        return;
    }
}

uint64_t e1000_mmio_read(struct e1000 *s, uint64_t off, unsigned size)
{
    if (off >= E1000_MMIO_SIZE) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    uint32_t v = e1000_read32(s, (uint32_t)off & ~3u);
    pthread_mutex_unlock(&s->lock);
    v >>= 8 * (off & 3);
    return size >= 4 ? v : v & ((1u << (8 * size)) - 1);
}

void e1000_mmio_write(struct e1000 *s, uint64_t off, uint64_t val, unsigned size)
{
    if (off >= E1000_MMIO_SIZE) {
        return;
    }
    uint32_t aligned = (uint32_t)off & ~3u;
    pthread_mutex_lock(&s->lock);
    uint32_t v = (uint32_t)val;
    if (size < 4) {
        /* Partial writes merge into the stored value (side-effect registers see the dword). */
        unsigned sh = 8 * (unsigned)(off & 3);
        uint32_t mask = ((1u << (8 * size)) - 1) << sh;
        v = (*e1000_reg(s, aligned) & ~mask) | (((uint32_t)val << sh) & mask);
    }
    e1000_write32(s, aligned, v);
    bool kick = s->rx_kick, flush = s->tx_flush;
    s->rx_kick = false;
    s->tx_flush = false;
    pthread_mutex_unlock(&s->lock);
    /* Outside the lock: the backend may run on this thread and deliver to e1000_receive
     * (held frames for the new buffers, its answer to what was just sent). */
    if (flush && s->be) {
        net_backend_flush(s->be);
    }
    if (kick && s->be) {
        net_backend_rx_ready(s->be);
    }
}

static uint64_t e1000_bar0_read(void *opaque, uint64_t off, unsigned size)
{
    return e1000_mmio_read(opaque, off, size);
}

static void e1000_bar0_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    e1000_mmio_write(opaque, off, val, size);
}

/* I/O window (SDM 13.2.2): IOADDR at 0 selects a register, IODATA at 4 accesses it. */
static uint64_t e1000_bar1_read(void *opaque, uint64_t off, unsigned size)
{
    struct e1000 *s = opaque;
    if (off == 0) {
        return s->ioaddr;
    }
    if (off == 4) {
        return e1000_mmio_read(s, s->ioaddr & (E1000_MMIO_SIZE - 4), 4);
    }
    return 0;
}

static void e1000_bar1_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct e1000 *s = opaque;
    if (off == 0) {
        s->ioaddr = (uint32_t)val;
    } else if (off == 4) {
        e1000_mmio_write(s, s->ioaddr & (E1000_MMIO_SIZE - 4), val, 4);
    }
}

static const struct bus_ops e1000_bar0_ops = {.read = e1000_bar0_read, .write = e1000_bar0_write};
static const struct bus_ops e1000_bar1_ops = {.read = e1000_bar1_read, .write = e1000_bar1_write};

/* ---- saved state ---------------------------------------------------------------------- */

/* Everything the guest can observe, flattened for vmstate (names as in struct e1000). */
struct e1000_saved {
    uint32_t regs[E1000_NREGS];          /* register file (SDM 13.4) */
    uint16_t eeprom[E1000_EEPROM_WORDS]; /* EEPROM image (SDM 5.6) */
    uint32_t ee_old;                     /* EECD pins last written (SDM 5.6.2) */
    uint32_t ee_val_in;                  /* microwire bits shifted in */
    uint32_t ee_bits_in;                 /* how many */
    bool ee_reading;                     /* READ opcode + address received */
    uint32_t ee_out_bit;                 /* next DO bit */
    uint16_t phy[E1000_PHY_REGS];        /* PHY registers (SDM 13.4.9) */
    uint32_t ioaddr;                     /* IOADDR (SDM 13.2.2) */
    bool link_up;                        /* carrier */
    uint8_t ctx[10];                     /* last context descriptor (SDM 3.3.6), packed */
    uint32_t tx_len;                     /* bytes of a packet gathered before its EOP */
    bool tx_tse;                         /* ... it is a TSO super-frame */
    uint8_t tx_popts;                    /* ... its POPTS */
    bool tx_overflow;                    /* ... it outgrew the buffer */
    uint8_t tx_buf[E1000_TX_MAX];        /* ... its bytes (subsection, only when tx_len) */
};

static bool e1000_tx_partial_needed(const void *opaque)
{
    return ((const struct e1000_saved *)opaque)->tx_len > 0;
}

static const struct vmstate_field e1000_tx_partial_fields[] = {
    VMSTATE_BUF(struct e1000_saved, tx_buf),
    VMSTATE_END,
};

static const struct vmstate_desc e1000_tx_partial_vmstate = {
    .name = "e1000/tx_partial",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct e1000_saved),
    .fields = e1000_tx_partial_fields,
    .needed = e1000_tx_partial_needed,
};

static const struct vmstate_desc *const e1000_subsections[] = {&e1000_tx_partial_vmstate, NULL};

static int e1000_saved_check(void *scratch, int version_id)
{
    const struct e1000_saved *v = scratch;
    /* The transmit gatherer appends after tx_len: it must lie inside the buffer. */
    return v->tx_len <= E1000_TX_MAX ? 0 : -EINVAL;
}

static const struct vmstate_field e1000_saved_fields[] = {
    VMSTATE_BUF(struct e1000_saved, regs),
    VMSTATE_BUF(struct e1000_saved, eeprom),
    VMSTATE_FIELD(struct e1000_saved, ee_old, VMSTATE_U32),
    VMSTATE_FIELD(struct e1000_saved, ee_val_in, VMSTATE_U32),
    VMSTATE_FIELD(struct e1000_saved, ee_bits_in, VMSTATE_U32),
    VMSTATE_FIELD(struct e1000_saved, ee_reading, VMSTATE_BOOL),
    VMSTATE_FIELD(struct e1000_saved, ee_out_bit, VMSTATE_U32),
    VMSTATE_ARRAY(struct e1000_saved, phy, VMSTATE_U16, E1000_PHY_REGS),
    VMSTATE_FIELD(struct e1000_saved, ioaddr, VMSTATE_U32),
    VMSTATE_FIELD(struct e1000_saved, link_up, VMSTATE_BOOL),
    VMSTATE_BUF(struct e1000_saved, ctx),
    VMSTATE_FIELD(struct e1000_saved, tx_len, VMSTATE_U32),
    VMSTATE_FIELD(struct e1000_saved, tx_tse, VMSTATE_BOOL),
    VMSTATE_FIELD(struct e1000_saved, tx_popts, VMSTATE_U8),
    VMSTATE_FIELD(struct e1000_saved, tx_overflow, VMSTATE_BOOL),
    VMSTATE_END,
};

static const struct vmstate_desc e1000_saved_vmstate = {
    .name = "e1000",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct e1000_saved),
    .fields = e1000_saved_fields,
    .subsections = e1000_subsections,
    .post_load = e1000_saved_check,
};

static int e1000_save(void *dev, GByteArray *out)
{
    struct e1000 *s = dev;
    struct e1000_saved *v = calloc(1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    int rc = pci_dev_save(&s->pd, out);
    pthread_mutex_lock(&s->lock);
    memcpy(v->regs, s->regs, sizeof(v->regs));
    memcpy(v->eeprom, s->eeprom, sizeof(v->eeprom));
    v->ee_old = s->ee.old;
    v->ee_val_in = s->ee.val_in;
    v->ee_bits_in = s->ee.bits_in;
    v->ee_reading = s->ee.reading;
    v->ee_out_bit = s->ee.out_bit;
    memcpy(v->phy, s->phy, sizeof(v->phy));
    v->ioaddr = s->ioaddr;
    v->link_up = s->link_up;
    const struct e1000_tx_ctx *c = &s->ctx;
    uint8_t ctx[10] = {c->ipcss, c->ipcso, (uint8_t)c->ipcse, (uint8_t)(c->ipcse >> 8),
                       c->tucss, c->tucso, (uint8_t)c->tucse, (uint8_t)(c->tucse >> 8),
                       c->tucmd, 0};
    memcpy(v->ctx, ctx, sizeof(ctx));
    v->tx_len = (uint32_t)s->tx_len;
    v->tx_tse = s->tx_tse;
    v->tx_popts = s->tx_popts;
    v->tx_overflow = s->tx_overflow;
    memcpy(v->tx_buf, s->tx_buf, s->tx_len);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0) {
        rc = vmstate_save(&e1000_saved_vmstate, v, out);
    }
    free(v);
    return rc;
}

/* All or nothing: the PCI section and the device section are both parsed and checked
 * before either changes the device. Delay timers that were running fire at once: any
 * cause already in ICR interrupts as soon as the mask allows. */
static int e1000_load(void *dev, const uint8_t *buf, size_t len)
{
    struct e1000 *s = dev;
    struct pci_dev_saved *ps = NULL;
    size_t used = 0;
    int rc = pci_dev_parse(&s->pd, buf, len, &used, &ps);
    if (rc < 0) {
        return rc;
    }
    struct e1000_saved *v = calloc(1, sizeof(*v));
    if (!v) {
        pci_dev_saved_free(ps);
        return -ENOMEM;
    }
    rc = vmstate_load(&e1000_saved_vmstate, v, buf + used, len - used, NULL);
    if (rc < 0) {
        log_warn(E1000_TAG, "saved state refused");
        pci_dev_saved_free(ps);
        free(v);
        return rc;
    }
    pci_dev_restore(&s->pd, ps);
    pthread_mutex_lock(&s->lock);
    memcpy(s->regs, v->regs, sizeof(s->regs));
    memcpy(s->eeprom, v->eeprom, sizeof(s->eeprom));
    s->ee.old = v->ee_old;
    s->ee.val_in = v->ee_val_in;
    s->ee.bits_in = v->ee_bits_in;
    s->ee.reading = v->ee_reading;
    s->ee.out_bit = v->ee_out_bit;
    memcpy(s->phy, v->phy, sizeof(s->phy));
    s->ioaddr = v->ioaddr;
    s->link_up = v->link_up;
    s->ctx = (struct e1000_tx_ctx){
        .ipcss = v->ctx[0], .ipcso = v->ctx[1], .ipcse = (uint16_t)(v->ctx[2] | v->ctx[3] << 8),
        .tucss = v->ctx[4], .tucso = v->ctx[5], .tucse = (uint16_t)(v->ctx[6] | v->ctx[7] << 8),
        .tucmd = v->ctx[8]};
    s->tx_len = v->tx_len;
    s->tx_tse = v->tx_tse;
    s->tx_popts = v->tx_popts;
    s->tx_overflow = v->tx_overflow;
    memcpy(s->tx_buf, v->tx_buf, s->tx_len);
    if (s->tq) {
        timer_del(s->itr_timer);
        timer_del(s->rx_timer);
        timer_del(s->rx_abs_timer);
        timer_del(s->tx_timer);
        timer_del(s->tx_abs_timer);
    }
    s->irq_level = false;
    s->itr_last_ns = 0;
    e1000_update_irq(s);
    pthread_mutex_unlock(&s->lock);
    free(v);
    /* The ring may have room the backend is waiting for. */
    if (s->be) {
        net_backend_rx_ready(s->be);
    }
    return 0;
}

static void e1000_system_reset(void *dev)
{
    e1000_reset(dev);
}

const struct device_ops e1000_device_ops = {
    .name = "e1000",
    .reset = e1000_system_reset,
    .save = e1000_save,
    .load = e1000_load,
};

/* ---- lifecycle ------------------------------------------------------------------------ */

struct e1000 *e1000_new(const struct guestmem *mem, const uint8_t mac[6], struct net_backend *be)
{
    struct e1000 *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->mem = mem;
    s->be = be;
    s->link_up = true;
    pthread_mutex_init(&s->lock, NULL);
    s->tx_buf = malloc(E1000_TX_MAX);
    if (!s->tx_buf ||
        pci_dev_init(&s->pd, E1000_VENDOR, E1000_DEVICE_82540EM, 0x020000, 3, E1000_VENDOR,
                     0x001e, 1) < 0) {
        free(s->tx_buf);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    if (pci_dev_add_bar(&s->pd, 0, PCI_BAR_MEM32, E1000_MMIO_SIZE, &e1000_bar0_ops, s,
                        "e1000-mmio") < 0 ||
        pci_dev_add_bar(&s->pd, 1, PCI_BAR_IO, E1000_IO_SIZE, &e1000_bar1_ops, s, "e1000-io") <
            0) {
        e1000_free(s);
        return NULL;
    }
    e1000_eeprom_init(s, mac);
    e1000_reset_locked(s);
    if (be) {
        struct net_peer peer = {.receive = e1000_receive, .opaque = s};
        net_backend_set_peer(be, &peer);
    }
    return s;
}

int e1000_set_timerq(struct e1000 *s, struct timerq *tq)
{
    s->itr_timer = timer_new(tq, e1000_itr_cb, s);
    s->rx_timer = timer_new(tq, e1000_rx_timer_cb, s);
    s->rx_abs_timer = timer_new(tq, e1000_rx_timer_cb, s);
    s->tx_timer = timer_new(tq, e1000_tx_timer_cb, s);
    s->tx_abs_timer = timer_new(tq, e1000_tx_timer_cb, s);
    if (!s->itr_timer || !s->rx_timer || !s->rx_abs_timer || !s->tx_timer ||
        !s->tx_abs_timer) {
        return -ENOMEM; /* e1000_free releases the ones that were made */
    }
    pthread_mutex_lock(&s->lock);
    s->tq = tq;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void e1000_free(struct e1000 *s)
{
    if (!s) {
        return;
    }
    if (s->be) {
        struct net_peer none = {0};
        net_backend_set_peer(s->be, &none);
    }
    struct timer *timers[] = {s->itr_timer, s->rx_timer, s->rx_abs_timer, s->tx_timer,
                              s->tx_abs_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        if (timers[i]) {
            timer_free(timers[i]);
        }
    }
    pci_dev_destroy(&s->pd);
    free(s->tx_buf);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

struct pci_dev *e1000_pci(struct e1000 *s)
{
    return &s->pd;
}

void e1000_reset(struct e1000 *s)
{
    pthread_mutex_lock(&s->lock);
    e1000_reset_locked(s);
    pthread_mutex_unlock(&s->lock);
    pci_dev_reset(&s->pd);
}

void e1000_set_link(struct e1000 *s, bool up)
{
    pthread_mutex_lock(&s->lock);
    if (s->link_up != up) {
        s->link_up = up;
        uint32_t *st = e1000_reg(s, E1000_STATUS);
        *st = up ? (*st | E1000_STATUS_LU) : (*st & ~E1000_STATUS_LU);
        if (up) {
            s->phy[E1000_PHY_STATUS] |= 0x0024;
            s->phy[17] = 0xac00;
        } else {
            s->phy[E1000_PHY_STATUS] &= (uint16_t)~0x0024;
            s->phy[17] = 0;
        }
        e1000_raise(s, E1000_ICR_LSC);
    }
    pthread_mutex_unlock(&s->lock);
}
