/* models.c: classifiers and diffusion models (handles, training, inference, sampling). */
#include "glue.h"

/* ---- the two handle kinds ---- */

#define HANDLE_ADAPTERS(prefix, type)                                                                     \
    static int32_t prefix##_create_any(const char *c, void **out, char *e, size_t n) {                    \
        type *m = NULL;                                                                                   \
        int32_t rc = ms_##prefix##_create(c, &m, e, n);                                                   \
        *out = m;                                                                                         \
        return rc;                                                                                        \
    }                                                                                                     \
    static int32_t prefix##_load_any(const char *p, void **out, char *e, size_t n) {                      \
        type *m = NULL;                                                                                   \
        int32_t rc = ms_##prefix##_load(p, &m, e, n);                                                     \
        *out = m;                                                                                         \
        return rc;                                                                                        \
    }                                                                                                     \
    static int32_t prefix##_save_any(void *h, const char *p, const char *o, char *e, size_t n) {          \
        return ms_##prefix##_save(h, p, o, e, n);                                                         \
    }                                                                                                     \
    static int32_t prefix##_config_any(void *h, char *b, size_t l, size_t *need, char *e, size_t n) {     \
        return ms_##prefix##_config(h, b, l, need, e, n);                                                 \
    }                                                                                                     \
    static int32_t prefix##_result_any(void *h, char *b, size_t l, size_t *need, char *e, size_t n) {     \
        return ms_##prefix##_result(h, b, l, need, e, n);                                                 \
    }                                                                                                     \
    static void prefix##_destroy_any(void *h) { ms_##prefix##_free(h); }

HANDLE_ADAPTERS(classifier, ms_classifier)
HANDLE_ADAPTERS(diffusion, ms_diffusion)

static const handle_kind CLASSIFIER = {"medsynth.classifier", "classifier", classifier_create_any,
                                       classifier_load_any, classifier_save_any, classifier_config_any,
                                       classifier_result_any, classifier_destroy_any};
static const handle_kind DIFFUSION = {"medsynth.diffusion", "diffusion model", diffusion_create_any,
                                      diffusion_load_any, diffusion_save_any, diffusion_config_any,
                                      diffusion_result_any, diffusion_destroy_any};

ms_classifier *unwrap_classifier(PyObject *capsule) { return unwrap_handle(capsule, &CLASSIFIER); }

#define HANDLE_METHODS(prefix, KIND)                                                                      \
    static PyObject *py_##prefix##_create(PyObject *s, PyObject *a) { return handle_create(a, &KIND); }  \
    static PyObject *py_##prefix##_load(PyObject *s, PyObject *a) { return handle_load(a, &KIND); }      \
    static PyObject *py_##prefix##_save(PyObject *s, PyObject *a) { return handle_save(a, &KIND); }      \
    static PyObject *py_##prefix##_config(PyObject *s, PyObject *a) { return handle_config(a, &KIND); }  \
    static PyObject *py_##prefix##_result(PyObject *s, PyObject *a) { return handle_result(a, &KIND); }

HANDLE_METHODS(classifier, CLASSIFIER)
HANDLE_METHODS(diffusion, DIFFUSION)

