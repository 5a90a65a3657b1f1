/* Unit tests for core/boot_multiboot: header detection and checks, ELF32 and a.out-kludge
 * placement, the boot information a kernel reads (Multiboot 0.6.96 section 3.3), module
 * placement and the --initrd list, and the 32-bit entry state. */
#include "core/boot_multiboot.h"

#include "core/e820.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAM (64ull << 20)

static uint8_t img[0x3000];

static void w32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void w16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t r32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t r64(const uint8_t *p)
{
    return r32(p) | ((uint64_t)r32(p + 4) << 32);
}

static void put_header(uint8_t *p, uint32_t flags)
{
    w32(p, BOOT_MB_HEADER_MAGIC);
    w32(p + 4, flags);
    w32(p + 8, (uint32_t) - (BOOT_MB_HEADER_MAGIC + flags));
}

/* A flat image linked at 1 MiB with its header at file offset 0x10 (flag bit 16). */
static size_t make_aout(uint32_t load_addr, uint32_t bss_extra)
{
    memset(img, 0, sizeof(img));
    for (size_t i = 0x40; i < sizeof(img); i++) {
        img[i] = (uint8_t)(i * 5 + 1);
    }
    uint8_t *h = img + 0x10;
    put_header(h, BOOT_MB_HF_PAGE_ALIGN | BOOT_MB_HF_MEMINFO | BOOT_MB_HF_AOUT);
    w32(h + 12, load_addr + 0x10);                    /* header_addr */
    w32(h + 16, load_addr);                           /* load_addr */
    w32(h + 20, 0);                                   /* load_end_addr: whole file */
    w32(h + 24, load_addr + sizeof(img) + bss_extra); /* bss_end_addr */
    w32(h + 28, load_addr + 0x40);                    /* entry_addr */
    return sizeof(img);
}

/* An ELF32 executable: PT_LOAD segments given as (vaddr, paddr, filesz, memsz), file
 * data at 0x1000 onwards, header at 0x100. */
struct seg {
    uint32_t vaddr, paddr, filesz, memsz;
};

static size_t make_elf(const struct seg *segs, int n, uint32_t entry)
{
    memset(img, 0, sizeof(img));
    memcpy(img,
           "\x7f"
           "ELF",
           4);
    img[4] = 1; /* ELFCLASS32 */
    img[5] = 1; /* little endian */
    img[6] = 1;
    w16(img + 16, 2); /* ET_EXEC */
    w16(img + 18, 3); /* EM_386 */
    w32(img + 20, 1);
    w32(img + 24, entry);
    w32(img + 28, 52); /* phoff */
    w16(img + 40, 52);
    w16(img + 42, 32);
    w16(img + 44, (uint16_t)n);
    uint32_t off = 0x1000;
    for (int i = 0; i < n; i++) {
        uint8_t *ph = img + 52 + 32 * i;
        w32(ph, 1);
        w32(ph + 4, off);
        w32(ph + 8, segs[i].vaddr);
        w32(ph + 12, segs[i].paddr);
        w32(ph + 16, segs[i].filesz);
        w32(ph + 20, segs[i].memsz);
        for (uint32_t k = 0; k < segs[i].filesz; k++) {
            img[off + k] = (uint8_t)(0xa0 + i);
        }
        off += segs[i].filesz;
    }
    put_header(img + 0x100, BOOT_MB_HF_PAGE_ALIGN | BOOT_MB_HF_MEMINFO);
    return sizeof(img);
}

static void setup_mem(struct guestmem *gm, struct e820_table *t)
{
    memset(gm, 0, sizeof(*gm));
    CU_ASSERT_EQUAL_FATAL(guestmem_add(gm, "ram-low", 0, RAM, false), 0);
    CU_ASSERT_EQUAL_FATAL(e820_build_pc(t, RAM, 0), 0);
}

static void test_detect(void)
{
    make_aout(0x100000, 0);
    CU_ASSERT_TRUE(boot_mb_detect(img, sizeof(img)));
    /* Not in the first 8 KiB or not 4-byte aligned: not multiboot. */
    uint8_t *big = calloc(1, 0x3000);
    put_header(big + 0x2000, 0);
    CU_ASSERT_FALSE(boot_mb_detect(big, 0x3000));
    memset(big, 0, 0x3000);
    put_header(big + 0x102, 0);
    CU_ASSERT_FALSE(boot_mb_detect(big, 0x3000));
    /* A bzImage that happens to hold the magic still takes the Linux path. */
    memset(big, 0, 0x3000);
    memcpy(big + 0x202, "HdrS", 4);
    put_header(big + 0x400, 0);
    CU_ASSERT_FALSE(boot_mb_detect(big, 0x3000));
    free(big);
    CU_ASSERT_FALSE(boot_mb_detect(img, 8)); /* too short for anything */
}

