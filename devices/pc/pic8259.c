/* 8259A PIC pair (Intel 8259A datasheet, order no. 231468) with the PIIX ELCR.
 *
 * Behaviour follows the datasheet; where it leaves room, it follows what QEMU's
 * model does, since that is what SeaBIOS, OVMF and Linux are tested against. */
#include "devices/pc/pic8259.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "snapshot/vmstate.h"

#define TAG "dev.pic"

enum pic_init_step {
    PIC_INIT_DONE = 0, /* operational: data port writes are OCW1 */
    PIC_INIT_ICW2,
    PIC_INIT_ICW3,
    PIC_INIT_ICW4,
};

struct pic_chip {
    uint8_t lines;        /* IR0-7 input pin levels (for edge detection) */
    uint8_t irr;          /* Interrupt Request Register */
    uint8_t isr;          /* In-Service Register */
    uint8_t imr;          /* Interrupt Mask Register (OCW1) */
    uint8_t elcr;         /* ELCR 0x4D0/0x4D1: 1 = level triggered */
    uint8_t elcr_mask;    /* ELCR bits that exist (IRQ0-2, 8, 13 are always edge) */
    uint8_t irq_base;     /* ICW2 T7-T3: vector of IR0 */
    uint8_t priority_add; /* OCW2 rotation: IR number with the highest priority */
    uint8_t init_step;    /* ICW1 started an init sequence: next ICW expected */
    uint8_t icw3;         /* ICW3: cascade wiring (kept for read back only) */
    bool icw4_needed;     /* ICW1 IC4 */
    bool single;          /* ICW1 SNGL: no ICW3 */
    bool ltim;            /* ICW1 LTIM: all inputs level triggered */
    bool auto_eoi;        /* ICW4 AEOI */
    bool sfnm;            /* ICW4 SFNM: special fully nested mode (master) */
    bool rotate_auto_eoi; /* OCW2 R=1 SL=0 EOI=0: rotate in automatic EOI mode */
    bool read_isr;        /* OCW3 RR/RIS: command port reads ISR (else IRR) */
    bool poll;            /* OCW3 P: next command port read is a poll */
    bool special_mask;    /* OCW3 ESMM/SMM: special mask mode */
};

struct pic_state {
    struct pic_chip chip[2]; /* [0] master (0x20), [1] slave (0xA0) on master IR2 */
    bool out;                /* master INT output as last reported */
};

struct pic {
    pthread_mutex_t lock;
    struct pic_state st;
    void (*intr_changed)(void *opaque, bool level);
    void *opaque;
};

/* Datasheet "Fully nested mode": priority 0 is the highest; rotation shifts it. */
static int chip_priority(const struct pic_chip *c, uint8_t mask)
{
    if (mask == 0) {
        return 8;
    }
    int p = 0;
    while (!(mask & (1u << ((p + c->priority_add) & 7)))) {
        p++;
    }
    return p;
}

static bool chip_level(const struct pic_chip *c, int irq)
{
    return c->ltim || (c->elcr & (1u << irq));
}

/* The IR input that would be signalled on INT, or -1. */
static int chip_pending(const struct pic_chip *c, bool is_master)
{
    int p = chip_priority(c, c->irr & ~c->imr);
    if (p == 8) {
        return -1;
    }
    uint8_t in_service = c->isr;
    if (c->special_mask) {
        in_service &= ~c->imr;
    }
    if (is_master && c->sfnm) {
        /* SFNM: the slave may interrupt again while one of its inputs is in service. */
        in_service &= ~(1u << 2);
    }
    int cur = chip_priority(c, in_service);
    if (p < cur) {
        return (p + c->priority_add) & 7;
    }
    return -1;
}

