/* Unit tests for core/bundle: create, load, list, save, delete round trip. */
#include "core/bundle.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/lodge-test-bundle-XXXXXX";

static int setup(void)
{
    if (!mkdtemp(tmpdir)) {
        return -1;
    }
    /* g_get_user_data_dir() reads XDG_DATA_HOME once, before anything else calls it. */
    setenv("XDG_DATA_HOME", tmpdir, 1);
    char *rt = g_build_filename(tmpdir, "run", NULL);
    setenv("XDG_RUNTIME_DIR", rt, 1);
    g_free(rt);
    return 0;
}

static int teardown(void)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    g_free(cmd);
    return rc == 0 ? 0 : -1;
}

static void test_root_follows_xdg(void)
{
    char *root = bundle_root();
    char *want = g_build_filename(tmpdir, "lodge", "vms", NULL);
    CU_ASSERT_STRING_EQUAL(root, want);
    g_free(root);
    g_free(want);
    CU_ASSERT_PTR_NULL(bundle_dir("../escape"));
    CU_ASSERT_PTR_NULL(bundle_dir(""));
}

static void test_round_trip(void)
{
    char err[512] = "";
    struct bundle_config c = {.name = "alpha",
                              .mem = 256ull << 20,
                              .cpus = 2,
                              .firmware = BUNDLE_FW_KERNEL,
                              .kernel = "/boot/vmlinuz",
                              .append = "console=ttyS0 quiet",
                              .disk_size = 1ull << 30,
                              .network = "none"};
    CU_ASSERT_EQUAL_FATAL(bundle_create(&c, err, sizeof(err)), 0);
    struct bundle_config d = {.name = "beta",
                              .mem = 64ull << 20,
                              .cpus = 1,
                              .firmware = BUNDLE_FW_BIOS,
                              .iso = "/srv/debian.iso"};
    CU_ASSERT_EQUAL_FATAL(bundle_create(&d, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(bundle_create(&d, err, sizeof(err)), -EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "beta"));

    char **names = bundle_list();
    CU_ASSERT_EQUAL_FATAL(g_strv_length(names), 2);
    CU_ASSERT_STRING_EQUAL(names[0], "alpha");
    CU_ASSERT_STRING_EQUAL(names[1], "beta");
    g_strfreev(names);

    struct bundle_config l;
    CU_ASSERT_EQUAL_FATAL(bundle_load("alpha", &l, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(l.name, "alpha");
    CU_ASSERT_EQUAL(l.mem, 256ull << 20);
    CU_ASSERT_EQUAL(l.cpus, 2);
    CU_ASSERT_EQUAL(l.firmware, BUNDLE_FW_KERNEL);
    CU_ASSERT_STRING_EQUAL(l.kernel, "/boot/vmlinuz");
    CU_ASSERT_PTR_NULL(l.initrd);
    CU_ASSERT_STRING_EQUAL(l.append, "console=ttyS0 quiet");
    CU_ASSERT_STRING_EQUAL(l.disk, BUNDLE_DISK);
    CU_ASSERT_EQUAL(l.disk_size, 1ull << 30);
    CU_ASSERT_STRING_EQUAL(l.network, "none");
    /* The disk exists and is a qcow2 image (magic "QFI\xfb"), sparse. */
    char *dir = bundle_dir("alpha");
    char *disk = g_build_filename(dir, BUNDLE_DISK, NULL);
    gchar *data = NULL;
    gsize len = 0;
    CU_ASSERT_TRUE(g_file_get_contents(disk, &data, &len, NULL));
    CU_ASSERT(len >= 4 && memcmp(data, "QFI\xfb", 4) == 0);
    CU_ASSERT(len < (1u << 20));
    g_free(data);
    g_free(disk);
    char *logs = g_build_filename(dir, "logs", NULL);
    CU_ASSERT_TRUE(g_file_test(logs, G_FILE_TEST_IS_DIR));
    g_free(logs);

    /* Settings change survives a reload. */
    l.cpus = 4;
    CU_ASSERT_EQUAL(bundle_save(&l, err, sizeof(err)), 0);
    bundle_config_clear(&l);
    CU_ASSERT_EQUAL_FATAL(bundle_load("alpha", &l, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(l.cpus, 4);
    bundle_config_clear(&l);

    CU_ASSERT_EQUAL_FATAL(bundle_load("beta", &l, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(l.firmware, BUNDLE_FW_BIOS);
    CU_ASSERT_STRING_EQUAL(l.iso, "/srv/debian.iso");
    CU_ASSERT_PTR_NULL(l.disk);
    bundle_config_clear(&l);

    CU_ASSERT_EQUAL(bundle_delete("alpha", err, sizeof(err)), 0);
    CU_ASSERT_FALSE(g_file_test(dir, G_FILE_TEST_EXISTS));
    g_free(dir);
    CU_ASSERT_EQUAL(bundle_delete("alpha", err, sizeof(err)), -ENOENT);
    CU_ASSERT_EQUAL(bundle_load("alpha", &l, err, sizeof(err)), -ENOENT);
    CU_ASSERT_EQUAL(bundle_delete("beta", err, sizeof(err)), 0);
    names = bundle_list();
    CU_ASSERT_EQUAL(g_strv_length(names), 0);
    g_strfreev(names);
}

static void test_bad_configs(void)
{
    char err[512];
    struct bundle_config c = {.name = "x/y", .mem = 64ull << 20, .cpus = 1};
    CU_ASSERT_EQUAL(bundle_create(&c, err, sizeof(err)), -EINVAL);
    c.name = "ok";
    c.cpus = 0;
    CU_ASSERT_EQUAL(bundle_create(&c, err, sizeof(err)), -EINVAL);
    c.cpus = 1;
    c.mem = 1 << 20;
    CU_ASSERT_EQUAL(bundle_create(&c, err, sizeof(err)), -EINVAL);
    c.mem = 64ull << 20;
    c.firmware = BUNDLE_FW_KERNEL;
    CU_ASSERT_EQUAL(bundle_create(&c, err, sizeof(err)), -EINVAL);
    char *dir = bundle_dir("ok");
    CU_ASSERT_FALSE(g_file_test(dir, G_FILE_TEST_EXISTS));

    /* A hand-edited vm.conf may not point the disk outside the bundle. */
    c.firmware = BUNDLE_FW_BIOS;
    CU_ASSERT_EQUAL_FATAL(bundle_create(&c, err, sizeof(err)), 0);
    char *conf = g_build_filename(dir, BUNDLE_CONF, NULL);
    CU_ASSERT_TRUE(g_file_set_contents(conf,
                                       "[hardware]\nmemory-mib=64\n[disks]\n"
                                       "disk0=../../../etc/shadow\n",
                                       -1, NULL));
    struct bundle_config l;
    CU_ASSERT_EQUAL(bundle_load("ok", &l, err, sizeof(err)), -EINVAL);
    CU_ASSERT_TRUE(g_file_set_contents(conf, "not a key file\x01", -1, NULL));
    CU_ASSERT_EQUAL(bundle_load("ok", &l, err, sizeof(err)), -EINVAL);
    CU_ASSERT_TRUE(g_file_set_contents(conf, "[boot]\nfirmware=floppy\n", -1, NULL));
    CU_ASSERT_EQUAL(bundle_load("ok", &l, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(bundle_delete("ok", err, sizeof(err)), 0);
    g_free(conf);
    g_free(dir);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("bundle", setup, teardown);
    CU_add_test(s, "root follows XDG_DATA_HOME", test_root_follows_xdg);
    CU_add_test(s, "create, list, load, save, delete", test_round_trip);
    CU_add_test(s, "bad configs refused", test_bad_configs);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