static void test_bad_checksum(void)
{
    make_aout(0x100000, 0);
    img[0x18] ^= 1;
    struct boot_mb_header h;
    char err[256] = "";
    CU_ASSERT_TRUE(boot_mb_detect(img, sizeof(img)));
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "checksum"));
}

static void test_unsupported_flags(void)
{
    make_aout(0x100000, 0);
    put_header(img + 0x10, BOOT_MB_HF_AOUT | 0x8); /* bit 3 is not something we can give */
    struct boot_mb_header h;
    char err[256] = "";
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "0x8"));
    /* Bits 0-2 are fine, and optional high bits other than 16 are ignored. */
    make_aout(0x100000, 0);
    put_header(img + 0x10, BOOT_MB_HF_AOUT | 0x7 | 0x20000);
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), 0);
}

static void test_parse_aout(void)
{
    make_aout(0x100000, 0x5000);
    struct boot_mb_header h;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(h.aout);
    CU_ASSERT_EQUAL(h.offset, 0x10);
    CU_ASSERT_EQUAL(h.nsegs, 1);
    CU_ASSERT_EQUAL(h.segs[0].addr, 0x100000);
    CU_ASSERT_EQUAL(h.segs[0].offset, 0);
    CU_ASSERT_EQUAL(h.segs[0].filesz, sizeof(img));
    CU_ASSERT_EQUAL(h.segs[0].memsz, sizeof(img) + 0x5000);
    CU_ASSERT_EQUAL(h.entry, 0x100040);
    /* load_addr above header_addr cannot be. */
    w32(img + 0x10 + 16, 0x100020);
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    /* load_end_addr past the end of the file. */
    make_aout(0x100000, 0);
    w32(img + 0x10 + 20, 0x100000 + sizeof(img) + 1);
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    /* bss_end below load_end. */
    make_aout(0x100000, 0);
    w32(img + 0x10 + 24, 0x100010);
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
}

static void test_parse_elf(void)
{
    /* Linked at 0xC0100000, loaded at 1 MiB: the entry is translated to physical. */
    struct seg s[2] = {{0xc0100000, 0x100000, 0x800, 0x800}, {0xc0101000, 0x101000, 0x400, 0x2000}};
    make_elf(s, 2, 0xc0100010);
    struct boot_mb_header h;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), 0);
    CU_ASSERT_FALSE(h.aout);
    CU_ASSERT_EQUAL(h.nsegs, 2);
    CU_ASSERT_EQUAL(h.segs[1].addr, 0x101000);
    CU_ASSERT_EQUAL(h.segs[1].filesz, 0x400);
    CU_ASSERT_EQUAL(h.segs[1].memsz, 0x2000);
    CU_ASSERT_EQUAL(h.entry, 0x100010);
    /* No ELF and no address fields. */
    img[0] = 0;
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "flag bit 16"));
    /* A 64-bit ELF is refused. */
    make_elf(s, 2, 0xc0100010);
    img[4] = 2;
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
    /* File range past the end of the file. */
    make_elf(s, 2, 0xc0100010);
    w32(img + 52 + 4, sizeof(img) - 0x10);
    CU_ASSERT_EQUAL(boot_mb_parse(img, sizeof(img), &h, err, sizeof(err)), -ENOEXEC);
}

static struct boot_mb_module mods[2];

static int load(struct guestmem *gm, const struct e820_table *t, int nmods, const char *cmdline,
                struct boot_mb_layout *l, char *err, size_t errlen)
{
    struct boot_mb_args a = {.kernel = img,
                             .kernel_size = sizeof(img),
                             .kernel_name = "k.elf",
                             .mods = mods,
                             .nmods = nmods,
                             .cmdline = cmdline,
                             .e820 = t};
    return boot_mb_load(gm, &a, l, err, errlen);
}

