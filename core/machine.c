/* The PC machine: RAM layout, buses, devices, IRQ routing, vCPU threads, reset. */
#include "core/machine.h"

#include "core/acpi.h"
#include "core/boot_bios.h"
#include "core/boot_firmware.h"
#include "core/boot_linux.h"
#include "core/boot_multiboot.h"
#include "core/bus.h"
#include "core/chardev.h"
#include "core/log.h"
#include "core/machine_internal.h"
#include "core/machine_pci.h"
#include "core/machine_storage.h"
#include "core/timer.h"
#include "devices/irq.h"
#include "devices/pc/acpi_pm.h"
#include "devices/pc/debugcon.h"
#include "devices/pc/hpet.h"
#include "devices/pc/i8042.h"
#include "devices/pc/ioapic.h"
#include "devices/pc/lapic.h"
#include "devices/pc/pci_host.h"
#include "devices/pc/pic8259.h"
#include "devices/pc/pit8254.h"
#include "devices/pc/rtc.h"
#include "devices/pc/test_exit.h"
#include "devices/pc/uart16550.h"

#include <assert.h>
#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MACHINE_TAG "machine"
#define MACHINE_4G 0x100000000ull
#define MACHINE_VGA_WINDOW 0xa0000ull     /* firmware machines: VGA legacy window... */
#define MACHINE_VGA_WINDOW_END 0xc0000ull /* ...up to here (devices/display/vga.h) */
#define MACHINE_PM_BASE ACPI_PM_BASE_DEFAULT
#define MACHINE_SCI_IRQ ACPI_PM_SCI_IRQ
#define MACHINE_S5_TYP ACPI_PM_S5_TYP
/* The soft CPU's advertised TSC rate (CPU_SYS_DEFAULT_TSC_HZ in core/cpu/cpu.h): the
 * LAPIC's TSC-deadline timer must count at the same rate. */
#define MACHINE_SOFT_TSC_HZ 2000000000ull

