/* Unit tests for devices/pc/i8042: controller and keyboard commands through
 * i8042_read/i8042_write with mock IRQ lines and reset/A20 callbacks. */
#include "devices/pc/i8042.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

struct mock_irq {
    int level; /* current level */
    int rises; /* 0 -> 1 transitions */
};

static void mock_irq_set(void *opaque, int line, int level)
{
    struct mock_irq *m = opaque;
    if (level && !m->level) {
        m->rises++;
    }
    m->level = level;
}

struct rig {
    struct mock_irq kbd, aux;
    int resets;        /* reset callback calls */
    int a20_calls;     /* a20 callback calls */
    bool a20;          /* last A20 state reported */
    uint8_t aux_rx[8]; /* bytes the aux device received */
    int aux_n;
    struct i8042 *k;
};

static void cb_reset(void *opaque)
{
    ((struct rig *)opaque)->resets++;
}

static void cb_a20(void *opaque, bool on)
{
    struct rig *r = opaque;
    r->a20_calls++;
    r->a20 = on;
}

/* A minimal mouse: acks every byte and answers identify (0xF2) with ID 0. */
static void mock_aux_write(void *opaque, uint8_t byte)
{
    struct rig *r = opaque;
    if (r->aux_n < (int)sizeof(r->aux_rx)) {
        r->aux_rx[r->aux_n++] = byte;
    }
    static const uint8_t ack_id[] = {0xfa, 0x00};
    i8042_aux_data(r->k, ack_id, byte == 0xf2 ? 2 : 1);
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    struct irq_line kl = {.set = mock_irq_set, .opaque = &r->kbd, .line = I8042_KBD_IRQ};
    struct irq_line al = {.set = mock_irq_set, .opaque = &r->aux, .line = I8042_AUX_IRQ};
    struct i8042_callbacks cb = {.opaque = r, .reset = cb_reset, .a20 = cb_a20};
    r->k = i8042_new(&kl, &al, &cb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->k);
}

static uint8_t status(struct rig *r)
{
    return (uint8_t)i8042_read(r->k, I8042_OFF_CMD, 1);
}

static uint8_t data(struct rig *r)
{
    return (uint8_t)i8042_read(r->k, I8042_OFF_DATA, 1);
}

static void cmd(struct rig *r, uint8_t v)
{
    i8042_write(r->k, I8042_OFF_CMD, v, 1);
}

static void put(struct rig *r, uint8_t v)
{
    i8042_write(r->k, I8042_OFF_DATA, v, 1);
}

/* Reads one byte the guest way: status must say OBF first. */
static int get(struct rig *r)
{
    if (!(status(r) & 0x01)) {
        return -1;
    }
    return data(r);
}

static void test_self_test_and_interface_tests(void)
{
    struct rig r;
    rig_init(&r);
    CU_ASSERT_EQUAL(status(&r) & 0x01, 0);
    cmd(&r, 0xaa);
    CU_ASSERT_EQUAL(status(&r) & 0x0d, 0x0d); /* OBF, SYS, last write was a command */
    CU_ASSERT_EQUAL(get(&r), 0x55);
    CU_ASSERT_EQUAL(get(&r), -1);
    cmd(&r, 0xab);
    CU_ASSERT_EQUAL(get(&r), 0x00);
    cmd(&r, 0xa9);
    CU_ASSERT_EQUAL(get(&r), 0x00);
    i8042_free(r.k);
}

