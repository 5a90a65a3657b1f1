#include "devices/pc/debugcon.h"

#include "snapshot/vmstate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct debugcon {
    void (*write_fn)(void *opaque, const uint8_t *buf, size_t len); /* host sink */
    void *opaque;
};

static int debugcon_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int debugcon_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int debugcon_parse(const char *spec, struct debugcon_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->iobase = DEBUGCON_DEFAULT_IOBASE;
    size_t len = strlen(spec);
    const char *opt = NULL;
    for (const char *p = strstr(spec, ",iobase="); p; p = strstr(p + 1, ",iobase=")) {
        opt = p;
    }
    if (opt) {
        const char *num = opt + strlen(",iobase=");
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(num, &end, 0);
        if (!*num || *num == '-' || errno || *end || v > 0xffff) {
            return debugcon_fail(err, errlen, "iobase '%s' is not a port number 0..0xffff", num);
        }
        cfg->iobase = (uint16_t)v;
        len = (size_t)(opt - spec);
    }
    if (len >= sizeof(cfg->sink)) {
        return debugcon_fail(err, errlen, "path is too long");
    }
    memcpy(cfg->sink, spec, len);
    cfg->sink[len] = '\0';
    if (strcmp(cfg->sink, "stdio") != 0 &&
        (strncmp(cfg->sink, "file:", 5) != 0 || cfg->sink[5] == '\0')) {
        return debugcon_fail(err, errlen, "unknown sink '%s' (use stdio or file:PATH)", cfg->sink);
    }
    return 0;
}

struct debugcon *debugcon_new(void (*write_fn)(void *opaque, const uint8_t *buf, size_t len),
                              void *opaque)
{
    struct debugcon *d = calloc(1, sizeof(*d));
    if (!d) {
        return NULL;
    }
    d->write_fn = write_fn;
    d->opaque = opaque;
    return d;
}

void debugcon_free(struct debugcon *d)
{
    free(d);
}

uint64_t debugcon_read(struct debugcon *d, uint64_t off, unsigned size)
{
    return DEBUGCON_READBACK;
}

void debugcon_write(struct debugcon *d, uint64_t off, uint64_t val, unsigned size)
{
    /* Like QEMU's debugcon, a wider OUT sends only its low byte. */
    uint8_t ch = (uint8_t)val;
    if (d->write_fn) {
        d->write_fn(d->opaque, &ch, 1);
    }
}

static uint64_t debugcon_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return debugcon_read(opaque, off, size);
}

static void debugcon_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    debugcon_write(opaque, off, val, size);
}

const struct bus_ops debugcon_bus_ops = {.read = debugcon_bus_read, .write = debugcon_bus_write};

/* No guest-visible state: an empty, versioned section keeps snapshots uniform. */
static const struct vmstate_field debugcon_fields[] = {
    VMSTATE_END,
};

static const struct vmstate_desc debugcon_vmstate = {
    .name = "debugcon",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct debugcon),
    .fields = debugcon_fields,
};

static int debugcon_dev_save(void *dev, GByteArray *out)
{
    return vmstate_save(&debugcon_vmstate, dev, out);
}

static int debugcon_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct debugcon scratch = *(struct debugcon *)dev;
    return vmstate_load(&debugcon_vmstate, &scratch, buf, len, NULL);
}

const struct device_ops debugcon_device_ops = {
    .name = "debugcon",
    .save = debugcon_dev_save,
    .load = debugcon_dev_load,
};
