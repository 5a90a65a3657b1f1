/* virtio modern PCI transport (virtio 1.1, 4.1). */
#include "devices/virtio/virtio_pci.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VP_TAG "dev.virtio"

struct vp_queue {
    uint16_t size;   /* queue_size as the driver set it (4.1.4.3) */
    uint16_t vector; /* queue_msix_vector */
    bool enabled;    /* queue_enable */
    uint64_t desc;   /* queue_desc */
    uint64_t avail;  /* queue_driver */
    uint64_t used;   /* queue_device */
    struct virtq vq; /* ring state once enabled */
};

struct virtio_pci {
    pthread_mutex_t lock;             /* registers below and the rings */
    const struct virtio_dev_ops *ops; /* device model */
    void *dev;
    const struct guestmem *mem;               /* guest RAM */
    struct pci_dev pci;                       /* config space, BARs, MSI-X */
    uint64_t host_features;                   /* device_feature (4.1.4.3) */
    uint64_t guest_features;                  /* driver_feature */
    uint32_t dfselect;                        /* device_feature_select */
    uint32_t gfselect;                        /* driver_feature_select */
    uint16_t msix_config;                     /* config_msix_vector */
    uint8_t status;                           /* device_status (2.1) */
    uint8_t config_generation;                /* config_generation (2.4) */
    uint16_t queue_select;                    /* queue_select */
    uint8_t isr;                              /* ISR status (4.1.4.5) */
    unsigned nvec;                            /* MSI-X vectors */
    struct vp_queue q[VIRTIO_PCI_MAX_QUEUES]; /* per-queue registers */
};

/* ---- interrupts ------------------------------------------------------------------- */

/* Lock held. */
static void vp_interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
    vp->isr |= isr_bit;
    if (pci_dev_msix_enabled(&vp->pci)) {
        if (vector != VIRTIO_PCI_NO_VECTOR) {
            pci_dev_notify(&vp->pci, vector);
        }
        return;
    }
    pci_dev_set_intx(&vp->pci, 1);
}

void virtio_pci_set_needs_reset(struct virtio_pci *vp, const char *why)
{
    pthread_mutex_lock(&vp->lock);
    if (!(vp->status & VIRTIO_STATUS_NEEDS_RESET)) {
        log_error(VP_TAG, "%s: %s; device needs reset", vp->ops->name, why);
        vp->status |= VIRTIO_STATUS_NEEDS_RESET;
        if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
            vp_interrupt(vp, vp->msix_config, VIRTIO_PCI_ISR_CONFIG);
        }
    }
    pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
    pthread_mutex_lock(&vp->lock);
    vp->config_generation++;
    if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
        vp_interrupt(vp, vp->msix_config, VIRTIO_PCI_ISR_CONFIG);
    }
    pthread_mutex_unlock(&vp->lock);
}

/* ---- queues ------------------------------------------------------------------------ */

static bool vp_live(struct virtio_pci *vp, unsigned q)
{
    return q < vp->ops->num_queues && vp->q[q].enabled && (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(vp->status & VIRTIO_STATUS_NEEDS_RESET);
}

bool virtio_pci_queue_live(struct virtio_pci *vp, unsigned q)
{
    pthread_mutex_lock(&vp->lock);
    bool live = vp_live(vp, q);
    pthread_mutex_unlock(&vp->lock);
    return live;
}

int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct virtq_elem *e)
{
    pthread_mutex_lock(&vp->lock);
    if (!vp_live(vp, q) || !pci_dev_bus_master(&vp->pci)) {
        pthread_mutex_unlock(&vp->lock);
        return 0;
    }
    int rc = virtq_pop(&vp->q[q].vq, e);
    pthread_mutex_unlock(&vp->lock);
    if (rc < 0) {
        char why[64];
        snprintf(why, sizeof(why), "queue %u is broken", q);
        virtio_pci_set_needs_reset(vp, why);
        return -EIO;
    }
    return rc;
}

