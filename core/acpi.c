#include "core/acpi.h"

#include <errno.h>
#include <string.h>

#define ACPI_HDR_LEN 36
#define ACPI_OEM_ID "LODGE "
#define ACPI_OEM_TABLE "LODGEVM "

struct acpi_builder {
    uint8_t *buf;  /* table area */
    size_t len;    /* its size */
    size_t used;   /* bytes allocated so far */
    uint64_t base; /* guest address of buf[0] */
};

static void put8(uint8_t *p, uint8_t v)
{
    p[0] = v;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++) {
        sum = (uint8_t)(sum + p[i]);
    }
    return (uint8_t)(0 - sum);
}

/* Reserve len bytes aligned to align; NULL when the area is full. */
static uint8_t *acpi_alloc(struct acpi_builder *b, size_t len, size_t align, uint64_t *gpa)
{
    size_t off = (b->used + align - 1) & ~(align - 1);
    if (off > b->len || len > b->len - off) {
        return NULL;
    }
    b->used = off + len;
    memset(b->buf + off, 0, len);
    *gpa = b->base + off;
    return b->buf + off;
}

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put32(t + 4, len);
    put8(t + 8, rev);
    memcpy(t + 10, ACPI_OEM_ID, 6);
    memcpy(t + 16, ACPI_OEM_TABLE, 8);
    put32(t + 24, 1);
    memcpy(t + 28, "LODG", 4);
    put32(t + 32, 1);
}

static void acpi_finish(uint8_t *t, uint32_t len)
{
    t[9] = 0;
    t[9] = acpi_checksum(t, len);
}

/* Generic Address Structure (ACPI 6.4 section 5.2.3.2). */
static void acpi_gas(uint8_t *p, uint8_t space, uint8_t bits, uint8_t access, uint64_t addr)
{
    p[0] = space; /* 0 system memory, 1 system I/O */
    p[1] = bits;
    p[2] = 0;
    p[3] = access; /* 1 byte, 2 word, 3 dword, 4 qword */
    put64(p + 4, addr);
}

#define GAS_IO 1
#define GAS_MEM 0

static int acpi_build_dsdt(struct acpi_builder *b, const struct acpi_config *cfg, uint64_t *gpa)
{
    /* Name (\_S5, Package (4) { typ, typ, 0, 0 }): what Linux reads to power off.
     * NameOp '_S5_' PackageOp PkgLength NumElements BytePrefix typ BytePrefix typ Zero Zero */
    const uint8_t aml[] = {0x08, '_',  'S',         '5',  '_',         0x12, 0x08,
                           0x04, 0x0a, cfg->s5_typ, 0x0a, cfg->s5_typ, 0x00, 0x00};
    /* Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_ADR, 0)
     * Name (_UID, 0) } }: bus 0 with default resources and no _PRT (INTx routing is in
     * each function's Interrupt Line register, see docs/virtio.md). */
    const uint8_t pci[] = {0x10, 0x23, '\\', '_', 'S', 'B',  '_',  0x5b, 0x82, 0x1b, 'P',  'C',
                           'I',  '0',  0x08, '_', 'H', 'I',  'D',  0x0c, 0x41, 0xd0, 0x0a, 0x03,
                           0x08, '_',  'A',  'D', 'R', 0x00, 0x08, '_',  'U',  'I',  'D',  0x00};
    size_t npci = cfg->pci_root ? sizeof(pci) : 0;
    uint32_t len = (uint32_t)(ACPI_HDR_LEN + sizeof(aml) + npci);
    uint8_t *t = acpi_alloc(b, len, 16, gpa);
    if (!t) {
        return -ENOSPC;
    }
    acpi_header(t, "DSDT", len, 2);
    memcpy(t + ACPI_HDR_LEN, aml, sizeof(aml));
    memcpy(t + ACPI_HDR_LEN + sizeof(aml), pci, npci);
    acpi_finish(t, len);
    return 0;
}

