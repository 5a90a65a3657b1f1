/* Unit tests for the soft CPU's integer core (decode + exec + alu/bitops/misc/ctrl/string):
 * byte sequences run on a flat CPU, results and flags checked against the SDM. */
#include "tests/unit/cpu_harness.h"

#include <CUnit/Basic.h>
#include <pthread.h>

#define CODE 0x1000
#define DATA 0x8000

static struct cpu_harness h;
static struct cpu *cpu;

static int setup64(void)
{
    if (cpu_harness_init(&h, 8 << 20, X86_MODE_64) < 0) {
        return 1;
    }
    cpu = h.cpu;
    return 0;
}

static int teardown(void)
{
    cpu_harness_free(&h);
    return 0;
}

/* Run code (HLT appended) in the current mode. Returns the exit reason. */
static int run_bytes(const uint8_t *code, size_t n)
{
    uint8_t buf[512];
    memcpy(buf, code, n);
    buf[n] = 0xf4;
    cpu_harness_load(&h, CODE, buf, n + 1);
    return cpu_harness_run(&h, CODE, 10000);
}

#define RUN(...)                                                                                   \
    ({                                                                                             \
        static const uint8_t code_[] = {__VA_ARGS__};                                              \
        run_bytes(code_, sizeof(code_));                                                           \
    })

static uint64_t flags(void)
{
    return cpu_get_rflags(cpu);
}

static void reset64(void)
{
    cpu_harness_set_flat(&h, X86_MODE_64);
}

static void test_add_sub_flags(void)
{
    reset64();
    cpu->r[CPU_RAX] = 0x7fffffff;
    cpu->r[CPU_RBX] = 1;
    CU_ASSERT_EQUAL(RUN(0x01, 0xd8), CPU_EXIT_HLT); /* add eax, ebx */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x80000000u);
    CU_ASSERT_TRUE(flags() & CPU_FL_OF);
    CU_ASSERT_TRUE(flags() & CPU_FL_SF);
    CU_ASSERT_TRUE(flags() & CPU_FL_AF);
    CU_ASSERT_FALSE(flags() & CPU_FL_CF);
    CU_ASSERT_FALSE(flags() & CPU_FL_ZF);
    CU_ASSERT_TRUE(flags() & CPU_FL_PF); /* low byte 0x00: even parity */

    reset64();
    cpu->r[CPU_RAX] = 0xffffffffffffffffull;
    CU_ASSERT_EQUAL(RUN(0x83, 0xc0, 0x01), CPU_EXIT_HLT); /* add eax, 1: 32-bit zero-extends */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);

    reset64();
    cpu->r[CPU_RAX] = 3;
    CU_ASSERT_EQUAL(RUN(0x48, 0x83, 0xe8, 0x05), CPU_EXIT_HLT); /* sub rax, 5 */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], (uint64_t)-2);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    CU_ASSERT_TRUE(flags() & CPU_FL_SF);
    CU_ASSERT_FALSE(flags() & CPU_FL_OF);

    /* ADC/SBB chains: 0xffffffffffffffff + 1 carries into the high word. */
    reset64();
    cpu->r[CPU_RAX] = ~0ull;
    cpu->r[CPU_RDX] = 5;
    CU_ASSERT_EQUAL(RUN(0x48, 0x83, 0xc0, 0x01, 0x48, 0x83, 0xd2, 0x00), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], 6);

    /* CMP + Jcc signed/unsigned. */
    reset64();
    cpu->r[CPU_RAX] = (uint64_t)-1;
    cpu->r[CPU_RBX] = 1;
    /* cmp rax, rbx; jl +2 (skip mov ecx,1... ) ; setb cl */
    CU_ASSERT_EQUAL(RUN(0x48, 0x39, 0xd8, 0x0f, 0x9c, 0xc1, 0x0f, 0x92, 0xc5), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX] & 0xff, 1);        /* -1 < 1 signed */
    CU_ASSERT_EQUAL((cpu->r[CPU_RCX] >> 8) & 0xff, 0); /* not below unsigned */
}

static void test_inc_preserves_cf(void)
{
    reset64();
    cpu->r[CPU_RAX] = 0xff;
    /* stc; inc al */
    CU_ASSERT_EQUAL(RUN(0xf9, 0xfe, 0xc0), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);
    CU_ASSERT_TRUE(flags() & CPU_FL_AF);
}

