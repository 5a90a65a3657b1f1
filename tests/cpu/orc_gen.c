/* Test-case generator of the CPU oracle: per opcode group a template that emits one
 * instruction (or a short sequence) with random operands, registers, flags and memory, and
 * records which flags the SDM leaves undefined afterwards. Everything derives from
 * (seed, case index), so a case can be replayed alone. */
#include "tests/cpu/oracle.h"

#include <string.h>

#define FL_CF 0x001u
#define FL_PF 0x004u
#define FL_AF 0x010u
#define FL_ZF 0x040u
#define FL_SF 0x080u
#define FL_OF 0x800u
#define FL_ALL (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

enum { R_AX = 0, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI };

struct gen {
    uint64_t *rng;
    struct orc_case *c;
    unsigned len;      /* bytes emitted */
    uint32_t reserved; /* registers that hold addresses: not picked as random operands */
    uint32_t f1_ecx;   /* CPUID.1:ECX the CPU under test advertises */
};

/* One instruction to encode. */
struct ins {
    uint8_t pfx[4];
    unsigned npfx;
    uint8_t op[3];
    unsigned nop;
    bool rexw;
    bool rex_force; /* REX 0x40 (SPL/BPL/SIL/DIL instead of AH..BH) */
    bool has_modrm;
    unsigned reg; /* ModRM.reg (register number or /digit) */
    bool mem;     /* r/m is memory */
    unsigned rm;  /* register when !mem */
    /* memory operand */
    int base;  /* -1 none; 16 = RIP */
    int index; /* -1 none */
    unsigned scale;
    int32_t disp;
    unsigned dispsz; /* 0, 1, 4 */
    uint64_t imm;
    unsigned immsz;
};

static uint64_t rnd(struct gen *g)
{
    return orc_rand(g->rng);
}

static unsigned rndn(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static bool chance(struct gen *g, unsigned pct)
{
    return rndn(g, 100) < pct;
}

/* Interesting register/operand values: edges of every size and random bits. */
static uint64_t rnd_val(struct gen *g)
{
    static const uint64_t edges[] = {
        0,
        1,
        2,
        0x7f,
        0x80,
        0xff,
        0x100,
        0x7fff,
        0x8000,
        0xffff,
        0x7fffffff,
        0x80000000,
        0xffffffff,
        0x100000000ull,
        0x7fffffffffffffffull,
        0x8000000000000000ull,
        ~0ull,
        0xfffffffffffffffeull,
        0x8080808080808080ull,
        0x0f0f0f0f0f0f0f0full,
    };
    switch (rndn(g, 8)) {
    case 0:
        return edges[rndn(g, sizeof(edges) / sizeof(edges[0]))];
    case 1:
        return edges[rndn(g, sizeof(edges) / sizeof(edges[0]))] ^ (rnd(g) & 0xff00000000ull);
    case 2:
        return rnd(g) & 0xff;
    case 3:
        return rnd(g) & 0xffff;
    case 4:
        return -(rnd(g) & 0xff);
    default:
        return rnd(g);
    }
}

static unsigned nregs(struct gen *g)
{
    return g->c->mode32 ? 8 : 16;
}

/* A register not reserved for addressing; RSP only when allow_sp. */
static unsigned rnd_reg(struct gen *g, bool allow_sp)
{
    for (;;) {
        unsigned r = rndn(g, nregs(g));
        if ((r == R_SP && !allow_sp) || (g->reserved & (1u << r))) {
            continue;
        }
        return r;
    }
}

static unsigned rnd_size(struct gen *g)
{
    static const unsigned s64[] = {1, 2, 4, 8};
    return g->c->mode32 ? s64[rndn(g, 3)] : s64[rndn(g, 4)];
}

/* Memory operand of `size` bytes somewhere in the data page (sometimes straddling its end, to
 * check #PF), through random base/index/scale/displacement. */
static void rnd_mem_at(struct gen *g, struct ins *in, unsigned size, uint64_t target)
{
    in->mem = true;
    in->has_modrm = true;
    if (!g->c->mode32 && chance(g, 8)) {
        in->base = 16; /* RIP-relative: disp fixed up when encoding */
        in->index = -1;
        in->imm = in->imm;          /* no change */
        in->disp = (int32_t)target; /* temporarily the absolute target */
        in->dispsz = 4;
        return;
    }
    unsigned b;
    do {
        b = rnd_reg(g, false);
    } while (b == R_SP);
    in->base = (int)b;
    in->index = -1;
    uint64_t idxpart = 0;
    if (chance(g, 40)) {
        unsigned i;
        do {
            i = rnd_reg(g, false);
        } while (i == b || i == R_SP);
        in->index = (int)i;
        in->scale = rndn(g, 4);
        uint64_t iv = rnd(g) % 64;
        if (chance(g, 30)) {
            iv = -iv; /* negative index */
        }
        if (g->c->mode32) {
            iv &= 0xffffffffu;
        }
        g->c->r[i] = iv;
        g->reserved |= 1u << i;
        idxpart = iv << in->scale;
    }
    switch (rndn(g, 3)) {
    case 0:
        in->dispsz = 0;
        in->disp = 0;
        break;
    case 1:
        in->dispsz = 1;
        in->disp = (int8_t)rnd(g);
        break;
    default:
        in->dispsz = 4;
        in->disp = (int32_t)(rnd(g) % 0x20000) - 0x10000;
        break;
    }
    uint64_t bv = target - idxpart - (uint64_t)(int64_t)in->disp;
    if (g->c->mode32) {
        bv &= 0xffffffffu;
    }
    g->c->r[b] = bv;
    g->reserved |= 1u << b;
    (void)size;
}

static uint64_t rnd_target(struct gen *g, unsigned size)
{
    if (chance(g, 3)) {
        /* straddle or leave the page: #PF on both sides */
        return chance(g, 50) ? ORC_DATA_VA + ORC_PAGE - size + 1 + rndn(g, size)
                             : ORC_DATA_VA - 1 - rndn(g, 8);
    }
    return ORC_DATA_VA + 0x100 + rndn(g, ORC_PAGE - 0x200);
}

static void rnd_mem(struct gen *g, struct ins *in, unsigned size)
{
    rnd_mem_at(g, in, size, rnd_target(g, size));
}

/* r/m operand: register (not reserved) or memory. */
static void rnd_rm(struct gen *g, struct ins *in, unsigned size, unsigned mem_pct)
{
    in->has_modrm = true;
    if (chance(g, mem_pct)) {
        rnd_mem(g, in, size);
    } else {
        in->mem = false;
        in->rm = rnd_reg(g, true);
    }
}

static void emit8(struct gen *g, uint8_t b)
{
    if (g->len < ORC_CODE_MAX) {
        g->c->code[g->len] = b;
    }
    g->len++;
}

static void emitn(struct gen *g, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        emit8(g, (uint8_t)(v >> (8 * i)));
    }
}

static void encode(struct gen *g, const struct ins *in)
{
    for (unsigned i = 0; i < in->npfx; i++) {
        emit8(g, in->pfx[i]);
    }
    unsigned rex = 0;
    if (!g->c->mode32) {
        rex = (in->rexw ? 8u : 0u) | ((in->reg >> 3) & 1u) << 2;
        if (in->has_modrm && in->mem) {
            if (in->index >= 0) {
                rex |= ((unsigned)in->index >> 3 & 1u) << 1;
            }
            if (in->base >= 0 && in->base < 16) {
                rex |= (unsigned)in->base >> 3 & 1u;
            }
        } else if (in->has_modrm) {
            rex |= in->rm >> 3 & 1u;
        } else {
            rex |= in->rm >> 3 & 1u; /* opcode+reg forms carry the register in rm */
        }
        if (rex || in->rex_force) {
            emit8(g, (uint8_t)(0x40 | rex));
        }
    }
    for (unsigned i = 0; i < in->nop; i++) {
        emit8(g, in->op[i]);
    }
    if (in->has_modrm) {
        unsigned reg = in->reg & 7;
        if (!in->mem) {
            emit8(g, (uint8_t)(0xc0 | reg << 3 | (in->rm & 7)));
        } else if (in->base == 16) {
            emit8(g, (uint8_t)(reg << 3 | 5));
            /* RIP-relative: disp = target - end of instruction */
            uint64_t end = ORC_CODE_VA + g->c->code_off + g->len + 4 + in->immsz;
            emitn(g, (uint64_t)((int64_t)in->disp - (int64_t)end), 4);
        } else {
            unsigned base = (unsigned)in->base & 7;
            unsigned mod = in->dispsz == 0 ? 0 : in->dispsz == 1 ? 1 : 2;
            if (mod == 0 && base == 5) {
                mod = 1; /* [rbp]/[r13] need a displacement: use disp8 = 0 */
            }
            if (in->index >= 0 || base == 4) {
                unsigned idx = in->index >= 0 ? ((unsigned)in->index & 7) : 4;
                emit8(g, (uint8_t)(mod << 6 | reg << 3 | 4));
                emit8(g, (uint8_t)(in->scale << 6 | idx << 3 | base));
            } else {
                emit8(g, (uint8_t)(mod << 6 | reg << 3 | base));
            }
            if (mod == 1) {
                emit8(g, (uint8_t)in->disp);
            } else if (mod == 2) {
                emitn(g, (uint32_t)in->disp, 4);
            }
        }
    }
    emitn(g, in->imm, in->immsz);
}

/* Fix up a memory operand whose displacement had to become disp8 = 0 with mod 0 + base 5:
 * encode() then used disp 0 while rnd_mem_at() assumed in->disp. Keep them in step. */
static void fix_mem(struct ins *in)
{
    if (in->mem && in->base >= 0 && in->base < 16 && in->dispsz == 0 && (in->base & 7) == 5) {
        in->dispsz = 1;
    }
}

static void size_prefix(struct gen *g, struct ins *in, unsigned size)
{
    if (size == 2) {
        in->pfx[in->npfx++] = 0x66;
    }
    if (size == 8) {
        in->rexw = true;
    }
    if (size == 1 && !g->c->mode32 && chance(g, 30)) {
        in->rex_force = true;
    }
}

static uint64_t imm_for(struct gen *g, unsigned immsz)
{
    uint64_t v = rnd_val(g);
    return immsz == 8 ? v : v & ((1ull << (8 * immsz)) - 1);
}

static void set_op(struct gen *g, unsigned map_op)
{
    g->c->opcode = (uint16_t)map_op;
}

static void finish_ins(struct gen *g, struct ins *in)
{
    fix_mem(in);
    encode(g, in);
}

static uint32_t shift_undef(unsigned grp, unsigned count, unsigned size)
{
    unsigned bits = size * 8;
    unsigned masked = count & (size == 8 ? 0x3f : 0x1f);
    if (masked == 0) {
        return 0;
    }
    uint32_t u = 0;
    if (grp <= 3) { /* ROL ROR RCL RCR: only CF and OF change */
        if (masked != 1) {
            u |= FL_OF;
        }
        return u;
    }
    u |= FL_AF;
    if (masked != 1) {
        u |= FL_OF;
    }
    if (grp != 7 && masked >= bits) { /* SHL/SHR: CF undefined when count >= width */
        u |= FL_CF;
    }
    return u;
}

/* ---- templates ---- */

/* ADD OR ADC SBB AND SUB XOR CMP in all forms. */
static void t_alu(struct gen *g)
{
    struct ins in = {0};
    unsigned aop = rndn(g, 8);
    unsigned size = rnd_size(g);
    unsigned form = rndn(g, 4);
    size_prefix(g, &in, size);
    in.nop = 1;
    if (form == 0) { /* op r/m, reg  (00 01) */
        in.op[0] = (uint8_t)(aop << 3 | (size == 1 ? 0 : 1));
        in.reg = rnd_reg(g, true);
        rnd_rm(g, &in, size, 50);
    } else if (form == 1) { /* op reg, r/m (02 03) */
        in.op[0] = (uint8_t)(aop << 3 | (size == 1 ? 2 : 3));
        rnd_rm(g, &in, size, 50);
        in.reg = rnd_reg(g, true);
    } else if (form == 2) { /* group 1: 80 81 83 */
        unsigned o = size == 1 ? 0x80 : (chance(g, 50) ? 0x83 : 0x81);
        in.op[0] = (uint8_t)o;
        in.reg = aop;
        rnd_rm(g, &in, size, 50);
        in.immsz = (o == 0x81) ? (size == 2 ? 2 : 4) : 1;
        in.imm = imm_for(g, in.immsz);
    } else { /* AL/eAX, imm (04 05) */
        in.op[0] = (uint8_t)(aop << 3 | (size == 1 ? 4 : 5));
        in.rm = 0;
        in.immsz = size == 1 ? 1 : size == 2 ? 2 : 4;
        in.imm = imm_for(g, in.immsz);
    }
    if (in.mem && aop != 7 && form != 1 && chance(g, 20)) {
        memmove(in.pfx + 1, in.pfx, in.npfx);
        in.pfx[0] = 0xf0; /* LOCK */
        in.npfx++;
    }
    set_op(g, in.op[0]);
    g->c->flags_undef = (aop == 1 || aop == 4 || aop == 6) ? FL_AF : 0;
    finish_ins(g, &in);
}

