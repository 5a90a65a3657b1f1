/* Intel 8254 PIT (datasheet order no. 231164) and the port 0x61 bits of the PC/AT
 * system control port B.
 *
 * Known simplifications: a low gate does not pause modes 0 and 4, and does not
 * freeze the count in modes 2 and 3 (it only holds OUT high and restarts the
 * period on its rising edge); a new count in modes 2 and 3 takes effect at once
 * instead of at the end of the current period. Nothing PC firmware or Linux does
 * depends on those. */
#include "devices/pc/pit8254.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "snapshot/vmstate.h"

#define TAG "dev.pit"

#define NS_PER_SEC 1000000000ull
/* Refresh request toggle on port 0x61 bit 4: one DRAM refresh every 15.085 us. */
#define PIT_REFRESH_NS 15085
/* Guests programming a microsecond period get coalesced ticks, not a host timer storm. */
#define PIT_MIN_PERIOD_NS 100000

enum pit_rw {
    PIT_RW_LATCH = 0, /* control word access 00: counter latch command */
    PIT_RW_LSB = 1,
    PIT_RW_MSB = 2,
    PIT_RW_WORD0 = 3, /* lo/hi access, low byte next */
    PIT_RW_WORD1 = 4, /* lo/hi access, high byte next */
};

struct pit_channel {
    uint32_t count;         /* CR: reload value in input clocks, 1..0x10000 (binary) */
    uint16_t latched_count; /* OL: output latch (counter latch / read-back), as read */
    uint8_t count_latched;  /* pit_rw of the pending OL read, 0 when OL follows CE */
    bool status_latched;    /* read-back command latched the status byte */
    uint8_t status;         /* read-back status byte */
    uint8_t read_state;     /* pit_rw: next byte of a counter read */
    uint8_t write_state;    /* pit_rw: next byte of a counter write */
    uint8_t write_latch;    /* low byte of a lo/hi count write */
    uint8_t rw_mode;        /* control word RW1-RW0 */
    uint8_t mode;           /* control word M2-M0 (6, 7 folded to 2, 3) */
    bool bcd;               /* control word BCD */
    bool gate;              /* GATE input */
    bool null_count;        /* status bit 6: count written, not yet in CE */
    bool armed;             /* a count was loaded since the control word */
    bool waiting_trigger;   /* modes 1 and 5: armed, waiting for a gate rising edge */
    uint64_t load_ns;       /* timerq time CE was (re)loaded from CR */
};

struct pit_state {
    struct pit_channel ch[3]; /* counters 0-2 */
    uint8_t port61;           /* port 0x61 bits 0-3 (gate2, speaker data, parity/IOCHK enables) */
    bool irq0_level;          /* level we drive on IRQ 0 */
    uint64_t saved_now_ns;    /* timerq clock at save, to rebase load_ns on restore */
};

struct pit {
    pthread_mutex_t lock;
    struct pit_state st;
    struct timerq *q;
    struct timer *irq_timer; /* channel 0's next OUT edge */
    struct irq_line irq0;
    bool has_irq;
};

static uint64_t pit_ns_to_ticks(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * PIT_FREQ_HZ / NS_PER_SEC);
}

