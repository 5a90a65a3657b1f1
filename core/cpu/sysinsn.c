/* System instructions of the soft CPU: descriptor-table loads and stores, LLDT/LTR,
 * LAR/LSL/VERR/VERW/ARPL, MOV CR/DR with mode switching, LMSW/SMSW/CLTS, SYSCALL/SYSRET,
 * SYSENTER/SYSEXIT, SWAPGS, RDMSR/WRMSR, RDTSC(P), CPUID, HLT, INVLPG, INVD/WBINVD, RDPMC,
 * port I/O permission checks (IOPL and the TSS I/O bitmap), and the RESET state. */
#include "core/cpu/sysint.h"

#include "core/bus.h"
#include "core/log.h"
#include "hostdrv/accel.h"

#include <time.h>

#define SYS_SEL_MASK 0xfffcu
#define SYS_APIC_TPR 0x80u

/* Flat segments loaded by SYSCALL/SYSRET/SYSENTER/SYSEXIT (SDM vol. 2, SYSCALL). */
#define SYS_FLAT_CODE (CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_CODE | CPU_SEGA_RW | \
                       CPU_SEGA_ACCESSED | CPU_SEGA_G)
#define SYS_FLAT_DATA (CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED | CPU_SEGA_G | \
                       CPU_SEGA_DB)

static void sys_require_pmode(struct cpu *cpu)
{
    if (!sys_is_pmode(cpu)) {
        cpu_raise_ud(cpu);
    }
}

static void sys_require_cpl0(struct cpu *cpu)
{
    if (cpu->cpl != 0) {
        cpu_raise_gp0(cpu);
    }
}

static void sys_set_zf(struct cpu *cpu, bool zf)
{
    uint64_t f = cpu_get_rflags(cpu);
    f = zf ? (f | CPU_FL_ZF) : (f & ~(uint64_t)CPU_FL_ZF);
    cpu_set_rflags(cpu, f);
}

/* Linear address of the ModRM memory operand without access checks (INVLPG). */
static uint64_t sys_insn_lin(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t ea = cpu_insn_ea(cpu, in);
    if (cpu->mode == CPU_MODE_LONG64) {
        return ea + (in->seg >= CPU_SEG_FS ? cpu->seg[in->seg].base : 0);
    }
    return (cpu->seg[in->seg].base + ea) & 0xffffffffull;
}

/* ---- 0F 00: SLDT STR LLDT LTR VERR VERW ---- */

static void sys_store_sel(struct cpu *cpu, const struct x86_insn *in, uint16_t sel)
{
    if (in->mod == 3) {
        cpu_set_reg(cpu, in->rm, in->opsize == 2 ? 2 : in->opsize, in->rex != 0, sel);
    } else {
        cpu_st16(cpu, in->seg, cpu_insn_ea(cpu, in), sel);
    }
}

static void sys_lldt(struct cpu *cpu, uint16_t sel)
{
    if ((sel & SYS_SEL_MASK) == 0) {
        cpu_set_seg(cpu, CPU_SEG_LDTR, sel, 0, 0, CPU_SEGA_UNUSABLE);
        return;
    }
    if (sel & 4) {
        cpu_raise(cpu, X86_EXC_GP, sel & SYS_SEL_MASK);
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, sys_is_long(cpu), X86_EXC_GP, 0);
    if ((d.attr & CPU_SEGA_S) || sys_desc_type(&d) != 2) {
        cpu_raise(cpu, X86_EXC_GP, sel & SYS_SEL_MASK);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, sel & SYS_SEL_MASK);
    }
    cpu_set_seg(cpu, CPU_SEG_LDTR, sel, d.base, d.limit, d.attr);
}

static void sys_ltr(struct cpu *cpu, uint16_t sel)
{
    if ((sel & SYS_SEL_MASK) == 0) {
        cpu_raise_gp0(cpu);
    }
    if (sel & 4) {
        cpu_raise(cpu, X86_EXC_GP, sel & SYS_SEL_MASK);
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, sys_is_long(cpu), X86_EXC_GP, 0);
    unsigned type = sys_desc_type(&d);
    if ((d.attr & CPU_SEGA_S) || (type != 9 && (type != 1 || sys_is_long(cpu)))) {
        cpu_raise(cpu, X86_EXC_GP, sel & SYS_SEL_MASK);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, sel & SYS_SEL_MASK);
    }
    /* Mark the descriptor busy (type bit 1). */
    uint64_t lin = (cpu->gdtr.base + (sel & ~7u)) & (sys_is_long(cpu) ? ~0ull : 0xffffffffull);
    uint8_t b = cpu_ldlin8(cpu, lin + 5, CPU_MMU_SUP);
    cpu_stlin8(cpu, lin + 5, b | 2, CPU_MMU_SUP);
    cpu_set_seg(cpu, CPU_SEG_TR, sel, d.base, d.limit, d.attr | 2);
}

