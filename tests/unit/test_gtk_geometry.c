/* lodge-gui's console tab geometry (ui/gtk_geometry.h): where the scaled guest screen sits
 * in the tab and which tablet coordinates a pointer position over it becomes. */
#include "ui/gtk_geometry.h"

#include <CUnit/Basic.h>

/* At 1:1 the tab maps like the SDL console: window pixel (512,384) of a 1024x768 screen
 * arrives as ABS_X 16399, ABS_Y 16404 (tests/guest/input_sdl.sh sees the same), and the
 * first and last pixels are the ends of the tablet's range. */
static void test_unscaled(void)
{
    struct gui_fit f;
    int x, y;
    CU_ASSERT_EQUAL_FATAL(gui_fit_compute(1024, 768, 1024, 768, &f), 0);
    CU_ASSERT_DOUBLE_EQUAL(f.scale, 1.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.x, 0.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.y, 0.0, 1e-9);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 512, 384, &x, &y));
    CU_ASSERT_EQUAL(x, 16399);
    CU_ASSERT_EQUAL(y, 16404);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 0, 0, &x, &y));
    CU_ASSERT_EQUAL(x, 0);
    CU_ASSERT_EQUAL(y, 0);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 1023.5, 767.5, &x, &y));
    CU_ASSERT_EQUAL(x, GUI_ABS_MAX);
    CU_ASSERT_EQUAL(y, GUI_ABS_MAX);
}

/* A 720x400 text screen in a 900x600 tab: scale 1.25, 900x500 drawn, bars of 50 above and
 * below. Positions on the bars clamp to the edge and are not "inside". */
static void test_letterbox(void)
{
    struct gui_fit f;
    int x, y;
    CU_ASSERT_EQUAL_FATAL(gui_fit_compute(900, 600, 720, 400, &f), 0);
    CU_ASSERT_DOUBLE_EQUAL(f.scale, 1.25, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.x, 0.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.y, 50.0, 1e-9);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 0, 50, &x, &y));
    CU_ASSERT_EQUAL(x, 0);
    CU_ASSERT_EQUAL(y, 0);
    /* guest pixel (360, 200): 360 * 32767 / 719 and 200 * 32767 / 399, rounded down */
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 450, 300, &x, &y));
    CU_ASSERT_EQUAL(x, 16406);
    CU_ASSERT_EQUAL(y, 16424);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 899.9, 549.9, &x, &y));
    CU_ASSERT_EQUAL(x, GUI_ABS_MAX);
    CU_ASSERT_EQUAL(y, GUI_ABS_MAX);
    CU_ASSERT_FALSE(gui_fit_to_abs(&f, 450, 49, &x, &y));
    CU_ASSERT_EQUAL(y, 0);
    CU_ASSERT_FALSE(gui_fit_to_abs(&f, 450, 550, &x, &y));
    CU_ASSERT_EQUAL(y, GUI_ABS_MAX);
}

/* A 1024x768 screen in the same tab: scale 0.78125, 800x600 drawn, bars of 50 left and
 * right; the centre of the tab is the centre of the guest screen. */
static void test_pillarbox(void)
{
    struct gui_fit f;
    int x, y;
    CU_ASSERT_EQUAL_FATAL(gui_fit_compute(900, 600, 1024, 768, &f), 0);
    CU_ASSERT_DOUBLE_EQUAL(f.scale, 0.78125, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.x, 50.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.y, 0.0, 1e-9);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 450, 300, &x, &y));
    CU_ASSERT_EQUAL(x, 16399);
    CU_ASSERT_EQUAL(y, 16404);
    CU_ASSERT_FALSE(gui_fit_to_abs(&f, 49.9, 300, &x, &y));
    CU_ASSERT_EQUAL(x, 0);
    CU_ASSERT_FALSE(gui_fit_to_abs(&f, 850, 300, &x, &y));
    CU_ASSERT_EQUAL(x, GUI_ABS_MAX);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 849.9, 0, &x, &y));
    CU_ASSERT_EQUAL(x, GUI_ABS_MAX);
    CU_ASSERT_EQUAL(y, 0);
}

/* Nothing drawn (no allocation yet, no display) is refused, not a division by zero; a
 * one-pixel screen maps to 0. */
static void test_degenerate(void)
{
    struct gui_fit f;
    int x = -1, y = -1;
    CU_ASSERT_EQUAL(gui_fit_compute(0, 600, 1024, 768, &f), -1);
    CU_ASSERT_EQUAL(gui_fit_compute(900, 600, 0, 768, &f), -1);
    CU_ASSERT_EQUAL(gui_fit_compute(900, 600, 1024, -5, &f), -1);
    CU_ASSERT_EQUAL_FATAL(gui_fit_compute(10, 10, 1, 1, &f), 0);
    CU_ASSERT_TRUE(gui_fit_to_abs(&f, 5, 5, &x, &y));
    CU_ASSERT_EQUAL(x, 0);
    CU_ASSERT_EQUAL(y, 0);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("gtk_geometry", NULL, NULL);
    CU_add_test(s, "unscaled", test_unscaled);
    CU_add_test(s, "letterbox", test_letterbox);
    CU_add_test(s, "pillarbox", test_pillarbox);
    CU_add_test(s, "degenerate sizes", test_degenerate);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
