/* HPET (IA-PC HPET Specification 1.0a, sections 2.3 "Register Descriptions" and
 * 2.4 "Timer operation").
 *
 * Simplifications: FSB (MSI) delivery is not offered (Tn_FSB_INT_DEL_CAP = 0), a
 * comparator is only scheduled while its interrupt is enabled (status bits of
 * polled, interrupt-disabled timers are not set), and a 32-bit one-shot timer does
 * not fire again after the counter wraps. */
#include "devices/pc/hpet.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "snapshot/vmstate.h"

#define TAG "dev.hpet"

#define HPET_NS_PER_TICK 10

#define HPET_REG_CAP 0x000
#define HPET_REG_CONF 0x010
#define HPET_REG_ISR 0x020
#define HPET_REG_COUNTER 0x0f0
#define HPET_REG_TIMER0 0x100
#define HPET_TIMER_STRIDE 0x20

/* General configuration (2.3.5). */
#define HPET_CONF_ENABLE (1ull << 0)
#define HPET_CONF_LEGACY (1ull << 1)

/* Timer N configuration and capability (2.3.8). */
#define HPET_TN_LEVEL (1ull << 1)
#define HPET_TN_INT_ENB (1ull << 2)
#define HPET_TN_PERIODIC (1ull << 3)
#define HPET_TN_PER_CAP (1ull << 4)
#define HPET_TN_SIZE_CAP (1ull << 5)
#define HPET_TN_VAL_SET (1ull << 6)
#define HPET_TN_32BIT (1ull << 8)
#define HPET_TN_ROUTE_SHIFT 9
#define HPET_TN_ROUTE_MASK (0x1full << HPET_TN_ROUTE_SHIFT)
#define HPET_TN_WRITABLE                                                                           \
    (HPET_TN_LEVEL | HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET | HPET_TN_32BIT |        \
     HPET_TN_ROUTE_MASK)
#define HPET_TN_FIXED_BITS                                                                         \
    (HPET_TN_PER_CAP | HPET_TN_SIZE_CAP | ((uint64_t)HPET_INT_ROUTE_CAP << 32))

/* Capabilities (2.3.4): 64-bit counter, legacy route capable, NUM_TIM_CAP = timers - 1. */
#define HPET_CAP_VALUE                                                                             \
    (((uint64_t)HPET_PERIOD_FS << 32) | (0x8086ull << 16) | (1ull << 15) | (1ull << 13) |          \
     ((uint64_t)(HPET_NUM_TIMERS - 1) << 8) | 0x01)

struct hpet_timer {
    uint64_t config;  /* Tn_CONF_CAP (2.3.8), writable bits only */
    uint64_t cmp;     /* Tn_COMPARATOR (2.3.9): next match value */
    uint64_t period;  /* Tn_COMPARATOR periodic increment (2.3.9, "periodic mode") */
    uint64_t fsb;     /* Tn_FSB_INT_ROUTE (2.3.10): kept, unused (no FSB capability) */
    int32_t asserted; /* IRQ line we hold high for a level interrupt, -1 if none */
};

struct hpet_state {
    uint64_t config;                      /* GEN_CONF (2.3.5) */
    uint64_t isr;                         /* GEN_INT_STS (2.3.6): level status bits */
    uint64_t counter;                     /* MAIN_COUNTER (2.3.7) at base_ns */
    uint64_t base_ns;                     /* timerq time matching counter when enabled */
    struct hpet_timer t[HPET_NUM_TIMERS]; /* timer N blocks */
    uint64_t saved_now_ns;                /* timerq clock at save, to rebase base_ns */
};

struct hpet {
    pthread_mutex_t lock;
    struct hpet_state st;
    struct timerq *q;
    struct timer *timers[HPET_NUM_TIMERS];
    void (*irq)(void *opaque, int gsi, int level);
    void *opaque;
};

struct hpet_timer_ctx {
    struct hpet *h;
    int n;
};

static uint64_t hpet_counter_now(struct hpet *h, uint64_t now)
{
    struct hpet_state *s = &h->st;
    if (!(s->config & HPET_CONF_ENABLE)) {
        return s->counter;
    }
    return s->counter + (now - s->base_ns) / HPET_NS_PER_TICK;
}

