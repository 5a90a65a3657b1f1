#include "hostdrv/accel.h"

#include <string.h>

const struct accel_ops *accel_find(const char *name)
{
    if (strcmp(name, "kvm") == 0) {
        return &accel_kvm_ops;
    }
    if (strcmp(name, "soft") == 0) {
        return &accel_soft_ops;
    }
    return NULL;
}

const char *accel_exit_name(enum accel_exit_reason r)
{
    static const char *const names[] = {
        [ACCEL_EXIT_NONE] = "none",
        [ACCEL_EXIT_PIO] = "pio",
        [ACCEL_EXIT_MMIO] = "mmio",
        [ACCEL_EXIT_HLT] = "hlt",
        [ACCEL_EXIT_INTR] = "intr",
        [ACCEL_EXIT_SHUTDOWN] = "shutdown (triple fault)",
        [ACCEL_EXIT_RESET] = "reset",
        [ACCEL_EXIT_POWEROFF] = "poweroff",
        [ACCEL_EXIT_DEBUG] = "debug",
        [ACCEL_EXIT_INTERNAL_ERROR] = "internal error",
        [ACCEL_EXIT_FAIL_ENTRY] = "failed entry",
    };
    if ((unsigned)r < sizeof(names) / sizeof(names[0]) && names[r]) {
        return names[r];
    }
    return "unknown";
}

static void accel_dump_seg(FILE *out, const char *name, const struct accel_segment *s)
{
    fprintf(out, "%-3s=%04x base=%016llx limit=%08x type=%x p=%u dpl=%u db=%u s=%u l=%u g=%u\n",
            name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->present, s->dpl,
            s->db, s->s, s->l, s->g);
}

void accel_dump_vcpu(const struct accel_ops *ops, struct accel_vcpu *vcpu, FILE *out)
{
    struct accel_regs r;
    struct accel_sregs s;
    if (ops->get_regs(vcpu, &r) == 0) {
        fprintf(out,
                "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n"
                "RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n"
                "R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n"
                "R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n"
                "RIP=%016llx RFL=%08llx\n",
                (unsigned long long)r.rax, (unsigned long long)r.rbx, (unsigned long long)r.rcx,
                (unsigned long long)r.rdx, (unsigned long long)r.rsi, (unsigned long long)r.rdi,
                (unsigned long long)r.rbp, (unsigned long long)r.rsp, (unsigned long long)r.r8,
                (unsigned long long)r.r9, (unsigned long long)r.r10, (unsigned long long)r.r11,
                (unsigned long long)r.r12, (unsigned long long)r.r13, (unsigned long long)r.r14,
                (unsigned long long)r.r15, (unsigned long long)r.rip, (unsigned long long)r.rflags);
    }
    if (ops->get_sregs(vcpu, &s) == 0) {
        accel_dump_seg(out, "CS", &s.cs);
        accel_dump_seg(out, "SS", &s.ss);
        accel_dump_seg(out, "DS", &s.ds);
        accel_dump_seg(out, "ES", &s.es);
        accel_dump_seg(out, "FS", &s.fs);
        accel_dump_seg(out, "GS", &s.gs);
        accel_dump_seg(out, "TR", &s.tr);
        accel_dump_seg(out, "LDT", &s.ldt);
        fprintf(out,
                "GDT=%016llx/%04x IDT=%016llx/%04x\n"
                "CR0=%016llx CR2=%016llx CR3=%016llx CR4=%016llx EFER=%016llx\n",
                (unsigned long long)s.gdt.base, s.gdt.limit, (unsigned long long)s.idt.base,
                s.idt.limit, (unsigned long long)s.cr0, (unsigned long long)s.cr2,
                (unsigned long long)s.cr3, (unsigned long long)s.cr4, (unsigned long long)s.efer);
    }
}
