/* Console frame latency probe (bench/console/run.sh): sends a key to the VM over its
 * control socket (Lodge's JSON `input` or QEMU's QMP `send-key`), then polls one pixel of
 * the console window (XGetImage) until the guest's repaint shows up there. The guest
 * (guest.asm) repaints a square at (100,100)-(163,163) of its 1920x1080 screen grey C,C,C
 * for each make code C; the pixel is the square's centre mapped through the window's
 * aspect-keeping scale. Prints min/median/mean/max milliseconds over N samples.
 *   probe WINDOW-ID SOCKET lodge|qmp N */
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GUEST_W 1920.0
#define GUEST_H 1080.0
#define SQ_CENTRE 132.0
#define PROBE_TIMEOUT_S 3.0
#define PROBE_MAX 1000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void drain(int fd)
{
    char buf[4096];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

static int send_all(int fd, const char *s)
{
    size_t n = strlen(s);
    return send(fd, s, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: probe WINDOW-ID SOCKET lodge|qmp N\n");
        return 2;
    }
    Window win = (Window)strtoul(argv[1], NULL, 0);
    int qmp = strcmp(argv[3], "qmp") == 0;
    int n = atoi(argv[4]);
    if (n < 1 || n > PROBE_MAX) {
        fprintf(stderr, "probe: N must be 1..%d\n", PROBE_MAX);
        return 2;
    }
    Display *dpy = XOpenDisplay(NULL);
    if (!dpy) {
        fprintf(stderr, "probe: cannot open the X display\n");
        return 1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "probe: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    if (qmp) {
        send_all(fd, "{\"execute\":\"qmp_capabilities\"}\n");
        usleep(200000);
        drain(fd);
    }
    static double lat[PROBE_MAX];
    static const char *keys[2] = {"a", "b"};
    static const unsigned codes[2] = {0x1e, 0x30};
    srand(1);
    for (int i = 0; i < n; i++) {
        XWindowAttributes wa;
        if (!XGetWindowAttributes(dpy, win, &wa)) {
            fprintf(stderr, "probe: window 0x%lx is gone\n", (unsigned long)win);
            return 1;
        }
        double scale = wa.width / GUEST_W < wa.height / GUEST_H ? wa.width / GUEST_W
                                                                : wa.height / GUEST_H;
        int x = (int)((wa.width - GUEST_W * scale) / 2 + SQ_CENTRE * scale);
        int y = (int)((wa.height - GUEST_H * scale) / 2 + SQ_CENTRE * scale);
        unsigned want = codes[i % 2];
        char cmd[512];
        if (qmp) {
            snprintf(cmd, sizeof(cmd),
                     "{\"execute\":\"send-key\",\"arguments\":{\"keys\":[{\"type\":\"qcode\","
                     "\"data\":\"%s\"}],\"hold-time\":10}}\n",
                     keys[i % 2]);
        } else {
            snprintf(cmd, sizeof(cmd),
                     "{\"cmd\":\"input\",\"type\":\"key\",\"key\":\"%s\",\"down\":true}\n"
                     "{\"cmd\":\"input\",\"type\":\"key\",\"key\":\"%s\",\"down\":false}\n",
                     keys[i % 2], keys[i % 2]);
        }
        double t0 = now();
        if (send_all(fd, cmd) < 0) {
            fprintf(stderr, "probe: the VM closed its socket\n");
            return 1;
        }
        for (;;) {
            XImage *img = XGetImage(dpy, win, x, y, 1, 1, AllPlanes, ZPixmap);
            unsigned long px = img ? XGetPixel(img, 0, 0) : 0;
            if (img) {
                XDestroyImage(img);
            }
            unsigned r = (px >> 16) & 0xff, g = (px >> 8) & 0xff, b = px & 0xff;
            if (abs((int)r - (int)want) <= 3 && abs((int)g - (int)want) <= 3 &&
                abs((int)b - (int)want) <= 3) {
                break;
            }
            if (now() - t0 > PROBE_TIMEOUT_S) {
                fprintf(stderr, "probe: sample %d: pixel (%d,%d) stayed %06lx, want %02x%02x%02x\n",
                        i, x, y, px & 0xffffff, want, want, want);
                return 1;
            }
            usleep(200);
        }
        lat[i] = (now() - t0) * 1000.0;
        drain(fd);
        /* Decorrelate the next key from the viewers' refresh phase. */
        usleep(100000 + (useconds_t)(rand() % 50000));
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
        sum += lat[i];
    }
    qsort(lat, (size_t)n, sizeof(lat[0]), cmp_double);
    printf("%.2f %.2f %.2f %.2f\n", lat[0], lat[n / 2], sum / n, lat[n - 1]);
    close(fd);
    XCloseDisplay(dpy);
    return 0;
}
