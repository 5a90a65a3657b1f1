/* Data movement and miscellaneous integer instructions: MOV forms, LEA, MOVZX/MOVSX/MOVSXD,
 * MOVBE, XCHG, CMPXCHG/XADD/CMPXCHG8B/16B, CMOVcc/SETcc, flag instructions, CLI/STI, XLAT,
 * LDS/LES/LSS/LFS/LGS, the 0F AE group (fences, CLFLUSH; FXSAVE & co. go to cpu-fpu),
 * BOUND, NOP/PAUSE. */
#include "core/cpu/alu_impl.h"
#include "core/cpu/ops.h"

void op_mov_rm_r(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_write_rm(cpu, in, in->opsize, get_reg_op(cpu, in, in->opsize));
}

void op_mov_r_rm(struct cpu *cpu, const struct x86_insn *in)
{
    set_reg_op(cpu, in, in->opsize, cpu_read_rm(cpu, in, in->opsize));
}

/* Size-specialised MOV (the most frequent instruction); the decoder switches to them. */
#define MOV_SIZED(sz)                                                                              \
    void op_mov_rm_r_##sz(struct cpu *cpu, const struct x86_insn *in)                              \
    {                                                                                              \
        cpu_write_rm(cpu, in, sz, get_reg_op(cpu, in, sz));                                        \
    }                                                                                              \
    void op_mov_r_rm_##sz(struct cpu *cpu, const struct x86_insn *in)                              \
    {                                                                                              \
        set_reg_op(cpu, in, sz, cpu_read_rm(cpu, in, sz));                                         \
    }
MOV_SIZED(1)
MOV_SIZED(2)
MOV_SIZED(4)
MOV_SIZED(8)

void op_mov_rm_imm(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_write_rm(cpu, in, in->opsize, in->imm & alu_mask(in->opsize));
}

void op_mov_r_imm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->op & 7) | ((in->rex & 1) << 3);
    cpu_set_reg(cpu, n, in->opsize, insn_rex(in), in->imm);
}

void op_mov_a_moffs(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t off = in->imm & cpu_addr_mask(in->addrsize);
    cpu_set_reg(cpu, CPU_RAX, in->opsize, false, cpu_ld(cpu, in->seg, off, in->opsize));
}

void op_mov_moffs_a(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t off = in->imm & cpu_addr_mask(in->addrsize);
    cpu_st(cpu, in->seg, off, in->opsize, cpu_get_reg(cpu, CPU_RAX, in->opsize, false));
}

void op_mov_rm_sreg(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned s = in->reg & 7;
    if (s > CPU_SEG_GS) {
        cpu_raise_ud(cpu);
    }
    uint16_t sel = cpu->seg[s].sel;
    if (in->mod == 3) {
        cpu_set_reg(cpu, in->rm, in->opsize == 2 ? 2 : 4, false, sel);
    } else {
        cpu_st16(cpu, in->seg, cpu_insn_ea(cpu, in), sel);
    }
}

void op_mov_sreg_rm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned s = in->reg & 7;
    if (s > CPU_SEG_GS || s == CPU_SEG_CS) {
        cpu_raise_ud(cpu);
    }
    uint16_t sel = (uint16_t)cpu_read_rm(cpu, in, 2);
    cpu_load_seg(cpu, (int)s, sel);
    if (s == CPU_SEG_SS) {
        cpu->intr_shadow |= CPU_SHADOW_MOVSS;
    }
}

void op_lea(struct cpu *cpu, const struct x86_insn *in)
{
    set_reg_op(cpu, in, in->opsize, cpu_insn_ea(cpu, in));
}

void op_movzx(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned ssz = (in->op & 1) ? 2 : 1;
    set_reg_op(cpu, in, in->opsize, cpu_read_rm(cpu, in, ssz));
}

void op_movsx(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned ssz = (in->op & 1) ? 2 : 1;
    set_reg_op(cpu, in, in->opsize, alu_sext(cpu_read_rm(cpu, in, ssz), ssz));
}

void op_movsxd(struct cpu *cpu, const struct x86_insn *in)
{
    /* The source is always read as a dword (AMD and Intel fault on all 4 bytes). */
    uint64_t v = cpu_read_rm(cpu, in, 4);
    set_reg_op(cpu, in, in->opsize, in->opsize == 8 ? alu_sext(v, 4) : v);
}

