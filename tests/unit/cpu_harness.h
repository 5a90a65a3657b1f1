/* A small harness for soft-CPU tests: one vCPU over a guestmem with flat state, so byte
 * sequences can be run directly. Shared by test_cpu_*.c and the oracle (tests/cpu/).
 *
 *   struct cpu_harness h;
 *   cpu_harness_init(&h, 16 << 20, X86_MODE_64);     // RAM at 0, flat CPL0, exceptions exit
 *   cpu_harness_load(&h, 0x1000, code, sizeof(code));
 *   int r = cpu_harness_run(&h, 0x1000, 100);       // until HLT, exception or 100 insns
 *   ... h.cpu->r[CPU_RAX], cpu_get_rflags(h.cpu), h.cpu->exc_vector ...
 *   cpu_harness_free(&h);
 */
#ifndef LODGE_TESTS_CPU_HARNESS_H
#define LODGE_TESTS_CPU_HARNESS_H

#include "core/cpu/cpu.h"
#include "core/guestmem.h"

struct cpu_harness {
    struct guestmem mem; /* RAM at guest physical 0 */
    struct bus *pio;     /* empty buses: reads return all ones */
    struct bus *mmio;
    struct cpu *cpu;
    uint64_t ram_size;
    uint64_t pt_base; /* identity page tables (64-bit mode) at the top of RAM */
};

/* RAM of ram_size bytes (>= 4 MiB, multiple of 2 MiB) and a CPU in flat mode: X86_MODE_64
 * (long mode, identity paging with 2 MiB pages, user-accessible), X86_MODE_32 (protected
 * mode, flat 4 GiB segments, no paging) or X86_MODE_16 (real mode). CPL 0, RSP at the top
 * of the usable RAM, exit_on_exception set. Returns 0 or -errno. */
int cpu_harness_init(struct cpu_harness *h, uint64_t ram_size, int mode);
void cpu_harness_free(struct cpu_harness *h);
/* Put the CPU (back) into the flat state of mode (registers other than RSP are zeroed). */
void cpu_harness_set_flat(struct cpu_harness *h, int mode);
/* Switch to CPL 3 with flat user segments (64-bit mode only). */
void cpu_harness_set_user(struct cpu_harness *h);
int cpu_harness_load(struct cpu_harness *h, uint64_t gpa, const void *bytes, size_t len);
/* Run from rip for at most max_insns (0: no limit) until HLT, an exception (then
 * h->cpu->exc_vector/exc_error hold it and rip points at the faulting instruction) or the
 * count. Returns enum cpu_exit_reason. */
int cpu_harness_run(struct cpu_harness *h, uint64_t rip, uint64_t max_insns);
/* Copy guest physical memory. */
uint64_t cpu_harness_peek(struct cpu_harness *h, uint64_t gpa, unsigned size);
void cpu_harness_poke(struct cpu_harness *h, uint64_t gpa, unsigned size, uint64_t val);

#endif
