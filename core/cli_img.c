/* lodge img: create, inspect, check, convert, resize, commit and rebase disk
 * images through snapshot/image.h. Exit status: 0 done, 1 the operation failed
 * (or, for check, corruption was found), 2 bad usage; check exits 3 when it found
 * only leaked clusters (harmless, like qemu-img). */
#include "core/cli.h"

#include "core/options.h"
#include "snapshot/image.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLI_IMG_USAGE 2
#define CLI_IMG_FAIL 1
#define CLI_IMG_LEAKS 3
#define CLI_IMG_CHUNK (1u << 20)
#define CLI_IMG_CONVERT_CHUNK (8u << 20) /* big reads and writes: few syscalls, long runs */

static void cli_img_usage(FILE *f)
{
    fprintf(f, "usage: lodge img COMMAND [OPTIONS]\n"
               "\n"
               "  create [-f raw|qcow2] [-b BACKING [-F FMT]] [-o cluster_size=N] FILE [SIZE]\n"
               "  info [--json] FILE\n"
               "  check [--repair] FILE\n"
               "  convert [-f FMT] [-O raw|qcow2] [-c] [-p] [-t unsafe|writeback]\n"
               "          [-o cluster_size=N] SRC DST\n"
               "  resize [--shrink] FILE [+|-]SIZE\n"
               "  commit FILE\n"
               "  rebase [-u] -b NEWBACKING [-F FMT] FILE   (-b \"\" removes the backing file)\n"
               "\n"
               "SIZE is bytes or a number with K, M, G or T. Formats: raw, qcow2 (read and\n"
               "write), vmdk and vdi (read only: convert from them).\n");
}

static int cli_img_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int cli_img_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lodge: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_IMG_USAGE;
}

/* getopt's own complaint would name the subcommand as the program. */
static int cli_img_badopt(char **argv)
{
    return cli_img_bad("img %s: unknown option or missing argument near '%s' (try lodge img "
                       "--help)",
                       argv[0], argv[optind - 1]);
}

static int cli_img_fail(const char *msg)
{
    fprintf(stderr, "lodge: %s\n", msg);
    return CLI_IMG_FAIL;
}

static int cli_img_fmt(const char *s, enum image_format *out)
{
    if (image_format_parse(s, out) < 0) {
        return cli_img_bad("%s: unknown image format (raw, qcow2, vmdk, vdi)", s);
    }
    return 0;
}

/* -o cluster_size=N[,compat=0.10|1.1] */
static int cli_img_opts(const char *s, struct image_create_opts *o)
{
    char *copy = strdup(s);
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (strncmp(t, "cluster_size=", 13) == 0 && options_parse_size(t + 13, &v) == 0 &&
            v >= 512 && v <= (2u << 20) && (v & (v - 1)) == 0) {
            o->cluster_bits = (unsigned)__builtin_ctzll(v);
        } else if (strcmp(t, "compat=0.10") == 0) {
            o->qcow2_version = 2;
        } else if (strcmp(t, "compat=1.1") == 0) {
            o->qcow2_version = 3;
        } else {
            rc = cli_img_bad("-o %s: unknown option (cluster_size=512..2M, compat=0.10|1.1)", t);
        }
    }
    free(copy);
    return rc;
}

static int cli_img_open(const char *path, enum image_format fmt, int flags, struct image **img)
{
    char err[IMAGE_ERR_LEN];
    if (image_open(path, fmt, flags, img, err, sizeof(err)) < 0) {
        fprintf(stderr, "lodge: %s\n", err);
        return CLI_IMG_FAIL;
    }
    return 0;
}

