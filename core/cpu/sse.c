/* MMX, SSE, SSE2, SSE3, SSSE3, SSE4.1 and SSE4.2 for the soft CPU (0F, 0F 38 and 0F 3A maps).
 *
 * Exactness strategy: the host is an x86-64 with SSE4.2, so every operation whose result
 * depends on rounding, denormals or NaN rules runs as the host's own instruction inside one
 * asm statement that loads the guest's MXCSR (with all exceptions masked and the flags
 * cleared), executes, and reads the flags back. The guest's unmasked exceptions are then
 * decided here (#XM / #UD) before the destination is written. Integer lane operations run as
 * host instructions too (cheap and exactly right); byte/lane shuffles with immediates and the
 * SSE4.2 string compares are plain C.
 *
 * MMX instructions reuse the 128-bit host instruction on the 64-bit operands placed in the
 * low halves: lane-wise operations give the MMX result in the low half; PACK and the
 * horizontal adds get both operands concatenated; PUNPCKH* is the high half of PUNPCKL*.
 * No host MMX instruction is ever executed, so the host x87 state stays untouched. */
#include "core/cpu/cpu.h"

typedef long long sse_v2di __attribute__((vector_size(16)));
typedef void (*sse_int_fn)(union cpu_xmm *d, const union cpu_xmm *s);
typedef uint32_t (*sse_fp_fn)(union cpu_xmm *d, const union cpu_xmm *s, uint32_t csr);

#define MX_IE 0x01u
#define MX_DE 0x02u
#define MX_ZE 0x04u
#define MX_UE 0x10u
#define MX_UM 0x800u

static inline sse_v2di xload(const union cpu_xmm *x)
{
    sse_v2di v;
    memcpy(&v, x, 16);
    return v;
}

static inline void xstore(union cpu_xmm *x, sse_v2di v)
{
    memcpy(x, &v, 16);
}

/* ------------------------------------------------------------------------------------------ */
/* Host instruction wrappers.                                                                  */

#define SSE_INT_FN(name, insn)                                                                     \
    static void name(union cpu_xmm *d, const union cpu_xmm *s)                                     \
    {                                                                                              \
        sse_v2di a = xload(d), b = xload(s);                                                       \
        __asm__(insn " %1, %0" : "+x"(a) : "x"(b));                                                \
        xstore(d, a);                                                                              \
    }

SSE_INT_FN(h_punpcklbw, "punpcklbw")
SSE_INT_FN(h_punpcklwd, "punpcklwd")
SSE_INT_FN(h_punpckldq, "punpckldq")
SSE_INT_FN(h_packsswb, "packsswb")
SSE_INT_FN(h_pcmpgtb, "pcmpgtb")
SSE_INT_FN(h_pcmpgtw, "pcmpgtw")
SSE_INT_FN(h_pcmpgtd, "pcmpgtd")
SSE_INT_FN(h_packuswb, "packuswb")
SSE_INT_FN(h_punpckhbw, "punpckhbw")
SSE_INT_FN(h_punpckhwd, "punpckhwd")
SSE_INT_FN(h_punpckhdq, "punpckhdq")
SSE_INT_FN(h_packssdw, "packssdw")
SSE_INT_FN(h_punpcklqdq, "punpcklqdq")
SSE_INT_FN(h_punpckhqdq, "punpckhqdq")
SSE_INT_FN(h_pcmpeqb, "pcmpeqb")
SSE_INT_FN(h_pcmpeqw, "pcmpeqw")
SSE_INT_FN(h_pcmpeqd, "pcmpeqd")
SSE_INT_FN(h_psrlw, "psrlw")
SSE_INT_FN(h_psrld, "psrld")
SSE_INT_FN(h_psrlq, "psrlq")
SSE_INT_FN(h_paddq, "paddq")
SSE_INT_FN(h_pmullw, "pmullw")
SSE_INT_FN(h_psubusb, "psubusb")
SSE_INT_FN(h_psubusw, "psubusw")
SSE_INT_FN(h_pminub, "pminub")
SSE_INT_FN(h_pand, "pand")
SSE_INT_FN(h_paddusb, "paddusb")
SSE_INT_FN(h_paddusw, "paddusw")
SSE_INT_FN(h_pmaxub, "pmaxub")
SSE_INT_FN(h_pandn, "pandn")
SSE_INT_FN(h_pavgb, "pavgb")
SSE_INT_FN(h_psraw, "psraw")
SSE_INT_FN(h_psrad, "psrad")
SSE_INT_FN(h_pavgw, "pavgw")
SSE_INT_FN(h_pmulhuw, "pmulhuw")
SSE_INT_FN(h_pmulhw, "pmulhw")
SSE_INT_FN(h_psubsb, "psubsb")
SSE_INT_FN(h_psubsw, "psubsw")
SSE_INT_FN(h_pminsw, "pminsw")
SSE_INT_FN(h_por, "por")
SSE_INT_FN(h_paddsb, "paddsb")
SSE_INT_FN(h_paddsw, "paddsw")
SSE_INT_FN(h_pmaxsw, "pmaxsw")
SSE_INT_FN(h_pxor, "pxor")
SSE_INT_FN(h_psllw, "psllw")
SSE_INT_FN(h_pslld, "pslld")
SSE_INT_FN(h_psllq, "psllq")
SSE_INT_FN(h_pmuludq, "pmuludq")
SSE_INT_FN(h_pmaddwd, "pmaddwd")
SSE_INT_FN(h_psadbw, "psadbw")
SSE_INT_FN(h_psubb, "psubb")
SSE_INT_FN(h_psubw, "psubw")
SSE_INT_FN(h_psubd, "psubd")
SSE_INT_FN(h_psubq, "psubq")
SSE_INT_FN(h_paddb, "paddb")
SSE_INT_FN(h_paddw, "paddw")
SSE_INT_FN(h_paddd, "paddd")
/* SSSE3 */
SSE_INT_FN(h_pshufb, "pshufb")
SSE_INT_FN(h_phaddw, "phaddw")
SSE_INT_FN(h_phaddd, "phaddd")
SSE_INT_FN(h_phaddsw, "phaddsw")
SSE_INT_FN(h_pmaddubsw, "pmaddubsw")
SSE_INT_FN(h_phsubw, "phsubw")
SSE_INT_FN(h_phsubd, "phsubd")
SSE_INT_FN(h_phsubsw, "phsubsw")
SSE_INT_FN(h_psignb, "psignb")
SSE_INT_FN(h_psignw, "psignw")
SSE_INT_FN(h_psignd, "psignd")
SSE_INT_FN(h_pmulhrsw, "pmulhrsw")
SSE_INT_FN(h_pabsb, "pabsb")
SSE_INT_FN(h_pabsw, "pabsw")
SSE_INT_FN(h_pabsd, "pabsd")
/* SSE4.1 / SSE4.2 */
SSE_INT_FN(h_pmuldq, "pmuldq")
SSE_INT_FN(h_pcmpeqq, "pcmpeqq")
SSE_INT_FN(h_packusdw, "packusdw")
SSE_INT_FN(h_pcmpgtq, "pcmpgtq")
SSE_INT_FN(h_pminsb, "pminsb")
SSE_INT_FN(h_pminsd, "pminsd")
SSE_INT_FN(h_pminuw, "pminuw")
SSE_INT_FN(h_pminud, "pminud")
SSE_INT_FN(h_pmaxsb, "pmaxsb")
SSE_INT_FN(h_pmaxsd, "pmaxsd")
SSE_INT_FN(h_pmaxuw, "pmaxuw")
SSE_INT_FN(h_pmaxud, "pmaxud")
SSE_INT_FN(h_pmulld, "pmulld")
SSE_INT_FN(h_phminposuw, "phminposuw")

/* Runs `text` (operands %[a] destination, %[b] source) with the host MXCSR = csr. Returns the
 * host MXCSR afterwards in `out`. One asm statement so the compiler cannot move FP work of
 * its own between the MXCSR switch and the instruction. */
