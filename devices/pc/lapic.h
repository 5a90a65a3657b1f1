/* Local APIC, one per vCPU, for the soft CPU (with KVM the in-kernel one is used).
 *
 * xAPIC register page and x2APIC MSRs share one register space: lapic_read() and
 * lapic_write() take the xAPIC page offset of a 32-bit register (x2APIC MSR
 * 0x800 + n is offset n * 16). In x2APIC mode the ICR is one 64-bit MSR: use
 * lapic_write_icr64(), or write the high half at 0x310 first and then the low half
 * at 0x300 (the low write sends). lapic_fill_intc() fills a struct accel_intc.
 *
 * Threads: the LAPIC lock is never held while it calls out (kick, eoi, send_ipi,
 * extint_*), so those callbacks may call into any device, including this LAPIC
 * (send_ipi with the all-including-self shorthand comes back via lapic_deliver).
 *
 * Guest TSC = timerq_now_ns * tsc_hz / 1e9 + tsc offset (lapic_set_tsc_offset);
 * the TSC-deadline timer converts through that. The timer's input clock (the
 * "bus clock" before the divider) runs at LAPIC_BUS_HZ. */
#ifndef LODGE_DEVICES_PC_LAPIC_H
#define LODGE_DEVICES_PC_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/timer.h"
#include "devices/device.h"

struct accel_intc;

#define LAPIC_DEFAULT_BASE 0xfee00000ull
#define LAPIC_MMIO_SIZE 0x1000
#define LAPIC_BUS_HZ 1000000000ull /* 1 ns per timer input tick, as KVM */
#define LAPIC_VERSION 0x00050014u  /* integrated APIC, max LVT entry 5 */

/* IA32_APIC_BASE (MSR 0x1B) bits. */
#define LAPIC_BASE_BSP (1ull << 8)
#define LAPIC_BASE_EXTD (1ull << 10) /* x2APIC mode */
#define LAPIC_BASE_EN (1ull << 11)   /* global enable */

/* Register offsets (xAPIC page; x2APIC MSR = 0x800 + offset / 16). */
#define LAPIC_REG_ID 0x020
#define LAPIC_REG_VERSION 0x030
#define LAPIC_REG_TPR 0x080
#define LAPIC_REG_APR 0x090
#define LAPIC_REG_PPR 0x0a0
#define LAPIC_REG_EOI 0x0b0
#define LAPIC_REG_LDR 0x0d0
#define LAPIC_REG_DFR 0x0e0
#define LAPIC_REG_SVR 0x0f0
#define LAPIC_REG_ISR 0x100 /* 8 registers, 0x10 apart */
#define LAPIC_REG_TMR 0x180
#define LAPIC_REG_IRR 0x200
#define LAPIC_REG_ESR 0x280
#define LAPIC_REG_ICR_LO 0x300
#define LAPIC_REG_ICR_HI 0x310
#define LAPIC_REG_LVT_TIMER 0x320
#define LAPIC_REG_LVT_THERMAL 0x330
#define LAPIC_REG_LVT_PERF 0x340
#define LAPIC_REG_LVT_LINT0 0x350
#define LAPIC_REG_LVT_LINT1 0x360
#define LAPIC_REG_LVT_ERROR 0x370
#define LAPIC_REG_TIMER_ICR 0x380
#define LAPIC_REG_TIMER_CCR 0x390
#define LAPIC_REG_TIMER_DCR 0x3e0
#define LAPIC_REG_SELF_IPI 0x3f0 /* x2APIC only */

/* Delivery modes (ICR / LVT / IOAPIC encoding). */
#define LAPIC_DM_FIXED 0
#define LAPIC_DM_LOWEST 1
#define LAPIC_DM_SMI 2
#define LAPIC_DM_NMI 4
#define LAPIC_DM_INIT 5
#define LAPIC_DM_SIPI 6
#define LAPIC_DM_EXTINT 7

/* ICR destination shorthands. */
#define LAPIC_SH_NONE 0
#define LAPIC_SH_SELF 1
#define LAPIC_SH_ALL 2
#define LAPIC_SH_OTHERS 3

struct lapic;

