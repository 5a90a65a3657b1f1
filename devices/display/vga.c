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
    const struct guestmem *mem;       /* guest RAM (unused: the window is VRAM) */
    struct pci_dev pci;               /* 1234:1111 config space and BAR0 */
    uint8_t *vram;                    /* BAR0 contents, VGA_VRAM_SIZE bytes; planes interleaved */
    uint8_t latch[4];                 /* GC data latches, one per plane (loaded by reads) */
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
    memset(v->latch, 0, sizeof(v->latch));
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

/* [off, off+len) of VRAM changed: the viewers redraw what covers it. */
static void vga_mark_dirty(struct vga *v, uint64_t off, uint64_t len)
{
    /* An unaligned access may touch two pages. */
    uint64_t p0 = off / VGA_DIRTY_PAGE, p1 = (off + len - 1) / VGA_DIRTY_PAGE;
    for (uint64_t p = p0; p <= p1; p++) {
        if (!(atomic_load_explicit(&v->dirty[p / 64], memory_order_relaxed) &
              (1ull << (p % 64)))) {
            atomic_fetch_or(&v->dirty[p / 64], 1ull << (p % 64));
        }
    }
}

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
    vga_mark_dirty(v, off, size);
}

/* ---- legacy window (0xA0000-0xBFFFF) ---------------------------------------------------
 *
 * VRAM holds the four planes interleaved, as QEMU does: plane p of plane address a is
 * vram[a * 4 + p]. Chain-4 then addresses VRAM linearly (plane = address bits 0-1), odd/even
 * puts even bytes in planes 0/2 and odd bytes in planes 1/3 at plane address addr / 2, and
 * the planar path moves all four planes of one address through the latches. The 256 KiB
 * that the standard modes use are the first VGA_PLANAR_SIZE bytes of VRAM. */

#define VGA_PLANE_SIZE 0x10000u              /* 64 KiB per plane in standard VGA modes */
#define VGA_PLANAR_SIZE (4 * VGA_PLANE_SIZE) /* what chain-4, odd/even and planar address */
#define VGA_VBE_BANK_SIZE 0x10000u           /* banked VBE window at 0xA0000 */

static bool vga_vbe_on(const struct vga *v)
{
    return v->vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED;
}

/* Window offset -> address inside the region GR06 memory map select decodes, or -1 when
 * the VGA does not decode it (reads float high, writes are dropped). */
static int64_t vga_window_decode(const struct vga *v, uint32_t addr)
{
    switch ((v->gr[6] >> 2) & 3) {
    case 0: /* A0000-BFFFF */
        return addr;
    case 1: /* A0000-AFFFF */
        return addr < 0x10000 ? (int64_t)addr : -1;
    case 2: /* B0000-B7FFF */
        return addr >= 0x10000 && addr < 0x18000 ? (int64_t)addr - 0x10000 : -1;
    default: /* B8000-BFFFF */
        return addr >= 0x18000 ? (int64_t)addr - 0x18000 : -1;
    }
}

static uint32_t vga_latch32(const struct vga *v)
{
    return (uint32_t)v->latch[0] | (uint32_t)v->latch[1] << 8 | (uint32_t)v->latch[2] << 16 |
           (uint32_t)v->latch[3] << 24;
}

/* Expand the low 4 bits of b into a byte per plane (bit p -> 0xFF in byte p). */
static uint32_t vga_expand4(uint8_t b)
{
    uint32_t r = 0;
    for (int p = 0; p < 4; p++) {
        if (b & (1u << p)) {
            r |= 0xffu << (8 * p);
        }
    }
    return r;
}

/* Planar read of plane address pa (VGA reference, Graphics Controller: every read loads the
 * latches; read mode 0 returns GR04's plane, read mode 1 the colour compare result). */
static uint8_t vga_planar_read(struct vga *v, uint64_t pa)
{
    if (pa * 4 + 4 > VGA_VRAM_SIZE) {
        return 0xff;
    }
    memcpy(v->latch, v->vram + pa * 4, 4);
    if (!(v->gr[5] & 0x08)) {
        return v->latch[v->gr[4] & 3];
    }
    /* Colour compare: a bit is 1 where every plane GR07 cares about equals GR02's bit. */
    uint8_t r = 0xff;
    for (int p = 0; p < 4; p++) {
        if (v->gr[7] & (1u << p)) {
            uint8_t want = (v->gr[2] & (1u << p)) ? 0xff : 0x00;
            r &= (uint8_t)~(v->latch[p] ^ want);
        }
    }
    return r;
}

