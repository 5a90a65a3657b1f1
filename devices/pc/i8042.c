/* 8042 keyboard controller + AT keyboard. Controller commands follow the IBM PC/AT
 * Technical Reference (keyboard controller section); keyboard commands follow the
 * IBM PS/2 keyboard spec. Replies to identify and get-scancode-set are given
 * pre-translated when the controller translates, as QEMU does and Linux expects. */
#include "devices/pc/i8042.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define I8042_TAG "dev.i8042"

#define I8042_QUEUE 16

/* Status register (port 0x64 read). */
#define I8042_STS_OBF 0x01
#define I8042_STS_SYS 0x04
#define I8042_STS_CMD 0x08 /* last write went to 0x64 */
#define I8042_STS_UNLOCKED 0x10
#define I8042_STS_AUX_OBF 0x20

/* Controller command byte. */
#define I8042_CCB_KBD_INT 0x01
#define I8042_CCB_AUX_INT 0x02
#define I8042_CCB_SYS 0x04
#define I8042_CCB_KBD_DISABLE 0x10
#define I8042_CCB_AUX_DISABLE 0x20
#define I8042_CCB_XLATE 0x40

/* Output port. */
#define I8042_OUT_RESET_N 0x01
#define I8042_OUT_A20 0x02
#define I8042_OUT_KBD_OBF 0x10
#define I8042_OUT_AUX_OBF 0x20

/* Keyboard replies. */
#define KBD_ACK 0xfa
#define KBD_RESEND 0xfe
#define KBD_BAT_OK 0xaa
#define KBD_ECHO 0xee

/* PS/2 mouse (IBM PS/2 Technical Reference, pointing device section). */
#define MOUSE_ACK 0xfa
#define MOUSE_RESEND 0xfe
#define MOUSE_BAT_OK 0xaa
#define MOUSE_ID_STD 0x00
#define MOUSE_ID_IMPS 0x03 /* IntelliMouse: wheel in a 4th packet byte */
#define MOUSE_PKT_ALWAYS1 0x08
#define MOUSE_PKT_XSIGN 0x10
#define MOUSE_PKT_YSIGN 0x20
#define MOUSE_PKT_XOVF 0x40
#define MOUSE_PKT_YOVF 0x80
#define MOUSE_STS_REMOTE 0x40 /* status byte 1 (command 0xE9) */
#define MOUSE_STS_ENABLED 0x20
#define MOUSE_STS_SCALE21 0x10
#define MOUSE_MOTION_MAX 255 /* 9-bit two's complement counters */
#define MOUSE_MOTION_MIN (-256)
#define MOUSE_ACCUM_LIMIT 4096 /* host motion kept while the guest is not reading */

struct i8042_state {
    uint8_t status;             /* status register bits SYS and CMD/DATA (others computed) */
    uint8_t ccb;                /* controller command byte (commands 0x20/0x60) */
    uint8_t outport;            /* output port: bit 0 reset#, bit 1 A20 (0xD0/0xD1) */
    uint8_t pending_cmd;        /* controller command awaiting its data byte, 0 = none */
    uint8_t obuf;               /* output buffer, read at port 0x60 */
    bool obf;                   /* output buffer full (status bit 0) */
    bool obuf_aux;              /* output buffer came from the aux port (status bit 5) */
    uint8_t ctl_q[I8042_QUEUE]; /* controller output (replies, 0xD2/0xD3 bytes) not yet read */
    uint16_t ctl_aux;           /* bit i: ctl_q[i] shows as aux data (0xD3) */
    uint8_t ctl_n;              /* bytes in ctl_q */
    uint8_t kbd_q[I8042_QUEUE]; /* keyboard's own buffer (PS/2 kbd: 16 bytes) */
    uint8_t kbd_n;              /* bytes in kbd_q */
    uint8_t aux_q[I8042_QUEUE]; /* aux device bytes waiting */
    uint8_t aux_n;              /* bytes in aux_q */
    uint8_t kbd_pending;        /* keyboard command awaiting its argument (0xED/0xF0/0xF3) */
    uint8_t kbd_set;            /* keyboard scancode set, 1..3 (command 0xF0) */
    uint8_t kbd_leds;           /* LED state (command 0xED) */
    uint8_t kbd_typematic;      /* typematic rate/delay (command 0xF3) */
    bool kbd_scanning;          /* keyboard scanning enabled (0xF4/0xF5) */
    /* PS/2 mouse on the aux port (version 2). */
    uint8_t mouse_pending;      /* mouse command awaiting its argument (0xF3/0xE8) */
    uint8_t mouse_rate;         /* sample rate, reports/s (command 0xF3) */
    uint8_t mouse_res;          /* resolution 0..3 = 1,2,4,8 counts/mm (command 0xE8) */
    bool mouse_scale21;         /* 2:1 scaling (0xE7) vs 1:1 (0xE6) */
    bool mouse_enabled;         /* data reporting on (0xF4) / off (0xF5) */
    bool mouse_remote;          /* remote mode (0xF0) vs stream mode (0xEA) */
    bool mouse_wrap;            /* wrap (echo) mode (0xEE until 0xEC) */
    uint8_t mouse_id;           /* device ID sent for 0xF2: 0, or 3 after 200/100/80 */
    uint8_t mouse_rate_hist[3]; /* last three sample rates set, newest last (IMPS knock) */
    uint8_t mouse_buttons;      /* button state, packet byte 0 bits: 0 L, 1 R, 2 M */
    int32_t mouse_dx;           /* motion counter, right positive, not yet reported */
    int32_t mouse_dy;           /* motion counter, up positive, not yet reported */
    int32_t mouse_dz;           /* wheel counter, toward the user positive (IMPS byte 3) */
    bool mouse_dirty;           /* buttons changed since the last packet */
};

