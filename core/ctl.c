/* Control socket server: JSON lines on a UNIX socket, served on its own thread. */
#include "core/ctl.h"

#include "core/log.h"
#include "core/machine.h"
#include "ui/keymap.h"
#include "ui/surface.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_TAG "ctl"
#define CTL_MAX_CLIENTS 16

/* ---- protocol ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum ctl_cmd cmd;
} ctl_cmds[] = {
    {"status", CTL_CMD_STATUS},
    {"pause", CTL_CMD_PAUSE},
    {"resume", CTL_CMD_RESUME},
    {"powerdown", CTL_CMD_POWERDOWN},
    {"reset", CTL_CMD_RESET},
    {"quit", CTL_CMD_QUIT},
    {"screendump", CTL_CMD_SCREENDUMP},
    {"send-keys", CTL_CMD_SEND_KEYS},
    {"display-attach", CTL_CMD_DISPLAY_ATTACH},
    {"input", CTL_CMD_INPUT},
};

void ctl_request_clear(struct ctl_request *req)
{
    g_free(req->id);
    g_free(req->file);
    memset(req, 0, sizeof(*req));
}

static int ctl_bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ctl_bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A member that must be a string when present: NULL when absent, -EINVAL via *bad. */
static const char *ctl_get_string(JsonObject *o, const char *name, bool *bad)
{
    JsonNode *n = json_object_get_member(o, name);
    if (!n) {
        return NULL;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
        *bad = true;
        return NULL;
    }
    return json_node_get_string(n);
}

static int ctl_get_bool(JsonObject *o, const char *name, bool *out)
{
    JsonNode *n = json_object_get_member(o, name);
    if (!n) {
        return 0;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
        return -EINVAL;
    }
    *out = json_node_get_boolean(n);
    return 1;
}

/* An integer member in [lo, hi]: 0 when absent (*out untouched), 1 when set, -EINVAL
 * when it is not an integer or out of range. */
static int ctl_get_int(JsonObject *o, const char *name, long lo, long hi, int *out)
{
    JsonNode *n = json_object_get_member(o, name);
    if (!n) {
        return 0;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
        return -EINVAL;
    }
    gint64 v = json_node_get_int(n);
    if (v < lo || v > hi) {
        return -EINVAL;
    }
    *out = (int)v;
    return 1;
}

/* The pointer forms of "input": mouse (relative, PS/2) and abs (tablet). */
static int ctl_parse_pointer(JsonObject *o, struct ctl_request *req, char *err, size_t errlen)
{
    int buttons = 0;
    if (ctl_get_int(o, "buttons", 0, 7, &buttons) < 0) {
        return ctl_bad(err, errlen, "buttons: needs 0..7 (bit 0 left, 1 right, 2 middle)");
    }
    req->buttons = (unsigned)buttons;
    if (ctl_get_int(o, "wheel", -CTL_WHEEL_MAX, CTL_WHEEL_MAX, &req->wheel) < 0) {
        return ctl_bad(err, errlen, "wheel: needs an integer in -%d..%d", CTL_WHEEL_MAX,
                       CTL_WHEEL_MAX);
    }
    if (req->input == CTL_INPUT_MOUSE) {
        if (ctl_get_int(o, "dx", -CTL_MOUSE_MAX, CTL_MOUSE_MAX, &req->dx) <= 0 ||
            ctl_get_int(o, "dy", -CTL_MOUSE_MAX, CTL_MOUSE_MAX, &req->dy) <= 0) {
            return ctl_bad(err, errlen, "dx, dy: need integers in -%d..%d", CTL_MOUSE_MAX,
                           CTL_MOUSE_MAX);
        }
        return 0;
    }
    if (ctl_get_int(o, "x", 0, MACHINE_ABS_MAX, &req->x) <= 0 ||
        ctl_get_int(o, "y", 0, MACHINE_ABS_MAX, &req->y) <= 0) {
        return ctl_bad(err, errlen, "x, y: need integers in 0..%d", MACHINE_ABS_MAX);
    }
    return 0;
}

