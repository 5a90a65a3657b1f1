/* Integer arithmetic: ADD..CMP, TEST, INC/DEC, NOT/NEG, MUL/IMUL/DIV/IDIV, shifts and
 * rotates, SHLD/SHRD, BCD adjustments, CBW/CWD. Flags are lazy (flags.c) except where an
 * instruction defines them piecewise (rotates, BCD), which write RFLAGS directly. */
#include "core/cpu/alu_impl.h"
#include "core/cpu/ops.h"

/* op: 0 ADD 1 OR 2 ADC 3 SBB 4 AND 5 SUB 6 XOR 7 CMP (the ModRM /digit order). Inlined
 * into per-operation handlers below so that the switch folds away. */
static inline __attribute__((always_inline)) uint64_t alu_op(struct cpu *cpu, uint64_t a,
                                                             uint64_t b, unsigned size, unsigned op)
{
    uint64_t mask = alu_mask(size);
    unsigned sz = alu_ccsz(size);
    uint64_t r, c;
    b &= mask;
    switch (op) {
    case 0:
        r = a + b;
        cpu->cc_op = CPU_CC_ADD8 + sz;
        cpu->cc_src = b;
        break;
    case 1:
        r = a | b;
        cpu->cc_op = CPU_CC_LOGIC8 + sz;
        break;
    case 2:
        c = cpu_get_cf(cpu);
        r = a + b + c;
        cpu->cc_op = CPU_CC_ADC8 + sz;
        cpu->cc_src = b;
        cpu->cc_src2 = c;
        break;
    case 3:
        c = cpu_get_cf(cpu);
        r = a - b - c;
        cpu->cc_op = CPU_CC_SBB8 + sz;
        cpu->cc_src = b;
        cpu->cc_src2 = c;
        break;
    case 4:
        r = a & b;
        cpu->cc_op = CPU_CC_LOGIC8 + sz;
        break;
    case 6:
        r = a ^ b;
        cpu->cc_op = CPU_CC_LOGIC8 + sz;
        break;
    default: /* SUB, CMP */
        r = a - b;
        cpu->cc_op = CPU_CC_SUB8 + sz;
        cpu->cc_src = b;
        break;
    }
    r &= mask;
    cpu->cc_dst = r;
    return r;
}

static uint64_t alu_op_any(struct cpu *cpu, uint64_t a, uint64_t b, unsigned size, unsigned op)
{
    return alu_op(cpu, a, b, size, op);
}

static inline __attribute__((always_inline)) void alu_rm(struct cpu *cpu, const struct x86_insn *in,
                                                         unsigned op, uint64_t b, unsigned size)
{
    if (op == 7) {
        alu_op(cpu, cpu_read_rm(cpu, in, size), b, size, 7);
        return;
    }
    if (in->mod == 3) {
        uint64_t a = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), alu_op(cpu, a, b, size, op));
        return;
    }
    rm_rmw(cpu, in, size, b, op, alu_op_any);
}

static inline __attribute__((always_inline)) void
alu_r_rm(struct cpu *cpu, const struct x86_insn *in, unsigned op, unsigned size)
{
    uint64_t b = cpu_read_rm(cpu, in, size);
    uint64_t r = alu_op(cpu, get_reg_op(cpu, in, size), b, size, op);
    if (op != 7) {
        set_reg_op(cpu, in, size, r);
    }
}

static inline __attribute__((always_inline)) void
alu_a_imm(struct cpu *cpu, const struct x86_insn *in, unsigned op, unsigned size)
{
    uint64_t r = alu_op(cpu, cpu_get_reg(cpu, CPU_RAX, size, false), in->imm, size, op);
    if (op != 7) {
        cpu_set_reg(cpu, CPU_RAX, size, false, r);
    }
}

/* One handler per operation and form (the decoder picks them by opcode), plus variants
 * specialised on the operand size (the decoder switches to them once it knows the size). */
#define ALU_FORM_SIZED(name, form, op, sz, ...)                                                    \
    void op_##name##_##form##_##sz(struct cpu *cpu, const struct x86_insn *in)                     \
    {                                                                                              \
        __VA_ARGS__;                                                                               \
    }
#define ALU_HANDLERS_SIZE(name, op, sz)                                                            \
    ALU_FORM_SIZED(name, rm_r, op, sz, alu_rm(cpu, in, op, get_reg_op(cpu, in, sz), sz))           \
    ALU_FORM_SIZED(name, r_rm, op, sz, alu_r_rm(cpu, in, op, sz))                                  \
    ALU_FORM_SIZED(name, a_imm, op, sz, alu_a_imm(cpu, in, op, sz))                                \
    ALU_FORM_SIZED(name, rm_imm, op, sz, alu_rm(cpu, in, op, in->imm, sz))
