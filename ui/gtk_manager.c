/* lodge-gui: the GTK3 VM manager's window, library and actions.
 *
 * The library lists the bundles in $XDG_DATA_HOME/lodge/vms with their state (from the
 * VM's control socket) and a live thumbnail of each running VM. Create, start and delete
 * run the lodge program, so the rules live in one place; none of them blocks the window:
 * they run as child processes and report in the info bar, with a progress bar while they
 * work. Started VMs run in their own session, so they keep running when the manager
 * closes or crashes. Console tabs and thumbnails live in gtk_console.c, the assistant and
 * the settings editor in gtk_dialogs.c.
 *
 * Keyboard (GNOME conventions): Ctrl+N new VM, Return on a VM starts it or opens its
 * console, Alt+Return settings, Delete deletes (asks first), Ctrl+W closes a console tab,
 * Ctrl+Q quits, Ctrl+PgUp/PgDn switch tabs, Ctrl+? lists them; the buttons have Alt
 * mnemonics. The window's accelerators run before a console tab sees a key, so these few
 * never reach the guest; everything else typed into a console does. */
#include "ui/gtk_manager.h"

#include "core/ctl.h"

#include <errno.h>
#include <gio/gio.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define GUI_REFRESH_MS 2000 /* library states */
#define GUI_THUMB_MS 1000   /* thumbnails: a low rate, they are small */
#define GUI_PULSE_MS 100
#define GUI_INFO_HIDE_S 6     /* an informational message goes away by itself */
#define GUI_START_POLL_MS 200 /* waiting for a started VM's control socket */
#define GUI_START_TIMEOUT_MS 30000

enum { COL_THUMB, COL_NAME, COL_STATE, COL_MEM, COL_CPUS, COL_BOOT, NCOLS };

char *gui_root(void)
{
    return g_build_filename(g_get_user_data_dir(), "lodge", "vms", NULL);
}

/* ---- info bar: messages and progress ------------------------------------------------------ */

static gboolean gui_info_hide(gpointer opaque)
{
    struct gui *g = opaque;
    g->info_timer = 0;
    if (!g->busy) {
        gtk_widget_hide(g->infobar);
    }
    return G_SOURCE_REMOVE;
}

void gui_message(struct gui *g, GtkMessageType type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    gtk_info_bar_set_message_type(GTK_INFO_BAR(g->infobar), type);
    gtk_label_set_text(GTK_LABEL(g->info_label), g_strstrip(text));
    g_free(text);
    if (!g->busy) {
        gtk_widget_hide(g->progress);
    }
    g->info_busy = false; /* the end of the work must not hide this */
    gtk_widget_show(g->infobar);
    if (g->info_timer) {
        g_source_remove(g->info_timer);
        g->info_timer = 0;
    }
    if (type == GTK_MESSAGE_INFO) {
        g->info_timer = g_timeout_add_seconds(GUI_INFO_HIDE_S, gui_info_hide, g);
    }
}

static gboolean gui_pulse(gpointer opaque)
{
    struct gui *g = opaque;
    gtk_progress_bar_pulse(GTK_PROGRESS_BAR(g->progress));
    return G_SOURCE_CONTINUE;
}

void gui_busy_begin(struct gui *g, const char *text)
{
    g->busy++;
    gtk_info_bar_set_message_type(GTK_INFO_BAR(g->infobar), GTK_MESSAGE_OTHER);
    gtk_label_set_text(GTK_LABEL(g->info_label), text);
    gtk_progress_bar_set_text(GTK_PROGRESS_BAR(g->progress), NULL);
    gtk_widget_show(g->progress);
    gtk_widget_show(g->infobar);
    g->info_busy = true;
    if (!g->pulse_timer) {
        g->pulse_timer = g_timeout_add(GUI_PULSE_MS, gui_pulse, g);
    }
}

void gui_busy_end(struct gui *g)
{
    if (g->busy && --g->busy == 0) {
        g_source_remove(g->pulse_timer);
        g->pulse_timer = 0;
        gtk_widget_hide(g->progress);
        if (g->info_busy) {
            gtk_widget_hide(g->infobar);
        }
    }
}

/* ---- running lodge ------------------------------------------------------------------------ */

struct lodge_op {
    struct gui *g;
    void (*done)(struct gui *g, bool ok, gpointer opaque);
    gpointer opaque;
    GDestroyNotify free_opaque;
};

