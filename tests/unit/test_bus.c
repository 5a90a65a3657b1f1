/* Unit tests for core/bus: range dispatch, overlap refusal, BAR moves. */
#include "core/bus.h"

#include <CUnit/Basic.h>
#include <errno.h>

struct fake_dev {
    uint64_t last_off;   /* offset of the last access */
    uint64_t last_val;   /* value of the last write */
    unsigned last_size;  /* size of the last access */
    int reads, writes;   /* access counters */
};

static uint64_t fake_read(void *opaque, uint64_t off, unsigned size)
{
    struct fake_dev *d = opaque;
    d->reads++;
    d->last_off = off;
    d->last_size = size;
    return 0x1000 + off;
}

static void fake_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct fake_dev *d = opaque;
    d->writes++;
    d->last_off = off;
    d->last_val = val;
    d->last_size = size;
}

static const struct bus_ops fake_ops = {.read = fake_read, .write = fake_write};

static void test_dispatch_offsets(void)
{
    struct bus *b = bus_new("pio");
    struct fake_dev a = {0}, c = {0};
    CU_ASSERT_EQUAL(bus_register(b, 0x3f8, 8, &fake_ops, &a, "uart"), 0);
    CU_ASSERT_EQUAL(bus_register(b, 0x70, 2, &fake_ops, &c, "rtc"), 0);
    uint64_t v = 0;
    CU_ASSERT_TRUE(bus_read(b, 0x3fd, 1, &v));
    CU_ASSERT_EQUAL(v, 0x1005);
    CU_ASSERT_EQUAL(a.last_off, 5);
    CU_ASSERT_TRUE(bus_write(b, 0x71, 1, 0x42));
    CU_ASSERT_EQUAL(c.last_off, 1);
    CU_ASSERT_EQUAL(c.last_val, 0x42);
    CU_ASSERT_EQUAL(a.writes, 0);
    bus_free(b);
}

static void test_unclaimed(void)
{
    struct bus *b = bus_new("pio");
    uint64_t v = 0;
    CU_ASSERT_FALSE(bus_read(b, 0x80, 2, &v));
    CU_ASSERT_EQUAL(v, 0xffff);
    CU_ASSERT_FALSE(bus_read(b, 0x80, 4, &v));
    CU_ASSERT_EQUAL(v, 0xffffffffu);
    CU_ASSERT_FALSE(bus_write(b, 0x80, 1, 1));
    bus_free(b);
}

static void test_overlap_refused(void)
{
    struct bus *b = bus_new("mmio");
    struct fake_dev a = {0};
    CU_ASSERT_EQUAL(bus_register(b, 0x1000, 0x100, &fake_ops, &a, "a"), 0);
    CU_ASSERT_EQUAL(bus_register(b, 0x10ff, 0x10, &fake_ops, &a, "b"), -EEXIST);
    CU_ASSERT_EQUAL(bus_register(b, 0xff8, 0x10, &fake_ops, &a, "c"), -EEXIST);
    CU_ASSERT_EQUAL(bus_register(b, 0x1100, 0x10, &fake_ops, &a, "d"), 0);
    CU_ASSERT_EQUAL(bus_register(b, 0x2000, 0, &fake_ops, &a, "e"), -EINVAL);
    bus_free(b);
}

static void test_move_and_unregister(void)
{
    struct bus *b = bus_new("mmio");
    struct fake_dev a = {0}, other = {0};
    uint64_t v;
    CU_ASSERT_EQUAL(bus_register(b, 0xfebf0000, 0x1000, &fake_ops, &a, "bar0"), 0);
    CU_ASSERT_EQUAL(bus_register(b, 0xfec00000, 0x1000, &fake_ops, &other, "ioapic"), 0);
    CU_ASSERT_EQUAL(bus_move(b, 0xfebf0000, &a, 0xfec00800), -EEXIST);
    CU_ASSERT_EQUAL(bus_move(b, 0xfebf0000, &other, 0xe0000000), -ENOENT);
    CU_ASSERT_EQUAL(bus_move(b, 0xfebf0000, &a, 0xe0000000), 0);
    CU_ASSERT_FALSE(bus_read(b, 0xfebf0010, 4, &v));
    CU_ASSERT_TRUE(bus_read(b, 0xe0000010, 4, &v));
    CU_ASSERT_EQUAL(a.last_off, 0x10);
    CU_ASSERT_STRING_EQUAL(bus_lookup_name(b, 0xe0000fff), "bar0");
    CU_ASSERT_EQUAL(bus_unregister(b, 0xe0000000, &a), 0);
    CU_ASSERT_PTR_NULL(bus_lookup_name(b, 0xe0000000));
    CU_ASSERT_EQUAL(bus_unregister(b, 0xe0000000, &a), -ENOENT);
    bus_free(b);
}

static void test_many_ranges_sorted(void)
{
    struct bus *b = bus_new("pio");
    struct fake_dev d[64] = {{0}};
    /* Register in a scrambled order; lookups must still find the right one. */
    for (int i = 0; i < 64; i++) {
        int k = (i * 37) % 64;
        CU_ASSERT_EQUAL(bus_register(b, 0x100 + k * 4, 4, &fake_ops, &d[k], "d"), 0);
    }
    for (int k = 0; k < 64; k++) {
        uint64_t v;
        CU_ASSERT_TRUE(bus_read(b, 0x100 + k * 4 + 3, 1, &v));
        CU_ASSERT_EQUAL(d[k].reads, 1);
        CU_ASSERT_EQUAL(d[k].last_off, 3);
    }
    bus_free(b);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("bus", NULL, NULL);
    CU_add_test(s, "dispatch offsets", test_dispatch_offsets);
    CU_add_test(s, "unclaimed access", test_unclaimed);
    CU_add_test(s, "overlap refused", test_overlap_refused);
    CU_add_test(s, "move and unregister", test_move_and_unregister);
    CU_add_test(s, "many ranges sorted", test_many_ranges_sorted);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
