/* The x87 FPU of the soft CPU (opcodes D8-DF and FWAIT).
 *
 * Registers are kept in the 80-bit extended format (written through the union's raw view and
 * handed to asm as long double, hence the "memory" clobbers: no type-based reordering). Every
 * operation whose result depends on rounding, precision control or the x87's special-value rules
 * runs as the host's own x87 instruction inside one asm statement: load an environment with the
 * guest's control word (IE/DE/ZE masked, see x87_henv_of) and condition codes, load the operands,
 * execute, read the status word, clear the host's pending exceptions, store the results. So
 * results, condition codes (C0-C3, e.g. FPREM's quotient bits) and exception flags are those of
 * real hardware (checked against the host by tests/unit/test_cpu_x87.c and the oracle). This file
 * keeps the guest's stack (TOP, tags), decides stack faults and which unmasked exceptions suppress
 * a result, and reports pending exceptions as #MF on the next waiting instruction (SDM vol.
 * 1, 8.6). With CR0.NE = 0 the legacy FERR#/IRQ13 path is not modelled: pending exceptions are then
 * simply not reported. */
#include "core/cpu/cpu.h"

#define FSW_EXC 0x003fu  /* IE DE ZE OE UE PE */
#define FSW_COND 0x4700u /* C0 C1 C2 C3 */
#define FSW_PRE 0x0007u  /* IE DE ZE: exceptions that suppress the result when unmasked */
#define TAG_EMPTY 3u

/* ------------------------------------------------------------------------------------------ */
/* Host x87 execution.                                                                         */

/* The environment every host operation starts from (FLDENV, 32-bit protected layout): the
 * guest's control word, its condition codes (instructions that leave some C bits undefined
 * in practice keep them, so the host must start from the guest's), an empty stack. */
struct x87_henv {
    uint16_t cw, res0;
    uint16_t sw, res1;
    uint16_t tw, res2;
    uint32_t ip, op_cs, dp, ds;
};

enum x87_hop {
    HOP_ADD,
    HOP_SUB,
    HOP_MUL,
    HOP_DIV,
    HOP_PREM,
    HOP_PREM1,
    HOP_SCALE, /* st0 op st1 -> st0 */
    HOP_SQRT,
    HOP_RNDINT,
    HOP_F2XM1,
    HOP_SIN,
    HOP_COS, /* st0 -> st0 */
    HOP_SINCOS,
    HOP_PTAN,
    HOP_XTRACT, /* st0 -> st0, st1 */
    HOP_PATAN,
    HOP_YL2X,
    HOP_YL2XP1, /* st0, st1 -> one */
    HOP_COM,
    HOP_UCOM,
    HOP_TST, /* status only */
};

/* Shapes of the asm: A two in, result in st0, st1 discarded; B one in one out; C one in,
 * two out (a = new ST0, b = new ST1); D two in, the popped result in a; E compares. */
#define X87_PRO "fnstcw %[sv]\n\tfldenv %[cw]\n\t"
#define X87_EPI "\n\tfldcw %[sv]"

#define X87_SHAPE_A(insn)                                                                          \
    __asm__ volatile(X87_PRO "fldt %[b]\n\tfldt %[a]\n\tfnclex\n\t" insn                           \
                             "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[a]\n\tfstp %%st(0)" X87_EPI    \
                     : [a] "+m"(*a), [sw] "=m"(sw), [sv] "=m"(sv)                                  \
                     : [b] "m"(*b), [cw] "m"(*cwp)                                                 \
                     : "st", "st(1)", "memory")
#define X87_SHAPE_B(insn)                                                                          \
    __asm__ volatile(X87_PRO "fldt %[a]\n\tfnclex\n\t" insn                                        \
                             "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[a]" X87_EPI                    \
                     : [a] "+m"(*a), [sw] "=m"(sw), [sv] "=m"(sv)                                  \
                     : [cw] "m"(*cwp)                                                              \
                     : "st", "memory")
#define X87_SHAPE_C(insn)                                                                          \
    __asm__ volatile(X87_PRO "fldt %[a]\n\tfnclex\n\t" insn                                        \
                             "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[a]\n\tfstpt %[b]" X87_EPI      \
                     : [a] "+m"(*a), [b] "=m"(*b), [sw] "=m"(sw), [sv] "=m"(sv)                    \
                     : [cw] "m"(*cwp)                                                              \
                     : "st", "st(1)", "memory")
#define X87_SHAPE_D(insn)                                                                          \
    __asm__ volatile(X87_PRO "fldt %[b]\n\tfldt %[a]\n\tfnclex\n\t" insn                           \
                             "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[a]" X87_EPI                    \
                     : [a] "+m"(*a), [sw] "=m"(sw), [sv] "=m"(sv)                                  \
                     : [b] "m"(*b), [cw] "m"(*cwp)                                                 \
                     : "st", "st(1)", "memory")
#define X87_SHAPE_E(insn)                                                                          \
    __asm__ volatile(X87_PRO "fldt %[b]\n\tfldt %[a]\n\tfnclex\n\t" insn                           \
                             "\n\tfnstsw %[sw]\n\tfnclex\n\tfstp %%st(0)\n\tfstp %%st(0)" X87_EPI  \
                     : [sw] "=m"(sw), [sv] "=m"(sv)                                                \
                     : [a] "m"(*a), [b] "m"(*b), [cw] "m"(*cwp)                                    \
                     : "st", "st(1)", "memory")

/* Runs op with the host control word cw; a and b are 80-bit values (see the shapes).
 * Returns the host status word after the instruction. */
static uint16_t x87_host(enum x87_hop op, const struct x87_henv *cwp, long double *a,
                         long double *b)
{
    uint16_t sw = 0, sv;
    switch (op) {
    case HOP_ADD:
        X87_SHAPE_A("fadd %%st(1), %%st");
        break;
    case HOP_SUB:
        X87_SHAPE_A("fsub %%st(1), %%st");
        break;
    case HOP_MUL:
        X87_SHAPE_A("fmul %%st(1), %%st");
        break;
    case HOP_DIV:
        X87_SHAPE_A("fdiv %%st(1), %%st");
        break;
    case HOP_PREM:
        X87_SHAPE_A("fprem");
        break;
    case HOP_PREM1:
        X87_SHAPE_A("fprem1");
        break;
    case HOP_SCALE:
        X87_SHAPE_A("fscale");
        break;
    case HOP_SQRT:
        X87_SHAPE_B("fsqrt");
        break;
    case HOP_RNDINT:
        X87_SHAPE_B("frndint");
        break;
    case HOP_F2XM1:
        X87_SHAPE_B("f2xm1");
        break;
    case HOP_SIN:
        X87_SHAPE_B("fsin");
        break;
    case HOP_COS:
        X87_SHAPE_B("fcos");
        break;
    case HOP_SINCOS:
        X87_SHAPE_C("fsincos");
        break;
    case HOP_PTAN:
        X87_SHAPE_C("fptan");
        break;
    case HOP_XTRACT:
        X87_SHAPE_C("fxtract");
        break;
    case HOP_PATAN:
        X87_SHAPE_D("fpatan");
        break;
    case HOP_YL2X:
        X87_SHAPE_D("fyl2x");
        break;
    case HOP_YL2XP1:
        X87_SHAPE_D("fyl2xp1");
        break;
    case HOP_COM:
        X87_SHAPE_E("fcom %%st(1)");
        break;
    case HOP_UCOM:
        X87_SHAPE_E("fucom %%st(1)");
        break;
    case HOP_TST:
        __asm__ volatile(X87_PRO "fldt %[a]\n\tfnclex\n\tftst\n\tfnstsw %[sw]\n\tfnclex\n\t"
                                 "fstp %%st(0)" X87_EPI
                         : [sw] "=m"(sw), [sv] "=m"(sv)
                         : [a] "m"(*a), [cw] "m"(*cwp)
                         : "st", "memory");
        break;
    }
    return sw;
}

