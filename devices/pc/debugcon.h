/* Debug console port (the Bochs/QEMU "port 0xE9 hack"): every byte the guest writes
 * goes straight to a host sink, unbuffered; a read returns 0xE9 so a guest can probe
 * for the port. Enabled with --debugcon stdio|file:PATH[,iobase=0xe9]. Stateless. */
#ifndef LODGE_DEVICES_PC_DEBUGCON_H
#define LODGE_DEVICES_PC_DEBUGCON_H

#include "core/bus.h"
#include "devices/device.h"

#include <stddef.h>
#include <stdint.h>

#define DEBUGCON_DEFAULT_IOBASE 0xe9
#define DEBUGCON_READBACK 0xe9

struct debugcon;

struct debugcon_config {
    char sink[4096]; /* chardev spec for the output: "stdio" or "file:PATH" */
    uint16_t iobase; /* the one port */
};

/* Parse "stdio|file:PATH[,iobase=N]" (the last ",iobase=" wins, so a path may hold
 * commas). 0, or -EINVAL with "<problem>" in err. */
int debugcon_parse(const char *spec, struct debugcon_config *cfg, char *err, size_t errlen);

/* write_fn receives each guest byte as it is written. */
struct debugcon *debugcon_new(void (*write_fn)(void *opaque, const uint8_t *buf, size_t len),
                              void *opaque);
void debugcon_free(struct debugcon *d);
uint64_t debugcon_read(struct debugcon *d, uint64_t off, unsigned size);
void debugcon_write(struct debugcon *d, uint64_t off, uint64_t val, unsigned size);

extern const struct bus_ops debugcon_bus_ops;       /* opaque = struct debugcon * */
extern const struct device_ops debugcon_device_ops; /* dev = struct debugcon * */

#endif
