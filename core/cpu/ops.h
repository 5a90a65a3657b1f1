/* cpu-core's instruction handlers (alu.c, bitops.c, ctrl.c, string.c, misc.c), referenced by
 * the decoder tables in decode.c. Internal to core/cpu/. */
#ifndef LODGE_CORE_CPU_OPS_H
#define LODGE_CORE_CPU_OPS_H

#include "core/cpu/cpu.h"

#define X86_OP(name) void name(struct cpu *cpu, const struct x86_insn *in)

/* alu.c */
/* ADD OR ADC SBB AND SUB XOR CMP, each in the forms r/m,reg (00) reg,r/m (02) acc,imm (04)
 * and r/m,imm (80-83 /digit). */
#define X86_ALU_OPS_SIZE(name, sz)                                                                 \
    X86_OP(op_##name##_rm_r_##sz);                                                                 \
    X86_OP(op_##name##_r_rm_##sz);                                                                 \
    X86_OP(op_##name##_a_imm_##sz);                                                                \
    X86_OP(op_##name##_rm_imm_##sz)
#define X86_ALU_OPS(name)                                                                          \
    X86_OP(op_##name##_rm_r);                                                                      \
    X86_OP(op_##name##_r_rm);                                                                      \
    X86_OP(op_##name##_a_imm);                                                                     \
    X86_OP(op_##name##_rm_imm);                                                                    \
    X86_ALU_OPS_SIZE(name, 1);                                                                     \
    X86_ALU_OPS_SIZE(name, 2);                                                                     \
    X86_ALU_OPS_SIZE(name, 4);                                                                     \
    X86_ALU_OPS_SIZE(name, 8)
X86_ALU_OPS(add);
X86_ALU_OPS(or);
X86_ALU_OPS(adc);
X86_ALU_OPS(sbb);
X86_ALU_OPS(and);
X86_ALU_OPS(sub);
X86_ALU_OPS(xor);
X86_ALU_OPS(cmp);
X86_OP(op_test_rm_r);     /* 84,85 */
X86_OP(op_test_a_imm);    /* A8,A9 */
X86_OP(op_test_rm_imm);   /* F6/F7 /0 /1 */
X86_OP(op_not);           /* F6/F7 /2 */
X86_OP(op_neg);           /* F6/F7 /3 */
X86_OP(op_mul);           /* F6/F7 /4 */
X86_OP(op_imul1);         /* F6/F7 /5 */
X86_OP(op_div);           /* F6/F7 /6 */
X86_OP(op_idiv);          /* F6/F7 /7 */
X86_OP(op_imul_r_rm);     /* 0F AF */
X86_OP(op_imul_r_rm_imm); /* 69, 6B */
X86_OP(op_inc_r);         /* 40-47 (not 64-bit) */
X86_OP(op_dec_r);         /* 48-4F (not 64-bit) */
X86_OP(op_inc_rm);        /* FE/FF /0 */
X86_OP(op_dec_rm);        /* FE/FF /1 */
X86_OP(op_shift);         /* C0,C1,D0-D3 */
X86_OP(op_shld);          /* 0F A4, A5 */
X86_OP(op_shrd);          /* 0F AC, AD */
X86_OP(op_daa);
X86_OP(op_das);
X86_OP(op_aaa);
X86_OP(op_aas);
X86_OP(op_aam);
X86_OP(op_aad);
X86_OP(op_salc);
X86_OP(op_cbw); /* 98 */
X86_OP(op_cwd); /* 99 */

/* bitops.c */
X86_OP(op_bt_r);   /* 0F A3, AB, B3, BB */
X86_OP(op_bt_imm); /* 0F BA /4-/7 */
X86_OP(op_bsf);    /* 0F BC (and TZCNT with F3 when advertised) */
X86_OP(op_bsr);    /* 0F BD (and LZCNT with F3 when advertised) */
X86_OP(op_popcnt); /* F3 0F B8 */
X86_OP(op_bswap);  /* 0F C8-CF */

/* misc.c: moves, exchanges, flags, atomic ops */
X86_OP(op_mov_rm_r);   /* 88, 89 */
X86_OP(op_mov_r_rm);   /* 8A, 8B */
X86_OP(op_mov_rm_r_1); /* size-specialised forms of the two above */
X86_OP(op_mov_rm_r_2);
X86_OP(op_mov_rm_r_4);
X86_OP(op_mov_rm_r_8);
X86_OP(op_mov_r_rm_1);
X86_OP(op_mov_r_rm_2);
X86_OP(op_mov_r_rm_4);
X86_OP(op_mov_r_rm_8);
X86_OP(op_mov_rm_imm);  /* C6/C7 /0 */
X86_OP(op_mov_r_imm);   /* B0-BF */
X86_OP(op_mov_a_moffs); /* A0, A1 */
X86_OP(op_mov_moffs_a); /* A2, A3 */
X86_OP(op_mov_rm_sreg); /* 8C */
X86_OP(op_mov_sreg_rm); /* 8E */
X86_OP(op_lea);         /* 8D */
X86_OP(op_movzx);       /* 0F B6, B7 */
X86_OP(op_movsx);       /* 0F BE, BF */
X86_OP(op_movsxd);      /* 63 in 64-bit mode */
X86_OP(op_movbe);       /* 0F 38 F0/F1 */
X86_OP(op_movnti);      /* 0F C3 */
X86_OP(op_xchg_rm_r);   /* 86, 87 */
X86_OP(op_xchg_a_r);    /* 91-97, 90 with REX.B */
X86_OP(op_nop);         /* 90, 0F 1F, 0F 18-1E hints, fences, prefetch */
X86_OP(op_pause);       /* F3 90 */
X86_OP(op_cmpxchg);     /* 0F B0, B1 */
X86_OP(op_xadd);        /* 0F C0, C1 */
X86_OP(op_cmpxchg8b);   /* 0F C7 /1 (16B with REX.W) */
X86_OP(op_cmov);        /* 0F 40-4F */
X86_OP(op_setcc);       /* 0F 90-9F */
X86_OP(op_lahf);
X86_OP(op_sahf);
X86_OP(op_clc);
X86_OP(op_stc);
X86_OP(op_cmc);
X86_OP(op_cld);
X86_OP(op_std);
X86_OP(op_cli);
X86_OP(op_sti);
X86_OP(op_xlat);
X86_OP(op_lxs);   /* C4 LES, C5 LDS, 0F B2 LSS, 0F B4 LFS, 0F B5 LGS */
X86_OP(op_grp15); /* 0F AE: fxsave.. to cpu-fpu, fences, clflush */
X86_OP(op_bound); /* 62 (not 64-bit) */

/* ctrl.c: branches, stack */
/* Jcc per condition code (70-7F, 0F 80-8F): the condition folds into each handler. */
X86_OP(op_jcc_0);
X86_OP(op_jcc_1);
X86_OP(op_jcc_2);
X86_OP(op_jcc_3);
X86_OP(op_jcc_4);
X86_OP(op_jcc_5);
X86_OP(op_jcc_6);
X86_OP(op_jcc_7);
X86_OP(op_jcc_8);
X86_OP(op_jcc_9);
X86_OP(op_jcc_10);
X86_OP(op_jcc_11);
X86_OP(op_jcc_12);
X86_OP(op_jcc_13);
X86_OP(op_jcc_14);
X86_OP(op_jcc_15);
X86_OP(op_jmp_rel);   /* E9, EB */
X86_OP(op_call_rel);  /* E8 */
X86_OP(op_ret);       /* C3, C2 */
X86_OP(op_jmp_rm);    /* FF /4 */
X86_OP(op_call_rm);   /* FF /2 */
X86_OP(op_jmpf_rm);   /* FF /5 */
X86_OP(op_callf_rm);  /* FF /3 */
X86_OP(op_jmpf_ptr);  /* EA */
X86_OP(op_callf_ptr); /* 9A */
X86_OP(op_retf);      /* CA, CB */
X86_OP(op_iret);      /* CF */
X86_OP(op_loop);      /* E0-E2 */
X86_OP(op_jcxz);      /* E3 */
X86_OP(op_int);       /* CD */
X86_OP(op_int3);      /* CC */
X86_OP(op_into);      /* CE */
X86_OP(op_icebp);     /* F1 */
X86_OP(op_push_r);    /* 50-57 */
X86_OP(op_pop_r);     /* 58-5F */
X86_OP(op_push_imm);  /* 68, 6A */
X86_OP(op_push_rm);   /* FF /6 */
X86_OP(op_pop_rm);    /* 8F /0 */
X86_OP(op_push_sreg); /* 06, 0E, 16, 1E, 0F A0, 0F A8 */
X86_OP(op_pop_sreg);  /* 07, 17, 1F, 0F A1, 0F A9 */
X86_OP(op_pusha);
X86_OP(op_popa);
X86_OP(op_pushf);
X86_OP(op_popf);
X86_OP(op_enter);
X86_OP(op_leave);
X86_OP(op_in_imm);  /* E4, E5 */
X86_OP(op_out_imm); /* E6, E7 */
X86_OP(op_in_dx);   /* EC, ED */
X86_OP(op_out_dx);  /* EE, EF */

/* string.c */
X86_OP(op_movs);
X86_OP(op_cmps);
X86_OP(op_stos);
X86_OP(op_lods);
X86_OP(op_scas);
X86_OP(op_ins);
X86_OP(op_outs);

#endif
