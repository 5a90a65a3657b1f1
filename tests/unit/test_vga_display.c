/* The VGA on a display surface (devices/display/vga_display.c): text cells drawn with
 * their attribute colours, VBE 32 bpp and 8 bpp palette pixels, mode changes becoming
 * surface modes, damage limited to what changed, text screendumps, display off; planar
 * 16-colour frames (modes 12h, 0Dh, VBE 4 bpp) and banked VBE drawn through the window. */
#include "devices/display/vga.h"
#include "devices/display/vga_display.h"
#include "ui/surface.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void outb(struct vga *v, uint16_t port, uint8_t val)
{
    vga_io_write(v, port - VGA_IO_BASE, val, 1);
}

static void vbe_set(struct vga *v, uint16_t idx, uint16_t val)
{
    vga_vbe_write(v, 0, idx, 2);
    vga_vbe_write(v, 1, val, 2);
}

static void dac_set(struct vga *v, uint8_t idx, uint8_t r, uint8_t g, uint8_t b)
{
    outb(v, 0x3c8, idx);
    outb(v, 0x3c9, r);
    outb(v, 0x3c9, g);
    outb(v, 0x3c9, b);
}

/* Bytes through the legacy window at guest address gpa (0xA0000-0xBFFFF). */
static void win_write(struct vga *v, uint32_t gpa, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        vga_mem_write(v, gpa - VGA_WINDOW_BASE + i, buf[i], 1);
    }
}

static void seq_set(struct vga *v, uint8_t idx, uint8_t val)
{
    outb(v, 0x3c4, idx);
    outb(v, 0x3c5, val);
}

static void gr_set(struct vga *v, uint8_t idx, uint8_t val)
{
    outb(v, 0x3ce, idx);
    outb(v, 0x3cf, val);
}

/* A glyph into font map 0 as the VGA BIOS loads it: plane 2 only, planar, at 0xA0000. */
static void font_load(struct vga *v, uint8_t ch, const uint8_t *rows, size_t n)
{
    seq_set(v, 2, 0x04);
    seq_set(v, 4, 0x06);
    gr_set(v, 5, 0x00);
    gr_set(v, 6, 0x04);
    gr_set(v, 8, 0xff);
    win_write(v, 0xa0000 + ch * 32u, rows, n);
    seq_set(v, 2, 0x03);
    seq_set(v, 4, 0x02);
    gr_set(v, 5, 0x10);
    gr_set(v, 6, 0x0e);
}

static uint32_t pixel(struct surface *s, uint32_t x, uint32_t y)
{
    struct surface_mode m;
    surface_get_mode(s, &m);
    uint32_t px;
    memcpy(&px, surface_data(s) + (size_t)y * m.stride + (size_t)x * 4, 4);
    return px & 0xffffff;
}

/* 80x25 text with 9-dot cells as the VGA BIOS's mode 3 programs it, an identity
 * attribute palette and the 16 CGA colours in the DAC (6-bit values). */
static void text_mode_3(struct vga *v)
{
    const uint8_t crt[] = {
        [0x01] = 0x4f, [0x07] = 0x1f, [0x09] = 0x4f, [0x0a] = 0x20, [0x0b] = 0x0e, [0x12] = 0x8f};
    for (unsigned i = 0; i < sizeof(crt); i++) {
        outb(v, 0x3d4, (uint8_t)i);
        outb(v, 0x3d5, crt[i]);
    }
    gr_set(v, 5, 0x10); /* host odd/even */
    gr_set(v, 6, 0x0e); /* text, B8000, chain odd/even */
    seq_set(v, 1, 0x00);
    seq_set(v, 2, 0x03); /* planes 0 and 1: characters and attributes */
    seq_set(v, 4, 0x02); /* odd/even addressing */
    (void)vga_io_read(v, 0x3da - VGA_IO_BASE, 1);
    for (int i = 0; i < 16; i++) {
        outb(v, 0x3c0, (uint8_t)i);
        outb(v, 0x3c0, (uint8_t)i);
    }
    outb(v, 0x3c0, 0x10);
    outb(v, 0x3c0, 0x0c); /* AR10: line graphics, blink (background limited to 0-7) */
    outb(v, 0x3c0, 0x20); /* PAS: the attribute controller drives the screen */
    dac_set(v, 1, 0x00, 0x00, 0x2a); /* blue */
    dac_set(v, 14, 0x3f, 0x3f, 0x15); /* yellow */
}

