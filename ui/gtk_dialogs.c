/* lodge-gui: the new-VM assistant and the settings editor. Neither blocks the main loop
 * (they answer through the "response" signal, so console tabs and thumbnails keep
 * updating); the assistant closes at once and the creation runs in the background with
 * its progress in the window. Every field has a mnemonic (Alt+letter), so the keyboard
 * alone, or xdotool in the tests, reaches each one. */
#include "ui/gtk_manager.h"

#include "core/ctl.h"

#include <string.h>

struct wizard {
    struct gui *g;
    GtkWidget *dialog;
    GtkWidget *name, *mem, *cpus, *disk;
    GtkWidget *fw_bios, *fw_uefi, *fw_kernel;
    GtkWidget *iso, *kernel, *initrd, *append;
    GtkWidget *kernel_rows[6]; /* labels, entries and buttons only direct boot uses */
    GtkWidget *error;          /* inline problems, e.g. a bad name */
};

static GtkGrid *gui_form_grid(void)
{
    GtkGrid *grid = GTK_GRID(gtk_grid_new());
    gtk_grid_set_row_spacing(grid, 6);
    gtk_grid_set_column_spacing(grid, 12);
    gtk_container_set_border_width(GTK_CONTAINER(grid), 12);
    return grid;
}

/* A labelled row; the label's mnemonic focuses w; id is the widget name tests can find. */
static GtkWidget *gui_form_row(GtkGrid *grid, int row, const char *label, const char *id,
                               GtkWidget *w, GtkWidget **label_out)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(label);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), w);
    gtk_widget_set_halign(l, GTK_ALIGN_END);
    gtk_grid_attach(grid, l, 0, row, 1, 1);
    gtk_widget_set_hexpand(w, TRUE);
    gtk_widget_set_name(w, id);
    gtk_grid_attach(grid, w, 1, row, 1, 1);
    if (GTK_IS_ENTRY(w)) {
        gtk_entry_set_activates_default(GTK_ENTRY(w), TRUE);
    }
    if (label_out) {
        *label_out = l;
    }
    return w;
}

static void gui_browse_response(GtkNativeDialog *fc, gint response, gpointer opaque)
{
    GtkEntry *entry = opaque;
    if (response == GTK_RESPONSE_ACCEPT) {
        char *f = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
        if (f) {
            gtk_entry_set_text(entry, f);
            g_free(f);
        }
    }
    g_object_unref(entry);
    g_object_unref(fc);
}

static void gui_browse_clicked(GtkButton *b, gpointer opaque)
{
    GtkEntry *entry = opaque;
    GtkWidget *top = gtk_widget_get_toplevel(GTK_WIDGET(b));
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(
        "Choose a file", GTK_WINDOW(top), GTK_FILE_CHOOSER_ACTION_OPEN, "_Open", "_Cancel");
    const char *cur = gtk_entry_get_text(entry);
    if (cur[0]) {
        gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(fc), cur);
    }
    g_signal_connect(fc, "response", G_CALLBACK(gui_browse_response), g_object_ref(entry));
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

/* A path entry with a Browse button: typing a path works as well as choosing one. */
static GtkWidget *gui_file_row(GtkGrid *grid, int row, const char *label, const char *id,
                               GtkWidget **entry_out, GtkWidget **label_out)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *entry = gtk_entry_new();
    gtk_entry_set_activates_default(GTK_ENTRY(entry), TRUE);
    gtk_widget_set_hexpand(entry, TRUE);
    gtk_widget_set_name(entry, id);
    GtkWidget *browse = gtk_button_new_with_label("Browse…");
    g_signal_connect(browse, "clicked", G_CALLBACK(gui_browse_clicked), entry);
    gtk_box_pack_start(GTK_BOX(box), entry, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(box), browse, FALSE, FALSE, 0);
    GtkWidget *l = gtk_label_new_with_mnemonic(label);
    gtk_label_set_mnemonic_widget(GTK_LABEL(l), entry);
    gtk_widget_set_halign(l, GTK_ALIGN_END);
    gtk_grid_attach(grid, l, 0, row, 1, 1);
    gtk_grid_attach(grid, box, 1, row, 1, 1);
    *entry_out = entry;
    if (label_out) {
        *label_out = l;
    }
    return box;
}

