/* Standard VGA + Bochs VBE: see vga.h. */
#include "devices/display/vga.h"

#include "core/guestmem.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VGA_TAG "dev.vga"

/* Port offsets from 0x3B0. */
#define VGA_CRT_IM 0x04 /* 0x3B4 mono CRTC index */
#define VGA_CRT_DM 0x05
#define VGA_IS1_M 0x0a  /* 0x3BA */
#define VGA_AR 0x10     /* 0x3C0 */
#define VGA_AR_R 0x11   /* 0x3C1 */
#define VGA_MISC_W 0x12 /* 0x3C2 */
#define VGA_SEQ_I 0x14  /* 0x3C4 */
#define VGA_SEQ_D 0x15
#define VGA_PEL_MASK 0x16 /* 0x3C6 */
#define VGA_DAC_R 0x17    /* 0x3C7 */
#define VGA_DAC_W 0x18    /* 0x3C8 */
#define VGA_DAC_D 0x19    /* 0x3C9 */
#define VGA_FEAT_R 0x1a   /* 0x3CA */
#define VGA_MISC_R 0x1c   /* 0x3CC */
#define VGA_GR_I 0x1e     /* 0x3CE */
#define VGA_GR_D 0x1f
#define VGA_CRT_IC 0x24 /* 0x3D4 colour CRTC index */
#define VGA_CRT_DC 0x25
#define VGA_IS1_C 0x2a /* 0x3DA */

#define VGA_NSEQ 8
#define VGA_NGR 16
#define VGA_NAR 21
#define VGA_NCRT 25

struct vga {
    pthread_mutex_t lock;
    const struct guestmem *mem;       /* legacy window lives in guest RAM */
    struct pci_dev pci;               /* 1234:1111 config space and BAR0 */
    uint8_t *vram;                    /* BAR0 contents, VGA_VRAM_SIZE bytes */
    uint8_t misc;                     /* miscellaneous output (3C2/3CC) */
    uint8_t feature;                  /* feature control (3DA write / 3CA read) */
    uint8_t seq_index;                /* sequencer index (3C4) */
    uint8_t seq[VGA_NSEQ];            /* SR00-SR07 */
    uint8_t gr_index;                 /* graphics controller index (3CE) */
    uint8_t gr[VGA_NGR];              /* GR00-GR08 (+ spare) */
    uint8_t ar_index;                 /* attribute index incl. PAS bit 5 (3C0) */
    bool ar_flip;                     /* attribute flip-flop: false = next write is index */
    uint8_t ar[VGA_NAR];              /* AR00-AR14 */
    uint8_t crt_index;                /* CRTC index (3x4) */
    uint8_t crt[VGA_NCRT];            /* CR00-CR18 */
    uint8_t pel_mask;                 /* DAC pixel mask (3C6) */
    uint8_t dac_read_index;           /* DAC read address (3C7 write) */
    uint8_t dac_write_index;          /* DAC write address (3C8) */
    uint8_t dac_sub;                  /* which of R, G, B comes next */
    uint8_t dac_state;                /* 3C7 read: 0 write mode, 3 read mode */
    uint8_t dac_cache[3];             /* colour being written */
    uint8_t palette[256 * 3];         /* DAC entries, 6 bits (8 with VBE 8BIT_DAC) */
    uint8_t st01_toggle;              /* input status 1 retrace bits, toggled per read */
    uint16_t vbe_index;               /* VBE DISPI index (1CE) */
    uint16_t vbe[VBE_DISPI_INDEX_NB]; /* VBE DISPI registers */
    atomic_uint gen;                  /* bumped by every register write (viewer redraw) */
    _Atomic uint64_t dirty[VGA_DIRTY_WORDS]; /* BAR0 pages written since the last take */
};

static void vga_reset_regs(struct vga *v)
{
    v->misc = 0x01; /* colour I/O addresses (3Dx), as the VGA BIOS leaves them */
    v->feature = 0;
    v->seq_index = v->gr_index = v->ar_index = v->crt_index = 0;
    memset(v->seq, 0, sizeof(v->seq));
    memset(v->gr, 0, sizeof(v->gr));
    memset(v->ar, 0, sizeof(v->ar));
    memset(v->crt, 0, sizeof(v->crt));
    v->ar_flip = false;
    v->pel_mask = 0xff;
    v->dac_read_index = v->dac_write_index = v->dac_sub = v->dac_state = 0;
    memset(v->palette, 0, sizeof(v->palette));
    v->st01_toggle = 0;
    v->vbe_index = 0;
    memset(v->vbe, 0, sizeof(v->vbe));
    v->vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID0;
    v->vbe[VBE_DISPI_INDEX_VIDEO_MEMORY_64K] = (uint16_t)(VGA_VRAM_SIZE >> 16);
}