/* The line timer n interrupts on now, or -1 when its route is not wired. */
static int hpet_timer_route(struct hpet *h, int n)
{
    if (h->st.config & HPET_CONF_LEGACY) {
        if (n == 0) {
            return 0;
        }
        if (n == 1) {
            return 8;
        }
    }
    int route = (h->st.t[n].config & HPET_TN_ROUTE_MASK) >> HPET_TN_ROUTE_SHIFT;
    return (HPET_INT_ROUTE_CAP & (1u << route)) ? route : -1;
}

static void hpet_set_line(struct hpet *h, int gsi, int level)
{
    if (gsi >= 0 && h->irq) {
        h->irq(h->opaque, gsi, level);
    }
}

/* Bring a level timer's output in line with its status bit, enable and route. */
static void hpet_update_level(struct hpet *h, int n)
{
    struct hpet_timer *t = &h->st.t[n];
    int want = -1;
    if ((t->config & HPET_TN_LEVEL) && (t->config & HPET_TN_INT_ENB) && (h->st.isr & (1ull << n))) {
        want = hpet_timer_route(h, n);
    }
    if (want == t->asserted) {
        return;
    }
    if (t->asserted >= 0) {
        hpet_set_line(h, t->asserted, 0);
    }
    t->asserted = want;
    if (want >= 0) {
        hpet_set_line(h, want, 1);
    }
}

static uint64_t hpet_ticks_until(const struct hpet_timer *t, uint64_t cur)
{
    if (t->config & HPET_TN_32BIT) {
        return (uint32_t)((uint32_t)t->cmp - (uint32_t)cur);
    }
    return t->cmp - cur;
}

static void hpet_arm(struct hpet *h, int n, uint64_t now)
{
    struct hpet_timer *t = &h->st.t[n];
    if (!(h->st.config & HPET_CONF_ENABLE) || !(t->config & HPET_TN_INT_ENB)) {
        timer_del(h->timers[n]);
        return;
    }
    uint64_t since = (now - h->st.base_ns) / HPET_NS_PER_TICK;
    uint64_t diff = hpet_ticks_until(t, h->st.counter + since);
    if (diff == 0) {
        diff = 1; /* equal right now: fire on the next tick boundary */
    }
    if (diff > (1ull << 56)) {
        /* A 64-bit comparator already passed matches only after a wrap (centuries). */
        timer_del(h->timers[n]);
        return;
    }
    timer_mod(h->timers[n], h->st.base_ns + (since + diff) * HPET_NS_PER_TICK);
}

static void hpet_fire(struct hpet *h, int n)
{
    struct hpet_timer *t = &h->st.t[n];
    if (t->config & HPET_TN_LEVEL) {
        h->st.isr |= 1ull << n;
        hpet_update_level(h, n);
    } else if (t->config & HPET_TN_INT_ENB) {
        int gsi = hpet_timer_route(h, n);
        hpet_set_line(h, gsi, 1);
        hpet_set_line(h, gsi, 0);
    }
}

static void hpet_timer_cb(void *opaque)
{
    struct hpet_timer_ctx *ctx = opaque;
    struct hpet *h = ctx->h;
    int n = ctx->n;
    pthread_mutex_lock(&h->lock);
    struct hpet_timer *t = &h->st.t[n];
    uint64_t now = timerq_now_ns(h->q);
    if ((h->st.config & HPET_CONF_ENABLE) && (t->config & HPET_TN_INT_ENB)) {
        uint64_t cur = hpet_counter_now(h, now);
        bool is32 = t->config & HPET_TN_32BIT;
        bool reached =
            is32 ? (int32_t)((uint32_t)cur - (uint32_t)t->cmp) >= 0 : (int64_t)(cur - t->cmp) >= 0;
        if (reached) {
            hpet_fire(h, n);
            if ((t->config & HPET_TN_PERIODIC) && t->period) {
                /* Periodic: the comparator advances by the period past the counter,
                 * dropping ticks missed while the host was late. */
                uint64_t behind =
                    is32 ? (uint32_t)((uint32_t)cur - (uint32_t)t->cmp) : cur - t->cmp;
                t->cmp += (behind / t->period + 1) * t->period;
                if (is32) {
                    t->cmp &= 0xffffffffull;
                }
                hpet_arm(h, n, now);
            }
        } else {
            hpet_arm(h, n, now);
        }
    }
    pthread_mutex_unlock(&h->lock);
}

