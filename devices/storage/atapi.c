/* ATAPI CD/DVD-ROM packet commands (MMC-6, SPC-3); see atapi.h. */
#include "devices/storage/atapi.h"

#include "core/log.h"

#include <string.h>

#define ATAPI_TAG "dev.atapi"

/* Operation codes (MMC-6 table 35, SPC-3) */
#define CMD_TEST_UNIT_READY 0x00
#define CMD_REQUEST_SENSE 0x03
#define CMD_INQUIRY 0x12
#define CMD_START_STOP_UNIT 0x1b
#define CMD_PREVENT_ALLOW 0x1e
#define CMD_READ_CAPACITY 0x25
#define CMD_READ_10 0x28
#define CMD_SEEK_10 0x2b
#define CMD_READ_TOC 0x43
#define CMD_GET_CONFIGURATION 0x46
#define CMD_GET_EVENT_STATUS 0x4a
#define CMD_READ_DISC_INFO 0x51
#define CMD_MODE_SELECT_10 0x55
#define CMD_MODE_SENSE_10 0x5a
#define CMD_READ_12 0xa8
#define CMD_SET_CD_SPEED 0xbb
#define CMD_MECHANISM_STATUS 0xbd

#define PROFILE_NONE 0x0000
#define PROFILE_CD_ROM 0x0008
#define PROFILE_DVD_ROM 0x0010

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Fill 4 bytes: reserved, M, S, F for an LBA (MMC-6 4.2.3.5: MSF = LBA + 150 frames). */
static void put_msf(uint8_t *p, uint64_t lba)
{
    uint64_t f = lba + 150;
    p[0] = 0;
    p[1] = (uint8_t)(f / (75 * 60));
    p[2] = (uint8_t)((f / 75) % 60);
    p[3] = (uint8_t)(f % 75);
}

static void put_addr(uint8_t *p, uint64_t lba, bool msf)
{
    if (msf) {
        put_msf(p, lba);
    } else {
        put32(p, (uint32_t)lba);
    }
}

void atapi_init(struct atapi *a)
{
    memset(a, 0, sizeof(*a));
}

void atapi_reset(struct atapi *a)
{
    a->locked = false;
    a->sense_key = ATAPI_SENSE_NONE;
    a->asc = 0;
    a->ascq = 0;
}

void atapi_insert(struct atapi *a, const struct storage_backend *be)
{
    if (!be) {
        atapi_eject(a);
        return;
    }
    a->be = *be;
    a->has_backend = true;
    a->tray_open = false;
    a->unit_attention = true;
    a->media_event = ATAPI_MEC_NEW_MEDIA;
}

void atapi_eject(struct atapi *a)
{
    bool had = atapi_media_present(a);
    memset(&a->be, 0, sizeof(a->be));
    a->has_backend = false;
    a->locked = false;
    if (had) {
        a->media_event = ATAPI_MEC_MEDIA_REMOVAL;
        a->unit_attention = true;
    }
}

bool atapi_media_present(const struct atapi *a)
{
    return a->has_backend && !a->tray_open;
}

uint64_t atapi_blocks(const struct atapi *a)
{
    return atapi_media_present(a) ? a->be.length / ATAPI_BLOCK_SIZE : 0;
}

void atapi_set_sense(struct atapi *a, uint8_t key, uint8_t asc, uint8_t ascq)
{
    a->sense_key = key;
    a->asc = asc;
    a->ascq = ascq;
}

static void atapi_fail(struct atapi *a, struct atapi_result *r, uint8_t key, uint8_t asc)
{
    atapi_set_sense(a, key, asc, 0);
    r->ok = false;
    r->len = 0;
    r->is_read = false;
}

/* Limit a response to the CDB's allocation length and the buffer. */
static void atapi_reply(struct atapi_result *r, uint32_t len, uint32_t alloc)
{
    if (len > alloc) {
        len = alloc;
    }
    if (len > ATAPI_RESP_MAX) {
        len = ATAPI_RESP_MAX;
    }
    r->len = len;
}

