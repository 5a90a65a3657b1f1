/* KVM engine tests: tiny NASM guests (tests/kvm/guests/) run through accel_kvm_ops on
 * a minimal machine: 640 KiB of RAM at 0, the 64 KiB guest image as ROM at the top of
 * 4 GiB (aliased at 0xF0000), PIO/MMIO buses with a fake serial port, an exit port,
 * an ACPI PM1a_CNT power-off register and a test device that logs accesses.
 *
 * Every test is skipped (CUnit marks the suite inactive, meson sees exit 77) when
 * /dev/kvm is absent or unusable. The development hosts emulate guest code, so the
 * guests are a few hundred instructions each. */
#include "core/bus.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef KVM_GUEST_DIR
#error "KVM_GUEST_DIR must name the directory holding the assembled guests"
#endif

#define TM_RAM_SIZE 0xa0000ull
#define TM_ROM_SIZE 0x10000ull
#define TM_ROM_GPA 0xffff0000ull
#define TM_ROM_ALIAS_GPA 0xf0000ull
#define TM_SERIAL_PORT 0x3f8
#define TM_EXIT_PORT 0x501
#define TM_PM1A_CNT 0x604
#define TM_TEST_PORT 0x510
#define TM_REQ_PORT 0x520
#define TM_TEST_MMIO 0xd0000ull
#define TM_TEST_PATTERN 0xf1e2d3c4b5a69788ull
#define TM_MAX_CPUS 2
#define TM_LOG_MAX 64
#ifndef TM_TIMEOUT_MS
#define TM_TIMEOUT_MS 30000
#endif

struct tm_access {
    int is_write;  /* 1 for a write */
    int is_mmio;   /* 1 for MMIO, 0 for PIO */
    uint64_t off;  /* offset within the device range */
    unsigned size; /* access size in bytes */
    uint64_t val;  /* value written (or returned) */
};

struct tm_machine;

struct tm_cpu {
    struct tm_machine *m;
    struct accel_vcpu *vcpu;
    pthread_t thread;
    int err;                /* vcpu_run error (-errno) */
    struct accel_exit last; /* the exit that stopped this vCPU */
    bool stopped_by_exit;   /* an exit other than PIO/MMIO/INTR stopped it */
};

struct tm_machine {
    const struct accel_ops *ops;
    struct guestmem mem;
    struct bus *pio;
    struct bus *mmio;
    struct accel_vm *vm;
    int ncpus;
    struct tm_cpu cpu[TM_MAX_CPUS];
    pthread_mutex_t lock; /* serial, log and stop state below */
    char serial[512];     /* bytes the guest wrote to the serial port */
    size_t nserial;
    int exit_code;                    /* last exit-port byte, -1 before any */
    bool poweroff;                    /* PM1a_CNT saw SLP_TYP=5 with SLP_EN */
    int pm_writes;                    /* every PM1a_CNT write */
    int irq_rc, msi_rc;               /* irq_line / msi results for the request port */
    int requests;                     /* request-port writes served */
    struct tm_access log[TM_LOG_MAX]; /* test device accesses in order */
    int nlog;
    int stop; /* atomic: all vCPU threads leave */
};

static struct accel_probe tm_probe;

static void tm_stop(struct tm_machine *m)
{
    __atomic_store_n(&m->stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < m->ncpus; i++) {
        if (m->cpu[i].vcpu) {
            m->ops->kick(m->cpu[i].vcpu);
        }
    }
}

static uint64_t serial_read(void *opaque, uint64_t off, unsigned size)
{
    return off == 5 ? 0x60 : 0; /* LSR: THR and transmitter empty */
}

static void serial_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct tm_machine *m = opaque;
    if (off != 0) {
        return;
    }
    pthread_mutex_lock(&m->lock);
    if (m->nserial + 1 < sizeof(m->serial)) {
        m->serial[m->nserial++] = (char)val;
        m->serial[m->nserial] = '\0';
    }
    pthread_mutex_unlock(&m->lock);
}