/* Descriptor visible at the current CPL for LAR/LSL/VERR/VERW: false sets ZF=0. */
static bool sys_desc_visible(struct cpu *cpu, uint16_t sel, struct sys_desc *d)
{
    if ((sel & SYS_SEL_MASK) == 0 || !sys_desc_read(cpu, sel, d, false)) {
        return false;
    }
    bool conforming = (d->attr & CPU_SEGA_S) && (d->attr & CPU_SEGA_CODE) &&
                      (d->attr & CPU_SEGA_DC);
    if (!conforming && (sys_desc_dpl(d) < cpu->cpl || sys_desc_dpl(d) < (sel & 3u))) {
        return false;
    }
    return true;
}

static void sys_verrw(struct cpu *cpu, uint16_t sel, bool write)
{
    struct sys_desc d;
    bool ok = false;
    if (sys_desc_visible(cpu, sel, &d) && (d.attr & CPU_SEGA_S)) {
        if (d.attr & CPU_SEGA_CODE) {
            ok = !write && (d.attr & CPU_SEGA_RW);
        } else {
            ok = !write || (d.attr & CPU_SEGA_RW);
        }
    }
    sys_set_zf(cpu, ok);
}

void cpu_sys_grp6(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_pmode(cpu);
    unsigned op = in->reg & 7;
    switch (op) {
    case 0: /* SLDT */
        sys_store_sel(cpu, in, cpu->seg[CPU_SEG_LDTR].sel);
        return;
    case 1: /* STR */
        sys_store_sel(cpu, in, cpu->seg[CPU_SEG_TR].sel);
        return;
    default:
        break;
    }
    /* LLDT/LTR check CPL before touching their operand: #GP(0), not a #PF from the read. */
    if (op == 2 || op == 3) {
        sys_require_cpl0(cpu);
    }
    uint16_t sel = (uint16_t)cpu_read_rm(cpu, in, 2);
    switch (op) {
    case 2:
        sys_lldt(cpu, sel);
        break;
    case 3:
        sys_ltr(cpu, sel);
        break;
    case 4:
        sys_verrw(cpu, sel, false);
        break;
    case 5:
        sys_verrw(cpu, sel, true);
        break;
    default:
        cpu_raise_ud(cpu);
    }
}

/* ---- 0F 01 ---- */

static void sys_store_dtable(struct cpu *cpu, const struct x86_insn *in,
                             const struct cpu_dtable *t)
{
    uint64_t ea = cpu_insn_ea(cpu, in);
    uint8_t buf[10];
    unsigned len = cpu->mode == CPU_MODE_LONG64 ? 10 : 6;
    uint64_t base = len == 10 ? t->base : (uint32_t)t->base;
    buf[0] = (uint8_t)t->limit;
    buf[1] = (uint8_t)(t->limit >> 8);
    for (unsigned i = 0; i < 8; i++) {
        buf[2 + i] = (uint8_t)(base >> (8 * i));
    }
    cpu_st_buf(cpu, in->seg, ea, buf, len);
}

static void sys_load_dtable(struct cpu *cpu, const struct x86_insn *in, struct cpu_dtable *t)
{
    uint64_t ea = cpu_insn_ea(cpu, in);
    uint8_t buf[10] = {0};
    unsigned len = cpu->mode == CPU_MODE_LONG64 ? 10 : 6;
    cpu_ld_buf(cpu, in->seg, ea, buf, len);
    uint64_t base = 0;
    for (unsigned i = 0; i < len - 2; i++) {
        base |= (uint64_t)buf[2 + i] << (8 * i);
    }
    if (len == 10 && !cpu_is_canonical(base)) {
        cpu_raise_gp0(cpu);
    }
    if (len == 6 && in->opsize == 2) {
        base &= 0xffffff;
    }
    t->limit = buf[0] | ((uint32_t)buf[1] << 8);
    t->base = base;
}

static void sys_rdtscp(struct cpu *cpu)
{
    if (!(cpu->feat.e1_edx & CPU_E1_EDX_RDTSCP)) {
        cpu_raise_ud(cpu);
    }
    if ((cpu->cr4 & CPU_CR4_TSD) && cpu->cpl != 0) {
        cpu_raise_gp0(cpu);
    }
    uint64_t t = cpu_tsc_read(cpu);
    cpu->r[CPU_RAX] = (uint32_t)t;
    cpu->r[CPU_RDX] = t >> 32;
    cpu->r[CPU_RCX] = (uint32_t)cpu->msr.tsc_aux;
}

