/* virtio-blk device (virtio 1.1, 5.2). */
#include "devices/virtio/virtio_blk.h"

#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BLK_TAG "dev.virtio.blk"
#define BLK_WORKERS 2
#define BLK_HDR_LEN 16
#define BLK_SEG_LEN 16 /* struct virtio_blk_discard_write_zeroes */
#define BLK_MAX_RANGE_SECTORS 0x3fffffu
#define BLK_BOUNCE_MAX (1u << 20)           /* gather/scatter buffer of one worker job */
#define BLK_DIRECT_MIN (64u << 10)          /* buffers this long are transferred in place */
#define BLK_BATCH_MAX VIRTIO_BLK_QUEUE_SIZE /* requests handed to a worker at once */
#define BLK_INLINE_MAX (64u << 10)          /* reads this small may complete on the vCPU */
#define BLK_INLINE_SEGS 16                  /* ... when they have at most this many buffers */

struct blk_req {
    struct virtio_blk *b;
    unsigned q;
    struct blk_req *next;  /* the rest of the batch popped by the same kick */
    struct blk_req *batch; /* head of the next batch waiting for a worker */
    struct virtq_elem e;   /* the chain, pointers into guest RAM */
};

struct virtio_blk {
    struct virtio_dev_ops ops;        /* per instance: features depend on the backend */
    struct virtio_pci *vp;            /* transport */
    struct virtio_blk_backend be;     /* the disk */
    char serial[VIRTIO_BLK_ID_BYTES]; /* GET_ID answer, zero padded (5.2.6) */
    pthread_t workers[BLK_WORKERS];   /* I/O threads */
    unsigned nworkers;                /* started */
    pthread_mutex_t lock;             /* inflight, the batch queue, stop, sleeping */
    pthread_cond_t idle;              /* signalled when inflight drops to 0 */
    pthread_cond_t work;              /* signalled when a batch is queued or on stop */
    unsigned inflight;                /* requests popped but not yet pushed */
    struct blk_req *queue_head;       /* batches not yet taken by a worker, oldest first */
    struct blk_req *queue_tail;       /* last of them (valid when queue_head is set) */
    unsigned sleeping;                /* workers waiting on work */
    bool stop;                        /* workers exit once the queue is empty */
};

static uint32_t blk_config_read(void *dev, unsigned off, unsigned size)
{
    struct virtio_blk *b = dev;
    uint8_t c[VIRTIO_BLK_CONFIG_LEN] = {0};
    uint64_t cap = b->be.length / VIRTIO_BLK_SECTOR;
    for (int i = 0; i < 8; i++) {
        c[VIRTIO_BLK_CFG_CAPACITY + i] = (uint8_t)(cap >> (8 * i));
    }
    uint32_t words[][2] = {
        {VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_QUEUE_SIZE - 2},
        {VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR},
        {VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, BLK_MAX_RANGE_SECTORS},
        {VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 1},
        {VIRTIO_BLK_CFG_DISCARD_ALIGN, 1},
        {VIRTIO_BLK_CFG_MAX_WZ_SECTORS, BLK_MAX_RANGE_SECTORS},
        {VIRTIO_BLK_CFG_MAX_WZ_SEG, 1},
    };
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        for (int i = 0; i < 4; i++) {
            c[words[w][0] + i] = (uint8_t)(words[w][1] >> (8 * i));
        }
    }
    c[VIRTIO_BLK_CFG_NUM_QUEUES] = 1;
    uint32_t v = 0;
    for (unsigned i = 0; i < size && off + i < sizeof(c); i++) {
        v |= (uint32_t)c[off + i] << (8 * i);
    }
    return v;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Checks [sector, sector + bytes) against the disk; the byte offset on success. */
static bool blk_range(const struct virtio_blk *b, uint64_t sector, uint64_t bytes, uint64_t *off)
{
    if (sector > UINT64_MAX / VIRTIO_BLK_SECTOR) {
        return false;
    }
    uint64_t o = sector * VIRTIO_BLK_SECTOR;
    if (o > b->be.length || bytes > b->be.length - o) {
        return false;
    }
    *off = o;
    return true;
}

