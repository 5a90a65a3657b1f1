/* ACPI PM fixed hardware (PIIX4 layout) and the 0xCF9 reset control register.
 * Registers are handled a byte at a time so any access width the OS picks
 * (the FADT advertises byte-granular blocks) behaves the same. */
#include "devices/pc/acpi_pm.h"

#include "core/log.h"
#include "snapshot/vmstate.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACPI_PM_TAG "dev.acpi_pm"

/* PM1 status bits the OS can see; everything else reads 0. */
#define ACPI_PM1_STS_MASK                                                                          \
    (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC | ACPI_PM1_WAK)
#define ACPI_PM1_EN_MASK                                                                           \
    (ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC)
/* SCI_EN, BM_RLD and SLP_TYP keep their value; GBL_RLS and SLP_EN are write-only. */
#define ACPI_PM1_CNT_KEEP 0x1c03

struct acpi_pm_state {
    uint16_t pm1_sts;  /* PM1 status (ACPI 4.8.4.1.1), write 1 to clear */
    uint16_t pm1_en;   /* PM1 enable (ACPI 4.8.4.1.2) */
    uint16_t pm1_cnt;  /* PM1 control (ACPI 4.8.4.2.1): SCI_EN, BM_RLD, SLP_TYP */
    uint16_t gpe0_sts; /* GPE0 status (ACPI 4.8.5.1), write 1 to clear */
    uint16_t gpe0_en;  /* GPE0 enable (ACPI 4.8.5.1) */
};

struct acpi_pm {
    pthread_mutex_t lock;        /* guards s, sci_level, tmr_epoch */
    struct irq_line sci;         /* SCI, IRQ 9 */
    struct timerq *tq;           /* PM_TMR clock, or NULL for host monotonic */
    struct acpi_pm_callbacks cb; /* poweroff */
    int sci_level;               /* level last driven */
    uint64_t tmr_epoch;          /* PM_TMR count >> 23 when TMR_STS was last updated */
    struct acpi_pm_state s;
};

