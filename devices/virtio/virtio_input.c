/* virtio input device (virtio 1.1, 5.8): a tablet (see virtio_input.h). */
#include "devices/virtio/virtio_input.h"

#include "core/le.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define VINPUT_TAG "dev.virtio-input"
#define VINPUT_EVENT_SIZE 8
#define VINPUT_CFG_SELECT 0
#define VINPUT_CFG_SUBSEL 1
#define VINPUT_CFG_SIZE 2
#define VINPUT_CFG_UNION 8
#define VINPUT_CFG_UNION_LEN 128
#define VINPUT_BUS_VIRTUAL 0x06 /* BUS_VIRTUAL in linux/input.h */
#define VINPUT_NAME "Lodge Virtio Tablet"
#define VINPUT_SERIAL "lodge-tablet-0"

struct virtio_input {
    struct virtio_pci *vp; /* transport */
    pthread_mutex_t lock;  /* everything below */
    struct virtq_elem *e;  /* scratch element for either queue */
    uint8_t select;        /* virtio_input_config.select (5.8.4) */
    uint8_t subsel;        /* virtio_input_config.subsel (5.8.4) */
    struct virtio_input_event pending[VIRTIO_INPUT_PENDING]; /* ring of undelivered events */
    unsigned head, count;                                    /* ring start and fill */
    unsigned buttons;   /* last reported button state, bit 0 left, 1 right, 2 middle */
    bool buttons_valid; /* buttons was reported since the driver started */
};

/* Fills the config union for select/subsel; returns the size field (0: no data). */
static uint8_t vinput_config_fill(const struct virtio_input *vi, uint8_t *u)
{
    memset(u, 0, VINPUT_CFG_UNION_LEN);
    switch (vi->select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
        if (vi->subsel == 0) {
            memcpy(u, VINPUT_NAME, sizeof(VINPUT_NAME) - 1);
            return sizeof(VINPUT_NAME) - 1;
        }
        return 0;
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        if (vi->subsel == 0) {
            memcpy(u, VINPUT_SERIAL, sizeof(VINPUT_SERIAL) - 1);
            return sizeof(VINPUT_SERIAL) - 1;
        }
        return 0;
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
        if (vi->subsel != 0) {
            return 0;
        }
        le16_put(u, VINPUT_BUS_VIRTUAL);
        le16_put(u + 2, VIRTIO_PCI_VENDOR);
        le16_put(u + 4, 0x0003); /* product: tablet */
        le16_put(u + 6, 0x0001);
        return 8;
    case VIRTIO_INPUT_CFG_PROP_BITS:
        return 0; /* no INPUT_PROP_*: a plain absolute pointer, as QEMU's tablet */
    case VIRTIO_INPUT_CFG_EV_BITS:
        switch (vi->subsel) {
        case VIRTIO_INPUT_EV_KEY:
            u[VIRTIO_INPUT_BTN_LEFT / 8] |= 1u << (VIRTIO_INPUT_BTN_LEFT % 8);
            u[VIRTIO_INPUT_BTN_RIGHT / 8] |= 1u << (VIRTIO_INPUT_BTN_RIGHT % 8);
            u[VIRTIO_INPUT_BTN_MIDDLE / 8] |= 1u << (VIRTIO_INPUT_BTN_MIDDLE % 8);
            return VIRTIO_INPUT_BTN_MIDDLE / 8 + 1;
        case VIRTIO_INPUT_EV_REL:
            u[VIRTIO_INPUT_REL_WHEEL / 8] |= 1u << (VIRTIO_INPUT_REL_WHEEL % 8);
            return VIRTIO_INPUT_REL_WHEEL / 8 + 1;
        case VIRTIO_INPUT_EV_ABS:
            u[0] = (1u << VIRTIO_INPUT_ABS_X) | (1u << VIRTIO_INPUT_ABS_Y);
            return 1;
        default:
            return 0;
        }
    case VIRTIO_INPUT_CFG_ABS_INFO:
        if (vi->subsel != VIRTIO_INPUT_ABS_X && vi->subsel != VIRTIO_INPUT_ABS_Y) {
            return 0;
        }
        le32_put(u, 0);                        /* min */
        le32_put(u + 4, VIRTIO_INPUT_ABS_MAX); /* max; fuzz, flat, res stay 0 */
        return 20;
    default:
        return 0;
    }
}