void virtio_pci_push(struct virtio_pci *vp, unsigned q, const struct virtq_elem *e, uint32_t len)
{
    pthread_mutex_lock(&vp->lock);
    if (!vp_live(vp, q)) {
        pthread_mutex_unlock(&vp->lock);
        return;
    }
    struct vp_queue *vq = &vp->q[q];
    if (virtq_push(&vq->vq, e, len) < 0) {
        pthread_mutex_unlock(&vp->lock);
        virtio_pci_set_needs_reset(vp, "used ring outside guest RAM");
        return;
    }
    if (virtq_should_notify(&vq->vq)) {
        vp_interrupt(vp, vq->vector, VIRTIO_PCI_ISR_QUEUE);
    }
    pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_push_many(struct virtio_pci *vp, unsigned q, struct virtq_elem *const *e,
                          const uint32_t *len, unsigned n)
{
    pthread_mutex_lock(&vp->lock);
    if (!vp_live(vp, q)) {
        pthread_mutex_unlock(&vp->lock);
        return;
    }
    struct vp_queue *vq = &vp->q[q];
    if (virtq_push_many(&vq->vq, e, len, n) < 0) {
        pthread_mutex_unlock(&vp->lock);
        virtio_pci_set_needs_reset(vp, "used ring outside guest RAM");
        return;
    }
    if (virtq_should_notify(&vq->vq)) {
        vp_interrupt(vp, vq->vector, VIRTIO_PCI_ISR_QUEUE);
    }
    pthread_mutex_unlock(&vp->lock);
}

uint64_t virtio_pci_features(struct virtio_pci *vp)
{
    pthread_mutex_lock(&vp->lock);
    uint64_t f = vp->guest_features;
    pthread_mutex_unlock(&vp->lock);
    return f;
}

uint8_t virtio_pci_status(struct virtio_pci *vp)
{
    pthread_mutex_lock(&vp->lock);
    uint8_t s = vp->status;
    pthread_mutex_unlock(&vp->lock);
    return s;
}

/* Checks the ring addresses the driver wrote and starts the queue (lock held). */
static int vp_queue_enable(struct virtio_pci *vp, unsigned q)
{
    struct vp_queue *vq = &vp->q[q];
    uint16_t n = vq->size;
    if (n == 0 || (n & (n - 1)) || n > vp->ops->queue_size) {
        return -EINVAL;
    }
    uint64_t dlen = 16ull * n, alen = 6 + 2ull * n, ulen = 6 + 8ull * n;
    if ((vq->desc & 15) || (vq->avail & 1) || (vq->used & 3) ||
        !guestmem_ptr(vp->mem, vq->desc, dlen) || !guestmem_ptr(vp->mem, vq->avail, alen) ||
        !guestmem_ptr_rw(vp->mem, vq->used, ulen)) {
        return -EFAULT;
    }
    bool ev = (vp->guest_features >> VIRTIO_F_EVENT_IDX) & 1;
    virtq_init(&vq->vq, vp->mem, n, vq->desc, vq->avail, vq->used, ev);
    vq->enabled = true;
    return 0;
}

/* Transport registers to power-on values (lock held). */
static void vp_reset_regs(struct virtio_pci *vp)
{
    vp->guest_features = 0;
    vp->dfselect = vp->gfselect = 0;
    vp->msix_config = VIRTIO_PCI_NO_VECTOR;
    vp->status = 0;
    vp->queue_select = 0;
    vp->isr = 0;
    for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++) {
        struct vp_queue *vq = &vp->q[i];
        memset(vq, 0, sizeof(*vq));
        vq->size = i < vp->ops->num_queues ? vp->ops->queue_size : 0;
        vq->vector = VIRTIO_PCI_NO_VECTOR;
    }
    pci_dev_set_intx(&vp->pci, 0);
}

static void vp_device_reset(struct virtio_pci *vp)
{
    if (vp->ops->reset) {
        vp->ops->reset(vp->dev);
    }
    pthread_mutex_lock(&vp->lock);
    vp_reset_regs(vp);
    pthread_mutex_unlock(&vp->lock);
}

