/* Segmentation for the soft CPU: descriptor reads, segment register loads with their checks,
 * far JMP/CALL/RET (directly and through call gates), real-mode and V86 semantics
 * (SDM vol. 3, chapters 3, 5 and 6; vol. 2 JMP/CALL/RET/MOV), and task switches to 32-bit
 * and 16-bit TSSs (chapter 7). */
#include "core/cpu/sysint.h"

#include "core/log.h"

#define SEG_SEL_MASK 0xfffcu

static void seg_real_cs(struct cpu *cpu, uint16_t sel);

void sys_desc_decode(struct sys_desc *d, uint32_t lo, uint32_t hi)
{
    d->lo = lo;
    d->hi = hi;
    d->hi2 = 0;
    d->base = (lo >> 16) | ((hi & 0xffu) << 16) | (hi & 0xff000000u);
    d->limit = (lo & 0xffffu) | (hi & 0xf0000u);
    d->attr = (hi >> 8) & 0xf0ffu;
    if (d->attr & CPU_SEGA_G) {
        d->limit = (d->limit << 12) | 0xfffu;
    }
}

static bool seg_desc_lin(struct cpu *cpu, uint16_t sel, unsigned size, uint64_t *lin)
{
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        const struct cpu_seg *l = &cpu->seg[CPU_SEG_LDTR];
        if ((l->attr & CPU_SEGA_UNUSABLE) || (l->sel & SEG_SEL_MASK) == 0) {
            return false;
        }
        base = l->base;
        limit = l->limit;
    } else {
        base = cpu->gdtr.base;
        limit = cpu->gdtr.limit;
    }
    uint32_t off = sel & ~7u;
    if ((uint64_t)off + size - 1 > limit) {
        return false;
    }
    *lin = base + off;
    if (!sys_is_long(cpu)) {
        *lin &= 0xffffffffull;
    }
    return true;
}

bool sys_desc_read(struct cpu *cpu, uint16_t sel, struct sys_desc *d, bool wide)
{
    uint64_t lin;
    if (!seg_desc_lin(cpu, sel, wide ? 16 : 8, &lin)) {
        return false;
    }
    uint64_t raw = cpu_ldlin64(cpu, lin, CPU_MMU_SUP);
    sys_desc_decode(d, (uint32_t)raw, (uint32_t)(raw >> 32));
    if (wide) {
        uint64_t raw2 = cpu_ldlin64(cpu, lin + 8, CPU_MMU_SUP);
        d->hi2 = (uint32_t)raw2;
        d->base |= (uint64_t)d->hi2 << 32;
    }
    return true;
}

void sys_desc_fetch(struct cpu *cpu, uint16_t sel, struct sys_desc *d, bool wide, int vec,
                    uint32_t ext)
{
    if (!sys_desc_read(cpu, sel, d, wide)) {
        cpu_raise(cpu, vec, (sel & SEG_SEL_MASK) | ext);
    }
}

void sys_desc_set_accessed(struct cpu *cpu, uint16_t sel, struct sys_desc *d)
{
    uint64_t lin;
    if ((d->attr & CPU_SEGA_S) && !(d->attr & CPU_SEGA_ACCESSED) &&
        seg_desc_lin(cpu, sel, 8, &lin)) {
        uint8_t b = cpu_ldlin8(cpu, lin + 5, CPU_MMU_SUP);
        cpu_stlin8(cpu, lin + 5, b | 1, CPU_MMU_SUP);
    }
    d->attr |= CPU_SEGA_ACCESSED;
}

void sys_set_cs(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, unsigned cpl)
{
    cpu->cpl = (uint8_t)cpl;
    cpu_set_seg(cpu, CPU_SEG_CS, (uint16_t)((sel & SEG_SEL_MASK) | cpl), d->base, d->limit,
                d->attr | CPU_SEGA_ACCESSED);
}

void sys_set_ss(struct cpu *cpu, uint16_t sel, const struct sys_desc *d)
{
    cpu_set_seg(cpu, CPU_SEG_SS, sel, d->base, d->limit, d->attr | CPU_SEGA_ACCESSED);
}

void sys_set_null_ss(struct cpu *cpu, unsigned rpl)
{
    cpu_set_seg(cpu, CPU_SEG_SS, (uint16_t)rpl, 0, 0,
                CPU_SEGA_UNUSABLE | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_DB |
                    (rpl << CPU_SEGA_DPL_SHIFT));
}

void sys_null_outer_segs(struct cpu *cpu)
{
    static const int segs[] = {CPU_SEG_ES, CPU_SEG_DS, CPU_SEG_FS, CPU_SEG_GS};
    for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        struct cpu_seg *s = &cpu->seg[segs[i]];
        if ((s->sel & SEG_SEL_MASK) == 0 || (s->attr & CPU_SEGA_UNUSABLE)) {
            continue;
        }
        bool conforming_code = (s->attr & CPU_SEGA_CODE) && (s->attr & CPU_SEGA_DC);
        if (!conforming_code && cpu_seg_dpl(s) < cpu->cpl) {
            cpu_set_seg(cpu, segs[i], 0, s->base, 0, CPU_SEGA_UNUSABLE);
        }
    }
}