static int ctl_parse_keys(const char *spec, struct ctl_request *req, char *err, size_t errlen)
{
    gchar **parts = g_strsplit(spec, "-", -1);
    int rc = 0;
    for (int i = 0; parts[i]; i++) {
        if (req->nkeys == CTL_MAX_KEYS) {
            rc = ctl_bad(err, errlen, "keys: more than %d keys", CTL_MAX_KEYS);
            break;
        }
        int usage = keymap_name_to_usb(parts[i]);
        if (usage < 0) {
            rc = ctl_bad(err, errlen, "keys: unknown key '%.32s'", parts[i]);
            break;
        }
        req->keys[req->nkeys++] = usage;
    }
    g_strfreev(parts);
    if (rc == 0 && req->nkeys == 0) {
        rc = ctl_bad(err, errlen, "keys: empty");
    }
    return rc;
}

static int ctl_parse_args(JsonObject *o, struct ctl_request *req, char *err, size_t errlen)
{
    bool bad = false;
    const char *s;
    switch (req->cmd) {
    case CTL_CMD_POWERDOWN:
        if (ctl_get_bool(o, "force", &req->force) < 0) {
            return ctl_bad(err, errlen, "force: must be true or false");
        }
        return 0;
    case CTL_CMD_SCREENDUMP:
        s = ctl_get_string(o, "file", &bad);
        if (bad || !s || s[0] != '/') {
            return ctl_bad(err, errlen, "file: needs an absolute path");
        }
        req->file = g_strdup(s);
        return 0;
    case CTL_CMD_SEND_KEYS:
        s = ctl_get_string(o, "keys", &bad);
        if (bad || !s) {
            return ctl_bad(err, errlen, "keys: needs a string such as \"ctrl-alt-delete\"");
        }
        return ctl_parse_keys(s, req, err, errlen);
    case CTL_CMD_INPUT:
        s = ctl_get_string(o, "type", &bad);
        if (!bad && s && (strcmp(s, "mouse") == 0 || strcmp(s, "abs") == 0)) {
            req->input = s[0] == 'm' ? CTL_INPUT_MOUSE : CTL_INPUT_ABS;
            return ctl_parse_pointer(o, req, err, errlen);
        }
        if (bad || !s || strcmp(s, "key") != 0) {
            return ctl_bad(err, errlen, "type: needs \"key\", \"mouse\" or \"abs\"");
        }
        s = ctl_get_string(o, "key", &bad);
        JsonNode *ev = json_object_get_member(o, "evdev");
        if (ev && !s && !bad) {
            /* Hardware key codes from a GUI: layout-independent, like the SDL console. */
            if (!JSON_NODE_HOLDS_VALUE(ev) || json_node_get_value_type(ev) != G_TYPE_INT64 ||
                json_node_get_int(ev) < 0 || json_node_get_int(ev) > 0xffff ||
                (req->key = keymap_evdev_to_usb((uint32_t)json_node_get_int(ev))) < 0) {
                return ctl_bad(err, errlen, "evdev: not a known key code");
            }
        } else if (bad || !s) {
            return ctl_bad(err, errlen, "key: needs a key name (or \"evdev\": CODE)");
        } else if ((req->key = keymap_name_to_usb(s)) < 0) {
            return ctl_bad(err, errlen, "key: unknown key '%.32s'", s);
        }
        if (ctl_get_bool(o, "down", &req->down) <= 0) {
            return ctl_bad(err, errlen, "down: needs true or false");
        }
        return 0;
    default:
        return 0;
    }
}