struct i8042 {
    pthread_mutex_t lock;      /* guards s, levels and aux */
    struct irq_line kbd_irq;   /* IRQ 1 */
    struct irq_line aux_irq;   /* IRQ 12 */
    struct i8042_callbacks cb; /* reset / A20 */
    struct i8042_aux_ops aux;  /* aux device, write == NULL when absent */
    bool mouse;                /* the built-in PS/2 mouse answers the aux port */
    int kbd_level, aux_level;  /* levels last driven */
    struct i8042_state s;
};

/* Work to do after the lock is dropped. */
struct i8042_deferred {
    bool reset;
    bool a20_changed;
    bool a20;
    int aux_byte; /* -1 = none */
};

/* Set 1 make code -> set 2 make code (E0-prefixed keys use the same entry). */
static const uint8_t i8042_set1_to_set2[0x5e] = {
    0x00, 0x76, 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55, 0x66, 0x0d,
    0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b, 0x5a, 0x14, 0x1c, 0x1b,
    0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52, 0x0e, 0x12, 0x5d, 0x1a, 0x22, 0x21, 0x2a,
    0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a, 0x59, 0x7c, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0c, 0x03,
    0x0b, 0x83, 0x0a, 0x01, 0x09, 0x77, 0x7e, 0x6c, 0x75, 0x7d, 0x7b, 0x6b, 0x73, 0x74, 0x79, 0x69,
    0x72, 0x7a, 0x70, 0x71, 0x84, 0x00, 0x61, 0x78, 0x07, 0x00, 0x00, 0x1f, 0x27, 0x2f,
};

static void i8042_mouse_defaults(struct i8042_state *s);

static void i8042_state_reset(struct i8042_state *s)
{
    memset(s, 0, sizeof(*s));
    s->status = I8042_STS_SYS;
    /* What PC firmware leaves: keyboard interrupt on, translation on, aux off. */
    s->ccb = I8042_CCB_KBD_INT | I8042_CCB_SYS | I8042_CCB_XLATE | I8042_CCB_AUX_DISABLE;
    s->outport = 0xcc | I8042_OUT_RESET_N | I8042_OUT_A20;
    s->kbd_set = 2;
    s->kbd_scanning = true;
    i8042_mouse_defaults(s);
}

static bool i8042_q_push(uint8_t *q, uint8_t *n, uint8_t b)
{
    if (*n >= I8042_QUEUE) {
        return false;
    }
    q[(*n)++] = b;
    return true;
}

static uint8_t i8042_q_pop(uint8_t *q, uint8_t *n)
{
    uint8_t b = q[0];
    memmove(q, q + 1, (size_t)(*n - 1));
    (*n)--;
    return b;
}

static void i8042_update_irq(struct i8042 *k)
{
    struct i8042_state *s = &k->s;
    int kl = s->obf && !s->obuf_aux && (s->ccb & I8042_CCB_KBD_INT);
    int al = s->obf && s->obuf_aux && (s->ccb & I8042_CCB_AUX_INT);
    if (kl != k->kbd_level) {
        k->kbd_level = kl;
        irq_set(&k->kbd_irq, kl);
    }
    if (al != k->aux_level) {
        k->aux_level = al;
        irq_set(&k->aux_irq, al);
    }
}

static void i8042_mouse_flush(struct i8042 *k);

/* Move the next waiting byte into the empty output buffer. */
static void i8042_refill(struct i8042 *k)
{
    struct i8042_state *s = &k->s;
    i8042_mouse_flush(k);
    if (!s->obf) {
        if (s->ctl_n) {
            /* Controller output ignores the port disables: Linux's AUX loopback test
             * (0xD3) runs while the aux port is still disabled. */
            s->obuf_aux = s->ctl_aux & 1;
            s->ctl_aux >>= 1;
            s->obuf = i8042_q_pop(s->ctl_q, &s->ctl_n);
            s->obf = true;
        } else if (s->kbd_n && !(s->ccb & I8042_CCB_KBD_DISABLE)) {
            s->obuf = i8042_q_pop(s->kbd_q, &s->kbd_n);
            s->obuf_aux = false;
            s->obf = true;
        } else if (s->aux_n && !(s->ccb & I8042_CCB_AUX_DISABLE)) {
            s->obuf = i8042_q_pop(s->aux_q, &s->aux_n);
            s->obuf_aux = true;
            s->obf = true;
        }
    }
    i8042_update_irq(k);
}

