/* libslirp user-mode NAT on the machine's GLib main loop.
 *
 * One Slirp instance per NIC. Everything that touches the Slirp handle runs under
 * be.io_lock: on the loop thread a GSource whose prepare() asks slirp for its poll
 * set and timeout, and whose dispatch() lets slirp read and write its sockets and
 * fires expired slirp timers; on a vCPU thread slirp_input() for the frames a NIC
 * flushes (net_backend_flush), as QEMU does under its big lock. Frames slirp produces
 * (send_packet) go to the NIC through net_backend_deliver(), on whichever thread. */
#include "net/net.h"

#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLIRP_TAG "net.slirp"
#define SLIRP_MAX_TIMERS 16

struct slirp_timer {
    bool used;         /* slot allocated by timer_new_opaque */
    bool armed;        /* timer_mod set an expiry */
    int64_t expire_ms; /* expiry on the clock_get_ns clock, in ms */
    SlirpTimerId id;   /* what slirp_handle_timer wants back */
    void *cb_opaque;
};

/* A poll set slirp_pollfds_fill builds. */
struct slirp_fill {
    GPollFD *fds;
    unsigned n, cap; /* used / allocated */
};

struct net_slirp {
    struct net_backend be; /* base: must be first */
    Slirp *slirp;
    GSource *src;                               /* poll/timer source on the loop */
    GPollFD *pfds;                              /* poll set added to src (stable storage) */
    unsigned nadded, cap_pfd;                   /* pfds entries added / allocated */
    struct slirp_fill fill;                     /* poll set slirp asks for (loop thread) */
    struct slirp_fill vfill;                    /* the same, asked after a vCPU's input */
    bool stale;                                 /* a vCPU's fill renumbered slirp's sockets
                                                 * since prepare: this poll's revents are
                                                 * not theirs */
    struct slirp_timer timers[SLIRP_MAX_TIMERS]; /* slirp's timers (RA, DHCPv6...) */
    int64_t poll_deadline_ms;                   /* when slirp wants slirp_pollfds_poll again */
};

struct slirp_source {
    GSource base;
    struct net_slirp *s;
};

static int64_t slirp_now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

/* ---- callbacks slirp makes -------------------------------------------------------- */

static ssize_t slirp_cb_send(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *s = opaque;
    net_backend_deliver(&s->be, buf, len);
    return (ssize_t)len;
}

static void slirp_cb_guest_error(const char *msg, void *opaque)
{
    log_warn(SLIRP_TAG, "guest error: %s", msg);
}

static int64_t slirp_cb_clock(void *opaque)
{
    return slirp_now_ns();
}

static void *slirp_cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct net_slirp *s = opaque;
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        if (!s->timers[i].used) {
            s->timers[i] = (struct slirp_timer){.used = true, .id = id, .cb_opaque = cb_opaque};
            return &s->timers[i];
        }
    }
    log_error(SLIRP_TAG, "out of timer slots");
    return NULL;
}

static void slirp_cb_timer_free(void *timer, void *opaque)
{
    struct slirp_timer *t = timer;
    if (t) {
        t->used = false;
        t->armed = false;
    }
}

static void slirp_cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    struct slirp_timer *t = timer;
    if (t) {
        t->armed = true;
        t->expire_ms = expire_ms;
    }
}

static void slirp_cb_poll_fd(int fd, void *opaque)
{
    /* Only needed on Windows: the poll set is rebuilt on every iteration. */
}

/* slirp wants its poll set looked at again (a send buffer fell below half: read the
 * host socket). Inside a NIC's flush slirp_synced polls right after, on that thread. */
static void slirp_cb_notify(void *opaque)
{
    struct net_slirp *s = opaque;
    if (!s->be.flushing) {
        g_main_context_wakeup(s->be.ctx);
    }
}

static const SlirpCb slirp_callbacks = {
    .send_packet = slirp_cb_send,
    .guest_error = slirp_cb_guest_error,
    .clock_get_ns = slirp_cb_clock,
    .timer_free = slirp_cb_timer_free,
    .timer_mod = slirp_cb_timer_mod,
    .register_poll_fd = slirp_cb_poll_fd,
    .unregister_poll_fd = slirp_cb_poll_fd,
    .notify = slirp_cb_notify,
    .timer_new_opaque = slirp_cb_timer_new_opaque,
};

/* ---- the GSource ---------------------------------------------------------------------- */