static void test_shift_rules(void)
{
    /* Count 0 leaves the flags alone (SDM SAL/SAR/SHL/SHR: "flags are not affected"). */
    reset64();
    cpu->r[CPU_RAX] = 0x80;
    cpu->r[CPU_RCX] = 0x20;                               /* masked to 0 for 32-bit operands */
    CU_ASSERT_EQUAL(RUN(0xf9, 0xd3, 0xe0), CPU_EXIT_HLT); /* stc; shl eax, cl */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x80);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);

    /* SHL by 1: CF = old top bit, OF = CF xor new top bit. */
    reset64();
    cpu->r[CPU_RAX] = 0x40000000;
    CU_ASSERT_EQUAL(RUN(0xd1, 0xe0), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x80000000u);
    CU_ASSERT_FALSE(flags() & CPU_FL_CF);
    CU_ASSERT_TRUE(flags() & CPU_FL_OF);

    /* SAR keeps the sign; SHR by 1 sets OF to the old top bit. */
    reset64();
    cpu->r[CPU_RAX] = 0x80000001u;
    CU_ASSERT_EQUAL(RUN(0x89, 0xc3, 0xd1, 0xf8, 0xd1, 0xeb), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xc0000000u);
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX], 0x40000000u);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    CU_ASSERT_TRUE(flags() & CPU_FL_OF);

    /* 64-bit shift counts use 6 bits. */
    reset64();
    cpu->r[CPU_RAX] = 1;
    CU_ASSERT_EQUAL(RUN(0x48, 0xc1, 0xe0, 0x3f), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 1ull << 63);

    /* RCL through carry: 8-bit, count 9 is a full rotation. */
    reset64();
    cpu->r[CPU_RAX] = 0x81;
    CU_ASSERT_EQUAL(RUN(0xf8, 0xd0, 0xd0), CPU_EXIT_HLT); /* clc; rcl al, 1 */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xff, 0x02);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    reset64();
    cpu->r[CPU_RAX] = 0x81;
    CU_ASSERT_EQUAL(RUN(0xf8, 0xc0, 0xd0, 0x09), CPU_EXIT_HLT); /* clc; rcl al, 9 */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xff, 0x81);
    CU_ASSERT_FALSE(flags() & CPU_FL_CF);

    /* ROR: CF = new top bit. */
    reset64();
    cpu->r[CPU_RAX] = 1;
    CU_ASSERT_EQUAL(RUN(0xd1, 0xc8), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x80000000u);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);

    /* A rotate's CF is visible to a reader (SETC) and replaced by a following ADD (the
     * block builder lets the rotate skip its flags there). */
    reset64();
    cpu->r[CPU_RCX] = 0;
    CU_ASSERT_EQUAL(RUN(0xb8, 0x00, 0x00, 0x00, 0x80, 0xd1, 0xc0, 0x0f, 0x92, 0xc3, 0xd1, 0xc8,
                        0x01, 0xc9, 0x0f, 0x92, 0xc7),
                    CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x80000000u);
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX] & 0xff, 1);
    CU_ASSERT_EQUAL((cpu->r[CPU_RBX] >> 8) & 0xff, 0);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);

    /* SHLD eax, ebx, 4 */
    reset64();
    cpu->r[CPU_RAX] = 0x12345678;
    cpu->r[CPU_RBX] = 0x9abcdef0;
    CU_ASSERT_EQUAL(RUN(0x0f, 0xa4, 0xd8, 0x04), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x23456789);
    /* SHRD eax, ebx, 8 */
    reset64();
    cpu->r[CPU_RAX] = 0x12345678;
    cpu->r[CPU_RBX] = 0x9abcdef0;
    CU_ASSERT_EQUAL(RUN(0x0f, 0xac, 0xd8, 0x08), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xf0123456u);
}

static void test_mul_div(void)
{
    reset64();
    cpu->r[CPU_RAX] = 0xffffffffffffffffull;
    cpu->r[CPU_RBX] = 2;
    CU_ASSERT_EQUAL(RUN(0x48, 0xf7, 0xe3), CPU_EXIT_HLT); /* mul rbx */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xfffffffffffffffeull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], 1);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    CU_ASSERT_TRUE(flags() & CPU_FL_OF);

    reset64();
    cpu->r[CPU_RAX] = (uint64_t)-7;
    CU_ASSERT_EQUAL(RUN(0x48, 0x6b, 0xc0, 0x03), CPU_EXIT_HLT); /* imul rax, rax, 3 */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], (uint64_t)-21);
    CU_ASSERT_FALSE(flags() & CPU_FL_CF);

    reset64();
    cpu->r[CPU_RAX] = 100;
    cpu->r[CPU_RDX] = 0;
    cpu->r[CPU_RBX] = 7;
    CU_ASSERT_EQUAL(RUN(0xf7, 0xf3), CPU_EXIT_HLT); /* div ebx */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 14);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], 2);

    /* IDIV rounds toward zero; remainder has the dividend's sign. */
    reset64();
    cpu->r[CPU_RAX] = (uint64_t)-7;
    cpu->r[CPU_RDX] = ~0ull;
    cpu->r[CPU_RBX] = 2;
    CU_ASSERT_EQUAL(RUN(0x48, 0xf7, 0xfb), CPU_EXIT_HLT); /* idiv rbx */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], (uint64_t)-3);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], (uint64_t)-1);

    /* #DE: divide by zero and quotient overflow; RIP stays on the DIV. */
    reset64();
    cpu->r[CPU_RBX] = 0;
    CU_ASSERT_EQUAL(RUN(0x90, 0xf7, 0xf3), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_DE);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 1);
    reset64();
    cpu->r[CPU_RAX] = 0;
    cpu->r[CPU_RDX] = 1;
    cpu->r[CPU_RBX] = 1;
    CU_ASSERT_EQUAL(RUN(0xf7, 0xf3), CPU_EXIT_EXCEPTION); /* 2^32 / 1 overflows */
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_DE);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0); /* unchanged */
    reset64();
    cpu->r[CPU_RAX] = 0x8000;
    cpu->r[CPU_RBX] = 0xff; /* idiv bl: -32768 / -1 */
    CU_ASSERT_EQUAL(RUN(0xf6, 0xfb), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_DE);
}

