/* fw_cfg: see fw_cfg.h. */
#include "devices/pc/fw_cfg.h"

#include "core/guestmem.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FW_CFG_TAG "dev.fw_cfg"
#define FW_CFG_DMA_CHUNK 4096u

typedef void (*fw_cfg_hook_fn)(void *opaque, struct fw_cfg *fc);

struct fw_cfg_item {
    uint8_t *data;       /* contents, owned */
    size_t len;          /* bytes */
    fw_cfg_hook_fn hook; /* select hook (files only), or NULL */
    void *hook_opaque;
};

struct fw_cfg_file {
    char name[FW_CFG_NAME_LEN]; /* NUL-terminated path, e.g. "etc/e820" */
    struct fw_cfg_item item;
};

struct fw_cfg {
    pthread_mutex_t lock;                          /* everything below */
    const struct guestmem *mem;                    /* DMA target, NULL: no DMA */
    struct fw_cfg_item generic[FW_CFG_FILE_FIRST]; /* keys 0x00..0x1f */
    struct fw_cfg_item arch[FW_CFG_MAX_ITEMS];     /* keys 0x8000..0x83ff */
    struct fw_cfg_file *files;                     /* sorted by name; key 0x20 + index */
    int nfiles;
    uint16_t cur_key; /* selector register (fw_cfg.rst) */
    uint32_t cur_off; /* data register's read offset */
    uint32_t dma_hi;  /* DMA address register, high dword */
};

static uint16_t fw_cfg_be16(uint16_t v)
{
    return (uint16_t)((v >> 8) | (v << 8));
}

static uint32_t fw_cfg_be32(uint32_t v)
{
    return __builtin_bswap32(v);
}

static uint64_t fw_cfg_be64(uint64_t v)
{
    return __builtin_bswap64(v);
}

/* Item for a selector value, or NULL. Lock held. */
static struct fw_cfg_item *fw_cfg_item_at(struct fw_cfg *fc, uint16_t key)
{
    uint16_t k = key & FW_CFG_KEY_MASK;
    if (key & FW_CFG_ARCH_LOCAL) {
        return k < FW_CFG_MAX_ITEMS ? &fc->arch[k] : NULL;
    }
    if (k < FW_CFG_FILE_FIRST) {
        return &fc->generic[k];
    }
    int idx = k - FW_CFG_FILE_FIRST;
    return idx < fc->nfiles ? &fc->files[idx].item : NULL;
}

static int fw_cfg_item_set(struct fw_cfg_item *it, const void *data, size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            return -ENOMEM;
        }
        memcpy(copy, data, len);
    }
    free(it->data);
    it->data = copy;
    it->len = len;
    return 0;
}

/* FW_CFG_FILE_DIR from the file list. Lock held. */
static int fw_cfg_rebuild_dir(struct fw_cfg *fc)
{
    size_t len = 4 + (size_t)fc->nfiles * 64;
    uint8_t *dir = calloc(1, len);
    if (!dir) {
        return -ENOMEM;
    }
    uint32_t n = fw_cfg_be32((uint32_t)fc->nfiles);
    memcpy(dir, &n, 4);
    for (int i = 0; i < fc->nfiles; i++) {
        uint8_t *e = dir + 4 + (size_t)i * 64;
        uint32_t size = fw_cfg_be32((uint32_t)fc->files[i].item.len);
        uint16_t sel = fw_cfg_be16((uint16_t)(FW_CFG_FILE_FIRST + i));
        memcpy(e, &size, 4);
        memcpy(e + 4, &sel, 2);
        memcpy(e + 8, fc->files[i].name, FW_CFG_NAME_LEN);
    }
    struct fw_cfg_item *it = &fc->generic[FW_CFG_FILE_DIR];
    free(it->data);
    it->data = dir;
    it->len = len;
    return 0;
}

struct fw_cfg *fw_cfg_new(const struct guestmem *mem)
{
    struct fw_cfg *fc = calloc(1, sizeof(*fc));
    if (!fc) {
        return NULL;
    }
    pthread_mutex_init(&fc->lock, NULL);
    fc->mem = mem;
    uint32_t id = FW_CFG_VERSION_TRADITIONAL | (mem ? FW_CFG_VERSION_DMA : 0);
    if (fw_cfg_add_bytes(fc, FW_CFG_SIGNATURE, "QEMU", 4) < 0 ||
        fw_cfg_add_i32(fc, FW_CFG_ID, id) < 0 || fw_cfg_rebuild_dir(fc) < 0) {
        fw_cfg_free(fc);
        return NULL;
    }
    return fc;
}

