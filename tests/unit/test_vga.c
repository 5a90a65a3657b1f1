/* VGA + Bochs VBE: register files, DAC auto-increment, attribute flip-flop, VBE
 * DISPI protocol, VRAM bounds and the text/graphics renderers (FreeVGA register
 * reference; Bochs VBE DISPI as QEMU's stdvga implements it). */
#include "core/guestmem.h"
#include "devices/display/vga.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static void outb(struct vga *v, uint16_t port, uint8_t val)
{
    vga_io_write(v, port - VGA_IO_BASE, val, 1);
}

static uint8_t inb(struct vga *v, uint16_t port)
{
    return (uint8_t)vga_io_read(v, port - VGA_IO_BASE, 1);
}

static void vbe_set(struct vga *v, uint16_t idx, uint16_t val)
{
    vga_vbe_write(v, 0, idx, 2);
    vga_vbe_write(v, 1, val, 2);
}

static uint16_t vbe_get(struct vga *v, uint16_t idx)
{
    vga_vbe_write(v, 0, idx, 2);
    return (uint16_t)vga_vbe_read(v, 1, 2);
}

static void test_indexed_registers(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    /* sequencer via a word write: index in the low byte, data in the high byte */
    vga_io_write(v, 0x3c4 - VGA_IO_BASE, 0x0f02, 2);
    outb(v, 0x3c4, 2);
    CU_ASSERT_EQUAL(inb(v, 0x3c5), 0x0f);
    outb(v, 0x3ce, 6);
    outb(v, 0x3cf, 0x0e);
    CU_ASSERT_EQUAL(inb(v, 0x3cf), 0x0e);
    /* CRTC at 3D4 while misc bit 0 is set; 3B4 is dead then */
    outb(v, 0x3d4, 0x0e);
    outb(v, 0x3d5, 0x12);
    CU_ASSERT_EQUAL(inb(v, 0x3d5), 0x12);
    CU_ASSERT_EQUAL(inb(v, 0x3b5), 0xff);
    outb(v, 0x3c2, 0x66); /* mono addresses */
    CU_ASSERT_EQUAL(inb(v, 0x3cc), 0x66);
    outb(v, 0x3b4, 0x0e);
    CU_ASSERT_EQUAL(inb(v, 0x3b5), 0x12);
    /* CR11 bit 7 protects CR00-CR07 */
    outb(v, 0x3b4, 0x11);
    outb(v, 0x3b5, 0x80);
    outb(v, 0x3b4, 0x01);
    outb(v, 0x3b5, 0x4f);
    CU_ASSERT_EQUAL(inb(v, 0x3b5), 0x00);
    vga_free(v);
}

static void test_attribute_flipflop(void)
{
    struct vga *v = vga_new(NULL);
    (void)inb(v, 0x3da);  /* reset the flip-flop */
    outb(v, 0x3c0, 0x01); /* index 1 */
    outb(v, 0x3c0, 0x3f); /* data */
    outb(v, 0x3c0, 0x21); /* index 1 again, PAS set */
    CU_ASSERT_EQUAL(inb(v, 0x3c1), 0x3f);
    CU_ASSERT_EQUAL(inb(v, 0x3c0), 0x21);
    /* a status read puts the next write back to "index" */
    (void)inb(v, 0x3da);
    outb(v, 0x3c0, 0x02);
    outb(v, 0x3c0, 0x05);
    outb(v, 0x3c0, 0x02);
    CU_ASSERT_EQUAL(inb(v, 0x3c1), 0x05);
    /* the retrace bits toggle so wait loops end */
    uint8_t a = inb(v, 0x3da), b = inb(v, 0x3da);
    CU_ASSERT_NOT_EQUAL(a & 0x08, b & 0x08);
    vga_free(v);
}