/* Smallest ns whose tick count reaches t. */
static uint64_t pit_ticks_to_ns(uint64_t t)
{
    return (uint64_t)(((unsigned __int128)t * NS_PER_SEC + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ);
}

static uint64_t pit_elapsed(struct pit *pit, const struct pit_channel *c, uint64_t now)
{
    /* Modular on purpose: a restored load_ns may lie "before" our clock's zero. */
    return pit_ns_to_ticks(now - c->load_ns);
}

static uint16_t pit_to_bcd(uint32_t v)
{
    v %= 10000;
    return (v % 10) | ((v / 10 % 10) << 4) | ((v / 100 % 10) << 8) | ((v / 1000) << 12);
}

static uint32_t pit_from_bcd(uint16_t v)
{
    return (v & 0xf) % 10 + ((v >> 4) & 0xf) % 10 * 10 + ((v >> 8) & 0xf) % 10 * 100 +
           ((v >> 12) & 0xf) % 10 * 1000;
}

/* CE as the guest would read it (binary or BCD). */
static uint16_t pit_count_now(struct pit *pit, const struct pit_channel *c, uint64_t now)
{
    uint32_t v;
    if (!c->armed || c->waiting_trigger) {
        v = c->count;
    } else {
        uint64_t d = pit_elapsed(pit, c, now);
        uint32_t modulus = c->bcd ? 10000 : 0x10000;
        switch (c->mode) {
        case 2:
            v = c->count - (uint32_t)(d % c->count);
            break;
        case 3:
            v = c->count - (uint32_t)((2 * d) % c->count);
            break;
        default: /* 0, 1, 4, 5: count down through zero and wrap */
            v = (uint32_t)(((uint64_t)c->count + modulus - d % modulus) % modulus);
            break;
        }
    }
    return c->bcd ? pit_to_bcd(v) : (uint16_t)v;
}

static bool pit_out_now(struct pit *pit, const struct pit_channel *c, uint64_t now)
{
    if (!c->armed) {
        return c->mode != 0; /* the control word drives OUT low in mode 0, high otherwise */
    }
    if (c->waiting_trigger) {
        return true;
    }
    uint64_t d = pit_elapsed(pit, c, now);
    switch (c->mode) {
    case 0:
    case 1:
        return d >= c->count;
    case 2:
        return !c->gate || c->count < 2 || d % c->count != c->count - 1;
    case 3:
        return !c->gate || d % c->count < (c->count + 1) / 2;
    default: /* 4, 5: one-clock strobe at terminal count */
        return d != c->count;
    }
}

static void pit_set_irq0(struct pit *pit, bool level)
{
    if (pit->st.irq0_level != level) {
        pit->st.irq0_level = level;
        if (pit->has_irq) {
            irq_set(&pit->irq0, level);
        }
    }
}

static void pit_pulse_irq0(struct pit *pit)
{
    pit_set_irq0(pit, true);
    pit_set_irq0(pit, false);
}

/* Arm the host timer for channel 0's next interrupt-worthy OUT edge. */
static void pit_arm_irq0(struct pit *pit, uint64_t now)
{
    struct pit_channel *c = &pit->st.ch[0];
    if (!pit->irq_timer) {
        return;
    }
    if (!c->armed || c->waiting_trigger) {
        timer_del(pit->irq_timer);
        return;
    }
    uint64_t d = pit_elapsed(pit, c, now);
    uint64_t target;
    if (c->mode == 2 || c->mode == 3) {
        target = (d / c->count + 1) * c->count;
        uint64_t when = c->load_ns + pit_ticks_to_ns(target);
        if (when < now + PIT_MIN_PERIOD_NS && pit_ticks_to_ns(c->count) < PIT_MIN_PERIOD_NS) {
            when = now + PIT_MIN_PERIOD_NS;
        }
        timer_mod(pit->irq_timer, when);
        return;
    }
    if (d >= c->count) {
        timer_del(pit->irq_timer);
        return;
    }
    timer_mod(pit->irq_timer, c->load_ns + pit_ticks_to_ns(c->count));
}

static void pit_irq_timer_cb(void *opaque)
{
    struct pit *pit = opaque;
    pthread_mutex_lock(&pit->lock);
    struct pit_channel *c = &pit->st.ch[0];
    uint64_t now = timerq_now_ns(pit->q);
    if (c->armed && !c->waiting_trigger) {
        uint64_t d = pit_elapsed(pit, c, now);
        switch (c->mode) {
        case 0:
        case 1:
            if (d >= c->count) {
                pit_set_irq0(pit, true);
            }
            break;
        case 2:
        case 3:
            if (c->gate) {
                pit_pulse_irq0(pit);
            }
            break;
        default:
            if (d >= c->count) {
                pit_pulse_irq0(pit);
            }
            break;
        }
        if (c->mode == 2 || c->mode == 3) {
            pit_arm_irq0(pit, now);
        }
    }
    pthread_mutex_unlock(&pit->lock);
}

static void pit_load_count(struct pit *pit, int n, uint16_t raw, uint64_t now)
{
    struct pit_channel *c = &pit->st.ch[n];
    uint32_t v = c->bcd ? pit_from_bcd(raw) : raw;
    if (v == 0) {
        v = c->bcd ? 10000 : 0x10000;
    }
    c->count = v;
    c->armed = true;
    c->null_count = false;
    c->load_ns = now;
    c->waiting_trigger = (c->mode == 1 || c->mode == 5);
    if (n == 0) {
        if (c->mode == 0 || c->mode == 1) {
            pit_set_irq0(pit, false);
        }
        pit_arm_irq0(pit, now);
    }
}

static void pit_latch_count(struct pit *pit, int n, uint64_t now)
{
    struct pit_channel *c = &pit->st.ch[n];
    if (!c->count_latched) {
        c->latched_count = pit_count_now(pit, c, now);
        c->count_latched = c->rw_mode == PIT_RW_WORD0 ? PIT_RW_WORD0 : c->rw_mode;
    }
}

static void pit_write_control(struct pit *pit, uint8_t val, uint64_t now)
{
    int n = val >> 6;
    if (n == 3) {
        /* Read-back command: bit 5 clear latches counts, bit 4 clear latches status. */
        for (int i = 0; i < 3; i++) {
            if (!(val & (2u << i))) {
                continue;
            }
            struct pit_channel *c = &pit->st.ch[i];
            if (!(val & 0x20)) {
                pit_latch_count(pit, i, now);
            }
            if (!(val & 0x10) && !c->status_latched) {
                c->status = (pit_out_now(pit, c, now) << 7) | (c->null_count << 6) |
                            (c->rw_mode << 4) | (c->mode << 1) | c->bcd;
                c->status_latched = true;
            }
        }
        return;
    }
    struct pit_channel *c = &pit->st.ch[n];
    uint8_t access = (val >> 4) & 3;
    if (access == PIT_RW_LATCH) {
        pit_latch_count(pit, n, now);
        return;
    }
    c->rw_mode = access;
    c->read_state = access;
    c->write_state = access;
    c->mode = (val >> 1) & 7;
    if (c->mode > 5) {
        c->mode -= 4; /* 110 and 111 are aliases of modes 2 and 3 */
    }
    c->bcd = val & 1;
    c->armed = false;
    c->null_count = true;
    c->count_latched = 0;
    c->status_latched = false;
    if (n == 0) {
        pit_set_irq0(pit, false);
        pit_arm_irq0(pit, now);
    }
}

static uint8_t pit_read_counter(struct pit *pit, int n, uint64_t now)
{
    struct pit_channel *c = &pit->st.ch[n];
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->count_latched) {
        uint8_t r;
        switch (c->count_latched) {
        case PIT_RW_LSB:
            r = c->latched_count & 0xff;
            c->count_latched = 0;
            break;
        case PIT_RW_MSB:
            r = c->latched_count >> 8;
            c->count_latched = 0;
            break;
        default: /* PIT_RW_WORD0: low byte, then the high byte */
            r = c->latched_count & 0xff;
            c->count_latched = PIT_RW_MSB;
            break;
        }
        return r;
    }
    uint16_t v = pit_count_now(pit, c, now);
    switch (c->read_state) {
    case PIT_RW_LSB:
        return v & 0xff;
    case PIT_RW_MSB:
        return v >> 8;
    case PIT_RW_WORD0:
        c->read_state = PIT_RW_WORD1;
        return v & 0xff;
    case PIT_RW_WORD1:
        c->read_state = PIT_RW_WORD0;
        return v >> 8;
    default:
        return 0xff;
    }
}

