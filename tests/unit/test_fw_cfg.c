/* fw_cfg: selector/data protocol, file directory, DMA (with hostile descriptors) and
 * the ACPI table loader built from core/acpi.c's tables (QEMU docs/specs/fw_cfg.rst,
 * hw/acpi/bios-linker-loader.c command layout). */
#include "core/acpi.h"
#include "core/boot_firmware.h"
#include "core/guestmem.h"
#include "core/machine_net.h"
#include "devices/pc/fw_cfg.h"
#include "net/net.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#define RAM_SIZE (1u << 20)

static void sel(struct fw_cfg *fc, uint16_t key)
{
    fw_cfg_write(fc, FW_CFG_OFF_SELECTOR, key, 2);
}

static void data(struct fw_cfg *fc, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)fw_cfg_read(fc, FW_CFG_OFF_DATA, 1);
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_signature_and_id(void)
{
    struct guestmem gm = {0};
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&gm, "ram", 0, RAM_SIZE, false), 0);
    struct fw_cfg *fc = fw_cfg_new(&gm);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fc);
    uint8_t b[8];
    sel(fc, FW_CFG_SIGNATURE);
    data(fc, b, 4);
    CU_ASSERT_EQUAL(memcmp(b, "QEMU", 4), 0);
    /* Past the end reads zero. */
    data(fc, b, 1);
    CU_ASSERT_EQUAL(b[0], 0);
    sel(fc, FW_CFG_ID);
    data(fc, b, 4);
    CU_ASSERT_EQUAL(le32(b), FW_CFG_VERSION_TRADITIONAL | FW_CFG_VERSION_DMA);
    /* The DMA register reads "QEMU CFG" byte by byte. */
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)fw_cfg_read(fc, FW_CFG_OFF_DMA_HI + i, 1);
    }
    CU_ASSERT_EQUAL(memcmp(b, "QEMU CFG", 8), 0);
    /* Unknown keys read zero. */
    sel(fc, 0x1ff);
    data(fc, b, 2);
    CU_ASSERT_EQUAL(b[0] | b[1], 0);
    fw_cfg_free(fc);
    /* Without guest memory there is no DMA. */
    fc = fw_cfg_new(NULL);
    sel(fc, FW_CFG_ID);
    data(fc, b, 4);
    CU_ASSERT_EQUAL(le32(b), FW_CFG_VERSION_TRADITIONAL);
    fw_cfg_free(fc);
    guestmem_free(&gm);
}

static void test_items_and_reselect(void)
{
    struct fw_cfg *fc = fw_cfg_new(NULL);
    CU_ASSERT_EQUAL(fw_cfg_add_i64(fc, FW_CFG_RAM_SIZE, 0x123456789ull), 0);
    CU_ASSERT_EQUAL(fw_cfg_add_i16(fc, FW_CFG_NB_CPUS, 3), 0);
    CU_ASSERT_EQUAL(fw_cfg_add_i32(fc, FW_CFG_E820_TABLE, 7), 0);
    /* Keys that are not plain items are refused. */
    CU_ASSERT_EQUAL(fw_cfg_add_i16(fc, FW_CFG_FILE_DIR, 1), -EINVAL);
    CU_ASSERT_EQUAL(fw_cfg_add_i16(fc, FW_CFG_FILE_FIRST, 1), -EINVAL);
    CU_ASSERT_EQUAL(fw_cfg_add_i16(fc, FW_CFG_NB_CPUS | FW_CFG_WRITE_FLAG, 1), -EINVAL);
    uint8_t b[8];
    sel(fc, FW_CFG_RAM_SIZE);
    data(fc, b, 3);
    sel(fc, FW_CFG_RAM_SIZE); /* selecting again restarts at offset 0 */
    data(fc, b, 8);
    CU_ASSERT_EQUAL(le32(b), 0x23456789u);
    CU_ASSERT_EQUAL(le32(b + 4), 1u);
    sel(fc, FW_CFG_NB_CPUS);
    CU_ASSERT_EQUAL(fw_cfg_read(fc, FW_CFG_OFF_DATA, 2), 3u); /* wide read: bytes in order */
    sel(fc, FW_CFG_E820_TABLE);
    data(fc, b, 4);
    CU_ASSERT_EQUAL(le32(b), 7u);
    fw_cfg_free(fc);
}

