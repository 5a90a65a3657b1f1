/* Timer queues for device models.
 *
 * Armed timers sit in a list sorted by deadline (a machine has a few dozen timers
 * at most, so a list beats a heap on simplicity). A realtime queue has one thread
 * that sleeps on a CLOCK_MONOTONIC condition variable until the head deadline;
 * a deterministic queue has no thread and fires from timerq_advance(). Callbacks
 * always run without the queue lock so they can re-arm their own timer and take
 * their device lock; a device may therefore call timer_mod/timer_del while holding
 * its own lock (the queue lock is innermost). timerq_advance must not be called
 * from a callback of the same queue, and timers must be freed before their queue. */
#include "core/timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct timer {
    struct timerq *q;
    timer_cb cb;
    void *opaque;
    uint64_t deadline; /* absolute, timerq_now_ns clock */
    bool armed;        /* on q->head's list */
    struct timer *next;
};

struct timerq {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* head changed or stop requested */
    pthread_cond_t idle; /* a callback returned (timer_free waits on it) */
    bool deterministic;
    uint64_t start_ns;        /* CLOCK_MONOTONIC at timerq_new */
    uint64_t det_now;         /* deterministic clock */
    struct timer *head;       /* armed timers, earliest first */
    struct timer *running;    /* timer whose callback runs now, or NULL */
    pthread_t running_thread; /* thread running that callback */
    bool stop;
    bool has_thread;
    pthread_t thread;
};

static uint64_t timer_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t timerq_now_locked(struct timerq *q)
{
    return q->deterministic ? q->det_now : timer_mono_ns() - q->start_ns;
}

static void timer_unlink(struct timer *t)
{
    struct timerq *q = t->q;
    for (struct timer **pp = &q->head; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->next = NULL;
    t->armed = false;
}

/* Pops the head if due at now; NULL otherwise. Called with q->lock held. */
static struct timer *timerq_pop_due(struct timerq *q, uint64_t now)
{
    struct timer *t = q->head;
    if (!t || t->deadline > now) {
        return NULL;
    }
    q->head = t->next;
    t->next = NULL;
    t->armed = false;
    q->running = t;
    q->running_thread = pthread_self();
    return t;
}

static void timerq_run_cb(struct timerq *q, struct timer *t)
{
    timer_cb cb = t->cb;
    void *opaque = t->opaque;
    pthread_mutex_unlock(&q->lock);
    cb(opaque);
    pthread_mutex_lock(&q->lock);
    q->running = NULL;
    pthread_cond_broadcast(&q->idle);
}

static void *timerq_thread(void *arg)
{
    struct timerq *q = arg;
    pthread_mutex_lock(&q->lock);
    while (!q->stop) {
        struct timer *t = timerq_pop_due(q, timerq_now_locked(q));
        if (t) {
            timerq_run_cb(q, t);
            continue;
        }
        if (!q->head) {
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }
        uint64_t abs = q->start_ns + q->head->deadline;
        if (abs < q->start_ns) {
            abs = UINT64_MAX / 2; /* deadline beyond the clock's range: sleep "forever" */
        }
        struct timespec ts = {.tv_sec = (time_t)(abs / 1000000000ull),
                              .tv_nsec = (long)(abs % 1000000000ull)};
        pthread_cond_timedwait(&q->wake, &q->lock, &ts);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

struct timerq *timerq_new(bool deterministic)
{
    struct timerq *q = calloc(1, sizeof(*q));
    if (!q) {
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, &ca);
    pthread_cond_init(&q->idle, &ca);
    pthread_condattr_destroy(&ca);
    q->deterministic = deterministic;
    q->start_ns = timer_mono_ns();
    if (!deterministic) {
        if (pthread_create(&q->thread, NULL, timerq_thread, q) != 0) {
            pthread_cond_destroy(&q->wake);
            pthread_cond_destroy(&q->idle);
            pthread_mutex_destroy(&q->lock);
            free(q);
            return NULL;
        }
        q->has_thread = true;
    }
    return q;
}

/* Timers still armed are disarmed; their owners must still timer_free them before
 * the queue is freed (timers point at their queue). */
void timerq_free(struct timerq *q)
{
    if (!q) {
        return;
    }
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
    if (q->has_thread) {
        pthread_join(q->thread, NULL);
    }
    while (q->head) {
        timer_unlink(q->head);
    }
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->idle);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

uint64_t timerq_now_ns(struct timerq *q)
{
    if (!q->deterministic) {
        return timer_mono_ns() - q->start_ns;
    }
    pthread_mutex_lock(&q->lock);
    uint64_t now = q->det_now;
    pthread_mutex_unlock(&q->lock);
    return now;
}

void timerq_advance(struct timerq *q, uint64_t delta_ns)
{
    if (!q->deterministic) {
        return;
    }
    pthread_mutex_lock(&q->lock);
    uint64_t target = q->det_now + delta_ns;
    if (target < q->det_now) {
        target = UINT64_MAX;
    }
    struct timer *t;
    /* Each callback sees the clock at its own deadline, so a periodic timer that
     * re-arms at now + period stays on its grid even within one large advance. */
    while ((t = timerq_pop_due(q, target)) != NULL) {
        if (t->deadline > q->det_now) {
            q->det_now = t->deadline;
        }
        timerq_run_cb(q, t);
    }
    q->det_now = target;
    pthread_mutex_unlock(&q->lock);
}

uint64_t timerq_next_deadline_ns(struct timerq *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t ret = UINT64_MAX;
    if (q->head) {
        uint64_t now = timerq_now_locked(q);
        ret = q->head->deadline > now ? q->head->deadline - now : 0;
    }
    pthread_mutex_unlock(&q->lock);
    return ret;
}

struct timer *timer_new(struct timerq *q, timer_cb cb, void *opaque)
{
    if (!q || !cb) {
        return NULL;
    }
    struct timer *t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->q = q;
    t->cb = cb;
    t->opaque = opaque;
    return t;
}

/* Waits for a running callback of t to return, unless it is our own thread (a
 * callback freeing another timer of the same queue that is itself running cannot
 * happen: one queue runs one callback at a time). Do not call with a lock the
 * callback takes. */
void timer_free(struct timer *t)
{
    if (!t) {
        return;
    }
    struct timerq *q = t->q;
    pthread_mutex_lock(&q->lock);
    if (t->armed) {
        timer_unlink(t);
    }
    while (q->running == t && !pthread_equal(q->running_thread, pthread_self())) {
        pthread_cond_wait(&q->idle, &q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    free(t);
}

void timer_mod(struct timer *t, uint64_t deadline_ns)
{
    struct timerq *q = t->q;
    pthread_mutex_lock(&q->lock);
    if (t->armed) {
        timer_unlink(t);
    }
    t->deadline = deadline_ns;
    struct timer **pp = &q->head;
    while (*pp && (*pp)->deadline <= deadline_ns) {
        pp = &(*pp)->next;
    }
    t->next = *pp;
    *pp = t;
    t->armed = true;
    bool first = q->head == t;
    pthread_mutex_unlock(&q->lock);
    if (first) {
        pthread_cond_signal(&q->wake); /* after the unlock: the woken thread needs the lock */
    }
}

void timer_del(struct timer *t)
{
    struct timerq *q = t->q;
    pthread_mutex_lock(&q->lock);
    if (t->armed) {
        timer_unlink(t);
    }
    pthread_mutex_unlock(&q->lock);
}

bool timer_pending(const struct timer *t)
{
    struct timerq *q = t->q;
    pthread_mutex_lock(&q->lock);
    bool armed = t->armed;
    pthread_mutex_unlock(&q->lock);
    return armed;
}