static void test_bit_ops(void)
{
    /* BSF/BSR with a zero source: ZF=1, destination unchanged. */
    reset64();
    cpu->r[CPU_RAX] = 0x1234;
    cpu->r[CPU_RBX] = 0;
    CU_ASSERT_EQUAL(RUN(0x0f, 0xbc, 0xc3), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x1234);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);
    reset64();
    cpu->r[CPU_RBX] = 0x80010;
    CU_ASSERT_EQUAL(RUN(0x0f, 0xbc, 0xc3, 0x0f, 0xbd, 0xcb), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 4);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 19);
    CU_ASSERT_FALSE(flags() & CPU_FL_ZF);

    /* BT with a register bit offset addresses beyond the operand: bit 35 of [DATA] is bit
     * 3 of the dword at DATA+4; a negative offset goes below. */
    reset64();
    cpu_harness_poke(&h, DATA, 8, 0x0000000800000000ull);
    cpu_harness_poke(&h, DATA - 4, 4, 0x80000000u);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RBX] = 35;
    cpu->r[CPU_RDX] = (uint64_t)-1;
    /* bt [rsi], ebx; setc al; bts [rsi], edx; setc cl */
    CU_ASSERT_EQUAL(RUN(0x0f, 0xa3, 0x1e, 0x0f, 0x92, 0xc0, 0x0f, 0xab, 0x16, 0x0f, 0x92, 0xc1),
                    CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xff, 1);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX] & 0xff, 1);
    /* BTR with an immediate: offset taken modulo the operand size. */
    reset64();
    cpu_harness_poke(&h, DATA, 4, 0xff);
    cpu->r[CPU_RSI] = DATA;
    CU_ASSERT_EQUAL(RUN(0x0f, 0xba, 0x36, 0x21), CPU_EXIT_HLT); /* btr dword [rsi], 33 */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA, 4), 0xfd);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);

    reset64();
    cpu->r[CPU_RBX] = 0xf0f0;
    CU_ASSERT_EQUAL(RUN(0xf3, 0x0f, 0xb8, 0xc3), CPU_EXIT_HLT); /* popcnt eax, ebx */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 8);
    reset64();
    cpu->r[CPU_RAX] = 0x11223344;
    CU_ASSERT_EQUAL(RUN(0x0f, 0xc8), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x44332211);
}

static void test_stack_and_calls(void)
{
    reset64();
    uint64_t sp = cpu->r[CPU_RSP];
    cpu->r[CPU_RAX] = 0x1122334455667788ull;
    /* push rax; pop rbx; call +1 (skips the next byte 0xcc); ... */
    CU_ASSERT_EQUAL(RUN(0x50, 0x5b, 0xe8, 0x01, 0x00, 0x00, 0x00, 0xcc, 0x59), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX], 0x1122334455667788ull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], CODE + 7); /* return address popped into rcx */
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], sp);

    /* call to a function that returns with ret. */
    reset64();
    /* 0: call +6 ; 5: hlt ; 6..: mov eax,42 ; ret */
    static const uint8_t code[] = {0xe8, 0x01, 0, 0, 0, 0xf4, 0xb8, 42, 0, 0, 0, 0xc3};
    cpu_harness_load(&h, CODE, code, sizeof(code));
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 42);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 6);

    /* loop: ecx = 5 iterations adding to eax. */
    reset64();
    cpu->r[CPU_RCX] = 5;
    CU_ASSERT_EQUAL(RUN(0x83, 0xc0, 0x02, 0xe2, 0xfb), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 10);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0);

    /* enter 16, 0 / leave */
    reset64();
    sp = cpu->r[CPU_RSP];
    cpu->r[CPU_RBP] = 0x5555;
    CU_ASSERT_EQUAL(RUN(0xc8, 0x10, 0x00, 0x00, 0x48, 0x89, 0xe0, 0xc9), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], sp - 8 - 16);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], sp);
    CU_ASSERT_EQUAL(cpu->r[CPU_RBP], 0x5555);

    /* pushf/popf round trip keeps DF and arithmetic flags. */
    reset64();
    CU_ASSERT_EQUAL(RUN(0xfd, 0xf9, 0x9c, 0xfc, 0xf8, 0x9d), CPU_EXIT_HLT);
    CU_ASSERT_TRUE(flags() & CPU_FL_DF);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
}