static void test_command_byte_and_irq(void)
{
    struct rig r;
    rig_init(&r);
    cmd(&r, 0x20);
    CU_ASSERT_EQUAL(r.kbd.level, 1); /* KBD_INT on after power-up */
    CU_ASSERT_EQUAL(get(&r), 0x65);
    CU_ASSERT_EQUAL(r.kbd.level, 0); /* reading the output buffer lowers IRQ 1 */
    cmd(&r, 0x60);
    put(&r, 0x00); /* no interrupts, no SYS */
    CU_ASSERT_EQUAL(status(&r) & 0x04, 0);
    cmd(&r, 0x20);
    CU_ASSERT_EQUAL(r.kbd.level, 0);
    CU_ASSERT_EQUAL(get(&r), 0x00);
    cmd(&r, 0x60);
    put(&r, 0x47);
    cmd(&r, 0x20);
    CU_ASSERT_EQUAL(get(&r), 0x47);
    CU_ASSERT_EQUAL(r.kbd.rises, 2);
    i8042_free(r.k);
}

static void test_pulse_reset(void)
{
    struct rig r;
    rig_init(&r);
    cmd(&r, 0xff); /* pulse nothing */
    CU_ASSERT_EQUAL(r.resets, 0);
    cmd(&r, 0xfe);
    CU_ASSERT_EQUAL(r.resets, 1);
    cmd(&r, 0xf0); /* pulse all, including reset */
    CU_ASSERT_EQUAL(r.resets, 2);
    i8042_free(r.k);
}

static void test_output_port_a20(void)
{
    struct rig r;
    rig_init(&r);
    cmd(&r, 0xd0);
    uint8_t op = (uint8_t)get(&r);
    CU_ASSERT_EQUAL(op & 0x03, 0x03); /* reset# high, A20 on */
    cmd(&r, 0xd1);
    put(&r, 0xdd); /* A20 off */
    CU_ASSERT_EQUAL(r.a20_calls, 1);
    CU_ASSERT_FALSE(r.a20);
    CU_ASSERT_EQUAL(r.resets, 0);
    cmd(&r, 0xd0);
    CU_ASSERT_EQUAL(get(&r) & 0x03, 0x01);
    cmd(&r, 0xd1);
    put(&r, 0xdf); /* A20 on */
    CU_ASSERT_EQUAL(r.a20_calls, 2);
    CU_ASSERT_TRUE(r.a20);
    cmd(&r, 0xd1);
    put(&r, 0xdf); /* unchanged: no callback */
    CU_ASSERT_EQUAL(r.a20_calls, 2);
    cmd(&r, 0xd1);
    put(&r, 0xde); /* reset# low */
    CU_ASSERT_EQUAL(r.resets, 1);
    cmd(&r, 0xdd);
    CU_ASSERT_FALSE(r.a20);
    i8042_free(r.k);
}

static void test_keyboard_commands(void)
{
    struct rig r;
    rig_init(&r);
    put(&r, 0xff);
    CU_ASSERT_EQUAL(status(&r) & 0x08, 0); /* last write was data */
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xaa);
    put(&r, 0xee);
    CU_ASSERT_EQUAL(get(&r), 0xee);
    put(&r, 0xed);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    put(&r, 0x07);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    put(&r, 0xf2);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xab);
    CU_ASSERT_EQUAL(get(&r), 0x41); /* translated ID */
    put(&r, 0xf0);
    put(&r, 0x00);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0x41); /* set 2, translated */
    cmd(&r, 0x60);
    put(&r, 0x05); /* translation off */
    put(&r, 0xf0);
    put(&r, 0x03);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    put(&r, 0xf0);
    put(&r, 0x00);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0x03);
    put(&r, 0xf2);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xab);
    CU_ASSERT_EQUAL(get(&r), 0x83);
    put(&r, 0xf0);
    put(&r, 0x09); /* no such set */
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0xfe);
    CU_ASSERT_EQUAL(get(&r), -1);
    i8042_free(r.k);
}

/* Each byte read with more queued must give IRQ 1 a fresh rising edge (the 8259 is
 * edge-triggered for ISA IRQ 1; a guest reading one byte per interrupt would stall). */
