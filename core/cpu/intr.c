/* Exception and interrupt delivery for the soft CPU (SDM vol. 3, chapter 6): real-mode IVT,
 * protected-mode and long-mode IDT gates, privilege changes with the TSS stacks, IST,
 * error codes, double and triple faults, IRET in all its forms, NMI blocking, external
 * interrupts through cpu->intc, software interrupts. Task gates are not implemented. */
#include "core/cpu/sysint.h"

#include "core/log.h"
#include "hostdrv/accel.h"

#include <stdio.h>

#define INTR_SEL_MASK 0xfffcu

static bool intr_has_error(int vec)
{
    switch (vec) {
    case X86_EXC_DF:
    case X86_EXC_TS:
    case X86_EXC_NP:
    case X86_EXC_SS:
    case X86_EXC_GP:
    case X86_EXC_PF:
    case X86_EXC_AC:
        return true;
    default:
        return false;
    }
}

/* Flags every delivery clears; interrupt gates clear IF too (SDM 6.12.1.3). */
static void intr_clear_flags(struct cpu *cpu, bool int_gate)
{
    uint64_t f = cpu_get_rflags(cpu);
    f &= ~(uint64_t)(CPU_FL_TF | CPU_FL_NT | CPU_FL_RF | CPU_FL_VM);
    if (int_gate) {
        f &= ~(uint64_t)CPU_FL_IF;
    }
    cpu_set_rflags(cpu, f);
}

static void intr_real(struct cpu *cpu, int vec, uint32_t err, int kind)
{
    uint32_t off = (uint32_t)vec * 4;
    if (off + 3 > cpu->idtr.limit) {
        cpu_raise_gp0(cpu);
    }
    uint64_t lin = (cpu->idtr.base + off) & 0xffffffffull;
    uint16_t ip = cpu_ldlin16(cpu, lin, CPU_MMU_SUP);
    uint16_t cs = cpu_ldlin16(cpu, lin + 2, CPU_MMU_SUP);
    struct sys_stack st;
    sys_stack_init(cpu, &st, cpu->seg[CPU_SEG_SS].base, cpu->r[CPU_RSP], cpu->stack_size,
                   CPU_MMU_SUP);
    uint64_t fl = cpu_get_rflags(cpu);
    sys_push(cpu, &st, 2, fl);
    sys_push(cpu, &st, 2, cpu->seg[CPU_SEG_CS].sel);
    sys_push(cpu, &st, 2, cpu->rip);
    fl &= ~(uint64_t)(CPU_FL_IF | CPU_FL_TF | CPU_FL_AC | CPU_FL_RF);
    cpu_set_rflags(cpu, fl);
    struct cpu_seg *c = &cpu->seg[CPU_SEG_CS];
    cpu_set_seg(cpu, CPU_SEG_CS, cs, (uint64_t)cs << 4, c->limit, c->attr);
    cpu->r[CPU_RSP] = st.sp;
    cpu->rip = ip;
}

/* The gate's code segment with its checks; returns the new CPL. */
static unsigned intr_gate_cs(struct cpu *cpu, uint16_t sel, struct sys_desc *cd, uint32_t ext)
{
    uint32_t err = (sel & INTR_SEL_MASK) | ext;
    if ((sel & INTR_SEL_MASK) == 0) {
        cpu_raise(cpu, X86_EXC_GP, ext);
    }
    sys_desc_fetch(cpu, sel, cd, false, X86_EXC_GP, ext);
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
    return (cd->attr & CPU_SEGA_DC) ? cpu->cpl : sys_desc_dpl(cd);
}