void sys_check_ss(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, unsigned rpl,
                  int vec, uint32_t ext)
{
    uint32_t err = (sel & SEG_SEL_MASK) | ext;
    if ((sel & 3) != rpl || !(d->attr & CPU_SEGA_S) || (d->attr & CPU_SEGA_CODE) ||
        !(d->attr & CPU_SEGA_RW) || sys_desc_dpl(d) != rpl) {
        cpu_raise(cpu, vec, err);
    }
    if (!(d->attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_SS, err);
    }
}

/* ---- stacks built before commit ---- */

void sys_stack_init(struct cpu *cpu, struct sys_stack *st, uint64_t base, uint64_t sp,
                    unsigned size, int mmu)
{
    st->base = size == 8 ? 0 : base;
    st->sp = sp;
    st->mask = size == 8 ? ~0ull : size == 4 ? 0xffffffffull : 0xffffull;
    st->mmu = mmu;
    st->lin32 = size != 8;
}

static uint64_t stack_lin(struct cpu *cpu, struct sys_stack *st, unsigned size)
{
    uint64_t off = st->sp & st->mask;
    uint64_t lin = st->base + off;
    if (st->lin32) {
        return lin & 0xffffffffull;
    }
    if (!cpu_is_canonical(lin) || !cpu_is_canonical(lin + size - 1)) {
        cpu_raise(cpu, X86_EXC_SS, 0);
    }
    return lin;
}

void sys_push(struct cpu *cpu, struct sys_stack *st, unsigned size, uint64_t v)
{
    st->sp = (st->sp & ~st->mask) | ((st->sp - size) & st->mask);
    uint64_t lin = stack_lin(cpu, st, size);
    switch (size) {
    case 2:
        cpu_stlin16(cpu, lin, (uint16_t)v, st->mmu);
        break;
    case 4:
        cpu_stlin32(cpu, lin, (uint32_t)v, st->mmu);
        break;
    default:
        cpu_stlin64(cpu, lin, v, st->mmu);
        break;
    }
}

uint64_t sys_pop(struct cpu *cpu, struct sys_stack *st, unsigned size)
{
    uint64_t lin = stack_lin(cpu, st, size);
    uint64_t v;
    switch (size) {
    case 2:
        v = cpu_ldlin16(cpu, lin, st->mmu);
        break;
    case 4:
        v = cpu_ldlin32(cpu, lin, st->mmu);
        break;
    default:
        v = cpu_ldlin64(cpu, lin, st->mmu);
        break;
    }
    st->sp = (st->sp & ~st->mask) | ((st->sp + size) & st->mask);
    return v;
}

/* The current stack as a cursor. */
static void seg_cur_stack(struct cpu *cpu, struct sys_stack *st)
{
    sys_stack_init(cpu, st, cpu->seg[CPU_SEG_SS].base, cpu->r[CPU_RSP], cpu->stack_size,
                   cpu->mmu_idx);
}

uint64_t sys_tss_read(struct cpu *cpu, uint32_t off, unsigned size)
{
    const struct cpu_seg *tr = &cpu->seg[CPU_SEG_TR];
    if ((tr->sel & SEG_SEL_MASK) == 0 || (uint64_t)off + size - 1 > tr->limit) {
        cpu_raise(cpu, X86_EXC_TS, tr->sel & SEG_SEL_MASK);
    }
    uint64_t lin = tr->base + off;
    if (!sys_is_long(cpu)) {
        lin &= 0xffffffffull;
    }
    switch (size) {
    case 2:
        return cpu_ldlin16(cpu, lin, CPU_MMU_SUP);
    case 4:
        return cpu_ldlin32(cpu, lin, CPU_MMU_SUP);
    default:
        return cpu_ldlin64(cpu, lin, CPU_MMU_SUP);
    }
}

/* ---- task switches (SDM vol. 3, 7.3) ---- */

#define SEG_TSS32_MIN_LIMIT 0x67u /* a 32-bit TSS is 104 bytes (7.2.2) */
#define SEG_TSS16_MIN_LIMIT 0x2bu /* a 16-bit TSS is 44 bytes (7.6) */

static void seg_set_busy(struct cpu *cpu, uint16_t sel, bool busy)
{
    uint64_t lin;
    if (!seg_desc_lin(cpu, sel, 8, &lin)) {
        return;
    }
    uint8_t b = cpu_ldlin8(cpu, lin + 5, CPU_MMU_SUP);
    b = busy ? (uint8_t)(b | 2) : (uint8_t)(b & ~2);
    cpu_stlin8(cpu, lin + 5, b, CPU_MMU_SUP);
}

/* Data segment register loaded from the new TSS: #TS for a bad descriptor, #NP when not
 * present (7.3 step 13). */
