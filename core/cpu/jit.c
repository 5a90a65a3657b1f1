/* Code-generating translator for hot 64-bit blocks (x86-64 host only).
 *
 * A block that has run JIT_HOT times is compiled into host code that does what the run loop
 * would do with its records. Instructions whose meaning on the host is the meaning on the
 * guest (integer ALU, moves, shifts, multiplies, bit operations, conditional moves/sets,
 * LEA) are re-encoded with guest registers loaded into host registers and executed
 * natively: the host computes exactly the results and flags the guest CPU would, the native
 * oracle's reference. Their memory operands go through an inline soft-TLB probe; a miss
 * (fault, MMIO, code page, page crossing) calls the instruction's interpreter handler
 * instead, which does everything the slow way. Every other instruction is a call to its
 * handler, with RIP, the instruction count and the flags brought up to date first.
 *
 * Guest flags live either in host RFLAGS (after a native flag writer) or in the lazy-flags
 * state; translated code stores host RFLAGS with pushfq as CPU_CC_HOST before anything that
 * can fault or look (handlers, memory accesses, block exit), so an exception frame always
 * sees exact flags. Native code never faults: only handlers raise exceptions (longjmp to
 * cpu_run), and they see an exact RIP, instruction count and flag state.
 *
 * Host registers: RBP = struct cpu, R15 = linear RIP of the block start (a block is keyed by
 * physical address, so the same code may run at several linear addresses), R12 = host
 * pointer of a memory operand, R11/R10 = address arithmetic; guest RAX..RBX are loaded into
 * host RAX..RBX (so implicit operands and AH..BH keep their encodings), other guest
 * registers into RSI, R8, R9, R10. Registers are loaded before and stored after each
 * instruction. */
#include "core/cpu/cpu.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__)

#define JIT_CODE_SIZE (64u << 20)
#define JIT_HOT_SIZE (40u << 20) /* hot paths first, slow paths (cold) after, so that the code
                                    a loop runs is dense in the instruction cache */
#define JIT_COLD_START 64u       /* the shared epilogue comes first in the cold part */
#define JIT_SLACK 1024 /* bytes a single instruction's translation may take, at most */

enum { H_RAX = 0, H_RCX, H_RDX, H_RBX, H_RSP, H_RBP, H_RSI, H_RDI, H_R8, H_R9, H_R10, H_R11,
       H_R12, H_R13, H_R14, H_R15 };

struct cpu_jit {
    uint8_t *code; /* RWX buffer: [0, JIT_HOT_SIZE) hot, the rest cold */
    size_t used;         /* hot bytes */
    size_t cold_used;    /* cold bytes (from JIT_HOT_SIZE) */
    size_t prologue_len; /* entry of a chained jump: past the prologue */
    FILE *perfmap;       /* LODGE_JIT_PERFMAP=1: /tmp/perf-PID.map names blocks for perf */
};

static void emit_epilogue(uint8_t *at);

struct cpu_jit *cpu_jit_new(void)
{
    struct cpu_jit *j = calloc(1, sizeof(*j));
    if (!j) {
        return NULL;
    }
    void *p = mmap(NULL, JIT_CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(j);
        return NULL;
    }
    j->code = p;
    emit_epilogue(j->code + JIT_HOT_SIZE);
    j->cold_used = JIT_COLD_START;
    const char *pm = getenv("LODGE_JIT_PERFMAP");
    if (pm && strcmp(pm, "1") == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
        j->perfmap = fopen(path, "a");
    }
    return j;
}

void cpu_jit_free(struct cpu_jit *j)
{
    if (j) {
        if (j->perfmap) {
            fclose(j->perfmap);
        }
        munmap(j->code, JIT_CODE_SIZE);
        free(j);
    }
}

void cpu_jit_reset(struct cpu_jit *j)
{
    j->used = 0;
    j->cold_used = JIT_COLD_START; /* the epilogue stays */
}

/* ---- emitter ---- */

struct jb {
    uint8_t *p, *end;   /* where code goes now */
    uint8_t *q, *qend;  /* the other part (cold while emitting hot code, and back) */
    unsigned cold;      /* cold_enter depth */
    const uint8_t *epilogue;
    bool m32; /* translating 32-bit code (flat segments): RIPs wrap at 4 GiB */
};

/* Emit into the cold part (slow paths, rare exits) until the matching cold_leave; jumps
 * between the parts are ordinary rel32 jumps. Nests. */
static void cold_swap(struct jb *j)
{
    uint8_t *p = j->p, *e = j->end;
    j->p = j->q;
    j->end = j->qend;
    j->q = p;
    j->qend = e;
}

static void cold_enter(struct jb *j)
{
    if (j->cold++ == 0) {
        cold_swap(j);
    }
}

static void cold_leave(struct jb *j)
{
    if (--j->cold == 0) {
        cold_swap(j);
    }
}

static void b1(struct jb *j, unsigned v)
{
    *j->p++ = (uint8_t)v;
}

static void b4(struct jb *j, uint32_t v)
{
    memcpy(j->p, &v, 4);
    j->p += 4;
}

static void b8(struct jb *j, uint64_t v)
{
    memcpy(j->p, &v, 8);
    j->p += 8;
}

/* ModRM (+SIB, displacement) for [base + index*2^scale + disp]; base -1: none. */
static void modrm_mem(struct jb *j, int reg, int base, int index, int scale, int32_t disp)
{
    if (base < 0) {
        b1(j, 0x04 | (reg & 7) << 3);
        b1(j, (unsigned)scale << 6 | (unsigned)((index >= 0 ? index : 4) & 7) << 3 | 5);
        b4(j, (uint32_t)disp);
        return;
    }
    int mod = (disp == 0 && (base & 7) != 5) ? 0 : (disp >= -128 && disp <= 127) ? 1 : 2;
    if (index >= 0 || (base & 7) == 4) {
        b1(j, (unsigned)mod << 6 | (reg & 7) << 3 | 4);
        b1(j, (unsigned)scale << 6 | (unsigned)((index >= 0 ? index : 4) & 7) << 3 | (base & 7));
    } else {
        b1(j, (unsigned)mod << 6 | (reg & 7) << 3 | (base & 7));
    }
    if (mod == 1) {
        b1(j, (uint8_t)disp);
    } else if (mod == 2) {
        b4(j, (uint32_t)disp);
    }
}

/* [REX] opcode modrm for a memory operand. w: REX.W. */
static void op_mem(struct jb *j, bool w, unsigned opc, int reg, int base, int index, int scale,
                   int32_t disp)
{
    unsigned rex = (w ? 8u : 0) | ((reg >> 3) & 1u) << 2 | (index >= 0 ? ((index >> 3) & 1u) << 1 : 0) |
                   (base >= 0 ? (base >> 3) & 1u : 0);
    if (rex) {
        b1(j, 0x40 | rex);
    }
    if (opc > 0xffff) {
        b1(j, opc >> 16);
    }
    if (opc > 0xff) {
        b1(j, (opc >> 8) & 0xff);
    }
    b1(j, opc & 0xff);
    modrm_mem(j, reg, base, index, scale, disp);
}

/* [REX] opcode modrm for two registers. */
static void op_rr(struct jb *j, bool w, unsigned opc, int reg, int rm)
{
    unsigned rex = (w ? 8u : 0) | ((reg >> 3) & 1u) << 2 | ((rm >> 3) & 1u);
    if (rex) {
        b1(j, 0x40 | rex);
    }
    if (opc > 0xff) {
        b1(j, opc >> 8);
    }
    b1(j, opc & 0xff);
    b1(j, 0xc0 | (reg & 7) << 3 | (rm & 7));
}

#define CPU_OFF(field) ((int32_t)offsetof(struct cpu, field))

static void ld_guest(struct jb *j, int host, int guest)
{
    op_mem(j, true, 0x8b, host, H_RBP, -1, 0, CPU_OFF(r) + guest * 8);
}

static void st_guest(struct jb *j, int host, int guest)
{
    op_mem(j, true, 0x89, host, H_RBP, -1, 0, CPU_OFF(r) + guest * 8);
}

static void mov_imm64(struct jb *j, int r, uint64_t v)
{
    b1(j, 0x48 | ((r >> 3) & 1));
    b1(j, 0xb8 | (r & 7));
    b8(j, v);
}

/* cpu->field = R15 + off (a linear RIP of this block). */
static void st_rip(struct jb *j, int32_t field, int64_t off)
{
    op_mem(j, true, 0x8d, H_RAX, H_R15, -1, 0, (int32_t)off);
    if (j->m32) {
        op_rr(j, false, 0x89, H_RAX, H_RAX); /* mov eax, eax */
    }
    op_mem(j, true, 0x89, H_RAX, H_RBP, -1, 0, field);
}

static void add_icount(struct jb *j, unsigned n)
{
    if (n) {
        op_mem(j, true, 0x83, 0, H_RBP, -1, 0, CPU_OFF(icount));
        b1(j, n);
    }
}

static void call_abs(struct jb *j, const void *fn)
{
    mov_imm64(j, H_RAX, (uint64_t)(uintptr_t)fn);
    b1(j, 0xff);
    b1(j, 0xd0);
}

/* jcc/jmp rel32 to be patched: returns the address of the rel32 field. */
static uint8_t *jcc_fwd(struct jb *j, unsigned cc)
{
    b1(j, 0x0f);
    b1(j, 0x80 | cc);
    uint8_t *at = j->p;
    b4(j, 0);
    return at;
}

static uint8_t *jmp_fwd(struct jb *j)
{
    b1(j, 0xe9);
    uint8_t *at = j->p;
    b4(j, 0);
    return at;
}

static void patch_here(struct jb *j, uint8_t *at)
{
    int32_t rel = (int32_t)(j->p - (at + 4));
    memcpy(at, &rel, 4);
}

/* dst = byte offset of the TLB entry for the linear address in src ((lin >> 12) & 255,
 * entries of 64 bytes) in the table at R13. */
static void tlb_index(struct jb *j, int dst, int src)
{
    _Static_assert(sizeof(struct cpu_tlb_entry) == 64, "TLB entries are indexed by shifting");
    op_rr(j, true, 0x89, src, dst);
    op_rr(j, true, 0xc1, 5, dst);
    b1(j, 12 - 6);
    op_rr(j, false, 0x81, 4, dst);
    b4(j, (CPU_TLB_SIZE - 1) << 6);
}

static const uint8_t saved_regs[] = {H_RBP, H_RBX, H_R12, H_R13, H_R14, H_R15};
static void ret_count(struct jb *j, unsigned n);
static void chain_exit_site(struct jb *j, const struct cpu_jit *jit,
                            const struct cpu_jit_chain *ch, unsigned n, uint8_t *site);
static void chain_exit_any(struct jb *j, const struct cpu_jit *jit,
                           const struct cpu_jit_chain *ch, unsigned n, uint8_t *site, bool relink);

