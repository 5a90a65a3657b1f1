/* Unit tests for devices/pc/lapic on a deterministic timer queue: priority (TPR,
 * PPR, ISR), EOI callback for level vectors, timer modes, ICR IPIs, x2APIC, LINT0
 * virtual wire to the PIC, INIT/SIPI, NMI, errors, save/load. */
#include "devices/pc/lapic.h"

#include <CUnit/Basic.h>
#include <errno.h>

#include "hostdrv/accel.h"

struct cb_rec {
    int kicks;          /* kick() calls */
    int eois;           /* eoi() calls */
    uint8_t eoi_vector; /* last eoi() vector */
    int ipis;           /* send_ipi() calls */
    uint32_t ipi_dest;  /* last send_ipi() arguments */
    uint8_t ipi_shorthand;
    bool ipi_logical;
    uint8_t ipi_mode;
    uint8_t ipi_vector;
    bool ipi_level;
    bool pic_pending; /* what extint_pending() answers */
    int pic_acks;     /* extint_ack() calls */
};

static void rec_kick(void *o)
{
    ((struct cb_rec *)o)->kicks++;
}

static void rec_eoi(void *o, uint8_t vector)
{
    struct cb_rec *r = o;
    r->eois++;
    r->eoi_vector = vector;
}

static void rec_ipi(void *o, uint32_t dest, uint8_t shorthand, bool dest_logical,
                    uint8_t delivery_mode, uint8_t vector, bool level)
{
    struct cb_rec *r = o;
    r->ipis++;
    r->ipi_dest = dest;
    r->ipi_shorthand = shorthand;
    r->ipi_logical = dest_logical;
    r->ipi_mode = delivery_mode;
    r->ipi_vector = vector;
    r->ipi_level = level;
}

static bool rec_extint_pending(void *o)
{
    return ((struct cb_rec *)o)->pic_pending;
}

static int rec_extint_ack(void *o)
{
    struct cb_rec *r = o;
    r->pic_acks++;
    r->pic_pending = false;
    return 0x30;
}

struct fixture {
    struct timerq *q;
    struct lapic *l;
    struct cb_rec r;
};

static void fx_init(struct fixture *f, uint32_t id, bool bsp)
{
    f->q = timerq_new(true);
    f->r = (struct cb_rec){0};
    struct lapic_callbacks cb = {
        .opaque = &f->r,
        .kick = rec_kick,
        .eoi = rec_eoi,
        .send_ipi = rec_ipi,
        .extint_pending = rec_extint_pending,
        .extint_ack = rec_extint_ack,
    };
    f->l = lapic_new(f->q, id, bsp, 1000000000ull, &cb);
}

static void fx_enable(struct fixture *f)
{
    lapic_write(f->l, LAPIC_REG_SVR, 0x1ff);
}

static void fx_fini(struct fixture *f)
{
    lapic_free(f->l);
    timerq_free(f->q);
}

static void test_reset_values(void)
{
    struct fixture f;
    fx_init(&f, 3, true);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_VERSION), 0x00050014u);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ID), 3u << 24);
    CU_ASSERT_EQUAL(lapic_get_base(f.l), 0xfee00000ull | LAPIC_BASE_EN | LAPIC_BASE_BSP);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_SVR), 0xff);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_DFR), 0xffffffffu);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_LVT_TIMER), 0x10000u);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_LVT_LINT0), 0x700u); /* BSP virtual wire */
    /* Software-disabled: fixed interrupts are not accepted. */
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x40, false);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_IRR + 0x20), 0);
    fx_fini(&f);
}

static void test_tpr_masks_lower_classes(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_TPR, 0x50);
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x45, false);
    CU_ASSERT_TRUE(f.r.kicks > 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_IRR + 0x20), 1u << 5);
    CU_ASSERT_FALSE(lapic_has_intr(f.l)); /* class 4 <= TPR class 5 */
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x71, false);
    CU_ASSERT_TRUE(lapic_has_intr(f.l));
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x71);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ISR + 0x30), 1u << 17);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_PPR), 0x70);
    lapic_write(f.l, LAPIC_REG_TPR, 0x00);
    CU_ASSERT_FALSE(lapic_has_intr(f.l)); /* 0x45 below the in-service 0x71 */
    lapic_write(f.l, LAPIC_REG_EOI, 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_PPR), 0x00);
    CU_ASSERT_EQUAL(f.r.eois, 0); /* edge vector: no IOAPIC EOI */
    CU_ASSERT_TRUE(lapic_has_intr(f.l));
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x45);
    CU_ASSERT_EQUAL(lapic_ack(f.l), -1);
    fx_fini(&f);
}

