/* Unit tests for core/acpi: walk the tables from the RSDP the way an OS does and check
 * checksums, pointers and the contents Linux relies on (MADT CPUs, FADT PM blocks, _S5). */
#include "core/acpi.h"

#include <CUnit/Basic.h>
#include <string.h>

#define BASE 0xe0000ull

static uint8_t area[ACPI_TABLES_SIZE];

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++) {
        s = (uint8_t)(s + p[i]);
    }
    return s;
}

/* Table at guest address gpa, checked for bounds, signature and checksum. */
static const uint8_t *table_at(uint64_t gpa, const char *sig)
{
    CU_ASSERT_TRUE_FATAL(gpa >= BASE && gpa + 36 <= BASE + sizeof(area));
    const uint8_t *t = area + (gpa - BASE);
    uint32_t len = get32(t + 4);
    CU_ASSERT_TRUE_FATAL(gpa + len <= BASE + sizeof(area));
    CU_ASSERT_EQUAL(memcmp(t, sig, 4), 0);
    CU_ASSERT_EQUAL(sum(t, len), 0);
    return t;
}

/* The table with this signature listed in the XSDT (checksums verified), or NULL. */
static const uint8_t *find_table(const char *sig)
{
    const uint8_t *rsdp = area;
    const uint8_t *x = table_at(get64(rsdp + 24), "XSDT");
    uint32_t n = (get32(x + 4) - 36) / 8;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t gpa = get64(x + 36 + 8 * i);
        const uint8_t *t = area + (gpa - BASE);
        if (memcmp(t, sig, 4) == 0) {
            return table_at(gpa, sig);
        }
    }
    return NULL;
}

static bool irq0_override = true;

static int build(int ncpus, bool hpet)
{
    struct acpi_config cfg = {.ncpus = ncpus,
                              .hpet = hpet,
                              .pm_base = 0x600,
                              .sci_irq = 9,
                              .s5_typ = 5,
                              .irq0_to_gsi2 = irq0_override};
    memset(area, 0xcc, sizeof(area));
    return acpi_build(&cfg, BASE, area, sizeof(area));
}

static void test_rsdp_checksums(void)
{
    CU_ASSERT_TRUE(build(2, false) > 0);
    CU_ASSERT_EQUAL(memcmp(area, "RSD PTR ", 8), 0);
    CU_ASSERT_EQUAL(area[15], 2);
    CU_ASSERT_EQUAL(get32(area + 20), 36);
    CU_ASSERT_EQUAL(sum(area, 20), 0);
    CU_ASSERT_EQUAL(sum(area, 36), 0);
    /* RSDT and XSDT list the same tables. */
    const uint8_t *r = table_at(get32(area + 16), "RSDT");
    const uint8_t *x = table_at(get64(area + 24), "XSDT");
    CU_ASSERT_EQUAL((get32(r + 4) - 36) / 4, (get32(x + 4) - 36) / 8);
    CU_ASSERT_EQUAL(get32(r + 36), get64(x + 36));
}

static void test_every_table_checksum(void)
{
    CU_ASSERT_TRUE(build(4, true) > 0);
    const uint8_t *fadt = find_table("FACP");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fadt);
    CU_ASSERT_PTR_NOT_NULL(find_table("APIC"));
    CU_ASSERT_PTR_NOT_NULL(find_table("HPET"));
    table_at(get64(fadt + 140), "DSDT");
    CU_ASSERT_EQUAL(get32(fadt + 40), get64(fadt + 140));
    const uint8_t *facs = area + (get64(fadt + 132) - BASE);
    CU_ASSERT_EQUAL(memcmp(facs, "FACS", 4), 0);
    CU_ASSERT_EQUAL(get64(fadt + 132) % 64, 0);
}

