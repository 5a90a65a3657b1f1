/* USB HID usage -> scancode set 1, and key names for send-keys. */
#include "ui/keymap.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define KEYMAP_E0 0x100 /* the code needs the 0xE0 prefix */

/* Indexed by usage 0x00..0x67; 0 = no key. */
static const uint16_t keymap_main[0x68] = {
    [0x04] = 0x1e,
    [0x05] = 0x30,
    [0x06] = 0x2e,
    [0x07] = 0x20,
    [0x08] = 0x12,
    [0x09] = 0x21,
    [0x0a] = 0x22,
    [0x0b] = 0x23,
    [0x0c] = 0x17,
    [0x0d] = 0x24,
    [0x0e] = 0x25,
    [0x0f] = 0x26,
    [0x10] = 0x32,
    [0x11] = 0x31,
    [0x12] = 0x18,
    [0x13] = 0x19,
    [0x14] = 0x10,
    [0x15] = 0x13,
    [0x16] = 0x1f,
    [0x17] = 0x14,
    [0x18] = 0x16,
    [0x19] = 0x2f,
    [0x1a] = 0x11,
    [0x1b] = 0x2d,
    [0x1c] = 0x15,
    [0x1d] = 0x2c,
    [0x1e] = 0x02,
    [0x1f] = 0x03,
    [0x20] = 0x04,
    [0x21] = 0x05,
    [0x22] = 0x06,
    [0x23] = 0x07,
    [0x24] = 0x08,
    [0x25] = 0x09,
    [0x26] = 0x0a,
    [0x27] = 0x0b,
    [0x28] = 0x1c,
    [0x29] = 0x01,
    [0x2a] = 0x0e,
    [0x2b] = 0x0f,
    [0x2c] = 0x39,
    [0x2d] = 0x0c,
    [0x2e] = 0x0d,
    [0x2f] = 0x1a,
    [0x30] = 0x1b,
    [0x31] = 0x2b,
    [0x32] = 0x2b,
    [0x33] = 0x27,
    [0x34] = 0x28,
    [0x35] = 0x29,
    [0x36] = 0x33,
    [0x37] = 0x34,
    [0x38] = 0x35,
    [0x39] = 0x3a,
    [0x3a] = 0x3b,
    [0x3b] = 0x3c,
    [0x3c] = 0x3d,
    [0x3d] = 0x3e,
    [0x3e] = 0x3f,
    [0x3f] = 0x40,
    [0x40] = 0x41,
    [0x41] = 0x42,
    [0x42] = 0x43,
    [0x43] = 0x44,
    [0x44] = 0x57,
    [0x45] = 0x58,
    [0x46] = KEYMAP_E0 | 0x37,
    [0x47] = 0x46,
    [0x49] = KEYMAP_E0 | 0x52,
    [0x4a] = KEYMAP_E0 | 0x47,
    [0x4b] = KEYMAP_E0 | 0x49,
    [0x4c] = KEYMAP_E0 | 0x53,
    [0x4d] = KEYMAP_E0 | 0x4f,
    [0x4e] = KEYMAP_E0 | 0x51,
    [0x4f] = KEYMAP_E0 | 0x4d,
    [0x50] = KEYMAP_E0 | 0x4b,
    [0x51] = KEYMAP_E0 | 0x50,
    [0x52] = KEYMAP_E0 | 0x48,
    [0x53] = 0x45,
    [0x54] = KEYMAP_E0 | 0x35,
    [0x55] = 0x37,
    [0x56] = 0x4a,
    [0x57] = 0x4e,
    [0x58] = KEYMAP_E0 | 0x1c,
    [0x59] = 0x4f,
    [0x5a] = 0x50,
    [0x5b] = 0x51,
    [0x5c] = 0x4b,
    [0x5d] = 0x4c,
    [0x5e] = 0x4d,
    [0x5f] = 0x47,
    [0x60] = 0x48,
    [0x61] = 0x49,
    [0x62] = 0x52,
    [0x63] = 0x53,
    [0x64] = 0x56,
    [0x65] = KEYMAP_E0 | 0x5d,
};

/* Modifiers, usages 0xE0..0xE7. */
static const uint16_t keymap_mods[8] = {
    0x1d, 0x2a, 0x38, KEYMAP_E0 | 0x5b, KEYMAP_E0 | 0x1d, 0x36, KEYMAP_E0 | 0x38, KEYMAP_E0 | 0x5c,
};

int keymap_usb_to_set1(uint32_t usage, bool down, uint8_t out[KEYMAP_MAX_BYTES])
{
    uint16_t code = 0;
    if (usage < sizeof(keymap_main) / sizeof(keymap_main[0])) {
        code = keymap_main[usage];
    } else if (usage >= 0xe0 && usage <= 0xe7) {
        code = keymap_mods[usage - 0xe0];
    }
    if (!code) {
        return 0;
    }
    int n = 0;
    if (code & KEYMAP_E0) {
        out[n++] = 0xe0;
    }
    /* Set 1 break codes are the make code with bit 7 set. */
    out[n++] = (uint8_t)((code & 0x7f) | (down ? 0 : 0x80));
    return n;
}

