/* Display surface: a framebuffer in shared memory (memfd) that a device side publishes
 * and any number of viewers (SDL console, screendump, a GTK tab in another process via
 * display-attach) read.
 *
 * The producer reports damage rectangles and mode changes; viewers poll
 * surface_take_damage() or get listener callbacks. A framebuffer the guest writes
 * directly (plain guest RAM) has no damage reports: viewers refresh it periodically. */
#ifndef LODGE_UI_SURFACE_H
#define LODGE_UI_SURFACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SURFACE_FORMAT_XRGB8888 1 /* little-endian 32-bit pixels: B, G, R, X bytes */
#define SURFACE_MAX_DAMAGE 16     /* rectangles kept before they collapse into one */
#define SURFACE_MAX_DIM 8192

struct surface_rect {
    uint32_t x, y, w, h;
};

struct surface_mode {
    uint32_t format; /* SURFACE_FORMAT_* */
    uint32_t width, height;
    uint32_t stride; /* bytes per line */
};

struct surface_listener {
    void *opaque;
    /* Both called on the producer's thread; keep them short. */
    void (*damage)(void *opaque, const struct surface_rect *r);
    void (*mode)(void *opaque, const struct surface_mode *mode);
};

struct surface;

/* A new surface with its own memfd of capacity bytes (>= width*height*4). 0 or -errno. */
int surface_new(uint32_t width, uint32_t height, size_t capacity, struct surface **out);
/* Wrap memory someone else owns (e.g. the guest framebuffer region); fd stays theirs. */
int surface_new_external(uint8_t *data, int fd, size_t capacity, const struct surface_mode *mode,
                         struct surface **out);
void surface_free(struct surface *s);

void surface_get_mode(struct surface *s, struct surface_mode *out);
uint8_t *surface_data(struct surface *s);
int surface_fd(struct surface *s);
size_t surface_capacity(struct surface *s);

/* Mode change: -EINVAL when it does not fit the capacity or the format is unknown.
 * Marks the whole new screen damaged and tells the listeners. */
int surface_set_mode(struct surface *s, const struct surface_mode *mode);
/* Report changed pixels; clipped to the screen; empty rectangles are ignored. */
void surface_damage(struct surface *s, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
/* Move up to max pending damage rectangles to out (non-overlapping after merging);
 * returns how many. The pending list is emptied. */
int surface_take_damage(struct surface *s, struct surface_rect *out, int max);

/* A producer that renders on demand (the VGA device: devices/display/vga_display.c)
 * instead of writing the pixels as they change. surface_refresh() asks it to bring the
 * pixels up to date (it reports damage and mode changes as usual); surface_take_damage()
 * and the screendump functions call it first, so in-process viewers need nothing else.
 * text() returns a text-mode screen as rows ending in '\n' (bytes written, NUL-terminated)
 * or -ENODEV when the screen is not text. Both run on the viewer's thread; listeners
 * must not call surface_refresh/surface_take_damage (the producer is running). */
struct surface_producer {
    void *opaque;
    void (*refresh)(void *opaque);
    int (*text)(void *opaque, char *out, size_t len);
};
/* Set (or with NULL clear) the producer; clear it before the producer goes away. */
void surface_set_producer(struct surface *s, const struct surface_producer *p);
bool surface_has_producer(struct surface *s);
void surface_refresh(struct surface *s);
/* The producer's text screen: bytes written or -ENODEV (graphics, no producer). */
int surface_text(struct surface *s, char *out, size_t len);

/* Returns an id for surface_remove_listener, or -ENOSPC. */
int surface_add_listener(struct surface *s, const struct surface_listener *l);
void surface_remove_listener(struct surface *s, int id);

/* Pure damage-list logic, exposed for tests: add r to list (n entries, capacity max),
 * merging it with every rectangle it overlaps or touches; when the list is full all
 * rectangles collapse into their bounding box. Returns the new count. */
int surface_rects_add(struct surface_rect *list, int n, int max, struct surface_rect r);

/* Write the visible screen as an 8-bit RGB PNG (ui/screendump.c). 0 or -errno. */
int surface_write_png(struct surface *s, const char *path);
/* Screendump by file name: PATH ending in ".txt" gets the text screen (-ENODEV when the
 * screen is graphics), anything else a PNG. 0 or -errno. */
int surface_screendump(struct surface *s, const char *path);

#endif
