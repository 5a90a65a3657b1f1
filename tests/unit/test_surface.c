/* Unit tests for ui/surface: damage merging, clipping, mode changes, listeners. */
#include "ui/surface.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct surface_rect R(uint32_t x, uint32_t y, uint32_t w, uint32_t h) {
    return (struct surface_rect){x, y, w, h};
}

static void
test_disjoint_kept(void)
{
    struct surface_rect l[4];
    int n = 0;
    n = surface_rects_add(l, n, 4, R(0, 0, 10, 10));
    n = surface_rects_add(l, n, 4, R(100, 100, 10, 10));
    CU_ASSERT_EQUAL(n, 2);
}

static void test_overlap_merged(void)
{
    struct surface_rect l[4];
    int n = 0;
    n = surface_rects_add(l, n, 4, R(0, 0, 10, 10));
    n = surface_rects_add(l, n, 4, R(5, 5, 10, 10));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(l[0].x, 0);
    CU_ASSERT_EQUAL(l[0].y, 0);
    CU_ASSERT_EQUAL(l[0].w, 15);
    CU_ASSERT_EQUAL(l[0].h, 15);
    /* Touching edges merge too (one upload instead of two). */
    n = surface_rects_add(l, n, 4, R(15, 0, 5, 5));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(l[0].w, 20);
}

static void test_chain_merge(void)
{
    /* A rectangle bridging two existing ones merges all three. */
    struct surface_rect l[4];
    int n = 0;
    n = surface_rects_add(l, n, 4, R(0, 0, 10, 10));
    n = surface_rects_add(l, n, 4, R(50, 0, 10, 10));
    CU_ASSERT_EQUAL(n, 2);
    n = surface_rects_add(l, n, 4, R(5, 0, 50, 2));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(l[0].x, 0);
    CU_ASSERT_EQUAL(l[0].w, 60);
    CU_ASSERT_EQUAL(l[0].h, 10);
}

static void test_full_list_collapses(void)
{
    struct surface_rect l[3];
    int n = 0;
    n = surface_rects_add(l, n, 3, R(0, 0, 1, 1));
    n = surface_rects_add(l, n, 3, R(10, 10, 1, 1));
    n = surface_rects_add(l, n, 3, R(20, 20, 1, 1));
    CU_ASSERT_EQUAL(n, 3);
    n = surface_rects_add(l, n, 3, R(30, 40, 2, 2));
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(l[0].x, 0);
    CU_ASSERT_EQUAL(l[0].y, 0);
    CU_ASSERT_EQUAL(l[0].w, 32);
    CU_ASSERT_EQUAL(l[0].h, 42);
    /* Empty rectangles are no damage. */
    CU_ASSERT_EQUAL(surface_rects_add(l, n, 3, R(5, 5, 0, 9)), 1);
}

struct counter {
    int damage, mode;
    struct surface_rect last;
};

static void count_damage(void *opaque, const struct surface_rect *r)
{
    struct counter *c = opaque;
    c->damage++;
    c->last = *r;
}

static void count_mode(void *opaque, const struct surface_mode *m)
{
    ((struct counter *)opaque)->mode++;
}

static void test_surface_damage_and_mode(void)
{
    struct surface *s;
    CU_ASSERT_EQUAL_FATAL(surface_new(64, 32, 0, &s), 0);
    struct surface_rect out[SURFACE_MAX_DAMAGE];
    /* A new surface is entirely damaged. */
    CU_ASSERT_EQUAL(surface_take_damage(s, out, SURFACE_MAX_DAMAGE), 1);
    CU_ASSERT_EQUAL(out[0].w, 64);
    CU_ASSERT_EQUAL(out[0].h, 32);
    CU_ASSERT_EQUAL(surface_take_damage(s, out, SURFACE_MAX_DAMAGE), 0);

    struct counter c = {0};
    struct surface_listener l = {.opaque = &c, .damage = count_damage, .mode = count_mode};
    int id = surface_add_listener(s, &l);
    CU_ASSERT(id >= 0);
    /* Clipped to the screen; off-screen damage is dropped. */
    surface_damage(s, 60, 30, 100, 100);
    CU_ASSERT_EQUAL(c.damage, 1);
    CU_ASSERT_EQUAL(c.last.w, 4);
    CU_ASSERT_EQUAL(c.last.h, 2);
    surface_damage(s, 64, 0, 1, 1);
    surface_damage(s, 0, 4000000000u, 1, 1);
    CU_ASSERT_EQUAL(c.damage, 1);
    CU_ASSERT_EQUAL(surface_take_damage(s, out, SURFACE_MAX_DAMAGE), 1);

    /* Two disjoint rectangles, one slot: the bounding box, nothing lost. */
    surface_damage(s, 0, 0, 2, 2);
    surface_damage(s, 40, 20, 2, 2);
    CU_ASSERT_EQUAL(surface_take_damage(s, out, 1), 1);
    CU_ASSERT_EQUAL(out[0].w, 42);
    CU_ASSERT_EQUAL(out[0].h, 22);

    /* Mode changes must fit the shared memory. */
    struct surface_mode big = {SURFACE_FORMAT_XRGB8888, 128, 128, 512};
    CU_ASSERT_EQUAL(surface_set_mode(s, &big), -EINVAL);
    struct surface_mode bad_stride = {SURFACE_FORMAT_XRGB8888, 32, 16, 64};
    CU_ASSERT_EQUAL(surface_set_mode(s, &bad_stride), -EINVAL);
    struct surface_mode small = {SURFACE_FORMAT_XRGB8888, 32, 16, 128};
    CU_ASSERT_EQUAL(surface_set_mode(s, &small), 0);
    CU_ASSERT_EQUAL(c.mode, 1);
    CU_ASSERT_EQUAL(surface_take_damage(s, out, SURFACE_MAX_DAMAGE), 1);
    CU_ASSERT_EQUAL(out[0].w, 32);
    c.damage = 0;
    surface_remove_listener(s, id);
    surface_damage(s, 0, 0, 1, 1);
    CU_ASSERT_EQUAL(c.damage, 0);
    surface_free(s);
}

static void test_surface_shared_memory(void)
{
    /* A viewer mapping the memfd sees the producer's pixels. */
    struct surface *s;
    CU_ASSERT_EQUAL_FATAL(surface_new(16, 16, 0, &s), 0);
    int fd = surface_fd(s);
    CU_ASSERT(fd >= 0);
    uint8_t *view = mmap(NULL, surface_capacity(s), PROT_READ, MAP_SHARED, fd, 0);
    CU_ASSERT_FATAL(view != MAP_FAILED);
    surface_data(s)[4 * 17] = 0xab;
    CU_ASSERT_EQUAL(view[4 * 17], 0xab);
    munmap(view, surface_capacity(s));
    surface_free(s);
    CU_ASSERT_EQUAL(surface_new(0, 16, 0, &s), -EINVAL);
    CU_ASSERT_EQUAL(surface_new(SURFACE_MAX_DIM + 1, 16, 0, &s), -EINVAL);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("surface", NULL, NULL);
    CU_add_test(s, "disjoint damage kept", test_disjoint_kept);
    CU_add_test(s, "overlapping damage merged", test_overlap_merged);
    CU_add_test(s, "bridging rectangle merges a chain", test_chain_merge);
    CU_add_test(s, "full list collapses to bounding box", test_full_list_collapses);
    CU_add_test(s, "surface damage, clipping and modes", test_surface_damage_and_mode);
    CU_add_test(s, "shared memory", test_surface_shared_memory);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
