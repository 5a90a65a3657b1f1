/* Unit tests for devices/pc/pic8259: init sequence, priority, EOI, cascade, ELCR
 * level/edge, spurious IRQ 7/15, poll, auto-EOI and state save/load. */
#include "devices/pc/pic8259.h"

#include <CUnit/Basic.h>
#include <errno.h>

struct intr_rec {
    int changes; /* intr_changed calls */
    bool level;  /* last reported level */
};

static void rec_intr(void *opaque, bool level)
{
    struct intr_rec *r = opaque;
    r->changes++;
    r->level = level;
}

/* ICW1-4 as Linux's init_8259A does it, with vector bases 0x20 and 0x28. */
static void pic_init_std(struct pic *p, uint8_t icw4)
{
    pic_write(p, 0x20, 0x11, 1);
    pic_write(p, 0x21, 0x20, 1);
    pic_write(p, 0x21, 0x04, 1);
    pic_write(p, 0x21, icw4, 1);
    pic_write(p, 0xa0, 0x11, 1);
    pic_write(p, 0xa1, 0x28, 1);
    pic_write(p, 0xa1, 0x02, 1);
    pic_write(p, 0xa1, icw4, 1);
    pic_write(p, 0x21, 0x00, 1);
    pic_write(p, 0xa1, 0x00, 1);
}

static uint8_t read_isr(struct pic *p, uint16_t cmd_port)
{
    pic_write(p, cmd_port, 0x0b, 1); /* OCW3: read ISR */
    return pic_read(p, cmd_port, 1);
}

static uint8_t read_irr(struct pic *p, uint16_t cmd_port)
{
    pic_write(p, cmd_port, 0x0a, 1); /* OCW3: read IRR */
    return pic_read(p, cmd_port, 1);
}

static void test_init_priority_eoi(void)
{
    struct intr_rec rec = {0};
    struct pic *p = pic_new(rec_intr, &rec);
    pic_init_std(p, 0x01);
    CU_ASSERT_EQUAL(pic_read(p, 0x21, 1), 0x00);
    CU_ASSERT_FALSE(pic_has_intr(p));

    pic_set_irq(p, 3, 1);
    CU_ASSERT_TRUE(rec.level);
    pic_set_irq(p, 1, 1);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_ack(p), 0x21); /* IRQ 1 outranks IRQ 3 */
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x02);
    CU_ASSERT_EQUAL(read_irr(p, 0x20), 0x08);
    CU_ASSERT_FALSE(pic_has_intr(p)); /* IRQ 3 waits for the EOI of IRQ 1 */
    CU_ASSERT_FALSE(rec.level);

    pic_write(p, 0x20, 0x20, 1); /* non-specific EOI */
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x00);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_TRUE(rec.level);
    CU_ASSERT_EQUAL(pic_ack(p), 0x23);
    pic_write(p, 0x20, 0x63, 1); /* specific EOI for IR3 */
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x00);
    CU_ASSERT_FALSE(pic_has_intr(p));
    pic_free(p);
}

static void test_higher_priority_nests(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x01);
    pic_set_irq(p, 4, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x24);
    pic_set_irq(p, 0, 1);
    CU_ASSERT_TRUE(pic_has_intr(p)); /* IRQ 0 interrupts the IRQ 4 handler */
    CU_ASSERT_EQUAL(pic_ack(p), 0x20);
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x11);
    pic_write(p, 0x20, 0x20, 1); /* non-specific EOI clears the highest: IR0 */
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x10);
    pic_free(p);
}

static void test_mask(void)
{
    struct intr_rec rec = {0};
    struct pic *p = pic_new(rec_intr, &rec);
    pic_init_std(p, 0x01);
    pic_write(p, 0x21, 0x10, 1); /* OCW1: mask IRQ 4 */
    CU_ASSERT_EQUAL(pic_read(p, 0x21, 1), 0x10);
    pic_set_irq(p, 4, 1);
    CU_ASSERT_FALSE(pic_has_intr(p));
    CU_ASSERT_EQUAL(rec.changes, 0);
    CU_ASSERT_EQUAL(read_irr(p, 0x20), 0x10); /* requested, just masked */
    pic_write(p, 0x21, 0x00, 1);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(rec.changes, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x24);
    pic_free(p);
}