/* Memory formats. */
enum x87_fmt { FMT_F32, FMT_F64, FMT_F80, FMT_I16, FMT_I32, FMT_I64, FMT_BCD };
static const uint8_t fmt_size[7] = {4, 8, 10, 2, 4, 8, 10};

#define X87_LOAD(insn)                                                                             \
    __asm__ volatile(X87_PRO "fnclex\n\t" insn                                                     \
                             " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]" X87_EPI               \
                     : [r] "=m"(*r), [sw] "=m"(sw), [sv] "=m"(sv)                                  \
                     : [m] "m"(*(const uint8_t(*)[10])mem), [cw] "m"(*cwp)                         \
                     : "st", "memory")

/* Convert the memory operand image mem (fmt) to 80 bits in *r. Returns the host status. */
static uint16_t x87_host_load(enum x87_fmt fmt, const struct x87_henv *cwp, const void *mem,
                              long double *r)
{
    uint16_t sw = 0, sv;
    switch (fmt) {
    case FMT_F32:
        X87_LOAD("flds");
        break;
    case FMT_F64:
        X87_LOAD("fldl");
        break;
    case FMT_I16:
        X87_LOAD("filds");
        break;
    case FMT_I32:
        X87_LOAD("fildl");
        break;
    case FMT_I64:
        X87_LOAD("fildll");
        break;
    case FMT_BCD:
        X87_LOAD("fbld");
        break;
    default:
        memcpy(r, mem, 10);
        break;
    }
    return sw;
}

#define X87_STORE(insn)                                                                            \
    __asm__ volatile(X87_PRO "fldt %[a]\n\tfnclex\n\t" insn                                        \
                             " %[m]\n\tfnstsw %[sw]\n\tfnclex" X87_EPI                             \
                     : [m] "=m"(*(uint8_t(*)[10])mem), [sw] "=m"(sw), [sv] "=m"(sv)                \
                     : [a] "m"(*a), [cw] "m"(*cwp)                                                 \
                     : "st", "memory")

/* Convert *a to fmt into mem (10 bytes available); trunc selects FISTTP. */
static uint16_t x87_host_store(enum x87_fmt fmt, bool trunc, const struct x87_henv *cwp,
                               const long double *a, void *mem)
{
    uint16_t sw = 0, sv;
    switch (fmt) {
    case FMT_F32:
        X87_STORE("fstps");
        break;
    case FMT_F64:
        X87_STORE("fstpl");
        break;
    case FMT_I16:
        if (trunc) {
            X87_STORE("fisttps");
        } else {
            X87_STORE("fistps");
        }
        break;
    case FMT_I32:
        if (trunc) {
            X87_STORE("fisttpl");
        } else {
            X87_STORE("fistpl");
        }
        break;
    case FMT_I64:
        if (trunc) {
            X87_STORE("fisttpll");
        } else {
            X87_STORE("fistpll");
        }
        break;
    case FMT_BCD:
        X87_STORE("fbstp");
        break;
    default:
        memcpy(mem, a, 10);
        break;
    }
    return sw;
}

/* D8/DA/DC/DE with a memory operand: ST(0) op m32fp/m32int/m64fp/m16int, executed with the
 * memory operand itself so that operand-conversion exceptions combine like the hardware's.
 * kind is the /r of the opcode (FCOMP runs as FCOM: the caller pops). */
#define X87_MARITH(insn)                                                                           \
    __asm__ volatile(X87_PRO "fldt %[a]\n\tfnclex\n\t" insn " %[m]\n\tfnstsw %[sw]\n\t"            \
                             "fnclex\n\tfstpt %[a]" X87_EPI                                        \
                     : [a] "+m"(*a), [sw] "=m"(sw), [sv] "=m"(sv)                                  \
                     : [m] "m"(*(const uint8_t(*)[8])mem), [cw] "m"(*cwp)                          \
                     : "st", "memory")
#define X87_MARITH_KINDS(pre, sfx)                                                                 \
    switch (kind) {                                                                                \
    case 0:                                                                                        \
        X87_MARITH(pre "add" sfx);                                                                 \
        break;                                                                                     \
    case 1:                                                                                        \
        X87_MARITH(pre "mul" sfx);                                                                 \
        break;                                                                                     \
    case 2:                                                                                        \
    case 3:                                                                                        \
        X87_MARITH(pre "com" sfx);                                                                 \
        break;                                                                                     \
    case 4:                                                                                        \
        X87_MARITH(pre "sub" sfx);                                                                 \
        break;                                                                                     \
    case 5:                                                                                        \
        X87_MARITH(pre "subr" sfx);                                                                \
        break;                                                                                     \
    case 6:                                                                                        \
        X87_MARITH(pre "div" sfx);                                                                 \
        break;                                                                                     \
    default:                                                                                       \
        X87_MARITH(pre "divr" sfx);                                                                \
        break;                                                                                     \
    }

static uint16_t x87_host_marith(unsigned kind, unsigned opcode, const struct x87_henv *cwp,
                                long double *a, const void *mem)
{
    uint16_t sw = 0, sv;
    switch (opcode) {
    case 0: /* D8: m32fp */
        X87_MARITH_KINDS("f", "s")
        break;
    case 2: /* DA: m32int */
        X87_MARITH_KINDS("fi", "l")
        break;
    case 4: /* DC: m64fp */
        X87_MARITH_KINDS("f", "l")
        break;
    default: /* DE: m16int */
        X87_MARITH_KINDS("fi", "s")
        break;
    }
    return sw;
}

