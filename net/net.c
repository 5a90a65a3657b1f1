/* Frame queues between NIC models and backends, --net parsing, checksum helpers. */
#include "net/net.h"

#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_TAG "net"

struct net_frame {
    size_t len;
    uint8_t data[];
};

/* ---- --net parsing ---------------------------------------------------------------- */

static int net_bad(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int net_bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &tail) != 6 || strlen(s) != 17) {
        return -EINVAL;
    }
    for (int i = 0; i < 6; i++) {
        mac[i] = (uint8_t)v[i];
    }
    /* A multicast address as a station address would make every frame a broadcast. */
    if (mac[0] & 1) {
        return -EINVAL;
    }
    return 0;
}

void net_default_mac(unsigned index, uint8_t mac[6])
{
    static const uint8_t base[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(mac, base, 6);
    mac[5] = (uint8_t)(base[5] + index);
}

static int net_parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5) {
        return -EINVAL;
    }
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return -EINVAL;
    }
    *out = (uint16_t)v;
    return 0;
}

static int net_parse_addr(const char *s, size_t n, struct in_addr *out)
{
    char buf[INET_ADDRSTRLEN];
    out->s_addr = 0;
    if (n == 0) {
        return 0;
    }
    if (n >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, out) == 1 ? 0 : -EINVAL;
}

/* tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport */
static int net_parse_hostfwd(const char *v, struct net_hostfwd *f)
{
    memset(f, 0, sizeof(*f));
    if (!strncmp(v, "tcp:", 4)) {
        v += 4;
    } else if (!strncmp(v, "udp:", 4)) {
        f->udp = true;
        v += 4;
    } else {
        return -EINVAL;
    }
    const char *dash = strchr(v, '-');
    if (!dash) {
        return -EINVAL;
    }
    const char *c1 = memchr(v, ':', (size_t)(dash - v));
    const char *c2 = strchr(dash + 1, ':');
    if (!c1 || !c2) {
        return -EINVAL;
    }
    if (net_parse_addr(v, (size_t)(c1 - v), &f->host_addr) < 0 ||
        net_parse_port(c1 + 1, (size_t)(dash - c1 - 1), &f->host_port) < 0 ||
        net_parse_addr(dash + 1, (size_t)(c2 - dash - 1), &f->guest_addr) < 0 ||
        net_parse_port(c2 + 1, strlen(c2 + 1), &f->guest_port) < 0) {
        return -EINVAL;
    }
    return 0;
}

static int net_onoff(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no")) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

int net_parse_nic(const char *spec, struct net_nic_config *cfg, bool *none, char *why, size_t len)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ipv6 = true;
    *none = false;
    if (!strcmp(spec, "none")) {
        *none = true;
        return 0;
    }
    if (strncmp(spec, "user", 4) != 0 || (spec[4] != '\0' && spec[4] != ',')) {
        return net_bad(why, len, "'%s': the backend must be user or none", spec);
    }
    char *copy = strdup(spec + 4);
    if (!copy) {
        return net_bad(why, len, "out of memory");
    }
    int rc = 0;
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            rc = net_bad(why, len, "'%s' is not KEY=VALUE", kv);
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (!strcmp(kv, "hostfwd")) {
            if (cfg->nfwds >= NET_MAX_FWDS) {
                rc = net_bad(why, len, "at most %d hostfwd= per NIC", NET_MAX_FWDS);
            } else if (net_parse_hostfwd(v, &cfg->fwds[cfg->nfwds]) < 0) {
                rc = net_bad(why, len,
                             "hostfwd=%s: use tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport",
                             v);
            } else {
                cfg->nfwds++;
            }
        } else if (!strcmp(kv, "restrict")) {
            if (net_onoff(v, &cfg->restricted) < 0) {
                rc = net_bad(why, len, "restrict=%s: use on or off", v);
            }
        } else if (!strcmp(kv, "ipv6")) {
            if (net_onoff(v, &cfg->ipv6) < 0) {
                rc = net_bad(why, len, "ipv6=%s: use on or off", v);
            }
        } else if (!strcmp(kv, "model")) {
            if (!strcmp(v, "virtio") || !strcmp(v, "virtio-net")) {
                cfg->model = NET_MODEL_VIRTIO;
            } else if (!strcmp(v, "e1000")) {
                cfg->model = NET_MODEL_E1000;
            } else {
                rc = net_bad(why, len, "model=%s: use virtio or e1000", v);
            }
        } else if (!strcmp(kv, "mac")) {
            if (net_parse_mac(v, cfg->mac) < 0) {
                rc = net_bad(why, len, "mac=%s: use six hex bytes like 52:54:00:12:34:56 "
                             "(unicast)", v);
            } else {
                cfg->has_mac = true;
            }
        } else if (!strcmp(kv, "mtu")) {
            char *end = NULL;
            unsigned long m = strtoul(v, &end, 10);
            if (!v[0] || *end || m < NET_MTU_DEFAULT || m > NET_MTU_MAX) {
                rc = net_bad(why, len, "mtu=%s: use %d..%d", v, NET_MTU_DEFAULT, NET_MTU_MAX);
            } else {
                cfg->mtu = (unsigned)m;
            }
        } else if (!strcmp(kv, "tftp")) {
            if (!v[0] || strlen(v) >= sizeof(cfg->tftp)) {
                rc = net_bad(why, len, "tftp= needs a directory");
            } else {
                snprintf(cfg->tftp, sizeof(cfg->tftp), "%s", v);
            }
        } else if (!strcmp(kv, "bootfile")) {
            /* DHCP's file field is 128 bytes with its NUL (RFC 2131). */
            if (!v[0] || strlen(v) >= 128) {
                rc = net_bad(why, len, "bootfile= needs a name of 1 to 127 bytes");
            } else {
                snprintf(cfg->bootfile, sizeof(cfg->bootfile), "%s", v);
            }
        } else {
            rc = net_bad(why, len,
                         "unknown key '%s' (use hostfwd, restrict, model, mac, ipv6, mtu, "
                         "tftp, bootfile)",
                         kv);
        }
    }
    free(copy);
    return rc;
}

