/* ops.c: functional operations on arrays (convolution, matrix product), for tests, benchmarks and
   comparisons with other libraries. */
#include "glue.h"

/* conv2d_forward(x [n,cin,h,w], w [cout,cin/g,kh,kw], b [cout] or None, stride, padding, dilation, groups, y) */
static PyObject *py_conv2d_forward(PyObject *self, PyObject *args) {
    PyObject *xo, *wo, *bo, *yo, *result = NULL;
    long long stride, padding, dilation, groups;
    if (!PyArg_ParseTuple(args, "OOOLLLLO", &xo, &wo, &bo, &stride, &padding, &dilation, &groups, &yo)) return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x");
    Py_buffer *w = take(&b, wo, 'f', READ, 4, "weight");
    Py_buffer *bias = take(&b, bo, 'f', OPTIONAL, 1, "bias");
    Py_buffer *y = take(&b, yo, 'f', WRITE, -1, "y");
    if (b.failed) goto done;
    if (!check(&b, !bias || bias->shape[0] == w->shape[0], "bias must have one value per output channel")) goto done;
    if (!check(&b, w->shape[1] * groups == x->shape[1], "weight's input channels times groups must equal x's channels")) goto done;
    {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_conv2d_forward(x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->buf, w->shape[0], w->shape[2],
                               w->shape[3], bias ? bias->buf : NULL, stride, padding, dilation, groups, y->buf, elements(y),
                               err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
done:
    release(&b);
    return result;
}

/* conv2d_backward(x, w, dy, stride, padding, dilation, groups, dx or None, dw or None, db or None) */
static PyObject *py_conv2d_backward(PyObject *self, PyObject *args) {
    PyObject *xo, *wo, *dyo, *dxo, *dwo, *dbo, *result = NULL;
    long long stride, padding, dilation, groups;
    if (!PyArg_ParseTuple(args, "OOOLLLLOOO", &xo, &wo, &dyo, &stride, &padding, &dilation, &groups, &dxo, &dwo, &dbo))
        return NULL;
    buffers b = {0};
    Py_buffer *x = take(&b, xo, 'f', READ, 4, "x");
    Py_buffer *w = take(&b, wo, 'f', READ, 4, "weight");
    Py_buffer *dy = take(&b, dyo, 'f', READ, -1, "dy");
    Py_buffer *dx = take(&b, dxo, 'f', WRITE | OPTIONAL, -1, "dx");
    Py_buffer *dw = take(&b, dwo, 'f', WRITE | OPTIONAL, -1, "dweight");
    Py_buffer *db = take(&b, dbo, 'f', WRITE | OPTIONAL, -1, "dbias");
    if (b.failed) goto done;
    if (!check(&b, w->shape[1] * groups == x->shape[1], "weight's input channels times groups must equal x's channels")) goto done;
    if (!check(&b, (!dx || dx->len == x->len) && (!dw || dw->len == w->len) && (!db || db->len == w->shape[0] * 4),
               "gradient buffers must match x, weight and the output channels in size")) goto done;
    {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_conv2d_backward(x->buf, x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->buf, w->shape[0], w->shape[2],
                                w->shape[3], stride, padding, dilation, groups, dy->buf, elements(dy), dx ? dx->buf : NULL,
                                dw ? dw->buf : NULL, db ? db->buf : NULL, err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
done:
    release(&b);
    return result;
}

/* matmul(a [m,k], b [k,n], c [m,n]) */
static PyObject *py_matmul(PyObject *self, PyObject *args) {
    PyObject *ao, *bo, *co, *result = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &ao, &bo, &co)) return NULL;
    buffers set = {0};
    Py_buffer *a = take(&set, ao, 'f', READ, 2, "a");
    Py_buffer *b = take(&set, bo, 'f', READ, 2, "b");
    Py_buffer *c = take(&set, co, 'f', WRITE, 2, "c");
    if (!set.failed && check(&set, a->shape[1] == b->shape[0] && c->shape[0] == a->shape[0] && c->shape[1] == b->shape[1],
                             "matmul: shapes do not agree (a [m,k], b [k,n], c [m,n])")) {
        char err[ERR_LEN] = "";
        int32_t rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ms_matmul(a->buf, b->buf, c->buf, a->shape[0], b->shape[1], a->shape[1], err, sizeof err);
        Py_END_ALLOW_THREADS
        if (rc) raise_status(rc, err);
        else result = Py_NewRef(Py_None);
    }
    release(&set);
    return result;
}

PyMethodDef ops_methods[] = {
    {"conv2d_forward", py_conv2d_forward, METH_VARARGS, NULL},
    {"conv2d_backward", py_conv2d_backward, METH_VARARGS, NULL},
    {"matmul", py_matmul, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