static void prologue(struct jb *j)
{
    for (unsigned i = 0; i < sizeof(saved_regs); i++) {
        if (saved_regs[i] >= 8) {
            b1(j, 0x41);
        }
        b1(j, 0x50 | (saved_regs[i] & 7));
    }
    b1(j, 0x48); /* sub rsp, 8: calls see a 16-byte aligned stack */
    b1(j, 0x83);
    b1(j, 0xec);
    b1(j, 8);
    op_rr(j, true, 0x89, H_RDI, H_RBP); /* mov rbp, rdi */
    op_mem(j, true, 0x8b, H_R15, H_RBP, -1, 0, CPU_OFF(rip));
}

/* Entry from the loop, after the prologue: R13 = the TLB of the current privilege (chained
 * entries skip it: the privilege cannot change on a near branch). */
static void block_entry(struct jb *j)
{
    /* R13 = &cpu->tlb[mmu_idx][0]: the privilege level cannot change inside a block */
    op_mem(j, false, 0x0fb6, H_RAX, H_RBP, -1, 0, CPU_OFF(mmu_idx)); /* movzx eax, byte */
    op_rr(j, true, 0x69, H_RAX, H_RAX);
    b4(j, (uint32_t)(sizeof(struct cpu_tlb_entry) * CPU_TLB_SIZE));
    op_mem(j, true, 0x8d, H_R13, H_RBP, H_RAX, 0, CPU_OFF(tlb));
    op_rr(j, false, 0x31, H_RDI, H_RDI); /* no direct jump came here */
}

/* The chained entry (R15 = this block's RIP, RDI = the end of the direct jump that came
 * here or 0): R14 = the block. */
static void chained_entry(struct jb *j, const struct cpu_jit *jit, const struct cpu_jit_chain *ch)
{
    mov_imm64(j, H_R14, (uint64_t)(uintptr_t)ch->block);
    op_mem(j, false, 0x80, 7, H_R14, -1, 0, ch->off_valid); /* cmp byte [valid], 0 */
    b1(j, 0);
    uint8_t *gone = jcc_fwd(j, 0x4);
    /* Invalidated since a predecessor linked to it: go on to whatever translation is at
     * this RIP now and relink that predecessor's jump (RDI) to it, else to the loop. */
    cold_enter(j);
    patch_here(j, gone);
    op_rr(j, true, 0x89, H_R15, H_RAX);
    op_mem(j, true, 0x89, H_RAX, H_RBP, -1, 0, CPU_OFF(rip));
    chain_exit_any(j, jit, ch, 0, NULL, true);
    cold_leave(j);
}

/* Leave for the instruction at block offset off in this page (icount and flags up to date):
 * a direct jump, linked to the successor's translation by the first lookup that finds it. */
static void exit_direct(struct jb *j, const struct cpu_jit *jit, const struct cpu_jit_chain *ch,
                        unsigned n, int64_t off)
{
    op_mem(j, false, 0x83, 5, H_RBP, -1, 0, CPU_OFF(jit_budget)); /* sub dword [..], 1 */
    b1(j, 1);
    uint8_t *out = jcc_fwd(j, 0xe);
    op_mem(j, true, 0x8d, H_R15, H_R15, -1, 0, (int32_t)off); /* the successor's RIP */
    b1(j, 0x48); /* lea rdi, [rip + 5]: the end of the jump below, for relinking */
    b1(j, 0x8d);
    b1(j, 0x3d);
    b4(j, 5);
    uint8_t *site = jmp_fwd(j); /* to the lookup below (cold) until linked */
    cold_enter(j);
    patch_here(j, site);
    op_mem(j, true, 0x8d, H_R15, H_R15, -1, 0, (int32_t)-off); /* not linked: ours again */
    st_rip(j, CPU_OFF(rip), off); /* leaves RAX = the next RIP */
    chain_exit_site(j, jit, ch, n, site);
    patch_here(j, out);
    st_rip(j, CPU_OFF(rip), off);
    ret_count(j, n);
    cold_leave(j);
}

/* Whether block offset off is in the block's page (direct exits need a fixed successor). */
static bool off_in_page(const struct cpu_jit_chain *ch, int64_t off)
{
    return (int64_t)ch->page_off + off >= 0 && (int64_t)ch->page_off + off < 4096;
}

/* RAX = the next RIP (already in cpu->rip), icount and flags up to date: enter the
 * successor's translation directly when it is cached and translated and the budget allows
 * (anything that wants the loop zeroes it: kicks, interrupt hints, DMA into code); else
 * return n. */
static void chain_exit(struct jb *j, const struct cpu_jit *jit, const struct cpu_jit_chain *ch,
                       unsigned n)
{
    chain_exit_site(j, jit, ch, n, NULL);
}

/* As chain_exit; site (or NULL) is the rel32 of a direct jump that is pointed at the
 * successor once found, so that later runs go there straight (exit_direct). */
static void chain_exit_site(struct jb *j, const struct cpu_jit *jit,
                            const struct cpu_jit_chain *ch, unsigned n, uint8_t *site)
{
    chain_exit_any(j, jit, ch, n, site, false);
}

/* The lookup of chain_exit_site; relink: the entry of an invalidated block, which looks up
 * the translation now at its RIP (RAX) and points the direct jump that came here (its rel32
 * ends at RDI; RDI = 0: none) at it. */
static void chain_exit_any(struct jb *j, const struct cpu_jit *jit,
                           const struct cpu_jit_chain *ch, unsigned n, uint8_t *site, bool relink)
{
    uint8_t *out[16];
    unsigned no = 0;
    uint8_t *have = NULL, *have2 = NULL;
    if (!ch->chainable && !relink) {
        ret_count(j, n);
        return;
    }
    if (relink) {
        goto jump_cache;
    }
    op_mem(j, true, 0x3b, H_RAX, H_R14, -1, 0, ch->off_rip[0]); /* cmp rax, [b.rip0] */
    uint8_t *try1 = jcc_fwd(j, 0x5);
    op_mem(j, true, 0x8b, H_RDX, H_R14, -1, 0, ch->off_next[0]);
    have = jmp_fwd(j);
    patch_here(j, try1);
    op_mem(j, true, 0x3b, H_RAX, H_R14, -1, 0, ch->off_rip[1]);
    uint8_t *other = jcc_fwd(j, 0x5);
    op_mem(j, true, 0x8b, H_RDX, H_R14, -1, 0, ch->off_next[1]);
    have2 = jmp_fwd(j);
    patch_here(j, other);
jump_cache:
    /* another page: the jump cache entry for RAX, checked against the instruction TLB as
     * the loop's lookup does (RDX = &jc[(lin ^ lin >> bits) & (size - 1)]) */
    op_rr(j, true, 0x89, H_RAX, H_RDX);
    op_rr(j, true, 0xc1, 5, H_RDX);
    b1(j, ch->jc_bits);
    op_rr(j, true, 0x31, H_RAX, H_RDX);
    op_rr(j, false, 0x81, 4, H_RDX);
    b4(j, (1u << ch->jc_bits) - 1);
    op_rr(j, true, 0x69, H_RDX, H_RDX);
    b4(j, (uint32_t)ch->jc_entry_size);
    mov_imm64(j, H_RSI, (uint64_t)(uintptr_t)ch->jc);
    op_rr(j, true, 0x01, H_RSI, H_RDX);
    op_mem(j, true, 0x3b, H_RAX, H_RDX, -1, 0, ch->off_jc_lin);
    out[no++] = jcc_fwd(j, 0x5);
    op_mem(j, false, 0x83, 7, H_RDX, -1, 0, ch->off_jc_key);
    b1(j, ch->key);
    out[no++] = jcc_fwd(j, 0x5);
    op_mem(j, true, 0x8b, H_RDX, H_RDX, -1, 0, ch->off_jc_b);
    op_rr(j, true, 0x85, H_RDX, H_RDX);
    out[no++] = jcc_fwd(j, 0x4);
    /* RSI = byte offset of the entry for RAX in the current TLB (R13) */
    tlb_index(j, H_RSI, H_RAX);
    op_rr(j, true, 0x89, H_RAX, H_RCX);
    op_rr(j, true, 0x81, 4, H_RCX);
    b4(j, (uint32_t)CPU_PAGE_MASK);
    op_mem(j, true, 0x3b, H_RCX, H_R13, H_RSI, 0,
           (int32_t)offsetof(struct cpu_tlb_entry, tag_exec));
    out[no++] = jcc_fwd(j, 0x5);
    op_rr(j, true, 0x89, H_RAX, H_RCX);
    op_rr(j, false, 0x81, 4, H_RCX);
    b4(j, 0xfff);
    op_mem(j, true, 0x0b, H_RCX, H_R13, H_RSI, 0,
           (int32_t)offsetof(struct cpu_tlb_entry, paddr));
    op_mem(j, true, 0x3b, H_RCX, H_RDX, -1, 0, ch->off_phys);
    out[no++] = jcc_fwd(j, 0x5);
    if (have) {
        patch_here(j, have);
        patch_here(j, have2);
    }
    /* an invalidated block has no translation any more */
    op_mem(j, true, 0x8b, H_RCX, H_RDX, -1, 0, ch->off_jit);
    op_rr(j, true, 0x85, H_RCX, H_RCX); /* test rcx, rcx */
    out[no++] = jcc_fwd(j, 0x4);
    /* kicks, interrupt hints and DMA into code zero the budget; the loop sizes it to the
     * instruction limit */
    op_mem(j, false, 0x83, 5, H_RBP, -1, 0, CPU_OFF(jit_budget)); /* sub dword [..], 1 */
    b1(j, 1);
    out[no++] = jcc_fwd(j, 0xe); /* jle: budget used up */
    op_rr(j, true, 0x89, H_RAX, H_R15); /* mov r15, rax */
    op_mem(j, true, 0x8d, H_RCX, H_RCX, -1, 0, (int32_t)jit->prologue_len);
    if (site) {
        /* link: rel32 at site = chained entry - (site + 4) */
        mov_imm64(j, H_RDI, (uint64_t)(uintptr_t)(site + 4));
    }
    uint8_t *nolink = NULL;
    if (relink) {
        op_rr(j, true, 0x85, H_RDI, H_RDI); /* test rdi, rdi */
        nolink = jcc_fwd(j, 0x4);
    }
    if (site || relink) {
        op_rr(j, true, 0x89, H_RCX, H_RSI);
        op_rr(j, true, 0x29, H_RDI, H_RSI);                 /* sub rsi, rdi */
        op_mem(j, false, 0x89, H_RSI, H_RDI, -1, 0, -4); /* mov [rdi - 4], esi */
    } else {
        op_rr(j, false, 0x31, H_RDI, H_RDI); /* no direct jump to relink */
    }
    if (nolink) {
        patch_here(j, nolink);
    }
    b1(j, 0xff); /* jmp rcx */
    b1(j, 0xe1);
    for (unsigned k = 0; k < no; k++) {
        patch_here(j, out[k]);
    }
    ret_count(j, n);
}

/* mov eax, n; epilogue. */
static void ret_count(struct jb *j, unsigned n)
{
    b1(j, 0xb8);
    b4(j, n);
    b1(j, 0xe9); /* jmp epilogue */
    int32_t rel = (int32_t)(j->epilogue - (j->p + 4));
    b4(j, (uint32_t)rel);
}

