/* Machine hooks for the control socket and the display: state, events, pause/resume,
 * power button, keyboard input, framebuffer. */
#include "core/boot_firmware.h"
#include "core/log.h"
#include "core/machine.h"
#include "core/machine_internal.h"
#include "core/machine_pci.h"
#include "devices/pc/acpi_pm.h"
#include "devices/pc/i8042.h"
#include "devices/virtio/virtio_input.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define MACHINE_UI_TAG "machine"
#define MACHINE_UI_WAIT_MS 1000

void machine_set_event_cb(struct machine *m, machine_event_fn fn, void *opaque)
{
    m->event_fn = fn;
    m->event_opaque = opaque;
}

void machine_emit(struct machine *m, enum machine_event ev)
{
    if (m->event_fn) {
        m->event_fn(m->event_opaque, ev);
    }
}

enum machine_state machine_get_state(struct machine *m)
{
    return (enum machine_state)atomic_load(&m->state);
}

void machine_set_state(struct machine *m, enum machine_state st)
{
    pthread_mutex_lock(&m->req_lock);
    atomic_store(&m->state, (int)st);
    pthread_cond_broadcast(&m->req_cond);
    pthread_mutex_unlock(&m->req_lock);
}

/* Post a request and wait until the state becomes want (or the run ends). */
static int machine_post_wait(struct machine *m, unsigned bit, enum machine_state want)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += MACHINE_UI_WAIT_MS / 1000;
    pthread_mutex_lock(&m->req_lock);
    m->req |= bit;
    atomic_store(&m->req_pending, true);
    pthread_cond_broadcast(&m->req_cond);
    int rc = 0;
    for (;;) {
        int st = atomic_load(&m->state);
        if (st == (int)want) {
            break;
        }
        if (st == MACHINE_STATE_STOPPED) {
            rc = -ESHUTDOWN;
            break;
        }
        if (pthread_cond_timedwait(&m->req_cond, &m->req_lock, &ts) != 0) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&m->req_lock);
    return rc;
}

int machine_pause(struct machine *m)
{
    int st = atomic_load(&m->state);
    if (st == MACHINE_STATE_PAUSED) {
        return -EALREADY;
    }
    if (st == MACHINE_STATE_STOPPED) {
        return -ESHUTDOWN;
    }
    return machine_post_wait(m, MACHINE_REQ_PAUSE, MACHINE_STATE_PAUSED);
}

int machine_resume(struct machine *m)
{
    int st = atomic_load(&m->state);
    if (st == MACHINE_STATE_RUNNING) {
        return -EALREADY;
    }
    if (st == MACHINE_STATE_STOPPED) {
        return -ESHUTDOWN;
    }
    return machine_post_wait(m, MACHINE_REQ_RESUME, MACHINE_STATE_RUNNING);
}

unsigned machine_wait_paused(struct machine *m, unsigned req)
{
    /* A resume that raced with its pause cancels it; anything else wins over a pause. */
    if (req & MACHINE_REQ_RESUME) {
        return req & ~(MACHINE_REQ_PAUSE | MACHINE_REQ_RESUME);
    }
    req &= ~MACHINE_REQ_PAUSE;
    if (req) {
        return req;
    }
    log_info(MACHINE_UI_TAG, "paused");
    machine_set_state(m, MACHINE_STATE_PAUSED);
    machine_emit(m, MACHINE_EVENT_PAUSED);
    pthread_mutex_lock(&m->req_lock);
    for (;;) {
        while (!m->req) {
            pthread_cond_wait(&m->req_cond, &m->req_lock);
        }
        req = m->req & ~MACHINE_REQ_PAUSE;
        m->req = 0;
        atomic_store(&m->req_pending, false);
        if (req) {
            break;
        }
    }
    pthread_mutex_unlock(&m->req_lock);
    req &= ~MACHINE_REQ_RESUME;
    if (!req) {
        log_info(MACHINE_UI_TAG, "resumed");
        machine_set_state(m, MACHINE_STATE_RUNNING);
        machine_emit(m, MACHINE_EVENT_RUNNING);
    }
    return req;
}

void machine_power_button(struct machine *m)
{
    if (m->acpi_pm) {
        acpi_pm_power_button(m->acpi_pm);
    }
}

