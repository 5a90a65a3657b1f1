/* Versioned device state streams (layout in vmstate.h).
 *
 * Loading parses into a scratch copy of the target struct and copies it over the
 * target only after every field, every subsection and every post_load accepted, so
 * a truncated or hostile stream leaves the live device exactly as it was. */
#include "snapshot/vmstate.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VMSTATE_TAG "snapshot.vmstate"
/* A section name longer than this is garbage, not a device name. */
#define VMSTATE_NAME_MAX 256
/* Subsections nest; a stream nesting deeper than this is hostile. */
#define VMSTATE_MAX_DEPTH 8

static size_t vmstate_type_size(const struct vmstate_field *f)
{
    switch (f->type) {
    case VMSTATE_U8:
    case VMSTATE_BOOL:
        return 1;
    case VMSTATE_U16:
        return 2;
    case VMSTATE_U32:
    case VMSTATE_I32:
        return 4;
    case VMSTATE_U64:
    case VMSTATE_I64:
        return 8;
    case VMSTATE_BUFFER:
        return f->size;
    }
    return 0;
}

static size_t vmstate_field_count(const struct vmstate_field *f)
{
    return f->count ? f->count : 1;
}

static void vmstate_put_le(GByteArray *out, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    g_byte_array_append(out, b, (guint)n);
}

static uint64_t vmstate_get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

/* Reads one element of a scalar field from host memory as an integer. */
static uint64_t vmstate_elem_get(const struct vmstate_field *f, const uint8_t *p)
{
    switch (f->type) {
    case VMSTATE_U8:
        return *p;
    case VMSTATE_BOOL:
        return *(const bool *)p ? 1 : 0;
    case VMSTATE_U16: {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    case VMSTATE_U32:
    case VMSTATE_I32: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    case VMSTATE_U64:
    case VMSTATE_I64: {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    case VMSTATE_BUFFER:
        break;
    }
    return 0;
}

static void vmstate_elem_set(const struct vmstate_field *f, uint8_t *p, uint64_t v)
{
    switch (f->type) {
    case VMSTATE_U8:
        *p = (uint8_t)v;
        break;
    case VMSTATE_BOOL:
        *(bool *)p = v != 0;
        break;
    case VMSTATE_U16: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, sizeof(x));
        break;
    }
    case VMSTATE_U32:
    case VMSTATE_I32: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, sizeof(x));
        break;
    }
    case VMSTATE_U64:
    case VMSTATE_I64:
        memcpy(p, &v, sizeof(v));
        break;
    case VMSTATE_BUFFER:
        break;
    }
}

/* Host-memory stride of one array element. */
static size_t vmstate_elem_stride(const struct vmstate_field *f)
{
    if (f->type == VMSTATE_BOOL) {
        return sizeof(bool);
    }
    return vmstate_type_size(f);
}

static int vmstate_save_section(const struct vmstate_desc *desc, const void *opaque,
                                GByteArray *out, int depth)
{
    if (depth > VMSTATE_MAX_DEPTH) {
        return -ELOOP;
    }
    const uint8_t *base = opaque;
    size_t name_len = strlen(desc->name);
    vmstate_put_le(out, name_len, 4);
    g_byte_array_append(out, (const guint8 *)desc->name, (guint)name_len);
    vmstate_put_le(out, (uint32_t)desc->version, 4);
    guint len_pos = out->len;
    vmstate_put_le(out, 0, 4);
    for (const struct vmstate_field *f = desc->fields; f && f->name; f++) {
        if (f->version_added > desc->version) {
            continue;
        }
        size_t stride = vmstate_elem_stride(f);
        for (size_t i = 0; i < vmstate_field_count(f); i++) {
            const uint8_t *p = base + f->offset + i * stride;
            if (f->type == VMSTATE_BUFFER) {
                g_byte_array_append(out, p, (guint)f->size);
            } else {
                vmstate_put_le(out, vmstate_elem_get(f, p), vmstate_type_size(f));
            }
        }
    }
    uint32_t payload = out->len - len_pos - 4;
    for (int i = 0; i < 4; i++) {
        out->data[len_pos + i] = (uint8_t)(payload >> (8 * i));
    }
    for (const struct vmstate_desc *const *sub = desc->subsections; sub && *sub; sub++) {
        if ((*sub)->needed && !(*sub)->needed(opaque)) {
            continue;
        }
        uint8_t one = 1;
        g_byte_array_append(out, &one, 1);
        int ret = vmstate_save_section(*sub, opaque, out, depth + 1);
        if (ret < 0) {
            return ret;
        }
    }
    uint8_t zero = 0;
    g_byte_array_append(out, &zero, 1);
    return 0;
}

int vmstate_save(const struct vmstate_desc *desc, const void *opaque, GByteArray *out)
{
    if (!desc || !desc->name || !opaque || !out) {
        return -EINVAL;
    }
    guint start = out->len;
    int ret = vmstate_save_section(desc, opaque, out, 0);
    if (ret < 0) {
        g_byte_array_set_size(out, start);
    }
    return ret;
}

struct vmstate_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
};

static bool vmstate_read_le(struct vmstate_reader *r, size_t n, uint64_t *v)
{
    if (r->len - r->pos < n) {
        return false;
    }
    *v = vmstate_get_le(r->buf + r->pos, n);
    r->pos += n;
    return true;
}

/* Parses one section into scratch (the whole struct: subsections describe fields of
 * the same struct, as in QEMU). top names the outermost section for messages. */
