/* Unit tests for core/boot_linux: bzImage header checks, placement of kernel, initrd,
 * command line and zero page, and the long-mode CPU state for the 64-bit entry. */
#include "core/boot_linux.h"

#include "core/e820.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM (64ull << 20)

static uint8_t img[0x200 * 5 + 0x4000];

static void w16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void w32(uint8_t *p, uint32_t v)
{
    w16(p, (uint16_t)v);
    w16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t r32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* A bzImage the way a 6.x x86_64 kernel lays out its header (protocol 2.15). */
static void make_image(void)
{
    memset(img, 0, sizeof(img));
    img[0x1f1] = 4;           /* setup_sects */
    w16(img + 0x1fe, 0xaa55); /* boot_flag */
    img[0x200] = 0xeb;        /* jump over the header */
    img[0x201] = 0x6a;        /* header ends at 0x26c */
    memcpy(img + 0x202, "HdrS", 4);
    w16(img + 0x206, 0x020f);
    img[0x211] = 0x01;            /* LOADED_HIGH */
    w32(img + 0x22c, 0x7fffffff); /* initrd_addr_max */
    w32(img + 0x230, 0x200000);   /* kernel_alignment */
    img[0x234] = 1;               /* relocatable */
    w16(img + 0x236, 0x7f);       /* xloadflags incl. XLF_KERNEL_64 */
    w32(img + 0x238, 2047);       /* cmdline_size */
    w32(img + 0x258, 0x1000000);  /* pref_address */
    w32(img + 0x260, 0x800000);   /* init_size */
    for (size_t i = 0xa00; i < sizeof(img); i++) {
        img[i] = (uint8_t)(i * 7);
    }
}

static void setup_mem(struct guestmem *gm, struct e820_table *t)
{
    memset(gm, 0, sizeof(*gm));
    CU_ASSERT_EQUAL_FATAL(guestmem_add(gm, "ram-low", 0, RAM, false), 0);
    CU_ASSERT_EQUAL_FATAL(e820_build_pc(t, RAM, 0), 0);
}

static void test_parse_ok(void)
{
    make_image();
    struct boot_linux_header h;
    char err[200] = "";
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(h.version, 0x020f);
    CU_ASSERT_EQUAL(h.setup_sects, 4);
    CU_ASSERT_EQUAL(h.pm_offset, 0xa00);
    CU_ASSERT_EQUAL(h.pm_size, sizeof(img) - 0xa00);
    CU_ASSERT_EQUAL(h.pref_address, 0x1000000);
    CU_ASSERT_EQUAL(h.init_size, 0x800000);
    CU_ASSERT_EQUAL(h.cmdline_size, 2047);
    CU_ASSERT_TRUE(h.relocatable);
    img[0x1f1] = 0; /* setup_sects 0 means 4 */
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(h.pm_offset, 0xa00);
}

static void test_parse_refuses(void)
{
    struct boot_linux_header h;
    char err[200];
    make_image();
    img[0x202] = 'X';
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a bzImage"));
    make_image();
    w16(img + 0x206, 0x0205);
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "2.05"));
    make_image();
    w16(img + 0x236, 0x7e); /* no 64-bit entry */
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    make_image();
    img[0x211] = 0; /* zImage */
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    make_image();
    CU_ASSERT_EQUAL(boot_linux_parse(img, 0xa00, &h, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_EQUAL(boot_linux_parse(img, 0x100, &h, err, sizeof(err)), -ENOEXEC);
    img[0x1f1] = 200; /* setup sectors beyond the file */
    CU_ASSERT_EQUAL(boot_linux_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
}

static void test_load_layout(void)
{
    make_image();
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    static uint8_t initrd[3 * 4096 + 5];
    memset(initrd, 0x5a, sizeof(initrd));
    struct boot_linux_args a = {.kernel = img,
                                .kernel_size = sizeof(img),
                                .kernel_name = "vmlinuz",
                                .initrd = initrd,
                                .initrd_size = sizeof(initrd),
                                .initrd_name = "initrd.gz",
                                .cmdline = "console=ttyS0",
                                .low_end = RAM,
                                .e820 = &t,
                                .rsdp_addr = 0xe0000};
    struct boot_linux_layout l;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), 0);
    /* Relocatable and it fits: the preferred address. */
    CU_ASSERT_EQUAL(l.kernel_addr, 0x1000000);
    CU_ASSERT_EQUAL(l.kernel_end, 0x1800000);
    CU_ASSERT_EQUAL(l.entry64, 0x1000200);
    uint8_t *k = guestmem_ptr(&gm, l.kernel_addr, sizeof(img) - 0xa00);
    CU_ASSERT_EQUAL(memcmp(k, img + 0xa00, sizeof(img) - 0xa00), 0);
    /* Initrd at the top of RAM, page aligned, clear of the kernel. */
    CU_ASSERT_EQUAL(l.initrd_addr & 0xfff, 0);
    CU_ASSERT_TRUE(l.initrd_addr + sizeof(initrd) <= RAM);
    CU_ASSERT_TRUE(l.initrd_addr + sizeof(initrd) > RAM - 4096);
    CU_ASSERT_TRUE(l.initrd_addr >= l.kernel_end);
    CU_ASSERT_EQUAL(
        memcmp(guestmem_ptr(&gm, l.initrd_addr, sizeof(initrd)), initrd, sizeof(initrd)), 0);
    /* Zero page. */
    const uint8_t *bp = guestmem_ptr(&gm, l.zero_page, 4096);
    CU_ASSERT_EQUAL(memcmp(bp + 0x202, "HdrS", 4), 0);
    CU_ASSERT_EQUAL(bp[0x210], 0xff);
    CU_ASSERT_EQUAL(r32(bp + 0x228), l.cmdline_addr);
    CU_ASSERT_STRING_EQUAL((const char *)guestmem_ptr(&gm, l.cmdline_addr, 14), "console=ttyS0");
    CU_ASSERT_EQUAL(r32(bp + 0x218), l.initrd_addr);
    CU_ASSERT_EQUAL(r32(bp + 0x21c), sizeof(initrd));
    CU_ASSERT_EQUAL(r32(bp + 0x70), 0xe0000);
    CU_ASSERT_EQUAL(bp[0x1e8], t.n);
    CU_ASSERT_EQUAL(r32(bp + 0x2d0 + 20 * 3 + 16), t.e[3].type);
    CU_ASSERT_EQUAL(r32(bp + 0x2d0 + 20 * 3 + 8), (uint32_t)t.e[3].size);
    guestmem_free(&gm);
}

