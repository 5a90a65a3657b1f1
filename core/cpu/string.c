/* String instructions: MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS with REP/REPE/REPNE.
 * The counter and index registers follow the address size; the destination is always
 * ES:rDI (no override). Long REP loops stop after a slice and restart the instruction, so
 * interrupts get in. REP MOVS/STOS copy whole page chunks through host pointers (forward and,
 * with DF=1, backward). */
#include "core/cpu/alu_impl.h"
#include "core/cpu/ops.h"

#define REP_SLICE 65536 /* elements per execution before the instruction restarts */

static uint64_t idx_get(const struct cpu *cpu, int reg, unsigned asz)
{
    return cpu->r[reg] & cpu_addr_mask(asz);
}

static void idx_set(struct cpu *cpu, int reg, unsigned asz, uint64_t v)
{
    if (asz == 2) {
        cpu->r[reg] = (cpu->r[reg] & ~0xffffull) | (v & 0xffff);
    } else if (asz == 4) {
        cpu->r[reg] = (uint32_t)v;
    } else {
        cpu->r[reg] = v;
    }
}

static void idx_add(struct cpu *cpu, int reg, unsigned asz, int64_t delta)
{
    idx_set(cpu, reg, asz, cpu->r[reg] + (uint64_t)delta);
}

static bool has_rep(const struct x86_insn *in)
{
    return (in->pfx & (X86_PFX_REP | X86_PFX_REPNE)) != 0;
}

/* Restart the instruction later (interrupt window) when elements remain. */
static void rep_yield(struct cpu *cpu)
{
    cpu->rip = cpu->insn_rip;
    cpu->block_stop = true;
}

/* bytes (a multiple of size) of the size-byte element v at d: the element repeated over 8
 * bytes and stored 8 at a time, or memset when all its bytes are equal (zeroing pages with
 * REP STOSQ, the common case). */
static void stos_fill(uint8_t *d, uint64_t v, unsigned size, uint64_t bytes)
{
    uint64_t pat = size == 1   ? (v & 0xff) * 0x0101010101010101ull
                   : size == 2 ? (v & 0xffff) * 0x0001000100010001ull
                   : size == 4 ? (v & 0xffffffffull) * 0x0000000100000001ull
                               : v;
    if (pat == (pat & 0xff) * 0x0101010101010101ull) {
        memset(d, (int)(pat & 0xff), bytes);
        return;
    }
    uint64_t k = 0;
    for (; k + 8 <= bytes; k += 8) {
        memcpy(d + k, &pat, 8);
    }
    memcpy(d + k, &pat, bytes - k); /* the period divides 8: the tail continues the pattern */
}

/* Fast path for REP MOVS / REP STOS forward: returns elements done (0: use slow path). */
static uint64_t rep_fast(struct cpu *cpu, const struct x86_insn *in, bool movs, uint64_t count)
{
    unsigned size = in->opsize, asz = in->addrsize;
    uint64_t di = idx_get(cpu, CPU_RDI, asz);
    uint64_t si = idx_get(cpu, CPU_RSI, asz);
    /* Stay inside one page on each side and inside the index wrap. */
    uint64_t n = count;
    uint64_t dlin = cpu_seg_lin(cpu, CPU_SEG_ES, di, size, CPU_ACC_WRITE);
    uint64_t room = (0x1000 - (dlin & 0xfff)) / size;
    if (room < n) {
        n = room;
    }
    uint64_t slin = 0;
    if (movs) {
        slin = cpu_seg_lin(cpu, in->seg, si, size, CPU_ACC_READ);
        room = (0x1000 - (slin & 0xfff)) / size;
        if (room < n) {
            n = room;
        }
    }
    if (asz != 8) {
        uint64_t wrap = (cpu_addr_mask(asz) - di) / size + 1;
        if (movs && (cpu_addr_mask(asz) - si) / size + 1 < wrap) {
            wrap = (cpu_addr_mask(asz) - si) / size + 1;
        }
        if (wrap < n) {
            n = wrap;
        }
    }
    if (n < 2) {
        return 0;
    }
    uint64_t bytes = n * size;
    /* Segment limits for the whole chunk (no-op in 64-bit mode). */
    cpu_seg_lin(cpu, CPU_SEG_ES, di, (unsigned)bytes, CPU_ACC_WRITE);
    uint8_t *d = cpu_lin_ptr(cpu, dlin, (unsigned)bytes, CPU_ACC_WRITE, cpu->mmu_idx);
    if (!d) {
        return 0;
    }
    if (movs) {
        cpu_seg_lin(cpu, in->seg, si, (unsigned)bytes, CPU_ACC_READ);
        const uint8_t *s = cpu_lin_ptr(cpu, slin, (unsigned)bytes, CPU_ACC_READ, cpu->mmu_idx);
        if (!s) {
            return 0;
        }
        if (d > s && d < s + bytes) {
            /* Overlap where the forward copy re-reads what it wrote: element by element. */
            for (uint64_t k = 0; k < n; k++) {
                memmove(d + k * size, s + k * size, size);
            }
        } else {
            memmove(d, s, bytes);
        }
        idx_set(cpu, CPU_RSI, asz, si + bytes);
    } else {
        stos_fill(d, cpu->r[CPU_RAX], size, bytes);
    }
    idx_set(cpu, CPU_RDI, asz, di + bytes);
    return n;
}