static void gui_lodge_finished(GObject *src, GAsyncResult *res, gpointer opaque)
{
    struct lodge_op *op = opaque;
    GSubprocess *p = G_SUBPROCESS(src);
    char *err = NULL;
    GError *gerr = NULL;
    bool ok = g_subprocess_communicate_utf8_finish(p, res, NULL, &err, &gerr) &&
              g_subprocess_get_if_exited(p) && g_subprocess_get_exit_status(p) == 0;
    gui_busy_end(op->g);
    if (!ok) {
        gui_message(op->g, GTK_MESSAGE_ERROR, "%s",
                    gerr ? gerr->message : (err && err[0] ? err : "lodge failed"));
    }
    if (op->done) {
        op->done(op->g, ok, op->opaque);
    }
    if (op->free_opaque) {
        op->free_opaque(op->opaque);
    }
    g_clear_error(&gerr);
    g_free(err);
    g_object_unref(p);
    g_free(op);
}

void gui_run_lodge_async(struct gui *g, const char *what, const char *const *args,
                         void (*done)(struct gui *g, bool ok, gpointer opaque), gpointer opaque,
                         GDestroyNotify free_opaque)
{
    GPtrArray *av = g_ptr_array_new();
    g_ptr_array_add(av, g->lodge);
    for (int i = 0; args[i]; i++) {
        g_ptr_array_add(av, (gpointer)args[i]);
    }
    g_ptr_array_add(av, NULL);
    GError *gerr = NULL;
    GSubprocess *p = g_subprocess_newv(
        (const char *const *)av->pdata,
        G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &gerr);
    g_ptr_array_free(av, TRUE);
    if (!p) {
        gui_message(g, GTK_MESSAGE_ERROR, "%s: %s", g->lodge, gerr->message);
        g_error_free(gerr);
        if (done) {
            done(g, false, opaque);
        }
        if (free_opaque) {
            free_opaque(opaque);
        }
        return;
    }
    struct lodge_op *op = g_new0(struct lodge_op, 1);
    *op = (struct lodge_op){g, done, opaque, free_opaque};
    gui_busy_begin(g, what);
    g_subprocess_communicate_utf8_async(p, NULL, NULL, gui_lodge_finished, op);
}

/* ---- library list ------------------------------------------------------------------------- */

static bool gui_find_row(struct gui *g, const char *name, GtkTreeIter *it)
{
    GtkTreeModel *m = GTK_TREE_MODEL(g->store);
    for (gboolean ok = gtk_tree_model_get_iter_first(m, it); ok;
         ok = gtk_tree_model_iter_next(m, it)) {
        char *n = NULL;
        gtk_tree_model_get(m, it, COL_NAME, &n, -1);
        bool same = n && strcmp(n, name) == 0;
        g_free(n);
        if (same) {
            return true;
        }
    }
    return false;
}

char *gui_selected(struct gui *g)
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

void gui_select(struct gui *g, const char *name)
{
    GtkTreeIter it;
    if (!gui_find_row(g, name, &it)) {
        return;
    }
    GtkTreePath *path = gtk_tree_model_get_path(GTK_TREE_MODEL(g->store), &it);
    gtk_notebook_set_current_page(GTK_NOTEBOOK(g->notebook), 0);
    gtk_tree_view_set_cursor(GTK_TREE_VIEW(g->view), path, NULL, FALSE);
    gtk_tree_path_free(path);
    gtk_widget_grab_focus(g->view);
}

