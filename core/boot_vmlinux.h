/* Host-side kernel decompression for direct Linux boot.
 *
 * A bzImage carries the real kernel (an ELF "vmlinux") compressed inside its
 * protected-mode part; normally the guest inflates it itself. On the software CPU that
 * in-guest inflate costs most of the boot, so the loader can do it on the host instead:
 * decompress the payload, place the ELF's load segments at their physical addresses and
 * enter the kernel's own 64-bit startup code (the same entry that VMMs booting a vmlinux
 * use). The kernel then runs unrelocated at its link address (no KASLR), exactly as with
 * `nokaslr`. */
#ifndef LODGE_CORE_BOOT_VMLINUX_H
#define LODGE_CORE_BOOT_VMLINUX_H

#include <stddef.h>
#include <stdint.h>

struct guestmem;

/* Largest decompressed kernel accepted (a bound against hostile size fields). */
#define BOOT_VMLINUX_MAX_SIZE (256u << 20)

/* Decompress the payload of the protected-mode part pm[0..pm_len) (gzip, xz or zstd).
 * On success *out is a malloc'd ELF image. -ENOTSUP for other compressors (the caller
 * falls back to in-guest decompression), -ENOEXEC with err set for a broken payload. */
int boot_vmlinux_inflate(const uint8_t *pm, size_t pm_len, uint32_t payload_offset,
                         uint32_t payload_length, uint8_t **out, size_t *out_len, char *err,
                         size_t errlen);

/* Place the PT_LOAD segments of a 64-bit vmlinux ELF in guest RAM, all inside
 * [lo, hi), zeroing their bss; *entry gets the physical entry point. 0, or -ENOEXEC with
 * err set. */
int boot_vmlinux_place(struct guestmem *gm, const uint8_t *elf, size_t len, uint64_t lo,
                       uint64_t hi, uint64_t *entry, char *err, size_t errlen);

#endif
