/* Unit tests for devices/pci/pci_dev: BAR sizing probes, BAR moves on the buses,
 * the capability list, INTx and reset. */
#include "devices/pci/pci_dev.h"

#include <CUnit/Basic.h>
#include <errno.h>

struct fake_bar {
    int reads, writes; /* accesses that reached the device */
    uint64_t last_off; /* offset of the last access, relative to the BAR */
};

static uint64_t fake_read(void *opaque, uint64_t off, unsigned size)
{
    struct fake_bar *f = opaque;
    f->reads++;
    f->last_off = off;
    return 0xab;
}

static void fake_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct fake_bar *f = opaque;
    f->writes++;
    f->last_off = off;
}

static const struct bus_ops fake_ops = {.read = fake_read, .write = fake_write};

struct fake_line {
    int level;   /* last level driven */
    int line;    /* line number passed back */
    int changes; /* set() calls */
};

static void fake_set(void *opaque, int line, int level)
{
    struct fake_line *l = opaque;
    l->level = level;
    l->line = line;
    l->changes++;
}

static void test_bar_sizing_probe(void)
{
    struct pci_dev d;
    struct fake_bar f = {0};
    CU_ASSERT_EQUAL(pci_dev_init(&d, 0x1af4, 0x1042, 0x010000, 1, 0x1af4, 0x42, 1), 0);
    CU_ASSERT_EQUAL(pci_dev_add_bar(&d, 0, PCI_BAR_IO, 32, &fake_ops, &f, "io"), 0);
    CU_ASSERT_EQUAL(pci_dev_add_bar(&d, 1, PCI_BAR_MEM32, 0x4000, &fake_ops, &f, "m32"), 0);
    CU_ASSERT_EQUAL(pci_dev_add_bar(&d, 2, PCI_BAR_MEM64, 0x100000, &fake_ops, &f, "m64"), 0);
    /* BAR3 is the upper half of BAR2 */
    CU_ASSERT_EQUAL(pci_dev_add_bar(&d, 3, PCI_BAR_MEM32, 0x1000, &fake_ops, &f, "x"), -EEXIST);
    CU_ASSERT_EQUAL(pci_dev_add_bar(&d, 4, PCI_BAR_MEM32, 0x1800, &fake_ops, &f, "x"), -EINVAL);
    CU_ASSERT_EQUAL(pci_dev_add_bar(&d, 5, PCI_BAR_MEM64, 0x1000, &fake_ops, &f, "x"), -EINVAL);

    /* Type bits read back before probing (PCI 3.0 6.2.5.1). */
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0, 4), 0x1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 8, 4), 0x4);
    for (unsigned i = 0; i < 6; i++) {
        pci_dev_config_write(&d, PCI_BAR0 + 4 * i, 0xffffffff, 4);
    }
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0, 4), 0xffffffe1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 4, 4), 0xffffc000);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 8, 4), 0xfff00004);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 12, 4), 0xffffffff);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 16, 4), 0);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 20, 4), 0);
    /* Size = ~(mask & ~flags) + 1 */
    uint32_t m = pci_dev_config_read(&d, PCI_BAR0 + 4, 4) & ~0xfu;
    CU_ASSERT_EQUAL(~m + 1, 0x4000);
    pci_dev_destroy(&d);
}