/* Rows are updated in place, so the selection and the keyboard cursor survive. */
void gui_refresh(struct gui *g)
{
    char *root = gui_root();
    GDir *d = g_dir_open(root, 0, NULL);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const char *e;
    int total = 0, running = 0;
    while (d && (e = g_dir_read_name(d))) {
        if (!ctl_name_valid(e)) {
            continue;
        }
        char *conf = g_build_filename(root, e, "vm.conf", NULL);
        GKeyFile *kf = g_key_file_new();
        if (g_key_file_load_from_file(kf, conf, G_KEY_FILE_NONE, NULL)) {
            struct gui_display mode;
            char *state = gui_ctl_status(e, &mode);
            char *mem = g_strdup_printf("%" G_GUINT64_FORMAT " MiB",
                                        g_key_file_get_uint64(kf, "hardware", "memory-mib", NULL));
            char *fw = g_key_file_get_string(kf, "boot", "firmware", NULL);
            GtkTreeIter it;
            if (!gui_find_row(g, e, &it)) {
                gtk_list_store_append(g->store, &it);
            }
            gtk_list_store_set(g->store, &it, COL_NAME, e, COL_STATE, state ? state : "stopped",
                               COL_MEM, mem, COL_CPUS,
                               g_key_file_get_integer(kf, "hardware", "cpus", NULL), COL_BOOT,
                               fw ? fw : "bios", -1);
            if (!state) {
                /* Gone: forget its framebuffer (a restart brings a new one). */
                gtk_list_store_set(g->store, &it, COL_THUMB, NULL, -1);
                g_hash_table_remove(g->displays, e);
                gui_console_mark_stopped(g, e);
            } else {
                /* The guest switched display modes (text to graphics, ...): the thumbnail
                 * maps the framebuffer again with the new numbers. */
                struct gui_display *d = g_hash_table_lookup(g->displays, e);
                if (d && !gui_display_same_mode(d, &mode)) {
                    g_hash_table_remove(g->displays, e);
                }
                running++;
            }
            total++;
            g_hash_table_add(seen, g_strdup(e));
            g_free(state);
            g_free(mem);
            g_free(fw);
        }
        g_key_file_free(kf);
        g_free(conf);
    }
    if (d) {
        g_dir_close(d);
    }
    GtkTreeIter it;
    gboolean ok = gtk_tree_model_get_iter_first(GTK_TREE_MODEL(g->store), &it);
    while (ok) {
        char *n = NULL;
        gtk_tree_model_get(GTK_TREE_MODEL(g->store), &it, COL_NAME, &n, -1);
        if (!n || !g_hash_table_contains(seen, n)) {
            g_hash_table_remove(g->displays, n ? n : "");
            ok = gtk_list_store_remove(g->store, &it);
        } else {
            ok = gtk_tree_model_iter_next(GTK_TREE_MODEL(g->store), &it);
        }
        g_free(n);
    }
    /* Something is always selected, so Return and the buttons work from the start. */
    GtkTreeSelection *ts = gtk_tree_view_get_selection(GTK_TREE_VIEW(g->view));
    if (!gtk_tree_selection_get_selected(ts, NULL, NULL) &&
        gtk_tree_model_get_iter_first(GTK_TREE_MODEL(g->store), &it)) {
        GtkTreePath *path = gtk_tree_model_get_path(GTK_TREE_MODEL(g->store), &it);
        gtk_tree_view_set_cursor(GTK_TREE_VIEW(g->view), path, NULL, FALSE);
        gtk_tree_path_free(path);
    }
    char *sub = total ? g_strdup_printf("%d virtual machine%s, %d running", total,
                                        total == 1 ? "" : "s", running)
                      : g_strdup("No virtual machines yet: press Ctrl+N");
    gtk_header_bar_set_subtitle(GTK_HEADER_BAR(g->header), sub);
    g_free(sub);
    g_hash_table_destroy(seen);
    g_free(root);
}

static gboolean gui_refresh_timer(gpointer opaque)
{
    gui_refresh(opaque);
    return G_SOURCE_CONTINUE;
}

static void gui_display_free(gpointer p)
{
    gui_display_detach(p);
    g_free(p);
}

/* Thumbnails of running VMs, from the same shared framebuffer a console tab maps. */
static gboolean gui_thumb_timer(gpointer opaque)
{
    struct gui *g = opaque;
    GtkTreeModel *m = GTK_TREE_MODEL(g->store);
    GtkTreeIter it;
    for (gboolean ok = gtk_tree_model_get_iter_first(m, &it); ok;
         ok = gtk_tree_model_iter_next(m, &it)) {
        char *name = NULL, *state = NULL;
        gtk_tree_model_get(m, &it, COL_NAME, &name, COL_STATE, &state, -1);
        if (name && state && strcmp(state, "stopped") != 0) {
            struct gui_display *d = g_hash_table_lookup(g->displays, name);
            if (d && d->run_id != gui_display_run_id(name)) {
                g_hash_table_remove(g->displays, name); /* restarted: a new framebuffer */
                d = NULL;
            }
            if (!d) {
                /* A VM without a display, or with a mode that does not fit its buffer,
                 * keeps an entry without a mapping, so it is asked once per run and mode,
                 * not every second. */
                char err[256];
                d = g_new0(struct gui_display, 1);
                gui_display_attach(name, d, err, sizeof(err));
                g_hash_table_insert(g->displays, g_strdup(name), d);
            }
            GdkPixbuf *pb = gui_display_thumbnail(d);
            gtk_list_store_set(g->store, &it, COL_THUMB, pb, -1);
            if (pb) {
                g_object_unref(pb);
            }
        }
        g_free(name);
        g_free(state);
    }
    return G_SOURCE_CONTINUE;
}

