/* PCI configuration mechanism #1 and the i440FX host bridge at 00:00.0.
 * The i440FX's chipset registers (PAM at 0x59-0x5f, SMRAM at 0x72) are kept as
 * writable bytes so firmware sees them hold their value; their effect on the
 * memory map is a later issue. */
#include "devices/pc/pci_host.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PCI_TAG "dev.pci"

#define PCI_ADDR_ENABLE 0x80000000u
#define PCI_ADDR_MASK 0x80fffffcu /* enable, bus, device, function, dword register */

#define I440FX_PAM0 0x59
#define I440FX_PAM6 0x5f
#define I440FX_SMRAM 0x72

/* ---- config space helper ---- */

static bool pci_config_access_ok(unsigned off, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && off < PCI_CONFIG_SIZE && (off & 3) + size <= 4;
}

void pci_config_set_u8(struct pci_config *c, unsigned off, uint8_t v)
{
    if (off < PCI_CONFIG_SIZE) {
        c->data[off] = v;
    }
}

void pci_config_set_u16(struct pci_config *c, unsigned off, uint16_t v)
{
    pci_config_set_u8(c, off, (uint8_t)v);
    pci_config_set_u8(c, off + 1, (uint8_t)(v >> 8));
}

void pci_config_set_u32(struct pci_config *c, unsigned off, uint32_t v)
{
    pci_config_set_u16(c, off, (uint16_t)v);
    pci_config_set_u16(c, off + 2, (uint16_t)(v >> 16));
}

void pci_config_init(struct pci_config *c, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint8_t revision, uint8_t header_type)
{
    memset(c, 0, sizeof(*c));
    pci_config_set_u16(c, PCI_VENDOR_ID, vendor);
    pci_config_set_u16(c, PCI_DEVICE_ID, device);
    pci_config_set_u8(c, PCI_REVISION_ID, revision);
    pci_config_set_u8(c, PCI_CLASS_PROG, (uint8_t)class_code);
    pci_config_set_u16(c, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
    pci_config_set_u8(c, PCI_HEADER_TYPE, header_type);
    /* COMMAND: I/O, memory, bus master, parity error response, SERR#, INTx disable. */
    c->wmask[PCI_COMMAND] = 0x47;
    c->wmask[PCI_COMMAND + 1] = 0x05;
    /* STATUS: master data parity error, target/master aborts, SERR, parity error. */
    c->w1cmask[PCI_STATUS + 1] = 0xf9;
    c->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

uint32_t pci_config_read(const struct pci_config *c, unsigned off, unsigned size)
{
    if (!pci_config_access_ok(off, size)) {
        return 0xffffffffu;
    }
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint32_t)c->data[off + i] << (8 * i);
    }
    return v;
}

void pci_config_write(struct pci_config *c, unsigned off, uint32_t val, unsigned size)
{
    if (!pci_config_access_ok(off, size)) {
        return;
    }
    for (unsigned i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        unsigned o = off + i;
        c->data[o] = (uint8_t)((c->data[o] & ~c->wmask[o]) | (b & c->wmask[o]));
        c->data[o] &= (uint8_t) ~(b & c->w1cmask[o]);
    }
}

/* ---- host ---- */

struct pci_func {
    const struct pci_dev_ops *ops; /* NULL = empty */
    void *opaque;
};

struct pci_host_state {
    uint32_t config_address;  /* CONFIG_ADDRESS at 0xCF8 (PCI 3.0, 3.2.2.3.2) */
    struct pci_config bridge; /* i440FX config space at 00:00.0 */
};

struct pci_host {
    pthread_mutex_t lock;                        /* guards s and funcs */
    struct pci_func funcs[PCI_SLOTS][PCI_FUNCS]; /* bus 0 registry */
    struct pci_host_state s;
};

static uint32_t pci_bridge_read(void *opaque, unsigned off, unsigned size)
{
    struct pci_host *ph = opaque;
    pthread_mutex_lock(&ph->lock);
    uint32_t v = pci_config_read(&ph->s.bridge, off, size);
    pthread_mutex_unlock(&ph->lock);
    return v;
}

static void pci_bridge_write(void *opaque, unsigned off, uint32_t val, unsigned size)
{
    struct pci_host *ph = opaque;
    pthread_mutex_lock(&ph->lock);
    pci_config_write(&ph->s.bridge, off, val, size);
    pthread_mutex_unlock(&ph->lock);
}

static const struct pci_dev_ops pci_bridge_ops = {
    .config_read = pci_bridge_read,
    .config_write = pci_bridge_write,
};

