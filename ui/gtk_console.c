/* lodge-gui: the manager's side of a running VM. A control-socket client, read-only
 * mappings of the framebuffer memfd from display-attach, console tabs that draw it and
 * send keys, and the small pictures the library shows. The VM never waits for us: a
 * console tab only reads shared memory and writes key events. */
#include "ui/gtk_manager.h"

#include "ui/gtk_geometry.h"

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

#define GUI_FRAME_MS 50     /* console tabs redraw at 20 Hz */
#define GUI_STATUS_TICKS 5  /* ask for the display mode every 5 frames (250 ms) */
#define GUI_MOTION_US 16000 /* pointer motion: at most one abs event per 16 ms (~60/s) */
/* The bars around a scaled screen: not a VGA palette colour, so where a black text screen
 * ends stays visible (and tests find the drawn screen between the bars). */
#define GUI_LETTERBOX 0x101010

struct console_tab {
    struct gui *g;
    GtkWidget *page; /* the notebook page (the drawing area) */
    GtkWidget *label;
    char *name;
    struct gui_display d;
    guint timer;
    int input_fd;    /* control connection for key, pointer and status requests, or -1 */
    guint input_src; /* reads its replies */
    GString *inbuf;  /* a partial reply line */
    guint ticks;     /* frames since the last status request */
    bool status_pending;
    struct gui_display failed; /* a mode whose attach failed: not retried until it changes */
    bool no_tablet;            /* the VM refused an abs event: no tablet, stop sending */
    int abs_x, abs_y;          /* the pointer in tablet coordinates (0..GUI_ABS_MAX) */
    unsigned buttons;          /* bit 0 left, 1 right, 2 middle, as the input command */
    bool motion_pending;       /* a motion not yet sent (rate limit) */
    gint64 motion_sent;        /* monotonic time of the last abs event, microseconds */
    guint motion_timer;        /* sends the pending motion */
    double scroll_acc;         /* smooth scrolling, in wheel steps */
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

/* A mode object (status "display", display-attach "return") into m's numbers; all 0 when
 * absent or not an object. */
static void gui_mode_from_node(JsonNode *n, struct gui_display *m)
{
    *m = (struct gui_display){0};
    if (!n || !JSON_NODE_HOLDS_OBJECT(n)) {
        return;
    }
    JsonObject *r = json_node_get_object(n);
    gint64 w = json_object_get_int_member_with_default(r, "width", 0);
    gint64 h = json_object_get_int_member_with_default(r, "height", 0);
    gint64 stride = json_object_get_int_member_with_default(r, "stride", 0);
    gint64 size = json_object_get_int_member_with_default(r, "size", 0);
    /* Out-of-range numbers only have to compare unequal; attach checks them for real. */
    m->width = (int)CLAMP(w, -1, G_MAXINT);
    m->height = (int)CLAMP(h, -1, G_MAXINT);
    m->stride = (int)CLAMP(stride, -1, G_MAXINT);
    m->size = size > 0 ? (size_t)size : 0;
}

bool gui_display_same_mode(const struct gui_display *a, const struct gui_display *b)
{
    return a->width == b->width && a->height == b->height && a->stride == b->stride &&
           a->size == b->size;
}

/* The "return" of a status reply: state (caller frees, NULL when not ok) and mode. */
static char *gui_status_from_reply(JsonObject *o, struct gui_display *mode)
{
    *mode = (struct gui_display){0};
    if (!json_object_get_boolean_member_with_default(o, "ok", FALSE)) {
        return NULL;
    }
    JsonNode *r = json_object_get_member(o, "return");
    if (!r || !JSON_NODE_HOLDS_OBJECT(r)) {
        return g_strdup("running");
    }
    JsonObject *ro = json_node_get_object(r);
    gui_mode_from_node(json_object_get_member(ro, "display"), mode);
    return g_strdup(json_object_get_string_member_with_default(ro, "state", "running"));
}

char *gui_ctl_status(const char *name, struct gui_display *mode)
{
    *mode = (struct gui_display){0};
    JsonParser *p = gui_ctl_call(name, "{\"cmd\":\"status\"}\n", NULL);
    if (!p) {
        return NULL;
    }
    char *state = gui_status_from_reply(json_node_get_object(json_parser_get_root(p)), mode);
    g_object_unref(p);
    return state ? state : g_strdup("running");
}

char *gui_ctl_state(const char *name)
{
    struct gui_display mode;
    return gui_ctl_status(name, &mode);
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
    /* Remembered even when the mapping fails, so callers can tell a new mode from it. */
    d->width = (int)CLAMP(w, -1, G_MAXINT);
    d->height = (int)CLAMP(h, -1, G_MAXINT);
    d->stride = (int)CLAMP(stride, -1, G_MAXINT);
    d->size = size > 0 ? (size_t)size : 0;
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

static bool console_fit(struct console_tab *t, struct gui_fit *f)
{
    return t->d.fb && gui_fit_compute(gtk_widget_get_allocated_width(t->page),
                                      gtk_widget_get_allocated_height(t->page), t->d.width,
                                      t->d.height, f) == 0;
}

static gboolean console_draw(GtkWidget *w, cairo_t *cr, gpointer opaque)
{
    struct console_tab *t = opaque;
    struct gui_fit f;
    cairo_set_source_rgb(cr, ((GUI_LETTERBOX >> 16) & 0xff) / 255.0,
                         ((GUI_LETTERBOX >> 8) & 0xff) / 255.0, (GUI_LETTERBOX & 0xff) / 255.0);
    cairo_paint(cr);
    if (!console_fit(t, &f)) {
        return TRUE;
    }
    /* Scaled with the aspect ratio kept, bars around. */
    cairo_surface_t *s = gui_display_surface(&t->d);
    cairo_translate(cr, f.x, f.y);
    cairo_scale(cr, f.scale, f.scale);
    cairo_rectangle(cr, 0, 0, t->d.width, t->d.height);
    cairo_clip(cr);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_paint(cr);
    cairo_surface_destroy(s);
    return TRUE;
}

/* Requests on the tab's connection never block the window: a full socket drops them (the
 * next status poll or pointer event says it again). */
static bool console_send(struct console_tab *t, const char *line, int n)
{
    return t->input_fd >= 0 && n > 0 &&
           send(t->input_fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n;
}

/* The screen's mode, for people and tests: the accessible description and the tooltip. */
static void console_describe(struct console_tab *t)
{
    char *text =
        t->d.fb ? g_strdup_printf("%dx%d", t->d.width, t->d.height) : g_strdup("no display");
    atk_object_set_description(gtk_widget_get_accessible(t->page), text);
    char *tip = g_strdup_printf("%s: %s", t->name, text);
    gtk_widget_set_tooltip_text(t->label, tip);
    g_free(tip);
    g_free(text);
}

/* The guest changed its display mode (text mode to a VBE or bochs-drm mode, ...): map the
 * framebuffer again with the new numbers, checked against the memfd as at the start. */
static void console_follow_mode(struct console_tab *t, const struct gui_display *mode)
{
    if (gui_display_same_mode(&t->d, mode) || gui_display_same_mode(&t->failed, mode)) {
        return;
    }
    struct gui_display nd;
    char err[256];
    int rc = gui_display_attach(t->name, &nd, err, sizeof(err));
    if (rc == -ECONNREFUSED) {
        return; /* gone: the library marks the tab stopped */
    }
    gui_display_detach(&t->d);
    t->d = nd;
    /* A mapping that failed is remembered by its numbers, so it is asked for once. */
    t->failed = nd.fb ? (struct gui_display){0} : *mode;
    console_describe(t);
    gtk_widget_queue_draw(t->page);
}

static void console_reply(struct console_tab *t, const char *line, size_t len)
{
    JsonParser *p = json_parser_new();
    if (!json_parser_load_from_data(p, line, (gssize)len, NULL) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
        g_object_unref(p);
        return;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    const char *id = json_object_get_string_member_with_default(o, "id", "");
    bool ok = json_object_get_boolean_member_with_default(o, "ok", FALSE);
    if (strcmp(id, "status") == 0) {
        t->status_pending = false;
        struct gui_display mode;
        char *state = gui_status_from_reply(o, &mode);
        if (state) {
            console_follow_mode(t, &mode);
        }
        g_free(state);
    } else if (strcmp(id, "abs") == 0 && !ok &&
               strstr(json_object_get_string_member_with_default(o, "error", ""), "tablet")) {
        t->no_tablet = true; /* no virtio tablet in this VM: the pointer stays ours */
    }
    g_object_unref(p);
}

static gboolean console_tick(gpointer opaque)
{
    struct console_tab *t = opaque;
    gtk_widget_queue_draw(t->page);
    /* The mode in the status reply tells when the guest switched modes. */
    if (++t->ticks >= GUI_STATUS_TICKS && !t->status_pending) {
        static const char req[] = "{\"cmd\":\"status\",\"id\":\"status\"}\n";
        t->ticks = 0;
        t->status_pending = console_send(t, req, (int)strlen(req));
    }
    return G_SOURCE_CONTINUE;
}

/* Replies and events on the tab's connection; read them so the VM never waits. */
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
    if (n > 0) {
        g_string_append_len(t->inbuf, buf, n);
        char *nl;
        while ((nl = memchr(t->inbuf->str, '\n', t->inbuf->len))) {
            console_reply(t, t->inbuf->str, (size_t)(nl - t->inbuf->str));
            g_string_erase(t->inbuf, 0, nl - t->inbuf->str + 1);
        }
        if (t->inbuf->len > CTL_MAX_LINE) {
            g_string_truncate(t->inbuf, 0); /* not the VM's protocol: skip it */
        }
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
    return console_send(t, line, n);
}

/* ---- pointer: the virtio tablet's absolute coordinates --------------------------------- */

static void console_send_abs(struct console_tab *t, int wheel)
{
    if (t->no_tablet || t->input_fd < 0) {
        return;
    }
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "{\"cmd\":\"input\",\"id\":\"abs\",\"type\":\"abs\",\"x\":%d,\"y\":%d,"
                     "\"buttons\":%u,\"wheel\":%d}\n",
                     t->abs_x, t->abs_y, t->buttons, wheel);
    if (console_send(t, line, n)) {
        t->motion_pending = false;
        t->motion_sent = g_get_monotonic_time();
    }
}

static gboolean console_motion_timer(gpointer opaque)
{
    struct console_tab *t = opaque;
    t->motion_timer = 0;
    if (t->motion_pending) {
        console_send_abs(t, 0);
    }
    return G_SOURCE_REMOVE;
}

/* Where the pointer is over the guest screen; false when no screen is drawn. */
static bool console_pointer(struct console_tab *t, double x, double y, bool *inside)
{
    struct gui_fit f;
    if (!console_fit(t, &f)) {
        return false;
    }
    bool in = gui_fit_to_abs(&f, x, y, &t->abs_x, &t->abs_y);
    if (inside) {
        *inside = in;
    }
    return true;
}

/* Motion is coalesced: the latest position goes out at most every GUI_MOTION_US. */
static gboolean console_motion(GtkWidget *w, GdkEventMotion *ev, gpointer opaque)
{
    struct console_tab *t = opaque;
    if (t->no_tablet || !console_pointer(t, ev->x, ev->y, NULL)) {
        return FALSE;
    }
    t->motion_pending = true;
    gint64 wait = t->motion_sent + GUI_MOTION_US - g_get_monotonic_time();
    if (wait <= 0) {
        console_send_abs(t, 0);
    } else if (!t->motion_timer) {
        t->motion_timer = g_timeout_add(MAX(1, (guint)(wait / 1000)), console_motion_timer, t);
    }
    return TRUE;
}

static unsigned console_button_bit(guint button)
{
    switch (button) {
    case 1:
        return 1u; /* left */
    case 3:
        return 2u; /* right */
    case 2:
        return 4u; /* middle */
    default:
        return 0;
    }
}

static gboolean console_button(GtkWidget *w, GdkEventButton *ev, gpointer opaque)
{
    struct console_tab *t = opaque;
    if (ev->type == GDK_BUTTON_PRESS) {
        gtk_widget_grab_focus(w);
    }
    if (ev->type != GDK_BUTTON_PRESS && ev->type != GDK_BUTTON_RELEASE) {
        return TRUE; /* double and triple clicks: the guest counts its own */
    }
    bool inside = false;
    if (t->no_tablet || !console_pointer(t, ev->x, ev->y, &inside)) {
        return TRUE;
    }
    unsigned bit = console_button_bit(ev->button);
    if (ev->type == GDK_BUTTON_PRESS) {
        if (!inside) {
            return TRUE; /* a click on the bars is not the guest's */
        }
        t->buttons |= bit;
    } else {
        t->buttons &= ~bit; /* always: a button must not stay down in the guest */
    }
    if (bit) {
        console_send_abs(t, 0);
    }
    return TRUE;
}

static gboolean console_scroll(GtkWidget *w, GdkEventScroll *ev, gpointer opaque)
{
    struct console_tab *t = opaque;
    if (t->no_tablet || !console_pointer(t, ev->x, ev->y, NULL)) {
        return FALSE;
    }
    int steps = 0;
    if (ev->direction == GDK_SCROLL_UP) {
        steps = 1; /* the input command's wheel > 0 scrolls up */
    } else if (ev->direction == GDK_SCROLL_DOWN) {
        steps = -1;
    } else if (ev->direction == GDK_SCROLL_SMOOTH) {
        t->scroll_acc -= ev->delta_y;
        steps = (int)CLAMP(t->scroll_acc, -127, 127);
        t->scroll_acc -= steps;
    }
    if (steps) {
        console_send_abs(t, steps);
    }
    return TRUE;
}

static void console_stop_io(struct console_tab *t)
{
    if (t->timer) {
        g_source_remove(t->timer);
        t->timer = 0;
    }
    if (t->motion_timer) {
        g_source_remove(t->motion_timer);
        t->motion_timer = 0;
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
    g_string_free(t->inbuf, TRUE);
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
    t->inbuf = g_string_new(NULL);
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
    gtk_widget_add_events(t->page, GDK_KEY_PRESS_MASK | GDK_KEY_RELEASE_MASK |
                                       GDK_BUTTON_PRESS_MASK | GDK_BUTTON_RELEASE_MASK |
                                       GDK_POINTER_MOTION_MASK | GDK_SCROLL_MASK);
    g_signal_connect(t->page, "key-press-event", G_CALLBACK(console_key), t);
    g_signal_connect(t->page, "key-release-event", G_CALLBACK(console_key), t);
    g_signal_connect(t->page, "button-press-event", G_CALLBACK(console_button), t);
    g_signal_connect(t->page, "button-release-event", G_CALLBACK(console_button), t);
    g_signal_connect(t->page, "motion-notify-event", G_CALLBACK(console_motion), t);
    g_signal_connect(t->page, "scroll-event", G_CALLBACK(console_scroll), t);

    /* Tab label: the name and a close button (Ctrl+W does the same). */
    GtkWidget *tab = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
    t->label = gtk_label_new(name);
    GtkWidget *close = gtk_button_new_from_icon_name("window-close-symbolic", GTK_ICON_SIZE_MENU);
    gtk_button_set_relief(GTK_BUTTON(close), GTK_RELIEF_NONE);
    gtk_widget_set_focus_on_click(close, FALSE);
    gtk_widget_set_tooltip_text(close, "Close console (Ctrl+W); the VM keeps running");
    atk_object_set_name(gtk_widget_get_accessible(close), "Close console");
    g_signal_connect(close, "clicked", G_CALLBACK(console_close_clicked), t);
    console_describe(t);
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
