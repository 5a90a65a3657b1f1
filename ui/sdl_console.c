/* SDL2 console: the guest screen scaled into a window, keyboard to the i8042.
 *
 * Mouse: while the guest's virtio tablet driver runs, the pointer position goes to it
 * as absolute coordinates and nothing is grabbed; otherwise a click grabs the mouse and
 * relative motion goes to the PS/2 mouse.
 *
 * Keys: Ctrl+Alt releases the keyboard/mouse grab, Ctrl+Alt+F toggles fullscreen,
 * Ctrl+Alt+I toggles integer scaling. Closing the window presses the ACPI power
 * button; closing it again forces the power off. All SDL calls happen on the console
 * thread. */
#include "ui/console.h"

#include "core/log.h"
#include "core/machine.h"
#include "ui/keymap.h"
#include "ui/surface.h"

#include <SDL.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONSOLE_TAG "ui.sdl"
#define CONSOLE_FRAME_MS 33

struct sdl_console {
    struct machine *m;
    struct surface *surface;
    char *name;
    pthread_t thread;
    atomic_bool quit;
    atomic_int state; /* enum machine_state for the title */
    atomic_bool title_dirty;
    pthread_mutex_t init_lock; /* the thread reports its SDL start-up result */
    pthread_cond_t init_cond;
    int init_rc; /* 1 while starting, then 0 or -errno */
    char init_err[256];

    /* Console thread only. */
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    uint32_t tex_w, tex_h;
    bool grabbed;
    bool fullscreen;
    bool integer_scale;
    bool ctrl_down, alt_down; /* left or right */
    bool combo_used;          /* a Ctrl+Alt+key shortcut ran: no release on key up */
    int close_requests;       /* 1: power button pressed, 2: forced off */
    unsigned buttons;         /* mouse buttons held: bit 0 left, 1 right, 2 middle */
    bool relative;            /* SDL relative mouse mode is on (grabbed, no tablet) */
    int last_x, last_y;       /* last pointer position in guest pixels (wheel events) */
    bool redraw;              /* exposed or resized: present even without damage */
};

static void console_update_title(struct sdl_console *c)
{
    const char *st = "stopped";
    switch ((enum machine_state)atomic_load(&c->state)) {
    case MACHINE_STATE_RUNNING:
        st = "running";
        break;
    case MACHINE_STATE_PAUSED:
        st = "paused";
        break;
    case MACHINE_STATE_STOPPED:
        break;
    }
    char title[256];
    snprintf(title, sizeof(title), "%s [%s]%s%s - Lodge", c->name, st,
             c->close_requests ? " - power-off requested (close again to force)" : "",
             c->grabbed ? " - press Ctrl+Alt to release" : "");
    SDL_SetWindowTitle(c->win, title);
}

static void console_set_grab(struct sdl_console *c, bool on)
{
    c->grabbed = on;
    SDL_SetWindowGrab(c->win, on ? SDL_TRUE : SDL_FALSE);
    SDL_SetWindowKeyboardGrab(c->win, on ? SDL_TRUE : SDL_FALSE);
    SDL_ShowCursor(on ? SDL_DISABLE : SDL_ENABLE);
    /* Relative mode keeps the host pointer from stopping at the window edge. */
    bool rel = on && !machine_tablet_ready(c->m);
    if (rel != c->relative) {
        SDL_SetRelativeMouseMode(rel ? SDL_TRUE : SDL_FALSE);
        c->relative = rel;
    }
    console_update_title(c);
}

static unsigned console_button_bit(uint8_t sdl_button)
{
    switch (sdl_button) {
    case SDL_BUTTON_LEFT:
        return 1u;
    case SDL_BUTTON_RIGHT:
        return 2u;
    case SDL_BUTTON_MIDDLE:
        return 4u;
    default:
        return 0;
    }
}

/* Window (logical, i.e. guest-pixel) coordinates to the tablet's 0..MACHINE_ABS_MAX. */
static int console_abs(int v, uint32_t size)
{
    if (size < 2 || v <= 0) {
        return 0;
    }
    if ((uint32_t)v >= size - 1) {
        return MACHINE_ABS_MAX;
    }
    return (int)((int64_t)v * MACHINE_ABS_MAX / (int64_t)(size - 1));
}

