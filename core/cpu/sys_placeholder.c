/* Placeholder for the cpu-sys part of the soft CPU (see core/cpu/cpu.h): every entry does
 * the trivial thing or raises #UD, so the rest of core/cpu links and can be unit-tested with
 * flat state. cpu-sys replaces this file with mmu.c, seg.c, intr.c, sysinsn.c, msr.c,
 * cpuid.c and removes it from meson.build. */
#include "core/cpu/cpu.h"

#include "core/bus.h"
#include "core/guestmem.h"

#include <errno.h>
#include <stdio.h>

static void reset_seg(struct cpu *cpu, int seg, uint16_t sel, uint64_t base, uint32_t attr)
{
    cpu_set_seg(cpu, seg, sel, base, 0xffff, attr);
}

void cpu_reset(struct cpu *cpu)
{
    memset(cpu->r, 0, sizeof(cpu->r));
    cpu->r[CPU_RDX] = 0x600; /* family 6 signature in EDX after RESET */
    cpu->rip = 0xfff0;
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
    cpu->msr.apic_base = 0xfee00900ull;
    cpu->gdtr.base = cpu->idtr.base = 0;
    cpu->gdtr.limit = cpu->idtr.limit = 0xffff;
    for (int s = 0; s < CPU_SEG_LDTR; s++) {
        reset_seg(cpu, s, 0, 0, CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED);
    }
    reset_seg(cpu, CPU_SEG_CS, 0xf000, 0xffff0000ull,
              CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_CODE | CPU_SEGA_RW | CPU_SEGA_ACCESSED);
    reset_seg(cpu, CPU_SEG_LDTR, 0, 0, CPU_SEGA_P | 2);
    reset_seg(cpu, CPU_SEG_TR, 0, 0, CPU_SEGA_P | 11);
    /* What cpu-core implements, so the executor's feature checks can be exercised. */
    cpu->feat.f1_ecx = CPU_F1_ECX_CX16 | CPU_F1_ECX_POPCNT | CPU_F1_ECX_MOVBE;
    cpu->feat.f1_edx = CPU_F1_EDX_CX8 | CPU_F1_EDX_CMOV | CPU_F1_EDX_CLFSH | CPU_F1_EDX_SSE2;
    cpu->feat.f7_ebx = 0;
    cpu->feat.f7_ecx = 0;
    cpu->feat.e1_ecx = CPU_E1_ECX_LAHF;
    cpu->feat.e1_edx = CPU_E1_EDX_SYSCALL | CPU_E1_EDX_LM | CPU_E1_EDX_NX;
    cpu->halted = false;
    cpu->intr_shadow = 0;
    cpu->nmi_blocked = false;
    cpu->deliver_depth = 0;
    cpu->deliver_vector = -1;
    cpu_fpu_reset(cpu);
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
}

void cpu_deliver_exception(struct cpu *cpu, int vector, uint32_t error_code)
{
    snprintf(cpu->error, sizeof(cpu->error),
             "placeholder: exception %d (error %#x) at rip %#llx not delivered", vector,
             error_code, (unsigned long long)cpu->rip);
    cpu_request_exit(cpu, CPU_EXIT_INTERNAL);
}

void cpu_check_interrupts(struct cpu *cpu)
{
}

/* Identity mapping, no paging: enough for flat unit tests. */
struct cpu_tlb_entry *cpu_tlb_fill(struct cpu *cpu, uint64_t lin, int acc, int mmu)
{
    uint64_t page = lin & CPU_PAGE_MASK;
    uint64_t pa = page & cpu->a20_mask;
    struct cpu_tlb_entry *e = &cpu->tlb[mmu][(lin >> 12) & (CPU_TLB_SIZE - 1)];
    const struct guestmem_region *r = cpu->mem ? guestmem_find(cpu->mem, pa) : NULL;
    e->paddr = pa;
    e->global = 0;
    if (r) {
        e->addend = (uintptr_t)(r->hva + (pa - r->gpa)) - (uintptr_t)page;
        e->tag_read = page;
        e->tag_exec = page;
        e->tag_write = page | (r->readonly ? CPU_TLB_ROM : 0) |
                       (cpu_page_has_code(cpu, pa) ? CPU_TLB_CODE : 0);
    } else {
        e->addend = 0;
        e->tag_read = e->tag_write = e->tag_exec = page | CPU_TLB_MMIO;
    }
    return e;
}

