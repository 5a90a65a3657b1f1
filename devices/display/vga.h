/* Standard VGA with the Bochs VBE extensions as the PCI function 1234:1111 (QEMU's
 * "stdvga"), driven by SeaBIOS's vgabios-stdvga.bin and Linux's bochs-drm/vesafb.
 *
 * Registers (IBM VGA reference, FreeVGA): 0x3B0-0x3DF as one I/O range
 * (VGA_IO_BASE, VGA_IO_LEN): attribute controller 0x3C0/0x3C1 with its index/data
 * flip-flop (reset by reading input status 1 at 0x3BA/0x3DA), misc output 0x3C2
 * (read 0x3CC), sequencer 0x3C4/5, DAC 0x3C6-0x3C9, graphics controller 0x3CE/F,
 * CRTC at 0x3B4/5 or 0x3D4/5 (misc bit 0). Bochs VBE: index 0x1CE, data 0x1CF
 * (VGA_VBE_IO_BASE, 16-bit): ID 0xB0C0-0xB0C5, XRES, YRES, BPP, ENABLE (GETCAPS, LFB,
 * NOCLEARMEM), BANK, VIRT_WIDTH/HEIGHT, X/Y_OFFSET, VIDEO_MEMORY_64K.
 *
 * Memory: BAR0 is 16 MiB of VRAM (prefetchable). It is dispatched as MMIO through
 * the PCI BAR trampolines, so it follows the firmware's BAR placement on every engine
 * (each access is an exit: slow but always coherent). The legacy window
 * 0xA0000-0xBFFFF (VGA_WINDOW_BASE, VGA_WINDOW_SIZE) is the VGA's memory too, registered
 * on the MMIO bus with vga_mem_bus_ops (the machine leaves no RAM there): GR06 memory map
 * select decodes A0000/128K, A0000/64K, B0000/32K or B8000/32K; chain-4 (mode 13h),
 * odd/even (text) and planar access with the Graphics Controller's read modes 0/1, write
 * modes 0-3 (set/reset, rotate, logical op, bit mask), the sequencer map mask and the
 * latches. The four planes are interleaved in the first 256 KiB of VRAM (plane p of
 * plane address a at a * 4 + p, QEMU's layout). With VBE on, 0xA0000-0xAFFFF is the
 * bank (VBE_DISPI_INDEX_BANK * 64 KiB) of VRAM, planar for 4 bpp modes.
 *
 * Rendering: vga_render() draws the current mode into an XRGB8888 buffer;
 * vga_text() returns a text-mode screen as text; vga_write_ppm() is the
 * screendump hook tests use. Locking: one mutex (registers, latches, window
 * accesses); rendering reads VRAM without it, as a scanout does. */
#ifndef LODGE_DEVICES_DISPLAY_VGA_H
#define LODGE_DEVICES_DISPLAY_VGA_H

#include "core/bus.h"
#include "devices/device.h"
#include "devices/pci/pci_dev.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guestmem;

#define VGA_IO_BASE 0x3b0
#define VGA_IO_LEN 0x30
#define VGA_VBE_IO_BASE 0x1ce
#define VGA_VBE_IO_LEN 3
#define VGA_VRAM_SIZE (16u << 20)
#define VGA_PCI_VENDOR 0x1234
#define VGA_PCI_DEVICE 0x1111
#define VGA_WINDOW_BASE 0xa0000u
#define VGA_WINDOW_SIZE 0x20000u

/* Bochs VBE DISPI register indexes and values. */
#define VBE_DISPI_INDEX_ID 0x0
#define VBE_DISPI_INDEX_XRES 0x1
#define VBE_DISPI_INDEX_YRES 0x2
#define VBE_DISPI_INDEX_BPP 0x3
#define VBE_DISPI_INDEX_ENABLE 0x4
#define VBE_DISPI_INDEX_BANK 0x5
#define VBE_DISPI_INDEX_VIRT_WIDTH 0x6
#define VBE_DISPI_INDEX_VIRT_HEIGHT 0x7
#define VBE_DISPI_INDEX_X_OFFSET 0x8
#define VBE_DISPI_INDEX_Y_OFFSET 0x9
#define VBE_DISPI_INDEX_VIDEO_MEMORY_64K 0xa
#define VBE_DISPI_INDEX_NB 0xb
#define VBE_DISPI_ID0 0xb0c0
#define VBE_DISPI_ID5 0xb0c5
#define VBE_DISPI_ENABLED 0x01
#define VBE_DISPI_GETCAPS 0x02
#define VBE_DISPI_8BIT_DAC 0x20
#define VBE_DISPI_LFB_ENABLED 0x40
#define VBE_DISPI_NOCLEARMEM 0x80
#define VBE_DISPI_MAX_XRES 2560
#define VBE_DISPI_MAX_YRES 1600
#define VBE_DISPI_MAX_BPP 32

