/* Local APIC (Intel SDM vol. 3A chapter 10 "Advanced Programmable Interrupt
 * Controller (APIC)"; section numbers below are from that chapter).
 *
 * Known simplifications: no CMCI/thermal/performance sources (their LVTs are
 * storage only), no EOI-broadcast suppression, INIT to the BSP resets its APIC
 * registers but does not restart the CPU, and lowest-priority arbitration is the
 * machine's job (lapic_get_ppr helps it). */
#include "devices/pc/lapic.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "hostdrv/accel.h"
#include "snapshot/vmstate.h"

#define TAG "dev.lapic"

#define NS_PER_SEC 1000000000ull
/* A periodic timer faster than this is coalesced (KVM uses a similar floor). */
#define LAPIC_MIN_PERIOD_NS 100000

enum lapic_lvt_index {
    LVT_TIMER = 0,
    LVT_THERMAL,
    LVT_PERF,
    LVT_LINT0,
    LVT_LINT1,
    LVT_ERROR,
    LVT_COUNT,
};

#define LVT_MASKED (1u << 16)
#define LVT_LEVEL (1u << 15)
#define LVT_TIMER_MODE_SHIFT 17
#define LVT_TIMER_ONESHOT 0
#define LVT_TIMER_PERIODIC 1
#define LVT_TIMER_TSC_DEADLINE 2

#define SVR_ENABLE (1u << 8)

/* ESR bits (10.5.3). */
#define ESR_SEND_ILLEGAL_VECTOR (1u << 5)
#define ESR_RECV_ILLEGAL_VECTOR (1u << 6)
#define ESR_ILLEGAL_REGISTER (1u << 7)

/* ICR fields (10.6.1). */
#define ICR_DEST_LOGICAL (1u << 11)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_TRIGGER_LEVEL (1u << 15)
#define ICR_WRITABLE 0x000ccfffu

enum lapic_run_state {
    LAPIC_RS_RUN = 0,       /* executing */
    LAPIC_RS_WAIT_INIT,     /* AP after power-on: waits for INIT (SIPIs ignored) */
    LAPIC_RS_WAIT_SIPI,     /* INIT received, waits for SIPI */
    LAPIC_RS_SIPI_RECEIVED, /* SIPI arrived; the engine picks it up */
};

/* Writable bits of each LVT (10.5.1, figure 10-8). */
static const uint32_t lvt_writable[LVT_COUNT] = {
    [LVT_TIMER] = 0x000700ff, [LVT_THERMAL] = 0x000107ff, [LVT_PERF] = 0x000107ff,
    [LVT_LINT0] = 0x0001a7ff, [LVT_LINT1] = 0x0001a7ff,   [LVT_ERROR] = 0x000100ff,
};

struct lapic_state {
    uint32_t id;             /* APIC ID (10.4.6); xAPIC shows it in bits 31:24 */
    uint64_t apic_base;      /* IA32_APIC_BASE MSR (10.4.4) */
    uint32_t tpr;            /* Task Priority Register (10.8.3.1) */
    uint32_t ldr;            /* Logical Destination Register (10.6.2.2) */
    uint32_t dfr;            /* Destination Format Register (10.6.2.2), xAPIC only */
    uint32_t svr;            /* Spurious-Interrupt Vector Register (10.9) */
    uint32_t isr[8];         /* In-Service Register, 256 bits (10.8.4) */
    uint32_t tmr[8];         /* Trigger Mode Register, 256 bits (10.8.4) */
    uint32_t irr[8];         /* Interrupt Request Register, 256 bits (10.8.4) */
    uint32_t esr;            /* Error Status Register as last latched (10.5.3) */
    uint32_t esr_pending;    /* errors since the last ESR write */
    uint32_t icr_lo;         /* Interrupt Command Register bits 31:0 (10.6.1) */
    uint32_t icr_hi;         /* ICR bits 63:32: destination */
    uint32_t lvt[LVT_COUNT]; /* Local Vector Table (10.5.1) */
    uint32_t timer_initial;  /* Initial Count Register (10.5.4) */
    uint32_t timer_dcr;      /* Divide Configuration Register (10.5.4) */
    uint64_t timer_start_ns; /* timerq time the count was (re)loaded */
    uint64_t tsc_deadline;   /* IA32_TSC_DEADLINE (10.5.4.1) */
    int64_t tsc_offset;      /* guest TSC minus scaled timerq clock */
    uint8_t run_state;       /* INIT/SIPI state (8.4 MP initialization) */
    uint8_t sipi_vector;     /* vector of the SIPI that ended the wait */
    bool nmi_pending;        /* NMI accepted, not yet taken by the CPU */
    bool extint_msg;         /* ExtINT message received (IOAPIC virtual wire) */
    uint8_t lint_level;      /* LINT0 (bit 0) and LINT1 (bit 1) pin levels */
    uint64_t saved_now_ns;   /* timerq clock at save, to rebase timestamps */
};

struct lapic {
    pthread_mutex_t lock;
    struct lapic_state st;
    struct timerq *q;
    struct timer *timer;
    struct lapic_callbacks cb;
    uint64_t tsc_hz;
    bool bsp;
};

