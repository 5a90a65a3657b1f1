/* lodge-gui: the manager's side of a running VM. A control-socket client, read-only
 * mappings of the framebuffer memfd from display-attach, console tabs that draw it and
 * send keys, and the small pictures the library shows. The VM never waits for us: a
 * console tab only reads shared memory and writes key events. */
#include "ui/gtk_manager.h"

#include "core/ctl.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define GUI_FRAME_MS 50 /* console tabs redraw at 20 Hz */

struct console_tab {
    struct gui *g;
    GtkWidget *page; /* the notebook page (the drawing area) */
    GtkWidget *label;
    char *name;
    struct gui_display d;
    guint timer;
    int input_fd;    /* control connection for key events, or -1 */
    guint input_src; /* drains its replies */
};

/* ---- control socket (client side) ------------------------------------------------------ */

int gui_ctl_connect(const char *name)
{
    char path[256];
    if (ctl_socket_path(name, false, path, sizeof(path)) < 0) {
        return -EINVAL;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

JsonParser *gui_ctl_call(const char *name, const char *request, int *fd_out)
{
    int fd = gui_ctl_connect(name);
    if (fd < 0) {
        return NULL;
    }
    JsonParser *p = NULL;
    GString *buf = g_string_new(NULL);
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
        goto out;
    }
    while (buf->len < CTL_MAX_LINE) {
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

bool gui_ctl_simple(const char *name, const char *request)
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

char *gui_ctl_state(const char *name)
{
    JsonParser *p = gui_ctl_call(name, "{\"cmd\":\"status\"}\n", NULL);
    if (!p) {
        return NULL;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    char *state = NULL;
    if (json_object_get_boolean_member_with_default(o, "ok", FALSE)) {
        JsonNode *r = json_object_get_member(o, "return");
        if (r && JSON_NODE_HOLDS_OBJECT(r)) {
            state = g_strdup(json_object_get_string_member_with_default(json_node_get_object(r),
                                                                        "state", "running"));
        }
    }
    g_object_unref(p);
    return state ? state : g_strdup("running");
}

/* ---- framebuffer mappings ---------------------------------------------------------------- */

uint64_t gui_display_run_id(const char *name)
{
    char path[256];
    struct stat st;
    if (ctl_socket_path(name, false, path, sizeof(path)) < 0 || stat(path, &st) < 0) {
        return 0;
    }
    return (uint64_t)st.st_ino;
}

int gui_display_attach(const char *name, struct gui_display *d, char *err, size_t errlen)
{
    *d = (struct gui_display){0};
    d->run_id = gui_display_run_id(name);
    int fd = -1;
    JsonParser *p = gui_ctl_call(name, "{\"cmd\":\"display-attach\"}\n", &fd);
    JsonObject *o = p ? json_node_get_object(json_parser_get_root(p)) : NULL;
    if (!o || !json_object_get_boolean_member_with_default(o, "ok", FALSE) || fd < 0) {
        snprintf(err, errlen, "%s: %s", name,
                 o ? json_object_get_string_member_with_default(o, "error", "no display")
                   : "not running");
        if (p) {
            g_object_unref(p);
        }
        if (fd >= 0) {
            close(fd);
        }
        return o ? -ENODEV : -ECONNREFUSED;
    }
    JsonNode *rn = json_object_get_member(o, "return");
    JsonObject *r = rn && JSON_NODE_HOLDS_OBJECT(rn) ? json_node_get_object(rn) : NULL;
    gint64 w = r ? json_object_get_int_member_with_default(r, "width", 0) : 0;
    gint64 h = r ? json_object_get_int_member_with_default(r, "height", 0) : 0;
    gint64 stride = r ? json_object_get_int_member_with_default(r, "stride", 0) : 0;
    gint64 size = r ? json_object_get_int_member_with_default(r, "size", 0) : 0;
    g_object_unref(p);
    /* The VM's numbers decide how much we read: check them against the memfd itself, so a
     * confused VM process cannot make us touch pages past its end (SIGBUS). */
    struct stat st;
    int rc = -EINVAL;
    if (w > 0 && h > 0 && w <= 16384 && h <= 16384 && stride >= w * 4 && stride % 4 == 0 &&
        stride * h <= size && fstat(fd, &st) == 0 && st.st_size >= size) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            d->fb = m;
            d->size = (size_t)size;
            d->width = (int)w;
            d->height = (int)h;
            d->stride = (int)stride;
            rc = 0;
        } else {
            rc = -errno;
        }
    }
    close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "%s: the display mode does not fit its buffer", name);
    }
    return rc;
}