static void test_initrd_limits(void)
{
    make_image();
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    static uint8_t initrd[8192];
    struct boot_linux_args a = {.kernel = img,
                                .kernel_size = sizeof(img),
                                .kernel_name = "vmlinuz",
                                .initrd = initrd,
                                .initrd_size = sizeof(initrd),
                                .initrd_name = "initrd.gz",
                                .low_end = RAM,
                                .e820 = &t};
    struct boot_linux_layout l;
    char err[256] = "";
    /* initrd_addr_max below the end of RAM wins. */
    w32(img + 0x22c, 0x1ffffff);
    CU_ASSERT_EQUAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(l.initrd_addr, 0x2000000 - sizeof(initrd));
    /* Too big for what is left above the kernel: refused, naming the initrd. */
    w32(img + 0x22c, 0x7fffffff);
    a.initrd_size = RAM - 0x1000000;
    static uint8_t *big;
    big = calloc(1, a.initrd_size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    a.initrd = big;
    CU_ASSERT_EQUAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), -ENOSPC);
    CU_ASSERT_EQUAL(strncmp(err, "initrd.gz: ", 11), 0);
    free(big);
    /* Kernel larger than RAM. */
    a.initrd = NULL;
    w32(img + 0x260, 0x8000000);
    CU_ASSERT_EQUAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), -ENOMEM);
    CU_ASSERT_EQUAL(strncmp(err, "vmlinuz: ", 9), 0);
    /* Not relocatable: the protocol default address. */
    w32(img + 0x260, 0x800000);
    img[0x234] = 0;
    CU_ASSERT_EQUAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(l.kernel_addr, 0x100000);
    /* A command line longer than cmdline_size. */
    char line[3000];
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = 0;
    a.cmdline = line;
    CU_ASSERT_EQUAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), -E2BIG);
    guestmem_free(&gm);
}

/* A recording engine for boot_linux_setup_cpu. */
static struct accel_regs mock_regs;
static struct accel_sregs mock_sregs;

static int mock_get_sregs(struct accel_vcpu *v, struct accel_sregs *s)
{
    *s = mock_sregs;
    return 0;
}

static int mock_set_sregs(struct accel_vcpu *v, const struct accel_sregs *s)
{
    mock_sregs = *s;
    return 0;
}

static int mock_set_regs(struct accel_vcpu *v, const struct accel_regs *r)
{
    mock_regs = *r;
    return 0;
}

static uint64_t walk(struct guestmem *gm, uint64_t cr3, uint64_t va)
{
    uint64_t e;
    guestmem_read(gm, (cr3 & ~0xfffull) + 8 * ((va >> 39) & 511), &e, 8);
    CU_ASSERT_TRUE(e & 1);
    guestmem_read(gm, (e & ~0xfffull) + 8 * ((va >> 30) & 511), &e, 8);
    CU_ASSERT_TRUE(e & 1);
    guestmem_read(gm, (e & ~0xfffull) + 8 * ((va >> 21) & 511), &e, 8);
    CU_ASSERT_EQUAL(e & 0x81, 0x81); /* present 2 MiB page */
    return (e & ~0x1fffffull & 0xffffffffffull) | (va & 0x1fffff);
}

