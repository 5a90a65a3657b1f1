/* The KVM engine: runs guest code with hardware assist through /dev/kvm.
 *
 * The interrupt controllers (PIC, IOAPIC, LAPIC) and the PIT live in the kernel, so
 * HLT, timer ticks and IPIs never reach userspace; what comes back is port I/O,
 * MMIO, reset/power-off requests and errors. Those are translated one function per
 * exit reason into the neutral struct accel_exit.
 *
 * Calling convention for MMIO reads: the run loop writes the value into
 * exit->mmio.data and passes the same struct accel_exit back to the next vcpu_run,
 * which copies it into kvm_run before re-entering. PIO data points straight into
 * kvm_run, so an IN is completed by writing through exit->pio.data.
 *
 * kick() sets kvm_run->immediate_exit (so a KVM_RUN that has not started yet returns
 * at once) and signals the vCPU thread (so one already inside the guest leaves it).
 * The vCPU thread must not block LODGE_KVM_KICK_SIGNAL. */
#include "hostdrv/accel.h"

#include "core/log.h"
#include "hostdrv/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define LODGE_KVM_KICK_SIGNAL SIGUSR1
#define KVM_TAG "kvm"

/* Where the VMX real-mode helpers live: QEMU's addresses, just below the 16 MiB of
 * firmware flash space under 4 GiB, which no PC machine uses for RAM. */
#define KVM_IDENTITY_MAP_GPA 0xfeffc000ull
#define KVM_TSS_GPA 0xfeffd000ull

#define KVM_APIC_DEFAULT_BASE 0xfee00000ull
#define KVM_APIC_BASE_BSP (1ull << 8)
#define KVM_APIC_BASE_ENABLE (1ull << 11)

#define KVM_MSR_IA32_TSC 0x10
#define KVM_MSR_IA32_MISC_ENABLE 0x1a0
#define KVM_MISC_ENABLE_FAST_STRINGS 1ull

/* The in-kernel LAPIC timer counts at 1 GHz (APIC_BUS_CYCLE_NS = 1). */
#define KVM_APIC_BUS_KHZ 1000000u

#define KVM_CPUID_MAX_ENTRIES 4096
#define KVM_CPUID_EXTRA_ENTRIES 16

struct accel_vm {
    int kvm_fd;                   /* /dev/kvm */
    int vm_fd;                    /* KVM_CREATE_VM */
    size_t run_size;              /* KVM_GET_VCPU_MMAP_SIZE */
    int ncpus;                    /* vCPUs the topology in CPUID describes */
    int nslots;                   /* memory slots handed out so far */
    int max_slots;                /* KVM_CAP_NR_MEMSLOTS */
    bool amd;                     /* CPUID vendor, for the AMD topology leaves */
    struct kvm_cpuid2 *supported; /* KVM_GET_SUPPORTED_CPUID, patched per vCPU */
};

struct accel_vcpu {
    struct accel_vm *vm;
    int index;              /* vCPU index == APIC ID */
    int fd;                 /* KVM_CREATE_VCPU */
    struct kvm_run *run;    /* shared page(s) with the kernel */
    uint32_t signature;     /* CPUID.1:EAX, RDX after reset */
    bool mmio_read_pending; /* last exit was an MMIO read awaiting data */
    pthread_t thread;       /* thread inside vcpu_run, for kick() */
    int thread_valid;       /* set (atomically) once thread is known */
};

static const struct {
    int cap;
    const char *name;
} kvm_required_caps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
};

const char *kvm_first_missing_cap(int kvm_fd)
{
    for (size_t i = 0; i < sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]); i++) {
        if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) <= 0) {
            return kvm_required_caps[i].name;
        }
    }
    return NULL;
}

static int kvm_open_dev(char *reason, size_t len)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        return fd;
    }
    int e = errno;
    if (e == EACCES || e == EPERM) {
        snprintf(reason, len,
                 "/dev/kvm: permission denied; add yourself to group kvm "
                 "(sudo usermod -aG kvm $USER) and log in again");
    } else if (e == ENOENT || e == ENXIO || e == ENODEV) {
        snprintf(reason, len,
                 "no /dev/kvm: enable VT-x/AMD-V in firmware and load kvm_intel/kvm_amd");
    } else {
        snprintf(reason, len, "/dev/kvm: %s", strerror(e));
    }
    return -e;
}

