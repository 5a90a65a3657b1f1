/* The VGA device on a display surface: see vga_display.h. */
#include "devices/display/vga_display.h"

#include "core/log.h"
#include "devices/display/vga.h"
#include "ui/surface.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VGA_DISPLAY_TAG "dev.vga"
#define VGA_DISPLAY_CAPACITY ((size_t)VGA_MAX_WIDTH * VGA_MAX_HEIGHT * 4)
/* What the surface shows before the guest sets a mode: the VGA BIOS's 80x25 text size. */
#define VGA_DISPLAY_INIT_W 720
#define VGA_DISPLAY_INIT_H 400

struct vga_display {
    struct vga *vga;
    struct surface *surface;
    pthread_mutex_t lock;            /* one refresh at a time */
    struct vga_mode mode;            /* what the surface shows */
    bool shown;                      /* mode is valid and on the surface */
    bool blank;                      /* display off: surface painted black */
    uint32_t gen;                    /* vga_generation() the pixels were drawn at */
    uint64_t dirty[VGA_DIRTY_WORDS]; /* scratch for vga_take_dirty */
    pthread_t thread;                /* refresher for out-of-process viewers */
    bool thread_started;
    unsigned period_ms;
    pthread_mutex_t quit_lock; /* quit flag and its condition */
    pthread_cond_t quit_cond;
    bool quit;
};

static bool vga_display_same_mode(const struct vga_mode *a, const struct vga_mode *b)
{
    return a->kind == b->kind && a->blank == b->blank && a->width == b->width &&
           a->height == b->height && a->bpp == b->bpp && a->fb_base == b->fb_base &&
           a->fb_stride == b->fb_stride;
}

static bool vga_display_mode_valid(const struct vga_mode *m)
{
    return !m->blank && m->width > 0 && m->height > 0 && m->width <= VGA_MAX_WIDTH &&
           m->height <= VGA_MAX_HEIGHT;
}

/* Paint the current surface black once when the display goes off. */
static int vga_display_blank(struct vga_display *d)
{
    if (d->blank) {
        return 0;
    }
    struct surface_mode sm;
    surface_get_mode(d->surface, &sm);
    memset(surface_data(d->surface), 0, (size_t)sm.stride * sm.height);
    d->blank = true;
    d->shown = false;
    surface_damage(d->surface, 0, 0, sm.width, sm.height);
    return 1;
}

/* Redraw lines [y0, y1) and report them. */
static int vga_display_draw(struct vga_display *d, uint32_t y0, uint32_t y1)
{
    uint32_t *px = (uint32_t *)(void *)surface_data(d->surface);
    int rc = vga_render_lines(d->vga, &d->mode, px, VGA_DISPLAY_CAPACITY / 4, y0, y1);
    if (rc < 0) {
        return rc;
    }
    surface_damage(d->surface, 0, y0, d->mode.width, y1 - y0);
    return 1;
}

/* Lines the dirty VRAM pages cover, drawn in runs of adjacent lines. */
static int vga_display_draw_dirty(struct vga_display *d)
{
    const struct vga_mode *m = &d->mode;
    if (m->fb_stride == 0) {
        return 0;
    }
    int n = 0;
    uint32_t run0 = 0, run1 = 0; /* pending run [run0, run1), empty when equal */
    for (size_t w = 0; w < VGA_DIRTY_WORDS; w++) {
        uint64_t bits = d->dirty[w];
        while (bits) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            uint64_t start = ((uint64_t)w * 64 + b) * VGA_DIRTY_PAGE;
            uint64_t end = start + VGA_DIRTY_PAGE;
            if (end <= m->fb_base) {
                continue;
            }
            uint64_t lo = start > m->fb_base ? start - m->fb_base : 0;
            uint64_t y0 = lo / m->fb_stride, y1 = (end - 1 - m->fb_base) / m->fb_stride + 1;
            if (y0 >= m->height) {
                break; /* pages only go up from here */
            }
            if (y1 > m->height) {
                y1 = m->height;
            }
            if (run1 > run0 && y0 <= run1) {
                run1 = (uint32_t)(y1 > run1 ? y1 : run1);
                continue;
            }
            if (run1 > run0) {
                int rc = vga_display_draw(d, run0, run1);
                if (rc < 0) {
                    return rc;
                }
                n += rc;
            }
            run0 = (uint32_t)y0;
            run1 = (uint32_t)y1;
        }
    }
    if (run1 > run0) {
        int rc = vga_display_draw(d, run0, run1);
        if (rc < 0) {
            return rc;
        }
        n += rc;
    }
    return n;
}

