/* Unit tests for accel_soft_ops (core/cpu/soft_accel.c): the soft CPU behind the accelerator
 * seam: register round trips, triple fault -> ACCEL_EXIT_SHUTDOWN, kick from another thread
 * while running and while halted with IF clear. */
#include "core/bus.h"
#include "core/guestmem.h"
#include "hostdrv/accel.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

static const struct accel_ops *ops = &accel_soft_ops;
static struct guestmem mem;
static struct bus *pio, *mmio;
static struct accel_vm *vm;
static struct accel_vcpu *vcpu;

static int setup(void)
{
    memset(&mem, 0, sizeof(mem));
    if (guestmem_add(&mem, "ram", 0, 1 << 20, false) < 0) {
        return 1;
    }
    pio = bus_new("pio");
    mmio = bus_new("mmio");
    struct accel_vm_config cfg = {.mem = &mem, .pio = pio, .mmio = mmio, .ncpus = 1};
    if (ops->vm_create(&cfg, &vm) < 0 || ops->vcpu_create(vm, 0, &vcpu) < 0) {
        return 1;
    }
    return 0;
}

static int teardown(void)
{
    ops->vcpu_destroy(vcpu);
    ops->vm_destroy(vm);
    bus_free(pio);
    bus_free(mmio);
    guestmem_free(&mem);
    return 0;
}

/* Real mode, CS = 0, code at 0x1000, the given IDT limit. */
static void start_real(const uint8_t *code, size_t n, uint16_t idt_limit)
{
    CU_ASSERT_EQUAL(ops->vcpu_reset(vcpu), 0);
    guestmem_write(&mem, 0x1000, code, n);
    struct accel_sregs s;
    CU_ASSERT_EQUAL(ops->get_sregs(vcpu, &s), 0);
    CU_ASSERT_EQUAL(s.cs.selector, 0xf000);
    CU_ASSERT_EQUAL(s.cs.base, 0xffff0000ull);
    CU_ASSERT_EQUAL(s.cr0 & 1, 0);
    s.cs.selector = 0;
    s.cs.base = 0;
    s.idt.limit = idt_limit;
    CU_ASSERT_EQUAL(ops->set_sregs(vcpu, &s), 0);
    struct accel_regs r;
    memset(&r, 0, sizeof(r));
    r.rip = 0x1000;
    r.rsp = 0x8000;
    r.rflags = 0x2;
    CU_ASSERT_EQUAL(ops->set_regs(vcpu, &r), 0);
}

static void test_probe_and_regs(void)
{
    struct accel_probe p;
    CU_ASSERT_EQUAL(ops->probe(&p), 0);
    CU_ASSERT_TRUE(p.available);
    CU_ASSERT_FALSE(p.irqchip_in_kernel);

    static const uint8_t code[] = {0xb8, 0x34, 0x12, 0xf4}; /* mov ax, 0x1234; hlt */
    start_real(code, sizeof(code), 0x3ff);
    struct accel_regs r;
    CU_ASSERT_EQUAL(ops->get_regs(vcpu, &r), 0);
    CU_ASSERT_EQUAL(r.rip, 0x1000);
    CU_ASSERT_EQUAL(r.rsp, 0x8000);
    uint64_t efer = 1;
    CU_ASSERT_EQUAL(ops->get_msr(vcpu, 0xc0000080u, &efer), 0);
    CU_ASSERT_EQUAL(efer, 0);
    CU_ASSERT_NOT_EQUAL(ops->get_msr(vcpu, 0x12345678u, &efer), 0);
    CU_ASSERT_EQUAL(ops->set_msr(vcpu, 0xc0000081u, 0x0023001000000000ull), 0);
    uint64_t star = 0;
    CU_ASSERT_EQUAL(ops->get_msr(vcpu, 0xc0000081u, &star), 0);
    CU_ASSERT_EQUAL(star, 0x0023001000000000ull);
}

struct kicker {
    int delay_ms;
};

static void *kick_later(void *arg)
{
    struct kicker *k = arg;
    struct timespec ts = {0, (long)k->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    ops->kick(vcpu);
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* vcpu_run with a kick after delay_ms; checks that it did not return before the kick. */
static int run_with_kick(int delay_ms, struct accel_exit *e)
{
    struct kicker k = {delay_ms};
    pthread_t t;
    double t0 = now_ms();
    pthread_create(&t, NULL, kick_later, &k);
    int rc = ops->vcpu_run(vcpu, e);
    CU_ASSERT_TRUE(now_ms() - t0 >= delay_ms - 1);
    pthread_join(t, NULL);
    return rc;
}

static void test_kick(void)
{
    struct accel_exit e;
    /* A guest spinning in jmp $ returns on a kick. */
    static const uint8_t spin[] = {0xeb, 0xfe};
    start_real(spin, sizeof(spin), 0x3ff);
    memset(&e, 0, sizeof(e));
    CU_ASSERT_EQUAL(run_with_kick(50, &e), 0);
    CU_ASSERT_EQUAL(e.reason, ACCEL_EXIT_INTR);
    struct accel_regs r;
    ops->get_regs(vcpu, &r);
    CU_ASSERT_EQUAL(r.rip, 0x1000);

    /* cli; hlt: waits (no interrupt can come) until the kick. */
    static const uint8_t halt[] = {0xfa, 0xf4};
    start_real(halt, sizeof(halt), 0x3ff);
    memset(&e, 0, sizeof(e));
    CU_ASSERT_EQUAL(run_with_kick(50, &e), 0);
    CU_ASSERT_EQUAL(e.reason, ACCEL_EXIT_INTR);
    ops->get_regs(vcpu, &r);
    CU_ASSERT_EQUAL(r.rip, 0x1002);
}

static void test_triple_fault(void)
{
    /* ud2 with an empty IVT: #UD -> #GP -> #DF -> shutdown. */
    static const uint8_t ud2[] = {0x0f, 0x0b};
    start_real(ud2, sizeof(ud2), 0);
    struct accel_exit e;
    memset(&e, 0, sizeof(e));
    CU_ASSERT_EQUAL(ops->vcpu_run(vcpu, &e), 0);
    CU_ASSERT_EQUAL(e.reason, ACCEL_EXIT_SHUTDOWN);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("soft_accel", setup, teardown);
    CU_add_test(s, "probe_and_regs", test_probe_and_regs);
    CU_add_test(s, "kick", test_kick);
    CU_add_test(s, "triple_fault", test_triple_fault);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
