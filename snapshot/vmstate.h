/* Versioned device state descriptions.
 *
 * A device describes its state as a table of fields with the version each was
 * added in, plus optional subsections (saved only when needed()) and a post_load
 * check. Loading goes into a scratch copy of the device struct; only when every
 * field parsed and post_load accepted the result is it copied over the live
 * device, so a bad stream is refused and never half-loads.
 *
 * Stream layout of one section (all little-endian):
 *   u32 name length, name bytes, u32 version, u32 payload length, payload,
 *   then for each present subsection: u8 1, a nested section; u8 0 ends the list. */
#ifndef LODGE_SNAPSHOT_VMSTATE_H
#define LODGE_SNAPSHOT_VMSTATE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vmstate_type {
    VMSTATE_U8,
    VMSTATE_U16,
    VMSTATE_U32,
    VMSTATE_U64,
    VMSTATE_I32,
    VMSTATE_I64,
    VMSTATE_BOOL,   /* stored as one byte; must be 0 or 1 */
    VMSTATE_BUFFER, /* raw bytes, size given by .size */
};

struct vmstate_field {
    const char *name;
    enum vmstate_type type;
    size_t offset;       /* offsetof() in the device struct */
    size_t count;        /* array length; 0 means 1 */
    size_t size;         /* VMSTATE_BUFFER only: bytes */
    int version_added;   /* absent from streams older than this (keeps its reset value) */
};

struct vmstate_desc {
    const char *name;
    int version;         /* written */
    int min_version;     /* oldest accepted */
    size_t struct_size;  /* sizeof the device struct, for the scratch copy */
    const struct vmstate_field *fields;  /* terminated by a field with name == NULL */
    const struct vmstate_desc *const *subsections; /* NULL-terminated, or NULL */
    bool (*needed)(const void *opaque);  /* subsections: save only when true */
    int (*post_load)(void *scratch, int version_id); /* 0 to accept, -EINVAL to refuse */
};

#define VMSTATE_FIELD(st, f, t) {.name = #f, .type = (t), .offset = offsetof(st, f)}
#define VMSTATE_ARRAY(st, f, t, n) {.name = #f, .type = (t), .offset = offsetof(st, f), .count = (n)}
#define VMSTATE_BUF(st, f) {.name = #f, .type = VMSTATE_BUFFER, .offset = offsetof(st, f), \
                            .size = sizeof(((st *)0)->f)}
#define VMSTATE_END {.name = NULL}

/* Append the section for opaque to out. 0 or -errno. */
int vmstate_save(const struct vmstate_desc *desc, const void *opaque, GByteArray *out);
/* Parse a section from buf into opaque (all or nothing). On success *consumed (if
 * not NULL) gets the bytes used. -EINVAL with a logged reason on a bad stream. */
int vmstate_load(const struct vmstate_desc *desc, void *opaque, const uint8_t *buf, size_t len,
                 size_t *consumed);

#endif
