#include "core/boot_multiboot.h"
#include "core/le.h"

#include "core/e820.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <errno.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_4G 0x100000000ull
#define MB_PAGE 0x1000ull

/* Header field offsets (spec 3.1.1 and 3.1.3). */
#define MBH_MAGIC 0
#define MBH_FLAGS 4
#define MBH_CHECKSUM 8
#define MBH_HEADER_ADDR 12
#define MBH_LOAD_ADDR 16
#define MBH_LOAD_END_ADDR 20
#define MBH_BSS_END_ADDR 24
#define MBH_ENTRY_ADDR 28
#define MBH_MIN_LEN 12
#define MBH_AOUT_LEN 32

/* Boot information offsets (spec 3.3). */
#define MBI_FLAGS 0
#define MBI_MEM_LOWER 4
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE 16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR 24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_BOOT_LOADER_NAME 64
#define MBI_SIZE 0x100   /* through the framebuffer fields, zeroed */
#define MB_MMAP_ENTRY 24 /* size field + 20 bytes */
#define MB_MOD_ENTRY 16

/* ELF32 (System V ABI, Intel386 supplement). */
#define ELF_EHDR_SIZE 52
#define ELF_PHDR_SIZE 32
#define ELF_PT_LOAD 1
#define ELF_ET_EXEC 2
#define ELF_EM_386 3

static int mb_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int mb_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static bool mb_is_bzimage(const uint8_t *img, size_t len)
{
    return len >= 0x206 && memcmp(img + 0x202, "HdrS", 4) == 0;
}

/* Offset of the first aligned magic in the search window, or -1. */
static long mb_find_magic(const uint8_t *img, size_t len)
{
    size_t end = len < BOOT_MB_SEARCH ? len : BOOT_MB_SEARCH;
    for (size_t off = 0; off + 4 <= end; off += 4) {
        if (le32_get(img + off) == BOOT_MB_HEADER_MAGIC) {
            return (long)off;
        }
    }
    return -1;
}

bool boot_mb_detect(const uint8_t *img, size_t len)
{
    return img && !mb_is_bzimage(img, len) && mb_find_magic(img, len) >= 0;
}

static int mb_parse_aout(const uint8_t *img, size_t len, struct boot_mb_header *h, char *err,
                         size_t errlen)
{
    if (h->offset + MBH_AOUT_LEN > len) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "multiboot header is cut short by the end of "
                       "the file (flag bit 16 needs 32 bytes)");
    }
    const uint8_t *p = img + h->offset;
    h->header_addr = le32_get(p + MBH_HEADER_ADDR);
    h->load_addr = le32_get(p + MBH_LOAD_ADDR);
    h->load_end_addr = le32_get(p + MBH_LOAD_END_ADDR);
    h->bss_end_addr = le32_get(p + MBH_BSS_END_ADDR);
    h->entry_addr = le32_get(p + MBH_ENTRY_ADDR);
    if (h->load_addr > h->header_addr || h->header_addr - h->load_addr > h->offset) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "multiboot header: load_addr 0x%x does not fit "
                       "header_addr 0x%x at file offset 0x%zx",
                       h->load_addr, h->header_addr, h->offset);
    }
    size_t file_off = h->offset - (h->header_addr - h->load_addr);
    uint64_t avail = len - file_off;
    uint64_t load_len = avail;
    if (h->load_end_addr != 0) {
        if (h->load_end_addr < h->load_addr ||
            (uint64_t)(h->load_end_addr - h->load_addr) > avail) {
            return mb_fail(err, errlen, -ENOEXEC,
                           "multiboot header: load_end_addr 0x%x is "
                           "before load_addr or past the end of the file",
                           h->load_end_addr);
        }
        load_len = h->load_end_addr - h->load_addr;
    }
    uint64_t load_end = (uint64_t)h->load_addr + load_len;
    uint64_t mem_end = load_end;
    if (h->bss_end_addr != 0) {
        if (h->bss_end_addr < load_end) {
            return mb_fail(err, errlen, -ENOEXEC,
                           "multiboot header: bss_end_addr 0x%x is "
                           "below the end of the loaded image",
                           h->bss_end_addr);
        }
        mem_end = h->bss_end_addr;
    }
    if (mem_end > MB_4G || mem_end == h->load_addr) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "multiboot header: the image is empty or "
                       "crosses 4 GiB");
    }
    h->nsegs = 1;
    h->segs[0] = (struct boot_mb_seg){.addr = h->load_addr,
                                      .memsz = (uint32_t)(mem_end - h->load_addr),
                                      .offset = file_off,
                                      .filesz = (size_t)load_len};
    h->entry = h->entry_addr;
    return 0;
}