static void sys_lmsw(struct cpu *cpu, uint16_t v)
{
    sys_require_cpl0(cpu);
    if (cpu->mode == CPU_MODE_V86) {
        cpu_raise_gp0(cpu);
    }
    /* LMSW loads MP, EM, TS and can set but not clear PE. */
    uint64_t cr0 = (cpu->cr0 & ~0xeull) | (v & 0xfu) | (cpu->cr0 & CPU_CR0_PE);
    if (cr0 != cpu->cr0) {
        cpu->cr0 = cr0;
        cpu_update_mode(cpu);
    }
}

void cpu_sys_grp7(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned op = in->reg & 7;
    if (in->mod == 3) {
        unsigned rm = in->rm & 7;
        if (op == 4) { /* SMSW r */
            cpu_set_reg(cpu, in->rm, in->opsize, in->rex != 0, cpu->cr0);
            return;
        }
        if (op == 6) { /* LMSW r */
            sys_lmsw(cpu, (uint16_t)cpu_get_reg(cpu, in->rm, 2, in->rex != 0));
            return;
        }
        if (op == 7 && rm == 0) { /* SWAPGS */
            if (cpu->mode != CPU_MODE_LONG64) {
                cpu_raise_ud(cpu);
            }
            sys_require_cpl0(cpu);
            uint64_t t = cpu->seg[CPU_SEG_GS].base;
            cpu->seg[CPU_SEG_GS].base = cpu->msr.kernel_gs_base;
            cpu->msr.kernel_gs_base = t;
            return;
        }
        if (op == 7 && rm == 1) {
            sys_rdtscp(cpu);
            return;
        }
        /* MONITOR/MWAIT, CLAC/STAC, XGETBV, VMX/SVM: not advertised. */
        cpu_raise_ud(cpu);
    }
    switch (op) {
    case 0: /* SGDT */
        sys_store_dtable(cpu, in, &cpu->gdtr);
        break;
    case 1: /* SIDT */
        sys_store_dtable(cpu, in, &cpu->idtr);
        break;
    case 2: /* LGDT */
    case 3: { /* LIDT */
        sys_require_cpl0(cpu);
        if (cpu->mode == CPU_MODE_V86) {
            cpu_raise_gp0(cpu);
        }
        struct cpu_dtable t;
        sys_load_dtable(cpu, in, &t);
        if (op == 2) {
            cpu->gdtr = t;
        } else {
            cpu->idtr = t;
        }
        break;
    }
    case 4: /* SMSW m16 */
        cpu_st16(cpu, in->seg, cpu_insn_ea(cpu, in), (uint16_t)cpu->cr0);
        break;
    case 6: /* LMSW m16: privilege first, then the operand read */
        sys_require_cpl0(cpu);
        sys_lmsw(cpu, cpu_ld16(cpu, in->seg, cpu_insn_ea(cpu, in)));
        break;
    case 7: /* INVLPG */
        sys_require_cpl0(cpu);
        if (cpu->mode == CPU_MODE_V86) {
            cpu_raise_gp0(cpu);
        }
        cpu_tlb_flush_page(cpu, sys_insn_lin(cpu, in));
        cpu->block_stop = true;
        break;
    default:
        cpu_raise_ud(cpu);
    }
}

/* ---- LAR / LSL / ARPL ---- */

void cpu_sys_lar(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_pmode(cpu);
    uint16_t sel = (uint16_t)cpu_read_rm(cpu, in, 2);
    struct sys_desc d;
    bool ok = sys_desc_visible(cpu, sel, &d);
    if (ok && !(d.attr & CPU_SEGA_S)) {
        unsigned t = sys_desc_type(&d);
        ok = sys_is_long(cpu) ? (t == 2 || t == 9 || t == 0xb || t == 0xc)
                              : (t == 1 || t == 2 || t == 3 || t == 4 || t == 5 || t == 9 ||
                                 t == 0xb || t == 0xc);
    }
    if (ok) {
        uint32_t v = d.hi & (in->opsize == 2 ? 0xff00u : 0x00f0ff00u);
        cpu_set_reg(cpu, in->reg, in->opsize == 8 ? 4 : in->opsize, in->rex != 0, v);
    }
    sys_set_zf(cpu, ok);
}