#define ALU_HANDLERS(name, op)                                                                     \
    void op_##name##_rm_r(struct cpu *cpu, const struct x86_insn *in)                              \
    {                                                                                              \
        alu_rm(cpu, in, op, get_reg_op(cpu, in, in->opsize), in->opsize);                          \
    }                                                                                              \
    void op_##name##_r_rm(struct cpu *cpu, const struct x86_insn *in)                              \
    {                                                                                              \
        alu_r_rm(cpu, in, op, in->opsize);                                                         \
    }                                                                                              \
    void op_##name##_a_imm(struct cpu *cpu, const struct x86_insn *in)                             \
    {                                                                                              \
        alu_a_imm(cpu, in, op, in->opsize);                                                        \
    }                                                                                              \
    void op_##name##_rm_imm(struct cpu *cpu, const struct x86_insn *in)                            \
    {                                                                                              \
        alu_rm(cpu, in, op, in->imm, in->opsize);                                                  \
    }                                                                                              \
    ALU_HANDLERS_SIZE(name, op, 1)                                                                 \
    ALU_HANDLERS_SIZE(name, op, 2)                                                                 \
    ALU_HANDLERS_SIZE(name, op, 4)                                                                 \
    ALU_HANDLERS_SIZE(name, op, 8)

ALU_HANDLERS(add, 0)
ALU_HANDLERS(or, 1)
ALU_HANDLERS(adc, 2)
ALU_HANDLERS(sbb, 3)
ALU_HANDLERS(and, 4)
ALU_HANDLERS(sub, 5)
ALU_HANDLERS(xor, 6)
ALU_HANDLERS(cmp, 7)

void op_test_rm_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    alu_set_logic(cpu, size, cpu_read_rm(cpu, in, size) & get_reg_op(cpu, in, size));
}

void op_test_a_imm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    alu_set_logic(cpu, size, cpu_get_reg(cpu, CPU_RAX, size, false) & in->imm & alu_mask(size));
}

void op_test_rm_imm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    alu_set_logic(cpu, size, cpu_read_rm(cpu, in, size) & in->imm & alu_mask(size));
}

static uint64_t not_fn(struct cpu *cpu, uint64_t a, uint64_t b, unsigned size, unsigned op)
{
    return ~a & alu_mask(size);
}

void op_not(struct cpu *cpu, const struct x86_insn *in)
{
    rm_rmw(cpu, in, in->opsize, 0, 0, not_fn);
}

static uint64_t neg_fn(struct cpu *cpu, uint64_t a, uint64_t b, unsigned size, unsigned op)
{
    uint64_t r = (0 - a) & alu_mask(size);
    cpu->cc_op = CPU_CC_NEG8 + alu_ccsz(size);
    cpu->cc_src = a;
    cpu->cc_dst = r;
    return r;
}

void op_neg(struct cpu *cpu, const struct x86_insn *in)
{
    rm_rmw(cpu, in, in->opsize, 0, 0, neg_fn);
}

static inline __attribute__((always_inline)) uint64_t
incdec_fn(struct cpu *cpu, uint64_t a, uint64_t b, unsigned size, unsigned dec)
{
    uint64_t r = (dec ? a - 1 : a + 1) & alu_mask(size);
    cpu->cc_src2 = cpu_get_cf(cpu);
    cpu->cc_op = (dec ? CPU_CC_DEC8 : CPU_CC_INC8) + alu_ccsz(size);
    cpu->cc_dst = r;
    return r;
}

void op_inc_rm(struct cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3) {
        unsigned size = in->opsize;
        uint64_t a = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), incdec_fn(cpu, a, 0, size, 0));
        return;
    }
    rm_rmw(cpu, in, in->opsize, 0, 0, incdec_fn);
}

void op_dec_rm(struct cpu *cpu, const struct x86_insn *in)
{
    if (in->mod == 3) {
        unsigned size = in->opsize;
        uint64_t a = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), incdec_fn(cpu, a, 0, size, 1));
        return;
    }
    rm_rmw(cpu, in, in->opsize, 0, 1, incdec_fn);
}

void op_inc_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = in->op & 7, size = in->opsize;
    cpu_set_reg(cpu, n, size, false, incdec_fn(cpu, cpu_get_reg(cpu, n, size, false), 0, size, 0));
}

void op_dec_r(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned n = in->op & 7, size = in->opsize;
    cpu_set_reg(cpu, n, size, false, incdec_fn(cpu, cpu_get_reg(cpu, n, size, false), 0, size, 1));
}

/* ---- multiply / divide ---- */

static void set_mul_flags(struct cpu *cpu, unsigned size, uint64_t low, bool overflow)
{
    cpu->cc_op = CPU_CC_MUL8 + alu_ccsz(size);
    cpu->cc_dst = low & alu_mask(size);
    cpu->cc_src = overflow;
}

