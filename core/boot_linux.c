#include "core/boot_linux.h"
#include "core/le.h"
#include "core/boot_vmlinux.h"

#include "core/e820.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Zero page offsets (arch/x86/include/uapi/asm/bootparam.h). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_START 0x1f1
#define BP_VID_MODE 0x1fa
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000

#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x0001

int boot_linux_parse(const uint8_t *img, size_t len, struct boot_linux_header *hdr, char *err,
                     size_t errlen)
{
    memset(hdr, 0, sizeof(*hdr));
    if (len < 0x264 || memcmp(img + 0x202, "HdrS", 4) != 0) {
        snprintf(err, errlen, "not a bzImage (no \"HdrS\" setup header)");
        return -ENOEXEC;
    }
    hdr->version = le16_get(img + 0x206);
    if (hdr->version < BOOT_LINUX_MIN_VERSION) {
        snprintf(err, errlen, "boot protocol %u.%02u is too old (need 2.06 or newer)",
                 hdr->version >> 8, hdr->version & 0xff);
        return -ENOEXEC;
    }
    hdr->setup_sects = img[0x1f1] ? img[0x1f1] : 4;
    hdr->loadflags = img[BP_LOADFLAGS];
    hdr->initrd_addr_max = le32_get(img + 0x22c);
    hdr->kernel_alignment = le32_get(img + 0x230);
    hdr->relocatable = img[0x234] != 0;
    hdr->cmdline_size = le32_get(img + 0x238);
    if (hdr->version >= 0x020a) {
        hdr->pref_address = (uint64_t)le32_get(img + 0x258) | ((uint64_t)le32_get(img + 0x25c) << 32);
        hdr->init_size = le32_get(img + 0x260);
    }
    if (hdr->version >= 0x020c) {
        hdr->xloadflags = le16_get(img + 0x236);
        if (!(hdr->xloadflags & XLF_KERNEL_64)) {
            snprintf(err, errlen, "not a 64-bit kernel (no 64-bit entry point in xloadflags)");
            return -ENOEXEC;
        }
    }
    if (!(hdr->loadflags & LOADFLAG_LOADED_HIGH)) {
        snprintf(err, errlen, "not a bzImage (zImage loads low)");
        return -ENOEXEC;
    }
    hdr->hdr_end = 0x202 + img[0x201];
    hdr->pm_offset = ((size_t)hdr->setup_sects + 1) * 512;
    if (hdr->pm_offset + 0x200 >= len) {
        snprintf(err, errlen, "truncated bzImage (no protected-mode kernel after %u setup sectors)",
                 hdr->setup_sects);
        return -ENOEXEC;
    }
    hdr->pm_size = len - hdr->pm_offset;
    return 0;
}

/* A kernel base and its extent: pref_address when the kernel may be relocated there
 * and it fits, else the protocol default of 1 MiB. */
static int boot_linux_place_kernel(const struct boot_linux_header *h, uint64_t low_end,
                                   uint64_t *base, uint64_t *end)
{
    uint64_t need = h->pm_size > h->init_size ? h->pm_size : h->init_size;
    uint64_t cands[2] = {0, BOOT_LINUX_KERNEL_ADDR};
    if (h->relocatable && h->pref_address >= BOOT_LINUX_KERNEL_ADDR) {
        cands[0] = h->pref_address;
    }
    for (int i = 0; i < 2; i++) {
        if (cands[i] && cands[i] < low_end && need <= low_end - cands[i]) {
            *base = cands[i];
            *end = cands[i] + need;
            return 0;
        }
    }
    return -ENOMEM;
}

/* Decompress the kernel on the host and place its ELF segments where the in-guest
 * decompressor would have put them (only when the kernel sits at its link address, so no
 * relocation is needed). -ENOTSUP means "let the guest do it". */
static int boot_linux_inflate_on_host(struct guestmem *gm, const struct boot_linux_args *a,
                                      const struct boot_linux_header *h,
                                      struct boot_linux_layout *out, char *why, size_t whylen)
{
    if (h->version < 0x0208 || a->kernel_size < 0x250) {
        return -ENOTSUP; /* no payload_offset/payload_length fields */
    }
    /* Setup header 0x248/0x24C: payload_offset and payload_length (boot protocol 2.08). */
    uint32_t poff = le32_get(a->kernel + 0x248);
    uint32_t plen = le32_get(a->kernel + 0x24c);
    uint8_t *elf = NULL;
    size_t elf_len = 0;
    int rc = boot_vmlinux_inflate(a->kernel + h->pm_offset, h->pm_size, poff, plen, &elf, &elf_len,
                                  why, whylen);
    if (rc < 0) {
        return rc;
    }
    uint64_t entry = 0;
    rc = boot_vmlinux_place(gm, elf, elf_len, out->kernel_addr, out->kernel_end, &entry, why,
                            whylen);
    free(elf);
    if (rc < 0) {
        return -ENOTSUP; /* not at its link address: the guest relocates it itself */
    }
    out->entry64 = entry;
    out->inflated = true;
    return 0;
}