/* Finishes a long call: the callback's exception or Ctrl-C first, then the engine's status. */
static PyObject *finish(call_ctx *ctx, int32_t rc, const char *err) {
    if (ctx_end(ctx) < 0) return NULL;
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

/* ---- classifiers ---- */

/* fit(handle, x [n,c,h,w] f32, y [n] i64, x_val or None, y_val or None, options_json, callback);
   the history is read afterwards with classifier_result. */
static PyObject *py_classifier_fit(PyObject *self, PyObject *args) {
    PyObject *cap, *xo, *yo, *xvo, *yvo, *callback, *result = NULL;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOOOsO", &cap, &xo, &yo, &xvo, &yvo, &options, &callback)) return NULL;
    ms_classifier *m = unwrap_handle(cap, &CLASSIFIER);
    if (!m) return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x");
    Py_buffer *y = take(&b, yo, 'q', READ, 1, "y");
    Py_buffer *xv = take(&b, xvo, 'f', OPTIONAL, 4, "x_val");
    Py_buffer *yv = take(&b, yvo, 'q', OPTIONAL, 1, "y_val");
    if (b.failed) goto done;
    if (!check(&b, y->shape[0] == x->shape[0], "x and y have different lengths")) goto done;
    if (!check(&b, (xv == NULL) == (yv == NULL), "pass both x_val and y_val, or neither")) goto done;
    if (xv) {
        if (!check(&b, yv->shape[0] == xv->shape[0], "x_val and y_val have different lengths")) goto done;
        if (!check(&b, xv->shape[1] == x->shape[1] && xv->shape[2] == x->shape[2] && xv->shape[3] == x->shape[3],
                   "x_val images must have the same shape as x images")) goto done;
    }
    {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_classifier_fit(m, x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->buf,
                               xv ? xv->buf : NULL, xv ? xv->shape[0] : 0, yv ? yv->buf : NULL, options, &ctx.run,
                               err, sizeof err);
        Py_END_ALLOW_THREADS
        result = finish(&ctx, rc, err);
    }
done:
    release(&b);
    return result;
}

/* One batched pass of a classifier over images: x f32 [n,c,h,w] into out f32 [n, per image]. */
typedef int32_t (*classifier_pass)(ms_classifier *, const float *, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   float *, int64_t, const ms_run *, char *, size_t);

/* (handle, x, batch_size, out, callback) for any classifier_pass. */
static PyObject *run_classifier_pass(PyObject *args, classifier_pass pass) {
    PyObject *cap, *xo, *oo, *callback, *result = NULL;
    long long batch;
    if (!PyArg_ParseTuple(args, "OOLOO", &cap, &xo, &batch, &oo, &callback)) return NULL;
    ms_classifier *m = unwrap_handle(cap, &CLASSIFIER);
    if (!m) return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x");
    Py_buffer *out = take(&b, oo, 'f', WRITE, -1, "out");
    if (!b.failed) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = pass(m, x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], batch, out->buf, elements(out),
                  &ctx.run, err, sizeof err);
        Py_END_ALLOW_THREADS
        result = finish(&ctx, rc, err);
    }
    release(&b);
    return result;
}

/* predict_proba(handle, x f32 [n,c,h,w], batch_size, out f32 [n,k], callback) */
static PyObject *py_classifier_predict_proba(PyObject *self, PyObject *args) {
    return run_classifier_pass(args, ms_classifier_predict_proba);
}

/* load_weights(handle, path or None, data (uint8 buffer) or None, options_json): weights with
   torchvision's names from a safetensors file or image; the report is read with classifier_result. */
static PyObject *py_classifier_load_weights(PyObject *self, PyObject *args) {
    PyObject *cap, *po, *bo, *result = NULL;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOs", &cap, &po, &bo, &options)) return NULL;
    ms_classifier *m = unwrap_handle(cap, &CLASSIFIER);
    if (!m) return NULL;
    PyObject *path_obj = NULL;   /* NUL bytes refused, naming the path (path_converter) */
    if (po != Py_None && !path_converter(po, &path_obj)) return NULL;
    const char *path = path_obj ? PyBytes_AS_STRING(path_obj) : NULL;
    buffers b = {0};
    Py_buffer *data = take(&b, bo, 'B', READ | OPTIONAL, 1, "data");
    if (!b.failed && check(&b, (path == NULL) != (data == NULL), "pass a path or data, not both")) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_classifier_load_weights(m, path, data ? data->buf : NULL, data ? (size_t)data->len : 0, options, err,
                                        sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    release(&b);
    Py_XDECREF(path_obj);
    return result;
}

/* state_dict(handle) -> bytearray: the state dict as a safetensors image. */
static PyObject *py_classifier_state_dict(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    ms_classifier *m = unwrap_handle(cap, &CLASSIFIER);
    if (!m) return NULL;
    char err[ERR_LEN] = "";
    size_t needed = 0;
    int32_t rc = ms_classifier_state_dict(m, NULL, 0, &needed, err, sizeof err);
    if (rc != MS_OK && rc != MS_ERR_BUFFER_TOO_SMALL) return raise_status(rc, err);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)needed);
    if (!out) return NULL;
    uint8_t *buf = (uint8_t *)PyByteArray_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    rc = ms_classifier_state_dict(m, buf, needed, &needed, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(out);
        return raise_status(rc, err);
    }
    return out;
}

