/* CFI flash (Intel command set) as OVMF drives its variable store: the
 * QemuFlashDetected probe, byte program, block erase, write-through to the NVRAM
 * file, and bounds. */
#include "devices/pc/pflash.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEN (4 * PFLASH_BLOCK_SIZE)

static void test_detect_probe(void)
{
    uint8_t img[LEN];
    memset(img, 0x5a, sizeof(img));
    struct pflash *f = pflash_new(img, LEN, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    /* OVMF: write CLEAR_STATUS, read back (must not read 0x50 like RAM would) */
    pflash_write(f, 0, 0x50, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0, 1), 0x5au);
    /* then READ_STATUS must give the cleared status 0x00: "flash detected" */
    pflash_write(f, 0, 0x70, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0, 1), 0x00u);
    pflash_write(f, 0, 0xff, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0, 4), 0x5a5a5a5au);
    /* sizes that are not whole blocks are refused */
    CU_ASSERT_PTR_NULL(pflash_new(img, 100, -1));
    pflash_free(f);
}

static void test_program_erase_persist(void)
{
    char path[] = "/tmp/lodge-pflash-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t img[LEN];
    memset(img, 0xff, sizeof(img));
    CU_ASSERT_EQUAL_FATAL(write(fd, img, LEN), LEN);
    struct pflash *f = pflash_new(img, LEN, fd);
    /* program two bytes the way QemuFlashWrite does, then back to array mode */
    pflash_write(f, 0x1001, 0x10, 1);
    pflash_write(f, 0x1001, 0xab, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0x1001, 1) & 0x80, 0x80u); /* status: ready */
    pflash_write(f, 0x1002, 0x40, 1);
    pflash_write(f, 0x1002, 0xcd, 1);
    pflash_write(f, 0x1002, 0xff, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0x1001, 2), 0xcdabu);
    /* erase needs the confirm byte; a wrong one leaves the block alone */
    pflash_write(f, 0x1800, 0x20, 1);
    pflash_write(f, 0x1800, 0x00, 1);
    pflash_write(f, 0, 0xff, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0x1001, 1), 0xabu);
    pflash_write(f, 0x1800, 0x20, 1);
    pflash_write(f, 0x1800, 0xd0, 1);
    pflash_write(f, 0, 0xff, 1);
    CU_ASSERT_EQUAL(pflash_read(f, 0x1001, 1), 0xffu);
    /* the file followed every change */
    pflash_write(f, 0x2000, 0x10, 1);
    pflash_write(f, 0x2000, 0x42, 1);
    uint8_t b = 0;
    CU_ASSERT_EQUAL(pread(fd, &b, 1, 0x2000), 1);
    CU_ASSERT_EQUAL(b, 0x42);
    CU_ASSERT_EQUAL(pread(fd, &b, 1, 0x1001), 1);
    CU_ASSERT_EQUAL(b, 0xff);
    /* out-of-range accesses do nothing */
    pflash_write(f, LEN, 0x10, 1);
    pflash_write(f, LEN - 1, 0x1234, 2);
    pflash_write(f, 0, 0xff, 1);
    CU_ASSERT_EQUAL(pflash_read(f, LEN - 2, 4), ~0ull);
    size_t n;
    const uint8_t *d = pflash_data(f, &n);
    CU_ASSERT_EQUAL(n, (size_t)LEN);
    CU_ASSERT_EQUAL(d[0x2000], 0x42);
    pflash_free(f); /* closes fd */
    unlink(path);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pflash", NULL, NULL);
    CU_add_test(s, "OVMF detection probe", test_detect_probe);
    CU_add_test(s, "program, erase, persist", test_program_erase_persist);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
