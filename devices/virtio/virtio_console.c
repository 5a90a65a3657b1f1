/* virtio-console multiport device (virtio 1.1, 5.3). */
#include "devices/virtio/virtio_console.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CON_TAG "dev.virtio.console"
#define CON_CTRL_RX 2 /* device -> driver control queue (c_ivq) */
#define CON_CTRL_TX 3 /* driver -> device control queue (c_ovq) */
#define CON_NQUEUES (2 * VIRTIO_CONSOLE_MAX_PORTS + 2)
#define CON_CTRL_HDR 8 /* struct virtio_console_control: le32 id, le16 event, le16 value */
#define CON_PENDING_MAX 64
#define CON_MSG_MAX (CON_CTRL_HDR + VIRTIO_CONSOLE_NAME_MAX + 1)
#define CON_CONFIG_LEN 12

struct con_port {
    bool present;                           /* configured by the host */
    bool console;                           /* port 0 as hvc console */
    char name[VIRTIO_CONSOLE_NAME_MAX + 1]; /* PORT_NAME payload ("" = unnamed) */
    struct virtio_console_backend be;       /* guest -> host */
    bool guest_ready;                       /* PORT_READY(1) seen */
    bool guest_open;                        /* PORT_OPEN value from the guest */
};

struct con_msg {
    size_t len;                /* bytes in data */
    uint8_t data[CON_MSG_MAX]; /* control header + optional name */
};

struct virtio_console {
    struct virtio_pci *vp;                           /* transport */
    pthread_mutex_t lock;                            /* everything below but tx */
    struct con_port ports[VIRTIO_CONSOLE_MAX_PORTS]; /* by port id */
    int next_named;                                  /* next id for a named port */
    bool driver_ready;                               /* DEVICE_READY(1) seen */
    struct con_msg pending[CON_PENDING_MAX]; /* control messages waiting for c_ivq buffers */
    unsigned npending;
    struct virtq_elem *rx_elem; /* scratch for rx and control (lock) */
    pthread_mutex_t tx_lock;    /* guest -> host path */
    struct virtq_elem *tx_elem; /* scratch for tx (tx_lock) */
};

static int con_rx_queue(int id)
{
    return id == 0 ? 0 : 2 * id + 2;
}

/* Port id of a tx queue, or -1. */
static int con_tx_port(unsigned q)
{
    if (q == 1) {
        return 0;
    }
    if (q >= 5 && q < CON_NQUEUES && (q & 1)) {
        return (int)(q - 3) / 2;
    }
    return -1;
}

static uint32_t con_config_read(void *dev, unsigned off, unsigned size)
{
    uint8_t c[CON_CONFIG_LEN] = {0};
    c[4] = VIRTIO_CONSOLE_MAX_PORTS; /* max_nr_ports (le32) */
    uint32_t v = 0;
    for (unsigned i = 0; i < size && off + i < sizeof(c); i++) {
        v |= (uint32_t)c[off + i] << (8 * i);
    }
    return v;
}

/* Delivers queued control messages into the guest's c_ivq buffers (lock held). */
static void con_flush_ctrl(struct virtio_console *vc)
{
    unsigned done = 0;
    while (done < vc->npending) {
        int rc = virtio_pci_pop(vc->vp, CON_CTRL_RX, vc->rx_elem);
        if (rc <= 0) {
            break;
        }
        struct con_msg *m = &vc->pending[done];
        size_t n = virtq_iov_from_buf(vc->rx_elem->iov + vc->rx_elem->nout, vc->rx_elem->nin, 0,
                                      m->data, m->len);
        virtio_pci_push(vc->vp, CON_CTRL_RX, vc->rx_elem, (uint32_t)n);
        done++;
    }
    if (done) {
        memmove(vc->pending, vc->pending + done, (vc->npending - done) * sizeof(vc->pending[0]));
        vc->npending -= done;
    }
}

static void con_send_ctrl(struct virtio_console *vc, int id, uint16_t event, uint16_t value,
                          const char *payload)
{
    if (vc->npending == CON_PENDING_MAX) {
        log_warn(CON_TAG, "control queue full; dropping event %u for port %d", event, id);
        return;
    }
    struct con_msg *m = &vc->pending[vc->npending++];
    uint32_t uid = (uint32_t)id;
    for (int i = 0; i < 4; i++) {
        m->data[i] = (uint8_t)(uid >> (8 * i));
    }
    m->data[4] = (uint8_t)event;
    m->data[5] = (uint8_t)(event >> 8);
    m->data[6] = (uint8_t)value;
    m->data[7] = (uint8_t)(value >> 8);
    m->len = CON_CTRL_HDR;
    if (payload) {
        size_t n = strlen(payload);
        memcpy(m->data + CON_CTRL_HDR, payload, n);
        m->len += n;
    }
}

