/* Control transfer and stack instructions: Jcc/JMP/CALL/RET (near; far ones are handed to
 * cpu-sys), LOOP/JCXZ, INT/INT3/INTO/ICEBP, IRET, PUSH/POP (registers, immediates, memory,
 * segment registers), PUSHA/POPA, PUSHF/POPF (IOPL/VM rules), ENTER/LEAVE, IN/OUT. */
#include "core/cpu/alu_impl.h"
#include "core/cpu/ops.h"

/* Set RIP to a near target of the given operand size (16-bit targets wrap, CS limit
 * checked outside 64-bit mode, canonical check inside). */
static void branch_to(struct cpu *cpu, uint64_t target, unsigned opsize)
{
    if (opsize == 2) {
        target &= 0xffff;
    } else if (opsize == 4) {
        target &= 0xffffffffu;
    }
    if (cpu->mode == CPU_MODE_LONG64) {
        if (!cpu_is_canonical(target)) {
            cpu_raise_gp0(cpu);
        }
    } else if (target > cpu->seg[CPU_SEG_CS].limit) {
        cpu_raise_gp0(cpu);
    }
    cpu->rip = target;
}

/* Condition cc of the lazy flags, with the CMP/SUB and TEST/AND/OR/XOR producers computed
 * directly (the common compare-and-branch pairs); anything else goes to cpu_cond. */
static inline __attribute__((always_inline)) bool cond_inline(struct cpu *cpu, unsigned cc)
{
    uint32_t op = cpu->cc_op;
    if (op >= CPU_CC_SUB8 && op <= CPU_CC_SUB64 && cc != 0 && cc != 1 && cc != 10 && cc != 11) {
        unsigned sz = op & 3, bits = 8u << sz;
        uint64_t mask = sz == 3 ? ~0ull : (1ull << bits) - 1;
        uint64_t res = cpu->cc_dst & mask, b = cpu->cc_src & mask, a = (res + b) & mask;
        unsigned sh = 64 - bits;
        int64_t sa = (int64_t)(a << sh) >> sh, sb = (int64_t)(b << sh) >> sh;
        bool r;
        switch (cc >> 1) {
        case 1:
            r = a < b;
            break;
        case 2:
            r = a == b;
            break;
        case 3:
            r = a <= b;
            break;
        case 4:
            r = (res >> (bits - 1)) & 1;
            break;
        case 6:
            r = sa < sb;
            break;
        default:
            r = sa <= sb;
            break;
        }
        return r ^ (cc & 1);
    }
    if (op >= CPU_CC_LOGIC8 && op <= CPU_CC_LOGIC64 && cc >= 4 && cc != 10 && cc != 11) {
        unsigned sz = op & 3, bits = 8u << sz;
        uint64_t mask = sz == 3 ? ~0ull : (1ull << bits) - 1;
        uint64_t res = cpu->cc_dst & mask;
        bool sf = (res >> (bits - 1)) & 1, r;
        switch (cc >> 1) {
        case 2:
        case 3:
            r = res == 0;
            break;
        case 4:
        case 6:
            r = sf;
            break;
        default:
            r = sf || res == 0;
            break;
        }
        return r ^ (cc & 1);
    }
    if (op >= CPU_CC_ADD8 && op <= CPU_CC_DEC64 && (cc >> 1) == 2) {
        /* ZF after ADD/ADC/SUB/SBB/LOGIC/INC/DEC: the result is zero. */
        unsigned sz = op & 3;
        uint64_t mask = sz == 3 ? ~0ull : (1ull << (8u << sz)) - 1;
        return ((cpu->cc_dst & mask) == 0) ^ (cc & 1);
    }
    return cpu_cond(cpu, cc);
}

#define JCC_HANDLER(cc)                                                                            \
    void op_jcc_##cc(struct cpu *cpu, const struct x86_insn *in)                                   \
    {                                                                                              \
        if (cond_inline(cpu, cc)) {                                                                \
            branch_to(cpu, cpu->rip + in->imm, in->opsize);                                        \
        }                                                                                          \
    }