static void test_text_cells(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    text_mode_3(v);
    /* "Hi" at row 2, column 3: yellow on blue (attribute 0x1E) */
    uint8_t cells[4] = {'H', 0x1e, 'i', 0x1e};
    win_write(v, 0xb8000 + (2 * 80 + 3) * 2, cells, sizeof(cells));
    uint8_t glyph[16] = {0};
    glyph[5] = 0x81; /* 'H' line 5: first and last dot of the 8 */
    font_load(v, 'H', glyph, sizeof(glyph));

    struct vga_display *d = NULL;
    CU_ASSERT_EQUAL_FATAL(vga_display_new(v, 0, &d), 0);
    struct surface *s = vga_display_surface(d);
    struct surface_rect r[SURFACE_MAX_DAMAGE];
    surface_take_damage(s, r, SURFACE_MAX_DAMAGE); /* refreshes; drops the initial damage */
    struct surface_mode m;
    surface_get_mode(s, &m);
    CU_ASSERT_EQUAL(m.width, 720);
    CU_ASSERT_EQUAL(m.height, 400);
    uint32_t x0 = 3 * 9, y0 = 2 * 16;
    CU_ASSERT_EQUAL(pixel(s, x0 + 0, y0 + 5), 0xfcfc54u); /* lit dot: foreground 14 */
    CU_ASSERT_EQUAL(pixel(s, x0 + 7, y0 + 5), 0xfcfc54u);
    CU_ASSERT_EQUAL(pixel(s, x0 + 1, y0 + 5), 0x0000a8u); /* unlit: background 1 */
    CU_ASSERT_EQUAL(pixel(s, x0 + 8, y0 + 5), 0x0000a8u); /* 9th dot: not line graphics */
    CU_ASSERT_EQUAL(pixel(s, x0 + 0, y0 + 4), 0x0000a8u);
    CU_ASSERT_EQUAL(pixel(s, 0, 0), 0u); /* empty cell: attribute 0, black */

    /* Nothing changed: no damage. */
    CU_ASSERT_EQUAL(vga_display_refresh(d), 0);
    /* A cell written through the window is seen on the next refresh. */
    uint8_t cell[2] = {'H', 0x1e};
    win_write(v, 0xb8000 + (10 * 80) * 2, cell, 2);
    CU_ASSERT(vga_display_refresh(d) > 0);
    CU_ASSERT_EQUAL(pixel(s, 0, 10 * 16 + 5), 0xfcfc54u);
    /* A palette write (register) redraws too. */
    dac_set(v, 14, 0x3f, 0x00, 0x00);
    CU_ASSERT(vga_display_refresh(d) > 0);
    CU_ASSERT_EQUAL(pixel(s, 0, 10 * 16 + 5), 0xfc0000u);

    /* The text screendump. */
    char text[81 * 25 + 1];
    CU_ASSERT_EQUAL(surface_text(s, text, sizeof(text)), 81 * 25);
    CU_ASSERT_EQUAL(strncmp(text + 2 * 81 + 3, "Hi", 2), 0);
    char path[] = "/tmp/lodge-vga-display-XXXXXX.txt";
    int fd = mkstemps(path, 4);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL(surface_screendump(s, path), 0);
    FILE *f = fopen(path, "r");
    char line[100] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
    CU_ASSERT_EQUAL(strncmp(line, "   Hi ", 6), 0);
    fclose(f);
    unlink(path);
    vga_display_free(d);
    vga_free(v);
}

static void vbe_mode(struct vga *v, uint16_t w, uint16_t h, uint16_t bpp, uint16_t flags)
{
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, 0);
    vbe_set(v, VBE_DISPI_INDEX_XRES, w);
    vbe_set(v, VBE_DISPI_INDEX_YRES, h);
    vbe_set(v, VBE_DISPI_INDEX_BPP, bpp);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED | flags);
}

