/* Unit tests for net/: --net parsing, the checksum helpers, and the libslirp
 * backend on a private GLib context (ARP and DHCP answers, hostfwd bind errors). */
#include "net/net.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_parse(void)
{
    struct net_nic_config c;
    bool none;
    char why[256];
    CU_ASSERT_EQUAL(net_parse_nic("none", &c, &none, why, sizeof(why)), 0);
    CU_ASSERT_TRUE(none);
    CU_ASSERT_EQUAL(net_parse_nic("user", &c, &none, why, sizeof(why)), 0);
    CU_ASSERT_FALSE(none);
    CU_ASSERT_EQUAL(c.model, NET_MODEL_VIRTIO);
    CU_ASSERT_FALSE(c.restricted);
    CU_ASSERT_TRUE(c.ipv6);
    CU_ASSERT_EQUAL(c.mtu, 0); /* the model's default */
    CU_ASSERT_EQUAL(net_parse_nic("user,mtu=65520", &c, &none, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(c.mtu, 65520);
    CU_ASSERT_EQUAL(net_parse_nic("user,mtu=1499", &c, &none, why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(net_parse_nic("user,mtu=65521", &c, &none, why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(net_parse_nic("user,mtu=9000x", &c, &none, why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(net_parse_nic("user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-"
                                  "10.0.2.15:53,restrict=on,model=e1000,mac=52:54:00:00:00:07",
                                  &c, &none, why, sizeof(why)),
                    0);
    CU_ASSERT_EQUAL(c.model, NET_MODEL_E1000);
    CU_ASSERT_TRUE(c.restricted);
    CU_ASSERT_TRUE(c.has_mac);
    CU_ASSERT_EQUAL(c.mac[5], 7);
    CU_ASSERT_EQUAL_FATAL(c.nfwds, 2);
    CU_ASSERT_FALSE(c.fwds[0].udp);
    CU_ASSERT_EQUAL(c.fwds[0].host_addr.s_addr, htonl(0x7f000001));
    CU_ASSERT_EQUAL(c.fwds[0].host_port, 8080);
    CU_ASSERT_EQUAL(c.fwds[0].guest_addr.s_addr, 0);
    CU_ASSERT_EQUAL(c.fwds[0].guest_port, 80);
    CU_ASSERT_TRUE(c.fwds[1].udp);
    CU_ASSERT_EQUAL(c.fwds[1].guest_addr.s_addr, htonl(0x0a00020f));
    const char *bad[] = {
        "tap",
        "user,hostfwd=tcp::0-:80",
        "user,hostfwd=tcp::80",
        "user,hostfwd=sctp::1-:2",
        "user,hostfwd=tcp:1.2.3:1-:2",
        "user,hostfwd=tcp::70000-:2",
        "user,model=rtl8139",
        "user,mac=01:00:5e:00:00:01", /* multicast */
        "user,mac=52:54:00:00:00",
        "user,restrict=maybe",
        "user,color=blue",
        "user,hostfwd",
        "user,tftp=",
        "user,bootfile=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        CU_ASSERT_EQUAL(net_parse_nic(bad[i], &c, &none, why, sizeof(why)), -EINVAL);
        CU_ASSERT_NOT_EQUAL(why[0], '\0');
    }
    CU_ASSERT_EQUAL(
        net_parse_nic("user,tftp=/srv/tftp,bootfile=boot.ipxe", &c, &none, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(c.tftp, "/srv/tftp");
    CU_ASSERT_STRING_EQUAL(c.bootfile, "boot.ipxe");
    uint8_t mac[6];
    net_default_mac(2, mac);
    CU_ASSERT_EQUAL(mac[0], 0x52);
    CU_ASSERT_EQUAL(mac[5], 0x58);
}

static void test_checksum(void)
{
    /* RFC 1071 example: 0001 f203 f4f5 f6f7 sums to ddf2. */
    static const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CU_ASSERT_EQUAL(net_checksum(b, sizeof(b), 0), 0xddf2);
    /* Odd length pads with zero. */
    static const uint8_t o[] = {0x12, 0x34, 0x56};
    CU_ASSERT_EQUAL(net_checksum(o, sizeof(o), 0), 0x6834);
}

#define SEEN_MAX 16

struct peer_rec {
    uint8_t frames[SEEN_MAX][1600]; /* frames slirp sent to the "guest" */
    size_t lens[SEEN_MAX];
    int n;
};

static bool peer_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct peer_rec *p = opaque;
    if (p->n < SEEN_MAX && len <= sizeof(p->frames[0])) {
        memcpy(p->frames[p->n], frame, len);
        p->lens[p->n] = len;
        p->n++;
    }
    return true;
}

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static void pump(GMainContext *ctx, struct peer_rec *p, int want)
{
    for (int i = 0; i < 200 && p->n < want; i++) {
        g_main_context_iteration(ctx, FALSE);
        if (p->n < want) {
            usleep(1000);
        }
    }
}

struct slirp_fx {
    GMainContext *ctx;
    struct net_backend *be;
    struct peer_rec peer;
};

static int fx_start(struct slirp_fx *f, const char *spec)
{
    memset(f, 0, sizeof(*f));
    struct net_nic_config c;
    bool none;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(net_parse_nic(spec, &c, &none, why, sizeof(why)), 0);
    f->ctx = g_main_context_new();
    int rc = net_slirp_new(&c, NET_MTU_DEFAULT, f->ctx, &f->be, why, sizeof(why));
    if (rc == 0) {
        struct net_peer peer = {.receive = peer_receive, .opaque = &f->peer};
        net_backend_set_peer(f->be, &peer);
    }
    return rc;
}

static void fx_stop(struct slirp_fx *f)
{
    net_backend_free(f->be);
    g_main_context_unref(f->ctx);
}

static void test_arp(void)
{
    struct slirp_fx f;
    CU_ASSERT_EQUAL_FATAL(fx_start(&f, "user"), 0);
    uint8_t arp[42] = {0};
    memset(arp, 0xff, 6);
    memcpy(arp + 6, guest_mac, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    uint8_t *a = arp + 14;
    a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = 1; /* Ethernet/IPv4, request */
    memcpy(a + 8, guest_mac, 6);
    a[14] = 10, a[15] = 0, a[16] = 2, a[17] = 15;
    a[24] = 10, a[25] = 0, a[26] = 2, a[27] = 2;
    CU_ASSERT_EQUAL(net_backend_send(f.be, arp, sizeof(arp)), 0);
    pump(f.ctx, &f.peer, 1);
    CU_ASSERT_EQUAL_FATAL(f.peer.n, 1);
    const uint8_t *r = f.peer.frames[0];
    CU_ASSERT_EQUAL(memcmp(r, guest_mac, 6), 0);
    CU_ASSERT_EQUAL(r[12] << 8 | r[13], 0x0806);
    CU_ASSERT_EQUAL(r[14 + 7], 2); /* reply */
    static const uint8_t host_ip[4] = {10, 0, 2, 2};
    CU_ASSERT_EQUAL(memcmp(r + 14 + 14, host_ip, 4), 0);
    fx_stop(&f);
}

static void test_dhcp(void)
{
    struct slirp_fx f;
    CU_ASSERT_EQUAL_FATAL(fx_start(&f, "user"), 0);
    static uint8_t p[14 + 20 + 8 + 300];
    memset(p, 0, sizeof(p));
    memset(p, 0xff, 6);
    memcpy(p + 6, guest_mac, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14;
    size_t iplen = sizeof(p) - 14;
    ip[0] = 0x45, ip[2] = (uint8_t)(iplen >> 8), ip[3] = (uint8_t)iplen, ip[8] = 64, ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    uint8_t *u = ip + 20;
    u[1] = 68, u[3] = 67, u[4] = (uint8_t)((iplen - 20) >> 8), u[5] = (uint8_t)(iplen - 20);
    uint8_t *b = u + 8;
    b[0] = 1, b[1] = 1, b[2] = 6;
    b[4] = 0xde, b[5] = 0xad, b[6] = 0xbe, b[7] = 0xef; /* xid */
    memcpy(b + 28, guest_mac, 6);
    b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99; /* magic cookie */
    b[240] = 53, b[241] = 1, b[242] = 1;                 /* DHCPDISCOVER */
    b[243] = 255;
    net_frame_fix_checksums(p, sizeof(p));
    CU_ASSERT_EQUAL(net_backend_send(f.be, p, sizeof(p)), 0);
    pump(f.ctx, &f.peer, 1);
    CU_ASSERT_EQUAL_FATAL(f.peer.n, 1);
    const uint8_t *r = f.peer.frames[0];
    const uint8_t *rip = r + 14;
    CU_ASSERT_EQUAL(rip[9], 17);
    const uint8_t *rb = rip + (rip[0] & 0xf) * 4 + 8;
    CU_ASSERT_EQUAL(rb[0], 2); /* BOOTREPLY */
    CU_ASSERT_EQUAL(rb[4], 0xde);
    static const uint8_t yi[4] = {10, 0, 2, 15};
    CU_ASSERT_EQUAL(memcmp(rb + 16, yi, 4), 0); /* yiaddr */
    fx_stop(&f);
}

/* A UDP/IPv4 frame from the guest (broadcast destination MAC: slirp takes it). */
static size_t udp_frame(uint8_t *p, size_t cap, const uint8_t src[4], uint16_t sport,
                        const uint8_t dst[4], uint16_t dport, const void *data, size_t len)
{
    size_t n = 14 + 20 + 8 + len;
    if (n > cap) {
        return 0;
    }
    memset(p, 0, n);
    memset(p, 0xff, 6);
    memcpy(p + 6, guest_mac, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14;
    ip[0] = 0x45, ip[2] = (uint8_t)((n - 14) >> 8), ip[3] = (uint8_t)(n - 14);
    ip[8] = 64, ip[9] = 17;
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    uint8_t *u = ip + 20;
    u[0] = (uint8_t)(sport >> 8), u[1] = (uint8_t)sport;
    u[2] = (uint8_t)(dport >> 8), u[3] = (uint8_t)dport;
    u[4] = (uint8_t)((len + 8) >> 8), u[5] = (uint8_t)(len + 8);
    memcpy(u + 8, data, len);
    net_frame_fix_checksums(p, n);
    return n;
}

/* PXE: with tftp= and bootfile=, the DHCP offer names the boot file and 10.0.2.2 as the
 * next server, and a TFTP read request for it comes back as its first data block. */
static void test_pxe_dhcp_tftp(void)
{
    char dir[] = "/tmp/lodge-tftp.XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[64], spec[128];
    snprintf(path, sizeof(path), "%s/boot.ipxe", dir);
    static const char script[] = "#!ipxe\necho hello\n";
    CU_ASSERT_TRUE_FATAL(g_file_set_contents(path, script, sizeof(script) - 1, NULL));
    snprintf(spec, sizeof(spec), "user,ipv6=off,tftp=%s,bootfile=boot.ipxe", dir);
    struct slirp_fx f;
    CU_ASSERT_EQUAL_FATAL(fx_start(&f, spec), 0);

    static const uint8_t any[4] = {0, 0, 0, 0}, bcast[4] = {255, 255, 255, 255};
    static const uint8_t guest[4] = {10, 0, 2, 15}, host[4] = {10, 0, 2, 2};
    static uint8_t bootp[300], frame[600];
    memset(bootp, 0, sizeof(bootp));
    bootp[0] = 1, bootp[1] = 1, bootp[2] = 6;
    bootp[4] = 0x12, bootp[7] = 0x34; /* xid */
    memcpy(bootp + 28, guest_mac, 6);
    bootp[236] = 99, bootp[237] = 130, bootp[238] = 83, bootp[239] = 99;
    bootp[240] = 53, bootp[241] = 1, bootp[242] = 1; /* DHCPDISCOVER */
    bootp[243] = 255;
    size_t n = udp_frame(frame, sizeof(frame), any, 68, bcast, 67, bootp, sizeof(bootp));
    CU_ASSERT_EQUAL(net_backend_send(f.be, frame, n), 0);
    pump(f.ctx, &f.peer, 1);
    CU_ASSERT_EQUAL_FATAL(f.peer.n, 1);
    const uint8_t *rip = f.peer.frames[0] + 14;
    const uint8_t *rb = rip + (rip[0] & 0xf) * 4 + 8;
    CU_ASSERT_EQUAL(memcmp(rb + 20, host, 4), 0);                /* siaddr: next server */
    CU_ASSERT_STRING_EQUAL((const char *)rb + 108, "boot.ipxe"); /* file */

    /* TFTP RRQ (RFC 1350): opcode 1, file name, mode. */
    static const uint8_t rrq[] = "\0\001boot.ipxe\0octet";
    n = udp_frame(frame, sizeof(frame), guest, 2000, host, 69, rrq, sizeof(rrq));
    CU_ASSERT_EQUAL(net_backend_send(f.be, frame, n), 0);
    /* slirp may ARP for the guest first: answer and wait for the data. */
    for (int tries = 0; tries < 3; tries++) {
        int before = f.peer.n;
        pump(f.ctx, &f.peer, before + 1);
        if (f.peer.n == before) {
            break;
        }
        const uint8_t *r = f.peer.frames[f.peer.n - 1];
        if (r[12] == 0x08 && r[13] == 0x06) {
            uint8_t arp[42] = {0};
            memcpy(arp, r + 6, 6);
            memcpy(arp + 6, guest_mac, 6);
            arp[12] = 0x08, arp[13] = 0x06;
            uint8_t *a = arp + 14;
            a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = 2; /* reply */
            memcpy(a + 8, guest_mac, 6);
            memcpy(a + 14, guest, 4);
            memcpy(a + 18, r + 6, 6);
            memcpy(a + 24, host, 4);
            net_backend_send(f.be, arp, sizeof(arp));
            continue;
        }
        break;
    }
    CU_ASSERT_FATAL(f.peer.n >= 2);
    const uint8_t *r = f.peer.frames[f.peer.n - 1];
    rip = r + 14;
    CU_ASSERT_EQUAL_FATAL(rip[9], 17);
    const uint8_t *u = rip + (rip[0] & 0xf) * 4;
    CU_ASSERT_EQUAL(u[2] << 8 | u[3], 2000);
    CU_ASSERT_EQUAL(u[8] << 8 | u[9], 3);   /* DATA */
    CU_ASSERT_EQUAL(u[10] << 8 | u[11], 1); /* block 1 */
    CU_ASSERT_EQUAL((u[4] << 8 | u[5]) - 12, (int)sizeof(script) - 1);
    CU_ASSERT_EQUAL(memcmp(u + 12, script, sizeof(script) - 1), 0);
    fx_stop(&f);
    unlink(path);
    rmdir(dir);

    /* A tftp= that is not a directory is refused with its name. */
    struct net_nic_config c;
    bool none;
    char why[256] = "";
    struct net_backend *be = NULL;
    CU_ASSERT_EQUAL(net_parse_nic("user,tftp=/nonexistent/dir", &c, &none, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(net_slirp_new(&c, NET_MTU_DEFAULT, NULL, &be, why, sizeof(why)), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tftp=/nonexistent/dir"));
}

static void test_hostfwd_port_in_use(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL_FATAL(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    CU_ASSERT_EQUAL_FATAL(listen(s, 1), 0);
    socklen_t al = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &al);
    unsigned port = ntohs(a.sin_port);
    char spec[128];
    snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:80", port);
    struct net_nic_config c;
    bool none;
    char why[256] = "";
    CU_ASSERT_EQUAL_FATAL(net_parse_nic(spec, &c, &none, why, sizeof(why)), 0);
    GMainContext *ctx = g_main_context_new();
    struct net_backend *be = NULL;
    CU_ASSERT_EQUAL(net_slirp_new(&c, NET_MTU_DEFAULT, ctx, &be, why, sizeof(why)), -EADDRINUSE);
    char num[16];
    snprintf(num, sizeof(num), "%u", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, num));
    close(s);
    /* Free now: the same forward works. */
    CU_ASSERT_EQUAL(net_slirp_new(&c, NET_MTU_DEFAULT, ctx, &be, why, sizeof(why)), 0);
    net_backend_free(be);
    g_main_context_unref(ctx);
}

/* An idle user network must let its loop sleep: the poll set is rebuilt only when a socket
 * comes or goes (re-adding it on every iteration woke the context each time: a busy loop). */
static void test_idle_loop_sleeps(void)
{
    /* A forward gives slirp a listening socket to poll. */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL_FATAL(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(ls, (struct sockaddr *)&a, &al);
    close(ls);
    char spec[128];
    snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:80", ntohs(a.sin_port));
    struct slirp_fx f;
    CU_ASSERT_EQUAL_FATAL(fx_start(&f, spec), 0);
    gint64 end = g_get_monotonic_time() + 200000;
    int iterations = 0;
    while (g_get_monotonic_time() < end) {
        g_main_context_iteration(f.ctx, TRUE);
        iterations++;
    }
    /* Sleeping, an iteration lasts until slirp's next timer (tens of ms at the least). */
    CU_ASSERT_TRUE(iterations < 50);
    fx_stop(&f);
}

/* Guest 10.0.2.15:40000 -> host 10.0.2.2:port, TCP with the given flags, seq/ack and n
 * payload bytes; returns the frame length. */
static size_t tcp_frame(uint8_t *p, unsigned port, uint8_t flags, uint32_t seq, uint32_t ack,
                        size_t n)
{
    static const uint8_t host_mac[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
    memset(p, 0, 54 + n);
    memcpy(p, host_mac, 6);
    memcpy(p + 6, guest_mac, 6);
    p[12] = 0x08;
    uint8_t *ip = p + 14;
    ip[0] = 0x45, ip[8] = 64, ip[9] = 6;
    ip[12] = 10, ip[14] = 2, ip[15] = 15, ip[16] = 10, ip[18] = 2, ip[19] = 2;
    uint8_t *t = ip + 20;
    t[0] = 40000 >> 8, t[1] = 40000 & 0xff, t[2] = (uint8_t)(port >> 8), t[3] = (uint8_t)port;
    for (int i = 0; i < 4; i++) {
        t[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        t[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    t[12] = 0x50, t[13] = flags, t[14] = 0xff, t[15] = 0xff;
    memset(t + 20, 'x', n);
    net_frame_fix_checksums(p, 54 + n);
    return 54 + n;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The last TCP segment slirp sent the guest, or NULL. */
static const uint8_t *last_tcp(struct peer_rec *p)
{
    for (int i = p->n - 1; i >= 0; i--) {
        const uint8_t *f = p->frames[i];
        if (p->lens[i] >= 54 && f[12] == 0x08 && f[13] == 0 && f[14 + 9] == 6) {
            return f + 14 + (f[14] & 0xf) * 4;
        }
    }
    return NULL;
}

/* slirp's TCP timers run only inside slirp_pollfds_poll: a segment the guest never
 * acknowledged must be sent again even when no socket has anything to report. */
static void test_tcp_retransmit(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL_FATAL(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    CU_ASSERT_EQUAL_FATAL(listen(ls, 1), 0);
    socklen_t al = sizeof(a);
    getsockname(ls, (struct sockaddr *)&a, &al);
    unsigned port = ntohs(a.sin_port);
    struct slirp_fx f;
    CU_ASSERT_EQUAL_FATAL(fx_start(&f, "user"), 0);
    /* ARP first, so slirp knows where 10.0.2.15 is. */
    uint8_t arp[42] = {0};
    memset(arp, 0xff, 6);
    memcpy(arp + 6, guest_mac, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    uint8_t *ah = arp + 14;
    ah[1] = 1, ah[2] = 0x08, ah[4] = 6, ah[5] = 4, ah[7] = 1;
    memcpy(ah + 8, guest_mac, 6);
    ah[14] = 10, ah[15] = 0, ah[16] = 2, ah[17] = 15;
    ah[24] = 10, ah[25] = 0, ah[26] = 2, ah[27] = 2;
    net_backend_send(f.be, arp, sizeof(arp));
    pump(f.ctx, &f.peer, 1);
    /* slirp asks for 10.0.2.15 itself too: answer it. */
    pump(f.ctx, &f.peer, 2);
    for (int i = 0; i < f.peer.n; i++) {
        const uint8_t *q = f.peer.frames[i];
        if (q[12] == 0x08 && q[13] == 0x06 && q[14 + 7] == 1) {
            memcpy(arp, q + 6, 6);
            ah[7] = 2; /* reply: sender 10.0.2.15 at guest_mac, target the asker */
            memcpy(ah + 18, q + 14 + 8, 10);
            net_backend_send(f.be, arp, sizeof(arp));
        }
    }
    uint8_t fr[200];
    net_backend_send(f.be, fr, tcp_frame(fr, port, 0x02, 1000, 0, 0)); /* SYN */
    const uint8_t *t = NULL;
    for (int i = 0; i < 500 && !((t = last_tcp(&f.peer)) && (t[13] & 0x12) == 0x12); i++) {
        g_main_context_iteration(f.ctx, FALSE);
        usleep(1000);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t[13] & 0x12, 0x12); /* SYN-ACK */
    uint32_t srv = be32(t + 4) + 1;
    int c = accept(ls, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(c >= 0);
    net_backend_send(f.be, fr, tcp_frame(fr, port, 0x10, 1001, srv, 0)); /* ACK */
    /* The host sends 100 bytes; the guest never acknowledges them. */
    CU_ASSERT_EQUAL(send(c, fr, 100, 0), 100);
    int sent = 0;
    gint64 end = g_get_monotonic_time() + 4 * G_USEC_PER_SEC;
    while (sent < 2 && g_get_monotonic_time() < end) {
        int before = f.peer.n;
        g_main_context_iteration(f.ctx, TRUE);
        for (int i = before; i < f.peer.n; i++) {
            const uint8_t *q = f.peer.frames[i];
            if (f.peer.lens[i] == 54 + 100 && q[14 + 9] == 6 && be32(q + 34 + 4) == srv) {
                sent++;
            }
        }
        if (f.peer.n >= SEEN_MAX) {
            break;
        }
    }
    CU_ASSERT_EQUAL(sent, 2); /* first transmission and one retransmission (RTO ~1 s) */
    close(c);
    close(ls);
    fx_stop(&f);
}

/* A NIC's flush runs slirp on the flushing (vCPU) thread: the ARP answer, and, when the
 * guest's ACK frees slirp's send buffer, the host's next data, arrive before
 * net_backend_flush returns, without a loop iteration (each would be a thread hand-off
 * per window of a host->guest stream). */
static void test_flush_on_caller(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL_FATAL(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    CU_ASSERT_EQUAL_FATAL(listen(ls, 1), 0);
    socklen_t al = sizeof(a);
    getsockname(ls, (struct sockaddr *)&a, &al);
    unsigned port = ntohs(a.sin_port);
    struct slirp_fx f;
    CU_ASSERT_EQUAL_FATAL(fx_start(&f, "user"), 0);
    uint8_t arp[42] = {0};
    memset(arp, 0xff, 6);
    memcpy(arp + 6, guest_mac, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    uint8_t *ah = arp + 14;
    ah[1] = 1, ah[2] = 0x08, ah[4] = 6, ah[5] = 4, ah[7] = 1;
    memcpy(ah + 8, guest_mac, 6);
    ah[14] = 10, ah[15] = 0, ah[16] = 2, ah[17] = 15;
    ah[24] = 10, ah[25] = 0, ah[26] = 2, ah[27] = 2;
    CU_ASSERT_EQUAL(net_backend_queue(f.be, arp, sizeof(arp)), 0);
    CU_ASSERT_EQUAL(f.peer.n, 0); /* queued only */
    net_backend_flush(f.be);
    CU_ASSERT_EQUAL_FATAL(f.peer.n, 1); /* answered inside the flush */
    CU_ASSERT_TRUE(f.peer.frames[0][12] == 0x08 && f.peer.frames[0][13] == 0x06);
    /* slirp asks for 10.0.2.15 itself when it first sends to it: answer that. */
    uint8_t fr[300];
    net_backend_send(f.be, fr, tcp_frame(fr, port, 0x02, 1000, 0, 0)); /* SYN */
    const uint8_t *t = NULL;
    for (int i = 0; i < 500 && !((t = last_tcp(&f.peer)) && (t[13] & 0x12) == 0x12); i++) {
        for (int k = 0; k < f.peer.n; k++) {
            const uint8_t *q = f.peer.frames[k];
            if (q[12] == 0x08 && q[13] == 0x06 && q[14 + 7] == 1 && q[14 + 27] == 15) {
                memcpy(arp, q + 6, 6);
                ah[7] = 2;
                memcpy(ah + 18, q + 14 + 8, 10);
                net_backend_send(f.be, arp, sizeof(arp));
                f.peer.frames[k][14 + 7] = 0; /* answered */
            }
        }
        g_main_context_iteration(f.ctx, FALSE);
        usleep(1000);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL_FATAL(t[13] & 0x12, 0x12); /* SYN-ACK */
    uint32_t srv = be32(t + 4) + 1;
    int c = accept(ls, NULL, NULL);
    CU_ASSERT_TRUE_FATAL(c >= 0);
    net_backend_send(f.be, fr, tcp_frame(fr, port, 0x10, 1001, srv, 0)); /* ACK */
    /* The loop delivers the host's first 100 bytes. */
    CU_ASSERT_EQUAL(send(c, fr, 100, 0), 100);
    bool got = false;
    for (int i = 0; i < 500 && !got; i++) {
        g_main_context_iteration(f.ctx, FALSE);
        const uint8_t *q = last_tcp(&f.peer);
        got = q && be32(q + 4) == srv && f.peer.lens[f.peer.n - 1] == 54 + 100;
        usleep(got ? 0 : 1000);
    }
    CU_ASSERT_TRUE_FATAL(got);
    /* The next 100 wait in the host socket; the guest's ACK of the first brings them. */
    CU_ASSERT_EQUAL(send(c, fr, 100, 0), 100);
    usleep(20000);
    int before = f.peer.n;
    CU_ASSERT_EQUAL(net_backend_queue(f.be, fr, tcp_frame(fr, port, 0x10, 1001, srv + 100, 0)),
                    0);
    net_backend_flush(f.be);
    got = false;
    for (int i = before; i < f.peer.n; i++) {
        const uint8_t *q = f.peer.frames[i];
        got = got || (f.peer.lens[i] == 54 + 100 && be32(q + 34 + 4) == srv + 100);
    }
    CU_ASSERT_TRUE(got);
    close(c);
    close(ls);
    fx_stop(&f);
}

struct race_fx {
    GMainContext *ctx;
    volatile int stop;
    int replies; /* ARP replies slirp delivered: peer.receive runs under the backend's io_lock */
};

static bool race_receive(void *opaque, const uint8_t *frame, size_t len)
{
    struct race_fx *r = opaque;
    if (len >= 42 && frame[12] == 0x08 && frame[13] == 0x06 && frame[14 + 7] == 2) {
        r->replies++;
    }
    return true;
}

static void *race_loop(void *opaque)
{
    struct race_fx *r = opaque;
    while (!r->stop) {
        g_main_context_iteration(r->ctx, TRUE);
    }
    return NULL;
}

/* The loop thread runs slirp while another thread flushes (and sends) frames: every ARP
 * request is answered exactly once, whichever thread ran slirp for it. */
static void test_flush_races_loop(void)
{
    struct net_nic_config c;
    bool none;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(net_parse_nic("user", &c, &none, why, sizeof(why)), 0);
    struct race_fx r = {.ctx = g_main_context_new()};
    struct net_backend *be = NULL;
    CU_ASSERT_EQUAL_FATAL(net_slirp_new(&c, NET_MTU_DEFAULT, r.ctx, &be, why, sizeof(why)), 0);
    struct net_peer peer = {.receive = race_receive, .opaque = &r};
    net_backend_set_peer(be, &peer);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, race_loop, &r), 0);
    uint8_t arp[42] = {0};
    memset(arp, 0xff, 6);
    memcpy(arp + 6, guest_mac, 6);
    arp[12] = 0x08, arp[13] = 0x06;
    uint8_t *a = arp + 14;
    a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = 1;
    memcpy(a + 8, guest_mac, 6);
    a[14] = 10, a[15] = 0, a[16] = 2, a[17] = 15;
    a[24] = 10, a[25] = 0, a[26] = 2, a[27] = 2;
    const int n = 3000;
    int refused = 0;
    for (int i = 0; i < n; i++) {
        /* A full queue (the loop thread preempted inside slirp) refuses: try again. */
        int rc;
        while ((rc = i % 3 == 2 ? net_backend_send(be, arp, sizeof(arp))
                                : net_backend_queue(be, arp, sizeof(arp))) == -ENOBUFS) {
            usleep(100);
        }
        refused += rc != 0;
        if (i % 3 != 2) {
            net_backend_flush(be);
        }
    }
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&be->io_lock);
        int got = r.replies;
        pthread_mutex_unlock(&be->io_lock);
        if (got >= n) {
            break;
        }
        usleep(1000);
    }
    r.stop = 1;
    g_main_context_wakeup(r.ctx);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(refused, 0);
    CU_ASSERT_EQUAL(r.replies, n);
    net_backend_free(be);
    g_main_context_unref(r.ctx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("slirp", NULL, NULL);
    CU_add_test(s, "--net parsing", test_parse);
    CU_add_test(s, "checksums", test_checksum);
    CU_add_test(s, "ARP reply for 10.0.2.2", test_arp);
    CU_add_test(s, "DHCP offer of 10.0.2.15", test_dhcp);
    CU_add_test(s, "hostfwd port in use", test_hostfwd_port_in_use);
    CU_add_test(s, "PXE: DHCP boot file and TFTP", test_pxe_dhcp_tftp);
    CU_add_test(s, "idle loop sleeps", test_idle_loop_sleeps);
    CU_add_test(s, "TCP retransmit without socket events", test_tcp_retransmit);
    CU_add_test(s, "flush runs slirp on the caller's thread", test_flush_on_caller);
    CU_add_test(s, "flush racing the loop thread", test_flush_races_loop);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