/* One direct transfer between the disk and host memory. */
static int blk_io(struct virtio_blk *b, uint8_t *p, uint64_t len, uint64_t off, bool write)
{
    return write ? b->be.pwrite(b->be.opaque, p, len, off) : b->be.pread(b->be.opaque, p, len, off);
}

/* Transfers between the disk and a list of guest buffers (skipping `skip` bytes
 * of the list and stopping after len bytes). A guest's list is mostly 4 KiB pages:
 * buffers adjacent in host memory are merged, and runs of small ones go through
 * BOUNCE (BLK_BOUNCE_MAX bytes, allocated on first use) so that the backend sees
 * one large call instead of one per page. */
static int blk_rw(struct virtio_blk *b, const struct iovec *iov, unsigned n, size_t skip,
                  uint64_t len, uint64_t off, bool write, uint8_t **bounce)
{
    struct iovec seg[VIRTQ_MAX_SEGS];
    unsigned ns = 0;
    for (unsigned i = 0; i < n && len > 0; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
        uint64_t c = l - skip;
        skip = 0;
        if (c > len) {
            c = len;
        }
        len -= c;
        if (ns && (uint8_t *)seg[ns - 1].iov_base + seg[ns - 1].iov_len == p) {
            seg[ns - 1].iov_len += c;
        } else {
            seg[ns++] = (struct iovec){.iov_base = p, .iov_len = c};
        }
    }
    for (unsigned i = 0; i < ns;) {
        if (seg[i].iov_len >= BLK_DIRECT_MIN || i + 1 == ns) {
            int rc = blk_io(b, seg[i].iov_base, seg[i].iov_len, off, write);
            if (rc < 0) {
                return rc;
            }
            off += seg[i].iov_len;
            i++;
            continue;
        }
        if (!*bounce && !(*bounce = malloc(BLK_BOUNCE_MAX))) {
            return -ENOMEM;
        }
        unsigned j = i;
        uint64_t total = 0;
        while (j < ns && seg[j].iov_len < BLK_DIRECT_MIN &&
               total + seg[j].iov_len <= BLK_BOUNCE_MAX) {
            if (write) {
                memcpy(*bounce + total, seg[j].iov_base, seg[j].iov_len);
            }
            total += seg[j].iov_len;
            j++;
        }
        int rc = blk_io(b, *bounce, total, off, write);
        if (rc < 0) {
            return rc;
        }
        for (uint64_t done = 0; !write && i < j; i++) {
            memcpy(seg[i].iov_base, *bounce + done, seg[i].iov_len);
            done += seg[i].iov_len;
        }
        i = j;
        off += total;
    }
    return 0;
}

static uint8_t blk_ranges(struct virtio_blk *b, const struct virtq_elem *e, uint32_t type)
{
    int (*op)(void *, uint64_t, uint64_t) =
        type == VIRTIO_BLK_T_DISCARD ? b->be.discard : b->be.write_zeroes;
    if (!op) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (b->be.readonly) {
        return VIRTIO_BLK_S_IOERR;
    }
    uint64_t data = e->out_len - BLK_HDR_LEN;
    if (data == 0 || data % BLK_SEG_LEN || data / BLK_SEG_LEN > 1) {
        return VIRTIO_BLK_S_UNSUPP; /* max_*_seg is 1 */
    }
    uint8_t seg[BLK_SEG_LEN];
    virtq_iov_to_buf(e->iov, e->nout, BLK_HDR_LEN, seg, sizeof(seg));
    uint64_t sector = le64(seg);
    uint32_t nsec = le32(seg + 8);
    uint32_t flags = le32(seg + 12);
    uint64_t off;
    if ((type == VIRTIO_BLK_T_DISCARD && flags) || (flags & ~1u) || nsec > BLK_MAX_RANGE_SECTORS) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (!blk_range(b, sector, (uint64_t)nsec * VIRTIO_BLK_SECTOR, &off)) {
        return VIRTIO_BLK_S_IOERR;
    }
    return op(b->be.opaque, off, (uint64_t)nsec * VIRTIO_BLK_SECTOR) < 0 ? VIRTIO_BLK_S_IOERR
                                                                         : VIRTIO_BLK_S_OK;
}