int cpu_mmu_translate(struct cpu *cpu, uint64_t lin, int acc, int mmu, uint64_t *pa)
{
    *pa = lin & cpu->a20_mask;
    return 0;
}

void cpu_tlb_flush(struct cpu *cpu, bool keep_global)
{
    for (int m = 0; m < CPU_MMU_COUNT; m++) {
        for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
            struct cpu_tlb_entry *e = &cpu->tlb[m][i];
            e->tag_read = e->tag_write = e->tag_exec = CPU_TLB_INVALID;
        }
    }
}

void cpu_tlb_flush_page(struct cpu *cpu, uint64_t lin)
{
    for (int m = 0; m < CPU_MMU_COUNT; m++) {
        struct cpu_tlb_entry *e = &cpu->tlb[m][(lin >> 12) & (CPU_TLB_SIZE - 1)];
        e->tag_read = e->tag_write = e->tag_exec = CPU_TLB_INVALID;
    }
}

void cpu_load_seg(struct cpu *cpu, int seg, uint16_t sel)
{
    if (cpu->mode != CPU_MODE_REAL && cpu->mode != CPU_MODE_V86) {
        cpu_raise_ud(cpu);
    }
    cpu_set_seg(cpu, seg, sel, (uint64_t)sel << 4, cpu->seg[seg].limit, cpu->seg[seg].attr);
}

void cpu_far_jmp(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
    cpu_raise_ud(cpu);
}

void cpu_far_call(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
    cpu_raise_ud(cpu);
}

void cpu_far_ret(struct cpu *cpu, unsigned opsize, uint16_t imm)
{
    cpu_raise_ud(cpu);
}

void cpu_iret(struct cpu *cpu, unsigned opsize)
{
    cpu_raise_ud(cpu);
}

void cpu_int_soft(struct cpu *cpu, int vector, int kind)
{
    cpu_raise_ud(cpu);
}

uint32_t cpu_in(struct cpu *cpu, uint16_t port, unsigned size)
{
    uint64_t v = ~0ull;
    if (cpu->pio) {
        bus_read(cpu->pio, port, size, &v);
    }
    return (uint32_t)v;
}

void cpu_out(struct cpu *cpu, uint16_t port, unsigned size, uint32_t val)
{
    if (cpu->pio) {
        bus_write(cpu->pio, port, size, val);
    }
}

void cpu_io_check(struct cpu *cpu, uint16_t port, unsigned size)
{
}

#define SYS_UD(name)                                                                           \
    void name(struct cpu *cpu, const struct x86_insn *in)                                     \
    {                                                                                          \
        cpu_raise_ud(cpu);                                                                     \
    }

SYS_UD(cpu_sys_grp6)
SYS_UD(cpu_sys_grp7)
SYS_UD(cpu_sys_lar)
SYS_UD(cpu_sys_lsl)
SYS_UD(cpu_sys_clts)
SYS_UD(cpu_sys_syscall)
SYS_UD(cpu_sys_sysret)
SYS_UD(cpu_sys_invd)
SYS_UD(cpu_sys_mov_cr)
SYS_UD(cpu_sys_mov_dr)
SYS_UD(cpu_sys_wrmsr)
SYS_UD(cpu_sys_rdmsr)
SYS_UD(cpu_sys_rdpmc)
SYS_UD(cpu_sys_sysenter)
SYS_UD(cpu_sys_sysexit)
SYS_UD(cpu_sys_cpuid)
SYS_UD(cpu_sys_arpl)

void cpu_sys_rdtsc(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t t = cpu->icount + cpu->msr.tsc_offset;
    cpu->r[CPU_RAX] = (uint32_t)t;
    cpu->r[CPU_RDX] = t >> 32;
}

void cpu_sys_hlt(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->cpl != 0) {
        cpu_raise_gp0(cpu);
    }
    cpu->halted = true;
}
