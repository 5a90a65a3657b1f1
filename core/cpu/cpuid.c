/* The CPUID model of the soft CPU: a plain AMD64 part (family 0Fh) that advertises exactly
 * what Lodge implements. AuthenticAMD on purpose: an Intel signature without
 * ARCH_CAPABILITIES makes Linux turn on page-table isolation, which flushes the soft TLB on
 * every kernel entry (docs/soft-cpu.md). Family 0Fh keeps Linux away from the Zen-era
 * MSRs and return-thunk mitigations; model 22h stays below the models Linux checks for
 * AMD erratum 400 (C1E, which would need MSR C001_0055). */
#include "core/cpu/sysint.h"

#define CPUID_SIGNATURE 0x00020f22u /* family 0Fh, extended model 2, model 2, stepping 2 */
#define CPUID_MAX_BASIC 0x7u
#define CPUID_MAX_EXT 0x80000008u
#define CPUID_HV_BASE 0x40000000u
#define CPUID_HV_MAX 0x40000010u

/* CPUID.1:EDX */
#define F1D_FPU (1u << 0)
#define F1D_PSE (1u << 3)
#define F1D_TSC (1u << 4)
#define F1D_MSR (1u << 5)
#define F1D_PAE (1u << 6)
#define F1D_CX8 (1u << 8)
#define F1D_APIC (1u << 9)
#define F1D_SEP (1u << 11)
#define F1D_MTRR (1u << 12)
#define F1D_PGE (1u << 13)
#define F1D_CMOV (1u << 15)
#define F1D_PAT (1u << 16)
#define F1D_CLFSH (1u << 19)
#define F1D_MMX (1u << 23)
#define F1D_FXSR (1u << 24)
#define F1D_SSE (1u << 25)
#define F1D_SSE2 (1u << 26)
#define F1D_HTT (1u << 28)
/* CPUID.1:ECX */
#define F1C_HYPERVISOR (1u << 31)
/* CPUID.80000001:ECX / EDX */
#define E1C_CMP_LEGACY (1u << 1)
#define E1D_PDPE1GB (1u << 26)
/* CPUID.80000007:EDX */
#define E7D_INVARIANT_TSC (1u << 8)

/* Leaf-1 EDX bits the 80000001h EDX mirrors on AMD parts. */
#define E1D_MIRROR (F1D_FPU | F1D_PSE | F1D_TSC | F1D_MSR | F1D_PAE | F1D_CX8 | F1D_APIC | \
                    F1D_MTRR | F1D_PGE | F1D_CMOV | F1D_PAT | F1D_MMX | F1D_FXSR)

static uint32_t cpuid_f1_edx(const struct cpu *cpu)
{
    uint32_t v = F1D_FPU | F1D_PSE | F1D_TSC | F1D_MSR | F1D_PAE | F1D_CX8 | F1D_APIC |
                 F1D_SEP | F1D_MTRR | F1D_PGE | F1D_CMOV | F1D_PAT | F1D_CLFSH | F1D_MMX |
                 F1D_FXSR | F1D_SSE | F1D_SSE2;
    if (cpu_sys_ncpus(cpu) > 1) {
        v |= F1D_HTT;
    }
    return v;
}

static uint32_t cpuid_f1_ecx(void)
{
    return CPU_F1_ECX_SSE3 | CPU_F1_ECX_SSSE3 | CPU_F1_ECX_CX16 | CPU_F1_ECX_SSE41 |
           CPU_F1_ECX_SSE42 | CPU_F1_ECX_POPCNT | F1C_HYPERVISOR;
}

static uint32_t cpuid_e1_edx(const struct cpu *cpu)
{
    return (cpuid_f1_edx(cpu) & E1D_MIRROR) | CPU_E1_EDX_SYSCALL | CPU_E1_EDX_NX |
           E1D_PDPE1GB | CPU_E1_EDX_RDTSCP | CPU_E1_EDX_LM;
}

