/* The per-vCPU run loop: run the engine, dispatch its exits, stop on a request. */
#include "core/bus.h"
#include "core/log.h"
#include "core/machine_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VCPU_TAG "vcpu"

static uint64_t vcpu_load_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void vcpu_store_le(uint8_t *p, unsigned size, uint64_t v)
{
    for (unsigned i = 0; i < size; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void vcpu_handle_pio(struct machine *m, const struct accel_exit *e)
{
    unsigned size = e->pio.size;
    if (size != 1 && size != 2 && size != 4) {
        return;
    }
    uint32_t count = e->pio.count ? e->pio.count : 1;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *p = e->pio.data + (size_t)i * size;
        bool claimed;
        if (e->pio.is_write) {
            claimed = bus_write(m->pio, e->pio.port, size, vcpu_load_le(p, size));
        } else {
            uint64_t v = 0;
            claimed = bus_read(m->pio, e->pio.port, size, &v);
            vcpu_store_le(p, size, v);
        }
        if (!claimed) {
            log_debug("machine.io", "unclaimed %s port 0x%x size %u",
                      e->pio.is_write ? "write" : "read", e->pio.port, size);
        }
    }
}

static void vcpu_handle_mmio(struct machine *m, struct accel_exit *e)
{
    unsigned size = e->mmio.size;
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        return;
    }
    bool claimed;
    if (e->mmio.is_write) {
        claimed = bus_write(m->mmio, e->mmio.addr, size, vcpu_load_le(e->mmio.data, size));
    } else {
        uint64_t v = 0;
        claimed = bus_read(m->mmio, e->mmio.addr, size, &v);
        vcpu_store_le(e->mmio.data, size, v);
    }
    if (!claimed) {
        log_debug("machine.io", "unclaimed %s mmio 0x%llx size %u",
                  e->mmio.is_write ? "write" : "read", (unsigned long long)e->mmio.addr, size);
    }
}

/* Wait in HLT until an interrupt may be deliverable or the machine stops. */
static void vcpu_wait_halted(struct machine_vcpu *v)
{
    pthread_mutex_lock(&v->lock);
    while (!v->kicked && !atomic_load(&v->m->stop_vcpus)) {
        if (v->intc.intr_pending && v->intc.intr_pending(v->intc.opaque)) {
            break;
        }
        pthread_cond_wait(&v->cond, &v->lock);
    }
    v->kicked = false;
    pthread_mutex_unlock(&v->lock);
}

void vcpu_kick(struct machine_vcpu *v)
{
    pthread_mutex_lock(&v->lock);
    v->kicked = true;
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->lock);
    if (v->acc && v->m->accel->kick) {
        v->m->accel->kick(v->acc);
    }
}

/* Stop the machine with a report naming the exit and the register state. */
static void vcpu_fail(struct machine_vcpu *v, const char *what, const struct accel_exit *e)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        machine_request_error(v->m, what);
        return;
    }
    fprintf(f, "lodge: vCPU %d: %s", v->index, what);
    if (e && (e->reason == ACCEL_EXIT_INTERNAL_ERROR || e->reason == ACCEL_EXIT_FAIL_ENTRY)) {
        fprintf(f, " (code 0x%llx%s%.*s)", (unsigned long long)e->error.code,
                e->error.detail[0] ? ": " : "", (int)sizeof(e->error.detail), e->error.detail);
    }
    fprintf(f, "\n");
    accel_dump_vcpu(v->m->accel, v->acc, f);
    fclose(f);
    machine_request_error(v->m, text);
    free(text);
}

void *vcpu_thread_main(void *opaque)
{
    struct machine_vcpu *v = opaque;
    struct machine *m = v->m;
    /* Not cleared between runs: for an MMIO read the engine copies e.mmio.data (filled in
     * by the dispatch below) back into the guest on the next vcpu_run. */
    struct accel_exit e;
    char what[96];

    memset(&e, 0, sizeof(e));
    /* Once the machine has a request pending (power-off, reset, error), this vCPU
     * stops running guest code: nothing the guest does after asking for power-off
     * should be visible. */
    while (!atomic_load(&m->stop_vcpus) && !atomic_load(&m->req_pending)) {
        int rc = m->accel->vcpu_run(v->acc, &e);
        if (rc < 0) {
            if (rc == -EINTR || rc == -EAGAIN) {
                continue;
            }
            snprintf(what, sizeof(what), "engine error: %s", strerror(-rc));
            vcpu_fail(v, what, NULL);
            break;
        }
        switch (e.reason) {
        case ACCEL_EXIT_PIO:
            vcpu_handle_pio(m, &e);
            break;
        case ACCEL_EXIT_MMIO:
            vcpu_handle_mmio(m, &e);
            break;
        case ACCEL_EXIT_HLT:
            vcpu_wait_halted(v);
            break;
        case ACCEL_EXIT_NONE:
        case ACCEL_EXIT_INTR:
        case ACCEL_EXIT_DEBUG:
            break;
        case ACCEL_EXIT_RESET:
            machine_request_reset(m);
            break;
        case ACCEL_EXIT_POWEROFF:
            machine_request_poweroff(m);
            break;
        case ACCEL_EXIT_SHUTDOWN:
        case ACCEL_EXIT_INTERNAL_ERROR:
        case ACCEL_EXIT_FAIL_ENTRY:
        default:
            snprintf(what, sizeof(what), "guest stopped: %s", accel_exit_name(e.reason));
            vcpu_fail(v, what, &e);
            return NULL;
        }
    }
    if (log_enabled(VCPU_TAG, LOG_LEVEL_DEBUG)) {
        /* Where the guest was when the machine stopped it (hangs, slow boots). */
        log_debug(VCPU_TAG, "vCPU %d stopped; state:", v->index);
        accel_dump_vcpu(m->accel, v->acc, stderr);
    }
    return NULL;
}