/* Fast path for REP MOVS / REP STOS backward (DF=1, what memmove does for overlapping
 * moves): the chunk ends at the current elements and stays inside one page on each side;
 * returns elements done (0: use the slow path). */
static uint64_t rep_fast_down(struct cpu *cpu, const struct x86_insn *in, bool movs,
                              uint64_t count)
{
    unsigned size = in->opsize, asz = in->addrsize;
    uint64_t di = idx_get(cpu, CPU_RDI, asz);
    uint64_t si = idx_get(cpu, CPU_RSI, asz);
    uint64_t n = count;
    /* elements from the current one down to the page start, and down to index 0 */
    uint64_t dlin = cpu_seg_lin(cpu, CPU_SEG_ES, di, size, CPU_ACC_WRITE);
    if ((dlin & 0xfff) + size > 0x1000) {
        return 0;
    }
    n = n < (dlin & 0xfff) / size + 1 ? n : (dlin & 0xfff) / size + 1;
    n = n < di / size + 1 ? n : di / size + 1;
    uint64_t slin = 0;
    if (movs) {
        slin = cpu_seg_lin(cpu, in->seg, si, size, CPU_ACC_READ);
        if ((slin & 0xfff) + size > 0x1000) {
            return 0;
        }
        n = n < (slin & 0xfff) / size + 1 ? n : (slin & 0xfff) / size + 1;
        n = n < si / size + 1 ? n : si / size + 1;
    }
    if (n < 2) {
        return 0;
    }
    uint64_t bytes = n * size, back = bytes - size;
    /* A fault reports the current element's address (the chunk lies in the same pages),
     * the source read first as the element-wise loop does. */
    if ((movs && !cpu_lin_ptr(cpu, slin, size, CPU_ACC_READ, cpu->mmu_idx)) ||
        !cpu_lin_ptr(cpu, dlin, size, CPU_ACC_WRITE, cpu->mmu_idx)) {
        return 0;
    }
    cpu_seg_lin(cpu, CPU_SEG_ES, di - back, (unsigned)bytes, CPU_ACC_WRITE);
    uint8_t *d = cpu_lin_ptr(cpu, dlin - back, (unsigned)bytes, CPU_ACC_WRITE, cpu->mmu_idx);
    if (!d) {
        return 0;
    }
    if (movs) {
        cpu_seg_lin(cpu, in->seg, si - back, (unsigned)bytes, CPU_ACC_READ);
        const uint8_t *s =
            cpu_lin_ptr(cpu, slin - back, (unsigned)bytes, CPU_ACC_READ, cpu->mmu_idx);
        if (!s) {
            return 0;
        }
        if (s > d && s < d + bytes) {
            /* Overlap where the backward copy re-reads what it wrote: element by element. */
            for (uint64_t k = n; k-- > 0;) {
                memmove(d + k * size, s + k * size, size);
            }
        } else {
            memmove(d, s, bytes);
        }
        idx_set(cpu, CPU_RSI, asz, si - bytes);
    } else {
        stos_fill(d, cpu->r[CPU_RAX], size, bytes); /* every element the same: order is moot */
    }
    idx_set(cpu, CPU_RDI, asz, di - bytes);
    return n;
}

/* The common REP driver. step() does one element and returns false to stop (REPE/REPNE). */
typedef bool (*str_step)(struct cpu *cpu, const struct x86_insn *in, int64_t delta);

static void rep_run(struct cpu *cpu, const struct x86_insn *in, str_step step, bool fast_movs,
                    bool fast_stos)
{
    unsigned asz = in->addrsize;
    int64_t delta = (cpu->rflags & CPU_FL_DF) ? -(int64_t)in->opsize : (int64_t)in->opsize;
    if (!has_rep(in)) {
        step(cpu, in, delta);
        return;
    }
    uint64_t done = 0;
    for (;;) {
        uint64_t count = idx_get(cpu, CPU_RCX, asz);
        if (count == 0) {
            return;
        }
        if (done >= REP_SLICE) {
            rep_yield(cpu);
            return;
        }
        if ((fast_movs || fast_stos) && count > 1) {
            uint64_t n = delta > 0 ? rep_fast(cpu, in, fast_movs, count)
                                   : rep_fast_down(cpu, in, fast_movs, count);
            if (n) {
                idx_set(cpu, CPU_RCX, asz, count - n);
                done += n;
                continue;
            }
        }
        bool go_on = step(cpu, in, delta);
        idx_set(cpu, CPU_RCX, asz, count - 1);
        done++;
        if (!go_on) {
            return;
        }
    }
}