static void i8042_ctl_output(struct i8042 *k, uint8_t b, bool aux)
{
    struct i8042_state *s = &k->s;
    if (s->ctl_n < I8042_QUEUE) {
        s->ctl_aux = (uint16_t)((s->ctl_aux & ~(1u << s->ctl_n)) | ((aux ? 1u : 0u) << s->ctl_n));
        i8042_q_push(s->ctl_q, &s->ctl_n, b);
    }
}

static void i8042_ctl_reply(struct i8042 *k, uint8_t b)
{
    i8042_ctl_output(k, b, false);
}

static void i8042_kbd_reply(struct i8042 *k, uint8_t b)
{
    i8042_q_push(k->s.kbd_q, &k->s.kbd_n, b);
}

static bool i8042_xlate(const struct i8042_state *s)
{
    return s->ccb & I8042_CCB_XLATE;
}

static void i8042_kbd_defaults(struct i8042_state *s)
{
    s->kbd_set = 2;
    s->kbd_leds = 0;
    s->kbd_typematic = 0x2b; /* 10.9 cps, 500 ms */
    s->kbd_scanning = true;
}

/* A byte the guest sends to the keyboard (port 0x60 with no controller command). */
static void i8042_kbd_write(struct i8042 *k, uint8_t v)
{
    struct i8042_state *s = &k->s;
    uint8_t cmd = s->kbd_pending;
    s->kbd_pending = 0;
    /* A command byte instead of the expected argument starts that command. */
    if (cmd && v < 0xed) {
        switch (cmd) {
        case 0xed:
            s->kbd_leds = v & 0x07;
            i8042_kbd_reply(k, KBD_ACK);
            return;
        case 0xf3:
            s->kbd_typematic = v & 0x7f;
            i8042_kbd_reply(k, KBD_ACK);
            return;
        case 0xf0:
            if (v == 0) {
                static const uint8_t xlated[4] = {0, 0x43, 0x41, 0x3f};
                i8042_kbd_reply(k, KBD_ACK);
                i8042_kbd_reply(k, i8042_xlate(s) ? xlated[s->kbd_set] : s->kbd_set);
            } else if (v <= 3) {
                s->kbd_set = v;
                i8042_kbd_reply(k, KBD_ACK);
            } else {
                i8042_kbd_reply(k, KBD_RESEND);
            }
            return;
        default:
            break;
        }
    }
    switch (v) {
    case 0xff: /* reset + basic assurance test */
        i8042_kbd_defaults(s);
        s->kbd_n = 0;
        i8042_kbd_reply(k, KBD_ACK);
        i8042_kbd_reply(k, KBD_BAT_OK);
        break;
    case 0xf6: /* set defaults */
        i8042_kbd_defaults(s);
        i8042_kbd_reply(k, KBD_ACK);
        break;
    case 0xf5: /* disable scanning (and restore defaults) */
        i8042_kbd_defaults(s);
        s->kbd_scanning = false;
        s->kbd_n = 0;
        i8042_kbd_reply(k, KBD_ACK);
        break;
    case 0xf4:
        s->kbd_scanning = true;
        s->kbd_n = 0;
        i8042_kbd_reply(k, KBD_ACK);
        break;
    case 0xf2: /* identify: MF2 keyboard */
        i8042_kbd_reply(k, KBD_ACK);
        i8042_kbd_reply(k, 0xab);
        i8042_kbd_reply(k, i8042_xlate(s) ? 0x41 : 0x83);
        break;
    case 0xee:
        i8042_kbd_reply(k, KBD_ECHO);
        break;
    case 0xed:
    case 0xf0:
    case 0xf3:
        s->kbd_pending = v;
        i8042_kbd_reply(k, KBD_ACK);
        break;
    case 0xfe: /* resend: we never lose a byte, so acknowledge */
    case 0xf7:
    case 0xf8:
    case 0xf9:
    case 0xfa:
    case 0xfb:
    case 0xfc:
    case 0xfd:
        i8042_kbd_reply(k, KBD_ACK);
        break;
    default:
        log_debug(I8042_TAG, "unknown keyboard command 0x%02x", v);
        i8042_kbd_reply(k, KBD_RESEND);
        break;
    }
}

static void i8042_mouse_defaults(struct i8042_state *s)
{
    s->mouse_pending = 0;
    s->mouse_rate = 100;
    s->mouse_res = 2;
    s->mouse_scale21 = false;
    s->mouse_enabled = false;
    s->mouse_remote = false;
    s->mouse_dx = s->mouse_dy = s->mouse_dz = 0;
    s->mouse_dirty = false;
}

static void i8042_mouse_reply(struct i8042 *k, uint8_t b)
{
    i8042_q_push(k->s.aux_q, &k->s.aux_n, b);
}

