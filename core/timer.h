/* Timers for device models (PIT, RTC, HPET, LAPIC timer, UART timeouts).
 *
 * One timer queue per machine runs callbacks on its own thread at host-clock
 * deadlines. In deterministic mode the queue's clock is advanced by the soft CPU
 * (timerq_advance) instead of following CLOCK_MONOTONIC, and callbacks run on the
 * caller's thread. Callbacks must not call timer_free on their own timer. */
#ifndef LODGE_CORE_TIMER_H
#define LODGE_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct timerq;
struct timer;

typedef void (*timer_cb)(void *opaque);

struct timerq *timerq_new(bool deterministic);
void timerq_free(struct timerq *q);
/* Guest time in nanoseconds: host monotonic time since timerq_new, or the
 * deterministic clock. */
uint64_t timerq_now_ns(struct timerq *q);
/* Deterministic mode only: move the clock forward and fire what is due. */
void timerq_advance(struct timerq *q, uint64_t delta_ns);
/* Deterministic mode only: nanoseconds until the next deadline (UINT64_MAX if none). */
uint64_t timerq_next_deadline_ns(struct timerq *q);

struct timer *timer_new(struct timerq *q, timer_cb cb, void *opaque);
void timer_free(struct timer *t);
/* Arm for an absolute deadline (timerq_now_ns clock); re-arming moves it. */
void timer_mod(struct timer *t, uint64_t deadline_ns);
void timer_del(struct timer *t);
bool timer_pending(const struct timer *t);

#endif
