/* Unit tests for the soft CPU's system architecture (mmu.c, seg.c, intr.c, sysinsn.c,
 * msr.c, cpuid.c): page-walk error codes, A/D bits, large pages, TLB flushes, IDT delivery
 * with privilege change and IST, SYSCALL/SYSRET, triple fault, CPUID and MSRs, checked
 * against the SDM. */
#include "tests/unit/cpu_harness.h"

#include "hostdrv/accel.h"

#include <CUnit/Basic.h>

#define RAM (16u << 20)
#define CODE 0x1000ull  /* kernel code */
#define KHANDLER 0x2000ull
#define UCODE 0x3000ull /* user code */
#define GDT 0x5000ull
#define IDT 0x6000ull
#define TSS 0x7000ull
#define RSP0 0x9000ull
#define IST1 0xa000ull
#define USTACK 0xc000ull
#define PML4 0x100000ull
#define PDPT 0x101000ull
#define PD 0x102000ull
#define PT 0x103000ull

#define P 0x1ull
#define W 0x2ull
#define U 0x4ull
#define A 0x20ull
#define D 0x40ull
#define PS 0x80ull
#define G 0x100ull
#define XD (1ull << 63)

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x23
#define SEL_UCODE 0x2b
#define SEL_TSS 0x30

static struct cpu_harness h;
static struct cpu *cpu;