/* feature_size(handle) -> int: length of the pooled feature vector the head reads */
static PyObject *py_classifier_feature_size(PyObject *self, PyObject *args) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    ms_classifier *m = unwrap_handle(cap, &CLASSIFIER);
    if (!m) return NULL;
    char err[ERR_LEN] = "";
    int64_t size = 0;
    int32_t rc = ms_classifier_feature_size(m, &size, err, sizeof err);
    if (rc != MS_OK) return raise_status(rc, err);
    return PyLong_FromLongLong(size);
}

/* features(handle, x f32 [n,c,h,w], batch_size, out f32 [n,d], callback) */
static PyObject *py_classifier_features(PyObject *self, PyObject *args) {
    return run_classifier_pass(args, ms_classifier_features);
}

/* ---- diffusion models ---- */

/* fit(handle, x [n,c,h,w] f32, labels [n] i64 or None, options_json, callback); the summary is
   read afterwards with diffusion_result. */
static PyObject *py_diffusion_fit(PyObject *self, PyObject *args) {
    PyObject *cap, *xo, *yo, *callback, *result = NULL;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOsO", &cap, &xo, &yo, &options, &callback)) return NULL;
    ms_diffusion *m = unwrap_handle(cap, &DIFFUSION);
    if (!m) return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x");
    Py_buffer *y = take(&b, yo, 'q', OPTIONAL, 1, "labels");
    if (!b.failed && check(&b, !y || y->shape[0] == x->shape[0], "x and labels have different lengths")) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_diffusion_fit(m, x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], y ? y->buf : NULL,
                              options, &ctx.run, err, sizeof err);
        Py_END_ALLOW_THREADS
        result = finish(&ctx, rc, err);
    }
    release(&b);
    return result;
}

/* sample(handle, labels [n] i64 or None, n, options_json, out f32 [n,c,h,w], callback
          [, initial_noise f32 [n,c,h,w] or None, step_noise f32 [steps,n,c,h,w] or None]);
   warnings and figures are read afterwards with diffusion_result. */
static PyObject *py_diffusion_sample(PyObject *self, PyObject *args) {
    PyObject *cap, *yo, *oo, *callback, *io = Py_None, *so = Py_None, *result = NULL;
    long long n;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOLsOO|OO", &cap, &yo, &n, &options, &oo, &callback, &io, &so)) return NULL;
    ms_diffusion *m = unwrap_handle(cap, &DIFFUSION);
    if (!m) return NULL;
    buffers b = {0};
    Py_buffer *y = take(&b, yo, 'q', OPTIONAL, 1, "labels");
    Py_buffer *out = take(&b, oo, 'f', WRITE, -1, "out");
    Py_buffer *initial = take(&b, io, 'f', OPTIONAL, -1, "noise");
    Py_buffer *steps = take(&b, so, 'f', OPTIONAL, -1, "step_noise");
    if (!b.failed && check(&b, !y || y->shape[0] == n, "labels must hold n values")) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_diffusion_sample_from(m, y ? y->buf : NULL, n, options, initial ? initial->buf : NULL, elements(initial),
                                      steps ? steps->buf : NULL, elements(steps), out->buf, elements(out), &ctx.run,
                                      err, sizeof err);
        Py_END_ALLOW_THREADS
        result = finish(&ctx, rc, err);
    }
    release(&b);
    return result;
}

