/* PCI function machinery: config space, BAR decoding onto the buses, capability
 * list, MSI, MSI-X and INTx (PCI Local Bus 3.0, chapter 6). */
#include "devices/pci/pci_dev.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCI_DEV_TAG "dev.pci"

#define PCI_ROM_ADDRESS 0x30
#define PCI_ROM_ENABLE 0x1u           /* ROM BAR bit 0: Expansion ROM Enable */
#define PCI_ROM_ADDR_MASK 0xfffff800u /* ROM BAR bits 31:11 (PCI 3.0 6.2.5.2) */
#define PCI_ROM_MIN_SIZE 0x800u
#define PCI_ROM_MAX_SIZE (16u << 20)
#define PCI_BAR_IO_LIMIT 0x10000ull
#define PCI_BAR_MEM64_LIMIT (1ull << 52) /* x86 physical address width at most */

static uint32_t cfg_u32(const struct pci_config *c, unsigned off)
{
    return pci_config_read(c, off, 4);
}

static uint16_t cfg_u16(const struct pci_config *c, unsigned off)
{
    return (uint16_t)pci_config_read(c, off, 2);
}

static void pci_dev_snapshot_reset(struct pci_dev *d)
{
    memcpy(d->reset_data, d->cfg.data, PCI_CONFIG_SIZE);
}

int pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
                 uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id, uint8_t intx_pin)
{
    memset(d, 0, sizeof(*d));
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        return -ENOMEM;
    }
    pci_config_init(&d->cfg, vendor, device, class_code, revision, 0x00);
    pci_config_set_u16(&d->cfg, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
    pci_config_set_u16(&d->cfg, PCI_SUBSYSTEM_ID, subsys_id);
    pci_config_set_u8(&d->cfg, PCI_INTERRUPT_PIN, intx_pin > 4 ? 0 : intx_pin);
    if (intx_pin == 0) {
        d->cfg.wmask[PCI_INTERRUPT_LINE] = 0;
    }
    d->cap_free = PCI_DEV_CAP_START;
    d->msix_bar = -1;
    for (int i = 0; i < PCI_DEV_NUM_BARS; i++) {
        d->bars[i].d = d;
    }
    pci_dev_snapshot_reset(d);
    return 0;
}

static void pci_dev_unmap_all(struct pci_dev *d);

void pci_dev_destroy(struct pci_dev *d)
{
    pthread_mutex_lock(&d->lock);
    pci_dev_unmap_all(d);
    pthread_mutex_unlock(&d->lock);
    free(d->msix_table);
    free(d->msix_pba);
    free(d->rom);
    d->msix_table = NULL;
    d->msix_pba = NULL;
    d->rom = NULL;
    pthread_mutex_destroy(&d->lock);
}

