/* The SDL2 console window (ui/sdl_console.c; ui/sdl_console_none.c when Lodge is built
 * without SDL2). It runs on a thread of its own and reads the surface periodically. */
#ifndef LODGE_UI_CONSOLE_H
#define LODGE_UI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/machine.h"

struct surface;
struct sdl_console;

/* integer_scale: scale by whole multiples only (Ctrl+Alt+I toggles it later).
 * 0, or -errno with err set (-ENOTSUP: built without SDL2; -ENODEV: no X/Wayland). */
int sdl_console_new(struct machine *m, struct surface *s, const char *name, bool integer_scale,
                    struct sdl_console **out, char *err, size_t errlen);
void sdl_console_free(struct sdl_console *c);
/* Machine state changes (the title shows the state). Any thread. */
void sdl_console_event(struct sdl_console *c, enum machine_event ev);

#endif