static int cli_img_create(int argc, char **argv)
{
    struct image_create_opts o = {.format = IMAGE_FORMAT_RAW};
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "+f:b:F:o:")) != -1) {
        int rc = 0;
        switch (c) {
        case 'f':
            rc = cli_img_fmt(optarg, &o.format);
            break;
        case 'b':
            o.backing = optarg;
            break;
        case 'F':
            rc = cli_img_fmt(optarg, &o.backing_format);
            break;
        case 'o':
            rc = cli_img_opts(optarg, &o);
            break;
        default:
            return cli_img_badopt(argv);
        }
        if (rc) {
            return rc;
        }
    }
    if (optind >= argc || argc - optind > 2) {
        return cli_img_bad("img create: expected FILE [SIZE]");
    }
    const char *path = argv[optind];
    if (argc - optind == 2 && options_parse_size(argv[optind + 1], &o.size) < 0) {
        return cli_img_bad("%s: bad size (bytes or a number with K, M, G, T)", argv[optind + 1]);
    }
    if (argc - optind == 1 && !o.backing) {
        return cli_img_bad("img create: SIZE is required without a backing file");
    }
    if (o.format != IMAGE_FORMAT_RAW && o.format != IMAGE_FORMAT_QCOW2) {
        return cli_img_bad("%s: can only create raw and qcow2 images", path);
    }
    if (o.backing && o.format != IMAGE_FORMAT_QCOW2) {
        return cli_img_bad("%s: a backing file needs -f qcow2", path);
    }
    if (o.backing && o.backing_format == IMAGE_FORMAT_AUTO) {
        /* Record the probed format so the chain is never re-probed later. */
        char *bp = NULL;
        const char *slash = strrchr(path, '/');
        if (o.backing[0] != '/' && slash) {
            if (asprintf(&bp, "%.*s/%s", (int)(slash - path), path, o.backing) < 0) {
                return CLI_IMG_FAIL;
            }
        }
        char err[IMAGE_ERR_LEN];
        int r = image_probe(bp ? bp : o.backing, &o.backing_format, err, sizeof(err));
        free(bp);
        if (r < 0) {
            return cli_img_fail(err);
        }
    }
    char err[IMAGE_ERR_LEN];
    if (image_create(path, &o, err, sizeof(err)) < 0) {
        return cli_img_fail(err);
    }
    return 0;
}

static uint64_t cli_img_disk_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void cli_img_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void cli_img_human(char *buf, size_t len, uint64_t v)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(buf, len, "%" PRIu64 " B", v);
    } else {
        snprintf(buf, len, "%.3g %s", d, units[u]);
    }
}

static void cli_img_info_one(FILE *f, struct image *img, bool json, bool first)
{
    const char *path = image_path(img);
    uint64_t vsize = image_length(img), dsize = cli_img_disk_size(path);
    const char *bname = image_backing_name(img);
    if (json) {
        fprintf(f, "%s{\"filename\": ", first ? "" : ", ");
        cli_img_json_str(f, path);
        fprintf(f, ", \"format\": \"%s\", \"virtual-size\": %" PRIu64 ", \"actual-size\": %" PRIu64,
                image_format_name(image_get_format(img)), vsize, dsize);
        if (image_cluster_size(img)) {
            fprintf(f, ", \"cluster-size\": %" PRIu64, image_cluster_size(img));
        }
        if (bname) {
            fprintf(f, ", \"backing-filename\": ");
            cli_img_json_str(f, bname);
            if (image_backing_format(img) != IMAGE_FORMAT_AUTO) {
                fprintf(f, ", \"backing-filename-format\": \"%s\"",
                        image_format_name(image_backing_format(img)));
            }
        }
        fputc('}', f);
        return;
    }
    char v[32], d[32];
    cli_img_human(v, sizeof(v), vsize);
    cli_img_human(d, sizeof(d), dsize);
    fprintf(f, "image: %s\nfile format: %s\nvirtual size: %s (%" PRIu64 " bytes)\ndisk size: %s\n",
            path, image_format_name(image_get_format(img)), v, vsize, d);
    if (image_cluster_size(img)) {
        fprintf(f, "cluster_size: %" PRIu64 "\n", image_cluster_size(img));
    }
    if (bname) {
        fprintf(f, "backing file: %s\n", bname);
        if (image_backing_format(img) != IMAGE_FORMAT_AUTO) {
            fprintf(f, "backing file format: %s\n", image_format_name(image_backing_format(img)));
        }
    }
}

