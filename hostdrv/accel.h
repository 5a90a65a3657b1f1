/* The accelerator seam: how the machine runs guest code.
 *
 * Two engines implement it: the KVM backend (hostdrv/kvm.c, hardware assist through
 * /dev/kvm) and the software x86 CPU (core/cpu/). Nothing above this header knows
 * which one runs. Registers travel in one neutral layout (the KVM layout, which is
 * the architectural one). */
#ifndef LODGE_HOSTDRV_ACCEL_H
#define LODGE_HOSTDRV_ACCEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct bus;
struct guestmem;

struct accel_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};

struct accel_segment {
    uint64_t base;
    uint32_t limit;     /* byte granular (already scaled by G) */
    uint16_t selector;
    uint8_t type;       /* descriptor type field (4 bits) */
    uint8_t present, dpl, db, s, l, g, avl;
    uint8_t unusable;   /* null selector loaded / segment not usable */
};

struct accel_dtable {
    uint64_t base;
    uint16_t limit;
};

struct accel_sregs {
    struct accel_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct accel_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t apic_base;
};

enum accel_exit_reason {
    ACCEL_EXIT_NONE = 0,
    ACCEL_EXIT_PIO,            /* port I/O for the run loop to dispatch on the PIO bus */
    ACCEL_EXIT_MMIO,           /* MMIO for the run loop to dispatch on the MMIO bus */
    ACCEL_EXIT_HLT,            /* halted and the engine cannot wait by itself */
    ACCEL_EXIT_INTR,           /* returned early because of accel->kick() */
    ACCEL_EXIT_SHUTDOWN,       /* triple fault */
    ACCEL_EXIT_RESET,          /* the engine saw a system reset request */
    ACCEL_EXIT_POWEROFF,       /* the engine saw a power-off request */
    ACCEL_EXIT_DEBUG,          /* breakpoint / single step */
    ACCEL_EXIT_INTERNAL_ERROR, /* the engine could not go on: see error.detail */
    ACCEL_EXIT_FAIL_ENTRY,     /* the engine refused the vCPU state */
};

struct accel_exit {
    enum accel_exit_reason reason;
    union {
        struct {
            uint16_t port;
            uint8_t size;      /* 1, 2 or 4 */
            uint8_t is_write;
            uint32_t count;    /* string I/O repeats; data holds count * size bytes */
            uint8_t *data;     /* owned by the engine, valid until the next vcpu_run */
        } pio;
        struct {
            uint64_t addr;
            uint8_t size;      /* 1, 2, 4 or 8 */
            uint8_t is_write;
            uint8_t data[8];   /* write data, or where the run loop puts read data */
        } mmio;
        struct {
            uint64_t code;     /* engine-specific reason code */
            char detail[160];
        } error;
    };
};

/* Interrupt-controller glue for engines with no in-kernel irqchip (the soft CPU).
 * The machine builds it from the userspace LAPIC/PIC models in devices/pc/. */
struct accel_intc {
    void *opaque; /* this vCPU's local APIC (the PIC sits behind its LINT0) */
    /* An external interrupt is ready (the engine still checks RFLAGS.IF). */
    bool (*intr_pending)(void *opaque);
    /* Acknowledge it (INTA): the vector, or -1 when it went away. */
    int (*intr_ack)(void *opaque);
    /* NMI pending; ack clears it. */
    bool (*nmi_pending)(void *opaque);
    void (*nmi_ack)(void *opaque);
    /* INIT/SIPI: true while the vCPU waits for SIPI; *vector gets the SIPI vector. */
    bool (*wait_for_sipi)(void *opaque, uint8_t *vector);
    /* xAPIC page (offset within the 4 KiB page) and x2APIC MSRs (0x800 + offset/16). */
    uint32_t (*apic_read)(void *opaque, uint32_t offset);
    void (*apic_write)(void *opaque, uint32_t offset, uint32_t val);
    void (*apic_base_write)(void *opaque, uint64_t val);
    /* TSC-deadline MSR. */
    uint64_t (*tsc_deadline_read)(void *opaque);
    void (*tsc_deadline_write)(void *opaque, uint64_t val);
};

struct accel_probe {
    bool available;            /* can run guests at all */
    bool irqchip_in_kernel;    /* devices/pc models are not needed */
    char reason[200];          /* when !available: what is wrong and the fix */
};

struct accel_vm_config {
    struct guestmem *mem;      /* guest RAM and ROM regions (already mapped) */
    struct bus *pio;           /* engines that dispatch I/O themselves use these */
    struct bus *mmio;
    int ncpus;
    bool deterministic;        /* soft CPU: time advances with instructions */
};

struct accel_vm;   /* engine-specific */
struct accel_vcpu; /* engine-specific */

struct accel_ops {
    const char *name; /* "kvm", "soft" */
    int (*probe)(struct accel_probe *out);
    int (*vm_create)(const struct accel_vm_config *cfg, struct accel_vm **out);
    void (*vm_destroy)(struct accel_vm *vm);
    /* Tell the engine about a guestmem region (KVM: a memory slot). */
    int (*map_ram)(struct accel_vm *vm, uint64_t gpa, uint64_t size, void *hva, bool readonly);
    int (*vcpu_create)(struct accel_vm *vm, int index, struct accel_vcpu **out);
    void (*vcpu_destroy)(struct accel_vcpu *vcpu);
    /* Run until an exit the engine cannot handle itself. 0 or -errno.
     * After an MMIO read exit, pass the same exit struct back with the value in
     * mmio.data (do not clear it): the engine completes the read from there. */
    int (*vcpu_run)(struct accel_vcpu *vcpu, struct accel_exit *exit);
    int (*get_regs)(struct accel_vcpu *vcpu, struct accel_regs *regs);
    int (*set_regs)(struct accel_vcpu *vcpu, const struct accel_regs *regs);
    int (*get_sregs)(struct accel_vcpu *vcpu, struct accel_sregs *sregs);
    int (*set_sregs)(struct accel_vcpu *vcpu, const struct accel_sregs *sregs);
    int (*get_msr)(struct accel_vcpu *vcpu, uint32_t index, uint64_t *val);
    int (*set_msr)(struct accel_vcpu *vcpu, uint32_t index, uint64_t val);
    /* Interrupt lines (GSI) and MSI into the in-kernel irqchip. Engines without one
     * leave these NULL; the machine routes lines to devices/pc models instead. */
    int (*irq_line)(struct accel_vm *vm, uint32_t gsi, int level);
    int (*msi)(struct accel_vm *vm, uint64_t addr, uint32_t data);
    /* Engines without an in-kernel irqchip take the userspace one here. */
    int (*vcpu_set_intc)(struct accel_vcpu *vcpu, const struct accel_intc *intc);
    /* Make vcpu_run return ACCEL_EXIT_INTR soon; callable from any thread. */
    void (*kick)(struct accel_vcpu *vcpu);
    /* Reset a vCPU to its power-on state (BSP: CS:IP = F000:FFF0). */
    int (*vcpu_reset)(struct accel_vcpu *vcpu);
};

extern const struct accel_ops accel_kvm_ops;  /* hostdrv/kvm.c */
extern const struct accel_ops accel_soft_ops; /* core/cpu/soft_accel.c */

/* "kvm" or "soft" -> ops, NULL if unknown. */
const struct accel_ops *accel_find(const char *name);

/* Print regs/sregs in the format every error report uses. */
void accel_dump_vcpu(const struct accel_ops *ops, struct accel_vcpu *vcpu, FILE *out);
const char *accel_exit_name(enum accel_exit_reason r);

#endif
