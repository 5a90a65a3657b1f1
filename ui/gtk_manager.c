/* lodge-gui: the GTK3 VM manager.
 *
 * The library lists the bundles in $XDG_DATA_HOME/lodge/vms with their state (a VM runs
 * when its control socket answers). Create, start and delete run the lodge program, so
 * the rules live in one place; stop, force-off and console tabs talk to the VM's control
 * socket. A console tab maps the framebuffer memfd it gets from display-attach and
 * redraws it periodically. */
#include "core/ctl.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <gtk/gtk.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define GUI_REFRESH_MS 2000
#define GUI_FRAME_MS 50

enum { COL_NAME, COL_STATE, COL_MEM, COL_CPUS, COL_BOOT, NCOLS };

struct gui {
    GtkWidget *win;
    GtkWidget *notebook;
    GtkListStore *store;
    GtkWidget *view;
    char *lodge; /* the lodge program next to us */
};

struct console_tab {
    struct gui *g;
    GtkWidget *area;
    char *name;
    uint8_t *fb; /* mapped framebuffer, read-only */
    size_t size;
    int width, height, stride;
    guint timer;
    int input_fd;    /* control connection for key events, or -1 */
    guint input_src; /* drains its replies */
};

static char *gui_root(void)
{
    return g_build_filename(g_get_user_data_dir(), "lodge", "vms", NULL);
}

/* ---- control socket (client side) ------------------------------------------------------ */

static int gui_ctl_connect(const char *name)
{
    char path[256];
    if (ctl_socket_path(name, false, path, sizeof(path)) < 0) {
        return -EINVAL;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Send one request and read the reply line (skipping events); *fd_out gets a passed fd
 * when asked. Returns the parsed reply object's parser, or NULL. */
static JsonParser *gui_ctl_call(const char *name, const char *request, int *fd_out)
{
    int fd = gui_ctl_connect(name);
    if (fd < 0) {
        return NULL;
    }
    JsonParser *p = NULL;
    GString *buf = g_string_new(NULL);
    if (write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
        goto out;
    }
    for (;;) {
        char tmp[4096];
        struct iovec iov = {.iov_base = tmp, .iov_len = sizeof(tmp)};
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            goto out;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int got;
                memcpy(&got, CMSG_DATA(c), sizeof(int));
                if (fd_out && *fd_out < 0) {
                    *fd_out = got;
                } else {
                    close(got);
                }
            }
        }
        g_string_append_len(buf, tmp, n);
        char *nl;
        while ((nl = memchr(buf->str, '\n', buf->len))) {
            p = json_parser_new();
            gboolean ok = json_parser_load_from_data(p, buf->str, nl - buf->str, NULL) &&
                          JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p));
            g_string_erase(buf, 0, nl - buf->str + 1);
            if (ok &&
                !json_object_has_member(json_node_get_object(json_parser_get_root(p)), "event")) {
                goto out;
            }
            g_object_unref(p);
            p = NULL;
        }
    }
out:
    g_string_free(buf, TRUE);
    close(fd);
    return p;
}

static bool gui_ctl_simple(const char *name, const char *request)
{
    JsonParser *p = gui_ctl_call(name, request, NULL);
    if (!p) {
        return false;
    }
    bool ok = json_object_get_boolean_member_with_default(
        json_node_get_object(json_parser_get_root(p)), "ok", FALSE);
    g_object_unref(p);
    return ok;
}

/* ---- library list ---------------------------------------------------------------------- */