static void test_level_eoi_callback(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x61, true);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TMR + 0x30), 1u << 1);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x61);
    lapic_write(f.l, LAPIC_REG_EOI, 0);
    CU_ASSERT_EQUAL(f.r.eois, 1);
    CU_ASSERT_EQUAL(f.r.eoi_vector, 0x61);
    fx_fini(&f);
}

static void test_timer_periodic(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_TIMER_DCR, 0xb); /* divide by 1 */
    lapic_write(f.l, LAPIC_REG_LVT_TIMER, (1u << 17) | 0xef);
    lapic_write(f.l, LAPIC_REG_TIMER_ICR, 1000000); /* 1 ms at the 1 GHz bus clock */
    timerq_advance(f.q, 250000);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TIMER_CCR), 750000);
    timerq_advance(f.q, 500000);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TIMER_CCR), 250000);
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    int fired = 0;
    for (int i = 0; i < 10; i++) {
        timerq_advance(f.q, i == 0 ? 250000 : 1000000);
        if (lapic_has_intr(f.l) && lapic_ack(f.l) == 0xef) {
            fired++;
            lapic_write(f.l, LAPIC_REG_EOI, 0);
        }
        CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TIMER_CCR), 1000000);
    }
    CU_ASSERT_EQUAL(fired, 10);
    fx_fini(&f);
}

static void test_timer_oneshot_divider(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_TIMER_DCR, 0x3); /* divide by 16 */
    lapic_write(f.l, LAPIC_REG_LVT_TIMER, 0xd0);
    lapic_write(f.l, LAPIC_REG_TIMER_ICR, 1000);
    timerq_advance(f.q, 16 * 400);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TIMER_CCR), 600);
    timerq_advance(f.q, 16 * 600 - 1);
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    timerq_advance(f.q, 1);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0xd0);
    lapic_write(f.l, LAPIC_REG_EOI, 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TIMER_CCR), 0);
    timerq_advance(f.q, 1000000);
    CU_ASSERT_FALSE(lapic_has_intr(f.l)); /* one shot */
    /* A masked timer counts but does not interrupt. */
    lapic_write(f.l, LAPIC_REG_LVT_TIMER, 0x100d0);
    lapic_write(f.l, LAPIC_REG_TIMER_ICR, 10);
    timerq_advance(f.q, 1000);
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    fx_fini(&f);
}

static void test_timer_tsc_deadline(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_LVT_TIMER, (2u << 17) | 0xec);
    lapic_write(f.l, LAPIC_REG_TIMER_ICR, 5); /* ignored in TSC-deadline mode */
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TIMER_ICR), 0);
    lapic_set_tsc_deadline(f.l, 5000); /* 1 GHz TSC: 5 us */
    CU_ASSERT_EQUAL(lapic_get_tsc_deadline(f.l), 5000);
    timerq_advance(f.q, 4999);
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    timerq_advance(f.q, 1);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0xec);
    CU_ASSERT_EQUAL(lapic_get_tsc_deadline(f.l), 0);
    lapic_write(f.l, LAPIC_REG_EOI, 0);
    /* A deadline in the past fires at once. */
    lapic_set_tsc_deadline(f.l, 10);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0xec);
    fx_fini(&f);
}

static void test_icr_ipi(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_ICR_HI, 0x03000000);
    lapic_write(f.l, LAPIC_REG_ICR_LO, 0x0840); /* fixed, logical, vector 0x40 */
    CU_ASSERT_EQUAL(f.r.ipis, 1);
    CU_ASSERT_EQUAL(f.r.ipi_dest, 3);
    CU_ASSERT_EQUAL(f.r.ipi_shorthand, LAPIC_SH_NONE);
    CU_ASSERT_TRUE(f.r.ipi_logical);
    CU_ASSERT_EQUAL(f.r.ipi_mode, LAPIC_DM_FIXED);
    CU_ASSERT_EQUAL(f.r.ipi_vector, 0x40);
    CU_ASSERT_FALSE(f.r.ipi_level);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ICR_LO) & (1u << 12), 0); /* idle */

    lapic_write(f.l, LAPIC_REG_ICR_LO, 0x000cc500); /* INIT level assert, all excluding self */
    CU_ASSERT_EQUAL(f.r.ipis, 2);
    CU_ASSERT_EQUAL(f.r.ipi_shorthand, LAPIC_SH_OTHERS);
    CU_ASSERT_EQUAL(f.r.ipi_mode, LAPIC_DM_INIT);
    CU_ASSERT_TRUE(f.r.ipi_level);
    lapic_write(f.l, LAPIC_REG_ICR_LO, 0x000c8500); /* INIT de-assert: dropped */
    CU_ASSERT_EQUAL(f.r.ipis, 2);
    lapic_write(f.l, LAPIC_REG_ICR_LO, 0x000c069a); /* SIPI vector 0x9a */
    CU_ASSERT_EQUAL(f.r.ipis, 3);
    CU_ASSERT_EQUAL(f.r.ipi_mode, LAPIC_DM_SIPI);
    CU_ASSERT_EQUAL(f.r.ipi_vector, 0x9a);

    lapic_write(f.l, LAPIC_REG_ICR_LO, 0x00040055); /* self shorthand: handled inside */
    CU_ASSERT_EQUAL(f.r.ipis, 3);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x55);

    lapic_write(f.l, LAPIC_REG_ICR_LO, 0x0000000e); /* illegal vector */
    CU_ASSERT_EQUAL(f.r.ipis, 3);
    lapic_write(f.l, LAPIC_REG_ESR, 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ESR), 1u << 5);
    lapic_write(f.l, LAPIC_REG_ESR, 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ESR), 0);
    fx_fini(&f);
}