/* REP MOVSD with DF=1 over n dwords ending at src/dst (byte offsets from DATA), against an
 * element-by-element model of the same copy. */
static void check_movsd_down(uint64_t src, uint64_t dst, unsigned n)
{
    static uint8_t model[0x6000];
    reset64();
    for (unsigned i = 0; i < sizeof(model); i++) {
        model[i] = (uint8_t)(i * 7 + 1);
        cpu_harness_poke(&h, DATA + i, 1, model[i]);
    }
    for (unsigned k = 0; k < n; k++) {
        memmove(model + dst - 4 * k, model + src - 4 * k, 4);
    }
    cpu->r[CPU_RSI] = DATA + src;
    cpu->r[CPU_RDI] = DATA + dst;
    cpu->r[CPU_RCX] = n;
    CU_ASSERT_EQUAL(RUN(0xfd, 0xf3, 0xa5, 0xfc), CPU_EXIT_HLT); /* std; rep movsd; cld */
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSI], DATA + src - 4ull * n);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDI], DATA + dst - 4ull * n);
    unsigned bad = 0;
    for (unsigned i = 0; i < sizeof(model); i++) {
        bad += cpu_harness_peek(&h, DATA + i, 1) != model[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Backward REP MOVS is copied in page chunks: apart, overlapping below (memmove's backward
 * case) and overlapping above (re-reads what it wrote), across page boundaries. */
static void test_rep_movs_backward(void)
{
    check_movsd_down(0x1ffc, 0x4ffc, 1500);
    check_movsd_down(0x3ff0, 0x4000, 2000);
    check_movsd_down(0x4010, 0x4000, 2000);
}

static void test_strings(void)
{
    /* REP MOVSB copies, then REP with RCX=0 does nothing. */
    reset64();
    for (int i = 0; i < 100; i++) {
        cpu_harness_poke(&h, DATA + i, 1, (uint64_t)i);
    }
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RDI] = DATA + 0x1000;
    cpu->r[CPU_RCX] = 100;
    CU_ASSERT_EQUAL(RUN(0xf3, 0xa4), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 0x1000 + 99, 1), 99);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSI], DATA + 100);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDI], DATA + 0x1000 + 100);
    CU_ASSERT_EQUAL(RUN(0xf3, 0xa4), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSI], DATA + 100);

    /* Overlapping forward MOVSB replicates the pattern (byte by byte semantics). */
    reset64();
    cpu_harness_poke(&h, DATA, 1, 0xab);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RDI] = DATA + 1;
    cpu->r[CPU_RCX] = 16;
    CU_ASSERT_EQUAL(RUN(0xf3, 0xa4), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 16, 1), 0xab);

    /* STOSQ backwards with DF=1. */
    reset64();
    cpu->r[CPU_RAX] = 0x0102030405060708ull;
    cpu->r[CPU_RDI] = DATA + 0x100;
    cpu->r[CPU_RCX] = 3;
    CU_ASSERT_EQUAL(RUN(0xfd, 0xf3, 0x48, 0xab, 0xfc), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 0x100 - 16, 8), 0x0102030405060708ull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDI], DATA + 0x100 - 24);

    /* REP STOSW/STOSD/STOSQ forward across a page: the pattern (odd element counts leave a
     * tail shorter than 8 bytes), zero (memset), the byte after the last element untouched. */
    static const struct {
        uint8_t rex;
        bool w16;
        unsigned size;
        uint64_t rax;
    } fills[] = {{0, true, 2, 0x1234}, {0, false, 4, 0x89abcdef}, {0x48, false, 8, 0x1122334455667788ull},
                 {0x48, false, 8, 0}};
    for (unsigned f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
        reset64();
        uint64_t count = 0x1003 / fills[f].size + 1, end = DATA + 0x10 + count * fills[f].size;
        cpu_harness_poke(&h, end, 1, 0x5a);
        cpu->r[CPU_RAX] = fills[f].rax;
        cpu->r[CPU_RDI] = DATA + 0x10;
        cpu->r[CPU_RCX] = count;
        int rc = fills[f].w16 ? RUN(0x66, 0xf3, 0xab) : fills[f].rex ? RUN(0xf3, 0x48, 0xab)
                                                                      : RUN(0xf3, 0xab);
        CU_ASSERT_EQUAL(rc, CPU_EXIT_HLT);
        uint64_t mask = fills[f].size == 8 ? ~0ull : (1ull << (fills[f].size * 8)) - 1;
        for (uint64_t k = 0; k < count; k += count / 7 + 1) {
            CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 0x10 + k * fills[f].size, fills[f].size),
                            fills[f].rax & mask);
        }
        CU_ASSERT_EQUAL(cpu_harness_peek(&h, end - fills[f].size, fills[f].size),
                        fills[f].rax & mask);
        CU_ASSERT_EQUAL(cpu_harness_peek(&h, end, 1), 0x5a);
        CU_ASSERT_EQUAL(cpu->r[CPU_RDI], end);
        CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0);
    }

    /* REPNE SCASB finds a byte (strlen idiom). */
    reset64();
    static const char s[] = "hello, world";
    guestmem_write(&h.mem, DATA, s, sizeof(s));
    cpu->r[CPU_RDI] = DATA;
    cpu->r[CPU_RCX] = ~0ull;
    cpu->r[CPU_RAX] = 0;
    CU_ASSERT_EQUAL(RUN(0xf2, 0xae), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(~cpu->r[CPU_RCX] - 1, sizeof(s) - 1);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);

    /* REPE CMPSB stops at the first difference. */
    reset64();
    guestmem_write(&h.mem, DATA + 0x200, "hello, World", 12);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RDI] = DATA + 0x200;
    cpu->r[CPU_RCX] = 12;
    CU_ASSERT_EQUAL(RUN(0xf3, 0xa6), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 12 - 8);
    CU_ASSERT_FALSE(flags() & CPU_FL_ZF);

    /* A segment override changes the source but never the ES destination (32-bit mode,
     * FS based at 0x100). */
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu_set_seg(cpu, CPU_SEG_FS, 0x18, 0x100, 0xffffffffu,
                CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_DB | CPU_SEGA_G);
    cpu_harness_poke(&h, DATA + 0x100, 4, 0xcafef00d);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RDI] = DATA + 0x400;
    CU_ASSERT_EQUAL(RUN(0x64, 0xa5), CPU_EXIT_HLT); /* movsd fs:[esi] -> es:[edi] */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 0x400, 4), 0xcafef00d);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA + 0x500, 4), 0);
}