/* ---- queues ------------------------------------------------------------------------- */

static gboolean net_wake_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    struct net_backend *be = *(struct net_backend **)((char *)src + sizeof(GSource));
    g_source_set_ready_time(src, -1);
    net_backend_pump(be);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs net_wake_funcs = {.dispatch = net_wake_dispatch};

int net_backend_init(struct net_backend *be, const struct net_backend_ops *ops, GMainContext *ctx)
{
    be->ops = ops;
    be->ctx = ctx;
    be->link_up = true;
    pthread_mutex_init(&be->lock, NULL);
    pthread_mutex_init(&be->io_lock, NULL);
    g_queue_init(&be->txq);
    g_queue_init(&be->rxq);
    if (ctx) {
        be->wake_src = g_source_new(&net_wake_funcs, sizeof(GSource) + sizeof(be));
        *(struct net_backend **)((char *)be->wake_src + sizeof(GSource)) = be;
        g_source_set_ready_time(be->wake_src, -1);
        g_source_attach(be->wake_src, ctx);
    }
    return 0;
}

void net_backend_set_peer(struct net_backend *be, const struct net_peer *peer)
{
    pthread_mutex_lock(&be->lock);
    be->peer = *peer;
    pthread_mutex_unlock(&be->lock);
}

bool net_backend_link_up(const struct net_backend *be)
{
    return be->link_up;
}

bool net_backend_rx_csum_good(const struct net_backend *be)
{
    return be && be->rx_csum_good;
}

static int net_enqueue(struct net_backend *be, const void *frame, size_t len, bool wake)
{
    if (len < NET_ETH_HLEN || len > NET_MAX_FRAME) {
        return -EINVAL;
    }
    if (!be->ctx) {
        be->ops->output(be, frame, len);
        be->tx_frames++;
        return 0;
    }
    struct net_frame *f = malloc(sizeof(*f) + len);
    if (!f) {
        return -ENOMEM;
    }
    f->len = len;
    memcpy(f->data, frame, len);
    pthread_mutex_lock(&be->lock);
    if (be->txq.length >= NET_TXQ_MAX) {
        be->tx_dropped++;
        pthread_mutex_unlock(&be->lock);
        free(f);
        return -ENOBUFS;
    }
    g_queue_push_tail(&be->txq, f);
    pthread_mutex_unlock(&be->lock);
    if (wake) {
        g_source_set_ready_time(be->wake_src, 0);
    }
    return 0;
}

int net_backend_send(struct net_backend *be, const void *frame, size_t len)
{
    return net_enqueue(be, frame, len, true);
}

int net_backend_queue(struct net_backend *be, const void *frame, size_t len)
{
    return net_enqueue(be, frame, len, false);
}

/* Held receive frames to the NIC until it refuses one (io_lock held). */
static void net_rxq_deliver(struct net_backend *be)
{
    for (;;) {
        pthread_mutex_lock(&be->lock);
        struct net_frame *f = g_queue_peek_head(&be->rxq);
        struct net_peer peer = be->peer;
        be->rx_kick = false;
        pthread_mutex_unlock(&be->lock);
        if (!f || !peer.receive) {
            break;
        }
        if (!peer.receive(peer.opaque, f->data, f->len)) {
            break;
        }
        be->rx_frames++;
        pthread_mutex_lock(&be->lock);
        g_queue_pop_head(&be->rxq);
        pthread_mutex_unlock(&be->lock);
        free(f);
    }
}