static void test_bar_map_and_move(void)
{
    struct pci_dev d;
    struct fake_bar f = {0};
    struct bus *pio = bus_new("pio"), *mmio = bus_new("mmio");
    pci_dev_init(&d, 0x8086, 0x100e, 0x020000, 0, 0, 0, 1);
    pci_dev_add_bar(&d, 0, PCI_BAR_MEM32, 0x1000, &fake_ops, &f, "m32");
    pci_dev_add_bar(&d, 1, PCI_BAR_IO, 16, &fake_ops, &f, "io");
    pci_dev_attach(&d, pio, mmio, NULL, NULL);
    pci_dev_config_write(&d, PCI_BAR0, 0xe0000000, 4);
    pci_dev_config_write(&d, PCI_BAR0 + 4, 0xc000, 4);
    uint64_t v = 0;
    /* Decoding off: nothing mapped yet. */
    CU_ASSERT_FALSE(bus_read(mmio, 0xe0000010, 4, &v));
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
    CU_ASSERT_TRUE(bus_read(mmio, 0xe0000010, 4, &v));
    CU_ASSERT_EQUAL(v, 0xab);
    CU_ASSERT_EQUAL(f.last_off, 0x10);
    CU_ASSERT_TRUE(bus_write(pio, 0xc004, 1, 1));
    CU_ASSERT_EQUAL(f.last_off, 4);
    /* Move the memory BAR while decoding is on. */
    pci_dev_config_write(&d, PCI_BAR0, 0xe0100000, 4);
    CU_ASSERT_FALSE(bus_read(mmio, 0xe0000010, 4, &v));
    CU_ASSERT_TRUE(bus_read(mmio, 0xe0100ff0, 4, &v));
    CU_ASSERT_EQUAL(f.last_off, 0xff0);
    /* A sizing probe with decoding on parks the BAR at the top: not mapped. */
    pci_dev_config_write(&d, PCI_BAR0, 0xffffffff, 4);
    CU_ASSERT_FALSE(bus_read(mmio, 0xe0100ff0, 4, &v));
    CU_ASSERT_FALSE(bus_read(mmio, 0xfffff000, 4, &v));
    pci_dev_config_write(&d, PCI_BAR0, 0xe0200000, 4);
    CU_ASSERT_TRUE(bus_read(mmio, 0xe0200000, 4, &v));
    /* Memory decode off unmaps only the memory BAR. */
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_IO, 2);
    CU_ASSERT_FALSE(bus_read(mmio, 0xe0200000, 4, &v));
    CU_ASSERT_TRUE(bus_read(pio, 0xc000, 1, &v));
    /* Reset: BARs back to 0, unmapped. */
    pci_dev_reset(&d);
    CU_ASSERT_FALSE(bus_read(pio, 0xc000, 1, &v));
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0, 4), 0);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_COMMAND, 2), 0);
    pci_dev_destroy(&d);
    bus_free(pio);
    bus_free(mmio);
}

static void test_bar_defaults_survive_reset(void)
{
    struct pci_dev d;
    struct fake_bar f = {0};
    struct bus *mmio = bus_new("mmio");
    pci_dev_init(&d, 0x1af4, 0x1044, 0x00ff00, 1, 0, 0, 1);
    pci_dev_add_bar(&d, 2, PCI_BAR_MEM64, 0x4000, &fake_ops, &f, "m64");
    CU_ASSERT_EQUAL(pci_dev_set_bar_default(&d, 2, 0x1000), -EINVAL); /* misaligned */
    CU_ASSERT_EQUAL(pci_dev_set_bar_default(&d, 2, 0xfe004000), 0);
    pci_dev_set_default_command(&d, PCI_COMMAND_MEMORY);
    pci_dev_attach(&d, NULL, mmio, NULL, NULL);
    pci_dev_reset(&d);
    uint64_t v;
    CU_ASSERT_TRUE(bus_read(mmio, 0xfe004000, 4, &v));
    /* 64-bit BAR moved above 4 GiB by writing both halves. */
    pci_dev_config_write(&d, PCI_BAR0 + 12, 0x1, 4);
    CU_ASSERT_TRUE(bus_read(mmio, 0x1fe004000ull, 4, &v));
    CU_ASSERT_FALSE(bus_read(mmio, 0xfe004000, 4, &v));
    pci_dev_reset(&d);
    CU_ASSERT_TRUE(bus_read(mmio, 0xfe004000, 4, &v));
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_BAR0 + 8, 4), 0xfe004004);
    pci_dev_destroy(&d);
    bus_free(mmio);
}

/* Expansion ROM BAR (PCI 3.0 6.2.5.2): sized like a memory BAR, decodes only with
 * COMMAND.Memory and its enable bit, read-only, gone after reset. */