/* Runs one request; returns the used length (bytes written to the driver). */
static uint32_t blk_execute(struct virtio_blk *b, struct virtq_elem *e, uint8_t **bounce)
{
    uint8_t hdr[BLK_HDR_LEN];
    virtq_iov_to_buf(e->iov, e->nout, 0, hdr, sizeof(hdr));
    uint32_t type = le32(hdr);
    uint64_t sector = le64(hdr + 8);
    struct iovec *in = e->iov + e->nout;
    uint64_t data_in = e->in_len - 1; /* the last writable byte is the status */
    uint64_t written = 0;
    uint8_t status = VIRTIO_BLK_S_OK;
    uint64_t off;
    switch (type) {
    case VIRTIO_BLK_T_IN:
        if (data_in % VIRTIO_BLK_SECTOR || !blk_range(b, sector, data_in, &off)) {
            status = VIRTIO_BLK_S_IOERR;
        } else if (blk_rw(b, in, e->nin, 0, data_in, off, false, bounce) < 0) {
            status = VIRTIO_BLK_S_IOERR;
        } else {
            written = data_in;
        }
        break;
    case VIRTIO_BLK_T_OUT: {
        uint64_t data = e->out_len - BLK_HDR_LEN;
        if (b->be.readonly || data % VIRTIO_BLK_SECTOR || !blk_range(b, sector, data, &off) ||
            blk_rw(b, e->iov, e->nout, BLK_HDR_LEN, data, off, true, bounce) < 0) {
            status = VIRTIO_BLK_S_IOERR;
        }
        break;
    }
    case VIRTIO_BLK_T_FLUSH:
        if (b->be.flush && b->be.flush(b->be.opaque) < 0) {
            status = VIRTIO_BLK_S_IOERR;
        }
        break;
    case VIRTIO_BLK_T_GET_ID: {
        uint64_t n = data_in < VIRTIO_BLK_ID_BYTES ? data_in : VIRTIO_BLK_ID_BYTES;
        written = virtq_iov_from_buf(in, e->nin, 0, b->serial, (size_t)n);
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        status = blk_ranges(b, e, type);
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    virtq_iov_from_buf(in, e->nin, (size_t)data_in, &status, 1);
    return (uint32_t)(written + 1);
}

/* Serves a read on the calling (vCPU) thread if the backend can do it without blocking
 * (pread_nowait: the host's page cache, cached image metadata). A 4 KiB request then costs
 * no thread hop: handing it to a worker and waking the halted vCPU again were two host
 * wakeups, most of its latency on the soft CPU. Anything else (writes can block on the
 * host: dirty page throttling, journal, allocation) still goes to a worker. true: done,
 * *len is the used length; false: nothing the guest can see has changed except buffers it
 * handed over for this read. */
static bool blk_try_inline(struct virtio_blk *b, struct virtq_elem *e, uint32_t *len)
{
    uint8_t hdr[BLK_HDR_LEN];
    virtq_iov_to_buf(e->iov, e->nout, 0, hdr, sizeof(hdr));
    uint64_t data_in = e->in_len - 1;
    uint64_t off;
    if (le32(hdr) != VIRTIO_BLK_T_IN || data_in == 0 || data_in > BLK_INLINE_MAX ||
        data_in % VIRTIO_BLK_SECTOR || !blk_range(b, le64(hdr + 8), data_in, &off)) {
        return false; /* errors are reported by the worker path */
    }
    const struct iovec *in = e->iov + e->nout;
    struct iovec seg[BLK_INLINE_SEGS];
    unsigned ns = 0;
    uint64_t left = data_in;
    for (unsigned i = 0; i < e->nin && left > 0; i++) {
        uint8_t *p = in[i].iov_base;
        uint64_t c = in[i].iov_len < left ? in[i].iov_len : left;
        left -= c;
        if (ns && (uint8_t *)seg[ns - 1].iov_base + seg[ns - 1].iov_len == p) {
            seg[ns - 1].iov_len += c;
        } else if (ns == BLK_INLINE_SEGS) {
            return false;
        } else {
            seg[ns++] = (struct iovec){.iov_base = p, .iov_len = c};
        }
    }
    for (unsigned i = 0; i < ns; i++) {
        if (b->be.pread_nowait(b->be.opaque, seg[i].iov_base, seg[i].iov_len, off) < 0) {
            return false;
        }
        off += seg[i].iov_len;
    }
    uint8_t status = VIRTIO_BLK_S_OK;
    virtq_iov_from_buf(in, e->nin, (size_t)data_in, &status, 1);
    *len = (uint32_t)(data_in + 1);
    return true;
}

static void blk_done(struct virtio_blk *b, unsigned n)
{
    pthread_mutex_lock(&b->lock);
    b->inflight -= n;
    if (b->inflight == 0) {
        pthread_cond_broadcast(&b->idle);
    }
    pthread_mutex_unlock(&b->lock);
}

/* Runs a batch in order and returns it to the driver in one used-ring update with
 * at most one interrupt. */
static void blk_run_batch(struct virtio_blk *b, struct blk_req *r)
{
    unsigned q = r->q;
    struct virtq_elem *elems[BLK_BATCH_MAX] = {NULL};
    uint32_t lens[BLK_BATCH_MAX] = {0};
    uint8_t *bounce = NULL;
    unsigned n = 0;
    /* the submitter hands over at most BLK_BATCH_MAX requests */
    for (struct blk_req *i = r; i && n < BLK_BATCH_MAX; i = i->next) {
        lens[n] = blk_execute(b, &i->e, &bounce);
        elems[n++] = &i->e;
    }
    free(bounce);
    virtio_pci_push_many(b->vp, q, elems, lens, n);
    while (r) {
        struct blk_req *next = r->next;
        free(r);
        r = next;
    }
    blk_done(b, n);
}

static void *blk_worker_main(void *opaque)
{
    struct virtio_blk *b = opaque;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        struct blk_req *r = b->queue_head;
        if (!r) {
            if (b->stop) {
                break;
            }
            b->sleeping++;
            pthread_cond_wait(&b->work, &b->lock);
            b->sleeping--;
            continue;
        }
        b->queue_head = r->batch;
        pthread_mutex_unlock(&b->lock);
        blk_run_batch(b, r);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* Queues a batch for the workers. The wakeup is sent after the lock is dropped: a worker
 * woken while the submitter still holds it blocks on the mutex at once and needs a second
 * wakeup (GLib's thread pool did that: two extra context switches per request). */
static void blk_submit(struct virtio_blk *b, struct blk_req *head, unsigned n)
{
    if (!head) {
        return;
    }
    head->batch = NULL;
    pthread_mutex_lock(&b->lock);
    b->inflight += n;
    if (b->queue_head) {
        b->queue_tail->batch = head;
    } else {
        b->queue_head = head;
    }
    b->queue_tail = head;
    bool wake = b->sleeping > 0;
    pthread_mutex_unlock(&b->lock);
    if (wake) {
        pthread_cond_signal(&b->work);
    }
}

/* Pops everything the driver queued and hands it to a worker as one batch. Reads that
 * can be served without blocking complete here first (blk_try_inline), as long as no
 * request is with the workers: a read never overtakes a write the driver queued before it.
 * They are returned together, with at most one interrupt. */
static void blk_queue_notify(void *dev, unsigned q)
{
    struct virtio_blk *b = dev;
    struct blk_req *head = NULL, **tail = &head;
    unsigned n = 0;
    struct blk_req *done[BLK_BATCH_MAX];
    struct virtq_elem *done_e[BLK_BATCH_MAX];
    uint32_t done_len[BLK_BATCH_MAX];
    unsigned nd = 0;
    /* Inline requests count as one in flight, so drain and reset wait for them too. */
    bool inl = false;
    if (b->be.pread_nowait) {
        pthread_mutex_lock(&b->lock);
        if (b->inflight == 0) {
            b->inflight = 1;
            inl = true;
        }
        pthread_mutex_unlock(&b->lock);
    }
    bool queued = false;
    for (;;) {
        struct blk_req *r = malloc(sizeof(*r));
        if (!r) {
            break; /* the next kick retries */
        }
        r->b = b;
        r->q = q;
        r->next = NULL;
        int rc = virtio_pci_pop(b->vp, q, &r->e);
        if (rc <= 0) {
            free(r);
            break;
        }
        if (r->e.out_len < BLK_HDR_LEN || r->e.in_len < 1) {
            free(r);
            virtio_pci_set_needs_reset(b->vp, "request without header or status byte");
            break;
        }
        if (inl && !queued && nd < BLK_BATCH_MAX && blk_try_inline(b, &r->e, &done_len[nd])) {
            done[nd] = r;
            done_e[nd] = &r->e;
            nd++;
            continue;
        }
        queued = true;
        *tail = r;
        tail = &r->next;
        if (++n == BLK_BATCH_MAX) {
            blk_submit(b, head, n);
            head = NULL;
            tail = &head;
            n = 0;
        }
    }
    if (nd) {
        virtio_pci_push_many(b->vp, q, done_e, done_len, nd);
        for (unsigned i = 0; i < nd; i++) {
            free(done[i]);
        }
    }
    blk_submit(b, head, n);
    if (inl) {
        blk_done(b, 1);
    }
}

void virtio_blk_drain(struct virtio_blk *b)
{
    pthread_mutex_lock(&b->lock);
    while (b->inflight) {
        pthread_cond_wait(&b->idle, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
}

static void blk_reset(void *dev)
{
    virtio_blk_drain(dev);
}

struct virtio_blk *virtio_blk_new(const struct guestmem *mem, const struct virtio_blk_backend *be,
                                  const char *serial)
{
    if (!be->pread || !be->pwrite) {
        return NULL;
    }
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    b->be = *be;
    if (serial) {
        memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));
    }
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->idle, NULL);
    pthread_cond_init(&b->work, NULL);
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ull << VIRTIO_BLK_F_FLUSH);
    if (be->readonly) {
        f |= 1ull << VIRTIO_BLK_F_RO;
    }
    if (be->discard && !be->readonly) {
        f |= 1ull << VIRTIO_BLK_F_DISCARD;
    }
    if (be->write_zeroes && !be->readonly) {
        f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
    }
    b->ops = (struct virtio_dev_ops){
        .name = "virtio-blk",
        .device_id = VIRTIO_ID_BLOCK,
        .class_code = 0x010000, /* mass storage, SCSI: what QEMU and guests expect */
        .features = f,
        .num_queues = 1,
        .queue_size = VIRTIO_BLK_QUEUE_SIZE,
        .config_len = VIRTIO_BLK_CONFIG_LEN,
        .config_read = blk_config_read,
        .queue_notify = blk_queue_notify,
        .reset = blk_reset,
        .drain = blk_reset,
    };
    b->vp = virtio_pci_new(&b->ops, b, mem);
    if (!b->vp) {
        virtio_blk_free(b);
        return NULL;
    }
    for (unsigned i = 0; i < BLK_WORKERS; i++) {
        if (pthread_create(&b->workers[i], NULL, blk_worker_main, b) != 0) {
            break;
        }
        pthread_setname_np(b->workers[i], "blk-io");
        b->nworkers++;
    }
    if (b->nworkers == 0) {
        virtio_blk_free(b);
        return NULL;
    }
    return b;
}

void virtio_blk_free(struct virtio_blk *b)
{
    if (!b) {
        return;
    }
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_mutex_unlock(&b->lock);
    pthread_cond_broadcast(&b->work);
    for (unsigned i = 0; i < b->nworkers; i++) {
        pthread_join(b->workers[i], NULL); /* each finishes the queued batches first */
    }
    virtio_pci_free(b->vp);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->idle);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

struct virtio_pci *virtio_blk_transport(struct virtio_blk *b)
{
    return b->vp;
}
