/* snapshot/image.h front end: format names and probing, the raw backend, range
 * and permission checks, backing loops, and refusal of broken VMDK/VDI files. */
#include "snapshot/image.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tdir[64];

static const char *tpath(const char *name)
{
    static char buf[8][128];
    static int n;
    char *p = buf[n++ % 8];
    snprintf(p, 128, "%s/%s", tdir, name);
    return p;
}

static void write_file(const char *name, const void *data, size_t len, off_t total)
{
    int fd = open(tpath(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
    if (total > (off_t)len) {
        CU_ASSERT_EQUAL(ftruncate(fd, total), 0);
    }
    close(fd);
}

static void test_format_names(void)
{
    enum image_format f;
    CU_ASSERT_EQUAL(image_format_parse("qcow2", &f), 0);
    CU_ASSERT_EQUAL(f, IMAGE_FORMAT_QCOW2);
    CU_ASSERT_EQUAL(image_format_parse("vdi", &f), 0);
    CU_ASSERT_EQUAL(f, IMAGE_FORMAT_VDI);
    CU_ASSERT_EQUAL(image_format_parse("qed", &f), -EINVAL);
    CU_ASSERT_STRING_EQUAL(image_format_name(IMAGE_FORMAT_VMDK), "vmdk");
    CU_ASSERT_STRING_EQUAL(image_format_name(IMAGE_FORMAT_RAW), "raw");
}

static void test_probe(void)
{
    char err[IMAGE_ERR_LEN];
    enum image_format f;
    write_file("p.qcow2", "QFI\xfb\0\0\0\3", 8, 4096);
    CU_ASSERT_EQUAL(image_probe(tpath("p.qcow2"), &f, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(f, IMAGE_FORMAT_QCOW2);
    write_file("p.vmdk", "KDMV\1\0\0\0", 8, 4096);
    CU_ASSERT_EQUAL(image_probe(tpath("p.vmdk"), &f, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(f, IMAGE_FORMAT_VMDK);
    uint8_t vdi[0x200] = {0};
    memcpy(vdi + 0x40, "\x7f\x10\xda\xbe", 4);
    write_file("p.vdi", vdi, sizeof(vdi), 4096);
    CU_ASSERT_EQUAL(image_probe(tpath("p.vdi"), &f, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(f, IMAGE_FORMAT_VDI);
    write_file("p.raw", "hello", 5, 4096);
    CU_ASSERT_EQUAL(image_probe(tpath("p.raw"), &f, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(f, IMAGE_FORMAT_RAW);
    CU_ASSERT_EQUAL(image_probe(tpath("nosuch"), &f, err, sizeof(err)), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nosuch: No such file or directory"));
}

static void test_raw_io(void)
{
    char err[IMAGE_ERR_LEN];
    struct image_create_opts o = {.format = IMAGE_FORMAT_RAW, .size = 100000};
    CU_ASSERT_EQUAL_FATAL(image_create(tpath("r.raw"), &o, err, sizeof(err)), 0);
    struct image *img;
    CU_ASSERT_EQUAL_FATAL(
        image_open(tpath("r.raw"), IMAGE_FORMAT_AUTO, IMAGE_OPEN_RDWR, &img, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(image_get_format(img), IMAGE_FORMAT_RAW);
    CU_ASSERT_EQUAL(image_length(img), 100000);
    CU_ASSERT_EQUAL(image_pwrite(img, "abcdef", 6, 99994), 0);
    CU_ASSERT_EQUAL(image_pwrite(img, "abcdefg", 7, 99994), -EINVAL); /* one past the end */
    CU_ASSERT_EQUAL(image_pwrite(img, "x", 1, UINT64_MAX), -EINVAL);
    char b[8] = {0};
    CU_ASSERT_EQUAL(image_pread(img, b, 6, 99994), 0);
    CU_ASSERT_EQUAL(memcmp(b, "abcdef", 6), 0);
    CU_ASSERT_EQUAL(image_write_zeroes(img, 99995, 2), 0);
    CU_ASSERT_EQUAL(image_pread(img, b, 6, 99994), 0);
    CU_ASSERT_EQUAL(memcmp(b, "a\0\0def", 6), 0);
    /* Just written, so in the page cache: the non-blocking read sees the same bytes (or,
     * where the kernel cannot tell without waiting, declines). */
    memset(b, 0, sizeof(b));
    int nw = image_pread_nowait(img, b, 6, 99994);
    CU_ASSERT_TRUE(nw == 0 || nw == -EAGAIN);
    if (nw == 0) {
        CU_ASSERT_EQUAL(memcmp(b, "a\0\0def", 6), 0);
    }
    CU_ASSERT_EQUAL(image_pread_nowait(img, b, 7, 99994), -EINVAL);
    CU_ASSERT_EQUAL(image_flush(img), 0);
    CU_ASSERT_EQUAL(image_resize(img, 200000), 0);
    CU_ASSERT_EQUAL(image_length(img), 200000);
    CU_ASSERT_EQUAL(image_pread(img, b, 4, 150000), 0);
    CU_ASSERT_EQUAL(memcmp(b, "\0\0\0\0", 4), 0);
    struct image_check_result r;
    CU_ASSERT_EQUAL(image_check(img, false, &r, NULL), 0);
    CU_ASSERT_FALSE(r.checked);
    image_close(img);
    /* read-only handles refuse every kind of write */
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("r.raw"), IMAGE_FORMAT_RAW, 0, &img, err, sizeof(err)),
                          0);
    CU_ASSERT_FALSE(image_is_writable(img));
    CU_ASSERT_EQUAL(image_pwrite(img, "z", 1, 0), -EROFS);
    CU_ASSERT_EQUAL(image_write_zeroes(img, 0, 1), -EROFS);
    CU_ASSERT_EQUAL(image_discard(img, 0, 1), -EROFS);
    CU_ASSERT_EQUAL(image_resize(img, 1), -EROFS);
    CU_ASSERT_PTR_NOT_NULL(strstr(image_error(img), "r.raw: image is open read-only"));
    image_close(img);
}

static void test_backing_loop(void)
{
    char err[IMAGE_ERR_LEN];
    struct image_create_opts o = {.format = IMAGE_FORMAT_QCOW2, .size = 65536};
    CU_ASSERT_EQUAL_FATAL(image_create(tpath("loop-a.qcow2"), &o, err, sizeof(err)), 0);
    o.backing = "loop-a.qcow2";
    o.backing_format = IMAGE_FORMAT_QCOW2;
    CU_ASSERT_EQUAL_FATAL(image_create(tpath("loop-b.qcow2"), &o, err, sizeof(err)), 0);
    struct image *img;
    CU_ASSERT_EQUAL_FATAL(
        image_open(tpath("loop-a.qcow2"), 0, IMAGE_OPEN_RDWR, &img, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(image_set_backing(img, "loop-b.qcow2", IMAGE_FORMAT_QCOW2), -ELOOP);
    image_close(img);
    CU_ASSERT_EQUAL(image_open(tpath("loop-a.qcow2"), 0, 0, &img, err, sizeof(err)), -ELOOP);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "backing chain too long"));
    /* without following the chain it still opens */
    CU_ASSERT_EQUAL(
        image_open(tpath("loop-a.qcow2"), 0, IMAGE_OPEN_NO_BACKING, &img, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(image_backing_name(img), "loop-b.qcow2");
    image_close(img);
    /* a missing backing file names both files */
    o.backing = "gone.raw";
    o.backing_format = IMAGE_FORMAT_RAW;
    CU_ASSERT_EQUAL(image_create(tpath("orphan.qcow2"), &o, err, sizeof(err)), -ENOENT);
}

static void test_readonly_formats(void)
{
    char err[IMAGE_ERR_LEN];
    struct image *img;
    /* VMDK: a header whose grain directory lies outside the file */
    uint8_t h[512] = {0};
    memcpy(h, "KDMV", 4);
    h[4] = 1;                   /* version */
    h[12 + 1] = 0x08;           /* capacity 0x800 sectors */
    h[20] = 128;                /* grain size in sectors */
    h[44] = 0x00, h[45] = 0x02; /* 512 GTEs per GT */
    h[56 + 2] = 0x10;           /* gdOffset 0x100000 sectors */
    write_file("bad.vmdk", h, sizeof(h), 65536);
    CU_ASSERT_EQUAL(image_open(tpath("bad.vmdk"), 0, 0, &img, err, sizeof(err)), -EUCLEAN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad.vmdk: corrupt vmdk: grain directory"));
    CU_ASSERT_EQUAL(image_open(tpath("bad.vmdk"), 0, IMAGE_OPEN_RDWR, &img, err, sizeof(err)),
                    -EROFS);
    /* a valid tiny VMDK: GD at sector 1, GT at sector 2, one grain at sector 4 */
    h[56 + 2] = 0;
    h[56] = 1;
    uint8_t file[512 * 4 + 65536] = {0};
    memcpy(file, h, 512);
    file[512] = 2;  /* GD[0] = sector 2 */
    file[1024] = 4; /* GT[0] = sector 4 */
    memset(file + 2048, 0xab, 65536);
    write_file("ok.vmdk", file, sizeof(file), 0);
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("ok.vmdk"), 0, 0, &img, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(image_length(img), 0x800 * 512);
    uint8_t b[4];
    CU_ASSERT_EQUAL(image_pread(img, b, 4, 65534), 0);
    CU_ASSERT_EQUAL(memcmp(b, "\xab\xab\0\0", 4), 0); /* grain 1 is not allocated */
    image_close(img);
    /* VDI: a block map larger than the file */
    uint8_t v[0x200] = {0};
    memcpy(v + 0x40, "\x7f\x10\xda\xbe", 4);
    memcpy(v + 0x44, "\x01\x00\x01\x00", 4);
    v[0x4c] = 1;     /* dynamic */
    v[0x155] = 0x02; /* block map at 0x200 */
    v[0x159] = 0x04; /* data at 0x400 */
    v[0x172] = 0x10; /* disk size 1 MiB */
    v[0x17a] = 0x10; /* block size 1 MiB */
    v[0x181] = 0x10; /* 4096 blocks: map needs 16 KiB */
    write_file("bad.vdi", v, sizeof(v), 0x400);
    CU_ASSERT_EQUAL(image_open(tpath("bad.vdi"), 0, 0, &img, err, sizeof(err)), -EUCLEAN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad.vdi: corrupt vdi: block map outside the file"));
    v[0x181] = 0;
    v[0x180] = 1; /* one block, not allocated */
    uint8_t vf[0x400];
    memset(vf, 0xff, sizeof(vf));
    memcpy(vf, v, sizeof(v));
    write_file("ok.vdi", vf, sizeof(vf), 0);
    CU_ASSERT_EQUAL_FATAL(image_open(tpath("ok.vdi"), 0, 0, &img, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(image_length(img), 1 << 20);
    memset(b, 1, sizeof(b));
    CU_ASSERT_EQUAL(image_pread(img, b, 4, 1000), 0);
    CU_ASSERT_EQUAL(memcmp(b, "\0\0\0\0", 4), 0);
    image_close(img);
}

static int suite_init(void)
{
    snprintf(tdir, sizeof(tdir), "/tmp/lodge-image.XXXXXX");
    return mkdtemp(tdir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("image", suite_init, suite_clean);
    CU_add_test(s, "format names", test_format_names);
    CU_add_test(s, "probe by magic", test_probe);
    CU_add_test(s, "raw I/O and permissions", test_raw_io);
    CU_add_test(s, "backing loops and missing backing", test_backing_loop);
    CU_add_test(s, "vmdk and vdi: read-only, broken files refused", test_readonly_formats);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