static void test_file_dir(void)
{
    struct fw_cfg *fc = fw_cfg_new(NULL);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "etc/zeta", "zz", 2), 0);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "bootorder", "/pci@i0cf8\n", 12), 0);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "etc/alpha", "abc", 3), 0);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "etc/alpha", "abcd", 4), 0); /* replace */
    char longname[70];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, longname, "a", 1), -EINVAL);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "", "a", 1), -EINVAL);

    uint8_t dir[4 + 3 * 64];
    sel(fc, FW_CFG_FILE_DIR);
    data(fc, dir, sizeof(dir));
    CU_ASSERT_EQUAL(be32(dir), 3u);
    const char *want[3] = {"bootorder", "etc/alpha", "etc/zeta"};
    const uint32_t sizes[3] = {12, 4, 2};
    for (int i = 0; i < 3; i++) {
        const uint8_t *e = dir + 4 + 64 * i;
        CU_ASSERT_EQUAL(be32(e), sizes[i]);
        uint16_t key = (uint16_t)(e[4] << 8 | e[5]);
        CU_ASSERT_EQUAL(key, FW_CFG_FILE_FIRST + i);
        CU_ASSERT_STRING_EQUAL((const char *)e + 8, want[i]);
        /* The listed key selects that file. */
        uint8_t b[12];
        sel(fc, key);
        data(fc, b, sizes[i]);
        size_t len = 0;
        const uint8_t *p = fw_cfg_get_file(fc, want[i], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(len, sizes[i]);
        CU_ASSERT_EQUAL(memcmp(b, p, sizes[i]), 0);
    }
    fw_cfg_free(fc);
}

/* Write a big-endian FWCfgDmaAccess at gpa. */
static void put_dma(struct guestmem *gm, uint64_t gpa, uint32_t control, uint32_t len,
                    uint64_t addr)
{
    uint8_t d[16];
    for (int i = 0; i < 4; i++) {
        d[i] = (uint8_t)(control >> (24 - 8 * i));
        d[4 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++) {
        d[8 + i] = (uint8_t)(addr >> (56 - 8 * i));
    }
    CU_ASSERT_EQUAL_FATAL(guestmem_write(gm, gpa, d, sizeof(d)), 0);
}

/* Trigger with the two dword writes SeaBIOS uses (each big-endian on the wire). */
static void kick_dma(struct fw_cfg *fc, uint64_t gpa)
{
    fw_cfg_write(fc, FW_CFG_OFF_DMA_HI, __builtin_bswap32((uint32_t)(gpa >> 32)), 4);
    fw_cfg_write(fc, FW_CFG_OFF_DMA_LO, __builtin_bswap32((uint32_t)gpa), 4);
}

static uint32_t dma_control(struct guestmem *gm, uint64_t gpa)
{
    uint8_t b[4];
    CU_ASSERT_EQUAL(guestmem_read(gm, gpa, b, 4), 0);
    return be32(b);
}

static void test_dma(void)
{
    struct guestmem gm = {0};
    CU_ASSERT_EQUAL_FATAL(guestmem_add(&gm, "ram", 0, RAM_SIZE, false), 0);
    struct fw_cfg *fc = fw_cfg_new(&gm);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "opt/test", "hello world", 11), 0);
    size_t len;
    CU_ASSERT_PTR_NOT_NULL(fw_cfg_get_file(fc, "opt/test", &len));

    /* select + read the file, longer than it is: the tail is zero-filled */
    uint8_t junk[16];
    memset(junk, 0xaa, sizeof(junk));
    guestmem_write(&gm, 0x2000, junk, sizeof(junk));
    put_dma(&gm, 0x1000, (uint32_t)FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ,
            16, 0x2000);
    kick_dma(fc, 0x1000);
    CU_ASSERT_EQUAL(dma_control(&gm, 0x1000), 0);
    uint8_t got[16];
    guestmem_read(&gm, 0x2000, got, 16);
    CU_ASSERT_EQUAL(memcmp(got, "hello world\0\0\0\0\0", 16), 0);

    /* skip then read continues at the offset; a 64-bit write also triggers */
    put_dma(&gm, 0x1000, (uint32_t)FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP, 6,
            0);
    fw_cfg_write(fc, FW_CFG_OFF_DMA_HI, __builtin_bswap64(0x1000), 8);
    CU_ASSERT_EQUAL(dma_control(&gm, 0x1000), 0);
    put_dma(&gm, 0x1000, FW_CFG_DMA_READ, 5, 0x3000);
    kick_dma(fc, 0x1000);
    guestmem_read(&gm, 0x3000, got, 5);
    CU_ASSERT_EQUAL(memcmp(got, "world", 5), 0);

    /* hostile: destination beyond RAM -> error bit, nothing written outside */
    put_dma(&gm, 0x1000, (uint32_t)FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ,
            11, RAM_SIZE - 4);
    kick_dma(fc, 0x1000);
    CU_ASSERT_EQUAL(dma_control(&gm, 0x1000), FW_CFG_DMA_ERROR);
    /* hostile: address wraps around 2^64 */
    put_dma(&gm, 0x1000, (uint32_t)FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ,
            0x100, ~0ull - 0x10);
    kick_dma(fc, 0x1000);
    CU_ASSERT_EQUAL(dma_control(&gm, 0x1000), FW_CFG_DMA_ERROR);
    /* hostile: huge length to an address in RAM fails at the RAM end */
    put_dma(&gm, 0x1000, FW_CFG_DMA_READ, 0xffffffffu, 0x4000);
    kick_dma(fc, 0x1000);
    CU_ASSERT_EQUAL(dma_control(&gm, 0x1000), FW_CFG_DMA_ERROR);
    /* writes are refused */
    put_dma(&gm, 0x1000, (uint32_t)FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE,
            4, 0x2000);
    kick_dma(fc, 0x1000);
    CU_ASSERT_EQUAL(dma_control(&gm, 0x1000), FW_CFG_DMA_ERROR);
    size_t n;
    const uint8_t *p = fw_cfg_get_file(fc, "opt/test", &n);
    CU_ASSERT_EQUAL(memcmp(p, "hello world", 11), 0);
    /* descriptor itself outside RAM: ignored, no crash */
    kick_dma(fc, 0xfffffff0ull);
    kick_dma(fc, ~0ull - 4);
    fw_cfg_free(fc);
    guestmem_free(&gm);
}

