/* Direct Linux boot: the x86 boot protocol for bzImage (Documentation/arch/x86/boot.rst).
 *
 * The loader parses the setup header, places the protected-mode kernel, the command
 * line, the initrd and the zero page (struct boot_params) in guest RAM, and enters
 * the kernel's 64-bit entry point directly with identity-mapped page tables. */
#ifndef LODGE_CORE_BOOT_LINUX_H
#define LODGE_CORE_BOOT_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct accel_ops;
struct accel_vcpu;
struct e820_table;
struct guestmem;

/* Where the loader puts things in low RAM (all below the EBDA at 0x9FC00). */
#define BOOT_LINUX_GDT 0x500ull        /* flat 64-bit GDT */
#define BOOT_LINUX_STACK_TOP 0x7000ull /* RSP at entry; grows down */
#define BOOT_LINUX_ZERO_PAGE 0x7000ull /* struct boot_params */
#define BOOT_LINUX_PML4 0x9000ull      /* PML4, PDPT, then 4 page directories */
#define BOOT_LINUX_CMDLINE 0x20000ull  /* up to BOOT_LINUX_CMDLINE_MAX bytes */
#define BOOT_LINUX_CMDLINE_MAX 0x10000u
#define BOOT_LINUX_KERNEL_ADDR 0x100000ull /* protocol default load address */

#define BOOT_LINUX_MIN_VERSION 0x0206 /* cmdline_size and 64-bit capable kernels */

/* Setup header fields the loader uses (boot.rst "The Real-Mode Kernel Header"). */
struct boot_linux_header {
    uint16_t version;          /* 0x206: protocol version */
    uint8_t setup_sects;       /* 0x1F1: 512-byte sectors of real-mode code (0 means 4) */
    uint8_t loadflags;         /* 0x211: bit 0 LOADED_HIGH */
    uint16_t xloadflags;       /* 0x236 (2.12+): bit 0 XLF_KERNEL_64 */
    uint32_t kernel_alignment; /* 0x230 (2.05+) */
    bool relocatable;          /* 0x234 (2.05+) */
    uint32_t cmdline_size;     /* 0x238 (2.06+): max length without the NUL */
    uint32_t initrd_addr_max;  /* 0x22C (2.03+): highest address for the initrd's last byte */
    uint64_t pref_address;     /* 0x258 (2.10+) */
    uint32_t init_size;        /* 0x260 (2.10+): linear memory the kernel needs from its base */
    size_t hdr_end;            /* end of the setup header in the file (0x202 + byte at 0x201) */
    size_t pm_offset;          /* file offset of the protected-mode kernel */
    size_t pm_size;            /* its size in bytes */
};

struct boot_linux_args {
    const uint8_t *kernel; /* whole bzImage file */
    size_t kernel_size;
    const char *kernel_name; /* for messages */
    const uint8_t *initrd;   /* NULL for none */
    size_t initrd_size;
    const char *initrd_name;
    const char *cmdline; /* NULL for empty */
    uint64_t low_end;    /* end of RAM below 4 GiB */
    const struct e820_table *e820;
    uint64_t rsdp_addr; /* 0 when there are no ACPI tables */
    bool host_inflate;  /* decompress the kernel on the host (core/boot_vmlinux.h) */
};

/* What was placed where (for the vCPU setup and for tests). */
struct boot_linux_layout {
    uint64_t kernel_addr; /* protected-mode kernel base */
    uint64_t kernel_end;  /* kernel_addr + max(pm_size, init_size) */
    uint64_t entry64;     /* kernel_addr + 0x200, or the vmlinux entry when inflated */
    bool inflated;        /* the host decompressed the kernel (no in-guest inflate) */
    uint64_t initrd_addr; /* 0 when no initrd */
    uint64_t zero_page;
    uint64_t cmdline_addr;
};

/* Parse and check a bzImage. 0, or -ENOEXEC with a reason in err (no file name). */
int boot_linux_parse(const uint8_t *img, size_t len, struct boot_linux_header *hdr, char *err,
                     size_t errlen);

/* Load kernel, initrd, cmdline and zero page into gm. 0 or -errno with err set to
 * "<file>: <problem>" (the file is the kernel or the initrd named in args). */
int boot_linux_load(struct guestmem *gm, const struct boot_linux_args *args,
                    struct boot_linux_layout *out, char *err, size_t errlen);

/* Write the page tables and GDT the 64-bit entry needs and put the vCPU in long mode
 * at the entry point with RSI = zero page. 0 or -errno. */
int boot_linux_setup_cpu(const struct accel_ops *ops, struct accel_vcpu *vcpu, struct guestmem *gm,
                         const struct boot_linux_layout *layout);

#endif