/* The one epilogue every translation leaves through (EAX = instructions run): the last
 * block's RIP and pointer for the loop, then the prologue undone. */
static void emit_epilogue(uint8_t *at)
{
    struct jb jb = {.p = at, .end = at + JIT_COLD_START};
    struct jb *j = &jb;
    op_mem(j, true, 0x89, H_R15, H_RBP, -1, 0, CPU_OFF(jit_last_rip));
    op_mem(j, true, 0x89, H_R14, H_RBP, -1, 0, CPU_OFF(jit_last));
    b1(j, 0x48);
    b1(j, 0x83);
    b1(j, 0xc4);
    b1(j, 8);
    for (int i = (int)sizeof(saved_regs) - 1; i >= 0; i--) {
        if (saved_regs[i] >= 8) {
            b1(j, 0x41);
        }
        b1(j, 0x58 | (saved_regs[i] & 7));
    }
    b1(j, 0xc3);
}

/* ---- code generation state: flags, instruction count, register cache ---- */

/* Guest registers are cached in host registers inside a block, write-back: a native write
 * marks the register dirty, and dirty registers are stored before anything reads cpu->r[]
 * (handler calls, slow paths, C calls, block exits, eviction). All cache_get calls of an
 * instruction come before its first jump to a slow path, and the slow path stores the
 * registers that were dirty at that jump (a snapshot of the state), so both paths agree.
 * Guest RAX..RBX live in host RAX..RBX; the others share the pool. */
static const uint8_t reg_pool[] = {H_RSI, H_RDI, H_R8, H_R9};

struct jstate {
    bool host_valid;  /* host RFLAGS hold the guest's arithmetic flags */
    bool mem_valid;   /* the lazy-flags state holds them */
    unsigned pending; /* instructions run since icount was last updated */
    int8_t where[16]; /* guest register -> host register holding it, or -1 */
    int8_t holds[16]; /* host register -> guest register, or -1 */
    unsigned age[16]; /* host pool register: last use (LRU) */
    unsigned clock;
    uint16_t pinned;  /* host registers the current instruction uses */
    bool sse_ok;      /* CR0.EM/TS clear and CR4.OSFXSR set, checked since the last handler */
    uint16_t dirty;   /* guest registers whose host copy is newer than cpu->r[] */
    bool flags_dead;  /* a later instruction of the block overwrites the current flags before
                         anything reads them */
};

static void cache_clear(struct jstate *st)
{
    memset(st->where, -1, sizeof(st->where));
    memset(st->holds, -1, sizeof(st->holds));
    st->pinned = 0;
    st->sse_ok = false; /* a handler may have written CR0 or CR4 */
    st->dirty = 0;      /* (callers flushed first) */
}

/* Store guest register g if its host copy is newer. On the main path it is clean after;
 * in cold code the main path's state is not changed. */
static void spill(struct jb *j, struct jstate *st, int g)
{
    if (st->dirty & (1u << g)) {
        st_guest(j, st->where[g], g);
        if (!j->cold) {
            st->dirty &= (uint16_t)~(1u << g);
        }
    }
}

/* Store every register whose host copy is newer (before code that reads cpu->r[]). */
static void flush_dirty(struct jb *j, struct jstate *st)
{
    for (int g = 0; g < 16; g++) {
        spill(j, st, g);
    }
}

/* Host register holding guest register g (loaded from cpu->r[] unless !load). */
static int cache_get(struct jb *j, struct jstate *st, int g, bool load)
{
    int h = st->where[g];
    if (h < 0) {
        if (g < 4) {
            h = g;
        } else {
            int best = -1;
            for (unsigned k = 0; k < sizeof(reg_pool); k++) {
                int c = reg_pool[k];
                if (st->pinned & (1u << c)) {
                    continue;
                }
                if (st->holds[c] < 0) {
                    best = c;
                    break;
                }
                if (best < 0 || st->age[c] < st->age[best]) {
                    best = c;
                }
            }
            h = best; /* an instruction pins at most 4 registers of the pool */
            if (st->holds[h] >= 0) {
                spill(j, st, st->holds[h]);
                st->where[st->holds[h]] = -1;
            }
        }
        st->where[g] = (int8_t)h;
        st->holds[h] = (int8_t)g;
        if (load) {
            ld_guest(j, h, g);
        }
    }
    st->age[h] = ++st->clock;
    st->pinned |= (uint16_t)(1u << h);
    return h;
}

/* Reload every cached register from cpu->r[] (after a handler ran on a slow path). */
static void cache_reload(struct jb *j, const struct jstate *st)
{
    for (int g = 0; g < 16; g++) {
        if (st->where[g] >= 0) {
            ld_guest(j, st->where[g], g);
        }
    }
}

/* ---- flags ---- */

/* Guest flags travel between host RFLAGS and the lazy state as CPU_CC_HOST: LAHF's byte
 * (SF ZF AF PF CF) in bits 15:8 of cc_src and OF in bit 0, moved with LAHF/SETO and
 * ADD AL,7Fh/SAHF, which cost a fraction of PUSHFQ/POPFQ. Both need host RAX, the home of
 * guest RAX: it is reloaded after them when cached. */

/* The guest's arithmetic flags packed like CPU_CC_HOST. */
static uint64_t jit_packed_flags(struct cpu *cpu)
{
    uint64_t f = cpu_get_rflags(cpu);
    return (f & 0xd5) << 8 | ((f & CPU_FL_OF) ? 1 : 0);
}

/* AX = packed flags -> host RFLAGS. */
static void packed_to_host(struct jb *j)
{
    b1(j, 0x04); /* add al, 7fh: OF = (al == 1) */
    b1(j, 0x7f);
    b1(j, 0x9e); /* sahf */
}

/* Guest flags from the lazy state into host RFLAGS (keeps the register cache). */
static void flags_to_host(struct jb *j, struct jstate *st)
{
    if (st->where[0] == H_RAX) {
        spill(j, st, CPU_RAX); /* AX is clobbered below, then reloaded */
    }
    op_mem(j, false, 0x83, 7, H_RBP, -1, 0, CPU_OFF(cc_op)); /* cmp dword [cc_op], HOST */
    b1(j, CPU_CC_HOST);
    uint8_t *slow = jcc_fwd(j, 0x5);
    op_mem(j, false, 0x0fb7, H_RAX, H_RBP, -1, 0, CPU_OFF(cc_src)); /* movzx eax, word */
    packed_to_host(j);
    if (st->where[0] == H_RAX) {
        ld_guest(j, H_RAX, 0);
    }
    cold_enter(j);
    patch_here(j, slow);
    flush_dirty(j, st); /* the call clobbers caller-saved registers: reloaded after */
    op_rr(j, true, 0x89, H_RBP, H_RDI);
    call_abs(j, (const void *)jit_packed_flags);
    packed_to_host(j);
    cache_reload(j, st); /* the call clobbered caller-saved registers */
    uint8_t *back = jmp_fwd(j);
    cold_leave(j);
    patch_here(j, back);
}

/* Host RFLAGS into the lazy state (leaves host RFLAGS as they are). */
static void flags_to_mem(struct jb *j, struct jstate *st)
{
    if (st->where[0] == H_RAX) {
        spill(j, st, CPU_RAX); /* AX is clobbered below, then reloaded */
    }
    b1(j, 0x9f); /* lahf */
    b1(j, 0x0f); /* seto al */
    b1(j, 0x90);
    b1(j, 0xc0);
    b1(j, 0x66); /* mov word [cc_src], ax */
    op_mem(j, false, 0x89, H_RAX, H_RBP, -1, 0, CPU_OFF(cc_src));
    op_mem(j, false, 0xc7, 0, H_RBP, -1, 0, CPU_OFF(cc_op)); /* mov dword [cc_op], HOST */
    b4(j, CPU_CC_HOST);
    if (st->where[0] == H_RAX) {
        ld_guest(j, H_RAX, 0);
    }
}

/* ---- which instructions run natively ---- */

enum { JF_IN = 1, JF_OUT = 2, JF_PART = 3 }; /* reads flags / writes all / reads and writes */
enum { JA_NONE = 0, JA_R = 1, JA_W = 2, JA_RW = 3 };

struct jit_info {
    bool modrm;       /* has a ModRM byte */
    bool reg_is_reg;  /* ModRM.reg names a register (not an opcode extension) */
    bool lea;         /* LEA: the address is the result */
    bool nop;         /* nothing to do */
    int opreg;        /* guest register coded in the opcode's low bits, or -1 */
    uint8_t implicit; /* bit g: guest register g (RAX, RCX, RDX) is an implicit operand */
    uint8_t fl;       /* JF_* */
    uint8_t acc;      /* JA_* for the memory operand */
    uint8_t msize;    /* memory operand size in bytes */
};