void pci_dev_attach(struct pci_dev *d, struct bus *pio, struct bus *mmio,
                    const struct irq_line *intx, const struct pci_msi_sink *msi)
{
    pthread_mutex_lock(&d->lock);
    d->pio = pio;
    d->mmio = mmio;
    if (intx) {
        d->intx = *intx;
        /* What firmware would program: the line the PIRQ router sends INTx to. */
        if (d->cfg.data[PCI_INTERRUPT_PIN] && intx->line >= 0 && intx->line < 0xff) {
            d->cfg.data[PCI_INTERRUPT_LINE] = (uint8_t)intx->line;
            pci_dev_snapshot_reset(d);
        }
    }
    if (msi) {
        d->msi = *msi;
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- BARs ---------------------------------------------------------------------------- */

static uint64_t pci_bar_trampoline_read(void *opaque, uint64_t off, unsigned size)
{
    struct pci_dev_bar *b = opaque;
    return pci_dev_bar_read(b->d, (int)(b - b->d->bars), off, size);
}

static void pci_bar_trampoline_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pci_dev_bar *b = opaque;
    pci_dev_bar_write(b->d, (int)(b - b->d->bars), off, val, size);
}

static const struct bus_ops pci_bar_trampoline_ops = {.read = pci_bar_trampoline_read,
                                                      .write = pci_bar_trampoline_write};

int pci_dev_add_bar(struct pci_dev *d, int idx, enum pci_bar_type type, uint64_t size,
                    const struct bus_ops *ops, void *opaque, const char *name)
{
    if (idx < 0 || idx >= PCI_DEV_NUM_BARS || type == PCI_BAR_NONE || size == 0 ||
        (size & (size - 1)) || (type == PCI_BAR_MEM64 && idx == PCI_DEV_NUM_BARS - 1) ||
        (type == PCI_BAR_IO && (size < 4 || size > 256)) || (type != PCI_BAR_IO && size < 16) ||
        (type == PCI_BAR_MEM32 && size > (1ull << 31))) {
        return -EINVAL;
    }
    if (d->bars[idx].type != PCI_BAR_NONE ||
        (type == PCI_BAR_MEM64 && d->bars[idx + 1].type != PCI_BAR_NONE) ||
        (idx > 0 && d->bars[idx - 1].type == PCI_BAR_MEM64)) {
        return -EEXIST;
    }
    struct pci_dev_bar *b = &d->bars[idx];
    b->type = type;
    b->size = size;
    b->ops = ops;
    b->opaque = opaque;
    snprintf(b->name, sizeof(b->name), "%s", name ? name : "pci-bar");
    unsigned reg = PCI_BAR0 + 4 * (unsigned)idx;
    uint64_t mask = ~(size - 1);
    uint32_t low_flags = type == PCI_BAR_IO ? 0x1 : type == PCI_BAR_MEM64 ? 0x4 : 0x0;
    uint32_t low_mask = (uint32_t)mask & (type == PCI_BAR_IO ? ~0x3u : ~0xfu);
    pci_config_set_u32(&d->cfg, reg, low_flags);
    for (unsigned i = 0; i < 4; i++) {
        d->cfg.wmask[reg + i] = (uint8_t)(low_mask >> (8 * i));
    }
    if (type == PCI_BAR_MEM64) {
        uint32_t high_mask = (uint32_t)(mask >> 32);
        pci_config_set_u32(&d->cfg, reg + 4, 0);
        for (unsigned i = 0; i < 4; i++) {
            d->cfg.wmask[reg + 4 + i] = (uint8_t)(high_mask >> (8 * i));
        }
    }
    pci_dev_snapshot_reset(d);
    return 0;
}

int pci_dev_set_bar_default(struct pci_dev *d, int idx, uint64_t base)
{
    if (idx < 0 || idx >= PCI_DEV_NUM_BARS || d->bars[idx].type == PCI_BAR_NONE ||
        (base & (d->bars[idx].size - 1))) {
        return -EINVAL;
    }
    unsigned reg = PCI_BAR0 + 4 * (unsigned)idx;
    uint32_t flags = cfg_u32(&d->cfg, reg) & (d->bars[idx].type == PCI_BAR_IO ? 0x3u : 0xfu);
    pci_config_set_u32(&d->cfg, reg, (uint32_t)base | flags);
    if (d->bars[idx].type == PCI_BAR_MEM64) {
        pci_config_set_u32(&d->cfg, reg + 4, (uint32_t)(base >> 32));
    }
    pci_dev_snapshot_reset(d);
    return 0;
}

void pci_dev_set_default_command(struct pci_dev *d, uint16_t cmd)
{
    pci_config_set_u16(&d->cfg, PCI_COMMAND, cmd);
    pci_dev_snapshot_reset(d);
}

/* ---- expansion ROM ------------------------------------------------------------------ */

static uint64_t pci_rom_read(void *opaque, uint64_t off, unsigned size)
{
    const struct pci_dev *d = opaque;
    uint64_t v = 0;
    /* The image never changes after pci_dev_set_rom: no lock needed. Bytes past it
     * (the BAR is rounded up to a power of two) read as zero. */
    for (unsigned i = 0; i < size && i < 8; i++) {
        if (off + i < d->rom_len) {
            v |= (uint64_t)d->rom[off + i] << (8 * i);
        }
    }
    return v;
}

static void pci_rom_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    (void)opaque;
    (void)off;
    (void)val;
    (void)size; /* read-only memory: writes are dropped */
}

static const struct bus_ops pci_rom_ops = {.read = pci_rom_read, .write = pci_rom_write};