/* ---- starting a VM ------------------------------------------------------------------------ */

struct start_op {
    struct gui *g;
    char *name;
    guint poll;     /* waits for the control socket */
    gint64 started; /* monotonic, microseconds */
    bool exited;
    int refs; /* the poll and the exit wait */
};

static void start_op_unref(struct start_op *s)
{
    if (--s->refs == 0) {
        g_free(s->name);
        g_free(s);
    }
}

static gboolean start_poll(gpointer opaque)
{
    struct start_op *s = opaque;
    int fd = s->exited ? -1 : gui_ctl_connect(s->name);
    bool late = g_get_monotonic_time() - s->started > GUI_START_TIMEOUT_MS * 1000ll;
    if (fd < 0 && !s->exited && !late) {
        return G_SOURCE_CONTINUE;
    }
    gui_busy_end(s->g);
    if (fd >= 0) {
        close(fd);
        gui_refresh(s->g);
        gui_console_open(s->g, s->name);
    } else if (late) {
        gui_message(s->g, GTK_MESSAGE_ERROR, "%s did not answer on its control socket", s->name);
    }
    s->poll = 0;
    start_op_unref(s);
    return G_SOURCE_REMOVE;
}

static char *gui_log_tail(const char *path)
{
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return g_strdup("no log");
    }
    g_strstrip(text);
    char *nl = strrchr(text, '\n');
    char *last = g_strdup(nl ? nl + 1 : text);
    g_free(text);
    return last;
}

static void start_exited(GObject *src, GAsyncResult *res, gpointer opaque)
{
    struct start_op *s = opaque;
    GSubprocess *p = G_SUBPROCESS(src);
    s->exited = true;
    bool ok = g_subprocess_wait_finish(p, res, NULL) && g_subprocess_get_if_exited(p) &&
              g_subprocess_get_exit_status(p) == 0;
    if (!ok) {
        char *root = gui_root();
        char *log = g_build_filename(root, s->name, "logs", "lodge.log", NULL);
        char *tail = gui_log_tail(log);
        gui_message(s->g, GTK_MESSAGE_ERROR, "%s stopped: %s (see %s)", s->name, tail, log);
        g_free(tail);
        g_free(log);
        g_free(root);
    }
    gui_refresh(s->g);
    g_object_unref(p);
    start_op_unref(s);
}

/* A new session: the VM outlives the manager and a terminal's hangup or Ctrl+C. */
static void gui_child_setsid(gpointer opaque)
{
    setsid();
}

static void gui_start(struct gui *g, const char *name)
{
    char *root = gui_root();
    char *log = g_build_filename(root, name, "logs", "lodge.log", NULL);
    g_free(root);
    GPtrArray *av = g_ptr_array_new();
    g_ptr_array_add(av, g->lodge);
    g_ptr_array_add(av, "start");
    g_ptr_array_add(av, (gpointer)name);
    /* Headless: the screen comes into a console tab. */
    g_ptr_array_add(av, "--display=none");
    for (guint i = 0; i < g->start_opts->len; i++) {
        g_ptr_array_add(av, g_ptr_array_index(g->start_opts, i));
    }
    g_ptr_array_add(av, NULL);
    GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path(l, log);
    g_subprocess_launcher_set_child_setup(l, gui_child_setsid, NULL, NULL);
    GError *gerr = NULL;
    GSubprocess *p = g_subprocess_launcher_spawnv(l, (const char *const *)av->pdata, &gerr);
    g_object_unref(l);
    g_ptr_array_free(av, TRUE);
    if (!p) {
        gui_message(g, GTK_MESSAGE_ERROR, "%s: %s", name, gerr->message);
        g_error_free(gerr);
        g_free(log);
        return;
    }
    g_free(log);
    struct start_op *s = g_new0(struct start_op, 1);
    s->g = g;
    s->name = g_strdup(name);
    s->started = g_get_monotonic_time();
    s->refs = 2;
    char *what = g_strdup_printf("Starting %s…", name);
    gui_busy_begin(g, what);
    g_free(what);
    s->poll = g_timeout_add(GUI_START_POLL_MS, start_poll, s);
    g_subprocess_wait_async(p, NULL, start_exited, s);
}

/* ---- actions ------------------------------------------------------------------------------ */

static void gui_on_new(GtkButton *b, gpointer opaque)
{
    gui_wizard_open(opaque);
}