static void machine_err(struct machine_error *err, bool user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void machine_err(struct machine_error *err, bool user, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->user = user;
}

/* ---- requests ------------------------------------------------------------------------- */

static void machine_post(struct machine *m, unsigned bits)
{
    pthread_mutex_lock(&m->req_lock);
    m->req |= bits;
    atomic_store(&m->req_pending, true);
    pthread_cond_broadcast(&m->req_cond);
    pthread_mutex_unlock(&m->req_lock);
    /* Get every vCPU out of guest code now, not when the control thread gets to it:
     * an engine that dispatches I/O itself would otherwise run on past a power-off. */
    for (int i = 0; i < m->nvcpus; i++) {
        if (m->vcpus[i].started) {
            vcpu_kick(&m->vcpus[i]);
        }
    }
}

void machine_request_poweroff(struct machine *m)
{
    log_info(MACHINE_TAG, "power-off requested");
    machine_post(m, MACHINE_REQ_POWEROFF);
}

void machine_request_reset(struct machine *m)
{
    log_info(MACHINE_TAG, "reset requested");
    machine_post(m, MACHINE_REQ_RESET);
}

void machine_request_quit(struct machine *m, int signo)
{
    pthread_mutex_lock(&m->req_lock);
    if (!m->quit_signo) {
        m->quit_signo = signo;
    }
    pthread_mutex_unlock(&m->req_lock);
    machine_post(m, MACHINE_REQ_QUIT);
}

void machine_request_exit(struct machine *m, int status)
{
    pthread_mutex_lock(&m->req_lock);
    if (!(m->req & MACHINE_REQ_EXIT)) {
        m->exit_status = status;
    }
    pthread_mutex_unlock(&m->req_lock);
    log_info(MACHINE_TAG, "exit with status %d requested", status);
    machine_post(m, MACHINE_REQ_EXIT);
}

void machine_request_error(struct machine *m, const char *text)
{
    pthread_mutex_lock(&m->req_lock);
    if (!m->error_text) {
        m->error_text = strdup(text);
    }
    pthread_mutex_unlock(&m->req_lock);
    machine_post(m, MACHINE_REQ_ERROR);
}

/* ---- interrupt routing ---------------------------------------------------------------- */

/* Whether ISA IRQ0 reaches IOAPIC pin 2 (the PC convention the MADT then states).
 * The userspace models are wired that way; KVM's default GSI routing sends GSI 0 to
 * pin 0, so under KVM the MADT leaves IRQ0 identity-mapped. */
static bool machine_irq0_on_pin2(const struct machine *m)
{
    return !m->kernel_irqchip;
}

/* Userspace IOAPIC pin for an ISA IRQ: IRQ0 is wired to pin 2 (MADT override). */
static int machine_isa_to_pin(uint32_t line)
{
    return line == 0 ? 2 : (int)line;
}

void machine_irq_set(struct machine *m, uint32_t line, int level)
{
    if (m->kernel_irqchip) {
        m->accel->irq_line(m->vm, line, level);
        return;
    }
    if (line < 16 && m->pic) {
        pic_set_irq(m->pic, (int)line, level);
    }
    if (m->ioapic) {
        ioapic_set_irq(m->ioapic, machine_isa_to_pin(line), level);
    }
}

static void machine_irq_line_cb(void *opaque, int line, int level)
{
    machine_irq_set(opaque, (uint32_t)line, level);
}

static struct irq_line machine_irq_line(struct machine *m, int line)
{
    return (struct irq_line){.set = machine_irq_line_cb, .opaque = m, .line = line};
}

/* HPET: IOAPIC pins, except ISA IRQ 0 and 8 in legacy replacement mode. */
static void machine_hpet_irq(void *opaque, int gsi, int level)
{
    struct machine *m = opaque;
    if (gsi == 0 || gsi == 8) {
        machine_irq_set(m, (uint32_t)gsi, level);
    } else if (m->ioapic) {
        ioapic_set_irq(m->ioapic, gsi, level);
    }
}

static void machine_pic_intr_changed(void *opaque, bool level)
{
    struct machine *m = opaque;
    if (m->nvcpus == 0) {
        return;
    }
    /* The PIC's INTR output is wired to the BSP's LINT0 (virtual wire mode). */
    if (m->vcpus[0].lapic) {
        lapic_set_lint(m->vcpus[0].lapic, 0, level);
    }
    if (level) {
        vcpu_kick(&m->vcpus[0]);
    }
}

/* Send an interrupt message to the LAPICs that dest selects. Lowest priority goes
 * to the matching LAPIC with the lowest PPR. */
static void machine_apic_message(struct machine *m, int self, uint32_t dest, uint8_t shorthand,
                                 bool logical, uint8_t mode, uint8_t vector, bool level)
{
    int best = -1;
    for (int i = 0; i < m->nvcpus; i++) {
        struct lapic *l = m->vcpus[i].lapic;
        if (!l) {
            continue;
        }
        bool hit;
        switch (shorthand) {
        case LAPIC_SH_SELF:
            hit = i == self;
            break;
        case LAPIC_SH_ALL:
            hit = true;
            break;
        case LAPIC_SH_OTHERS:
            hit = i != self;
            break;
        default:
            hit = lapic_match_dest(l, dest, logical);
            break;
        }
        if (!hit) {
            continue;
        }
        if (mode == LAPIC_DM_LOWEST) {
            if (best < 0 || lapic_get_ppr(l) < lapic_get_ppr(m->vcpus[best].lapic)) {
                best = i;
            }
            continue;
        }
        lapic_deliver(l, mode, vector, level);
    }
    if (best >= 0) {
        lapic_deliver(m->vcpus[best].lapic, LAPIC_DM_FIXED, vector, level);
    }
}

static void machine_ioapic_deliver(void *opaque, uint8_t dest, bool dest_logical,
                                   uint8_t delivery_mode, uint8_t vector, bool level_trigger)
{
    machine_apic_message(opaque, -1, dest, LAPIC_SH_NONE, dest_logical, delivery_mode, vector,
                         level_trigger);
}

/* An MSI write (Intel SDM vol. 3, 11.11): address 0xFEE[dest][RH][DM]x, data
 * [trigger][level][mode][vector]; the soft engine routes it like an IOAPIC message. */
int machine_msi(struct machine *m, uint64_t addr, uint32_t data)
{
    if (m->kernel_irqchip) {
        return m->accel->msi ? m->accel->msi(m->vm, addr, data) : -ENOSYS;
    }
    if ((addr >> 20) != 0xfee) {
        log_warn(MACHINE_TAG, "MSI to 0x%llx dropped: not the APIC window",
                 (unsigned long long)addr);
        return -EINVAL;
    }
    uint32_t dest = (uint32_t)(addr >> 12) & 0xff;
    bool logical = (addr >> 2) & 1;
    uint8_t mode = (uint8_t)((data >> 8) & 7);
    /* MSIs are edges: no remote IRR or EOI broadcast to wait for. */
    machine_apic_message(m, -1, dest, LAPIC_SH_NONE, logical, mode, (uint8_t)data, false);
    return 0;
}

static void machine_lapic_kick(void *opaque)
{
    vcpu_kick(opaque);
}

static void machine_lapic_eoi(void *opaque, uint8_t vector)
{
    struct machine_vcpu *v = opaque;
    if (v->m->ioapic) {
        ioapic_eoi(v->m->ioapic, vector);
    }
}

static void machine_lapic_send_ipi(void *opaque, uint32_t dest, uint8_t shorthand,
                                   bool dest_logical, uint8_t delivery_mode, uint8_t vector,
                                   bool level)
{
    struct machine_vcpu *v = opaque;
    machine_apic_message(v->m, v->index, dest, shorthand, dest_logical, delivery_mode, vector,
                         level);
}

static bool machine_lapic_extint_pending(void *opaque)
{
    struct machine_vcpu *v = opaque;
    return v->index == 0 && v->m->pic && pic_has_intr(v->m->pic);
}

static int machine_lapic_extint_ack(void *opaque)
{
    struct machine_vcpu *v = opaque;
    return v->index == 0 && v->m->pic ? pic_ack(v->m->pic) : -1;
}

static void machine_request_reset_cb(void *opaque)
{
    machine_request_reset(opaque);
}

static void machine_request_poweroff_cb(void *opaque)
{
    machine_request_poweroff(opaque);
}

/* ---- devices ---------------------------------------------------------------------- */

static void machine_add_dev(struct machine *m, const struct device_ops *ops, void *dev)
{
    if (m->ndevs < MACHINE_MAX_DEVS) {
        m->devs[m->ndevs++] = (struct machine_dev){.ops = ops, .dev = dev};
    }
}

static uint64_t machine_dummy_read(void *opaque, uint64_t off, unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static void machine_dummy_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
}

/* POST codes (0x80) and the I/O delay port (0xED): claimed so they don't log. */
static const struct bus_ops machine_dummy_ops = {.read = machine_dummy_read,
                                                 .write = machine_dummy_write};

static void machine_uart_tx(void *opaque, const uint8_t *buf, size_t len)
{
    chardev_write(opaque, buf, len);
}

static size_t machine_uart_rx(void *opaque, const uint8_t *buf, size_t len)
{
    int n = uart_receive(opaque, buf, len);
    return n > 0 ? (size_t)n : 0;
}

static void machine_test_exit_cb(void *opaque, int status)
{
    machine_request_exit(opaque, status);
}

/* Optional debug devices (--device test-exit, --debugcon); their ports are the user's
 * choice, so a clash with a platform device is the user's error. */
static int machine_add_debug_devices(struct machine *m, struct machine_error *err)
{
    char why[256] = "";
    if (m->cfg.test_exit) {
        struct test_exit_config tc;
        if (test_exit_parse(m->cfg.test_exit, &tc, why, sizeof(why)) < 0) {
            machine_err(err, true, "--device %s: %s", m->cfg.test_exit, why);
            return -EINVAL;
        }
        m->test_exit = test_exit_new(machine_test_exit_cb, m);
        if (!m->test_exit) {
            machine_err(err, false, "machine: out of memory creating devices");
            return -ENOMEM;
        }
        if (bus_register(m->pio, tc.iobase, tc.size, &test_exit_bus_ops, m->test_exit,
                         "test-exit") < 0) {
            machine_err(err, true, "--device %s: ports 0x%x-0x%x are taken by %s", m->cfg.test_exit,
                        tc.iobase, tc.iobase + tc.size - 1,
                        bus_lookup_name(m->pio, tc.iobase) ? bus_lookup_name(m->pio, tc.iobase)
                                                           : "another device");
            return -EEXIST;
        }
        machine_add_dev(m, &test_exit_device_ops, m->test_exit);
    }
    if (m->cfg.debugcon) {
        struct debugcon_config dc;
        if (debugcon_parse(m->cfg.debugcon, &dc, why, sizeof(why)) < 0) {
            machine_err(err, true, "--debugcon: %s", why);
            return -EINVAL;
        }
        int rc = chardev_open(dc.sink, NULL, &m->debugcon_out, why, sizeof(why));
        if (rc < 0) {
            machine_err(err, true, "--debugcon: %s", why);
            return rc;
        }
        m->debugcon = debugcon_new(machine_uart_tx, m->debugcon_out);
        if (!m->debugcon) {
            machine_err(err, false, "machine: out of memory creating devices");
            return -ENOMEM;
        }
        if (bus_register(m->pio, dc.iobase, 1, &debugcon_bus_ops, m->debugcon, "debugcon") < 0) {
            machine_err(err, true, "--debugcon: port 0x%x is taken by %s", dc.iobase,
                        bus_lookup_name(m->pio, dc.iobase) ? bus_lookup_name(m->pio, dc.iobase)
                                                           : "another device");
            return -EEXIST;
        }
        machine_add_dev(m, &debugcon_device_ops, m->debugcon);
    }
    return 0;
}

static void machine_serial_quit(void *opaque)
{
    machine_request_quit(opaque, 0);
}

static void machine_cmos_memory(struct machine *m)
{
    uint64_t ext_kb = (m->low_size - 0x100000) >> 10;
    if (ext_kb > 0xffff) {
        ext_kb = 0xffff;
    }
    uint64_t above16 = m->low_size > (16ull << 20) ? (m->low_size - (16ull << 20)) >> 16 : 0;
    if (above16 > 0xffff) {
        above16 = 0xffff;
    }
    uint64_t high = m->high_size >> 16;
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_BASE_LO, 640 & 0xff);
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_BASE_HI, 640 >> 8);
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_EXT_LO, (uint8_t)ext_kb);
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_EXT_HI, (uint8_t)(ext_kb >> 8));
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_EXT2_LO, (uint8_t)ext_kb);
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_EXT2_HI, (uint8_t)(ext_kb >> 8));
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_16M_LO, (uint8_t)above16);
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_16M_HI, (uint8_t)(above16 >> 8));
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_HIGH_0, (uint8_t)high);
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_HIGH_1, (uint8_t)(high >> 8));
    rtc_cmos_set(m->rtc, RTC_CMOS_MEM_HIGH_2, (uint8_t)(high >> 16));
}