static uint64_t acpi_pm_clock_ns(struct acpi_pm *pm)
{
    if (pm->tq) {
        return timerq_now_ns(pm->tq);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Full-width tick count; the register shows its low 24 bits (TMR_VAL_EXT = 0). */
static uint64_t acpi_pm_ticks(struct acpi_pm *pm)
{
    unsigned __int128 ns = acpi_pm_clock_ns(pm);
    return (uint64_t)(ns * ACPI_PM_TMR_HZ / 1000000000ull);
}

static void acpi_pm_update_sci(struct acpi_pm *pm)
{
    const struct acpi_pm_state *s = &pm->s;
    int level = (s->pm1_sts & s->pm1_en) != 0 || (s->gpe0_sts & s->gpe0_en) != 0;
    if (level != pm->sci_level) {
        pm->sci_level = level;
        irq_set(&pm->sci, level);
    }
}

/* TMR_STS is set whenever bit 23 of the counter toggles (ACPI 4.8.3.3). It is
 * brought up to date when the OS looks; no host timer runs for TMR_EN. */
static void acpi_pm_update_tmr_sts(struct acpi_pm *pm, uint64_t ticks)
{
    uint64_t epoch = ticks >> 23;
    if (epoch != pm->tmr_epoch) {
        pm->tmr_epoch = epoch;
        pm->s.pm1_sts |= ACPI_PM1_TMR;
    }
}

static uint8_t acpi_pm_read_byte(struct acpi_pm *pm, unsigned off, uint64_t ticks)
{
    const struct acpi_pm_state *s = &pm->s;
    unsigned sh = (off & 1) * 8;
    switch (off) {
    case 0x00:
    case 0x01:
        return (uint8_t)(s->pm1_sts >> sh);
    case 0x02:
    case 0x03:
        return (uint8_t)(s->pm1_en >> sh);
    case 0x04:
    case 0x05:
        return (uint8_t)(s->pm1_cnt >> sh);
    case 0x08:
    case 0x09:
    case 0x0a:
        return (uint8_t)((ticks & 0xffffff) >> ((off - 0x08) * 8));
    case 0x0b:
        return 0;
    case 0x20:
    case 0x21:
        return (uint8_t)(s->gpe0_sts >> sh);
    case 0x22:
    case 0x23:
        return (uint8_t)(s->gpe0_en >> sh);
    default:
        return 0;
    }
}

/* Returns true when the byte started S5. */
static bool acpi_pm_write_byte(struct acpi_pm *pm, unsigned off, uint8_t v)
{
    struct acpi_pm_state *s = &pm->s;
    unsigned sh = (off & 1) * 8;
    uint16_t w = (uint16_t)(v << sh);
    switch (off) {
    case 0x00:
    case 0x01:
        s->pm1_sts &= ~(w & ACPI_PM1_STS_MASK);
        break;
    case 0x02:
    case 0x03:
        s->pm1_en = (s->pm1_en & ~(0xff << sh)) | (w & ACPI_PM1_EN_MASK);
        break;
    case 0x04:
        s->pm1_cnt = (s->pm1_cnt & 0xff00) | (w & ACPI_PM1_CNT_KEEP);
        break;
    case 0x05:
        s->pm1_cnt = (s->pm1_cnt & 0x00ff) | (w & ACPI_PM1_CNT_KEEP);
        if (w & ACPI_PM1_CNT_SLP_EN) {
            unsigned typ = (w >> ACPI_PM1_CNT_SLP_TYP_SHIFT) & 7;
            if (typ == ACPI_PM_S5_TYP) {
                return true;
            }
            log_info(ACPI_PM_TAG, "guest requested sleep type %u; only S5 is supported", typ);
            s->pm1_sts |= ACPI_PM1_WAK; /* "woke" at once so the OS resumes */
        }
        break;
    case 0x20:
    case 0x21:
        s->gpe0_sts &= ~w;
        break;
    case 0x22:
    case 0x23:
        s->gpe0_en = (s->gpe0_en & ~(0xff << sh)) | w;
        break;
    default:
        break; /* PM_TMR is read-only; the rest of the 64 bytes is reserved */
    }
    return false;
}

uint64_t acpi_pm_read(struct acpi_pm *pm, uint64_t off, unsigned size)
{
    if (size > 4 || off >= ACPI_PM_IO_LEN || off + size > ACPI_PM_IO_LEN) {
        return ~0ull;
    }
    pthread_mutex_lock(&pm->lock);
    uint64_t ticks = acpi_pm_ticks(pm);
    acpi_pm_update_tmr_sts(pm, ticks);
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)acpi_pm_read_byte(pm, (unsigned)off + i, ticks) << (8 * i);
    }
    acpi_pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    return v;
}

void acpi_pm_write(struct acpi_pm *pm, uint64_t off, uint64_t val, unsigned size)
{
    if (size > 4 || off >= ACPI_PM_IO_LEN || off + size > ACPI_PM_IO_LEN) {
        return;
    }
    bool poweroff = false;
    pthread_mutex_lock(&pm->lock);
    acpi_pm_update_tmr_sts(pm, acpi_pm_ticks(pm));
    for (unsigned i = 0; i < size; i++) {
        poweroff |= acpi_pm_write_byte(pm, (unsigned)off + i, (uint8_t)(val >> (8 * i)));
    }
    acpi_pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    if (poweroff) {
        log_info(ACPI_PM_TAG, "guest entered S5 (soft off)");
        if (pm->cb.poweroff) {
            pm->cb.poweroff(pm->cb.opaque);
        }
    }
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    pm->s.pm1_sts |= ACPI_PM1_PWRBTN;
    acpi_pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_gpe_raise(struct acpi_pm *pm, unsigned gpe)
{
    if (gpe >= 16) {
        return -EINVAL;
    }
    pthread_mutex_lock(&pm->lock);
    pm->s.gpe0_sts |= (uint16_t)(1u << gpe);
    acpi_pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

static void acpi_pm_state_reset(struct acpi_pm_state *s)
{
    memset(s, 0, sizeof(*s));
    s->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
}

struct acpi_pm *acpi_pm_new(const struct irq_line *sci, struct timerq *tq,
                            const struct acpi_pm_callbacks *cb)
{
    struct acpi_pm *pm = calloc(1, sizeof(*pm));
    if (!pm) {
        return NULL;
    }
    pthread_mutex_init(&pm->lock, NULL);
    if (sci) {
        pm->sci = *sci;
    }
    if (cb) {
        pm->cb = *cb;
    }
    pm->tq = tq;
    acpi_pm_state_reset(&pm->s);
    pm->tmr_epoch = acpi_pm_ticks(pm) >> 23;
    return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
    if (!pm) {
        return;
    }
    pthread_mutex_destroy(&pm->lock);
    free(pm);
}

static uint64_t acpi_pm_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return acpi_pm_read(opaque, off, size);
}

static void acpi_pm_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    acpi_pm_write(opaque, off, val, size);
}

