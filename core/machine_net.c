/* NICs of the PC machine (see machine_net.h). */
#include "core/machine_net.h"

#include "core/boot_firmware.h"
#include "core/log.h"
#include "core/machine_internal.h"
#include "core/machine_pci.h"
#include "devices/pc/pci_host.h"
#include "devices/net/e1000.h"
#include "devices/pci/pci_dev.h"
#include "devices/virtio/virtio_net.h"
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MNET_TAG "machine"

struct machine_net {
    struct net_backend *be[NET_MAX_NICS]; /* host side of NIC i */
    struct virtio_net *vnet[NET_MAX_NICS]; /* model=virtio, else NULL */
    struct e1000 *e1000[NET_MAX_NICS];     /* model=e1000, else NULL */
    int n;
};

static void mnet_irq_cb(void *opaque, int line, int level)
{
    machine_irq_set(opaque, (uint32_t)line, level);
}

static int mnet_msi_cb(void *opaque, uint64_t addr, uint32_t data)
{
    return machine_msi(opaque, addr, data);
}

int machine_net_rom_path(int model, int fw_kind, char *buf, size_t len)
{
    const char *name = model == NET_MODEL_VIRTIO  ? "virtio"
                       : model == NET_MODEL_E1000 ? "e1000"
                                                  : NULL;
    const char *kind = fw_kind == BOOT_FW_BIOS ? "pxe" : fw_kind == BOOT_FW_UEFI ? "efi" : NULL;
    if (!name || !kind) {
        return -EINVAL;
    }
    snprintf(buf, len, "%s/%s-%s.rom", MACHINE_NET_ROM_DIR, kind, name);
    return 0;
}

/* Whether --boot lists net. */
static bool mnet_boot_net(const struct boot_fw_config *fc)
{
    gchar **parts = g_strsplit(fc->boot, ",", -1);
    bool net = false;
    for (int i = 0; parts[i]; i++) {
        net = net || strcmp(parts[i], "net") == 0;
    }
    g_strfreev(parts);
    return net;
}

/* With firmware, the NIC gets iPXE as its expansion ROM (what SeaBIOS runs and OVMF
 * loads as a driver), so the firmware can boot from the network. The ROM missing is an
 * error only when --boot asks for net; otherwise the NIC just cannot PXE boot. */
static int mnet_add_rom(struct machine *m, struct pci_dev *pd, int model, struct machine_error *err)
{
    const struct boot_fw_config *fc = m->cfg.fw;
    char path[256];
    if (!fc || machine_net_rom_path(model, fc->kind, path, sizeof(path)) < 0) {
        return 0;
    }
    gchar *rom = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &rom, &len, NULL)) {
        if (!mnet_boot_net(fc)) {
            log_warn(MNET_TAG, "%s not found: the NIC has no boot ROM (apt-get install %s)", path,
                     MACHINE_NET_ROM_PKG);
            return 0;
        }
        snprintf(err->msg, sizeof(err->msg),
                 "--boot net: iPXE boot ROM not found (%s): apt-get install %s", path,
                 MACHINE_NET_ROM_PKG);
        err->user = true;
        return -ENOENT;
    }
    int rc = pci_dev_set_rom(pd, rom, len);
    g_free(rom);
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot use as a boot ROM: %s", path,
                 strerror(-rc));
        err->user = true;
    }
    return rc;
}

/* Pre-assigns every BAR the device declared (memory from mmio, I/O from io) and
 * puts it on bus 0 at slot. */