static int machine_add_devices(struct machine *m, struct machine_error *err)
{
    int rc = 0;
    bool soft = !m->kernel_irqchip;

    /* Interrupt controllers and timers the kernel does not provide. */
    if (soft) {
        m->pic = pic_new(machine_pic_intr_changed, m);
        m->ioapic = ioapic_new(0, machine_ioapic_deliver, m);
        struct irq_line irq0 = machine_irq_line(m, 0);
        m->pit = pit_new(m->tq, &irq0);
        m->hpet = hpet_new(m->tq, machine_hpet_irq, m);
        if (!m->pic || !m->ioapic || !m->pit || !m->hpet) {
            machine_err(err, false, "machine: out of memory creating interrupt controllers");
            return -ENOMEM;
        }
        rc |= bus_register(m->pio, PIC_PORT_MASTER, 2, &pic_master_bus_ops, m->pic, "pic-m");
        rc |= bus_register(m->pio, PIC_PORT_SLAVE, 2, &pic_slave_bus_ops, m->pic, "pic-s");
        rc |= bus_register(m->pio, PIC_PORT_ELCR, 2, &pic_elcr_bus_ops, m->pic, "elcr");
        rc |= bus_register(m->pio, PIT_PORT_BASE, 4, &pit_bus_ops, m->pit, "pit");
        rc |= bus_register(m->pio, PIT_PORT_61, 1, &pit_port61_bus_ops, m->pit, "port61");
        rc |= bus_register(m->mmio, IOAPIC_DEFAULT_BASE, IOAPIC_MMIO_SIZE, &ioapic_bus_ops,
                           m->ioapic, "ioapic");
        rc |= bus_register(m->mmio, HPET_DEFAULT_BASE, HPET_MMIO_SIZE, &hpet_bus_ops, m->hpet,
                           "hpet");
        machine_add_dev(m, &pic_device_ops, m->pic);
        machine_add_dev(m, &ioapic_device_ops, m->ioapic);
        machine_add_dev(m, &pit_device_ops, m->pit);
        machine_add_dev(m, &hpet_device_ops, m->hpet);
        for (int i = 0; i < m->nvcpus; i++) {
            struct machine_vcpu *v = &m->vcpus[i];
            struct lapic_callbacks lcb = {.opaque = v,
                                          .kick = machine_lapic_kick,
                                          .eoi = machine_lapic_eoi,
                                          .send_ipi = machine_lapic_send_ipi,
                                          .extint_pending = machine_lapic_extint_pending,
                                          .extint_ack = machine_lapic_extint_ack};
            v->lapic = lapic_new(m->tq, (uint32_t)i, i == 0, MACHINE_SOFT_TSC_HZ, &lcb);
            if (!v->lapic) {
                machine_err(err, false, "machine: out of memory creating LAPICs");
                return -ENOMEM;
            }
            machine_add_dev(m, &lapic_device_ops, v->lapic);
        }
    }

    /* COM1 */
    struct irq_line irq4 = machine_irq_line(m, UART_COM1_IRQ);
    struct uart_backend be = {.opaque = m->serial, .write = machine_uart_tx};
    m->uart = uart_new(&irq4, &be, m->tq);
    struct irq_line irq8 = machine_irq_line(m, RTC_IRQ);
    m->rtc = rtc_new(&irq8, m->tq);
    if (!m->uart || !m->rtc) {
        machine_err(err, false, "machine: out of memory creating devices");
        return -ENOMEM;
    }
    chardev_set_receiver(m->serial, machine_uart_rx, m->uart);
    chardev_set_quit(m->serial, machine_serial_quit, m);
    rc |= bus_register(m->pio, UART_COM1_BASE, UART_IO_LEN, &uart_bus_ops, m->uart, "com1");
    rc |= bus_register(m->pio, RTC_IO_BASE, RTC_IO_LEN, &rtc_bus_ops, m->rtc, "rtc");
    machine_add_dev(m, &uart_device_ops, m->uart);
    machine_add_dev(m, &rtc_device_ops, m->rtc);
    machine_cmos_memory(m);

    struct irq_line irq1 = machine_irq_line(m, I8042_KBD_IRQ);
    struct irq_line irq12 = machine_irq_line(m, I8042_AUX_IRQ);
    struct i8042_callbacks kcb = {.opaque = m, .reset = machine_request_reset_cb};
    m->i8042 = i8042_new(&irq1, &irq12, &kcb);
    struct irq_line sci = machine_irq_line(m, MACHINE_SCI_IRQ);
    struct acpi_pm_callbacks pcb = {.opaque = m, .poweroff = machine_request_poweroff_cb};
    m->acpi_pm = acpi_pm_new(&sci, m->tq, &pcb);
    m->reset_ctl = reset_ctl_new(machine_request_reset_cb, m);
    m->pci_host = pci_host_new();
    if (!m->i8042 || !m->acpi_pm || !m->reset_ctl || !m->pci_host) {
        machine_err(err, false, "machine: out of memory creating devices");
        return -ENOMEM;
    }
    rc |= bus_register(m->pio, I8042_DATA_PORT, 1, &i8042_data_bus_ops, m->i8042, "i8042-data");
    rc |= bus_register(m->pio, I8042_CMD_PORT, 1, &i8042_cmd_bus_ops, m->i8042, "i8042-cmd");
    rc |= bus_register(m->pio, MACHINE_PM_BASE, ACPI_PM_IO_LEN, &acpi_pm_bus_ops, m->acpi_pm,
                       "acpi-pm");
    /* 0xCF8 is only ever accessed as a dword, so the reset register fits at 0xCF9. */
    rc |= bus_register(m->pio, PCI_HOST_ADDR_PORT, 1, &pci_host_addr_bus_ops, m->pci_host,
                       "pci-addr");
    rc |= bus_register(m->pio, RESET_CTL_PORT, RESET_CTL_IO_LEN, &reset_ctl_bus_ops, m->reset_ctl,
                       "reset-ctl");
    rc |= bus_register(m->pio, PCI_HOST_DATA_PORT, 4, &pci_host_data_bus_ops, m->pci_host,
                       "pci-data");
    machine_add_dev(m, &i8042_device_ops, m->i8042);
    machine_add_dev(m, &acpi_pm_device_ops, m->acpi_pm);
    machine_add_dev(m, &reset_ctl_device_ops, m->reset_ctl);
    machine_add_dev(m, &pci_host_device_ops, m->pci_host);

    rc |= bus_register(m->pio, 0x80, 1, &machine_dummy_ops, m, "post");
    rc |= bus_register(m->pio, 0xed, 1, &machine_dummy_ops, m, "iodelay");
    if (rc) {
        machine_err(err, false, "machine: overlapping device ranges (internal error)");
        return -EEXIST;
    }
    rc = machine_add_debug_devices(m, err);
    if (rc < 0) {
        return rc;
    }
    rc = machine_pci_add_devices(m, err);
    if (rc == 0) {
        rc = machine_storage_add(m, err);
    }
    return rc < 0 ? rc : boot_firmware_add_devices(m, err);
}