static int kvm_probe(struct accel_probe *out)
{
    memset(out, 0, sizeof(*out));
    int fd = kvm_open_dev(out->reason, sizeof(out->reason));
    if (fd < 0) {
        return 0;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (api < 0) {
        snprintf(out->reason, sizeof(out->reason), "/dev/kvm: not a KVM device (%s)",
                 strerror(errno));
        close(fd);
        return 0;
    }
    if (api != KVM_API_VERSION) {
        snprintf(out->reason, sizeof(out->reason),
                 "/dev/kvm: API version %d, Lodge needs %d (unsupported kernel)", api,
                 KVM_API_VERSION);
        close(fd);
        return 0;
    }
    const char *missing = kvm_first_missing_cap(fd);
    if (missing) {
        snprintf(out->reason, sizeof(out->reason),
                 "/dev/kvm: the kernel lacks %s; a newer kernel is needed", missing);
        close(fd);
        return 0;
    }
    /* Creating a VM is what fails when another hypervisor holds VT-x/AMD-V. */
    int vm = ioctl(fd, KVM_CREATE_VM, 0);
    if (vm < 0) {
        int e = errno;
        if (e == EBUSY) {
            snprintf(out->reason, sizeof(out->reason),
                     "/dev/kvm: cannot create a VM (VT-x/AMD-V busy); quit other hypervisors "
                     "such as VirtualBox or VMware");
        } else {
            snprintf(out->reason, sizeof(out->reason), "/dev/kvm: KVM_CREATE_VM: %s", strerror(e));
        }
        close(fd);
        return 0;
    }
    close(vm);
    close(fd);
    out->available = true;
    out->irqchip_in_kernel = true;
    return 0;
}

static int kvm_get_supported_cpuid(struct accel_vm *vm)
{
    for (int n = 128; n <= KVM_CPUID_MAX_ENTRIES; n *= 2) {
        size_t sz = sizeof(struct kvm_cpuid2) +
                    (size_t)(n + KVM_CPUID_EXTRA_ENTRIES) * sizeof(struct kvm_cpuid_entry2);
        struct kvm_cpuid2 *c = calloc(1, sz);
        if (!c) {
            return -ENOMEM;
        }
        c->nent = (uint32_t)n;
        if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            vm->supported = c;
            return 0;
        }
        int e = errno;
        free(c);
        if (e != E2BIG) {
            return -e;
        }
    }
    return -E2BIG;
}

static void kvm_vm_free(struct accel_vm *vm)
{
    if (vm->vm_fd >= 0) {
        close(vm->vm_fd);
    }
    if (vm->kvm_fd >= 0) {
        close(vm->kvm_fd);
    }
    free(vm->supported);
    free(vm);
}

static int kvm_vm_create(const struct accel_vm_config *cfg, struct accel_vm **out)
{
    char reason[200];
    int ncpus = cfg && cfg->ncpus > 0 ? cfg->ncpus : 1;
    /* xAPIC IDs are 8 bits and 0xff is broadcast. */
    if (ncpus > 254) {
        return -EINVAL;
    }
    struct accel_vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        return -ENOMEM;
    }
    vm->vm_fd = -1;
    vm->ncpus = ncpus;
    vm->kvm_fd = kvm_open_dev(reason, sizeof(reason));
    if (vm->kvm_fd < 0) {
        int r = vm->kvm_fd;
        log_error(KVM_TAG, "%s", reason);
        free(vm);
        return r;
    }
    int r;
    int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < (int)sizeof(struct kvm_run)) {
        r = mmap_size < 0 ? -errno : -EINVAL;
        goto fail;
    }
    vm->run_size = (size_t)mmap_size;
    vm->max_slots = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    if (vm->max_slots <= 0) {
        vm->max_slots = 32;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        r = -errno;
        goto fail;
    }
    /* VMX needs these pages for real mode and must get them before any vCPU exists. */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0) {
        r = -errno;
        log_error(KVM_TAG, "KVM_SET_TSS_ADDR: %s", strerror(-r));
        goto fail;
    }
    uint64_t ident = KVM_IDENTITY_MAP_GPA;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0) {
        r = -errno;
        log_error(KVM_TAG, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(-r));
        goto fail;
    }
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        r = -errno;
        log_error(KVM_TAG, "KVM_CREATE_IRQCHIP: %s", strerror(-r));
        goto fail;
    }
    /* Port 0x61 speaker bits are handled in the kernel; no sound device behind it. */
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        r = -errno;
        log_error(KVM_TAG, "KVM_CREATE_PIT2: %s", strerror(-r));
        goto fail;
    }
    r = kvm_get_supported_cpuid(vm);
    if (r < 0) {
        log_error(KVM_TAG, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
        goto fail;
    }
    for (uint32_t i = 0; i < vm->supported->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &vm->supported->entries[i];
        if (e->function == 0) {
            vm->amd = e->ebx == 0x68747541; /* "Auth"enticAMD */
        }
    }
    /* kvm_pvm (software "pagetable-based VM", no VT-x/AMD-V) answers a guest's MOV CR0 that
     * sets PG without EFER.LME with #GP, whatever the CPUID: only long-mode paging works. */
    if (access("/sys/module/kvm_pvm", F_OK) == 0) {
        log_info(KVM_TAG, "host KVM is kvm_pvm: guests cannot use 32-bit or PAE paging");
    }
    *out = vm;
    return 0;
fail:
    kvm_vm_free(vm);
    return r;
}