/* Chains of register ALU ops: lazy flags consumed by the next instruction (ADC/SBB/INC...). */
static void t_alu_chain(struct gen *g)
{
    unsigned n = 2 + rndn(g, 4);
    bool af_undef = false, af_ever = false; /* AF undefined at the end / at some point */
    for (unsigned k = 0; k < n; k++) {
        struct ins in = {0};
        unsigned size = rnd_size(g);
        size_prefix(g, &in, size);
        in.has_modrm = true;
        in.rm = rnd_reg(g, true);
        in.nop = 1;
        unsigned kind = rndn(g, 6);
        if (kind <= 2) {
            unsigned aop = rndn(g, 8);
            in.op[0] = (uint8_t)(aop << 3 | (size == 1 ? 0 : 1));
            in.reg = rnd_reg(g, true);
            af_undef = aop == 1 || aop == 4 || aop == 6;
        } else if (kind == 3) { /* INC/DEC/NOT/NEG */
            unsigned which = rndn(g, 4);
            if (which < 2) {
                in.op[0] = size == 1 ? 0xfe : 0xff;
                in.reg = which;
                af_undef = false;
            } else {
                in.op[0] = size == 1 ? 0xf6 : 0xf7;
                in.reg = which;
                if (which == 3) {
                    af_undef = false;
                }
            }
        } else if (kind == 4) { /* shift by 1 or CMC/STC/CLC */
            if (chance(g, 50)) {
                in.op[0] = size == 1 ? 0xd0 : 0xd1;
                in.reg = rndn(g, 8);
                if (in.reg >= 4) {
                    af_undef = true;
                }
            } else {
                static const uint8_t f[] = {0xf5, 0xf8, 0xf9};
                in = (struct ins){0};
                in.nop = 1;
                in.op[0] = f[rndn(g, 3)];
            }
        } else { /* SETcc / CMOVcc consume flags */
            if (chance(g, 50)) {
                in = (struct ins){0};
                in.has_modrm = true;
                in.rm = rnd_reg(g, true);
                in.rex_force = !g->c->mode32 && chance(g, 30);
                in.nop = 2;
                in.op[0] = 0x0f;
                in.op[1] = (uint8_t)(0x90 + rndn(g, 16));
            } else {
                if (size == 1) {
                    in.rexw = false;
                    in.rex_force = false;
                    in.npfx = 0;
                }
                in.nop = 2;
                in.op[0] = 0x0f;
                in.op[1] = (uint8_t)(0x40 + rndn(g, 16));
                in.reg = rnd_reg(g, true);
            }
        }
        af_ever |= af_undef;
        if (k == n - 1) {
            set_op(g, in.nop == 2 ? 0x100u | in.op[1] : in.op[0]);
        }
        finish_ins(g, &in);
    }
    /* a fetch fault mid-chain (second code page absent) stops where AF may be undefined */
    g->c->flags_undef = (af_undef || (g->c->code2_absent && af_ever)) ? FL_AF : 0;
}

/* INC DEC NOT NEG (FE/FF /0 /1, F6/F7 /2 /3), 40-4F in 32-bit mode. */
static void t_unary(struct gen *g)
{
    struct ins in = {0};
    unsigned size = rnd_size(g);
    if (g->c->mode32 && size != 1 && chance(g, 30)) {
        size_prefix(g, &in, size);
        in.nop = 1;
        in.op[0] = (uint8_t)(0x40 + rndn(g, 16));
        set_op(g, in.op[0]);
        finish_ins(g, &in);
        return;
    }
    size_prefix(g, &in, size);
    unsigned which = rndn(g, 4);
    in.nop = 1;
    in.op[0] = which < 2 ? (size == 1 ? 0xfe : 0xff) : (size == 1 ? 0xf6 : 0xf7);
    in.reg = which;
    rnd_rm(g, &in, size, 40);
    if (in.mem && chance(g, 20)) {
        memmove(in.pfx + 1, in.pfx, in.npfx);
        in.pfx[0] = 0xf0;
        in.npfx++;
    }
    set_op(g, in.op[0]);
    finish_ins(g, &in);
}

/* TEST 84/85, A8/A9, F6/F7 /0. */
static void t_test(struct gen *g)
{
    struct ins in = {0};
    unsigned size = rnd_size(g);
    size_prefix(g, &in, size);
    in.nop = 1;
    switch (rndn(g, 3)) {
    case 0:
        in.op[0] = size == 1 ? 0x84 : 0x85;
        in.reg = rnd_reg(g, true);
        rnd_rm(g, &in, size, 40);
        break;
    case 1:
        in.op[0] = size == 1 ? 0xa8 : 0xa9;
        in.immsz = size == 1 ? 1 : size == 2 ? 2 : 4;
        in.imm = imm_for(g, in.immsz);
        break;
    default:
        in.op[0] = size == 1 ? 0xf6 : 0xf7;
        in.reg = 0;
        rnd_rm(g, &in, size, 40);
        in.immsz = size == 1 ? 1 : size == 2 ? 2 : 4;
        in.imm = imm_for(g, in.immsz);
        break;
    }
    set_op(g, in.op[0]);
    g->c->flags_undef = FL_AF;
    finish_ins(g, &in);
}

static unsigned rnd_count(struct gen *g)
{
    return chance(g, 30) ? rndn(g, 3) : rndn(g, 71);
}

/* ROL ROR RCL RCR SHL SHR SAL SAR by 1, CL and imm8 with counts 0..70. */
static void t_shift(struct gen *g)
{
    struct ins in = {0};
    unsigned size = rnd_size(g);
    size_prefix(g, &in, size);
    unsigned grp = rndn(g, 8);
    unsigned form = rndn(g, 3);
    unsigned count;
    in.nop = 1;
    in.reg = grp;
    if (form == 0) {
        in.op[0] = size == 1 ? 0xd0 : 0xd1;
        count = 1;
    } else if (form == 1) {
        in.op[0] = size == 1 ? 0xd2 : 0xd3;
        count = rnd_count(g);
        g->c->r[R_CX] = (rnd(g) & ~0xffull) | count;
        g->reserved |= 1u << R_CX;
    } else {
        in.op[0] = size == 1 ? 0xc0 : 0xc1;
        count = rnd_count(g);
        in.immsz = 1;
        in.imm = count;
    }
    rnd_rm(g, &in, size, 30);
    if (grp == 6) {
        grp = 4; /* SAL alias */
    }
    g->c->flags_undef = shift_undef(grp, count, size);
    set_op(g, in.op[0]);
    finish_ins(g, &in);
}

/* SHLD/SHRD imm8 and CL (0F A4 A5 AC AD). Counts beyond the operand size are undefined. */
static void t_shxd(struct gen *g)
{
    struct ins in = {0};
    static const unsigned sz[] = {2, 4, 8};
    unsigned size = sz[rndn(g, g->c->mode32 ? 2 : 3)];
    size_prefix(g, &in, size);
    unsigned count = rndn(g, size == 2 ? 17 : 64);
    if (size == 4) {
        count = rndn(g, 64); /* masked to 5 bits: always defined */
    }
    bool cl = chance(g, 50);
    in.nop = 2;
    in.op[0] = 0x0f;
    in.op[1] = (uint8_t)((chance(g, 50) ? 0xa4 : 0xac) + (cl ? 1 : 0));
    in.reg = rnd_reg(g, true);
    if (cl) {
        g->c->r[R_CX] = (rnd(g) & ~0xffull) | count;
        g->reserved |= 1u << R_CX;
    } else {
        in.immsz = 1;
        in.imm = count;
    }
    rnd_rm(g, &in, size, 30);
    unsigned masked = count & (size == 8 ? 63 : 31);
    g->c->flags_undef = masked == 0 ? 0 : (FL_AF | (masked != 1 ? FL_OF : 0));
    set_op(g, 0x100u | in.op[1]);
    finish_ins(g, &in);
}

/* MUL IMUL DIV IDIV (F6/F7 /4-/7), IMUL r, r/m (0F AF), IMUL r, r/m, imm (69 6B). */
static void t_muldiv(struct gen *g)
{
    struct ins in = {0};
    unsigned size = rnd_size(g);
    unsigned form = rndn(g, 3);
    size_prefix(g, &in, size);
    if (form == 0 || size == 1) {
        unsigned grp = 4 + rndn(g, 4);
        in.nop = 1;
        in.op[0] = size == 1 ? 0xf6 : 0xf7;
        in.reg = grp;
        g->reserved |= (1u << R_AX) | (1u << R_DX);
        if (grp >= 6 && chance(g, 70)) {
            /* keep most divisions in range: high half small relative to divisor */
            uint64_t dx = rnd(g) & 0xff;
            if (grp == 7 && chance(g, 50)) {
                dx = ~0ull; /* negative dividend */
            }
            g->c->r[R_DX] = dx;
            if (size == 1) {
                g->c->r[R_AX] = (g->c->r[R_AX] & ~0xff00ull) | ((dx & 0xff) << 8);
            }
        }
        rnd_rm(g, &in, size, 40);
        if (!in.mem && (in.rm == R_AX || in.rm == R_DX) && grp >= 6) {
            /* fine: divisor aliases the dividend (still deterministic) */
        }
        g->c->flags_undef = grp >= 6 ? FL_ALL : (FL_SF | FL_ZF | FL_AF | FL_PF);
        set_op(g, in.op[0]);
    } else if (form == 1) {
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = 0xaf;
        in.reg = rnd_reg(g, true);
        rnd_rm(g, &in, size, 40);
        g->c->flags_undef = FL_SF | FL_ZF | FL_AF | FL_PF;
        set_op(g, 0x1af);
    } else {
        in.nop = 1;
        bool b = chance(g, 50);
        in.op[0] = b ? 0x6b : 0x69;
        in.reg = rnd_reg(g, true);
        rnd_rm(g, &in, size, 40);
        in.immsz = b ? 1 : (size == 2 ? 2 : 4);
        in.imm = imm_for(g, in.immsz);
        g->c->flags_undef = FL_SF | FL_ZF | FL_AF | FL_PF;
        set_op(g, in.op[0]);
    }
    finish_ins(g, &in);
}

/* BT BTS BTR BTC with register and immediate bit offsets, register and memory bases. */
static void t_bt(struct gen *g)
{
    struct ins in = {0};
    static const unsigned sz[] = {2, 4, 8};
    unsigned size = sz[rndn(g, g->c->mode32 ? 2 : 3)];
    size_prefix(g, &in, size);
    unsigned which = rndn(g, 4);
    in.nop = 2;
    in.op[0] = 0x0f;
    if (chance(g, 50)) {
        in.op[1] = (uint8_t)(0xa3 + 8 * which);
        unsigned r = rnd_reg(g, false);
        in.reg = r;
        /* the bit offset register addresses memory beyond the operand: keep it near */
        int64_t off = (int64_t)(rnd(g) % 4096) - 1024;
        if (!chance(g, 60)) {
            off = (int64_t)rnd_val(g);
        }
        g->c->r[r] = (uint64_t)off;
        g->reserved |= 1u << r;
        if (chance(g, 50)) {
            /* memory: the target must stay in the page for every offset we chose */
            uint64_t bits = (uint64_t)off;
            int64_t byteoff = size == 2   ? (int64_t)(int16_t)bits >> 3
                              : size == 4 ? (int64_t)(int32_t)bits >> 3
                                          : (int64_t)bits >> 3;
            byteoff &= ~(int64_t)(size - 1);
            if (byteoff < -1024 || byteoff > 1024) {
                g->c->r[r] = (uint64_t)(rnd(g) % 4096) - 1024;
                bits = g->c->r[r];
                byteoff = (size == 2   ? (int64_t)(int16_t)bits
                           : size == 4 ? (int64_t)(int32_t)bits
                                       : (int64_t)bits) >>
                          3;
                byteoff &= ~(int64_t)(size - 1);
            }
            uint64_t t = ORC_DATA_VA + 0x400 + rndn(g, 0x800);
            rnd_mem_at(g, &in, size, t - (uint64_t)byteoff);
        } else {
            in.has_modrm = true;
            in.rm = rnd_reg(g, true);
        }
    } else {
        in.op[1] = 0xba;
        in.reg = 4 + which;
        rnd_rm(g, &in, size, 40);
        in.immsz = 1;
        in.imm = rnd(g) & 0xff;
    }
    if (in.mem && which && chance(g, 20)) {
        memmove(in.pfx + 1, in.pfx, in.npfx);
        in.pfx[0] = 0xf0;
        in.npfx++;
    }
    g->c->flags_undef = FL_OF | FL_SF | FL_AF | FL_PF;
    set_op(g, 0x100u | in.op[1]);
    finish_ins(g, &in);
}

/* BSF BSR (0F BC BD), POPCNT (F3 0F B8). */
static void t_bitscan(struct gen *g)
{
    struct ins in = {0};
    static const unsigned sz[] = {2, 4, 8};
    unsigned size = sz[rndn(g, g->c->mode32 ? 2 : 3)];
    unsigned which = rndn(g, (g->f1_ecx & ORC_F1_POPCNT) ? 3 : 2);
    if (which == 2) {
        in.pfx[in.npfx++] = 0xf3;
    }
    size_prefix(g, &in, size);
    in.nop = 2;
    in.op[0] = 0x0f;
    in.op[1] = which == 0 ? 0xbc : which == 1 ? 0xbd : 0xb8;
    in.reg = rnd_reg(g, true);
    rnd_rm(g, &in, size, 40);
    if (!in.mem && chance(g, 20)) {
        g->c->r[in.rm] = 0;
    }
    g->c->flags_undef = which == 2 ? 0 : (FL_CF | FL_OF | FL_SF | FL_AF | FL_PF);
    set_op(g, 0x100u | in.op[1]);
    finish_ins(g, &in);
}

