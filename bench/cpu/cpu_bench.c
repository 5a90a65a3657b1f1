/* bench/cpu: run the same static x86-64 guest program natively, under qemu-x86_64 (user mode)
 * and on Lodge's soft CPU, and print guest MIPS and the ratios. The instruction count is
 * Lodge's retired-instruction counter for the whole program (the program is deterministic, so
 * the same count is used for the native and QEMU rates).
 *
 *   cpu_bench GUEST [--qemu PATH|--no-qemu] [--repeat N]
 *
 * Lodge side: flat 64-bit long mode at CPL 3 over identity-mapped guest RAM, the ELF's
 * PT_LOAD segments copied in at their addresses, SYSCALL (the guest's exit) entering a HLT
 * stub at CPL 0 through LSTAR. Not a test: bench/run.sh runs it. */
#include "core/cpu/cpu.h"
#include "core/guestmem.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE (64ull << 20)
#define PT_BASE 0x1000ull /* PML4, PDPT, PD, then the page tables */
#define GDT_BASE 0x30000ull
#define HLT_STUB 0x31000ull /* LSTAR: the guest's exit syscall lands on HLT at CPL 0 */
#define STACK_TOP (RAM_SIZE - 0x100000)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Run argv as a child process; returns its wall time, exit status in *status (-1 if it
 * did not exit normally). */
static double run_process(char *const argv[], int *status)
{
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        *status = -1;
        return 0;
    }
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    double t = now() - t0;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return t;
}

static int load_elf(struct guestmem *gm, const char *path, uint64_t *entry)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return -errno;
    }
    Elf64_Ehdr eh;
    if (fread(&eh, sizeof(eh), 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
        fclose(f);
        return -ENOEXEC;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (fseek(f, (long)(eh.e_phoff + (uint64_t)i * eh.e_phentsize), SEEK_SET) != 0 ||
            fread(&ph, sizeof(ph), 1, f) != 1) {
            fclose(f);
            return -ENOEXEC;
        }
        if (ph.p_type != PT_LOAD) {
            continue;
        }
        if (ph.p_filesz > ph.p_memsz || ph.p_vaddr < 0x100000 ||
            ph.p_vaddr + ph.p_memsz > STACK_TOP - 0x100000) {
            fclose(f);
            return -ERANGE;
        }
        uint8_t *dst = guestmem_ptr(gm, ph.p_vaddr, ph.p_memsz);
        if (!dst) {
            fclose(f);
            return -ERANGE;
        }
        memset(dst, 0, ph.p_memsz);
        if (fseek(f, (long)ph.p_offset, SEEK_SET) != 0 ||
            fread(dst, 1, ph.p_filesz, f) != ph.p_filesz) {
            fclose(f);
            return -EIO;
        }
    }
    fclose(f);
    *entry = eh.e_entry;
    return 0;
}

static void setup_paging(struct guestmem *gm)
{
    uint64_t *pml4 = guestmem_ptr(gm, PT_BASE, 0x1000);
    uint64_t *pdpt = guestmem_ptr(gm, PT_BASE + 0x1000, 0x1000);
    uint64_t *pd = guestmem_ptr(gm, PT_BASE + 0x2000, 0x1000);
    const uint64_t urw = 0x7;
    pml4[0] = (PT_BASE + 0x1000) | urw;
    pdpt[0] = (PT_BASE + 0x2000) | urw;
    for (uint64_t i = 0; i < RAM_SIZE >> 21; i++) {
        uint64_t pt_pa = PT_BASE + 0x3000 + i * 0x1000;
        uint64_t *pt = guestmem_ptr(gm, pt_pa, 0x1000);
        pd[i] = pt_pa | urw;
        for (uint64_t j = 0; j < 512; j++) {
            pt[j] = ((i << 21) + (j << 12)) | urw;
        }
    }
    uint64_t *gdt = guestmem_ptr(gm, GDT_BASE, 0x1000);
    gdt[2] = 0x00af9b000000ffffull; /* 0x10 kernel CS64 */
    gdt[3] = 0x00cf93000000ffffull; /* 0x18 kernel DS */
    gdt[4] = 0x00cffb000000ffffull; /* 0x23 user CS32 */
    gdt[5] = 0x00cff3000000ffffull; /* 0x2b user DS */
    gdt[6] = 0x00affb000000ffffull; /* 0x33 user CS64 */
    uint8_t *stub = guestmem_ptr(gm, HLT_STUB, 1);
    stub[0] = 0xf4;
}

