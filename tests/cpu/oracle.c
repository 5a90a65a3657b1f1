/* CPU oracle driver: generate cases, run them natively (forked child) and on Lodge's soft
 * CPU (this process) at the same time, compare, report.
 *
 *   oracle [--seed N] [--count M] [--batch B] [--tmpl NAME] [--case I] [--strict]
 *          [--max-print K] [--coverage] [-v]
 *
 * --self-check runs the native side twice instead (the harness must be deterministic).
 * Exit status 0 when every case matched (Lodge #UD on an opcode counts as "not implemented"
 * unless --strict), 1 on mismatches, 77 when the native side cannot run here. */
#include "tests/cpu/oracle.h"
#include "tests/cpu/orc_capstone.h"

#include "core/cpu/cpu.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FL_CMP 0x47fd5u /* CF PF AF ZF SF TF IF DF OF IOPL NT AC (not RF, VM, VIF, VIP, ID) */

enum { CMP_OK = 0, CMP_MISMATCH, CMP_UNIMPL, CMP_CRASH };

struct opts {
    uint64_t seed;
    uint64_t count;
    size_t batch;
    int tmpl;
    int64_t one_case;
    bool strict;
    bool coverage;
    bool verbose;
    bool self_check; /* native vs native: the harness must be deterministic */
    unsigned max_print;
    unsigned per_op; /* mismatches printed per opcode */
};

struct stats {
    uint64_t cases, mismatches, unimpl, crashes;
    uint64_t t_cases[64], t_fail[64], t_unimpl[64];
    uint32_t hits[0x400];      /* opcode (map | byte) hit by a matching case */
    uint32_t unimpl_op[0x400]; /* opcode Lodge answered with #UD */
    uint32_t fail_op[0x400];   /* opcode with mismatches */
};

static const char *end_name(int end, char *buf, size_t len)
{
    static const char *const vec[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD",
                                      "#NM", "#DF", "?9",  "#TS", "#NP", "#SS", "#GP",
                                      "#PF", "?15", "#MF", "#AC", "#MC", "#XM"};
    switch (end) {
    case ORC_END_OK:
        return "end";
    case ORC_END_CRASH:
        return "native-crash";
    case ORC_END_HANG:
        return "lodge-hang";
    case ORC_END_INTERNAL:
        return "lodge-internal-error";
    default:
        if (end >= 0 && end < 20) {
            return vec[end];
        }
        snprintf(buf, len, "vector %d", end);
        return buf;
    }
}

static void disasm(const struct orc_case *c, FILE *f)
{
    orc_disasm_print(c->code, c->code_len, c->mode32 ? 32 : 64, ORC_CODE_VA + c->code_off, f);
}

