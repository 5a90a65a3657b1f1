/* virtio input device (virtio 1.1, 5.8), as an absolute-pointer tablet: ABS_X/ABS_Y in
 * 0..VIRTIO_INPUT_ABS_MAX, BTN_LEFT/RIGHT/MIDDLE and REL_WHEEL, the event codes of
 * Linux's include/uapi/linux/input-event-codes.h.
 *
 * Host events are queued in the device (a bounded ring; a whole batch that does not
 * fit is dropped) and written into eventq buffers as the driver supplies them; the
 * statusq (LEDs etc.) is drained and ignored. Any thread may send events. */
#ifndef LODGE_DEVICES_VIRTIO_VIRTIO_INPUT_H
#define LODGE_DEVICES_VIRTIO_VIRTIO_INPUT_H

#include "core/guestmem.h"
#include "devices/virtio/virtio_pci.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTIO_ID_INPUT 18
#define VIRTIO_INPUT_ABS_MAX 32767
#define VIRTIO_INPUT_CONFIG_LEN 136 /* struct virtio_input_config */

/* Config select values (5.8.5). */
#define VIRTIO_INPUT_CFG_UNSET 0x00
#define VIRTIO_INPUT_CFG_ID_NAME 0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS 0x11
#define VIRTIO_INPUT_CFG_ABS_INFO 0x12

/* evdev event types and codes the tablet uses. */
#define VIRTIO_INPUT_EV_SYN 0x00
#define VIRTIO_INPUT_EV_KEY 0x01
#define VIRTIO_INPUT_EV_REL 0x02
#define VIRTIO_INPUT_EV_ABS 0x03
#define VIRTIO_INPUT_SYN_REPORT 0
#define VIRTIO_INPUT_BTN_LEFT 0x110
#define VIRTIO_INPUT_BTN_RIGHT 0x111
#define VIRTIO_INPUT_BTN_MIDDLE 0x112
#define VIRTIO_INPUT_ABS_X 0x00
#define VIRTIO_INPUT_ABS_Y 0x01
#define VIRTIO_INPUT_REL_WHEEL 0x08

#define VIRTIO_INPUT_QUEUE_EVENTS 0
#define VIRTIO_INPUT_QUEUE_STATUS 1
#define VIRTIO_INPUT_PENDING 256 /* host events held while the driver has no buffers */

struct virtio_input_event {
    uint16_t type;
    uint16_t code;
    uint32_t value;
};

struct virtio_input;

/* NULL on allocation failure. */
struct virtio_input *virtio_input_new_tablet(const struct guestmem *mem);
void virtio_input_free(struct virtio_input *vi);
struct virtio_pci *virtio_input_transport(struct virtio_input *vi);

/* Whether the guest driver is running (DRIVER_OK and eventq enabled): only then do
 * absolute events reach anybody. */
bool virtio_input_ready(struct virtio_input *vi);

/* Queue n events as one batch (the caller ends it with EV_SYN/SYN_REPORT) and deliver
 * what the eventq has room for. 0, -ENOSPC when the batch does not fit, -EINVAL for n
 * out of range. */
int virtio_input_send(struct virtio_input *vi, const struct virtio_input_event *ev, size_t n);

/* A tablet report: x, y in 0..VIRTIO_INPUT_ABS_MAX (clamped), buttons bit 0 left,
 * 1 right, 2 middle (only changes are sent), wheel > 0 scrolls up. */
int virtio_input_tablet_event(struct virtio_input *vi, int x, int y, int wheel, unsigned buttons);

#endif