static int cli_img_info(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    bool json = false;
    enum image_format fmt = IMAGE_FORMAT_AUTO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+f:", longopts, NULL)) != -1) {
        if (c == 'j') {
            json = true;
        } else if (c == 'f') {
            if (cli_img_fmt(optarg, &fmt)) {
                return CLI_IMG_USAGE;
            }
        } else {
            return cli_img_badopt(argv);
        }
    }
    if (argc - optind != 1) {
        return cli_img_bad("img info: expected one FILE");
    }
    struct image *top;
    char err[IMAGE_ERR_LEN];
    int rc = 0;
    /* Like qemu-img info, no lock: describing a running VM's disk must work. */
    if (image_open(argv[optind], fmt, IMAGE_OPEN_SHARE, &top, err, sizeof(err)) < 0) {
        /* Still describe the image itself when only its backing chain is broken. */
        fprintf(stderr, "lodge: %s\n", err);
        if (image_open(argv[optind], fmt, IMAGE_OPEN_NO_BACKING | IMAGE_OPEN_SHARE, &top, err,
                       sizeof(err)) < 0) {
            return CLI_IMG_FAIL;
        }
        rc = CLI_IMG_FAIL;
    }
    if (json) {
        printf("{\"image\": ");
        cli_img_info_one(stdout, top, true, true);
        printf(", \"backing-chain\": [");
        bool first = true;
        for (struct image *b = image_backing(top); b; b = image_backing(b)) {
            cli_img_info_one(stdout, b, true, first);
            first = false;
        }
        printf("]}\n");
    } else {
        cli_img_info_one(stdout, top, false, true);
        if (image_backing(top)) {
            printf("backing chain:\n");
            int depth = 1;
            for (struct image *b = image_backing(top); b; b = image_backing(b), depth++) {
                printf("  %d: %s (%s, %" PRIu64 " bytes)\n", depth, image_path(b),
                       image_format_name(image_get_format(b)), image_length(b));
            }
        }
    }
    image_close(top);
    return rc;
}

static int cli_img_check(int argc, char **argv)
{
    static const struct option longopts[] = {{"repair", no_argument, NULL, 'r'},
                                             {NULL, 0, NULL, 0}};
    bool repair = false;
    enum image_format fmt = IMAGE_FORMAT_AUTO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+f:", longopts, NULL)) != -1) {
        if (c == 'r') {
            repair = true;
        } else if (c == 'f') {
            if (cli_img_fmt(optarg, &fmt)) {
                return CLI_IMG_USAGE;
            }
        } else {
            return cli_img_badopt(argv);
        }
    }
    if (argc - optind != 1) {
        return cli_img_bad("img check: expected one FILE");
    }
    struct image *img;
    int flags = IMAGE_OPEN_NO_BACKING | (repair ? IMAGE_OPEN_RDWR | IMAGE_OPEN_REPAIR : 0);
    if (cli_img_open(argv[optind], fmt, flags, &img)) {
        return CLI_IMG_FAIL;
    }
    struct image_check_result res;
    int r = image_check(img, repair, &res, stdout);
    if (r < 0) {
        fprintf(stderr, "lodge: %s\n", image_error(img));
        image_close(img);
        return CLI_IMG_FAIL;
    }
    enum image_format got = image_get_format(img);
    image_close(img);
    if (!res.checked) {
        printf("%s: %s images have no metadata to check\n", argv[optind], image_format_name(got));
        return 0;
    }
    if (repair && res.repaired) {
        printf("The following inconsistencies were found and repaired:\n"
               "    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n"
               "%" PRIu64 " refcounts or flags rewritten.\n",
               res.leaks, res.corruptions, res.repaired);
        return 0;
    }
    if (res.corruptions) {
        printf("%" PRIu64 " errors were found on the image.\n"
               "Data may be corrupted, or further writes to the image may corrupt it.\n",
               res.corruptions);
    }
    if (res.leaks) {
        printf("%" PRIu64 " leaked clusters were found on the image.\n"
               "This means waste of disk space, but no harm to data.\n",
               res.leaks);
    }
    if (!res.corruptions && !res.leaks) {
        printf("No errors were found on the image.\n");
    }
    printf("%" PRIu64 " clusters in use.\n", res.allocated_clusters);
    return res.corruptions ? CLI_IMG_FAIL : res.leaks ? CLI_IMG_LEAKS : 0;
}