static void kvm_vm_destroy(struct accel_vm *vm)
{
    if (vm) {
        kvm_vm_free(vm);
    }
}

static int kvm_map_ram(struct accel_vm *vm, uint64_t gpa, uint64_t size, void *hva, bool readonly)
{
    if (size == 0 || (gpa & 0xfff) || (size & 0xfff) || ((uintptr_t)hva & 0xfff)) {
        return -EINVAL;
    }
    if (vm->nslots >= vm->max_slots) {
        return -ENOSPC;
    }
    struct kvm_userspace_memory_region reg = {
        .slot = (uint32_t)vm->nslots,
        .flags = readonly ? KVM_MEM_READONLY : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)hva,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0) {
        int e = errno;
        log_error(KVM_TAG, "map %#llx+%#llx: %s", (unsigned long long)gpa, (unsigned long long)size,
                  strerror(e));
        return -e;
    }
    vm->nslots++;
    return 0;
}

static void kvm_kick_handler(int sig)
{
    (void)sig;
}

static void kvm_install_kick_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kvm_kick_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(LODGE_KVM_KICK_SIGNAL, &sa, NULL);
}

static struct kvm_cpuid_entry2 *kvm_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == fn &&
            (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx)) {
            return e;
        }
    }
    return NULL;
}

static void kvm_cpuid_remove(struct kvm_cpuid2 *c, uint32_t fn)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < c->nent; i++) {
        if (c->entries[i].function != fn) {
            c->entries[w++] = c->entries[i];
        }
    }
    c->nent = w;
}

static struct kvm_cpuid_entry2 *kvm_cpuid_add(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx,
                                              bool indexed)
{
    struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];
    memset(e, 0, sizeof(*e));
    e->function = fn;
    e->index = idx;
    e->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    return e;
}

static unsigned kvm_bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n) {
        b++;
    }
    return b;
}

/* x2APIC topology (SDM vol. 2, CPUID leaf 0BH/1FH): one thread per core, all cores in
 * one package, x2APIC ID == APIC ID == vCPU index. */
static void kvm_cpuid_topology_leaf(struct kvm_cpuid2 *c, uint32_t fn, int index, int ncpus)
{
    kvm_cpuid_remove(c, fn);
    struct kvm_cpuid_entry2 *e = kvm_cpuid_add(c, fn, 0, true);
    e->eax = 0;
    e->ebx = 1;
    e->ecx = (1u << 8) | 0; /* level type 1 = SMT */
    e->edx = (uint32_t)index;
    e = kvm_cpuid_add(c, fn, 1, true);
    e->eax = kvm_bits_for((unsigned)ncpus);
    e->ebx = (uint32_t)ncpus;
    e->ecx = (2u << 8) | 1; /* level type 2 = core */
    e->edx = (uint32_t)index;
    e = kvm_cpuid_add(c, fn, 2, true);
    e->ecx = 2; /* level type 0 = invalid: end of list */
    e->edx = (uint32_t)index;
}