static void test_x2apic(void)
{
    struct fixture f;
    fx_init(&f, 0x25, true);
    fx_enable(&f);
    uint64_t base = lapic_get_base(f.l);
    CU_ASSERT_EQUAL(lapic_set_base(f.l, base | LAPIC_BASE_EXTD), 0);
    CU_ASSERT_TRUE(lapic_is_x2apic(f.l));
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ID), 0x25);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_LDR), (2u << 16) | (1u << 5));
    lapic_write(f.l, LAPIC_REG_ID, 0x77000000); /* read-only in x2APIC mode */
    CU_ASSERT_EQUAL(lapic_get_id(f.l), 0x25);
    lapic_write_icr64(f.l, (0x12345ull << 32) | 0x30);
    CU_ASSERT_EQUAL(f.r.ipis, 1);
    CU_ASSERT_EQUAL(f.r.ipi_dest, 0x12345);
    CU_ASSERT_EQUAL(f.r.ipi_vector, 0x30);
    lapic_write(f.l, LAPIC_REG_SELF_IPI, 0x66);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x66);
    CU_ASSERT_TRUE(lapic_match_dest(f.l, 0x25, false));
    CU_ASSERT_FALSE(lapic_match_dest(f.l, 0x26, false));
    CU_ASSERT_TRUE(lapic_match_dest(f.l, (2u << 16) | 0x20, true));
    CU_ASSERT_FALSE(lapic_match_dest(f.l, (3u << 16) | 0x20, true));
    CU_ASSERT_TRUE(lapic_match_dest(f.l, 0xffffffffu, false));
    /* x2APIC -> xAPIC directly is illegal; through disabled it is fine. */
    CU_ASSERT_EQUAL(lapic_set_base(f.l, base), -EINVAL);
    CU_ASSERT_EQUAL(lapic_set_base(f.l, base & ~LAPIC_BASE_EN), 0);
    CU_ASSERT_EQUAL(lapic_set_base(f.l, base), 0);
    CU_ASSERT_FALSE(lapic_is_x2apic(f.l));
    CU_ASSERT_EQUAL(lapic_set_base(f.l, (base & ~LAPIC_BASE_EN) | LAPIC_BASE_EXTD), -EINVAL);
    CU_ASSERT_EQUAL(lapic_set_base(f.l, base | 1), -EINVAL);
    fx_fini(&f);
}

static void test_xapic_logical_dest(void)
{
    struct fixture f;
    fx_init(&f, 1, true);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_LDR, 0x02000000);
    CU_ASSERT_TRUE(lapic_match_dest(f.l, 0x03, true)); /* flat: bitmap */
    CU_ASSERT_FALSE(lapic_match_dest(f.l, 0x05, true));
    CU_ASSERT_TRUE(lapic_match_dest(f.l, 0x01, false));
    CU_ASSERT_TRUE(lapic_match_dest(f.l, 0xff, false));
    lapic_write(f.l, LAPIC_REG_DFR, 0x0fffffff); /* cluster model */
    lapic_write(f.l, LAPIC_REG_LDR, 0x32000000); /* cluster 3, member bit 1 */
    CU_ASSERT_TRUE(lapic_match_dest(f.l, 0x36, true));
    CU_ASSERT_FALSE(lapic_match_dest(f.l, 0x26, true));
    fx_fini(&f);
}