static void hpet_reset_locked(struct hpet *h)
{
    struct hpet_state *s = &h->st;
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        timer_del(h->timers[i]);
        if (s->t[i].asserted >= 0) {
            hpet_set_line(h, s->t[i].asserted, 0);
        }
    }
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        s->t[i].cmp = UINT64_MAX;
        s->t[i].period = 0;
        s->t[i].asserted = -1;
    }
}

struct hpet *hpet_new(struct timerq *q, void (*irq)(void *opaque, int gsi, int level), void *opaque)
{
    struct hpet *h = calloc(1, sizeof(*h) + sizeof(struct hpet_timer_ctx) * HPET_NUM_TIMERS);
    if (!h) {
        return NULL;
    }
    struct hpet_timer_ctx *ctx = (struct hpet_timer_ctx *)(h + 1);
    pthread_mutex_init(&h->lock, NULL);
    h->q = q;
    h->irq = irq;
    h->opaque = opaque;
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        ctx[i].h = h;
        ctx[i].n = i;
        h->timers[i] = timer_new(q, hpet_timer_cb, &ctx[i]);
        if (!h->timers[i]) {
            hpet_free(h);
            return NULL;
        }
    }
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        h->st.t[i].asserted = -1;
    }
    hpet_reset_locked(h);
    return h;
}

