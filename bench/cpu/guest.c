/* CPU-bound guest for bench/cpu: a static, freestanding x86-64 Linux program. It runs an
 * integer loop, memcpy/memset-like string instructions and a small hash, then exits through
 * the exit syscall (the only syscall it makes) with the low byte of the checksum, so the
 * native run, QEMU user mode and Lodge's soft CPU can be checked against each other.
 * Built with -ffreestanding -nostdlib -static -fno-pie (see meson.build). */
#include <stddef.h>
#include <stdint.h>

#define BUF_SIZE 65536
#define ROUNDS 1500

static uint8_t buf_a[BUF_SIZE];
static uint8_t buf_b[BUF_SIZE];

static void copy_bytes(void *dst, const void *src, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void fill_qwords(void *dst, uint64_t v, size_t n)
{
    __asm__ volatile("rep stosq" : "+D"(dst), "+c"(n) : "a"(v) : "memory");
}

/* Integer mix: adds, multiplies, shifts, a data-dependent branch. */
static uint64_t int_loop(uint64_t x, unsigned n)
{
    uint64_t acc = 0;
    for (unsigned i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc += (x & 1) ? x * 3 : (x >> 3);
        acc = (acc << 5) | (acc >> 59);
    }
    return acc;
}

/* FNV-1a over a buffer (byte loads, xor, multiply). */
static uint64_t hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

__attribute__((noreturn)) static void sys_exit(int code)
{
    __asm__ volatile("syscall" : : "a"(60), "D"(code) : "rcx", "r11", "memory");
    __builtin_unreachable();
}

__attribute__((noreturn, used)) void bench_main(void)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < BUF_SIZE; i++) {
        buf_a[i] = (uint8_t)(i * 7 + 3);
    }
    for (unsigned r = 0; r < ROUNDS; r++) {
        sum += int_loop(sum + r + 1, 20000);
        copy_bytes(buf_b, buf_a, BUF_SIZE);
        fill_qwords(buf_a, sum, BUF_SIZE / 16);
        sum ^= hash(buf_b, 8192);
        buf_a[r % BUF_SIZE] ^= (uint8_t)sum;
    }
    sys_exit((int)(sum & 0xff));
}

/* Entry: align the stack and call bench_main (Linux gives an aligned RSP; so does Lodge's
 * runner). */
__asm__(".globl _start\n"
        "_start:\n"
        "    and $-16, %rsp\n"
        "    call bench_main\n"
        "    hlt\n");
