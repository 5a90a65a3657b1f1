/* virtio-net (virtio 1.1, 5.1): one receive/transmit queue pair on the modern PCI
 * transport, attached to a host backend through net/net.h.
 *
 * Features offered: MAC, STATUS (link), MTU (up to NET_MTU_MAX, the cheap win for
 * user-mode NAT), MRG_RXBUF, CSUM with HOST_TSO4/6 (super-frames are forwarded
 * whole with their checksums completed: slirp takes frames up to its MTU), and
 * GUEST_CSUM: frames from a backend whose checksums are good by construction
 * (net_backend_rx_csum_good) arrive with DATA_VALID, so the guest does not sum
 * them again (on a software CPU that sum is most of the receive cost). */
#ifndef LODGE_DEVICES_VIRTIO_VIRTIO_NET_H
#define LODGE_DEVICES_VIRTIO_VIRTIO_NET_H

#include "core/guestmem.h"
#include "devices/device.h"
#include "devices/virtio/virtio_pci.h"
#include "net/net.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_ID_NET 1

/* Feature bits (5.1.3) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

/* Config layout (5.1.4) */
#define VIRTIO_NET_CFG_MAC 0
#define VIRTIO_NET_CFG_STATUS 6
#define VIRTIO_NET_CFG_MAX_PAIRS 8
#define VIRTIO_NET_CFG_MTU 10
#define VIRTIO_NET_CONFIG_LEN 12
#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr_v1 (5.1.6) */
#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_TCPV6 4

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_QUEUE_SIZE 256

struct virtio_net;

/* mtu: what the MTU feature offers (NET_MTU_DEFAULT..NET_MTU_MAX). The device
 * installs itself as be's peer; be must outlive it. NULL on allocation failure. */
struct virtio_net *virtio_net_new(const struct guestmem *mem, const uint8_t mac[6], unsigned mtu,
                                  struct net_backend *be);
void virtio_net_free(struct virtio_net *n);
struct virtio_pci *virtio_net_transport(struct virtio_net *n);
/* Save/load/reset of the whole device, dev = struct virtio_net *: a "virtio-net" section
 * (MAC and MTU, checked on load; link; receive chains held while gathering room for a
 * frame) followed by the transport's state (virtio_pci_device_ops). */
extern const struct device_ops virtio_net_device_ops;
/* Carrier change: updates the STATUS config field and interrupts. */
void virtio_net_set_link(struct virtio_net *n, bool up);

#endif
