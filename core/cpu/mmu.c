/* Paging for the soft CPU: the page walk (32-bit, PAE and 4-level paging; SDM vol. 3,
 * chapter 4), accessed/dirty updates, #PF error codes, and the soft TLB fill and flushes.
 *
 * The TLB caches 4 KiB pieces of pages. A piece of a large page remembers the page size in
 * cpu_tlb_entry.global (CPU_TLB_G_*), so INVLPG of any address in a 2M/4M/1G page drops
 * every piece of it. */
#include "core/cpu/cpu.h"

#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <errno.h>

#define MMU_APIC_EN (1ull << 11)                  /* IA32_APIC_BASE.EN */
#define MMU_PHYS_MASK 0x000000fffffff000ull       /* 40 physical address bits */
#define MMU_RSVD_HI 0x000fff0000000000ull         /* bits 51:40 (MAXPHYADDR = 40) */
/* PAE PDE/PTE: bits 62:MAXPHYADDR are reserved (SDM 4.4.2, tables 4-8..4-11); 4-level
 * paging ignores 58:52 and uses 62:59 for protection keys instead. */
#define MMU_RSVD_PAE 0x7fffff0000000000ull        /* bits 62:40 */
#define MMU_PSE_RSVD (1ull << 21)                 /* 4 MiB PDE bit 21 (table 4-4) */
#define MMU_PSE_HI 0x001fe000ull                  /* 4 MiB PDE bits 20:13 = PA 39:32 */
#define MMU_PTE_P (1ull << 0)
#define MMU_PTE_RW (1ull << 1)
#define MMU_PTE_US (1ull << 2)
#define MMU_PTE_A (1ull << 5)
#define MMU_PTE_D (1ull << 6)
#define MMU_PTE_PS (1ull << 7)
#define MMU_PTE_G (1ull << 8)
#define MMU_PTE_XD (1ull << 63)

/* Result of a successful walk. */
struct mmu_walk {
    uint64_t pa;            /* physical address of the 4 KiB piece holding lin */
    bool writable;          /* R/W set at every level */
    bool user;              /* U/S set at every level */
    bool nx;                /* XD set at some level (with EFER.NXE) */
    bool dirty;             /* leaf D bit (after the update) */
    bool global;            /* leaf G bit with CR4.PGE */
    unsigned shift;         /* page size: 12, 21, 22 or 30 */
    uint64_t ent_pa[4];     /* physical addresses of the entries used (for A/D) */
    uint64_t ent_val[4];    /* their values */
    int nent;
    unsigned ent_size;      /* 4 (32-bit paging) or 8 */
};

static uint64_t mmu_read_pte(struct cpu *cpu, uint64_t pa, unsigned size)
{
    return cpu_ld_phys(cpu, pa & cpu->a20_mask, size);
}

static void mmu_record(struct mmu_walk *w, uint64_t pa, uint64_t val)
{
    w->ent_pa[w->nent] = pa;
    w->ent_val[w->nent] = val;
    w->nent++;
}

/* Walk the tables for lin. Returns 0, or a #PF error code without the access bits:
 * 0 for not present, CPU_PF_P | CPU_PF_RSVD for a reserved bit. Returned in *err_base; the
 * function result is 0 on success, -1 on a fault. */