static void seg_task_load_data(struct cpu *cpu, int seg, uint16_t sel, uint32_t ext)
{
    uint32_t err = (sel & SEG_SEL_MASK) | ext;
    if ((sel & SEG_SEL_MASK) == 0) {
        cpu_set_seg(cpu, seg, sel, 0, 0, CPU_SEGA_UNUSABLE);
        return;
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, false, X86_EXC_TS, ext);
    if (!(d.attr & CPU_SEGA_S) || ((d.attr & CPU_SEGA_CODE) && !(d.attr & CPU_SEGA_RW))) {
        cpu_raise(cpu, X86_EXC_TS, err);
    }
    bool conforming = (d.attr & CPU_SEGA_CODE) && (d.attr & CPU_SEGA_DC);
    if (!conforming && (sys_desc_dpl(&d) < cpu->cpl || sys_desc_dpl(&d) < (sel & 3u))) {
        cpu_raise(cpu, X86_EXC_TS, err);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
    sys_desc_set_accessed(cpu, sel, &d);
    cpu_set_seg(cpu, seg, sel, d.base, d.limit, d.attr);
}

/* Load LDTR, CS, SS and the data segments of the new task; faults here are taken in the
 * new task's context. */
static void seg_task_load_segs(struct cpu *cpu, const uint32_t *t, uint32_t ext)
{
    static const int data_segs[] = {CPU_SEG_ES, CPU_SEG_DS, CPU_SEG_FS, CPU_SEG_GS};
    static const unsigned data_idx[] = {18, 21, 22, 23};
    uint16_t ldt = (uint16_t)t[24];
    struct sys_desc d;
    if ((ldt & SEG_SEL_MASK) == 0) {
        cpu_set_seg(cpu, CPU_SEG_LDTR, ldt, 0, 0, CPU_SEGA_UNUSABLE);
    } else {
        uint32_t err = (ldt & SEG_SEL_MASK) | ext;
        if ((ldt & 4) || !sys_desc_read(cpu, ldt, &d, false) || (d.attr & CPU_SEGA_S) ||
            sys_desc_type(&d) != 2 || !(d.attr & CPU_SEGA_P)) {
            cpu_raise(cpu, X86_EXC_TS, err);
        }
        cpu_set_seg(cpu, CPU_SEG_LDTR, ldt, d.base, d.limit, d.attr);
    }
    if (cpu->rflags & CPU_FL_VM) {
        /* A V86 task: segments are loaded as in V86 mode at CPL 3. */
        cpu->cpl = 3;
        cpu_update_mode(cpu);
        seg_real_cs(cpu, (uint16_t)t[19]);
        cpu_load_seg(cpu, CPU_SEG_SS, (uint16_t)t[20]);
        for (unsigned i = 0; i < 4; i++) {
            cpu_load_seg(cpu, data_segs[i], (uint16_t)t[data_idx[i]]);
        }
        return;
    }
    uint16_t cs = (uint16_t)t[19];
    uint32_t cs_err = (cs & SEG_SEL_MASK) | ext;
    unsigned cpl = cs & 3u;
    if ((cs & SEG_SEL_MASK) == 0) {
        cpu_raise(cpu, X86_EXC_TS, cs_err);
    }
    sys_desc_fetch(cpu, cs, &d, false, X86_EXC_TS, ext);
    if (!(d.attr & CPU_SEGA_S) || !(d.attr & CPU_SEGA_CODE) ||
        ((d.attr & CPU_SEGA_DC) ? sys_desc_dpl(&d) > cpl : sys_desc_dpl(&d) != cpl)) {
        cpu_raise(cpu, X86_EXC_TS, cs_err);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, cs_err);
    }
    sys_desc_set_accessed(cpu, cs, &d);
    sys_set_cs(cpu, cs, &d, cpl);
    uint16_t ss = (uint16_t)t[20];
    if ((ss & SEG_SEL_MASK) == 0) {
        cpu_raise(cpu, X86_EXC_TS, ext);
    }
    sys_desc_fetch(cpu, ss, &d, false, X86_EXC_TS, ext);
    sys_check_ss(cpu, ss, &d, cpl, X86_EXC_TS, ext);
    sys_desc_set_accessed(cpu, ss, &d);
    sys_set_ss(cpu, ss, &d);
    for (unsigned i = 0; i < 4; i++) {
        seg_task_load_data(cpu, data_segs[i], (uint16_t)t[data_idx[i]], ext);
    }
}

/* The fields of a TSS that a task switch saves, normalised to the 32-bit layout's dword
 * indexes (t[7] CR3, t[8] EIP, t[9] EFLAGS, t[10..17] GPRs, t[18..23] ES CS SS DS FS GS,
 * t[24] LDT). A 16-bit TSS (286 layout, 7.6) has no CR3, FS or GS: CR3 stays, FS/GS get
 * null selectors, and the GPRs keep their upper halves. */