/* An absolute path for a typed one, or NULL (empty); *bad when it names no file. */
static char *gui_entry_file(GtkWidget *entry, bool *bad)
{
    const char *t = gtk_entry_get_text(GTK_ENTRY(entry));
    if (!t[0]) {
        return NULL;
    }
    char *path = g_canonicalize_filename(t, NULL);
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        *bad = true;
    }
    return path;
}

static void gui_inline_error(GtkWidget *label, GtkWidget *focus, const char *text)
{
    gtk_label_set_text(GTK_LABEL(label), text);
    gtk_widget_show(label);
    if (focus) {
        gtk_widget_grab_focus(focus);
    }
}

/* ---- new-VM assistant --------------------------------------------------------------------- */

static void wizard_fw_toggled(GtkToggleButton *b, gpointer opaque)
{
    struct wizard *w = opaque;
    bool direct = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w->fw_kernel));
    for (size_t i = 0; i < G_N_ELEMENTS(w->kernel_rows); i++) {
        gtk_widget_set_sensitive(w->kernel_rows[i], direct);
    }
}

static void wizard_created(struct gui *g, bool ok, gpointer opaque)
{
    if (ok) {
        gui_refresh(g);
        gui_select(g, opaque);
        gui_message(g, GTK_MESSAGE_INFO, "Created %s", (const char *)opaque);
    }
}

static void wizard_response(GtkDialog *d, gint response, gpointer opaque)
{
    struct wizard *w = opaque;
    if (response != GTK_RESPONSE_OK) {
        gtk_widget_destroy(w->dialog);
        return;
    }
    /* Typed numbers count even when the field still has the focus. */
    gtk_spin_button_update(GTK_SPIN_BUTTON(w->mem));
    gtk_spin_button_update(GTK_SPIN_BUTTON(w->cpus));
    gtk_spin_button_update(GTK_SPIN_BUTTON(w->disk));
    const char *name = gtk_entry_get_text(GTK_ENTRY(w->name));
    if (!ctl_name_valid(name)) {
        gui_inline_error(w->error, w->name,
                         "The name may use letters, digits, '.', '_' and '-' (up to 64), and "
                         "must not start with '.' or '-'.");
        return;
    }
    const char *fw = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w->fw_kernel)) ? "kernel"
                     : gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w->fw_uefi)) ? "uefi"
                                                                                   : "bios";
    bool direct = strcmp(fw, "kernel") == 0;
    bool bad_iso = false, bad_kernel = false, bad_initrd = false;
    char *iso = gui_entry_file(w->iso, &bad_iso);
    char *kernel = direct ? gui_entry_file(w->kernel, &bad_kernel) : NULL;
    char *initrd = direct ? gui_entry_file(w->initrd, &bad_initrd) : NULL;
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    if (bad_iso) {
        gui_inline_error(w->error, w->iso, "The installer ISO is not a file.");
    } else if (bad_kernel || (direct && !kernel)) {
        gui_inline_error(w->error, w->kernel, "Direct boot needs a Linux kernel file.");
    } else if (bad_initrd) {
        gui_inline_error(w->error, w->initrd, "The initrd is not a file.");
    } else {
        g_ptr_array_add(a, g_strdup("create"));
        g_ptr_array_add(a, g_strdup(name));
        g_ptr_array_add(a, g_strdup_printf("--mem=%dM", gtk_spin_button_get_value_as_int(
                                                            GTK_SPIN_BUTTON(w->mem))));
        g_ptr_array_add(a, g_strdup_printf("--cpus=%d", gtk_spin_button_get_value_as_int(
                                                            GTK_SPIN_BUTTON(w->cpus))));
        g_ptr_array_add(a, g_strdup_printf("--disk-size=%dG", gtk_spin_button_get_value_as_int(
                                                                  GTK_SPIN_BUTTON(w->disk))));
        g_ptr_array_add(a, g_strdup_printf("--firmware=%s", fw));
        if (iso) {
            g_ptr_array_add(a, g_strdup_printf("--iso=%s", iso));
        }
        if (kernel) {
            g_ptr_array_add(a, g_strdup_printf("--kernel=%s", kernel));
        }
        if (initrd) {
            g_ptr_array_add(a, g_strdup_printf("--initrd=%s", initrd));
        }
        const char *app = gtk_entry_get_text(GTK_ENTRY(w->append));
        if (direct && app[0]) {
            g_ptr_array_add(a, g_strdup_printf("--append=%s", app));
        }
        g_ptr_array_add(a, NULL);
        char *what = g_strdup_printf("Creating %s…", name);
        /* The disk is made in the background: the assistant is done, the window shows
         * the progress and any error, and stays usable meanwhile. */
        gui_run_lodge_async(w->g, what, (const char *const *)a->pdata, wizard_created,
                            g_strdup(name), g_free);
        g_free(what);
        gtk_widget_destroy(w->dialog);
    }
    g_ptr_array_free(a, TRUE);
    g_free(iso);
    g_free(kernel);
    g_free(initrd);
}

