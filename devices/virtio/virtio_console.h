/* virtio-console with multiport (virtio 1.1, 5.3): named ports such as
 * com.redhat.spice.0 and org.lodge.agent.0 that a guest opens as
 * /dev/virtio-ports/NAME, plus an optional console port 0 (hvc0).
 *
 * Queues: port 0 rx/tx = 0/1, control rx/tx = 2/3, port n >= 1 rx/tx = 2n+2/2n+3.
 * Control messages (5.3.6.2) handled: DEVICE_READY -> DEVICE_ADD per port;
 * PORT_READY -> CONSOLE_PORT (port 0), PORT_NAME, PORT_OPEN(1) (the host side of
 * a port counts as always connected); PORT_OPEN from the guest gates host->guest
 * data.
 *
 * Each port has a backend write callback (guest -> host bytes); host -> guest
 * bytes come in through virtio_console_port_receive(), which takes what fits in
 * the guest's receive buffers and returns how much (chardev_set_receiver style,
 * so the chardev retries the rest). */
#ifndef LODGE_DEVICES_VIRTIO_VIRTIO_CONSOLE_H
#define LODGE_DEVICES_VIRTIO_VIRTIO_CONSOLE_H

#include "core/guestmem.h"
#include "devices/virtio/virtio_pci.h"

#include <stddef.h>
#include <stdint.h>

#define VIRTIO_CONSOLE_F_SIZE 0
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_MAX_PORTS 8
#define VIRTIO_CONSOLE_NAME_MAX 63

/* Control events (5.3.6.2) */
#define VIRTIO_CONSOLE_DEVICE_READY 0
#define VIRTIO_CONSOLE_DEVICE_ADD 1
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2
#define VIRTIO_CONSOLE_PORT_READY 3
#define VIRTIO_CONSOLE_CONSOLE_PORT 4
#define VIRTIO_CONSOLE_RESIZE 5
#define VIRTIO_CONSOLE_PORT_OPEN 6
#define VIRTIO_CONSOLE_PORT_NAME 7

struct virtio_console_backend {
    void *opaque;
    /* Guest -> host bytes (may block briefly). */
    void (*write)(void *opaque, const uint8_t *buf, size_t len);
};

struct virtio_console;

struct virtio_console *virtio_console_new(const struct guestmem *mem);
void virtio_console_free(struct virtio_console *vc);
struct virtio_pci *virtio_console_transport(struct virtio_console *vc);

/* Add a port before the guest runs: console (id 0, name may be NULL) or the next
 * named port (ids 1, 2, ...). Returns the port id, -EINVAL (bad/duplicate name),
 * -ENOSPC. */
int virtio_console_add_port(struct virtio_console *vc, const char *name, bool console,
                            const struct virtio_console_backend *be);
/* Host -> guest bytes for port id; returns how many were taken (0 while the guest
 * has the port closed or no buffers queued). Any thread. */
size_t virtio_console_port_receive(struct virtio_console *vc, int id, const uint8_t *buf,
                                   size_t len);

/* Save/load/reset of the whole device, opaque = struct virtio_console *: a
 * "virtio-console" section (DEVICE_READY, per port PORT_READY and the guest's
 * PORT_OPEN, undelivered control messages) followed by the transport's state
 * (virtio_pci_device_ops). Load refuses a stream whose set of ports differs from
 * the ports added to this device. */
extern const struct device_ops virtio_console_device_ops;

#endif