static bool cli_img_is_zero(const uint8_t *p, size_t n)
{
    /* Zero first byte and every byte equal to its successor: libc's memcmp speed. */
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void cli_img_progress(bool on, uint64_t done, uint64_t total)
{
    if (!on) {
        return;
    }
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    if (isatty(STDERR_FILENO)) {
        int w = 40, fill = (int)(pct * w / 100);
        fprintf(stderr, "\r[%.*s%*s] %6.2f%%", fill, "########################################",
                w - fill, "", pct);
        if (done == total) {
            fputc('\n', stderr);
        }
    } else if (done == total) {
        fprintf(stderr, "(100.00/100%%)\n");
    }
}

static int cli_img_convert(int argc, char **argv)
{
    struct image_create_opts o = {.format = IMAGE_FORMAT_RAW};
    enum image_format sfmt = IMAGE_FORMAT_AUTO;
    bool compress = false, progress = false, unsafe = true;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "+f:O:cpo:t:")) != -1) {
        int rc = 0;
        switch (c) {
        case 'f':
            rc = cli_img_fmt(optarg, &sfmt);
            break;
        case 'O':
            rc = cli_img_fmt(optarg, &o.format);
            break;
        case 'c':
            compress = true;
            break;
        case 'p':
            progress = true;
            break;
        case 'o':
            rc = cli_img_opts(optarg, &o);
            break;
        case 't':
            /* As qemu-img: by default the copy is not fdatasync'ed (a crash means
             * converting again); writeback makes it durable before exiting. */
            if (!strcmp(optarg, "unsafe") || !strcmp(optarg, "writeback")) {
                unsafe = !strcmp(optarg, "unsafe");
            } else {
                rc = cli_img_bad("-t %s: unknown cache mode (unsafe, writeback)", optarg);
            }
            break;
        default:
            return cli_img_badopt(argv);
        }
        if (rc) {
            return rc;
        }
    }
    if (argc - optind != 2) {
        return cli_img_bad("img convert: expected SRC DST");
    }
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (o.format != IMAGE_FORMAT_RAW && o.format != IMAGE_FORMAT_QCOW2) {
        return cli_img_bad("%s: can only write raw and qcow2 images", dst);
    }
    if (compress && o.format != IMAGE_FORMAT_QCOW2) {
        return cli_img_bad("%s: -c needs -O qcow2", dst);
    }
    struct image *in, *out;
    if (cli_img_open(src, sfmt, 0, &in)) {
        return CLI_IMG_FAIL;
    }
    o.size = image_length(in);
    char err[IMAGE_ERR_LEN];
    if (image_create(dst, &o, err, sizeof(err)) < 0) {
        image_close(in);
        return cli_img_fail(err);
    }
    if (cli_img_open(dst, o.format, IMAGE_OPEN_RDWR | (unsafe ? IMAGE_OPEN_UNSAFE : 0), &out)) {
        image_close(in);
        return CLI_IMG_FAIL;
    }
    uint64_t cs = image_cluster_size(out) ? image_cluster_size(out) : 65536;
    uint64_t chunk = CLI_IMG_CONVERT_CHUNK > cs ? CLI_IMG_CONVERT_CHUNK : cs;
    uint8_t *buf = malloc(chunk);
    uint64_t total = image_length(in);
    int rc = buf ? 0 : CLI_IMG_FAIL;
    for (uint64_t off = 0; off < total && rc == 0;) {
        uint64_t n = total - off < chunk ? total - off : chunk;
        uint64_t pnum = n;
        int st = image_block_status(in, off, n, &pnum);
        if (st == IMAGE_BLOCK_ZERO || (st == IMAGE_BLOCK_BACKING && !image_backing(in))) {
            off += pnum; /* the new image already reads zeros there */
            cli_img_progress(progress, off, total);
            continue;
        }
        if (image_pread(in, buf, n, off) < 0) {
            rc = cli_img_fail(image_error(in));
            break;
        }
        /* Clusters that read as zeros are not written; the rest go out in runs. */
        uint64_t run = 0, p = 0; /* run: start of the pending data, relative to off */
        while (p < n && rc == 0) {
            uint64_t m = n - p < cs ? n - p : cs;
            bool data = !cli_img_is_zero(buf + p, m);
            if (data && compress && m == cs && (off + p) % cs == 0) {
                if (p > run && image_pwrite(out, buf + run, p - run, off + run) < 0) {
                    rc = cli_img_fail(image_error(out));
                } else if (image_write_compressed(out, buf + p, off + p) < 0) {
                    rc = cli_img_fail(image_error(out));
                }
                run = p + m;
            } else if (!data) {
                if (p > run && image_pwrite(out, buf + run, p - run, off + run) < 0) {
                    rc = cli_img_fail(image_error(out));
                }
                run = p + m;
            }
            p += m;
        }
        if (rc == 0 && p > run && image_pwrite(out, buf + run, p - run, off + run) < 0) {
            rc = cli_img_fail(image_error(out));
        }
        off += n;
        cli_img_progress(progress, off, total);
    }
    if (rc == 0 && image_flush(out) < 0) {
        rc = cli_img_fail(image_error(out));
    }
    free(buf);
    image_close(in);
    image_close(out);
    return rc;
}

