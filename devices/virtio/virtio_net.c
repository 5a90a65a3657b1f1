/* virtio-net device (virtio 1.1, 5.1). */
#include "devices/virtio/virtio_net.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define VNET_TAG "dev.virtio.net"
#define VNET_RX_STASH 64 /* receive chains held while gathering room for one frame */

struct virtio_net {
    struct virtio_dev_ops ops;   /* per instance: MTU differs */
    struct virtio_pci *vp;       /* transport */
    struct net_backend *be;      /* host side */
    uint8_t mac[6];              /* config mac (5.1.4) */
    uint16_t mtu;                /* config mtu (5.1.4), VIRTIO_NET_F_MTU */
    bool link_up;                /* config status VIRTIO_NET_S_LINK_UP (5.1.4) */
    pthread_mutex_t rx_lock;     /* stash, nstash, stash_bytes */
    struct virtq_elem *stash[VNET_RX_STASH]; /* popped receive chains not yet used */
    unsigned nstash;             /* chains in stash */
    uint64_t stash_bytes;        /* writable bytes in them */
    bool rx_warned;              /* a frame too big for the buffers was logged */
    pthread_mutex_t tx_lock;     /* tx_elem, tx_buf */
    struct virtq_elem *tx_elem;  /* scratch for the transmit queue */
    uint8_t *tx_buf;             /* header + frame gathered from one chain */
    bool tx_warned;              /* an oversized frame was logged */
};

static uint32_t vnet_config_read(void *dev, unsigned off, unsigned size)
{
    struct virtio_net *n = dev;
    uint8_t c[VIRTIO_NET_CONFIG_LEN] = {0};
    memcpy(c + VIRTIO_NET_CFG_MAC, n->mac, 6);
    c[VIRTIO_NET_CFG_STATUS] = n->link_up ? VIRTIO_NET_S_LINK_UP : 0;
    c[VIRTIO_NET_CFG_MAX_PAIRS] = 1;
    c[VIRTIO_NET_CFG_MTU] = (uint8_t)n->mtu;
    c[VIRTIO_NET_CFG_MTU + 1] = (uint8_t)(n->mtu >> 8);
    uint32_t v = 0;
    for (unsigned i = 0; i < size && off + i < sizeof(c); i++) {
        v |= (uint32_t)c[off + i] << (8 * i);
    }
    return v;
}

static void vnet_config_write(void *dev, unsigned off, uint32_t val, unsigned size)
{
    /* The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR-less legacy drivers;
     * a modern driver must not write config (5.1.4.2): ignore. */
}

static uint16_t vnet_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Completes a partial checksum (5.1.6.2.1): ones' complement sum from csum_start
 * to the end, stored at csum_start + csum_offset. */
static void vnet_tx_csum(uint8_t *frame, size_t len, uint16_t start, uint16_t off)
{
    if ((size_t)start + off + 2 > len) {
        return;
    }
    /* The field already holds the pseudo-header sum: it is part of the sum. */
    uint16_t c = (uint16_t)~net_checksum(frame + start, len - start, 0);
    frame[start + off] = (uint8_t)(c >> 8);
    frame[start + off + 1] = (uint8_t)c;
}

