/* A PCI function's common machinery: type-0 config space, BARs that follow the
 * guest's programming onto the PIO/MMIO buses, the capability list, MSI, MSI-X
 * (table + PBA inside a BAR) and INTx.
 *
 * A device embeds or allocates a struct pci_dev, describes its BARs and
 * capabilities once after pci_dev_init(), and registers it with the host bridge
 * as pci_host_add_device(ph, slot, 0, &pci_dev_config_ops, d). BAR accesses go
 * through pci_dev's own bus trampolines: the MSI-X table and PBA ranges are
 * handled here, everything else reaches the device's bus_ops with the offset
 * relative to the BAR.
 *
 * Interrupts (PCI 3.0 6.8): pci_dev_notify(d, vector) sends MSI-X vector
 * `vector` when MSI-X is enabled (or records it in the PBA when masked), MSI when
 * MSI is enabled, else it does nothing and returns -ENOTCONN so the caller can
 * use INTx (pci_dev_set_intx, which honours COMMAND.INTx-disable).
 *
 * INTx routing (see docs/virtio.md): the machine passes an irq_line per device,
 * chosen with pci_dev_intx_gsi() = the PIIX PIRQ swizzle (slot + pin - 1) & 3 ->
 * PIRQA/B on GSI 10, PIRQC/D on GSI 11; the INTERRUPT_LINE register (0x3C) is
 * preset to the same number so a guest without a _PRT (Lodge's ACPI has none)
 * reads the right line.
 *
 * Locking: d->lock guards config space, BAR mappings and MSI/MSI-X state. The
 * device's BAR callbacks are called without it; MSI delivery calls the sink with
 * it released. */
#ifndef LODGE_DEVICES_PCI_PCI_DEV_H
#define LODGE_DEVICES_PCI_PCI_DEV_H

#include "core/bus.h"
#include "devices/irq.h"
#include "devices/pc/pci_host.h"

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PCI_DEV_NUM_BARS 6
#define PCI_DEV_CAP_START 0x40

#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* MSI-X (PCI 3.0 6.8.2) */
#define PCI_MSIX_MAX_VECTORS 2048
#define PCI_MSIX_ENTRY_SIZE 16
#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_MASKALL 0x4000
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1

/* MSI (PCI 3.0 6.8.1) */
#define PCI_MSI_CTRL_ENABLE 0x0001
#define PCI_MSI_CTRL_64BIT 0x0080

/* INTx GSIs behind the PIIX PIRQ router (what Lodge wires and presets in 0x3C). */
#define PCI_DEV_PIRQ_GSI_AB 10
#define PCI_DEV_PIRQ_GSI_CD 11

enum pci_bar_type {
    PCI_BAR_NONE = 0,
    PCI_BAR_IO,    /* I/O space, bit 0 set */
    PCI_BAR_MEM32, /* 32-bit memory */
    PCI_BAR_MEM64, /* 64-bit memory: uses this BAR and the next */
};

/* Where MSI messages go: machine_msi() in a VM, a recorder in tests. */
struct pci_msi_sink {
    int (*send)(void *opaque, uint64_t addr, uint32_t data);
    void *opaque;
};

struct pci_dev;

struct pci_dev_bar {
    struct pci_dev *d;         /* back pointer for the trampolines */
    enum pci_bar_type type;    /* BAR kind, fixed by the device */
    uint64_t size;             /* power of two (>= 16 for memory, >= 4 for I/O) */
    const struct bus_ops *ops; /* device handler for the non-MSI-X part */
    void *opaque;
    bool mapped;   /* registered on a bus at base */
    uint64_t base; /* current mapping (valid when mapped) */
    char name[24]; /* bus range name */
};

struct pci_dev {
    pthread_mutex_t lock;                      /* see the header comment */
    struct pci_config cfg;                     /* 256-byte config space + masks */
    uint8_t reset_data[PCI_CONFIG_SIZE];       /* config contents at power-on */
    struct pci_dev_bar bars[PCI_DEV_NUM_BARS]; /* BAR0..5 (PCI 3.0 6.2.5.1) */
    struct bus *pio, *mmio;                    /* buses BARs map onto (NULL: never mapped) */
    uint8_t cap_last;                          /* offset of the last capability, 0 = none */
    uint8_t cap_free;                          /* first free config byte for the next one */
    struct irq_line intx;                      /* INTx# pin's line (PCI 3.0 2.2.6) */
    bool intx_level;                           /* device's INTx request before INTx-disable */
    struct pci_msi_sink msi;                   /* where MSI/MSI-X messages go */
    uint8_t msi_cap;                           /* MSI capability offset, 0 = none */
    uint8_t msix_cap;                          /* MSI-X capability offset, 0 = none */
    unsigned msix_nvec;                        /* MSI-X table size */
    int msix_bar;                              /* BAR holding table and PBA */
    uint32_t msix_table_off;                   /* table offset in that BAR */
    uint32_t msix_pba_off;                     /* PBA offset in that BAR */
    uint8_t *msix_table;                       /* msix_nvec * 16 bytes (PCI 3.0 6.8.2.6-9) */
    uint64_t *msix_pba;                        /* pending bits (PCI 3.0 6.8.2.10) */
    uint8_t *rom;                              /* expansion ROM image (PCI 3.0 6.3), or NULL */
    size_t rom_len;                            /* image bytes; the rest of the BAR reads 0 */
    uint64_t rom_size;                         /* ROM BAR size, power of two >= 2 KiB (6.2.5.2) */
    bool rom_mapped;                           /* ROM BAR registered on mmio at rom_base */
    uint64_t rom_base;                         /* its current address (valid when mapped) */
};

