#include "core/bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
    uint64_t base;
    uint64_t len;
    const struct bus_ops *ops;
    void *opaque;
    char name[32];
};

struct bus_table {
    size_t n;
    struct bus_table *retired_next; /* chain of old tables, freed in bus_free() */
    struct bus_range r[];
};

struct bus {
    char name[16];
    pthread_mutex_t lock;       /* serializes writers; readers take no lock */
    struct bus_table *table;    /* current table, read with acquire ordering */
    struct bus_table *retired;  /* tables replaced while readers may still hold them */
};

static struct bus_table *bus_table_alloc(size_t n)
{
    struct bus_table *t = calloc(1, sizeof(*t) + n * sizeof(struct bus_range));
    if (t) {
        t->n = n;
    }
    return t;
}

struct bus *bus_new(const char *name)
{
    struct bus *bus = calloc(1, sizeof(*bus));
    if (!bus) {
        return NULL;
    }
    snprintf(bus->name, sizeof(bus->name), "%s", name);
    pthread_mutex_init(&bus->lock, NULL);
    bus->table = bus_table_alloc(0);
    if (!bus->table) {
        free(bus);
        return NULL;
    }
    return bus;
}

void bus_free(struct bus *bus)
{
    if (!bus) {
        return;
    }
    free(bus->table);
    while (bus->retired) {
        struct bus_table *next = bus->retired->retired_next;
        free(bus->retired);
        bus->retired = next;
    }
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

static void bus_publish(struct bus *bus, struct bus_table *t)
{
    struct bus_table *old = bus->table;
    __atomic_store_n(&bus->table, t, __ATOMIC_RELEASE);
    old->retired_next = bus->retired;
    bus->retired = old;
}

static bool bus_overlaps(const struct bus_table *t, uint64_t base, uint64_t len, size_t skip)
{
    for (size_t i = 0; i < t->n; i++) {
        if (i != skip && base < t->r[i].base + t->r[i].len && t->r[i].base < base + len) {
            return true;
        }
    }
    return false;
}

/* Copy t into a new table with room for extra entries, sorted insert of nr if given. */
static struct bus_table *bus_table_with(const struct bus_table *t, const struct bus_range *nr,
                                        size_t drop)
{
    size_t n = t->n + (nr ? 1 : 0) - (drop < t->n ? 1 : 0);
    struct bus_table *nt = bus_table_alloc(n);
    if (!nt) {
        return NULL;
    }
    size_t j = 0;
    bool placed = nr == NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (i == drop) {
            continue;
        }
        if (!placed && nr->base < t->r[i].base) {
            nt->r[j++] = *nr;
            placed = true;
        }
        nt->r[j++] = t->r[i];
    }
    if (!placed) {
        nt->r[j++] = *nr;
    }
    return nt;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
                 void *opaque, const char *name)
{
    if (len == 0 || base + len < base || !ops) {
        return -EINVAL;
    }
    struct bus_range nr = {.base = base, .len = len, .ops = ops, .opaque = opaque};
    snprintf(nr.name, sizeof(nr.name), "%s", name ? name : "?");
    pthread_mutex_lock(&bus->lock);
    int ret = -EEXIST;
    if (!bus_overlaps(bus->table, base, len, SIZE_MAX)) {
        struct bus_table *nt = bus_table_with(bus->table, &nr, SIZE_MAX);
        ret = -ENOMEM;
        if (nt) {
            bus_publish(bus, nt);
            ret = 0;
        }
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

static size_t bus_find_owned(const struct bus_table *t, uint64_t base, void *opaque)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->r[i].base == base && t->r[i].opaque == opaque) {
            return i;
        }
    }
    return SIZE_MAX;
}

int bus_unregister(struct bus *bus, uint64_t base, void *opaque)
{
    pthread_mutex_lock(&bus->lock);
    int ret = -ENOENT;
    size_t i = bus_find_owned(bus->table, base, opaque);
    if (i != SIZE_MAX) {
        struct bus_table *nt = bus_table_with(bus->table, NULL, i);
        ret = -ENOMEM;
        if (nt) {
            bus_publish(bus, nt);
            ret = 0;
        }
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

int bus_move(struct bus *bus, uint64_t old_base, void *opaque, uint64_t new_base)
{
    pthread_mutex_lock(&bus->lock);
    int ret = -ENOENT;
    size_t i = bus_find_owned(bus->table, old_base, opaque);
    if (i != SIZE_MAX) {
        struct bus_range nr = bus->table->r[i];
        nr.base = new_base;
        ret = -EEXIST;
        if (new_base + nr.len >= new_base && !bus_overlaps(bus->table, new_base, nr.len, i)) {
            struct bus_table *nt = bus_table_with(bus->table, &nr, i);
            ret = -ENOMEM;
            if (nt) {
                bus_publish(bus, nt);
                ret = 0;
            }
        }
    }
    pthread_mutex_unlock(&bus->lock);
    return ret;
}

static const struct bus_range *bus_find(struct bus *bus, uint64_t addr)
{
    const struct bus_table *t = __atomic_load_n(&bus->table, __ATOMIC_ACQUIRE);
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct bus_range *r = &t->r[mid];
        if (addr < r->base) {
            hi = mid;
        } else if (addr - r->base >= r->len) {
            lo = mid + 1;
        } else {
            return r;
        }
    }
    return NULL;
}

bool bus_read(struct bus *bus, uint64_t addr, unsigned size, uint64_t *val)
{
    const struct bus_range *r = bus_find(bus, addr);
    if (!r || !r->ops->read) {
        *val = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
        return r != NULL;
    }
    *val = r->ops->read(r->opaque, addr - r->base, size);
    return true;
}

bool bus_write(struct bus *bus, uint64_t addr, unsigned size, uint64_t val)
{
    const struct bus_range *r = bus_find(bus, addr);
    if (!r) {
        return false;
    }
    if (r->ops->write) {
        r->ops->write(r->opaque, addr - r->base, val, size);
    }
    return true;
}

const char *bus_lookup_name(struct bus *bus, uint64_t addr)
{
    const struct bus_range *r = bus_find(bus, addr);
    return r ? r->name : NULL;
}
