/* A fake virtio driver for unit tests: guest RAM (a real guestmem), split rings
 * laid out by hand, and helpers to drive a struct virtio_pci like a guest. */
#ifndef LODGE_TESTS_UNIT_VIRTIO_HARNESS_H
#define LODGE_TESTS_UNIT_VIRTIO_HARNESS_H

#include "core/guestmem.h"
#include "devices/virtio/virtio_pci.h"

#include <stdint.h>

#define VDRV_RAM (1u << 20)
#define VDRV_DESC 0x1000
#define VDRV_AVAIL 0x5000
#define VDRV_USED 0x6000
#define VDRV_HEAP 0x10000

struct vdrv {
    struct guestmem mem; /* guest RAM: [0, VDRV_RAM) */
    uint16_t num;        /* queue size */
    uint16_t avail_idx;  /* driver's avail->idx */
    uint64_t heap;       /* bump allocator for buffers */
};

int vdrv_init(struct vdrv *d, uint16_t num);
void vdrv_free(struct vdrv *d);
uint64_t vdrv_alloc(struct vdrv *d, uint32_t size);
/* Writes descriptor idx of the table at table (VDRV_DESC for the ring's own). */
void vdrv_desc(struct vdrv *d, uint64_t table, unsigned idx, uint64_t addr, uint32_t len,
               uint16_t flags, uint16_t next);
/* Puts head in the available ring and bumps avail->idx. */
void vdrv_publish(struct vdrv *d, uint16_t head);
void vdrv_set_avail_idx(struct vdrv *d, uint16_t idx);
uint16_t vdrv_used_idx(struct vdrv *d);
void vdrv_used_elem(struct vdrv *d, unsigned slot, uint32_t *id, uint32_t *len);
void vdrv_w16(struct vdrv *d, uint64_t gpa, uint16_t v);
uint16_t vdrv_r16(struct vdrv *d, uint64_t gpa);

/* Transport driving: negotiate features (VERSION_1 | extra), set up queue q with
 * the harness rings, DRIVER_OK. Returns the status byte read back. */
uint8_t vdrv_start(struct vdrv *d, struct virtio_pci *vp, uint64_t extra_features, unsigned q);
void vdrv_kick(struct virtio_pci *vp, unsigned q);

#endif
