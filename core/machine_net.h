/* Network cards of the PC machine (--net user,...): one libslirp backend per NIC,
 * a virtio-net or e1000 in front of it. Called from core/machine_pci.c.
 *
 * Placement: NIC i at 00:(MACHINE_NET_FIRST_SLOT + i).0, memory BARs from
 * MACHINE_NET_MMIO_BASE + i * MACHINE_NET_MMIO_STRIDE, I/O BAR (e1000) at
 * MACHINE_NET_IO_BASE + i * 0x40; MAC 52:54:00:12:34:56 + i unless mac= is given. */
#ifndef LODGE_CORE_MACHINE_NET_H
#define LODGE_CORE_MACHINE_NET_H

#include <stddef.h>

#define MACHINE_NET_FIRST_SLOT 16
#define MACHINE_NET_MMIO_BASE 0xe1000000u
#define MACHINE_NET_MMIO_STRIDE 0x40000u
#define MACHINE_NET_IO_BASE 0xc000u
/* iPXE option ROMs (Debian ipxe-qemu), loaded into the NIC's expansion ROM BAR when
 * the machine boots firmware: pxe-MODEL.rom for SeaBIOS, efi-MODEL.rom for OVMF. */
#define MACHINE_NET_ROM_DIR "/usr/lib/ipxe/qemu"
#define MACHINE_NET_ROM_PKG "ipxe-qemu"

struct machine;
struct machine_error;
struct machine_pci_config;
struct machine_net;

/* Creates pc->nics; *out is set as soon as anything exists (free it on failure too). */
int machine_net_add(struct machine *m, const struct machine_pci_config *pc,
                    struct machine_net **out, struct machine_error *err);
void machine_net_reset(struct machine_net *mn);
/* The iPXE ROM file for a NIC model under firmware kind (enum boot_fw_kind), written
 * into buf; 0 or -EINVAL when the combination has no ROM. */
int machine_net_rom_path(int model, int fw_kind, char *buf, size_t len);
/* Call with the main loop thread stopped. NULL is fine. */
void machine_net_free(struct machine_net *mn);

#endif
