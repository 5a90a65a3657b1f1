/* Unit tests for snapshot/vmstate: round trip, versions, subsections, refusal. */
#include "snapshot/vmstate.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

struct demo {
    uint8_t a;       /* v1 */
    uint16_t b;      /* v1 */
    uint32_t arr[3]; /* v1 */
    int64_t neg;     /* v1 */
    bool flag;       /* v1 */
    uint8_t blob[5]; /* v1 */
    uint64_t added;  /* v2 */
    uint32_t extra;  /* subsection "demo/extra", saved when non-zero */
    int refuse;      /* not saved: makes post_load refuse when set */
};

static int demo_post_load(void *scratch, int version_id)
{
    struct demo *d = scratch;
    /* The spec of this demo device: a must be below 200. */
    return d->a < 200 ? 0 : -EINVAL;
}

static bool demo_extra_needed(const void *opaque)
{
    const struct demo *d = opaque;
    return d->extra != 0;
}

static const struct vmstate_field demo_extra_fields[] = {
    VMSTATE_FIELD(struct demo, extra, VMSTATE_U32),
    VMSTATE_END,
};

static const struct vmstate_desc demo_extra_desc = {
    .name = "demo/extra",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct demo),
    .fields = demo_extra_fields,
    .needed = demo_extra_needed,
};

static const struct vmstate_desc *const demo_subs[] = {&demo_extra_desc, NULL};

static const struct vmstate_field demo_fields[] = {
    VMSTATE_FIELD(struct demo, a, VMSTATE_U8),
    VMSTATE_FIELD(struct demo, b, VMSTATE_U16),
    VMSTATE_ARRAY(struct demo, arr, VMSTATE_U32, 3),
    VMSTATE_FIELD(struct demo, neg, VMSTATE_I64),
    VMSTATE_FIELD(struct demo, flag, VMSTATE_BOOL),
    VMSTATE_BUF(struct demo, blob),
    {.name = "added",
     .type = VMSTATE_U64,
     .offset = offsetof(struct demo, added),
     .version_added = 2},
    VMSTATE_END,
};

static const struct vmstate_desc demo_v2 = {
    .name = "demo",
    .version = 2,
    .min_version = 1,
    .struct_size = sizeof(struct demo),
    .fields = demo_fields,
    .subsections = demo_subs,
    .post_load = demo_post_load,
};

/* The same device as an older build described it. */
static const struct vmstate_desc demo_v1 = {
    .name = "demo",
    .version = 1,
    .min_version = 1,
    .struct_size = sizeof(struct demo),
    .fields = demo_fields,
    .post_load = demo_post_load,
};

/* A newer build that no longer accepts version 1 streams. */
static const struct vmstate_desc demo_v3_min2 = {
    .name = "demo",
    .version = 3,
    .min_version = 2,
    .struct_size = sizeof(struct demo),
    .fields = demo_fields,
    .subsections = demo_subs,
};

static struct demo demo_sample(void)
{
    struct demo d = {.a = 7,
                     .b = 0xbeef,
                     .arr = {1, 2, 0xffffffffu},
                     .neg = -5,
                     .flag = true,
                     .blob = {9, 8, 7, 6, 5},
                     .added = 0x1122334455667788ull,
                     .extra = 42};
    return d;
}

static void test_round_trip(void)
{
    struct demo src = demo_sample(), dst;
    memset(&dst, 0, sizeof(dst));
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &src, out), 0);
    size_t used = 0;
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, out->data, out->len, &used), 0);
    CU_ASSERT_EQUAL(used, out->len);
    CU_ASSERT_EQUAL(dst.a, 7);
    CU_ASSERT_EQUAL(dst.b, 0xbeef);
    CU_ASSERT_EQUAL(dst.arr[2], 0xffffffffu);
    CU_ASSERT_EQUAL(dst.neg, -5);
    CU_ASSERT_TRUE(dst.flag);
    CU_ASSERT_EQUAL(memcmp(dst.blob, src.blob, sizeof(src.blob)), 0);
    CU_ASSERT_EQUAL(dst.added, 0x1122334455667788ull);
    CU_ASSERT_EQUAL(dst.extra, 42);
    g_byte_array_free(out, TRUE);
}

static void test_layout_little_endian(void)
{
    struct demo src = demo_sample();
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &src, out), 0);
    /* u32 name length 4, "demo", u32 version 2, then payload length and a = 7. */
    static const uint8_t head[] = {4, 0, 0, 0, 'd', 'e', 'm', 'o', 2, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(out->data, head, sizeof(head)), 0);
    CU_ASSERT_EQUAL(out->data[16], 7);
    CU_ASSERT_EQUAL(out->data[17], 0xef);
    CU_ASSERT_EQUAL(out->data[18], 0xbe);
    g_byte_array_free(out, TRUE);
}

static void test_subsection_skipped_when_not_needed(void)
{
    struct demo with = demo_sample(), without = demo_sample();
    without.extra = 0;
    GByteArray *a = g_byte_array_new(), *b = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &with, a), 0);
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &without, b), 0);
    CU_ASSERT_TRUE(a->len > b->len);
    CU_ASSERT_EQUAL(b->data[b->len - 1], 0);
    /* A target whose extra is already set keeps it when the stream omits it. */
    struct demo dst = {.extra = 99};
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, b->data, b->len, NULL), 0);
    CU_ASSERT_EQUAL(dst.extra, 99);
    CU_ASSERT_EQUAL(dst.a, 7);
    g_byte_array_free(a, TRUE);
    g_byte_array_free(b, TRUE);
}