/* MOVZX MOVSX (0F B6 B7 BE BF), MOVSXD (63, 64-bit mode). */
static void t_movx(struct gen *g)
{
    struct ins in = {0};
    static const unsigned sz[] = {2, 4, 8};
    unsigned size = sz[rndn(g, g->c->mode32 ? 2 : 3)];
    bool movsxd = !g->c->mode32 && chance(g, 25);
    if (movsxd && size == 2) {
        size = 4; /* 66 63: AMD reads 32 bits, Intel 16 (docs/cpu-oracle.md) */
    }
    size_prefix(g, &in, size);
    in.reg = rnd_reg(g, true);
    if (movsxd) {
        in.nop = 1;
        in.op[0] = 0x63;
        rnd_rm(g, &in, 4, 40);
        set_op(g, 0x63);
    } else {
        unsigned o = rndn(g, 4);
        static const uint8_t ops[] = {0xb6, 0xb7, 0xbe, 0xbf};
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = ops[o];
        rnd_rm(g, &in, (o & 1) ? 2 : 1, 40);
        if (!(o & 1) && !g->c->mode32 && chance(g, 30)) {
            in.rex_force = true;
        }
        set_op(g, 0x100u | in.op[1]);
    }
    finish_ins(g, &in);
}

/* CMOVcc and SETcc over random flags. */
static void t_cc(struct gen *g)
{
    struct ins in = {0};
    unsigned cc = rndn(g, 16);
    in.nop = 2;
    in.op[0] = 0x0f;
    if (chance(g, 50)) {
        static const unsigned sz[] = {2, 4, 8};
        unsigned size = sz[rndn(g, g->c->mode32 ? 2 : 3)];
        size_prefix(g, &in, size);
        in.op[1] = (uint8_t)(0x40 + cc);
        in.reg = rnd_reg(g, true);
        rnd_rm(g, &in, size, 40);
    } else {
        in.op[1] = (uint8_t)(0x90 + cc);
        in.reg = rndn(g, 8);
        rnd_rm(g, &in, 1, 30);
        if (!g->c->mode32 && chance(g, 30)) {
            in.rex_force = true;
        }
    }
    set_op(g, 0x100u | in.op[1]);
    finish_ins(g, &in);
}

/* Jcc rel8/rel32, JMP rel8/rel32, LOOP/LOOPE/LOOPNE/JrCXZ: taken skips one INC. */
static void t_branch(struct gen *g)
{
    unsigned kind = rndn(g, 4);
    unsigned cc = rndn(g, 16);
    uint8_t skip[] = {0xff, 0xc0}; /* inc eax */
    switch (kind) {
    case 0:
        emit8(g, (uint8_t)(0x70 + cc));
        emit8(g, 2);
        set_op(g, 0x70u + cc);
        break;
    case 1:
        emit8(g, 0x0f);
        emit8(g, (uint8_t)(0x80 + cc));
        emitn(g, 2, 4);
        set_op(g, 0x180u + cc);
        break;
    case 2: {
        unsigned o = rndn(g, 4); /* E0 LOOPNE E1 LOOPE E2 LOOP E3 JrCXZ */
        g->c->r[R_CX] = chance(g, 50) ? rndn(g, 3) : rnd_val(g);
        if (chance(g, 30)) {
            emit8(g, 0x67); /* ECX (CX in 32-bit mode) as the counter */
        }
        emit8(g, (uint8_t)(0xe0 + o));
        emit8(g, 2);
        set_op(g, 0xe0u + o);
        break;
    }
    default:
        if (chance(g, 50)) {
            emit8(g, 0xeb);
            emit8(g, 2);
            set_op(g, 0xeb);
        } else {
            emit8(g, 0xe9);
            emitn(g, 2, 4);
            set_op(g, 0xe9);
        }
        break;
    }
    emit8(g, skip[0]);
    emit8(g, skip[1]);
}

/* CMPXCHG XADD XCHG (incl. 90+r), CMPXCHG8B/16B. */
static void t_xchg(struct gen *g)
{
    struct ins in = {0};
    unsigned size = rnd_size(g);
    unsigned kind = rndn(g, 5);
    if (kind == 4) {
        bool b16 = !g->c->mode32 && (g->f1_ecx & ORC_F1_CX16) && chance(g, 50);
        if (b16) {
            in.rexw = true;
        }
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = 0xc7;
        in.reg = 1;
        g->reserved |= (1u << R_AX) | (1u << R_DX) | (1u << R_BX) | (1u << R_CX);
        uint64_t t = ORC_DATA_VA + 0x100 + (rndn(g, 0xd00) & ~(b16 ? 15u : 7u));
        if (b16 && chance(g, 5)) {
            t += 8; /* misaligned: #GP */
        }
        rnd_mem_at(g, &in, b16 ? 16 : 8, t);
        if (chance(g, 50)) {
            /* make the compare succeed: EDX:EAX = memory (from the data page pattern) */
            uint8_t page[ORC_PAGE];
            orc_fill_data(g->c->seed, page);
            uint64_t lo, hi;
            memcpy(&lo, page + (t - ORC_DATA_VA), 8);
            memcpy(&hi, page + (t - ORC_DATA_VA) + 8, 8);
            if (b16) {
                g->c->r[R_AX] = lo;
                g->c->r[R_DX] = hi;
            } else {
                g->c->r[R_AX] = (uint32_t)lo;
                g->c->r[R_DX] = lo >> 32;
            }
        }
        if (chance(g, 30)) {
            in.pfx[in.npfx++] = 0xf0;
        }
        set_op(g, 0x1c7);
        finish_ins(g, &in);
        return;
    }
    size_prefix(g, &in, size);
    if (kind == 3 && size != 1) {
        in.nop = 1;
        unsigned r = rnd_reg(g, true);
        in.op[0] = (uint8_t)(0x90 + (r & 7));
        in.rm = r;
        if (r == 0 && !in.rexw && size == 4 && !g->c->mode32) {
            in.rex_force = false; /* 90 is NOP; xchg eax,eax with no REX.B */
        }
        set_op(g, 0x90);
        finish_ins(g, &in);
        return;
    }
    in.reg = rnd_reg(g, true);
    if (kind == 0) {
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = size == 1 ? 0xb0 : 0xb1;
        g->reserved |= 1u << R_AX;
        if (chance(g, 50)) {
            g->c->r[R_AX] = g->c->r[in.reg]; /* often equal when rm is the same reg */
        }
        set_op(g, 0x100u | in.op[1]);
    } else if (kind == 1) {
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = size == 1 ? 0xc0 : 0xc1;
        set_op(g, 0x100u | in.op[1]);
    } else {
        in.nop = 1;
        in.op[0] = size == 1 ? 0x86 : 0x87;
        set_op(g, in.op[0]);
    }
    rnd_rm(g, &in, size, 50);
    if (in.mem && chance(g, 30)) {
        memmove(in.pfx + 1, in.pfx, in.npfx);
        in.pfx[0] = 0xf0;
        in.npfx++;
    }
    finish_ins(g, &in);
}

/* CMC CLC STC CLD STD SAHF LAHF CBW/CWDE/CDQE CWD/CDQ/CQO, XLAT, NOP forms. */
static void t_misc(struct gen *g)
{
    static const uint8_t ops[] = {0xf5, 0xf8, 0xf9, 0xfc, 0xfd, 0x9e, 0x9f, 0x98, 0x99, 0xd7, 0x90};
    unsigned k = rndn(g, sizeof(ops) + 2);
    if (k == sizeof(ops)) { /* 0F 1F /0 long NOP with a memory form (no access) */
        struct ins in = {0};
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = 0x1f;
        in.has_modrm = true;
        in.mem = true;
        in.base = (int)rnd_reg(g, false);
        in.index = -1;
        in.dispsz = 4;
        in.disp = (int32_t)rnd(g);
        if (chance(g, 30)) {
            in.pfx[in.npfx++] = 0x66;
        }
        set_op(g, 0x11f);
        finish_ins(g, &in);
        return;
    }
    if (k == sizeof(ops) + 1) { /* PAUSE */
        emit8(g, 0xf3);
        emit8(g, 0x90);
        set_op(g, 0x90);
        return;
    }
    uint8_t o = ops[k];
    if (o == 0x98 || o == 0x99) {
        unsigned size = g->c->mode32 ? 2 + 2 * rndn(g, 2) : 2u << rndn(g, 3);
        if (size == 2) {
            emit8(g, 0x66);
        } else if (size == 8) {
            emit8(g, 0x48);
        }
    }
    if (o == 0xd7) { /* XLAT: [rBX + AL] */
        uint64_t t = ORC_DATA_VA + 0x100 + rndn(g, 0xd00);
        g->c->r[R_BX] = t - (g->c->r[R_AX] & 0xff);
        if (g->c->mode32) {
            g->c->r[R_BX] &= 0xffffffffu;
        }
    }
    emit8(g, o);
    set_op(g, o);
}

/* LEA with every addressing form (no memory access: base values are arbitrary). */
static void t_lea(struct gen *g)
{
    struct ins in = {0};
    static const unsigned sz[] = {2, 4, 8};
    unsigned size = sz[rndn(g, g->c->mode32 ? 2 : 3)];
    size_prefix(g, &in, size);
    if (chance(g, 20)) {
        in.pfx[in.npfx++] = 0x67; /* 32-bit (or 16-bit) address size */
    }
    in.nop = 1;
    in.op[0] = 0x8d;
    in.reg = rnd_reg(g, true);
    in.has_modrm = true;
    in.mem = true;
    in.base = chance(g, 10) ? -1 : (int)rnd_reg(g, true);
    in.index = chance(g, 50) ? (int)rnd_reg(g, false) : -1;
    in.scale = rndn(g, 4);
    in.dispsz = rndn(g, 3) == 0 ? 0 : (chance(g, 50) ? 1 : 4);
    in.disp = in.dispsz == 1 ? (int8_t)rnd(g) : (int32_t)rnd(g);
    if (in.npfx > 0 && in.pfx[in.npfx - 1] == 0x67 && g->c->mode32) {
        /* 16-bit addressing has its own ModRM table: emit it by hand */
        g->len = 0;
        for (unsigned i = 0; i < in.npfx; i++) {
            emit8(g, in.pfx[i]);
        }
        emit8(g, 0x8d);
        unsigned mod = rndn(g, 3);
        unsigned rm = rndn(g, 8);
        emit8(g, (uint8_t)(mod << 6 | (in.reg & 7) << 3 | rm));
        emitn(g, rnd(g), mod == 1 ? 1 : (mod == 2 || rm == 6) ? 2 : 0);
        set_op(g, 0x8d);
        return;
    }
    if (in.base < 0) {
        /* no base: SIB with base 101 and mod 00 means disp32 only */
        in.base = -1;
    }
    if (in.base < 0) {
        /* encode [index*scale + disp32] (or [disp32] via SIB) manually */
        for (unsigned i = 0; i < in.npfx; i++) {
            emit8(g, in.pfx[i]);
        }
        unsigned idx = in.index >= 0 ? (unsigned)in.index : 4;
        if (!g->c->mode32) {
            unsigned rex = (size == 8 ? 8u : 0u) | (in.reg >> 3 & 1u) << 2 | (idx >> 3 & 1u) << 1;
            if (rex) {
                emit8(g, (uint8_t)(0x40 | rex));
            }
        }
        emit8(g, 0x8d);
        emit8(g, (uint8_t)((in.reg & 7) << 3 | 4));
        emit8(g, (uint8_t)(in.scale << 6 | (idx & 7) << 3 | 5));
        emitn(g, (uint32_t)in.disp, 4);
        set_op(g, 0x8d);
        return;
    }
    set_op(g, 0x8d);
    finish_ins(g, &in);
}

/* MOV forms: 88-8B, C6/C7, B0-BF (incl. MOVABS), A0-A3 moffs. */
static void t_mov(struct gen *g)
{
    struct ins in = {0};
    unsigned size = rnd_size(g);
    unsigned form = rndn(g, 5);
    size_prefix(g, &in, size);
    in.nop = 1;
    if (form <= 1) {
        in.op[0] = (uint8_t)(0x88 + (form ? 2 : 0) + (size == 1 ? 0 : 1));
        in.reg = rnd_reg(g, true);
        rnd_rm(g, &in, size, 50);
    } else if (form == 2) {
        in.op[0] = size == 1 ? 0xc6 : 0xc7;
        in.reg = 0;
        rnd_rm(g, &in, size, 50);
        in.immsz = size == 1 ? 1 : size == 2 ? 2 : 4;
        in.imm = imm_for(g, in.immsz);
    } else if (form == 3) {
        unsigned r = rnd_reg(g, true);
        in.op[0] = (uint8_t)((size == 1 ? 0xb0 : 0xb8) + (r & 7));
        in.rm = r;
        in.immsz = size;
        in.imm = imm_for(g, size);
    } else {
        unsigned dir = rndn(g, 2);
        in.op[0] = (uint8_t)(0xa0 + dir * 2 + (size == 1 ? 0 : 1));
        in.rm = 0;
        in.immsz = g->c->mode32 ? 4 : 8;
        in.imm = ORC_DATA_VA + 0x100 + rndn(g, 0xd00);
    }
    set_op(g, in.op[0]);
    finish_ins(g, &in);
}