static void test_cascade_needs_both_eoi(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x01);
    pic_set_irq(p, 8, 1);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_ack(p), 0x28);
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x04);
    CU_ASSERT_EQUAL(read_isr(p, 0xa0), 0x01);

    pic_set_irq(p, 8, 0);
    pic_set_irq(p, 8, 1); /* a second edge while the first is in service */
    CU_ASSERT_FALSE(pic_has_intr(p));
    pic_write(p, 0x20, 0x20, 1); /* EOI to the master only */
    CU_ASSERT_FALSE(pic_has_intr(p));
    pic_write(p, 0xa0, 0x20, 1); /* and to the slave */
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_ack(p), 0x28);

    /* A masked slave input does not reach the master. */
    pic_write(p, 0xa0, 0x20, 1);
    pic_write(p, 0x20, 0x20, 1);
    pic_write(p, 0xa1, 0x02, 1);
    pic_set_irq(p, 9, 1);
    CU_ASSERT_FALSE(pic_has_intr(p));
    pic_free(p);
}

static void test_edge_vs_level(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x01);
    /* Edge (default): a line held high after EOI does not interrupt again. */
    pic_set_irq(p, 5, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x25);
    pic_write(p, 0x20, 0x20, 1);
    CU_ASSERT_FALSE(pic_has_intr(p));
    pic_set_irq(p, 5, 0);

    /* Level via ELCR: interrupts again after EOI while the line stays high. */
    pic_write(p, 0x4d0, 0x20, 1);
    CU_ASSERT_EQUAL(pic_read(p, 0x4d0, 1), 0x20);
    pic_set_irq(p, 5, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x25);
    pic_write(p, 0x20, 0x20, 1);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_ack(p), 0x25);
    pic_write(p, 0x20, 0x20, 1);
    pic_set_irq(p, 5, 0);
    CU_ASSERT_FALSE(pic_has_intr(p));

    /* IRQ 0-2, 8 and 13 cannot be level triggered. */
    pic_write(p, 0x4d0, 0xff, 1);
    pic_write(p, 0x4d1, 0xff, 1);
    CU_ASSERT_EQUAL(pic_read(p, 0x4d0, 1), 0xf8);
    CU_ASSERT_EQUAL(pic_read(p, 0x4d1, 1), 0xde);
    pic_free(p);
}

static void test_spurious(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x01);
    /* Master: a level request that goes away before INTA gives IRQ 7, no ISR bit. */
    pic_write(p, 0x4d0, 0x20, 1);
    pic_set_irq(p, 5, 1);
    CU_ASSERT_TRUE(pic_has_intr(p));
    pic_set_irq(p, 5, 0);
    CU_ASSERT_EQUAL(pic_ack(p), 0x27);
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x00);

    /* Slave: the master latched IR2, the slave request vanished: IRQ 15, and the
     * master's IR2 is in service (Linux EOIs the master for a spurious IRQ 15). */
    pic_write(p, 0x4d1, 0x04, 1);
    pic_set_irq(p, 10, 1);
    pic_set_irq(p, 10, 0);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_ack(p), 0x2f);
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x04);
    CU_ASSERT_EQUAL(read_isr(p, 0xa0), 0x00);
    pic_free(p);
}