static void vnet_tx_one(struct virtio_net *n, struct virtq_elem *e)
{
    uint64_t total = e->out_len;
    if (total < VIRTIO_NET_HDR_LEN + NET_ETH_HLEN ||
        total > VIRTIO_NET_HDR_LEN + (uint64_t)NET_MAX_FRAME) {
        if (!n->tx_warned) {
            log_warn(VNET_TAG, "dropping a %llu-byte transmit chain (bad length)",
                     (unsigned long long)total);
            n->tx_warned = true;
        }
        return;
    }
    size_t got = virtq_iov_to_buf(e->iov, e->nout, 0, n->tx_buf, (size_t)total);
    uint8_t *hdr = n->tx_buf;
    uint8_t *frame = n->tx_buf + VIRTIO_NET_HDR_LEN;
    size_t len = got - VIRTIO_NET_HDR_LEN;
    uint8_t gso = hdr[1] & 0x7f;
    uint64_t f = virtio_pci_features(n->vp);
    if (gso != VIRTIO_NET_HDR_GSO_NONE &&
        (f & ((1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6)))) {
        /* The super-frame goes out whole: slirp takes IP packets up to 64 KiB, so
         * only lengths and checksums need to become those of one big packet. */
        net_frame_fix_checksums(frame, len);
    } else if ((hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (f & (1ull << VIRTIO_NET_F_CSUM))) {
        vnet_tx_csum(frame, len, vnet_le16(hdr + 6), vnet_le16(hdr + 8));
    }
    net_backend_queue(n->be, frame, len);
}

static void vnet_tx_notify(struct virtio_net *n, unsigned q)
{
    pthread_mutex_lock(&n->tx_lock);
    while (virtio_pci_pop(n->vp, q, n->tx_elem) > 0) {
        vnet_tx_one(n, n->tx_elem);
        virtio_pci_push(n->vp, q, n->tx_elem, 0);
    }
    pthread_mutex_unlock(&n->tx_lock);
    /* Outside the lock: the backend may answer on this thread (vnet_receive). */
    net_backend_flush(n->be);
}

static void vnet_queue_notify(void *dev, unsigned q)
{
    struct virtio_net *n = dev;
    if (q == VIRTIO_NET_RXQ) {
        net_backend_rx_ready(n->be);
    } else if (q == VIRTIO_NET_TXQ) {
        vnet_tx_notify(n, q);
    }
}

/* Pops receive chains until the stash holds need bytes. 1: enough; 0: the driver
 * has no more buffers now; -ENOSPC: even a full stash is too small for this frame;
 * -EIO: the ring is broken. */
static int vnet_rx_gather(struct virtio_net *n, uint64_t need, bool mergeable)
{
    while (n->nstash == 0 || (mergeable && n->stash_bytes < need)) {
        if (n->nstash == VNET_RX_STASH) {
            return -ENOSPC;
        }
        if (!n->stash[n->nstash]) {
            n->stash[n->nstash] = malloc(sizeof(struct virtq_elem));
            if (!n->stash[n->nstash]) {
                return 0;
            }
        }
        struct virtq_elem *e = n->stash[n->nstash];
        int rc = virtio_pci_pop(n->vp, VIRTIO_NET_RXQ, e);
        if (rc <= 0) {
            return rc;
        }
        n->nstash++;
        n->stash_bytes += e->in_len;
    }
    return 1;
}

/* Returns used stash entries [0, k) to the driver and moves the rest down. */
static void vnet_rx_consume(struct virtio_net *n, unsigned k)
{
    for (unsigned i = 0; i < k; i++) {
        n->stash_bytes -= n->stash[i]->in_len;
    }
    struct virtq_elem *used[VNET_RX_STASH];
    memcpy(used, n->stash, k * sizeof(used[0]));
    memmove(n->stash, n->stash + k, (n->nstash - k) * sizeof(n->stash[0]));
    memcpy(n->stash + (n->nstash - k), used, k * sizeof(used[0]));
    n->nstash -= k;
}

static bool vnet_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct virtio_net *n = opaque;
    pthread_mutex_lock(&n->rx_lock);
    if (!n->link_up || !virtio_pci_queue_live(n->vp, VIRTIO_NET_RXQ)) {
        pthread_mutex_unlock(&n->rx_lock);
        return true; /* no driver: the frame is lost on the wire */
    }
    bool mergeable = virtio_pci_features(n->vp) & (1ull << VIRTIO_NET_F_MRG_RXBUF);
    uint64_t need = VIRTIO_NET_HDR_LEN + (uint64_t)len;
    int rc = vnet_rx_gather(n, need, mergeable);
    if (rc == -ENOSPC) {
        /* The driver's buffers are too small for this frame even together (5.1.6.3.1
         * lets the device drop it). The chains stay stashed for the next frames: dropping
         * them too would take them from the driver for good and stall receive. */
        if (!n->rx_warned) {
            log_warn(VNET_TAG, "dropping a %zu-byte frame: receive buffers too small", len);
            n->rx_warned = true;
        }
        pthread_mutex_unlock(&n->rx_lock);
        return true;
    }
    if (rc <= 0) {
        if (rc < 0) {
            /* A broken ring: the transport has flagged NEEDS_RESET; drop quietly. */
            n->nstash = 0;
            n->stash_bytes = 0;
        }
        pthread_mutex_unlock(&n->rx_lock);
        return rc < 0;
    }
    if (!mergeable && n->stash[0]->in_len < need) {
        /* Without MRG_RXBUF every buffer must hold a whole frame (5.1.6.3.1). */
        pthread_mutex_unlock(&n->rx_lock);
        return true;
    }
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
    if (virtio_pci_features(n->vp) & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
        /* DATA_VALID (5.1.6.4.1): the TCP/UDP checksum is known good, so the driver skips
         * summing the packet; the host checks it unless the backend built the frame. */
        unsigned c = net_frame_check_csums(frame, len, net_backend_rx_csum_good(n->be));
        if ((c & NET_CSUM_L4) && !(c & (NET_CSUM_L4_BAD | NET_CSUM_IP4_BAD))) {
            hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
        }
    }
    unsigned k = 0;
    size_t done = 0; /* frame bytes written */
    uint32_t lens[VNET_RX_STASH];
    while (done < len || k == 0) {
        struct virtq_elem *e = n->stash[k];
        size_t skip = 0;
        size_t room = (size_t)e->in_len;
        if (k == 0) {
            skip = VIRTIO_NET_HDR_LEN;
            if (room < skip) {
                pthread_mutex_unlock(&n->rx_lock);
                virtio_pci_set_needs_reset(n->vp, "receive buffer smaller than the header");
                return true;
            }
        }
        size_t chunk = room - skip < len - done ? room - skip : len - done;
        virtq_iov_from_buf(e->iov + e->nout, e->nin, skip, frame + done, chunk);
        done += chunk;
        lens[k] = (uint32_t)(skip + chunk);
        k++;
    }
    hdr[10] = (uint8_t)k; /* num_buffers (5.1.6.4) */
    hdr[11] = (uint8_t)(k >> 8);
    struct virtq_elem *first = n->stash[0];
    virtq_iov_from_buf(first->iov + first->nout, first->nin, 0, hdr, sizeof(hdr));
    /* One batch: the driver must never see a frame's first buffer without the rest. */
    virtio_pci_push_many(n->vp, VIRTIO_NET_RXQ, n->stash, lens, k);
    vnet_rx_consume(n, k);
    pthread_mutex_unlock(&n->rx_lock);
    return true;
}

