/* Intel 8042 keyboard controller with an AT keyboard behind it, bus-agnostic.
 *
 * Offsets: 0 = data port (0x60), 4 = status/command port (0x64), i.e. port - 0x60.
 * 0x61 belongs to the PIT/speaker, so the machine registers two one-byte ranges:
 *   bus_register(pio, 0x60, 1, &i8042_data_bus_ops, k, "i8042-data");
 *   bus_register(pio, 0x64, 1, &i8042_cmd_bus_ops, k, "i8042-cmd");
 *
 * Host key events are set-1 (XT) scancodes, e.g. {0x1e} / {0x9e} for A down/up and
 * {0xe0, 0x48} for cursor up; the model converts them to set 2 when the guest turns
 * off the controller's translation. The A20 gate starts enabled.
 *
 * The aux port has a built-in PS/2 mouse (IntelliMouse wheel after the 200/100/80
 * sample-rate knock, stream and remote modes, IRQ 12). An external aux device set with
 * i8042_set_aux replaces it; with neither (i8042_set_mouse(k, false)), bytes sent to
 * the aux port are answered with 0xFE like an absent mouse.
 *
 * Locking: one mutex per controller; irq_set() is called with it held. The reset,
 * a20 and aux write callbacks are called with it released, so they may call back
 * into the controller (e.g. an aux device answering through i8042_aux_data). */
#ifndef LODGE_DEVICES_PC_I8042_H
#define LODGE_DEVICES_PC_I8042_H

#include "core/bus.h"
#include "devices/device.h"
#include "devices/irq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12
#define I8042_OFF_DATA 0
#define I8042_OFF_CMD 4

struct i8042_callbacks {
    void *opaque;
    void (*reset)(void *opaque);        /* CPU reset line pulsed (0xFE, or 0xD1 bit 0 = 0) */
    void (*a20)(void *opaque, bool on); /* output port bit 1 changed */
};

/* The device on the aux port (a PS/2 mouse, later). */
struct i8042_aux_ops {
    void *opaque;
    void (*write)(void *opaque, uint8_t byte); /* guest -> device byte (command 0xD4) */
};

struct i8042;

/* Both irq lines and cb are copied; any may be NULL. */
struct i8042 *i8042_new(const struct irq_line *kbd_irq, const struct irq_line *aux_irq,
                        const struct i8042_callbacks *cb);
void i8042_free(struct i8042 *k);

uint64_t i8042_read(struct i8042 *k, uint64_t off, unsigned size);
void i8042_write(struct i8042 *k, uint64_t off, uint64_t val, unsigned size);

/* Host keyboard input (set-1 scancodes). The whole sequence is queued or, when the
 * keyboard's 16-byte buffer lacks room, dropped with -ENOSPC. Dropped silently (0)
 * while the guest has scanning disabled, as a real keyboard does. */
int i8042_key_event(struct i8042 *k, const uint8_t *scancode, size_t n);

/* Host pointer motion for the built-in mouse: dx right, dy down (screen directions),
 * wheel > 0 turned away from the user (scroll up), buttons bit 0 left, 1 right,
 * 2 middle. Motion is accumulated and sent in packets as the guest reads them;
 * dropped while reporting is off in stream mode. -ENODEV without the mouse. */
int i8042_mouse_event(struct i8042 *k, int dx, int dy, int wheel, unsigned buttons);
/* Whether the built-in mouse is plugged in (it is after i8042_new). */
void i8042_set_mouse(struct i8042 *k, bool present);

/* Aux port hooks: attach a device (NULL detaches), and bytes from it to the guest.
 * i8042_aux_data returns bytes accepted. */
void i8042_set_aux(struct i8042 *k, const struct i8042_aux_ops *ops);
int i8042_aux_data(struct i8042 *k, const uint8_t *buf, size_t n);

extern const struct bus_ops i8042_bus_ops;       /* offsets 0 and 4, for a 5-byte range */
extern const struct bus_ops i8042_data_bus_ops;  /* one-byte range at 0x60 */
extern const struct bus_ops i8042_cmd_bus_ops;   /* one-byte range at 0x64 */
extern const struct device_ops i8042_device_ops; /* dev = struct i8042 * */

#endif