/* Planar write of val at plane address pa: write modes 0-3, data rotate, logical operation,
 * bit mask and the sequencer map mask (VGA reference, Graphics Controller registers). */
static void vga_planar_write(struct vga *v, uint64_t pa, uint8_t val)
{
    if (pa * 4 + 4 > VGA_VRAM_SIZE) {
        return;
    }
    unsigned rot = v->gr[3] & 7;
    uint8_t rotated = (uint8_t)((val >> rot) | (val << ((8 - rot) & 7)));
    uint8_t bit_mask = v->gr[8];
    uint32_t latch = vga_latch32(v);
    uint32_t data;
    switch (v->gr[5] & 3) {
    case 0: {
        /* Planes with enable set/reset (GR01) take GR00's bit, the others the rotated byte. */
        uint32_t esr = vga_expand4(v->gr[1]);
        data = (vga_expand4(v->gr[0]) & esr) | ((rotated * 0x01010101u) & ~esr);
        break;
    }
    case 1:
        /* Latch copy: no logical operation, no bit mask. */
        data = latch;
        bit_mask = 0xff;
        break;
    case 2:
        data = vga_expand4(val);
        break;
    default:
        /* The rotated byte ANDed with the bit mask becomes the mask; set/reset the data. */
        bit_mask &= rotated;
        data = vga_expand4(v->gr[0]);
        break;
    }
    if ((v->gr[5] & 3) != 1) {
        switch ((v->gr[3] >> 3) & 3) {
        case 1:
            data &= latch;
            break;
        case 2:
            data |= latch;
            break;
        case 3:
            data ^= latch;
            break;
        default:
            break;
        }
    }
    uint32_t m = bit_mask * 0x01010101u;
    data = (data & m) | (latch & ~m);
    uint32_t planes = vga_expand4(v->seq[2]);
    uint8_t *dst = v->vram + pa * 4;
    for (int p = 0; p < 4; p++) {
        if (planes & (0xffu << (8 * p))) {
            dst[p] = (uint8_t)(data >> (8 * p));
        }
    }
    vga_mark_dirty(v, pa * 4, 4);
}

/* One byte at window offset addr (0 .. VGA_WINDOW_SIZE - 1). Lock held. */
static uint8_t vga_mem_readb(struct vga *v, uint32_t addr)
{
    if (vga_vbe_on(v)) {
        /* Banked VBE: the 64 KiB window at 0xA0000 shows VRAM at BANK * 64 KiB. */
        if (addr >= VGA_VBE_BANK_SIZE) {
            return 0xff;
        }
        uint64_t o = (uint64_t)v->vbe[VBE_DISPI_INDEX_BANK] * VGA_VBE_BANK_SIZE + addr;
        if (v->vbe[VBE_DISPI_INDEX_BPP] == 4) {
            return vga_planar_read(v, o);
        }
        return o < VGA_VRAM_SIZE ? v->vram[o] : 0xff;
    }
    int64_t a = vga_window_decode(v, addr);
    if (a < 0) {
        return 0xff;
    }
    if (v->seq[4] & 0x08) {
        /* Chain-4 (SR04 bit 3): linear, address bits 0-1 pick the plane. */
        return v->vram[a & (VGA_PLANAR_SIZE - 1)];
    }
    if (v->gr[5] & 0x10) {
        /* Host odd/even read (GR05 bit 4): A0 and GR04 bit 1 pick the plane. */
        unsigned plane = (v->gr[4] & 2) | (a & 1);
        return v->vram[((((uint64_t)a & ~1ull) << 1) | plane) & (VGA_PLANAR_SIZE - 1)];
    }
    return vga_planar_read(v, (uint64_t)a & (VGA_PLANE_SIZE - 1));
}

static void vga_mem_writeb(struct vga *v, uint32_t addr, uint8_t val)
{
    if (vga_vbe_on(v)) {
        if (addr >= VGA_VBE_BANK_SIZE) {
            return;
        }
        uint64_t o = (uint64_t)v->vbe[VBE_DISPI_INDEX_BANK] * VGA_VBE_BANK_SIZE + addr;
        if (v->vbe[VBE_DISPI_INDEX_BPP] == 4) {
            vga_planar_write(v, o, val);
        } else if (o < VGA_VRAM_SIZE) {
            v->vram[o] = val;
            vga_mark_dirty(v, o, 1);
        }
        return;
    }
    int64_t a = vga_window_decode(v, addr);
    if (a < 0) {
        return;
    }
    if (v->seq[4] & 0x08) {
        uint64_t o = (uint64_t)a & (VGA_PLANAR_SIZE - 1);
        if (v->seq[2] & (1u << (o & 3))) {
            v->vram[o] = val;
            vga_mark_dirty(v, o, 1);
        }
        return;
    }
    if (!(v->seq[4] & 0x04)) {
        /* Odd/even (SR04 bit 2 clear): text modes, characters in plane 0, attributes in 1. */
        unsigned plane = (v->gr[4] & 2) | (a & 1);
        if (v->seq[2] & (1u << plane)) {
            uint64_t o = ((((uint64_t)a & ~1ull) << 1) | plane) & (VGA_PLANAR_SIZE - 1);
            v->vram[o] = val;
            vga_mark_dirty(v, o, 1);
        }
        return;
    }
    vga_planar_write(v, (uint64_t)a & (VGA_PLANE_SIZE - 1), val);
}

