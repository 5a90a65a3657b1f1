/* virtio-blk (virtio 1.1, 5.2): read, write, flush, get-id, discard and
 * write-zeroes on one request queue. Requests are popped on the vCPU thread that
 * kicked the queue and run on a small worker pool; the worker pushes the used
 * entry and the interrupt goes out through the transport.
 *
 * The disk is a struct virtio_blk_backend, whose calls have the shape of
 * snapshot/image.h (image_pread & co. with opaque = struct image *): the machine
 * wires an image to it, a test wires a buffer. */
#ifndef LODGE_DEVICES_VIRTIO_VIRTIO_BLK_H
#define LODGE_DEVICES_VIRTIO_VIRTIO_BLK_H

#include "core/guestmem.h"
#include "devices/virtio/virtio_pci.h"

#include <stdbool.h>
#include <stdint.h>

/* Feature bits (5.2.3) */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6) */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_CONFIG_LEN 60

/* Offsets in struct virtio_blk_config (5.2.4) */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_NUM_QUEUES 34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN 44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG 52

struct virtio_blk_backend {
    void *opaque;
    /* 0 or -errno; all bytes or an error. */
    int (*pread)(void *opaque, void *buf, uint64_t len, uint64_t off);
    int (*pwrite)(void *opaque, const void *buf, uint64_t len, uint64_t off);
    int (*flush)(void *opaque);
    int (*discard)(void *opaque, uint64_t off, uint64_t len);      /* NULL: not offered */
    int (*write_zeroes)(void *opaque, uint64_t off, uint64_t len); /* NULL: not offered */
    /* Optional: pread that never blocks (image_pread_nowait): -EAGAIN when it would. A read
     * it can serve completes on the vCPU thread that kicked, without a trip to a worker. */
    int (*pread_nowait)(void *opaque, void *buf, uint64_t len, uint64_t off);
    uint64_t length; /* bytes; the guest sees length / 512 sectors */
    bool readonly;   /* offer VIRTIO_BLK_F_RO and fail writes */
};

struct virtio_blk;

/* serial: up to 20 bytes returned by GET_ID (NULL: empty). NULL on failure. */
struct virtio_blk *virtio_blk_new(const struct guestmem *mem, const struct virtio_blk_backend *be,
                                  const char *serial);
/* Waits for in-flight requests, then frees. The backend is not closed. */
void virtio_blk_free(struct virtio_blk *b);
struct virtio_pci *virtio_blk_transport(struct virtio_blk *b);
/* Wait until no request is in flight (tests, pause). */
void virtio_blk_drain(struct virtio_blk *b);

#endif
