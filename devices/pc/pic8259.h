/* Two cascaded 8259A programmable interrupt controllers plus the ELCR (edge/level
 * control registers), as on every PC since the AT. Used with the soft CPU only;
 * with KVM the in-kernel PIC is used.
 *
 * Ports: master 0x20/0x21, slave 0xA0/0xA1 (on master input 2), ELCR 0x4D0/0x4D1.
 * pic_read()/pic_write() take the absolute port number; the three bus_ops tables
 * below are for ranges registered at PIC_PORT_MASTER, PIC_PORT_SLAVE and
 * PIC_PORT_ELCR (length 2 each), all with the struct pic as opaque. */
#ifndef LODGE_DEVICES_PC_PIC8259_H
#define LODGE_DEVICES_PC_PIC8259_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "devices/device.h"

#define PIC_PORT_MASTER 0x20
#define PIC_PORT_SLAVE 0xa0
#define PIC_PORT_ELCR 0x4d0
#define PIC_NUM_IRQS 16

struct pic;

/* intr_changed is called when the master's INTR output changes level; it runs
 * without the PIC lock held, so it may call pic_has_intr()/pic_ack(). Two racing
 * changes may be reported out of order: listeners treat it as a hint and ask
 * pic_has_intr(). intr_changed may be NULL. */
struct pic *pic_new(void (*intr_changed)(void *opaque, bool level), void *opaque);
void pic_free(struct pic *pic);

/* Input line irq (0-15) to level (0/1). Edge lines latch rising edges; level lines
 * (ELCR bit set) follow the input. Out-of-range irq is ignored. */
void pic_set_irq(struct pic *pic, int irq, int level);
/* The INTR output: an unmasked request outranks everything in service. */
bool pic_has_intr(struct pic *pic);
/* INTA cycle: returns the vector and updates IRR/ISR on both chips. With nothing
 * pending it returns the spurious vector (master base + 7, or slave base + 7 when
 * the slave's request went away after the master acknowledged input 2). */
int pic_ack(struct pic *pic);

uint64_t pic_read(struct pic *pic, uint64_t port, unsigned size);
void pic_write(struct pic *pic, uint64_t port, uint64_t val, unsigned size);

extern const struct bus_ops pic_master_bus_ops; /* at 0x20, length 2 */
extern const struct bus_ops pic_slave_bus_ops;  /* at 0xA0, length 2 */
extern const struct bus_ops pic_elcr_bus_ops;   /* at 0x4D0, length 2 */
extern const struct device_ops pic_device_ops;  /* dev is a struct pic * */

#endif
