/* AHCI 1.3 HBA with ATA disks and ATAPI drives (see ahci.h). Spec references are
 * to Serial ATA AHCI 1.3.1 and ATA8-ACS. */
#include "devices/storage/ahci.h"

#include "core/log.h"
#include "devices/storage/atapi.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AHCI_TAG "dev.ahci"

#define AHCI_BOUNCE_SIZE (64u * 1024)
#define AHCI_SECTOR 512u

/* FIS types (SATA 3.0 10.3) */
#define FIS_REG_H2D 0x27
#define FIS_REG_D2H 0x34
#define FIS_PIO_SETUP 0x5f

/* Received FIS area offsets (AHCI 4.2.1) */
#define RFIS_PSFIS 0x20
#define RFIS_RFIS 0x40

/* ATA status and error bits */
#define ATA_ST_ERR 0x01
#define ATA_ST_DRQ 0x08
#define ATA_ST_DSC 0x10
#define ATA_ST_DRDY 0x40
#define ATA_ST_BSY 0x80
#define ATA_ER_ABRT 0x04
#define ATA_ER_IDNF 0x10
#define ATA_ER_UNC 0x40

/* ATA commands (ATA8-ACS) */
#define ATA_DEVICE_RESET 0x08
#define ATA_READ_SECTORS 0x20
#define ATA_READ_SECTORS_EXT 0x24
#define ATA_READ_DMA_EXT 0x25
#define ATA_WRITE_SECTORS 0x30
#define ATA_WRITE_SECTORS_EXT 0x34
#define ATA_WRITE_DMA_EXT 0x35
#define ATA_READ_VERIFY 0x40
#define ATA_READ_VERIFY_EXT 0x42
#define ATA_EXEC_DIAGNOSTIC 0x90
#define ATA_INIT_DEV_PARAMS 0x91
#define ATA_PACKET 0xa0
#define ATA_IDENTIFY_PACKET 0xa1
#define ATA_SET_MULTIPLE 0xc6
#define ATA_READ_DMA 0xc8
#define ATA_WRITE_DMA 0xca
#define ATA_STANDBY_IMMEDIATE 0xe0
#define ATA_IDLE_IMMEDIATE 0xe1
#define ATA_STANDBY 0xe2
#define ATA_IDLE 0xe3
#define ATA_CHECK_POWER_MODE 0xe5
#define ATA_FLUSH_CACHE 0xe7
#define ATA_FLUSH_CACHE_EXT 0xea
#define ATA_IDENTIFY 0xec
#define ATA_SET_FEATURES 0xef

struct ahci_port {
    struct ahci *s;            /* owner */
    int index;                 /* port number */
    enum ahci_dev_kind kind;   /* what is attached (fixed after setup) */
    struct storage_backend be; /* disk image (AHCI_DEV_DISK) */
    struct atapi atapi;        /* drive state (AHCI_DEV_CDROM) */
    char serial[21];           /* IDENTIFY words 10-19 */
    bool err_halt;             /* TFES seen: no more commands until ST is cleared (5.3.8) */
    uint32_t clb, clbu;        /* PxCLB/PxCLBU: command list base (3.3.1-2) */
    uint32_t fb, fbu;          /* PxFB/PxFBU: received FIS base (3.3.3-4) */
    uint32_t is;               /* PxIS: interrupt status, RW1C (3.3.5) */
    uint32_t ie;               /* PxIE: interrupt enable (3.3.6) */
    uint32_t cmd;              /* PxCMD: command and status (3.3.7) */
    uint32_t tfd;              /* PxTFD: error << 8 | status (3.3.8) */
    uint32_t sig;              /* PxSIG: device signature (3.3.9) */
    uint32_t ssts;             /* PxSSTS: SStatus DET/SPD/IPM (3.3.10) */
    uint32_t sctl;             /* PxSCTL: SControl, DET drives COMRESET (3.3.11) */
    uint32_t serr;             /* PxSERR: SError, RW1C (3.3.12) */
    uint32_t sact;             /* PxSACT: NCQ tags; cleared on completion (3.3.13) */
    uint32_t ci;               /* PxCI: commands issued (3.3.14) */
};

struct ahci {
    pthread_mutex_t lock;                   /* guards everything below */
    struct pci_dev pci;                     /* PCI function: config, ABAR, MSI, INTx */
    const struct guestmem *mem;             /* DMA target */
    uint32_t ghc;                           /* GHC: AE, IE (3.1.2) */
    uint32_t is;                            /* IS: per-port interrupt pending (3.1.3) */
    bool irq_level;                         /* last INTx level driven */
    struct ahci_port ports[AHCI_NUM_PORTS]; /* PI = all ports */
    uint8_t *bounce;                        /* AHCI_BOUNCE_SIZE staging buffer for image I/O */
};

/* A cursor through a command's PRDT (AHCI 4.2.3.3). */
struct ahci_sg {
    const struct guestmem *mem;
    uint64_t table; /* guest address of PRDT entry 0 */
    uint32_t n;     /* PRDTL */
    uint32_t idx;   /* next entry to load */
    uint64_t addr;  /* current entry's next byte */
    uint64_t left;  /* bytes left in the current entry */
    uint64_t done;  /* bytes moved so far (-> PRDBC) */
};

/* One decoded command. */
struct ahci_cmd {
    int slot;
    uint32_t hdr0;     /* command header DW0: CFL, A, W, PRDTL */
    uint64_t ctba;     /* command table base */
    uint8_t fis[20];   /* the H2D register FIS */
    uint8_t status;    /* ending ATA status */
    uint8_t error;     /* ending ATA error */
    uint32_t irq;      /* extra PxIS bits (OFS, HBFS) */
    bool pio_in;       /* a PIO data-in phase happened: post a PIO setup FIS */
    uint8_t count_out; /* sector count register in the D2H FIS (ATAPI interrupt reason) */
    struct ahci_sg sg;
};

static uint64_t ahci_u64(uint32_t lo, uint32_t hi)
{
    return (uint64_t)hi << 32 | lo;
}

/* ---- interrupts ----------------------------------------------------------------------- */

static bool ahci_msi_enabled(struct ahci *s)
{
    return s->pci.msi_cap &&
           (pci_dev_config_read(&s->pci, s->pci.msi_cap + 2u, 2) & PCI_MSI_CTRL_ENABLE);
}