static void vnet_reset(void *dev)
{
    struct virtio_net *n = dev;
    pthread_mutex_lock(&n->rx_lock);
    n->nstash = 0;
    n->stash_bytes = 0;
    pthread_mutex_unlock(&n->rx_lock);
}

struct virtio_net *virtio_net_new(const struct guestmem *mem, const uint8_t mac[6], unsigned mtu,
                                  struct net_backend *be)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n) {
        return NULL;
    }
    memcpy(n->mac, mac, 6);
    n->mtu = (uint16_t)(mtu < NET_MTU_DEFAULT ? NET_MTU_DEFAULT
                                              : (mtu > NET_MTU_MAX ? NET_MTU_MAX : mtu));
    n->link_up = true;
    n->be = be;
    pthread_mutex_init(&n->rx_lock, NULL);
    pthread_mutex_init(&n->tx_lock, NULL);
    n->ops = (struct virtio_dev_ops){
        .name = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .class_code = 0x020000, /* network, Ethernet */
        .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
                    (1ull << VIRTIO_NET_F_MTU) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
                    (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
                    (1ull << VIRTIO_NET_F_HOST_TSO4) |
                    (1ull << VIRTIO_NET_F_HOST_TSO6),
        .num_queues = 2,
        .queue_size = VIRTIO_NET_QUEUE_SIZE,
        .config_len = VIRTIO_NET_CONFIG_LEN,
        .config_read = vnet_config_read,
        .config_write = vnet_config_write,
        .queue_notify = vnet_queue_notify,
        .reset = vnet_reset,
    };
    n->tx_elem = malloc(sizeof(*n->tx_elem));
    n->tx_buf = malloc(VIRTIO_NET_HDR_LEN + NET_MAX_FRAME);
    n->vp = virtio_pci_new(&n->ops, n, mem);
    if (!n->tx_elem || !n->tx_buf || !n->vp) {
        virtio_net_free(n);
        return NULL;
    }
    if (be) {
        struct net_peer peer = {.receive = vnet_receive, .opaque = n};
        net_backend_set_peer(be, &peer);
    }
    return n;
}

void virtio_net_free(struct virtio_net *n)
{
    if (!n) {
        return;
    }
    if (n->be) {
        struct net_peer none = {0};
        net_backend_set_peer(n->be, &none);
    }
    virtio_pci_free(n->vp);
    for (unsigned i = 0; i < VNET_RX_STASH; i++) {
        free(n->stash[i]);
    }
    free(n->tx_elem);
    free(n->tx_buf);
    pthread_mutex_destroy(&n->rx_lock);
    pthread_mutex_destroy(&n->tx_lock);
    free(n);
}

/* ---- saved state ---------------------------------------------------------------------- */

struct vnet_saved {
    uint8_t mac[6];                  /* config mac (5.1.4) */
    uint16_t mtu;                    /* config mtu (5.1.4) */
    bool link_up;                    /* config status LINK_UP (5.1.4) */
    uint32_t nstash;                 /* receive chains popped but not yet filled */
    uint16_t stash_head[VNET_RX_STASH]; /* ... their descriptor heads (2.6.8) */
};

