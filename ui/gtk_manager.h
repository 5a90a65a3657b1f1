/* lodge-gui internals, shared by its three files: gtk_manager.c (window, library, actions),
 * gtk_console.c (control-socket client, framebuffer mappings, console tabs, thumbnails)
 * and gtk_dialogs.c (new-VM assistant, settings editor). Nothing outside lodge-gui uses
 * this header. */
#ifndef LODGE_UI_GTK_MANAGER_H
#define LODGE_UI_GTK_MANAGER_H

#include <gtk/gtk.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUI_THUMB_WIDTH 128 /* library thumbnails, pixels (4:3 guests fill 128x96) */
#define GUI_THUMB_HEIGHT 96

struct gui {
    GtkWidget *win;
    GtkWidget *header;
    GtkWidget *notebook;
    GtkListStore *store;
    GtkWidget *view;
    GtkWidget *infobar; /* messages and progress, never a blocking dialog */
    GtkWidget *info_label;
    GtkWidget *progress;
    guint busy;            /* long operations under way (the progress bar pulses) */
    guint pulse_timer;     /* drives the pulse while busy */
    guint info_timer;      /* hides an informational message */
    bool info_busy;        /* the info bar shows progress, not a message */
    GHashTable *displays;  /* VM name -> struct gui_display, for thumbnails */
    char *lodge;           /* the lodge program next to us */
    GPtrArray *start_opts; /* extra lodge run options for every start (--start-option) */
};

/* A read-only mapping of a running VM's framebuffer (display-attach). The mode numbers
 * are the VM's answer even when the mapping failed (fb NULL), so a new mode is noticed. */
struct gui_display {
    uint8_t *fb; /* NULL: the VM has no display, or its mode did not fit the memfd */
    size_t size;
    int width, height, stride;
    uint64_t run_id; /* which run of the VM: its control socket's inode */
};

/* gtk_manager.c */
char *gui_root(void);
char *gui_selected(struct gui *g);
void gui_select(struct gui *g, const char *name);
void gui_refresh(struct gui *g);
/* A non-modal message in the window's info bar (GTK_MESSAGE_ERROR, _INFO, ...). */
void gui_message(struct gui *g, GtkMessageType type, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Long operations: show text with a pulsing progress bar until the matching end. */
void gui_busy_begin(struct gui *g, const char *text);
void gui_busy_end(struct gui *g);
/* Run lodge with args (NULL-terminated after the program name) without blocking; the
 * info bar shows progress, then the error if it fails. done (may be NULL) runs with
 * ok when it finished. */
void gui_run_lodge_async(struct gui *g, const char *what, const char *const *args,
                         void (*done)(struct gui *g, bool ok, gpointer opaque), gpointer opaque,
                         GDestroyNotify free_opaque);

/* gtk_console.c */
int gui_ctl_connect(const char *name);
/* Send one request line, return the reply's parser (events skipped) or NULL; *fd_out gets
 * a passed fd when asked (initialise it to -1). */
JsonParser *gui_ctl_call(const char *name, const char *request, int *fd_out);
bool gui_ctl_simple(const char *name, const char *request);
/* "running", "paused", ... from status, or NULL when the VM does not answer. Caller frees. */
char *gui_ctl_state(const char *name);
/* Like gui_ctl_state; mode gets the display's width, height, stride and size (fb NULL; all
 * 0 without a display), to compare with a mapping by gui_display_same_mode. */
char *gui_ctl_status(const char *name, struct gui_display *mode);
bool gui_display_same_mode(const struct gui_display *a, const struct gui_display *b);
int gui_display_attach(const char *name, struct gui_display *d, char *err, size_t errlen);
void gui_display_detach(struct gui_display *d);
/* The current run of a VM (its control socket's inode), 0 when it is not running: a
 * mapping from an earlier run shows a dead framebuffer. */
uint64_t gui_display_run_id(const char *name);
/* The screen scaled into at most GUI_THUMB_WIDTH x GUI_THUMB_HEIGHT, or NULL. */
GdkPixbuf *gui_display_thumbnail(const struct gui_display *d);
/* Open (or switch to) the console tab of a running VM. */
void gui_console_open(struct gui *g, const char *name);
/* Close the current console tab; false when the current page is not a console. */
bool gui_console_close_current(struct gui *g);
/* Mark the console tab of name as stopped (its VM is gone). */
void gui_console_mark_stopped(struct gui *g, const char *name);

/* gtk_dialogs.c */
void gui_wizard_open(struct gui *g);
void gui_settings_open(struct gui *g, const char *name);
void gui_shortcuts_open(struct gui *g);

#endif
