/* An interrupt line as a device sees it: a callback the machine wires up.
 * Devices never know whether the line ends in KVM's in-kernel irqchip or in the
 * devices/pc models used with the soft CPU. A unit test passes a counting mock. */
#ifndef LODGE_DEVICES_IRQ_H
#define LODGE_DEVICES_IRQ_H

struct irq_line {
    void (*set)(void *opaque, int line, int level); /* level: 0 low, 1 high */
    void *opaque;
    int line; /* GSI or controller input number, passed back to set() */
};

static inline void irq_set(const struct irq_line *l, int level)
{
    if (l && l->set) {
        l->set(l->opaque, l->line, level);
    }
}

static inline void irq_pulse(const struct irq_line *l)
{
    irq_set(l, 1);
    irq_set(l, 0);
}

#endif
