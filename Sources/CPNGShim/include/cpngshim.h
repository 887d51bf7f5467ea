/*
 * cpngshim.h: the parts of libpng's classic (non-simplified) API the engine needs, behind
 * functions that return a status instead of longjmp-ing.
 *
 * Why: libpng's simplified API (png_image) passes 16-bit images with alpha through premultiplied
 * linear data, which loses up to a few units of 65535 on every read and more on a round trip.
 * The classic API reads and writes the stored samples exactly, but reports errors by longjmp,
 * which Swift cannot catch; here each call sets up its own setjmp, so errors come back as a
 * non-zero status and a message. Used by Sources/MedSynthCore/IO/PNG.swift for 16-bit files.
 */
#ifndef MEDSYNTH_CPNGSHIM_H
#define MEDSYNTH_CPNGSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The header of a PNG held in memory, as cpng_read16 returns it: width, height, channels
   (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; a tRNS chunk adds alpha) and the stored bit depth.
   Returns 0, or non-zero with a message in err. */
int cpng_probe(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height, int32_t *channels,
               int32_t *bit_depth, char *err, size_t err_len);

/* Decodes a 16-bit PNG held in memory into `out`: width*height*channels native-endian uint16
   samples, row-major, exactly as stored (no gamma or alpha processing). `out_samples` must equal
   that count. Width and height must not exceed max_side. Returns 0, or non-zero with a message. */
int cpng_read16(const uint8_t *data, size_t size, uint16_t *out, size_t out_samples, uint32_t max_side,
                char *err, size_t err_len);

/* Encodes width*height*channels native-endian uint16 samples as a 16-bit PNG (no colour-space
   chunks). On success *out is a malloc'd buffer of *out_size bytes that the caller frees with
   cpng_free. Returns 0, or non-zero with a message in err. */
int cpng_write16(const uint16_t *samples, uint32_t width, uint32_t height, int32_t channels, uint8_t **out,
                 size_t *out_size, char *err, size_t err_len);

void cpng_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* MEDSYNTH_CPNGSHIM_H */