void cpu_sys_lsl(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_pmode(cpu);
    uint16_t sel = (uint16_t)cpu_read_rm(cpu, in, 2);
    struct sys_desc d;
    bool ok = sys_desc_visible(cpu, sel, &d);
    if (ok && !(d.attr & CPU_SEGA_S)) {
        unsigned t = sys_desc_type(&d);
        ok = sys_is_long(cpu) ? (t == 2 || t == 9 || t == 0xb)
                              : (t == 1 || t == 2 || t == 3 || t == 9 || t == 0xb);
    }
    if (ok) {
        cpu_set_reg(cpu, in->reg, in->opsize == 8 ? 4 : in->opsize, in->rex != 0, d.limit);
    }
    sys_set_zf(cpu, ok);
}

void cpu_sys_arpl(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_pmode(cpu);
    uint16_t dst = (uint16_t)cpu_read_rm(cpu, in, 2);
    uint16_t src = (uint16_t)cpu_get_reg(cpu, in->reg, 2, false);
    if ((dst & 3) < (src & 3)) {
        cpu_write_rm(cpu, in, 2, (dst & ~3u) | (src & 3u));
        sys_set_zf(cpu, true);
    } else {
        sys_set_zf(cpu, false);
    }
}

void cpu_sys_clts(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_cpl0(cpu);
    cpu->cr0 &= ~CPU_CR0_TS;
}

/* ---- control registers ---- */

static void sys_mov_dr(struct cpu *cpu, const struct x86_insn *in);

/* CR4 bits a guest may set. DE and MCE are accepted although CPUID does not advertise them
 * (firmware such as OVMF sets MCE unconditionally); DE makes DR4/DR5 #UD, MCE is inert. */
#define SYS_CR4_ALLOWED (CPU_CR4_TSD | CPU_CR4_DE | CPU_CR4_PSE | CPU_CR4_PAE | CPU_CR4_MCE | \
                         CPU_CR4_PGE | CPU_CR4_PCE | CPU_CR4_OSFXSR | CPU_CR4_OSXMMEXCPT)
#define SYS_CR0_WRITABLE (CPU_CR0_PE | CPU_CR0_MP | CPU_CR0_EM | CPU_CR0_TS | CPU_CR0_ET | \
                          CPU_CR0_NE | CPU_CR0_WP | CPU_CR0_AM | CPU_CR0_NW | CPU_CR0_CD | \
                          CPU_CR0_PG)

int cpu_sys_write_cr(struct cpu *cpu, unsigned n, uint64_t val)
{
    switch (n) {
    case 0: {
        if (val >> 32) {
            return -1;
        }
        val = (val & SYS_CR0_WRITABLE) | CPU_CR0_ET;
        if (((val & CPU_CR0_PG) && !(val & CPU_CR0_PE)) ||
            ((val & CPU_CR0_NW) && !(val & CPU_CR0_CD))) {
            return -1;
        }
        uint64_t old = cpu->cr0;
        bool pg_on = (val & CPU_CR0_PG) && !(old & CPU_CR0_PG);
        bool pg_off = !(val & CPU_CR0_PG) && (old & CPU_CR0_PG);
        if (pg_on && (cpu->efer & CPU_EFER_LME)) {
            /* Entering long mode needs PAE and a CS that is not 64-bit (SDM 9.8.5). */
            if (!(cpu->cr4 & CPU_CR4_PAE) || (cpu->seg[CPU_SEG_CS].attr & CPU_SEGA_L)) {
                return -1;
            }
            cpu->efer |= CPU_EFER_LMA;
        }
        if (pg_off && (cpu->efer & CPU_EFER_LMA)) {
            if (cpu->mode == CPU_MODE_LONG64) {
                return -1;
            }
            cpu->efer &= ~CPU_EFER_LMA;
        }
        if (!(val & CPU_CR0_PE) && (cpu->efer & CPU_EFER_LMA)) {
            return -1;
        }
        cpu->cr0 = val;
        if ((old ^ val) & (CPU_CR0_PG | CPU_CR0_WP | CPU_CR0_PE)) {
            cpu_tlb_flush(cpu, false);
        }
        cpu_update_mode(cpu);
        return 0;
    }
    case 2:
        cpu->cr2 = val;
        return 0;
    case 3:
        if (sys_is_long(cpu)) {
            if (val & 0xffffff0000000000ull) { /* above MAXPHYADDR; no PCID */
                return -1;
            }
        } else {
            val = (uint32_t)val;
        }
        cpu->cr3 = val;
        cpu_tlb_flush(cpu, (cpu->cr4 & CPU_CR4_PGE) != 0);
        cpu->block_stop = true;
        return 0;
    case 4: {
        if (val & ~(uint64_t)SYS_CR4_ALLOWED) {
            return -1;
        }
        if (sys_is_long(cpu) && !(val & CPU_CR4_PAE)) {
            return -1;
        }
        uint64_t old = cpu->cr4;
        cpu->cr4 = val;
        if ((old ^ val) & (CPU_CR4_PGE | CPU_CR4_PAE | CPU_CR4_PSE)) {
            cpu_tlb_flush(cpu, false);
        }
        cpu_update_mode(cpu);
        return 0;
    }
    case 8:
        if (val & ~0xfull) {
            return -1;
        }
        cpu->cr8 = val;
        if (cpu->intc && cpu->intc->apic_write) {
            cpu->intc->apic_write(cpu->intc->opaque, SYS_APIC_TPR, (uint32_t)val << 4);
        }
        cpu_sys_intr_hint(cpu); /* a lower TPR may unmask a pending interrupt */
        cpu->block_stop = true;
        return 0;
    default:
        return -2;
    }
}

