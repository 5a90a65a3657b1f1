/* MC146818A RTC + CMOS. Register semantics follow the Motorola MC146818A data
 * sheet ("DS" below). Time registers are not stored while the clock runs: they
 * are computed on read from the guest wall clock, so they never drift from it. */
#include "devices/pc/rtc.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RTC_TAG "dev.rtc"

#define RTC_SEC 0x00
#define RTC_SEC_ALARM 0x01
#define RTC_MIN 0x02
#define RTC_MIN_ALARM 0x03
#define RTC_HOUR 0x04
#define RTC_HOUR_ALARM 0x05
#define RTC_WDAY 0x06
#define RTC_MDAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d

#define RTC_A_UIP 0x80
#define RTC_A_DV_MASK 0x70
#define RTC_A_DV_RUN 0x20 /* 32.768 kHz time base, divider running */
#define RTC_A_RS_MASK 0x0f

#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02

#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_AF 0x20
#define RTC_C_UF 0x10

#define RTC_D_VRT 0x80

#define NS_PER_SEC 1000000000ll
/* DS: UIP rises 244 us before the update cycle starts. */
#define RTC_UIP_NS 244000ll

struct rtc_state {
    uint8_t cmos[RTC_CMOS_SIZE]; /* CMOS RAM; regs 0x00-0x09 hold latched time while SET=1 */
    uint8_t index;               /* port 0x70 bits 0-6: selected register */
    bool nmi_masked;             /* port 0x70 bit 7: NMI disable */
    int64_t offset_ns;           /* guest wall clock minus host wall clock (DS: time base) */
};

struct rtc {
    pthread_mutex_t lock;   /* guards s and irq_level */
    struct irq_line irq;    /* IRQ# output, IRQ 8 on a PC */
    struct timerq *tq;      /* clock and timers */
    struct timer *periodic; /* periodic interrupt (reg A RS, reg B PIE) */
    struct timer *update;   /* once a second: update-ended and alarm */
    int64_t host_base_ns;   /* host UTC ns at timerq time 0 */
    int irq_level;          /* level last driven */
    struct rtc_state s;
};

static int64_t rtc_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int64_t rtc_guest_ns(struct rtc *r)
{
    int64_t ns = r->host_base_ns + (int64_t)timerq_now_ns(r->tq) + r->s.offset_ns;
    return ns < 0 ? 0 : ns;
}

/* Guest wall-clock time t (ns) on the timer queue's clock. */
static uint64_t rtc_guest_to_tq(struct rtc *r, int64_t t)
{
    int64_t v = t - r->host_base_ns - r->s.offset_ns;
    return v < 0 ? 0 : (uint64_t)v;
}

static bool rtc_binary(const struct rtc_state *s)
{
    return s->cmos[RTC_REG_B] & RTC_B_DM_BINARY;
}