static void test_dac(void)
{
    struct vga *v = vga_new(NULL);
    outb(v, 0x3c8, 0xfe);
    for (int i = 0; i < 6; i++) {
        outb(v, 0x3c9, (uint8_t)(10 + i));
    }
    outb(v, 0x3c7, 0xfe);
    CU_ASSERT_EQUAL(inb(v, 0x3c7), 3); /* DAC state: read mode */
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(inb(v, 0x3c9), 10 + i);
    }
    CU_ASSERT_EQUAL(inb(v, 0x3c6), 0xff);
    vga_free(v);
}

static void test_vbe(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_ID), VBE_DISPI_ID0);
    vbe_set(v, VBE_DISPI_INDEX_ID, VBE_DISPI_ID5);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
    vbe_set(v, VBE_DISPI_INDEX_ID, 0x1234); /* not an ID: ignored */
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_VIDEO_MEMORY_64K), VGA_VRAM_SIZE >> 16);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_XRES), VBE_DISPI_MAX_XRES);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_BPP), VBE_DISPI_MAX_BPP);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, 0);
    vbe_set(v, VBE_DISPI_INDEX_XRES, 640);
    vbe_set(v, VBE_DISPI_INDEX_YRES, 480);
    vbe_set(v, VBE_DISPI_INDEX_BPP, 32);
    vga_vram_write(v, 0, 0xdeadbeef, 4);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
    CU_ASSERT_EQUAL(vga_vram_read(v, 0, 4), 0u); /* cleared without NOCLEARMEM */
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_VIRT_WIDTH), 640);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_VIRT_HEIGHT), VGA_VRAM_SIZE / (640 * 4));
    /* mode registers are frozen while enabled */
    vbe_set(v, VBE_DISPI_INDEX_XRES, 800);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_XRES), 640);
    struct vga_mode m;
    vga_get_mode(v, &m);
    CU_ASSERT_EQUAL(m.kind, 2);
    CU_ASSERT_EQUAL(m.width, 640);
    CU_ASSERT_EQUAL(m.bpp, 32);
    /* render: pixel (1,1) */
    vga_vram_write(v, (640 + 1) * 4, 0x00112233, 4);
    uint32_t *px = calloc(640 * 480, 4);
    uint32_t w = 0, h = 0;
    CU_ASSERT_EQUAL(vga_render(v, px, 640 * 480, &w, &h), 0);
    CU_ASSERT_EQUAL(w, 640);
    CU_ASSERT_EQUAL(h, 480);
    CU_ASSERT_EQUAL(px[641] & 0xffffff, 0x112233u);
    CU_ASSERT_EQUAL(vga_render(v, px, 100, &w, &h), -ENOSPC);
    free(px);
    /* a mode beyond the limits or with a bad depth is refused */
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, 0);
    vbe_set(v, VBE_DISPI_INDEX_XRES, 1024);
    vbe_set(v, VBE_DISPI_INDEX_YRES, 768);
    vbe_set(v, VBE_DISPI_INDEX_BPP, 12);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_ENABLE) & VBE_DISPI_ENABLED, 0);
    vbe_set(v, VBE_DISPI_INDEX_XRES, 4000);
    vbe_set(v, VBE_DISPI_INDEX_YRES, 1600);
    vbe_set(v, VBE_DISPI_INDEX_BPP, 32);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_ENABLE) & VBE_DISPI_ENABLED, 0);
    vga_free(v);
}

static void test_vram_bounds(void)
{
    struct vga *v = vga_new(NULL);
    vga_vram_write(v, VGA_VRAM_SIZE - 4, 0x11223344, 4);
    CU_ASSERT_EQUAL(vga_vram_read(v, VGA_VRAM_SIZE - 4, 4), 0x11223344u);
    vga_vram_write(v, VGA_VRAM_SIZE - 2, 0xffffffff, 4); /* straddles the end: dropped */
    CU_ASSERT_EQUAL(vga_vram_read(v, VGA_VRAM_SIZE - 4, 4), 0x11223344u);
    CU_ASSERT_EQUAL(vga_vram_read(v, VGA_VRAM_SIZE, 1), ~0ull);
    CU_ASSERT_EQUAL(vga_vram_read(v, ~0ull - 1, 4), ~0ull);
    vga_free(v);
}