static void seg_tss_read(struct cpu *cpu, uint64_t base, bool tss16, uint32_t *t)
{
    if (!tss16) {
        for (unsigned i = 0; i < 26; i++) {
            t[i] = cpu_ldlin32(cpu, (base + 4 * i) & 0xffffffffull, CPU_MMU_SUP);
        }
        return;
    }
    uint16_t w[22];
    for (unsigned i = 0; i < 22; i++) {
        w[i] = cpu_ldlin16(cpu, (base + 2 * i) & 0xffffffffull, CPU_MMU_SUP);
    }
    memset(t, 0, 26 * sizeof(*t));
    t[7] = (uint32_t)cpu->cr3;
    t[8] = w[7];
    t[9] = w[8];
    for (unsigned i = 0; i < 8; i++) {
        t[10 + i] = ((uint32_t)cpu->r[i] & 0xffff0000u) | w[9 + i];
    }
    t[18] = w[17]; /* ES */
    t[19] = w[18]; /* CS */
    t[20] = w[19]; /* SS */
    t[21] = w[20]; /* DS */
    t[24] = w[21]; /* LDT */
}

/* Store the outgoing task's state into its TSS (7.3 step 7; CR3 and LDTR are not saved). */
static void seg_tss_save(struct cpu *cpu, uint64_t base, bool tss16, uint32_t eflags)
{
    static const int save_segs[] = {CPU_SEG_ES, CPU_SEG_CS, CPU_SEG_SS,
                                    CPU_SEG_DS, CPU_SEG_FS, CPU_SEG_GS};
    if (tss16) {
        cpu_stlin16(cpu, (base + 0x0e) & 0xffffffffull, (uint16_t)cpu->rip, CPU_MMU_SUP);
        cpu_stlin16(cpu, (base + 0x10) & 0xffffffffull, (uint16_t)eflags, CPU_MMU_SUP);
        for (unsigned i = 0; i < 8; i++) {
            cpu_stlin16(cpu, (base + 0x12 + 2 * i) & 0xffffffffull, (uint16_t)cpu->r[i],
                        CPU_MMU_SUP);
        }
        for (unsigned i = 0; i < 4; i++) {
            cpu_stlin16(cpu, (base + 0x22 + 2 * i) & 0xffffffffull,
                        cpu->seg[save_segs[i]].sel, CPU_MMU_SUP);
        }
        return;
    }
    cpu_stlin32(cpu, (base + 0x20) & 0xffffffffull, (uint32_t)cpu->rip, CPU_MMU_SUP);
    cpu_stlin32(cpu, (base + 0x24) & 0xffffffffull, eflags, CPU_MMU_SUP);
    for (unsigned i = 0; i < 8; i++) {
        cpu_stlin32(cpu, (base + 0x28 + 4 * i) & 0xffffffffull, (uint32_t)cpu->r[i],
                    CPU_MMU_SUP);
    }
    for (unsigned i = 0; i < 6; i++) {
        cpu_stlin16(cpu, (base + 0x48 + 4 * i) & 0xffffffffull, cpu->seg[save_segs[i]].sel,
                    CPU_MMU_SUP);
    }
}

static bool seg_tss_type16(unsigned type)
{
    return type == 0x1 || type == 0x3;
}

void sys_task_switch(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, int reason,
                     uint32_t err, uint32_t ext)
{
    uint32_t tss_err = (sel & SEG_SEL_MASK) | ext;
    bool n16 = seg_tss_type16(sys_desc_type(d));
    if (!(d->attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, tss_err);
    }
    if (d->limit < (n16 ? SEG_TSS16_MIN_LIMIT : SEG_TSS32_MIN_LIMIT)) {
        cpu_raise(cpu, X86_EXC_TS, tss_err);
    }
    const struct cpu_seg *otr = &cpu->seg[CPU_SEG_TR];
    uint16_t osel = otr->sel;
    unsigned otype = otr->attr & CPU_SEGA_TYPE;
    bool o16 = seg_tss_type16(otype);
    if ((osel & SEG_SEL_MASK) == 0 || (otype != 0xb && otype != 0x9 && !o16) ||
        otr->limit < (o16 ? SEG_TSS16_MIN_LIMIT : SEG_TSS32_MIN_LIMIT)) {
        cpu_raise(cpu, X86_EXC_TS, (osel & SEG_SEL_MASK) | ext);
    }
    /* Read the whole new TSS before anything changes (a #PF leaves the old task intact). */
    uint32_t t[26];
    uint64_t nbase = d->base & 0xffffffffull;
    seg_tss_read(cpu, nbase, n16, t);
    uint64_t obase = otr->base & 0xffffffffull;
    uint32_t ofl = (uint32_t)cpu_get_rflags(cpu);
    if (reason == SYS_TS_IRET) {
        ofl &= ~CPU_FL_NT;
    }
    seg_tss_save(cpu, obase, o16, ofl);
    /* Busy bits, back link and NT (7.4). */
    uint32_t nfl = t[9];
    if (reason == SYS_TS_JMP || reason == SYS_TS_IRET) {
        seg_set_busy(cpu, osel, false);
    }
    if (reason == SYS_TS_CALL || reason == SYS_TS_INT) {
        cpu_stlin16(cpu, nbase, osel, CPU_MMU_SUP);
        nfl |= CPU_FL_NT;
    }
    if (reason != SYS_TS_IRET) {
        seg_set_busy(cpu, sel, true);
    }
    /* Commit: from here on faults belong to the new task. */
    cpu_set_seg(cpu, CPU_SEG_TR, sel, d->base, d->limit, d->attr | 2);
    cpu->cr0 |= CPU_CR0_TS;
    if ((cpu->cr0 & CPU_CR0_PG) && !n16) {
        cpu->cr3 = t[7];
        cpu_tlb_flush(cpu, (cpu->cr4 & CPU_CR4_PGE) != 0);
    }
    for (unsigned i = 0; i < 8; i++) {
        cpu->r[i] = t[10 + i];
    }
    cpu_set_rflags(cpu, nfl);
    cpu->rip = t[8];
    cpu->insn_rip = cpu->rip;
    cpu->block_stop = true;
    seg_task_load_segs(cpu, t, ext);
    cpu_update_mode(cpu);
    if (reason == SYS_TS_INT && err != CPU_NO_ERROR) {
        struct sys_stack st;
        seg_cur_stack(cpu, &st);
        sys_push(cpu, &st, n16 ? 2 : 4, err);
        cpu->r[CPU_RSP] = st.sp;
    }
}

