/* Screendump: the visible surface as an RGB PNG (libpng). */
#include "ui/surface.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int surface_write_png(struct surface *s, const char *path)
{
    surface_refresh(s);
    struct surface_mode mode;
    surface_get_mode(s, &mode);
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -errno;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *row = malloc((size_t)mode.width * 3);
    if (!png || !info || !row) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(f);
        return -ENOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(f);
        return -EIO;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, mode.width, mode.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const uint8_t *data = surface_data(s);
    for (uint32_t y = 0; y < mode.height; y++) {
        const uint8_t *src = data + (size_t)y * mode.stride;
        for (uint32_t x = 0; x < mode.width; x++) {
            /* XRGB8888 little-endian: bytes B, G, R, X. */
            row[x * 3 + 0] = src[x * 4 + 2];
            row[x * 3 + 1] = src[x * 4 + 1];
            row[x * 3 + 2] = src[x * 4 + 0];
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0) {
        return -errno;
    }
    return 0;
}

/* Text screens are at most 132x60 cells (VGA text modes). */
#define SCREENDUMP_TEXT_MAX (133 * 60 + 1)

int surface_screendump(struct surface *s, const char *path)
{
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 4, ".txt") != 0) {
        return surface_write_png(s, path);
    }
    char *buf = malloc(SCREENDUMP_TEXT_MAX);
    if (!buf) {
        return -ENOMEM;
    }
    int len = surface_text(s, buf, SCREENDUMP_TEXT_MAX);
    if (len < 0) {
        free(buf);
        return len;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        free(buf);
        return -e;
    }
    size_t w = fwrite(buf, 1, (size_t)len, f);
    free(buf);
    if (fclose(f) != 0 || w != (size_t)len) {
        return -EIO;
    }
    return 0;
}