static uint8_t rtc_to_reg(const struct rtc_state *s, int v)
{
    return rtc_binary(s) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int rtc_from_reg(const struct rtc_state *s, uint8_t v)
{
    return rtc_binary(s) ? v : (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_hour_to_reg(const struct rtc_state *s, int h)
{
    if (s->cmos[RTC_REG_B] & RTC_B_24H) {
        return rtc_to_reg(s, h);
    }
    int h12 = h % 12 == 0 ? 12 : h % 12;
    return rtc_to_reg(s, h12) | (h >= 12 ? 0x80 : 0);
}

static int rtc_hour_from_reg(const struct rtc_state *s, uint8_t v)
{
    if (s->cmos[RTC_REG_B] & RTC_B_24H) {
        return rtc_from_reg(s, v);
    }
    return rtc_from_reg(s, v & 0x7f) % 12 + ((v & 0x80) ? 12 : 0);
}

static void rtc_broken_down(struct rtc *r, struct tm *tm)
{
    time_t t = (time_t)(rtc_guest_ns(r) / NS_PER_SEC);
    gmtime_r(&t, tm);
}

/* The value a time register shows while the clock runs. */
static uint8_t rtc_time_reg(const struct rtc_state *s, const struct tm *tm, unsigned idx)
{
    switch (idx) {
    case RTC_SEC:
        return rtc_to_reg(s, tm->tm_sec);
    case RTC_MIN:
        return rtc_to_reg(s, tm->tm_min);
    case RTC_HOUR:
        return rtc_hour_to_reg(s, tm->tm_hour);
    case RTC_WDAY:
        return rtc_to_reg(s, tm->tm_wday + 1); /* DS: Sunday = 1 */
    case RTC_MDAY:
        return rtc_to_reg(s, tm->tm_mday);
    case RTC_MONTH:
        return rtc_to_reg(s, tm->tm_mon + 1);
    case RTC_YEAR:
        return rtc_to_reg(s, (tm->tm_year + 1900) % 100);
    case RTC_CMOS_CENTURY:
        return rtc_to_reg(s, (tm->tm_year + 1900) / 100);
    default:
        return s->cmos[idx];
    }
}

/* Registers that follow the running clock (the alarm registers are plain RAM). */
static bool rtc_is_time_reg(unsigned idx)
{
    return (idx <= RTC_YEAR && idx != RTC_SEC_ALARM && idx != RTC_MIN_ALARM &&
            idx != RTC_HOUR_ALARM) ||
           idx == RTC_CMOS_CENTURY;
}

/* Copy the running time into the registers (entering SET, or before a partial write). */
static void rtc_latch_time(struct rtc *r)
{
    struct tm tm;
    rtc_broken_down(r, &tm);
    static const unsigned regs[] = {RTC_SEC,  RTC_MIN,   RTC_HOUR, RTC_WDAY,
                                    RTC_MDAY, RTC_MONTH, RTC_YEAR, RTC_CMOS_CENTURY};
    for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        r->s.cmos[regs[i]] = rtc_time_reg(&r->s, &tm, regs[i]);
    }
}

/* Make the clock run from the registers' time (leaving SET, or after a write). */
static void rtc_commit_time(struct rtc *r)
{
    const struct rtc_state *s = &r->s;
    struct tm tm = {0};
    tm.tm_sec = rtc_from_reg(s, s->cmos[RTC_SEC]);
    tm.tm_min = rtc_from_reg(s, s->cmos[RTC_MIN]);
    tm.tm_hour = rtc_hour_from_reg(s, s->cmos[RTC_HOUR]);
    tm.tm_mday = rtc_from_reg(s, s->cmos[RTC_MDAY]);
    tm.tm_mon = rtc_from_reg(s, s->cmos[RTC_MONTH]) - 1;
    int century = rtc_from_reg(s, s->cmos[RTC_CMOS_CENTURY]);
    int year = rtc_from_reg(s, s->cmos[RTC_YEAR]) % 100;
    /* Garbage in the century byte must not produce an absurd clock. */
    if (century < 19 || century > 99) {
        century = year < 70 ? 20 : 19;
    }
    tm.tm_year = century * 100 + year - 1900;
    time_t t = timegm(&tm); /* normalizes out-of-range fields the guest may write */
    if (t == (time_t)-1) {
        log_warn(RTC_TAG, "guest wrote an unrepresentable date; clock unchanged");
        return;
    }
    int64_t host = r->host_base_ns + (int64_t)timerq_now_ns(r->tq);
    r->s.offset_ns = (int64_t)t * NS_PER_SEC - host;
}

static bool rtc_divider_running(const struct rtc_state *s)
{
    return (s->cmos[RTC_REG_A] & RTC_A_DV_MASK) == RTC_A_DV_RUN;
}

static void rtc_update_irq(struct rtc *r)
{
    struct rtc_state *s = &r->s;
    uint8_t c = s->cmos[RTC_REG_C] & (RTC_C_PF | RTC_C_AF | RTC_C_UF);
    if (c & s->cmos[RTC_REG_B] & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE)) {
        s->cmos[RTC_REG_C] |= RTC_C_IRQF;
    }
    int level = (s->cmos[RTC_REG_C] & RTC_C_IRQF) != 0;
    if (level != r->irq_level) {
        r->irq_level = level;
        irq_set(&r->irq, level);
    }
}

/* DS table 5: RS 1 and 2 repeat rates 8 and 9 on a 32.768 kHz base. */
static uint32_t rtc_periodic_hz(const struct rtc_state *s)
{
    unsigned rs = s->cmos[RTC_REG_A] & RTC_A_RS_MASK;
    if (rs == 0) {
        return 0;
    }
    if (rs < 3) {
        rs += 7;
    }
    return 32768u >> (rs - 1);
}

static void rtc_arm_periodic(struct rtc *r)
{
    uint32_t hz = rtc_periodic_hz(&r->s);
    /* PF is only produced while PIE is set: no host wake-ups for a disabled rate. */
    if (!hz || !(r->s.cmos[RTC_REG_B] & RTC_B_PIE) || !rtc_divider_running(&r->s)) {
        timer_del(r->periodic);
        return;
    }
    /* Ticks sit on a fixed grid of the queue clock, so they never drift. */
    unsigned __int128 now = timerq_now_ns(r->tq);
    unsigned __int128 tick = now * hz / NS_PER_SEC + 1;
    uint64_t deadline = (uint64_t)((tick * NS_PER_SEC + hz - 1) / hz);
    timer_mod(r->periodic, deadline);
}

static void rtc_arm_update(struct rtc *r)
{
    if ((r->s.cmos[RTC_REG_B] & RTC_B_SET) || !rtc_divider_running(&r->s)) {
        timer_del(r->update);
        return;
    }
    int64_t next = (rtc_guest_ns(r) / NS_PER_SEC + 1) * NS_PER_SEC;
    timer_mod(r->update, rtc_guest_to_tq(r, next));
}

static void rtc_periodic_cb(void *opaque)
{
    struct rtc *r = opaque;
    pthread_mutex_lock(&r->lock);
    r->s.cmos[RTC_REG_C] |= RTC_C_PF;
    rtc_update_irq(r);
    rtc_arm_periodic(r);
    pthread_mutex_unlock(&r->lock);
}

static bool rtc_alarm_match(uint8_t alarm, uint8_t now)
{
    return (alarm & 0xc0) == 0xc0 || alarm == now; /* DS: 11xxxxxx is "don't care" */
}

static void rtc_update_cb(void *opaque)
{
    struct rtc *r = opaque;
    pthread_mutex_lock(&r->lock);
    struct rtc_state *s = &r->s;
    if (!(s->cmos[RTC_REG_B] & RTC_B_SET) && rtc_divider_running(s)) {
        struct tm tm;
        rtc_broken_down(r, &tm);
        s->cmos[RTC_REG_C] |= RTC_C_UF;
        if (rtc_alarm_match(s->cmos[RTC_SEC_ALARM], rtc_time_reg(s, &tm, RTC_SEC)) &&
            rtc_alarm_match(s->cmos[RTC_MIN_ALARM], rtc_time_reg(s, &tm, RTC_MIN)) &&
            rtc_alarm_match(s->cmos[RTC_HOUR_ALARM], rtc_time_reg(s, &tm, RTC_HOUR))) {
            s->cmos[RTC_REG_C] |= RTC_C_AF;
        }
        rtc_update_irq(r);
    }
    rtc_arm_update(r);
    pthread_mutex_unlock(&r->lock);
}

static uint8_t rtc_data_read(struct rtc *r)
{
    struct rtc_state *s = &r->s;
    unsigned idx = s->index;
    bool set = s->cmos[RTC_REG_B] & RTC_B_SET;
    switch (idx) {
    case RTC_REG_A: {
        uint8_t v = s->cmos[RTC_REG_A] & ~RTC_A_UIP;
        if (!set && rtc_divider_running(s) &&
            rtc_guest_ns(r) % NS_PER_SEC >= NS_PER_SEC - RTC_UIP_NS) {
            v |= RTC_A_UIP;
        }
        return v;
    }
    case RTC_REG_C: {
        uint8_t v = s->cmos[RTC_REG_C];
        s->cmos[RTC_REG_C] = 0; /* DS: all flags clear on read, IRQ# goes inactive */
        rtc_update_irq(r);
        return v;
    }
    case RTC_REG_D:
        return RTC_D_VRT; /* battery good */
    default:
        if (rtc_is_time_reg(idx) && !set) {
            struct tm tm;
            rtc_broken_down(r, &tm);
            return rtc_time_reg(s, &tm, idx);
        }
        return s->cmos[idx];
    }
}

static void rtc_data_write(struct rtc *r, uint8_t val)
{
    struct rtc_state *s = &r->s;
    unsigned idx = s->index;
    switch (idx) {
    case RTC_REG_A:
        s->cmos[RTC_REG_A] = val & ~RTC_A_UIP;
        rtc_arm_periodic(r);
        rtc_arm_update(r);
        return;
    case RTC_REG_B: {
        uint8_t old = s->cmos[RTC_REG_B];
        if ((val & RTC_B_SET) && !(old & RTC_B_SET)) {
            rtc_latch_time(r);
            val &= ~RTC_B_UIE; /* DS: setting SET clears UIE */
        }
        s->cmos[RTC_REG_B] = val;
        if (!(val & RTC_B_SET) && (old & RTC_B_SET)) {
            rtc_commit_time(r);
        }
        rtc_update_irq(r);
        rtc_arm_periodic(r);
        rtc_arm_update(r);
        return;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        return; /* read-only */
    default:
        if (rtc_is_time_reg(idx) && !(s->cmos[RTC_REG_B] & RTC_B_SET)) {
            /* A write while the clock runs sets that field of the running time. */
            rtc_latch_time(r);
            s->cmos[idx] = val;
            rtc_commit_time(r);
            rtc_arm_update(r);
            return;
        }
        s->cmos[idx] = val;
        return;
    }
}

uint64_t rtc_read(struct rtc *r, uint64_t off, unsigned size)
{
    if (off != 1) {
        return 0xff; /* the index port is write-only */
    }
    pthread_mutex_lock(&r->lock);
    uint8_t v = rtc_data_read(r);
    pthread_mutex_unlock(&r->lock);
    return v;
}

void rtc_write(struct rtc *r, uint64_t off, uint64_t val, unsigned size)
{
    pthread_mutex_lock(&r->lock);
    if (off == 0) {
        r->s.index = val & 0x7f;
        r->s.nmi_masked = (val & 0x80) != 0;
    } else if (off == 1) {
        rtc_data_write(r, (uint8_t)val);
    }
    pthread_mutex_unlock(&r->lock);
}

int rtc_cmos_set(struct rtc *r, int idx, uint8_t val)
{
    if (idx < 0 || idx >= RTC_CMOS_SIZE || (idx >= RTC_REG_A && idx <= RTC_REG_D)) {
        return -EINVAL;
    }
    pthread_mutex_lock(&r->lock);
    r->s.cmos[idx] = val;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void rtc_set_time(struct rtc *r, int64_t unix_seconds)
{
    pthread_mutex_lock(&r->lock);
    int64_t host = r->host_base_ns + (int64_t)timerq_now_ns(r->tq);
    r->s.offset_ns = unix_seconds * NS_PER_SEC - host;
    if (r->s.cmos[RTC_REG_B] & RTC_B_SET) {
        rtc_latch_time(r);
    }
    rtc_arm_update(r);
    pthread_mutex_unlock(&r->lock);
}

bool rtc_nmi_masked(struct rtc *r)
{
    pthread_mutex_lock(&r->lock);
    bool m = r->s.nmi_masked;
    pthread_mutex_unlock(&r->lock);
    return m;
}

static void rtc_power_on(struct rtc_state *s)
{
    memset(s, 0, sizeof(*s));
    s->cmos[RTC_REG_A] = RTC_A_DV_RUN | 0x06; /* 1024 Hz rate selected, as PC firmware leaves it */
    s->cmos[RTC_REG_B] = RTC_B_24H;
    s->cmos[RTC_REG_D] = RTC_D_VRT;
}

struct rtc *rtc_new(const struct irq_line *irq, struct timerq *tq)
{
    if (!tq) {
        return NULL;
    }
    struct rtc *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    if (irq) {
        r->irq = *irq;
    }
    r->tq = tq;
    r->periodic = timer_new(tq, rtc_periodic_cb, r);
    r->update = timer_new(tq, rtc_update_cb, r);
    if (!r->periodic || !r->update) {
        timer_free(r->periodic);
        timer_free(r->update);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    r->host_base_ns = rtc_realtime_ns() - (int64_t)timerq_now_ns(tq);
    rtc_power_on(&r->s);
    pthread_mutex_lock(&r->lock);
    rtc_arm_update(r);
    pthread_mutex_unlock(&r->lock);
    return r;
}

void rtc_free(struct rtc *r)
{
    if (!r) {
        return;
    }
    timer_free(r->periodic);
    timer_free(r->update);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static uint64_t rtc_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return rtc_read(opaque, off, size);
}

static void rtc_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    rtc_write(opaque, off, val, size);
}

const struct bus_ops rtc_bus_ops = {.read = rtc_bus_read, .write = rtc_bus_write};

static int rtc_post_load(void *scratch, int version_id)
{
    const struct rtc_state *s = scratch;
    return s->index < RTC_CMOS_SIZE ? 0 : -EINVAL;
}

static const struct vmstate_field rtc_fields[] = {
    VMSTATE_BUF(struct rtc_state, cmos),
    VMSTATE_FIELD(struct rtc_state, index, VMSTATE_U8),
    VMSTATE_FIELD(struct rtc_state, nmi_masked, VMSTATE_BOOL),
    VMSTATE_FIELD(struct rtc_state, offset_ns, VMSTATE_I64),
    VMSTATE_END,
};

static const struct vmstate_desc rtc_vmstate = {
    .name = "mc146818rtc",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct rtc_state),
    .fields = rtc_fields,
    .post_load = rtc_post_load,
};

/* System reset: CMOS RAM and the clock survive (battery-backed); interrupt enables
 * and flags do not (DS: RESET# clears PIE, AIE, UIE and register C). */
static void rtc_dev_reset(void *dev)
{
    struct rtc *r = dev;
    pthread_mutex_lock(&r->lock);
    r->s.cmos[RTC_REG_B] &= ~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE);
    r->s.cmos[RTC_REG_C] = 0;
    rtc_update_irq(r);
    rtc_arm_periodic(r);
    rtc_arm_update(r);
    pthread_mutex_unlock(&r->lock);
}

static int rtc_dev_save(void *dev, GByteArray *out)
{
    struct rtc *r = dev;
    pthread_mutex_lock(&r->lock);
    int ret = vmstate_save(&rtc_vmstate, &r->s, out);
    pthread_mutex_unlock(&r->lock);
    return ret;
}

static int rtc_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct rtc *r = dev;
    struct rtc_state tmp;
    rtc_power_on(&tmp);
    int ret = vmstate_load(&rtc_vmstate, &tmp, buf, len, NULL);
    if (ret < 0) {
        return ret;
    }
    pthread_mutex_lock(&r->lock);
    r->s = tmp;
    r->irq_level = -1; /* force the loaded level onto the line */
    rtc_update_irq(r);
    rtc_arm_periodic(r);
    rtc_arm_update(r);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

const struct device_ops rtc_device_ops = {
    .name = "mc146818rtc",
    .reset = rtc_dev_reset,
    .save = rtc_dev_save,
    .load = rtc_dev_load,
};