/* PUSH/POP reg, imm, r/m; PUSHF/POPF; CALL/RET; ENTER/LEAVE; PUSHA/POPA (32-bit). */
static void t_stack(struct gen *g)
{
    struct orc_case *c = g->c;
    unsigned kind = rndn(g, 9);
    c->r[R_SP] = ORC_DATA_VA + 0x800 + 8 * rndn(g, 64);
    if (chance(g, 2)) {
        c->r[R_SP] = ORC_DATA_VA + rndn(g, 3) * 4; /* push faults (#PF) */
    }
    g->reserved |= 1u << R_SP;
    bool o16 = chance(g, 15);
    switch (kind) {
    case 0: { /* PUSH/POP reg */
        unsigned r = rnd_reg(g, true);
        if (o16) {
            emit8(g, 0x66);
        }
        if (r >= 8) {
            emit8(g, 0x41);
        }
        uint8_t o = (uint8_t)((chance(g, 50) ? 0x50 : 0x58) + (r & 7));
        emit8(g, o);
        set_op(g, o & 0xf8);
        break;
    }
    case 1: /* PUSH imm */
        if (o16) {
            emit8(g, 0x66);
        }
        if (chance(g, 50)) {
            emit8(g, 0x6a);
            emit8(g, (uint8_t)rnd(g));
            set_op(g, 0x6a);
        } else {
            emit8(g, 0x68);
            emitn(g, rnd_val(g), o16 ? 2 : 4);
            set_op(g, 0x68);
        }
        break;
    case 2: { /* PUSH r/m (FF /6), POP r/m (8F /0) */
        struct ins in = {0};
        if (o16) {
            in.pfx[in.npfx++] = 0x66;
        }
        bool push = chance(g, 50);
        in.nop = 1;
        in.op[0] = push ? 0xff : 0x8f;
        in.reg = push ? 6 : 0;
        rnd_rm(g, &in, 8, 60);
        set_op(g, in.op[0]);
        finish_ins(g, &in);
        break;
    }
    case 3: /* PUSHF / POPF with a flags image without TF/AC/IF changes */
        if (chance(g, 50)) {
            emit8(g, 0x9c);
            set_op(g, 0x9c);
        } else {
            uint8_t page[ORC_PAGE];
            orc_fill_data(c->seed, page);
            (void)page;
            /* POPF reads the data page: put a harmless value there via a preceding push */
            emit8(g, 0x68);
            emitn(g, (rnd(g) & 0xcd5u) | 0x202u, 4);
            emit8(g, 0x9d);
            set_op(g, 0x9d);
        }
        break;
    case 4: /* CALL rel32; JMP over; RET / RET imm16 */
        emit8(g, 0xe8);
        emitn(g, 2, 4);
        emit8(g, 0xeb);
        emit8(g, chance(g, 50) ? 1 : 3);
        if (g->c->code[g->len - 1] == 1) {
            emit8(g, 0xc3);
            set_op(g, 0xc3);
        } else {
            emit8(g, 0xc2);
            emitn(g, rndn(g, 5) * 8, 2);
            set_op(g, 0xc2);
        }
        break;
    case 5: /* CALL r/m indirect to the next instruction */
        if (!c->mode32) {
            unsigned r = rnd_reg(g, false);
            g->reserved |= 1u << r;
            c->r[r] = ORC_CODE_VA + (r >= 8 ? 3 : 2);
            if (r >= 8) {
                emit8(g, 0x41);
            }
            emit8(g, 0xff);
            emit8(g, (uint8_t)(0xd0 | (r & 7)));
            set_op(g, 0xff);
        } else {
            unsigned r = rnd_reg(g, false);
            c->r[r] = ORC_CODE_VA + 2;
            emit8(g, 0xff);
            emit8(g, (uint8_t)(0xd0 | (r & 7)));
            set_op(g, 0xff);
        }
        break;
    case 6: /* ENTER imm16, level; LEAVE */
        c->r[R_BP] = ORC_DATA_VA + 0x400 + 8 * rndn(g, 64);
        if (c->mode32) {
            c->r[R_BP] &= 0xffffffffu;
        }
        if (chance(g, 60)) {
            if (o16) {
                emit8(g, 0x66);
            }
            emit8(g, 0xc8);
            emitn(g, rndn(g, 64), 2);
            emit8(g, (uint8_t)rndn(g, 4));
            set_op(g, 0xc8);
        } else {
            emit8(g, 0xc9);
            set_op(g, 0xc9);
        }
        break;
    case 7: /* PUSHA/POPA (32-bit) or PUSH/POP FS-free forms */
        if (c->mode32) {
            uint8_t o = chance(g, 50) ? 0x60 : 0x61;
            if (o16) {
                emit8(g, 0x66);
            }
            emit8(g, o);
            set_op(g, o);
        } else {
            emit8(g, 0x50);
            emit8(g, 0x58 + rndn(g, 8));
            set_op(g, 0x58);
        }
        break;
    default: { /* LEAVE after a pushed frame */
        emit8(g, 0x55);
        if (!c->mode32) {
            emit8(g, 0x48);
        }
        emit8(g, 0x89);
        emit8(g, 0xe5); /* mov rbp, rsp */
        emit8(g, 0xc9);
        set_op(g, 0xc9);
        break;
    }
    }
    if (c->mode32) {
        c->r[R_SP] &= 0xffffffffu;
    }
}

/* MOVS CMPS STOS LODS SCAS with REP/REPE/REPNE, both directions, small counts. */
static void t_string(struct gen *g)
{
    struct orc_case *c = g->c;
    static const uint8_t ops[] = {0xa4, 0xa6, 0xaa, 0xac, 0xae};
    uint8_t o = (uint8_t)(ops[rndn(g, 5)] + rndn(g, 2));
    unsigned size = (o & 1) ? (c->mode32 ? 2u << rndn(g, 2) : 2u << rndn(g, 3)) : 1;
    unsigned rep = rndn(g, 3); /* none, F3, F2 */
    uint64_t count = rndn(g, 9);
    bool a32 = !c->mode32 && chance(g, 10);
    if (a32 && chance(g, 50)) {
        count |= 0xdead00000000ull; /* high bits ignored with a 32-bit counter */
    }
    bool down = chance(g, 50);
    c->rflags = (c->rflags & ~0x400ull) | (down ? 0x400u : 0);
    c->r[R_CX] = count;
    uint64_t si = ORC_DATA_VA + 0x200 + rndn(g, 0xb00);
    uint64_t di = ORC_DATA_VA + 0x200 + rndn(g, 0xb00);
    if (chance(g, 20)) {
        di = si + (chance(g, 50) ? size : -(uint64_t)size) * rndn(g, 3); /* overlap */
    }
    if (chance(g, 3)) {
        di = ORC_DATA_VA + ORC_PAGE - size * rndn(g, 3); /* runs off the page: #PF midway */
    }
    c->r[R_SI] = si;
    c->r[R_DI] = di;
    g->reserved |= (1u << R_CX) | (1u << R_SI) | (1u << R_DI);
    if (o == 0xa6 || o == 0xa7) {
        /* make CMPS compare equal some of the time */
    }
    if (a32) {
        emit8(g, 0x67);
    }
    if (rep == 1) {
        emit8(g, 0xf3);
    } else if (rep == 2) {
        emit8(g, 0xf2);
    }
    if (size == 2) {
        emit8(g, 0x66);
    } else if (size == 8) {
        emit8(g, 0x48);
    }
    emit8(g, o);
    set_op(g, o);
    c->flags_undef = 0;
}

/* BSWAP, MOVBE. */
static void t_bswap(struct gen *g)
{
    struct ins in = {0};
    if (chance(g, 50) || !(g->f1_ecx & ORC_F1_MOVBE)) {
        unsigned r = rnd_reg(g, true);
        bool w = !g->c->mode32 && chance(g, 50);
        in.rexw = w;
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = (uint8_t)(0xc8 + (r & 7));
        in.rm = r;
        set_op(g, 0x1c8);
        finish_ins(g, &in);
        return;
    }
    unsigned size = 2u << rndn(g, g->c->mode32 ? 2 : 3);
    size_prefix(g, &in, size);
    in.nop = 3;
    in.op[0] = 0x0f;
    in.op[1] = 0x38;
    in.op[2] = (uint8_t)(0xf0 + rndn(g, 2));
    in.reg = rnd_reg(g, true);
    rnd_mem(g, &in, size);
    set_op(g, 0x200u | in.op[2]);
    finish_ins(g, &in);
}

/* DAA DAS AAA AAS AAM AAD (32-bit mode only). */
static void t_bcd(struct gen *g)
{
    static const uint8_t ops[] = {0x27, 0x2f, 0x37, 0x3f, 0xd4, 0xd5};
    uint8_t o = ops[rndn(g, 6)];
    emit8(g, o);
    set_op(g, o);
    switch (o) {
    case 0x27:
    case 0x2f:
        g->c->flags_undef = FL_OF;
        break;
    case 0x37:
    case 0x3f:
        g->c->flags_undef = FL_OF | FL_SF | FL_ZF | FL_PF;
        break;
    default:
        emit8(g, chance(g, 70) ? 10 : (uint8_t)rndn(g, 20)); /* base; 0 gives AAM #DE */
        g->c->flags_undef = FL_OF | FL_AF | FL_CF;
        break;
    }
}

/* ---- SSE / MMX ---- */

enum { SF_XX, SF_XXR, SF_XXI, SF_XG, SF_XGI, SF_GX, SF_GXI, SF_XGS, SF_XGSI, SF_SHIFTI, SF_CRC };
#define PN 1u /* no prefix (MMX form for integer opcodes) */
#define P66 2u
#define PF3 4u
#define PF2 8u
#define SX_MEM 0x10u /* r/m must be memory */
#define SX_REG 0x20u /* r/m must be a register */
#define SX_MMX 0x40u /* the no-prefix form is MMX (mm registers) */

struct sse_op {
    uint16_t op;   /* map | opcode */
    uint8_t pfx;   /* allowed mandatory prefixes */
    uint8_t form;  /* SF_* */
    uint8_t flags; /* SX_* */
};