void op_mul(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t b = cpu_read_rm(cpu, in, size);
    uint64_t a = cpu_get_reg(cpu, CPU_RAX, size, false);
    switch (size) {
    case 1: {
        uint64_t r = a * b;
        cpu_set_reg(cpu, CPU_RAX, 2, false, r);
        set_mul_flags(cpu, 1, r, (r >> 8) != 0);
        break;
    }
    case 2: {
        uint64_t r = a * b;
        cpu_set_reg(cpu, CPU_RAX, 2, false, r);
        cpu_set_reg(cpu, CPU_RDX, 2, false, r >> 16);
        set_mul_flags(cpu, 2, r, (r >> 16) != 0);
        break;
    }
    case 4: {
        uint64_t r = a * b;
        cpu_set_reg(cpu, CPU_RAX, 4, false, r);
        cpu_set_reg(cpu, CPU_RDX, 4, false, r >> 32);
        set_mul_flags(cpu, 4, r, (r >> 32) != 0);
        break;
    }
    default: {
        unsigned __int128 r = (unsigned __int128)a * b;
        cpu->r[CPU_RAX] = (uint64_t)r;
        cpu->r[CPU_RDX] = (uint64_t)(r >> 64);
        set_mul_flags(cpu, 8, (uint64_t)r, (uint64_t)(r >> 64) != 0);
        break;
    }
    }
}

void op_imul1(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    int64_t b = (int64_t)alu_sext(cpu_read_rm(cpu, in, size), size);
    int64_t a = (int64_t)alu_sext(cpu_get_reg(cpu, CPU_RAX, size, false), size);
    switch (size) {
    case 1: {
        int64_t r = a * b;
        cpu_set_reg(cpu, CPU_RAX, 2, false, (uint64_t)r);
        set_mul_flags(cpu, 1, (uint64_t)r, r != (int8_t)r);
        break;
    }
    case 2: {
        int64_t r = a * b;
        cpu_set_reg(cpu, CPU_RAX, 2, false, (uint64_t)r);
        cpu_set_reg(cpu, CPU_RDX, 2, false, (uint64_t)r >> 16);
        set_mul_flags(cpu, 2, (uint64_t)r, r != (int16_t)r);
        break;
    }
    case 4: {
        int64_t r = a * b;
        cpu_set_reg(cpu, CPU_RAX, 4, false, (uint64_t)r);
        cpu_set_reg(cpu, CPU_RDX, 4, false, (uint64_t)r >> 32);
        set_mul_flags(cpu, 4, (uint64_t)r, r != (int32_t)r);
        break;
    }
    default: {
        __int128 r = (__int128)a * b;
        cpu->r[CPU_RAX] = (uint64_t)r;
        cpu->r[CPU_RDX] = (uint64_t)((unsigned __int128)r >> 64);
        set_mul_flags(cpu, 8, (uint64_t)r, r != (int64_t)r);
        break;
    }
    }
}

static uint64_t imul_trunc(struct cpu *cpu, uint64_t x, uint64_t y, unsigned size)
{
    int64_t a = (int64_t)alu_sext(x, size), b = (int64_t)alu_sext(y, size);
    if (size == 8) {
        __int128 r = (__int128)a * b;
        set_mul_flags(cpu, 8, (uint64_t)r, r != (int64_t)r);
        return (uint64_t)r;
    }
    int64_t r = a * b;
    set_mul_flags(cpu, size, (uint64_t)r, (int64_t)alu_sext((uint64_t)r, size) != r);
    return (uint64_t)r & alu_mask(size);
}

void op_imul_r_rm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t b = cpu_read_rm(cpu, in, size);
    set_reg_op(cpu, in, size, imul_trunc(cpu, get_reg_op(cpu, in, size), b, size));
}

void op_imul_r_rm_imm(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t a = cpu_read_rm(cpu, in, size);
    set_reg_op(cpu, in, size, imul_trunc(cpu, a, in->imm, size));
}