static int acpi_build_fadt(struct acpi_builder *b, const struct acpi_config *cfg, uint64_t facs,
                           uint64_t dsdt, uint64_t *gpa)
{
    const uint32_t len = 268; /* FADT revision 5 */
    uint8_t *t = acpi_alloc(b, len, 16, gpa);
    if (!t) {
        return -ENOSPC;
    }
    uint32_t pm = cfg->pm_base;
    acpi_header(t, "FACP", len, 5);
    put32(t + 36, (uint32_t)facs);
    put32(t + 40, (uint32_t)dsdt);
    put8(t + 45, 0);             /* preferred PM profile: unspecified */
    put16(t + 46, cfg->sci_irq); /* SCI_INT */
    put32(t + 48, 0);            /* SMI_CMD 0: always in ACPI mode, no SMM handshake */
    put32(t + 56, pm);           /* PM1a_EVT_BLK */
    put32(t + 64, pm + 4);       /* PM1a_CNT_BLK */
    put32(t + 76, pm + 8);       /* PM_TMR_BLK */
    put32(t + 80, pm + 0x20);    /* GPE0_BLK */
    put8(t + 88, 4);             /* PM1_EVT_LEN */
    put8(t + 89, 2);             /* PM1_CNT_LEN */
    put8(t + 91, 4);             /* PM_TMR_LEN */
    put8(t + 92, 4);             /* GPE0_BLK_LEN: 2 status + 2 enable bytes */
    put16(t + 96, 101);          /* P_LVL2_LAT > 100: C2 not supported */
    put16(t + 98, 1001);         /* P_LVL3_LAT > 1000: C3 not supported */
    put8(t + 108, 0x32);         /* CENTURY: CMOS index */
    put16(t + 109, 0x0003);      /* IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042 */
    /* Flags: WBINVD, PROC_C1, SLP_BUTTON (none as fixed feature), RESET_REG_SUP. */
    put32(t + 112, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 10));
    acpi_gas(t + 116, GAS_IO, 8, 1, ACPI_RESET_PORT);
    put8(t + 128, ACPI_RESET_VALUE);
    put8(t + 131, 1);     /* FADT minor version */
    put64(t + 132, facs); /* X_FIRMWARE_CTRL */
    put64(t + 140, dsdt); /* X_DSDT */
    acpi_gas(t + 148, GAS_IO, 32, 3, pm);
    acpi_gas(t + 172, GAS_IO, 16, 2, pm + 4);
    acpi_gas(t + 208, GAS_IO, 32, 3, pm + 8);
    acpi_gas(t + 220, GAS_IO, 32, 1, pm + 0x20);
    acpi_finish(t, len);
    return 0;
}

static int acpi_build_madt(struct acpi_builder *b, const struct acpi_config *cfg, uint64_t *gpa)
{
    uint32_t len =
        ACPI_HDR_LEN + 8 + 8u * (uint32_t)cfg->ncpus + 12 + (cfg->irq0_to_gsi2 ? 10 : 0) + 10;
    uint8_t *t = acpi_alloc(b, len, 16, gpa);
    if (!t) {
        return -ENOSPC;
    }
    acpi_header(t, "APIC", len, 3);
    put32(t + 36, ACPI_LAPIC_BASE);
    put32(t + 40, 1); /* PCAT_COMPAT: there are 8259s to mask */
    uint8_t *e = t + 44;
    for (int i = 0; i < cfg->ncpus; i++) {
        e[0] = 0; /* processor local APIC */
        e[1] = 8;
        e[2] = (uint8_t)i; /* ACPI processor UID */
        e[3] = (uint8_t)i; /* APIC ID */
        put32(e + 4, 1);   /* enabled */
        e += 8;
    }
    e[0] = 1; /* I/O APIC */
    e[1] = 12;
    e[2] = 0; /* I/O APIC ID */
    put32(e + 4, ACPI_IOAPIC_BASE);
    put32(e + 8, 0); /* GSI base */
    e += 12;
    if (cfg->irq0_to_gsi2) {
        e[0] = 2; /* interrupt source override: PIT IRQ0 is on GSI2 */
        e[1] = 10;
        e[2] = 0; /* ISA bus */
        e[3] = 0;
        put32(e + 4, 2);
        put16(e + 8, 0); /* conforms to the bus: edge, active high */
        e += 10;
    }
    e[0] = 2; /* SCI: level triggered, active high */
    e[1] = 10;
    e[2] = 0;
    e[3] = cfg->sci_irq;
    put32(e + 4, cfg->sci_irq);
    put16(e + 8, 0x000d); /* polarity 01 active high, trigger 11 level */
    acpi_finish(t, len);
    return 0;
}