/* Queued frames to the backend (io_lock held). Returns how many. */
static unsigned net_txq_output(struct net_backend *be)
{
    unsigned n = 0;
    for (;;) {
        pthread_mutex_lock(&be->lock);
        struct net_frame *f = g_queue_pop_head(&be->txq);
        pthread_mutex_unlock(&be->lock);
        if (!f) {
            break;
        }
        be->ops->output(be, f->data, f->len);
        be->tx_frames++;
        n++;
        free(f);
    }
    return n;
}

/* Whether every queued frame is small (lock held). */
static bool net_txq_small(struct net_backend *be)
{
    for (GList *l = be->txq.head; l; l = l->next) {
        if (((struct net_frame *)l->data)->len > NET_SYNC_MAX_FRAME) {
            return false;
        }
    }
    return true;
}

void net_backend_flush(struct net_backend *be)
{
    if (!be->ctx) {
        return; /* frames went out when they were queued */
    }
    pthread_mutex_lock(&be->lock);
    bool small = net_txq_small(be);
    pthread_mutex_unlock(&be->lock);
    /* Small frames (ACKs, ARP) cost the backend little but their answer is what the
     * guest waits for: run it here. Data frames stay with the loop thread, which then
     * works on them while the guest builds the next ones (guest->host streams measured
     * 15% slower with their slirp work on the vCPU thread). trylock, not lock: the loop
     * thread may be preempted inside the backend; it drains the queue anyway. */
    if (!small || pthread_mutex_trylock(&be->io_lock) != 0) {
        g_source_set_ready_time(be->wake_src, 0);
        return;
    }
    be->flushing = true;
    if (net_txq_output(be) && be->ops->synced) {
        be->ops->synced(be);
    }
    be->flushing = false;
    pthread_mutex_unlock(&be->io_lock);
}

void net_backend_rx_ready(struct net_backend *be)
{
    pthread_mutex_lock(&be->lock);
    be->rx_kick = true;
    bool held = be->rxq.length > 0;
    pthread_mutex_unlock(&be->lock);
    if (!held) {
        return;
    }
    if (!be->ctx) {
        net_backend_pump(be);
    } else if (pthread_mutex_trylock(&be->io_lock) == 0) {
        net_rxq_deliver(be);
        pthread_mutex_unlock(&be->io_lock);
    } else {
        g_source_set_ready_time(be->wake_src, 0);
    }
}

static void net_rxq_hold(struct net_backend *be, const uint8_t *frame, size_t len)
{
    if (be->rxq.length >= NET_RXQ_MAX) {
        be->rx_dropped++;
        return;
    }
    struct net_frame *f = malloc(sizeof(*f) + len);
    if (!f) {
        be->rx_dropped++;
        return;
    }
    f->len = len;
    memcpy(f->data, frame, len);
    g_queue_push_tail(&be->rxq, f);
}

void net_backend_deliver(struct net_backend *be, const uint8_t *frame, size_t len)
{
    pthread_mutex_lock(&be->lock);
    struct net_peer peer = be->peer;
    bool queued = be->rxq.length > 0;
    if (!peer.receive) {
        be->rx_dropped++;
        pthread_mutex_unlock(&be->lock);
        return;
    }
    if (queued) {
        net_rxq_hold(be, frame, len);
        pthread_mutex_unlock(&be->lock);
        return;
    }
    be->rx_kick = false;
    pthread_mutex_unlock(&be->lock);
    if (peer.receive(peer.opaque, frame, len)) {
        be->rx_frames++;
        return;
    }
    pthread_mutex_lock(&be->lock);
    net_rxq_hold(be, frame, len);
    bool kicked = be->rx_kick;
    pthread_mutex_unlock(&be->lock);
    /* The NIC got buffers between its refusal and our hold: retry soon. */
    if (kicked && be->ctx) {
        g_source_set_ready_time(be->wake_src, 0);
    }
}

void net_backend_pump(struct net_backend *be)
{
    pthread_mutex_lock(&be->io_lock);
    net_txq_output(be);
    net_rxq_deliver(be);
    pthread_mutex_unlock(&be->io_lock);
}

void net_backend_free(struct net_backend *be)
{
    if (!be) {
        return;
    }
    if (be->wake_src) {
        g_source_destroy(be->wake_src);
        g_source_unref(be->wake_src);
    }
    g_queue_clear_full(&be->txq, free);
    g_queue_clear_full(&be->rxq, free);
    pthread_mutex_destroy(&be->lock);
    pthread_mutex_destroy(&be->io_lock);
    be->ops->destroy(be);
}

/* ---- checksums ---------------------------------------------------------------------- */