/* Program 80x25 text (mode 3 values) and put text + a glyph into guest RAM. */
static void test_text_mode(void)
{
    struct guestmem gm = {0};
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&gm, "ram", 0, 0x100000, false), 0);
    struct vga *v = vga_new(&gm);
    const uint8_t crt[] = {
        [0x01] = 0x4f, [0x07] = 0x1f, [0x09] = 0x4f, [0x0a] = 0x0d, [0x0b] = 0x0e, [0x12] = 0x8f};
    for (unsigned i = 0; i < sizeof(crt); i++) {
        outb(v, 0x3d4, (uint8_t)i);
        outb(v, 0x3d5, crt[i]);
    }
    outb(v, 0x3ce, 6);
    outb(v, 0x3cf, 0x0e); /* text, B8000 */
    outb(v, 0x3c4, 1);
    outb(v, 0x3c5, 0x00); /* 9-dot characters */
    (void)inb(v, 0x3da);
    for (int i = 0; i < 16; i++) { /* identity attribute palette */
        outb(v, 0x3c0, (uint8_t)i);
        outb(v, 0x3c0, (uint8_t)i);
    }
    outb(v, 0x3c8, 7); /* DAC 7 = light grey (0x2a,0x2a,0x2a) */
    outb(v, 0x3c9, 0x2a);
    outb(v, 0x3c9, 0x2a);
    outb(v, 0x3c9, 0x2a);
    const char *msg = "SeaBIOS";
    for (int i = 0; msg[i]; i++) {
        uint8_t cell[2] = {(uint8_t)msg[i], 0x07};
        guestmem_write(&gm, 0xb8000 + 80 * 2 + i * 2, cell, 2);
    }
    uint8_t glyph[16];
    memset(glyph, 0x80, sizeof(glyph)); /* 'S' glyph: leftmost column lit */
    guestmem_write(&gm, 0xa0000 + 'S' * 32, glyph, sizeof(glyph));

    struct vga_mode m;
    vga_get_mode(v, &m);
    CU_ASSERT_EQUAL(m.kind, 0);
    CU_ASSERT_EQUAL(m.cols, 80);
    CU_ASSERT_EQUAL(m.rows, 25);
    CU_ASSERT_EQUAL(m.width, 720);
    CU_ASSERT_EQUAL(m.height, 400);
    char text[81 * 25 + 1];
    int n = vga_text(v, text, sizeof(text));
    CU_ASSERT_EQUAL(n, 81 * 25);
    CU_ASSERT_EQUAL(strncmp(text + 81, "SeaBIOS", 7), 0);
    CU_ASSERT_EQUAL(text[80], '\n');
    uint32_t *px = calloc(720 * 400, 4);
    uint32_t w, h;
    CU_ASSERT_EQUAL(vga_render(v, px, 720 * 400, &w, &h), 0);
    /* row 1, col 0 is 'S': pixel x=0 lit (grey), x=1 background (black) */
    CU_ASSERT_EQUAL(px[16 * 720 + 0] & 0xffffff, 0xa8a8a8u);
    CU_ASSERT_EQUAL(px[16 * 720 + 1] & 0xffffff, 0u);
    free(px);
    /* graphics mode has no text */
    outb(v, 0x3ce, 6);
    outb(v, 0x3cf, 0x05);
    CU_ASSERT_EQUAL(vga_text(v, text, sizeof(text)), -ENODEV);
    vga_free(v);
    guestmem_free(&gm);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("vga", NULL, NULL);
    CU_add_test(s, "indexed registers", test_indexed_registers);
    CU_add_test(s, "attribute flip-flop", test_attribute_flipflop);
    CU_add_test(s, "DAC", test_dac);
    CU_add_test(s, "Bochs VBE", test_vbe);
    CU_add_test(s, "VRAM bounds", test_vram_bounds);
    CU_add_test(s, "text mode", test_text_mode);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
