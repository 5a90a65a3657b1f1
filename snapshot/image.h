/* Disk images: the block backend that virtio-blk and AHCI read and write through.
 *
 * An image is an opaque handle over one file in some format (raw, qcow2; VMDK and
 * VDI read-only for import). Reads and writes take byte offsets and lengths of any
 * alignment; a format that stores clusters does read-modify-write itself. Every
 * call takes the image's own mutex, so several vCPU or I/O threads may share one
 * handle. A write is durable only after image_flush() returned 0.
 *
 * Opening probes the format by magic and refuses a file it does not understand
 * without writing to it. Errors are -errno; a one-line message naming the file and
 * the problem ("disk.qcow2: corrupt qcow2: L2 table offset 0x... outside the file")
 * is kept and returned by image_error(), or filled into the caller's buffer by
 * image_open(). */
#ifndef LODGE_SNAPSHOT_IMAGE_H
#define LODGE_SNAPSHOT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct image;

enum image_format {
    IMAGE_FORMAT_AUTO = 0, /* probe by magic (open only) */
    IMAGE_FORMAT_RAW,
    IMAGE_FORMAT_QCOW2,
    IMAGE_FORMAT_VMDK,
    IMAGE_FORMAT_VDI,
};

/* image_open() flags */
#define IMAGE_OPEN_RDWR 0x1 /* read-write; default is read-only */
#define IMAGE_OPEN_NO_BACKING                                                                      \
    0x2 /* do not open the backing chain (reads of                                                 \
           unallocated clusters return zeros) */
#define IMAGE_OPEN_REPAIR                                                                          \
    0x4 /* open read-write even if marked dirty or corrupt,                                        \
           for image_check(..., repair) */
/* Take no lock (like qemu-img -U): for looking at an image a running VM may be
 * changing; what is read may be inconsistent. */
#define IMAGE_OPEN_SHARE 0x8
/* Never wait for the disk (no fdatasync; qemu-img convert's default cache=unsafe):
 * metadata still reaches the file in dependency order, but a host crash may lose
 * or tear anything written. For writing a fresh copy that a crash would redo. */
#define IMAGE_OPEN_UNSAFE 0x10

/* Locking: every open takes OFD locks on the file in the byte layout QEMU uses
 * (shared locks on bytes 100 + p for permissions held, 200 + p for permissions
 * refused to others), so Lodge and QEMU keep each other off an image in use.
 * Read-only opens (backing files included) hold "read" and refuse writers;
 * read-write opens hold "write" too, so they exclude every other user. A conflict
 * makes image_open() fail with -EBUSY and "FILE: image is in use by another
 * process (a running VM?): ..."; image_create() refuses to overwrite such a file. */

/* image_block_status() results: where a byte range's content comes from */
enum image_block_status {
    IMAGE_BLOCK_DATA = 0, /* stored in this image */
    IMAGE_BLOCK_ZERO,     /* reads as zeros, decided by this image */
    IMAGE_BLOCK_BACKING,  /* not in this image: comes from the backing file (or zeros) */
};

/* Length of the message buffers used below. */
#define IMAGE_ERR_LEN 512

/* Creation options (zero-initialise, then fill in). */
struct image_create_opts {
    enum image_format format; /* RAW or QCOW2 (AUTO means RAW) */
    uint64_t size;            /* virtual size in bytes; 0 with a backing file: its size */
    const char *backing;      /* backing file name as stored (relative to the image's folder) */
    enum image_format backing_format; /* AUTO: probe the backing file */
    unsigned cluster_bits;            /* qcow2 cluster size as a power of two; 0 = 16 (64 KiB) */
    unsigned qcow2_version;           /* 2 or 3; 0 = 3 */
};

const char *image_format_name(enum image_format fmt);
/* "raw", "qcow2", "vmdk", "vdi" -> format; -EINVAL for anything else. */
int image_format_parse(const char *name, enum image_format *out);

/* Probe PATH's format by its magic without opening it as an image. Files with no
 * known magic are raw. */
int image_probe(const char *path, enum image_format *out, char *err, size_t errlen);

int image_create(const char *path, const struct image_create_opts *opts, char *err, size_t errlen);

/* Open PATH as FMT (AUTO probes). On failure returns -errno and fills ERR. */
int image_open(const char *path, enum image_format fmt, int flags, struct image **out, char *err,
               size_t errlen);
void image_close(struct image *img);

/* Byte-granular I/O within [0, length). Out of range -> -EINVAL; on a read-only
 * image writes give -EROFS. Short transfers never happen: all or an error. */
int image_pread(struct image *img, void *buf, uint64_t len, uint64_t off);
int image_pwrite(struct image *img, const void *buf, uint64_t len, uint64_t off);
/* image_pread for a caller that must not block (a vCPU thread): succeeds only when the
 * bytes can be had without waiting (data in the host's page cache, qcow2 metadata already
 * cached, the image not busy on another thread); otherwise -EAGAIN with nothing changed
 * but BUF, and the caller does an image_pread elsewhere. */
int image_pread_nowait(struct image *img, void *buf, uint64_t len, uint64_t off);
/* Make every completed write durable (data, then metadata in dependency order). */
int image_flush(struct image *img);
/* Drop data in a range (a guest's TRIM/UNMAP). Whole clusters in it then read as
 * zeros; the partial clusters at either end may keep their data. */
int image_discard(struct image *img, uint64_t off, uint64_t len);
int image_write_zeroes(struct image *img, uint64_t off, uint64_t len);

uint64_t image_length(struct image *img);
enum image_format image_get_format(struct image *img);
const char *image_path(struct image *img);
bool image_is_writable(struct image *img);
/* The last error's one-line message ("" when none). */
const char *image_error(struct image *img);

/* Status of [off, off+len) in this layer only. *pnum gets the length (>0) of the
 * leading run that has the returned status. Returns the status or -errno. */
int image_block_status(struct image *img, uint64_t off, uint64_t len, uint64_t *pnum);
/* The open backing image (NULL when none or opened with IMAGE_OPEN_NO_BACKING). */
struct image *image_backing(struct image *img);
/* The backing file name as stored in the image (NULL when none) and its format
 * from the header (AUTO when not recorded). */
const char *image_backing_name(struct image *img);
enum image_format image_backing_format(struct image *img);
/* Cluster (or grain/block) size; 0 for raw. */
uint64_t image_cluster_size(struct image *img);

/* Change the virtual size. Shrinking is allowed only for raw images. */
int image_resize(struct image *img, uint64_t new_size);
/* Write one whole cluster compressed (qcow2 only, used by convert -c). OFF must be
 * cluster-aligned and the cluster not yet allocated. */
int image_write_compressed(struct image *img, const void *buf, uint64_t off);
/* Rewrite the backing file reference (qcow2 only): NAME NULL removes it. Does not
 * copy data; see `lodge img rebase` for the safe variant. */
int image_set_backing(struct image *img, const char *name, enum image_format fmt);

/* Consistency check (qcow2; other formats report nothing to check). */
struct image_check_result {
    uint64_t corruptions; /* references the metadata gets wrong */
    uint64_t leaks;       /* clusters with a refcount but no reference */
    uint64_t repaired;    /* refcounts fixed by repair */
    uint64_t allocated_clusters;
    bool checked; /* false: format has no metadata to check */
};
/* Print a line per problem to LOG (may be NULL). With REPAIR rebuilds refcounts
 * from the references found; the image must be open read-write. */
int image_check(struct image *img, bool repair, struct image_check_result *res, FILE *log);

#endif
