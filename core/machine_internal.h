/* Machine internals shared by core/machine.c and core/vcpu.c only. */
#ifndef LODGE_CORE_MACHINE_INTERNAL_H
#define LODGE_CORE_MACHINE_INTERNAL_H

#include "core/boot_multiboot.h"
#include "core/e820.h"
#include "core/guestmem.h"
#include "core/machine.h"
#include "hostdrv/accel.h"

#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>

#define MACHINE_MAX_DEVS 24

/* Request bits (machine.req). */
#define MACHINE_REQ_POWEROFF 0x1u
#define MACHINE_REQ_RESET 0x2u
#define MACHINE_REQ_QUIT 0x4u
#define MACHINE_REQ_ERROR 0x8u
#define MACHINE_REQ_EXIT 0x10u  /* exit_status says how */
#define MACHINE_REQ_PAUSE 0x20u /* machine_pause (core/machine_ui.c) */
#define MACHINE_REQ_RESUME 0x40u

struct machine_vcpu {
    struct machine *m;
    int index;
    struct accel_vcpu *acc;
    pthread_t thread;
    atomic_bool started;  /* thread is running (between start and join); read by kickers */
    pthread_mutex_t lock; /* kicked, for the HLT wait */
    pthread_cond_t cond;
    bool kicked;            /* something happened since the last wait */
    struct lapic *lapic;    /* soft engine: this vCPU's local APIC, else NULL */
    struct accel_intc intc; /* soft engine: interrupt glue given to the vCPU */
};

struct machine_dev {
    const struct device_ops *ops;
    void *dev;
};

struct machine {
    struct machine_config cfg;
    const struct accel_ops *accel;
    struct accel_vm *vm;
    bool kernel_irqchip; /* KVM: PIC/IOAPIC/LAPIC/PIT live in the kernel */
    struct guestmem mem;
    uint64_t low_size;  /* ram-low: [0, low_size) */
    uint64_t high_size; /* ram-high: [4 GiB, 4 GiB + high_size) */
    struct e820_table e820;
    struct bus *pio;
    struct bus *mmio;
    struct timerq *tq;

    struct machine_dev devs[MACHINE_MAX_DEVS]; /* reset in this order */
    int ndevs;
    struct uart *uart;
    struct rtc *rtc;
    struct pic *pic;       /* soft engine only */
    struct ioapic *ioapic; /* soft engine only */
    struct pit *pit;       /* soft engine only */
    struct hpet *hpet;     /* soft engine only */
    struct i8042 *i8042;
    struct acpi_pm *acpi_pm;
    struct reset_ctl *reset_ctl;
    struct pci_host *pci_host;
    struct machine_pci *pci;      /* PCI devices (core/machine_pci.c), or NULL */
    struct machine_storage *storage; /* AHCI HBA (core/machine_storage.c), or NULL */
    struct boot_fw *fw;           /* --firmware devices (core/boot_firmware.c), or NULL */
    struct test_exit *test_exit;  /* --device test-exit, else NULL */
    struct debugcon *debugcon;    /* --debugcon, else NULL */
    struct chardev *debugcon_out; /* its sink */
    bool multiboot;               /* --kernel is a multiboot image */
    struct boot_mb_layout mb_layout;

    struct chardev *serial;
    GMainContext *ctx; /* host input: chardevs, signals */
    pthread_t loop_thread;
    bool loop_started;
    atomic_bool loop_quit; /* tells the main loop thread to return */
    GSource *sig_src[3];

    int nvcpus;
    struct machine_vcpu vcpus[MACHINE_MAX_CPUS];
    atomic_bool stop_vcpus;  /* run loops return as soon as they see it */
    atomic_bool req_pending; /* a request waits: run loops stop early, guest code halts */

    pthread_mutex_t req_lock; /* req, quit_signo, error_text */
    pthread_cond_t req_cond;
    unsigned req;
    int quit_signo;
    char *error_text;
    int exit_status;           /* for MACHINE_REQ_EXIT; the first request wins */
    _Atomic int state;         /* enum machine_state; changes under req_lock + req_cond */
    machine_event_fn event_fn; /* UI listener (core/machine_ui.c), or NULL */
    void *event_opaque;
};

/* core/vcpu.c */
void *vcpu_thread_main(void *opaque);
void vcpu_kick(struct machine_vcpu *v);

/* core/machine_ui.c */
void machine_emit(struct machine *m, enum machine_event ev);
void machine_set_state(struct machine *m, enum machine_state st);
/* Called by machine_run with the vCPUs stopped after a pause request; returns the
 * requests still to handle (0: resumed). */
unsigned machine_wait_paused(struct machine *m, unsigned req);
/* Describe the framebuffer in a Linux zero page (boot_params.screen_info). */
void machine_fb_boot_info(struct machine *m, uint64_t zero_page);

#endif