void op_movbe(struct cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->feat.f1_ecx & CPU_F1_ECX_MOVBE)) {
        cpu_raise_ud(cpu);
    }
    unsigned size = in->opsize;
    if ((in->op & 0xff) == 0xf0) {
        uint64_t v = cpu_read_rm(cpu, in, size);
        v = size == 8   ? __builtin_bswap64(v)
            : size == 4 ? __builtin_bswap32((uint32_t)v)
                        : __builtin_bswap16((uint16_t)v);
        set_reg_op(cpu, in, size, v);
    } else {
        uint64_t v = get_reg_op(cpu, in, size);
        v = size == 8   ? __builtin_bswap64(v)
            : size == 4 ? __builtin_bswap32((uint32_t)v)
                        : __builtin_bswap16((uint16_t)v);
        cpu_write_rm(cpu, in, size, v);
    }
}

void op_movnti(struct cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->feat.f1_edx & CPU_F1_EDX_SSE2)) {
        cpu_raise_ud(cpu);
    }
    cpu_write_rm(cpu, in, in->opsize, get_reg_op(cpu, in, in->opsize));
}

static uint64_t xchg_fn(struct cpu *cpu, uint64_t old, uint64_t v, unsigned size, unsigned op)
{
    return v;
}

void op_xchg_rm_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t r = get_reg_op(cpu, in, size);
    if (in->mod == 3) {
        uint64_t m = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), r);
        set_reg_op(cpu, in, size, m);
        return;
    }
    /* XCHG with memory is always locked. */
    struct x86_insn locked = *in;
    locked.pfx |= X86_PFX_LOCK;
    uint64_t old = rm_rmw(cpu, &locked, size, r, 0, xchg_fn);
    set_reg_op(cpu, in, size, old);
}

void op_xchg_a_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->op & 7) | ((in->rex & 1) << 3), size = in->opsize;
    uint64_t a = cpu_get_reg(cpu, CPU_RAX, size, false);
    cpu_set_reg(cpu, CPU_RAX, size, false, cpu_get_reg(cpu, n, size, false));
    cpu_set_reg(cpu, n, size, false, a);
}

void op_nop(struct cpu *cpu, const struct x86_insn *in)
{
}

void op_pause(struct cpu *cpu, const struct x86_insn *in)
{
    /* A spin-wait hint. vCPUs take turns on the engine in slices, so a spinning vCPU must
     * hand the engine over, or the lock holder it waits for never runs (SeaBIOS's AP start-up
     * livelocked that way). With one vCPU, ending the block is enough. */
    if (cpu_sys_ncpus(cpu) > 1) {
        cpu_request_exit(cpu, CPU_EXIT_ICOUNT);
    } else {
        cpu->block_stop = true;
    }
}

static void set_cmp_flags(struct cpu *cpu, uint64_t a, uint64_t b, unsigned size)
{
    uint64_t mask = alu_mask(size);
    cpu->cc_op = CPU_CC_SUB8 + alu_ccsz(size);
    cpu->cc_src = b & mask;
    cpu->cc_dst = (a - b) & mask;
}

void op_cmpxchg(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t acc = cpu_get_reg(cpu, CPU_RAX, size, false);
    uint64_t src = get_reg_op(cpu, in, size);
    uint64_t old;
    if (in->mod == 3) {
        old = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        set_cmp_flags(cpu, acc, old, size);
        if (old == acc) {
            cpu_set_reg(cpu, in->rm, size, insn_rex(in), src);
        } else {
            cpu_set_reg(cpu, CPU_RAX, size, false, old);
        }
        return;
    }
    uint64_t lin = cpu_seg_lin(cpu, in->seg, cpu_insn_ea(cpu, in), size, CPU_ACC_WRITE);
    void *p = cpu_lin_ptr(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
    if (p) {
        old = acc;
        if (!host_cas(p, size, &old, src)) {
            /* old now holds the memory value. */
        } else {
            old = acc;
        }
    } else {
        cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
        old = ld_lin(cpu, lin, size);
        st_lin(cpu, lin, size, old == acc ? src : old);
    }
    set_cmp_flags(cpu, acc, old, size);
    if (old != acc) {
        cpu_set_reg(cpu, CPU_RAX, size, false, old);
    }
}

static uint64_t xadd_fn(struct cpu *cpu, uint64_t old, uint64_t src, unsigned size, unsigned op)
{
    uint64_t r = (old + src) & alu_mask(size);
    cpu->cc_op = CPU_CC_ADD8 + alu_ccsz(size);
    cpu->cc_src = src & alu_mask(size);
    cpu->cc_dst = r;
    return r;
}

void op_xadd(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t src = get_reg_op(cpu, in, size);
    if (in->mod == 3) {
        uint64_t d = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        uint64_t t = xadd_fn(cpu, d, src, size, 0);
        set_reg_op(cpu, in, size, d);
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), t);
        return;
    }
    uint64_t old = rm_rmw(cpu, in, size, src, 0, xadd_fn);
    set_reg_op(cpu, in, size, old);
}