static void gui_refresh(struct gui *g)
{
    char *sel = NULL;
    GtkTreeIter it;
    GtkTreeModel *model;
    GtkTreeSelection *ts = gtk_tree_view_get_selection(GTK_TREE_VIEW(g->view));
    if (gtk_tree_selection_get_selected(ts, &model, &it)) {
        gtk_tree_model_get(model, &it, COL_NAME, &sel, -1);
    }
    gtk_list_store_clear(g->store);
    char *root = gui_root();
    GDir *d = g_dir_open(root, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *e;
    while (d && (e = g_dir_read_name(d))) {
        if (ctl_name_valid(e)) {
            g_ptr_array_add(names, g_strdup(e));
        }
    }
    if (d) {
        g_dir_close(d);
    }
    g_ptr_array_sort(names, (GCompareFunc)(void (*)(void))g_strcmp0);
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        char *conf = g_build_filename(root, name, "vm.conf", NULL);
        GKeyFile *kf = g_key_file_new();
        if (g_key_file_load_from_file(kf, conf, G_KEY_FILE_NONE, NULL)) {
            int fd = gui_ctl_connect(name);
            bool running = fd >= 0;
            if (fd >= 0) {
                close(fd);
            }
            char *mem = g_strdup_printf("%" G_GUINT64_FORMAT " MiB",
                                        g_key_file_get_uint64(kf, "hardware", "memory-mib", NULL));
            char *fw = g_key_file_get_string(kf, "boot", "firmware", NULL);
            gtk_list_store_insert_with_values(
                g->store, &it, -1, COL_NAME, name, COL_STATE, running ? "running" : "stopped",
                COL_MEM, mem, COL_CPUS, g_key_file_get_integer(kf, "hardware", "cpus", NULL),
                COL_BOOT, fw ? fw : "bios", -1);
            if (sel && strcmp(sel, name) == 0) {
                gtk_tree_selection_select_iter(ts, &it);
            }
            g_free(mem);
            g_free(fw);
        }
        g_key_file_free(kf);
        g_free(conf);
    }
    g_ptr_array_free(names, TRUE);
    g_free(root);
    g_free(sel);
}

static gboolean gui_refresh_timer(gpointer opaque)
{
    gui_refresh(opaque);
    return G_SOURCE_CONTINUE;
}

static char *gui_selected(struct gui *g)
{
    GtkTreeIter it;
    GtkTreeModel *model;
    char *name = NULL;
    GtkTreeSelection *ts = gtk_tree_view_get_selection(GTK_TREE_VIEW(g->view));
    if (gtk_tree_selection_get_selected(ts, &model, &it)) {
        gtk_tree_model_get(model, &it, COL_NAME, &name, -1);
    }
    return name;
}

static void gui_error(struct gui *g, const char *text)
{
    GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(g->win), GTK_DIALOG_MODAL, GTK_MESSAGE_ERROR,
                                          GTK_BUTTONS_CLOSE, "%s", text);
    gtk_dialog_run(GTK_DIALOG(d));
    gtk_widget_destroy(d);
}

/* Run lodge with args and wait; on failure show its stderr. */
static bool gui_run_lodge(struct gui *g, GPtrArray *args)
{
    g_ptr_array_insert(args, 0, g_strdup(g->lodge));
    g_ptr_array_add(args, NULL);
    char *err = NULL;
    int status = 0;
    GError *gerr = NULL;
    bool ok = g_spawn_sync(NULL, (char **)args->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
                           &err, &status, &gerr) &&
              g_spawn_check_wait_status(status, NULL);
    if (!ok) {
        gui_error(g, gerr ? gerr->message : (err && err[0] ? err : "lodge failed"));
    }
    g_clear_error(&gerr);
    g_free(err);
    return ok;
}

/* ---- console tabs ---------------------------------------------------------------------- */

static gboolean console_draw(GtkWidget *w, cairo_t *cr, gpointer opaque)
{
    struct console_tab *t = opaque;
    int aw = gtk_widget_get_allocated_width(w), ah = gtk_widget_get_allocated_height(w);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_paint(cr);
    if (!t->fb) {
        return TRUE;
    }
    /* XRGB8888 little-endian is cairo's RGB24; scale with the aspect ratio kept. */
    cairo_surface_t *s = cairo_image_surface_create_for_data(t->fb, CAIRO_FORMAT_RGB24, t->width,
                                                             t->height, t->stride);
    double sc = MIN((double)aw / t->width, (double)ah / t->height);
    cairo_translate(cr, (aw - t->width * sc) / 2, (ah - t->height * sc) / 2);
    cairo_scale(cr, sc, sc);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_paint(cr);
    cairo_surface_destroy(s);
    return TRUE;
}

static gboolean console_tick(gpointer opaque)
{
    struct console_tab *t = opaque;
    gtk_widget_queue_draw(t->area);
    return G_SOURCE_CONTINUE;
}

