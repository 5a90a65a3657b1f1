/* Lodge side of the CPU oracle: a small adapter over core/cpu/cpu.h that runs a case on the
 * soft CPU in 64-bit long mode at CPL 3 (or a 32-bit compatibility-mode code segment), with
 * page tables that map exactly the code and data pages at the addresses the native side
 * uses. The case's code is followed by UD2: #UD at that address means "reached the end". */
#include "tests/cpu/oracle.h"

#include "core/cpu/cpu.h"
#include "core/guestmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORC_PT_BASE 0x1000ull  /* PML4; PDPT, PD, PT, low PT follow in the next pages */
#define ORC_GDT_BASE 0x8000ull /* Linux's x86-64 GDT layout (supervisor page) */
#define ORC_IDT_BASE 0x9000ull /* 256 interrupt gates, DPL 0 except 3, 4 and 0x80 */

struct orc_lodge {
    struct guestmem gm; /* page tables + code page + data page */
    struct cpu *cpu;
    uint8_t *code; /* host view of the code page */
    uint8_t *data; /* host view of the data page */
    uint8_t before[ORC_PAGE];
    uint64_t *code2_pte; /* PTE of the second code page (cleared for code2_absent cases) */
};

static void orc_lodge_paging(struct orc_lodge *l)
{
    uint64_t *pml4 = guestmem_ptr(&l->gm, ORC_PT_BASE, ORC_PAGE);
    uint64_t *pdpt = guestmem_ptr(&l->gm, ORC_PT_BASE + 0x1000, ORC_PAGE);
    uint64_t *pd = guestmem_ptr(&l->gm, ORC_PT_BASE + 0x2000, ORC_PAGE);
    uint64_t *pt = guestmem_ptr(&l->gm, ORC_PT_BASE + 0x3000, ORC_PAGE);
    const uint64_t urw = 0x7; /* P | RW | U */
    pml4[0] = (ORC_PT_BASE + 0x1000) | urw;
    pdpt[(ORC_CODE_VA >> 30) & 511] = (ORC_PT_BASE + 0x2000) | urw;
    pd[(ORC_CODE_VA >> 21) & 511] = (ORC_PT_BASE + 0x3000) | urw;
    pt[(ORC_CODE_VA >> 12) & 511] = ORC_CODE_VA | urw;
    pt[((ORC_CODE_VA >> 12) + 1) & 511] = (ORC_CODE_VA + ORC_PAGE) | urw;
    l->code2_pte = &pt[((ORC_CODE_VA >> 12) + 1) & 511];
    pt[(ORC_DATA_VA >> 12) & 511] = ORC_DATA_VA | urw;
    /* GDT and IDT pages: supervisor-only, like the kernel's */
    uint64_t *ptlow = guestmem_ptr(&l->gm, ORC_PT_BASE + 0x4000, ORC_PAGE);
    pd[0] = (ORC_PT_BASE + 0x4000) | urw;
    ptlow[ORC_GDT_BASE >> 12] = ORC_GDT_BASE | 0x3;
    ptlow[ORC_IDT_BASE >> 12] = ORC_IDT_BASE | 0x3;
    /* Descriptors as Linux sets them (arch/x86/include/asm/segment.h): 0x10 kernel CS64,
     * 0x18 kernel DS, 0x23 user CS32, 0x2b user DS, 0x33 user CS64. */
    uint64_t *gdt = guestmem_ptr(&l->gm, ORC_GDT_BASE, ORC_PAGE);
    gdt[1] = 0x00cf9b000000ffffull; /* kernel CS32 */
    gdt[2] = 0x00af9b000000ffffull; /* kernel CS64 */
    gdt[3] = 0x00cf93000000ffffull; /* kernel DS */
    gdt[4] = 0x00cffb000000ffffull; /* user CS32 */
    gdt[5] = 0x00cff3000000ffffull; /* user DS */
    gdt[6] = 0x00affb000000ffffull; /* user CS64 */
    uint64_t *idt = guestmem_ptr(&l->gm, ORC_IDT_BASE, ORC_PAGE);
    for (unsigned v = 0; v < 256; v++) {
        unsigned dpl = (v == 3 || v == 4 || v == 0x80) ? 3 : 0;
        idt[2 * v] = 0x0000800000100000ull | (0xeull << 40) | ((uint64_t)dpl << 45);
        idt[2 * v + 1] = 0;
    }
}

static const uint32_t orc_data_attr = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED |
                                      (3u << CPU_SEGA_DPL_SHIFT) | CPU_SEGA_DB | CPU_SEGA_G;
static const uint32_t orc_code_attr = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_CODE | CPU_SEGA_RW |
                                      CPU_SEGA_ACCESSED | (3u << CPU_SEGA_DPL_SHIFT) | CPU_SEGA_G;

