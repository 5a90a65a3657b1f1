/* Unit tests for core/timer: deterministic and realtime queues. */
#include "core/timer.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

struct probe {
    struct timerq *q;
    struct timer *t;
    int fired;             /* callback count */
    uint64_t seen_now[16]; /* timerq_now_ns at each firing */
    uint64_t period;       /* re-arm period, 0 = one shot */
    int max;               /* stop re-arming after this many */
    int *order;            /* shared firing order log */
    int *order_n;
    int id;
};

static void probe_cb(void *opaque)
{
    struct probe *p = opaque;
    if (p->fired < 16) {
        p->seen_now[p->fired] = timerq_now_ns(p->q);
    }
    p->fired++;
    if (p->order) {
        p->order[(*p->order_n)++] = p->id;
    }
    if (p->period && p->fired < p->max) {
        timer_mod(p->t, timerq_now_ns(p->q) + p->period);
    }
}

static void test_det_order_and_clock(void)
{
    struct timerq *q = timerq_new(true);
    int order[8], n = 0;
    struct probe a = {.q = q, .order = order, .order_n = &n, .id = 1};
    struct probe b = {.q = q, .order = order, .order_n = &n, .id = 2};
    a.t = timer_new(q, probe_cb, &a);
    b.t = timer_new(q, probe_cb, &b);
    CU_ASSERT_EQUAL(timerq_next_deadline_ns(q), UINT64_MAX);
    timer_mod(a.t, 3000);
    timer_mod(b.t, 1000);
    CU_ASSERT_TRUE(timer_pending(a.t));
    CU_ASSERT_EQUAL(timerq_next_deadline_ns(q), 1000);
    timerq_advance(q, 999);
    CU_ASSERT_EQUAL(a.fired + b.fired, 0);
    CU_ASSERT_EQUAL(timerq_next_deadline_ns(q), 1);
    timerq_advance(q, 5000);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(order[0], 2);
    CU_ASSERT_EQUAL(order[1], 1);
    CU_ASSERT_EQUAL(b.seen_now[0], 1000);
    CU_ASSERT_EQUAL(a.seen_now[0], 3000);
    CU_ASSERT_EQUAL(timerq_now_ns(q), 5999);
    CU_ASSERT_FALSE(timer_pending(a.t));
    timer_free(a.t);
    timer_free(b.t);
    timerq_free(q);
}

static void test_det_periodic_rearm(void)
{
    struct timerq *q = timerq_new(true);
    struct probe p = {.q = q, .period = 100, .max = 1000};
    p.t = timer_new(q, probe_cb, &p);
    timer_mod(p.t, 100);
    timerq_advance(q, 1050); /* one big step still fires every period on its grid */
    CU_ASSERT_EQUAL(p.fired, 10);
    CU_ASSERT_EQUAL(p.seen_now[9], 1000);
    CU_ASSERT_EQUAL(timerq_next_deadline_ns(q), 50);
    timer_del(p.t);
    CU_ASSERT_FALSE(timer_pending(p.t));
    timerq_advance(q, 10000);
    CU_ASSERT_EQUAL(p.fired, 10);
    timer_free(p.t);
    timerq_free(q);
}

static void test_det_mod_moves_deadline(void)
{
    struct timerq *q = timerq_new(true);
    struct probe p = {.q = q};
    p.t = timer_new(q, probe_cb, &p);
    timer_mod(p.t, 100);
    timer_mod(p.t, 500);
    timerq_advance(q, 200);
    CU_ASSERT_EQUAL(p.fired, 0);
    timerq_advance(q, 300);
    CU_ASSERT_EQUAL(p.fired, 1);
    /* A deadline in the past fires on the next advance. */
    timer_mod(p.t, 10);
    timerq_advance(q, 0);
    CU_ASSERT_EQUAL(p.fired, 2);
    timer_free(p.t);
    timerq_free(q);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct rt_probe {
    pthread_mutex_t lock;
    struct probe p;
    pthread_t cb_thread;
};

static void rt_cb(void *opaque)
{
    struct rt_probe *r = opaque;
    pthread_mutex_lock(&r->lock);
    r->cb_thread = pthread_self();
    probe_cb(&r->p);
    pthread_mutex_unlock(&r->lock);
}

static int rt_fired(struct rt_probe *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->p.fired;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void test_rt_fires_on_its_thread(void)
{
    struct timerq *q = timerq_new(false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    struct rt_probe r = {.lock = PTHREAD_MUTEX_INITIALIZER, .p = {.q = q}};
    r.p.t = timer_new(q, rt_cb, &r);
    uint64_t t0 = timerq_now_ns(q);
    timer_mod(r.p.t, t0 + 5000000); /* 5 ms */
    for (int i = 0; i < 200 && rt_fired(&r) == 0; i++) {
        sleep_ms(5);
    }
    CU_ASSERT_EQUAL(rt_fired(&r), 1);
    CU_ASSERT_TRUE(r.p.seen_now[0] >= t0 + 5000000);
    CU_ASSERT_FALSE(pthread_equal(r.cb_thread, pthread_self()));
    timer_free(r.p.t);
    timerq_free(q);
}

static void test_rt_periodic_and_del(void)
{
    struct timerq *q = timerq_new(false);
    struct rt_probe r = {.lock = PTHREAD_MUTEX_INITIALIZER,
                         .p = {.q = q, .period = 1000000, .max = 5}};
    struct rt_probe never = {.lock = PTHREAD_MUTEX_INITIALIZER, .p = {.q = q}};
    r.p.t = timer_new(q, rt_cb, &r);
    never.p.t = timer_new(q, rt_cb, &never);
    timer_mod(never.p.t, timerq_now_ns(q) + 20000000);
    timer_mod(r.p.t, timerq_now_ns(q) + 1000000);
    timer_del(never.p.t);
    for (int i = 0; i < 200 && rt_fired(&r) < 5; i++) {
        sleep_ms(5);
    }
    CU_ASSERT_EQUAL(rt_fired(&r), 5);
    sleep_ms(30);
    CU_ASSERT_EQUAL(rt_fired(&r), 5);
    CU_ASSERT_EQUAL(rt_fired(&never), 0);
    /* Earlier deadline armed after a later one must wake the sleeping thread early. */
    struct rt_probe late = {.lock = PTHREAD_MUTEX_INITIALIZER, .p = {.q = q}};
    late.p.t = timer_new(q, rt_cb, &late);
    timer_mod(late.p.t, timerq_now_ns(q) + 10000000000ull);
    sleep_ms(2);
    timer_mod(never.p.t, timerq_now_ns(q) + 1000000);
    for (int i = 0; i < 200 && rt_fired(&never) == 0; i++) {
        sleep_ms(5);
    }
    CU_ASSERT_EQUAL(rt_fired(&never), 1);
    CU_ASSERT_EQUAL(rt_fired(&late), 0);
    timer_free(late.p.t);
    timer_free(never.p.t);
    timer_free(r.p.t);
    timerq_free(q);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("timer", NULL, NULL);
    CU_add_test(s, "deterministic order and clock", test_det_order_and_clock);
    CU_add_test(s, "deterministic periodic re-arm", test_det_periodic_rearm);
    CU_add_test(s, "deterministic mod moves deadline", test_det_mod_moves_deadline);
    CU_add_test(s, "realtime fires on queue thread", test_rt_fires_on_its_thread);
    CU_add_test(s, "realtime periodic and del", test_rt_periodic_and_del);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
