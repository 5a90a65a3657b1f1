/* Unit tests for devices/storage/ahci: a fake AHCI driver builds command lists,
 * command tables, FISes and PRDTs by hand in mock guest memory and checks what
 * the spec says the HBA must do: identity registers, IDENTIFY contents, DMA reads
 * and writes against an in-memory disk, ATAPI commands against an ISO made with
 * xorriso, task file errors for hostile PRDTs, and INTx/MSI delivery. */
#include "core/machine_storage.h"
#include "devices/storage/ahci.h"
#include "devices/storage/atapi.h"
#include "snapshot/image.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAM_SIZE (8u << 20)
#define DISK_SECTORS 2048
#define CLB(p) (0x10000u + (p)*0x1000u)
#define FB(p) (0x30000u + (p)*0x1000u)
#define CTBA(slot) (0x50000u + (slot)*0x1000u)
#define DATA 0x100000u
#define DISK_PORT 0
#define CD_PORT 1

struct memdisk {
    uint8_t *data; /* contents */
    uint64_t len;  /* bytes */
    int flushes;   /* flush calls */
};

static int md_pread(void *o, void *buf, uint64_t len, uint64_t off)
{
    struct memdisk *m = o;
    if (off > m->len || len > m->len - off) {
        return -EIO;
    }
    memcpy(buf, m->data + off, len);
    return 0;
}

static int md_pwrite(void *o, const void *buf, uint64_t len, uint64_t off)
{
    struct memdisk *m = o;
    if (off > m->len || len > m->len - off) {
        return -EIO;
    }
    memcpy(m->data + off, buf, len);
    return 0;
}

static int md_flush(void *o)
{
    ((struct memdisk *)o)->flushes++;
    return 0;
}

struct irq_log {
    int level;  /* INTx level now */
    int raises; /* low -> high transitions */
};

static void irq_record(void *opaque, int line, int level)
{
    struct irq_log *l = opaque;
    (void)line;
    if (level && !l->level) {
        l->raises++;
    }
    l->level = level;
}

static int msi_count(void *opaque, uint64_t addr, uint32_t data)
{
    (void)addr;
    (void)data;
    (*(int *)opaque)++;
    return 0;
}

struct rig {
    struct guestmem mem;
    struct ahci *s;
    struct memdisk disk;
    struct memdisk iso;
    struct storage_backend disk_be, iso_be;
    struct irq_log irq;
    int msis;
};

static struct rig R;

static uint32_t rd(uint64_t off)
{
    return (uint32_t)ahci_abar_read(R.s, off, 4);
}

static void wr(uint64_t off, uint32_t v)
{
    ahci_abar_write(R.s, off, v, 4);
}

static uint64_t preg(int port, unsigned reg)
{
    return AHCI_PORT_BASE + (uint64_t)port * AHCI_PORT_STRIDE + reg;
}

static uint8_t *gp(uint64_t gpa)
{
    return guestmem_ptr(&R.mem, gpa, 1);
}

/* Makes an ISO 9660 image with one file and loads it. 0 or -1. */
static int make_iso(struct memdisk *m)
{
    char dir[] = "/tmp/lodge-ahci-XXXXXX";
    if (!mkdtemp(dir)) {
        return -1;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/d && printf 'hello from the lodge cd\\n' > %s/d/HELLO.TXT && "
             "xorriso -as mkisofs -quiet -V LODGETEST -o %s/t.iso %s/d >/dev/null 2>&1",
             dir, dir, dir, dir);
    int rc = system(cmd);
    char path[256];
    snprintf(path, sizeof(path), "%s/t.iso", dir);
    FILE *f = rc == 0 ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "cannot build an ISO with xorriso (install it: scripts/deps.sh)\n");
        return -1;
    }
    fseek(f, 0, SEEK_END);
    m->len = (uint64_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    m->data = malloc(m->len);
    size_t got = m->data ? fread(m->data, 1, m->len, f) : 0;
    fclose(f);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return got == m->len ? 0 : -1;
}

/* Port setup as a driver does it: CLB, FB, FRE, ST, all interrupts enabled. */
static void port_start(int port)
{
    wr(preg(port, AHCI_PX_CLB), CLB(port));
    wr(preg(port, AHCI_PX_CLBU), 0);
    wr(preg(port, AHCI_PX_FB), FB(port));
    wr(preg(port, AHCI_PX_FBU), 0);
    wr(preg(port, AHCI_PX_SERR), 0xffffffff);
    wr(preg(port, AHCI_PX_IS), 0xffffffff);
    wr(preg(port, AHCI_PX_IE), 0xffffffff);
    wr(preg(port, AHCI_PX_CMD), AHCI_PX_CMD_FRE);
    wr(preg(port, AHCI_PX_CMD), AHCI_PX_CMD_FRE | AHCI_PX_CMD_ST);
}