static int vmstate_load_section(const struct vmstate_desc *desc, uint8_t *scratch,
                                struct vmstate_reader *r, int depth, const char *top)
{
    uint64_t name_len, version, payload;
    if (!vmstate_read_le(r, 4, &name_len)) {
        log_warn(VMSTATE_TAG, "%s: stream truncated before section header", top);
        return -EINVAL;
    }
    if (name_len != strlen(desc->name) || r->len - r->pos < name_len ||
        memcmp(r->buf + r->pos, desc->name, name_len) != 0) {
        log_warn(VMSTATE_TAG, "%s: expected section '%s', stream has another or is garbage", top,
                 desc->name);
        return -EINVAL;
    }
    r->pos += name_len;
    if (!vmstate_read_le(r, 4, &version) || !vmstate_read_le(r, 4, &payload)) {
        log_warn(VMSTATE_TAG, "%s: section '%s' truncated in its header", top, desc->name);
        return -EINVAL;
    }
    if ((int64_t)version > desc->version || (int64_t)version < desc->min_version) {
        log_warn(VMSTATE_TAG, "%s: section '%s' version %u not in accepted range %d..%d", top,
                 desc->name, (unsigned)version, desc->min_version, desc->version);
        return -EINVAL;
    }
    if (r->len - r->pos < payload) {
        log_warn(VMSTATE_TAG, "%s: section '%s' truncated (payload %u bytes, %zu left)", top,
                 desc->name, (unsigned)payload, r->len - r->pos);
        return -EINVAL;
    }
    size_t payload_end = r->pos + payload;
    for (const struct vmstate_field *f = desc->fields; f && f->name; f++) {
        if (f->version_added > (int)version) {
            continue; /* absent from this older stream: keeps its current (reset) value */
        }
        size_t esize = vmstate_type_size(f);
        size_t stride = vmstate_elem_stride(f);
        for (size_t i = 0; i < vmstate_field_count(f); i++) {
            if (payload_end - r->pos < esize) {
                log_warn(VMSTATE_TAG, "%s: section '%s' field '%s' truncated", top, desc->name,
                         f->name);
                return -EINVAL;
            }
            uint8_t *p = scratch + f->offset + i * stride;
            if (f->type == VMSTATE_BUFFER) {
                memcpy(p, r->buf + r->pos, esize);
            } else {
                uint64_t v = vmstate_get_le(r->buf + r->pos, esize);
                if (f->type == VMSTATE_BOOL && v > 1) {
                    log_warn(VMSTATE_TAG, "%s: section '%s' field '%s' is not a bool", top,
                             desc->name, f->name);
                    return -EINVAL;
                }
                vmstate_elem_set(f, p, v);
            }
            r->pos += esize;
        }
    }
    if (r->pos != payload_end) {
        log_warn(VMSTATE_TAG, "%s: section '%s' payload has %zu unexpected bytes", top, desc->name,
                 payload_end - r->pos);
        return -EINVAL;
    }
    for (;;) {
        uint64_t marker;
        if (!vmstate_read_le(r, 1, &marker)) {
            log_warn(VMSTATE_TAG, "%s: section '%s' truncated in its subsection list", top,
                     desc->name);
            return -EINVAL;
        }
        if (marker == 0) {
            break;
        }
        if (marker != 1 || depth >= VMSTATE_MAX_DEPTH) {
            log_warn(VMSTATE_TAG, "%s: section '%s' has a bad subsection marker", top, desc->name);
            return -EINVAL;
        }
        /* Peek at the subsection's name to pick its description. */
        uint64_t sub_len;
        size_t save = r->pos;
        if (!vmstate_read_le(r, 4, &sub_len) || sub_len > VMSTATE_NAME_MAX ||
            r->len - r->pos < sub_len) {
            log_warn(VMSTATE_TAG, "%s: section '%s' subsection header truncated", top, desc->name);
            return -EINVAL;
        }
        const struct vmstate_desc *match = NULL;
        for (const struct vmstate_desc *const *sub = desc->subsections; sub && *sub; sub++) {
            if (strlen((*sub)->name) == sub_len &&
                memcmp((*sub)->name, r->buf + r->pos, sub_len) == 0) {
                match = *sub;
                break;
            }
        }
        if (!match) {
            log_warn(VMSTATE_TAG, "%s: section '%s' has unknown subsection '%.*s'", top, desc->name,
                     (int)sub_len, (const char *)r->buf + r->pos);
            return -EINVAL;
        }
        r->pos = save;
        int ret = vmstate_load_section(match, scratch, r, depth + 1, top);
        if (ret < 0) {
            return ret;
        }
    }
    if (desc->post_load) {
        int ret = desc->post_load(scratch, (int)version);
        if (ret < 0) {
            log_warn(VMSTATE_TAG, "%s: section '%s' refused by its post_load check", top,
                     desc->name);
            return -EINVAL;
        }
    }
    return 0;
}

int vmstate_load(const struct vmstate_desc *desc, void *opaque, const uint8_t *buf, size_t len,
                 size_t *consumed)
{
    if (!desc || !desc->name || !opaque || (!buf && len)) {
        return -EINVAL;
    }
    uint8_t *scratch = malloc(desc->struct_size ? desc->struct_size : 1);
    if (!scratch) {
        return -ENOMEM;
    }
    /* Fields absent from an older stream keep the target's current values. */
    memcpy(scratch, opaque, desc->struct_size);
    struct vmstate_reader r = {.buf = buf, .len = len, .pos = 0};
    int ret = vmstate_load_section(desc, scratch, &r, 0, desc->name);
    if (ret == 0) {
        memcpy(opaque, scratch, desc->struct_size);
        if (consumed) {
            *consumed = r.pos;
        }
    }
    free(scratch);
    return ret;
}
