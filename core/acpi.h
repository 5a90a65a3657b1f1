/* ACPI tables for direct Linux boot (ACPI 6.x, FADT revision 5 layout): RSDP, RSDT,
 * XSDT, FADT, FACS, DSDT (only \_S5), MADT and, for the soft engine, HPET.
 * They describe the acpi_pm block, the 0xCF9 reset register and the interrupt
 * controllers the machine wires up. */
#ifndef LODGE_CORE_ACPI_H
#define LODGE_CORE_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_TABLES_BASE 0xe0000ull /* RSDP here: inside the BIOS scan area */
#define ACPI_TABLES_SIZE 0x10000u
#define ACPI_LAPIC_BASE 0xfee00000u
#define ACPI_IOAPIC_BASE 0xfec00000u
#define ACPI_HPET_BASE 0xfed00000u
#define ACPI_RESET_PORT 0xcf9
#define ACPI_RESET_VALUE 0x06

struct acpi_config {
    int ncpus;         /* LAPIC entries with APIC IDs 0..ncpus-1 */
    bool hpet;         /* add the HPET table */
    uint16_t pm_base;  /* acpi_pm block: PM1a_EVT +0, PM1a_CNT +4, PM_TMR +8, GPE0 +0x20 */
    uint8_t sci_irq;   /* SCI, level/active-high (ISA IRQ 9 on a PC) */
    uint8_t s5_typ;    /* SLP_TYP value acpi_pm treats as S5 */
    bool irq0_to_gsi2; /* MADT override ISA IRQ0 -> GSI2 (how the machine wires the PIT) */
    bool pci_root;     /* add \_SB.PCI0 (PNP0A03): an ACPI guest scans PCI bus 0 only then */
};

/* Build the tables into buf, which the caller copies to guest address base. The RSDP
 * is at offset 0. Returns the bytes used or -ENOSPC / -EINVAL. */
int acpi_build(const struct acpi_config *cfg, uint64_t base, uint8_t *buf, size_t len);

/* Byte that makes the sum of p[0..len) zero when stored in the checksum field
 * (the field itself counted as zero). */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