void op_div(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t d = cpu_read_rm(cpu, in, size);
    if (d == 0) {
        cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
    }
    switch (size) {
    case 1: {
        uint64_t n = cpu->r[CPU_RAX] & 0xffff;
        uint64_t q = n / d;
        if (q > 0xff) {
            cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
        }
        cpu_set_reg(cpu, CPU_RAX, 2, false, ((n % d) << 8) | q);
        break;
    }
    case 2: {
        uint64_t n = ((cpu->r[CPU_RDX] & 0xffff) << 16) | (cpu->r[CPU_RAX] & 0xffff);
        uint64_t q = n / d;
        if (q > 0xffff) {
            cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
        }
        cpu_set_reg(cpu, CPU_RAX, 2, false, q);
        cpu_set_reg(cpu, CPU_RDX, 2, false, n % d);
        break;
    }
    case 4: {
        uint64_t n = ((cpu->r[CPU_RDX] & 0xffffffffu) << 32) | (cpu->r[CPU_RAX] & 0xffffffffu);
        uint64_t q = n / d;
        if (q > 0xffffffffu) {
            cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
        }
        cpu_set_reg(cpu, CPU_RAX, 4, false, q);
        cpu_set_reg(cpu, CPU_RDX, 4, false, n % d);
        break;
    }
    default: {
        unsigned __int128 n = ((unsigned __int128)cpu->r[CPU_RDX] << 64) | cpu->r[CPU_RAX];
        unsigned __int128 q = n / d;
        if (q >> 64) {
            cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
        }
        cpu->r[CPU_RAX] = (uint64_t)q;
        cpu->r[CPU_RDX] = (uint64_t)(n % d);
        break;
    }
    }
}

void op_idiv(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    int64_t d = (int64_t)alu_sext(cpu_read_rm(cpu, in, size), size);
    if (d == 0) {
        cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
    }
    if (size == 8) {
        __int128 n = (__int128)(((unsigned __int128)cpu->r[CPU_RDX] << 64) | cpu->r[CPU_RAX]);
        if (d == -1 && (unsigned __int128)n == (unsigned __int128)1 << 127) {
            cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
        }
        __int128 q = n / d;
        if (q != (int64_t)q) {
            cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
        }
        cpu->r[CPU_RAX] = (uint64_t)q;
        cpu->r[CPU_RDX] = (uint64_t)(n % d);
        return;
    }
    unsigned bits = size * 8;
    int64_t n;
    if (size == 1) {
        n = (int16_t)(cpu->r[CPU_RAX] & 0xffff);
    } else {
        uint64_t hi = cpu->r[CPU_RDX] & alu_mask(size), lo = cpu->r[CPU_RAX] & alu_mask(size);
        n = (int64_t)alu_sext((hi << bits) | lo, size * 2);
    }
    int64_t q = n / d, r = n % d;
    if (q != (int64_t)alu_sext((uint64_t)q, size)) {
        cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
    }
    if (size == 1) {
        cpu_set_reg(cpu, CPU_RAX, 2, false, (((uint64_t)r & 0xff) << 8) | ((uint64_t)q & 0xff));
    } else {
        cpu_set_reg(cpu, CPU_RAX, size, false, (uint64_t)q);
        cpu_set_reg(cpu, CPU_RDX, size, false, (uint64_t)r);
    }
}

/* ---- shifts and rotates ---- */

static void set_cf_of(struct cpu *cpu, bool cf, bool of)
{
    cpu_flags_sync(cpu);
    cpu->rflags = (cpu->rflags & ~(uint64_t)(CPU_FL_CF | CPU_FL_OF)) | (cf ? CPU_FL_CF : 0) |
                  (of ? CPU_FL_OF : 0);
}

/* op: 0 ROL 1 ROR 2 RCL 3 RCR 4 SHL 5 SHR 6 SAL 7 SAR; arg: masked count (nonzero). */
static inline __attribute__((always_inline)) uint64_t
shift_fn(struct cpu *cpu, uint64_t a, uint64_t cnt, unsigned size, unsigned op, bool noflags)
{
    unsigned bits = size * 8;
    uint64_t mask = alu_mask(size);
    uint64_t msb = 1ull << (bits - 1);
    uint64_t r;
    a &= mask;
    switch (op) {
    case 0: {
        unsigned c = (unsigned)(cnt % bits);
        r = c ? ((a << c) | (a >> (bits - c))) & mask : a;
        if (!noflags) {
            set_cf_of(cpu, r & 1, ((r & msb) != 0) ^ (r & 1));
        }
        return r;
    }
    case 1: {
        unsigned c = (unsigned)(cnt % bits);
        r = c ? ((a >> c) | (a << (bits - c))) & mask : a;
        if (!noflags) {
            set_cf_of(cpu, (r & msb) != 0, ((r & msb) != 0) ^ ((r & (msb >> 1)) != 0));
        }
        return r;
    }
    case 2: {
        unsigned c = (unsigned)(cnt % (bits + 1));
        bool cf = cpu_get_cf(cpu);
        r = a;
        for (unsigned k = 0; k < c; k++) {
            bool n = (r & msb) != 0;
            r = ((r << 1) | cf) & mask;
            cf = n;
        }
        if (!noflags) {
            set_cf_of(cpu, cf, ((r & msb) != 0) ^ cf);
        }
        return r;
    }
    case 3: {
        unsigned c = (unsigned)(cnt % (bits + 1));
        bool cf = cpu_get_cf(cpu);
        r = a;
        for (unsigned k = 0; k < c; k++) {
            bool n = r & 1;
            r = (r >> 1) | (cf ? msb : 0);
            cf = n;
        }
        if (!noflags) {
            set_cf_of(cpu, cf, ((r & msb) != 0) ^ ((r & (msb >> 1)) != 0));
        }
        return r;
    }
    case 5:
        r = a >> cnt;
        cpu->cc_op = CPU_CC_SHR8 + alu_ccsz(size);
        cpu->cc_src = a >> (cnt - 1);
        cpu->cc_src2 = a;
        break;
    case 7: {
        int64_t s = (int64_t)alu_sext(a, size);
        r = (uint64_t)(s >> cnt) & mask;
        cpu->cc_op = CPU_CC_SAR8 + alu_ccsz(size);
        cpu->cc_src = (uint64_t)(s >> (cnt - 1));
        cpu->cc_src2 = a;
        break;
    }
    default: /* SHL, SAL */
        r = cnt >= 64 ? 0 : (a << cnt) & mask;
        cpu->cc_op = CPU_CC_SHL8 + alu_ccsz(size);
        cpu->cc_src = (cnt - 1) >= 64 ? 0 : a << (cnt - 1);
        cpu->cc_src2 = a;
        break;
    }
    cpu->cc_dst = r;
    return r;
}