static uint64_t none_read(void *opaque, uint64_t off, unsigned size)
{
    return 0;
}

static void exit_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct tm_machine *m = opaque;
    pthread_mutex_lock(&m->lock);
    m->exit_code = (int)(val & 0xff);
    pthread_mutex_unlock(&m->lock);
    tm_stop(m);
}

static void pm_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct tm_machine *m = opaque;
    bool off_now = off == 0 && size == 2 && ((val >> 10) & 7) == 5 && (val & (1u << 13));
    pthread_mutex_lock(&m->lock);
    m->pm_writes++;
    m->poweroff |= off_now;
    pthread_mutex_unlock(&m->lock);
    if (off_now) {
        tm_stop(m);
    }
}

/* The guest asks for an interrupt: 1 = pulse GSI 1, 2 = MSI vector 0x40 to APIC 0. */
static void req_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct tm_machine *m = opaque;
    int rc = 0;
    if (val == 1) {
        rc = m->ops->irq_line(m->vm, 1, 1);
        if (rc == 0) {
            rc = m->ops->irq_line(m->vm, 1, 0);
        }
        m->irq_rc = rc;
    } else if (val == 2) {
        m->msi_rc = m->ops->msi(m->vm, 0xfee00000, 0x40);
    }
    m->requests++;
}

static void tm_log(struct tm_machine *m, int is_write, int is_mmio, uint64_t off, unsigned size,
                   uint64_t val)
{
    pthread_mutex_lock(&m->lock);
    if (m->nlog < TM_LOG_MAX) {
        m->log[m->nlog++] = (struct tm_access){is_write, is_mmio, off, size, val};
    }
    pthread_mutex_unlock(&m->lock);
}

static uint64_t tm_pattern(uint64_t off, unsigned size)
{
    uint64_t v = TM_TEST_PATTERN ^ off;
    return size >= 8 ? v : v & ((1ull << (size * 8)) - 1);
}

static uint64_t testpio_read(void *opaque, uint64_t off, unsigned size)
{
    tm_log(opaque, 0, 0, off, size, tm_pattern(off, size));
    return tm_pattern(off, size);
}

static void testpio_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    tm_log(opaque, 1, 0, off, size, val);
}

static uint64_t testmmio_read(void *opaque, uint64_t off, unsigned size)
{
    tm_log(opaque, 0, 1, off, size, tm_pattern(off, size));
    return tm_pattern(off, size);
}

static void testmmio_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    tm_log(opaque, 1, 1, off, size, val);
}

static const struct bus_ops serial_ops = {.read = serial_read, .write = serial_write};
static const struct bus_ops exit_ops = {.read = none_read, .write = exit_write};
static const struct bus_ops pm_ops = {.read = none_read, .write = pm_write};
static const struct bus_ops req_ops = {.read = none_read, .write = req_write};
static const struct bus_ops testpio_ops = {.read = testpio_read, .write = testpio_write};
static const struct bus_ops testmmio_ops = {.read = testmmio_read, .write = testmmio_write};

static void tm_dispatch_pio(struct tm_machine *m, struct accel_exit *ex)
{
    unsigned size = ex->pio.size;
    for (uint32_t i = 0; i < ex->pio.count; i++) {
        uint8_t *p = ex->pio.data + (size_t)i * size;
        uint64_t v = 0;
        if (ex->pio.is_write) {
            memcpy(&v, p, size);
            bus_write(m->pio, ex->pio.port, size, v);
        } else {
            bus_read(m->pio, ex->pio.port, size, &v);
            memcpy(p, &v, size);
        }
    }
}

