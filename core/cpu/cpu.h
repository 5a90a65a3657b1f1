/* The software x86-64 CPU: shared internal header of core/cpu/.
 *
 * Three parts share this header:
 *   cpu-core  decoder (decode.c), execution loop and block cache (exec.c), memory access
 *             slow paths (mem.c), lazy flags (flags.c), integer instructions (alu.c, ...)
 *   cpu-sys   paging and TLB fill (mmu.c), segment loads (seg.c), exception/interrupt
 *             delivery (intr.c), system instructions (sysinsn.c), MSRs, CPUID, soft_accel.c
 *   cpu-fpu   x87, MMX, SSE..SSE4.2, FXSAVE/FXRSTOR (x87.c, sse*.c, fxsave.c)
 *
 * Conventions every handler follows (read these before writing one):
 * - A handler is void f(struct cpu *, const struct x86_insn *). When it runs, cpu->rip is
 *   ALREADY the address of the next instruction (the architectural RIP-relative base and the
 *   return address of CALL) and cpu->insn_rip is the address of the instruction itself.
 *   A handler that transfers control simply writes cpu->rip (and must end its block: the
 *   decoder marks such opcodes X86_F_END).
 * - Faults: cpu_raise() longjmps back to the loop, which sets cpu->rip = cpu->insn_rip and
 *   calls cpu_deliver_exception(). So a handler must raise every fault BEFORE it modifies any
 *   architectural state (registers, flags); memory stores are done last where possible.
 * - Every change of a segment register goes through cpu_set_seg() (it refreshes the access
 *   cache and the mode bits). After changing CR0, EFER, RFLAGS.VM or CPL call
 *   cpu_update_mode().
 * - Arithmetic flags are lazy: read RFLAGS only through cpu_get_rflags()/cpu_get_cf() etc.,
 *   write through cpu_set_rflags(), or cpu_flags_sync() and then edit cpu->rflags.
 */
#ifndef LODGE_CORE_CPU_CPU_H
#define LODGE_CORE_CPU_CPU_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct bus;
struct guestmem;
struct timerq;
struct accel_intc;
struct cpu;
struct x86_insn;

