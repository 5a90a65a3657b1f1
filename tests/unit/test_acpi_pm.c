/* Unit tests for devices/pc/acpi_pm: PM1 event/control, PM timer, GPE0, SCI, and
 * the 0xCF9 reset control register. */
#include "devices/pc/acpi_pm.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>
#include <time.h>

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
    struct mock_irq sci;
    int poweroffs; /* poweroff callback calls */
    struct acpi_pm *pm;
};

static void cb_poweroff(void *opaque)
{
    ((struct rig *)opaque)->poweroffs++;
}

static void rig_init(struct rig *r, bool with_tq)
{
    memset(r, 0, sizeof(*r));
    r->tq = with_tq ? timerq_new(true) : NULL;
    struct irq_line sci = {.set = mock_irq_set, .opaque = &r->sci, .line = ACPI_PM_SCI_IRQ};
    struct acpi_pm_callbacks cb = {.opaque = r, .poweroff = cb_poweroff};
    r->pm = acpi_pm_new(&sci, r->tq, &cb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->pm);
}

static void rig_fini(struct rig *r)
{
    acpi_pm_free(r->pm);
    timerq_free(r->tq);
}

static void test_s5_poweroff(void)
{
    struct rig r;
    rig_init(&r, true);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, ACPI_PM1_CNT_OFF, 2), ACPI_PM1_CNT_SCI_EN);
    /* SLP_TYP = S5 without SLP_EN: nothing yet, but SLP_TYP is kept. */
    acpi_pm_write(r.pm, ACPI_PM1_CNT_OFF, ACPI_PM1_CNT_SCI_EN | (ACPI_PM_S5_TYP << 10), 2);
    CU_ASSERT_EQUAL(r.poweroffs, 0);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, ACPI_PM1_CNT_OFF, 2), 0x1401);
    /* S0 with SLP_EN: not a power-off. */
    acpi_pm_write(r.pm, ACPI_PM1_CNT_OFF, 0x0001 | ACPI_PM1_CNT_SLP_EN, 2);
    CU_ASSERT_EQUAL(r.poweroffs, 0);
    acpi_pm_write(r.pm, ACPI_PM1_CNT_OFF, 0x0001 | (ACPI_PM_S5_TYP << 10) | ACPI_PM1_CNT_SLP_EN, 2);
    CU_ASSERT_EQUAL(r.poweroffs, 1);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, ACPI_PM1_CNT_OFF, 2) & ACPI_PM1_CNT_SLP_EN, 0);
    /* The same through a byte write of the high half. */
    acpi_pm_write(r.pm, ACPI_PM1_CNT_OFF + 1, (ACPI_PM_S5_TYP << 2) | 0x20, 1);
    CU_ASSERT_EQUAL(r.poweroffs, 2);
    rig_fini(&r);
}

static void test_sci_follows_status_and_enable(void)
{
    struct rig r;
    rig_init(&r, true);
    acpi_pm_power_button(r.pm);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 0, 2) & ACPI_PM1_PWRBTN, ACPI_PM1_PWRBTN);
    CU_ASSERT_EQUAL(r.sci.level, 0); /* not enabled */
    acpi_pm_write(r.pm, 2, ACPI_PM1_PWRBTN, 2);
    CU_ASSERT_EQUAL(r.sci.level, 1);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 2, 2), ACPI_PM1_PWRBTN);
    acpi_pm_write(r.pm, 0, 0x0000, 2); /* writing 0 clears nothing */
    CU_ASSERT_EQUAL(r.sci.level, 1);
    acpi_pm_write(r.pm, 0, ACPI_PM1_PWRBTN, 2); /* write 1 to clear */
    CU_ASSERT_EQUAL(r.sci.level, 0);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 0, 2) & ACPI_PM1_PWRBTN, 0);
    /* One dword access covers status and enable. */
    acpi_pm_power_button(r.pm);
    CU_ASSERT_EQUAL(r.sci.level, 1);
    acpi_pm_write(r.pm, 0, (uint32_t)ACPI_PM1_PWRBTN | 0u << 16, 4); /* clear + disable */
    CU_ASSERT_EQUAL(r.sci.level, 0);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 2, 2), 0);
    /* GPE0 block. */
    CU_ASSERT_EQUAL(acpi_pm_gpe_raise(r.pm, 3), 0);
    CU_ASSERT_EQUAL(acpi_pm_gpe_raise(r.pm, 16), -EINVAL);
    CU_ASSERT_EQUAL(r.sci.level, 0);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, ACPI_GPE0_OFF, 1), 0x08);
    acpi_pm_write(r.pm, ACPI_GPE0_OFF + 2, 0x08, 1);
    CU_ASSERT_EQUAL(r.sci.level, 1);
    acpi_pm_write(r.pm, ACPI_GPE0_OFF, 0x08, 1);
    CU_ASSERT_EQUAL(r.sci.level, 0);
    CU_ASSERT_EQUAL(r.sci.rises, 3);
    rig_fini(&r);
}

static uint32_t pm_tmr(struct rig *r)
{
    return (uint32_t)acpi_pm_read(r->pm, ACPI_PM_TMR_OFF, 4);
}

