/* Bit instructions: BT/BTS/BTR/BTC (register and immediate offsets, with the bit-string
 * addressing of memory operands), BSF/BSR (zero source: ZF=1, destination unchanged),
 * TZCNT/LZCNT/POPCNT when CPUID advertises them, BSWAP. */
#include "core/cpu/alu_impl.h"
#include "core/cpu/ops.h"

static void set_cf(struct cpu *cpu, bool cf)
{
    cpu_flags_sync(cpu);
    cpu->rflags = (cpu->rflags & ~(uint64_t)CPU_FL_CF) | (cf ? CPU_FL_CF : 0);
}

/* kind: 0 BT, 1 BTS, 2 BTR, 3 BTC. */
static uint64_t bt_fn(struct cpu *cpu, uint64_t a, uint64_t bit, unsigned size, unsigned kind)
{
    uint64_t m = 1ull << bit;
    cpu->cc_src = (a & m) != 0; /* stashed for the caller */
    switch (kind) {
    case 1:
        return a | m;
    case 2:
        return a & ~m;
    case 3:
        return a ^ m;
    default:
        return a;
    }
}

static void bt_common(struct cpu *cpu, const struct x86_insn *in, uint64_t offset, bool is_reg,
                      unsigned kind)
{
    unsigned size = in->opsize, bits = size * 8;
    uint64_t bit = offset & (bits - 1);
    uint64_t cf_val;
    cpu_flags_sync(cpu);
    if (in->mod == 3) {
        uint64_t a = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        cf_val = (a >> bit) & 1;
        if (kind) {
            cpu_set_reg(cpu, in->rm, size, insn_rex(in), bt_fn(cpu, a, bit, size, kind));
        }
    } else {
        uint64_t ea = cpu_insn_ea(cpu, in);
        if (is_reg) {
            /* Bit-string addressing: the signed offset selects the operand-size unit. */
            int64_t so = (int64_t)alu_sext(offset, size);
            int64_t unit = so >> (size == 2 ? 4 : size == 4 ? 5 : 6);
            ea = (ea + (uint64_t)(unit * (int64_t)size)) & cpu_addr_mask(in->addrsize);
        }
        if (kind == 0) {
            cf_val = (cpu_ld(cpu, in->seg, ea, size) >> bit) & 1;
        } else {
            uint64_t lin = cpu_seg_lin(cpu, in->seg, ea, size, CPU_ACC_WRITE);
            void *p = cpu_lin_ptr(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
            uint64_t old;
            if (p && (in->pfx & X86_PFX_LOCK)) {
                old = host_ld(p, size);
                while (!host_cas(p, size, &old, bt_fn(cpu, old, bit, size, kind))) {
                }
            } else if (p) {
                old = host_ld(p, size);
                host_st(p, size, bt_fn(cpu, old, bit, size, kind));
            } else {
                cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
                old = ld_lin(cpu, lin, size);
                st_lin(cpu, lin, size, bt_fn(cpu, old, bit, size, kind));
            }
            cf_val = (old >> bit) & 1;
        }
    }
    set_cf(cpu, cf_val);
}

void op_bt_r(struct cpu *cpu, const struct x86_insn *in)
{
    static const uint8_t kinds[4] = {0, 1, 2, 3}; /* A3 BT, AB BTS, B3 BTR, BB BTC */
    unsigned k = kinds[((in->op & 0xff) >> 3) & 3];
    bt_common(cpu, in, get_reg_op(cpu, in, in->opsize), true, k);
}

void op_bt_imm(struct cpu *cpu, const struct x86_insn *in)
{
    bt_common(cpu, in, in->imm, false, (in->reg & 7) - 4);
}

static void set_zf_cf(struct cpu *cpu, bool zf, bool cf)
{
    cpu_flags_sync(cpu);
    cpu->rflags = (cpu->rflags & ~(uint64_t)(CPU_FL_ZF | CPU_FL_CF)) | (zf ? CPU_FL_ZF : 0) |
                  (cf ? CPU_FL_CF : 0);
}

void op_bsf(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v = cpu_read_rm(cpu, in, size);
    if ((in->pfx & X86_PFX_REP) && (cpu->feat.f7_ebx & CPU_F7_EBX_BMI1)) {
        uint64_t r = v ? (uint64_t)__builtin_ctzll(v) : size * 8;
        set_reg_op(cpu, in, size, r);
        set_zf_cf(cpu, r == 0, v == 0);
        return;
    }
    if (v == 0) {
        set_zf_cf(cpu, true, cpu_get_cf(cpu));
        return;
    }
    set_reg_op(cpu, in, size, (uint64_t)__builtin_ctzll(v));
    alu_set_logic(cpu, size, 1); /* ZF=0; the others are undefined */
}

void op_bsr(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v = cpu_read_rm(cpu, in, size);
    if ((in->pfx & X86_PFX_REP) && (cpu->feat.e1_ecx & CPU_E1_ECX_LZCNT)) {
        uint64_t r = v ? (uint64_t)(__builtin_clzll(v) - (64 - size * 8)) : size * 8;
        set_reg_op(cpu, in, size, r);
        set_zf_cf(cpu, r == 0, v == 0);
        return;
    }
    if (v == 0) {
        set_zf_cf(cpu, true, cpu_get_cf(cpu));
        return;
    }
    set_reg_op(cpu, in, size, (uint64_t)(63 - __builtin_clzll(v)));
    alu_set_logic(cpu, size, 1);
}

void op_popcnt(struct cpu *cpu, const struct x86_insn *in)
{
    if (!(cpu->feat.f1_ecx & CPU_F1_ECX_POPCNT)) {
        cpu_raise_ud(cpu);
    }
    unsigned size = in->opsize;
    uint64_t v = cpu_read_rm(cpu, in, size);
    set_reg_op(cpu, in, size, (uint64_t)__builtin_popcountll(v));
    cpu->cc_op = CPU_CC_EFLAGS;
    cpu->rflags = (cpu->rflags & ~(uint64_t)CPU_FL_ARITH) | (v == 0 ? CPU_FL_ZF : 0);
}

void op_bswap(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = (in->op & 7) | ((in->rex & 1) << 3);
    switch (in->opsize) {
    case 8:
        cpu->r[n] = __builtin_bswap64(cpu->r[n]);
        break;
    case 4:
        cpu->r[n] = __builtin_bswap32((uint32_t)cpu->r[n]);
        break;
    default:
        /* 16-bit BSWAP is undefined; hardware clears the low word. */
        cpu->r[n] &= ~0xffffull;
        break;
    }
}
