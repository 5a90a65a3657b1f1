/* PCI devices on the PC machine: virtio-blk (--drive), virtio-serial with named
 * ports (--device virtio-serial, --virtio-port), virtio-rng (--device virtio-rng).
 *
 * The CLI fills a struct machine_pci_config with the parse helpers below and
 * hands it to machine_new through machine_config.pci; the machine calls
 * machine_pci_add_devices() after its platform devices, machine_pci_reset() on
 * every reset and machine_pci_free() before the buses go away.
 *
 * Placement: functions at 00:03.0 upward (drives, then virtio-serial, then
 * virtio-rng); BARs pre-assigned from MACHINE_PCI_MMIO_BASE (64 KiB per function)
 * with memory decoding on, as firmware would leave them for a direct kernel boot;
 * INTx through the PIIX swizzle to GSI 10/11 (pci_dev.h). */
#ifndef LODGE_CORE_MACHINE_PCI_H
#define LODGE_CORE_MACHINE_PCI_H

#include "net/net.h"

#include <stdbool.h>
#include <stddef.h>

#define MACHINE_PCI_MAX_DRIVES 4
#define MACHINE_PCI_MAX_PORTS 7
#define MACHINE_PCI_FIRST_SLOT 3
#define MACHINE_PCI_MMIO_BASE 0xe0000000u
#define MACHINE_PCI_MMIO_STRIDE 0x10000u

struct machine_drive {
    char path[4096]; /* file= */
    int format;      /* enum image_format: AUTO probes */
    bool readonly;   /* readonly=on */
};

struct machine_vport {
    char name[64];      /* name=: the guest's /dev/virtio-ports/NAME */
    bool console;       /* console=on: port 0, the guest's hvc0 */
    char chardev[4096]; /* chardev=SPEC (stdio, file:P, unix:P, none) */
};

struct machine_pci_config {
    struct machine_drive drives[MACHINE_PCI_MAX_DRIVES];
    int ndrives;
    bool rng;    /* --device virtio-rng */
    bool serial; /* --device virtio-serial (implied by --virtio-port) */
    bool tablet; /* --device virtio-tablet (lodge run adds it with a display or --ctl) */
    struct machine_vport ports[MACHINE_PCI_MAX_PORTS];
    int nports;
    struct net_nic_config nics[NET_MAX_NICS]; /* --net user,... (core/machine_net.c) */
    int nnics;
};

/* --drive file=F[,format=raw|qcow2|vmdk|vdi][,readonly=on|off]. 0 or -EINVAL with why. */
int machine_pci_parse_drive(struct machine_pci_config *pc, const char *spec, char *why, size_t len);
/* --device NAME: 1 when NAME is virtio-serial or virtio-rng (recorded), 0 when it
 * is not a PCI device of ours (the caller tries its other devices). */
int machine_pci_parse_device(struct machine_pci_config *pc, const char *spec);
/* --virtio-port name=NAME[,console=on],chardev=SPEC (chardev= last: it takes the
 * rest of the string). 0 or -EINVAL with why. */
int machine_pci_parse_port(struct machine_pci_config *pc, const char *spec, char *why, size_t len);

struct machine;
struct machine_error;
int machine_pci_add_devices(struct machine *m, struct machine_error *err);
void machine_pci_reset(struct machine *m);
void machine_pci_free(struct machine *m);
/* The virtio tablet (absolute pointer), or NULL when the machine has none. */
struct virtio_input;
struct virtio_input *machine_pci_tablet(struct machine *m);

#endif
