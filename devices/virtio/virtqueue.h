/* Split virtqueues (virtio 1.1, 2.6) as the device side sees them, with indirect
 * descriptors (2.6.5.3) and event index suppression (2.6.7, 2.6.8).
 *
 * Every ring access goes through the guestmem copy helpers, and every buffer a
 * descriptor names is turned into a host pointer with guestmem_ptr(), which checks
 * the whole range against guest RAM. A broken or hostile ring (loops, indices
 * that jump by more than the queue size, buffers outside RAM, nested indirect
 * tables, a readable descriptor after a writable one) makes virtq_pop() return
 * -EIO: the transport then sets DEVICE_NEEDS_RESET and stops the queue.
 *
 * Not thread-safe: the transport serialises calls per queue. */
#ifndef LODGE_DEVICES_VIRTIO_VIRTQUEUE_H
#define LODGE_DEVICES_VIRTIO_VIRTQUEUE_H

#include "core/guestmem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_MAX_SIZE 1024 /* largest queue size a device may offer */
#define VIRTQ_MAX_SEGS 1024 /* buffers in one chain, indirect tables included */
#define VIRTQ_DESC_SIZE 16

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq {
    const struct guestmem *mem; /* guest RAM all ring accesses are checked against */
    uint16_t num;               /* queue_size (4.1.4.3), a power of two */
    uint64_t desc;              /* queue_desc: descriptor table GPA */
    uint64_t avail;             /* queue_driver: available ring GPA */
    uint64_t used;              /* queue_device: used ring GPA */
    bool event_idx;             /* VIRTIO_F_EVENT_IDX negotiated */
    uint16_t last_avail;        /* next avail ring slot the device will consume */
    uint16_t used_idx;          /* device's copy of used->idx */
    uint16_t signalled_used;    /* used_idx at the last interrupt (event idx) */
    bool signalled_valid;       /* signalled_used means something */
};

/* One popped chain: out = device-readable buffers, in = device-writable ones, as
 * host pointers into guest RAM (valid as long as the VM's RAM is). */
struct virtq_elem {
    uint16_t head;      /* descriptor index to return in the used ring */
    unsigned nout, nin; /* counts in iov: out first, then in */
    uint64_t out_len;   /* total readable bytes */
    uint64_t in_len;    /* total writable bytes */
    struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Sets up the queue for the driver's addresses; last_avail and used_idx start at 0. */
void virtq_init(struct virtq *vq, const struct guestmem *mem, uint16_t num, uint64_t desc,
                uint64_t avail, uint64_t used, bool event_idx);

/* 1: *e filled; 0: nothing available; -EIO: the ring is broken (see above). */
int virtq_pop(struct virtq *vq, struct virtq_elem *e);
/* Return a chain with len bytes written. 0 or -EIO (used ring outside RAM). */
int virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len);
/* Return n chains at once: all used entries are written before used->idx moves,
 * so the driver never sees part of them (virtio-net mergeable buffers, 5.1.6.4). */
int virtq_push_many(struct virtq *vq, struct virtq_elem *const *e, const uint32_t *len,
                    unsigned n);
/* Whether the driver wants an interrupt for what was pushed since the last call
 * that returned true (honours VIRTQ_AVAIL_F_NO_INTERRUPT or used_event). */
bool virtq_should_notify(struct virtq *vq);
/* Whether any buffers are waiting (0 when the ring cannot be read). */
bool virtq_has_work(struct virtq *vq);

/* iovec helpers over an element's out or in list: copy up to len bytes starting
 * at byte skip; return bytes copied. */
size_t virtq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t virtq_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
                          size_t len);

#endif
