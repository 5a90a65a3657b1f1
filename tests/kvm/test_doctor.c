/* Tests for hostdrv/doctor: the report, the --json output, flag handling and the
 * cached --accel auto choice. The calibration guest runs on real KVM, so the KVM
 * parts are skipped (with the reason printed) when /dev/kvm is unusable. */
#include "hostdrv/doctor.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct accel_probe kvm_probe;

/* Run doctor_main with stdout captured into buf. Returns its exit status. */
static int run_captured(int argc, char **argv, char *buf, size_t len)
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    if (!tmp) {
        return -1;
    }
    int saved = dup(STDOUT_FILENO);
    dup2(fileno(tmp), STDOUT_FILENO);
    int rc = doctor_main(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, len - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return rc;
}

static void test_bad_flag(void)
{
    char *argv[] = {"doctor", "--frobnicate", NULL};
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* the usage message is expected */
    CU_ASSERT_EQUAL(doctor_main(2, argv), 2);
    fclose(stderr);
    stderr = saved;
}

static void test_report(void)
{
    struct doctor_report r;
    CU_ASSERT_EQUAL(doctor_check(&r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.auto_engine);
    CU_ASSERT_TRUE(strcmp(r.auto_engine, "kvm") == 0 || strcmp(r.auto_engine, "soft") == 0);
    CU_ASSERT_NOT_EQUAL(r.auto_why[0], '\0');
    CU_ASSERT_EQUAL(r.probe.available, kvm_probe.available);
    if (!kvm_probe.available) {
        CU_ASSERT_EQUAL(r.assist, DOCTOR_ASSIST_UNKNOWN);
        return;
    }
    CU_ASSERT_TRUE(r.dev_present);
    CU_ASSERT_TRUE(r.dev_openable);
    CU_ASSERT_EQUAL(r.api_version, 12);
    CU_ASSERT_STRING_EQUAL(r.missing_cap, "");
    CU_ASSERT_NOT_EQUAL(r.assist, DOCTOR_ASSIST_UNKNOWN);
    CU_ASSERT_TRUE(r.guest_ns_per_loop > 0);
    CU_ASSERT_TRUE(r.host_ns_per_loop > 0);
    /* A decrement-and-branch takes at least a tenth of a nanosecond on any CPU. */
    CU_ASSERT_TRUE(r.host_ns_per_loop > 0.1);
    double ratio = r.guest_ns_per_loop / r.host_ns_per_loop;
    CU_ASSERT_EQUAL(r.assist == DOCTOR_ASSIST_EMULATED, ratio > DOCTOR_EMULATED_RATIO);
    if (r.assist == DOCTOR_ASSIST_NATIVE) {
        CU_ASSERT_STRING_EQUAL(r.auto_engine, "kvm");
    }
    /* The development hosts emulate guest code; LODGE_EXPECT_ASSIST pins that down. */
    const char *expect = getenv("LODGE_EXPECT_ASSIST");
    if (expect && strcmp(expect, "emulated") == 0) {
        CU_ASSERT_EQUAL(r.assist, DOCTOR_ASSIST_EMULATED);
    } else if (expect && strcmp(expect, "native") == 0) {
        CU_ASSERT_EQUAL(r.assist, DOCTOR_ASSIST_NATIVE);
    }
}

static void test_json(void)
{
    char buf[4096];
    char *argv[] = {"doctor", "--json", NULL};
    CU_ASSERT_EQUAL(run_captured(2, argv, buf, sizeof(buf)), 0);
    CU_ASSERT_EQUAL(buf[0], '{');
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "}\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"auto_engine\": \""));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(buf, kvm_probe.available ? "\"kvm_usable\": true" : "\"kvm_usable\": false"));
    if (kvm_probe.available) {
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"api_version\": 12"));
        CU_ASSERT_PTR_NULL(strstr(buf, "\"assist\": \"unknown\""));
    }
}

static void test_text(void)
{
    char buf[4096];
    char *argv[] = {"doctor", NULL};
    CU_ASSERT_EQUAL(run_captured(1, argv, buf, sizeof(buf)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "/dev/kvm"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--accel auto"));
    if (kvm_probe.available) {
        CU_ASSERT_TRUE(strstr(buf, "hardware assist     native") != NULL ||
                       strstr(buf, "hardware assist     emulated") != NULL);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_auto_cached(void)
{
    char why1[512], why2[512];
    const char *a = accel_choose_auto(why1, sizeof(why1));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    double t0 = now_s();
    const char *b = accel_choose_auto(why2, sizeof(why2));
    double dt = now_s() - t0;
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_STRING_EQUAL(why1, why2);
    CU_ASSERT_TRUE(dt < 0.01); /* no second measurement */
    if (!kvm_probe.available) {
        CU_ASSERT_STRING_EQUAL(a, "soft");
        CU_ASSERT_PTR_NOT_NULL(strstr(why1, "KVM unusable"));
    }
}

int main(void)
{
    accel_kvm_ops.probe(&kvm_probe);
    if (!kvm_probe.available) {
        printf("kvm parts of the doctor tests skipped: %s\n", kvm_probe.reason);
    }
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("doctor", NULL, NULL);
    CU_add_test(s, "bad flag exits 2", test_bad_flag);
    CU_add_test(s, "report", test_report);
    CU_add_test(s, "json output", test_json);
    CU_add_test(s, "text output", test_text);
    CU_add_test(s, "auto choice is cached", test_auto_cached);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
