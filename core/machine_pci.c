/* PCI devices of the PC machine: virtio-blk, virtio-serial, virtio-rng (see
 * machine_pci.h). */
#include "core/machine_pci.h"

#include "core/chardev.h"
#include "core/log.h"
#include "core/machine_internal.h"
#include "core/machine_net.h"
#include "devices/pc/pci_host.h"
#include "devices/pci/pci_dev.h"
#include "devices/virtio/virtio_blk.h"
#include "devices/virtio/virtio_console.h"
#include "devices/virtio/virtio_input.h"
#include "devices/virtio/virtio_rng.h"
#include "snapshot/image.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MPCI_TAG "machine"
#define MPCI_MAX_FUNCS (MACHINE_PCI_MAX_DRIVES + 3)

struct mpci_port {
    struct virtio_console *con; /* device the port belongs to */
    int id;                     /* port id */
    struct chardev *chr;        /* host side */
};

struct machine_pci {
    struct image *images[MACHINE_PCI_MAX_DRIVES];
    struct virtio_blk *blk[MACHINE_PCI_MAX_DRIVES];
    int nblk;
    struct virtio_console *con;
    struct mpci_port ports[MACHINE_PCI_MAX_PORTS];
    int nports;
    struct virtio_rng *rng;
    struct virtio_input *tablet;              /* absolute pointer (--device virtio-tablet) */
    struct machine_net *net;                  /* NICs (core/machine_net.c) */
    struct virtio_pci *funcs[MPCI_MAX_FUNCS]; /* every transport, for reset */
    int nfuncs;
};

/* ---- CLI parsing ------------------------------------------------------------------ */

static int mpci_bad(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int mpci_bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int mpci_onoff(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

int machine_pci_parse_drive(struct machine_pci_config *pc, const char *spec, char *why, size_t len)
{
    if (pc->ndrives >= MACHINE_PCI_MAX_DRIVES) {
        return mpci_bad(why, len, "at most %d drives", MACHINE_PCI_MAX_DRIVES);
    }
    struct machine_drive d = {.format = IMAGE_FORMAT_AUTO};
    char *copy = strdup(spec);
    if (!copy) {
        return mpci_bad(why, len, "out of memory");
    }
    int rc = 0;
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            rc = mpci_bad(why, len,
                          "'%s' is not KEY=VALUE (use file=PATH[,format=raw|qcow2]"
                          "[,readonly=on])",
                          kv);
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (!strcmp(kv, "file")) {
            if (!v[0] || strlen(v) >= sizeof(d.path)) {
                rc = mpci_bad(why, len, "file= needs a path");
            } else {
                snprintf(d.path, sizeof(d.path), "%s", v);
            }
        } else if (!strcmp(kv, "format")) {
            enum image_format f;
            if (image_format_parse(v, &f) < 0) {
                rc = mpci_bad(why, len, "unknown format '%s' (use raw, qcow2, vmdk or vdi)", v);
            } else {
                d.format = (int)f;
            }
        } else if (!strcmp(kv, "readonly")) {
            if (mpci_onoff(v, &d.readonly) < 0) {
                rc = mpci_bad(why, len, "readonly=%s: use on or off", v);
            }
        } else {
            rc = mpci_bad(why, len, "unknown key '%s' (use file, format, readonly)", kv);
        }
    }
    free(copy);
    if (rc == 0 && !d.path[0]) {
        rc = mpci_bad(why, len, "missing file=PATH");
    }
    if (rc == 0) {
        pc->drives[pc->ndrives++] = d;
    }
    return rc;
}

int machine_pci_parse_device(struct machine_pci_config *pc, const char *spec)
{
    if (!strcmp(spec, "virtio-serial")) {
        pc->serial = true;
        return 1;
    }
    if (!strcmp(spec, "virtio-rng")) {
        pc->rng = true;
        return 1;
    }
    if (!strcmp(spec, "virtio-tablet")) {
        pc->tablet = true;
        return 1;
    }
    return 0;
}

int machine_pci_parse_port(struct machine_pci_config *pc, const char *spec, char *why, size_t len)
{
    if (pc->nports >= MACHINE_PCI_MAX_PORTS) {
        return mpci_bad(why, len, "at most %d ports", MACHINE_PCI_MAX_PORTS);
    }
    struct machine_vport p = {0};
    const char *s = spec;
    while (*s) {
        if (!strncmp(s, "chardev=", 8)) {
            snprintf(p.chardev, sizeof(p.chardev), "%s", s + 8);
            break;
        }
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n > 5 && !strncmp(s, "name=", 5)) {
            if (n - 5 >= sizeof(p.name)) {
                return mpci_bad(why, len, "port name longer than %zu bytes", sizeof(p.name) - 1);
            }
            memcpy(p.name, s + 5, n - 5);
            p.name[n - 5] = '\0';
        } else if (n == 10 && !strncmp(s, "console=on", 10)) {
            p.console = true;
        } else if (n == 11 && !strncmp(s, "console=off", 11)) {
            p.console = false;
        } else {
            return mpci_bad(why, len,
                            "'%.*s' is not understood (use name=NAME[,console=on],"
                            "chardev=SPEC)",
                            (int)n, s);
        }
        s = end ? end + 1 : s + n;
    }
    if (!p.chardev[0]) {
        return mpci_bad(why, len, "missing chardev=SPEC (stdio, file:PATH, unix:PATH or none)");
    }
    if (!p.name[0] && !p.console) {
        return mpci_bad(why, len, "a port needs name=NAME (or console=on)");
    }
    for (int i = 0; i < pc->nports; i++) {
        if ((p.console && pc->ports[i].console) ||
            (p.name[0] && !strcmp(p.name, pc->ports[i].name))) {
            return mpci_bad(why, len, "port %s is given twice", p.console ? "console" : p.name);
        }
    }
    pc->ports[pc->nports++] = p;
    pc->serial = true;
    return 0;
}