static const struct sse_op sse_ops[] = {
    {0x110, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x111, PN | P66 | PF3 | PF2, SF_XXR, 0},
    {0x112, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x113, PN | P66, SF_XXR, SX_MEM},
    {0x114, PN | P66, SF_XX, 0},
    {0x115, PN | P66, SF_XX, 0},
    {0x116, PN | P66 | PF3, SF_XX, 0},
    {0x117, PN | P66, SF_XXR, SX_MEM},
    {0x128, PN | P66, SF_XX, 0},
    {0x129, PN | P66, SF_XXR, 0},
    {0x12a, PF3 | PF2, SF_XG, 0},
    {0x12b, PN | P66, SF_XXR, SX_MEM},
    {0x12c, PF3 | PF2, SF_GX, 0},
    {0x12d, PF3 | PF2, SF_GX, 0},
    {0x12e, PN | P66, SF_XX, 0},
    {0x12f, PN | P66, SF_XX, 0},
    {0x150, PN | P66, SF_GX, SX_REG},
    {0x151, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x154, PN | P66, SF_XX, 0},
    {0x155, PN | P66, SF_XX, 0},
    {0x156, PN | P66, SF_XX, 0},
    {0x157, PN | P66, SF_XX, 0},
    {0x158, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x159, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x15a, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x15b, PN | P66 | PF3, SF_XX, 0},
    {0x15c, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x15d, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x15e, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x15f, PN | P66 | PF3 | PF2, SF_XX, 0},
    {0x160, PN | P66, SF_XX, SX_MMX},
    {0x161, PN | P66, SF_XX, SX_MMX},
    {0x162, PN | P66, SF_XX, SX_MMX},
    {0x163, PN | P66, SF_XX, SX_MMX},
    {0x164, PN | P66, SF_XX, SX_MMX},
    {0x165, PN | P66, SF_XX, SX_MMX},
    {0x166, PN | P66, SF_XX, SX_MMX},
    {0x167, PN | P66, SF_XX, SX_MMX},
    {0x168, PN | P66, SF_XX, SX_MMX},
    {0x169, PN | P66, SF_XX, SX_MMX},
    {0x16a, PN | P66, SF_XX, SX_MMX},
    {0x16b, PN | P66, SF_XX, SX_MMX},
    {0x16c, P66, SF_XX, 0},
    {0x16d, P66, SF_XX, 0},
    {0x16e, PN | P66, SF_XG, SX_MMX},
    {0x16f, PN | P66 | PF3, SF_XX, SX_MMX},
    {0x170, PN | P66 | PF3 | PF2, SF_XXI, SX_MMX},
    {0x171, PN | P66, SF_SHIFTI, SX_MMX | SX_REG},
    {0x172, PN | P66, SF_SHIFTI, SX_MMX | SX_REG},
    {0x173, PN | P66, SF_SHIFTI, SX_MMX | SX_REG},
    {0x174, PN | P66, SF_XX, SX_MMX},
    {0x175, PN | P66, SF_XX, SX_MMX},
    {0x176, PN | P66, SF_XX, SX_MMX},
    {0x17c, P66 | PF2, SF_XX, 0},
    {0x17d, P66 | PF2, SF_XX, 0},
    {0x17e, PN | P66, SF_XGS, SX_MMX},
    {0x17e, PF3, SF_XX, 0},
    {0x17f, PN | P66 | PF3, SF_XXR, SX_MMX},
    {0x1c2, PN | P66 | PF3 | PF2, SF_XXI, 0},
    {0x1c4, PN | P66, SF_XGI, SX_MMX},
    {0x1c5, PN | P66, SF_GXI, SX_MMX | SX_REG},
    {0x1c6, PN | P66, SF_XXI, 0},
    {0x1d0, P66 | PF2, SF_XX, 0},
    {0x1d1, PN | P66, SF_XX, SX_MMX},
    {0x1d2, PN | P66, SF_XX, SX_MMX},
    {0x1d3, PN | P66, SF_XX, SX_MMX},
    {0x1d4, PN | P66, SF_XX, SX_MMX},
    {0x1d5, PN | P66, SF_XX, SX_MMX},
    {0x1d6, P66, SF_XXR, 0},
    {0x1d7, PN | P66, SF_GX, SX_MMX | SX_REG},
    {0x1d8, PN | P66, SF_XX, SX_MMX},
    {0x1d9, PN | P66, SF_XX, SX_MMX},
    {0x1da, PN | P66, SF_XX, SX_MMX},
    {0x1db, PN | P66, SF_XX, SX_MMX},
    {0x1dc, PN | P66, SF_XX, SX_MMX},
    {0x1dd, PN | P66, SF_XX, SX_MMX},
    {0x1de, PN | P66, SF_XX, SX_MMX},
    {0x1df, PN | P66, SF_XX, SX_MMX},
    {0x1e0, PN | P66, SF_XX, SX_MMX},
    {0x1e1, PN | P66, SF_XX, SX_MMX},
    {0x1e2, PN | P66, SF_XX, SX_MMX},
    {0x1e3, PN | P66, SF_XX, SX_MMX},
    {0x1e4, PN | P66, SF_XX, SX_MMX},
    {0x1e5, PN | P66, SF_XX, SX_MMX},
    {0x1e6, P66 | PF3 | PF2, SF_XX, 0},
    {0x1e7, PN | P66, SF_XXR, SX_MMX | SX_MEM},
    {0x1e8, PN | P66, SF_XX, SX_MMX},
    {0x1e9, PN | P66, SF_XX, SX_MMX},
    {0x1ea, PN | P66, SF_XX, SX_MMX},
    {0x1eb, PN | P66, SF_XX, SX_MMX},
    {0x1ec, PN | P66, SF_XX, SX_MMX},
    {0x1ed, PN | P66, SF_XX, SX_MMX},
    {0x1ee, PN | P66, SF_XX, SX_MMX},
    {0x1ef, PN | P66, SF_XX, SX_MMX},
    {0x1f0, PF2, SF_XX, SX_MEM},
    {0x1f1, PN | P66, SF_XX, SX_MMX},
    {0x1f2, PN | P66, SF_XX, SX_MMX},
    {0x1f3, PN | P66, SF_XX, SX_MMX},
    {0x1f4, PN | P66, SF_XX, SX_MMX},
    {0x1f5, PN | P66, SF_XX, SX_MMX},
    {0x1f6, PN | P66, SF_XX, SX_MMX},
    {0x1f8, PN | P66, SF_XX, SX_MMX},
    {0x1f9, PN | P66, SF_XX, SX_MMX},
    {0x1fa, PN | P66, SF_XX, SX_MMX},
    {0x1fb, PN | P66, SF_XX, SX_MMX},
    {0x1fc, PN | P66, SF_XX, SX_MMX},
    {0x1fd, PN | P66, SF_XX, SX_MMX},
    {0x1fe, PN | P66, SF_XX, SX_MMX},
    /* 0F 38: SSSE3 (MMX forms too), SSE4.1, SSE4.2, CRC32 */
    {0x200, PN | P66, SF_XX, SX_MMX},
    {0x201, PN | P66, SF_XX, SX_MMX},
    {0x202, PN | P66, SF_XX, SX_MMX},
    {0x203, PN | P66, SF_XX, SX_MMX},
    {0x204, PN | P66, SF_XX, SX_MMX},
    {0x205, PN | P66, SF_XX, SX_MMX},
    {0x206, PN | P66, SF_XX, SX_MMX},
    {0x207, PN | P66, SF_XX, SX_MMX},
    {0x208, PN | P66, SF_XX, SX_MMX},
    {0x209, PN | P66, SF_XX, SX_MMX},
    {0x20a, PN | P66, SF_XX, SX_MMX},
    {0x20b, PN | P66, SF_XX, SX_MMX},
    {0x210, P66, SF_XX, 0},
    {0x214, P66, SF_XX, 0},
    {0x215, P66, SF_XX, 0},
    {0x217, P66, SF_XX, 0},
    {0x21c, PN | P66, SF_XX, SX_MMX},
    {0x21d, PN | P66, SF_XX, SX_MMX},
    {0x21e, PN | P66, SF_XX, SX_MMX},
    {0x220, P66, SF_XX, 0},
    {0x221, P66, SF_XX, 0},
    {0x222, P66, SF_XX, 0},
    {0x223, P66, SF_XX, 0},
    {0x224, P66, SF_XX, 0},
    {0x225, P66, SF_XX, 0},
    {0x228, P66, SF_XX, 0},
    {0x229, P66, SF_XX, 0},
    {0x22a, P66, SF_XX, SX_MEM},
    {0x22b, P66, SF_XX, 0},
    {0x230, P66, SF_XX, 0},
    {0x231, P66, SF_XX, 0},
    {0x232, P66, SF_XX, 0},
    {0x233, P66, SF_XX, 0},
    {0x234, P66, SF_XX, 0},
    {0x235, P66, SF_XX, 0},
    {0x237, P66, SF_XX, 0},
    {0x238, P66, SF_XX, 0},
    {0x239, P66, SF_XX, 0},
    {0x23a, P66, SF_XX, 0},
    {0x23b, P66, SF_XX, 0},
    {0x23c, P66, SF_XX, 0},
    {0x23d, P66, SF_XX, 0},
    {0x23e, P66, SF_XX, 0},
    {0x23f, P66, SF_XX, 0},
    {0x240, P66, SF_XX, 0},
    {0x241, P66, SF_XX, 0},
    {0x2f0, PF2, SF_CRC, 0},
    {0x2f1, PF2, SF_CRC, 0},
    /* 0F 3A */
    {0x308, P66, SF_XXI, 0},
    {0x309, P66, SF_XXI, 0},
    {0x30a, P66, SF_XXI, 0},
    {0x30b, P66, SF_XXI, 0},
    {0x30c, P66, SF_XXI, 0},
    {0x30d, P66, SF_XXI, 0},
    {0x30e, P66, SF_XXI, 0},
    {0x30f, PN | P66, SF_XXI, SX_MMX},
    {0x314, P66, SF_XGSI, 0},
    {0x315, P66, SF_XGSI, 0},
    {0x316, P66, SF_XGSI, 0},
    {0x317, P66, SF_XGSI, 0},
    {0x320, P66, SF_XGI, 0},
    {0x321, P66, SF_XXI, 0},
    {0x322, P66, SF_XGI, 0},
    {0x340, P66, SF_XXI, 0},
    {0x341, P66, SF_XXI, 0},
    {0x342, P66, SF_XXI, 0},
    {0x360, P66, SF_XXI, 0},
    {0x361, P66, SF_XXI, 0},
    {0x362, P66, SF_XXI, 0},
    {0x363, P66, SF_XXI, 0},
};

static uint32_t rnd_f32(struct gen *g)
{
    static const uint32_t sp[] = {0,           0x80000000u, 0x3f800000u, 0xbfc00000u, 0x7f800000u,
                                  0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7fa00000u, 0x00000001u,
                                  0x807fffffu, 0x00800000u, 0x7f7fffffu, 0x4f000000u, 0xcf000000u,
                                  0x3effffffu, 0x3f000000u, 0x4b000001u};
    switch (rndn(g, 4)) {
    case 0:
        return sp[rndn(g, sizeof(sp) / sizeof(sp[0]))];
    case 1: { /* a modest number: exponent near 0 */
        uint32_t m = (uint32_t)rnd(g) & 0x807fffffu;
        return m | (uint32_t)(120 + rndn(g, 20)) << 23;
    }
    default:
        return (uint32_t)rnd(g);
    }
}

static uint64_t rnd_f64(struct gen *g)
{
    static const uint64_t sp[] = {0,
                                  0x8000000000000000ull,
                                  0x3ff0000000000000ull,
                                  0xbff8000000000000ull,
                                  0x7ff0000000000000ull,
                                  0xfff0000000000000ull,
                                  0x7ff8000000000000ull,
                                  0x7ff4000000000000ull,
                                  1,
                                  0x800fffffffffffffull,
                                  0x0010000000000000ull,
                                  0x7fefffffffffffffull,
                                  0x41e0000000000000ull,
                                  0xc3e0000000000000ull,
                                  0x3fe0000000000000ull,
                                  0x4330000000000001ull};
    switch (rndn(g, 4)) {
    case 0:
        return sp[rndn(g, sizeof(sp) / sizeof(sp[0]))];
    case 1: {
        uint64_t m = rnd(g) & 0x800fffffffffffffull;
        return m | (uint64_t)(1015 + rndn(g, 20)) << 52;
    }
    default:
        return rnd(g);
    }
}

static void rnd_xmm(struct gen *g, uint8_t *x)
{
    unsigned kind = rndn(g, 3);
    for (unsigned i = 0; i < 4; i++) {
        if (kind == 0) {
            uint32_t v = rnd_f32(g);
            memcpy(x + 4 * i, &v, 4);
        } else if (kind == 1 && (i & 1) == 0) {
            uint64_t v = rnd_f64(g);
            memcpy(x + 4 * i, &v, 8);
        } else if (kind == 2) {
            uint32_t v = (uint32_t)rnd_val(g);
            memcpy(x + 4 * i, &v, 4);
        }
    }
}

static uint64_t sse_target(struct gen *g, unsigned size)
{
    uint64_t t = ORC_DATA_VA + 0x100 + (rndn(g, ORC_PAGE - 0x200) & ~15u);
    if (chance(g, 12)) {
        t += 1 + rndn(g, 15); /* misaligned: #GP for the aligned forms */
    }
    if (chance(g, 2)) {
        t = ORC_DATA_VA + ORC_PAGE - size + 1 + rndn(g, size); /* crosses into no page */
    }
    return t;
}

/* CPUID.1:ECX feature an entry needs (SSE/SSE2 are baseline on x86-64). */
static uint32_t sse_feature(const struct sse_op *e)
{
    unsigned map = e->op >> 8, o = e->op & 0xff;
    if (map == 1) {
        if (o == 0x7c || o == 0x7d || o == 0xd0 || o == 0xf0 || (o == 0x12 && e->pfx != 0) ||
            o == 0x16) {
            return ORC_F1_SSE3; /* conservative: entries mixing SSE/SSE3 forms */
        }
        return 0;
    }
    if (map == 2) {
        if (o <= 0x0b || (o >= 0x1c && o <= 0x1e)) {
            return ORC_F1_SSSE3;
        }
        return (o == 0x37 || o >= 0xf0) ? ORC_F1_SSE42 : ORC_F1_SSE41;
    }
    if (o == 0x0f) {
        return ORC_F1_SSSE3;
    }
    return o >= 0x60 ? ORC_F1_SSE42 : ORC_F1_SSE41;
}