static void gui_on_start(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    int fd;
    if (!name) {
        gui_message(g, GTK_MESSAGE_INFO, "Select a virtual machine first");
    } else if ((fd = gui_ctl_connect(name)) >= 0) {
        close(fd);
        gui_console_open(g, name); /* running already: show it */
    } else {
        gui_start(g, name);
    }
    g_free(name);
}

static void gui_ctl_action(struct gui *g, const char *request, const char *done)
{
    char *name = gui_selected(g);
    if (!name) {
        gui_message(g, GTK_MESSAGE_INFO, "Select a virtual machine first");
    } else if (!gui_ctl_simple(name, request)) {
        gui_message(g, GTK_MESSAGE_ERROR, "%s is not running", name);
    } else {
        gui_message(g, GTK_MESSAGE_INFO, "%s: %s", name, done);
    }
    g_free(name);
    gui_refresh(g);
}

static void gui_on_pause(GtkButton *b, gpointer opaque)
{
    gui_ctl_action(opaque, "{\"cmd\":\"pause\"}\n", "paused");
}

static void gui_on_resume(GtkButton *b, gpointer opaque)
{
    gui_ctl_action(opaque, "{\"cmd\":\"resume\"}\n", "running");
}

static void gui_on_stop(GtkButton *b, gpointer opaque)
{
    gui_ctl_action(opaque, "{\"cmd\":\"powerdown\"}\n", "power button pressed");
}

static void gui_on_force_off(GtkButton *b, gpointer opaque)
{
    gui_ctl_action(opaque, "{\"cmd\":\"powerdown\",\"force\":true}\n", "powered off");
}

static void gui_on_console(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (name) {
        gui_console_open(g, name);
    }
    g_free(name);
}

static void gui_on_settings(GtkButton *b, gpointer opaque)
{
    struct gui *g = opaque;
    char *name = gui_selected(g);
    if (name) {
        gui_settings_open(g, name);
    } else {
        gui_message(g, GTK_MESSAGE_INFO, "Select a virtual machine first");
    }
    g_free(name);
}

static void gui_deleted(struct gui *g, bool ok, gpointer opaque)
{
    gui_refresh(g);
    if (ok) {
        gui_message(g, GTK_MESSAGE_INFO, "Deleted %s", (const char *)opaque);
    }
}

static void gui_delete_response(GtkDialog *d, gint response, gpointer opaque)
{
    struct gui *g = g_object_get_data(G_OBJECT(d), "lodge-gui");
    const char *name = opaque;
    if (response == GTK_RESPONSE_YES) {
        const char *args[] = {"delete", name, "--yes", NULL};
        char *what = g_strdup_printf("Deleting %s…", name);
        gui_run_lodge_async(g, what, args, gui_deleted, g_strdup(name), g_free);
        g_free(what);
    }
    gtk_widget_destroy(GTK_WIDGET(d));
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
                               GTK_BUTTONS_NONE, "Delete %s with its disks?", name);
    gtk_dialog_add_buttons(GTK_DIALOG(d), "_Cancel", GTK_RESPONSE_CANCEL, "_Delete",
                           GTK_RESPONSE_YES, NULL);
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    char *title = g_strdup_printf("Delete %s?", name);
    gtk_window_set_title(GTK_WINDOW(d), title);
    g_free(title);
    g_object_set_data(G_OBJECT(d), "lodge-gui", g);
    g_signal_connect_data(d, "response", G_CALLBACK(gui_delete_response), name,
                          (GClosureNotify)(void (*)(void))g_free, 0);
    gtk_widget_show(d);
}

/* Return (or a double click) on a VM: start it, or show it when it runs. */
static void gui_row_activated(GtkTreeView *v, GtkTreePath *path, GtkTreeViewColumn *col,
                              gpointer opaque)
{
    gui_on_start(NULL, opaque);
}

static gboolean gui_view_key(GtkWidget *w, GdkEventKey *ev, gpointer opaque)
{
    if (ev->keyval == GDK_KEY_Delete || ev->keyval == GDK_KEY_KP_Delete) {
        gui_on_delete(NULL, opaque);
        return TRUE;
    }
    return FALSE;
}

static gboolean gui_accel_new(GtkAccelGroup *ag, GObject *o, guint key, GdkModifierType mods,
                              gpointer opaque)
{
    gui_wizard_open(opaque);
    return TRUE;
}

static gboolean gui_accel_quit(GtkAccelGroup *ag, GObject *o, guint key, GdkModifierType mods,
                               gpointer opaque)
{
    struct gui *g = opaque;
    gtk_widget_destroy(g->win); /* running VMs keep running */
    return TRUE;
}

