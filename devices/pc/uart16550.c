/* NS16550A UART core. Register semantics follow the TI/NatSemi PC16550D data
 * sheet; where the sheet leaves room, behaviour matches what Linux's 8250 driver
 * probes (FIFO bits in IIR, scratch register, THRE re-assertion on IER toggling,
 * loopback modem lines). */
#include "devices/pc/uart16550.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define UART_TAG "dev.uart"

/* Register offsets (data sheet table 2). */
#define UART_RBR_THR 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_ERBFI 0x01 /* received data available */
#define UART_IER_ETBEI 0x02 /* THR empty */
#define UART_IER_ELSI 0x04  /* receiver line status */
#define UART_IER_EDSSI 0x08 /* modem status */

#define UART_IIR_NONE 0x01
#define UART_IIR_MS 0x00
#define UART_IIR_THRE 0x02
#define UART_IIR_RDA 0x04
#define UART_IIR_RLS 0x06
#define UART_IIR_TIMEOUT 0x0c
#define UART_IIR_FIFO 0xc0 /* both FIFO-enabled bits: what marks a 16550A */

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_FCR_TRIGGER 0xc0

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_PE 0x04
#define UART_LSR_FE 0x08
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_DELTAS 0x0f
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

/* 1.8432 MHz crystal / 16 */
#define UART_BASE_BAUD 115200

/* Everything a snapshot carries. */
struct uart_state {
    uint8_t rx_fifo[UART_FIFO_SIZE]; /* RX FIFO ring (data sheet 8.6); 1 deep in 16450 mode */
    uint8_t rx_head;                 /* RX FIFO: index of the oldest byte */
    uint8_t rx_count;                /* RX FIFO: bytes held */
    uint8_t ier;                     /* IER bits 0-3 (8.4) */
    uint8_t lcr;                     /* LCR, bit 7 = DLAB (8.2) */
    uint8_t mcr;                     /* MCR bits 0-4, bit 4 = loopback (8.7) */
    uint8_t lsr_err;                 /* LSR bits 1-4: OE/PE/FE/BI, cleared by LSR read (8.8) */
    uint8_t msr;                     /* MSR: status bits 4-7, delta bits 0-3 (8.9) */
    uint8_t scr;                     /* scratch register (8.10) */
    uint8_t dll;                     /* divisor latch LSB (8.11) */
    uint8_t dlm;                     /* divisor latch MSB (8.11) */
    uint8_t fcr;                     /* FCR bit 0 FIFO enable, bits 6-7 RX trigger (8.5) */
    bool thr_ipending;               /* IIR THRE source latched, cleared by IIR read/THR write */
    bool timeout_ipending;           /* IIR character timeout source (8.5, 4 char times) */
};

struct uart {
    pthread_mutex_t lock;     /* guards s and irq_level */
    struct irq_line irq;      /* INTRPT output (IRQ 4 on COM1) */
    struct uart_backend be;   /* host side of TX */
    struct timerq *tq;        /* for the character timeout, or NULL */
    struct timer *rx_timeout; /* character timeout timer, or NULL */
    int irq_level;            /* level last driven on irq */
    struct uart_state s;
};

static void uart_state_reset(struct uart_state *s)
{
    memset(s, 0, sizeof(*s));
    /* A modem with carrier and ready lines up: what a null-modem host side looks like. */
    s->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    s->dll = 0x0c; /* 9600 baud, the usual firmware default */
}

static bool uart_fifo_enabled(const struct uart_state *s)
{
    return s->fcr & UART_FCR_ENABLE;
}

static unsigned uart_rx_capacity(const struct uart_state *s)
{
    return uart_fifo_enabled(s) ? UART_FIFO_SIZE : 1;
}

static unsigned uart_rx_trigger(const struct uart_state *s)
{
    static const unsigned levels[4] = {1, 4, 8, 14};
    return uart_fifo_enabled(s) ? levels[s->fcr >> 6] : 1;
}