static void t_sse(struct gen *g)
{
    struct orc_case *c = g->c;
    const struct sse_op *e;
    for (;;) {
        e = &sse_ops[rndn(g, sizeof(sse_ops) / sizeof(sse_ops[0]))];
        uint32_t need = sse_feature(e);
        if ((g->f1_ecx & need) == need) {
            break;
        }
    }
    unsigned pfxs[4], np = 0;
    for (unsigned b = 0; b < 4; b++) {
        if (e->pfx & (1u << b)) {
            pfxs[np++] = b;
        }
    }
    unsigned p = pfxs[rndn(g, np)];
    bool mmx = p == 0 && (e->flags & SX_MMX);
    struct ins in = {0};
    static const uint8_t mand[] = {0, 0x66, 0xf3, 0xf2};
    if (e->form == SF_CRC && (e->op & 0xff) == 0xf1 && chance(g, 25)) {
        in.pfx[in.npfx++] = 0x66; /* CRC32 r32, r/m16 */
    }
    if (p) {
        in.pfx[in.npfx++] = mand[p];
    }
    unsigned map = e->op >> 8;
    in.op[0] = 0x0f;
    if (map == 1) {
        in.op[1] = (uint8_t)e->op;
        in.nop = 2;
    } else {
        in.op[1] = map == 2 ? 0x38 : 0x3a;
        in.op[2] = (uint8_t)e->op;
        in.nop = 3;
    }
    in.has_modrm = true;
    unsigned nx = (c->mode32 || mmx) ? 8 : 16;
    bool gpr_rm = e->form == SF_XG || e->form == SF_XGI || e->form == SF_XGS ||
                  e->form == SF_XGSI || e->form == SF_CRC;
    bool gpr_reg = e->form == SF_GX || e->form == SF_GXI || e->form == SF_CRC;
    in.reg = gpr_reg ? rnd_reg(g, true) : rndn(g, nx);
    if (e->form == SF_SHIFTI) {
        static const unsigned d71[] = {2, 4, 6}, d73[] = {2, 3, 6, 7};
        in.reg = (e->op & 0xff) == 0x73 ? d73[rndn(g, mmx ? 2 : 4) * (mmx ? 2 : 1) % 4]
                                        : d71[rndn(g, 3)];
        if ((e->op & 0xff) == 0x73 && mmx) {
            in.reg = chance(g, 50) ? 2 : 6;
        }
    }
    bool mem;
    if (e->flags & SX_MEM) {
        mem = true;
    } else if (e->flags & SX_REG) {
        mem = false;
    } else {
        mem = chance(g, 35);
    }
    if (!c->mode32 && (gpr_rm || gpr_reg) && chance(g, 40)) {
        in.rexw = true;
    }
    if (e->op == 0x360 || e->op == 0x361) { /* PCMPESTR*: lengths in EAX/EDX */
        c->r[R_AX] = chance(g, 70) ? rndn(g, 20) : rnd_val(g);
        c->r[R_DX] = chance(g, 70) ? rndn(g, 20) : rnd_val(g);
        g->reserved |= (1u << R_AX) | (1u << R_DX);
    }
    if (mem) {
        rnd_mem_at(g, &in, 16, sse_target(g, 16));
    } else {
        in.mem = false;
        in.rm = gpr_rm ? rnd_reg(g, true) : rndn(g, nx);
    }
    if (e->form == SF_XXI || e->form == SF_XGI || e->form == SF_GXI || e->form == SF_XGSI ||
        e->form == SF_SHIFTI) {
        in.immsz = 1;
        in.imm = rnd(g) & 0xff;
        if ((e->op == 0x1c2)) {
            in.imm &= 7;
        }
    }
    for (unsigned i = 0; i < 16; i++) {
        rnd_xmm(g, c->fx + 160 + 16 * i);
    }
    if (mmx) {
        /* MMX registers alias the x87 mantissas: random contents, stack left as is */
        for (unsigned i = 0; i < 8; i++) {
            uint64_t v = rnd_val(g);
            memcpy(c->fx + 32 + 16 * i, &v, 8);
        }
    }
    uint32_t mxcsr = 0x1f80;
    if (chance(g, 50)) {
        mxcsr |= (uint32_t)rndn(g, 4) << 13; /* rounding */
    }
    if (chance(g, 20)) {
        mxcsr |= 0x8040; /* FTZ, DAZ */
    }
    if (chance(g, 20)) {
        mxcsr |= (uint32_t)rnd(g) & 0x3f; /* sticky flags already set */
    }
    /* DPPS/DPPD (0F 3A 40/41) with unmasked exceptions: the flags hardware accumulates over
     * the intermediate steps are not modelled (docs/cpu-oracle.md, "Known gaps"). */
    bool dp = e->op == 0x340 || e->op == 0x341;
    if (!dp && chance(g, 8)) {
        /* Unmask some: #XM. OM and UM (0xc00) stay masked: when they are unmasked Lodge's PE
         * can differ from hardware (docs/cpu-oracle.md, "Known gaps"). */
        mxcsr &= ~((uint32_t)rnd(g) & 0x1380);
    }
    memcpy(c->fx + 24, &mxcsr, 4);
    uint32_t mask = 0xffff;
    memcpy(c->fx + 28, &mask, 4);
    c->flags_undef = 0;
    set_op(g, e->op);
    finish_ins(g, &in);
    if (mmx && chance(g, 20)) {
        emit8(g, 0x0f); /* EMMS: tags back to empty */
        emit8(g, 0x77);
    }
    if (chance(g, 2)) {
        /* MASKMOVDQU / MASKMOVQ: byte-masked store to DS:rDI */
        g->len = 0;
        bool mq = chance(g, 40);
        c->r[R_DI] = ORC_DATA_VA + 0x100 + rndn(g, 0xd00);
        if (!mq) {
            emit8(g, 0x66);
        }
        emit8(g, 0x0f);
        emit8(g, 0xf7);
        emit8(g, (uint8_t)(0xc0 | rndn(g, 64)));
        set_op(g, 0x1f7);
    }
}

/* ---- x87 ---- */

static void rnd_f80(struct gen *g, uint8_t *out)
{
    uint64_t m = rnd(g) | (1ull << 63);
    uint16_t se;
    switch (rndn(g, 10)) {
    case 0:
        m = 0;
        se = (uint16_t)(rndn(g, 2) << 15);
        break;
    case 1:
        m = 1ull << 63;
        se = (uint16_t)(0x3fff + rndn(g, 3) - 1) | (uint16_t)(rndn(g, 2) << 15);
        break;
    case 2:
        se = 0x7fff | (uint16_t)(rndn(g, 2) << 15); /* inf / NaN */
        m = chance(g, 40)
                ? (1ull << 63)
                : (chance(g, 50) ? 0xc000000000000000ull | rnd(g) >> 3 : 0x8000000000000001ull);
        break;
    case 3:
        se = (uint16_t)(rndn(g, 2) << 15); /* denormal */
        m >>= 1 + rndn(g, 60);
        break;
    case 4:
        se = (uint16_t)(0x3fff + 62) | (uint16_t)(rndn(g, 2) << 15); /* large integer */
        break;
    default:
        se = (uint16_t)(0x3fff - 20 + rndn(g, 60)) | (uint16_t)(rndn(g, 2) << 15);
        if (chance(g, 30)) {
            m &= ~0xffffffffull; /* fewer significant bits: exact results */
        }
        break;
    }
    memcpy(out, &m, 8);
    memcpy(out + 8, &se, 2);
}

#define X87_C0 0x01u /* fsw_undef bits: FSW >> 8 */
#define X87_C1 0x02u
#define X87_C2 0x04u
#define X87_C3 0x40u
#define X87_CCA (X87_C0 | X87_C2 | X87_C3)

/* FCMOVcc and FCOMI/FUCOMI(P): the SDM says C1 is cleared; AMD hardware leaves it unchanged,
 * so C1 is not compared for them (docs/cpu-oracle.md). */
struct x87_op {
    uint8_t op;    /* D8..DF */
    uint8_t mrm;   /* fixed ModRM for register forms (low 3 bits get i when plus_i) */
    uint8_t kind;  /* 0: memory /digit (mrm = digit), 1: register, 2: register + st(i) */
    uint8_t undef; /* FSW condition codes undefined afterwards */
};

static const struct x87_op x87_ops[] = {
    /* D8/DC memory arithmetic (m32fp/m64fp), DA/DE (m32int/m16int) */
    {0xd8, 0, 0, X87_CCA},
    {0xd8, 1, 0, X87_CCA},
    {0xd8, 2, 0, 0},
    {0xd8, 3, 0, 0},
    {0xd8, 4, 0, X87_CCA},
    {0xd8, 5, 0, X87_CCA},
    {0xd8, 6, 0, X87_CCA},
    {0xd8, 7, 0, X87_CCA},
    {0xdc, 0, 0, X87_CCA},
    {0xdc, 1, 0, X87_CCA},
    {0xdc, 2, 0, 0},
    {0xdc, 3, 0, 0},
    {0xdc, 4, 0, X87_CCA},
    {0xdc, 5, 0, X87_CCA},
    {0xdc, 6, 0, X87_CCA},
    {0xdc, 7, 0, X87_CCA},
    {0xda, 0, 0, X87_CCA},
    {0xda, 1, 0, X87_CCA},
    {0xda, 2, 0, 0},
    {0xda, 4, 0, X87_CCA},
    {0xda, 6, 0, X87_CCA},
    {0xde, 0, 0, X87_CCA},
    {0xde, 3, 0, 0},
    {0xde, 5, 0, X87_CCA},
    {0xde, 7, 0, X87_CCA},
    /* register arithmetic */
    {0xd8, 0xc0, 2, X87_CCA},
    {0xd8, 0xc8, 2, X87_CCA},
    {0xd8, 0xd0, 2, 0},
    {0xd8, 0xd8, 2, 0},
    {0xd8, 0xe0, 2, X87_CCA},
    {0xd8, 0xe8, 2, X87_CCA},
    {0xd8, 0xf0, 2, X87_CCA},
    {0xd8, 0xf8, 2, X87_CCA},
    {0xdc, 0xc0, 2, X87_CCA},
    {0xdc, 0xc8, 2, X87_CCA},
    {0xdc, 0xe0, 2, X87_CCA},
    {0xdc, 0xe8, 2, X87_CCA},
    {0xdc, 0xf0, 2, X87_CCA},
    {0xdc, 0xf8, 2, X87_CCA},
    {0xde, 0xc0, 2, X87_CCA},
    {0xde, 0xc8, 2, X87_CCA},
    {0xde, 0xe0, 2, X87_CCA},
    {0xde, 0xe8, 2, X87_CCA},
    {0xde, 0xf0, 2, X87_CCA},
    {0xde, 0xf8, 2, X87_CCA},
    {0xde, 0xd9, 1, 0},
    /* loads, stores, constants, misc */
    {0xd9, 0, 0, X87_CCA},
    {0xd9, 2, 0, X87_CCA},
    {0xd9, 3, 0, X87_CCA},
    {0xd9, 7, 0, X87_CCA | X87_C1},
    {0xd9, 0xc0, 2, X87_CCA},
    {0xd9, 0xc8, 2, X87_CCA},
    {0xd9, 0xd0, 1, X87_CCA},
    {0xd9, 0xe0, 1, X87_CCA},
    {0xd9, 0xe1, 1, X87_CCA},
    {0xd9, 0xe4, 1, 0},
    {0xd9, 0xe5, 1, 0},
    {0xd9, 0xe8, 1, X87_CCA},
    {0xd9, 0xe9, 1, X87_CCA},
    {0xd9, 0xea, 1, X87_CCA},
    {0xd9, 0xeb, 1, X87_CCA},
    {0xd9, 0xec, 1, X87_CCA},
    {0xd9, 0xed, 1, X87_CCA},
    {0xd9, 0xee, 1, X87_CCA},
    {0xd9, 0xf4, 1, X87_CCA},
    {0xd9, 0xf5, 1, 0},
    {0xd9, 0xf6, 1, X87_CCA},
    {0xd9, 0xf7, 1, X87_CCA},
    {0xd9, 0xf8, 1, 0},
    {0xd9, 0xfa, 1, X87_CCA},
    {0xd9, 0xfc, 1, X87_CCA},
    {0xd9, 0xfd, 1, X87_CCA},
    {0xdb, 0, 0, X87_CCA},
    {0xdb, 1, 0, X87_CCA},
    {0xdb, 2, 0, X87_CCA},
    {0xdb, 3, 0, X87_CCA},
    {0xdb, 5, 0, X87_CCA},
    {0xdb, 7, 0, X87_CCA},
    {0xdb, 0xc0, 2, X87_CCA | X87_C1},
    {0xdb, 0xc8, 2, X87_CCA | X87_C1},
    {0xdb, 0xd0, 2, X87_CCA | X87_C1},
    {0xdb, 0xd8, 2, X87_CCA | X87_C1},
    {0xda, 0xc0, 2, X87_CCA | X87_C1},
    {0xda, 0xc8, 2, X87_CCA | X87_C1},
    {0xda, 0xd0, 2, X87_CCA | X87_C1},
    {0xda, 0xd8, 2, X87_CCA | X87_C1},
    {0xda, 0xe9, 1, 0},
    {0xdb, 0xe2, 1, X87_CCA | X87_C1},
    {0xdb, 0xe3, 1, 0},
    {0xdb, 0xe8, 2, X87_C1},
    {0xdb, 0xf0, 2, X87_C1},
    {0xdd, 0, 0, X87_CCA},
    {0xdd, 1, 0, X87_CCA},
    {0xdd, 2, 0, X87_CCA},
    {0xdd, 3, 0, X87_CCA},
    {0xdd, 7, 0, X87_CCA | X87_C1},
    {0xdd, 0xc0, 2, X87_CCA | X87_C1},
    {0xdd, 0xd0, 2, X87_CCA},
    {0xdd, 0xd8, 2, X87_CCA},
    {0xdd, 0xe0, 2, 0},
    {0xdd, 0xe8, 2, 0},
    {0xdf, 0, 0, X87_CCA},
    {0xdf, 1, 0, X87_CCA},
    {0xdf, 2, 0, X87_CCA},
    {0xdf, 3, 0, X87_CCA},
    {0xdf, 4, 0, X87_CCA},
    {0xdf, 5, 0, X87_CCA},
    {0xdf, 6, 0, X87_CCA},
    {0xdf, 7, 0, X87_CCA},
    {0xdf, 0xe0, 1, X87_CCA | X87_C1},
    {0xdf, 0xe8, 2, X87_C1},
    {0xdf, 0xf0, 2, X87_C1},
};

static void t_x87(struct gen *g)
{
    struct orc_case *c = g->c;
    const struct x87_op *e = &x87_ops[rndn(g, sizeof(x87_ops) / sizeof(x87_ops[0]))];
    /* stack: n valid registers from TOP */
    unsigned n = chance(g, 10) ? rndn(g, 9) : 2 + rndn(g, 5);
    unsigned top = (8 - n + (chance(g, 20) ? rndn(g, 8) : 0)) & 7;
    uint16_t fcw = 0x037f;
    if (chance(g, 50)) {
        fcw = (uint16_t)((fcw & ~0x0f00u) | (rndn(g, 4) << 10) | ((rndn(g, 3) + 1) << 8));
        fcw &= (uint16_t)~0x0100u; /* PC 01 is reserved */
    }
    bool unmasked = chance(g, 6);
    if (unmasked) {
        fcw &= (uint16_t) ~(rnd(g) & 0x3du);
    }
    uint16_t fsw = (uint16_t)(top << 11) | (uint16_t)(rnd(g) & 0x4700u);
    uint8_t abr = 0;
    for (unsigned i = 0; i < 8; i++) {
        rnd_f80(g, c->fx + 32 + 16 * i);
        if (i < n) {
            abr |= (uint8_t)(1u << ((top + i) & 7));
        }
    }
    memcpy(c->fx + 0, &fcw, 2);
    memcpy(c->fx + 2, &fsw, 2);
    c->fx[4] = abr;
    struct ins in = {0};
    in.nop = 1;
    in.op[0] = e->op;
    in.has_modrm = true;
    if (e->kind == 0) {
        in.reg = e->mrm;
        rnd_mem_at(g, &in, 10, rnd_target(g, 10));
    } else {
        in.has_modrm = false;
        in.nop = 2;
        in.op[1] = (uint8_t)(e->mrm | (e->kind == 2 ? rndn(g, 8) : 0));
    }
    c->fsw_undef = e->undef;
    c->flags_undef = 0;
    set_op(g, e->op);
    finish_ins(g, &in);
    if (unmasked) {
        emit8(g, 0x9b); /* FWAIT: deliver a pending unmasked exception (#MF) */
    }
}