/* Calls collected under the lock and made after it is dropped. */
struct lapic_calls {
    bool kick;
    int eoi_vector; /* -1: none */
    bool ipi;
    uint32_t ipi_dest;
    uint8_t ipi_shorthand;
    bool ipi_logical;
    uint8_t ipi_mode;
    uint8_t ipi_vector;
    bool ipi_level;
};

#define LAPIC_CALLS_INIT                                                                           \
    {                                                                                              \
        .eoi_vector = -1                                                                           \
    }

static void lapic_unlock_call(struct lapic *l, struct lapic_calls *c)
{
    pthread_mutex_unlock(&l->lock);
    if (c->eoi_vector >= 0 && l->cb.eoi) {
        l->cb.eoi(l->cb.opaque, (uint8_t)c->eoi_vector);
    }
    if (c->ipi && l->cb.send_ipi) {
        l->cb.send_ipi(l->cb.opaque, c->ipi_dest, c->ipi_shorthand, c->ipi_logical, c->ipi_mode,
                       c->ipi_vector, c->ipi_level);
    }
    if (c->kick && l->cb.kick) {
        l->cb.kick(l->cb.opaque);
    }
}

static bool lapic_hw_enabled(const struct lapic_state *s)
{
    return s->apic_base & LAPIC_BASE_EN;
}

static bool lapic_x2apic(const struct lapic_state *s)
{
    return (s->apic_base & (LAPIC_BASE_EN | LAPIC_BASE_EXTD)) == (LAPIC_BASE_EN | LAPIC_BASE_EXTD);
}

static int vec_highest(const uint32_t *bits)
{
    for (int i = 7; i >= 0; i--) {
        if (bits[i]) {
            return i * 32 + 31 - __builtin_clz(bits[i]);
        }
    }
    return -1;
}

static void vec_set(uint32_t *bits, int v)
{
    bits[v >> 5] |= 1u << (v & 31);
}

static void vec_clear(uint32_t *bits, int v)
{
    bits[v >> 5] &= ~(1u << (v & 31));
}

static bool vec_test(const uint32_t *bits, int v)
{
    return bits[v >> 5] & (1u << (v & 31));
}

/* 10.8.3.1: PPR is TPR or the in-service class, whichever is higher. */
static uint8_t lapic_ppr(const struct lapic_state *s)
{
    int isrv = vec_highest(s->isr);
    uint8_t tpr = s->tpr & 0xff;
    if (isrv < 0 || (tpr >> 4) >= (isrv >> 4)) {
        return tpr;
    }
    return isrv & 0xf0;
}

/* 10.8.3: the highest IRR vector whose class is above the PPR class, or -1. */
static int lapic_deliverable(const struct lapic_state *s)
{
    if (!lapic_hw_enabled(s)) {
        return -1;
    }
    int v = vec_highest(s->irr);
    if (v < 0 || (v & 0xf0) <= (lapic_ppr(s) & 0xf0)) {
        return -1;
    }
    return v;
}

/* PIC interrupts reach the CPU: APIC globally off (LINT0 is then the INTR pin),
 * LINT0 unmasked in ExtINT mode (virtual wire), or an ExtINT message arrived. */
