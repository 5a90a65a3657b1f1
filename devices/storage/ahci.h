/* AHCI 1.3 SATA host bus adapter (Intel ICH9 identity 8086:2922, class 01.06.01)
 * with ATA disks and ATAPI CD/DVD-ROM drives on its ports.
 *
 * The HBA is a PCI function: registers in ABAR (BAR5, AHCI_ABAR_SIZE bytes), one
 * MSI vector, else INTx. ahci_pci() gives the struct pci_dev for the machine to
 * place on the host bridge; the machine calls pci_dev_attach() on it.
 *
 * Commands run synchronously on the thread that writes PxCI (a vCPU thread): the
 * command list, FISes and PRDT are read and the data moved through guestmem with
 * every address and length checked; a bad PRDT ends the command with a task file
 * error, never a host fault. NCQ is not offered (CAP.SNCQ = 0).
 *
 * Backends belong to the caller and must outlive their attachment (until
 * ahci_free or ahci_cdrom_eject). All public functions take the HBA's lock. */
#ifndef LODGE_DEVICES_STORAGE_AHCI_H
#define LODGE_DEVICES_STORAGE_AHCI_H

#include "core/guestmem.h"
#include "devices/device.h"
#include "devices/pci/pci_dev.h"
#include "devices/storage/storage_backend.h"

#include <stdbool.h>
#include <stdint.h>

#define AHCI_PCI_VENDOR 0x8086
#define AHCI_PCI_DEVICE 0x2922 /* ICH9 6-port SATA controller [AHCI mode] */
#define AHCI_PCI_CLASS 0x010601
#define AHCI_ABAR 5
#define AHCI_ABAR_SIZE 0x1000
#define AHCI_NUM_PORTS 6
#define AHCI_NUM_SLOTS 32

/* Generic host control (AHCI 1.3 3.1) */
#define AHCI_REG_CAP 0x00
#define AHCI_REG_GHC 0x04
#define AHCI_REG_IS 0x08
#define AHCI_REG_PI 0x0c
#define AHCI_REG_VS 0x10
#define AHCI_REG_CAP2 0x24
#define AHCI_GHC_HR 0x00000001u
#define AHCI_GHC_IE 0x00000002u
#define AHCI_GHC_AE 0x80000000u

/* Port registers at 0x100 + port * 0x80 (AHCI 1.3 3.3) */
#define AHCI_PORT_BASE 0x100
#define AHCI_PORT_STRIDE 0x80
#define AHCI_PX_CLB 0x00
#define AHCI_PX_CLBU 0x04
#define AHCI_PX_FB 0x08
#define AHCI_PX_FBU 0x0c
#define AHCI_PX_IS 0x10
#define AHCI_PX_IE 0x14
#define AHCI_PX_CMD 0x18
#define AHCI_PX_TFD 0x20
#define AHCI_PX_SIG 0x24
#define AHCI_PX_SSTS 0x28
#define AHCI_PX_SCTL 0x2c
#define AHCI_PX_SERR 0x30
#define AHCI_PX_SACT 0x34
#define AHCI_PX_CI 0x38

/* PxIS / PxIE bits */
#define AHCI_PX_IS_DHRS 0x00000001u /* D2H register FIS received */
#define AHCI_PX_IS_PSS 0x00000002u  /* PIO setup FIS received */
#define AHCI_PX_IS_OFS 0x01000000u  /* overflow: PRDT shorter than the data */
#define AHCI_PX_IS_HBFS 0x20000000u /* host bus fatal error (bad command list/table) */
#define AHCI_PX_IS_TFES 0x40000000u /* task file error */

/* PxCMD bits */
#define AHCI_PX_CMD_ST 0x00000001u
#define AHCI_PX_CMD_SUD 0x00000002u
#define AHCI_PX_CMD_POD 0x00000004u
#define AHCI_PX_CMD_CLO 0x00000008u
#define AHCI_PX_CMD_FRE 0x00000010u
#define AHCI_PX_CMD_FR 0x00004000u
#define AHCI_PX_CMD_CR 0x00008000u
#define AHCI_PX_CMD_ATAPI 0x01000000u

#define AHCI_SIG_ATA 0x00000101u
#define AHCI_SIG_ATAPI 0xeb140101u

enum ahci_dev_kind {
    AHCI_DEV_NONE = 0,
    AHCI_DEV_DISK,  /* ATA disk */
    AHCI_DEV_CDROM, /* ATAPI CD/DVD-ROM, medium optional */
};

struct ahci;

/* mem is the guest RAM the HBA DMAs into; it must outlive the HBA. */
struct ahci *ahci_new(const struct guestmem *mem);
void ahci_free(struct ahci *s);
struct pci_dev *ahci_pci(struct ahci *s);

/* Before the guest runs: a disk (serial may be NULL) or a CD-ROM drive (be NULL:
 * empty drive) on port 0..AHCI_NUM_PORTS-1. 0, -EINVAL or -EEXIST. */
int ahci_attach_disk(struct ahci *s, int port, const struct storage_backend *be,
                     const char *serial);
int ahci_attach_cdrom(struct ahci *s, int port, const struct storage_backend *be);

/* Media change on a CD-ROM port (control socket, tests): the guest sees a UNIT
 * ATTENTION and a media event. Eject refuses a drive the guest locked unless force.
 * 0, -EINVAL (no CD-ROM there), -EBUSY (locked). After eject the old backend is
 * no longer used and may be closed. */
int ahci_cdrom_insert(struct ahci *s, int port, const struct storage_backend *be);
int ahci_cdrom_eject(struct ahci *s, int port, bool force);

/* ABAR access as the bus delivers it (the BAR's bus_ops call these). */
uint64_t ahci_abar_read(struct ahci *s, uint64_t off, unsigned size);
void ahci_abar_write(struct ahci *s, uint64_t off, uint64_t val, unsigned size);

extern const struct device_ops ahci_device_ops; /* dev = struct ahci * */

#endif
