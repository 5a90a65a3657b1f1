/* Intel 82540EM Gigabit Ethernet (PCI 8086:100E), the NIC guests without virtio
 * drivers know (iPXE, installers, older OSes). Register-level model after the
 * PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's Manual
 * (SDM, rev 4.0): microwire EEPROM behind EECD (and EERD), a Marvell 88E1011 PHY
 * behind MDIC, legacy and extended (context + data) transmit descriptors with
 * checksum offload and TSO, legacy receive descriptors, ICR/IMS interrupts on INTx.
 *
 * TSO super-frames are forwarded whole with their lengths and checksums made
 * those of one big packet (the user-mode backend takes them), not segmented.
 * Receive checksum offload (RXCSUM IPOFLD/TUOFLD, IPv4): IPCS/TCPCS with IPE/TCPE.
 * Interrupt moderation once e1000_set_timerq() gave the device a clock: ITR (at most
 * one interrupt per ITR x 256 ns, SDM 13.4.18), the receive delay timers RDTR/RADV and
 * the transmit delay timers TIDV/TADV for descriptors with IDE (SDM 3.2.7, 3.4). Without
 * a timer queue every completion interrupts at once.
 *
 * BAR0: 128 KiB memory (registers); BAR1: 64-byte I/O window (IOADDR/IODATA). */
#ifndef LODGE_DEVICES_NET_E1000_H
#define LODGE_DEVICES_NET_E1000_H

#include "core/guestmem.h"
#include "core/timer.h"
#include "devices/device.h"
#include "devices/pci/pci_dev.h"
#include "net/net.h"

#include <stdbool.h>
#include <stdint.h>

#define E1000_VENDOR 0x8086
#define E1000_DEVICE_82540EM 0x100e
#define E1000_MMIO_SIZE 0x20000
#define E1000_IO_SIZE 0x40
#define E1000_EEPROM_WORDS 64
#define E1000_EEPROM_SUM 0xbaba /* words 0..0x3f add up to this (SDM 5.6.1) */

/* Registers (SDM 13.4) */
#define E1000_CTRL 0x0000
#define E1000_STATUS 0x0008
#define E1000_EECD 0x0010
#define E1000_EERD 0x0014
#define E1000_MDIC 0x0020
#define E1000_ICR 0x00c0
#define E1000_ITR 0x00c4
#define E1000_ICS 0x00c8
#define E1000_IMS 0x00d0
#define E1000_IMC 0x00d8
#define E1000_RCTL 0x0100
#define E1000_TCTL 0x0400
#define E1000_RDBAL 0x2800
#define E1000_RDBAH 0x2804
#define E1000_RDLEN 0x2808
#define E1000_RDH 0x2810
#define E1000_RDT 0x2818
#define E1000_TDBAL 0x3800
#define E1000_TDBAH 0x3804
#define E1000_TDLEN 0x3808
#define E1000_TDH 0x3810
#define E1000_TDT 0x3818
#define E1000_RDTR 0x2820
#define E1000_RADV 0x282c
#define E1000_TIDV 0x3820
#define E1000_TADV 0x382c
#define E1000_RXCSUM 0x5000
#define E1000_MTA 0x5200
#define E1000_RAL0 0x5400
#define E1000_RAH0 0x5404

#define E1000_CTRL_SLU (1u << 6)
#define E1000_CTRL_RST (1u << 26)
#define E1000_STATUS_FD 0x1
#define E1000_STATUS_LU 0x2
#define E1000_STATUS_SPEED_1000 0x80
#define E1000_EECD_SK 0x1
#define E1000_EECD_CS 0x2
#define E1000_EECD_DI 0x4
#define E1000_EECD_DO 0x8
#define E1000_EECD_REQ 0x40
#define E1000_EECD_GNT 0x80
#define E1000_EECD_PRES 0x100
#define E1000_EERD_START 0x1
#define E1000_EERD_DONE 0x10
#define E1000_MDIC_OP_WRITE (1u << 26)
#define E1000_MDIC_OP_READ (2u << 26)
#define E1000_MDIC_READY (1u << 28)
#define E1000_MDIC_ERROR (1u << 30)
#define E1000_ICR_TXDW 0x1
#define E1000_ICR_TXQE 0x2
#define E1000_ICR_LSC 0x4
#define E1000_ICR_RXO 0x40
#define E1000_ICR_RXT0 0x80
#define E1000_ICR_ASSERTED 0x80000000u
#define E1000_RCTL_EN 0x2
#define E1000_RCTL_UPE 0x8
#define E1000_RCTL_MPE 0x10
#define E1000_RCTL_LPE 0x20 /* long packet enable: else frames > 1522 bytes are dropped */
#define E1000_RCTL_BAM 0x8000
#define E1000_RCTL_BSEX (1u << 25)
#define E1000_RCTL_SECRC (1u << 26)
#define E1000_TCTL_EN 0x2
#define E1000_RAH_AV 0x80000000u

