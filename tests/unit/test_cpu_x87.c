/* Unit tests for the soft CPU's x87 FPU and FXSAVE/FXRSTOR (core/cpu/x87.c, fxsave.c).
 * Each x87 instruction form runs natively and as guest code from the same starting state
 * (two values pushed, a random control word, flags and memory operand); the FNSAVE images
 * (control, status and tag words, all eight registers), the memory operand, AX and EFLAGS
 * must agree. Then #NM/#MF rules, FNSTENV/FLDENV/FNSAVE/FRSTOR and the FXSAVE layout. */
#include "tests/unit/cpu_harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <sys/mman.h>

#define CODE 0x1000
#define DATA 0x8000

struct x87_state {
    uint8_t a[16]; /* 0x00 ST(0) at entry */
    uint8_t b[16]; /* 0x10 ST(1) at entry */
    uint16_t cw;   /* 0x20 */
    uint8_t pad0[6];
    uint64_t rflags;   /* 0x28 after */
    uint8_t mem[16];   /* 0x30 memory operand */
    uint8_t save[112]; /* 0x40 FNSAVE image */
    uint64_t rax;      /* 0xb0 */
    uint64_t flags_in; /* 0xb8 arithmetic flags at entry */
} __attribute__((aligned(16)));

static const uint8_t stub_pro[] = {
    0xff, 0xb7, 0xb8, 0x00, 0x00, 0x00,    /* push qword [rdi+0xb8] */
    0x9d,                                  /* popfq */
    0x48, 0x8b, 0x87, 0xb0, 0,    0,    0, /* mov rax, [rdi+0xb0] */
    0xdb, 0xe3,                            /* fninit */
    0xd9, 0x6f, 0x20,                      /* fldcw [rdi+0x20] */
    0xdb, 0x6f, 0x10,                      /* fld tbyte [rdi+0x10] */
    0xdb, 0x2f,                            /* fld tbyte [rdi] */
};

static const uint8_t stub_epi[] = {
    0x9c,                            /* pushfq */
    0x8f, 0x47, 0x28,                /* pop qword [rdi+0x28] */
    0x48, 0x89, 0x87, 0xb0, 0, 0, 0, /* mov [rdi+0xb0], rax */
    0xdd, 0x77, 0x40,                /* fnsave [rdi+0x40] */
};

static struct cpu_harness h;
static struct cpu *cpu;
static uint8_t *native_page;
static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void rand80(uint8_t *p)
{
    static const struct {
        uint64_t m;
        uint16_t e;
    } special[] = {
        {0, 0},                          /* +0 */
        {0, 0x8000},                     /* -0 */
        {1ull << 63, 0x3fff},            /* 1 */
        {1ull << 63, 0xbfff},            /* -1 */
        {1ull << 63, 0x7fff},            /* +inf */
        {1ull << 63, 0xffff},            /* -inf */
        {3ull << 62, 0x7fff},            /* QNaN */
        {(1ull << 63) | 1, 0x7fff},      /* SNaN */
        {0xc90fdaa22168c235ull, 0x4000}, /* pi */
        {1, 0},                          /* denormal */
        {1ull << 63, 0},                 /* pseudo-denormal */
        {1ull << 62, 0x3fff},            /* unnormal */
        {0xffffffffffffffffull, 0x7ffe}, /* max */
        {1ull << 63, 0x403e},            /* 2^63 */
        {0xa000000000000000ull, 0x4002}, /* 10 */
        {1ull << 63, 0x3ffe},            /* 0.5 */
    };
    uint64_t m;
    uint16_t e;
    switch (rnd() % 5) {
    case 0: {
        unsigned k = (unsigned)(rnd() % (sizeof(special) / sizeof(special[0])));
        m = special[k].m;
        e = special[k].e;
        break;
    }
    case 1: /* small integers */
        m = (rnd() % 1000) + 1;
        e = (uint16_t)(0x3fff + 63 - __builtin_clzll(m));
        m <<= __builtin_clzll(m);
        e |= (rnd() & 1) ? 0x8000 : 0;
        break;
    case 2:
        m = rnd();
        e = (uint16_t)rnd();
        break;
    default: /* normal numbers near 1 */
        m = rnd() | (1ull << 63);
        e = (uint16_t)(0x3fff + (int)(rnd() % 80) - 40) | ((rnd() & 1) ? 0x8000 : 0);
        break;
    }
    memset(p, 0, 16);
    memcpy(p, &m, 8);
    memcpy(p + 8, &e, 2);
}

