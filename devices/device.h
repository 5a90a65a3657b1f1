/* The device ops table. A device core knows nothing of its bus: it gets its
 * struct irq_line and any backends at init, registers nothing itself, and is put
 * on a bus by a small adapter in the machine. */
#ifndef LODGE_DEVICES_DEVICE_H
#define LODGE_DEVICES_DEVICE_H

#include <glib.h>
#include <stdint.h>

struct device_ops {
    const char *name;
    void (*reset)(void *dev);                          /* power-on / system reset state */
    int (*save)(void *dev, GByteArray *out);           /* append versioned state */
    int (*load)(void *dev, const uint8_t *buf, size_t len); /* all or nothing; -EINVAL */
    void (*pause)(void *dev);                          /* devices with threads only */
    void (*resume)(void *dev);
};

#endif
