/* lodge-randio: single-process 4 KiB random I/O for the disk benchmark guest.
 *
 *   lodge-randio DEVICE read|write COUNT [SEED] [sync]
 *
 * Does COUNT reads or writes of 4 KiB with O_DIRECT (one aligned buffer) at block
 * offsets chosen by the same LCG the shell benchmark uses (r = r * 1103515245 + 12345
 * mod 2^31, block = r mod blocks, r starting at SEED, default 12345), so the Lodge
 * and QEMU runs touch the same blocks. `sync` adds one fdatasync at the end. One
 * process for all ops: the per-process cost (fork + exec of dd per op) stays out of
 * the figure. Prints nothing but errors; the exit status says whether all ops
 * completed. Built static by tests/guest/kit.sh and installed as /bin/lodge-randio. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define RANDIO_BLOCK 4096

static int randio_usage(void)
{
    fprintf(stderr, "usage: lodge-randio DEVICE read|write COUNT [SEED] [sync]\n");
    return 2;
}

static int randio_parse(const char *s, unsigned long long *v)
{
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 0);
    return errno || end == s || *end ? -1 : 0;
}

/* Size of a block device or a regular file, in bytes. */
static int randio_size(int fd, unsigned long long *bytes)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t b;
        if (ioctl(fd, BLKGETSIZE64, &b) < 0) {
            return -errno;
        }
        *bytes = b;
        return 0;
    }
    *bytes = (unsigned long long)st.st_size;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long long count, seed = 12345, size = 0;
    int do_sync = 0;
    if (argc < 4 || argc > 6 || randio_parse(argv[3], &count) < 0) {
        return randio_usage();
    }
    int is_write = !strcmp(argv[2], "write");
    if (!is_write && strcmp(argv[2], "read")) {
        return randio_usage();
    }
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "sync")) {
            do_sync = 1;
        } else if (randio_parse(argv[i], &seed) < 0) {
            return randio_usage();
        }
    }
    int fd = open(argv[1], (is_write ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "lodge-randio: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int rc = randio_size(fd, &size);
    if (rc < 0 || size < RANDIO_BLOCK) {
        fprintf(stderr, "lodge-randio: %s: %s\n", argv[1],
                rc < 0 ? strerror(-rc) : "smaller than one 4 KiB block");
        return 1;
    }
    unsigned long long blocks = size / RANDIO_BLOCK;
    void *buf;
    if (posix_memalign(&buf, RANDIO_BLOCK, RANDIO_BLOCK)) {
        fprintf(stderr, "lodge-randio: out of memory\n");
        return 1;
    }
    for (int i = 0; i < RANDIO_BLOCK; i++) {
        ((unsigned char *)buf)[i] = (unsigned char)("LODGE-RANDIO-PATTERN\n"[i % 21]);
    }
    unsigned long long r = seed;
    for (unsigned long long i = 0; i < count; i++) {
        r = (r * 1103515245ull + 12345ull) % 2147483648ull;
        off_t off = (off_t)((r % blocks) * RANDIO_BLOCK);
        ssize_t n =
            is_write ? pwrite(fd, buf, RANDIO_BLOCK, off) : pread(fd, buf, RANDIO_BLOCK, off);
        if (n != RANDIO_BLOCK) {
            fprintf(stderr, "lodge-randio: %s: %s at offset %lld: %s\n", argv[1],
                    is_write ? "write" : "read", (long long)off,
                    n < 0 ? strerror(errno) : "short transfer");
            return 1;
        }
    }
    if (do_sync && fdatasync(fd) < 0) {
        fprintf(stderr, "lodge-randio: %s: fdatasync: %s\n", argv[1], strerror(errno));
        return 1;
    }
    free(buf);
    close(fd);
    return 0;
}
