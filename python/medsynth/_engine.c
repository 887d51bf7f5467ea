/*
 * _engine.c: the CPython extension over the medsynth C ABI (Sources/CMedSynth/include/medsynth.h).
 *
 * Deliberately thin: it turns Python buffers into pointers (zero-copy, via the buffer protocol),
 * releases the GIL around engine calls, drives progress callbacks with the GIL re-acquired, turns
 * Ctrl-C into a cancel flag the engine polls, and maps status codes to Python exceptions. Argument
 * conventions (dtype conversion, layouts, defaults) live in the Python package above it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <string.h>
#include "medsynth.h"

#define ERR_LEN 2048
#define RESULT_LEN (1 << 20)

/* ---- errors ---- */

static PyObject *raise_status(int32_t status, const char *message) {
    PyObject *type;
    if (PyErr_Occurred()) return NULL; /* a callback's exception (or KeyboardInterrupt) wins */
    switch (status) {
    case MS_ERR_INVALID_ARGUMENT: type = PyExc_ValueError; break;
    case MS_ERR_TYPE: type = PyExc_TypeError; break;
    case MS_ERR_IO: type = PyExc_OSError; break;
    case MS_ERR_MEMORY: type = PyExc_MemoryError; break;
    case MS_ERR_CANCELLED: type = PyExc_KeyboardInterrupt; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, message[0] ? message : "medsynth engine error");
    return NULL;
}

/* ---- buffers ---- */

/* Takes a C-contiguous buffer of the given kind: 'f' float32, 'q' int64, 'B' uint8, 'H' uint16. */
static int get_buffer(PyObject *obj, char kind, int writable, Py_buffer *view, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer (e.g. a numpy array)", name,
                     writable ? " writable" : "");
        return -1;
    }
    const char *f = view->format ? view->format : "B";
    while (*f == '<' || *f == '=' || *f == '@') f++;
    int ok = 0;
    switch (kind) {
    case 'f': ok = view->itemsize == 4 && strcmp(f, "f") == 0; break;
    case 'q': ok = view->itemsize == 8 && (strcmp(f, "q") == 0 || strcmp(f, "l") == 0); break;
    case 'B': ok = view->itemsize == 1 && strcmp(f, "B") == 0; break;
    case 'H': ok = view->itemsize == 2 && strcmp(f, "H") == 0; break;
    }
    if (!ok) {
        const char *want = kind == 'f' ? "float32" : kind == 'q' ? "int64" : kind == 'B' ? "uint8" : "uint16";
        PyErr_Format(PyExc_TypeError, "%s must have dtype %s (got buffer format '%s')", name, want, view->format ? view->format : "?");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int require_ndim(Py_buffer *view, int ndim, const char *name) {
    if (view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, got %d", name, ndim, view->ndim);
        return -1;
    }
    return 0;
}

/* ---- progress and Ctrl-C ---- */

static volatile int32_t sigint_flag = 0;
static unsigned long main_thread_ident = 0; /* Python delivers signals to this thread only */

static void on_sigint(int sig) {
    (void)sig;
    sigint_flag = 1;
}

typedef struct {
    PyObject *callback; /* callable(done, total, info_json) or None */
    ms_run run;
    int32_t local_flag;
    int installed;
    struct sigaction previous;
} call_ctx;

static int32_t progress_trampoline(void *user, int64_t done, int64_t total, const char *info) {
    call_ctx *ctx = (call_ctx *)user;
    PyGILState_STATE g = PyGILState_Ensure();
    int32_t stop = 0;
    if (PyErr_CheckSignals() < 0) {
        stop = 1;
    } else if (ctx->callback && ctx->callback != Py_None) {
        PyObject *r = PyObject_CallFunction(ctx->callback, "LLs", (long long)done, (long long)total, info);
        if (!r) stop = 1;
        else Py_DECREF(r);
    }
    PyGILState_Release(g);
    return stop;
}

/* Before a long call: a progress trampoline and, on the main thread, a SIGINT handler that raises
   the engine's cancel flag at once (the engine checks it between steps and inside backward). */
static void ctx_begin(call_ctx *ctx, PyObject *callback) {
    memset(ctx, 0, sizeof *ctx);
    ctx->callback = callback;
    ctx->run.progress = progress_trampoline;
    ctx->run.user = ctx;
    ctx->run.cancel = &ctx->local_flag;
    if (main_thread_ident != 0 && PyThread_get_thread_ident() == main_thread_ident) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigint_flag = 0;
        if (sigaction(SIGINT, &sa, &ctx->previous) == 0) {
            ctx->installed = 1;
            ctx->run.cancel = (const int32_t *)&sigint_flag;
        }
    }
}