static void con_handle_ctrl(struct virtio_console *vc, const uint8_t *msg)
{
    uint32_t id = (uint32_t)msg[0] | ((uint32_t)msg[1] << 8) | ((uint32_t)msg[2] << 16) |
                  ((uint32_t)msg[3] << 24);
    uint16_t event = (uint16_t)(msg[4] | (msg[5] << 8));
    uint16_t value = (uint16_t)(msg[6] | (msg[7] << 8));
    switch (event) {
    case VIRTIO_CONSOLE_DEVICE_READY:
        if (value != 1) {
            log_warn(CON_TAG, "driver failed to set up the device");
            return;
        }
        vc->driver_ready = true;
        for (int p = 0; p < VIRTIO_CONSOLE_MAX_PORTS; p++) {
            if (vc->ports[p].present) {
                con_send_ctrl(vc, p, VIRTIO_CONSOLE_DEVICE_ADD, 1, NULL);
            }
        }
        return;
    case VIRTIO_CONSOLE_PORT_READY:
    case VIRTIO_CONSOLE_PORT_OPEN:
        break;
    default:
        return;
    }
    if (id >= VIRTIO_CONSOLE_MAX_PORTS || !vc->ports[id].present) {
        log_warn(CON_TAG, "control event %u for unknown port %u", event, id);
        return;
    }
    struct con_port *p = &vc->ports[id];
    if (event == VIRTIO_CONSOLE_PORT_OPEN) {
        p->guest_open = value != 0;
        return;
    }
    if (value != 1) {
        return; /* the guest failed to add the port */
    }
    p->guest_ready = true;
    if (p->console) {
        con_send_ctrl(vc, (int)id, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL);
    }
    if (p->name[0]) {
        con_send_ctrl(vc, (int)id, VIRTIO_CONSOLE_PORT_NAME, 1, p->name);
    }
    con_send_ctrl(vc, (int)id, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
}

static void con_process_ctrl_tx(struct virtio_console *vc)
{
    for (;;) {
        int rc = virtio_pci_pop(vc->vp, CON_CTRL_TX, vc->rx_elem);
        if (rc <= 0) {
            break;
        }
        uint8_t msg[CON_CTRL_HDR];
        size_t n = virtq_iov_to_buf(vc->rx_elem->iov, vc->rx_elem->nout, 0, msg, sizeof(msg));
        if (n == sizeof(msg)) {
            con_handle_ctrl(vc, msg);
        }
        virtio_pci_push(vc->vp, CON_CTRL_TX, vc->rx_elem, 0);
    }
}

static void con_process_tx(struct virtio_console *vc, unsigned q, int id)
{
    pthread_mutex_lock(&vc->tx_lock);
    for (;;) {
        int rc = virtio_pci_pop(vc->vp, q, vc->tx_elem);
        if (rc <= 0) {
            break;
        }
        const struct con_port *p = &vc->ports[id];
        if (p->present && p->be.write) {
            for (unsigned i = 0; i < vc->tx_elem->nout; i++) {
                p->be.write(p->be.opaque, vc->tx_elem->iov[i].iov_base,
                            vc->tx_elem->iov[i].iov_len);
            }
        }
        virtio_pci_push(vc->vp, q, vc->tx_elem, 0);
    }
    pthread_mutex_unlock(&vc->tx_lock);
}

static void con_queue_notify(void *dev, unsigned q)
{
    struct virtio_console *vc = dev;
    int tx_port = con_tx_port(q);
    if (tx_port >= 0) {
        con_process_tx(vc, q, tx_port);
        return;
    }
    pthread_mutex_lock(&vc->lock);
    if (q == CON_CTRL_TX) {
        con_process_ctrl_tx(vc);
    }
    /* New c_ivq buffers (or messages queued above) */
    con_flush_ctrl(vc);
    pthread_mutex_unlock(&vc->lock);
    /* rx queues: buffers for host->guest data; the chardev's retry brings data. */
}

size_t virtio_console_port_receive(struct virtio_console *vc, int id, const uint8_t *buf,
                                   size_t len)
{
    if (id < 0 || id >= VIRTIO_CONSOLE_MAX_PORTS) {
        return 0;
    }
    size_t done = 0;
    pthread_mutex_lock(&vc->lock);
    const struct con_port *p = &vc->ports[id];
    if (p->present && p->guest_open) {
        unsigned q = (unsigned)con_rx_queue(id);
        while (done < len && virtio_pci_pop(vc->vp, q, vc->rx_elem) > 0) {
            size_t n = virtq_iov_from_buf(vc->rx_elem->iov + vc->rx_elem->nout, vc->rx_elem->nin, 0,
                                          buf + done, len - done);
            virtio_pci_push(vc->vp, q, vc->rx_elem, (uint32_t)n);
            done += n;
        }
    }
    pthread_mutex_unlock(&vc->lock);
    return done;
}

static void con_reset(void *dev)
{
    struct virtio_console *vc = dev;
    pthread_mutex_lock(&vc->tx_lock);
    pthread_mutex_lock(&vc->lock);
    vc->driver_ready = false;
    vc->npending = 0;
    for (int i = 0; i < VIRTIO_CONSOLE_MAX_PORTS; i++) {
        vc->ports[i].guest_ready = false;
        vc->ports[i].guest_open = false;
    }
    pthread_mutex_unlock(&vc->lock);
    pthread_mutex_unlock(&vc->tx_lock);
}

static const struct virtio_dev_ops con_ops = {
    .name = "virtio-console",
    .device_id = VIRTIO_ID_CONSOLE,
    .class_code = 0x078000, /* simple communication controller, other */
    .features = 1ull << VIRTIO_CONSOLE_F_MULTIPORT,
    .num_queues = CON_NQUEUES,
    .queue_size = 128,
    .config_len = CON_CONFIG_LEN,
    .config_read = con_config_read,
    .queue_notify = con_queue_notify,
    .reset = con_reset,
};

struct virtio_console *virtio_console_new(const struct guestmem *mem)
{
    struct virtio_console *vc = calloc(1, sizeof(*vc));
    if (!vc) {
        return NULL;
    }
    pthread_mutex_init(&vc->lock, NULL);
    pthread_mutex_init(&vc->tx_lock, NULL);
    vc->next_named = 1;
    vc->rx_elem = malloc(sizeof(*vc->rx_elem));
    vc->tx_elem = malloc(sizeof(*vc->tx_elem));
    vc->vp = virtio_pci_new(&con_ops, vc, mem);
    if (!vc->rx_elem || !vc->tx_elem || !vc->vp) {
        virtio_console_free(vc);
        return NULL;
    }
    return vc;
}

void virtio_console_free(struct virtio_console *vc)
{
    if (!vc) {
        return;
    }
    virtio_pci_free(vc->vp);
    free(vc->rx_elem);
    free(vc->tx_elem);
    pthread_mutex_destroy(&vc->lock);
    pthread_mutex_destroy(&vc->tx_lock);
    free(vc);
}

/* ---- saved state ---------------------------------------------------------------------- */

/* What the guest told the device (5.3.6.2) and what it has not been told yet. The
 * ports themselves (names, backends) are host configuration and must match. */
struct con_saved {
    bool driver_ready;                             /* DEVICE_READY(1) seen */
    bool present[VIRTIO_CONSOLE_MAX_PORTS];        /* configured ports, checked on load */
    bool guest_ready[VIRTIO_CONSOLE_MAX_PORTS];    /* PORT_READY(1) seen per port */
    bool guest_open[VIRTIO_CONSOLE_MAX_PORTS];     /* last PORT_OPEN value per port */
    uint32_t npending;                             /* control messages not yet delivered */
    uint32_t pending_len[CON_PENDING_MAX];         /* bytes of each */
    uint8_t pending[CON_PENDING_MAX][CON_MSG_MAX]; /* header + payload of each */
};

static int con_saved_check(void *scratch, int version_id)
{
    struct con_saved *s = scratch;
    if (s->npending > CON_PENDING_MAX) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < s->npending; i++) {
        if (s->pending_len[i] < CON_CTRL_HDR || s->pending_len[i] > CON_MSG_MAX) {
            return -EINVAL;
        }
    }
    for (int i = 0; i < VIRTIO_CONSOLE_MAX_PORTS; i++) {
        if (!s->present[i] && (s->guest_ready[i] || s->guest_open[i])) {
            return -EINVAL;
        }
    }
    return 0;
}