/* ---- vCPU interrupt glue (soft engine) ------------------------------------------------ */

static void machine_setup_intc(struct machine *m)
{
    if (m->kernel_irqchip || !m->accel->vcpu_set_intc) {
        return;
    }
    for (int i = 0; i < m->nvcpus; i++) {
        struct machine_vcpu *v = &m->vcpus[i];
        memset(&v->intc, 0, sizeof(v->intc));
        if (v->lapic) {
            lapic_fill_intc(v->lapic, &v->intc);
        }
        m->accel->vcpu_set_intc(v->acc, &v->intc);
    }
}

/* ---- loading and reset ------------------------------------------------------------ */

static int machine_load(struct machine *m, struct boot_linux_layout *layout,
                        struct machine_error *err)
{
    if (m->cfg.bios) {
        int rc = boot_bios_load(&m->mem, m->cfg.bios, m->cfg.bios_size);
        if (rc < 0) {
            machine_err(err, true, "%s: cannot map the firmware image", m->cfg.bios_path);
        }
        return rc;
    }
    uint64_t rsdp = 0;
    static_assert(ACPI_TABLES_BASE == E820_BIOS_START, "ACPI tables live in the BIOS area");
    uint8_t *tables = guestmem_ptr_rw(&m->mem, ACPI_TABLES_BASE, ACPI_TABLES_SIZE);
    if (tables) {
        struct acpi_config ac = {.ncpus = m->nvcpus,
                                 .hpet = m->hpet != NULL,
                                 .pm_base = MACHINE_PM_BASE,
                                 .sci_irq = MACHINE_SCI_IRQ,
                                 .s5_typ = MACHINE_S5_TYP,
                                 .pci_root = m->pci != NULL || m->storage != NULL,
                                 .irq0_to_gsi2 = machine_irq0_on_pin2(m)};
        if (acpi_build(&ac, ACPI_TABLES_BASE, tables, ACPI_TABLES_SIZE) > 0) {
            rsdp = ACPI_TABLES_BASE;
        }
    }
    if (boot_mb_detect(m->cfg.kernel, m->cfg.kernel_size)) {
        struct boot_mb_args mba = {.kernel = m->cfg.kernel,
                                   .kernel_size = m->cfg.kernel_size,
                                   .kernel_name = m->cfg.kernel_path,
                                   .mods = m->cfg.mb_modules,
                                   .nmods = m->cfg.mb_nmodules,
                                   .cmdline = m->cfg.append,
                                   .e820 = &m->e820};
        m->multiboot = true;
        int rc = boot_mb_load(&m->mem, &mba, &m->mb_layout, err->msg, sizeof(err->msg));
        if (rc < 0) {
            err->user = true;
        }
        return rc;
    }
    struct boot_linux_args a = {
        .kernel = m->cfg.kernel,
        .kernel_size = m->cfg.kernel_size,
        .kernel_name = m->cfg.kernel_path,
        .initrd = m->cfg.initrd,
        .initrd_size = m->cfg.initrd_size,
        .initrd_name = m->cfg.initrd_path,
        .cmdline = m->cfg.append,
        .low_end = m->low_size,
        .e820 = &m->e820,
        .rsdp_addr = rsdp,
        .host_inflate = m->cfg.kernel_inflate == MACHINE_INFLATE_HOST ||
                        (m->cfg.kernel_inflate == MACHINE_INFLATE_AUTO && !m->accel->irq_line)};
    int rc = boot_linux_load(&m->mem, &a, layout, err->msg, sizeof(err->msg));
    if (rc < 0) {
        err->user = true;
    } else {
        machine_fb_boot_info(m, layout->zero_page); /* core/machine_ui.c */
    }
    return rc;
}