int boot_linux_load(struct guestmem *gm, const struct boot_linux_args *a,
                    struct boot_linux_layout *out, char *err, size_t errlen)
{
    struct boot_linux_header h;
    char why[160];
    memset(out, 0, sizeof(*out));
    int rc = boot_linux_parse(a->kernel, a->kernel_size, &h, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", a->kernel_name, why);
        return rc;
    }
    if (boot_linux_place_kernel(&h, a->low_end, &out->kernel_addr, &out->kernel_end) < 0) {
        snprintf(err, errlen, "%s: kernel needs %u MiB from 1 MiB up: give the guest more --mem",
                 a->kernel_name,
                 (unsigned)(((h.init_size > h.pm_size ? h.init_size : h.pm_size) >> 20) + 1));
        return -ENOMEM;
    }
    out->entry64 = out->kernel_addr + 0x200;
    out->zero_page = BOOT_LINUX_ZERO_PAGE;
    out->cmdline_addr = BOOT_LINUX_CMDLINE;

    /* Command line: the kernel's own limit, and our buffer's. */
    const char *cmd = a->cmdline ? a->cmdline : "";
    size_t clen = strlen(cmd);
    size_t cmax =
        h.cmdline_size < BOOT_LINUX_CMDLINE_MAX - 1 ? h.cmdline_size : BOOT_LINUX_CMDLINE_MAX - 1;
    if (clen > cmax) {
        snprintf(err, errlen, "--append: command line is %zu bytes, the kernel takes at most %zu",
                 clen, cmax);
        return -E2BIG;
    }

    /* Initrd: as high as allowed, page aligned, clear of the kernel's init_size. */
    if (a->initrd && a->initrd_size) {
        uint64_t max = h.initrd_addr_max ? h.initrd_addr_max : 0x37ffffff;
        if (max > a->low_end - 1) {
            max = a->low_end - 1;
        }
        uint64_t sz = a->initrd_size;
        uint64_t lowest = out->kernel_end > BOOT_LINUX_CMDLINE + BOOT_LINUX_CMDLINE_MAX
                              ? out->kernel_end
                              : BOOT_LINUX_CMDLINE + BOOT_LINUX_CMDLINE_MAX;
        lowest = (lowest + 0xfff) & ~0xfffull;
        if (sz > max + 1 || ((max + 1 - sz) & ~0xfffull) < lowest) {
            snprintf(err, errlen,
                     "%s: initrd of %llu MiB does not fit in RAM below %llu MiB after the "
                     "kernel: give the guest more --mem",
                     a->initrd_name ? a->initrd_name : "initrd", (unsigned long long)(sz >> 20),
                     (unsigned long long)((max + 1) >> 20));
            return -ENOSPC;
        }
        out->initrd_addr = (max + 1 - sz) & ~0xfffull;
        if (guestmem_write(gm, out->initrd_addr, a->initrd, a->initrd_size) < 0) {
            snprintf(err, errlen, "%s: cannot place initrd in guest RAM", a->initrd_name);
            return -EFAULT;
        }
    }

    if (guestmem_write(gm, out->kernel_addr, a->kernel + h.pm_offset, h.pm_size) < 0 ||
        guestmem_write(gm, out->cmdline_addr, cmd, clen + 1) < 0) {
        snprintf(err, errlen, "%s: cannot place kernel in guest RAM", a->kernel_name);
        return -EFAULT;
    }

    if (a->host_inflate) {
        rc = boot_linux_inflate_on_host(gm, a, &h, out, why, sizeof(why));
        if (rc < 0 && rc != -ENOTSUP) {
            snprintf(err, errlen, "%s: %s", a->kernel_name, why);
            return rc;
        }
    }

