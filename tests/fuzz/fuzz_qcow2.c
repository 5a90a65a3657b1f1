/* libFuzzer target: a fuzzed file opened as a disk image (the qcow2 parser, and VMDK/VDI when the
 * magic says so), then a few reads, block-status queries and a consistency check. Nothing may
 * crash, hang or touch memory it does not own; errors are fine. Built by tests/fuzz/run.sh. */
#include "snapshot/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/lodge-fuzz-qcow2-%d.img", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) {
        return 0;
    }
    if (size) {
        fwrite(data, 1, size, f);
    }
    fclose(f);

    struct image *img = NULL;
    char err[IMAGE_ERR_LEN];
    /* Read-only and without backing files: a fuzzed header must not make us open host paths. */
    if (image_open(path, IMAGE_FORMAT_AUTO, IMAGE_OPEN_NO_BACKING, &img, err, sizeof(err)) == 0) {
        uint64_t len = image_length(img);
        static uint8_t buf[65536 + 512];
        const uint64_t offs[] = {
            0, 512, 65536 - 100, 1u << 20, len / 2, len > 4096 ? len - 4096 : 0,
        };
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            uint64_t n = sizeof(buf);
            if (offs[i] >= len) {
                continue;
            }
            if (n > len - offs[i]) {
                n = len - offs[i];
            }
            (void)image_pread(img, buf, n, offs[i]);
            uint64_t pnum = 0;
            (void)image_block_status(img, offs[i], n, &pnum);
        }
        struct image_check_result res;
        memset(&res, 0, sizeof(res));
        (void)image_check(img, false, &res, NULL);
        image_close(img);
    }
    unlink(path);
    return 0;
}
