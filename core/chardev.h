/* Character backends for serial ports: stdio, file:PATH, unix:PATH, none.
 *
 * Output (chardev_write) may be called from any thread (a vCPU thread running the
 * UART). Input is read on the machine's GLib main context and offered to the
 * receiver set with chardev_set_receiver(); bytes the receiver does not accept are
 * kept and offered again a few milliseconds later, so a full guest FIFO slows the
 * host side down instead of losing keystrokes. */
#ifndef LODGE_CORE_CHARDEV_H
#define LODGE_CORE_CHARDEV_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

struct chardev;

/* Returns how many bytes of buf the device took. */
typedef size_t (*chardev_receive_fn)(void *opaque, const uint8_t *buf, size_t len);
/* The user typed the quit escape (Ctrl-A x) on a stdio backend. */
typedef void (*chardev_quit_fn)(void *opaque);

/* Open a backend from a --serial SPEC. Input sources attach to ctx (may be NULL for
 * output-only use, e.g. in tests). On failure returns -errno and writes
 * "<spec>: <problem>" to err. The stdio backend puts a terminal stdin in raw mode;
 * chardev_free() restores it. */
int chardev_open(const char *spec, GMainContext *ctx, struct chardev **out, char *err,
                 size_t errlen);
void chardev_free(struct chardev *c);

void chardev_set_receiver(struct chardev *c, chardev_receive_fn fn, void *opaque);
void chardev_set_quit(struct chardev *c, chardev_quit_fn fn, void *opaque);

/* Blocking write of all of buf (dropped when nothing listens). Thread-safe. */
void chardev_write(struct chardev *c, const uint8_t *buf, size_t len);

/* Feed bytes as if they came from the host side (tests, and the stdio escape logic). */
void chardev_input(struct chardev *c, const uint8_t *buf, size_t len);

#endif