void fw_cfg_free(struct fw_cfg *fc)
{
    if (!fc) {
        return;
    }
    for (int i = 0; i < FW_CFG_FILE_FIRST; i++) {
        free(fc->generic[i].data);
    }
    for (int i = 0; i < FW_CFG_MAX_ITEMS; i++) {
        free(fc->arch[i].data);
    }
    for (int i = 0; i < fc->nfiles; i++) {
        free(fc->files[i].item.data);
    }
    free(fc->files);
    pthread_mutex_destroy(&fc->lock);
    free(fc);
}

int fw_cfg_add_bytes(struct fw_cfg *fc, uint16_t key, const void *data, size_t len)
{
    if ((key & FW_CFG_WRITE_FLAG) || len > UINT32_MAX ||
        (!(key & FW_CFG_ARCH_LOCAL) && (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)) ||
        ((key & FW_CFG_ARCH_LOCAL) && (key & FW_CFG_KEY_MASK) >= FW_CFG_MAX_ITEMS)) {
        return -EINVAL;
    }
    pthread_mutex_lock(&fc->lock);
    int rc = fw_cfg_item_set(fw_cfg_item_at(fc, key), data, len);
    pthread_mutex_unlock(&fc->lock);
    return rc;
}

int fw_cfg_add_i16(struct fw_cfg *fc, uint16_t key, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return fw_cfg_add_bytes(fc, key, b, sizeof(b));
}

int fw_cfg_add_i32(struct fw_cfg *fc, uint16_t key, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    return fw_cfg_add_bytes(fc, key, b, sizeof(b));
}

int fw_cfg_add_i64(struct fw_cfg *fc, uint16_t key, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    return fw_cfg_add_bytes(fc, key, b, sizeof(b));
}

/* Index of name in the sorted list, or -(insertion point) - 1. Lock held. */
static int fw_cfg_find_file(struct fw_cfg *fc, const char *name)
{
    int lo = 0, hi = fc->nfiles;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(fc->files[mid].name, name);
        if (c == 0) {
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -lo - 1;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len)
{
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= FW_CFG_NAME_LEN || len > UINT32_MAX) {
        return -EINVAL;
    }
    pthread_mutex_lock(&fc->lock);
    int rc;
    int idx = fw_cfg_find_file(fc, name);
    if (idx >= 0) {
        rc = fw_cfg_item_set(&fc->files[idx].item, data, len);
    } else if (fc->nfiles >= FW_CFG_MAX_FILES) {
        rc = -ENOSPC;
    } else {
        idx = -idx - 1;
        struct fw_cfg_file *nf = realloc(fc->files, sizeof(*nf) * (size_t)(fc->nfiles + 1));
        if (!nf) {
            rc = -ENOMEM;
        } else {
            fc->files = nf;
            memmove(&nf[idx + 1], &nf[idx], sizeof(*nf) * (size_t)(fc->nfiles - idx));
            memset(&nf[idx], 0, sizeof(*nf));
            memcpy(nf[idx].name, name, nlen + 1);
            fc->nfiles++;
            rc = fw_cfg_item_set(&nf[idx].item, data, len);
        }
    }
    if (rc == 0) {
        rc = fw_cfg_rebuild_dir(fc);
    }
    pthread_mutex_unlock(&fc->lock);
    return rc;
}

int fw_cfg_set_select_hook(struct fw_cfg *fc, const char *name,
                           void (*hook)(void *opaque, struct fw_cfg *fc), void *opaque)
{
    pthread_mutex_lock(&fc->lock);
    int idx = fw_cfg_find_file(fc, name);
    if (idx >= 0) {
        fc->files[idx].item.hook = hook;
        fc->files[idx].item.hook_opaque = opaque;
    }
    pthread_mutex_unlock(&fc->lock);
    return idx >= 0 ? 0 : -ENOENT;
}

const uint8_t *fw_cfg_get_file(struct fw_cfg *fc, const char *name, size_t *len)
{
    pthread_mutex_lock(&fc->lock);
    int idx = fw_cfg_find_file(fc, name);
    const uint8_t *p = NULL;
    if (idx >= 0) {
        p = fc->files[idx].item.data;
        *len = fc->files[idx].item.len;
    }
    pthread_mutex_unlock(&fc->lock);
    return p;
}

const uint8_t *fw_cfg_get_item(struct fw_cfg *fc, uint16_t key, size_t *len)
{
    pthread_mutex_lock(&fc->lock);
    struct fw_cfg_item *it = fw_cfg_item_at(fc, key);
    const uint8_t *p = it && it->len ? it->data : NULL;
    if (p) {
        *len = it->len;
    }
    pthread_mutex_unlock(&fc->lock);
    return p;
}