/* Recompute IS and drive INTx; MSI is sent for a newly raised port event. */
static void ahci_update_irq(struct ahci *s, bool new_event)
{
    uint32_t is = 0;
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        if (s->ports[i].is & s->ports[i].ie) {
            is |= 1u << i;
        }
    }
    s->is = is;
    bool level = (s->ghc & AHCI_GHC_IE) && is;
    if (ahci_msi_enabled(s)) {
        /* MSI is edge-triggered: one message per newly raised event (AHCI 2.3). */
        if (level && new_event) {
            pci_dev_notify(&s->pci, 0);
        }
        level = false;
    }
    if (level != s->irq_level) {
        s->irq_level = level;
        pci_dev_set_intx(&s->pci, level);
    }
}

static void ahci_port_raise(struct ahci_port *p, uint32_t bits)
{
    p->is |= bits;
    ahci_update_irq(p->s, (bits & p->ie) != 0);
}

/* ---- device identity ------------------------------------------------------------------ */

static void ahci_port_signature(struct ahci_port *p)
{
    switch (p->kind) {
    case AHCI_DEV_DISK:
        p->sig = AHCI_SIG_ATA;
        p->tfd = 0x100 | ATA_ST_DRDY | ATA_ST_DSC; /* error 01: diagnostics passed */
        p->ssts = 0x113;                           /* IPM active, Gen1, DET present */
        break;
    case AHCI_DEV_CDROM:
        p->sig = AHCI_SIG_ATAPI;
        p->tfd = 0x100; /* packet devices leave DRDY clear after reset (ATA8-ACS 9.11) */
        p->ssts = 0x113;
        break;
    default:
        p->sig = 0xffffffffu;
        p->tfd = 0x7f;
        p->ssts = 0;
        break;
    }
}

/* Writes a D2H register FIS carrying the signature (after a reset) when FRE is on. */
static void ahci_post_signature(struct ahci_port *p)
{
    if (!(p->cmd & AHCI_PX_CMD_FRE) || p->kind == AHCI_DEV_NONE) {
        return;
    }
    uint8_t f[20] = {FIS_REG_D2H};
    f[2] = (uint8_t)p->tfd;
    f[3] = (uint8_t)(p->tfd >> 8);
    f[4] = 1; /* LBA low / sector number */
    f[5] = (uint8_t)(p->sig >> 16);
    f[6] = (uint8_t)(p->sig >> 24);
    f[12] = 1; /* sector count */
    void *dst = guestmem_ptr_rw(p->s->mem, ahci_u64(p->fb, p->fbu) + RFIS_RFIS, sizeof(f));
    if (dst) {
        memcpy(dst, f, sizeof(f));
        guestmem_dma_written(p->s->mem, ahci_u64(p->fb, p->fbu) + RFIS_RFIS, sizeof(f));
    }
}

static void ahci_port_reset_dev(struct ahci_port *p)
{
    p->err_halt = false;
    ahci_port_signature(p);
    if (p->kind == AHCI_DEV_CDROM) {
        atapi_reset(&p->atapi);
    }
}

static void ahci_port_reset(struct ahci_port *p)
{
    p->clb = p->clbu = p->fb = p->fbu = 0;
    p->is = p->ie = 0;
    /* SUD and POD read as one: no staggered spin-up or cold presence detect in CAP. */
    p->cmd =
        AHCI_PX_CMD_SUD | AHCI_PX_CMD_POD | (p->kind == AHCI_DEV_CDROM ? AHCI_PX_CMD_ATAPI : 0);
    p->sctl = 0;
    p->serr = 0;
    p->sact = 0;
    p->ci = 0;
    ahci_port_reset_dev(p);
}

static void ahci_reset_locked(struct ahci *s)
{
    s->ghc = AHCI_GHC_AE;
    s->is = 0;
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        ahci_port_reset(&s->ports[i]);
    }
    ahci_update_irq(s, false);
}

/* ATA strings: two characters per word, first in the high byte, space padded. */
static void ata_string(uint16_t *w, const char *str, unsigned nwords)
{
    size_t n = strlen(str);
    for (unsigned i = 0; i < nwords * 2; i++) {
        uint8_t c = i < n ? (uint8_t)str[i] : ' ';
        if (i & 1) {
            w[i / 2] |= c;
        } else {
            w[i / 2] = (uint16_t)(c << 8);
        }
    }
}

/* Word 255: signature A5h and a checksum making all 512 bytes sum to zero. */
static void ata_checksum(uint16_t *w)
{
    w[255] = 0x00a5;
    uint8_t sum = 0;
    const uint8_t *b = (const uint8_t *)w;
    for (int i = 0; i < 511; i++) {
        sum = (uint8_t)(sum + b[i]);
    }
    w[255] = (uint16_t)(0x00a5 | (uint8_t)(-sum) << 8);
}

static void ahci_identify_disk(const struct ahci_port *p, uint16_t *w)
{
    uint64_t sectors = p->be.length / AHCI_SECTOR;
    uint64_t chs = sectors > 16383ull * 16 * 63 ? 16383ull * 16 * 63 : sectors;
    uint32_t lba28 = sectors > 0x0fffffff ? 0x0fffffff : (uint32_t)sectors;
    memset(w, 0, 512);
    w[0] = 0x0040; /* fixed device, ATA */
    w[1] = (uint16_t)(chs / (16 * 63));
    w[3] = 16;
    w[6] = 63;
    ata_string(&w[10], p->serial, 10);
    ata_string(&w[23], "1.0", 4);
    ata_string(&w[27], "LODGE HARDDISK", 20);
    w[47] = 0x8010; /* READ/WRITE MULTIPLE: up to 16 sectors */
    w[49] = 0x0300; /* LBA and DMA supported */
    w[50] = 0x4000;
    w[53] = 0x0006; /* words 64-70 and 88 valid */
    w[54] = w[1];
    w[55] = 16;
    w[56] = 63;
    uint32_t cur = (uint32_t)(w[54] * 16u * 63u);
    w[57] = (uint16_t)cur;
    w[58] = (uint16_t)(cur >> 16);
    w[59] = 0x0110; /* multiple sector setting valid: 16 */
    w[60] = (uint16_t)lba28;
    w[61] = (uint16_t)(lba28 >> 16);
    w[63] = 0x0407; /* multiword DMA 0-2 supported, 2 selected */
    w[64] = 0x0003; /* PIO 3 and 4 */
    w[65] = w[66] = w[67] = w[68] = 120;
    w[76] = 0x0002; /* SATA Gen1 signalling; no NCQ */
    w[80] = 0x01f0; /* ATA/ATAPI-4 to ATA8-ACS */
    w[82] = 0x4020; /* NOP, write cache */
    w[83] = 0x7400; /* FLUSH CACHE EXT, FLUSH CACHE, 48-bit addresses */
    w[84] = 0x4000;
    w[85] = 0x4020; /* write cache enabled */
    w[86] = 0x3400;
    w[87] = 0x4000;
    w[88] = 0x203f; /* UDMA 0-5 supported, 5 selected */
    w[100] = (uint16_t)sectors;
    w[101] = (uint16_t)(sectors >> 16);
    w[102] = (uint16_t)(sectors >> 32);
    w[103] = (uint16_t)(sectors >> 48);
    w[106] = 0x4000; /* one logical sector per physical sector of 512 bytes */
    w[217] = 0x0001; /* non-rotating medium */
    ata_checksum(w);
}