static bool classify(const struct x86_insn *in, struct jit_info *ji)
{
    unsigned op = in->op & 0xff, map = in->op & 0x300;
    unsigned digit = in->reg & 7;
    bool mem = in->flags & X86_F_MEM;

    memset(ji, 0, sizeof(*ji));
    ji->opreg = -1;
    ji->msize = in->opsize;
    if (in->flags & (X86_F_UD | X86_F_BRANCH | X86_F_END) || in->pfx & X86_PFX_VEX) {
        return false;
    }
    if (mem && !(in->flags & X86_F_MODRM)) {
        return false; /* moffs forms */
    }
    if (map == X86_MAP_1B) {
        if (op < 0x40 && (op & 7) <= 5) {
            unsigned row = op >> 3, col = op & 7;
            if (row == 2 || row == 3) {
                ji->fl = JF_PART;
            } else {
                ji->fl = JF_OUT;
            }
            if (col >= 4) {
                ji->implicit = 1;
                return true;
            }
            ji->modrm = ji->reg_is_reg = true;
            ji->acc = (col <= 1 && row != 7) ? JA_RW : JA_R;
            return true;
        }
        switch (op) {
        case 0x63: /* MOVSXD */
            ji->modrm = ji->reg_is_reg = true;
            ji->acc = JA_R;
            ji->msize = in->opsize == 2 ? 2 : 4;
            return true;
        case 0x69:
        case 0x6b: /* IMUL r, r/m, imm */
            ji->modrm = ji->reg_is_reg = true;
            ji->acc = JA_R;
            ji->fl = JF_OUT;
            return true;
        case 0x80:
        case 0x81:
        case 0x83:
            ji->modrm = true;
            ji->fl = (digit == 2 || digit == 3) ? JF_PART : JF_OUT;
            ji->acc = digit == 7 ? JA_R : JA_RW;
            return true;
        case 0x84:
        case 0x85:
            ji->modrm = ji->reg_is_reg = true;
            ji->fl = JF_OUT;
            ji->acc = JA_R;
            return true;
        case 0x86:
        case 0x87:
            ji->modrm = ji->reg_is_reg = true;
            ji->acc = JA_RW;
            return true;
        case 0x88:
        case 0x89:
            ji->modrm = ji->reg_is_reg = true;
            ji->acc = JA_W;
            return true;
        case 0x8a:
        case 0x8b:
            ji->modrm = ji->reg_is_reg = true;
            ji->acc = JA_R;
            return true;
        case 0x8d:
            if (!mem || (in->flags & X86_F_RIPREL && in->addrsize != 8)) {
                return false;
            }
            ji->modrm = ji->reg_is_reg = ji->lea = true;
            return true;
        case 0x90:
            if (!(in->rex & 1)) {
                ji->nop = !(in->pfx & X86_PFX_REP); /* F3 90 is PAUSE (ends the block) */
                return ji->nop;
            }
            /* XCHG r8, rAX */
            __attribute__((fallthrough));
        case 0x91 ... 0x97:
            ji->implicit = 1;
            ji->opreg = (int)((op & 7) | (in->rex & 1u) << 3);
            return true;
        case 0x98:
            ji->implicit = 1;
            return true;
        case 0x99:
            ji->implicit = 5;
            return true;
        case 0x9e: /* SAHF */
            ji->implicit = 1;
            ji->fl = JF_PART;
            return true;
        case 0x9f: /* LAHF */
            ji->implicit = 1;
            ji->fl = JF_IN;
            return true;
        case 0xa8:
        case 0xa9:
            ji->implicit = 1;
            ji->fl = JF_OUT;
            return true;
        case 0xb0 ... 0xbf:
            ji->opreg = (int)((op & 7) | (in->rex & 1u) << 3);
            return true;
        case 0xc0:
        case 0xc1:
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            if (digit == 6) {
                return false;
            }
            ji->modrm = true;
            ji->acc = JA_RW;
            unsigned cmask = in->opsize == 8 ? 63 : 31;
            bool nonzero = op >= 0xd0 ? op <= 0xd1 : (in->imm & cmask) != 0;
            ji->fl = (digit >= 4 && nonzero) ? JF_OUT : JF_PART;
            if (op >= 0xd2) {
                ji->implicit = 2;
            }
            return true;
        }
        case 0xc6:
        case 0xc7:
            if (digit != 0) {
                return false;
            }
            ji->modrm = true;
            ji->acc = JA_W;
            return true;
        case 0xf5: /* CMC */
        case 0xf8: /* CLC */
        case 0xf9: /* STC */
            ji->fl = JF_PART;
            return true;
        case 0xf6:
        case 0xf7:
            ji->modrm = true;
            switch (digit) {
            case 0:
            case 1:
                ji->fl = JF_OUT;
                ji->acc = JA_R;
                return true;
            case 2:
                ji->acc = JA_RW;
                return true;
            case 3:
                ji->fl = JF_OUT;
                ji->acc = JA_RW;
                return true;
            case 4:
            case 5:
                ji->fl = JF_OUT;
                ji->acc = JA_R;
                ji->implicit = in->opsize == 1 ? 1 : 5;
                return true;
            default:
                return false; /* DIV/IDIV: #DE */
            }
        case 0xfe:
        case 0xff:
            if (digit > 1) {
                return false;
            }
            ji->modrm = true;
            ji->fl = JF_PART;
            ji->acc = JA_RW;
            return true;
        default:
            return false;
        }
    }
    if (map != X86_MAP_0F) {
        return false;
    }
    switch (op) {
    case 0x18 ... 0x1f: /* hint NOPs: no access */
        if (op != 0x1f && op != 0x18) {
            return false;
        }
        ji->nop = true;
        return true;
    case 0x40 ... 0x4f: /* CMOVcc */
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_IN;
        ji->acc = JA_R;
        return true;
    case 0x90 ... 0x9f: /* SETcc */
        ji->modrm = true;
        ji->fl = JF_IN;
        ji->acc = JA_W;
        ji->msize = 1;
        return true;
    case 0xa3:
    case 0xab:
    case 0xb3:
    case 0xbb: /* BT/BTS/BTR/BTC r/m, r: memory forms address bit strings */
        if (mem) {
            return false;
        }
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_PART;
        return true;
    case 0xba:
        if (digit < 4) {
            return false;
        }
        ji->modrm = true;
        ji->fl = JF_PART;
        ji->acc = digit == 4 ? JA_R : JA_RW;
        return true;
    case 0xa4:
    case 0xa5:
    case 0xac:
    case 0xad:
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_PART;
        ji->acc = JA_RW;
        if (op & 1) {
            ji->implicit = 2;
        }
        return true;
    case 0xaf:
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_OUT;
        ji->acc = JA_R;
        return true;
    case 0xb0:
    case 0xb1:
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_OUT;
        ji->acc = JA_RW;
        ji->implicit = 1;
        return true;
    case 0xb6:
    case 0xbe:
        ji->modrm = ji->reg_is_reg = true;
        ji->acc = JA_R;
        ji->msize = 1;
        return true;
    case 0xb7:
    case 0xbf:
        ji->modrm = ji->reg_is_reg = true;
        ji->acc = JA_R;
        ji->msize = 2;
        return true;
    case 0xb8: /* POPCNT (F3) */
        if (!(in->pfx & X86_PFX_REP) || (in->pfx & X86_PFX_REPNE)) {
            return false;
        }
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_OUT;
        ji->acc = JA_R;
        return true;
    case 0xbc:
    case 0xbd: /* BSF/BSR; with F3 the host would run TZCNT/LZCNT */
        if (in->pfx & (X86_PFX_REP | X86_PFX_REPNE)) {
            return false;
        }
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_OUT;
        ji->acc = JA_R;
        return true;
    case 0xc0:
    case 0xc1:
        ji->modrm = ji->reg_is_reg = true;
        ji->fl = JF_OUT;
        ji->acc = JA_RW;
        return true;
    case 0xc8 ... 0xcf:
        if (in->opsize == 2) {
            return false;
        }
        ji->opreg = (int)((op & 7) | (in->rex & 1u) << 3);
        return true;
    default:
        return false;
    }
}

/* ---- operands of one native instruction ---- */

/* Whether the ModRM.rm operand of a register form is a byte register. */
static bool rm_is_byte(const struct x86_insn *in)
{
    return in->opsize == 1 || in->op == (X86_MAP_0F | 0xb6) || in->op == (X86_MAP_0F | 0xbe);
}

/* The guest register behind a register code; byte registers 4-7 without REX are AH..BH. */
static int guest_reg(const struct x86_insn *in, int code, bool isbyte)
{
    if (isbyte && !(in->pfx & X86_PFX_REX) && code >= 4 && code < 8) {
        return code - 4;
    }
    return code;
}

/* Register operands of a native instruction, as guest register codes (-1: none) and the
 * guest registers behind them. */
struct jit_operands {
    int reg_code, rm_code, op_code; /* ModRM.reg, ModRM.rm (register form), opcode reg */
    bool reg_byte, rm_byte, op_byte;
    int guest[6]; /* guest registers used, including implicit ones */
    unsigned n;
    bool high_byte;     /* AH..BH appear: no REX may be emitted */
    uint16_t read_mask; /* guest registers whose old value the instruction reads */
};

/* Which register operand the instruction only writes, whole (32/64-bit destinations of
 * moves): 'r' ModRM.reg, 'm' ModRM.rm, 'o' the opcode's register, 0 none. */
static char write_only_operand(const struct x86_insn *in)
{
    unsigned op = in->op;
    if (in->opsize < 4) {
        return 0; /* 8/16-bit writes merge into the old value */
    }
    switch (op) {
    case 0x8b:
    case 0x63:
    case X86_MAP_0F | 0xb6:
    case X86_MAP_0F | 0xb7:
    case X86_MAP_0F | 0xbe:
    case X86_MAP_0F | 0xbf:
        return 'r';
    case 0x89:
    case 0xc7:
        return (in->flags & X86_F_MEM) ? 0 : 'm';
    case 0xb8 ... 0xbf:
        return 'o';
    default:
        return 0;
    }
}

static void operands_of(const struct x86_insn *in, const struct jit_info *ji,
                        struct jit_operands *o)
{
    memset(o, 0, sizeof(*o));
    o->reg_code = o->rm_code = o->op_code = -1;
    for (int g = 0; g < 3; g++) {
        if (ji->implicit & (1u << g)) {
            o->guest[o->n++] = g;
        }
    }
    if (ji->modrm && ji->reg_is_reg) {
        o->reg_code = in->reg;
        o->reg_byte = in->opsize == 1;
    }
    if (ji->modrm && !(in->flags & X86_F_MEM)) {
        o->rm_code = in->rm;
        o->rm_byte = rm_is_byte(in);
    }
    if (ji->opreg >= 0) {
        o->op_code = ji->opreg;
        o->op_byte = in->opsize == 1;
    }
    for (unsigned k = 0; k < o->n; k++) {
        o->read_mask |= (uint16_t)(1u << o->guest[k]); /* implicit operands */
    }
    const int codes[3] = {o->reg_code, o->rm_code, o->op_code};
    const bool bytes[3] = {o->reg_byte, o->rm_byte, o->op_byte};
    const char which[3] = {'r', 'm', 'o'};
    char wo = write_only_operand(in);
    for (int k = 0; k < 3; k++) {
        if (codes[k] < 0) {
            continue;
        }
        int g = guest_reg(in, codes[k], bytes[k]);
        if (g != codes[k]) {
            o->high_byte = true;
        }
        o->guest[o->n++] = g;
        if (which[k] != wo) {
            o->read_mask |= (uint16_t)(1u << g);
        }
    }
}

/* Whether the operands can be renamed: AH..BH (no REX) next to a register that lives in
 * R8/R9 would need a REX prefix, which turns AH..BH into SPL..DIL. */
static bool operands_ok(const struct x86_insn *in, const struct jit_operands *o)
{
    if (!o->high_byte) {
        return true;
    }
    for (unsigned k = 0; k < o->n; k++) {
        if (o->guest[k] >= 4) {
            return false;
        }
    }
    return !(in->flags & X86_F_MEM);
}

/* The host register code standing for guest register code `code` (AH..BH keep theirs). */
static int host_code(const struct x86_insn *in, const struct jstate *st, int code, bool isbyte)
{
    int g = guest_reg(in, code, isbyte);
    return g != code ? code : st->where[g];
}

static void operands_load(struct jb *j, struct jstate *st, const struct jit_operands *o)
{
    for (unsigned k = 0; k < o->n; k++) {
        cache_get(j, st, o->guest[k], (o->read_mask >> o->guest[k]) & 1);
    }
}

/* Whether a native instruction leaves its register operands as they are (compares, tests,
 * bit tests). */
static bool writes_no_register(const struct x86_insn *in)
{
    unsigned op = in->op, digit = in->reg & 7;
    switch (op) {
    case 0x38 ... 0x3d: /* CMP */
    case 0x84:          /* TEST */
    case 0x85:
    case 0xa8:
    case 0xa9:
    case X86_MAP_0F | 0xa3: /* BT */
        return true;
    case 0x80 ... 0x83:
        return digit == 7;
    case 0xf6:
    case 0xf7:
        return digit == 0 || digit == 1;
    case X86_MAP_0F | 0xba:
        return digit == 4;
    default:
        return false;
    }
}

/* The registers the instruction may have written become dirty. */
static void operands_store(struct jstate *st, const struct x86_insn *in,
                           const struct jit_operands *o)
{
    if (writes_no_register(in)) {
        return;
    }
    for (unsigned k = 0; k < o->n; k++) {
        st->dirty |= (uint16_t)(1u << o->guest[k]);
    }
}

