/* VGA + Bochs VBE: register files, DAC auto-increment, attribute flip-flop, VBE
 * DISPI protocol, VRAM bounds, the legacy window's memory semantics (Graphics Controller
 * read/write modes, latches, map mask, chain-4, odd/even, memory map select, VBE banks)
 * and the text/graphics renderers (IBM VGA / FreeVGA register reference; Bochs VBE DISPI
 * as QEMU's stdvga implements it). */
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

/* CPU accesses at guest address gpa in the legacy window. */
static void memb(struct vga *v, uint32_t gpa, uint8_t val)
{
    vga_mem_write(v, gpa - VGA_WINDOW_BASE, val, 1);
}

static uint8_t rdb(struct vga *v, uint32_t gpa)
{
    return (uint8_t)vga_mem_read(v, gpa - VGA_WINDOW_BASE, 1);
}

/* The four planes of plane address pa, as bytes p0 | p1 << 8 | p2 << 16 | p3 << 24. */
static uint32_t planes_at(struct vga *v, uint32_t pa)
{
    return (uint32_t)vga_vram_read(v, (uint64_t)pa * 4, 4);
}

/* Planar 16-colour access as mode 12h leaves it: all planes, A0000 64K, write mode 0. */
static void planar_setup(struct vga *v)
{
    seq_set(v, 2, 0x0f);
    seq_set(v, 4, 0x06);
    gr_set(v, 0, 0);
    gr_set(v, 1, 0);
    gr_set(v, 3, 0);
    gr_set(v, 4, 0);
    gr_set(v, 5, 0);
    gr_set(v, 6, 0x05);
    gr_set(v, 8, 0xff);
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

/* Program 80x25 text (mode 3 values), write text at 0xB8000 through odd/even and a glyph
 * into plane 2 as the VGA BIOS loads fonts. */
static void test_text_mode(void)
{
    struct vga *v = vga_new(NULL);
    const uint8_t crt[] = {
        [0x01] = 0x4f, [0x07] = 0x1f, [0x09] = 0x4f, [0x0a] = 0x0d, [0x0b] = 0x0e, [0x12] = 0x8f};
    for (unsigned i = 0; i < sizeof(crt); i++) {
        outb(v, 0x3d4, (uint8_t)i);
        outb(v, 0x3d5, crt[i]);
    }
    gr_set(v, 5, 0x10);
    gr_set(v, 6, 0x0e); /* text, B8000 */
    seq_set(v, 1, 0x00); /* 9-dot characters */
    seq_set(v, 2, 0x03);
    seq_set(v, 4, 0x02);
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
        /* a word write, as rep stosw/movsw do: character then attribute */
        vga_mem_write(v, 0x18000 + 80 * 2 + i * 2, (uint64_t)0x07 << 8 | (uint8_t)msg[i], 2);
    }
    /* Read back through odd/even: bytes as written; outside B8000 nothing is decoded. */
    CU_ASSERT_EQUAL(rdb(v, 0xb8000 + 80 * 2), 'S');
    CU_ASSERT_EQUAL(rdb(v, 0xb8000 + 80 * 2 + 1), 0x07);
    CU_ASSERT_EQUAL(rdb(v, 0xa0000), 0xff);
    memb(v, 0xb0000, 0x55);
    CU_ASSERT_EQUAL(vga_vram_read(v, 0, 1), 0);
    /* Characters land in plane 0, attributes in plane 1 of the same plane address. */
    CU_ASSERT_EQUAL(planes_at(v, 80) & 0xffff, 0x0700u | 'S');
    seq_set(v, 2, 0x04);
    seq_set(v, 4, 0x06);
    gr_set(v, 5, 0x00);
    gr_set(v, 6, 0x04);
    gr_set(v, 8, 0xff); /* the BIOS's bit mask: all bits from the CPU */
    for (int y = 0; y < 16; y++) {
        memb(v, 0xa0000 + 'S' * 32 + y, 0x80); /* 'S' glyph: leftmost column lit */
    }
    seq_set(v, 2, 0x03);
    seq_set(v, 4, 0x02);
    gr_set(v, 5, 0x10);
    gr_set(v, 6, 0x0e);
    CU_ASSERT_EQUAL(planes_at(v, 'S' * 32 + 3), 0x00800000u); /* plane 2 only */

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
}

/* Write mode 0: data rotate, set/reset and enable set/reset, logical operation, bit mask
 * and the sequencer map mask (VGA reference, Graphics Controller GR00-GR08). */