static void random_state(struct x87_state *s)
{
    memset(s, 0, sizeof(*s));
    rand80(s->a);
    rand80(s->b);
    /* masks: usually all masked; sometimes some unmasked (reported later, not here) */
    uint16_t masks = (rnd() & 3) ? 0x3f : (uint16_t)(rnd() & 0x3f);
    s->cw = (uint16_t)(0x40 | masks | ((rnd() & 3) << 8) | ((rnd() & 3) << 10));
    if (rnd() & 1) {
        s->cw = (uint16_t)((s->cw & ~0x300u) | 0x300); /* extended precision, the default */
    }
    switch (rnd() % 4) {
    case 0: {
        uint32_t f = (uint32_t)rnd();
        memcpy(s->mem, &f, 4);
        memcpy(s->mem + 4, &(uint64_t){rnd()}, 8);
        break;
    }
    case 1: { /* a packed BCD number with a valid digit pattern */
        for (int i = 0; i < 9; i++) {
            s->mem[i] = (uint8_t)((rnd() % 10) | ((rnd() % 10) << 4));
        }
        s->mem[9] = (rnd() & 1) ? 0x80 : 0;
        break;
    }
    case 2:
        rand80(s->mem);
        break;
    default: {
        static const uint64_t dsp[] = {0x3ff0000000000000ull, 0x7ff0000000000001ull,
                                       0x0000000000000001ull, 0x7ff8000000000000ull,
                                       0xc1e0000000000000ull};
        memcpy(s->mem, &dsp[rnd() % 5], 8);
        break;
    }
    }
    s->flags_in = (rnd() & CPU_FL_ARITH) | 0x202;
    s->rax = rnd();
}

static int build(uint8_t *dst, const uint8_t *insn, size_t n, uint8_t last)
{
    size_t k = 0;
    memcpy(dst, stub_pro, sizeof(stub_pro));
    k += sizeof(stub_pro);
    memcpy(dst + k, insn, n);
    k += n;
    memcpy(dst + k, stub_epi, sizeof(stub_epi));
    k += sizeof(stub_epi);
    dst[k++] = last;
    return (int)k;
}

static void run_native(const uint8_t *insn, size_t n, struct x87_state *s)
{
    build(native_page, insn, n, 0xc3);
    __builtin___clear_cache((char *)native_page, (char *)native_page + 4096);
    void (*fn)(struct x87_state *) = (void (*)(struct x87_state *))(void *)native_page;
    fn(s);
}

static void prepare_guest(void)
{
    cpu_harness_set_flat(&h, X86_MODE_64);
    cpu_fpu_reset(cpu);
    cpu->feat.f1_ecx |= CPU_F1_ECX_SSE3;
}

static int run_guest(const uint8_t *insn, size_t n, struct x87_state *s)
{
    uint8_t buf[256];
    int len = build(buf, insn, n, 0xf4);
    cpu_harness_load(&h, CODE, buf, (size_t)len);
    guestmem_write(&h.mem, DATA, s, sizeof(*s));
    cpu->r[CPU_RDI] = DATA;
    int r = cpu_harness_run(&h, CODE, 1000);
    guestmem_read(&h.mem, DATA, s, sizeof(*s));
    return r;
}

struct tinsn {
    uint8_t b[16];
    uint8_t n;
    uint8_t flags; /* 1: compare EFLAGS; 2: all exceptions masked (a sequence: a pending
                      unmasked exception would fault natively at the next instruction) */
};

#define I(f, ...)                                                                                  \
    {                                                                                              \
        {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__}), f                                         \
    }

