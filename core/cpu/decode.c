/* x86 instruction decoder: prefixes, REX, the one-byte/0F/0F38/0F3A maps, ModRM/SIB/disp,
 * immediates, VEX/EVEX/XOP lengths (those always become #UD here), the 15-byte limit and
 * LOCK validity. It produces struct x86_insn records with the handler pointer already
 * chosen, so execution never decodes again. Tables are constant data (GNU range
 * designators); nothing here needs a CPU. */
#include "core/cpu/cpu.h"
#include "core/cpu/ops.h"

/* Immediate kinds (low 4 bits of the descriptor flags). */
enum {
    I_NONE = 0,
    I_B,     /* 8 bits, zero-extended */
    I_BS,    /* 8 bits, sign-extended */
    I_W,     /* 16 bits */
    I_Z,     /* 16 or 32 bits by operand size, sign-extended (32 with 64-bit operands) */
    I_V,     /* 16, 32 or 64 bits by operand size (MOV r, imm) */
    I_WB,    /* 16 then 8 bits (ENTER) */
    I_PTR,   /* offset (16/32 by operand size) then 16-bit selector (far JMP/CALL) */
    I_MOFFS, /* address-size offset (MOV AL, moffs) */
};

#define D_IMM_MASK 0x000fu
#define D_MODRM 0x0010u    /* has ModRM */
#define D_BYTE 0x0020u     /* byte operand size */
#define D_D64 0x0040u      /* 64-bit default operand size in 64-bit mode */
#define D_BRANCH 0x0080u   /* writes RIP */
#define D_END 0x0100u      /* ends the block */
#define D_LOCK 0x0200u     /* LOCK allowed with a memory operand */
#define D_INV64 0x0400u    /* #UD in 64-bit mode */
#define D_MEMONLY 0x0800u  /* #UD with a register operand */
#define D_FORCEREG 0x1000u /* ModRM always names registers (MOV CR/DR) */
#define D_UD 0x2000u       /* undefined */
#define D_SSE 0x4000u      /* 66/F2/F3 are mandatory prefixes */
#define D_NEAR 0x8000u     /* near branch (X86_F_NEAR) */
#define D_GRP_SHIFT 16     /* group number in bits 16-23 (0: none) */
#define D_GRP(n) ((uint32_t)(n) << D_GRP_SHIFT)

struct opdesc {
    x86_handler h;
    uint32_t f;
};

enum { G_NONE, G_1, G_1A, G_2, G_3, G_4, G_5, G_11B, G_11V, G_8, G_9, G_COUNT };

/* The opcode tables are laid out by hand (one entry per line or row). */
/* clang-format off */
#define UD {x86_op_ud, D_UD}
#define BR (D_BRANCH | D_END)
#define NBR (D_BRANCH | D_END | D_NEAR)