static uint64_t vga_bar_read(void *opaque, uint64_t off, unsigned size)
{
    return vga_vram_read(opaque, off, size);
}

static void vga_bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    vga_vram_write(opaque, off, val, size);
}

static const struct bus_ops vga_bar_ops = {.read = vga_bar_read, .write = vga_bar_write};

struct vga *vga_new(const struct guestmem *mem)
{
    struct vga *v = calloc(1, sizeof(*v));
    if (!v) {
        return NULL;
    }
    v->vram = calloc(1, VGA_VRAM_SIZE);
    if (!v->vram) {
        free(v);
        return NULL;
    }
    pthread_mutex_init(&v->lock, NULL);
    v->mem = mem;
    /* QEMU's stdvga IDs: subsystem 1AF4:1100, no interrupt pin. */
    if (pci_dev_init(&v->pci, VGA_PCI_VENDOR, VGA_PCI_DEVICE, 0x030000, 0x02, 0x1af4, 0x1100, 0) <
            0 ||
        pci_dev_add_bar(&v->pci, 0, PCI_BAR_MEM32, VGA_VRAM_SIZE, &vga_bar_ops, v, "vga-vram") <
            0) {
        vga_free(v);
        return NULL;
    }
    /* BAR0 prefetchable (PCI 3.0 6.2.5.1 bit 3). */
    v->pci.cfg.data[PCI_BAR0] |= 0x08;
    v->pci.reset_data[PCI_BAR0] |= 0x08;
    vga_reset_regs(v);
    return v;
}

void vga_free(struct vga *v)
{
    if (!v) {
        return;
    }
    pci_dev_destroy(&v->pci);
    pthread_mutex_destroy(&v->lock);
    free(v->vram);
    free(v);
}

struct pci_dev *vga_pci_dev(struct vga *v)
{
    return &v->pci;
}

/* ---- VGA registers ------------------------------------------------------------------ */

/* Whether off addresses the CRTC/status ports of the inactive (mono vs colour) set. */
static bool vga_port_inactive(struct vga *v, uint64_t off)
{
    bool colour = v->misc & 0x01;
    if (off >= 0x04 && off <= 0x0a) {
        return colour;
    }
    if (off >= 0x24 && off <= 0x2a) {
        return !colour;
    }
    return false;
}

static uint8_t vga_io_read8(struct vga *v, uint64_t off)
{
    if (vga_port_inactive(v, off)) {
        return 0xff;
    }
    switch (off) {
    case VGA_AR:
        return v->ar_index;
    case VGA_AR_R:
        return (v->ar_index & 0x1f) < VGA_NAR ? v->ar[v->ar_index & 0x1f] : 0;
    case VGA_MISC_W:
        return 0x10; /* input status 0: switch sense (colour monitor) */
    case VGA_SEQ_I:
        return v->seq_index;
    case VGA_SEQ_D:
        return v->seq_index < VGA_NSEQ ? v->seq[v->seq_index] : 0;
    case VGA_PEL_MASK:
        return v->pel_mask;
    case VGA_DAC_R:
        return v->dac_state;
    case VGA_DAC_W:
        return v->dac_write_index;
    case VGA_DAC_D: {
        uint8_t c = v->palette[v->dac_read_index * 3 + v->dac_sub];
        if (++v->dac_sub == 3) {
            v->dac_sub = 0;
            v->dac_read_index++;
        }
        return c;
    }
    case VGA_FEAT_R:
        return v->feature;
    case VGA_MISC_R:
        return v->misc;
    case VGA_GR_I:
        return v->gr_index;
    case VGA_GR_D:
        return v->gr_index < VGA_NGR ? v->gr[v->gr_index] : 0;
    case VGA_CRT_IM:
    case VGA_CRT_IC:
        return v->crt_index;
    case VGA_CRT_DM:
    case VGA_CRT_DC:
        return v->crt_index < VGA_NCRT ? v->crt[v->crt_index] : 0;
    case VGA_IS1_M:
    case VGA_IS1_C:
        /* Reading input status 1 resets the attribute flip-flop; the retrace bits
         * toggle so polling loops (wait for vertical retrace) finish. */
        v->ar_flip = false;
        v->st01_toggle ^= 0x09;
        return v->st01_toggle;
    default:
        return 0xff;
    }
}