static int hook_calls;

static void count_hook(void *opaque, struct fw_cfg *fc)
{
    hook_calls++;
    fw_cfg_add_file(fc, "etc/lazy", "NEW", 3); /* hooks may replace their file */
}

static void test_select_hook(void)
{
    struct fw_cfg *fc = fw_cfg_new(NULL);
    CU_ASSERT_EQUAL(fw_cfg_add_file(fc, "etc/lazy", "old", 3), 0);
    CU_ASSERT_EQUAL(fw_cfg_set_select_hook(fc, "etc/lazy", count_hook, NULL), 0);
    CU_ASSERT_EQUAL(fw_cfg_set_select_hook(fc, "etc/none", count_hook, NULL), -ENOENT);
    hook_calls = 0;
    sel(fc, FW_CFG_FILE_FIRST);
    uint8_t b[3];
    data(fc, b, 3);
    CU_ASSERT_EQUAL(hook_calls, 1);
    CU_ASSERT_EQUAL(memcmp(b, "NEW", 3), 0);
    fw_cfg_free(fc);
}

static void test_loader_commands(void)
{
    struct fw_cfg_loader l = {0};
    fw_cfg_loader_allocate(&l, "etc/acpi/rsdp", 16, FW_CFG_LOADER_ZONE_FSEG);
    fw_cfg_loader_add_pointer(&l, "etc/acpi/rsdp", "etc/acpi/tables", 16, 4);
    fw_cfg_loader_add_checksum(&l, "etc/acpi/rsdp", 8, 0, 20);
    CU_ASSERT_EQUAL(l.error, 0);
    CU_ASSERT_EQUAL_FATAL(l.len, 3 * FW_CFG_LOADER_CMD_SIZE);
    const uint8_t *c = l.buf;
    CU_ASSERT_EQUAL(le32(c), FW_CFG_LOADER_ALLOCATE);
    CU_ASSERT_STRING_EQUAL((const char *)c + 4, "etc/acpi/rsdp");
    CU_ASSERT_EQUAL(le32(c + 60), 16u);
    CU_ASSERT_EQUAL(c[64], FW_CFG_LOADER_ZONE_FSEG);
    c += 128;
    CU_ASSERT_EQUAL(le32(c), FW_CFG_LOADER_ADD_POINTER);
    CU_ASSERT_STRING_EQUAL((const char *)c + 4, "etc/acpi/rsdp");
    CU_ASSERT_STRING_EQUAL((const char *)c + 60, "etc/acpi/tables");
    CU_ASSERT_EQUAL(le32(c + 116), 16u);
    CU_ASSERT_EQUAL(c[120], 4);
    c += 128;
    CU_ASSERT_EQUAL(le32(c), FW_CFG_LOADER_ADD_CHECKSUM);
    CU_ASSERT_EQUAL(le32(c + 60), 8u);
    CU_ASSERT_EQUAL(le32(c + 64), 0u);
    CU_ASSERT_EQUAL(le32(c + 68), 20u);
    fw_cfg_loader_add_pointer(&l, "a", "b", 0, 3);
    CU_ASSERT_EQUAL(l.error, -EINVAL);
    fw_cfg_loader_free(&l);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s = (uint8_t)(s + p[i]);
    }
    return s;
}

