/* Unit tests for devices/pc/rtc: MC146818A registers through rtc_read/rtc_write
 * on a deterministic timer queue, with a mock IRQ line. */
#include "devices/pc/rtc.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#define T_2024_02_29_134556 1709214356ll /* a Thursday */
#define T_2024_02_29_000500 1709165100ll

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
    struct timerq *tq;
    struct mock_irq irq;
    struct rtc *r;
};

static void rig_init(struct rig *g)
{
    memset(g, 0, sizeof(*g));
    g->tq = timerq_new(true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->tq);
    struct irq_line line = {.set = mock_irq_set, .opaque = &g->irq, .line = RTC_IRQ};
    g->r = rtc_new(&line, g->tq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->r);
}

static void rig_fini(struct rig *g)
{
    rtc_free(g->r);
    timerq_free(g->tq);
}

static uint8_t cmos_rd(struct rig *g, uint8_t idx)
{
    rtc_write(g->r, 0, idx, 1);
    return (uint8_t)rtc_read(g->r, 1, 1);
}

static void cmos_wr(struct rig *g, uint8_t idx, uint8_t v)
{
    rtc_write(g->r, 0, idx, 1);
    rtc_write(g->r, 1, v, 1);
}

static void test_bcd_and_binary(void)
{
    struct rig g;
    rig_init(&g);
    rtc_set_time(g.r, T_2024_02_29_134556);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0b), 0x02); /* power-on: 24h, BCD */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x00), 0x56);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x02), 0x45);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 0x13);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x06), 0x05); /* Sunday = 1 */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x07), 0x29);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x08), 0x02);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x09), 0x24);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x32), 0x20);
    cmos_wr(&g, 0x0b, 0x06); /* binary */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x00), 56);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 13);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x09), 24);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0d), 0x80); /* VRT */
    rig_fini(&g);
}

static void test_12_hour(void)
{
    struct rig g;
    rig_init(&g);
    rtc_set_time(g.r, T_2024_02_29_134556);
    cmos_wr(&g, 0x0b, 0x00);                  /* 12h BCD */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 0x81); /* 1 PM */
    cmos_wr(&g, 0x0b, 0x04);                  /* 12h binary */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 0x81);
    rtc_set_time(g.r, T_2024_02_29_000500);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 12); /* 12 AM */
    cmos_wr(&g, 0x0b, 0x00);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 0x12);
    rig_fini(&g);
}

static void test_set_time_through_registers(void)
{
    struct rig g;
    rig_init(&g);
    cmos_wr(&g, 0x0b, 0x82); /* SET, 24h BCD */
    cmos_wr(&g, 0x00, 0x58);
    cmos_wr(&g, 0x02, 0x59);
    cmos_wr(&g, 0x04, 0x23);
    cmos_wr(&g, 0x07, 0x31);
    cmos_wr(&g, 0x08, 0x12);
    cmos_wr(&g, 0x09, 0x99);
    cmos_wr(&g, 0x32, 0x19);
    timerq_advance(g.tq, 5 * 1000000000ull); /* frozen while SET */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x00), 0x58);
    cmos_wr(&g, 0x0b, 0x02);
    timerq_advance(g.tq, 2 * 1000000000ull);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x00), 0x00);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x04), 0x00);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x07), 0x01);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x08), 0x01);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x09), 0x00);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x32), 0x20);
    rig_fini(&g);
}

static void test_uip(void)
{
    struct rig g;
    rig_init(&g);
    rtc_set_time(g.r, T_2024_02_29_134556);
    timerq_advance(g.tq, 500000000ull);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0a), 0x26);
    timerq_advance(g.tq, 499800000ull); /* 200 us before the second changes */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0a), 0xa6);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x00), 0x56);
    timerq_advance(g.tq, 300000ull);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0a), 0x26);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x00), 0x57);
    rig_fini(&g);
}

static void test_update_irq_and_reg_c(void)
{
    struct rig g;
    rig_init(&g);
    rtc_set_time(g.r, T_2024_02_29_134556);
    cmos_rd(&g, 0x0c);
    cmos_wr(&g, 0x0b, 0x12); /* UIE */
    CU_ASSERT_EQUAL(g.irq.level, 0);
    timerq_advance(g.tq, 1000000000ull);
    CU_ASSERT_EQUAL(g.irq.level, 1);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0c), 0x90); /* IRQF | UF */
    CU_ASSERT_EQUAL(g.irq.level, 0);          /* read clears and lowers */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0c), 0x00);
    /* UF without UIE sets the flag but not IRQF. */
    cmos_wr(&g, 0x0b, 0x02);
    timerq_advance(g.tq, 1000000000ull);
    CU_ASSERT_EQUAL(g.irq.level, 0);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0c), 0x10);
    rig_fini(&g);
}

static void test_alarm(void)
{
    struct rig g;
    rig_init(&g);
    rtc_set_time(g.r, T_2024_02_29_134556);
    cmos_wr(&g, 0x01, 0x58);
    cmos_wr(&g, 0x03, 0x45);
    cmos_wr(&g, 0x05, 0xc0); /* any hour */
    cmos_wr(&g, 0x0b, 0x22); /* AIE */
    timerq_advance(g.tq, 1000000000ull);
    CU_ASSERT_EQUAL(g.irq.level, 0);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0c), 0x10); /* :57, UF only */
    timerq_advance(g.tq, 1000000000ull);
    CU_ASSERT_EQUAL(g.irq.level, 1);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0c), 0xb0); /* :58, IRQF | AF | UF */
    rig_fini(&g);
}