/* Selector write: run the file's hook first (lock released), then select. */
static void fw_cfg_select(struct fw_cfg *fc, uint16_t key)
{
    pthread_mutex_lock(&fc->lock);
    struct fw_cfg_item *it = fw_cfg_item_at(fc, key);
    fw_cfg_hook_fn hook = it ? it->hook : NULL;
    void *hop = it ? it->hook_opaque : NULL;
    pthread_mutex_unlock(&fc->lock);
    if (hook) {
        hook(hop, fc);
    }
    pthread_mutex_lock(&fc->lock);
    fc->cur_key = key;
    fc->cur_off = 0;
    pthread_mutex_unlock(&fc->lock);
    log_trace(FW_CFG_TAG, "select 0x%04x", key);
}

/* One data byte; 0 past the end or for an unknown item. Lock held. */
static uint8_t fw_cfg_next_byte(struct fw_cfg *fc)
{
    struct fw_cfg_item *it = fw_cfg_item_at(fc, fc->cur_key);
    if (!it || fc->cur_off >= it->len) {
        return 0;
    }
    return it->data[fc->cur_off++];
}

/* Copy len bytes of the selected item to guest memory at gpa (zeros past its end),
 * or skip them. False when a guest byte is outside RAM. Lock held. */
static bool fw_cfg_dma_read(struct fw_cfg *fc, uint64_t gpa, uint32_t len, bool skip)
{
    struct fw_cfg_item *it = fw_cfg_item_at(fc, fc->cur_key);
    uint8_t zero[FW_CFG_DMA_CHUNK];
    memset(zero, 0, sizeof(zero));
    while (len) {
        uint32_t n = len < FW_CFG_DMA_CHUNK ? len : FW_CFG_DMA_CHUNK;
        const uint8_t *src = zero;
        if (it && fc->cur_off < it->len) {
            size_t avail = it->len - fc->cur_off;
            if (n > avail) {
                n = (uint32_t)avail;
            }
            src = it->data + fc->cur_off;
        }
        if (!skip) {
            if (gpa + n < gpa || guestmem_write(fc->mem, gpa, src, n) < 0) {
                return false;
            }
        }
        if (it && fc->cur_off < it->len) {
            fc->cur_off += n;
        }
        gpa += n;
        len -= n;
    }
    return true;
}

/* The transfer described by the FWCfgDmaAccess at gpa (fw_cfg.rst "DMA interface"). */
static void fw_cfg_dma(struct fw_cfg *fc, uint64_t gpa)
{
    uint8_t d[16];
    if (!fc->mem || gpa + sizeof(d) < gpa || guestmem_read(fc->mem, gpa, d, sizeof(d)) < 0) {
        log_warn(FW_CFG_TAG, "DMA descriptor at 0x%llx is outside RAM", (unsigned long long)gpa);
        return;
    }
    uint32_t control, length;
    uint64_t addr;
    memcpy(&control, d, 4);
    memcpy(&length, d + 4, 4);
    memcpy(&addr, d + 8, 8);
    control = fw_cfg_be32(control);
    length = fw_cfg_be32(length);
    addr = fw_cfg_be64(addr);
    if (control & FW_CFG_DMA_SELECT) {
        fw_cfg_select(fc, (uint16_t)(control >> 16));
    }
    pthread_mutex_lock(&fc->lock);
    bool ok = true;
    if (control & FW_CFG_DMA_READ) {
        ok = fw_cfg_dma_read(fc, addr, length, false);
    } else if (control & FW_CFG_DMA_WRITE) {
        ok = false; /* every item is read-only */
    } else if (control & FW_CFG_DMA_SKIP) {
        ok = fw_cfg_dma_read(fc, addr, length, true);
    }
    pthread_mutex_unlock(&fc->lock);
    uint32_t result = fw_cfg_be32(ok ? 0 : FW_CFG_DMA_ERROR);
    if (!ok) {
        log_debug(FW_CFG_TAG, "DMA control 0x%x len %u to 0x%llx failed", control, length,
                  (unsigned long long)addr);
    }
    (void)guestmem_write(fc->mem, gpa, &result, 4);
}

uint64_t fw_cfg_read(struct fw_cfg *fc, uint64_t off, unsigned size)
{
    uint64_t v = 0;
    if (off == FW_CFG_OFF_DATA) {
        pthread_mutex_lock(&fc->lock);
        for (unsigned i = 0; i < size; i++) {
            v |= (uint64_t)fw_cfg_next_byte(fc) << (8 * i);
        }
        pthread_mutex_unlock(&fc->lock);
        return v;
    }
    if (off >= FW_CFG_OFF_DMA_HI && off < FW_CFG_OFF_DMA_HI + 8 && fc->mem) {
        /* The register reads as the big-endian signature, byte by byte. */
        for (unsigned i = 0; i < size && off + i < FW_CFG_OFF_DMA_HI + 8; i++) {
            unsigned b = (unsigned)(off + i - FW_CFG_OFF_DMA_HI);
            v |= ((FW_CFG_DMA_SIGNATURE >> (8 * (7 - b))) & 0xff) << (8 * i);
        }
        return v;
    }
    return 0;
}