/* Replies to key events are not interesting, but must be read so the VM never waits. */
static gboolean console_input_drain(gint fd, GIOCondition cond, gpointer opaque)
{
    struct console_tab *t = opaque;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(t->input_fd);
        t->input_fd = -1;
        t->input_src = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* Hardware key codes (evdev + 8 on X11 and Wayland) keep the guest's own layout. */
static gboolean console_key(GtkWidget *w, GdkEventKey *ev, gpointer opaque)
{
    struct console_tab *t = opaque;
    if (t->input_fd < 0 || ev->hardware_keycode < 8) {
        return FALSE;
    }
    char line[128];
    int n = snprintf(line, sizeof(line),
                     "{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":%u,"
                     "\"down\":%s}\n",
                     ev->hardware_keycode - 8u, ev->type == GDK_KEY_PRESS ? "true" : "false");
    if (send(t->input_fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
        return FALSE;
    }
    return TRUE;
}

static gboolean console_click(GtkWidget *w, GdkEventButton *ev, gpointer opaque)
{
    gtk_widget_grab_focus(w);
    return TRUE;
}

static void console_destroyed(GtkWidget *w, gpointer opaque)
{
    struct console_tab *t = opaque;
    g_source_remove(t->timer);
    if (t->input_src) {
        g_source_remove(t->input_src);
    }
    if (t->input_fd >= 0) {
        close(t->input_fd);
    }
    if (t->fb) {
        munmap(t->fb, t->size);
    }
    g_free(t->name);
    g_free(t);
}

static void gui_open_console(struct gui *g, const char *name)
{
    int fd = -1;
    JsonParser *p = gui_ctl_call(name, "{\"cmd\":\"display-attach\"}\n", &fd);
    JsonObject *o = p ? json_node_get_object(json_parser_get_root(p)) : NULL;
    if (!o || !json_object_get_boolean_member_with_default(o, "ok", FALSE) || fd < 0) {
        gui_error(g, o ? json_object_get_string_member_with_default(o, "error", "no display")
                       : "the VM is not running");
        if (p) {
            g_object_unref(p);
        }
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    JsonObject *r = json_object_get_object_member(o, "return");
    struct console_tab *t = g_new0(struct console_tab, 1);
    t->g = g;
    t->name = g_strdup(name);
    t->width = (int)json_object_get_int_member_with_default(r, "width", 0);
    t->height = (int)json_object_get_int_member_with_default(r, "height", 0);
    t->stride = (int)json_object_get_int_member_with_default(r, "stride", 0);
    t->size = (size_t)json_object_get_int_member_with_default(r, "size", 0);
    g_object_unref(p);
    /* Check the VM's numbers before trusting them with a mapping. */
    if (t->width > 0 && t->height > 0 && t->stride >= t->width * 4 &&
        (size_t)t->stride * t->height <= t->size) {
        void *m = mmap(NULL, t->size, PROT_READ, MAP_SHARED, fd, 0);
        t->fb = m == MAP_FAILED ? NULL : m;
    }
    close(fd);
    t->area = gtk_drawing_area_new();
    gtk_widget_set_size_request(t->area, 320, 240);
    g_signal_connect(t->area, "draw", G_CALLBACK(console_draw), t);
    g_signal_connect(t->area, "destroy", G_CALLBACK(console_destroyed), t);
    t->timer = g_timeout_add(GUI_FRAME_MS, console_tick, t);
    t->input_fd = gui_ctl_connect(name);
    if (t->input_fd >= 0) {
        t->input_src =
            g_unix_fd_add(t->input_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, console_input_drain, t);
    }
    gtk_widget_set_can_focus(t->area, TRUE);
    gtk_widget_add_events(t->area,
                          GDK_KEY_PRESS_MASK | GDK_KEY_RELEASE_MASK | GDK_BUTTON_PRESS_MASK);
    g_signal_connect(t->area, "key-press-event", G_CALLBACK(console_key), t);
    g_signal_connect(t->area, "key-release-event", G_CALLBACK(console_key), t);
    g_signal_connect(t->area, "button-press-event", G_CALLBACK(console_click), t);
    GtkWidget *label = gtk_label_new(name);
    int page = gtk_notebook_append_page(GTK_NOTEBOOK(g->notebook), t->area, label);
    gtk_widget_show_all(g->notebook);
    gtk_notebook_set_current_page(GTK_NOTEBOOK(g->notebook), page);
    gtk_widget_grab_focus(t->area);
}

/* ---- actions ----------------------------------------------------------------------------- */

static GtkWidget *gui_form_row(GtkGrid *grid, int row, const char *label, GtkWidget *w)
{
    GtkWidget *l = gtk_label_new(label);
    gtk_widget_set_halign(l, GTK_ALIGN_END);
    gtk_grid_attach(grid, l, 0, row, 1, 1);
    gtk_widget_set_hexpand(w, TRUE);
    gtk_grid_attach(grid, w, 1, row, 1, 1);
    return w;
}

static void gui_on_new(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    GtkWidget *d = gtk_dialog_new_with_buttons("New virtual machine", GTK_WINDOW(g->win),
                                               GTK_DIALOG_MODAL, "_Cancel", GTK_RESPONSE_CANCEL,
                                               "C_reate", GTK_RESPONSE_OK, NULL);
    GtkGrid *grid = GTK_GRID(gtk_grid_new());
    gtk_grid_set_row_spacing(grid, 6);
    gtk_grid_set_column_spacing(grid, 12);
    gtk_container_set_border_width(GTK_CONTAINER(grid), 12);
    GtkWidget *name = gui_form_row(grid, 0, "Name", gtk_entry_new());
    GtkWidget *mem =
        gui_form_row(grid, 1, "Memory (MiB)", gtk_spin_button_new_with_range(32, 65536, 64));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(mem), 1024);
    GtkWidget *cpus = gui_form_row(grid, 2, "CPUs", gtk_spin_button_new_with_range(1, 64, 1));
    GtkWidget *disk =
        gui_form_row(grid, 3, "Disk (GiB, 0 = none)", gtk_spin_button_new_with_range(0, 4096, 1));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(disk), 20);
    GtkWidget *fw = gui_form_row(grid, 4, "Firmware", gtk_combo_box_text_new());
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(fw), "bios", "BIOS (SeaBIOS)");
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(fw), "uefi", "UEFI (OVMF)");
    gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(fw), "kernel", "Linux kernel (direct boot)");
    gtk_combo_box_set_active_id(GTK_COMBO_BOX(fw), "bios");
    GtkWidget *iso =
        gui_form_row(grid, 5, "Installer ISO",
                     gtk_file_chooser_button_new("ISO image", GTK_FILE_CHOOSER_ACTION_OPEN));
    GtkWidget *kernel = gui_form_row(
        grid, 6, "Kernel", gtk_file_chooser_button_new("Kernel", GTK_FILE_CHOOSER_ACTION_OPEN));
    GtkWidget *append = gui_form_row(grid, 7, "Command line", gtk_entry_new());
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), GTK_WIDGET(grid));
    gtk_widget_show_all(d);
    while (gtk_dialog_run(GTK_DIALOG(d)) == GTK_RESPONSE_OK) {
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(a, g_strdup("create"));
        g_ptr_array_add(a, g_strdup(gtk_entry_get_text(GTK_ENTRY(name))));
        g_ptr_array_add(a, g_strdup_printf("--mem=%dM",
                                           gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(mem))));
        g_ptr_array_add(a, g_strdup_printf("--cpus=%d", gtk_spin_button_get_value_as_int(
                                                            GTK_SPIN_BUTTON(cpus))));
        g_ptr_array_add(a, g_strdup_printf("--disk-size=%dG", gtk_spin_button_get_value_as_int(
                                                                  GTK_SPIN_BUTTON(disk))));
        g_ptr_array_add(
            a, g_strdup_printf("--firmware=%s", gtk_combo_box_get_active_id(GTK_COMBO_BOX(fw))));
        char *f = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(iso));
        if (f) {
            g_ptr_array_add(a, g_strdup_printf("--iso=%s", f));
            g_free(f);
        }
        f = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(kernel));
        if (f) {
            g_ptr_array_add(a, g_strdup_printf("--kernel=%s", f));
            g_free(f);
        }
        const char *app = gtk_entry_get_text(GTK_ENTRY(append));
        if (app[0]) {
            g_ptr_array_add(a, g_strdup_printf("--append=%s", app));
        }
        bool ok = gui_run_lodge(g, a);
        g_ptr_array_free(a, TRUE);
        if (ok) {
            break;
        }
    }
    gtk_widget_destroy(d);
    gui_refresh(g);
}