/* After the call (GIL held): restore the handler; a Ctrl-C that arrived becomes KeyboardInterrupt. */
static int ctx_end(call_ctx *ctx) {
    if (ctx->installed) {
        sigaction(SIGINT, &ctx->previous, NULL);
        if (sigint_flag) {
            sigint_flag = 0;
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
            return -1;
        }
    }
    return PyErr_Occurred() ? -1 : 0;
}

/* ---- library ---- */

static PyObject *py_version(PyObject *self, PyObject *args) {
    char buf[64];
    ms_version(buf, sizeof buf);
    return PyUnicode_FromString(buf);
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *args) { return PyLong_FromLong(ms_get_num_threads()); }

static PyObject *py_set_num_threads(PyObject *self, PyObject *args) {
    int n;
    char err[ERR_LEN] = "";
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    int32_t rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_set_num_threads(n, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

static PyObject *py_memory(PyObject *self, PyObject *args) {
    return Py_BuildValue("LL", (long long)ms_memory_current(), (long long)ms_memory_peak());
}

static PyObject *py_memory_reset_peak(PyObject *self, PyObject *args) {
    ms_memory_reset_peak();
    Py_RETURN_NONE;
}

/* ---- handles ----
   Classifiers and diffusion models are opaque engine handles inside capsules. One table per kind
   of handle lets create/load/save/config be written once. */

typedef struct {
    const char *capsule;   /* capsule name, checked on every use */
    const char *what;      /* for error messages */
    int32_t (*create)(const char *config, void **out, char *err, size_t err_len);
    int32_t (*load)(const char *path, void **out, char *err, size_t err_len);
    int32_t (*save)(void *handle, const char *path, char *err, size_t err_len);
    int32_t (*config)(void *handle, char *buf, size_t len, size_t *needed, char *err, size_t err_len);
    void (*destroy)(void *handle);
} handle_kind;

static void capsule_destroy(PyObject *capsule) {
    const handle_kind *kind = PyCapsule_GetContext(capsule);
    void *handle = kind ? PyCapsule_GetPointer(capsule, kind->capsule) : NULL;
    if (handle) kind->destroy(handle);
}

static PyObject *wrap_handle(void *handle, const handle_kind *kind) {
    PyObject *capsule = PyCapsule_New(handle, kind->capsule, capsule_destroy);
    if (!capsule) { kind->destroy(handle); return NULL; }
    PyCapsule_SetContext(capsule, (void *)kind);
    return capsule;
}

static void *unwrap_handle(PyObject *capsule, const handle_kind *kind) {
    if (!PyCapsule_IsValid(capsule, kind->capsule)) {
        PyErr_Format(PyExc_TypeError, "expected a medsynth %s handle", kind->what);
        return NULL;
    }
    return PyCapsule_GetPointer(capsule, kind->capsule);
}

static PyObject *handle_create(PyObject *args, const handle_kind *kind) {
    const char *config;
    char err[ERR_LEN] = "";
    void *handle = NULL;
    if (!PyArg_ParseTuple(args, "s", &config)) return NULL;
    int32_t rc;
    Py_BEGIN_ALLOW_THREADS
    rc = kind->create(config, &handle, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) return raise_status(rc, err);
    return wrap_handle(handle, kind);
}

static PyObject *handle_load(PyObject *args, const handle_kind *kind) {
    PyObject *path_obj;
    char err[ERR_LEN] = "";
    void *handle = NULL;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    int32_t rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = kind->load(path, &handle, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc) return raise_status(rc, err);
    return wrap_handle(handle, kind);
}

static PyObject *handle_save(PyObject *args, const handle_kind *kind) {
    PyObject *cap, *path_obj;
    char err[ERR_LEN] = "";
    if (!PyArg_ParseTuple(args, "OO&", &cap, PyUnicode_FSConverter, &path_obj)) return NULL;
    void *handle = unwrap_handle(cap, kind);
    if (!handle) { Py_DECREF(path_obj); return NULL; }
    int32_t rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = kind->save(handle, path, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

/* The configuration as a JSON string: one call learns the size, the second fills the buffer. */
static PyObject *handle_config(PyObject *args, const handle_kind *kind) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    void *handle = unwrap_handle(cap, kind);
    if (!handle) return NULL;
    char err[ERR_LEN] = "";
    size_t needed = 0;
    char small[1];
    kind->config(handle, small, 0, &needed, err, sizeof err);
    if (needed == 0) return raise_status(MS_ERR_RUNTIME, err);
    char *buf = PyMem_Malloc(needed);
    if (!buf) return PyErr_NoMemory();
    int32_t rc = kind->config(handle, buf, needed, &needed, err, sizeof err);
    PyObject *result = rc ? raise_status(rc, err) : PyUnicode_FromString(buf);
    PyMem_Free(buf);
    return result;
}

/* ---- classifiers ---- */

static int32_t classifier_create(const char *c, void **out, char *e, size_t n) {
    ms_classifier *m = NULL;
    int32_t rc = ms_classifier_create(c, &m, e, n);
    *out = m;
    return rc;
}
static int32_t classifier_load(const char *p, void **out, char *e, size_t n) {
    ms_classifier *m = NULL;
    int32_t rc = ms_classifier_load(p, &m, e, n);
    *out = m;
    return rc;
}
static int32_t classifier_save(void *h, const char *p, char *e, size_t n) { return ms_classifier_save(h, p, e, n); }
static int32_t classifier_config(void *h, char *b, size_t l, size_t *need, char *e, size_t n) {
    return ms_classifier_config(h, b, l, need, e, n);
}
static void classifier_destroy(void *h) { ms_classifier_free(h); }

static const handle_kind CLASSIFIER = {"medsynth.classifier", "classifier", classifier_create, classifier_load,
                                       classifier_save, classifier_config, classifier_destroy};

static ms_classifier *classifier_from(PyObject *capsule) { return unwrap_handle(capsule, &CLASSIFIER); }
static PyObject *py_classifier_create(PyObject *self, PyObject *args) { return handle_create(args, &CLASSIFIER); }
static PyObject *py_classifier_load(PyObject *self, PyObject *args) { return handle_load(args, &CLASSIFIER); }
static PyObject *py_classifier_save(PyObject *self, PyObject *args) { return handle_save(args, &CLASSIFIER); }
static PyObject *py_classifier_config(PyObject *self, PyObject *args) { return handle_config(args, &CLASSIFIER); }

/* fit(handle, x[n,c,h,w] f32, y[n] i64, x_val or None, y_val or None, options_json, callback) -> history_json */
static PyObject *py_classifier_fit(PyObject *self, PyObject *args) {
    PyObject *cap, *xo, *yo, *xvo, *yvo, *callback;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOOOsO", &cap, &xo, &yo, &xvo, &yvo, &options, &callback)) return NULL;
    ms_classifier *m = classifier_from(cap);
    if (!m) return NULL;
    Py_buffer x, y, xv, yv;
    int have_val = xvo != Py_None;
    if (get_buffer(xo, 'f', 0, &x, "x") < 0) return NULL;
    if (get_buffer(yo, 'q', 0, &y, "y") < 0) { PyBuffer_Release(&x); return NULL; }
    if (have_val) {
        if (get_buffer(xvo, 'f', 0, &xv, "x_val") < 0) { PyBuffer_Release(&x); PyBuffer_Release(&y); return NULL; }
        if (get_buffer(yvo, 'q', 0, &yv, "y_val") < 0) { PyBuffer_Release(&x); PyBuffer_Release(&y); PyBuffer_Release(&xv); return NULL; }
    }
    PyObject *result = NULL;
    char *out = NULL;
    if (require_ndim(&x, 4, "x") < 0 || require_ndim(&y, 1, "y") < 0) goto done;
    if (y.shape[0] != x.shape[0]) { PyErr_SetString(PyExc_ValueError, "x and y have different lengths"); goto done; }
    if (have_val) {
        if (require_ndim(&xv, 4, "x_val") < 0 || require_ndim(&yv, 1, "y_val") < 0) goto done;
        if (yv.shape[0] != xv.shape[0]) { PyErr_SetString(PyExc_ValueError, "x_val and y_val have different lengths"); goto done; }
        if (xv.shape[1] != x.shape[1] || xv.shape[2] != x.shape[2] || xv.shape[3] != x.shape[3]) {
            PyErr_SetString(PyExc_ValueError, "x_val images must have the same shape as x images"); goto done;
        }
    }
    out = PyMem_Malloc(RESULT_LEN);
    if (!out) { PyErr_NoMemory(); goto done; }
    out[0] = 0;
    char err[ERR_LEN] = "";
    call_ctx ctx;
    ctx_begin(&ctx, callback);
    int32_t rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_classifier_fit(m, x.buf, x.shape[0], x.shape[1], x.shape[2], x.shape[3], y.buf,
                           have_val ? xv.buf : NULL, have_val ? xv.shape[0] : 0, have_val ? yv.buf : NULL,
                           options, &ctx.run, out, RESULT_LEN, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (ctx_end(&ctx) < 0) goto done;
    result = rc ? raise_status(rc, err) : PyUnicode_FromString(out);
done:
    PyMem_Free(out);
    PyBuffer_Release(&x);
    PyBuffer_Release(&y);
    if (have_val) { PyBuffer_Release(&xv); PyBuffer_Release(&yv); }
    return result;
}

/* predict_proba(handle, x f32 [n,c,h,w], batch_size, out f32 [n,k], callback) */
static PyObject *py_classifier_predict_proba(PyObject *self, PyObject *args) {
    PyObject *cap, *xo, *oo, *callback;
    long long batch;
    if (!PyArg_ParseTuple(args, "OOLOO", &cap, &xo, &batch, &oo, &callback)) return NULL;
    ms_classifier *m = classifier_from(cap);
    if (!m) return NULL;
    Py_buffer x, out;
    if (get_buffer(xo, 'f', 0, &x, "x") < 0) return NULL;
    if (get_buffer(oo, 'f', 1, &out, "out") < 0) { PyBuffer_Release(&x); return NULL; }
    PyObject *result = NULL;
    if (require_ndim(&x, 4, "x") == 0) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_classifier_predict_proba(m, x.buf, x.shape[0], x.shape[1], x.shape[2], x.shape[3], batch,
                                         out.buf, out.len / 4, &ctx.run, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (ctx_end(&ctx) == 0) {
            if (rc) raise_status(rc, err);
            else { Py_INCREF(Py_None); result = Py_None; }
        }
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return result;
}

/* ---- diffusion models ---- */

static int32_t diffusion_create(const char *c, void **out, char *e, size_t n) {
    ms_diffusion *m = NULL;
    int32_t rc = ms_diffusion_create(c, &m, e, n);
    *out = m;
    return rc;
}
static int32_t diffusion_load(const char *p, void **out, char *e, size_t n) {
    ms_diffusion *m = NULL;
    int32_t rc = ms_diffusion_load(p, &m, e, n);
    *out = m;
    return rc;
}
static int32_t diffusion_save(void *h, const char *p, char *e, size_t n) { return ms_diffusion_save(h, p, e, n); }
static int32_t diffusion_config(void *h, char *b, size_t l, size_t *need, char *e, size_t n) {
    return ms_diffusion_config(h, b, l, need, e, n);
}
static void diffusion_destroy(void *h) { ms_diffusion_free(h); }

static const handle_kind DIFFUSION = {"medsynth.diffusion", "diffusion model", diffusion_create, diffusion_load,
                                      diffusion_save, diffusion_config, diffusion_destroy};

static ms_diffusion *diffusion_from(PyObject *capsule) { return unwrap_handle(capsule, &DIFFUSION); }
static PyObject *py_diffusion_create(PyObject *self, PyObject *args) { return handle_create(args, &DIFFUSION); }
static PyObject *py_diffusion_load(PyObject *self, PyObject *args) { return handle_load(args, &DIFFUSION); }
static PyObject *py_diffusion_save(PyObject *self, PyObject *args) { return handle_save(args, &DIFFUSION); }
static PyObject *py_diffusion_config(PyObject *self, PyObject *args) { return handle_config(args, &DIFFUSION); }

/* fit(handle, x [n,c,h,w] f32, labels [n] i64 or None, options_json, callback) -> summary_json */
static PyObject *py_diffusion_fit(PyObject *self, PyObject *args) {
    PyObject *cap, *xo, *yo, *callback;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOsO", &cap, &xo, &yo, &options, &callback)) return NULL;
    ms_diffusion *m = diffusion_from(cap);
    if (!m) return NULL;
    Py_buffer x, y;
    int have_y = yo != Py_None;
    if (get_buffer(xo, 'f', 0, &x, "x") < 0) return NULL;
    if (have_y && get_buffer(yo, 'q', 0, &y, "labels") < 0) { PyBuffer_Release(&x); return NULL; }
    PyObject *result = NULL;
    char *out = NULL;
    if (require_ndim(&x, 4, "x") < 0 || (have_y && require_ndim(&y, 1, "labels") < 0)) goto done;
    if (have_y && y.shape[0] != x.shape[0]) { PyErr_SetString(PyExc_ValueError, "x and labels have different lengths"); goto done; }
    out = PyMem_Malloc(RESULT_LEN);
    if (!out) { PyErr_NoMemory(); goto done; }
    out[0] = 0;
    {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_diffusion_fit(m, x.buf, x.shape[0], x.shape[1], x.shape[2], x.shape[3], have_y ? y.buf : NULL,
                              options, &ctx.run, out, RESULT_LEN, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (ctx_end(&ctx) < 0) goto done;
        result = rc ? raise_status(rc, err) : PyUnicode_FromString(out);
    }
done:
    PyMem_Free(out);
    PyBuffer_Release(&x);
    if (have_y) PyBuffer_Release(&y);
    return result;
}

/* sample(handle, labels [n] i64 or None, n, options_json, out f32 [n,c,h,w], callback) -> result_json */
static PyObject *py_diffusion_sample(PyObject *self, PyObject *args) {
    PyObject *cap, *yo, *oo, *callback;
    long long n;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOLsOO", &cap, &yo, &n, &options, &oo, &callback)) return NULL;
    ms_diffusion *m = diffusion_from(cap);
    if (!m) return NULL;
    Py_buffer y, out;
    int have_y = yo != Py_None;
    if (have_y && get_buffer(yo, 'q', 0, &y, "labels") < 0) return NULL;
    if (get_buffer(oo, 'f', 1, &out, "out") < 0) { if (have_y) PyBuffer_Release(&y); return NULL; }
    PyObject *result = NULL;
    char *text = NULL;
    if (have_y && (require_ndim(&y, 1, "labels") < 0 || y.shape[0] != n)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "labels must hold n values");
        goto done;
    }
    text = PyMem_Malloc(RESULT_LEN);
    if (!text) { PyErr_NoMemory(); goto done; }
    text[0] = 0;
    {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_diffusion_sample(m, have_y ? y.buf : NULL, n, options, out.buf, out.len / 4, &ctx.run,
                                 text, RESULT_LEN, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (ctx_end(&ctx) < 0) goto done;
        result = rc ? raise_status(rc, err) : PyUnicode_FromString(text);
    }
done:
    PyMem_Free(text);
    if (have_y) PyBuffer_Release(&y);
    PyBuffer_Release(&out);
    return result;
}

/* ---- data ---- */

static PyObject *py_make_shapes(PyObject *self, PyObject *args) {
    long long n_per_class;
    int classes, size, channels;
    unsigned long long seed;
    PyObject *io, *lo;
    if (!PyArg_ParseTuple(args, "LiiiKOO", &n_per_class, &classes, &size, &channels, &seed, &io, &lo)) return NULL;
    Py_buffer images, labels;
    if (get_buffer(io, 'f', 1, &images, "images") < 0) return NULL;
    if (get_buffer(lo, 'q', 1, &labels, "labels") < 0) { PyBuffer_Release(&images); return NULL; }
    char err[ERR_LEN] = "";
    int32_t rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_make_shapes(n_per_class, classes, size, channels, seed, images.buf, images.len / 4, labels.buf, labels.len / 8,
                        err, sizeof err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&images);
    PyBuffer_Release(&labels);
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

/* ---- PNG ---- */

static PyObject *py_png_probe(PyObject *self, PyObject *args) {
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj)) return NULL;
    int64_t w = 0, h = 0;
    int32_t c = 0, depth = 0, rc;
    char err[ERR_LEN] = "";
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = ms_png_probe(path, &w, &h, &c, &depth, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc) return raise_status(rc, err);
    return Py_BuildValue("LLii", (long long)w, (long long)h, c, depth);
}

static PyObject *py_png_read(PyObject *self, PyObject *args) {
    PyObject *path_obj, *oo;
    if (!PyArg_ParseTuple(args, "O&O", PyUnicode_FSConverter, &path_obj, &oo)) return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(oo, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) { Py_DECREF(path_obj); return NULL; }
    char err[ERR_LEN] = "";
    int32_t rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = ms_png_read(path, out.buf, (size_t)out.len, err, sizeof err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    Py_DECREF(path_obj);
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

static PyObject *py_png_write(PyObject *self, PyObject *args) {
    PyObject *path_obj, *so;
    int depth;
    if (!PyArg_ParseTuple(args, "O&Oi", PyUnicode_FSConverter, &path_obj, &so, &depth)) return NULL;
    Py_buffer s;
    if (get_buffer(so, depth == 16 ? 'H' : 'B', 0, &s, "samples") < 0) { Py_DECREF(path_obj); return NULL; }
    PyObject *result = NULL;
    if (require_ndim(&s, 3, "samples") == 0) {
        char err[ERR_LEN] = "";
        int32_t rc;
        const char *path = PyBytes_AS_STRING(path_obj);
        Py_BEGIN_ALLOW_THREADS
        rc = ms_png_write(path, s.buf, s.shape[1], s.shape[0], (int32_t)s.shape[2], depth, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else { Py_INCREF(Py_None); result = Py_None; }
    }
    PyBuffer_Release(&s);
    Py_DECREF(path_obj);
    return result;
}

/* ---- functional convolution ---- */

/* conv2d_forward(x[n,cin,h,w], w[cout,cin/g,kh,kw], b[cout] or None, stride, padding, dilation, groups, y) */
static PyObject *py_conv2d_forward(PyObject *self, PyObject *args) {
    PyObject *xo, *wo, *bo, *yo;
    long long stride, padding, dilation, groups;
    if (!PyArg_ParseTuple(args, "OOOLLLLO", &xo, &wo, &bo, &stride, &padding, &dilation, &groups, &yo)) return NULL;
    Py_buffer x, w, b, y;
    int have_b = bo != Py_None;
    if (get_buffer(xo, 'f', 0, &x, "x") < 0) return NULL;
    if (get_buffer(wo, 'f', 0, &w, "weight") < 0) { PyBuffer_Release(&x); return NULL; }
    if (have_b && get_buffer(bo, 'f', 0, &b, "bias") < 0) { PyBuffer_Release(&x); PyBuffer_Release(&w); return NULL; }
    if (get_buffer(yo, 'f', 1, &y, "y") < 0) { PyBuffer_Release(&x); PyBuffer_Release(&w); if (have_b) PyBuffer_Release(&b); return NULL; }
    PyObject *result = NULL;
    if (require_ndim(&x, 4, "x") == 0 && require_ndim(&w, 4, "weight") == 0 &&
        (!have_b || require_ndim(&b, 1, "bias") == 0)) {
        if (have_b && b.shape[0] != w.shape[0]) PyErr_SetString(PyExc_ValueError, "bias must have one value per output channel");
        else if (w.shape[1] * groups != x.shape[1]) PyErr_SetString(PyExc_ValueError, "weight's input channels times groups must equal x's channels");
        else {
            char err[ERR_LEN] = "";
            int32_t rc;
            Py_BEGIN_ALLOW_THREADS
            rc = ms_conv2d_forward(x.buf, x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.buf, w.shape[0], w.shape[2], w.shape[3],
                                   have_b ? b.buf : NULL, stride, padding, dilation, groups, y.buf, y.len / 4, err, sizeof err);
            Py_END_ALLOW_THREADS
            if (rc) raise_status(rc, err);
            else { Py_INCREF(Py_None); result = Py_None; }
        }
    }
    PyBuffer_Release(&x); PyBuffer_Release(&w); PyBuffer_Release(&y);
    if (have_b) PyBuffer_Release(&b);
    return result;
}

/* conv2d_backward(x, w, dy, stride, padding, dilation, groups, dx or None, dw or None, db or None) */
static PyObject *py_conv2d_backward(PyObject *self, PyObject *args) {
    PyObject *xo, *wo, *dyo, *dxo, *dwo, *dbo;
    long long stride, padding, dilation, groups;
    if (!PyArg_ParseTuple(args, "OOOLLLLOOO", &xo, &wo, &dyo, &stride, &padding, &dilation, &groups, &dxo, &dwo, &dbo)) return NULL;
    Py_buffer x, w, dy, dx, dw, db;
    int hx = dxo != Py_None, hw = dwo != Py_None, hb = dbo != Py_None, got = 0;
    PyObject *result = NULL;
    if (get_buffer(xo, 'f', 0, &x, "x") < 0) goto release; got = 1;
    if (get_buffer(wo, 'f', 0, &w, "weight") < 0) goto release; got = 2;
    if (get_buffer(dyo, 'f', 0, &dy, "dy") < 0) goto release; got = 3;
    if (hx && get_buffer(dxo, 'f', 1, &dx, "dx") < 0) goto release; got = 4;
    if (hw && get_buffer(dwo, 'f', 1, &dw, "dweight") < 0) goto release; got = 5;
    if (hb && get_buffer(dbo, 'f', 1, &db, "dbias") < 0) goto release; got = 6;
    if (require_ndim(&x, 4, "x") < 0 || require_ndim(&w, 4, "weight") < 0) goto release;
    if (w.shape[1] * groups != x.shape[1]) { PyErr_SetString(PyExc_ValueError, "weight's input channels times groups must equal x's channels"); goto release; }
    if ((hx && dx.len != x.len) || (hw && dw.len != w.len) || (hb && db.len != w.shape[0] * 4)) {
        PyErr_SetString(PyExc_ValueError, "gradient buffers must match x, weight and the output channels in size");
        goto release;
    }
    {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_conv2d_backward(x.buf, x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.buf, w.shape[0], w.shape[2], w.shape[3],
                                stride, padding, dilation, groups, dy.buf, dy.len / 4, hx ? dx.buf : NULL, hw ? dw.buf : NULL,
                                hb ? db.buf : NULL, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else { Py_INCREF(Py_None); result = Py_None; }
    }
release:
    if (got >= 1) PyBuffer_Release(&x);
    if (got >= 2) PyBuffer_Release(&w);
    if (got >= 3) PyBuffer_Release(&dy);
    if (got >= 4 && hx) PyBuffer_Release(&dx);
    if (got >= 5 && hw) PyBuffer_Release(&dw);
    if (got >= 6 && hb) PyBuffer_Release(&db);
    return result;
}

/* matmul(a [m,k], b [k,n], c [m,n]) */
static PyObject *py_matmul(PyObject *self, PyObject *args) {
    PyObject *ao, *bo, *co;
    if (!PyArg_ParseTuple(args, "OOO", &ao, &bo, &co)) return NULL;
    Py_buffer a, b, c;
    if (get_buffer(ao, 'f', 0, &a, "a") < 0) return NULL;
    if (get_buffer(bo, 'f', 0, &b, "b") < 0) { PyBuffer_Release(&a); return NULL; }
    if (get_buffer(co, 'f', 1, &c, "c") < 0) { PyBuffer_Release(&a); PyBuffer_Release(&b); return NULL; }
    PyObject *result = NULL;
    if (require_ndim(&a, 2, "a") == 0 && require_ndim(&b, 2, "b") == 0 && require_ndim(&c, 2, "c") == 0) {
        if (a.shape[1] != b.shape[0] || c.shape[0] != a.shape[0] || c.shape[1] != b.shape[1]) {
            PyErr_SetString(PyExc_ValueError, "matmul: shapes do not agree (a [m,k], b [k,n], c [m,n])");
        } else {
            char err[ERR_LEN] = "";
            int32_t rc;
            Py_BEGIN_ALLOW_THREADS
            rc = ms_matmul(a.buf, b.buf, c.buf, a.shape[0], b.shape[1], a.shape[1], err, sizeof err);
            Py_END_ALLOW_THREADS
            if (rc) raise_status(rc, err);
            else { Py_INCREF(Py_None); result = Py_None; }
        }
    }
    PyBuffer_Release(&a); PyBuffer_Release(&b); PyBuffer_Release(&c);
    return result;
}

static PyMethodDef methods[] = {
    {"matmul", py_matmul, METH_VARARGS, NULL},
    {"version", py_version, METH_NOARGS, "Engine version."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "Threads used by the engine."},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "Set the engine's thread count."},
    {"memory", py_memory, METH_NOARGS, "(current, peak) bytes of engine tensor memory."},
    {"memory_reset_peak", py_memory_reset_peak, METH_NOARGS, "Reset the peak memory counter."},
    {"classifier_create", py_classifier_create, METH_VARARGS, NULL},
    {"classifier_load", py_classifier_load, METH_VARARGS, NULL},
    {"classifier_config", py_classifier_config, METH_VARARGS, NULL},
    {"classifier_save", py_classifier_save, METH_VARARGS, NULL},
    {"classifier_fit", py_classifier_fit, METH_VARARGS, NULL},
    {"classifier_predict_proba", py_classifier_predict_proba, METH_VARARGS, NULL},
    {"diffusion_create", py_diffusion_create, METH_VARARGS, NULL},
    {"diffusion_load", py_diffusion_load, METH_VARARGS, NULL},
    {"diffusion_config", py_diffusion_config, METH_VARARGS, NULL},
    {"diffusion_save", py_diffusion_save, METH_VARARGS, NULL},
    {"diffusion_fit", py_diffusion_fit, METH_VARARGS, NULL},
    {"diffusion_sample", py_diffusion_sample, METH_VARARGS, NULL},
    {"make_shapes", py_make_shapes, METH_VARARGS, NULL},
    {"png_probe", py_png_probe, METH_VARARGS, NULL},
    {"png_read", py_png_read, METH_VARARGS, NULL},
    {"png_write", py_png_write, METH_VARARGS, NULL},
    {"conv2d_forward", py_conv2d_forward, METH_VARARGS, NULL},
    {"conv2d_backward", py_conv2d_backward, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "medsynth._engine",
                                    "Low-level bindings to the medsynth engine's C ABI.", -1, methods};

PyMODINIT_FUNC PyInit__engine(void) {
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading) {
        PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
        PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
        if (ident) main_thread_ident = PyLong_AsUnsignedLong(ident);
        Py_XDECREF(ident);
        Py_XDECREF(main);
        Py_DECREF(threading);
    }
    PyErr_Clear();
    return PyModule_Create(&module);
}