/* One pointer update: absolute to the tablet when its driver runs, else relative to
 * the PS/2 mouse while grabbed. */
static void console_pointer(struct sdl_console *c, int x, int y, int dx, int dy, int wheel)
{
    if (machine_tablet_ready(c->m)) {
        machine_abs_event(c->m, console_abs(x, c->tex_w), console_abs(y, c->tex_h), wheel,
                          c->buttons);
    } else if (c->grabbed) {
        machine_mouse_event(c->m, dx, dy, wheel, c->buttons);
    }
}

static void console_mouse(struct sdl_console *c, const SDL_Event *ev)
{
    if (c->relative && machine_tablet_ready(c->m)) {
        /* The tablet driver came up during a grab: the host pointer is free again. */
        console_set_grab(c, false);
    }
    switch (ev->type) {
    case SDL_MOUSEMOTION:
        c->last_x = ev->motion.x;
        c->last_y = ev->motion.y;
        console_pointer(c, ev->motion.x, ev->motion.y, ev->motion.xrel, ev->motion.yrel, 0);
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP: {
        unsigned bit = console_button_bit(ev->button.button);
        bool tablet = machine_tablet_ready(c->m);
        if (ev->type == SDL_MOUSEBUTTONDOWN && !c->grabbed && !tablet) {
            console_set_grab(c, true); /* the click that grabs is not the guest's */
            break;
        }
        if (ev->type == SDL_MOUSEBUTTONDOWN) {
            c->buttons |= bit;
        } else {
            c->buttons &= ~bit;
        }
        console_pointer(c, ev->button.x, ev->button.y, 0, 0, 0);
        break;
    }
    case SDL_MOUSEWHEEL: {
        int w = ev->wheel.y;
        if (ev->wheel.direction == SDL_MOUSEWHEEL_FLIPPED) {
            w = -w;
        }
        if (w) {
            console_pointer(c, c->last_x, c->last_y, 0, 0, w);
        }
        break;
    }
    default:
        break;
    }
}