static unsigned i8042_mouse_pkt_len(const struct i8042_state *s)
{
    return s->mouse_id == MOUSE_ID_IMPS ? 4 : 3;
}

/* 2:1 scaling (stream mode only): the PS/2 table for 1..5 counts, doubled beyond. */
static int i8042_mouse_scale(int v)
{
    static const int table[6] = {0, 1, 1, 3, 6, 9};
    int a = v < 0 ? -v : v;
    int r = a <= 5 ? table[a] : 2 * a;
    return v < 0 ? -r : r;
}

static int i8042_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Take one packet's worth of the motion counters. Counters beyond the 9-bit range set
 * the overflow bit and keep the rest for the next packet. */
static void i8042_mouse_packet(struct i8042 *k, bool scale)
{
    struct i8042_state *s = &k->s;
    int dx = i8042_clamp(s->mouse_dx, MOUSE_MOTION_MIN, MOUSE_MOTION_MAX);
    int dy = i8042_clamp(s->mouse_dy, MOUSE_MOTION_MIN, MOUSE_MOTION_MAX);
    int dz = i8042_clamp(s->mouse_dz, -8, 7);
    uint8_t b0 = MOUSE_PKT_ALWAYS1 | (s->mouse_buttons & 0x07);
    if (dx != s->mouse_dx) {
        b0 |= MOUSE_PKT_XOVF;
    }
    if (dy != s->mouse_dy) {
        b0 |= MOUSE_PKT_YOVF;
    }
    s->mouse_dx -= dx;
    s->mouse_dy -= dy;
    s->mouse_dz -= dz;
    if (scale && s->mouse_scale21) {
        dx = i8042_clamp(i8042_mouse_scale(dx), MOUSE_MOTION_MIN, MOUSE_MOTION_MAX);
        dy = i8042_clamp(i8042_mouse_scale(dy), MOUSE_MOTION_MIN, MOUSE_MOTION_MAX);
    }
    if (dx < 0) {
        b0 |= MOUSE_PKT_XSIGN;
    }
    if (dy < 0) {
        b0 |= MOUSE_PKT_YSIGN;
    }
    i8042_mouse_reply(k, b0);
    i8042_mouse_reply(k, (uint8_t)dx);
    i8042_mouse_reply(k, (uint8_t)dy);
    if (s->mouse_id == MOUSE_ID_IMPS) {
        i8042_mouse_reply(k, (uint8_t)(dz & 0xff));
    }
    s->mouse_dirty = false;
}

/* Stream mode: report what the counters hold while the aux queue has room. */
static void i8042_mouse_flush(struct i8042 *k)
{
    struct i8042_state *s = &k->s;
    if (!k->mouse || k->aux.write || s->mouse_remote || !s->mouse_enabled || s->mouse_wrap) {
        return;
    }
    unsigned len = i8042_mouse_pkt_len(s);
    while ((s->mouse_dirty || s->mouse_dx || s->mouse_dy ||
            (s->mouse_dz && s->mouse_id == MOUSE_ID_IMPS)) &&
           s->aux_n + len <= I8042_QUEUE) {
        i8042_mouse_packet(k, true);
    }
    if (s->mouse_id != MOUSE_ID_IMPS) {
        s->mouse_dz = 0; /* a plain mouse has no wheel to report */
    }
}