static uint64_t shift_fn_any(struct cpu *cpu, uint64_t a, uint64_t cnt, unsigned size, unsigned op)
{
    return shift_fn(cpu, a, cnt, size, op, false);
}

static inline __attribute__((always_inline)) void shift_op(struct cpu *cpu,
                                                           const struct x86_insn *in, unsigned op)
{
    unsigned size = in->opsize;
    uint64_t cnt;
    uint8_t b = in->op & 0xff;
    if (b == 0xc0 || b == 0xc1) {
        cnt = in->imm;
    } else if (b == 0xd0 || b == 0xd1) {
        cnt = 1;
    } else {
        cnt = cpu->r[CPU_RCX];
    }
    cnt &= size == 8 ? 63 : 31;
    if (cnt == 0) {
        /* Count 0: no flags change; the operand is still accessed, and a 32-bit register
         * destination is still written (zero-extended) like any 32-bit result. */
        rm_probe_write(cpu, in, size);
        uint64_t v = cpu_read_rm(cpu, in, size);
        if (size == 4 && in->mod == 3) {
            cpu_set_reg(cpu, in->rm, 4, false, v);
        }
        return;
    }
    if (in->mod == 3) {
        uint64_t a = cpu_get_reg(cpu, in->rm, size, insn_rex(in));
        /* Flags the next instruction overwrites are not computed (not while single-stepping,
         * where #DB pushes them). */
        bool noflags = (in->flags & X86_F_NOFLAGS) && !cpu->keep_flags;
        cpu_set_reg(cpu, in->rm, size, insn_rex(in), shift_fn(cpu, a, cnt, size, op, noflags));
        return;
    }
    rm_rmw(cpu, in, size, cnt, op, shift_fn_any);
}

void op_shift(struct cpu *cpu, const struct x86_insn *in)
{
    switch (in->reg & 7) {
    case 0:
        shift_op(cpu, in, 0);
        break;
    case 1:
        shift_op(cpu, in, 1);
        break;
    case 2:
        shift_op(cpu, in, 2);
        break;
    case 3:
        shift_op(cpu, in, 3);
        break;
    case 5:
        shift_op(cpu, in, 5);
        break;
    case 7:
        shift_op(cpu, in, 7);
        break;
    default:
        shift_op(cpu, in, 4);
        break;
    }
}