static void test_vbe_32bpp(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    vbe_mode(v, 1024, 768, 32, 0);
    struct vga_display *d = NULL;
    CU_ASSERT_EQUAL_FATAL(vga_display_new(v, 0, &d), 0);
    struct surface *s = vga_display_surface(d);
    struct surface_rect r[SURFACE_MAX_DAMAGE];
    CU_ASSERT_EQUAL(surface_take_damage(s, r, SURFACE_MAX_DAMAGE), 1);
    struct surface_mode m;
    surface_get_mode(s, &m);
    CU_ASSERT_EQUAL(m.width, 1024);
    CU_ASSERT_EQUAL(m.height, 768);
    CU_ASSERT_EQUAL(m.stride, 4096);
    CU_ASSERT_EQUAL(r[0].w, 1024);
    CU_ASSERT_EQUAL(r[0].h, 768);
    CU_ASSERT_EQUAL(surface_take_damage(s, r, SURFACE_MAX_DAMAGE), 0);

    /* One pixel at (10, 500) through BAR0: only its line is redrawn and damaged (one
     * 4 KiB page is exactly one 1024x32bpp line). */
    vga_vram_write(v, (500 * 1024 + 10) * 4, 0xff123456, 4);
    CU_ASSERT_EQUAL(surface_take_damage(s, r, SURFACE_MAX_DAMAGE), 1);
    CU_ASSERT_EQUAL(r[0].y, 500);
    CU_ASSERT_EQUAL(r[0].h, 1);
    CU_ASSERT_EQUAL(r[0].w, 1024);
    CU_ASSERT_EQUAL(pixel(s, 10, 500), 0x123456u);
    CU_ASSERT_EQUAL(pixel(s, 11, 500), 0u);
    /* Two far-apart writes: two separate rectangles. */
    vga_vram_write(v, (3 * 1024) * 4, 0x00ff0000, 4);
    vga_vram_write(v, (700 * 1024 + 1023) * 4, 0x0000ff00, 4);
    CU_ASSERT_EQUAL(surface_take_damage(s, r, SURFACE_MAX_DAMAGE), 2);
    CU_ASSERT_EQUAL(pixel(s, 0, 3), 0xff0000u);
    CU_ASSERT_EQUAL(pixel(s, 1023, 700), 0x00ff00u);
    /* Panning (Y_OFFSET) is a register change: full redraw shifted by one line. */
    vbe_set(v, VBE_DISPI_INDEX_Y_OFFSET, 1);
    CU_ASSERT_EQUAL(surface_take_damage(s, r, SURFACE_MAX_DAMAGE), 1);
    CU_ASSERT_EQUAL(r[0].h, 768);
    CU_ASSERT_EQUAL(pixel(s, 10, 499), 0x123456u);
    /* Not a text mode: no text dump. */
    char text[64];
    CU_ASSERT_EQUAL(surface_text(s, text, sizeof(text)), -ENODEV);
    /* Mode change: the surface follows. */
    vbe_mode(v, 800, 600, 32, 0);
    vga_display_refresh(d);
    surface_get_mode(s, &m);
    CU_ASSERT_EQUAL(m.width, 800);
    CU_ASSERT_EQUAL(m.height, 600);
    CU_ASSERT_EQUAL(m.stride, 3200);
    /* Display off (VBE disabled, PAS clear): black, and the last mode is kept. */
    vga_vram_write(v, 0, 0xffffff, 4);
    vga_display_refresh(d);
    CU_ASSERT_EQUAL(pixel(s, 0, 0), 0xffffffu);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, 0);
    CU_ASSERT(vga_display_refresh(d) > 0);
    CU_ASSERT_EQUAL(pixel(s, 0, 0), 0u);
    surface_get_mode(s, &m);
    CU_ASSERT_EQUAL(m.width, 800);
    vga_display_free(d);
    vga_free(v);
}

