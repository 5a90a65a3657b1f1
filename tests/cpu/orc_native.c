/* Native side of the CPU oracle: runs a batch of cases on the host CPU in a forked child.
 *
 * The child maps the code, data and control pages at their fixed addresses, then for each
 * case restores the code and data pages, loads the case's state through orc_stub.S and runs
 * it. Faults arrive as signals; the handler copies the interrupted context (which is the
 * architectural state at the fault) into the result and resumes at orc_native_resume. A case
 * that kills or hangs the child (alarm) is marked ORC_END_CRASH and a new child continues with
 * the next case. */
#include "tests/cpu/oracle.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

int orc_native_enter(int mode32);
void orc_native_exit(void);
void orc_native_resume(void);

#define ORC_CTRL_CUR_RES 0x800  /* struct orc_result * of the running case */
#define ORC_CTRL_PROGRESS 0x808 /* (shared mapping pointer) */

static inline uint8_t *ctrl(unsigned off)
{
    return (uint8_t *)(uintptr_t)(ORC_CTRL_VA + off);
}

size_t orc_native_tail(uint8_t *code, size_t len, bool mode32)
{
    uint32_t a;
    if (mode32) {
        /* jmp far 0x33:tramp32 (EA ptr16:32), back to 64-bit mode */
        code[len++] = 0xea;
        a = (uint32_t)(ORC_CTRL_VA + ORC_CTRL_TRAMP32);
        memcpy(code + len, &a, 4);
        len += 4;
        code[len++] = 0x33;
        code[len++] = 0x00;
        return len;
    }
    /* jmp qword [abs32 exit slot] */
    code[len++] = 0xff;
    code[len++] = 0x24;
    code[len++] = 0x25;
    a = (uint32_t)(ORC_CTRL_VA + ORC_CTRL_EXIT_SLOT);
    memcpy(code + len, &a, 4);
    return len + 4;
}

static void orc_native_signal(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    struct orc_result *res;
    memcpy(&res, ctrl(ORC_CTRL_CUR_RES), sizeof(res));
    static const int map[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                REG_R12, REG_R13, REG_R14, REG_R15};
    for (int i = 0; i < 16; i++) {
        res->r[i] = (uint64_t)g[map[i]];
    }
    res->rip = (uint64_t)g[REG_RIP];
    res->rflags = (uint64_t)g[REG_EFL];
    res->end = sig == SIGALRM ? ORC_END_CRASH : (int32_t)g[REG_TRAPNO];
    res->err = (uint32_t)g[REG_ERR];
    res->cr2 = (uint64_t)g[REG_CR2];
    if (uc->uc_mcontext.fpregs) {
        memcpy(res->fx, uc->uc_mcontext.fpregs, 512);
    }
    g[REG_RIP] = (greg_t)(uintptr_t)orc_native_resume;
    g[REG_RSP] = (greg_t)(ORC_CTRL_VA + ORC_CTRL_SIZE - 256);
    g[REG_EFL] &= ~(greg_t)((1 << 8) | (1 << 10) | (1 << 18)); /* TF, DF, AC */
    /* back to the 64-bit user code segment if the fault was in compatibility mode */
    g[REG_CSGSFS] = (g[REG_CSGSFS] & ~(greg_t)0xffff) | 0x33;
    (void)si;
}

static int child_setup(void)
{
    void *p =
        mmap((void *)(uintptr_t)ORC_CODE_VA, ORC_CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)ORC_CODE_VA) {
        return -1;
    }
    p = mmap((void *)(uintptr_t)ORC_DATA_VA, ORC_PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)ORC_DATA_VA) {
        return -1;
    }
    p = mmap((void *)(uintptr_t)ORC_CTRL_VA, ORC_CTRL_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)ORC_CTRL_VA) {
        return -1;
    }
    uint64_t v = ORC_CODE_VA;
    memcpy(ctrl(ORC_CTRL_CODE_ENTRY), &v, 8);
    v = (uint64_t)(uintptr_t)orc_native_exit;
    memcpy(ctrl(ORC_CTRL_EXIT_SLOT), &v, 8);
    uint32_t off32 = (uint32_t)ORC_CODE_VA;
    uint16_t sel = 0x23;
    memcpy(ctrl(ORC_CTRL_FAR32), &off32, 4);
    memcpy(ctrl(ORC_CTRL_FAR32 + 4), &sel, 2);
    orc_native_tail(ctrl(ORC_CTRL_TRAMP32), 0, false);

    static uint8_t altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
    if (sigaltstack(&ss, NULL) < 0) {
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = orc_native_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGALRM};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) < 0) {
            return -1;
        }
    }
    return 0;
}