/* ---- common configuration ------------------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t vp_common_read(struct virtio_pci *vp, uint64_t off, unsigned size)
{
    uint8_t img[VIRTIO_PCI_COMMON_LEN] = {0};
    pthread_mutex_lock(&vp->lock);
    put32(img + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect);
    put32(img + VIRTIO_PCI_COMMON_DF,
          vp->dfselect < 2 ? (uint32_t)(vp->host_features >> (32 * vp->dfselect)) : 0);
    put32(img + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect);
    put32(img + VIRTIO_PCI_COMMON_GF,
          vp->gfselect < 2 ? (uint32_t)(vp->guest_features >> (32 * vp->gfselect)) : 0);
    put16(img + VIRTIO_PCI_COMMON_MSIX, vp->msix_config);
    put16(img + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)vp->ops->num_queues);
    img[VIRTIO_PCI_COMMON_STATUS] = vp->status;
    img[VIRTIO_PCI_COMMON_CFGGEN] = vp->config_generation;
    put16(img + VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_select);
    unsigned qs = vp->queue_select;
    if (qs < vp->ops->num_queues) {
        const struct vp_queue *vq = &vp->q[qs];
        put16(img + VIRTIO_PCI_COMMON_Q_SIZE, vq->size);
        put16(img + VIRTIO_PCI_COMMON_Q_MSIX, vq->vector);
        put16(img + VIRTIO_PCI_COMMON_Q_ENABLE, vq->enabled);
        put16(img + VIRTIO_PCI_COMMON_Q_NOFF, (uint16_t)qs);
        put64(img + VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc);
        put64(img + VIRTIO_PCI_COMMON_Q_AVAILLO, vq->avail);
        put64(img + VIRTIO_PCI_COMMON_Q_USEDLO, vq->used);
    } else {
        put16(img + VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_PCI_NO_VECTOR);
    }
    pthread_mutex_unlock(&vp->lock);
    if (off + size > VIRTIO_PCI_COMMON_LEN) {
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)img[off + i] << (8 * i);
    }
    return v;
}

static void vp_set_u64_half(uint64_t *field, uint64_t off, uint64_t base, uint64_t val,
                            unsigned size)
{
    if (off == base && size == 8) {
        *field = val;
    } else if (off == base && size == 4) {
        *field = (*field & 0xffffffff00000000ull) | (uint32_t)val;
    } else if (off == base + 4 && size == 4) {
        *field = (*field & 0xffffffffull) | ((uint64_t)(uint32_t)val << 32);
    }
}

static uint16_t vp_vector(struct virtio_pci *vp, uint64_t val)
{
    return val < vp->nvec ? (uint16_t)val : VIRTIO_PCI_NO_VECTOR;
}

/* Status write (2.1, 3.1.1). Returns true when the driver asked for a reset. */
static bool vp_status_write(struct virtio_pci *vp, uint8_t val)
{
    if (val == 0) {
        return true;
    }
    uint8_t old = vp->status;
    uint8_t nv = (uint8_t)((val & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
    if ((nv & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t f = vp->guest_features;
        if ((f & ~vp->host_features) || !((f >> VIRTIO_F_VERSION_1) & 1)) {
            log_warn(VP_TAG,
                     "%s: driver features 0x%llx refused (need VERSION_1, subset of "
                     "0x%llx)",
                     vp->ops->name, (unsigned long long)f, (unsigned long long)vp->host_features);
            nv &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        }
    }
    if ((nv & VIRTIO_STATUS_DRIVER_OK) && !(nv & VIRTIO_STATUS_FEATURES_OK)) {
        /* A legacy-style driver that skipped negotiation: not supported by a modern-only
         * device (3.1.1 step 5). */
        nv &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
    }
    vp->status = nv;
    return false;
}

static void vp_common_write(struct virtio_pci *vp, uint64_t off, uint64_t val, unsigned size)
{
    bool reset = false;
    pthread_mutex_lock(&vp->lock);
    unsigned qs = vp->queue_select;
    struct vp_queue *vq = qs < vp->ops->num_queues ? &vp->q[qs] : NULL;
    bool can_set_q = vq && !vq->enabled;
    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        if (size == 4) {
            vp->dfselect = (uint32_t)val;
        }
        break;
    case VIRTIO_PCI_COMMON_GFSELECT:
        if (size == 4) {
            vp->gfselect = (uint32_t)val;
        }
        break;
    case VIRTIO_PCI_COMMON_GF:
        if (size == 4 && vp->gfselect < 2 && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned sh = 32 * vp->gfselect;
            vp->guest_features =
                (vp->guest_features & ~(0xffffffffull << sh)) | ((uint64_t)(uint32_t)val << sh);
        }
        break;
    case VIRTIO_PCI_COMMON_MSIX:
        if (size == 2) {
            vp->msix_config = vp_vector(vp, val);
        }
        break;
    case VIRTIO_PCI_COMMON_STATUS:
        if (size == 1) {
            reset = vp_status_write(vp, (uint8_t)val);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        if (size == 2) {
            vp->queue_select = (uint16_t)val;
        }
        break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (size == 2 && can_set_q) {
            vq->size = (uint16_t)val;
        }
        break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        if (size == 2 && vq) {
            vq->vector = vp_vector(vp, val);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (size == 2 && can_set_q && val == 1) {
            int rc = vp_queue_enable(vp, qs);
            if (rc < 0) {
                pthread_mutex_unlock(&vp->lock);
                char why[96];
                snprintf(why, sizeof(why), "queue %u enabled with a bad size or ring address", qs);
                virtio_pci_set_needs_reset(vp, why);
                return;
            }
        }
        break;
    default:
        if (can_set_q) {
            if (off >= VIRTIO_PCI_COMMON_Q_DESCLO && off < VIRTIO_PCI_COMMON_Q_AVAILLO) {
                vp_set_u64_half(&vq->desc, off, VIRTIO_PCI_COMMON_Q_DESCLO, val, size);
            } else if (off >= VIRTIO_PCI_COMMON_Q_AVAILLO && off < VIRTIO_PCI_COMMON_Q_USEDLO) {
                vp_set_u64_half(&vq->avail, off, VIRTIO_PCI_COMMON_Q_AVAILLO, val, size);
            } else if (off >= VIRTIO_PCI_COMMON_Q_USEDLO && off < VIRTIO_PCI_COMMON_LEN) {
                vp_set_u64_half(&vq->used, off, VIRTIO_PCI_COMMON_Q_USEDLO, val, size);
            }
        }
        break;
    }
    pthread_mutex_unlock(&vp->lock);
    if (reset) {
        vp_device_reset(vp);
    }
}

/* ---- BAR4 ------------------------------------------------------------------------------ */

uint64_t virtio_pci_main_read(struct virtio_pci *vp, uint64_t off, unsigned size)
{
    if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
        return vp_common_read(vp, off - VIRTIO_PCI_COMMON_OFF, size);
    }
    if (off == VIRTIO_PCI_ISR_OFF) {
        /* Reading ISR acknowledges it and drops INTx (4.1.4.5). */
        pthread_mutex_lock(&vp->lock);
        uint8_t v = vp->isr;
        vp->isr = 0;
        pci_dev_set_intx(&vp->pci, 0);
        pthread_mutex_unlock(&vp->lock);
        return v;
    }
    if (off >= VIRTIO_PCI_DEVCFG_OFF && off + size <= VIRTIO_PCI_DEVCFG_OFF + vp->ops->config_len &&
        size <= 4 && vp->ops->config_read) {
        return vp->ops->config_read(vp->dev, (unsigned)(off - VIRTIO_PCI_DEVCFG_OFF), size);
    }
    return 0;
}

void virtio_pci_main_write(struct virtio_pci *vp, uint64_t off, uint64_t val, unsigned size)
{
    if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
        vp_common_write(vp, off - VIRTIO_PCI_COMMON_OFF, val, size);
        return;
    }
    if (off >= VIRTIO_PCI_DEVCFG_OFF && off + size <= VIRTIO_PCI_DEVCFG_OFF + vp->ops->config_len &&
        size <= 4) {
        if (vp->ops->config_write) {
            vp->ops->config_write(vp->dev, (unsigned)(off - VIRTIO_PCI_DEVCFG_OFF), (uint32_t)val,
                                  size);
        }
        return;
    }
    if (off >= VIRTIO_PCI_NOTIFY_OFF &&
        off < VIRTIO_PCI_NOTIFY_OFF + (uint64_t)VIRTIO_PCI_NOTIFY_MULT * vp->ops->num_queues) {
        unsigned q = (unsigned)((off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT);
        if (virtio_pci_queue_live(vp, q) && vp->ops->queue_notify) {
            vp->ops->queue_notify(vp->dev, q);
        }
    }
}

static uint64_t vp_bar_read(void *opaque, uint64_t off, unsigned size)
{
    return virtio_pci_main_read(opaque, off, size);
}

static void vp_bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    virtio_pci_main_write(opaque, off, val, size);
}

static const struct bus_ops vp_bar_ops = {.read = vp_bar_read, .write = vp_bar_write};

/* ---- setup ------------------------------------------------------------------------------ */

static int vp_add_cap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len, unsigned extra)
{
    int c = pci_dev_add_cap(d, PCI_CAP_ID_VNDR, 16 + extra);
    if (c < 0) {
        return c;
    }
    unsigned o = (unsigned)c;
    pci_config_set_u8(&d->cfg, o + 2, (uint8_t)(16 + extra)); /* cap_len */
    pci_config_set_u8(&d->cfg, o + 3, type);                  /* cfg_type */
    pci_config_set_u8(&d->cfg, o + 4, type == VIRTIO_PCI_CAP_PCI_CFG ? 0 : VIRTIO_PCI_BAR_MAIN);
    pci_config_set_u32(&d->cfg, o + 8, off);
    pci_config_set_u32(&d->cfg, o + 12, len);
    return c;
}

struct virtio_pci *virtio_pci_new(const struct virtio_dev_ops *ops, void *dev,
                                  const struct guestmem *mem)
{
    if (ops->num_queues == 0 || ops->num_queues > VIRTIO_PCI_MAX_QUEUES || ops->queue_size == 0 ||
        ops->queue_size > VIRTQ_MAX_SIZE || (ops->queue_size & (ops->queue_size - 1)) ||
        ops->config_len > VIRTIO_PCI_NOTIFY_OFF - VIRTIO_PCI_DEVCFG_OFF) {
        return NULL;
    }
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp) {
        return NULL;
    }
    pthread_mutex_init(&vp->lock, NULL);
    vp->ops = ops;
    vp->dev = dev;
    vp->mem = mem;
    vp->nvec = ops->num_queues + 1;
    vp->host_features = ops->features | (1ull << VIRTIO_F_VERSION_1) |
                        (1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX);
    struct pci_dev *d = &vp->pci;
    /* Modern-only device: revision 1, subsystem ID 0x40 + type (4.1.2.1). */
    int rc =
        pci_dev_init(d, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
                     ops->class_code, 1, VIRTIO_PCI_VENDOR, (uint16_t)(0x40 + ops->device_id), 1);
    if (rc < 0) {
        free(vp);
        return NULL;
    }
    char name[24];
    snprintf(name, sizeof(name), "%s-msix", ops->name);
    rc |= pci_dev_add_bar(d, VIRTIO_PCI_BAR_MSIX, PCI_BAR_MEM32, VIRTIO_PCI_MSIX_SIZE, NULL, NULL,
                          name);
    rc |= pci_dev_add_bar(d, VIRTIO_PCI_BAR_MAIN, PCI_BAR_MEM32, VIRTIO_PCI_MAIN_SIZE, &vp_bar_ops,
                          vp, ops->name);
    rc |= pci_dev_init_msix(d, vp->nvec, VIRTIO_PCI_BAR_MSIX, 0, 0x800);
    int c =
        vp_add_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 0);
    rc |= c < 0 ? c : 0;
    c = vp_add_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 0);
    rc |= c < 0 ? c : 0;
    if (ops->config_len) {
        c = vp_add_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVCFG_OFF, ops->config_len, 0);
        rc |= c < 0 ? c : 0;
    }
    c = vp_add_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
                   VIRTIO_PCI_NOTIFY_MULT * ops->num_queues, 4);
    if (c >= 0) {
        pci_config_set_u32(&d->cfg, (unsigned)c + 16, VIRTIO_PCI_NOTIFY_MULT);
    }
    rc |= c < 0 ? c : 0;
    /* The PCI configuration access window (4.1.4.7) is advertised as the spec asks;
     * accesses through it read zeros (no driver Lodge supports uses it). */
    c = vp_add_cap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 4);
    rc |= c < 0 ? c : 0;
    if (rc) {
        virtio_pci_free(vp);
        return NULL;
    }
    vp_reset_regs(vp);
    return vp;
}

