/* lodge run: --display, --ctl, --name. */
#include "core/cli_run_ui.h"

#include "core/ctl.h"
#include "core/machine.h"
#include "ui/session.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#define CLI_RUN_UI_FB_W 1024
#define CLI_RUN_UI_FB_H 768

int cli_run_ui_parse(enum cli_run_ui_opt opt, const char *arg, struct cli_run_ui *ui)
{
    switch (opt) {
    case CLI_RUN_UI_DISPLAY:
        if (strcmp(arg, "sdl,integer-scale=on") == 0) {
            ui->integer_scale = true;
            arg = "sdl";
        } else if (strcmp(arg, "sdl,integer-scale=off") == 0) {
            ui->integer_scale = false;
            arg = "sdl";
        }
        if (strcmp(arg, "sdl") != 0 && strcmp(arg, "none") != 0) {
            fprintf(stderr, "lodge: --display: unknown display '%s' (use sdl or none)\n", arg);
            return -1;
        }
        ui->display = arg;
        return 0;
    case CLI_RUN_UI_CTL:
        if (!arg[0]) {
            fprintf(stderr, "lodge: --ctl: needs a socket path\n");
            return -1;
        }
        ui->ctl = arg;
        return 0;
    case CLI_RUN_UI_NAME:
        if (!ctl_name_valid(arg)) {
            fprintf(stderr,
                    "lodge: --name: '%s' is not a VM name (1-%d of A-Z a-z 0-9 . _ -, "
                    "not starting with . or -)\n",
                    arg, CTL_NAME_MAX);
            return -1;
        }
        ui->name = arg;
        return 0;
    case CLI_RUN_UI_TABLET:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0) {
            fprintf(stderr, "lodge: --tablet: use on or off, not '%s'\n", arg);
            return -1;
        }
        ui->tablet = arg;
        return 0;
    }
    return -1;
}

bool cli_run_ui_tablet(const struct cli_run_ui *ui)
{
    if (ui->tablet) {
        return strcmp(ui->tablet, "on") == 0;
    }
    /* Absolute pointing is for someone looking at the screen or driving it remotely. */
    return ui->sdl || ui->ctl || ui->name;
}

void cli_run_ui_config(struct cli_run_ui *ui, struct machine_config *cfg)
{
    if (ui->display) {
        ui->sdl = strcmp(ui->display, "sdl") == 0;
    } else {
        const char *x = g_getenv("DISPLAY");
        const char *w = g_getenv("WAYLAND_DISPLAY");
        ui->sdl = (x && x[0]) || (w && w[0]);
    }
    /* A framebuffer only when someone can look at it (existing headless runs keep their
     * exact memory map), and only for direct boots: firmware has its own VGA device and
     * assigns PCI BARs in the hole where this region would sit. */
    bool direct = cfg->kernel && !cfg->bios && !cfg->fw;
    if (direct && (ui->sdl || ui->ctl || ui->name)) {
        cfg->fb_width = CLI_RUN_UI_FB_W;
        cfg->fb_height = CLI_RUN_UI_FB_H;
    }
}

int cli_run_ui_start(const struct cli_run_ui *ui, struct machine *m, struct ui_session **out)
{
    char path[256];
    const char *ctl = ui->ctl;
    if (!ctl && ui->name) {
        if (ctl_socket_path(ui->name, true, path, sizeof(path)) < 0) {
            fprintf(stderr, "lodge: --name %s: control socket path too long; use --ctl PATH\n",
                    ui->name);
            return -1;
        }
        ctl = path;
    }
    struct ui_session_config sc = {.name = ui->name,
                                   .ctl_path = ctl,
                                   .display_sdl = ui->sdl,
                                   .integer_scale = ui->integer_scale};
    char err[512] = "";
    if (ui_session_start(m, &sc, out, err, sizeof(err)) < 0) {
        fprintf(stderr, "lodge: %s\n", err);
        return -1;
    }
    return 0;
}

void cli_run_ui_stop(struct ui_session *s)
{
    ui_session_stop(s);
}