void gui_display_detach(struct gui_display *d)
{
    if (d->fb) {
        munmap(d->fb, d->size);
    }
    d->fb = NULL;
    d->size = 0;
}

/* XRGB8888 little-endian is cairo's RGB24: the mapping is a cairo source as it is. */
static cairo_surface_t *gui_display_surface(const struct gui_display *d)
{
    return cairo_image_surface_create_for_data(d->fb, CAIRO_FORMAT_RGB24, d->width, d->height,
                                               d->stride);
}

GdkPixbuf *gui_display_thumbnail(const struct gui_display *d)
{
    if (!d->fb) {
        return NULL;
    }
    double sc = MIN((double)GUI_THUMB_WIDTH / d->width, (double)GUI_THUMB_HEIGHT / d->height);
    int tw = MAX(1, (int)(d->width * sc)), th = MAX(1, (int)(d->height * sc));
    cairo_surface_t *dst = cairo_image_surface_create(CAIRO_FORMAT_RGB24, tw, th);
    cairo_t *cr = cairo_create(dst);
    cairo_scale(cr, sc, sc);
    cairo_surface_t *src = gui_display_surface(d);
    cairo_set_source_surface(cr, src, 0, 0);
    /* Downscaling text by 8x: GOOD averages, so a console of text stays visible. */
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_destroy(cr);
    cairo_surface_destroy(src);
    GdkPixbuf *pb = gdk_pixbuf_get_from_surface(dst, 0, 0, tw, th);
    cairo_surface_destroy(dst);
    return pb;
}

/* ---- console tabs ------------------------------------------------------------------------ */

static gboolean console_draw(GtkWidget *w, cairo_t *cr, gpointer opaque)
{
    struct console_tab *t = opaque;
    int aw = gtk_widget_get_allocated_width(w), ah = gtk_widget_get_allocated_height(w);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_paint(cr);
    if (!t->d.fb) {
        return TRUE;
    }
    /* Scaled with the aspect ratio kept, black bars around. */
    cairo_surface_t *s = gui_display_surface(&t->d);
    double sc = MIN((double)aw / t->d.width, (double)ah / t->d.height);
    cairo_translate(cr, (aw - t->d.width * sc) / 2, (ah - t->d.height * sc) / 2);
    cairo_scale(cr, sc, sc);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_paint(cr);
    cairo_surface_destroy(s);
    return TRUE;
}