static void test_setup_cpu_long_mode(void)
{
    struct accel_ops ops = {.name = "mock",
                            .get_sregs = mock_get_sregs,
                            .set_sregs = mock_set_sregs,
                            .set_regs = mock_set_regs};
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    struct boot_linux_layout l = {
        .kernel_addr = 0x1000000, .entry64 = 0x1000200, .zero_page = BOOT_LINUX_ZERO_PAGE};
    memset(&mock_sregs, 0, sizeof(mock_sregs));
    CU_ASSERT_EQUAL(boot_linux_setup_cpu(&ops, NULL, &gm, &l), 0);
    CU_ASSERT_EQUAL(mock_regs.rip, 0x1000200);
    CU_ASSERT_EQUAL(mock_regs.rsi, BOOT_LINUX_ZERO_PAGE);
    CU_ASSERT_EQUAL(mock_regs.rflags & 0x200, 0); /* interrupts off */
    CU_ASSERT_EQUAL(mock_sregs.cr0 & 0x80000001u, 0x80000001u);
    CU_ASSERT_TRUE(mock_sregs.cr4 & 0x20);
    CU_ASSERT_EQUAL(mock_sregs.efer & 0x500, 0x500);
    CU_ASSERT_EQUAL(mock_sregs.cs.selector, 0x10);
    CU_ASSERT_EQUAL(mock_sregs.cs.l, 1);
    CU_ASSERT_EQUAL(mock_sregs.cs.db, 0);
    CU_ASSERT_EQUAL(mock_sregs.ds.selector, 0x18);
    CU_ASSERT_EQUAL(mock_sregs.ss.selector, 0x18);
    /* The GDT descriptors match the segment state given to the engine. */
    uint64_t gdt[4];
    CU_ASSERT_EQUAL(guestmem_read(&gm, mock_sregs.gdt.base, gdt, sizeof(gdt)), 0);
    CU_ASSERT_TRUE(mock_sregs.gdt.limit >= 0x1f);
    CU_ASSERT_TRUE((gdt[2] & (1ull << 53)) != 0); /* L */
    CU_ASSERT_TRUE((gdt[2] & (1ull << 47)) != 0); /* P */
    CU_ASSERT_TRUE((gdt[3] & (1ull << 47)) != 0);
    /* Identity map of the first 4 GiB. */
    CU_ASSERT_EQUAL(walk(&gm, mock_sregs.cr3, 0x1000200), 0x1000200);
    CU_ASSERT_EQUAL(walk(&gm, mock_sregs.cr3, 0x7000), 0x7000);
    CU_ASSERT_EQUAL(walk(&gm, mock_sregs.cr3, 0xfee00000), 0xfee00000);
    CU_ASSERT_EQUAL(walk(&gm, mock_sregs.cr3, 0xffffffff), 0xffffffff);
    guestmem_free(&gm);
}

/* The header of a real distribution kernel, when the guest kit provides one. */
static void test_real_kernel(void)
{
    const char *path = getenv("LODGE_GUEST_KERNEL");
    if (!path || !*path) {
        printf("\n    skipped: LODGE_GUEST_KERNEL is not set ");
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("\n    skipped: cannot open %s ", path);
        return;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *k = malloc((size_t)len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL_FATAL(fread(k, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    struct boot_linux_header h;
    char err[256] = "";
    CU_ASSERT_EQUAL(boot_linux_parse(k, (size_t)len, &h, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(h.version >= 0x020c);
    CU_ASSERT_TRUE(h.xloadflags & 1);
    struct guestmem gm;
    memset(&gm, 0, sizeof(gm));
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&gm, "ram-low", 0, 512ull << 20, false), 0);
    struct e820_table t;
    e820_build_pc(&t, 512ull << 20, 0);
    struct boot_linux_args a = {.kernel = k,
                                .kernel_size = (size_t)len,
                                .kernel_name = path,
                                .cmdline = "console=ttyS0",
                                .low_end = 512ull << 20,
                                .e820 = &t};
    struct boot_linux_layout l;
    CU_ASSERT_EQUAL(boot_linux_load(&gm, &a, &l, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(l.kernel_end <= (512ull << 20));
    const uint8_t *bp = guestmem_ptr(&gm, l.zero_page, 4096);
    CU_ASSERT_EQUAL(memcmp(bp + 0x202, "HdrS", 4), 0);
    CU_ASSERT_EQUAL(r32(bp + 0x260), h.init_size);
    guestmem_free(&gm);
    free(k);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("boot_linux", NULL, NULL);
    CU_add_test(s, "parse a bzImage header", test_parse_ok);
    CU_add_test(s, "refuse non-bzImage and old protocols", test_parse_refuses);
    CU_add_test(s, "load layout and zero page", test_load_layout);
    CU_add_test(s, "initrd and kernel limits", test_initrd_limits);
    CU_add_test(s, "64-bit entry CPU state", test_setup_cpu_long_mode);
    CU_add_test(s, "real kernel header", test_real_kernel);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