static void tm_dispatch_mmio(struct tm_machine *m, struct accel_exit *ex)
{
    uint64_t v = 0;
    if (ex->mmio.is_write) {
        memcpy(&v, ex->mmio.data, ex->mmio.size);
        bus_write(m->mmio, ex->mmio.addr, ex->mmio.size, v);
    } else {
        bus_read(m->mmio, ex->mmio.addr, ex->mmio.size, &v);
        memcpy(ex->mmio.data, &v, ex->mmio.size);
    }
}

static void *tm_vcpu_thread(void *arg)
{
    struct tm_cpu *c = arg;
    struct tm_machine *m = c->m;
    struct accel_exit ex;
    memset(&ex, 0, sizeof(ex));
    while (!__atomic_load_n(&m->stop, __ATOMIC_SEQ_CST)) {
        int r = m->ops->vcpu_run(c->vcpu, &ex);
        if (r < 0) {
            c->err = r;
            tm_stop(m);
            break;
        }
        switch (ex.reason) {
        case ACCEL_EXIT_PIO:
            tm_dispatch_pio(m, &ex);
            break;
        case ACCEL_EXIT_MMIO:
            tm_dispatch_mmio(m, &ex);
            break;
        case ACCEL_EXIT_INTR:
            break;
        default:
            c->last = ex;
            c->stopped_by_exit = true;
            tm_stop(m);
            break;
        }
    }
    return NULL;
}

static int tm_load(struct tm_machine *m, const char *guest)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.bin", KVM_GUEST_DIR, guest);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return -errno;
    }
    static uint8_t img[TM_ROM_SIZE];
    size_t n = fread(img, 1, sizeof(img), f);
    fclose(f);
    if (n != TM_ROM_SIZE) {
        return -EINVAL;
    }
    return guestmem_write(&m->mem, TM_ROM_GPA, img, n);
}

/* Build the machine around the named guest image; 0 or -errno. */
static int tm_init(struct tm_machine *m, const char *guest, int ncpus)
{
    memset(m, 0, sizeof(*m));
    m->ops = &accel_kvm_ops;
    m->ncpus = ncpus;
    m->exit_code = -1;
    pthread_mutex_init(&m->lock, NULL);
    m->pio = bus_new("pio");
    m->mmio = bus_new("mmio");
    int r = guestmem_add(&m->mem, "ram-low", 0, TM_RAM_SIZE, false);
    if (r == 0) {
        r = guestmem_add(&m->mem, "bios", TM_ROM_GPA, TM_ROM_SIZE, true);
    }
    if (r == 0) {
        r = tm_load(m, guest);
    }
    bus_register(m->pio, TM_SERIAL_PORT, 8, &serial_ops, m, "serial");
    bus_register(m->pio, TM_EXIT_PORT, 1, &exit_ops, m, "exit");
    bus_register(m->pio, TM_PM1A_CNT, 2, &pm_ops, m, "pm1a_cnt");
    bus_register(m->pio, TM_TEST_PORT, 8, &testpio_ops, m, "testdev");
    bus_register(m->pio, TM_REQ_PORT, 1, &req_ops, m, "irq-request");
    bus_register(m->mmio, TM_TEST_MMIO, 0x100, &testmmio_ops, m, "testdev");
    struct accel_vm_config cfg = {.mem = &m->mem, .pio = m->pio, .mmio = m->mmio, .ncpus = ncpus};
    if (r == 0) {
        r = m->ops->vm_create(&cfg, &m->vm);
    }
    for (int i = 0; r == 0 && i < m->mem.n; i++) {
        const struct guestmem_region *g = &m->mem.r[i];
        r = m->ops->map_ram(m->vm, g->gpa, g->size, g->hva, g->readonly);
    }
    if (r == 0) {
        /* The PC's BIOS alias below 1 MiB: same host pages, second slot. */
        const struct guestmem_region *rom = guestmem_find(&m->mem, TM_ROM_GPA);
        r = m->ops->map_ram(m->vm, TM_ROM_ALIAS_GPA, TM_ROM_SIZE, rom->hva, true);
    }
    for (int i = 0; r == 0 && i < ncpus; i++) {
        m->cpu[i].m = m;
        r = m->ops->vcpu_create(m->vm, i, &m->cpu[i].vcpu);
    }
    return r;
}

