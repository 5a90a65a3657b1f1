/* Unit tests for core/chardev: backends, the Ctrl-A escape and input flow control. */
#include "core/chardev.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct rx {
    uint8_t buf[1024]; /* bytes the "device" took */
    size_t len;
    size_t limit; /* accept at most this many per call (0: all) */
    int quits;
};

static size_t rx_take(void *opaque, const uint8_t *b, size_t n)
{
    struct rx *r = opaque;
    if (r->limit && n > r->limit) {
        n = r->limit;
    }
    if (n > sizeof(r->buf) - r->len) {
        n = sizeof(r->buf) - r->len;
    }
    memcpy(r->buf + r->len, b, n);
    r->len += n;
    return n;
}

static void rx_quit(void *opaque)
{
    ((struct rx *)opaque)->quits++;
}

static void test_file_backend(void)
{
    char path[] = "/tmp/lodge-chardev-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    write(fd, "old contents", 12);
    close(fd);
    char spec[64];
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct chardev *c = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(chardev_open(spec, NULL, &c, err, sizeof(err)), 0);
    chardev_write(c, (const uint8_t *)"hello\n", 6);
    chardev_free(c);
    char got[32] = "";
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(got, 1, sizeof(got) - 1, f);
    fclose(f);
    CU_ASSERT_EQUAL(n, 6); /* truncated, then written */
    CU_ASSERT_STRING_EQUAL(got, "hello\n");
    unlink(path);
}

static void test_bad_specs(void)
{
    struct chardev *c = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL(chardev_open("tcp:1234", NULL, &c, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(strncmp(err, "tcp:1234: ", 10), 0);
    CU_ASSERT_TRUE(chardev_open("file:/nonexistent-dir/x", NULL, &c, err, sizeof(err)) < 0);
    CU_ASSERT_EQUAL(strncmp(err, "/nonexistent-dir/x: ", 20), 0);
    CU_ASSERT_TRUE(chardev_open("file:", NULL, &c, err, sizeof(err)) < 0);
    CU_ASSERT_EQUAL(chardev_open("none", NULL, &c, err, sizeof(err)), 0);
    chardev_write(c, (const uint8_t *)"x", 1); /* dropped, no crash */
    chardev_free(c);
}

static void test_escape(void)
{
    struct chardev *c = NULL;
    char err[256];
    struct rx r = {0};
    CU_ASSERT_EQUAL_FATAL(chardev_open("stdio", NULL, &c, err, sizeof(err)), 0);
    chardev_set_receiver(c, rx_take, &r);
    chardev_set_quit(c, rx_quit, &r);
    chardev_input(c,
                  (const uint8_t *)"ab\x01\x01"
                                   "c",
                  5);
    CU_ASSERT_EQUAL(r.len, 4);
    CU_ASSERT_EQUAL(memcmp(r.buf,
                           "ab\x01"
                           "c",
                           4),
                    0);
    CU_ASSERT_EQUAL(r.quits, 0);
    chardev_input(c, (const uint8_t *)"\x01", 1); /* split across reads */
    CU_ASSERT_EQUAL(r.len, 4);
    chardev_input(c, (const uint8_t *)"x", 1);
    CU_ASSERT_EQUAL(r.quits, 1);
    CU_ASSERT_EQUAL(r.len, 4);
    chardev_free(c);
}

static void test_flow_control(void)
{
    struct chardev *c = NULL;
    char err[256];
    struct rx r = {.limit = 2};
    CU_ASSERT_EQUAL_FATAL(chardev_open("none", NULL, &c, err, sizeof(err)), 0);
    chardev_set_receiver(c, rx_take, &r);
    chardev_input(c, (const uint8_t *)"12345", 5);
    CU_ASSERT_EQUAL(r.len, 2); /* the rest waits, nothing lost */
    chardev_input(c, (const uint8_t *)"6", 1);
    CU_ASSERT_EQUAL(r.len, 4);
    r.limit = 0;
    chardev_input(c, NULL, 0);
    CU_ASSERT_EQUAL(r.len, 6);
    CU_ASSERT_EQUAL(memcmp(r.buf, "123456", 6), 0);
    chardev_free(c);
}

static void test_unix_backend(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/lodge-chardev-%d.sock", (int)getpid());
    char spec[80];
    snprintf(spec, sizeof(spec), "unix:%s", path);
    GMainContext *ctx = g_main_context_new();
    struct chardev *c = NULL;
    char err[256];
    struct rx r = {0};
    CU_ASSERT_EQUAL_FATAL(chardev_open(spec, ctx, &c, err, sizeof(err)), 0);
    chardev_set_receiver(c, rx_take, &r);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    for (int i = 0; i < 100 && g_main_context_iteration(ctx, FALSE); i++) {
    }
    chardev_write(c, (const uint8_t *)"out", 3);
    char got[8] = "";
    CU_ASSERT_EQUAL(read(fd, got, sizeof(got)), 3);
    CU_ASSERT_EQUAL(memcmp(got, "out", 3), 0);
    CU_ASSERT_EQUAL(write(fd, "in\x01", 3), 3);
    for (int i = 0; i < 200 && r.len < 3; i++) {
        g_main_context_iteration(ctx, TRUE);
    }
    CU_ASSERT_EQUAL(r.len, 3); /* no escape processing on sockets */
    CU_ASSERT_EQUAL(memcmp(r.buf, "in\x01", 3), 0);
    close(fd);
    chardev_free(c);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0); /* socket file removed */
    g_main_context_unref(ctx);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("chardev", NULL, NULL);
    CU_add_test(s, "file backend truncates and writes", test_file_backend);
    CU_add_test(s, "bad specs refused", test_bad_specs);
    CU_add_test(s, "Ctrl-A escape", test_escape);
    CU_add_test(s, "input flow control", test_flow_control);
    CU_add_test(s, "unix socket backend", test_unix_backend);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