int machine_key_event(struct machine *m, const uint8_t *scancode, size_t n)
{
    if (!m->i8042) {
        return -ENODEV;
    }
    return i8042_key_event(m->i8042, scancode, n);
}

int machine_mouse_event(struct machine *m, int dx, int dy, int wheel, unsigned buttons)
{
    if (!m->i8042) {
        return -ENODEV;
    }
    return i8042_mouse_event(m->i8042, dx, dy, wheel, buttons);
}

int machine_abs_event(struct machine *m, int x, int y, int wheel, unsigned buttons)
{
    struct virtio_input *t = machine_pci_tablet(m);
    if (!t) {
        return -ENODEV;
    }
    return virtio_input_tablet_event(t, x, y, wheel, buttons);
}

bool machine_tablet_ready(struct machine *m)
{
    return virtio_input_ready(machine_pci_tablet(m));
}

int machine_get_fb(struct machine *m, struct machine_fb *out)
{
    if (!m->cfg.fb_width || !m->cfg.fb_height) {
        return -ENODEV;
    }
    const struct guestmem_region *r = guestmem_find(&m->mem, MACHINE_FB_BASE);
    if (!r) {
        return -ENODEV;
    }
    memset(out, 0, sizeof(*out));
    out->gpa = r->gpa;
    out->hva = r->hva;
    out->fd = r->fd;
    out->size = r->size;
    out->width = m->cfg.fb_width;
    out->height = m->cfg.fb_height;
    out->stride = m->cfg.fb_width * 4;
    return 0;
}

struct vga *machine_vga(struct machine *m)
{
    return boot_firmware_vga(m);
}

/* boot_params.screen_info (arch/x86/include/uapi/linux/screen_info.h): a VESA linear
 * framebuffer that vesafb/simplefb take over without firmware. */
#define SI_ORIG_VIDEO_ISVGA 0x0f
#define SI_LFB_WIDTH 0x12
#define SI_LFB_HEIGHT 0x14
#define SI_LFB_DEPTH 0x16
#define SI_LFB_BASE 0x18
#define SI_LFB_SIZE 0x1c /* in 64 KiB units for VIDEO_TYPE_VLFB */
#define SI_LFB_LINELENGTH 0x24
#define SI_RED_SIZE 0x26 /* then red_pos, green size/pos, blue, reserved */
#define SI_CAPABILITIES 0x36
#define SI_EXT_LFB_BASE 0x3a
#define SI_SIZE 0x40
#define SI_VIDEO_TYPE_VLFB 0x23
#define SI_CAP_64BIT_BASE 0x2

static void machine_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void machine_put32(uint8_t *p, uint32_t v)
{
    machine_put16(p, v);
    machine_put16(p + 2, v >> 16);
}

void machine_fb_boot_info(struct machine *m, uint64_t zero_page)
{
    struct machine_fb fb;
    uint8_t si[SI_SIZE];
    if (machine_get_fb(m, &fb) < 0 || guestmem_read(&m->mem, zero_page, si, sizeof(si)) < 0) {
        return;
    }
    si[SI_ORIG_VIDEO_ISVGA] = SI_VIDEO_TYPE_VLFB;
    machine_put16(si + SI_LFB_WIDTH, fb.width);
    machine_put16(si + SI_LFB_HEIGHT, fb.height);
    machine_put16(si + SI_LFB_DEPTH, 32);
    machine_put32(si + SI_LFB_BASE, (uint32_t)fb.gpa);
    machine_put32(si + SI_LFB_SIZE, (uint32_t)(fb.size >> 16));
    machine_put16(si + SI_LFB_LINELENGTH, fb.stride);
    static const uint8_t xrgb[8] = {8, 16, 8, 8, 8, 0, 8, 24}; /* size/pos: R, G, B, X */
    memcpy(si + SI_RED_SIZE, xrgb, sizeof(xrgb));
    machine_put32(si + SI_CAPABILITIES, SI_CAP_64BIT_BASE);
    machine_put32(si + SI_EXT_LFB_BASE, (uint32_t)(fb.gpa >> 32));
    guestmem_write(&m->mem, zero_page, si, sizeof(si));
}
