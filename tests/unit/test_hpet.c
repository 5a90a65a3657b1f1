/* Unit tests for devices/pc/hpet on a deterministic timer queue: capabilities,
 * 100 MHz counter, comparator match, periodic reload, legacy routing, level status
 * write-1-to-clear, 32-bit mode, hostile offsets, save/load. */
#include "devices/pc/hpet.h"

#include <CUnit/Basic.h>
#include <errno.h>

#define REG_CONF 0x010
#define REG_ISR 0x020
#define REG_COUNTER 0x0f0
#define TN_CONF(n) (0x100 + 0x20 * (n))
#define TN_CMP(n) (0x108 + 0x20 * (n))

#define TN_LEVEL (1u << 1)
#define TN_INT_ENB (1u << 2)
#define TN_PERIODIC (1u << 3)
#define TN_VAL_SET (1u << 6)
#define TN_32BIT (1u << 8)
#define TN_ROUTE(g) ((uint32_t)(g) << 9)

struct irq_rec {
    int rises[32]; /* low -> high transitions per GSI */
    int level[32]; /* current level per GSI */
    int bad;       /* calls with an out-of-range GSI */
};

static void rec_irq(void *opaque, int gsi, int level)
{
    struct irq_rec *r = opaque;
    if (gsi < 0 || gsi >= 32) {
        r->bad++;
        return;
    }
    if (level && !r->level[gsi]) {
        r->rises[gsi]++;
    }
    r->level[gsi] = level;
}

struct fixture {
    struct timerq *q;
    struct hpet *h;
    struct irq_rec r;
};

static void fx_init(struct fixture *f)
{
    f->q = timerq_new(true);
    f->r = (struct irq_rec){0};
    f->h = hpet_new(f->q, rec_irq, &f->r);
}

static void fx_fini(struct fixture *f)
{
    hpet_free(f->h);
    timerq_free(f->q);
}

static void test_capabilities(void)
{
    struct fixture f;
    fx_init(&f);
    uint64_t cap = hpet_read(f.h, 0x000, 8);
    CU_ASSERT_EQUAL(cap >> 32, 10000000u);                /* 10 ns period */
    CU_ASSERT_EQUAL((cap >> 8) & 0x1f, 2);                /* three timers */
    CU_ASSERT_TRUE(cap & (1u << 13));                     /* 64-bit counter */
    CU_ASSERT_TRUE(cap & (1u << 15));                     /* legacy route capable */
    CU_ASSERT_EQUAL(hpet_read(f.h, 0x004, 4), 10000000u); /* high half as 32-bit read */
    uint64_t t0 = hpet_read(f.h, TN_CONF(0), 8);
    CU_ASSERT_EQUAL(t0 >> 32, HPET_INT_ROUTE_CAP);
    CU_ASSERT_TRUE(t0 & (1u << 4)); /* periodic capable */
    CU_ASSERT_TRUE(t0 & (1u << 5)); /* 64-bit comparator */
    fx_fini(&f);
}

static void test_counter_100mhz(void)
{
    struct fixture f;
    fx_init(&f);
    timerq_advance(f.q, 1000000);
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_COUNTER, 8), 0); /* halted until enabled */
    hpet_write(f.h, REG_CONF, 1, 4);
    timerq_advance(f.q, 1000000); /* 1 ms */
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_COUNTER, 8), 100000);
    timerq_advance(f.q, 25);
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_COUNTER, 4), 100002);
    hpet_write(f.h, REG_CONF, 0, 4); /* halt: the counter freezes */
    timerq_advance(f.q, 1000000);
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_COUNTER, 8), 100002);
    hpet_write(f.h, REG_COUNTER + 4, 1, 4); /* writable while halted */
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_COUNTER, 8), (1ull << 32) | 100002);
    hpet_write(f.h, REG_CONF, 1, 4);
    hpet_write(f.h, REG_COUNTER, 0, 8); /* ignored while running */
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_COUNTER + 4, 4), 1);
    fx_fini(&f);
}