static void intr_long(struct cpu *cpu, int vec, uint32_t err, int kind)
{
    uint32_t ext = kind == SYS_EV_SOFT ? 0 : 1;
    uint32_t idt_err = (uint32_t)vec * 8 + 2 + ext;
    uint32_t off = (uint32_t)vec * 16;
    if (off + 15 > cpu->idtr.limit) {
        cpu_raise(cpu, X86_EXC_GP, idt_err);
    }
    uint64_t lo = cpu_ldlin64(cpu, cpu->idtr.base + off, CPU_MMU_SUP);
    uint64_t hi = cpu_ldlin64(cpu, cpu->idtr.base + off + 8, CPU_MMU_SUP);
    unsigned type = (lo >> 40) & 0xf;
    unsigned dpl = (lo >> 45) & 3;
    if (type != 0xe && type != 0xf) {
        cpu_raise(cpu, X86_EXC_GP, idt_err);
    }
    if (kind == SYS_EV_SOFT && dpl < cpu->cpl) {
        cpu_raise(cpu, X86_EXC_GP, idt_err);
    }
    if (!((lo >> 47) & 1)) {
        cpu_raise(cpu, X86_EXC_NP, idt_err);
    }
    uint16_t sel = (uint16_t)(lo >> 16);
    uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
    unsigned ist = (lo >> 32) & 7;
    struct sys_desc cd;
    unsigned ncpl = intr_gate_cs(cpu, sel, &cd, ext);
    if (!cpu_is_canonical(target)) {
        cpu_raise(cpu, X86_EXC_GP, ext);
    }
    uint64_t rsp = cpu->r[CPU_RSP];
    if (ist) {
        rsp = sys_tss_read(cpu, 0x24 + 8 * (ist - 1), 8);
    } else if (ncpl < cpu->cpl) {
        rsp = sys_tss_read(cpu, 4 + 8 * ncpl, 8);
    }
    rsp &= ~0xfull;
    struct sys_stack st;
    sys_stack_init(cpu, &st, 0, rsp, 8, ncpl == 3 ? CPU_MMU_USER : CPU_MMU_SUP);
    sys_push(cpu, &st, 8, cpu->seg[CPU_SEG_SS].sel);
    sys_push(cpu, &st, 8, cpu->r[CPU_RSP]);
    sys_push(cpu, &st, 8, cpu_get_rflags(cpu));
    sys_push(cpu, &st, 8, cpu->seg[CPU_SEG_CS].sel);
    sys_push(cpu, &st, 8, cpu->rip);
    if (kind == SYS_EV_EXC && intr_has_error(vec)) { /* only exceptions (SDM 6.13) */
        sys_push(cpu, &st, 8, err == CPU_NO_ERROR ? 0 : err);
    }
    /* Commit. */
    sys_desc_set_accessed(cpu, sel, &cd);
    intr_clear_flags(cpu, type == 0xe);
    if (ncpl != cpu->cpl) {
        cpu->cpl = (uint8_t)ncpl;
        sys_set_null_ss(cpu, ncpl);
    }
    sys_set_cs(cpu, sel, &cd, ncpl);
    cpu->r[CPU_RSP] = st.sp;
    cpu->rip = target;
}