static uint32_t net_sum(const uint8_t *p, size_t len, uint32_t sum)
{
    while (len > 1) {
        sum += (uint32_t)(p[0] << 8 | p[1]);
        p += 2;
        len -= 2;
    }
    if (len) {
        sum += (uint32_t)p[0] << 8;
    }
    return sum;
}

static uint16_t net_fold(uint32_t sum)
{
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)sum;
}

uint16_t net_checksum(const void *buf, size_t len, uint32_t sum)
{
    return net_fold(net_sum(buf, len, sum));
}

static void net_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void net_frame_fix_checksums(uint8_t *frame, size_t len)
{
    if (len < NET_ETH_HLEN + 20) {
        return;
    }
    uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
    uint8_t *ip = frame + NET_ETH_HLEN;
    size_t iplen = len - NET_ETH_HLEN;
    uint8_t proto;
    size_t l4off;
    uint32_t pseudo;
    if (type == 0x0800 && (ip[0] >> 4) == 4) {
        size_t ihl = (size_t)(ip[0] & 0xf) * 4;
        if (ihl < 20 || ihl > iplen || iplen > 65535) {
            return;
        }
        net_put16(ip + 2, (uint16_t)iplen);
        net_put16(ip + 10, 0);
        net_put16(ip + 10, (uint16_t)~net_checksum(ip, ihl, 0));
        proto = ip[9];
        l4off = ihl;
        pseudo = net_sum(ip + 12, 8, 0) + proto + (uint32_t)(iplen - ihl);
    } else if (type == 0x86dd && (ip[0] >> 4) == 6 && iplen >= 40) {
        if (iplen - 40 > 65535) {
            return;
        }
        net_put16(ip + 4, (uint16_t)(iplen - 40));
        proto = ip[6];
        l4off = 40;
        pseudo = net_sum(ip + 8, 32, 0) + proto + (uint32_t)(iplen - 40);
    } else {
        return;
    }
    uint8_t *l4 = ip + l4off;
    size_t l4len = iplen - l4off;
    size_t csum_at;
    if (proto == 6 && l4len >= 20) {
        csum_at = 16;
    } else if (proto == 17 && l4len >= 8) {
        csum_at = 6;
        net_put16(l4 + 4, (uint16_t)l4len);
    } else {
        return;
    }
    net_put16(l4 + csum_at, 0);
    uint16_t c = (uint16_t)~net_fold(net_sum(l4, l4len, pseudo));
    if (proto == 17 && c == 0) {
        c = 0xffff; /* RFC 768: zero means "no checksum" */
    }
    net_put16(l4 + csum_at, c);
}

unsigned net_frame_check_csums(const uint8_t *frame, size_t len, bool trusted)
{
    if (len < NET_ETH_HLEN + 20) {
        return 0;
    }
    uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
    const uint8_t *ip = frame + NET_ETH_HLEN;
    size_t avail = len - NET_ETH_HLEN;
    unsigned r = 0;
    uint8_t proto;
    size_t l4off, iplen;
    uint32_t pseudo;
    if (type == 0x0800 && (ip[0] >> 4) == 4) {
        size_t ihl = (size_t)(ip[0] & 0xf) * 4;
        iplen = (size_t)(ip[2] << 8 | ip[3]);
        if (ihl < 20 || iplen < ihl || iplen > avail) {
            return 0;
        }
        r |= NET_CSUM_IP4;
        if (!trusted && net_checksum(ip, ihl, 0) != 0xffff) {
            r |= NET_CSUM_IP4_BAD;
        }
        /* A fragment's L4 checksum covers the whole datagram: not checkable here. */
        if ((ip[6] & 0x3f) || ip[7]) {
            return r;
        }
        proto = ip[9];
        l4off = ihl;
        pseudo = net_sum(ip + 12, 8, 0) + proto + (uint32_t)(iplen - ihl);
    } else if (type == 0x86dd && (ip[0] >> 4) == 6 && avail >= 40) {
        iplen = 40 + (size_t)(ip[4] << 8 | ip[5]);
        if (iplen > avail) {
            return 0;
        }
        r |= NET_CSUM_IP6;
        proto = ip[6];
        l4off = 40;
        pseudo = net_sum(ip + 8, 32, 0) + proto + (uint32_t)(iplen - 40);
    } else {
        return 0;
    }
    size_t l4len = iplen - l4off;
    if (!((proto == 6 && l4len >= 20) || (proto == 17 && l4len >= 8))) {
        return r;
    }
    r |= NET_CSUM_L4;
    if (proto == 17 && !(ip[l4off + 6] | ip[l4off + 7]) && (r & NET_CSUM_IP4)) {
        return r; /* UDP over IPv4 without a checksum (RFC 768) */
    }
    if (!trusted && net_fold(net_sum(ip + l4off, l4len, pseudo)) != 0xffff) {
        r |= NET_CSUM_L4_BAD;
    }
    return r;
}