    uint8_t bp[BP_SIZE];
    memset(bp, 0, sizeof(bp));
    size_t hdr_end = h.hdr_end < a->kernel_size ? h.hdr_end : a->kernel_size;
    if (hdr_end > BP_E820_TABLE) {
        hdr_end = BP_E820_TABLE; /* never let a hostile header run into the e820 table */
    }
    memcpy(bp + BP_HDR_START, a->kernel + BP_HDR_START, hdr_end - BP_HDR_START);
    le16_put(bp + BP_VID_MODE, 0xffff); /* "normal" text mode: no mode switch */
    bp[BP_TYPE_OF_LOADER] = 0xff;   /* undefined boot loader */
    bp[BP_LOADFLAGS] = (uint8_t)((h.loadflags | LOADFLAG_CAN_USE_HEAP) & ~0x20u); /* QUIET off */
    le16_put(bp + BP_HEAP_END_PTR, 0xfe00);
    le32_put(bp + BP_CMD_LINE_PTR, (uint32_t)out->cmdline_addr);
    le32_put(bp + BP_RAMDISK_IMAGE, (uint32_t)out->initrd_addr);
    le32_put(bp + BP_RAMDISK_SIZE, out->initrd_addr ? (uint32_t)a->initrd_size : 0);
    le64_put(bp + BP_ACPI_RSDP_ADDR, a->rsdp_addr);
    int n = 0;
    if (a->e820) {
        for (; n < a->e820->n && n < BP_E820_MAX; n++) {
            uint8_t *e = bp + BP_E820_TABLE + 20 * n;
            le64_put(e, a->e820->e[n].addr);
            le64_put(e + 8, a->e820->e[n].size);
            le32_put(e + 16, a->e820->e[n].type);
        }
    }
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    if (guestmem_write(gm, out->zero_page, bp, sizeof(bp)) < 0) {
        snprintf(err, errlen, "%s: cannot place the zero page in guest RAM", a->kernel_name);
        return -EFAULT;
    }
    return 0;
}

/* 64-bit boot protocol: __BOOT_CS 0x10 (flat 64-bit code) and __BOOT_DS 0x18. */
static const uint64_t boot_gdt[4] = {
    0, 0, 0x00af9b000000ffffull, /* 0x10: code, L=1, P, DPL0, accessed */
    0x00cf93000000ffffull,       /* 0x18: data, flat 4 GiB, accessed */
};

static int boot_linux_write_tables(struct guestmem *gm)
{
    uint64_t pml4 = BOOT_LINUX_PML4;
    uint64_t pdpt = pml4 + 0x1000;
    uint64_t pd = pdpt + 0x1000;
    uint64_t page[512];

    memset(page, 0, sizeof(page));
    page[0] = pdpt | 0x3; /* present, writable */
    if (guestmem_write(gm, pml4, page, sizeof(page)) < 0) {
        return -EFAULT;
    }
    memset(page, 0, sizeof(page));
    for (int i = 0; i < 4; i++) {
        page[i] = (pd + 0x1000ull * (uint64_t)i) | 0x3;
    }
    if (guestmem_write(gm, pdpt, page, sizeof(page)) < 0) {
        return -EFAULT;
    }
    for (int d = 0; d < 4; d++) {
        for (int i = 0; i < 512; i++) {
            /* present, writable, PS: a 2 MiB identity page */
            page[i] = (((uint64_t)d << 30) + ((uint64_t)i << 21)) | 0x83;
        }
        if (guestmem_write(gm, pd + 0x1000ull * (uint64_t)d, page, sizeof(page)) < 0) {
            return -EFAULT;
        }
    }
    if (guestmem_write(gm, BOOT_LINUX_GDT, boot_gdt, sizeof(boot_gdt)) < 0) {
        return -EFAULT;
    }
    return 0;
}

static void boot_seg(struct accel_segment *s, uint16_t sel, uint8_t type, bool code64)
{
    memset(s, 0, sizeof(*s));
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->dpl = 0;
    s->s = 1;
    s->g = 1;
    s->l = code64 ? 1 : 0;
    s->db = code64 ? 0 : 1;
}

int boot_linux_setup_cpu(const struct accel_ops *ops, struct accel_vcpu *vcpu, struct guestmem *gm,
                         const struct boot_linux_layout *l)
{
    int rc = boot_linux_write_tables(gm);
    if (rc < 0) {
        return rc;
    }
    struct accel_sregs s;
    rc = ops->get_sregs(vcpu, &s);
    if (rc < 0) {
        return rc;
    }
    boot_seg(&s.cs, 0x10, 0xb, true);
    boot_seg(&s.ds, 0x18, 0x3, false);
    s.es = s.ds;
    s.ss = s.ds;
    s.fs = s.ds;
    s.gs = s.ds;
    s.gdt.base = BOOT_LINUX_GDT;
    s.gdt.limit = sizeof(boot_gdt) - 1;
    /* A busy 64-bit TSS type for TR: VM entry into IA-32e mode insists on it. */
    s.tr.type = 0xb;
    s.tr.present = 1;
    s.tr.s = 0;
    s.tr.unusable = 0;
    s.cr0 = 0x80000011ull; /* PG | ET | PE */
    s.cr3 = BOOT_LINUX_PML4;
    s.cr4 = 0x20;   /* PAE */
    s.efer = 0x500; /* LME | LMA */
    rc = ops->set_sregs(vcpu, &s);
    if (rc < 0) {
        return rc;
    }
    struct accel_regs r;
    memset(&r, 0, sizeof(r));
    r.rip = l->entry64;
    r.rsi = l->zero_page;
    r.rsp = BOOT_LINUX_STACK_TOP;
    r.rflags = 0x2; /* IF clear */
    return ops->set_regs(vcpu, &r);
}