static const struct tinsn table[] = {
    /* register arithmetic, all directions and pops */
    I(0, 0xd8, 0xc1),
    I(0, 0xd8, 0xc9),
    I(0, 0xd8, 0xd1),
    I(0, 0xd8, 0xd9),
    I(0, 0xd8, 0xe1),
    I(0, 0xd8, 0xe9),
    I(0, 0xd8, 0xf1),
    I(0, 0xd8, 0xf9),
    I(0, 0xdc, 0xc1),
    I(0, 0xdc, 0xc9),
    I(0, 0xdc, 0xe1),
    I(0, 0xdc, 0xe9),
    I(0, 0xdc, 0xf1),
    I(0, 0xdc, 0xf9),
    I(0, 0xde, 0xc1),
    I(0, 0xde, 0xc9),
    I(0, 0xde, 0xe1),
    I(0, 0xde, 0xe9),
    I(0, 0xde, 0xf1),
    I(0, 0xde, 0xf9),
    I(0, 0xde, 0xd9),
    I(0, 0xd8, 0xc2),
    I(0, 0xdc, 0xc2),
    I(0, 0xde, 0xc2),
    /* D9 group */
    I(0, 0xd9, 0xc1),
    I(0, 0xd9, 0xc2),
    I(0, 0xd9, 0xc9),
    I(0, 0xd9, 0xca),
    I(0, 0xd9, 0xd0),
    I(0, 0xd9, 0xe0),
    I(0, 0xd9, 0xe1),
    I(0, 0xd9, 0xe4),
    I(0, 0xd9, 0xe5),
    I(0, 0xd9, 0xe8),
    I(0, 0xd9, 0xe9),
    I(0, 0xd9, 0xea),
    I(0, 0xd9, 0xeb),
    I(0, 0xd9, 0xec),
    I(0, 0xd9, 0xed),
    I(0, 0xd9, 0xee),
    I(0, 0xd9, 0xf0),
    I(0, 0xd9, 0xf1),
    I(0, 0xd9, 0xf2),
    I(0, 0xd9, 0xf3),
    I(0, 0xd9, 0xf4),
    I(0, 0xd9, 0xf5),
    I(0, 0xd9, 0xf6),
    I(0, 0xd9, 0xf7),
    I(0, 0xd9, 0xf8),
    I(0, 0xd9, 0xf9),
    I(0, 0xd9, 0xfa),
    I(0, 0xd9, 0xfb),
    I(0, 0xd9, 0xfc),
    I(0, 0xd9, 0xfd),
    I(0, 0xd9, 0xfe),
    I(0, 0xd9, 0xff),
    /* FCMOVcc, FUCOMPP, FCOMI family, FNCLEX, FNINIT */
    I(0, 0xda, 0xc1),
    I(0, 0xda, 0xc9),
    I(0, 0xda, 0xd1),
    I(0, 0xda, 0xd9),
    I(0, 0xdb, 0xc1),
    I(0, 0xdb, 0xc9),
    I(0, 0xdb, 0xd1),
    I(0, 0xdb, 0xd9),
    I(0, 0xda, 0xe9),
    I(1, 0xdb, 0xe9),
    I(1, 0xdb, 0xf1),
    I(1, 0xdf, 0xe9),
    I(1, 0xdf, 0xf1),
    I(1, 0xdb, 0xea),
    I(0, 0xdb, 0xe2),
    I(0, 0xdb, 0xe3),
    /* DD / DF register forms */
    I(0, 0xdd, 0xc1),
    I(0, 0xdd, 0xd1),
    I(0, 0xdd, 0xd9),
    I(0, 0xdd, 0xd2),
    I(0, 0xdd, 0xe1),
    I(0, 0xdd, 0xe9),
    I(0, 0xdd, 0xe2),
    I(0, 0xdf, 0xe0),
    I(0, 0xdf, 0xc1),
    /* stack overflow: seven more pushes */
    I(2, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8),
    /* a sequence: fxch, fsqrt, fmulp, frndint */
    I(2, 0xd9, 0xc9, 0xd9, 0xfa, 0xde, 0xc9, 0xd9, 0xfc),
    /* memory operands at [rdi+0x30] */
    I(0, 0xd8, 0x47, 0x30),
    I(0, 0xd8, 0x4f, 0x30),
    I(0, 0xd8, 0x57, 0x30),
    I(0, 0xd8, 0x5f, 0x30),
    I(0, 0xd8, 0x67, 0x30),
    I(0, 0xd8, 0x6f, 0x30),
    I(0, 0xd8, 0x77, 0x30),
    I(0, 0xd8, 0x7f, 0x30),
    I(0, 0xdc, 0x47, 0x30),
    I(0, 0xdc, 0x4f, 0x30),
    I(0, 0xdc, 0x57, 0x30),
    I(0, 0xdc, 0x5f, 0x30),
    I(0, 0xdc, 0x67, 0x30),
    I(0, 0xdc, 0x6f, 0x30),
    I(0, 0xdc, 0x77, 0x30),
    I(0, 0xdc, 0x7f, 0x30),
    I(0, 0xda, 0x47, 0x30),
    I(0, 0xda, 0x4f, 0x30),
    I(0, 0xda, 0x57, 0x30),
    I(0, 0xda, 0x5f, 0x30),
    I(0, 0xda, 0x67, 0x30),
    I(0, 0xda, 0x6f, 0x30),
    I(0, 0xda, 0x77, 0x30),
    I(0, 0xda, 0x7f, 0x30),
    I(0, 0xde, 0x47, 0x30),
    I(0, 0xde, 0x4f, 0x30),
    I(0, 0xde, 0x57, 0x30),
    I(0, 0xde, 0x5f, 0x30),
    I(0, 0xde, 0x67, 0x30),
    I(0, 0xde, 0x6f, 0x30),
    I(0, 0xde, 0x77, 0x30),
    I(0, 0xde, 0x7f, 0x30),
    I(0, 0xd9, 0x47, 0x30),
    I(0, 0xd9, 0x57, 0x30),
    I(0, 0xd9, 0x5f, 0x30),
    I(0, 0xd9, 0x7f, 0x30),
    I(0, 0xdb, 0x47, 0x30),
    I(0, 0xdb, 0x4f, 0x30),
    I(0, 0xdb, 0x57, 0x30),
    I(0, 0xdb, 0x5f, 0x30),
    I(0, 0xdb, 0x6f, 0x30),
    I(0, 0xdb, 0x7f, 0x30),
    I(0, 0xdd, 0x47, 0x30),
    I(0, 0xdd, 0x4f, 0x30),
    I(0, 0xdd, 0x57, 0x30),
    I(0, 0xdd, 0x5f, 0x30),
    I(0, 0xdd, 0x7f, 0x30),
    I(0, 0xdf, 0x47, 0x30),
    I(0, 0xdf, 0x4f, 0x30),
    I(0, 0xdf, 0x57, 0x30),
    I(0, 0xdf, 0x5f, 0x30),
    I(0, 0xdf, 0x67, 0x30),
    I(0, 0xdf, 0x6f, 0x30),
    I(0, 0xdf, 0x77, 0x30),
    I(0, 0xdf, 0x7f, 0x30),
    /* with ST(0) empty (after FFREE ST(0) + FINCSTP) */
    I(0, 0xdd, 0xc0, 0xd9, 0xf7, 0xd9, 0xf7, 0xdd, 0x57, 0x30),
    I(0, 0xdd, 0xc0, 0xd9, 0xf7, 0xd9, 0xf7, 0xdf, 0x7f, 0x30),
    I(0, 0xdd, 0xc0, 0xd9, 0xf7, 0xd9, 0xf7, 0xd9, 0xfe),
    I(0, 0xdd, 0xc0, 0xd9, 0xf7, 0xd9, 0xf7, 0xd8, 0xc1),
};