static int vnet_saved_check(void *scratch, int version_id)
{
    const struct vnet_saved *v = scratch;
    if (v->nstash > VNET_RX_STASH) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < v->nstash; i++) {
        if (v->stash_head[i] >= VIRTIO_NET_QUEUE_SIZE) {
            return -EINVAL; /* no ring this device offers has such a descriptor */
        }
    }
    return 0;
}

static const struct vmstate_field vnet_saved_fields[] = {
    VMSTATE_BUF(struct vnet_saved, mac),
    VMSTATE_FIELD(struct vnet_saved, mtu, VMSTATE_U16),
    VMSTATE_FIELD(struct vnet_saved, link_up, VMSTATE_BOOL),
    VMSTATE_FIELD(struct vnet_saved, nstash, VMSTATE_U32),
    VMSTATE_ARRAY(struct vnet_saved, stash_head, VMSTATE_U16, VNET_RX_STASH),
    VMSTATE_END,
};

static const struct vmstate_desc vnet_saved_vmstate = {
    .name = "virtio-net",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct vnet_saved),
    .fields = vnet_saved_fields,
    .post_load = vnet_saved_check,
};

/* The virtio-net section, then the transport's (virtio_pci_device_ops). */
static int vnet_save(void *dev, GByteArray *out)
{
    struct virtio_net *n = dev;
    struct vnet_saved v = {0};
    pthread_mutex_lock(&n->rx_lock);
    memcpy(v.mac, n->mac, 6);
    v.mtu = n->mtu;
    v.link_up = n->link_up;
    v.nstash = n->nstash;
    for (unsigned i = 0; i < n->nstash; i++) {
        v.stash_head[i] = n->stash[i]->head;
    }
    int rc = vmstate_save(&vnet_saved_vmstate, &v, out);
    if (rc == 0) {
        rc = virtio_pci_device_ops.save(n->vp, out);
    }
    pthread_mutex_unlock(&n->rx_lock);
    return rc;
}

/* All or nothing: a stream for another MAC or MTU is refused before the transport
 * loads. Receive chains the saved device had popped but not filled (it was waiting for
 * more buffers) go back to the driver as used with length 0: a driver drops them as
 * runt frames and posts them again (Linux: rx_length_errors), instead of losing them. */
static int vnet_load(void *dev, const uint8_t *buf, size_t len)
{
    struct virtio_net *n = dev;
    struct vnet_saved v = {0};
    size_t used = 0;
    int rc = vmstate_load(&vnet_saved_vmstate, &v, buf, len, &used);
    if (rc == 0 && (memcmp(v.mac, n->mac, 6) != 0 || v.mtu != n->mtu)) {
        log_warn(VNET_TAG, "saved state is for another NIC (MAC or MTU differ)");
        rc = -EINVAL;
    }
    if (rc == 0) {
        rc = virtio_pci_device_ops.load(n->vp, buf + used, len - used);
    }
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&n->rx_lock);
    n->nstash = 0;
    n->stash_bytes = 0;
    n->link_up = v.link_up;
    if (v.nstash && virtio_pci_queue_live(n->vp, VIRTIO_NET_RXQ)) {
        struct virtq_elem *e = malloc(sizeof(*e));
        if (e) {
            for (uint32_t i = 0; i < v.nstash; i++) {
                e->head = v.stash_head[i];
                e->nout = e->nin = 0;
                e->out_len = e->in_len = 0;
                virtio_pci_push(n->vp, VIRTIO_NET_RXQ, e, 0);
            }
            free(e);
        }
    }
    pthread_mutex_unlock(&n->rx_lock);
    net_backend_rx_ready(n->be);
    return 0;
}

static void vnet_system_reset(void *dev)
{
    struct virtio_net *n = dev;
    virtio_pci_device_ops.reset(n->vp); /* device reset included (vnet_reset) */
}

const struct device_ops virtio_net_device_ops = {
    .name = "virtio-net",
    .reset = vnet_system_reset,
    .save = vnet_save,
    .load = vnet_load,
};

struct virtio_pci *virtio_net_transport(struct virtio_net *n)
{
    return n->vp;
}

void virtio_net_set_link(struct virtio_net *n, bool up)
{
    pthread_mutex_lock(&n->rx_lock);
    bool changed = n->link_up != up;
    n->link_up = up;
    pthread_mutex_unlock(&n->rx_lock);
    if (changed) {
        virtio_pci_config_changed(n->vp);
    }
}