static uint32_t vinput_config_read(void *dev, unsigned off, unsigned size)
{
    struct virtio_input *vi = dev;
    uint8_t cfg[VIRTIO_INPUT_CONFIG_LEN];
    memset(cfg, 0, sizeof(cfg));
    pthread_mutex_lock(&vi->lock);
    cfg[VINPUT_CFG_SELECT] = vi->select;
    cfg[VINPUT_CFG_SUBSEL] = vi->subsel;
    cfg[VINPUT_CFG_SIZE] = vinput_config_fill(vi, cfg + VINPUT_CFG_UNION);
    pthread_mutex_unlock(&vi->lock);
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4 && off + i < sizeof(cfg); i++) {
        v |= (uint32_t)cfg[off + i] << (8 * i);
    }
    return v;
}

static void vinput_config_write(void *dev, unsigned off, uint32_t val, unsigned size)
{
    struct virtio_input *vi = dev;
    pthread_mutex_lock(&vi->lock);
    /* Only select and subsel are writable (5.8.4); a wide write may cover both. */
    for (unsigned i = 0; i < size && i < 4; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        if (off + i == VINPUT_CFG_SELECT) {
            vi->select = b;
        } else if (off + i == VINPUT_CFG_SUBSEL) {
            vi->subsel = b;
        }
    }
    pthread_mutex_unlock(&vi->lock);
}

/* Moves pending events into eventq buffers (lock held). */
static void vinput_flush(struct virtio_input *vi)
{
    while (vi->count) {
        int rc = virtio_pci_pop(vi->vp, VIRTIO_INPUT_QUEUE_EVENTS, vi->e);
        if (rc <= 0) {
            return; /* no buffer yet, queue not live, or broken (NEEDS_RESET is set) */
        }
        if (vi->e->in_len < VINPUT_EVENT_SIZE) {
            /* A buffer too small for one event: hand it back empty, keep the event. */
            log_debug(VINPUT_TAG, "eventq buffer of %llu bytes ignored",
                      (unsigned long long)vi->e->in_len);
            virtio_pci_push(vi->vp, VIRTIO_INPUT_QUEUE_EVENTS, vi->e, 0);
            continue;
        }
        const struct virtio_input_event *ev = &vi->pending[vi->head];
        uint8_t b[VINPUT_EVENT_SIZE];
        le16_put(b, ev->type);
        le16_put(b + 2, ev->code);
        le32_put(b + 4, ev->value);
        size_t n = virtq_iov_from_buf(vi->e->iov + vi->e->nout, vi->e->nin, 0, b, sizeof(b));
        virtio_pci_push(vi->vp, VIRTIO_INPUT_QUEUE_EVENTS, vi->e, (uint32_t)n);
        vi->head = (vi->head + 1) % VIRTIO_INPUT_PENDING;
        vi->count--;
    }
}

static void vinput_queue_notify(void *dev, unsigned q)
{
    struct virtio_input *vi = dev;
    pthread_mutex_lock(&vi->lock);
    if (q == VIRTIO_INPUT_QUEUE_EVENTS) {
        vinput_flush(vi);
    } else if (q == VIRTIO_INPUT_QUEUE_STATUS) {
        /* LED and other feedback events: nothing on the host to drive. */
        while (virtio_pci_pop(vi->vp, q, vi->e) > 0) {
            virtio_pci_push(vi->vp, q, vi->e, 0);
        }
    }
    pthread_mutex_unlock(&vi->lock);
}

static void vinput_reset(void *dev)
{
    struct virtio_input *vi = dev;
    pthread_mutex_lock(&vi->lock);
    vi->select = 0;
    vi->subsel = 0;
    vi->head = 0;
    vi->count = 0;
    vi->buttons = 0;
    vi->buttons_valid = false;
    pthread_mutex_unlock(&vi->lock);
}

static const struct virtio_dev_ops vinput_ops = {
    .name = "virtio-input",
    .device_id = VIRTIO_ID_INPUT,
    .class_code = 0x098000, /* input device controller, other */
    .num_queues = 2,
    .queue_size = 64,
    .config_len = VIRTIO_INPUT_CONFIG_LEN,
    .config_read = vinput_config_read,
    .config_write = vinput_config_write,
    .queue_notify = vinput_queue_notify,
    .reset = vinput_reset,
};