static void test_load_info(void)
{
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    struct seg s[2] = {{0x100000, 0x100000, 0x800, 0x800}, {0x101000, 0x101000, 0x400, 0x2000}};
    make_elf(s, 2, 0x100000);
    uint8_t m1[5000], m2[3] = {1, 2, 3};
    for (size_t i = 0; i < sizeof(m1); i++) {
        m1[i] = (uint8_t)i;
    }
    mods[0] = (struct boot_mb_module){
        .data = m1, .size = sizeof(m1), .path = "m1", .cmdline = "arg1 arg2"};
    mods[1] = (struct boot_mb_module){.data = m2, .size = sizeof(m2), .path = "m2", .cmdline = ""};
    struct boot_mb_layout l;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(load(&gm, &t, 2, "console=x y", &l, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(l.entry, 0x100000);
    CU_ASSERT_EQUAL(l.info_addr, BOOT_MB_INFO);
    CU_ASSERT_EQUAL(l.kernel_start, 0x100000);
    CU_ASSERT_EQUAL(l.kernel_end, 0x103000);

    /* Kernel bytes placed and the bss tail zeroed. */
    const uint8_t *k = guestmem_ptr(&gm, 0x101000, 0x2000);
    CU_ASSERT_EQUAL(k[0], 0xa1);
    CU_ASSERT_EQUAL(k[0x3ff], 0xa1);
    CU_ASSERT_EQUAL(k[0x400], 0);
    CU_ASSERT_EQUAL(k[0x1fff], 0);

    const uint8_t *info = guestmem_ptr(&gm, BOOT_MB_INFO, 0x60);
    uint32_t flags = r32(info);
    CU_ASSERT_EQUAL(flags, BOOT_MB_IF_MEM | BOOT_MB_IF_CMDLINE | BOOT_MB_IF_MODS | BOOT_MB_IF_MMAP |
                               BOOT_MB_IF_LOADER_NAME);
    CU_ASSERT_EQUAL(r32(info + 4), 639);                    /* mem_lower KiB */
    CU_ASSERT_EQUAL(r32(info + 8), (RAM - 0x100000) >> 10); /* mem_upper KiB */
    CU_ASSERT_STRING_EQUAL((const char *)guestmem_ptr(&gm, r32(info + 16), 12), "console=x y");
    CU_ASSERT_STRING_EQUAL((const char *)guestmem_ptr(&gm, r32(info + 64), 6), "Lodge");

    /* mmap: one 24-byte record per E820 entry, size field 20. */
    CU_ASSERT_EQUAL(r32(info + 44), (uint32_t)t.n * 24);
    const uint8_t *mm = guestmem_ptr(&gm, r32(info + 48), (uint64_t)t.n * 24);
    for (int i = 0; i < t.n; i++) {
        CU_ASSERT_EQUAL(r32(mm + 24 * i), 20);
        CU_ASSERT_EQUAL(r64(mm + 24 * i + 4), t.e[i].addr);
        CU_ASSERT_EQUAL(r64(mm + 24 * i + 12), t.e[i].size);
        CU_ASSERT_EQUAL(r32(mm + 24 * i + 20), t.e[i].type);
    }

    /* Modules: page-aligned after the kernel, in order, contents and strings intact. */
    CU_ASSERT_EQUAL(r32(info + 20), 2);
    const uint8_t *me = guestmem_ptr(&gm, r32(info + 24), 32);
    CU_ASSERT_EQUAL(r32(me), 0x103000);
    CU_ASSERT_EQUAL(r32(me + 4), 0x103000 + sizeof(m1));
    CU_ASSERT_EQUAL(r32(me + 16), 0x105000);
    CU_ASSERT_EQUAL(r32(me + 20), 0x105003);
    CU_ASSERT_EQUAL(memcmp(guestmem_ptr(&gm, r32(me), sizeof(m1)), m1, sizeof(m1)), 0);
    CU_ASSERT_EQUAL(memcmp(guestmem_ptr(&gm, r32(me + 16), 3), m2, 3), 0);
    CU_ASSERT_STRING_EQUAL((const char *)guestmem_ptr(&gm, r32(me + 8), 10), "arg1 arg2");
    CU_ASSERT_STRING_EQUAL((const char *)guestmem_ptr(&gm, r32(me + 24), 1), "");
    CU_ASSERT_EQUAL(l.nmods, 2);
    CU_ASSERT_EQUAL(l.mod_start[1], 0x105000);
    guestmem_free(&gm);
}

static void test_load_aout(void)
{
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    make_aout(0x200000, 0x1000);
    struct boot_mb_layout l;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(l.entry, 0x200040);
    CU_ASSERT_EQUAL(l.kernel_end, 0x200000 + sizeof(img) + 0x1000);
    CU_ASSERT_EQUAL(memcmp(guestmem_ptr(&gm, 0x200000, sizeof(img)), img, sizeof(img)), 0);
    const uint8_t *info = guestmem_ptr(&gm, BOOT_MB_INFO, 0x60);
    CU_ASSERT_EQUAL(r32(info + 20), 0);
    CU_ASSERT_STRING_EQUAL((const char *)guestmem_ptr(&gm, r32(info + 16), 1), "");
    guestmem_free(&gm);
}

/* A machine with RAM above 4 GiB: the map names it, mem_upper stays the 1 MiB..hole run. */
static void test_mmap_high(void)
{
    struct guestmem gm;
    struct e820_table t;
    memset(&gm, 0, sizeof(gm));
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&gm, "ram-low", 0, RAM, false), 0);
    CU_ASSERT_EQUAL_FATAL(e820_build_pc(&t, RAM, 1ull << 30), 0);
    make_aout(0x100000, 0);
    struct boot_mb_layout l;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), 0);
    const uint8_t *info = guestmem_ptr(&gm, BOOT_MB_INFO, 0x60);
    CU_ASSERT_EQUAL(r32(info + 8), (RAM - 0x100000) >> 10);
    uint32_t len = r32(info + 44);
    CU_ASSERT_EQUAL_FATAL(len, (uint32_t)t.n * 24);
    const uint8_t *last = guestmem_ptr(&gm, r32(info + 48) + len - 24, 24);
    CU_ASSERT_EQUAL(r64(last + 4), 0x100000000ull);
    CU_ASSERT_EQUAL(r64(last + 12), 1ull << 30);
    CU_ASSERT_EQUAL(r32(last + 20), E820_RAM);
    /* An entry point outside RAM is refused. */
    make_aout(0x100000, 0);
    w32(img + 0x10 + 28, 0xfee00000);
    CU_ASSERT_EQUAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "entry point 0xfee00000"));
    guestmem_free(&gm);
}