static void wizard_destroyed(GtkWidget *d, gpointer opaque)
{
    g_free(opaque);
}

void gui_wizard_open(struct gui *g)
{
    struct wizard *w = g_new0(struct wizard, 1);
    w->g = g;
    w->dialog =
        gtk_dialog_new_with_buttons("New virtual machine", GTK_WINDOW(g->win),
                                    GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "_Cancel",
                                    GTK_RESPONSE_CANCEL, "C_reate", GTK_RESPONSE_OK, NULL);
    gtk_widget_set_name(w->dialog, "new-vm");
    gtk_dialog_set_default_response(GTK_DIALOG(w->dialog), GTK_RESPONSE_OK);
    GtkGrid *grid = gui_form_grid();
    int row = 0;
    w->name = gui_form_row(grid, row++, "_Name", "new-vm-name", gtk_entry_new(), NULL);
    gtk_entry_set_placeholder_text(GTK_ENTRY(w->name), "e.g. debian");
    w->mem = gui_form_row(grid, row++, "_Memory (MiB)", "new-vm-memory",
                          gtk_spin_button_new_with_range(32, 65536, 64), NULL);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(w->mem), 1024);
    w->cpus = gui_form_row(grid, row++, "C_PUs", "new-vm-cpus",
                           gtk_spin_button_new_with_range(1, 64, 1), NULL);
    w->disk = gui_form_row(grid, row++, "_Disk size (GiB, 0 = none)", "new-vm-disk",
                           gtk_spin_button_new_with_range(0, 65536, 1), NULL);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(w->disk), 20);

    GtkWidget *fwbox = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    w->fw_bios = gtk_radio_button_new_with_mnemonic(NULL, "_BIOS");
    w->fw_uefi =
        gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(w->fw_bios), "_UEFI");
    w->fw_kernel = gtk_radio_button_new_with_mnemonic_from_widget(GTK_RADIO_BUTTON(w->fw_bios),
                                                                  "_Linux kernel");
    gtk_widget_set_name(w->fw_bios, "new-vm-firmware-bios");
    gtk_widget_set_name(w->fw_uefi, "new-vm-firmware-uefi");
    gtk_widget_set_name(w->fw_kernel, "new-vm-firmware-kernel");
    gtk_box_pack_start(GTK_BOX(fwbox), w->fw_bios, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(fwbox), w->fw_uefi, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(fwbox), w->fw_kernel, FALSE, FALSE, 0);
    GtkWidget *fwl = gtk_label_new("Firmware");
    gtk_widget_set_halign(fwl, GTK_ALIGN_END);
    gtk_grid_attach(grid, fwl, 0, row, 1, 1);
    gtk_grid_attach(grid, fwbox, 1, row++, 1, 1);

    gui_file_row(grid, row++, "_Installer ISO", "new-vm-iso", &w->iso, NULL);
    gtk_entry_set_placeholder_text(GTK_ENTRY(w->iso), "optional: an .iso to boot first");
    w->kernel_rows[1] =
        gui_file_row(grid, row++, "_Kernel", "new-vm-kernel", &w->kernel, &w->kernel_rows[0]);
    w->kernel_rows[3] =
        gui_file_row(grid, row++, "Ini_trd", "new-vm-initrd", &w->initrd, &w->kernel_rows[2]);
    w->kernel_rows[5] = gui_form_row(grid, row++, "C_ommand line", "new-vm-append", gtk_entry_new(),
                                     &w->kernel_rows[4]);
    w->append = w->kernel_rows[5];
    gtk_entry_set_placeholder_text(GTK_ENTRY(w->append), "e.g. console=ttyS0");

    w->error = gtk_label_new(NULL);
    gtk_label_set_line_wrap(GTK_LABEL(w->error), TRUE);
    gtk_widget_set_name(w->error, "new-vm-error");
    gtk_style_context_add_class(gtk_widget_get_style_context(w->error), "error");
    gtk_grid_attach(grid, w->error, 0, row++, 2, 1);

    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(w->dialog))),
                      GTK_WIDGET(grid));
    g_signal_connect(w->fw_kernel, "toggled", G_CALLBACK(wizard_fw_toggled), w);
    g_signal_connect(w->dialog, "response", G_CALLBACK(wizard_response), w);
    g_signal_connect(w->dialog, "destroy", G_CALLBACK(wizard_destroyed), w);
    gtk_widget_show_all(w->dialog);
    gtk_widget_hide(w->error);
    wizard_fw_toggled(NULL, w);
    gtk_widget_grab_focus(w->name);
}