static gboolean gui_accel_close_tab(GtkAccelGroup *ag, GObject *o, guint key, GdkModifierType mods,
                                    gpointer opaque)
{
    return gui_console_close_current(opaque);
}

/* The notebook's own Ctrl+PgUp/PgDn bindings never see keys a console tab sends to the
 * guest; as window accelerators they work from every tab. */
static gboolean gui_accel_tab(GtkAccelGroup *ag, GObject *o, guint key, GdkModifierType mods,
                              gpointer opaque)
{
    struct gui *g = opaque;
    GtkNotebook *nb = GTK_NOTEBOOK(g->notebook);
    int n = gtk_notebook_get_n_pages(nb), cur = gtk_notebook_get_current_page(nb);
    int step = key == GDK_KEY_Page_Up || key == GDK_KEY_KP_Page_Up ? -1 : 1;
    gtk_notebook_set_current_page(nb, (cur + step + n) % n);
    GtkWidget *page = gtk_notebook_get_nth_page(nb, gtk_notebook_get_current_page(nb));
    gtk_widget_grab_focus(g_object_get_data(G_OBJECT(page), "lodge-console") ? page : g->view);
    return TRUE;
}

static gboolean gui_accel_settings(GtkAccelGroup *ag, GObject *o, guint key, GdkModifierType mods,
                                   gpointer opaque)
{
    gui_on_settings(NULL, opaque);
    return TRUE;
}

static gboolean gui_accel_shortcuts(GtkAccelGroup *ag, GObject *o, guint key, GdkModifierType mods,
                                    gpointer opaque)
{
    gui_shortcuts_open(opaque);
    return TRUE;
}

static void gui_accel(GtkAccelGroup *ag, guint key, GdkModifierType mods, GCallback cb,
                      struct gui *g)
{
    gtk_accel_group_connect(ag, key, mods, 0, g_cclosure_new(cb, g, NULL));
}

static void gui_info_response(GtkInfoBar *bar, gint response, gpointer opaque)
{
    struct gui *g = opaque;
    if (!g->busy) {
        gtk_widget_hide(GTK_WIDGET(bar));
    }
}

static GtkWidget *gui_button(GtkWidget *bar, const char *label, const char *id, const char *tooltip,
                             GCallback cb, struct gui *g)
{
    GtkWidget *b = gtk_button_new_with_mnemonic(label);
    gtk_widget_set_name(b, id);
    gtk_widget_set_tooltip_text(b, tooltip);
    g_signal_connect(b, "clicked", cb, g);
    gtk_action_bar_pack_start(GTK_ACTION_BAR(bar), b);
    return b;
}

