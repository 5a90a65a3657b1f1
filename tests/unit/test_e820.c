/* Unit tests for core/e820: the PC memory map Linux reads from the zero page. */
#include "core/e820.h"

#include <CUnit/Basic.h>
#include <errno.h>

static void test_pc_low_only(void)
{
    struct e820_table t;
    CU_ASSERT_EQUAL(e820_build_pc(&t, 512ull << 20, 0), 0);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x9fbff), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x9fc00), E820_RESERVED);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0xa0000), 0); /* VGA hole: not described */
    CU_ASSERT_EQUAL(e820_type_at(&t, 0xe0000), E820_RESERVED);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0xfffff), E820_RESERVED);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x100000), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, (512ull << 20) - 1), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, 512ull << 20), 0);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0xfec00000), E820_RESERVED);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0xfee00000), E820_RESERVED);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x100000000ull), 0);
}

static void test_pc_high(void)
{
    struct e820_table t;
    CU_ASSERT_EQUAL(e820_build_pc(&t, 3ull << 30, 1ull << 30), 0);
    CU_ASSERT_EQUAL(e820_type_at(&t, (3ull << 30) - 1), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, 3ull << 30), 0);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x100000000ull), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x13fffffffull), E820_RAM);
    CU_ASSERT_EQUAL(e820_type_at(&t, 0x140000000ull), 0);
    /* Sorted and non-overlapping: what Linux's sanitizer expects anyway. */
    for (int i = 1; i < t.n; i++) {
        CU_ASSERT_TRUE(t.e[i].addr >= t.e[i - 1].addr + t.e[i - 1].size);
    }
}

static void test_bad_input(void)
{
    struct e820_table t = {0};
    CU_ASSERT_EQUAL(e820_build_pc(&t, 0x80000, 0), -EINVAL);
    CU_ASSERT_EQUAL(e820_build_pc(&t, 0xfec00001ull, 0), -EINVAL);
    struct e820_table u = {0};
    CU_ASSERT_EQUAL(e820_add(&u, 0x1000, 0x1000, E820_RAM), 0);
    CU_ASSERT_EQUAL(e820_add(&u, 0x1800, 0x1000, E820_RAM), -EINVAL);
    CU_ASSERT_EQUAL(e820_add(&u, 0x3000, 0, E820_RAM), -EINVAL);
    for (int i = 1; i < E820_MAX_ENTRIES; i++) {
        CU_ASSERT_EQUAL(e820_add(&u, 0x10000ull * (uint64_t)i, 0x1000, E820_RAM), 0);
    }
    CU_ASSERT_EQUAL(e820_add(&u, 0x10000000ull, 0x1000, E820_RAM), -ENOSPC);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("e820", NULL, NULL);
    CU_add_test(s, "pc map, low RAM only", test_pc_low_only);
    CU_add_test(s, "pc map with RAM above 4G", test_pc_high);
    CU_add_test(s, "bad input refused", test_bad_input);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