/* FLD1 .. FLDZ (D9 E8-EE): rounded per the guest's RC like the hardware does. */
static uint16_t x87_host_const(unsigned k, const struct x87_henv *cwp, long double *r)
{
    uint16_t sw = 0, sv;
#define X87_CONST(insn)                                                                            \
    __asm__ volatile(X87_PRO "fnclex\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]" X87_EPI  \
                     : [r] "=m"(*r), [sw] "=m"(sw), [sv] "=m"(sv)                                  \
                     : [cw] "m"(*cwp)                                                              \
                     : "st", "memory")
    switch (k) {
    case 0:
        X87_CONST("fld1");
        break;
    case 1:
        X87_CONST("fldl2t");
        break;
    case 2:
        X87_CONST("fldl2e");
        break;
    case 3:
        X87_CONST("fldpi");
        break;
    case 4:
        X87_CONST("fldlg2");
        break;
    case 5:
        X87_CONST("fldln2");
        break;
    default:
        X87_CONST("fldz");
        break;
    }
#undef X87_CONST
    return sw;
}

/* ------------------------------------------------------------------------------------------ */
/* Stack and status helpers.                                                                   */

static inline unsigned x87_phys(const struct cpu *cpu, unsigned i)
{
    return (cpu->fpu.top + i) & 7;
}

static inline unsigned x87_tag(const struct cpu *cpu, unsigned phys)
{
    return (cpu->fpu.ftw >> (2 * phys)) & 3;
}

static inline void x87_set_tag(struct cpu *cpu, unsigned phys, unsigned tag)
{
    cpu->fpu.ftw = (uint16_t)((cpu->fpu.ftw & ~(3u << (2 * phys))) | (tag << (2 * phys)));
}

static inline bool x87_empty(const struct cpu *cpu, unsigned i)
{
    return x87_tag(cpu, x87_phys(cpu, i)) == TAG_EMPTY;
}

static inline union cpu_fpreg *x87_st(struct cpu *cpu, unsigned i)
{
    return &cpu->fpu.st[x87_phys(cpu, i)];
}

static void x87_write(struct cpu *cpu, unsigned i, const union cpu_fpreg *v)
{
    union cpu_fpreg *d = x87_st(cpu, i);
    d->raw.mant = v->raw.mant;
    d->raw.sexp = v->raw.sexp;
    x87_set_tag(cpu, x87_phys(cpu, i), 0);
}

static void x87_pop(struct cpu *cpu)
{
    x87_set_tag(cpu, cpu->fpu.top, TAG_EMPTY);
    cpu->fpu.top = (cpu->fpu.top + 1) & 7;
}

static void x87_set_indefinite(union cpu_fpreg *r)
{
    memset(r, 0, sizeof(*r));
    r->raw.mant = 0xc000000000000000ull;
    r->raw.sexp = 0xffff;
}

/* The host runs with the guest's precision, rounding and OE/UE/PE masks, so an unmasked
 * overflow or underflow yields the hardware's exponent-biased result; IE/DE/ZE stay masked
 * on the host (an unmasked one suppresses the result anyway) and every asm statement clears
 * the host's pending exceptions before a waiting instruction could report them. */
static inline struct x87_henv x87_henv_of(const struct cpu *cpu)
{
    struct x87_henv e = {.cw = (uint16_t)(cpu->fpu.fcw | FSW_PRE),
                         .sw = (uint16_t)(cpu->fpu.fsw & FSW_COND),
                         .tw = 0xffff};
    return e;
}
#define X87_HOSTENV(cpu) ((const struct x87_henv[]){x87_henv_of(cpu)})

/* Record exception flags; sets ES/B for unmasked ones. Returns false when an unmasked
 * pre-computation exception (IE, DE, ZE) means the destination must stay unchanged. */
static bool x87_flags(struct cpu *cpu, uint16_t exc)
{
    exc &= FSW_EXC;
    uint16_t unmasked = exc & ~cpu->fpu.fcw & FSW_EXC;
    if (unmasked & FSW_PRE) {
        /* No computation happened: the post-computation flags of the masked run are void. */
        cpu->fpu.fsw |= (exc & FSW_PRE) | CPU_FSW_ES | CPU_FSW_B;
        return false;
    }
    cpu->fpu.fsw |= exc;
    if (unmasked) {
        cpu->fpu.fsw |= CPU_FSW_ES | CPU_FSW_B;
    }
    return true;
}

/* Condition codes from the host status word. When an unmasked IE/DE/ZE suppressed the
 * result, only C1 is cleared (measured: the others keep their values). */
static void x87_cond_from(struct cpu *cpu, uint16_t hsw)
{
    if (hsw & ~cpu->fpu.fcw & FSW_PRE) {
        cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
        return;
    }
    cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~FSW_COND) | (hsw & FSW_COND));
}

/* Stack underflow (SDM vol. 1, 8.5.1.1): IE + SF, C1 = 0. True when masked (the caller then
 * writes the QNaN indefinite). */
static bool x87_underflow(struct cpu *cpu)
{
    cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~CPU_FSW_C1) | CPU_FSW_IE | CPU_FSW_SF);
    if (cpu->fpu.fcw & CPU_FSW_IE) {
        return true;
    }
    cpu->fpu.fsw |= CPU_FSW_ES | CPU_FSW_B;
    return false;
}

/* Stack overflow: IE + SF, C1 = 1. True when masked. */
static bool x87_overflow(struct cpu *cpu)
{
    cpu->fpu.fsw |= CPU_FSW_IE | CPU_FSW_SF | CPU_FSW_C1;
    if (cpu->fpu.fcw & CPU_FSW_IE) {
        return true;
    }
    cpu->fpu.fsw |= CPU_FSW_ES | CPU_FSW_B;
    return false;
}

/* Push v; on overflow the masked response pushes the indefinite. */
static void x87_push(struct cpu *cpu, const union cpu_fpreg *v)
{
    unsigned p = (cpu->fpu.top - 1) & 7;
    union cpu_fpreg ind;
    if (x87_tag(cpu, p) != TAG_EMPTY) {
        if (!x87_overflow(cpu)) {
            return;
        }
        x87_set_indefinite(&ind);
        v = &ind;
    } else {
        cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
    }
    cpu->fpu.top = p;
    x87_write(cpu, 0, v);
}

uint16_t cpu_fpu_get_fsw(const struct cpu *cpu)
{
    return (uint16_t)((cpu->fpu.fsw & ~0x3800u) | ((cpu->fpu.top & 7u) << 11));
}

void cpu_fpu_set_fsw(struct cpu *cpu, uint16_t fsw)
{
    cpu->fpu.top = (fsw >> 11) & 7;
    cpu->fpu.fsw = fsw & ~0x3800u;
}

void cpu_fpu_init_x87(struct cpu *cpu)
{
    cpu->fpu.fcw = 0x037f;
    cpu->fpu.fsw = 0;
    cpu->fpu.top = 0;
    cpu->fpu.ftw = 0xffff;
    cpu->fpu.fop = 0;
    cpu->fpu.fip = 0;
    cpu->fpu.fcs = 0;
    cpu->fpu.fdp = 0;
    cpu->fpu.fds = 0;
}

void cpu_fpu_reset(struct cpu *cpu)
{
    memset(&cpu->fpu, 0, sizeof(cpu->fpu));
    cpu_fpu_init_x87(cpu);
    cpu->fpu.mxcsr = 0x1f80;
}

