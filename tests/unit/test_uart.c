/* Unit tests for devices/pc/uart16550: registers as the 16550A data sheet and
 * Linux's 8250 driver see them, through uart_read/uart_write and a mock IRQ line. */
#include "devices/pc/uart16550.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

struct mock_irq {
    int level; /* current level */
    int rises; /* 0 -> 1 transitions */
    int calls; /* set() calls */
};

static void mock_irq_set(void *opaque, int line, int level)
{
    struct mock_irq *m = opaque;
    if (level && !m->level) {
        m->rises++;
    }
    m->level = level;
    m->calls++;
}

struct mock_be {
    uint8_t buf[64]; /* bytes transmitted */
    size_t n;
};

static void mock_be_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct mock_be *b = opaque;
    for (size_t i = 0; i < len && b->n < sizeof(b->buf); i++) {
        b->buf[b->n++] = buf[i];
    }
}

struct rig {
    struct mock_irq irq;
    struct mock_be be;
    struct uart *u;
};

static void rig_init(struct rig *r, struct timerq *tq)
{
    memset(r, 0, sizeof(*r));
    struct irq_line line = {.set = mock_irq_set, .opaque = &r->irq, .line = UART_COM1_IRQ};
    struct uart_backend be = {.opaque = &r->be, .write = mock_be_write};
    r->u = uart_new(&line, &be, tq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->u);
}

static uint8_t rd(struct rig *r, unsigned off)
{
    return (uint8_t)uart_read(r->u, off, 1);
}

static void wr(struct rig *r, unsigned off, uint8_t v)
{
    uart_write(r->u, off, v, 1);
}

static void test_reset_values_and_scratch(void)
{
    struct rig r;
    rig_init(&r, NULL);
    CU_ASSERT_EQUAL(rd(&r, 2), 0x01); /* no interrupt, FIFOs off */
    CU_ASSERT_EQUAL(rd(&r, 5), 0x60); /* THRE | TEMT */
    CU_ASSERT_EQUAL(rd(&r, 1), 0x00);
    wr(&r, 7, 0xa5);
    CU_ASSERT_EQUAL(rd(&r, 7), 0xa5);
    wr(&r, 7, 0x5a);
    CU_ASSERT_EQUAL(rd(&r, 7), 0x5a);
    CU_ASSERT_EQUAL(r.irq.level, 0);
    uart_free(r.u);
}

static void test_fifo_probe_bits(void)
{
    struct rig r;
    rig_init(&r, NULL);
    wr(&r, 2, 0x01);
    CU_ASSERT_EQUAL(rd(&r, 2) & 0xc0, 0xc0); /* what makes Linux say 16550A */
    wr(&r, 2, 0x00);
    CU_ASSERT_EQUAL(rd(&r, 2) & 0xc0, 0x00);
    uart_free(r.u);
}

static void test_fifo_of_16_and_dr(void)
{
    struct rig r;
    rig_init(&r, NULL);
    wr(&r, 2, 0x07); /* enable, clear both */
    uint8_t in[20];
    for (int i = 0; i < 20; i++) {
        in[i] = (uint8_t)(0x30 + i);
    }
    CU_ASSERT_EQUAL(uart_rx_space(r.u), 16);
    CU_ASSERT_EQUAL(uart_receive(r.u, in, 20), 16);
    CU_ASSERT_EQUAL(uart_rx_space(r.u), 0);
    CU_ASSERT_EQUAL(uart_receive(r.u, in + 16, 4), 0);
    for (int i = 0; i < 16; i++) {
        CU_ASSERT_EQUAL(rd(&r, 5) & 0x01, 0x01);
        CU_ASSERT_EQUAL(rd(&r, 0), 0x30 + i);
    }
    CU_ASSERT_EQUAL(rd(&r, 5) & 0x01, 0x00); /* DR clears when empty */
    CU_ASSERT_EQUAL(rd(&r, 5) & 0x02, 0x00); /* flow-controlled: no overrun */
    /* 16450 mode holds one byte. */
    wr(&r, 2, 0x00);
    CU_ASSERT_EQUAL(uart_receive(r.u, in, 3), 1);
    /* FCR bit 1 clears the RX FIFO. */
    wr(&r, 2, 0x01);
    CU_ASSERT_EQUAL(uart_receive(r.u, in, 3), 3);
    wr(&r, 2, 0x03);
    CU_ASSERT_EQUAL(rd(&r, 5) & 0x01, 0x00);
    uart_free(r.u);
}

