/* Control socket: JSON objects, one per line, over a per-VM UNIX socket (mode 0600).
 *
 * Requests:  {"cmd": "status" | "pause" | "resume" | "powerdown" | "reset" | "quit" |
 *                    "screendump" | "send-keys" | "display-attach" | "input",
 *             "id": ANY (optional, echoed), ...arguments}
 *   powerdown  {"force": bool}      false: ACPI power button; true: power off now
 *   screendump {"file": "/abs.png"} the screen as PNG, written by the VM process
 *              ("/abs.txt": a text-mode screen as text; an error in graphics modes)
 *   send-keys  {"keys": "ctrl-alt-delete"}  press in order, release in reverse
 *   input      {"type": "key", "key": "a" | "evdev": 30, "down": bool}
 *              {"type": "mouse", "dx": N, "dy": N, "buttons": B, "wheel": W}  PS/2 mouse
 *              {"type": "abs", "x": 0..32767, "y": 0..32767, "buttons": B, "wheel": W}
 *              tablet; dx, dy (|N| <= 4096), x, y required; buttons (bit 0 left,
 *              1 right, 2 middle) and wheel (-127..127) default 0; dy > 0 is down,
 *              wheel > 0 scrolls up
 *   display-attach  the reply carries the framebuffer memfd (SCM_RIGHTS) and its mode
 * Replies:   {"id": ..., "ok": true, "return": {...}} or {"id": ..., "ok": false,
 *             "error": "text"}
 * Events:    {"event": "running" | "paused" | "reset" | "poweroff" | "stopped" |
 *             "powerdown-requested"}
 * A malformed line or an unknown command gets an error reply; the connection stays. */
#ifndef LODGE_CORE_CTL_H
#define LODGE_CORE_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/machine.h"

#define CTL_MAX_LINE 65536 /* longer requests are refused and the client dropped */
#define CTL_MAX_KEYS 16
#define CTL_NAME_MAX 64
#define CTL_MOUSE_MAX 4096 /* |dx|, |dy| of one mouse event */
#define CTL_WHEEL_MAX 127

struct surface;
struct ctl_server;

enum ctl_cmd {
    CTL_CMD_STATUS,
    CTL_CMD_PAUSE,
    CTL_CMD_RESUME,
    CTL_CMD_POWERDOWN,
    CTL_CMD_RESET,
    CTL_CMD_QUIT,
    CTL_CMD_SCREENDUMP,
    CTL_CMD_SEND_KEYS,
    CTL_CMD_DISPLAY_ATTACH,
    CTL_CMD_INPUT,
};

enum ctl_input_type {
    CTL_INPUT_KEY,
    CTL_INPUT_MOUSE,
    CTL_INPUT_ABS,
};

struct ctl_request {
    enum ctl_cmd cmd;
    char *id;               /* the request's "id" as JSON text, or NULL */
    bool force;             /* powerdown */
    char *file;             /* screendump: absolute path */
    int keys[CTL_MAX_KEYS]; /* send-keys: USB HID usages (ui/keymap.h) */
    int nkeys;
    int key;   /* input: USB HID usage */
    bool down; /* input: press (true) or release */
    enum ctl_input_type input; /* input: which form */
    int dx, dy;       /* input mouse: relative motion */
    int x, y;         /* input abs: 0..32767 */
    int wheel;        /* input mouse/abs: wheel clicks */
    unsigned buttons; /* input mouse/abs: bit 0 left, 1 right, 2 middle */
};

/* Parse one request line. 0, or -EINVAL with a message in err (the id, when the line
 * had a readable one, is still set in req->id so the error reply can carry it).
 * Always call ctl_request_clear afterwards. */
int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen);
void ctl_request_clear(struct ctl_request *req);

/* VM names: 1..CTL_NAME_MAX of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool ctl_name_valid(const char *name);
/* $XDG_RUNTIME_DIR/lodge/NAME.sock (falls back to /tmp/lodge-UID). 0 or -ENAMETOOLONG/-EINVAL.
 * With mkdir, creates the directory (mode 0700). */
int ctl_socket_path(const char *name, bool mkdir, char *out, size_t outlen);

struct ctl_config {
    const char *path;        /* socket path */
    const char *name;        /* VM name for status, or NULL */
    struct surface *surface; /* for screendump/display-attach, or NULL */
};

/* Listen on cfg->path (a stale socket is replaced; a live one is -EADDRINUSE) and serve
 * on a thread of its own. 0 or -errno with err set. */
int ctl_server_new(struct machine *m, const struct ctl_config *cfg, struct ctl_server **out,
                   char *err, size_t errlen);
/* Stops the thread, closes the clients, removes the socket file. */
void ctl_server_free(struct ctl_server *c);
/* Send {"event": name} to every client. Any thread. */
void ctl_server_event(struct ctl_server *c, const char *name);
/* The machine event's name for ctl_server_event. */
const char *ctl_event_name(enum machine_event ev);

#endif
