/* Memory access slow paths of the soft CPU: TLB misses (cpu_tlb_fill is cpu-sys's page walk),
 * MMIO and the local APIC page, page-crossing accesses, stores into pages holding translated
 * code (self-modifying code), ROM, segment limit/type checks, and the stack helpers. */
#include "core/cpu/cpu.h"

#include "core/bus.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <stdio.h>

#define APIC_BASE_ENABLE (1ull << 11) /* IA32_APIC_BASE.EN */

/* The TLB entry for lin and acc, filled if it does not match. */
static struct cpu_tlb_entry *tlb_entry(struct cpu *cpu, uint64_t lin, int acc, int mmu)
{
    struct cpu_tlb_entry *e = &cpu->tlb[mmu][(lin >> 12) & (CPU_TLB_SIZE - 1)];
    uint64_t tag = acc == CPU_ACC_WRITE  ? e->tag_write
                   : acc == CPU_ACC_READ ? e->tag_read
                                         : e->tag_exec;
    if ((tag & CPU_TLB_INVALID) || (tag & CPU_PAGE_MASK) != (lin & CPU_PAGE_MASK)) {
        e = cpu_tlb_fill(cpu, lin, acc, mmu);
    }
    return e;
}

static uint64_t entry_tag(const struct cpu_tlb_entry *e, int acc)
{
    return acc == CPU_ACC_WRITE ? e->tag_write : acc == CPU_ACC_READ ? e->tag_read : e->tag_exec;
}

static bool is_apic(struct cpu *cpu, uint64_t pa)
{
    return cpu->intc && (cpu->msr.apic_base & APIC_BASE_ENABLE) &&
           (pa & CPU_PAGE_MASK) == (cpu->msr.apic_base & 0xffffff000ull);
}

static uint64_t mmio_read(struct cpu *cpu, uint64_t pa, unsigned size)
{
    uint64_t v = ~0ull;
    if (is_apic(cpu, pa)) {
        uint32_t x = cpu->intc->apic_read(cpu->intc->opaque, (uint32_t)(pa & 0xff0));
        return (x >> ((pa & 3) * 8)) & (size >= 4 ? 0xffffffffull : (1ull << (size * 8)) - 1);
    }
    if (cpu->mmio) {
        bus_read(cpu->mmio, pa, size, &v);
    }
    if (size < 8) {
        v &= (1ull << (size * 8)) - 1;
    }
    return v;
}

static void mmio_write(struct cpu *cpu, uint64_t pa, unsigned size, uint64_t v)
{
    if (is_apic(cpu, pa)) {
        if ((pa & 0xf) == 0) {
            uint32_t reg = (uint32_t)(pa & 0xff0);
            cpu->intc->apic_write(cpu->intc->opaque, reg, (uint32_t)v);
            if (reg == 0x80 || reg == 0xb0) {
                /* A TPR write or EOI may unmask a pending interrupt without a kick: poll
                 * before the next instruction, as hardware delivers it there. */
                cpu_sys_intr_hint(cpu);
                cpu->block_stop = true;
            }
        }
        return;
    }
    if (cpu->mmio) {
        bus_write(cpu->mmio, pa, size, v);
    }
}

uint64_t cpu_ld_slow(struct cpu *cpu, uint64_t lin, unsigned size, int mmu)
{
    if ((lin & 0xfff) + size > 0x1000) {
        /* Page crossing: byte by byte (little endian). */
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++) {
            v |= (uint64_t)cpu_ldlin8(cpu, lin + i, mmu) << (i * 8);
        }
        return v;
    }
    struct cpu_tlb_entry *e = tlb_entry(cpu, lin, CPU_ACC_READ, mmu);
    if (e->tag_read & CPU_TLB_MMIO) {
        return mmio_read(cpu, e->paddr | (lin & 0xfff), size);
    }
    const uint8_t *p = (const uint8_t *)(e->addend + (uintptr_t)lin);
    uint64_t v = 0;
    memcpy(&v, p, size);
    return v;
}

