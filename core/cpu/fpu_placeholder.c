/* Placeholder for the cpu-fpu part of the soft CPU (see core/cpu/cpu.h): power-on state and
 * #UD for every x87/SSE entry. cpu-fpu replaces this file with x87.c, sse*.c, fxsave.c and
 * removes it from meson.build. */
#include "core/cpu/cpu.h"

void cpu_fpu_reset(struct cpu *cpu)
{
    memset(&cpu->fpu, 0, sizeof(cpu->fpu));
    cpu->fpu.fcw = 0x037f;
    cpu->fpu.ftw = 0xffff;
    cpu->fpu.mxcsr = 0x1f80;
}

#define FPU_UD(name)                                                                           \
    void name(struct cpu *cpu, const struct x86_insn *in)                                     \
    {                                                                                          \
        cpu_raise_ud(cpu);                                                                     \
    }

FPU_UD(cpu_exec_x87)
FPU_UD(cpu_exec_fwait)
FPU_UD(cpu_exec_sse)
FPU_UD(cpu_exec_sse38)
FPU_UD(cpu_exec_sse3a)
FPU_UD(cpu_exec_fxsave)
FPU_UD(cpu_exec_fxrstor)
FPU_UD(cpu_exec_ldmxcsr)
FPU_UD(cpu_exec_stmxcsr)
