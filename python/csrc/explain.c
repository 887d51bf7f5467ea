/* explain.c: superpixels and the steps of LIME (ms_superpixels, ms_lime_*). Shapes and dtypes are
   checked here against each other; the engine validates values and ranges. */
#include "glue.h"

/* Height and width of an image buffer given its layout: [h, w, c] when channels_last, else [c, h, w]
   (a 2-D buffer is [h, w] with one channel). */
static int image_dims(buffers *b, const Py_buffer *v, int channels_last, long long *h, long long *w, long long *c) {
    if (v->ndim == 2) {
        *h = v->shape[0];
        *w = v->shape[1];
        *c = 1;
        return 1;
    }
    if (!check(b, v->ndim == 3, "image must have 2 or 3 dimensions")) return 0;
    if (channels_last) {
        *h = v->shape[0];
        *w = v->shape[1];
        *c = v->shape[2];
    } else {
        *c = v->shape[0];
        *h = v->shape[1];
        *w = v->shape[2];
    }
    return 1;
}

/* superpixels(image f64 [h, w, c], options_json, labels i32 out [h, w]) -> count */
static PyObject *py_superpixels(PyObject *self, PyObject *args) {
    PyObject *io, *lo, *result = NULL;
    const char *options;
    if (!PyArg_ParseTuple(args, "OsO", &io, &options, &lo)) return NULL;
    buffers b = {0};
    Py_buffer *image = take(&b, io, 'd', READ, 3, "image");
    Py_buffer *labels = take(&b, lo, 'i', WRITE, 2, "labels");
    if (!b.failed && check(&b, labels->shape[0] == image->shape[0] && labels->shape[1] == image->shape[1],
                           "labels must have the image's height and width")) {
        char err[ERR_LEN] = "";
        int64_t count = 0;
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_superpixels(image->buf, image->shape[0], image->shape[1], image->shape[2], options, labels->buf,
                            elements(labels), &count, err, sizeof err);
        Py_END_ALLOW_THREADS
        result = rc ? raise_status(rc, err) : PyLong_FromLongLong(count);
    }
    release(&b);
    return result;
}

