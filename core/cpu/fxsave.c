/* FXSAVE / FXRSTOR (0F AE /0, /1): the 512-byte x87+SSE state image (SDM vol. 1, 10.5.1,
 * tables 10-2 and 10-3). REX.W selects the 64-bit layout (64-bit FIP/FDP, no selectors).
 * XMM8-15 are part of the image only in 64-bit mode. */
#include "core/cpu/cpu.h"

enum {
    FXS_FCW = 0,
    FXS_FSW = 2,
    FXS_FTW = 4, /* abridged: one bit per physical register, 1 = not empty */
    FXS_FOP = 6,
    FXS_FIP = 8,
    FXS_FCS = 12,
    FXS_FDP = 16,
    FXS_FDS = 20,
    FXS_MXCSR = 24,
    FXS_MXCSR_MASK = 28,
    FXS_ST = 32,   /* ST0..ST7, 16 bytes each */
    FXS_XMM = 160, /* XMM0..XMM15, 16 bytes each */
    FXS_SIZE = 512,
};

static void fx_checks(struct cpu *cpu, const struct x86_insn *in, uint64_t *ea)
{
    if (cpu->cr0 & (CPU_CR0_EM | CPU_CR0_TS)) {
        cpu_raise(cpu, X86_EXC_NM, CPU_NO_ERROR);
    }
    if (in->mod == 3) {
        cpu_raise_ud(cpu);
    }
    *ea = cpu_insn_ea(cpu, in);
    uint64_t lin = *ea;
    if (!(cpu->mode == CPU_MODE_LONG64 && in->seg < CPU_SEG_FS)) {
        lin += cpu->seg[in->seg].base;
    }
    if (lin & 15) {
        cpu_raise_gp0(cpu);
    }
}

static unsigned fx_nxmm(const struct cpu *cpu)
{
    return cpu->mode == CPU_MODE_LONG64 ? 16 : 8;
}

void cpu_exec_fxsave(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t ea;
    uint8_t b[FXS_SIZE];
    fx_checks(cpu, in, &ea);
    /* Bytes of the image the processor does not write are left as they are in memory. */
    cpu_ld_buf(cpu, in->seg, ea, b, sizeof(b));
    const struct cpu_fpu *f = &cpu->fpu;
    uint16_t fsw = cpu_fpu_get_fsw(cpu);
    uint8_t ftw = 0;
    for (unsigned p = 0; p < 8; p++) {
        if (((f->ftw >> (2 * p)) & 3) != 3) {
            ftw |= (uint8_t)(1u << p);
        }
    }
    memcpy(b + FXS_FCW, &f->fcw, 2);
    memcpy(b + FXS_FSW, &fsw, 2);
    b[FXS_FTW] = ftw;
    b[FXS_FTW + 1] = 0;
    uint16_t fop = f->fop & 0x7ff;
    memcpy(b + FXS_FOP, &fop, 2);
    if (in->rex & 8) {
        memcpy(b + FXS_FIP, &f->fip, 8);
        memcpy(b + FXS_FDP, &f->fdp, 8);
    } else {
        uint32_t fip = (uint32_t)f->fip, fdp = (uint32_t)f->fdp;
        uint16_t zero = 0;
        memcpy(b + FXS_FIP, &fip, 4);
        memcpy(b + FXS_FCS, &f->fcs, 2);
        memcpy(b + FXS_FCS + 2, &zero, 2);
        memcpy(b + FXS_FDP, &fdp, 4);
        memcpy(b + FXS_FDS, &f->fds, 2);
        memcpy(b + FXS_FDS + 2, &zero, 2);
    }
    uint32_t mask = CPU_MXCSR_MASK;
    memcpy(b + FXS_MXCSR, &f->mxcsr, 4);
    memcpy(b + FXS_MXCSR_MASK, &mask, 4);
    for (unsigned i = 0; i < 8; i++) {
        const union cpu_fpreg *r = &f->st[(f->top + i) & 7];
        memset(b + FXS_ST + 16 * i, 0, 16);
        memcpy(b + FXS_ST + 16 * i, &r->raw.mant, 8);
        memcpy(b + FXS_ST + 16 * i + 8, &r->raw.sexp, 2);
    }
    for (unsigned i = 0; i < fx_nxmm(cpu); i++) {
        memcpy(b + FXS_XMM + 16 * i, &f->xmm[i], 16);
    }
    cpu_st_buf(cpu, in->seg, ea, b, sizeof(b));
}

void cpu_exec_fxrstor(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t ea;
    uint8_t b[FXS_SIZE];
    fx_checks(cpu, in, &ea);
    cpu_ld_buf(cpu, in->seg, ea, b, sizeof(b));
    uint32_t mxcsr;
    memcpy(&mxcsr, b + FXS_MXCSR, 4);
    if (mxcsr & ~CPU_MXCSR_MASK) {
        cpu_raise_gp0(cpu);
    }
    struct cpu_fpu *f = &cpu->fpu;
    uint16_t fcw, fsw, fop;
    memcpy(&fcw, b + FXS_FCW, 2);
    memcpy(&fsw, b + FXS_FSW, 2);
    memcpy(&fop, b + FXS_FOP, 2);
    f->fcw = (uint16_t)((fcw & 0x1f3f) | 0x40); /* as FLDCW stores it */
    cpu_fpu_set_fsw(cpu, fsw);
    f->fop = fop & 0x7ff;
    uint16_t ftw = 0;
    for (unsigned p = 0; p < 8; p++) {
        if (!(b[FXS_FTW] & (1u << p))) {
            ftw |= (uint16_t)(3u << (2 * p));
        }
    }
    f->ftw = ftw;
    if (in->rex & 8) {
        memcpy(&f->fip, b + FXS_FIP, 8);
        memcpy(&f->fdp, b + FXS_FDP, 8);
        f->fcs = 0;
        f->fds = 0;
    } else {
        uint32_t fip, fdp;
        memcpy(&fip, b + FXS_FIP, 4);
        memcpy(&fdp, b + FXS_FDP, 4);
        f->fip = fip;
        f->fdp = fdp;
        memcpy(&f->fcs, b + FXS_FCS, 2);
        memcpy(&f->fds, b + FXS_FDS, 2);
    }
    f->mxcsr = mxcsr;
    for (unsigned i = 0; i < 8; i++) {
        union cpu_fpreg *r = &f->st[(f->top + i) & 7];
        memcpy(&r->raw.mant, b + FXS_ST + 16 * i, 8);
        memcpy(&r->raw.sexp, b + FXS_ST + 16 * i + 8, 2);
    }
    for (unsigned i = 0; i < fx_nxmm(cpu); i++) {
        memcpy(&f->xmm[i], b + FXS_XMM + 16 * i, 16);
    }
}