/* SHLD/SHRD: dst = high/low half of the double-width shift of dst:src. */
static void shd(struct cpu *cpu, const struct x86_insn *in, bool right)
{
    unsigned size = in->opsize, bits = size * 8;
    uint64_t mask = alu_mask(size);
    uint8_t b = in->op & 0xff;
    unsigned cnt = (unsigned)((b == 0xa4 || b == 0xac) ? in->imm : cpu->r[CPU_RCX]);
    cnt &= size == 8 ? 63 : 31;
    if (cnt == 0) {
        rm_probe_write(cpu, in, size);
        uint64_t v = cpu_read_rm(cpu, in, size);
        if (size == 4 && in->mod == 3) {
            cpu_set_reg(cpu, in->rm, 4, false, v);
        }
        return;
    }
    uint64_t src = get_reg_op(cpu, in, size);
    rm_probe_write(cpu, in, size);
    uint64_t a = cpu_read_rm(cpu, in, size);
    uint64_t r, cfsrc;
    if (size == 2 && cnt > 16) {
        /* Undefined result (Intel shifts through the 48-bit dst:src:dst); mimic it. */
        uint64_t x = right ? (a | (src << 16) | (a << 32)) : ((a << 32) | (src << 16) | a);
        r = right ? (x >> cnt) & mask : (x << cnt >> 32) & mask;
        cfsrc = right ? x >> (cnt - 1) : x << (cnt - 1) >> 32;
    } else if (right) {
        unsigned __int128 x = ((unsigned __int128)src << bits) | a;
        r = (uint64_t)(x >> cnt) & mask;
        cfsrc = (uint64_t)(x >> (cnt - 1));
    } else {
        unsigned __int128 x = ((unsigned __int128)a << bits) | src;
        r = (uint64_t)((x << cnt) >> bits) & mask;
        cfsrc = (uint64_t)((x << (cnt - 1)) >> bits);
    }
    cpu_write_rm(cpu, in, size, r);
    cpu->cc_op = (right ? CPU_CC_SHR8 : CPU_CC_SHL8) + alu_ccsz(size);
    cpu->cc_src = cfsrc;
    /* OF (defined for count 1) is "the sign changed": SHL's lazy rule gives that by itself,
     * SHR's takes the top bit of src2, so hand it old ^ new. */
    cpu->cc_src2 = right ? a ^ r : a;
    cpu->cc_dst = r;
}

void op_shld(struct cpu *cpu, const struct x86_insn *in)
{
    shd(cpu, in, false);
}

void op_shrd(struct cpu *cpu, const struct x86_insn *in)
{
    shd(cpu, in, true);
}

/* ---- BCD (SDM vol. 2 pseudo-code) ---- */

static void set_szp_al(struct cpu *cpu, uint64_t extra_set, uint64_t extra_mask)
{
    uint8_t al = cpu->r[CPU_RAX] & 0xff;
    alu_set_logic(cpu, 1, al);
    cpu_flags_sync(cpu);
    cpu->rflags = (cpu->rflags & ~extra_mask) | extra_set;
}

void op_daa(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t f = cpu_get_rflags(cpu);
    uint8_t al = cpu->r[CPU_RAX] & 0xff, old_al = al;
    bool old_cf = f & CPU_FL_CF, cf = false, af = false;
    if ((al & 0xf) > 9 || (f & CPU_FL_AF)) {
        cf = old_cf || al > 0xf9;
        al += 6;
        af = true;
    }
    if (old_al > 0x99 || old_cf) {
        al += 0x60;
        cf = true;
    } else {
        cf = false;
    }
    cpu_set_reg(cpu, CPU_RAX, 1, false, al);
    set_szp_al(cpu, (cf ? CPU_FL_CF : 0) | (af ? CPU_FL_AF : 0), CPU_FL_CF | CPU_FL_AF | CPU_FL_OF);
}

void op_das(struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t f = cpu_get_rflags(cpu);
    uint8_t al = cpu->r[CPU_RAX] & 0xff, old_al = al;
    bool old_cf = f & CPU_FL_CF, cf = false, af = false;
    if ((al & 0xf) > 9 || (f & CPU_FL_AF)) {
        cf = old_cf || al < 6;
        al -= 6;
        af = true;
    }
    if (old_al > 0x99 || old_cf) {
        al -= 0x60;
        cf = true;
    }
    cpu_set_reg(cpu, CPU_RAX, 1, false, al);
    set_szp_al(cpu, (cf ? CPU_FL_CF : 0) | (af ? CPU_FL_AF : 0), CPU_FL_CF | CPU_FL_AF | CPU_FL_OF);
}

static void aaa_aas(struct cpu *cpu, bool sub)
{
    uint64_t f = cpu_get_rflags(cpu);
    uint16_t ax = cpu->r[CPU_RAX] & 0xffff;
    bool adj = (ax & 0xf) > 9 || (f & CPU_FL_AF);
    if (adj) {
        if (sub) {
            ax = (uint16_t)(ax - 6);
            ax = (uint16_t)(ax - 0x100);
        } else {
            ax = (uint16_t)(ax + 0x106);
        }
    }
    ax &= 0xff0f;
    cpu_set_reg(cpu, CPU_RAX, 2, false, ax);
    set_szp_al(cpu, adj ? (CPU_FL_CF | CPU_FL_AF) : 0, CPU_FL_CF | CPU_FL_AF | CPU_FL_OF);
}

void op_aaa(struct cpu *cpu, const struct x86_insn *in)
{
    aaa_aas(cpu, false);
}

void op_aas(struct cpu *cpu, const struct x86_insn *in)
{
    aaa_aas(cpu, true);
}