static int mmu_walk(struct cpu *cpu, uint64_t lin, struct mmu_walk *w, uint32_t *err_base)
{
    bool nxe = (cpu->efer & CPU_EFER_NXE) != 0;
    bool pae_legacy = !(cpu->efer & CPU_EFER_LMA);
    uint64_t rsvd = (pae_legacy ? MMU_RSVD_PAE : MMU_RSVD_HI) | (nxe ? 0 : MMU_PTE_XD);
    memset(w, 0, sizeof(*w));
    w->writable = true;
    w->user = true;
    w->ent_size = 8;
    if (!(cpu->cr4 & CPU_CR4_PAE)) {
        /* 32-bit paging (SDM 4.3). */
        w->ent_size = 4;
        uint64_t pde_pa = (cpu->cr3 & 0xfffff000u) + (((lin >> 22) & 0x3ff) << 2);
        uint64_t pde = mmu_read_pte(cpu, pde_pa, 4);
        if (!(pde & MMU_PTE_P)) {
            *err_base = 0;
            return -1;
        }
        mmu_record(w, pde_pa, pde);
        w->writable &= (pde & MMU_PTE_RW) != 0;
        w->user &= (pde & MMU_PTE_US) != 0;
        if ((pde & MMU_PTE_PS) && (cpu->cr4 & CPU_CR4_PSE)) {
            /* With MAXPHYADDR 40, bits 20:13 give PA 39:32 (PSE-36 layout) and bit 21 is
             * the only reserved bit; the whole walk faults before any A/D update. */
            if (pde & MMU_PSE_RSVD) {
                *err_base = CPU_PF_P | CPU_PF_RSVD;
                return -1;
            }
            w->shift = 22;
            w->pa = (pde & 0xffc00000u) | ((pde & MMU_PSE_HI) << 19) | (lin & 0x3ff000u);
            w->dirty = (pde & MMU_PTE_D) != 0;
            w->global = (pde & MMU_PTE_G) && (cpu->cr4 & CPU_CR4_PGE);
            return 0;
        }
        uint64_t pte_pa = (pde & 0xfffff000u) + (((lin >> 12) & 0x3ff) << 2);
        uint64_t pte = mmu_read_pte(cpu, pte_pa, 4);
        if (!(pte & MMU_PTE_P)) {
            *err_base = 0;
            return -1;
        }
        mmu_record(w, pte_pa, pte);
        w->writable &= (pte & MMU_PTE_RW) != 0;
        w->user &= (pte & MMU_PTE_US) != 0;
        w->shift = 12;
        w->pa = pte & 0xfffff000u;
        w->dirty = (pte & MMU_PTE_D) != 0;
        w->global = (pte & MMU_PTE_G) && (cpu->cr4 & CPU_CR4_PGE);
        return 0;
    }

    uint64_t table;
    int level;
    if (cpu->efer & CPU_EFER_LMA) {
        /* 4-level paging (SDM 4.5). */
        table = cpu->cr3 & MMU_PHYS_MASK;
        level = 4;
    } else {
        /* PAE paging (SDM 4.4): the PDPTE has no R/W, U/S or XD bits. */
        uint64_t pdpte_pa = (cpu->cr3 & 0xffffffe0u) + (((lin >> 30) & 3) << 3);
        uint64_t pdpte = mmu_read_pte(cpu, pdpte_pa, 8);
        if (!(pdpte & MMU_PTE_P)) {
            *err_base = 0;
            return -1;
        }
        /* PDPTE: bits 2:1, 8:5 and 63:MAXPHYADDR are reserved (SDM 4.4.1, table 4-8). */
        if (pdpte & (MMU_RSVD_PAE | MMU_PTE_XD | 0x1e6ull)) {
            *err_base = CPU_PF_P | CPU_PF_RSVD;
            return -1;
        }
        table = pdpte & MMU_PHYS_MASK;
        level = 2;
    }
    for (;; level--) {
        unsigned shift = 12 + 9 * (unsigned)(level - 1);
        uint64_t ent_pa = table + (((lin >> shift) & 0x1ff) << 3);
        uint64_t ent = mmu_read_pte(cpu, ent_pa, 8);
        if (!(ent & MMU_PTE_P)) {
            *err_base = 0;
            return -1;
        }
        uint64_t bad = rsvd;
        bool leaf = level == 1;
        if (level == 4 && (ent & MMU_PTE_PS)) {
            bad |= MMU_PTE_PS;
        }
        if ((level == 2 || level == 3) && (ent & MMU_PTE_PS)) {
            leaf = true;
            /* PAT bit 12, then reserved up to the page size. */
            bad |= ((1ull << shift) - 1) & ~0x1fffull;
        }
        if (ent & bad) {
            *err_base = CPU_PF_P | CPU_PF_RSVD;
            return -1;
        }
        mmu_record(w, ent_pa, ent);
        w->writable &= (ent & MMU_PTE_RW) != 0;
        w->user &= (ent & MMU_PTE_US) != 0;
        w->nx |= nxe && (ent & MMU_PTE_XD);
        if (leaf) {
            w->shift = shift;
            w->pa = ((ent & MMU_PHYS_MASK) & ~((1ull << shift) - 1)) |
                    (lin & ((1ull << shift) - 1) & CPU_PAGE_MASK);
            w->dirty = (ent & MMU_PTE_D) != 0;
            w->global = (ent & MMU_PTE_G) && (cpu->cr4 & CPU_CR4_PGE);
            return 0;
        }
        table = ent & MMU_PHYS_MASK;
    }
}