uint64_t cpu_sys_read_cr(struct cpu *cpu, unsigned n)
{
    switch (n) {
    case 0:
        return cpu->cr0;
    case 2:
        return cpu->cr2;
    case 3:
        return cpu->cr3;
    case 4:
        return cpu->cr4;
    default:
        if (cpu->intc && cpu->intc->apic_read) {
            cpu->cr8 = (cpu->intc->apic_read(cpu->intc->opaque, SYS_APIC_TPR) >> 4) & 0xf;
        }
        return cpu->cr8;
    }
}

void cpu_sys_mov_dr(struct cpu *cpu, const struct x86_insn *in)
{
    sys_mov_dr(cpu, in);
}

void cpu_sys_mov_cr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = in->reg;
    if ((in->op & 0xff) == 0x21 || (in->op & 0xff) == 0x23) {
        sys_mov_dr(cpu, in); /* the decoder sends 0F 20-23 here */
        return;
    }
    if (n != 0 && n != 2 && n != 3 && n != 4 && n != 8) {
        cpu_raise_ud(cpu);
    }
    if (cpu->cpl != 0 || cpu->mode == CPU_MODE_V86) {
        cpu_raise_gp0(cpu);
    }
    unsigned size = cpu->mode == CPU_MODE_LONG64 ? 8 : 4;
    if ((in->op & 0xff) == 0x20) {
        cpu_set_reg(cpu, in->rm, size, true, cpu_sys_read_cr(cpu, n));
        return;
    }
    uint64_t v = cpu_get_reg(cpu, in->rm, size, true);
    if (cpu_sys_write_cr(cpu, n, v) != 0) {
        cpu_raise_gp0(cpu);
    }
    cpu->block_stop = true;
}

static void sys_mov_dr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = in->reg;
    if (n > 7) {
        cpu_raise_ud(cpu);
    }
    if (n == 4 || n == 5) {
        if (cpu->cr4 & CPU_CR4_DE) {
            cpu_raise_ud(cpu);
        }
        n += 2;
    }
    if (cpu->cpl != 0 || cpu->mode == CPU_MODE_V86) {
        cpu_raise_gp0(cpu);
    }
    unsigned size = cpu->mode == CPU_MODE_LONG64 ? 8 : 4;
    if ((in->op & 0xff) == 0x21) {
        cpu_set_reg(cpu, in->rm, size, true, cpu->dr[n]);
        return;
    }
    uint64_t v = cpu_get_reg(cpu, in->rm, size, true);
    if ((n == 6 || n == 7) && (v >> 32)) {
        cpu_raise_gp0(cpu);
    }
    if (n == 6) {
        v = (v & 0x0000e00full) | 0xffff0ff0ull;
    } else if (n == 7) {
        v = (v & 0xffff2bffull) | 0x400ull;
    }
    cpu->dr[n] = v;
}

/* ---- SYSCALL / SYSRET / SYSENTER / SYSEXIT ---- */

static void sys_flat_cs(struct cpu *cpu, uint16_t sel, bool l, unsigned cpl)
{
    uint32_t attr = SYS_FLAT_CODE | (cpl << CPU_SEGA_DPL_SHIFT) | (l ? CPU_SEGA_L : CPU_SEGA_DB);
    cpu->cpl = (uint8_t)cpl;
    cpu_set_seg(cpu, CPU_SEG_CS, sel, 0, 0xffffffffu, attr);
}

static void sys_flat_ss(struct cpu *cpu, uint16_t sel, unsigned dpl)
{
    cpu_set_seg(cpu, CPU_SEG_SS, sel, 0, 0xffffffffu, SYS_FLAT_DATA | (dpl << CPU_SEGA_DPL_SHIFT));
}