void virtio_pci_free(struct virtio_pci *vp)
{
    if (!vp) {
        return;
    }
    pci_dev_destroy(&vp->pci);
    pthread_mutex_destroy(&vp->lock);
    free(vp);
}

struct pci_dev *virtio_pci_pci(struct virtio_pci *vp)
{
    return &vp->pci;
}

/* ---- saved state --------------------------------------------------------------------- */

#define VPQ VIRTIO_PCI_MAX_QUEUES

struct vp_saved {
    uint64_t guest_features;     /* driver_feature */
    uint32_t dfselect, gfselect; /* feature selects */
    uint16_t msix_config;        /* config_msix_vector */
    uint8_t status;              /* device_status */
    uint8_t config_generation;   /* config_generation */
    uint16_t queue_select;       /* queue_select */
    uint8_t isr;                 /* ISR status */
    uint16_t q_size[VPQ];        /* queue_size */
    uint16_t q_vector[VPQ];      /* queue_msix_vector */
    bool q_enabled[VPQ];         /* queue_enable */
    uint64_t q_desc[VPQ];        /* queue_desc */
    uint64_t q_avail[VPQ];       /* queue_driver */
    uint64_t q_used[VPQ];        /* queue_device */
    uint16_t q_last_avail[VPQ];  /* device's next avail slot */
    uint16_t q_used_idx[VPQ];    /* device's used->idx */
    uint16_t q_signalled[VPQ];   /* used_idx at the last interrupt */
    bool q_signalled_valid[VPQ]; /* q_signalled means something */
};

