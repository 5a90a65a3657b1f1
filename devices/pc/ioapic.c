/* I/O APIC (Intel 82093AA datasheet, order no. 290566; version 0x20 adds the EOI
 * register used by Linux for directed EOI). */
#include "devices/pc/ioapic.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "snapshot/vmstate.h"

#define TAG "dev.ioapic"

#define IOAPIC_OFF_REGSEL 0x00
#define IOAPIC_OFF_WIN 0x10
#define IOAPIC_OFF_EOI 0x40

#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_ARB 0x02
#define IOAPIC_REG_REDTBL 0x10

#define IOAPIC_VERSION 0x20

/* Redirection entry fields. */
#define RTE_VECTOR 0xffull
#define RTE_DM_SHIFT 8
#define RTE_DEST_LOGICAL (1ull << 11)
#define RTE_DELIVS (1ull << 12)
#define RTE_POLARITY (1ull << 13)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_DEST_SHIFT 56
/* Bits the guest may write: all but delivery status and Remote IRR, and bits 17-55. */
#define RTE_WRITABLE                                                                               \
    (RTE_VECTOR | (7ull << 8) | RTE_DEST_LOGICAL | RTE_POLARITY | RTE_LEVEL | RTE_MASKED |         \
     (0xffull << RTE_DEST_SHIFT))

struct ioapic_state {
    uint8_t id;                       /* IOAPICID bits 27:24 */
    uint8_t regsel;                   /* IOREGSEL: register IOWIN addresses */
    uint32_t pins;                    /* input pin levels */
    uint32_t irr;                     /* pending edges (edge pins) / asserted (level pins) */
    uint64_t redtbl[IOAPIC_NUM_PINS]; /* IOREDTBL0-23 */
};

struct ioapic {
    pthread_mutex_t lock;
    struct ioapic_state st;
    ioapic_deliver_fn deliver;
    void *opaque;
};

static void ioapic_service(struct ioapic *io)
{
    struct ioapic_state *s = &io->st;
    for (int i = 0; i < IOAPIC_NUM_PINS; i++) {
        uint32_t bit = 1u << i;
        uint64_t e = s->redtbl[i];
        if (!(s->irr & bit) || (e & RTE_MASKED)) {
            continue;
        }
        bool level = e & RTE_LEVEL;
        uint8_t dm = (e >> RTE_DM_SHIFT) & 7;
        if (level) {
            if (e & RTE_REMOTE_IRR) {
                continue;
            }
            /* NMI, INIT and ExtINT are edge messages by definition; no Remote IRR. */
            if (dm == IOAPIC_DM_FIXED || dm == IOAPIC_DM_LOWEST) {
                s->redtbl[i] |= RTE_REMOTE_IRR;
            }
        } else {
            s->irr &= ~bit;
        }
        if (io->deliver) {
            io->deliver(io->opaque, (uint8_t)(e >> RTE_DEST_SHIFT), e & RTE_DEST_LOGICAL, dm,
                        (uint8_t)(e & RTE_VECTOR), level);
        }
        if (level && !(s->redtbl[i] & RTE_REMOTE_IRR)) {
            /* Level NMI/ExtINT: one message per assertion. */
            s->irr &= ~bit;
        }
    }
}

static void ioapic_reset_state(struct ioapic_state *s, uint8_t id)
{
    uint32_t pins = s->pins;
    memset(s, 0, sizeof(*s));
    s->id = id & 0xf;
    s->pins = pins;
    for (int i = 0; i < IOAPIC_NUM_PINS; i++) {
        s->redtbl[i] = RTE_MASKED;
    }
}

struct ioapic *ioapic_new(uint8_t id, ioapic_deliver_fn deliver, void *opaque)
{
    struct ioapic *io = calloc(1, sizeof(*io));
    if (!io) {
        return NULL;
    }
    pthread_mutex_init(&io->lock, NULL);
    io->deliver = deliver;
    io->opaque = opaque;
    ioapic_reset_state(&io->st, id);
    return io;
}

void ioapic_free(struct ioapic *io)
{
    if (!io) {
        return;
    }
    pthread_mutex_destroy(&io->lock);
    free(io);
}

void ioapic_set_irq(struct ioapic *io, int gsi, int level)
{
    if (gsi < 0 || gsi >= IOAPIC_NUM_PINS) {
        log_warn(TAG, "set_irq: no pin %d", gsi);
        return;
    }
    uint32_t bit = 1u << gsi;
    pthread_mutex_lock(&io->lock);
    struct ioapic_state *s = &io->st;
    uint64_t e = s->redtbl[gsi];
    if (e & RTE_LEVEL) {
        if (level) {
            s->irr |= bit;
        } else {
            s->irr &= ~bit;
        }
    } else if (level && !(s->pins & bit) && !(e & RTE_MASKED)) {
        /* 82093AA: edges on a masked pin are ignored, not held pending. */
        s->irr |= bit;
    }
    if (level) {
        s->pins |= bit;
    } else {
        s->pins &= ~bit;
    }
    ioapic_service(io);
    pthread_mutex_unlock(&io->lock);
}

static void ioapic_eoi_locked(struct ioapic *io, uint8_t vector)
{
    struct ioapic_state *s = &io->st;
    for (int i = 0; i < IOAPIC_NUM_PINS; i++) {
        uint64_t e = s->redtbl[i];
        if ((e & RTE_LEVEL) && (e & RTE_REMOTE_IRR) && (e & RTE_VECTOR) == vector) {
            s->redtbl[i] &= ~RTE_REMOTE_IRR;
            if (s->pins & (1u << i)) {
                s->irr |= 1u << i;
            }
        }
    }
    ioapic_service(io);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
    pthread_mutex_lock(&io->lock);
    ioapic_eoi_locked(io, vector);
    pthread_mutex_unlock(&io->lock);
}

