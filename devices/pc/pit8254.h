/* 8254 programmable interval timer (three channels at 1.193182 MHz) and the
 * port 0x61 system control bits that gate channel 2 and read its output.
 *
 * Counts are computed from the timer queue's clock, so a read between two timer
 * callbacks returns the exact count (Linux calibrates the TSC this way). Channel 0
 * drives IRQ 0 through the irq_line given to pit_new: a pulse per period in modes
 * 2 and 3 (one host timer per period), a level that rises at terminal count in
 * modes 0 and 1, a pulse at terminal count in modes 4 and 5.
 *
 * pit_read()/pit_write() take the absolute port: 0x40-0x43 or 0x61. Register
 * pit_bus_ops at PIT_PORT_BASE (length 4) and pit_port61_bus_ops at PIT_PORT_61
 * (length 1), both with the struct pit as opaque. */
#ifndef LODGE_DEVICES_PC_PIT8254_H
#define LODGE_DEVICES_PC_PIT8254_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/timer.h"
#include "devices/device.h"
#include "devices/irq.h"

#define PIT_PORT_BASE 0x40
#define PIT_PORT_61 0x61
#define PIT_FREQ_HZ 1193182u

struct pit;

/* irq0 is copied; it may be NULL (no interrupt output). */
struct pit *pit_new(struct timerq *q, const struct irq_line *irq0);
void pit_free(struct pit *pit);

uint64_t pit_read(struct pit *pit, uint64_t port, unsigned size);
void pit_write(struct pit *pit, uint64_t port, uint64_t val, unsigned size);

/* Gate input of a channel (0-2); channel 2's gate is also port 0x61 bit 0. */
void pit_set_gate(struct pit *pit, int channel, bool level);
/* OUT pin of a channel (0-2) now. */
bool pit_get_out(struct pit *pit, int channel);

extern const struct bus_ops pit_bus_ops;        /* 0x40-0x43 */
extern const struct bus_ops pit_port61_bus_ops; /* 0x61 */
extern const struct device_ops pit_device_ops;  /* dev is a struct pit * */

#endif