static void test_madt_one_lapic_per_cpu(void)
{
    for (int ncpus = 1; ncpus <= 64; ncpus *= 4) {
        CU_ASSERT_TRUE(build(ncpus, false) > 0);
        const uint8_t *m = find_table("APIC");
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_EQUAL(get32(m + 36), 0xfee00000u);
        uint32_t len = get32(m + 4);
        int lapics = 0, ioapics = 0;
        bool seen[64] = {false};
        bool irq0_to_gsi2 = false, sci_level = false;
        for (uint32_t off = 44; off + 2 <= len;) {
            const uint8_t *e = m + off;
            CU_ASSERT_TRUE_FATAL(e[1] >= 2 && off + e[1] <= len);
            if (e[0] == 0) {
                CU_ASSERT_TRUE(e[3] < ncpus && !seen[e[3]]);
                if (e[3] < 64) {
                    seen[e[3]] = true;
                }
                CU_ASSERT_EQUAL(get32(e + 4) & 1, 1);
                lapics++;
            } else if (e[0] == 1) {
                CU_ASSERT_EQUAL(get32(e + 4), 0xfec00000u);
                CU_ASSERT_EQUAL(get32(e + 8), 0);
                ioapics++;
            } else if (e[0] == 2) {
                if (e[3] == 0 && get32(e + 4) == 2) {
                    irq0_to_gsi2 = true;
                }
                if (e[3] == 9 && get32(e + 4) == 9 && (e[8] & 0xf) == 0xd) {
                    sci_level = true;
                }
            }
            off += e[1];
        }
        CU_ASSERT_EQUAL(lapics, ncpus);
        CU_ASSERT_EQUAL(ioapics, 1);
        CU_ASSERT_TRUE(irq0_to_gsi2);
        CU_ASSERT_TRUE(sci_level);
    }
}

/* Under KVM's default GSI routing IRQ0 is GSI0: no override then. */
static void test_madt_without_irq0_override(void)
{
    irq0_override = false;
    int rc = build(2, false);
    irq0_override = true;
    CU_ASSERT_TRUE_FATAL(rc > 0);
    const uint8_t *m = find_table("APIC");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint32_t len = get32(m + 4);
    int overrides = 0;
    for (uint32_t off = 44; off + 2 <= len && m[off + 1] >= 2; off += m[off + 1]) {
        if (m[off] == 2) {
            CU_ASSERT_NOT_EQUAL(m[off + 3], 0);
            overrides++;
        }
    }
    CU_ASSERT_EQUAL(overrides, 1); /* the SCI only */
}

static void test_fadt_pm_and_reset(void)
{
    CU_ASSERT_TRUE(build(1, false) > 0);
    CU_ASSERT_PTR_NULL(find_table("HPET"));
    const uint8_t *f = find_table("FACP");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(get32(f + 4), 268);
    CU_ASSERT_EQUAL(f[46], 9);             /* SCI_INT */
    CU_ASSERT_EQUAL(get32(f + 56), 0x600); /* PM1a_EVT_BLK */
    CU_ASSERT_EQUAL(get32(f + 64), 0x604); /* PM1a_CNT_BLK */
    CU_ASSERT_EQUAL(get32(f + 76), 0x608); /* PM_TMR_BLK */
    CU_ASSERT_EQUAL(get32(f + 80), 0x620); /* GPE0_BLK */
    CU_ASSERT_EQUAL(f[89], 2);
    CU_ASSERT_TRUE(get32(f + 112) & (1u << 10));  /* RESET_REG_SUP */
    CU_ASSERT_FALSE(get32(f + 112) & (1u << 20)); /* not HW_REDUCED_ACPI */
    CU_ASSERT_EQUAL(f[116], 1);                   /* reset reg in I/O space */
    CU_ASSERT_EQUAL(get64(f + 120), 0xcf9);
    CU_ASSERT_EQUAL(f[128], 6);
}

static void test_dsdt_s5(void)
{
    CU_ASSERT_TRUE(build(1, false) > 0);
    const uint8_t *f = find_table("FACP");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const uint8_t *d = table_at(get64(f + 140), "DSDT");
    uint32_t len = get32(d + 4);
    const uint8_t want[] = {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0};
    CU_ASSERT_EQUAL(len, 36 + sizeof(want));
    CU_ASSERT_EQUAL(memcmp(d + 36, want, sizeof(want)), 0);
}

static void test_too_small(void)
{
    struct acpi_config cfg = {.ncpus = 2, .pm_base = 0x600, .sci_irq = 9, .s5_typ = 5};
    CU_ASSERT_TRUE(acpi_build(&cfg, BASE, area, 100) < 0);
    cfg.ncpus = 0;
    CU_ASSERT_TRUE(acpi_build(&cfg, BASE, area, sizeof(area)) < 0);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("acpi", NULL, NULL);
    CU_add_test(s, "RSDP checksums", test_rsdp_checksums);
    CU_add_test(s, "every table checksum", test_every_table_checksum);
    CU_add_test(s, "MADT one LAPIC per CPU", test_madt_one_lapic_per_cpu);
    CU_add_test(s, "MADT without IRQ0 override", test_madt_without_irq0_override);
    CU_add_test(s, "FADT PM blocks and reset register", test_fadt_pm_and_reset);
    CU_add_test(s, "DSDT _S5 package", test_dsdt_s5);
    CU_add_test(s, "bad sizes refused", test_too_small);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