static void test_write_mode_0(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    planar_setup(v);
    memb(v, 0xa0000, 0xa5); /* plain: the byte into every plane */
    CU_ASSERT_EQUAL(planes_at(v, 0), 0xa5a5a5a5u);
    gr_set(v, 0, 0x05); /* set/reset: planes 0 and 2 set */
    gr_set(v, 1, 0x0f); /* ...for every plane: the CPU byte is ignored */
    memb(v, 0xa0001, 0x00);
    CU_ASSERT_EQUAL(planes_at(v, 1), 0x00ff00ffu);
    /* Bit mask: masked-off bits come from the latches (loaded by the read). */
    (void)rdb(v, 0xa0001);
    gr_set(v, 0, 0x0a);
    gr_set(v, 8, 0xf0);
    memb(v, 0xa0001, 0x00);
    CU_ASSERT_EQUAL(planes_at(v, 1), 0xf00ff00fu);
    /* Enable set/reset for plane 0 only: the others take the CPU byte. */
    gr_set(v, 8, 0xff);
    gr_set(v, 0, 0x01);
    gr_set(v, 1, 0x01);
    memb(v, 0xa0002, 0x3c);
    CU_ASSERT_EQUAL(planes_at(v, 2), 0x3c3c3cffu);
    /* Map mask: only plane 1 is written. */
    gr_set(v, 1, 0x00);
    seq_set(v, 2, 0x02);
    memb(v, 0xa0003, 0x77);
    CU_ASSERT_EQUAL(planes_at(v, 3), 0x00007700u);
    /* Rotate right by 4, then XOR with the latches (0xA5 in every plane). */
    seq_set(v, 2, 0x0f);
    (void)rdb(v, 0xa0000);
    gr_set(v, 3, 0x18 | 4);
    memb(v, 0xa0000, 0x0f);
    CU_ASSERT_EQUAL(planes_at(v, 0), 0x55555555u);
    /* AND and OR with the latches. */
    gr_set(v, 3, 0x08);
    (void)rdb(v, 0xa0000);
    memb(v, 0xa0000, 0x0f);
    CU_ASSERT_EQUAL(planes_at(v, 0), 0x05050505u);
    gr_set(v, 3, 0x10);
    (void)rdb(v, 0xa0000);
    memb(v, 0xa0000, 0xf0);
    CU_ASSERT_EQUAL(planes_at(v, 0), 0xf5f5f5f5u);
    vga_free(v);
}

/* Write mode 1 copies the latches (a screen-to-screen copy); write modes 2 and 3. */
static void test_write_modes_1_2_3(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    planar_setup(v);
    for (int p = 0; p < 4; p++) {
        seq_set(v, 2, (uint8_t)(1u << p));
        memb(v, 0xa0010, (uint8_t)(0x11 * (p + 1)));
    }
    CU_ASSERT_EQUAL(planes_at(v, 0x10), 0x44332211u);
    seq_set(v, 2, 0x0f);
    gr_set(v, 5, 0x01);
    gr_set(v, 8, 0x00); /* no effect in write mode 1 */
    (void)rdb(v, 0xa0010);
    memb(v, 0xa0020, 0xee);
    CU_ASSERT_EQUAL(planes_at(v, 0x20), 0x44332211u);
    seq_set(v, 2, 0x05); /* the map mask still applies */
    memb(v, 0xa0030, 0xee);
    CU_ASSERT_EQUAL(planes_at(v, 0x30), 0x00330011u);
    /* Write mode 2: the CPU byte's low nibble is a colour, the bit mask picks pixels. */
    seq_set(v, 2, 0x0f);
    gr_set(v, 5, 0x02);
    gr_set(v, 8, 0x81);
    (void)rdb(v, 0xa0010);
    memb(v, 0xa0010, 0x09); /* colour 9 in the leftmost and rightmost pixels */
    CU_ASSERT_EQUAL(planes_at(v, 0x10), 0xc5322291u);
    /* Write mode 3: set/reset colour, the rotated byte ANDed with the bit mask. */
    gr_set(v, 5, 0x03);
    gr_set(v, 0, 0x0c);
    gr_set(v, 8, 0x0f);
    (void)rdb(v, 0xa0040);
    memb(v, 0xa0040, 0xff);
    CU_ASSERT_EQUAL(planes_at(v, 0x40), 0x0f0f0000u);
    vga_free(v);
}