static int compare(const struct orc_case *c, const struct orc_result *n, const struct orc_result *l,
                   char *why, size_t len)
{
    char b1[32], b2[32];
    why[0] = 0;
    if (n->end == ORC_END_CRASH) {
        snprintf(why, len, "native child crashed or hung");
        return CMP_CRASH;
    }
    if (n->end != l->end) {
        if (l->end == X86_EXC_UD && n->end != X86_EXC_UD) {
            snprintf(why, len, "Lodge #UD at %#" PRIx64 ", native %s", l->rip,
                     end_name(n->end, b1, sizeof(b1)));
            return CMP_UNIMPL;
        }
        snprintf(why, len, "outcome: native %s at %#" PRIx64 ", Lodge %s at %#" PRIx64,
                 end_name(n->end, b1, sizeof(b1)), n->rip, end_name(l->end, b2, sizeof(b2)),
                 l->rip);
        return CMP_MISMATCH;
    }
    size_t o = 0;
    uint64_t rmask = c->mode32 ? 0xffffffffull : ~0ull;
    if (n->end >= 0 && n->rip != l->rip) {
        o += (size_t)snprintf(why + o, len - o,
                              "fault rip native %#" PRIx64 " Lodge %#" PRIx64 "; ", n->rip, l->rip);
    }
    if (n->end == X86_EXC_PF && (n->cr2 != l->cr2 || (n->err & 0x17) != (l->err & 0x17))) {
        o += (size_t)snprintf(why + o, len - o,
                              "#PF cr2/err native %#" PRIx64 "/%#x Lodge %#" PRIx64 "/%#x; ",
                              n->cr2, n->err, l->cr2, l->err);
    }
    if ((n->end == X86_EXC_GP || n->end == X86_EXC_SS) && n->err != l->err) {
        o +=
            (size_t)snprintf(why + o, len - o, "error code native %#x Lodge %#x; ", n->err, l->err);
    }
    static const char *const rn[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                     "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
    unsigned nr = c->mode32 ? 8 : 16;
    for (unsigned i = 0; i < nr && o < len; i++) {
        if (c->gpr_undef & (1u << i)) {
            continue;
        }
        uint64_t m = rmask & (i == c->undef_reg ? ~c->undef_bits : ~0ull);
        if ((n->r[i] ^ l->r[i]) & m) {
            o += (size_t)snprintf(why + o, len - o, "%s native %#" PRIx64 " Lodge %#" PRIx64 "; ",
                                  rn[i], n->r[i] & rmask, l->r[i] & rmask);
        }
    }
    uint32_t fmask = FL_CMP & ~c->flags_undef;
    if (((n->rflags ^ l->rflags) & fmask) && o < len) {
        o += (size_t)snprintf(
            why + o, len - o,
            "rflags native %#" PRIx64 " Lodge %#" PRIx64 " (diff %#" PRIx64 ", compared %#x); ",
            n->rflags & FL_CMP, l->rflags & FL_CMP, (n->rflags ^ l->rflags) & fmask, fmask);
    }
    if ((n->ndiff != l->ndiff || n->mem_hash != l->mem_hash) && o < len) {
        o += (size_t)snprintf(why + o, len - o,
                              "memory: native %u qwords changed, Lodge %u: ", n->ndiff, l->ndiff);
        for (unsigned k = 0; k < 4 && o < len; k++) {
            if (k < n->ndiff && k < ORC_MAX_DIFF) {
                o += (size_t)snprintf(why + o, len - o, "N[+%#x]=%#" PRIx64 " ", n->diff[k].off,
                                      n->diff[k].val);
            }
            if (k < l->ndiff && k < ORC_MAX_DIFF && o < len) {
                o += (size_t)snprintf(why + o, len - o, "L[+%#x]=%#" PRIx64 " ", l->diff[k].off,
                                      l->diff[k].val);
            }
        }
        if (o < len) {
            o += (size_t)snprintf(why + o, len - o, "; ");
        }
    }
    if ((c->cmp & ORC_CMP_XMM) && memcmp(n->fx + 160, l->fx + 160, 256) != 0 && o < len) {
        for (unsigned i = 0; i < 16 && o < len; i++) {
            if (memcmp(n->fx + 160 + 16 * i, l->fx + 160 + 16 * i, 16) != 0) {
                uint64_t a[2], b[2];
                memcpy(a, n->fx + 160 + 16 * i, 16);
                memcpy(b, l->fx + 160 + 16 * i, 16);
                o += (size_t)snprintf(why + o, len - o,
                                      "xmm%u native %016" PRIx64 "%016" PRIx64 " Lodge %016" PRIx64
                                      "%016" PRIx64 "; ",
                                      i, a[1], a[0], b[1], b[0]);
            }
        }
    }
    if ((c->cmp & ORC_CMP_MXCSR) && memcmp(n->fx + 24, l->fx + 24, 4) != 0 && o < len) {
        uint32_t a, b;
        memcpy(&a, n->fx + 24, 4);
        memcpy(&b, l->fx + 24, 4);
        o += (size_t)snprintf(why + o, len - o, "mxcsr native %#x Lodge %#x; ", a, b);
    }
    if (c->cmp & ORC_CMP_X87 && o < len) {
        uint16_t nfcw, lfcw, nfsw, lfsw;
        memcpy(&nfcw, n->fx, 2);
        memcpy(&lfcw, l->fx, 2);
        memcpy(&nfsw, n->fx + 2, 2);
        memcpy(&lfsw, l->fx + 2, 2);
        uint16_t swmask = (uint16_t) ~((unsigned)c->fsw_undef << 8);
        if (nfcw != lfcw || ((nfsw ^ lfsw) & swmask) || n->fx[4] != l->fx[4]) {
            o += (size_t)snprintf(why + o, len - o,
                                  "x87 fcw/fsw/tag native %#x/%#x/%#x Lodge %#x/%#x/%#x; ", nfcw,
                                  nfsw, n->fx[4], lfcw, lfsw, l->fx[4]);
        }
        unsigned top = (nfsw >> 11) & 7;
        for (unsigned i = 0; i < 8 && o < len; i++) {
            if (!((n->fx[4] >> ((top + i) & 7)) & 1)) {
                continue;
            }
            if (memcmp(n->fx + 32 + 16 * i, l->fx + 32 + 16 * i, 10) != 0) {
                uint64_t nm, lm;
                uint16_t ne, le;
                memcpy(&nm, n->fx + 32 + 16 * i, 8);
                memcpy(&ne, n->fx + 40 + 16 * i, 2);
                memcpy(&lm, l->fx + 32 + 16 * i, 8);
                memcpy(&le, l->fx + 40 + 16 * i, 2);
                o += (size_t)snprintf(why + o, len - o,
                                      "st%u native %04x:%016" PRIx64 " Lodge %04x:%016" PRIx64 "; ",
                                      i, ne, nm, le, lm);
            }
        }
    }
    return why[0] ? CMP_MISMATCH : CMP_OK;
}

/* Opcodes with the register in the low 3 bits count as one family. */
static void record_hit(struct stats *st, unsigned mop)
{
    unsigned base = mop & ~7u;
    bool family = mop == 0x1c8 || mop == 0x1c9 || base == 0x50 || base == 0x58 || base == 0x90 ||
                  base == 0xb0 || base == 0xb8 || base == 0x1c8;
    if (family) {
        for (unsigned i = 0; i < 8; i++) {
            st->hits[base + i]++;
        }
    }
    st->hits[mop]++;
}

static void print_case(const struct opts *op, uint64_t idx, const struct orc_case *c,
                       const struct orc_result *n, const struct orc_result *l, const char *why,
                       const char *kind)
{
    char b1[32], b2[32];
    printf("%s: case %" PRIu64 " (template %s, %s)\n", kind, idx, orc_tmpl_name(c->tmpl),
           c->mode32 ? "32-bit" : "64-bit");
    printf("  bytes:");
    for (unsigned i = 0; i < c->code_len; i++) {
        printf(" %02x", c->code[i]);
    }
    printf("\n");
    disasm(c, stdout);
    printf("  %s\n", why);
    if (op->verbose) {
        static const char *const rn[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                         "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
        uint32_t mx;
        uint16_t fcw, fsw;
        memcpy(&mx, c->fx + 24, 4);
        memcpy(&fcw, c->fx, 2);
        memcpy(&fsw, c->fx + 2, 2);
        printf("  in:  rflags=%#" PRIx64 " mxcsr=%#x fcw=%#x fsw=%#x ftw(abridged)=%#x\n",
               c->rflags, mx, fcw, fsw, c->fx[4]);
        for (unsigned i = 0; i < 16; i++) {
            uint64_t a[2], nn[2], ll[2];
            memcpy(a, c->fx + 160 + 16 * i, 16);
            memcpy(nn, n->fx + 160 + 16 * i, 16);
            memcpy(ll, l->fx + 160 + 16 * i, 16);
            if ((c->cmp & ORC_CMP_XMM) && (memcmp(a, nn, 16) || memcmp(nn, ll, 16))) {
                printf("  xmm%-2u in %016" PRIx64 "%016" PRIx64 " native %016" PRIx64 "%016" PRIx64
                       " Lodge %016" PRIx64 "%016" PRIx64 "\n",
                       i, a[1], a[0], nn[1], nn[0], ll[1], ll[0]);
            }
        }
        for (unsigned i = 0; i < 8; i++) {
            uint64_t a, nn, ll;
            uint16_t ae, ne, le;
            memcpy(&a, c->fx + 32 + 16 * i, 8);
            memcpy(&ae, c->fx + 40 + 16 * i, 2);
            memcpy(&nn, n->fx + 32 + 16 * i, 8);
            memcpy(&ne, n->fx + 40 + 16 * i, 2);
            memcpy(&ll, l->fx + 32 + 16 * i, 8);
            memcpy(&le, l->fx + 40 + 16 * i, 2);
            if ((c->cmp & ORC_CMP_X87) && (a != nn || ae != ne || nn != ll || ne != le)) {
                printf("  st%u in %04x:%016" PRIx64 " native %04x:%016" PRIx64
                       " Lodge %04x:%016" PRIx64 "\n",
                       i, ae, a, ne, nn, le, ll);
            }
        }
        for (unsigned i = 0; i < 16; i++) {
            printf("  %-3s in %016" PRIx64 "  native %016" PRIx64 "  Lodge %016" PRIx64 "\n", rn[i],
                   c->r[i], n->r[i], l->r[i]);
        }
        printf("  out: native %s rflags=%#" PRIx64 " rip=%#" PRIx64 "; Lodge %s rflags=%#" PRIx64
               " rip=%#" PRIx64 "\n",
               end_name(n->end, b1, sizeof(b1)), n->rflags, n->rip,
               end_name(l->end, b2, sizeof(b2)), l->rflags, l->rip);
    }
    printf("  replay: %s --seed %" PRIu64 "%s%s --case %" PRIu64 " -v\n", "tests/cpu/oracle",
           op->seed, op->tmpl >= 0 ? " --tmpl " : "",
           op->tmpl >= 0 ? orc_tmpl_name((size_t)op->tmpl) : "", idx);
}

/* Whether Lodge executes opcode mop (map | byte) in some form: each mandatory prefix (none,
 * 66, F3, F2) x each ModRM /digit, register and memory forms, in 64-bit and 32-bit mode; the
 * opcode counts as implemented when one of them does not raise #UD at its first byte.
 * Prefix bytes and map escapes are left out. */
static bool lodge_implements(struct orc_lodge *l, unsigned mop)
{
    unsigned map = mop >> 8, opb = mop & 0xff;
    if (map == 0) {
        static const uint8_t pfx[] = {0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65,
                                      0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x0f};
        for (size_t i = 0; i < sizeof(pfx); i++) {
            if (opb == pfx[i]) {
                return false;
            }
        }
    }
    if (map == 1 && (opb == 0x38 || opb == 0x3a)) {
        return false;
    }
    struct orc_case c;
    struct orc_result r;
    static const uint8_t mand[] = {0, 0x66, 0xf3, 0xf2};
    for (int mode32 = 0; mode32 < 2; mode32++) {
        if (!mode32 && map == 0 && opb >= 0x40 && opb <= 0x4f) {
            continue; /* REX in 64-bit mode */
        }
        for (unsigned p = 0; p < 4; p++) {
            for (unsigned m = 0; m < 256; m += 8) {
                unsigned modrm = (m & 0x38) | (m >= 0x80 ? 0xc0 : 0x00) | 0x03; /* [rbx] / rbx */
                memset(&c, 0, sizeof(c));
                c.mode32 = (uint8_t)mode32;
                for (unsigned i = 0; i < 16; i++) {
                    c.r[i] = ORC_DATA_VA + 0x800;
                }
                uint16_t fcw = 0x37f;
                uint32_t mx = 0x1f80;
                memcpy(c.fx, &fcw, 2);
                memcpy(c.fx + 24, &mx, 4);
                size_t k = 0;
                if (p) {
                    c.code[k++] = mand[p];
                }
                if (map >= 1) {
                    c.code[k++] = 0x0f;
                }
                if (map == 2) {
                    c.code[k++] = 0x38;
                } else if (map == 3) {
                    c.code[k++] = 0x3a;
                }
                c.code[k++] = (uint8_t)opb;
                c.code[k++] = (uint8_t)modrm;
                k += 8; /* zero immediates / displacements */
                c.code_len = (uint8_t)k;
                orc_lodge_run(l, &c, &r);
                if (!(r.end == X86_EXC_UD && r.rip == ORC_CODE_VA)) {
                    return true;
                }
            }
        }
    }
    return false;
}

static const char *map_name(unsigned mop)
{
    static const char *const mp[] = {"", "0f ", "0f38 ", "0f3a "};
    return mp[(mop >> 8) & 3];
}

static void coverage_report(const struct stats *st, struct orc_lodge *l)
{
    unsigned missing = 0, impl = 0;
    printf("coverage: opcodes Lodge executes (not #UD) that no matching case exercised:\n ");
    for (unsigned mop = 0; mop < 0x400; mop++) {
        if (!lodge_implements(l, mop)) {
            continue;
        }
        impl++;
        if (st->hits[mop]) {
            continue;
        }
        printf(" %s%02x", map_name(mop), mop & 0xff);
        if (++missing % 16 == 0) {
            printf("\n ");
        }
    }
    printf("\n  (%u of %u implemented opcodes not exercised)\n", missing, impl);
    unsigned nun = 0;
    for (unsigned mop = 0; mop < 0x400; mop++) {
        if (st->unimpl_op[mop]) {
            if (nun++ == 0) {
                printf("not implemented (Lodge #UD where the host executes):\n ");
            }
            printf(" %s%02x(%u)", map_name(mop), mop & 0xff, st->unimpl_op[mop]);
        }
    }
    if (nun) {
        printf("\n");
    }
}

static int parse(int argc, char **argv, struct opts *op)
{
    memset(op, 0, sizeof(*op));
    op->seed = 1;
    op->count = 100000;
    op->batch = 4096;
    op->tmpl = -1;
    op->one_case = -1;
    op->max_print = 10;
    op->per_op = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v) {
            op->seed = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--count") && v) {
            op->count = strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            op->batch = (size_t)strtoull(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--case") && v) {
            op->one_case = (int64_t)strtoll(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--per-op") && v) {
            op->per_op = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--max-print") && v) {
            op->max_print = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--tmpl") && v) {
            op->tmpl = orc_tmpl_find(v);
            if (op->tmpl < 0) {
                fprintf(stderr, "oracle: unknown template '%s'; templates:", v);
                for (size_t t = 0; t < orc_ntmpls; t++) {
                    fprintf(stderr, " %s", orc_tmpl_name(t));
                }
                fprintf(stderr, "\n");
                return -1;
            }
            i++;
        } else if (!strcmp(a, "--strict")) {
            op->strict = true;
        } else if (!strcmp(a, "--self-check")) {
            op->self_check = true;
        } else if (!strcmp(a, "--coverage")) {
            op->coverage = true;
        } else if (!strcmp(a, "-v")) {
            op->verbose = true;
        } else {
            fprintf(stderr, "usage: oracle [--seed N] [--count M] [--batch B] [--tmpl NAME] "
                            "[--case I] [--strict] [--coverage] [--max-print K] [--per-op K] "
                            "[--self-check] [-v]\n");
            return -1;
        }
    }
    if (op->batch == 0) {
        op->batch = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts op;
    if (parse(argc, argv, &op) < 0) {
        return 2;
    }
    struct orc_lodge *lodge = orc_lodge_new();
    if (!lodge) {
        fprintf(stderr, "oracle: cannot create the Lodge CPU\n");
        return 1;
    }
    uint32_t f1_ecx = orc_lodge_f1_ecx(lodge);
    uint64_t first = 0, count = op.count;
    if (op.one_case >= 0) {
        first = (uint64_t)op.one_case;
        count = 1;
        op.verbose = true;
    }
    size_t batch = op.batch < count ? op.batch : (size_t)count;
    struct orc_case *cases = aligned_alloc(64, sizeof(*cases) * batch);
    struct orc_result *nres = aligned_alloc(64, sizeof(*nres) * batch);
    struct orc_result *lres = aligned_alloc(64, sizeof(*lres) * batch);
    struct stats *st = calloc(1, sizeof(*st));
    if (!cases || !nres || !lres || !st) {
        fprintf(stderr, "oracle: out of memory\n");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned printed = 0;
    char why[1024];
    for (uint64_t base = 0; base < count; base += batch) {
        size_t n = (size_t)(count - base < batch ? count - base : batch);
        for (size_t i = 0; i < n; i++) {
            orc_gen_case(op.seed, first + base + i, op.tmpl, f1_ecx, &cases[i]);
        }
        struct orc_native_job job;
        int rc = orc_native_start(&job, cases, n);
        if (rc < 0) {
            fprintf(stderr, "oracle: cannot start the native runner: %s\n", strerror(-rc));
            return 77;
        }
        if (op.self_check) {
            /* the "Lodge" results come from a second native run */
            if (orc_native_run(cases, lres, n) < 0) {
                return 77;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                orc_lodge_run(lodge, &cases[i], &lres[i]);
            }
        }
        rc = orc_native_finish(&job, nres);
        if (rc < 0) {
            fprintf(stderr, "oracle: native runner failed: %s (skipping)\n", strerror(-rc));
            return 77;
        }
        for (size_t i = 0; i < n; i++) {
            const struct orc_case *c = &cases[i];
            int r = compare(c, &nres[i], &lres[i], why, sizeof(why));
            st->cases++;
            st->t_cases[c->tmpl]++;
            switch (r) {
            case CMP_OK:
                record_hit(st, c->opcode & 0x3ffu);
                break;
            case CMP_UNIMPL:
                st->unimpl++;
                st->t_unimpl[c->tmpl]++;
                st->unimpl_op[c->opcode & 0x3ff]++;
                if (op.strict || op.verbose) {
                    if (printed++ < op.max_print) {
                        print_case(&op, first + base + i, c, &nres[i], &lres[i], why,
                                   "UNIMPLEMENTED");
                    }
                }
                break;
            case CMP_CRASH:
                st->crashes++;
                if (printed++ < op.max_print) {
                    print_case(&op, first + base + i, c, &nres[i], &lres[i], why, "CRASH");
                }
                break;
            default:
                st->mismatches++;
                st->t_fail[c->tmpl]++;
                st->fail_op[c->opcode & 0x3ff]++;
                /* a few per opcode, so one bug does not hide the others */
                if (st->fail_op[c->opcode & 0x3ff] <= op.per_op && printed++ < op.max_print) {
                    print_case(&op, first + base + i, c, &nres[i], &lres[i], why, "MISMATCH");
                }
                break;
            }
            if (op.one_case >= 0 && r == CMP_OK) {
                print_case(&op, first + base + i, c, &nres[i], &lres[i], "(match)", "OK");
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("oracle: seed %" PRIu64 ": %" PRIu64 " cases in %.2f s (%.0f cases/s): %" PRIu64
           " mismatches, %" PRIu64 " not implemented (Lodge #UD), %" PRIu64 " native crashes\n",
           op.seed, st->cases, secs, secs > 0 ? (double)st->cases / secs : 0.0, st->mismatches,
           st->unimpl, st->crashes);
    if (op.verbose || st->mismatches || op.coverage) {
        printf("%-10s %10s %10s %10s\n", "template", "cases", "mismatch", "unimpl");
        for (size_t t = 0; t < orc_ntmpls; t++) {
            printf("%-10s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", orc_tmpl_name(t),
                   st->t_cases[t], st->t_fail[t], st->t_unimpl[t]);
        }
    }
    if (op.coverage) {
        coverage_report(st, lodge);
    }
    if (st->mismatches) {
        printf("mismatches by opcode:");
        for (unsigned mop = 0; mop < 0x400; mop++) {
            if (st->fail_op[mop]) {
                printf(" %s%02x(%u)", map_name(mop), mop & 0xff, st->fail_op[mop]);
            }
        }
        printf("\n");
    }
    bool fail = st->mismatches > 0 || (op.strict && (st->unimpl > 0 || st->crashes > 0));
    free(cases);
    free(nres);
    free(lres);
    free(st);
    orc_lodge_free(lodge);
    return fail ? 1 : 0;
}
