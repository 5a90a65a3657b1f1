/* Decoder oracle: Capstone and Lodge's x86_decode() must agree on instruction lengths (and,
 * where cheap, on ModRM presence and immediate size) for random byte strings in 16/32/64-bit
 * mode and for every instruction of a Linux kernel's .text (linear sweep).
 *
 *   decoder_oracle [--seed N] [--random M] [--vmlinux FILE] [--max-print K] [-v]
 *
 * Known Capstone errors are excluded by capstone_wrong() below; each entry names the SDM
 * rule Capstone gets wrong (see docs/cpu-oracle.md). Exit 0 when no length disagreement is
 * left, 1 otherwise. */
#include "core/cpu/cpu.h"
#include "tests/cpu/oracle.h"
#include "tests/cpu/orc_capstone.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dstats {
    uint64_t total;      /* instructions compared */
    uint64_t agree;      /* both decode, same length */
    uint64_t len_diff;   /* both decode, different length (a failure unless excluded) */
    uint64_t excluded;   /* length differs, but Capstone is known wrong */
    uint64_t lodge_only; /* Lodge decodes (not #UD), Capstone rejects */
    uint64_t cs_only;    /* Capstone decodes, Lodge says #UD (length still compared) */
    uint64_t modrm_diff; /* same length, ModRM presence differs */
    uint64_t imm_diff;   /* same length, immediate size differs */
    unsigned printed;
    uint32_t key_len[3][0x500];   /* length disagreements per mode and opcode key */
    uint32_t key_ud[3][0x500];    /* Lodge #UD where Capstone decodes */
    uint32_t key_lodge[3][0x500]; /* Lodge decodes, Capstone rejects */
};

struct dopts {
    uint64_t seed;
    uint64_t random;
    const char *vmlinux;
    unsigned max_print;
    bool verbose;
};

static int mode_bits(int mode)
{
    return mode == X86_MODE_16 ? 16 : mode == X86_MODE_32 ? 32 : 64;
}

static void hex(const uint8_t *b, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < outlen; i++) {
        o += (size_t)snprintf(out + o, outlen - o, "%02x ", b[i]);
    }
    if (o) {
        out[o - 1] = 0;
    } else {
        out[0] = 0;
    }
}

/* Skip legacy prefixes and REX; returns the offset of the opcode. */
static size_t opcode_offset(const uint8_t *b, size_t n, int mode)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = b[i];
        if (c == 0x66 || c == 0x67 || c == 0xf0 || c == 0xf2 || c == 0xf3 || c == 0x2e ||
            c == 0x36 || c == 0x3e || c == 0x26 || c == 0x64 || c == 0x65) {
            i++;
            continue;
        }
        if (mode == X86_MODE_64 && (c & 0xf0) == 0x40) {
            i++;
            continue;
        }
        break;
    }
    return i;
}

/* map | opcode byte (0x400 + escape byte for VEX/EVEX/XOP) of the instruction at b. */
static unsigned opcode_key(const uint8_t *b, size_t n, int mode)
{
    size_t o = opcode_offset(b, n, mode);
    if (o + 3 >= n) {
        return 0;
    }
    uint8_t c = b[o];
    if (c == 0x0f) {
        if (b[o + 1] == 0x38) {
            return 0x200u | b[o + 2];
        }
        if (b[o + 1] == 0x3a) {
            return 0x300u | b[o + 2];
        }
        return 0x100u | b[o + 1];
    }
    if ((c == 0xc4 || c == 0xc5 || c == 0x62 || c == 0x8f) &&
        (mode == X86_MODE_64 || (b[o + 1] & 0xc0) == 0xc0)) {
        return 0x400u | c;
    }
    return c;
}

static const char *key_name(unsigned key, char *buf, size_t len)
{
    static const char *const mp[] = {"", "0f ", "0f38 ", "0f3a ", "vex/evex/xop "};
    snprintf(buf, len, "%s%02x", mp[key >> 8], key & 0xff);
    return buf;
}