static void intr_prot(struct cpu *cpu, int vec, uint32_t err, int kind)
{
    uint32_t ext = kind == SYS_EV_SOFT ? 0 : 1;
    uint32_t idt_err = (uint32_t)vec * 8 + 2 + ext;
    uint32_t off = (uint32_t)vec * 8;
    if (off + 7 > cpu->idtr.limit) {
        cpu_raise(cpu, X86_EXC_GP, idt_err);
    }
    uint64_t g = cpu_ldlin64(cpu, (cpu->idtr.base + off) & 0xffffffffull, CPU_MMU_SUP);
    unsigned type = (g >> 40) & 0xf;
    unsigned dpl = (g >> 45) & 3;
    if (type == 0x5) {
        /* Task gate (SDM vol. 3, 6.11.2 and 7.3; vol. 2 INT n). */
        if (kind == SYS_EV_SOFT && dpl < cpu->cpl) {
            cpu_raise(cpu, X86_EXC_GP, idt_err);
        }
        if (!((g >> 47) & 1)) {
            cpu_raise(cpu, X86_EXC_NP, idt_err);
        }
        uint16_t tsel = (uint16_t)(g >> 16);
        struct sys_desc td;
        if ((tsel & 4) || !sys_desc_read(cpu, tsel, &td, false)) {
            cpu_raise(cpu, X86_EXC_GP, (tsel & INTR_SEL_MASK) | ext);
        }
        if ((td.attr & CPU_SEGA_S) || (sys_desc_type(&td) != 9 && sys_desc_type(&td) != 1)) {
            cpu_raise(cpu, X86_EXC_GP, (tsel & INTR_SEL_MASK) | ext);
        }
        sys_task_switch(cpu, tsel, &td, SYS_TS_INT, err, ext);
        return;
    }
    if (type != 0x6 && type != 0x7 && type != 0xe && type != 0xf) {
        cpu_raise(cpu, X86_EXC_GP, idt_err);
    }
    if (kind == SYS_EV_SOFT && dpl < cpu->cpl) {
        cpu_raise(cpu, X86_EXC_GP, idt_err);
    }
    if (!((g >> 47) & 1)) {
        cpu_raise(cpu, X86_EXC_NP, idt_err);
    }
    unsigned gsize = (type & 8) ? 4 : 2;
    uint16_t sel = (uint16_t)(g >> 16);
    uint64_t target = (g & 0xffff) | (gsize == 4 ? ((g >> 32) & 0xffff0000ull) : 0);
    struct sys_desc cd;
    unsigned ncpl = intr_gate_cs(cpu, sel, &cd, ext);
    bool from_v86 = cpu->mode == CPU_MODE_V86;
    if (from_v86 && ncpl != 0) {
        cpu_raise(cpu, X86_EXC_GP, (sel & INTR_SEL_MASK) | ext);
    }
    if (target > cd.limit) {
        cpu_raise(cpu, X86_EXC_GP, ext);
    }
    uint64_t fl = cpu_get_rflags(cpu);
    struct sys_stack st;
    struct sys_desc sd;
    uint16_t nss = 0;
    bool switch_stack = ncpl < cpu->cpl;
    if (switch_stack) {
        unsigned trtype = cpu->seg[CPU_SEG_TR].attr & CPU_SEGA_TYPE;
        uint64_t nsp;
        if (trtype == 0x9 || trtype == 0xb) {
            nsp = sys_tss_read(cpu, 4 + 8 * ncpl, 4);
            nss = (uint16_t)sys_tss_read(cpu, 8 + 8 * ncpl, 2);
        } else {
            nsp = sys_tss_read(cpu, 2 + 4 * ncpl, 2);
            nss = (uint16_t)sys_tss_read(cpu, 4 + 4 * ncpl, 2);
        }
        if ((nss & INTR_SEL_MASK) == 0) {
            cpu_raise(cpu, X86_EXC_TS, ext);
        }
        sys_desc_fetch(cpu, nss, &sd, false, X86_EXC_TS, ext);
        sys_check_ss(cpu, nss, &sd, ncpl, X86_EXC_TS, ext);
        sys_stack_init(cpu, &st, sd.base, nsp, (sd.attr & CPU_SEGA_DB) ? 4 : 2, CPU_MMU_SUP);
        if (from_v86) {
            sys_push(cpu, &st, gsize, cpu->seg[CPU_SEG_GS].sel);
            sys_push(cpu, &st, gsize, cpu->seg[CPU_SEG_FS].sel);
            sys_push(cpu, &st, gsize, cpu->seg[CPU_SEG_DS].sel);
            sys_push(cpu, &st, gsize, cpu->seg[CPU_SEG_ES].sel);
        }
        sys_push(cpu, &st, gsize, cpu->seg[CPU_SEG_SS].sel);
        sys_push(cpu, &st, gsize, cpu->r[CPU_RSP]);
    } else {
        sys_stack_init(cpu, &st, cpu->seg[CPU_SEG_SS].base, cpu->r[CPU_RSP], cpu->stack_size,
                       ncpl == 3 ? CPU_MMU_USER : CPU_MMU_SUP);
    }
    sys_push(cpu, &st, gsize, fl);
    sys_push(cpu, &st, gsize, cpu->seg[CPU_SEG_CS].sel);
    sys_push(cpu, &st, gsize, cpu->rip);
    if (kind == SYS_EV_EXC && intr_has_error(vec)) { /* only exceptions (SDM 6.13) */
        sys_push(cpu, &st, gsize, err == CPU_NO_ERROR ? 0 : err);
    }
    /* Commit. */
    sys_desc_set_accessed(cpu, sel, &cd);
    intr_clear_flags(cpu, !(type & 1));
    cpu->cpl = (uint8_t)ncpl;
    if (switch_stack) {
        sys_desc_set_accessed(cpu, nss, &sd);
        sys_set_ss(cpu, nss, &sd);
    }
    if (from_v86) {
        cpu_set_seg(cpu, CPU_SEG_ES, 0, 0, 0, CPU_SEGA_UNUSABLE);
        cpu_set_seg(cpu, CPU_SEG_DS, 0, 0, 0, CPU_SEGA_UNUSABLE);
        cpu_set_seg(cpu, CPU_SEG_FS, 0, 0, 0, CPU_SEGA_UNUSABLE);
        cpu_set_seg(cpu, CPU_SEG_GS, 0, 0, 0, CPU_SEGA_UNUSABLE);
    }
    sys_set_cs(cpu, sel, &cd, ncpl);
    if (st.mask == 0xffff) {
        cpu->r[CPU_RSP] = (cpu->r[CPU_RSP] & ~0xffffull) | (st.sp & 0xffff);
    } else {
        cpu->r[CPU_RSP] = st.sp & 0xffffffffull;
    }
    cpu->rip = target;
}