static int count_periodic(struct rig *g, uint64_t total_ns, uint64_t step_ns)
{
    int start = g->irq.rises;
    for (uint64_t t = 0; t < total_ns; t += step_ns) {
        timerq_advance(g->tq, step_ns);
        if (g->irq.level) {
            CU_ASSERT_EQUAL(cmos_rd(g, 0x0c) & 0xc0, 0xc0);
        }
    }
    return g->irq.rises - start;
}

static void test_periodic_rate(void)
{
    struct rig g;
    rig_init(&g);
    cmos_wr(&g, 0x0a, 0x26); /* 1024 Hz */
    cmos_wr(&g, 0x0b, 0x42); /* PIE */
    int n = count_periodic(&g, 1000000000ull, 250000ull);
    CU_ASSERT_TRUE(n >= 1023 && n <= 1025);
    cmos_wr(&g, 0x0a, 0x2f); /* 2 Hz */
    n = count_periodic(&g, 1000000000ull, 1000000ull);
    CU_ASSERT_EQUAL(n, 2);
    cmos_wr(&g, 0x0a, 0x23); /* 8192 Hz */
    n = count_periodic(&g, 10000000ull, 40000ull);
    CU_ASSERT_TRUE(n >= 81 && n <= 83);
    cmos_wr(&g, 0x0b, 0x02); /* PIE off: silence */
    n = count_periodic(&g, 10000000ull, 40000ull);
    CU_ASSERT_EQUAL(n, 0);
    rig_fini(&g);
}

static void test_index_nmi_and_cmos(void)
{
    struct rig g;
    rig_init(&g);
    rtc_write(g.r, 0, 0x80 | 0x0a, 1);
    CU_ASSERT_TRUE(rtc_nmi_masked(g.r));
    CU_ASSERT_EQUAL(rtc_read(g.r, 1, 1) & 0x7f, 0x26); /* index kept without bit 7 */
    rtc_write(g.r, 0, 0x0a, 1);
    CU_ASSERT_FALSE(rtc_nmi_masked(g.r));
    CU_ASSERT_EQUAL(rtc_cmos_set(g.r, RTC_CMOS_MEM_EXT_LO, 0x00), 0);
    CU_ASSERT_EQUAL(rtc_cmos_set(g.r, RTC_CMOS_MEM_EXT_HI, 0xfc), 0);
    CU_ASSERT_EQUAL(rtc_cmos_set(g.r, 0x5d, 0x01), 0);
    CU_ASSERT_EQUAL(rtc_cmos_set(g.r, 128, 0), -EINVAL);
    CU_ASSERT_EQUAL(rtc_cmos_set(g.r, -1, 0), -EINVAL);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x18), 0xfc);
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x5d), 0x01);
    cmos_wr(&g, 0x7f, 0x33); /* last byte of the 128 */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x7f), 0x33);
    cmos_wr(&g, 0x0d, 0x00); /* D is read-only */
    CU_ASSERT_EQUAL(cmos_rd(&g, 0x0d), 0x80);
    rig_fini(&g);
}

static void test_save_load(void)
{
    struct rig a, b;
    rig_init(&a);
    rig_init(&b);
    rtc_set_time(a.r, T_2024_02_29_134556);
    rtc_cmos_set(a.r, 0x34, 0x12);
    cmos_wr(&a, 0x0b, 0x12);
    timerq_advance(a.tq, 1000000000ull); /* UF pending, IRQ high */
    rtc_write(a.r, 0, 0x80 | 0x0c, 1);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(rtc_device_ops.save(a.r, out), 0);
    CU_ASSERT_EQUAL(rtc_device_ops.load(b.r, out->data, out->len / 2), -EINVAL);
    CU_ASSERT_FALSE(rtc_nmi_masked(b.r));
    CU_ASSERT_EQUAL(rtc_device_ops.load(b.r, out->data, out->len), 0);
    CU_ASSERT_TRUE(rtc_nmi_masked(b.r));
    CU_ASSERT_EQUAL(b.irq.level, 1);
    CU_ASSERT_EQUAL(rtc_read(b.r, 1, 1), 0x90); /* the saved index was reg C */
    CU_ASSERT_EQUAL(cmos_rd(&b, 0x34), 0x12);
    CU_ASSERT_EQUAL(cmos_rd(&b, 0x09), 0x24); /* the guest clock came along */
    CU_ASSERT_EQUAL(cmos_rd(&b, 0x02), 0x45);
    /* System reset keeps CMOS but drops interrupt enables. */
    rtc_device_ops.reset(b.r);
    CU_ASSERT_EQUAL(cmos_rd(&b, 0x0b), 0x02);
    CU_ASSERT_EQUAL(cmos_rd(&b, 0x34), 0x12);
    g_byte_array_free(out, TRUE);
    rig_fini(&a);
    rig_fini(&b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("rtc", NULL, NULL);
    CU_add_test(s, "BCD and binary", test_bcd_and_binary);
    CU_add_test(s, "12-hour mode PM bit", test_12_hour);
    CU_add_test(s, "set time through registers", test_set_time_through_registers);
    CU_add_test(s, "update in progress", test_uip);
    CU_add_test(s, "update IRQ and reg C read-to-clear", test_update_irq_and_reg_c);
    CU_add_test(s, "alarm", test_alarm);
    CU_add_test(s, "periodic rate", test_periodic_rate);
    CU_add_test(s, "index, NMI mask, CMOS bytes", test_index_nmi_and_cmos);
    CU_add_test(s, "save/load round trip", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