#define SSE_FP_ASM(text, a, b, csr, out)                                                           \
    do {                                                                                           \
        uint32_t sv_;                                                                              \
        __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[in]\n\t" text                                 \
                         "\n\tstmxcsr %[out]\n\tldmxcsr %[sv]"                                     \
                         : [a] "+x"(a), [sv] "=m"(sv_), [out] "=m"(out)                            \
                         : [b] "x"(b), [in] "m"(csr));                                             \
    } while (0)

#define SSE_FP_FN(name, insn)                                                                      \
    static uint32_t name(union cpu_xmm *d, const union cpu_xmm *s, uint32_t csr)                   \
    {                                                                                              \
        sse_v2di a = xload(d), b = xload(s);                                                       \
        uint32_t out;                                                                              \
        SSE_FP_ASM(insn " %[b], %[a]", a, b, csr, out);                                            \
        xstore(d, a);                                                                              \
        return out;                                                                                \
    }

#define SSE_FP_4(op)                                                                               \
    SSE_FP_FN(h_##op##ps, #op "ps")                                                                \
    SSE_FP_FN(h_##op##pd, #op "pd")                                                                \
    SSE_FP_FN(h_##op##ss, #op "ss")                                                                \
    SSE_FP_FN(h_##op##sd, #op "sd")

SSE_FP_4(sqrt)
SSE_FP_4(add)
SSE_FP_4(mul)
SSE_FP_4(sub)
SSE_FP_4(min)
SSE_FP_4(div)
SSE_FP_4(max)
SSE_FP_FN(h_rsqrtps, "rsqrtps")
SSE_FP_FN(h_rsqrtss, "rsqrtss")
SSE_FP_FN(h_rcpps, "rcpps")
SSE_FP_FN(h_rcpss, "rcpss")
SSE_FP_FN(h_cvtps2pd, "cvtps2pd")
SSE_FP_FN(h_cvtpd2ps, "cvtpd2ps")
SSE_FP_FN(h_cvtss2sd, "cvtss2sd")
SSE_FP_FN(h_cvtsd2ss, "cvtsd2ss")
SSE_FP_FN(h_cvtdq2ps, "cvtdq2ps")
SSE_FP_FN(h_cvtps2dq, "cvtps2dq")
SSE_FP_FN(h_cvttps2dq, "cvttps2dq")
SSE_FP_FN(h_cvttpd2dq, "cvttpd2dq")
SSE_FP_FN(h_cvtdq2pd, "cvtdq2pd")
SSE_FP_FN(h_cvtpd2dq, "cvtpd2dq")
SSE_FP_FN(h_addsubpd, "addsubpd")
SSE_FP_FN(h_addsubps, "addsubps")
SSE_FP_FN(h_haddpd, "haddpd")
SSE_FP_FN(h_haddps, "haddps")
SSE_FP_FN(h_hsubpd, "hsubpd")
SSE_FP_FN(h_hsubps, "hsubps")

#define SSE_CMP_CASE(insn, n)                                                                      \
    case n:                                                                                        \
        SSE_FP_ASM(insn " $" #n ", %[b], %[a]", a, b, csr, out);                                   \
        break;
#define SSE_CMP_FN(name, insn)                                                                     \
    static uint32_t name(union cpu_xmm *d, const union cpu_xmm *s, uint32_t csr, unsigned imm)     \
    {                                                                                              \
        sse_v2di a = xload(d), b = xload(s);                                                       \
        uint32_t out = 0;                                                                          \
        switch (imm & 7) {                                                                         \
            SSE_CMP_CASE(insn, 0)                                                                  \
            SSE_CMP_CASE(insn, 1)                                                                  \
            SSE_CMP_CASE(insn, 2)                                                                  \
            SSE_CMP_CASE(insn, 3)                                                                  \
            SSE_CMP_CASE(insn, 4)                                                                  \
            SSE_CMP_CASE(insn, 5)                                                                  \
            SSE_CMP_CASE(insn, 6)                                                                  \
            SSE_CMP_CASE(insn, 7)                                                                  \
        }                                                                                          \
        xstore(d, a);                                                                              \
        return out;                                                                                \
    }

SSE_CMP_FN(h_cmpps, "cmpps")
SSE_CMP_FN(h_cmppd, "cmppd")
SSE_CMP_FN(h_cmpss, "cmpss")
SSE_CMP_FN(h_cmpsd, "cmpsd")

/* ROUND*: the rounding mode is put into the host MXCSR, so only "use MXCSR.RC" with and
 * without precision suppression are needed as immediates. */
#define SSE_ROUND_FN(name, insn)                                                                   \
    static uint32_t name(union cpu_xmm *d, const union cpu_xmm *s, uint32_t csr, unsigned imm)     \
    {                                                                                              \
        sse_v2di a = xload(d), b = xload(s);                                                       \
        uint32_t out;                                                                              \
        if (!(imm & 4)) {                                                                          \
            csr = (csr & ~CPU_MXCSR_RC) | ((imm & 3u) << 13);                                      \
        }                                                                                          \
        if (imm & 8) {                                                                             \
            SSE_FP_ASM(insn " $12, %[b], %[a]", a, b, csr, out);                                   \
        } else {                                                                                   \
            SSE_FP_ASM(insn " $4, %[b], %[a]", a, b, csr, out);                                    \
        }                                                                                          \
        xstore(d, a);                                                                              \
        return out;                                                                                \
    }

SSE_ROUND_FN(h_roundps, "roundps")
SSE_ROUND_FN(h_roundpd, "roundpd")
SSE_ROUND_FN(h_roundss, "roundss")
SSE_ROUND_FN(h_roundsd, "roundsd")

/* (U)COMISS/SD: returns the host MXCSR, flags in *zpc (ZF bit 0, PF bit 1, CF bit 2). */
#define SSE_COMI_FN(name, insn)                                                                    \
    static uint32_t name(const union cpu_xmm *d, const union cpu_xmm *s, uint32_t csr,             \
                         unsigned *zpc)                                                            \
    {                                                                                              \
        sse_v2di a = xload(d), b = xload(s);                                                       \
        uint32_t out, sv;                                                                          \
        uint8_t z, p, c;                                                                           \
        __asm__ volatile(                                                                          \
            "stmxcsr %[sv]\n\tldmxcsr %[in]\n\t" insn " %[b], %[a]\n\t"                            \
            "setz %[z]\n\tsetp %[p]\n\tsetc %[c]\n\t"                                              \
            "stmxcsr %[out]\n\tldmxcsr %[sv]"                                                      \
            : [sv] "=m"(sv), [out] "=m"(out), [z] "=&q"(z), [p] "=&q"(p), [c] "=&q"(c)             \
            : [a] "x"(a), [b] "x"(b), [in] "m"(csr)                                                \
            : "cc");                                                                               \
        *zpc = z | (p << 1) | (c << 2);                                                            \
        return out;                                                                                \
    }

SSE_COMI_FN(h_comiss, "comiss")
SSE_COMI_FN(h_ucomiss, "ucomiss")
SSE_COMI_FN(h_comisd, "comisd")
SSE_COMI_FN(h_ucomisd, "ucomisd")

/* Integer -> scalar FP (CVTSI2SS/SD). */
#define SSE_CVTSI_FN(name, insn, type)                                                             \
    static uint32_t name(union cpu_xmm *d, type v, uint32_t csr)                                   \
    {                                                                                              \
        sse_v2di a = xload(d);                                                                     \
        uint32_t out, sv;                                                                          \
        __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[in]\n\t" insn " %[b], %[a]\n\t"               \
                         "stmxcsr %[out]\n\tldmxcsr %[sv]"                                         \
                         : [a] "+x"(a), [sv] "=m"(sv), [out] "=m"(out)                             \
                         : [b] "r"(v), [in] "m"(csr));                                             \
        xstore(d, a);                                                                              \
        return out;                                                                                \
    }

SSE_CVTSI_FN(h_cvtsi2ss32, "cvtsi2ssl", int32_t)
SSE_CVTSI_FN(h_cvtsi2ss64, "cvtsi2ssq", int64_t)
SSE_CVTSI_FN(h_cvtsi2sd32, "cvtsi2sdl", int32_t)
SSE_CVTSI_FN(h_cvtsi2sd64, "cvtsi2sdq", int64_t)

/* Scalar FP -> integer (CVT(T)SS2SI, CVT(T)SD2SI). */
#define SSE_CVT2SI_FN(name, insn, type)                                                            \
    static uint32_t name(const union cpu_xmm *s, type *r, uint32_t csr)                            \
    {                                                                                              \
        sse_v2di b = xload(s);                                                                     \
        uint32_t out, sv;                                                                          \
        type v;                                                                                    \
        __asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[in]\n\t" insn " %[b], %[r]\n\t"               \
                         "stmxcsr %[out]\n\tldmxcsr %[sv]"                                         \
                         : [r] "=&r"(v), [sv] "=m"(sv), [out] "=m"(out)                            \
                         : [b] "x"(b), [in] "m"(csr));                                             \
        *r = v;                                                                                    \
        return out;                                                                                \
    }

SSE_CVT2SI_FN(h_cvtss2si32, "cvtss2si", uint32_t)
SSE_CVT2SI_FN(h_cvtss2si64, "cvtss2si", uint64_t)
SSE_CVT2SI_FN(h_cvttss2si32, "cvttss2si", uint32_t)
SSE_CVT2SI_FN(h_cvttss2si64, "cvttss2si", uint64_t)
SSE_CVT2SI_FN(h_cvtsd2si32, "cvtsd2si", uint32_t)
SSE_CVT2SI_FN(h_cvtsd2si64, "cvtsd2si", uint64_t)
SSE_CVT2SI_FN(h_cvttsd2si32, "cvttsd2si", uint32_t)
SSE_CVT2SI_FN(h_cvttsd2si64, "cvttsd2si", uint64_t)

/* ------------------------------------------------------------------------------------------ */
/* Checks, operands, MXCSR.                                                                    */

void cpu_fpu_check_sse(struct cpu *cpu)
{
    if (CPU_UNLIKELY((cpu->cr0 & CPU_CR0_EM) || !(cpu->cr4 & CPU_CR4_OSFXSR))) {
        cpu_raise_ud(cpu);
    }
    if (CPU_UNLIKELY(cpu->cr0 & CPU_CR0_TS)) {
        cpu_raise(cpu, X86_EXC_NM, CPU_NO_ERROR);
    }
}

void cpu_fpu_check_mmx(struct cpu *cpu)
{
    if (CPU_UNLIKELY(cpu->cr0 & CPU_CR0_EM)) {
        cpu_raise_ud(cpu);
    }
    if (CPU_UNLIKELY(cpu->cr0 & CPU_CR0_TS)) {
        cpu_raise(cpu, X86_EXC_NM, CPU_NO_ERROR);
    }
    cpu_fpu_check_pending(cpu);
}

/* x87 -> MMX transition (SDM vol. 1, 9.5.1): TOP = 0 and every register tagged valid. */
static inline void mmx_enter(struct cpu *cpu)
{
    cpu->fpu.top = 0;
    cpu->fpu.ftw = 0;
}

static inline uint64_t mm_get(const struct cpu *cpu, unsigned n)
{
    return cpu->fpu.st[n & 7].raw.mant;
}

/* An MMX write also sets the exponent field to all ones (SDM vol. 1, 9.5.2). */
static inline void mm_set(struct cpu *cpu, unsigned n, uint64_t v)
{
    cpu->fpu.st[n & 7].raw.mant = v;
    cpu->fpu.st[n & 7].raw.sexp = 0xffff;
}

/* The linear address of the memory operand, for the 16-byte alignment rule. */
static uint64_t sse_ea_lin(const struct cpu *cpu, const struct x86_insn *in, uint64_t ea)
{
    if (cpu->mode == CPU_MODE_LONG64 && in->seg < CPU_SEG_FS) {
        return ea;
    }
    return ea + cpu->seg[in->seg].base;
}

enum { SSE_U16 = 17 }; /* size code: 16 bytes without the alignment rule */

/* Load the memory operand of size 2/4/8/16 (zero-filled above), raising #GP(0) when a
 * 16-byte operand of an aligned form is misaligned. */
static void sse_ld_mem(struct cpu *cpu, const struct x86_insn *in, union cpu_xmm *t, unsigned size)
{
    uint64_t ea = cpu_insn_ea(cpu, in);
    memset(t, 0, sizeof(*t));
    switch (size) {
    case 2:
        t->w[0] = cpu_ld16(cpu, in->seg, ea);
        break;
    case 4:
        t->l[0] = cpu_ld32(cpu, in->seg, ea);
        break;
    case 8:
        t->q[0] = cpu_ld64(cpu, in->seg, ea);
        break;
    case 16:
        if (CPU_UNLIKELY(sse_ea_lin(cpu, in, ea) & 15)) {
            cpu_raise_gp0(cpu);
        }
        cpu_ld128(cpu, in->seg, ea, t);
        break;
    default:
        cpu_ld128(cpu, in->seg, ea, t);
        break;
    }
}

/* The xmm/m operand: the register, or the memory operand loaded into t. */
static const union cpu_xmm *sse_src(struct cpu *cpu, const struct x86_insn *in, union cpu_xmm *t,
                                    unsigned size)
{
    if (in->mod == 3) {
        return &cpu->fpu.xmm[in->rm];
    }
    sse_ld_mem(cpu, in, t, size);
    return t;
}

static void sse_st_mem(struct cpu *cpu, const struct x86_insn *in, const union cpu_xmm *v,
                       unsigned size)
{
    uint64_t ea = cpu_insn_ea(cpu, in);
    switch (size) {
    case 4:
        cpu_st32(cpu, in->seg, ea, v->l[0]);
        break;
    case 8:
        cpu_st64(cpu, in->seg, ea, v->q[0]);
        break;
    case 16:
        if (CPU_UNLIKELY(sse_ea_lin(cpu, in, ea) & 15)) {
            cpu_raise_gp0(cpu);
        }
        cpu_st128(cpu, in->seg, ea, v);
        break;
    default:
        cpu_st128(cpu, in->seg, ea, v);
        break;
    }
}

static uint64_t mmx_src(struct cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3) {
        return mm_get(cpu, in->rm);
    }
    return cpu_ld64(cpu, in->seg, cpu_insn_ea(cpu, in));
}

/* Host MXCSR for an operation: the guest's RC/FZ/DAZ, all exceptions masked, flags clear. */
static inline uint32_t sse_csr(const struct cpu *cpu)
{
    return (cpu->fpu.mxcsr & (CPU_MXCSR_RC | CPU_MXCSR_FZ | CPU_MXCSR_DAZ)) | CPU_MXCSR_MASKS;
}

/* Fold the flags of a host operation into the guest MXCSR; unmasked ones raise #XM (or #UD
 * without CR4.OSXMMEXCPT) before the caller writes its destination (SDM vol. 1, 11.5.1:
 * unmasked pre-computation exceptions suppress the post-computation ones). */
static void sse_fp_done(struct cpu *cpu, uint32_t out)
{
    uint32_t f = out & CPU_MXCSR_FLAGS;
    uint32_t unmasked = f & ~(cpu->fpu.mxcsr >> 7) & CPU_MXCSR_FLAGS;
    if (CPU_UNLIKELY(unmasked != 0)) {
        uint32_t pre = f & (MX_IE | MX_DE | MX_ZE);
        cpu->fpu.mxcsr |= (pre & unmasked) ? pre : f;
        cpu_raise(cpu, (cpu->cr4 & CPU_CR4_OSXMMEXCPT) ? X86_EXC_XM : X86_EXC_UD, CPU_NO_ERROR);
    }
    cpu->fpu.mxcsr |= f;
}

static bool sse_has(const struct cpu *cpu, uint32_t f1_ecx_bit)
{
    return (cpu->feat.f1_ecx & f1_ecx_bit) != 0;
}

static void sse_need(struct cpu *cpu, uint32_t f1_ecx_bit)
{
    if (CPU_UNLIKELY(!sse_has(cpu, f1_ecx_bit))) {
        cpu_raise_ud(cpu);
    }
}

static void set_arith_flags(struct cpu *cpu, uint64_t fl)
{
    uint64_t rf = cpu_get_rflags(cpu) & ~(uint64_t)CPU_FL_ARITH;
    cpu_set_rflags(cpu, rf | fl);
}

/* ------------------------------------------------------------------------------------------ */
/* Generic shapes.                                                                             */

enum { MMX_LANE = 0, MMX_HIGH, MMX_CONCAT };

static void mmx_binop(struct cpu *cpu, const struct x86_insn *in, sse_int_fn fn, int kind)
{
    cpu_fpu_check_mmx(cpu);
    uint64_t s;
    unsigned op = in->op & 0x3ff;
    if (in->mod != 3 && op >= (X86_MAP_0F | 0x60) && op <= (X86_MAP_0F | 0x62)) {
        /* MMX PUNPCKL* read only m32 (the low halves): no fault on the next dword. */
        s = cpu_ld32(cpu, in->seg, cpu_insn_ea(cpu, in));
    } else {
        s = mmx_src(cpu, in);
    }
    union cpu_xmm a = {.q = {mm_get(cpu, in->reg), 0}};
    union cpu_xmm b = {.q = {s, 0}};
    if (kind == MMX_CONCAT) {
        a.q[1] = s;
        b = a;
    }
    fn(&a, &b);
    mmx_enter(cpu);
    mm_set(cpu, in->reg, kind == MMX_HIGH ? a.q[1] : a.q[0]);
}

static void xmm_binop(struct cpu *cpu, const struct x86_insn *in, sse_int_fn fn, unsigned size)
{
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *s = sse_src(cpu, in, &t, size);
    fn(&cpu->fpu.xmm[in->reg], s);
}

/* With underflow unmasked, a tiny result signals UE even when it is exact (IEEE 754 trap
 * semantics); the masked host run only reports tiny-and-inexact. Returns MX_UE when an
 * add/sub/mul/div/horizontal result lane is a nonzero denormal. */
static uint32_t sse_exact_tiny(const struct x86_insn *in, const union cpu_xmm *r)
{
    unsigned op = in->op & 0xff;
    bool f64;
    unsigned lanes;
    if (op == 0x58 || op == 0x59 || op == 0x5c || op == 0x5e) {
        f64 = in->simd == X86_SIMD_66 || in->simd == X86_SIMD_F2;
        lanes = in->simd == X86_SIMD_NONE ? 4 : in->simd == X86_SIMD_66 ? 2 : 1;
    } else if (op == 0x7c || op == 0x7d || op == 0xd0) {
        f64 = in->simd == X86_SIMD_66;
        lanes = f64 ? 2 : 4;
    } else {
        return 0;
    }
    for (unsigned i = 0; i < lanes; i++) {
        bool tiny = f64 ? ((r->q[i] & 0x7ff0000000000000ull) == 0 && (r->q[i] << 1) != 0)
                        : ((r->l[i] & 0x7f800000u) == 0 && (r->l[i] << 1) != 0);
        if (tiny) {
            return MX_UE;
        }
    }
    return 0;
}

static void xmm_fpop(struct cpu *cpu, const struct x86_insn *in, sse_fp_fn fn, unsigned size)
{
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *s = sse_src(cpu, in, &t, size);
    union cpu_xmm r = cpu->fpu.xmm[in->reg];
    uint32_t out = fn(&r, s, sse_csr(cpu));
    if (CPU_UNLIKELY(!(cpu->fpu.mxcsr & MX_UM)) && !(out & MX_UE)) {
        out |= sse_exact_tiny(in, &r);
    }
    sse_fp_done(cpu, out);
    cpu->fpu.xmm[in->reg] = r;
}

/* ------------------------------------------------------------------------------------------ */
/* Tables for the 0F map.                                                                      */

struct sse_int_op {
    sse_int_fn fn;
    uint8_t mmx;    /* MMX_LANE/HIGH/CONCAT; 0xff: no MMX form */
    sse_int_fn mfn; /* function for the MMX form when it differs (PUNPCKH*) */
};

#define NO_MMX 0xff
static const struct sse_int_op sse_int_ops[256] = {
    [0x14] = {h_punpckldq, NO_MMX, NULL}, /* UNPCKLPS (66: UNPCKLPD below) */
    [0x15] = {h_punpckhdq, NO_MMX, NULL},
    [0x54] = {h_pand, NO_MMX, NULL},
    [0x55] = {h_pandn, NO_MMX, NULL},
    [0x56] = {h_por, NO_MMX, NULL},
    [0x57] = {h_pxor, NO_MMX, NULL},
    [0x60] = {h_punpcklbw, MMX_LANE, NULL},
    [0x61] = {h_punpcklwd, MMX_LANE, NULL},
    [0x62] = {h_punpckldq, MMX_LANE, NULL},
    [0x63] = {h_packsswb, MMX_CONCAT, NULL},
    [0x64] = {h_pcmpgtb, MMX_LANE, NULL},
    [0x65] = {h_pcmpgtw, MMX_LANE, NULL},
    [0x66] = {h_pcmpgtd, MMX_LANE, NULL},
    [0x67] = {h_packuswb, MMX_CONCAT, NULL},
    [0x68] = {h_punpckhbw, MMX_HIGH, h_punpcklbw},
    [0x69] = {h_punpckhwd, MMX_HIGH, h_punpcklwd},
    [0x6a] = {h_punpckhdq, MMX_HIGH, h_punpckldq},
    [0x6b] = {h_packssdw, MMX_CONCAT, NULL},
    [0x6c] = {h_punpcklqdq, NO_MMX, NULL},
    [0x6d] = {h_punpckhqdq, NO_MMX, NULL},
    [0x74] = {h_pcmpeqb, MMX_LANE, NULL},
    [0x75] = {h_pcmpeqw, MMX_LANE, NULL},
    [0x76] = {h_pcmpeqd, MMX_LANE, NULL},
    [0xd1] = {h_psrlw, MMX_LANE, NULL},
    [0xd2] = {h_psrld, MMX_LANE, NULL},
    [0xd3] = {h_psrlq, MMX_LANE, NULL},
    [0xd4] = {h_paddq, MMX_LANE, NULL},
    [0xd5] = {h_pmullw, MMX_LANE, NULL},
    [0xd8] = {h_psubusb, MMX_LANE, NULL},
    [0xd9] = {h_psubusw, MMX_LANE, NULL},
    [0xda] = {h_pminub, MMX_LANE, NULL},
    [0xdb] = {h_pand, MMX_LANE, NULL},
    [0xdc] = {h_paddusb, MMX_LANE, NULL},
    [0xdd] = {h_paddusw, MMX_LANE, NULL},
    [0xde] = {h_pmaxub, MMX_LANE, NULL},
    [0xdf] = {h_pandn, MMX_LANE, NULL},
    [0xe0] = {h_pavgb, MMX_LANE, NULL},
    [0xe1] = {h_psraw, MMX_LANE, NULL},
    [0xe2] = {h_psrad, MMX_LANE, NULL},
    [0xe3] = {h_pavgw, MMX_LANE, NULL},
    [0xe4] = {h_pmulhuw, MMX_LANE, NULL},
    [0xe5] = {h_pmulhw, MMX_LANE, NULL},
    [0xe8] = {h_psubsb, MMX_LANE, NULL},
    [0xe9] = {h_psubsw, MMX_LANE, NULL},
    [0xea] = {h_pminsw, MMX_LANE, NULL},
    [0xeb] = {h_por, MMX_LANE, NULL},
    [0xec] = {h_paddsb, MMX_LANE, NULL},
    [0xed] = {h_paddsw, MMX_LANE, NULL},
    [0xee] = {h_pmaxsw, MMX_LANE, NULL},
    [0xef] = {h_pxor, MMX_LANE, NULL},
    [0xf1] = {h_psllw, MMX_LANE, NULL},
    [0xf2] = {h_pslld, MMX_LANE, NULL},
    [0xf3] = {h_psllq, MMX_LANE, NULL},
    [0xf4] = {h_pmuludq, MMX_LANE, NULL},
    [0xf5] = {h_pmaddwd, MMX_LANE, NULL},
    [0xf6] = {h_psadbw, MMX_LANE, NULL},
    [0xf8] = {h_psubb, MMX_LANE, NULL},
    [0xf9] = {h_psubw, MMX_LANE, NULL},
    [0xfa] = {h_psubd, MMX_LANE, NULL},
    [0xfb] = {h_psubq, MMX_LANE, NULL},
    [0xfc] = {h_paddb, MMX_LANE, NULL},
    [0xfd] = {h_paddw, MMX_LANE, NULL},
    [0xfe] = {h_paddd, MMX_LANE, NULL},
};

/* FP arithmetic of the 0F map, indexed [opcode][mandatory prefix]; size = memory operand. */
struct sse_fp_op {
    sse_fp_fn fn;
    uint8_t size;
    uint8_t sse3; /* needs CPUID SSE3 */
};

static const struct sse_fp_op sse_fp_ops[256][4] = {
    [0x51] = {{h_sqrtps, 16, 0}, {h_sqrtpd, 16, 0}, {h_sqrtss, 4, 0}, {h_sqrtsd, 8, 0}},
    [0x52] = {{h_rsqrtps, 16, 0}, {NULL, 0, 0}, {h_rsqrtss, 4, 0}, {NULL, 0, 0}},
    [0x53] = {{h_rcpps, 16, 0}, {NULL, 0, 0}, {h_rcpss, 4, 0}, {NULL, 0, 0}},
    [0x58] = {{h_addps, 16, 0}, {h_addpd, 16, 0}, {h_addss, 4, 0}, {h_addsd, 8, 0}},
    [0x59] = {{h_mulps, 16, 0}, {h_mulpd, 16, 0}, {h_mulss, 4, 0}, {h_mulsd, 8, 0}},
    [0x5a] = {{h_cvtps2pd, 8, 0}, {h_cvtpd2ps, 16, 0}, {h_cvtss2sd, 4, 0}, {h_cvtsd2ss, 8, 0}},
    [0x5b] = {{h_cvtdq2ps, 16, 0}, {h_cvtps2dq, 16, 0}, {h_cvttps2dq, 16, 0}, {NULL, 0, 0}},
    [0x5c] = {{h_subps, 16, 0}, {h_subpd, 16, 0}, {h_subss, 4, 0}, {h_subsd, 8, 0}},
    [0x5d] = {{h_minps, 16, 0}, {h_minpd, 16, 0}, {h_minss, 4, 0}, {h_minsd, 8, 0}},
    [0x5e] = {{h_divps, 16, 0}, {h_divpd, 16, 0}, {h_divss, 4, 0}, {h_divsd, 8, 0}},
    [0x5f] = {{h_maxps, 16, 0}, {h_maxpd, 16, 0}, {h_maxss, 4, 0}, {h_maxsd, 8, 0}},
    [0x7c] = {{NULL, 0, 0}, {h_haddpd, 16, 1}, {NULL, 0, 0}, {h_haddps, 16, 1}},
    [0x7d] = {{NULL, 0, 0}, {h_hsubpd, 16, 1}, {NULL, 0, 0}, {h_hsubps, 16, 1}},
    [0xd0] = {{NULL, 0, 0}, {h_addsubpd, 16, 1}, {NULL, 0, 0}, {h_addsubps, 16, 1}},
    [0xe6] = {{NULL, 0, 0}, {h_cvttpd2dq, 16, 0}, {h_cvtdq2pd, 8, 0}, {h_cvtpd2dq, 16, 0}},
};

/* ------------------------------------------------------------------------------------------ */
/* Individual 0F-map instructions.                                                             */

static void op_shuffle(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm & 0xff;
    if (in->simd == X86_SIMD_NONE) { /* PSHUFW mm, mm/m64, imm8 */
        cpu_fpu_check_mmx(cpu);
        uint64_t s = mmx_src(cpu, in), r = 0;
        for (unsigned i = 0; i < 4; i++) {
            r |= ((s >> (((imm >> (2 * i)) & 3) * 16)) & 0xffff) << (16 * i);
        }
        mmx_enter(cpu);
        mm_set(cpu, in->reg, r);
        return;
    }
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t, r;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    r = *s;
    for (unsigned i = 0; i < 4; i++) {
        unsigned sel = (imm >> (2 * i)) & 3;
        switch (in->simd) {
        case X86_SIMD_66: /* PSHUFD */
            r.l[i] = s->l[sel];
            break;
        case X86_SIMD_F3: /* PSHUFHW */
            r.w[4 + i] = s->w[4 + sel];
            break;
        default: /* PSHUFLW */
            r.w[i] = s->w[sel];
            break;
        }
    }
    cpu->fpu.xmm[in->reg] = r;
}

/* 0F 71/72/73: shifts by immediate. The immediate is handed to the register-count form. */
static void op_shift_imm(struct cpu *cpu, const struct x86_insn *in)
{
    static const sse_int_fn tab[3][8] = {
        {NULL, NULL, h_psrlw, NULL, h_psraw, NULL, h_psllw, NULL},
        {NULL, NULL, h_psrld, NULL, h_psrad, NULL, h_pslld, NULL},
        {NULL, NULL, h_psrlq, NULL, NULL, NULL, h_psllq, NULL},
    };
    unsigned grp = (in->op & 0xff) - 0x71, sub = in->reg & 7;
    unsigned imm = (unsigned)in->imm & 0xff;
    if (in->mod != 3 || (in->simd != X86_SIMD_NONE && in->simd != X86_SIMD_66)) {
        cpu_raise_ud(cpu);
    }
    union cpu_xmm cnt = {.q = {imm, 0}};
    if (in->simd == X86_SIMD_NONE) {
        sse_int_fn fn = tab[grp][sub];
        if (!fn) {
            cpu_raise_ud(cpu);
        }
        cpu_fpu_check_mmx(cpu);
        union cpu_xmm a = {.q = {mm_get(cpu, in->rm), 0}};
        fn(&a, &cnt);
        mmx_enter(cpu);
        mm_set(cpu, in->rm, a.q[0]);
        return;
    }
    union cpu_xmm *x = &cpu->fpu.xmm[in->rm];
    if (grp == 2 && (sub == 3 || sub == 7)) { /* PSRLDQ / PSLLDQ: bytes */
        cpu_fpu_check_sse(cpu);
        union cpu_xmm r = {.q = {0, 0}};
        unsigned n = imm > 16 ? 16 : imm;
        for (unsigned i = 0; i < 16; i++) {
            if (sub == 3 && i + n < 16) {
                r.b[i] = x->b[i + n];
            } else if (sub == 7 && i >= n) {
                r.b[i] = x->b[i - n];
            }
        }
        *x = r;
        return;
    }
    sse_int_fn fn = tab[grp][sub];
    if (!fn) {
        cpu_raise_ud(cpu);
    }
    cpu_fpu_check_sse(cpu);
    fn(x, &cnt);
}

/* 0F 10-17: MOVUPS/MOVSS/MOVLPS/MOVHPS/... */
static void op_mov_10_17(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned op = in->op & 0xff;
    union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
    union cpu_xmm t;
    cpu_fpu_check_sse(cpu);
    switch (op) {
    case 0x10:
        if (in->simd <= X86_SIMD_66) { /* MOVUPS/MOVUPD */
            *d = *sse_src(cpu, in, &t, SSE_U16);
        } else if (in->simd == X86_SIMD_F3) { /* MOVSS */
            if (in->mod == 3) {
                d->l[0] = cpu->fpu.xmm[in->rm].l[0];
            } else {
                sse_ld_mem(cpu, in, &t, 4);
                *d = t;
            }
        } else { /* MOVSD */
            if (in->mod == 3) {
                d->q[0] = cpu->fpu.xmm[in->rm].q[0];
            } else {
                sse_ld_mem(cpu, in, &t, 8);
                *d = t;
            }
        }
        return;
    case 0x11:
        if (in->mod == 3) {
            union cpu_xmm *r = &cpu->fpu.xmm[in->rm];
            if (in->simd <= X86_SIMD_66) {
                *r = *d;
            } else if (in->simd == X86_SIMD_F3) {
                r->l[0] = d->l[0];
            } else {
                r->q[0] = d->q[0];
            }
        } else {
            sse_st_mem(cpu, in, d,
                       in->simd <= X86_SIMD_66   ? SSE_U16
                       : in->simd == X86_SIMD_F3 ? 4
                                                 : 8);
        }
        return;
    case 0x12:
        if (in->simd == X86_SIMD_F3) { /* MOVSLDUP */
            sse_need(cpu, CPU_F1_ECX_SSE3);
            const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
            union cpu_xmm r = {.l = {s->l[0], s->l[0], s->l[2], s->l[2]}};
            *d = r;
        } else if (in->simd == X86_SIMD_F2) { /* MOVDDUP */
            sse_need(cpu, CPU_F1_ECX_SSE3);
            const union cpu_xmm *s = sse_src(cpu, in, &t, 8);
            uint64_t q = s->q[0];
            d->q[0] = q;
            d->q[1] = q;
        } else if (in->mod == 3) {
            if (in->simd == X86_SIMD_66) {
                cpu_raise_ud(cpu);
            }
            d->q[0] = cpu->fpu.xmm[in->rm].q[1]; /* MOVHLPS */
        } else {
            d->q[0] = cpu_ld64(cpu, in->seg, cpu_insn_ea(cpu, in)); /* MOVLPS/MOVLPD */
        }
        return;
    case 0x13:
    case 0x17:
        if (in->mod == 3 || in->simd > X86_SIMD_66) {
            cpu_raise_ud(cpu);
        }
        cpu_st64(cpu, in->seg, cpu_insn_ea(cpu, in), d->q[op == 0x17 ? 1 : 0]);
        return;
    case 0x14:
    case 0x15:
        if (in->simd > X86_SIMD_66) {
            cpu_raise_ud(cpu);
        }
        if (in->simd == X86_SIMD_66) {
            xmm_binop(cpu, in, op == 0x14 ? h_punpcklqdq : h_punpckhqdq, 16);
        } else {
            xmm_binop(cpu, in, sse_int_ops[op].fn, 16);
        }
        return;
    case 0x16:
        if (in->simd == X86_SIMD_F3) { /* MOVSHDUP */
            sse_need(cpu, CPU_F1_ECX_SSE3);
            const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
            union cpu_xmm r = {.l = {s->l[1], s->l[1], s->l[3], s->l[3]}};
            *d = r;
        } else if (in->simd == X86_SIMD_F2) {
            cpu_raise_ud(cpu);
        } else if (in->mod == 3) {
            if (in->simd == X86_SIMD_66) {
                cpu_raise_ud(cpu);
            }
            d->q[1] = cpu->fpu.xmm[in->rm].q[0]; /* MOVLHPS */
        } else {
            d->q[1] = cpu_ld64(cpu, in->seg, cpu_insn_ea(cpu, in)); /* MOVHPS/MOVHPD */
        }
        return;
    }
}

/* 0F 2A: CVTPI2PS/CVTPI2PD/CVTSI2SS/CVTSI2SD */
static void op_cvt_2a(struct cpu *cpu, const struct x86_insn *in)
{
    union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
    union cpu_xmm r = *d;
    uint32_t out;
    bool w = (in->rex & 8) != 0;
    if (in->simd >= X86_SIMD_F3) {
        cpu_fpu_check_sse(cpu);
        uint64_t v = cpu_read_rm(cpu, in, w ? 8 : 4);
        if (in->simd == X86_SIMD_F3) {
            out = w ? h_cvtsi2ss64(&r, (int64_t)v, sse_csr(cpu))
                    : h_cvtsi2ss32(&r, (int32_t)v, sse_csr(cpu));
        } else {
            out = w ? h_cvtsi2sd64(&r, (int64_t)v, sse_csr(cpu))
                    : h_cvtsi2sd32(&r, (int32_t)v, sse_csr(cpu));
        }
        sse_fp_done(cpu, out);
        *d = r;
        return;
    }
    cpu_fpu_check_sse(cpu);
    if (in->mod == 3) {
        cpu_fpu_check_mmx(cpu);
    }
    union cpu_xmm s = {.q = {mmx_src(cpu, in), 0}};
    if (in->simd == X86_SIMD_NONE) { /* CVTPI2PS: low two lanes, rounding per MXCSR */
        union cpu_xmm tmp = s;
        out = h_cvtdq2ps(&tmp, &s, sse_csr(cpu));
        sse_fp_done(cpu, out);
        r.q[0] = tmp.q[0];
    } else { /* CVTPI2PD: exact */
        out = h_cvtdq2pd(&r, &s, sse_csr(cpu));
        sse_fp_done(cpu, out);
    }
    if (in->mod == 3) {
        mmx_enter(cpu);
    }
    *d = r;
}

/* 0F 2C/2D: CVT(T)PS2PI, CVT(T)PD2PI, CVT(T)SS2SI, CVT(T)SD2SI */
static void op_cvt_2c(struct cpu *cpu, const struct x86_insn *in)
{
    bool trunc = (in->op & 0xff) == 0x2c;
    bool w = (in->rex & 8) != 0;
    union cpu_xmm t;
    uint32_t out;
    cpu_fpu_check_sse(cpu);
    if (in->simd >= X86_SIMD_F3) {
        bool ss = in->simd == X86_SIMD_F3;
        const union cpu_xmm *s = sse_src(cpu, in, &t, ss ? 4 : 8);
        uint64_t v64 = 0;
        uint32_t v32 = 0;
        uint32_t csr = sse_csr(cpu);
        if (ss) {
            out = w ? (trunc ? h_cvttss2si64(s, &v64, csr) : h_cvtss2si64(s, &v64, csr))
                    : (trunc ? h_cvttss2si32(s, &v32, csr) : h_cvtss2si32(s, &v32, csr));
        } else {
            out = w ? (trunc ? h_cvttsd2si64(s, &v64, csr) : h_cvtsd2si64(s, &v64, csr))
                    : (trunc ? h_cvttsd2si32(s, &v32, csr) : h_cvtsd2si32(s, &v32, csr));
        }
        sse_fp_done(cpu, out);
        cpu->r[in->reg] = w ? v64 : v32;
        return;
    }
    cpu_fpu_check_mmx(cpu);
    bool pd = in->simd == X86_SIMD_66;
    const union cpu_xmm *s = sse_src(cpu, in, &t, pd ? 16 : 8);
    union cpu_xmm a = *s, r = {.q = {0, 0}};
    if (!pd) {
        a.q[1] = 0; /* only two lanes: the others must not raise flags */
        out = trunc ? h_cvttps2dq(&r, &a, sse_csr(cpu)) : h_cvtps2dq(&r, &a, sse_csr(cpu));
    } else {
        out = trunc ? h_cvttpd2dq(&r, &a, sse_csr(cpu)) : h_cvtpd2dq(&r, &a, sse_csr(cpu));
    }
    sse_fp_done(cpu, out);
    mmx_enter(cpu);
    mm_set(cpu, in->reg, r.q[0]);
}

static void op_comi(struct cpu *cpu, const struct x86_insn *in)
{
    bool ord = (in->op & 0xff) == 0x2f;
    bool sd = in->simd == X86_SIMD_66;
    union cpu_xmm t;
    unsigned zpc;
    uint32_t out;
    if (in->simd > X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    cpu_fpu_check_sse(cpu);
    const union cpu_xmm *s = sse_src(cpu, in, &t, sd ? 8 : 4);
    const union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
    if (sd) {
        out = ord ? h_comisd(d, s, sse_csr(cpu), &zpc) : h_ucomisd(d, s, sse_csr(cpu), &zpc);
    } else {
        out = ord ? h_comiss(d, s, sse_csr(cpu), &zpc) : h_ucomiss(d, s, sse_csr(cpu), &zpc);
    }
    sse_fp_done(cpu, out);
    set_arith_flags(cpu, ((zpc & 1) ? CPU_FL_ZF : 0) | ((zpc & 2) ? CPU_FL_PF : 0) |
                             ((zpc & 4) ? CPU_FL_CF : 0));
}

static void op_cmp_c2(struct cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t sizes[4] = {16, 16, 4, 8};
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *s = sse_src(cpu, in, &t, sizes[in->simd]);
    union cpu_xmm r = cpu->fpu.xmm[in->reg];
    unsigned imm = (unsigned)in->imm;
    uint32_t csr = sse_csr(cpu), out;
    switch (in->simd) {
    case X86_SIMD_NONE:
        out = h_cmpps(&r, s, csr, imm);
        break;
    case X86_SIMD_66:
        out = h_cmppd(&r, s, csr, imm);
        break;
    case X86_SIMD_F3:
        out = h_cmpss(&r, s, csr, imm);
        break;
    default:
        out = h_cmpsd(&r, s, csr, imm);
        break;
    }
    sse_fp_done(cpu, out);
    cpu->fpu.xmm[in->reg] = r;
}

static void op_movmsk(struct cpu *cpu, const struct x86_insn *in)
{
    if (in->mod != 3 || in->simd > X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    cpu_fpu_check_sse(cpu);
    const union cpu_xmm *s = &cpu->fpu.xmm[in->rm];
    uint32_t m = 0;
    if (in->simd == X86_SIMD_66) {
        m = (uint32_t)(s->q[0] >> 63) | (uint32_t)(s->q[1] >> 63) << 1;
    } else {
        for (unsigned i = 0; i < 4; i++) {
            m |= (s->l[i] >> 31) << i;
        }
    }
    cpu->r[in->reg] = m;
}

static void op_pmovmskb(struct cpu *cpu, const struct x86_insn *in)
{
    uint32_t m = 0;
    if (in->mod != 3 || in->simd > X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        uint64_t v = mm_get(cpu, in->rm);
        for (unsigned i = 0; i < 8; i++) {
            m |= (uint32_t)((v >> (8 * i + 7)) & 1) << i;
        }
        mmx_enter(cpu);
    } else {
        cpu_fpu_check_sse(cpu);
        const union cpu_xmm *s = &cpu->fpu.xmm[in->rm];
        for (unsigned i = 0; i < 16; i++) {
            m |= (uint32_t)(s->b[i] >> 7) << i;
        }
    }
    cpu->r[in->reg & 15] = m;
}

static void op_movd_6e(struct cpu *cpu, const struct x86_insn *in)
{
    bool w = (in->rex & 8) != 0;
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        uint64_t v = cpu_read_rm(cpu, in, w ? 8 : 4);
        mmx_enter(cpu);
        mm_set(cpu, in->reg, v);
    } else if (in->simd == X86_SIMD_66) {
        cpu_fpu_check_sse(cpu);
        uint64_t v = cpu_read_rm(cpu, in, w ? 8 : 4);
        union cpu_xmm r = {.q = {v, 0}};
        cpu->fpu.xmm[in->reg] = r;
    } else {
        cpu_raise_ud(cpu);
    }
}

static void op_movd_7e(struct cpu *cpu, const struct x86_insn *in)
{
    bool w = (in->rex & 8) != 0;
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        uint64_t v = mm_get(cpu, in->reg);
        cpu_write_rm(cpu, in, w ? 8 : 4, v);
        mmx_enter(cpu);
    } else if (in->simd == X86_SIMD_66) {
        cpu_fpu_check_sse(cpu);
        cpu_write_rm(cpu, in, w ? 8 : 4, cpu->fpu.xmm[in->reg].q[0]);
    } else if (in->simd == X86_SIMD_F3) { /* MOVQ xmm, xmm/m64 */
        cpu_fpu_check_sse(cpu);
        union cpu_xmm t;
        const union cpu_xmm *s = sse_src(cpu, in, &t, 8);
        union cpu_xmm r = {.q = {s->q[0], 0}};
        cpu->fpu.xmm[in->reg] = r;
    } else {
        cpu_raise_ud(cpu);
    }
}

/* 0F 6F / 7F: MOVQ mm, MOVDQA, MOVDQU */
static void op_movq_6f_7f(struct cpu *cpu, const struct x86_insn *in)
{
    bool store = (in->op & 0xff) == 0x7f;
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        if (store) {
            uint64_t v = mm_get(cpu, in->reg);
            if (in->mod == 3) {
                mmx_enter(cpu);
                mm_set(cpu, in->rm, v);
            } else {
                cpu_st64(cpu, in->seg, cpu_insn_ea(cpu, in), v);
                mmx_enter(cpu);
            }
        } else {
            uint64_t v = mmx_src(cpu, in);
            mmx_enter(cpu);
            mm_set(cpu, in->reg, v);
        }
        return;
    }
    if (in->simd == X86_SIMD_F2) {
        cpu_raise_ud(cpu);
    }
    cpu_fpu_check_sse(cpu);
    unsigned size = in->simd == X86_SIMD_66 ? 16 : SSE_U16;
    if (store) {
        if (in->mod == 3) {
            cpu->fpu.xmm[in->rm] = cpu->fpu.xmm[in->reg];
        } else {
            sse_st_mem(cpu, in, &cpu->fpu.xmm[in->reg], size);
        }
    } else {
        union cpu_xmm t;
        cpu->fpu.xmm[in->reg] = *sse_src(cpu, in, &t, size);
    }
}

static void op_pinsrw(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm;
    uint16_t v;
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        v = (uint16_t)cpu_read_rm(cpu, in, 2);
        uint64_t m = mm_get(cpu, in->reg);
        unsigned sh = (imm & 3) * 16;
        m = (m & ~(0xffffull << sh)) | ((uint64_t)v << sh);
        mmx_enter(cpu);
        mm_set(cpu, in->reg, m);
    } else if (in->simd == X86_SIMD_66) {
        cpu_fpu_check_sse(cpu);
        v = (uint16_t)cpu_read_rm(cpu, in, 2);
        cpu->fpu.xmm[in->reg].w[imm & 7] = v;
    } else {
        cpu_raise_ud(cpu);
    }
}

static void op_pextrw(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm;
    if (in->mod != 3) {
        cpu_raise_ud(cpu);
    }
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        uint64_t m = mm_get(cpu, in->rm);
        mmx_enter(cpu);
        cpu->r[in->reg] = (m >> ((imm & 3) * 16)) & 0xffff;
    } else if (in->simd == X86_SIMD_66) {
        cpu_fpu_check_sse(cpu);
        cpu->r[in->reg] = cpu->fpu.xmm[in->rm].w[imm & 7];
    } else {
        cpu_raise_ud(cpu);
    }
}

static void op_shufp(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm;
    if (in->simd > X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t, r;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    const union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
    if (in->simd == X86_SIMD_66) {
        r.q[0] = d->q[imm & 1];
        r.q[1] = s->q[(imm >> 1) & 1];
    } else {
        r.l[0] = d->l[imm & 3];
        r.l[1] = d->l[(imm >> 2) & 3];
        r.l[2] = s->l[(imm >> 4) & 3];
        r.l[3] = s->l[(imm >> 6) & 3];
    }
    cpu->fpu.xmm[in->reg] = r;
}

static void op_movq_d6(struct cpu *cpu, const struct x86_insn *in)
{
    switch (in->simd) {
    case X86_SIMD_66: /* MOVQ xmm/m64, xmm */
        cpu_fpu_check_sse(cpu);
        if (in->mod == 3) {
            union cpu_xmm r = {.q = {cpu->fpu.xmm[in->reg].q[0], 0}};
            cpu->fpu.xmm[in->rm] = r;
        } else {
            cpu_st64(cpu, in->seg, cpu_insn_ea(cpu, in), cpu->fpu.xmm[in->reg].q[0]);
        }
        return;
    case X86_SIMD_F3: /* MOVQ2DQ xmm, mm */
        if (in->mod != 3) {
            cpu_raise_ud(cpu);
        }
        cpu_fpu_check_sse(cpu);
        cpu_fpu_check_mmx(cpu);
        {
            union cpu_xmm r = {.q = {mm_get(cpu, in->rm), 0}};
            mmx_enter(cpu);
            cpu->fpu.xmm[in->reg] = r;
        }
        return;
    case X86_SIMD_F2: /* MOVDQ2Q mm, xmm */
        if (in->mod != 3) {
            cpu_raise_ud(cpu);
        }
        cpu_fpu_check_sse(cpu);
        cpu_fpu_check_mmx(cpu);
        mmx_enter(cpu);
        mm_set(cpu, in->reg, cpu->fpu.xmm[in->rm].q[0]);
        return;
    default:
        cpu_raise_ud(cpu);
    }
}

/* MASKMOVQ / MASKMOVDQU: byte stores to DS:rDI (segment overridable). */
static void op_maskmov(struct cpu *cpu, const struct x86_insn *in)
{
    union cpu_xmm data, mask;
    unsigned n;
    if (in->mod != 3 || in->simd > X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        data.q[0] = mm_get(cpu, in->reg);
        mask.q[0] = mm_get(cpu, in->rm);
        n = 8;
    } else {
        cpu_fpu_check_sse(cpu);
        data = cpu->fpu.xmm[in->reg];
        mask = cpu->fpu.xmm[in->rm];
        n = 16;
    }
    int seg = (in->pfx & X86_PFX_SEG) ? in->seg : CPU_SEG_DS;
    uint64_t am = cpu_addr_mask(in->addrsize);
    uint64_t di = cpu->r[CPU_RDI];
    for (unsigned i = 0; i < n; i++) {
        if (mask.b[i] & 0x80) {
            cpu_st8(cpu, seg, (di + i) & am, data.b[i]);
        }
    }
    if (n == 8) {
        mmx_enter(cpu);
    }
}

/* MOVNTPS/PD (0F 2B), MOVNTQ/MOVNTDQ (0F E7): aligned stores, memory only. */
static void op_movnt(struct cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3 || in->simd > X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    if ((in->op & 0xff) == 0xe7 && in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        cpu_st64(cpu, in->seg, cpu_insn_ea(cpu, in), mm_get(cpu, in->reg));
        mmx_enter(cpu);
        return;
    }
    cpu_fpu_check_sse(cpu);
    sse_st_mem(cpu, in, &cpu->fpu.xmm[in->reg], 16);
}

static void op_emms(struct cpu *cpu, const struct x86_insn *in)
{
    if (in->simd != X86_SIMD_NONE) {
        cpu_raise_ud(cpu);
    }
    if (cpu->cr0 & CPU_CR0_EM) {
        cpu_raise_ud(cpu);
    }
    if (cpu->cr0 & CPU_CR0_TS) {
        cpu_raise(cpu, X86_EXC_NM, CPU_NO_ERROR);
    }
    cpu_fpu_check_pending(cpu);
    cpu->fpu.ftw = 0xffff;
}

void cpu_exec_sse(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned op = in->op & 0xff;
    const struct sse_int_op *io = &sse_int_ops[op];

    if (io->fn && op >= 0x60) {
        if (in->simd == X86_SIMD_NONE && io->mmx != NO_MMX) {
            mmx_binop(cpu, in, io->mfn ? io->mfn : io->fn, io->mmx);
            return;
        }
        if (in->simd == X86_SIMD_66) {
            xmm_binop(cpu, in, io->fn, 16);
            return;
        }
        cpu_raise_ud(cpu);
    }
    if (op >= 0x54 && op <= 0x57) { /* ANDPS/ANDNPS/ORPS/XORPS and the PD forms */
        if (in->simd > X86_SIMD_66) {
            cpu_raise_ud(cpu);
        }
        xmm_binop(cpu, in, io->fn, 16);
        return;
    }
    const struct sse_fp_op *fo = &sse_fp_ops[op][in->simd & 3];
    if (fo->fn) {
        if (fo->sse3) {
            sse_need(cpu, CPU_F1_ECX_SSE3);
        }
        xmm_fpop(cpu, in, fo->fn, fo->size);
        return;
    }
    switch (op) {
    case 0x10:
    case 0x11:
    case 0x12:
    case 0x13:
    case 0x14:
    case 0x15:
    case 0x16:
    case 0x17:
        op_mov_10_17(cpu, in);
        return;
    case 0x28: /* MOVAPS/MOVAPD */
    case 0x29:
        if (in->simd > X86_SIMD_66) {
            cpu_raise_ud(cpu);
        }
        cpu_fpu_check_sse(cpu);
        if (op == 0x28) {
            union cpu_xmm t;
            cpu->fpu.xmm[in->reg] = *sse_src(cpu, in, &t, 16);
        } else if (in->mod == 3) {
            cpu->fpu.xmm[in->rm] = cpu->fpu.xmm[in->reg];
        } else {
            sse_st_mem(cpu, in, &cpu->fpu.xmm[in->reg], 16);
        }
        return;
    case 0x2a:
        op_cvt_2a(cpu, in);
        return;
    case 0x2b:
    case 0xe7:
        op_movnt(cpu, in);
        return;
    case 0x2c:
    case 0x2d:
        op_cvt_2c(cpu, in);
        return;
    case 0x2e:
    case 0x2f:
        op_comi(cpu, in);
        return;
    case 0x50:
        op_movmsk(cpu, in);
        return;
    case 0x6e:
        op_movd_6e(cpu, in);
        return;
    case 0x6f:
    case 0x7f:
        op_movq_6f_7f(cpu, in);
        return;
    case 0x70:
        op_shuffle(cpu, in);
        return;
    case 0x71:
    case 0x72:
    case 0x73:
        op_shift_imm(cpu, in);
        return;
    case 0x77:
        op_emms(cpu, in);
        return;
    case 0x7e:
        op_movd_7e(cpu, in);
        return;
    case 0xc2:
        op_cmp_c2(cpu, in);
        return;
    case 0xc4:
        op_pinsrw(cpu, in);
        return;
    case 0xc5:
        op_pextrw(cpu, in);
        return;
    case 0xc6:
        op_shufp(cpu, in);
        return;
    case 0xd6:
        op_movq_d6(cpu, in);
        return;
    case 0xd7:
        op_pmovmskb(cpu, in);
        return;
    case 0xf0: /* LDDQU */
        if (in->simd != X86_SIMD_F2 || in->mod == 3) {
            cpu_raise_ud(cpu);
        }
        sse_need(cpu, CPU_F1_ECX_SSE3);
        cpu_fpu_check_sse(cpu);
        {
            union cpu_xmm t;
            sse_ld_mem(cpu, in, &t, SSE_U16);
            cpu->fpu.xmm[in->reg] = t;
        }
        return;
    case 0xf7:
        op_maskmov(cpu, in);
        return;
    default:
        cpu_raise_ud(cpu);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* 0F 38 map: SSSE3, SSE4.1, SSE4.2, CRC32.                                                    */

struct sse38_op {
    sse_int_fn fn;
    uint8_t mmx;   /* MMX_LANE/MMX_CONCAT or NO_MMX */
    uint32_t feat; /* CPUID.1:ECX bit */
};

static const struct sse38_op sse38_ops[256] = {
    [0x01] = {h_phaddw, MMX_CONCAT, CPU_F1_ECX_SSSE3},
    [0x02] = {h_phaddd, MMX_CONCAT, CPU_F1_ECX_SSSE3},
    [0x03] = {h_phaddsw, MMX_CONCAT, CPU_F1_ECX_SSSE3},
    [0x04] = {h_pmaddubsw, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x05] = {h_phsubw, MMX_CONCAT, CPU_F1_ECX_SSSE3},
    [0x06] = {h_phsubd, MMX_CONCAT, CPU_F1_ECX_SSSE3},
    [0x07] = {h_phsubsw, MMX_CONCAT, CPU_F1_ECX_SSSE3},
    [0x08] = {h_psignb, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x09] = {h_psignw, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x0a] = {h_psignd, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x0b] = {h_pmulhrsw, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x1c] = {h_pabsb, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x1d] = {h_pabsw, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x1e] = {h_pabsd, MMX_LANE, CPU_F1_ECX_SSSE3},
    [0x28] = {h_pmuldq, NO_MMX, CPU_F1_ECX_SSE41},
    [0x29] = {h_pcmpeqq, NO_MMX, CPU_F1_ECX_SSE41},
    [0x2b] = {h_packusdw, NO_MMX, CPU_F1_ECX_SSE41},
    [0x37] = {h_pcmpgtq, NO_MMX, CPU_F1_ECX_SSE42},
    [0x38] = {h_pminsb, NO_MMX, CPU_F1_ECX_SSE41},
    [0x39] = {h_pminsd, NO_MMX, CPU_F1_ECX_SSE41},
    [0x3a] = {h_pminuw, NO_MMX, CPU_F1_ECX_SSE41},
    [0x3b] = {h_pminud, NO_MMX, CPU_F1_ECX_SSE41},
    [0x3c] = {h_pmaxsb, NO_MMX, CPU_F1_ECX_SSE41},
    [0x3d] = {h_pmaxsd, NO_MMX, CPU_F1_ECX_SSE41},
    [0x3e] = {h_pmaxuw, NO_MMX, CPU_F1_ECX_SSE41},
    [0x3f] = {h_pmaxud, NO_MMX, CPU_F1_ECX_SSE41},
    [0x40] = {h_pmulld, NO_MMX, CPU_F1_ECX_SSE41},
    [0x41] = {h_phminposuw, NO_MMX, CPU_F1_ECX_SSE41},
};

static void op_pshufb_mmx(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_fpu_check_mmx(cpu);
    uint64_t s = mmx_src(cpu, in), d = mm_get(cpu, in->reg), r = 0;
    for (unsigned i = 0; i < 8; i++) {
        uint8_t c = (uint8_t)(s >> (8 * i));
        if (!(c & 0x80)) {
            r |= ((d >> (8 * (c & 7))) & 0xff) << (8 * i);
        }
    }
    mmx_enter(cpu);
    mm_set(cpu, in->reg, r);
}

static void op_blendv(struct cpu *cpu, const struct x86_insn *in, unsigned esize)
{
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    union cpu_xmm r = cpu->fpu.xmm[in->reg];
    const union cpu_xmm *m = &cpu->fpu.xmm[0];
    for (unsigned i = 0; i < 16; i += esize) {
        if (m->b[i + esize - 1] & 0x80) {
            memcpy(&r.b[i], &s->b[i], esize);
        }
    }
    cpu->fpu.xmm[in->reg] = r;
}

static void op_ptest(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    const union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
    bool zf = ((d->q[0] & s->q[0]) | (d->q[1] & s->q[1])) == 0;
    bool cf = ((~d->q[0] & s->q[0]) | (~d->q[1] & s->q[1])) == 0;
    set_arith_flags(cpu, (zf ? CPU_FL_ZF : 0) | (cf ? CPU_FL_CF : 0));
}

/* PMOVSX/PMOVZX (66 0F 38 20-25 / 30-35). */
static void op_pmovx(struct cpu *cpu, const struct x86_insn *in, bool sx)
{
    static const uint8_t from[6] = {1, 1, 1, 2, 2, 4};
    static const uint8_t to[6] = {2, 4, 8, 4, 8, 8};
    unsigned k = (in->op & 0xf);
    if (k > 5) {
        cpu_raise_ud(cpu);
    }
    unsigned fs = from[k], ts = to[k], n = 16 / ts;
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t, r;
    const union cpu_xmm *s = sse_src(cpu, in, &t, n * fs);
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, &s->b[i * fs], fs);
        if (sx) {
            unsigned sh = 64 - 8 * fs;
            v = (uint64_t)((int64_t)(v << sh) >> sh);
        }
        memcpy(&r.b[i * ts], &v, ts);
    }
    cpu->fpu.xmm[in->reg] = r;
}

static uint64_t crc32c_host(uint64_t crc, uint64_t v, unsigned size)
{
    uint32_t c = (uint32_t)crc;
    switch (size) {
    case 1: {
        uint8_t b = (uint8_t)v;
        __asm__("crc32b %1, %0" : "+r"(c) : "rm"(b));
        break;
    }
    case 2: {
        uint16_t w = (uint16_t)v;
        __asm__("crc32w %1, %0" : "+r"(c) : "rm"(w));
        break;
    }
    case 4: {
        uint32_t l = (uint32_t)v;
        __asm__("crc32l %1, %0" : "+r"(c) : "rm"(l));
        break;
    }
    default: {
        uint64_t c64 = c;
        __asm__("crc32q %1, %0" : "+r"(c64) : "rm"(v));
        c = (uint32_t)c64;
        break;
    }
    }
    return c;
}

static void op_crc32(struct cpu *cpu, const struct x86_insn *in)
{
    sse_need(cpu, CPU_F1_ECX_SSE42);
    unsigned size = (in->op & 0xff) == 0xf0 ? 1 : in->opsize;
    uint64_t v = cpu_read_rm(cpu, in, size);
    cpu->r[in->reg] = crc32c_host(cpu->r[in->reg], v, size);
}

void cpu_exec_sse38(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned op = in->op & 0xff;
    if (op == 0xf0 || op == 0xf1) {
        if (in->simd != X86_SIMD_F2) {
            cpu_raise_ud(cpu);
        }
        op_crc32(cpu, in);
        return;
    }
    if (op == 0x00) { /* PSHUFB */
        sse_need(cpu, CPU_F1_ECX_SSSE3);
        if (in->simd == X86_SIMD_NONE) {
            op_pshufb_mmx(cpu, in);
        } else if (in->simd == X86_SIMD_66) {
            xmm_binop(cpu, in, h_pshufb, 16);
        } else {
            cpu_raise_ud(cpu);
        }
        return;
    }
    const struct sse38_op *o = &sse38_ops[op];
    if (o->fn) {
        sse_need(cpu, o->feat);
        if (in->simd == X86_SIMD_NONE && o->mmx != NO_MMX) {
            mmx_binop(cpu, in, o->fn, o->mmx);
        } else if (in->simd == X86_SIMD_66) {
            xmm_binop(cpu, in, o->fn, 16);
        } else {
            cpu_raise_ud(cpu);
        }
        return;
    }
    if (in->simd != X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    sse_need(cpu, CPU_F1_ECX_SSE41);
    switch (op) {
    case 0x10:
        op_blendv(cpu, in, 1);
        return;
    case 0x14:
        op_blendv(cpu, in, 4);
        return;
    case 0x15:
        op_blendv(cpu, in, 8);
        return;
    case 0x17:
        op_ptest(cpu, in);
        return;
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x25:
        op_pmovx(cpu, in, true);
        return;
    case 0x30:
    case 0x31:
    case 0x32:
    case 0x33:
    case 0x34:
    case 0x35:
        op_pmovx(cpu, in, false);
        return;
    case 0x2a: /* MOVNTDQA */
        if (in->mod == 3) {
            cpu_raise_ud(cpu);
        }
        cpu_fpu_check_sse(cpu);
        {
            union cpu_xmm t;
            sse_ld_mem(cpu, in, &t, 16);
            cpu->fpu.xmm[in->reg] = t;
        }
        return;
    default:
        cpu_raise_ud(cpu);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* 0F 3A map.                                                                                  */

static void op_palignr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm & 0xff;
    sse_need(cpu, CPU_F1_ECX_SSSE3);
    if (in->simd == X86_SIMD_NONE) {
        cpu_fpu_check_mmx(cpu);
        uint8_t cat[16];
        uint64_t s = mmx_src(cpu, in), d = mm_get(cpu, in->reg), r = 0;
        memcpy(cat, &s, 8);
        memcpy(cat + 8, &d, 8);
        for (unsigned i = 0; i < 8; i++) {
            if (imm + i < 16) {
                r |= (uint64_t)cat[imm + i] << (8 * i);
            }
        }
        mmx_enter(cpu);
        mm_set(cpu, in->reg, r);
        return;
    }
    if (in->simd != X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t, r;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    uint8_t cat[32];
    memcpy(cat, s, 16);
    memcpy(cat + 16, &cpu->fpu.xmm[in->reg], 16);
    for (unsigned i = 0; i < 16; i++) {
        r.b[i] = imm + i < 32 ? cat[imm + i] : 0;
    }
    cpu->fpu.xmm[in->reg] = r;
}

/* DPPS/DPPD as the SDM's steps (multiply, then pairwise sums), each rounded per MXCSR. An
 * unmasked exception in one step ends the instruction there (gmask: the guest's masks). */
static uint32_t h_dp(union cpu_xmm *d, const union cpu_xmm *s, uint32_t csr, unsigned imm, bool pd,
                     uint32_t gmask)
{
    union cpu_xmm a = {.q = {0, 0}}, b = {.q = {0, 0}}, z = {.q = {0, 0}};
    uint32_t out;
    unsigned n = pd ? 2 : 4, es = pd ? 8 : 4;
    for (unsigned i = 0; i < n; i++) {
        if (imm & (0x10u << i)) {
            memcpy(&a.b[i * es], &d->b[i * es], es);
            memcpy(&b.b[i * es], &s->b[i * es], es);
        }
    }
#define DP_STEP(expr)                                                                              \
    do {                                                                                           \
        out |= (expr);                                                                             \
        if (out & ~gmask & CPU_MXCSR_FLAGS) {                                                      \
            return out;                                                                            \
        }                                                                                          \
    } while (0)
    /* Unselected lanes multiply +0 by +0: no flags, +0 product, like the SDM's +0.0. */
    out = 0;
    DP_STEP(pd ? h_mulpd(&a, &b, csr) : h_mulps(&a, &b, csr));
    union cpu_xmm sum;
    if (pd) {
        union cpu_xmm hi = {.q = {a.q[1], 0}};
        sum = a;
        DP_STEP(h_addsd(&sum, &hi, csr));
    } else {
        union cpu_xmm t1 = {.l = {a.l[0], 0, 0, 0}}, t1b = {.l = {a.l[1], 0, 0, 0}};
        union cpu_xmm t2 = {.l = {a.l[2], 0, 0, 0}}, t2b = {.l = {a.l[3], 0, 0, 0}};
        DP_STEP(h_addss(&t1, &t1b, csr) | h_addss(&t2, &t2b, csr));
        DP_STEP(h_addss(&t1, &t2, csr));
        sum = t1;
    }
#undef DP_STEP
    for (unsigned i = 0; i < n; i++) {
        memcpy(&d->b[i * es], (imm & (1u << i)) ? &sum.b[0] : &z.b[0], es);
    }
    return out;
}

static void op_blend_imm(struct cpu *cpu, const struct x86_insn *in, unsigned esize)
{
    unsigned imm = (unsigned)in->imm & 0xff;
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    union cpu_xmm r = cpu->fpu.xmm[in->reg];
    for (unsigned i = 0; i < 16 / esize; i++) {
        if (imm & (1u << i)) {
            memcpy(&r.b[i * esize], &s->b[i * esize], esize);
        }
    }
    cpu->fpu.xmm[in->reg] = r;
}

static void op_mpsadbw(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm & 0xff;
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t, r;
    const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
    const union cpu_xmm *d = &cpu->fpu.xmm[in->reg];
    unsigned doff = (imm & 4) ? 4 : 0, soff = (imm & 3) * 4;
    for (unsigned i = 0; i < 8; i++) {
        unsigned sum = 0;
        for (unsigned k = 0; k < 4; k++) {
            int diff = (int)d->b[doff + i + k] - (int)s->b[soff + k];
            sum += (unsigned)(diff < 0 ? -diff : diff);
        }
        r.w[i] = (uint16_t)sum;
    }
    cpu->fpu.xmm[in->reg] = r;
}

/* PEXTRB/PEXTRW/PEXTRD/PEXTRQ/EXTRACTPS (0F 3A 14-17): r/m destination. */
static void op_pextr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm & 0xff, op = in->op & 0xff;
    bool w = (in->rex & 8) != 0;
    cpu_fpu_check_sse(cpu);
    const union cpu_xmm *x = &cpu->fpu.xmm[in->reg];
    uint64_t v;
    unsigned size;
    switch (op) {
    case 0x14:
        v = x->b[imm & 15];
        size = 1;
        break;
    case 0x15:
        v = x->w[imm & 7];
        size = 2;
        break;
    case 0x16:
        v = w ? x->q[imm & 1] : x->l[imm & 3];
        size = w ? 8 : 4;
        break;
    default:
        v = x->l[imm & 3];
        size = 4;
        break;
    }
    if (in->mod == 3) {
        cpu->r[in->rm] = v; /* zero-extended into the full register */
    } else {
        cpu_st(cpu, in->seg, cpu_insn_ea(cpu, in), size, v);
    }
}

static void op_pinsr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm & 0xff, op = in->op & 0xff;
    bool w = (in->rex & 8) != 0;
    cpu_fpu_check_sse(cpu);
    union cpu_xmm *x = &cpu->fpu.xmm[in->reg];
    if (op == 0x20) {
        /* The register form reads the low byte of a 32-bit register (never AH..BH). */
        x->b[imm & 15] =
            in->mod == 3 ? (uint8_t)cpu->r[in->rm] : cpu_ld8(cpu, in->seg, cpu_insn_ea(cpu, in));
    } else if (op == 0x22) {
        uint64_t v = cpu_read_rm(cpu, in, w ? 8 : 4);
        if (w) {
            x->q[imm & 1] = v;
        } else {
            x->l[imm & 3] = (uint32_t)v;
        }
    } else { /* INSERTPS */
        uint32_t v;
        if (in->mod == 3) {
            v = cpu->fpu.xmm[in->rm].l[(imm >> 6) & 3];
        } else {
            v = cpu_ld32(cpu, in->seg, cpu_insn_ea(cpu, in));
        }
        union cpu_xmm r = *x;
        r.l[(imm >> 4) & 3] = v;
        for (unsigned i = 0; i < 4; i++) {
            if (imm & (1u << i)) {
                r.l[i] = 0;
            }
        }
        *x = r;
    }
}

/* SSE4.2 PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM (SDM vol. 2, 4.1). */
static void op_pcmpstr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned imm = (unsigned)in->imm & 0xff, op = in->op & 0xff;
    sse_need(cpu, CPU_F1_ECX_SSE42);
    cpu_fpu_check_sse(cpu);
    union cpu_xmm t;
    const union cpu_xmm *bs = sse_src(cpu, in, &t, SSE_U16);
    const union cpu_xmm *as = &cpu->fpu.xmm[in->reg];
    bool words = imm & 1, sign = imm & 2;
    unsigned n = words ? 8 : 16, agg = (imm >> 2) & 3, pol = (imm >> 4) & 3;
    int64_t av[16], bv[16];
    for (unsigned i = 0; i < n; i++) {
        if (words) {
            av[i] = sign ? (int16_t)as->w[i] : as->w[i];
            bv[i] = sign ? (int16_t)bs->w[i] : bs->w[i];
        } else {
            av[i] = sign ? (int8_t)as->b[i] : as->b[i];
            bv[i] = sign ? (int8_t)bs->b[i] : bs->b[i];
        }
    }
    unsigned la, lb;
    bool explicit_len = !(op & 2);
    if (explicit_len) {
        bool w = (in->rex & 8) != 0;
        int64_t ra = w ? (int64_t)cpu->r[CPU_RAX] : (int32_t)cpu->r[CPU_RAX];
        int64_t rd = w ? (int64_t)cpu->r[CPU_RDX] : (int32_t)cpu->r[CPU_RDX];
        uint64_t ua = ra < 0 ? -(uint64_t)ra : (uint64_t)ra;
        uint64_t ud = rd < 0 ? -(uint64_t)rd : (uint64_t)rd;
        la = ua > n ? n : (unsigned)ua;
        lb = ud > n ? n : (unsigned)ud;
    } else {
        la = lb = n;
        for (unsigned i = 0; i < n; i++) {
            if (av[i] == 0) {
                la = i;
                break;
            }
        }
        for (unsigned i = 0; i < n; i++) {
            if (bv[i] == 0) {
                lb = i;
                break;
            }
        }
    }
    /* bool_res(i, j): element i of a against element j of b, with the validity overrides. */
#define PCMP_BOOL(i, j)                                                                            \
    (((i) >= la && (j) >= lb) ? (agg >= 2)                                                         \
     : ((i) >= la)            ? (agg == 3)                                                         \
     : ((j) >= lb)            ? false                                                              \
     : agg == 1               ? (((i)&1) ? bv[j] <= av[i] : bv[j] >= av[i])                        \
                              : (av[i] == bv[j]))
    uint32_t res1 = 0;
    for (unsigned j = 0; j < n; j++) {
        bool bit = false;
        switch (agg) {
        case 0:
            for (unsigned i = 0; i < n && !bit; i++) {
                bit = PCMP_BOOL(i, j);
            }
            break;
        case 1:
            for (unsigned i = 0; i + 1 < n && !bit; i += 2) {
                bit = PCMP_BOOL(i, j) && PCMP_BOOL(i + 1, j);
            }
            break;
        case 2:
            bit = PCMP_BOOL(j, j);
            break;
        default:
            bit = true;
            for (unsigned k = 0; k + j < n && bit; k++) {
                bit = PCMP_BOOL(k, j + k);
            }
            break;
        }
        res1 |= (uint32_t)bit << j;
    }
#undef PCMP_BOOL
    uint32_t nmask = (1u << n) - 1, res2;
    switch (pol) {
    case 1:
        res2 = ~res1 & nmask;
        break;
    case 3:
        res2 = res1 ^ ((1u << lb) - 1);
        break;
    default:
        res2 = res1;
        break;
    }
    if (op & 1) { /* index */
        uint32_t idx = n;
        if (res2) {
            idx =
                (imm & 0x40) ? 31u - (uint32_t)__builtin_clz(res2) : (uint32_t)__builtin_ctz(res2);
        }
        cpu->r[CPU_RCX] = idx;
    } else { /* mask into XMM0 */
        union cpu_xmm m = {.q = {0, 0}};
        if (imm & 0x40) {
            for (unsigned j = 0; j < n; j++) {
                if (res2 & (1u << j)) {
                    if (words) {
                        m.w[j] = 0xffff;
                    } else {
                        m.b[j] = 0xff;
                    }
                }
            }
        } else {
            m.l[0] = res2;
        }
        cpu->fpu.xmm[0] = m;
    }
    set_arith_flags(cpu, (res2 ? CPU_FL_CF : 0) | (lb < n ? CPU_FL_ZF : 0) |
                             (la < n ? CPU_FL_SF : 0) | ((res2 & 1) ? CPU_FL_OF : 0));
}

void cpu_exec_sse3a(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned op = in->op & 0xff;
    unsigned imm = (unsigned)in->imm & 0xff;
    if (op == 0x0f) {
        op_palignr(cpu, in);
        return;
    }
    if (in->simd != X86_SIMD_66) {
        cpu_raise_ud(cpu);
    }
    if (op >= 0x60 && op <= 0x63) {
        op_pcmpstr(cpu, in);
        return;
    }
    sse_need(cpu, CPU_F1_ECX_SSE41);
    switch (op) {
    case 0x08:
    case 0x09:
    case 0x0a:
    case 0x0b: { /* ROUNDPS/PD/SS/SD */
        static const uint8_t sizes[4] = {16, 16, 4, 8};
        cpu_fpu_check_sse(cpu);
        union cpu_xmm t;
        const union cpu_xmm *s = sse_src(cpu, in, &t, sizes[op - 8]);
        union cpu_xmm r = cpu->fpu.xmm[in->reg];
        uint32_t csr = sse_csr(cpu), out;
        switch (op) {
        case 0x08:
            out = h_roundps(&r, s, csr, imm);
            break;
        case 0x09:
            out = h_roundpd(&r, s, csr, imm);
            break;
        case 0x0a:
            out = h_roundss(&r, s, csr, imm);
            break;
        default:
            out = h_roundsd(&r, s, csr, imm);
            break;
        }
        sse_fp_done(cpu, out);
        cpu->fpu.xmm[in->reg] = r;
        return;
    }
    case 0x0c:
        op_blend_imm(cpu, in, 4);
        return;
    case 0x0d:
        op_blend_imm(cpu, in, 8);
        return;
    case 0x0e:
        op_blend_imm(cpu, in, 2);
        return;
    case 0x14:
    case 0x15:
    case 0x16:
    case 0x17:
        op_pextr(cpu, in);
        return;
    case 0x20:
    case 0x21:
    case 0x22:
        op_pinsr(cpu, in);
        return;
    case 0x40:
    case 0x41: {
        cpu_fpu_check_sse(cpu);
        union cpu_xmm t;
        const union cpu_xmm *s = sse_src(cpu, in, &t, 16);
        union cpu_xmm r = cpu->fpu.xmm[in->reg];
        uint32_t out = h_dp(&r, s, sse_csr(cpu), imm, op == 0x41, cpu->fpu.mxcsr >> 7);
        sse_fp_done(cpu, out);
        cpu->fpu.xmm[in->reg] = r;
        return;
    }
    case 0x42:
        op_mpsadbw(cpu, in);
        return;
    default:
        cpu_raise_ud(cpu);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* LDMXCSR / STMXCSR (0F AE /2, /3).                                                           */

void cpu_exec_ldmxcsr(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_fpu_check_sse(cpu);
    uint32_t v = cpu_ld32(cpu, in->seg, cpu_insn_ea(cpu, in));
    if (v & ~CPU_MXCSR_MASK) {
        cpu_raise_gp0(cpu);
    }
    cpu->fpu.mxcsr = v;
}

void cpu_exec_stmxcsr(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_fpu_check_sse(cpu);
    cpu_st32(cpu, in->seg, cpu_insn_ea(cpu, in), cpu->fpu.mxcsr);
}