void sys_deliver(struct cpu *cpu, int vec, uint32_t err, int kind)
{
    cpu->halted = false;
    switch (cpu->mode) {
    case CPU_MODE_REAL:
        intr_real(cpu, vec, err, kind);
        break;
    case CPU_MODE_COMPAT:
    case CPU_MODE_LONG64:
        intr_long(cpu, vec, err, kind);
        break;
    default:
        intr_prot(cpu, vec, err, kind);
        break;
    }
    cpu->block_stop = true;
}

static bool intr_contributory(int vec)
{
    return vec == X86_EXC_DE || (vec >= X86_EXC_TS && vec <= X86_EXC_GP);
}

void cpu_deliver_exception(struct cpu *cpu, int vector, uint32_t error_code)
{
    int first = cpu->deliver_vector;
    if (first >= 0) {
        /* A fault while delivering `first` (SDM vol. 3, table 6-5). */
        if (first == X86_EXC_DF) {
            log_warn(SYS_TAG, "triple fault (vector %d during #DF) at rip %#llx", vector,
                     (unsigned long long)cpu->rip);
            cpu->deliver_vector = -1;
            cpu_request_exit(cpu, CPU_EXIT_SHUTDOWN);
            return;
        }
        bool df = (intr_contributory(first) && intr_contributory(vector)) ||
                  (first == X86_EXC_PF && (vector == X86_EXC_PF || intr_contributory(vector)));
        if (df) {
            vector = X86_EXC_DF;
            error_code = 0;
        }
    }
    cpu->deliver_vector = vector;
    sys_deliver(cpu, vector, error_code, SYS_EV_EXC);
    cpu->deliver_vector = -1;
}

void cpu_int_soft(struct cpu *cpu, int vector, int kind)
{
    if (kind == CPU_INT_O) {
        if (cpu->mode == CPU_MODE_LONG64) {
            cpu_raise_ud(cpu);
        }
        if (!(cpu_get_rflags(cpu) & CPU_FL_OF)) {
            return;
        }
        vector = X86_EXC_OF;
    } else if (kind == CPU_INT_3) {
        vector = X86_EXC_BP;
    } else if (kind == CPU_INT_ICEBP) {
        vector = X86_EXC_DB;
    }
    if (kind != CPU_INT_ICEBP && cpu->mode == CPU_MODE_V86 &&
        ((cpu->rflags & CPU_FL_IOPL) >> CPU_FL_IOPL_SHIFT) < 3) {
        cpu_raise_gp0(cpu);
    }
    /* Software interrupts are benign for #DF purposes, whatever their vector. */
    cpu->deliver_vector = -1;
    sys_deliver(cpu, vector, CPU_NO_ERROR, kind == CPU_INT_ICEBP ? SYS_EV_EXT : SYS_EV_SOFT);
}