static void test_irq_edge_per_byte(void)
{
    struct rig r;
    rig_init(&r);
    static const uint8_t keys[] = {0x1e, 0x9e, 0x30};
    CU_ASSERT_EQUAL(i8042_key_event(r.k, keys, 3), 0);
    CU_ASSERT_EQUAL(r.kbd.rises, 1);
    CU_ASSERT_EQUAL(data(&r), 0x1e);
    CU_ASSERT_EQUAL(r.kbd.rises, 2);
    CU_ASSERT_EQUAL(r.kbd.level, 1);
    CU_ASSERT_EQUAL(data(&r), 0x9e);
    CU_ASSERT_EQUAL(r.kbd.rises, 3);
    CU_ASSERT_EQUAL(data(&r), 0x30);
    CU_ASSERT_EQUAL(r.kbd.level, 0); /* queue empty: line low, no extra edge */
    CU_ASSERT_EQUAL(r.kbd.rises, 3);
    i8042_free(r.k);
}

static void test_key_events(void)
{
    struct rig r;
    rig_init(&r);
    static const uint8_t a_down[] = {0x1e}, a_up[] = {0x9e}, up_down[] = {0xe0, 0x48};
    CU_ASSERT_EQUAL(i8042_key_event(r.k, a_down, 1), 0);
    CU_ASSERT_EQUAL(r.kbd.level, 1);
    CU_ASSERT_EQUAL(get(&r), 0x1e); /* translation on: set 1 as given */
    cmd(&r, 0x60);
    put(&r, 0x05); /* translation off: the keyboard's set 2 reaches the guest */
    i8042_key_event(r.k, a_down, 1);
    i8042_key_event(r.k, a_up, 1);
    i8042_key_event(r.k, up_down, 2);
    CU_ASSERT_EQUAL(get(&r), 0x1c);
    CU_ASSERT_EQUAL(get(&r), 0xf0);
    CU_ASSERT_EQUAL(get(&r), 0x1c);
    CU_ASSERT_EQUAL(get(&r), 0xe0);
    CU_ASSERT_EQUAL(get(&r), 0x75);
    /* Keyboard port disabled: bytes wait in the keyboard. */
    cmd(&r, 0xad);
    i8042_key_event(r.k, a_down, 1);
    CU_ASSERT_EQUAL(get(&r), -1);
    cmd(&r, 0xae);
    CU_ASSERT_EQUAL(get(&r), 0x1c);
    /* Scanning disabled: keys are dropped. */
    put(&r, 0xf5);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    i8042_key_event(r.k, a_down, 1);
    CU_ASSERT_EQUAL(get(&r), -1);
    put(&r, 0xf4);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    /* A full keyboard buffer refuses a whole sequence. */
    cmd(&r, 0xad);
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(i8042_key_event(r.k, up_down, 2), 0);
    }
    CU_ASSERT_EQUAL(i8042_key_event(r.k, a_down, 1), -ENOSPC);
    i8042_free(r.k);
}

static void test_aux_loopback_while_disabled(void)
{
    struct rig r;
    rig_init(&r);
    /* Linux's i8042_check_aux: AUX_LOOP with the aux port still disabled. */
    cmd(&r, 0x20);
    CU_ASSERT_EQUAL(get(&r) & 0x20, 0x20);
    cmd(&r, 0xd3);
    put(&r, 0x5a);
    CU_ASSERT_EQUAL(status(&r) & 0x21, 0x21);
    CU_ASSERT_EQUAL(data(&r), 0x5a);
    /* 0xD2 shows as keyboard data even with the keyboard port disabled. */
    cmd(&r, 0xad);
    cmd(&r, 0xd2);
    put(&r, 0x11);
    CU_ASSERT_EQUAL(status(&r) & 0x21, 0x01);
    CU_ASSERT_EQUAL(data(&r), 0x11);
    /* With AUX_INT on, the loopback byte raises IRQ 12, not IRQ 1. */
    cmd(&r, 0x60);
    put(&r, 0x67);
    cmd(&r, 0xd3);
    put(&r, 0xa5);
    CU_ASSERT_EQUAL(r.aux.level, 1);
    CU_ASSERT_EQUAL(r.kbd.level, 0);
    CU_ASSERT_EQUAL(data(&r), 0xa5);
    CU_ASSERT_EQUAL(r.aux.level, 0);
    i8042_free(r.k);
}