static void test_lint0_virtual_wire(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    /* From reset the BSP's LINT0 passes the PIC through. */
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    f.r.pic_pending = true;
    lapic_set_lint(f.l, 0, 1);
    CU_ASSERT_TRUE(f.r.kicks > 0);
    CU_ASSERT_TRUE(lapic_has_intr(f.l));
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x30);
    CU_ASSERT_EQUAL(f.r.pic_acks, 1);
    /* Masked LINT0 with the APIC enabled: the PIC is cut off. */
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_LVT_LINT0, 0x10700);
    f.r.pic_pending = true;
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    /* Globally disabled APIC: LINT0 is the INTR pin again. */
    CU_ASSERT_EQUAL(lapic_set_base(f.l, 0xfee00000ull | LAPIC_BASE_BSP), 0);
    CU_ASSERT_TRUE(lapic_has_intr(f.l));
    /* An APIC interrupt outranks the PIC. */
    CU_ASSERT_EQUAL(lapic_set_base(f.l, 0xfee00000ull | LAPIC_BASE_BSP | LAPIC_BASE_EN), 0);
    fx_enable(&f);
    lapic_write(f.l, LAPIC_REG_LVT_LINT0, 0x700);
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x80, false);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x80);
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x30);
    /* ExtINT message from the IOAPIC. */
    lapic_write(f.l, LAPIC_REG_LVT_LINT0, 0x10700);
    f.r.pic_pending = true;
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    lapic_deliver(f.l, LAPIC_DM_EXTINT, 0, false);
    CU_ASSERT_TRUE(lapic_has_intr(f.l));
    CU_ASSERT_EQUAL(lapic_ack(f.l), 0x30);
    fx_fini(&f);
}

static void test_init_sipi(void)
{
    struct fixture f;
    fx_init(&f, 1, false);
    uint8_t v = 0;
    CU_ASSERT_TRUE(lapic_wait_for_sipi(f.l, &v));
    lapic_deliver(f.l, LAPIC_DM_SIPI, 0x10, false); /* before INIT: ignored */
    CU_ASSERT_TRUE(lapic_wait_for_sipi(f.l, &v));
    lapic_deliver(f.l, LAPIC_DM_INIT, 0, false);
    CU_ASSERT_TRUE(lapic_wait_for_sipi(f.l, &v));
    int kicks = f.r.kicks;
    lapic_deliver(f.l, LAPIC_DM_SIPI, 0x9a, false);
    CU_ASSERT_TRUE(f.r.kicks > kicks);
    CU_ASSERT_FALSE(lapic_wait_for_sipi(f.l, &v));
    CU_ASSERT_EQUAL(v, 0x9a);
    lapic_deliver(f.l, LAPIC_DM_SIPI, 0x11, false); /* second SIPI while running */
    v = 0;
    CU_ASSERT_FALSE(lapic_wait_for_sipi(f.l, &v));
    CU_ASSERT_EQUAL(v, 0);
    fx_fini(&f);
}

static void test_nmi(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    CU_ASSERT_FALSE(lapic_nmi_pending(f.l));
    lapic_deliver(f.l, LAPIC_DM_NMI, 0, false);
    CU_ASSERT_TRUE(lapic_nmi_pending(f.l));
    lapic_nmi_ack(f.l);
    CU_ASSERT_FALSE(lapic_nmi_pending(f.l));
    lapic_write(f.l, LAPIC_REG_LVT_LINT1, 0x400); /* LINT1 as NMI */
    lapic_set_lint(f.l, 1, 1);
    CU_ASSERT_TRUE(lapic_nmi_pending(f.l));
    fx_fini(&f);
}

static void test_hostile(void)
{
    struct fixture f;
    fx_init(&f, 0, true);
    fx_enable(&f);
    CU_ASSERT_EQUAL(lapic_read(f.l, 0x21), 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, 0x1000), 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, 0xfffffff0u), 0);
    lapic_write(f.l, 0xfffffff0u, 1);
    lapic_write(f.l, LAPIC_REG_IRR, 0xffffffff); /* read-only */
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_IRR), 0);
    lapic_set_lint(f.l, 2, 1);
    lapic_set_lint(f.l, -1, 1);
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x05, false); /* illegal vector */
    CU_ASSERT_FALSE(lapic_has_intr(f.l));
    lapic_write(f.l, LAPIC_REG_ESR, 0);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_ESR), 1u << 6);
    /* Periodic timer at one bus clock: coalesced, no callback storm. */
    lapic_write(f.l, LAPIC_REG_TIMER_DCR, 0xb);
    lapic_write(f.l, LAPIC_REG_LVT_TIMER, (1u << 17) | 0xef);
    lapic_write(f.l, LAPIC_REG_TIMER_ICR, 1);
    timerq_advance(f.q, 10000000);
    CU_ASSERT_TRUE(lapic_has_intr(f.l));
    fx_fini(&f);
}

