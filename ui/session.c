/* A running VM's UI side: surface, control socket, console, and the machine events
 * fanned out to them. */
#include "ui/session.h"

#include "core/ctl.h"
#include "core/machine.h"
#include "devices/display/vga_display.h"
#include "ui/console.h"
#include "ui/surface.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ui_session {
    struct machine *m;
    struct surface *surface; /* over the guest framebuffer, or NULL */
    struct vga_display *vga; /* firmware boots: owns surface, rendered from the VGA */
    struct ctl_server *ctl;
    struct sdl_console *console;
};

static void ui_session_event(void *opaque, enum machine_event ev)
{
    struct ui_session *s = opaque;
    ctl_server_event(s->ctl, ctl_event_name(ev));
    if (s->console) {
        sdl_console_event(s->console, ev);
    }
}

int ui_session_start(struct machine *m, const struct ui_session_config *cfg,
                     struct ui_session **out, char *err, size_t errlen)
{
    struct ui_session *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->m = m;
    struct machine_fb fb;
    int rc;
    if (machine_get_fb(m, &fb) == 0) {
        struct surface_mode mode = {SURFACE_FORMAT_XRGB8888, fb.width, fb.height, fb.stride};
        rc = surface_new_external(fb.hva, fb.fd, fb.size, &mode, &s->surface);
        if (rc < 0) {
            snprintf(err, errlen, "display: bad framebuffer mode %ux%u", fb.width, fb.height);
            ui_session_stop(s);
            return rc;
        }
    } else if (machine_vga(m) && (cfg->ctl_path || cfg->display_sdl)) {
        rc = vga_display_new(machine_vga(m), VGA_DISPLAY_PERIOD_MS, &s->vga);
        if (rc < 0) {
            snprintf(err, errlen, "display: cannot put the VGA on a surface: %s", strerror(-rc));
            ui_session_stop(s);
            return rc;
        }
        s->surface = vga_display_surface(s->vga);
    }
    if (cfg->ctl_path) {
        struct ctl_config cc = {.path = cfg->ctl_path, .name = cfg->name, .surface = s->surface};
        rc = ctl_server_new(m, &cc, &s->ctl, err, errlen);
        if (rc < 0) {
            ui_session_stop(s);
            return rc;
        }
    }
    if (cfg->display_sdl && s->surface) {
        rc =
            sdl_console_new(m, s->surface, cfg->name, cfg->integer_scale, &s->console, err, errlen);
        if (rc < 0) {
            ui_session_stop(s);
            return rc;
        }
    }
    machine_set_event_cb(m, ui_session_event, s);
    *out = s;
    return 0;
}

void ui_session_stop(struct ui_session *s)
{
    if (!s) {
        return;
    }
    machine_set_event_cb(s->m, NULL, NULL);
    sdl_console_free(s->console);
    ctl_server_free(s->ctl);
    if (s->vga) {
        vga_display_free(s->vga); /* frees its surface */
    } else {
        surface_free(s->surface);
    }
    free(s);
}
