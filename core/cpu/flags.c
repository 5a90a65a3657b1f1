/* Lazy arithmetic flags (see enum cpu_cc_op in cpu.h): the ALU stores the result and its
 * operands, and the six arithmetic flags are computed only when something reads them. */
#include "core/cpu/cpu.h"

static const uint8_t parity_table[256] = {
#define P2(n) n, n ^ 1, n ^ 1, n
#define P4(n) P2(n), P2(n ^ 1), P2(n ^ 1), P2(n)
#define P6(n) P4(n), P4(n ^ 1), P4(n ^ 1), P4(n)
    P6(1), P6(0), P6(0), P6(1)
#undef P2
#undef P4
#undef P6
};

static uint64_t size_mask(unsigned sz)
{
    return sz == 3 ? ~0ull : (1ull << (8u << sz)) - 1;
}

/* The six arithmetic flags of the current lazy state. */
static uint32_t compute_arith(const struct cpu *cpu)
{
    uint32_t op = cpu->cc_op;
    if (op == CPU_CC_EFLAGS) {
        return (uint32_t)cpu->rflags & CPU_FL_ARITH;
    }
    if (op == CPU_CC_HOST) {
        /* LAHF's byte in bits 15:8, OF in bit 0 (see jit.c) */
        return (uint32_t)((cpu->cc_src >> 8) & 0xd5) | ((cpu->cc_src & 1) ? CPU_FL_OF : 0);
    }
    unsigned sz = op & 3;
    unsigned bits = 8u << sz;
    uint64_t mask = size_mask(sz);
    uint64_t res = cpu->cc_dst & mask;
    uint64_t src = cpu->cc_src & mask;
    uint64_t a;
    uint32_t f = 0;
    bool cf = false, of = false, af = false;
    uint64_t sign = 1ull << (bits - 1);

    switch ((op - CPU_CC_ADD8) >> 2) {
    case 0: /* ADD */
        a = (res - src) & mask;
        cf = res < a;
        af = ((a ^ src ^ res) & 0x10) != 0;
        of = (((a ^ res) & (src ^ res)) & sign) != 0;
        break;
    case 1: /* ADC */
        a = (res - src - (cpu->cc_src2 & 1)) & mask;
        cf = (cpu->cc_src2 & 1) ? res <= a : res < a;
        af = ((a ^ src ^ res) & 0x10) != 0;
        of = (((a ^ res) & (src ^ res)) & sign) != 0;
        break;
    case 2: /* SUB */
        a = (res + src) & mask;
        cf = a < src;
        af = ((a ^ src ^ res) & 0x10) != 0;
        of = (((a ^ src) & (a ^ res)) & sign) != 0;
        break;
    case 3: /* SBB */
        a = (res + src + (cpu->cc_src2 & 1)) & mask;
        cf = (cpu->cc_src2 & 1) ? a <= src : a < src;
        af = ((a ^ src ^ res) & 0x10) != 0;
        of = (((a ^ src) & (a ^ res)) & sign) != 0;
        break;
    case 4: /* LOGIC */
        break;
    case 5: /* INC */
        a = (res - 1) & mask;
        cf = cpu->cc_src2 & 1;
        af = ((a ^ res) & 0x10) != 0;
        of = res == sign;
        break;
    case 6: /* DEC */
        a = (res + 1) & mask;
        cf = cpu->cc_src2 & 1;
        af = ((a ^ res) & 0x10) != 0;
        of = a == sign;
        break;
    case 7: /* SHL */
        cf = (src & sign) != 0;
        of = cf ^ ((res & sign) != 0);
        break;
    case 8: /* SHR */
        cf = src & 1;
        of = (cpu->cc_src2 & sign) != 0;
        break;
    case 9: /* SAR */
        cf = src & 1;
        break;
    case 10: /* MUL */
        cf = of = cpu->cc_src != 0;
        break;
    case 11: /* NEG */
        cf = src != 0;
        af = ((src ^ res) & 0x10) != 0;
        of = (src & res & sign) != 0;
        break;
    default:
        return (uint32_t)cpu->rflags & CPU_FL_ARITH;
    }
    if (cf) {
        f |= CPU_FL_CF;
    }
    if (parity_table[res & 0xff]) {
        f |= CPU_FL_PF;
    }
    if (af) {
        f |= CPU_FL_AF;
    }
    if (res == 0) {
        f |= CPU_FL_ZF;
    }
    if (res & sign) {
        f |= CPU_FL_SF;
    }
    if (of) {
        f |= CPU_FL_OF;
    }
    return f;
}