static void chip_set_line(struct pic_chip *c, int irq, int level)
{
    uint8_t m = 1u << irq;
    if (chip_level(c, irq)) {
        if (level) {
            c->irr |= m;
        } else {
            c->irr &= ~m;
        }
    } else if (level && !(c->lines & m)) {
        c->irr |= m;
    }
    if (level) {
        c->lines |= m;
    } else {
        c->lines &= ~m;
    }
}

static void chip_intack(struct pic_chip *c, int irq)
{
    uint8_t m = 1u << irq;
    if (c->auto_eoi) {
        if (c->rotate_auto_eoi) {
            c->priority_add = (irq + 1) & 7;
        }
    } else {
        c->isr |= m;
    }
    /* A level input keeps its request for as long as the line stays high. */
    if (!chip_level(c, irq)) {
        c->irr &= ~m;
    }
}

/* Propagate slave INT to master IR2 and recompute the master output. Returns
 * true when the output changed and must be reported. */
static bool pic_update(struct pic *pic)
{
    struct pic_state *s = &pic->st;
    chip_set_line(&s->chip[0], 2, chip_pending(&s->chip[1], false) >= 0);
    bool out = chip_pending(&s->chip[0], true) >= 0;
    if (out != s->out) {
        s->out = out;
        return true;
    }
    return false;
}

static void pic_unlock_notify(struct pic *pic, bool changed)
{
    bool level = pic->st.out;
    pthread_mutex_unlock(&pic->lock);
    if (changed && pic->intr_changed) {
        pic->intr_changed(pic->opaque, level);
    }
}

static void chip_reset_init(struct pic_chip *c)
{
    /* Datasheet ICW1: edge sense reset, IMR cleared, IR7 lowest priority, special
     * mask mode off, status read set to IRR, ICW4 functions cleared. */
    c->irr = c->elcr & c->lines;
    c->isr = 0;
    c->imr = 0;
    c->priority_add = 0;
    c->read_isr = false;
    c->poll = false;
    c->special_mask = false;
    c->auto_eoi = false;
    c->sfnm = false;
    c->rotate_auto_eoi = false;
}

static void pic_reset_state(struct pic_state *s)
{
    for (int i = 0; i < 2; i++) {
        struct pic_chip *c = &s->chip[i];
        uint8_t lines = c->lines;
        memset(c, 0, sizeof(*c));
        c->lines = lines; /* input pins are driven by the devices, not reset */
        c->elcr_mask = i == 0 ? 0xf8 : 0xde;
    }
    s->out = false;
}

struct pic *pic_new(void (*intr_changed)(void *opaque, bool level), void *opaque)
{
    struct pic *pic = calloc(1, sizeof(*pic));
    if (!pic) {
        return NULL;
    }
    pthread_mutex_init(&pic->lock, NULL);
    pic->intr_changed = intr_changed;
    pic->opaque = opaque;
    pic_reset_state(&pic->st);
    return pic;
}

void pic_free(struct pic *pic)
{
    if (!pic) {
        return;
    }
    pthread_mutex_destroy(&pic->lock);
    free(pic);
}

void pic_set_irq(struct pic *pic, int irq, int level)
{
    if (irq < 0 || irq >= PIC_NUM_IRQS) {
        log_warn(TAG, "set_irq: no input %d", irq);
        return;
    }
    pthread_mutex_lock(&pic->lock);
    chip_set_line(&pic->st.chip[irq >> 3], irq & 7, level != 0);
    pic_unlock_notify(pic, pic_update(pic));
}

bool pic_has_intr(struct pic *pic)
{
    pthread_mutex_lock(&pic->lock);
    bool r = chip_pending(&pic->st.chip[0], true) >= 0;
    pthread_mutex_unlock(&pic->lock);
    return r;
}