struct lapic_callbacks {
    void *opaque;
    /* A new interrupt, NMI, INIT or SIPI became deliverable: wake the vCPU. */
    void (*kick)(void *opaque);
    /* EOI of a level-triggered vector (TMR set): the machine calls ioapic_eoi. */
    void (*eoi)(void *opaque, uint8_t vector);
    /* ICR write. dest is 8 bits (xAPIC) or 32 bits (x2APIC); level is the trigger
     * mode. Self-only IPIs are handled inside; INIT level de-assert is dropped. */
    void (*send_ipi)(void *opaque, uint32_t dest, uint8_t shorthand, bool dest_logical,
                     uint8_t delivery_mode, uint8_t vector, bool level);
    /* The PIC behind LINT0 (ExtINT): output level and INTA. */
    bool (*extint_pending)(void *opaque);
    int (*extint_ack)(void *opaque);
};

/* bsp: this is the bootstrap processor (APIC base BSP bit; APs start waiting for
 * INIT/SIPI). tsc_hz: guest TSC frequency for the TSC-deadline timer. cb is copied. */
struct lapic *lapic_new(struct timerq *q, uint32_t apic_id, bool bsp, uint64_t tsc_hz,
                        const struct lapic_callbacks *cb);
void lapic_free(struct lapic *l);

/* Registers: offset of a 32-bit register, 16-byte aligned, below 0x1000. Unknown
 * or misaligned offsets read 0 and ignore writes. */
uint32_t lapic_read(struct lapic *l, uint32_t offset);
void lapic_write(struct lapic *l, uint32_t offset, uint32_t val);
void lapic_write_icr64(struct lapic *l, uint64_t val);

/* IA32_APIC_BASE. Returns -EINVAL for an illegal value or transition (the CPU
 * raises #GP): reserved bits, x2APIC without enable, x2APIC -> xAPIC directly. */
uint64_t lapic_get_base(struct lapic *l);
int lapic_set_base(struct lapic *l, uint64_t val);
bool lapic_is_x2apic(struct lapic *l);
uint32_t lapic_get_id(struct lapic *l);

/* IA32_TSC_DEADLINE: 0 disarms; reads 0 once it fired. */
uint64_t lapic_get_tsc_deadline(struct lapic *l);
void lapic_set_tsc_deadline(struct lapic *l, uint64_t tsc);
void lapic_set_tsc_offset(struct lapic *l, int64_t offset);

/* External interrupt for the CPU: a deliverable IRR vector above PPR, else the PIC
 * through LINT0 in ExtINT mode (or with the APIC globally disabled). */
bool lapic_has_intr(struct lapic *l);
/* INTA: IRR -> ISR and returns the vector, or the PIC's vector; -1 if none. */
int lapic_ack(struct lapic *l);
bool lapic_nmi_pending(struct lapic *l);
void lapic_nmi_ack(struct lapic *l);
/* True while the vCPU waits for INIT/SIPI. Once a SIPI arrived after INIT it
 * returns false once with *vector set (start at vector << 12) and the LAPIC
 * leaves the wait state. */
bool lapic_wait_for_sipi(struct lapic *l, uint8_t *vector);

/* An interrupt message for this LAPIC (IOAPIC redirection or IPI after the machine
 * matched the destination). level is the trigger mode (sets TMR). */
void lapic_deliver(struct lapic *l, uint8_t delivery_mode, uint8_t vector, bool level);
/* LINT0/LINT1 pin (0/1) level, e.g. the PIC's INTR output on LINT0. */
void lapic_set_lint(struct lapic *l, int pin, int level);
/* Does a message for dest (physical ID or logical) target this LAPIC? Uses the
 * current mode: xAPIC 8-bit IDs with 0xFF broadcast, flat or cluster logical per
 * DFR; x2APIC 32-bit IDs with 0xFFFFFFFF broadcast and cluster logical per LDR. */
bool lapic_match_dest(struct lapic *l, uint32_t dest, bool dest_logical);
/* Processor priority, for lowest-priority arbitration. */
uint8_t lapic_get_ppr(struct lapic *l);

/* Point an accel_intc at this LAPIC (opaque = l). */
void lapic_fill_intc(struct lapic *l, struct accel_intc *intc);

extern const struct bus_ops lapic_bus_ops;       /* xAPIC page, opaque = struct lapic * */
extern const struct device_ops lapic_device_ops; /* dev is a struct lapic * */

#endif