static void test_aux_hook(void)
{
    struct rig r;
    rig_init(&r);
    i8042_set_mouse(r.k, false);
    cmd(&r, 0xa8); /* enable aux port */
    cmd(&r, 0x60);
    put(&r, 0x47); /* aux interrupt on */
    cmd(&r, 0xd4);
    put(&r, 0xf2); /* to a mouse that is not there */
    CU_ASSERT_EQUAL(status(&r) & 0x21, 0x21);
    CU_ASSERT_EQUAL(r.aux.level, 1);
    CU_ASSERT_EQUAL(r.kbd.level, 0);
    CU_ASSERT_EQUAL(data(&r), 0xfe);
    CU_ASSERT_EQUAL(r.aux.level, 0);
    cmd(&r, 0xd3);
    put(&r, 0x5a); /* aux loopback, as Linux's i8042 probe does */
    CU_ASSERT_EQUAL(status(&r) & 0x21, 0x21);
    CU_ASSERT_EQUAL(data(&r), 0x5a);
    CU_ASSERT_EQUAL(i8042_aux_data(r.k, (const uint8_t *)"\x08\x01\x02", 3), 3);
    CU_ASSERT_EQUAL(data(&r), 0x08);
    CU_ASSERT_EQUAL(data(&r), 0x01);
    CU_ASSERT_EQUAL(data(&r), 0x02);
    /* An attached device gets 0xD4 bytes and may answer from inside its callback. */
    struct i8042_aux_ops ops = {.opaque = &r, .write = mock_aux_write};
    i8042_set_aux(r.k, &ops);
    cmd(&r, 0xd4);
    put(&r, 0xf2);
    CU_ASSERT_EQUAL(r.aux_n, 1);
    CU_ASSERT_EQUAL(r.aux_rx[0], 0xf2);
    CU_ASSERT_EQUAL(get(&r), 0xfa);
    CU_ASSERT_EQUAL(get(&r), 0x00); /* PS/2 mouse ID */
    CU_ASSERT_EQUAL(get(&r), -1);
    i8042_free(r.k);
}

/* ---- built-in PS/2 mouse ---- */

/* Sends one byte to the mouse (0xD4 + data). */
static void mouse_put(struct rig *r, uint8_t v)
{
    cmd(r, 0xd4);
    put(r, v);
}

/* Reads one byte that must come from the aux port (status bits 0 and 5). */
static int aux_get(struct rig *r)
{
    uint8_t st = status(r);
    if ((st & 0x21) != 0x21) {
        return -1;
    }
    return data(r);
}

/* Controller set up the way Linux's i8042 driver leaves it: both ports on, both IRQs. */
static void mouse_rig(struct rig *r)
{
    rig_init(r);
    cmd(r, 0xa8);
    cmd(r, 0x60);
    put(r, 0x47);
}

static void mouse_enable(struct rig *r)
{
    mouse_put(r, 0xf4);
    CU_ASSERT_EQUAL(aux_get(r), 0xfa);
}