int pic_ack(struct pic *pic)
{
    pthread_mutex_lock(&pic->lock);
    struct pic_chip *m = &pic->st.chip[0], *sl = &pic->st.chip[1];
    int vector;
    int irq = chip_pending(m, true);
    if (irq < 0) {
        /* Request went away before INTA: IR7 spurious, no ISR bit set. */
        vector = m->irq_base + 7;
    } else {
        chip_intack(m, irq);
        if (irq == 2) {
            int irq2 = chip_pending(sl, false);
            if (irq2 >= 0) {
                chip_intack(sl, irq2);
            } else {
                /* Slave spurious IRQ15: master's IR2 stays in service and needs EOI. */
                irq2 = 7;
            }
            vector = sl->irq_base + irq2;
            /* The slave's INT drops during INTA: a request still pending there (AEOI)
             * makes a fresh edge on IR2 in pic_update() instead of being lost. */
            m->lines &= ~(1u << 2);
        } else {
            vector = m->irq_base + irq;
        }
    }
    pic_unlock_notify(pic, pic_update(pic));
    return vector;
}

static uint8_t chip_poll(struct pic_chip *c, bool is_master)
{
    int irq = chip_pending(c, is_master);
    if (irq < 0) {
        return 0;
    }
    chip_intack(c, irq);
    return 0x80 | irq;
}

static void chip_write_cmd(struct pic_chip *c, uint8_t val)
{
    if (val & 0x10) {
        /* ICW1 */
        chip_reset_init(c);
        c->icw4_needed = val & 0x01;
        c->single = val & 0x02;
        c->ltim = val & 0x08;
        c->init_step = PIC_INIT_ICW2;
        return;
    }
    if (val & 0x08) {
        /* OCW3 */
        if (val & 0x04) {
            c->poll = true;
        }
        if (val & 0x02) {
            c->read_isr = val & 0x01;
        }
        if (val & 0x40) {
            c->special_mask = (val >> 5) & 1;
        }
        return;
    }
    /* OCW2: R SL EOI */
    int irq;
    int p;
    switch (val >> 5) {
    case 0: /* rotate in AEOI mode: clear */
        c->rotate_auto_eoi = false;
        break;
    case 4: /* rotate in AEOI mode: set */
        c->rotate_auto_eoi = true;
        break;
    case 1: /* non-specific EOI */
    case 5: /* rotate on non-specific EOI */
        p = chip_priority(c, c->isr);
        if (p != 8) {
            irq = (p + c->priority_add) & 7;
            c->isr &= ~(1u << irq);
            if (val >> 5 == 5) {
                c->priority_add = (irq + 1) & 7;
            }
        }
        break;
    case 3: /* specific EOI */
        c->isr &= ~(1u << (val & 7));
        break;
    case 7: /* rotate on specific EOI */
        irq = val & 7;
        c->isr &= ~(1u << irq);
        c->priority_add = (irq + 1) & 7;
        break;
    case 6: /* set priority: IR L2-L0 becomes the lowest */
        c->priority_add = ((val & 7) + 1) & 7;
        break;
    default: /* 2: no operation */
        break;
    }
}

static void chip_write_data(struct pic_chip *c, uint8_t val)
{
    switch (c->init_step) {
    case PIC_INIT_ICW2:
        c->irq_base = val & 0xf8;
        if (!c->single) {
            c->init_step = PIC_INIT_ICW3;
        } else {
            c->init_step = c->icw4_needed ? PIC_INIT_ICW4 : PIC_INIT_DONE;
        }
        break;
    case PIC_INIT_ICW3:
        c->icw3 = val;
        c->init_step = c->icw4_needed ? PIC_INIT_ICW4 : PIC_INIT_DONE;
        break;
    case PIC_INIT_ICW4:
        c->auto_eoi = (val >> 1) & 1;
        c->sfnm = (val >> 4) & 1;
        c->init_step = PIC_INIT_DONE;
        break;
    default: /* OCW1 */
        c->imr = val;
        break;
    }
}