void cpu_fpu_check_pending(struct cpu *cpu)
{
    if (CPU_UNLIKELY((cpu->fpu.fsw & CPU_FSW_ES) && (cpu->cr0 & CPU_CR0_NE))) {
        cpu_raise(cpu, X86_EXC_MF, CPU_NO_ERROR);
    }
}

void cpu_exec_fwait(struct cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->cr0 & (CPU_CR0_MP | CPU_CR0_TS)) == (CPU_CR0_MP | CPU_CR0_TS)) {
        cpu_raise(cpu, X86_EXC_NM, CPU_NO_ERROR);
    }
    cpu_fpu_check_pending(cpu);
}

/* The FSTENV/FSAVE tag of a non-empty register (SDM vol. 1, 8.1.7). */
static unsigned x87_class_tag(const union cpu_fpreg *r)
{
    unsigned e = r->raw.sexp & 0x7fff;
    if (e == 0x7fff) {
        return 2;
    }
    if (e == 0) {
        return r->raw.mant == 0 ? 1 : 2;
    }
    return (r->raw.mant >> 63) ? 0 : 2;
}

static uint16_t x87_full_tags(const struct cpu *cpu)
{
    uint16_t t = 0;
    for (unsigned p = 0; p < 8; p++) {
        unsigned tag = x87_tag(cpu, p);
        if (tag != TAG_EMPTY) {
            tag = x87_class_tag(&cpu->fpu.st[p]);
        }
        t |= (uint16_t)(tag << (2 * p));
    }
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Operations.                                                                                 */

static const enum x87_hop arith_hop[8] = {HOP_ADD, HOP_MUL, HOP_ADD, HOP_ADD,
                                          HOP_SUB, HOP_SUB, HOP_DIV, HOP_DIV};

/* kind: the D8 /r numbering (0 add, 1 mul, 4 sub, 5 subr, 6 div, 7 divr).
 * ST(di) = ST(di) op src; src is a register (src_reg) or a loaded value (srcv). */
static void x87_arith(struct cpu *cpu, unsigned kind, unsigned di, const union cpu_fpreg *srcv,
                      int src_reg, bool pop)
{
    union cpu_fpreg a, b, res;
    if (x87_empty(cpu, di) || (src_reg >= 0 && x87_empty(cpu, (unsigned)src_reg))) {
        if (!x87_underflow(cpu)) {
            return;
        }
        x87_set_indefinite(&res);
    } else {
        const union cpu_fpreg *s = src_reg >= 0 ? x87_st(cpu, (unsigned)src_reg) : srcv;
        bool rev = kind == 5 || kind == 7;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        a.raw.mant = (rev ? s : x87_st(cpu, di))->raw.mant;
        a.raw.sexp = (rev ? s : x87_st(cpu, di))->raw.sexp;
        b.raw.mant = (rev ? x87_st(cpu, di) : s)->raw.mant;
        b.raw.sexp = (rev ? x87_st(cpu, di) : s)->raw.sexp;
        uint16_t hsw = x87_host(arith_hop[kind], X87_HOSTENV(cpu), &a.ld, &b.ld);
        x87_cond_from(cpu, hsw);
        if (!x87_flags(cpu, hsw)) {
            return;
        }
        res = a;
    }
    x87_write(cpu, di, &res);
    if (pop) {
        x87_pop(cpu);
    }
}

/* FCOM/FUCOM/FCOMI/FUCOMI/FTST family. b NULL means FTST. eflags: write ZF/PF/CF instead of
 * C0/C2/C3. pops: 0, 1 or 2. */
static void x87_compare(struct cpu *cpu, unsigned bi, const union cpu_fpreg *bv, bool unord,
                        bool eflags, unsigned pops, bool tst)
{
    uint16_t c = CPU_FSW_C0 | CPU_FSW_C2 | CPU_FSW_C3; /* unordered */
    bool b_empty = !bv && !tst && x87_empty(cpu, bi);
    if (x87_empty(cpu, 0) || b_empty) {
        /* Unordered either way; an unmasked fault only suppresses the pops. */
        if (!x87_underflow(cpu)) {
            pops = 0;
        }
    } else {
        union cpu_fpreg a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        a.raw = x87_st(cpu, 0)->raw;
        if (!tst) {
            b.raw = (bv ? bv : x87_st(cpu, bi))->raw;
        }
        uint16_t hsw = x87_host(tst     ? HOP_TST
                                : unord ? HOP_UCOM
                                        : HOP_COM,
                                X87_HOSTENV(cpu), &a.ld, &b.ld);
        /* An unmasked invalid operand still sets the condition codes; only the pops stay. */
        if (!x87_flags(cpu, hsw)) {
            pops = 0;
        }
        c = hsw & (CPU_FSW_C0 | CPU_FSW_C2 | CPU_FSW_C3);
    }
    if (eflags) {
        uint64_t fl = cpu_get_rflags(cpu) & ~(uint64_t)CPU_FL_ARITH;
        fl |= ((c & CPU_FSW_C3) ? CPU_FL_ZF : 0) | ((c & CPU_FSW_C2) ? CPU_FL_PF : 0) |
              ((c & CPU_FSW_C0) ? CPU_FL_CF : 0);
        cpu_set_rflags(cpu, fl);
        cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
    } else {
        cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~FSW_COND) | c);
    }
    for (unsigned i = 0; i < pops; i++) {
        x87_pop(cpu);
    }
}

/* One-operand transcendental/arithmetic on ST(0) (shape B). */
static void x87_unary(struct cpu *cpu, enum x87_hop hop)
{
    union cpu_fpreg a;
    if (x87_empty(cpu, 0)) {
        if (x87_underflow(cpu)) {
            x87_set_indefinite(&a);
            x87_write(cpu, 0, &a);
        }
        return;
    }
    memset(&a, 0, sizeof(a));
    a.raw = x87_st(cpu, 0)->raw;
    uint16_t hsw = x87_host(hop, X87_HOSTENV(cpu), &a.ld, NULL);
    x87_cond_from(cpu, hsw);
    if (x87_flags(cpu, hsw)) {
        x87_write(cpu, 0, &a);
    }
}

/* ST(0), ST(1) -> ST(0) (FPREM, FPREM1, FSCALE) or -> ST(1) and pop (FPATAN, FYL2X...). */
static void x87_binary(struct cpu *cpu, enum x87_hop hop, bool pop)
{
    union cpu_fpreg a, b;
    if (x87_empty(cpu, 0) || x87_empty(cpu, 1)) {
        if (hop == HOP_PREM || hop == HOP_PREM1) {
            cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C2; /* measured: "complete" */
        }
        if (!x87_underflow(cpu)) {
            return;
        }
        x87_set_indefinite(&a);
    } else {
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        a.raw = x87_st(cpu, 0)->raw;
        b.raw = x87_st(cpu, 1)->raw;
        uint16_t hsw = x87_host(hop, X87_HOSTENV(cpu), &a.ld, &b.ld);
        x87_cond_from(cpu, hsw);
        if (!x87_flags(cpu, hsw)) {
            if (hop == HOP_PREM || hop == HOP_PREM1) {
                cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C2;
            }
            return;
        }
    }
    if (pop) {
        x87_write(cpu, 1, &a);
        x87_pop(cpu);
    } else {
        x87_write(cpu, 0, &a);
    }
}

