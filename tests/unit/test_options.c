/* Unit tests for core/options: size and integer parsing as `lodge run` flags see them. */
#include "core/options.h"

#include <CUnit/Basic.h>
#include <errno.h>

static uint64_t size_ok(const char *s)
{
    uint64_t v = 0xdeadbeef;
    CU_ASSERT_EQUAL(options_parse_size(s, &v), 0);
    return v;
}

static void test_size_suffixes(void)
{
    CU_ASSERT_EQUAL(size_ok("512M"), 512ull << 20);
    CU_ASSERT_EQUAL(size_ok("2G"), 2ull << 30);
    CU_ASSERT_EQUAL(size_ok("2g"), 2ull << 30);
    CU_ASSERT_EQUAL(size_ok("1k"), 1024);
    CU_ASSERT_EQUAL(size_ok("1024K"), 1ull << 20);
    CU_ASSERT_EQUAL(size_ok("1T"), 1ull << 40);
}

static void test_size_plain_and_hex(void)
{
    CU_ASSERT_EQUAL(size_ok("4096"), 4096);
    CU_ASSERT_EQUAL(size_ok("0x1000"), 0x1000);
    CU_ASSERT_EQUAL(size_ok("0x10M"), 16ull << 20);
    CU_ASSERT_EQUAL(size_ok("0"), 0);
}

static void test_size_junk(void)
{
    uint64_t v = 7;
    const char *bad[] = {"", "M", "12X", "12MB", "1.5G", "-1", " 12", "12 ", "0x", "abc", "1KK"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(options_parse_size(bad[i], &v), -EINVAL);
    }
    CU_ASSERT_EQUAL(options_parse_size(NULL, &v), -EINVAL);
    CU_ASSERT_EQUAL(v, 7); /* untouched on error */
}

static void test_size_overflow(void)
{
    uint64_t v = 7;
    CU_ASSERT_EQUAL(options_parse_size("18446744073709551616", &v), -ERANGE);
    CU_ASSERT_EQUAL(options_parse_size("17179869184G", &v), -ERANGE); /* 2^64 */
    CU_ASSERT_EQUAL(options_parse_size("16777216T", &v), -ERANGE);
    CU_ASSERT_EQUAL(options_parse_size("17179869183G", &v), 0);
    CU_ASSERT_EQUAL(v, 17179869183ull << 30);
    CU_ASSERT_EQUAL(options_parse_size("18446744073709551615", &v), 0);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
}

static void test_int_range(void)
{
    long v = 0;
    CU_ASSERT_EQUAL(options_parse_int("2", 1, 64, &v), 0);
    CU_ASSERT_EQUAL(v, 2);
    CU_ASSERT_EQUAL(options_parse_int("64", 1, 64, &v), 0);
    CU_ASSERT_EQUAL(v, 64);
    CU_ASSERT_EQUAL(options_parse_int("0", 1, 64, &v), -ERANGE);
    CU_ASSERT_EQUAL(options_parse_int("65", 1, 64, &v), -ERANGE);
    CU_ASSERT_EQUAL(options_parse_int("-3", 1, 64, &v), -ERANGE);
    CU_ASSERT_EQUAL(options_parse_int("2x", 1, 64, &v), -EINVAL);
    CU_ASSERT_EQUAL(options_parse_int("", 1, 64, &v), -EINVAL);
    CU_ASSERT_EQUAL(options_parse_int("99999999999999999999999", 1, 64, &v), -ERANGE);
    CU_ASSERT_EQUAL(v, 64);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("options", NULL, NULL);
    CU_add_test(s, "size suffixes", test_size_suffixes);
    CU_add_test(s, "size plain and hex", test_size_plain_and_hex);
    CU_add_test(s, "size junk refused", test_size_junk);
    CU_add_test(s, "size overflow refused", test_size_overflow);
    CU_add_test(s, "int range", test_int_range);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