static int kvm_setup_cpuid(struct accel_vcpu *v, uint32_t tsc_khz)
{
    struct accel_vm *vm = v->vm;
    uint32_t nent = vm->supported->nent;
    size_t sz = sizeof(struct kvm_cpuid2) +
                (size_t)(nent + KVM_CPUID_EXTRA_ENTRIES) * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c) {
        return -ENOMEM;
    }
    memcpy(c, vm->supported, sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2));
    unsigned n = (unsigned)vm->ncpus;
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            /* EBX[31:24] initial APIC ID, [23:16] logical processors per package. */
            e->ebx = (e->ebx & 0xffffu) | ((uint32_t)v->index << 24) | ((n & 0xffu) << 16);
            e->edx |= 1u << 28; /* HTT: EBX[23:16] is valid */
            e->ecx |= 1u << 31; /* running under a hypervisor */
            v->signature = e->eax;
            break;
        case 4: {
            /* EAX[31:26] cores per package - 1; [25:14] logical CPUs sharing the cache - 1:
             * private L1/L2, shared L3. */
            uint32_t level = (e->eax >> 5) & 7;
            uint32_t sharing = level >= 3 ? n - 1 : 0;
            e->eax = (e->eax & 0x3fffu) | ((sharing & 0xfffu) << 14) | (((n - 1) & 0x3fu) << 26);
            break;
        }
        case 0x80000008:
            if (vm->amd) {
                /* ECX[7:0] cores - 1, [15:12] APIC ID bits for the core. */
                e->ecx = (e->ecx & ~0xf0ffu) | (kvm_bits_for(n) << 12) | ((n - 1) & 0xffu);
            }
            break;
        default:
            break;
        }
    }
    if (kvm_cpuid_find(c, 0xb, 0)) {
        kvm_cpuid_topology_leaf(c, 0xb, v->index, vm->ncpus);
    }
    if (kvm_cpuid_find(c, 0x1f, 0)) {
        kvm_cpuid_topology_leaf(c, 0x1f, v->index, vm->ncpus);
    }
    /* Hypervisor leaves: the KVM signature (so Linux uses kvm-clock and PV features)
     * and the VMware-style timing leaf 0x40000010 with the TSC and APIC bus rates, so a
     * guest need not calibrate against the PIT. */
    kvm_cpuid_remove(c, 0x40000000);
    kvm_cpuid_remove(c, 0x40000010);
    struct kvm_cpuid_entry2 *e = kvm_cpuid_add(c, 0x40000000, 0, false);
    e->eax = 0x40000010;
    memcpy(&e->ebx, "KVMK", 4);
    memcpy(&e->ecx, "VMKV", 4);
    memcpy(&e->edx, "M\0\0\0", 4);
    e = kvm_cpuid_add(c, 0x40000010, 0, false);
    e->eax = tsc_khz;
    e->ebx = KVM_APIC_BUS_KHZ;
    int r = 0;
    if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
        r = -errno;
        log_error(KVM_TAG, "KVM_SET_CPUID2: %s", strerror(-r));
    }
    free(c);
    return r;
}

static int kvm_vcpu_reset(struct accel_vcpu *v);