/* ---- settings editor ---------------------------------------------------------------------- */

struct settings {
    struct gui *g;
    GtkWidget *dialog;
    char *name;
    char *conf; /* vm.conf path */
    GtkWidget *mem, *cpus, *iso, *append;
    GtkWidget *error;
};

static void settings_response(GtkDialog *d, gint response, gpointer opaque)
{
    struct settings *s = opaque;
    if (response != GTK_RESPONSE_OK) {
        gtk_widget_destroy(s->dialog);
        return;
    }
    gtk_spin_button_update(GTK_SPIN_BUTTON(s->mem));
    gtk_spin_button_update(GTK_SPIN_BUTTON(s->cpus));
    bool bad = false;
    char *iso = gui_entry_file(s->iso, &bad);
    if (bad) {
        gui_inline_error(s->error, s->iso, "The installer ISO is not a file.");
        g_free(iso);
        return;
    }
    /* Edit the file as it is now (keeping comments and keys we do not know), not as it
     * was when the dialog opened. */
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    if (g_key_file_load_from_file(kf, s->conf, G_KEY_FILE_KEEP_COMMENTS, &gerr)) {
        g_key_file_set_uint64(kf, "hardware", "memory-mib",
                              (guint64)gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->mem)));
        g_key_file_set_integer(kf, "hardware", "cpus",
                               gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(s->cpus)));
        if (iso) {
            g_key_file_set_string(kf, "boot", "iso", iso);
        } else {
            g_key_file_remove_key(kf, "boot", "iso", NULL);
        }
        const char *app = gtk_entry_get_text(GTK_ENTRY(s->append));
        if (app[0]) {
            g_key_file_set_string(kf, "boot", "append", app);
        } else {
            g_key_file_remove_key(kf, "boot", "append", NULL);
        }
        g_key_file_save_to_file(kf, s->conf, &gerr);
    }
    g_key_file_free(kf);
    g_free(iso);
    if (gerr) {
        gui_inline_error(s->error, NULL, gerr->message);
        g_error_free(gerr);
        return;
    }
    char *state = gui_ctl_state(s->name);
    gui_message(s->g, GTK_MESSAGE_INFO, "Saved the settings of %s%s", s->name,
                state ? " (they apply at its next start)" : "");
    g_free(state);
    gui_refresh(s->g);
    gtk_widget_destroy(s->dialog);
}

static void settings_destroyed(GtkWidget *d, gpointer opaque)
{
    struct settings *s = opaque;
    g_free(s->name);
    g_free(s->conf);
    g_free(s);
}