static int mb_parse_elf(const uint8_t *img, size_t len, struct boot_mb_header *h, char *err,
                        size_t errlen)
{
    if (len < ELF_EHDR_SIZE || memcmp(img,
                                      "\x7f"
                                      "ELF",
                                      4) != 0) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "not an ELF image and the multiboot header "
                       "has no address fields (flag bit 16)");
    }
    if (img[4] != 1 || img[5] != 1 || le16_get(img + 16) != ELF_ET_EXEC ||
        le16_get(img + 18) != ELF_EM_386) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "not a 32-bit little-endian i386 ELF "
                       "executable (link with ld -m elf_i386)");
    }
    uint32_t entry = le32_get(img + 24);
    uint32_t phoff = le32_get(img + 28);
    uint16_t phentsize = le16_get(img + 42);
    uint16_t phnum = le16_get(img + 44);
    if (phentsize < ELF_PHDR_SIZE || (uint64_t)phoff + (uint64_t)phentsize * phnum > len) {
        return mb_fail(err, errlen, -ENOEXEC, "ELF program headers lie outside the file");
    }
    h->nsegs = 0;
    bool entry_mapped = false;
    h->entry = entry;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (size_t)i * phentsize;
        if (le32_get(ph) != ELF_PT_LOAD || le32_get(ph + 20) == 0) {
            continue;
        }
        uint32_t off = le32_get(ph + 4), vaddr = le32_get(ph + 8), paddr = le32_get(ph + 12);
        uint32_t filesz = le32_get(ph + 16), memsz = le32_get(ph + 20);
        if (filesz > memsz || (uint64_t)off + filesz > len) {
            return mb_fail(err, errlen, -ENOEXEC,
                           "ELF segment %u: file range 0x%x+0x%x is "
                           "outside the file or larger than its memory size",
                           i, off, filesz);
        }
        if ((uint64_t)paddr + memsz > MB_4G) {
            return mb_fail(err, errlen, -ENOEXEC, "ELF segment %u at 0x%x+0x%x crosses 4 GiB", i,
                           paddr, memsz);
        }
        if (h->nsegs == BOOT_MB_MAX_SEGS) {
            return mb_fail(err, errlen, -ENOEXEC, "more than %d ELF load segments",
                           BOOT_MB_MAX_SEGS);
        }
        h->segs[h->nsegs++] =
            (struct boot_mb_seg){.addr = paddr, .memsz = memsz, .offset = off, .filesz = filesz};
        /* A kernel linked high but loaded low names a virtual entry: translate it the
         * way GRUB does, through the segment that holds it. */
        if (!entry_mapped && entry - vaddr < memsz) {
            h->entry = paddr + (entry - vaddr);
            entry_mapped = true;
        }
    }
    if (h->nsegs == 0) {
        return mb_fail(err, errlen, -ENOEXEC, "ELF image has no load segments");
    }
    return 0;
}

int boot_mb_parse(const uint8_t *img, size_t len, struct boot_mb_header *h, char *err,
                  size_t errlen)
{
    memset(h, 0, sizeof(*h));
    if (!img || mb_is_bzimage(img, len)) {
        return mb_fail(err, errlen, -ENOEXEC, "a Linux bzImage, not a multiboot kernel");
    }
    long off = mb_find_magic(img, len);
    if (off < 0) {
        return mb_fail(err, errlen, -ENOEXEC, "no multiboot header in the first 8 KiB");
    }
    h->offset = (size_t)off;
    if (h->offset + MBH_MIN_LEN > len) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "multiboot header is cut short by the end of "
                       "the file");
    }
    const uint8_t *p = img + h->offset;
    h->flags = le32_get(p + MBH_FLAGS);
    uint32_t sum = le32_get(p + MBH_MAGIC) + h->flags + le32_get(p + MBH_CHECKSUM);
    if (sum != 0) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "multiboot header checksum is wrong (magic + "
                       "flags + checksum = 0x%x, must be 0)",
                       sum);
    }
    uint32_t unsupported = h->flags & 0xffffu & ~BOOT_MB_HF_SUPPORTED_REQ;
    if (unsupported) {
        return mb_fail(err, errlen, -ENOEXEC,
                       "multiboot header requires features this "
                       "loader lacks (flags 0x%x; only bits 0-2 are supported)",
                       unsupported);
    }
    h->aout = (h->flags & BOOT_MB_HF_AOUT) != 0;
    return h->aout ? mb_parse_aout(img, len, h, err, errlen)
                   : mb_parse_elf(img, len, h, err, errlen);
}