/* Returns 0 and fills icount/seconds/exit code, or -1. */
static int run_lodge(const char *path, uint64_t *icount, double *secs, int *code)
{
    struct guestmem gm;
    memset(&gm, 0, sizeof(gm));
    if (guestmem_add(&gm, "ram", 0, RAM_SIZE, false) < 0) {
        fprintf(stderr, "cpu_bench: cannot allocate guest RAM\n");
        return -1;
    }
    setup_paging(&gm);
    uint64_t entry = 0;
    int rc = load_elf(&gm, path, &entry);
    if (rc < 0) {
        fprintf(stderr, "cpu_bench: %s: cannot load: %s\n", path, strerror(-rc));
        guestmem_free(&gm);
        return -1;
    }
    struct cpu *cpu = cpu_new(&gm, NULL, NULL);
    if (!cpu) {
        guestmem_free(&gm);
        return -1;
    }
    const uint32_t data = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_RW | CPU_SEGA_ACCESSED |
                          (3u << CPU_SEGA_DPL_SHIFT) | CPU_SEGA_DB | CPU_SEGA_G;
    const uint32_t cs64 = CPU_SEGA_P | CPU_SEGA_S | CPU_SEGA_CODE | CPU_SEGA_RW |
                          CPU_SEGA_ACCESSED | (3u << CPU_SEGA_DPL_SHIFT) | CPU_SEGA_G | CPU_SEGA_L;
    cpu->cr0 = CPU_CR0_PE | CPU_CR0_MP | CPU_CR0_ET | CPU_CR0_NE | CPU_CR0_WP | CPU_CR0_PG;
    cpu->cr4 = CPU_CR4_PAE | CPU_CR4_OSFXSR | CPU_CR4_OSXMMEXCPT;
    cpu->efer = CPU_EFER_SCE | CPU_EFER_LME | CPU_EFER_LMA | CPU_EFER_NXE;
    cpu->cr3 = PT_BASE;
    cpu->gdtr.base = GDT_BASE;
    cpu->gdtr.limit = 7 * 8 - 1;
    cpu->msr.lstar = HLT_STUB;
    cpu->msr.star = (0x10ull << 32) | (0x23ull << 48);
    cpu->msr.sfmask = 0x700;
    cpu->cpl = 3;
    cpu_set_seg(cpu, CPU_SEG_SS, 0x2b, 0, 0xffffffffu, data);
    cpu_set_seg(cpu, CPU_SEG_DS, 0x2b, 0, 0xffffffffu, data);
    cpu_set_seg(cpu, CPU_SEG_ES, 0x2b, 0, 0xffffffffu, data);
    cpu_set_seg(cpu, CPU_SEG_FS, 0, 0, 0xffffffffu, data);
    cpu_set_seg(cpu, CPU_SEG_GS, 0, 0, 0xffffffffu, data);
    cpu_set_seg(cpu, CPU_SEG_CS, 0x33, 0, 0xffffffffu, cs64);
    cpu_update_mode(cpu);
    cpu_tlb_flush(cpu, false);
    cpu_set_rflags(cpu, 0x202);
    cpu->rip = entry;
    cpu->r[CPU_RSP] = STACK_TOP;
    cpu->exit_on_exception = true;
    uint64_t i0 = cpu->icount;
    double t0 = now();
    int reason = cpu_run(cpu, 0);
    *secs = now() - t0;
    *icount = cpu->icount - i0;
    *code = (int)(cpu->r[CPU_RDI] & 0xff);
    int ok = reason == CPU_EXIT_HLT && cpu->rip == HLT_STUB + 1 && cpu->r[CPU_RAX] == 60;
    if (!ok) {
        fprintf(stderr,
                "cpu_bench: Lodge stopped with reason %d at rip %#" PRIx64 " (exception %d, "
                "error %#x) after %" PRIu64 " instructions%s%s\n",
                reason, cpu->rip, cpu->exc_vector, cpu->exc_error, *icount,
                cpu->error[0] ? ": " : "", cpu->error);
    }
    cpu_free(cpu);
    guestmem_free(&gm);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *guest = NULL;
    const char *qemu = "/usr/bin/qemu-x86_64";
    int repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--qemu") && i + 1 < argc) {
            qemu = argv[++i];
        } else if (!strcmp(argv[i], "--no-qemu")) {
            qemu = NULL;
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (argv[i][0] != '-' && !guest) {
            guest = argv[i];
        } else {
            fprintf(stderr, "usage: cpu_bench GUEST [--qemu PATH|--no-qemu] [--repeat N]\n");
            return 2;
        }
    }
    if (!guest || repeat < 1) {
        fprintf(stderr, "usage: cpu_bench GUEST [--qemu PATH|--no-qemu] [--repeat N]\n");
        return 2;
    }
    /* best of N for each engine */
    double tn = 1e9, tq = 1e9, tl = 1e9;
    int cn = -1, cq = -1, cl = -1;
    uint64_t insns = 0;
    bool have_qemu = qemu && access(qemu, X_OK) == 0;
    for (int r = 0; r < repeat; r++) {
        char *nargv[] = {(char *)guest, NULL};
        double t = run_process(nargv, &cn);
        tn = t < tn ? t : tn;
        if (have_qemu) {
            char *qargv[] = {(char *)qemu, (char *)guest, NULL};
            t = run_process(qargv, &cq);
            tq = t < tq ? t : tq;
        }
        double s = 0;
        if (run_lodge(guest, &insns, &s, &cl) < 0) {
            return 1;
        }
        tl = s < tl ? s : tl;
    }
    double mi = (double)insns / 1e6;
    printf("cpu bench: %s: %.1f M guest instructions (Lodge's count)\n", guest, mi);
    printf("  native   %8.3f s  %9.1f MIPS  exit %d\n", tn, mi / tn, cn);
    if (have_qemu) {
        printf("  qemu     %8.3f s  %9.1f MIPS  exit %d (qemu-x86_64 user mode, incl. start)\n", tq,
               mi / tq, cq);
    } else {
        printf("  qemu     (qemu-x86_64 not found: apt-get install qemu-user)\n");
    }
    printf("  lodge    %8.3f s  %9.1f MIPS  exit %d\n", tl, mi / tl, cl);
    if (have_qemu) {
        printf("  ratio Lodge/QEMU speed %.2f, Lodge/native speed %.4f (native is %.1fx faster)\n",
               tq / tl, tn / tl, tl / tn);
    } else {
        printf("  ratio Lodge/native speed %.4f (native is %.1fx faster)\n", tn / tl, tl / tn);
    }
    if (cl != cn || (have_qemu && cq != cn)) {
        printf("  RESULT MISMATCH: exit codes differ (native %d, qemu %d, Lodge %d)\n", cn, cq, cl);
        return 1;
    }
    return 0;
}