uint64_t cpu_get_rflags(struct cpu *cpu)
{
    return (cpu->rflags & ~(uint64_t)CPU_FL_ARITH) | compute_arith(cpu) | CPU_FL_FIXED1;
}

void cpu_flags_sync(struct cpu *cpu)
{
    if (cpu->cc_op != CPU_CC_EFLAGS) {
        cpu->rflags = cpu_get_rflags(cpu);
        cpu->cc_op = CPU_CC_EFLAGS;
    }
}

void cpu_set_rflags(struct cpu *cpu, uint64_t val)
{
    uint64_t old = cpu->rflags;
    cpu->rflags = (val & 0x3f7fd7ull) | CPU_FL_FIXED1;
    cpu->cc_op = CPU_CC_EFLAGS;
    if ((old ^ cpu->rflags) & CPU_FL_VM) {
        cpu_update_mode(cpu);
    }
}

bool cpu_get_cf(struct cpu *cpu)
{
    uint32_t op = cpu->cc_op;
    if (op == CPU_CC_EFLAGS) {
        return cpu->rflags & CPU_FL_CF;
    }
    if (op >= CPU_CC_SUB8 && op <= CPU_CC_SUB64) {
        uint64_t mask = size_mask(op & 3);
        return ((cpu->cc_dst + cpu->cc_src) & mask) < (cpu->cc_src & mask);
    }
    if (op >= CPU_CC_LOGIC8 && op <= CPU_CC_LOGIC64) {
        return false;
    }
    if (op >= CPU_CC_INC8 && op <= CPU_CC_DEC64) {
        return cpu->cc_src2 & 1;
    }
    if (op >= CPU_CC_ADD8 && op <= CPU_CC_ADD64) {
        uint64_t mask = size_mask(op & 3);
        return (cpu->cc_dst & mask) < (cpu->cc_src & mask);
    }
    return compute_arith(cpu) & CPU_FL_CF;
}

bool cpu_cond(struct cpu *cpu, unsigned cc)
{
    uint32_t op = cpu->cc_op;
    bool r;
    /* Fast paths for the common CMP/TEST + Jcc pairs. */
    if (op >= CPU_CC_SUB8 && op <= CPU_CC_SUB64 && (cc & ~1u) != 0 && (cc & ~1u) != 10) {
        unsigned sz = op & 3;
        uint64_t mask = size_mask(sz);
        unsigned sh = 64 - (8u << sz);
        uint64_t res = cpu->cc_dst & mask;
        uint64_t b = cpu->cc_src & mask;
        uint64_t a = (res + b) & mask;
        int64_t sa = (int64_t)(a << sh) >> sh, sb = (int64_t)(b << sh) >> sh;
        switch (cc & ~1u) {
        case 2:
            r = a < b;
            break;
        case 4:
            r = a == b;
            break;
        case 6:
            r = a <= b;
            break;
        case 8:
            r = (res >> ((8u << sz) - 1)) & 1;
            break;
        case 12:
            r = sa < sb;
            break;
        case 14:
            r = sa <= sb;
            break;
        default: /* 0: OF */
            r = compute_arith(cpu) & CPU_FL_OF;
            break;
        }
        return r ^ (cc & 1);
    }
    if (op >= CPU_CC_LOGIC8 && op <= CPU_CC_LOGIC64) {
        unsigned sz = op & 3;
        uint64_t res = cpu->cc_dst & size_mask(sz);
        bool sf = (res >> ((8u << sz) - 1)) & 1;
        switch (cc & ~1u) {
        case 0:
        case 2:
            r = false;
            break;
        case 4:
            r = res == 0;
            break;
        case 6:
            r = res == 0;
            break;
        case 8:
            r = sf;
            break;
        case 10:
            r = parity_table[res & 0xff];
            break;
        case 12:
            r = sf;
            break;
        default:
            r = sf || res == 0;
            break;
        }
        return r ^ (cc & 1);
    }
    uint32_t f = compute_arith(cpu);
    switch (cc & ~1u) {
    case 0:
        r = f & CPU_FL_OF;
        break;
    case 2:
        r = f & CPU_FL_CF;
        break;
    case 4:
        r = f & CPU_FL_ZF;
        break;
    case 6:
        r = (f & (CPU_FL_CF | CPU_FL_ZF)) != 0;
        break;
    case 8:
        r = f & CPU_FL_SF;
        break;
    case 10:
        r = f & CPU_FL_PF;
        break;
    case 12:
        r = !(f & CPU_FL_SF) != !(f & CPU_FL_OF);
        break;
    default:
        r = (f & CPU_FL_ZF) || (!(f & CPU_FL_SF) != !(f & CPU_FL_OF));
        break;
    }
    return r ^ (cc & 1);
}