static void test_iir_priority(void)
{
    struct rig r;
    rig_init(&r, NULL);
    wr(&r, 2, 0x01);                  /* FIFO on, trigger 1 */
    wr(&r, 4, 0x10);                  /* loopback, modem outputs low */
    rd(&r, 6);                        /* clear deltas from entering loopback */
    wr(&r, 1, 0x0f);                  /* all sources */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc2); /* THRE */
    CU_ASSERT_EQUAL(r.irq.level, 0);  /* the IIR read cleared THRE */
    wr(&r, 4, 0x12);                  /* RTS -> CTS changes: modem status */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc0);
    CU_ASSERT_EQUAL(r.irq.level, 1);
    for (int i = 0; i < 17; i++) {
        wr(&r, 0, (uint8_t)i); /* loops back; the 17th overruns */
    }
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc6);        /* RLS beats RDA, THRE and MS */
    CU_ASSERT_EQUAL(rd(&r, 5) & 0x03, 0x03); /* OE and DR */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc4);        /* RDA next */
    for (int i = 0; i < 16; i++) {
        CU_ASSERT_EQUAL(rd(&r, 0), i);
    }
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc2);        /* THRE (re-raised by the THR writes) */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc0);        /* then modem status */
    CU_ASSERT_EQUAL(rd(&r, 6) & 0x01, 0x01); /* DCTS */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc1);
    CU_ASSERT_EQUAL(r.irq.level, 0);
    uart_free(r.u);
}

static void test_thre_interrupt(void)
{
    struct rig r;
    rig_init(&r, NULL);
    CU_ASSERT_EQUAL(r.irq.level, 0);
    wr(&r, 1, 0x02); /* ETBEI with THR empty raises at once */
    CU_ASSERT_EQUAL(r.irq.level, 1);
    CU_ASSERT_EQUAL(r.irq.rises, 1);
    CU_ASSERT_EQUAL(rd(&r, 2), 0x02);
    CU_ASSERT_EQUAL(r.irq.level, 0); /* cleared by the IIR read */
    CU_ASSERT_EQUAL(rd(&r, 2), 0x01);
    wr(&r, 0, 'A'); /* THR write: sent, THR empties, THRE raised again */
    CU_ASSERT_EQUAL(r.irq.level, 1);
    CU_ASSERT_EQUAL(r.irq.rises, 2);
    wr(&r, 0, 'B'); /* a new edge per character for an edge-triggered PIC */
    CU_ASSERT_EQUAL(r.irq.rises, 3);
    CU_ASSERT_EQUAL(r.be.n, 2);
    CU_ASSERT_EQUAL(memcmp(r.be.buf, "AB", 2), 0);
    wr(&r, 1, 0x00); /* disabling ETBEI drops the line */
    CU_ASSERT_EQUAL(r.irq.level, 0);
    uart_free(r.u);
}

static void test_linux_thre_test(void)
{
    struct rig r;
    rig_init(&r, NULL);
    /* serial8250_do_startup: IER=THRI, read IIR, IER=0, IER=THRI, read IIR. */
    wr(&r, 1, 0x02);
    uint8_t iir1 = rd(&r, 2);
    wr(&r, 1, 0x00);
    wr(&r, 1, 0x02);
    uint8_t iir = rd(&r, 2);
    wr(&r, 1, 0x00);
    CU_ASSERT_EQUAL(iir1 & 0x01, 0);
    CU_ASSERT_EQUAL(iir & 0x01, 0); /* re-asserted: no UART_BUG_THRE */
    uart_free(r.u);
}

static void test_loopback(void)
{
    struct rig r;
    rig_init(&r, NULL);
    /* Linux autoconfig: MCR = LOOP | OUT2 | RTS, expect MSR status = DCD | CTS. */
    wr(&r, 4, 0x1a);
    CU_ASSERT_EQUAL(rd(&r, 6) & 0xf0, 0x90);
    wr(&r, 4, 0x15); /* DTR | OUT1 */
    CU_ASSERT_EQUAL(rd(&r, 6) & 0xf0, 0x60);
    wr(&r, 0, 'x');
    CU_ASSERT_EQUAL(r.be.n, 0); /* nothing leaves the chip */
    CU_ASSERT_EQUAL(rd(&r, 5) & 0x01, 0x01);
    CU_ASSERT_EQUAL(rd(&r, 0), 'x');
    CU_ASSERT_EQUAL(uart_rx_space(r.u), 0); /* receiver disconnected from the line */
    CU_ASSERT_EQUAL(uart_receive(r.u, (const uint8_t *)"z", 1), 0);
    wr(&r, 4, 0x00);
    CU_ASSERT_EQUAL(rd(&r, 6) & 0xf0, 0xb0);
    wr(&r, 0, 'y');
    CU_ASSERT_EQUAL(r.be.n, 1);
    CU_ASSERT_EQUAL(r.be.buf[0], 'y');
    uart_free(r.u);
}