struct orc_lodge *orc_lodge_new(void)
{
    struct orc_lodge *l = calloc(1, sizeof(*l));
    if (!l) {
        return NULL;
    }
    if (guestmem_add(&l->gm, "orc-pt", 0, 0x10000, false) < 0 ||
        guestmem_add(&l->gm, "orc-code", ORC_CODE_VA, ORC_CODE_SIZE, false) < 0 ||
        guestmem_add(&l->gm, "orc-data", ORC_DATA_VA, ORC_PAGE, false) < 0) {
        guestmem_free(&l->gm);
        free(l);
        return NULL;
    }
    l->code = guestmem_ptr(&l->gm, ORC_CODE_VA, ORC_CODE_SIZE);
    l->data = guestmem_ptr(&l->gm, ORC_DATA_VA, ORC_PAGE);
    orc_lodge_paging(l);
    struct cpu *cpu = cpu_new(&l->gm, NULL, NULL);
    if (!cpu) {
        guestmem_free(&l->gm);
        free(l);
        return NULL;
    }
    l->cpu = cpu;
    cpu->cr0 = CPU_CR0_PE | CPU_CR0_MP | CPU_CR0_ET | CPU_CR0_NE | CPU_CR0_WP | CPU_CR0_PG;
    cpu->cr4 = CPU_CR4_PAE | CPU_CR4_OSFXSR | CPU_CR4_OSXMMEXCPT;
    cpu->efer = CPU_EFER_SCE | CPU_EFER_LME | CPU_EFER_LMA | CPU_EFER_NXE;
    cpu->cr3 = ORC_PT_BASE;
    cpu->gdtr.base = ORC_GDT_BASE;
    cpu->gdtr.limit = 8 * 16 - 1;
    cpu->idtr.base = ORC_IDT_BASE;
    cpu->idtr.limit = 256 * 16 - 1;
    cpu->cpl = 3;
    cpu_set_seg(cpu, CPU_SEG_SS, 0x2b, 0, 0xffffffffu, orc_data_attr);
    cpu_set_seg(cpu, CPU_SEG_DS, 0x2b, 0, 0xffffffffu, orc_data_attr);
    cpu_set_seg(cpu, CPU_SEG_ES, 0x2b, 0, 0xffffffffu, orc_data_attr);
    cpu_set_seg(cpu, CPU_SEG_FS, 0, 0, 0xffffffffu, orc_data_attr);
    cpu_set_seg(cpu, CPU_SEG_GS, 0, 0, 0xffffffffu, orc_data_attr);
    cpu_set_seg(cpu, CPU_SEG_CS, 0x33, 0, 0xffffffffu, orc_code_attr | CPU_SEGA_L);
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
    cpu->exit_on_exception = true;
    return l;
}

void orc_lodge_free(struct orc_lodge *l)
{
    if (!l) {
        return;
    }
    cpu_free(l->cpu);
    guestmem_free(&l->gm);
    free(l);
}

/* Tag of one x87 register from its contents (SDM vol. 1, 8.1.7). */
static unsigned orc_x87_tag(const uint8_t *reg10)
{
    uint64_t mant;
    uint16_t sexp;
    memcpy(&mant, reg10, 8);
    memcpy(&sexp, reg10 + 8, 2);
    unsigned exp = sexp & 0x7fff;
    if (exp == 0x7fff) {
        return 2;
    }
    if (exp == 0) {
        return mant == 0 ? 1 : 2;
    }
    return (mant >> 63) ? 0 : 2;
}

static void orc_lodge_load_fx(struct cpu *cpu, const uint8_t *fx)
{
    struct cpu_fpu *f = &cpu->fpu;
    uint16_t fsw;
    memcpy(&f->fcw, fx + 0, 2);
    memcpy(&fsw, fx + 2, 2);
    f->top = (fsw >> 11) & 7;
    f->fsw = fsw & ~0x3800u;
    f->ftw = 0;
    for (unsigned i = 0; i < 8; i++) {
        unsigned phys = (f->top + i) & 7;
        memset(&f->st[phys], 0, sizeof(f->st[phys]));
        memcpy(f->st[phys].bytes, fx + 32 + 16 * i, 10);
    }
    for (unsigned p = 0; p < 8; p++) {
        unsigned tag = (fx[4] >> p) & 1 ? orc_x87_tag(f->st[p].bytes) : 3;
        f->ftw |= (uint16_t)(tag << (2 * p));
    }
    memcpy(&f->fop, fx + 6, 2);
    f->fip = f->fdp = 0;
    f->fcs = f->fds = 0;
    memcpy(&f->mxcsr, fx + 24, 4);
    memcpy(f->xmm, fx + 160, 256);
}