static void test_pm_timer_rate(void)
{
    struct rig r;
    rig_init(&r, true);
    uint32_t t0 = pm_tmr(&r);
    timerq_advance(r.tq, 1000000); /* 1 ms */
    uint32_t t1 = pm_tmr(&r);
    uint32_t d = (t1 - t0) & 0xffffff;
    CU_ASSERT_TRUE(d >= 3579 && d <= 3580);
    timerq_advance(r.tq, 1000000000ull); /* 1 s */
    d = (pm_tmr(&r) - t1) & 0xffffff;
    CU_ASSERT_TRUE(d >= 3579544 && d <= 3579546);
    CU_ASSERT_EQUAL(pm_tmr(&r) >> 24, 0); /* 24-bit counter */
    /* TMR_STS: set when bit 23 toggles, cleared by writing 1. */
    acpi_pm_write(r.pm, 0, ACPI_PM1_TMR, 2);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 0, 2) & ACPI_PM1_TMR, 0);
    timerq_advance(r.tq, 2400000000ull); /* > 2^23 ticks */
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 0, 2) & ACPI_PM1_TMR, ACPI_PM1_TMR);
    rig_fini(&r);
}

static void test_pm_timer_host_clock(void)
{
    struct rig r;
    rig_init(&r, false);
    uint32_t t0 = pm_tmr(&r);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
    nanosleep(&ts, NULL);
    uint32_t d = (pm_tmr(&r) - t0) & 0xffffff;
    CU_ASSERT_TRUE(d >= 35795 && d < 3579545); /* at least 10 ms, under 1 s */
    rig_fini(&r);
}

static void test_bounds(void)
{
    struct rig r;
    rig_init(&r, true);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, ACPI_PM_IO_LEN - 1, 4), ~0ull);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 0x1000, 1), ~0ull);
    acpi_pm_write(r.pm, ACPI_PM_IO_LEN, 0xff, 1);
    acpi_pm_write(r.pm, ACPI_PM_TMR_OFF, 0xffffffff, 4); /* read-only */
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, ACPI_PM_TMR_OFF, 4), 0);
    CU_ASSERT_EQUAL(acpi_pm_read(r.pm, 0x30, 1), 0);
    rig_fini(&r);
}

static void test_save_load(void)
{
    struct rig a, b;
    rig_init(&a, true);
    rig_init(&b, true);
    acpi_pm_write(a.pm, 2, ACPI_PM1_PWRBTN, 2);
    acpi_pm_power_button(a.pm);
    acpi_pm_write(a.pm, ACPI_GPE0_OFF + 2, 0x0102, 2);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(acpi_pm_device_ops.save(a.pm, out), 0);
    CU_ASSERT_EQUAL(acpi_pm_device_ops.load(b.pm, out->data, out->len - 1), -EINVAL);
    CU_ASSERT_EQUAL(b.sci.level, 0);
    CU_ASSERT_EQUAL(acpi_pm_device_ops.load(b.pm, out->data, out->len), 0);
    CU_ASSERT_EQUAL(b.sci.level, 1);
    CU_ASSERT_EQUAL(acpi_pm_read(b.pm, ACPI_GPE0_OFF + 2, 2), 0x0102);
    acpi_pm_device_ops.reset(b.pm);
    CU_ASSERT_EQUAL(b.sci.level, 0);
    CU_ASSERT_EQUAL(acpi_pm_read(b.pm, 0, 4), 0);
    g_byte_array_free(out, TRUE);
    rig_fini(&a);
    rig_fini(&b);
}

static void cb_reset(void *opaque)
{
    (*(int *)opaque)++;
}

static void test_reset_ctl(void)
{
    int resets = 0;
    struct reset_ctl *rc = reset_ctl_new(cb_reset, &resets);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    reset_ctl_write(rc, 0, 0x02, 1); /* select hard reset, not yet */
    CU_ASSERT_EQUAL(resets, 0);
    CU_ASSERT_EQUAL(reset_ctl_read(rc, 0, 1), 0x02);
    reset_ctl_write(rc, 0, 0x06, 1);
    CU_ASSERT_EQUAL(resets, 1);
    reset_ctl_write(rc, 0, 0x0e, 1);
    CU_ASSERT_EQUAL(resets, 2);
    CU_ASSERT_EQUAL(reset_ctl_read(rc, 0, 1), 0x0a); /* RST_CPU self-clears */
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(reset_ctl_device_ops.save(rc, out), 0);
    reset_ctl_device_ops.reset(rc);
    CU_ASSERT_EQUAL(reset_ctl_read(rc, 0, 1), 0x00);
    CU_ASSERT_EQUAL(reset_ctl_device_ops.load(rc, out->data, out->len), 0);
    CU_ASSERT_EQUAL(reset_ctl_read(rc, 0, 1), 0x0a);
    CU_ASSERT_EQUAL(resets, 2);
    g_byte_array_free(out, TRUE);
    reset_ctl_free(rc);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("acpi_pm", NULL, NULL);
    CU_add_test(s, "S5 calls poweroff", test_s5_poweroff);
    CU_add_test(s, "SCI follows status & enable", test_sci_follows_status_and_enable);
    CU_add_test(s, "PM timer rate", test_pm_timer_rate);
    CU_add_test(s, "PM timer on host clock", test_pm_timer_host_clock);
    CU_add_test(s, "bounds", test_bounds);
    CU_add_test(s, "save/load round trip", test_save_load);
    CU_add_test(s, "reset control 0xCF9", test_reset_ctl);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
