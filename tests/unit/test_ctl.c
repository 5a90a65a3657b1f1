/* Unit tests for the control-socket protocol parser (core/ctl.c) and key names. */
#include "core/ctl.h"
#include "ui/keymap.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *line, struct ctl_request *req, char *err, size_t errlen)
{
    return ctl_parse_request(line, strlen(line), req, err, errlen);
}

static void test_simple_commands(void)
{
    static const struct {
        const char *line;
        enum ctl_cmd cmd;
    } cases[] = {
        {"{\"cmd\":\"status\"}", CTL_CMD_STATUS},
        {"{\"cmd\":\"pause\"}", CTL_CMD_PAUSE},
        {" { \"cmd\" : \"resume\" } ", CTL_CMD_RESUME},
        {"{\"cmd\":\"reset\"}", CTL_CMD_RESET},
        {"{\"cmd\":\"quit\"}", CTL_CMD_QUIT},
        {"{\"cmd\":\"display-attach\"}", CTL_CMD_DISPLAY_ATTACH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctl_request req;
        char err[256] = "";
        CU_ASSERT_EQUAL(parse(cases[i].line, &req, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(req.cmd, cases[i].cmd);
        CU_ASSERT_PTR_NULL(req.id);
        ctl_request_clear(&req);
    }
}

static void test_id_echoed(void)
{
    struct ctl_request req;
    char err[256];
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"status\",\"id\":42}", &req, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(req.id, "42");
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"id\":\"a\\\"b\",\"cmd\":\"nope\"}", &req, err, sizeof(err)), -EINVAL);
    /* The id survives an error so the error reply can carry it. */
    CU_ASSERT_STRING_EQUAL(req.id, "\"a\\\"b\"");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown command 'nope'"));
    ctl_request_clear(&req);
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "",
        "{",
        "not json",
        "[1,2,3]",
        "\"status\"",
        "42",
        "{\"cmd\":42}",
        "{\"cmd\":null}",
        "{\"cmd\":[\"status\"]}",
        "{\"command\":\"status\"}",
        "{\"cmd\":\"status\"",
        "{\"cmd\":\"status\"}}",
        "{\"cmd\":\"\\u0000status\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ctl_request req;
        char err[256] = "";
        CU_ASSERT_EQUAL(parse(bad[i], &req, err, sizeof(err)), -EINVAL);
        CU_ASSERT(err[0] != '\0');
        ctl_request_clear(&req);
    }
    /* An embedded NUL byte in the line itself. */
    struct ctl_request req;
    char err[256] = "";
    CU_ASSERT_EQUAL(ctl_parse_request("{\"cmd\":\"status\"}\0x", 18, &req, err, sizeof(err)),
                    -EINVAL);
    ctl_request_clear(&req);
}

static void test_too_long(void)
{
    size_t n = CTL_MAX_LINE + 10;
    char *line = malloc(n + 1);
    memset(line, ' ', n);
    memcpy(line, "{\"cmd\":\"status\"}", 16);
    line[n] = '\0';
    struct ctl_request req;
    char err[256] = "";
    CU_ASSERT_EQUAL(ctl_parse_request(line, n, &req, err, sizeof(err)), -EINVAL);
    ctl_request_clear(&req);
    free(line);
}

static void test_powerdown_and_screendump_args(void)
{
    struct ctl_request req;
    char err[256];
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"powerdown\"}", &req, err, sizeof(err)), 0);
    CU_ASSERT_FALSE(req.force);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"powerdown\",\"force\":true}", &req, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(req.force);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"powerdown\",\"force\":\"yes\"}", &req, err, sizeof(err)),
                    -EINVAL);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(
        parse("{\"cmd\":\"screendump\",\"file\":\"/tmp/x.png\"}", &req, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(req.file, "/tmp/x.png");
    ctl_request_clear(&req);
    /* Relative paths would land in the VM process's directory: refused. */
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"screendump\",\"file\":\"x.png\"}", &req, err, sizeof(err)),
                    -EINVAL);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"screendump\"}", &req, err, sizeof(err)), -EINVAL);
    ctl_request_clear(&req);
}