static int acpi_build_hpet(struct acpi_builder *b, uint64_t *gpa)
{
    const uint32_t len = 56;
    uint8_t *t = acpi_alloc(b, len, 16, gpa);
    if (!t) {
        return -ENOSPC;
    }
    acpi_header(t, "HPET", len, 1);
    /* Event timer block ID: vendor 8086, legacy route capable, 64-bit counter,
     * 3 comparators, hardware revision 1 (same value as the capabilities register). */
    put32(t + 36, 0x8086a201u);
    acpi_gas(t + 40, GAS_MEM, 64, 0, ACPI_HPET_BASE);
    put8(t + 52, 0);  /* HPET number */
    put16(t + 53, 0); /* minimum clock tick in periodic mode */
    put8(t + 55, 0);  /* no page protection */
    acpi_finish(t, len);
    return 0;
}

int acpi_build(const struct acpi_config *cfg, uint64_t base, uint8_t *buf, size_t len)
{
    if (cfg->ncpus < 1 || cfg->ncpus > 255 || base + len > 0x100000000ull) {
        return -EINVAL;
    }
    struct acpi_builder b = {.buf = buf, .len = len, .used = 0, .base = base};
    uint64_t rsdp_gpa, facs, dsdt, fadt, madt, hpet = 0, rsdt, xsdt;
    uint8_t *rsdp = acpi_alloc(&b, 36, 16, &rsdp_gpa);
    if (!rsdp) {
        return -ENOSPC;
    }
    uint8_t *f = acpi_alloc(&b, 64, 64, &facs);
    if (!f) {
        return -ENOSPC;
    }
    memcpy(f, "FACS", 4);
    put32(f + 4, 64);
    put8(f + 32, 2); /* version */
    int rc = acpi_build_dsdt(&b, cfg, &dsdt);
    if (rc == 0) {
        rc = acpi_build_fadt(&b, cfg, facs, dsdt, &fadt);
    }
    if (rc == 0) {
        rc = acpi_build_madt(&b, cfg, &madt);
    }
    if (rc == 0 && cfg->hpet) {
        rc = acpi_build_hpet(&b, &hpet);
    }
    if (rc < 0) {
        return rc;
    }
    uint64_t entries[3] = {fadt, madt, hpet};
    uint32_t n = cfg->hpet ? 3 : 2;
    uint32_t rlen = ACPI_HDR_LEN + 4 * n, xlen = ACPI_HDR_LEN + 8 * n;
    uint8_t *r = acpi_alloc(&b, rlen, 16, &rsdt);
    uint8_t *x = r ? acpi_alloc(&b, xlen, 16, &xsdt) : NULL;
    if (!x) {
        return -ENOSPC;
    }
    acpi_header(r, "RSDT", rlen, 1);
    acpi_header(x, "XSDT", xlen, 1);
    for (uint32_t i = 0; i < n; i++) {
        put32(r + ACPI_HDR_LEN + 4 * i, (uint32_t)entries[i]);
        put64(x + ACPI_HDR_LEN + 8 * i, entries[i]);
    }
    acpi_finish(r, rlen);
    acpi_finish(x, xlen);

    memcpy(rsdp, "RSD PTR ", 8);
    memcpy(rsdp + 9, ACPI_OEM_ID, 6);
    put8(rsdp + 15, 2); /* revision 2: XSDT present */
    put32(rsdp + 16, (uint32_t)rsdt);
    put32(rsdp + 20, 36); /* length */
    put64(rsdp + 24, xsdt);
    rsdp[8] = acpi_checksum(rsdp, 20);
    rsdp[32] = acpi_checksum(rsdp, 36);
    return (int)b.used;
}