void cpu_sys_syscall(struct cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->efer & CPU_EFER_SCE) || !sys_is_pmode(cpu)) {
        cpu_raise_ud(cpu);
    }
    uint16_t sel = (uint16_t)(cpu->msr.star >> 32) & SYS_SEL_MASK;
    uint64_t fl = cpu_get_rflags(cpu);
    if (sys_is_long(cpu)) {
        cpu->r[CPU_RCX] = cpu->rip;
        cpu->r[CPU_R11] = fl & ~(uint64_t)CPU_FL_RF;
        uint64_t target = cpu->mode == CPU_MODE_LONG64 ? cpu->msr.lstar : cpu->msr.cstar;
        cpu_set_rflags(cpu, (fl & ~cpu->msr.sfmask & ~(uint64_t)(CPU_FL_RF | CPU_FL_VM)) |
                                CPU_FL_FIXED1);
        sys_flat_cs(cpu, sel, true, 0);
        sys_flat_ss(cpu, (uint16_t)(sel + 8), 0);
        cpu->rip = target;
    } else {
        cpu->r[CPU_RCX] = (uint32_t)cpu->rip;
        cpu_set_rflags(cpu, fl & ~(uint64_t)(CPU_FL_IF | CPU_FL_RF | CPU_FL_VM));
        sys_flat_cs(cpu, sel, false, 0);
        sys_flat_ss(cpu, (uint16_t)(sel + 8), 0);
        cpu->rip = (uint32_t)cpu->msr.star;
    }
    cpu->block_stop = true;
}

void cpu_sys_sysret(struct cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->efer & CPU_EFER_SCE)) {
        cpu_raise_ud(cpu);
    }
    if (!sys_is_pmode(cpu) || cpu->cpl != 0) {
        cpu_raise_gp0(cpu);
    }
    uint16_t sel = (uint16_t)(cpu->msr.star >> 48);
    if (sys_is_long(cpu)) {
        bool to64 = in->opsize == 8;
        uint64_t rip = to64 ? cpu->r[CPU_RCX] : (uint32_t)cpu->r[CPU_RCX];
        if (!cpu_is_canonical(rip)) {
            cpu_raise_gp0(cpu);
        }
        cpu_set_rflags(cpu, (cpu->r[CPU_R11] & 0x3c7fd7ull) | CPU_FL_FIXED1);
        sys_flat_cs(cpu, (uint16_t)((to64 ? sel + 16 : sel) | 3), to64, 3);
        sys_flat_ss(cpu, (uint16_t)((sel + 8) | 3), 3);
        cpu->rip = rip;
    } else {
        cpu_set_rflags(cpu, cpu_get_rflags(cpu) | CPU_FL_IF);
        sys_flat_cs(cpu, (uint16_t)(sel | 3), false, 3);
        sys_flat_ss(cpu, (uint16_t)((sel + 8) | 3), 3);
        cpu->rip = (uint32_t)cpu->r[CPU_RCX];
    }
    cpu->block_stop = true;
}

void cpu_sys_sysenter(struct cpu *cpu, const struct x86_insn *in)
{
    /* The advertised vendor is AMD: SYSENTER is #UD in long mode (APM vol. 3). */
    if (!(cpu->feat.f1_edx & CPU_F1_EDX_SEP) || sys_is_long(cpu)) {
        cpu_raise_ud(cpu);
    }
    uint16_t sel = (uint16_t)cpu->msr.sysenter_cs & SYS_SEL_MASK;
    if (!sys_is_pmode(cpu) || sel == 0) {
        cpu_raise_gp0(cpu);
    }
    cpu_set_rflags(cpu, cpu_get_rflags(cpu) & ~(uint64_t)(CPU_FL_IF | CPU_FL_RF | CPU_FL_VM));
    sys_flat_cs(cpu, sel, false, 0);
    sys_flat_ss(cpu, (uint16_t)(sel + 8), 0);
    cpu->r[CPU_RSP] = (uint32_t)cpu->msr.sysenter_esp;
    cpu->rip = (uint32_t)cpu->msr.sysenter_eip;
    cpu->block_stop = true;
}

void cpu_sys_sysexit(struct cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->feat.f1_edx & CPU_F1_EDX_SEP) || sys_is_long(cpu)) {
        cpu_raise_ud(cpu);
    }
    uint16_t sel = (uint16_t)cpu->msr.sysenter_cs & SYS_SEL_MASK;
    if (!sys_is_pmode(cpu) || sel == 0 || cpu->cpl != 0) {
        cpu_raise_gp0(cpu);
    }
    sys_flat_cs(cpu, (uint16_t)((sel + 16) | 3), false, 3);
    sys_flat_ss(cpu, (uint16_t)((sel + 24) | 3), 3);
    cpu->r[CPU_RSP] = (uint32_t)cpu->r[CPU_RCX];
    cpu->rip = (uint32_t)cpu->r[CPU_RDX];
    cpu->block_stop = true;
}

