/* lodge doctor: is KVM there, usable, and is its hardware assist real?
 *
 * The last question is answered by timing: a loop of `dec ecx; jnz` runs in a one-page
 * real-mode guest between two port writes, and the same loop runs on the host. With
 * VT-x/AMD-V both take about one cycle per iteration; a nested host that emulates the
 * guest is hundreds of times slower. */
#include "hostdrv/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DOCTOR_GUEST_MEM 0x10000u
#define DOCTOR_CODE_GPA 0x1000u
#define DOCTOR_PORT 0x80 /* POST code port: the markers around the loop */
#define DOCTOR_TIMEOUT_S 20

static uint64_t doctor_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void doctor_host_loop(uint32_t n)
{
    __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
}

static double doctor_time_host(uint32_t loops)
{
    double best = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = doctor_now_ns();
        doctor_host_loop(loops);
        double dt = (double)(doctor_now_ns() - t0);
        if (i == 0 || dt < best) {
            best = dt;
        }
    }
    return best / loops;
}

/* Kicks the vCPU when the guest takes longer than DOCTOR_TIMEOUT_S. */
struct doctor_watchdog {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;               /* the measurement finished */
    struct accel_vcpu *vcpu; /* what to kick */
};

static void *doctor_watchdog_thread(void *arg)
{
    struct doctor_watchdog *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DOCTOR_TIMEOUT_S;
    pthread_mutex_lock(&w->lock);
    int r = 0;
    while (!w->done && r != ETIMEDOUT) {
        r = pthread_cond_timedwait(&w->cond, &w->lock, &until);
    }
    if (!w->done) {
        accel_kvm_ops.kick(w->vcpu);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void doctor_write_code(uint8_t *p, uint32_t loops)
{
    static const uint8_t head[] = {
        0xe6, DOCTOR_PORT, /* out 0x80, al: start */
        0x66, 0xb9,        /* mov ecx, imm32 */
    };
    static const uint8_t tail[] = {
        0x66, 0x49,        /* l: dec ecx */
        0x75, 0xfc,        /* jnz l */
        0xe6, DOCTOR_PORT, /* out 0x80, al: end */
        0xf4,              /* hlt */
        0xeb, 0xfd,        /* jmp hlt */
    };
    memcpy(p, head, sizeof(head));
    memcpy(p + sizeof(head), &loops, 4);
    memcpy(p + sizeof(head) + 4, tail, sizeof(tail));
}

static int doctor_run_guest(struct accel_vcpu *vcpu, uint64_t *ns, char *err, size_t errlen)
{
    const struct accel_ops *ops = &accel_kvm_ops;
    struct accel_exit ex;
    uint64_t t0 = 0;
    int marks = 0;
    memset(&ex, 0, sizeof(ex));
    while (marks < 2) {
        int r = ops->vcpu_run(vcpu, &ex);
        if (r < 0) {
            snprintf(err, errlen, "KVM_RUN: %s", strerror(-r));
            return r;
        }
        if (ex.reason == ACCEL_EXIT_PIO && ex.pio.port == DOCTOR_PORT && ex.pio.is_write) {
            if (marks++ == 0) {
                t0 = doctor_now_ns();
            } else {
                *ns = doctor_now_ns() - t0;
            }
            continue;
        }
        if (ex.reason == ACCEL_EXIT_INTR) {
            snprintf(err, errlen, "calibration guest took more than %d s", DOCTOR_TIMEOUT_S);
            return -ETIMEDOUT;
        }
        snprintf(err, errlen, "calibration guest stopped: %s", accel_exit_name(ex.reason));
        return -EIO;
    }
    return 0;
}

int doctor_measure_kvm(double *guest_ns_per_loop, double *host_ns_per_loop, char *err,
                       size_t errlen)
{
    const struct accel_ops *ops = &accel_kvm_ops;
    const uint32_t loops = DOCTOR_CALIBRATION_LOOPS;
    struct accel_vm_config cfg = {.ncpus = 1};
    struct accel_vm *vm = NULL;
    struct accel_vcpu *vcpu = NULL;
    uint8_t *mem =
        mmap(NULL, DOCTOR_GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        snprintf(err, errlen, "no memory for the calibration guest");
        return -ENOMEM;
    }
    doctor_write_code(mem + DOCTOR_CODE_GPA, loops);
    int r = ops->vm_create(&cfg, &vm);
    if (r < 0) {
        snprintf(err, errlen, "cannot create a KVM VM: %s", strerror(-r));
        goto out;
    }
    r = ops->map_ram(vm, 0, DOCTOR_GUEST_MEM, mem, false);
    if (r == 0) {
        r = ops->vcpu_create(vm, 0, &vcpu);
    }
    struct accel_sregs s;
    if (r == 0) {
        r = ops->get_sregs(vcpu, &s);
    }
    if (r == 0) {
        s.cs.selector = 0;
        s.cs.base = 0;
        r = ops->set_sregs(vcpu, &s);
    }
    struct accel_regs regs = {.rip = DOCTOR_CODE_GPA, .rflags = 2};
    if (r == 0) {
        r = ops->set_regs(vcpu, &regs);
    }
    if (r < 0) {
        snprintf(err, errlen, "cannot set up the calibration guest: %s", strerror(-r));
        goto out;
    }
    struct doctor_watchdog w = {.vcpu = vcpu};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    pthread_t wd;
    bool have_wd = pthread_create(&wd, NULL, doctor_watchdog_thread, &w) == 0;
    uint64_t ns = 0;
    r = doctor_run_guest(vcpu, &ns, err, errlen);
    if (have_wd) {
        pthread_mutex_lock(&w.lock);
        w.done = true;
        pthread_cond_signal(&w.cond);
        pthread_mutex_unlock(&w.lock);
        pthread_join(wd, NULL);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    if (r == 0) {
        *guest_ns_per_loop = (double)ns / loops;
        *host_ns_per_loop = doctor_time_host(loops);
    }
out:
    if (vcpu) {
        ops->vcpu_destroy(vcpu);
    }
    if (vm) {
        ops->vm_destroy(vm);
    }
    munmap(mem, DOCTOR_GUEST_MEM);
    return r;
}

static void doctor_check_device(struct doctor_report *r)
{
    struct stat st;
    r->api_version = -1;
    r->dev_present = stat("/dev/kvm", &st) == 0;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM) {
            snprintf(r->open_error, sizeof(r->open_error),
                     "permission denied; add yourself to group kvm "
                     "(sudo usermod -aG kvm $USER) and log in again");
        } else if (e == ENOENT || e == ENXIO || e == ENODEV) {
            snprintf(r->open_error, sizeof(r->open_error),
                     "no KVM: enable VT-x/AMD-V in firmware and load kvm_intel/kvm_amd");
        } else {
            snprintf(r->open_error, sizeof(r->open_error), "%s", strerror(e));
        }
        return;
    }
    r->dev_openable = true;
    r->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
    const char *missing = kvm_first_missing_cap(fd);
    snprintf(r->missing_cap, sizeof(r->missing_cap), "%s", missing ? missing : "");
    close(fd);
}

static void doctor_choose(struct doctor_report *r)
{
    const struct accel_probe soft = r->soft;
    if (r->probe.available && r->assist == DOCTOR_ASSIST_NATIVE) {
        r->auto_engine = "kvm";
        snprintf(r->auto_why, sizeof(r->auto_why),
                 "KVM hardware assist runs guest code at %.1fx host time",
                 r->guest_ns_per_loop / r->host_ns_per_loop);
        return;
    }
    char kvm_why[256];
    if (!r->probe.available) {
        snprintf(kvm_why, sizeof(kvm_why), "KVM unusable: %s", r->probe.reason);
    } else if (r->assist == DOCTOR_ASSIST_EMULATED) {
        snprintf(kvm_why, sizeof(kvm_why),
                 "KVM is emulated by a nested host (%.0fx slower than the host)",
                 r->guest_ns_per_loop / r->host_ns_per_loop);
    } else {
        snprintf(kvm_why, sizeof(kvm_why), "KVM speed unknown (%s)", r->measure_error);
    }
    if (!soft.available && r->probe.available) {
        r->auto_engine = "kvm";
        snprintf(r->auto_why, sizeof(r->auto_why), "%s, but the soft engine is unavailable (%s)",
                 kvm_why, soft.reason);
        return;
    }
    r->auto_engine = "soft";
    snprintf(r->auto_why, sizeof(r->auto_why), "%s", kvm_why);
}

int doctor_check(struct doctor_report *r)
{
    memset(r, 0, sizeof(*r));
    doctor_check_device(r);
    accel_kvm_ops.probe(&r->probe);
    if (accel_soft_ops.probe) {
        accel_soft_ops.probe(&r->soft);
    }
    r->assist = DOCTOR_ASSIST_UNKNOWN;
    if (r->probe.available) {
        int e = doctor_measure_kvm(&r->guest_ns_per_loop, &r->host_ns_per_loop, r->measure_error,
                                   sizeof(r->measure_error));
        if (e == 0 && r->host_ns_per_loop > 0) {
            double ratio = r->guest_ns_per_loop / r->host_ns_per_loop;
            r->assist =
                ratio > DOCTOR_EMULATED_RATIO ? DOCTOR_ASSIST_EMULATED : DOCTOR_ASSIST_NATIVE;
        }
    }
    doctor_choose(r);
    return 0;
}

/* The one measurement per process: the answer cannot change while Lodge runs. */
static pthread_once_t doctor_auto_once = PTHREAD_ONCE_INIT;
static struct doctor_report doctor_auto_report;

static void doctor_auto_measure(void)
{
    doctor_check(&doctor_auto_report);
}

const char *accel_choose_auto(char *why, size_t whylen)
{
    pthread_once(&doctor_auto_once, doctor_auto_measure);
    if (why && whylen) {
        snprintf(why, whylen, "%s", doctor_auto_report.auto_why);
    }
    return doctor_auto_report.auto_engine;
}

static const char *doctor_assist_name(enum doctor_assist a)
{
    switch (a) {
    case DOCTOR_ASSIST_NATIVE:
        return "native";
    case DOCTOR_ASSIST_EMULATED:
        return "emulated";
    default:
        return "unknown";
    }
}

static void doctor_json_string(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void doctor_print_json(const struct doctor_report *r, FILE *out)
{
    fprintf(out, "{\"kvm_device\": %s, \"kvm_openable\": %s, \"open_error\": ",
            r->dev_present ? "true" : "false", r->dev_openable ? "true" : "false");
    doctor_json_string(out, r->dev_openable ? NULL : r->open_error);
    fprintf(out, ", \"api_version\": %d, \"missing_capability\": ", r->api_version);
    doctor_json_string(out, r->missing_cap[0] ? r->missing_cap : NULL);
    fprintf(out, ", \"kvm_usable\": %s, \"kvm_reason\": ", r->probe.available ? "true" : "false");
    doctor_json_string(out, r->probe.available ? NULL : r->probe.reason);
    fprintf(out, ", \"soft_usable\": %s, \"soft_reason\": ", r->soft.available ? "true" : "false");
    doctor_json_string(out, r->soft.available ? NULL : r->soft.reason);
    fprintf(out, ", \"assist\": \"%s\"", doctor_assist_name(r->assist));
    if (r->guest_ns_per_loop > 0 && r->host_ns_per_loop > 0) {
        fprintf(out,
                ", \"guest_ns_per_loop\": %.3f, \"host_ns_per_loop\": %.3f, "
                "\"slowdown\": %.1f",
                r->guest_ns_per_loop, r->host_ns_per_loop,
                r->guest_ns_per_loop / r->host_ns_per_loop);
    }
    fputs(", \"measure_error\": ", out);
    doctor_json_string(out, r->measure_error[0] ? r->measure_error : NULL);
    fputs(", \"auto_engine\": ", out);
    doctor_json_string(out, r->auto_engine);
    fputs(", \"auto_reason\": ", out);
    doctor_json_string(out, r->auto_why);
    fputs("}\n", out);
}

static void doctor_print_text(const struct doctor_report *r, FILE *out)
{
    fprintf(out, "/dev/kvm            %s\n", r->dev_present ? "present" : "missing");
    if (r->dev_openable) {
        fprintf(out, "open read-write     ok\n");
        fprintf(out, "KVM API version     %d%s\n", r->api_version,
                r->api_version == KVM_API_VERSION ? "" : " (Lodge needs 12)");
        if (r->missing_cap[0]) {
            fprintf(out, "capabilities        missing %s (a newer kernel is needed)\n",
                    r->missing_cap);
        } else {
            fprintf(out, "capabilities        all required present\n");
        }
    } else {
        fprintf(out, "open read-write     failed: %s\n", r->open_error);
    }
    if (!r->probe.available) {
        fprintf(out, "KVM usable          no: %s\n", r->probe.reason);
    } else {
        fprintf(out, "KVM usable          yes\n");
    }
    fprintf(out, "soft engine         %s%s\n",
            r->soft.available ? "yes" : "no: ", r->soft.available ? "" : r->soft.reason);
    switch (r->assist) {
    case DOCTOR_ASSIST_NATIVE:
    case DOCTOR_ASSIST_EMULATED:
        fprintf(out,
                "hardware assist     %s%s: guest loop %.2f ns/iteration, host %.2f ns "
                "(%.1fx)\n",
                doctor_assist_name(r->assist),
                r->assist == DOCTOR_ASSIST_EMULATED ? " (nested host)" : "", r->guest_ns_per_loop,
                r->host_ns_per_loop, r->guest_ns_per_loop / r->host_ns_per_loop);
        break;
    default:
        fprintf(out, "hardware assist     unknown%s%s\n", r->measure_error[0] ? ": " : "",
                r->measure_error);
        break;
    }
    fprintf(out, "--accel auto        %s (%s)\n", r->auto_engine, r->auto_why);
}

int doctor_main(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: lodge doctor [--json]\n"
                   "Checks /dev/kvm, its API and capabilities, whether hardware assist is\n"
                   "native or emulated, and which engine --accel auto picks.\n");
            return 0;
        } else {
            fprintf(stderr, "lodge doctor: unknown option '%s' (usage: lodge doctor [--json])\n",
                    argv[i]);
            return 2;
        }
    }
    struct doctor_report r;
    doctor_check(&r);
    if (json) {
        doctor_print_json(&r, stdout);
    } else {
        doctor_print_text(&r, stdout);
    }
    return 0;
}