JCC_HANDLER(0)
JCC_HANDLER(1)
JCC_HANDLER(2)
JCC_HANDLER(3)
JCC_HANDLER(4)
JCC_HANDLER(5)
JCC_HANDLER(6)
JCC_HANDLER(7)
JCC_HANDLER(8)
JCC_HANDLER(9)
JCC_HANDLER(10)
JCC_HANDLER(11)
JCC_HANDLER(12)
JCC_HANDLER(13)
JCC_HANDLER(14)
JCC_HANDLER(15)

void op_jmp_rel(struct cpu *cpu, const struct x86_insn *in)
{
    branch_to(cpu, cpu->rip + in->imm, in->opsize);
}

/* A near target after operand-size truncation, or #GP(0). */
static uint64_t near_target(struct cpu *cpu, uint64_t target, unsigned opsize)
{
    target &= alu_mask(opsize);
    if (cpu->mode == CPU_MODE_LONG64 ? !cpu_is_canonical(target)
                                     : target > cpu->seg[CPU_SEG_CS].limit) {
        cpu_raise_gp0(cpu);
    }
    return target;
}

void op_call_rel(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t target = near_target(cpu, cpu->rip + in->imm, in->opsize);
    cpu_push(cpu, in->opsize, cpu->rip);
    cpu->rip = target;
}

void op_ret(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t old_rsp = cpu->r[CPU_RSP];
    uint64_t target = cpu_pop(cpu, in->opsize);
    if (cpu->mode != CPU_MODE_LONG64 &&
        (target & alu_mask(in->opsize)) > cpu->seg[CPU_SEG_CS].limit) {
        cpu->r[CPU_RSP] = old_rsp;
        cpu_raise_gp0(cpu);
    }
    if ((in->op & 0xff) == 0xc2) {
        uint64_t rsp = cpu->r[CPU_RSP] + (in->imm & 0xffff);
        switch (cpu->stack_size) {
        case 8:
            cpu->r[CPU_RSP] = rsp;
            break;
        case 4:
            cpu->r[CPU_RSP] = (uint32_t)rsp;
            break;
        default:
            cpu->r[CPU_RSP] = (cpu->r[CPU_RSP] & ~0xffffull) | (rsp & 0xffff);
            break;
        }
    }
    branch_to(cpu, target, in->opsize);
}

void op_jmp_rm(struct cpu *cpu, const struct x86_insn *in)
{
    branch_to(cpu, cpu_read_rm(cpu, in, in->opsize), in->opsize);
}

void op_call_rm(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t target = near_target(cpu, cpu_read_rm(cpu, in, in->opsize), in->opsize);
    cpu_push(cpu, in->opsize, cpu->rip);
    cpu->rip = target;
}

/* m16:16, m16:32 or m16:64 far pointer of the memory operand. */
static void far_ptr(struct cpu *cpu, const struct x86_insn *in, uint16_t *sel, uint64_t *off)
{
    uint64_t ea = cpu_insn_ea(cpu, in);
    *off = cpu_ld(cpu, in->seg, ea, in->opsize);
    *sel = cpu_ld16(cpu, in->seg, (ea + in->opsize) & cpu_addr_mask(in->addrsize));
}

void op_jmpf_rm(struct cpu *cpu, const struct x86_insn *in)
{
    uint16_t sel;
    uint64_t off;
    far_ptr(cpu, in, &sel, &off);
    cpu_far_jmp(cpu, sel, off, in->opsize);
}

void op_callf_rm(struct cpu *cpu, const struct x86_insn *in)
{
    uint16_t sel;
    uint64_t off;
    far_ptr(cpu, in, &sel, &off);
    cpu_far_call(cpu, sel, off, in->opsize);
}

