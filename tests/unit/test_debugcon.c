/* Unit tests for devices/pc/debugcon: bytes reach the sink one by one as written,
 * reads return 0xE9, and the --debugcon option parses. */
#include "devices/pc/debugcon.h"

#include "core/bus.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

struct sink {
    char buf[64];
    size_t len;
    int calls;
};

static void sink_write(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *s = opaque;
    s->calls++;
    for (size_t i = 0; i < len && s->len < sizeof(s->buf) - 1; i++) {
        s->buf[s->len++] = (char)buf[i];
    }
}

static void test_write_read(void)
{
    struct sink s = {{0}};
    struct debugcon *d = debugcon_new(sink_write, &s);
    struct bus *b = bus_new("pio");
    CU_ASSERT_EQUAL_FATAL(bus_register(b, 0xe9, 1, &debugcon_bus_ops, d, "debugcon"), 0);
    const char *msg = "hi\n";
    for (const char *p = msg; *p; p++) {
        CU_ASSERT_TRUE(bus_write(b, 0xe9, 1, (uint8_t)*p));
        /* Unbuffered: the byte is at the sink before the next OUT. */
        CU_ASSERT_EQUAL(s.len, (size_t)(p - msg + 1));
    }
    CU_ASSERT_STRING_EQUAL(s.buf, "hi\n");
    /* A word write sends its low byte only. */
    CU_ASSERT_TRUE(bus_write(b, 0xe9, 2, 0x4241));
    CU_ASSERT_STRING_EQUAL(s.buf, "hi\nA");
    uint64_t v = 0;
    CU_ASSERT_TRUE(bus_read(b, 0xe9, 1, &v));
    CU_ASSERT_EQUAL(v, 0xe9);
    CU_ASSERT_EQUAL(s.calls, 4);
    bus_free(b);
    debugcon_free(d);
}

static void test_parse(void)
{
    struct debugcon_config c;
    char err[200] = "";
    CU_ASSERT_EQUAL(debugcon_parse("stdio", &c, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(c.sink, "stdio");
    CU_ASSERT_EQUAL(c.iobase, 0xe9);
    CU_ASSERT_EQUAL(debugcon_parse("file:/tmp/a,b.txt,iobase=0x402", &c, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(c.sink, "file:/tmp/a,b.txt");
    CU_ASSERT_EQUAL(c.iobase, 0x402);
    CU_ASSERT_EQUAL(debugcon_parse("file:", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(debugcon_parse("unix:/tmp/s", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "stdio or file:PATH"));
    CU_ASSERT_EQUAL(debugcon_parse("stdio,iobase=0x10000", &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(debugcon_parse("stdio,iobase=zz", &c, err, sizeof(err)), -EINVAL);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("debugcon", NULL, NULL);
    CU_add_test(s, "write and read", test_write_read);
    CU_add_test(s, "option parsing", test_parse);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