static void ahci_identify_packet(const struct ahci_port *p, uint16_t *w)
{
    memset(w, 0, 512);
    /* ATAPI, CD-ROM device type 05h, removable, DRQ within 50 us, 12-byte packets */
    w[0] = (uint16_t)(2u << 14 | 5u << 8 | 1u << 7 | 2u << 5);
    ata_string(&w[10], p->serial, 10);
    ata_string(&w[23], "1.0", 4);
    ata_string(&w[27], "LODGE DVD-ROM", 20);
    w[49] = 0x0300; /* LBA and DMA */
    w[53] = 0x0006;
    w[63] = 0x0407;
    w[64] = 0x0003;
    w[65] = w[66] = w[67] = w[68] = 120;
    w[76] = 0x0002;
    w[80] = 0x01f0;
    w[82] = 0x4010; /* NOP, PACKET */
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = 0x4010;
    w[86] = 0x0000;
    w[87] = 0x4000;
    w[88] = 0x203f;
    ata_checksum(w);
}

/* ---- PRDT ------------------------------------------------------------------------------- */

/* Moves len bytes between buf and the guest buffers the PRDT describes; to_guest
 * says the direction. -EFAULT for an entry outside RAM (or ROM as a target),
 * -ENOSPC when the PRDT ends first. Nothing is ever written outside RAM. */
static int ahci_sg_xfer(struct ahci_sg *sg, void *buf, uint64_t len, bool to_guest)
{
    uint8_t *b = buf;
    while (len) {
        if (sg->left == 0) {
            if (sg->idx >= sg->n) {
                return -ENOSPC;
            }
            uint32_t e[4];
            if (guestmem_read(sg->mem, sg->table + 16ull * sg->idx, e, sizeof(e)) < 0) {
                return -EFAULT;
            }
            sg->idx++;
            sg->addr = ahci_u64(e[0] & ~1u, e[1]); /* DBA bit 0 is reserved (word align) */
            sg->left = (e[3] & 0x3fffff) + 1ull;   /* DBC is byte count - 1 */
        }
        uint64_t chunk = sg->left < len ? sg->left : len;
        void *g = to_guest ? guestmem_ptr_rw(sg->mem, sg->addr, chunk)
                           : guestmem_ptr(sg->mem, sg->addr, chunk);
        if (!g) {
            return -EFAULT;
        }
        if (to_guest) {
            memcpy(g, b, chunk);
            guestmem_dma_written(sg->mem, sg->addr, chunk); /* may replace translated code */
        } else {
            memcpy(b, g, chunk);
        }
        b += chunk;
        len -= chunk;
        sg->addr += chunk;
        sg->left -= chunk;
        sg->done += chunk;
    }
    return 0;
}

/* Total bytes the PRDT describes; -EFAULT when the table itself is not in RAM. */
static int64_t ahci_sg_total(const struct ahci_sg *sg)
{
    int64_t total = 0;
    for (uint32_t i = 0; i < sg->n; i++) {
        uint32_t dbc;
        if (guestmem_read(sg->mem, sg->table + 16ull * i + 12, &dbc, 4) < 0) {
            return -EFAULT;
        }
        total += (dbc & 0x3fffff) + 1;
    }
    return total;
}

/* ---- command completion ----------------------------------------------------------------- */

static void ahci_cmd_fail(struct ahci_cmd *c, uint8_t error)
{
    c->status = ATA_ST_DRDY | ATA_ST_ERR;
    c->error = error;
}

/* A PRDT problem: -ENOSPC is an overflow (4.2.3.3), anything else a bad address. */
static void ahci_cmd_fail_dma(struct ahci_port *p, struct ahci_cmd *c, int rc)
{
    log_debug(AHCI_TAG, "port %d slot %d: bad PRDT (%s)", p->index, c->slot,
              rc == -ENOSPC ? "too short" : "outside guest RAM");
    ahci_cmd_fail(c, ATA_ER_ABRT);
    c->irq |= rc == -ENOSPC ? AHCI_PX_IS_OFS : AHCI_PX_IS_HBFS;
}

static void ahci_write_fis(struct ahci_port *p, unsigned off, const uint8_t *fis, size_t len)
{
    if (!(p->cmd & AHCI_PX_CMD_FRE)) {
        return;
    }
    void *dst = guestmem_ptr_rw(p->s->mem, ahci_u64(p->fb, p->fbu) + off, len);
    if (dst) {
        memcpy(dst, fis, len);
        guestmem_dma_written(p->s->mem, ahci_u64(p->fb, p->fbu) + off, len);
    }
}

static void ahci_cmd_complete(struct ahci_port *p, struct ahci_cmd *c)
{
    uint32_t bits = c->irq;
    const uint8_t *h = c->fis;
    p->tfd = (uint32_t)c->error << 8 | c->status;
    if (c->pio_in && !(c->status & ATA_ST_ERR)) {
        uint8_t f[20] = {FIS_PIO_SETUP};
        f[1] = 0x60; /* D: device to host, I: interrupt */
        f[2] = c->status;
        f[3] = c->error;
        memcpy(f + 4, h + 4, 3);
        f[7] = h[7];
        memcpy(f + 8, h + 8, 3);
        f[12] = c->count_out;
        f[15] = c->status; /* E_Status: the status at the end of the transfer */
        f[16] = (uint8_t)c->sg.done;
        f[17] = (uint8_t)(c->sg.done >> 8);
        ahci_write_fis(p, RFIS_PSFIS, f, sizeof(f));
        bits |= AHCI_PX_IS_PSS;
    }
    uint8_t d[20] = {FIS_REG_D2H};
    d[1] = 0x40; /* I */
    d[2] = c->status;
    d[3] = c->error;
    memcpy(d + 4, h + 4, 3);
    d[7] = h[7];
    memcpy(d + 8, h + 8, 3);
    d[12] = c->count_out;
    ahci_write_fis(p, RFIS_RFIS, d, sizeof(d));
    bits |= AHCI_PX_IS_DHRS;
    /* PRDBC: bytes transferred (4.2.2). */
    uint32_t prdbc = (uint32_t)c->sg.done;
    void *hdr = guestmem_ptr_rw(p->s->mem, ahci_u64(p->clb, p->clbu) + 32ull * c->slot + 4, 4);
    if (hdr) {
        memcpy(hdr, &prdbc, 4);
        guestmem_dma_written(p->s->mem, ahci_u64(p->clb, p->clbu) + 32ull * c->slot + 4, 4);
    }
    p->sact &= ~(1u << c->slot);
    if (c->status & ATA_ST_ERR) {
        /* 6.1.2: the HBA stops on a task file error; CI keeps the failed slot. */
        bits |= AHCI_PX_IS_TFES;
        p->err_halt = true;
        p->cmd = (p->cmd & ~0x1f00u) | (uint32_t)c->slot << 8; /* CCS */
    } else {
        p->ci &= ~(1u << c->slot);
    }
    ahci_port_raise(p, bits);
}