static void vga_io_write8(struct vga *v, uint64_t off, uint8_t val)
{
    if (vga_port_inactive(v, off)) {
        return;
    }
    switch (off) {
    case VGA_AR:
        if (!v->ar_flip) {
            v->ar_index = val & 0x3f;
        } else if ((v->ar_index & 0x1f) < VGA_NAR) {
            v->ar[v->ar_index & 0x1f] = val;
        }
        v->ar_flip = !v->ar_flip;
        break;
    case VGA_MISC_W:
        v->misc = val;
        break;
    case VGA_SEQ_I:
        v->seq_index = val & 0x7;
        break;
    case VGA_SEQ_D:
        v->seq[v->seq_index] = val;
        break;
    case VGA_PEL_MASK:
        v->pel_mask = val;
        break;
    case VGA_DAC_R:
        v->dac_read_index = val;
        v->dac_sub = 0;
        v->dac_state = 3;
        break;
    case VGA_DAC_W:
        v->dac_write_index = val;
        v->dac_sub = 0;
        v->dac_state = 0;
        break;
    case VGA_DAC_D:
        v->dac_cache[v->dac_sub++] = val;
        if (v->dac_sub == 3) {
            memcpy(&v->palette[v->dac_write_index * 3], v->dac_cache, 3);
            v->dac_write_index++;
            v->dac_sub = 0;
        }
        break;
    case VGA_GR_I:
        v->gr_index = val & 0xf;
        break;
    case VGA_GR_D:
        v->gr[v->gr_index] = val;
        break;
    case VGA_CRT_IM:
    case VGA_CRT_IC:
        v->crt_index = val;
        break;
    case VGA_CRT_DM:
    case VGA_CRT_DC:
        if (v->crt_index >= VGA_NCRT) {
            break;
        }
        /* CR11 bit 7 write-protects CR00-CR07 (except CR07 bit 4, line compare). */
        if ((v->crt[0x11] & 0x80) && v->crt_index <= 7) {
            if (v->crt_index == 7) {
                v->crt[7] = (uint8_t)((v->crt[7] & ~0x10) | (val & 0x10));
            }
            break;
        }
        v->crt[v->crt_index] = val;
        break;
    case VGA_IS1_M:
    case VGA_IS1_C:
        v->feature = val;
        break;
    default:
        break;
    }
}

uint64_t vga_io_read(struct vga *v, uint64_t off, unsigned size)
{
    uint64_t val = 0;
    pthread_mutex_lock(&v->lock);
    for (unsigned i = 0; i < size && off + i < VGA_IO_LEN; i++) {
        val |= (uint64_t)vga_io_read8(v, off + i) << (8 * i);
    }
    pthread_mutex_unlock(&v->lock);
    return val;
}

void vga_io_write(struct vga *v, uint64_t off, uint64_t val, unsigned size)
{
    pthread_mutex_lock(&v->lock);
    /* A word write (e.g. outw 0x3C4, index | data << 8) is two byte writes. */
    for (unsigned i = 0; i < size && off + i < VGA_IO_LEN; i++) {
        vga_io_write8(v, off + i, (uint8_t)(val >> (8 * i)));
    }
    atomic_fetch_add(&v->gen, 1);
    pthread_mutex_unlock(&v->lock);
}

/* ---- Bochs VBE ---------------------------------------------------------------------- */

static uint32_t vga_vbe_bytespp(uint16_t bpp)
{
    return bpp == 15 ? 2 : (uint32_t)(bpp + 7) / 8;
}