static int setup(void)
{
    memset(&R, 0, sizeof(R));
    if (guestmem_add(&R.mem, "ram", 0, RAM_SIZE, false) < 0) {
        return -1;
    }
    R.disk.len = DISK_SECTORS * 512ull;
    R.disk.data = malloc(R.disk.len);
    if (!R.disk.data || make_iso(&R.iso) < 0) {
        return -1;
    }
    for (uint64_t i = 0; i < R.disk.len; i++) {
        R.disk.data[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    R.disk_be = (struct storage_backend){&R.disk, md_pread, md_pwrite, md_flush, R.disk.len, false};
    R.iso_be = (struct storage_backend){&R.iso, md_pread, NULL, NULL, R.iso.len, true};
    R.s = ahci_new(&R.mem);
    if (!R.s || ahci_attach_disk(R.s, DISK_PORT, &R.disk_be, "SN-1234") < 0 ||
        ahci_attach_cdrom(R.s, CD_PORT, &R.iso_be) < 0) {
        return -1;
    }
    struct irq_line intx = {.set = irq_record, .opaque = &R.irq, .line = 11};
    struct pci_msi_sink msi = {.send = msi_count, .opaque = &R.msis};
    pci_dev_attach(ahci_pci(R.s), NULL, NULL, &intx, &msi);
    pci_dev_config_write(ahci_pci(R.s), PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    wr(AHCI_REG_GHC, AHCI_GHC_AE | AHCI_GHC_IE);
    port_start(DISK_PORT);
    port_start(CD_PORT);
    return 0;
}

static int teardown(void)
{
    ahci_free(R.s);
    guestmem_free(&R.mem);
    free(R.disk.data);
    free(R.iso.data);
    return 0;
}

struct prd {
    uint64_t addr;
    uint32_t len;
};

/* Writes command header `slot` and its table, then issues it through PxCI. */
static void issue(int port, int slot, const uint8_t fis[20], const uint8_t *cdb, bool write,
                  const struct prd *prds, uint32_t nprd)
{
    uint32_t hdr[8] = {0};
    hdr[0] = 5u | (cdb ? 1u << 5 : 0) | (write ? 1u << 6 : 0) | nprd << 16;
    hdr[2] = CTBA(slot);
    guestmem_write(&R.mem, CLB(port) + 32ull * slot, hdr, sizeof(hdr));
    uint8_t tbl[0x80] = {0};
    memcpy(tbl, fis, 20);
    if (cdb) {
        memcpy(tbl + 0x40, cdb, 12);
    }
    guestmem_write(&R.mem, CTBA(slot), tbl, sizeof(tbl));
    for (uint32_t i = 0; i < nprd; i++) {
        uint32_t e[4] = {(uint32_t)prds[i].addr, (uint32_t)(prds[i].addr >> 32), 0,
                         prds[i].len - 1};
        guestmem_write(&R.mem, CTBA(slot) + 0x80 + 16ull * i, e, sizeof(e));
    }
    wr(preg(port, AHCI_PX_CI), 1u << slot);
}

static void ata_fis(uint8_t f[20], uint8_t cmd, uint64_t lba, uint16_t count)
{
    memset(f, 0, 20);
    f[0] = 0x27;
    f[1] = 0x80;
    f[2] = cmd;
    f[4] = (uint8_t)lba;
    f[5] = (uint8_t)(lba >> 8);
    f[6] = (uint8_t)(lba >> 16);
    f[7] = 0x40 | (uint8_t)((lba >> 24) & 0x0f);
    f[8] = (uint8_t)(lba >> 24);
    f[9] = (uint8_t)(lba >> 32);
    f[10] = (uint8_t)(lba >> 40);
    f[12] = (uint8_t)count;
    f[13] = (uint8_t)(count >> 8);
}

/* Restart a port after a task file error, as Linux's error handler does. */
static void port_recover(int port)
{
    wr(preg(port, AHCI_PX_CMD), AHCI_PX_CMD_FRE);
    CU_ASSERT_EQUAL(rd(preg(port, AHCI_PX_CI)), 0);
    CU_ASSERT_EQUAL(rd(preg(port, AHCI_PX_CMD)) & AHCI_PX_CMD_CR, 0);
    wr(preg(port, AHCI_PX_IS), 0xffffffff);
    wr(preg(port, AHCI_PX_CMD), AHCI_PX_CMD_FRE | AHCI_PX_CMD_ST);
}

static bool port_ok(int port)
{
    return rd(preg(port, AHCI_PX_CI)) == 0 && !(rd(preg(port, AHCI_PX_TFD)) & 0x89);
}

static void test_identity_registers(void)
{
    struct pci_dev *d = ahci_pci(R.s);
    CU_ASSERT_EQUAL(pci_dev_config_read(d, PCI_VENDOR_ID, 2), 0x8086);
    CU_ASSERT_EQUAL(pci_dev_config_read(d, PCI_DEVICE_ID, 2), 0x2922);
    CU_ASSERT_EQUAL(pci_dev_config_read(d, PCI_CLASS_PROG, 1), 0x01);
    CU_ASSERT_EQUAL(pci_dev_config_read(d, PCI_CLASS_DEVICE, 2), 0x0106);
    CU_ASSERT_EQUAL(d->bars[AHCI_ABAR].type, PCI_BAR_MEM32);
    CU_ASSERT_NOT_EQUAL(d->msi_cap, 0);
    uint32_t cap = rd(AHCI_REG_CAP);
    CU_ASSERT_EQUAL(cap & 0x1f, AHCI_NUM_PORTS - 1);
    CU_ASSERT_EQUAL((cap >> 8) & 0x1f, 31);
    CU_ASSERT_TRUE(cap & (1u << 18)); /* SAM */
    CU_ASSERT_TRUE(cap & (1u << 31)); /* S64A */
    CU_ASSERT_EQUAL(rd(AHCI_REG_VS), 0x00010300);
    CU_ASSERT_EQUAL(rd(AHCI_REG_PI), 0x3f);
    CU_ASSERT_TRUE(rd(AHCI_REG_GHC) & AHCI_GHC_AE);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_SIG)), AHCI_SIG_ATA);
    CU_ASSERT_EQUAL(rd(preg(CD_PORT, AHCI_PX_SIG)), AHCI_SIG_ATAPI);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_SSTS)) & 0xf, 3);
    CU_ASSERT_EQUAL(rd(preg(2, AHCI_PX_SSTS)) & 0xf, 0);
    uint32_t cmd = rd(preg(DISK_PORT, AHCI_PX_CMD));
    CU_ASSERT_TRUE(cmd & AHCI_PX_CMD_CR);
    CU_ASSERT_TRUE(cmd & AHCI_PX_CMD_FR);
    CU_ASSERT_TRUE(rd(preg(CD_PORT, AHCI_PX_CMD)) & AHCI_PX_CMD_ATAPI);
    /* Narrow reads see the right bytes. */
    CU_ASSERT_EQUAL(ahci_abar_read(R.s, AHCI_REG_VS + 2, 2), 0x0001);
    /* The FIS receive area got the signature when FRE was set. */
    CU_ASSERT_EQUAL(gp(FB(CD_PORT) + 0x40)[0], 0x34);
    CU_ASSERT_EQUAL(gp(FB(CD_PORT) + 0x40)[5], 0x14);
    CU_ASSERT_EQUAL(gp(FB(CD_PORT) + 0x40)[6], 0xeb);
}