static uint32_t ioapic_read_reg(struct ioapic_state *s)
{
    uint8_t r = s->regsel;
    switch (r) {
    case IOAPIC_REG_ID:
    case IOAPIC_REG_ARB:
        return (uint32_t)s->id << 24;
    case IOAPIC_REG_VER:
        return ((uint32_t)(IOAPIC_NUM_PINS - 1) << 16) | IOAPIC_VERSION;
    default:
        if (r >= IOAPIC_REG_REDTBL && r < IOAPIC_REG_REDTBL + 2 * IOAPIC_NUM_PINS) {
            int n = (r - IOAPIC_REG_REDTBL) >> 1;
            uint64_t e = s->redtbl[n];
            return (r & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
        }
        return 0xffffffff; /* reserved registers */
    }
}

static void ioapic_write_reg(struct ioapic *io, uint32_t val)
{
    struct ioapic_state *s = &io->st;
    uint8_t r = s->regsel;
    if (r == IOAPIC_REG_ID) {
        s->id = (val >> 24) & 0xf;
        return;
    }
    if (r < IOAPIC_REG_REDTBL || r >= IOAPIC_REG_REDTBL + 2 * IOAPIC_NUM_PINS) {
        return; /* version, arbitration and reserved registers are read-only */
    }
    int n = (r - IOAPIC_REG_REDTBL) >> 1;
    uint64_t old = s->redtbl[n];
    uint64_t e;
    if (r & 1) {
        e = (old & 0xffffffffull) | ((uint64_t)val << 32);
    } else {
        e = (old & ~0xffffffffull) | val;
    }
    e = (e & RTE_WRITABLE) | (old & RTE_REMOTE_IRR);
    if (!(e & RTE_LEVEL)) {
        /* Remote IRR has no meaning for edge pins; a switch to edge drops it. */
        e &= ~RTE_REMOTE_IRR;
    }
    s->redtbl[n] = e;
    if ((e & RTE_LEVEL) && (s->pins & (1u << n))) {
        /* A level pin that is asserted delivers once unmasked. */
        s->irr |= 1u << n;
    } else if (e & RTE_LEVEL) {
        s->irr &= ~(1u << n);
    }
    ioapic_service(io);
}

uint64_t ioapic_read(struct ioapic *io, uint64_t off, unsigned size)
{
    uint32_t r = 0;
    pthread_mutex_lock(&io->lock);
    switch (off) {
    case IOAPIC_OFF_REGSEL:
        r = io->st.regsel;
        break;
    case IOAPIC_OFF_WIN:
        r = ioapic_read_reg(&io->st);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&io->lock);
    return r;
}

void ioapic_write(struct ioapic *io, uint64_t off, uint64_t val, unsigned size)
{
    pthread_mutex_lock(&io->lock);
    switch (off) {
    case IOAPIC_OFF_REGSEL:
        io->st.regsel = val & 0xff;
        break;
    case IOAPIC_OFF_WIN:
        ioapic_write_reg(io, (uint32_t)val);
        break;
    case IOAPIC_OFF_EOI:
        ioapic_eoi_locked(io, val & 0xff);
        break;
    default:
        log_debug(TAG, "write to reserved offset 0x%llx", (unsigned long long)off);
        break;
    }
    pthread_mutex_unlock(&io->lock);
}

static uint64_t ioapic_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return ioapic_read(opaque, off, size);
}

static void ioapic_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    ioapic_write(opaque, off, val, size);
}

const struct bus_ops ioapic_bus_ops = {.read = ioapic_bus_read, .write = ioapic_bus_write};

/* ---- state ---- */

static const struct vmstate_field ioapic_fields[] = {
    VMSTATE_FIELD(struct ioapic_state, id, VMSTATE_U8),
    VMSTATE_FIELD(struct ioapic_state, regsel, VMSTATE_U8),
    VMSTATE_FIELD(struct ioapic_state, pins, VMSTATE_U32),
    VMSTATE_FIELD(struct ioapic_state, irr, VMSTATE_U32),
    VMSTATE_ARRAY(struct ioapic_state, redtbl, VMSTATE_U64, IOAPIC_NUM_PINS),
    VMSTATE_END,
};

static int ioapic_post_load(void *scratch, int version_id)
{
    struct ioapic_state *s = scratch;
    uint32_t all = (1u << IOAPIC_NUM_PINS) - 1;
    if (s->id > 0xf || (s->pins & ~all) || (s->irr & ~all)) {
        return -EINVAL;
    }
    return 0;
}

static const struct vmstate_desc ioapic_vmstate = {
    .name = "ioapic",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct ioapic_state),
    .fields = ioapic_fields,
    .post_load = ioapic_post_load,
};

static void ioapic_dev_reset(void *dev)
{
    struct ioapic *io = dev;
    pthread_mutex_lock(&io->lock);
    ioapic_reset_state(&io->st, io->st.id);
    pthread_mutex_unlock(&io->lock);
}

static int ioapic_dev_save(void *dev, GByteArray *out)
{
    struct ioapic *io = dev;
    pthread_mutex_lock(&io->lock);
    int r = vmstate_save(&ioapic_vmstate, &io->st, out);
    pthread_mutex_unlock(&io->lock);
    return r;
}

static int ioapic_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct ioapic *io = dev;
    pthread_mutex_lock(&io->lock);
    int r = vmstate_load(&ioapic_vmstate, &io->st, buf, len, NULL);
    pthread_mutex_unlock(&io->lock);
    return r;
}

const struct device_ops ioapic_device_ops = {
    .name = "ioapic",
    .reset = ioapic_dev_reset,
    .save = ioapic_dev_save,
    .load = ioapic_dev_load,
};