static const struct vmstate_field vp_saved_fields[] = {
    VMSTATE_FIELD(struct vp_saved, guest_features, VMSTATE_U64),
    VMSTATE_FIELD(struct vp_saved, dfselect, VMSTATE_U32),
    VMSTATE_FIELD(struct vp_saved, gfselect, VMSTATE_U32),
    VMSTATE_FIELD(struct vp_saved, msix_config, VMSTATE_U16),
    VMSTATE_FIELD(struct vp_saved, status, VMSTATE_U8),
    VMSTATE_FIELD(struct vp_saved, config_generation, VMSTATE_U8),
    VMSTATE_FIELD(struct vp_saved, queue_select, VMSTATE_U16),
    VMSTATE_FIELD(struct vp_saved, isr, VMSTATE_U8),
    VMSTATE_ARRAY(struct vp_saved, q_size, VMSTATE_U16, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_vector, VMSTATE_U16, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_enabled, VMSTATE_BOOL, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_desc, VMSTATE_U64, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_avail, VMSTATE_U64, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_used, VMSTATE_U64, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_last_avail, VMSTATE_U16, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_used_idx, VMSTATE_U16, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_signalled, VMSTATE_U16, VPQ),
    VMSTATE_ARRAY(struct vp_saved, q_signalled_valid, VMSTATE_BOOL, VPQ),
    VMSTATE_END,
};

