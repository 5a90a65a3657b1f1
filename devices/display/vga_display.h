/* The VGA device on a display surface (ui/surface.h): what the SDL console, screendump
 * and display-attach viewers see of a firmware-booted machine.
 *
 * Rendering is on demand: the surface's producer hook re-renders when a viewer in this
 * process reads it (SDL frame, screendump), and an optional refresher thread does the
 * same at a fixed period for viewers in other processes (a GTK console tab maps the
 * memfd and never asks). A refresh costs little when nothing changed: register writes
 * bump a generation counter (mode, palette, cursor: full redraw), VRAM writes (BAR0 or the
 * legacy window) mark pages dirty: in linear VBE modes only the scanlines they cover are
 * redrawn and damaged, in text, VGA graphics and planar modes any change redraws all.
 *
 * The surface has room for the largest VBE mode (VGA_MAX_WIDTH x VGA_MAX_HEIGHT); mode
 * changes become surface_set_mode() calls. While the display is off (no valid mode) the
 * surface keeps its last mode, painted black. */
#ifndef LODGE_DEVICES_DISPLAY_VGA_DISPLAY_H
#define LODGE_DEVICES_DISPLAY_VGA_DISPLAY_H

#include <stddef.h>

struct vga;
struct surface;
struct vga_display;

#define VGA_DISPLAY_PERIOD_MS 33 /* refresher thread period for out-of-process viewers */

/* A surface fed from v. period_ms > 0 starts the refresher thread; 0 renders only when
 * asked (tests). 0 or -errno. */
int vga_display_new(struct vga *v, unsigned period_ms, struct vga_display **out);
/* Stops the thread, detaches the producer and frees the surface. NULL is fine. */
void vga_display_free(struct vga_display *d);
struct surface *vga_display_surface(struct vga_display *d);
/* Bring the surface up to date (what the surface producer hook runs). Returns the
 * number of damage rectangles reported (0: nothing changed). */
int vga_display_refresh(struct vga_display *d);

#endif