static int setup(void)
{
    if (cpu_harness_init(&h, RAM, X86_MODE_64) < 0) {
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

static void poke64(uint64_t pa, uint64_t v)
{
    cpu_harness_poke(&h, pa, 8, v);
}

static uint64_t peek64(uint64_t pa)
{
    return cpu_harness_peek(&h, pa, 8);
}

static void load(uint64_t pa, const uint8_t *code, size_t n)
{
    cpu_harness_load(&h, pa, code, n);
}

#define LOAD(pa, ...)                                                                          \
    do {                                                                                       \
        static const uint8_t code_[] = {__VA_ARGS__};                                          \
        load((pa), code_, sizeof(code_));                                                      \
    } while (0)

/* Our own 4-level tables: 0-2 MiB in 4 KiB pages, 2-16 MiB in 2 MiB pages, VA 16 MiB as a
 * 2 MiB page onto PA 2 MiB, VA 1 GiB as a 1 GiB page onto PA 0. No A/D bits set. */
static void paging_setup(void)
{
    cpu_harness_set_flat(&h, X86_MODE_64);
    for (uint64_t i = 0; i < 512; i++) {
        poke64(PML4 + i * 8, 0);
        poke64(PDPT + i * 8, 0);
        poke64(PD + i * 8, 0);
        poke64(PT + i * 8, (i << 12) | P | W | U);
    }
    poke64(PML4, PDPT | P | W | U);
    poke64(PDPT, PD | P | W | U);
    poke64(PDPT + 8, 0 | P | W | U | PS);
    poke64(PD, PT | P | W | U);
    for (uint64_t i = 1; i < 8; i++) {
        poke64(PD + i * 8, (i << 21) | P | W | U | PS);
    }
    poke64(PD + 8 * 8, 0x200000 | P | W | U | PS);
    cpu->cr3 = PML4;
    cpu->cr0 |= CPU_CR0_WP;
    cpu->exit_on_exception = true;
    cpu_tlb_flush(cpu, false);
}

static void set_pte(uint64_t va, uint64_t pte)
{
    poke64(PT + ((va >> 12) & 0x1ff) * 8, pte);
}

/* Run kernel code at CODE (HLT appended by the caller). */
static int run_kernel(void)
{
    return cpu_harness_run(&h, CODE, 1000);
}

static int run_user(uint64_t max)
{
    cpu_harness_set_user(&h);
    cpu->r[CPU_RSP] = USTACK;
    return cpu_harness_run(&h, UCODE, max);
}

static void expect_pf(int r, uint64_t cr2, uint32_t err)
{
    CU_ASSERT_EQUAL(r, CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_PF);
    CU_ASSERT_EQUAL(cpu->exc_error, err);
    CU_ASSERT_EQUAL(cpu->cr2, cr2);
}

/* mov rax, [rbx]; hlt  and  mov [rbx], rax; hlt */
static const uint8_t code_read[] = {0x48, 0x8b, 0x03, 0xf4};
static const uint8_t code_write[] = {0x48, 0x89, 0x03, 0xf4};

static int kread(uint64_t va)
{
    load(CODE, code_read, sizeof(code_read));
    cpu->r[CPU_RBX] = va;
    return run_kernel();
}

static int kwrite(uint64_t va, uint64_t v)
{
    load(CODE, code_write, sizeof(code_write));
    cpu->r[CPU_RBX] = va;
    cpu->r[CPU_RAX] = v;
    return run_kernel();
}

static int uaccess(uint64_t va, bool write)
{
    load(UCODE, write ? code_write : code_read, 3);
    cpu->r[CPU_RBX] = va;
    return run_user(1);
}

static void test_pf_not_present(void)
{
    paging_setup();
    set_pte(0x10000, 0);
    expect_pf(kread(0x10008), 0x10008, 0);
    CU_ASSERT_EQUAL(cpu->rip, CODE);
    expect_pf(kwrite(0x10010, 1), 0x10010, CPU_PF_W);
    paging_setup();
    set_pte(0x10000, 0);
    expect_pf(uaccess(0x10000, false), 0x10000, CPU_PF_U);
    paging_setup();
    set_pte(0x10000, 0);
    expect_pf(uaccess(0x10000, true), 0x10000, CPU_PF_U | CPU_PF_W);
}

static void test_pf_protection(void)
{
    paging_setup();
    set_pte(0x11000, 0x11000 | P | U); /* read-only */
    set_pte(0x12000, 0x12000 | P | W); /* supervisor */
    CU_ASSERT_EQUAL(kread(0x11000), CPU_EXIT_HLT);
    /* CPL0 write to a read-only page: #PF with CR0.WP, allowed without. */
    expect_pf(kwrite(0x11000, 5), 0x11000, CPU_PF_P | CPU_PF_W);
    cpu->cr0 &= ~CPU_CR0_WP;
    cpu_tlb_flush(cpu, false);
    CU_ASSERT_EQUAL(kwrite(0x11000, 5), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(peek64(0x11000), 5);
    /* User write to read-only, user read of supervisor. */
    paging_setup();
    set_pte(0x11000, 0x11000 | P | U);
    set_pte(0x12000, 0x12000 | P | W);
    expect_pf(uaccess(0x11000, true), 0x11000, CPU_PF_P | CPU_PF_W | CPU_PF_U);
    paging_setup();
    set_pte(0x12000, 0x12000 | P | W);
    expect_pf(uaccess(0x12000, false), 0x12000, CPU_PF_P | CPU_PF_U);
    /* A supervisor-only upper level makes the whole subtree supervisor: here the user code
     * itself, so the fetch faults (I set because EFER.NXE is on). */
    paging_setup();
    poke64(PD, PT | P | W);
    expect_pf(uaccess(0x11000, false), UCODE, CPU_PF_P | CPU_PF_U | CPU_PF_I);
}

static void test_pf_nx_and_rsvd(void)
{
    paging_setup();
    set_pte(0x13000, 0x13000 | P | W | U | XD);
    LOAD(0x13000, 0xf4);
    LOAD(CODE, 0xff, 0xe3); /* jmp rbx */
    cpu->r[CPU_RBX] = 0x13000;
    expect_pf(run_kernel(), 0x13000, CPU_PF_P | CPU_PF_I);
    CU_ASSERT_EQUAL(cpu->rip, 0x13000);
    /* Data reads of an NX page are fine. */
    CU_ASSERT_EQUAL(kread(0x13000), CPU_EXIT_HLT);
    /* Without EFER.NXE bit 63 is reserved. */
    paging_setup();
    set_pte(0x13000, 0x13000 | P | W | U | XD);
    cpu->efer &= ~CPU_EFER_NXE;
    expect_pf(kread(0x13000), 0x13000, CPU_PF_P | CPU_PF_RSVD);
    cpu->efer |= CPU_EFER_NXE;
    /* Physical address bits above MAXPHYADDR (40). */
    paging_setup();
    set_pte(0x14000, 0x14000 | P | W | U | (1ull << 51));
    expect_pf(kread(0x14000), 0x14000, CPU_PF_P | CPU_PF_RSVD);
    expect_pf(kwrite(0x14000, 1), 0x14000, CPU_PF_P | CPU_PF_RSVD | CPU_PF_W);
    /* Reserved bits 20:13 of a 2 MiB PDE. */
    paging_setup();
    poke64(PD + 9 * 8, 0x400000 | P | W | U | PS | (1ull << 13));
    expect_pf(kread(0x1200000), 0x1200000, CPU_PF_P | CPU_PF_RSVD);
}

static void test_accessed_dirty(void)
{
    paging_setup();
    set_pte(0x15000, 0x15000 | P | W | U);
    CU_ASSERT_EQUAL(kread(0x15000), CPU_EXIT_HLT);
    CU_ASSERT_TRUE(peek64(PML4) & A);
    CU_ASSERT_TRUE(peek64(PDPT) & A);
    CU_ASSERT_TRUE(peek64(PD) & A);
    CU_ASSERT_TRUE(peek64(PT + 0x15 * 8) & A);
    CU_ASSERT_FALSE(peek64(PT + 0x15 * 8) & D);
    /* The first write after a read walks again and sets D. */
    CU_ASSERT_EQUAL(kwrite(0x15008, 7), CPU_EXIT_HLT);
    CU_ASSERT_TRUE(peek64(PT + 0x15 * 8) & D);
    CU_ASSERT_EQUAL(peek64(0x15008), 7);
    /* A faulting access sets nothing. */
    set_pte(0x16000, 0x16000 | P | U);
    expect_pf(kwrite(0x16000, 1), 0x16000, CPU_PF_P | CPU_PF_W);
    CU_ASSERT_FALSE(peek64(PT + 0x16 * 8) & D);
}

static void test_large_pages(void)
{
    paging_setup();
    poke64(0x20000, 0x1111222233334444ull);
    poke64(0x250230, 0x5555666677778888ull);
    CU_ASSERT_EQUAL(kread(0x40020000), CPU_EXIT_HLT); /* 1 GiB page onto PA 0 */
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x1111222233334444ull);
    CU_ASSERT_TRUE(peek64(PDPT + 8) & A);
    /* 2 MiB page onto PA 2 MiB (slot 0x50 of the TLB: clear of the code page's) */
    CU_ASSERT_EQUAL(kread(0x1050230), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x5555666677778888ull);
    CU_ASSERT_EQUAL(kwrite(0x1050238, 9), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(peek64(0x250238), 9);
    CU_ASSERT_TRUE(peek64(PD + 8 * 8) & D);
    /* INVLPG anywhere in the large page drops all of it. */
    poke64(PD + 8 * 8, 0x400000 | P | W | U | PS);
    poke64(0x450230, 0xabcdull);
    CU_ASSERT_EQUAL(kread(0x1050230), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x5555666677778888ull); /* stale TLB entry */
    LOAD(CODE, 0x0f, 0x01, 0x39, 0x48, 0x8b, 0x03, 0xf4);    /* invlpg [rcx]; mov rax,[rbx] */
    cpu->r[CPU_RCX] = 0x1100000;
    cpu->r[CPU_RBX] = 0x1050230;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xabcdull);
}

static void test_tlb_invlpg_cr3(void)
{
    paging_setup();
    poke64(0x16000, 0x1111);
    poke64(0x17000, 0x2222);
    poke64(0x18000, 0x3333);
    poke64(0x19000, 0x4444);
    cpu->cr4 |= CPU_CR4_PGE;
    set_pte(0x16000, 0x16000 | P | W | U);
    set_pte(0x18000, 0x18000 | P | W | U | G);
    CU_ASSERT_EQUAL(kread(0x16000), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x1111);
    CU_ASSERT_EQUAL(kread(0x18000), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x3333);
    /* Retarget both PTEs: the TLB still has the old translations. */
    set_pte(0x16000, 0x17000 | P | W | U);
    set_pte(0x18000, 0x19000 | P | W | U | G);
    CU_ASSERT_EQUAL(kread(0x16000), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x1111);
    /* mov rax, cr3; mov cr3, rax; mov rax, [rbx]; mov rcx, [rdx]; hlt */
    LOAD(CODE, 0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0x48, 0x8b, 0x03, 0x48, 0x8b, 0x0a, 0xf4);
    cpu->r[CPU_RBX] = 0x16000;
    cpu->r[CPU_RDX] = 0x18000;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x2222); /* flushed by the CR3 load */
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0x3333); /* global: kept */
    /* invlpg [rdx]; mov rcx, [rdx]; hlt */
    LOAD(CODE, 0x0f, 0x01, 0x3a, 0x48, 0x8b, 0x0a, 0xf4);
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0x4444);
    /* Clearing CR4.PGE flushes global entries too. */
    set_pte(0x18000, 0x18000 | P | W | U | G);
    cpu_tlb_flush(cpu, false);
    CU_ASSERT_EQUAL(kread(0x18000), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x3333);
    set_pte(0x18000, 0x19000 | P | W | U | G);
    /* mov rax, cr4; and rax, ~0x80; mov cr4, rax; mov rcx, [rdx]; hlt */
    LOAD(CODE, 0x0f, 0x20, 0xe0, 0x48, 0x25, 0x7f, 0xff, 0xff, 0xff, 0x0f, 0x22, 0xe0, 0x48,
         0x8b, 0x0a, 0xf4);
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], 0x4444);
    CU_ASSERT_FALSE(cpu->cr4 & CPU_CR4_PGE);
}