static int cli_img_resize(int argc, char **argv)
{
    static const struct option longopts[] = {{"shrink", no_argument, NULL, 's'},
                                             {NULL, 0, NULL, 0}};
    bool shrink = false;
    enum image_format fmt = IMAGE_FORMAT_AUTO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+f:", longopts, NULL)) != -1) {
        if (c == 's') {
            shrink = true;
        } else if (c == 'f') {
            if (cli_img_fmt(optarg, &fmt)) {
                return CLI_IMG_USAGE;
            }
        } else {
            return cli_img_badopt(argv);
        }
    }
    if (argc - optind != 2) {
        return cli_img_bad("img resize: expected FILE SIZE");
    }
    const char *path = argv[optind], *s = argv[optind + 1];
    int sign = 0;
    if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        s++;
    }
    uint64_t v;
    if (options_parse_size(s, &v) < 0) {
        return cli_img_bad("%s: bad size (bytes or a number with K, M, G, T)", argv[optind + 1]);
    }
    struct image *img;
    if (cli_img_open(path, fmt, IMAGE_OPEN_RDWR | IMAGE_OPEN_NO_BACKING, &img)) {
        return CLI_IMG_FAIL;
    }
    uint64_t cur = image_length(img);
    uint64_t size = sign == 0 ? v : sign > 0 ? cur + v : (v > cur ? 0 : cur - v);
    int rc = 0;
    if (size < cur && !shrink) {
        fprintf(stderr, "lodge: %s: shrinking loses data; add --shrink (raw images only)\n", path);
        rc = CLI_IMG_USAGE;
    } else if (size < cur && image_get_format(img) != IMAGE_FORMAT_RAW) {
        fprintf(stderr, "lodge: %s: only raw images can shrink\n", path);
        rc = CLI_IMG_FAIL;
    } else if (size != cur && image_resize(img, size) < 0) {
        rc = cli_img_fail(image_error(img));
    }
    image_close(img);
    if (rc == 0) {
        printf("Image resized.\n");
    }
    return rc;
}

static int cli_img_commit(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        return cli_img_bad("img commit: expected FILE");
    }
    const char *path = argv[1];
    struct image *top, *base;
    if (cli_img_open(path, IMAGE_FORMAT_AUTO, IMAGE_OPEN_NO_BACKING, &top)) {
        return CLI_IMG_FAIL;
    }
    const char *bname = image_backing_name(top);
    if (!bname) {
        fprintf(stderr, "lodge: %s: image has no backing file to commit into\n", path);
        image_close(top);
        return CLI_IMG_FAIL;
    }
    char *bpath = NULL;
    const char *slash = strrchr(path, '/');
    if (bname[0] != '/' && slash) {
        if (asprintf(&bpath, "%.*s/%s", (int)(slash - path), path, bname) < 0) {
            image_close(top);
            return CLI_IMG_FAIL;
        }
    }
    int rc = cli_img_open(bpath ? bpath : bname, image_backing_format(top), IMAGE_OPEN_RDWR, &base);
    free(bpath);
    if (rc) {
        image_close(top);
        return rc;
    }
    uint64_t total = image_length(top);
    if (image_length(base) < total && image_resize(base, total) < 0) {
        rc = cli_img_fail(image_error(base));
    }
    uint8_t *buf = malloc(CLI_IMG_CHUNK);
    if (!buf) {
        rc = CLI_IMG_FAIL;
    }
    for (uint64_t off = 0; off < total && rc == 0;) {
        uint64_t n = total - off < CLI_IMG_CHUNK ? total - off : CLI_IMG_CHUNK;
        uint64_t pnum;
        int st = image_block_status(top, off, n, &pnum);
        int r = 0;
        if (st < 0) {
            r = st;
        } else if (st == IMAGE_BLOCK_ZERO) {
            r = image_write_zeroes(base, off, pnum);
        } else if (st == IMAGE_BLOCK_DATA) {
            r = image_pread(top, buf, pnum, off);
            if (r < 0) {
                rc = cli_img_fail(image_error(top));
                break;
            }
            r = image_pwrite(base, buf, pnum, off);
        }
        if (r < 0) {
            rc = cli_img_fail(image_error(st < 0 ? top : base));
        }
        off += pnum;
    }
    if (rc == 0 && image_flush(base) < 0) {
        rc = cli_img_fail(image_error(base));
    }
    free(buf);
    image_close(base);
    image_close(top);
    if (rc == 0) {
        printf("Image committed.\n");
    }
    return rc;
}