/* A store into [pa, pa+len) of a page with translated code. */
static void code_write(struct cpu *cpu, uint64_t pa, unsigned len)
{
    cpu_tcache_invalidate_phys(cpu, pa, len);
}

void cpu_st_slow(struct cpu *cpu, uint64_t lin, unsigned size, uint64_t val, int mmu)
{
    if ((lin & 0xfff) + size > 0x1000) {
        /* Both pages must be writable before any byte is stored. */
        unsigned first = 0x1000 - (unsigned)(lin & 0xfff);
        tlb_entry(cpu, lin, CPU_ACC_WRITE, mmu);
        tlb_entry(cpu, lin + first, CPU_ACC_WRITE, mmu);
        for (unsigned i = 0; i < size; i++) {
            cpu_st_slow(cpu, lin + i, 1, (val >> (i * 8)) & 0xff, mmu);
        }
        return;
    }
    struct cpu_tlb_entry *e = tlb_entry(cpu, lin, CPU_ACC_WRITE, mmu);
    uint64_t tag = e->tag_write;
    uint64_t pa = e->paddr | (lin & 0xfff);
    if (tag & CPU_TLB_MMIO) {
        mmio_write(cpu, pa, size, val);
        return;
    }
    if (tag & CPU_TLB_ROM) {
        return;
    }
    uint8_t *p = (uint8_t *)(e->addend + (uintptr_t)lin);
    if (tag & CPU_TLB_CODE) {
        code_write(cpu, pa, size);
    }
    memcpy(p, &val, size);
}

_Noreturn void cpu_raise_noncanonical(struct cpu *cpu, int seg)
{
    cpu_raise(cpu, seg == CPU_SEG_SS ? X86_EXC_SS : X86_EXC_GP, 0);
}

uint64_t cpu_seg_lin_slow(struct cpu *cpu, int seg, uint64_t off, unsigned size, int acc)
{
    const struct cpu_seg *s = &cpu->seg[seg];
    int vec = seg == CPU_SEG_SS ? X86_EXC_SS : X86_EXC_GP;
    uint64_t last = off + size - 1;
    if (cpu->mode == CPU_MODE_LONG64) {
        return cpu_seg_lin(cpu, seg, off, size, acc);
    }
    if (cpu->mode == CPU_MODE_REAL || cpu->mode == CPU_MODE_V86) {
        if (last > s->limit) {
            cpu_raise(cpu, vec, 0);
        }
        return (uint32_t)(s->base + off);
    }
    if (s->attr & CPU_SEGA_UNUSABLE) {
        cpu_raise(cpu, vec, 0);
    }
    if (s->attr & CPU_SEGA_CODE) {
        if (acc == CPU_ACC_WRITE || (acc == CPU_ACC_READ && !(s->attr & CPU_SEGA_RW))) {
            cpu_raise(cpu, vec, 0);
        }
    } else if (acc == CPU_ACC_WRITE && !(s->attr & CPU_SEGA_RW)) {
        cpu_raise(cpu, vec, 0);
    }
    if (!(s->attr & CPU_SEGA_CODE) && (s->attr & CPU_SEGA_DC)) {
        /* Expand-down: valid offsets are (limit, 0xffff or 0xffffffff]. */
        uint64_t upper = (s->attr & CPU_SEGA_DB) ? 0xffffffffull : 0xffffull;
        if (off <= s->limit || last > upper) {
            cpu_raise(cpu, vec, 0);
        }
    } else if (last > s->limit) {
        cpu_raise(cpu, vec, 0);
    }
    return (uint32_t)(s->base + off);
}

void *cpu_lin_ptr(struct cpu *cpu, uint64_t lin, unsigned size, int acc, int mmu)
{
    void *p = cpu_tlb_probe(cpu, lin, size, acc, mmu);
    if (p || (lin & 0xfff) + size > 0x1000) {
        return p;
    }
    struct cpu_tlb_entry *e = tlb_entry(cpu, lin, acc, mmu);
    if (entry_tag(e, acc) & CPU_TLB_FLAGS) {
        return NULL;
    }
    return (void *)(e->addend + (uintptr_t)lin);
}