/* ---- descriptor tables ---- */

static void set_gate(int vec, uint64_t off, unsigned dpl, unsigned ist)
{
    uint64_t lo = (off & 0xffff) | ((uint64_t)SEL_KCODE << 16) | ((uint64_t)ist << 32) |
                  (0xeull << 40) | ((uint64_t)dpl << 45) | (1ull << 47) |
                  (((off >> 16) & 0xffff) << 48);
    poke64(IDT + vec * 16, lo);
    poke64(IDT + vec * 16 + 8, off >> 32);
}

/* Linux-like GDT, a 64-bit TSS (RSP0, IST1) and an empty IDT; delivery enabled. */
static void tables_setup(void)
{
    paging_setup();
    poke64(GDT + 0x00, 0);
    poke64(GDT + 0x08, 0x00af9a000000ffffull); /* kernel code64 */
    poke64(GDT + 0x10, 0x00cf92000000ffffull); /* kernel data */
    poke64(GDT + 0x18, 0x00cffa000000ffffull); /* user code32 */
    poke64(GDT + 0x20, 0x00cff2000000ffffull); /* user data */
    poke64(GDT + 0x28, 0x00affa000000ffffull); /* user code64 */
    poke64(GDT + 0x30, 0x0000890000000067ull | ((TSS & 0xffffff) << 16)); /* TSS */
    poke64(GDT + 0x38, 0);
    for (int i = 0; i < 0x68; i += 8) {
        poke64(TSS + i, 0);
    }
    cpu_harness_poke(&h, TSS + 4, 8, RSP0);
    cpu_harness_poke(&h, TSS + 0x24, 8, IST1);
    for (int i = 0; i < 256 * 2; i++) {
        poke64(IDT + i * 8, 0);
    }
    cpu->gdtr.base = GDT;
    cpu->gdtr.limit = 0x3f;
    cpu->idtr.base = IDT;
    cpu->idtr.limit = 0xfff;
    cpu_set_seg(cpu, CPU_SEG_TR, SEL_TSS, TSS, 0x67, CPU_SEGA_P | 0xb);
    cpu->exit_on_exception = false;
}

static void test_idt_ring3_to_ring0(void)
{
    tables_setup();
    set_gate(0x80, KHANDLER, 3, 0);
    LOAD(KHANDLER, 0xf4);
    LOAD(UCODE, 0xcd, 0x80); /* int 0x80 */
    cpu_harness_set_user(&h);
    cpu->r[CPU_RSP] = USTACK;
    cpu_set_rflags(cpu, CPU_FL_FIXED1 | CPU_FL_IF);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->cpl, 0);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, SEL_KCODE);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_SS].sel, 0); /* null SS with RPL = new CPL */
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 1);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], RSP0 - 40);
    CU_ASSERT_EQUAL(peek64(RSP0 - 40), UCODE + 2);
    CU_ASSERT_EQUAL(peek64(RSP0 - 32), SEL_UCODE);
    CU_ASSERT_TRUE(peek64(RSP0 - 24) & CPU_FL_IF);
    CU_ASSERT_EQUAL(peek64(RSP0 - 16), USTACK);
    CU_ASSERT_EQUAL(peek64(RSP0 - 8), SEL_UDATA);
    CU_ASSERT_FALSE(cpu_get_rflags(cpu) & CPU_FL_IF); /* interrupt gate */

    /* IRETQ back to ring 3. */
    tables_setup();
    set_gate(0x80, KHANDLER, 3, 0);
    LOAD(KHANDLER, 0x48, 0xcf);
    cpu_harness_set_user(&h);
    cpu->r[CPU_RSP] = USTACK;
    cpu_set_rflags(cpu, CPU_FL_FIXED1 | CPU_FL_IF);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 2), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->cpl, 3);
    CU_ASSERT_EQUAL(cpu->rip, UCODE + 2);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], USTACK);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, SEL_UCODE);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_SS].sel, SEL_UDATA);
    CU_ASSERT_TRUE(cpu_get_rflags(cpu) & CPU_FL_IF);
}

static void test_idt_ist_and_gp(void)
{
    /* #PF from ring 3 on IST1 with its error code. */
    tables_setup();
    set_gate(X86_EXC_PF, KHANDLER + 0x100, 0, 1);
    LOAD(KHANDLER + 0x100, 0xf4);
    set_pte(0x10000, 0);
    load(UCODE, code_read, 3);
    cpu_harness_set_user(&h);
    cpu->r[CPU_RSP] = USTACK;
    cpu->r[CPU_RBX] = 0x10000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 0x101);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], IST1 - 48);
    CU_ASSERT_EQUAL(peek64(IST1 - 48), CPU_PF_U);
    CU_ASSERT_EQUAL(peek64(IST1 - 40), UCODE);
    CU_ASSERT_EQUAL(cpu->cr2, 0x10000);

    /* INT n through a DPL 0 gate from ring 3: #GP(vector * 8 + 2). */
    tables_setup();
    set_gate(0x81, KHANDLER, 0, 0);
    set_gate(X86_EXC_GP, KHANDLER + 0x200, 0, 0);
    LOAD(KHANDLER + 0x200, 0xf4);
    LOAD(UCODE, 0xcd, 0x81);
    cpu_harness_set_user(&h);
    cpu->r[CPU_RSP] = USTACK;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 0x201);
    CU_ASSERT_EQUAL(peek64(RSP0 - 48), 0x81 * 8 + 2);
    CU_ASSERT_EQUAL(peek64(RSP0 - 40), UCODE); /* the fault points at the INT */
}