/* Disagreements where Capstone 4 is wrong and Lodge follows the SDM. Returns a reason. */
static const char *capstone_wrong(const uint8_t *b, size_t n, int mode, int lodge_len,
                                  const struct x86_insn *in, const struct orc_cs_info *cs)
{
    size_t o = opcode_offset(b, n, mode);
    if (o + 2 >= n) {
        return NULL;
    }
    bool p66 = false, prep = false, rexw = false;
    for (size_t i = 0; i < o; i++) {
        p66 |= b[i] == 0x66;
        prep |= b[i] == 0xf2 || b[i] == 0xf3;
        rexw = mode == X86_MODE_64 && (b[i] & 0xf8) == 0x48; /* only the last REX counts */
    }
    uint8_t op = b[o], op2 = b[o + 1];
    bool ud = lodge_len > 0 && (in->flags & X86_F_UD);
    if (op == 0x0f && (op2 == 0xb9 || op2 == 0xff) && (in->flags & X86_F_MODRM)) {
        /* SDM vol. 2B "UD": UD1 is 0F B9 /r and UD0 is 0F FF /r, both with ModRM;
         * Linux's BUG()/WARN() use UD1 with a ModRM byte (0f b9 cc). */
        return "UD0/UD1 take a ModRM byte";
    }
    if (op == 0x0f && (op2 == 0xa6 || op2 == 0xa7) && ud) {
        /* VIA PadLock encodings (XSTORE, XCRYPT*, MONTMUL, XSHA*): reserved on Intel and
         * AMD, #UD at the first byte, so the length is not architectural. */
        return "VIA PadLock opcode, #UD on Intel/AMD";
    }
    if (op == 0x0f && (op2 == 0x78 || op2 == 0x79) &&
        (p66 || prep || strncmp(cs->text, "extrq", 5) == 0 ||
         strncmp(cs->text, "insertq", 7) == 0)) {
        /* 66/F2 0F 78/79 are AMD SSE4a EXTRQ/INSERTQ (AMD APM vol. 4), not advertised by
         * Lodge's CPUID and #UD there; Intel defines them as VMREAD/VMWRITE (#UD with a
         * 66/F2 prefix). Capstone applies the AMD lengths. */
        return "SSE4a EXTRQ/INSERTQ (AMD only, not advertised)";
    }
    if (mode == X86_MODE_64 && (rexw || prep) && !p66 &&
        (op == 0x68 || op == 0xc2 || op == 0xe8 || op == 0xe9)) {
        /* PUSH imm32 (68 id), RET imm16 (C2 iw), CALL/JMP rel32 (E8/E9 cd): REX.W and F2/F3
         * do not change the immediate size (SDM vol. 2, PUSH/RET/CALL/JMP); Capstone 4
         * shrinks it. */
        return "REX.W/F2/F3 do not change the immediate of 68/C2/E8/E9";
    }
    if (mode == X86_MODE_64 && rexw && p66 && (op == 0xe8 || op == 0xe9) &&
        lodge_len == (int)o + 5) {
        /* REX.W overrides 66: the operand size is 64 bits and the displacement rel32 */
        return "REX.W overrides 66 on E8/E9 (rel32)";
    }
    if (mode == X86_MODE_64 && (rexw || prep) && p66 && (op == 0x68 || op == 0xc2)) {
        /* 66 + REX.W: REX.W wins (PUSH imm32); RET imm16 is always iw. With F2/F3 the 66
         * still selects the 16-bit operand size (PUSH imm16). */
        int want = (int)o + 1 + (op == 0xc2 ? 2 : (rexw ? 4 : 2));
        if (lodge_len == want) {
            return "66 with REX.W/F2/F3: SDM operand-size rules for 68/C2";
        }
    }
    if (op == 0x62 && o + 5 < n && (mode == X86_MODE_64 || (b[o + 1] & 0xc0) == 0xc0) &&
        (b[o + 3] & 0x10) && (b[o + 5] & 0xc0) == 0xc0 && ud && lodge_len == (int)o + 6) {
        /* EVEX register form with EVEX.b (embedded rounding {er}/{sae}): no immediate unless
         * the opcode has one; Capstone 4 counts an extra byte (vmulps zmm, zmm, zmm, {rn-sae}
         * is 6 bytes: 62 P0 P1 P2 59 ModRM). */
        return "EVEX {er} register form has no extra byte";
    }
    if (op == 0x8f && (b[o + 1] & 0x1f) == 0x0a && ud && cs->imm_size == 2) {
        /* XOP map 0Ah (AMD TBM BEXTR/LWP*) always takes an imm32 (AMD APM vol. 3, BEXTR
         * "8F RXB.0A 0.1111.0.00 10 /r id"); Capstone shrinks it to imm16 in 16-bit mode. */
        return "XOP map 0Ah takes imm32";
    }
    if ((op == 0xe8 || op == 0xe9) && p66 && !rexw && lodge_len == (int)o + 3 &&
        (prep || mode == X86_MODE_64)) {
        /* 66 selects rel16 for near CALL/JMP (SDM vol. 2A CALL: "E8 cw"; in 64-bit mode AMD
         * honours 66 as Lodge does, Intel ignores it); Capstone drops the 66 when an F2/F3
         * prefix follows it. */
        return "66 on E8/E9: rel16 (AMD rule in 64-bit mode)";
    }
    return NULL;
}