int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen)
{
    memset(req, 0, sizeof(*req));
    if (len > CTL_MAX_LINE) {
        return ctl_bad(err, errlen, "request longer than %d bytes", CTL_MAX_LINE);
    }
    if (memchr(line, '\0', len)) {
        return ctl_bad(err, errlen, "request contains a NUL byte");
    }
    JsonParser *p = json_parser_new();
    GError *gerr = NULL;
    int rc = 0;
    if (!json_parser_load_from_data(p, line, (gssize)len, &gerr)) {
        rc = ctl_bad(err, errlen, "malformed JSON: %s", gerr ? gerr->message : "?");
        g_clear_error(&gerr);
        g_object_unref(p);
        return rc;
    }
    JsonNode *root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_object_unref(p);
        return ctl_bad(err, errlen, "request must be a JSON object");
    }
    JsonObject *o = json_node_get_object(root);
    JsonNode *id = json_object_get_member(o, "id");
    if (id) {
        req->id = json_to_string(id, FALSE);
    }
    bool bad = false;
    const char *cmd = ctl_get_string(o, "cmd", &bad);
    if (bad || !cmd) {
        rc = ctl_bad(err, errlen, "missing \"cmd\" string");
    } else {
        rc = ctl_bad(err, errlen, "unknown command '%.64s'", cmd);
        for (size_t i = 0; i < G_N_ELEMENTS(ctl_cmds); i++) {
            if (strcmp(cmd, ctl_cmds[i].name) == 0) {
                req->cmd = ctl_cmds[i].cmd;
                err[0] = '\0';
                rc = ctl_parse_args(o, req, err, errlen);
                break;
            }
        }
    }
    g_object_unref(p);
    return rc;
}

const char *ctl_event_name(enum machine_event ev)
{
    switch (ev) {
    case MACHINE_EVENT_RUNNING:
        return "running";
    case MACHINE_EVENT_PAUSED:
        return "paused";
    case MACHINE_EVENT_RESET:
        return "reset";
    case MACHINE_EVENT_POWEROFF:
        return "poweroff";
    case MACHINE_EVENT_STOPPED:
        return "stopped";
    }
    return "unknown";
}

/* ---- server ------------------------------------------------------------------------------ */

struct ctl_client {
    struct ctl_server *srv;
    int fd;
    GSource *src;
    GString *in; /* bytes up to the next newline */
};

struct ctl_server {
    struct machine *m;
    char *path;
    char *name;
    struct surface *surface;
    int listen_fd;
    GMainContext *ctx;
    GSource *listen_src;
    pthread_t thread;
    bool started;
    bool quit;            /* read on the server thread, set under lock */
    pthread_mutex_t lock; /* clients[] and writes to client sockets */
    struct ctl_client *clients[CTL_MAX_CLIENTS];
};

/* Write a whole line, optionally with an fd; lock held. */
static int ctl_send_locked(int fd, const char *text, int pass_fd)
{
    size_t len = strlen(text);
    size_t off = 0;
    while (off < len) {
        struct iovec iov = {.iov_base = (char *)text + off, .iov_len = len - off};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        if (pass_fd >= 0 && off == 0) {
            memset(&cm, 0, sizeof(cm));
            msg.msg_control = cm.buf;
            msg.msg_controllen = sizeof(cm.buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -errno;
        }
        off += (size_t)n;
    }
    return 0;
}

static void ctl_client_send(struct ctl_client *cl, const char *text, int pass_fd)
{
    pthread_mutex_lock(&cl->srv->lock);
    ctl_send_locked(cl->fd, text, pass_fd);
    pthread_mutex_unlock(&cl->srv->lock);
}

/* Reply line for a request; ret may be NULL; takes ownership of ret. */
static char *ctl_reply_text(const char *id, const char *error, JsonNode *ret)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    if (id) {
        JsonNode *idn = json_from_string(id, NULL);
        if (idn) {
            json_builder_set_member_name(b, "id");
            json_builder_add_value(b, idn);
        }
    }
    json_builder_set_member_name(b, "ok");
    json_builder_add_boolean_value(b, error == NULL);
    if (error) {
        json_builder_set_member_name(b, "error");
        json_builder_add_string_value(b, error);
        if (ret) {
            json_node_unref(ret);
        }
    } else {
        json_builder_set_member_name(b, "return");
        if (ret) {
            json_builder_add_value(b, ret);
        } else {
            json_builder_begin_object(b);
            json_builder_end_object(b);
        }
    }
    json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    char *text = json_to_string(root, FALSE);
    json_node_unref(root);
    g_object_unref(b);
    char *line = g_strconcat(text, "\n", NULL);
    g_free(text);
    return line;
}

