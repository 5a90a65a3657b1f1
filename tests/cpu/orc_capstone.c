/* Capstone wrappers for the oracles. Kept apart because Capstone's enum x86_insn collides
 * with Lodge's struct x86_insn. */
#include "tests/cpu/orc_capstone.h"

#include <capstone/capstone.h>
#include <inttypes.h>
#include <stdlib.h>

void orc_disasm_print(const uint8_t *code, size_t len, int bits, uint64_t addr, FILE *f)
{
    csh h;
    cs_mode m = bits == 16 ? CS_MODE_16 : bits == 32 ? CS_MODE_32 : CS_MODE_64;
    if (cs_open(CS_ARCH_X86, m, &h) != CS_ERR_OK) {
        return;
    }
    cs_insn *ins = NULL;
    size_t n = cs_disasm(h, code, len, addr, 0, &ins);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "      %08" PRIx64 "  %-8s %s\n", ins[i].address, ins[i].mnemonic,
                ins[i].op_str);
    }
    cs_free(ins, n);
    cs_close(&h);
}

struct orc_cs {
    csh h;
    cs_insn *ins;
};

struct orc_cs *orc_cs_new(int bits)
{
    struct orc_cs *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    cs_mode m = bits == 16 ? CS_MODE_16 : bits == 32 ? CS_MODE_32 : CS_MODE_64;
    if (cs_open(CS_ARCH_X86, m, &c->h) != CS_ERR_OK) {
        free(c);
        return NULL;
    }
    cs_option(c->h, CS_OPT_DETAIL, CS_OPT_ON);
    c->ins = cs_malloc(c->h);
    if (!c->ins) {
        cs_close(&c->h);
        free(c);
        return NULL;
    }
    return c;
}

void orc_cs_free(struct orc_cs *c)
{
    if (!c) {
        return;
    }
    cs_free(c->ins, 1);
    cs_close(&c->h);
    free(c);
}

int orc_cs_decode(struct orc_cs *c, const uint8_t *bytes, size_t len, struct orc_cs_info *out)
{
    const uint8_t *p = bytes;
    size_t n = len;
    uint64_t addr = 0x1000;
    if (!cs_disasm_iter(c->h, &p, &n, &addr, c->ins)) {
        return -1;
    }
    const cs_x86 *x = &c->ins->detail->x86;
    out->len = c->ins->size;
    out->has_modrm = x->encoding.modrm_offset != 0;
    out->modrm = x->modrm;
    out->modrm_offset = x->encoding.modrm_offset;
    out->imm_size = x->encoding.imm_size;
    out->imm_offset = x->encoding.imm_offset;
    out->disp_size = x->encoding.disp_size;
    out->id = c->ins->id;
    snprintf(out->text, sizeof(out->text), "%s %s", c->ins->mnemonic, c->ins->op_str);
    return 0;
}