static bool atapi_is_dvd(const struct atapi *a)
{
    return atapi_blocks(a) > ATAPI_CD_MAX_BLOCKS;
}

static void atapi_inquiry(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    if ((cdb[1] & 1) || cdb[2]) {
        /* No vital product data pages: SPC-3 6.4.1 says reject EVPD we lack. */
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
        return;
    }
    uint8_t *b = r->buf;
    b[0] = 0x05; /* peripheral device type: CD/DVD */
    b[1] = 0x80; /* removable medium */
    b[2] = 0x00; /* ATAPI devices claim no SCSI version */
    b[3] = 0x21; /* ATAPI transport, response data format 1 */
    b[4] = 31;   /* additional length: 36 bytes in all */
    memcpy(b + 8, "LODGE   ", 8);
    memcpy(b + 16, "DVD-ROM         ", 16);
    memcpy(b + 32, "1.0 ", 4);
    atapi_reply(r, 36, cdb[4]);
}

static void atapi_request_sense(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    uint8_t *b = r->buf;
    b[0] = 0x70; /* current error, fixed format */
    b[2] = a->sense_key;
    b[7] = 10; /* additional sense length */
    b[12] = a->asc;
    b[13] = a->ascq;
    atapi_reply(r, 18, cdb[4]);
    /* Sense data is consumed by REQUEST SENSE (SPC-3 4.5.1). */
    atapi_set_sense(a, ATAPI_SENSE_NONE, 0, 0);
}

static void atapi_read_toc(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    bool msf = cdb[1] & 2;
    unsigned format = cdb[2] & 0x0f;
    unsigned track = cdb[6];
    uint32_t alloc = get16(cdb + 7);
    uint64_t leadout = atapi_blocks(a);
    uint8_t *b = r->buf;
    uint32_t len;
    if (format == 0 && !cdb[2] && (cdb[9] >> 6)) {
        format = cdb[9] >> 6; /* the older ATAPI (SFF-8020) place of the format field */
    }
    switch (format) {
    case 0: /* formatted TOC: the one data track and the lead-out */
        if (track > 1 && track != 0xaa) {
            atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
            return;
        }
        b[2] = 1; /* first track */
        b[3] = 1; /* last track */
        len = 4;
        if (track <= 1) {
            b[len + 1] = 0x14; /* ADR 1 (position), control 4 (data track) */
            b[len + 2] = 1;
            put_addr(b + len + 4, 0, msf);
            len += 8;
        }
        b[len + 1] = 0x14;
        b[len + 2] = 0xaa;
        put_addr(b + len + 4, leadout, msf);
        len += 8;
        break;
    case 1: /* multisession: first track of the last session */
        b[2] = 1;
        b[3] = 1;
        b[5] = 0x14;
        b[6] = 1;
        put_addr(b + 8, 0, msf);
        len = 12;
        break;
    case 2: {     /* raw TOC: points A0, A1, A2 and track 1 of session 1 */
        b[2] = 1; /* first session */
        b[3] = 1; /* last session */
        len = 4;
        static const uint8_t points[4] = {0xa0, 0xa1, 0xa2, 0x01};
        for (int i = 0; i < 4; i++) {
            uint8_t *d = b + len;
            d[0] = 1;    /* session */
            d[1] = 0x14; /* ADR 1, data track */
            d[3] = points[i];
            if (points[i] == 0xa0 || points[i] == 0xa1) {
                d[8] = 1; /* PMIN: first / last track number; PSEC 0: CD-ROM disc */
            } else if (points[i] == 0xa2) {
                put_msf(d + 7, leadout);
            } else {
                put_msf(d + 7, 0);
            }
            len += 11;
        }
        break;
    }
    default:
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
        return;
    }
    put16(b, len - 2);
    atapi_reply(r, len, alloc);
}