static const char *ctl_state_name(enum machine_state st)
{
    switch (st) {
    case MACHINE_STATE_RUNNING:
        return "running";
    case MACHINE_STATE_PAUSED:
        return "paused";
    case MACHINE_STATE_STOPPED:
        return "stopped";
    }
    return "unknown";
}

static JsonNode *ctl_mode_node(struct surface *s)
{
    struct surface_mode mode;
    surface_get_mode(s, &mode);
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "format");
    json_builder_add_string_value(b, "xrgb8888");
    json_builder_set_member_name(b, "width");
    json_builder_add_int_value(b, mode.width);
    json_builder_set_member_name(b, "height");
    json_builder_add_int_value(b, mode.height);
    json_builder_set_member_name(b, "stride");
    json_builder_add_int_value(b, mode.stride);
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, (gint64)surface_capacity(s));
    json_builder_end_object(b);
    JsonNode *n = json_builder_get_root(b);
    g_object_unref(b);
    return n;
}

static JsonNode *ctl_status_node(struct ctl_server *srv)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, ctl_state_name(machine_get_state(srv->m)));
    json_builder_set_member_name(b, "name");
    if (srv->name) {
        json_builder_add_string_value(b, srv->name);
    } else {
        json_builder_add_null_value(b);
    }
    json_builder_set_member_name(b, "display");
    if (srv->surface) {
        json_builder_add_value(b, ctl_mode_node(srv->surface));
    } else {
        json_builder_add_null_value(b);
    }
    json_builder_end_object(b);
    JsonNode *n = json_builder_get_root(b);
    g_object_unref(b);
    return n;
}

static int ctl_send_keys(struct machine *m, const int *keys, int n)
{
    uint8_t sc[KEYMAP_MAX_BYTES];
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int k = keymap_usb_to_set1((uint32_t)keys[i], true, sc);
        rc = k > 0 ? machine_key_event(m, sc, (size_t)k) : 0;
    }
    for (int i = n - 1; i >= 0; i--) {
        int k = keymap_usb_to_set1((uint32_t)keys[i], false, sc);
        if (k > 0) {
            machine_key_event(m, sc, (size_t)k);
        }
    }
    return rc;
}