void fw_cfg_write(struct fw_cfg *fc, uint64_t off, uint64_t val, unsigned size)
{
    if (off == FW_CFG_OFF_SELECTOR && size >= 2) {
        fw_cfg_select(fc, (uint16_t)val);
        return;
    }
    if (!fc->mem) {
        return;
    }
    if (off == FW_CFG_OFF_DMA_HI && size == 8) {
        fw_cfg_dma(fc, fw_cfg_be64(val));
    } else if (off == FW_CFG_OFF_DMA_HI && size == 4) {
        pthread_mutex_lock(&fc->lock);
        fc->dma_hi = fw_cfg_be32((uint32_t)val);
        pthread_mutex_unlock(&fc->lock);
    } else if (off == FW_CFG_OFF_DMA_LO && size == 4) {
        pthread_mutex_lock(&fc->lock);
        uint64_t gpa = (uint64_t)fc->dma_hi << 32 | fw_cfg_be32((uint32_t)val);
        fc->dma_hi = 0;
        pthread_mutex_unlock(&fc->lock);
        fw_cfg_dma(fc, gpa);
    }
}

static uint64_t fw_cfg_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return fw_cfg_read(opaque, off, size);
}

static void fw_cfg_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    fw_cfg_write(opaque, off, val, size);
}

const struct bus_ops fw_cfg_bus_ops = {.read = fw_cfg_bus_read, .write = fw_cfg_bus_write};

static void fw_cfg_reset(void *dev)
{
    struct fw_cfg *fc = dev;
    pthread_mutex_lock(&fc->lock);
    fc->cur_key = 0;
    fc->cur_off = 0;
    fc->dma_hi = 0;
    pthread_mutex_unlock(&fc->lock);
}

const struct device_ops fw_cfg_device_ops = {.name = "fw_cfg", .reset = fw_cfg_reset};

/* ---- table loader ---------------------------------------------------------------- */

static uint8_t *fw_cfg_loader_cmd(struct fw_cfg_loader *l, uint32_t type)
{
    if (l->error) {
        return NULL;
    }
    uint8_t *nb = realloc(l->buf, l->len + FW_CFG_LOADER_CMD_SIZE);
    if (!nb) {
        l->error = -ENOMEM;
        return NULL;
    }
    l->buf = nb;
    uint8_t *c = nb + l->len;
    l->len += FW_CFG_LOADER_CMD_SIZE;
    memset(c, 0, FW_CFG_LOADER_CMD_SIZE);
    for (int i = 0; i < 4; i++) {
        c[i] = (uint8_t)(type >> (8 * i));
    }
    return c;
}

static void fw_cfg_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static bool fw_cfg_loader_name(struct fw_cfg_loader *l, uint8_t *dst, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= FW_CFG_NAME_LEN) {
        l->error = -EINVAL;
        return false;
    }
    memcpy(dst, name, n);
    return true;
}

void fw_cfg_loader_allocate(struct fw_cfg_loader *l, const char *file, uint32_t align, uint8_t zone)
{
    uint8_t *c = fw_cfg_loader_cmd(l, FW_CFG_LOADER_ALLOCATE);
    if (c && fw_cfg_loader_name(l, c + 4, file)) {
        fw_cfg_put32(c + 4 + FW_CFG_NAME_LEN, align);
        c[8 + FW_CFG_NAME_LEN] = zone;
    }
}

void fw_cfg_loader_add_pointer(struct fw_cfg_loader *l, const char *dest_file, const char *src_file,
                               uint32_t offset, uint8_t size)
{
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        l->error = l->error ? l->error : -EINVAL;
        return;
    }
    uint8_t *c = fw_cfg_loader_cmd(l, FW_CFG_LOADER_ADD_POINTER);
    if (c && fw_cfg_loader_name(l, c + 4, dest_file) &&
        fw_cfg_loader_name(l, c + 4 + FW_CFG_NAME_LEN, src_file)) {
        fw_cfg_put32(c + 4 + 2 * FW_CFG_NAME_LEN, offset);
        c[8 + 2 * FW_CFG_NAME_LEN] = size;
    }
}

void fw_cfg_loader_add_checksum(struct fw_cfg_loader *l, const char *file, uint32_t offset,
                                uint32_t start, uint32_t length)
{
    uint8_t *c = fw_cfg_loader_cmd(l, FW_CFG_LOADER_ADD_CHECKSUM);
    if (c && fw_cfg_loader_name(l, c + 4, file)) {
        fw_cfg_put32(c + 4 + FW_CFG_NAME_LEN, offset);
        fw_cfg_put32(c + 8 + FW_CFG_NAME_LEN, start);
        fw_cfg_put32(c + 12 + FW_CFG_NAME_LEN, length);
    }
}

void fw_cfg_loader_free(struct fw_cfg_loader *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = 0;
}