static void test_segment_outside_ram(void)
{
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    char err[256] = "";
    struct boot_mb_layout l;
    /* Above the end of RAM. */
    make_aout(0x8000000, 0);
    CU_ASSERT_EQUAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "k.elf: segment 0x8000000-"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "outside guest RAM"));
    /* Straddling the end of RAM by its bss. */
    make_aout((uint32_t)RAM - 0x3000, 0x1000);
    CU_ASSERT_EQUAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), -ENOEXEC);
    /* In the reserved BIOS area below 1 MiB. */
    make_aout(0xf0000, 0);
    CU_ASSERT_EQUAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), -ENOEXEC);
    /* Over the loader's boot information. */
    make_aout(0x8000, 0);
    CU_ASSERT_EQUAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "boot loader area"));
    /* Nothing was written by the refused loads. */
    CU_ASSERT_EQUAL(r32(guestmem_ptr(&gm, BOOT_MB_INFO, 4)), 0);
    guestmem_free(&gm);
}

static void test_overlaps(void)
{
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    char err[256] = "";
    struct boot_mb_layout l;
    struct seg s[2] = {{0x100000, 0x100000, 0x800, 0x2000}, {0x101000, 0x101000, 0x400, 0x400}};
    make_elf(s, 2, 0x100000);
    CU_ASSERT_EQUAL(load(&gm, &t, 0, NULL, &l, err, sizeof(err)), -ENOEXEC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "overlap"));
    /* Modules that cannot all fit after the kernel are refused, not overlapped. */
    s[0].memsz = 0x800;
    make_elf(s, 2, 0x100000);
    static uint8_t dummy[1];
    mods[0] = (struct boot_mb_module){
        .data = dummy, .size = RAM - 0x200000, .path = "big1", .cmdline = ""};
    mods[1] =
        (struct boot_mb_module){.data = dummy, .size = 0x200000, .path = "big2", .cmdline = ""};
    CU_ASSERT_EQUAL(load(&gm, &t, 2, NULL, &l, err, sizeof(err)), -ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "big2: module does not fit"));
    guestmem_free(&gm);
}