#define VGA_MAX_WIDTH 2560
#define VGA_MAX_HEIGHT 1600

struct vga;

/* mem: guest RAM (kept for callers; the legacy window is the VGA's own memory). */
struct vga *vga_new(const struct guestmem *mem);
void vga_free(struct vga *v);

/* The PCI function (register with pci_host_add_device(ph, slot, 0, &pci_dev_config_ops,
 * vga_pci_dev(v)) after pci_dev_attach). */
struct pci_dev *vga_pci_dev(struct vga *v);

/* Register ports: off from VGA_IO_BASE; VBE off from VGA_VBE_IO_BASE. */
uint64_t vga_io_read(struct vga *v, uint64_t off, unsigned size);
void vga_io_write(struct vga *v, uint64_t off, uint64_t val, unsigned size);
uint64_t vga_vbe_read(struct vga *v, uint64_t off, unsigned size);
void vga_vbe_write(struct vga *v, uint64_t off, uint64_t val, unsigned size);
/* Legacy window access, off from VGA_WINDOW_BASE, with the VGA's memory semantics; bytes
 * the current memory map does not decode read all ones. */
uint64_t vga_mem_read(struct vga *v, uint64_t off, unsigned size);
void vga_mem_write(struct vga *v, uint64_t off, uint64_t val, unsigned size);
/* VRAM (BAR0) access; out-of-range reads all ones. */
uint64_t vga_vram_read(struct vga *v, uint64_t off, unsigned size);
void vga_vram_write(struct vga *v, uint64_t off, uint64_t val, unsigned size);

/* Current mode: 0 text, 1 VGA graphics, 2 VBE; width/height in pixels (text: cells
 * in cols/rows). */
struct vga_mode {
    int kind;
    uint32_t width, height;
    uint32_t cols, rows;
    uint32_t bpp;
    uint64_t fb_base;   /* VBE: VRAM offset of the first visible pixel (X/Y_OFFSET) */
    uint64_t fb_stride; /* VBE: bytes per VRAM line (VIRT_WIDTH * bytes per pixel) */
    bool blank;         /* screen off: attribute index PAS (3C0 bit 5) clear, VBE off */
};
void vga_get_mode(struct vga *v, struct vga_mode *out);

/* Change tracking for on-demand rendering (devices/display/vga_display.c).
 * vga_generation() changes on every register write (mode, palette, cursor, offsets);
 * vga_take_dirty() moves the VRAM pages (VGA_DIRTY_PAGE bytes) written through BAR0 or the
 * legacy window since the last call into bitmap (words of 64 pages; at most
 * VGA_DIRTY_WORDS used) and clears them. Text and planar/256-colour VGA modes live in the
 * first 256 KiB of VRAM (bitmap word 0). */
#define VGA_DIRTY_PAGE 4096u
#define VGA_DIRTY_WORDS (VGA_VRAM_SIZE / VGA_DIRTY_PAGE / 64)
uint32_t vga_generation(struct vga *v);
void vga_take_dirty(struct vga *v, uint64_t *bitmap, size_t words);
/* Like vga_render, but only lines [y0, y1) of a frame in mode *expect (rows at
 * out + y * width). -EAGAIN when the mode is no longer *expect, -ENODEV/-ENOSPC as
 * vga_render. */
int vga_render_lines(struct vga *v, const struct vga_mode *expect, uint32_t *out,
                     size_t max_pixels, uint32_t y0, uint32_t y1);

/* Draw the screen into out (XRGB8888, stride width*4, at most max_pixels). Returns 0
 * with the size in w and h, or -ENOSPC / -ENODEV (display off). */
int vga_render(struct vga *v, uint32_t *out, size_t max_pixels, uint32_t *w, uint32_t *h);
/* Text-mode screen as rows of text ending in '\n' (CP437 above 0x7E shown as '?').
 * Returns the bytes written (NUL-terminated) or -ENODEV outside text mode. */
int vga_text(struct vga *v, char *out, size_t len);
/* Screendump: binary PPM of vga_render's output. 0 or -errno. */
int vga_write_ppm(struct vga *v, const char *path);

extern const struct bus_ops vga_io_bus_ops;    /* VGA_IO_BASE, VGA_IO_LEN */
extern const struct bus_ops vga_vbe_bus_ops;   /* VGA_VBE_IO_BASE, VGA_VBE_IO_LEN */
extern const struct bus_ops vga_mem_bus_ops;   /* MMIO VGA_WINDOW_BASE, VGA_WINDOW_SIZE */
extern const struct device_ops vga_device_ops; /* dev = struct vga * */

#endif
