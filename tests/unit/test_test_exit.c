/* Unit tests for devices/pc/test_exit: the isa-debug-exit status convention, option
 * parsing, and the device on a PIO bus at its configured range. */
#include "devices/pc/test_exit.h"

#include "core/bus.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

struct exits {
    int count;
    int status;
};

static void record_exit(void *opaque, int status)
{
    struct exits *e = opaque;
    e->count++;
    e->status = status;
}

static void test_status(void)
{
    struct exits e = {0};
    struct test_exit *t = test_exit_new(record_exit, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    test_exit_write(t, 0, 0, 1);
    CU_ASSERT_EQUAL(e.count, 1);
    CU_ASSERT_EQUAL(e.status, 1);
    test_exit_write(t, 0, 0x10, 4);
    CU_ASSERT_EQUAL(e.status, 0x21);
    /* Only the bytes of the access count. */
    test_exit_write(t, 0, 0x1234, 1);
    CU_ASSERT_EQUAL(e.status, (0x34 << 1) | 1);
    CU_ASSERT_EQUAL(e.count, 3);
    CU_ASSERT_EQUAL(test_exit_read(t, 0, 1), 0);
    test_exit_free(t);
}

static void test_parse(void)
{
    struct test_exit_config c;
    char err[200] = "";
    CU_ASSERT_EQUAL(test_exit_parse("test-exit", &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.iobase, 0xf4);
    CU_ASSERT_EQUAL(c.size, 4);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,iobase=0x501,size=2", &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.iobase, 0x501);
    CU_ASSERT_EQUAL(c.size, 2);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,size=1,iobase=244", &c, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.iobase, 244);
    CU_ASSERT_EQUAL(c.size, 1);
    CU_ASSERT_EQUAL(test_exit_parse("test-exitx", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown device"));
    CU_ASSERT_EQUAL(test_exit_parse("e1000", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,iobase=0x10000", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,iobase=", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,size=0", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,size=5", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,iobase=0xfffe,size=4", &c, err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_EQUAL(test_exit_parse("test-exit,color=red", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "color=red"));
}

static void test_on_bus(void)
{
    struct exits e = {0};
    struct test_exit *t = test_exit_new(record_exit, &e);
    struct bus *b = bus_new("pio");
    CU_ASSERT_EQUAL_FATAL(bus_register(b, 0xf4, 4, &test_exit_bus_ops, t, "test-exit"), 0);
    CU_ASSERT_TRUE(bus_write(b, 0xf6, 1, 3));
    CU_ASSERT_EQUAL(e.status, 7);
    CU_ASSERT_FALSE(bus_write(b, 0xf8, 1, 3)); /* past the range: not ours */
    CU_ASSERT_EQUAL(e.count, 1);
    bus_free(b);
    test_exit_free(t);
}

static void test_state(void)
{
    struct test_exit *t = test_exit_new(NULL, NULL);
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(test_exit_device_ops.save(t, out), 0);
    CU_ASSERT_TRUE(out->len > 0);
    CU_ASSERT_EQUAL(test_exit_device_ops.load(t, out->data, out->len), 0);
    CU_ASSERT_NOT_EQUAL(test_exit_device_ops.load(t, out->data, 3), 0);
    test_exit_write(t, 0, 1, 1); /* no callback: nothing happens, nothing crashes */
    g_byte_array_free(out, TRUE);
    test_exit_free(t);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("test_exit", NULL, NULL);
    CU_add_test(s, "exit status (V << 1) | 1", test_status);
    CU_add_test(s, "option parsing", test_parse);
    CU_add_test(s, "on the PIO bus", test_on_bus);
    CU_add_test(s, "state section", test_state);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
