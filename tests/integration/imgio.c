/* imgio: write and check byte patterns in a disk image through snapshot/image.h,
 * for tests/integration/img.sh.
 *
 *   imgio FILE write OFF LEN SEED     write pattern SEED at [OFF, OFF+LEN), flush
 *   imgio FILE read OFF LEN SEED      check pattern SEED there (exit 1 on mismatch)
 *   imgio FILE zero OFF LEN           write_zeroes, flush
 *   imgio FILE iszero OFF LEN         check zeros
 *   imgio FILE dump OFF LEN           copy [OFF, OFF+LEN) to stdout (guest tests hash it)
 *   imgio FILE crash-writer LOG SEED  write random ranges forever, logging to LOG:
 *                                     "R" at start, "W off len seed" before each
 *                                     write, "F" after each completed flush
 *   imgio FILE crash-verify LOG BASESEED   check every acknowledged write (a W
 *                                     followed by an F before the next R); the
 *                                     rest of the image must hold BASESEED
 *
 * The pattern byte at absolute offset O for seed S depends on both, so data
 * written at the wrong place or from the wrong write is caught. Seed 0 = zeros. */
#include "snapshot/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMGIO_ZERO_SEED 0u

static uint8_t imgio_byte(uint64_t off, uint32_t seed)
{
    if (seed == IMGIO_ZERO_SEED) {
        return 0;
    }
    uint64_t x = (off + 1) ^ ((uint64_t)seed << 40);
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return (uint8_t)(x >> 24);
}

static void imgio_fill(uint8_t *buf, uint64_t off, uint64_t len, uint32_t seed)
{
    for (uint64_t i = 0; i < len; i++) {
        buf[i] = imgio_byte(off + i, seed);
    }
}

static int imgio_open(const char *path, int flags, struct image **img)
{
    char err[IMAGE_ERR_LEN];
    int r = image_open(path, IMAGE_FORMAT_AUTO, flags, img, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "imgio: %s\n", err);
    }
    return r;
}

static int imgio_check(struct image *img, uint64_t off, uint64_t len, uint32_t seed)
{
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        return 1;
    }
    int r = image_pread(img, buf, len, off);
    if (r < 0) {
        fprintf(stderr, "imgio: read: %s\n", image_error(img));
        free(buf);
        return 1;
    }
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i] != imgio_byte(off + i, seed)) {
            fprintf(stderr, "imgio: mismatch at 0x%" PRIx64 ": got %02x want %02x (seed %u)\n",
                    off + i, buf[i], imgio_byte(off + i, seed), seed);
            free(buf);
            return 1;
        }
    }
    free(buf);
    return 0;
}

static uint64_t imgio_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void imgio_log(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void imgio_log(int fd, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (write(fd, line, (size_t)n) != n || fdatasync(fd) != 0) {
        exit(3);
    }
}

/* Log "W off len seed" durably before each write and "F" after each completed
 * flush: every W before the last F was acknowledged. */
static int imgio_crash_writer(struct image *img, const char *log, uint32_t seed)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        return 1;
    }
    uint64_t rs = seed * 0x2545f4914f6cdd1dull + 1;
    uint64_t size = image_length(img);
    uint64_t cs = image_cluster_size(img);
    uint8_t *buf = malloc(256 * 1024);
    imgio_log(fd, "R\n");
    for (uint32_t n = 1;; n++) {
        uint64_t len = 1 + imgio_rand(&rs) % (imgio_rand(&rs) % 4 ? 20000 : 200000);
        uint64_t off = imgio_rand(&rs) % size;
        if (len > size - off) {
            len = size - off;
        }
        uint32_t s = (imgio_rand(&rs) % 8 == 0) ? IMGIO_ZERO_SEED : seed * 100000 + n;
        bool discard = s == IMGIO_ZERO_SEED && cs && imgio_rand(&rs) % 2;
        if (discard) {
            /* whole clusters only: those are guaranteed to read as zeros */
            off = off / cs * cs;
            len = (len + cs - 1) / cs * cs;
            if (len > size - off) {
                len = size - off;
            }
        }
        imgio_log(fd, "W %" PRIu64 " %" PRIu64 " %u\n", off, len, s);
        int r;
        if (discard) {
            r = image_discard(img, off, len);
        } else if (s == IMGIO_ZERO_SEED) {
            r = image_write_zeroes(img, off, len);
        } else {
            imgio_fill(buf, off, len, s);
            r = image_pwrite(img, buf, len, off);
        }
        if (r < 0) {
            fprintf(stderr, "imgio: %s\n", image_error(img));
            return 1;
        }
        if (imgio_rand(&rs) % 3 == 0) {
            if (image_flush(img) < 0) {
                fprintf(stderr, "imgio: %s\n", image_error(img));
                return 1;
            }
            imgio_log(fd, "F\n");
        }
    }
}

#define IMGIO_UNKNOWN 0xffffffffu