static void orc_lodge_save_fx(const struct cpu *cpu, uint8_t *fx)
{
    const struct cpu_fpu *f = &cpu->fpu;
    memset(fx, 0, 512);
    uint16_t fsw = (uint16_t)((f->fsw & ~0x3800u) | ((f->top & 7u) << 11));
    memcpy(fx + 0, &f->fcw, 2);
    memcpy(fx + 2, &fsw, 2);
    uint8_t abr = 0;
    for (unsigned p = 0; p < 8; p++) {
        if (((f->ftw >> (2 * p)) & 3) != 3) {
            abr |= (uint8_t)(1u << p);
        }
    }
    fx[4] = abr;
    memcpy(fx + 6, &f->fop, 2);
    memcpy(fx + 24, &f->mxcsr, 4);
    for (unsigned i = 0; i < 8; i++) {
        memcpy(fx + 32 + 16 * i, f->st[(f->top + i) & 7].bytes, 10);
    }
    memcpy(fx + 160, f->xmm, 256);
}

void orc_lodge_run(struct orc_lodge *l, const struct orc_case *c, struct orc_result *res)
{
    struct cpu *cpu = l->cpu;
    memcpy(l->code + c->code_off, c->code, c->code_len);
    l->code[c->code_off + c->code_len] = 0x0f; /* UD2: the end marker */
    l->code[c->code_off + c->code_len + 1] = 0x0b;
    cpu_tcache_invalidate_phys(cpu, ORC_CODE_VA, ORC_CODE_SIZE);
    orc_fill_data(c->seed, l->before);
    memcpy(l->data, l->before, ORC_PAGE);

    /* the native stub reloads DS/ES each case; SS/FS/GS stay as Linux set them */
    cpu_set_seg(cpu, CPU_SEG_DS, 0x2b, 0, 0xffffffffu, orc_data_attr);
    cpu_set_seg(cpu, CPU_SEG_ES, 0x2b, 0, 0xffffffffu, orc_data_attr);
    if (cpu->seg[CPU_SEG_SS].sel != 0x2b || cpu->seg[CPU_SEG_SS].attr != orc_data_attr) {
        cpu_set_seg(cpu, CPU_SEG_SS, 0x2b, 0, 0xffffffffu, orc_data_attr);
    }
    if (cpu->seg[CPU_SEG_FS].sel != 0 || cpu->seg[CPU_SEG_GS].sel != 0) {
        cpu_set_seg(cpu, CPU_SEG_FS, 0, 0, 0xffffffffu, orc_data_attr);
        cpu_set_seg(cpu, CPU_SEG_GS, 0, 0, 0xffffffffu, orc_data_attr);
    }
    uint32_t cs_attr = c->mode32 ? (orc_code_attr | CPU_SEGA_DB) : (orc_code_attr | CPU_SEGA_L);
    if (cpu->seg[CPU_SEG_CS].attr != cs_attr ||
        cpu->seg[CPU_SEG_CS].sel != (c->mode32 ? 0x23 : 0x33)) {
        cpu_set_seg(cpu, CPU_SEG_CS, c->mode32 ? 0x23 : 0x33, 0, 0xffffffffu, cs_attr);
    }
    cpu->cpl = 3;
    cpu_update_mode(cpu);
    memcpy(cpu->r, c->r, sizeof(cpu->r));
    cpu_set_rflags(cpu, (c->rflags & 0xcd5u) | 0x202u);
    cpu->rip = ORC_CODE_VA + c->code_off;
    orc_lodge_load_fx(cpu, c->fx);
    cpu->exc_vector = -1;
    cpu->halted = false;
    cpu->intr_shadow = 0;
    cpu->cr2 = 0;

    if (c->code2_absent) {
        *l->code2_pte = 0;
        cpu_tlb_flush_page(cpu, ORC_CODE_VA + ORC_PAGE);
    }
    int rc = cpu_run(cpu, 10000);
    if (c->code2_absent) {
        *l->code2_pte = (ORC_CODE_VA + ORC_PAGE) | 0x7;
        cpu_tlb_flush_page(cpu, ORC_CODE_VA + ORC_PAGE);
    }
    res->err = 0;
    res->cr2 = 0;
    res->rip = cpu->rip;
    if (rc == CPU_EXIT_EXCEPTION) {
        if (cpu->exc_vector == X86_EXC_UD && cpu->rip == ORC_CODE_VA + c->code_off + c->code_len) {
            res->end = ORC_END_OK;
        } else {
            res->end = cpu->exc_vector;
            res->err = cpu->exc_error == CPU_NO_ERROR ? 0 : cpu->exc_error;
            res->cr2 = cpu->cr2;
        }
    } else if (rc == CPU_EXIT_ICOUNT) {
        res->end = ORC_END_HANG;
    } else {
        res->end = ORC_END_INTERNAL;
    }
    memcpy(res->r, cpu->r, sizeof(res->r));
    res->rflags = cpu_get_rflags(cpu);
    orc_lodge_save_fx(cpu, res->fx);
    orc_diff_data(l->before, l->data, res);
    cpu->exc_vector = -1;
}

uint32_t orc_lodge_f1_ecx(const struct orc_lodge *l)
{
    return l->cpu->feat.f1_ecx;
}
