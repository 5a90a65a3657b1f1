/* Placeholder: the soft engine is being written. */
#include "hostdrv/accel.h"

#include <stdio.h>

static int soft_probe(struct accel_probe *out)
{
    out->available = false;
    snprintf(out->reason, sizeof(out->reason), "the soft engine is not built yet");
    return 0;
}

const struct accel_ops accel_soft_ops = {
    .name = "soft",
    .probe = soft_probe,
};
