/* Helpers shared by the integer instruction files (alu.c, bitops.c, misc.c, ctrl.c,
 * string.c). Internal to core/cpu/. */
#ifndef LODGE_CORE_CPU_ALU_IMPL_H
#define LODGE_CORE_CPU_ALU_IMPL_H

#include "core/cpu/cpu.h"

static inline uint64_t alu_mask(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* cc_op size index: 1->0, 2->1, 4->2, 8->3. */
static inline unsigned alu_ccsz(unsigned size)
{
    return size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
}

static inline uint64_t alu_sext(uint64_t v, unsigned size)
{
    unsigned sh = 64 - size * 8;
    return (uint64_t)((int64_t)(v << sh) >> sh);
}

static inline void alu_set_logic(struct cpu *cpu, unsigned size, uint64_t r)
{
    cpu->cc_op = CPU_CC_LOGIC8 + alu_ccsz(size);
    cpu->cc_dst = r;
}

static inline bool insn_rex(const struct x86_insn *in)
{
    return in->rex != 0;
}

static inline uint64_t get_reg_op(struct cpu *cpu, const struct x86_insn *in, unsigned size)
{
    return cpu_get_reg(cpu, in->reg, size, insn_rex(in));
}

static inline void set_reg_op(struct cpu *cpu, const struct x86_insn *in, unsigned size, uint64_t v)
{
    cpu_set_reg(cpu, in->reg, size, insn_rex(in), v);
}

/* Linear-address loads/stores by size at the current privilege. */
static inline uint64_t ld_lin(struct cpu *cpu, uint64_t lin, unsigned size)
{
    switch (size) {
    case 1:
        return cpu_ldlin8(cpu, lin, cpu->mmu_idx);
    case 2:
        return cpu_ldlin16(cpu, lin, cpu->mmu_idx);
    case 4:
        return cpu_ldlin32(cpu, lin, cpu->mmu_idx);
    default:
        return cpu_ldlin64(cpu, lin, cpu->mmu_idx);
    }
}

static inline void st_lin(struct cpu *cpu, uint64_t lin, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        cpu_stlin8(cpu, lin, (uint8_t)v, cpu->mmu_idx);
        break;
    case 2:
        cpu_stlin16(cpu, lin, (uint16_t)v, cpu->mmu_idx);
        break;
    case 4:
        cpu_stlin32(cpu, lin, (uint32_t)v, cpu->mmu_idx);
        break;
    default:
        cpu_stlin64(cpu, lin, v, cpu->mmu_idx);
        break;
    }
}

static inline uint64_t host_ld(const void *p, unsigned size)
{
    uint64_t v = 0;
    memcpy(&v, p, size);
    return v;
}

static inline void host_st(void *p, unsigned size, uint64_t v)
{
    memcpy(p, &v, size);
}

/* Atomic compare-and-swap on host memory of the given size; true when it swapped. */
static inline bool host_cas(void *p, unsigned size, uint64_t *expected, uint64_t desired)
{
    switch (size) {
    case 1: {
        uint8_t e = (uint8_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 2: {
        uint16_t e = (uint16_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    case 4: {
        uint32_t e = (uint32_t)*expected;
        bool ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    default: {
        uint64_t e = *expected;
        bool ok = __atomic_compare_exchange_n((uint64_t *)p, &e, desired, false, __ATOMIC_SEQ_CST,
                                              __ATOMIC_SEQ_CST);
        *expected = e;
        return ok;
    }
    }
}

/* A read-modify-write operation on the r/m operand: fn(cpu, old, arg, size) returns the new
 * value and sets the flags. With LOCK on RAM it is done as an atomic CAS loop. */
typedef uint64_t (*rmw_fn)(struct cpu *cpu, uint64_t old, uint64_t arg, unsigned size, unsigned op);

static inline uint64_t rm_rmw(struct cpu *cpu, const struct x86_insn *in, unsigned size,
                              uint64_t arg, unsigned op, rmw_fn fn)
{
    if (in->mod == 3) {
        uint64_t old = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), fn(cpu, old, arg, size, op));
        return old;
    }
    uint64_t lin = cpu_seg_lin(cpu, in->seg, cpu_insn_ea(cpu, in), size, CPU_ACC_WRITE);
    void *p = cpu_lin_ptr(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
    if (p) {
        uint64_t old = host_ld(p, size);
        if (in->pfx & X86_PFX_LOCK) {
            for (;;) {
                uint64_t nv = fn(cpu, old, arg, size, op);
                if (host_cas(p, size, &old, nv)) {
                    return old;
                }
            }
        }
        host_st(p, size, fn(cpu, old, arg, size, op));
        return old;
    }
    /* Slow path (MMIO, code page, page crossing): check writability first, as hardware
     * reports a faulting read-modify-write as a write (#PF W=1). */
    cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
    uint64_t old = ld_lin(cpu, lin, size);
    st_lin(cpu, lin, size, fn(cpu, old, arg, size, op));
    return old;
}

/* Before a read-then-write of a memory r/m operand done in two steps: fault as a write. */
static inline void rm_probe_write(struct cpu *cpu, const struct x86_insn *in, unsigned size)
{
    if (in->mod != 3) {
        uint64_t lin = cpu_seg_lin(cpu, in->seg, cpu_insn_ea(cpu, in), size, CPU_ACC_WRITE);
        cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
    }
}

#endif