/* FSINCOS, FPTAN, FXTRACT: ST(0) replaced and one value pushed. */
static void x87_push2(struct cpu *cpu, enum x87_hop hop)
{
    union cpu_fpreg a, b;
    if (x87_empty(cpu, 0)) {
        if (x87_underflow(cpu)) {
            x87_set_indefinite(&a);
            x87_write(cpu, 0, &a);
            x87_push(cpu, &a);
        }
        return;
    }
    if (!x87_empty(cpu, 7)) {
        if (x87_overflow(cpu)) {
            x87_set_indefinite(&a);
            x87_write(cpu, 0, &a);
            cpu->fpu.top = (cpu->fpu.top - 1) & 7;
            x87_write(cpu, 0, &a);
        }
        return;
    }
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.raw = x87_st(cpu, 0)->raw;
    uint16_t hsw = x87_host(hop, X87_HOSTENV(cpu), &a.ld, &b.ld);
    x87_cond_from(cpu, hsw);
    if (!x87_flags(cpu, hsw)) {
        return;
    }
    if (hop != HOP_XTRACT && (hsw & CPU_FSW_C2)) {
        return; /* operand out of range: C2 = 1, ST(0) unchanged, nothing pushed */
    }
    x87_write(cpu, 0, &b);
    cpu->fpu.top = (cpu->fpu.top - 1) & 7;
    x87_write(cpu, 0, &a);
}

/* ------------------------------------------------------------------------------------------ */
/* Memory operands.                                                                            */

static void x87_probe_store(struct cpu *cpu, const struct x86_insn *in, unsigned size)
{
    uint64_t lin = cpu_seg_lin(cpu, in->seg, cpu_insn_ea(cpu, in), size, CPU_ACC_WRITE);
    cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
}

static void x87_fld_mem(struct cpu *cpu, const struct x86_insn *in, enum x87_fmt fmt)
{
    union cpu_fpreg v;
    uint8_t buf[16] = {0};
    cpu_ld_buf(cpu, in->seg, cpu_insn_ea(cpu, in), buf, fmt_size[fmt]);
    if (!x87_empty(cpu, 7)) {
        /* Stack overflow wins over the conversion's exceptions (measured). */
        x87_push(cpu, &v);
        return;
    }
    memset(&v, 0, sizeof(v));
    uint16_t hsw = x87_host_load(fmt, X87_HOSTENV(cpu), buf, &v.ld);
    /* An unmasked denormal operand is reported but the value is still loaded (measured). */
    uint16_t exc = hsw & FSW_EXC;
    if (exc & ~cpu->fpu.fcw & CPU_FSW_IE) {
        x87_flags(cpu, exc);
        return;
    }
    cpu->fpu.fsw |= exc;
    if (exc & ~cpu->fpu.fcw & FSW_EXC) {
        cpu->fpu.fsw |= CPU_FSW_ES | CPU_FSW_B;
    }
    x87_push(cpu, &v);
}

static void x87_fst_mem(struct cpu *cpu, const struct x86_insn *in, enum x87_fmt fmt, bool trunc,
                        bool pop)
{
    union cpu_fpreg a;
    uint8_t buf[16] = {0};
    uint16_t exc = 0;
    bool empty = x87_empty(cpu, 0);
    memset(&a, 0, sizeof(a));
    if (empty) {
        /* Underflow: IE + SF; masked, the indefinite of the destination format is stored. */
        if (!(cpu->fpu.fcw & CPU_FSW_IE)) {
            x87_probe_store(cpu, in, fmt_size[fmt]);
            x87_underflow(cpu);
            return;
        }
        x87_set_indefinite(&a);
    } else {
        a.raw = x87_st(cpu, 0)->raw;
    }
    uint16_t hsw = x87_host_store(fmt, trunc, X87_HOSTENV(cpu), &a.ld, buf);
    exc = hsw & FSW_EXC;
    /* Any unmasked exception other than precision leaves memory unchanged. */
    if (!(exc & ~cpu->fpu.fcw & (FSW_EXC & ~0x20u))) {
        cpu_st_buf(cpu, in->seg, cpu_insn_ea(cpu, in), buf, fmt_size[fmt]);
    } else {
        /* Nothing is stored, but an inaccessible destination still faults first. */
        x87_probe_store(cpu, in, fmt_size[fmt]);
        cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~CPU_FSW_C1) | (hsw & CPU_FSW_C1));
        x87_flags(cpu, exc);
        return;
    }
    if (empty) {
        x87_underflow(cpu);
    }
    cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~CPU_FSW_C1) | (hsw & CPU_FSW_C1));
    x87_flags(cpu, exc);
    if (pop) {
        x87_pop(cpu);
    }
}

/* FSTENV / FLDENV image (SDM vol. 1, 8.1.10 and figures 8-9 .. 8-12). */
static bool x87_env_real(const struct cpu *cpu)
{
    return cpu->mode == CPU_MODE_REAL || cpu->mode == CPU_MODE_V86;
}

static unsigned x87_env_size(const struct x86_insn *in)
{
    return in->opsize == 2 ? 14 : 28;
}

static void x87_env_store(struct cpu *cpu, uint8_t *b, bool o16)
{
    uint32_t v[7];
    uint16_t fsw = cpu_fpu_get_fsw(cpu);
    uint16_t ftw = x87_full_tags(cpu);
    uint32_t fip = (uint32_t)cpu->fpu.fip, fdp = (uint32_t)cpu->fpu.fdp;
    v[0] = cpu->fpu.fcw;
    v[1] = fsw;
    v[2] = ftw;
    if (x87_env_real(cpu)) {
        uint32_t lip = fip + ((uint32_t)cpu->fpu.fcs << 4);
        uint32_t ldp = fdp + ((uint32_t)cpu->fpu.fds << 4);
        v[3] = lip & 0xffff;
        v[4] = ((lip >> 16) << 12) | (cpu->fpu.fop & 0x7ff);
        v[5] = ldp & 0xffff;
        v[6] = (ldp >> 16) << 12;
    } else {
        v[3] = fip;
        v[4] = cpu->fpu.fcs | ((uint32_t)(cpu->fpu.fop & 0x7ff) << 16);
        v[5] = fdp;
        v[6] = cpu->fpu.fds;
    }
    for (unsigned i = 0; i < 7; i++) {
        if (o16) {
            uint16_t w = (uint16_t)v[i];
            if (i == 4 && !x87_env_real(cpu)) {
                w = cpu->fpu.fcs;
            }
            memcpy(b + 2 * i, &w, 2);
        } else {
            if (i < 3) {
                v[i] |= 0xffff0000u; /* reserved upper halves read as ones on Intel */
            }
            memcpy(b + 4 * i, &v[i], 4);
        }
    }
}