static void test_atomics_and_moves(void)
{
    reset64();
    cpu_harness_poke(&h, DATA, 8, 5);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RAX] = 5;
    cpu->r[CPU_RBX] = 9;
    CU_ASSERT_EQUAL(RUN(0xf0, 0x48, 0x0f, 0xb1, 0x1e), CPU_EXIT_HLT); /* lock cmpxchg */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA, 8), 9);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);
    CU_ASSERT_EQUAL(RUN(0xf0, 0x48, 0x0f, 0xb1, 0x1e), CPU_EXIT_HLT); /* now fails */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 9);
    CU_ASSERT_FALSE(flags() & CPU_FL_ZF);

    reset64();
    cpu_harness_poke(&h, DATA, 4, 10);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RCX] = 3;
    CU_ASSERT_EQUAL(RUN(0xf0, 0x0f, 0xc1, 0x0e), CPU_EXIT_HLT); /* lock xadd [rsi], ecx */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA, 4), 13);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 10);

    reset64();
    cpu_harness_poke(&h, DATA, 8, 0x1111111122222222ull);
    cpu->r[CPU_RSI] = DATA;
    cpu->r[CPU_RAX] = 0x22222222;
    cpu->r[CPU_RDX] = 0x11111111;
    cpu->r[CPU_RBX] = 0x44444444;
    cpu->r[CPU_RCX] = 0x33333333;
    CU_ASSERT_EQUAL(RUN(0xf0, 0x0f, 0xc7, 0x0e), CPU_EXIT_HLT); /* lock cmpxchg8b [rsi] */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, DATA, 8), 0x3333333344444444ull);
    CU_ASSERT_TRUE(flags() & CPU_FL_ZF);

    /* movsx/movzx/movsxd/cmov/xchg/lea/bswap */
    reset64();
    cpu->r[CPU_RBX] = 0x80;
    cpu->r[CPU_RCX] = 0xffffffff;
    CU_ASSERT_EQUAL(RUN(0x48, 0x0f, 0xbe, 0xc3, 0x0f, 0xb6, 0xd3, 0x48, 0x63, 0xf1, 0x48, 0x8d,
                        0x7c, 0x9b, 0x10),
                    CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xffffffffffffff80ull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], 0x80);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSI], ~0ull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDI], 0x80 * 5 + 0x10);

    /* CMOV with a false condition still zero-extends a 32-bit destination. */
    reset64();
    cpu->r[CPU_RAX] = 0xffffffff00000001ull;
    CU_ASSERT_EQUAL(RUN(0x31, 0xdb, 0x0f, 0x45, 0xc3), CPU_EXIT_HLT); /* xor ebx; cmovnz */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 1);

    /* AH/CH/DH/BH without REX, SPL with REX. */
    reset64();
    cpu->r[CPU_RAX] = 0x1234;
    cpu->r[CPU_RSP] = 0x7000;
    CU_ASSERT_EQUAL(RUN(0x88, 0xe3, 0x40, 0x88, 0xe1), CPU_EXIT_HLT); /* mov bl,ah; mov cl,spl */
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX] & 0xff, 0x12);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX] & 0xff, 0x00);

    /* RIP-relative load. */
    reset64();
    cpu_harness_poke(&h, CODE + 0x100, 8, 0xdeadbeefull);
    /* mov rax, [rip + 0x100 - 7] */
    CU_ASSERT_EQUAL(RUN(0x48, 0x8b, 0x05, 0xf9, 0x00, 0x00, 0x00), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xdeadbeefull);
}

