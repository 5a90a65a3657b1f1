/* Display surface: shared-memory framebuffer, damage list, mode changes, listeners. */
#include "ui/surface.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SURFACE_MAX_LISTENERS 8

struct surface {
    pthread_mutex_t lock; /* mode, damage and listeners */
    struct surface_mode mode;
    uint8_t *data;
    int fd;
    size_t capacity;
    bool owned; /* data and fd are ours to unmap/close */
    struct surface_rect damage[SURFACE_MAX_DAMAGE];
    int ndamage;
    struct surface_listener listeners[SURFACE_MAX_LISTENERS];
    bool used[SURFACE_MAX_LISTENERS];
    struct surface_producer producer; /* on-demand renderer, or all NULL */
    pthread_mutex_t producer_lock;    /* held while it runs: set_producer waits for it */
};

static bool surface_mode_ok(const struct surface_mode *m, size_t capacity)
{
    if (m->format != SURFACE_FORMAT_XRGB8888 || m->width == 0 || m->height == 0 ||
        m->width > SURFACE_MAX_DIM || m->height > SURFACE_MAX_DIM) {
        return false;
    }
    if (m->stride < m->width * 4u) {
        return false;
    }
    return (uint64_t)m->stride * m->height <= capacity;
}

static int surface_init(struct surface *s, const struct surface_mode *mode)
{
    if (!surface_mode_ok(mode, s->capacity)) {
        return -EINVAL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->producer_lock, NULL);
    s->mode = *mode;
    s->damage[0] = (struct surface_rect){0, 0, mode->width, mode->height};
    s->ndamage = 1;
    return 0;
}

int surface_new(uint32_t width, uint32_t height, size_t capacity, struct surface **out)
{
    struct surface_mode mode = {SURFACE_FORMAT_XRGB8888, width, height, width * 4u};
    if (width == 0 || height == 0 || width > SURFACE_MAX_DIM || height > SURFACE_MAX_DIM) {
        return -EINVAL;
    }
    size_t need = (size_t)width * height * 4;
    if (capacity < need) {
        capacity = need;
    }
    struct surface *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->fd = memfd_create("lodge-surface", MFD_CLOEXEC);
    if (s->fd < 0 || ftruncate(s->fd, (off_t)capacity) < 0) {
        int e = errno;
        if (s->fd >= 0) {
            close(s->fd);
        }
        free(s);
        return -e;
    }
    s->data = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (s->data == MAP_FAILED) {
        int e = errno;
        close(s->fd);
        free(s);
        return -e;
    }
    s->capacity = capacity;
    s->owned = true;
    surface_init(s, &mode);
    *out = s;
    return 0;
}

