/* Unit tests for core/machine + core/vcpu: the run loop and machine requests driven by a
 * scripted engine (no KVM, no soft CPU): PIO string dispatch, MMIO read completion,
 * reset (devices and vCPUs reset, threads restarted), ACPI power-off, triple fault. */
#include "core/machine.h"

#include "hostdrv/accel.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum step_kind { STEP_PIO_OUT, STEP_PIO_IN, STEP_MMIO_OUT, STEP_MMIO_IN, STEP_EXIT };

struct step {
    enum step_kind kind;
    uint64_t addr; /* port or guest physical address */
    uint8_t size;
    uint32_t count;                /* PIO repeats */
    uint64_t val;                  /* write value (PIO/MMIO out) */
    enum accel_exit_reason reason; /* STEP_EXIT */
};

/* One scripted VM; the "engine" walks the script across vcpu_run calls. */
struct accel_vm {
    const struct step *script;
    int nsteps;
    int pos;                /* next step */
    int resets;             /* vcpu_reset calls */
    int maps;               /* map_ram calls */
    uint8_t pio_buf[64];    /* engine-owned PIO data, like kvm_run's */
    struct accel_exit last; /* the exit handed out last, to see what the loop wrote back */
    uint8_t lsr[2];         /* what the loop read from the UART LSR */
    uint32_t ioapic_ver;    /* what the loop read from IOAPIC register 1 */
};

struct accel_vcpu {
    struct accel_vm *vm;
};

static const struct step *mock_script;
static int mock_nsteps;

static int mock_probe(struct accel_probe *out)
{
    out->available = true;
    out->irqchip_in_kernel = false;
    return 0;
}

static struct accel_vm *mock_vm_last;

static int mock_vm_create(const struct accel_vm_config *cfg, struct accel_vm **out)
{
    struct accel_vm *vm = calloc(1, sizeof(*vm));
    vm->script = mock_script;
    vm->nsteps = mock_nsteps;
    mock_vm_last = vm;
    *out = vm;
    return 0;
}

static void mock_vm_destroy(struct accel_vm *vm)
{
    /* kept for the test to inspect; freed by the test */
}

static int mock_map_ram(struct accel_vm *vm, uint64_t gpa, uint64_t size, void *hva, bool ro)
{
    vm->maps++;
    return 0;
}

static int mock_vcpu_create(struct accel_vm *vm, int index, struct accel_vcpu **out)
{
    struct accel_vcpu *v = calloc(1, sizeof(*v));
    v->vm = vm;
    *out = v;
    return 0;
}

static void mock_vcpu_destroy(struct accel_vcpu *v)
{
    free(v);
}

static int mock_vcpu_run(struct accel_vcpu *v, struct accel_exit *e)
{
    struct accel_vm *vm = v->vm;
    /* What the run loop did with the previous exit. */
    if (vm->last.reason == ACCEL_EXIT_PIO && !vm->last.pio.is_write && vm->last.pio.port == 0x3fd) {
        memcpy(vm->lsr, vm->pio_buf, 2);
    }
    if (vm->last.reason == ACCEL_EXIT_MMIO && !vm->last.mmio.is_write) {
        memcpy(&vm->ioapic_ver, e->mmio.data, 4);
    }
    memset(&vm->last, 0, sizeof(vm->last));
    if (vm->pos >= vm->nsteps) {
        e->reason = ACCEL_EXIT_SHUTDOWN;
        vm->last = *e;
        return 0;
    }
    const struct step *s = &vm->script[vm->pos++];
    switch (s->kind) {
    case STEP_PIO_OUT:
    case STEP_PIO_IN:
        e->reason = ACCEL_EXIT_PIO;
        e->pio.port = (uint16_t)s->addr;
        e->pio.size = s->size;
        e->pio.count = s->count;
        e->pio.is_write = s->kind == STEP_PIO_OUT;
        e->pio.data = vm->pio_buf;
        if (s->kind == STEP_PIO_OUT) {
            for (uint32_t i = 0; i < s->count * s->size && i < sizeof(vm->pio_buf); i++) {
                vm->pio_buf[i] = (uint8_t)(s->val >> (8 * (i % 8)));
            }
        } else {
            memset(vm->pio_buf, 0, sizeof(vm->pio_buf));
        }
        break;
    case STEP_MMIO_OUT:
    case STEP_MMIO_IN:
        e->reason = ACCEL_EXIT_MMIO;
        e->mmio.addr = s->addr;
        e->mmio.size = s->size;
        e->mmio.is_write = s->kind == STEP_MMIO_OUT;
        memcpy(e->mmio.data, &s->val, 8);
        break;
    case STEP_EXIT:
        e->reason = s->reason;
        break;
    }
    vm->last = *e;
    return 0;
}

static int mock_get_regs(struct accel_vcpu *v, struct accel_regs *r)
{
    memset(r, 0, sizeof(*r));
    r->rip = 0xfff0;
    return 0;
}

static int mock_set_regs(struct accel_vcpu *v, const struct accel_regs *r)
{
    return 0;
}

static int mock_get_sregs(struct accel_vcpu *v, struct accel_sregs *s)
{
    memset(s, 0, sizeof(*s));
    return 0;
}

static int mock_set_sregs(struct accel_vcpu *v, const struct accel_sregs *s)
{
    return 0;
}

static void mock_kick(struct accel_vcpu *v)
{
}

static int mock_vcpu_reset(struct accel_vcpu *v)
{
    v->vm->resets++;
    return 0;
}