static gboolean console_tick(gpointer opaque)
{
    struct console_tab *t = opaque;
    gtk_widget_queue_draw(t->page);
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

/* Hardware key codes (evdev + 8 on X11 and Wayland) keep the guest's own layout. The
 * window's accelerators (Ctrl+Q, Ctrl+W, ...) run before this and stay the manager's. */
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
    if (send(t->input_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        return FALSE;
    }
    return TRUE;
}

static gboolean console_click(GtkWidget *w, GdkEventButton *ev, gpointer opaque)
{
    gtk_widget_grab_focus(w);
    return TRUE;
}

static void console_stop_io(struct console_tab *t)
{
    if (t->timer) {
        g_source_remove(t->timer);
        t->timer = 0;
    }
    if (t->input_src) {
        g_source_remove(t->input_src);
        t->input_src = 0;
    }
    if (t->input_fd >= 0) {
        close(t->input_fd);
        t->input_fd = -1;
    }
}

static void console_destroyed(GtkWidget *w, gpointer opaque)
{
    struct console_tab *t = opaque;
    console_stop_io(t);
    gui_display_detach(&t->d);
    g_free(t->name);
    g_free(t);
}

static void console_close_clicked(GtkButton *b, gpointer opaque)
{
    struct console_tab *t = opaque;
    gtk_widget_destroy(t->page); /* the VM keeps running */
}

static struct console_tab *console_find(struct gui *g, const char *name, int *page_out)
{
    GtkNotebook *nb = GTK_NOTEBOOK(g->notebook);
    for (int i = 0; i < gtk_notebook_get_n_pages(nb); i++) {
        GtkWidget *w = gtk_notebook_get_nth_page(nb, i);
        struct console_tab *t = g_object_get_data(G_OBJECT(w), "lodge-console");
        if (t && strcmp(t->name, name) == 0) {
            if (page_out) {
                *page_out = i;
            }
            return t;
        }
    }
    return NULL;
}

void gui_console_open(struct gui *g, const char *name)
{
    int page;
    struct console_tab *old = console_find(g, name, &page);
    if (old && old->timer) {
        gtk_notebook_set_current_page(GTK_NOTEBOOK(g->notebook), page);
        gtk_widget_grab_focus(old->page);
        return;
    }
    if (old) {
        gtk_widget_destroy(old->page); /* a stopped VM's tab: start over */
    }
    struct console_tab *t = g_new0(struct console_tab, 1);
    char err[256];
    if (gui_display_attach(name, &t->d, err, sizeof(err)) < 0) {
        gui_message(g, GTK_MESSAGE_ERROR, "%s", err);
        g_free(t);
        return;
    }
    t->g = g;
    t->name = g_strdup(name);
    t->page = gtk_drawing_area_new();
    char *wname = g_strdup_printf("console-%s", name);
    gtk_widget_set_name(t->page, wname);
    g_free(wname);
    g_object_set_data(G_OBJECT(t->page), "lodge-console", t);
    char *desc = g_strdup_printf("Screen of %s", name);
    atk_object_set_name(gtk_widget_get_accessible(t->page), desc);
    g_free(desc);
    gtk_widget_set_size_request(t->page, 320, 240);
    g_signal_connect(t->page, "draw", G_CALLBACK(console_draw), t);
    g_signal_connect(t->page, "destroy", G_CALLBACK(console_destroyed), t);
    t->timer = g_timeout_add(GUI_FRAME_MS, console_tick, t);
    t->input_fd = gui_ctl_connect(name);
    if (t->input_fd >= 0) {
        t->input_src =
            g_unix_fd_add(t->input_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, console_input_drain, t);
    }
    gtk_widget_set_can_focus(t->page, TRUE);
    gtk_widget_add_events(t->page,
                          GDK_KEY_PRESS_MASK | GDK_KEY_RELEASE_MASK | GDK_BUTTON_PRESS_MASK);
    g_signal_connect(t->page, "key-press-event", G_CALLBACK(console_key), t);
    g_signal_connect(t->page, "key-release-event", G_CALLBACK(console_key), t);
    g_signal_connect(t->page, "button-press-event", G_CALLBACK(console_click), t);

    /* Tab label: the name and a close button (Ctrl+W does the same). */
    GtkWidget *tab = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
    t->label = gtk_label_new(name);
    GtkWidget *close = gtk_button_new_from_icon_name("window-close-symbolic", GTK_ICON_SIZE_MENU);
    gtk_button_set_relief(GTK_BUTTON(close), GTK_RELIEF_NONE);
    gtk_widget_set_focus_on_click(close, FALSE);
    gtk_widget_set_tooltip_text(close, "Close console (Ctrl+W); the VM keeps running");
    atk_object_set_name(gtk_widget_get_accessible(close), "Close console");
    g_signal_connect(close, "clicked", G_CALLBACK(console_close_clicked), t);
    gtk_box_pack_start(GTK_BOX(tab), t->label, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(tab), close, FALSE, FALSE, 0);
    gtk_widget_show_all(tab);

    page = gtk_notebook_append_page(GTK_NOTEBOOK(g->notebook), t->page, tab);
    gtk_notebook_set_tab_reorderable(GTK_NOTEBOOK(g->notebook), t->page, TRUE);
    gtk_widget_show_all(t->page);
    gtk_notebook_set_current_page(GTK_NOTEBOOK(g->notebook), page);
    gtk_widget_grab_focus(t->page);
}

bool gui_console_close_current(struct gui *g)
{
    GtkNotebook *nb = GTK_NOTEBOOK(g->notebook);
    GtkWidget *w = gtk_notebook_get_nth_page(nb, gtk_notebook_get_current_page(nb));
    if (!w || !g_object_get_data(G_OBJECT(w), "lodge-console")) {
        return false;
    }
    gtk_widget_destroy(w);
    return true;
}

void gui_console_mark_stopped(struct gui *g, const char *name)
{
    struct console_tab *t = console_find(g, name, NULL);
    if (t && t->timer) {
        console_stop_io(t);
        char *text = g_strdup_printf("%s (stopped)", name);
        gtk_label_set_text(GTK_LABEL(t->label), text);
        g_free(text);
    }
}