/* ---- ATA commands ----------------------------------------------------------------------- */

static uint64_t fis_lba48(const uint8_t *f)
{
    return (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 | (uint64_t)f[8] << 24 |
           (uint64_t)f[9] << 32 | (uint64_t)f[10] << 40;
}

static uint64_t fis_lba28(const uint8_t *f)
{
    return (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
           (uint64_t)(f[7] & 0x0f) << 24;
}

static void ahci_cmd_rw(struct ahci_port *p, struct ahci_cmd *c, bool ext, bool write, bool pio)
{
    const uint8_t *f = c->fis;
    uint64_t lba = ext ? fis_lba48(f) : fis_lba28(f);
    uint64_t count = ext ? (uint64_t)(f[12] | f[13] << 8) : f[12];
    if (count == 0) {
        count = ext ? 65536 : 256;
    }
    uint64_t sectors = p->be.length / AHCI_SECTOR;
    if (lba > sectors || count > sectors - lba) {
        ahci_cmd_fail(c, ATA_ER_IDNF | ATA_ER_ABRT);
        return;
    }
    if (write && (p->be.readonly || !p->be.pwrite)) {
        ahci_cmd_fail(c, ATA_ER_ABRT);
        return;
    }
    uint64_t off = lba * AHCI_SECTOR;
    uint64_t left = count * AHCI_SECTOR;
    uint8_t *bounce = p->s->bounce;
    while (left) {
        uint64_t n = left < AHCI_BOUNCE_SIZE ? left : AHCI_BOUNCE_SIZE;
        int rc;
        if (write) {
            rc = ahci_sg_xfer(&c->sg, bounce, n, false);
            if (rc < 0) {
                ahci_cmd_fail_dma(p, c, rc);
                return;
            }
            rc = p->be.pwrite(p->be.opaque, bounce, n, off);
        } else {
            rc = p->be.pread(p->be.opaque, bounce, n, off);
            if (rc == 0) {
                rc = ahci_sg_xfer(&c->sg, bounce, n, true);
                if (rc < 0) {
                    ahci_cmd_fail_dma(p, c, rc);
                    return;
                }
            }
        }
        if (rc < 0) {
            log_warn(AHCI_TAG, "port %d: %s at byte %llu failed: %s", p->index,
                     write ? "write" : "read", (unsigned long long)off, strerror(-rc));
            ahci_cmd_fail(c, write ? ATA_ER_ABRT : ATA_ER_UNC);
            return;
        }
        off += n;
        left -= n;
    }
    c->pio_in = pio && !write;
}

static void ahci_cmd_identify(struct ahci_port *p, struct ahci_cmd *c, bool packet)
{
    uint16_t w[256];
    if (packet) {
        ahci_identify_packet(p, w);
    } else {
        ahci_identify_disk(p, w);
    }
    int rc = ahci_sg_xfer(&c->sg, w, sizeof(w), true);
    if (rc < 0) {
        ahci_cmd_fail_dma(p, c, rc);
        return;
    }
    c->pio_in = true;
}

static void ahci_cmd_packet(struct ahci_port *p, struct ahci_cmd *c)
{
    uint8_t cdb[16];
    struct atapi_result *r = (struct atapi_result *)p->s->bounce;
    _Static_assert(sizeof(struct atapi_result) <= AHCI_BOUNCE_SIZE, "bounce too small");
    bool dma = c->fis[3] & 1;
    if (guestmem_read(p->s->mem, c->ctba + 0x40, cdb, sizeof(cdb)) < 0) {
        ahci_cmd_fail_dma(p, c, -EFAULT);
        return;
    }
    atapi_exec(&p->atapi, cdb, r);
    c->count_out = 3; /* interrupt reason: I/O and C/D, command completed */
    if (!r->ok) {
        ahci_cmd_fail(
            c, (uint8_t)(p->atapi.sense_key << 4 |
                         (p->atapi.sense_key == ATAPI_SENSE_ILLEGAL_REQUEST ? ATA_ER_ABRT : 0)));
        return;
    }
    if (r->data_out) {
        return; /* MODE SELECT: parameters are accepted and ignored */
    }
    if (!r->is_read) {
        /* A guest may offer a shorter buffer than the allocation length: send what fits. */
        int64_t room = ahci_sg_total(&c->sg);
        if (room < 0) {
            ahci_cmd_fail_dma(p, c, -EFAULT);
            return;
        }
        uint32_t n = (uint64_t)room < r->len ? (uint32_t)room : r->len;
        uint8_t tmp[ATAPI_RESP_MAX];
        memcpy(tmp, r->buf, n);
        int rc = ahci_sg_xfer(&c->sg, tmp, n, true);
        if (rc < 0) {
            ahci_cmd_fail_dma(p, c, rc);
            return;
        }
        c->pio_in = !dma && n > 0;
        return;
    }
    uint64_t off = r->read_off;
    uint64_t left = r->len;
    struct storage_backend be = p->atapi.be;
    /* r lives in the bounce buffer: stage reads in its second half from here on. */
    uint8_t *bounce = p->s->bounce + AHCI_BOUNCE_SIZE / 2;
    while (left) {
        uint64_t n = left < AHCI_BOUNCE_SIZE / 2 ? left : AHCI_BOUNCE_SIZE / 2;
        int rc = be.pread(be.opaque, bounce, n, off);
        if (rc < 0) {
            atapi_set_sense(&p->atapi, ATAPI_SENSE_MEDIUM_ERROR, ATAPI_ASC_READ_ERROR, 0);
            ahci_cmd_fail(c, ATAPI_SENSE_MEDIUM_ERROR << 4);
            return;
        }
        rc = ahci_sg_xfer(&c->sg, bounce, n, true);
        if (rc < 0) {
            ahci_cmd_fail_dma(p, c, rc);
            return;
        }
        off += n;
        left -= n;
    }
    c->pio_in = !dma && r->len > 0;
}

static void ahci_cmd_set_features(struct ahci_cmd *c)
{
    switch (c->fis[3]) {
    case 0x02: /* enable write cache */
    case 0x03: /* set transfer mode */
    case 0x55: /* disable read look-ahead */
    case 0x82: /* disable write cache */
    case 0xaa: /* enable read look-ahead */
    case 0x66: /* keep features over software reset */
    case 0xcc:
        break;
    default:
        ahci_cmd_fail(c, ATA_ER_ABRT);
        break;
    }
}

static void ahci_exec_ata(struct ahci_port *p, struct ahci_cmd *c)
{
    uint8_t op = c->fis[2];
    bool disk = p->kind == AHCI_DEV_DISK;
    bool cd = p->kind == AHCI_DEV_CDROM;
    c->status = ATA_ST_DRDY | ATA_ST_DSC;
    c->error = 0;
    log_trace(AHCI_TAG, "port %d slot %d: command %02x", p->index, c->slot, op);
    switch (op) {
    case ATA_READ_DMA:
    case ATA_WRITE_DMA:
    case ATA_READ_DMA_EXT:
    case ATA_WRITE_DMA_EXT:
    case ATA_READ_SECTORS:
    case ATA_READ_SECTORS_EXT:
    case ATA_WRITE_SECTORS:
    case ATA_WRITE_SECTORS_EXT:
        if (!disk) {
            break; /* a packet device aborts, below */
        }
        ahci_cmd_rw(p, c,
                    op == ATA_READ_DMA_EXT || op == ATA_WRITE_DMA_EXT ||
                        op == ATA_READ_SECTORS_EXT || op == ATA_WRITE_SECTORS_EXT,
                    op == ATA_WRITE_DMA || op == ATA_WRITE_DMA_EXT || op == ATA_WRITE_SECTORS ||
                        op == ATA_WRITE_SECTORS_EXT,
                    op == ATA_READ_SECTORS || op == ATA_READ_SECTORS_EXT);
        return;
    case ATA_IDENTIFY:
        if (disk) {
            ahci_cmd_identify(p, c, false);
            return;
        }
        break;
    case ATA_IDENTIFY_PACKET:
        if (cd) {
            ahci_cmd_identify(p, c, true);
            return;
        }
        break;
    case ATA_PACKET:
        if (cd) {
            ahci_cmd_packet(p, c);
            return;
        }
        break;
    case ATA_FLUSH_CACHE:
    case ATA_FLUSH_CACHE_EXT:
        if (disk && p->be.flush && p->be.flush(p->be.opaque) < 0) {
            ahci_cmd_fail(c, ATA_ER_ABRT);
        }
        return;
    case ATA_SET_FEATURES:
        ahci_cmd_set_features(c);
        return;
    case ATA_DEVICE_RESET:
        if (cd) {
            ahci_port_reset_dev(p);
            c->status = (uint8_t)p->tfd;
            c->error = (uint8_t)(p->tfd >> 8);
            c->fis[5] = 0x14; /* the signature goes back in LBA mid/high */
            c->fis[6] = 0xeb;
            return;
        }
        break;
    case ATA_EXEC_DIAGNOSTIC:
        ahci_port_reset_dev(p);
        c->status = (uint8_t)p->tfd;
        c->error = 0x01; /* device 0 passed */
        c->fis[4] = 1;
        c->fis[5] = (uint8_t)(p->sig >> 16);
        c->fis[6] = (uint8_t)(p->sig >> 24);
        c->count_out = 1;
        return;
    case ATA_READ_VERIFY:
    case ATA_READ_VERIFY_EXT:
    case ATA_SET_MULTIPLE:
    case ATA_INIT_DEV_PARAMS:
    case ATA_STANDBY_IMMEDIATE:
    case ATA_IDLE_IMMEDIATE:
    case ATA_STANDBY:
    case ATA_IDLE:
        if (disk) {
            return;
        }
        break;
    case ATA_CHECK_POWER_MODE:
        c->count_out = 0xff; /* active or idle */
        return;
    default:
        break;
    }
    log_debug(AHCI_TAG, "port %d: command %02x aborted", p->index, op);
    ahci_cmd_fail(c, ATA_ER_ABRT);
    if (cd) {
        /* A packet device answers ATA commands it lacks with its signature (ATA8-ACS
         * 4.2.1), which is how a driver tells ATAPI from ATA after IDENTIFY fails. */
        c->fis[4] = 1;
        c->fis[5] = 0x14;
        c->fis[6] = 0xeb;
        c->count_out = 1;
    }
}

/* A register FIS with C = 0 is a device control update: SRST (AHCI 10.4.1). */
static void ahci_exec_control(struct ahci_port *p, struct ahci_cmd *c)
{
    bool srst = c->fis[15] & 0x04;
    if (srst) {
        p->ci &= ~(1u << c->slot);
        return;
    }
    ahci_port_reset_dev(p);
    p->ci &= ~(1u << c->slot);
    ahci_post_signature(p);
    ahci_port_raise(p, AHCI_PX_IS_DHRS);
}

static void ahci_exec_slot(struct ahci_port *p, int slot)
{
    struct ahci *s = p->s;
    struct ahci_cmd c = {.slot = slot};
    uint32_t hdr[4];
    uint64_t hdr_gpa = ahci_u64(p->clb, p->clbu) + 32ull * slot;
    c.sg.mem = s->mem;
    if (guestmem_read(s->mem, hdr_gpa, hdr, sizeof(hdr)) < 0) {
        ahci_cmd_fail_dma(p, &c, -EFAULT);
        ahci_cmd_complete(p, &c);
        return;
    }
    c.hdr0 = hdr[0];
    c.ctba = ahci_u64(hdr[2] & ~0x7fu, hdr[3]);
    c.sg.table = c.ctba + 0x80;
    c.sg.n = hdr[0] >> 16;
    if (guestmem_read(s->mem, c.ctba, c.fis, sizeof(c.fis)) < 0 || (hdr[0] & 0x1f) < 5 ||
        c.fis[0] != FIS_REG_H2D) {
        ahci_cmd_fail_dma(p, &c, -EFAULT);
        ahci_cmd_complete(p, &c);
        return;
    }
    if (!(c.fis[1] & 0x80)) {
        ahci_exec_control(p, &c);
        return;
    }
    if (p->kind == AHCI_DEV_NONE) {
        ahci_cmd_fail(&c, ATA_ER_ABRT);
    } else {
        ahci_exec_ata(p, &c);
    }
    ahci_cmd_complete(p, &c);
}

/* Run every issued command while the port runs (5.3.2: ST and bus mastering on). */
static void ahci_port_process(struct ahci_port *p)
{
    while ((p->cmd & AHCI_PX_CMD_ST) && !p->err_halt && p->ci) {
        if (!pci_dev_bus_master(&p->s->pci)) {
            log_debug(AHCI_TAG, "port %d: commands issued without bus mastering", p->index);
            return;
        }
        int slot = __builtin_ctz(p->ci);
        p->cmd = (p->cmd & ~0x1f00u) | (uint32_t)slot << 8;
        ahci_exec_slot(p, slot);
    }
}

/* ---- registers -------------------------------------------------------------------------- */

static uint32_t ahci_cap(void)
{
    return 0x80000000u |                /* S64A: 64-bit addressing */
           0x00040000u |                /* SAM: AHCI only */
           1u << 20 |                   /* ISS: Gen1 */
           (AHCI_NUM_SLOTS - 1u) << 8 | /* NCS */
           (AHCI_NUM_PORTS - 1u);       /* NP */
}

static uint32_t ahci_port_read(struct ahci_port *p, unsigned reg)
{
    switch (reg) {
    case AHCI_PX_CLB:
        return p->clb;
    case AHCI_PX_CLBU:
        return p->clbu;
    case AHCI_PX_FB:
        return p->fb;
    case AHCI_PX_FBU:
        return p->fbu;
    case AHCI_PX_IS:
        return p->is;
    case AHCI_PX_IE:
        return p->ie;
    case AHCI_PX_CMD:
        return p->cmd;
    case AHCI_PX_TFD:
        return p->tfd;
    case AHCI_PX_SIG:
        return p->sig;
    case AHCI_PX_SSTS:
        return p->ssts;
    case AHCI_PX_SCTL:
        return p->sctl;
    case AHCI_PX_SERR:
        return p->serr;
    case AHCI_PX_SACT:
        return p->sact;
    case AHCI_PX_CI:
        return p->ci;
    default:
        return 0;
    }
}

static void ahci_port_write_cmd(struct ahci_port *p, uint32_t val)
{
    uint32_t old = p->cmd;
    /* Writable: ST, CLO (self-clearing), FRE, and the ICC/ALPE/ASP bits we ignore. */
    p->cmd =
        (old & ~(AHCI_PX_CMD_ST | AHCI_PX_CMD_FRE)) | (val & (AHCI_PX_CMD_ST | AHCI_PX_CMD_FRE));
    if (val & AHCI_PX_CMD_CLO) {
        p->tfd &= ~(uint32_t)(ATA_ST_BSY | ATA_ST_DRQ);
    }
    if ((p->cmd & AHCI_PX_CMD_FRE) && !(old & AHCI_PX_CMD_FRE)) {
        p->cmd |= AHCI_PX_CMD_FR;
        ahci_post_signature(p);
    } else if (!(p->cmd & AHCI_PX_CMD_FRE)) {
        p->cmd &= ~AHCI_PX_CMD_FR;
    }
    if (p->cmd & AHCI_PX_CMD_ST) {
        p->cmd |= AHCI_PX_CMD_CR;
    } else {
        /* 3.3.14: clearing ST clears CI and SACT and ends error recovery. */
        p->cmd &= ~(AHCI_PX_CMD_CR | 0x1f00u);
        p->ci = 0;
        p->sact = 0;
        p->err_halt = false;
    }
}

static void ahci_port_write(struct ahci_port *p, unsigned reg, uint32_t val)
{
    switch (reg) {
    case AHCI_PX_CLB:
        p->clb = val & ~0x3ffu; /* 1 KiB aligned */
        break;
    case AHCI_PX_CLBU:
        p->clbu = val;
        break;
    case AHCI_PX_FB:
        p->fb = val & ~0xffu; /* 256-byte aligned */
        break;
    case AHCI_PX_FBU:
        p->fbu = val;
        break;
    case AHCI_PX_IS:
        p->is &= ~val;
        ahci_update_irq(p->s, false);
        break;
    case AHCI_PX_IE:
        p->ie = val & 0xfdc000ffu;
        ahci_update_irq(p->s, (p->is & p->ie) != 0);
        break;
    case AHCI_PX_CMD:
        ahci_port_write_cmd(p, val);
        ahci_port_process(p);
        break;
    case AHCI_PX_SCTL:
        if ((p->sctl & 0xf) == 1 && (val & 0xf) == 0) {
            /* COMRESET released: the device resets and sends its signature (10.4.2). */
            ahci_port_reset_dev(p);
            ahci_post_signature(p);
        } else if ((val & 0xf) == 1) {
            p->ssts = 0;
            p->tfd = 0x7f | ATA_ST_BSY;
        }
        p->sctl = val;
        break;
    case AHCI_PX_SERR:
        p->serr &= ~val;
        break;
    case AHCI_PX_SACT:
        if (p->cmd & AHCI_PX_CMD_ST) {
            p->sact |= val;
        }
        break;
    case AHCI_PX_CI:
        if (p->cmd & AHCI_PX_CMD_ST) {
            p->ci |= val;
            ahci_port_process(p);
        }
        break;
    default:
        break; /* read-only or unimplemented */
    }
}

static uint32_t ahci_read32(struct ahci *s, uint64_t off)
{
    if (off >= AHCI_PORT_BASE) {
        uint64_t i = (off - AHCI_PORT_BASE) / AHCI_PORT_STRIDE;
        if (i >= AHCI_NUM_PORTS) {
            return 0;
        }
        return ahci_port_read(&s->ports[i], (unsigned)((off - AHCI_PORT_BASE) % AHCI_PORT_STRIDE));
    }
    switch (off) {
    case AHCI_REG_CAP:
        return ahci_cap();
    case AHCI_REG_GHC:
        return s->ghc;
    case AHCI_REG_IS:
        return s->is;
    case AHCI_REG_PI:
        return (1u << AHCI_NUM_PORTS) - 1;
    case AHCI_REG_VS:
        return 0x00010300; /* AHCI 1.3 */
    case AHCI_REG_CAP2:
        return 0;
    default:
        return 0;
    }
}

static void ahci_write32(struct ahci *s, uint64_t off, uint32_t val)
{
    if (off >= AHCI_PORT_BASE) {
        uint64_t i = (off - AHCI_PORT_BASE) / AHCI_PORT_STRIDE;
        if (i < AHCI_NUM_PORTS) {
            ahci_port_write(&s->ports[i], (unsigned)((off - AHCI_PORT_BASE) % AHCI_PORT_STRIDE),
                            val);
        }
        return;
    }
    switch (off) {
    case AHCI_REG_GHC:
        if (val & AHCI_GHC_HR) {
            ahci_reset_locked(s); /* HR reads back 0 once the reset is done (3.1.2) */
            return;
        }
        s->ghc = AHCI_GHC_AE | (val & AHCI_GHC_IE);
        ahci_update_irq(s, false);
        break;
    case AHCI_REG_IS:
        /* Bits stay set while a port still has an enabled event (3.1.3). */
        ahci_update_irq(s, false);
        break;
    default:
        break;
    }
}

/* W1C registers take a narrow write as-is; the others merge it into the dword. */
static bool ahci_is_w1c(uint64_t off)
{
    if (off == AHCI_REG_IS) {
        return true;
    }
    if (off >= AHCI_PORT_BASE) {
        uint64_t r = (off - AHCI_PORT_BASE) % AHCI_PORT_STRIDE;
        return r == AHCI_PX_IS || r == AHCI_PX_SERR || r == AHCI_PX_CI || r == AHCI_PX_SACT;
    }
    return false;
}

uint64_t ahci_abar_read(struct ahci *s, uint64_t off, unsigned size)
{
    if (off >= AHCI_ABAR_SIZE) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    uint64_t v;
    if (size == 8) {
        v = ahci_read32(s, off & ~3ull) | (uint64_t)ahci_read32(s, (off & ~3ull) + 4) << 32;
    } else {
        v = ahci_read32(s, off & ~3ull) >> ((off & 3) * 8);
        if (size < 4) {
            v &= (1ull << (size * 8)) - 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return v;
}

void ahci_abar_write(struct ahci *s, uint64_t off, uint64_t val, unsigned size)
{
    if (off >= AHCI_ABAR_SIZE) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    uint64_t base = off & ~3ull;
    if (size == 8) {
        ahci_write32(s, base, (uint32_t)val);
        ahci_write32(s, base + 4, (uint32_t)(val >> 32));
    } else if (size == 4) {
        ahci_write32(s, base, (uint32_t)val);
    } else {
        unsigned shift = (unsigned)(off & 3) * 8;
        uint32_t mask = (uint32_t)(((1ull << (size * 8)) - 1) << shift);
        uint32_t v = (uint32_t)(val << shift) & mask;
        if (!ahci_is_w1c(base)) {
            v |= ahci_read32(s, base) & ~mask;
        }
        ahci_write32(s, base, v);
    }
    pthread_mutex_unlock(&s->lock);
}

static uint64_t ahci_bar_read(void *opaque, uint64_t off, unsigned size)
{
    return ahci_abar_read(opaque, off, size);
}

static void ahci_bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    ahci_abar_write(opaque, off, val, size);
}

static const struct bus_ops ahci_bar_ops = {.read = ahci_bar_read, .write = ahci_bar_write};

/* ---- lifecycle ---------------------------------------------------------------------------- */

struct ahci *ahci_new(const struct guestmem *mem)
{
    struct ahci *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->bounce = malloc(AHCI_BOUNCE_SIZE);
    if (!s->bounce || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s->bounce);
        free(s);
        return NULL;
    }
    s->mem = mem;
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        s->ports[i].s = s;
        s->ports[i].index = i;
        atapi_init(&s->ports[i].atapi);
    }
    if (pci_dev_init(&s->pci, AHCI_PCI_VENDOR, AHCI_PCI_DEVICE, AHCI_PCI_CLASS, 0x02,
                     AHCI_PCI_VENDOR, AHCI_PCI_DEVICE, 1) < 0 ||
        pci_dev_add_bar(&s->pci, AHCI_ABAR, PCI_BAR_MEM32, AHCI_ABAR_SIZE, &ahci_bar_ops, s,
                        "ahci-abar") < 0 ||
        pci_dev_init_msi(&s->pci) < 0) {
        pci_dev_destroy(&s->pci);
        pthread_mutex_destroy(&s->lock);
        free(s->bounce);
        free(s);
        return NULL;
    }
    ahci_reset_locked(s);
    return s;
}

void ahci_free(struct ahci *s)
{
    if (!s) {
        return;
    }
    pci_dev_destroy(&s->pci);
    pthread_mutex_destroy(&s->lock);
    free(s->bounce);
    free(s);
}

struct pci_dev *ahci_pci(struct ahci *s)
{
    return &s->pci;
}

static int ahci_attach(struct ahci *s, int port, enum ahci_dev_kind kind,
                       const struct storage_backend *be, const char *serial)
{
    if (port < 0 || port >= AHCI_NUM_PORTS || (kind == AHCI_DEV_DISK && (!be || !be->pread))) {
        return -EINVAL;
    }
    pthread_mutex_lock(&s->lock);
    struct ahci_port *p = &s->ports[port];
    if (p->kind != AHCI_DEV_NONE) {
        pthread_mutex_unlock(&s->lock);
        return -EEXIST;
    }
    p->kind = kind;
    if (serial) {
        snprintf(p->serial, sizeof(p->serial), "%s", serial);
    } else {
        snprintf(p->serial, sizeof(p->serial), "LODGE-AHCI-%d", port);
    }
    if (kind == AHCI_DEV_DISK) {
        p->be = *be;
    } else if (be) {
        atapi_insert(&p->atapi, be);
        p->atapi.unit_attention = false; /* present from power-on: no change to report */
    }
    ahci_port_reset(p);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int ahci_attach_disk(struct ahci *s, int port, const struct storage_backend *be, const char *serial)
{
    return ahci_attach(s, port, AHCI_DEV_DISK, be, serial);
}

int ahci_attach_cdrom(struct ahci *s, int port, const struct storage_backend *be)
{
    if (be && !be->pread) {
        return -EINVAL;
    }
    return ahci_attach(s, port, AHCI_DEV_CDROM, be, NULL);
}

int ahci_cdrom_insert(struct ahci *s, int port, const struct storage_backend *be)
{
    if (port < 0 || port >= AHCI_NUM_PORTS || !be || !be->pread) {
        return -EINVAL;
    }
    pthread_mutex_lock(&s->lock);
    int rc = -EINVAL;
    if (s->ports[port].kind == AHCI_DEV_CDROM) {
        atapi_insert(&s->ports[port].atapi, be);
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int ahci_cdrom_eject(struct ahci *s, int port, bool force)
{
    if (port < 0 || port >= AHCI_NUM_PORTS) {
        return -EINVAL;
    }
    pthread_mutex_lock(&s->lock);
    struct ahci_port *p = &s->ports[port];
    int rc = 0;
    if (p->kind != AHCI_DEV_CDROM) {
        rc = -EINVAL;
    } else if (p->atapi.locked && !force) {
        rc = -EBUSY;
    } else {
        atapi_eject(&p->atapi);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void ahci_dev_reset(void *dev)
{
    struct ahci *s = dev;
    pci_dev_reset(&s->pci);
    pthread_mutex_lock(&s->lock);
    s->irq_level = false;
    ahci_reset_locked(s);
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        s->ports[i].atapi.locked = false;
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- saved state ------------------------------------------------------------------------ */

/* The guest-visible state of one port; the attached media is host configuration. */
struct ahci_saved_port {
    uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, ssts, sctl, serr, sact, ci;
    bool err_halt;
    bool tray_open, locked, unit_attention;
    uint8_t media_event, sense_key, asc, ascq;
};

struct ahci_saved {
    uint32_t ghc;
    struct ahci_saved_port p[AHCI_NUM_PORTS];
};

#define SP(f, t) VMSTATE_FIELD(struct ahci_saved_port, f, t)
static const struct vmstate_field ahci_port_fields[] = {
    SP(clb, VMSTATE_U32),
    SP(clbu, VMSTATE_U32),
    SP(fb, VMSTATE_U32),
    SP(fbu, VMSTATE_U32),
    SP(is, VMSTATE_U32),
    SP(ie, VMSTATE_U32),
    SP(cmd, VMSTATE_U32),
    SP(tfd, VMSTATE_U32),
    SP(sig, VMSTATE_U32),
    SP(ssts, VMSTATE_U32),
    SP(sctl, VMSTATE_U32),
    SP(serr, VMSTATE_U32),
    SP(sact, VMSTATE_U32),
    SP(ci, VMSTATE_U32),
    SP(err_halt, VMSTATE_BOOL),
    SP(tray_open, VMSTATE_BOOL),
    SP(locked, VMSTATE_BOOL),
    SP(unit_attention, VMSTATE_BOOL),
    SP(media_event, VMSTATE_U8),
    SP(sense_key, VMSTATE_U8),
    SP(asc, VMSTATE_U8),
    SP(ascq, VMSTATE_U8),
    VMSTATE_END,
};
#undef SP

/* Refuse values the register model could never hold (a hand-made stream). */
static int ahci_port_post_load(void *scratch, int version_id)
{
    const struct ahci_saved_port *p = scratch;
    (void)version_id;
    if ((p->clb & 0x3ff) || (p->fb & 0xff) || p->media_event > ATAPI_MEC_MEDIA_REMOVAL ||
        p->sense_key > 0xf) {
        return -EINVAL;
    }
    return 0;
}

static const struct vmstate_desc ahci_port_vmstate = {
    .name = "ahci_port",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct ahci_saved_port),
    .fields = ahci_port_fields,
    .post_load = ahci_port_post_load,
};

static const struct vmstate_field ahci_hba_fields[] = {
    VMSTATE_FIELD(struct ahci_saved, ghc, VMSTATE_U32),
    VMSTATE_END,
};

static const struct vmstate_desc ahci_hba_vmstate = {
    .name = "ahci",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct ahci_saved),
    .fields = ahci_hba_fields,
};

static int ahci_dev_save(void *dev, GByteArray *out)
{
    struct ahci *s = dev;
    int rc = pci_dev_save(&s->pci, out);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->lock);
    struct ahci_saved sv = {.ghc = s->ghc};
    rc = vmstate_save(&ahci_hba_vmstate, &sv, out);
    for (int i = 0; i < AHCI_NUM_PORTS && rc == 0; i++) {
        const struct ahci_port *p = &s->ports[i];
        const struct atapi *a = &p->atapi;
        struct ahci_saved_port sp = {.clb = p->clb,
                                     .clbu = p->clbu,
                                     .fb = p->fb,
                                     .fbu = p->fbu,
                                     .is = p->is,
                                     .ie = p->ie,
                                     .cmd = p->cmd,
                                     .tfd = p->tfd,
                                     .sig = p->sig,
                                     .ssts = p->ssts,
                                     .sctl = p->sctl,
                                     .serr = p->serr,
                                     .sact = p->sact,
                                     .ci = p->ci,
                                     .err_halt = p->err_halt,
                                     .tray_open = a->tray_open,
                                     .locked = a->locked,
                                     .unit_attention = a->unit_attention,
                                     .media_event = a->media_event,
                                     .sense_key = a->sense_key,
                                     .asc = a->asc,
                                     .ascq = a->ascq};
        rc = vmstate_save(&ahci_port_vmstate, &sp, out);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* All sections are parsed and checked before anything changes (device.h: all or nothing). */
static int ahci_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct ahci *s = dev;
    struct pci_dev_saved *ps = NULL;
    size_t used = 0, n = 0;
    int rc = pci_dev_parse(&s->pci, buf, len, &used, &ps);
    if (rc < 0) {
        return rc;
    }
    struct ahci_saved *sv = calloc(1, sizeof(*sv));
    if (!sv) {
        pci_dev_saved_free(ps);
        return -ENOMEM;
    }
    rc = vmstate_load(&ahci_hba_vmstate, sv, buf + used, len - used, &n);
    used += n;
    for (int i = 0; i < AHCI_NUM_PORTS && rc == 0; i++) {
        rc = vmstate_load(&ahci_port_vmstate, &sv->p[i], buf + used, len - used, &n);
        used += n;
    }
    if (rc == 0 && used != len) {
        rc = -EINVAL; /* trailing bytes: not a stream this version wrote */
    }
    if (rc < 0) {
        log_warn(AHCI_TAG, "saved state refused");
        pci_dev_saved_free(ps);
        free(sv);
        return rc;
    }
    pci_dev_restore(&s->pci, ps);
    pthread_mutex_lock(&s->lock);
    s->ghc = AHCI_GHC_AE | (sv->ghc & AHCI_GHC_IE);
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        struct ahci_port *p = &s->ports[i];
        const struct ahci_saved_port *sp = &sv->p[i];
        p->clb = sp->clb;
        p->clbu = sp->clbu;
        p->fb = sp->fb;
        p->fbu = sp->fbu;
        p->is = sp->is;
        p->ie = sp->ie;
        p->cmd = sp->cmd;
        p->tfd = sp->tfd;
        p->sig = sp->sig;
        p->ssts = sp->ssts;
        p->sctl = sp->sctl;
        p->serr = sp->serr;
        p->sact = sp->sact;
        p->ci = sp->ci;
        p->err_halt = sp->err_halt;
        p->atapi.tray_open = sp->tray_open;
        p->atapi.locked = sp->locked;
        p->atapi.unit_attention = sp->unit_attention;
        p->atapi.media_event = sp->media_event;
        atapi_set_sense(&p->atapi, sp->sense_key, sp->asc, sp->ascq);
    }
    s->irq_level = false;
    pci_dev_set_intx(&s->pci, 0);
    ahci_update_irq(s, false);
    pthread_mutex_unlock(&s->lock);
    free(sv);
    return 0;
}

const struct device_ops ahci_device_ops = {
    .name = "ahci",
    .reset = ahci_dev_reset,
    .save = ahci_dev_save,
    .load = ahci_dev_load,
};