/* lime_samples(num_samples, num_features, seed, run, z u8 out [n, s]) */
static PyObject *py_lime_samples(PyObject *self, PyObject *args) {
    long long n, s, run;
    unsigned long long seed;
    PyObject *zo, *result = NULL;
    if (!PyArg_ParseTuple(args, "LLKLO", &n, &s, &seed, &run, &zo)) return NULL;
    buffers b = {0};
    Py_buffer *z = take(&b, zo, 'B', WRITE, 2, "z");
    if (!b.failed) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_lime_samples(n, s, seed, run, z->buf, elements(z), err, sizeof err);
        Py_END_ALLOW_THREADS
        result = rc ? raise_status(rc, err) : Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* lime_hidden_image(image f32, channels_last, segments i32 [h, w], num_segments,
                     hide_values f32 [k] or None, integer_levels, hidden f32 out (image shape)) */
static PyObject *py_lime_hidden_image(PyObject *self, PyObject *args) {
    PyObject *io, *so, *vo, *ho, *result = NULL;
    int channels_last, levels;
    long long num_segments;
    if (!PyArg_ParseTuple(args, "OiOLOiO", &io, &channels_last, &so, &num_segments, &vo, &levels, &ho)) return NULL;
    buffers b = {0};
    Py_buffer *image = take(&b, io, 'f', READ, -1, "image");
    Py_buffer *segments = take(&b, so, 'i', READ, 2, "segments");
    Py_buffer *values = take(&b, vo, 'f', OPTIONAL, 1, "hide_color");
    Py_buffer *hidden = take(&b, ho, 'f', WRITE, -1, "hidden");
    long long h, w, c;
    if (!b.failed && image_dims(&b, image, channels_last, &h, &w, &c) &&
        check(&b, segments->shape[0] == h && segments->shape[1] == w, "segments must have the image's height and width")) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_lime_hidden_image(image->buf, h, w, c, channels_last, segments->buf, num_segments, values ? values->buf : NULL,
                                  elements(values), levels, hidden->buf, elements(hidden), err, sizeof err);
        Py_END_ALLOW_THREADS
        result = rc ? raise_status(rc, err) : Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* lime_perturb(image f32, hidden f32, channels_last, segments i32 [h, w], z u8 [n, s], first, out f32 [count, ...]) */
static PyObject *py_lime_perturb(PyObject *self, PyObject *args) {
    PyObject *io, *ho, *so, *zo, *oo, *result = NULL;
    int channels_last;
    long long first;
    if (!PyArg_ParseTuple(args, "OOiOOLO", &io, &ho, &channels_last, &so, &zo, &first, &oo)) return NULL;
    buffers b = {0};
    Py_buffer *image = take(&b, io, 'f', READ, -1, "image");
    Py_buffer *hidden = take(&b, ho, 'f', READ, -1, "hidden");
    Py_buffer *segments = take(&b, so, 'i', READ, 2, "segments");
    Py_buffer *z = take(&b, zo, 'B', READ, 2, "z");
    Py_buffer *out = take(&b, oo, 'f', WRITE, -1, "out");
    long long h, w, c;
    if (!b.failed && image_dims(&b, image, channels_last, &h, &w, &c) &&
        check(&b, elements(hidden) == elements(image), "hidden must have the image's shape") &&
        check(&b, segments->shape[0] == h && segments->shape[1] == w, "segments must have the image's height and width") &&
        check(&b, out->ndim >= 1 && out->shape[0] >= 1, "out must hold at least one image")) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_lime_perturb(image->buf, hidden->buf, h, w, c, channels_last, segments->buf, z->shape[1], z->buf, z->shape[0],
                             first, out->shape[0], out->buf, elements(out), err, sizeof err);
        Py_END_ALLOW_THREADS
        result = rc ? raise_status(rc, err) : Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* lime_classify(handle, image f32 [c, h, w], hidden f32 [c, h, w], segments i32 [h, w], z u8 [n, s],
                 batch_size, probs f32 out [n, k], callback) */
static PyObject *py_lime_classify(PyObject *self, PyObject *args) {
    PyObject *cap, *io, *ho, *so, *zo, *po, *callback, *result = NULL;
    long long batch;
    if (!PyArg_ParseTuple(args, "OOOOOLOO", &cap, &io, &ho, &so, &zo, &batch, &po, &callback)) return NULL;
    ms_classifier *m = unwrap_classifier(cap);
    if (!m) return NULL;
    buffers b = {0};
    Py_buffer *image = take(&b, io, 'f', READ, 3, "image");
    Py_buffer *hidden = take(&b, ho, 'f', READ, 3, "hidden");
    Py_buffer *segments = take(&b, so, 'i', READ, 2, "segments");
    Py_buffer *z = take(&b, zo, 'B', READ, 2, "z");
    Py_buffer *probs = take(&b, po, 'f', WRITE, 2, "probs");
    if (!b.failed && check(&b, elements(hidden) == elements(image), "hidden must have the image's shape") &&
        check(&b, segments->shape[0] == image->shape[1] && segments->shape[1] == image->shape[2],
              "segments must have the image's height and width")) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_lime_classify(m, image->buf, hidden->buf, image->shape[0], image->shape[1], image->shape[2], segments->buf,
                              z->shape[1], z->buf, z->shape[0], batch, probs->buf, elements(probs), &ctx.run, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (ctx_end(&ctx) < 0) result = NULL;
        else result = rc ? raise_status(rc, err) : Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* lime_fit(z u8 [n, s], predictions f64 [n, k], labels i64 [l], options_json, features i32 out [l, s],
            weights f64 out [l, s], intercept f64 out [l], score f64 out [l], local_pred f64 out [l],
            sample_weights f64 out [n] or None) */
static PyObject *py_lime_fit(PyObject *self, PyObject *args) {
    PyObject *zo, *po, *lo, *fo, *wo, *io, *so, *qo, *swo, *result = NULL;
    const char *options;
    if (!PyArg_ParseTuple(args, "OOOsOOOOOO", &zo, &po, &lo, &options, &fo, &wo, &io, &so, &qo, &swo)) return NULL;
    buffers b = {0};
    Py_buffer *z = take(&b, zo, 'B', READ, 2, "z");
    Py_buffer *preds = take(&b, po, 'd', READ, 2, "predictions");
    Py_buffer *labels = take(&b, lo, 'q', READ, 1, "labels");
    Py_buffer *features = take(&b, fo, 'i', WRITE, 2, "features");
    Py_buffer *weights = take(&b, wo, 'd', WRITE, 2, "weights");
    Py_buffer *intercept = take(&b, io, 'd', WRITE, 1, "intercept");
    Py_buffer *score = take(&b, so, 'd', WRITE, 1, "score");
    Py_buffer *local = take(&b, qo, 'd', WRITE, 1, "local_pred");
    Py_buffer *sample_weights = take(&b, swo, 'd', WRITE | OPTIONAL, 1, "sample_weights");
    if (!b.failed && check(&b, preds->shape[0] == z->shape[0], "predictions need one row per sample") &&
        check(&b, elements(weights) == elements(features), "features and weights must have the same shape") &&
        check(&b, intercept->shape[0] == labels->shape[0] && score->shape[0] == labels->shape[0] &&
                      local->shape[0] == labels->shape[0], "intercept, score and local_pred need one value per label") &&
        check(&b, !sample_weights || sample_weights->shape[0] == z->shape[0], "sample_weights needs one value per sample")) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_lime_fit(z->buf, z->shape[0], z->shape[1], preds->buf, preds->shape[1], labels->buf, labels->shape[0], options,
                         features->buf, weights->buf, elements(features), intercept->buf, score->buf, local->buf,
                         sample_weights ? sample_weights->buf : NULL, err, sizeof err);
        Py_END_ALLOW_THREADS
        result = rc ? raise_status(rc, err) : Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

PyMethodDef explain_methods[] = {
    {"superpixels", py_superpixels, METH_VARARGS, NULL},
    {"lime_samples", py_lime_samples, METH_VARARGS, NULL},
    {"lime_hidden_image", py_lime_hidden_image, METH_VARARGS, NULL},
    {"lime_perturb", py_lime_perturb, METH_VARARGS, NULL},
    {"lime_classify", py_lime_classify, METH_VARARGS, NULL},
    {"lime_fit", py_lime_fit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