/* Run all vCPUs until the machine stops or the timeout; false on timeout. */
static bool tm_run(struct tm_machine *m)
{
    for (int i = 0; i < m->ncpus; i++) {
        pthread_create(&m->cpu[i].thread, NULL, tm_vcpu_thread, &m->cpu[i]);
    }
    bool done = false;
    for (int ms = 0; ms < TM_TIMEOUT_MS && !done; ms += 10) {
        done = __atomic_load_n(&m->stop, __ATOMIC_SEQ_CST);
        if (!done) {
            usleep(10000);
        }
    }
    tm_stop(m);
    for (int i = 0; i < m->ncpus; i++) {
        pthread_join(m->cpu[i].thread, NULL);
    }
    for (int i = 0; i < m->ncpus; i++) {
        if (m->cpu[i].err ||
            (m->cpu[i].stopped_by_exit && m->cpu[i].last.reason != ACCEL_EXIT_SHUTDOWN)) {
            fprintf(stderr, "\nvCPU %d stopped: %s (err %d) %s\n", i,
                    accel_exit_name(m->cpu[i].last.reason), m->cpu[i].err,
                    m->cpu[i].last.reason == ACCEL_EXIT_INTERNAL_ERROR ||
                            m->cpu[i].last.reason == ACCEL_EXIT_FAIL_ENTRY
                        ? m->cpu[i].last.error.detail
                        : "");
            accel_dump_vcpu(m->ops, m->cpu[i].vcpu, stderr);
        }
    }
    if (!done) {
        fprintf(stderr, "\nguest timed out; serial so far: \"%s\"\n", m->serial);
        for (int i = 0; i < m->ncpus; i++) {
            fprintf(stderr, "vCPU %d:\n", i);
            accel_dump_vcpu(m->ops, m->cpu[i].vcpu, stderr);
        }
    }
    return done;
}

static void tm_fini(struct tm_machine *m)
{
    for (int i = 0; i < m->ncpus; i++) {
        if (m->cpu[i].vcpu) {
            m->ops->vcpu_destroy(m->cpu[i].vcpu);
        }
    }
    if (m->vm) {
        m->ops->vm_destroy(m->vm);
    }
    guestmem_free(&m->mem);
    bus_free(m->pio);
    bus_free(m->mmio);
    pthread_mutex_destroy(&m->lock);
}