/* ---- placement -------------------------------------------------------------------------- */

/* The E820 RAM entry holding all of [addr, addr+len), or NULL. */
static const struct e820_entry *mb_ram_entry(const struct e820_table *t, uint64_t addr,
                                             uint64_t len)
{
    for (int i = 0; i < t->n; i++) {
        const struct e820_entry *e = &t->e[i];
        if (e->type == E820_RAM && addr >= e->addr && addr + len <= e->addr + e->size) {
            return e;
        }
    }
    return NULL;
}

static bool mb_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/* First address >= want where len bytes fit in RAM below 4 GiB, or 0. */
static uint64_t mb_fit(const struct e820_table *t, uint64_t want, uint64_t len)
{
    for (int i = 0; i < t->n; i++) {
        const struct e820_entry *e = &t->e[i];
        if (e->type != E820_RAM) {
            continue;
        }
        uint64_t start = want > e->addr ? want : e->addr;
        start = (start + MB_PAGE - 1) & ~(MB_PAGE - 1);
        if (start + len <= e->addr + e->size && start + len <= MB_4G) {
            return start;
        }
    }
    return 0;
}

int boot_mb_load(struct guestmem *gm, const struct boot_mb_args *a, struct boot_mb_layout *out,
                 char *err, size_t errlen)
{
    const char *kname = a->kernel_name ? a->kernel_name : "kernel";
    struct boot_mb_header h;
    char why[256];
    memset(out, 0, sizeof(*out));
    if (boot_mb_parse(a->kernel, a->kernel_size, &h, why, sizeof(why)) < 0) {
        return mb_fail(err, errlen, -ENOEXEC, "%s: %s", kname, why);
    }
    if (a->nmods < 0 || a->nmods > BOOT_MB_MAX_MODS) {
        return mb_fail(err, errlen, -E2BIG, "%s: at most %d modules", kname, BOOT_MB_MAX_MODS);
    }

    /* Kernel segments: in RAM, clear of the loader area and of each other. */
    uint64_t kstart = MB_4G, kend = 0;
    for (int i = 0; i < h.nsegs; i++) {
        const struct boot_mb_seg *s = &h.segs[i];
        if (!mb_ram_entry(a->e820, s->addr, s->memsz)) {
            return mb_fail(err, errlen, -ENOEXEC,
                           "%s: segment 0x%x-0x%llx is outside guest "
                           "RAM (see --mem)",
                           kname, s->addr, (unsigned long long)s->addr + s->memsz - 1);
        }
        if (mb_overlap(s->addr, s->memsz, BOOT_MB_AREA_START,
                       BOOT_MB_AREA_END - BOOT_MB_AREA_START)) {
            return mb_fail(err, errlen, -ENOEXEC,
                           "%s: segment 0x%x-0x%llx overlaps the boot "
                           "loader area 0x%x-0x%x",
                           kname, s->addr, (unsigned long long)s->addr + s->memsz - 1,
                           BOOT_MB_AREA_START, BOOT_MB_AREA_END - 1);
        }
        for (int j = 0; j < i; j++) {
            if (mb_overlap(s->addr, s->memsz, h.segs[j].addr, h.segs[j].memsz)) {
                return mb_fail(err, errlen, -ENOEXEC, "%s: segments at 0x%x and 0x%x overlap",
                               kname, h.segs[j].addr, s->addr);
            }
        }
        kstart = s->addr < kstart ? s->addr : kstart;
        kend = (uint64_t)s->addr + s->memsz > kend ? (uint64_t)s->addr + s->memsz : kend;
    }
    if (e820_type_at(a->e820, h.entry) != E820_RAM) {
        return mb_fail(err, errlen, -ENOEXEC, "%s: entry point 0x%x is outside guest RAM", kname,
                       h.entry);
    }

    /* Modules: page-aligned after the kernel (header flag bit 0 asks for that; we always
     * do it), each wholly in one RAM entry below 4 GiB. */
    uint64_t next = kend > BOOT_MB_AREA_END ? kend : BOOT_MB_AREA_END;
    for (int i = 0; i < a->nmods; i++) {
        const struct boot_mb_module *md = &a->mods[i];
        uint64_t at = mb_fit(a->e820, next, md->size);
        if (at == 0) {
            return mb_fail(err, errlen, -ENOSPC,
                           "%s: module does not fit in guest RAM without "
                           "overlapping the kernel or the modules before it (see --mem)",
                           md->path ? md->path : "module");
        }
        for (int s = 0; s < h.nsegs; s++) {
            if (mb_overlap(at, md->size, h.segs[s].addr, h.segs[s].memsz)) {
                return mb_fail(err, errlen, -ENOEXEC,
                               "%s: module would overlap the kernel "
                               "segment at 0x%x",
                               md->path ? md->path : "module", h.segs[s].addr);
            }
        }
        for (int j = 0; j < i; j++) {
            if (mb_overlap(at, md->size, out->mod_start[j], out->mod_end[j] - out->mod_start[j])) {
                return mb_fail(err, errlen, -ENOEXEC, "%s: module would overlap module %d",
                               md->path ? md->path : "module", j);
            }
        }
        out->mod_start[i] = (uint32_t)at;
        out->mod_end[i] = (uint32_t)(at + md->size);
        next = at + md->size;
    }
    out->nmods = a->nmods;

    /* Strings: the kernel command line, then one per module. */
    const char *cmdline = a->cmdline ? a->cmdline : "";
    uint64_t strings_len = strlen(cmdline) + 1;
    for (int i = 0; i < a->nmods; i++) {
        strings_len += strlen(a->mods[i].cmdline ? a->mods[i].cmdline : "") + 1;
    }
    if (strings_len > BOOT_MB_AREA_END - BOOT_MB_STRINGS) {
        return mb_fail(err, errlen, -E2BIG,
                       "%s: command lines are too long (%llu bytes, at "
                       "most %u)",
                       kname, (unsigned long long)strings_len, BOOT_MB_AREA_END - BOOT_MB_STRINGS);
    }
    if ((uint32_t)a->e820->n * MB_MMAP_ENTRY > BOOT_MB_MODS - BOOT_MB_MMAP ||
        !mb_ram_entry(a->e820, BOOT_MB_AREA_START, BOOT_MB_AREA_END - BOOT_MB_AREA_START)) {
        return mb_fail(err, errlen, -EFAULT, "%s: no room for the boot information", kname);
    }

    /* Everything is checked: write. */
    for (int i = 0; i < h.nsegs; i++) {
        const struct boot_mb_seg *s = &h.segs[i];
        uint8_t *dst = guestmem_ptr_rw(gm, s->addr, s->memsz);
        if (!dst) {
            return mb_fail(err, errlen, -EFAULT, "%s: segment 0x%x is not in guest RAM", kname,
                           s->addr);
        }
        memcpy(dst, a->kernel + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
    }
    uint8_t info[MBI_SIZE];
    memset(info, 0, sizeof(info));
    uint8_t mods[BOOT_MB_MAX_MODS * MB_MOD_ENTRY];
    memset(mods, 0, sizeof(mods));
    uint32_t str = BOOT_MB_STRINGS;
    size_t n = strlen(cmdline) + 1;
    if (guestmem_write(gm, str, cmdline, n) < 0) {
        return mb_fail(err, errlen, -EFAULT, "%s: cannot write the command line", kname);
    }
    le32_put(info + MBI_CMDLINE, str);
    str += (uint32_t)n;
    for (int i = 0; i < a->nmods; i++) {
        const struct boot_mb_module *md = &a->mods[i];
        if (md->size && guestmem_write(gm, out->mod_start[i], md->data, md->size) < 0) {
            return mb_fail(err, errlen, -EFAULT, "%s: cannot write the module",
                           md->path ? md->path : "module");
        }
        const char *mc = md->cmdline ? md->cmdline : "";
        n = strlen(mc) + 1;
        if (guestmem_write(gm, str, mc, n) < 0) {
            return mb_fail(err, errlen, -EFAULT, "%s: cannot write its command line",
                           md->path ? md->path : "module");
        }
        uint8_t *e = mods + i * MB_MOD_ENTRY;
        le32_put(e, out->mod_start[i]);
        le32_put(e + 4, out->mod_end[i]);
        le32_put(e + 8, str);
        str += (uint32_t)n;
    }
    uint8_t mmap[E820_MAX_ENTRIES * MB_MMAP_ENTRY];
    for (int i = 0; i < a->e820->n; i++) {
        uint8_t *e = mmap + i * MB_MMAP_ENTRY;
        le32_put(e, MB_MMAP_ENTRY - 4); /* size excludes the size field itself */
        le64_put(e + 4, a->e820->e[i].addr);
        le64_put(e + 12, a->e820->e[i].size);
        le32_put(e + 20, a->e820->e[i].type);
    }
    const struct e820_entry *lo = mb_ram_entry(a->e820, 0, 1);
    const struct e820_entry *hi = mb_ram_entry(a->e820, E820_HIGH_START, 1);
    uint64_t mem_lower = lo ? lo->size >> 10 : 0;
    uint64_t mem_upper = hi ? (hi->addr + hi->size - E820_HIGH_START) >> 10 : 0;
    le32_put(info + MBI_FLAGS, BOOT_MB_IF_MEM | BOOT_MB_IF_CMDLINE | BOOT_MB_IF_MODS | BOOT_MB_IF_MMAP |
                               BOOT_MB_IF_LOADER_NAME);
    le32_put(info + MBI_MEM_LOWER, (uint32_t)mem_lower);
    le32_put(info + MBI_MEM_UPPER, (uint32_t)mem_upper);
    le32_put(info + MBI_MODS_COUNT, (uint32_t)a->nmods);
    le32_put(info + MBI_MODS_ADDR, BOOT_MB_MODS);
    le32_put(info + MBI_MMAP_LENGTH, (uint32_t)(a->e820->n * MB_MMAP_ENTRY));
    le32_put(info + MBI_MMAP_ADDR, BOOT_MB_MMAP);
    le32_put(info + MBI_BOOT_LOADER_NAME, BOOT_MB_LOADER_NAME);
    if (guestmem_write(gm, BOOT_MB_MMAP, mmap, (size_t)a->e820->n * MB_MMAP_ENTRY) < 0 ||
        guestmem_write(gm, BOOT_MB_MODS, mods, (size_t)a->nmods * MB_MOD_ENTRY) < 0 ||
        guestmem_write(gm, BOOT_MB_LOADER_NAME, BOOT_MB_LOADER_NAME_TEXT,
                       sizeof(BOOT_MB_LOADER_NAME_TEXT)) < 0 ||
        guestmem_write(gm, BOOT_MB_INFO, info, sizeof(info)) < 0) {
        return mb_fail(err, errlen, -EFAULT, "%s: cannot write the boot information", kname);
    }
    out->entry = h.entry;
    out->info_addr = BOOT_MB_INFO;
    out->kernel_start = (uint32_t)kstart;
    out->kernel_end = (uint32_t)kend;
    return 0;
}

/* ---- CPU state -------------------------------------------------------------------------- */

static const uint64_t mb_gdt[3] = {
    0, 0x00cf9b000000ffffull, /* 0x08: code, 32-bit, flat 4 GiB, accessed */
    0x00cf93000000ffffull,    /* 0x10: data, flat 4 GiB, accessed */
};

static void mb_seg(struct accel_segment *s, uint16_t sel, uint8_t type)
{
    memset(s, 0, sizeof(*s));
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->db = 1;
    s->g = 1;
}

int boot_mb_setup_cpu(const struct accel_ops *ops, struct accel_vcpu *vcpu, struct guestmem *gm,
                      const struct boot_mb_layout *l)
{
    uint8_t gdt[sizeof(mb_gdt)];
    for (size_t i = 0; i < 3; i++) {
        le64_put(gdt + 8 * i, mb_gdt[i]);
    }
    if (guestmem_write(gm, BOOT_MB_GDT, gdt, sizeof(gdt)) < 0) {
        return -EFAULT;
    }
    struct accel_sregs s;
    int rc = ops->get_sregs(vcpu, &s);
    if (rc < 0) {
        return rc;
    }
    /* Spec 3.2: CS a 32-bit read/execute segment, the others read/write, all offset 0
     * and limit 0xFFFFFFFF; the GDTR may be invalid but we give a matching table. */
    mb_seg(&s.cs, 0x08, 0xb);
    mb_seg(&s.ds, 0x10, 0x3);
    s.es = s.ds;
    s.fs = s.ds;
    s.gs = s.ds;
    s.ss = s.ds;
    s.gdt.base = BOOT_MB_GDT;
    s.gdt.limit = sizeof(mb_gdt) - 1;
    /* VM entry in protected mode needs a usable TR: a busy 32-bit TSS type. */
    s.tr.type = 0xb;
    s.tr.present = 1;
    s.tr.s = 0;
    s.tr.unusable = 0;
    if (s.tr.limit == 0) {
        s.tr.limit = 0xffff;
    }
    s.cr0 = (s.cr0 & ~0x80000001ull) | 0x11; /* PE | ET, PG clear */
    s.cr4 = 0;
    s.efer = 0;
    rc = ops->set_sregs(vcpu, &s);
    if (rc < 0) {
        return rc;
    }
    struct accel_regs r;
    memset(&r, 0, sizeof(r));
    r.rip = l->entry;
    r.rax = BOOT_MB_BOOT_MAGIC;
    r.rbx = l->info_addr;
    r.rsp = BOOT_MB_INFO; /* the spec leaves ESP undefined: a usable stack below the info */
    r.rflags = 0x2;       /* IF and VM clear */
    return ops->set_regs(vcpu, &r);
}

/* ---- --initrd list ------------------------------------------------------------------------ */

void boot_mb_modules_free(struct boot_mb_module *mods, int n)
{
    if (!mods) {
        return;
    }
    for (int i = 0; i < n; i++) {
        g_free(mods[i].data);
        g_free(mods[i].path);
        g_free(mods[i].cmdline);
    }
    g_free(mods);
}

int boot_mb_modules_read(const char *spec, struct boot_mb_module **out, int *nout, char *err,
                         size_t errlen)
{
    *out = NULL;
    *nout = 0;
    gchar **items = g_strsplit(spec ? spec : "", ",", -1);
    int n = (int)g_strv_length(items);
    if (n > BOOT_MB_MAX_MODS) {
        g_strfreev(items);
        return mb_fail(err, errlen, -E2BIG, "--initrd: %d modules, at most %d", n,
                       BOOT_MB_MAX_MODS);
    }
    struct boot_mb_module *mods = g_new0(struct boot_mb_module, n > 0 ? n : 1);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *item = items[i];
        const char *sp = strchr(item, ' ');
        size_t plen = sp ? (size_t)(sp - item) : strlen(item);
        if (plen == 0) {
            rc = mb_fail(err, errlen, -EINVAL,
                         "--initrd: module %d has no file name "
                         "(use \"FILE [ARGS],FILE2 ...\")",
                         i + 1);
            n = i;
            break;
        }
        mods[i].path = g_strndup(item, plen);
        mods[i].cmdline = g_strdup(sp ? sp + 1 : "");
        gchar *buf = NULL;
        gsize len = 0;
        GError *gerr = NULL;
        if (!g_file_get_contents(mods[i].path, &buf, &len, &gerr)) {
            int e = EIO;
            if (gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_NOENT) {
                e = ENOENT;
            } else if (gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_ACCES) {
                e = EACCES;
            } else if (gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_ISDIR) {
                e = EISDIR;
            }
            rc = mb_fail(err, errlen, -e, "%s: %s", mods[i].path, strerror(e));
            g_error_free(gerr);
            n = i + 1;
            break;
        }
        mods[i].data = (uint8_t *)buf;
        mods[i].size = len;
    }
    g_strfreev(items);
    if (rc < 0) {
        boot_mb_modules_free(mods, n);
        return rc;
    }
    *out = mods;
    *nout = n;
    return 0;
}