/* JMP/CALL to a TSS descriptor or a task gate (vol. 2 JMP/CALL, protected mode). */
static void seg_task_far(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, int reason)
{
    uint32_t err = sel & SEG_SEL_MASK;
    if (sys_desc_dpl(d) < cpu->cpl || sys_desc_dpl(d) < (sel & 3u)) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (sys_desc_type(d) == 5) {
        if (!(d->attr & CPU_SEGA_P)) {
            cpu_raise(cpu, X86_EXC_NP, err);
        }
        uint16_t tsel = (uint16_t)(d->lo >> 16);
        struct sys_desc td;
        if ((tsel & 4) || !sys_desc_read(cpu, tsel, &td, false) || (td.attr & CPU_SEGA_S) ||
            (sys_desc_type(&td) != 9 && sys_desc_type(&td) != 1)) {
            cpu_raise(cpu, X86_EXC_GP, tsel & SEG_SEL_MASK);
        }
        sys_task_switch(cpu, tsel, &td, reason, CPU_NO_ERROR, 0);
        return;
    }
    if ((sel & 4) || (sys_desc_type(d) != 9 && sys_desc_type(d) != 1)) {
        cpu_raise(cpu, X86_EXC_GP, err); /* busy TSS, or a TSS descriptor in the LDT */
    }
    sys_task_switch(cpu, sel, d, reason, CPU_NO_ERROR, 0);
}

/* ---- MOV Sreg / POP Sreg / LxS ---- */

void cpu_load_seg(struct cpu *cpu, int seg, uint16_t sel)
{
    if (!sys_is_pmode(cpu)) {
        struct cpu_seg *s = &cpu->seg[seg];
        uint32_t attr = s->attr;
        uint32_t limit = s->limit;
        if (cpu->mode == CPU_MODE_V86) {
            /* V86 segments: 64 KiB, writable data at DPL 3 (SDM 20.1.1). */
            attr = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED |
                   (3u << CPU_SEGA_DPL_SHIFT);
            limit = 0xffff;
        } else {
            attr &= ~CPU_SEGA_UNUSABLE;
            attr |= CPU_SEGA_P;
        }
        cpu_set_seg(cpu, seg, sel, (uint64_t)sel << 4, limit, attr);
        return;
    }
    unsigned rpl = sel & 3;
    uint32_t err = sel & SEG_SEL_MASK;
    if ((sel & SEG_SEL_MASK) == 0) {
        if (seg == CPU_SEG_SS) {
            /* 64-bit mode allows a null SS below ring 3 with RPL = CPL. */
            if (cpu->mode == CPU_MODE_LONG64 && cpu->cpl != 3 && rpl == cpu->cpl) {
                sys_set_null_ss(cpu, rpl);
                return;
            }
            cpu_raise_gp0(cpu);
        }
        /* A null selector clears the base too (as Intel parts do in 64-bit mode). */
        cpu_set_seg(cpu, seg, sel, 0, 0, CPU_SEGA_UNUSABLE);
        return;
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, false, X86_EXC_GP, 0);
    if (seg == CPU_SEG_SS) {
        sys_check_ss(cpu, sel, &d, cpu->cpl, X86_EXC_GP, 0);
        sys_desc_set_accessed(cpu, sel, &d);
        sys_set_ss(cpu, sel, &d);
        return;
    }
    if (!(d.attr & CPU_SEGA_S) ||
        ((d.attr & CPU_SEGA_CODE) && !(d.attr & CPU_SEGA_RW))) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    bool conforming = (d.attr & CPU_SEGA_CODE) && (d.attr & CPU_SEGA_DC);
    if (!conforming && (rpl > sys_desc_dpl(&d) || cpu->cpl > sys_desc_dpl(&d))) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
    sys_desc_set_accessed(cpu, sel, &d);
    cpu_set_seg(cpu, seg, sel, d.base, d.limit, d.attr);
}

/* ---- far transfers ---- */