static void pit_write_counter(struct pit *pit, int n, uint8_t val, uint64_t now)
{
    struct pit_channel *c = &pit->st.ch[n];
    switch (c->write_state) {
    case PIT_RW_LSB:
        pit_load_count(pit, n, val, now);
        break;
    case PIT_RW_MSB:
        pit_load_count(pit, n, (uint16_t)val << 8, now);
        break;
    case PIT_RW_WORD0:
        c->write_latch = val;
        c->write_state = PIT_RW_WORD1;
        break;
    case PIT_RW_WORD1:
        pit_load_count(pit, n, c->write_latch | ((uint16_t)val << 8), now);
        c->write_state = PIT_RW_WORD0;
        break;
    default: /* not programmed since reset: ignore */
        break;
    }
}

static void pit_set_gate_locked(struct pit *pit, int n, bool level, uint64_t now)
{
    struct pit_channel *c = &pit->st.ch[n];
    bool rising = level && !c->gate;
    c->gate = level;
    if (!rising || !c->armed) {
        return;
    }
    switch (c->mode) {
    case 1:
    case 5:
    case 2:
    case 3:
        /* Trigger (1, 5) or restart the period (2, 3). */
        c->load_ns = now;
        c->waiting_trigger = false;
        if (n == 0) {
            if (c->mode == 1) {
                pit_set_irq0(pit, false);
            }
            pit_arm_irq0(pit, now);
        }
        break;
    default:
        break;
    }
}

void pit_set_gate(struct pit *pit, int channel, bool level)
{
    if (channel < 0 || channel > 2) {
        return;
    }
    pthread_mutex_lock(&pit->lock);
    pit_set_gate_locked(pit, channel, level, timerq_now_ns(pit->q));
    pthread_mutex_unlock(&pit->lock);
}