/* Run the loader the way SeaBIOS's romfile_loader does, with tables at 0x40000
 * and the RSDP at 0xF0000, then check what an OS would. */
static void test_acpi_loader_result(void)
{
    struct acpi_config ac = {.ncpus = 2,
                             .hpet = true,
                             .pm_base = 0x600,
                             .sci_irq = 9,
                             .s5_typ = 5,
                             .pci_root = true,
                             .irq0_to_gsi2 = true};
    uint8_t *t, *r, *l;
    size_t tn, rn, ln;
    CU_ASSERT_EQUAL_FATAL(boot_firmware_acpi_blobs(&ac, &t, &tn, &r, &rn, &l, &ln), 0);
    CU_ASSERT_EQUAL(rn, 36u);
    CU_ASSERT_EQUAL(memcmp(r, "RSD PTR ", 8), 0);
    CU_ASSERT_EQUAL(ln % FW_CFG_LOADER_CMD_SIZE, 0u);
    const uint64_t tbase = 0x40000, rbase = 0xf0000;
    int allocs = 0;
    for (size_t off = 0; off < ln; off += FW_CFG_LOADER_CMD_SIZE) {
        const uint8_t *c = l + off;
        uint32_t type = le32(c);
        const char *f = (const char *)c + 4;
        uint8_t *fb = strcmp(f, "etc/acpi/tables") == 0 ? t : r;
        size_t flen = fb == t ? tn : rn;
        if (type == FW_CFG_LOADER_ALLOCATE) {
            allocs++;
            CU_ASSERT(strcmp(f, "etc/acpi/tables") == 0 || strcmp(f, "etc/acpi/rsdp") == 0);
        } else if (type == FW_CFG_LOADER_ADD_POINTER) {
            const char *src = (const char *)c + 60;
            uint32_t o = le32(c + 116);
            uint8_t size = c[120];
            CU_ASSERT_FATAL(o + size <= flen);
            uint64_t v = 0;
            memcpy(&v, fb + o, size);
            CU_ASSERT(v < tn); /* an offset into the tables before relocation */
            v += strcmp(src, "etc/acpi/tables") == 0 ? tbase : rbase;
            memcpy(fb + o, &v, size);
        } else if (type == FW_CFG_LOADER_ADD_CHECKSUM) {
            uint32_t o = le32(c + 60), st = le32(c + 64), n = le32(c + 68);
            CU_ASSERT_FATAL(st + n <= flen && o < flen);
            fb[o] = (uint8_t)(0 - sum8(fb + st, n)); /* as OVMF: field included */
        } else {
            CU_FAIL("unknown loader command");
        }
    }
    CU_ASSERT_EQUAL(allocs, 2);
    /* RSDP checksums and the XSDT it points to. */
    CU_ASSERT_EQUAL(sum8(r, 20), 0);
    CU_ASSERT_EQUAL(sum8(r, 36), 0);
    uint64_t xsdt = 0;
    memcpy(&xsdt, r + 24, 8);
    CU_ASSERT_FATAL(xsdt >= tbase && xsdt < tbase + tn);
    const uint8_t *x = t + (xsdt - tbase);
    CU_ASSERT_EQUAL(memcmp(x, "XSDT", 4), 0);
    uint32_t xlen = le32(x + 4);
    CU_ASSERT_EQUAL(sum8(x, xlen), 0);
    bool fadt = false;
    for (uint32_t i = 36; i + 8 <= xlen; i += 8) {
        uint64_t e = 0;
        memcpy(&e, x + i, 8);
        CU_ASSERT_FATAL(e >= tbase && e < tbase + tn);
        const uint8_t *h = t + (e - tbase);
        CU_ASSERT_EQUAL(sum8(h, le32(h + 4)), 0);
        if (memcmp(h, "FACP", 4) == 0) {
            fadt = true;
            uint32_t dsdt = le32(h + 40), facs = le32(h + 36);
            CU_ASSERT_FATAL(dsdt >= tbase && dsdt < tbase + tn);
            CU_ASSERT_EQUAL(memcmp(t + (dsdt - tbase), "DSDT", 4), 0);
            CU_ASSERT_EQUAL(sum8(t + (dsdt - tbase), le32(t + (dsdt - tbase) + 4)), 0);
            CU_ASSERT_EQUAL(memcmp(t + (facs - tbase), "FACS", 4), 0);
            CU_ASSERT_EQUAL(facs % 64, 0u);        /* ACPI 5.2.10: FACS 64-byte aligned */
            CU_ASSERT_EQUAL(le32(h + 56), 0x600u); /* PM1a_EVT_BLK at the PM base */
        }
    }
    CU_ASSERT(fadt);
    free(t);
    free(r);
    free(l);
}

