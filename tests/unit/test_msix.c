/* Unit tests for MSI-X and MSI in devices/pci/pci_dev: table layout, per-vector
 * and function masking, the pending bit array, and the MSI capability. */
#include "devices/pci/pci_dev.h"

#include <CUnit/Basic.h>
#include <errno.h>

struct msi_log {
    int n;             /* messages sent */
    uint64_t addr[16]; /* their addresses */
    uint32_t data[16]; /* their data */
};

static int msi_record(void *opaque, uint64_t addr, uint32_t data)
{
    struct msi_log *l = opaque;
    if (l->n < 16) {
        l->addr[l->n] = addr;
        l->data[l->n] = data;
    }
    l->n++;
    return 0;
}

#define NVEC 4
#define TBL 0x000
#define PBA 0x800

/* A device with MSI-X in BAR1 (4 KiB) and bus mastering on. */
static void setup(struct pci_dev *d, struct msi_log *log)
{
    CU_ASSERT_EQUAL_FATAL(pci_dev_init(d, 0x1af4, 0x1042, 0x010000, 1, 0, 0, 1), 0);
    CU_ASSERT_EQUAL_FATAL(pci_dev_add_bar(d, 1, PCI_BAR_MEM32, 0x1000, NULL, NULL, "msix"), 0);
    CU_ASSERT_EQUAL_FATAL(pci_dev_init_msix(d, NVEC, 1, TBL, PBA), 0);
    struct pci_msi_sink sink = {.send = msi_record, .opaque = log};
    pci_dev_attach(d, NULL, NULL, NULL, &sink);
    pci_dev_config_write(d, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

static void program(struct pci_dev *d, unsigned v, uint64_t addr, uint32_t data)
{
    pci_dev_bar_write(d, 1, TBL + v * 16, (uint32_t)addr, 4);
    pci_dev_bar_write(d, 1, TBL + v * 16 + 4, addr >> 32, 4);
    pci_dev_bar_write(d, 1, TBL + v * 16 + 8, data, 4);
}

static unsigned msix_cap(struct pci_dev *d)
{
    unsigned p = pci_dev_config_read(d, PCI_CAPABILITY_LIST, 1);
    while (p && pci_dev_config_read(d, p, 1) != PCI_CAP_ID_MSIX) {
        p = pci_dev_config_read(d, p + 1, 1);
    }
    return p;
}

static void test_capability_layout(void)
{
    struct pci_dev d;
    struct msi_log log = {0};
    setup(&d, &log);
    unsigned c = msix_cap(&d);
    CU_ASSERT_NOT_EQUAL(c, 0);
    /* Table Size is N-1; table and PBA offsets carry the BIR in bits 2:0. */
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, c + 2, 2), NVEC - 1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, c + 4, 4), TBL | 1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, c + 8, 4), PBA | 1);
    /* Entries come out of reset masked. */
    for (unsigned v = 0; v < NVEC; v++) {
        CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, TBL + v * 16 + 12, 4), 1);
    }
    /* Reserved Vector Control bits stay 0. */
    pci_dev_bar_write(&d, 1, TBL + 12, 0xfffffffe, 4);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, TBL + 12, 4), 0);
    /* A 64-bit table access works too. */
    pci_dev_bar_write(&d, 1, TBL + 16, 0x00000000fee01000ull, 8);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, TBL + 16, 8), 0xfee01000ull);
    CU_ASSERT_EQUAL(pci_dev_init_msix(&d, 2, 1, 0, 0x800), -EINVAL); /* only once */
    pci_dev_destroy(&d);
}