void op_jmpf_ptr(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_far_jmp(cpu, in->imm2, in->imm, in->opsize);
}

void op_callf_ptr(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_far_call(cpu, in->imm2, in->imm, in->opsize);
}

void op_retf(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_far_ret(cpu, in->opsize, (in->op & 0xff) == 0xca ? (uint16_t)in->imm : 0);
}

void op_iret(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_iret(cpu, in->opsize);
}

static uint64_t count_get(const struct cpu *cpu, unsigned asz)
{
    return cpu->r[CPU_RCX] & cpu_addr_mask(asz);
}

static void count_set(struct cpu *cpu, unsigned asz, uint64_t v)
{
    if (asz == 2) {
        cpu->r[CPU_RCX] = (cpu->r[CPU_RCX] & ~0xffffull) | (v & 0xffff);
    } else if (asz == 4) {
        cpu->r[CPU_RCX] = (uint32_t)v;
    } else {
        cpu->r[CPU_RCX] = v;
    }
}

void op_loop(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t c = (count_get(cpu, in->addrsize) - 1) & cpu_addr_mask(in->addrsize);
    bool take = c != 0;
    uint8_t b = in->op & 0xff;
    if (b == 0xe1) {
        take = take && cpu_cond(cpu, 4);
    } else if (b == 0xe0) {
        take = take && !cpu_cond(cpu, 4);
    }
    if (take) {
        branch_to(cpu, cpu->rip + in->imm, in->opsize);
    }
    count_set(cpu, in->addrsize, c);
}

void op_jcxz(struct cpu *cpu, const struct x86_insn *in)
{
    if (count_get(cpu, in->addrsize) == 0) {
        branch_to(cpu, cpu->rip + in->imm, in->opsize);
    }
}

void op_int(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_int_soft(cpu, (int)(in->imm & 0xff), CPU_INT_N);
}

void op_int3(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_int_soft(cpu, X86_EXC_BP, CPU_INT_3);
}

void op_into(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu_cond(cpu, 0)) {
        cpu_int_soft(cpu, X86_EXC_OF, CPU_INT_O);
    }
}

void op_icebp(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_int_soft(cpu, X86_EXC_DB, CPU_INT_ICEBP);
}

void op_push_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->op & 7) | ((in->rex & 1) << 3);
    cpu_push(cpu, in->opsize, cpu->r[n]);
}

void op_pop_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->op & 7) | ((in->rex & 1) << 3);
    uint64_t v = cpu_pop(cpu, in->opsize);
    cpu_set_reg(cpu, n, in->opsize, false, v);
}

void op_push_imm(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_push(cpu, in->opsize, in->imm);
}

void op_push_rm(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_push(cpu, in->opsize, cpu_read_rm(cpu, in, in->opsize));
}

void op_pop_rm(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t old_rsp = cpu->r[CPU_RSP];
    uint64_t v = cpu_pop(cpu, in->opsize);
    if (in->mod == 3) {
        cpu_set_reg(cpu, in->rm, in->opsize, false, v);
        return;
    }
    /* The address is computed with the incremented RSP, but a faulting store leaves RSP
     * as it was before the instruction. */
    uint64_t new_rsp = cpu->r[CPU_RSP];
    uint64_t ea = cpu_insn_ea(cpu, in);
    cpu->r[CPU_RSP] = old_rsp;
    uint64_t lin = cpu_seg_lin(cpu, in->seg, ea, in->opsize, CPU_ACC_WRITE);
    cpu_probe_lin(cpu, lin, in->opsize, CPU_ACC_WRITE, cpu->mmu_idx);
    cpu->r[CPU_RSP] = new_rsp;
    st_lin(cpu, lin, in->opsize, v);
}

