#include "core/boot_vmlinux.h"
#include "core/le.h"

#include "core/guestmem.h"

#include <elf.h>
#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static int inflate_xz(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                      size_t *got)
{
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) {
        return -ENOMEM;
    }
    s.next_in = in;
    s.avail_in = in_len;
    s.next_out = out;
    s.avail_out = out_len;
    lzma_ret r = lzma_code(&s, LZMA_FINISH);
    *got = out_len - s.avail_out;
    lzma_end(&s);
    return r == LZMA_STREAM_END ? 0 : -ENOEXEC;
}

static int inflate_gzip(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                        size_t *got)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) {
        return -ENOMEM;
    }
    int r = Z_OK;
    size_t done_in = 0, done_out = 0;
    /* zlib counts in uInt: feed in chunks so huge inputs cannot overflow it. */
    while (r == Z_OK) {
        s.next_in = (Bytef *)(in + done_in);
        s.avail_in = (uInt)((in_len - done_in) > (1u << 30) ? (1u << 30) : (in_len - done_in));
        s.next_out = out + done_out;
        s.avail_out = (uInt)((out_len - done_out) > (1u << 30) ? (1u << 30) : (out_len - done_out));
        uInt ai = s.avail_in, ao = s.avail_out;
        r = inflate(&s, Z_NO_FLUSH);
        done_in += ai - s.avail_in;
        done_out += ao - s.avail_out;
        if (r == Z_OK && ai == s.avail_in && ao == s.avail_out) {
            break; /* no progress: truncated input or full output */
        }
    }
    *got = done_out;
    inflateEnd(&s);
    return r == Z_STREAM_END ? 0 : -ENOEXEC;
}

static int inflate_zstd(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                        size_t *got)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    if (!d) {
        return -ENOMEM;
    }
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {out, out_len, 0};
    size_t r = 1;
    while (r != 0 && ib.pos < ib.size && ob.pos < ob.size) {
        r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r)) {
            break;
        }
    }
    *got = ob.pos;
    ZSTD_freeDStream(d);
    return r == 0 ? 0 : -ENOEXEC;
}

int boot_vmlinux_inflate(const uint8_t *pm, size_t pm_len, uint32_t payload_offset,
                         uint32_t payload_length, uint8_t **out, size_t *out_len, char *err,
                         size_t errlen)
{
    if (payload_length < 8 || payload_offset > pm_len || payload_length > pm_len - payload_offset) {
        snprintf(err, errlen, "kernel payload (offset %u, length %u) lies outside the image",
                 payload_offset, payload_length);
        return -ENOEXEC;
    }
    const uint8_t *p = pm + payload_offset;
    int (*fn)(const uint8_t *, size_t, uint8_t *, size_t, size_t *) = NULL;
    if (p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e)) {
        fn = inflate_gzip;
    } else if (memcmp(p, "\xfd" "7zXZ\0", 6) == 0) {
        fn = inflate_xz;
    } else if (le32_get(p) == 0xfd2fb528u) {
        fn = inflate_zstd;
    } else {
        return -ENOTSUP; /* bzip2, lzma, lzo, lz4: leave it to the guest */
    }
    /* The build appends the decompressed size as the payload's last 4 bytes. */
    size_t want = le32_get(p + payload_length - 4);
    if (want == 0 || want > BOOT_VMLINUX_MAX_SIZE) {
        snprintf(err, errlen, "kernel payload claims a decompressed size of %zu bytes", want);
        return -ENOEXEC;
    }
    uint8_t *buf = malloc(want);
    if (!buf) {
        return -ENOMEM;
    }
    size_t got = 0;
    int rc = fn(p, payload_length, buf, want, &got);
    if (rc < 0 || got != want) {
        free(buf);
        snprintf(err, errlen, "kernel payload does not decompress (%zu of %zu bytes)", got, want);
        return rc == -ENOMEM ? rc : -ENOEXEC;
    }
    *out = buf;
    *out_len = got;
    return 0;
}

int boot_vmlinux_place(struct guestmem *gm, const uint8_t *elf, size_t len, uint64_t lo,
                       uint64_t hi, uint64_t *entry, char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    if (len < sizeof(eh)) {
        snprintf(err, errlen, "decompressed kernel is too short for an ELF header");
        return -ENOEXEC;
    }
    memcpy(&eh, elf, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff) {
        snprintf(err, errlen, "decompressed kernel is not a 64-bit x86 ELF");
        return -ENOEXEC;
    }
    int loads = 0;
    for (int pass = 0; pass < 2; pass++) { /* check everything, then write */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;
            memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
            if (ph.p_type != PT_LOAD) {
                continue;
            }
            if (ph.p_filesz > ph.p_memsz || ph.p_offset > len || ph.p_filesz > len - ph.p_offset ||
                ph.p_paddr < lo || ph.p_paddr > hi || ph.p_memsz > hi - ph.p_paddr) {
                snprintf(err, errlen,
                         "kernel segment %u (0x%llx+0x%llx) lies outside its load area", i,
                         (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
                return -ENOEXEC;
            }
            if (pass == 0) {
                loads++;
                continue;
            }
            uint8_t *dst = guestmem_ptr_rw(gm, ph.p_paddr, ph.p_memsz);
            if (!dst) {
                snprintf(err, errlen, "kernel segment %u is not in guest RAM", i);
                return -ENOEXEC;
            }
            memcpy(dst, elf + ph.p_offset, ph.p_filesz);
            memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
        }
    }
    if (loads == 0 || eh.e_entry < lo || eh.e_entry >= hi) {
        snprintf(err, errlen, "decompressed kernel has no loadable entry point");
        return -ENOEXEC;
    }
    *entry = eh.e_entry;
    return 0;
}