/* --boot net: the NIC ROM Debian's ipxe-qemu ships for each model and firmware. */
static void test_ipxe_rom_paths(void)
{
    char p[256];
    CU_ASSERT_EQUAL(machine_net_rom_path(NET_MODEL_E1000, BOOT_FW_BIOS, p, sizeof(p)), 0);
    CU_ASSERT_STRING_EQUAL(p, "/usr/lib/ipxe/qemu/pxe-e1000.rom");
    CU_ASSERT_EQUAL(machine_net_rom_path(NET_MODEL_VIRTIO, BOOT_FW_BIOS, p, sizeof(p)), 0);
    CU_ASSERT_STRING_EQUAL(p, "/usr/lib/ipxe/qemu/pxe-virtio.rom");
    CU_ASSERT_EQUAL(machine_net_rom_path(NET_MODEL_E1000, BOOT_FW_UEFI, p, sizeof(p)), 0);
    CU_ASSERT_STRING_EQUAL(p, "/usr/lib/ipxe/qemu/efi-e1000.rom");
    CU_ASSERT_EQUAL(machine_net_rom_path(NET_MODEL_VIRTIO, BOOT_FW_UEFI, p, sizeof(p)), 0);
    CU_ASSERT_STRING_EQUAL(p, "/usr/lib/ipxe/qemu/efi-virtio.rom");
    CU_ASSERT_EQUAL(machine_net_rom_path(NET_MODEL_E1000, BOOT_FW_NONE, p, sizeof(p)), -EINVAL);
    CU_ASSERT_EQUAL(machine_net_rom_path(7, BOOT_FW_BIOS, p, sizeof(p)), -EINVAL);
}

static void test_cli_parsers(void)
{
    struct boot_fw_config c = {0};
    char why[256];
    CU_ASSERT_EQUAL(boot_firmware_parse_file(&c, "name=opt/x,file=/tmp/f", why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(c.files[0].name, "opt/x");
    CU_ASSERT_STRING_EQUAL(c.files[0].path, "/tmp/f");
    CU_ASSERT_EQUAL(boot_firmware_parse_file(&c, "name=etc/e820,file=/f", why, sizeof(why)),
                    -EINVAL);
    CU_ASSERT_EQUAL(boot_firmware_parse_file(&c, "opt/x", why, sizeof(why)), -EINVAL);
    CU_ASSERT_EQUAL(boot_firmware_parse_boot(&c, "cdrom,disk,n", why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(c.boot, "cdrom,disk,net");
    CU_ASSERT_EQUAL(boot_firmware_parse_boot(&c, "floppy", why, sizeof(why)), -EINVAL);
    enum boot_fw_kind k;
    CU_ASSERT_EQUAL(boot_firmware_parse_kind("uefi", &k), 0);
    CU_ASSERT_EQUAL(k, BOOT_FW_UEFI);
    CU_ASSERT_EQUAL(boot_firmware_parse_kind("coreboot", &k), -EINVAL);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("fw_cfg", NULL, NULL);
    CU_add_test(s, "signature and ID", test_signature_and_id);
    CU_add_test(s, "items and reselect", test_items_and_reselect);
    CU_add_test(s, "file directory", test_file_dir);
    CU_add_test(s, "DMA and hostile descriptors", test_dma);
    CU_add_test(s, "select hook", test_select_hook);
    CU_add_test(s, "loader commands", test_loader_commands);
    CU_add_test(s, "ACPI through the loader", test_acpi_loader_result);
    CU_add_test(s, "CLI parsers", test_cli_parsers);
    CU_add_test(s, "iPXE ROM per NIC model and firmware", test_ipxe_rom_paths);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}
