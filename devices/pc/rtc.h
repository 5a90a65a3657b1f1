/* MC146818A real-time clock and CMOS RAM at 0x70/0x71 (IRQ 8), bus-agnostic.
 *
 * Offset 0 is the index port (bits 0-6 index, bit 7 masks NMI), offset 1 the data
 * port. The guest's wall clock is the host's UTC clock plus an offset the guest
 * sets through the time registers; it advances with the timer queue's clock, so a
 * deterministic queue gives a deterministic RTC. Periodic, update-ended and alarm
 * interrupts run on tq's timers.
 *
 * Locking: one mutex per RTC; irq_set() is called with it held (irq_set never
 * calls back into the RTC). */
#ifndef LODGE_DEVICES_PC_RTC_H
#define LODGE_DEVICES_PC_RTC_H

#include "core/bus.h"
#include "core/timer.h"
#include "devices/device.h"
#include "devices/irq.h"

#include <stdbool.h>
#include <stdint.h>

#define RTC_IO_BASE 0x70
#define RTC_IO_LEN 2
#define RTC_IRQ 8
#define RTC_CMOS_SIZE 128

/* CMOS bytes the machine fills in (IBM PC/AT and SeaBIOS layout). */
#define RTC_CMOS_MEM_BASE_LO 0x15 /* base memory in KiB (640) */
#define RTC_CMOS_MEM_BASE_HI 0x16
#define RTC_CMOS_MEM_EXT_LO 0x17 /* memory 1M..65M in KiB */
#define RTC_CMOS_MEM_EXT_HI 0x18
#define RTC_CMOS_MEM_EXT2_LO 0x30 /* same as 0x17/0x18 (older BIOSes read these) */
#define RTC_CMOS_MEM_EXT2_HI 0x31
#define RTC_CMOS_MEM_16M_LO 0x34 /* memory 16M..4G in 64 KiB units */
#define RTC_CMOS_MEM_16M_HI 0x35
#define RTC_CMOS_CENTURY 0x32
#define RTC_CMOS_MEM_HIGH_0 0x5b /* memory above 4G in 64 KiB units, 3 bytes */
#define RTC_CMOS_MEM_HIGH_1 0x5c
#define RTC_CMOS_MEM_HIGH_2 0x5d

struct rtc;

/* tq is required (the RTC's clock and interrupt source). */
struct rtc *rtc_new(const struct irq_line *irq, struct timerq *tq);
/* Call without holding anything an RTC timer callback takes. */
void rtc_free(struct rtc *r);

uint64_t rtc_read(struct rtc *r, uint64_t off, unsigned size);
void rtc_write(struct rtc *r, uint64_t off, uint64_t val, unsigned size);

/* Sets a CMOS byte (idx 0..127). Returns 0 or -EINVAL. */
int rtc_cmos_set(struct rtc *r, int idx, uint8_t val);
/* Sets the guest's wall clock to unix_seconds UTC, now (e.g. a --rtc base option). */
void rtc_set_time(struct rtc *r, int64_t unix_seconds);
/* Port 0x70 bit 7: whether the guest masked NMI. */
bool rtc_nmi_masked(struct rtc *r);

extern const struct bus_ops rtc_bus_ops;       /* opaque = struct rtc *, len RTC_IO_LEN */
extern const struct device_ops rtc_device_ops; /* dev = struct rtc * */

#endif
