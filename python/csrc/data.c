/* data.c: generated data sets and PNG files. */
#include "glue.h"

/* make_shapes(n_per_class, classes, size, channels, seed, images f32 out, labels i64 out) */
static PyObject *py_make_shapes(PyObject *self, PyObject *args) {
    long long n_per_class;
    int classes, size, channels;
    unsigned long long seed;
    PyObject *io, *lo, *result = NULL;
    if (!PyArg_ParseTuple(args, "LiiiKOO", &n_per_class, &classes, &size, &channels, &seed, &io, &lo)) return NULL;
    buffers b = {0};
    Py_buffer *images = take(&b, io, 'f', WRITE, -1, "images");
    Py_buffer *labels = take(&b, lo, 'q', WRITE, -1, "labels");
    if (!b.failed) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_make_shapes(n_per_class, classes, size, channels, seed, images->buf, elements(images), labels->buf,
                            elements(labels), err, sizeof err);
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

/* safetensors_write(path, header_json, [contiguous arrays], integrity) */
static PyObject *py_safetensors_write(PyObject *self, PyObject *args) {
    PyObject *path_obj, *list;
    const char *header;
    int integrity;
    if (!PyArg_ParseTuple(args, "O&sO!p", path_converter, &path_obj, &header, &PyList_Type, &list, &integrity)) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(list), taken = 0;
    Py_buffer *views = PyMem_Calloc((size_t)(count > 0 ? count : 1), sizeof(Py_buffer));
    const void **data = PyMem_Calloc((size_t)(count > 0 ? count : 1), sizeof(void *));
    size_t *lengths = PyMem_Calloc((size_t)(count > 0 ? count : 1), sizeof(size_t));
    PyObject *result = NULL;
    if (!views || !data || !lengths) {
        PyErr_NoMemory();
        goto done;
    }
    for (; taken < count; taken++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(list, taken), &views[taken], PyBUF_C_CONTIGUOUS) < 0) goto done;
        data[taken] = views[taken].buf;
        lengths[taken] = (size_t)views[taken].len;
    }
    char err[ERR_LEN] = "";
    int32_t rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = ms_safetensors_write(path, header, data, lengths, (int64_t)count, integrity, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (rc) raise_status(rc, err);
    else result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < taken; i++) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    PyMem_Free(data);
    PyMem_Free(lengths);
    Py_DECREF(path_obj);
    return result;
}

PyMethodDef data_methods[] = {
    {"set_max_image_pixels", py_set_max_image_pixels, METH_VARARGS, NULL},
    {"get_max_image_pixels", py_get_max_image_pixels, METH_NOARGS, NULL},
    {"safetensors_header", py_safetensors_header, METH_VARARGS, NULL},
    {"safetensors_write", py_safetensors_write, METH_VARARGS, NULL},
    {"make_shapes", py_make_shapes, METH_VARARGS, NULL},
    {"png_probe", py_png_probe, METH_VARARGS, NULL},
    {"png_read", py_png_read, METH_VARARGS, NULL},
    {"png_write", py_png_write, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
