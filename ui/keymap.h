/* Host key codes to PC keyboard scancode set 1.
 *
 * Keys are named by USB HID usage IDs (HID Usage Tables, page 0x07), which are also
 * SDL2's scancodes, so the SDL console and the control socket share one table. */
#ifndef LODGE_UI_KEYMAP_H
#define LODGE_UI_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYMAP_MAX_BYTES 2 /* 0xE0 prefix + code */

/* Set-1 bytes for a press or release of a USB usage; returns the byte count (0 when the
 * key has no set-1 code). */
int keymap_usb_to_set1(uint32_t usage, bool down, uint8_t out[KEYMAP_MAX_BYTES]);
/* A key name as QEMU's send-key takes them ("a", "ret", "ctrl", "alt", "delete", "f1",
 * "spc", ...), or -ENOENT. */
int keymap_name_to_usb(const char *name);
/* A Linux evdev key code (X11 and Wayland hardware keycodes are evdev + 8), or -ENOENT. */
int keymap_evdev_to_usb(uint32_t code);

#endif