static void child_run(const struct orc_case *cases, struct orc_result *res, size_t start, size_t n,
                      volatile uint64_t *progress)
{
    static uint8_t before[ORC_PAGE];
    uint8_t *code = (uint8_t *)(uintptr_t)ORC_CODE_VA;
    uint8_t *data = (uint8_t *)(uintptr_t)ORC_DATA_VA;
    alarm(20);
    for (size_t i = start; i < n; i++) {
        const struct orc_case *c = &cases[i];
        struct orc_result *r = &res[i];
        *progress = i;
        memcpy(code + c->code_off, c->code, c->code_len);
        orc_native_tail(code + c->code_off, c->code_len, c->mode32);
        uint64_t entry = ORC_CODE_VA + c->code_off;
        uint32_t entry32 = (uint32_t)entry;
        memcpy(ctrl(ORC_CTRL_CODE_ENTRY), &entry, 8);
        memcpy(ctrl(ORC_CTRL_FAR32), &entry32, 4);
        orc_fill_data(c->seed, before);
        memcpy(data, before, ORC_PAGE);
        memcpy(ctrl(ORC_CTRL_IN_R), c->r, sizeof(c->r));
        uint64_t fl = (c->rflags & 0xcd5u) | 0x202u;
        memcpy(ctrl(ORC_CTRL_IN_FLAGS), &fl, 8);
        memcpy(ctrl(ORC_CTRL_IN_FX), c->fx, 512);
        memcpy(ctrl(ORC_CTRL_CUR_RES), &r, sizeof(r));
        r->end = ORC_END_OK;
        r->err = 0;
        r->cr2 = 0;
        if (c->code2_absent) {
            mprotect(code + ORC_PAGE, ORC_PAGE, PROT_NONE);
        }
        int faulted = orc_native_enter(c->mode32);
        if (c->code2_absent) {
            mprotect(code + ORC_PAGE, ORC_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
        }
        if (faulted == 0) {
            memcpy(r->r, ctrl(ORC_CTRL_OUT_R), sizeof(r->r));
            memcpy(&r->rflags, ctrl(ORC_CTRL_OUT_FLAGS), 8);
            memcpy(r->fx, ctrl(ORC_CTRL_OUT_FX), 512);
            r->rip = ORC_CODE_VA + c->code_off + c->code_len;
        }
        orc_diff_data(before, data, r);
    }
    *progress = n;
}

static pid_t native_spawn(struct orc_native_job *j, size_t start)
{
    *j->progress = start;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (child_setup() < 0) {
            _exit(3);
        }
        child_run(j->cases, j->sres, start, j->n, j->progress);
        _exit(0);
    }
    return pid;
}

int orc_native_start(struct orc_native_job *j, const struct orc_case *cases, size_t n)
{
    memset(j, 0, sizeof(*j));
    j->bytes = n * sizeof(struct orc_result) + 64;
    uint8_t *shm = mmap(NULL, j->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        return -errno;
    }
    j->shm = shm;
    j->progress = (volatile uint64_t *)shm;
    j->sres = (struct orc_result *)(shm + 64);
    j->cases = cases;
    j->n = n;
    j->pid = native_spawn(j, 0);
    if (j->pid < 0) {
        int e = -errno;
        munmap(shm, j->bytes);
        return e;
    }
    return 0;
}

int orc_native_finish(struct orc_native_job *j, struct orc_result *res)
{
    int rc = 0;
    for (;;) {
        int st = 0;
        while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR) {
        }
        size_t done = (size_t)*j->progress;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
            fprintf(stderr, "oracle: native child cannot map its fixed pages\n");
            rc = -ENOMEM;
            break;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && done >= j->n) {
            break;
        }
        /* the child died on case `done`: record it and continue after it */
        if (done < j->n) {
            memset(&j->sres[done], 0, sizeof(j->sres[done]));
            j->sres[done].end = ORC_END_CRASH;
        }
        if (done + 1 >= j->n) {
            break;
        }
        j->pid = native_spawn(j, done + 1);
        if (j->pid < 0) {
            rc = -errno;
            break;
        }
    }
    memcpy(res, j->sres, j->n * sizeof(*res));
    munmap(j->shm, j->bytes);
    return rc;
}

int orc_native_run(const struct orc_case *cases, struct orc_result *res, size_t n)
{
    struct orc_native_job j;
    int rc = orc_native_start(&j, cases, n);
    if (rc < 0) {
        return rc;
    }
    return orc_native_finish(&j, res);
}

void orc_fill_data(uint64_t seed, uint8_t *page)
{
    uint64_t s = seed ^ 0x5eed5eed5eedull;
    for (unsigned i = 0; i < ORC_PAGE; i += 8) {
        uint64_t v = orc_rand(&s);
        /* some structure: small values and zeros make compares and BSF/BSR interesting */
        switch (v & 7) {
        case 0:
            v = 0;
            break;
        case 1:
            v >>= 56;
            break;
        default:
            break;
        }
        memcpy(page + i, &v, 8);
    }
}

void orc_diff_data(const uint8_t *before, const uint8_t *after, struct orc_result *res)
{
    uint64_t h = 0xcbf29ce484222325ull;
    res->ndiff = 0;
    for (unsigned i = 0; i < ORC_PAGE; i += 8) {
        uint64_t a, b;
        memcpy(&a, before + i, 8);
        memcpy(&b, after + i, 8);
        h = (h ^ b) * 0x100000001b3ull;
        if (a != b) {
            if (res->ndiff < ORC_MAX_DIFF) {
                res->diff[res->ndiff].off = (uint16_t)i;
                res->diff[res->ndiff].val = b;
            }
            res->ndiff++;
        }
    }
    res->mem_hash = h;
}
