#include "core/chardev.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CHARDEV_TAG "chardev"
#define CHARDEV_BUF 256
#define CHARDEV_RETRY_MS 5
#define CHARDEV_ESC 0x01 /* Ctrl-A */

enum chardev_kind { CHARDEV_NONE, CHARDEV_STDIO, CHARDEV_FILE, CHARDEV_UNIX };

struct chardev {
    enum chardev_kind kind;
    GMainContext *ctx;             /* where input sources run (NULL: no input) */
    pthread_mutex_t lock;          /* out_fd and client changes vs. writers */
    int in_fd;                     /* stdin or the unix client; -1 when none */
    int out_fd;                    /* stdout, the file or the unix client; -1 drops output */
    int listen_fd;                 /* unix: listening socket */
    char *path;                    /* unix: socket path to unlink */
    bool tty_raw;                  /* stdio: termios changed, restore saved_tio */
    struct termios saved_tio;      /* stdio: terminal state before raw mode */
    bool esc;                      /* stdio: Ctrl-A seen, waiting for the command key */
    uint8_t pend[CHARDEV_BUF * 2]; /* input not yet taken by the receiver */
    size_t pend_len;
    GSource *in_src;     /* fd watch on in_fd */
    GSource *listen_src; /* unix: accept watch */
    GSource *retry_src;  /* timeout while pend holds bytes */
    chardev_receive_fn receive;
    void *rx_opaque;
    chardev_quit_fn quit;
    void *quit_opaque;
};

static void chardev_watch_input(struct chardev *c);

static void chardev_drop_source(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

/* Offer pending bytes to the receiver; true when all were taken. */
static bool chardev_flush(struct chardev *c)
{
    if (c->pend_len == 0) {
        return true;
    }
    if (!c->receive) {
        c->pend_len = 0; /* nobody listens: typed input is dropped, as on a bare line */
        return true;
    }
    size_t n = c->receive(c->rx_opaque, c->pend, c->pend_len);
    if (n > c->pend_len) {
        n = c->pend_len;
    }
    memmove(c->pend, c->pend + n, c->pend_len - n);
    c->pend_len -= n;
    return c->pend_len == 0;
}

static gboolean chardev_retry_cb(gpointer opaque)
{
    struct chardev *c = opaque;
    if (!chardev_flush(c)) {
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(c->retry_src);
    c->retry_src = NULL;
    chardev_watch_input(c);
    return G_SOURCE_REMOVE;
}

void chardev_input(struct chardev *c, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len && c->pend_len < sizeof(c->pend); i++) {
        uint8_t b = buf[i];
        if (c->kind == CHARDEV_STDIO) {
            if (c->esc) {
                c->esc = false;
                if (b == 'x' || b == 'X') {
                    if (c->quit) {
                        c->quit(c->quit_opaque);
                    }
                    continue;
                }
                if (b != CHARDEV_ESC) {
                    /* Unknown command: pass both keys through rather than eat input. */
                    c->pend[c->pend_len++] = CHARDEV_ESC;
                    if (c->pend_len == sizeof(c->pend)) {
                        break;
                    }
                }
            } else if (b == CHARDEV_ESC) {
                c->esc = true;
                continue;
            }
        }
        c->pend[c->pend_len++] = b;
    }
    chardev_flush(c);
}

/* Called from the client's own fd callback: drop our reference, the caller
 * returns G_SOURCE_REMOVE. */
static void chardev_close_client(struct chardev *c)
{
    g_source_unref(c->in_src);
    c->in_src = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->in_fd >= 0) {
        close(c->in_fd);
    }
    c->in_fd = -1;
    c->out_fd = -1;
    pthread_mutex_unlock(&c->lock);
    log_info(CHARDEV_TAG, "%s: client disconnected", c->path);
}