static const struct accel_ops mock_ops = {
    .name = "mock",
    .probe = mock_probe,
    .vm_create = mock_vm_create,
    .vm_destroy = mock_vm_destroy,
    .map_ram = mock_map_ram,
    .vcpu_create = mock_vcpu_create,
    .vcpu_destroy = mock_vcpu_destroy,
    .vcpu_run = mock_vcpu_run,
    .get_regs = mock_get_regs,
    .set_regs = mock_set_regs,
    .get_sregs = mock_get_sregs,
    .set_sregs = mock_set_sregs,
    .kick = mock_kick,
    .vcpu_reset = mock_vcpu_reset,
};

static uint8_t rom[4096];

static int run_script(const struct step *script, int n, bool no_reboot, char *serial_out,
                      size_t outlen)
{
    char path[] = "/tmp/lodge-test-machine-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    close(fd);
    char spec[64];
    snprintf(spec, sizeof(spec), "file:%s", path);
    mock_script = script;
    mock_nsteps = n;
    struct machine_config cfg = {.mem_size = 64ull << 20,
                                 .ncpus = 1,
                                 .accel = &mock_ops,
                                 .bios = rom,
                                 .bios_size = sizeof(rom),
                                 .bios_path = "rom.bin",
                                 .serial = spec,
                                 .no_reboot = no_reboot};
    struct machine *m = NULL;
    struct machine_error err;
    int rc = machine_new(&cfg, &m, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    /* The error report goes to stderr: keep the test output clean. */
    fflush(stderr);
    int saved = dup(2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    int status = machine_run(m);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(null);
    machine_free(m);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(serial_out, 1, outlen - 1, f) : 0;
    serial_out[got] = 0;
    if (f) {
        fclose(f);
    }
    unlink(path);
    return status;
}

#define S5 ((5u << 10) | (1u << 13))

static void test_dispatch_reset_poweroff(void)
{
    const struct step script[] = {
        {STEP_PIO_OUT, 0x3f8, 1, 3, 0x636261}, /* "abc": string OUT to THR */
        {STEP_PIO_IN, 0x3fd, 1, 2, 0},         /* LSR twice */
        {STEP_MMIO_OUT, 0xfec00000, 4, 0, 1},  /* IOREGSEL = version */
        {STEP_MMIO_IN, 0xfec00010, 4, 0, 0},   /* IOWIN */
        {STEP_PIO_OUT, 0x80, 1, 1, 0x55},      /* POST code: ignored */
        {STEP_PIO_OUT, 0xcf9, 1, 1, 0x06},     /* reset */
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'd'},      /* after the reset */
        {STEP_PIO_OUT, 0x604, 2, 1, S5},       /* ACPI S5 */
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'X'},      /* must never run */
    };
    char out[64];
    int n = (int)(sizeof(script) / sizeof(script[0]));
    int status = run_script(script, n, false, out, sizeof(out));
    struct accel_vm *vm = mock_vm_last;
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_STRING_EQUAL(out, "abcd");
    CU_ASSERT_EQUAL(vm->resets, 2);           /* power-on and the 0xCF9 reset */
    CU_ASSERT_TRUE(vm->maps >= 2);            /* ram-low and the ROM */
    CU_ASSERT_EQUAL(vm->lsr[0] & 0x60, 0x60); /* THRE | TEMT: both elements filled */
    CU_ASSERT_EQUAL(vm->lsr[1] & 0x60, 0x60);
    CU_ASSERT_EQUAL(vm->ioapic_ver & 0xff, 0x20);       /* IOAPIC version register via MMIO */
    CU_ASSERT_EQUAL((vm->ioapic_ver >> 16) & 0xff, 23); /* 24 redirection entries */
    CU_ASSERT_EQUAL(vm->pos, n - 1);                    /* stopped right after the S5 write */
    free(vm);
}

static void test_no_reboot(void)
{
    const struct step script[] = {
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'a'},
        {STEP_PIO_OUT, 0x64, 1, 1, 0xfe}, /* keyboard controller reset */
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'X'},
    };
    char out[64];
    int status = run_script(script, 3, true, out, sizeof(out));
    struct accel_vm *vm = mock_vm_last;
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_STRING_EQUAL(out, "a");
    CU_ASSERT_EQUAL(vm->resets, 1);
    free(vm);
}

static void test_triple_fault(void)
{
    const struct step script[] = {
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'a'},
        {STEP_EXIT, 0, 0, 0, 0, ACCEL_EXIT_SHUTDOWN},
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'X'},
    };
    char out[64];
    int status = run_script(script, 3, false, out, sizeof(out));
    struct accel_vm *vm = mock_vm_last;
    CU_ASSERT_EQUAL(status, 1);
    CU_ASSERT_STRING_EQUAL(out, "a");
    CU_ASSERT_EQUAL(vm->pos, 2);
    free(vm);
}

static void test_engine_reset_exit(void)
{
    const struct step script[] = {
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'a'},
        {STEP_EXIT, 0, 0, 0, 0, ACCEL_EXIT_RESET},
        {STEP_PIO_OUT, 0x3f8, 1, 1, 'b'},
        {STEP_EXIT, 0, 0, 0, 0, ACCEL_EXIT_POWEROFF},
    };
    char out[64];
    int status = run_script(script, 4, false, out, sizeof(out));
    struct accel_vm *vm = mock_vm_last;
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_STRING_EQUAL(out, "ab");
    CU_ASSERT_EQUAL(vm->resets, 2);
    free(vm);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("machine", NULL, NULL);
    CU_add_test(s, "dispatch, reset, power-off", test_dispatch_reset_poweroff);
    CU_add_test(s, "reset with --no-reboot", test_no_reboot);
    CU_add_test(s, "triple fault stops with status 1", test_triple_fault);
    CU_add_test(s, "engine reset and power-off exits", test_engine_reset_exit);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