/* System and privileged instructions at CPL 3: mostly #GP(0) or #UD on both sides; segment
 * register reads/loads, far transfers through the user code selectors (Linux's GDT), INT n
 * through DPL-0 gates (#GP(n*8+2)), fences, prefetches, CLFLUSH, LDMXCSR/STMXCSR, RDTSC. */
static void t_sys(struct gen *g)
{
    struct orc_case *c = g->c;
    bool m32 = c->mode32;
    unsigned k = rndn(g, 25);
    struct ins in = {0};
    switch (k) {
    case 0: { /* HLT CLI STI IN OUT INS OUTS: #GP(0) at IOPL 0 */
        static const uint8_t o[] = {0xf4, 0xfa, 0xfb, 0xec, 0xed, 0xee,
                                    0xef, 0x6c, 0x6d, 0x6e, 0x6f};
        uint8_t b = o[rndn(g, sizeof(o))];
        emit8(g, b);
        set_op(g, b);
        break;
    }
    case 1: { /* IN/OUT imm8 */
        uint8_t b = (uint8_t)(0xe4 + rndn(g, 4));
        emit8(g, b);
        emit8(g, (uint8_t)rnd(g));
        set_op(g, b);
        break;
    }
    case 2: { /* 0F 06 CLTS, 0F 08 INVD, 0F 09 WBINVD, 0F 30 WRMSR, 0F 32 RDMSR, 0F 33 RDPMC,
               * 0F 07 SYSRET, 0F 35 SYSEXIT, 0F 0B UD2 */
        static const uint8_t o[] = {0x06, 0x08, 0x09, 0x30, 0x32, 0x33, 0x07, 0x35, 0x0b};
        uint8_t b = o[rndn(g, sizeof(o))];
        emit8(g, 0x0f);
        emit8(g, b);
        set_op(g, 0x100u | b);
        break;
    }
    case 3: /* MOV CRn/DRn */
        emit8(g, 0x0f);
        emit8(g, (uint8_t)(0x20 + rndn(g, 4)));
        emit8(g, (uint8_t)(0xc0 | rndn(g, 64)));
        set_op(g, 0x100u | g->c->code[g->len - 2]);
        break;
    case 4: /* LGDT/LIDT/LMSW (0F 01 /2 /3 /6), LLDT/LTR (0F 00 /2 /3): #GP(0) */
        in.nop = 2;
        in.op[0] = 0x0f;
        if (chance(g, 60)) {
            static const unsigned d[] = {2, 3, 6};
            in.op[1] = 0x01;
            in.reg = d[rndn(g, 3)];
        } else {
            in.op[1] = 0x00;
            in.reg = 2 + rndn(g, 2);
        }
        rnd_mem(g, &in, 10);
        set_op(g, 0x100u | in.op[1]);
        finish_ins(g, &in);
        break;
    case 5: /* INT n through a DPL-0 gate: #GP(n * 8 + 2) */
    {
        unsigned n;
        do {
            n = rndn(g, 256);
        } while (n == 3 || n == 4 || n == 0x80);
        emit8(g, 0xcd);
        emit8(g, (uint8_t)n);
        set_op(g, 0xcd);
        break;
    }
    case 6: /* MOV r/m, Sreg (8C): ES CS SS DS FS GS */
        in.nop = 1;
        in.op[0] = 0x8c;
        in.reg = rndn(g, 6);
        if (chance(g, 30)) {
            in.pfx[in.npfx++] = 0x66;
        } else if (!m32 && chance(g, 30)) {
            in.rexw = true;
        }
        rnd_rm(g, &in, 2, 40);
        set_op(g, 0x8c);
        finish_ins(g, &in);
        break;
    case 7: { /* MOV Sreg, r/m (8E) for ES SS DS: 0x2b loads, others fault */
        static const unsigned sr[] = {0, 2, 3};
        in.nop = 1;
        in.op[0] = 0x8e;
        in.reg = sr[rndn(g, 3)];
        in.has_modrm = true;
        in.rm = rnd_reg(g, false);
        static const uint16_t sel[] = {0x2b, 0x2b,       0,    0x23, 0x33,  0x10,
                                       0x18, 0x2b | 0x4, 0x28, 0x29, 0xfff8};
        uint64_t v = sel[rndn(g, sizeof(sel) / sizeof(sel[0]))];
        if (chance(g, 10)) {
            v = rnd(g) & 0xffff;
        }
        c->r[in.rm] = (rnd(g) & ~0xffffull) | v;
        g->reserved |= 1u << in.rm;
        set_op(g, 0x8e);
        finish_ins(g, &in);
        break;
    }
    case 8: /* PUSH/POP ES SS DS (32-bit), PUSH FS/GS */
        c->r[R_SP] = ORC_DATA_VA + 0x800 + 8 * rndn(g, 64);
        g->reserved |= 1u << R_SP;
        if (m32) {
            static const uint8_t o[] = {0x06, 0x07, 0x16, 0x17, 0x1e, 0x1f, 0x0e};
            uint8_t b = o[rndn(g, sizeof(o))];
            if ((b & 1) && b != 0x0e) {
                /* POP Sreg: push a selector first */
                static const uint8_t sel[] = {0x2b, 0x2b, 0x00, 0x23, 0x10, 0x2f, 0x28};
                emit8(g, 0x6a);
                emit8(g, sel[rndn(g, sizeof(sel))]);
            }
            emit8(g, b);
            set_op(g, b);
        } else {
            emit8(g, 0x0f);
            emit8(g, chance(g, 50) ? 0xa0 : 0xa8);
            set_op(g, 0x100u | g->c->code[g->len - 1]);
        }
        break;
    case 9: /* far JMP/CALL through 0x23 (32-bit) or 0x33 (64-bit, FF /5 /3 m16:32); RETF */
        c->r[R_SP] = ORC_DATA_VA + 0x800 + 8 * rndn(g, 64);
        g->reserved |= 1u << R_SP;
        if (m32 && chance(g, 50)) {
            uint32_t t;
            if (chance(g, 50)) { /* jmp far 0x23:end */
                emit8(g, 0xea);
                t = (uint32_t)ORC_CODE_VA + 7;
                emitn(g, t, 4);
                emitn(g, chance(g, 85) ? 0x23 : 0x2b, 2);
                set_op(g, 0xea);
            } else { /* call far 0x23:retf; jmp over it */
                emit8(g, 0x9a);
                t = (uint32_t)ORC_CODE_VA + 9;
                emitn(g, t, 4);
                emitn(g, 0x23, 2);
                emit8(g, 0xeb);
                emit8(g, 0x01);
                emit8(g, 0xcb);
                set_op(g, 0x9a);
            }
        } else {
            /* push cs-selector; push target; retf (64-bit: REX.W) */
            uint16_t sel = m32 ? 0x23 : 0x33;
            if (chance(g, 10)) {
                sel = 0x2b; /* data selector: #GP(0x28). A mode switch would break the tail */
            }
            emit8(g, 0x6a);
            emit8(g, (uint8_t)sel);
            emit8(g, 0x68);
            unsigned len = m32 ? 8 : 9; /* 6a xx 68 imm32 [48] cb */
            emitn(g, (uint32_t)ORC_CODE_VA + len, 4);
            if (!m32) {
                emit8(g, 0x48);
            }
            emit8(g, 0xcb);
            set_op(g, 0xcb);
        }
        break;
    case 10: /* fences, PREFETCH*, CLFLUSH, NOP hints with memory operands */
        if (chance(g, 40)) {
            emit8(g, 0x0f);
            emit8(g, 0xae);
            emit8(g, (uint8_t)(0xe8 + 8 * rndn(g, 3)));
            set_op(g, 0x1ae);
        } else {
            in.nop = 2;
            in.op[0] = 0x0f;
            static const uint8_t o[] = {0x0d, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0xae};
            in.op[1] = o[rndn(g, sizeof(o))];
            in.reg = in.op[1] == 0x0d   ? rndn(g, 2)
                     : in.op[1] == 0x18 ? rndn(g, 4)
                     : in.op[1] == 0xae ? 7
                                        : rndn(g, 8);
            rnd_mem(g, &in, 1);
            set_op(g, 0x100u | in.op[1]);
            finish_ins(g, &in);
        }
        break;
    case 11: /* STMXCSR; MOV m32, imm32 + LDMXCSR m32 (bit 17, AMD's MM, never set) */
    {
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = 0xae;
        in.reg = 2 + rndn(g, 2);
        rnd_mem(g, &in, 4);
        if (in.reg == 2) {
            struct ins st = in;
            st.nop = 1;
            st.op[0] = 0xc7;
            st.reg = 0;
            st.immsz = 4;
            uint32_t v = 0x1f80u | ((uint32_t)rnd(g) & 0x603fu);
            if (chance(g, 15)) {
                v ^= 1u << (16 + rndn(g, 16) + 0) % 32;
                v &= ~(1u << 17);
            }
            st.imm = v;
            finish_ins(g, &st);
        }
        set_op(g, 0x1ae);
        finish_ins(g, &in);
        break;
    }
    case 12: /* RDTSC: values differ by nature; only the outcome is compared */
        emit8(g, 0x0f);
        emit8(g, 0x31);
        c->gpr_undef = (1u << R_AX) | (1u << R_DX);
        set_op(g, 0x131);
        break;
    case 13: /* CPUID: Lodge's model differs from the host's; only the outcome */
        emit8(g, 0x0f);
        emit8(g, 0xa2);
        c->gpr_undef = 0xf;
        set_op(g, 0x1a2);
        break;
    case 14: /* MOVNTI */
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = 0xc3;
        in.reg = rnd_reg(g, true);
        in.rexw = !m32 && chance(g, 50);
        rnd_mem(g, &in, 8);
        set_op(g, 0x1c3);
        finish_ins(g, &in);
        break;
    case 15: /* LSS r, m16:32 with 0x2b or a bad selector */
    {
        uint64_t t = ORC_DATA_VA + 0x100 + rndn(g, 0xd00);
        uint8_t page[ORC_PAGE];
        orc_fill_data(c->seed, page);
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = 0xb2;
        in.reg = rnd_reg(g, true);
        rnd_mem_at(g, &in, 6, t);
        set_op(g, 0x1b2);
        finish_ins(g, &in);
        break;
    }
    case 16: /* UD2, UD1, UD0-like and other #UD encodings */
    {
        static const uint8_t o[][3] = {{0x0f, 0x0b, 0}, {0x0f, 0xb9, 0xc0}, {0x0f, 0xff, 0xc0},
                                       {0xd6, 0, 0},    {0x0f, 0x04, 0},    {0x0f, 0x0a, 0},
                                       {0x0f, 0x0c, 0}, {0x0f, 0x36, 0},    {0x0f, 0x39, 0},
                                       {0xf0, 0x90, 0}, {0xf0, 0x01, 0xc0}};
        unsigned i = rndn(g, sizeof(o) / sizeof(o[0]));
        for (unsigned j = 0; j < 3 && (j == 0 || o[i][j]); j++) {
            emit8(g, o[i][j]);
        }
        set_op(g, o[i][0] == 0x0f ? 0x100u | o[i][1] : o[i][0]);
        break;
    }
    case 17: /* INTO (32-bit, OF clear: no-op) and 64-bit #UD forms of legacy opcodes */
        if (m32) {
            c->rflags &= ~0x800ull;
            emit8(g, 0xce);
            set_op(g, 0xce);
        } else {
            static const uint8_t o[] = {0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27,
                                        0x2f, 0x37, 0x3f, 0x60, 0x61, 0x62, 0xce, 0xd4,
                                        0xd5, 0x9a, 0xea, 0xc4, 0xc5, 0x82};
            uint8_t b = o[rndn(g, sizeof(o))];
            emit8(g, b);
            emit8(g, 0xc0);
            emitn(g, 0, 6);
            set_op(g, b);
        }
        break;
    case 18: /* BOUND (62) in 32-bit mode: #BR or nothing */
        if (m32) {
            in.nop = 1;
            in.op[0] = 0x62;
            in.reg = rnd_reg(g, true);
            rnd_mem(g, &in, 8);
            set_op(g, 0x62);
            finish_ins(g, &in);
        } else {
            emit8(g, 0x0f);
            emit8(g, 0x0b);
            set_op(g, 0x10b);
        }
        break;
    case 19: /* SAHF/LAHF/PUSHF/POPF with IF/IOPL bits in the image (ignored at CPL 3) */
        c->r[R_SP] = ORC_DATA_VA + 0x800 + 8 * rndn(g, 64);
        g->reserved |= 1u << R_SP;
        emit8(g, 0x68);
        emitn(g, (rnd(g) & 0x3cd5u) | 0x202u | (chance(g, 50) ? 0x4000u : 0), 4);
        emit8(g, 0x9d);
        set_op(g, 0x9d);
        break;
    case 20: /* 66 E8/E9 rel16 in 64-bit mode (AMD: IP truncated to 16 bits) or 32-bit */
        emit8(g, 0x66);
        emit8(g, chance(g, 50) ? 0xe8 : 0xe9);
        emitn(g, rnd(g) & 0xff, 2);
        c->r[R_SP] = ORC_DATA_VA + 0x800;
        set_op(g, g->c->code[1]);
        break;
    case 21: /* LAR/LSL on Linux's fixed selectors, null and out-of-limit ones */
    {
        static const uint16_t sel[] = {0x10, 0x18, 0x23, 0x2b,   0x33,  0x13,
                                       0x2a, 0,    0x3,  0xfff8, 0x1000};
        in.nop = 2;
        in.op[0] = 0x0f;
        in.op[1] = (uint8_t)(0x02 + rndn(g, 2));
        in.reg = rnd_reg(g, true);
        in.has_modrm = true;
        in.rm = rnd_reg(g, false);
        if (chance(g, 30)) {
            in.pfx[in.npfx++] = 0x66;
        } else if (!m32 && chance(g, 30)) {
            in.rexw = true;
        }
        c->r[in.rm] = (rnd(g) & ~0xffffull) | sel[rndn(g, sizeof(sel) / sizeof(sel[0]))];
        g->reserved |= 1u << in.rm;
        if (in.op[1] == 0x02) {
            /* LAR: bits 19:16 of the result are undefined (SDM LAR: "masked by 00FxFF00H") */
            c->undef_reg = (uint8_t)in.reg;
            c->undef_bits = 0xf0000;
        }
        set_op(g, 0x100u | in.op[1]);
        finish_ins(g, &in);
        break;
    }
    case 23: /* IRET to the same privilege level; RETF imm16 */
        c->r[R_SP] = ORC_DATA_VA + 0x800 + 8 * rndn(g, 64);
        g->reserved |= 1u << R_SP;
        if (chance(g, 50)) {
            if (m32) { /* pushfd; push 0x23; push end; iretd */
                emit8(g, 0x9c);
                emit8(g, 0x6a);
                emit8(g, 0x23);
                emit8(g, 0x68);
                emitn(g, (uint32_t)ORC_CODE_VA + 9, 4);
                emit8(g, 0xcf);
            } else { /* push 0x2b; push rsp; pushfq; push 0x33; push end; iretq */
                emit8(g, 0x6a);
                emit8(g, 0x2b);
                emit8(g, 0x54);
                emit8(g, 0x9c);
                emit8(g, 0x6a);
                emit8(g, 0x33);
                emit8(g, 0x68);
                emitn(g, (uint32_t)ORC_CODE_VA + 13, 4);
                emit8(g, 0x48);
                emit8(g, 0xcf);
            }
            set_op(g, 0xcf);
        } else { /* push cs; push end; retf imm16 */
            emit8(g, 0x6a);
            emit8(g, m32 ? 0x23 : 0x33);
            emit8(g, 0x68);
            emitn(g, (uint32_t)ORC_CODE_VA + (m32 ? 10 : 11), 4);
            if (!m32) {
                emit8(g, 0x48);
            }
            emit8(g, 0xca);
            emitn(g, 8 * rndn(g, 4), 2);
            set_op(g, 0xca);
        }
        break;
    case 22: /* MOV to/from segment via 8C/8E with 32-bit r/m memory */
    {
        in.nop = 1;
        in.op[0] = 0x8c;
        in.reg = rndn(g, 6);
        rnd_mem(g, &in, 2);
        set_op(g, 0x8c);
        finish_ins(g, &in);
        break;
    }
    case 24: /* SALC (D6): #UD in 64-bit mode, reserved in 32-bit */
        emit8(g, 0xd6);
        set_op(g, 0xd6);
        break;
    default: /* LOCK on a register form / on a non-lockable opcode: #UD */
    {
        static const uint8_t o[][3] = {{0xf0, 0x01, 0xc0},
                                       {0xf0, 0x89, 0x03},
                                       {0xf0, 0x8b, 0x03},
                                       {0xf0, 0xf7, 0x13},
                                       {0xf0, 0x0f, 0xa3}};
        unsigned i = rndn(g, 5);
        for (unsigned j = 0; j < 3; j++) {
            emit8(g, o[i][j]);
        }
        if (i == 4) {
            emit8(g, 0x03);
        }
        c->r[R_BX] = ORC_DATA_VA + 0x800;
        set_op(g, o[i][1] == 0x0f ? 0x100u | o[i][2] : o[i][1]);
        break;
    }
    }
}