static void test_rom_bar(void)
{
    struct pci_dev d;
    uint8_t image[3000];
    for (unsigned i = 0; i < sizeof(image); i++) {
        image[i] = (uint8_t)(i * 7 + 1);
    }
    image[0] = 0x55;
    image[1] = 0xaa;
    CU_ASSERT_EQUAL(pci_dev_init(&d, 0x8086, 0x100e, 0x020000, 3, 0x1af4, 0x1100, 1), 0);
    struct bus *mmio = bus_new("mmio");
    pci_dev_attach(&d, NULL, mmio, NULL, NULL);
    /* No ROM: the register is hard-wired to 0 (6.2.5.2 "not implemented"). */
    pci_dev_config_write(&d, 0x30, 0xffffffff, 4);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, 0x30, 4), 0);
    CU_ASSERT_EQUAL(pci_dev_set_rom(&d, image, 0), -EINVAL);
    CU_ASSERT_EQUAL(pci_dev_set_rom(&d, image, sizeof(image)), 0);
    CU_ASSERT_EQUAL(pci_dev_set_rom(&d, image, sizeof(image)), -EEXIST);
    /* 3000 bytes round up to a 4 KiB BAR: all ones except bits 11:1 and the enable bit. */
    pci_dev_config_write(&d, 0x30, 0xfffff800, 4);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, 0x30, 4), 0xfffff000);
    pci_dev_config_write(&d, 0x30, 0xfebc0000, 4);
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    uint64_t v = 0;
    CU_ASSERT_FALSE(bus_read(mmio, 0xfebc0000, 2, &v)); /* enable bit clear */
    pci_dev_config_write(&d, 0x30, 0xfebc0001, 4);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, 0x30, 4), 0xfebc0001);
    CU_ASSERT_TRUE(bus_read(mmio, 0xfebc0000, 2, &v));
    CU_ASSERT_EQUAL(v, 0xaa55);
    CU_ASSERT_TRUE(bus_read(mmio, 0xfebc0000 + 2998, 4, &v));
    CU_ASSERT_EQUAL(v, (uint64_t)image[2998] | ((uint64_t)image[2999] << 8)); /* zero after */
    CU_ASSERT_TRUE(bus_read(mmio, 0xfebc0ffc, 4, &v));
    CU_ASSERT_EQUAL(v, 0);
    bus_write(mmio, 0xfebc0000, 1, 0);
    CU_ASSERT_TRUE(bus_read(mmio, 0xfebc0000, 1, &v));
    CU_ASSERT_EQUAL(v, 0x55); /* read-only */
    /* Memory decoding off unmaps it; moving follows the register. */
    pci_dev_config_write(&d, PCI_COMMAND, 0, 2);
    CU_ASSERT_FALSE(bus_read(mmio, 0xfebc0000, 1, &v));
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    pci_dev_config_write(&d, 0x30, 0xfeb00001, 4);
    CU_ASSERT_FALSE(bus_read(mmio, 0xfebc0000, 1, &v));
    CU_ASSERT_TRUE(bus_read(mmio, 0xfeb00001, 1, &v));
    CU_ASSERT_EQUAL(v, 0xaa);
    pci_dev_reset(&d);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, 0x30, 4), 0);
    CU_ASSERT_FALSE(bus_read(mmio, 0xfeb00000, 1, &v));
    pci_dev_destroy(&d);
    bus_free(mmio);
}

