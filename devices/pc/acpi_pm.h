/* ACPI fixed-hardware PM block in the PIIX4 layout our FADT describes, plus the
 * 0xCF9 reset control register, both bus-agnostic.
 *
 * acpi_pm offsets from pm_base (ACPI 6.x section 4.8):
 *   0x00 PM1a_EVT_BLK (4): PM1 status (2, write 1 to clear) then PM1 enable (2)
 *   0x04 PM1a_CNT_BLK (2): SCI_EN, SLP_TYP (bits 10-12), SLP_EN (bit 13)
 *   0x08 PM_TMR_BLK   (4): 24-bit counter at 3.579545 MHz
 *   0x20 GPE0_BLK     (4): GPE0 status (2, write 1 to clear) then GPE0 enable (2)
 * The SCI (IRQ 9, level, active high as the FADT/MADT declare it) is high while
 * (PM1 status & enable) or (GPE0 status & enable) is non-zero. SCI_EN reads 1 from
 * reset because the FADT has no SMI_CMD: the OS finds the machine in ACPI mode.
 *
 * reset_ctl is the one-byte register at 0xCF9: writing RST_CPU (bit 2), e.g.
 * 0x06 or 0x0E, calls the reset callback. 0xCF9 sits inside the 0xCF8 dword of
 * PCI config mechanism #1; see pci_host.h for how the ranges are registered.
 *
 * Locking: one mutex per device; irq_set() is called with it held, the poweroff
 * and reset callbacks with it released. */
#ifndef LODGE_DEVICES_PC_ACPI_PM_H
#define LODGE_DEVICES_PC_ACPI_PM_H

#include "core/bus.h"
#include "core/timer.h"
#include "devices/device.h"
#include "devices/irq.h"

#include <stdint.h>

#define ACPI_PM_BASE_DEFAULT 0x600
#define ACPI_PM_IO_LEN 0x40 /* the PIIX4 PM I/O space is 64 bytes */
#define ACPI_PM_SCI_IRQ 9

#define ACPI_PM1_EVT_OFF 0x00
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_OFF 0x04
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_OFF 0x08
#define ACPI_PM_TMR_LEN 4
#define ACPI_GPE0_OFF 0x20
#define ACPI_GPE0_LEN 4

#define ACPI_PM_TMR_HZ 3579545

/* SLP_TYP values the DSDT's \_S0 and \_S5 packages must carry. */
#define ACPI_PM_S0_TYP 0
#define ACPI_PM_S5_TYP 5

/* PM1 status/enable bits (ACPI 4.8.4.1). */
#define ACPI_PM1_TMR 0x0001
#define ACPI_PM1_GBL 0x0020
#define ACPI_PM1_PWRBTN 0x0100
#define ACPI_PM1_SLPBTN 0x0200
#define ACPI_PM1_RTC 0x0400
#define ACPI_PM1_WAK 0x8000 /* status only */

/* PM1 control bits (ACPI 4.8.4.2). */
#define ACPI_PM1_CNT_SCI_EN 0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_EN 0x2000

struct acpi_pm_callbacks {
    void *opaque;
    void (*poweroff)(void *opaque); /* guest entered S5 */
};

struct acpi_pm;

/* tq (may be NULL) clocks PM_TMR; without it the host monotonic clock does. */
struct acpi_pm *acpi_pm_new(const struct irq_line *sci, struct timerq *tq,
                            const struct acpi_pm_callbacks *cb);
void acpi_pm_free(struct acpi_pm *pm);

uint64_t acpi_pm_read(struct acpi_pm *pm, uint64_t off, unsigned size);
void acpi_pm_write(struct acpi_pm *pm, uint64_t off, uint64_t val, unsigned size);

/* Host events: the power button sets PWRBTN_STS; a GPE (0..15) sets its status bit. */
void acpi_pm_power_button(struct acpi_pm *pm);
int acpi_pm_gpe_raise(struct acpi_pm *pm, unsigned gpe);

extern const struct bus_ops acpi_pm_bus_ops;       /* opaque = struct acpi_pm *, ACPI_PM_IO_LEN */
extern const struct device_ops acpi_pm_device_ops; /* dev = struct acpi_pm * */

#define RESET_CTL_PORT 0xcf9
#define RESET_CTL_IO_LEN 1
#define RESET_CTL_SYS_RST 0x02
#define RESET_CTL_RST_CPU 0x04
#define RESET_CTL_FULL_RST 0x08

struct reset_ctl;

struct reset_ctl *reset_ctl_new(void (*reset)(void *opaque), void *opaque);
void reset_ctl_free(struct reset_ctl *rc);
uint64_t reset_ctl_read(struct reset_ctl *rc, uint64_t off, unsigned size);
void reset_ctl_write(struct reset_ctl *rc, uint64_t off, uint64_t val, unsigned size);

extern const struct bus_ops reset_ctl_bus_ops;       /* opaque = struct reset_ctl * */
extern const struct device_ops reset_ctl_device_ops; /* dev = struct reset_ctl * */

#endif
