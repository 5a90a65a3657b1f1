/* virtio 1.x over modern PCI (virtio 1.1, 4.1): vendor 0x1af4, device 0x1040 + id,
 * the common/notify/ISR/device-config structures in BAR4 and MSI-X in BAR1.
 *
 * BAR4 (32-bit memory, 16 KiB): 0x0000 common config, 0x1000 ISR, 0x2000 device
 * config, 0x3000 notify (queue q at 0x3000 + 4 * q). BAR1 (4 KiB): MSI-X table at
 * 0, PBA at 0x800; one vector per queue plus one for config changes.
 *
 * A device model (blk, console, rng) supplies struct virtio_dev_ops and uses the
 * queue helpers below. The transport offers VERSION_1, INDIRECT_DESC and
 * EVENT_IDX on top of the device's own features, refuses FEATURES_OK without
 * VERSION_1 or with unknown bits, and sets DEVICE_NEEDS_RESET (logged once) when
 * a queue turns out to be broken; queues then stay silent until the driver
 * resets the device.
 *
 * Threads: queue_notify runs on the vCPU thread that wrote the notify register;
 * a device may pop there and push from any thread (its I/O workers). The
 * transport's lock guards its registers and the rings; device callbacks are
 * called without it. */
#ifndef LODGE_DEVICES_VIRTIO_VIRTIO_PCI_H
#define LODGE_DEVICES_VIRTIO_VIRTIO_PCI_H

#include "core/bus.h"
#include "core/guestmem.h"
#include "devices/device.h"
#include "devices/pci/pci_dev.h"
#include "devices/virtio/virtqueue.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

/* Device status (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Reserved feature bits (6) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_PCI_MAX_QUEUES 64
#define VIRTIO_PCI_NO_VECTOR 0xffff

/* BAR layout */
#define VIRTIO_PCI_BAR_MSIX 1
#define VIRTIO_PCI_BAR_MAIN 4
#define VIRTIO_PCI_MAIN_SIZE 0x4000
#define VIRTIO_PCI_MSIX_SIZE 0x1000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVCFG_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4

/* Common configuration structure offsets (4.1.4.3) */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGEN 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO 0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI 0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO 0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI 0x34
#define VIRTIO_PCI_COMMON_LEN 0x38

/* virtio_pci_cap cfg_type (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

#define VIRTIO_PCI_ISR_QUEUE 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

struct virtio_dev_ops {
    const char *name;    /* for logs and bus ranges: "virtio-blk" */
    uint16_t device_id;  /* VIRTIO_ID_* */
    uint32_t class_code; /* PCI class << 16 | subclass << 8 | prog-if */
    uint64_t features;   /* device-type feature bits offered */
    unsigned num_queues; /* 1..VIRTIO_PCI_MAX_QUEUES */
    uint16_t queue_size; /* maximum size of every queue, a power of two */
    unsigned config_len; /* bytes of device-specific config (0: none) */
    /* Device config access, off + size <= config_len. */
    uint32_t (*config_read)(void *dev, unsigned off, unsigned size);
    void (*config_write)(void *dev, unsigned off, uint32_t val, unsigned size);
    /* The driver notified queue q (DRIVER_OK is set, the queue is enabled). */
    void (*queue_notify)(void *dev, unsigned q);
    /* Device reset (driver wrote 0 to device_status, or system reset): finish or
     * cancel in-flight work; after return the device must not touch the rings. */
    void (*reset)(void *dev);
    /* Optional: wait until no request is in flight (before state is saved). */
    void (*drain)(void *dev);
};

struct virtio_pci;

/* Returns NULL on allocation failure. mem is the guest RAM the rings live in. */
struct virtio_pci *virtio_pci_new(const struct virtio_dev_ops *ops, void *dev,
                                  const struct guestmem *mem);
void virtio_pci_free(struct virtio_pci *vp);
/* The PCI function (to register with pci_host and attach buses/IRQs). */
struct pci_dev *virtio_pci_pci(struct virtio_pci *vp);

/* Negotiated features (valid once FEATURES_OK is set). */
uint64_t virtio_pci_features(struct virtio_pci *vp);
uint8_t virtio_pci_status(struct virtio_pci *vp);

/* 1 with *e filled, 0 when nothing is there (or the queue is not live), -EIO
 * when the ring is broken (NEEDS_RESET has been set). */
int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct virtq_elem *e);
/* Return a chain to the driver (len bytes written) and interrupt it when it asks
 * for one. Any thread. */
void virtio_pci_push(struct virtio_pci *vp, unsigned q, const struct virtq_elem *e, uint32_t len);
/* Return n chains as one batch (virtq_push_many) with at most one interrupt. */
void virtio_pci_push_many(struct virtio_pci *vp, unsigned q, struct virtq_elem *const *e,
                          const uint32_t *len, unsigned n);
/* Whether queue q is enabled and the driver is running. */
bool virtio_pci_queue_live(struct virtio_pci *vp, unsigned q);
/* Device config changed: bump config_generation and interrupt. */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* Mark the device broken (2.1.2): status |= NEEDS_RESET, log once, interrupt. */
void virtio_pci_set_needs_reset(struct virtio_pci *vp, const char *why);

/* Register accesses as the bus delivers them (also used by tests). */
uint64_t virtio_pci_main_read(struct virtio_pci *vp, uint64_t off, unsigned size);
void virtio_pci_main_write(struct virtio_pci *vp, uint64_t off, uint64_t val, unsigned size);

/* System reset, save and load of transport + PCI function (dev = struct virtio_pci *).
 * The stream holds the pci_dev section then the transport's (queue addresses and
 * indices); device-type state (virtio-serial port open flags) is not in it yet. A
 * stream whose rings lie outside RAM or that names queues/vectors the device does
 * not have is refused without changing anything. */
extern const struct device_ops virtio_pci_device_ops;

#endif
