/* Model-specific registers of the soft CPU (SDM vol. 4; AMD APM vol. 2 appendix A). Unknown
 * MSRs and refused values return -EINVAL, which RDMSR/WRMSR turn into #GP(0). */
#include "core/cpu/sysint.h"

#include "hostdrv/accel.h"

#include <errno.h>

#define MSR_TSC 0x10u
#define MSR_APIC_BASE 0x1bu
#define MSR_PATCH_LEVEL 0x8bu
#define MSR_MTRRCAP 0xfeu
#define MSR_SYSENTER_CS 0x174u
#define MSR_SYSENTER_ESP 0x175u
#define MSR_SYSENTER_EIP 0x176u
#define MSR_MISC_ENABLE 0x1a0u
#define MSR_MTRR_PHYS0 0x200u
#define MSR_MTRR_PHYS_END 0x210u
#define MSR_MTRR_FIX64K 0x250u
#define MSR_MTRR_FIX16K_0 0x258u
#define MSR_MTRR_FIX16K_1 0x259u
#define MSR_MTRR_FIX4K_0 0x268u
#define MSR_MTRR_FIX4K_7 0x26fu
#define MSR_PAT 0x277u
#define MSR_MTRR_DEF 0x2ffu
#define MSR_TSC_DEADLINE 0x6e0u
#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SFMASK 0xc0000084u
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_K8_SYSCFG 0xc0010010u
#define MSR_K7_HWCR 0xc0010015u
#define MSR_K8_INT_PENDING 0xc0010055u

#define MSR_MTRRCAP_VALUE 0x508ull /* 8 variable ranges, fixed ranges, WC (SDM 11.11.1) */
#define MSR_APIC_BASE_BSP (1ull << 8)
#define MSR_APIC_BASE_EN (1ull << 11)
#define MSR_PHYS_RSVD 0xffffff0000000000ull /* above MAXPHYADDR (40) */

/* Index of a fixed-range MTRR in msr.mtrr_fixed, or -1. */
static int msr_fixed_index(uint32_t idx)
{
    if (idx == MSR_MTRR_FIX64K) {
        return 0;
    }
    if (idx == MSR_MTRR_FIX16K_0 || idx == MSR_MTRR_FIX16K_1) {
        return 1 + (int)(idx - MSR_MTRR_FIX16K_0);
    }
    if (idx >= MSR_MTRR_FIX4K_0 && idx <= MSR_MTRR_FIX4K_7) {
        return 3 + (int)(idx - MSR_MTRR_FIX4K_0);
    }
    return -1;
}