static void test_syscall_sysret(void)
{
    tables_setup();
    cpu->msr.star = (0x18ull << 48) | ((uint64_t)SEL_KCODE << 32);
    cpu->msr.lstar = KHANDLER + 0x300;
    cpu->msr.sfmask = CPU_FL_IF | CPU_FL_DF;
    LOAD(KHANDLER + 0x300, 0x48, 0x0f, 0x07); /* sysretq */
    LOAD(UCODE, 0x0f, 0x05, 0x90);            /* syscall; nop */
    cpu_harness_set_user(&h);
    cpu->r[CPU_RSP] = USTACK;
    cpu_set_rflags(cpu, CPU_FL_FIXED1 | CPU_FL_IF | CPU_FL_DF | CPU_FL_CF);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 1), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->cpl, 0);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 0x300);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, SEL_KCODE);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_SS].sel, SEL_KDATA);
    CU_ASSERT_EQUAL(cpu->mode, CPU_MODE_LONG64);
    CU_ASSERT_EQUAL(cpu->r[CPU_RCX], UCODE + 2);
    CU_ASSERT_EQUAL(cpu->r[CPU_R11], CPU_FL_FIXED1 | CPU_FL_IF | CPU_FL_DF | CPU_FL_CF);
    CU_ASSERT_EQUAL(cpu_get_rflags(cpu), CPU_FL_FIXED1 | CPU_FL_CF);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], USTACK); /* SYSCALL does not switch stacks */
    CU_ASSERT_EQUAL(cpu_run(cpu, 1), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->cpl, 3);
    CU_ASSERT_EQUAL(cpu->rip, UCODE + 2);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, SEL_UCODE);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_SS].sel, SEL_UDATA);
    CU_ASSERT_EQUAL(cpu->mode, CPU_MODE_LONG64);
    CU_ASSERT_EQUAL(cpu_get_rflags(cpu), CPU_FL_FIXED1 | CPU_FL_IF | CPU_FL_DF | CPU_FL_CF);
    /* SYSRET at CPL 3 is #GP(0); SYSCALL with EFER.SCE clear is #UD. */
    cpu->exit_on_exception = true;
    LOAD(UCODE, 0x48, 0x0f, 0x07);
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    cpu->efer &= ~CPU_EFER_SCE;
    LOAD(UCODE, 0x0f, 0x05);
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_UD);
    cpu->efer |= CPU_EFER_SCE;
}

static void test_triple_fault(void)
{
    tables_setup();
    cpu->idtr.limit = 0; /* every delivery faults: #UD -> #GP -> #DF -> shutdown */
    LOAD(CODE, 0x0f, 0x0b);
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_SHUTDOWN);

    /* #PF while delivering #PF (stack not present) becomes #DF on its IST. */
    tables_setup();
    set_gate(X86_EXC_PF, KHANDLER, 0, 0);
    set_gate(X86_EXC_DF, KHANDLER + 0x100, 0, 1);
    LOAD(KHANDLER + 0x100, 0xf4);
    set_pte(0x10000, 0);
    load(CODE, code_read, sizeof(code_read));
    cpu->r[CPU_RBX] = 0x10000;
    cpu->r[CPU_RSP] = 0x10800; /* the kernel stack is in the non-present page too */
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 0x101);
    CU_ASSERT_EQUAL(peek64(IST1 - 48), 0); /* #DF error code */
}

static void test_cpuid_msr(void)
{
    uint32_t o[4];
    cpu_cpuid_query(cpu, 0, 0, o);
    CU_ASSERT_EQUAL(o[1], 0x68747541u); /* Auth */
    CU_ASSERT_EQUAL(o[3], 0x69746e65u); /* enti */
    CU_ASSERT_EQUAL(o[2], 0x444d4163u); /* cAMD */
    CU_ASSERT_TRUE(o[0] >= 1);
    cpu_cpuid_query(cpu, 1, 0, o);
    CU_ASSERT_TRUE(o[3] & (1u << 26));         /* SSE2 */
    CU_ASSERT_TRUE(o[3] & (1u << 0));          /* FPU */
    CU_ASSERT_FALSE(o[2] & CPU_F1_ECX_XSAVE);
    CU_ASSERT_FALSE(o[2] & (1u << 28));        /* AVX */
    CU_ASSERT_FALSE(o[2] & CPU_F1_ECX_RDRAND);
    CU_ASSERT_EQUAL(o[2], cpu->feat.f1_ecx);
    cpu_cpuid_query(cpu, 0x80000001u, 0, o);
    CU_ASSERT_TRUE(o[3] & CPU_E1_EDX_LM);
    CU_ASSERT_TRUE(o[3] & CPU_E1_EDX_NX);
    CU_ASSERT_TRUE(o[3] & CPU_E1_EDX_SYSCALL);
    cpu_cpuid_query(cpu, 0x80000008u, 0, o);
    CU_ASSERT_EQUAL(o[0] & 0xffff, 0x3028u);

    /* rdmsr of an unknown MSR: #GP(0); EFER reads back; reserved EFER bits: #GP(0). */
    paging_setup();
    LOAD(CODE, 0x0f, 0x32, 0xf4);
    cpu->r[CPU_RCX] = 0x12345678;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    CU_ASSERT_EQUAL(cpu->exc_error, 0);
    cpu->r[CPU_RCX] = 0xc0000080u;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], (uint32_t)cpu->efer);
    cpu->r[CPU_RCX] = 0xfe;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x508);
    LOAD(CODE, 0x0f, 0x30, 0xf4);
    cpu->r[CPU_RCX] = 0xc0000080u;
    cpu->r[CPU_RAX] = (uint32_t)cpu->efer | 0x2;
    cpu->r[CPU_RDX] = 0;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    /* MSRs are CPL 0 only. */
    LOAD(UCODE, 0x0f, 0x32);
    cpu->r[CPU_RCX] = 0xc0000080u;
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
}