int pci_dev_set_rom(struct pci_dev *d, const void *image, size_t len)
{
    if (!image || len == 0 || len > PCI_ROM_MAX_SIZE) {
        return -EINVAL;
    }
    if (d->rom) {
        return -EEXIST;
    }
    uint64_t size = PCI_ROM_MIN_SIZE;
    while (size < len) {
        size <<= 1;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        return -ENOMEM;
    }
    memcpy(copy, image, len);
    pthread_mutex_lock(&d->lock);
    d->rom = copy;
    d->rom_len = len;
    d->rom_size = size;
    uint32_t wmask = ((uint32_t) ~(size - 1) & PCI_ROM_ADDR_MASK) | PCI_ROM_ENABLE;
    pci_config_set_u32(&d->cfg, PCI_ROM_ADDRESS, 0);
    for (unsigned i = 0; i < 4; i++) {
        d->cfg.wmask[PCI_ROM_ADDRESS + i] = (uint8_t)(wmask >> (8 * i));
    }
    pci_dev_snapshot_reset(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* Where the ROM BAR decodes, like pci_bar_wanted: false when it is off. */
static bool pci_rom_wanted(const struct pci_dev *d, uint64_t *base)
{
    uint32_t reg = cfg_u32(&d->cfg, PCI_ROM_ADDRESS);
    uint64_t a = reg & PCI_ROM_ADDR_MASK;
    if (!d->rom || !(cfg_u16(&d->cfg, PCI_COMMAND) & PCI_COMMAND_MEMORY) ||
        !(reg & PCI_ROM_ENABLE) || a == 0 || a + d->rom_size > (1ull << 32)) {
        return false;
    }
    *base = a;
    return true;
}

/* Lock held. A ROM BAR placed over another range stays unmapped (and is retried on
 * the next config write), as a BAR does. */
static void pci_rom_update_mapping(struct pci_dev *d)
{
    uint64_t base = 0;
    bool want = d->mmio && pci_rom_wanted(d, &base);
    if (d->rom_mapped && want && d->rom_base == base) {
        return;
    }
    if (d->rom_mapped) {
        bus_unregister(d->mmio, d->rom_base, d);
        d->rom_mapped = false;
    }
    if (want) {
        if (bus_register(d->mmio, base, d->rom_size, &pci_rom_ops, d, "pci-rom") == 0) {
            d->rom_mapped = true;
            d->rom_base = base;
            log_debug(PCI_DEV_TAG, "ROM mapped at 0x%llx", (unsigned long long)base);
        } else {
            log_warn(PCI_DEV_TAG, "ROM: cannot map at 0x%llx (overlaps another range)",
                     (unsigned long long)base);
        }
    }
}

/* Where BAR i should be mapped given the guest's programming; false when it
 * decodes nothing (decode off, unassigned, or a base that would wrap or leave
 * the address space - e.g. half-way through a sizing probe). */
static bool pci_bar_wanted(const struct pci_dev *d, int i, uint64_t *base)
{
    const struct pci_dev_bar *b = &d->bars[i];
    uint16_t cmd = cfg_u16(&d->cfg, PCI_COMMAND);
    unsigned reg = PCI_BAR0 + 4 * (unsigned)i;
    uint32_t lo = cfg_u32(&d->cfg, reg);
    uint64_t a, limit;
    switch (b->type) {
    case PCI_BAR_IO:
        if (!(cmd & PCI_COMMAND_IO)) {
            return false;
        }
        a = lo & ~0x3u;
        limit = PCI_BAR_IO_LIMIT;
        break;
    case PCI_BAR_MEM32:
        if (!(cmd & PCI_COMMAND_MEMORY)) {
            return false;
        }
        a = lo & ~0xfu;
        limit = 0xffffffffull; /* exclusive: the top page is where sizing parks a BAR */
        break;
    case PCI_BAR_MEM64:
        if (!(cmd & PCI_COMMAND_MEMORY)) {
            return false;
        }
        a = (lo & ~0xfull) | ((uint64_t)cfg_u32(&d->cfg, reg + 4) << 32);
        limit = PCI_BAR_MEM64_LIMIT;
        break;
    default:
        return false;
    }
    if (a == 0 || a + b->size < a || a + b->size > limit) {
        return false;
    }
    *base = a;
    return true;
}

static struct bus *pci_bar_bus(struct pci_dev *d, int i)
{
    return d->bars[i].type == PCI_BAR_IO ? d->pio : d->mmio;
}

/* Called with d->lock held after anything that can change decoding. */
static void pci_dev_update_mappings(struct pci_dev *d)
{
    for (int i = 0; i < PCI_DEV_NUM_BARS; i++) {
        struct pci_dev_bar *b = &d->bars[i];
        struct bus *bus = pci_bar_bus(d, i);
        if (b->type == PCI_BAR_NONE || !bus) {
            continue;
        }
        uint64_t base = 0;
        bool want = pci_bar_wanted(d, i, &base);
        if (b->mapped && want && b->base == base) {
            continue;
        }
        if (b->mapped && want) {
            if (bus_move(bus, b->base, b, base) == 0) {
                log_debug(PCI_DEV_TAG, "%s moved 0x%llx -> 0x%llx", b->name,
                          (unsigned long long)b->base, (unsigned long long)base);
                b->base = base;
                continue;
            }
        }
        if (b->mapped) {
            bus_unregister(bus, b->base, b);
            b->mapped = false;
        }
        if (want) {
            int rc = bus_register(bus, base, b->size, &pci_bar_trampoline_ops, b, b->name);
            if (rc == 0) {
                b->mapped = true;
                b->base = base;
                log_debug(PCI_DEV_TAG, "%s mapped at 0x%llx", b->name, (unsigned long long)base);
            } else {
                log_warn(PCI_DEV_TAG, "%s: cannot map at 0x%llx (overlaps another range)", b->name,
                         (unsigned long long)base);
            }
        }
    }
    pci_rom_update_mapping(d);
}

static void pci_dev_unmap_all(struct pci_dev *d)
{
    for (int i = 0; i < PCI_DEV_NUM_BARS; i++) {
        struct pci_dev_bar *b = &d->bars[i];
        if (b->mapped) {
            bus_unregister(pci_bar_bus(d, i), b->base, b);
            b->mapped = false;
        }
    }
    if (d->rom_mapped) {
        bus_unregister(d->mmio, d->rom_base, d);
        d->rom_mapped = false;
    }
}

/* ---- capabilities ------------------------------------------------------------------ */

int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
    unsigned off = (d->cap_free + 3u) & ~3u;
    if (len < 2 || off + len > PCI_CONFIG_SIZE) {
        return -ENOSPC;
    }
    pci_config_set_u8(&d->cfg, off, id);
    pci_config_set_u8(&d->cfg, off + 1, 0);
    if (d->cap_last) {
        pci_config_set_u8(&d->cfg, d->cap_last + 1u, (uint8_t)off);
    } else {
        pci_config_set_u8(&d->cfg, PCI_CAPABILITY_LIST, (uint8_t)off);
        pci_config_set_u16(&d->cfg, PCI_STATUS, cfg_u16(&d->cfg, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    }
    d->cap_last = (uint8_t)off;
    d->cap_free = (uint8_t)(off + len > 0xff ? 0xff : off + len);
    pci_dev_snapshot_reset(d);
    return (int)off;
}

int pci_dev_init_msix(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
                      uint32_t pba_off)
{
    if (nvec == 0 || nvec > PCI_MSIX_MAX_VECTORS || bar < 0 || bar >= PCI_DEV_NUM_BARS ||
        d->bars[bar].type == PCI_BAR_NONE || d->bars[bar].type == PCI_BAR_IO || (table_off & 7) ||
        (pba_off & 7) || d->msix_cap) {
        return -EINVAL;
    }
    uint64_t tlen = (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE;
    uint64_t plen = ((nvec + 63) / 64) * 8;
    uint64_t bsize = d->bars[bar].size;
    if (table_off + tlen > bsize || pba_off + plen > bsize ||
        (table_off < pba_off + plen && pba_off < table_off + tlen)) {
        return -EINVAL;
    }
    int off = pci_dev_add_cap(d, PCI_CAP_ID_MSIX, 12);
    if (off < 0) {
        return off;
    }
    d->msix_table = calloc(nvec, PCI_MSIX_ENTRY_SIZE);
    d->msix_pba = calloc((nvec + 63) / 64, sizeof(uint64_t));
    if (!d->msix_table || !d->msix_pba) {
        return -ENOMEM;
    }
    d->msix_cap = (uint8_t)off;
    d->msix_nvec = nvec;
    d->msix_bar = bar;
    d->msix_table_off = table_off;
    d->msix_pba_off = pba_off;
    pci_config_set_u16(&d->cfg, (unsigned)off + 2, (uint16_t)(nvec - 1));
    pci_config_set_u32(&d->cfg, (unsigned)off + 4, table_off | (uint32_t)bar);
    pci_config_set_u32(&d->cfg, (unsigned)off + 8, pba_off | (uint32_t)bar);
    d->cfg.wmask[off + 3] = 0xc0; /* MSI-X Enable, Function Mask */
    for (unsigned v = 0; v < nvec; v++) {
        d->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
    }
    pci_dev_snapshot_reset(d);
    return 0;
}

int pci_dev_init_msi(struct pci_dev *d)
{
    int off = pci_dev_add_cap(d, PCI_CAP_ID_MSI, 14);
    if (off < 0) {
        return off;
    }
    d->msi_cap = (uint8_t)off;
    pci_config_set_u16(&d->cfg, (unsigned)off + 2, PCI_MSI_CTRL_64BIT);
    d->cfg.wmask[off + 2] = PCI_MSI_CTRL_ENABLE;
    for (unsigned i = 4; i < 12; i++) {
        d->cfg.wmask[off + i] = 0xff;
    }
    d->cfg.wmask[off + 4] = 0xfc; /* Message Address is dword aligned */
    d->cfg.wmask[off + 12] = 0xff;
    d->cfg.wmask[off + 13] = 0xff;
    pci_dev_snapshot_reset(d);
    return 0;
}

/* ---- interrupts -------------------------------------------------------------------- */

struct pci_msg {
    uint64_t addr;
    uint32_t data;
};

static bool pci_msix_on(const struct pci_dev *d)
{
    return d->msix_cap && (cfg_u16(&d->cfg, d->msix_cap + 2u) & PCI_MSIX_CTRL_ENABLE);
}

static bool pci_msix_fmask(const struct pci_dev *d)
{
    return (cfg_u16(&d->cfg, d->msix_cap + 2u) & PCI_MSIX_CTRL_MASKALL) != 0;
}

static bool pci_msix_masked(const struct pci_dev *d, unsigned v)
{
    return pci_msix_fmask(d) ||
           (d->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static struct pci_msg pci_msix_msg(const struct pci_dev *d, unsigned v)
{
    const uint8_t *e = &d->msix_table[v * PCI_MSIX_ENTRY_SIZE];
    struct pci_msg m = {0};
    for (int i = 0; i < 8; i++) {
        m.addr |= (uint64_t)e[i] << (8 * i);
    }
    for (int i = 0; i < 4; i++) {
        m.data |= (uint32_t)e[8 + i] << (8 * i);
    }
    return m;
}

static bool pci_dev_master(const struct pci_dev *d)
{
    return (cfg_u16(&d->cfg, PCI_COMMAND) & PCI_COMMAND_MASTER) != 0;
}

/* Collects pending vectors that became deliverable (PCI 3.0 6.8.2.10: a pending
 * message is sent once its vector is unmasked). Called with the lock held. */
static unsigned pci_msix_collect_pending(struct pci_dev *d, struct pci_msg *out, unsigned max)
{
    unsigned n = 0;
    if (!pci_msix_on(d) || pci_msix_fmask(d)) {
        return 0;
    }
    for (unsigned v = 0; v < d->msix_nvec && n < max; v++) {
        uint64_t bit = 1ull << (v % 64);
        if ((d->msix_pba[v / 64] & bit) && !pci_msix_masked(d, v)) {
            d->msix_pba[v / 64] &= ~bit;
            if (pci_dev_master(d)) {
                out[n++] = pci_msix_msg(d, v);
            }
        }
    }
    return n;
}

static void pci_dev_send(struct pci_dev *d, const struct pci_msg *msgs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (d->msi.send) {
            d->msi.send(d->msi.opaque, msgs[i].addr, msgs[i].data);
        }
    }
}

bool pci_dev_msix_enabled(struct pci_dev *d)
{
    pthread_mutex_lock(&d->lock);
    bool on = pci_msix_on(d);
    pthread_mutex_unlock(&d->lock);
    return on;
}

bool pci_dev_bus_master(struct pci_dev *d)
{
    pthread_mutex_lock(&d->lock);
    bool on = pci_dev_master(d);
    pthread_mutex_unlock(&d->lock);
    return on;
}

int pci_dev_notify(struct pci_dev *d, unsigned vector)
{
    struct pci_msg msg;
    pthread_mutex_lock(&d->lock);
    if (pci_msix_on(d)) {
        if (vector >= d->msix_nvec) {
            pthread_mutex_unlock(&d->lock);
            return -EINVAL;
        }
        if (pci_msix_masked(d, vector)) {
            d->msix_pba[vector / 64] |= 1ull << (vector % 64);
            pthread_mutex_unlock(&d->lock);
            return 0;
        }
        msg = pci_msix_msg(d, vector);
    } else if (d->msi_cap && (cfg_u16(&d->cfg, d->msi_cap + 2u) & PCI_MSI_CTRL_ENABLE)) {
        msg.addr =
            cfg_u32(&d->cfg, d->msi_cap + 4u) | ((uint64_t)cfg_u32(&d->cfg, d->msi_cap + 8u) << 32);
        msg.data = cfg_u16(&d->cfg, d->msi_cap + 12u);
    } else {
        pthread_mutex_unlock(&d->lock);
        return -ENOTCONN;
    }
    bool master = pci_dev_master(d);
    pthread_mutex_unlock(&d->lock);
    if (master) {
        pci_dev_send(d, &msg, 1);
    }
    return 0;
}

/* Drives the line from intx_level and COMMAND.INTx-disable; lock held. */
static void pci_dev_apply_intx(struct pci_dev *d)
{
    uint16_t st = cfg_u16(&d->cfg, PCI_STATUS);
    st = d->intx_level ? (st | PCI_STATUS_INTERRUPT) : (st & ~PCI_STATUS_INTERRUPT);
    pci_config_set_u16(&d->cfg, PCI_STATUS, st);
    bool disabled = cfg_u16(&d->cfg, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
    if (cfg_u32(&d->cfg, PCI_INTERRUPT_PIN) & 0xff) {
        irq_set(&d->intx, d->intx_level && !disabled);
    }
}

void pci_dev_set_intx(struct pci_dev *d, int level)
{
    pthread_mutex_lock(&d->lock);
    d->intx_level = level != 0;
    pci_dev_apply_intx(d);
    pthread_mutex_unlock(&d->lock);
}

int pci_dev_intx_gsi(int slot, int pin)
{
    if (pin < 1 || pin > 4) {
        return -EINVAL;
    }
    int pirq = (slot + pin - 1) & 3;
    return pirq < 2 ? PCI_DEV_PIRQ_GSI_AB : PCI_DEV_PIRQ_GSI_CD;
}

/* ---- reset and config space -------------------------------------------------------- */

void pci_dev_reset(struct pci_dev *d)
{
    pthread_mutex_lock(&d->lock);
    /* Only guest-writable bytes change at run time (besides STATUS.Interrupt, redone
     * below); the read-only ones, capability contents included, stay as built. */
    for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++) {
        uint8_t w = d->cfg.wmask[i] | d->cfg.w1cmask[i];
        d->cfg.data[i] = (uint8_t)((d->cfg.data[i] & ~w) | (d->reset_data[i] & w));
    }
    pci_dev_unmap_all(d);
    pci_dev_update_mappings(d);
    if (d->msix_table) {
        memset(d->msix_table, 0, (size_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE);
        for (unsigned v = 0; v < d->msix_nvec; v++) {
            d->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
        }
        memset(d->msix_pba, 0, ((d->msix_nvec + 63) / 64) * sizeof(uint64_t));
    }
    d->intx_level = false;
    pci_dev_apply_intx(d);
    pthread_mutex_unlock(&d->lock);
}

uint32_t pci_dev_config_read(struct pci_dev *d, unsigned off, unsigned size)
{
    pthread_mutex_lock(&d->lock);
    uint32_t v = pci_config_read(&d->cfg, off, size);
    pthread_mutex_unlock(&d->lock);
    return v;
}

void pci_dev_config_write(struct pci_dev *d, unsigned off, uint32_t val, unsigned size)
{
    struct pci_msg pend[16];
    unsigned npend = 0;
    pthread_mutex_lock(&d->lock);
    pci_config_write(&d->cfg, off, val, size);
    if (off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) {
        pci_dev_apply_intx(d);
    }
    pci_dev_update_mappings(d);
    if (d->msix_cap && off < d->msix_cap + 4u && off + size > d->msix_cap + 2u) {
        npend = pci_msix_collect_pending(d, pend, 16);
    }
    pthread_mutex_unlock(&d->lock);
    pci_dev_send(d, pend, npend);
}

static uint32_t pci_dev_cfg_read_cb(void *opaque, unsigned off, unsigned size)
{
    return pci_dev_config_read(opaque, off, size);
}

static void pci_dev_cfg_write_cb(void *opaque, unsigned off, uint32_t val, unsigned size)
{
    pci_dev_config_write(opaque, off, val, size);
}

const struct pci_dev_ops pci_dev_config_ops = {.config_read = pci_dev_cfg_read_cb,
                                               .config_write = pci_dev_cfg_write_cb};

/* ---- BAR accesses ------------------------------------------------------------------ */

static uint64_t pci_ones(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static bool pci_in(uint64_t off, unsigned size, uint64_t start, uint64_t len)
{
    return off >= start && off < start + len && off + size <= start + len;
}

uint64_t pci_dev_bar_read(struct pci_dev *d, int bar, uint64_t off, unsigned size)
{
    if (bar < 0 || bar >= PCI_DEV_NUM_BARS || size == 0 || size > 8) {
        return ~0ull;
    }
    struct pci_dev_bar *b = &d->bars[bar];
    if (bar == d->msix_bar) {
        uint64_t tlen = (uint64_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE;
        uint64_t plen = ((d->msix_nvec + 63) / 64) * 8;
        const uint8_t *src = NULL;
        pthread_mutex_lock(&d->lock);
        if (pci_in(off, size, d->msix_table_off, tlen)) {
            src = d->msix_table + (off - d->msix_table_off);
        } else if (pci_in(off, size, d->msix_pba_off, plen)) {
            src = (const uint8_t *)d->msix_pba + (off - d->msix_pba_off);
        }
        if (src) {
            uint64_t v = 0;
            for (unsigned i = 0; i < size; i++) {
                v |= (uint64_t)src[i] << (8 * i); /* PBA words are host-endian = LE on x86 */
            }
            pthread_mutex_unlock(&d->lock);
            return v;
        }
        pthread_mutex_unlock(&d->lock);
        if (off < d->msix_table_off + tlen && off + size > d->msix_table_off) {
            return pci_ones(size); /* straddles the table edge */
        }
    }
    if (!b->ops || !b->ops->read || off >= b->size || off + size > b->size) {
        return pci_ones(size);
    }
    return b->ops->read(b->opaque, off, size);
}

void pci_dev_bar_write(struct pci_dev *d, int bar, uint64_t off, uint64_t val, unsigned size)
{
    if (bar < 0 || bar >= PCI_DEV_NUM_BARS || size == 0 || size > 8) {
        return;
    }
    struct pci_dev_bar *b = &d->bars[bar];
    if (bar == d->msix_bar) {
        uint64_t tlen = (uint64_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE;
        uint64_t plen = ((d->msix_nvec + 63) / 64) * 8;
        if (pci_in(off, size, d->msix_table_off, tlen)) {
            struct pci_msg pend[16];
            unsigned npend;
            pthread_mutex_lock(&d->lock);
            uint64_t rel = off - d->msix_table_off;
            for (unsigned i = 0; i < size; i++) {
                uint64_t o = rel + i;
                uint8_t byte = (uint8_t)(val >> (8 * i));
                if (o % PCI_MSIX_ENTRY_SIZE >= 12) {
                    /* Vector Control: only Mask Bit is defined, the rest reads 0. */
                    byte = o % PCI_MSIX_ENTRY_SIZE == 12 ? (byte & PCI_MSIX_ENTRY_CTRL_MASKBIT) : 0;
                }
                d->msix_table[o] = byte;
            }
            npend = pci_msix_collect_pending(d, pend, 16);
            pthread_mutex_unlock(&d->lock);
            pci_dev_send(d, pend, npend);
            return;
        }
        if (pci_in(off, size, d->msix_pba_off, plen)) {
            return; /* PBA is read-only */
        }
        if (off < d->msix_table_off + tlen && off + size > d->msix_table_off) {
            return;
        }
    }
    if (!b->ops || !b->ops->write || off >= b->size || off + size > b->size) {
        return;
    }
    b->ops->write(b->opaque, off, val, size);
}

/* ---- saved state ------------------------------------------------------------------- */

struct pci_dev_saved {
    uint8_t config[PCI_CONFIG_SIZE];                                /* config space */
    uint32_t msix_nvec;                                             /* MSI-X table size */
    uint8_t msix_table[PCI_MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE]; /* table entries */
    uint64_t msix_pba[PCI_MSIX_MAX_VECTORS / 64];                   /* pending bits */
    bool intx_level;                                                /* INTx request */
};

static int pci_dev_saved_post_load(void *scratch, int version_id)
{
    const struct pci_dev_saved *s = scratch;
    return s->msix_nvec > PCI_MSIX_MAX_VECTORS ? -EINVAL : 0;
}

static const struct vmstate_field pci_dev_saved_fields[] = {
    VMSTATE_BUF(struct pci_dev_saved, config),
    VMSTATE_FIELD(struct pci_dev_saved, msix_nvec, VMSTATE_U32),
    VMSTATE_BUF(struct pci_dev_saved, msix_table),
    VMSTATE_ARRAY(struct pci_dev_saved, msix_pba, VMSTATE_U64, PCI_MSIX_MAX_VECTORS / 64),
    VMSTATE_FIELD(struct pci_dev_saved, intx_level, VMSTATE_BOOL),
    VMSTATE_END,
};

static const struct vmstate_desc pci_dev_saved_vmstate = {
    .name = "pci_dev",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct pci_dev_saved),
    .fields = pci_dev_saved_fields,
    .post_load = pci_dev_saved_post_load,
};

int pci_dev_save(struct pci_dev *d, GByteArray *out)
{
    struct pci_dev_saved *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    pthread_mutex_lock(&d->lock);
    memcpy(s->config, d->cfg.data, PCI_CONFIG_SIZE);
    s->msix_nvec = d->msix_nvec;
    if (d->msix_table) {
        memcpy(s->msix_table, d->msix_table, (size_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE);
        memcpy(s->msix_pba, d->msix_pba, ((d->msix_nvec + 63) / 64) * sizeof(uint64_t));
    }
    s->intx_level = d->intx_level;
    pthread_mutex_unlock(&d->lock);
    int rc = vmstate_save(&pci_dev_saved_vmstate, s, out);
    free(s);
    return rc;
}

int pci_dev_parse(struct pci_dev *d, const uint8_t *buf, size_t len, size_t *consumed,
                  struct pci_dev_saved **out)
{
    struct pci_dev_saved *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    int rc = vmstate_load(&pci_dev_saved_vmstate, s, buf, len, consumed);
    if (rc == 0) {
        pthread_mutex_lock(&d->lock);
        if (s->msix_nvec != d->msix_nvec) {
            rc = -EINVAL;
        }
        /* Read-only bytes (IDs, capabilities) belong to the model, not the stream:
         * a mismatch means the stream is for another device. STATUS.Interrupt is
         * redone from intx_level. */
        for (unsigned i = 0; i < PCI_CONFIG_SIZE && rc == 0; i++) {
            uint8_t ro = (uint8_t) ~(d->cfg.wmask[i] | d->cfg.w1cmask[i]);
            if (i == PCI_STATUS) {
                ro &= (uint8_t)~PCI_STATUS_INTERRUPT;
            }
            if ((s->config[i] ^ d->cfg.data[i]) & ro) {
                rc = -EINVAL;
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (rc < 0) {
            log_warn(PCI_DEV_TAG, "saved PCI state is for another device; refused");
        }
    }
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pci_dev_restore(struct pci_dev *d, struct pci_dev_saved *s)
{
    pthread_mutex_lock(&d->lock);
    memcpy(d->cfg.data, s->config, PCI_CONFIG_SIZE);
    if (d->msix_table) {
        memcpy(d->msix_table, s->msix_table, (size_t)d->msix_nvec * PCI_MSIX_ENTRY_SIZE);
        memcpy(d->msix_pba, s->msix_pba, ((d->msix_nvec + 63) / 64) * sizeof(uint64_t));
    }
    d->intx_level = s->intx_level;
    pci_dev_update_mappings(d);
    pci_dev_apply_intx(d);
    pthread_mutex_unlock(&d->lock);
    free(s);
}

void pci_dev_saved_free(struct pci_dev_saved *s)
{
    free(s);
}