static int kvm_vcpu_create(struct accel_vm *vm, int index, struct accel_vcpu **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (index < 0 || index >= vm->ncpus) {
        return -EINVAL;
    }
    pthread_once(&once, kvm_install_kick_handler);
    struct accel_vcpu *v = calloc(1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    v->vm = vm;
    v->index = index;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (v->fd < 0) {
        int r = -errno;
        free(v);
        return r;
    }
    void *run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (run == MAP_FAILED) {
        int r = -errno;
        close(v->fd);
        free(v);
        return r;
    }
    v->run = run;
    int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
    int r = kvm_setup_cpuid(v, khz > 0 ? (uint32_t)khz : 0);
    if (r == 0) {
        r = kvm_vcpu_reset(v);
    }
    if (r < 0) {
        munmap(v->run, vm->run_size);
        close(v->fd);
        free(v);
        return r;
    }
    *out = v;
    return 0;
}

static void kvm_vcpu_destroy(struct accel_vcpu *v)
{
    if (!v) {
        return;
    }
    munmap(v->run, v->vm->run_size);
    close(v->fd);
    free(v);
}

static void kvm_exit_error(struct accel_exit *exit, enum accel_exit_reason reason, uint64_t code,
                           const char *fmt, uint64_t a, uint64_t b)
{
    exit->reason = reason;
    exit->error.code = code;
    snprintf(exit->error.detail, sizeof(exit->error.detail), fmt, (unsigned long long)a,
             (unsigned long long)b);
}

static int kvm_exit_io(struct accel_vcpu *v, struct accel_exit *exit)
{
    struct kvm_run *run = v->run;
    uint64_t bytes = (uint64_t)run->io.size * run->io.count;
    if (run->io.size == 0 || run->io.size > 4 || run->io.data_offset > v->vm->run_size ||
        bytes > v->vm->run_size - run->io.data_offset) {
        kvm_exit_error(exit, ACCEL_EXIT_INTERNAL_ERROR, KVM_EXIT_IO,
                       "kvm: malformed I/O exit (size %llu, count %llu)", run->io.size,
                       run->io.count);
        return 0;
    }
    exit->reason = ACCEL_EXIT_PIO;
    exit->pio.port = run->io.port;
    exit->pio.size = run->io.size;
    exit->pio.is_write = run->io.direction == KVM_EXIT_IO_OUT;
    exit->pio.count = run->io.count;
    exit->pio.data = (uint8_t *)run + run->io.data_offset;
    return 0;
}

static int kvm_exit_mmio(struct accel_vcpu *v, struct accel_exit *exit)
{
    struct kvm_run *run = v->run;
    if (run->mmio.len == 0 || run->mmio.len > 8) {
        kvm_exit_error(exit, ACCEL_EXIT_INTERNAL_ERROR, KVM_EXIT_MMIO,
                       "kvm: malformed MMIO exit (len %llu at %#llx)", run->mmio.len,
                       run->mmio.phys_addr);
        return 0;
    }
    exit->reason = ACCEL_EXIT_MMIO;
    exit->mmio.addr = run->mmio.phys_addr;
    exit->mmio.size = (uint8_t)run->mmio.len;
    exit->mmio.is_write = run->mmio.is_write;
    memset(exit->mmio.data, 0, sizeof(exit->mmio.data));
    if (run->mmio.is_write) {
        memcpy(exit->mmio.data, run->mmio.data, run->mmio.len);
    } else {
        v->mmio_read_pending = true;
    }
    return 0;
}

static int kvm_exit_system_event(struct accel_vcpu *v, struct accel_exit *exit)
{
    switch (v->run->system_event.type) {
    case KVM_SYSTEM_EVENT_RESET:
        exit->reason = ACCEL_EXIT_RESET;
        break;
    case KVM_SYSTEM_EVENT_SHUTDOWN:
        exit->reason = ACCEL_EXIT_POWEROFF;
        break;
    default:
        kvm_exit_error(exit, ACCEL_EXIT_INTERNAL_ERROR, KVM_EXIT_SYSTEM_EVENT,
                       "kvm: system event %llu (flags %#llx)", v->run->system_event.type,
                       v->run->system_event.flags);
        break;
    }
    return 0;
}

static int kvm_exit_internal(struct accel_vcpu *v, struct accel_exit *exit)
{
    static const char *const sub[] = {"", "emulation failure", "exception while delivering",
                                      "event delivery failed", "unexpected exit reason"};
    uint32_t s = v->run->internal.suberror;
    const char *name = s < sizeof(sub) / sizeof(sub[0]) ? sub[s] : "unknown";
    exit->reason = ACCEL_EXIT_INTERNAL_ERROR;
    exit->error.code = s;
    int off = snprintf(exit->error.detail, sizeof(exit->error.detail), "kvm internal error %u (%s)",
                       s, name);
    uint32_t nd = v->run->internal.ndata < 16 ? v->run->internal.ndata : 16;
    for (uint32_t i = 0; i < nd && off > 0 && (size_t)off < sizeof(exit->error.detail); i++) {
        off += snprintf(exit->error.detail + off, sizeof(exit->error.detail) - (size_t)off,
                        " %#llx", (unsigned long long)v->run->internal.data[i]);
    }
    return 0;
}

static int kvm_vcpu_run(struct accel_vcpu *v, struct accel_exit *exit)
{
    struct kvm_run *run = v->run;
    if (!__atomic_load_n(&v->thread_valid, __ATOMIC_ACQUIRE) ||
        !pthread_equal(v->thread, pthread_self())) {
        __atomic_store_n(&v->thread_valid, 0, __ATOMIC_RELEASE);
        v->thread = pthread_self();
        __atomic_store_n(&v->thread_valid, 1, __ATOMIC_RELEASE);
    }
    if (v->mmio_read_pending) {
        memcpy(run->mmio.data, exit->mmio.data, run->mmio.len <= 8 ? run->mmio.len : 8);
        v->mmio_read_pending = false;
    }
    for (;;) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            int e = errno;
            if (e == EINTR) {
                __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
                exit->reason = ACCEL_EXIT_INTR;
                return 0;
            }
            if (e == EAGAIN) {
                continue;
            }
            return -e;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            return kvm_exit_io(v, exit);
        case KVM_EXIT_MMIO:
            return kvm_exit_mmio(v, exit);
        case KVM_EXIT_HLT:
            exit->reason = ACCEL_EXIT_HLT;
            return 0;
        case KVM_EXIT_SHUTDOWN:
            exit->reason = ACCEL_EXIT_SHUTDOWN;
            return 0;
        case KVM_EXIT_SYSTEM_EVENT:
            return kvm_exit_system_event(v, exit);
        case KVM_EXIT_INTERNAL_ERROR:
            return kvm_exit_internal(v, exit);
        case KVM_EXIT_FAIL_ENTRY:
            kvm_exit_error(exit, ACCEL_EXIT_FAIL_ENTRY,
                           run->fail_entry.hardware_entry_failure_reason,
                           "kvm: entry failed, hardware reason %#llx on cpu %llu",
                           run->fail_entry.hardware_entry_failure_reason, run->fail_entry.cpu);
            return 0;
        case KVM_EXIT_DEBUG:
            exit->reason = ACCEL_EXIT_DEBUG;
            return 0;
        case KVM_EXIT_INTR:
            exit->reason = ACCEL_EXIT_INTR;
            return 0;
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            /* Only with a userspace irqchip, which Lodge never uses with KVM. */
            continue;
        default:
            kvm_exit_error(exit, ACCEL_EXIT_INTERNAL_ERROR, run->exit_reason,
                           "kvm: unhandled exit reason %llu (hardware reason %#llx)",
                           run->exit_reason, run->hw.hardware_exit_reason);
            return 0;
        }
    }
}

