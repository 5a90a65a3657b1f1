/* Private helpers shared by the cpu-sys files (seg.c, intr.c, sysinsn.c, msr.c, cpuid.c).
 * Not for the rest of core/cpu: everything public is in cpu.h. */
#ifndef LODGE_CORE_CPU_SYSINT_H
#define LODGE_CORE_CPU_SYSINT_H

#include "core/cpu/cpu.h"

#define SYS_TAG "cpu"

/* A segment descriptor as read from the GDT/LDT (SDM vol. 3, 3.4.5). */
struct sys_desc {
    uint32_t lo, hi;  /* raw low and high dwords */
    uint32_t hi2;     /* bits 63:32 of a 16-byte system descriptor (long mode), else 0 */
    uint64_t base;    /* base (with hi2 for 16-byte system descriptors) */
    uint32_t limit;   /* byte-granular limit */
    uint32_t attr;    /* CPU_SEGA_* (VMX access-rights layout) */
};

static inline unsigned sys_desc_dpl(const struct sys_desc *d)
{
    return (d->attr & CPU_SEGA_DPL) >> CPU_SEGA_DPL_SHIFT;
}

static inline unsigned sys_desc_type(const struct sys_desc *d)
{
    return d->attr & CPU_SEGA_TYPE;
}

static inline bool sys_is_long(const struct cpu *cpu)
{
    return (cpu->efer & CPU_EFER_LMA) != 0;
}

static inline bool sys_is_pmode(const struct cpu *cpu)
{
    return cpu->mode != CPU_MODE_REAL && cpu->mode != CPU_MODE_V86;
}

/* Decode the raw dwords into base/limit/attr. */
void sys_desc_decode(struct sys_desc *d, uint32_t lo, uint32_t hi);
/* Read the descriptor for sel (8 bytes, or 16 when wide). false when sel is outside the
 * table (or in an unusable LDT); may #PF. */
bool sys_desc_read(struct cpu *cpu, uint16_t sel, struct sys_desc *d, bool wide);
/* Like sys_desc_read but raises vec(sel & ~3 | ext) when outside the table. */
void sys_desc_fetch(struct cpu *cpu, uint16_t sel, struct sys_desc *d, bool wide, int vec,
                    uint32_t ext);
/* Set the accessed bit of a code/data descriptor in memory. */
void sys_desc_set_accessed(struct cpu *cpu, uint16_t sel, struct sys_desc *d);
/* Load CS (RPL forced to cpl) and set the CPL. */
void sys_set_cs(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, unsigned cpl);
/* Load SS from a checked descriptor, or a null SS for 64-bit mode with the given RPL. */
void sys_set_ss(struct cpu *cpu, uint16_t sel, const struct sys_desc *d);
void sys_set_null_ss(struct cpu *cpu, unsigned rpl);
/* After a return to an outer privilege level: data segments the new CPL may not use become
 * null (SDM vol. 3, RET / IRET). */
void sys_null_outer_segs(struct cpu *cpu);
/* Check a descriptor as the new SS for privilege rpl (SDM: SS loads). Raises vec(sel). */
void sys_check_ss(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, unsigned rpl,
                  int vec, uint32_t ext);

/* A stack being built (delivery, far CALL) or read (IRET, far RET) before commit. */
struct sys_stack {
    uint64_t base; /* SS base (0 in 64-bit mode) */
    uint64_t sp;   /* current stack pointer (full register value) */
    uint64_t mask; /* 0xffff, 0xffffffff or ~0 */
    int mmu;       /* CPU_MMU_* of the accesses */
    bool lin32;    /* linear addresses wrap at 4 GiB (not long mode) */
};

void sys_stack_init(struct cpu *cpu, struct sys_stack *st, uint64_t base, uint64_t sp,
                    unsigned size, int mmu);
void sys_push(struct cpu *cpu, struct sys_stack *st, unsigned size, uint64_t v);
uint64_t sys_pop(struct cpu *cpu, struct sys_stack *st, unsigned size);

/* TSS helpers (SDM vol. 3, 7.2.1 / 7.7). */
uint64_t sys_tss_read(struct cpu *cpu, uint32_t off, unsigned size);

/* Task switches to a 32-bit TSS (SDM vol. 3, 7.3). sel/d name the new TSS, already checked
 * by the caller for the JMP/CALL/INT/IRET-specific rules (DPL, busy bit); this checks
 * presence and limit, saves the old task, loads the new one, and for SYS_TS_INT pushes
 * err (unless CPU_NO_ERROR) on the new stack. ext is the EXT bit of its error codes. */
enum { SYS_TS_JMP = 0, SYS_TS_CALL, SYS_TS_IRET, SYS_TS_INT };
void sys_task_switch(struct cpu *cpu, uint16_t sel, const struct sys_desc *d, int reason,
                     uint32_t err, uint32_t ext);

/* RFLAGS write after IRET/POPF-like rules: cpl/iopl decide which bits change. */
void sys_write_rflags(struct cpu *cpu, uint64_t val, unsigned opsize);

/* Exception delivery core: vector, error code (CPU_NO_ERROR: none), kind. */
enum { SYS_EV_EXC = 0, SYS_EV_EXT, SYS_EV_SOFT, SYS_EV_NMI };
void sys_deliver(struct cpu *cpu, int vector, uint32_t error_code, int kind);

#endif