static void test_comparator_fires(void)
{
    struct fixture f;
    fx_init(&f);
    hpet_write(f.h, TN_CONF(2), TN_INT_ENB | TN_ROUTE(20), 4);
    hpet_write(f.h, TN_CMP(2), 5000, 8); /* 50 us */
    hpet_write(f.h, REG_CONF, 1, 4);
    timerq_advance(f.q, 49990);
    CU_ASSERT_EQUAL(f.r.rises[20], 0);
    timerq_advance(f.q, 10);
    CU_ASSERT_EQUAL(f.r.rises[20], 1);
    CU_ASSERT_EQUAL(f.r.level[20], 0); /* edge: a pulse */
    timerq_advance(f.q, 100000000);
    CU_ASSERT_EQUAL(f.r.rises[20], 1);              /* one shot */
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_ISR, 8), 0); /* edge timers set no status */
    fx_fini(&f);
}

static void test_periodic_reload(void)
{
    struct fixture f;
    fx_init(&f);
    /* Linux's sequence: 32-bit mode with VAL_SET, comparator = now + delta, then
     * the period. */
    hpet_write(f.h, TN_CONF(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_32BIT | TN_ROUTE(2), 4);
    hpet_write(f.h, TN_CMP(0), 1000, 4);
    hpet_write(f.h, TN_CMP(0), 1000, 4);
    CU_ASSERT_FALSE(hpet_read(f.h, TN_CONF(0), 4) & TN_VAL_SET);
    hpet_write(f.h, REG_CONF, 1, 4);
    timerq_advance(f.q, 10000); /* 10 us = 1000 ticks */
    CU_ASSERT_EQUAL(f.r.rises[2], 1);
    CU_ASSERT_EQUAL(hpet_read(f.h, TN_CMP(0), 8), 2000);
    timerq_advance(f.q, 90000);
    CU_ASSERT_EQUAL(f.r.rises[2], 10);
    CU_ASSERT_EQUAL(hpet_read(f.h, TN_CMP(0), 8), 11000);
    fx_fini(&f);
}

static void test_legacy_route(void)
{
    struct fixture f;
    fx_init(&f);
    hpet_write(f.h, TN_CONF(0), TN_INT_ENB | TN_ROUTE(20), 4);
    hpet_write(f.h, TN_CMP(0), 100, 8);
    hpet_write(f.h, TN_CONF(1), TN_INT_ENB | TN_ROUTE(21), 4);
    hpet_write(f.h, TN_CMP(1), 200, 8);
    hpet_write(f.h, REG_CONF, 3, 4); /* enable + legacy replacement */
    timerq_advance(f.q, 3000);
    CU_ASSERT_EQUAL(f.r.rises[0], 1); /* timer 0 -> IRQ 0 */
    CU_ASSERT_EQUAL(f.r.rises[8], 1); /* timer 1 -> IRQ 8 */
    CU_ASSERT_EQUAL(f.r.rises[20], 0);
    CU_ASSERT_EQUAL(f.r.rises[21], 0);
    fx_fini(&f);
}

static void test_level_status_w1c(void)
{
    struct fixture f;
    fx_init(&f);
    hpet_write(f.h, TN_CONF(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(21), 4);
    hpet_write(f.h, TN_CMP(2), 10, 8);
    hpet_write(f.h, REG_CONF, 1, 4);
    timerq_advance(f.q, 100);
    CU_ASSERT_EQUAL(f.r.level[21], 1);
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_ISR, 4), 1u << 2);
    hpet_write(f.h, REG_ISR, 1u << 1, 4); /* another timer's bit: no effect */
    CU_ASSERT_EQUAL(f.r.level[21], 1);
    hpet_write(f.h, REG_ISR, 1u << 2, 4);
    CU_ASSERT_EQUAL(f.r.level[21], 0);
    CU_ASSERT_EQUAL(hpet_read(f.h, REG_ISR, 4), 0);
    fx_fini(&f);
}