static void x87_env_load(struct cpu *cpu, const uint8_t *b, bool o16)
{
    uint32_t v[7];
    for (unsigned i = 0; i < 7; i++) {
        if (o16) {
            uint16_t w;
            memcpy(&w, b + 2 * i, 2);
            v[i] = w;
        } else {
            memcpy(&v[i], b + 4 * i, 4);
        }
    }
    cpu->fpu.fcw = (uint16_t)((v[0] & 0x1f3f) | 0x40);
    cpu_fpu_set_fsw(cpu, (uint16_t)v[1]);
    /* Only "empty" survives a load; the other tags follow from the contents. */
    uint16_t ftw = 0;
    for (unsigned p = 0; p < 8; p++) {
        if (((v[2] >> (2 * p)) & 3) == TAG_EMPTY) {
            ftw |= (uint16_t)(TAG_EMPTY << (2 * p));
        }
    }
    cpu->fpu.ftw = ftw;
    if (x87_env_real(cpu)) {
        cpu->fpu.fip = (v[3] & 0xffff) | ((v[4] >> 12) << 16);
        cpu->fpu.fop = v[4] & 0x7ff;
        cpu->fpu.fdp = (v[5] & 0xffff) | ((v[6] >> 12) << 16);
        cpu->fpu.fcs = 0;
        cpu->fpu.fds = 0;
    } else if (o16) {
        cpu->fpu.fip = v[3];
        cpu->fpu.fcs = (uint16_t)v[4];
        cpu->fpu.fdp = v[5];
        cpu->fpu.fds = (uint16_t)v[6];
    } else {
        cpu->fpu.fip = v[3];
        cpu->fpu.fcs = (uint16_t)v[4];
        cpu->fpu.fop = (v[4] >> 16) & 0x7ff;
        cpu->fpu.fdp = v[5];
        cpu->fpu.fds = (uint16_t)v[6];
    }
    /* An unmasked pending exception is re-armed by the loaded status word's ES bit. */
}

static void x87_fnstenv(struct cpu *cpu, const struct x86_insn *in, bool save)
{
    uint8_t b[108];
    bool o16 = in->opsize == 2;
    unsigned n = x87_env_size(in);
    x87_env_store(cpu, b, o16);
    if (save) {
        for (unsigned i = 0; i < 8; i++) {
            const union cpu_fpreg *r = x87_st(cpu, i);
            memcpy(b + n + 10 * i, &r->raw.mant, 8);
            memcpy(b + n + 10 * i + 8, &r->raw.sexp, 2);
        }
        n += 80;
    }
    cpu_st_buf(cpu, in->seg, cpu_insn_ea(cpu, in), b, n);
    if (save) {
        cpu_fpu_init_x87(cpu);
    } else {
        cpu->fpu.fcw |= FSW_EXC; /* FSTENV masks all exceptions afterwards */
    }
}

static void x87_fldenv(struct cpu *cpu, const struct x86_insn *in, bool restore)
{
    uint8_t b[108];
    bool o16 = in->opsize == 2;
    unsigned n = x87_env_size(in);
    cpu_ld_buf(cpu, in->seg, cpu_insn_ea(cpu, in), b, n + (restore ? 80 : 0));
    x87_env_load(cpu, b, o16);
    if (restore) {
        for (unsigned i = 0; i < 8; i++) {
            union cpu_fpreg *r = x87_st(cpu, i);
            memcpy(&r->raw.mant, b + n + 10 * i, 8);
            memcpy(&r->raw.sexp, b + n + 10 * i + 8, 2);
        }
    }
}

static void x87_fldcw(struct cpu *cpu, uint16_t cw)
{
    cpu->fpu.fcw = (uint16_t)((cw & 0x1f3f) | 0x40);
    /* ES/B follow whether any recorded exception is now unmasked. */
    if (cpu->fpu.fsw & ~cpu->fpu.fcw & FSW_EXC) {
        cpu->fpu.fsw |= CPU_FSW_ES | CPU_FSW_B;
    } else {
        cpu->fpu.fsw &= (uint16_t) ~(CPU_FSW_ES | CPU_FSW_B);
    }
}