static void gui_build(struct gui *g)
{
    g->win = gtk_window_new(GTK_WINDOW_TOPLEVEL);
    gtk_window_set_title(GTK_WINDOW(g->win), "Lodge");
    gtk_window_set_default_size(GTK_WINDOW(g->win), 900, 600);
    gtk_widget_set_name(g->win, "lodge-manager");
    g_signal_connect(g->win, "destroy", G_CALLBACK(gtk_main_quit), NULL);

    g->header = gtk_header_bar_new();
    gtk_header_bar_set_title(GTK_HEADER_BAR(g->header), "Lodge");
    gtk_header_bar_set_show_close_button(GTK_HEADER_BAR(g->header), TRUE);
    GtkWidget *add = gtk_button_new_from_icon_name("list-add-symbolic", GTK_ICON_SIZE_BUTTON);
    gtk_widget_set_name(add, "new-vm-button");
    gtk_widget_set_tooltip_text(add, "New virtual machine (Ctrl+N)");
    atk_object_set_name(gtk_widget_get_accessible(add), "New virtual machine");
    g_signal_connect(add, "clicked", G_CALLBACK(gui_on_new), g);
    gtk_header_bar_pack_start(GTK_HEADER_BAR(g->header), add);
    /* The primary menu, at the end of the header bar as in GNOME applications. */
    GtkWidget *menu = gtk_menu_new();
    GtkWidget *item = gtk_menu_item_new_with_mnemonic("_Keyboard Shortcuts");
    g_signal_connect_swapped(item, "activate", G_CALLBACK(gui_shortcuts_open), g);
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), item);
    item = gtk_menu_item_new_with_mnemonic("_Quit");
    g_signal_connect_swapped(item, "activate", G_CALLBACK(gtk_widget_destroy), g->win);
    gtk_menu_shell_append(GTK_MENU_SHELL(menu), item);
    gtk_widget_show_all(menu);
    GtkWidget *mb = gtk_menu_button_new();
    gtk_button_set_image(GTK_BUTTON(mb),
                         gtk_image_new_from_icon_name("open-menu-symbolic", GTK_ICON_SIZE_BUTTON));
    gtk_menu_button_set_popup(GTK_MENU_BUTTON(mb), menu);
    gtk_widget_set_name(mb, "main-menu");
    atk_object_set_name(gtk_widget_get_accessible(mb), "Main menu");
    gtk_header_bar_pack_end(GTK_HEADER_BAR(g->header), mb);
    gtk_window_set_titlebar(GTK_WINDOW(g->win), g->header);

    GtkAccelGroup *ag = gtk_accel_group_new();
    gui_accel(ag, GDK_KEY_n, GDK_CONTROL_MASK, G_CALLBACK(gui_accel_new), g);
    gui_accel(ag, GDK_KEY_q, GDK_CONTROL_MASK, G_CALLBACK(gui_accel_quit), g);
    gui_accel(ag, GDK_KEY_w, GDK_CONTROL_MASK, G_CALLBACK(gui_accel_close_tab), g);
    gui_accel(ag, GDK_KEY_question, GDK_CONTROL_MASK, G_CALLBACK(gui_accel_shortcuts), g);
    gui_accel(ag, GDK_KEY_question, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
              G_CALLBACK(gui_accel_shortcuts), g);
    gui_accel(ag, GDK_KEY_Page_Up, GDK_CONTROL_MASK, G_CALLBACK(gui_accel_tab), g);
    gui_accel(ag, GDK_KEY_Page_Down, GDK_CONTROL_MASK, G_CALLBACK(gui_accel_tab), g);
    gui_accel(ag, GDK_KEY_Return, GDK_MOD1_MASK, G_CALLBACK(gui_accel_settings), g);
    gtk_window_add_accel_group(GTK_WINDOW(g->win), ag);
    g_object_unref(ag);

    GtkWidget *vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_container_add(GTK_CONTAINER(g->win), vbox);
    g->infobar = gtk_info_bar_new();
    gtk_widget_set_name(g->infobar, "info");
    gtk_info_bar_set_show_close_button(GTK_INFO_BAR(g->infobar), TRUE);
    g_signal_connect(g->infobar, "response", G_CALLBACK(gui_info_response), g);
    GtkWidget *ibox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    g->info_label = gtk_label_new(NULL);
    gtk_label_set_line_wrap(GTK_LABEL(g->info_label), TRUE);
    gtk_label_set_selectable(GTK_LABEL(g->info_label), TRUE);
    gtk_widget_set_halign(g->info_label, GTK_ALIGN_START);
    g->progress = gtk_progress_bar_new();
    gtk_widget_set_name(g->progress, "progress");
    gtk_box_pack_start(GTK_BOX(ibox), g->info_label, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(ibox), g->progress, FALSE, FALSE, 0);
    gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(g->infobar))), ibox);
    gtk_box_pack_start(GTK_BOX(vbox), g->infobar, FALSE, FALSE, 0);
    gtk_widget_show_all(g->infobar);
    gtk_widget_set_no_show_all(g->infobar, TRUE);
    gtk_widget_hide(g->infobar);

    g->notebook = gtk_notebook_new();
    gtk_notebook_set_scrollable(GTK_NOTEBOOK(g->notebook), TRUE);
    gtk_box_pack_start(GTK_BOX(vbox), g->notebook, TRUE, TRUE, 0);

    GtkWidget *lib = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    g->store = gtk_list_store_new(NCOLS, GDK_TYPE_PIXBUF, G_TYPE_STRING, G_TYPE_STRING,
                                  G_TYPE_STRING, G_TYPE_INT, G_TYPE_STRING);
    gtk_tree_sortable_set_sort_column_id(GTK_TREE_SORTABLE(g->store), COL_NAME, GTK_SORT_ASCENDING);
    g->view = gtk_tree_view_new_with_model(GTK_TREE_MODEL(g->store));
    gtk_widget_set_name(g->view, "library");
    atk_object_set_name(gtk_widget_get_accessible(g->view), "Virtual machines");
    GtkCellRenderer *pr = gtk_cell_renderer_pixbuf_new();
    gtk_cell_renderer_set_fixed_size(pr, GUI_THUMB_WIDTH + 8, GUI_THUMB_HEIGHT + 8);
    gtk_tree_view_append_column(
        GTK_TREE_VIEW(g->view),
        gtk_tree_view_column_new_with_attributes("Screen", pr, "pixbuf", COL_THUMB, NULL));
    static const char *titles[NCOLS] = {NULL, "Name", "State", "Memory", "CPUs", "Boot"};
    for (int i = COL_NAME; i < NCOLS; i++) {
        gtk_tree_view_append_column(GTK_TREE_VIEW(g->view),
                                    gtk_tree_view_column_new_with_attributes(
                                        titles[i], gtk_cell_renderer_text_new(), "text", i, NULL));
    }
    gtk_tree_view_set_search_column(GTK_TREE_VIEW(g->view), COL_NAME);
    g_signal_connect(g->view, "row-activated", G_CALLBACK(gui_row_activated), g);
    g_signal_connect(g->view, "key-press-event", G_CALLBACK(gui_view_key), g);
    GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
    gtk_container_add(GTK_CONTAINER(scroll), g->view);
    gtk_box_pack_start(GTK_BOX(lib), scroll, TRUE, TRUE, 0);

    GtkWidget *bar = gtk_action_bar_new();
    gui_button(bar, "_Start", "start", "Start, or show the console when running (Return)",
               G_CALLBACK(gui_on_start), g);
    gui_button(bar, "_Pause", "pause", "Pause the guest", G_CALLBACK(gui_on_pause), g);
    gui_button(bar, "_Resume", "resume", "Resume a paused guest", G_CALLBACK(gui_on_resume), g);
    gui_button(bar, "S_top", "stop", "Press the power button", G_CALLBACK(gui_on_stop), g);
    gui_button(bar, "_Force off", "force-off", "Power off at once", G_CALLBACK(gui_on_force_off),
               g);
    gui_button(bar, "_Console", "console", "Show the console", G_CALLBACK(gui_on_console), g);
    gui_button(bar, "Se_ttings…", "settings", "Memory, CPUs, boot (Alt+Return)",
               G_CALLBACK(gui_on_settings), g);
    gui_button(bar, "_Delete", "delete", "Delete with its disks (Delete)",
               G_CALLBACK(gui_on_delete), g);
    gtk_box_pack_start(GTK_BOX(lib), bar, FALSE, FALSE, 0);
    gtk_notebook_append_page(GTK_NOTEBOOK(g->notebook), lib, gtk_label_new("Library"));

    gui_refresh(g);
    g_timeout_add(GUI_REFRESH_MS, gui_refresh_timer, g);
    g_timeout_add(GUI_THUMB_MS, gui_thumb_timer, g);
    gtk_widget_show_all(g->win);
    gtk_widget_grab_focus(g->view);
}