/* One feature descriptor header (MMC-6 5.2.2). */
static uint32_t feat(uint8_t *p, uint16_t code, unsigned version, bool persistent, bool current,
                     uint8_t addlen)
{
    put16(p, code);
    p[2] = (uint8_t)(version << 2 | (persistent ? 2 : 0) | (current ? 1 : 0));
    p[3] = addlen;
    return 4u + addlen;
}

static void atapi_get_configuration(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    unsigned rt = cdb[1] & 3;
    uint32_t start = get16(cdb + 2);
    uint32_t alloc = get16(cdb + 7);
    bool media = atapi_media_present(a);
    bool dvd = atapi_is_dvd(a);
    uint8_t *b = r->buf;
    if (rt == 3) {
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
        return;
    }
    put16(b + 6, !media ? PROFILE_NONE : dvd ? PROFILE_DVD_ROM : PROFILE_CD_ROM);
    uint32_t len = 8;
    /* code, current, persistent, version; every descriptor is built below */
    static const uint16_t codes[] = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001e, 0x001f};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        uint16_t code = codes[i];
        bool current = true;
        if (code == 0x0010) {
            current = media;
        } else if (code == 0x001e) {
            current = media && !dvd;
        } else if (code == 0x001f) {
            current = media && dvd;
        }
        if (code < start || (rt == 1 && !current) || (rt == 2 && code != start)) {
            continue;
        }
        uint8_t *p = b + len;
        switch (code) {
        case 0x0000: /* Profile List */
            len += feat(p, code, 0, true, true, 8);
            put16(p + 4, PROFILE_DVD_ROM);
            p[6] = media && dvd;
            put16(p + 8, PROFILE_CD_ROM);
            p[10] = media && !dvd;
            break;
        case 0x0001: /* Core: ATAPI physical interface, DBE */
            len += feat(p, code, 2, true, true, 8);
            put32(p + 4, 2);
            p[8] = 1;
            break;
        case 0x0002: /* Morphing: polled GESN only (no asynchronous notification) */
            len += feat(p, code, 1, true, true, 4);
            p[4] = 0x02; /* OCEvent */
            break;
        case 0x0003: /* Removable Medium: tray loader, eject, lock */
            len += feat(p, code, 0, true, true, 4);
            p[4] = (uint8_t)(1 << 5 | 1 << 3 | 1);
            break;
        case 0x0010: /* Random Readable */
            len += feat(p, code, 0, false, current, 8);
            put32(p + 4, ATAPI_BLOCK_SIZE);
            put16(p + 8, dvd ? 16 : 1);
            break;
        case 0x001e: /* CD Read */
            len += feat(p, code, 2, false, current, 4);
            break;
        default: /* 0x001f DVD Read */
            len += feat(p, code, 0, false, current, 4);
            break;
        }
    }
    put32(b, len - 4);
    atapi_reply(r, len, alloc);
}

static void atapi_get_event_status(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    uint32_t alloc = get16(cdb + 7);
    uint8_t *b = r->buf;
    if (!(cdb[1] & 1)) {
        /* Asynchronous operation is not supported (MMC-6 6.6.1). */
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
        return;
    }
    b[3] = 1 << 4; /* supported classes: media */
    if (!(cdb[4] & (1 << 4))) {
        b[2] = 0x80; /* NEA: no event of a requested class is available */
        put16(b, 2);
        atapi_reply(r, 4, alloc);
        return;
    }
    b[2] = 4; /* notification class: media */
    put16(b, 6);
    b[4] = a->media_event;
    b[5] = (uint8_t)((atapi_media_present(a) ? 2 : 0) | (a->tray_open ? 1 : 0));
    a->media_event = ATAPI_MEC_NONE;
    atapi_reply(r, 8, alloc);
}