static void test_bcd_and_misc(void)
{
    /* DAA/AAM are #UD in 64-bit mode; run them in 32-bit mode. */
    reset64();
    CU_ASSERT_EQUAL(RUN(0x27), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_UD);
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu->r[CPU_RAX] = 0x79;
    cpu->r[CPU_RBX] = 0x35;
    CU_ASSERT_EQUAL(RUN(0x00, 0xd8, 0x27), CPU_EXIT_HLT); /* add al, bl; daa */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xff, 0x14);
    CU_ASSERT_TRUE(flags() & CPU_FL_CF);
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu->r[CPU_RAX] = 63;
    CU_ASSERT_EQUAL(RUN(0xd4, 0x0a), CPU_EXIT_HLT); /* aam */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xffff, 0x0603);
    cpu_harness_set_flat(&h, X86_MODE_32);
    CU_ASSERT_EQUAL(RUN(0xd4, 0x00), CPU_EXIT_EXCEPTION); /* aam 0: #DE */
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_DE);
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu->r[CPU_RAX] = 0x0608;
    CU_ASSERT_EQUAL(RUN(0xd5, 0x0a), CPU_EXIT_HLT); /* aad */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xffff, 68);

    /* LAHF/SAHF, CBW family. */
    reset64();
    cpu->r[CPU_RAX] = 0xd500;
    CU_ASSERT_EQUAL(RUN(0x9e, 0x9f), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL((cpu->r[CPU_RAX] >> 8) & 0xff, 0xd7);
    reset64();
    cpu->r[CPU_RAX] = 0x80000000u;
    CU_ASSERT_EQUAL(RUN(0x48, 0x98, 0x48, 0x99), CPU_EXIT_HLT); /* cdqe; cqo */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xffffffff80000000ull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], ~0ull);
}

