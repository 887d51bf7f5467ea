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
    if (!PyArg_ParseTuple(args, "O&", path_converter, &path_obj)) return NULL;
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
    if (!PyArg_ParseTuple(args, "O&O", path_converter, &path_obj, &oo)) return NULL;
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
    if (!PyArg_ParseTuple(args, "O&Oi", path_converter, &path_obj, &so, &depth)) return NULL;
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

/* set_max_image_pixels(n): the PNG readers' pixel limit, 0 for none */
static PyObject *py_set_max_image_pixels(PyObject *self, PyObject *args) {
    long long n;
    char err[ERR_LEN] = "";
    if (!PyArg_ParseTuple(args, "L", &n)) return NULL;
    int32_t rc = ms_set_max_image_pixels((int64_t)n, err, sizeof err);
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

/* get_max_image_pixels() -> int (0: no limit) */
static PyObject *py_get_max_image_pixels(PyObject *self, PyObject *args) {
    int64_t n = 0;
    char err[ERR_LEN] = "";
    int32_t rc = ms_get_max_image_pixels(&n, err, sizeof err);
    if (rc) return raise_status(rc, err);
    return PyLong_FromLongLong((long long)n);
}

/* The header text of a safetensors file through read_text, whose "handle" is the path. */
static int32_t safetensors_header_text(void *path, char *buf, size_t len, size_t *needed, char *err, size_t err_len) {
    return ms_safetensors_header((const char *)path, buf, len, needed, err, err_len);
}

/* safetensors_header(path) -> JSON text of the validated header */
static PyObject *py_safetensors_header(PyObject *self, PyObject *args) {
    PyObject *path_obj;
    if (!PyArg_ParseTuple(args, "O&", path_converter, &path_obj)) return NULL;
    PyObject *result = read_text(safetensors_header_text, PyBytes_AS_STRING(path_obj));
    Py_DECREF(path_obj);
    return result;
}

/* safetensors_image_header(data) -> JSON text of the validated header of a safetensors image
   (a uint8 buffer holding a whole file), its data checked against medsynth_sha256 when present */
static int32_t image_header_text(void *view, char *buf, size_t len, size_t *needed, char *err, size_t err_len) {
    const Py_buffer *data = view;
    return ms_safetensors_image_header(data->buf, (size_t)data->len, buf, len, needed, err, err_len);
}

static PyObject *py_safetensors_image_header(PyObject *self, PyObject *args) {
    PyObject *obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "O", &obj)) return NULL;
    buffers b = {0};
    Py_buffer *data = take(&b, obj, 'B', READ, 1, "data");
    if (!b.failed) result = read_text(image_header_text, data);
    release(&b);
    return result;
}

/* The tensors of a write: a list of C-contiguous buffers as the engine's data/lengths arrays. */
typedef struct {
    Py_ssize_t count, taken;
    Py_buffer *views;
    const void **data;
    size_t *lengths;
} tensor_list;

static void tensor_list_release(tensor_list *t) {
    for (Py_ssize_t i = 0; i < t->taken; i++) PyBuffer_Release(&t->views[i]);
    PyMem_Free(t->views);
    PyMem_Free(t->data);
    PyMem_Free(t->lengths);
}

/* Returns 0 with a Python exception set on failure (release t either way). */
static int tensor_list_take(tensor_list *t, PyObject *list) {
    t->count = PyList_GET_SIZE(list);
    size_t n = (size_t)(t->count > 0 ? t->count : 1);
    t->views = PyMem_Calloc(n, sizeof(Py_buffer));
    t->data = PyMem_Calloc(n, sizeof(void *));
    t->lengths = PyMem_Calloc(n, sizeof(size_t));
    if (!t->views || !t->data || !t->lengths) {
        PyErr_NoMemory();
        return 0;
    }
    for (; t->taken < t->count; t->taken++) {
        Py_ssize_t i = t->taken;
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, i), &t->views[i], PyBUF_C_CONTIGUOUS) < 0) return 0;
        t->data[i] = t->views[i].buf;
        t->lengths[i] = (size_t)t->views[i].len;
    }
    return 1;
}

/* safetensors_write(path, header_json, [contiguous arrays], integrity) */
static PyObject *py_safetensors_write(PyObject *self, PyObject *args) {
    PyObject *path_obj, *list, *result = NULL;
    const char *header;
    int integrity;
    if (!PyArg_ParseTuple(args, "O&sO!p", path_converter, &path_obj, &header, &PyList_Type, &list, &integrity)) return NULL;
    tensor_list t = {0};
    if (tensor_list_take(&t, list)) {
        char err[ERR_LEN] = "";
        int32_t rc;
        const char *path = PyBytes_AS_STRING(path_obj);
        Py_BEGIN_ALLOW_THREADS
        rc = ms_safetensors_write(path, header, t.data, t.lengths, (int64_t)t.count, integrity, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    tensor_list_release(&t);
    Py_DECREF(path_obj);
    return result;
}

/* safetensors_image(header_json, [contiguous arrays], integrity) -> bytearray: the bytes
   safetensors_write would write to a file */
static PyObject *py_safetensors_image(PyObject *self, PyObject *args) {
    PyObject *list, *result = NULL;
    const char *header;
    int integrity;
    if (!PyArg_ParseTuple(args, "sO!p", &header, &PyList_Type, &list, &integrity)) return NULL;
    tensor_list t = {0};
    if (tensor_list_take(&t, list)) {
        char err[ERR_LEN] = "";
        size_t needed = 0;
        int32_t rc = ms_safetensors_image(header, t.data, t.lengths, (int64_t)t.count, integrity, NULL, 0, &needed, err,
                                          sizeof err);
        if (rc != MS_OK && rc != MS_ERR_BUFFER_TOO_SMALL) raise_status(rc, err);
        else if ((result = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)needed)) != NULL) {
            uint8_t *buf = (uint8_t *)PyByteArray_AS_STRING(result);
            Py_BEGIN_ALLOW_THREADS
            rc = ms_safetensors_image(header, t.data, t.lengths, (int64_t)t.count, integrity, buf, needed, &needed, err,
                                      sizeof err);
            Py_END_ALLOW_THREADS
            if (rc) {
                Py_CLEAR(result);
                raise_status(rc, err);
            }
        }
    }
    tensor_list_release(&t);
    return result;
}

PyMethodDef data_methods[] = {
    {"set_max_image_pixels", py_set_max_image_pixels, METH_VARARGS, NULL},
    {"get_max_image_pixels", py_get_max_image_pixels, METH_NOARGS, NULL},
    {"safetensors_header", py_safetensors_header, METH_VARARGS, NULL},
    {"safetensors_write", py_safetensors_write, METH_VARARGS, NULL},
    {"safetensors_image_header", py_safetensors_image_header, METH_VARARGS, NULL},
    {"safetensors_image", py_safetensors_image, METH_VARARGS, NULL},
    {"make_shapes", py_make_shapes, METH_VARARGS, NULL},
    {"make_phantom", py_make_phantom, METH_VARARGS, NULL},
    {"resize", py_resize, METH_VARARGS, NULL},
    {"png_probe", py_png_probe, METH_VARARGS, NULL},
    {"png_read", py_png_read, METH_VARARGS, NULL},
    {"png_write", py_png_write, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