static void report(struct dstats *st, const struct dopts *op, const char *kind, const uint8_t *b,
                   int mode, int llen, const struct x86_insn *in, const struct orc_cs_info *cs,
                   uint64_t addr)
{
    if (st->printed >= op->max_print) {
        return;
    }
    st->printed++;
    (void)key_name;
    char h[64];
    hex(b, 15, h, sizeof(h));
    printf("%s (%d-bit%s%" PRIx64 "): %s\n  Lodge len %d%s modrm %d imm %u | Capstone len %u "
           "modrm %d imm %u: %s\n",
           kind, mode_bits(mode), addr ? " @" : "", addr, h, llen,
           (llen > 0 && (in->flags & X86_F_UD)) ? " (#UD)" : "", !!(in->flags & X86_F_MODRM),
           in->immsize, cs ? cs->len : 0, cs ? cs->has_modrm : 0, cs ? cs->imm_size : 0,
           cs ? cs->text : "(invalid)");
}

/* Compare one instruction at b[0..15]. Returns the length to advance by (Capstone's when it
 * decodes, else Lodge's, else 1). */
static unsigned compare_one(struct dstats *st, const struct dopts *op, struct orc_cs *cs,
                            const uint8_t *b, int mode, uint64_t addr)
{
    struct x86_insn in;
    memset(&in, 0, sizeof(in));
    int llen = x86_decode(&in, b, 15, mode);
    struct orc_cs_info ci;
    bool csok = orc_cs_decode(cs, b, 15, &ci) == 0;
    st->total++;
    if (!csok) {
        if (llen > 0 && !(in.flags & X86_F_UD)) {
            st->lodge_only++;
            unsigned key = opcode_key(b, 15, mode);
            if (st->key_lodge[mode][key]++ == 0 && op->verbose) {
                report(st, op, "lodge-only", b, mode, llen, &in, NULL, addr);
            }
        }
        return llen > 0 ? (unsigned)llen : 1;
    }
    if (llen > 0 && (in.flags & X86_F_UD)) {
        st->cs_only++;
        unsigned key = opcode_key(b, 15, mode);
        if (st->key_ud[mode][key]++ == 0 && op->verbose) {
            report(st, op, "lodge-#UD", b, mode, llen, &in, &ci, addr);
        }
    }
    if (llen != (int)ci.len) {
        const char *why = capstone_wrong(b, 15, mode, llen, &in, &ci);
        if (why) {
            st->excluded++;
        } else {
            st->len_diff++;
            unsigned key = opcode_key(b, 15, mode);
            if (st->key_len[mode][key]++ == 0) {
                report(st, op, "LENGTH", b, mode, llen, &in, &ci, addr);
            }
        }
        return ci.len;
    }
    st->agree++;
    if (!(in.flags & X86_F_UD)) {
        if (!!(in.flags & X86_F_MODRM) != !!ci.has_modrm) {
            st->modrm_diff++;
            if (op->verbose) {
                report(st, op, "modrm", b, mode, llen, &in, &ci, addr);
            }
        } else if (in.immsize != ci.imm_size && ci.imm_size != 0) {
            st->imm_diff++;
            if (op->verbose) {
                report(st, op, "imm", b, mode, llen, &in, &ci, addr);
            }
        }
    }
    return ci.len;
}

