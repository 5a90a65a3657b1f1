/* Unit tests for devices/pc/ioapic: register window, masking, edge delivery
 * arguments, level Remote IRR until EOI (callback and EOI register), hostile
 * indices, save/load. */
#include "devices/pc/ioapic.h"

#include <CUnit/Basic.h>
#include <errno.h>

struct deliver_rec {
    int count;    /* messages delivered */
    uint8_t dest; /* last message's fields */
    bool logical;
    uint8_t mode;
    uint8_t vector;
    bool level;
};

static void rec_deliver(void *opaque, uint8_t dest, bool dest_logical, uint8_t delivery_mode,
                        uint8_t vector, bool level_trigger)
{
    struct deliver_rec *r = opaque;
    r->count++;
    r->dest = dest;
    r->logical = dest_logical;
    r->mode = delivery_mode;
    r->vector = vector;
    r->level = level_trigger;
}

static uint32_t reg_read(struct ioapic *io, uint8_t reg)
{
    ioapic_write(io, 0x00, reg, 4);
    return ioapic_read(io, 0x10, 4);
}

static void reg_write(struct ioapic *io, uint8_t reg, uint32_t val)
{
    ioapic_write(io, 0x00, reg, 4);
    ioapic_write(io, 0x10, val, 4);
}

static void rte_write(struct ioapic *io, int pin, uint64_t e)
{
    reg_write(io, 0x11 + 2 * pin, e >> 32);
    reg_write(io, 0x10 + 2 * pin, (uint32_t)e);
}

static uint64_t rte_read(struct ioapic *io, int pin)
{
    return reg_read(io, 0x10 + 2 * pin) | ((uint64_t)reg_read(io, 0x11 + 2 * pin) << 32);
}

static void test_id_version(void)
{
    struct ioapic *io = ioapic_new(2, NULL, NULL);
    CU_ASSERT_EQUAL(reg_read(io, 0x00), 2u << 24);
    CU_ASSERT_EQUAL(reg_read(io, 0x01), 0x00170020u); /* 24 entries, version 0x20 */
    reg_write(io, 0x00, 0x05000000);
    CU_ASSERT_EQUAL(reg_read(io, 0x00), 5u << 24);
    CU_ASSERT_EQUAL(reg_read(io, 0x02), 5u << 24);
    reg_write(io, 0x01, 0); /* read-only */
    CU_ASSERT_EQUAL(reg_read(io, 0x01), 0x00170020u);
    CU_ASSERT_EQUAL(ioapic_read(io, 0x00, 4), 0x01); /* IOREGSEL reads back */
    /* Entries come out of reset masked. */
    for (int i = 0; i < IOAPIC_NUM_PINS; i++) {
        CU_ASSERT_TRUE(rte_read(io, i) & (1ull << 16));
    }
    ioapic_free(io);
}

static void test_masked_not_delivered(void)
{
    struct deliver_rec r = {0};
    struct ioapic *io = ioapic_new(0, rec_deliver, &r);
    rte_write(io, 4, (1ull << 16) | 0x34); /* masked, edge, vector 0x34 */
    ioapic_set_irq(io, 4, 1);
    CU_ASSERT_EQUAL(r.count, 0);
    rte_write(io, 4, 0x34); /* unmask: the edge seen while masked is gone */
    CU_ASSERT_EQUAL(r.count, 0);
    ioapic_set_irq(io, 4, 0);
    ioapic_set_irq(io, 4, 1);
    CU_ASSERT_EQUAL(r.count, 1);
    CU_ASSERT_EQUAL(r.vector, 0x34);
    ioapic_set_irq(io, 4, 1); /* no new edge */
    CU_ASSERT_EQUAL(r.count, 1);
    ioapic_free(io);
}

static void test_edge_message_fields(void)
{
    struct deliver_rec r = {0};
    struct ioapic *io = ioapic_new(0, rec_deliver, &r);
    /* dest 0xAB logical, lowest priority, vector 0x51, edge. */
    rte_write(io, 17, (0xabull << 56) | (1ull << 11) | (1ull << 8) | 0x51);
    CU_ASSERT_EQUAL(rte_read(io, 17), (0xabull << 56) | (1ull << 11) | (1ull << 8) | 0x51);
    ioapic_set_irq(io, 17, 1);
    CU_ASSERT_EQUAL(r.count, 1);
    CU_ASSERT_EQUAL(r.dest, 0xab);
    CU_ASSERT_TRUE(r.logical);
    CU_ASSERT_EQUAL(r.mode, IOAPIC_DM_LOWEST);
    CU_ASSERT_EQUAL(r.vector, 0x51);
    CU_ASSERT_FALSE(r.level);
    /* Remote IRR and delivery status are read-only. */
    rte_write(io, 17, (1ull << 14) | (1ull << 12) | 0x51);
    CU_ASSERT_EQUAL(rte_read(io, 17), 0x51);
    /* ExtINT (virtual wire through the IOAPIC) passes its mode through. */
    rte_write(io, 0, 7ull << 8);
    ioapic_set_irq(io, 0, 1);
    CU_ASSERT_EQUAL(r.mode, IOAPIC_DM_EXTINT);
    ioapic_free(io);
}

