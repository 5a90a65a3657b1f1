/* The PC machine: guest RAM, the PIO and MMIO buses, the platform devices, the
 * accelerator and its vCPU threads, and the main loop thread for host input.
 *
 * Memory map: low RAM [0, min(mem, 3 GiB)) "ram-low", the rest at 4 GiB "ram-high",
 * an optional firmware ROM "bios" ending at 4 GiB. IRQ lines are ISA IRQ numbers
 * below 16 (IRQ0 reaches IOAPIC pin 2, as the MADT override says) and GSIs above. */
#ifndef LODGE_CORE_MACHINE_H
#define LODGE_CORE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct accel_ops;
struct boot_mb_module;
struct machine;
struct machine_vcpu;

#define MACHINE_MIN_MEM (32ull << 20)
#define MACHINE_MAX_CPUS 64
#define MACHINE_LOW_MAX (3ull << 30)

struct machine_config {
    uint64_t mem_size;              /* bytes, a multiple of 4 KiB, >= MACHINE_MIN_MEM */
    int ncpus;                      /* 1..MACHINE_MAX_CPUS */
    const struct accel_ops *accel;  /* the engine */
    const uint8_t *kernel;          /* bzImage contents, or NULL */
    size_t kernel_size;
    const char *kernel_path;        /* for messages */
    const uint8_t *initrd;          /* or NULL */
    size_t initrd_size;
    const char *initrd_path;
    const char *append;             /* kernel command line, or NULL */
    const uint8_t *bios;            /* raw firmware image, or NULL (one of kernel/bios) */
    size_t bios_size;
    const char *bios_path;
    const char *serial;             /* chardev spec for COM1: stdio, file:P, unix:P, none */
    bool no_reboot;                 /* a guest reset ends the run (status 0) */
    const struct boot_mb_module *mb_modules; /* multiboot kernels: the --initrd list */
    int mb_nmodules;
    const char *debugcon;           /* --debugcon SPEC (devices/pc/debugcon.h), or NULL */
    const char *test_exit;          /* --device test-exit[,...] SPEC, or NULL */
};

/* Why machine_new failed: user says whether the user's input is at fault (exit 2)
 * or the host/engine (exit 1); msg is "<thing>: <problem>". */
struct machine_error {
    bool user;
    char msg[512];
};

int machine_new(const struct machine_config *cfg, struct machine **out, struct machine_error *err);
/* Run until power-off, reset with no_reboot, quit (Ctrl-A x or a signal) or an
 * error. Returns the process exit status: 0 for a guest power-off/reset exit,
 * 1 for an error (the report went to stderr), 128+N after signal N. */
int machine_run(struct machine *m);
void machine_free(struct machine *m);

/* Drive an interrupt line (see the header comment for numbering). Any thread. */
void machine_irq_set(struct machine *m, uint32_t line, int level);

/* Requests; any thread, including device callbacks on a vCPU thread. */
void machine_request_poweroff(struct machine *m);
void machine_request_reset(struct machine *m);
void machine_request_quit(struct machine *m, int signo);
/* End the run with this process exit status (the test-exit device). */
void machine_request_exit(struct machine *m, int status);
/* Stop with an error; the first report wins. text may span lines. */
void machine_request_error(struct machine *m, const char *text);

#endif