static const uint8_t legacy_pfx[] = {0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e,
                                     0x3e, 0x26, 0x36, 0x64, 0x65};

static void random_insn(uint64_t *s, int mode, uint8_t *b)
{
    for (unsigned i = 0; i < 16; i++) {
        b[i] = (uint8_t)orc_rand(s);
    }
    unsigned k = 0;
    uint64_t r = orc_rand(s);
    unsigned npfx = (r & 3) == 3 ? (unsigned)((r >> 2) % 4) : (r & 3) == 2 ? 1 : 0;
    for (unsigned i = 0; i < npfx; i++) {
        b[k++] = legacy_pfx[orc_rand(s) % sizeof(legacy_pfx)];
    }
    r = orc_rand(s);
    if (mode == X86_MODE_64 && r % 10 < 4) {
        b[k++] = (uint8_t)(0x40 | (r >> 8 & 15));
    }
    r = orc_rand(s) % 100;
    if (r < 45) {
        /* one-byte map: the random byte stays */
    } else if (r < 80) {
        b[k++] = 0x0f;
    } else if (r < 88) {
        b[k++] = 0x0f;
        b[k++] = 0x38;
    } else if (r < 95) {
        b[k++] = 0x0f;
        b[k++] = 0x3a;
    } else {
        static const uint8_t esc[] = {0xc4, 0xc5, 0x62, 0x8f};
        b[k++] = esc[orc_rand(s) % 4];
    }
}

static void run_random(struct dstats *st, const struct dopts *op)
{
    struct orc_cs *cs[3];
    for (int m = 0; m < 3; m++) {
        cs[m] = orc_cs_new(mode_bits(m));
        if (!cs[m]) {
            fprintf(stderr, "decoder_oracle: capstone init failed\n");
            exit(2);
        }
    }
    uint64_t t = op->seed;
    uint64_t s = orc_rand(&t); /* scrambled: consecutive seeds must not share a stream */
    uint8_t b[16];
    for (uint64_t i = 0; i < op->random; i++) {
        int mode = (int)(i % 3);
        random_insn(&s, mode, b);
        compare_one(st, op, cs[mode], b, mode, 0);
    }
    for (int m = 0; m < 3; m++) {
        orc_cs_free(cs[m]);
    }
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n > 0 ? malloc((size_t)n + 16) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    memset(buf + n, 0, 16);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Linear sweep over .text of an ELF64 vmlinux. Returns 0, or -1 when the file is unusable. */
static int run_vmlinux(struct dstats *st, const struct dopts *op)
{
    size_t len = 0;
    uint8_t *img = read_file(op->vmlinux, &len);
    if (!img) {
        fprintf(stderr, "decoder_oracle: %s: %s\n", op->vmlinux, strerror(errno));
        return -1;
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shoff == 0 ||
        eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len ||
        eh->e_shstrndx >= eh->e_shnum) {
        fprintf(stderr, "decoder_oracle: %s: not an ELF64 file with sections\n", op->vmlinux);
        free(img);
        return -1;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
    const Elf64_Shdr *text = NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_name < strs->sh_size && strs->sh_offset + sh[i].sh_name < len &&
            strcmp((const char *)img + strs->sh_offset + sh[i].sh_name, ".text") == 0) {
            text = &sh[i];
        }
    }
    if (!text || text->sh_offset + text->sh_size > len) {
        fprintf(stderr, "decoder_oracle: %s: no .text section\n", op->vmlinux);
        free(img);
        return -1;
    }
    struct orc_cs *cs = orc_cs_new(64);
    if (!cs) {
        free(img);
        return -1;
    }
    const uint8_t *p = img + text->sh_offset;
    uint64_t n = text->sh_size;
    uint64_t before = st->total;
    for (uint64_t off = 0; off < n;) {
        uint8_t b[16] = {0};
        memcpy(b, p + off, n - off < 16 ? (size_t)(n - off) : 16);
        off += compare_one(st, op, cs, b, X86_MODE_64, text->sh_addr + off);
    }
    printf("decoder_oracle: %s .text: %" PRIu64 " bytes, %" PRIu64 " instructions\n", op->vmlinux,
           n, st->total - before);
    orc_cs_free(cs);
    free(img);
    return 0;
}

