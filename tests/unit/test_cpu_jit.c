/* The soft CPU's translator (core/cpu/jit.c) against the interpreter: the same programs run
 * once with every block translated at its first run and once interpreted, and must end in
 * the same state with the same instruction count; plus the results the programs compute.
 * Covers chaining in loops, the exact instruction budget, a fault in the middle of a
 * translated block (RIP, flags, count), self-modifying code inside a translated loop, and
 * flags carried across handler-run instructions. */
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
        0x31, 0xc0,                   /* xor eax, eax (not reached) */
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
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