static void ctl_handle_line(struct ctl_client *cl, const char *line, size_t len)
{
    struct ctl_server *srv = cl->srv;
    struct ctl_request req;
    char err[256] = "";
    JsonNode *ret = NULL;
    const char *error = NULL;
    int pass_fd = -1;
    bool quit = false;
    char msg[320];
    int rc;
    if (ctl_parse_request(line, len, &req, err, sizeof(err)) < 0) {
        error = err;
        goto reply;
    }
    switch (req.cmd) {
    case CTL_CMD_STATUS:
        ret = ctl_status_node(srv);
        break;
    case CTL_CMD_PAUSE:
    case CTL_CMD_RESUME:
        rc = req.cmd == CTL_CMD_PAUSE ? machine_pause(srv->m) : machine_resume(srv->m);
        if (rc < 0 && rc != -EALREADY) {
            snprintf(msg, sizeof(msg), "%s failed: %s",
                     req.cmd == CTL_CMD_PAUSE ? "pause" : "resume", strerror(-rc));
            error = msg;
        }
        if (!error) {
            ret = ctl_status_node(srv);
        }
        break;
    case CTL_CMD_POWERDOWN:
        if (req.force) {
            machine_request_poweroff(srv->m);
        } else {
            machine_power_button(srv->m);
            ctl_server_event(srv, "powerdown-requested");
        }
        break;
    case CTL_CMD_RESET:
        machine_request_reset(srv->m);
        break;
    case CTL_CMD_QUIT:
        quit = true;
        break;
    case CTL_CMD_SCREENDUMP:
        if (!srv->surface) {
            error = "this VM has no display";
            break;
        }
        rc = surface_screendump(srv->surface, req.file); /* FILE.txt: text screen */
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "%.200s: %s", req.file, strerror(-rc));
            error = msg;
        }
        break;
    case CTL_CMD_SEND_KEYS:
        rc = ctl_send_keys(srv->m, req.keys, req.nkeys);
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "keyboard: %s", strerror(-rc));
            error = msg;
        }
        break;
    case CTL_CMD_INPUT: {
        rc = 0;
        if (req.input == CTL_INPUT_MOUSE) {
            rc = machine_mouse_event(srv->m, req.dx, req.dy, req.wheel, req.buttons);
        } else if (req.input == CTL_INPUT_ABS) {
            rc = machine_abs_event(srv->m, req.x, req.y, req.wheel, req.buttons);
        }
        if (req.input != CTL_INPUT_KEY) {
            if (rc == -ENODEV) {
                error = req.input == CTL_INPUT_ABS ? "this VM has no tablet (lodge run --tablet on)"
                                                   : "this VM has no PS/2 mouse";
            } else if (rc < 0) {
                snprintf(msg, sizeof(msg), "pointer: %s", strerror(-rc));
                error = msg;
            }
            break;
        }
        uint8_t sc[KEYMAP_MAX_BYTES];
        int k = keymap_usb_to_set1((uint32_t)req.key, req.down, sc);
        rc = k > 0 ? machine_key_event(srv->m, sc, (size_t)k) : -ENOENT;
        if (rc < 0) {
            snprintf(msg, sizeof(msg), "keyboard: %s", strerror(-rc));
            error = msg;
        }
        break;
    }
    case CTL_CMD_DISPLAY_ATTACH:
        if (!srv->surface) {
            error = "this VM has no display";
            break;
        }
        /* Viewers get a read-only description of the memfd: they cannot scribble on
         * the guest's framebuffer. */
        snprintf(msg, sizeof(msg), "/proc/self/fd/%d", surface_fd(srv->surface));
        pass_fd = open(msg, O_RDONLY | O_CLOEXEC);
        if (pass_fd < 0) {
            snprintf(msg, sizeof(msg), "display-attach: %s", strerror(errno));
            error = msg;
            break;
        }
        ret = ctl_mode_node(srv->surface);
        break;
    }
reply:;
    char *text = ctl_reply_text(req.id, error, ret);
    ctl_client_send(cl, text, pass_fd);
    if (pass_fd >= 0) {
        close(pass_fd);
    }
    g_free(text);
    ctl_request_clear(&req);
    if (quit) {
        machine_request_quit(srv->m, 0);
    }
}