static void test_intc_and_mmio(void)
{
    struct fixture f;
    fx_init(&f, 4, true);
    struct accel_intc intc;
    lapic_fill_intc(f.l, &intc);
    CU_ASSERT_PTR_EQUAL(intc.opaque, f.l);
    intc.apic_write(intc.opaque, LAPIC_REG_SVR, 0x1ff);
    CU_ASSERT_EQUAL(intc.apic_read(intc.opaque, LAPIC_REG_SVR), 0x1ff);
    lapic_deliver(f.l, LAPIC_DM_FIXED, 0x90, false);
    CU_ASSERT_TRUE(intc.intr_pending(intc.opaque));
    CU_ASSERT_EQUAL(intc.intr_ack(intc.opaque), 0x90);
    CU_ASSERT_EQUAL(lapic_bus_ops.read(f.l, LAPIC_REG_ID, 4), 4u << 24);
    CU_ASSERT_EQUAL(lapic_bus_ops.read(f.l, LAPIC_REG_ID + 3, 1), 4u);
    lapic_bus_ops.write(f.l, LAPIC_REG_TPR, 0x20, 4);
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TPR), 0x20);
    lapic_bus_ops.write(f.l, LAPIC_REG_TPR, 0x30, 1); /* non-dword write ignored */
    CU_ASSERT_EQUAL(lapic_read(f.l, LAPIC_REG_TPR), 0x20);
    fx_fini(&f);
}

static void test_save_load(void)
{
    struct fixture a, b;
    fx_init(&a, 2, true);
    fx_init(&b, 2, true);
    fx_enable(&a);
    lapic_write(a.l, LAPIC_REG_TPR, 0x20);
    lapic_deliver(a.l, LAPIC_DM_FIXED, 0x55, true);
    lapic_write(a.l, LAPIC_REG_TIMER_DCR, 0xb);
    lapic_write(a.l, LAPIC_REG_LVT_TIMER, 0xe0);
    lapic_write(a.l, LAPIC_REG_TIMER_ICR, 100000);
    timerq_advance(a.q, 40000);
    GByteArray *buf = g_byte_array_new();
    CU_ASSERT_EQUAL(lapic_device_ops.save(a.l, buf), 0);
    timerq_advance(b.q, 777777);
    CU_ASSERT_EQUAL(lapic_device_ops.load(b.l, buf->data, buf->len), 0);
    CU_ASSERT_EQUAL(lapic_read(b.l, LAPIC_REG_TPR), 0x20);
    CU_ASSERT_EQUAL(lapic_read(b.l, LAPIC_REG_TIMER_CCR), 60000);
    CU_ASSERT_EQUAL(lapic_ack(b.l), 0x55);
    timerq_advance(b.q, 60000);
    CU_ASSERT_EQUAL(lapic_read(b.l, LAPIC_REG_IRR + 0x70), 1u << 0); /* 0xe0 fired */
    CU_ASSERT_EQUAL(lapic_device_ops.load(b.l, buf->data, buf->len - 1), -EINVAL);
    g_byte_array_free(buf, TRUE);
    fx_fini(&a);
    fx_fini(&b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("lapic", NULL, NULL);
    CU_add_test(s, "reset values", test_reset_values);
    CU_add_test(s, "TPR masks lower classes", test_tpr_masks_lower_classes);
    CU_add_test(s, "level EOI callback", test_level_eoi_callback);
    CU_add_test(s, "timer periodic", test_timer_periodic);
    CU_add_test(s, "timer one-shot with divider", test_timer_oneshot_divider);
    CU_add_test(s, "timer TSC deadline", test_timer_tsc_deadline);
    CU_add_test(s, "ICR IPIs", test_icr_ipi);
    CU_add_test(s, "x2APIC", test_x2apic);
    CU_add_test(s, "xAPIC logical destinations", test_xapic_logical_dest);
    CU_add_test(s, "LINT0 virtual wire", test_lint0_virtual_wire);
    CU_add_test(s, "INIT and SIPI", test_init_sipi);
    CU_add_test(s, "NMI", test_nmi);
    CU_add_test(s, "hostile inputs", test_hostile);
    CU_add_test(s, "accel_intc and MMIO adapters", test_intc_and_mmio);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
