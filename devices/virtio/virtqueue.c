/* Split virtqueue, device side (virtio 1.1, 2.6). */
#include "devices/virtio/virtqueue.h"

#include "core/log.h"

#include <errno.h>
#include <string.h>

#define VQ_TAG "dev.virtio"

/* Ring layout offsets (2.6.6, 2.6.8). */
#define VQ_AVAIL_IDX 2
#define VQ_AVAIL_RING 4
#define VQ_USED_IDX 2
#define VQ_USED_RING 4
#define VQ_USED_ELEM 8

static int vq_read16(const struct virtq *vq, uint64_t gpa, uint16_t *v)
{
    uint8_t b[2];
    if (guestmem_read(vq->mem, gpa, b, 2) < 0) {
        return -EIO;
    }
    *v = (uint16_t)(b[0] | (b[1] << 8));
    return 0;
}

static int vq_write16(const struct virtq *vq, uint64_t gpa, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    if (!guestmem_ptr_rw(vq->mem, gpa, 2)) {
        return -EIO;
    }
    return guestmem_write(vq->mem, gpa, b, 2) < 0 ? -EIO : 0;
}

static uint64_t vq_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint32_t vq_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void virtq_init(struct virtq *vq, const struct guestmem *mem, uint16_t num, uint64_t desc,
                uint64_t avail, uint64_t used, bool event_idx)
{
    memset(vq, 0, sizeof(*vq));
    vq->mem = mem;
    vq->num = num;
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    vq->event_idx = event_idx;
}

static uint64_t vq_avail_event_gpa(const struct virtq *vq)
{
    return vq->used + VQ_USED_RING + (uint64_t)VQ_USED_ELEM * vq->num;
}

static uint64_t vq_used_event_gpa(const struct virtq *vq)
{
    return vq->avail + VQ_AVAIL_RING + 2ull * vq->num;
}

/* Number of new entries in the available ring, or -EIO. */
static int vq_pending(struct virtq *vq)
{
    uint16_t idx;
    if (vq->num == 0 || vq_read16(vq, vq->avail + VQ_AVAIL_IDX, &idx) < 0) {
        return -EIO;
    }
    uint16_t n = (uint16_t)(idx - vq->last_avail);
    if (n > vq->num) {
        return -EIO; /* the driver cannot have more than num buffers outstanding */
    }
    return n;
}

bool virtq_has_work(struct virtq *vq)
{
    return vq_pending(vq) > 0;
}

static int vq_add_seg(struct virtq_elem *e, const struct virtq *vq, uint64_t addr, uint32_t len,
                      bool writable)
{
    if (writable == false && e->nin > 0) {
        return -EIO; /* 2.6.4.2: readable descriptors come before writable ones */
    }
    if (len == 0) {
        return 0;
    }
    if (e->nout + e->nin >= VIRTQ_MAX_SEGS) {
        return -EIO;
    }
    void *p = writable ? guestmem_ptr_rw(vq->mem, addr, len) : guestmem_ptr(vq->mem, addr, len);
    if (!p) {
        return -EIO;
    }
    e->iov[e->nout + e->nin] = (struct iovec){.iov_base = p, .iov_len = len};
    if (writable) {
        e->nin++;
        e->in_len += len;
    } else {
        e->nout++;
        e->out_len += len;
    }
    return 0;
}

static int vq_walk(struct virtq *vq, uint16_t head, struct virtq_elem *e)
{
    uint64_t table = vq->desc;
    unsigned tsize = vq->num;
    unsigned idx = head;
    unsigned count = 0;
    bool indirect = false;
    for (;;) {
        if (idx >= tsize) {
            log_warn(VQ_TAG, "descriptor index %u beyond table of %u", idx, tsize);
            return -EIO;
        }
        if (++count > tsize) {
            log_warn(VQ_TAG, "descriptor chain loops (more than %u entries)", tsize);
            return -EIO;
        }
        uint8_t d[VIRTQ_DESC_SIZE];
        if (guestmem_read(vq->mem, table + (uint64_t)idx * VIRTQ_DESC_SIZE, d, sizeof(d)) < 0) {
            log_warn(VQ_TAG, "descriptor table outside guest RAM");
            return -EIO;
        }
        uint64_t addr = vq_le64(d);
        uint32_t len = vq_le32(d + 8);
        uint16_t flags = (uint16_t)(d[12] | (d[13] << 8));
        uint16_t next = (uint16_t)(d[14] | (d[15] << 8));
        if (flags & VIRTQ_DESC_F_INDIRECT) {
            if (indirect || (flags & VIRTQ_DESC_F_NEXT)) {
                log_warn(VQ_TAG, "nested or chained indirect descriptor");
                return -EIO;
            }
            if (len == 0 || (len % VIRTQ_DESC_SIZE) || len / VIRTQ_DESC_SIZE > VIRTQ_MAX_SEGS ||
                !guestmem_ptr(vq->mem, addr, len)) {
                log_warn(VQ_TAG, "bad indirect table (0x%llx, %u bytes)", (unsigned long long)addr,
                         len);
                return -EIO;
            }
            table = addr;
            tsize = len / VIRTQ_DESC_SIZE;
            idx = 0;
            count = 0;
            indirect = true;
            continue;
        }
        if (vq_add_seg(e, vq, addr, len, (flags & VIRTQ_DESC_F_WRITE) != 0) < 0) {
            log_warn(VQ_TAG, "bad buffer 0x%llx+%u (outside RAM, order or count)",
                     (unsigned long long)addr, len);
            return -EIO;
        }
        if (!(flags & VIRTQ_DESC_F_NEXT)) {
            return 0;
        }
        idx = next;
    }
}

int virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
    int n = vq_pending(vq);
    if (n < 0) {
        log_warn(VQ_TAG, "available ring index is out of range or outside RAM");
        return -EIO;
    }
    if (n == 0) {
        if (!vq->event_idx) {
            return 0;
        }
        /* Ask for a kick at the next buffer, then look again: the driver may have
         * added one before it saw the new avail_event. */
        if (vq_write16(vq, vq_avail_event_gpa(vq), vq->last_avail) < 0) {
            return -EIO;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        n = vq_pending(vq);
        if (n <= 0) {
            return n < 0 ? -EIO : 0;
        }
    }
    /* Read the ring entry only after the index that published it. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t head;
    uint64_t slot = vq->avail + VQ_AVAIL_RING + 2ull * (vq->last_avail % vq->num);
    if (vq_read16(vq, slot, &head) < 0) {
        return -EIO;
    }
    e->head = head;
    e->nout = e->nin = 0;
    e->out_len = e->in_len = 0;
    if (vq_walk(vq, head, e) < 0) {
        return -EIO;
    }
    vq->last_avail++;
    if (vq->event_idx && vq_write16(vq, vq_avail_event_gpa(vq), vq->last_avail) < 0) {
        return -EIO;
    }
    return 1;
}

/* The device wrote the chain's writable buffers through host pointers: tell guestmem, so a
 * software CPU drops code it translated from those pages (page cache reuse). */
static void vq_note_written(const struct virtq *vq, const struct virtq_elem *e)
{
    const struct guestmem *gm = vq->mem;
    if (!gm->write_notify) {
        return;
    }
    for (unsigned i = e->nout; i < e->nout + e->nin && i < VIRTQ_MAX_SEGS; i++) {
        const uint8_t *p = e->iov[i].iov_base;
        for (int r = 0; r < gm->n; r++) {
            const struct guestmem_region *g = &gm->r[r];
            if (p >= g->hva && p < g->hva + g->size) {
                guestmem_dma_written(gm, g->gpa + (uint64_t)(p - g->hva), e->iov[i].iov_len);
                break;
            }
        }
    }
}

int virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len)
{
    if (vq->num == 0) {
        return -EIO;
    }
    vq_note_written(vq, e);
    uint8_t u[VQ_USED_ELEM];
    uint32_t id = e->head;
    for (int i = 0; i < 4; i++) {
        u[i] = (uint8_t)(id >> (8 * i));
        u[4 + i] = (uint8_t)(len >> (8 * i));
    }
    uint64_t slot = vq->used + VQ_USED_RING + (uint64_t)VQ_USED_ELEM * (vq->used_idx % vq->num);
    if (!guestmem_ptr_rw(vq->mem, slot, sizeof(u)) ||
        guestmem_write(vq->mem, slot, u, sizeof(u)) < 0) {
        log_warn(VQ_TAG, "used ring outside guest RAM");
        return -EIO;
    }
    /* The entry must be visible before the index that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->used_idx++;
    return vq_write16(vq, vq->used + VQ_USED_IDX, vq->used_idx);
}

int virtq_push_many(struct virtq *vq, struct virtq_elem *const *e, const uint32_t *len,
                    unsigned n)
{
    if (vq->num == 0 || n > vq->num) {
        return -EIO;
    }
    for (unsigned i = 0; i < n; i++) {
        vq_note_written(vq, e[i]);
        uint8_t u[VQ_USED_ELEM];
        uint32_t id = e[i]->head;
        for (int b = 0; b < 4; b++) {
            u[b] = (uint8_t)(id >> (8 * b));
            u[4 + b] = (uint8_t)(len[i] >> (8 * b));
        }
        uint16_t idx = (uint16_t)(vq->used_idx + i);
        uint64_t slot = vq->used + VQ_USED_RING + (uint64_t)VQ_USED_ELEM * (idx % vq->num);
        if (!guestmem_ptr_rw(vq->mem, slot, sizeof(u)) ||
            guestmem_write(vq->mem, slot, u, sizeof(u)) < 0) {
            log_warn(VQ_TAG, "used ring outside guest RAM");
            return -EIO;
        }
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->used_idx = (uint16_t)(vq->used_idx + n);
    return vq_write16(vq, vq->used + VQ_USED_IDX, vq->used_idx);
}

bool virtq_should_notify(struct virtq *vq)
{
    /* Our used->idx store must be ordered before reading the driver's wishes. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (vq->event_idx) {
        uint16_t ev;
        uint16_t old = vq->signalled_used, now = vq->used_idx;
        bool valid = vq->signalled_valid;
        if (vq_read16(vq, vq_used_event_gpa(vq), &ev) < 0) {
            return true;
        }
        vq->signalled_used = now;
        vq->signalled_valid = true;
        /* vring_need_event (2.6.7.2): has used_idx moved past used_event? */
        return !valid || (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
    }
    uint16_t flags;
    if (vq_read16(vq, vq->avail, &flags) < 0) {
        return true;
    }
    return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

size_t virtq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t c = l - skip;
        if (c > len - done) {
            c = len - done;
        }
        memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + skip, c);
        done += c;
        skip = 0;
    }
    return done;
}

size_t virtq_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
                          size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        size_t c = l - skip;
        if (c > len - done) {
            c = len - done;
        }
        memcpy((uint8_t *)iov[i].iov_base + skip, (const uint8_t *)buf + done, c);
        done += c;
        skip = 0;
    }
    return done;
}
