/* Placeholder: the kvm engine is being written. */
#include "hostdrv/accel.h"

#include <stdio.h>

static int kvm_probe(struct accel_probe *out)
{
    out->available = false;
    snprintf(out->reason, sizeof(out->reason), "the kvm engine is not built yet");
    return 0;
}

const struct accel_ops accel_kvm_ops = {
    .name = "kvm",
    .probe = kvm_probe,
};