static void gui_on_start(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (!name) {
        return;
    }
    /* The VM process runs headless; its screen comes into a console tab. */
    char *argv[] = {g->lodge, "start", name, "--display", "none", "--serial", "none", NULL};
    GError *gerr = NULL;
    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &gerr)) {
        gui_error(g, gerr->message);
        g_error_free(gerr);
    } else {
        for (int i = 0; i < 50; i++) {
            int fd = gui_ctl_connect(name);
            if (fd >= 0) {
                close(fd);
                gui_open_console(g, name);
                break;
            }
            g_usleep(100 * 1000);
        }
    }
    g_free(name);
    gui_refresh(g);
}

static void gui_on_stop(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (name && !gui_ctl_simple(name, "{\"cmd\":\"powerdown\"}\n")) {
        gui_error(g, "the VM is not running");
    }
    g_free(name);
}

static void gui_on_force_off(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (name && !gui_ctl_simple(name, "{\"cmd\":\"powerdown\",\"force\":true}\n")) {
        gui_error(g, "the VM is not running");
    }
    g_free(name);
    gui_refresh(g);
}

static void gui_on_console(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (name) {
        gui_open_console(g, name);
    }
    g_free(name);
}

static void gui_on_settings(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (!name) {
        return;
    }
    char *root = gui_root();
    char *conf = g_build_filename(root, name, "vm.conf", NULL);
    GKeyFile *kf = g_key_file_new();
    g_key_file_load_from_file(kf, conf, G_KEY_FILE_KEEP_COMMENTS, NULL);
    GtkWidget *d =
        gtk_dialog_new_with_buttons("Settings", GTK_WINDOW(g->win), GTK_DIALOG_MODAL, "_Cancel",
                                    GTK_RESPONSE_CANCEL, "_Save", GTK_RESPONSE_OK, NULL);
    GtkGrid *grid = GTK_GRID(gtk_grid_new());
    gtk_grid_set_row_spacing(grid, 6);
    gtk_grid_set_column_spacing(grid, 12);
    gtk_container_set_border_width(GTK_CONTAINER(grid), 12);
    GtkWidget *mem =
        gui_form_row(grid, 0, "Memory (MiB)", gtk_spin_button_new_with_range(32, 65536, 64));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(mem),
                              (double)g_key_file_get_uint64(kf, "hardware", "memory-mib", NULL));
    GtkWidget *cpus = gui_form_row(grid, 1, "CPUs", gtk_spin_button_new_with_range(1, 64, 1));
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(cpus),
                              g_key_file_get_integer(kf, "hardware", "cpus", NULL));
    GtkWidget *append = gui_form_row(grid, 2, "Command line", gtk_entry_new());
    char *cur = g_key_file_get_string(kf, "boot", "append", NULL);
    gtk_entry_set_text(GTK_ENTRY(append), cur ? cur : "");
    g_free(cur);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(d))), GTK_WIDGET(grid));
    gtk_widget_show_all(d);
    if (gtk_dialog_run(GTK_DIALOG(d)) == GTK_RESPONSE_OK) {
        g_key_file_set_uint64(kf, "hardware", "memory-mib",
                              (guint64)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(mem)));
        g_key_file_set_integer(kf, "hardware", "cpus",
                               gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(cpus)));
        const char *app = gtk_entry_get_text(GTK_ENTRY(append));
        if (app[0]) {
            g_key_file_set_string(kf, "boot", "append", app);
        } else {
            g_key_file_remove_key(kf, "boot", "append", NULL);
        }
        GError *gerr = NULL;
        if (!g_key_file_save_to_file(kf, conf, &gerr)) {
            gui_error(g, gerr->message);
            g_error_free(gerr);
        }
    }
    gtk_widget_destroy(d);
    g_key_file_free(kf);
    g_free(conf);
    g_free(root);
    g_free(name);
    gui_refresh(g);
}