#define ALU_ROW_L(base, name, lock)                                                            \
    [base + 0] = {op_##name##_rm_r, D_MODRM | D_BYTE | (lock)},                                \
    [base + 1] = {op_##name##_rm_r, D_MODRM | (lock)},                                         \
    [base + 2] = {op_##name##_r_rm, D_MODRM | D_BYTE},                                         \
    [base + 3] = {op_##name##_r_rm, D_MODRM},                                                  \
    [base + 4] = {op_##name##_a_imm, D_BYTE | I_B},                                            \
    [base + 5] = {op_##name##_a_imm, I_Z}
#define ALU_ROW(base, name) ALU_ROW_L(base, name, D_LOCK)
#define JCC_ROW(base, imm)                                                                     \
    [base + 0] = {op_jcc_0, D_D64 | NBR | (imm)}, [base + 1] = {op_jcc_1, D_D64 | NBR | (imm)},  \
    [base + 2] = {op_jcc_2, D_D64 | NBR | (imm)}, [base + 3] = {op_jcc_3, D_D64 | NBR | (imm)},  \
    [base + 4] = {op_jcc_4, D_D64 | NBR | (imm)}, [base + 5] = {op_jcc_5, D_D64 | NBR | (imm)},  \
    [base + 6] = {op_jcc_6, D_D64 | NBR | (imm)}, [base + 7] = {op_jcc_7, D_D64 | NBR | (imm)},  \
    [base + 8] = {op_jcc_8, D_D64 | NBR | (imm)}, [base + 9] = {op_jcc_9, D_D64 | NBR | (imm)},  \
    [base + 10] = {op_jcc_10, D_D64 | NBR | (imm)},                                            \
    [base + 11] = {op_jcc_11, D_D64 | NBR | (imm)},                                            \
    [base + 12] = {op_jcc_12, D_D64 | NBR | (imm)},                                            \
    [base + 13] = {op_jcc_13, D_D64 | NBR | (imm)},                                            \
    [base + 14] = {op_jcc_14, D_D64 | NBR | (imm)},                                            \
    [base + 15] = {op_jcc_15, D_D64 | NBR | (imm)}

static const struct opdesc map1b[256] = {
    ALU_ROW(0x00, add), ALU_ROW(0x08, or), ALU_ROW(0x10, adc), ALU_ROW(0x18, sbb),
    ALU_ROW(0x20, and), ALU_ROW(0x28, sub), ALU_ROW(0x30, xor), ALU_ROW_L(0x38, cmp, 0),
    [0x06] = {op_push_sreg, D_INV64},
    [0x07] = {op_pop_sreg, D_INV64 | D_END},
    [0x0e] = {op_push_sreg, D_INV64},
    [0x16] = {op_push_sreg, D_INV64},
    [0x17] = {op_pop_sreg, D_INV64 | D_END},
    [0x1e] = {op_push_sreg, D_INV64},
    [0x1f] = {op_pop_sreg, D_INV64 | D_END},
    [0x27] = {op_daa, D_INV64},
    [0x2f] = {op_das, D_INV64},
    [0x37] = {op_aaa, D_INV64},
    [0x3f] = {op_aas, D_INV64},
    [0x40 ... 0x47] = {op_inc_r, 0},
    [0x48 ... 0x4f] = {op_dec_r, 0},
    [0x50 ... 0x57] = {op_push_r, D_D64},
    [0x58 ... 0x5f] = {op_pop_r, D_D64},
    [0x60] = {op_pusha, D_INV64},
    [0x61] = {op_popa, D_INV64},
    [0x62] = {op_bound, D_INV64 | D_MODRM | D_MEMONLY},
    [0x63] = {cpu_sys_arpl, D_MODRM}, /* MOVSXD in 64-bit mode (see decode) */
    [0x68] = {op_push_imm, D_D64 | I_Z},
    [0x69] = {op_imul_r_rm_imm, D_MODRM | I_Z},
    [0x6a] = {op_push_imm, D_D64 | I_BS},
    [0x6b] = {op_imul_r_rm_imm, D_MODRM | I_BS},
    [0x6c] = {op_ins, D_BYTE},
    [0x6d] = {op_ins, 0},
    [0x6e] = {op_outs, D_BYTE},
    [0x6f] = {op_outs, 0},
    JCC_ROW(0x70, I_BS),
    [0x80] = {NULL, D_MODRM | D_BYTE | I_B | D_GRP(G_1)},
    [0x81] = {NULL, D_MODRM | I_Z | D_GRP(G_1)},
    [0x82] = {NULL, D_MODRM | D_BYTE | I_B | D_INV64 | D_GRP(G_1)},
    [0x83] = {NULL, D_MODRM | I_BS | D_GRP(G_1)},
    [0x84] = {op_test_rm_r, D_MODRM | D_BYTE},
    [0x85] = {op_test_rm_r, D_MODRM},
    [0x86] = {op_xchg_rm_r, D_MODRM | D_BYTE | D_LOCK},
    [0x87] = {op_xchg_rm_r, D_MODRM | D_LOCK},
    [0x88] = {op_mov_rm_r, D_MODRM | D_BYTE},
    [0x89] = {op_mov_rm_r, D_MODRM},
    [0x8a] = {op_mov_r_rm, D_MODRM | D_BYTE},
    [0x8b] = {op_mov_r_rm, D_MODRM},
    [0x8c] = {op_mov_rm_sreg, D_MODRM},
    [0x8d] = {op_lea, D_MODRM | D_MEMONLY},
    [0x8e] = {op_mov_sreg_rm, D_MODRM | D_END},
    [0x8f] = {NULL, D_MODRM | D_D64 | D_GRP(G_1A)},
    [0x90] = {op_nop, 0},
    [0x91 ... 0x97] = {op_xchg_a_r, 0},
    [0x98] = {op_cbw, 0},
    [0x99] = {op_cwd, 0},
    [0x9a] = {op_callf_ptr, D_INV64 | BR | I_PTR},
    [0x9b] = {cpu_exec_fwait, 0},
    [0x9c] = {op_pushf, D_D64},
    [0x9d] = {op_popf, D_D64 | D_END},
    [0x9e] = {op_sahf, 0},
    [0x9f] = {op_lahf, 0},
    [0xa0] = {op_mov_a_moffs, D_BYTE | I_MOFFS},
    [0xa1] = {op_mov_a_moffs, I_MOFFS},
    [0xa2] = {op_mov_moffs_a, D_BYTE | I_MOFFS},
    [0xa3] = {op_mov_moffs_a, I_MOFFS},
    [0xa4] = {op_movs, D_BYTE},
    [0xa5] = {op_movs, 0},
    [0xa6] = {op_cmps, D_BYTE},
    [0xa7] = {op_cmps, 0},
    [0xa8] = {op_test_a_imm, D_BYTE | I_B},
    [0xa9] = {op_test_a_imm, I_Z},
    [0xaa] = {op_stos, D_BYTE},
    [0xab] = {op_stos, 0},
    [0xac] = {op_lods, D_BYTE},
    [0xad] = {op_lods, 0},
    [0xae] = {op_scas, D_BYTE},
    [0xaf] = {op_scas, 0},
    [0xb0 ... 0xb7] = {op_mov_r_imm, D_BYTE | I_B},
    [0xb8 ... 0xbf] = {op_mov_r_imm, I_V},
    [0xc0] = {op_shift, D_MODRM | D_BYTE | I_B | D_GRP(G_2)},
    [0xc1] = {op_shift, D_MODRM | I_B | D_GRP(G_2)},
    [0xc2] = {op_ret, D_D64 | NBR | I_W},
    [0xc3] = {op_ret, D_D64 | NBR},
    [0xc4] = {op_lxs, D_MODRM | D_MEMONLY | D_INV64 | D_END},
    [0xc5] = {op_lxs, D_MODRM | D_MEMONLY | D_INV64 | D_END},
    [0xc6] = {NULL, D_MODRM | D_BYTE | I_B | D_GRP(G_11B)},
    [0xc7] = {NULL, D_MODRM | I_Z | D_GRP(G_11V)},
    [0xc8] = {op_enter, D_D64 | I_WB},
    [0xc9] = {op_leave, D_D64},
    [0xca] = {op_retf, BR | I_W},
    [0xcb] = {op_retf, BR},
    [0xcc] = {op_int3, BR},
    [0xcd] = {op_int, BR | I_B},
    [0xce] = {op_into, BR | D_INV64},
    [0xcf] = {op_iret, BR},
    [0xd0] = {op_shift, D_MODRM | D_BYTE | D_GRP(G_2)},
    [0xd1] = {op_shift, D_MODRM | D_GRP(G_2)},
    [0xd2] = {op_shift, D_MODRM | D_BYTE | D_GRP(G_2)},
    [0xd3] = {op_shift, D_MODRM | D_GRP(G_2)},
    [0xd4] = {op_aam, D_INV64 | I_B},
    [0xd5] = {op_aad, D_INV64 | I_B},
    [0xd6] = {op_salc, D_INV64},
    [0xd7] = {op_xlat, 0},
    [0xd8 ... 0xdf] = {cpu_exec_x87, D_MODRM},
    [0xe0 ... 0xe2] = {op_loop, D_D64 | NBR | I_BS},
    [0xe3] = {op_jcxz, D_D64 | NBR | I_BS},
    [0xe4] = {op_in_imm, D_BYTE | I_B},
    [0xe5] = {op_in_imm, I_B},
    [0xe6] = {op_out_imm, D_BYTE | I_B | D_END},
    [0xe7] = {op_out_imm, I_B | D_END},
    [0xe8] = {op_call_rel, D_D64 | NBR | I_Z},
    [0xe9] = {op_jmp_rel, D_D64 | NBR | I_Z},
    [0xea] = {op_jmpf_ptr, D_INV64 | BR | I_PTR},
    [0xeb] = {op_jmp_rel, D_D64 | NBR | I_BS},
    [0xec] = {op_in_dx, D_BYTE},
    [0xed] = {op_in_dx, 0},
    [0xee] = {op_out_dx, D_BYTE | D_END},
    [0xef] = {op_out_dx, D_END},
    [0xf1] = {op_icebp, BR},
    [0xf4] = {cpu_sys_hlt, D_END},
    [0xf5] = {op_cmc, 0},
    [0xf6] = {NULL, D_MODRM | D_BYTE | D_GRP(G_3)},
    [0xf7] = {NULL, D_MODRM | D_GRP(G_3)},
    [0xf8] = {op_clc, 0},
    [0xf9] = {op_stc, 0},
    [0xfa] = {op_cli, 0},
    [0xfb] = {op_sti, D_END},
    [0xfc] = {op_cld, 0},
    [0xfd] = {op_std, 0},
    [0xfe] = {NULL, D_MODRM | D_BYTE | D_GRP(G_4)},
    [0xff] = {NULL, D_MODRM | D_GRP(G_5)},
};

#define SSE(imm) {cpu_exec_sse, D_MODRM | D_SSE | (imm)}
#define SYS(fn, extra) {fn, D_END | (extra)}

static const struct opdesc map0f[256] = {
    [0x00] = SYS(cpu_sys_grp6, D_MODRM),
    [0x01] = SYS(cpu_sys_grp7, D_MODRM | D_BRANCH),
    [0x02] = {cpu_sys_lar, D_MODRM},
    [0x03] = {cpu_sys_lsl, D_MODRM},
    [0x04] = UD,
    [0x05] = SYS(cpu_sys_syscall, D_BRANCH),
    [0x06] = SYS(cpu_sys_clts, 0),
    [0x07] = SYS(cpu_sys_sysret, D_BRANCH),
    [0x08] = SYS(cpu_sys_invd, 0),
    [0x09] = SYS(cpu_sys_invd, 0),
    [0x0a] = UD,
    [0x0b] = {x86_op_ud, 0}, /* UD2: defined, raises #UD */
    [0x0c] = UD,
    [0x0d] = {op_nop, D_MODRM},
    [0x0e] = UD,
    [0x0f] = {x86_op_ud, D_UD | D_MODRM | I_B}, /* 3DNow!: not advertised */
    [0x10 ... 0x17] = SSE(0),
    [0x18 ... 0x1f] = {op_nop, D_MODRM},
    [0x20] = SYS(cpu_sys_mov_cr, D_MODRM | D_FORCEREG),
    [0x21] = SYS(cpu_sys_mov_dr, D_MODRM | D_FORCEREG),
    [0x22] = SYS(cpu_sys_mov_cr, D_MODRM | D_FORCEREG),
    [0x23] = SYS(cpu_sys_mov_dr, D_MODRM | D_FORCEREG),
    [0x24 ... 0x27] = UD,
    [0x28 ... 0x2f] = SSE(0),
    [0x30] = SYS(cpu_sys_wrmsr, 0),
    [0x31] = {cpu_sys_rdtsc, 0},
    [0x32] = {cpu_sys_rdmsr, 0},
    [0x33] = {cpu_sys_rdpmc, 0},
    [0x34] = SYS(cpu_sys_sysenter, D_BRANCH),
    [0x35] = SYS(cpu_sys_sysexit, D_BRANCH),
    [0x36 ... 0x3f] = UD,
    [0x40 ... 0x4f] = {op_cmov, D_MODRM},
    [0x50 ... 0x6f] = SSE(0),
    [0x70 ... 0x73] = SSE(I_B),
    [0x74 ... 0x76] = SSE(0),
    [0x77] = {cpu_exec_sse, D_SSE}, /* EMMS: no ModRM */
    [0x78 ... 0x7f] = SSE(0),
    JCC_ROW(0x80, I_Z),
    [0x90 ... 0x9f] = {op_setcc, D_MODRM | D_BYTE},
    [0xa0] = {op_push_sreg, D_D64},
    [0xa1] = {op_pop_sreg, D_D64 | D_END},
    [0xa2] = {cpu_sys_cpuid, 0},
    [0xa3] = {op_bt_r, D_MODRM},
    [0xa4] = {op_shld, D_MODRM | I_B},
    [0xa5] = {op_shld, D_MODRM},
    [0xa6 ... 0xa7] = UD,
    [0xa8] = {op_push_sreg, D_D64},
    [0xa9] = {op_pop_sreg, D_D64 | D_END},
    [0xaa] = UD,
    [0xab] = {op_bt_r, D_MODRM | D_LOCK},
    [0xac] = {op_shrd, D_MODRM | I_B},
    [0xad] = {op_shrd, D_MODRM},
    [0xae] = {op_grp15, D_MODRM},
    [0xaf] = {op_imul_r_rm, D_MODRM},
    [0xb0] = {op_cmpxchg, D_MODRM | D_BYTE | D_LOCK},
    [0xb1] = {op_cmpxchg, D_MODRM | D_LOCK},
    [0xb2] = {op_lxs, D_MODRM | D_MEMONLY | D_END},
    [0xb3] = {op_bt_r, D_MODRM | D_LOCK},
    [0xb4] = {op_lxs, D_MODRM | D_MEMONLY},
    [0xb5] = {op_lxs, D_MODRM | D_MEMONLY},
    [0xb6] = {op_movzx, D_MODRM},
    [0xb7] = {op_movzx, D_MODRM},
    [0xb8] = {op_popcnt, D_MODRM}, /* without F3: JMPE, #UD (checked in decode) */
    [0xb9] = {x86_op_ud, D_MODRM}, /* UD1 */
    [0xba] = {NULL, D_MODRM | I_B | D_GRP(G_8)},
    [0xbb] = {op_bt_r, D_MODRM | D_LOCK},
    [0xbc] = {op_bsf, D_MODRM},
    [0xbd] = {op_bsr, D_MODRM},
    [0xbe] = {op_movsx, D_MODRM},
    [0xbf] = {op_movsx, D_MODRM},
    [0xc0] = {op_xadd, D_MODRM | D_BYTE | D_LOCK},
    [0xc1] = {op_xadd, D_MODRM | D_LOCK},
    [0xc2] = SSE(I_B),
    [0xc3] = {op_movnti, D_MODRM | D_MEMONLY},
    [0xc4 ... 0xc6] = SSE(I_B),
    [0xc7] = {NULL, D_MODRM | D_GRP(G_9)},
    [0xc8 ... 0xcf] = {op_bswap, 0},
    [0xd0 ... 0xfe] = SSE(0),
    [0xff] = {x86_op_ud, D_MODRM}, /* UD0 */
};

/* Groups: the ModRM.reg-selected entry replaces handler and adds flags. */
static const struct opdesc groups[G_COUNT][8] = {
    [G_1] = {
        {op_add_rm_imm, D_LOCK}, {op_or_rm_imm, D_LOCK}, {op_adc_rm_imm, D_LOCK},
        {op_sbb_rm_imm, D_LOCK}, {op_and_rm_imm, D_LOCK}, {op_sub_rm_imm, D_LOCK},
        {op_xor_rm_imm, D_LOCK}, {op_cmp_rm_imm, 0},
    },
    [G_1A] = {{op_pop_rm, 0}, UD, UD, UD, UD, UD, UD, UD},
    [G_2] = {
        {op_shift, 0}, {op_shift, 0}, {op_shift, 0}, {op_shift, 0},
        {op_shift, 0}, {op_shift, 0}, {op_shift, 0}, {op_shift, 0},
    },
    [G_3] = {
        {op_test_rm_imm, I_Z}, {op_test_rm_imm, I_Z}, {op_not, D_LOCK}, {op_neg, D_LOCK},
        {op_mul, 0}, {op_imul1, 0}, {op_div, 0}, {op_idiv, 0},
    },
    [G_4] = {{op_inc_rm, D_LOCK}, {op_dec_rm, D_LOCK}, UD, UD, UD, UD, UD, UD},
    [G_5] = {
        {op_inc_rm, D_LOCK}, {op_dec_rm, D_LOCK}, {op_call_rm, D_D64 | NBR},
        {op_callf_rm, D_MEMONLY | BR}, {op_jmp_rm, D_D64 | NBR}, {op_jmpf_rm, D_MEMONLY | BR},
        {op_push_rm, D_D64}, UD,
    },
    [G_11B] = {{op_mov_rm_imm, 0}, UD, UD, UD, UD, UD, UD, UD},
    [G_11V] = {{op_mov_rm_imm, 0}, UD, UD, UD, UD, UD, UD, UD},
    [G_8] = {UD, UD, UD, UD, {op_bt_imm, 0}, {op_bt_imm, D_LOCK}, {op_bt_imm, D_LOCK},
             {op_bt_imm, D_LOCK}},
    [G_9] = {UD, {op_cmpxchg8b, D_MEMONLY | D_LOCK}, UD, UD, UD, UD, UD, UD},
};

/* clang-format on */

/* Handlers with variants specialised on the operand size: generic -> [1, 2, 4, 8]. */
struct sized_handler {
    x86_handler generic;
    x86_handler sized[4];
};

#define SIZED_ALU(name)                                                                            \
    {op_##name##_rm_r,                                                                             \
     {op_##name##_rm_r_1, op_##name##_rm_r_2, op_##name##_rm_r_4, op_##name##_rm_r_8}},            \
        {op_##name##_r_rm,                                                                         \
         {op_##name##_r_rm_1, op_##name##_r_rm_2, op_##name##_r_rm_4, op_##name##_r_rm_8}},        \
        {op_##name##_a_imm,                                                                        \
         {op_##name##_a_imm_1, op_##name##_a_imm_2, op_##name##_a_imm_4, op_##name##_a_imm_8}},    \
    {                                                                                              \
        op_##name##_rm_imm,                                                                        \
        {                                                                                          \
            op_##name##_rm_imm_1, op_##name##_rm_imm_2, op_##name##_rm_imm_4, op_##name##_rm_imm_8 \
        }                                                                                          \
    }

static const struct sized_handler sized_handlers[] = {
    {op_mov_rm_r, {op_mov_rm_r_1, op_mov_rm_r_2, op_mov_rm_r_4, op_mov_rm_r_8}},
    {op_mov_r_rm, {op_mov_r_rm_1, op_mov_r_rm_2, op_mov_r_rm_4, op_mov_r_rm_8}},
    SIZED_ALU(add),
    SIZED_ALU(or),
    SIZED_ALU(adc),
    SIZED_ALU(sbb),
    SIZED_ALU(and),
    SIZED_ALU(sub),
    SIZED_ALU(xor),
    SIZED_ALU(cmp),
};

static x86_handler specialise(x86_handler h, unsigned osz)
{
    unsigned k = osz == 1 ? 0 : osz == 2 ? 1 : osz == 4 ? 2 : 3;
    for (size_t i = 0; i < sizeof(sized_handlers) / sizeof(sized_handlers[0]); i++) {
        if (sized_handlers[i].generic == h) {
            return sized_handlers[i].sized[k];
        }
    }
    return h;
}

/* 0F 0F 3DNow!, VEX 0F map and EVEX: opcodes with an imm8 in the 0F map. */
static bool map0f_has_imm8(uint8_t op)
{
    return (op >= 0x70 && op <= 0x73) || op == 0xc2 || (op >= 0xc4 && op <= 0xc6);
}

#define NEED(n)                                                                                    \
    do {                                                                                           \
        if (i + (n) > 15) {                                                                        \
            return X86_DECODE_TOOLONG;                                                             \
        }                                                                                          \
        if (i + (n) > avail) {                                                                     \
            return X86_DECODE_MORE;                                                                \
        }                                                                                          \
    } while (0)

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < n; k++) {
        v |= (uint64_t)p[k] << (8 * k);
    }
    return v;
}

int x86_decode(struct x86_insn *out, const uint8_t *b, size_t avail, int mode)
{
    size_t i = 0;
    uint8_t pfx = 0, rex = 0, seg = 0xff;
    uint8_t c;
    bool m64 = mode == X86_MODE_64;

    memset(out, 0, sizeof(*out));
    out->ea_base = X86_EA_NONE;
    out->ea_index = X86_EA_NONE;

    for (;;) {
        NEED(1);
        c = b[i];
        if (m64 && (c & 0xf0) == 0x40) {
            rex = c;
            i++;
            continue;
        }
        switch (c) {
        case 0xf0:
            pfx |= X86_PFX_LOCK;
            break;
        case 0xf2:
            pfx = (pfx & ~X86_PFX_REP) | X86_PFX_REPNE;
            break;
        case 0xf3:
            pfx = (pfx & ~X86_PFX_REPNE) | X86_PFX_REP;
            break;
        case 0x66:
            pfx |= X86_PFX_OPSZ;
            break;
        case 0x67:
            pfx |= X86_PFX_ADSZ;
            break;
        case 0x26:
        case 0x2e:
        case 0x36:
        case 0x3e:
            if (!m64) {
                seg = (c >> 3) & 3; /* 26 ES, 2E CS, 36 SS, 3E DS */
                pfx |= X86_PFX_SEG;
            }
            break;
        case 0x64:
        case 0x65:
            seg = c == 0x64 ? CPU_SEG_FS : CPU_SEG_GS;
            pfx |= X86_PFX_SEG;
            break;
        default:
            goto prefixes_done;
        }
        rex = 0; /* a REX prefix counts only directly before the opcode */
        i++;
    }
prefixes_done:
    i++; /* the opcode byte c */

    /* Operand and address size. */
    unsigned asz = m64                   ? ((pfx & X86_PFX_ADSZ) ? 4 : 8)
                   : mode == X86_MODE_32 ? ((pfx & X86_PFX_ADSZ) ? 2 : 4)
                                         : ((pfx & X86_PFX_ADSZ) ? 4 : 2);
    const struct opdesc *d;
    uint16_t op;
    bool vex = false;
    unsigned vex_map = 0;
    unsigned vex_imm = I_NONE;

    if (c == 0x0f) {
        NEED(1);
        c = b[i++];
        if (c == 0x38 || c == 0x3a) {
            uint8_t map = c;
            NEED(1);
            c = b[i++];
            static const struct opdesc sse38 = {cpu_exec_sse38, D_MODRM | D_SSE};
            static const struct opdesc sse3a = {cpu_exec_sse3a, D_MODRM | D_SSE | I_B};
            static const struct opdesc movbe = {op_movbe, D_MODRM | D_MEMONLY};
            if (map == 0x38) {
                op = X86_MAP_0F38 | c;
                d = ((c == 0xf0 || c == 0xf1) && !(pfx & X86_PFX_REPNE)) ? &movbe : &sse38;
            } else {
                op = X86_MAP_0F3A | c;
                d = &sse3a;
            }
        } else {
            op = X86_MAP_0F | c;
            d = &map0f[c];
        }
    } else {
        op = c;
        d = &map1b[c];
        bool is_vex = false;
        if (c == 0xc4 || c == 0xc5 || c == 0x62) {
            NEED(1);
            is_vex = m64 || (b[i] & 0xc0) == 0xc0;
        } else if (c == 0x8f) {
            NEED(1);
            is_vex = (b[i] & 0x1f) >= 8; /* XOP map select */
        }
        if (is_vex) {
            vex = true;
            if (c == 0xc5) {
                NEED(1);
                uint8_t p1 = b[i++];
                out->vex_l = (p1 >> 2) & 1;
                out->vex_vvvv = (~p1 >> 3) & 15;
                vex_map = 1;
            } else if (c == 0xc4 || c == 0x8f) {
                NEED(2);
                uint8_t p1 = b[i], p2 = b[i + 1];
                i += 2;
                vex_map = p1 & 0x1f;
                out->vex_w = p2 >> 7;
                out->vex_vvvv = (~p2 >> 3) & 15;
                out->vex_l = (p2 >> 2) & 1;
                if (c == 0xc4) {
                    rex = 0x40 | ((~p1 >> 5) & 7) | (out->vex_w << 3);
                }
            } else {
                NEED(3);
                uint8_t p0 = b[i], p2 = b[i + 1 + 1];
                uint8_t p1 = b[i + 1];
                i += 3;
                vex_map = p0 & 3;
                out->vex_w = p1 >> 7;
                out->vex_vvvv = (~p1 >> 3) & 15;
                out->vex_l = (p2 >> 5) & 3;
            }
            NEED(1);
            uint8_t vop = b[i++];
            unsigned immk = I_NONE;
            bool modrm = true;
            if (c == 0x8f) {
                /* XOP map 8: imm8; map 9: none; map A: imm32 (I_V is 4 bytes for VEX). */
                immk = vex_map == 8 ? I_B : vex_map == 0xa ? I_V : I_NONE;
            } else if (vex_map == 3 || (vex_map == 1 && map0f_has_imm8(vop))) {
                immk = I_B;
            }
            if (c == 0xc5 || (c == 0xc4 && vex_map == 1)) {
                if (vop == 0x77) {
                    modrm = false; /* VZEROUPPER / VZEROALL */
                }
            }
            static const struct opdesc vex_modrm = {x86_op_ud, D_UD | D_MODRM};
            static const struct opdesc vex_plain = {x86_op_ud, D_UD};
            d = modrm ? &vex_modrm : &vex_plain;
            vex_imm = immk;
            op = (uint16_t)(((vex_map & 3) << 8) | vop);
            out->vex_map = (uint8_t)vex_map;
            pfx |= X86_PFX_VEX;
        }
    }

    x86_handler h = d->h;
    uint32_t f = d->f | vex_imm;

    if (!vex) {
        /* Mode-dependent one-byte opcodes. */
        if (op == 0x63 && m64) {
            h = op_movsxd;
        }
        if (op == (X86_MAP_0F | 0xb8) && !(pfx & X86_PFX_REP)) {
            h = x86_op_ud;
            f |= D_UD;
        }
        if (op == 0x90 && (rex & 1)) {
            h = op_xchg_a_r;
        } else if (op == 0x90 && (pfx & X86_PFX_REP)) {
            h = op_pause;
        }
    }

    /* Operand size. */
    unsigned osz;
    if (f & D_BYTE) {
        osz = 1;
    } else if (m64 && (rex & 8)) {
        osz = 8;
    } else if (m64 && (f & D_D64)) {
        osz = (pfx & X86_PFX_OPSZ) ? 2 : 8;
    } else if (mode == X86_MODE_16) {
        osz = (pfx & X86_PFX_OPSZ) ? 4 : 2;
    } else {
        osz = (pfx & X86_PFX_OPSZ) ? 2 : 4;
    }

    /* ModRM, SIB, displacement. */
    uint8_t defseg = CPU_SEG_DS;
    if (f & D_MODRM) {
        NEED(1);
        uint8_t m = b[i++];
        out->modrm = m;
        out->mod = m >> 6;
        out->reg = ((m >> 3) & 7) | ((rex & 4) << 1);
        out->rm = m & 7;
        unsigned g = (f >> D_GRP_SHIFT) & 0xff;
        if (g) {
            const struct opdesc *ge = &groups[g][(m >> 3) & 7];
            h = ge->h;
            f = (f & ~(uint32_t)D_LOCK) | ge->f;
            if (ge->f & D_IMM_MASK) {
                f = (f & ~D_IMM_MASK) | (ge->f & D_IMM_MASK);
            }
            if (f & D_D64) {
                if (m64 && !(f & D_BYTE) && !(rex & 8)) {
                    osz = (pfx & X86_PFX_OPSZ) ? 2 : 8;
                }
            }
            if ((f & D_BYTE) && (f & D_IMM_MASK) == I_Z) {
                f = (f & ~D_IMM_MASK) | I_B;
            }
        }
        if (out->mod == 3 || (f & D_FORCEREG)) {
            out->mod = 3;
            out->rm |= (rex & 1) << 3;
        } else if (asz == 2) {
            static const uint8_t base16[8] = {CPU_RBX,     CPU_RBX,     CPU_RBP, CPU_RBP,
                                              X86_EA_NONE, X86_EA_NONE, CPU_RBP, CPU_RBX};
            static const uint8_t index16[8] = {CPU_RSI, CPU_RDI, CPU_RSI,     CPU_RDI,
                                               CPU_RSI, CPU_RDI, X86_EA_NONE, X86_EA_NONE};
            unsigned rm = m & 7;
            out->ea_base = base16[rm];
            out->ea_index = index16[rm];
            if (out->mod == 0 && rm == 6) {
                out->ea_base = X86_EA_NONE;
                NEED(2);
                out->disp = (int16_t)rd_le(b + i, 2);
                i += 2;
            } else if (out->mod == 1) {
                NEED(1);
                out->disp = (int8_t)b[i++];
            } else if (out->mod == 2) {
                NEED(2);
                out->disp = (int16_t)rd_le(b + i, 2);
                i += 2;
            }
            if (out->ea_base == CPU_RBP) {
                defseg = CPU_SEG_SS;
            }
        } else {
            unsigned rm = m & 7;
            if (rm == 4) {
                NEED(1);
                uint8_t sib = b[i++];
                unsigned idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
                unsigned base = (sib & 7) | ((rex & 1) << 3);
                out->ea_scale = sib >> 6;
                out->ea_index = idx == 4 ? X86_EA_NONE : (uint8_t)idx;
                if ((sib & 7) == 5 && out->mod == 0) {
                    out->ea_base = X86_EA_NONE;
                    NEED(4);
                    out->disp = (int32_t)rd_le(b + i, 4);
                    i += 4;
                } else {
                    out->ea_base = (uint8_t)base;
                }
            } else if (rm == 5 && out->mod == 0) {
                out->ea_base = m64 ? X86_EA_RIP : X86_EA_NONE;
                NEED(4);
                out->disp = (int32_t)rd_le(b + i, 4);
                i += 4;
            } else {
                out->ea_base = (uint8_t)(rm | ((rex & 1) << 3));
            }
            if (out->mod == 1) {
                NEED(1);
                out->disp = (int8_t)b[i++];
            } else if (out->mod == 2) {
                NEED(4);
                out->disp = (int32_t)rd_le(b + i, 4);
                i += 4;
            }
            if (out->ea_base == CPU_RSP || out->ea_base == CPU_RBP) {
                defseg = CPU_SEG_SS;
            }
        }
    }

    /* Immediates. */
    unsigned immk = f & D_IMM_MASK;
    unsigned n = 0;
    switch (immk) {
    case I_B:
        NEED(1);
        out->imm = b[i];
        n = 1;
        break;
    case I_BS:
        NEED(1);
        out->imm = (uint64_t)(int64_t)(int8_t)b[i];
        n = 1;
        break;
    case I_W:
        NEED(2);
        out->imm = rd_le(b + i, 2);
        n = 2;
        break;
    case I_Z:
        n = osz == 2 ? 2 : 4;
        NEED(n);
        out->imm = n == 2 ? (uint64_t)(int64_t)(int16_t)rd_le(b + i, 2)
                          : (uint64_t)(int64_t)(int32_t)rd_le(b + i, 4);
        break;
    case I_V:
        n = vex ? 4 : osz;
        NEED(n);
        out->imm = rd_le(b + i, n);
        break;
    case I_WB:
        NEED(3);
        out->imm = rd_le(b + i, 2);
        out->imm2 = b[i + 2];
        n = 3;
        break;
    case I_PTR:
        n = osz == 2 ? 2 : 4;
        NEED(n + 2);
        out->imm = rd_le(b + i, n);
        out->imm2 = (uint16_t)rd_le(b + i + n, 2);
        n += 2;
        break;
    case I_MOFFS:
        n = asz;
        NEED(n);
        out->imm = rd_le(b + i, n);
        break;
    default:
        break;
    }
    i += n;
    out->immsize = (uint8_t)n;

    /* Validity. */
    bool mem = (f & D_MODRM) && out->mod != 3;
    if ((f & D_INV64) && m64) {
        h = x86_op_ud;
        f |= D_UD;
    }
    if ((f & D_MEMONLY) && (f & D_MODRM) && !mem) {
        h = x86_op_ud;
        f |= D_UD;
    }
    if ((pfx & X86_PFX_LOCK) && (!(f & D_LOCK) || !mem)) {
        h = x86_op_ud;
        f |= D_UD;
    }
    if (!h) {
        h = x86_op_ud;
        f |= D_UD;
    }

    out->exec = (f & D_UD) ? h : specialise(h, osz);
    out->op = op;
    out->len = (uint8_t)i;
    out->opsize = (uint8_t)osz;
    out->addrsize = (uint8_t)asz;
    out->seg = seg != 0xff ? seg : defseg;
    out->pfx = pfx | (rex ? X86_PFX_REX : 0);
    out->rex = rex;
    if (pfx & X86_PFX_REP) {
        out->simd = X86_SIMD_F3;
    } else if (pfx & X86_PFX_REPNE) {
        out->simd = X86_SIMD_F2;
    } else if (pfx & X86_PFX_OPSZ) {
        out->simd = X86_SIMD_66;
    }
    uint8_t fl = 0;
    if (f & D_MODRM) {
        fl |= X86_F_MODRM;
    }
    if (mem || immk == I_MOFFS) {
        fl |= X86_F_MEM;
    }
    if (out->ea_base == X86_EA_RIP && mem) {
        fl |= X86_F_RIPREL;
    }
    if (f & D_BRANCH) {
        fl |= X86_F_BRANCH;
    }
    if (f & D_END) {
        fl |= X86_F_END;
    }
    if (f & D_NEAR) {
        fl |= X86_F_NEAR;
    }
    if (f & D_UD) {
        fl |= X86_F_UD | X86_F_END;
    }
    out->flags = fl;
    return (int)i;
}
