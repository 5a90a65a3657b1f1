/* virtio-rng / entropy device (virtio 1.1, 5.4): fills every buffer the driver
 * offers with bytes from getrandom(). */
#ifndef LODGE_DEVICES_VIRTIO_VIRTIO_RNG_H
#define LODGE_DEVICES_VIRTIO_VIRTIO_RNG_H

#include "core/guestmem.h"
#include "devices/virtio/virtio_pci.h"

struct virtio_rng;

struct virtio_rng *virtio_rng_new(const struct guestmem *mem);
void virtio_rng_free(struct virtio_rng *r);
struct virtio_pci *virtio_rng_transport(struct virtio_rng *r);

#endif