static void atapi_mode_sense(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    unsigned page = cdb[2] & 0x3f;
    unsigned pc = cdb[2] >> 6;
    uint32_t alloc = get16(cdb + 7);
    uint8_t *b = r->buf;
    uint32_t len = 8;
    if (pc == 3) {
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_SAVING_NOT_SUPPORTED);
        return;
    }
    if (page != 0x01 && page != 0x2a && page != 0x3f) {
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
        return;
    }
    bool changeable = pc == 1;
    if (page == 0x01 || page == 0x3f) { /* read error recovery (MMC-6 7.3) */
        uint8_t *p = b + len;
        p[0] = 0x01;
        p[1] = 0x06;
        p[3] = changeable ? 0 : 5; /* read retry count */
        len += 8;
    }
    if (page == 0x2a || page == 0x3f) { /* CD/DVD capabilities (MMC-3 5.5.10) */
        uint8_t *p = b + len;
        p[0] = 0x2a;
        p[1] = 0x14;
        if (!changeable) {
            p[2] = 0x3b; /* reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R, DVD-RAM */
            p[4] = 0x71; /* audio play, multisession, mode 2 forms */
            p[5] = 0xff; /* CD-DA, subchannel, ISRC, UPC, barcode */
            p[6] = (uint8_t)(1 << 5 | 1 << 3 | 1 | (a->locked ? 2 : 0)); /* tray, eject, lock */
            put16(p + 8, 16 * 176);  /* maximum read speed, kB/s */
            put16(p + 10, 256);      /* volume levels */
            put16(p + 12, 2048);     /* buffer size, KiB */
            put16(p + 14, 16 * 176); /* current read speed */
        }
        len += 22;
    }
    b[2] = atapi_media_present(a) ? 0x01 : 0x70; /* medium type: CD-ROM data / door closed */
    put16(b, len - 2);
    atapi_reply(r, len, alloc);
}

static void atapi_start_stop(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    bool loej = cdb[4] & 2;
    bool start = cdb[4] & 1;
    if (!loej) {
        return; /* spin up / down: nothing to do for an image */
    }
    if (!start) {
        if (a->locked) {
            atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_REMOVAL_PREVENTED);
            a->ascq = 2; /* MEDIUM REMOVAL PREVENTED */
            return;
        }
        if (!a->tray_open && a->has_backend) {
            a->media_event = ATAPI_MEC_MEDIA_REMOVAL;
        }
        a->tray_open = true;
        return;
    }
    if (a->tray_open) {
        a->tray_open = false;
        if (a->has_backend) {
            a->media_event = ATAPI_MEC_NEW_MEDIA;
            a->unit_attention = true;
        }
    }
}

static void atapi_read_disc_info(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    uint8_t *b = r->buf;
    if (cdb[1] & 7) {
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_FIELD);
        return;
    }
    put16(b, 32);
    b[2] = 0x0e;             /* last session complete, disc finalized (not erasable) */
    b[3] = 1;                /* first track on disc */
    b[4] = 1;                /* number of sessions (LSB) */
    b[5] = 1;                /* first track in last session (LSB) */
    b[6] = 1;                /* last track in last session (LSB) */
    b[7] = 0x20;             /* unrestricted use */
    b[8] = 0x00;             /* disc type: CD-DA or CD-ROM */
    memset(b + 16, 0xff, 8); /* last session lead-in / last possible lead-out: none */
    atapi_reply(r, 34, get16(cdb + 7));
}

static void atapi_mechanism_status(struct atapi *a, const uint8_t *cdb, struct atapi_result *r)
{
    uint8_t *b = r->buf;
    b[1] = a->tray_open ? 0x10 : 0x00; /* mechanism idle, door open bit */
    atapi_reply(r, 8, get16(cdb + 8));
}

/* Commands a pending UNIT ATTENTION does not fail (MMC-6 4.1.6.1, SPC-3 5.9.7). */
static bool atapi_ua_exempt(uint8_t op)
{
    return op == CMD_INQUIRY || op == CMD_REQUEST_SENSE || op == CMD_GET_CONFIGURATION ||
           op == CMD_GET_EVENT_STATUS;
}