/* ---- devices --------------------------------------------------------------------------- */

static void mpci_err(struct machine_error *err, bool user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mpci_err(struct machine_error *err, bool user, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->user = user;
}

static void mpci_irq_cb(void *opaque, int line, int level)
{
    machine_irq_set(opaque, (uint32_t)line, level);
}

static int mpci_msi_cb(void *opaque, uint64_t addr, uint32_t data)
{
    return machine_msi(opaque, addr, data);
}

static int mpci_image_pread(void *o, void *buf, uint64_t len, uint64_t off)
{
    return image_pread(o, buf, len, off);
}

static int mpci_image_pread_nowait(void *o, void *buf, uint64_t len, uint64_t off)
{
    return image_pread_nowait(o, buf, len, off);
}

static int mpci_image_pwrite(void *o, const void *buf, uint64_t len, uint64_t off)
{
    return image_pwrite(o, buf, len, off);
}

static int mpci_image_flush(void *o)
{
    return image_flush(o);
}

static int mpci_image_discard(void *o, uint64_t off, uint64_t len)
{
    return image_discard(o, off, len);
}

static int mpci_image_write_zeroes(void *o, uint64_t off, uint64_t len)
{
    return image_write_zeroes(o, off, len);
}

static void mpci_port_write(void *opaque, const uint8_t *buf, size_t len)
{
    chardev_write(opaque, buf, len);
}

static size_t mpci_port_receive(void *opaque, const uint8_t *buf, size_t len)
{
    struct mpci_port *p = opaque;
    return virtio_console_port_receive(p->con, p->id, buf, len);
}

/* Puts a transport on bus 0 at the next slot, with BARs pre-assigned. */
static int mpci_plug(struct machine *m, struct virtio_pci *vp, struct machine_error *err)
{
    struct machine_pci *mp = m->pci;
    if (mp->nfuncs >= MPCI_MAX_FUNCS) {
        mpci_err(err, true, "too many PCI devices");
        return -ENOSPC;
    }
    int slot = MACHINE_PCI_FIRST_SLOT + mp->nfuncs;
    uint32_t base = MACHINE_PCI_MMIO_BASE + (uint32_t)mp->nfuncs * MACHINE_PCI_MMIO_STRIDE;
    struct pci_dev *pd = virtio_pci_pci(vp);
    int rc = pci_dev_set_bar_default(pd, VIRTIO_PCI_BAR_MAIN, base);
    if (rc == 0) {
        rc = pci_dev_set_bar_default(pd, VIRTIO_PCI_BAR_MSIX, base + VIRTIO_PCI_MAIN_SIZE);
    }
    pci_dev_set_default_command(pd, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    struct irq_line intx = {.set = mpci_irq_cb, .opaque = m, .line = pci_dev_intx_gsi(slot, 1)};
    struct pci_msi_sink msi = {.send = mpci_msi_cb, .opaque = m};
    pci_dev_attach(pd, m->pio, m->mmio, &intx, &msi);
    if (rc == 0) {
        rc = pci_host_add_device(m->pci_host, slot, 0, &pci_dev_config_ops, pd);
    }
    if (rc < 0) {
        mpci_err(err, false, "machine: cannot place a PCI device at 00:%02x.0: %s", slot,
                 strerror(-rc));
        return rc;
    }
    pci_dev_reset(pd);
    mp->funcs[mp->nfuncs++] = vp;
    return 0;
}

static int mpci_add_drive(struct machine *m, const struct machine_drive *d, int index,
                          struct machine_error *err)
{
    struct machine_pci *mp = m->pci;
    char why[IMAGE_ERR_LEN];
    struct image *img = NULL;
    int rc = image_open(d->path, (enum image_format)d->format, d->readonly ? 0 : IMAGE_OPEN_RDWR,
                        &img, why, sizeof(why));
    if (rc < 0) {
        mpci_err(err, true, "--drive: %s", why);
        return rc;
    }
    mp->images[mp->nblk] = img;
    struct virtio_blk_backend be = {.opaque = img,
                                    .pread = mpci_image_pread,
                                    .pwrite = mpci_image_pwrite,
                                    .flush = mpci_image_flush,
                                    .discard = mpci_image_discard,
                                    .write_zeroes = mpci_image_write_zeroes,
                                    .pread_nowait = mpci_image_pread_nowait,
                                    .length = image_length(img),
                                    .readonly = d->readonly || !image_is_writable(img)};
    char serial[24];
    snprintf(serial, sizeof(serial), "lodge-disk%d", index);
    struct virtio_blk *b = virtio_blk_new(&m->mem, &be, serial);
    if (!b) {
        mpci_err(err, false, "machine: out of memory creating virtio-blk");
        return -ENOMEM;
    }
    mp->blk[mp->nblk++] = b;
    log_info(MPCI_TAG, "virtio-blk: %s (%s, %llu bytes%s)", d->path,
             image_format_name(image_get_format(img)), (unsigned long long)be.length,
             be.readonly ? ", read-only" : "");
    return mpci_plug(m, virtio_blk_transport(b), err);
}

static int mpci_add_serial(struct machine *m, const struct machine_pci_config *pc,
                           struct machine_error *err)
{
    struct machine_pci *mp = m->pci;
    mp->con = virtio_console_new(&m->mem);
    if (!mp->con) {
        mpci_err(err, false, "machine: out of memory creating virtio-serial");
        return -ENOMEM;
    }
    for (int i = 0; i < pc->nports; i++) {
        const struct machine_vport *v = &pc->ports[i];
        struct mpci_port *p = &mp->ports[mp->nports];
        char why[256] = "";
        int rc = chardev_open(v->chardev, m->ctx, &p->chr, why, sizeof(why));
        if (rc < 0) {
            mpci_err(err, true, "--virtio-port %s: %s", v->console ? "console" : v->name, why);
            return rc;
        }
        mp->nports++;
        struct virtio_console_backend be = {.opaque = p->chr, .write = mpci_port_write};
        int id = virtio_console_add_port(mp->con, v->name[0] ? v->name : NULL, v->console, &be);
        if (id < 0) {
            mpci_err(err, true, "--virtio-port %s: cannot add the port", v->name);
            return id;
        }
        p->con = mp->con;
        p->id = id;
        chardev_set_receiver(p->chr, mpci_port_receive, p);
    }
    return mpci_plug(m, virtio_console_transport(mp->con), err);
}

int machine_pci_add_devices(struct machine *m, struct machine_error *err)
{
    const struct machine_pci_config *pc = m->cfg.pci;
    if (!pc || (!pc->ndrives && !pc->serial && !pc->rng && !pc->nnics && !pc->tablet)) {
        return 0;
    }
    m->pci = calloc(1, sizeof(*m->pci));
    if (!m->pci) {
        mpci_err(err, false, "machine: out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    for (int i = 0; i < pc->ndrives && rc == 0; i++) {
        rc = mpci_add_drive(m, &pc->drives[i], i, err);
    }
    if (rc == 0 && pc->serial) {
        rc = mpci_add_serial(m, pc, err);
    }
    if (rc == 0 && pc->rng) {
        m->pci->rng = virtio_rng_new(&m->mem);
        if (!m->pci->rng) {
            mpci_err(err, false, "machine: out of memory creating virtio-rng");
            return -ENOMEM;
        }
        rc = mpci_plug(m, virtio_rng_transport(m->pci->rng), err);
    }
    if (rc == 0 && pc->nnics) {
        rc = machine_net_add(m, pc, &m->pci->net, err);
    }
    /* Last, so adding it by default moves no other device's slot. */
    if (rc == 0 && pc->tablet) {
        m->pci->tablet = virtio_input_new_tablet(&m->mem);
        if (!m->pci->tablet) {
            mpci_err(err, false, "machine: out of memory creating virtio-tablet");
            return -ENOMEM;
        }
        rc = mpci_plug(m, virtio_input_transport(m->pci->tablet), err);
    }
    return rc;
}

struct virtio_input *machine_pci_tablet(struct machine *m)
{
    return m->pci ? m->pci->tablet : NULL;
}

void machine_pci_reset(struct machine *m)
{
    if (!m->pci) {
        return;
    }
    for (int i = 0; i < m->pci->nfuncs; i++) {
        virtio_pci_device_ops.reset(m->pci->funcs[i]);
    }
    machine_net_reset(m->pci->net);
}

void machine_pci_free(struct machine *m)
{
    struct machine_pci *mp = m->pci;
    if (!mp) {
        return;
    }
    /* The main loop thread (chardev input) and the vCPUs have stopped by now. */
    for (int i = 0; i < mp->nblk; i++) {
        virtio_blk_free(mp->blk[i]);
    }
    for (int i = 0; i < MACHINE_PCI_MAX_DRIVES; i++) {
        if (mp->images[i]) {
            image_flush(mp->images[i]);
            image_close(mp->images[i]);
        }
    }
    virtio_console_free(mp->con);
    for (int i = 0; i < mp->nports; i++) {
        chardev_free(mp->ports[i].chr);
    }
    virtio_rng_free(mp->rng);
    virtio_input_free(mp->tablet);
    machine_net_free(mp->net);
    free(mp);
    m->pci = NULL;
}