static const struct vmstate_field con_saved_fields[] = {
    VMSTATE_FIELD(struct con_saved, driver_ready, VMSTATE_BOOL),
    VMSTATE_ARRAY(struct con_saved, present, VMSTATE_BOOL, VIRTIO_CONSOLE_MAX_PORTS),
    VMSTATE_ARRAY(struct con_saved, guest_ready, VMSTATE_BOOL, VIRTIO_CONSOLE_MAX_PORTS),
    VMSTATE_ARRAY(struct con_saved, guest_open, VMSTATE_BOOL, VIRTIO_CONSOLE_MAX_PORTS),
    VMSTATE_FIELD(struct con_saved, npending, VMSTATE_U32),
    VMSTATE_ARRAY(struct con_saved, pending_len, VMSTATE_U32, CON_PENDING_MAX),
    VMSTATE_BUF(struct con_saved, pending),
    VMSTATE_END,
};

static const struct vmstate_desc con_saved_vmstate = {
    .name = "virtio-console",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct con_saved),
    .fields = con_saved_fields,
    .post_load = con_saved_check,
};

/* The console's section, then the transport's (virtio_pci_device_ops). */
static int con_save(void *dev, GByteArray *out)
{
    struct virtio_console *vc = dev;
    struct con_saved *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    pthread_mutex_lock(&vc->tx_lock);
    pthread_mutex_lock(&vc->lock);
    s->driver_ready = vc->driver_ready;
    for (int i = 0; i < VIRTIO_CONSOLE_MAX_PORTS; i++) {
        s->present[i] = vc->ports[i].present;
        s->guest_ready[i] = vc->ports[i].guest_ready;
        s->guest_open[i] = vc->ports[i].guest_open;
    }
    s->npending = vc->npending;
    for (unsigned i = 0; i < vc->npending; i++) {
        s->pending_len[i] = (uint32_t)vc->pending[i].len;
        memcpy(s->pending[i], vc->pending[i].data, vc->pending[i].len);
    }
    int rc = vmstate_save(&con_saved_vmstate, s, out);
    if (rc == 0) {
        rc = virtio_pci_device_ops.save(vc->vp, out);
    }
    pthread_mutex_unlock(&vc->lock);
    pthread_mutex_unlock(&vc->tx_lock);
    free(s);
    return rc;
}