/* Read mode 0 (GR04 plane) and read mode 1 (colour compare with don't care). */
static void test_read_modes(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    planar_setup(v);
    const uint8_t bytes[4] = {0xf0, 0xcc, 0xaa, 0x0f};
    for (int p = 0; p < 4; p++) {
        seq_set(v, 2, (uint8_t)(1u << p));
        memb(v, 0xa0040, bytes[p]);
    }
    seq_set(v, 2, 0x0f);
    gr_set(v, 4, 2);
    CU_ASSERT_EQUAL(rdb(v, 0xa0040), 0xaa);
    gr_set(v, 4, 3);
    CU_ASSERT_EQUAL(rdb(v, 0xa0040), 0x0f);
    /* Pixel colours, left to right: 7 3 5 1 14 10 12 8. */
    gr_set(v, 5, 0x08);
    gr_set(v, 7, 0x0f);
    gr_set(v, 2, 7);
    CU_ASSERT_EQUAL(rdb(v, 0xa0040), 0x80);
    gr_set(v, 2, 12);
    CU_ASSERT_EQUAL(rdb(v, 0xa0040), 0x02);
    gr_set(v, 7, 0x03); /* compare planes 0 and 1 only: colours 3, 7 match 3 */
    gr_set(v, 2, 3);
    CU_ASSERT_EQUAL(rdb(v, 0xa0040), 0xc0);
    gr_set(v, 7, 0x00);
    CU_ASSERT_EQUAL(rdb(v, 0xa0040), 0xff);
    /* A read-mode-1 read loads the latches too: write mode 1 copies them. */
    gr_set(v, 5, 0x01);
    memb(v, 0xa0050, 0);
    CU_ASSERT_EQUAL(planes_at(v, 0x50), 0x0faaccf0u);
    vga_free(v);
}

/* Chain-4 (mode 13h): linear bytes, the map mask selects by address bits 0-1; GR06 memory
 * map select decides which addresses the VGA decodes. */
static void test_chain4_memory_map(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    seq_set(v, 2, 0x0f);
    seq_set(v, 4, 0x0e);
    gr_set(v, 5, 0x40);
    gr_set(v, 6, 0x05);
    vga_mem_write(v, 5, 0x4342, 2);
    CU_ASSERT_EQUAL(vga_vram_read(v, 5, 2), 0x4342u);
    CU_ASSERT_EQUAL(vga_mem_read(v, 5, 2), 0x4342u);
    seq_set(v, 2, 0x0b); /* plane 2 masked: byte 6 (address bits 10b) is dropped */
    memb(v, 0xa0006, 0x99);
    memb(v, 0xa0007, 0x98);
    CU_ASSERT_EQUAL(vga_vram_read(v, 6, 2), 0x9843u);
    CU_ASSERT_EQUAL(rdb(v, 0xb0005), 0xff); /* A0000/64K map: B0000 not decoded */
    gr_set(v, 6, 0x01);                     /* A0000/128K */
    memb(v, 0xb0005, 0x21);
    CU_ASSERT_EQUAL(vga_vram_read(v, 0x10005, 1), 0x21u);
    gr_set(v, 6, 0x09); /* B0000/32K */
    CU_ASSERT_EQUAL(rdb(v, 0xa0005), 0xff);
    CU_ASSERT_EQUAL(rdb(v, 0xb0005), 0x42);
    CU_ASSERT_EQUAL(rdb(v, 0xb8000), 0xff);
    /* Accesses past the window are refused whole. */
    CU_ASSERT_EQUAL(vga_mem_read(v, VGA_WINDOW_SIZE - 1, 2), ~0ull);
    vga_free(v);
}

/* Banked VBE: 0xA0000-0xAFFFF shows VRAM at BANK * 64 KiB. */
static void test_vbe_bank(void)
{
    struct vga *v = vga_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    vbe_set(v, VBE_DISPI_INDEX_XRES, 640);
    vbe_set(v, VBE_DISPI_INDEX_YRES, 480);
    vbe_set(v, VBE_DISPI_INDEX_BPP, 16);
    vbe_set(v, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
    vbe_set(v, VBE_DISPI_INDEX_BANK, 3);
    vga_mem_write(v, 0x10, 0xbeef, 2);
    CU_ASSERT_EQUAL(vga_vram_read(v, 3 * 0x10000 + 0x10, 2), 0xbeefu);
    CU_ASSERT_EQUAL(vga_mem_read(v, 0x10, 2), 0xbeefu);
    vbe_set(v, VBE_DISPI_INDEX_BANK, 0);
    CU_ASSERT_EQUAL(vga_mem_read(v, 0x10, 2), 0u);
    CU_ASSERT_EQUAL(vga_mem_read(v, 0x10010, 1), 0xffu); /* 64 KiB window only */
    vbe_set(v, VBE_DISPI_INDEX_BANK, 0xffff);             /* beyond VRAM: refused */
    CU_ASSERT_EQUAL(vbe_get(v, VBE_DISPI_INDEX_BANK), 0);
    vga_free(v);
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
    CU_add_test(s, "write mode 0", test_write_mode_0);
    CU_add_test(s, "write modes 1, 2, 3", test_write_modes_1_2_3);
    CU_add_test(s, "read modes", test_read_modes);
    CU_add_test(s, "chain-4 and memory map", test_chain4_memory_map);
    CU_add_test(s, "VBE bank window", test_vbe_bank);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