bool pit_get_out(struct pit *pit, int channel)
{
    if (channel < 0 || channel > 2) {
        return false;
    }
    pthread_mutex_lock(&pit->lock);
    bool r = pit_out_now(pit, &pit->st.ch[channel], timerq_now_ns(pit->q));
    pthread_mutex_unlock(&pit->lock);
    return r;
}

uint64_t pit_read(struct pit *pit, uint64_t port, unsigned size)
{
    uint8_t r = 0xff;
    pthread_mutex_lock(&pit->lock);
    uint64_t now = timerq_now_ns(pit->q);
    if (port >= PIT_PORT_BASE && port < PIT_PORT_BASE + 3) {
        r = pit_read_counter(pit, port - PIT_PORT_BASE, now);
    } else if (port == PIT_PORT_BASE + 3) {
        r = 0xff; /* the control word register cannot be read */
    } else if (port == PIT_PORT_61) {
        r = (pit->st.port61 & 0x0f) | (((now / PIT_REFRESH_NS) & 1) << 4) |
            (pit_out_now(pit, &pit->st.ch[2], now) << 5);
    }
    pthread_mutex_unlock(&pit->lock);
    return r;
}

void pit_write(struct pit *pit, uint64_t port, uint64_t val, unsigned size)
{
    uint8_t v = val & 0xff;
    pthread_mutex_lock(&pit->lock);
    uint64_t now = timerq_now_ns(pit->q);
    if (port >= PIT_PORT_BASE && port < PIT_PORT_BASE + 3) {
        pit_write_counter(pit, port - PIT_PORT_BASE, v, now);
    } else if (port == PIT_PORT_BASE + 3) {
        pit_write_control(pit, v, now);
    } else if (port == PIT_PORT_61) {
        pit->st.port61 = v & 0x0f;
        pit_set_gate_locked(pit, 2, v & 1, now);
    }
    pthread_mutex_unlock(&pit->lock);
}

static void pit_reset_locked(struct pit *pit)
{
    uint64_t now = timerq_now_ns(pit->q);
    bool level = pit->st.irq0_level;
    memset(&pit->st, 0, sizeof(pit->st));
    pit->st.irq0_level = level;
    for (int i = 0; i < 3; i++) {
        struct pit_channel *c = &pit->st.ch[i];
        /* As after a power-on BIOS: square wave at 18.2 Hz, gates 0 and 1 tied high. */
        c->mode = 3;
        c->rw_mode = PIT_RW_WORD0;
        c->read_state = PIT_RW_WORD0;
        c->write_state = PIT_RW_WORD0;
        c->gate = i != 2;
        c->count = 0x10000;
        c->armed = true;
        c->load_ns = now;
    }
    pit_set_irq0(pit, false);
    pit_arm_irq0(pit, now);
}

struct pit *pit_new(struct timerq *q, const struct irq_line *irq0)
{
    struct pit *pit = calloc(1, sizeof(*pit));
    if (!pit) {
        return NULL;
    }
    pthread_mutex_init(&pit->lock, NULL);
    pit->q = q;
    if (irq0) {
        pit->irq0 = *irq0;
        pit->has_irq = true;
    }
    pit->irq_timer = timer_new(q, pit_irq_timer_cb, pit);
    if (!pit->irq_timer) {
        pthread_mutex_destroy(&pit->lock);
        free(pit);
        return NULL;
    }
    pthread_mutex_lock(&pit->lock);
    pit_reset_locked(pit);
    pthread_mutex_unlock(&pit->lock);
    return pit;
}

void pit_free(struct pit *pit)
{
    if (!pit) {
        return;
    }
    timer_free(pit->irq_timer);
    pthread_mutex_destroy(&pit->lock);
    free(pit);
}

static uint64_t pit_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return off < 4 ? pit_read(opaque, PIT_PORT_BASE + off, size) : 0xff;
}

static void pit_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (off < 4) {
        pit_write(opaque, PIT_PORT_BASE + off, val, size);
    }
}

static uint64_t pit_port61_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return off == 0 ? pit_read(opaque, PIT_PORT_61, size) : 0xff;
}

static void pit_port61_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (off == 0) {
        pit_write(opaque, PIT_PORT_61, val, size);
    }
}

const struct bus_ops pit_bus_ops = {.read = pit_bus_read, .write = pit_bus_write};
const struct bus_ops pit_port61_bus_ops = {.read = pit_port61_bus_read,
                                           .write = pit_port61_bus_write};

/* ---- state ---- */