static void test_vbe_8bpp_palette(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    vbe_mode(v, 640, 480, 8, 0);
    dac_set(v, 5, 0x3f, 0x20, 0x00); /* 6-bit DAC: scaled by 4 */
    vga_vram_write(v, 640 * 2 + 7, 5, 1);
    struct vga_display *d = NULL;
    CU_ASSERT_EQUAL_FATAL(vga_display_new(v, 0, &d), 0);
    struct surface *s = vga_display_surface(d);
    vga_display_refresh(d);
    struct surface_mode m;
    surface_get_mode(s, &m);
    CU_ASSERT_EQUAL(m.width, 640);
    CU_ASSERT_EQUAL(m.height, 480);
    CU_ASSERT_EQUAL(pixel(s, 7, 2), 0xfc8000u);
    CU_ASSERT_EQUAL(pixel(s, 6, 2), 0u); /* index 0: black */
    /* Changing the palette entry recolours the pixel without touching VRAM. */
    dac_set(v, 5, 0x00, 0x3f, 0x00);
    CU_ASSERT(vga_display_refresh(d) > 0);
    CU_ASSERT_EQUAL(pixel(s, 7, 2), 0x00fc00u);
    /* 8-bit DAC (VBE_DISPI_8BIT_DAC): entries are used as written. */
    vbe_mode(v, 640, 480, 8, VBE_DISPI_8BIT_DAC | VBE_DISPI_NOCLEARMEM);
    dac_set(v, 5, 0x12, 0x34, 0x56);
    vga_display_refresh(d);
    CU_ASSERT_EQUAL(pixel(s, 7, 2), 0x123456u);
    vga_display_free(d);
    vga_free(v);
}

/* Mode 12h as the VGA BIOS programs it: 640x480, 16 colours in four planes at 0xA0000,
 * attribute palette identity except entry 6 -> DAC 0x14 (the CGA brown). */
static void mode_12h(struct vga *v)
{
    const uint8_t crt[] = {[0x01] = 0x4f, [0x07] = 0x3e, [0x09] = 0x40, [0x12] = 0xdf,
                           [0x13] = 0x28, [0x17] = 0xe3};
    for (unsigned i = 0; i < sizeof(crt); i++) {
        outb(v, 0x3d4, (uint8_t)i);
        outb(v, 0x3d5, crt[i]);
    }
    seq_set(v, 1, 0x01);
    seq_set(v, 2, 0x0f);
    seq_set(v, 4, 0x06);
    gr_set(v, 5, 0x00);
    gr_set(v, 6, 0x05);
    gr_set(v, 7, 0x0f);
    gr_set(v, 8, 0xff);
    (void)vga_io_read(v, 0x3da - VGA_IO_BASE, 1);
    for (int i = 0; i < 16; i++) {
        outb(v, 0x3c0, (uint8_t)i);
        outb(v, 0x3c0, (uint8_t)(i == 6 ? 0x14 : i));
    }
    outb(v, 0x3c0, 0x10);
    outb(v, 0x3c0, 0x01); /* AR10: graphics */
    outb(v, 0x3c0, 0x12);
    outb(v, 0x3c0, 0x0f); /* AR12: all colour planes */
    outb(v, 0x3c0, 0x20);
    dac_set(v, 4, 0x2a, 0x00, 0x00);    /* red */
    dac_set(v, 9, 0x15, 0x15, 0x3f);    /* light blue */
    dac_set(v, 14, 0x3f, 0x3f, 0x15);   /* yellow */
    dac_set(v, 0x14, 0x2a, 0x15, 0x00); /* brown */
}

/* One pixel in write mode 2, as a BIOS "write dot": bit mask for x, latches kept. */
static void put_pixel_12h(struct vga *v, uint32_t x, uint32_t y, uint8_t colour)
{
    gr_set(v, 5, 0x02);
    gr_set(v, 8, (uint8_t)(0x80 >> (x % 8)));
    uint32_t off = y * 80 + x / 8;
    (void)vga_mem_read(v, off, 1);
    vga_mem_write(v, off, colour, 1);
    gr_set(v, 8, 0xff);
    gr_set(v, 5, 0x00);
}