static uint8_t uart_iir_id(struct uart *u)
{
    const struct uart_state *s = &u->s;
    bool timeout = u->tq ? s->timeout_ipending : (uart_fifo_enabled(s) && s->rx_count > 0);
    if ((s->ier & UART_IER_ELSI) && (s->lsr_err & UART_LSR_ERRORS)) {
        return UART_IIR_RLS;
    }
    if ((s->ier & UART_IER_ERBFI) && s->rx_count >= uart_rx_trigger(s)) {
        return UART_IIR_RDA;
    }
    if ((s->ier & UART_IER_ERBFI) && timeout && s->rx_count > 0) {
        return UART_IIR_TIMEOUT;
    }
    if ((s->ier & UART_IER_ETBEI) && s->thr_ipending) {
        return UART_IIR_THRE;
    }
    if ((s->ier & UART_IER_EDSSI) && (s->msr & UART_MSR_DELTAS)) {
        return UART_IIR_MS;
    }
    return UART_IIR_NONE;
}

/* The line follows "an interrupt is pending". A PC gates it with MCR OUT2 on some
 * boards; like QEMU we do not, so guests that poll IIR but forget OUT2 still work. */
static void uart_update_irq(struct uart *u)
{
    int level = uart_iir_id(u) != UART_IIR_NONE;
    if (level != u->irq_level) {
        u->irq_level = level;
        irq_set(&u->irq, level);
    }
}

static uint64_t uart_char_ns(const struct uart_state *s)
{
    unsigned div = (unsigned)s->dlm << 8 | s->dll;
    if (div == 0) {
        div = 1;
    }
    /* start + 5..8 data + parity + 1..2 stop bits */
    unsigned bits = 1 + 5 + (s->lcr & 3) + ((s->lcr & 0x08) ? 1 : 0) + ((s->lcr & 0x04) ? 2 : 1);
    return (uint64_t)bits * div * 1000000000ull / UART_BASE_BAUD;
}

static void uart_arm_timeout(struct uart *u)
{
    if (u->rx_timeout && uart_fifo_enabled(&u->s) && u->s.rx_count > 0) {
        timer_mod(u->rx_timeout, timerq_now_ns(u->tq) + 4 * uart_char_ns(&u->s));
    } else if (u->rx_timeout) {
        timer_del(u->rx_timeout);
    }
}

static void uart_timeout_cb(void *opaque)
{
    struct uart *u = opaque;
    pthread_mutex_lock(&u->lock);
    if (uart_fifo_enabled(&u->s) && u->s.rx_count > 0) {
        u->s.timeout_ipending = true;
        uart_update_irq(u);
    }
    pthread_mutex_unlock(&u->lock);
}

static void uart_rx_clear(struct uart_state *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
    s->timeout_ipending = false;
}

/* Returns false on overrun (byte dropped, OE set). */
static bool uart_rx_push(struct uart_state *s, uint8_t b)
{
    if (s->rx_count >= uart_rx_capacity(s)) {
        s->lsr_err |= UART_LSR_OE;
        log_debug(UART_TAG, "receiver overrun, byte 0x%02x dropped", b);
        return false;
    }
    s->rx_fifo[(s->rx_head + s->rx_count) % UART_FIFO_SIZE] = b;
    s->rx_count++;
    return true;
}

