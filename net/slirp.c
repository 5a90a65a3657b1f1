/* libslirp user-mode NAT on the machine's GLib main loop.
 *
 * One Slirp instance per NIC. Everything that touches the Slirp handle runs on
 * the loop thread: a GSource whose prepare() asks slirp for its poll set and
 * timeout, and whose dispatch() feeds queued guest frames in, lets slirp read
 * and write its sockets and fires expired slirp timers. Frames slirp produces
 * (send_packet) go to the NIC through net_backend_deliver(). */
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

struct net_slirp {
    struct net_backend be; /* base: must be first */
    Slirp *slirp;
    GSource *src;                               /* poll/timer source on the loop */
    GPollFD *pfds;                              /* poll set added to src (stable storage) */
    unsigned nadded, cap_pfd;                   /* pfds entries added / allocated */
    GPollFD *fill;                              /* poll set slirp asks for this iteration */
    unsigned npfd, cap_fill;                    /* used / allocated */
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

static void slirp_cb_notify(void *opaque)
{
    struct net_slirp *s = opaque;
    g_main_context_wakeup(s->be.ctx);
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
    struct net_slirp *s = opaque;
    if (s->npfd == s->cap_fill) {
        unsigned cap = s->cap_fill ? s->cap_fill * 2 : 16;
        GPollFD *n = realloc(s->fill, cap * sizeof(*n));
        if (!n) {
            return -1;
        }
        s->fill = n;
        s->cap_fill = cap;
    }
    gushort ev = 0;
    ev |= (events & SLIRP_POLL_IN) ? G_IO_IN : 0;
    ev |= (events & SLIRP_POLL_OUT) ? G_IO_OUT : 0;
    ev |= (events & SLIRP_POLL_PRI) ? G_IO_PRI : 0;
    ev |= (events & SLIRP_POLL_ERR) ? G_IO_ERR : 0;
    ev |= (events & SLIRP_POLL_HUP) ? G_IO_HUP : 0;
    s->fill[s->npfd] = (GPollFD){.fd = fd, .events = ev, .revents = 0};
    return (int)s->npfd++;
}

static int slirp_get_revents(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    if (idx < 0 || (unsigned)idx >= s->nadded) {
        return 0;
    }
    gushort r = s->pfds[idx].revents;
    int ev = 0;
    ev |= (r & G_IO_IN) ? SLIRP_POLL_IN : 0;
    ev |= (r & G_IO_OUT) ? SLIRP_POLL_OUT : 0;
    ev |= (r & G_IO_PRI) ? SLIRP_POLL_PRI : 0;
    ev |= (r & G_IO_ERR) ? SLIRP_POLL_ERR : 0;
    ev |= (r & G_IO_HUP) ? SLIRP_POLL_HUP : 0;
    return ev;
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
    bool same = s->npfd == s->nadded;
    for (unsigned i = 0; same && i < s->npfd; i++) {
        same = s->pfds[i].fd == s->fill[i].fd;
    }
    if (same) {
        for (unsigned i = 0; i < s->npfd; i++) {
            s->pfds[i].events = s->fill[i].events;
            s->pfds[i].revents = 0;
        }
        return;
    }
    slirp_remove_polls(s);
    if (s->npfd > s->cap_pfd) {
        GPollFD *n = realloc(s->pfds, s->npfd * sizeof(*n));
        if (!n) {
            return; /* nothing polled this round; slirp's timeout still runs it */
        }
        s->pfds = n;
        s->cap_pfd = s->npfd;
    }
    for (unsigned i = 0; i < s->npfd; i++) {
        s->pfds[i] = s->fill[i];
        g_source_add_poll(s->src, &s->pfds[i]);
    }
    s->nadded = s->npfd;
}

static gboolean slirp_src_prepare(GSource *src, gint *timeout)
{
    struct net_slirp *s = ((struct slirp_source *)src)->s;
    s->npfd = 0;
    uint32_t to = 1000;
    slirp_pollfds_fill(s->slirp, &to, slirp_add_poll, s);
    slirp_sync_polls(s);
    int64_t now_ms = slirp_now_ns() / 1000000;
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
    /* slirp's TCP timers (delayed ACK, retransmit, persist) only run inside
     * slirp_pollfds_poll: the timeout it asked for must end in a dispatch even when no
     * socket became ready, or a lost segment is never sent again. */
    s->poll_deadline_ms = now_ms + to;
    *timeout = (gint)to;
    return to == 0;
}

static gboolean slirp_src_check(GSource *src)
{
    struct net_slirp *s = ((struct slirp_source *)src)->s;
    for (unsigned i = 0; i < s->nadded; i++) {
        if (s->pfds[i].revents) {
            return TRUE;
        }
    }
    int64_t now_ms = slirp_now_ns() / 1000000;
    if (now_ms >= s->poll_deadline_ms) {
        return TRUE;
    }
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        if (s->timers[i].used && s->timers[i].armed && s->timers[i].expire_ms <= now_ms) {
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean slirp_src_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    struct net_slirp *s = ((struct slirp_source *)src)->s;
    slirp_pollfds_poll(s->slirp, 0, slirp_get_revents, s);
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
    free(s->fill);
    free(s);
}

static const struct net_backend_ops slirp_backend_ops = {
    .kind = "user",
    .output = slirp_output,
    .destroy = slirp_destroy,
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