static void print_keys(const char *title, const uint32_t (*k)[0x500])
{
    char nb[32];
    bool any = false;
    for (int m = 0; m < 3; m++) {
        for (unsigned key = 0; key < 0x500; key++) {
            if (k[m][key]) {
                if (!any) {
                    printf("  %s:", title);
                    any = true;
                }
                printf(" %d:%s(%u)", mode_bits(m), key_name(key, nb, sizeof(nb)), k[m][key]);
            }
        }
    }
    if (any) {
        printf("\n");
    }
}

static void print_stats(const char *what, const struct dstats *st, bool verbose)
{
    printf("decoder_oracle: %s: %" PRIu64 " compared, %" PRIu64 " agree, %" PRIu64
           " LENGTH DISAGREEMENTS, %" PRIu64 " excluded (Capstone wrong), %" PRIu64
           " Lodge-only, %" PRIu64 " Lodge #UD/Capstone ok, %" PRIu64 " ModRM and %" PRIu64
           " immediate-size differences\n",
           what, st->total, st->agree, st->len_diff, st->excluded, st->lodge_only, st->cs_only,
           st->modrm_diff, st->imm_diff);
    print_keys("length disagreements by mode:opcode", st->key_len);
    if (verbose) {
        print_keys("Lodge #UD, Capstone decodes", st->key_ud);
        print_keys("Lodge decodes, Capstone rejects", st->key_lodge);
    }
}

int main(int argc, char **argv)
{
    struct dopts op = {.seed = 1, .random = 1000000, .max_print = 20};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--seed") && v) {
            op.seed = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(argv[i], "--random") && v) {
            op.random = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(argv[i], "--vmlinux") && v) {
            op.vmlinux = v;
            i++;
        } else if (!strcmp(argv[i], "--max-print") && v) {
            op.max_print = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(argv[i], "-v")) {
            op.verbose = true;
        } else {
            fprintf(stderr, "usage: decoder_oracle [--seed N] [--random M] [--vmlinux FILE] "
                            "[--max-print K] [-v]\n");
            return 2;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct dstats rnd = {0}, krn = {0};
    run_random(&rnd, &op);
    print_stats("random", &rnd, op.verbose);
    bool fail = rnd.len_diff > 0;
    if (op.vmlinux) {
        if (run_vmlinux(&krn, &op) < 0) {
            return 1;
        }
        print_stats("vmlinux", &krn, op.verbose);
        fail |= krn.len_diff > 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("decoder_oracle: %.2f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return fail ? 1 : 0;
}