/* In loopback the modem inputs are wired to the modem outputs (data sheet 8.7). */
static uint8_t uart_msr_inputs(const struct uart_state *s)
{
    if (!(s->mcr & UART_MCR_LOOP)) {
        return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    }
    uint8_t v = 0;
    v |= (s->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0;
    v |= (s->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0;
    v |= (s->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0;
    v |= (s->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0;
    return v;
}

static void uart_msr_update(struct uart_state *s)
{
    uint8_t old = s->msr & 0xf0, now = uart_msr_inputs(s);
    uint8_t delta = 0;
    delta |= ((old ^ now) & UART_MSR_CTS) ? UART_MSR_DCTS : 0;
    delta |= ((old ^ now) & UART_MSR_DSR) ? UART_MSR_DDSR : 0;
    delta |= ((old & UART_MSR_RI) && !(now & UART_MSR_RI)) ? UART_MSR_TERI : 0;
    delta |= ((old ^ now) & UART_MSR_DCD) ? UART_MSR_DDCD : 0;
    s->msr = now | (s->msr & UART_MSR_DELTAS) | delta;
}

static void uart_transmit(struct uart *u, uint8_t b)
{
    struct uart_state *s = &u->s;
    /* THRE drops while the byte moves to the shift register, then comes back: the
     * edge an edge-triggered PIC needs for the next THRE interrupt. */
    s->thr_ipending = false;
    uart_update_irq(u);
    if (s->mcr & UART_MCR_LOOP) {
        if (uart_rx_push(s, b)) {
            uart_arm_timeout(u);
        }
    } else if (u->be.write) {
        u->be.write(u->be.opaque, &b, 1);
    }
    s->thr_ipending = true;
    uart_update_irq(u);
}

static uint8_t uart_read_locked(struct uart *u, unsigned off)
{
    struct uart_state *s = &u->s;
    uint8_t v = 0xff;
    switch (off) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            return s->dll;
        }
        v = 0;
        if (s->rx_count > 0) {
            v = s->rx_fifo[s->rx_head];
            s->rx_head = (s->rx_head + 1) % UART_FIFO_SIZE;
            s->rx_count--;
        }
        s->timeout_ipending = false;
        uart_arm_timeout(u);
        break;
    case UART_IER:
        return (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
    case UART_IIR_FCR: {
        uint8_t id = uart_iir_id(u);
        if (id == UART_IIR_THRE) {
            s->thr_ipending = false; /* reading IIR with THRE as the source clears it */
        }
        v = id | (uart_fifo_enabled(s) ? UART_IIR_FIFO : 0);
        break;
    }
    case UART_LCR:
        return s->lcr;
    case UART_MCR:
        return s->mcr;
    case UART_LSR:
        v = s->lsr_err | UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0);
        s->lsr_err = 0;
        break;
    case UART_MSR:
        v = s->msr;
        s->msr &= ~UART_MSR_DELTAS;
        break;
    case UART_SCR:
        return s->scr;
    default:
        return 0xff;
    }
    uart_update_irq(u);
    return v;
}

static void uart_write_locked(struct uart *u, unsigned off, uint8_t val)
{
    struct uart_state *s = &u->s;
    switch (off) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            s->dll = val;
            return;
        }
        uart_transmit(u, val);
        return;
    case UART_IER: {
        if (s->lcr & UART_LCR_DLAB) {
            s->dlm = val;
            return;
        }
        uint8_t changed = (s->ier ^ val) & 0x0f;
        s->ier = val & 0x0f;
        /* THR is always empty here, so enabling ETBEI raises THRE at once: Linux's
         * THRE test toggles IER and expects the interrupt to come back. */
        if (changed & UART_IER_ETBEI) {
            s->thr_ipending = (s->ier & UART_IER_ETBEI) != 0;
        }
        break;
    }
    case UART_IIR_FCR: {
        bool was = uart_fifo_enabled(s), now = val & UART_FCR_ENABLE;
        if (was != now || (val & UART_FCR_CLEAR_RX)) {
            uart_rx_clear(s);
        }
        s->fcr = now ? (val & (UART_FCR_ENABLE | UART_FCR_TRIGGER)) : 0;
        uart_arm_timeout(u);
        break;
    }
    case UART_LCR:
        s->lcr = val;
        return;
    case UART_MCR:
        s->mcr = val & 0x1f;
        uart_msr_update(s);
        break;
    case UART_SCR:
        s->scr = val;
        return;
    default:
        return; /* LSR and MSR writes are factory-test only */
    }
    uart_update_irq(u);
}

uint64_t uart_read(struct uart *u, uint64_t off, unsigned size)
{
    if (off >= UART_IO_LEN) {
        return ~0ull;
    }
    pthread_mutex_lock(&u->lock);
    uint8_t v = uart_read_locked(u, (unsigned)off);
    pthread_mutex_unlock(&u->lock);
    return v;
}

/* Byte registers: a wider access writes its low byte, as on the ISA bus. */
void uart_write(struct uart *u, uint64_t off, uint64_t val, unsigned size)
{
    if (off >= UART_IO_LEN) {
        return;
    }
    pthread_mutex_lock(&u->lock);
    uart_write_locked(u, (unsigned)off, (uint8_t)val);
    pthread_mutex_unlock(&u->lock);
}

int uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&u->lock);
    size_t n = 0;
    if (!(u->s.mcr & UART_MCR_LOOP)) {
        while (n < len && u->s.rx_count < uart_rx_capacity(&u->s)) {
            uart_rx_push(&u->s, buf[n]);
            n++;
        }
    }
    if (n > 0) {
        uart_arm_timeout(u);
        uart_update_irq(u);
    }
    pthread_mutex_unlock(&u->lock);
    return (int)n;
}

size_t uart_rx_space(struct uart *u)
{
    pthread_mutex_lock(&u->lock);
    size_t n = (u->s.mcr & UART_MCR_LOOP) ? 0 : uart_rx_capacity(&u->s) - u->s.rx_count;
    pthread_mutex_unlock(&u->lock);
    return n;
}

struct uart *uart_new(const struct irq_line *irq, const struct uart_backend *backend,
                      struct timerq *tq)
{
    struct uart *u = calloc(1, sizeof(*u));
    if (!u) {
        return NULL;
    }
    pthread_mutex_init(&u->lock, NULL);
    if (irq) {
        u->irq = *irq;
    }
    if (backend) {
        u->be = *backend;
    }
    u->tq = tq;
    if (tq) {
        u->rx_timeout = timer_new(tq, uart_timeout_cb, u);
        if (!u->rx_timeout) {
            pthread_mutex_destroy(&u->lock);
            free(u);
            return NULL;
        }
    }
    uart_state_reset(&u->s);
    return u;
}

void uart_free(struct uart *u)
{
    if (!u) {
        return;
    }
    timer_free(u->rx_timeout); /* waits for a running timeout callback: lock not held */
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static uint64_t uart_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return uart_read(opaque, off, size);
}

static void uart_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    uart_write(opaque, off, val, size);
}

const struct bus_ops uart_bus_ops = {.read = uart_bus_read, .write = uart_bus_write};

static int uart_post_load(void *scratch, int version_id)
{
    const struct uart_state *s = scratch;
    if (s->rx_head >= UART_FIFO_SIZE || s->rx_count > uart_rx_capacity(s) || s->ier > 0x0f ||
        s->mcr > 0x1f || (s->fcr & ~(UART_FCR_ENABLE | UART_FCR_TRIGGER)) != 0) {
        return -EINVAL;
    }
    return 0;
}

static const struct vmstate_field uart_fields[] = {
    VMSTATE_BUF(struct uart_state, rx_fifo),
    VMSTATE_FIELD(struct uart_state, rx_head, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, rx_count, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, ier, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, lcr, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, mcr, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, lsr_err, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, msr, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, scr, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, dll, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, dlm, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, fcr, VMSTATE_U8),
    VMSTATE_FIELD(struct uart_state, thr_ipending, VMSTATE_BOOL),
    VMSTATE_FIELD(struct uart_state, timeout_ipending, VMSTATE_BOOL),
    VMSTATE_END,
};

static const struct vmstate_desc uart_vmstate = {
    .name = "uart16550",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct uart_state),
    .fields = uart_fields,
    .post_load = uart_post_load,
};

static void uart_dev_reset(void *dev)
{
    struct uart *u = dev;
    pthread_mutex_lock(&u->lock);
    uart_state_reset(&u->s);
    uart_arm_timeout(u);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

static int uart_dev_save(void *dev, GByteArray *out)
{
    struct uart *u = dev;
    pthread_mutex_lock(&u->lock);
    int ret = vmstate_save(&uart_vmstate, &u->s, out);
    pthread_mutex_unlock(&u->lock);
    return ret;
}

static int uart_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct uart *u = dev;
    struct uart_state tmp;
    uart_state_reset(&tmp); /* fields missing from older streams keep reset values */
    int ret = vmstate_load(&uart_vmstate, &tmp, buf, len, NULL);
    if (ret < 0) {
        return ret;
    }
    pthread_mutex_lock(&u->lock);
    u->s = tmp;
    uart_arm_timeout(u);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

const struct device_ops uart_device_ops = {
    .name = "uart16550",
    .reset = uart_dev_reset,
    .save = uart_dev_save,
    .load = uart_dev_load,
};
