/* accel_soft_ops: the software x86 CPU behind the accelerator seam (hostdrv/accel.h).
 *
 * One host thread per vCPU calls vcpu_run. The soft CPU dispatches port I/O and MMIO
 * itself (cpu->pio / cpu->mmio), so vcpu_run only returns for a kick, a shutdown, a
 * reset/power-off request or an internal error; it waits by itself while the vCPU is
 * halted or waits for SIPI. vCPUs execute in slices under a per-VM engine lock handed out
 * round-robin (a ticket lock), so the translation caches and self-modifying-code checks
 * never race; a halted or waiting vCPU does not hold it. */
#include "core/cpu/sysint.h"

#include "core/guestmem.h"
#include "core/log.h"
#include "hostdrv/accel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SOFT_SLICE_INSNS 20000u /* instructions per engine-lock hold (a few thousand blocks) */
#define SOFT_SLICE_UP 500000u  /* with one vCPU nobody waits for the lock: kicks, interrupt
                                  hints and DMA into code end a run early anyway */
#define SOFT_IDLE_POLL_NS 10000000L /* safety re-check while halted (kicks wake us first) */
#define SOFT_HALT_POLL_MAX_NS 50000u /* halt polling: at most this long (KVM's default is 200 us) */
#define SOFT_HALT_POLL_START_NS 5000u

struct soft_engine_lock {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next;    /* next ticket to hand out */
    uint64_t serving; /* ticket allowed to run */
};

struct accel_vm {
    struct accel_vm_config cfg;
    struct soft_engine_lock engine;
    bool tsc_set;        /* tsc_offset holds the VM's TSC base */
    uint64_t tsc_offset; /* msr.tsc_offset at RESET: every vCPU's TSC starts in sync */
    struct cpu *cpu0;    /* first vCPU created: owner of the shared block cache */
};

struct accel_vcpu {
    struct accel_vm *vm;
    struct cpu *cpu;
    int index;
    struct accel_intc intc; /* copy of the machine's hooks */
    bool has_intc;
    pthread_mutex_t lock;   /* protects the halt/SIPI waits */
    pthread_cond_t cond;
    atomic_int kicked;      /* kick() since the last return */
    bool wait_sipi;         /* after INIT (APs start here): waiting for SIPI */
    uint32_t halt_poll_ns;  /* how long a halted vCPU polls before it sleeps (adaptive) */
};

int cpu_sys_ncpus(const struct cpu *cpu)
{
    const struct accel_vcpu *v = cpu->accel;
    if (!v || !v->vm || v->vm->cfg.ncpus < 1) {
        return 1;
    }
    return v->vm->cfg.ncpus;
}

