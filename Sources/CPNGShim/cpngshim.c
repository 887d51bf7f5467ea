/* cpngshim.c: libpng's classic API with setjmp-based error handling (see include/cpngshim.h). */
#include "cpngshim.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Error state of one call: libpng's error callback copies the message and jumps back here. */
typedef struct {
    jmp_buf jump;
    char *err;
    size_t err_len;
} error_state;

static void set_error(char *err, size_t err_len, const char *message) {
    if (err && err_len > 0) snprintf(err, err_len, "%s", message);
}

static void on_error(png_structp png, png_const_charp message) {
    error_state *state = (error_state *)png_get_error_ptr(png);
    set_error(state->err, state->err_len, message ? message : "libpng error");
    longjmp(state->jump, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message; /* warnings (e.g. unknown ancillary chunks) do not stop reading */
}

/* ---- reading from memory ---- */

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
} memory_reader;

static void read_memory(png_structp png, png_bytep out, png_size_t length) {
    memory_reader *reader = (memory_reader *)png_get_io_ptr(png);
    if (length > reader->size - reader->position) png_error(png, "unexpected end of file");
    memcpy(out, reader->data + reader->position, length);
    reader->position += length;
}

/* Creates the read structs and reads the header; on failure returns 0 with err set. */
static int begin_read(png_structp *png, png_infop *info, error_state *state, memory_reader *reader) {
    if (reader->size < 8 || png_sig_cmp(reader->data, 0, 8) != 0) {
        set_error(state->err, state->err_len, "not a PNG file");
        return 0;
    }
    *png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state, on_error, on_warning);
    if (!*png) {
        set_error(state->err, state->err_len, "out of memory creating the PNG reader");
        return 0;
    }
    *info = png_create_info_struct(*png);
    if (!*info) {
        png_destroy_read_struct(png, NULL, NULL);
        set_error(state->err, state->err_len, "out of memory creating the PNG reader");
        return 0;
    }
    png_set_read_fn(*png, reader, read_memory);
    return 1;
}

/* Channels after expanding tRNS to alpha, as the simplified API reports them. */
static int32_t output_channels(png_structp png, png_infop info) {
    int color = png_get_color_type(png, info);
    int32_t channels = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) channels += 1;
    return channels;
}

int cpng_probe(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height, int32_t *channels,
               int32_t *bit_depth, char *err, size_t err_len) {
    error_state state = {.err = err, .err_len = err_len};
    memory_reader reader = {data, size, 0};
    png_structp png = NULL;
    png_infop info = NULL;
    if (!begin_read(&png, &info, &state, &reader)) return 1;
    if (setjmp(state.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    png_read_info(png, info);
    *width = png_get_image_width(png, info);
    *height = png_get_image_height(png, info);
    *channels = output_channels(png, info);
    *bit_depth = png_get_bit_depth(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int cpng_read16(const uint8_t *data, size_t size, uint16_t *out, size_t out_samples, uint32_t max_side,
                char *err, size_t err_len) {
    error_state state = {.err = err, .err_len = err_len};
    memory_reader reader = {data, size, 0};
    png_structp png = NULL;
    png_infop info = NULL;
    /* set before setjmp and only freed after it: no local changes between setjmp and longjmp */
    png_bytep *volatile rows = NULL;
    if (!begin_read(&png, &info, &state, &reader)) return 1;
    if (setjmp(state.jump)) {
        free((void *)rows);
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    png_set_user_limits(png, max_side, max_side);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if (png_get_bit_depth(png, info) != 16) png_error(png, "not a 16-bit PNG");
    int32_t channels = output_channels(png, info);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_swap(png); /* PNG stores big-endian samples; return native (little-endian) ones */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row_samples = (size_t)width * (size_t)channels;
    if (png_get_rowbytes(png, info) != row_samples * 2) png_error(png, "unexpected row size after transformations");
    if (out_samples != row_samples * (size_t)height) png_error(png, "output buffer size does not match the image");
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows) png_error(png, "out of memory for row pointers");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = (png_bytep)(out + (size_t)y * row_samples);
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free((void *)rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* ---- writing to memory ---- */

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} memory_writer;

static void write_memory(png_structp png, png_bytep bytes, png_size_t length) {
    memory_writer *writer = (memory_writer *)png_get_io_ptr(png);
    if (length > writer->capacity - writer->size) {
        size_t capacity = writer->capacity ? writer->capacity : 4096;
        while (capacity - writer->size < length) {
            if (capacity > SIZE_MAX / 2) png_error(png, "encoded PNG too large");
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(writer->data, capacity);
        if (!grown) png_error(png, "out of memory encoding the PNG");
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, bytes, length);
    writer->size += length;
}

static void flush_memory(png_structp png) { (void)png; }

int cpng_write16(const uint16_t *samples, uint32_t width, uint32_t height, int32_t channels, uint8_t **out,
                 size_t *out_size, char *err, size_t err_len) {
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    if (channels < 1 || channels > 4 || width == 0 || height == 0) {
        set_error(err, err_len, "invalid image size or channel count");
        return 1;
    }
    error_state state = {.err = err, .err_len = err_len};
    /* on the heap: libpng's callbacks change it between setjmp and a longjmp, which would leave a
       local non-volatile struct indeterminate */
    memory_writer *writer = (memory_writer *)calloc(1, sizeof(memory_writer));
    png_bytep *volatile rows = NULL;
    png_structp png = writer ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        if (png) png_destroy_write_struct(&png, NULL);
        free(writer);
        set_error(err, err_len, "out of memory creating the PNG writer");
        return 1;
    }
    if (setjmp(state.jump)) {
        free((void *)rows);
        free(writer->data);
        free(writer);
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, writer, write_memory, flush_memory);
    png_set_IHDR(png, info, width, height, 16, color_types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_set_swap(png); /* native little-endian samples to PNG's big-endian */
    size_t row_samples = (size_t)width * (size_t)channels;
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows) png_error(png, "out of memory for row pointers");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = (png_bytep)(samples + (size_t)y * row_samples);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free((void *)rows);
    png_destroy_write_struct(&png, &info);
    *out = writer->data;
    *out_size = writer->size;
    free(writer);
    return 0;
}

void cpng_free(void *p) { free(p); }