static void pci_host_state_reset(struct pci_host_state *s)
{
    s->config_address = 0;
    struct pci_config *c = &s->bridge;
    pci_config_init(c, PCI_I440FX_VENDOR, PCI_I440FX_DEVICE, PCI_CLASS_HOST_BRIDGE, 0x02, 0x00);
    /* i440FX datasheet 3.2: memory + bus master enabled, status = fast back-to-back,
     * medium DEVSEL timing. */
    pci_config_set_u16(c, PCI_COMMAND, 0x0006);
    pci_config_set_u16(c, PCI_STATUS, 0x0280);
    c->wmask[PCI_INTERRUPT_LINE] = 0; /* a host bridge has no interrupt */
    for (unsigned o = I440FX_PAM0; o <= I440FX_PAM6; o++) {
        c->wmask[o] = 0xff;
    }
    c->wmask[I440FX_SMRAM] = 0xff;
    c->data[I440FX_SMRAM] = 0x02; /* SMRAM at 0xA0000, closed */
}

struct pci_host *pci_host_new(void)
{
    struct pci_host *ph = calloc(1, sizeof(*ph));
    if (!ph) {
        return NULL;
    }
    pthread_mutex_init(&ph->lock, NULL);
    pci_host_state_reset(&ph->s);
    ph->funcs[0][0].ops = &pci_bridge_ops;
    ph->funcs[0][0].opaque = ph;
    return ph;
}

void pci_host_free(struct pci_host *ph)
{
    if (!ph) {
        return;
    }
    pthread_mutex_destroy(&ph->lock);
    free(ph);
}

int pci_host_add_device(struct pci_host *ph, int slot, int fn, const struct pci_dev_ops *ops,
                        void *opaque)
{
    if (slot < 1 || slot >= PCI_SLOTS || fn < 0 || fn >= PCI_FUNCS || !ops || !ops->config_read ||
        !ops->config_write) {
        return -EINVAL;
    }
    int ret = 0;
    pthread_mutex_lock(&ph->lock);
    if (ph->funcs[slot][fn].ops) {
        ret = -EEXIST;
    } else {
        ph->funcs[slot][fn].ops = ops;
        ph->funcs[slot][fn].opaque = opaque;
        log_debug(PCI_TAG, "function 00:%02x.%d registered", slot, fn);
    }
    pthread_mutex_unlock(&ph->lock);
    return ret;
}

static struct pci_func pci_host_lookup(struct pci_host *ph, int slot, int fn)
{
    struct pci_func f = {0};
    if (slot >= 0 && slot < PCI_SLOTS && fn >= 0 && fn < PCI_FUNCS) {
        pthread_mutex_lock(&ph->lock);
        f = ph->funcs[slot][fn];
        pthread_mutex_unlock(&ph->lock);
    }
    return f;
}

static uint32_t pci_ones(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
}

uint32_t pci_host_config_read(struct pci_host *ph, int slot, int fn, unsigned off, unsigned size)
{
    if (!pci_config_access_ok(off, size)) {
        return pci_ones(size > 4 ? 4 : size);
    }
    struct pci_func f = pci_host_lookup(ph, slot, fn);
    if (!f.ops) {
        return pci_ones(size);
    }
    return f.ops->config_read(f.opaque, off, size) & pci_ones(size);
}

void pci_host_config_write(struct pci_host *ph, int slot, int fn, unsigned off, uint32_t val,
                           unsigned size)
{
    if (!pci_config_access_ok(off, size)) {
        return;
    }
    struct pci_func f = pci_host_lookup(ph, slot, fn);
    if (f.ops) {
        f.ops->config_write(f.opaque, off, val & pci_ones(size), size);
    }
}

/* Decodes CONFIG_ADDRESS for a data-port access at off (4..7). Returns false when
 * the access reaches no function (disabled, bus other than 0, unaligned). */
static bool pci_host_decode(struct pci_host *ph, uint64_t off, unsigned size, int *slot, int *fn,
                            unsigned *reg)
{
    pthread_mutex_lock(&ph->lock);
    uint32_t a = ph->s.config_address;
    pthread_mutex_unlock(&ph->lock);
    unsigned byte = (unsigned)(off & 3);
    if (!(a & PCI_ADDR_ENABLE) || ((a >> 16) & 0xff) != 0 || byte + size > 4) {
        return false;
    }
    *slot = (int)((a >> 11) & 0x1f);
    *fn = (int)((a >> 8) & 0x7);
    *reg = (a & 0xfc) | byte;
    return true;
}

