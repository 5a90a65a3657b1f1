/* VM bundles: create, load, save, list, delete. */
#include "core/bundle.h"

#include "core/ctl.h"
#include "snapshot/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

char *bundle_root(void)
{
    return g_build_filename(g_get_user_data_dir(), "lodge", "vms", NULL);
}

char *bundle_dir(const char *name)
{
    if (!name || !ctl_name_valid(name)) {
        return NULL;
    }
    char *root = bundle_root();
    char *dir = g_build_filename(root, name, NULL);
    g_free(root);
    return dir;
}

static const char *const bundle_fw_names[] = {"bios", "uefi", "kernel"};

const char *bundle_firmware_name(enum bundle_firmware fw)
{
    return (unsigned)fw < G_N_ELEMENTS(bundle_fw_names) ? bundle_fw_names[fw] : "bios";
}

int bundle_firmware_parse(const char *s, enum bundle_firmware *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bundle_fw_names); i++) {
        if (s && strcmp(s, bundle_fw_names[i]) == 0) {
            *out = (enum bundle_firmware)i;
            return 0;
        }
    }
    return -EINVAL;
}

void bundle_config_clear(struct bundle_config *c)
{
    g_free(c->name);
    g_free(c->kernel);
    g_free(c->initrd);
    g_free(c->append);
    g_free(c->iso);
    g_free(c->disk);
    g_free(c->network);
    memset(c, 0, sizeof(*c));
}

static int bundle_check(const struct bundle_config *cfg, char *err, size_t errlen)
{
    if (!cfg->name || !ctl_name_valid(cfg->name)) {
        snprintf(err, errlen,
                 "%s: not a VM name (1-%d of A-Z a-z 0-9 . _ -, not starting "
                 "with . or -)",
                 cfg->name ? cfg->name : "(none)", CTL_NAME_MAX);
        return -EINVAL;
    }
    if (cfg->mem < (32ull << 20) || (cfg->mem & 0xfff)) {
        snprintf(err, errlen, "--mem: at least 32M in 4K units");
        return -EINVAL;
    }
    if (cfg->cpus < 1 || cfg->cpus > 64) {
        snprintf(err, errlen, "--cpus: %d is out of range 1..64", cfg->cpus);
        return -EINVAL;
    }
    if (cfg->firmware == BUNDLE_FW_KERNEL && !cfg->kernel) {
        snprintf(err, errlen, "--firmware kernel needs --kernel FILE");
        return -EINVAL;
    }
    if (cfg->firmware != BUNDLE_FW_KERNEL && (cfg->kernel || cfg->initrd || cfg->append)) {
        snprintf(err, errlen, "--kernel/--initrd/--append need --firmware kernel");
        return -EINVAL;
    }
    return 0;
}

static int bundle_write_conf(const struct bundle_config *cfg, const char *dir, char *err,
                             size_t errlen)
{
    GKeyFile *kf = g_key_file_new();
    g_key_file_set_string(kf, "vm", "name", cfg->name);
    g_key_file_set_uint64(kf, "hardware", "memory-mib", cfg->mem >> 20);
    g_key_file_set_integer(kf, "hardware", "cpus", cfg->cpus);
    g_key_file_set_string(kf, "boot", "firmware", bundle_firmware_name(cfg->firmware));
    if (cfg->kernel) {
        g_key_file_set_string(kf, "boot", "kernel", cfg->kernel);
    }
    if (cfg->initrd) {
        g_key_file_set_string(kf, "boot", "initrd", cfg->initrd);
    }
    if (cfg->append) {
        g_key_file_set_string(kf, "boot", "append", cfg->append);
    }
    if (cfg->iso) {
        g_key_file_set_string(kf, "boot", "iso", cfg->iso);
    }
    if (cfg->disk) {
        g_key_file_set_string(kf, "disks", "disk0", cfg->disk);
        g_key_file_set_uint64(kf, "disks", "disk0-size", cfg->disk_size);
    }
    g_key_file_set_string(kf, "network", "mode", cfg->network ? cfg->network : "user");
    char *path = g_build_filename(dir, BUNDLE_CONF, NULL);
    GError *gerr = NULL;
    int rc = 0;
    if (!g_key_file_save_to_file(kf, path, &gerr)) {
        snprintf(err, errlen, "%s: %s", path, gerr->message);
        g_error_free(gerr);
        rc = -EIO;
    }
    g_free(path);
    g_key_file_free(kf);
    return rc;
}

/* Remove path and, for a folder, everything below it, without following symlinks. */
static int bundle_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        return unlink(path) < 0 ? -errno : 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char *sub = g_build_filename(path, e->d_name, NULL);
        int r = bundle_rm_rf(sub);
        g_free(sub);
        if (r < 0 && rc == 0) {
            rc = r;
        }
    }
    closedir(d);
    if (rmdir(path) < 0 && rc == 0) {
        rc = -errno;
    }
    return rc;
}

int bundle_create(const struct bundle_config *cfg, char *err, size_t errlen)
{
    int rc = bundle_check(cfg, err, errlen);
    if (rc < 0) {
        return rc;
    }
    char *root = bundle_root();
    char *dir = bundle_dir(cfg->name);
    if (g_mkdir_with_parents(root, 0700) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", root, strerror(-rc));
        goto out;
    }
    if (mkdir(dir, 0700) < 0) {
        rc = -errno;
        if (rc == -EEXIST) {
            snprintf(err, errlen, "%s: a VM of that name exists (%s)", cfg->name, dir);
        } else {
            snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
        }
        goto out;
    }
    char *logs = g_build_filename(dir, "logs", NULL);
    mkdir(logs, 0700);
    g_free(logs);
    struct bundle_config c = *cfg;
    c.disk = NULL;
    if (cfg->disk_size) {
        c.disk = (char *)BUNDLE_DISK;
        char *disk = g_build_filename(dir, BUNDLE_DISK, NULL);
        struct image_create_opts o = {.format = IMAGE_FORMAT_QCOW2, .size = cfg->disk_size};
        char why[IMAGE_ERR_LEN];
        rc = image_create(disk, &o, why, sizeof(why));
        g_free(disk);
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot create the disk: %s", cfg->name, why);
            bundle_rm_rf(dir);
            goto out;
        }
    }
    rc = bundle_write_conf(&c, dir, err, errlen);
    if (rc < 0) {
        bundle_rm_rf(dir);
    }