void op_aam(struct cpu *cpu, const struct x86_insn *in)
{
    uint8_t base = (uint8_t)in->imm, al = cpu->r[CPU_RAX] & 0xff;
    if (base == 0) {
        cpu_raise(cpu, X86_EXC_DE, CPU_NO_ERROR);
    }
    cpu_set_reg(cpu, CPU_RAX, 2, false, ((uint64_t)(al / base) << 8) | (al % base));
    alu_set_logic(cpu, 1, al % base);
}

void op_aad(struct cpu *cpu, const struct x86_insn *in)
{
    uint8_t base = (uint8_t)in->imm;
    uint8_t al = cpu->r[CPU_RAX] & 0xff, ah = (cpu->r[CPU_RAX] >> 8) & 0xff;
    uint8_t r = (uint8_t)(al + ah * base);
    cpu_set_reg(cpu, CPU_RAX, 2, false, r);
    alu_set_logic(cpu, 1, r);
}

void op_salc(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_set_reg(cpu, CPU_RAX, 1, false, cpu_get_cf(cpu) ? 0xff : 0);
}

void op_cbw(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    cpu_set_reg(cpu, CPU_RAX, size, false,
                alu_sext(cpu_get_reg(cpu, CPU_RAX, size / 2, false), size / 2));
}

void op_cwd(struct cpu *cpu, const struct x86_insn *in)
{
    unsigned size = in->opsize;
    uint64_t a = cpu_get_reg(cpu, CPU_RAX, size, false);
    cpu_set_reg(cpu, CPU_RDX, size, false, (a >> (size * 8 - 1)) & 1 ? ~0ull : 0);
}

/* ---- shifts and rotates of a 32/64-bit register by an immediate, 1 or CL ----
 * The hot forms in compiled code; picked after decoding by x86_specialise_insn. No
 * operation or size switch, no ModRM test. cnt_src: 0 imm8, 1 one, 2 CL. */
static inline __attribute__((always_inline)) void shift_reg_fast(struct cpu *cpu,
                                                                 const struct x86_insn *in,
                                                                 unsigned op, unsigned size,
                                                                 unsigned cnt_src)
{
    uint64_t cnt = cnt_src == 0 ? in->imm : cnt_src == 1 ? 1 : cpu->r[CPU_RCX];
    cnt &= size == 8 ? 63 : 31;
    if (cnt_src == 2 && cnt == 0) {
        shift_op(cpu, in, op); /* count 0: flags unchanged, 32-bit still zero-extends */
        return;
    }
    uint64_t a = cpu->r[in->rm];
    bool noflags = (in->flags & X86_F_NOFLAGS) && !cpu->keep_flags;
    uint64_t r = shift_fn(cpu, a, cnt, size, op, noflags);
    cpu->r[in->rm] = size == 4 ? (uint32_t)r : r;
}

#define SHIFT_FAST(op, sz)                                                                         \
    static void op_shift_ri_##op##_##sz(struct cpu *cpu, const struct x86_insn *in)               \
    {                                                                                              \
        shift_reg_fast(cpu, in, op, sz, 0);                                                        \
    }                                                                                              \
    static void op_shift_r1_##op##_##sz(struct cpu *cpu, const struct x86_insn *in)               \
    {                                                                                              \
        shift_reg_fast(cpu, in, op, sz, 1);                                                        \
    }                                                                                              \
    static void op_shift_rc_##op##_##sz(struct cpu *cpu, const struct x86_insn *in)               \
    {                                                                                              \
        shift_reg_fast(cpu, in, op, sz, 2);                                                        \
    }
#define SHIFT_FAST_OP(op) SHIFT_FAST(op, 4) SHIFT_FAST(op, 8)
SHIFT_FAST_OP(0)
SHIFT_FAST_OP(1)
SHIFT_FAST_OP(4)
SHIFT_FAST_OP(5)
SHIFT_FAST_OP(7)

#define SHIFT_ROW(form, sz)                                                                        \
    {                                                                                              \
        op_shift_##form##_0_##sz, op_shift_##form##_1_##sz, NULL, NULL, op_shift_##form##_4_##sz,  \
            op_shift_##form##_5_##sz, op_shift_##form##_4_##sz, op_shift_##form##_7_##sz           \
    }

static const x86_handler shift_fast[3][2][8] = {
    {SHIFT_ROW(ri, 4), SHIFT_ROW(ri, 8)},
    {SHIFT_ROW(r1, 4), SHIFT_ROW(r1, 8)},
    {SHIFT_ROW(rc, 4), SHIFT_ROW(rc, 8)},
};

/* ---- register-register/immediate forms of MOV and the ALU (32/64-bit) ----
 * No ModRM mode test, no size switch, no byte-register (AH..BH) case. form: 0 r/m,reg
 * (destination rm), 1 reg,r/m (destination reg), 2 r/m,imm. */