static void test_identify_device(void)
{
    uint8_t f[20];
    ata_fis(f, 0xec, 0, 0);
    f[7] = 0;
    struct prd p = {DATA, 512};
    memset(gp(DATA), 0xcc, 512);
    int raises = R.irq.raises;
    issue(DISK_PORT, 3, f, NULL, false, &p, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    uint16_t w[256];
    guestmem_read(&R.mem, DATA, w, sizeof(w));
    char model[41];
    for (int i = 0; i < 20; i++) {
        model[2 * i] = (char)(w[27 + i] >> 8);
        model[2 * i + 1] = (char)w[27 + i];
    }
    model[40] = 0;
    CU_ASSERT_STRING_EQUAL(model, "LODGE HARDDISK                          ");
    CU_ASSERT_EQUAL(w[10] >> 8, 'S');
    CU_ASSERT_EQUAL(w[10] & 0xff, 'N');
    CU_ASSERT_TRUE(w[83] & (1u << 10)); /* LBA48 */
    CU_ASSERT_TRUE(w[49] & (1u << 9));  /* LBA */
    uint64_t n48 = w[100] | (uint64_t)w[101] << 16 | (uint64_t)w[102] << 32;
    CU_ASSERT_EQUAL(n48, DISK_SECTORS);
    CU_ASSERT_EQUAL(w[60] | (uint32_t)w[61] << 16, DISK_SECTORS);
    uint8_t sum = 0;
    for (int i = 0; i < 512; i++) {
        sum = (uint8_t)(sum + ((uint8_t *)w)[i]);
    }
    CU_ASSERT_EQUAL(w[255] & 0xff, 0xa5);
    CU_ASSERT_EQUAL(sum, 0);
    /* PIO data-in: a PIO setup FIS with the ending status, and the D2H FIS. */
    uint32_t is = rd(preg(DISK_PORT, AHCI_PX_IS));
    CU_ASSERT_TRUE(is & AHCI_PX_IS_PSS);
    CU_ASSERT_TRUE(is & AHCI_PX_IS_DHRS);
    CU_ASSERT_EQUAL(gp(FB(DISK_PORT) + 0x20)[0], 0x5f);
    CU_ASSERT_EQUAL(gp(FB(DISK_PORT) + 0x20)[2] & 0xc9, 0x40);
    CU_ASSERT_EQUAL(gp(FB(DISK_PORT) + 0x40)[0], 0x34);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_TFD)) & 0xff, 0x50);
    /* PRDBC in the command header says 512 bytes moved. */
    uint32_t prdbc;
    guestmem_read(&R.mem, CLB(DISK_PORT) + 32 * 3 + 4, &prdbc, 4);
    CU_ASSERT_EQUAL(prdbc, 512);
    /* INTx: IS shows the port, the line went up, and acknowledging lowers it. */
    CU_ASSERT_EQUAL(rd(AHCI_REG_IS), 1u << DISK_PORT);
    CU_ASSERT_EQUAL(R.irq.raises, raises + 1);
    CU_ASSERT_EQUAL(R.irq.level, 1);
    wr(preg(DISK_PORT, AHCI_PX_IS), is);
    wr(AHCI_REG_IS, 1u << DISK_PORT);
    CU_ASSERT_EQUAL(rd(AHCI_REG_IS), 0);
    CU_ASSERT_EQUAL(R.irq.level, 0);
}

