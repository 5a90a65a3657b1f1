/* High Precision Event Timer (IA-PC HPET spec 1.0a): a 64-bit main counter at
 * 100 MHz and three comparators, each periodic-capable and 64-bit. Used with the
 * soft CPU only (KVM guests use the same model: HPET is not in the kernel).
 *
 * MMIO at HPET_DEFAULT_BASE, HPET_MMIO_SIZE bytes: register hpet_bus_ops with the
 * struct hpet as opaque; hpet_read()/hpet_write() take the offset in that window
 * and accept 4- and 8-byte accesses.
 *
 * Interrupts go out through irq(opaque, gsi, level): gsi is the IOAPIC pin from
 * the timer's route field (one of HPET_INT_ROUTE_CAP), or in legacy replacement
 * mode ISA IRQ 0 for timer 0 and ISA IRQ 8 for timer 1 (the machine sends ISA IRQ 0
 * to PIC input 0 and IOAPIC pin 2, as the MADT override says, and stops the PIT's
 * and RTC's own lines). Edge timers pulse the line, level timers hold it until the
 * guest clears the status bit. */
#ifndef LODGE_DEVICES_PC_HPET_H
#define LODGE_DEVICES_PC_HPET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/timer.h"
#include "devices/device.h"

#define HPET_DEFAULT_BASE 0xfed00000ull
#define HPET_MMIO_SIZE 0x400
#define HPET_NUM_TIMERS 3
#define HPET_PERIOD_FS 10000000u       /* 10 ns: 100 MHz */
#define HPET_INT_ROUTE_CAP 0x00ff0104u /* IOAPIC pins 2, 8 and 16-23 */

struct hpet;

/* irq is called with the HPET lock held: it must not call back into this HPET. */
struct hpet *hpet_new(struct timerq *q, void (*irq)(void *opaque, int gsi, int level),
                      void *opaque);
void hpet_free(struct hpet *h);

uint64_t hpet_read(struct hpet *h, uint64_t off, unsigned size);
void hpet_write(struct hpet *h, uint64_t off, uint64_t val, unsigned size);

extern const struct bus_ops hpet_bus_ops;
extern const struct device_ops hpet_device_ops; /* dev is a struct hpet * */

#endif
