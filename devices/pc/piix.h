/* PIIX3/PIIX4 south bridge functions on the i440FX bus (Intel 82371AB datasheet):
 * the PCI-to-ISA bridge at 00:01.0 with the PIRQ route control registers and the
 * power management function at 00:01.3 whose PMBA register places the ACPI PM
 * block (devices/pc/acpi_pm.h) in I/O space. No IDE function: disks are AHCI or
 * virtio.
 *
 * ISA bridge (8086:7000, class 0x0601, multi-function header):
 *   0x60-0x63 PIRQRC[A-D]: bit 7 disables routing, bits 3:0 the ISA IRQ. Stored for
 *   the firmware; Lodge's wiring is fixed (PIRQA/B -> IRQ 10, PIRQC/D -> IRQ 11,
 *   devices/pci/pci_dev.h), which is what SeaBIOS and OVMF program.
 * PM function (8086:7113, class 0x0680):
 *   0x40 PMBA: bits 15:6 the 64-byte I/O base, bit 0 reads 1 (I/O space);
 *   0x80 PMREGMISC bit 0 PMIOSE: the block decodes at PMBA only while set;
 *   0x58 DEVACTB: bit 25 (APMC_EN) reads as set, the way QEMU marks "SMM already
 *   initialised" on machines without SMM, so SeaBIOS skips its SMI handshake;
 *   0x90 SMBBA, 0xD2 SMBHSTCFG: stored only.
 * Moving the block: when the guest enables PMIOSE with a new PMBA, the acpi_pm bus
 * range moves there (bus_move); reset puts it back at the default base.
 *
 * Locking: one mutex; bus_move is called with it held (the bus takes no device lock). */
#ifndef LODGE_DEVICES_PC_PIIX_H
#define LODGE_DEVICES_PC_PIIX_H

#include "core/bus.h"
#include "devices/device.h"
#include "devices/pc/pci_host.h"

#include <stdint.h>

#define PIIX_SLOT 1
#define PIIX_FN_ISA 0
#define PIIX_FN_PM 3
#define PIIX3_ISA_DEVICE 0x7000
#define PIIX4_PM_DEVICE 0x7113
#define PIIX_PIRQRC 0x60
#define PIIX_PIRQ_DISABLE 0x80
#define PIIX_PM_PMBA 0x40
#define PIIX_PM_DEVACTB 0x58
#define PIIX_PM_PMREGMISC 0x80
#define PIIX_PM_SMBBA 0x90
#define PIIX_PM_SMBHSTCFG 0xd2
#define PIIX_PM_PMIOSE 0x01

struct piix;

/* pio and pm_opaque identify the acpi_pm range the machine registered at pm_base
 * (may be NULL: PMBA is then stored only). */
struct piix *piix_new(struct bus *pio, void *pm_opaque, uint16_t pm_base);
void piix_free(struct piix *p);

/* Adds 00:01.0 and 00:01.3 to the host bridge. 0 or -errno. */
int piix_attach(struct piix *p, struct pci_host *ph);

/* Where the PM block decodes now (the default base until the guest moves it). */
uint16_t piix_pm_base(struct piix *p);
/* PIRQ route n (0..3): the ISA IRQ, or -1 when routing is disabled. */
int piix_pirq_route(struct piix *p, int n);

/* Config space of the two functions (the pci_host callbacks; opaque = struct piix *). */
extern const struct pci_dev_ops piix_isa_config_ops;
extern const struct pci_dev_ops piix_pm_config_ops;
extern const struct device_ops piix_device_ops; /* dev = struct piix * */

#endif