static inline __attribute__((always_inline)) void alu_reg_fast(struct cpu *cpu,
                                                               const struct x86_insn *in,
                                                               unsigned op, unsigned size,
                                                               unsigned form)
{
    unsigned d = form == 1 ? in->reg : in->rm;
    uint64_t b = form == 2 ? in->imm : cpu->r[form == 1 ? in->rm : in->reg];
    uint64_t r = alu_op(cpu, cpu->r[d] & alu_mask(size), b, size, op);
    if (op != 7) {
        cpu->r[d] = r; /* masked: a 32-bit result zero-extends */
    }
}

#define ALU_FAST(op, sz)                                                                           \
    static void op_alu_rr0_##op##_##sz(struct cpu *cpu, const struct x86_insn *in)                 \
    {                                                                                              \
        alu_reg_fast(cpu, in, op, sz, 0);                                                          \
    }                                                                                              \
    static void op_alu_rr1_##op##_##sz(struct cpu *cpu, const struct x86_insn *in)                 \
    {                                                                                              \
        alu_reg_fast(cpu, in, op, sz, 1);                                                          \
    }                                                                                              \
    static void op_alu_ri_##op##_##sz(struct cpu *cpu, const struct x86_insn *in)                  \
    {                                                                                              \
        alu_reg_fast(cpu, in, op, sz, 2);                                                          \
    }
#define ALU_FAST_OP(op) ALU_FAST(op, 4) ALU_FAST(op, 8)
ALU_FAST_OP(0)
ALU_FAST_OP(1)
ALU_FAST_OP(2)
ALU_FAST_OP(3)
ALU_FAST_OP(4)
ALU_FAST_OP(5)
ALU_FAST_OP(6)
ALU_FAST_OP(7)

#define ALU_FAST_ROW(form, sz)                                                                     \
    {                                                                                              \
        op_alu_##form##_0_##sz, op_alu_##form##_1_##sz, op_alu_##form##_2_##sz,                    \
            op_alu_##form##_3_##sz, op_alu_##form##_4_##sz, op_alu_##form##_5_##sz,                \
            op_alu_##form##_6_##sz, op_alu_##form##_7_##sz                                         \
    }

static const x86_handler alu_fast[3][2][8] = {
    {ALU_FAST_ROW(rr0, 4), ALU_FAST_ROW(rr0, 8)},
    {ALU_FAST_ROW(rr1, 4), ALU_FAST_ROW(rr1, 8)},
    {ALU_FAST_ROW(ri, 4), ALU_FAST_ROW(ri, 8)},
};

static void op_mov_rr0_4(struct cpu *cpu, const struct x86_insn *in)
{
    cpu->r[in->rm] = (uint32_t)cpu->r[in->reg];
}

static void op_mov_rr0_8(struct cpu *cpu, const struct x86_insn *in)
{
    cpu->r[in->rm] = cpu->r[in->reg];
}

static void op_mov_rr1_4(struct cpu *cpu, const struct x86_insn *in)
{
    cpu->r[in->reg] = (uint32_t)cpu->r[in->rm];
}

static void op_mov_rr1_8(struct cpu *cpu, const struct x86_insn *in)
{
    cpu->r[in->reg] = cpu->r[in->rm];
}

/* Register forms of MOV and ALU (one-byte map 00-3F, 81, 83, 89, 8B). */
static void specialise_alu_mov(struct x86_insn *in)
{
    unsigned op = in->op;
    bool q = in->opsize == 8;
    if (op == 0x89) {
        in->exec = q ? op_mov_rr0_8 : op_mov_rr0_4;
    } else if (op == 0x8b) {
        in->exec = q ? op_mov_rr1_8 : op_mov_rr1_4;
    } else if (op < 0x40 && ((op & 7) == 1 || (op & 7) == 3)) {
        in->exec = alu_fast[(op & 7) == 3][q][op >> 3];
    } else if (op == 0x81 || op == 0x83) {
        in->exec = alu_fast[2][q][in->reg & 7];
    }
}

void x86_specialise_insn(struct x86_insn *in)
{
    if (in->mod != 3 || (in->opsize != 4 && in->opsize != 8) ||
        (in->flags & (X86_F_UD | X86_F_MEM))) {
        return;
    }
    if (in->exec != op_shift) {
        specialise_alu_mov(in);
        return;
    }
    uint8_t b = in->op & 0xff;
    unsigned form;
    if (b == 0xc1) {
        if ((in->imm & (in->opsize == 8 ? 63 : 31)) == 0) {
            return; /* count 0 keeps the generic path */
        }
        form = 0;
    } else if (b == 0xd1) {
        form = 1;
    } else if (b == 0xd3) {
        form = 2;
    } else {
        return;
    }
    x86_handler h = shift_fast[form][in->opsize == 8][in->reg & 7];
    if (h) {
        in->exec = h;
    }
}
