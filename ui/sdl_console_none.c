/* Stand-in for the SDL2 console when Lodge is built without SDL2. */
#include "ui/console.h"

#include <errno.h>
#include <stdio.h>

int sdl_console_new(struct machine *m, struct surface *s, const char *name, bool integer_scale,
                    struct sdl_console **out, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "--display sdl: this lodge was built without SDL2 (install "
             "libsdl2-dev and rebuild)");
    return -ENOTSUP;
}

void sdl_console_free(struct sdl_console *c)
{
}

void sdl_console_event(struct sdl_console *c, enum machine_event ev)
{
}