/* Set A on every entry used and D on the leaf for a write, atomically on guest RAM (another
 * vCPU may walk or the guest may edit the same entries). */
static void mmu_update_ad(struct cpu *cpu, struct mmu_walk *w, bool write)
{
    for (int i = 0; i < w->nent; i++) {
        uint64_t want = MMU_PTE_A;
        if (i == w->nent - 1 && write) {
            want |= MMU_PTE_D;
        }
        if ((w->ent_val[i] & want) == want) {
            continue;
        }
        uint64_t pa = w->ent_pa[i] & cpu->a20_mask;
        void *p = cpu_phys_ptr(cpu, pa, w->ent_size);
        if (!p) {
            continue; /* tables in ROM or MMIO: nothing to update */
        }
        if (w->ent_size == 8) {
            __atomic_fetch_or((uint64_t *)p, want, __ATOMIC_SEQ_CST);
        } else {
            __atomic_fetch_or((uint32_t *)p, (uint32_t)want, __ATOMIC_SEQ_CST);
        }
        if (cpu_page_has_code(cpu, pa)) {
            cpu_tcache_invalidate_phys(cpu, pa, w->ent_size);
        }
    }
    if (write) {
        w->dirty = true;
    }
}

/* Translate lin for acc at mmu. Returns 0 (w filled) or -1 with the #PF error code. */
static int mmu_translate(struct cpu *cpu, uint64_t lin, int acc, int mmu, bool update,
                         struct mmu_walk *w, uint32_t *err)
{
    if (!(cpu->cr0 & CPU_CR0_PG)) {
        memset(w, 0, sizeof(*w));
        w->pa = lin & 0xfffff000u;
        w->writable = w->user = w->dirty = true;
        w->shift = 12;
        return 0;
    }
    bool user = mmu == CPU_MMU_USER;
    uint32_t bits = (acc == CPU_ACC_WRITE ? CPU_PF_W : 0) | (user ? CPU_PF_U : 0);
    if (acc == CPU_ACC_EXEC && (cpu->cr4 & CPU_CR4_PAE) && (cpu->efer & CPU_EFER_NXE)) {
        bits |= CPU_PF_I;
    }
    uint32_t base;
    if (mmu_walk(cpu, lin, w, &base) < 0) {
        *err = base | bits;
        return -1;
    }
    bool ok = !user || w->user;
    if (acc == CPU_ACC_WRITE && !w->writable && (user || (cpu->cr0 & CPU_CR0_WP))) {
        ok = false;
    }
    if (acc == CPU_ACC_EXEC && w->nx) {
        ok = false;
    }
    if (!ok) {
        *err = CPU_PF_P | bits;
        return -1;
    }
    if (update) {
        mmu_update_ad(cpu, w, acc == CPU_ACC_WRITE);
    }
    return 0;
}

static bool mmu_is_apic(struct cpu *cpu, uint64_t pa)
{
    return cpu->intc && (cpu->msr.apic_base & MMU_APIC_EN) &&
           (pa & CPU_PAGE_MASK) == (cpu->msr.apic_base & MMU_PHYS_MASK);
}