static void test_auto_eoi_and_poll(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x03); /* ICW4: 8086 mode + AEOI */
    pic_set_irq(p, 6, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x26);
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x00);
    pic_set_irq(p, 6, 0);
    /* Two slave requests in AEOI: the second one is not lost behind the cascade. */
    pic_set_irq(p, 8, 1);
    pic_set_irq(p, 9, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x28);
    CU_ASSERT_TRUE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_ack(p), 0x29);
    CU_ASSERT_FALSE(pic_has_intr(p));

    pic_init_std(p, 0x01);
    pic_set_irq(p, 3, 1);
    pic_write(p, 0x20, 0x0c, 1); /* OCW3 poll */
    CU_ASSERT_EQUAL(pic_read(p, 0x20, 1), 0x83);
    CU_ASSERT_EQUAL(read_isr(p, 0x20), 0x08);
    pic_write(p, 0x20, 0x0c, 1);
    CU_ASSERT_EQUAL(pic_read(p, 0x20, 1), 0x00); /* nothing pending now */
    pic_free(p);
}

static void test_rotate(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x01);
    pic_write(p, 0x20, 0xc4, 1); /* set priority: IR4 lowest, so IR5 highest */
    pic_set_irq(p, 1, 1);
    pic_set_irq(p, 6, 1);
    CU_ASSERT_EQUAL(pic_ack(p), 0x26);
    pic_free(p);
}

static void test_hostile_inputs(void)
{
    struct pic *p = pic_new(NULL, NULL);
    pic_init_std(p, 0x01);
    pic_set_irq(p, -1, 1);
    pic_set_irq(p, 16, 1);
    pic_set_irq(p, 1000, 1);
    CU_ASSERT_FALSE(pic_has_intr(p));
    CU_ASSERT_EQUAL(pic_read(p, 0x22, 1), 0xff);
    pic_write(p, 0x4d2, 0xff, 1);
    pic_free(p);
}

static void test_save_load(void)
{
    struct pic *a = pic_new(NULL, NULL);
    pic_init_std(a, 0x01);
    pic_write(a, 0x21, 0x5a, 1);
    pic_write(a, 0x4d1, 0x04, 1);
    pic_set_irq(a, 0, 1);
    CU_ASSERT_EQUAL(pic_ack(a), 0x20);
    GByteArray *buf = g_byte_array_new();
    CU_ASSERT_EQUAL(pic_device_ops.save(a, buf), 0);

    struct pic *b = pic_new(NULL, NULL);
    CU_ASSERT_EQUAL(pic_device_ops.load(b, buf->data, buf->len), 0);
    CU_ASSERT_EQUAL(pic_read(b, 0x21, 1), 0x5a);
    CU_ASSERT_EQUAL(pic_read(b, 0x4d1, 1), 0x04);
    CU_ASSERT_EQUAL(read_isr(b, 0x20), 0x01);
    pic_write(b, 0x21, 0x00, 1);
    pic_set_irq(b, 3, 1);
    CU_ASSERT_FALSE(pic_has_intr(b)); /* IR0 still in service after restore */

    /* A truncated stream is refused and leaves the device untouched. */
    struct pic *c = pic_new(NULL, NULL);
    pic_write(c, 0x4d0, 0x20, 1);
    CU_ASSERT_EQUAL(pic_device_ops.load(c, buf->data, buf->len - 3), -EINVAL);
    CU_ASSERT_EQUAL(pic_read(c, 0x4d0, 1), 0x20);
    g_byte_array_free(buf, TRUE);
    pic_free(a);
    pic_free(b);
    pic_free(c);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pic", NULL, NULL);
    CU_add_test(s, "init, priority, EOI", test_init_priority_eoi);
    CU_add_test(s, "higher priority nests", test_higher_priority_nests);
    CU_add_test(s, "mask", test_mask);
    CU_add_test(s, "cascade needs EOI on both", test_cascade_needs_both_eoi);
    CU_add_test(s, "edge vs level (ELCR)", test_edge_vs_level);
    CU_add_test(s, "spurious IRQ 7 and 15", test_spurious);
    CU_add_test(s, "auto-EOI and poll", test_auto_eoi_and_poll);
    CU_add_test(s, "rotate / set priority", test_rotate);
    CU_add_test(s, "hostile inputs", test_hostile_inputs);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