static int kvm_get_regs(struct accel_vcpu *v, struct accel_regs *r)
{
    struct kvm_regs k;
    if (ioctl(v->fd, KVM_GET_REGS, &k) < 0) {
        return -errno;
    }
    r->rax = k.rax;
    r->rbx = k.rbx;
    r->rcx = k.rcx;
    r->rdx = k.rdx;
    r->rsi = k.rsi;
    r->rdi = k.rdi;
    r->rsp = k.rsp;
    r->rbp = k.rbp;
    r->r8 = k.r8;
    r->r9 = k.r9;
    r->r10 = k.r10;
    r->r11 = k.r11;
    r->r12 = k.r12;
    r->r13 = k.r13;
    r->r14 = k.r14;
    r->r15 = k.r15;
    r->rip = k.rip;
    r->rflags = k.rflags;
    return 0;
}

static int kvm_set_regs(struct accel_vcpu *v, const struct accel_regs *r)
{
    struct kvm_regs k = {
        .rax = r->rax,
        .rbx = r->rbx,
        .rcx = r->rcx,
        .rdx = r->rdx,
        .rsi = r->rsi,
        .rdi = r->rdi,
        .rsp = r->rsp,
        .rbp = r->rbp,
        .r8 = r->r8,
        .r9 = r->r9,
        .r10 = r->r10,
        .r11 = r->r11,
        .r12 = r->r12,
        .r13 = r->r13,
        .r14 = r->r14,
        .r15 = r->r15,
        .rip = r->rip,
        .rflags = r->rflags,
    };
    return ioctl(v->fd, KVM_SET_REGS, &k) < 0 ? -errno : 0;
}

static void kvm_seg_from(struct accel_segment *a, const struct kvm_segment *k)
{
    a->base = k->base;
    a->limit = k->limit;
    a->selector = k->selector;
    a->type = k->type;
    a->present = k->present;
    a->dpl = k->dpl;
    a->db = k->db;
    a->s = k->s;
    a->l = k->l;
    a->g = k->g;
    a->avl = k->avl;
    a->unusable = k->unusable;
}

static void kvm_seg_to(struct kvm_segment *k, const struct accel_segment *a)
{
    memset(k, 0, sizeof(*k));
    k->base = a->base;
    k->limit = a->limit;
    k->selector = a->selector;
    k->type = a->type & 0xf;
    k->present = a->present;
    k->dpl = a->dpl & 3;
    k->db = a->db;
    k->s = a->s;
    k->l = a->l;
    k->g = a->g;
    k->avl = a->avl;
    k->unusable = a->unusable;
}

static int kvm_get_sregs(struct accel_vcpu *v, struct accel_sregs *s)
{
    struct kvm_sregs k;
    if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0) {
        return -errno;
    }
    kvm_seg_from(&s->cs, &k.cs);
    kvm_seg_from(&s->ds, &k.ds);
    kvm_seg_from(&s->es, &k.es);
    kvm_seg_from(&s->fs, &k.fs);
    kvm_seg_from(&s->gs, &k.gs);
    kvm_seg_from(&s->ss, &k.ss);
    kvm_seg_from(&s->tr, &k.tr);
    kvm_seg_from(&s->ldt, &k.ldt);
    s->gdt.base = k.gdt.base;
    s->gdt.limit = k.gdt.limit;
    s->idt.base = k.idt.base;
    s->idt.limit = k.idt.limit;
    s->cr0 = k.cr0;
    s->cr2 = k.cr2;
    s->cr3 = k.cr3;
    s->cr4 = k.cr4;
    s->cr8 = k.cr8;
    s->efer = k.efer;
    s->apic_base = k.apic_base;
    return 0;
}