const struct bus_ops acpi_pm_bus_ops = {.read = acpi_pm_bus_read, .write = acpi_pm_bus_write};

static int acpi_pm_post_load(void *scratch, int version_id)
{
    const struct acpi_pm_state *s = scratch;
    if ((s->pm1_sts & ~ACPI_PM1_STS_MASK) || (s->pm1_en & ~ACPI_PM1_EN_MASK) ||
        (s->pm1_cnt & ~ACPI_PM1_CNT_KEEP)) {
        return -EINVAL;
    }
    return 0;
}

static const struct vmstate_field acpi_pm_fields[] = {
    VMSTATE_FIELD(struct acpi_pm_state, pm1_sts, VMSTATE_U16),
    VMSTATE_FIELD(struct acpi_pm_state, pm1_en, VMSTATE_U16),
    VMSTATE_FIELD(struct acpi_pm_state, pm1_cnt, VMSTATE_U16),
    VMSTATE_FIELD(struct acpi_pm_state, gpe0_sts, VMSTATE_U16),
    VMSTATE_FIELD(struct acpi_pm_state, gpe0_en, VMSTATE_U16),
    VMSTATE_END,
};

static const struct vmstate_desc acpi_pm_vmstate = {
    .name = "acpi_pm",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct acpi_pm_state),
    .fields = acpi_pm_fields,
    .post_load = acpi_pm_post_load,
};

static void acpi_pm_dev_reset(void *dev)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    acpi_pm_state_reset(&pm->s);
    acpi_pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
}

static int acpi_pm_dev_save(void *dev, GByteArray *out)
{
    struct acpi_pm *pm = dev;
    pthread_mutex_lock(&pm->lock);
    int ret = vmstate_save(&acpi_pm_vmstate, &pm->s, out);
    pthread_mutex_unlock(&pm->lock);
    return ret;
}

static int acpi_pm_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct acpi_pm *pm = dev;
    struct acpi_pm_state tmp;
    acpi_pm_state_reset(&tmp);
    int ret = vmstate_load(&acpi_pm_vmstate, &tmp, buf, len, NULL);
    if (ret < 0) {
        return ret;
    }
    pthread_mutex_lock(&pm->lock);
    pm->s = tmp;
    acpi_pm_update_sci(pm);
    pthread_mutex_unlock(&pm->lock);
    return 0;
}

const struct device_ops acpi_pm_device_ops = {
    .name = "acpi_pm",
    .reset = acpi_pm_dev_reset,
    .save = acpi_pm_dev_save,
    .load = acpi_pm_dev_load,
};

/* ---- 0xCF9 reset control ---- */

struct reset_ctl {
    pthread_mutex_t lock;
    void (*reset)(void *opaque); /* system reset request */
    void *opaque;
    uint8_t value; /* 0xCF9: SYS_RST (bit 1), FULL_RST (bit 3) as last written */
};