static int imgio_crash_verify(struct image *img, const char *log, uint32_t base_seed)
{
    FILE *f = fopen(log, "r");
    if (!f) {
        perror(log);
        return 1;
    }
    uint64_t size = image_length(img);
    uint32_t *model = malloc(size * sizeof(uint32_t));
    if (!model) {
        return 1;
    }
    for (uint64_t i = 0; i < size; i++) {
        model[i] = base_seed;
    }
    /* A W is acknowledged when an F follows it before the next R (a writer
     * restarted after a crash): mark each line scanning backwards, then replay. */
    char line[128];
    size_t nlines = 0, cap = 1024;
    char *kind = malloc(cap);
    while (fgets(line, sizeof(line), f)) {
        if (nlines == cap) {
            cap *= 2;
            kind = realloc(kind, cap);
        }
        kind[nlines++] = line[0];
    }
    bool *acked_at = calloc(nlines + 1, sizeof(bool));
    bool acked = false;
    for (size_t i = nlines; i-- > 0;) {
        if (kind[i] == 'F') {
            acked = true;
        } else if (kind[i] == 'R') {
            acked = false;
        }
        acked_at[i] = acked;
    }
    rewind(f);
    unsigned n_acked = 0, n_lost = 0;
    for (size_t ln = 0; fgets(line, sizeof(line), f) && ln < nlines; ln++) {
        uint64_t off, len;
        uint32_t s;
        if (line[0] != 'W' || sscanf(line, "W %" SCNu64 " %" SCNu64 " %u", &off, &len, &s) != 3 ||
            off > size || len > size - off) {
            continue;
        }
        uint32_t v = acked_at[ln] ? s : IMGIO_UNKNOWN;
        if (acked_at[ln]) {
            n_acked++;
        } else {
            n_lost++;
        }
        for (uint64_t i = off; i < off + len; i++) {
            model[i] = v;
        }
    }
    fclose(f);
    free(kind);
    free(acked_at);
    uint8_t *buf = malloc(size);
    if (!buf || image_pread(img, buf, size, 0) < 0) {
        fprintf(stderr, "imgio: read: %s\n", image_error(img));
        return 1;
    }
    int bad = 0;
    for (uint64_t i = 0; i < size; i++) {
        if (model[i] != IMGIO_UNKNOWN && buf[i] != imgio_byte(i, model[i])) {
            fprintf(stderr, "imgio: acknowledged data lost at 0x%" PRIx64 " (seed %u)\n", i,
                    model[i]);
            bad = 1;
            break;
        }
    }
    printf("crash-verify: %u acknowledged writes, %u in flight, %s\n", n_acked, n_lost,
           bad ? "MISMATCH" : "ok");
    free(buf);
    free(model);
    return bad;
}

/* Streams the guest-visible bytes (backing chain included) so a shell test can hash them. */
static int imgio_dump(struct image *img, uint64_t off, uint64_t len)
{
    static const size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk);
    int rc = buf ? 0 : 1;
    while (!rc && len > 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        if (image_pread(img, buf, n, off) < 0) {
            fprintf(stderr, "imgio: %s\n", image_error(img));
            rc = 1;
        } else if (fwrite(buf, 1, n, stdout) != n) {
            rc = 1;
        }
        off += n;
        len -= n;
    }
    free(buf);
    return rc || fflush(stdout) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: imgio FILE write|read|zero|iszero|dump|crash-writer|"
                        "crash-verify ...\n");
        return 2;
    }
    const char *path = argv[1], *cmd = argv[2];
    bool writes = !strcmp(cmd, "write") || !strcmp(cmd, "zero") || !strcmp(cmd, "crash-writer");
    struct image *img;
    if (imgio_open(path, writes ? IMAGE_OPEN_RDWR : 0, &img) < 0) {
        return 1;
    }
    int rc = 2;
    if ((!strcmp(cmd, "write") || !strcmp(cmd, "read")) && argc == 6) {
        uint64_t off = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
        uint32_t seed = (uint32_t)strtoul(argv[5], NULL, 0);
        if (!strcmp(cmd, "read")) {
            rc = imgio_check(img, off, len, seed);
        } else {
            uint8_t *buf = malloc(len ? len : 1);
            imgio_fill(buf, off, len, seed);
            rc = image_pwrite(img, buf, len, off) < 0 || image_flush(img) < 0;
            if (rc) {
                fprintf(stderr, "imgio: %s\n", image_error(img));
            }
            free(buf);
        }
    } else if ((!strcmp(cmd, "zero") || !strcmp(cmd, "iszero")) && argc == 5) {
        uint64_t off = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
        if (!strcmp(cmd, "iszero")) {
            rc = imgio_check(img, off, len, IMGIO_ZERO_SEED);
        } else {
            rc = image_write_zeroes(img, off, len) < 0 || image_flush(img) < 0;
            if (rc) {
                fprintf(stderr, "imgio: %s\n", image_error(img));
            }
        }
    } else if (!strcmp(cmd, "dump") && argc == 5) {
        rc = imgio_dump(img, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
    } else if (!strcmp(cmd, "crash-writer") && argc == 5) {
        rc = imgio_crash_writer(img, argv[3], (uint32_t)strtoul(argv[4], NULL, 0));
    } else if (!strcmp(cmd, "crash-verify") && argc == 5) {
        rc = imgio_crash_verify(img, argv[3], (uint32_t)strtoul(argv[4], NULL, 0));
    }
    image_close(img);
    return rc;
}