#define CPU_LIKELY(x) __builtin_expect(!!(x), 1)
#define CPU_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* The memory/operand fast paths are small once specialised on a constant size: force them
 * inline into every handler (GCC's heuristics otherwise leave calls on the hot path). */
#define CPU_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------------------------------ */
/* Register and segment numbering (the x86 encoding order).                                    */

enum {
    CPU_RAX = 0, CPU_RCX, CPU_RDX, CPU_RBX, CPU_RSP, CPU_RBP, CPU_RSI, CPU_RDI,
    CPU_R8, CPU_R9, CPU_R10, CPU_R11, CPU_R12, CPU_R13, CPU_R14, CPU_R15,
};

enum {
    CPU_SEG_ES = 0, CPU_SEG_CS, CPU_SEG_SS, CPU_SEG_DS, CPU_SEG_FS, CPU_SEG_GS,
    CPU_SEG_LDTR, CPU_SEG_TR,
    CPU_SEG_COUNT,
};

/* RFLAGS bits (SDM vol. 1, 3.4.3). */
#define CPU_FL_CF (1u << 0)
#define CPU_FL_FIXED1 (1u << 1)
#define CPU_FL_PF (1u << 2)
#define CPU_FL_AF (1u << 4)
#define CPU_FL_ZF (1u << 6)
#define CPU_FL_SF (1u << 7)
#define CPU_FL_TF (1u << 8)
#define CPU_FL_IF (1u << 9)
#define CPU_FL_DF (1u << 10)
#define CPU_FL_OF (1u << 11)
#define CPU_FL_IOPL (3u << 12)
#define CPU_FL_IOPL_SHIFT 12
#define CPU_FL_NT (1u << 14)
#define CPU_FL_RF (1u << 16)
#define CPU_FL_VM (1u << 17)
#define CPU_FL_AC (1u << 18)
#define CPU_FL_VIF (1u << 19)
#define CPU_FL_VIP (1u << 20)
#define CPU_FL_ID (1u << 21)
#define CPU_FL_ARITH (CPU_FL_CF | CPU_FL_PF | CPU_FL_AF | CPU_FL_ZF | CPU_FL_SF | CPU_FL_OF)

/* CR0/CR4/EFER bits used across files. */
#define CPU_CR0_PE (1ull << 0)
#define CPU_CR0_MP (1ull << 1)
#define CPU_CR0_EM (1ull << 2)
#define CPU_CR0_TS (1ull << 3)
#define CPU_CR0_ET (1ull << 4)
#define CPU_CR0_NE (1ull << 5)
#define CPU_CR0_WP (1ull << 16)
#define CPU_CR0_AM (1ull << 18)
#define CPU_CR0_NW (1ull << 29)
#define CPU_CR0_CD (1ull << 30)
#define CPU_CR0_PG (1ull << 31)
#define CPU_CR4_VME (1ull << 0)
#define CPU_CR4_PVI (1ull << 1)
#define CPU_CR4_TSD (1ull << 2)
#define CPU_CR4_DE (1ull << 3)
#define CPU_CR4_PSE (1ull << 4)
#define CPU_CR4_PAE (1ull << 5)
#define CPU_CR4_MCE (1ull << 6)
#define CPU_CR4_PGE (1ull << 7)
#define CPU_CR4_PCE (1ull << 8)
#define CPU_CR4_OSFXSR (1ull << 9)
#define CPU_CR4_OSXMMEXCPT (1ull << 10)
#define CPU_CR4_UMIP (1ull << 11)
#define CPU_CR4_FSGSBASE (1ull << 16)
#define CPU_CR4_PCIDE (1ull << 17)
#define CPU_CR4_OSXSAVE (1ull << 18)
#define CPU_CR4_SMEP (1ull << 20)
#define CPU_CR4_SMAP (1ull << 21)
#define CPU_EFER_SCE (1ull << 0)
#define CPU_EFER_LME (1ull << 8)
#define CPU_EFER_LMA (1ull << 10)
#define CPU_EFER_NXE (1ull << 11)

/* Exception vectors (SDM vol. 3, 6.3.1). */
enum {
    X86_EXC_DE = 0, X86_EXC_DB = 1, X86_EXC_NMI = 2, X86_EXC_BP = 3, X86_EXC_OF = 4,
    X86_EXC_BR = 5, X86_EXC_UD = 6, X86_EXC_NM = 7, X86_EXC_DF = 8, X86_EXC_TS = 10,
    X86_EXC_NP = 11, X86_EXC_SS = 12, X86_EXC_GP = 13, X86_EXC_PF = 14, X86_EXC_MF = 16,
    X86_EXC_AC = 17, X86_EXC_MC = 18, X86_EXC_XM = 19,
};

/* #PF error code bits (SDM vol. 3, 4.7). */
#define CPU_PF_P (1u << 0)
#define CPU_PF_W (1u << 1)
#define CPU_PF_U (1u << 2)
#define CPU_PF_RSVD (1u << 3)
#define CPU_PF_I (1u << 4)

/* ------------------------------------------------------------------------------------------ */
/* Segments.                                                                                   */

/* Segment attributes in the VMX "access rights" layout (SDM vol. 3, 24.4.1): the descriptor's
 * type/S/DPL/P/AVL/L/DB/G bits, plus "unusable" for a null selector. */
#define CPU_SEGA_TYPE 0x000fu      /* descriptor type (4 bits) */
#define CPU_SEGA_ACCESSED 0x0001u  /* type bit 0 for code/data */
#define CPU_SEGA_RW 0x0002u        /* data: writable; code: readable */
#define CPU_SEGA_DC 0x0004u        /* data: expand-down; code: conforming */
#define CPU_SEGA_CODE 0x0008u      /* type bit 3: code segment */
#define CPU_SEGA_S 0x0010u         /* code/data (1) or system (0) descriptor */
#define CPU_SEGA_DPL_SHIFT 5
#define CPU_SEGA_DPL 0x0060u
#define CPU_SEGA_P 0x0080u         /* present */
#define CPU_SEGA_AVL 0x1000u
#define CPU_SEGA_L 0x2000u         /* 64-bit code segment */
#define CPU_SEGA_DB 0x4000u        /* default operation size / big */
#define CPU_SEGA_G 0x8000u         /* granularity (limit is already scaled) */
#define CPU_SEGA_UNUSABLE 0x10000u /* null selector loaded: any access faults */

/* cpu_seg.acc: precomputed by cpu_set_seg() for the inline access checks. */
#define CPU_SEGC_READ 0x01u  /* reads allowed with a plain expand-up limit check */
#define CPU_SEGC_WRITE 0x02u /* writes allowed with a plain expand-up limit check */

struct cpu_seg {
    uint64_t base;     /* hidden base (FS/GS: the FS_BASE/GS_BASE MSRs) */
    uint32_t limit;    /* byte-granular limit (already scaled by G) */
    uint32_t attr;     /* CPU_SEGA_* bits */
    uint16_t sel;      /* visible selector */
    uint8_t acc;       /* CPU_SEGC_* cache, set by cpu_set_seg()/cpu_update_mode() */
};

static inline unsigned cpu_seg_dpl(const struct cpu_seg *s)
{
    return (s->attr & CPU_SEGA_DPL) >> CPU_SEGA_DPL_SHIFT;
}

struct cpu_dtable {
    uint64_t base;  /* GDTR/IDTR base */
    uint32_t limit; /* GDTR/IDTR limit (16 bits used) */
};

/* ------------------------------------------------------------------------------------------ */
/* Lazy flags.                                                                                 */

/* cc_op says how the arithmetic flags follow from cc_dst/cc_src/cc_src2. With
 * CPU_CC_EFLAGS they are stored in cpu->rflags directly. The operand size is in the low
 * 2 bits (0:8 1:16 2:32 3:64) of every op except EFLAGS. Meaning per group:
 *   ADD: dst = result, src = second operand          ADC: + src2 = carry in
 *   SUB: dst = result, src = second operand (CMP too) SBB: + src2 = borrow in
 *   LOGIC: dst = result (CF=OF=0, AF=0)
 *   INC/DEC: dst = result, src2 = old CF (CF preserved)
 *   SHL: dst = result, src = value shifted by count-1 (CF = its top bit), src2 = old operand
 *   SHR/SAR: dst = result, src = value shifted by count-1 (CF = its bit 0), src2 = old operand
 *   MUL: dst = low result, src = nonzero when the high half is significant (CF=OF=src!=0)
 *   NEG: dst = result, src = operand
 *   HOST: src bits 15:8 = LAHF (SF ZF AF PF CF), bit 0 = OF, after native code (jit.c)
 */
enum cpu_cc_op {
    CPU_CC_EFLAGS = 0,
    CPU_CC_HOST = 1, /* translated code saved the host's flags in cc_src (see HOST below) */
    CPU_CC_ADD8 = 4, CPU_CC_ADD16, CPU_CC_ADD32, CPU_CC_ADD64,
    CPU_CC_ADC8, CPU_CC_ADC16, CPU_CC_ADC32, CPU_CC_ADC64,
    CPU_CC_SUB8, CPU_CC_SUB16, CPU_CC_SUB32, CPU_CC_SUB64,
    CPU_CC_SBB8, CPU_CC_SBB16, CPU_CC_SBB32, CPU_CC_SBB64,
    CPU_CC_LOGIC8, CPU_CC_LOGIC16, CPU_CC_LOGIC32, CPU_CC_LOGIC64,
    CPU_CC_INC8, CPU_CC_INC16, CPU_CC_INC32, CPU_CC_INC64,
    CPU_CC_DEC8, CPU_CC_DEC16, CPU_CC_DEC32, CPU_CC_DEC64,
    CPU_CC_SHL8, CPU_CC_SHL16, CPU_CC_SHL32, CPU_CC_SHL64,
    CPU_CC_SHR8, CPU_CC_SHR16, CPU_CC_SHR32, CPU_CC_SHR64,
    CPU_CC_SAR8, CPU_CC_SAR16, CPU_CC_SAR32, CPU_CC_SAR64,
    CPU_CC_MUL8, CPU_CC_MUL16, CPU_CC_MUL32, CPU_CC_MUL64,
    CPU_CC_NEG8, CPU_CC_NEG16, CPU_CC_NEG32, CPU_CC_NEG64,
    CPU_CC_COUNT,
};

/* ------------------------------------------------------------------------------------------ */
/* Soft TLB.                                                                                   */

/* Direct-mapped, one table per MMU index (supervisor / user). An entry caches one 4 KiB
 * linear page. Each tag is the linear page address when that kind of access may use the
 * fast path (host pointer = lin + addend); otherwise low flag bits are set in it, so the
 * inline compare fails and the slow path (mem.c) looks at the flags:
 *   INVALID  no translation for this access kind: call cpu_tlb_fill()
 *   MMIO     not RAM: dispatch paddr through the bus (or the APIC page)
 *   CODE     (tag_write) the page holds translated code: invalidate blocks, then store
 *   ROM      (tag_write) read-only region: the store is dropped
 * A fill for a read must not make the page writable through tag_write unless the guest PTE
 * already has D set (so the first write walks again and sets D). */
#define CPU_TLB_BITS 10
#define CPU_TLB_SIZE (1u << CPU_TLB_BITS)
#define CPU_TLB_INVALID 0x1ull
#define CPU_TLB_MMIO 0x2ull
#define CPU_TLB_CODE 0x4ull
#define CPU_TLB_ROM 0x8ull
#define CPU_TLB_FLAGS 0xfffull
#define CPU_PAGE_MASK (~0xfffull)

enum { CPU_ACC_READ = 0, CPU_ACC_WRITE = 1, CPU_ACC_EXEC = 2 };
enum { CPU_MMU_SUP = 0, CPU_MMU_USER = 1, CPU_MMU_COUNT = 2 };

struct cpu_tlb_entry {
    uint64_t tag_read;  /* linear page | CPU_TLB_* flags, for data reads */
    uint64_t tag_write; /* linear page | flags, for data writes */
    uint64_t tag_exec;  /* linear page | flags, for instruction fetch */
    uintptr_t addend;   /* host address = lin + addend (RAM/ROM pages only) */
    uint64_t paddr;     /* physical page address */
    uint8_t global;     /* PTE.G with CR4.PGE: kept by a CR3 reload */
} __attribute__((aligned(64))); /* 64 bytes: translated code indexes the table by shifting */

/* ------------------------------------------------------------------------------------------ */
/* Decoded instruction record.                                                                 */

typedef void (*x86_handler)(struct cpu *cpu, const struct x86_insn *in);

/* Decoder modes (the code-segment size). */
enum { X86_MODE_16 = 0, X86_MODE_32 = 1, X86_MODE_64 = 2 };

/* x86_insn.op: opcode map in bits 8-9, opcode byte in bits 0-7. */
#define X86_MAP_1B 0x000u   /* one-byte map */
#define X86_MAP_0F 0x100u   /* 0F xx */
#define X86_MAP_0F38 0x200u /* 0F 38 xx */
#define X86_MAP_0F3A 0x300u /* 0F 3A xx */

/* x86_insn.pfx: legacy prefixes seen. */
#define X86_PFX_LOCK 0x01u
#define X86_PFX_REP 0x02u   /* F3 (the last of F2/F3 wins) */
#define X86_PFX_REPNE 0x04u /* F2 */
#define X86_PFX_OPSZ 0x08u  /* 66 */
#define X86_PFX_ADSZ 0x10u  /* 67 */
#define X86_PFX_SEG 0x20u   /* a segment override was given (insn.seg holds it) */
#define X86_PFX_REX 0x40u   /* a REX prefix directly before the opcode */
#define X86_PFX_VEX 0x80u   /* VEX/EVEX/XOP (always #UD here) */

/* x86_insn.flags */
#define X86_F_MODRM 0x01u  /* has a ModRM byte */
#define X86_F_MEM 0x02u    /* ModRM names memory (mod != 3) or a moffs operand */
#define X86_F_RIPREL 0x04u /* memory operand is RIP-relative (ea_base == X86_EA_RIP) */
#define X86_F_BRANCH 0x08u /* may write cpu->rip */
#define X86_F_END 0x10u    /* ends the block (branch, mode change, serialising) */
#define X86_F_UD 0x20u     /* undefined/unsupported: the handler raises #UD */
#define X86_F_NEAR 0x40u   /* near branch: changes only RIP (the next block may be chained) */
#define X86_F_NOFLAGS 0x80u /* set by the block builder: the next instruction overwrites every
                               arithmetic flag, so this one may skip computing them */

/* x86_insn.simd: the mandatory prefix of SSE opcodes (in VEX.pp order). */
enum { X86_SIMD_NONE = 0, X86_SIMD_66 = 1, X86_SIMD_F3 = 2, X86_SIMD_F2 = 3 };

#define X86_EA_NONE 0xffu /* no base / no index register */
#define X86_EA_RIP 0x10u  /* base is RIP (next instruction) */

struct x86_insn {
    x86_handler exec;  /* handler; for #UD opcodes x86_op_ud */
    int32_t disp;      /* displacement (sign-extended at decode) */
    uint16_t op;       /* X86_MAP_* | opcode byte */
    uint16_t imm2;     /* ENTER's level byte; the selector of a direct far JMP/CALL */
    uint64_t imm;      /* immediate, sign/zero-extended as the opcode defines; moffs address;
                          3DNow suffix byte */
    uint8_t len;       /* total length in bytes (1..15) */
    uint8_t opsize;    /* operand size in bytes: 1 (byte opcodes), 2, 4 or 8 */
    uint8_t addrsize;  /* address size in bytes: 2, 4 or 8 */
    uint8_t seg;       /* segment of the memory operand: override, else DS or SS
                          (for string ops: the source segment; destination is always ES) */
    uint8_t pfx;       /* X86_PFX_* */
    uint8_t flags;     /* X86_F_* */
    uint8_t simd;      /* X86_SIMD_* */
    uint8_t rex;       /* raw REX byte (0x40-0x4f) or 0 */
    uint8_t modrm;     /* raw ModRM byte */
    uint8_t mod;       /* ModRM.mod */
    uint8_t reg;       /* ModRM.reg | REX.R << 3 (for groups: the /digit is reg & 7) */
    uint8_t rm;        /* ModRM.rm | REX.B << 3 (a register number when mod == 3) */
    uint8_t ea_base;   /* base register, X86_EA_RIP or X86_EA_NONE */
    uint8_t ea_index;  /* index register or X86_EA_NONE */
    uint8_t ea_scale;  /* index shift 0..3 */
    uint8_t immsize;   /* bytes of immediate in the encoding (for the decoder oracle) */
    uint8_t vex_l;     /* VEX.L / EVEX.L'L */
    uint8_t vex_vvvv;  /* VEX.vvvv (un-inverted) */
    uint8_t vex_w;     /* VEX.W */
    uint8_t vex_map;   /* VEX map select (1: 0F, 2: 0F38, 3: 0F3A) */
};

/* Decode one instruction at bytes[0..avail). Returns its length (1..15) on success, also
 * for undefined opcodes (out->exec is then x86_op_ud and X86_F_UD is set; executing it
 * raises #UD), X86_DECODE_MORE when avail is too short to tell, X86_DECODE_TOOLONG when the
 * instruction would exceed 15 bytes (#GP(0)). Usable without a CPU. */
#define X86_DECODE_MORE (-1)
#define X86_DECODE_TOOLONG (-2)
int x86_decode(struct x86_insn *out, const uint8_t *bytes, size_t avail, int mode);
/* Switch a decoded record to a handler specialised on its operands (register forms of hot
 * instructions); done when a block is built. */
void x86_specialise_insn(struct x86_insn *in);

/* Handler that raises #UD (what undefined opcodes decode to). */
void x86_op_ud(struct cpu *cpu, const struct x86_insn *in);

/* ------------------------------------------------------------------------------------------ */
/* x87 / SSE state (owned by cpu-fpu; laid out here so everything can see it).                */

union cpu_fpreg {
    long double ld; /* x86-64 host: the 80-bit extended format in the low 10 bytes */
    struct {
        uint64_t mant; /* significand (MMX register when used as MMX) */
        uint16_t sexp; /* sign + 15-bit exponent */
    } raw;
    uint8_t bytes[16];
};

union cpu_xmm {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t l[4];
    uint64_t q[2];
    float s[4];
    double d[2];
} __attribute__((aligned(16)));

struct cpu_fpu {
    union cpu_fpreg st[8]; /* physical registers R0-R7; ST(i) = st[(top + i) & 7] */
    uint16_t fcw;          /* x87 control word (SDM vol. 1, 8.1.5) */
    uint16_t fsw;          /* x87 status word; TOP (bits 11-13) is kept in .top */
    uint16_t ftw;          /* full tag word, 2 bits per physical register (8.1.7) */
    uint8_t top;           /* TOP of stack 0..7 */
    uint16_t fop;          /* last x87 opcode (11 bits) */
    uint64_t fip;          /* last x87 instruction pointer (offset) */
    uint16_t fcs;          /* ... and its CS selector */
    uint64_t fdp;          /* last x87 data pointer (offset) */
    uint16_t fds;          /* ... and its segment selector */
    union cpu_xmm xmm[16]; /* XMM0-XMM15 */
    uint32_t mxcsr;        /* SSE control/status (10.2.3) */
};

/* ------------------------------------------------------------------------------------------ */
/* MSRs and CPUID features.                                                                    */

struct cpu_msrs {
    uint64_t star;           /* STAR C000_0081 */
    uint64_t lstar;          /* LSTAR C000_0082 */
    uint64_t cstar;          /* CSTAR C000_0083 */
    uint64_t sfmask;         /* SFMASK C000_0084 */
    uint64_t kernel_gs_base; /* KERNEL_GS_BASE C000_0102 (FS/GS base live in seg[].base) */
    uint64_t sysenter_cs;    /* IA32_SYSENTER_CS 174 */
    uint64_t sysenter_esp;   /* IA32_SYSENTER_ESP 175 */
    uint64_t sysenter_eip;   /* IA32_SYSENTER_EIP 176 */
    uint64_t tsc_aux;        /* TSC_AUX C000_0103 (RDTSCP) */
    uint64_t apic_base;      /* IA32_APIC_BASE 1B */
    uint64_t pat;            /* IA32_PAT 277 */
    uint64_t misc_enable;    /* IA32_MISC_ENABLE 1A0 */
    uint64_t tsc_offset;     /* guest TSC = source + tsc_offset (WRMSR TSC adjusts it) */
    uint64_t tsc_deadline;   /* IA32_TSC_DEADLINE 6E0 (mirrored to the LAPIC model) */
    uint64_t mtrr_def_type;  /* IA32_MTRR_DEF_TYPE 2FF */
    uint64_t mtrr_fixed[11]; /* IA32_MTRR_FIX64K_00000 .. FIX4K_F8000 */
    uint64_t mtrr_base[8];   /* IA32_MTRR_PHYSBASE0..7 */
    uint64_t mtrr_mask[8];   /* IA32_MTRR_PHYSMASK0..7 */
};

/* The CPUID feature words that decide what the decoder/executor accept. Filled by
 * cpu_reset() (cpu-sys, cpuid.c) from the model it advertises. */
struct cpu_features {
    uint32_t f1_ecx;  /* CPUID.1:ECX */
    uint32_t f1_edx;  /* CPUID.1:EDX */
    uint32_t f7_ebx;  /* CPUID.(7,0):EBX */
    uint32_t f7_ecx;  /* CPUID.(7,0):ECX */
    uint32_t e1_ecx;  /* CPUID.80000001:ECX */
    uint32_t e1_edx;  /* CPUID.80000001:EDX */
};
#define CPU_F1_ECX_SSE3 (1u << 0)
#define CPU_F1_ECX_SSSE3 (1u << 9)
#define CPU_F1_ECX_CX16 (1u << 13)
#define CPU_F1_ECX_SSE41 (1u << 19)
#define CPU_F1_ECX_SSE42 (1u << 20)
#define CPU_F1_ECX_MOVBE (1u << 22)
#define CPU_F1_ECX_POPCNT (1u << 23)
#define CPU_F1_ECX_XSAVE (1u << 26)
#define CPU_F1_ECX_RDRAND (1u << 30)
#define CPU_F1_EDX_CX8 (1u << 8)
#define CPU_F1_EDX_SEP (1u << 11)
#define CPU_F1_EDX_CMOV (1u << 15)
#define CPU_F1_EDX_CLFSH (1u << 19)
#define CPU_F1_EDX_SSE2 (1u << 26)
#define CPU_F7_EBX_BMI1 (1u << 3)
#define CPU_F7_EBX_BMI2 (1u << 8)
#define CPU_E1_ECX_LAHF (1u << 0)
#define CPU_E1_ECX_LZCNT (1u << 5)
#define CPU_E1_EDX_SYSCALL (1u << 11)
#define CPU_E1_EDX_NX (1u << 20)
#define CPU_E1_EDX_RDTSCP (1u << 27)
#define CPU_E1_EDX_LM (1u << 29)

/* ------------------------------------------------------------------------------------------ */
/* The vCPU.                                                                                   */

/* Derived execution mode (cpu->mode), recomputed by cpu_update_mode(). */
enum {
    CPU_MODE_REAL = 0, /* CR0.PE = 0 */
    CPU_MODE_V86,      /* protected, RFLAGS.VM = 1 */
    CPU_MODE_PROT,     /* protected, legacy (EFER.LMA = 0) */
    CPU_MODE_COMPAT,   /* long mode, CS.L = 0 */
    CPU_MODE_LONG64,   /* long mode, CS.L = 1 */
};

/* Why cpu_run() returned. */
enum cpu_exit_reason {
    CPU_EXIT_NONE = 0,
    CPU_EXIT_ICOUNT,    /* ran max_insns instructions */
    CPU_EXIT_HLT,       /* halted and no interrupt can wake it now */
    CPU_EXIT_KICK,      /* cpu_kick() from another thread */
    CPU_EXIT_SHUTDOWN,  /* triple fault */
    CPU_EXIT_RESET,     /* a system reset request */
    CPU_EXIT_POWEROFF,  /* a power-off request */
    CPU_EXIT_EXCEPTION, /* exit_on_exception set and an exception happened (tests) */
    CPU_EXIT_INTERNAL,  /* engine error: see cpu->error */
    CPU_EXIT_DEBUG,     /* breakpoint/single step for a debugger */
};

/* Interrupt shadow kinds (cpu->intr_shadow). */
#define CPU_SHADOW_STI 0x1u
#define CPU_SHADOW_MOVSS 0x2u

struct cpu_tcache; /* block cache + jump cache, private to exec.c */

struct cpu {
    /* --- integer state (cpu-core) --- */
    uint64_t r[16];      /* RAX..R15 */
    uint64_t rip;        /* during a handler: the NEXT instruction (see top of file) */
    uint64_t insn_rip;   /* the instruction being executed */
    uint64_t rflags;     /* RFLAGS; the arithmetic bits are valid only if cc_op==EFLAGS */
    uint32_t cc_op;      /* enum cpu_cc_op */
    uint64_t cc_dst;     /* lazy flags: result */
    uint64_t cc_src;     /* lazy flags: operand */
    uint64_t cc_src2;    /* lazy flags: carry-in / old value */

    /* --- system state (cpu-sys) --- */
    struct cpu_seg seg[CPU_SEG_COUNT]; /* ES CS SS DS FS GS LDTR TR */
    struct cpu_dtable gdtr;            /* GDTR */
    struct cpu_dtable idtr;            /* IDTR */
    uint64_t cr0, cr2, cr3, cr4, cr8;  /* control registers (CR8 = TPR[7:4]) */
    uint64_t efer;                     /* IA32_EFER C000_0080 */
    uint64_t dr[8];                    /* DR0-DR7 (DR4/5 alias 6/7 when !CR4.DE) */
    uint64_t xcr0;                     /* XCR0 (XSAVE not advertised: stays 1) */
    struct cpu_msrs msr;               /* the other MSRs */
    struct cpu_features feat;          /* what CPUID advertises */
    uint64_t a20_mask;                 /* ~0, or ~(1 << 20) with the A20 gate off */

    /* --- derived mode bits (cpu_update_mode) --- */
    uint8_t cpl;        /* current privilege level (set by cpu-sys on CS loads) */
    uint8_t mode;       /* CPU_MODE_* */
    uint8_t code_mode;  /* X86_MODE_16/32/64: the decoder mode */
    uint8_t stack_size; /* 2, 4 or 8: SS.B / 64-bit mode */
    uint8_t mmu_idx;    /* CPU_MMU_USER when cpl == 3 */

    /* --- x87/SSE (cpu-fpu) --- */
    struct cpu_fpu fpu;

    /* --- events --- */
    bool halted;           /* HLT executed, waiting for an interrupt */
    uint8_t intr_shadow;   /* CPU_SHADOW_*: no interrupts before the next instruction ends */
    bool nmi_blocked;      /* NMI delivered, blocked until IRET */
    int exc_vector;        /* exception being raised (cpu_raise -> loop), -1 none */
    uint32_t exc_error;    /* its error code (CPU_NO_ERROR when none applies) */
    int deliver_depth;     /* cpu-sys: nesting of deliveries (for #DF / triple fault) */
    int deliver_vector;    /* cpu-sys: vector whose delivery is in progress, -1 none */
    jmp_buf exc_jmp;       /* cpu_raise() longjmps here (set by cpu_run) */
    bool exc_jmp_valid;    /* exc_jmp is armed */
    bool exit_on_exception; /* tests: return CPU_EXIT_EXCEPTION instead of delivering */
    int exit_request;      /* atomic: cpu_kick() sets it, the loop checks between blocks */
    /* translated code (jit.c) runs chained blocks while these allow: */
    int32_t jit_budget;      /* atomic: blocks it may still run; 0 from kicks, hints, DMA */
    bool jit_flat32;         /* 32-bit code with flat CS/DS/ES/SS: may run translated */
    void *jit_last;          /* the block that ran last (struct cpu_block) */
    uint64_t jit_last_rip;   /* its first RIP */
    int exit_reason;       /* enum cpu_exit_reason requested by cpu-sys (cpu_request_exit) */
    bool block_stop;       /* end the current block after this instruction (SMC, mode) */
    bool keep_flags;       /* block runs cut short: X86_F_NOFLAGS hints do not hold */
    char error[160];       /* CPU_EXIT_INTERNAL detail */

    /* --- machine --- */
    struct guestmem *mem;        /* guest physical RAM/ROM */
    struct bus *pio;             /* port I/O */
    struct bus *mmio;            /* MMIO (non-RAM physical addresses) */
    const struct accel_intc *intc; /* LAPIC/PIC glue; NULL in unit tests */
    struct timerq *timerq;       /* guest clock (deterministic mode: advanced by icount) */
    bool deterministic;          /* TSC and timers follow the instruction counter */
    uint64_t tsc_hz;             /* advertised TSC frequency */
    uint64_t icount;             /* instructions retired (approximate at block level) */
    int index;                   /* vCPU index (APIC ID) */
    void *accel;                 /* back pointer for soft_accel.c */

    /* --- caches (cpu-core) --- */
    struct cpu_tlb_entry tlb[CPU_MMU_COUNT][CPU_TLB_SIZE]; /* soft TLB */
    struct cpu_tcache *tcache;   /* decoded blocks */

    /* --- cpu-sys private: when cpu_check_interrupts polls cpu->intc --- */
    int intr_hint;               /* atomic: poll at the next block (kick, pending, IF) */
    bool intr_wait_if;           /* pending while RFLAGS.IF was clear: poll once IF is set */
    uint8_t intr_poll_count;     /* blocks since the last poll (poll every 256 anyway) */
};

#define CPU_NO_ERROR 0xffffffffu

/* ------------------------------------------------------------------------------------------ */
/* cpu-core API (exec.c, flags.c, mem.c).                                                      */

/* Allocate a vCPU over guest memory and buses (any may be NULL in tests), reset it with
 * cpu_reset(). Returns NULL when out of memory. */
struct cpu *cpu_new(struct guestmem *mem, struct bus *pio, struct bus *mmio);
void cpu_free(struct cpu *cpu);
/* Run up to max_insns instructions (0: no limit) until an event. Returns enum
 * cpu_exit_reason. */
int cpu_run(struct cpu *cpu, uint64_t max_insns);
/* Make cpu_run return CPU_EXIT_KICK soon; callable from any thread. */
void cpu_kick(struct cpu *cpu);
/* cpu-sys: ask the loop to stop with this reason after the current instruction. */
void cpu_request_exit(struct cpu *cpu, int reason);
/* Recompute mode, code_mode, stack_size, mmu_idx and segment caches from CR0, EFER,
 * RFLAGS.VM, CS, SS and cpl. */
void cpu_update_mode(struct cpu *cpu);
/* Set a segment register's visible and hidden parts (cpu-sys does the checks first). */
void cpu_set_seg(struct cpu *cpu, int seg, uint16_t sel, uint64_t base, uint32_t limit,
                 uint32_t attr);
/* Throw away every decoded block (e.g. after a snapshot load). */
void cpu_tcache_flush(struct cpu *cpu);

/* Translator for hot 64-bit blocks (jit.c): code buffer per block cache. A compiled block
 * runs all n records and returns how many ran (fewer when a handler ended the block). */
struct cpu_jit;
typedef uint32_t (*cpu_jit_fn)(struct cpu *cpu);
struct cpu_jit *cpu_jit_new(void); /* NULL: no translator on this host */
void cpu_jit_free(struct cpu_jit *j);
void cpu_jit_reset(struct cpu_jit *j);
/* Where a block keeps its successor cache, so that translated code can enter the next
 * translated block directly (offsets into the block cache's struct cpu_block). */
struct cpu_jit_chain {
    const void *block;
    int32_t off_rip[2], off_next[2]; /* successor RIPs and block pointers */
    int32_t off_valid, off_jit;      /* bool valid, cpu_jit_fn jit */
    int32_t off_phys;                /* uint64_t phys */
    unsigned page_off;               /* the block's offset in its page */
    unsigned key;                    /* decoder mode: X86_MODE_64, or X86_MODE_32 (flat) */
    uint64_t rip;                    /* a linear RIP of the block (profiling names) */
    uint32_t f1_ecx;                 /* the guest's CPUID.1:ECX (which SSE levels exist) */
    bool chainable;                  /* the block may be followed without the loop */
    /* the jump cache (by linear RIP) for successors in other pages */
    const void *jc;
    unsigned jc_bits;
    int32_t jc_entry_size, off_jc_lin, off_jc_key, off_jc_b;
};
/* *full: the buffer is full (flush the cache and retry later). */
cpu_jit_fn cpu_jit_compile(struct cpu_jit *j, const struct x86_insn *insn, unsigned n,
                           const struct cpu_jit_chain *ch, bool *full);
/* All vCPUs of one VM must share one block cache (a store by one vCPU must drop code that
 * another translated): call for every vCPU after the first, before it runs. Requires that
 * only one vCPU executes at a time (the soft engine's per-VM lock). 0 or -ENOSPC. */
#define CPU_TCACHE_MAX_CPUS 64
int cpu_tcache_share(struct cpu *cpu, struct cpu *owner);
/* Guest RAM [pa, pa+len) was written by another thread (device DMA through host pointers):
 * callable from any thread; the blocks translated from it are dropped before the vCPU runs
 * its next block. Without this, code loaded by DMA into a page that once held other code
 * would run stale translations. */
void cpu_tcache_note_write(struct cpu *cpu, uint64_t pa, uint64_t len);
/* Physical range [pa, pa+len) was written by someone else (DMA, loader, another vCPU):
 * drop the blocks translated from it. */
void cpu_tcache_invalidate_phys(struct cpu *cpu, uint64_t pa, uint64_t len);

/* RFLAGS with the lazy arithmetic flags folded in / replaced (all bits, no privilege
 * masking: callers apply the IOPL/IF/VM rules). cpu_set_rflags forces bit 1. */
uint64_t cpu_get_rflags(struct cpu *cpu);
void cpu_set_rflags(struct cpu *cpu, uint64_t val);
/* Materialise the lazy flags into cpu->rflags (cc_op becomes EFLAGS). */
void cpu_flags_sync(struct cpu *cpu);
bool cpu_get_cf(struct cpu *cpu);
/* Condition code 0..15 (the low nibble of Jcc/SETcc/CMOVcc). */
bool cpu_cond(struct cpu *cpu, unsigned cc);

/* Exceptions: longjmp to the loop. error_code CPU_NO_ERROR when the vector has none. */
_Noreturn void cpu_raise(struct cpu *cpu, int vector, uint32_t error_code);
/* #PF: sets CR2 = lin. */
_Noreturn void cpu_raise_pf(struct cpu *cpu, uint64_t lin, uint32_t error_code);
#define cpu_raise_ud(c) cpu_raise((c), X86_EXC_UD, CPU_NO_ERROR)
#define cpu_raise_gp0(c) cpu_raise((c), X86_EXC_GP, 0)

/* ---- memory access ---- */

/* Slow paths (mem.c). lin is linear; mmu is CPU_MMU_*. Handle TLB misses (cpu_tlb_fill),
 * MMIO, page-crossing accesses, code pages and ROM. size 1, 2, 4 or 8. */
uint64_t cpu_ld_slow(struct cpu *cpu, uint64_t lin, unsigned size, int mmu);
void cpu_st_slow(struct cpu *cpu, uint64_t lin, unsigned size, uint64_t val, int mmu);
/* Segmentation slow path: expand-down, null/unusable, type and limit violations (raises
 * #GP(0) or #SS(0)); returns the linear address when the access is allowed. */
uint64_t cpu_seg_lin_slow(struct cpu *cpu, int seg, uint64_t off, unsigned size, int acc);
/* 64-bit mode non-canonical address: #GP(0) or #SS(0) when seg is SS. */
_Noreturn void cpu_raise_noncanonical(struct cpu *cpu, int seg);

/* Copy to/from guest linear memory (any length; faults as a normal access would, before
 * anything is written when the whole range is checked first: cpu_probe_lin). */
void cpu_read_lin(struct cpu *cpu, uint64_t lin, void *buf, size_t len, int mmu);
void cpu_write_lin(struct cpu *cpu, uint64_t lin, const void *buf, size_t len, int mmu);
/* Fault now (#PF) unless [lin, lin+len) is accessible for acc. */
void cpu_probe_lin(struct cpu *cpu, uint64_t lin, size_t len, int acc, int mmu);
/* Host pointer for an access that stays within one RAM page, or NULL (MMIO, code page for
 * writes, ROM for writes, page crossing); faults like an access. For LOCKed RMW. */
void *cpu_lin_ptr(struct cpu *cpu, uint64_t lin, unsigned size, int acc, int mmu);

/* Physical access (page walks, descriptor A bits, DMA-like helpers): RAM via guestmem,
 * otherwise the MMIO bus. Stores invalidate translated code. */
uint64_t cpu_ld_phys(struct cpu *cpu, uint64_t pa, unsigned size);
void cpu_st_phys(struct cpu *cpu, uint64_t pa, unsigned size, uint64_t val);
/* Host pointer for an aligned RAM qword/dword (atomic A/D updates), or NULL. Marks nothing:
 * callers that write through it call cpu_tcache_invalidate_phys if the page may hold code. */
void *cpu_phys_ptr(struct cpu *cpu, uint64_t pa, unsigned size);
/* Whether a physical page holds translated code. */
bool cpu_page_has_code(struct cpu *cpu, uint64_t pa);

CPU_INLINE bool cpu_is_canonical(uint64_t lin)
{
    return (uint64_t)((int64_t)(lin << 16) >> 16) == lin; /* shift unsigned: no UB */
}

/* Segmented offset -> linear address, with the access checks. size in bytes. */
CPU_INLINE uint64_t cpu_seg_lin(struct cpu *cpu, int seg, uint64_t off, unsigned size,
                                   int acc)
{
    const struct cpu_seg *s = &cpu->seg[seg];
    if (cpu->mode == CPU_MODE_LONG64) {
        uint64_t lin = off + (seg >= CPU_SEG_FS ? s->base : 0);
        if (CPU_UNLIKELY(!cpu_is_canonical(lin) || !cpu_is_canonical(lin + size - 1))) {
            cpu_raise_noncanonical(cpu, seg);
        }
        return lin;
    }
    unsigned need = acc == CPU_ACC_WRITE ? CPU_SEGC_WRITE : CPU_SEGC_READ;
    if (CPU_LIKELY((s->acc & need) && off + size - 1 <= s->limit)) {
        return (uint32_t)(s->base + off);
    }
    return cpu_seg_lin_slow(cpu, seg, off, size, acc);
}

/* TLB fast path: host pointer or NULL. */
CPU_INLINE void *cpu_tlb_probe(struct cpu *cpu, uint64_t lin, unsigned size, int acc,
                                  int mmu)
{
    const struct cpu_tlb_entry *e = &cpu->tlb[mmu][(lin >> 12) & (CPU_TLB_SIZE - 1)];
    uint64_t tag = acc == CPU_ACC_WRITE ? e->tag_write
                   : acc == CPU_ACC_READ ? e->tag_read : e->tag_exec;
    if (CPU_LIKELY(tag == (lin & CPU_PAGE_MASK) && (lin & 0xfff) + size <= 0x1000)) {
        return (void *)(e->addend + (uintptr_t)lin);
    }
    return NULL;
}

#define CPU_DEFINE_LIN_ACCESS(bits, type)                                                      \
    CPU_INLINE type cpu_ldlin##bits(struct cpu *cpu, uint64_t lin, int mmu)               \
    {                                                                                          \
        void *p = cpu_tlb_probe(cpu, lin, sizeof(type), CPU_ACC_READ, mmu);                   \
        if (CPU_LIKELY(p != NULL)) {                                                           \
            type v;                                                                            \
            memcpy(&v, p, sizeof(v));                                                          \
            return v;                                                                          \
        }                                                                                      \
        return (type)cpu_ld_slow(cpu, lin, sizeof(type), mmu);                                 \
    }                                                                                          \
    CPU_INLINE void cpu_stlin##bits(struct cpu *cpu, uint64_t lin, type v, int mmu)      \
    {                                                                                          \
        void *p = cpu_tlb_probe(cpu, lin, sizeof(type), CPU_ACC_WRITE, mmu);                  \
        if (CPU_LIKELY(p != NULL)) {                                                           \
            memcpy(p, &v, sizeof(v));                                                          \
            return;                                                                            \
        }                                                                                      \
        cpu_st_slow(cpu, lin, sizeof(type), v, mmu);                                           \
    }                                                                                          \
    CPU_INLINE type cpu_ld##bits(struct cpu *cpu, int seg, uint64_t off)                  \
    {                                                                                          \
        uint64_t lin = cpu_seg_lin(cpu, seg, off, sizeof(type), CPU_ACC_READ);                \
        return cpu_ldlin##bits(cpu, lin, cpu->mmu_idx);                                        \
    }                                                                                          \
    CPU_INLINE void cpu_st##bits(struct cpu *cpu, int seg, uint64_t off, type v)          \
    {                                                                                          \
        uint64_t lin = cpu_seg_lin(cpu, seg, off, sizeof(type), CPU_ACC_WRITE);               \
        cpu_stlin##bits(cpu, lin, v, cpu->mmu_idx);                                            \
    }

/* cpu_ld8/16/32/64(cpu, seg, off), cpu_st8/...(cpu, seg, off, v): segmented accesses at the
 * current privilege. cpu_ldlinNN/cpu_stlinNN(cpu, lin, [v,] mmu): linear, chosen MMU index
 * (CPU_MMU_SUP for implicit supervisor accesses: GDT/LDT/IDT/TSS). */
CPU_DEFINE_LIN_ACCESS(8, uint8_t)
CPU_DEFINE_LIN_ACCESS(16, uint16_t)
CPU_DEFINE_LIN_ACCESS(32, uint32_t)
CPU_DEFINE_LIN_ACCESS(64, uint64_t)

/* Size-generic segmented access (size 1, 2, 4, 8). */
CPU_INLINE uint64_t cpu_ld(struct cpu *cpu, int seg, uint64_t off, unsigned size)
{
    switch (size) {
    case 1:
        return cpu_ld8(cpu, seg, off);
    case 2:
        return cpu_ld16(cpu, seg, off);
    case 4:
        return cpu_ld32(cpu, seg, off);
    default:
        return cpu_ld64(cpu, seg, off);
    }
}

CPU_INLINE void cpu_st(struct cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        cpu_st8(cpu, seg, off, (uint8_t)v);
        break;
    case 2:
        cpu_st16(cpu, seg, off, (uint16_t)v);
        break;
    case 4:
        cpu_st32(cpu, seg, off, (uint32_t)v);
        break;
    default:
        cpu_st64(cpu, seg, off, v);
        break;
    }
}

