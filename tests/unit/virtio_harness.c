/* Fake virtio driver for unit tests (see virtio_harness.h). */
#include "virtio_harness.h"

#include <string.h>

int vdrv_init(struct vdrv *d, uint16_t num)
{
    memset(d, 0, sizeof(*d));
    d->num = num;
    d->heap = VDRV_HEAP;
    return guestmem_add(&d->mem, "ram", 0, VDRV_RAM, false);
}

void vdrv_free(struct vdrv *d)
{
    guestmem_free(&d->mem);
}

uint64_t vdrv_alloc(struct vdrv *d, uint32_t size)
{
    uint64_t a = d->heap;
    d->heap = (d->heap + size + 15) & ~15ull;
    return a;
}

void vdrv_w16(struct vdrv *d, uint64_t gpa, uint16_t v)
{
    guestmem_write(&d->mem, gpa, &v, 2);
}

uint16_t vdrv_r16(struct vdrv *d, uint64_t gpa)
{
    uint16_t v = 0;
    guestmem_read(&d->mem, gpa, &v, 2);
    return v;
}

void vdrv_desc(struct vdrv *d, uint64_t table, unsigned idx, uint64_t addr, uint32_t len,
               uint16_t flags, uint16_t next)
{
    uint8_t b[16];
    memcpy(b, &addr, 8);
    memcpy(b + 8, &len, 4);
    memcpy(b + 12, &flags, 2);
    memcpy(b + 14, &next, 2);
    guestmem_write(&d->mem, table + 16ull * idx, b, 16);
}

void vdrv_publish(struct vdrv *d, uint16_t head)
{
    vdrv_w16(d, VDRV_AVAIL + 4 + 2ull * (d->avail_idx % d->num), head);
    d->avail_idx++;
    vdrv_w16(d, VDRV_AVAIL + 2, d->avail_idx);
}

void vdrv_set_avail_idx(struct vdrv *d, uint16_t idx)
{
    d->avail_idx = idx;
    vdrv_w16(d, VDRV_AVAIL + 2, idx);
}

uint16_t vdrv_used_idx(struct vdrv *d)
{
    return vdrv_r16(d, VDRV_USED + 2);
}

void vdrv_used_elem(struct vdrv *d, unsigned slot, uint32_t *id, uint32_t *len)
{
    uint8_t b[8];
    guestmem_read(&d->mem, VDRV_USED + 4 + 8ull * (slot % d->num), b, 8);
    memcpy(id, b, 4);
    memcpy(len, b + 4, 4);
}

static void cw(struct virtio_pci *vp, unsigned off, uint64_t v, unsigned size)
{
    virtio_pci_main_write(vp, VIRTIO_PCI_COMMON_OFF + off, v, size);
}

uint8_t vdrv_start(struct vdrv *d, struct virtio_pci *vp, uint64_t extra_features, unsigned q)
{
    struct pci_dev *pd = virtio_pci_pci(vp);
    pci_dev_config_write(pd, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    cw(vp, VIRTIO_PCI_COMMON_STATUS, 0, 1);
    cw(vp, VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    uint64_t f = (1ull << VIRTIO_F_VERSION_1) | extra_features;
    cw(vp, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    cw(vp, VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
    cw(vp, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    cw(vp, VIRTIO_PCI_COMMON_GF, f >> 32, 4);
    cw(vp, VIRTIO_PCI_COMMON_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
    cw(vp, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
    cw(vp, VIRTIO_PCI_COMMON_Q_SIZE, d->num, 2);
    cw(vp, VIRTIO_PCI_COMMON_Q_DESCLO, VDRV_DESC, 4);
    cw(vp, VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
    cw(vp, VIRTIO_PCI_COMMON_Q_AVAILLO, VDRV_AVAIL, 8);
    cw(vp, VIRTIO_PCI_COMMON_Q_USEDLO, VDRV_USED, 4);
    cw(vp, VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
    cw(vp, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    cw(vp, VIRTIO_PCI_COMMON_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
           VIRTIO_STATUS_DRIVER_OK,
       1);
    return (uint8_t)virtio_pci_main_read(vp, VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_STATUS, 1);
}

void vdrv_kick(struct virtio_pci *vp, unsigned q)
{
    virtio_pci_main_write(vp, VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * q, q, 2);
}