void cpu_probe_lin(struct cpu *cpu, uint64_t lin, size_t len, int acc, int mmu)
{
    if (len == 0) {
        return;
    }
    uint64_t end = lin + len - 1;
    for (uint64_t p = lin & CPU_PAGE_MASK;; p += 0x1000) {
        tlb_entry(cpu, p < lin ? lin : p, acc, mmu);
        if (p == (end & CPU_PAGE_MASK)) {
            break;
        }
    }
}

void cpu_read_lin(struct cpu *cpu, uint64_t lin, void *buf, size_t len, int mmu)
{
    uint8_t *d = buf;
    while (len > 0) {
        size_t chunk = 0x1000 - (lin & 0xfff);
        if (chunk > len) {
            chunk = len;
        }
        struct cpu_tlb_entry *e = tlb_entry(cpu, lin, CPU_ACC_READ, mmu);
        if (e->tag_read & CPU_TLB_MMIO) {
            for (size_t i = 0; i < chunk; i++) {
                d[i] = (uint8_t)mmio_read(cpu, e->paddr | ((lin + i) & 0xfff), 1);
            }
        } else {
            memcpy(d, (const void *)(e->addend + (uintptr_t)lin), chunk);
        }
        d += chunk;
        lin += chunk;
        len -= chunk;
    }
}

void cpu_write_lin(struct cpu *cpu, uint64_t lin, const void *buf, size_t len, int mmu)
{
    const uint8_t *s = buf;
    cpu_probe_lin(cpu, lin, len, CPU_ACC_WRITE, mmu);
    while (len > 0) {
        size_t chunk = 0x1000 - (lin & 0xfff);
        if (chunk > len) {
            chunk = len;
        }
        struct cpu_tlb_entry *e = tlb_entry(cpu, lin, CPU_ACC_WRITE, mmu);
        uint64_t tag = e->tag_write;
        if (tag & CPU_TLB_MMIO) {
            for (size_t i = 0; i < chunk; i++) {
                mmio_write(cpu, e->paddr | ((lin + i) & 0xfff), 1, s[i]);
            }
        } else if (!(tag & CPU_TLB_ROM)) {
            if (tag & CPU_TLB_CODE) {
                code_write(cpu, e->paddr | (lin & 0xfff), (unsigned)chunk);
            }
            memcpy((void *)(e->addend + (uintptr_t)lin), s, chunk);
        }
        s += chunk;
        lin += chunk;
        len -= chunk;
    }
}

void cpu_ld_buf(struct cpu *cpu, int seg, uint64_t off, void *dst, size_t len)
{
    if (len == 0) {
        return;
    }
    uint64_t lin = cpu_seg_lin(cpu, seg, off, (unsigned)len, CPU_ACC_READ);
    cpu_read_lin(cpu, lin, dst, len, cpu->mmu_idx);
}

void cpu_st_buf(struct cpu *cpu, int seg, uint64_t off, const void *src, size_t len)
{
    if (len == 0) {
        return;
    }
    uint64_t lin = cpu_seg_lin(cpu, seg, off, (unsigned)len, CPU_ACC_WRITE);
    cpu_write_lin(cpu, lin, src, len, cpu->mmu_idx);
}

void cpu_ld128(struct cpu *cpu, int seg, uint64_t off, void *dst16)
{
    uint64_t lin = cpu_seg_lin(cpu, seg, off, 16, CPU_ACC_READ);
    void *p = cpu_tlb_probe(cpu, lin, 16, CPU_ACC_READ, cpu->mmu_idx);
    if (CPU_LIKELY(p != NULL)) {
        memcpy(dst16, p, 16);
        return;
    }
    cpu_read_lin(cpu, lin, dst16, 16, cpu->mmu_idx);
}

void cpu_st128(struct cpu *cpu, int seg, uint64_t off, const void *src16)
{
    uint64_t lin = cpu_seg_lin(cpu, seg, off, 16, CPU_ACC_WRITE);
    void *p = cpu_tlb_probe(cpu, lin, 16, CPU_ACC_WRITE, cpu->mmu_idx);
    if (CPU_LIKELY(p != NULL)) {
        memcpy(p, src16, 16);
        return;
    }
    cpu_write_lin(cpu, lin, src16, 16, cpu->mmu_idx);
}