/* Commands that need a disc in the drive. */
static bool atapi_needs_media(uint8_t op)
{
    return op == CMD_TEST_UNIT_READY || op == CMD_READ_CAPACITY || op == CMD_READ_10 ||
           op == CMD_READ_12 || op == CMD_READ_TOC || op == CMD_READ_DISC_INFO || op == CMD_SEEK_10;
}

static void atapi_read(struct atapi *a, uint64_t lba, uint64_t count, struct atapi_result *r)
{
    uint64_t blocks = atapi_blocks(a);
    if (lba > blocks || count > blocks - lba) {
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_LBA_OUT_OF_RANGE);
        return;
    }
    r->is_read = true;
    r->read_off = lba * ATAPI_BLOCK_SIZE;
    /* At most 2^32-1 blocks of 2 KiB: the byte count may exceed 32 bits. */
    uint64_t bytes = count * ATAPI_BLOCK_SIZE;
    r->len = bytes > 0xffffffffu ? 0xfffff800u : (uint32_t)bytes;
}

void atapi_exec(struct atapi *a, const uint8_t cdb[12], struct atapi_result *r)
{
    uint8_t op = cdb[0];
    memset(r, 0, sizeof(*r));
    r->ok = true;
    log_trace(ATAPI_TAG, "packet %02x", op);
    if (a->unit_attention && !atapi_ua_exempt(op)) {
        a->unit_attention = false;
        atapi_fail(a, r, ATAPI_SENSE_UNIT_ATTENTION, ATAPI_ASC_MEDIUM_CHANGED);
        return;
    }
    if (atapi_needs_media(op) && !atapi_media_present(a)) {
        atapi_fail(a, r, ATAPI_SENSE_NOT_READY, ATAPI_ASC_NO_MEDIUM);
        return;
    }
    if (op != CMD_REQUEST_SENSE) {
        atapi_set_sense(a, ATAPI_SENSE_NONE, 0, 0);
    }
    switch (op) {
    case CMD_TEST_UNIT_READY:
    case CMD_SEEK_10:
    case CMD_SET_CD_SPEED:
        break;
    case CMD_REQUEST_SENSE:
        atapi_request_sense(a, cdb, r);
        break;
    case CMD_INQUIRY:
        atapi_inquiry(a, cdb, r);
        break;
    case CMD_READ_CAPACITY:
        put32(r->buf, (uint32_t)(atapi_blocks(a) ? atapi_blocks(a) - 1 : 0));
        put32(r->buf + 4, ATAPI_BLOCK_SIZE);
        r->len = 8;
        break;
    case CMD_READ_10:
        atapi_read(a, get32(cdb + 2), get16(cdb + 7), r);
        break;
    case CMD_READ_12:
        atapi_read(a, get32(cdb + 2), get32(cdb + 6), r);
        break;
    case CMD_READ_TOC:
        atapi_read_toc(a, cdb, r);
        break;
    case CMD_GET_CONFIGURATION:
        atapi_get_configuration(a, cdb, r);
        break;
    case CMD_GET_EVENT_STATUS:
        atapi_get_event_status(a, cdb, r);
        break;
    case CMD_MODE_SENSE_10:
        atapi_mode_sense(a, cdb, r);
        break;
    case CMD_MODE_SELECT_10:
        r->data_out = true;
        r->len = get16(cdb + 7);
        break;
    case CMD_START_STOP_UNIT:
        atapi_start_stop(a, cdb, r);
        break;
    case CMD_PREVENT_ALLOW:
        a->locked = cdb[4] & 1;
        break;
    case CMD_READ_DISC_INFO:
        atapi_read_disc_info(a, cdb, r);
        break;
    case CMD_MECHANISM_STATUS:
        atapi_mechanism_status(a, cdb, r);
        break;
    default:
        log_debug(ATAPI_TAG, "unsupported packet command %02x", op);
        atapi_fail(a, r, ATAPI_SENSE_ILLEGAL_REQUEST, ATAPI_ASC_INVALID_OPCODE);
        break;
    }
}