static void gui_usage(FILE *f)
{
    fprintf(f, "usage: lodge gui [--console NAME] [--start-option OPT]...\n"
               "\n"
               "The VM manager. --console opens a running VM's console at start;\n"
               "--start-option adds a lodge run option to every start (e.g. --accel=soft).\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            gui_usage(stdout); /* without needing a display */
            return 0;
        }
    }
    if (!gtk_init_check(&argc, &argv)) {
        fprintf(stderr, "lodge: gui: cannot open a display (is $DISPLAY set?)\n");
        return 1;
    }
    struct gui g = {0};
    g.start_opts = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *consoles = g_ptr_array_new();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--console") == 0 || strcmp(a, "--start-option") == 0) && i + 1 < argc) {
            if (a[2] == 'c') {
                g_ptr_array_add(consoles, argv[++i]);
            } else {
                g_ptr_array_add(g.start_opts, g_strdup(argv[++i]));
            }
        } else if (g_str_has_prefix(a, "--start-option=")) {
            g_ptr_array_add(g.start_opts, g_strdup(a + strlen("--start-option=")));
        } else if (g_str_has_prefix(a, "--console=")) {
            g_ptr_array_add(consoles, (gpointer)(a + strlen("--console=")));
        } else {
            fprintf(stderr, "lodge: gui: %s: unknown option\n", a);
            gui_usage(stderr);
            return 2;
        }
    }
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
    g.displays = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, gui_display_free);
    gui_build(&g);
    for (guint i = 0; i < consoles->len; i++) {
        gui_console_open(&g, g_ptr_array_index(consoles, i));
    }
    g_ptr_array_free(consoles, TRUE);
    gtk_main();
    g_hash_table_destroy(g.displays);
    g_ptr_array_free(g.start_opts, TRUE);
    g_free(g.lodge);
    return 0;
}