static void gui_on_delete(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (!name) {
        return;
    }
    GtkWidget *d =
        gtk_message_dialog_new(GTK_WINDOW(g->win), GTK_DIALOG_MODAL, GTK_MESSAGE_QUESTION,
                               GTK_BUTTONS_YES_NO, "Delete %s with its disks?", name);
    if (gtk_dialog_run(GTK_DIALOG(d)) == GTK_RESPONSE_YES) {
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(a, g_strdup("delete"));
        g_ptr_array_add(a, g_strdup(name));
        g_ptr_array_add(a, g_strdup("--yes"));
        gui_run_lodge(g, a);
        g_ptr_array_free(a, TRUE);
    }
    gtk_widget_destroy(d);
    g_free(name);
    gui_refresh(g);
}

static void gui_button(GtkWidget *box, const char *label, GCallback cb, struct gui *g)
{
    GtkWidget *b = gtk_button_new_with_mnemonic(label);
    g_signal_connect(b, "clicked", cb, g);
    gtk_box_pack_start(GTK_BOX(box), b, FALSE, FALSE, 0);
}

static void gui_build(struct gui *g)
{
    g->win = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_title(GTK_WINDOW(g->win), "Lodge");
    gtk_window_set_default_size(GTK_WINDOW(g->win), 900, 600);
    g_signal_connect(g->win, "destroy", G_CALLBACK(gtk_main_quit), NULL);
    g->notebook = gtk_notebook_new();
    gtk_container_add(GTK_CONTAINER(g->win), g->notebook);

    GtkWidget *lib = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_container_set_border_width(GTK_CONTAINER(lib), 6);
    GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gui_button(bar, "_New…", G_CALLBACK(gui_on_new), g);
    gui_button(bar, "_Start", G_CALLBACK(gui_on_start), g);
    gui_button(bar, "S_top", G_CALLBACK(gui_on_stop), g);
    gui_button(bar, "_Force off", G_CALLBACK(gui_on_force_off), g);
    gui_button(bar, "_Console", G_CALLBACK(gui_on_console), g);
    gui_button(bar, "Se_ttings…", G_CALLBACK(gui_on_settings), g);
    gui_button(bar, "_Delete", G_CALLBACK(gui_on_delete), g);
    gtk_box_pack_start(GTK_BOX(lib), bar, FALSE, FALSE, 0);

    g->store = gtk_list_store_new(NCOLS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT,
                                  G_TYPE_STRING);
    g->view = gtk_tree_view_new_with_model(GTK_TREE_MODEL(g->store));
    static const char *titles[NCOLS] = {"Name", "State", "Memory", "CPUs", "Boot"};
    for (int i = 0; i < NCOLS; i++) {
        gtk_tree_view_append_column(GTK_TREE_VIEW(g->view),
                                    gtk_tree_view_column_new_with_attributes(
                                        titles[i], gtk_cell_renderer_text_new(), "text", i, NULL));
    }
    GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
    gtk_container_add(GTK_CONTAINER(scroll), g->view);
    gtk_box_pack_start(GTK_BOX(lib), scroll, TRUE, TRUE, 0);
    gtk_notebook_append_page(GTK_NOTEBOOK(g->notebook), lib, gtk_label_new("Library"));
    gui_refresh(g);
    g_timeout_add(GUI_REFRESH_MS, gui_refresh_timer, g);
    gtk_widget_show_all(g->win);
}

int main(int argc, char **argv)
{
    if (!gtk_init_check(&argc, &argv)) {
        fprintf(stderr, "lodge: gui: cannot open a display (is $DISPLAY set?)\n");
        return 1;
    }
    struct gui g = {0};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    char *dir = g_path_get_dirname(self);
    /* Built tree: build/ui/lodge-gui next to build/lodge; installed: both in bin/. */
    g.lodge = g_build_filename(dir, "..", "lodge", NULL);
    if (!g_file_test(g.lodge, G_FILE_TEST_IS_EXECUTABLE) || g_str_has_suffix(dir, "/bin")) {
        g_free(g.lodge);
        g.lodge = g_build_filename(dir, "lodge", NULL);
    }
    g_free(dir);
    gui_build(&g);
    /* lodge gui --console NAME: open that running VM's console tab at once. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--console") == 0) {
            gui_open_console(&g, argv[++i]);
        }
    }
    gtk_main();
    g_free(g.lodge);
    return 0;
}