uint64_t pic_read(struct pic *pic, uint64_t port, unsigned size)
{
    uint8_t r = 0xff;
    bool changed = false;
    pthread_mutex_lock(&pic->lock);
    if (port == PIC_PORT_ELCR || port == PIC_PORT_ELCR + 1) {
        r = pic->st.chip[port - PIC_PORT_ELCR].elcr;
    } else if ((port & ~1ull) == PIC_PORT_MASTER || (port & ~1ull) == PIC_PORT_SLAVE) {
        int idx = (port & ~1ull) == PIC_PORT_SLAVE;
        struct pic_chip *c = &pic->st.chip[idx];
        if (c->poll) {
            /* Poll command: the read is the INTA (datasheet "The Poll Command"). */
            c->poll = false;
            r = chip_poll(c, idx == 0);
            changed = pic_update(pic);
        } else if (port & 1) {
            r = c->imr;
        } else {
            r = c->read_isr ? c->isr : c->irr;
        }
    }
    pic_unlock_notify(pic, changed);
    return r;
}

void pic_write(struct pic *pic, uint64_t port, uint64_t val, unsigned size)
{
    uint8_t v = val & 0xff;
    pthread_mutex_lock(&pic->lock);
    if (port == PIC_PORT_ELCR || port == PIC_PORT_ELCR + 1) {
        struct pic_chip *c = &pic->st.chip[port - PIC_PORT_ELCR];
        c->elcr = v & c->elcr_mask;
        /* A line turned level reflects its pin at once. */
        c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr);
    } else if ((port & ~1ull) == PIC_PORT_MASTER || (port & ~1ull) == PIC_PORT_SLAVE) {
        struct pic_chip *c = &pic->st.chip[(port & ~1ull) == PIC_PORT_SLAVE];
        if (port & 1) {
            chip_write_data(c, v);
        } else {
            chip_write_cmd(c, v);
        }
    }
    pic_unlock_notify(pic, pic_update(pic));
}

static uint64_t pic_bus_read_at(void *opaque, uint64_t base, uint64_t off, unsigned size)
{
    return off < 2 ? pic_read(opaque, base + off, size) : 0xff;
}

static uint64_t pic_master_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return pic_bus_read_at(opaque, PIC_PORT_MASTER, off, size);
}

static uint64_t pic_slave_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return pic_bus_read_at(opaque, PIC_PORT_SLAVE, off, size);
}

static uint64_t pic_elcr_bus_read(void *opaque, uint64_t off, unsigned size)
{
    if (size == 2 && off == 0) {
        /* A 16-bit read of 0x4D0 returns both ELCR bytes. */
        return pic_read(opaque, PIC_PORT_ELCR, 1) | (pic_read(opaque, PIC_PORT_ELCR + 1, 1) << 8);
    }
    return pic_bus_read_at(opaque, PIC_PORT_ELCR, off, size);
}

static void pic_master_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (off < 2) {
        pic_write(opaque, PIC_PORT_MASTER + off, val, size);
    }
}

static void pic_slave_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (off < 2) {
        pic_write(opaque, PIC_PORT_SLAVE + off, val, size);
    }
}

static void pic_elcr_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (size == 2 && off == 0) {
        pic_write(opaque, PIC_PORT_ELCR, val & 0xff, 1);
        pic_write(opaque, PIC_PORT_ELCR + 1, (val >> 8) & 0xff, 1);
    } else if (off < 2) {
        pic_write(opaque, PIC_PORT_ELCR + off, val, size);
    }
}

const struct bus_ops pic_master_bus_ops = {.read = pic_master_bus_read,
                                           .write = pic_master_bus_write};
const struct bus_ops pic_slave_bus_ops = {.read = pic_slave_bus_read, .write = pic_slave_bus_write};
const struct bus_ops pic_elcr_bus_ops = {.read = pic_elcr_bus_read, .write = pic_elcr_bus_write};

/* ---- state ---- */