static uint64_t seg_opmask(unsigned opsize)
{
    return opsize == 8 ? ~0ull : opsize == 4 ? 0xffffffffull : 0xffffull;
}

/* Real mode / V86: CS = sel << 4. */
static void seg_real_cs(struct cpu *cpu, uint16_t sel)
{
    struct cpu_seg *cs = &cpu->seg[CPU_SEG_CS];
    uint32_t attr = cs->attr;
    uint32_t limit = cs->limit;
    if (cpu->mode == CPU_MODE_V86) {
        attr = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_CODE | CPU_SEGA_RW | CPU_SEGA_ACCESSED |
               (3u << CPU_SEGA_DPL_SHIFT);
        limit = 0xffff;
    }
    cpu_set_seg(cpu, CPU_SEG_CS, sel, (uint64_t)sel << 4, limit, attr);
}

/* New RIP for a code segment: limit check outside 64-bit code (#GP(0)), canonical inside. */
static uint64_t seg_check_target(struct cpu *cpu, const struct sys_desc *d, uint64_t off)
{
    if (sys_is_long(cpu) && (d->attr & CPU_SEGA_L)) {
        if (!cpu_is_canonical(off)) {
            cpu_raise_gp0(cpu);
        }
        return off;
    }
    if (off > d->limit) {
        cpu_raise_gp0(cpu);
    }
    return off;
}