static void test_masking_and_pba(void)
{
    struct pci_dev d;
    struct msi_log log = {0};
    setup(&d, &log);
    unsigned c = msix_cap(&d);
    program(&d, 0, 0xfee00000, 0x41);
    program(&d, 2, 0xfee01000, 0x42);
    /* MSI-X disabled: the caller falls back to INTx. */
    CU_ASSERT_EQUAL(pci_dev_notify(&d, 0), -ENOTCONN);
    pci_dev_config_write(&d, c + 2, PCI_MSIX_CTRL_ENABLE, 2);
    CU_ASSERT_TRUE(pci_dev_msix_enabled(&d));
    /* Masked vector: no message, pending bit set. */
    CU_ASSERT_EQUAL(pci_dev_notify(&d, 2), 0);
    CU_ASSERT_EQUAL(log.n, 0);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, PBA, 8), 1ull << 2);
    /* PBA is read-only. */
    pci_dev_bar_write(&d, 1, PBA, 0, 8);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, PBA, 8), 1ull << 2);
    /* Unmasking delivers the pending message and clears the bit. */
    pci_dev_bar_write(&d, 1, TBL + 2 * 16 + 12, 0, 4);
    CU_ASSERT_EQUAL(log.n, 1);
    CU_ASSERT_EQUAL(log.addr[0], 0xfee01000);
    CU_ASSERT_EQUAL(log.data[0], 0x42);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, PBA, 8), 0);
    /* Unmasked: straight through. */
    CU_ASSERT_EQUAL(pci_dev_notify(&d, 2), 0);
    CU_ASSERT_EQUAL(log.n, 2);
    /* Function Mask holds everything back, then releases pending vectors. */
    pci_dev_bar_write(&d, 1, TBL + 12, 0, 4);
    pci_dev_config_write(&d, c + 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASKALL, 2);
    pci_dev_notify(&d, 0);
    pci_dev_notify(&d, 2);
    CU_ASSERT_EQUAL(log.n, 2);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, PBA, 8), (1ull << 0) | (1ull << 2));
    pci_dev_config_write(&d, c + 2, PCI_MSIX_CTRL_ENABLE, 2);
    CU_ASSERT_EQUAL(log.n, 4);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, PBA, 8), 0);
    /* Out-of-range vector refused. */
    CU_ASSERT_EQUAL(pci_dev_notify(&d, NVEC), -EINVAL);
    /* Bus mastering off: the message is dropped (it is a memory write). */
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    pci_dev_notify(&d, 0);
    CU_ASSERT_EQUAL(log.n, 4);
    /* Reset masks everything again and disables MSI-X. */
    pci_dev_reset(&d);
    CU_ASSERT_FALSE(pci_dev_msix_enabled(&d));
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, TBL + 12, 4), 1);
    CU_ASSERT_EQUAL(pci_dev_bar_read(&d, 1, TBL, 4), 0);
    pci_dev_destroy(&d);
}

static void test_msi(void)
{
    struct pci_dev d;
    struct msi_log log = {0};
    pci_dev_init(&d, 0x8086, 0x2922, 0x010601, 0, 0, 0, 1);
    CU_ASSERT_EQUAL(pci_dev_init_msi(&d), 0);
    struct pci_msi_sink sink = {.send = msi_record, .opaque = &log};
    pci_dev_attach(&d, NULL, NULL, NULL, &sink);
    unsigned c = pci_dev_config_read(&d, PCI_CAPABILITY_LIST, 1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, c, 1), PCI_CAP_ID_MSI);
    CU_ASSERT_TRUE(pci_dev_config_read(&d, c + 2, 2) & PCI_MSI_CTRL_64BIT);
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    pci_dev_config_write(&d, c + 4, 0xfee00003, 4); /* low bits are reserved */
    pci_dev_config_write(&d, c + 8, 0, 4);
    pci_dev_config_write(&d, c + 12, 0x4031, 2);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, c + 4, 4), 0xfee00000);
    CU_ASSERT_EQUAL(pci_dev_notify(&d, 0), -ENOTCONN);
    pci_dev_config_write(&d, c + 2, PCI_MSI_CTRL_ENABLE, 2);
    CU_ASSERT_EQUAL(pci_dev_notify(&d, 0), 0);
    CU_ASSERT_EQUAL(log.n, 1);
    CU_ASSERT_EQUAL(log.addr[0], 0xfee00000);
    CU_ASSERT_EQUAL(log.data[0], 0x4031);
    pci_dev_destroy(&d);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("msix", NULL, NULL);
    CU_add_test(s, "capability layout", test_capability_layout);
    CU_add_test(s, "masking and PBA", test_masking_and_pba);
    CU_add_test(s, "MSI", test_msi);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
