/* I/O APIC (82093AA-style, version 0x20 with the directed EOI register), 24 pins.
 * Used with the soft CPU only; with KVM the in-kernel IOAPIC is used.
 *
 * MMIO window at IOAPIC_DEFAULT_BASE: IOREGSEL at 0x00, IOWIN at 0x10, EOI at 0x40.
 * Register ioapic_bus_ops for IOAPIC_MMIO_SIZE bytes with the struct ioapic as
 * opaque; ioapic_read()/ioapic_write() take the offset in that window.
 *
 * A pin level of 1 means "asserted": the polarity bit is kept for the guest but the
 * machine already hands asserted/deasserted levels (as QEMU and KVM do). */
#ifndef LODGE_DEVICES_PC_IOAPIC_H
#define LODGE_DEVICES_PC_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "devices/device.h"

#define IOAPIC_DEFAULT_BASE 0xfec00000ull
#define IOAPIC_MMIO_SIZE 0x1000
#define IOAPIC_NUM_PINS 24

/* Delivery modes (redirection entry bits 10:8, also the LAPIC's ICR encoding). */
#define IOAPIC_DM_FIXED 0
#define IOAPIC_DM_LOWEST 1
#define IOAPIC_DM_SMI 2
#define IOAPIC_DM_NMI 4
#define IOAPIC_DM_INIT 5
#define IOAPIC_DM_EXTINT 7

struct ioapic;

/* Called with the IOAPIC lock held for every interrupt message: it must not call
 * back into this IOAPIC (the LAPIC defers its EOI callback for that reason). dest
 * is the 8-bit destination field, interpreted as a physical APIC ID or a logical
 * mask per dest_logical. */
typedef void (*ioapic_deliver_fn)(void *opaque, uint8_t dest, bool dest_logical,
                                  uint8_t delivery_mode, uint8_t vector, bool level_trigger);

struct ioapic *ioapic_new(uint8_t id, ioapic_deliver_fn deliver, void *opaque);
void ioapic_free(struct ioapic *io);

/* Pin gsi (0-23) to level; out-of-range pins are ignored. */
void ioapic_set_irq(struct ioapic *io, int gsi, int level);
/* A LAPIC got EOI for a level-triggered vector: clear Remote IRR on every pin with
 * that vector and deliver again where the pin is still asserted. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

uint64_t ioapic_read(struct ioapic *io, uint64_t off, unsigned size);
void ioapic_write(struct ioapic *io, uint64_t off, uint64_t val, unsigned size);

extern const struct bus_ops ioapic_bus_ops;
extern const struct device_ops ioapic_device_ops; /* dev is a struct ioapic * */

#endif