/* Sets up config space: IDs, subsystem IDs, INTx pin (1 = INTA#, 0 = none).
 * Returns 0 or -ENOMEM. */
int pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
                 uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id, uint8_t intx_pin);
void pci_dev_destroy(struct pci_dev *d);

/* Buses the BARs are mapped onto when the guest enables decoding, the INTx line
 * (its number also goes into INTERRUPT_LINE) and the MSI sink. Call before the
 * guest runs. */
void pci_dev_attach(struct pci_dev *d, struct bus *pio, struct bus *mmio,
                    const struct irq_line *intx, const struct pci_msi_sink *msi);

/* Declare BAR idx. 0, -EINVAL (bad index/size, or MEM64 at BAR5), -EEXIST. */
int pci_dev_add_bar(struct pci_dev *d, int idx, enum pci_bar_type type, uint64_t size,
                    const struct bus_ops *ops, void *opaque, const char *name);
/* Firmware-style pre-assignment (direct kernel boot has no BIOS to do it); the
 * value survives reset. Enable decoding with pci_dev_set_default_command. */
int pci_dev_set_bar_default(struct pci_dev *d, int idx, uint64_t base);
void pci_dev_set_default_command(struct pci_dev *d, uint16_t cmd);

/* Expansion ROM (PCI 3.0 6.2.5.2 / 6.3): a copy of image (len bytes) behind the ROM
 * BAR at 0x30, sized to the next power of two (2 KiB at least). The guest sizes it
 * like a memory BAR; it decodes read-only on mmio when both COMMAND.Memory and the
 * BAR's enable bit (bit 0) are set. Call before pci_dev_attach. 0, -EINVAL (empty
 * or larger than 16 MiB), -EEXIST or -ENOMEM. */
int pci_dev_set_rom(struct pci_dev *d, const void *image, size_t len);

/* Append a capability of len bytes (>= 2) with id; returns its config offset or
 * -ENOSPC. The caller fills bytes from off + 2 with pci_config_set_* and makes
 * guest-writable bits writable through d->cfg.wmask. */
int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len);
/* MSI-X with nvec vectors, table at table_off and PBA at pba_off inside BAR bar
 * (which must already exist and be big enough). Returns 0 or -EINVAL/-ENOMEM. */
int pci_dev_init_msix(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
                      uint32_t pba_off);
/* Single-vector 64-bit MSI. Returns 0 or -ENOSPC. */
int pci_dev_init_msi(struct pci_dev *d);

/* Power-on state: config space as initialised, BARs unmapped (or at their
 * defaults), MSI-X vectors masked, PBA clear, INTx low. */
void pci_dev_reset(struct pci_dev *d);

/* Config space access (the pci_host callbacks). */
uint32_t pci_dev_config_read(struct pci_dev *d, unsigned off, unsigned size);
void pci_dev_config_write(struct pci_dev *d, unsigned off, uint32_t val, unsigned size);
extern const struct pci_dev_ops pci_dev_config_ops; /* opaque = struct pci_dev * */

/* A BAR access as the bus would deliver it (tests; the trampolines use these). */
uint64_t pci_dev_bar_read(struct pci_dev *d, int bar, uint64_t off, unsigned size);
void pci_dev_bar_write(struct pci_dev *d, int bar, uint64_t off, uint64_t val, unsigned size);

/* Interrupts; see the header comment. */
bool pci_dev_msix_enabled(struct pci_dev *d);
int pci_dev_notify(struct pci_dev *d, unsigned vector);
void pci_dev_set_intx(struct pci_dev *d, int level);
/* Whether bus mastering (DMA) is on: devices must not touch guest RAM otherwise. */
bool pci_dev_bus_master(struct pci_dev *d);

/* Saved state: config space, MSI-X table and PBA, the INTx request. Loading is two
 * steps so a device can check all of its sections before changing anything:
 * pci_dev_parse() validates a section against this function (same IDs and
 * read-only bytes, same MSI-X size) into a heap copy, pci_dev_restore() applies
 * it (BAR mappings and the INTx line follow) and frees it. */
struct pci_dev_saved;
int pci_dev_save(struct pci_dev *d, GByteArray *out);
int pci_dev_parse(struct pci_dev *d, const uint8_t *buf, size_t len, size_t *consumed,
                  struct pci_dev_saved **out);
void pci_dev_restore(struct pci_dev *d, struct pci_dev_saved *s);
void pci_dev_saved_free(struct pci_dev_saved *s);

/* The PIIX swizzle: GSI for INTx pin (1..4) of a device in slot. */
int pci_dev_intx_gsi(int slot, int pin);

#endif