struct cpu_tlb_entry *cpu_tlb_fill(struct cpu *cpu, uint64_t lin, int acc, int mmu)
{
    struct mmu_walk w;
    uint32_t err;
    if (cpu->mode != CPU_MODE_LONG64 && cpu->mode != CPU_MODE_COMPAT) {
        lin &= 0xffffffffull;
    }
    if (mmu_translate(cpu, lin, acc, mmu, true, &w, &err) < 0) {
        cpu_raise_pf(cpu, lin, err);
    }
    uint64_t page = lin & CPU_PAGE_MASK;
    uint64_t pa = w.pa & cpu->a20_mask;
    bool user = mmu == CPU_MMU_USER;
    bool can_write = (w.writable || (!user && !(cpu->cr0 & CPU_CR0_WP))) && w.dirty;
    bool can_exec = !w.nx;
    struct cpu_tlb_entry *e = &cpu->tlb[mmu][(lin >> 12) & (CPU_TLB_SIZE - 1)];
    const struct guestmem_region *r = NULL;
    uint64_t kind = CPU_TLB_MMIO;
    if (!mmu_is_apic(cpu, pa) && cpu->mem) {
        r = guestmem_find(cpu->mem, pa);
    }
    e->paddr = pa;
    if (r) {
        e->addend = (uintptr_t)(r->hva + (pa - r->gpa)) - (uintptr_t)page;
        kind = 0;
    } else {
        e->addend = 0;
    }
    e->tag_read = page | kind;
    e->tag_exec = page | (can_exec ? kind : CPU_TLB_INVALID);
    if (!can_write) {
        e->tag_write = page | CPU_TLB_INVALID;
    } else if (r) {
        e->tag_write = page | (r->readonly ? CPU_TLB_ROM : 0) |
                       (cpu_page_has_code(cpu, pa) ? CPU_TLB_CODE : 0);
    } else {
        e->tag_write = page | CPU_TLB_MMIO;
    }
    e->global = (uint8_t)((w.global ? CPU_TLB_G_GLOBAL : 0) | (w.shift & CPU_TLB_G_SHIFT));
    return e;
}

int cpu_mmu_translate(struct cpu *cpu, uint64_t lin, int acc, int mmu, uint64_t *pa)
{
    struct mmu_walk w;
    uint32_t err;
    if (cpu->mode != CPU_MODE_LONG64 && cpu->mode != CPU_MODE_COMPAT) {
        lin &= 0xffffffffull;
    }
    if (mmu_translate(cpu, lin, acc, mmu, false, &w, &err) < 0) {
        return -EFAULT;
    }
    *pa = (w.pa & cpu->a20_mask) | (lin & 0xfff);
    return 0;
}

void cpu_tlb_flush(struct cpu *cpu, bool keep_global)
{
    for (int m = 0; m < CPU_MMU_COUNT; m++) {
        for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
            struct cpu_tlb_entry *e = &cpu->tlb[m][i];
            if (keep_global && (e->global & CPU_TLB_G_GLOBAL)) {
                continue;
            }
            e->tag_read = e->tag_write = e->tag_exec = CPU_TLB_INVALID;
            e->global = 0;
        }
    }
}

static uint64_t tlb_entry_page(const struct cpu_tlb_entry *e)
{
    return e->tag_read & CPU_PAGE_MASK;
}

void cpu_tlb_flush_page(struct cpu *cpu, uint64_t lin)
{
    uint64_t page = lin & CPU_PAGE_MASK;
    for (int m = 0; m < CPU_MMU_COUNT; m++) {
        struct cpu_tlb_entry *e = &cpu->tlb[m][(lin >> 12) & (CPU_TLB_SIZE - 1)];
        if (tlb_entry_page(e) == page) {
            e->tag_read = e->tag_write = e->tag_exec = CPU_TLB_INVALID;
            e->global = 0;
        }
    }
    /* Pieces of a large page holding lin sit in other slots. */
    for (int m = 0; m < CPU_MMU_COUNT; m++) {
        for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
            struct cpu_tlb_entry *e = &cpu->tlb[m][i];
            unsigned shift = e->global & CPU_TLB_G_SHIFT;
            if (shift > 12 && ((tlb_entry_page(e) ^ lin) >> shift) == 0) {
                e->tag_read = e->tag_write = e->tag_exec = CPU_TLB_INVALID;
                e->global = 0;
            }
        }
    }
}
