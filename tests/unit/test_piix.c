/* PIIX ISA bridge + PM function: IDs, PIRQ route registers, PMBA/PMIOSE moving the
 * PM block on the I/O bus (82371AB datasheet 4.1, 4.4). */
#include "core/bus.h"
#include "devices/pc/piix.h"

#include <CUnit/Basic.h>

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
    return 0x1000 + off;
}

static void pm_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
}

static const struct bus_ops pm_ops = {.read = pm_read, .write = pm_write};

static void test_ids_and_pirq(void)
{
    struct pci_host *ph = pci_host_new();
    struct piix *p = piix_new(NULL, NULL, 0x600);
    CU_ASSERT_EQUAL_FATAL(piix_attach(p, ph), 0);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 0, 0, 4), 0x70008086u);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 0, 0x0a, 2), 0x0601u);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 0, 0x0e, 1) & 0x80, 0x80u); /* multi-fn */
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 3, 0, 4), 0x71138086u);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 3, 0x0a, 2), 0x0680u);
    /* PIRQs start disabled; SeaBIOS routes A/B -> 10, C/D -> 11 */
    CU_ASSERT_EQUAL(piix_pirq_route(p, 0), -1);
    pci_host_config_write(ph, 1, 0, 0x60, 0x0b0b0a0a, 4);
    CU_ASSERT_EQUAL(piix_pirq_route(p, 0), 10);
    CU_ASSERT_EQUAL(piix_pirq_route(p, 3), 11);
    CU_ASSERT_EQUAL(piix_pirq_route(p, 4), -1);
    /* reserved bits 6:4 are not writable */
    pci_host_config_write(ph, 1, 0, 0x61, 0x7a, 1);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 0, 0x61, 1), 0x0au);
    /* SMM marked as done (DEVACTB bit 25) so firmware skips its SMI handshake */
    CU_ASSERT(pci_host_config_read(ph, 1, 3, 0x58, 4) & (1u << 25));
    pci_host_free(ph);
    piix_free(p);
}

static void test_pmba_moves_block(void)
{
    struct bus *pio = bus_new("pio");
    struct pci_host *ph = pci_host_new();
    int token;
    CU_ASSERT_EQUAL_FATAL(bus_register(pio, 0x600, 0x40, &pm_ops, &token, "acpi-pm"), 0);
    struct piix *p = piix_new(pio, &token, 0x600);
    CU_ASSERT_EQUAL_FATAL(piix_attach(p, ph), 0);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 3, 0x40, 4), 1u); /* I/O indicator */
    /* PMBA alone does not move it: PMIOSE is off */
    pci_host_config_write(ph, 1, 3, 0x40, 0xb001, 4);
    CU_ASSERT_EQUAL(piix_pm_base(p), 0x600);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 1, 3, 0x40, 4), 0xb001u);
    pci_host_config_write(ph, 1, 3, 0x80, 1, 1);
    CU_ASSERT_EQUAL(piix_pm_base(p), 0xb000);
    uint64_t v = 0;
    CU_ASSERT(bus_read(pio, 0xb008, 4, &v));
    CU_ASSERT_EQUAL(v, 0x1008u);
    CU_ASSERT(!bus_read(pio, 0x608, 4, &v));
    /* low bits of PMBA are not writable: 64-byte granularity */
    pci_host_config_write(ph, 1, 3, 0x40, 0xc03f, 4);
    CU_ASSERT_EQUAL(piix_pm_base(p), 0xc000);
    /* reset puts it back at the default base */
    piix_device_ops.reset(p);
    CU_ASSERT_EQUAL(piix_pm_base(p), 0x600);
    CU_ASSERT(bus_read(pio, 0x600, 4, &v));
    piix_free(p);
    pci_host_free(ph);
    bus_free(pio);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("piix", NULL, NULL);
    CU_add_test(s, "IDs and PIRQ routing", test_ids_and_pirq);
    CU_add_test(s, "PMBA moves the PM block", test_pmba_moves_block);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