/* Self-modifying code: stores into the instruction stream ahead of RIP, into the same block
 * or a later one, through RIP-relative and register addressing and REP STOS; x86 executes
 * the new bytes (SDM vol. 3, 8.1.3), so the translated block must be dropped. */
static void t_smc(struct gen *g)
{
    struct orc_case *c = g->c;
    bool m32 = c->mode32;
    uint64_t base = ORC_CODE_VA + c->code_off;
    unsigned kind = rndn(g, 4);
    unsigned gap = chance(g, 50) ? 0 : rndn(g, 40); /* NOPs between the store and the target */
    uint8_t newimm = (uint8_t)rnd(g);
    c->r[R_AX] = rnd_val(g);
    switch (kind) {
    case 0: /* mov byte [rip + d], imm8 -> the imm8 of a later "add al, imm8" (64-bit);
             * 32-bit: mov byte [abs32], imm8 */
        emit8(g, 0xc6);
        emit8(g, 0x05);
        {
            unsigned end = g->len + 4 + 1;   /* end of this instruction */
            unsigned target = end + gap + 1; /* imm8 of the add */
            uint64_t t = base + target;
            if (m32) {
                emitn(g, (uint32_t)t, 4);
            } else {
                emitn(g, (uint32_t)(target - end), 4);
            }
        }
        emit8(g, newimm);
        for (unsigned i = 0; i < gap; i++) {
            emit8(g, 0x90);
        }
        emit8(g, 0x04);
        emit8(g, (uint8_t)rnd(g));
        set_op(g, 0xc6);
        break;
    case 1: { /* mov [rBX], al: patch the opcode of a later instruction (add -> sub/xor/...) */
        static const uint8_t ops[] = {0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c};
        unsigned start = g->len;
        unsigned target = start + 2 + gap; /* 88 03 = 2 bytes */
        c->r[R_BX] = base + target;
        c->r[R_AX] = (rnd(g) & ~0xffull) | ops[rndn(g, 8)];
        g->reserved |= (1u << R_BX) | (1u << R_AX);
        emit8(g, 0x88);
        emit8(g, 0x03);
        for (unsigned i = 0; i < gap; i++) {
            emit8(g, 0x90);
        }
        emit8(g, 0x04);
        emit8(g, (uint8_t)rnd(g));
        set_op(g, 0x88);
        break;
    }
    case 2: { /* rep stosw of "inc eax" (ff c0) over a run of NOPs ahead */
        unsigned n = 1 + rndn(g, 12);
        unsigned start = g->len;
        unsigned stos_len = 4; /* f3 66 ab */
        unsigned target = start + stos_len - 1 + gap;
        stos_len = 3;
        target = start + stos_len + gap;
        c->r[R_DI] = base + target;
        c->r[R_CX] = n;
        c->r[R_AX] = (rnd(g) & ~0xffffull) | 0xc0ff;
        c->rflags &= ~0x400ull;
        g->reserved |= (1u << R_DI) | (1u << R_CX) | (1u << R_AX);
        emit8(g, 0xf3);
        emit8(g, 0x66);
        emit8(g, 0xab);
        for (unsigned i = 0; i < gap + 2 * n; i++) {
            emit8(g, 0x90);
        }
        set_op(g, 0xab);
        break;
    }
    default: { /* store a whole new instruction (mov eax, imm32) over NOPs with a dword */
        unsigned target = g->len + 6 + gap; /* c7 03 imm32 is 6 bytes */
        c->r[R_BX] = base + target;
        g->reserved |= 1u << R_BX;
        emit8(g, 0xc7);
        emit8(g, 0x03);
        emit8(g, 0xb8); /* the new bytes: b8 xx xx xx = mov eax, imm32 (its last byte stays) */
        emit8(g, (uint8_t)rnd(g));
        emit8(g, (uint8_t)rnd(g));
        emit8(g, (uint8_t)rnd(g));
        for (unsigned i = 0; i < gap; i++) {
            emit8(g, 0x90);
        }
        emitn(g, 0x90909090u, 4);
        emit8(g, 0x90);
        set_op(g, 0xc7);
        break;
    }
    }
    if (m32) {
        c->r[R_BX] &= 0xffffffffu;
        c->r[R_DI] &= 0xffffffffu;
    }
}

typedef void (*tmpl_fn)(struct gen *g);

struct tmpl_def {
    const char *name;
    tmpl_fn fn;
    unsigned weight;
    unsigned modes; /* 1: 64-bit, 2: 32-bit, 4: uses absolute code addresses (no code_off) */
};

static const struct tmpl_def tmpl_defs[] = {
    {"alu", t_alu, 10, 3},        {"alu_chain", t_alu_chain, 6, 3},
    {"unary", t_unary, 4, 3},     {"test", t_test, 2, 3},
    {"shift", t_shift, 8, 3},     {"shxd", t_shxd, 3, 3},
    {"muldiv", t_muldiv, 6, 3},   {"bt", t_bt, 4, 3},
    {"bitscan", t_bitscan, 3, 3}, {"movx", t_movx, 3, 3},
    {"cc", t_cc, 4, 3},           {"branch", t_branch, 4, 3},
    {"xchg", t_xchg, 4, 3},       {"misc", t_misc, 3, 3},
    {"lea", t_lea, 3, 3},         {"mov", t_mov, 4, 3},
    {"stack", t_stack, 4, 7},     {"string", t_string, 5, 3},
    {"bswap", t_bswap, 2, 3},     {"bcd", t_bcd, 2, 2},
    {"sse", t_sse, 30, 3},        {"x87", t_x87, 12, 3},
    {"sys", t_sys, 6, 7},         {"smc", t_smc, 3, 3},
};
#define NTMPL (sizeof(tmpl_defs) / sizeof(tmpl_defs[0]))

const size_t orc_ntmpls = NTMPL;

const char *orc_tmpl_name(size_t i)
{
    return i < NTMPL ? tmpl_defs[i].name : "?";
}

int orc_tmpl_find(const char *name)
{
    for (size_t i = 0; i < NTMPL; i++) {
        if (strcmp(tmpl_defs[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void rnd_fx(struct gen *g, uint8_t *fx)
{
    memset(fx, 0, 512);
    uint16_t fcw = 0x037f;
    memcpy(fx, &fcw, 2);
    uint32_t mxcsr = 0x1f80;
    memcpy(fx + 24, &mxcsr, 4);
    for (unsigned i = 0; i < 32; i++) {
        uint64_t v = rnd(g);
        memcpy(fx + 160 + 8 * i, &v, 8);
    }
}

void orc_gen_case(uint64_t seed, uint64_t idx, int tmpl_only, uint32_t f1_ecx, struct orc_case *c)
{
    uint64_t s = seed * 0x100000001b3ull ^ (idx + 1) * 0x9e3779b97f4a7c15ull;
    struct gen g = {.rng = &s, .c = c, .f1_ecx = f1_ecx};
    memset(c, 0, sizeof(*c));
    c->seed = orc_rand(&s);
    c->cmp = ORC_CMP_ALL;
    c->mode32 = orc_rand(&s) % 4 == 0;
    unsigned t;
    if (tmpl_only >= 0 && (size_t)tmpl_only < NTMPL) {
        t = (unsigned)tmpl_only;
        if (!(tmpl_defs[t].modes & 1)) {
            c->mode32 = 1;
        } else if (!(tmpl_defs[t].modes & 2)) {
            c->mode32 = 0;
        }
    } else {
        unsigned total = 0;
        for (unsigned i = 0; i < NTMPL; i++) {
            total += tmpl_defs[i].weight;
        }
        for (;;) {
            unsigned pick = rndn(&g, total);
            for (t = 0; t < NTMPL; t++) {
                if (pick < tmpl_defs[t].weight) {
                    break;
                }
                pick -= tmpl_defs[t].weight;
            }
            if (tmpl_defs[t].modes & (c->mode32 ? 2u : 1u)) {
                break;
            }
        }
    }
    c->tmpl = (uint16_t)t;
    for (unsigned i = 0; i < 16; i++) {
        c->r[i] = rnd_val(&g);
    }
    c->r[R_SP] = ORC_DATA_VA + 0x800;
    c->rflags = rnd(&g) & 0xcd5u;
    rnd_fx(&g, c->fx);
    if (!(tmpl_defs[t].modes & 4) && chance(&g, 5)) {
        /* start just before the end of the first code page: instructions straddle pages */
        c->code_off = (uint16_t)(ORC_PAGE - 1 - rndn(&g, 12));
        c->code2_absent = chance(&g, 20); /* kept only if the code itself reaches page 2 */
    }
    tmpl_defs[t].fn(&g);
    if (c->mode32) {
        for (unsigned i = 0; i < 16; i++) {
            c->r[i] &= 0xffffffffu;
        }
    }
    if (g.len > ORC_CODE_MAX - 8) {
        g.len = 0; /* cannot happen with the templates above; keep the case harmless */
    }
    c->code_len = (uint8_t)g.len;
    if (c->code_off + c->code_len <= ORC_PAGE) {
        /* only the exit sequence would touch page 2: it differs between the two sides */
        c->code2_absent = 0;
    }
}