/* A byte the guest sends to the built-in mouse (controller command 0xD4). */
static void i8042_mouse_write(struct i8042 *k, uint8_t v)
{
    struct i8042_state *s = &k->s;
    if (s->mouse_wrap && v != 0xec && v != 0xff) {
        i8042_mouse_reply(k, v); /* wrap mode echoes everything but its exits */
        return;
    }
    uint8_t cmd = s->mouse_pending;
    s->mouse_pending = 0;
    if (cmd == 0xf3) {
        static const uint8_t rates[] = {10, 20, 40, 60, 80, 100, 200};
        bool ok = memchr(rates, v, sizeof(rates)) != NULL;
        if (!ok) {
            i8042_mouse_reply(k, MOUSE_RESEND);
            return;
        }
        s->mouse_rate = v;
        memmove(s->mouse_rate_hist, s->mouse_rate_hist + 1, 2);
        s->mouse_rate_hist[2] = v;
        /* The IntelliMouse knock: rates 200, 100, 80 in a row switch on the wheel. */
        if (s->mouse_rate_hist[0] == 200 && s->mouse_rate_hist[1] == 100 &&
            s->mouse_rate_hist[2] == 80) {
            s->mouse_id = MOUSE_ID_IMPS;
        }
        i8042_mouse_reply(k, MOUSE_ACK);
        return;
    }
    if (cmd == 0xe8) {
        if (v > 3) {
            i8042_mouse_reply(k, MOUSE_RESEND);
            return;
        }
        s->mouse_res = v;
        i8042_mouse_reply(k, MOUSE_ACK);
        return;
    }
    switch (v) {
    case 0xff: /* reset + self test: defaults, standard ID */
        i8042_mouse_defaults(s);
        s->mouse_wrap = false;
        s->mouse_id = MOUSE_ID_STD;
        memset(s->mouse_rate_hist, 0, sizeof(s->mouse_rate_hist));
        s->aux_n = 0;
        i8042_mouse_reply(k, MOUSE_ACK);
        i8042_mouse_reply(k, MOUSE_BAT_OK);
        i8042_mouse_reply(k, MOUSE_ID_STD);
        break;
    case 0xf6: /* set defaults (keeps the ID, like real IntelliMice) */
        i8042_mouse_defaults(s);
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xf5:
        s->mouse_enabled = false;
        s->aux_n = 0;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xf4: /* enable reporting: counters restart from zero */
        s->mouse_enabled = true;
        s->mouse_dx = s->mouse_dy = s->mouse_dz = 0;
        s->mouse_dirty = false;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xf3:
    case 0xe8:
        s->mouse_pending = v;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xf2:
        i8042_mouse_reply(k, MOUSE_ACK);
        i8042_mouse_reply(k, s->mouse_id);
        break;
    case 0xf0:
    case 0xea:
        s->mouse_remote = v == 0xf0;
        s->mouse_dx = s->mouse_dy = s->mouse_dz = 0;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xee:
        s->mouse_wrap = true;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xec:
        s->mouse_wrap = false;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xeb: /* read data: one packet, even with nothing to say */
        i8042_mouse_reply(k, MOUSE_ACK);
        if (s->aux_n + i8042_mouse_pkt_len(s) <= I8042_QUEUE) {
            i8042_mouse_packet(k, false);
        }
        break;
    case 0xe9: { /* status request */
        uint8_t st = (uint8_t)((s->mouse_remote ? MOUSE_STS_REMOTE : 0) |
                               (s->mouse_enabled ? MOUSE_STS_ENABLED : 0) |
                               (s->mouse_scale21 ? MOUSE_STS_SCALE21 : 0));
        /* Status byte buttons: bit 2 left, bit 1 middle, bit 0 right. */
        st |= (uint8_t)(((s->mouse_buttons & 1) << 2) | ((s->mouse_buttons & 4) >> 1) |
                        ((s->mouse_buttons & 2) >> 1));
        i8042_mouse_reply(k, MOUSE_ACK);
        i8042_mouse_reply(k, st);
        i8042_mouse_reply(k, s->mouse_res);
        i8042_mouse_reply(k, s->mouse_rate);
        break;
    }
    case 0xe6:
    case 0xe7:
        s->mouse_scale21 = v == 0xe7;
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    case 0xfe: /* resend: nothing was lost */
        i8042_mouse_reply(k, MOUSE_ACK);
        break;
    default:
        log_debug(I8042_TAG, "unknown mouse command 0x%02x", v);
        i8042_mouse_reply(k, MOUSE_RESEND);
        break;
    }
}

static void i8042_write_outport(struct i8042 *k, uint8_t v, struct i8042_deferred *d)
{
    struct i8042_state *s = &k->s;
    if ((v ^ s->outport) & I8042_OUT_A20) {
        d->a20_changed = true;
        d->a20 = (v & I8042_OUT_A20) != 0;
    }
    s->outport = v;
    if (!(v & I8042_OUT_RESET_N)) {
        /* Reset# is a pulse on a PC: the line comes back once the CPU resets. */
        d->reset = true;
        s->outport |= I8042_OUT_RESET_N;
    }
}

static void i8042_aux_send(struct i8042 *k, uint8_t v, struct i8042_deferred *d)
{
    if (k->aux.write) {
        d->aux_byte = v;
    } else if (k->mouse) {
        i8042_mouse_write(k, v);
    } else {
        i8042_q_push(k->s.aux_q, &k->s.aux_n, 0xfe); /* no device: PS/2 "resend/error" */
    }
}

static void i8042_data_write(struct i8042 *k, uint8_t v, struct i8042_deferred *d)
{
    struct i8042_state *s = &k->s;
    s->status &= ~I8042_STS_CMD;
    uint8_t cmd = s->pending_cmd;
    s->pending_cmd = 0;
    switch (cmd) {
    case 0:
        i8042_kbd_write(k, v);
        break;
    case 0x60:
        s->ccb = v;
        s->status = (s->status & ~I8042_STS_SYS) | (v & I8042_CCB_SYS);
        break;
    case 0xd1:
        i8042_write_outport(k, v, d);
        break;
    case 0xd2: /* as if the keyboard sent it */
        i8042_ctl_output(k, v, false);
        break;
    case 0xd3: /* as if the aux device sent it */
        i8042_ctl_output(k, v, true);
        break;
    case 0xd4:
        i8042_aux_send(k, v, d);
        break;
    default:
        break; /* data for 0x61..0x7f (controller RAM): accepted and dropped */
    }
}

