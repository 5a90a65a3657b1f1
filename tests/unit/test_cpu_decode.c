/* Unit tests for the soft CPU's decoder (core/cpu/decode.c): lengths, prefixes, ModRM/SIB
 * forms, immediates, VEX/EVEX lengths, the 15-byte limit and LOCK validity (SDM vol. 2). */
#include "core/cpu/cpu.h"
#include "core/cpu/ops.h"

#include <CUnit/Basic.h>

static int dec(struct x86_insn *in, const uint8_t *b, size_t n, int mode)
{
    return x86_decode(in, b, n, mode);
}

#define DEC(mode, ...)                                                                             \
    ({                                                                                             \
        static const uint8_t bytes_[] = {__VA_ARGS__};                                             \
        dec(&in, bytes_, sizeof(bytes_), mode);                                                    \
    })

static void test_lengths_64(void)
{
    struct x86_insn in;
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x90), 1);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x48, 0x89, 0xc3), 3); /* mov rbx, rax */
    CU_ASSERT_EQUAL(in.opsize, 8);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8), 10); /* movabs */
    CU_ASSERT_EQUAL(in.imm, 0x0807060504030201ull);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x66, 0xb8, 0x34, 0x12), 4);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xb8, 1, 2, 3, 4), 5);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x81, 0xc0, 1, 2, 3, 4), 6);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x66, 0x81, 0xc0, 1, 2), 5);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x48, 0x83, 0xc0, 0xff), 4);
    CU_ASSERT_EQUAL(in.imm, ~0ull);                               /* sign-extended */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x8b, 0x44, 0x24, 0x08), 4); /* mov eax,[rsp+8] */
    CU_ASSERT_EQUAL(in.ea_base, CPU_RSP);
    CU_ASSERT_EQUAL(in.ea_index, X86_EA_NONE);
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_SS);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x8b, 0x04, 0x25, 0, 0x10, 0, 0), 7); /* [disp32] */
    CU_ASSERT_EQUAL(in.ea_base, X86_EA_NONE);
    CU_ASSERT_EQUAL(in.disp, 0x1000);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x42, 0x8b, 0x84, 0xa8, 0x78, 0x56, 0x34, 0x12), 8);
    CU_ASSERT_EQUAL(in.ea_index, CPU_R13);
    CU_ASSERT_EQUAL(in.ea_scale, 2);
    CU_ASSERT_EQUAL(in.ea_base, CPU_RAX);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x48, 0x8b, 0x05, 0x10, 0, 0, 0), 7); /* RIP-relative */
    CU_ASSERT_EQUAL(in.ea_base, X86_EA_RIP);
    CU_ASSERT_TRUE(in.flags & X86_F_RIPREL);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8), 9); /* moffs64 */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x67, 0xa1, 1, 2, 3, 4), 6);       /* moffs32 */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xc8, 0x10, 0x00, 0x01), 4);       /* enter */
    CU_ASSERT_EQUAL(in.imm2, 1);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x0f, 0x84, 0, 0, 0, 0), 6);
    CU_ASSERT_TRUE(in.flags & X86_F_END);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf6, 0xc0, 0x12), 3);       /* test al, imm8 */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf6, 0xd0), 2);             /* not al */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf7, 0xc0, 1, 2, 3, 4), 6); /* test eax, imm32 */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x0f, 0x0f, 0xc1, 0xb4), 4); /* 3DNow! */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08), 6); /* palignr */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x0f, 0x1f, 0x44, 0x00, 0x00), 5);       /* nopl */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xff, 0x15, 0, 0, 0, 0), 6);             /* call [rip] */
    CU_ASSERT_EQUAL(in.opsize, 8);
    CU_ASSERT_TRUE(in.flags & X86_F_BRANCH);
}

static void test_lengths_16_32(void)
{
    struct x86_insn in;
    CU_ASSERT_EQUAL(DEC(X86_MODE_16, 0x8b, 0x46, 0x02), 3); /* mov ax,[bp+2] */
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_SS);
    CU_ASSERT_EQUAL(in.opsize, 2);
    CU_ASSERT_EQUAL(DEC(X86_MODE_16, 0x8b, 0x06, 0x34, 0x12), 4); /* mov ax,[1234] */
    CU_ASSERT_EQUAL(in.ea_base, X86_EA_NONE);
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_DS);
    CU_ASSERT_EQUAL(DEC(X86_MODE_16, 0x66, 0xb8, 1, 2, 3, 4), 6);
    CU_ASSERT_EQUAL(DEC(X86_MODE_16, 0x67, 0x8b, 0x04, 0x24), 4); /* 32-bit SIB */
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0x40), 1);                   /* inc eax */
    CU_ASSERT_PTR_EQUAL(in.exec, op_inc_r);
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0x8b, 0x05, 0, 0x10, 0, 0), 6); /* absolute disp32 */
    CU_ASSERT_EQUAL(in.ea_base, X86_EA_NONE);
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0xea, 1, 2, 3, 4, 0x08, 0x00), 7); /* jmp far */
    CU_ASSERT_EQUAL(in.imm2, 8);
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0xc5, 0x00), 2); /* lds, not VEX */
    CU_ASSERT_PTR_EQUAL(in.exec, op_lxs);
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0x63, 0xc0), 2); /* arpl */
    CU_ASSERT_PTR_EQUAL(in.exec, cpu_sys_arpl);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x63, 0xc0), 2); /* movsxd */
    CU_ASSERT_PTR_EQUAL(in.exec, op_movsxd);
}