/* forward(handle, x f32 [n,c,h,w], t i64 [1 or n], labels i64 [n] or None, options_json, out f32 [n,c,h,w], callback) */
static PyObject *py_diffusion_forward(PyObject *self, PyObject *args) {
    PyObject *cap, *xo, *to, *yo, *oo, *callback, *result = NULL;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOOsOO", &cap, &xo, &to, &yo, &options, &oo, &callback)) return NULL;
    ms_diffusion *m = unwrap_handle(cap, &DIFFUSION);
    if (!m) return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x_t");
    Py_buffer *t = take(&b, to, 'q', READ, 1, "t");
    Py_buffer *y = take(&b, yo, 'q', OPTIONAL, 1, "labels");
    Py_buffer *out = take(&b, oo, 'f', WRITE, -1, "out");
    if (!b.failed && check(&b, !y || y->shape[0] == x->shape[0], "labels must hold one value per image")) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_diffusion_forward(m, x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], t->buf, t->shape[0],
                                  y ? y->buf : NULL, options, out->buf, elements(out), &ctx.run, err, sizeof err);
        Py_END_ALLOW_THREADS
        result = finish(&ctx, rc, err);
    }
    release(&b);
    return result;
}

/* timesteps(handle, options_json) -> JSON text {"timesteps", "targets", "spacing"} */
typedef struct {
    ms_diffusion *model;
    const char *options;
} timesteps_query;

static int32_t timesteps_text(void *q, char *buf, size_t len, size_t *needed, char *err, size_t err_len) {
    timesteps_query *query = q;
    return ms_diffusion_timesteps(query->model, query->options, buf, len, needed, err, err_len);
}

static PyObject *py_diffusion_timesteps(PyObject *self, PyObject *args) {
    PyObject *cap;
    const char *options;
    if (!PyArg_ParseTuple(args, "Os", &cap, &options)) return NULL;
    ms_diffusion *m = unwrap_handle(cap, &DIFFUSION);
    if (!m) return NULL;
    timesteps_query query = {m, options};
    return read_text(timesteps_text, &query);
}

PyMethodDef model_methods[] = {
    {"classifier_create", py_classifier_create, METH_VARARGS, NULL},
    {"classifier_load", py_classifier_load, METH_VARARGS, NULL},
    {"classifier_config", py_classifier_config, METH_VARARGS, NULL},
    {"classifier_result", py_classifier_result, METH_VARARGS, NULL},
    {"classifier_save", py_classifier_save, METH_VARARGS, NULL},
    {"classifier_fit", py_classifier_fit, METH_VARARGS, NULL},
    {"classifier_predict_proba", py_classifier_predict_proba, METH_VARARGS, NULL},
    {"classifier_load_weights", py_classifier_load_weights, METH_VARARGS, NULL},
    {"classifier_state_dict", py_classifier_state_dict, METH_VARARGS, NULL},
    {"classifier_feature_size", py_classifier_feature_size, METH_VARARGS, NULL},
    {"classifier_features", py_classifier_features, METH_VARARGS, NULL},
    {"diffusion_create", py_diffusion_create, METH_VARARGS, NULL},
    {"diffusion_load", py_diffusion_load, METH_VARARGS, NULL},
    {"diffusion_config", py_diffusion_config, METH_VARARGS, NULL},
    {"diffusion_result", py_diffusion_result, METH_VARARGS, NULL},
    {"diffusion_save", py_diffusion_save, METH_VARARGS, NULL},
    {"diffusion_fit", py_diffusion_fit, METH_VARARGS, NULL},
    {"diffusion_sample", py_diffusion_sample, METH_VARARGS, NULL},
    {"diffusion_forward", py_diffusion_forward, METH_VARARGS, NULL},
    {"diffusion_timesteps", py_diffusion_timesteps, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