struct reset_ctl *reset_ctl_new(void (*reset)(void *opaque), void *opaque)
{
    struct reset_ctl *rc = calloc(1, sizeof(*rc));
    if (!rc) {
        return NULL;
    }
    pthread_mutex_init(&rc->lock, NULL);
    rc->reset = reset;
    rc->opaque = opaque;
    return rc;
}

void reset_ctl_free(struct reset_ctl *rc)
{
    if (!rc) {
        return;
    }
    pthread_mutex_destroy(&rc->lock);
    free(rc);
}

uint64_t reset_ctl_read(struct reset_ctl *rc, uint64_t off, unsigned size)
{
    if (off != 0) {
        return ~0ull;
    }
    pthread_mutex_lock(&rc->lock);
    uint8_t v = rc->value;
    pthread_mutex_unlock(&rc->lock);
    return v;
}

void reset_ctl_write(struct reset_ctl *rc, uint64_t off, uint64_t val, unsigned size)
{
    if (off != 0) {
        return;
    }
    pthread_mutex_lock(&rc->lock);
    /* RST_CPU is self-clearing: writing it starts the reset the other bits select. */
    rc->value = (uint8_t)val & (RESET_CTL_SYS_RST | RESET_CTL_FULL_RST);
    bool go = (val & RESET_CTL_RST_CPU) != 0;
    pthread_mutex_unlock(&rc->lock);
    if (go && rc->reset) {
        rc->reset(rc->opaque);
    }
}

static uint64_t reset_ctl_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return reset_ctl_read(opaque, off, size);
}

static void reset_ctl_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    reset_ctl_write(opaque, off, val, size);
}

const struct bus_ops reset_ctl_bus_ops = {.read = reset_ctl_bus_read, .write = reset_ctl_bus_write};

static const struct vmstate_field reset_ctl_fields[] = {
    VMSTATE_FIELD(struct reset_ctl, value, VMSTATE_U8),
    VMSTATE_END,
};

static int reset_ctl_post_load(void *scratch, int version_id)
{
    const struct reset_ctl *rc = scratch;
    return (rc->value & ~(RESET_CTL_SYS_RST | RESET_CTL_FULL_RST)) ? -EINVAL : 0;
}

/* Only .value is described; the scratch copy of the rest (mutex, callback) is
 * never written back because reset_ctl_dev_load copies .value alone. */
static const struct vmstate_desc reset_ctl_vmstate = {
    .name = "reset_ctl",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct reset_ctl),
    .fields = reset_ctl_fields,
    .post_load = reset_ctl_post_load,
};

static void reset_ctl_dev_reset(void *dev)
{
    struct reset_ctl *rc = dev;
    pthread_mutex_lock(&rc->lock);
    rc->value = 0;
    pthread_mutex_unlock(&rc->lock);
}

static int reset_ctl_dev_save(void *dev, GByteArray *out)
{
    struct reset_ctl *rc = dev;
    pthread_mutex_lock(&rc->lock);
    int ret = vmstate_save(&reset_ctl_vmstate, rc, out);
    pthread_mutex_unlock(&rc->lock);
    return ret;
}

static int reset_ctl_dev_load(void *dev, const uint8_t *buf, size_t len)
{
    struct reset_ctl *rc = dev;
    struct reset_ctl tmp;
    memset(&tmp, 0, sizeof(tmp));
    int ret = vmstate_load(&reset_ctl_vmstate, &tmp, buf, len, NULL);
    if (ret < 0) {
        return ret;
    }
    pthread_mutex_lock(&rc->lock);
    rc->value = tmp.value;
    pthread_mutex_unlock(&rc->lock);
    return 0;
}

const struct device_ops reset_ctl_device_ops = {
    .name = "reset_ctl",
    .reset = reset_ctl_dev_reset,
    .save = reset_ctl_dev_save,
    .load = reset_ctl_dev_load,
};