static bool address_ok(const struct x86_insn *in);

/* Whether an instruction (not a block-ending branch, PUSH/POP or SSE) runs natively. */
static bool insn_native(const struct x86_insn *in, bool m32, struct jit_info *ji,
                        struct jit_operands *o)
{
    if (!classify(in, ji) || ((in->flags & X86_F_MEM) && !address_ok(in))) {
        return false;
    }
    if (m32 && (in->op == 0x63 || ((in->flags & X86_F_MEM) && !ji->lea &&
                                   (in->seg == CPU_SEG_FS || in->seg == CPU_SEG_GS ||
                                    in->seg == CPU_SEG_CS)))) {
        return false; /* 63 is ARPL; FS/GS keep their bases and limits, CS may not be readable */
    }
    operands_of(in, ji, o);
    if (!operands_ok(in, o)) {
        return false;
    }
    /* [R12] needs REX.B, which would turn AH..BH into SPL..DIL */
    return !((in->flags & X86_F_MEM) && !ji->lea && in->opsize == 1 &&
             !(in->pfx & X86_PFX_REX) && ji->reg_is_reg && (in->reg & 7) >= 4);
}

/* ---- translation of one native instruction ---- */

/* Emit the instruction itself with its register operands renamed and its memory operand
 * (if any) at [ptr]. */
static void emit_native(struct jb *j, const struct x86_insn *in, const struct jit_info *ji,
                        const struct jit_operands *o, const struct jstate *st, int ptr)
{
    unsigned op = in->op & 0xff;
    bool mem = in->flags & X86_F_MEM;
    int r = -1, m = -1;

    if (in->pfx & X86_PFX_LOCK) {
        b1(j, 0xf0);
    }
    if (in->pfx & X86_PFX_OPSZ) {
        b1(j, 0x66);
    }
    if ((in->op & 0x300) == X86_MAP_0F && op == 0xb8) {
        b1(j, 0xf3);
    }
    if (ji->modrm) {
        r = o->reg_code >= 0 ? host_code(in, st, o->reg_code, o->reg_byte) : (int)(in->reg & 7);
        m = mem ? ptr : host_code(in, st, o->rm_code, o->rm_byte);
    } else if (o->op_code >= 0) {
        m = host_code(in, st, o->op_code, o->op_byte);
    }
    unsigned rex = (in->rex & 8) | (r >= 8 ? 4u : 0) | (m >= 8 ? 1u : 0);
    if (rex || (in->pfx & X86_PFX_REX)) {
        b1(j, 0x40 | rex);
    }
    if ((in->op & 0x300) == X86_MAP_0F) {
        b1(j, 0x0f);
    }
    if (o->op_code >= 0) {
        b1(j, (op & ~7u) | (unsigned)(m & 7));
    } else {
        b1(j, op);
    }
    if (ji->modrm) {
        if (mem) {
            b1(j, (unsigned)(r & 7) << 3 | (unsigned)(m & 7));
            if ((m & 7) == 4) {
                b1(j, 0x24);
            }
        } else {
            b1(j, 0xc0 | (unsigned)(r & 7) << 3 | (unsigned)(m & 7));
        }
    }
    for (unsigned k = 0; k < in->immsize; k++) {
        b1(j, (uint8_t)(in->imm >> (8 * k)));
    }
}

/* Linear address of the memory operand (without segment base) into R11; flags untouched. */
static void emit_address(struct jb *j, struct jstate *st, const struct x86_insn *in,
                         int64_t next_off)
{
    if (in->ea_base == X86_EA_RIP) {
        op_mem(j, true, 0x8d, H_R11, H_R15, -1, 0, (int32_t)(next_off + in->disp));
    } else {
        int base = -1, index = -1;
        if (in->ea_base != X86_EA_NONE) {
            base = cache_get(j, st, in->ea_base, true);
        }
        if (in->ea_index != X86_EA_NONE) {
            index = cache_get(j, st, in->ea_index, true);
        }
        op_mem(j, true, 0x8d, H_R11, base, index, in->ea_scale, in->disp);
    }
    if (in->addrsize == 4) {
        op_rr(j, false, 0x89, H_R11, H_R11); /* mov r11d, r11d */
    }
    st->pinned = 0; /* the address is in R11: its registers may be evicted now */
}

/* Whether a translation of the memory operand is possible. */
static bool address_ok(const struct x86_insn *in)
{
    if (in->addrsize == 2) {
        return false;
    }
    if (in->ea_base == X86_EA_RIP) {
        return in->addrsize == 8 && in->ea_index == X86_EA_NONE;
    }
    return true;
}

/* Call the interpreter handler for insn at block offset off. */
static void emit_handler_call(struct jb *j, const struct x86_insn *in, int64_t off)
{
    st_rip(j, CPU_OFF(insn_rip), off);
    st_rip(j, CPU_OFF(rip), off + in->len);
    op_rr(j, true, 0x89, H_RBP, H_RDI);
    mov_imm64(j, H_RSI, (uint64_t)(uintptr_t)in);
    call_abs(j, (const void *)in->exec);
}

/* After a handler: leave the block (returning done instructions) if it asked to stop. */
static void emit_stop_check(struct jb *j, unsigned done)
{
    op_mem(j, false, 0x80, 7, H_RBP, -1, 0, CPU_OFF(block_stop));
    b1(j, 0);
    uint8_t *stop = jcc_fwd(j, 0x5);
    cold_enter(j);
    patch_here(j, stop);
    add_icount(j, 1);
    ret_count(j, done);
    cold_leave(j);
}

/* Before a handler call: flags into the lazy state, the instruction count exact. */
static void sync_point(struct jb *j, struct jstate *st)
{
    flush_dirty(j, st);
    if (!st->mem_valid) {
        flags_to_mem(j, st);
        st->mem_valid = true;
    }
    add_icount(j, st->pending); /* clobbers host flags */
    st->pending = 0;
    st->host_valid = false;
}

/* Before an inline memory access: flags into the lazy state (the probe clobbers host
 * RFLAGS, and the slow path's handler may fault or read them). The instruction count is
 * brought up to date only on the slow path (emit_slow_handler). Flags that are dead (the
 * block overwrites them before any instruction reads them) are not stored: as with the
 * decoder's X86_F_NOFLAGS hints, only a fault's exception frame could see the older value. */
static void mem_sync(struct jb *j, struct jstate *st)
{
    if (!st->mem_valid && !st->flags_dead) {
        flags_to_mem(j, st);
    }
    st->mem_valid = true; /* or dead: nothing reads them before they are written again */
    st->host_valid = false;
}

/* The slow path of an inline access: the handler with an exact count, then the count and
 * the register cache as the fast path leaves them. */
static void emit_slow_handler(struct jb *j, const struct jstate *st, struct jstate *snap,
                              const struct x86_insn *in, int64_t off, unsigned idx)
{
    flush_dirty(j, snap); /* the registers as they were at the jump here */
    add_icount(j, st->pending);
    emit_handler_call(j, in, off);
    emit_stop_check(j, idx + 1);
    if (st->pending) {
        op_mem(j, true, 0x83, 5, H_RBP, -1, 0, CPU_OFF(icount));
        b1(j, st->pending);
    }
    cache_reload(j, st);
}

/* The slow path of the jumps at slow[0..n) (rel32 fields), in the cold part: the handler,
 * then the flags into host RFLAGS when the instruction wrote them (fl), so that both paths
 * meet in the same state; then back to the hot code here. snap: the state at the jumps. */
static void emit_cold_slow(struct jb *j, struct jstate *st, struct jstate *snap,
                           const struct x86_insn *in, int64_t off, unsigned idx,
                           uint8_t *const *slow, unsigned n, bool fl)
{
    cold_enter(j);
    for (unsigned k = 0; k < n; k++) {
        patch_here(j, slow[k]);
    }
    emit_slow_handler(j, st, snap, in, off, idx);
    if (fl) {
        flags_to_host(j, st);
    }
    uint8_t *back = jmp_fwd(j);
    cold_leave(j);
    patch_here(j, back);
}

/* R11 = a linear address: R12 = its host pointer after a soft-TLB hit for an access of
 * size bytes (R13 = this privilege's TLB); returns the rel32 of the jump taken on a miss.
 * Clobbers R10 and flags. */
static uint8_t *emit_probe(struct jb *j, bool write, unsigned size)
{
    tlb_index(j, H_R10, H_R11);
    /* the last byte's page must be the entry's tag (so no page crossing) */
    op_mem(j, true, 0x8d, H_R12, H_R11, -1, 0, (int32_t)size - 1);
    op_rr(j, true, 0x81, 4, H_R12);
    b4(j, (uint32_t)CPU_PAGE_MASK);
    int32_t tag = write ? (int32_t)offsetof(struct cpu_tlb_entry, tag_write)
                        : (int32_t)offsetof(struct cpu_tlb_entry, tag_read);
    op_mem(j, true, 0x3b, H_R12, H_R13, H_R10, 0, tag);
    uint8_t *slow = jcc_fwd(j, 0x5);
    op_mem(j, true, 0x8b, H_R12, H_R13, H_R10, 0,
           (int32_t)offsetof(struct cpu_tlb_entry, addend));
    op_rr(j, true, 0x01, H_R11, H_R12); /* add r12, r11 */
    return slow;
}

/* A native instruction with a memory operand: address, TLB probe, native access on a hit,
 * the handler on a miss. */
static void emit_mem_insn(struct jb *j, const struct x86_insn *in, const struct jit_info *ji,
                          const struct jit_operands *o, int64_t off, unsigned idx,
                          struct jstate *st)
{
    mem_sync(j, st);
    emit_address(j, st, in, off + in->len);
    if (in->seg == CPU_SEG_FS || in->seg == CPU_SEG_GS) {
        op_mem(j, true, 0x03, H_R11, H_RBP, -1, 0, CPU_OFF(seg[in->seg].base));
    }
    operands_load(j, st, o);
    struct jstate snap = *st;
    uint8_t *slow = emit_probe(j, ji->acc & JA_W, ji->msize);
    if (ji->fl & JF_IN) {
        flags_to_host(j, st);
    }
    emit_native(j, in, ji, o, st, H_R12);
    operands_store(st, in, o);
    emit_cold_slow(j, st, &snap, in, off, idx, &slow, 1, ji->fl != 0);
    st->pending++;
    if (ji->fl) {
        st->host_valid = true;
        st->mem_valid = !(ji->fl & JF_OUT);
    }
}

