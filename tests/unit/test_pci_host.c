/* Unit tests for devices/pc/pci_host: configuration mechanism #1 through
 * pci_host_read/pci_host_write (offset = port - 0xCF8), registry, config helper. */
#include "devices/pc/pci_host.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

static uint32_t cfg_addr(int bus, int slot, int fn, unsigned reg)
{
    return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)slot << 11 | (uint32_t)fn << 8 |
           (reg & 0xfc);
}

/* Config read the guest way: dword to 0xCF8, then data at 0xCFC + (reg & 3). */
static uint32_t guest_cfg_read(struct pci_host *ph, int bus, int slot, int fn, unsigned reg,
                               unsigned size)
{
    pci_host_write(ph, 0, cfg_addr(bus, slot, fn, reg), 4);
    return (uint32_t)pci_host_read(ph, 4 + (reg & 3), size);
}

static void guest_cfg_write(struct pci_host *ph, int slot, int fn, unsigned reg, uint32_t v,
                            unsigned size)
{
    pci_host_write(ph, 0, cfg_addr(0, slot, fn, reg), 4);
    pci_host_write(ph, 4 + (reg & 3), v, size);
}

static void test_host_bridge_ids(void)
{
    struct pci_host *ph = pci_host_new();
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 0, 0x00, 4), 0x12378086);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 0, 0x08, 4) >> 8, 0x060000);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 0, 0x0e, 1), 0x00);
    CU_ASSERT_EQUAL(pci_host_config_read(ph, 0, 0, PCI_DEVICE_ID, 2), 0x1237);
    pci_host_free(ph);
}

static void test_byte_and_word_access(void)
{
    struct pci_host *ph = pci_host_new();
    pci_host_write(ph, 0, cfg_addr(0, 0, 0, 0), 4);
    CU_ASSERT_EQUAL(pci_host_read(ph, 4, 1), 0x86);
    CU_ASSERT_EQUAL(pci_host_read(ph, 5, 1), 0x80); /* 0xCFD */
    CU_ASSERT_EQUAL(pci_host_read(ph, 6, 2), 0x1237);
    CU_ASSERT_EQUAL(pci_host_read(ph, 7, 1), 0x12);
    CU_ASSERT_EQUAL(pci_host_read(ph, 4, 2), 0x8086);
    CU_ASSERT_EQUAL(pci_host_read(ph, 5, 4), 0xffffffffu); /* crosses the dword */
    /* Byte and word accesses at 0xCF8 do not touch CONFIG_ADDRESS. */
    pci_host_write(ph, 0, 0x00, 1);
    pci_host_write(ph, 0, 0x0000, 2);
    CU_ASSERT_EQUAL(pci_host_read(ph, 0, 4), 0x80000000u);
    pci_host_write(ph, 0, 0xffffffffu, 4);
    CU_ASSERT_EQUAL(pci_host_read(ph, 0, 4), 0x80fffffcu);
    pci_host_free(ph);
}

static void test_empty_functions(void)
{
    struct pci_host *ph = pci_host_new();
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 1, 0, 0, 4), 0xffffffffu);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 31, 7, 0, 4), 0xffffffffu);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 1, 0, 4), 0xffffffffu);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 5, 0, 0, 2), 0xffff);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 1, 0, 0, 0, 4), 0xffffffffu); /* no bus 1 */
    /* Enable bit clear: no configuration cycle. */
    pci_host_write(ph, 0, cfg_addr(0, 0, 0, 0) & 0x7fffffffu, 4);
    CU_ASSERT_EQUAL(pci_host_read(ph, 4, 4), 0xffffffffu);
    pci_host_free(ph);
}

struct mock_fn {
    struct pci_config cfg; /* the function's config space */
};

static uint32_t mock_read(void *opaque, unsigned off, unsigned size)
{
    return pci_config_read(&((struct mock_fn *)opaque)->cfg, off, size);
}

static void mock_write(void *opaque, unsigned off, uint32_t val, unsigned size)
{
    pci_config_write(&((struct mock_fn *)opaque)->cfg, off, val, size);
}

static const struct pci_dev_ops mock_ops = {.config_read = mock_read, .config_write = mock_write};