void op_cmpxchg8b(struct cpu *cpu, const struct x86_insn *in)
{
    bool wide = in->opsize == 8;
    uint64_t ea = cpu_insn_ea(cpu, in);
    if (wide) {
        if (!(cpu->feat.f1_ecx & CPU_F1_ECX_CX16)) {
            cpu_raise_ud(cpu);
        }
        uint64_t lin = cpu_seg_lin(cpu, in->seg, ea, 16, CPU_ACC_WRITE);
        if (lin & 15) {
            cpu_raise_gp0(cpu);
        }
        uint64_t m[2];
        cpu_probe_lin(cpu, lin, 16, CPU_ACC_WRITE, cpu->mmu_idx);
        cpu_read_lin(cpu, lin, m, 16, cpu->mmu_idx);
        bool eq = m[0] == cpu->r[CPU_RAX] && m[1] == cpu->r[CPU_RDX];
        if (eq) {
            uint64_t n[2] = {cpu->r[CPU_RBX], cpu->r[CPU_RCX]};
            cpu_write_lin(cpu, lin, n, 16, cpu->mmu_idx);
        } else {
            cpu_write_lin(cpu, lin, m, 16, cpu->mmu_idx);
            cpu->r[CPU_RAX] = m[0];
            cpu->r[CPU_RDX] = m[1];
        }
        cpu_flags_sync(cpu);
        cpu->rflags = (cpu->rflags & ~(uint64_t)CPU_FL_ZF) | (eq ? CPU_FL_ZF : 0);
        return;
    }
    if (!(cpu->feat.f1_edx & CPU_F1_EDX_CX8)) {
        cpu_raise_ud(cpu);
    }
    uint64_t lin = cpu_seg_lin(cpu, in->seg, ea, 8, CPU_ACC_WRITE);
    uint64_t expect = (cpu->r[CPU_RAX] & 0xffffffffu) | (cpu->r[CPU_RDX] << 32);
    uint64_t repl = (cpu->r[CPU_RBX] & 0xffffffffu) | (cpu->r[CPU_RCX] << 32);
    void *p = cpu_lin_ptr(cpu, lin, 8, CPU_ACC_WRITE, cpu->mmu_idx);
    uint64_t old;
    bool eq;
    if (p) {
        old = expect;
        eq = host_cas(p, 8, &old, repl);
    } else {
        cpu_probe_lin(cpu, lin, 8, CPU_ACC_WRITE, cpu->mmu_idx);
        old = cpu_ldlin64(cpu, lin, cpu->mmu_idx);
        eq = old == expect;
        cpu_stlin64(cpu, lin, eq ? repl : old, cpu->mmu_idx);
    }
    if (!eq) {
        cpu->r[CPU_RAX] = (uint32_t)old;
        cpu->r[CPU_RDX] = old >> 32;
    }
    cpu_flags_sync(cpu);
    cpu->rflags = (cpu->rflags & ~(uint64_t)CPU_FL_ZF) | (eq ? CPU_FL_ZF : 0);
}

void op_cmov(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v = cpu_read_rm(cpu, in, size);
    if (cpu_cond(cpu, in->op & 0xf)) {
        set_reg_op(cpu, in, size, v);
    } else if (size == 4) {
        set_reg_op(cpu, in, 4, get_reg_op(cpu, in, 4)); /* zero-extends in 64-bit mode */
    }
}

void op_setcc(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_write_rm(cpu, in, 1, cpu_cond(cpu, in->op & 0xf));
}

void op_lahf(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->mode == CPU_MODE_LONG64 && !(cpu->feat.e1_ecx & CPU_E1_ECX_LAHF)) {
        cpu_raise_ud(cpu);
    }
    uint64_t f = cpu_get_rflags(cpu);
    cpu->r[CPU_RAX] = (cpu->r[CPU_RAX] & ~0xff00ull) | ((f & 0xd5) | 2) << 8;
}

void op_sahf(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->mode == CPU_MODE_LONG64 && !(cpu->feat.e1_ecx & CPU_E1_ECX_LAHF)) {
        cpu_raise_ud(cpu);
    }
    cpu_flags_sync(cpu);
    uint64_t ah = (cpu->r[CPU_RAX] >> 8) & 0xd5;
    cpu->rflags = (cpu->rflags & ~0xd5ull) | ah;
}

static void flag_op(struct cpu *cpu, uint64_t clear, uint64_t set, uint64_t toggle)
{
    cpu_flags_sync(cpu);
    cpu->rflags = ((cpu->rflags & ~clear) | set) ^ toggle;
}

void op_clc(struct cpu *cpu, const struct x86_insn *in)
{
    flag_op(cpu, CPU_FL_CF, 0, 0);
}