static void test_faults(void)
{
    /* LOCK with a register operand: #UD at execution, RIP on the instruction. */
    reset64();
    CU_ASSERT_EQUAL(RUN(0x90, 0xf0, 0x01, 0xc0), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_UD);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 1);

    /* More than 15 bytes: #GP(0). */
    reset64();
    uint8_t b[20];
    memset(b, 0x66, 16);
    b[16] = 0x90;
    CU_ASSERT_EQUAL(run_bytes(b, 17), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    CU_ASSERT_EQUAL(cpu->exc_error, 0);

    /* Non-canonical address: #GP(0); through RSP/RBP: #SS(0). */
    reset64();
    cpu->r[CPU_RBX] = 0x0000800000000000ull;
    CU_ASSERT_EQUAL(RUN(0x8b, 0x03), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    reset64();
    cpu->r[CPU_RBP] = 0x0000800000000000ull;
    CU_ASSERT_EQUAL(RUN(0x8b, 0x45, 0x00), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_SS);

    /* Segment limit in 32-bit mode: DS limit 0xfff, access at 0x1000 -> #GP(0). */
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu_set_seg(cpu, CPU_SEG_DS, 0x10, 0, 0xfff, CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW);
    cpu->r[CPU_RBX] = 0xffe;
    CU_ASSERT_EQUAL(RUN(0x8b, 0x03), CPU_EXIT_EXCEPTION); /* 4 bytes at 0xffe */
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    /* Writes to a read-only data segment: #GP. */
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu_set_seg(cpu, CPU_SEG_DS, 0x10, 0, 0xffffffffu, CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_DB);
    cpu->r[CPU_RBX] = DATA;
    CU_ASSERT_EQUAL(RUN(0x89, 0x03), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
}

static void test_self_modifying_code(void)
{
    /* The code patches the immediate of an instruction that already ran once, in the same
     * block, then jumps back to it: the second execution must see the new byte. */
    reset64();
    static const uint8_t code[] = {
        0xb8, 0x01, 0x00, 0x00, 0x00,             /* 0: mov eax, 1 */
        0x83, 0xf9, 0x01,                         /* 5: cmp ecx, 1 */
        0x74, 0x0b,                               /* 8: je +11 -> 21 */
        0xc6, 0x05, 0xf0, 0xff, 0xff, 0xff, 0x07, /* 10: mov byte [rip-16], 7 -> offset 1 */
        0xff, 0xc1,                               /* 17: inc ecx */
        0xeb, 0xeb,                               /* 19: jmp -21 -> 0 */
        0xf4,                                     /* 21: hlt */
    };
    cpu_harness_load(&h, CODE, code, sizeof(code));
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 7);
}

static void test_smc_across_vcpus(void)
{
    /* vCPU A translates code; vCPU B (sharing the block cache) patches it; A must run the
     * new bytes. */
    reset64();
    struct cpu *a = cpu;
    struct cpu *b = cpu_new(&h.mem, h.pio, h.mmio);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(cpu_tcache_share(b, a), 0);
    b->exit_on_exception = true;
    h.cpu = b;
    cpu_harness_set_flat(&h, X86_MODE_64);
    h.cpu = a;

    static const uint8_t code_a[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4}; /* mov eax,1; hlt */
    static const uint8_t code_b[] = {0xc6, 0x04, 0x25, 0x01, 0x10, 0x00, 0x00, 0x02, /* mov */
                                     0xf4}; /* byte [0x1001], 2; hlt */
    cpu_harness_load(&h, CODE, code_a, sizeof(code_a));
    cpu_harness_load(&h, CODE + 0x2000, code_b, sizeof(code_b));
    /* B touches the code page for writing before A translates it (a stale fast entry). */
    b->r[CPU_RAX] = 0;
    b->rip = CODE + 0x2000;
    CU_ASSERT_EQUAL(cpu_run(b, 100), CPU_EXIT_HLT);
    cpu_harness_poke(&h, CODE + 1, 1, 1);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(a->r[CPU_RAX], 1);
    b->halted = false;
    b->rip = CODE + 0x2000;
    CU_ASSERT_EQUAL(cpu_run(b, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(a->r[CPU_RAX], 2);
    cpu_free(b);
}

static void *dma_thread(void *arg)
{
    /* A device writing guest RAM through its own mapping, then telling the CPU. */
    static const uint8_t patched[] = {0xb8, 0x05, 0x00, 0x00, 0x00, 0xf4}; /* mov eax,5 */
    guestmem_write(&h.mem, CODE, patched, sizeof(patched));
    cpu_tcache_note_write(cpu, CODE, sizeof(patched));
    return arg;
}

static void test_foreign_write_invalidates(void)
{
    reset64();
    static const uint8_t code[] = {0xb8, 0x04, 0x00, 0x00, 0x00, 0xf4}; /* mov eax,4; hlt */
    cpu_harness_load(&h, CODE, code, sizeof(code));
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 4);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, dma_thread, NULL), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 5);
}

static void note_write_hook(void *opaque, uint64_t gpa, uint64_t len)
{
    cpu_tcache_note_write(opaque, gpa, len);
}

/* A device overwrites translated code through guestmem (a host pointer, then a copy) with
 * the engine's write_notify hook set: the CPU must run the new bytes each time. */
static void test_dma_write_notify(void)
{
    reset64();
    h.mem.write_notify = note_write_hook;
    h.mem.write_notify_opaque = cpu;
    static const uint8_t code[] = {0xb8, 0x04, 0x00, 0x00, 0x00, 0xf4}; /* mov eax,4; hlt */
    cpu_harness_load(&h, CODE, code, sizeof(code));
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 4);
    uint8_t *p = guestmem_ptr_rw(&h.mem, CODE, sizeof(code));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p[1] = 0x07; /* mov eax,7 */
    guestmem_dma_written(&h.mem, CODE + 1, 1);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 7);
    static const uint8_t nine[] = {0x09};
    CU_ASSERT_EQUAL(guestmem_write(&h.mem, CODE + 1, nine, 1), 0);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 9);
    h.mem.write_notify = NULL;
    h.mem.write_notify_opaque = NULL;
}