static void test_real_mode_int(void)
{
    cpu_harness_set_flat(&h, X86_MODE_16);
    cpu->exit_on_exception = false;
    cpu->idtr.base = 0;
    cpu->idtr.limit = 0x3ff;
    cpu_harness_poke(&h, 0x21 * 4, 2, 0x0500);
    cpu_harness_poke(&h, 0x21 * 4 + 2, 2, 0x0000);
    LOAD(0x500, 0xb8, 0x34, 0x12, 0xcf); /* mov ax, 0x1234; iret */
    LOAD(CODE, 0xcd, 0x21, 0xf4);        /* int 0x21; hlt */
    cpu->r[CPU_RSP] = 0x8000;
    cpu_set_rflags(cpu, CPU_FL_FIXED1 | CPU_FL_IF);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 1), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->rip, 0x500);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], 0x8000 - 6);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, 0x8000 - 6, 2), CODE + 2);
    CU_ASSERT_FALSE(cpu_get_rflags(cpu) & CPU_FL_IF);
    CU_ASSERT_EQUAL(cpu_run(cpu, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xffff, 0x1234);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], 0x8000);
    CU_ASSERT_TRUE(cpu_get_rflags(cpu) & CPU_FL_IF);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 3);
}

static void test_io_permission(void)
{
    /* CPL 3 with IOPL 0: the TSS bitmap decides (bit set = #GP). */
    tables_setup();
    poke64(GDT + 0x30, 0x0000890000000000ull | ((TSS & 0xffffff) << 16) | 0x80);
    cpu_set_seg(cpu, CPU_SEG_TR, SEL_TSS, TSS, 0x80, CPU_SEGA_P | 0xb);
    cpu_harness_poke(&h, TSS + 0x66, 2, 0x68);
    for (int i = 0; i < 16; i++) {
        cpu_harness_poke(&h, TSS + 0x68 + i, 1, 0xff);
    }
    cpu_harness_poke(&h, TSS + 0x68 + 0x80 / 8, 1, 0xfe); /* port 0x80 allowed */
    cpu->exit_on_exception = true;
    LOAD(UCODE, 0xe6, 0x80); /* out 0x80, al */
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_ICOUNT);
    LOAD(UCODE, 0xe6, 0x81); /* out 0x81, al */
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    LOAD(UCODE, 0xe7, 0x80); /* out 0x80, eax: ports 0x80-0x83 */
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_EXCEPTION);
}

/* ---- legacy modes ---- */

/* 32-bit protected mode with a GDT (64-bit code 0x08, data 0x10, code32 0x18, user code32
 * 0x23, user data 0x2b, 32-bit TSS 0x30, call gate 0x38 -> 0x18:KHANDLER+0x400 with one
 * parameter) and a 32-bit IDT. */
static void prot_setup(void)
{
    cpu_harness_set_flat(&h, X86_MODE_32);
    poke64(GDT + 0x00, 0);
    poke64(GDT + 0x08, 0x00af9a000000ffffull);
    poke64(GDT + 0x10, 0x00cf92000000ffffull);
    poke64(GDT + 0x18, 0x00cf9a000000ffffull);
    poke64(GDT + 0x20, 0x00cffa000000ffffull);
    poke64(GDT + 0x28, 0x00cff2000000ffffull);
    poke64(GDT + 0x30, 0x0000890000000067ull | ((TSS & 0xffffff) << 16));
    uint64_t off = KHANDLER + 0x400;
    poke64(GDT + 0x38, (off & 0xffff) | (0x18ull << 16) | ((off & 0xffff0000ull) << 32) |
                           (0xecull << 40) | (1ull << 32));
    for (int i = 0; i < 0x68; i += 8) {
        poke64(TSS + i, 0);
    }
    cpu_harness_poke(&h, TSS + 4, 4, RSP0);
    cpu_harness_poke(&h, TSS + 8, 4, 0x10);
    for (int i = 0; i < 256; i++) {
        poke64(IDT + i * 8, 0);
    }
    cpu->gdtr.base = GDT;
    cpu->gdtr.limit = 0x3f;
    cpu->idtr.base = IDT;
    cpu->idtr.limit = 0x7ff;
    cpu_set_seg(cpu, CPU_SEG_TR, 0x30, TSS, 0x67, CPU_SEGA_P | 0xb);
    cpu->exit_on_exception = false;
}

static void set_gate32(int vec, uint64_t off, unsigned dpl)
{
    poke64(IDT + vec * 8, (off & 0xffff) | (0x18ull << 16) | ((off & 0xffff0000ull) << 32) |
                              ((0x8eull | (dpl << 5)) << 40));
}

static void prot_user(void)
{
    uint32_t base = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED | CPU_SEGA_G |
                    CPU_SEGA_DB | (3u << CPU_SEGA_DPL_SHIFT);
    cpu->cpl = 3;
    cpu_set_seg(cpu, CPU_SEG_CS, 0x23, 0, 0xffffffffu, base | CPU_SEGA_CODE);
    cpu_set_seg(cpu, CPU_SEG_SS, 0x2b, 0, 0xffffffffu, base);
    cpu_set_seg(cpu, CPU_SEG_DS, 0x2b, 0, 0xffffffffu, base);
    cpu->r[CPU_RSP] = USTACK;
}

static void test_prot_int_and_call_gate(void)
{
    /* INT from ring 3 through a 32-bit interrupt gate: TSS SS0:ESP0, 5-dword frame. */
    prot_setup();
    set_gate32(0x80, KHANDLER, 3);
    LOAD(KHANDLER, 0xf4);
    LOAD(UCODE, 0xcd, 0x80);
    prot_user();
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->cpl, 0);
    CU_ASSERT_EQUAL(cpu->mode, CPU_MODE_PROT);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, 0x18);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_SS].sel, 0x10);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], RSP0 - 20);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 20, 4), UCODE + 2);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 16, 4), 0x23);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 8, 4), USTACK);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 4, 4), 0x2b);
    /* ... and IRET back to ring 3; DS (DPL 3) stays. */
    prot_setup();
    set_gate32(0x80, KHANDLER, 3);
    LOAD(KHANDLER, 0xcf);
    prot_user();
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 2), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->cpl, 3);
    CU_ASSERT_EQUAL(cpu->rip, UCODE + 2);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], USTACK);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_SS].sel, 0x2b);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_DS].sel, 0x2b);

    /* CALL FAR through a call gate from ring 3 with one parameter, RETF 4 back. */
    prot_setup();
    LOAD(KHANDLER + 0x400, 0xf4);
    LOAD(UCODE, 0x6a, 0x55, 0x9a, 0, 0, 0, 0, 0x3b, 0x00); /* push 0x55; call 0x3b:0 */
    prot_user();
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->cpl, 0);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, 0x18);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], RSP0 - 20);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 20, 4), UCODE + 9); /* return EIP */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 16, 4), 0x23);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 12, 4), 0x55);      /* copied parameter */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 8, 4), USTACK - 4);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 4, 4), 0x2b);
    prot_setup();
    LOAD(KHANDLER + 0x400, 0xca, 0x04, 0x00); /* retf 4 */
    prot_user();
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 3), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->cpl, 3);
    CU_ASSERT_EQUAL(cpu->rip, UCODE + 9);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], USTACK);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].sel, 0x23);

    /* Loading a DPL 0 data segment at CPL 3: #GP(selector). */
    prot_setup();
    cpu->exit_on_exception = true;
    LOAD(UCODE, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8); /* mov ax, 0x10; mov ds, ax */
    prot_user();
    CU_ASSERT_EQUAL(cpu_harness_run(&h, UCODE, 10), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    CU_ASSERT_EQUAL(cpu->exc_error, 0x10);
}

