/* libFuzzer target: the split-virtqueue walker over fuzzed guest memory. The input's first bytes
 * choose the queue size, ring addresses and event index; the rest is guest RAM. Every popped chain
 * is copied in and out through its iovecs and pushed back, as a device would; anything hostile
 * must end in -EIO, never in an access outside the RAM buffer. Built by tests/fuzz/run.sh. */
#include "core/guestmem.h"
#include "devices/virtio/virtqueue.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_VIRTQ_RAM 65536 /* guest RAM size: small, so fuzzed addresses hit it often */
#define FUZZ_VIRTQ_HDR 16    /* input bytes that configure the queue */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_get(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < FUZZ_VIRTQ_HDR) {
        return 0;
    }
    /* The RAM lives in its own heap block so ASan flags any access just outside it. */
    uint8_t *ram = calloc(1, FUZZ_VIRTQ_RAM);
    static struct virtq_elem elem;
    static uint8_t scratch[8192];
    if (!ram) {
        return 0;
    }
    size_t body = size - FUZZ_VIRTQ_HDR;
    memcpy(ram, data + FUZZ_VIRTQ_HDR, body < FUZZ_VIRTQ_RAM ? body : FUZZ_VIRTQ_RAM);

    struct guestmem gm;
    memset(&gm, 0, sizeof(gm));
    gm.n = 1;
    gm.r[0].gpa = 0x1000 * (uint64_t)(data[0] & 3); /* sometimes RAM does not start at 0 */
    gm.r[0].size = FUZZ_VIRTQ_RAM;
    gm.r[0].hva = ram;
    gm.r[0].fd = -1;
    strcpy(gm.r[0].name, "ram-fuzz");

    uint16_t num = (uint16_t)(1u << (data[1] % 11)); /* 1..1024, a power of two */
    /* Addresses: mostly inside RAM (16-bit), sometimes anywhere (high byte set). */
    uint64_t desc = fuzz_get(data + 2, 2) | (data[8] & 0x80 ? fuzz_get(data + 9, 4) << 16 : 0);
    uint64_t avail = fuzz_get(data + 4, 2);
    uint64_t used = fuzz_get(data + 6, 2) | (data[8] & 0x40 ? (uint64_t)data[13] << 40 : 0);
    bool event_idx = data[8] & 1;

    struct virtq vq;
    virtq_init(&vq, &gm, num, desc, avail, used, event_idx);
    vq.last_avail = (uint16_t)fuzz_get(data + 14, 2) & (data[8] & 2 ? 0xffff : 0);
    for (int i = 0; i < 64 && virtq_has_work(&vq); i++) {
        int rc = virtq_pop(&vq, &elem);
        if (rc <= 0) {
            break;
        }
        size_t got = virtq_iov_to_buf(elem.iov, elem.nout, 0, scratch, sizeof(scratch));
        size_t put = virtq_iov_from_buf(elem.iov + elem.nout, elem.nin, got & 7, scratch,
                                        sizeof(scratch));
        if (virtq_push(&vq, &elem, (uint32_t)put) < 0) {
            break;
        }
        (void)virtq_should_notify(&vq);
    }
    free(ram);
    return 0;
}