static void test_registry_and_config_helper(void)
{
    struct pci_host *ph = pci_host_new();
    struct mock_fn f;
    pci_config_init(&f.cfg, 0x1af4, 0x1001, 0x010000, 0x00, 0x00);
    CU_ASSERT_EQUAL(pci_host_add_device(ph, 3, 0, &mock_ops, &f), 0);
    CU_ASSERT_EQUAL(pci_host_add_device(ph, 3, 0, &mock_ops, &f), -EEXIST);
    CU_ASSERT_EQUAL(pci_host_add_device(ph, 0, 0, &mock_ops, &f), -EINVAL);
    CU_ASSERT_EQUAL(pci_host_add_device(ph, 32, 0, &mock_ops, &f), -EINVAL);
    CU_ASSERT_EQUAL(pci_host_add_device(ph, 4, 8, &mock_ops, &f), -EINVAL);
    CU_ASSERT_EQUAL(pci_host_add_device(ph, 4, 0, NULL, &f), -EINVAL);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, 0, 4), 0x10011af4);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, 0x0b, 1), 0x01);
    /* Read-only IDs, masked COMMAND, write-1-to-clear STATUS. */
    guest_cfg_write(ph, 3, 0, 0x00, 0xffffffffu, 4);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, 0, 4), 0x10011af4);
    guest_cfg_write(ph, 3, 0, PCI_COMMAND, 0xffff, 2);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, PCI_COMMAND, 2), 0x0547);
    pci_config_set_u16(&f.cfg, PCI_STATUS, 0x8010);
    guest_cfg_write(ph, 3, 0, PCI_STATUS, 0x0010, 2); /* capability bit: read-only */
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, PCI_STATUS, 2), 0x8010);
    guest_cfg_write(ph, 3, 0, PCI_STATUS, 0x8000, 2);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, PCI_STATUS, 2), 0x0010);
    guest_cfg_write(ph, 3, 0, PCI_INTERRUPT_LINE, 0x0b, 1);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 3, 0, PCI_INTERRUPT_LINE, 1), 0x0b);
    CU_ASSERT_EQUAL(pci_config_read(&f.cfg, 0xfe, 4), 0xffffffffu);
    CU_ASSERT_EQUAL(pci_config_read(&f.cfg, 256, 1), 0xffffffffu);
    pci_host_free(ph);
}

static void test_bridge_chipset_registers(void)
{
    struct pci_host *ph = pci_host_new();
    guest_cfg_write(ph, 0, 0, 0x5a, 0x33, 1); /* PAM1 */
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 0, 0x5a, 1), 0x33);
    guest_cfg_write(ph, 0, 0, 0x00, 0, 2);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 0, 0x00, 2), 0x8086);
    CU_ASSERT_EQUAL(guest_cfg_read(ph, 0, 0, 0, PCI_STATUS, 2), 0x0280);
    pci_host_free(ph);
}

static void test_save_load(void)
{
    struct pci_host *a = pci_host_new(), *b = pci_host_new();
    guest_cfg_write(a, 0, 0, 0x59, 0x30, 1);
    pci_host_write(a, 0, cfg_addr(0, 0, 0, 0x08), 4);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(pci_host_device_ops.save(a, out), 0);
    CU_ASSERT_EQUAL(pci_host_device_ops.load(b, out->data, out->len - 1), -EINVAL);
    CU_ASSERT_EQUAL(pci_host_read(b, 0, 4), 0);
    CU_ASSERT_EQUAL(pci_host_device_ops.load(b, out->data, out->len), 0);
    CU_ASSERT_EQUAL(pci_host_read(b, 0, 4), cfg_addr(0, 0, 0, 0x08));
    CU_ASSERT_EQUAL(pci_host_config_read(b, 0, 0, 0x59, 1), 0x30);
    /* Masks survive a load: IDs still read-only. */
    guest_cfg_write(b, 0, 0, 0x00, 0, 4);
    CU_ASSERT_EQUAL(pci_host_config_read(b, 0, 0, 0, 4), 0x12378086);
    pci_host_device_ops.reset(b);
    CU_ASSERT_EQUAL(pci_host_config_read(b, 0, 0, 0x59, 1), 0x00);
    g_byte_array_free(out, TRUE);
    pci_host_free(a);
    pci_host_free(b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pci_host", NULL, NULL);
    CU_add_test(s, "host bridge IDs at 00:00.0", test_host_bridge_ids);
    CU_add_test(s, "byte and word access at 0xCFD..", test_byte_and_word_access);
    CU_add_test(s, "empty functions read all ones", test_empty_functions);
    CU_add_test(s, "registry and config helper", test_registry_and_config_helper);
    CU_add_test(s, "bridge chipset registers", test_bridge_chipset_registers);
    CU_add_test(s, "save/load round trip", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