static void i8042_cmd_write(struct i8042 *k, uint8_t v, struct i8042_deferred *d)
{
    struct i8042_state *s = &k->s;
    s->status |= I8042_STS_CMD;
    s->pending_cmd = 0;
    if (v >= 0x20 && v <= 0x3f) {
        i8042_ctl_reply(k, v == 0x20 ? s->ccb : 0x00); /* read controller RAM */
        return;
    }
    if (v >= 0xf0) {
        if (!(v & 0x01)) {
            d->reset = true; /* bit 0 clear pulses reset# */
        }
        return;
    }
    switch (v) {
    case 0x60:
    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0xd4:
        s->pending_cmd = v;
        break;
    case 0xa7:
        s->ccb |= I8042_CCB_AUX_DISABLE;
        break;
    case 0xa8:
        s->ccb &= ~I8042_CCB_AUX_DISABLE;
        break;
    case 0xa9: /* aux interface test: 0 = no error */
    case 0xab: /* keyboard interface test */
        i8042_ctl_reply(k, 0x00);
        break;
    case 0xaa: /* controller self test */
        s->status |= I8042_STS_SYS;
        i8042_ctl_reply(k, 0x55);
        break;
    case 0xad:
        s->ccb |= I8042_CCB_KBD_DISABLE;
        break;
    case 0xae:
        s->ccb &= ~I8042_CCB_KBD_DISABLE;
        break;
    case 0xc0: /* input port: keyboard not inhibited, colour display */
        i8042_ctl_reply(k, 0x80);
        break;
    case 0xd0: {
        uint8_t v2 = s->outport & ~(I8042_OUT_KBD_OBF | I8042_OUT_AUX_OBF);
        if (s->obf) {
            v2 |= s->obuf_aux ? I8042_OUT_AUX_OBF : I8042_OUT_KBD_OBF;
        }
        i8042_ctl_reply(k, v2);
        break;
    }
    case 0xdd: /* A20 off / on (HP Vectra style, supported by most chipsets) */
        i8042_write_outport(k, s->outport & ~I8042_OUT_A20, d);
        break;
    case 0xdf:
        i8042_write_outport(k, s->outport | I8042_OUT_A20, d);
        break;
    case 0xe0: /* test inputs */
        i8042_ctl_reply(k, 0x00);
        break;
    default:
        log_debug(I8042_TAG, "unknown controller command 0x%02x", v);
        break;
    }
}

static uint8_t i8042_status(const struct i8042_state *s)
{
    uint8_t v = (s->status & (I8042_STS_SYS | I8042_STS_CMD)) | I8042_STS_UNLOCKED;
    if (s->obf) {
        v |= I8042_STS_OBF | (s->obuf_aux ? I8042_STS_AUX_OBF : 0);
    }
    return v;
}

uint64_t i8042_read(struct i8042 *k, uint64_t off, unsigned size)
{
    pthread_mutex_lock(&k->lock);
    uint8_t v = 0xff;
    if (off == I8042_OFF_DATA) {
        v = k->s.obuf; /* an empty buffer re-reads the last byte */
        k->s.obf = false;
        /* Drop the line before the next byte raises it again: an edge-triggered PIC needs
         * that edge to see the next byte. */
        i8042_update_irq(k);
        i8042_refill(k);
    } else if (off == I8042_OFF_CMD) {
        v = i8042_status(&k->s);
    }
    pthread_mutex_unlock(&k->lock);
    return v;
}

static void i8042_run_deferred(struct i8042 *k, const struct i8042_deferred *d)
{
    if (d->a20_changed && k->cb.a20) {
        k->cb.a20(k->cb.opaque, d->a20);
    }
    if (d->aux_byte >= 0 && k->aux.write) {
        k->aux.write(k->aux.opaque, (uint8_t)d->aux_byte);
    }
    if (d->reset && k->cb.reset) {
        k->cb.reset(k->cb.opaque);
    }
}

void i8042_write(struct i8042 *k, uint64_t off, uint64_t val, unsigned size)
{
    struct i8042_deferred d = {.aux_byte = -1};
    pthread_mutex_lock(&k->lock);
    if (off == I8042_OFF_DATA) {
        i8042_data_write(k, (uint8_t)val, &d);
    } else if (off == I8042_OFF_CMD) {
        i8042_cmd_write(k, (uint8_t)val, &d);
    }
    i8042_refill(k);
    pthread_mutex_unlock(&k->lock);
    i8042_run_deferred(k, &d);
}

