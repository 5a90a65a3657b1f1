/* ATAPI CD/DVD-ROM command set (MMC-6 subset over SPC-3 sense data), independent
 * of the transport: the AHCI port hands it a 12-byte packet and moves the data.
 *
 * atapi_exec() answers small commands into a buffer inside struct atapi_result;
 * READ(10)/READ(12) only describe the byte range to stream from the backend, so a
 * large read never needs a large host buffer. A failed command leaves sense data
 * (key/ASC/ASCQ) for REQUEST SENSE and the transport's error register.
 *
 * Media: a backend may be attached or not; the tray may be open. Inserting media
 * arms a UNIT ATTENTION (MEDIUM MAY HAVE CHANGED) and a NewMedia event for GET
 * EVENT STATUS NOTIFICATION; ejecting arms a MediaRemoval event.
 *
 * Not thread-safe: the transport serialises calls under its own lock. */
#ifndef LODGE_DEVICES_STORAGE_ATAPI_H
#define LODGE_DEVICES_STORAGE_ATAPI_H

#include "devices/storage/storage_backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATAPI_BLOCK_SIZE 2048u
#define ATAPI_RESP_MAX 512u /* largest non-READ response (GET CONFIGURATION fits) */
/* Discs larger than this many 2048-byte blocks are reported as DVDs (80-min CD). */
#define ATAPI_CD_MAX_BLOCKS 359847u

/* SCSI sense keys (SPC-3 4.5.6) */
#define ATAPI_SENSE_NONE 0x0
#define ATAPI_SENSE_NOT_READY 0x2
#define ATAPI_SENSE_MEDIUM_ERROR 0x3
#define ATAPI_SENSE_ILLEGAL_REQUEST 0x5
#define ATAPI_SENSE_UNIT_ATTENTION 0x6

/* Additional sense codes used here */
#define ATAPI_ASC_INVALID_OPCODE 0x20
#define ATAPI_ASC_LBA_OUT_OF_RANGE 0x21
#define ATAPI_ASC_INVALID_FIELD 0x24
#define ATAPI_ASC_MEDIUM_CHANGED 0x28
#define ATAPI_ASC_SAVING_NOT_SUPPORTED 0x39
#define ATAPI_ASC_NO_MEDIUM 0x3a
#define ATAPI_ASC_REMOVAL_PREVENTED 0x53
#define ATAPI_ASC_READ_ERROR 0x11

/* GET EVENT STATUS NOTIFICATION media event codes (MMC-6 6.6.2.5) */
#define ATAPI_MEC_NONE 0
#define ATAPI_MEC_EJECT_REQUEST 1
#define ATAPI_MEC_NEW_MEDIA 2
#define ATAPI_MEC_MEDIA_REMOVAL 3

struct atapi {
    struct storage_backend be; /* medium; valid when has_backend */
    bool has_backend;          /* an ISO is attached (the disc in the drive) */
    bool tray_open;            /* START STOP UNIT LoEj/Start (MMC-6 6.39) */
    bool locked;               /* PREVENT ALLOW MEDIUM REMOVAL (SPC-3 6.12) */
    bool unit_attention;       /* pending UA: medium may have changed (SPC-3 5.9.7) */
    uint8_t media_event;       /* pending GESN media event code, ATAPI_MEC_* */
    uint8_t sense_key;         /* last sense data (SPC-3 4.5.3 fixed format) */
    uint8_t asc;               /* additional sense code */
    uint8_t ascq;              /* additional sense code qualifier */
};

struct atapi_result {
    bool ok;                     /* GOOD status; else CHECK CONDITION with sense set */
    bool data_out;               /* host-to-device data phase (MODE SELECT): discarded */
    bool is_read;                /* READ(10/12): stream [read_off, read_off+len) */
    uint64_t read_off;           /* byte offset on the medium */
    uint32_t len;                /* bytes of data to transfer (already allocation-limited) */
    uint8_t buf[ATAPI_RESP_MAX]; /* response data when !is_read */
};

void atapi_init(struct atapi *a);
/* Power-on / DEVICE RESET: sense cleared, unlocked; the medium stays. */
void atapi_reset(struct atapi *a);
/* Put a disc in (closes the tray) or take it out. insert with be == NULL empties. */
void atapi_insert(struct atapi *a, const struct storage_backend *be);
void atapi_eject(struct atapi *a);
bool atapi_media_present(const struct atapi *a);
/* Number of 2048-byte blocks on the medium (0 when none). */
uint64_t atapi_blocks(const struct atapi *a);

/* Execute one packet (12 bytes, MMC). Always fills r. */
void atapi_exec(struct atapi *a, const uint8_t cdb[12], struct atapi_result *r);
/* Record a medium error after a failed backend read (the transport calls it). */
void atapi_set_sense(struct atapi *a, uint8_t key, uint8_t asc, uint8_t ascq);

#endif