static bool same(const struct x87_state *a, const struct x87_state *b, bool flags, bool ax)
{
    /* FCW, FSW and FTW: low 16 bits of the first three env dwords; then ST0..ST7. */
    for (int i = 0; i < 3; i++) {
        if (memcmp(a->save + 4 * i, b->save + 4 * i, 2)) {
            return false;
        }
    }
    /* Registers tagged empty keep stale contents: only compare the others. */
    uint16_t sw, tw;
    memcpy(&sw, a->save + 4, 2);
    memcpy(&tw, a->save + 8, 2);
    for (unsigned i = 0; i < 8; i++) {
        unsigned phys = ((sw >> 11) + i) & 7;
        if (((tw >> (2 * phys)) & 3) != 3 &&
            memcmp(a->save + 28 + 10 * i, b->save + 28 + 10 * i, 10)) {
            return false;
        }
    }
    if (memcmp(a->mem, b->mem, 16)) {
        return false;
    }
    if (ax && (uint16_t)a->rax != (uint16_t)b->rax) {
        return false;
    }
    return !flags || ((a->rflags ^ b->rflags) & CPU_FL_ARITH) == 0;
}

static void dump(const char *who, const struct x87_state *s)
{
    uint16_t cw, sw, tw;
    memcpy(&cw, s->save, 2);
    memcpy(&sw, s->save + 4, 2);
    memcpy(&tw, s->save + 8, 2);
    printf("  %s: cw %04x sw %04x tw %04x ax %04x fl %03llx mem %016llx %04x\n", who, cw, sw, tw,
           (unsigned)(uint16_t)s->rax, (unsigned long long)(s->rflags & CPU_FL_ARITH),
           *(const unsigned long long *)s->mem, *(const uint16_t *)(s->mem + 8));
    for (int i = 0; i < 3; i++) {
        printf("     st%d %04x %016llx\n", i, *(const uint16_t *)(s->save + 28 + 10 * i + 8),
               *(const unsigned long long *)(s->save + 28 + 10 * i));
    }
}

