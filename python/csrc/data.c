/* data.c: generated data sets (shapes, phantoms), PNG files and image resizing. */
#include "glue.h"

/* make_shapes(n_per_class, classes, size, channels, seed, images f32 out, labels i64 out,
   masks u8 out or None) */
static PyObject *py_make_shapes(PyObject *self, PyObject *args) {
    long long n_per_class;
    int classes, size, channels;
    unsigned long long seed;
    PyObject *io, *lo, *mo = Py_None, *result = NULL;
    if (!PyArg_ParseTuple(args, "LiiiKOO|O", &n_per_class, &classes, &size, &channels, &seed, &io, &lo, &mo)) return NULL;
    buffers b = {0};
    Py_buffer *images = take(&b, io, 'f', WRITE, -1, "images");
    Py_buffer *labels = take(&b, lo, 'q', WRITE, -1, "labels");
    Py_buffer *masks = take(&b, mo, 'B', WRITE | OPTIONAL, -1, "masks");
    if (!b.failed) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_make_shapes(n_per_class, classes, size, channels, seed, images->buf, elements(images), labels->buf,
                            elements(labels), masks ? masks->buf : NULL, elements(masks), err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* make_phantom(domain, counts i64 [k], size, seed, channels_last, images f32 out, labels i64 out,
   masks u8 out or None, callback) */
static PyObject *py_make_phantom(PyObject *self, PyObject *args) {
    const char *domain;
    int size, channels_last;
    unsigned long long seed;
    PyObject *co, *io, *lo, *mo, *callback, *result = NULL;
    if (!PyArg_ParseTuple(args, "sOiKpOOOO", &domain, &co, &size, &seed, &channels_last, &io, &lo, &mo, &callback)) return NULL;
    buffers b = {0};
    Py_buffer *counts = take(&b, co, 'q', READ, 1, "counts");
    Py_buffer *images = take(&b, io, 'f', WRITE, -1, "images");
    Py_buffer *labels = take(&b, lo, 'q', WRITE, 1, "labels");
    Py_buffer *masks = take(&b, mo, 'B', WRITE | OPTIONAL, -1, "masks");
    if (!b.failed && check(&b, elements(counts) <= INT32_MAX, "too many classes")) {
        char err[ERR_LEN] = "";
        call_ctx ctx;
        ctx_begin(&ctx, callback);
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_make_phantom(domain, counts->buf, (int32_t)elements(counts), size, seed, channels_last, images->buf,
                             elements(images), labels->buf, elements(labels), masks ? masks->buf : NULL, elements(masks),
                             &ctx.run, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (ctx_end(&ctx) < 0) result = NULL;
        else if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* resize(x f32 [n, h, w, c], y f32 [n, out_h, out_w, c]) */
static PyObject *py_resize(PyObject *self, PyObject *args) {
    PyObject *xo, *yo, *result = NULL;
    if (!PyArg_ParseTuple(args, "OO", &xo, &yo)) return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x");
    Py_buffer *y = take(&b, yo, 'f', WRITE, 4, "y");
    if (!b.failed && check(&b, x->shape[0] == y->shape[0] && x->shape[3] == y->shape[3],
                           "x and y must hold the same number of images and channels")) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_resize(x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[1], y->shape[2], y->buf,
                       elements(y), err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    release(&b);
    return result;
}

/* png_probe(path) -> (width, height, channels, bit_depth) */
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

/* png_read(path, out uint8 or uint16 [h, w, c]) */
static PyObject *py_png_read(PyObject *self, PyObject *args) {
    PyObject *path_obj, *oo;
    if (!PyArg_ParseTuple(args, "O&O", PyUnicode_FSConverter, &path_obj, &oo)) return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(oo, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        Py_DECREF(path_obj);
        return NULL;
    }
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

/* png_write(path, samples uint8 or uint16 [h, w, c], bit_depth) */
static PyObject *py_png_write(PyObject *self, PyObject *args) {
    PyObject *path_obj, *so, *result = NULL;
    int depth;
    if (!PyArg_ParseTuple(args, "O&Oi", PyUnicode_FSConverter, &path_obj, &so, &depth)) return NULL;
    buffers b = {0};
    Py_buffer *s = take(&b, so, depth == 16 ? 'H' : 'B', READ, 3, "samples");
    if (!b.failed) {
        char err[ERR_LEN] = "";
        int32_t rc;
        const char *path = PyBytes_AS_STRING(path_obj);
        Py_BEGIN_ALLOW_THREADS
        rc = ms_png_write(path, s->buf, s->shape[1], s->shape[0], (int32_t)s->shape[2], depth, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    release(&b);
    Py_DECREF(path_obj);
    return result;
}

PyMethodDef data_methods[] = {
    {"make_shapes", py_make_shapes, METH_VARARGS, NULL},
    {"make_phantom", py_make_phantom, METH_VARARGS, NULL},
    {"resize", py_resize, METH_VARARGS, NULL},
    {"png_probe", py_png_probe, METH_VARARGS, NULL},
    {"png_read", py_png_read, METH_VARARGS, NULL},
    {"png_write", py_png_write, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