struct keymap_name {
    const char *name;
    uint16_t usage;
};

static const struct keymap_name keymap_names[] = {
    {"ret", 0x28},          {"enter", 0x28},         {"esc", 0x29},
    {"backspace", 0x2a},    {"tab", 0x2b},           {"spc", 0x2c},
    {"space", 0x2c},        {"minus", 0x2d},         {"equal", 0x2e},
    {"bracket_left", 0x2f}, {"bracket_right", 0x30}, {"backslash", 0x31},
    {"semicolon", 0x33},    {"apostrophe", 0x34},    {"grave_accent", 0x35},
    {"comma", 0x36},        {"dot", 0x37},           {"slash", 0x38},
    {"caps_lock", 0x39},    {"print", 0x46},         {"scroll_lock", 0x47},
    {"insert", 0x49},       {"home", 0x4a},          {"pgup", 0x4b},
    {"delete", 0x4c},       {"end", 0x4d},           {"pgdn", 0x4e},
    {"right", 0x4f},        {"left", 0x50},          {"down", 0x51},
    {"up", 0x52},           {"num_lock", 0x53},      {"menu", 0x65},
    {"ctrl", 0xe0},         {"shift", 0xe1},         {"alt", 0xe2},
    {"meta_l", 0xe3},       {"ctrl_r", 0xe4},        {"shift_r", 0xe5},
    {"alt_r", 0xe6},        {"meta_r", 0xe7},
};

int keymap_name_to_usb(const char *name)
{
    size_t len = strlen(name);
    if (len == 1 && name[0] >= 'a' && name[0] <= 'z') {
        return 0x04 + (name[0] - 'a');
    }
    if (len == 1 && name[0] >= '1' && name[0] <= '9') {
        return 0x1e + (name[0] - '1');
    }
    if (len == 1 && name[0] == '0') {
        return 0x27;
    }
    if ((len == 2 || len == 3) && (name[0] == 'f' || name[0] == 'F')) {
        int n = name[1] - '0';
        if (len == 3) {
            n = n * 10 + (name[2] - '0');
        }
        if (name[1] >= '1' && name[1] <= '9' && n >= 1 && n <= 12 &&
            (len == 2 || (name[2] >= '0' && name[2] <= '9'))) {
            return n <= 10 ? 0x3a + n - 1 : 0x44 + n - 11;
        }
    }
    for (size_t i = 0; i < sizeof(keymap_names) / sizeof(keymap_names[0]); i++) {
        if (strcasecmp(name, keymap_names[i].name) == 0) {
            return keymap_names[i].usage;
        }
    }
    return -ENOENT;
}

/* Linux evdev codes (input-event-codes.h) 1..88 equal their set-1 make codes; the
 * extended keys above need the 0xE0 prefix. */
static const struct {
    uint16_t evdev;
    uint16_t set1;
} keymap_evdev_ext[] = {
    {96, KEYMAP_E0 | 0x1c},  {97, KEYMAP_E0 | 0x1d},  {98, KEYMAP_E0 | 0x35},
    {99, KEYMAP_E0 | 0x37},  {100, KEYMAP_E0 | 0x38}, {102, KEYMAP_E0 | 0x47},
    {103, KEYMAP_E0 | 0x48}, {104, KEYMAP_E0 | 0x49}, {105, KEYMAP_E0 | 0x4b},
    {106, KEYMAP_E0 | 0x4d}, {107, KEYMAP_E0 | 0x4f}, {108, KEYMAP_E0 | 0x50},
    {109, KEYMAP_E0 | 0x51}, {110, KEYMAP_E0 | 0x52}, {111, KEYMAP_E0 | 0x53},
    {125, KEYMAP_E0 | 0x5b}, {126, KEYMAP_E0 | 0x5c}, {127, KEYMAP_E0 | 0x5d},
};

int keymap_evdev_to_usb(uint32_t code)
{
    uint16_t set1 = 0;
    if (code >= 1 && code <= 88) {
        set1 = (uint16_t)code;
    }
    for (size_t i = 0; i < sizeof(keymap_evdev_ext) / sizeof(keymap_evdev_ext[0]); i++) {
        if (keymap_evdev_ext[i].evdev == code) {
            set1 = keymap_evdev_ext[i].set1;
        }
    }
    if (!set1) {
        return -ENOENT;
    }
    for (size_t u = 0; u < sizeof(keymap_main) / sizeof(keymap_main[0]); u++) {
        if (keymap_main[u] == set1) {
            return (int)u;
        }
    }
    for (size_t u = 0; u < 8; u++) {
        if (keymap_mods[u] == set1) {
            return (int)(0xe0 + u);
        }
    }
    return -ENOENT;
}