static void x87_mem(struct cpu *cpu, const struct x86_insn *in, unsigned op, unsigned r)
{
    union cpu_fpreg v;
    static const enum x87_fmt arith_fmt[8] = {FMT_F32, 0, FMT_I32, 0, FMT_F64, 0, FMT_I16, 0};
    if (!(op & 1)) { /* D8 DA DC DE: arithmetic with a memory operand */
        enum x87_fmt fmt = arith_fmt[op];
        if (x87_empty(cpu, 0)) {
            /* The operand is still read (faults first), then the stack fault. */
            cpu_ld_buf(cpu, in->seg, cpu_insn_ea(cpu, in), &v, fmt_size[fmt]);
            if (r == 2 || r == 3) {
                x87_compare(cpu, 0, NULL, false, false, r == 3, false);
            } else {
                x87_arith(cpu, r, 0, NULL, 0, false);
            }
            return;
        }
        uint8_t buf[8] = {0};
        cpu_ld_buf(cpu, in->seg, cpu_insn_ea(cpu, in), buf, fmt_size[fmt]);
        memset(&v, 0, sizeof(v));
        v.raw = x87_st(cpu, 0)->raw;
        uint16_t hsw = x87_host_marith(r, op, X87_HOSTENV(cpu), &v.ld, buf);
        bool ok = x87_flags(cpu, hsw);
        if (r == 2 || r == 3) {
            /* The condition codes are set even when an unmasked exception is reported. */
            cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~FSW_COND) | (hsw & FSW_COND));
            if (ok && r == 3) {
                x87_pop(cpu);
            }
        } else {
            x87_cond_from(cpu, hsw);
            if (ok) {
                x87_write(cpu, 0, &v);
            }
        }
        return;
    }
    switch (op * 8 + r) {
    case 1 * 8 + 0: /* D9 /0 FLD m32fp */
        x87_fld_mem(cpu, in, FMT_F32);
        return;
    case 1 * 8 + 2:
    case 1 * 8 + 3:
        x87_fst_mem(cpu, in, FMT_F32, false, r == 3);
        return;
    case 1 * 8 + 4:
        x87_fldenv(cpu, in, false);
        return;
    case 1 * 8 + 5:
        x87_fldcw(cpu, cpu_ld16(cpu, in->seg, cpu_insn_ea(cpu, in)));
        return;
    case 1 * 8 + 6:
        x87_fnstenv(cpu, in, false);
        return;
    case 1 * 8 + 7:
        cpu_st16(cpu, in->seg, cpu_insn_ea(cpu, in), cpu->fpu.fcw);
        return;
    case 3 * 8 + 0:
        x87_fld_mem(cpu, in, FMT_I32);
        return;
    case 3 * 8 + 1:
        x87_fst_mem(cpu, in, FMT_I32, true, true);
        return;
    case 3 * 8 + 2:
    case 3 * 8 + 3:
        x87_fst_mem(cpu, in, FMT_I32, false, r == 3);
        return;
    case 3 * 8 + 5:
        x87_fld_mem(cpu, in, FMT_F80);
        return;
    case 3 * 8 + 7:
        x87_fst_mem(cpu, in, FMT_F80, false, true);
        return;
    case 5 * 8 + 0:
        x87_fld_mem(cpu, in, FMT_F64);
        return;
    case 5 * 8 + 1:
        x87_fst_mem(cpu, in, FMT_I64, true, true);
        return;
    case 5 * 8 + 2:
    case 5 * 8 + 3:
        x87_fst_mem(cpu, in, FMT_F64, false, r == 3);
        return;
    case 5 * 8 + 4:
        x87_fldenv(cpu, in, true);
        return;
    case 5 * 8 + 6:
        x87_fnstenv(cpu, in, true);
        return;
    case 5 * 8 + 7:
        cpu_st16(cpu, in->seg, cpu_insn_ea(cpu, in), cpu_fpu_get_fsw(cpu));
        return;
    case 7 * 8 + 0:
        x87_fld_mem(cpu, in, FMT_I16);
        return;
    case 7 * 8 + 1:
        x87_fst_mem(cpu, in, FMT_I16, true, true);
        return;
    case 7 * 8 + 2:
    case 7 * 8 + 3:
        x87_fst_mem(cpu, in, FMT_I16, false, r == 3);
        return;
    case 7 * 8 + 4:
        x87_fld_mem(cpu, in, FMT_BCD);
        return;
    case 7 * 8 + 5:
        x87_fld_mem(cpu, in, FMT_I64);
        return;
    case 7 * 8 + 6:
        x87_fst_mem(cpu, in, FMT_BCD, false, true);
        return;
    case 7 * 8 + 7:
        x87_fst_mem(cpu, in, FMT_I64, false, true);
        return;
    default:
        cpu_raise_ud(cpu);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Register forms.                                                                             */

static void x87_fxch(struct cpu *cpu, unsigned i)
{
    union cpu_fpreg a, b;
    if (x87_empty(cpu, 0) || x87_empty(cpu, i)) {
        if (!x87_underflow(cpu)) {
            return;
        }
        union cpu_fpreg ind;
        x87_set_indefinite(&ind);
        if (x87_empty(cpu, 0)) {
            x87_write(cpu, 0, &ind);
        }
        if (x87_empty(cpu, i)) {
            x87_write(cpu, i, &ind);
        }
    }
    a = *x87_st(cpu, 0);
    b = *x87_st(cpu, i);
    x87_write(cpu, 0, &b);
    x87_write(cpu, i, &a);
    cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
}

static void x87_fst_reg(struct cpu *cpu, unsigned i, bool pop)
{
    union cpu_fpreg v;
    if (x87_empty(cpu, 0)) {
        if (!x87_underflow(cpu)) {
            return;
        }
        x87_set_indefinite(&v);
    } else {
        v = *x87_st(cpu, 0);
    }
    x87_write(cpu, i, &v);
    cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
    if (pop) {
        x87_pop(cpu);
    }
}

static void x87_fxam(struct cpu *cpu)
{
    const union cpu_fpreg *r = x87_st(cpu, 0);
    uint16_t c;
    unsigned e = r->raw.sexp & 0x7fff;
    uint64_t m = r->raw.mant;
    if (x87_empty(cpu, 0)) {
        c = CPU_FSW_C3 | CPU_FSW_C0;
    } else if (e == 0x7fff) {
        if (!(m >> 63)) {
            c = 0; /* unsupported */
        } else {
            c = (m << 1) ? CPU_FSW_C0 : (CPU_FSW_C2 | CPU_FSW_C0); /* NaN : infinity */
        }
    } else if (e == 0) {
        c = m == 0 ? CPU_FSW_C3 : (CPU_FSW_C3 | CPU_FSW_C2); /* zero : denormal */
    } else {
        c = (m >> 63) ? CPU_FSW_C2 : 0; /* normal : unnormal (unsupported) */
    }
    if (r->raw.sexp & 0x8000) {
        c |= CPU_FSW_C1;
    }
    cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~FSW_COND) | c);
}

static void x87_sign_op(struct cpu *cpu, bool abs)
{
    union cpu_fpreg v;
    if (x87_empty(cpu, 0)) {
        if (x87_underflow(cpu)) {
            x87_set_indefinite(&v);
            x87_write(cpu, 0, &v);
        }
        return;
    }
    v = *x87_st(cpu, 0);
    v.raw.sexp = abs ? (v.raw.sexp & 0x7fff) : (v.raw.sexp ^ 0x8000);
    x87_write(cpu, 0, &v);
    cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
}

static void x87_fcmov(struct cpu *cpu, unsigned cc, unsigned i)
{
    if (x87_empty(cpu, 0) || x87_empty(cpu, i)) {
        if (x87_underflow(cpu)) {
            union cpu_fpreg v;
            x87_set_indefinite(&v);
            x87_write(cpu, 0, &v);
        }
        return;
    }
    if (cpu_cond(cpu, cc)) {
        union cpu_fpreg v = *x87_st(cpu, i);
        x87_write(cpu, 0, &v);
    }
    cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
}