static void test_mouse_reset_and_id(void)
{
    struct rig r;
    mouse_rig(&r);
    mouse_put(&r, 0xff);
    CU_ASSERT_EQUAL(r.aux.level, 1);
    CU_ASSERT_EQUAL(r.kbd.level, 0);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0xaa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    CU_ASSERT_EQUAL(r.aux.level, 0);
    mouse_put(&r, 0xf2);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    /* Status after reset: stream mode, reporting off, 1:1, 4 counts/mm, 100/s. */
    mouse_put(&r, 0xe9);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    CU_ASSERT_EQUAL(aux_get(&r), 0x02);
    CU_ASSERT_EQUAL(aux_get(&r), 100);
    /* Rate, resolution, scaling, enable: status reflects every one. */
    mouse_put(&r, 0xf3);
    mouse_put(&r, 40);
    mouse_put(&r, 0xe8);
    mouse_put(&r, 0x03);
    mouse_put(&r, 0xe7);
    mouse_put(&r, 0xf4);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    }
    mouse_put(&r, 0xe9);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x30); /* enabled | 2:1 */
    CU_ASSERT_EQUAL(aux_get(&r), 0x03);
    CU_ASSERT_EQUAL(aux_get(&r), 40);
    /* Bad arguments are refused and change nothing. */
    mouse_put(&r, 0xf3);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    mouse_put(&r, 33);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfe);
    mouse_put(&r, 0xe8);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    mouse_put(&r, 9);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfe);
    mouse_put(&r, 0x12); /* not a command */
    CU_ASSERT_EQUAL(aux_get(&r), 0xfe);
    /* Set defaults: scaling 1:1, reporting off, rate back to 100. */
    mouse_put(&r, 0xf6);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    mouse_put(&r, 0xe9);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    CU_ASSERT_EQUAL(aux_get(&r), 0x02);
    CU_ASSERT_EQUAL(aux_get(&r), 100);
    i8042_free(r.k);
}

static void set_rate(struct rig *r, uint8_t rate)
{
    mouse_put(r, 0xf3);
    CU_ASSERT_EQUAL(aux_get(r), 0xfa);
    mouse_put(r, rate);
    CU_ASSERT_EQUAL(aux_get(r), 0xfa);
}

static void test_mouse_intellimouse(void)
{
    struct rig r;
    mouse_rig(&r);
    /* The wrong order does not unlock the wheel. */
    set_rate(&r, 200);
    set_rate(&r, 80);
    set_rate(&r, 100);
    mouse_put(&r, 0xf2);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    set_rate(&r, 200);
    set_rate(&r, 100);
    set_rate(&r, 80);
    mouse_put(&r, 0xf2);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x03);
    mouse_enable(&r);
    /* Wheel up (away from the user) is -1 in byte 3, as Linux's psmouse reads it. */
    CU_ASSERT_EQUAL(i8042_mouse_event(r.k, 3, -2, 1, 0x1), 0);
    CU_ASSERT_EQUAL(aux_get(&r), 0x09); /* always-1 | left */
    CU_ASSERT_EQUAL(aux_get(&r), 0x03);
    CU_ASSERT_EQUAL(aux_get(&r), 0x02); /* screen up = PS/2 +y */
    CU_ASSERT_EQUAL(aux_get(&r), 0xff);
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    /* The wheel alone makes a packet. */
    i8042_mouse_event(r.k, 0, 0, -2, 0x1);
    CU_ASSERT_EQUAL(aux_get(&r), 0x09);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    CU_ASSERT_EQUAL(aux_get(&r), 0x02);
    /* Reset goes back to the 3-byte standard mouse. */
    mouse_put(&r, 0xff);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0xaa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    mouse_put(&r, 0xf2);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    i8042_free(r.k);
}