uint64_t vga_mem_read(struct vga *v, uint64_t off, unsigned size)
{
    if (size == 0 || size > 8 || off >= VGA_WINDOW_SIZE || size > VGA_WINDOW_SIZE - off) {
        return ~0ull;
    }
    uint64_t val = 0;
    pthread_mutex_lock(&v->lock);
    for (unsigned i = 0; i < size; i++) {
        val |= (uint64_t)vga_mem_readb(v, (uint32_t)off + i) << (8 * i);
    }
    pthread_mutex_unlock(&v->lock);
    return val;
}

void vga_mem_write(struct vga *v, uint64_t off, uint64_t val, unsigned size)
{
    if (size == 0 || size > 8 || off >= VGA_WINDOW_SIZE || size > VGA_WINDOW_SIZE - off) {
        return;
    }
    pthread_mutex_lock(&v->lock);
    for (unsigned i = 0; i < size; i++) {
        vga_mem_writeb(v, (uint32_t)off + i, (uint8_t)(val >> (8 * i)));
    }
    pthread_mutex_unlock(&v->lock);
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
        /* 256-colour shift mode (GR05 bit 6; chain-4 implies it in the BIOS modes): 4
         * pixels per character clock, each doubled; 16-colour planar: 8 per clock. */
        m->bpp = ((f->gr[5] & 0x40) || (f->seq[4] & 0x08)) ? 8 : 4;
        m->width = cols * (m->bpp == 8 ? 4 : 8);
        m->height = (vde + 1) / (scan * ((f->crt[9] & 0x80) ? 2 : 1));
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

/* Start address (CR0C/CR0D): a character cell in text modes, a plane byte in graphics. */
static uint32_t vga_start_addr(const struct vga_frame *f)
{
    return (uint32_t)f->crt[0x0c] << 8 | f->crt[0x0d];
}

/* Text cell i lives at plane address i (odd/even: character in plane 0, attribute in 1). */
static const uint8_t *vga_text_cell(const struct vga *v, uint32_t cell)
{
    return v->vram + ((uint64_t)cell * 4 & (VGA_PLANAR_SIZE - 1));
}

/* Glyph row y of character ch: plane 2, in the font SR03 selects (attribute bit 3 picks
 * map A, VGA reference "Character Map Select Register"). */
static uint8_t vga_glyph_row(const struct vga *v, const struct vga_frame *f, uint8_t ch,
                             uint8_t at, uint32_t y)
{
    uint8_t sel = (at & 0x08) ? (uint8_t)(((f->seq[3] >> 2) & 3) | ((f->seq[3] >> 3) & 4))
                              : (uint8_t)((f->seq[3] & 3) | ((f->seq[3] >> 2) & 4));
    uint32_t font = (sel & 3) * 0x4000u + (sel >> 2) * 0x2000u;
    uint32_t pa = (font + (uint32_t)ch * 32 + y) & (VGA_PLANE_SIZE - 1);
    return v->vram[(uint64_t)pa * 4 + 2];
}

static int vga_render_text(struct vga *v, const struct vga_frame *f, uint32_t *out, uint32_t y0,
                           uint32_t y1)
{
    const struct vga_mode *m = &f->mode;
    uint32_t scan = (f->crt[9] & 0x1f) + 1u;
    uint32_t cw = (f->seq[1] & 0x01) ? 8 : 9;
    uint32_t start = vga_start_addr(f);
    uint32_t cursor = (uint32_t)f->crt[0x0e] << 8 | f->crt[0x0f];
    bool cursor_on = !(f->crt[0x0a] & 0x20);
    uint32_t cur_s = f->crt[0x0a] & 0x1f, cur_e = f->crt[0x0b] & 0x1f;
    for (uint32_t row = y0 / scan; row < m->rows && row * scan < y1; row++) {
        for (uint32_t col = 0; col < m->cols; col++) {
            uint32_t cell = start + row * m->cols + col;
            const uint8_t *c = vga_text_cell(v, cell);
            uint8_t ch = c[0], at = c[1];
            uint8_t fgc = at & 0x0f, bgc = at >> 4;
            if (f->ar[0x10] & 0x08) {
                bgc &= 7; /* bit 7 is blink, not background intensity */
            }
            uint32_t fg = vga_dac_rgb(f, vga_attr_dac(f, fgc), false);
            uint32_t bg = vga_dac_rgb(f, vga_attr_dac(f, bgc), false);
            for (uint32_t y = 0; y < scan; y++) {
                if (row * scan + y < y0 || row * scan + y >= y1) {
                    continue;
                }
                uint8_t bits = y < 32 ? vga_glyph_row(v, f, ch, at, y) : 0;
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

/* 16-colour planar pixels: bit 7 - x % 8 of the four planes at plane address
 * base + y * stride + x / 8 form the colour, which AR12 (colour plane enable) masks and the
 * attribute palette maps to a DAC entry. pa_limit: plane addresses wrap below it. */
static void vga_render_planar(const struct vga *v, const struct vga_frame *f, uint32_t *out,
                              uint32_t width, uint64_t base, uint64_t stride, uint64_t pa_limit,
                              uint32_t y0, uint32_t y1)
{
    uint32_t lut[16];
    for (unsigned c = 0; c < 16; c++) {
        lut[c] = vga_dac_rgb(f, vga_attr_dac(f, (uint8_t)(c & f->ar[0x12])), false);
    }
    for (uint32_t y = y0; y < y1; y++) {
        uint32_t *dst = out + (size_t)y * width;
        for (uint32_t x = 0; x < width; x += 8) {
            uint64_t pa = (base + (uint64_t)y * stride + x / 8) % pa_limit;
            const uint8_t *p = v->vram + pa * 4;
            for (uint32_t b = 0; b < 8 && x + b < width; b++) {
                unsigned sh = 7 - b;
                unsigned c = ((p[0] >> sh) & 1) | ((p[1] >> sh) & 1) << 1 |
                             ((p[2] >> sh) & 1) << 2 | ((p[3] >> sh) & 1) << 3;
                dst[x + b] = lut[c];
            }
        }
    }
}

static int vga_render_gfx(struct vga *v, const struct vga_frame *f, uint32_t *out, uint32_t y0,
                          uint32_t y1)
{
    const struct vga_mode *m = &f->mode;
    uint32_t start = vga_start_addr(f);
    if (m->bpp != 8) {
        /* CR13 counts words of plane bytes per line (byte mode, as the BIOS modes set). */
        vga_render_planar(v, f, out, m->width, start, f->crt[0x13] * 2u, VGA_PLANE_SIZE, y0, y1);
        return 0;
    }
    /* 256 colours: VRAM read linearly (chain-4 layout; unchained "mode X" alike). */
    uint32_t pitch = f->crt[0x13] * 8u;
    for (uint32_t y = y0; y < y1; y++) {
        for (uint32_t x = 0; x < m->width; x++) {
            uint32_t o = (start * 4 + y * pitch + x) & (VGA_PLANAR_SIZE - 1);
            out[(size_t)y * m->width + x] = vga_dac_rgb(f, v->vram[o], false);
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
    if (m->bpp == 4) {
        /* 16-colour VBE modes are planar: VIRT_WIDTH / 8 plane bytes per line. */
        uint64_t pstride = f->vbe[VBE_DISPI_INDEX_VIRT_WIDTH] / 8u;
        uint64_t pbase = (uint64_t)f->vbe[VBE_DISPI_INDEX_Y_OFFSET] * pstride +
                         f->vbe[VBE_DISPI_INDEX_X_OFFSET] / 8u;
        vga_render_planar(v, f, out, m->width, pbase, pstride, VGA_VRAM_SIZE / 4, y0, y1);
        return 0;
    }
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
    if (f.mode.kind != 0 || f.mode.cols == 0 || f.mode.rows == 0 || len == 0) {
        return -ENODEV;
    }
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
            uint8_t ch = vga_text_cell(v, start + row * f.mode.cols + col)[0];
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

static uint64_t vga_mem_bus_read(void *opaque, uint64_t off, unsigned size)
{
    return vga_mem_read(opaque, off, size);
}

static void vga_mem_bus_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    vga_mem_write(opaque, off, val, size);
}

const struct bus_ops vga_io_bus_ops = {.read = vga_io_bus_read, .write = vga_io_bus_write};
const struct bus_ops vga_mem_bus_ops = {.read = vga_mem_bus_read, .write = vga_mem_bus_write};
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