#define PIT_CH_FIELDS(n)                                                                           \
    VMSTATE_FIELD(struct pit_state, ch[n].count, VMSTATE_U32),                                     \
        VMSTATE_FIELD(struct pit_state, ch[n].latched_count, VMSTATE_U16),                         \
        VMSTATE_FIELD(struct pit_state, ch[n].count_latched, VMSTATE_U8),                          \
        VMSTATE_FIELD(struct pit_state, ch[n].status_latched, VMSTATE_BOOL),                       \
        VMSTATE_FIELD(struct pit_state, ch[n].status, VMSTATE_U8),                                 \
        VMSTATE_FIELD(struct pit_state, ch[n].read_state, VMSTATE_U8),                             \
        VMSTATE_FIELD(struct pit_state, ch[n].write_state, VMSTATE_U8),                            \
        VMSTATE_FIELD(struct pit_state, ch[n].write_latch, VMSTATE_U8),                            \
        VMSTATE_FIELD(struct pit_state, ch[n].rw_mode, VMSTATE_U8),                                \
        VMSTATE_FIELD(struct pit_state, ch[n].mode, VMSTATE_U8),                                   \
        VMSTATE_FIELD(struct pit_state, ch[n].bcd, VMSTATE_BOOL),                                  \
        VMSTATE_FIELD(struct pit_state, ch[n].gate, VMSTATE_BOOL),                                 \
        VMSTATE_FIELD(struct pit_state, ch[n].null_count, VMSTATE_BOOL),                           \
        VMSTATE_FIELD(struct pit_state, ch[n].armed, VMSTATE_BOOL),                                \
        VMSTATE_FIELD(struct pit_state, ch[n].waiting_trigger, VMSTATE_BOOL),                      \
        VMSTATE_FIELD(struct pit_state, ch[n].load_ns, VMSTATE_U64)

static const struct vmstate_field pit_fields[] = {
    PIT_CH_FIELDS(0),
    PIT_CH_FIELDS(1),
    PIT_CH_FIELDS(2),
    VMSTATE_FIELD(struct pit_state, port61, VMSTATE_U8),
    VMSTATE_FIELD(struct pit_state, irq0_level, VMSTATE_BOOL),
    VMSTATE_FIELD(struct pit_state, saved_now_ns, VMSTATE_U64),
    VMSTATE_END,
};

static int pit_post_load(void *scratch, int version_id)
{
    struct pit_state *s = scratch;
    for (int i = 0; i < 3; i++) {
        struct pit_channel *c = &s->ch[i];
        if (c->count < 1 || c->count > 0x10000 || c->mode > 5 || c->rw_mode > PIT_RW_WORD0 ||
            c->read_state > PIT_RW_WORD1 || c->write_state > PIT_RW_WORD1 ||
            c->count_latched > PIT_RW_WORD0 || c->load_ns > s->saved_now_ns) {
            return -EINVAL;
        }
    }
    return 0;
}

static const struct vmstate_desc pit_vmstate = {
    .name = "pit8254",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct pit_state),
    .fields = pit_fields,
    .post_load = pit_post_load,
};

static void pit_dev_reset(void *dev)
{
    struct pit *pit = dev;
    pthread_mutex_lock(&pit->lock);
    pit_reset_locked(pit);
    pthread_mutex_unlock(&pit->lock);
}

static int pit_dev_save(void *dev, GByteArray *out)
{
    struct pit *pit = dev;
    pthread_mutex_lock(&pit->lock);
    pit->st.saved_now_ns = timerq_now_ns(pit->q);
    int r = vmstate_save(&pit_vmstate, &pit->st, out);
    pthread_mutex_unlock(&pit->lock);
    return r;
}

static int pit_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct pit *pit = dev;
    pthread_mutex_lock(&pit->lock);
    bool level = pit->st.irq0_level;
    int r = vmstate_load(&pit_vmstate, &pit->st, buf, len, NULL);
    if (r == 0) {
        /* Timestamps were taken on the saving VM's clock: move them to ours. */
        uint64_t now = timerq_now_ns(pit->q);
        for (int i = 0; i < 3; i++) {
            pit->st.ch[i].load_ns = now - (pit->st.saved_now_ns - pit->st.ch[i].load_ns);
        }
        bool want = pit->st.irq0_level;
        pit->st.irq0_level = level;
        pit_set_irq0(pit, want);
        pit_arm_irq0(pit, now);
    }
    pthread_mutex_unlock(&pit->lock);
    return r;
}

const struct device_ops pit_device_ops = {
    .name = "pit8254",
    .reset = pit_dev_reset,
    .save = pit_dev_save,
    .load = pit_dev_load,
};