static bool lapic_extint_path(const struct lapic_state *s)
{
    if (!lapic_hw_enabled(s) || s->extint_msg) {
        return true;
    }
    uint32_t lint0 = s->lvt[LVT_LINT0];
    return !(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == LAPIC_DM_EXTINT;
}

static void lapic_accept(struct lapic *l, struct lapic_calls *c, uint8_t mode, uint8_t vector,
                         bool level);

static void lapic_error(struct lapic *l, struct lapic_calls *c, uint32_t bit)
{
    struct lapic_state *s = &l->st;
    s->esr_pending |= bit;
    uint32_t lvt = s->lvt[LVT_ERROR];
    if (!(lvt & LVT_MASKED) && (lvt & 0xff) >= 16) {
        lapic_accept(l, c, LAPIC_DM_FIXED, lvt & 0xff, false);
    }
}

/* Register state after RESET (all) or INIT (all but ID and APIC base), 10.4.7.1. */
static void lapic_reset_regs(struct lapic *l)
{
    struct lapic_state *s = &l->st;
    s->tpr = 0;
    s->ldr = 0;
    s->dfr = 0xffffffff;
    s->svr = 0xff;
    memset(s->isr, 0, sizeof(s->isr));
    memset(s->tmr, 0, sizeof(s->tmr));
    memset(s->irr, 0, sizeof(s->irr));
    s->esr = 0;
    s->esr_pending = 0;
    s->icr_lo = 0;
    s->icr_hi = 0;
    for (int i = 0; i < LVT_COUNT; i++) {
        s->lvt[i] = LVT_MASKED;
    }
    s->timer_initial = 0;
    s->timer_dcr = 0;
    s->timer_start_ns = 0;
    s->tsc_deadline = 0;
    s->nmi_pending = false;
    s->extint_msg = false;
    if (lapic_x2apic(s)) {
        s->ldr = ((s->id & 0xffff0) << 12) | (1u << (s->id & 0xf));
    }
    if (l->timer) {
        timer_del(l->timer);
    }
}

static void lapic_power_on(struct lapic *l)
{
    struct lapic_state *s = &l->st;
    s->apic_base = LAPIC_DEFAULT_BASE | LAPIC_BASE_EN | (l->bsp ? LAPIC_BASE_BSP : 0);
    lapic_reset_regs(l);
    if (l->bsp) {
        /* As firmware leaves it (and QEMU models at reset): the PIC reaches the BSP
         * through LINT0 in virtual wire mode. */
        s->lvt[LVT_LINT0] = LAPIC_DM_EXTINT << 8;
    }
    s->run_state = l->bsp ? LAPIC_RS_RUN : LAPIC_RS_WAIT_INIT;
    s->sipi_vector = 0;
    s->tsc_offset = 0;
}

/* ---- timer (10.5.4) ---- */

static uint32_t lapic_timer_divisor(const struct lapic_state *s)
{
    uint32_t v = ((s->timer_dcr >> 1) & 4) | (s->timer_dcr & 3);
    return v == 7 ? 1 : 2u << v;
}

static unsigned lapic_timer_mode(const struct lapic_state *s)
{
    return (s->lvt[LVT_TIMER] >> LVT_TIMER_MODE_SHIFT) & 3;
}

static uint64_t lapic_tick_ns(const struct lapic_state *s)
{
    return (uint64_t)lapic_timer_divisor(s) * (NS_PER_SEC / LAPIC_BUS_HZ);
}

static uint32_t lapic_timer_current(const struct lapic_state *s, uint64_t now)
{
    if (s->timer_initial == 0 || lapic_timer_mode(s) == LVT_TIMER_TSC_DEADLINE) {
        return 0;
    }
    uint64_t elapsed = (now - s->timer_start_ns) / lapic_tick_ns(s);
    if (lapic_timer_mode(s) == LVT_TIMER_PERIODIC) {
        return s->timer_initial - (uint32_t)(elapsed % s->timer_initial);
    }
    return elapsed >= s->timer_initial ? 0 : s->timer_initial - (uint32_t)elapsed;
}

static uint64_t lapic_tsc_to_ns(struct lapic *l, uint64_t tsc)
{
    int64_t off = l->st.tsc_offset;
    uint64_t t;
    if (off >= 0) {
        if (tsc <= (uint64_t)off) {
            return 0;
        }
        t = tsc - (uint64_t)off;
    } else {
        t = tsc + (0 - (uint64_t)off);
    }
    return (uint64_t)(((unsigned __int128)t * NS_PER_SEC + l->tsc_hz - 1) / l->tsc_hz);
}

static void lapic_timer_fire(struct lapic *l, struct lapic_calls *c)
{
    uint32_t lvt = l->st.lvt[LVT_TIMER];
    if (!(lvt & LVT_MASKED)) {
        lapic_accept(l, c, LAPIC_DM_FIXED, lvt & 0xff, false);
    }
}

/* Arm the host timer; a deadline already passed fires here. */
static void lapic_timer_arm(struct lapic *l, struct lapic_calls *c, uint64_t now)
{
    struct lapic_state *s = &l->st;
    if (lapic_timer_mode(s) == LVT_TIMER_TSC_DEADLINE) {
        if (!s->tsc_deadline) {
            timer_del(l->timer);
            return;
        }
        uint64_t when = lapic_tsc_to_ns(l, s->tsc_deadline);
        if (when <= now) {
            timer_del(l->timer);
            s->tsc_deadline = 0;
            lapic_timer_fire(l, c);
            return;
        }
        timer_mod(l->timer, when);
        return;
    }
    if (s->timer_initial == 0) {
        timer_del(l->timer);
        return;
    }
    uint64_t tick = lapic_tick_ns(s);
    uint64_t period_ns = (uint64_t)s->timer_initial * tick;
    uint64_t elapsed = now - s->timer_start_ns;
    if (lapic_timer_mode(s) == LVT_TIMER_PERIODIC) {
        uint64_t when = s->timer_start_ns + (elapsed / period_ns + 1) * period_ns;
        if (period_ns < LAPIC_MIN_PERIOD_NS && when < now + LAPIC_MIN_PERIOD_NS) {
            when = now + LAPIC_MIN_PERIOD_NS;
        }
        timer_mod(l->timer, when);
    } else if (elapsed < period_ns) {
        timer_mod(l->timer, s->timer_start_ns + period_ns);
    } else {
        timer_del(l->timer);
    }
}

static void lapic_timer_cb(void *opaque)
{
    struct lapic *l = opaque;
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    struct lapic_state *s = &l->st;
    uint64_t now = timerq_now_ns(l->q);
    switch (lapic_timer_mode(s)) {
    case LVT_TIMER_TSC_DEADLINE:
        lapic_timer_arm(l, &c, now); /* fires when due, re-arms when early */
        break;
    case LVT_TIMER_PERIODIC:
        if (s->timer_initial) {
            lapic_timer_fire(l, &c);
            lapic_timer_arm(l, &c, now);
        }
        break;
    case LVT_TIMER_ONESHOT:
        if (s->timer_initial) {
            uint64_t end = s->timer_start_ns + (uint64_t)s->timer_initial * lapic_tick_ns(s);
            if (now >= end) {
                lapic_timer_fire(l, &c);
            } else {
                lapic_timer_arm(l, &c, now);
            }
        }
        break;
    default: /* reserved mode 3: the timer does not run */
        break;
    }
    lapic_unlock_call(l, &c);
}

/* ---- interrupt acceptance (10.6, 10.8) ---- */

static void lapic_do_init(struct lapic *l)
{
    lapic_reset_regs(l);
    if (!l->bsp) {
        l->st.run_state = LAPIC_RS_WAIT_SIPI;
    }
}

static void lapic_accept(struct lapic *l, struct lapic_calls *c, uint8_t mode, uint8_t vector,
                         bool level)
{
    struct lapic_state *s = &l->st;
    switch (mode) {
    case LAPIC_DM_FIXED:
    case LAPIC_DM_LOWEST:
        if (!lapic_hw_enabled(s) || !(s->svr & SVR_ENABLE)) {
            return; /* a disabled APIC does not accept fixed interrupts */
        }
        if (vector < 16) {
            lapic_error(l, c, ESR_RECV_ILLEGAL_VECTOR);
            return;
        }
        vec_set(s->irr, vector);
        if (level) {
            vec_set(s->tmr, vector);
        } else {
            vec_clear(s->tmr, vector);
        }
        c->kick = true;
        break;
    case LAPIC_DM_NMI:
        s->nmi_pending = true;
        c->kick = true;
        break;
    case LAPIC_DM_INIT:
        lapic_do_init(l);
        c->kick = true;
        break;
    case LAPIC_DM_SIPI:
        if (s->run_state == LAPIC_RS_WAIT_SIPI) {
            s->sipi_vector = vector;
            s->run_state = LAPIC_RS_SIPI_RECEIVED;
            c->kick = true;
        }
        break;
    case LAPIC_DM_EXTINT:
        s->extint_msg = true;
        c->kick = true;
        break;
    default:
        log_debug(TAG, "delivery mode %u ignored", mode);
        break;
    }
}

static void lapic_send_icr(struct lapic *l, struct lapic_calls *c)
{
    struct lapic_state *s = &l->st;
    uint32_t lo = s->icr_lo;
    uint8_t mode = (lo >> 8) & 7;
    uint8_t vector = lo & 0xff;
    uint8_t sh = (lo >> 18) & 3;
    bool trig = lo & ICR_TRIGGER_LEVEL;
    if (mode == LAPIC_DM_INIT && trig && !(lo & ICR_LEVEL_ASSERT)) {
        return; /* INIT level de-assert: only synchronizes arbitration IDs */
    }
    if ((mode == LAPIC_DM_FIXED || mode == LAPIC_DM_LOWEST) && vector < 16) {
        lapic_error(l, c, ESR_SEND_ILLEGAL_VECTOR);
        return;
    }
    if (sh == LAPIC_SH_SELF) {
        lapic_accept(l, c, mode, vector, trig);
        return;
    }
    c->ipi = true;
    c->ipi_dest = lapic_x2apic(s) ? s->icr_hi : s->icr_hi >> 24;
    c->ipi_shorthand = sh;
    c->ipi_logical = lo & ICR_DEST_LOGICAL;
    c->ipi_mode = mode;
    c->ipi_vector = vector;
    c->ipi_level = trig;
}

static void lapic_eoi_locked(struct lapic *l, struct lapic_calls *c)
{
    struct lapic_state *s = &l->st;
    int v = vec_highest(s->isr);
    if (v < 0) {
        return;
    }
    vec_clear(s->isr, v);
    if (vec_test(s->tmr, v)) {
        c->eoi_vector = v;
    }
}

/* ---- register access ---- */

static uint32_t lapic_read_locked(struct lapic *l, uint32_t off)
{
    struct lapic_state *s = &l->st;
    if (off >= LAPIC_MMIO_SIZE || (off & 0xf)) {
        return 0;
    }
    bool x2 = lapic_x2apic(s);
    switch (off) {
    case LAPIC_REG_ID:
        return x2 ? s->id : s->id << 24;
    case LAPIC_REG_VERSION:
        return LAPIC_VERSION;
    case LAPIC_REG_TPR:
        return s->tpr;
    case LAPIC_REG_PPR:
        return lapic_ppr(s);
    case LAPIC_REG_LDR:
        return s->ldr;
    case LAPIC_REG_DFR:
        return x2 ? 0 : s->dfr;
    case LAPIC_REG_SVR:
        return s->svr;
    case LAPIC_REG_ESR:
        return s->esr;
    case LAPIC_REG_ICR_LO:
        return s->icr_lo;
    case LAPIC_REG_ICR_HI:
        return s->icr_hi;
    case LAPIC_REG_TIMER_ICR:
        return s->timer_initial;
    case LAPIC_REG_TIMER_CCR:
        return lapic_timer_current(s, timerq_now_ns(l->q));
    case LAPIC_REG_TIMER_DCR:
        return s->timer_dcr;
    default:
        break;
    }
    if (off >= LAPIC_REG_ISR && off < LAPIC_REG_ISR + 0x80) {
        return s->isr[(off - LAPIC_REG_ISR) >> 4];
    }
    if (off >= LAPIC_REG_TMR && off < LAPIC_REG_TMR + 0x80) {
        return s->tmr[(off - LAPIC_REG_TMR) >> 4];
    }
    if (off >= LAPIC_REG_IRR && off < LAPIC_REG_IRR + 0x80) {
        return s->irr[(off - LAPIC_REG_IRR) >> 4];
    }
    if (off >= LAPIC_REG_LVT_TIMER && off <= LAPIC_REG_LVT_ERROR) {
        return s->lvt[(off - LAPIC_REG_LVT_TIMER) >> 4];
    }
    return 0; /* APR, RRD, EOI (write-only) and reserved */
}

static void lapic_write_lvt(struct lapic *l, struct lapic_calls *c, int idx, uint32_t val,
                            uint64_t now)
{
    struct lapic_state *s = &l->st;
    uint32_t v = val & lvt_writable[idx];
    if (!(s->svr & SVR_ENABLE)) {
        v |= LVT_MASKED; /* 10.4.7.2: LVT mask bits stay set while software-disabled */
    }
    if (idx == LVT_LINT0 || idx == LVT_LINT1) {
        v |= s->lvt[idx] & (1u << 14); /* remote IRR is read-only */
    }
    uint32_t old = s->lvt[idx];
    s->lvt[idx] = v;
    if (idx == LVT_TIMER) {
        unsigned om = (old >> LVT_TIMER_MODE_SHIFT) & 3, nm = (v >> LVT_TIMER_MODE_SHIFT) & 3;
        if (om != nm) {
            /* 10.5.4.1: switching modes disarms the timer. */
            s->timer_initial = 0;
            s->tsc_deadline = 0;
            timer_del(l->timer);
        }
    }
    if (idx == LVT_LINT0 && lapic_extint_path(s)) {
        c->kick = true; /* the PIC may be pending already */
    }
}

static void lapic_write_locked(struct lapic *l, struct lapic_calls *c, uint32_t off, uint32_t val)
{
    struct lapic_state *s = &l->st;
    if (off >= LAPIC_MMIO_SIZE || (off & 0xf)) {
        return;
    }
    bool x2 = lapic_x2apic(s);
    uint64_t now = timerq_now_ns(l->q);
    switch (off) {
    case LAPIC_REG_ID:
        if (!x2) {
            s->id = val >> 24; /* read-only in x2APIC mode */
        }
        return;
    case LAPIC_REG_TPR:
        s->tpr = val & 0xff;
        return;
    case LAPIC_REG_EOI:
        lapic_eoi_locked(l, c);
        return;
    case LAPIC_REG_LDR:
        if (!x2) {
            s->ldr = val & 0xff000000u;
        }
        return;
    case LAPIC_REG_DFR:
        if (!x2) {
            s->dfr = val | 0x0fffffffu;
        }
        return;
    case LAPIC_REG_SVR:
        s->svr = val & 0x3ff;
        if (!(s->svr & SVR_ENABLE)) {
            for (int i = 0; i < LVT_COUNT; i++) {
                s->lvt[i] |= LVT_MASKED;
            }
        }
        return;
    case LAPIC_REG_ESR:
        s->esr = s->esr_pending;
        s->esr_pending = 0;
        return;
    case LAPIC_REG_ICR_LO:
        s->icr_lo = val & ICR_WRITABLE;
        lapic_send_icr(l, c);
        return;
    case LAPIC_REG_ICR_HI:
        s->icr_hi = x2 ? val : val & 0xff000000u;
        return;
    case LAPIC_REG_TIMER_ICR:
        if (lapic_timer_mode(s) == LVT_TIMER_TSC_DEADLINE) {
            return; /* ignored in TSC-deadline mode */
        }
        s->timer_initial = val;
        s->timer_start_ns = now;
        lapic_timer_arm(l, c, now);
        return;
    case LAPIC_REG_TIMER_DCR: {
        /* Keep the current count across the change (the SDM leaves it undefined). */
        uint32_t cur = lapic_timer_current(s, now);
        s->timer_dcr = val & 0xb;
        if (s->timer_initial && cur && lapic_timer_mode(s) != LVT_TIMER_TSC_DEADLINE) {
            uint64_t done = (uint64_t)(s->timer_initial - cur) * lapic_tick_ns(s);
            s->timer_start_ns = now - done;
            lapic_timer_arm(l, c, now);
        }
        return;
    }
    case LAPIC_REG_SELF_IPI:
        if (x2) {
            lapic_accept(l, c, LAPIC_DM_FIXED, val & 0xff, false);
        }
        return;
    default:
        break;
    }
    if (off >= LAPIC_REG_LVT_TIMER && off <= LAPIC_REG_LVT_ERROR) {
        lapic_write_lvt(l, c, (off - LAPIC_REG_LVT_TIMER) >> 4, val, now);
        return;
    }
    /* Version, PPR, ISR/TMR/IRR, current count and reserved offsets are read-only. */
}

uint32_t lapic_read(struct lapic *l, uint32_t offset)
{
    pthread_mutex_lock(&l->lock);
    uint32_t r = lapic_read_locked(l, offset);
    pthread_mutex_unlock(&l->lock);
    return r;
}

void lapic_write(struct lapic *l, uint32_t offset, uint32_t val)
{
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    lapic_write_locked(l, &c, offset, val);
    lapic_unlock_call(l, &c);
}

void lapic_write_icr64(struct lapic *l, uint64_t val)
{
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    uint32_t hi = (uint32_t)(val >> 32);
    l->st.icr_hi = lapic_x2apic(&l->st) ? hi : hi & 0xff000000u;
    l->st.icr_lo = (uint32_t)val & ICR_WRITABLE;
    lapic_send_icr(l, &c);
    lapic_unlock_call(l, &c);
}

uint64_t lapic_get_base(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t r = l->st.apic_base;
    pthread_mutex_unlock(&l->lock);
    return r;
}

int lapic_set_base(struct lapic *l, uint64_t val)
{
    /* Bits 0-7, 9 and above the 36-bit physical address width are reserved. */
    const uint64_t reserved = 0x2ffull | ~((1ull << 36) - 1);
    if (val & reserved) {
        return -EINVAL;
    }
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    struct lapic_state *s = &l->st;
    uint64_t old = s->apic_base;
    bool en = val & LAPIC_BASE_EN, x2 = val & LAPIC_BASE_EXTD;
    bool old_x2 = lapic_x2apic(s);
    /* 10.12.5: x2APIC needs enable; x2APIC -> xAPIC must go through disabled. */
    if ((x2 && !en) || (old_x2 && en && !x2)) {
        pthread_mutex_unlock(&l->lock);
        return -EINVAL;
    }
    s->apic_base = (val & ~LAPIC_BASE_BSP) | (old & LAPIC_BASE_BSP);
    if ((old & LAPIC_BASE_EN) && !en) {
        /* Globally disabled: software-disabled too; re-enable starts from reset. */
        lapic_reset_regs(l);
        c.kick = true; /* LINT0 now passes the PIC through */
    } else if (!(old & LAPIC_BASE_EN) && en) {
        lapic_reset_regs(l);
    }
    if (x2 && !old_x2) {
        s->ldr = ((s->id & 0xffff0) << 12) | (1u << (s->id & 0xf));
    }
    lapic_unlock_call(l, &c);
    return 0;
}

bool lapic_is_x2apic(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    bool r = lapic_x2apic(&l->st);
    pthread_mutex_unlock(&l->lock);
    return r;
}

uint32_t lapic_get_id(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint32_t r = l->st.id;
    pthread_mutex_unlock(&l->lock);
    return r;
}

uint64_t lapic_get_tsc_deadline(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t r = l->st.tsc_deadline;
    pthread_mutex_unlock(&l->lock);
    return r;
}

void lapic_set_tsc_deadline(struct lapic *l, uint64_t tsc)
{
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    if (lapic_timer_mode(&l->st) == LVT_TIMER_TSC_DEADLINE) {
        l->st.tsc_deadline = tsc;
        lapic_timer_arm(l, &c, timerq_now_ns(l->q));
    }
    lapic_unlock_call(l, &c);
}

void lapic_set_tsc_offset(struct lapic *l, int64_t offset)
{
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    l->st.tsc_offset = offset;
    if (lapic_timer_mode(&l->st) == LVT_TIMER_TSC_DEADLINE) {
        lapic_timer_arm(l, &c, timerq_now_ns(l->q));
    }
    lapic_unlock_call(l, &c);
}

bool lapic_has_intr(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    bool apic = lapic_deliverable(&l->st) >= 0;
    bool extint = !apic && lapic_extint_path(&l->st);
    pthread_mutex_unlock(&l->lock);
    if (apic) {
        return true;
    }
    return extint && l->cb.extint_pending && l->cb.extint_pending(l->cb.opaque);
}

int lapic_ack(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    struct lapic_state *s = &l->st;
    int v = lapic_deliverable(s);
    if (v >= 0) {
        vec_clear(s->irr, v);
        vec_set(s->isr, v);
        pthread_mutex_unlock(&l->lock);
        return v;
    }
    bool extint = lapic_extint_path(s);
    s->extint_msg = false;
    pthread_mutex_unlock(&l->lock);
    /* The PIC's own spurious vector is for a request that vanished mid-INTA; one
     * that vanished before the ack is reported as "went away" (-1). */
    if (extint && l->cb.extint_ack &&
        (!l->cb.extint_pending || l->cb.extint_pending(l->cb.opaque))) {
        return l->cb.extint_ack(l->cb.opaque);
    }
    return -1;
}

bool lapic_nmi_pending(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    bool r = l->st.nmi_pending;
    pthread_mutex_unlock(&l->lock);
    return r;
}

void lapic_nmi_ack(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    l->st.nmi_pending = false;
    pthread_mutex_unlock(&l->lock);
}

bool lapic_wait_for_sipi(struct lapic *l, uint8_t *vector)
{
    pthread_mutex_lock(&l->lock);
    struct lapic_state *s = &l->st;
    bool r = false;
    switch (s->run_state) {
    case LAPIC_RS_WAIT_INIT:
    case LAPIC_RS_WAIT_SIPI:
        r = true;
        break;
    case LAPIC_RS_SIPI_RECEIVED:
        if (vector) {
            *vector = s->sipi_vector;
        }
        s->run_state = LAPIC_RS_RUN;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&l->lock);
    return r;
}

void lapic_deliver(struct lapic *l, uint8_t delivery_mode, uint8_t vector, bool level)
{
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    lapic_accept(l, &c, delivery_mode & 7, vector, level);
    lapic_unlock_call(l, &c);
}

void lapic_set_lint(struct lapic *l, int pin, int level)
{
    if (pin < 0 || pin > 1) {
        return;
    }
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    struct lapic_state *s = &l->st;
    bool was = s->lint_level & (1u << pin);
    bool rising = level && !was;
    if (level) {
        s->lint_level |= 1u << pin;
    } else {
        s->lint_level &= ~(1u << pin);
    }
    if (!lapic_hw_enabled(s)) {
        /* 10.4.3: a globally disabled APIC passes LINT0 as INTR and LINT1 as NMI. */
        if (pin == 0 && level) {
            c.kick = true;
        } else if (pin == 1 && rising) {
            s->nmi_pending = true;
            c.kick = true;
        }
    } else {
        uint32_t lvt = s->lvt[LVT_LINT0 + pin];
        if (!(lvt & LVT_MASKED)) {
            uint8_t mode = (lvt >> 8) & 7;
            if (mode == LAPIC_DM_EXTINT) {
                if (level) {
                    c.kick = true;
                }
            } else if (rising) {
                lapic_accept(l, &c, mode, lvt & 0xff, lvt & LVT_LEVEL);
            }
        }
    }
    lapic_unlock_call(l, &c);
}

bool lapic_match_dest(struct lapic *l, uint32_t dest, bool dest_logical)
{
    pthread_mutex_lock(&l->lock);
    struct lapic_state *s = &l->st;
    bool r = false;
    if (!lapic_hw_enabled(s)) {
        r = false;
    } else if (lapic_x2apic(s)) {
        if (dest == 0xffffffffu) {
            r = true;
        } else if (!dest_logical) {
            r = dest == s->id;
        } else {
            /* 10.12.10.2: cluster ID in 31:16, bitmap in 15:0. */
            r = (dest >> 16) == (s->ldr >> 16) && (dest & s->ldr & 0xffff);
        }
    } else {
        uint8_t d = dest & 0xff;
        if (d == 0xff) {
            r = true;
        } else if (!dest_logical) {
            r = d == (s->id & 0xff);
        } else if ((s->dfr >> 28) == 0xf) {
            r = (d & (s->ldr >> 24)) != 0; /* flat model */
        } else {
            uint8_t ld = s->ldr >> 24; /* cluster model: cluster 7:4, members 3:0 */
            r = (d >> 4) == (ld >> 4) && (d & ld & 0xf);
        }
    }
    pthread_mutex_unlock(&l->lock);
    return r;
}

uint8_t lapic_get_ppr(struct lapic *l)
{
    pthread_mutex_lock(&l->lock);
    uint8_t r = lapic_ppr(&l->st);
    pthread_mutex_unlock(&l->lock);
    return r;
}

/* ---- accel_intc adapters ---- */

static bool intc_intr_pending(void *o)
{
    return lapic_has_intr(o);
}

static int intc_intr_ack(void *o)
{
    return lapic_ack(o);
}

static bool intc_nmi_pending(void *o)
{
    return lapic_nmi_pending(o);
}

static void intc_nmi_ack(void *o)
{
    lapic_nmi_ack(o);
}

static bool intc_wait_for_sipi(void *o, uint8_t *vector)
{
    return lapic_wait_for_sipi(o, vector);
}

static uint32_t intc_apic_read(void *o, uint32_t offset)
{
    return lapic_read(o, offset);
}

static void intc_apic_write(void *o, uint32_t offset, uint32_t val)
{
    lapic_write(o, offset, val);
}

static void intc_apic_base_write(void *o, uint64_t val)
{
    if (lapic_set_base(o, val) < 0) {
        log_debug(TAG, "illegal APIC base write 0x%llx ignored", (unsigned long long)val);
    }
}

static uint64_t intc_tsc_deadline_read(void *o)
{
    return lapic_get_tsc_deadline(o);
}

static void intc_tsc_deadline_write(void *o, uint64_t val)
{
    lapic_set_tsc_deadline(o, val);
}

void lapic_fill_intc(struct lapic *l, struct accel_intc *intc)
{
    memset(intc, 0, sizeof(*intc));
    intc->opaque = l;
    intc->intr_pending = intc_intr_pending;
    intc->intr_ack = intc_intr_ack;
    intc->nmi_pending = intc_nmi_pending;
    intc->nmi_ack = intc_nmi_ack;
    intc->wait_for_sipi = intc_wait_for_sipi;
    intc->apic_read = intc_apic_read;
    intc->apic_write = intc_apic_write;
    intc->apic_base_write = intc_apic_base_write;
    intc->tsc_deadline_read = intc_tsc_deadline_read;
    intc->tsc_deadline_write = intc_tsc_deadline_write;
}

/* ---- lifecycle, bus adapter ---- */

struct lapic *lapic_new(struct timerq *q, uint32_t apic_id, bool bsp, uint64_t tsc_hz,
                        const struct lapic_callbacks *cb)
{
    if (!tsc_hz) {
        return NULL;
    }
    struct lapic *l = calloc(1, sizeof(*l));
    if (!l) {
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->q = q;
    l->bsp = bsp;
    l->tsc_hz = tsc_hz;
    if (cb) {
        l->cb = *cb;
    }
    l->timer = timer_new(q, lapic_timer_cb, l);
    if (!l->timer) {
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
    }
    l->st.id = apic_id;
    lapic_power_on(l);
    return l;
}

void lapic_free(struct lapic *l)
{
    if (!l) {
        return;
    }
    timer_free(l->timer);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static uint64_t lapic_bus_read(void *opaque, uint64_t off, unsigned size)
{
    struct lapic *l = opaque;
    if (off >= LAPIC_MMIO_SIZE || lapic_is_x2apic(l)) {
        return 0; /* 10.12.2: the xAPIC page is gone in x2APIC mode */
    }
    uint32_t v = lapic_read(l, off & ~0xfull);
    unsigned shift = (off & 3) * 8;
    if ((off & 0xf) >= 4 || (off & 3) + size > 4) {
        return 0;
    }
    return size >= 4 ? v : (v >> shift) & ((1u << (size * 8)) - 1);
}

static void lapic_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct lapic *l = opaque;
    if (off >= LAPIC_MMIO_SIZE || (off & 0xf) || size != 4 || lapic_is_x2apic(l)) {
        return; /* 10.4.1: registers are written with aligned 32-bit accesses only */
    }
    lapic_write(l, off, (uint32_t)val);
}

const struct bus_ops lapic_bus_ops = {.read = lapic_bus_read, .write = lapic_bus_write};

/* ---- state ---- */

static const struct vmstate_field lapic_fields[] = {
    VMSTATE_FIELD(struct lapic_state, id, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, apic_base, VMSTATE_U64),
    VMSTATE_FIELD(struct lapic_state, tpr, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, ldr, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, dfr, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, svr, VMSTATE_U32),
    VMSTATE_ARRAY(struct lapic_state, isr, VMSTATE_U32, 8),
    VMSTATE_ARRAY(struct lapic_state, tmr, VMSTATE_U32, 8),
    VMSTATE_ARRAY(struct lapic_state, irr, VMSTATE_U32, 8),
    VMSTATE_FIELD(struct lapic_state, esr, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, esr_pending, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, icr_lo, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, icr_hi, VMSTATE_U32),
    VMSTATE_ARRAY(struct lapic_state, lvt, VMSTATE_U32, LVT_COUNT),
    VMSTATE_FIELD(struct lapic_state, timer_initial, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, timer_dcr, VMSTATE_U32),
    VMSTATE_FIELD(struct lapic_state, timer_start_ns, VMSTATE_U64),
    VMSTATE_FIELD(struct lapic_state, tsc_deadline, VMSTATE_U64),
    VMSTATE_FIELD(struct lapic_state, tsc_offset, VMSTATE_I64),
    VMSTATE_FIELD(struct lapic_state, run_state, VMSTATE_U8),
    VMSTATE_FIELD(struct lapic_state, sipi_vector, VMSTATE_U8),
    VMSTATE_FIELD(struct lapic_state, nmi_pending, VMSTATE_BOOL),
    VMSTATE_FIELD(struct lapic_state, extint_msg, VMSTATE_BOOL),
    VMSTATE_FIELD(struct lapic_state, lint_level, VMSTATE_U8),
    VMSTATE_FIELD(struct lapic_state, saved_now_ns, VMSTATE_U64),
    VMSTATE_END,
};

static int lapic_post_load(void *scratch, int version_id)
{
    struct lapic_state *s = scratch;
    if (s->run_state > LAPIC_RS_SIPI_RECEIVED || s->lint_level > 3 || (s->timer_dcr & ~0xbu) ||
        ((s->apic_base & LAPIC_BASE_EXTD) && !(s->apic_base & LAPIC_BASE_EN))) {
        return -EINVAL;
    }
    return 0;
}

static const struct vmstate_desc lapic_vmstate = {
    .name = "lapic",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct lapic_state),
    .fields = lapic_fields,
    .post_load = lapic_post_load,
};

static void lapic_dev_reset(void *dev)
{
    struct lapic *l = dev;
    pthread_mutex_lock(&l->lock);
    lapic_power_on(l);
    pthread_mutex_unlock(&l->lock);
}

static int lapic_dev_save(void *dev, GByteArray *out)
{
    struct lapic *l = dev;
    pthread_mutex_lock(&l->lock);
    l->st.saved_now_ns = timerq_now_ns(l->q);
    int r = vmstate_save(&lapic_vmstate, &l->st, out);
    pthread_mutex_unlock(&l->lock);
    return r;
}

static int lapic_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct lapic *l = dev;
    struct lapic_calls c = LAPIC_CALLS_INIT;
    pthread_mutex_lock(&l->lock);
    int r = vmstate_load(&lapic_vmstate, &l->st, buf, len, NULL);
    if (r == 0) {
        uint64_t now = timerq_now_ns(l->q);
        l->st.timer_start_ns = now - (l->st.saved_now_ns - l->st.timer_start_ns);
        lapic_timer_arm(l, &c, now);
        c.kick = true;
    }
    lapic_unlock_call(l, &c);
    return r;
}

const struct device_ops lapic_device_ops = {
    .name = "lapic",
    .reset = lapic_dev_reset,
    .save = lapic_dev_save,
    .load = lapic_dev_load,
};