struct virtio_input *virtio_input_new_tablet(const struct guestmem *mem)
{
    struct virtio_input *vi = calloc(1, sizeof(*vi));
    if (!vi) {
        return NULL;
    }
    pthread_mutex_init(&vi->lock, NULL);
    vi->e = malloc(sizeof(*vi->e));
    vi->vp = virtio_pci_new(&vinput_ops, vi, mem);
    if (!vi->e || !vi->vp) {
        virtio_input_free(vi);
        return NULL;
    }
    return vi;
}

void virtio_input_free(struct virtio_input *vi)
{
    if (!vi) {
        return;
    }
    virtio_pci_free(vi->vp);
    free(vi->e);
    pthread_mutex_destroy(&vi->lock);
    free(vi);
}

struct virtio_pci *virtio_input_transport(struct virtio_input *vi)
{
    return vi->vp;
}

bool virtio_input_ready(struct virtio_input *vi)
{
    return vi && (virtio_pci_status(vi->vp) & VIRTIO_STATUS_DRIVER_OK) &&
           virtio_pci_queue_live(vi->vp, VIRTIO_INPUT_QUEUE_EVENTS);
}

/* Queues a batch whole or not at all (lock held). */
static int vinput_send_locked(struct virtio_input *vi, const struct virtio_input_event *ev,
                              size_t n)
{
    if (n == 0 || n > VIRTIO_INPUT_PENDING) {
        return -EINVAL;
    }
    if (n > VIRTIO_INPUT_PENDING - vi->count) {
        log_debug(VINPUT_TAG, "event queue full: %zu events dropped", n);
        return -ENOSPC;
    }
    for (size_t i = 0; i < n; i++) {
        vi->pending[(vi->head + vi->count) % VIRTIO_INPUT_PENDING] = ev[i];
        vi->count++;
    }
    vinput_flush(vi);
    return 0;
}

int virtio_input_send(struct virtio_input *vi, const struct virtio_input_event *ev, size_t n)
{
    pthread_mutex_lock(&vi->lock);
    int rc = vinput_send_locked(vi, ev, n);
    pthread_mutex_unlock(&vi->lock);
    return rc;
}

static int vinput_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int virtio_input_tablet_event(struct virtio_input *vi, int x, int y, int wheel, unsigned buttons)
{
    static const uint16_t btn[3] = {VIRTIO_INPUT_BTN_LEFT, VIRTIO_INPUT_BTN_RIGHT,
                                    VIRTIO_INPUT_BTN_MIDDLE};
    struct virtio_input_event ev[7];
    size_t n = 0;
    ev[n++] = (struct virtio_input_event){VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_X,
                                          (uint32_t)vinput_clamp(x, 0, VIRTIO_INPUT_ABS_MAX)};
    ev[n++] = (struct virtio_input_event){VIRTIO_INPUT_EV_ABS, VIRTIO_INPUT_ABS_Y,
                                          (uint32_t)vinput_clamp(y, 0, VIRTIO_INPUT_ABS_MAX)};
    pthread_mutex_lock(&vi->lock);
    unsigned old = vi->buttons_valid ? vi->buttons : 0;
    for (unsigned i = 0; i < 3; i++) {
        unsigned bit = 1u << i;
        if ((buttons ^ old) & bit) {
            ev[n++] =
                (struct virtio_input_event){VIRTIO_INPUT_EV_KEY, btn[i], (buttons & bit) ? 1u : 0u};
        }
    }
    if (wheel) {
        ev[n++] = (struct virtio_input_event){VIRTIO_INPUT_EV_REL, VIRTIO_INPUT_REL_WHEEL,
                                              (uint32_t)vinput_clamp(wheel, -127, 127)};
    }
    ev[n++] = (struct virtio_input_event){VIRTIO_INPUT_EV_SYN, VIRTIO_INPUT_SYN_REPORT, 0};
    int rc = vinput_send_locked(vi, ev, n);
    if (rc == 0) {
        vi->buttons = buttons & 7;
        vi->buttons_valid = true;
    }
    pthread_mutex_unlock(&vi->lock);
    return rc;
}