void hpet_free(struct hpet *h)
{
    if (!h) {
        return;
    }
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        if (h->timers[i]) {
            timer_free(h->timers[i]);
        }
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Merge a 4- or 8-byte write at off into a 64-bit register. */
static uint64_t hpet_merge(uint64_t old, uint64_t off, uint64_t val, unsigned size)
{
    if (size == 8) {
        return val;
    }
    unsigned shift = (off & 4) * 8;
    uint64_t mask = 0xffffffffull << shift;
    return (old & ~mask) | ((val & 0xffffffffull) << shift);
}

static uint64_t hpet_read_reg(struct hpet *h, uint64_t reg, uint64_t now)
{
    struct hpet_state *s = &h->st;
    switch (reg) {
    case HPET_REG_CAP:
        return HPET_CAP_VALUE;
    case HPET_REG_CONF:
        return s->config;
    case HPET_REG_ISR:
        return s->isr;
    case HPET_REG_COUNTER:
        return hpet_counter_now(h, now);
    default:
        break;
    }
    if (reg >= HPET_REG_TIMER0 && reg < HPET_REG_TIMER0 + HPET_NUM_TIMERS * HPET_TIMER_STRIDE) {
        int n = (reg - HPET_REG_TIMER0) / HPET_TIMER_STRIDE;
        struct hpet_timer *t = &s->t[n];
        switch ((reg - HPET_REG_TIMER0) % HPET_TIMER_STRIDE) {
        case 0x00:
            return t->config | HPET_TN_FIXED_BITS;
        case 0x08:
            return (t->config & HPET_TN_32BIT) ? (t->cmp & 0xffffffffull) : t->cmp;
        case 0x10:
            return t->fsb;
        default:
            return 0;
        }
    }
    return 0;
}

static void hpet_write_timer(struct hpet *h, int n, uint64_t reg_off, uint64_t off, uint64_t val,
                             unsigned size, uint64_t now)
{
    struct hpet_timer *t = &h->st.t[n];
    switch (reg_off) {
    case 0x00: {
        uint64_t old = t->config;
        uint64_t v = hpet_merge(old | HPET_TN_FIXED_BITS, off, val, size);
        t->config = v & HPET_TN_WRITABLE;
        if (t->config & HPET_TN_32BIT) {
            t->cmp &= 0xffffffffull;
            t->period &= 0xffffffffull;
        }
        if ((old ^ t->config) & HPET_TN_LEVEL) {
            h->st.isr &= ~(1ull << n); /* status is defined for level mode only */
        }
        hpet_update_level(h, n);
        hpet_arm(h, n, now);
        break;
    }
    case 0x08: {
        uint64_t ncmp = hpet_merge(t->cmp, off, val, size);
        uint64_t nper = hpet_merge(t->period, off, val, size);
        if (t->config & HPET_TN_32BIT) {
            ncmp &= 0xffffffffull;
            nper &= 0xffffffffull;
        }
        /* 2.3.9: in periodic mode a write sets the period; with Tn_VAL_SET it also
         * sets the comparator directly. Tn_VAL_SET clears itself after the write. */
        if (!(t->config & HPET_TN_PERIODIC) || (t->config & HPET_TN_VAL_SET)) {
            t->cmp = ncmp;
        }
        if (t->config & HPET_TN_PERIODIC) {
            t->period = nper;
        }
        t->config &= ~HPET_TN_VAL_SET;
        hpet_arm(h, n, now);
        break;
    }
    case 0x10:
        t->fsb = hpet_merge(t->fsb, off, val, size);
        break;
    default:
        break;
    }
}

static void hpet_write_reg(struct hpet *h, uint64_t off, uint64_t val, unsigned size, uint64_t now)
{
    struct hpet_state *s = &h->st;
    uint64_t reg = off & ~7ull;
    switch (reg) {
    case HPET_REG_CONF: {
        uint64_t old = s->config;
        uint64_t v = hpet_merge(old, off, val, size) & (HPET_CONF_ENABLE | HPET_CONF_LEGACY);
        if ((old & HPET_CONF_ENABLE) && !(v & HPET_CONF_ENABLE)) {
            s->counter = hpet_counter_now(h, now); /* halt: freeze the counter */
        } else if (!(old & HPET_CONF_ENABLE) && (v & HPET_CONF_ENABLE)) {
            s->base_ns = now;
        }
        s->config = v;
        for (int i = 0; i < HPET_NUM_TIMERS; i++) {
            hpet_update_level(h, i); /* the legacy route may have moved a held line */
            hpet_arm(h, i, now);
        }
        return;
    }
    case HPET_REG_ISR: {
        uint64_t clear = hpet_merge(0, off, val, size);
        s->isr &= ~clear;
        for (int i = 0; i < HPET_NUM_TIMERS; i++) {
            hpet_update_level(h, i);
        }
        return;
    }
    case HPET_REG_COUNTER:
        if (s->config & HPET_CONF_ENABLE) {
            /* 2.3.7: software must halt the counter before writing it. */
            log_debug(TAG, "main counter write while running ignored");
            return;
        }
        s->counter = hpet_merge(s->counter, off, val, size);
        return;
    default:
        break;
    }
    if (reg >= HPET_REG_TIMER0 && reg < HPET_REG_TIMER0 + HPET_NUM_TIMERS * HPET_TIMER_STRIDE) {
        int n = (reg - HPET_REG_TIMER0) / HPET_TIMER_STRIDE;
        hpet_write_timer(h, n, (reg - HPET_REG_TIMER0) % HPET_TIMER_STRIDE, off, val, size, now);
    }
}

uint64_t hpet_read(struct hpet *h, uint64_t off, unsigned size)
{
    if (off >= HPET_MMIO_SIZE || (size != 4 && size != 8) || (off & (size - 1))) {
        return 0;
    }
    pthread_mutex_lock(&h->lock);
    uint64_t r = hpet_read_reg(h, off & ~7ull, timerq_now_ns(h->q));
    pthread_mutex_unlock(&h->lock);
    if (size == 4) {
        r = (r >> ((off & 4) * 8)) & 0xffffffffull;
    }
    return r;
}

void hpet_write(struct hpet *h, uint64_t off, uint64_t val, unsigned size)
{
    if (off >= HPET_MMIO_SIZE || (size != 4 && size != 8) || (off & (size - 1))) {
        log_debug(TAG, "bad access at 0x%llx size %u", (unsigned long long)off, size);
        return;
    }
    pthread_mutex_lock(&h->lock);
    hpet_write_reg(h, off, val, size, timerq_now_ns(h->q));
    pthread_mutex_unlock(&h->lock);
}

static uint64_t hpet_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return hpet_read(opaque, off, size);
}