static void test_send_keys(void)
{
    struct ctl_request req;
    char err[256];
    CU_ASSERT_EQUAL(
        parse("{\"cmd\":\"send-keys\",\"keys\":\"ctrl-alt-delete\"}", &req, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(req.nkeys, 3);
    CU_ASSERT_EQUAL(req.keys[0], 0xe0);
    CU_ASSERT_EQUAL(req.keys[1], 0xe2);
    CU_ASSERT_EQUAL(req.keys[2], 0x4c);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(
        parse("{\"cmd\":\"send-keys\",\"keys\":\"ctrl-frobnicate\"}", &req, err, sizeof(err)),
        -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "frobnicate"));
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"send-keys\",\"keys\":\"\"}", &req, err, sizeof(err)),
                    -EINVAL);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"send-keys\",\"keys\":\"a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a\"}",
                          &req, err, sizeof(err)),
                    -EINVAL);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"input\",\"type\":\"key\",\"key\":\"a\",\"down\":true}", &req,
                          err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(req.key, 0x04);
    CU_ASSERT_TRUE(req.down);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(
        parse("{\"cmd\":\"input\",\"type\":\"key\",\"key\":\"a\"}", &req, err, sizeof(err)),
        -EINVAL);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"input\",\"type\":\"mouse\"}", &req, err, sizeof(err)),
                    -EINVAL);
    ctl_request_clear(&req);
    /* evdev 30 is KEY_A; 111 KEY_DELETE (extended); 84 has no PC key. */
    static const struct {
        const char *line;
        int rc, key;
    } ev[] = {
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":30,\"down\":false}", 0, 0x04},
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":111,\"down\":true}", 0, 0x4c},
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":97,\"down\":true}", 0, 0xe4},
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":84,\"down\":true}", -EINVAL, 0},
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":-1,\"down\":true}", -EINVAL, 0},
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":1e9,\"down\":true}", -EINVAL, 0},
        {"{\"cmd\":\"input\",\"type\":\"key\",\"evdev\":\"30\",\"down\":true}", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
        CU_ASSERT_EQUAL(parse(ev[i].line, &req, err, sizeof(err)), ev[i].rc);
        if (ev[i].rc == 0) {
            CU_ASSERT_EQUAL(req.key, ev[i].key);
        }
        ctl_request_clear(&req);
    }
}

static void test_pointer_input(void)
{
    struct ctl_request req;
    char err[256];
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"input\",\"type\":\"mouse\",\"dx\":-12,\"dy\":7,"
                          "\"buttons\":5,\"wheel\":-2}",
                          &req, err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(req.input, CTL_INPUT_MOUSE);
    CU_ASSERT_EQUAL(req.dx, -12);
    CU_ASSERT_EQUAL(req.dy, 7);
    CU_ASSERT_EQUAL(req.buttons, 5);
    CU_ASSERT_EQUAL(req.wheel, -2);
    ctl_request_clear(&req);
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"input\",\"type\":\"abs\",\"x\":16384,\"y\":32767}", &req,
                          err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(req.input, CTL_INPUT_ABS);
    CU_ASSERT_EQUAL(req.x, 16384);
    CU_ASSERT_EQUAL(req.y, 32767);
    CU_ASSERT_EQUAL(req.buttons, 0);
    CU_ASSERT_EQUAL(req.wheel, 0);
    ctl_request_clear(&req);
    /* Key requests keep their own form. */
    CU_ASSERT_EQUAL(parse("{\"cmd\":\"input\",\"type\":\"key\",\"key\":\"b\",\"down\":false}",
                          &req, err, sizeof(err)),
                    0);
    CU_ASSERT_EQUAL(req.input, CTL_INPUT_KEY);
    ctl_request_clear(&req);
    static const char *bad[] = {
        "{\"cmd\":\"input\",\"type\":\"abs\",\"x\":32768,\"y\":0}",
        "{\"cmd\":\"input\",\"type\":\"abs\",\"x\":-1,\"y\":0}",
        "{\"cmd\":\"input\",\"type\":\"abs\",\"x\":5}",
        "{\"cmd\":\"input\",\"type\":\"abs\",\"x\":1.5,\"y\":2}",
        "{\"cmd\":\"input\",\"type\":\"abs\",\"x\":\"1\",\"y\":2}",
        "{\"cmd\":\"input\",\"type\":\"abs\",\"x\":1,\"y\":2,\"buttons\":8}",
        "{\"cmd\":\"input\",\"type\":\"mouse\",\"dx\":1,\"dy\":2,\"buttons\":-1}",
        "{\"cmd\":\"input\",\"type\":\"mouse\",\"dx\":4097,\"dy\":0}",
        "{\"cmd\":\"input\",\"type\":\"mouse\",\"dx\":0,\"dy\":-99999999999}",
        "{\"cmd\":\"input\",\"type\":\"mouse\",\"dx\":0,\"dy\":0,\"wheel\":128}",
        "{\"cmd\":\"input\",\"type\":\"mouse\",\"dx\":true,\"dy\":0}",
        "{\"cmd\":\"input\",\"type\":\"tablet\",\"x\":1,\"y\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(parse(bad[i], &req, err, sizeof(err)), -EINVAL);
        CU_ASSERT_TRUE(err[0] != '\0');
        ctl_request_clear(&req);
    }
}

