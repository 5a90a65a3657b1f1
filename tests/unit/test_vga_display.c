/* The VGA on a display surface (devices/display/vga_display.c): text cells drawn with
 * their attribute colours, VBE 32 bpp and 8 bpp palette pixels, mode changes becoming
 * surface modes, damage limited to what changed, text screendumps, display off. */
#include "core/guestmem.h"
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
    outb(v, 0x3ce, 6);
    outb(v, 0x3cf, 0x0e);
    outb(v, 0x3c4, 1);
    outb(v, 0x3c5, 0x00);
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
    struct guestmem gm = {0};
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&gm, "ram", 0, 0x100000, false), 0);
    struct vga *v = vga_new(&gm);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    text_mode_3(v);
    /* "Hi" at row 2, column 3: yellow on blue (attribute 0x1E) */
    uint8_t cells[4] = {'H', 0x1e, 'i', 0x1e};
    guestmem_write(&gm, 0xb8000 + (2 * 80 + 3) * 2, cells, sizeof(cells));
    uint8_t glyph[16] = {0};
    glyph[5] = 0x81; /* 'H' line 5: first and last dot of the 8 */
    guestmem_write(&gm, 0xa0000 + 'H' * 32, glyph, sizeof(glyph));

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
    /* A cell written in guest RAM (no trap) is seen on the next refresh. */
    uint8_t cell[2] = {'H', 0x1e};
    guestmem_write(&gm, 0xb8000 + (10 * 80) * 2, cell, 2);
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
    guestmem_free(&gm);
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
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