void cpu_sys_intr_hint(struct cpu *cpu)
{
    __atomic_store_n(&cpu->intr_hint, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&cpu->jit_budget, 0, __ATOMIC_RELAXED); /* stop chained blocks */
}

/* Poll the interrupt controller at the next block: now (until_if false) or once RFLAGS.IF
 * is set. */
static void intr_rearm(struct cpu *cpu, bool until_if)
{
    if (until_if) {
        cpu->intr_wait_if = true;
    } else {
        __atomic_store_n(&cpu->intr_hint, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&cpu->jit_budget, 0, __ATOMIC_RELAXED);
    }
}

/* Polling the LAPIC takes its lock, and this runs between every two blocks: poll only after
 * a hint (soft_accel's kick; the LAPIC kicks on every new pending interrupt), once IF is set
 * while something is pending, and every 256 blocks as a safety net. */
static bool intr_should_poll(struct cpu *cpu)
{
    if (__atomic_load_n(&cpu->intr_hint, __ATOMIC_RELAXED)) {
        __atomic_store_n(&cpu->intr_hint, 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST); /* a hint after our poll is not lost */
        return true;
    }
    if (cpu->intr_wait_if && (cpu->rflags & CPU_FL_IF)) {
        cpu->intr_wait_if = false;
        return true;
    }
    return ++cpu->intr_poll_count == 0;
}

void cpu_check_interrupts(struct cpu *cpu)
{
    const struct accel_intc *ic = cpu->intc;
    if (!ic) {
        cpu->intr_hint = 0; /* nothing to poll (a bare CPU in tests and benchmarks) */
        return;
    }
    if (!intr_should_poll(cpu)) {
        return;
    }
    if (cpu->intr_shadow) {
        intr_rearm(cpu, false);
        return;
    }
    if (ic->nmi_pending && ic->nmi_pending(ic->opaque)) {
        if (cpu->nmi_blocked) {
            intr_rearm(cpu, false); /* look again after IRET */
        } else {
            if (ic->nmi_ack) {
                ic->nmi_ack(ic->opaque);
            }
            cpu->nmi_blocked = true;
            intr_rearm(cpu, false);
            cpu->deliver_vector = -1; /* NMI is benign for #DF purposes */
            sys_deliver(cpu, X86_EXC_NMI, CPU_NO_ERROR, SYS_EV_NMI);
            return;
        }
    }
    if (!ic->intr_pending || !ic->intr_pending(ic->opaque)) {
        return;
    }
    /* Pending: look again when IF is set, or at the next block (more may be queued). */
    if (!(cpu->rflags & CPU_FL_IF)) {
        intr_rearm(cpu, true);
        return;
    }
    intr_rearm(cpu, false);
    int v = ic->intr_ack ? ic->intr_ack(ic->opaque) : -1;
    if (v < 0 || v > 255) {
        return;
    }
    /* An external interrupt is benign for #DF purposes (SDM table 6-5). */
    cpu->deliver_vector = -1;
    sys_deliver(cpu, v, CPU_NO_ERROR, SYS_EV_EXT);
}

/* ---- IRET ---- */

void sys_write_rflags(struct cpu *cpu, uint64_t val, unsigned opsize)
{
    uint64_t old = cpu_get_rflags(cpu);
    unsigned iopl = (old & CPU_FL_IOPL) >> CPU_FL_IOPL_SHIFT;
    uint64_t mask = CPU_FL_ARITH | CPU_FL_TF | CPU_FL_DF | CPU_FL_NT;
    if (opsize >= 4) {
        mask |= CPU_FL_RF | CPU_FL_AC | CPU_FL_ID;
    }
    if (cpu->cpl == 0) {
        mask |= CPU_FL_IOPL | CPU_FL_IF;
        if (opsize >= 4) {
            mask |= CPU_FL_VIF | CPU_FL_VIP;
        }
    } else if (cpu->cpl <= iopl) {
        mask |= CPU_FL_IF;
    }
    if (opsize == 2) {
        mask &= 0xffff;
    }
    cpu_set_rflags(cpu, (old & ~mask) | (val & mask) | CPU_FL_FIXED1);
}

