/* Host-side network backends and the frame interface NICs use.
 *
 * A NIC model (virtio-net, e1000) talks to a struct net_backend only: it sends
 * whole Ethernet frames with net_backend_send() (any thread, the frame is
 * copied), receives frames through the struct net_peer it installs, and calls
 * net_backend_rx_ready() when the guest has given it receive buffers again.
 * Backends (slirp now; tap or a host-only switch later) run on the machine's
 * GLib main loop thread and only call the peer from there.
 *
 * Flow control: peer.receive returns false when it has no room; the backend then
 * keeps the frame (and those after it, up to NET_RXQ_MAX frames) and retries
 * after net_backend_rx_ready(). Frames beyond that are dropped like a full
 * wire would drop them: TCP recovers.
 *
 * Lock order: a device may hold its own lock while calling net_backend_send()
 * or net_backend_queue() (they only queue), but must call net_backend_flush()
 * and net_backend_rx_ready() without the lock its receive callback takes: both
 * may run the backend, and so peer.receive, on the calling thread. The backend
 * calls peer.receive with its io_lock held and no other backend lock.
 *
 * Threads: the backend's state (slirp) is used by whichever thread holds
 * be->io_lock: normally the loop thread, but net_backend_flush() (small frames
 * only) and net_backend_rx_ready() take it on the vCPU thread when it is free, so
 * the answer to a guest's ACK (the next window of a host->guest stream) reaches
 * the NIC without two thread hand-offs, each of which waits for a core on a
 * loaded host. */
#ifndef LODGE_NET_NET_H
#define LODGE_NET_NET_H

#include <glib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_MAX_NICS 4
#define NET_MAX_FWDS 8
#define NET_ETH_HLEN 14
#define NET_MAX_FRAME (65535 + NET_ETH_HLEN) /* largest frame any NIC hands over */
#define NET_MTU_DEFAULT 1500
#define NET_MTU_MAX 65520 /* slirp's largest if_mtu; offered by virtio-net's MTU feature */
#define NET_RXQ_MAX 512   /* frames a backend holds for a NIC that has no buffers */
#define NET_TXQ_MAX 1024  /* frames queued towards the backend thread */
#define NET_SYNC_MAX_FRAME 256 /* net_backend_flush runs the backend on the caller's thread
                                * only for frames up to this size (ACKs, ARP) */

enum net_model {
    NET_MODEL_VIRTIO = 0, /* virtio-net (devices/virtio/virtio_net.c) */
    NET_MODEL_E1000,      /* Intel 82540EM (devices/net/e1000.c) */
};

/* hostfwd=tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport */
struct net_hostfwd {
    bool udp;                  /* udp: instead of tcp: */
    struct in_addr host_addr;  /* host side address (0.0.0.0 = any) */
    uint16_t host_port;        /* host side port */
    struct in_addr guest_addr; /* guest address (0 = the DHCP address 10.0.2.15) */
    uint16_t guest_port;       /* guest port */
};

/* One --net user,... NIC. */
struct net_nic_config {
    enum net_model model;                   /* model= */
    bool has_mac;                           /* mac= given (else 52:54:00:12:34:56 + index) */
    uint8_t mac[6];                         /* mac= */
    bool restricted;                        /* restrict=on: only hostfwd reaches the host */
    bool ipv6;                              /* ipv6=off turns the fec0::/64 network off */
    struct net_hostfwd fwds[NET_MAX_FWDS];  /* hostfwd= (several) */
    int nfwds;
    char tftp[4096];    /* tftp=DIR: slirp's TFTP server root, or "" */
    char bootfile[256]; /* bootfile=NAME: DHCP's boot file, or "" */
    unsigned mtu;       /* mtu=N (NET_MTU_DEFAULT..NET_MTU_MAX), 0: the model's default */
};

/* Parse "user[,key=value...]" into *cfg. "none" gives 0 with *none = true.
 * Returns 0 or -EINVAL with a message in why. */
int net_parse_nic(const char *spec, struct net_nic_config *cfg, bool *none, char *why, size_t len);
/* "52:54:00:12:34:56" -> mac. 0 or -EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[6]);
/* The default MAC of NIC index: 52:54:00:12:34:56 + index. */
void net_default_mac(unsigned index, uint8_t mac[6]);

/* The device side of a backend. */
struct net_peer {
    /* One whole frame for the guest. false: no room now (the backend keeps it). */
    bool (*receive)(void *opaque, const uint8_t *frame, size_t len);
    void *opaque;
};

struct net_backend;

struct net_backend_ops {
    const char *kind; /* "user", "mock" */
    /* Hand one frame to the host side; called on the backend thread (the loop),
     * or directly by net_backend_send when the backend has no thread (ctx NULL). */
    void (*output)(struct net_backend *be, const uint8_t *frame, size_t len);
    void (*destroy)(struct net_backend *be);
    /* Optional: after frames were output on a thread other than the loop's (io_lock
     * held), make sure the loop thread polls and times what the backend now needs. */
    void (*synced)(struct net_backend *be);
};