/* All or nothing: the console section is parsed and checked against the configured
 * ports, the transport loads (or refuses), and only then does the console change. */
static int con_load(void *dev, const uint8_t *buf, size_t len)
{
    struct virtio_console *vc = dev;
    struct con_saved *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    size_t used = 0;
    int rc = vmstate_load(&con_saved_vmstate, s, buf, len, &used);
    for (int i = 0; rc == 0 && i < VIRTIO_CONSOLE_MAX_PORTS; i++) {
        if (s->present[i] != vc->ports[i].present) {
            log_warn(CON_TAG, "saved state has port %d %s; this VM does%s", i,
                     s->present[i] ? "configured" : "absent", s->present[i] ? " not" : "");
            rc = -EINVAL;
        }
    }
    if (rc == 0) {
        rc = virtio_pci_device_ops.load(vc->vp, buf + used, len - used);
    }
    if (rc == 0) {
        pthread_mutex_lock(&vc->tx_lock);
        pthread_mutex_lock(&vc->lock);
        vc->driver_ready = s->driver_ready;
        for (int i = 0; i < VIRTIO_CONSOLE_MAX_PORTS; i++) {
            vc->ports[i].guest_ready = s->guest_ready[i];
            vc->ports[i].guest_open = s->guest_open[i];
        }
        vc->npending = s->npending;
        for (unsigned i = 0; i < s->npending; i++) {
            vc->pending[i].len = s->pending_len[i];
            memcpy(vc->pending[i].data, s->pending[i], s->pending_len[i]);
        }
        pthread_mutex_unlock(&vc->lock);
        pthread_mutex_unlock(&vc->tx_lock);
    }
    free(s);
    return rc;
}

static void con_system_reset(void *dev)
{
    struct virtio_console *vc = dev;
    virtio_pci_device_ops.reset(vc->vp); /* device reset included (con_reset) */
}

const struct device_ops virtio_console_device_ops = {
    .name = "virtio-console",
    .reset = con_system_reset,
    .save = con_save,
    .load = con_load,
};

struct virtio_pci *virtio_console_transport(struct virtio_console *vc)
{
    return vc->vp;
}

int virtio_console_add_port(struct virtio_console *vc, const char *name, bool console,
                            const struct virtio_console_backend *be)
{
    if (name && (!name[0] || strlen(name) > VIRTIO_CONSOLE_NAME_MAX)) {
        return -EINVAL;
    }
    if (!console && !name) {
        return -EINVAL;
    }
    pthread_mutex_lock(&vc->lock);
    for (int i = 0; name && i < VIRTIO_CONSOLE_MAX_PORTS; i++) {
        if (vc->ports[i].present && strcmp(vc->ports[i].name, name) == 0) {
            pthread_mutex_unlock(&vc->lock);
            return -EINVAL;
        }
    }
    int id;
    if (console) {
        id = 0;
        if (vc->ports[0].present) {
            pthread_mutex_unlock(&vc->lock);
            return -EINVAL;
        }
    } else {
        if (vc->next_named >= VIRTIO_CONSOLE_MAX_PORTS) {
            pthread_mutex_unlock(&vc->lock);
            return -ENOSPC;
        }
        id = vc->next_named++;
    }
    struct con_port *p = &vc->ports[id];
    memset(p, 0, sizeof(*p));
    p->present = true;
    p->console = console;
    if (name) {
        snprintf(p->name, sizeof(p->name), "%s", name);
    }
    if (be) {
        p->be = *be;
    }
    pthread_mutex_unlock(&vc->lock);
    return id;
}