void op_stc(struct cpu *cpu, const struct x86_insn *in)
{
    flag_op(cpu, 0, CPU_FL_CF, 0);
}

void op_cmc(struct cpu *cpu, const struct x86_insn *in)
{
    flag_op(cpu, 0, 0, CPU_FL_CF);
}

void op_cld(struct cpu *cpu, const struct x86_insn *in)
{
    cpu->rflags &= ~(uint64_t)CPU_FL_DF;
}

void op_std(struct cpu *cpu, const struct x86_insn *in)
{
    cpu->rflags |= CPU_FL_DF;
}

static unsigned iopl(const struct cpu *cpu)
{
    return (cpu->rflags & CPU_FL_IOPL) >> CPU_FL_IOPL_SHIFT;
}

void op_cli(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->mode != CPU_MODE_REAL && cpu->cpl > iopl(cpu)) {
        cpu_raise_gp0(cpu);
    }
    cpu->rflags &= ~(uint64_t)CPU_FL_IF;
}

void op_sti(struct cpu *cpu, const struct x86_insn *in)
{
    if (cpu->mode != CPU_MODE_REAL && cpu->cpl > iopl(cpu)) {
        cpu_raise_gp0(cpu);
    }
    if (!(cpu->rflags & CPU_FL_IF)) {
        cpu->intr_shadow |= CPU_SHADOW_STI;
    }
    cpu->rflags |= CPU_FL_IF;
}

void op_xlat(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t off = (cpu->r[CPU_RBX] + (cpu->r[CPU_RAX] & 0xff)) & cpu_addr_mask(in->addrsize);
    cpu_set_reg(cpu, CPU_RAX, 1, false, cpu_ld8(cpu, in->seg, off));
}

void op_lxs(struct cpu *cpu, const struct x86_insn *in)
{
    int seg;
    switch (in->op) {
    case 0xc4:
        seg = CPU_SEG_ES;
        break;
    case 0xc5:
        seg = CPU_SEG_DS;
        break;
    case X86_MAP_0F | 0xb2:
        seg = CPU_SEG_SS;
        break;
    case X86_MAP_0F | 0xb4:
        seg = CPU_SEG_FS;
        break;
    default:
        seg = CPU_SEG_GS;
        break;
    }
    unsigned size = in->opsize;
    uint64_t ea = cpu_insn_ea(cpu, in);
    uint64_t off = cpu_ld(cpu, in->seg, ea, size);
    uint16_t sel = cpu_ld16(cpu, in->seg, (ea + size) & cpu_addr_mask(in->addrsize));
    cpu_load_seg(cpu, seg, sel);
    set_reg_op(cpu, in, size, off);
}

void op_grp15(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned r = in->reg & 7;
    if (in->mod != 3) {
        if (in->pfx & (X86_PFX_REP | X86_PFX_REPNE)) {
            cpu_raise_ud(cpu);
        }
        switch (r) {
        case 0:
            cpu_exec_fxsave(cpu, in);
            return;
        case 1:
            cpu_exec_fxrstor(cpu, in);
            return;
        case 2:
            cpu_exec_ldmxcsr(cpu, in);
            return;
        case 3:
            cpu_exec_stmxcsr(cpu, in);
            return;
        case 7: /* CLFLUSH: check the address like a read, nothing is cached here */
            if (!(cpu->feat.f1_edx & CPU_F1_EDX_CLFSH)) {
                cpu_raise_ud(cpu);
            }
            cpu_probe_lin(cpu, cpu_seg_lin(cpu, in->seg, cpu_insn_ea(cpu, in), 1, CPU_ACC_READ), 1,
                          CPU_ACC_READ, cpu->mmu_idx);
            return;
        default: /* XSAVE family: not advertised */
            cpu_raise_ud(cpu);
        }
    }
    if (in->pfx & (X86_PFX_REP | X86_PFX_REPNE | X86_PFX_OPSZ)) {
        cpu_raise_ud(cpu); /* RDFSBASE & co.: FSGSBASE not advertised */
    }
    if (r < 5) {
        cpu_raise_ud(cpu);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* LFENCE / MFENCE / SFENCE */
}

void op_bound(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t ea = cpu_insn_ea(cpu, in);
    int64_t lo = (int64_t)alu_sext(cpu_ld(cpu, in->seg, ea, size), size);
    int64_t hi = (int64_t)alu_sext(
        cpu_ld(cpu, in->seg, (ea + size) & cpu_addr_mask(in->addrsize), size), size);
    int64_t idx = (int64_t)alu_sext(get_reg_op(cpu, in, size), size);
    if (idx < lo || idx > hi) {
        cpu_raise(cpu, X86_EXC_BR, CPU_NO_ERROR);
    }
}
