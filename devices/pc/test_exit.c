#include "devices/pc/test_exit.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_EXIT_TAG "dev.test-exit"

struct test_exit {
    void (*exit_fn)(void *opaque, int status); /* machine "exit with status" request */
    void *opaque;
};

static int test_exit_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int test_exit_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int test_exit_number(const char *s, unsigned long max, unsigned long *out)
{
    if (!*s) {
        return -EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || *end || s[0] == '-' || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int test_exit_parse(const char *spec, struct test_exit_config *cfg, char *err, size_t errlen)
{
    cfg->iobase = TEST_EXIT_DEFAULT_IOBASE;
    cfg->size = TEST_EXIT_DEFAULT_SIZE;
    size_t nlen = strlen("test-exit");
    if (strncmp(spec, "test-exit", nlen) != 0 || (spec[nlen] != '\0' && spec[nlen] != ',')) {
        return test_exit_fail(err, errlen, "unknown device '%s' (supported: test-exit)", spec);
    }
    char *copy = strdup(spec + nlen);
    if (!copy) {
        return -ENOMEM;
    }
    int rc = 0;
    char *save = NULL;
    for (char *opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        unsigned long v;
        if (strncmp(opt, "iobase=", 7) == 0) {
            if (test_exit_number(opt + 7, 0xffff, &v) < 0) {
                rc = test_exit_fail(err, errlen, "iobase '%s' is not a port number 0..0xffff",
                                    opt + 7);
                break;
            }
            cfg->iobase = (uint16_t)v;
        } else if (strncmp(opt, "size=", 5) == 0) {
            if (test_exit_number(opt + 5, 4, &v) < 0 || v == 0) {
                rc = test_exit_fail(err, errlen, "size '%s' is not 1, 2, 3 or 4", opt + 5);
                break;
            }
            cfg->size = (uint16_t)v;
        } else {
            rc = test_exit_fail(err, errlen, "unknown option '%s' (use iobase=N, size=N)", opt);
            break;
        }
    }
    free(copy);
    if (rc == 0 && (uint32_t)cfg->iobase + cfg->size > 0x10000) {
        rc = test_exit_fail(err, errlen, "ports 0x%x+%u run past 0xffff", cfg->iobase, cfg->size);
    }
    return rc;
}

struct test_exit *test_exit_new(void (*exit_fn)(void *opaque, int status), void *opaque)
{
    struct test_exit *t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->exit_fn = exit_fn;
    t->opaque = opaque;
    return t;
}

void test_exit_free(struct test_exit *t)
{
    free(t);
}

uint64_t test_exit_read(struct test_exit *t, uint64_t off, unsigned size)
{
    return 0;
}

void test_exit_write(struct test_exit *t, uint64_t off, uint64_t val, unsigned size)
{
    /* The value is as wide as the access; the status keeps QEMU's (V << 1) | 1 so a
     * guest can never produce status 0 (which would look like a clean power-off). */
    uint64_t mask = size >= 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
    int status = (int)(((val & mask) << 1) | 1);
    log_info(TEST_EXIT_TAG, "guest wrote 0x%llx: exit status %d", (unsigned long long)(val & mask),
             status);
    if (t->exit_fn) {
        t->exit_fn(t->opaque, status);
    }
}

static uint64_t test_exit_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return test_exit_read(opaque, off, size);
}

static void test_exit_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    test_exit_write(opaque, off, val, size);
}

const struct bus_ops test_exit_bus_ops = {.read = test_exit_bus_read, .write = test_exit_bus_write};

/* No guest-visible state: an empty, versioned section keeps snapshots uniform. */
static const struct vmstate_field test_exit_fields[] = {
    VMSTATE_END,
};

static const struct vmstate_desc test_exit_vmstate = {
    .name = "test-exit",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct test_exit),
    .fields = test_exit_fields,
};

static int test_exit_dev_save(void *dev, GByteArray *out)
{
    return vmstate_save(&test_exit_vmstate, dev, out);
}

static int test_exit_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct test_exit scratch = *(struct test_exit *)dev;
    return vmstate_load(&test_exit_vmstate, &scratch, buf, len, NULL);
}

const struct device_ops test_exit_device_ops = {
    .name = "test-exit",
    .save = test_exit_dev_save,
    .load = test_exit_dev_load,
};