static void engine_acquire(struct soft_engine_lock *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t t = l->next++;
    while (l->serving != t) {
        pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
}

static void engine_release(struct soft_engine_lock *l)
{
    pthread_mutex_lock(&l->mu);
    l->serving++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static int soft_probe(struct accel_probe *out)
{
    out->available = true;
    out->irqchip_in_kernel = false;
    out->reason[0] = '\0';
    return 0;
}

/* guestmem write_notify: device DMA into guest RAM drops code translated from it. Runs on
 * device threads; the vCPU applies the queued ranges before its next block. */
static void soft_dma_written(void *opaque, uint64_t gpa, uint64_t len)
{
    struct accel_vm *vm = opaque;
    pthread_mutex_lock(&vm->engine.mu);
    struct cpu *cpu0 = vm->cpu0;
    if (cpu0) {
        cpu_tcache_note_write(cpu0, gpa, len);
    }
    pthread_mutex_unlock(&vm->engine.mu);
}

static int soft_vm_create(const struct accel_vm_config *cfg, struct accel_vm **out)
{
    struct accel_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        return -ENOMEM;
    }
    vm->cfg = *cfg;
    pthread_mutex_init(&vm->engine.mu, NULL);
    pthread_cond_init(&vm->engine.cv, NULL);
    if (cfg->mem) {
        cfg->mem->write_notify_opaque = vm;
        cfg->mem->write_notify = soft_dma_written;
    }
    *out = vm;
    return 0;
}

static void soft_vm_destroy(struct accel_vm *vm)
{
    if (!vm) {
        return;
    }
    if (vm->cfg.mem && vm->cfg.mem->write_notify_opaque == vm) {
        vm->cfg.mem->write_notify = NULL;
        vm->cfg.mem->write_notify_opaque = NULL;
    }
    pthread_mutex_destroy(&vm->engine.mu);
    pthread_cond_destroy(&vm->engine.cv);
    free(vm);
}

static int soft_map_ram(struct accel_vm *vm, uint64_t gpa, uint64_t size, void *hva,
                        bool readonly)
{
    /* The CPU reads guestmem directly: nothing to register. */
    return 0;
}

static void soft_reset_cpu(struct accel_vcpu *v)
{
    cpu_reset(v->cpu);
    cpu_tcache_flush(v->cpu);
    /* One TSC for the machine: Linux checks that the vCPUs' TSCs agree. vCPU 0's RESET
     * (vm creation, machine reset) sets the base. */
    if (v->index == 0 || !v->vm->tsc_set) {
        v->vm->tsc_offset = v->cpu->msr.tsc_offset;
        v->vm->tsc_set = true;
    } else {
        v->cpu->msr.tsc_offset = v->vm->tsc_offset;
    }
    v->wait_sipi = v->index > 0;
}

static int soft_vcpu_create(struct accel_vm *vm, int index, struct accel_vcpu **out)
{
    struct accel_vcpu *v = calloc(1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    v->cpu = cpu_new(vm->cfg.mem, vm->cfg.pio, vm->cfg.mmio);
    if (!v->cpu) {
        free(v);
        return -ENOMEM;
    }
    v->vm = vm;
    v->index = index;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->cpu->accel = v;
    v->cpu->index = index;
    v->cpu->deterministic = vm->cfg.deterministic;
    v->cpu->tsc_hz = CPU_SYS_DEFAULT_TSC_HZ;
    cpu_sys_intr_hint(v->cpu);
    /* One block cache per VM: code one vCPU patches must be dropped for all of them. */
    if (!vm->cpu0) {
        pthread_mutex_lock(&vm->engine.mu);
        vm->cpu0 = v->cpu;
        pthread_mutex_unlock(&vm->engine.mu);
    } else if (cpu_tcache_share(v->cpu, vm->cpu0) < 0) {
        cpu_free(v->cpu);
        free(v);
        return -ENOSPC;
    }
    soft_reset_cpu(v); /* again, now that index and ncpus are known */
    *out = v;
    return 0;
}

static void soft_vcpu_destroy(struct accel_vcpu *v)
{
    if (!v) {
        return;
    }
    if (v->vm && v->vm->cpu0 == v->cpu) {
        pthread_mutex_lock(&v->vm->engine.mu);
        v->vm->cpu0 = NULL; /* later vCPUs keep the cache alive; new ones get their own */
        pthread_mutex_unlock(&v->vm->engine.mu);
    }
    cpu_free(v->cpu);
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->cond);
    free(v);
}

static bool soft_take_kick(struct accel_vcpu *v)
{
    if (atomic_exchange(&v->kicked, 0)) {
        __atomic_store_n(&v->cpu->exit_request, 0, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

static void soft_timed_wait(struct accel_vcpu *v)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += SOFT_IDLE_POLL_NS;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&v->cond, &v->lock, &ts);
}

/* Something can wake the halted CPU now. */
static bool soft_can_wake(struct accel_vcpu *v)
{
    struct cpu *cpu = v->cpu;
    const struct accel_intc *ic = &v->intc;
    if (!v->has_intc) {
        return false;
    }
    if (!cpu->nmi_blocked && ic->nmi_pending && ic->nmi_pending(ic->opaque)) {
        return true;
    }
    return (cpu->rflags & CPU_FL_IF) && ic->intr_pending && ic->intr_pending(ic->opaque);
}

static uint64_t soft_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Halt polling, as KVM does it: a wake-up that comes within microseconds of HLT (an I/O
 * completion, a packet) is caught by spinning instead of a sleep and a thread wake-up, which
 * cost tens of microseconds each. The window adapts: it grows while sleeps turn out short,
 * and shrinks to nothing while they are long (an idle guest polls for nothing). Returns
 * true when something came (kick or interrupt) within the window. */
static bool soft_halt_poll(struct accel_vcpu *v)
{
    if (!v->halt_poll_ns) {
        return false;
    }
    uint64_t end = soft_now_ns() + v->halt_poll_ns;
    do {
        if (atomic_load(&v->kicked)) {
            return true;
        }
        pthread_mutex_lock(&v->lock);
        bool can = soft_can_wake(v);
        pthread_mutex_unlock(&v->lock);
        if (can) {
            return true;
        }
        for (int i = 0; i < 50; i++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    } while (soft_now_ns() < end);
    return false;
}

/* Wait while halted. false: kicked (return to the run loop). */
static bool soft_wait_halted(struct accel_vcpu *v)
{
    bool woke = false;
    bool polled = soft_halt_poll(v);
    uint64_t slept_from = soft_now_ns();
    pthread_mutex_lock(&v->lock);
    while (!atomic_load(&v->kicked)) {
        if (soft_can_wake(v)) {
            woke = true;
            break;
        }
        soft_timed_wait(v);
    }
    pthread_mutex_unlock(&v->lock);
    if (!polled) {
        uint64_t slept = soft_now_ns() - slept_from;
        if (slept <= SOFT_HALT_POLL_MAX_NS) { /* a longer poll would have caught it */
            v->halt_poll_ns = v->halt_poll_ns ? v->halt_poll_ns * 2 : SOFT_HALT_POLL_START_NS;
            if (v->halt_poll_ns > SOFT_HALT_POLL_MAX_NS) {
                v->halt_poll_ns = SOFT_HALT_POLL_MAX_NS;
            }
        } else {
            v->halt_poll_ns /= 2; /* long idle: poll less, down to not at all */
            if (v->halt_poll_ns < SOFT_HALT_POLL_START_NS) {
                v->halt_poll_ns = 0;
            }
        }
    }
    if (woke) {
        cpu_sys_intr_hint(v->cpu); /* deliver it at once: no kick may have come */
    }
    return woke;
}

/* INIT/SIPI: true when the vCPU may run. false: kicked while waiting. */
static bool soft_sipi_state(struct accel_vcpu *v)
{
    const struct accel_intc *ic = &v->intc;
    if (!v->has_intc || !ic->wait_for_sipi) {
        if (!v->wait_sipi) {
            return true;
        }
        pthread_mutex_lock(&v->lock);
        while (!atomic_load(&v->kicked)) {
            soft_timed_wait(v);
        }
        pthread_mutex_unlock(&v->lock);
        return false;
    }
    uint8_t vec = 0;
    bool waiting = ic->wait_for_sipi(ic->opaque, &vec);
    if (!waiting && !v->wait_sipi) {
        return true;
    }
    if (waiting && !v->wait_sipi) {
        /* INIT while running: like RESET, except the TSC keeps counting. */
        uint64_t tsc = v->cpu->msr.tsc_offset;
        cpu_reset(v->cpu);
        v->cpu->msr.tsc_offset = tsc;
        v->wait_sipi = true;
    }
    while (waiting) {
        pthread_mutex_lock(&v->lock);
        if (atomic_load(&v->kicked)) {
            pthread_mutex_unlock(&v->lock);
            return false;
        }
        soft_timed_wait(v);
        pthread_mutex_unlock(&v->lock);
        waiting = ic->wait_for_sipi(ic->opaque, &vec);
    }
    /* SIPI: real mode at vector * 4 KiB (SDM vol. 3, 9.4.4). */
    struct cpu *cpu = v->cpu;
    const struct cpu_seg *cs = &cpu->seg[CPU_SEG_CS];
    cpu_set_seg(cpu, CPU_SEG_CS, (uint16_t)(vec << 8), (uint64_t)vec << 12, 0xffff, cs->attr);
    cpu->rip = 0;
    cpu->halted = false;
    v->wait_sipi = false;
    return true;
}

static void soft_exit_error(struct accel_exit *exit, uint64_t code, const char *detail)
{
    exit->reason = ACCEL_EXIT_INTERNAL_ERROR;
    exit->error.code = code;
    snprintf(exit->error.detail, sizeof(exit->error.detail), "%s", detail);
}

static int soft_vcpu_run(struct accel_vcpu *v, struct accel_exit *exit)
{
    struct cpu *cpu = v->cpu;
    exit->reason = ACCEL_EXIT_NONE;
    for (;;) {
        if (soft_take_kick(v)) {
            exit->reason = ACCEL_EXIT_INTR;
            return 0;
        }
        if (!soft_sipi_state(v)) {
            soft_take_kick(v);
            exit->reason = ACCEL_EXIT_INTR;
            return 0;
        }
        engine_acquire(&v->vm->engine);
        int r = cpu_run(cpu, cpu_sys_ncpus(cpu) > 1 ? SOFT_SLICE_INSNS : SOFT_SLICE_UP);
        engine_release(&v->vm->engine);
        switch (r) {
        case CPU_EXIT_NONE:
        case CPU_EXIT_ICOUNT:
            break;
        case CPU_EXIT_KICK:
            soft_take_kick(v);
            exit->reason = ACCEL_EXIT_INTR;
            return 0;
        case CPU_EXIT_HLT:
            if (!soft_wait_halted(v)) {
                soft_take_kick(v);
                exit->reason = ACCEL_EXIT_INTR;
                return 0;
            }
            break;
        case CPU_EXIT_SHUTDOWN:
            exit->reason = ACCEL_EXIT_SHUTDOWN;
            return 0;
        case CPU_EXIT_RESET:
            exit->reason = ACCEL_EXIT_RESET;
            return 0;
        case CPU_EXIT_POWEROFF:
            exit->reason = ACCEL_EXIT_POWEROFF;
            return 0;
        case CPU_EXIT_EXCEPTION:
        case CPU_EXIT_DEBUG:
            exit->reason = ACCEL_EXIT_DEBUG;
            return 0;
        case CPU_EXIT_INTERNAL:
        default:
            soft_exit_error(exit, (uint64_t)r, cpu->error[0] ? cpu->error : "soft CPU error");
            return 0;
        }
    }
}

static int soft_get_regs(struct accel_vcpu *v, struct accel_regs *r)
{
    struct cpu *cpu = v->cpu;
    r->rax = cpu->r[CPU_RAX];
    r->rbx = cpu->r[CPU_RBX];
    r->rcx = cpu->r[CPU_RCX];
    r->rdx = cpu->r[CPU_RDX];
    r->rsi = cpu->r[CPU_RSI];
    r->rdi = cpu->r[CPU_RDI];
    r->rsp = cpu->r[CPU_RSP];
    r->rbp = cpu->r[CPU_RBP];
    r->r8 = cpu->r[CPU_R8];
    r->r9 = cpu->r[CPU_R9];
    r->r10 = cpu->r[CPU_R10];
    r->r11 = cpu->r[CPU_R11];
    r->r12 = cpu->r[CPU_R12];
    r->r13 = cpu->r[CPU_R13];
    r->r14 = cpu->r[CPU_R14];
    r->r15 = cpu->r[CPU_R15];
    r->rip = cpu->rip;
    r->rflags = cpu_get_rflags(cpu);
    return 0;
}

static int soft_set_regs(struct accel_vcpu *v, const struct accel_regs *r)
{
    struct cpu *cpu = v->cpu;
    cpu->r[CPU_RAX] = r->rax;
    cpu->r[CPU_RBX] = r->rbx;
    cpu->r[CPU_RCX] = r->rcx;
    cpu->r[CPU_RDX] = r->rdx;
    cpu->r[CPU_RSI] = r->rsi;
    cpu->r[CPU_RDI] = r->rdi;
    cpu->r[CPU_RSP] = r->rsp;
    cpu->r[CPU_RBP] = r->rbp;
    cpu->r[CPU_R8] = r->r8;
    cpu->r[CPU_R9] = r->r9;
    cpu->r[CPU_R10] = r->r10;
    cpu->r[CPU_R11] = r->r11;
    cpu->r[CPU_R12] = r->r12;
    cpu->r[CPU_R13] = r->r13;
    cpu->r[CPU_R14] = r->r14;
    cpu->r[CPU_R15] = r->r15;
    cpu->rip = r->rip;
    cpu->insn_rip = r->rip;
    cpu_set_rflags(cpu, r->rflags);
    cpu->deliver_vector = -1;
    cpu_update_mode(cpu);
    return 0;
}

static void seg_to_accel(const struct cpu_seg *s, struct accel_segment *a)
{
    memset(a, 0, sizeof(*a));
    a->base = s->base;
    a->limit = s->limit;
    a->selector = s->sel;
    a->type = s->attr & CPU_SEGA_TYPE;
    a->s = (s->attr & CPU_SEGA_S) != 0;
    a->dpl = (uint8_t)cpu_seg_dpl(s);
    a->present = (s->attr & CPU_SEGA_P) != 0;
    a->avl = (s->attr & CPU_SEGA_AVL) != 0;
    a->l = (s->attr & CPU_SEGA_L) != 0;
    a->db = (s->attr & CPU_SEGA_DB) != 0;
    a->g = (s->attr & CPU_SEGA_G) != 0;
    a->unusable = (s->attr & CPU_SEGA_UNUSABLE) != 0;
}

static uint32_t seg_attr_from_accel(const struct accel_segment *a)
{
    return (a->type & CPU_SEGA_TYPE) | (a->s ? CPU_SEGA_S : 0) |
           ((uint32_t)(a->dpl & 3) << CPU_SEGA_DPL_SHIFT) | (a->present ? CPU_SEGA_P : 0) |
           (a->avl ? CPU_SEGA_AVL : 0) | (a->l ? CPU_SEGA_L : 0) | (a->db ? CPU_SEGA_DB : 0) |
           (a->g ? CPU_SEGA_G : 0) | (a->unusable ? CPU_SEGA_UNUSABLE : 0);
}

static int soft_get_sregs(struct accel_vcpu *v, struct accel_sregs *s)
{
    struct cpu *cpu = v->cpu;
    seg_to_accel(&cpu->seg[CPU_SEG_CS], &s->cs);
    seg_to_accel(&cpu->seg[CPU_SEG_DS], &s->ds);
    seg_to_accel(&cpu->seg[CPU_SEG_ES], &s->es);
    seg_to_accel(&cpu->seg[CPU_SEG_FS], &s->fs);
    seg_to_accel(&cpu->seg[CPU_SEG_GS], &s->gs);
    seg_to_accel(&cpu->seg[CPU_SEG_SS], &s->ss);
    seg_to_accel(&cpu->seg[CPU_SEG_TR], &s->tr);
    seg_to_accel(&cpu->seg[CPU_SEG_LDTR], &s->ldt);
    s->gdt.base = cpu->gdtr.base;
    s->gdt.limit = (uint16_t)cpu->gdtr.limit;
    s->idt.base = cpu->idtr.base;
    s->idt.limit = (uint16_t)cpu->idtr.limit;
    s->cr0 = cpu->cr0;
    s->cr2 = cpu->cr2;
    s->cr3 = cpu->cr3;
    s->cr4 = cpu->cr4;
    s->cr8 = cpu->cr8;
    s->efer = cpu->efer;
    s->apic_base = cpu->msr.apic_base;
    return 0;
}

static int soft_set_sregs(struct accel_vcpu *v, const struct accel_sregs *s)
{
    struct cpu *cpu = v->cpu;
    static const struct {
        int seg;
        size_t off;
    } map[] = {
        {CPU_SEG_CS, offsetof(struct accel_sregs, cs)},
        {CPU_SEG_DS, offsetof(struct accel_sregs, ds)},
        {CPU_SEG_ES, offsetof(struct accel_sregs, es)},
        {CPU_SEG_FS, offsetof(struct accel_sregs, fs)},
        {CPU_SEG_GS, offsetof(struct accel_sregs, gs)},
        {CPU_SEG_SS, offsetof(struct accel_sregs, ss)},
        {CPU_SEG_TR, offsetof(struct accel_sregs, tr)},
        {CPU_SEG_LDTR, offsetof(struct accel_sregs, ldt)},
    };
    cpu->cr0 = s->cr0 | CPU_CR0_ET;
    cpu->cr2 = s->cr2;
    cpu->cr3 = s->cr3;
    cpu->cr4 = s->cr4;
    cpu->cr8 = s->cr8 & 0xf;
    cpu->efer = s->efer;
    if ((cpu->efer & CPU_EFER_LME) && (cpu->cr0 & CPU_CR0_PG)) {
        cpu->efer |= CPU_EFER_LMA;
    }
    /* Like VMX, the CPL is SS.DPL in protected mode. */
    cpu->cpl = (cpu->cr0 & CPU_CR0_PE) ? (uint8_t)(s->ss.dpl & 3) : 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const struct accel_segment *a =
            (const struct accel_segment *)((const char *)s + map[i].off);
        cpu_set_seg(cpu, map[i].seg, a->selector, a->base, a->limit, seg_attr_from_accel(a));
    }
    cpu->gdtr.base = s->gdt.base;
    cpu->gdtr.limit = s->gdt.limit;
    cpu->idtr.base = s->idt.base;
    cpu->idtr.limit = s->idt.limit;
    if (s->apic_base) {
        cpu->msr.apic_base = s->apic_base;
    }
    cpu->deliver_vector = -1;
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
    return 0;
}

static int soft_get_msr(struct accel_vcpu *v, uint32_t index, uint64_t *val)
{
    return cpu_msr_read(v->cpu, index, val);
}

static int soft_set_msr(struct accel_vcpu *v, uint32_t index, uint64_t val)
{
    return cpu_msr_write(v->cpu, index, val);
}

static int soft_vcpu_set_intc(struct accel_vcpu *v, const struct accel_intc *intc)
{
    if (intc) {
        v->intc = *intc;
        v->has_intc = true;
        v->cpu->intc = &v->intc;
    } else {
        memset(&v->intc, 0, sizeof(v->intc));
        v->has_intc = false;
        v->cpu->intc = NULL;
    }
    cpu_tlb_flush(v->cpu, false); /* the APIC page becomes MMIO */
    cpu_sys_intr_hint(v->cpu);
    return 0;
}

static void soft_kick(struct accel_vcpu *v)
{
    cpu_sys_intr_hint(v->cpu);
    atomic_store(&v->kicked, 1);
    cpu_kick(v->cpu);
    pthread_mutex_lock(&v->lock);
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

static int soft_vcpu_reset(struct accel_vcpu *v)
{
    soft_reset_cpu(v);
    return 0;
}

const struct accel_ops accel_soft_ops = {
    .name = "soft",
    .probe = soft_probe,
    .vm_create = soft_vm_create,
    .vm_destroy = soft_vm_destroy,
    .map_ram = soft_map_ram,
    .vcpu_create = soft_vcpu_create,
    .vcpu_destroy = soft_vcpu_destroy,
    .vcpu_run = soft_vcpu_run,
    .get_regs = soft_get_regs,
    .set_regs = soft_set_regs,
    .get_sregs = soft_get_sregs,
    .set_sregs = soft_set_sregs,
    .get_msr = soft_get_msr,
    .set_msr = soft_set_msr,
    .vcpu_set_intc = soft_vcpu_set_intc,
    .kick = soft_kick,
    .vcpu_reset = soft_vcpu_reset,
};