static void test_read_dma_ext(void)
{
    /* 8 sectors from LBA 100 into three odd-sized pieces. */
    uint8_t f[20];
    ata_fis(f, 0x25, 100, 8);
    struct prd p[3] = {{DATA, 1000}, {DATA + 0x10000, 24}, {DATA + 0x20000, 3072}};
    memset(gp(DATA), 0, 0x30000);
    issue(DISK_PORT, 0, f, NULL, false, p, 3);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    const uint8_t *want = R.disk.data + 100 * 512;
    CU_ASSERT_EQUAL(memcmp(gp(DATA), want, 1000), 0);
    CU_ASSERT_EQUAL(memcmp(gp(DATA + 0x10000), want + 1000, 24), 0);
    CU_ASSERT_EQUAL(memcmp(gp(DATA + 0x20000), want + 1024, 3072), 0);
    CU_ASSERT_FALSE(rd(preg(DISK_PORT, AHCI_PX_IS)) & AHCI_PX_IS_PSS);
    wr(preg(DISK_PORT, AHCI_PX_IS), 0xffffffff);
}

static void test_write_then_read(void)
{
    uint8_t f[20];
    for (int i = 0; i < 4096; i++) {
        gp(DATA)[i] = (uint8_t)(0xa5 ^ i);
    }
    struct prd p = {DATA, 4096};
    ata_fis(f, 0xca, 1500, 8); /* WRITE DMA (LBA28) */
    issue(DISK_PORT, 5, f, NULL, true, &p, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(memcmp(R.disk.data + 1500 * 512, gp(DATA), 4096), 0);
    struct prd q = {DATA + 0x8000, 4096};
    memset(gp(DATA + 0x8000), 0, 4096);
    ata_fis(f, 0x25, 1500, 8);
    issue(DISK_PORT, 6, f, NULL, false, &q, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(memcmp(gp(DATA + 0x8000), gp(DATA), 4096), 0);
    int flushes = R.disk.flushes;
    ata_fis(f, 0xea, 0, 0);
    issue(DISK_PORT, 7, f, NULL, false, NULL, 0);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(R.disk.flushes, flushes + 1);
    wr(preg(DISK_PORT, AHCI_PX_IS), 0xffffffff);
}

/* The command must end with a task file error and the port must be recoverable. */
static void expect_tf_error(int port, int slot, uint32_t extra_is)
{
    uint32_t is = rd(preg(port, AHCI_PX_IS));
    CU_ASSERT_TRUE(is & AHCI_PX_IS_TFES);
    CU_ASSERT_TRUE((is & extra_is) == extra_is);
    CU_ASSERT_TRUE(rd(preg(port, AHCI_PX_TFD)) & 0x01);
    CU_ASSERT_TRUE(rd(preg(port, AHCI_PX_CI)) & (1u << slot));
    CU_ASSERT_EQUAL((rd(preg(port, AHCI_PX_CMD)) >> 8) & 0x1f, (uint32_t)slot);
    port_recover(port);
}

static void test_lba_out_of_range(void)
{
    uint8_t f[20];
    ata_fis(f, 0x25, DISK_SECTORS - 1, 2);
    struct prd p = {DATA, 1024};
    issue(DISK_PORT, 1, f, NULL, false, &p, 1);
    CU_ASSERT_EQUAL((rd(preg(DISK_PORT, AHCI_PX_TFD)) >> 8) & 0x10, 0x10); /* IDNF */
    expect_tf_error(DISK_PORT, 1, 0);
    /* Nothing else runs while the error is pending; after recovery commands work. */
    ata_fis(f, 0x25, 0, 1);
    struct prd q = {DATA, 512};
    issue(DISK_PORT, 2, f, NULL, false, &q, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
}

static void test_hostile_prdt(void)
{
    uint8_t f[20];
    /* A buffer beyond guest RAM. */
    ata_fis(f, 0x25, 0, 8);
    struct prd far = {RAM_SIZE - 512, 4096};
    issue(DISK_PORT, 0, f, NULL, false, &far, 1);
    expect_tf_error(DISK_PORT, 0, 0);
    /* An address that wraps around 2^64. */
    struct prd wrap = {0xfffffffffffff000ull, 0x400000};
    issue(DISK_PORT, 0, f, NULL, false, &wrap, 1);
    expect_tf_error(DISK_PORT, 0, 0);
    /* A write whose source lies outside RAM must not touch the disk. */
    uint8_t before[4096];
    memcpy(before, R.disk.data, sizeof(before));
    ata_fis(f, 0x35, 0, 8);
    struct prd out = {0x7ffffffff000ull, 4096};
    issue(DISK_PORT, 0, f, NULL, true, &out, 1);
    expect_tf_error(DISK_PORT, 0, 0);
    CU_ASSERT_EQUAL(memcmp(before, R.disk.data, sizeof(before)), 0);
    /* A PRDT shorter than the transfer: overflow. */
    ata_fis(f, 0x25, 0, 8);
    struct prd shorty = {DATA, 2048};
    issue(DISK_PORT, 0, f, NULL, false, &shorty, 1);
    expect_tf_error(DISK_PORT, 0, AHCI_PX_IS_OFS);
    /* 65535 entries whose table runs off the end of RAM: the command table sits in
     * the last page, so entries past it are unreadable. */
    uint32_t hdr[8] = {5u | 65535u << 16, 0, RAM_SIZE - 0x1000, 0};
    guestmem_write(&R.mem, CLB(DISK_PORT) + 32 * 9, hdr, sizeof(hdr));
    ata_fis(f, 0x25, 0, 8); /* 4 KiB: needs 2048 two-byte entries, 248 fit */
    guestmem_write(&R.mem, RAM_SIZE - 0x1000, f, 20);
    for (uint32_t i = 0; i < (0x1000 - 0x80) / 16; i++) {
        uint32_t e[4] = {DATA, 0, 0, 0}; /* two bytes each */
        guestmem_write(&R.mem, RAM_SIZE - 0x1000 + 0x80 + 16 * i, e, sizeof(e));
    }
    wr(preg(DISK_PORT, AHCI_PX_CI), 1u << 9);
    expect_tf_error(DISK_PORT, 9, 0);
    /* A command table outside RAM. */
    hdr[0] = 5u | 1u << 16;
    hdr[2] = 0xfffff000u;
    guestmem_write(&R.mem, CLB(DISK_PORT) + 32 * 4, hdr, sizeof(hdr));
    wr(preg(DISK_PORT, AHCI_PX_CI), 1u << 4);
    expect_tf_error(DISK_PORT, 4, AHCI_PX_IS_HBFS);
    /* A command list outside RAM. */
    wr(preg(DISK_PORT, AHCI_PX_CMD), AHCI_PX_CMD_FRE);
    wr(preg(DISK_PORT, AHCI_PX_CLB), 0xfffffc00u);
    wr(preg(DISK_PORT, AHCI_PX_CLBU), 0xffffffffu);
    wr(preg(DISK_PORT, AHCI_PX_CMD), AHCI_PX_CMD_FRE | AHCI_PX_CMD_ST);
    wr(preg(DISK_PORT, AHCI_PX_CI), 1);
    expect_tf_error(DISK_PORT, 0, AHCI_PX_IS_HBFS);
    wr(preg(DISK_PORT, AHCI_PX_CMD), AHCI_PX_CMD_FRE);
    wr(preg(DISK_PORT, AHCI_PX_CLB), CLB(DISK_PORT));
    wr(preg(DISK_PORT, AHCI_PX_CLBU), 0);
    wr(preg(DISK_PORT, AHCI_PX_CMD), AHCI_PX_CMD_FRE | AHCI_PX_CMD_ST);
    /* The HBA still works. */
    ata_fis(f, 0x25, 0, 1);
    struct prd ok = {DATA, 512};
    issue(DISK_PORT, 0, f, NULL, false, &ok, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(memcmp(gp(DATA), R.disk.data, 512), 0);
}

/* Sends a PACKET command; returns the ATA status. */
static uint8_t packet(const uint8_t cdb[12], uint64_t buf, uint32_t len)
{
    uint8_t f[20];
    ata_fis(f, 0xa0, 0, 0);
    f[3] = 1; /* DMA */
    f[5] = (uint8_t)len;
    f[6] = (uint8_t)(len >> 8);
    struct prd p = {buf, len};
    issue(CD_PORT, 0, f, cdb, false, &p, len ? 1 : 0);
    uint8_t st = (uint8_t)rd(preg(CD_PORT, AHCI_PX_TFD));
    if (st & 1) {
        port_recover(CD_PORT);
    }
    wr(preg(CD_PORT, AHCI_PX_IS), 0xffffffff);
    return st;
}

static void test_atapi_identify_and_inquiry(void)
{
    uint8_t f[20];
    /* IDENTIFY DEVICE on a packet device aborts and shows the ATAPI signature. */
    ata_fis(f, 0xec, 0, 0);
    struct prd p = {DATA, 512};
    issue(CD_PORT, 2, f, NULL, false, &p, 1);
    CU_ASSERT_EQUAL(gp(FB(CD_PORT) + 0x40)[5], 0x14);
    CU_ASSERT_EQUAL(gp(FB(CD_PORT) + 0x40)[6], 0xeb);
    expect_tf_error(CD_PORT, 2, 0);
    ata_fis(f, 0xa1, 0, 0);
    issue(CD_PORT, 2, f, NULL, false, &p, 1);
    CU_ASSERT_TRUE(port_ok(CD_PORT));
    uint16_t w0;
    guestmem_read(&R.mem, DATA, &w0, 2);
    CU_ASSERT_EQUAL(w0 >> 14, 2);         /* ATAPI */
    CU_ASSERT_EQUAL((w0 >> 8) & 0x1f, 5); /* CD-ROM */
    CU_ASSERT_TRUE(w0 & 0x80);            /* removable */
    wr(preg(CD_PORT, AHCI_PX_IS), 0xffffffff);

    uint8_t inq[12] = {0x12, 0, 0, 0, 36};
    memset(gp(DATA), 0, 64);
    CU_ASSERT_EQUAL(packet(inq, DATA, 36) & 1, 0);
    CU_ASSERT_EQUAL(gp(DATA)[0], 0x05);
    CU_ASSERT_EQUAL(gp(DATA)[1], 0x80);
    CU_ASSERT_EQUAL(memcmp(gp(DATA) + 8, "LODGE   ", 8), 0);
}

static void test_atapi_capacity_read_toc(void)
{
    uint64_t blocks = R.iso.len / 2048;
    uint8_t rc[12] = {0x25};
    CU_ASSERT_EQUAL(packet(rc, DATA, 8) & 1, 0);
    const uint8_t *b = gp(DATA);
    CU_ASSERT_EQUAL((uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3], blocks - 1);
    CU_ASSERT_EQUAL(b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7], 2048);

    /* The primary volume descriptor at LBA 16, and two blocks from 17 via READ(12). */
    uint8_t r10[12] = {0x28, 0, 0, 0, 0, 16, 0, 0, 1};
    memset(gp(DATA), 0, 4096);
    CU_ASSERT_EQUAL(packet(r10, DATA, 2048) & 1, 0);
    CU_ASSERT_EQUAL(memcmp(gp(DATA), "\001CD001", 6), 0);
    CU_ASSERT_EQUAL(memcmp(gp(DATA) + 40, "LODGETEST", 9), 0);
    uint8_t r12[12] = {0xa8, 0, 0, 0, 0, 17, 0, 0, 0, 2};
    CU_ASSERT_EQUAL(packet(r12, DATA, 4096) & 1, 0);
    CU_ASSERT_EQUAL(memcmp(gp(DATA), R.iso.data + 17 * 2048, 4096), 0);
    /* The file's contents are somewhere on the disc, read through READ(10). */
    bool found = false;
    for (uint32_t lba = 18; lba < blocks && !found; lba++) {
        uint8_t cdb[12] = {0x28, 0, 0, 0, (uint8_t)(lba >> 8), (uint8_t)lba, 0, 0, 1};
        packet(cdb, DATA, 2048);
        found = !memcmp(gp(DATA), "hello from the lodge cd\n", 24);
    }
    CU_ASSERT_TRUE(found);

    /* Reading past the end: CHECK CONDITION, ILLEGAL REQUEST in the error register. */
    uint8_t past[12] = {0x28,
                        0,
                        (uint8_t)(blocks >> 24),
                        (uint8_t)(blocks >> 16),
                        (uint8_t)(blocks >> 8),
                        (uint8_t)blocks,
                        0,
                        0,
                        1};
    uint8_t f[20];
    ata_fis(f, 0xa0, 0, 0);
    f[3] = 1;
    struct prd p = {DATA, 2048};
    issue(CD_PORT, 0, f, past, false, &p, 1);
    CU_ASSERT_EQUAL(rd(preg(CD_PORT, AHCI_PX_TFD)) >> 12, ATAPI_SENSE_ILLEGAL_REQUEST);
    expect_tf_error(CD_PORT, 0, 0);
    uint8_t rs[12] = {0x03, 0, 0, 0, 18};
    CU_ASSERT_EQUAL(packet(rs, DATA, 18) & 1, 0);
    CU_ASSERT_EQUAL(gp(DATA)[2] & 0xf, ATAPI_SENSE_ILLEGAL_REQUEST);
    CU_ASSERT_EQUAL(gp(DATA)[12], ATAPI_ASC_LBA_OUT_OF_RANGE);

    /* READ TOC format 0, LBA then MSF: track 1 at 0, lead-out at the end. */
    uint8_t toc[12] = {0x43, 0, 0, 0, 0, 0, 1, 0, 32};
    CU_ASSERT_EQUAL(packet(toc, DATA, 32) & 1, 0);
    b = gp(DATA);
    CU_ASSERT_EQUAL(b[0] << 8 | b[1], 18);
    CU_ASSERT_EQUAL(b[2], 1);
    CU_ASSERT_EQUAL(b[3], 1);
    CU_ASSERT_EQUAL(b[6], 1);
    CU_ASSERT_EQUAL(b[8] | b[9] | b[10] | b[11], 0);
    CU_ASSERT_EQUAL(b[14], 0xaa);
    CU_ASSERT_EQUAL((uint32_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19], blocks);
    toc[1] = 2;
    CU_ASSERT_EQUAL(packet(toc, DATA, 32) & 1, 0);
    uint64_t fr = blocks + 150;
    CU_ASSERT_EQUAL(b[9], 0);
    CU_ASSERT_EQUAL(b[10], 2); /* track 1 starts at 00:02:00 */
    CU_ASSERT_EQUAL(b[17], fr / 4500);
    CU_ASSERT_EQUAL(b[18], (fr / 75) % 60);
    CU_ASSERT_EQUAL(b[19], fr % 75);
}

static void test_atapi_media_change(void)
{
    uint8_t tur[12] = {0x00};
    uint8_t rs[12] = {0x03, 0, 0, 0, 18};
    CU_ASSERT_EQUAL(packet(tur, 0, 0) & 1, 0);
    CU_ASSERT_EQUAL(ahci_cdrom_eject(R.s, CD_PORT, false), 0);
    /* The removal is a unit attention first, then NOT READY / MEDIUM NOT PRESENT. */
    CU_ASSERT_EQUAL(packet(tur, 0, 0) & 1, 1);
    CU_ASSERT_EQUAL(packet(tur, 0, 0) & 1, 1);
    packet(rs, DATA, 18);
    CU_ASSERT_EQUAL(gp(DATA)[2] & 0xf, ATAPI_SENSE_NOT_READY);
    CU_ASSERT_EQUAL(gp(DATA)[12], ATAPI_ASC_NO_MEDIUM);
    CU_ASSERT_EQUAL(ahci_cdrom_insert(R.s, CD_PORT, &R.iso_be), 0);
    CU_ASSERT_EQUAL(packet(tur, 0, 0) & 1, 1);
    packet(rs, DATA, 18);
    CU_ASSERT_EQUAL(gp(DATA)[2] & 0xf, ATAPI_SENSE_UNIT_ATTENTION);
    CU_ASSERT_EQUAL(gp(DATA)[12], ATAPI_ASC_MEDIUM_CHANGED);
    CU_ASSERT_EQUAL(packet(tur, 0, 0) & 1, 0);
    /* A guest lock refuses a host eject unless forced. */
    uint8_t lock[12] = {0x1e, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(packet(lock, 0, 0) & 1, 0);
    CU_ASSERT_EQUAL(ahci_cdrom_eject(R.s, CD_PORT, false), -EBUSY);
    CU_ASSERT_EQUAL(ahci_cdrom_eject(R.s, DISK_PORT, false), -EINVAL);
    lock[4] = 0;
    CU_ASSERT_EQUAL(packet(lock, 0, 0) & 1, 0);
}

static void test_msi(void)
{
    struct pci_dev *d = ahci_pci(R.s);
    unsigned cap = d->msi_cap;
    pci_dev_config_write(d, cap + 4, 0xfee00000, 4);
    pci_dev_config_write(d, cap + 8, 0, 4);
    pci_dev_config_write(d, cap + 12, 0x41, 2);
    pci_dev_config_write(d, cap + 2, PCI_MSI_CTRL_ENABLE, 2);
    int before = R.msis;
    int raises = R.irq.raises;
    uint8_t f[20];
    ata_fis(f, 0x25, 0, 1);
    struct prd p = {DATA, 512};
    issue(DISK_PORT, 0, f, NULL, false, &p, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(R.msis, before + 1);
    CU_ASSERT_EQUAL(R.irq.raises, raises); /* no INTx while MSI is on */
    wr(preg(DISK_PORT, AHCI_PX_IS), 0xffffffff);
    pci_dev_config_write(d, cap + 2, 0, 2);
    /* With GHC.IE clear no interrupt at all. */
    wr(AHCI_REG_GHC, AHCI_GHC_AE);
    issue(DISK_PORT, 0, f, NULL, false, &p, 1);
    CU_ASSERT_EQUAL(R.irq.level, 0);
    CU_ASSERT_EQUAL(R.msis, before + 1);
    wr(preg(DISK_PORT, AHCI_PX_IS), 0xffffffff);
    wr(AHCI_REG_GHC, AHCI_GHC_AE | AHCI_GHC_IE);
}

static void test_hba_reset(void)
{
    wr(AHCI_REG_GHC, AHCI_GHC_HR);
    CU_ASSERT_EQUAL(rd(AHCI_REG_GHC) & AHCI_GHC_HR, 0);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_CMD)) & AHCI_PX_CMD_ST, 0);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_CLB)), 0);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_SIG)), AHCI_SIG_ATA);
    /* Without ST a command is not run. */
    wr(preg(DISK_PORT, AHCI_PX_CI), 1);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_CI)), 0);
    wr(AHCI_REG_GHC, AHCI_GHC_AE | AHCI_GHC_IE);
    port_start(DISK_PORT);
    port_start(CD_PORT);
    /* Software reset through two control FISes leaves the device ready. */
    uint8_t f[20] = {0x27, 0x00};
    f[15] = 0x04;
    issue(DISK_PORT, 0, f, NULL, false, NULL, 0);
    f[15] = 0;
    issue(DISK_PORT, 0, f, NULL, false, NULL, 0);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_SIG)), AHCI_SIG_ATA);
}