static int slirp_add_poll(int fd, int events, void *opaque)
{
    struct slirp_fill *f = opaque;
    if (f->n == f->cap) {
        unsigned cap = f->cap ? f->cap * 2 : 16;
        GPollFD *n = realloc(f->fds, cap * sizeof(*n));
        if (!n) {
            return -1;
        }
        f->fds = n;
        f->cap = cap;
    }
    gushort ev = 0;
    ev |= (events & SLIRP_POLL_IN) ? G_IO_IN : 0;
    ev |= (events & SLIRP_POLL_OUT) ? G_IO_OUT : 0;
    ev |= (events & SLIRP_POLL_PRI) ? G_IO_PRI : 0;
    ev |= (events & SLIRP_POLL_ERR) ? G_IO_ERR : 0;
    ev |= (events & SLIRP_POLL_HUP) ? G_IO_HUP : 0;
    f->fds[f->n] = (GPollFD){.fd = fd, .events = ev, .revents = 0};
    return (int)f->n++;
}

static int slirp_revents(const GPollFD *fds, unsigned n, int idx)
{
    if (idx < 0 || (unsigned)idx >= n) {
        return 0;
    }
    gushort r = fds[idx].revents;
    int ev = 0;
    ev |= (r & G_IO_IN) ? SLIRP_POLL_IN : 0;
    ev |= (r & G_IO_OUT) ? SLIRP_POLL_OUT : 0;
    ev |= (r & G_IO_PRI) ? SLIRP_POLL_PRI : 0;
    ev |= (r & G_IO_ERR) ? SLIRP_POLL_ERR : 0;
    ev |= (r & G_IO_HUP) ? SLIRP_POLL_HUP : 0;
    return ev;
}

static int slirp_get_revents(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    return slirp_revents(s->pfds, s->nadded, idx);
}

static int slirp_get_vrevents(int idx, void *opaque)
{
    struct slirp_fill *f = opaque;
    return slirp_revents(f->fds, f->n, idx);
}

static void slirp_remove_polls(struct net_slirp *s)
{
    for (unsigned i = 0; i < s->nadded; i++) {
        g_source_remove_poll(s->src, &s->pfds[i]);
    }
    s->nadded = 0;
}

/* Makes the source's poll set what slirp asked for. g_source_add_poll and
 * g_source_remove_poll wake the context, so doing them on every prepare made every
 * poll() return at once: the loop thread spun at 100% of a core. The set only changes
 * when a socket opens or closes; otherwise the events are updated in place (GLib reads
 * them when it builds the poll array, after prepare). */
static void slirp_sync_polls(struct net_slirp *s)
{
    const struct slirp_fill *f = &s->fill;
    bool same = f->n == s->nadded;
    for (unsigned i = 0; same && i < f->n; i++) {
        same = s->pfds[i].fd == f->fds[i].fd;
    }
    if (same) {
        for (unsigned i = 0; i < f->n; i++) {
            s->pfds[i].events = f->fds[i].events;
            s->pfds[i].revents = 0;
        }
        return;
    }
    slirp_remove_polls(s);
    if (f->n > s->cap_pfd) {
        GPollFD *n = realloc(s->pfds, f->n * sizeof(*n));
        if (!n) {
            return; /* nothing polled this round; slirp's timeout still runs it */
        }
        s->pfds = n;
        s->cap_pfd = f->n;
    }
    for (unsigned i = 0; i < f->n; i++) {
        s->pfds[i] = f->fds[i];
        g_source_add_poll(s->src, &s->pfds[i]);
    }
    s->nadded = f->n;
}

/* The poll timeout slirp wants, shortened to its earliest armed timer (io_lock held). */
static uint32_t slirp_timeout(struct net_slirp *s, uint32_t to, int64_t now_ms)
{
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        struct slirp_timer *t = &s->timers[i];
        if (t->used && t->armed) {
            int64_t d = t->expire_ms - now_ms;
            if (d < 0) {
                d = 0;
            }
            if ((uint64_t)d < to) {
                to = (uint32_t)d;
            }
        }
    }
    return to;
}