/* Descriptor bits (SDM 3.2.3, 3.3.3, 3.3.6, 3.3.7) */
#define E1000_DESC_SIZE 16
#define E1000_RXD_STAT_DD 0x01
#define E1000_RXD_STAT_EOP 0x02
#define E1000_RXD_STAT_IXSM 0x04
#define E1000_RXD_STAT_TCPCS 0x20
#define E1000_RXD_STAT_IPCS 0x40
#define E1000_RXD_ERR_TCPE 0x20
#define E1000_RXD_ERR_IPE 0x40
#define E1000_RXCSUM_IPOFLD 0x100
#define E1000_RXCSUM_TUOFLD 0x200
#define E1000_RDTR_FPD 0x80000000u
#define E1000_ITR_UNIT_NS 256     /* ITR interval unit (SDM 13.4.18) */
#define E1000_DELAY_UNIT_NS 1024  /* RDTR/RADV/TIDV/TADV unit (SDM 13.4.31) */
#define E1000_TXD_CMD_EOP 0x01
#define E1000_TXD_CMD_IC 0x04
#define E1000_TXD_CMD_TSE 0x04
#define E1000_TXD_CMD_RS 0x08
#define E1000_TXD_CMD_DEXT 0x20
#define E1000_TXD_CMD_IDE 0x80
#define E1000_TXD_STAT_DD 0x01
#define E1000_TXD_POPTS_IXSM 0x01
#define E1000_TXD_POPTS_TXSM 0x02
#define E1000_TXD_DTYP_C 0x0
#define E1000_TXD_DTYP_D 0x1

/* PHY registers (IEEE 802.3 22.2.4 + M88E1011) */
#define E1000_PHY_CTRL 0
#define E1000_PHY_STATUS 1
#define E1000_PHY_ID1 2
#define E1000_PHY_ID2 3
#define E1000_PHY_REGS 32

struct e1000;

/* The device installs itself as be's peer (be may be NULL: frames go nowhere). */
struct e1000 *e1000_new(const struct guestmem *mem, const uint8_t mac[6], struct net_backend *be);
void e1000_free(struct e1000 *s);
/* The PCI function (BARs declared; attach and register it with pci_host). */
struct pci_dev *e1000_pci(struct e1000 *s);
/* Gives the device a clock for interrupt moderation (ITR, RDTR/RADV, TIDV/TADV);
 * call once after e1000_new. 0 or -ENOMEM. */
int e1000_set_timerq(struct e1000 *s, struct timerq *tq);
/* Power-on state of registers, EEPROM state machine and PHY. */
void e1000_reset(struct e1000 *s);
/* Carrier change: STATUS.LU, PHY status, and an LSC interrupt. */
void e1000_set_link(struct e1000 *s, bool up);
/* System reset, save and load (dev = struct e1000 *): the PCI function's section then
 * an "e1000" section (register file, EEPROM and its microwire state, PHY, transmit
 * context and a packet gathered before its EOP). A refused stream changes nothing. */
extern const struct device_ops e1000_device_ops;
/* Register access as BAR0 delivers it (tests). */
uint64_t e1000_mmio_read(struct e1000 *s, uint64_t off, unsigned size);
void e1000_mmio_write(struct e1000 *s, uint64_t off, uint64_t val, unsigned size);

#endif