static const struct vmstate_desc vp_saved_vmstate = {
    .name = "virtio_pci",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct vp_saved),
    .fields = vp_saved_fields,
};

static int vp_save(void *opaque, GByteArray *out)
{
    struct virtio_pci *vp = opaque;
    if (vp->ops->drain) {
        vp->ops->drain(vp->dev); /* no request may be half done in the image */
    }
    int rc = pci_dev_save(&vp->pci, out);
    if (rc < 0) {
        return rc;
    }
    struct vp_saved *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    pthread_mutex_lock(&vp->lock);
    s->guest_features = vp->guest_features;
    s->dfselect = vp->dfselect;
    s->gfselect = vp->gfselect;
    s->msix_config = vp->msix_config;
    s->status = vp->status;
    s->config_generation = vp->config_generation;
    s->queue_select = vp->queue_select;
    s->isr = vp->isr;
    for (unsigned i = 0; i < VPQ; i++) {
        const struct vp_queue *q = &vp->q[i];
        s->q_size[i] = q->size;
        s->q_vector[i] = q->vector;
        s->q_enabled[i] = q->enabled;
        s->q_desc[i] = q->desc;
        s->q_avail[i] = q->avail;
        s->q_used[i] = q->used;
        s->q_last_avail[i] = q->vq.last_avail;
        s->q_used_idx[i] = q->vq.used_idx;
        s->q_signalled[i] = q->vq.signalled_used;
        s->q_signalled_valid[i] = q->vq.signalled_valid;
    }
    pthread_mutex_unlock(&vp->lock);
    rc = vmstate_save(&vp_saved_vmstate, s, out);
    free(s);
    return rc;
}