static gboolean slirp_src_prepare(GSource *src, gint *timeout)
{
    struct net_slirp *s = ((struct slirp_source *)src)->s;
    pthread_mutex_lock(&s->be.io_lock);
    s->fill.n = 0;
    uint32_t to = 1000;
    slirp_pollfds_fill(s->slirp, &to, slirp_add_poll, &s->fill);
    slirp_sync_polls(s);
    s->stale = false;
    int64_t now_ms = slirp_now_ns() / 1000000;
    to = slirp_timeout(s, to, now_ms);
    /* slirp's TCP timers (delayed ACK, retransmit, persist) only run inside
     * slirp_pollfds_poll: the timeout it asked for must end in a dispatch even when no
     * socket became ready, or a lost segment is never sent again. */
    s->poll_deadline_ms = now_ms + to;
    pthread_mutex_unlock(&s->be.io_lock);
    *timeout = (gint)to;
    return to == 0;
}

static gboolean slirp_src_check(GSource *src)
{
    struct net_slirp *s = ((struct slirp_source *)src)->s;
    gboolean ready = FALSE;
    pthread_mutex_lock(&s->be.io_lock);
    for (unsigned i = 0; i < s->nadded && !ready; i++) {
        ready = s->pfds[i].revents != 0;
    }
    int64_t now_ms = slirp_now_ns() / 1000000;
    /* A vCPU's input may have changed what slirp needs: a dispatch re-fills the set. */
    ready = ready || s->stale || now_ms >= s->poll_deadline_ms;
    for (int i = 0; i < SLIRP_MAX_TIMERS && !ready; i++) {
        ready = s->timers[i].used && s->timers[i].armed && s->timers[i].expire_ms <= now_ms;
    }
    pthread_mutex_unlock(&s->be.io_lock);
    return ready;
}

static int slirp_no_revents(int idx, void *opaque)
{
    return 0;
}

static gboolean slirp_src_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    struct net_slirp *s = ((struct slirp_source *)src)->s;
    pthread_mutex_lock(&s->be.io_lock);
    /* After a vCPU's fill, slirp's sockets carry indices into that fill, not into the set
     * this poll() watched: their revents are dropped (poll is level-triggered, the next
     * round reports them again) and only slirp's timers run. */
    slirp_pollfds_poll(s->slirp, 0, s->stale ? slirp_no_revents : slirp_get_revents, s);
    for (unsigned i = 0; i < s->nadded; i++) {
        s->pfds[i].revents = 0;
    }
    int64_t now_ms = slirp_now_ns() / 1000000;
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        struct slirp_timer *t = &s->timers[i];
        if (t->used && t->armed && t->expire_ms <= now_ms) {
            t->armed = false;
            slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
        }
    }
    pthread_mutex_unlock(&s->be.io_lock);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs slirp_src_funcs = {
    .prepare = slirp_src_prepare,
    .check = slirp_src_check,
    .dispatch = slirp_src_dispatch,
};

/* ---- backend ops -------------------------------------------------------------------- */

static void slirp_output(struct net_backend *be, const uint8_t *frame, size_t len)
{
    struct net_slirp *s = (struct net_slirp *)be;
    slirp_input(s->slirp, frame, (int)len);
}

/* After slirp_input on a vCPU thread. First one non-blocking poll of slirp's sockets
 * right here: when the guest's ACK has emptied the send buffer of a host->guest
 * stream (slirp reads its socket again only below half full), slirp reads the host's
 * next data and sends the next window now, instead of after a round trip through the
 * loop thread with the guest waiting. Then slirp may want sockets polled that the loop
 * is not watching (a new connection, data queued for the host) or a timer sooner than
 * the loop's timeout (a delayed ACK): ask it again and wake the loop only if the
 * answer differs from what the loop waits on. */
static void slirp_synced(struct net_backend *be)
{
    struct net_slirp *s = (struct net_slirp *)be;
    if (!s->src) {
        return;
    }
    s->vfill.n = 0;
    uint32_t to = 1000;
    slirp_pollfds_fill(s->slirp, &to, slirp_add_poll, &s->vfill);
    int ready = s->vfill.n ? g_poll(s->vfill.fds, s->vfill.n, 0) : 0;
    if (ready > 0) {
        slirp_pollfds_poll(s->slirp, 0, slirp_get_vrevents, &s->vfill);
    }
    s->vfill.n = 0;
    to = 1000;
    slirp_pollfds_fill(s->slirp, &to, slirp_add_poll, &s->vfill);
    int64_t now_ms = slirp_now_ns() / 1000000;
    to = slirp_timeout(s, to, now_ms);
    bool same = s->vfill.n == s->nadded && !s->stale && now_ms + to >= s->poll_deadline_ms;
    for (unsigned i = 0; same && i < s->vfill.n; i++) {
        same = s->pfds[i].fd == s->vfill.fds[i].fd && s->pfds[i].events == s->vfill.fds[i].events;
    }
    if (!same) {
        s->stale = true;
        g_main_context_wakeup(s->be.ctx);
    }
}