static void test_32bit_mode(void)
{
    struct fixture f;
    fx_init(&f);
    hpet_write(f.h, TN_CMP(2), 0x1234567890ull, 8);
    hpet_write(f.h, TN_CONF(2), TN_32BIT | TN_INT_ENB | TN_ROUTE(22), 4);
    CU_ASSERT_EQUAL(hpet_read(f.h, TN_CMP(2), 8), 0x34567890ull);
    /* The counter wraps in 32 bits for this comparator. */
    hpet_write(f.h, REG_COUNTER, 0x1ffffff00ull, 8);
    hpet_write(f.h, TN_CMP(2), 0x10, 4);
    hpet_write(f.h, REG_CONF, 1, 4);
    timerq_advance(f.q, (0x100 + 0x10) * 10);
    CU_ASSERT_EQUAL(f.r.rises[22], 1);
    fx_fini(&f);
}

static void test_hostile(void)
{
    struct fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL(hpet_read(f.h, 0x160, 8), 0); /* timer 3 does not exist */
    hpet_write(f.h, 0x160, ~0ull, 8);
    hpet_write(f.h, 0x168, 1, 8);
    CU_ASSERT_EQUAL(hpet_read(f.h, 0x400, 4), 0);
    CU_ASSERT_EQUAL(hpet_read(f.h, 0x3, 4), 0); /* misaligned */
    hpet_write(f.h, 0xfffffff8ull, 1, 8);
    /* A route outside the capability mask raises nothing. */
    hpet_write(f.h, TN_CONF(2), TN_INT_ENB | TN_ROUTE(3), 4);
    hpet_write(f.h, TN_CMP(2), 10, 8);
    hpet_write(f.h, REG_CONF, 1, 4);
    timerq_advance(f.q, 1000);
    for (int i = 0; i < 32; i++) {
        CU_ASSERT_EQUAL(f.r.rises[i], 0);
    }
    CU_ASSERT_EQUAL(f.r.bad, 0);
    /* Periodic with period 0 is not a storm. */
    hpet_write(f.h, TN_CONF(1), TN_INT_ENB | TN_PERIODIC | TN_ROUTE(23), 4);
    hpet_write(f.h, TN_CMP(1), 0, 8);
    timerq_advance(f.q, 1000000);
    CU_ASSERT(f.r.rises[23] <= 1);
    fx_fini(&f);
}

static void test_save_load(void)
{
    struct fixture a, b;
    fx_init(&a);
    fx_init(&b);
    hpet_write(a.h, TN_CONF(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_ROUTE(2), 4);
    hpet_write(a.h, TN_CMP(0), 1000, 8);
    hpet_write(a.h, TN_CMP(0), 1000, 8);
    hpet_write(a.h, REG_CONF, 1, 4);
    timerq_advance(a.q, 4000);
    GByteArray *buf = g_byte_array_new();
    CU_ASSERT_EQUAL(hpet_device_ops.save(a.h, buf), 0);
    timerq_advance(b.q, 123456);
    CU_ASSERT_EQUAL(hpet_device_ops.load(b.h, buf->data, buf->len), 0);
    CU_ASSERT_EQUAL(hpet_read(b.h, REG_COUNTER, 8), 400);
    timerq_advance(b.q, 6000);
    CU_ASSERT_EQUAL(b.r.rises[2], 1);
    CU_ASSERT_EQUAL(hpet_device_ops.load(b.h, buf->data, 7), -EINVAL);
    g_byte_array_free(buf, TRUE);
    fx_fini(&a);
    fx_fini(&b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("hpet", NULL, NULL);
    CU_add_test(s, "capabilities", test_capabilities);
    CU_add_test(s, "counter at 100 MHz", test_counter_100mhz);
    CU_add_test(s, "comparator fires", test_comparator_fires);
    CU_add_test(s, "periodic reload", test_periodic_reload);
    CU_add_test(s, "legacy replacement route", test_legacy_route);
    CU_add_test(s, "level status write-1-to-clear", test_level_status_w1c);
    CU_add_test(s, "32-bit mode", test_32bit_mode);
    CU_add_test(s, "hostile offsets and routes", test_hostile);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