static void test_reset_state(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "hello", 2), 0);
    struct accel_regs r;
    struct accel_sregs s;
    CU_ASSERT_EQUAL(m.ops->get_regs(m.cpu[0].vcpu, &r), 0);
    CU_ASSERT_EQUAL(m.ops->get_sregs(m.cpu[0].vcpu, &s), 0);
    CU_ASSERT_EQUAL(r.rip, 0xfff0);
    CU_ASSERT_EQUAL(r.rflags, 0x2);
    CU_ASSERT_NOT_EQUAL(r.rdx, 0); /* family/model/stepping */
    CU_ASSERT_EQUAL(s.cs.selector, 0xf000);
    CU_ASSERT_EQUAL(s.cs.base, 0xffff0000);
    CU_ASSERT_EQUAL(s.cs.limit, 0xffff);
    CU_ASSERT_EQUAL(s.cr0, 0x60000010);
    CU_ASSERT_EQUAL(s.efer, 0);
    CU_ASSERT_EQUAL(s.apic_base & ~0xfffull, 0xfee00000);
    CU_ASSERT_TRUE(s.apic_base & (1u << 8)); /* BSP */
    CU_ASSERT_EQUAL(m.ops->get_sregs(m.cpu[1].vcpu, &s), 0);
    CU_ASSERT_FALSE(s.apic_base & (1u << 8)); /* AP */
    uint64_t misc = 0;
    CU_ASSERT_EQUAL(m.ops->get_msr(m.cpu[0].vcpu, 0x1a0, &misc), 0);
    CU_ASSERT_TRUE(misc & 1); /* fast strings */
    /* Registers round-trip through the neutral layout. */
    r.rax = 0x1122334455667788ull;
    r.r15 = 0x8877665544332211ull;
    CU_ASSERT_EQUAL(m.ops->set_regs(m.cpu[0].vcpu, &r), 0);
    struct accel_regs r2;
    CU_ASSERT_EQUAL(m.ops->get_regs(m.cpu[0].vcpu, &r2), 0);
    CU_ASSERT_EQUAL(r2.rax, r.rax);
    CU_ASSERT_EQUAL(r2.r15, r.r15);
    CU_ASSERT_EQUAL(m.ops->get_sregs(m.cpu[0].vcpu, &s), 0);
    s.ds.selector = 0x1234;
    s.ds.base = 0x12340;
    CU_ASSERT_EQUAL(m.ops->set_sregs(m.cpu[0].vcpu, &s), 0);
    struct accel_sregs s2;
    CU_ASSERT_EQUAL(m.ops->get_sregs(m.cpu[0].vcpu, &s2), 0);
    CU_ASSERT_EQUAL(s2.ds.selector, 0x1234);
    CU_ASSERT_EQUAL(s2.ds.base, 0x12340);
    /* A bogus MSR is refused, not silently accepted. */
    CU_ASSERT_NOT_EQUAL(m.ops->get_msr(m.cpu[0].vcpu, 0xdeadbeef, &misc), 0);
    /* vcpu_reset puts it back. */
    CU_ASSERT_EQUAL(m.ops->vcpu_reset(m.cpu[0].vcpu), 0);
    CU_ASSERT_EQUAL(m.ops->get_regs(m.cpu[0].vcpu, &r2), 0);
    CU_ASSERT_EQUAL(r2.rax, 0);
    CU_ASSERT_EQUAL(r2.rip, 0xfff0);
    tm_fini(&m);
}

static void test_bad_args(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "hello", 1), 0);
    struct accel_vcpu *v = NULL;
    CU_ASSERT_EQUAL(m.ops->vcpu_create(m.vm, 1, &v), -EINVAL); /* beyond ncpus */
    static uint8_t page[8192] __attribute__((aligned(4096)));
    CU_ASSERT_EQUAL(m.ops->map_ram(m.vm, 0x100800, 4096, page, false), -EINVAL);
    CU_ASSERT_EQUAL(m.ops->map_ram(m.vm, 0x100000, 0, page, false), -EINVAL);
    tm_fini(&m);
}

static void test_hello_real_mode(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "hello", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_EQUAL(m.cpu[0].err, 0);
    CU_ASSERT_STRING_EQUAL(m.serial, "hello\n");
    CU_ASSERT_EQUAL(m.exit_code, 0);
    tm_fini(&m);
}

static void test_long_mode(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "longmode", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_STRING_EQUAL(m.serial, "long mode\n");
    CU_ASSERT_EQUAL(m.exit_code, 0);
    struct accel_sregs s;
    CU_ASSERT_EQUAL(m.ops->get_sregs(m.cpu[0].vcpu, &s), 0);
    CU_ASSERT_TRUE(s.efer & (1u << 10)); /* LMA */
    CU_ASSERT_EQUAL(s.cs.l, 1);
    CU_ASSERT_EQUAL(s.cs.selector, 0x18);
    CU_ASSERT_EQUAL(s.cr3, 0x10000);
    tm_fini(&m);
}

static bool tm_log_has(struct tm_machine *m, int is_write, int is_mmio, uint64_t off, unsigned size,
                       uint64_t val)
{
    for (int i = 0; i < m->nlog; i++) {
        const struct tm_access *a = &m->log[i];
        if (a->is_write == is_write && a->is_mmio == is_mmio && a->off == off && a->size == size &&
            a->val == val) {
            return true;
        }
    }
    return false;
}