static bool msr_valid_memtype(unsigned t)
{
    return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

static bool msr_valid_memtypes(uint64_t v, bool pat)
{
    for (int i = 0; i < 8; i++) {
        unsigned t = (v >> (8 * i)) & 0xff;
        if (!msr_valid_memtype(t) && !(pat && t == 7)) {
            return false;
        }
    }
    return true;
}

int cpu_msr_read(struct cpu *cpu, uint32_t idx, uint64_t *val)
{
    const struct cpu_msrs *m = &cpu->msr;
    int fi = msr_fixed_index(idx);
    if (fi >= 0) {
        *val = m->mtrr_fixed[fi];
        return 0;
    }
    if (idx >= MSR_MTRR_PHYS0 && idx < MSR_MTRR_PHYS_END) {
        unsigned n = (idx - MSR_MTRR_PHYS0) / 2;
        *val = (idx & 1) ? m->mtrr_mask[n] : m->mtrr_base[n];
        return 0;
    }
    switch (idx) {
    case MSR_TSC:
        *val = cpu_tsc_read(cpu);
        return 0;
    case MSR_APIC_BASE:
        *val = m->apic_base;
        return 0;
    case MSR_PATCH_LEVEL:
    case MSR_K8_SYSCFG:
    case MSR_K7_HWCR:
    case MSR_K8_INT_PENDING:
        *val = 0;
        return 0;
    case MSR_MTRRCAP:
        *val = MSR_MTRRCAP_VALUE;
        return 0;
    case MSR_SYSENTER_CS:
        *val = m->sysenter_cs;
        return 0;
    case MSR_SYSENTER_ESP:
        *val = m->sysenter_esp;
        return 0;
    case MSR_SYSENTER_EIP:
        *val = m->sysenter_eip;
        return 0;
    case MSR_MISC_ENABLE:
        *val = m->misc_enable;
        return 0;
    case MSR_PAT:
        *val = m->pat;
        return 0;
    case MSR_MTRR_DEF:
        *val = m->mtrr_def_type;
        return 0;
    case MSR_TSC_DEADLINE:
        if (cpu->intc && cpu->intc->tsc_deadline_read) {
            *val = cpu->intc->tsc_deadline_read(cpu->intc->opaque);
        } else {
            *val = m->tsc_deadline;
        }
        return 0;
    case MSR_EFER:
        *val = cpu->efer;
        return 0;
    case MSR_STAR:
        *val = m->star;
        return 0;
    case MSR_LSTAR:
        *val = m->lstar;
        return 0;
    case MSR_CSTAR:
        *val = m->cstar;
        return 0;
    case MSR_SFMASK:
        *val = m->sfmask;
        return 0;
    case MSR_FS_BASE:
        *val = cpu->seg[CPU_SEG_FS].base;
        return 0;
    case MSR_GS_BASE:
        *val = cpu->seg[CPU_SEG_GS].base;
        return 0;
    case MSR_KERNEL_GS_BASE:
        *val = m->kernel_gs_base;
        return 0;
    case MSR_TSC_AUX:
        if (!(cpu->feat.e1_edx & CPU_E1_EDX_RDTSCP)) {
            return -EINVAL;
        }
        *val = m->tsc_aux;
        return 0;
    default:
        return -EINVAL;
    }
}

static int msr_write_efer(struct cpu *cpu, uint64_t val)
{
    uint64_t allowed = CPU_EFER_SCE | CPU_EFER_LME | CPU_EFER_LMA;
    if (cpu->feat.e1_edx & CPU_E1_EDX_NX) {
        allowed |= CPU_EFER_NXE;
    }
    if (val & ~allowed) {
        return -EINVAL;
    }
    /* LME cannot change while paging is on (SDM 9.8.5); LMA is read-only. */
    if ((cpu->cr0 & CPU_CR0_PG) && ((val ^ cpu->efer) & CPU_EFER_LME)) {
        return -EINVAL;
    }
    uint64_t old = cpu->efer;
    cpu->efer = (val & ~CPU_EFER_LMA) | (old & CPU_EFER_LMA);
    if ((old ^ cpu->efer) & CPU_EFER_NXE) {
        cpu_tlb_flush(cpu, false);
    }
    cpu_update_mode(cpu);
    return 0;
}

int cpu_msr_write(struct cpu *cpu, uint32_t idx, uint64_t val)
{
    struct cpu_msrs *m = &cpu->msr;
    int fi = msr_fixed_index(idx);
    if (fi >= 0) {
        if (!msr_valid_memtypes(val, false)) {
            return -EINVAL;
        }
        m->mtrr_fixed[fi] = val;
        return 0;
    }
    if (idx >= MSR_MTRR_PHYS0 && idx < MSR_MTRR_PHYS_END) {
        unsigned n = (idx - MSR_MTRR_PHYS0) / 2;
        if (idx & 1) {
            if (val & (MSR_PHYS_RSVD | 0x7ffull)) {
                return -EINVAL;
            }
            m->mtrr_mask[n] = val;
        } else {
            if ((val & (MSR_PHYS_RSVD | 0xf00ull)) || !msr_valid_memtype(val & 0xff)) {
                return -EINVAL;
            }
            m->mtrr_base[n] = val;
        }
        return 0;
    }
    switch (idx) {
    case MSR_TSC:
        m->tsc_offset += val - cpu_tsc_read(cpu);
        return 0;
    case MSR_APIC_BASE:
        /* EXTD (x2APIC) is not advertised: reserved like the bits above MAXPHYADDR. */
        if (val & (MSR_PHYS_RSVD | 0x6ffull)) {
            return -EINVAL;
        }
        val = (val & ~MSR_APIC_BASE_BSP) | (m->apic_base & MSR_APIC_BASE_BSP);
        m->apic_base = val;
        if (cpu->intc && cpu->intc->apic_base_write) {
            cpu->intc->apic_base_write(cpu->intc->opaque, val);
        }
        cpu_tlb_flush(cpu, false);
        return 0;
    case MSR_PATCH_LEVEL:
    case MSR_K8_SYSCFG:
    case MSR_K7_HWCR:
        return 0; /* accepted and ignored (Linux sets HWCR bits with the safe accessors) */
    case MSR_SYSENTER_CS:
        m->sysenter_cs = val & 0xffff;
        return 0;
    case MSR_SYSENTER_ESP:
    case MSR_SYSENTER_EIP:
        if (!cpu_is_canonical(val)) {
            return -EINVAL;
        }
        if (idx == MSR_SYSENTER_ESP) {
            m->sysenter_esp = val;
        } else {
            m->sysenter_eip = val;
        }
        return 0;
    case MSR_MISC_ENABLE:
        m->misc_enable = val;
        return 0;
    case MSR_PAT:
        if (!msr_valid_memtypes(val, true)) {
            return -EINVAL;
        }
        m->pat = val; /* caching is not modelled: PAT only has to read back */
        return 0;
    case MSR_MTRR_DEF:
        if ((val & ~0xcffull) || !msr_valid_memtype(val & 0xff)) {
            return -EINVAL;
        }
        m->mtrr_def_type = val;
        return 0;
    case MSR_TSC_DEADLINE:
        m->tsc_deadline = val;
        if (cpu->intc && cpu->intc->tsc_deadline_write) {
            cpu->intc->tsc_deadline_write(cpu->intc->opaque, val);
        }
        return 0;
    case MSR_EFER:
        return msr_write_efer(cpu, val);
    case MSR_STAR:
        m->star = val;
        return 0;
    case MSR_LSTAR:
    case MSR_CSTAR:
        if (!cpu_is_canonical(val)) {
            return -EINVAL;
        }
        if (idx == MSR_LSTAR) {
            m->lstar = val;
        } else {
            m->cstar = val;
        }
        return 0;
    case MSR_SFMASK:
        m->sfmask = val & 0xffffffffull;
        return 0;
    case MSR_FS_BASE:
    case MSR_GS_BASE:
    case MSR_KERNEL_GS_BASE:
        if (!cpu_is_canonical(val)) {
            return -EINVAL;
        }
        if (idx == MSR_FS_BASE) {
            cpu->seg[CPU_SEG_FS].base = val;
        } else if (idx == MSR_GS_BASE) {
            cpu->seg[CPU_SEG_GS].base = val;
        } else {
            m->kernel_gs_base = val;
        }
        return 0;
    case MSR_TSC_AUX:
        if (!(cpu->feat.e1_edx & CPU_E1_EDX_RDTSCP) || (val >> 32)) {
            return -EINVAL;
        }
        m->tsc_aux = val;
        return 0;
    default:
        return -EINVAL;
    }
}