#define PIC_CHIP_FIELDS(n)                                                                         \
    VMSTATE_FIELD(struct pic_state, chip[n].lines, VMSTATE_U8),                                    \
        VMSTATE_FIELD(struct pic_state, chip[n].irr, VMSTATE_U8),                                  \
        VMSTATE_FIELD(struct pic_state, chip[n].isr, VMSTATE_U8),                                  \
        VMSTATE_FIELD(struct pic_state, chip[n].imr, VMSTATE_U8),                                  \
        VMSTATE_FIELD(struct pic_state, chip[n].elcr, VMSTATE_U8),                                 \
        VMSTATE_FIELD(struct pic_state, chip[n].irq_base, VMSTATE_U8),                             \
        VMSTATE_FIELD(struct pic_state, chip[n].priority_add, VMSTATE_U8),                         \
        VMSTATE_FIELD(struct pic_state, chip[n].init_step, VMSTATE_U8),                            \
        VMSTATE_FIELD(struct pic_state, chip[n].icw3, VMSTATE_U8),                                 \
        VMSTATE_FIELD(struct pic_state, chip[n].icw4_needed, VMSTATE_BOOL),                        \
        VMSTATE_FIELD(struct pic_state, chip[n].single, VMSTATE_BOOL),                             \
        VMSTATE_FIELD(struct pic_state, chip[n].ltim, VMSTATE_BOOL),                               \
        VMSTATE_FIELD(struct pic_state, chip[n].auto_eoi, VMSTATE_BOOL),                           \
        VMSTATE_FIELD(struct pic_state, chip[n].sfnm, VMSTATE_BOOL),                               \
        VMSTATE_FIELD(struct pic_state, chip[n].rotate_auto_eoi, VMSTATE_BOOL),                    \
        VMSTATE_FIELD(struct pic_state, chip[n].read_isr, VMSTATE_BOOL),                           \
        VMSTATE_FIELD(struct pic_state, chip[n].poll, VMSTATE_BOOL),                               \
        VMSTATE_FIELD(struct pic_state, chip[n].special_mask, VMSTATE_BOOL)

static const struct vmstate_field pic_fields[] = {
    PIC_CHIP_FIELDS(0),
    PIC_CHIP_FIELDS(1),
    VMSTATE_FIELD(struct pic_state, out, VMSTATE_BOOL),
    VMSTATE_END,
};

static int pic_post_load(void *scratch, int version_id)
{
    struct pic_state *s = scratch;
    for (int i = 0; i < 2; i++) {
        if (s->chip[i].init_step > PIC_INIT_ICW4) {
            return -EINVAL;
        }
        s->chip[i].elcr_mask = i == 0 ? 0xf8 : 0xde;
        s->chip[i].elcr &= s->chip[i].elcr_mask;
    }
    return 0;
}

static const struct vmstate_desc pic_vmstate = {
    .name = "pic8259",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct pic_state),
    .fields = pic_fields,
    .post_load = pic_post_load,
};

static void pic_dev_reset(void *dev)
{
    struct pic *pic = dev;
    pthread_mutex_lock(&pic->lock);
    bool was = pic->st.out;
    pic_reset_state(&pic->st);
    pic_unlock_notify(pic, was);
}

static int pic_dev_save(void *dev, GByteArray *out)
{
    struct pic *pic = dev;
    pthread_mutex_lock(&pic->lock);
    int r = vmstate_save(&pic_vmstate, &pic->st, out);
    pthread_mutex_unlock(&pic->lock);
    return r;
}

static int pic_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct pic *pic = dev;
    pthread_mutex_lock(&pic->lock);
    int r = vmstate_load(&pic_vmstate, &pic->st, buf, len, NULL);
    /* Report the loaded output level so the listener's view matches. */
    pic_unlock_notify(pic, r == 0);
    return r;
}

const struct device_ops pic_device_ops = {
    .name = "pic8259",
    .reset = pic_dev_reset,
    .save = pic_dev_save,
    .load = pic_dev_load,
};