static void test_io_dispatch(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "iodispatch", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_EQUAL(m.exit_code, 0); /* the guest saw every read value it expected */
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 1, 0x1, 1, 0x11));
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 1, 0x2, 2, 0x2233));
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 1, 0x4, 4, 0x44556677));
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 1, 0x8, 8, 0x8899aabbccddeeffull));
    CU_ASSERT_TRUE(tm_log_has(&m, 0, 1, 0x10, 1, tm_pattern(0x10, 1)));
    CU_ASSERT_TRUE(tm_log_has(&m, 0, 1, 0x18, 8, tm_pattern(0x18, 8)));
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 0, 1, 1, 0x5a));
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 0, 2, 2, 0x1234));
    CU_ASSERT_TRUE(tm_log_has(&m, 1, 0, 4, 4, 0xdeadbeef));
    CU_ASSERT_TRUE(tm_log_has(&m, 0, 0, 4, 4, tm_pattern(4, 4)));
    /* rep outsb: four byte writes at offset 0 in order. */
    int k = 0;
    static const uint8_t sdata[] = {0xa1, 0xb2, 0xc3, 0xd4};
    for (int i = 0; i < m.nlog; i++) {
        if (m.log[i].is_write && !m.log[i].is_mmio && m.log[i].off == 0 && k < 4) {
            CU_ASSERT_EQUAL(m.log[i].val, sdata[k]);
            k++;
        }
    }
    CU_ASSERT_EQUAL(k, 4);
    /* rep insw: three word reads at offset 6. */
    int reads6 = 0;
    for (int i = 0; i < m.nlog; i++) {
        reads6 +=
            !m.log[i].is_write && !m.log[i].is_mmio && m.log[i].off == 6 && m.log[i].size == 2;
    }
    CU_ASSERT_EQUAL(reads6, 3);
    tm_fini(&m);
}

static void test_timer_irq(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "timer", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_STRING_EQUAL(m.serial, "tick tick tick\n");
    CU_ASSERT_EQUAL(m.exit_code, 0);
    uint16_t count = 0;
    CU_ASSERT_EQUAL(guestmem_read(&m.mem, 0x500, &count, 2), 0);
    CU_ASSERT_TRUE(count >= 3);
    tm_fini(&m);
}

static void test_two_vcpus(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "smp", 2), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_STRING_EQUAL(m.serial, "AP1\nBSP0\n");
    CU_ASSERT_EQUAL(m.exit_code, 0);
    tm_fini(&m);
}

static void test_irq_line_and_msi(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "irqmsi", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_EQUAL(m.requests, 2);
    CU_ASSERT_EQUAL(m.irq_rc, 0);
    CU_ASSERT_EQUAL(m.msi_rc, 0);
    CU_ASSERT_STRING_EQUAL(m.serial, "irq msi\n");
    CU_ASSERT_EQUAL(m.exit_code, 0);
    uint32_t c1 = 0, c2 = 0;
    guestmem_read(&m.mem, 0x600, &c1, 4);
    guestmem_read(&m.mem, 0x604, &c2, 4);
    CU_ASSERT_EQUAL(c1, 1); /* one edge, one interrupt */
    CU_ASSERT_EQUAL(c2, 1);
    tm_fini(&m);
}

/* After vcpu_reset the same VM boots again: BSP at the reset vector, the AP back in
 * wait-for-SIPI, local APICs back to power-up state. */