static void test_mode_12h(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    mode_12h(v);
    put_pixel_12h(v, 100, 50, 4);
    put_pixel_12h(v, 101, 50, 9);
    put_pixel_12h(v, 639, 479, 6);
    /* A horizontal line in colour 14 on row 200 through set/reset (write mode 0). */
    gr_set(v, 0, 14);
    gr_set(v, 1, 0x0f);
    for (uint32_t i = 0; i < 80; i++) {
        vga_mem_write(v, 200 * 80 + i, 0, 1);
    }
    gr_set(v, 1, 0x00);
    struct vga_mode mode;
    vga_get_mode(v, &mode);
    CU_ASSERT_EQUAL(mode.kind, 1);
    CU_ASSERT_EQUAL(mode.bpp, 4);
    struct vga_display *d = NULL;
    CU_ASSERT_EQUAL_FATAL(vga_display_new(v, 0, &d), 0);
    struct surface *s = vga_display_surface(d);
    vga_display_refresh(d);
    struct surface_mode m;
    surface_get_mode(s, &m);
    CU_ASSERT_EQUAL(m.width, 640);
    CU_ASSERT_EQUAL(m.height, 480);
    CU_ASSERT_EQUAL(pixel(s, 100, 50), 0xa80000u);
    CU_ASSERT_EQUAL(pixel(s, 101, 50), 0x5454fcu);
    CU_ASSERT_EQUAL(pixel(s, 99, 50), 0u);
    CU_ASSERT_EQUAL(pixel(s, 102, 50), 0u);
    CU_ASSERT_EQUAL(pixel(s, 639, 479), 0xa85400u); /* via attribute entry 6 -> DAC 0x14 */
    CU_ASSERT_EQUAL(pixel(s, 0, 200), 0xfcfc54u);
    CU_ASSERT_EQUAL(pixel(s, 639, 200), 0xfcfc54u);
    CU_ASSERT_EQUAL(pixel(s, 0, 201), 0u);
    /* A later window write shows on the next refresh; nothing more: no damage. */
    CU_ASSERT_EQUAL(vga_display_refresh(d), 0);
    put_pixel_12h(v, 0, 0, 9);
    CU_ASSERT(vga_display_refresh(d) > 0);
    CU_ASSERT_EQUAL(pixel(s, 0, 0), 0x5454fcu);
    /* AR12 colour plane enable: with plane 3 off colour 9 shows as 1 (DAC 1 is black). */
    (void)vga_io_read(v, 0x3da - VGA_IO_BASE, 1);
    outb(v, 0x3c0, 0x12);
    outb(v, 0x3c0, 0x07);
    outb(v, 0x3c0, 0x20);
    vga_display_refresh(d);
    CU_ASSERT_EQUAL(pixel(s, 0, 0), 0u);
    CU_ASSERT_EQUAL(pixel(s, 100, 50), 0xa80000u);
    vga_display_free(d);
    vga_free(v);
}

/* 320x200x16 (mode 0Dh): 40 character clocks, double scan. */
static void test_mode_0dh(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    mode_12h(v);
    const uint8_t crt[][2] = {{0x01, 0x27}, {0x07, 0x1f}, {0x09, 0xc0}, {0x12, 0x8f},
                              {0x13, 0x14}};
    for (unsigned i = 0; i < sizeof(crt) / sizeof(crt[0]); i++) {
        outb(v, 0x3d4, crt[i][0]);
        outb(v, 0x3d5, crt[i][1]);
    }
    seq_set(v, 1, 0x09);
    gr_set(v, 5, 0x02);
    gr_set(v, 8, 0x01);
    vga_mem_write(v, 199 * 40 + 39, 4, 1); /* last pixel of the last line */
    struct vga_mode mode;
    vga_get_mode(v, &mode);
    CU_ASSERT_EQUAL(mode.width, 320);
    CU_ASSERT_EQUAL(mode.height, 200);
    uint32_t *px = calloc(320 * 200, 4);
    uint32_t w = 0, h = 0;
    CU_ASSERT_EQUAL(vga_render(v, px, 320 * 200, &w, &h), 0);
    CU_ASSERT_EQUAL(px[199 * 320 + 319] & 0xffffff, 0xa80000u);
    CU_ASSERT_EQUAL(px[199 * 320 + 318] & 0xffffff, 0u);
    free(px);
    vga_free(v);
}

