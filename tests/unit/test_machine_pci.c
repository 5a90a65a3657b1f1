/* Unit tests for core/machine_pci: the --drive, --device and --virtio-port parsers, and
 * the ACPI root bridge an ACPI guest needs before it scans PCI bus 0. */
#include "core/acpi.h"
#include "core/machine_pci.h"
#include "snapshot/image.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

static void test_drive(void)
{
    struct machine_pci_config pc = {0};
    char why[256];
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=/tmp/a.qcow2", why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(pc.ndrives, 1);
    CU_ASSERT_STRING_EQUAL(pc.drives[0].path, "/tmp/a.qcow2");
    CU_ASSERT_EQUAL(pc.drives[0].format, IMAGE_FORMAT_AUTO);
    CU_ASSERT_FALSE(pc.drives[0].readonly);
    CU_ASSERT_EQUAL(
        machine_pci_parse_drive(&pc, "file=b.img,format=raw,readonly=on", why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(pc.drives[1].format, IMAGE_FORMAT_RAW);
    CU_ASSERT_TRUE(pc.drives[1].readonly);
    /* Mistakes are refused with a message and leave the list alone. */
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "format=qcow2", why, sizeof(why)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "file="));
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=x,format=vhd", why, sizeof(why)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "vhd"));
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=x,readonly=maybe", why, sizeof(why)),
                    -EINVAL);
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "/tmp/disk.img", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=x,cache=none", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(pc.ndrives, 2);
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=c", why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=d", why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(machine_pci_parse_drive(&pc, "file=e", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(pc.ndrives, MACHINE_PCI_MAX_DRIVES);
}

static void test_device_and_ports(void)
{
    struct machine_pci_config pc = {0};
    char why[256];
    CU_ASSERT_EQUAL(machine_pci_parse_device(&pc, "virtio-rng"), 1);
    CU_ASSERT_TRUE(pc.rng);
    CU_ASSERT_FALSE(pc.serial);
    CU_ASSERT_EQUAL(machine_pci_parse_device(&pc, "test-exit,iobase=0xf4"), 0);
    CU_ASSERT_EQUAL(machine_pci_parse_port(&pc,
                                           "name=com.redhat.spice.0,chardev=unix:/run/a,b.sock",
                                           why, sizeof(why)),
                    0);
    CU_ASSERT_TRUE(pc.serial); /* implied */
    CU_ASSERT_STRING_EQUAL(pc.ports[0].name, "com.redhat.spice.0");
    /* chardev= takes the rest, commas included */
    CU_ASSERT_STRING_EQUAL(pc.ports[0].chardev, "unix:/run/a,b.sock");
    CU_ASSERT_EQUAL(machine_pci_parse_port(&pc, "console=on,chardev=stdio", why, sizeof(why)), 0);
    CU_ASSERT_TRUE(pc.ports[1].console);
    CU_ASSERT_EQUAL(
        machine_pci_parse_port(&pc, "name=com.redhat.spice.0,chardev=none", why, sizeof(why)),
        -EINVAL); /* twice */
    CU_ASSERT_EQUAL(machine_pci_parse_port(&pc, "console=on,chardev=none", why, sizeof(why)),
                    -EINVAL);
    CU_ASSERT_EQUAL(machine_pci_parse_port(&pc, "name=x", why, sizeof(why)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "chardev="));
    CU_ASSERT_EQUAL(machine_pci_parse_port(&pc, "chardev=stdio", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(machine_pci_parse_port(&pc, "nam=x,chardev=stdio", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(pc.nports, 2);
}

static uint8_t area[ACPI_TABLES_SIZE];

/* The DSDT gets \_SB.PCI0 with _HID PNP0A03 only when asked. */
static void test_acpi_root_bridge(void)
{
    const uint8_t pnp0a03[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
    for (int with = 0; with < 2; with++) {
        struct acpi_config cfg = {
            .ncpus = 1, .pm_base = 0x600, .sci_irq = 9, .s5_typ = 5, .pci_root = with};
        memset(area, 0, sizeof(area));
        CU_ASSERT_TRUE_FATAL(acpi_build(&cfg, ACPI_TABLES_BASE, area, sizeof(area)) > 0);
        const uint8_t *dsdt = NULL;
        for (size_t off = 0; off + 4 <= sizeof(area); off += 4) {
            if (!memcmp(area + off, "DSDT", 4)) {
                dsdt = area + off;
                break;
            }
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(dsdt);
        uint32_t len = dsdt[4] | dsdt[5] << 8 | dsdt[6] << 16 | (uint32_t)dsdt[7] << 24;
        CU_ASSERT_EQUAL(acpi_checksum(dsdt, len), 0);
        bool found = false;
        for (uint32_t i = 0; i + sizeof(pnp0a03) <= len; i++) {
            found |= !memcmp(dsdt + i, pnp0a03, sizeof(pnp0a03));
        }
        CU_ASSERT_EQUAL(found, with);
        if (with) {
            /* Device (PCI0) inside Scope (\_SB) */
            CU_ASSERT_EQUAL(memcmp(dsdt + len - 36, "\x10\x23\\_SB_\x5b\x82\x1bPCI0", 14), 0);
        }
    }
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("machine_pci", NULL, NULL);
    CU_add_test(s, "--drive", test_drive);
    CU_add_test(s, "--device and --virtio-port", test_device_and_ports);
    CU_add_test(s, "ACPI root bridge", test_acpi_root_bridge);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
