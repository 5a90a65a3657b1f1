/* The soft CPU's translator (core/cpu/jit.c) against the interpreter: the same programs run
 * once with every block translated at its first run and once interpreted, and must end in
 * the same state with the same instruction count; plus the results the programs compute.
 * Covers chaining in loops, the exact instruction budget, a fault in the middle of a
 * translated block (RIP, flags, count), self-modifying code inside a translated loop, and
 * flags carried across handler-run instructions, indirect branches and native SSE. */
#include "tests/unit/cpu_harness.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#define CODE 0x1000ull

struct run_result {
    int exit;
    uint64_t r[16];
    uint64_t rip, rflags, icount;
    int exc;
};

/* Run code at CODE with the translator on (translate at once) or off. */
static void run_code(const uint8_t *code, size_t len, bool jit, uint64_t max,
                     void (*setup)(struct cpu_harness *), struct run_result *out)
{
    struct cpu_harness h;
    setenv("LODGE_SOFT_JIT", jit ? "0" : "off", 1);
    CU_ASSERT_FATAL(cpu_harness_init(&h, 16 << 20, X86_MODE_64) == 0);
    unsetenv("LODGE_SOFT_JIT");
    CU_ASSERT_FATAL(cpu_harness_load(&h, CODE, code, len) == 0);
    if (setup) {
        setup(&h);
    }
    uint64_t start = h.cpu->icount;
    out->exit = cpu_harness_run(&h, CODE, max);
    memcpy(out->r, h.cpu->r, sizeof(out->r));
    out->rip = h.cpu->rip;
    out->rflags = cpu_get_rflags(h.cpu);
    out->icount = h.cpu->icount - start;
    out->exc = h.cpu->exc_vector;
    cpu_harness_free(&h);
}

/* Both engines; returns the translated run after checking it matches the interpreter. */
static struct run_result both(const uint8_t *code, size_t len, uint64_t max,
                              void (*setup)(struct cpu_harness *))
{
    struct run_result a, b;
    run_code(code, len, false, max, setup, &a);
    run_code(code, len, true, max, setup, &b);
    CU_ASSERT_EQUAL(a.exit, b.exit);
    CU_ASSERT_EQUAL(a.rip, b.rip);
    CU_ASSERT_EQUAL(a.rflags & 0x8d5, b.rflags & 0x8d5);
    CU_ASSERT_EQUAL(a.icount, b.icount);
    CU_ASSERT_EQUAL(a.exc, b.exc);
    for (int i = 0; i < 16; i++) {
        CU_ASSERT_EQUAL(a.r[i], b.r[i]);
    }
    return b;
}

