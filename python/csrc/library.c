/* library.c: version, threads, memory statistics and the engine's registries. */
#include "glue.h"

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

/* The registry text for a topic travels through read_text, whose functions take a handle: here
   the "handle" is the topic string. */
static int32_t registry_text(void *topic, char *buf, size_t len, size_t *needed, char *err, size_t err_len) {
    return ms_registry((const char *)topic, buf, len, needed, err, err_len);
}

/* registry(topic) -> JSON text: architectures, samplers, defaults of an option set, ... */
static PyObject *py_registry(PyObject *self, PyObject *args) {
    const char *topic;
    if (!PyArg_ParseTuple(args, "s", &topic)) return NULL;
    return read_text(registry_text, (void *)topic);
}

PyMethodDef library_methods[] = {
    {"version", py_version, METH_NOARGS, "Engine version."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "Threads used by the engine."},
    {"set_num_threads", py_set_num_threads, METH_VARARGS, "Set the engine's thread count."},
    {"memory", py_memory, METH_NOARGS, "(current, peak) bytes of engine tensor memory."},
    {"memory_reset_peak", py_memory_reset_peak, METH_NOARGS, "Reset the peak memory counter."},
    {"registry", py_registry, METH_VARARGS, "JSON description of an engine registry or option set."},
    {NULL, NULL, 0, NULL},
};
