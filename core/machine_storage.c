/* SATA storage of the PC machine: the AHCI HBA and its drives (see machine_storage.h). */
#include "core/machine_storage.h"

#include "core/log.h"
#include "core/machine_internal.h"
#include "devices/pc/pci_host.h"
#include "devices/pci/pci_dev.h"
#include "devices/storage/ahci.h"
#include "snapshot/image.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MST_TAG "machine"

struct machine_storage {
    struct ahci *ahci;
    pthread_mutex_t lock;                      /* images[] against media changes */
    struct image *images[MACHINE_STORAGE_MAX]; /* per port; NULL: none / empty drive */
    bool cdrom[MACHINE_STORAGE_MAX];           /* port holds a CD-ROM drive */
    int nports;
};

static int mst_bad(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int mst_bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int machine_storage_parse_disk(struct machine_storage_config *sc, const char *spec, char *why,
                               size_t len)
{
    if (sc->ndrives >= MACHINE_STORAGE_MAX) {
        return mst_bad(why, len, "at most %d SATA drives (--disk and --cdrom together)",
                       MACHINE_STORAGE_MAX);
    }
    struct machine_storage_drive d = {.format = IMAGE_FORMAT_AUTO};
    const char *comma = strchr(spec, ',');
    size_t plen = comma ? (size_t)(comma - spec) : strlen(spec);
    if (plen == 0 || plen >= sizeof(d.path)) {
        return mst_bad(why, len, "needs a file name (--disk FILE[,format=raw|qcow2])");
    }
    memcpy(d.path, spec, plen);
    d.path[plen] = '\0';
    while (comma) {
        const char *kv = comma + 1;
        comma = strchr(kv, ',');
        size_t n = comma ? (size_t)(comma - kv) : strlen(kv);
        char opt[64];
        if (n >= sizeof(opt)) {
            return mst_bad(why, len, "option '%.*s' is too long", (int)n, kv);
        }
        memcpy(opt, kv, n);
        opt[n] = '\0';
        if (!strncmp(opt, "format=", 7)) {
            enum image_format f;
            if (image_format_parse(opt + 7, &f) < 0) {
                return mst_bad(why, len, "unknown format '%s' (use raw, qcow2, vmdk or vdi)",
                               opt + 7);
            }
            d.format = (int)f;
        } else if (!strcmp(opt, "readonly=on") || !strcmp(opt, "readonly")) {
            d.readonly = true;
        } else if (!strcmp(opt, "readonly=off")) {
            d.readonly = false;
        } else {
            return mst_bad(why, len, "unknown option '%s' (use format=FMT, readonly=on)", opt);
        }
    }
    sc->drives[sc->ndrives++] = d;
    return 0;
}

int machine_storage_parse_cdrom(struct machine_storage_config *sc, const char *path, char *why,
                                size_t len)
{
    if (sc->ndrives >= MACHINE_STORAGE_MAX) {
        return mst_bad(why, len, "at most %d SATA drives (--disk and --cdrom together)",
                       MACHINE_STORAGE_MAX);
    }
    struct machine_storage_drive d = {.format = IMAGE_FORMAT_RAW, .cdrom = true, .readonly = true};
    if (strlen(path) >= sizeof(d.path)) {
        return mst_bad(why, len, "file name too long");
    }
    snprintf(d.path, sizeof(d.path), "%s", path);
    sc->drives[sc->ndrives++] = d;
    return 0;
}

int machine_storage_boot_paths(const struct machine_storage_config *sc, bool cdrom, char *out,
                               size_t len)
{
    int n = 0;
    size_t used = 0;
    if (len) {
        out[0] = '\0';
    }
    for (int i = 0; sc && i < sc->ndrives; i++) {
        if (sc->drives[i].cdrom != cdrom) {
            continue;
        }
        /* SeaBIOS globs the function name ("*@1f"); OVMF's QemuBootOrderLib only
         * translates a SATA path whose function is named by its PCI IDs, as QEMU writes. */
        char line[64];
        int w = snprintf(line, sizeof(line), "/pci@i0cf8/pci8086,2922@%x/drive@%x/disk@0\n",
                         MACHINE_STORAGE_SLOT, i);
        if (w > 0 && used + (size_t)w < len) {
            memcpy(out + used, line, (size_t)w + 1);
            used += (size_t)w;
            n++;
        }
    }
    return n;
}

static void mst_err(struct machine_error *err, bool user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mst_err(struct machine_error *err, bool user, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->user = user;
}

static int mst_pread(void *o, void *buf, uint64_t len, uint64_t off)
{
    return image_pread(o, buf, len, off);
}

static int mst_pwrite(void *o, const void *buf, uint64_t len, uint64_t off)
{
    return image_pwrite(o, buf, len, off);
}

static int mst_flush(void *o)
{
    return image_flush(o);
}

static struct storage_backend mst_backend(struct image *img, bool readonly)
{
    bool ro = readonly || !image_is_writable(img);
    return (struct storage_backend){.opaque = img,
                                    .pread = mst_pread,
                                    .pwrite = ro ? NULL : mst_pwrite,
                                    .flush = mst_flush,
                                    .length = image_length(img),
                                    .readonly = ro};
}

static void mst_irq_cb(void *opaque, int line, int level)
{
    machine_irq_set(opaque, (uint32_t)line, level);
}

static int mst_msi_cb(void *opaque, uint64_t addr, uint32_t data)
{
    return machine_msi(opaque, addr, data);
}

int machine_storage_add(struct machine *m, struct machine_error *err)
{
    const struct machine_storage_config *sc = m->cfg.storage;
    if (!sc || sc->ndrives == 0) {
        return 0;
    }
    struct machine_storage *ms = calloc(1, sizeof(*ms));
    if (!ms || pthread_mutex_init(&ms->lock, NULL) != 0) {
        free(ms);
        mst_err(err, false, "machine: out of memory");
        return -ENOMEM;
    }
    m->storage = ms;
    ms->ahci = ahci_new(&m->mem);
    if (!ms->ahci) {
        mst_err(err, false, "machine: out of memory creating the AHCI controller");
        return -ENOMEM;
    }
    for (int i = 0; i < sc->ndrives; i++) {
        const struct machine_storage_drive *d = &sc->drives[i];
        char why[IMAGE_ERR_LEN];
        struct image *img = NULL;
        int rc = 0;
        if (d->path[0]) {
            rc = image_open(d->path, (enum image_format)d->format,
                            d->readonly ? 0 : IMAGE_OPEN_RDWR, &img, why, sizeof(why));
            if (rc < 0) {
                mst_err(err, true, "%s: %s", d->cdrom ? "--cdrom" : "--disk", why);
                return rc;
            }
        }
        ms->images[i] = img;
        ms->cdrom[i] = d->cdrom;
        ms->nports = i + 1;
        struct storage_backend be =
            img ? mst_backend(img, d->readonly) : (struct storage_backend){0};
        if (d->cdrom) {
            rc = ahci_attach_cdrom(ms->ahci, i, img ? &be : NULL);
        } else {
            char serial[24];
            snprintf(serial, sizeof(serial), "LODGE-SATA%d", i);
            rc = ahci_attach_disk(ms->ahci, i, &be, serial);
        }
        if (rc < 0) {
            mst_err(err, false, "machine: cannot attach %s to AHCI port %d", d->path, i);
            return rc;
        }
        log_info(MST_TAG, "ahci port %d: %s %s%s", i, d->cdrom ? "cdrom" : "disk",
                 d->path[0] ? d->path : "(empty)", be.readonly ? " (read-only)" : "");
    }
    struct pci_dev *pd = ahci_pci(ms->ahci);
    int slot = MACHINE_STORAGE_SLOT;
    int rc = pci_dev_set_bar_default(pd, AHCI_ABAR, MACHINE_STORAGE_ABAR);
    pci_dev_set_default_command(pd, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    struct irq_line intx = {.set = mst_irq_cb, .opaque = m, .line = pci_dev_intx_gsi(slot, 1)};
    struct pci_msi_sink msi = {.send = mst_msi_cb, .opaque = m};
    pci_dev_attach(pd, m->pio, m->mmio, &intx, &msi);
    if (rc == 0) {
        rc = pci_host_add_device(m->pci_host, slot, 0, &pci_dev_config_ops, pd);
    }
    if (rc < 0) {
        mst_err(err, false, "machine: cannot place the AHCI controller at 00:%02x.0: %s", slot,
                strerror(-rc));
        return rc;
    }
    ahci_device_ops.reset(ms->ahci);
    return 0;
}

void machine_storage_reset(struct machine *m)
{
    if (m->storage && m->storage->ahci) {
        ahci_device_ops.reset(m->storage->ahci);
    }
}

void machine_storage_free(struct machine *m)
{
    struct machine_storage *ms = m->storage;
    if (!ms) {
        return;
    }
    ahci_free(ms->ahci);
    for (int i = 0; i < MACHINE_STORAGE_MAX; i++) {
        if (ms->images[i]) {
            image_flush(ms->images[i]);
            image_close(ms->images[i]);
        }
    }
    pthread_mutex_destroy(&ms->lock);
    free(ms);
    m->storage = NULL;
}

/* Port of the n-th CD-ROM drive, or -1. */
static int mst_cdrom_port(const struct machine_storage *ms, int n)
{
    for (int i = 0; i < ms->nports; i++) {
        if (ms->cdrom[i] && n-- == 0) {
            return i;
        }
    }
    return -1;
}

int machine_cdrom_eject(struct machine *m, int n, bool force, char *why, size_t len)
{
    struct machine_storage *ms = m->storage;
    int port = ms ? mst_cdrom_port(ms, n) : -1;
    if (port < 0) {
        snprintf(why, len, "no CD-ROM drive %d", n);
        return -ENODEV;
    }
    pthread_mutex_lock(&ms->lock);
    int rc = ahci_cdrom_eject(ms->ahci, port, force);
    if (rc == 0 && ms->images[port]) {
        image_close(ms->images[port]);
        ms->images[port] = NULL;
    } else if (rc == -EBUSY) {
        snprintf(why, len, "the guest has locked the CD-ROM tray (use force)");
    }
    pthread_mutex_unlock(&ms->lock);
    return rc;
}

int machine_cdrom_insert(struct machine *m, int n, const char *path, char *why, size_t len)
{
    struct machine_storage *ms = m->storage;
    int port = ms ? mst_cdrom_port(ms, n) : -1;
    if (port < 0) {
        snprintf(why, len, "no CD-ROM drive %d", n);
        return -ENODEV;
    }
    struct image *img = NULL;
    char ierr[IMAGE_ERR_LEN];
    int rc = image_open(path, IMAGE_FORMAT_RAW, 0, &img, ierr, sizeof(ierr));
    if (rc < 0) {
        snprintf(why, len, "%s", ierr);
        return rc;
    }
    pthread_mutex_lock(&ms->lock);
    rc = ahci_cdrom_eject(ms->ahci, port, true);
    struct storage_backend be = mst_backend(img, true);
    if (rc == 0) {
        rc = ahci_cdrom_insert(ms->ahci, port, &be);
    }
    if (rc == 0) {
        if (ms->images[port]) {
            image_close(ms->images[port]);
        }
        ms->images[port] = img;
    } else {
        image_close(img);
        snprintf(why, len, "cannot insert %s: %s", path, strerror(-rc));
    }
    pthread_mutex_unlock(&ms->lock);
    return rc;
}
