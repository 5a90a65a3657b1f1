/* Capstone wrappers used by the CPU oracles (see orc_capstone.c). */
#ifndef LODGE_TESTS_CPU_ORC_CAPSTONE_H
#define LODGE_TESTS_CPU_ORC_CAPSTONE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Print a disassembly of code[0..len) (bits: 16, 32 or 64). */
void orc_disasm_print(const uint8_t *code, size_t len, int bits, uint64_t addr, FILE *f);

struct orc_cs;
struct orc_cs_info {
    unsigned len;         /* instruction length */
    int has_modrm;        /* Capstone's view: a ModRM byte exists */
    uint8_t modrm;        /* its value */
    uint8_t modrm_offset; /* its offset in the instruction */
    uint8_t imm_size;     /* immediate bytes (first immediate) */
    uint8_t imm_offset;
    uint8_t disp_size;
    unsigned id;    /* Capstone instruction id */
    char text[192]; /* mnemonic and operands */
};
struct orc_cs *orc_cs_new(int bits);
void orc_cs_free(struct orc_cs *c);
/* Decode one instruction at bytes[0..len): 0, or -1 when Capstone finds none. */
int orc_cs_decode(struct orc_cs *c, const uint8_t *bytes, size_t len, struct orc_cs_info *out);

#endif
