/* Unit tests for devices/pc/pit8254 on a deterministic timer queue: IRQ 0 period,
 * exact counts between ticks, latch and read-back, BCD, channel 2 gate and OUT
 * through port 0x61, save/load. */
#include "devices/pc/pit8254.h"

#include <CUnit/Basic.h>
#include <errno.h>

struct irq_rec {
    int rises;              /* low -> high transitions */
    int level;              /* current level */
    uint64_t first_rise_ns; /* clock at the first rise */
    struct timerq *q;
};

static void rec_irq(void *opaque, int line, int level)
{
    struct irq_rec *r = opaque;
    if (level && !r->level) {
        if (r->rises == 0) {
            r->first_rise_ns = timerq_now_ns(r->q);
        }
        r->rises++;
    }
    r->level = level;
}

/* Nanoseconds after which the PIT has counted at least t input clocks. */
static uint64_t ticks_ns(uint64_t t)
{
    return (t * 1000000000ull + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ;
}

struct fixture {
    struct timerq *q;
    struct pit *pit;
    struct irq_rec rec;
};

static void fx_init(struct fixture *f)
{
    f->q = timerq_new(true);
    f->rec = (struct irq_rec){.q = f->q};
    struct irq_line line = {.set = rec_irq, .opaque = &f->rec, .line = 0};
    f->pit = pit_new(f->q, &line);
}

static void fx_fini(struct fixture *f)
{
    pit_free(f->pit);
    timerq_free(f->q);
}

static void pit_program(struct pit *pit, int ch, uint8_t mode_bits, uint16_t count)
{
    pit_write(pit, 0x43, (ch << 6) | 0x30 | mode_bits, 1); /* lo/hi access */
    pit_write(pit, 0x40 + ch, count & 0xff, 1);
    pit_write(pit, 0x40 + ch, count >> 8, 1);
}

static uint16_t pit_latch_read(struct pit *pit, int ch)
{
    pit_write(pit, 0x43, ch << 6, 1); /* counter latch command */
    uint16_t lo = pit_read(pit, 0x40 + ch, 1);
    uint16_t hi = pit_read(pit, 0x40 + ch, 1);
    return lo | (hi << 8);
}

static void test_mode2_period(void)
{
    struct fixture f;
    fx_init(&f);
    uint64_t t0 = timerq_now_ns(f.q);
    pit_program(f.pit, 0, 0x04, 1193); /* mode 2, ~1 ms */
    timerq_advance(f.q, ticks_ns(1193) - 1);
    CU_ASSERT_EQUAL(f.rec.rises, 0);
    timerq_advance(f.q, 1);
    CU_ASSERT_EQUAL(f.rec.rises, 1);
    CU_ASSERT_EQUAL(f.rec.first_rise_ns - t0, ticks_ns(1193));
    /* 1193 ticks = 999.85 us: 100 periods fit in 99.985 ms. */
    timerq_advance(f.q, ticks_ns(1193 * 100) - ticks_ns(1193));
    CU_ASSERT_EQUAL(f.rec.rises, 100);
    CU_ASSERT_EQUAL(f.rec.level, 0); /* pulses leave the line low */
    fx_fini(&f);
}

static void test_count_between_ticks(void)
{
    struct fixture f;
    fx_init(&f);
    pit_program(f.pit, 0, 0x04, 1000);
    timerq_advance(f.q, ticks_ns(250));
    CU_ASSERT_EQUAL(pit_latch_read(f.pit, 0), 750);
    timerq_advance(f.q, ticks_ns(1000) - ticks_ns(250)); /* reload */
    CU_ASSERT_EQUAL(pit_latch_read(f.pit, 0), 1000);
    timerq_advance(f.q, ticks_ns(1001) - ticks_ns(1000));
    CU_ASSERT_EQUAL(pit_latch_read(f.pit, 0), 999);

    /* The latch holds its value while the counter runs on. */
    pit_write(f.pit, 0x43, 0x00, 1);
    timerq_advance(f.q, ticks_ns(100));
    uint16_t lo = pit_read(f.pit, 0x40, 1);
    uint16_t hi = pit_read(f.pit, 0x40, 1);
    CU_ASSERT_EQUAL(lo | (hi << 8), 999);
    /* A second read without latch follows the live counter. */
    uint16_t live = pit_read(f.pit, 0x40, 1) | (pit_read(f.pit, 0x40, 1) << 8);
    CU_ASSERT(live < 999 && live > 850);
    fx_fini(&f);
}

static void test_readback(void)
{
    struct fixture f;
    fx_init(&f);
    pit_program(f.pit, 1, 0x04, 500);
    timerq_advance(f.q, ticks_ns(100));
    pit_write(f.pit, 0x43, 0xc4, 1); /* read-back count and status of channel 1 */
    uint8_t status = pit_read(f.pit, 0x41, 1);
    CU_ASSERT_EQUAL(status & 0x3f, 0x34); /* lo/hi, mode 2, binary */
    CU_ASSERT_TRUE(status & 0x80);        /* OUT high in mode 2 */
    CU_ASSERT_FALSE(status & 0x40);       /* count loaded */
    uint16_t c = pit_read(f.pit, 0x41, 1) | (pit_read(f.pit, 0x41, 1) << 8);
    CU_ASSERT_EQUAL(c, 400);

    /* Status only: after a new control word the count is null. */
    pit_write(f.pit, 0x43, 0x70, 1);
    pit_write(f.pit, 0x43, 0xe4, 1);
    CU_ASSERT_EQUAL(pit_read(f.pit, 0x41, 1), 0x70 | 0x40); /* mode 0: OUT low */
    fx_fini(&f);
}

static void test_lsb_msb_access_and_bcd(void)
{
    struct fixture f;
    fx_init(&f);
    pit_write(f.pit, 0x43, 0x14, 1); /* channel 0, LSB only, mode 2 */
    pit_write(f.pit, 0x40, 200, 1);
    timerq_advance(f.q, ticks_ns(50));
    CU_ASSERT_EQUAL(pit_read(f.pit, 0x40, 1), 150);
    CU_ASSERT_EQUAL(pit_read(f.pit, 0x40, 1), 150);

    pit_write(f.pit, 0x43, 0x35, 1); /* lo/hi, mode 2, BCD */
    pit_write(f.pit, 0x40, 0x00, 1);
    pit_write(f.pit, 0x40, 0x10, 1); /* 1000 decimal */
    timerq_advance(f.q, ticks_ns(1));
    CU_ASSERT_EQUAL(pit_latch_read(f.pit, 0), 0x0999);
    fx_fini(&f);
}

static void test_mode0_oneshot_irq(void)
{
    struct fixture f;
    fx_init(&f);
    pit_program(f.pit, 0, 0x00, 500);
    timerq_advance(f.q, ticks_ns(499));
    CU_ASSERT_EQUAL(f.rec.level, 0);
    timerq_advance(f.q, ticks_ns(500) - ticks_ns(499));
    CU_ASSERT_EQUAL(f.rec.level, 1);
    timerq_advance(f.q, 100000000);
    CU_ASSERT_EQUAL(f.rec.rises, 1); /* one shot: stays high, no more edges */
    CU_ASSERT_TRUE(pit_get_out(f.pit, 0));
    /* Reprogramming drops OUT. */
    pit_program(f.pit, 0, 0x00, 500);
    CU_ASSERT_EQUAL(f.rec.level, 0);
    fx_fini(&f);
}

static void test_channel2_gate_port61(void)
{
    struct fixture f;
    fx_init(&f);
    pit_write(f.pit, 0x61, 0x00, 1); /* gate 2 low, speaker off */
    /* Mode 1 waits for a gate edge: OUT stays high and the count does not move. */
    pit_program(f.pit, 2, 0x02, 100);
    timerq_advance(f.q, ticks_ns(300));
    CU_ASSERT_TRUE(pit_read(f.pit, 0x61, 1) & 0x20);
    CU_ASSERT_EQUAL(pit_latch_read(f.pit, 2), 100);
    pit_write(f.pit, 0x61, 0x01, 1); /* gate rises: trigger */
    CU_ASSERT_EQUAL(pit_read(f.pit, 0x61, 1) & 0x21, 0x01);
    timerq_advance(f.q, ticks_ns(60));
    CU_ASSERT_EQUAL(pit_latch_read(f.pit, 2), 40);
    timerq_advance(f.q, ticks_ns(100) - ticks_ns(60));
    CU_ASSERT_TRUE(pit_read(f.pit, 0x61, 1) & 0x20);

    /* Linux's TSC calibration: gate high, mode 0, poll OUT2. */
    pit_write(f.pit, 0x61, 0x01, 1);
    pit_program(f.pit, 2, 0x00, 11932); /* 10 ms */
    timerq_advance(f.q, ticks_ns(11931));
    CU_ASSERT_FALSE(pit_read(f.pit, 0x61, 1) & 0x20);
    timerq_advance(f.q, ticks_ns(11932) - ticks_ns(11931));
    CU_ASSERT_TRUE(pit_read(f.pit, 0x61, 1) & 0x20);
    CU_ASSERT_EQUAL(f.rec.rises, 0); /* channel 2 never touches IRQ 0 */

    /* Bit 4 (refresh) toggles with time. */
    uint8_t a = pit_read(f.pit, 0x61, 1) & 0x10;
    timerq_advance(f.q, 15085);
    uint8_t b = pit_read(f.pit, 0x61, 1) & 0x10;
    CU_ASSERT_NOT_EQUAL(a, b);
    fx_fini(&f);
}

static void test_save_load(void)
{
    struct fixture f, g;
    fx_init(&f);
    fx_init(&g);
    pit_program(f.pit, 0, 0x04, 1000);
    timerq_advance(f.q, ticks_ns(300));
    GByteArray *buf = g_byte_array_new();
    CU_ASSERT_EQUAL(pit_device_ops.save(f.pit, buf), 0);
    timerq_advance(g.q, 5000000); /* the restoring VM's clock is elsewhere */
    CU_ASSERT_EQUAL(pit_device_ops.load(g.pit, buf->data, buf->len), 0);
    CU_ASSERT_EQUAL(pit_latch_read(g.pit, 0), 700);
    int before = g.rec.rises;
    timerq_advance(g.q, ticks_ns(1000) - ticks_ns(300));
    CU_ASSERT_EQUAL(g.rec.rises, before + 1);
    CU_ASSERT_EQUAL(pit_device_ops.load(g.pit, buf->data, buf->len / 2), -EINVAL);
    g_byte_array_free(buf, TRUE);
    fx_fini(&f);
    fx_fini(&g);
}

static void test_hostile(void)
{
    struct fixture f;
    fx_init(&f);
    pit_set_gate(f.pit, 7, true);
    pit_set_gate(f.pit, -1, true);
    CU_ASSERT_FALSE(pit_get_out(f.pit, 3));
    CU_ASSERT_EQUAL(pit_read(f.pit, 0x44, 1), 0xff);
    pit_write(f.pit, 0x43, 0xfe, 1); /* read-back with reserved bit 0 */
    pit_program(f.pit, 0, 0x04, 1);  /* period of one clock: coalesced, not a storm */
    timerq_advance(f.q, 10000000);
    CU_ASSERT(f.rec.rises <= 101);
    CU_ASSERT(f.rec.rises >= 50);
    fx_fini(&f);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pit", NULL, NULL);
    CU_add_test(s, "mode 2 period drives IRQ 0", test_mode2_period);
    CU_add_test(s, "count exact between ticks, latch", test_count_between_ticks);
    CU_add_test(s, "read-back command", test_readback);
    CU_add_test(s, "LSB access and BCD", test_lsb_msb_access_and_bcd);
    CU_add_test(s, "mode 0 one-shot IRQ", test_mode0_oneshot_irq);
    CU_add_test(s, "channel 2 gate and OUT via port 0x61", test_channel2_gate_port61);
    CU_add_test(s, "save and load", test_save_load);
    CU_add_test(s, "hostile inputs", test_hostile);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