static void test_loop_chained(void)
{
    static const uint8_t code[] = {
        0x31, 0xc0,                   /* xor eax, eax */
        0xb9, 0xe8, 0x03, 0x00, 0x00, /* mov ecx, 1000 */
        0x48, 0x01, 0xc8,             /* L: add rax, rcx */
        0xff, 0xc9,                   /* dec ecx */
        0x75, 0xf9,                   /* jnz L */
        0xf4,                         /* hlt */
    };
    struct run_result r = both(code, sizeof(code), 0, NULL);
    CU_ASSERT_EQUAL(r.exit, CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(r.r[CPU_RAX], 500500);
    CU_ASSERT_EQUAL(r.icount, 2 + 3 * 1000 + 1);
}

static void test_exact_budget(void)
{
    static const uint8_t code[] = {
        0x31, 0xc0, 0xb9, 0x10, 0x27, 0x00, 0x00, /* xor eax,eax; mov ecx, 10000 */
        0x48, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xf9, /* L: add rax,rcx; dec ecx; jnz L */
        0xf4,
    };
    for (uint64_t max = 1000; max < 1200; max += 37) {
        struct run_result r = both(code, sizeof(code), max, NULL);
        CU_ASSERT_EQUAL(r.exit, CPU_EXIT_ICOUNT);
        CU_ASSERT_EQUAL(r.icount, max);
    }
}

static void setup_fault(struct cpu_harness *h)
{
    h->cpu->r[CPU_RSI] = 0x4000000000ull; /* not mapped by the harness's page tables */
    h->cpu->r[CPU_RBX] = 7;
}

static void test_fault_mid_block(void)
{
    static const uint8_t code[] = {
        0xb8, 0x05, 0x00, 0x00, 0x00, /* mov eax, 5 */
        0x39, 0xd8,                   /* cmp eax, ebx: 5 - 7 sets CF and SF */
        0x48, 0x8b, 0x16,             /* mov rdx, [rsi]: #PF */
        0x83, 0xd0, 0x00,             /* adc eax, 0 (not reached): CF is live at the fault */
        0xf4,
    };
    struct run_result r = both(code, sizeof(code), 0, setup_fault);
    CU_ASSERT_EQUAL(r.exit, CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(r.exc, 14);
    CU_ASSERT_EQUAL(r.rip, CODE + 7);
    CU_ASSERT_EQUAL(r.icount, 2);
    CU_ASSERT(r.rflags & CPU_FL_CF);
    CU_ASSERT(r.rflags & CPU_FL_SF);
    CU_ASSERT_EQUAL(r.r[CPU_RAX], 5);
}

static void test_self_modifying_loop(void)
{
    static const uint8_t code[] = {
        0xb9, 0x05, 0x00, 0x00, 0x00,             /* mov ecx, 5 */
        0x31, 0xdb,                               /* xor ebx, ebx */
        0xb8, 0x11, 0x11, 0x11, 0x11,             /* L (0x1007): mov eax, 0x11111111 */
        0xff, 0x05, 0xf6, 0xff, 0xff, 0xff,       /* inc dword [rip - 10]: the imm above */
        0x01, 0xc3,                               /* add ebx, eax */
        0xff, 0xc9,                               /* dec ecx */
        0x75, 0xef,                               /* jnz L */
        0xf4,
    };
    struct run_result r = both(code, sizeof(code), 0, NULL);
    CU_ASSERT_EQUAL(r.exit, CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(r.r[CPU_RBX], 5ull * 0x11111111 + 10);
}

static void setup_lods(struct cpu_harness *h)
{
    h->cpu->r[CPU_RSI] = 0x8000;
}

/* Indirect CALL through a jump table in memory and through a register, indirect JMP through a
 * register, then SSE string idioms (an aligned strlen with PCMPEQB/PMOVMSKB, PCMPISTRI, PSHUFD,
 * MOVQ to a GPR) and a JMP to a non-canonical address (#GP). The bytes are the program in
 * the comment below, assembled at 0x1000 with GNU as. */
static void test_indirect_and_sse(void)
{
    /* _start: xor eax,eax; mov ecx,100; lea rbx,[rip+table]
     * L: mov edx,ecx; and edx,3; call [rbx+rdx*8]; dec ecx; jnz L; lea rsi,[rip+fin]; jmp rsi
     * fin: lea rdi,[rip+str]; pxor xmm0,xmm0; mov r9,rdi; and r9,-16
     * S: movdqa xmm1,[r9]; pcmpeqb xmm1,xmm0; pmovmskb edx,xmm1; shr edx,0; test edx,edx;
     *    jnz found; add r9,16; jmp S
     * found: bsf edx,edx; add r9,rdx; sub r9,rdi; movdqu xmm2,[rip+set]; movdqu xmm3,[rdi];
     *    pcmpistri xmm2,xmm3,0; mov r10,rcx; pshufd xmm4,xmm3,0x1b; movq r11,xmm4;
     *    movabs r12,0x8000000000000000; jmp r12
     * f0: add eax,1; ret   f1: add eax,10; ret   f2: lea r8,[rip+f0]; call r8; add eax,100; ret
     * f3: add eax,1000; ret   table: f0 f1 f2 f3   set: "xyz,."
     * str (misaligned): "hello world, with a comma and a long tail" */
    static const uint8_t code[] = {
        0x31, 0xc0, 0xb9, 0x64, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x1d, 0xa2, 0x00,
        0x00, 0x00, 0x89, 0xca, 0x83, 0xe2, 0x03, 0xff, 0x14, 0xd3, 0xff, 0xc9,
        0x75, 0xf4, 0x48, 0x8d, 0x35, 0x03, 0x00, 0x00, 0x00, 0xff, 0xe6, 0xf4,
        0x48, 0x8d, 0x3d, 0xb8, 0x00, 0x00, 0x00, 0x66, 0x0f, 0xef, 0xc0, 0x49,
        0x89, 0xf9, 0x49, 0x83, 0xe1, 0xf0, 0x66, 0x41, 0x0f, 0x6f, 0x09, 0x66,
        0x0f, 0x74, 0xc8, 0x66, 0x0f, 0xd7, 0xd1, 0xc1, 0xea, 0x00, 0x85, 0xd2,
        0x75, 0x06, 0x49, 0x83, 0xc1, 0x10, 0xeb, 0xe6, 0x0f, 0xbc, 0xd2, 0x49,
        0x01, 0xd1, 0x49, 0x29, 0xf9, 0xf3, 0x0f, 0x6f, 0x15, 0x6f, 0x00, 0x00,
        0x00, 0xf3, 0x0f, 0x6f, 0x1f, 0x66, 0x0f, 0x3a, 0x63, 0xd3, 0x00, 0x49,
        0x89, 0xca, 0x66, 0x0f, 0x70, 0xe3, 0x1b, 0x66, 0x49, 0x0f, 0x7e, 0xe3,
        0x49, 0xbc, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x41, 0xff,
        0xe4, 0x83, 0xc0, 0x01, 0xc3, 0x83, 0xc0, 0x0a, 0xc3, 0x4c, 0x8d, 0x05,
        0xf1, 0xff, 0xff, 0xff, 0x41, 0xff, 0xd0, 0x83, 0xc0, 0x64, 0xc3, 0x05,
        0xe8, 0x03, 0x00, 0x00, 0xc3, 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x0f, 0x1f, 0x40, 0x00, 0x85, 0x10, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x89, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x8d, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9b, 0x10, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x78, 0x79, 0x7a, 0x2c, 0x2e, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x70, 0x61, 0x64, 0x68,
        0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64, 0x2c, 0x20,
        0x77, 0x69, 0x74, 0x68, 0x20, 0x61, 0x20, 0x63, 0x6f, 0x6d, 0x6d, 0x61,
        0x20, 0x61, 0x6e, 0x64, 0x20, 0x61, 0x20, 0x6c, 0x6f, 0x6e, 0x67, 0x20,
        0x74, 0x61, 0x69, 0x6c, 0x00, 0x0f, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    };
    struct run_result r = both(code, sizeof(code), 0, NULL);
    CU_ASSERT_EQUAL(r.exit, CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(r.exc, X86_EXC_GP);
    CU_ASSERT_EQUAL(r.r[CPU_RAX], 25 * (1 + 10 + 101 + 1000));
    CU_ASSERT_EQUAL(r.r[9], 41);   /* strlen */
    CU_ASSERT_EQUAL(r.r[10], 11);  /* the first of "xyz,." in str: the comma */
    CU_ASSERT_EQUAL(r.r[11], 0x2c646c7274697720ull); /* " wit" "rld," */
}

/* An instruction that straddles a page boundary in a loop (its block is cached, valid while
 * the next page maps to the same physical page), whose bytes in the second page the loop
 * then rewrites: the new immediate must be seen from the next iteration on. */
static void test_straddle_smc(void)
{
    static const uint8_t head[] = {
        0x31, 0xdb,                   /* xor ebx, ebx */
        0xb9, 0x64, 0x00, 0x00, 0x00, /* mov ecx, 100 */
        0xe9, 0xf2, 0x0f, 0x00, 0x00, /* jmp L (CODE + 0xffe) */
    };
    static const uint8_t loop[] = {
        0xb8, 0x44, 0x33, 0x22, 0x11,             /* L: mov eax, 0x11223344 (2 bytes here) */
        0x01, 0xc3,                               /* add ebx, eax */
        0x83, 0xf9, 0x32,                         /* cmp ecx, 50 */
        0x75, 0x07,                               /* jne skip */
        0xc6, 0x05, 0xf0, 0xff, 0xff, 0xff, 0x55, /* mov byte [L + 3], 0x55 */
        0xff, 0xc9,                               /* skip: dec ecx */
        0x75, 0xe9,                               /* jnz L */
        0xf4,                                     /* hlt */
    };
    static uint8_t code[0xffe + sizeof(loop)];
    memset(code, 0x90, sizeof(code));
    memcpy(code, head, sizeof(head));
    memcpy(code + 0xffe, loop, sizeof(loop));
    struct run_result r = both(code, sizeof(code), 0, NULL);
    CU_ASSERT_EQUAL(r.exit, CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(r.r[CPU_RBX], (uint32_t)(51u * 0x11223344u + 49u * 0x11553344u));
}

static void test_flags_across_handlers(void)
{
    static const uint8_t code[] = {
        0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, 1 */
        0x83, 0xf8, 0x02,             /* cmp eax, 2: CF=1 */
        0xac,                         /* lodsb (run by its handler) */
        0x0f, 0x92, 0xc3,             /* setc bl */
        0x48, 0x83, 0xc6, 0x00,       /* add rsi, 0: CF=0 */
        0xac,                         /* lodsb */
        0x0f, 0x92, 0xc7,             /* setc bh */
        0x72, 0x02,                   /* jc +2 (not taken) */
        0xb2, 0x2a,                   /* mov dl, 42 */
        0xf4,
    };
    struct run_result r = both(code, sizeof(code), 0, setup_lods);
    CU_ASSERT_EQUAL(r.exit, CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(r.r[CPU_RBX] & 0xffff, 0x0001);
    CU_ASSERT_EQUAL(r.r[CPU_RDX] & 0xff, 42);
    CU_ASSERT_EQUAL(r.r[CPU_RSI], 0x8002);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("cpu_jit", NULL, NULL);
    CU_add_test(s, "loop_chained", test_loop_chained);
    CU_add_test(s, "exact_budget", test_exact_budget);
    CU_add_test(s, "fault_mid_block", test_fault_mid_block);
    CU_add_test(s, "self_modifying_loop", test_self_modifying_loop);
    CU_add_test(s, "flags_across_handlers", test_flags_across_handlers);
    CU_add_test(s, "indirect_and_sse", test_indirect_and_sse);
    CU_add_test(s, "straddle_smc", test_straddle_smc);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