static void test_mouse_stream_packets(void)
{
    struct rig r;
    mouse_rig(&r);
    /* Reporting off: motion is dropped. */
    CU_ASSERT_EQUAL(i8042_mouse_event(r.k, 5, 5, 0, 0), 0);
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    mouse_enable(&r);
    /* Left/down: X and Y sign bits, 9-bit two's complement low bytes. */
    i8042_mouse_event(r.k, -5, 7, 0, 0x6);
    CU_ASSERT_EQUAL(r.aux.level, 1);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08 | 0x10 | 0x20 | 0x06);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfb);
    CU_ASSERT_EQUAL(aux_get(&r), 0xf9);
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    /* A button release alone is reported. */
    i8042_mouse_event(r.k, 0, 0, 0, 0);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    /* Beyond 9 bits: overflow bit, counter clamped, the rest follows. */
    i8042_mouse_event(r.k, 300, -400, 0, 0);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08 | 0x40 | 0x80);
    CU_ASSERT_EQUAL(aux_get(&r), 0xff); /* +255 */
    CU_ASSERT_EQUAL(aux_get(&r), 0xff); /* +255 up (screen down 400 is PS/2 +400) */
    CU_ASSERT_EQUAL(aux_get(&r), 0x08);
    CU_ASSERT_EQUAL(aux_get(&r), 45);
    CU_ASSERT_EQUAL(aux_get(&r), 145);
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    i8042_mouse_event(r.k, -1000, 0, 0, 0);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08 | 0x10 | 0x40);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00); /* -256 */
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    /* Motion that arrives while the guest is not reading accumulates. */
    for (int i = 0; i < 10; i++) {
        aux_get(&r);
    }
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    cmd(&r, 0xa7); /* aux port disabled: packets wait */
    i8042_mouse_event(r.k, 1, 0, 0, 0);
    for (int i = 0; i < 20; i++) {
        i8042_mouse_event(r.k, 2, 0, 0, 0);
    }
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    cmd(&r, 0xa8);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08);
    CU_ASSERT_EQUAL(aux_get(&r), 1); /* the first packet, queued before the rest */
    CU_ASSERT_EQUAL(aux_get(&r), 0);
    int sum = 0;
    for (int p = 0; p < 8; p++) {
        int b0 = aux_get(&r);
        if (b0 < 0) {
            break;
        }
        sum += aux_get(&r);
        aux_get(&r);
    }
    CU_ASSERT_EQUAL(sum, 40);
    /* Disabling the aux IRQ keeps the byte but leaves IRQ 12 low. */
    cmd(&r, 0x60);
    put(&r, 0x45);
    i8042_mouse_event(r.k, 1, 1, 0, 0);
    CU_ASSERT_EQUAL(r.aux.level, 0);
    CU_ASSERT_EQUAL(status(&r) & 0x21, 0x21);
    i8042_free(r.k);
}

static void test_mouse_scaling_remote_wrap(void)
{
    struct rig r;
    mouse_rig(&r);
    mouse_enable(&r);
    mouse_put(&r, 0xe7);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    i8042_mouse_event(r.k, 4, 0, 0, 0);
    aux_get(&r);
    CU_ASSERT_EQUAL(aux_get(&r), 6); /* 2:1 table: 4 -> 6 */
    aux_get(&r);
    i8042_mouse_event(r.k, 10, 0, 0, 0);
    aux_get(&r);
    CU_ASSERT_EQUAL(aux_get(&r), 20);
    aux_get(&r);
    /* Remote mode: nothing is streamed; 0xEB reads the counters once. */
    mouse_put(&r, 0xf0);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    i8042_mouse_event(r.k, 4, -3, 0, 0x2);
    CU_ASSERT_EQUAL(aux_get(&r), -1);
    mouse_put(&r, 0xe9);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x40 | 0x20 | 0x10 | 0x01); /* remote, on, 2:1, right */
    aux_get(&r);
    aux_get(&r);
    mouse_put(&r, 0xeb);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08 | 0x02);
    CU_ASSERT_EQUAL(aux_get(&r), 4); /* read data is never scaled */
    CU_ASSERT_EQUAL(aux_get(&r), 3);
    mouse_put(&r, 0xeb);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x08 | 0x02);
    CU_ASSERT_EQUAL(aux_get(&r), 0);
    CU_ASSERT_EQUAL(aux_get(&r), 0);
    mouse_put(&r, 0xea);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    /* Wrap mode echoes until 0xEC. */
    mouse_put(&r, 0xee);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    mouse_put(&r, 0xf2);
    CU_ASSERT_EQUAL(aux_get(&r), 0xf2);
    mouse_put(&r, 0xec);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    mouse_put(&r, 0xf2);
    CU_ASSERT_EQUAL(aux_get(&r), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&r), 0x00);
    i8042_free(r.k);
}