static void test_cli_parse(void)
{
    struct machine_storage_config sc = {0};
    char why[256];
    CU_ASSERT_EQUAL(
        machine_storage_parse_disk(&sc, "a.qcow2,format=qcow2,readonly=on", why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(sc.drives[0].path, "a.qcow2");
    CU_ASSERT_EQUAL(sc.drives[0].format, IMAGE_FORMAT_QCOW2);
    CU_ASSERT_TRUE(sc.drives[0].readonly);
    CU_ASSERT_FALSE(sc.drives[0].cdrom);
    CU_ASSERT_EQUAL(machine_storage_parse_disk(&sc, "b.img,format=vhd", why, sizeof(why)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "vhd"));
    CU_ASSERT_EQUAL(machine_storage_parse_disk(&sc, ",format=raw", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(machine_storage_parse_disk(&sc, "b.img,bogus=1", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(machine_storage_parse_cdrom(&sc, "x.iso", why, sizeof(why)), 0);
    CU_ASSERT_TRUE(sc.drives[1].cdrom);
    CU_ASSERT_EQUAL(sc.ndrives, 2);
    char paths[256];
    CU_ASSERT_EQUAL(machine_storage_boot_paths(&sc, true, paths, sizeof(paths)), 1);
    CU_ASSERT_STRING_EQUAL(paths, "/pci@i0cf8/pci8086,2922@1f/drive@1/disk@0\n");
    CU_ASSERT_EQUAL(machine_storage_boot_paths(&sc, false, paths, sizeof(paths)), 1);
    CU_ASSERT_STRING_EQUAL(paths, "/pci@i0cf8/pci8086,2922@1f/drive@0/disk@0\n");
    CU_ASSERT_EQUAL(machine_storage_boot_paths(&sc, false, paths, 8), 0);
    CU_ASSERT_STRING_EQUAL(paths, "");
    for (int i = 2; i < MACHINE_STORAGE_MAX; i++) {
        CU_ASSERT_EQUAL(machine_storage_parse_cdrom(&sc, "", why, sizeof(why)), 0);
    }
    CU_ASSERT_EQUAL(machine_storage_parse_cdrom(&sc, "y.iso", why, sizeof(why)), -EINVAL);
}

static void test_save_load(void)
{
    GByteArray *st = g_byte_array_new();
    uint8_t lock[12] = {0x1e, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(packet(lock, 0, 0) & 1, 0);
    wr(preg(DISK_PORT, AHCI_PX_IE), 0x1);
    CU_ASSERT_EQUAL_FATAL(ahci_device_ops.save(R.s, st), 0);
    /* Change what was saved, then bring it back. */
    wr(preg(DISK_PORT, AHCI_PX_IE), 0xffffffff);
    wr(preg(DISK_PORT, AHCI_PX_CMD), AHCI_PX_CMD_FRE);
    wr(preg(DISK_PORT, AHCI_PX_CLB), 0x12345400);
    uint8_t unlock[12] = {0x1e};
    CU_ASSERT_EQUAL(packet(unlock, 0, 0) & 1, 0);
    /* A truncated stream and one with trailing bytes change nothing. */
    CU_ASSERT_EQUAL(ahci_device_ops.load(R.s, st->data, st->len - 3), -EINVAL);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_CLB)), 0x12345400);
    g_byte_array_append(st, (const uint8_t *)"x", 1);
    CU_ASSERT_EQUAL(ahci_device_ops.load(R.s, st->data, st->len), -EINVAL);
    g_byte_array_set_size(st, st->len - 1);
    CU_ASSERT_EQUAL(ahci_device_ops.load(R.s, st->data, st->len), 0);
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_CLB)), CLB(DISK_PORT));
    CU_ASSERT_EQUAL(rd(preg(DISK_PORT, AHCI_PX_IE)), 0x1);
    CU_ASSERT_TRUE(rd(preg(DISK_PORT, AHCI_PX_CMD)) & AHCI_PX_CMD_ST);
    CU_ASSERT_EQUAL(ahci_cdrom_eject(R.s, CD_PORT, false), -EBUSY); /* the lock came back */
    CU_ASSERT_EQUAL(packet(unlock, 0, 0) & 1, 0);
    /* The restored port runs commands. */
    uint8_t f[20];
    ata_fis(f, 0x25, 7, 1);
    struct prd p = {DATA, 512};
    issue(DISK_PORT, 0, f, NULL, false, &p, 1);
    CU_ASSERT_TRUE(port_ok(DISK_PORT));
    CU_ASSERT_EQUAL(memcmp(gp(DATA), R.disk.data + 7 * 512, 512), 0);
    wr(preg(DISK_PORT, AHCI_PX_IE), 0xffffffff);
    wr(preg(DISK_PORT, AHCI_PX_IS), 0xffffffff);
    g_byte_array_free(st, TRUE);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("ahci", setup, teardown);
    CU_add_test(s, "identity registers", test_identity_registers);
    CU_add_test(s, "IDENTIFY DEVICE", test_identify_device);
    CU_add_test(s, "READ DMA EXT into a split PRDT", test_read_dma_ext);
    CU_add_test(s, "WRITE DMA then read back, FLUSH", test_write_then_read);
    CU_add_test(s, "LBA out of range", test_lba_out_of_range);
    CU_add_test(s, "hostile PRDTs", test_hostile_prdt);
    CU_add_test(s, "ATAPI identify and INQUIRY", test_atapi_identify_and_inquiry);
    CU_add_test(s, "ATAPI READ CAPACITY, READ, READ TOC", test_atapi_capacity_read_toc);
    CU_add_test(s, "ATAPI media change", test_atapi_media_change);
    CU_add_test(s, "MSI and GHC.IE", test_msi);
    CU_add_test(s, "HBA and software reset", test_hba_reset);
    CU_add_test(s, "--disk/--cdrom parsing, boot paths", test_cli_parse);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    if (CU_get_run_summary()->nSuitesFailed) {
        fails++;
    }
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