static void console_key(struct sdl_console *c, const SDL_KeyboardEvent *ev)
{
    bool down = ev->type == SDL_KEYDOWN;
    SDL_Scancode sc = ev->keysym.scancode;
    if (sc == SDL_SCANCODE_LCTRL || sc == SDL_SCANCODE_RCTRL) {
        c->ctrl_down = down;
    } else if (sc == SDL_SCANCODE_LALT || sc == SDL_SCANCODE_RALT) {
        c->alt_down = down;
    }
    if (down && c->ctrl_down && c->alt_down) {
        if (sc == SDL_SCANCODE_F) {
            c->fullscreen = !c->fullscreen;
            SDL_SetWindowFullscreen(c->win, c->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
            c->combo_used = true;
            return;
        }
        if (sc == SDL_SCANCODE_I) {
            c->integer_scale = !c->integer_scale;
            SDL_RenderSetIntegerScale(c->ren, c->integer_scale ? SDL_TRUE : SDL_FALSE);
            c->combo_used = true;
            return;
        }
    }
    /* Releasing Ctrl+Alt (with nothing else pressed in between) toggles the grab off. */
    if (!down && c->grabbed && !c->combo_used &&
        ((sc == SDL_SCANCODE_LCTRL || sc == SDL_SCANCODE_RCTRL) ? c->alt_down : false)) {
        console_set_grab(c, false);
    } else if (!down && c->grabbed && !c->combo_used &&
               (sc == SDL_SCANCODE_LALT || sc == SDL_SCANCODE_RALT) && c->ctrl_down) {
        console_set_grab(c, false);
    }
    if (!c->ctrl_down && !c->alt_down) {
        c->combo_used = false;
    }
    if (ev->repeat && !down) {
        return;
    }
    uint8_t bytes[KEYMAP_MAX_BYTES];
    int n = keymap_usb_to_set1((uint32_t)sc, down, bytes);
    if (n > 0) {
        machine_key_event(c->m, bytes, (size_t)n);
    }
}

static void console_close(struct sdl_console *c)
{
    c->close_requests++;
    if (c->close_requests == 1) {
        log_info(CONSOLE_TAG, "window closed: pressing the power button");
        machine_power_button(c->m);
    } else {
        log_info(CONSOLE_TAG, "window closed again: forcing power-off");
        machine_request_poweroff(c->m);
    }
    console_update_title(c);
}

static void console_handle(struct sdl_console *c, const SDL_Event *ev)
{
    switch (ev->type) {
    case SDL_QUIT:
        /* SDL adds this after the last window's close event: one click, counted once. */
        break;
    case SDL_WINDOWEVENT:
        if (ev->window.event == SDL_WINDOWEVENT_CLOSE) {
            console_close(c);
        } else if (ev->window.event == SDL_WINDOWEVENT_EXPOSED ||
                   ev->window.event == SDL_WINDOWEVENT_SIZE_CHANGED) {
            c->redraw = true;
        }
        break;
    case SDL_KEYDOWN:
    case SDL_KEYUP:
        console_key(c, &ev->key);
        break;
    case SDL_MOUSEMOTION:
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP:
    case SDL_MOUSEWHEEL:
        console_mouse(c, ev);
        break;
    default:
        break;
    }
}

static void console_draw(struct sdl_console *c)
{
    struct surface_mode mode;
    surface_get_mode(c->surface, &mode);
    bool fresh = false;
    if (!c->tex || mode.width != c->tex_w || mode.height != c->tex_h) {
        fresh = true;
        if (c->tex) {
            SDL_DestroyTexture(c->tex);
        }
        c->tex = SDL_CreateTexture(c->ren, SDL_PIXELFORMAT_RGB888, SDL_TEXTUREACCESS_STREAMING,
                                   (int)mode.width, (int)mode.height);
        c->tex_w = mode.width;
        c->tex_h = mode.height;
        /* Letterboxed scaling that keeps the guest's aspect ratio. */
        SDL_RenderSetLogicalSize(c->ren, (int)mode.width, (int)mode.height);
    }
    if (!c->tex) {
        return;
    }
    struct surface_rect dmg[SURFACE_MAX_DAMAGE];
    int n = surface_take_damage(c->surface, dmg, SURFACE_MAX_DAMAGE);
    /* A producer (the VGA) reports every change, so a frame without damage is skipped
     * and only damaged rectangles are uploaded. Guest writes to the plain-RAM framebuffer
     * of direct boots are not trapped: that one is uploaded whole every frame. */
    if (!surface_has_producer(c->surface) || fresh) {
        SDL_UpdateTexture(c->tex, NULL, surface_data(c->surface), (int)mode.stride);
    } else if (n == 0 && !c->redraw) {
        return;
    } else {
        for (int i = 0; i < n; i++) {
            if (dmg[i].x + dmg[i].w > c->tex_w || dmg[i].y + dmg[i].h > c->tex_h) {
                continue; /* for a mode the next frame's new texture covers */
            }
            SDL_Rect r = {(int)dmg[i].x, (int)dmg[i].y, (int)dmg[i].w, (int)dmg[i].h};
            SDL_UpdateTexture(c->tex, &r,
                              surface_data(c->surface) + (size_t)dmg[i].y * mode.stride +
                                  (size_t)dmg[i].x * 4,
                              (int)mode.stride);
        }
    }
    c->redraw = false;
    SDL_SetRenderDrawColor(c->ren, 0, 0, 0, 255);
    SDL_RenderClear(c->ren);
    SDL_RenderCopy(c->ren, c->tex, NULL, NULL);
    SDL_RenderPresent(c->ren);
}

static int console_open(struct sdl_console *c)
{
    SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
    SDL_SetHint(SDL_HINT_VIDEO_X11_NET_WM_BYPASS_COMPOSITOR, "0");
    if (SDL_Init(SDL_INIT_VIDEO) < 0) {
        snprintf(c->init_err, sizeof(c->init_err), "--display sdl: %s (use --display none)",
                 SDL_GetError());
        return -ENODEV;
    }
    struct surface_mode mode;
    surface_get_mode(c->surface, &mode);
    c->win = SDL_CreateWindow("Lodge", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
                              (int)mode.width, (int)mode.height, SDL_WINDOW_RESIZABLE);
    if (c->win) {
        c->ren = SDL_CreateRenderer(c->win, -1, 0);
    }
    if (!c->win || !c->ren) {
        snprintf(c->init_err, sizeof(c->init_err), "--display sdl: %s", SDL_GetError());
        return -ENODEV;
    }
    SDL_RenderSetIntegerScale(c->ren, c->integer_scale ? SDL_TRUE : SDL_FALSE);
    console_update_title(c);
    return 0;
}

static void console_close_sdl(struct sdl_console *c)
{
    if (c->tex) {
        SDL_DestroyTexture(c->tex);
    }
    if (c->ren) {
        SDL_DestroyRenderer(c->ren);
    }
    if (c->win) {
        SDL_DestroyWindow(c->win);
    }
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
}

static void *console_thread(void *opaque)
{
    struct sdl_console *c = opaque;
    int rc = console_open(c);
    pthread_mutex_lock(&c->init_lock);
    c->init_rc = rc;
    pthread_cond_broadcast(&c->init_cond);
    pthread_mutex_unlock(&c->init_lock);
    if (rc < 0) {
        console_close_sdl(c);
        return NULL;
    }
    while (!atomic_load(&c->quit)) {
        SDL_Event ev;
        if (SDL_WaitEventTimeout(&ev, CONSOLE_FRAME_MS)) {
            console_handle(c, &ev);
            while (SDL_PollEvent(&ev)) {
                console_handle(c, &ev);
            }
        }
        if (atomic_exchange(&c->title_dirty, false)) {
            console_update_title(c);
        }
        console_draw(c);
    }
    console_close_sdl(c);
    return NULL;
}

int sdl_console_new(struct machine *m, struct surface *s, const char *name, bool integer_scale,
                    struct sdl_console **out, char *err, size_t errlen)
{
    struct sdl_console *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->m = m;
    c->surface = s;
    c->name = strdup(name ? name : "lodge");
    c->integer_scale = integer_scale;
    atomic_store(&c->state, (int)machine_get_state(m));
    pthread_mutex_init(&c->init_lock, NULL);
    pthread_cond_init(&c->init_cond, NULL);
    c->init_rc = 1;
    int rc = pthread_create(&c->thread, NULL, console_thread, c);
    if (rc != 0) {
        snprintf(err, errlen, "--display sdl: cannot start the console thread: %s", strerror(rc));
        free(c->name);
        free(c);
        return -rc;
    }
    pthread_mutex_lock(&c->init_lock);
    while (c->init_rc == 1) {
        pthread_cond_wait(&c->init_cond, &c->init_lock);
    }
    rc = c->init_rc;
    pthread_mutex_unlock(&c->init_lock);
    if (rc < 0) {
        snprintf(err, errlen, "%s", c->init_err);
        pthread_join(c->thread, NULL);
        free(c->name);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sdl_console_free(struct sdl_console *c)
{
    if (!c) {
        return;
    }
    atomic_store(&c->quit, true);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->init_lock);
    pthread_cond_destroy(&c->init_cond);
    free(c->name);
    free(c);
}

void sdl_console_event(struct sdl_console *c, enum machine_event ev)
{
    if (!c) {
        return;
    }
    switch (ev) {
    case MACHINE_EVENT_RUNNING:
        atomic_store(&c->state, (int)MACHINE_STATE_RUNNING);
        break;
    case MACHINE_EVENT_PAUSED:
        atomic_store(&c->state, (int)MACHINE_STATE_PAUSED);
        break;
    case MACHINE_EVENT_STOPPED:
        atomic_store(&c->state, (int)MACHINE_STATE_STOPPED);
        break;
    default:
        break;
    }
    atomic_store(&c->title_dirty, true);
}
