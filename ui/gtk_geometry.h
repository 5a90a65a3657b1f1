/* lodge-gui: where a guest screen sits in a console tab, and pointer positions over it as
 * the tablet's absolute coordinates. Plain arithmetic without GTK, so a unit test checks
 * it (tests/unit/test_gtk_geometry.c). */
#ifndef LODGE_UI_GTK_GEOMETRY_H
#define LODGE_UI_GTK_GEOMETRY_H

#include <stdbool.h>

#define GUI_ABS_MAX 32767 /* the virtio tablet's ABS_X/ABS_Y range is 0..32767 */

/* The guest screen scaled into the widget with its aspect ratio kept, centred: black
 * (letterbox) bars on two sides. */
struct gui_fit {
    double x, y;  /* top-left corner of the drawn screen in the widget, pixels */
    double scale; /* widget pixels per guest pixel */
    int gw, gh;   /* guest screen size, pixels */
};

/* 0, or -1 when either size is empty (nothing is drawn). */
static inline int gui_fit_compute(int aw, int ah, int gw, int gh, struct gui_fit *f)
{
    if (aw <= 0 || ah <= 0 || gw <= 0 || gh <= 0) {
        return -1;
    }
    double sx = (double)aw / gw, sy = (double)ah / gh;
    f->scale = sx < sy ? sx : sy;
    f->x = (aw - gw * f->scale) / 2;
    f->y = (ah - gh * f->scale) / 2;
    f->gw = gw;
    f->gh = gh;
    return 0;
}

static inline int gui_fit_axis(double p, double origin, double scale, int size)
{
    double g = (p - origin) / scale;
    if (g < 0) {
        return 0;
    }
    if (g >= size) {
        return size - 1;
    }
    return (int)g;
}

/* A widget position as tablet coordinates: the guest pixel under it (positions on the bars
 * clamp to the nearest edge) mapped so the first pixel is 0 and the last GUI_ABS_MAX, the
 * way the SDL console maps its window. Returns whether the position is over the screen. */
static inline bool gui_fit_to_abs(const struct gui_fit *f, double px, double py, int *ax, int *ay)
{
    int gx = gui_fit_axis(px, f->x, f->scale, f->gw);
    int gy = gui_fit_axis(py, f->y, f->scale, f->gh);
    *ax = f->gw > 1 ? (int)((long long)gx * GUI_ABS_MAX / (f->gw - 1)) : 0;
    *ay = f->gh > 1 ? (int)((long long)gy * GUI_ABS_MAX / (f->gh - 1)) : 0;
    return px >= f->x && py >= f->y && px < f->x + f->gw * f->scale && py < f->y + f->gh * f->scale;
}

#endif
