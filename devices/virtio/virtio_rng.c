/* virtio entropy device (virtio 1.1, 5.4). */
#include "devices/virtio/virtio_rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#define RNG_MAX_PER_BUFFER 4096 /* bytes handed out per request: the guest asks again */

struct virtio_rng {
    struct virtio_pci *vp; /* transport */
    struct virtq_elem *e;  /* scratch element, used on the notifying vCPU thread only */
    pthread_mutex_t lock;  /* e */
};

static const struct virtio_dev_ops rng_ops;

static size_t rng_fill(struct virtq_elem *e)
{
    uint8_t buf[256];
    size_t done = 0;
    uint64_t want = e->in_len < RNG_MAX_PER_BUFFER ? e->in_len : RNG_MAX_PER_BUFFER;
    while (done < want) {
        size_t n = want - done < sizeof(buf) ? (size_t)(want - done) : sizeof(buf);
        ssize_t got = getrandom(buf, n, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        done += virtq_iov_from_buf(e->iov + e->nout, e->nin, done, buf, (size_t)got);
    }
    return done;
}

static void rng_queue_notify(void *dev, unsigned q)
{
    struct virtio_rng *r = dev;
    pthread_mutex_lock(&r->lock);
    while (virtio_pci_pop(r->vp, q, r->e) > 0) {
        virtio_pci_push(r->vp, q, r->e, (uint32_t)rng_fill(r->e));
    }
    pthread_mutex_unlock(&r->lock);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .class_code = 0x00ff00, /* unclassified */
    .num_queues = 1,
    .queue_size = 64,
    .queue_notify = rng_queue_notify,
};

struct virtio_rng *virtio_rng_new(const struct guestmem *mem)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->e = malloc(sizeof(*r->e));
    r->vp = virtio_pci_new(&rng_ops, r, mem);
    if (!r->e || !r->vp) {
        virtio_rng_free(r);
        return NULL;
    }
    return r;
}

void virtio_rng_free(struct virtio_rng *r)
{
    if (!r) {
        return;
    }
    virtio_pci_free(r->vp);
    free(r->e);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

struct virtio_pci *virtio_rng_transport(struct virtio_rng *r)
{
    return r->vp;
}