static void test_dlab(void)
{
    struct rig r;
    rig_init(&r, NULL);
    wr(&r, 1, 0x05);
    wr(&r, 3, 0x83); /* DLAB, 8N1 */
    wr(&r, 0, 0x01);
    wr(&r, 1, 0x00);
    CU_ASSERT_EQUAL(rd(&r, 0), 0x01);
    CU_ASSERT_EQUAL(rd(&r, 1), 0x00);
    CU_ASSERT_EQUAL(r.be.n, 0); /* DLL write did not transmit */
    wr(&r, 3, 0x03);
    CU_ASSERT_EQUAL(rd(&r, 3), 0x03);
    CU_ASSERT_EQUAL(rd(&r, 1), 0x05); /* IER untouched by the DLM write */
    uart_free(r.u);
}

static void test_trigger_and_timeout(void)
{
    struct timerq *tq = timerq_new(true);
    struct rig r;
    rig_init(&r, tq);
    wr(&r, 3, 0x80);
    wr(&r, 0, 0x01); /* 115200 baud: a 10-bit char is ~86.8 us */
    wr(&r, 3, 0x03);
    wr(&r, 2, 0x41); /* FIFO on, trigger level 4 */
    wr(&r, 1, 0x01);
    CU_ASSERT_EQUAL(uart_receive(r.u, (const uint8_t *)"ab", 2), 2);
    CU_ASSERT_EQUAL(r.irq.level, 0); /* below trigger */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc1);
    timerq_advance(tq, 300000); /* < 4 chars */
    CU_ASSERT_EQUAL(r.irq.level, 0);
    timerq_advance(tq, 100000); /* > 4 chars */
    CU_ASSERT_EQUAL(r.irq.level, 1);
    CU_ASSERT_EQUAL(rd(&r, 2), 0xcc);
    CU_ASSERT_EQUAL(rd(&r, 0), 'a'); /* reading clears the timeout */
    CU_ASSERT_EQUAL(r.irq.level, 0);
    CU_ASSERT_EQUAL(uart_receive(r.u, (const uint8_t *)"cde", 3), 3);
    CU_ASSERT_EQUAL(r.irq.level, 1); /* 4 bytes: trigger reached */
    CU_ASSERT_EQUAL(rd(&r, 2), 0xc4);
    uart_free(r.u);
    timerq_free(tq);
}

static void test_save_load(void)
{
    struct rig a, b;
    rig_init(&a, NULL);
    rig_init(&b, NULL);
    wr(&a, 3, 0x80);
    wr(&a, 0, 0x03);
    wr(&a, 3, 0x1b);
    wr(&a, 2, 0x81);
    wr(&a, 7, 0x42);
    wr(&a, 1, 0x01);
    uart_receive(a.u, (const uint8_t *)"hey", 3);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(uart_device_ops.save(a.u, out), 0);
    /* A truncated stream is refused and leaves b at reset. */
    CU_ASSERT_EQUAL(uart_device_ops.load(b.u, out->data, out->len - 1), -EINVAL);
    CU_ASSERT_EQUAL(rd(&b, 7), 0x00);
    CU_ASSERT_EQUAL(uart_device_ops.load(b.u, out->data, out->len), 0);
    CU_ASSERT_EQUAL(rd(&b, 7), 0x42);
    CU_ASSERT_EQUAL(rd(&b, 3), 0x1b);
    CU_ASSERT_EQUAL(rd(&b, 2), 0xcc); /* no timerq: timeout at once */
    CU_ASSERT_EQUAL(b.irq.level, 1);  /* line re-driven from the loaded state */
    CU_ASSERT_EQUAL(rd(&b, 0), 'h');
    CU_ASSERT_EQUAL(rd(&b, 0), 'e');
    CU_ASSERT_EQUAL(rd(&b, 0), 'y');
    wr(&b, 3, 0x9b);
    CU_ASSERT_EQUAL(rd(&b, 0), 0x03);
    uart_device_ops.reset(b.u);
    CU_ASSERT_EQUAL(rd(&b, 7), 0x00);
    CU_ASSERT_EQUAL(b.irq.level, 0);
    g_byte_array_free(out, TRUE);
    uart_free(a.u);
    uart_free(b.u);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("uart", NULL, NULL);
    CU_add_test(s, "reset values and scratch", test_reset_values_and_scratch);
    CU_add_test(s, "FIFO probe bits", test_fifo_probe_bits);
    CU_add_test(s, "FIFO of 16 and LSR.DR", test_fifo_of_16_and_dr);
    CU_add_test(s, "IIR priority", test_iir_priority);
    CU_add_test(s, "THRE interrupt", test_thre_interrupt);
    CU_add_test(s, "Linux THRE test", test_linux_thre_test);
    CU_add_test(s, "loopback", test_loopback);
    CU_add_test(s, "DLAB divisor latch", test_dlab);
    CU_add_test(s, "trigger level and timeout", test_trigger_and_timeout);
    CU_add_test(s, "save/load round trip", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