/* ---- MSR, TSC, CPUID, misc ---- */

void cpu_sys_rdmsr(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_cpl0(cpu);
    if (cpu->mode == CPU_MODE_V86) {
        cpu_raise_gp0(cpu);
    }
    uint64_t v;
    if (cpu_msr_read(cpu, (uint32_t)cpu->r[CPU_RCX], &v) != 0) {
        log_debug(SYS_TAG, "rdmsr %#x: #GP", (uint32_t)cpu->r[CPU_RCX]);
        cpu_raise_gp0(cpu);
    }
    cpu->r[CPU_RAX] = (uint32_t)v;
    cpu->r[CPU_RDX] = v >> 32;
}

void cpu_sys_wrmsr(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_cpl0(cpu);
    if (cpu->mode == CPU_MODE_V86) {
        cpu_raise_gp0(cpu);
    }
    uint64_t v = (uint32_t)cpu->r[CPU_RAX] | (cpu->r[CPU_RDX] << 32);
    if (cpu_msr_write(cpu, (uint32_t)cpu->r[CPU_RCX], v) != 0) {
        log_debug(SYS_TAG, "wrmsr %#x <- %#llx: #GP", (uint32_t)cpu->r[CPU_RCX],
                  (unsigned long long)v);
        cpu_raise_gp0(cpu);
    }
    cpu->block_stop = true;
}

uint64_t cpu_tsc_read(struct cpu *cpu)
{
    uint64_t src;
    if (cpu->deterministic) {
        src = cpu->icount;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t hz = cpu->tsc_hz ? cpu->tsc_hz : CPU_SYS_DEFAULT_TSC_HZ;
        unsigned __int128 ns = (unsigned __int128)ts.tv_sec * 1000000000u + ts.tv_nsec;
        src = (uint64_t)(ns * hz / 1000000000u);
    }
    return src + cpu->msr.tsc_offset;
}

void cpu_sys_rdtsc(struct cpu *cpu, const struct x86_insn *in)
{
    if ((cpu->cr4 & CPU_CR4_TSD) && cpu->cpl != 0) {
        cpu_raise_gp0(cpu);
    }
    uint64_t t = cpu_tsc_read(cpu);
    cpu->r[CPU_RAX] = (uint32_t)t;
    cpu->r[CPU_RDX] = t >> 32;
}

void cpu_sys_rdpmc(struct cpu *cpu, const struct x86_insn *in)
{
    /* No performance counters are advertised (SDM: #GP(0) for an invalid counter). */
    cpu_raise_gp0(cpu);
}

void cpu_sys_cpuid(struct cpu *cpu, const struct x86_insn *in)
{
    uint32_t out[4];
    cpu_cpuid_query(cpu, (uint32_t)cpu->r[CPU_RAX], (uint32_t)cpu->r[CPU_RCX], out);
    cpu->r[CPU_RAX] = out[0];
    cpu->r[CPU_RBX] = out[1];
    cpu->r[CPU_RCX] = out[2];
    cpu->r[CPU_RDX] = out[3];
}

void cpu_sys_hlt(struct cpu *cpu, const struct x86_insn *in)
{
    sys_require_cpl0(cpu);
    cpu->halted = true;
    cpu->block_stop = true;
}

void cpu_sys_invd(struct cpu *cpu, const struct x86_insn *in)
{
    /* Caches are not modelled: INVD and WBINVD only check privilege. */
    sys_require_cpl0(cpu);
}

/* ---- port I/O ---- */