uint64_t pci_host_read(struct pci_host *ph, uint64_t off, unsigned size)
{
    if (size == 0 || size > 4) {
        return ~0ull;
    }
    if (off == PCI_HOST_OFF_ADDR) {
        if (size != 4) {
            return pci_ones(size); /* only dword accesses reach CONFIG_ADDRESS */
        }
        pthread_mutex_lock(&ph->lock);
        uint32_t a = ph->s.config_address;
        pthread_mutex_unlock(&ph->lock);
        return a;
    }
    if (off < PCI_HOST_OFF_DATA || off >= PCI_HOST_IO_LEN) {
        return pci_ones(size);
    }
    int slot, fn;
    unsigned reg;
    if (!pci_host_decode(ph, off, size, &slot, &fn, &reg)) {
        return pci_ones(size);
    }
    return pci_host_config_read(ph, slot, fn, reg, size);
}

void pci_host_write(struct pci_host *ph, uint64_t off, uint64_t val, unsigned size)
{
    if (size == 0 || size > 4) {
        return;
    }
    if (off == PCI_HOST_OFF_ADDR) {
        if (size == 4) {
            pthread_mutex_lock(&ph->lock);
            ph->s.config_address = (uint32_t)val & PCI_ADDR_MASK;
            pthread_mutex_unlock(&ph->lock);
        }
        return;
    }
    if (off < PCI_HOST_OFF_DATA || off >= PCI_HOST_IO_LEN) {
        return;
    }
    int slot, fn;
    unsigned reg;
    if (pci_host_decode(ph, off, size, &slot, &fn, &reg)) {
        pci_host_config_write(ph, slot, fn, reg, (uint32_t)val, size);
    }
}

static uint64_t pci_host_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return pci_host_read(opaque, off, size);
}

static void pci_host_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    pci_host_write(opaque, off, val, size);
}

static uint64_t pci_host_data_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return pci_host_read(opaque, PCI_HOST_OFF_DATA + off, size);
}

static void pci_host_data_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    pci_host_write(opaque, PCI_HOST_OFF_DATA + off, val, size);
}

const struct bus_ops pci_host_bus_ops = {.read = pci_host_bus_read, .write = pci_host_bus_write};
const struct bus_ops pci_host_addr_bus_ops = {.read = pci_host_bus_read,
                                              .write = pci_host_bus_write};
const struct bus_ops pci_host_data_bus_ops = {.read = pci_host_data_bus_read,
                                              .write = pci_host_data_bus_write};

static int pci_host_post_load(void *scratch, int version_id)
{
    const struct pci_host_state *s = scratch;
    return (s->config_address & ~PCI_ADDR_MASK) ? -EINVAL : 0;
}

/* The bridge's masks are constants of the model and are not saved. */
static const struct vmstate_field pci_host_fields[] = {
    VMSTATE_FIELD(struct pci_host_state, config_address, VMSTATE_U32),
    {.name = "bridge.data",
     .type = VMSTATE_BUFFER,
     .offset = offsetof(struct pci_host_state, bridge.data),
     .size = PCI_CONFIG_SIZE},
    VMSTATE_END,
};

static const struct vmstate_desc pci_host_vmstate = {
    .name = "pci_host_i440fx",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct pci_host_state),
    .fields = pci_host_fields,
    .post_load = pci_host_post_load,
};

static void pci_host_dev_reset(void *dev)
{
    struct pci_host *ph = dev;
    pthread_mutex_lock(&ph->lock);
    pci_host_state_reset(&ph->s);
    pthread_mutex_unlock(&ph->lock);
}

static int pci_host_dev_save(void *dev, GByteArray *out)
{
    struct pci_host *ph = dev;
    pthread_mutex_lock(&ph->lock);
    int ret = vmstate_save(&pci_host_vmstate, &ph->s, out);
    pthread_mutex_unlock(&ph->lock);
    return ret;
}

static int pci_host_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct pci_host *ph = dev;
    struct pci_host_state *tmp = malloc(sizeof(*tmp));
    if (!tmp) {
        return -ENOMEM;
    }
    pci_host_state_reset(tmp);
    int ret = vmstate_load(&pci_host_vmstate, tmp, buf, len, NULL);
    if (ret == 0) {
        pthread_mutex_lock(&ph->lock);
        ph->s = *tmp;
        pthread_mutex_unlock(&ph->lock);
    }
    free(tmp);
    return ret;
}

const struct device_ops pci_host_device_ops = {
    .name = "pci_host",
    .reset = pci_host_dev_reset,
    .save = pci_host_dev_save,
    .load = pci_host_dev_load,
};