static int cli_img_rebase(int argc, char **argv)
{
    const char *nb = NULL;
    enum image_format nfmt = IMAGE_FORMAT_AUTO;
    bool unsafe = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "+b:F:u")) != -1) {
        if (c == 'b') {
            nb = optarg;
        } else if (c == 'F') {
            if (cli_img_fmt(optarg, &nfmt)) {
                return CLI_IMG_USAGE;
            }
        } else if (c == 'u') {
            unsafe = true;
        } else {
            return cli_img_badopt(argv);
        }
    }
    if (!nb || argc - optind != 1) {
        return cli_img_bad("img rebase: expected -b NEWBACKING FILE");
    }
    const char *path = argv[optind];
    struct image *img, *newb = NULL;
    if (cli_img_open(path, IMAGE_FORMAT_AUTO,
                     IMAGE_OPEN_RDWR | (unsafe ? IMAGE_OPEN_NO_BACKING : 0), &img)) {
        return CLI_IMG_FAIL;
    }
    if (image_get_format(img) != IMAGE_FORMAT_QCOW2) {
        fprintf(stderr, "lodge: %s: only qcow2 images have a backing file\n", path);
        image_close(img);
        return CLI_IMG_FAIL;
    }
    int rc = 0;
    if (*nb) {
        char *bpath = NULL;
        const char *slash = strrchr(path, '/');
        if (nb[0] != '/' && slash &&
            asprintf(&bpath, "%.*s/%s", (int)(slash - path), path, nb) < 0) {
            image_close(img);
            return CLI_IMG_FAIL;
        }
        rc = cli_img_open(bpath ? bpath : nb, nfmt, 0, &newb);
        free(bpath);
        if (rc) {
            image_close(img);
            return rc;
        }
        nfmt = image_get_format(newb);
    }
    uint64_t total = image_length(img);
    uint64_t cs = image_cluster_size(img);
    uint8_t *a = malloc(cs), *b = malloc(cs);
    if (!a || !b) {
        rc = CLI_IMG_FAIL;
    }
    /* Safe mode: wherever FILE shows its old backing, keep what the guest saw by
     * copying the old content in when the new backing differs. */
    for (uint64_t off = 0; !unsafe && off < total && rc == 0;) {
        uint64_t n = total - off < cs ? total - off : cs;
        uint64_t pnum;
        int st = image_block_status(img, off, n, &pnum);
        if (st < 0) {
            rc = cli_img_fail(image_error(img));
            break;
        }
        if (st == IMAGE_BLOCK_BACKING) {
            uint64_t nlen = newb ? image_length(newb) : 0;
            uint64_t m = off < nlen ? (nlen - off < pnum ? nlen - off : pnum) : 0;
            memset(b, 0, pnum);
            if (image_pread(img, a, pnum, off) < 0) {
                rc = cli_img_fail(image_error(img));
            } else if (m && image_pread(newb, b, m, off) < 0) {
                rc = cli_img_fail(image_error(newb));
            } else if (memcmp(a, b, pnum) != 0 && image_pwrite(img, a, pnum, off) < 0) {
                rc = cli_img_fail(image_error(img));
            }
        }
        off += pnum;
    }
    if (rc == 0 && image_flush(img) < 0) {
        rc = cli_img_fail(image_error(img));
    }
    if (rc == 0 && image_set_backing(img, *nb ? nb : NULL, nfmt) < 0) {
        rc = cli_img_fail(image_error(img));
    }
    free(a);
    free(b);
    image_close(newb);
    image_close(img);
    return rc;
}

int cli_img_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        cli_img_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_IMG_USAGE : 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } cmds[] = {
        {"create", cli_img_create},   {"info", cli_img_info},     {"check", cli_img_check},
        {"convert", cli_img_convert}, {"resize", cli_img_resize}, {"commit", cli_img_commit},
        {"rebase", cli_img_rebase},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[1], cmds[i].name)) {
            opterr = 0;
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    return cli_img_bad("img: unknown command '%s' (try lodge img --help)", argv[1]);
}