static void hpet_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    hpet_write(opaque, off, val, size);
}

const struct bus_ops hpet_bus_ops = {.read = hpet_bus_read, .write = hpet_bus_write};

/* ---- state ---- */

#define HPET_TIMER_FIELDS(n)                                                                       \
    VMSTATE_FIELD(struct hpet_state, t[n].config, VMSTATE_U64),                                    \
        VMSTATE_FIELD(struct hpet_state, t[n].cmp, VMSTATE_U64),                                   \
        VMSTATE_FIELD(struct hpet_state, t[n].period, VMSTATE_U64),                                \
        VMSTATE_FIELD(struct hpet_state, t[n].fsb, VMSTATE_U64),                                   \
        VMSTATE_FIELD(struct hpet_state, t[n].asserted, VMSTATE_I32)

static const struct vmstate_field hpet_fields[] = {
    VMSTATE_FIELD(struct hpet_state, config, VMSTATE_U64),
    VMSTATE_FIELD(struct hpet_state, isr, VMSTATE_U64),
    VMSTATE_FIELD(struct hpet_state, counter, VMSTATE_U64),
    VMSTATE_FIELD(struct hpet_state, base_ns, VMSTATE_U64),
    HPET_TIMER_FIELDS(0),
    HPET_TIMER_FIELDS(1),
    HPET_TIMER_FIELDS(2),
    VMSTATE_FIELD(struct hpet_state, saved_now_ns, VMSTATE_U64),
    VMSTATE_END,
};

static int hpet_post_load(void *scratch, int version_id)
{
    struct hpet_state *s = scratch;
    if (s->config & ~(HPET_CONF_ENABLE | HPET_CONF_LEGACY) || s->isr >= (1ull << HPET_NUM_TIMERS)) {
        return -EINVAL;
    }
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        if ((s->t[i].config & ~HPET_TN_WRITABLE) || s->t[i].asserted < -1 ||
            s->t[i].asserted > 31) {
            return -EINVAL;
        }
    }
    return 0;
}

static const struct vmstate_desc hpet_vmstate = {
    .name = "hpet",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct hpet_state),
    .fields = hpet_fields,
    .post_load = hpet_post_load,
};

static void hpet_dev_reset(void *dev)
{
    struct hpet *h = dev;
    pthread_mutex_lock(&h->lock);
    hpet_reset_locked(h);
    pthread_mutex_unlock(&h->lock);
}

static int hpet_dev_save(void *dev, GByteArray *out)
{
    struct hpet *h = dev;
    pthread_mutex_lock(&h->lock);
    h->st.saved_now_ns = timerq_now_ns(h->q);
    int r = vmstate_save(&hpet_vmstate, &h->st, out);
    pthread_mutex_unlock(&h->lock);
    return r;
}

static int hpet_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct hpet *h = dev;
    pthread_mutex_lock(&h->lock);
    int32_t held[HPET_NUM_TIMERS];
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        held[i] = h->st.t[i].asserted;
    }
    int r = vmstate_load(&hpet_vmstate, &h->st, buf, len, NULL);
    if (r == 0) {
        uint64_t now = timerq_now_ns(h->q);
        /* Rebase on our clock (modular, like the elapsed-time arithmetic). */
        h->st.base_ns = now - (h->st.saved_now_ns - h->st.base_ns);
        for (int i = 0; i < HPET_NUM_TIMERS; i++) {
            /* Re-drive lines from what we really hold to what the stream says. */
            h->st.t[i].asserted = held[i];
            hpet_update_level(h, i);
            hpet_arm(h, i, now);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}

const struct device_ops hpet_device_ops = {
    .name = "hpet",
    .reset = hpet_dev_reset,
    .save = hpet_dev_save,
    .load = hpet_dev_load,
};