/* Installs a parsed transport section after checking it against the device model
 * (queue sizes, vectors, ring addresses in RAM). Lock held; -EINVAL leaves vp as is. */
static int vp_apply(struct virtio_pci *vp, const struct vp_saved *s)
{
    if ((s->guest_features & ~vp->host_features) ||
        (s->msix_config >= vp->nvec && s->msix_config != VIRTIO_PCI_NO_VECTOR)) {
        return -EINVAL;
    }
    struct vp_queue *nq = calloc(VPQ, sizeof(*nq));
    if (!nq) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < VPQ; i++) {
        struct vp_queue *q = &nq[i];
        bool exists = i < vp->ops->num_queues;
        q->size = s->q_size[i];
        q->vector = s->q_vector[i];
        q->desc = s->q_desc[i];
        q->avail = s->q_avail[i];
        q->used = s->q_used[i];
        if ((!exists && (s->q_enabled[i] || q->size)) ||
            (q->vector >= vp->nvec && q->vector != VIRTIO_PCI_NO_VECTOR)) {
            free(nq);
            return -EINVAL;
        }
        if (!s->q_enabled[i]) {
            continue;
        }
        struct vp_queue saved = vp->q[i];
        vp->q[i] = *q;
        int rc = vp_queue_enable(vp, i); /* the same checks as a guest's queue_enable */
        *q = vp->q[i];
        vp->q[i] = saved;
        if (rc < 0) {
            free(nq);
            return -EINVAL;
        }
        q->vq.last_avail = s->q_last_avail[i];
        q->vq.used_idx = s->q_used_idx[i];
        q->vq.signalled_used = s->q_signalled[i];
        q->vq.signalled_valid = s->q_signalled_valid[i];
    }
    vp->guest_features = s->guest_features;
    vp->dfselect = s->dfselect;
    vp->gfselect = s->gfselect;
    vp->msix_config = s->msix_config;
    vp->status = s->status;
    vp->config_generation = s->config_generation;
    vp->queue_select = s->queue_select;
    vp->isr = s->isr;
    memcpy(vp->q, nq, sizeof(vp->q));
    free(nq);
    return 0;
}

static int vp_load(void *opaque, const uint8_t *buf, size_t len)
{
    struct virtio_pci *vp = opaque;
    struct pci_dev_saved *ps = NULL;
    size_t used = 0;
    int rc = pci_dev_parse(&vp->pci, buf, len, &used, &ps);
    if (rc < 0) {
        return rc;
    }
    struct vp_saved *s = calloc(1, sizeof(*s));
    if (!s) {
        pci_dev_saved_free(ps);
        return -ENOMEM;
    }
    rc = vmstate_load(&vp_saved_vmstate, s, buf + used, len - used, NULL);
    if (rc == 0) {
        if (vp->ops->drain) {
            vp->ops->drain(vp->dev);
        }
        pthread_mutex_lock(&vp->lock);
        /* The negotiated features decide EVENT_IDX for the rings: apply them first. */
        uint64_t old = vp->guest_features;
        vp->guest_features = s->guest_features;
        rc = vp_apply(vp, s);
        if (rc < 0) {
            vp->guest_features = old;
        }
        pthread_mutex_unlock(&vp->lock);
    }
    free(s);
    if (rc < 0) {
        log_warn(VP_TAG, "%s: saved state refused", vp->ops->name);
        pci_dev_saved_free(ps);
        return rc;
    }
    pci_dev_restore(&vp->pci, ps);
    return 0;
}

static void vp_system_reset(void *opaque)
{
    struct virtio_pci *vp = opaque;
    vp_device_reset(vp);
    pci_dev_reset(&vp->pci);
}

const struct device_ops virtio_pci_device_ops = {
    .name = "virtio-pci",
    .reset = vp_system_reset,
    .save = vp_save,
    .load = vp_load,
};