static int kvm_set_sregs(struct accel_vcpu *v, const struct accel_sregs *s)
{
    struct kvm_sregs k;
    /* Start from the current state so the pending-interrupt bitmap survives. */
    if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0) {
        return -errno;
    }
    kvm_seg_to(&k.cs, &s->cs);
    kvm_seg_to(&k.ds, &s->ds);
    kvm_seg_to(&k.es, &s->es);
    kvm_seg_to(&k.fs, &s->fs);
    kvm_seg_to(&k.gs, &s->gs);
    kvm_seg_to(&k.ss, &s->ss);
    kvm_seg_to(&k.tr, &s->tr);
    kvm_seg_to(&k.ldt, &s->ldt);
    k.gdt.base = s->gdt.base;
    k.gdt.limit = s->gdt.limit;
    k.idt.base = s->idt.base;
    k.idt.limit = s->idt.limit;
    k.cr0 = s->cr0;
    k.cr2 = s->cr2;
    k.cr3 = s->cr3;
    k.cr4 = s->cr4;
    k.cr8 = s->cr8;
    k.efer = s->efer;
    k.apic_base = s->apic_base;
    return ioctl(v->fd, KVM_SET_SREGS, &k) < 0 ? -errno : 0;
}

struct kvm_one_msr {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e;
};

static int kvm_get_msr(struct accel_vcpu *v, uint32_t index, uint64_t *val)
{
    struct kvm_one_msr m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    m.e.index = index;
    int r = ioctl(v->fd, KVM_GET_MSRS, &m);
    if (r < 0) {
        return -errno;
    }
    if (r != 1) {
        return -ENOENT; /* KVM does not know this MSR */
    }
    *val = m.e.data;
    return 0;
}

static int kvm_set_msr(struct accel_vcpu *v, uint32_t index, uint64_t val)
{
    struct kvm_one_msr m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    m.e.index = index;
    m.e.data = val;
    int r = ioctl(v->fd, KVM_SET_MSRS, &m);
    if (r < 0) {
        return -errno;
    }
    return r == 1 ? 0 : -EINVAL;
}

static int kvm_irq_line(struct accel_vm *vm, uint32_t gsi, int level)
{
    struct kvm_irq_level l = {.irq = gsi, .level = level ? 1 : 0};
    return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int kvm_msi(struct accel_vm *vm, uint64_t addr, uint32_t data)
{
    struct kvm_msi m = {
        .address_lo = (uint32_t)addr,
        .address_hi = (uint32_t)(addr >> 32),
        .data = data,
    };
    /* > 0 delivered, 0 blocked by the guest (masked): both are fine for a device. */
    return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &m) < 0 ? -errno : 0;
}

static void kvm_kick(struct accel_vcpu *v)
{
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&v->thread_valid, __ATOMIC_ACQUIRE)) {
        pthread_kill(v->thread, LODGE_KVM_KICK_SIGNAL);
    }
}

static void kvm_reset_seg(struct accel_segment *s, uint16_t sel, uint64_t base, uint8_t type,
                          uint8_t code_data)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->base = base;
    s->limit = 0xffff;
    s->type = type;
    s->present = 1;
    s->s = code_data;
}

static void kvm_lapic_put(struct kvm_lapic_state *l, unsigned off, uint32_t val)
{
    memcpy(&l->regs[off], &val, 4);
}

/* Local APIC power-up state (SDM vol. 3 "Local APIC State After Power-Up or Reset"):
 * everything clear, LVTs masked, SVR 0xFF (software-disabled), DFR all ones. Like a PC
 * chipset in virtual-wire mode, the BSP gets LINT0 = ExtINT and LINT1 = NMI so the
 * 8259 reaches it before any firmware programs the APIC. */
