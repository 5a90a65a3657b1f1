/* Host checks behind `lodge doctor` and `--accel auto`.
 *
 * KVM can be present yet slow: on a nested host without hardware assist passed
 * through, the outer hypervisor emulates every guest instruction. The only reliable
 * test is to time a loop inside a tiny KVM guest against the same loop on the host. */
#ifndef LODGE_HOSTDRV_DOCTOR_H
#define LODGE_HOSTDRV_DOCTOR_H

#include "hostdrv/accel.h"

#include <stdbool.h>
#include <stddef.h>

/* A guest this many times slower than the host is being emulated, not assisted. */
#define DOCTOR_EMULATED_RATIO 20.0
/* Iterations of `dec ecx; jnz` in the calibration loop. */
#define DOCTOR_CALIBRATION_LOOPS 100000u

enum doctor_assist {
    DOCTOR_ASSIST_UNKNOWN = 0, /* KVM unusable or the measurement failed */
    DOCTOR_ASSIST_NATIVE,      /* VT-x/AMD-V runs guest code at host speed */
    DOCTOR_ASSIST_EMULATED,    /* a nested host emulates guest code */
};

struct doctor_report {
    bool dev_present;          /* /dev/kvm exists */
    bool dev_openable;         /* open(O_RDWR) worked */
    char open_error[160];      /* why not, with the fix */
    int api_version;           /* KVM_GET_API_VERSION, -1 when not read */
    char missing_cap[40];      /* first missing required capability, "" if none */
    struct accel_probe probe;  /* accel_kvm_ops.probe() */
    struct accel_probe soft;   /* accel_soft_ops.probe() */
    enum doctor_assist assist; /* from the calibration loop */
    double guest_ns_per_loop;  /* calibration loop in a KVM guest */
    double host_ns_per_loop;   /* the same loop on the host */
    char measure_error[160];   /* why the measurement failed */
    const char *auto_engine;   /* what --accel auto picks: "kvm" or "soft" */
    char auto_why[512];        /* and why */
};

/* Time DOCTOR_CALIBRATION_LOOPS iterations in a one-page real-mode KVM guest and on
 * the host. 0, or -errno with err filled. */
int doctor_measure_kvm(double *guest_ns_per_loop, double *host_ns_per_loop, char *err,
                       size_t errlen);

/* Run every check (measures when KVM is usable). Always fills r; returns 0. */
int doctor_check(struct doctor_report *r);

/* The engine --accel auto uses: "kvm" when KVM is usable and native, else "soft"
 * (or "kvm" when it is usable but the soft engine is not). why gets the reason.
 * The measurement is made once per process. */
const char *accel_choose_auto(char *why, size_t whylen);

/* hostdrv/kvm.c: the first required KVM capability kvm_fd lacks, or NULL. */
const char *kvm_first_missing_cap(int kvm_fd);

/* `lodge doctor [--json]`: argv[0] is the subcommand name. Prints the report to
 * stdout. 0 when the report was produced (even if KVM is unusable), 2 on bad flags. */
int doctor_main(int argc, char **argv);

#endif
