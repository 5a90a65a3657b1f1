/* lodge gui: runs the GTK3 manager, lodge-gui, installed next to lodge. Keeping GTK
 * out of the lodge binary keeps it out of every VM process. */
#include "core/cli.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cli_gui_main(int argc, char **argv)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0) {
        fprintf(stderr, "lodge: gui: cannot find my own program: %s\n", strerror(errno));
        return 1;
    }
    self[n] = '\0';
    char *dir = g_path_get_dirname(self);
    char *gui = g_build_filename(dir, "ui", "lodge-gui", NULL);
    if (!g_file_test(gui, G_FILE_TEST_IS_EXECUTABLE)) {
        g_free(gui);
        gui = g_build_filename(dir, "lodge-gui", NULL);
    }
    g_free(dir);
    if (!g_file_test(gui, G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr,
                "lodge: gui: %s is missing (this lodge was built without GTK 3; "
                "install libgtk-3-dev and rebuild)\n",
                gui);
        g_free(gui);
        return 1;
    }
    argv[0] = gui;
    execv(gui, argv);
    fprintf(stderr, "lodge: gui: %s: %s\n", gui, strerror(errno));
    g_free(gui);
    return 1;
}