static void test_differential(void)
{
    unsigned failures = 0;
    for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
        const struct tinsn *ti = &table[t];
        for (unsigned it = 0; it < 256; it++) {
            struct x87_state in, nat, gst;
            random_state(&in);
            if (ti->flags & 2) {
                in.cw |= 0x3f;
            }
            nat = in;
            gst = in;
            run_native(ti->b, ti->n, &nat);
            prepare_guest();
            int r = run_guest(ti->b, ti->n, &gst);
            bool ax = ti->b[0] == 0xdf && ti->b[1] == 0xe0;
            if (r != CPU_EXIT_HLT || !same(&nat, &gst, ti->flags & 1, ax)) {
                if (failures < 12) {
                    printf("\nmismatch (exit %d, exc %d) for", r, cpu->exc_vector);
                    for (size_t k = 0; k < ti->n; k++) {
                        printf(" %02x", ti->b[k]);
                    }
                    printf("\n  in: a %04x %016llx b %04x %016llx cw %04x\n",
                           *(uint16_t *)(in.a + 8), *(unsigned long long *)in.a,
                           *(uint16_t *)(in.b + 8), *(unsigned long long *)in.b, in.cw);
                    dump("native", &nat);
                    dump("guest ", &gst);
                }
                failures++;
                break;
            }
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
}

/* ------------------------------------------------------------------------------------------ */

static int run_one(const uint8_t *code, size_t n)
{
    uint8_t buf[64];
    memcpy(buf, code, n);
    buf[n] = 0xf4;
    cpu_harness_load(&h, CODE, buf, n + 1);
    return cpu_harness_run(&h, CODE, 100);
}

#define RUN1(...)                                                                                  \
    ({                                                                                             \
        static const uint8_t c_[] = {__VA_ARGS__};                                                 \
        run_one(c_, sizeof(c_));                                                                   \
    })

static void test_nm_mf(void)
{
    prepare_guest();
    cpu->cr0 |= CPU_CR0_TS;
    CU_ASSERT_EQUAL(RUN1(0xd9, 0xe8), CPU_EXIT_EXCEPTION); /* fld1 */
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_NM);
    CU_ASSERT_EQUAL(RUN1(0x9b), CPU_EXIT_EXCEPTION); /* fwait with TS and MP */
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_NM);
    cpu->cr0 &= ~CPU_CR0_MP;
    CU_ASSERT_EQUAL(RUN1(0x9b), CPU_EXIT_HLT); /* TS without MP: FWAIT runs */
    prepare_guest();
    cpu->cr0 |= CPU_CR0_EM;
    CU_ASSERT_EQUAL(RUN1(0xdb, 0xe3), CPU_EXIT_EXCEPTION); /* fninit */
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_NM);

    /* Unmasked divide by zero: flagged, reported at the next waiting instruction. */
    prepare_guest();
    cpu->fpu.fcw = 0x037f & ~0x4u;
    /* fldz; fld1; fdiv st0, st1 (1/0); fwait */
    CU_ASSERT_EQUAL(RUN1(0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0x9b), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_MF);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 6);                         /* the FWAIT */
    CU_ASSERT_EQUAL(cpu_fpu_get_fsw(cpu) & 0x80ff, 0x8084);      /* B, ES, ZE */
    CU_ASSERT_EQUAL(cpu->fpu.st[cpu->fpu.top].raw.sexp, 0x3fff); /* ST0 still 1.0 */
    /* FNSTSW does not wait; FNCLEX clears. */
    CU_ASSERT_EQUAL(RUN1(0xdf, 0xe0, 0xdb, 0xe2, 0x9b), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0x80ff, 0x8084);
    CU_ASSERT_EQUAL(cpu_fpu_get_fsw(cpu) & 0x80ff, 0);
    /* Without CR0.NE nothing is reported (the FERR# path is not modelled). */
    prepare_guest();
    cpu->cr0 &= ~CPU_CR0_NE;
    cpu->fpu.fcw = 0x037f & ~0x4u;
    CU_ASSERT_EQUAL(RUN1(0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0x9b), CPU_EXIT_HLT);
}

