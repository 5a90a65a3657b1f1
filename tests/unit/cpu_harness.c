/* Flat-state harness for soft-CPU unit tests (see cpu_harness.h). */
#include "tests/unit/cpu_harness.h"

#include "core/bus.h"

#include <errno.h>
#include <string.h>

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_PS 0x80ull

static void build_page_tables(struct cpu_harness *h)
{
    /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = 2 MiB identity pages over the first GiB. */
    uint64_t pml4 = h->pt_base, pdpt = pml4 + 0x1000, pd = pml4 + 0x2000;
    uint64_t z[512] = {0};
    guestmem_write(&h->mem, pml4, z, sizeof(z));
    guestmem_write(&h->mem, pdpt, z, sizeof(z));
    cpu_harness_poke(h, pml4, 8, pdpt | PTE_P | PTE_W | PTE_U);
    cpu_harness_poke(h, pdpt, 8, pd | PTE_P | PTE_W | PTE_U);
    for (uint64_t i = 0; i < 512; i++) {
        cpu_harness_poke(h, pd + i * 8, 8, (i << 21) | PTE_P | PTE_W | PTE_U | PTE_PS);
    }
}

static void flat_seg(struct cpu *cpu, int seg, uint16_t sel, bool code, int mode)
{
    uint32_t attr = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED;
    if (code) {
        attr |= CPU_SEGA_CODE;
    }
    if (mode == X86_MODE_16) {
        cpu_set_seg(cpu, seg, 0, 0, 0xffff, attr);
        return;
    }
    attr |= CPU_SEGA_G;
    if (code && mode == X86_MODE_64) {
        attr |= CPU_SEGA_L;
    } else {
        attr |= CPU_SEGA_DB;
    }
    attr |= (uint32_t)(sel & 3) << CPU_SEGA_DPL_SHIFT;
    cpu_set_seg(cpu, seg, sel, 0, 0xffffffffu, attr);
}

void cpu_harness_set_flat(struct cpu_harness *h, int mode)
{
    struct cpu *cpu = h->cpu;
    memset(cpu->r, 0, sizeof(cpu->r));
    cpu->rflags = CPU_FL_FIXED1;
    cpu->cc_op = CPU_CC_EFLAGS;
    cpu->cpl = 0;
    cpu->halted = false;
    cpu->intr_shadow = 0;
    if (mode == X86_MODE_64) {
        cpu->cr0 = CPU_CR0_PE | CPU_CR0_PG | CPU_CR0_ET | CPU_CR0_NE | CPU_CR0_WP | CPU_CR0_MP;
        cpu->cr4 = CPU_CR4_PAE | CPU_CR4_OSFXSR | CPU_CR4_OSXMMEXCPT;
        cpu->efer = CPU_EFER_LME | CPU_EFER_LMA | CPU_EFER_SCE | CPU_EFER_NXE;
        cpu->cr3 = h->pt_base;
    } else if (mode == X86_MODE_32) {
        cpu->cr0 = CPU_CR0_PE | CPU_CR0_ET | CPU_CR0_NE | CPU_CR0_MP;
        cpu->cr4 = CPU_CR4_OSFXSR | CPU_CR4_OSXMMEXCPT;
        cpu->efer = 0;
        cpu->cr3 = 0;
    } else {
        cpu->cr0 = CPU_CR0_ET;
        cpu->cr4 = 0;
        cpu->efer = 0;
        cpu->cr3 = 0;
    }
    cpu_update_mode(cpu);
    flat_seg(cpu, CPU_SEG_CS, 0x08, true, mode);
    flat_seg(cpu, CPU_SEG_SS, 0x10, false, mode);
    flat_seg(cpu, CPU_SEG_DS, 0x10, false, mode);
    flat_seg(cpu, CPU_SEG_ES, 0x10, false, mode);
    flat_seg(cpu, CPU_SEG_FS, 0x10, false, mode);
    flat_seg(cpu, CPU_SEG_GS, 0x10, false, mode);
    cpu_update_mode(cpu);
    cpu->r[CPU_RSP] = mode == X86_MODE_16 ? 0xfff0 : h->pt_base - 0x100;
    cpu_tlb_flush(cpu, false);
}

void cpu_harness_set_user(struct cpu_harness *h)
{
    struct cpu *cpu = h->cpu;
    cpu->cpl = 3;
    flat_seg(cpu, CPU_SEG_CS, 0x2b, true, X86_MODE_64);
    flat_seg(cpu, CPU_SEG_SS, 0x23, false, X86_MODE_64);
    cpu_update_mode(cpu);
}

int cpu_harness_init(struct cpu_harness *h, uint64_t ram_size, int mode)
{
    memset(h, 0, sizeof(*h));
    int r = guestmem_add(&h->mem, "ram", 0, ram_size, false);
    if (r < 0) {
        return r;
    }
    h->ram_size = ram_size;
    h->pt_base = ram_size - 0x4000;
    h->pio = bus_new("pio");
    h->mmio = bus_new("mmio");
    h->cpu = cpu_new(&h->mem, h->pio, h->mmio);
    if (!h->pio || !h->mmio || !h->cpu) {
        cpu_harness_free(h);
        return -ENOMEM;
    }
    h->cpu->exit_on_exception = true;
    build_page_tables(h);
    cpu_harness_set_flat(h, mode);
    return 0;
}

void cpu_harness_free(struct cpu_harness *h)
{
    cpu_free(h->cpu);
    if (h->pio) {
        bus_free(h->pio);
    }
    if (h->mmio) {
        bus_free(h->mmio);
    }
    guestmem_free(&h->mem);
    memset(h, 0, sizeof(*h));
}

int cpu_harness_load(struct cpu_harness *h, uint64_t gpa, const void *bytes, size_t len)
{
    int r = guestmem_write(&h->mem, gpa, bytes, len);
    if (r == 0) {
        cpu_tcache_invalidate_phys(h->cpu, gpa, len);
    }
    return r;
}

int cpu_harness_run(struct cpu_harness *h, uint64_t rip, uint64_t max_insns)
{
    h->cpu->rip = rip;
    h->cpu->halted = false;
    h->cpu->exc_vector = -1;
    return cpu_run(h->cpu, max_insns);
}

uint64_t cpu_harness_peek(struct cpu_harness *h, uint64_t gpa, unsigned size)
{
    uint64_t v = 0;
    guestmem_read(&h->mem, gpa, &v, size);
    return v;
}

void cpu_harness_poke(struct cpu_harness *h, uint64_t gpa, unsigned size, uint64_t val)
{
    guestmem_write(&h->mem, gpa, &val, size);
    cpu_tcache_invalidate_phys(h->cpu, gpa, size);
}