void cpu_io_check(struct cpu *cpu, uint16_t port, unsigned size)
{
    if (cpu->mode == CPU_MODE_REAL) {
        return;
    }
    unsigned iopl = (cpu->rflags & CPU_FL_IOPL) >> CPU_FL_IOPL_SHIFT;
    if (cpu->mode != CPU_MODE_V86 && cpu->cpl <= iopl) {
        return;
    }
    /* The TSS I/O permission bitmap (SDM vol. 1, 19.5.2). */
    const struct cpu_seg *tr = &cpu->seg[CPU_SEG_TR];
    unsigned type = tr->attr & CPU_SEGA_TYPE;
    if ((type != 0x9 && type != 0xb) || tr->limit < 0x67 || (tr->sel & SYS_SEL_MASK) == 0) {
        cpu_raise_gp0(cpu);
    }
    uint64_t mask32 = sys_is_long(cpu) ? ~0ull : 0xffffffffull;
    uint32_t iobase = cpu_ldlin16(cpu, (tr->base + 0x66) & mask32, CPU_MMU_SUP);
    uint32_t off = iobase + port / 8;
    if ((uint64_t)off + 1 > tr->limit) {
        cpu_raise_gp0(cpu);
    }
    uint16_t bits = cpu_ldlin16(cpu, (tr->base + off) & mask32, CPU_MMU_SUP);
    if ((bits >> (port & 7)) & ((1u << size) - 1)) {
        cpu_raise_gp0(cpu);
    }
}

uint32_t cpu_in(struct cpu *cpu, uint16_t port, unsigned size)
{
    cpu_io_check(cpu, port, size);
    uint64_t v = ~0ull;
    if (cpu->pio) {
        bus_read(cpu->pio, port, size, &v);
    }
    return size == 4 ? (uint32_t)v : (uint32_t)(v & ((1u << (size * 8)) - 1));
}

void cpu_out(struct cpu *cpu, uint16_t port, unsigned size, uint32_t val)
{
    cpu_io_check(cpu, port, size);
    if (cpu->pio) {
        bus_write(cpu->pio, port, size, val);
    }
}

/* ---- RESET ---- */

static void sys_reset_seg(struct cpu *cpu, int seg, uint16_t sel, uint64_t base, uint32_t attr)
{
    cpu_set_seg(cpu, seg, sel, base, 0xffff, attr);
}

void cpu_reset(struct cpu *cpu)
{
    /* SDM vol. 3, table 9-1. */
    memset(cpu->r, 0, sizeof(cpu->r));
    cpu->rip = 0xfff0;
    cpu->insn_rip = 0xfff0;
    cpu->rflags = CPU_FL_FIXED1;
    cpu->cc_op = CPU_CC_EFLAGS;
    cpu->cr0 = CPU_CR0_ET | CPU_CR0_CD | CPU_CR0_NW;
    cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->cr8 = 0;
    cpu->efer = 0;
    cpu->xcr0 = 1;
    cpu->a20_mask = ~0ull;
    cpu->cpl = 0;
    memset(cpu->dr, 0, sizeof(cpu->dr));
    cpu->dr[6] = 0xffff0ff0;
    cpu->dr[7] = 0x400;
    memset(&cpu->msr, 0, sizeof(cpu->msr));
    cpu->msr.pat = 0x0007040600070406ull;
    cpu->msr.apic_base = 0xfee00000ull | (1ull << 11) | (cpu->index == 0 ? 1ull << 8 : 0);
    cpu->msr.mtrr_def_type = 0xc06; /* MTRRs and fixed MTRRs enabled, default WB */
    for (int i = 0; i < 11; i++) {
        cpu->msr.mtrr_fixed[i] = 0x0606060606060606ull;
    }
    cpu->msr.misc_enable = 1; /* fast strings */
    if (!cpu->tsc_hz) {
        cpu->tsc_hz = CPU_SYS_DEFAULT_TSC_HZ;
    }
    cpu->msr.tsc_offset = 0;
    cpu->msr.tsc_offset = -cpu_tsc_read(cpu);
    cpu->gdtr.base = cpu->idtr.base = 0;
    cpu->gdtr.limit = cpu->idtr.limit = 0xffff;
    uint32_t data = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED;
    for (int s = 0; s < CPU_SEG_LDTR; s++) {
        sys_reset_seg(cpu, s, 0, 0, data);
    }
    sys_reset_seg(cpu, CPU_SEG_CS, 0xf000, 0xffff0000ull, data | CPU_SEGA_CODE);
    sys_reset_seg(cpu, CPU_SEG_LDTR, 0, 0, CPU_SEGA_P | 2);
    sys_reset_seg(cpu, CPU_SEG_TR, 0, 0, CPU_SEGA_P | 11);
    cpu_cpuid_init_features(cpu);
    uint32_t id[4];
    cpu_cpuid_query(cpu, 1, 0, id);
    cpu->r[CPU_RDX] = id[0]; /* the processor signature after RESET */
    cpu->halted = false;
    cpu->intr_shadow = 0;
    cpu->nmi_blocked = false;
    cpu->intr_hint = 1;
    cpu->intr_wait_if = false;
    cpu->deliver_depth = 0;
    cpu->deliver_vector = -1;
    cpu->exc_vector = -1;
    cpu_fpu_reset(cpu);
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
}
