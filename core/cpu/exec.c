/* Execution core of the soft CPU: decoded-block cache, jump cache, run loop, exceptions,
 * self-modifying-code tracking, mode bits.
 *
 * Blocks are decoded once into arrays of struct x86_insn and kept in an arena, found by
 * (physical address, decoder mode) through a hash table, and by linear RIP through a small
 * per-vCPU jump cache whose hits are revalidated against the TLB. Pages holding blocks are
 * "code pages": the TLB never gives them a fast write entry, so every store to them reaches
 * cpu_st_slow, which drops the blocks overlapping the written bytes (64-byte granules). */
#include "core/cpu/cpu.h"

#include "core/guestmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define BLOCK_MAX_INSNS 64
#define HASH_BITS 18
#define HASH_SIZE (1u << HASH_BITS)
#define JC_BITS 14
#define JC_SIZE (1u << JC_BITS)
#define PAGE_HASH_BITS 12
#define PAGE_HASH_SIZE (1u << PAGE_HASH_BITS)
#define ARENA_SIZE (48u << 20)
#define DMA_QUEUE_LEN 64
#define CODE_FILTER_BITS 16 /* pages (hashed) that may hold code, for foreign writers */

struct cpu_block {
    uint64_t phys;         /* physical address of the first byte */
    uint32_t key;          /* decoder mode */
    uint16_t ninsn;        /* number of records */
    uint16_t bytes;        /* code bytes covered (within one page) */
    bool valid;            /* false once invalidated (memory is reused only on flush) */
    bool chainable;        /* ends in a plain near branch or falls through */
    bool straddle;         /* one instruction that continues in the next page (at phys2) */
    uint64_t phys2;        /* straddle: physical page the next linear page mapped to */
    uint16_t heat;         /* runs so far, until translated */
    cpu_jit_fn jit;        /* translated code, or NULL */
    uint64_t chain_rip[2]; /* successors in the same page, by RIP (cache) */
    struct cpu_block *chain[2];
    struct cpu_block *hash_next; /* chain in the (phys, key) hash */
    struct cpu_block *page_next; /* blocks of the same physical page */
    struct cpu_block *tail_next; /* straddle: the next page's list of straddlers */
    struct x86_insn insn[];      /* ninsn decoded instructions */
};

struct code_page {
    uint64_t page;            /* physical page address */
    uint64_t mask;            /* 64-byte granules holding translated code */
    struct cpu_block *blocks; /* blocks starting in this page */
    struct cpu_block *tails;  /* straddling blocks that end in this page */
    struct code_page *next;   /* hash chain */
};

struct jc_entry {
    uint64_t lin; /* linear address of the block start */
    uint32_t key; /* decoder mode */
    struct cpu_block *b;
};

struct cpu_tcache {
    struct cpu_block *hash[HASH_SIZE];
    struct code_page *pages[PAGE_HASH_SIZE];
    struct jc_entry jc[JC_SIZE];
    uint8_t *arena; /* bump allocator for blocks and code pages */
    struct cpu_jit *jit; /* translated code of hot blocks (NULL: interpret only) */
    unsigned jit_hot;    /* runs before a block is translated */
    size_t used;
    uint64_t flushes; /* statistics */
    uint64_t blocks_built;
    uint64_t invalidations;
    struct cpu *cpus[CPU_TCACHE_MAX_CPUS]; /* vCPUs sharing this cache (their TLBs mark code) */
    int ncpus;
    /* Writes by other threads (device DMA) queued for the vCPU to apply between blocks. */
    pthread_mutex_t dma_lock;
    int dma_pending;   /* atomic: the queue is not empty */
    unsigned dma_n;    /* queued ranges */
    bool dma_overflow; /* too many: flush everything */
    struct {
        uint64_t pa, len;
    } dma_q[DMA_QUEUE_LEN];
    /* Bit per (page number mod 2^CODE_FILTER_BITS): set before a block is decoded from the
     * page, cleared only by a flush. Lets device threads skip the queue for plain data. */
    uint64_t code_filter[(1u << CODE_FILTER_BITS) / 64];
};

static unsigned hash_phys(uint64_t pa, uint32_t key)
{
    uint64_t h = (pa ^ (pa >> 17) ^ ((uint64_t)key << 5)) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - HASH_BITS));
}

static unsigned hash_page(uint64_t page)
{
    return (unsigned)(((page >> 12) * 0x9e3779b97f4a7c15ull) >> (64 - PAGE_HASH_BITS));
}

static void *arena_alloc(struct cpu_tcache *tc, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (tc->used + n > ARENA_SIZE) {
        return NULL;
    }
    void *p = tc->arena + tc->used;
    tc->used += n;
    return p;
}

/* Code pages lose their CODE write restriction: refill those TLB entries (every vCPU
 * sharing the cache). */
static void tlb_uncode_all(struct cpu *self)
{
    struct cpu_tcache *tc = self->tcache;
    for (int c = 0; c < tc->ncpus; c++) {
        struct cpu *cpu = tc->cpus[c];
        for (int m = 0; m < CPU_MMU_COUNT; m++) {
            for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
                struct cpu_tlb_entry *e = &cpu->tlb[m][i];
                if (e->tag_write & CPU_TLB_CODE) {
                    e->tag_write = CPU_TLB_INVALID;
                }
            }
        }
    }
}

void cpu_tcache_flush(struct cpu *cpu)
{
    struct cpu_tcache *tc = cpu->tcache;
    memset(tc->hash, 0, sizeof(tc->hash));
    memset(tc->pages, 0, sizeof(tc->pages));
    memset(tc->jc, 0, sizeof(tc->jc));
    memset(tc->code_filter, 0, sizeof(tc->code_filter));
    tc->used = 0;
    if (tc->jit) {
        cpu_jit_reset(tc->jit);
    }
    tc->flushes++;
    tlb_uncode_all(cpu);
    cpu->block_stop = true;
}