static void test_capability_list(void)
{
    struct pci_dev d;
    pci_dev_init(&d, 0x1af4, 0x1041, 0x020000, 1, 0, 0, 1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    int a = pci_dev_add_cap(&d, PCI_CAP_ID_VNDR, 16);
    int b = pci_dev_add_cap(&d, PCI_CAP_ID_VNDR, 5);
    int c = pci_dev_add_cap(&d, PCI_CAP_ID_MSI, 14);
    CU_ASSERT_EQUAL(a, 0x40);
    CU_ASSERT_EQUAL(b, 0x50);
    CU_ASSERT_EQUAL(c, 0x58); /* dword aligned after the 5-byte one */
    CU_ASSERT_TRUE(pci_dev_config_read(&d, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    /* Walk the list as a guest does. */
    unsigned ids[4], n = 0;
    unsigned p = pci_dev_config_read(&d, PCI_CAPABILITY_LIST, 1);
    while (p && n < 4) {
        ids[n++] = pci_dev_config_read(&d, p, 1);
        p = pci_dev_config_read(&d, p + 1, 1);
    }
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(ids[0], PCI_CAP_ID_VNDR);
    CU_ASSERT_EQUAL(ids[2], PCI_CAP_ID_MSI);
    /* The list is read-only to the guest. */
    pci_dev_config_write(&d, a + 1, 0x00, 1);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, a + 1, 1), (unsigned)b);
    CU_ASSERT_EQUAL(pci_dev_add_cap(&d, PCI_CAP_ID_VNDR, 200), -ENOSPC);
    pci_dev_destroy(&d);
}

static void test_intx_swizzle_and_disable(void)
{
    /* PIIX: PIRQ = (slot + pin - 1) & 3; A/B -> 10, C/D -> 11. */
    CU_ASSERT_EQUAL(pci_dev_intx_gsi(1, 1), 10);
    CU_ASSERT_EQUAL(pci_dev_intx_gsi(2, 1), 11);
    CU_ASSERT_EQUAL(pci_dev_intx_gsi(3, 1), 11);
    CU_ASSERT_EQUAL(pci_dev_intx_gsi(4, 1), 10);
    CU_ASSERT_EQUAL(pci_dev_intx_gsi(3, 2), 10);
    CU_ASSERT_EQUAL(pci_dev_intx_gsi(3, 0), -EINVAL);

    struct pci_dev d;
    struct fake_line l = {0};
    pci_dev_init(&d, 0x1af4, 0x1043, 0x078000, 1, 0, 0, 1);
    struct irq_line line = {.set = fake_set, .opaque = &l, .line = pci_dev_intx_gsi(3, 1)};
    pci_dev_attach(&d, NULL, NULL, &line, NULL);
    /* INTERRUPT_LINE tells the guest where INTx goes; INTERRUPT_PIN is INTA#. */
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_INTERRUPT_LINE, 1), 11);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_INTERRUPT_PIN, 1), 1);
    pci_dev_set_intx(&d, 1);
    CU_ASSERT_EQUAL(l.level, 1);
    CU_ASSERT_EQUAL(l.line, 11);
    CU_ASSERT_TRUE(pci_dev_config_read(&d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    /* INTx Disable drops the line but keeps the status bit (PCI 3.0 6.2.2-3). */
    pci_dev_config_write(&d, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    CU_ASSERT_EQUAL(l.level, 0);
    CU_ASSERT_TRUE(pci_dev_config_read(&d, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_dev_config_write(&d, PCI_COMMAND, 0, 2);
    CU_ASSERT_EQUAL(l.level, 1);
    pci_dev_reset(&d);
    CU_ASSERT_EQUAL(l.level, 0);
    CU_ASSERT_EQUAL(pci_dev_config_read(&d, PCI_INTERRUPT_LINE, 1), 11);
    /* No MSI configured: notify asks for INTx. */
    CU_ASSERT_EQUAL(pci_dev_notify(&d, 0), -ENOTCONN);
    pci_dev_destroy(&d);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pci_dev", NULL, NULL);
    CU_add_test(s, "BAR sizing probe", test_bar_sizing_probe);
    CU_add_test(s, "BAR map and move", test_bar_map_and_move);
    CU_add_test(s, "BAR defaults survive reset", test_bar_defaults_survive_reset);
    CU_add_test(s, "expansion ROM BAR", test_rom_bar);
    CU_add_test(s, "capability list", test_capability_list);
    CU_add_test(s, "INTx swizzle and disable", test_intx_swizzle_and_disable);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
