/* VM names and control socket paths: shared by the VM process, lodge ctl and the GTK
 * manager (which links only this part of the control socket code). */
#include "core/ctl.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

bool ctl_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CTL_NAME_MAX || name[0] == '.' || name[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isalnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-') {
            return false;
        }
    }
    return true;
}

int ctl_socket_path(const char *name, bool mkdir, char *out, size_t outlen)
{
    if (!ctl_name_valid(name)) {
        return -EINVAL;
    }
    const char *rt = g_getenv("XDG_RUNTIME_DIR");
    gchar *dir = rt && rt[0] ? g_build_filename(rt, "lodge", NULL)
                             : g_strdup_printf("/tmp/lodge-%u", (unsigned)getuid());
    if (mkdir) {
        g_mkdir_with_parents(dir, 0700);
    }
    int n = snprintf(out, outlen, "%s/%s.sock", dir, name);
    g_free(dir);
    if (n < 0 || (size_t)n >= outlen || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        return -ENAMETOOLONG;
    }
    return 0;
}