/* 16-byte segmented access for SSE (no alignment check: callers check for MOVAPS etc.). */
void cpu_ld128(struct cpu *cpu, int seg, uint64_t off, void *dst16);
void cpu_st128(struct cpu *cpu, int seg, uint64_t off, const void *src16);
/* Any-length segmented copies (FXSAVE area, descriptor pairs). All checks are done for the
 * whole range before the first byte is stored. */
void cpu_ld_buf(struct cpu *cpu, int seg, uint64_t off, void *dst, size_t len);
void cpu_st_buf(struct cpu *cpu, int seg, uint64_t off, const void *src, size_t len);

/* ---- operands ---- */

CPU_INLINE uint64_t cpu_addr_mask(unsigned addrsize)
{
    return addrsize == 8 ? ~0ull : addrsize == 4 ? 0xffffffffull : 0xffffull;
}

/* Effective address (offset within in->seg) of the ModRM memory operand. */
CPU_INLINE uint64_t cpu_insn_ea(const struct cpu *cpu, const struct x86_insn *in)
{
    uint64_t ea = (uint64_t)(int64_t)in->disp;
    if (in->ea_base == X86_EA_RIP) {
        return cpu->rip + ea; /* cpu->rip is the next instruction during a handler */
    }
    if (in->ea_base != X86_EA_NONE) {
        ea += cpu->r[in->ea_base];
    }
    if (in->ea_index != X86_EA_NONE) {
        ea += cpu->r[in->ea_index] << in->ea_scale;
    }
    return ea & cpu_addr_mask(in->addrsize);
}