static void emit_lea(struct jb *j, struct jstate *st, const struct x86_insn *in, int64_t off)
{
    int g = in->reg;
    int64_t rip_disp = off + in->len + in->disp;
    if (in->opsize != 2 && in->addrsize == 8 &&
        (in->ea_base != X86_EA_RIP || rip_disp == (int32_t)rip_disp)) {
        /* straight into the destination: LEA r, [base + index*scale + disp] */
        int base = -1, index = -1;
        int32_t disp = in->disp;
        if (in->ea_base == X86_EA_RIP) {
            base = H_R15;
            disp = (int32_t)rip_disp;
        } else {
            if (in->ea_base != X86_EA_NONE) {
                base = cache_get(j, st, in->ea_base, true);
            }
            if (in->ea_index != X86_EA_NONE) {
                index = cache_get(j, st, in->ea_index, true);
            }
        }
        int h = cache_get(j, st, g, false);
        op_mem(j, in->opsize == 8, 0x8d, h, base, index, in->ea_scale, disp);
        st->dirty |= (uint16_t)(1u << g);
        return;
    }
    emit_address(j, st, in, off + in->len);
    int h = cache_get(j, st, g, in->opsize == 2);
    if (in->opsize == 8) {
        op_rr(j, true, 0x89, H_R11, h);
    } else if (in->opsize == 4) {
        op_rr(j, false, 0x89, H_R11, h);
    } else {
        b1(j, 0x66);
        op_rr(j, false, 0x89, H_R11, h);
    }
    st->dirty |= (uint16_t)(1u << g);
}

/* PUSH r64 / POP r64 in the middle of a block: the stack slot through the soft TLB. */
static bool emit_push_pop(struct jb *j, const struct x86_insn *in, int64_t off, unsigned idx,
                          struct jstate *st)
{
    unsigned op = in->op;
    if (op < 0x50 || op > 0x5f || in->opsize != 8) {
        return false;
    }
    int g = (int)((op & 7) | (in->rex & 1u) << 3);
    bool push = op < 0x58;
    mem_sync(j, st);
    int hs = cache_get(j, st, CPU_RSP, true);
    int hv = cache_get(j, st, g, push); /* POP: written only */
    op_mem(j, true, 0x8d, H_R11, hs, -1, 0, push ? -8 : 0);
    struct jstate snap = *st;
    uint8_t *slow = emit_probe(j, push, 8);
    if (push) {
        op_mem(j, true, 0x89, hv, H_R12, -1, 0, 0); /* PUSH RSP: the old value */
        op_rr(j, true, 0x89, H_R11, hs);
    } else {
        op_mem(j, true, 0x8b, H_R10, H_R12, -1, 0, 0);
        op_mem(j, true, 0x8d, hs, hs, -1, 0, 8);
        op_rr(j, true, 0x89, H_R10, hv); /* POP RSP: the popped value wins */
        st->dirty |= (uint16_t)(1u << g);
    }
    st->dirty |= (uint16_t)(1u << CPU_RSP);
    emit_cold_slow(j, st, &snap, in, off, idx, &slow, 1, false);
    st->pending++;
    return true;
}

/* ---- SSE: integer SIMD, logic, shuffles and moves on host XMM0/XMM1 ----
 * These instructions compute the same bits on the host as on the guest and none of them
 * reads or writes MXCSR, so they run natively: the XMM register in ModRM.reg is loaded into
 * host XMM0, the one in ModRM.rm into XMM1, and both are stored back after. Floating-point
 * arithmetic (rounding, exception flags) stays with the handlers. */

enum { SG_NONE, SG_REG_W, SG_RM_R, SG_RM_W }; /* a GPR operand: ModRM.reg written, rm read/written */
enum { SI_ECX = 1, SI_XMM0 = 2, SI_EAX_EDX = 4 }; /* PCMPxSTRx implicit operands */

struct sse_info {
    uint8_t msize;    /* memory operand size in bytes */
    bool align;       /* a memory operand must be 16-byte aligned (#GP otherwise) */
    bool store;       /* the memory operand is written */
    bool reg_only;    /* the memory form is #UD (the handler raises it) */
    bool mem_only;    /* the register form is #UD */
    bool flags;       /* writes every arithmetic flag */
    uint8_t gpr;      /* SG_* */
    uint8_t implicit; /* SI_* */
    uint32_t feat;    /* CPUID.1:ECX bit the guest needs, 0 for SSE/SSE2 */
};

/* The host's SSE levels beyond SSE2 (CPUID.1:ECX bits, as the guest's). */
static uint32_t host_sse_feat(void)
{
    static uint32_t feat;
    static bool known;
    if (!known) {
        __builtin_cpu_init();
        feat = (__builtin_cpu_supports("ssse3") ? CPU_F1_ECX_SSSE3 : 0) |
               (__builtin_cpu_supports("sse4.1") ? CPU_F1_ECX_SSE41 : 0) |
               (__builtin_cpu_supports("sse4.2") ? CPU_F1_ECX_SSE42 : 0);
        known = true;
    }
    return feat;
}

static bool sse_classify_0f(const struct x86_insn *in, struct sse_info *si)
{
    unsigned op = in->op & 0xff, pp = in->simd, digit = in->reg & 7;
    bool w = in->rex & 8;
    switch (op) {
    case 0x10: /* MOVUPS/MOVUPD/MOVSS/MOVSD load */
    case 0x11: /* ... store */
        si->msize = pp == X86_SIMD_F3 ? 4 : pp == X86_SIMD_F2 ? 8 : 16;
        si->store = op == 0x11;
        return true;
    case 0x28: /* MOVAPS/MOVAPD */
    case 0x29:
    case 0x14: /* UNPCKLPS/PD */
    case 0x15:
    case 0x54 ... 0x57: /* ANDPS ANDNPS ORPS XORPS (/PD) */
    case 0xc6:          /* SHUFPS/PD */
        si->align = true;
        si->store = op == 0x29;
        return pp == X86_SIMD_NONE || pp == X86_SIMD_66;
    case 0x2b: /* MOVNTPS/PD */
        si->align = si->store = si->mem_only = true;
        return pp == X86_SIMD_NONE || pp == X86_SIMD_66;
    case 0x50: /* MOVMSKPS/PD */
        si->gpr = SG_REG_W;
        si->reg_only = true;
        return pp == X86_SIMD_NONE || pp == X86_SIMD_66;
    }
    if (pp == X86_SIMD_F3) {
        switch (op) {
        case 0x6f: /* MOVDQU */
        case 0x7f:
            si->store = op == 0x7f;
            return true;
        case 0x7e: /* MOVQ xmm, xmm/m64 */
            si->msize = 8;
            return true;
        case 0x70: /* PSHUFHW */
            si->align = true;
            return true;
        default:
            return false;
        }
    }
    if (pp == X86_SIMD_F2) {
        si->align = true;
        return op == 0x70; /* PSHUFLW */
    }
    if (pp != X86_SIMD_66) {
        return false; /* MMX */
    }
    switch (op) {
    case 0x60 ... 0x6d: /* PUNPCK*, PACK*, PCMPGT* */
    case 0x6f:          /* MOVDQA */
    case 0x7f:
    case 0x70: /* PSHUFD */
    case 0x74 ... 0x76: /* PCMPEQ* */
    case 0xd1 ... 0xd5:
    case 0xd8 ... 0xdf:
    case 0xe0 ... 0xe5:
    case 0xe8 ... 0xef:
    case 0xf1 ... 0xf6:
    case 0xf8 ... 0xfe:
        si->align = true;
        si->store = op == 0x7f;
        return true;
    case 0xe7: /* MOVNTDQ */
        si->align = si->store = si->mem_only = true;
        return true;
    case 0x6e: /* MOVD/MOVQ xmm, r/m */
        si->gpr = SG_RM_R;
        si->msize = w ? 8 : 4;
        return true;
    case 0x7e: /* MOVD/MOVQ r/m, xmm */
        si->gpr = SG_RM_W;
        si->msize = w ? 8 : 4;
        si->store = true;
        return true;
    case 0xd6: /* MOVQ xmm/m64, xmm */
        si->msize = 8;
        si->store = true;
        return true;
    case 0xd7: /* PMOVMSKB */
    case 0xc5: /* PEXTRW r32, xmm, imm8 */
        si->gpr = SG_REG_W;
        si->reg_only = true;
        return true;
    case 0xc4: /* PINSRW */
        si->gpr = SG_RM_R;
        si->msize = 2;
        return true;
    case 0x71: /* shifts by an immediate: /2 /4 /6 (words, dwords); /2 /3 /6 /7 (qwords) */
    case 0x72:
        si->reg_only = true;
        return digit == 2 || digit == 4 || digit == 6;
    case 0x73:
        si->reg_only = true;
        return digit == 2 || digit == 3 || digit == 6 || digit == 7;
    default:
        return false;
    }
}

static bool sse_classify(const struct x86_insn *in, uint32_t guest_feat, struct sse_info *si)
{
    unsigned op = in->op & 0xff, map = in->op & 0x300;
    bool w = in->rex & 8;
    bool ok = false;

    memset(si, 0, sizeof(*si));
    si->msize = 16;
    if (!(in->flags & X86_F_MODRM) || in->flags & (X86_F_UD | X86_F_BRANCH | X86_F_END) ||
        in->pfx & (X86_PFX_VEX | X86_PFX_LOCK)) {
        return false;
    }
    if (map == X86_MAP_0F) {
        ok = sse_classify_0f(in, si);
    } else if (map == X86_MAP_0F38 && in->simd == X86_SIMD_66) {
        ok = true;
        si->align = true;
        switch (op) {
        case 0x00 ... 0x0b: /* PSHUFB, PHADD*, PHSUB*, PMADDUBSW, PSIGN*, PMULHRSW */
        case 0x1c ... 0x1e: /* PABS* */
            si->feat = CPU_F1_ECX_SSSE3;
            break;
        case 0x17: /* PTEST */
            si->flags = true;
            si->feat = CPU_F1_ECX_SSE41;
            break;
        case 0x20 ... 0x25: /* PMOVSX*, PMOVZX*: a narrower memory operand, not aligned */
        case 0x30 ... 0x35: {
            static const uint8_t sizes[6] = {8, 4, 2, 8, 4, 8};
            si->msize = sizes[op & 7];
            si->align = false;
            si->feat = CPU_F1_ECX_SSE41;
            break;
        }
        case 0x2a: /* MOVNTDQA */
            si->mem_only = true;
            si->feat = CPU_F1_ECX_SSE41;
            break;
        case 0x28: /* PMULDQ, PCMPEQQ, PACKUSDW, PMIN*, PMAX*, PMULLD */
        case 0x29:
        case 0x2b:
        case 0x38 ... 0x40:
            si->feat = CPU_F1_ECX_SSE41;
            break;
        case 0x37: /* PCMPGTQ */
            si->feat = CPU_F1_ECX_SSE42;
            break;
        default:
            ok = false;
            break;
        }
    } else if (map == X86_MAP_0F3A && in->simd == X86_SIMD_66) {
        ok = true;
        si->feat = CPU_F1_ECX_SSE41;
        switch (op) {
        case 0x0f: /* PALIGNR */
            si->align = true;
            si->feat = CPU_F1_ECX_SSSE3;
            break;
        case 0x0c ... 0x0e: /* BLENDPS/PD, PBLENDW */
        case 0x42:          /* MPSADBW */
            si->align = true;
            break;
        case 0x14 ... 0x17: { /* PEXTRB/W/D/Q, EXTRACTPS */
            static const uint8_t sizes[4] = {1, 2, 4, 4};
            si->msize = op == 0x16 && w ? 8 : sizes[op & 3];
            si->gpr = SG_RM_W;
            si->store = true;
            break;
        }
        case 0x20: /* PINSRB, PINSRD/Q */
        case 0x22:
            si->msize = op == 0x20 ? 1 : w ? 8 : 4;
            si->gpr = SG_RM_R;
            break;
        case 0x21: /* INSERTPS */
            si->msize = 4;
            break;
        case 0x60 ... 0x63: /* PCMPESTRM/ESTRI/ISTRM/ISTRI: memory need not be aligned */
            si->flags = true;
            si->feat = CPU_F1_ECX_SSE42;
            si->implicit = (uint8_t)((op & 1 ? SI_ECX : SI_XMM0) | (op < 0x62 ? SI_EAX_EDX : 0));
            break;
        default:
            ok = false;
            break;
        }
    }
    if (!ok || (si->feat & ~(guest_feat & host_sse_feat()))) {
        return false;
    }
    bool mem = in->flags & X86_F_MEM;
    if ((mem && si->reg_only) || (!mem && si->mem_only)) {
        return false;
    }
    if (si->msize != 16) {
        si->align = false;
    }
    return true;
}

