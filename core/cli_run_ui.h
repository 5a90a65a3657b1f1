/* The UI options of lodge run (--display, --ctl, --name) and starting the UI session
 * around machine_run. Kept apart from cli_run.c so the machine CLI stays small. */
#ifndef LODGE_CORE_CLI_RUN_UI_H
#define LODGE_CORE_CLI_RUN_UI_H

#include <stdbool.h>

struct machine;
struct machine_config;
struct ui_session;

enum cli_run_ui_opt {
    CLI_RUN_UI_DISPLAY,
    CLI_RUN_UI_CTL,
    CLI_RUN_UI_NAME,
    CLI_RUN_UI_TABLET,
};

struct cli_run_ui {
    const char *display; /* "sdl", "none" or NULL (auto) */
    const char *ctl;     /* --ctl PATH */
    const char *name;    /* --name NAME */
    bool sdl;            /* resolved */
    bool integer_scale;  /* --display sdl,integer-scale=on */
    const char *tablet;  /* --tablet on|off, NULL: on with a display or control socket */
};

#define CLI_RUN_UI_HELP                                                                            \
    "  --display sdl[,integer-scale=on]|none\n"                                                    \
    "                     guest screen window (default sdl when $DISPLAY or\n"                     \
    "                     $WAYLAND_DISPLAY is set, else none)\n"                                   \
    "  --name NAME        VM name: window title and control socket\n"                              \
    "                     $XDG_RUNTIME_DIR/lodge/NAME.sock\n"                                      \
    "  --ctl PATH         control socket path (lodge ctl --help)\n"                                \
    "  --tablet on|off    virtio tablet for absolute pointing (default on with a\n"                \
    "                     display or control socket)\n"

/* One option; prints "lodge: --opt: problem" and returns -1 when bad, else 0. */
int cli_run_ui_parse(enum cli_run_ui_opt opt, const char *arg, struct cli_run_ui *ui);
/* Resolve the display and size the framebuffer in cfg. */
void cli_run_ui_config(struct cli_run_ui *ui, struct machine_config *cfg);
/* Whether the machine gets a virtio tablet (after cli_run_ui_config). */
bool cli_run_ui_tablet(const struct cli_run_ui *ui);
/* Start surface/control socket/console; prints the problem and returns -1 on failure. */
int cli_run_ui_start(const struct cli_run_ui *ui, struct machine *m, struct ui_session **out);
void cli_run_ui_stop(struct ui_session *s);

#endif