out:
    g_free(root);
    g_free(dir);
    return rc;
}

int bundle_save(const struct bundle_config *cfg, char *err, size_t errlen)
{
    int rc = bundle_check(cfg, err, errlen);
    if (rc < 0) {
        return rc;
    }
    char *dir = bundle_dir(cfg->name);
    rc = bundle_write_conf(cfg, dir, err, errlen);
    g_free(dir);
    return rc;
}

static char *bundle_kf_string(GKeyFile *kf, const char *group, const char *key)
{
    char *s = g_key_file_get_string(kf, group, key, NULL);
    if (s && !s[0]) {
        g_free(s);
        return NULL;
    }
    return s;
}

int bundle_load(const char *name, struct bundle_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    char *dir = bundle_dir(name);
    if (!dir) {
        snprintf(err, errlen, "%s: not a VM name", name);
        return -EINVAL;
    }
    char *path = g_build_filename(dir, BUNDLE_CONF, NULL);
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    int rc = 0;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &gerr)) {
        bool missing = gerr->domain == G_FILE_ERROR && gerr->code == G_FILE_ERROR_NOENT;
        snprintf(err, errlen, missing ? "%s: no such VM (see lodge list)" : "%s: %s",
                 missing ? name : path, gerr->message);
        g_error_free(gerr);
        rc = missing ? -ENOENT : -EINVAL;
        goto out;
    }
    out->name = g_strdup(name);
    out->mem = g_key_file_get_uint64(kf, "hardware", "memory-mib", NULL) << 20;
    if (!out->mem) {
        out->mem = BUNDLE_DEFAULT_MEM;
    }
    out->cpus = g_key_file_get_integer(kf, "hardware", "cpus", NULL);
    if (out->cpus <= 0) {
        out->cpus = 1;
    }
    char *fw = bundle_kf_string(kf, "boot", "firmware");
    if (fw && bundle_firmware_parse(fw, &out->firmware) < 0) {
        snprintf(err, errlen, "%s: [boot] firmware=%s is not bios, uefi or kernel", path, fw);
        rc = -EINVAL;
    }
    g_free(fw);
    out->kernel = bundle_kf_string(kf, "boot", "kernel");
    out->initrd = bundle_kf_string(kf, "boot", "initrd");
    out->append = bundle_kf_string(kf, "boot", "append");
    out->iso = bundle_kf_string(kf, "boot", "iso");
    out->disk = bundle_kf_string(kf, "disks", "disk0");
    out->disk_size = g_key_file_get_uint64(kf, "disks", "disk0-size", NULL);
    out->network = bundle_kf_string(kf, "network", "mode");
    if (!out->network) {
        out->network = g_strdup("user");
    }
    /* The disk name comes from a file the user may edit: keep it inside the bundle. */
    if (rc == 0 && out->disk && (strchr(out->disk, '/') || strcmp(out->disk, "..") == 0)) {
        snprintf(err, errlen, "%s: [disks] disk0 must be a file name inside the bundle", path);
        rc = -EINVAL;
    }
    if (rc == 0) {
        rc = bundle_check(out, err, errlen);
    }
    if (rc < 0) {
        bundle_config_clear(out);
    }
out:
    g_key_file_free(kf);
    g_free(path);
    g_free(dir);
    return rc;
}

static gint bundle_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **bundle_list(void)
{
    GPtrArray *names = g_ptr_array_new();
    char *root = bundle_root();
    DIR *d = opendir(root);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!ctl_name_valid(e->d_name)) {
                continue;
            }
            char *conf = g_build_filename(root, e->d_name, BUNDLE_CONF, NULL);
            if (g_file_test(conf, G_FILE_TEST_IS_REGULAR)) {
                g_ptr_array_add(names, g_strdup(e->d_name));
            }
            g_free(conf);
        }
        closedir(d);
    }
    g_free(root);
    g_ptr_array_sort(names, bundle_cmp);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

int bundle_delete(const char *name, char *err, size_t errlen)
{
    char *dir = bundle_dir(name);
    if (!dir) {
        snprintf(err, errlen, "%s: not a VM name", name);
        return -EINVAL;
    }
    char *conf = g_build_filename(dir, BUNDLE_CONF, NULL);
    int rc = 0;
    if (!g_file_test(conf, G_FILE_TEST_IS_REGULAR)) {
        snprintf(err, errlen, "%s: no such VM (see lodge list)", name);
        rc = -ENOENT;
    } else if (bundle_running(name)) {
        snprintf(err, errlen, "%s: the VM is running; stop it first (lodge ctl %s powerdown)", name,
                 name);
        rc = -EBUSY;
    } else {
        rc = bundle_rm_rf(dir);
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
        }
    }
    g_free(conf);
    g_free(dir);
    return rc;
}

bool bundle_running(const char *name)
{
    char path[256];
    if (ctl_socket_path(name, false, path, sizeof(path)) < 0) {
        return false;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return false;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return live;
}
