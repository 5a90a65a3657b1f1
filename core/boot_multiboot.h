/* Multiboot (version 1) kernels through --kernel (Multiboot Specification 0.6.96).
 *
 * A kernel is multiboot when it is not a Linux bzImage ("HdrS" at 0x202) and holds the
 * header magic 0x1BADB002 at a 4-byte aligned offset in its first 8192 bytes. The
 * loader places an ELF32 image by its program headers, or a flat image by the header's
 * address fields (flag bit 16, the "a.out kludge"), then the modules page-aligned after
 * the kernel, and builds the boot information (memory sizes, the E820 map as mmap_*,
 * command line, modules, boot loader name) in a fixed low-memory area. The vCPU enters
 * the kernel in flat 32-bit protected mode with EAX = 0x2BADB002 and EBX = the info. */
#ifndef LODGE_CORE_BOOT_MULTIBOOT_H
#define LODGE_CORE_BOOT_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct accel_ops;
struct accel_vcpu;
struct e820_table;
struct guestmem;

#define BOOT_MB_HEADER_MAGIC 0x1BADB002u
#define BOOT_MB_BOOT_MAGIC 0x2BADB002u /* EAX at entry */
#define BOOT_MB_SEARCH 8192u           /* the header lies in the first 8 KiB */

/* Header flags (spec 3.1.2). Bits 0-15 are requirements: we satisfy 0, 1 and 2. */
#define BOOT_MB_HF_PAGE_ALIGN 0x1u /* modules on 4 KiB boundaries */
#define BOOT_MB_HF_MEMINFO 0x2u    /* mem_* (and mmap_*) in the info */
#define BOOT_MB_HF_VIDEO 0x4u      /* video mode table: accepted, none is provided */
#define BOOT_MB_HF_AOUT 0x10000u   /* header address fields are valid */
#define BOOT_MB_HF_SUPPORTED_REQ 0x7u

/* Info flags (spec 3.3) the loader sets. */
#define BOOT_MB_IF_MEM 0x1u
#define BOOT_MB_IF_CMDLINE 0x4u
#define BOOT_MB_IF_MODS 0x8u
#define BOOT_MB_IF_MMAP 0x40u
#define BOOT_MB_IF_LOADER_NAME 0x200u

/* The loader's area in low RAM; a kernel or module overlapping it is refused. */
#define BOOT_MB_GDT 0x500u          /* flat GDT: 0x08 code, 0x10 data */
#define BOOT_MB_INFO 0x8000u        /* struct multiboot_info (spec 3.3) */
#define BOOT_MB_MMAP 0x8100u        /* mmap entries, 24 bytes each */
#define BOOT_MB_MODS 0x8800u        /* module entries, 16 bytes each */
#define BOOT_MB_LOADER_NAME 0x8c00u /* "Lodge" */
#define BOOT_MB_STRINGS 0x9000u     /* command lines, packed */
#define BOOT_MB_AREA_START 0x500u
#define BOOT_MB_AREA_END 0x90000u /* exclusive */
#define BOOT_MB_MAX_MODS 64
#define BOOT_MB_LOADER_NAME_TEXT "Lodge"

#define BOOT_MB_MAX_SEGS 16 /* ELF PT_LOAD segments */

/* The parsed header and what to load from the image. */
struct boot_mb_header {
    size_t offset;        /* file offset of the header */
    uint32_t flags;       /* header flags (spec 3.1.2) */
    bool aout;            /* flag bit 16: the address fields below are used */
    uint32_t header_addr; /* spec 3.1.3: address of the header itself */
    uint32_t load_addr;
    uint32_t load_end_addr; /* 0: load to the end of the file */
    uint32_t bss_end_addr;  /* 0: no bss */
    uint32_t entry_addr;
    int nsegs; /* segments to place (ELF PT_LOAD or the one flat image) */
    struct boot_mb_seg {
        uint32_t addr;  /* guest physical load address */
        uint32_t memsz; /* bytes in memory (the tail past filesz is zeroed) */
        size_t offset;  /* file offset */
        size_t filesz;  /* bytes from the file */
    } segs[BOOT_MB_MAX_SEGS];
    uint32_t entry; /* physical entry point */
};

/* One module: its contents and the command line the kernel sees for it. */
struct boot_mb_module {
    uint8_t *data;
    size_t size;
    char *path;    /* for messages */
    char *cmdline; /* text after the first space of its --initrd item, or "" */
};

struct boot_mb_args {
    const uint8_t *kernel; /* whole image file */
    size_t kernel_size;
    const char *kernel_name; /* for messages */
    const struct boot_mb_module *mods;
    int nmods;
    const char *cmdline; /* NULL for empty */
    const struct e820_table *e820;
};

struct boot_mb_layout {
    uint32_t entry;        /* EIP at entry */
    uint32_t info_addr;    /* EBX at entry */
    uint32_t kernel_start; /* lowest byte the kernel occupies */
    uint32_t kernel_end;   /* exclusive, bss included */
    int nmods;
    uint32_t mod_start[BOOT_MB_MAX_MODS];
    uint32_t mod_end[BOOT_MB_MAX_MODS]; /* exclusive, as GRUB reports it */
};

/* True when img is not a bzImage and has the multiboot magic at a 4-byte aligned
 * offset in its first 8 KiB (the checksum is checked by boot_mb_parse). */
bool boot_mb_detect(const uint8_t *img, size_t len);

/* Parse and check the header and the image. 0, or -ENOEXEC with a reason in err
 * (no file name). */
int boot_mb_parse(const uint8_t *img, size_t len, struct boot_mb_header *hdr, char *err,
                  size_t errlen);

/* Place kernel, modules and boot information in gm. 0, or -ENOEXEC / -ENOSPC / -EFAULT
 * with err set to "<file>: <problem>". Every range is checked against the E820 RAM
 * entries, the loader area and each other before anything is written. */
int boot_mb_load(struct guestmem *gm, const struct boot_mb_args *args, struct boot_mb_layout *out,
                 char *err, size_t errlen);

/* Write the GDT and put the vCPU in flat 32-bit protected mode at the entry with
 * EAX = BOOT_MB_BOOT_MAGIC, EBX = info, IF = 0, paging off. 0 or -errno. */
int boot_mb_setup_cpu(const struct accel_ops *ops, struct accel_vcpu *vcpu, struct guestmem *gm,
                      const struct boot_mb_layout *layout);

/* Split a --initrd list "file args,file2,..." and read each file. On success *out
 * holds *nout modules (free with boot_mb_modules_free). -errno with err set to
 * "<item>: <problem>" otherwise. */
int boot_mb_modules_read(const char *spec, struct boot_mb_module **out, int *nout, char *err,
                         size_t errlen);
void boot_mb_modules_free(struct boot_mb_module *mods, int n);

#endif