/* Register read/write by size. Byte registers 4-7 are AH/CH/DH/BH unless a REX prefix was
 * present (then SPL/BPL/SIL/DIL). A 32-bit write zero-extends to 64 bits. */
CPU_INLINE uint64_t cpu_get_reg(const struct cpu *cpu, unsigned n, unsigned size, bool rex)
{
    switch (size) {
    case 1:
        if (!rex && n >= 4 && n < 8) {
            return (cpu->r[n - 4] >> 8) & 0xff;
        }
        return cpu->r[n] & 0xff;
    case 2:
        return cpu->r[n] & 0xffff;
    case 4:
        return cpu->r[n] & 0xffffffffu;
    default:
        return cpu->r[n];
    }
}

CPU_INLINE void cpu_set_reg(struct cpu *cpu, unsigned n, unsigned size, bool rex,
                               uint64_t v)
{
    switch (size) {
    case 1:
        if (!rex && n >= 4 && n < 8) {
            cpu->r[n - 4] = (cpu->r[n - 4] & ~0xff00ull) | ((v & 0xff) << 8);
        } else {
            cpu->r[n] = (cpu->r[n] & ~0xffull) | (v & 0xff);
        }
        break;
    case 2:
        cpu->r[n] = (cpu->r[n] & ~0xffffull) | (v & 0xffff);
        break;
    case 4:
        cpu->r[n] = v & 0xffffffffu;
        break;
    default:
        cpu->r[n] = v;
        break;
    }
}