static void test_env_save(void)
{
    prepare_guest();
    cpu->r[CPU_RDI] = DATA;
    /* fld1; fldpi; fnstenv [rdi] */
    CU_ASSERT_EQUAL(RUN1(0xd9, 0xe8, 0xd9, 0xeb, 0xd9, 0x37), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA, 2), 0x037f);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 4, 2), 6u << 11);  /* TOP = 6 */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 8, 2), 0x0fff);    /* R6, R7 valid */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 12, 4), CODE + 2); /* FIP: the FLDPI */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 18, 2), 0x1eb);    /* FOP D9 EB */
    CU_ASSERT_EQUAL(cpu->fpu.fcw, 0x037f);

    /* fnsave [rdi]; then the FPU is initialised; frstor [rdi] brings the stack back */
    CU_ASSERT_EQUAL(RUN1(0xdd, 0x37), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->fpu.ftw, 0xffff);
    CU_ASSERT_EQUAL(cpu->fpu.top, 0);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 28 + 8, 2), 0x4000); /* ST0 = pi */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 38 + 8, 2), 0x3fff); /* ST1 = 1 */
    CU_ASSERT_EQUAL(RUN1(0xdd, 0x27), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->fpu.top, 6);
    CU_ASSERT_EQUAL(cpu->fpu.ftw, 0x0fff);
    CU_ASSERT_EQUAL(cpu->fpu.st[6].raw.mant, 0xc90fdaa22168c235ull);

    /* 16-bit operand size: 14-byte environment */
    CU_ASSERT_EQUAL(RUN1(0x66, 0xd9, 0x37), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 2, 2), 6u << 11);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 4, 2), 0x0fff);
}

