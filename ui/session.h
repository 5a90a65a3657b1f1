/* What `lodge run` attaches to a machine besides the devices: the display surface over
 * the guest framebuffer, the control socket and the SDL console. */
#ifndef LODGE_UI_SESSION_H
#define LODGE_UI_SESSION_H

#include <stdbool.h>
#include <stddef.h>

struct machine;
struct ui_session;

struct ui_session_config {
    const char *name;     /* VM name (title, status), or NULL */
    const char *ctl_path; /* control socket path, or NULL for none */
    bool display_sdl;     /* open the SDL console */
    bool integer_scale;   /* SDL console: whole-multiple scaling */
};

/* Call after machine_new and before machine_run. 0 or -errno with err set. */
int ui_session_start(struct machine *m, const struct ui_session_config *cfg,
                     struct ui_session **out, char *err, size_t errlen);
/* After machine_run returned. NULL is fine. */
void ui_session_stop(struct ui_session *s);

#endif