static void test_reset_and_rerun(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "smp", 2), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_STRING_EQUAL(m.serial, "AP1\nBSP0\n");
    for (int i = 0; i < m.ncpus; i++) {
        CU_ASSERT_EQUAL(m.ops->vcpu_reset(m.cpu[i].vcpu), 0);
    }
    uint32_t zero = 0;
    guestmem_write(&m.mem, 0x600, &zero, 4); /* the AP's flag: RAM is not reset */
    m.stop = 0;
    m.exit_code = -1;
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_STRING_EQUAL(m.serial, "AP1\nBSP0\nAP1\nBSP0\n");
    CU_ASSERT_EQUAL(m.exit_code, 0);
    tm_fini(&m);
}

static void test_acpi_poweroff(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "poweroff", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_TRUE(m.poweroff);
    CU_ASSERT_EQUAL(m.pm_writes, 2);
    CU_ASSERT_STRING_EQUAL(m.serial, "still on\n");
    CU_ASSERT_EQUAL(m.exit_code, -1);
    tm_fini(&m);
}

static void test_cpuid_leaves(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "cpuid", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_STRING_EQUAL(m.serial, "KVMKVMKVM\ntsc\n");
    if (strcmp(m.serial, "KVMKVMKVM\ntsc\n") != 0) {
        fprintf(stderr, "cpuid guest printed \"%s\"\n", m.serial);
    }
    CU_ASSERT_EQUAL(m.exit_code, 0);
    tm_fini(&m);
}

static void test_triple_fault(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "triplefault", 1), 0);
    CU_ASSERT_TRUE(tm_run(&m));
    CU_ASSERT_TRUE(m.cpu[0].stopped_by_exit);
    CU_ASSERT_EQUAL(m.cpu[0].last.reason, ACCEL_EXIT_SHUTDOWN);
    CU_ASSERT_EQUAL(m.exit_code, -1);
    tm_fini(&m);
}

/* kick() from another thread gets a vCPU out of an in-kernel HLT. */
static void test_kick(void)
{
    struct tm_machine m;
    CU_ASSERT_EQUAL_FATAL(tm_init(&m, "hello", 2), 0);
    /* vCPU 1 is an AP waiting for SIPI: KVM_RUN blocks until kicked. */
    m.ncpus = 2;
    pthread_create(&m.cpu[1].thread, NULL, tm_vcpu_thread, &m.cpu[1]);
    usleep(50000);
    tm_stop(&m);
    pthread_join(m.cpu[1].thread, NULL);
    CU_ASSERT_EQUAL(m.cpu[1].err, 0);
    CU_ASSERT_FALSE(m.cpu[1].stopped_by_exit);
    tm_fini(&m);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("kvm_guests", NULL, NULL);
    CU_add_test(s, "reset state and register round trip", test_reset_state);
    CU_add_test(s, "bad arguments refused", test_bad_args);
    CU_add_test(s, "(a) real-mode hello", test_hello_real_mode);
    CU_add_test(s, "(b) guest enters long mode", test_long_mode);
    CU_add_test(s, "(c) PIO and MMIO dispatch", test_io_dispatch);
    CU_add_test(s, "(d) PIT/8259 timer interrupts", test_timer_irq);
    CU_add_test(s, "(e) two vCPUs, INIT-SIPI-SIPI", test_two_vcpus);
    CU_add_test(s, "irq_line and msi reach the guest", test_irq_line_and_msi);
    CU_add_test(s, "reset and boot again", test_reset_and_rerun);
    CU_add_test(s, "(f) ACPI power-off", test_acpi_poweroff);
    CU_add_test(s, "hypervisor CPUID leaves", test_cpuid_leaves);
    CU_add_test(s, "triple fault exits as shutdown", test_triple_fault);
    CU_add_test(s, "kick interrupts a blocked vCPU", test_kick);
    accel_kvm_ops.probe(&tm_probe);
    if (!tm_probe.available) {
        printf("kvm tests skipped: %s\n", tm_probe.reason);
        CU_set_suite_active(s, CU_FALSE);
        CU_set_fail_on_inactive(CU_FALSE);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    if (!tm_probe.available) {
        return 77; /* meson: skipped */
    }
    return fails ? 1 : 0;
}
