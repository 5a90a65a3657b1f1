/* The PC machine: guest RAM, the PIO and MMIO buses, the platform devices, the
 * accelerator and its vCPU threads, and the main loop thread for host input.
 *
 * Memory map: low RAM [0, min(mem, 3 GiB)) "ram-low", the rest at 4 GiB "ram-high",
 * an optional firmware ROM "bios" ending at 4 GiB. With --firmware low RAM skips the VGA
 * window: "ram-low" [0, 0xA0000) and "ram-low-c" [0xC0000, min(mem, 3 GiB)). IRQ lines are ISA IRQ numbers
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
struct machine_pci_config;
struct machine_storage_config;
struct boot_fw_config;

#define MACHINE_MIN_MEM (32ull << 20)
#define MACHINE_MAX_CPUS 64
#define MACHINE_LOW_MAX (3ull << 30)

/* Who decompresses a bzImage's kernel: the host loader (fast on the soft CPU, no KASLR)
 * or the kernel's own decompressor in the guest. AUTO picks HOST on the soft engine. */
enum { MACHINE_INFLATE_AUTO = 0, MACHINE_INFLATE_HOST, MACHINE_INFLATE_GUEST };

struct machine_config {
    uint64_t mem_size;             /* bytes, a multiple of 4 KiB, >= MACHINE_MIN_MEM */
    int ncpus;                     /* 1..MACHINE_MAX_CPUS */
    const struct accel_ops *accel; /* the engine */
    const uint8_t *kernel;         /* bzImage contents, or NULL */
    size_t kernel_size;
    const char *kernel_path; /* for messages */
    const uint8_t *initrd;   /* or NULL */
    size_t initrd_size;
    const char *initrd_path;
    const char *append;  /* kernel command line, or NULL */
    const uint8_t *bios; /* raw firmware image, or NULL (one of kernel/bios) */
    size_t bios_size;
    const char *bios_path;
    const char *serial;                   /* chardev spec for COM1: stdio, file:P, unix:P, none */
    bool no_reboot;                       /* a guest reset ends the run (status 0) */
    int kernel_inflate;                   /* MACHINE_INFLATE_*: who decompresses a bzImage */
    const struct machine_pci_config *pci; /* virtio devices (core/machine_pci.h), or NULL */
    const struct machine_storage_config *storage; /* AHCI drives (core/machine_storage.h) */
    const struct boot_mb_module *mb_modules; /* multiboot kernels: the --initrd list */
    int mb_nmodules;
    const char *debugcon;            /* --debugcon SPEC (devices/pc/debugcon.h), or NULL */
    const char *test_exit;           /* --device test-exit[,...] SPEC, or NULL */
    uint32_t fb_width, fb_height;    /* linear framebuffer at MACHINE_FB_BASE (0: none) */
    const struct boot_fw_config *fw; /* --firmware (core/boot_firmware.h): bios is its
                                      * image and kernel goes through fw_cfg; or NULL */
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
/* Deliver an MSI (address/data as a device wrote them). 0 or -errno. Any thread. */
int machine_msi(struct machine *m, uint64_t addr, uint32_t data);

/* Requests; any thread, including device callbacks on a vCPU thread. */
void machine_request_poweroff(struct machine *m);
void machine_request_reset(struct machine *m);
void machine_request_quit(struct machine *m, int signo);
/* End the run with this process exit status (the test-exit device). */
void machine_request_exit(struct machine *m, int status);
/* Stop with an error; the first report wins. text may span lines. */
void machine_request_error(struct machine *m, const char *text);

/* ---- UI hooks: control socket and display (core/machine_ui.c) ---------------------- */

/* Linear framebuffer (XRGB8888) placed as guest memory in the PCI hole; direct Linux
 * boot describes it in boot_params.screen_info (VIDEO_TYPE_VLFB). */
#define MACHINE_FB_BASE 0xFD000000ull
#define MACHINE_FB_MAX_SIZE (16ull << 20)

enum machine_state {
    MACHINE_STATE_STOPPED, /* machine_run returned or has not started */
    MACHINE_STATE_RUNNING,
    MACHINE_STATE_PAUSED,
};

enum machine_event {
    MACHINE_EVENT_RUNNING, /* started or resumed */
    MACHINE_EVENT_PAUSED,
    MACHINE_EVENT_RESET,
    MACHINE_EVENT_POWEROFF, /* the guest powered off */
    MACHINE_EVENT_STOPPED,  /* the run ends (any reason) */
};

/* Called on the thread running machine_run; must not block long. */
typedef void (*machine_event_fn)(void *opaque, enum machine_event ev);

struct machine_fb {
    uint64_t gpa;
    uint8_t *hva;
    int fd; /* memfd holding the pixels */
    uint64_t size;
    uint32_t width, height, stride;
};

/* Set before machine_run. */
void machine_set_event_cb(struct machine *m, machine_event_fn fn, void *opaque);
enum machine_state machine_get_state(struct machine *m);
/* Stop/restart the vCPUs; both wait (up to a second) until the state changed.
 * 0, -EALREADY (already in that state) or -ETIMEDOUT/-ESHUTDOWN. Any thread but the
 * one running machine_run. */
int machine_pause(struct machine *m);
int machine_resume(struct machine *m);
/* ACPI power button press (the guest decides what to do). */
void machine_power_button(struct machine *m);
/* Set-1 scancode bytes to the PS/2 keyboard. 0 or -errno. */
int machine_key_event(struct machine *m, const uint8_t *scancode, size_t n);
/* Relative motion to the PS/2 mouse: dx right, dy down, wheel > 0 scrolls up, buttons
 * bit 0 left, 1 right, 2 middle. 0 or -errno. */
int machine_mouse_event(struct machine *m, int dx, int dy, int wheel, unsigned buttons);
/* Absolute position to the virtio tablet, x/y in 0..MACHINE_ABS_MAX over the screen.
 * -ENODEV without a tablet, -ENOSPC when its queue is full. */
#define MACHINE_ABS_MAX 32767
int machine_abs_event(struct machine *m, int x, int y, int wheel, unsigned buttons);
/* Whether the guest drives the tablet (its driver is up): then the console sends
 * absolute positions instead of relative motion. */
bool machine_tablet_ready(struct machine *m);
/* The framebuffer, or -ENODEV when the machine has none. */
int machine_get_fb(struct machine *m, struct machine_fb *out);
/* The firmware's VGA device (--firmware), or NULL. Viewers put it on a display surface
 * with devices/display/vga_display.h. */
struct vga;
struct vga *machine_vga(struct machine *m);

#endif