int i8042_key_event(struct i8042 *k, const uint8_t *scancode, size_t n)
{
    uint8_t out[2 * I8042_QUEUE];
    size_t m = 0;
    pthread_mutex_lock(&k->lock);
    struct i8042_state *s = &k->s;
    if (!s->kbd_scanning) {
        pthread_mutex_unlock(&k->lock);
        return 0;
    }
    bool to_set2 = !i8042_xlate(s) && s->kbd_set != 1;
    for (size_t i = 0; i < n && m + 2 <= sizeof(out); i++) {
        uint8_t c = scancode[i];
        if (!to_set2 || c == 0xe0 || c == 0xe1) {
            out[m++] = c;
            continue;
        }
        uint8_t make = c & 0x7f;
        uint8_t code = make < sizeof(i8042_set1_to_set2) ? i8042_set1_to_set2[make] : 0;
        if (!code) {
            continue; /* no set-2 equivalent */
        }
        if (c & 0x80) {
            out[m++] = 0xf0;
        }
        out[m++] = code;
    }
    int ret = 0;
    if (m > (size_t)(I8042_QUEUE - s->kbd_n)) {
        ret = -ENOSPC;
    } else {
        for (size_t i = 0; i < m; i++) {
            i8042_kbd_reply(k, out[i]);
        }
        i8042_refill(k);
    }
    pthread_mutex_unlock(&k->lock);
    return ret;
}

int i8042_mouse_event(struct i8042 *k, int dx, int dy, int wheel, unsigned buttons)
{
    pthread_mutex_lock(&k->lock);
    struct i8042_state *s = &k->s;
    if (!k->mouse || k->aux.write) {
        pthread_mutex_unlock(&k->lock);
        return -ENODEV;
    }
    /* Packet bits: 0 left, 1 right, 2 middle (the same order as the host's). */
    uint8_t b = (uint8_t)(buttons & 0x07);
    if (b != s->mouse_buttons) {
        s->mouse_buttons = b;
        s->mouse_dirty = true;
    }
    /* Stream mode with reporting off drops motion, as a real mouse does; remote mode
     * keeps counting for the next read-data command. */
    if (s->mouse_remote || s->mouse_enabled) {
        s->mouse_dx =
            i8042_clamp(s->mouse_dx + i8042_clamp(dx, -MOUSE_ACCUM_LIMIT, MOUSE_ACCUM_LIMIT),
                        -MOUSE_ACCUM_LIMIT, MOUSE_ACCUM_LIMIT);
        /* PS/2 Y grows upwards, host Y downwards. */
        s->mouse_dy =
            i8042_clamp(s->mouse_dy - i8042_clamp(dy, -MOUSE_ACCUM_LIMIT, MOUSE_ACCUM_LIMIT),
                        -MOUSE_ACCUM_LIMIT, MOUSE_ACCUM_LIMIT);
        /* IntelliMouse byte 3 is positive for the wheel turned toward the user. */
        s->mouse_dz = i8042_clamp(s->mouse_dz - i8042_clamp(wheel, -64, 64), -64, 64);
    } else {
        s->mouse_dirty = false;
    }
    i8042_refill(k);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

void i8042_set_mouse(struct i8042 *k, bool present)
{
    pthread_mutex_lock(&k->lock);
    k->mouse = present;
    pthread_mutex_unlock(&k->lock);
}

void i8042_set_aux(struct i8042 *k, const struct i8042_aux_ops *ops)
{
    pthread_mutex_lock(&k->lock);
    if (ops) {
        k->aux = *ops;
    } else {
        memset(&k->aux, 0, sizeof(k->aux));
    }
    pthread_mutex_unlock(&k->lock);
}

int i8042_aux_data(struct i8042 *k, const uint8_t *buf, size_t n)
{
    pthread_mutex_lock(&k->lock);
    size_t i = 0;
    while (i < n && i8042_q_push(k->s.aux_q, &k->s.aux_n, buf[i])) {
        i++;
    }
    i8042_refill(k);
    pthread_mutex_unlock(&k->lock);
    return (int)i;
}

struct i8042 *i8042_new(const struct irq_line *kbd_irq, const struct irq_line *aux_irq,
                        const struct i8042_callbacks *cb)
{
    struct i8042 *k = calloc(1, sizeof(*k));
    if (!k) {
        return NULL;
    }
    pthread_mutex_init(&k->lock, NULL);
    if (kbd_irq) {
        k->kbd_irq = *kbd_irq;
    }
    if (aux_irq) {
        k->aux_irq = *aux_irq;
    }
    if (cb) {
        k->cb = *cb;
    }
    k->mouse = true;
    i8042_state_reset(&k->s);
    i8042_kbd_defaults(&k->s);
    return k;
}

void i8042_free(struct i8042 *k)
{
    if (!k) {
        return;
    }
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static uint64_t i8042_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return i8042_read(opaque, off, size);
}

static void i8042_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    i8042_write(opaque, off, val, size);
}

static uint64_t i8042_cmd_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return off == 0 ? i8042_read(opaque, I8042_OFF_CMD, size) : 0xff;
}

static void i8042_cmd_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (off == 0) {
        i8042_write(opaque, I8042_OFF_CMD, val, size);
    }
}

const struct bus_ops i8042_bus_ops = {.read = i8042_bus_read, .write = i8042_bus_write};
const struct bus_ops i8042_data_bus_ops = {.read = i8042_bus_read, .write = i8042_bus_write};
const struct bus_ops i8042_cmd_bus_ops = {.read = i8042_cmd_bus_read, .write = i8042_cmd_bus_write};