static gboolean chardev_readable_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    struct chardev *c = opaque;
    uint8_t buf[CHARDEV_BUF];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        /* EOF: stdin closed (e.g. </dev/null) or the socket client left. */
        if (c->kind == CHARDEV_UNIX) {
            chardev_close_client(c);
            return G_SOURCE_REMOVE;
        }
        g_source_unref(c->in_src);
        c->in_src = NULL;
        return G_SOURCE_REMOVE;
    }
    chardev_input(c, buf, (size_t)n);
    if (c->pend_len) {
        /* The guest FIFO is full: stop reading and retry shortly. */
        g_source_unref(c->in_src);
        c->in_src = NULL;
        c->retry_src = g_timeout_source_new(CHARDEV_RETRY_MS);
        g_source_set_callback(c->retry_src, chardev_retry_cb, c, NULL);
        g_source_attach(c->retry_src, c->ctx);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void chardev_watch_input(struct chardev *c)
{
    if (!c->ctx || c->in_fd < 0 || c->in_src) {
        return;
    }
    c->in_src = g_unix_fd_source_new(c->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(c->in_src, (GSourceFunc)(void (*)(void))chardev_readable_cb, c, NULL);
    g_source_attach(c->in_src, c->ctx);
}

static gboolean chardev_accept_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    struct chardev *c = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    if (c->in_fd >= 0) {
        close(cfd); /* one client at a time */
        return G_SOURCE_CONTINUE;
    }
    pthread_mutex_lock(&c->lock);
    c->in_fd = cfd;
    c->out_fd = cfd;
    pthread_mutex_unlock(&c->lock);
    log_info(CHARDEV_TAG, "%s: client connected", c->path);
    if (!c->retry_src) {
        chardev_watch_input(c);
    }
    return G_SOURCE_CONTINUE;
}

static int chardev_open_unix(struct chardev *c, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path) || !*path) {
        snprintf(err, errlen, "%s: socket path too long or empty", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s: exists and is not a socket", path);
            return -EEXIST;
        }
        unlink(path); /* a stale socket of an earlier run */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot listen: %s", path, strerror(e));
        if (fd >= 0) {
            close(fd);
        }
        return -e;
    }
    c->listen_fd = fd;
    c->path = strdup(path);
    if (c->ctx) {
        c->listen_src = g_unix_fd_source_new(fd, G_IO_IN);
        g_source_set_callback(c->listen_src, (GSourceFunc)(void (*)(void))chardev_accept_cb, c,
                              NULL);
        g_source_attach(c->listen_src, c->ctx);
    }
    return 0;
}

int chardev_open(const char *spec, GMainContext *ctx, struct chardev **out, char *err,
                 size_t errlen)
{
    struct chardev *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->in_fd = c->out_fd = c->listen_fd = -1;
    c->ctx = ctx ? g_main_context_ref(ctx) : NULL;
    int rc = 0;
    if (strcmp(spec, "none") == 0) {
        c->kind = CHARDEV_NONE;
    } else if (strcmp(spec, "stdio") == 0) {
        c->kind = CHARDEV_STDIO;
        c->out_fd = STDOUT_FILENO;
        c->in_fd = STDIN_FILENO;
        if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) != getpgrp()) {
            /* Started in the background (lodge run &): touching the terminal would
             * stop us with SIGTTIN/SIGTTOU. Output only. */
            c->in_fd = -1;
        } else if (ctx && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->saved_tio) == 0) {
            struct termios t = c->saved_tio;
            /* Raw input (Ctrl-C goes to the guest); output post-processing stays on
             * so a bare "\n" from the guest still returns the carriage. */
            t.c_iflag &=
                ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
            t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
            t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
            t.c_cflag |= CS8;
            t.c_cc[VMIN] = 1;
            t.c_cc[VTIME] = 0;
            if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
                c->tty_raw = true;
            }
        }
    } else if (strncmp(spec, "file:", 5) == 0) {
        c->kind = CHARDEV_FILE;
        const char *path = spec + 5;
        c->out_fd = *path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        if (c->out_fd < 0) {
            rc = *path ? -errno : -EINVAL;
            snprintf(err, errlen, "%s: %s", *path ? path : spec,
                     *path ? strerror(-rc) : "missing file name");
        }
    } else if (strncmp(spec, "unix:", 5) == 0) {
        c->kind = CHARDEV_UNIX;
        rc = chardev_open_unix(c, spec + 5, err, errlen);
    } else {
        snprintf(err, errlen,
                 "%s: unknown serial backend (use stdio, file:PATH, unix:PATH or "
                 "none)",
                 spec);
        rc = -EINVAL;
    }
    if (rc < 0) {
        chardev_free(c);
        return rc;
    }
    if (c->kind == CHARDEV_STDIO) {
        chardev_watch_input(c);
    }
    *out = c;
    return 0;
}

void chardev_free(struct chardev *c)
{
    if (!c) {
        return;
    }
    chardev_drop_source(&c->in_src);
    chardev_drop_source(&c->listen_src);
    chardev_drop_source(&c->retry_src);
    if (c->tty_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &c->saved_tio);
    }
    if (c->kind == CHARDEV_FILE && c->out_fd >= 0) {
        close(c->out_fd);
    }
    if (c->kind == CHARDEV_UNIX) {
        if (c->in_fd >= 0) {
            close(c->in_fd);
        }
        if (c->listen_fd >= 0) {
            close(c->listen_fd);
        }
        if (c->path) {
            unlink(c->path);
        }
    }
    free(c->path);
    if (c->ctx) {
        g_main_context_unref(c->ctx);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void chardev_set_receiver(struct chardev *c, chardev_receive_fn fn, void *opaque)
{
    c->receive = fn;
    c->rx_opaque = opaque;
}

void chardev_set_quit(struct chardev *c, chardev_quit_fn fn, void *opaque)
{
    c->quit = fn;
    c->quit_opaque = opaque;
}

void chardev_write(struct chardev *c, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&c->lock);
    int fd = c->out_fd;
    while (fd >= 0 && len > 0) {
        ssize_t n =
            c->kind == CHARDEV_UNIX ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            log_debug(CHARDEV_TAG, "output dropped: %s", strerror(errno));
            break;
        }
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&c->lock);
}