static void x87_reg(struct cpu *cpu, const struct x86_insn *in, unsigned op, unsigned r, unsigned i)
{
    static const uint8_t fcmov_cc[4] = {0x2, 0x4, 0x6, 0xa}; /* B E BE U (P) */
    switch (op) {
    case 0: /* D8 */
        if (r == 2 || r == 3) {
            x87_compare(cpu, i, NULL, false, false, r == 3, false);
        } else {
            x87_arith(cpu, r, 0, NULL, (int)i, false);
        }
        return;
    case 1: /* D9 */
        switch (r) {
        case 0: {
            union cpu_fpreg v;
            if (x87_empty(cpu, i)) {
                if (!x87_underflow(cpu)) {
                    return;
                }
                x87_set_indefinite(&v);
            } else {
                v = *x87_st(cpu, i);
            }
            x87_push(cpu, &v);
            return;
        }
        case 1:
            x87_fxch(cpu, i);
            return;
        case 2:
            if (i != 0) {
                cpu_raise_ud(cpu);
            }
            return; /* FNOP */
        case 3:
            x87_fst_reg(cpu, i, true); /* FSTP1 alias */
            return;
        case 4:
            switch (i) {
            case 0:
                x87_sign_op(cpu, false);
                return;
            case 1:
                x87_sign_op(cpu, true);
                return;
            case 4:
                x87_compare(cpu, 0, NULL, false, false, 0, true);
                return;
            case 5:
                x87_fxam(cpu);
                return;
            default:
                cpu_raise_ud(cpu);
            }
        case 5: {
            if (i == 7) {
                cpu_raise_ud(cpu);
            }
            union cpu_fpreg v;
            memset(&v, 0, sizeof(v));
            x87_host_const(i, X87_HOSTENV(cpu), &v.ld);
            x87_push(cpu, &v);
            return;
        }
        case 6:
            switch (i) {
            case 0:
                x87_unary(cpu, HOP_F2XM1);
                return;
            case 1:
                x87_binary(cpu, HOP_YL2X, true);
                return;
            case 2:
                x87_push2(cpu, HOP_PTAN);
                return;
            case 3:
                x87_binary(cpu, HOP_PATAN, true);
                return;
            case 4:
                x87_push2(cpu, HOP_XTRACT);
                return;
            case 5:
                x87_binary(cpu, HOP_PREM1, false);
                return;
            case 6:
                cpu->fpu.top = (cpu->fpu.top - 1) & 7;
                cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
                return;
            default:
                cpu->fpu.top = (cpu->fpu.top + 1) & 7;
                cpu->fpu.fsw &= (uint16_t)~CPU_FSW_C1;
                return;
            }
        default:
            switch (i) {
            case 0:
                x87_binary(cpu, HOP_PREM, false);
                return;
            case 1:
                x87_binary(cpu, HOP_YL2XP1, true);
                return;
            case 2:
                x87_unary(cpu, HOP_SQRT);
                return;
            case 3:
                x87_push2(cpu, HOP_SINCOS);
                return;
            case 4:
                x87_unary(cpu, HOP_RNDINT);
                return;
            case 5:
                x87_binary(cpu, HOP_SCALE, false);
                return;
            case 6:
                x87_unary(cpu, HOP_SIN);
                return;
            default:
                x87_unary(cpu, HOP_COS);
                return;
            }
        }
    case 2: /* DA */
        if (r < 4) {
            x87_fcmov(cpu, fcmov_cc[r], i);
        } else if (r == 5 && i == 1) {
            x87_compare(cpu, 1, NULL, true, false, 2, false); /* FUCOMPP */
        } else {
            cpu_raise_ud(cpu);
        }
        return;
    case 3: /* DB */
        if (r < 4) {
            x87_fcmov(cpu, fcmov_cc[r] ^ 1u, i);
        } else if (r == 4) {
            switch (i) {
            case 0: /* FENI, FDISI, FSETPM: no-ops since the 387 */
            case 1:
            case 4:
                return;
            case 2: /* FNCLEX */
                cpu->fpu.fsw &= (uint16_t) ~(FSW_EXC | CPU_FSW_SF | CPU_FSW_ES | CPU_FSW_B);
                return;
            case 3:
                cpu_fpu_init_x87(cpu);
                return;
            default:
                cpu_raise_ud(cpu);
            }
        } else if (r == 5 || r == 6) {
            x87_compare(cpu, i, NULL, r == 5, true, 0, false);
        } else {
            cpu_raise_ud(cpu);
        }
        return;
    case 4: /* DC: ST(i) = ST(i) op ST(0), with SUB/SUBR and DIV/DIVR swapped */
        if (r == 2 || r == 3) {
            x87_compare(cpu, i, NULL, false, false, r == 3, false);
        } else {
            x87_arith(cpu, r >= 4 ? r ^ 1u : r, i, NULL, 0, false);
        }
        return;
    case 5: /* DD */
        switch (r) {
        case 0:
            x87_set_tag(cpu, x87_phys(cpu, i), TAG_EMPTY);
            return;
        case 1:
            x87_fxch(cpu, i);
            return;
        case 2:
        case 3:
            x87_fst_reg(cpu, i, r == 3);
            return;
        case 4:
        case 5:
            x87_compare(cpu, i, NULL, true, false, r == 5, false);
            return;
        default:
            cpu_raise_ud(cpu);
        }
    case 6: /* DE: the popping forms */
        if (r == 2) {
            x87_compare(cpu, i, NULL, false, false, 1, false);
        } else if (r == 3) {
            if (i != 1) {
                cpu_raise_ud(cpu);
            }
            x87_compare(cpu, 1, NULL, false, false, 2, false);
        } else {
            x87_arith(cpu, r >= 4 ? r ^ 1u : r, i, NULL, 0, true);
        }
        return;
    default: /* DF */
        switch (r) {
        case 0: /* FFREEP */
            x87_set_tag(cpu, x87_phys(cpu, i), TAG_EMPTY);
            x87_pop(cpu);
            return;
        case 1:
            x87_fxch(cpu, i);
            return;
        case 2:
        case 3:
            x87_fst_reg(cpu, i, true);
            return;
        case 4:
            if (i != 0) {
                cpu_raise_ud(cpu);
            }
            cpu->r[CPU_RAX] = (cpu->r[CPU_RAX] & ~0xffffull) | cpu_fpu_get_fsw(cpu);
            return;
        case 5:
        case 6:
            x87_compare(cpu, i, NULL, r == 5, true, 1, false);
            return;
        default:
            cpu_raise_ud(cpu);
        }
    }
}

/* Control instructions that neither check for pending exceptions nor update FIP/FOP. */
static bool x87_is_control(unsigned op, unsigned r, unsigned mod, unsigned i)
{
    if (mod != 3) {
        return (op == 1 && r >= 4) || (op == 5 && (r == 4 || r >= 6));
    }
    return (op == 3 && r == 4) || (op == 7 && r == 4 && i == 0);
}

void cpu_exec_x87(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned op = in->op & 7, r = in->reg & 7, i = in->rm & 7;
    if (cpu->cr0 & (CPU_CR0_EM | CPU_CR0_TS)) {
        cpu_raise(cpu, X86_EXC_NM, CPU_NO_ERROR);
    }
    bool control = x87_is_control(op, r, in->mod, i);
    /* FLDCW/FLDENV/FRSTOR wait; FNSTCW/FNSTENV/FNSAVE/FNSTSW/FNCLEX/FNINIT do not. */
    bool waits =
        !control || (in->mod != 3 && ((op == 1 && (r == 4 || r == 5)) || (op == 5 && r == 4)));
    if (waits) {
        cpu_fpu_check_pending(cpu);
    }
    if (!control) {
        cpu->fpu.fop = (uint16_t)(((in->op & 7u) << 8) | in->modrm);
        cpu->fpu.fip = cpu->insn_rip;
        cpu->fpu.fcs = cpu->seg[CPU_SEG_CS].sel;
        if (in->mod != 3) {
            cpu->fpu.fdp = cpu_insn_ea(cpu, in);
            cpu->fpu.fds = cpu->seg[in->seg].sel;
        }
    }
    if (in->mod != 3) {
        x87_mem(cpu, in, op, r);
    } else {
        x87_reg(cpu, in, op, r, i);
    }
}