/* A 16-bit TSS (286 layout) as a task: CALL FAR to it from a 32-bit task loads IP, FLAGS,
 * the low halves of the GPRs and the selectors, links back; IRET with NT returns and saves
 * the 16-bit task's state in its own layout. */
static void test_task_switch_16bit_tss(void)
{
    const uint64_t tss16 = 0x7800, task = CODE + 0x100;
    prot_setup();
    cpu->exit_on_exception = true;
    poke64(GDT + 0x40, 0x000081000000002bull | ((tss16 & 0xffffff) << 16));
    cpu_harness_poke(&h, GDT + 0x35, 1, 0x8b); /* the running 32-bit TSS is busy (LTR) */
    cpu->gdtr.limit = 0x4f;
    for (int i = 0; i < 0x2c; i += 2) {
        cpu_harness_poke(&h, tss16 + i, 2, 0);
    }
    cpu_harness_poke(&h, tss16 + 0x0e, 2, task); /* IP */
    cpu_harness_poke(&h, tss16 + 0x10, 2, 0x0002); /* FLAGS */
    cpu_harness_poke(&h, tss16 + 0x12, 2, 0x1234); /* AX */
    cpu_harness_poke(&h, tss16 + 0x1a, 2, 0x8800); /* SP */
    cpu_harness_poke(&h, tss16 + 0x22, 2, 0x10);   /* ES */
    cpu_harness_poke(&h, tss16 + 0x24, 2, 0x18);   /* CS */
    cpu_harness_poke(&h, tss16 + 0x26, 2, 0x10);   /* SS */
    cpu_harness_poke(&h, tss16 + 0x28, 2, 0x10);   /* DS */
    LOAD(task, 0xa3, 0x00, 0x80, 0x00, 0x00, 0xcf); /* mov [0x8000], eax; iretd */
    LOAD(CODE, 0x9a, 0, 0, 0, 0, 0x40, 0x00, 0xf4); /* call 0x40:0; hlt */
    cpu->r[CPU_RAX] = 0xaaaa0000u;
    cpu->r[CPU_RBX] = 0x77;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, 0x8000, 4), 0xaaaa1234u); /* AX, upper half kept */
    CU_ASSERT_EQUAL(cpu->rip, CODE + 8);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_TR].sel, 0x30);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX] & 0xffffffffu, 0xaaaa0000u); /* the 32-bit task's own */
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX], 0x77);
    CU_ASSERT_FALSE(cpu_get_rflags(cpu) & CPU_FL_NT);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, tss16 + 0x00, 2), 0x30);     /* back link */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, tss16 + 0x0e, 2), task + 6); /* IP after IRET */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, tss16 + 0x12, 2), 0x1234);   /* AX saved */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, tss16 + 0x1a, 2), 0x8800);   /* SP saved */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, GDT + 0x45, 1), 0x81);       /* not busy again */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, TSS + 0x20, 4), CODE + 7);   /* 32-bit EIP saved */
}

static void test_enter_long_mode(void)
{
    paging_setup(); /* builds the 4-level tables */
    prot_setup();
    cpu->exit_on_exception = true;
    /* mov eax,cr4; or eax,0x20; mov cr4,eax; mov eax,PML4; mov cr3,eax;
     * mov ecx,EFER; rdmsr; or eax,0x100; wrmsr; mov eax,cr0; or eax,0x80000000; mov cr0,eax;
     * jmp 0x08:CODE+0x100 */
    LOAD(CODE, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x10,
         0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01,
         0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22,
         0xc0, 0xea, 0x00, 0x11, 0x00, 0x00, 0x08, 0x00);
    LOAD(CODE + 0x100, 0x48, 0x8b, 0x03, 0xf4); /* 64-bit: mov rax, [rbx]; hlt */
    poke64(0x20000, 0xfeedfacecafebeefull);
    cpu->r[CPU_RBX] = 0x40020000; /* only reachable through the 1 GiB page */
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 1000), CPU_EXIT_HLT);
    CU_ASSERT_TRUE(cpu->efer & CPU_EFER_LMA);
    CU_ASSERT_EQUAL(cpu->mode, CPU_MODE_LONG64);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 0x104);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0xfeedfacecafebeefull);

    /* CR0.PG with EFER.LME but without CR4.PAE: #GP(0). */
    prot_setup();
    cpu->exit_on_exception = true;
    cpu->efer = CPU_EFER_LME;
    LOAD(CODE, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xf4);
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    CU_ASSERT_FALSE(cpu->cr0 & CPU_CR0_PG);
    cpu->efer = 0;
}