static void test_older_version_keeps_reset_values(void)
{
    struct demo src = demo_sample();
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v1, &src, out), 0);
    struct demo dst = {.added = 0xabcdu}; /* the new field's reset value */
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, out->data, out->len, NULL), 0);
    CU_ASSERT_EQUAL(dst.added, 0xabcdu);
    CU_ASSERT_EQUAL(dst.b, 0xbeef);
    g_byte_array_free(out, TRUE);
}

static void test_too_old_and_too_new_refused(void)
{
    struct demo src = demo_sample();
    GByteArray *v1 = g_byte_array_new(), *v3 = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v1, &src, v1), 0);
    CU_ASSERT_EQUAL(vmstate_save(&demo_v3_min2, &src, v3), 0);
    struct demo dst = {.a = 1};
    CU_ASSERT_EQUAL(vmstate_load(&demo_v3_min2, &dst, v1->data, v1->len, NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, v3->data, v3->len, NULL), -EINVAL);
    CU_ASSERT_EQUAL(dst.a, 1);
    g_byte_array_free(v1, TRUE);
    g_byte_array_free(v3, TRUE);
}

static void test_truncated_refused_target_untouched(void)
{
    struct demo src = demo_sample();
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &src, out), 0);
    struct demo orig = {.a = 3, .b = 4, .extra = 5};
    /* Every proper prefix must be refused, and the target must stay bit-identical. */
    for (size_t cut = 0; cut < out->len; cut++) {
        struct demo dst = orig;
        CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, out->data, cut, NULL), -EINVAL);
        CU_ASSERT_EQUAL(memcmp(&dst, &orig, sizeof(orig)), 0);
    }
    g_byte_array_free(out, TRUE);
}

static void test_garbage_refused(void)
{
    struct demo src = demo_sample(), dst = {0};
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &src, out), 0);
    GByteArray *bad = g_byte_array_new();
    g_byte_array_append(bad, out->data, out->len);
    bad->data[4] = 'X'; /* wrong section name */
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, bad->data, bad->len, NULL), -EINVAL);
    memcpy(bad->data, out->data, out->len);
    /* flag is the byte after a(1) b(2) arr(12) neg(8): offset 16 + 23 = 39. */
    bad->data[39] = 2;
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, bad->data, bad->len, NULL), -EINVAL);
    memcpy(bad->data, out->data, out->len);
    bad->data[12] += 1; /* payload length one too long */
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, bad->data, bad->len, NULL), -EINVAL);
    memcpy(bad->data, out->data, out->len);
    bad->data[bad->len - 1] = 7; /* bad end-of-subsections marker */
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, bad->data, bad->len, NULL), -EINVAL);
    CU_ASSERT_EQUAL(dst.a, 0);
    g_byte_array_free(bad, TRUE);
    g_byte_array_free(out, TRUE);
}

static void test_post_load_refusal_target_untouched(void)
{
    struct demo src = demo_sample();
    src.a = 250; /* post_load refuses */
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &src, out), 0);
    struct demo orig = {.a = 1, .b = 2, .extra = 3}, dst = orig;
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &dst, out->data, out->len, NULL), -EINVAL);
    CU_ASSERT_EQUAL(memcmp(&dst, &orig, sizeof(orig)), 0);
    g_byte_array_free(out, TRUE);
}

static void test_two_sections_in_one_stream(void)
{
    struct demo s1 = demo_sample(), s2 = demo_sample(), d1 = {0}, d2 = {0};
    s2.b = 0x1234;
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &s1, out), 0);
    CU_ASSERT_EQUAL(vmstate_save(&demo_v2, &s2, out), 0);
    size_t used = 0, used2 = 0;
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &d1, out->data, out->len, &used), 0);
    CU_ASSERT_EQUAL(vmstate_load(&demo_v2, &d2, out->data + used, out->len - used, &used2), 0);
    CU_ASSERT_EQUAL(used + used2, out->len);
    CU_ASSERT_EQUAL(d2.b, 0x1234);
    g_byte_array_free(out, TRUE);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("vmstate", NULL, NULL);
    CU_add_test(s, "round trip", test_round_trip);
    CU_add_test(s, "little-endian layout", test_layout_little_endian);
    CU_add_test(s, "subsection only when needed", test_subsection_skipped_when_not_needed);
    CU_add_test(s, "older version keeps reset values", test_older_version_keeps_reset_values);
    CU_add_test(s, "too old / too new refused", test_too_old_and_too_new_refused);
    CU_add_test(s, "truncated refused, target untouched", test_truncated_refused_target_untouched);
    CU_add_test(s, "garbage refused", test_garbage_refused);
    CU_add_test(s, "post_load refusal, target untouched", test_post_load_refusal_target_untouched);
    CU_add_test(s, "two sections in one stream", test_two_sections_in_one_stream);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