static void test_fxsave_layout(void)
{
    prepare_guest();
    cpu->r[CPU_RDI] = DATA;
    /* fld1; fldz */
    CU_ASSERT_EQUAL(RUN1(0xd9, 0xe8, 0xd9, 0xee), CPU_EXIT_HLT);
    for (int i = 0; i < 16; i++) {
        memset(&cpu->fpu.xmm[i], 0x10 + i, 16);
    }
    cpu->fpu.mxcsr = 0x1f84;
    CU_ASSERT_EQUAL(RUN1(0x48, 0x0f, 0xae, 0x07), CPU_EXIT_HLT); /* fxsave64 [rdi] */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 0, 2), 0x037f);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 2, 2), 6u << 11);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 4, 1), 0xc0);     /* R6, R7 not empty */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 6, 2), 0x1ee);    /* FOP of FLDZ */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 8, 8), CODE + 2); /* 64-bit FIP */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 24, 4), 0x1f84);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 28, 4), 0xffff);     /* MXCSR_MASK */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 32 + 8, 2), 0);      /* ST0 = +0 */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 48 + 8, 2), 0x3fff); /* ST1 = 1 */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 160, 8), 0x1010101010101010ull);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 160 + 15 * 16, 8), 0x1f1f1f1f1f1f1f1full);

    /* scramble, then fxrstor [rdi] */
    cpu_fpu_reset(cpu);
    CU_ASSERT_EQUAL(RUN1(0x48, 0x0f, 0xae, 0x0f), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->fpu.top, 6);
    CU_ASSERT_EQUAL(cpu->fpu.ftw, 0x0fff);
    CU_ASSERT_EQUAL(cpu->fpu.mxcsr, 0x1f84);
    CU_ASSERT_EQUAL(cpu->fpu.xmm[15].b[3], 0x1f);
    CU_ASSERT_EQUAL(cpu->fpu.st[7].raw.sexp, 0x3fff);

    /* 32-bit layout (no REX.W): FIP dword + FCS at 12 */
    CU_ASSERT_EQUAL(RUN1(0x0f, 0xae, 0x07), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 12, 2), cpu->fpu.fcs);

    /* misaligned -> #GP(0); reserved MXCSR bits in the image -> #GP(0) */
    cpu->r[CPU_RDI] = DATA + 8;
    CU_ASSERT_EQUAL(RUN1(0x0f, 0xae, 0x07), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    cpu->r[CPU_RDI] = DATA;
    cpu_harness_poke(&h, DATA + 24, 4, 0x11f80);
    CU_ASSERT_EQUAL(RUN1(0x0f, 0xae, 0x0f), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    /* CR0.TS -> #NM */
    cpu->cr0 |= CPU_CR0_TS;
    CU_ASSERT_EQUAL(RUN1(0x0f, 0xae, 0x07), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_NM);
}

/* MMX aliasing: a MOVQ to MM0 sets TOP = 0, tags valid, exponent all ones; EMMS empties. */
static void test_mmx_alias(void)
{
    prepare_guest();
    cpu->r[CPU_RAX] = 0x1122334455667788ull;
    /* fld1; movq mm3, rax */
    CU_ASSERT_EQUAL(RUN1(0xd9, 0xe8, 0x48, 0x0f, 0x6e, 0xd8), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->fpu.top, 0);
    CU_ASSERT_EQUAL(cpu->fpu.ftw, 0);
    CU_ASSERT_EQUAL(cpu->fpu.st[3].raw.mant, 0x1122334455667788ull);
    CU_ASSERT_EQUAL(cpu->fpu.st[3].raw.sexp, 0xffff);
    CU_ASSERT_EQUAL(RUN1(0x0f, 0x77), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->fpu.ftw, 0xffff);
}

int main(void)
{
    native_page =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (native_page == MAP_FAILED) {
        return 1;
    }
    if (cpu_harness_init(&h, 8 << 20, X86_MODE_64) < 0) {
        return 1;
    }
    cpu = h.cpu;
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("cpu_x87", NULL, NULL);
    CU_add_test(s, "native vs guest, all forms", test_differential);
    CU_add_test(s, "#NM and #MF", test_nm_mf);
    CU_add_test(s, "FNSTENV/FNSAVE/FRSTOR", test_env_save);
    CU_add_test(s, "FXSAVE/FXRSTOR layout", test_fxsave_layout);
    CU_add_test(s, "MMX aliasing and EMMS", test_mmx_alias);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    cpu_harness_free(&h);
    munmap(native_page, 4096);
    return fails ? 1 : 0;
}