static void test_modes_16_32(void)
{
    /* Real mode: 16-bit arithmetic wraps, segment base = selector << 4. */
    cpu_harness_set_flat(&h, X86_MODE_16);
    cpu->r[CPU_RAX] = 0xffff;
    CU_ASSERT_EQUAL(RUN(0x40, 0x66, 0x40), CPU_EXIT_HLT); /* inc ax; inc eax */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 1);
    cpu_harness_set_flat(&h, X86_MODE_16);
    cpu_harness_poke(&h, 0x20010, 2, 0xbeef);
    cpu->r[CPU_RBX] = 0x10;
    /* mov ax, 0x2000; mov ds, ax; mov cx, [bx] */
    CU_ASSERT_EQUAL(RUN(0xb8, 0x00, 0x20, 0x8e, 0xd8, 0x8b, 0x0f), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX] & 0xffff, 0xbeef);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_DS].base, 0x20000);
    /* 32-bit: push/pop are 4 bytes. */
    cpu_harness_set_flat(&h, X86_MODE_32);
    uint64_t sp = cpu->r[CPU_RSP];
    CU_ASSERT_EQUAL(RUN(0x6a, 0xff, 0x5b), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX], 0xffffffffu);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], sp);
    /* pusha/popa */
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu->r[CPU_RAX] = 1;
    cpu->r[CPU_RDI] = 8;
    CU_ASSERT_EQUAL(RUN(0x60, 0x31, 0xc0, 0x31, 0xff, 0x61), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 1);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDI], 8);
}

/* rol eax,1; mov ebx,ecx; sub edx,1; hlt: the SUB makes ROL's CF/OF dead, unless the
 * block is cut after the ROL, when CF must be ROL's (an interrupt would push it). Also
 * covers the register fast paths of ROL, MOV and SUB. */
static void test_rotate_flags_cut_block(void)
{
    static const uint8_t code[] = {0xd1, 0xc0, 0x89, 0xcb, 0x83, 0xea, 0x01, 0xf4};
    for (int cut = 0; cut < 2; cut++) {
        reset64();
        cpu_harness_load(&h, CODE, code, sizeof(code));
        cpu_set_rflags(cpu, 0x2); /* CF=0 */
        cpu->r[CPU_RAX] = 0x80000000u;
        cpu->r[CPU_RCX] = 0x1234567890ull;
        cpu->r[CPU_RDX] = 5;
        int r = cpu_harness_run(&h, CODE, cut ? 1 : 100);
        CU_ASSERT_EQUAL(r, cut ? CPU_EXIT_ICOUNT : CPU_EXIT_HLT);
        CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 1);
        if (cut) {
            CU_ASSERT_EQUAL(flags() & CPU_FL_CF, CPU_FL_CF); /* bit 31 rotated into CF */
            CU_ASSERT_EQUAL(flags() & CPU_FL_OF, CPU_FL_OF); /* CF ^ new MSB */
        } else {
            CU_ASSERT_EQUAL(cpu->r[CPU_RBX], 0x34567890u); /* 32-bit MOV zero-extends */
            CU_ASSERT_EQUAL(cpu->r[CPU_RDX], 4);
            CU_ASSERT_EQUAL(flags() & (CPU_FL_CF | CPU_FL_ZF), 0);
        }
    }
}

static void test_icount_limit(void)
{
    reset64();
    /* jmp $ runs forever: the instruction budget stops it exactly. */
    CU_ASSERT_EQUAL(RUN(0xeb, 0xfe), CPU_EXIT_ICOUNT);
    uint64_t before = cpu->icount;
    cpu->rip = CODE;
    CU_ASSERT_EQUAL(cpu_run(cpu, 7), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->icount - before, 7);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("cpu_alu", setup64, teardown);
    CU_add_test(s, "add_sub_flags", test_add_sub_flags);
    CU_add_test(s, "inc_preserves_cf", test_inc_preserves_cf);
    CU_add_test(s, "shift_rules", test_shift_rules);
    CU_add_test(s, "mul_div", test_mul_div);
    CU_add_test(s, "bit_ops", test_bit_ops);
    CU_add_test(s, "stack_and_calls", test_stack_and_calls);
    CU_add_test(s, "strings", test_strings);
    CU_add_test(s, "atomics_and_moves", test_atomics_and_moves);
    CU_add_test(s, "bcd_and_misc", test_bcd_and_misc);
    CU_add_test(s, "faults", test_faults);
    CU_add_test(s, "self_modifying_code", test_self_modifying_code);
    CU_add_test(s, "rep_movs_backward", test_rep_movs_backward);
    CU_add_test(s, "smc_across_vcpus", test_smc_across_vcpus);
    CU_add_test(s, "foreign_write_invalidates", test_foreign_write_invalidates);
    CU_add_test(s, "dma_write_notify", test_dma_write_notify);
    CU_add_test(s, "rotate_flags_cut_block", test_rotate_flags_cut_block);
    CU_add_test(s, "modes_16_32", test_modes_16_32);
    CU_add_test(s, "icount_limit", test_icount_limit);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