static struct code_page *page_find(struct cpu_tcache *tc, uint64_t page)
{
    for (struct code_page *p = tc->pages[hash_page(page)]; p; p = p->next) {
        if (p->page == page) {
            return p;
        }
    }
    return NULL;
}

bool cpu_page_has_code(struct cpu *cpu, uint64_t pa)
{
    return cpu->tcache && page_find(cpu->tcache, pa & CPU_PAGE_MASK) != NULL;
}

/* A page became a code page: writes to it must take the slow path from now on. */
static void tlb_mark_code(struct cpu *self, uint64_t page)
{
    struct cpu_tcache *tc = self->tcache;
    for (int c = 0; c < tc->ncpus; c++) {
        struct cpu *cpu = tc->cpus[c];
        for (int m = 0; m < CPU_MMU_COUNT; m++) {
            for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
                struct cpu_tlb_entry *e = &cpu->tlb[m][i];
                if (e->paddr == page && !(e->tag_write & CPU_TLB_INVALID)) {
                    e->tag_write |= CPU_TLB_CODE;
                }
            }
        }
    }
}

static void page_remove(struct cpu *cpu, struct code_page *cp)
{
    struct cpu_tcache *tc = cpu->tcache;
    struct code_page **pp = &tc->pages[hash_page(cp->page)];
    while (*pp && *pp != cp) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = cp->next;
    }
    for (int c = 0; c < tc->ncpus; c++) {
        struct cpu *other = tc->cpus[c];
        for (int m = 0; m < CPU_MMU_COUNT; m++) {
            for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
                struct cpu_tlb_entry *e = &other->tlb[m][i];
                if (e->paddr == cp->page && (e->tag_write & CPU_TLB_CODE)) {
                    e->tag_write &= ~CPU_TLB_CODE;
                }
            }
        }
    }
}

static void block_unhash(struct cpu_tcache *tc, struct cpu_block *b)
{
    struct cpu_block **pp = &tc->hash[hash_phys(b->phys, b->key)];
    while (*pp && *pp != b) {
        pp = &(*pp)->hash_next;
    }
    if (*pp) {
        *pp = b->hash_next;
    }
    b->valid = false;
    b->jit = NULL; /* translated predecessors no longer enter it */
}

static uint64_t granule_mask(uint64_t off, uint64_t len)
{
    uint64_t first = off >> 6, last = (off + len - 1) >> 6;
    if (last >= 63) {
        return ~0ull << first;
    }
    return ((2ull << last) - 1) & (~0ull << first);
}

void cpu_tcache_invalidate_phys(struct cpu *cpu, uint64_t pa, uint64_t len)
{
    struct cpu_tcache *tc = cpu->tcache;
    if (!tc || len == 0) {
        return;
    }
    uint64_t end = pa + len;
    for (uint64_t page = pa & CPU_PAGE_MASK; page < end; page += 0x1000) {
        struct code_page *cp = page_find(tc, page);
        if (!cp) {
            continue;
        }
        uint64_t lo = page > pa ? 0 : pa - page;
        uint64_t hi = end - page > 0x1000 ? 0x1000 : end - page;
        if (!(cp->mask & granule_mask(lo, hi - lo))) {
            continue; /* data next to code in the same page */
        }
        for (struct cpu_block *b = cp->blocks; b; b = b->page_next) {
            if (b->valid) {
                block_unhash(tc, b);
            }
        }
        for (struct cpu_block *b = cp->tails; b; b = b->tail_next) {
            if (b->valid) {
                block_unhash(tc, b);
            }
        }
        tc->invalidations++;
        page_remove(cpu, cp);
        cpu->block_stop = true;
    }
}

static unsigned filter_bit(uint64_t pa)
{
    return (unsigned)(pa >> 12) & ((1u << CODE_FILTER_BITS) - 1);
}

/* Called before the page's bytes are decoded; pairs with the fence in note_write: either the
 * writer sees the bit, or the decoder reads the written bytes. */
