/* Test-exit device (QEMU's isa-debug-exit convention): a guest write of value V to
 * its port range ends the VM with process exit status (V << 1) | 1, so a test guest
 * can report pass/fail without a serial parser. Off by default; enabled with
 * --device test-exit[,iobase=0xf4,size=4]. Reads return 0. Stateless. */
#ifndef LODGE_DEVICES_PC_TEST_EXIT_H
#define LODGE_DEVICES_PC_TEST_EXIT_H

#include "core/bus.h"
#include "devices/device.h"

#include <stddef.h>
#include <stdint.h>

#define TEST_EXIT_DEFAULT_IOBASE 0xf4
#define TEST_EXIT_DEFAULT_SIZE 4

struct test_exit;

struct test_exit_config {
    uint16_t iobase; /* first port of the range */
    uint16_t size;   /* ports in the range, 1..4 */
};

/* Parse "test-exit[,iobase=N][,size=N]" (N decimal or 0x-hex). 0, or -EINVAL with
 * "<problem>" in err. */
int test_exit_parse(const char *spec, struct test_exit_config *cfg, char *err, size_t errlen);

/* exit_fn gets the exit status (V << 1) | 1 for a guest write of V. */
struct test_exit *test_exit_new(void (*exit_fn)(void *opaque, int status), void *opaque);
void test_exit_free(struct test_exit *t);
uint64_t test_exit_read(struct test_exit *t, uint64_t off, unsigned size);
void test_exit_write(struct test_exit *t, uint64_t off, uint64_t val, unsigned size);

extern const struct bus_ops test_exit_bus_ops;       /* opaque = struct test_exit * */
extern const struct device_ops test_exit_device_ops; /* dev = struct test_exit * */

#endif