void gui_settings_open(struct gui *g, const char *name)
{
    char *root = gui_root();
    char *conf = g_build_filename(root, name, "vm.conf", NULL);
    g_free(root);
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    if (!g_key_file_load_from_file(kf, conf, G_KEY_FILE_NONE, &gerr)) {
        gui_message(g, GTK_MESSAGE_ERROR, "%s: %s", conf, gerr->message);
        g_error_free(gerr);
        g_key_file_free(kf);
        g_free(conf);
        return;
    }
    struct settings *s = g_new0(struct settings, 1);
    s->g = g;
    s->name = g_strdup(name);
    s->conf = conf;
    char *title = g_strdup_printf("Settings of %s", name);
    s->dialog = gtk_dialog_new_with_buttons(
        title, GTK_WINDOW(g->win), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "_Cancel",
        GTK_RESPONSE_CANCEL, "_Save", GTK_RESPONSE_OK, NULL);
    g_free(title);
    gtk_widget_set_name(s->dialog, "settings");
    gtk_dialog_set_default_response(GTK_DIALOG(s->dialog), GTK_RESPONSE_OK);
    GtkGrid *grid = gui_form_grid();
    int row = 0;
    s->mem = gui_form_row(grid, row++, "_Memory (MiB)", "settings-memory",
                          gtk_spin_button_new_with_range(32, 65536, 64), NULL);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->mem),
                              (double)g_key_file_get_uint64(kf, "hardware", "memory-mib", NULL));
    s->cpus = gui_form_row(grid, row++, "C_PUs", "settings-cpus",
                           gtk_spin_button_new_with_range(1, 64, 1), NULL);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(s->cpus),
                              g_key_file_get_integer(kf, "hardware", "cpus", NULL));
    gui_file_row(grid, row++, "_Installer ISO", "settings-iso", &s->iso, NULL);
    char *cur = g_key_file_get_string(kf, "boot", "iso", NULL);
    gtk_entry_set_text(GTK_ENTRY(s->iso), cur ? cur : "");
    g_free(cur);
    GtkWidget *applabel;
    s->append =
        gui_form_row(grid, row++, "C_ommand line", "settings-append", gtk_entry_new(), &applabel);
    cur = g_key_file_get_string(kf, "boot", "append", NULL);
    gtk_entry_set_text(GTK_ENTRY(s->append), cur ? cur : "");
    g_free(cur);
    char *fw = g_key_file_get_string(kf, "boot", "firmware", NULL);
    bool direct = fw && strcmp(fw, "kernel") == 0;
    g_free(fw);
    gtk_widget_set_sensitive(s->append, direct);
    gtk_widget_set_sensitive(applabel, direct);
    g_key_file_free(kf);
    s->error = gtk_label_new(NULL);
    gtk_label_set_line_wrap(GTK_LABEL(s->error), TRUE);
    gtk_style_context_add_class(gtk_widget_get_style_context(s->error), "error");
    gtk_grid_attach(grid, s->error, 0, row++, 2, 1);
    gtk_container_add(GTK_CONTAINER(gtk_dialog_get_content_area(GTK_DIALOG(s->dialog))),
                      GTK_WIDGET(grid));
    g_signal_connect(s->dialog, "response", G_CALLBACK(settings_response), s);
    g_signal_connect(s->dialog, "destroy", G_CALLBACK(settings_destroyed), s);
    gtk_widget_show_all(s->dialog);
    gtk_widget_hide(s->error);
    gtk_widget_grab_focus(s->mem);
}

/* ---- keyboard shortcuts (Ctrl+?) ---------------------------------------------------------- */

static void gui_shortcuts_group(GtkWidget *section, const char *title, const char *const (*rows)[2],
                                size_t n)
{
    GtkWidget *group =
        g_object_new(GTK_TYPE_SHORTCUTS_GROUP, "title", title, "visible", TRUE, NULL);
    for (size_t i = 0; i < n; i++) {
        GtkWidget *s = g_object_new(GTK_TYPE_SHORTCUTS_SHORTCUT, "accelerator", rows[i][0], "title",
                                    rows[i][1], "visible", TRUE, NULL);
        gtk_container_add(GTK_CONTAINER(group), s);
    }
    gtk_container_add(GTK_CONTAINER(section), group);
}

void gui_shortcuts_open(struct gui *g)
{
    static const char *const general[][2] = {
        {"<Primary>n", "New virtual machine"},
        {"<Primary>q", "Quit (running VMs keep running)"},
        {"<Primary>question", "Keyboard shortcuts"},
        {"<Primary>Page_Up", "Previous tab"},
        {"<Primary>Page_Down", "Next tab"},
    };
    static const char *const library[][2] = {
        {"Return", "Start, or show the console of a running VM"},
        {"<Alt>Return", "Settings"},
        {"Delete", "Delete (asks first)"},
    };
    static const char *const console[][2] = {
        {"<Primary>w", "Close the console tab (the VM keeps running)"},
    };
    GtkWidget *win = g_object_new(GTK_TYPE_SHORTCUTS_WINDOW, "modal", TRUE, "transient-for", g->win,
                                  "title", "Keyboard shortcuts", NULL);
    GtkWidget *section =
        g_object_new(GTK_TYPE_SHORTCUTS_SECTION, "section-name", "main", "visible", TRUE, NULL);
    gui_shortcuts_group(section, "General", general, G_N_ELEMENTS(general));
    gui_shortcuts_group(section, "Library", library, G_N_ELEMENTS(library));
    gui_shortcuts_group(section, "Console", console, G_N_ELEMENTS(console));
    gtk_container_add(GTK_CONTAINER(win), section);
    gtk_widget_show(win);
}