/* Whether an SSE instruction runs natively (si: how). */
static bool sse_native(const struct x86_insn *in, const struct cpu_jit_chain *ch, bool m32,
                       struct sse_info *si)
{
    bool mem = in->flags & X86_F_MEM;
    if (!sse_classify(in, ch->f1_ecx, si) || (mem && !address_ok(in))) {
        return false;
    }
    return !(mem && m32 &&
             (in->seg == CPU_SEG_FS || in->seg == CPU_SEG_GS || in->seg == CPU_SEG_CS));
}

/* movups xmm<h>, [cpu->fpu.xmm[g]] / the reverse. */
static void xmm_ld(struct jb *j, int h, int g)
{
    op_mem(j, false, 0x0f10, h, H_RBP, -1, 0, CPU_OFF(fpu.xmm) + g * 16);
}

static void xmm_st(struct jb *j, int h, int g)
{
    op_mem(j, false, 0x0f11, h, H_RBP, -1, 0, CPU_OFF(fpu.xmm) + g * 16);
}

/* An SSE instruction run natively, or false. */
static bool emit_sse(struct jb *j, const struct cpu_jit_chain *ch, const struct x86_insn *in,
                     int64_t off, unsigned idx, struct jstate *st)
{
    struct sse_info si;
    bool mem = in->flags & X86_F_MEM;
    if (!sse_native(in, ch, j->m32, &si)) {
        return false;
    }
    uint8_t *slow[4];
    unsigned nslow = 0;
    if (!st->sse_ok || mem) {
        mem_sync(j, st); /* the checks below clobber host flags */
    }
    /* operands: r and m are the host codes for ModRM.reg and ModRM.rm; every register is
     * in place before the first jump to the slow path */
    int r = 0, m = mem ? H_R12 : 1, g_gpr = -1;
    bool rm_xmm = !mem && si.gpr != SG_RM_R && si.gpr != SG_RM_W;
    if (si.implicit & SI_EAX_EDX) {
        cache_get(j, st, CPU_RAX, true);
        cache_get(j, st, CPU_RDX, true);
    }
    if (si.implicit & SI_ECX) {
        cache_get(j, st, CPU_RCX, false);
    }
    if (si.gpr == SG_REG_W) {
        g_gpr = in->reg;
        r = cache_get(j, st, g_gpr, false);
    } else if (!mem && (si.gpr == SG_RM_R || si.gpr == SG_RM_W)) {
        g_gpr = in->rm;
        m = cache_get(j, st, g_gpr, si.gpr == SG_RM_R);
    }
    if (mem) {
        emit_address(j, st, in, off + in->len);
        if (in->seg == CPU_SEG_FS || in->seg == CPU_SEG_GS) {
            op_mem(j, true, 0x03, H_R11, H_RBP, -1, 0, CPU_OFF(seg[in->seg].base));
        }
    }
    struct jstate snap = *st;
    if (!st->sse_ok) { /* #UD/#NM conditions: the handler raises them */
        op_mem(j, false, 0xf7, 0, H_RBP, -1, 0, CPU_OFF(cr0));
        b4(j, (uint32_t)(CPU_CR0_EM | CPU_CR0_TS));
        slow[nslow++] = jcc_fwd(j, 0x5);
        op_mem(j, false, 0xf7, 0, H_RBP, -1, 0, CPU_OFF(cr4));
        b4(j, (uint32_t)CPU_CR4_OSFXSR);
        slow[nslow++] = jcc_fwd(j, 0x4);
    }
    if (mem) {
        if (si.align) {
            b1(j, 0x41); /* test r11b, 15 */
            b1(j, 0xf6);
            b1(j, 0xc3);
            b1(j, 0x0f);
            slow[nslow++] = jcc_fwd(j, 0x5);
        }
        slow[nslow++] = emit_probe(j, si.store, si.msize);
    }
    bool group = (in->op & 0x3ff) >= (X86_MAP_0F | 0x71) && (in->op & 0x3ff) <= (X86_MAP_0F | 0x73);
    if (group) {
        r = in->reg & 7; /* the /digit */
    } else if (si.gpr != SG_REG_W) {
        xmm_ld(j, 0, in->reg);
    }
    if (rm_xmm && !group && si.gpr == SG_NONE && in->rm == in->reg) {
        rm_xmm = false; /* one register for both operands */
        m = 0;
    }
    if (rm_xmm) {
        xmm_ld(j, 1, in->rm);
    }
    static const uint8_t pfx[4] = {0, 0x66, 0xf3, 0xf2};
    if (pfx[in->simd]) {
        b1(j, pfx[in->simd]);
    }
    unsigned rex = (in->rex & 8u) | (r >= 8 ? 4u : 0) | (m >= 8 ? 1u : 0);
    if (rex) {
        b1(j, 0x40 | rex);
    }
    b1(j, 0x0f);
    if ((in->op & 0x300) == X86_MAP_0F38) {
        b1(j, 0x38);
    } else if ((in->op & 0x300) == X86_MAP_0F3A) {
        b1(j, 0x3a);
    }
    b1(j, in->op & 0xff);
    if (mem) {
        b1(j, (unsigned)(r & 7) << 3 | 4); /* [r12] */
        b1(j, 0x24);
    } else {
        b1(j, 0xc0 | (unsigned)(r & 7) << 3 | (unsigned)(m & 7));
    }
    for (unsigned k = 0; k < in->immsize; k++) {
        b1(j, (uint8_t)(in->imm >> (8 * k)));
    }
    /* write-through of what the instruction may have written */
    if (si.implicit & SI_XMM0) {
        xmm_st(j, 0, 0);
    } else if (si.implicit & SI_ECX) {
        st->dirty |= 1u << CPU_RCX;
    } else {
        if (!group && si.gpr != SG_REG_W && !(mem && si.store)) {
            xmm_st(j, 0, in->reg);
        }
        if (rm_xmm) {
            xmm_st(j, 1, in->rm);
        }
        if (g_gpr >= 0 && si.gpr != SG_RM_R) {
            st->dirty |= (uint16_t)(1u << g_gpr);
        }
    }
    if (nslow) {
        emit_cold_slow(j, st, &snap, in, off, idx, slow, nslow, si.flags);
    }
    st->sse_ok = true;
    st->pending++;
    if (si.flags) {
        st->host_valid = true;
        st->mem_valid = false;
    }
    return true;
}

/* RAX = a branch target: jump to the returned rel32 unless it is canonical. Clobbers RDX. */
static uint8_t *emit_noncanonical_jump(struct jb *j)
{
    op_rr(j, true, 0x89, H_RAX, H_RDX);
    op_rr(j, true, 0xc1, 4, H_RDX);
    b1(j, 16);
    op_rr(j, true, 0xc1, 7, H_RDX);
    b1(j, 16);
    op_rr(j, true, 0x39, H_RAX, H_RDX);
    return jcc_fwd(j, 0x5);
}

/* CALL rel32 / RET / RET imm16 ending the block. */
static bool emit_call_ret(struct jb *j, const struct cpu_jit *jit, const struct cpu_jit_chain *ch,
                          const struct x86_insn *in, int64_t off, unsigned n, struct jstate *st)
{
    unsigned op = in->op;
    if ((op != 0xe8 && op != 0xc3 && op != 0xc2) || in->opsize != 8) {
        return false;
    }
    int64_t next = off + in->len;
    int64_t target = next + (int64_t)in->imm;
    if (op == 0xe8 && target != (int32_t)target) {
        return false;
    }
    sync_point(j, st);
    ld_guest(j, H_R11, CPU_RSP);
    uint8_t *slow, *bad;
    if (op == 0xe8) {
        op_mem(j, true, 0x8d, H_R11, H_R11, -1, 0, -8);
        slow = emit_probe(j, true, 8);
        op_mem(j, true, 0x8d, H_RAX, H_R15, -1, 0, (int32_t)target);
        bad = emit_noncanonical_jump(j);
        op_mem(j, true, 0x8d, H_RCX, H_R15, -1, 0, (int32_t)next);
        op_mem(j, true, 0x89, H_RCX, H_R12, -1, 0, 0);
        st_guest(j, H_R11, CPU_RSP);
    } else {
        slow = emit_probe(j, false, 8);
        op_mem(j, true, 0x8b, H_RAX, H_R12, -1, 0, 0);
        bad = emit_noncanonical_jump(j);
        int32_t pop = 8 + (op == 0xc2 ? (int32_t)(in->imm & 0xffff) : 0);
        op_mem(j, true, 0x8d, H_RCX, H_R11, -1, 0, pop);
        st_guest(j, H_RCX, CPU_RSP);
    }
    op_mem(j, true, 0x89, H_RAX, H_RBP, -1, 0, CPU_OFF(rip));
    add_icount(j, 1);
    chain_exit(j, jit, ch, n);
    cold_enter(j);
    patch_here(j, slow);
    patch_here(j, bad);
    emit_handler_call(j, in, off);
    add_icount(j, 1);
    ret_count(j, n);
    cold_leave(j);
    return true;
}