static void filter_set(struct cpu_tcache *tc, uint64_t pa)
{
    unsigned bit = filter_bit(pa);
    if (!(__atomic_load_n(&tc->code_filter[bit / 64], __ATOMIC_RELAXED) & (1ull << (bit % 64)))) {
        __atomic_fetch_or(&tc->code_filter[bit / 64], 1ull << (bit % 64), __ATOMIC_SEQ_CST);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static bool filter_hit(struct cpu_tcache *tc, uint64_t pa, uint64_t len)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint64_t last = (pa + len - 1) >> 12;
    if (last - (pa >> 12) >= (1u << CODE_FILTER_BITS)) {
        return true;
    }
    for (uint64_t pg = pa >> 12; pg <= last; pg++) {
        unsigned bit = filter_bit(pg << 12);
        if (__atomic_load_n(&tc->code_filter[bit / 64], __ATOMIC_RELAXED) & (1ull << (bit % 64))) {
            return true;
        }
    }
    return false;
}

void cpu_tcache_note_write(struct cpu *cpu, uint64_t pa, uint64_t len)
{
    struct cpu_tcache *tc = cpu->tcache;
    if (len == 0 || pa + len < pa || !filter_hit(tc, pa, len)) {
        return;
    }
    pthread_mutex_lock(&tc->dma_lock);
    if (tc->dma_n < DMA_QUEUE_LEN) {
        tc->dma_q[tc->dma_n].pa = pa;
        tc->dma_q[tc->dma_n].len = len;
        tc->dma_n++;
    } else {
        tc->dma_overflow = true;
    }
    __atomic_store_n(&tc->dma_pending, 1, __ATOMIC_RELEASE);
    for (int c = 0; c < tc->ncpus; c++) {
        __atomic_store_n(&tc->cpus[c]->jit_budget, 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&tc->dma_lock);
}

/* Apply queued foreign writes (between blocks, on the vCPU thread). */
static void apply_noted_writes(struct cpu *cpu)
{
    struct cpu_tcache *tc = cpu->tcache;
    struct {
        uint64_t pa, len;
    } q[DMA_QUEUE_LEN];
    pthread_mutex_lock(&tc->dma_lock);
    unsigned n = tc->dma_n;
    bool overflow = tc->dma_overflow;
    memcpy(q, tc->dma_q, n * sizeof(q[0]));
    tc->dma_n = 0;
    tc->dma_overflow = false;
    __atomic_store_n(&tc->dma_pending, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&tc->dma_lock);
    if (overflow) {
        cpu_tcache_flush(cpu);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        cpu_tcache_invalidate_phys(cpu, q[i].pa, q[i].len);
    }
}

/* ---- mode bits ---- */

static void seg_cache(struct cpu *cpu, struct cpu_seg *s)
{
    uint8_t acc = 0;
    if (cpu->mode == CPU_MODE_REAL || cpu->mode == CPU_MODE_V86) {
        acc = CPU_SEGC_READ | CPU_SEGC_WRITE;
    } else if (!(s->attr & CPU_SEGA_UNUSABLE) && (s->attr & CPU_SEGA_P)) {
        if (s->attr & CPU_SEGA_CODE) {
            acc = (s->attr & CPU_SEGA_RW) ? CPU_SEGC_READ : 0;
        } else if (!(s->attr & CPU_SEGA_DC)) {
            acc = CPU_SEGC_READ | ((s->attr & CPU_SEGA_RW) ? CPU_SEGC_WRITE : 0);
        }
    }
    s->acc = acc;
}

/* Whether 32-bit code may run translated: protected or compatibility mode with flat
 * CS/DS/ES/SS (base 0, 4 GiB limits, data segments readable and writable, 32-bit stack), so
 * that translated memory accesses need no segment checks. A change ends the block (and any
 * chained run), so translated 32-bit code only ever runs with flat segments. */
static void flat32_update(struct cpu *cpu)
{
    bool flat = (cpu->mode == CPU_MODE_PROT || cpu->mode == CPU_MODE_COMPAT) &&
                cpu->code_mode == X86_MODE_32 && cpu->stack_size == 4;
    static const int segs[] = {CPU_SEG_CS, CPU_SEG_DS, CPU_SEG_ES, CPU_SEG_SS};
    for (unsigned k = 0; flat && k < 4; k++) {
        const struct cpu_seg *s = &cpu->seg[segs[k]];
        flat = s->base == 0 && s->limit == 0xffffffffu &&
               (segs[k] == CPU_SEG_CS ||
                (s->acc & (CPU_SEGC_READ | CPU_SEGC_WRITE)) == (CPU_SEGC_READ | CPU_SEGC_WRITE));
    }
    if (flat != cpu->jit_flat32) {
        cpu->jit_flat32 = flat;
        cpu->block_stop = true;
        __atomic_store_n(&cpu->jit_budget, 0, __ATOMIC_RELAXED);
    }
}

void cpu_update_mode(struct cpu *cpu)
{
    const struct cpu_seg *cs = &cpu->seg[CPU_SEG_CS];
    if (!(cpu->cr0 & CPU_CR0_PE)) {
        cpu->mode = CPU_MODE_REAL;
        cpu->cpl = 0;
    } else if (cpu->efer & CPU_EFER_LMA) {
        cpu->mode = (cs->attr & CPU_SEGA_L) ? CPU_MODE_LONG64 : CPU_MODE_COMPAT;
    } else if (cpu->rflags & CPU_FL_VM) {
        cpu->mode = CPU_MODE_V86;
        cpu->cpl = 3;
    } else {
        cpu->mode = CPU_MODE_PROT;
    }
    if (cpu->mode == CPU_MODE_LONG64) {
        cpu->code_mode = X86_MODE_64;
        cpu->stack_size = 8;
    } else {
        cpu->code_mode =
            (cs->attr & CPU_SEGA_DB) && cpu->mode != CPU_MODE_REAL && cpu->mode != CPU_MODE_V86
                ? X86_MODE_32
                : X86_MODE_16;
        if (cpu->mode == CPU_MODE_REAL && (cs->attr & CPU_SEGA_DB)) {
            cpu->code_mode = X86_MODE_32; /* unreal/big real mode code segment */
        }
        cpu->stack_size = (cpu->seg[CPU_SEG_SS].attr & CPU_SEGA_DB) ? 4 : 2;
    }
    cpu->mmu_idx = cpu->cpl == 3 ? CPU_MMU_USER : CPU_MMU_SUP;
    for (int i = 0; i < CPU_SEG_COUNT; i++) {
        seg_cache(cpu, &cpu->seg[i]);
    }
    cpu->block_stop = true;
    flat32_update(cpu);
}

void cpu_set_seg(struct cpu *cpu, int seg, uint16_t sel, uint64_t base, uint32_t limit,
                 uint32_t attr)
{
    struct cpu_seg *s = &cpu->seg[seg];
    s->sel = sel;
    s->base = base;
    s->limit = limit;
    s->attr = attr;
    if (seg == CPU_SEG_CS || seg == CPU_SEG_SS) {
        cpu_update_mode(cpu);
    } else {
        seg_cache(cpu, s);
        flat32_update(cpu);
    }
}

/* ---- lifecycle ---- */

struct cpu *cpu_new(struct guestmem *mem, struct bus *pio, struct bus *mmio)
{
    struct cpu *cpu = aligned_alloc(64, (sizeof(struct cpu) + 63) & ~(size_t)63);
    if (!cpu) {
        return NULL;
    }
    memset(cpu, 0, sizeof(*cpu));
    cpu->tcache = calloc(1, sizeof(struct cpu_tcache));
    if (!cpu->tcache) {
        free(cpu);
        return NULL;
    }
    cpu->tcache->arena = malloc(ARENA_SIZE);
    if (!cpu->tcache->arena) {
        free(cpu->tcache);
        free(cpu);
        return NULL;
    }
    cpu->tcache->cpus[0] = cpu;
    cpu->tcache->ncpus = 1;
    /* LODGE_SOFT_JIT=off interprets everything; =N translates after N runs (0: at once). */
    const char *jv = getenv("LODGE_SOFT_JIT");
    if (!jv || strcmp(jv, "off") != 0) {
        cpu->tcache->jit = cpu_jit_new();
        cpu->tcache->jit_hot = jv && *jv >= '0' && *jv <= '9' ? (unsigned)atoi(jv) : 16;
    }
    pthread_mutex_init(&cpu->tcache->dma_lock, NULL);
    cpu->mem = mem;
    cpu->pio = pio;
    cpu->mmio = mmio;
    cpu->exc_vector = -1;
    cpu->deliver_vector = -1;
    cpu->a20_mask = ~0ull;
    cpu_reset(cpu);
    return cpu;
}

/* Leave cpu's block cache; free it when nobody uses it any more. */
static void tcache_detach(struct cpu *cpu)
{
    struct cpu_tcache *tc = cpu->tcache;
    for (int c = 0; c < tc->ncpus; c++) {
        if (tc->cpus[c] == cpu) {
            tc->cpus[c] = tc->cpus[--tc->ncpus];
            break;
        }
    }
    if (tc->ncpus == 0) {
        pthread_mutex_destroy(&tc->dma_lock);
        cpu_jit_free(tc->jit);
        free(tc->arena);
        free(tc);
    }
    cpu->tcache = NULL;
}

int cpu_tcache_share(struct cpu *cpu, struct cpu *owner)
{
    struct cpu_tcache *tc = owner->tcache;
    if (cpu->tcache == tc) {
        return 0;
    }
    if (tc->ncpus >= CPU_TCACHE_MAX_CPUS) {
        return -ENOSPC;
    }
    tcache_detach(cpu);
    cpu->tcache = tc;
    tc->cpus[tc->ncpus++] = cpu;
    /* Its TLB was filled without knowing the shared code pages: refill write entries. */
    for (int m = 0; m < CPU_MMU_COUNT; m++) {
        for (unsigned i = 0; i < CPU_TLB_SIZE; i++) {
            cpu->tlb[m][i].tag_write = CPU_TLB_INVALID;
        }
    }
    return 0;
}

void cpu_free(struct cpu *cpu)
{
    if (!cpu) {
        return;
    }
    tcache_detach(cpu);
    free(cpu);
}

void cpu_kick(struct cpu *cpu)
{
    __atomic_store_n(&cpu->exit_request, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&cpu->jit_budget, 0, __ATOMIC_RELAXED); /* stop chained blocks */
}

void cpu_request_exit(struct cpu *cpu, int reason)
{
    if (cpu->exit_reason == CPU_EXIT_NONE) {
        cpu->exit_reason = reason;
    }
    cpu->block_stop = true;
}

_Noreturn void cpu_raise(struct cpu *cpu, int vector, uint32_t error_code)
{
    cpu->exc_vector = vector;
    cpu->exc_error = error_code;
    if (!cpu->exc_jmp_valid) {
        /* Called outside cpu_run (a unit test calling a handler directly): our bug. */
        fprintf(stderr, "cpu: exception %d raised outside cpu_run\n", vector);
        abort();
    }
    longjmp(cpu->exc_jmp, 1);
}

_Noreturn void cpu_raise_pf(struct cpu *cpu, uint64_t lin, uint32_t error_code)
{
    cpu->cr2 = lin;
    cpu_raise(cpu, X86_EXC_PF, error_code);
}

void x86_op_ud(struct cpu *cpu, const struct x86_insn *in)
{
    cpu_raise_ud(cpu);
}

/* ---- block building ---- */

static uint64_t rip_mask(int code_mode)
{
    return code_mode == X86_MODE_64 ? ~0ull : code_mode == X86_MODE_32 ? 0xffffffffull : 0xffffull;
}

/* Linear address of RIP, with the CS limit check outside 64-bit mode. */
static uint64_t fetch_lin(struct cpu *cpu, uint64_t rip)
{
    if (cpu->mode == CPU_MODE_LONG64) {
        if (!cpu_is_canonical(rip)) {
            cpu_raise_gp0(cpu);
        }
        return rip;
    }
    if (rip > cpu->seg[CPU_SEG_CS].limit) {
        cpu_raise_gp0(cpu);
    }
    return (uint32_t)(cpu->seg[CPU_SEG_CS].base + rip);
}

/* Host pointer and physical address of the code byte at lin. */
static const uint8_t *fetch_ptr(struct cpu *cpu, uint64_t lin, uint64_t *pa)
{
    struct cpu_tlb_entry *e = &cpu->tlb[cpu->mmu_idx][(lin >> 12) & (CPU_TLB_SIZE - 1)];
    if (e->tag_exec != (lin & CPU_PAGE_MASK)) {
        if ((e->tag_exec & CPU_TLB_INVALID) ||
            (e->tag_exec & CPU_PAGE_MASK) != (lin & CPU_PAGE_MASK)) {
            e = cpu_tlb_fill(cpu, lin, CPU_ACC_EXEC, cpu->mmu_idx);
        }
        *pa = e->paddr | (lin & 0xfff);
        if (e->tag_exec & CPU_TLB_MMIO) {
            return NULL;
        }
    }
    *pa = e->paddr | (lin & 0xfff);
    return (const uint8_t *)(e->addend + (uintptr_t)lin);
}

static struct cpu_block *block_lookup(struct cpu_tcache *tc, uint64_t pa, uint32_t key)
{
    for (struct cpu_block *b = tc->hash[hash_phys(pa, key)]; b; b = b->hash_next) {
        if (b->phys == pa && b->key == key) {
            return b;
        }
    }
    return NULL;
}

/* Scratch block for an instruction that straddles a page or comes from MMIO: not cached. */
struct scratch_block {
    struct cpu_block b;
    struct x86_insn in;
};

static void internal_error(struct cpu *cpu, const char *what, uint64_t lin)
{
    snprintf(cpu->error, sizeof(cpu->error), "%s at linear %#llx", what, (unsigned long long)lin);
    cpu_request_exit(cpu, CPU_EXIT_INTERNAL);
}

/* Decode one instruction whose bytes may cross into the next page. */
static int decode_slow(struct cpu *cpu, uint64_t lin, struct x86_insn *in)
{
    uint8_t buf[16];
    size_t n = 0;
    int r = X86_DECODE_MORE;
    while (n < 15) {
        uint64_t pa;
        uint64_t at = lin + n;
        if (cpu->mode != CPU_MODE_LONG64 && cpu->mode != CPU_MODE_COMPAT) {
            at &= 0xffffffffull; /* code at EIP 0xffffffff wraps to linear 0 */
        }
        const uint8_t *p = fetch_ptr(cpu, at, &pa);
        if (p) {
            buf[n] = *p;
        } else {
            buf[n] = (uint8_t)cpu_ld_phys(cpu, pa, 1);
        }
        n++;
        r = x86_decode(in, buf, n, cpu->code_mode);
        if (r != X86_DECODE_MORE) {
            break;
        }
    }
    if (r == X86_DECODE_MORE) {
        r = X86_DECODE_TOOLONG;
    }
    return r;
}

/* Whether the next block can be found from this one's chain cache: the last instruction is
 * a plain near branch or no block-ending instruction at all (system instructions, far
 * transfers, interrupts and mode changes always go through the full lookup). */
static bool insn_chainable(const struct x86_insn *in)
{
    return !(in->flags & X86_F_END) || (in->flags & X86_F_NEAR);
}

/* A register-only instruction that sets all six arithmetic flags without reading any
 * (ADD/OR/AND/SUB/XOR/CMP/TEST forms; it cannot fault, so no handler can observe the
 * flags before it). */
static bool full_flag_writer(const struct x86_insn *in)
{
    unsigned op = in->op;
    if (in->flags & (X86_F_MEM | X86_F_UD)) {
        return false;
    }
    if (op < 0x40) {
        unsigned row = op >> 3, col = op & 7;
        return col <= 5 && row != 2 && row != 3; /* not ADC/SBB, which read CF */
    }
    if (op == 0x80 || op == 0x81 || op == 0x83) {
        return (in->reg & 7) != 2 && (in->reg & 7) != 3;
    }
    return op == 0x84 || op == 0x85 || op == 0xa8 || op == 0xa9;
}

/* Neither reads nor writes flags and cannot fault (so no exception frame sees RFLAGS):
 * MOV between registers, MOV reg,imm, LEA. */
static bool flag_neutral(const struct x86_insn *in)
{
    unsigned op = in->op;
    if (in->flags & (X86_F_MEM | X86_F_UD | X86_F_END)) {
        return false;
    }
    return ((op >= 0x88 && op <= 0x8b) && in->mod == 3) || op == 0x8d ||
           (op >= 0xb0 && op <= 0xbf);
}

/* Rotates define CF/OF piecewise (materialising the lazy flags); mark those whose flags
 * are dead because a later instruction in the block overwrites them all before anything
 * can observe them. */
static void mark_dead_flags(struct x86_insn *insn, unsigned n)
{
    for (unsigned k = 0; k + 1 < n; k++) {
        unsigned op = insn[k].op;
        bool rot =
            (op == 0xc0 || op == 0xc1 || (op >= 0xd0 && op <= 0xd3)) && (insn[k].reg & 7) <= 3;
        if (!rot) {
            continue;
        }
        for (unsigned j = k + 1; j < n && j <= k + 4; j++) {
            if (full_flag_writer(&insn[j])) {
                insn[k].flags |= X86_F_NOFLAGS;
                break;
            }
            if (!flag_neutral(&insn[j])) {
                break;
            }
        }
    }
}

/* Room for a block of n records plus the code pages of pa (and pa2, unless ~0) not known yet,
 * flushing the cache first when the arena is full; the pages exist afterwards. */
static struct cpu_block *block_alloc(struct cpu *cpu, uint64_t lin, uint64_t pa, uint64_t pa2,
                                     unsigned n)
{
    struct cpu_tcache *tc = cpu->tcache;
    size_t sz = sizeof(struct cpu_block) + n * sizeof(struct x86_insn);
    if (tc->used + sz + 2 * sizeof(struct code_page) + 32 > ARENA_SIZE) {
        cpu_tcache_flush(cpu);
        filter_set(tc, pa); /* the flush cleared it; writers racing the decode queued */
        if (pa2 != ~0ull) {
            filter_set(tc, pa2);
        }
    }
    struct cpu_block *b = arena_alloc(tc, sz);
    if (!b) {
        internal_error(cpu, "block cache arena too small", lin);
        return NULL;
    }
    const uint64_t pages[2] = {pa & CPU_PAGE_MASK, pa2 & CPU_PAGE_MASK};
    for (int k = 0; k < (pa2 == ~0ull ? 1 : 2); k++) {
        if (page_find(tc, pages[k])) {
            continue;
        }
        struct code_page *cp = arena_alloc(tc, sizeof(*cp));
        if (!cp) {
            internal_error(cpu, "block cache arena too small", lin);
            return NULL;
        }
        cp->page = pages[k];
        cp->mask = 0;
        cp->blocks = NULL;
        cp->tails = NULL;
        cp->next = tc->pages[hash_page(cp->page)];
        tc->pages[hash_page(cp->page)] = cp;
        tlb_mark_code(cpu, cp->page);
    }
    return b;
}

/* A built block (records in place) becomes findable: its fields start fresh, it joins the
 * hash and its page's list, and its bytes mark the page's translated granules. */
static void block_publish(struct cpu_tcache *tc, struct cpu_block *b, uint64_t pa, uint32_t key,
                          unsigned n, size_t bytes, bool chainable)
{
    struct code_page *cp = page_find(tc, pa & CPU_PAGE_MASK);
    b->phys = pa;
    b->key = key;
    b->ninsn = (uint16_t)n;
    b->bytes = (uint16_t)bytes;
    b->valid = true;
    b->chain[0] = b->chain[1] = NULL;
    b->chain_rip[0] = b->chain_rip[1] = ~0ull;
    b->chainable = chainable;
    b->straddle = false;
    b->heat = 0;
    b->jit = NULL;
    unsigned h = hash_phys(pa, key);
    b->hash_next = tc->hash[h];
    tc->hash[h] = b;
    b->page_next = cp->blocks;
    cp->blocks = b;
    cp->mask |= granule_mask(pa & 0xfff, bytes);
    tc->blocks_built++;
}

/* The linear address of the page after the one holding lin (32-bit code wraps at 4 GiB). */
static uint64_t next_page_lin(const struct cpu *cpu, uint64_t lin)
{
    uint64_t next = (lin & CPU_PAGE_MASK) + 0x1000;
    if (cpu->mode != CPU_MODE_LONG64 && cpu->mode != CPU_MODE_COMPAT) {
        next &= 0xffffffffull;
    }
    return next;
}

/* Whether a straddling block still has the code it was decoded from: the next linear page
 * maps to the same physical page (may raise #PF, as fetching the instruction would). */
static bool straddle_ok(struct cpu *cpu, const struct cpu_block *b, uint64_t lin)
{
    uint64_t pa2;
    return fetch_ptr(cpu, next_page_lin(cpu, lin), &pa2) && (pa2 & CPU_PAGE_MASK) == b->phys2;
}

/* A first instruction that continues in the next page: a one-record block, cached like any
 * other (a hot kernel path may have one) but valid only while the next linear page maps to
 * the physical page it was decoded from (straddle_ok on every lookup). Writes to either page
 * drop it; it is never translated and never chained into. NULL when the next page is not
 * RAM. */
static struct cpu_block *block_build_straddle(struct cpu *cpu, uint64_t lin, uint64_t pa)
{
    struct cpu_tcache *tc = cpu->tcache;
    uint64_t pa2;
    if (!fetch_ptr(cpu, next_page_lin(cpu, lin), &pa2)) {
        return NULL;
    }
    filter_set(tc, pa2);
    struct x86_insn in;
    int r = decode_slow(cpu, lin, &in);
    if (r == X86_DECODE_TOOLONG) {
        cpu_raise_gp0(cpu);
    }
    struct cpu_block *b = block_alloc(cpu, lin, pa, pa2, 1);
    if (!b) {
        return NULL;
    }
    struct code_page *cp2 = page_find(tc, pa2 & CPU_PAGE_MASK);
    unsigned first = 0x1000 - (unsigned)(pa & 0xfff);
    x86_specialise_insn(&in);
    b->insn[0] = in;
    block_publish(tc, b, pa, cpu->code_mode, 1, first, false);
    b->straddle = true;
    b->phys2 = pa2 & CPU_PAGE_MASK;
    b->tail_next = cp2->tails;
    cp2->tails = b;
    cp2->mask |= granule_mask(0, (uint64_t)r - first);
    return b;
}

static struct cpu_block *block_build(struct cpu *cpu, uint64_t lin, uint64_t pa,
                                     const uint8_t *host, struct scratch_block *scratch)
{
    struct cpu_tcache *tc = cpu->tcache;
    struct x86_insn tmp[BLOCK_MAX_INSNS];
    unsigned n = 0;
    size_t off = 0;
    size_t avail_page = 0x1000 - (pa & 0xfff);
    uint32_t key = cpu->code_mode;

    filter_set(tc, pa);
    while (n < BLOCK_MAX_INSNS && off < avail_page) {
        int r = x86_decode(&tmp[n], host + off, avail_page - off, cpu->code_mode);
        if (r == X86_DECODE_MORE) {
            if (n > 0) {
                break;
            }
            /* First instruction straddles the page */
            struct cpu_block *sb = block_build_straddle(cpu, lin, pa);
            if (sb) {
                return sb;
            }
            /* the next page is MMIO: decode it alone, uncached */
            r = decode_slow(cpu, lin, &scratch->in);
            if (r == X86_DECODE_TOOLONG) {
                cpu_raise_gp0(cpu);
            }
            scratch->b.phys = pa;
            scratch->b.key = key;
            scratch->b.ninsn = 1;
            scratch->b.bytes = (uint16_t)r;
            scratch->b.valid = false;
            scratch->b.chainable = false;
            return &scratch->b;
        }
        if (r == X86_DECODE_TOOLONG) {
            if (n > 0) {
                break;
            }
            cpu_raise_gp0(cpu);
        }
        off += (size_t)r;
        if (tmp[n++].flags & X86_F_END) {
            break;
        }
    }
    struct cpu_block *b = block_alloc(cpu, lin, pa, ~0ull, n);
    if (!b) {
        return NULL;
    }
    for (unsigned k = 0; k < n; k++) {
        x86_specialise_insn(&tmp[k]);
    }
    mark_dead_flags(tmp, n);
    memcpy(b->insn, tmp, n * sizeof(struct x86_insn));
    block_publish(tc, b, pa, key, n, off, insn_chainable(&tmp[n - 1]));
    return b;
}

/* The block at cpu->rip (may raise #PF/#GP for the fetch). */
static struct cpu_block *block_find(struct cpu *cpu, struct scratch_block *scratch)
{
    struct cpu_tcache *tc = cpu->tcache;
    uint64_t lin = fetch_lin(cpu, cpu->rip);
    uint32_t key = cpu->code_mode;
    struct jc_entry *j = &tc->jc[(lin ^ (lin >> JC_BITS)) & (JC_SIZE - 1)];
    uint64_t pa = ~0ull;
    const uint8_t *host = fetch_ptr(cpu, lin, &pa);
    if (j->b && j->lin == lin && j->key == key && j->b->valid && j->b->phys == pa &&
        (!j->b->straddle || straddle_ok(cpu, j->b, lin))) {
        return j->b;
    }
    if (!host) {
        /* Executing from MMIO: decode a single instruction each time. */
        int r = decode_slow(cpu, lin, &scratch->in);
        if (r == X86_DECODE_TOOLONG) {
            cpu_raise_gp0(cpu);
        }
        scratch->b.ninsn = 1;
        scratch->b.key = key;
        scratch->b.valid = false;
        scratch->b.chainable = false;
        return &scratch->b;
    }
    struct cpu_block *b = block_lookup(tc, pa, key);
    if (b && b->straddle && !straddle_ok(cpu, b, lin)) {
        block_unhash(tc, b); /* the next page maps elsewhere now */
        b = NULL;
    }
    if (!b) {
        b = block_build(cpu, lin, pa, host, scratch);
        if (!b || b == &scratch->b) {
            return b;
        }
    }
    j->lin = lin;
    j->key = key;
    j->b = b;
    return b;
}

/* ---- the loop ---- */

/* Whether b has now run often enough to be translated. */
static bool tc_hot(struct cpu_tcache *tc, struct cpu_block *b)
{
    if (!tc->jit || !b->valid || b->straddle) {
        return false;
    }
    if (b->heat < tc->jit_hot) {
        b->heat++;
        return false;
    }
    return true;
}

/* The block loop; runs until an exit reason is set. Kept out of cpu_run so that its locals
 * are not live across cpu_run's setjmp (an exception longjmps out of here). */
static void run_blocks(struct cpu *cpu, uint64_t limit)
{
    struct scratch_block scratch;
    struct cpu_block *prev = NULL; /* the block just run, when its successor may be chained */
    uint64_t prev_rip = 0;         /* its first RIP */
    uint64_t prev_gen = 0;         /* block cache generation when prev was run */

    for (;;) {
        if (CPU_UNLIKELY(cpu->exit_reason != CPU_EXIT_NONE)) {
            break;
        }
        if (CPU_UNLIKELY(__atomic_load_n(&cpu->exit_request, __ATOMIC_ACQUIRE))) {
            __atomic_store_n(&cpu->exit_request, 0, __ATOMIC_RELAXED);
            cpu->exit_reason = CPU_EXIT_KICK;
            break;
        }
        if (cpu->icount >= limit) {
            cpu->exit_reason = CPU_EXIT_ICOUNT;
            break;
        }
        cpu->insn_rip = cpu->rip;
        cpu_check_interrupts(cpu);
        if (cpu->rip != cpu->insn_rip) {
            prev = NULL; /* an event was delivered: privilege and mode may differ */
        }
        if (cpu->exit_reason != CPU_EXIT_NONE) {
            break;
        }
        if (cpu->halted) {
            cpu->exit_reason = CPU_EXIT_HLT;
            break;
        }

        if (CPU_UNLIKELY(__atomic_load_n(&cpu->tcache->dma_pending, __ATOMIC_ACQUIRE))) {
            apply_noted_writes(cpu);
            prev = NULL;
        }
        cpu->block_stop = false;
        struct cpu_block *b = NULL;
        if (prev && prev_gen != cpu->tcache->flushes) {
            prev = NULL;
        }
        if (prev) {
            /* Chained successor: same page, same mode, nothing flushed in between. */
            uint64_t rip = cpu->rip;
            if (prev->chain_rip[0] == rip && prev->chain[0]->valid) {
                b = prev->chain[0];
            } else if (prev->chain_rip[1] == rip && prev->chain[1]->valid) {
                b = prev->chain[1];
            }
        }
        if (!b) {
            b = block_find(cpu, &scratch);
            if (!b) {
                prev = NULL;
                continue; /* internal error was requested */
            }
            uint64_t csb = cpu->mode == CPU_MODE_LONG64 ? 0 : cpu->seg[CPU_SEG_CS].base;
            if (prev && prev_gen == cpu->tcache->flushes && b->valid && !b->straddle &&
                (b->phys & CPU_PAGE_MASK) == (prev->phys & CPU_PAGE_MASK) &&
                (((csb + cpu->rip) ^ (csb + prev_rip)) & CPU_PAGE_MASK) == 0 &&
                b->key == prev->key) {
                unsigned k = prev->chain[0] ? 1 : 0;
                if (prev->chain[0] && prev->chain[1]) {
                    k = prev->chain_rip[0] == ~0ull ? 0 : 1;
                }
                prev->chain[k] = b;
                prev->chain_rip[k] = cpu->rip;
            }
        }
        prev = NULL;
        unsigned n = b->ninsn;
        bool single = cpu->intr_shadow || (cpu->rflags & CPU_FL_TF);
        bool tf = cpu->rflags & CPU_FL_TF;
        if (single) {
            n = 1;
            cpu->intr_shadow = 0;
        }
        if (limit - cpu->icount < n) {
            n = (unsigned)(limit - cpu->icount);
        }
        /* A later instruction overwriting a rotate's flags may not run (budget, interrupt
         * shadow, single-step): then every flag must be computed. */
        cpu->keep_flags = n < b->ninsn;
        const uint64_t mask = rip_mask(b->key);
        uint64_t b_rip = cpu->rip;
        const struct x86_insn *in = b->insn;
        /* A flush while the block runs recycles its storage: b is not to be read after. */
        const uint64_t gen_before = cpu->tcache->flushes;
        unsigned b_ninsn = b->ninsn;
        unsigned i = 0;
        bool jit_mode = b->key == X86_MODE_64 || (b->key == X86_MODE_32 && cpu->jit_flat32);
        if (b->jit == NULL && jit_mode && tc_hot(cpu->tcache, b) && n == b_ninsn && !single) {
            bool full;
            const struct cpu_jit_chain ch = {
                .block = b,
                .off_rip = {offsetof(struct cpu_block, chain_rip[0]),
                            offsetof(struct cpu_block, chain_rip[1])},
                .off_next = {offsetof(struct cpu_block, chain[0]),
                             offsetof(struct cpu_block, chain[1])},
                .off_valid = offsetof(struct cpu_block, valid),
                .off_jit = offsetof(struct cpu_block, jit),
                .off_phys = offsetof(struct cpu_block, phys),
                .page_off = (unsigned)(b->phys & 0xfff),
                .key = b->key,
                .rip = cpu->rip,
                .f1_ecx = cpu->feat.f1_ecx,
                .chainable = b->chainable,
                .jc = cpu->tcache->jc,
                .jc_bits = JC_BITS,
                .jc_entry_size = sizeof(struct jc_entry),
                .off_jc_lin = offsetof(struct jc_entry, lin),
                .off_jc_key = offsetof(struct jc_entry, key),
                .off_jc_b = offsetof(struct jc_entry, b),
            };
            b->jit = cpu_jit_compile(cpu->tcache->jit, b->insn, b_ninsn, &ch, &full);
            if (full) {
                cpu_tcache_flush(cpu); /* b is gone: start over */
                cpu->block_stop = false;
                continue;
            }
        }
        if (b->valid && b->jit && jit_mode && n == b_ninsn && !single) {
            /* Translated blocks may enter each other (same page, cached successors) for a
             * while; the last one tells which it was. */
            uint64_t left = (limit - cpu->icount) / BLOCK_MAX_INSNS;
            __atomic_store_n(&cpu->jit_budget, left < 4096 ? (int32_t)left : 4096, __ATOMIC_RELAXED);
            i = b->jit(cpu);
            b = cpu->jit_last;
            b_rip = cpu->jit_last_rip;
            b_ninsn = b->ninsn;
            n = 0; /* skip the interpreter */
        }
        while (i < n) {
            uint64_t rip = cpu->rip;
            cpu->insn_rip = rip;
            cpu->rip = (rip + in->len) & mask;
            in->exec(cpu, in);
            i++;
            cpu->icount++;
            if (CPU_UNLIKELY(cpu->block_stop)) {
                break;
            }
            in++;
        }
        if (i == b_ninsn && !cpu->block_stop && gen_before == cpu->tcache->flushes &&
            b->valid && b->chainable && !single) {
            prev = b;
            prev_rip = b_rip;
            prev_gen = cpu->tcache->flushes;
        }
        if (CPU_UNLIKELY(tf) && i == 1 && cpu->exc_vector < 0) {
            /* Single-step trap after the instruction (SDM vol. 3, 17.3.1.4). */
            cpu->dr[6] |= 1u << 14;
            cpu->insn_rip = cpu->rip;
            cpu_deliver_exception(cpu, X86_EXC_DB, CPU_NO_ERROR);
        }
    }
}

int cpu_run(struct cpu *cpu, uint64_t max_insns)
{
    const uint64_t limit = max_insns ? cpu->icount + max_insns : UINT64_MAX;

    cpu->exit_reason = CPU_EXIT_NONE;
    cpu->exc_jmp_valid = true;
    if (setjmp(cpu->exc_jmp)) {
        /* An exception: back to the faulting instruction, then deliver it. */
        cpu->rip = cpu->insn_rip;
        cpu->block_stop = false;
        if (cpu->exit_on_exception) {
            cpu->exc_jmp_valid = false;
            return CPU_EXIT_EXCEPTION;
        }
        cpu_deliver_exception(cpu, cpu->exc_vector, cpu->exc_error);
        cpu->exc_vector = -1;
    }

    run_blocks(cpu, limit);
    cpu->exc_jmp_valid = false;
    return cpu->exit_reason;
}
