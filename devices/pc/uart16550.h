/* NS16550A UART core (COM1 is 0x3f8, IRQ 4), bus-agnostic in the bhyve style.
 *
 * Registers are reached through uart_read/uart_write at offsets 0..7. Transmitted
 * bytes go straight to the backend (the line has no baud-rate delay, so the TX
 * FIFO drains as it is written and THRE/TEMT read as set). Received bytes come from
 * the host through uart_receive(); the main loop flow-controls its input with
 * uart_rx_space().
 *
 * Locking: one mutex per UART. The backend's write() and irq_set() are called with
 * that mutex held: neither may call back into the same UART synchronously (a
 * backend that loops TX back to RX must queue it). */
#ifndef LODGE_DEVICES_PC_UART16550_H
#define LODGE_DEVICES_PC_UART16550_H

#include "core/bus.h"
#include "core/timer.h"
#include "devices/device.h"
#include "devices/irq.h"

#include <stddef.h>
#include <stdint.h>

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ 4
#define UART_COM2_BASE 0x2f8
#define UART_COM2_IRQ 3
#define UART_IO_LEN 8
#define UART_FIFO_SIZE 16

/* Host side of the transmit path (chardev-like). */
struct uart_backend {
    void *opaque;
    void (*write)(void *opaque, const uint8_t *buf, size_t len);
};

struct uart;

/* irq and backend are copied; backend may be NULL (output dropped). tq may be NULL:
 * then the character-timeout interrupt is reported as soon as the RX FIFO holds
 * data below its trigger level, instead of after four character times. */
struct uart *uart_new(const struct irq_line *irq, const struct uart_backend *backend,
                      struct timerq *tq);
void uart_free(struct uart *u);

uint64_t uart_read(struct uart *u, uint64_t off, unsigned size);
void uart_write(struct uart *u, uint64_t off, uint64_t val, unsigned size);

/* Host -> guest bytes. Returns how many were accepted; the caller keeps the rest
 * and retries when uart_rx_space() grows. Accepts nothing in loopback mode. */
int uart_receive(struct uart *u, const uint8_t *buf, size_t len);
size_t uart_rx_space(struct uart *u);

extern const struct bus_ops uart_bus_ops;       /* opaque = struct uart *, len UART_IO_LEN */
extern const struct device_ops uart_device_ops; /* dev = struct uart * */

#endif