int vga_display_refresh(struct vga_display *d)
{
    pthread_mutex_lock(&d->lock);
    int n = 0;
    /* Take the change marks before reading anything: a write racing with this refresh
     * is marked again and drawn next time. */
    uint32_t gen = vga_generation(d->vga);
    vga_take_dirty(d->vga, d->dirty, VGA_DIRTY_WORDS);
    struct vga_mode mode;
    vga_get_mode(d->vga, &mode);
    if (!vga_display_mode_valid(&mode)) {
        n = vga_display_blank(d);
        pthread_mutex_unlock(&d->lock);
        return n;
    }
    bool full = !d->shown || gen != d->gen;
    if (!d->shown || !vga_display_same_mode(&mode, &d->mode)) {
        struct surface_mode sm = {SURFACE_FORMAT_XRGB8888, mode.width, mode.height,
                                  mode.width * 4};
        if (surface_set_mode(d->surface, &sm) < 0) {
            n = vga_display_blank(d);
            pthread_mutex_unlock(&d->lock);
            return n;
        }
        d->mode = mode;
        full = true;
    }
    d->gen = gen;
    /* Linear VBE modes redraw the lines under dirty pages; text, VGA graphics and planar
     * VBE (their pixels do not map to VRAM lines one to one) redraw all on any change. */
    bool linear = mode.kind == 2 && mode.bpp != 4;
    if (!linear) {
        for (size_t i = 0; i < VGA_DIRTY_WORDS && !full; i++) {
            full = d->dirty[i] != 0;
        }
    }
    int rc = full ? vga_display_draw(d, 0, mode.height) : (linear ? vga_display_draw_dirty(d) : 0);
    if (rc == -EAGAIN) {
        /* The mode changed under us: the generation moved too, so redraw next time. */
        d->gen = gen - 1;
        rc = 0;
    }
    if (rc < 0) {
        n = vga_display_blank(d);
    } else {
        n = rc;
        d->shown = true;
        d->blank = false;
    }
    pthread_mutex_unlock(&d->lock);
    return n;
}

static void vga_display_producer_refresh(void *opaque)
{
    vga_display_refresh(opaque);
}

static int vga_display_producer_text(void *opaque, char *out, size_t len)
{
    struct vga_display *d = opaque;
    return vga_text(d->vga, out, len);
}

static void *vga_display_thread(void *opaque)
{
    struct vga_display *d = opaque;
    pthread_mutex_lock(&d->quit_lock);
    while (!d->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)d->period_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&d->quit_cond, &d->quit_lock, &ts);
        if (d->quit) {
            break;
        }
        pthread_mutex_unlock(&d->quit_lock);
        /* Through the surface, so it serialises with viewers and producer removal. */
        surface_refresh(d->surface);
        pthread_mutex_lock(&d->quit_lock);
    }
    pthread_mutex_unlock(&d->quit_lock);
    return NULL;
}

int vga_display_new(struct vga *v, unsigned period_ms, struct vga_display **out)
{
    struct vga_display *d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->vga = v;
    d->period_ms = period_ms;
    int rc = surface_new(VGA_DISPLAY_INIT_W, VGA_DISPLAY_INIT_H, VGA_DISPLAY_CAPACITY,
                         &d->surface);
    if (rc < 0) {
        free(d);
        return rc;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->quit_lock, NULL);
    pthread_cond_init(&d->quit_cond, NULL);
    struct surface_producer p = {.opaque = d,
                                 .refresh = vga_display_producer_refresh,
                                 .text = vga_display_producer_text};
    surface_set_producer(d->surface, &p);
    if (period_ms > 0) {
        rc = pthread_create(&d->thread, NULL, vga_display_thread, d);
        if (rc != 0) {
            vga_display_free(d);
            return -rc;
        }
        d->thread_started = true;
    }
    log_debug(VGA_DISPLAY_TAG, "display surface attached (refresh every %u ms)", period_ms);
    *out = d;
    return 0;
}

void vga_display_free(struct vga_display *d)
{
    if (!d) {
        return;
    }
    if (d->thread_started) {
        pthread_mutex_lock(&d->quit_lock);
        d->quit = true;
        pthread_cond_broadcast(&d->quit_cond);
        pthread_mutex_unlock(&d->quit_lock);
        pthread_join(d->thread, NULL);
    }
    surface_set_producer(d->surface, NULL);
    surface_free(d->surface);
    pthread_cond_destroy(&d->quit_cond);
    pthread_mutex_destroy(&d->quit_lock);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct surface *vga_display_surface(struct vga_display *d)
{
    return d->surface;
}