/* JMP r/m64 / CALL r/m64 (FF /4, FF /2) ending the block: the target through the jump cache. */
static bool emit_indirect(struct jb *j, const struct cpu_jit *jit, const struct cpu_jit_chain *ch,
                          const struct x86_insn *in, int64_t off, unsigned n, struct jstate *st)
{
    unsigned digit = in->reg & 7;
    bool mem = in->flags & X86_F_MEM;
    if (in->op != 0xff || (digit != 2 && digit != 4) || in->opsize != 8 || j->m32 ||
        (mem && !address_ok(in))) {
        return false;
    }
    int64_t next = off + in->len;
    uint8_t *slow[3];
    unsigned nslow = 0;
    sync_point(j, st);
    if (mem) {
        emit_address(j, st, in, next);
        if (in->seg == CPU_SEG_FS || in->seg == CPU_SEG_GS) {
            op_mem(j, true, 0x03, H_R11, H_RBP, -1, 0, CPU_OFF(seg[in->seg].base));
        }
        slow[nslow++] = emit_probe(j, false, 8);
        op_mem(j, true, 0x8b, H_RAX, H_R12, -1, 0, 0);
    } else {
        ld_guest(j, H_RAX, in->rm);
    }
    slow[nslow++] = emit_noncanonical_jump(j);
    if (digit == 2) { /* push the return address */
        ld_guest(j, H_R11, CPU_RSP);
        op_mem(j, true, 0x8d, H_R11, H_R11, -1, 0, -8);
        slow[nslow++] = emit_probe(j, true, 8);
        op_mem(j, true, 0x8d, H_RCX, H_R15, -1, 0, (int32_t)next);
        op_mem(j, true, 0x89, H_RCX, H_R12, -1, 0, 0);
        st_guest(j, H_R11, CPU_RSP);
    }
    op_mem(j, true, 0x89, H_RAX, H_RBP, -1, 0, CPU_OFF(rip));
    add_icount(j, 1);
    chain_exit(j, jit, ch, n);
    cold_enter(j);
    for (unsigned k = 0; k < nslow; k++) {
        patch_here(j, slow[k]);
    }
    emit_handler_call(j, in, off);
    add_icount(j, 1);
    ret_count(j, n);
    cold_leave(j);
    return true;
}

/* The block's last instruction as a native near branch (Jcc/JMP rel), or false. */
static bool emit_branch(struct jb *j, const struct cpu_jit *jit, const struct cpu_jit_chain *ch,
                        const struct x86_insn *in, int64_t off, unsigned n, struct jstate *st)
{
    unsigned op = in->op & 0xff, map = in->op & 0x300;
    int cc = -1;
    if (in->opsize != (j->m32 ? 4 : 8) || in->flags & X86_F_UD) {
        return false;
    }
    if (map == X86_MAP_1B && op >= 0x70 && op <= 0x7f) {
        cc = (int)(op & 15);
    } else if (map == X86_MAP_0F && op >= 0x80 && op <= 0x8f) {
        cc = (int)(op & 15);
    } else if (!(map == X86_MAP_1B && (op == 0xe9 || op == 0xeb))) {
        return false;
    }
    int64_t next = off + in->len;
    int64_t target = next + (int64_t)in->imm;
    if (target != (int32_t)target) {
        return false;
    }
    if (cc >= 0 && !st->host_valid) {
        flags_to_host(j, st);
        st->host_valid = true;
    }
    if (!st->mem_valid) {
        flags_to_mem(j, st);
        st->mem_valid = true;
    }
    flush_dirty(j, st); /* MOVs: the flags stay */
    if (ch->chainable && off_in_page(ch, target) && (cc < 0 || off_in_page(ch, next))) {
        uint8_t *taken = cc >= 0 ? jcc_fwd(j, (unsigned)cc) : NULL;
        if (cc >= 0) {
            add_icount(j, st->pending + 1);
            exit_direct(j, jit, ch, n, next);
            patch_here(j, taken);
        }
        add_icount(j, st->pending + 1);
        exit_direct(j, jit, ch, n, target);
        return true;
    }
    op_mem(j, true, 0x8d, H_RCX, H_R15, -1, 0, (int32_t)target);
    if (cc >= 0) {
        op_mem(j, true, 0x8d, H_RAX, H_R15, -1, 0, (int32_t)next);
        op_rr(j, true, 0x0f40 | (unsigned)cc, H_RAX, H_RCX); /* cmovcc rax, rcx */
    } else {
        op_rr(j, true, 0x89, H_RCX, H_RAX);
    }
    /* a target in the block's own page is canonical; others may not be (#GP). 32-bit code:
     * EIP wraps, and flat code segments have no limit to check. */
    bool in_page = (int64_t)ch->page_off + target >= 0 && (int64_t)ch->page_off + target < 4096;
    if (j->m32) {
        op_rr(j, false, 0x89, H_RAX, H_RAX); /* mov eax, eax */
        in_page = true;
    }
    uint8_t *bad = in_page ? NULL : emit_noncanonical_jump(j);
    op_mem(j, true, 0x89, H_RAX, H_RBP, -1, 0, CPU_OFF(rip));
    add_icount(j, st->pending + 1);
    chain_exit(j, jit, ch, n);
    if (in_page) {
        return true;
    }
    patch_here(j, bad);
    add_icount(j, st->pending);
    emit_handler_call(j, in, off);
    add_icount(j, 1);
    ret_count(j, n);
    return true;
}

/* dead[k]: the flags as they are before instruction k are overwritten (by a native
 * instruction that writes every arithmetic flag) before anything reads them. Handler-run
 * instructions, block-ending branches and the block's end count as readers. */
static void flags_liveness(const struct x86_insn *insn, unsigned n, const struct cpu_jit_chain *ch,
                           bool m32, bool *dead)
{
    bool next_dead = false; /* at the block's end flags are live */
    for (unsigned k = n; k-- > 0;) {
        const struct x86_insn *in = &insn[k];
        struct jit_info ji;
        struct jit_operands o;
        struct sse_info si;
        enum { NEUTRAL, WRITER, READER } use = READER;
        if (in->flags & X86_F_BRANCH) {
            use = READER;
        } else if (in->op >= 0x50 && in->op <= 0x5f && in->opsize == 8) {
            use = NEUTRAL; /* PUSH/POP */
        } else if (sse_native(in, ch, m32, &si)) {
            use = si.flags ? WRITER : NEUTRAL;
        } else if (insn_native(in, m32, &ji, &o)) {
            use = (ji.nop || ji.lea || !ji.fl) ? NEUTRAL : ji.fl == JF_OUT ? WRITER : READER;
        }
        if (use != NEUTRAL) {
            next_dead = use == WRITER;
        }
        dead[k] = next_dead;
    }
}

cpu_jit_fn cpu_jit_compile(struct cpu_jit *jit, const struct x86_insn *insn, unsigned n,
                           const struct cpu_jit_chain *ch, bool *full)
{
    struct jb jb = {.p = jit->code + jit->used, .end = jit->code + JIT_HOT_SIZE,
                    .q = jit->code + JIT_HOT_SIZE + jit->cold_used,
                    .qend = jit->code + JIT_CODE_SIZE,
                    .epilogue = jit->code + JIT_HOT_SIZE,
                    .m32 = ch->key == X86_MODE_32};
    struct jb *j = &jb;
    struct jstate st = {.host_valid = false, .mem_valid = true, .pending = 0};
    int64_t off = 0;
    bool ended = false;

    *full = false;
    if ((size_t)(j->end - j->p) < (size_t)(n + 2) * JIT_SLACK ||
        (size_t)(j->qend - j->q) < (size_t)(n + 2) * JIT_SLACK) {
        *full = true;
        return NULL;
    }
    uint8_t *cold_start = j->q;
    cache_clear(&st);
    uint8_t *start = j->p;
    prologue(j);
    block_entry(j);
    jit->prologue_len = (size_t)(j->p - start); /* chained entries skip the above */
    chained_entry(j, jit, ch);
    bool dead[n];
    flags_liveness(insn, n, ch, j->m32, dead);
    for (unsigned k = 0; k < n; k++) {
        const struct x86_insn *in = &insn[k];
        struct jit_info ji;
        struct jit_operands o;
        bool last = k + 1 == n;

        st.pinned = 0;
        st.flags_dead = dead[k];
        if (last && (emit_branch(j, jit, ch, in, off, n, &st) ||
                     emit_call_ret(j, jit, ch, in, off, n, &st) ||
                     emit_indirect(j, jit, ch, in, off, n, &st))) {
            ended = true;
            break;
        }
        if (emit_push_pop(j, in, off, k, &st) || emit_sse(j, ch, in, off, k, &st)) {
            off += in->len;
            continue;
        }
        bool native = insn_native(in, j->m32, &ji, &o);
        if (native && ji.nop) {
            st.pending++;
        } else if (native && ji.lea) {
            emit_lea(j, &st, in, off);
            st.pending++;
        } else if (native && (in->flags & X86_F_MEM)) {
            emit_mem_insn(j, in, &ji, &o, off, k, &st);
        } else if (native) {
            operands_load(j, &st, &o);
            if ((ji.fl & JF_IN) && !st.host_valid) {
                flags_to_host(j, &st);
                st.host_valid = true;
            }
            emit_native(j, in, &ji, &o, &st, -1);
            operands_store(&st, in, &o);
            if (ji.fl & JF_OUT) {
                st.host_valid = true;
                st.mem_valid = false;
            }
            st.pending++;
        } else {
            sync_point(j, &st);
            emit_handler_call(j, in, off);
            cache_clear(&st);
            if (!last) {
                emit_stop_check(j, k + 1);
            } else {
                add_icount(j, 1);
                op_mem(j, false, 0x80, 7, H_RBP, -1, 0, CPU_OFF(block_stop));
                b1(j, 0);
                uint8_t *stop = jcc_fwd(j, 0x5);
                op_mem(j, true, 0x8b, H_RAX, H_RBP, -1, 0, CPU_OFF(rip));
                chain_exit(j, jit, ch, n);
                patch_here(j, stop);
                ret_count(j, n);
                ended = true;
            }
            st.pending = 1;
        }
        off += in->len;
    }
    if (!ended) {
        flush_dirty(j, &st);
        if (!st.mem_valid) {
            flags_to_mem(j, &st);
        }
        add_icount(j, st.pending);
        if (ch->chainable && off_in_page(ch, off) && !j->m32) {
            exit_direct(j, jit, ch, n, off);
        } else {
            st_rip(j, CPU_OFF(rip), off); /* leaves RAX = the next RIP */
            chain_exit(j, jit, ch, n);
        }
    }
    size_t used = (size_t)(j->p - jit->code);
    jit->used = (used + 15) & ~(size_t)15;
    used = (size_t)(j->q - (jit->code + JIT_HOT_SIZE));
    jit->cold_used = (used + 15) & ~(size_t)15;
    if (jit->perfmap) {
        fprintf(jit->perfmap, "%lx %lx guest_%llx\n", (unsigned long)(uintptr_t)start,
                (unsigned long)(j->p - start), (unsigned long long)ch->rip);
        if (j->q > cold_start) {
            fprintf(jit->perfmap, "%lx %lx guest_%llx_cold\n",
                    (unsigned long)(uintptr_t)cold_start, (unsigned long)(j->q - cold_start),
                    (unsigned long long)ch->rip);
        }
        fflush(jit->perfmap);
    }
    return (cpu_jit_fn)(void *)start;
}

#else /* not an x86-64 host: no translator */

struct cpu_jit *cpu_jit_new(void)
{
    return NULL;
}

void cpu_jit_free(struct cpu_jit *j)
{
    (void)j;
}

void cpu_jit_reset(struct cpu_jit *j)
{
    (void)j;
}

cpu_jit_fn cpu_jit_compile(struct cpu_jit *jit, const struct x86_insn *insn, unsigned n,
                           const struct cpu_jit_chain *ch, bool *full)
{
    (void)jit;
    (void)insn;
    (void)n;
    *full = false;
    return NULL;
}

#endif