uint64_t cpu_ld_phys(struct cpu *cpu, uint64_t pa, unsigned size)
{
    const uint8_t *p = cpu->mem ? guestmem_ptr(cpu->mem, pa, size) : NULL;
    if (p) {
        uint64_t v = 0;
        memcpy(&v, p, size);
        return v;
    }
    return mmio_read(cpu, pa, size);
}

void cpu_st_phys(struct cpu *cpu, uint64_t pa, unsigned size, uint64_t val)
{
    uint8_t *p = cpu->mem ? guestmem_ptr(cpu->mem, pa, size) : NULL;
    if (p) {
        const struct guestmem_region *r = guestmem_find(cpu->mem, pa);
        if (r && r->readonly) {
            return;
        }
        if (cpu_page_has_code(cpu, pa)) {
            code_write(cpu, pa, size);
        }
        memcpy(p, &val, size);
        return;
    }
    mmio_write(cpu, pa, size, val);
}

void *cpu_phys_ptr(struct cpu *cpu, uint64_t pa, unsigned size)
{
    if (!cpu->mem || (pa & (size - 1)) != 0) {
        return NULL;
    }
    return guestmem_ptr_rw(cpu->mem, pa, size);
}

void cpu_push(struct cpu *cpu, unsigned size, uint64_t val)
{
    uint64_t rsp = cpu->r[CPU_RSP];
    if (CPU_LIKELY(size == 8 && cpu->stack_size == 8)) {
        /* 64-bit mode: SS has no base or limit, and a TLB hit implies a canonical address
         * (fills happen only after the canonical check). */
        void *p = cpu_tlb_probe(cpu, rsp - 8, 8, CPU_ACC_WRITE, cpu->mmu_idx);
        if (CPU_LIKELY(p != NULL)) {
            memcpy(p, &val, 8);
            cpu->r[CPU_RSP] = rsp - 8;
            return;
        }
    }
    switch (cpu->stack_size) {
    case 8:
        cpu_st(cpu, CPU_SEG_SS, rsp - size, size, val);
        cpu->r[CPU_RSP] = rsp - size;
        break;
    case 4: {
        uint32_t n = (uint32_t)rsp - size;
        cpu_st(cpu, CPU_SEG_SS, n, size, val);
        cpu->r[CPU_RSP] = n;
        break;
    }
    default: {
        uint16_t n = (uint16_t)(rsp - size);
        cpu_st(cpu, CPU_SEG_SS, n, size, val);
        cpu->r[CPU_RSP] = (rsp & ~0xffffull) | n;
        break;
    }
    }
}

uint64_t cpu_pop(struct cpu *cpu, unsigned size)
{
    uint64_t rsp = cpu->r[CPU_RSP];
    uint64_t v;
    if (CPU_LIKELY(size == 8 && cpu->stack_size == 8)) {
        const void *p = cpu_tlb_probe(cpu, rsp, 8, CPU_ACC_READ, cpu->mmu_idx);
        if (CPU_LIKELY(p != NULL)) {
            memcpy(&v, p, 8);
            cpu->r[CPU_RSP] = rsp + 8;
            return v;
        }
    }
    switch (cpu->stack_size) {
    case 8:
        v = cpu_ld(cpu, CPU_SEG_SS, rsp, size);
        cpu->r[CPU_RSP] = rsp + size;
        break;
    case 4:
        v = cpu_ld(cpu, CPU_SEG_SS, (uint32_t)rsp, size);
        cpu->r[CPU_RSP] = (uint32_t)(rsp + size);
        break;
    default:
        v = cpu_ld(cpu, CPU_SEG_SS, (uint16_t)rsp, size);
        cpu->r[CPU_RSP] = (rsp & ~0xffffull) | (uint16_t)(rsp + size);
        break;
    }
    return v;
}