static void test_mouse_save_load(void)
{
    struct rig a, b;
    mouse_rig(&a);
    rig_init(&b);
    set_rate(&a, 200);
    set_rate(&a, 100);
    set_rate(&a, 80);
    mouse_enable(&a);
    cmd(&a, 0xa7);
    i8042_mouse_event(a.k, 2, 0, -1, 0x1);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(i8042_device_ops.save(a.k, out), 0);
    CU_ASSERT_EQUAL(i8042_device_ops.load(b.k, out->data, out->len), 0);
    cmd(&b, 0xa8);
    CU_ASSERT_EQUAL(aux_get(&b), 0x09);
    CU_ASSERT_EQUAL(aux_get(&b), 2);
    CU_ASSERT_EQUAL(aux_get(&b), 0);
    CU_ASSERT_EQUAL(aux_get(&b), 1); /* 4-byte packets: the IntelliMouse ID came along */
    mouse_put(&b, 0xe9);
    CU_ASSERT_EQUAL(aux_get(&b), 0xfa);
    CU_ASSERT_EQUAL(aux_get(&b), 0x20 | 0x04); /* enabled, left held */
    CU_ASSERT_EQUAL(aux_get(&b), 2);
    CU_ASSERT_EQUAL(aux_get(&b), 80);
    g_byte_array_free(out, TRUE);
    i8042_free(a.k);
    i8042_free(b.k);
}

static void test_save_load(void)
{
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    cmd(&a, 0x60);
    put(&a, 0x07);
    put(&a, 0xf0);
    put(&a, 0x01);
    get(&a);
    get(&a);
    static const uint8_t keys[] = {0x10, 0x90};
    i8042_key_event(a.k, keys, 2);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(i8042_device_ops.save(a.k, out), 0);
    CU_ASSERT_EQUAL(i8042_device_ops.load(b.k, out->data, out->len - 3), -EINVAL);
    CU_ASSERT_EQUAL(i8042_device_ops.load(b.k, out->data, out->len), 0);
    CU_ASSERT_EQUAL(b.kbd.level, 1);
    CU_ASSERT_EQUAL(get(&b), 0x10);
    CU_ASSERT_EQUAL(get(&b), 0x90);
    cmd(&b, 0x20);
    CU_ASSERT_EQUAL(get(&b), 0x07);
    put(&b, 0xf0);
    put(&b, 0x00);
    get(&b);
    get(&b);
    CU_ASSERT_EQUAL(get(&b), 0x01); /* the scancode set came along */
    i8042_device_ops.reset(b.k);
    cmd(&b, 0x20);
    CU_ASSERT_EQUAL(get(&b), 0x65);
    g_byte_array_free(out, TRUE);
    i8042_free(a.k);
    i8042_free(b.k);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("i8042", NULL, NULL);
    CU_add_test(s, "self test and interface tests", test_self_test_and_interface_tests);
    CU_add_test(s, "command byte and IRQ 1", test_command_byte_and_irq);
    CU_add_test(s, "pulse reset", test_pulse_reset);
    CU_add_test(s, "IRQ 1 edge per byte", test_irq_edge_per_byte);
    CU_add_test(s, "output port and A20", test_output_port_a20);
    CU_add_test(s, "keyboard commands", test_keyboard_commands);
    CU_add_test(s, "key events and translation", test_key_events);
    CU_add_test(s, "aux loopback while disabled", test_aux_loopback_while_disabled);
    CU_add_test(s, "aux port hook", test_aux_hook);
    CU_add_test(s, "save/load round trip", test_save_load);
    CU_add_test(s, "mouse reset, ID and settings", test_mouse_reset_and_id);
    CU_add_test(s, "mouse IntelliMouse wheel", test_mouse_intellimouse);
    CU_add_test(s, "mouse stream packets", test_mouse_stream_packets);
    CU_add_test(s, "mouse scaling, remote and wrap", test_mouse_scaling_remote_wrap);
    CU_add_test(s, "mouse save/load", test_mouse_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