static void test_prefix_rules(void)
{
    struct x86_insn in;
    /* REX counts only directly before the opcode. */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x48, 0x66, 0x89, 0xc0), 4);
    CU_ASSERT_EQUAL(in.opsize, 2);
    CU_ASSERT_EQUAL(in.rex, 0);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x66, 0x48, 0x89, 0xc0), 4);
    CU_ASSERT_EQUAL(in.opsize, 8);
    /* The last segment override wins; in 64-bit mode only FS/GS count. */
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0x2e, 0x3e, 0x8b, 0x00), 4);
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_DS);
    CU_ASSERT_EQUAL(DEC(X86_MODE_32, 0x3e, 0x26, 0x8b, 0x00), 4);
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_ES);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x64, 0x65, 0x8b, 0x00), 4);
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_GS);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x2e, 0x8b, 0x00), 3);
    CU_ASSERT_EQUAL(in.seg, CPU_SEG_DS);
    /* Mandatory prefixes: F2/F3 (last wins) take precedence over 66. */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x66, 0x0f, 0x6f, 0xc1), 4);
    CU_ASSERT_EQUAL(in.simd, X86_SIMD_66);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x66, 0xf3, 0x0f, 0x6f, 0xc1), 5);
    CU_ASSERT_EQUAL(in.simd, X86_SIMD_F3);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf3, 0xf2, 0x0f, 0x10, 0xc1), 5);
    CU_ASSERT_EQUAL(in.simd, X86_SIMD_F2);
    CU_ASSERT_TRUE(in.pfx & X86_PFX_REPNE);
    CU_ASSERT_FALSE(in.pfx & X86_PFX_REP);
    /* PAUSE and XCHG r8 are not NOP. */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf3, 0x90), 2);
    CU_ASSERT_PTR_EQUAL(in.exec, op_pause);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x41, 0x90), 2);
    CU_ASSERT_PTR_EQUAL(in.exec, op_xchg_a_r);
}

static void test_lock_validity(void)
{
    struct x86_insn in;
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x01, 0x00), 3); /* lock add [rax] */
    CU_ASSERT_FALSE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x01, 0xc0), 3); /* lock add eax,eax */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x90), 2);
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x39, 0x00), 3); /* lock cmp: no */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x0f, 0xc7, 0x0f), 4); /* lock cmpxchg8b */
    CU_ASSERT_FALSE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x0f, 0xba, 0x28, 3), 5); /* lock bts [rax],3 */
    CU_ASSERT_FALSE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xf0, 0x0f, 0xba, 0x20, 3), 5); /* lock bt: no */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
}

static void test_limits_and_vex(void)
{
    struct x86_insn in;
    uint8_t b[16];
    memset(b, 0x66, sizeof(b));
    b[14] = 0x90; /* 14 prefixes + NOP = 15 bytes: fine */
    CU_ASSERT_EQUAL(dec(&in, b, 15, X86_MODE_64), 15);
    b[14] = 0x66;
    b[15] = 0x90; /* 16 bytes */
    CU_ASSERT_EQUAL(dec(&in, b, 16, X86_MODE_64), X86_DECODE_TOOLONG);
    CU_ASSERT_EQUAL(dec(&in, b, 5, X86_MODE_64), X86_DECODE_MORE);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x48, 0xb8, 1, 2), X86_DECODE_MORE);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xc5, 0xf8, 0x77), 3); /* vzeroupper */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xc4, 0xe2, 0x79, 0x18, 0x00), 5); /* vbroadcastss */
    CU_ASSERT_TRUE(in.pfx & X86_PFX_VEX);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0xc4, 0xe3, 0x79, 0x0f, 0xc1, 8), 6);    /* map 0F3A: imm8 */
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x62, 0xf1, 0x7c, 0x48, 0x58, 0xc1), 6); /* EVEX */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x0f, 0x0b), 2); /* ud2 */
    CU_ASSERT_PTR_EQUAL(in.exec, x86_op_ud);
    CU_ASSERT_EQUAL(DEC(X86_MODE_64, 0x06), 1); /* push es: #UD */
    CU_ASSERT_TRUE(in.flags & X86_F_UD);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("cpu_decode", NULL, NULL);
    CU_add_test(s, "lengths_64", test_lengths_64);
    CU_add_test(s, "lengths_16_32", test_lengths_16_32);
    CU_add_test(s, "prefix_rules", test_prefix_rules);
    CU_add_test(s, "lock_validity", test_lock_validity);
    CU_add_test(s, "limits_and_vex", test_limits_and_vex);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