static void test_paging_32_and_pae(void)
{
    const uint64_t pdir = 0x110000, pt = 0x111000;
    static const uint8_t rd32[] = {0x8b, 0x03, 0xf4}; /* mov eax, [ebx]; hlt */
    /* 32-bit paging: 4 KiB pages for 0-4 MiB, a 4 MiB PSE page at 4 MiB onto PA 0. */
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu->exit_on_exception = true;
    for (uint64_t i = 0; i < 1024; i++) {
        cpu_harness_poke(&h, pdir + i * 4, 4, 0);
        cpu_harness_poke(&h, pt + i * 4, 4, (i << 12) | P | W | U);
    }
    cpu_harness_poke(&h, pdir, 4, pt | P | W | U);
    cpu_harness_poke(&h, pdir + 4, 4, 0 | P | W | U | PS);
    cpu_harness_poke(&h, pt + 0x10 * 4, 4, 0);
    poke64(0x20000, 0x12345678);
    cpu->cr3 = pdir;
    cpu->cr4 |= CPU_CR4_PSE;
    cpu->cr0 |= CPU_CR0_PG | CPU_CR0_WP;
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
    load(CODE, rd32, sizeof(rd32));
    cpu->r[CPU_RBX] = 0x420000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 10), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x12345678);
    CU_ASSERT_TRUE(cpu_harness_peek(&h, pdir + 4, 4) & A);
    cpu->r[CPU_RBX] = 0x10004;
    expect_pf(cpu_harness_run(&h, CODE, 10), 0x10004, 0);

    /* PAE paging without long mode: PDPTE -> PD -> PT, a 2 MiB page, NX with EFER.NXE. */
    const uint64_t pdpt = 0x120000, pd = 0x121000, pt2 = 0x122000;
    cpu_harness_set_flat(&h, X86_MODE_32);
    cpu->exit_on_exception = true;
    for (uint64_t i = 0; i < 512; i++) {
        poke64(pd + i * 8, 0);
        poke64(pt2 + i * 8, (i << 12) | P | W | U);
    }
    for (uint64_t i = 0; i < 4; i++) {
        poke64(pdpt + i * 8, 0);
    }
    poke64(pdpt, pd | P);
    poke64(pd, pt2 | P | W | U);
    poke64(pd + 2 * 8, 0 | P | W | U | PS);
    poke64(pt2 + 0x13 * 8, 0x13000 | P | W | U | XD);
    cpu->cr3 = pdpt;
    cpu->cr4 |= CPU_CR4_PAE;
    cpu->efer = CPU_EFER_NXE;
    cpu->cr0 |= CPU_CR0_PG | CPU_CR0_WP;
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
    load(CODE, rd32, sizeof(rd32));
    cpu->r[CPU_RBX] = 0x420000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 10), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RAX], 0x12345678);
    LOAD(CODE, 0xff, 0xe3); /* jmp ebx */
    cpu->r[CPU_RBX] = 0x13000;
    expect_pf(cpu_harness_run(&h, CODE, 10), 0x13000, CPU_PF_P | CPU_PF_I);
    /* A PDPTE with reserved bits set: #PF with RSVD. */
    poke64(pdpt + 8, pd | P | 0x2);
    cpu->r[CPU_RBX] = 0x40000000;
    load(CODE, rd32, sizeof(rd32));
    expect_pf(cpu_harness_run(&h, CODE, 10), 0x40000000, CPU_PF_P | CPU_PF_RSVD);
    cpu->efer = 0;
}

static void test_v86_round_trip(void)
{
    /* Ring 0 IRETs into V86 mode; INT n there with IOPL 0 is #GP(0), delivered to ring 0
     * with the V86 frame (GS FS DS ES SS ESP EFLAGS CS EIP error) and null data segments. */
    prot_setup();
    set_gate32(X86_EXC_GP, KHANDLER + 0x200, 0);
    LOAD(KHANDLER + 0x200, 0xf4);
    /* push 0 x5 (gs fs ds es ss); push 0x7000; push 0x20002; push 0x300; push 0; iretd */
    LOAD(CODE, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x00, 0x68, 0x00, 0x70,
         0x00, 0x00, 0x68, 0x02, 0x00, 0x02, 0x00, 0x68, 0x00, 0x03, 0x00, 0x00, 0x6a, 0x00,
         0xcf);
    LOAD(0x3000, 0xcd, 0x21); /* V86 0300:0000: int 0x21 */
    cpu->r[CPU_RSP] = 0x8000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 10), CPU_EXIT_ICOUNT);
    CU_ASSERT_EQUAL(cpu->mode, CPU_MODE_V86);
    CU_ASSERT_EQUAL(cpu->cpl, 3);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_CS].base, 0x3000);
    CU_ASSERT_EQUAL(cpu->rip, 0);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], 0x7000);
    CU_ASSERT_EQUAL(cpu_run(cpu, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->mode, CPU_MODE_PROT);
    CU_ASSERT_EQUAL(cpu->cpl, 0);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], RSP0 - 40);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 40, 4), 0);      /* error code */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 36, 4), 0);      /* EIP of the INT */
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 32, 4), 0x300);  /* CS */
    CU_ASSERT_TRUE(cpu_harness_peek(&h, RSP0 - 28, 4) & CPU_FL_VM);
    CU_ASSERT_EQUAL(cpu_harness_peek(&h, RSP0 - 24, 4), 0x7000); /* ESP */
    CU_ASSERT_FALSE(cpu_get_rflags(cpu) & CPU_FL_VM);
    CU_ASSERT_EQUAL(cpu->seg[CPU_SEG_DS].sel, 0);
    CU_ASSERT_TRUE(cpu->seg[CPU_SEG_DS].attr & CPU_SEGA_UNUSABLE);
}

/* ---- external interrupts through cpu->intc ---- */

struct mock_intc {
    bool pending; /* INTR line */
    int vector;   /* what INTA returns */
    bool nmi;
    int acks;
};

static bool mock_intr_pending(void *o)
{
    return ((struct mock_intc *)o)->pending;
}

static int mock_intr_ack(void *o)
{
    struct mock_intc *m = o;
    m->pending = false;
    m->acks++;
    return m->vector;
}

static bool mock_nmi_pending(void *o)
{
    return ((struct mock_intc *)o)->nmi;
}

static void mock_nmi_ack(void *o)
{
    ((struct mock_intc *)o)->nmi = false;
}