static int sreg_of(uint16_t op)
{
    switch (op) {
    case 0x06:
    case 0x07:
        return CPU_SEG_ES;
    case 0x0e:
        return CPU_SEG_CS;
    case 0x16:
    case 0x17:
        return CPU_SEG_SS;
    case 0x1e:
    case 0x1f:
        return CPU_SEG_DS;
    case X86_MAP_0F | 0xa0:
    case X86_MAP_0F | 0xa1:
        return CPU_SEG_FS;
    default:
        return CPU_SEG_GS;
    }
}

void op_push_sreg(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_push(cpu, in->opsize, cpu->seg[sreg_of(in->op)].sel);
}

void op_pop_sreg(struct cpu *cpu, const struct x86_insn *in)
{
    int s = sreg_of(in->op);
    uint64_t old_rsp = cpu->r[CPU_RSP];
    uint16_t sel = (uint16_t)cpu_pop(cpu, in->opsize);
    uint64_t new_rsp = cpu->r[CPU_RSP];
    cpu->r[CPU_RSP] = old_rsp; /* a faulting load leaves RSP unchanged */
    cpu_load_seg(cpu, s, sel);
    cpu->r[CPU_RSP] = new_rsp;
    if (s == CPU_SEG_SS) {
        cpu->intr_shadow |= CPU_SHADOW_MOVSS;
    }
}

/* Stack writes that commit RSP only at the end: like hardware, a fault part-way leaves the
 * earlier slots written but RSP unchanged. */
static uint64_t stack_mask(const struct cpu *cpu)
{
    return cpu->stack_size == 8 ? ~0ull : cpu->stack_size == 4 ? 0xffffffffull : 0xffffull;
}

void op_pusha(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t m = stack_mask(cpu);
    uint64_t sp = cpu->r[CPU_RSP] & m;
    for (int r = CPU_RAX; r <= CPU_RDI; r++) {
        sp = (sp - size) & m;
        cpu_st(cpu, CPU_SEG_SS, sp, size, cpu->r[r]);
    }
    cpu->r[CPU_RSP] = (cpu->r[CPU_RSP] & ~m) | sp;
}

void op_popa(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v[8];
    uint64_t old_rsp = cpu->r[CPU_RSP];
    for (int r = CPU_RDI; r >= CPU_RAX; r--) {
        v[r] = cpu_pop(cpu, size);
    }
    uint64_t new_rsp = cpu->r[CPU_RSP];
    (void)old_rsp;
    for (int r = CPU_RAX; r <= CPU_RDI; r++) {
        if (r != CPU_RSP) {
            cpu_set_reg(cpu, r, size, false, v[r]);
        }
    }
    cpu->r[CPU_RSP] = new_rsp;
}

static unsigned iopl(const struct cpu *cpu)
{
    return (cpu->rflags & CPU_FL_IOPL) >> CPU_FL_IOPL_SHIFT;
}

void op_pushf(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->mode == CPU_MODE_V86 && iopl(cpu) < 3) {
        cpu_raise_gp0(cpu);
    }
    uint64_t f = cpu_get_rflags(cpu) & ~(uint64_t)(CPU_FL_VM | CPU_FL_RF);
    cpu_push(cpu, in->opsize, f);
}

void op_popf(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->mode == CPU_MODE_V86 && iopl(cpu) < 3) {
        cpu_raise_gp0(cpu);
    }
    uint64_t v = cpu_pop(cpu, in->opsize);
    uint64_t cur = cpu_get_rflags(cpu);
    uint64_t mask = CPU_FL_ARITH | CPU_FL_TF | CPU_FL_DF | CPU_FL_NT | CPU_FL_AC | CPU_FL_ID;
    bool pm = cpu->mode != CPU_MODE_REAL;
    if (!pm || cpu->cpl == 0) {
        mask |= CPU_FL_IOPL | CPU_FL_IF;
    } else if (cpu->mode == CPU_MODE_V86 || cpu->cpl <= iopl(cpu)) {
        mask |= CPU_FL_IF;
    }
    if (cpu->mode == CPU_MODE_V86) {
        mask &= ~(uint64_t)CPU_FL_IOPL;
    }
    if (in->opsize == 2) {
        mask &= 0xffff;
    }
    uint64_t nf = ((cur & ~mask) | (v & mask)) & ~(uint64_t)CPU_FL_RF;
    if (!(cur & CPU_FL_IF) && (nf & CPU_FL_IF)) {
        /* Interrupts are checked at the block end that POPF forces. */
    }
    cpu_set_rflags(cpu, nf);
}