static int i8042_post_load(void *scratch, int version_id)
{
    const struct i8042_state *s = scratch;
    if (s->ctl_n > I8042_QUEUE || s->kbd_n > I8042_QUEUE || s->aux_n > I8042_QUEUE ||
        s->kbd_set < 1 || s->kbd_set > 3 || s->mouse_res > 3 ||
        (s->mouse_id != MOUSE_ID_STD && s->mouse_id != MOUSE_ID_IMPS) ||
        s->mouse_dx < -MOUSE_ACCUM_LIMIT || s->mouse_dx > MOUSE_ACCUM_LIMIT ||
        s->mouse_dy < -MOUSE_ACCUM_LIMIT || s->mouse_dy > MOUSE_ACCUM_LIMIT || s->mouse_dz < -64 ||
        s->mouse_dz > 64 || s->mouse_buttons > 7) {
        return -EINVAL;
    }
    return 0;
}

/* Fields of the PS/2 mouse, added in stream version 2. */
#define I8042_V2(f, t)                                                                             \
    {                                                                                              \
        .name = #f, .type = (t), .offset = offsetof(struct i8042_state, f), .version_added = 2     \
    }

static const struct vmstate_field i8042_fields[] = {
    VMSTATE_FIELD(struct i8042_state, status, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, ccb, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, outport, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, pending_cmd, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, obuf, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, obf, VMSTATE_BOOL),
    VMSTATE_FIELD(struct i8042_state, obuf_aux, VMSTATE_BOOL),
    VMSTATE_BUF(struct i8042_state, ctl_q),
    VMSTATE_FIELD(struct i8042_state, ctl_aux, VMSTATE_U16),
    VMSTATE_FIELD(struct i8042_state, ctl_n, VMSTATE_U8),
    VMSTATE_BUF(struct i8042_state, kbd_q),
    VMSTATE_FIELD(struct i8042_state, kbd_n, VMSTATE_U8),
    VMSTATE_BUF(struct i8042_state, aux_q),
    VMSTATE_FIELD(struct i8042_state, aux_n, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, kbd_pending, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, kbd_set, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, kbd_leds, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, kbd_typematic, VMSTATE_U8),
    VMSTATE_FIELD(struct i8042_state, kbd_scanning, VMSTATE_BOOL),
    I8042_V2(mouse_pending, VMSTATE_U8),
    I8042_V2(mouse_rate, VMSTATE_U8),
    I8042_V2(mouse_res, VMSTATE_U8),
    I8042_V2(mouse_scale21, VMSTATE_BOOL),
    I8042_V2(mouse_enabled, VMSTATE_BOOL),
    I8042_V2(mouse_remote, VMSTATE_BOOL),
    I8042_V2(mouse_wrap, VMSTATE_BOOL),
    I8042_V2(mouse_id, VMSTATE_U8),
    {.name = "mouse_rate_hist",
     .type = VMSTATE_BUFFER,
     .offset = offsetof(struct i8042_state, mouse_rate_hist),
     .size = sizeof(((struct i8042_state *)0)->mouse_rate_hist),
     .version_added = 2},
    I8042_V2(mouse_buttons, VMSTATE_U8),
    I8042_V2(mouse_dx, VMSTATE_I32),
    I8042_V2(mouse_dy, VMSTATE_I32),
    I8042_V2(mouse_dz, VMSTATE_I32),
    I8042_V2(mouse_dirty, VMSTATE_BOOL),
    VMSTATE_END,
};

static const struct vmstate_desc i8042_vmstate = {
    .name = "i8042",
    .version = 2,
    .min_version = 1,
    .struct_size = sizeof(struct i8042_state),
    .fields = i8042_fields,
    .post_load = i8042_post_load,
};

static void i8042_dev_reset(void *dev)
{
    struct i8042 *k = dev;
    pthread_mutex_lock(&k->lock);
    i8042_state_reset(&k->s);
    i8042_kbd_defaults(&k->s);
    i8042_update_irq(k);
    pthread_mutex_unlock(&k->lock);
}

static int i8042_dev_save(void *dev, GByteArray *out)
{
    struct i8042 *k = dev;
    pthread_mutex_lock(&k->lock);
    int ret = vmstate_save(&i8042_vmstate, &k->s, out);
    pthread_mutex_unlock(&k->lock);
    return ret;
}

static int i8042_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct i8042 *k = dev;
    struct i8042_state tmp;
    i8042_state_reset(&tmp);
    i8042_kbd_defaults(&tmp);
    int ret = vmstate_load(&i8042_vmstate, &tmp, buf, len, NULL);
    if (ret < 0) {
        return ret;
    }
    pthread_mutex_lock(&k->lock);
    k->s = tmp;
    i8042_update_irq(k);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

const struct device_ops i8042_device_ops = {
    .name = "i8042",
    .reset = i8042_dev_reset,
    .save = i8042_dev_save,
    .load = i8042_dev_load,
};