static void test_external_interrupts(void)
{
    struct mock_intc m = {.pending = true, .vector = 0x40};
    struct accel_intc ic = {.opaque = &m, .intr_pending = mock_intr_pending,
                            .intr_ack = mock_intr_ack, .nmi_pending = mock_nmi_pending,
                            .nmi_ack = mock_nmi_ack};
    /* Pending while IF is clear: taken after STI and the instruction in its shadow. */
    tables_setup();
    cpu->intc = &ic;
    cpu_sys_intr_hint(cpu);
    set_gate(0x40, KHANDLER, 0, 0);
    LOAD(KHANDLER, 0xf4);
    LOAD(CODE, 0x90, 0x90, 0xfb, 0x90, 0x90, 0xf4); /* nop; nop; sti; nop; nop; hlt */
    cpu->r[CPU_RSP] = 0x8000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 1);
    CU_ASSERT_EQUAL(m.acks, 1);
    CU_ASSERT_EQUAL(peek64(cpu->r[CPU_RSP]), CODE + 4);

    /* An external interrupt on a vector that has an error code as an exception (IRQ0 with
     * the PIC at the BIOS base gives vector 8) pushes none (SDM 6.13). */
    tables_setup();
    cpu->intc = &ic;
    m.pending = true;
    m.vector = 0x0d;
    cpu_sys_intr_hint(cpu);
    set_gate(0x0d, KHANDLER, 0, 0);
    LOAD(KHANDLER, 0xf4);
    LOAD(CODE, 0xfb, 0x90, 0x90, 0xf4); /* sti; nop; nop; hlt */
    cpu->r[CPU_RSP] = 0x8000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 1);
    CU_ASSERT_EQUAL(cpu->r[CPU_RSP], 0x8000 - 40); /* RIP CS RFLAGS RSP SS: 5 slots */
    CU_ASSERT_EQUAL(peek64(cpu->r[CPU_RSP]), CODE + 2);
    m.vector = 0x40;

    /* HLT with IF set, then an interrupt arrives (hint = the kick): it wakes the CPU. */
    tables_setup();
    cpu->intc = &ic;
    m.pending = false;
    set_gate(0x40, KHANDLER, 0, 0);
    LOAD(CODE, 0xfb, 0xf4); /* sti; hlt */
    cpu->r[CPU_RSP] = 0x8000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_TRUE(cpu->halted);
    CU_ASSERT_EQUAL(cpu->rip, CODE + 2);
    m.pending = true;
    cpu_sys_intr_hint(cpu);
    CU_ASSERT_EQUAL(cpu_run(cpu, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 1);
    CU_ASSERT_EQUAL(m.acks, 3);
    CU_ASSERT_EQUAL(peek64(cpu->r[CPU_RSP]), CODE + 2);

    /* NMI: delivered even with IF clear, then blocked until IRET. */
    tables_setup();
    cpu->intc = &ic;
    m.pending = false;
    m.nmi = true;
    cpu->nmi_blocked = false;
    cpu_sys_intr_hint(cpu);
    set_gate(X86_EXC_NMI, KHANDLER + 0x100, 0, 0);
    LOAD(KHANDLER + 0x100, 0xf4);
    LOAD(CODE, 0x90, 0xf4);
    cpu->r[CPU_RSP] = 0x8000;
    CU_ASSERT_EQUAL(cpu_harness_run(&h, CODE, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 0x101);
    CU_ASSERT_TRUE(cpu->nmi_blocked);
    CU_ASSERT_FALSE(m.nmi);
    m.nmi = true; /* a second NMI waits for IRET */
    cpu_sys_intr_hint(cpu);
    CU_ASSERT_EQUAL(cpu_run(cpu, 100), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->rip, KHANDLER + 0x101);
    CU_ASSERT_TRUE(m.nmi);
    cpu->intc = NULL;
    cpu->nmi_blocked = false;
}

static void test_mov_cr_dr(void)
{
    paging_setup();
    /* mov dr0, rax; mov rbx, dr0; mov dr7, rcx; mov rdx, dr7; hlt */
    LOAD(CODE, 0x0f, 0x23, 0xc0, 0x0f, 0x21, 0xc3, 0x0f, 0x23, 0xf9, 0x0f, 0x21, 0xfa, 0xf4);
    cpu->r[CPU_RAX] = 0xffffffff81000000ull;
    cpu->r[CPU_RCX] = 0;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->r[CPU_RBX], 0xffffffff81000000ull);
    CU_ASSERT_EQUAL(cpu->r[CPU_RDX], 0x400); /* DR7 bit 10 reads as 1 */
    /* mov cr4, rax with a reserved bit (CR4.VMXE, not advertised): #GP(0). */
    LOAD(CODE, 0x0f, 0x22, 0xe0, 0xf4);
    cpu->r[CPU_RAX] = cpu->cr4 | (1ull << 13);
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
    /* Clearing CR4.PAE in long mode: #GP(0). */
    cpu->r[CPU_RAX] = cpu->cr4 & ~CPU_CR4_PAE;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_EXCEPTION);
    CU_ASSERT_TRUE(cpu->cr4 & CPU_CR4_PAE);
    /* CR8 takes 4 bits. */
    LOAD(CODE, 0x44, 0x0f, 0x22, 0xc0, 0xf4); /* mov cr8, rax */
    cpu->r[CPU_RAX] = 0x10;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_EXCEPTION);
    cpu->r[CPU_RAX] = 0x9;
    CU_ASSERT_EQUAL(run_kernel(), CPU_EXIT_HLT);
    CU_ASSERT_EQUAL(cpu->cr8, 0x9);
    /* CR access at CPL 3: #GP(0). */
    LOAD(UCODE, 0x0f, 0x20, 0xd8); /* mov rax, cr3 */
    CU_ASSERT_EQUAL(run_user(1), CPU_EXIT_EXCEPTION);
    CU_ASSERT_EQUAL(cpu->exc_vector, X86_EXC_GP);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("cpu_sys", setup, teardown);
    CU_add_test(s, "pf_not_present", test_pf_not_present);
    CU_add_test(s, "pf_protection", test_pf_protection);
    CU_add_test(s, "pf_nx_and_rsvd", test_pf_nx_and_rsvd);
    CU_add_test(s, "accessed_dirty", test_accessed_dirty);
    CU_add_test(s, "large_pages", test_large_pages);
    CU_add_test(s, "tlb_invlpg_cr3", test_tlb_invlpg_cr3);
    CU_add_test(s, "idt_ring3_to_ring0", test_idt_ring3_to_ring0);
    CU_add_test(s, "idt_ist_and_gp", test_idt_ist_and_gp);
    CU_add_test(s, "syscall_sysret", test_syscall_sysret);
    CU_add_test(s, "triple_fault", test_triple_fault);
    CU_add_test(s, "cpuid_msr", test_cpuid_msr);
    CU_add_test(s, "real_mode_int", test_real_mode_int);
    CU_add_test(s, "io_permission", test_io_permission);
    CU_add_test(s, "prot_int_and_call_gate", test_prot_int_and_call_gate);
    CU_add_test(s, "enter_long_mode", test_enter_long_mode);
    CU_add_test(s, "task_switch_16bit_tss", test_task_switch_16bit_tss);
    CU_add_test(s, "paging_32_and_pae", test_paging_32_and_pae);
    CU_add_test(s, "v86_round_trip", test_v86_round_trip);
    CU_add_test(s, "external_interrupts", test_external_interrupts);
    CU_add_test(s, "mov_cr_dr", test_mov_cr_dr);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