/* Apply ENABLE: check the mode, set the virtual size, clear VRAM. Lock held. */
static void vga_vbe_enable(struct vga *v, uint16_t val)
{
    uint16_t *r = v->vbe;
    if (!(val & VBE_DISPI_ENABLED)) {
        r[VBE_DISPI_INDEX_ENABLE] = val & ~VBE_DISPI_ENABLED;
        return;
    }
    uint16_t bpp = r[VBE_DISPI_INDEX_BPP];
    if (bpp == 0) {
        bpp = r[VBE_DISPI_INDEX_BPP] = 8;
    }
    uint32_t x = r[VBE_DISPI_INDEX_XRES], y = r[VBE_DISPI_INDEX_YRES];
    uint32_t bytespp = vga_vbe_bytespp(bpp);
    if ((bpp != 4 && bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32) || x == 0 ||
        y == 0 || x > VBE_DISPI_MAX_XRES || y > VBE_DISPI_MAX_YRES ||
        (uint64_t)x * y * bytespp > VGA_VRAM_SIZE) {
        log_debug(VGA_TAG, "VBE mode %ux%ux%u refused", x, y, bpp);
        return;
    }
    r[VBE_DISPI_INDEX_VIRT_WIDTH] = (uint16_t)x;
    r[VBE_DISPI_INDEX_VIRT_HEIGHT] =
        (uint16_t)(VGA_VRAM_SIZE / (x * bytespp) > 0xffff ? 0xffff : VGA_VRAM_SIZE / (x * bytespp));
    r[VBE_DISPI_INDEX_X_OFFSET] = 0;
    r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
    r[VBE_DISPI_INDEX_BANK] = 0;
    if (!(val & VBE_DISPI_NOCLEARMEM)) {
        memset(v->vram, 0, (size_t)x * y * bytespp);
    }
    r[VBE_DISPI_INDEX_ENABLE] = val & (VBE_DISPI_ENABLED | VBE_DISPI_8BIT_DAC |
                                       VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM);
    log_debug(VGA_TAG, "VBE mode %ux%ux%u", x, y, bpp);
}

static uint16_t vga_vbe_reg_read(struct vga *v)
{
    uint16_t i = v->vbe_index;
    if (i >= VBE_DISPI_INDEX_NB) {
        return 0;
    }
    if (v->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_GETCAPS) {
        switch (i) {
        case VBE_DISPI_INDEX_XRES:
            return VBE_DISPI_MAX_XRES;
        case VBE_DISPI_INDEX_YRES:
            return VBE_DISPI_MAX_YRES;
        case VBE_DISPI_INDEX_BPP:
            return VBE_DISPI_MAX_BPP;
        default:
            break;
        }
    }
    return v->vbe[i];
}