/* Base every backend embeds first. Fields are private to net/. */
struct net_backend {
    const struct net_backend_ops *ops;
    GMainContext *ctx;      /* loop the backend runs on (NULL: synchronous, for tests) */
    GSource *wake_src;      /* idle-style source that drains the queues */
    pthread_mutex_t lock;   /* txq, rxq, peer, rx_kick */
    pthread_mutex_t io_lock; /* the backend itself: ops->output, held-frame delivery and
                              * all the backend's own work run under it (see above) */
    GQueue txq;             /* frames from the NIC not yet given to ops->output */
    GQueue rxq;             /* frames for the NIC that it had no room for */
    bool rx_kick;           /* the NIC said it has buffers again */
    bool flushing;          /* a NIC's flush is running the backend (io_lock held): the
                             * backend's synced op follows, no need to wake the loop */
    struct net_peer peer;   /* NIC side (receive may be NULL before attach) */
    bool link_up;           /* carrier as the NIC reports it to the guest */
    bool rx_csum_good;      /* frames for the NIC carry checksums the backend computed
                             * itself (slirp): a NIC may report them verified */
    uint64_t tx_frames, rx_frames, rx_dropped, tx_dropped; /* counters for logs/tests */
};

/* Install the NIC side; frames that arrive before it are dropped. */
void net_backend_set_peer(struct net_backend *be, const struct net_peer *peer);
/* Frame from the guest (copied; len <= NET_MAX_FRAME). 0, -EINVAL, or -ENOBUFS
 * when the queue is full (the frame is dropped). Any thread. */
int net_backend_send(struct net_backend *be, const void *frame, size_t len);
/* Like net_backend_send, but the frame waits for net_backend_flush() instead of
 * waking the loop thread: a NIC queues what one doorbell gave it under its own
 * lock, then flushes once it has dropped the lock. */
int net_backend_queue(struct net_backend *be, const void *frame, size_t len);
/* Hands the queued frames to the backend: on this thread when they are all small
 * (NET_SYNC_MAX_FRAME) and nobody else is running the backend, else through the loop
 * thread. Without the NIC's locks. */
void net_backend_flush(struct net_backend *be);
/* The NIC has receive buffers again. Any thread, without the NIC's locks. */
void net_backend_rx_ready(struct net_backend *be);
bool net_backend_link_up(const struct net_backend *be);
/* Whether the frames this backend delivers have correct IP/TCP/UDP checksums by
 * construction, so a NIC may tell the guest they were verified (virtio DATA_VALID,
 * e1000 IPCS/TCPCS) and spare it summing every byte. */
bool net_backend_rx_csum_good(const struct net_backend *be);
void net_backend_free(struct net_backend *be);

/* For backend implementations: set up / tear down the base; deliver a frame to
 * the NIC (backend thread). */
int net_backend_init(struct net_backend *be, const struct net_backend_ops *ops,
                     GMainContext *ctx);
void net_backend_deliver(struct net_backend *be, const uint8_t *frame, size_t len);
/* Drain the TX queue into ops->output and retry held RX frames (takes io_lock). */
void net_backend_pump(struct net_backend *be);

/* libslirp user-mode NAT (net/slirp.c): 10.0.2.0/24, host 10.0.2.2, DNS 10.0.2.3,
 * guest 10.0.2.15, fec0::/64. mtu is the largest IP packet either side sends
 * (NET_MTU_DEFAULT..NET_MTU_MAX). Errors (a hostfwd port that cannot be bound)
 * come back as -errno with a message naming the port. */
int net_slirp_new(const struct net_nic_config *cfg, unsigned mtu, GMainContext *ctx,
                  struct net_backend **out, char *why, size_t len);

/* Checksum helpers for NIC offloads (net/net.c). */
/* Internet checksum of buf folded into 16 bits, starting from sum. */
uint16_t net_checksum(const void *buf, size_t len, uint32_t sum);
/* Recompute IPv4 total length + header checksum and the TCP/UDP checksum of a
 * whole Ethernet frame (IPv4 or IPv6, no extension headers): what a NIC does
 * for a TSO/GSO super-frame it forwards unsegmented. No-op on other frames. */
void net_frame_fix_checksums(uint8_t *frame, size_t len);

/* What net_frame_check_csums found (a receive checksum offload reports these). */
#define NET_CSUM_IP4 0x1     /* an IPv4 header was checked */
#define NET_CSUM_IP4_BAD 0x2 /* ... and its checksum is wrong */
#define NET_CSUM_L4 0x4      /* a TCP or UDP checksum was checked */
#define NET_CSUM_L4_BAD 0x8  /* ... and it is wrong */
#define NET_CSUM_IP6 0x10    /* the packet is IPv6 */
/* Verifies the IPv4 header and TCP/UDP checksums of an Ethernet frame (IPv4 or IPv6
 * without extension headers, not fragmented). With trusted (the backend built the
 * frame: net_backend_rx_csum_good) the sums are not recomputed and count as good.
 * Returns NET_CSUM_* bits; 0 for frames it does not understand. */
unsigned net_frame_check_csums(const uint8_t *frame, size_t len, bool trusted);

#endif