static int kvm_lapic_reset(struct accel_vcpu *v)
{
    struct kvm_lapic_state l;
    if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0) {
        return -errno;
    }
    uint32_t version;
    memcpy(&version, &l.regs[0x30], 4);
    memset(&l, 0, sizeof(l));
    kvm_lapic_put(&l, 0x20, (uint32_t)v->index << 24); /* ID (xAPIC format) */
    kvm_lapic_put(&l, 0x30, version);
    kvm_lapic_put(&l, 0xe0, 0xffffffffu); /* DFR: flat model */
    kvm_lapic_put(&l, 0xf0, 0xff);        /* SVR */
    static const unsigned lvts[] = {0x2f0, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370};
    for (size_t i = 0; i < sizeof(lvts) / sizeof(lvts[0]); i++) {
        kvm_lapic_put(&l, lvts[i], 0x10000); /* masked */
    }
    if (v->index == 0) {
        kvm_lapic_put(&l, 0x350, 0x700); /* LINT0: ExtINT */
        kvm_lapic_put(&l, 0x360, 0x400); /* LINT1: NMI */
    }
    return ioctl(v->fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

/* Power-on state, SDM vol. 3 table 10-1 ("IA-32 and Intel 64 Processor States
 * Following Power-up, Reset, or INIT"). */
static int kvm_vcpu_reset(struct accel_vcpu *v)
{
    struct accel_regs r;
    memset(&r, 0, sizeof(r));
    r.rflags = 0x2;
    r.rip = 0xfff0;
    r.rdx = v->signature;
    int ret = kvm_set_regs(v, &r);
    if (ret < 0) {
        return ret;
    }
    struct accel_sregs s;
    memset(&s, 0, sizeof(s));
    kvm_reset_seg(&s.cs, 0xf000, 0xffff0000, 0xb, 1); /* code, read, accessed */
    kvm_reset_seg(&s.ds, 0, 0, 0x3, 1);               /* data, write, accessed */
    s.es = s.ds;
    s.fs = s.ds;
    s.gs = s.ds;
    s.ss = s.ds;
    kvm_reset_seg(&s.tr, 0, 0, 0xb, 0);  /* busy 32-bit TSS: what VMX entry checks want */
    kvm_reset_seg(&s.ldt, 0, 0, 0x2, 0); /* LDT */
    s.gdt.limit = 0xffff;
    s.idt.limit = 0xffff;
    s.cr0 = 0x60000010; /* CD, NW, ET */
    s.apic_base =
        KVM_APIC_DEFAULT_BASE | KVM_APIC_BASE_ENABLE | (v->index == 0 ? KVM_APIC_BASE_BSP : 0);
    ret = kvm_set_sregs(v, &s);
    if (ret < 0) {
        return ret;
    }
    ret = kvm_lapic_reset(v);
    if (ret < 0) {
        return ret;
    }
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0) {
        return -errno;
    }
    struct kvm_debugregs dbg;
    memset(&dbg, 0, sizeof(dbg));
    dbg.dr6 = 0xffff0ff0;
    dbg.dr7 = 0x400;
    if (ioctl(v->fd, KVM_SET_DEBUGREGS, &dbg) < 0) {
        return -errno;
    }
    ret = kvm_set_msr(v, KVM_MSR_IA32_MISC_ENABLE, KVM_MISC_ENABLE_FAST_STRINGS);
    if (ret < 0) {
        log_warn(KVM_TAG, "IA32_MISC_ENABLE: %s", strerror(-ret));
    }
    ret = kvm_set_msr(v, KVM_MSR_IA32_TSC, 0);
    if (ret < 0) {
        return ret;
    }
    /* With the in-kernel LAPIC, APs wait for INIT-SIPI-SIPI from the BSP. */
    struct kvm_mp_state mp = {
        .mp_state = v->index == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED,
    };
    if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0) {
        return -errno;
    }
    v->mmio_read_pending = false;
    return 0;
}

const struct accel_ops accel_kvm_ops = {
    .name = "kvm",
    .probe = kvm_probe,
    .vm_create = kvm_vm_create,
    .vm_destroy = kvm_vm_destroy,
    .map_ram = kvm_map_ram,
    .vcpu_create = kvm_vcpu_create,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_run = kvm_vcpu_run,
    .get_regs = kvm_get_regs,
    .set_regs = kvm_set_regs,
    .get_sregs = kvm_get_sregs,
    .set_sregs = kvm_set_sregs,
    .get_msr = kvm_get_msr,
    .set_msr = kvm_set_msr,
    .irq_line = kvm_irq_line,
    .msi = kvm_msi,
    .vcpu_set_intc = NULL,
    .kick = kvm_kick,
    .vcpu_reset = kvm_vcpu_reset,
};