static uint32_t cpuid_e1_ecx(const struct cpu *cpu)
{
    return CPU_E1_ECX_LAHF | (cpu_sys_ncpus(cpu) > 1 ? E1C_CMP_LEGACY : 0);
}

void cpu_cpuid_init_features(struct cpu *cpu)
{
    cpu->feat.f1_ecx = cpuid_f1_ecx();
    cpu->feat.f1_edx = cpuid_f1_edx(cpu);
    cpu->feat.f7_ebx = 0;
    cpu->feat.f7_ecx = 0;
    cpu->feat.e1_ecx = cpuid_e1_ecx(cpu);
    cpu->feat.e1_edx = cpuid_e1_edx(cpu);
}

static void cpuid_str(uint32_t out[], const char *s)
{
    /* 4 registers' worth of a string, little-endian per register. */
    for (int r = 0; r < 4; r++) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
            v |= (uint32_t)(uint8_t)s[r * 4 + i] << (8 * i);
        }
        out[r] = v;
    }
}

void cpu_cpuid_query(struct cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    static const char brand[48] = "Lodge virtual AMD64 CPU";
    uint32_t ncpus = (uint32_t)cpu_sys_ncpus(cpu);
    out[0] = out[1] = out[2] = out[3] = 0;
    switch (leaf) {
    case 0:
        out[0] = CPUID_MAX_BASIC;
        out[1] = 0x68747541; /* "Auth" */
        out[3] = 0x69746e65; /* "enti" */
        out[2] = 0x444d4163; /* "cAMD" */
        return;
    case 1:
        out[0] = CPUID_SIGNATURE;
        out[1] = (8u << 8) | ((ncpus & 0xff) << 16) | ((uint32_t)(cpu->index & 0xff) << 24);
        out[2] = cpu->feat.f1_ecx;
        out[3] = cpu->feat.f1_edx;
        return;
    case 7:
        if (sub == 0) {
            out[1] = cpu->feat.f7_ebx;
            out[2] = cpu->feat.f7_ecx;
        }
        return;
    case CPUID_HV_BASE:
        out[0] = CPUID_HV_MAX;
        out[1] = 0x67646f4c; /* "Lodg" */
        out[2] = 0x72695665; /* "eVir" */
        out[3] = 0x55504374; /* "tCPU" */
        return;
    case CPUID_HV_MAX:
        /* TSC and LAPIC bus frequency in kHz (the VMware/KVM timing leaf layout). */
        out[0] = (uint32_t)((cpu->tsc_hz ? cpu->tsc_hz : CPU_SYS_DEFAULT_TSC_HZ) / 1000);
        out[1] = 1000000;
        return;
    case 0x80000000u:
        out[0] = CPUID_MAX_EXT;
        out[1] = 0x68747541;
        out[3] = 0x69746e65;
        out[2] = 0x444d4163;
        return;
    case 0x80000001u:
        out[0] = CPUID_SIGNATURE;
        out[2] = cpu->feat.e1_ecx;
        out[3] = cpu->feat.e1_edx;
        return;
    case 0x80000002u:
    case 0x80000003u:
    case 0x80000004u:
        cpuid_str(out, brand + 16 * (leaf - 0x80000002u));
        return;
    case 0x80000005u:
        /* L1: 64 KiB 2-way data and instruction caches, 64-byte lines; TLBs (APM E.4.4). */
        out[0] = 0xff08ff08;
        out[1] = 0xff20ff20;
        out[2] = 0x40020140;
        out[3] = 0x40020140;
        return;
    case 0x80000006u:
        /* L2: 512 KiB 16-way, 64-byte lines; no L3. */
        out[0] = 0;
        out[1] = 0x42004200;
        out[2] = (512u << 16) | (0x8u << 12) | (1u << 8) | 64u;
        return;
    case 0x80000007u:
        out[3] = E7D_INVARIANT_TSC;
        return;
    case 0x80000008u:
        out[0] = 40u | (48u << 8); /* physical / linear address bits */
        out[2] = (ncpus - 1) & 0xff;
        return;
    default:
        return;
    }
}