int surface_new_external(uint8_t *data, int fd, size_t capacity, const struct surface_mode *mode,
                         struct surface **out)
{
    struct surface *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->data = data;
    s->fd = fd;
    s->capacity = capacity;
    int rc = surface_init(s, mode);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void surface_free(struct surface *s)
{
    if (!s) {
        return;
    }
    if (s->owned) {
        munmap(s->data, s->capacity);
        close(s->fd);
    }
    pthread_mutex_destroy(&s->producer_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void surface_set_producer(struct surface *s, const struct surface_producer *p)
{
    pthread_mutex_lock(&s->producer_lock);
    if (p) {
        s->producer = *p;
    } else {
        memset(&s->producer, 0, sizeof(s->producer));
    }
    pthread_mutex_unlock(&s->producer_lock);
}

bool surface_has_producer(struct surface *s)
{
    pthread_mutex_lock(&s->producer_lock);
    bool has = s->producer.refresh != NULL;
    pthread_mutex_unlock(&s->producer_lock);
    return has;
}

void surface_refresh(struct surface *s)
{
    pthread_mutex_lock(&s->producer_lock);
    if (s->producer.refresh) {
        s->producer.refresh(s->producer.opaque);
    }
    pthread_mutex_unlock(&s->producer_lock);
}

int surface_text(struct surface *s, char *out, size_t len)
{
    int rc = -ENODEV;
    pthread_mutex_lock(&s->producer_lock);
    if (s->producer.text) {
        rc = s->producer.text(s->producer.opaque, out, len);
    }
    pthread_mutex_unlock(&s->producer_lock);
    return rc;
}

void surface_get_mode(struct surface *s, struct surface_mode *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->mode;
    pthread_mutex_unlock(&s->lock);
}

uint8_t *surface_data(struct surface *s)
{
    return s->data;
}

int surface_fd(struct surface *s)
{
    return s->fd;
}

size_t surface_capacity(struct surface *s)
{
    return s->capacity;
}

int surface_set_mode(struct surface *s, const struct surface_mode *mode)
{
    if (!surface_mode_ok(mode, s->capacity)) {
        return -EINVAL;
    }
    struct surface_listener ls[SURFACE_MAX_LISTENERS];
    int nl = 0;
    pthread_mutex_lock(&s->lock);
    s->mode = *mode;
    s->damage[0] = (struct surface_rect){0, 0, mode->width, mode->height};
    s->ndamage = 1;
    for (int i = 0; i < SURFACE_MAX_LISTENERS; i++) {
        if (s->used[i]) {
            ls[nl++] = s->listeners[i];
        }
    }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < nl; i++) {
        if (ls[i].mode) {
            ls[i].mode(ls[i].opaque, mode);
        }
    }
    return 0;
}

static bool surface_rects_touch(const struct surface_rect *a, const struct surface_rect *b)
{
    return a->x <= b->x + b->w && b->x <= a->x + a->w && a->y <= b->y + b->h && b->y <= a->y + a->h;
}

static struct surface_rect surface_rects_union(struct surface_rect a, struct surface_rect b)
{
    uint32_t x0 = a.x < b.x ? a.x : b.x;
    uint32_t y0 = a.y < b.y ? a.y : b.y;
    uint32_t x1 = a.x + a.w > b.x + b.w ? a.x + a.w : b.x + b.w;
    uint32_t y1 = a.y + a.h > b.y + b.h ? a.y + a.h : b.y + b.h;
    return (struct surface_rect){x0, y0, x1 - x0, y1 - y0};
}

int surface_rects_add(struct surface_rect *list, int n, int max, struct surface_rect r)
{
    if (r.w == 0 || r.h == 0 || max <= 0) {
        return n;
    }
    /* Absorbing a rectangle can make r touch one already passed: rescan until stable. */
    bool merged = true;
    while (merged) {
        merged = false;
        for (int i = 0; i < n; i++) {
            if (surface_rects_touch(&list[i], &r)) {
                r = surface_rects_union(r, list[i]);
                list[i] = list[--n];
                merged = true;
                break;
            }
        }
    }
    if (n < max) {
        list[n++] = r;
        return n;
    }
    for (int i = 0; i < n; i++) {
        r = surface_rects_union(r, list[i]);
    }
    list[0] = r;
    return 1;
}

void surface_damage(struct surface *s, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    struct surface_listener ls[SURFACE_MAX_LISTENERS];
    int nl = 0;
    pthread_mutex_lock(&s->lock);
    if (x >= s->mode.width || y >= s->mode.height) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    if (w > s->mode.width - x) {
        w = s->mode.width - x;
    }
    if (h > s->mode.height - y) {
        h = s->mode.height - y;
    }
    struct surface_rect r = {x, y, w, h};
    s->ndamage = surface_rects_add(s->damage, s->ndamage, SURFACE_MAX_DAMAGE, r);
    for (int i = 0; i < SURFACE_MAX_LISTENERS; i++) {
        if (s->used[i]) {
            ls[nl++] = s->listeners[i];
        }
    }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < nl; i++) {
        if (ls[i].damage && w && h) {
            ls[i].damage(ls[i].opaque, &r);
        }
    }
}

int surface_take_damage(struct surface *s, struct surface_rect *out, int max)
{
    surface_refresh(s);
    pthread_mutex_lock(&s->lock);
    int n = 0;
    if (s->ndamage > max && max > 0) {
        /* Not enough room: hand out one bounding box instead of losing any. */
        struct surface_rect r = s->damage[0];
        for (int i = 1; i < s->ndamage; i++) {
            r = surface_rects_union(r, s->damage[i]);
        }
        out[0] = r;
        n = 1;
    } else if (max > 0) {
        n = s->ndamage;
        memcpy(out, s->damage, (size_t)n * sizeof(*out));
    }
    if (max > 0) {
        s->ndamage = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

int surface_add_listener(struct surface *s, const struct surface_listener *l)
{
    int id = -ENOSPC;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < SURFACE_MAX_LISTENERS; i++) {
        if (!s->used[i]) {
            s->used[i] = true;
            s->listeners[i] = *l;
            id = i;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return id;
}

void surface_remove_listener(struct surface *s, int id)
{
    if (id < 0 || id >= SURFACE_MAX_LISTENERS) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->used[id] = false;
    pthread_mutex_unlock(&s->lock);
}
