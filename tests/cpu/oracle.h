/* CPU oracle: run the same instruction bytes on the host CPU and on Lodge's soft CPU and
 * compare the resulting architectural state. See docs/cpu-oracle.md. */
#ifndef LODGE_TESTS_CPU_ORACLE_H
#define LODGE_TESTS_CPU_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed addresses shared by both sides (below 2 GiB so 32-bit code and absolute addressing
 * reach them). The pages around ORC_DATA_VA are never mapped: accesses there fault (#PF). */
#define ORC_CODE_VA 0x10000000ull /* two pages */
#define ORC_CODE_SIZE 0x2000u
#define ORC_DATA_VA 0x10010000ull
#define ORC_CTRL_VA 0x10020000ull /* native side only: see orc_stub.S */
#define ORC_PAGE 0x1000u
#define ORC_CTRL_SIZE 0x2000u

/* Control page offsets (must match orc_stub.S). */
#define ORC_CTRL_HOST_RSP 0x000
#define ORC_CTRL_CODE_ENTRY 0x008
#define ORC_CTRL_EXIT_SLOT 0x010
#define ORC_CTRL_FAR32 0x018
#define ORC_CTRL_IN_FLAGS 0x020
#define ORC_CTRL_OUT_FLAGS 0x028
#define ORC_CTRL_TRAMP32 0x030
#define ORC_CTRL_IN_R 0x040
#define ORC_CTRL_OUT_R 0x0c0
#define ORC_CTRL_IN_FX 0x200
#define ORC_CTRL_OUT_FX 0x400
#define ORC_CTRL_HOST_FX 0x600

#define ORC_CODE_MAX 96   /* test bytes per case (the exit sequence follows them) */
#define ORC_MAX_DIFF 24   /* changed data qwords recorded per case */
#define ORC_RIP_UNKNOWN 0 /* not an address any case uses */

/* Which parts of the state a case compares. */
#define ORC_CMP_GPR 0x01u
#define ORC_CMP_FLAGS 0x02u
#define ORC_CMP_MEM 0x04u
#define ORC_CMP_XMM 0x08u
#define ORC_CMP_X87 0x10u
#define ORC_CMP_MXCSR 0x20u
#define ORC_CMP_ALL 0x3fu

/* Outcome kinds (beyond exception vectors 0..31). */
#define ORC_END_OK (-1)       /* reached the end of the case's code */
#define ORC_END_CRASH (-2)    /* native child died or timed out on this case */
#define ORC_END_HANG (-3)     /* Lodge ran out of its instruction budget */
#define ORC_END_INTERNAL (-4) /* Lodge reported an internal error */

struct orc_case {
    uint8_t fx[512] __attribute__((aligned(16))); /* FXSAVE image: x87, MXCSR, XMM0-15 */
    uint64_t r[16];                               /* GPRs in encoding order */
    uint64_t rflags;      /* initial RFLAGS (arith flags + DF; IF and bit 1 are added) */
    uint64_t seed;        /* per-case seed (data page contents derive from it) */
    uint32_t flags_undef; /* RFLAGS bits the SDM leaves undefined after this code */
    uint32_t cmp;         /* ORC_CMP_* */
    uint32_t gpr_undef;   /* GPRs (bit n) whose value is undefined afterwards */
    uint64_t undef_bits;  /* bits of GPR undef_reg that are undefined afterwards */
    uint8_t undef_reg;
    uint16_t tmpl;   /* template index */
    uint16_t opcode; /* X86_MAP_* | opcode of the instruction under test (coverage) */
    uint8_t code[ORC_CODE_MAX];
    uint8_t code_len;
    uint16_t code_off;    /* code starts at ORC_CODE_VA + code_off (crossing into page 2) */
    uint8_t code2_absent; /* the second code page is not mapped: fetch #PF */
    uint8_t mode32;       /* run in a 32-bit (compatibility mode) code segment */
    uint8_t fsw_undef;    /* x87 condition-code bits C0-C3 undefined (mask >> 8) */
};

struct orc_diff {
    uint16_t off; /* byte offset of the qword in the data page */
    uint64_t val; /* its new value */
};

struct orc_result {
    uint8_t fx[512] __attribute__((aligned(16))); /* FXSAVE image after the run */
    uint64_t r[16];
    uint64_t rflags;
    uint64_t rip;   /* where it stopped (the end of the code, or the faulting insn) */
    uint64_t cr2;   /* #PF address */
    int32_t end;    /* ORC_END_* or an exception vector */
    uint32_t err;   /* exception error code */
    uint16_t ndiff; /* data qwords that changed (may exceed ORC_MAX_DIFF) */
    struct orc_diff diff[ORC_MAX_DIFF];
    uint64_t mem_hash; /* hash of the whole data page after the run */
};

/* Deterministic PRNG (splitmix64). */
static inline uint64_t orc_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The initial data page of a case. */
void orc_fill_data(uint64_t seed, uint8_t *page);
/* Record changed qwords and the hash of the data page in res. */
void orc_diff_data(const uint8_t *before, const uint8_t *after, struct orc_result *res);
/* Append the end-of-case sequence for the native side (jump to the exit stub) at code[len]
 * and return the new length. */
size_t orc_native_tail(uint8_t *code, size_t len, bool mode32);

/* Native runner (orc_native.c): runs cases[0..n) in a forked child; results in res[].
 * start/finish let the caller run the Lodge side while the child works. */
struct orc_native_job {
    const struct orc_case *cases;
    size_t n;
    int pid;
    void *shm;
    size_t bytes;
    volatile uint64_t *progress;
    struct orc_result *sres;
};
int orc_native_start(struct orc_native_job *j, const struct orc_case *cases, size_t n);
int orc_native_finish(struct orc_native_job *j, struct orc_result *res);
int orc_native_run(const struct orc_case *cases, struct orc_result *res, size_t n);

/* Lodge runner (orc_lodge.c). */
struct orc_lodge;
struct orc_lodge *orc_lodge_new(void);
void orc_lodge_free(struct orc_lodge *l);
void orc_lodge_run(struct orc_lodge *l, const struct orc_case *c, struct orc_result *res);
/* CPUID.1:ECX as Lodge advertises it (the generator skips what is not advertised). */
uint32_t orc_lodge_f1_ecx(const struct orc_lodge *l);

/* Generator (orc_gen.c). */
extern const size_t orc_ntmpls;
const char *orc_tmpl_name(size_t i);
int orc_tmpl_find(const char *name); /* index or -1 */
/* Build case number idx of run seed into c (all templates, or only tmpl_only when >= 0). */
void orc_gen_case(uint64_t seed, uint64_t idx, int tmpl_only, uint32_t f1_ecx, struct orc_case *c);
/* CPUID.1:ECX bits the generator looks at (same as cpu.h). */
#define ORC_F1_SSE3 (1u << 0)
#define ORC_F1_SSSE3 (1u << 9)
#define ORC_F1_CX16 (1u << 13)
#define ORC_F1_SSE41 (1u << 19)
#define ORC_F1_SSE42 (1u << 20)
#define ORC_F1_MOVBE (1u << 22)
#define ORC_F1_POPCNT (1u << 23)

#endif