static void iret_to_v86(struct cpu *cpu, struct sys_stack *st, uint64_t rip, uint16_t cs,
                        uint64_t fl)
{
    uint64_t nsp = sys_pop(cpu, st, 4);
    uint16_t nss = (uint16_t)sys_pop(cpu, st, 4);
    uint16_t es = (uint16_t)sys_pop(cpu, st, 4);
    uint16_t ds = (uint16_t)sys_pop(cpu, st, 4);
    uint16_t fs = (uint16_t)sys_pop(cpu, st, 4);
    uint16_t gs = (uint16_t)sys_pop(cpu, st, 4);
    cpu_set_rflags(cpu, (fl & 0x3f7fd7ull) | CPU_FL_FIXED1);
    cpu->cpl = 3;
    uint32_t attr = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED |
                    (3u << CPU_SEGA_DPL_SHIFT);
    cpu_set_seg(cpu, CPU_SEG_CS, cs, (uint64_t)cs << 4, 0xffff, attr | CPU_SEGA_CODE);
    cpu_set_seg(cpu, CPU_SEG_SS, nss, (uint64_t)nss << 4, 0xffff, attr);
    cpu_set_seg(cpu, CPU_SEG_ES, es, (uint64_t)es << 4, 0xffff, attr);
    cpu_set_seg(cpu, CPU_SEG_DS, ds, (uint64_t)ds << 4, 0xffff, attr);
    cpu_set_seg(cpu, CPU_SEG_FS, fs, (uint64_t)fs << 4, 0xffff, attr);
    cpu_set_seg(cpu, CPU_SEG_GS, gs, (uint64_t)gs << 4, 0xffff, attr);
    cpu->r[CPU_RSP] = (uint32_t)nsp;
    cpu->rip = rip & 0xffff;
}

