/* Reference decoder for comparisons only: libpng's low-level reader, expand + gray_to_rgb + alpha, no gamma. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
static void warn(png_structp p, png_const_charp m) { fprintf(stderr, "WARN %s\n", m); }
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb"); if (!f) return 4;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, warn);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) { fprintf(stderr, "ERR\n"); return 2; }
    png_set_user_limits(png, 100000, 100000);
    png_init_io(png, f);
    png_read_info(png, info);
    png_set_expand(png);
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xffff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    size_t rb = png_get_rowbytes(png, info);
    if ((double)rb * h > 400e6) { fprintf(stderr, "ERR big\n"); return 3; }
    png_bytep buf = malloc(rb * h); png_bytepp rows = malloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = buf + y * rb;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    printf("%u %u %d\n", w, h, depth); fwrite(buf, 1, rb * h, stdout); return 0;
}