static void test_keymap_set1(void)
{
    uint8_t b[KEYMAP_MAX_BYTES];
    /* Scan code set 1: 'A' make 0x1E, break 0x9E. */
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0x04, true, b), 1);
    CU_ASSERT_EQUAL(b[0], 0x1e);
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0x04, false, b), 1);
    CU_ASSERT_EQUAL(b[0], 0x9e);
    /* Delete is an extended key: E0 53 / E0 D3. */
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0x4c, true, b), 2);
    CU_ASSERT_EQUAL(b[0], 0xe0);
    CU_ASSERT_EQUAL(b[1], 0x53);
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0x4c, false, b), 2);
    CU_ASSERT_EQUAL(b[1], 0xd3);
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0xe0, true, b), 1); /* left Ctrl */
    CU_ASSERT_EQUAL(b[0], 0x1d);
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0xe6, true, b), 2); /* right Alt */
    CU_ASSERT_EQUAL(b[1], 0x38);
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0x2000, true, b), 0);
    CU_ASSERT_EQUAL(keymap_usb_to_set1(0x00, true, b), 0);
    CU_ASSERT_EQUAL(keymap_name_to_usb("f12"), 0x45);
    CU_ASSERT_EQUAL(keymap_name_to_usb("f1"), 0x3a);
    CU_ASSERT_EQUAL(keymap_name_to_usb("f13"), -ENOENT);
    CU_ASSERT_EQUAL(keymap_name_to_usb("0"), 0x27);
    CU_ASSERT_EQUAL(keymap_name_to_usb("ret"), 0x28);
}

static void test_names(void)
{
    CU_ASSERT_TRUE(ctl_name_valid("debian-12_test.1"));
    CU_ASSERT_FALSE(ctl_name_valid(""));
    CU_ASSERT_FALSE(ctl_name_valid(".hidden"));
    CU_ASSERT_FALSE(ctl_name_valid("-opt"));
    CU_ASSERT_FALSE(ctl_name_valid("../etc"));
    CU_ASSERT_FALSE(ctl_name_valid("a b"));
    char longname[CTL_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CU_ASSERT_FALSE(ctl_name_valid(longname));
    char path[256];
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    CU_ASSERT_EQUAL(ctl_socket_path("vm1", false, path, sizeof(path)), 0);
    CU_ASSERT_STRING_EQUAL(path, "/run/user/1000/lodge/vm1.sock");
    CU_ASSERT_EQUAL(ctl_socket_path("../x", false, path, sizeof(path)), -EINVAL);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("ctl", NULL, NULL);
    CU_add_test(s, "simple commands", test_simple_commands);
    CU_add_test(s, "id echoed", test_id_echoed);
    CU_add_test(s, "malformed requests", test_malformed);
    CU_add_test(s, "too long", test_too_long);
    CU_add_test(s, "powerdown and screendump arguments", test_powerdown_and_screendump_args);
    CU_add_test(s, "send-keys and input", test_send_keys);
    CU_add_test(s, "mouse and abs input", test_pointer_input);
    CU_add_test(s, "set-1 scancodes", test_keymap_set1);
    CU_add_test(s, "VM names and socket paths", test_names);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