/* Banked VBE: a byte through the 0xA0000 window in bank 1 is a pixel on the surface. */
static void test_vbe_banked(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, 0);
    vbe_set(v, VBE_DISPI_INDEX_XRES, 640);
    vbe_set(v, VBE_DISPI_INDEX_YRES, 480);
    vbe_set(v, VBE_DISPI_INDEX_BPP, 8);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED); /* no LFB: banked */
    dac_set(v, 9, 0x15, 0x15, 0x3f);
    struct vga_display *d = NULL;
    CU_ASSERT_EQUAL_FATAL(vga_display_new(v, 0, &d), 0);
    struct surface *s = vga_display_surface(d);
    vga_display_refresh(d);
    struct surface_rect r[SURFACE_MAX_DAMAGE];
    surface_take_damage(s, r, SURFACE_MAX_DAMAGE);
    /* VRAM 0x10000 + 0x100 = 65792 = line 102, x 512. */
    vbe_set(v, VBE_DISPI_INDEX_BANK, 1);
    vga_mem_write(v, 0x100, 9, 1);
    CU_ASSERT_EQUAL(surface_take_damage(s, r, SURFACE_MAX_DAMAGE), 1);
    CU_ASSERT(r[0].y <= 102 && r[0].y + r[0].h > 102);
    CU_ASSERT_EQUAL(pixel(s, 512, 102), 0x5454fcu);
    CU_ASSERT_EQUAL(pixel(s, 511, 102), 0u);
    vga_display_free(d);
    vga_free(v);
}

/* 16-colour VBE (800x600x4) is planar behind the bank window. */
static void test_vbe_planar(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    mode_12h(v);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, 0);
    vbe_set(v, VBE_DISPI_INDEX_XRES, 800);
    vbe_set(v, VBE_DISPI_INDEX_YRES, 600);
    vbe_set(v, VBE_DISPI_INDEX_BPP, 4);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
    /* pixel (800 * 599 + 799) / 8 = plane byte 59999: bank 0, rightmost bit. */
    gr_set(v, 5, 0x02);
    gr_set(v, 8, 0x01);
    vga_mem_write(v, 59999, 14, 1);
    uint32_t *px = calloc(800 * 600, 4);
    uint32_t w = 0, h = 0;
    CU_ASSERT_EQUAL(vga_render(v, px, 800 * 600, &w, &h), 0);
    CU_ASSERT_EQUAL(w, 800);
    CU_ASSERT_EQUAL(px[599 * 800 + 799] & 0xffffff, 0xfcfc54u);
    CU_ASSERT_EQUAL(px[599 * 800 + 798] & 0xffffff, 0u);
    free(px);
    vga_free(v);
}

/* The refresher thread brings the surface up to date without any viewer asking. */
static void test_refresher_thread(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    vbe_mode(v, 320, 200, 32, 0);
    struct vga_display *d = NULL;
    CU_ASSERT_EQUAL_FATAL(vga_display_new(v, 5, &d), 0);
    struct surface *s = vga_display_surface(d);
    vga_vram_write(v, 0, 0xabcdef, 4);
    int waited = 0;
    while (pixel(s, 0, 0) != 0xabcdefu && waited < 2000) {
        usleep(1000);
        waited++;
    }
    CU_ASSERT_EQUAL(pixel(s, 0, 0), 0xabcdefu);
    vga_display_free(d);
    vga_free(v);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("vga_display", NULL, NULL);
    CU_add_test(s, "text cells with attribute colours", test_text_cells);
    CU_add_test(s, "VBE 32 bpp, dirty lines, panning, mode change", test_vbe_32bpp);
    CU_add_test(s, "VBE 8 bpp palette", test_vbe_8bpp_palette);
    CU_add_test(s, "refresher thread", test_refresher_thread);
    CU_add_test(s, "mode 12h planar frame", test_mode_12h);
    CU_add_test(s, "mode 0Dh 320x200x16", test_mode_0dh);
    CU_add_test(s, "VBE bank window", test_vbe_banked);
    CU_add_test(s, "VBE 16 colours planar", test_vbe_planar);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