/* The ModRM r/m operand (register or memory) of the given size. */
CPU_INLINE uint64_t cpu_read_rm(struct cpu *cpu, const struct x86_insn *in, unsigned size)
{
    if (in->mod == 3) {
        return cpu_get_reg(cpu, in->rm, size, in->rex != 0);
    }
    return cpu_ld(cpu, in->seg, cpu_insn_ea(cpu, in), size);
}

CPU_INLINE void cpu_write_rm(struct cpu *cpu, const struct x86_insn *in, unsigned size,
                                uint64_t v)
{
    if (in->mod == 3) {
        cpu_set_reg(cpu, in->rm, size, in->rex != 0, v);
    } else {
        cpu_st(cpu, in->seg, cpu_insn_ea(cpu, in), size, v);
    }
}

/* Stack helpers at the current stack size (SS.B / 64-bit), for cpu-sys too. size is the
 * operand size of the push/pop (2, 4 or 8). Faults leave RSP unchanged. */
void cpu_push(struct cpu *cpu, unsigned size, uint64_t val);
uint64_t cpu_pop(struct cpu *cpu, unsigned size);

/* ------------------------------------------------------------------------------------------ */
/* cpu-sys API (implemented by cpu-sys; placeholder: sys_placeholder.c).                       */

/* Power-on/RESET state (SDM vol. 3, 9.1.1) incl. CPUID features and cpu_fpu_reset(). */
void cpu_reset(struct cpu *cpu);
/* Deliver an exception: called by the loop after cpu_raise (cpu->rip = faulting insn;
 * for traps the handler has arranged rip itself). Handles #DF and triple fault
 * (cpu_request_exit(CPU_EXIT_SHUTDOWN)). May itself fault (longjmp to the loop again). */