/* Power-on state: devices, images, vCPUs. Called with no vCPU thread running. */
static int machine_reset(struct machine *m, struct machine_error *err)
{
    for (int i = 0; i < m->ndevs; i++) {
        if (m->devs[i].ops->reset) {
            m->devs[i].ops->reset(m->devs[i].dev);
        }
    }
    machine_pci_reset(m);
    machine_storage_reset(m);
    if (m->rtc) {
        machine_cmos_memory(m);
    }
    struct boot_linux_layout layout;
    int rc = machine_load(m, &layout, err);
    if (rc < 0) {
        return rc;
    }
    for (int i = 0; i < m->nvcpus; i++) {
        rc = m->accel->vcpu_reset(m->vcpus[i].acc);
        if (rc < 0) {
            machine_err(err, false, "%s: cannot reset vCPU %d: %s", m->accel->name, i,
                        strerror(-rc));
            return rc;
        }
    }
    if (m->multiboot) {
        rc = boot_mb_setup_cpu(m->accel, m->vcpus[0].acc, &m->mem, &m->mb_layout);
        if (rc < 0) {
            machine_err(err, false, "%s: cannot set the multiboot entry state: %s", m->accel->name,
                        strerror(-rc));
            return rc;
        }
    } else if (m->cfg.kernel && !m->cfg.fw) { /* firmware boots it via fw_cfg */
        rc = boot_linux_setup_cpu(m->accel, m->vcpus[0].acc, &m->mem, &layout);
        if (rc < 0) {
            machine_err(err, false, "%s: cannot set the 64-bit entry state: %s", m->accel->name,
                        strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* ---- main loop thread ------------------------------------------------------------------ */

static void *machine_loop_main(void *opaque)
{
    struct machine *m = opaque;
    g_main_context_push_thread_default(m->ctx);
    /* Not g_main_loop_run: a quit that comes before the loop starts would be lost. */
    while (!atomic_load(&m->loop_quit)) {
        g_main_context_iteration(m->ctx, TRUE);
    }
    g_main_context_pop_thread_default(m->ctx);
    return NULL;
}

struct machine_sig {
    struct machine *m;
    int signo;
};

static gboolean machine_sig_cb(gpointer opaque)
{
    struct machine_sig *s = opaque;
    machine_request_quit(s->m, s->signo);
    return G_SOURCE_CONTINUE;
}

static void machine_watch_signals(struct machine *m)
{
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        struct machine_sig *s = g_new0(struct machine_sig, 1);
        s->m = m;
        s->signo = sigs[i];
        m->sig_src[i] = g_unix_signal_source_new(sigs[i]);
        g_source_set_callback(m->sig_src[i], machine_sig_cb, s, g_free);
        g_source_attach(m->sig_src[i], m->ctx);
    }
}

/* ---- life cycle -------------------------------------------------------------------------- */

int machine_new(const struct machine_config *cfg, struct machine **out, struct machine_error *err)
{
    memset(err, 0, sizeof(*err));
    if (cfg->mem_size < MACHINE_MIN_MEM || (cfg->mem_size & 0xfff)) {
        machine_err(err, true, "--mem: %llu bytes is too little (need at least 32M, in 4K units)",
                    (unsigned long long)cfg->mem_size);
        return -EINVAL;
    }
    if (cfg->ncpus < 1 || cfg->ncpus > MACHINE_MAX_CPUS) {
        machine_err(err, true, "--cpus: %d is out of range 1..%d", cfg->ncpus, MACHINE_MAX_CPUS);
        return -EINVAL;
    }
    if (!cfg->kernel == !cfg->bios && !(cfg->fw && cfg->bios)) {
        machine_err(err, true, "lodge run: give exactly one of --kernel and --bios");
        return -EINVAL;
    }
    struct machine *m = calloc(1, sizeof(*m));
    if (!m) {
        machine_err(err, false, "machine: out of memory");
        return -ENOMEM;
    }
    m->cfg = *cfg;
    m->accel = cfg->accel;
    m->nvcpus = cfg->ncpus;
    pthread_mutex_init(&m->req_lock, NULL);
    pthread_cond_init(&m->req_cond, NULL);
    for (int i = 0; i < MACHINE_MAX_CPUS; i++) {
        m->vcpus[i].m = m;
        m->vcpus[i].index = i;
        pthread_mutex_init(&m->vcpus[i].lock, NULL);
        pthread_cond_init(&m->vcpus[i].cond, NULL);
    }
    int rc;

    /* RAM */
    m->low_size = cfg->mem_size < MACHINE_LOW_MAX ? cfg->mem_size : MACHINE_LOW_MAX;
    m->high_size = cfg->mem_size - m->low_size;
    if (cfg->fw) {
        /* With firmware the VGA decodes 0xA0000-0xBFFFF (its legacy window, MMIO on the
         * bus): low RAM goes around it, as on a PC. */
        rc = guestmem_add(&m->mem, "ram-low", 0, MACHINE_VGA_WINDOW, false);
        if (rc == 0) {
            rc = guestmem_add(&m->mem, "ram-low-c", MACHINE_VGA_WINDOW_END,
                              m->low_size - MACHINE_VGA_WINDOW_END, false);
        }
    } else {
        rc = guestmem_add(&m->mem, "ram-low", 0, m->low_size, false);
    }
    if (rc == 0 && m->high_size) {
        rc = guestmem_add(&m->mem, "ram-high", MACHINE_4G, m->high_size, false);
    }
    if (rc == 0 && cfg->fb_width && cfg->fb_height) {
        /* The display's pixels: plain guest memory, shared with viewers by its memfd. */
        uint64_t fb = ((uint64_t)cfg->fb_width * cfg->fb_height * 4 + 0xffff) & ~0xffffull;
        if (fb > MACHINE_FB_MAX_SIZE) {
            machine_err(err, true, "--display: %ux%u is too large", cfg->fb_width, cfg->fb_height);
            machine_free(m);
            return -EINVAL;
        }
        rc = guestmem_add_shared(&m->mem, "fb", MACHINE_FB_BASE, fb);
    }
    if (rc == 0 && cfg->bios) {
        uint64_t rom = boot_bios_rom_size(cfg->bios_size);
        if (rom == 0) {
            machine_err(err, true, "%s: firmware image must be 1 byte to 16 MiB", cfg->bios_path);
            machine_free(m);
            return -EINVAL;
        }
        rc = guestmem_add(&m->mem, "bios", MACHINE_4G - rom, rom, true);
    }
    if (rc < 0) {
        machine_err(err, false, "--mem: cannot allocate guest memory: %s", strerror(-rc));
        machine_free(m);
        return rc;
    }
    e820_build_pc(&m->e820, m->low_size, m->high_size);

    /* Check the images before anything expensive: bad input is exit status 2. */
    struct boot_linux_layout layout;
    m->nvcpus = cfg->ncpus;
    rc = machine_load(m, &layout, err);
    if (rc < 0) {
        machine_free(m);
        return rc;
    }

    /* Engine */
    struct accel_probe probe = {0};
    rc = m->accel->probe ? m->accel->probe(&probe) : -ENOSYS;
    if (rc < 0 || !probe.available) {
        machine_err(err, false, "--accel %s: %s", m->accel->name,
                    probe.reason[0] ? probe.reason : "engine not available");
        machine_free(m);
        return rc < 0 ? rc : -ENODEV;
    }
    m->kernel_irqchip = probe.irqchip_in_kernel && m->accel->irq_line;
    m->pio = bus_new("pio");
    m->mmio = bus_new("mmio");
    m->tq = timerq_new(false);
    m->ctx = g_main_context_new();
    if (!m->pio || !m->mmio || !m->tq) {
        machine_err(err, false, "machine: out of memory");
        machine_free(m);
        return -ENOMEM;
    }
    char cerr[256] = "";
    rc = chardev_open(cfg->serial ? cfg->serial : "stdio", m->ctx, &m->serial, cerr, sizeof(cerr));
    if (rc < 0) {
        machine_err(err, true, "--serial: %s", cerr);
        machine_free(m);
        return rc;
    }
    struct accel_vm_config vc = {
        .mem = &m->mem, .pio = m->pio, .mmio = m->mmio, .ncpus = m->nvcpus, .deterministic = false};
    rc = m->accel->vm_create(&vc, &m->vm);
    if (rc < 0) {
        machine_err(err, false, "--accel %s: cannot create the VM: %s", m->accel->name,
                    strerror(-rc));
        machine_free(m);
        return rc;
    }
    for (int i = 0; i < m->mem.n; i++) {
        struct guestmem_region *r = &m->mem.r[i];
        rc = m->accel->map_ram(m->vm, r->gpa, r->size, r->hva, r->readonly);
        if (rc < 0) {
            machine_err(err, false, "--accel %s: cannot map %s: %s", m->accel->name, r->name,
                        strerror(-rc));
            machine_free(m);
            return rc;
        }
    }
    rc = machine_add_devices(m, err);
    if (rc < 0) {
        machine_free(m);
        return rc;
    }
    for (int i = 0; i < m->nvcpus; i++) {
        rc = m->accel->vcpu_create(m->vm, i, &m->vcpus[i].acc);
        if (rc < 0) {
            machine_err(err, false, "--accel %s: cannot create vCPU %d: %s", m->accel->name, i,
                        strerror(-rc));
            machine_free(m);
            return rc;
        }
    }
    machine_setup_intc(m);
    machine_watch_signals(m);
    *out = m;
    return 0;
}

static void machine_stop_vcpus(struct machine *m)
{
    atomic_store(&m->stop_vcpus, true);
    for (int i = 0; i < m->nvcpus; i++) {
        struct machine_vcpu *v = &m->vcpus[i];
        if (!v->started) {
            continue;
        }
        /* A kick can land just before the engine enters the guest: repeat until joined. */
        for (;;) {
            vcpu_kick(v);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_timedjoin_np(v->thread, NULL, &ts) == 0) {
                break;
            }
        }
        v->started = false;
    }
}

static int machine_start_vcpus(struct machine *m)
{
    atomic_store(&m->stop_vcpus, false);
    for (int i = 0; i < m->nvcpus; i++) {
        struct machine_vcpu *v = &m->vcpus[i];
        v->kicked = false;
        /* Marked before the thread exists: its guest may ask for a reset at once, and
         * machine_post only kicks started vCPUs. */
        v->started = true;
        int rc = pthread_create(&v->thread, NULL, vcpu_thread_main, v);
        if (rc != 0) {
            v->started = false;
            return -rc;
        }
    }
    return 0;
}

static int machine_run_loop(struct machine *m)
{
    struct machine_error err = {0};
    int status = 1;
    if (machine_reset(m, &err) < 0) {
        fprintf(stderr, "lodge: %s\n", err.msg);
        return 1;
    }
    /* Host input only after the devices' power-on reset, which would drop it. */
    if (pthread_create(&m->loop_thread, NULL, machine_loop_main, m) == 0) {
        m->loop_started = true;
    }
    for (;;) {
        int rc = machine_start_vcpus(m);
        if (rc < 0) {
            fprintf(stderr, "lodge: cannot start vCPU threads: %s\n", strerror(-rc));
            machine_stop_vcpus(m);
            return 1;
        }
        pthread_mutex_lock(&m->req_lock);
        while (!m->req) {
            pthread_cond_wait(&m->req_cond, &m->req_lock);
        }
        unsigned req = m->req;
        m->req = 0;
        pthread_mutex_unlock(&m->req_lock);
        machine_stop_vcpus(m);
        /* Requests made while the vCPUs were stopping count too (e.g. a second error). */
        pthread_mutex_lock(&m->req_lock);
        req |= m->req;
        m->req = 0;
        atomic_store(&m->req_pending, false);
        pthread_mutex_unlock(&m->req_lock);

        if (req & (MACHINE_REQ_PAUSE | MACHINE_REQ_RESUME)) {
            req = machine_wait_paused(m, req); /* core/machine_ui.c */
            if (!req) {
                continue;
            }
        }
        if (req & MACHINE_REQ_ERROR) {
            fputs(m->error_text ? m->error_text : "lodge: machine error\n", stderr);
            status = 1;
            break;
        }
        if (req & MACHINE_REQ_EXIT) {
            status = m->exit_status;
            break;
        }
        if (req & MACHINE_REQ_QUIT) {
            status = m->quit_signo ? 128 + m->quit_signo : 0;
            if (m->quit_signo) {
                fprintf(stderr, "lodge: terminated by signal %d\n", m->quit_signo);
            }
            break;
        }
        if (req & MACHINE_REQ_POWEROFF) {
            machine_emit(m, MACHINE_EVENT_POWEROFF);
            status = 0;
            break;
        }
        if (req & MACHINE_REQ_RESET) {
            machine_emit(m, MACHINE_EVENT_RESET);
            if (m->cfg.no_reboot) {
                status = 0;
                break;
            }
            if (machine_reset(m, &err) < 0) {
                fprintf(stderr, "lodge: %s\n", err.msg);
                status = 1;
                break;
            }
        }
    }
    return status;
}

int machine_run(struct machine *m)
{
    machine_set_state(m, MACHINE_STATE_RUNNING);
    machine_emit(m, MACHINE_EVENT_RUNNING);
    int status = machine_run_loop(m);
    machine_set_state(m, MACHINE_STATE_STOPPED);
    machine_emit(m, MACHINE_EVENT_STOPPED);
    return status;
}

void machine_free(struct machine *m)
{
    if (!m) {
        return;
    }
    machine_stop_vcpus(m);
    if (m->loop_started) {
        atomic_store(&m->loop_quit, true);
        g_main_context_wakeup(m->ctx);
        pthread_join(m->loop_thread, NULL);
    }
    for (int i = 0; i < 3; i++) {
        if (m->sig_src[i]) {
            g_source_destroy(m->sig_src[i]);
            g_source_unref(m->sig_src[i]);
        }
    }
    machine_pci_free(m); /* before the buses its BARs sit on */
    machine_storage_free(m);
    boot_firmware_free(m);
    /* Devices before the timer queue (timer_free needs it, and waits for a running
     * callback) and timer-driven devices before the interrupt controllers and vCPUs
     * their callbacks reach. */
    if (m->uart) {
        uart_free(m->uart);
    }
    if (m->i8042) {
        i8042_free(m->i8042);
    }
    if (m->acpi_pm) {
        acpi_pm_free(m->acpi_pm);
    }
    if (m->reset_ctl) {
        reset_ctl_free(m->reset_ctl);
    }
    if (m->pci_host) {
        pci_host_free(m->pci_host);
    }
    if (m->test_exit) {
        test_exit_free(m->test_exit);
    }
    if (m->debugcon) {
        debugcon_free(m->debugcon);
    }
    chardev_free(m->debugcon_out);
    if (m->rtc) {
        rtc_free(m->rtc);
    }
    if (m->hpet) {
        hpet_free(m->hpet);
    }
    if (m->pit) {
        pit_free(m->pit);
    }
    for (int i = 0; i < m->nvcpus; i++) {
        if (m->vcpus[i].lapic) {
            lapic_free(m->vcpus[i].lapic);
            m->vcpus[i].lapic = NULL;
        }
    }
    if (m->ioapic) {
        ioapic_free(m->ioapic);
    }
    if (m->pic) {
        pic_free(m->pic);
    }
    if (m->tq) {
        timerq_free(m->tq);
    }
    for (int i = 0; i < m->nvcpus; i++) {
        if (m->vcpus[i].acc) {
            m->accel->vcpu_destroy(m->vcpus[i].acc);
        }
    }
    if (m->vm) {
        m->accel->vm_destroy(m->vm);
    }
    chardev_free(m->serial); /* restores the terminal */
    if (m->pio) {
        bus_free(m->pio);
    }
    if (m->mmio) {
        bus_free(m->mmio);
    }
    if (m->ctx) {
        g_main_context_unref(m->ctx);
    }
    guestmem_free(&m->mem);
    for (int i = 0; i < MACHINE_MAX_CPUS; i++) {
        pthread_mutex_destroy(&m->vcpus[i].lock);
        pthread_cond_destroy(&m->vcpus[i].cond);
    }
    pthread_mutex_destroy(&m->req_lock);
    pthread_cond_destroy(&m->req_cond);
    free(m->error_text);
    free(m);
}