static void slirp_destroy(struct net_backend *be)
{
    struct net_slirp *s = (struct net_slirp *)be;
    if (s->src) {
        slirp_remove_polls(s);
        g_source_destroy(s->src);
        g_source_unref(s->src);
    }
    if (s->slirp) {
        slirp_cleanup(s->slirp);
    }
    free(s->pfds);
    free(s->fill.fds);
    free(s->vfill.fds);
    free(s);
}

static const struct net_backend_ops slirp_backend_ops = {
    .kind = "user",
    .output = slirp_output,
    .destroy = slirp_destroy,
    .synced = slirp_synced,
};

int net_slirp_new(const struct net_nic_config *cfg, unsigned mtu, GMainContext *ctx,
                  struct net_backend **out, char *why, size_t len)
{
    if (mtu < NET_MTU_DEFAULT || mtu > NET_MTU_MAX) {
        snprintf(why, len, "user network: MTU %u is outside %d..%d", mtu, NET_MTU_DEFAULT,
                 NET_MTU_MAX);
        return -EINVAL;
    }
    if (cfg->tftp[0] && !g_file_test(cfg->tftp, G_FILE_TEST_IS_DIR)) {
        snprintf(why, len, "tftp=%.200s: not a directory", cfg->tftp);
        return -ENOENT;
    }
    struct net_slirp *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(why, len, "user network: out of memory");
        return -ENOMEM;
    }
    net_backend_init(&s->be, &slirp_backend_ops, ctx);
    /* slirp builds every packet it sends to the guest and sums it (ip_output, tcp_output,
     * udp_output): nothing crossed a wire that could have corrupted it. */
    s->be.rx_csum_good = true;

    SlirpConfig sc = {.version = 4};
    sc.restricted = cfg->restricted;
    sc.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &sc.vhost);
    inet_pton(AF_INET, "10.0.2.15", &sc.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
    sc.in6_enabled = cfg->ipv6;
    inet_pton(AF_INET6, "fec0::", &sc.vprefix_addr6);
    sc.vprefix_len = 64;
    inet_pton(AF_INET6, "fec0::2", &sc.vhost6);
    inet_pton(AF_INET6, "fec0::3", &sc.vnameserver6);
    sc.vhostname = "lodge";
    sc.if_mtu = mtu;
    sc.if_mru = NET_MTU_MAX; /* e1000 TSO super-frames arrive whole */
    /* PXE: slirp serves tftp= read-only on 10.0.2.2 and DHCP names bootfile= (with
     * 10.0.2.2 as next server). slirp copies both strings. */
    sc.tftp_path = cfg->tftp[0] ? cfg->tftp : NULL;
    sc.bootfile = cfg->bootfile[0] ? cfg->bootfile : NULL;
    s->slirp = slirp_new(&sc, &slirp_callbacks, s);
    if (!s->slirp) {
        snprintf(why, len, "user network: libslirp refused the configuration");
        net_backend_free(&s->be);
        return -EINVAL;
    }
    for (int i = 0; i < cfg->nfwds; i++) {
        const struct net_hostfwd *f = &cfg->fwds[i];
        struct in_addr guest = f->guest_addr;
        if (!guest.s_addr) {
            guest = sc.vdhcp_start;
        }
        if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, guest,
                              f->guest_port) < 0) {
            char host[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
            snprintf(why, len,
                     "hostfwd=%s:%s:%u: cannot bind host port %u (in use or not permitted)",
                     f->udp ? "udp" : "tcp", f->host_addr.s_addr ? host : "", f->host_port,
                     f->host_port);
            net_backend_free(&s->be);
            return -EADDRINUSE;
        }
    }
    if (ctx) {
        s->src = g_source_new(&slirp_src_funcs, sizeof(struct slirp_source));
        ((struct slirp_source *)s->src)->s = s;
        g_source_attach(s->src, ctx);
    }
    log_info(SLIRP_TAG, "user network (libslirp %s), MTU %u%s, %d forward(s)",
             slirp_version_string(), mtu, cfg->restricted ? ", restricted" : "", cfg->nfwds);
    *out = &s->be;
    return 0;
}
