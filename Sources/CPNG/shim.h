#ifndef MEDSYNTH_CPNG_SHIM_H
#define MEDSYNTH_CPNG_SHIM_H
/* libpng >= 1.6 simplified API (png_image): errors come back as return codes, never longjmp. */
#include <png.h>
#endif