static int mnet_plug(struct machine *m, struct pci_dev *pd, int slot, uint32_t mmio, uint32_t io)
{
    int rc = 0;
    for (int i = 0; i < PCI_DEV_NUM_BARS && rc == 0; i++) {
        struct pci_dev_bar *b = &pd->bars[i];
        if (b->type == PCI_BAR_IO) {
            rc = pci_dev_set_bar_default(pd, i, io);
            io += (uint32_t)b->size;
        } else if (b->type == PCI_BAR_MEM32 || b->type == PCI_BAR_MEM64) {
            mmio = (uint32_t)((mmio + b->size - 1) & ~(b->size - 1));
            rc = pci_dev_set_bar_default(pd, i, mmio);
            mmio += (uint32_t)b->size;
        }
    }
    pci_dev_set_default_command(pd, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    struct irq_line intx = {.set = mnet_irq_cb, .opaque = m, .line = pci_dev_intx_gsi(slot, 1)};
    struct pci_msi_sink msi = {.send = mnet_msi_cb, .opaque = m};
    pci_dev_attach(pd, m->pio, m->mmio, &intx, &msi);
    if (rc == 0) {
        rc = pci_host_add_device(m->pci_host, slot, 0, &pci_dev_config_ops, pd);
    }
    if (rc == 0) {
        pci_dev_reset(pd);
    }
    return rc;
}

int machine_net_add(struct machine *m, const struct machine_pci_config *pc,
                    struct machine_net **out, struct machine_error *err)
{
    struct machine_net *mn = calloc(1, sizeof(*mn));
    if (!mn) {
        snprintf(err->msg, sizeof(err->msg), "machine: out of memory");
        return -ENOMEM;
    }
    *out = mn;
    for (int i = 0; i < pc->nnics; i++) {
        const struct net_nic_config *nc = &pc->nics[i];
        uint8_t mac[6];
        if (nc->has_mac) {
            memcpy(mac, nc->mac, 6);
        } else {
            net_default_mac((unsigned)i, mac);
        }
        unsigned mtu = nc->model == NET_MODEL_VIRTIO ? NET_MTU_MAX : NET_MTU_DEFAULT;
        if (nc->mtu) {
            mtu = nc->mtu; /* mtu=: what virtio-net offers and slirp's if_mtu */
        }
        if (m->cfg.fw && m->cfg.fw->kind != BOOT_FW_NONE && mnet_boot_net(m->cfg.fw)) {
            /* iPXE's TFTP transfers time out on a virtio-net that offers MTU 65520
             * (DHCP works; with 1500 everything does): network boots keep 1500. */
            mtu = NET_MTU_DEFAULT;
        }
        char why[256] = "";
        int rc = net_slirp_new(nc, mtu, m->ctx, &mn->be[i], why, sizeof(why));
        if (rc < 0) {
            snprintf(err->msg, sizeof(err->msg), "--net: %s", why);
            err->user = true;
            return rc;
        }
        mn->n = i + 1;
        struct pci_dev *pd = NULL;
        if (nc->model == NET_MODEL_VIRTIO) {
            mn->vnet[i] = virtio_net_new(&m->mem, mac, mtu, mn->be[i]);
            pd = mn->vnet[i] ? virtio_pci_pci(virtio_net_transport(mn->vnet[i])) : NULL;
        } else {
            mn->e1000[i] = e1000_new(&m->mem, mac, mn->be[i]);
            if (mn->e1000[i] && e1000_set_timerq(mn->e1000[i], m->tq) < 0) {
                e1000_free(mn->e1000[i]);
                mn->e1000[i] = NULL;
            }
            pd = mn->e1000[i] ? e1000_pci(mn->e1000[i]) : NULL;
        }
        if (!pd) {
            snprintf(err->msg, sizeof(err->msg), "machine: out of memory creating a NIC");
            return -ENOMEM;
        }
        rc = mnet_add_rom(m, pd, (int)nc->model, err);
        if (rc < 0) {
            return rc;
        }
        int slot = MACHINE_NET_FIRST_SLOT + i;
        rc = mnet_plug(m, pd, slot, MACHINE_NET_MMIO_BASE + (uint32_t)i * MACHINE_NET_MMIO_STRIDE,
                       MACHINE_NET_IO_BASE + (uint32_t)i * 0x40);
        if (rc < 0) {
            snprintf(err->msg, sizeof(err->msg), "machine: cannot place a NIC at 00:%02x.0: %s",
                     slot, strerror(-rc));
            return rc;
        }
        log_info(MNET_TAG, "NIC %d: %s %02x:%02x:%02x:%02x:%02x:%02x at 00:%02x.0", i,
                 nc->model == NET_MODEL_VIRTIO ? "virtio-net" : "e1000", mac[0], mac[1], mac[2],
                 mac[3], mac[4], mac[5], slot);
    }
    return 0;
}

void machine_net_reset(struct machine_net *mn)
{
    if (!mn) {
        return;
    }
    for (int i = 0; i < mn->n; i++) {
        if (mn->vnet[i]) {
            virtio_pci_device_ops.reset(virtio_net_transport(mn->vnet[i]));
        }
        if (mn->e1000[i]) {
            e1000_reset(mn->e1000[i]);
        }
    }
}

void machine_net_free(struct machine_net *mn)
{
    if (!mn) {
        return;
    }
    /* The loop thread has stopped: no backend callback can run any more. */
    for (int i = 0; i < mn->n; i++) {
        virtio_net_free(mn->vnet[i]);
        e1000_free(mn->e1000[i]);
        net_backend_free(mn->be[i]);
    }
    free(mn);
}
