/* PIIX ISA bridge and PM function: see piix.h. */
#include "devices/pc/piix.h"

#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PIIX_TAG "dev.piix"
#define PIIX_PM_BASE_MASK 0xffc0u

struct piix {
    pthread_mutex_t lock;
    struct pci_config isa; /* 00:01.0 config space (82371AB 4.1) */
    struct pci_config pm;  /* 00:01.3 config space (82371AB 4.4) */
    struct bus *pio;       /* bus the PM block lives on, or NULL */
    void *pm_opaque;       /* its registration's opaque (acpi_pm) */
    uint16_t pm_default;   /* base the machine registered it at */
    uint16_t pm_cur;       /* where it decodes now */
};

static void piix_init_config(struct piix *p)
{
    struct pci_config *c = &p->isa;
    pci_config_init(c, 0x8086, PIIX3_ISA_DEVICE, 0x060100, 0x00, PCI_HEADER_TYPE_MULTI_FUNCTION);
    /* 82371AB 4.1.2: I/O, memory and bus master on after reset; medium DEVSEL. */
    pci_config_set_u16(c, PCI_COMMAND, 0x0007);
    pci_config_set_u16(c, PCI_STATUS, 0x0200);
    c->wmask[PCI_INTERRUPT_LINE] = 0;
    for (int i = 0; i < 4; i++) {
        c->data[PIIX_PIRQRC + i] = PIIX_PIRQ_DISABLE;
        c->wmask[PIIX_PIRQRC + i] = 0x8f;
    }
    /* Other chipset registers (0x4c IORT, 0x4e XBCS, 0x69 TOM, 0x70 MBIRQ, ...) are
     * read/write storage. */
    for (unsigned o = 0x40; o < 0x100; o++) {
        if (o < PIIX_PIRQRC || o > PIIX_PIRQRC + 3) {
            c->wmask[o] = 0xff;
        }
    }

    c = &p->pm;
    pci_config_init(c, 0x8086, PIIX4_PM_DEVICE, 0x068000, 0x03, 0x00);
    pci_config_set_u8(c, PCI_INTERRUPT_PIN, 1);
    pci_config_set_u32(c, PIIX_PM_PMBA, 0x00000001);
    c->wmask[PIIX_PM_PMBA] = 0xc0;
    c->wmask[PIIX_PM_PMBA + 1] = 0xff;
    /* APMC_EN (DEVACTB bit 25): see the header. */
    pci_config_set_u8(c, PIIX_PM_DEVACTB + 3, 0x02);
    c->wmask[PIIX_PM_PMREGMISC] = PIIX_PM_PMIOSE;
    pci_config_set_u32(c, PIIX_PM_SMBBA, 0x00000001);
    c->wmask[PIIX_PM_SMBBA] = 0xf0;
    c->wmask[PIIX_PM_SMBBA + 1] = 0xff;
    c->wmask[PIIX_PM_SMBHSTCFG] = 0x0f;
}

struct piix *piix_new(struct bus *pio, void *pm_opaque, uint16_t pm_base)
{
    struct piix *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->pio = pio;
    p->pm_opaque = pm_opaque;
    p->pm_default = pm_base;
    p->pm_cur = pm_base;
    piix_init_config(p);
    return p;
}

void piix_free(struct piix *p)
{
    if (p) {
        pthread_mutex_destroy(&p->lock);
        free(p);
    }
}

/* Move the PM block to base. Lock held. */
static void piix_pm_move(struct piix *p, uint16_t base)
{
    if (base == p->pm_cur) {
        return;
    }
    if (p->pio && p->pm_opaque) {
        int rc = bus_move(p->pio, p->pm_cur, p->pm_opaque, base);
        if (rc < 0) {
            log_warn(PIIX_TAG, "PMBA 0x%x: cannot move the PM block from 0x%x (%d)", base,
                     p->pm_cur, rc);
            return;
        }
    }
    log_debug(PIIX_TAG, "PM block moved 0x%x -> 0x%x", p->pm_cur, base);
    p->pm_cur = base;
}

/* After a PMBA/PMREGMISC write. Lock held. */
static void piix_pm_update(struct piix *p)
{
    uint16_t base = (uint16_t)(pci_config_read(&p->pm, PIIX_PM_PMBA, 2) & PIIX_PM_BASE_MASK);
    bool on = p->pm.data[PIIX_PM_PMREGMISC] & PIIX_PM_PMIOSE;
    /* Base 0 would put the block over the DMA controller: keep it where it is. */
    if (on && base) {
        piix_pm_move(p, base);
    }
}

uint16_t piix_pm_base(struct piix *p)
{
    pthread_mutex_lock(&p->lock);
    uint16_t b = p->pm_cur;
    pthread_mutex_unlock(&p->lock);
    return b;
}

int piix_pirq_route(struct piix *p, int n)
{
    if (n < 0 || n > 3) {
        return -1;
    }
    pthread_mutex_lock(&p->lock);
    uint8_t v = p->isa.data[PIIX_PIRQRC + n];
    pthread_mutex_unlock(&p->lock);
    return (v & PIIX_PIRQ_DISABLE) ? -1 : (v & 0x0f);
}

static uint32_t piix_isa_read(void *opaque, unsigned off, unsigned size)
{
    struct piix *p = opaque;
    pthread_mutex_lock(&p->lock);
    uint32_t v = pci_config_read(&p->isa, off, size);
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void piix_isa_write(void *opaque, unsigned off, uint32_t val, unsigned size)
{
    struct piix *p = opaque;
    pthread_mutex_lock(&p->lock);
    pci_config_write(&p->isa, off, val, size);
    pthread_mutex_unlock(&p->lock);
}

static uint32_t piix_pm_read(void *opaque, unsigned off, unsigned size)
{
    struct piix *p = opaque;
    pthread_mutex_lock(&p->lock);
    uint32_t v = pci_config_read(&p->pm, off, size);
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void piix_pm_write(void *opaque, unsigned off, uint32_t val, unsigned size)
{
    struct piix *p = opaque;
    pthread_mutex_lock(&p->lock);
    pci_config_write(&p->pm, off, val, size);
    if ((off < PIIX_PM_PMBA + 4 && off + size > PIIX_PM_PMBA) ||
        (off <= PIIX_PM_PMREGMISC && off + size > PIIX_PM_PMREGMISC)) {
        piix_pm_update(p);
    }
    pthread_mutex_unlock(&p->lock);
}

const struct pci_dev_ops piix_isa_config_ops = {.config_read = piix_isa_read,
                                                .config_write = piix_isa_write};
const struct pci_dev_ops piix_pm_config_ops = {.config_read = piix_pm_read,
                                               .config_write = piix_pm_write};

int piix_attach(struct piix *p, struct pci_host *ph)
{
    int rc = pci_host_add_device(ph, PIIX_SLOT, PIIX_FN_ISA, &piix_isa_config_ops, p);
    if (rc == 0) {
        rc = pci_host_add_device(ph, PIIX_SLOT, PIIX_FN_PM, &piix_pm_config_ops, p);
    }
    return rc;
}

static void piix_reset(void *dev)
{
    struct piix *p = dev;
    pthread_mutex_lock(&p->lock);
    piix_init_config(p);
    piix_pm_move(p, p->pm_default);
    pthread_mutex_unlock(&p->lock);
}

const struct device_ops piix_device_ops = {.name = "piix", .reset = piix_reset};
