/* PCI host bridge with configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2)
 * and a registry of bus-0 functions; slot 0 is an i440FX host bridge.
 *
 * pci_host_read/write offsets are port - 0xCF8: 0 is CONFIG_ADDRESS (dword access
 * only), 4..7 are CONFIG_DATA (any size; the register byte is reg | (off & 3)).
 * 0xCF9 is the reset control register (acpi_pm.h), so a machine with reset_ctl
 * registers three ranges:
 *   bus_register(pio, 0xcf8, 1, &pci_host_addr_bus_ops, ph, "pci-addr");
 *   bus_register(pio, 0xcf9, 1, &reset_ctl_bus_ops, rc, "reset-ctl");
 *   bus_register(pio, 0xcfc, 4, &pci_host_data_bus_ops, ph, "pci-data");
 * (a dword access at 0xcf8 is dispatched by its start port). Without reset_ctl,
 * one range does: bus_register(pio, 0xcf8, 8, &pci_host_bus_ops, ph, "pci-host").
 *
 * BARs, MSI and bridges come later; struct pci_config is the config-space helper
 * a device embeds to get write masks right from the start.
 *
 * Locking: the host's mutex guards CONFIG_ADDRESS and the registry; a function's
 * config callbacks are called with it released, so they take their own lock. */
#ifndef LODGE_DEVICES_PC_PCI_HOST_H
#define LODGE_DEVICES_PC_PCI_HOST_H

#include "core/bus.h"
#include "devices/device.h"

#include <stdint.h>

#define PCI_HOST_ADDR_PORT 0xcf8
#define PCI_HOST_DATA_PORT 0xcfc
#define PCI_HOST_IO_LEN 8
#define PCI_HOST_OFF_ADDR 0
#define PCI_HOST_OFF_DATA 4

#define PCI_SLOTS 32
#define PCI_FUNCS 8
#define PCI_CONFIG_SIZE 256

/* Type 0 header offsets (PCI 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_HEADER_TYPE_MULTI_FUNCTION 0x80

#define PCI_I440FX_VENDOR 0x8086
#define PCI_I440FX_DEVICE 0x1237
#define PCI_CLASS_HOST_BRIDGE 0x060000

/* Config space of one function. off is 0..255 and the access stays within one
 * dword ((off & 3) + size <= 4); size is 1, 2 or 4. */
struct pci_dev_ops {
    uint32_t (*config_read)(void *opaque, unsigned off, unsigned size);
    void (*config_write)(void *opaque, unsigned off, uint32_t val, unsigned size);
};

/* Generic 256-byte config space with per-bit write masks. */
struct pci_config {
    uint8_t data[PCI_CONFIG_SIZE];    /* current contents */
    uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may set or clear */
    uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits the guest clears by writing 1 (status) */
};

/* Fills the IDs (class_code is class << 16 | subclass << 8 | prog-if), makes
 * COMMAND's I/O, memory, bus master, parity, SERR and INTx-disable bits and
 * INTERRUPT_LINE writable, and STATUS's error bits write-1-to-clear. */
void pci_config_init(struct pci_config *c, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint8_t revision, uint8_t header_type);
/* Out-of-range or dword-crossing accesses read all ones and write nothing. */
uint32_t pci_config_read(const struct pci_config *c, unsigned off, unsigned size);
void pci_config_write(struct pci_config *c, unsigned off, uint32_t val, unsigned size);
/* Device-side setters that ignore the masks (little-endian). */
void pci_config_set_u8(struct pci_config *c, unsigned off, uint8_t v);
void pci_config_set_u16(struct pci_config *c, unsigned off, uint16_t v);
void pci_config_set_u32(struct pci_config *c, unsigned off, uint32_t v);

struct pci_host;

struct pci_host *pci_host_new(void);
void pci_host_free(struct pci_host *ph);

/* Registers bus 0 function slot.fn (slot 1..31; slot 0 is the host bridge).
 * 0, -EINVAL for a bad slot/fn or ops, -EEXIST when taken. */
int pci_host_add_device(struct pci_host *ph, int slot, int fn, const struct pci_dev_ops *ops,
                        void *opaque);

uint64_t pci_host_read(struct pci_host *ph, uint64_t off, unsigned size);
void pci_host_write(struct pci_host *ph, uint64_t off, uint64_t val, unsigned size);

/* Direct config access for host-side code (firmware tables, tests); all ones
 * for an empty function. */
uint32_t pci_host_config_read(struct pci_host *ph, int slot, int fn, unsigned off, unsigned size);
void pci_host_config_write(struct pci_host *ph, int slot, int fn, unsigned off, uint32_t val,
                           unsigned size);

extern const struct bus_ops pci_host_bus_ops;       /* 0xcf8, len PCI_HOST_IO_LEN */
extern const struct bus_ops pci_host_addr_bus_ops;  /* 0xcf8, len 1 (dword accesses) */
extern const struct bus_ops pci_host_data_bus_ops;  /* 0xcfc, len 4 */
extern const struct device_ops pci_host_device_ops; /* dev = struct pci_host * */

#endif