void cpu_deliver_exception(struct cpu *cpu, int vector, uint32_t error_code);
/* Between blocks: NMI / external interrupt through cpu->intc when allowed (IF, shadow,
 * nmi_blocked); wakes a halted CPU. */
void cpu_check_interrupts(struct cpu *cpu);

/* MMU: translate lin for acc at mmu, fill the TLB entry for that page and return it, or
 * raise #PF. a20/paging/MMIO/ROM/code-page flags as described at struct cpu_tlb_entry
 * (use cpu_page_has_code() for CPU_TLB_CODE). */
struct cpu_tlb_entry *cpu_tlb_fill(struct cpu *cpu, uint64_t lin, int acc, int mmu);
/* Translate without side effects (debugger, loaders): 0 or -EFAULT. */
int cpu_mmu_translate(struct cpu *cpu, uint64_t lin, int acc, int mmu, uint64_t *pa);
/* Flush the whole TLB (keep_global: CR3 reload with CR4.PGE), or one page (INVLPG). */
void cpu_tlb_flush(struct cpu *cpu, bool keep_global);
void cpu_tlb_flush_page(struct cpu *cpu, uint64_t lin);

/* Segments and control transfers. opsize = operand size in bytes. Each raises on error. */
void cpu_load_seg(struct cpu *cpu, int seg, uint16_t sel); /* MOV/POP Sreg, LDS.. */
void cpu_far_jmp(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
/* Return address is cpu->rip (the next instruction). */
void cpu_far_call(struct cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize);
void cpu_far_ret(struct cpu *cpu, unsigned opsize, uint16_t imm);
void cpu_iret(struct cpu *cpu, unsigned opsize);

/* Software interrupts; the pushed return address is cpu->rip (the next instruction). */
enum { CPU_INT_N = 0, CPU_INT_3, CPU_INT_O, CPU_INT_ICEBP };
void cpu_int_soft(struct cpu *cpu, int vector, int kind);

/* Port I/O with IOPL / TSS bitmap checks (#GP), dispatched to cpu->pio. size 1, 2, 4. */
uint32_t cpu_in(struct cpu *cpu, uint16_t port, unsigned size);
void cpu_out(struct cpu *cpu, uint16_t port, unsigned size, uint32_t val);
/* Only the permission check (for INS/OUTS loops): raises #GP(0) when denied. */
void cpu_io_check(struct cpu *cpu, uint16_t port, unsigned size);

/* Whole-instruction handlers for system opcodes; the decoder points at them directly. */
void cpu_sys_grp6(struct cpu *cpu, const struct x86_insn *in);    /* 0F 00 SLDT..VERW */
void cpu_sys_grp7(struct cpu *cpu, const struct x86_insn *in);    /* 0F 01 LGDT..RDTSCP */
void cpu_sys_lar(struct cpu *cpu, const struct x86_insn *in);     /* 0F 02 */
void cpu_sys_lsl(struct cpu *cpu, const struct x86_insn *in);     /* 0F 03 */
void cpu_sys_clts(struct cpu *cpu, const struct x86_insn *in);    /* 0F 06 */
void cpu_sys_syscall(struct cpu *cpu, const struct x86_insn *in); /* 0F 05 */
void cpu_sys_sysret(struct cpu *cpu, const struct x86_insn *in);  /* 0F 07 */
void cpu_sys_invd(struct cpu *cpu, const struct x86_insn *in);    /* 0F 08 INVD, 0F 09 WBINVD */
void cpu_sys_mov_cr(struct cpu *cpu, const struct x86_insn *in);  /* 0F 20, 0F 22 */
void cpu_sys_mov_dr(struct cpu *cpu, const struct x86_insn *in);  /* 0F 21, 0F 23 */
void cpu_sys_wrmsr(struct cpu *cpu, const struct x86_insn *in);   /* 0F 30 */
void cpu_sys_rdtsc(struct cpu *cpu, const struct x86_insn *in);   /* 0F 31 */
void cpu_sys_rdmsr(struct cpu *cpu, const struct x86_insn *in);   /* 0F 32 */
void cpu_sys_rdpmc(struct cpu *cpu, const struct x86_insn *in);   /* 0F 33 */
void cpu_sys_sysenter(struct cpu *cpu, const struct x86_insn *in); /* 0F 34 */
void cpu_sys_sysexit(struct cpu *cpu, const struct x86_insn *in); /* 0F 35 */
void cpu_sys_cpuid(struct cpu *cpu, const struct x86_insn *in);   /* 0F A2 */
void cpu_sys_hlt(struct cpu *cpu, const struct x86_insn *in);     /* F4 */
void cpu_sys_arpl(struct cpu *cpu, const struct x86_insn *in);    /* 63 outside 64-bit mode */

/* ---- cpu-sys additions below this line ---- */

/* cpu_tlb_entry.global as cpu-sys fills it: bit 7 = global (PTE.G with CR4.PGE), low bits =
 * the page size shift (12, 21, 22, 30) so INVLPG drops every 4 KiB piece of a large page. */
#define CPU_TLB_G_GLOBAL 0x80u
#define CPU_TLB_G_SHIFT 0x3fu

/* MSR access without privilege checks (RDMSR/WRMSR after their checks, accel get/set_msr).
 * 0, or -EINVAL for an unknown MSR / a value the CPU refuses (the caller raises #GP(0)). */
int cpu_msr_read(struct cpu *cpu, uint32_t index, uint64_t *val);
int cpu_msr_write(struct cpu *cpu, uint32_t index, uint64_t val);
/* The CPUID model: leaf/subleaf -> eax, ebx, ecx, edx (out[4]). */
void cpu_cpuid_query(struct cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
/* Fill cpu->feat from the model (called by cpu_reset). */
void cpu_cpuid_init_features(struct cpu *cpu);
/* Guest TSC now (host CLOCK_MONOTONIC scaled to cpu->tsc_hz, or icount when deterministic,
 * plus msr.tsc_offset). */
uint64_t cpu_tsc_read(struct cpu *cpu);
/* Number of vCPUs of the machine this vCPU belongs to (1 without soft_accel: unit tests). */
int cpu_sys_ncpus(const struct cpu *cpu);
/* MOV to/from CRn with the checks (0, -1: #GP, -2: no such register) and mode switching. */
int cpu_sys_write_cr(struct cpu *cpu, unsigned n, uint64_t val);
uint64_t cpu_sys_read_cr(struct cpu *cpu, unsigned n);
/* Make the next cpu_check_interrupts poll cpu->intc (any thread: soft_accel's kick). */
void cpu_sys_intr_hint(struct cpu *cpu);
/* Advertised TSC frequency when cpu->tsc_hz is 0. */
#define CPU_SYS_DEFAULT_TSC_HZ 2000000000ull

/* ------------------------------------------------------------------------------------------ */
/* cpu-fpu API (implemented by cpu-fpu; placeholder: fpu_placeholder.c). Each entry checks
 * CR0.EM/TS/CR4.OSFXSR itself and raises #NM/#UD/#GP/#MF/#XM as the SDM says. */

/* FNINIT + MXCSR=1F80 + XMM zeroed (power-on). */
void cpu_fpu_reset(struct cpu *cpu);
void cpu_exec_x87(struct cpu *cpu, const struct x86_insn *in);   /* D8-DF (op, modrm) */
void cpu_exec_fwait(struct cpu *cpu, const struct x86_insn *in); /* 9B */
/* 0F map MMX/SSE opcodes: 10-17, 28-2F, 50-7F (77 is EMMS), C2, C4-C6, D0-FE; in->simd
 * holds the mandatory prefix. */
void cpu_exec_sse(struct cpu *cpu, const struct x86_insn *in);
void cpu_exec_sse38(struct cpu *cpu, const struct x86_insn *in); /* 0F 38 map (not MOVBE) */
void cpu_exec_sse3a(struct cpu *cpu, const struct x86_insn *in); /* 0F 3A map */
/* 0F AE with a memory operand, /0 FXSAVE /1 FXRSTOR /2 LDMXCSR /3 STMXCSR (/4-/7 are
 * cpu-core: XSAVE* #UD, CLFLUSH; register forms are the fences). REX.W: 64-bit layout. */
void cpu_exec_fxsave(struct cpu *cpu, const struct x86_insn *in);
void cpu_exec_fxrstor(struct cpu *cpu, const struct x86_insn *in);
void cpu_exec_ldmxcsr(struct cpu *cpu, const struct x86_insn *in);
void cpu_exec_stmxcsr(struct cpu *cpu, const struct x86_insn *in);

/* ---- cpu-fpu additions below this line ---- */

/* MXCSR bits (SDM vol. 1, 10.2.3). MXCSR_MASK is what FXSAVE reports: DAZ is supported. */
#define CPU_MXCSR_FLAGS 0x003fu
#define CPU_MXCSR_DAZ 0x0040u
#define CPU_MXCSR_MASKS 0x1f80u
#define CPU_MXCSR_RC 0x6000u
#define CPU_MXCSR_FZ 0x8000u
#define CPU_MXCSR_MASK 0xffffu
/* x87 status word bits (SDM vol. 1, 8.1.3). */
#define CPU_FSW_IE 0x0001u
#define CPU_FSW_SF 0x0040u
#define CPU_FSW_ES 0x0080u
#define CPU_FSW_C0 0x0100u
#define CPU_FSW_C1 0x0200u
#define CPU_FSW_C2 0x0400u
#define CPU_FSW_C3 0x4000u
#define CPU_FSW_B 0x8000u

/* Shared by x87.c, sse.c and fxsave.c. */
/* FNINIT: control/status/tag words and the last-instruction pointers. */
void cpu_fpu_init_x87(struct cpu *cpu);
/* Status word with TOP merged in (what FNSTSW stores), and its inverse. */
uint16_t cpu_fpu_get_fsw(const struct cpu *cpu);
void cpu_fpu_set_fsw(struct cpu *cpu, uint16_t fsw);
/* The SSE fault rules: CR0.EM or !CR4.OSFXSR -> #UD, CR0.TS -> #NM. */
void cpu_fpu_check_sse(struct cpu *cpu);
/* The MMX fault rules: CR0.EM -> #UD, CR0.TS -> #NM, pending x87 exception -> #MF. */
void cpu_fpu_check_mmx(struct cpu *cpu);
/* Pending unmasked x87 exception with CR0.NE: raise #MF (waiting instructions, FWAIT). */
void cpu_fpu_check_pending(struct cpu *cpu);

#endif