static void ctl_client_drop(struct ctl_client *cl)
{
    struct ctl_server *srv = cl->srv;
    pthread_mutex_lock(&srv->lock);
    for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (srv->clients[i] == cl) {
            srv->clients[i] = NULL;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    g_source_destroy(cl->src);
    g_source_unref(cl->src);
    close(cl->fd);
    g_string_free(cl->in, TRUE);
    g_free(cl);
}

static gboolean ctl_client_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    struct ctl_client *cl = opaque;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        ctl_client_drop(cl);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(cl->in, buf, n);
    for (;;) {
        char *nl = memchr(cl->in->str, '\n', cl->in->len);
        if (!nl) {
            break;
        }
        size_t len = (size_t)(nl - cl->in->str);
        char *line = g_strndup(cl->in->str, len);
        g_string_erase(cl->in, 0, (gssize)len + 1);
        /* Blank lines are keep-alives, not requests. */
        if (strspn(line, " \t\r") != len) {
            ctl_handle_line(cl, line, len);
        }
        g_free(line);
    }
    if (cl->in->len > CTL_MAX_LINE) {
        char *text = ctl_reply_text(NULL, "request too long; closing", NULL);
        ctl_client_send(cl, text, -1);
        g_free(text);
        ctl_client_drop(cl);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean ctl_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    struct ctl_server *srv = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* A client that stops reading must not stall the VM's event broadcasts for long. */
    struct timeval tv = {.tv_sec = 1};
    setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct ctl_client *cl = g_new0(struct ctl_client, 1);
    cl->srv = srv;
    cl->fd = cfd;
    cl->in = g_string_new(NULL);
    pthread_mutex_lock(&srv->lock);
    int slot = -1;
    for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (!srv->clients[i]) {
            slot = i;
            srv->clients[i] = cl;
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    if (slot < 0) {
        char *text = ctl_reply_text(NULL, "too many control connections", NULL);
        ctl_send_locked(cfd, text, -1);
        g_free(text);
        close(cfd);
        g_string_free(cl->in, TRUE);
        g_free(cl);
        return G_SOURCE_CONTINUE;
    }
    cl->src = g_unix_fd_source_new(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(cl->src, (GSourceFunc)(void (*)(void))ctl_client_readable, cl, NULL);
    g_source_attach(cl->src, srv->ctx);
    return G_SOURCE_CONTINUE;
}

static void *ctl_thread_main(void *opaque)
{
    struct ctl_server *srv = opaque;
    g_main_context_push_thread_default(srv->ctx);
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        bool quit = srv->quit;
        pthread_mutex_unlock(&srv->lock);
        if (quit) {
            break;
        }
        g_main_context_iteration(srv->ctx, TRUE);
    }
    g_main_context_pop_thread_default(srv->ctx);
    return NULL;
}

/* A socket file someone still listens on is a running VM; anything else is stale. */
static bool ctl_socket_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

int ctl_server_new(struct machine *m, const struct ctl_config *cfg, struct ctl_server **out,
                   char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%s: socket path too long", cfg->path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, cfg->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", cfg->path, strerror(e));
        return -e;
    }
    if (ctl_socket_live(&sa)) {
        close(fd);
        snprintf(err, errlen, "%s: another VM is using this control socket", cfg->path);
        return -EADDRINUSE;
    }
    unlink(cfg->path);
    mode_t old = umask(0077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(cfg->path, 0600) < 0 || listen(fd, 8) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", cfg->path, strerror(e));
        close(fd);
        return -e;
    }
    struct ctl_server *srv = g_new0(struct ctl_server, 1);
    srv->m = m;
    srv->path = g_strdup(cfg->path);
    srv->name = g_strdup(cfg->name);
    srv->surface = cfg->surface;
    srv->listen_fd = fd;
    pthread_mutex_init(&srv->lock, NULL);
    srv->ctx = g_main_context_new();
    srv->listen_src = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(srv->listen_src, (GSourceFunc)(void (*)(void))ctl_accept, srv, NULL);
    g_source_attach(srv->listen_src, srv->ctx);
    rc = pthread_create(&srv->thread, NULL, ctl_thread_main, srv);
    if (rc != 0) {
        snprintf(err, errlen, "control socket: cannot start its thread: %s", strerror(rc));
        ctl_server_free(srv);
        return -rc;
    }
    srv->started = true;
    log_info(CTL_TAG, "listening on %s", cfg->path);
    *out = srv;
    return 0;
}

void ctl_server_event(struct ctl_server *c, const char *name)
{
    if (!c) {
        return;
    }
    gchar *q = g_strescape(name, NULL);
    gchar *line = g_strdup_printf("{\"event\":\"%s\"}\n", q);
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (c->clients[i]) {
            ctl_send_locked(c->clients[i]->fd, line, -1);
        }
    }
    pthread_mutex_unlock(&c->lock);
    g_free(line);
    g_free(q);
}

void ctl_server_free(struct ctl_server *c)
{
    if (!c) {
        return;
    }
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->quit = true;
        pthread_mutex_unlock(&c->lock);
        g_main_context_wakeup(c->ctx);
        pthread_join(c->thread, NULL);
    }
    for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
        if (c->clients[i]) {
            ctl_client_drop(c->clients[i]);
        }
    }
    g_source_destroy(c->listen_src);
    g_source_unref(c->listen_src);
    close(c->listen_fd);
    unlink(c->path);
    g_main_context_unref(c->ctx);
    pthread_mutex_destroy(&c->lock);
    g_free(c->path);
    g_free(c->name);
    g_free(c);
}