static void test_level_remote_irr(void)
{
    struct deliver_rec r = {0};
    struct ioapic *io = ioapic_new(0, rec_deliver, &r);
    rte_write(io, 9, (1ull << 56) | (1ull << 15) | 0x39); /* level, vector 0x39, dest 1 */
    ioapic_set_irq(io, 9, 1);
    CU_ASSERT_EQUAL(r.count, 1);
    CU_ASSERT_TRUE(r.level);
    CU_ASSERT_EQUAL(r.dest, 1);
    CU_ASSERT_TRUE(rte_read(io, 9) & (1ull << 14)); /* Remote IRR */
    /* Another device sharing the line asserts again: nothing until EOI. */
    ioapic_set_irq(io, 9, 0);
    ioapic_set_irq(io, 9, 1);
    CU_ASSERT_EQUAL(r.count, 1);
    ioapic_eoi(io, 0x38); /* another vector: no effect */
    CU_ASSERT_EQUAL(r.count, 1);
    ioapic_eoi(io, 0x39); /* still asserted: delivered again */
    CU_ASSERT_EQUAL(r.count, 2);
    CU_ASSERT_TRUE(rte_read(io, 9) & (1ull << 14));
    ioapic_set_irq(io, 9, 0);
    ioapic_write(io, 0x40, 0x39, 4); /* EOI register (version 0x20) */
    CU_ASSERT_EQUAL(r.count, 2);
    CU_ASSERT_FALSE(rte_read(io, 9) & (1ull << 14));
    ioapic_free(io);
}

static void test_level_unmask_delivers(void)
{
    struct deliver_rec r = {0};
    struct ioapic *io = ioapic_new(0, rec_deliver, &r);
    rte_write(io, 11, (1ull << 16) | (1ull << 15) | 0x3b);
    ioapic_set_irq(io, 11, 1);
    CU_ASSERT_EQUAL(r.count, 0);
    rte_write(io, 11, (1ull << 15) | 0x3b); /* unmask while the line is high */
    CU_ASSERT_EQUAL(r.count, 1);
    ioapic_free(io);
}

static void test_hostile_indices(void)
{
    struct deliver_rec r = {0};
    struct ioapic *io = ioapic_new(0, rec_deliver, &r);
    ioapic_set_irq(io, 24, 1);
    ioapic_set_irq(io, -1, 1);
    ioapic_set_irq(io, 1 << 30, 1);
    CU_ASSERT_EQUAL(r.count, 0);
    /* Selects past the last redirection entry (0x3f) are reserved. */
    reg_write(io, 0x40, 0x12);
    reg_write(io, 0xff, 0x12);
    CU_ASSERT_EQUAL(reg_read(io, 0x40), 0xffffffffu);
    CU_ASSERT_EQUAL(reg_read(io, 0x3f), 0x00000000u);
    ioapic_write(io, 0xffc, 1, 4);
    CU_ASSERT_EQUAL(ioapic_read(io, 0x20, 4), 0);
    ioapic_free(io);
}

static void test_save_load(void)
{
    struct deliver_rec r = {0};
    struct ioapic *a = ioapic_new(1, rec_deliver, &r);
    rte_write(a, 5, (1ull << 15) | 0x45);
    ioapic_set_irq(a, 5, 1);
    GByteArray *buf = g_byte_array_new();
    CU_ASSERT_EQUAL(ioapic_device_ops.save(a, buf), 0);
    struct deliver_rec r2 = {0};
    struct ioapic *b = ioapic_new(0, rec_deliver, &r2);
    CU_ASSERT_EQUAL(ioapic_device_ops.load(b, buf->data, buf->len), 0);
    CU_ASSERT_EQUAL(reg_read(b, 0), 1u << 24);
    CU_ASSERT_EQUAL(rte_read(b, 5), (1ull << 15) | (1ull << 14) | 0x45);
    ioapic_eoi(b, 0x45); /* pin still high in the saved state: redelivers */
    CU_ASSERT_EQUAL(r2.count, 1);
    CU_ASSERT_EQUAL(ioapic_device_ops.load(b, buf->data, 10), -EINVAL);
    g_byte_array_free(buf, TRUE);
    ioapic_free(a);
    ioapic_free(b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("ioapic", NULL, NULL);
    CU_add_test(s, "ID and version", test_id_version);
    CU_add_test(s, "masked line not delivered", test_masked_not_delivered);
    CU_add_test(s, "edge message fields", test_edge_message_fields);
    CU_add_test(s, "level Remote IRR until EOI", test_level_remote_irr);
    CU_add_test(s, "level pin delivers on unmask", test_level_unmask_delivers);
    CU_add_test(s, "hostile indices", test_hostile_indices);
    CU_add_test(s, "save and load", test_save_load);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