static void vga_vbe_reg_write(struct vga *v, uint16_t val)
{
    uint16_t *r = v->vbe;
    switch (v->vbe_index) {
    case VBE_DISPI_INDEX_ID:
        if (val >= VBE_DISPI_ID0 && val <= VBE_DISPI_ID5) {
            r[VBE_DISPI_INDEX_ID] = val;
        }
        break;
    case VBE_DISPI_INDEX_XRES:
    case VBE_DISPI_INDEX_YRES:
    case VBE_DISPI_INDEX_BPP:
        /* Mode registers only change while VBE is off (QEMU behaves the same). */
        if (!(r[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED)) {
            r[v->vbe_index] = val;
        }
        break;
    case VBE_DISPI_INDEX_ENABLE:
        if (val & VBE_DISPI_ENABLED) {
            vga_vbe_enable(v, val);
        } else {
            r[VBE_DISPI_INDEX_ENABLE] = val & VBE_DISPI_GETCAPS;
        }
        break;
    case VBE_DISPI_INDEX_BANK:
        r[VBE_DISPI_INDEX_BANK] = (uint16_t)(val < (VGA_VRAM_SIZE >> 16) ? val : 0);
        break;
    case VBE_DISPI_INDEX_VIRT_WIDTH: {
        uint32_t bytespp = vga_vbe_bytespp(r[VBE_DISPI_INDEX_BPP] ? r[VBE_DISPI_INDEX_BPP] : 8);
        if (val >= r[VBE_DISPI_INDEX_XRES] && val > 0) {
            r[VBE_DISPI_INDEX_VIRT_WIDTH] = val;
            uint32_t h = VGA_VRAM_SIZE / ((uint32_t)val * bytespp);
            r[VBE_DISPI_INDEX_VIRT_HEIGHT] = (uint16_t)(h > 0xffff ? 0xffff : h);
        }
        break;
    }
    case VBE_DISPI_INDEX_X_OFFSET:
    case VBE_DISPI_INDEX_Y_OFFSET:
        r[v->vbe_index] = val;
        break;
    default:
        break; /* VIRT_HEIGHT and VIDEO_MEMORY_64K are read-only */
    }
}

uint64_t vga_vbe_read(struct vga *v, uint64_t off, unsigned size)
{
    pthread_mutex_lock(&v->lock);
    uint64_t val = off == 0 ? v->vbe_index : vga_vbe_reg_read(v);
    pthread_mutex_unlock(&v->lock);
    return size == 1 ? (val & 0xff) : (val & 0xffff);
}

void vga_vbe_write(struct vga *v, uint64_t off, uint64_t val, unsigned size)
{
    pthread_mutex_lock(&v->lock);
    if (off == 0) {
        v->vbe_index = (uint16_t)val;
        /* A dword write to 0x1CE carries the data word for 0x1D0 too. */
        if (size == 4) {
            vga_vbe_reg_write(v, (uint16_t)(val >> 16));
        }
    } else {
        vga_vbe_reg_write(v, (uint16_t)val);
    }
    atomic_fetch_add(&v->gen, 1);
    pthread_mutex_unlock(&v->lock);
}

/* ---- VRAM ---------------------------------------------------------------------------- */

uint64_t vga_vram_read(struct vga *v, uint64_t off, unsigned size)
{
    if (size > 8 || off >= VGA_VRAM_SIZE || size > VGA_VRAM_SIZE - off) {
        return ~0ull;
    }
    uint64_t val = 0;
    memcpy(&val, v->vram + off, size);
    return val;
}

void vga_vram_write(struct vga *v, uint64_t off, uint64_t val, unsigned size)
{
    if (size > 8 || off >= VGA_VRAM_SIZE || size > VGA_VRAM_SIZE - off) {
        return;
    }
    memcpy(v->vram + off, &val, size);
    /* An unaligned access may touch two pages. */
    uint64_t p0 = off / VGA_DIRTY_PAGE, p1 = (off + size - 1) / VGA_DIRTY_PAGE;
    for (uint64_t p = p0; p <= p1; p++) {
        if (!(atomic_load_explicit(&v->dirty[p / 64], memory_order_relaxed) &
              (1ull << (p % 64)))) {
            atomic_fetch_or(&v->dirty[p / 64], 1ull << (p % 64));
        }
    }
}

uint32_t vga_generation(struct vga *v)
{
    return atomic_load(&v->gen);
}

void vga_take_dirty(struct vga *v, uint64_t *bitmap, size_t words)
{
    for (size_t i = 0; i < VGA_DIRTY_WORDS; i++) {
        uint64_t w = atomic_exchange(&v->dirty[i], 0);
        if (i < words) {
            bitmap[i] = w;
        }
    }
}

const uint8_t *vga_window(struct vga *v)
{
    return v->mem ? guestmem_ptr(v->mem, VGA_WINDOW_BASE, VGA_WINDOW_SIZE) : NULL;
}

/* ---- rendering ----------------------------------------------------------------------- */

/* Snapshot of the registers a frame needs, taken under the lock. */
struct vga_frame {
    struct vga_mode mode;
    uint8_t crt[VGA_NCRT], seq[VGA_NSEQ], gr[VGA_NGR], ar[VGA_NAR], misc, ar_index;
    uint8_t palette[256 * 3];
    uint16_t vbe[VBE_DISPI_INDEX_NB];
};

static void vga_frame_get(struct vga *v, struct vga_frame *f)
{
    pthread_mutex_lock(&v->lock);
    memcpy(f->crt, v->crt, sizeof(f->crt));
    memcpy(f->seq, v->seq, sizeof(f->seq));
    memcpy(f->gr, v->gr, sizeof(f->gr));
    memcpy(f->ar, v->ar, sizeof(f->ar));
    memcpy(f->palette, v->palette, sizeof(f->palette));
    memcpy(f->vbe, v->vbe, sizeof(f->vbe));
    f->misc = v->misc;
    f->ar_index = v->ar_index;
    pthread_mutex_unlock(&v->lock);
    struct vga_mode *m = &f->mode;
    memset(m, 0, sizeof(*m));
    if (f->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED) {
        m->kind = 2;
        m->width = f->vbe[VBE_DISPI_INDEX_XRES];
        m->height = f->vbe[VBE_DISPI_INDEX_YRES];
        m->bpp = f->vbe[VBE_DISPI_INDEX_BPP];
        uint32_t bytespp = vga_vbe_bytespp((uint16_t)m->bpp);
        m->fb_stride = (uint64_t)f->vbe[VBE_DISPI_INDEX_VIRT_WIDTH] * bytespp;
        m->fb_base = (uint64_t)f->vbe[VBE_DISPI_INDEX_Y_OFFSET] * m->fb_stride +
                     (uint64_t)f->vbe[VBE_DISPI_INDEX_X_OFFSET] * bytespp;
        return;
    }
    /* While PAS is clear the CPU owns the palette and the screen shows the overscan
     * colour: QEMU treats it as a blank screen, and so does the display surface. */
    m->blank = !(f->ar_index & 0x20);
    uint32_t vde =
        f->crt[0x12] | (uint32_t)(f->crt[7] & 0x02) << 7 | (uint32_t)(f->crt[7] & 0x40) << 3;
    uint32_t scan = (f->crt[9] & 0x1f) + 1u;
    uint32_t cols = f->crt[1] + 1u;
    if (f->gr[6] & 0x01) {
        m->kind = 1;
        /* Chain-4 256-colour: 4 pixels per character clock, each doubled. */
        m->width = cols * 4;
        m->height = (vde + 1) / (scan * ((f->crt[9] & 0x80) ? 2 : 1));
        m->bpp = (f->seq[4] & 0x08) ? 8 : 4;
        return;
    }
    m->kind = 0;
    m->cols = cols;
    m->rows = (vde + 1) / scan;
    m->width = cols * ((f->seq[1] & 0x01) ? 8 : 9);
    m->height = m->rows * scan;
}

void vga_get_mode(struct vga *v, struct vga_mode *out)
{
    struct vga_frame f;
    vga_frame_get(v, &f);
    *out = f.mode;
}

static uint32_t vga_dac_rgb(const struct vga_frame *f, uint8_t idx, bool dac8)
{
    const uint8_t *p = &f->palette[idx * 3];
    if (dac8) {
        return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    }
    return (uint32_t)((p[0] & 0x3f) << 2) << 16 | (uint32_t)((p[1] & 0x3f) << 2) << 8 |
           (uint32_t)((p[2] & 0x3f) << 2);
}

/* Attribute controller: 4-bit colour -> DAC index (AR10 bit 7, AR14). */
static uint8_t vga_attr_dac(const struct vga_frame *f, uint8_t c)
{
    uint8_t p = f->ar[c & 0xf] & 0x3f;
    if (f->ar[0x10] & 0x80) {
        return (uint8_t)((p & 0x0f) | ((f->ar[0x14] & 0x0f) << 4));
    }
    return (uint8_t)(p | ((f->ar[0x14] & 0x0c) << 4));
}

static uint64_t vga_text_base(const struct vga_frame *f)
{
    switch ((f->gr[6] >> 2) & 3) {
    case 2:
        return 0xb0000;
    case 3:
        return 0xb8000;
    default:
        return 0xa0000;
    }
}

static uint32_t vga_start_addr(const struct vga_frame *f)
{
    return (uint32_t)f->crt[0x0c] << 8 | f->crt[0x0d];
}

static int vga_render_text(struct vga *v, const struct vga_frame *f, uint32_t *out, uint32_t y0,
                           uint32_t y1)
{
    const struct vga_mode *m = &f->mode;
    const uint8_t *win = v->mem ? guestmem_ptr(v->mem, VGA_WINDOW_BASE, VGA_WINDOW_SIZE) : NULL;
    if (!win) {
        return -ENODEV;
    }
    uint32_t scan = (f->crt[9] & 0x1f) + 1u;
    uint32_t cw = (f->seq[1] & 0x01) ? 8 : 9;
    uint64_t base = vga_text_base(f) - VGA_WINDOW_BASE;
    uint32_t start = vga_start_addr(f);
    uint32_t cursor = (uint32_t)f->crt[0x0e] << 8 | f->crt[0x0f];
    bool cursor_on = !(f->crt[0x0a] & 0x20);
    uint32_t cur_s = f->crt[0x0a] & 0x1f, cur_e = f->crt[0x0b] & 0x1f;
    for (uint32_t row = y0 / scan; row < m->rows && row * scan < y1; row++) {
        for (uint32_t col = 0; col < m->cols; col++) {
            uint32_t cell = start + row * m->cols + col;
            uint64_t o = base + ((uint64_t)cell * 2 & 0x7fff);
            if (o + 1 >= VGA_WINDOW_SIZE) {
                continue;
            }
            uint8_t ch = win[o], at = win[o + 1];
            uint8_t fgc = at & 0x0f, bgc = at >> 4;
            if (f->ar[0x10] & 0x08) {
                bgc &= 7; /* bit 7 is blink, not background intensity */
            }
            uint32_t fg = vga_dac_rgb(f, vga_attr_dac(f, fgc), false);
            uint32_t bg = vga_dac_rgb(f, vga_attr_dac(f, bgc), false);
            /* The font is where the BIOS wrote it through plane 2: 32 bytes per glyph. */
            const uint8_t *glyph = win + (uint32_t)ch * 32;
            for (uint32_t y = 0; y < scan; y++) {
                if (row * scan + y < y0 || row * scan + y >= y1) {
                    continue;
                }
                uint8_t bits = y < 32 ? glyph[y] : 0;
                bool cur = cursor_on && cell == cursor && y >= cur_s && y <= cur_e;
                uint32_t *px = out + (size_t)(row * scan + y) * m->width + col * cw;
                for (uint32_t x = 0; x < cw; x++) {
                    bool on;
                    if (x < 8) {
                        on = bits & (0x80 >> x);
                    } else {
                        /* 9th column repeats the 8th for line-drawing characters. */
                        on = (f->ar[0x10] & 0x04) && ch >= 0xc0 && ch <= 0xdf && (bits & 1);
                    }
                    px[x] = (on || cur) ? fg : bg;
                }
            }
        }
    }
    return 0;
}

static int vga_render_gfx(struct vga *v, const struct vga_frame *f, uint32_t *out, uint32_t y0,
                          uint32_t y1)
{
    const struct vga_mode *m = &f->mode;
    if (m->bpp != 8) {
        /* planar: not emulated */
        memset(out + (size_t)y0 * m->width, 0, (size_t)m->width * (y1 - y0) * 4);
        return 0;
    }
    const uint8_t *win = v->mem ? guestmem_ptr(v->mem, VGA_WINDOW_BASE, 0x10000) : NULL;
    if (!win) {
        return -ENODEV;
    }
    uint32_t start = vga_start_addr(f) * 4;
    uint32_t pitch = f->crt[0x13] * 8u;
    for (uint32_t y = y0; y < y1; y++) {
        for (uint32_t x = 0; x < m->width; x++) {
            uint32_t o = (start + y * pitch + x) & 0xffff;
            out[(size_t)y * m->width + x] = vga_dac_rgb(f, win[o], false);
        }
    }
    return 0;
}

static int vga_render_vbe(struct vga *v, const struct vga_frame *f, uint32_t *out, uint32_t y0,
                          uint32_t y1)
{
    const struct vga_mode *m = &f->mode;
    uint32_t bytespp = vga_vbe_bytespp((uint16_t)m->bpp);
    uint64_t stride = m->fb_stride;
    uint64_t base = m->fb_base;
    bool dac8 = f->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC;
    for (uint32_t y = y0; y < y1; y++) {
        /* The common case (32 bpp, line inside VRAM) is a straight copy of each pixel's
         * low 24 bits. */
        uint64_t lo = base + y * stride;
        if (m->bpp == 32 && lo + (uint64_t)m->width * 4 <= VGA_VRAM_SIZE) {
            const uint8_t *p = v->vram + lo;
            uint32_t *dst = out + (size_t)y * m->width;
            for (uint32_t x = 0; x < m->width; x++) {
                uint32_t px;
                memcpy(&px, p + (size_t)x * 4, 4);
                dst[x] = px & 0xffffff;
            }
            continue;
        }
        for (uint32_t x = 0; x < m->width; x++) {
            uint64_t o = base + y * stride + (uint64_t)x * bytespp;
            uint32_t px = 0;
            if (o + bytespp <= VGA_VRAM_SIZE) {
                const uint8_t *p = v->vram + o;
                switch (m->bpp) {
                case 8:
                    px = vga_dac_rgb(f, p[0], dac8);
                    break;
                case 15: {
                    uint16_t w = (uint16_t)(p[0] | p[1] << 8);
                    px = (uint32_t)((w >> 10) & 0x1f) << 19 | (uint32_t)((w >> 5) & 0x1f) << 11 |
                         (uint32_t)(w & 0x1f) << 3;
                    break;
                }
                case 16: {
                    uint16_t w = (uint16_t)(p[0] | p[1] << 8);
                    px = (uint32_t)((w >> 11) & 0x1f) << 19 | (uint32_t)((w >> 5) & 0x3f) << 10 |
                         (uint32_t)(w & 0x1f) << 3;
                    break;
                }
                case 24:
                case 32:
                    px = (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
                    break;
                default:
                    break;
                }
            }
            out[(size_t)y * m->width + x] = px;
        }
    }
    return 0;
}

static int vga_render_frame(struct vga *v, const struct vga_frame *f, uint32_t *out,
                            size_t max_pixels, uint32_t y0, uint32_t y1)
{
    if (f->mode.width == 0 || f->mode.height == 0 || f->mode.width > VGA_MAX_WIDTH ||
        f->mode.height > VGA_MAX_HEIGHT) {
        return -ENODEV;
    }
    if ((size_t)f->mode.width * f->mode.height > max_pixels) {
        return -ENOSPC;
    }
    if (y1 > f->mode.height) {
        y1 = f->mode.height;
    }
    if (y0 >= y1) {
        return 0;
    }
    switch (f->mode.kind) {
    case 0:
        return vga_render_text(v, f, out, y0, y1);
    case 1:
        return vga_render_gfx(v, f, out, y0, y1);
    default:
        return vga_render_vbe(v, f, out, y0, y1);
    }
}

int vga_render(struct vga *v, uint32_t *out, size_t max_pixels, uint32_t *w, uint32_t *h)
{
    struct vga_frame f;
    vga_frame_get(v, &f);
    int rc = vga_render_frame(v, &f, out, max_pixels, 0, f.mode.height);
    if (rc == 0) {
        *w = f.mode.width;
        *h = f.mode.height;
    }
    return rc;
}

int vga_render_lines(struct vga *v, const struct vga_mode *expect, uint32_t *out,
                     size_t max_pixels, uint32_t y0, uint32_t y1)
{
    struct vga_frame f;
    vga_frame_get(v, &f);
    const struct vga_mode *m = &f.mode;
    if (m->kind != expect->kind || m->width != expect->width || m->height != expect->height ||
        m->bpp != expect->bpp || m->fb_base != expect->fb_base ||
        m->fb_stride != expect->fb_stride) {
        return -EAGAIN;
    }
    return vga_render_frame(v, &f, out, max_pixels, y0, y1);
}

int vga_text(struct vga *v, char *out, size_t len)
{
    struct vga_frame f;
    vga_frame_get(v, &f);
    const uint8_t *win = v->mem ? guestmem_ptr(v->mem, VGA_WINDOW_BASE, VGA_WINDOW_SIZE) : NULL;
    if (f.mode.kind != 0 || !win || f.mode.cols == 0 || f.mode.rows == 0 || len == 0) {
        return -ENODEV;
    }
    uint64_t base = vga_text_base(&f) - VGA_WINDOW_BASE;
    uint32_t start = vga_start_addr(&f);
    size_t n = 0;
    for (uint32_t row = 0; row < f.mode.rows; row++) {
        for (uint32_t col = 0; col <= f.mode.cols; col++) {
            if (n + 1 >= len) {
                out[n] = '\0';
                return (int)n;
            }
            if (col == f.mode.cols) {
                out[n++] = '\n';
                break;
            }
            uint64_t o = base + ((uint64_t)(start + row * f.mode.cols + col) * 2 & 0x7fff);
            uint8_t ch = o < VGA_WINDOW_SIZE ? win[o] : 0;
            out[n++] = ch == 0 ? ' ' : (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
    }
    out[n] = '\0';
    return (int)n;
}

int vga_write_ppm(struct vga *v, const char *path)
{
    size_t max = (size_t)VGA_MAX_WIDTH * VGA_MAX_HEIGHT;
    uint32_t *px = malloc(max * 4);
    if (!px) {
        return -ENOMEM;
    }
    uint32_t w = 0, h = 0;
    int rc = vga_render(v, px, max, &w, &h);
    if (rc == 0) {
        FILE *f = fopen(path, "wb");
        if (!f) {
            rc = -errno;
        } else {
            fprintf(f, "P6\n%u %u\n255\n", w, h);
            for (size_t i = 0; i < (size_t)w * h; i++) {
                uint8_t rgb[3] = {(uint8_t)(px[i] >> 16), (uint8_t)(px[i] >> 8), (uint8_t)px[i]};
                fwrite(rgb, 1, 3, f);
            }
            if (fclose(f) != 0) {
                rc = -EIO;
            }
        }
    }
    free(px);
    return rc;
}

/* ---- bus glue ------------------------------------------------------------------------ */

static uint64_t vga_io_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return vga_io_read(opaque, off, size);
}

static void vga_io_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    vga_io_write(opaque, off, val, size);
}

static uint64_t vga_vbe_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return vga_vbe_read(opaque, off == 0 ? 0 : 1, size);
}

static void vga_vbe_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    vga_vbe_write(opaque, off == 0 ? 0 : 1, val, size);
}

const struct bus_ops vga_io_bus_ops = {.read = vga_io_bus_read, .write = vga_io_bus_write};
const struct bus_ops vga_vbe_bus_ops = {.read = vga_vbe_bus_read, .write = vga_vbe_bus_write};

static void vga_reset(void *dev)
{
    struct vga *v = dev;
    pthread_mutex_lock(&v->lock);
    vga_reset_regs(v);
    atomic_fetch_add(&v->gen, 1);
    pthread_mutex_unlock(&v->lock);
    pci_dev_reset(&v->pci);
}

const struct device_ops vga_device_ops = {.name = "vga", .reset = vga_reset};