void cpu_iret(struct cpu *cpu, unsigned opsize)
{
    struct sys_stack st;
    uint64_t opmask = opsize == 8 ? ~0ull : opsize == 4 ? 0xffffffffull : 0xffffull;
    if (cpu->mode == CPU_MODE_V86 &&
        ((cpu->rflags & CPU_FL_IOPL) >> CPU_FL_IOPL_SHIFT) < 3) {
        cpu_raise_gp0(cpu);
    }
    sys_stack_init(cpu, &st, cpu->seg[CPU_SEG_SS].base, cpu->r[CPU_RSP], cpu->stack_size,
                   cpu->mmu_idx);
    if (!sys_is_pmode(cpu)) {
        uint64_t rip = sys_pop(cpu, &st, opsize) & opmask;
        uint16_t cs = (uint16_t)sys_pop(cpu, &st, opsize);
        uint64_t fl = sys_pop(cpu, &st, opsize);
        const struct cpu_seg *c = &cpu->seg[CPU_SEG_CS];
        cpu_set_seg(cpu, CPU_SEG_CS, cs, (uint64_t)cs << 4, c->limit, c->attr);
        /* V86 (IOPL 3 here) keeps IOPL and VM; real mode is CPL 0. */
        sys_write_rflags(cpu, fl, opsize);
        cpu->r[CPU_RSP] = st.sp;
        cpu->rip = rip;
        cpu->nmi_blocked = false;
        return;
    }
    uint64_t cur = cpu_get_rflags(cpu);
    if (cur & CPU_FL_NT) {
        if (sys_is_long(cpu)) {
            cpu_raise_gp0(cpu);
        }
        /* Return to the task in the back link: it must be a busy TSS in the GDT. */
        uint16_t link = (uint16_t)sys_tss_read(cpu, 0, 2);
        struct sys_desc td;
        if ((link & 4) || !sys_desc_read(cpu, link, &td, false) || (td.attr & CPU_SEGA_S) ||
            (sys_desc_type(&td) != 0xb && sys_desc_type(&td) != 3)) {
            cpu_raise(cpu, X86_EXC_TS, link & INTR_SEL_MASK);
        }
        sys_task_switch(cpu, link, &td, SYS_TS_IRET, CPU_NO_ERROR, 0);
        cpu->nmi_blocked = false;
        return;
    }
    uint64_t rip = sys_pop(cpu, &st, opsize) & opmask;
    uint16_t sel = (uint16_t)sys_pop(cpu, &st, opsize);
    uint64_t fl = sys_pop(cpu, &st, opsize);
    if (!sys_is_long(cpu) && opsize == 4 && (fl & CPU_FL_VM) && cpu->cpl == 0) {
        iret_to_v86(cpu, &st, rip, sel, fl);
        cpu->nmi_blocked = false;
        return;
    }
    uint32_t err = sel & INTR_SEL_MASK;
    unsigned rpl = sel & 3;
    if ((sel & INTR_SEL_MASK) == 0) {
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
    if (sys_is_long(cpu) && (d.attr & CPU_SEGA_L) && (d.attr & CPU_SEGA_DB)) {
        cpu_raise(cpu, X86_EXC_GP, err);
    }
    if (!(d.attr & CPU_SEGA_P)) {
        cpu_raise(cpu, X86_EXC_NP, err);
    }
    bool to64 = sys_is_long(cpu) && (d.attr & CPU_SEGA_L);
    if (to64) {
        if (!cpu_is_canonical(rip)) {
            cpu_raise_gp0(cpu);
        }
    } else if (rip > d.limit) {
        cpu_raise_gp0(cpu);
    }
    bool pop_stack = rpl != cpu->cpl || cpu->mode == CPU_MODE_LONG64;
    uint64_t nsp = 0;
    uint16_t nss = 0;
    struct sys_desc sd;
    bool null_ss = false;
    if (pop_stack) {
        nsp = sys_pop(cpu, &st, opsize);
        nss = (uint16_t)sys_pop(cpu, &st, opsize);
        if ((nss & INTR_SEL_MASK) == 0) {
            /* 64-bit mode may return to a null SS below ring 3 (SDM IRET). */
            if (!(cpu->mode == CPU_MODE_LONG64 && to64 && rpl != 3)) {
                cpu_raise_gp0(cpu);
            }
            null_ss = true;
        } else {
            sys_desc_fetch(cpu, nss, &sd, false, X86_EXC_GP, 0);
            sys_check_ss(cpu, nss, &sd, rpl, X86_EXC_GP, 0);
        }
    }
    /* Commit: flags first (under the old CPL's rules), then CS/SS. */
    sys_write_rflags(cpu, fl, opsize);
    unsigned old_cpl = cpu->cpl;
    sys_desc_set_accessed(cpu, sel, &d);
    cpu->cpl = (uint8_t)rpl;
    if (pop_stack) {
        if (null_ss) {
            sys_set_null_ss(cpu, rpl);
        } else {
            sys_desc_set_accessed(cpu, nss, &sd);
            sys_set_ss(cpu, nss, &sd);
        }
    }
    sys_set_cs(cpu, sel, &d, rpl);
    if (pop_stack) {
        if (cpu->mode == CPU_MODE_LONG64) {
            cpu->r[CPU_RSP] = nsp;
        } else if (cpu->stack_size == 4) {
            cpu->r[CPU_RSP] = (uint32_t)nsp;
        } else {
            cpu->r[CPU_RSP] = (cpu->r[CPU_RSP] & ~0xffffull) | (uint16_t)nsp;
        }
    } else {
        cpu->r[CPU_RSP] = st.sp;
    }
    cpu->rip = rip;
    if (rpl > old_cpl) {
        sys_null_outer_segs(cpu);
    }
    cpu->nmi_blocked = false;
}