static uint64_t sp_mask(const struct cpu *cpu)
{
    return cpu->stack_size == 8 ? ~0ull : cpu->stack_size == 4 ? 0xffffffffull : 0xffffull;
}

static void set_sp_like(struct cpu *cpu, int reg, uint64_t v)
{
    uint64_t m = sp_mask(cpu);
    cpu->r[reg] = (cpu->r[reg] & ~m) | (v & m);
}

void op_enter(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    unsigned level = in->imm2 & 31;
    uint64_t alloc = in->imm & 0xffff;
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->r[CPU_RSP] & m;
    uint64_t bp = cpu->r[CPU_RBP] & m;
    sp = (sp - size) & m;
    cpu_st(cpu, CPU_SEG_SS, sp, size, cpu->r[CPU_RBP]);
    uint64_t frame = sp;
    if (level > 0) {
        for (unsigned k = 1; k < level; k++) {
            bp = (bp - size) & m;
            uint64_t v = cpu_ld(cpu, CPU_SEG_SS, bp, size);
            sp = (sp - size) & m;
            cpu_st(cpu, CPU_SEG_SS, sp, size, v);
        }
        sp = (sp - size) & m;
        cpu_st(cpu, CPU_SEG_SS, sp, size, frame);
    }
    uint64_t new_sp = (sp - alloc) & m;
    if (alloc) {
        /* The new stack top must be writable (hardware probes it, #PF included). */
        uint64_t lin = cpu_seg_lin(cpu, CPU_SEG_SS, new_sp, size, CPU_ACC_WRITE);
        cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
    }
    cpu_set_reg(cpu, CPU_RBP, size, false, frame);
    set_sp_like(cpu, CPU_RSP, new_sp);
}

void op_leave(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t old_rsp = cpu->r[CPU_RSP];
    set_sp_like(cpu, CPU_RSP, cpu->r[CPU_RBP]);
    uint64_t new_rsp = cpu->r[CPU_RSP];
    cpu->r[CPU_RSP] = old_rsp;
    /* Read first so that a fault leaves RSP unchanged. */
    uint64_t v = cpu_ld(cpu, CPU_SEG_SS, new_rsp & sp_mask(cpu), in->opsize);
    set_sp_like(cpu, CPU_RSP, new_rsp + in->opsize);
    cpu_set_reg(cpu, CPU_RBP, in->opsize, false, v);
}

static unsigned io_size(const struct x86_insn *in)
{
    return in->opsize == 1 ? 1 : in->opsize == 2 ? 2 : 4;
}

void op_in_imm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = io_size(in);
    cpu_set_reg(cpu, CPU_RAX, size, false, cpu_in(cpu, (uint16_t)(in->imm & 0xff), size));
}

void op_out_imm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = io_size(in);
    cpu_out(cpu, (uint16_t)(in->imm & 0xff), size,
            (uint32_t)cpu_get_reg(cpu, CPU_RAX, size, false));
}

void op_in_dx(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = io_size(in);
    cpu_set_reg(cpu, CPU_RAX, size, false, cpu_in(cpu, (uint16_t)cpu->r[CPU_RDX], size));
}

void op_out_dx(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = io_size(in);
    cpu_out(cpu, (uint16_t)cpu->r[CPU_RDX], size, (uint32_t)cpu_get_reg(cpu, CPU_RAX, size, false));
}