static bool movs_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = in->opsize, asz = in->addrsize;
    uint64_t v = cpu_ld(cpu, in->seg, idx_get(cpu, CPU_RSI, asz), size);
    cpu_st(cpu, CPU_SEG_ES, idx_get(cpu, CPU_RDI, asz), size, v);
    idx_add(cpu, CPU_RSI, asz, delta);
    idx_add(cpu, CPU_RDI, asz, delta);
    return true;
}

static bool stos_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = in->opsize, asz = in->addrsize;
    cpu_st(cpu, CPU_SEG_ES, idx_get(cpu, CPU_RDI, asz), size,
           cpu_get_reg(cpu, CPU_RAX, size, false));
    idx_add(cpu, CPU_RDI, asz, delta);
    return true;
}

static bool lods_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = in->opsize, asz = in->addrsize;
    uint64_t v = cpu_ld(cpu, in->seg, idx_get(cpu, CPU_RSI, asz), size);
    cpu_set_reg(cpu, CPU_RAX, size, false, v);
    idx_add(cpu, CPU_RSI, asz, delta);
    return true;
}

static void cmp_flags(struct cpu *cpu, uint64_t a, uint64_t b, unsigned size)
{
    uint64_t mask = alu_mask(size);
    cpu->cc_op = CPU_CC_SUB8 + alu_ccsz(size);
    cpu->cc_src = b & mask;
    cpu->cc_dst = (a - b) & mask;
}

static bool rep_cond(struct cpu *cpu, const struct x86_insn *in)
{
    bool zf = cpu->cc_dst == 0; /* cc_op is SUB: ZF is "equal" */
    if (in->pfx & X86_PFX_REP) {
        return zf;
    }
    if (in->pfx & X86_PFX_REPNE) {
        return !zf;
    }
    return true;
}

static bool cmps_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = in->opsize, asz = in->addrsize;
    uint64_t a = cpu_ld(cpu, in->seg, idx_get(cpu, CPU_RSI, asz), size);
    uint64_t b = cpu_ld(cpu, CPU_SEG_ES, idx_get(cpu, CPU_RDI, asz), size);
    cmp_flags(cpu, a, b, size);
    idx_add(cpu, CPU_RSI, asz, delta);
    idx_add(cpu, CPU_RDI, asz, delta);
    return rep_cond(cpu, in);
}

static bool scas_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = in->opsize, asz = in->addrsize;
    uint64_t b = cpu_ld(cpu, CPU_SEG_ES, idx_get(cpu, CPU_RDI, asz), size);
    cmp_flags(cpu, cpu_get_reg(cpu, CPU_RAX, size, false), b, size);
    idx_add(cpu, CPU_RDI, asz, delta);
    return rep_cond(cpu, in);
}

static unsigned io_size(const struct x86_insn *in)
{
    return in->opsize == 1 ? 1 : in->opsize == 2 ? 2 : 4;
}

static bool ins_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = io_size(in), asz = in->addrsize;
    uint16_t port = (uint16_t)cpu->r[CPU_RDX];
    uint64_t di = idx_get(cpu, CPU_RDI, asz);
    /* Check the destination before the port is read (reads can have side effects). */
    uint64_t lin = cpu_seg_lin(cpu, CPU_SEG_ES, di, size, CPU_ACC_WRITE);
    cpu_probe_lin(cpu, lin, size, CPU_ACC_WRITE, cpu->mmu_idx);
    uint32_t v = cpu_in(cpu, port, size);
    cpu_st(cpu, CPU_SEG_ES, di, size, v);
    idx_add(cpu, CPU_RDI, asz, delta > 0 ? (int64_t)size : -(int64_t)size);
    return true;
}

static bool outs_step(struct cpu *cpu, const struct x86_insn *in, int64_t delta)
{
    unsigned size = io_size(in), asz = in->addrsize;
    uint32_t v = (uint32_t)cpu_ld(cpu, in->seg, idx_get(cpu, CPU_RSI, asz), size);
    cpu_out(cpu, (uint16_t)cpu->r[CPU_RDX], size, v);
    idx_add(cpu, CPU_RSI, asz, delta > 0 ? (int64_t)size : -(int64_t)size);
    return true;
}

void op_movs(struct cpu *cpu, const struct x86_insn *in)
{
    rep_run(cpu, in, movs_step, true, false);
}

void op_stos(struct cpu *cpu, const struct x86_insn *in)
{
    rep_run(cpu, in, stos_step, false, true);
}

void op_lods(struct cpu *cpu, const struct x86_insn *in)
{
    rep_run(cpu, in, lods_step, false, false);
}

void op_cmps(struct cpu *cpu, const struct x86_insn *in)
{
    rep_run(cpu, in, cmps_step, false, false);
}

void op_scas(struct cpu *cpu, const struct x86_insn *in)
{
    rep_run(cpu, in, scas_step, false, false);
}

void op_ins(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_io_check(cpu, (uint16_t)cpu->r[CPU_RDX], io_size(in));
    rep_run(cpu, in, ins_step, false, false);
}

void op_outs(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_io_check(cpu, (uint16_t)cpu->r[CPU_RDX], io_size(in));
    rep_run(cpu, in, outs_step, false, false);
}