static void test_modules_read(void)
{
    char dir[] = "/tmp/lodge-mb-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char p1[64], p2[64], spec[256];
    snprintf(p1, sizeof(p1), "%s/a.bin", dir);
    snprintf(p2, sizeof(p2), "%s/b.bin", dir);
    FILE *f = fopen(p1, "w");
    fputs("alpha", f);
    fclose(f);
    f = fopen(p2, "w");
    fputs("be", f);
    fclose(f);
    snprintf(spec, sizeof(spec), "%s arg1  arg2,%s", p1, p2);
    struct boot_mb_module *m = NULL;
    int n = -1;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(boot_mb_modules_read(spec, &m, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(m[0].path, p1);
    CU_ASSERT_STRING_EQUAL(m[0].cmdline, "arg1  arg2");
    CU_ASSERT_EQUAL(m[0].size, 5);
    CU_ASSERT_EQUAL(memcmp(m[0].data, "alpha", 5), 0);
    CU_ASSERT_STRING_EQUAL(m[1].cmdline, "");
    CU_ASSERT_EQUAL(m[1].size, 2);
    boot_mb_modules_free(m, n);

    snprintf(spec, sizeof(spec), "%s,%s/missing.bin x", p1, dir);
    CU_ASSERT_EQUAL(boot_mb_modules_read(spec, &m, &n, err, sizeof(err)), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing.bin: "));
    CU_ASSERT_EQUAL(boot_mb_modules_read(",x", &m, &n, err, sizeof(err)), -EINVAL);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* A recording engine for boot_mb_setup_cpu. */
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

static void check_flat(const struct accel_segment *s, uint8_t type)
{
    CU_ASSERT_EQUAL(s->base, 0);
    CU_ASSERT_EQUAL(s->limit, 0xffffffffu);
    CU_ASSERT_EQUAL(s->type, type);
    CU_ASSERT_EQUAL(s->present, 1);
    CU_ASSERT_EQUAL(s->s, 1);
    CU_ASSERT_EQUAL(s->db, 1);
    CU_ASSERT_EQUAL(s->l, 0);
    CU_ASSERT_EQUAL(s->unusable, 0);
}

static void test_setup_cpu(void)
{
    struct guestmem gm;
    struct e820_table t;
    setup_mem(&gm, &t);
    struct accel_ops ops = {.name = "mock",
                            .get_sregs = mock_get_sregs,
                            .set_sregs = mock_set_sregs,
                            .set_regs = mock_set_regs};
    struct boot_mb_layout l = {.entry = 0x100040, .info_addr = BOOT_MB_INFO};
    memset(&mock_sregs, 0, sizeof(mock_sregs));
    mock_sregs.cr0 = 0x60000010; /* reset value: CD | NW | ET */
    mock_sregs.efer = 0x500;
    CU_ASSERT_EQUAL_FATAL(boot_mb_setup_cpu(&ops, NULL, &gm, &l), 0);
    CU_ASSERT_EQUAL(mock_regs.rax, 0x2badb002);
    CU_ASSERT_EQUAL(mock_regs.rbx, BOOT_MB_INFO);
    CU_ASSERT_EQUAL(mock_regs.rip, 0x100040);
    CU_ASSERT_EQUAL(mock_regs.rflags & 0x20200, 0);   /* IF and VM clear */
    CU_ASSERT_EQUAL(mock_sregs.cr0 & 0x80000001u, 1); /* PE on, PG off */
    CU_ASSERT_EQUAL(mock_sregs.efer, 0);
    check_flat(&mock_sregs.cs, 0xb);
    check_flat(&mock_sregs.ds, 0x3);
    check_flat(&mock_sregs.es, 0x3);
    check_flat(&mock_sregs.fs, 0x3);
    check_flat(&mock_sregs.gs, 0x3);
    check_flat(&mock_sregs.ss, 0x3);
    /* The GDT the selectors name really holds matching descriptors. */
    CU_ASSERT_EQUAL(mock_sregs.gdt.base, BOOT_MB_GDT);
    const uint8_t *g = guestmem_ptr(&gm, BOOT_MB_GDT, 24);
    CU_ASSERT_EQUAL(r64(g + mock_sregs.cs.selector), 0x00cf9b000000ffffull);
    CU_ASSERT_EQUAL(r64(g + mock_sregs.ds.selector), 0x00cf93000000ffffull);
    CU_ASSERT_TRUE(mock_sregs.gdt.limit >= mock_sregs.ds.selector + 7);
    guestmem_free(&gm);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("multiboot", NULL, NULL);
    CU_add_test(s, "detect", test_detect);
    CU_add_test(s, "bad checksum", test_bad_checksum);
    CU_add_test(s, "unsupported required flags", test_unsupported_flags);
    CU_add_test(s, "parse a.out kludge", test_parse_aout);
    CU_add_test(s, "parse ELF32", test_parse_elf);
    CU_add_test(s, "load: boot information", test_load_info);
    CU_add_test(s, "load: a.out kludge", test_load_aout);
    CU_add_test(s, "mmap with RAM above 4 GiB", test_mmap_high);
    CU_add_test(s, "segment outside RAM", test_segment_outside_ram);
    CU_add_test(s, "overlaps", test_overlaps);
    CU_add_test(s, "--initrd list", test_modules_read);
    CU_add_test(s, "32-bit entry state", test_setup_cpu);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
