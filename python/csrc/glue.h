/*
 * glue.h: what every part of the CPython extension `medsynth._engine` shares.
 *
 * The extension is a thin layer over the engine's C ABI (Sources/CMedSynth/include/medsynth.h):
 * Python buffers become pointers (zero-copy, through the buffer protocol), the GIL is released
 * around engine calls, progress callbacks run with the GIL re-acquired, Ctrl-C raises the engine's
 * cancel flag, and status codes become Python exceptions. Argument conventions (dtypes, layouts,
 * defaults) live in the Python package above it.
 *
 * One file per concern: glue.c (this header's helpers), library.c, models.c, data.c, ops.c, and
 * module.c, which gathers every file's method table into the module.
 */
#ifndef MEDSYNTH_GLUE_H
#define MEDSYNTH_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include "medsynth.h"

#define ERR_LEN 2048

/* ---- errors ---- */

/* Sets the Python exception for an engine status (a pending callback exception wins); returns NULL. */
PyObject *raise_status(int32_t status, const char *message);

/* ---- paths ----
   An O& converter like PyUnicode_FSConverter (str, bytes or os.PathLike to a bytes object the
   caller releases), whose errors name the argument: a path with a NUL byte would be cut short at
   the C boundary, so it is a ValueError here. */
int path_converter(PyObject *obj, void *out);

/* ---- buffers ----
   A call's buffers are taken into one `buffers` set and released together:
       buffers b = {0};
       Py_buffer *x = take(&b, x_obj, 'f', READ, 4, "x");
       if (b.failed) goto done;      (a Python exception is set)
       ...
   done: release(&b);
   Kinds: 'f' float32, 'd' float64, 'q' int64, 'i' int32, 'B' uint8, 'H' uint16. ndim -1 accepts any rank. An
   optional buffer passed as None gives NULL without failing when `optional` is set. */

#define MAX_BUFFERS 12
enum { READ = 0, WRITE = 1, OPTIONAL = 2 };

typedef struct {
    Py_buffer views[MAX_BUFFERS];
    int count;
    int failed;
} buffers;

Py_buffer *take(buffers *set, PyObject *obj, char kind, int flags, int ndim, const char *name);
void release(buffers *set);
/* Elements in a taken buffer (len / itemsize), 0 for NULL. */
Py_ssize_t elements(const Py_buffer *view);
/* Sets ValueError and marks the set failed unless `condition` holds. */
int check(buffers *set, int condition, const char *message);

/* ---- long calls: progress callbacks and Ctrl-C ----
       call_ctx ctx;
       ctx_begin(&ctx, callback);
       Py_BEGIN_ALLOW_THREADS
       rc = ms_...(..., &ctx.run, err, sizeof err);
       Py_END_ALLOW_THREADS
       if (ctx_end(&ctx) < 0) -> a Python exception (KeyboardInterrupt or the callback's) is set */

typedef struct {
    PyObject *callback; /* callable(done, total, info_json) or None */
    ms_run run;
    int32_t local_flag;
    int installed;
    struct sigaction previous;
} call_ctx;

void ctx_begin(call_ctx *ctx, PyObject *callback);
int ctx_end(call_ctx *ctx);

/* ---- JSON text of any size ----
   The engine's size-query pattern: a first call with no buffer reports the bytes needed, a second
   fills the buffer. `read_text` does both and returns a str. */

typedef int32_t (*text_fn)(void *handle, char *buf, size_t buf_len, size_t *needed, char *err, size_t err_len);
PyObject *read_text(text_fn fn, void *handle);

/* ---- handles ----
   Engine objects are opaque handles inside capsules; one table per kind of handle lets create,
   load, save, config and result be written once. */

typedef struct {
    const char *capsule; /* capsule name, checked on every use */
    const char *what;    /* for error messages */
    int32_t (*create)(const char *config, void **out, char *err, size_t err_len);
    int32_t (*load)(const char *path, void **out, char *err, size_t err_len);
    int32_t (*save)(void *handle, const char *path, const char *options, char *err, size_t err_len);
    text_fn config;
    text_fn result;
    void (*destroy)(void *handle);
} handle_kind;

PyObject *wrap_handle(void *handle, const handle_kind *kind);
void *unwrap_handle(PyObject *capsule, const handle_kind *kind);
/* Python-facing methods shared by every handle kind: (config_json) -> handle; (path) -> handle;
   (handle, path, options_json) -> None; (handle) -> str. */
PyObject *handle_create(PyObject *args, const handle_kind *kind);
PyObject *handle_load(PyObject *args, const handle_kind *kind);
PyObject *handle_save(PyObject *args, const handle_kind *kind);
PyObject *handle_config(PyObject *args, const handle_kind *kind);
PyObject *handle_result(PyObject *args, const handle_kind *kind);
/* The classifier behind a capsule (TypeError and NULL if it is not one), for other files' bindings. */
ms_classifier *unwrap_classifier(PyObject *capsule);

/* ---- the method tables each file contributes (gathered in module.c) ---- */

extern PyMethodDef library_methods[];
extern PyMethodDef model_methods[];
extern PyMethodDef data_methods[];
extern PyMethodDef ops_methods[];
extern PyMethodDef explain_methods[];

/* Set once at import: Python delivers signals to the main thread only. */
extern unsigned long main_thread_ident;

#endif /* MEDSYNTH_GLUE_H */
