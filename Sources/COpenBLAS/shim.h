#ifndef MEDSYNTH_COPENBLAS_SHIM_H
#define MEDSYNTH_COPENBLAS_SHIM_H
/* OpenBLAS through pkg-config `openblas` (Debian: libopenblas-dev, openblas-pthread flavour). */
#include <cblas.h>
#endif