/* Checks for a direct JMP/CALL to a code segment. */
static void seg_check_direct_code(struct cpu *cpu, uint16_t sel, const struct sys_desc *d)
{
    uint32_t err = sel & SEG_SEL_MASK;
    if (d->attr & CPU_SEGA_DC) {
        if (sys_desc_dpl(d) > cpu->cpl) {
            cpu_raise(cpu, X86_EXC_GP, err);
        }
    } else if ((sel & 3) > cpu->cpl || sys_desc_dpl(d) != cpu->cpl) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (sys_is_long(cpu) && (d->attr & CPU_SEGA_L) && (d->attr & CPU_SEGA_DB)) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (!(d->attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
}

/* A TSS descriptor (available or busy, 16/32-bit) or a task gate. */
static bool seg_is_task_target(const struct sys_desc *d)
{
    unsigned type = sys_desc_type(d);
    return type == 1 || type == 3 || type == 5 || type == 9 || type == 0xb;
}

/* A call gate: target selector, offset, parameter count. */
struct seg_gate {
    uint16_t sel;
    uint64_t off;
    unsigned params;
    unsigned size; /* 2 (286 gate), 4 (386 gate), 8 (64-bit gate) */
};

static void seg_read_gate(struct cpu *cpu, uint16_t gsel, struct seg_gate *g,
                          struct sys_desc *gd)
{
    uint32_t err = gsel & SEG_SEL_MASK;
    unsigned type = sys_desc_type(gd);
    bool lm = sys_is_long(cpu);
    if (lm) {
        if (type != 0xc) {
            cpu_raise(cpu, X86_EXC_GP, err);
        }
    } else if (type != 0x4 && type != 0xc) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (sys_desc_dpl(gd) < cpu->cpl || sys_desc_dpl(gd) < (gsel & 3u)) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (!(gd->attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
    g->sel = (uint16_t)(gd->lo >> 16);
    g->off = (gd->lo & 0xffffu) | (type == 0xc ? (gd->hi & 0xffff0000u) : 0);
    if (lm) {
        g->off |= (uint64_t)gd->hi2 << 32;
    }
    g->params = gd->hi & 0x1f;
    g->size = lm ? 8 : type == 0xc ? 4 : 2;
}

/* The gate's target code segment with the checks common to JMP and CALL. */
static void seg_gate_target(struct cpu *cpu, const struct seg_gate *g, struct sys_desc *cd)
{
    uint32_t err = g->sel & SEG_SEL_MASK;
    if ((g->sel & SEG_SEL_MASK) == 0) {
        cpu_raise_gp0(cpu);
    }
    sys_desc_fetch(cpu, g->sel, cd, false, X86_EXC_GP, 0);
    if (!(cd->attr & CPU_SEGA_S) || !(cd->attr & CPU_SEGA_CODE) ||
        sys_desc_dpl(cd) > cpu->cpl) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (sys_is_long(cpu) && (!(cd->attr & CPU_SEGA_L) || (cd->attr & CPU_SEGA_DB))) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (!(cd->attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
}

void cpu_far_jmp(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
    if (!sys_is_pmode(cpu)) {
        seg_real_cs(cpu, sel);
        cpu->rip = off & seg_opmask(opsize);
        return;
    }
    if ((sel & SEG_SEL_MASK) == 0) {
        cpu_raise_gp0(cpu);
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, false, X86_EXC_GP, 0);
    if (d.attr & CPU_SEGA_S) {
        if (!(d.attr & CPU_SEGA_CODE)) {
            cpu_raise(cpu, X86_EXC_GP, sel & SEG_SEL_MASK);
        }
        seg_check_direct_code(cpu, sel, &d);
        uint64_t rip = seg_check_target(cpu, &d, off & seg_opmask(opsize));
        sys_desc_set_accessed(cpu, sel, &d);
        sys_set_cs(cpu, sel, &d, cpu->cpl);
        cpu->rip = rip;
        return;
    }
    if (sys_is_long(cpu)) {
        sys_desc_fetch(cpu, sel, &d, true, X86_EXC_GP, 0);
    } else if (seg_is_task_target(&d)) {
        seg_task_far(cpu, sel, &d, SYS_TS_JMP);
        return;
    }
    struct seg_gate g;
    struct sys_desc cd;
    seg_read_gate(cpu, sel, &g, &d);
    seg_gate_target(cpu, &g, &cd);
    if (!(cd.attr & CPU_SEGA_DC) && sys_desc_dpl(&cd) != cpu->cpl) {
        cpu_raise(cpu, X86_EXC_GP, g.sel & SEG_SEL_MASK);
    }
    uint64_t rip = seg_check_target(cpu, &cd, g.off);
    sys_desc_set_accessed(cpu, g.sel, &cd);
    sys_set_cs(cpu, g.sel, &cd, cpu->cpl);
    cpu->rip = rip;
}

void cpu_far_call(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize)
{
    struct sys_stack st;
    uint16_t old_cs = cpu->seg[CPU_SEG_CS].sel;
    uint64_t ret = cpu->rip;
    if (!sys_is_pmode(cpu)) {
        seg_cur_stack(cpu, &st);
        sys_push(cpu, &st, opsize, old_cs);
        sys_push(cpu, &st, opsize, ret);
        seg_real_cs(cpu, sel);
        cpu->r[CPU_RSP] = st.sp;
        cpu->rip = off & seg_opmask(opsize);
        return;
    }
    if ((sel & SEG_SEL_MASK) == 0) {
        cpu_raise_gp0(cpu);
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, false, X86_EXC_GP, 0);
    if (d.attr & CPU_SEGA_S) {
        if (!(d.attr & CPU_SEGA_CODE)) {
            cpu_raise(cpu, X86_EXC_GP, sel & SEG_SEL_MASK);
        }
        seg_check_direct_code(cpu, sel, &d);
        uint64_t rip = seg_check_target(cpu, &d, off & seg_opmask(opsize));
        seg_cur_stack(cpu, &st);
        sys_push(cpu, &st, opsize, old_cs);
        sys_push(cpu, &st, opsize, ret);
        sys_desc_set_accessed(cpu, sel, &d);
        sys_set_cs(cpu, sel, &d, cpu->cpl);
        cpu->r[CPU_RSP] = st.sp;
        cpu->rip = rip;
        return;
    }
    if (sys_is_long(cpu)) {
        sys_desc_fetch(cpu, sel, &d, true, X86_EXC_GP, 0);
    } else if (seg_is_task_target(&d)) {
        seg_task_far(cpu, sel, &d, SYS_TS_CALL);
        return;
    }
    struct seg_gate g;
    struct sys_desc cd;
    seg_read_gate(cpu, sel, &g, &d);
    seg_gate_target(cpu, &g, &cd);
    unsigned dpl = sys_desc_dpl(&cd);
    uint64_t rip = seg_check_target(cpu, &cd, g.off);
    if (!(cd.attr & CPU_SEGA_DC) && dpl < cpu->cpl) {
        /* More privilege: switch to the TSS stack of the target ring. */
        uint64_t old_ss = cpu->seg[CPU_SEG_SS].sel;
        uint64_t old_sp = cpu->r[CPU_RSP];
        if (sys_is_long(cpu)) {
            uint64_t nsp = sys_tss_read(cpu, 4 + 8 * dpl, 8);
            sys_stack_init(cpu, &st, 0, nsp, 8, CPU_MMU_SUP);
            sys_push(cpu, &st, 8, old_ss);
            sys_push(cpu, &st, 8, old_sp);
            sys_push(cpu, &st, 8, old_cs);
            sys_push(cpu, &st, 8, ret);
            sys_desc_set_accessed(cpu, g.sel, &cd);
            sys_set_null_ss(cpu, dpl);
            sys_set_cs(cpu, g.sel, &cd, dpl);
            cpu->r[CPU_RSP] = st.sp;
            cpu->rip = rip;
            return;
        }
        bool tss32 = (cpu->seg[CPU_SEG_TR].attr & CPU_SEGA_TYPE) == 0xb ||
                     (cpu->seg[CPU_SEG_TR].attr & CPU_SEGA_TYPE) == 0x9;
        uint16_t nss;
        uint64_t nsp;
        if (tss32) {
            nsp = sys_tss_read(cpu, 4 + 8 * dpl, 4);
            nss = (uint16_t)sys_tss_read(cpu, 8 + 8 * dpl, 2);
        } else {
            nsp = sys_tss_read(cpu, 2 + 4 * dpl, 2);
            nss = (uint16_t)sys_tss_read(cpu, 4 + 4 * dpl, 2);
        }
        if ((nss & SEG_SEL_MASK) == 0) {
            cpu_raise(cpu, X86_EXC_TS, 0);
        }
        struct sys_desc sd;
        sys_desc_fetch(cpu, nss, &sd, false, X86_EXC_TS, 0);
        sys_check_ss(cpu, nss, &sd, dpl, X86_EXC_TS, 0);
        unsigned ssz = (sd.attr & CPU_SEGA_DB) ? 4 : 2;
        sys_stack_init(cpu, &st, sd.base, nsp, ssz, CPU_MMU_SUP);
        /* Copy the parameters from the old stack (SDM vol. 3, 5.8.5). */
        struct sys_stack old;
        seg_cur_stack(cpu, &old);
        uint64_t params[32];
        for (unsigned i = 0; i < g.params; i++) {
            params[i] = sys_pop(cpu, &old, g.size); /* params[0] is the last one pushed */
        }
        sys_push(cpu, &st, g.size, old_ss);
        sys_push(cpu, &st, g.size, old_sp);
        for (unsigned i = g.params; i > 0; i--) {
            sys_push(cpu, &st, g.size, params[i - 1]);
        }
        sys_push(cpu, &st, g.size, old_cs);
        sys_push(cpu, &st, g.size, ret);
        sys_desc_set_accessed(cpu, nss, &sd);
        sys_desc_set_accessed(cpu, g.sel, &cd);
        cpu->cpl = (uint8_t)dpl;
        sys_set_ss(cpu, nss, &sd);
        sys_set_cs(cpu, g.sel, &cd, dpl);
        cpu->r[CPU_RSP] = st.sp;
        cpu->rip = rip;
        return;
    }
    unsigned psize = sys_is_long(cpu) ? 8 : g.size;
    seg_cur_stack(cpu, &st);
    sys_push(cpu, &st, psize, old_cs);
    sys_push(cpu, &st, psize, ret);
    sys_desc_set_accessed(cpu, g.sel, &cd);
    sys_set_cs(cpu, g.sel, &cd, cpu->cpl);
    cpu->r[CPU_RSP] = st.sp;
    cpu->rip = rip;
}

void cpu_far_ret(struct cpu *cpu, unsigned opsize, uint16_t imm)
{
    struct sys_stack st;
    seg_cur_stack(cpu, &st);
    uint64_t rip = sys_pop(cpu, &st, opsize) & seg_opmask(opsize);
    uint16_t sel = (uint16_t)sys_pop(cpu, &st, opsize);
    st.sp = (st.sp & ~st.mask) | ((st.sp + imm) & st.mask);
    if (!sys_is_pmode(cpu)) {
        seg_real_cs(cpu, sel);
        cpu->r[CPU_RSP] = st.sp;
        cpu->rip = rip;
        return;
    }
    uint32_t err = sel & SEG_SEL_MASK;
    unsigned rpl = sel & 3;
    if ((sel & SEG_SEL_MASK) == 0) {
        cpu_raise_gp0(cpu);
    }
    struct sys_desc d;
    sys_desc_fetch(cpu, sel, &d, false, X86_EXC_GP, 0);
    if (!(d.attr & CPU_SEGA_S) || !(d.attr & CPU_SEGA_CODE) || rpl < cpu->cpl) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if ((d.attr & CPU_SEGA_DC) ? sys_desc_dpl(&d) > rpl : sys_desc_dpl(&d) != rpl) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
    uint64_t nrip = seg_check_target(cpu, &d, rip);
    if (rpl == cpu->cpl) {
        sys_desc_set_accessed(cpu, sel, &d);
        sys_set_cs(cpu, sel, &d, rpl);
        cpu->r[CPU_RSP] = st.sp;
        cpu->rip = nrip;
        return;
    }
    /* Return to an outer level: pop SS:RSP too. */
    uint64_t nsp = sys_pop(cpu, &st, opsize);
    uint16_t nss = (uint16_t)sys_pop(cpu, &st, opsize);
    struct sys_desc sd;
    bool null_ss = (nss & SEG_SEL_MASK) == 0;
    if (null_ss) {
        if (!(cpu->mode == CPU_MODE_LONG64 && (d.attr & CPU_SEGA_L) && rpl != 3)) {
            cpu_raise_gp0(cpu);
        }
    } else {
        sys_desc_fetch(cpu, nss, &sd, false, X86_EXC_GP, 0);
        sys_check_ss(cpu, nss, &sd, rpl, X86_EXC_GP, 0);
    }
    sys_desc_set_accessed(cpu, sel, &d);
    cpu->cpl = (uint8_t)rpl;
    if (null_ss) {
        sys_set_null_ss(cpu, rpl);
    } else {
        sys_desc_set_accessed(cpu, nss, &sd);
        sys_set_ss(cpu, nss, &sd);
    }
    sys_set_cs(cpu, sel, &d, rpl);
    nsp += imm;
    if (cpu->stack_size == 4) {
        nsp = (uint32_t)nsp;
    } else if (cpu->stack_size == 2) {
        nsp = (cpu->r[CPU_RSP] & ~0xffffull) | (uint16_t)nsp;
    }
    cpu->r[CPU_RSP] = nsp;
    cpu->rip = nrip;
    sys_null_outer_segs(cpu);
}
