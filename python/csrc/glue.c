/* glue.c: errors, buffers, long calls, text results and handles for every part of the extension. */
#include "glue.h"

#include <string.h>

unsigned long main_thread_ident = 0;

/* ---- errors ---- */

PyObject *raise_status(int32_t status, const char *message) {
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
    PyErr_SetString(type, message && message[0] ? message : "medsynth engine error");
    return NULL;
}

/* ---- paths ---- */

int path_converter(PyObject *obj, void *out) {
    if (obj == NULL) return PyUnicode_FSConverter(NULL, out); /* cleanup call */
    /* PyUnicode_FSConverter rejects NUL bytes too, but with "embedded null byte", naming nothing */
    PyObject *fs = PyOS_FSPath(obj);
    if (!fs) return 0;
    int has_nul = 0;
    if (PyUnicode_Check(fs)) {
        Py_ssize_t n = PyUnicode_GetLength(fs);
        has_nul = n >= 0 && PyUnicode_FindChar(fs, 0, 0, n, 1) >= 0;
    } else if (PyBytes_Check(fs)) {
        has_nul = memchr(PyBytes_AS_STRING(fs), 0, (size_t)PyBytes_GET_SIZE(fs)) != NULL;
    }
    if (has_nul) {
        PyErr_Format(PyExc_ValueError, "path contains a NUL byte: %R", fs);
        Py_DECREF(fs);
        return 0;
    }
    int rc = PyUnicode_FSConverter(fs, out);
    Py_DECREF(fs);
    return rc;
}

/* ---- buffers ---- */

static const char *kind_name(char kind) {
    switch (kind) {
    case 'f': return "float32";
    case 'q': return "int64";
    case 'd': return "float64";
    case 'i': return "int32";
    case 'B': return "uint8";
    case 'H': return "uint16";
    default: return "?";
    }
}

static int format_matches(const Py_buffer *view, char kind) {
    const char *f = view->format ? view->format : "B";
    while (*f == '<' || *f == '=' || *f == '@') f++;
    switch (kind) {
    case 'f': return view->itemsize == 4 && strcmp(f, "f") == 0;
    case 'q': return view->itemsize == 8 && (strcmp(f, "q") == 0 || strcmp(f, "l") == 0);
    case 'd': return view->itemsize == 8 && strcmp(f, "d") == 0;
    case 'i': return view->itemsize == 4 && (strcmp(f, "i") == 0 || (strcmp(f, "l") == 0 && sizeof(long) == 4));
    case 'B': return view->itemsize == 1 && strcmp(f, "B") == 0;
    case 'H': return view->itemsize == 2 && strcmp(f, "H") == 0;
    default: return 0;
    }
}

Py_buffer *take(buffers *set, PyObject *obj, char kind, int flags, int ndim, const char *name) {
    if (set->failed) return NULL;
    if (obj == Py_None && (flags & OPTIONAL)) return NULL;
    if (set->count >= MAX_BUFFERS) {
        PyErr_SetString(PyExc_RuntimeError, "medsynth: too many buffers in one call");
        set->failed = 1;
        return NULL;
    }
    Py_buffer *view = &set->views[set->count];
    int writable = flags & WRITE;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer (e.g. a numpy array)", name,
                     writable ? " writable" : "");
        set->failed = 1;
        return NULL;
    }
    set->count++;
    if (!format_matches(view, kind)) {
        PyErr_Format(PyExc_TypeError, "%s must have dtype %s (got buffer format '%s')", name, kind_name(kind),
                     view->format ? view->format : "?");
        set->failed = 1;
        return NULL;
    }
    if (ndim >= 0 && view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, got %d", name, ndim, view->ndim);
        set->failed = 1;
        return NULL;
    }
    return view;
}

void release(buffers *set) {
    for (int i = 0; i < set->count; i++) PyBuffer_Release(&set->views[i]);
    set->count = 0;
}

Py_ssize_t elements(const Py_buffer *view) { return view && view->itemsize ? view->len / view->itemsize : 0; }

int check(buffers *set, int condition, const char *message) {
    if (!condition && !set->failed) {
        PyErr_SetString(PyExc_ValueError, message);
        set->failed = 1;
    }
    return condition;
}

/* ---- long calls ---- */

static volatile int32_t sigint_flag = 0;

static void on_sigint(int sig) {
    (void)sig;
    sigint_flag = 1;
}

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
void ctx_begin(call_ctx *ctx, PyObject *callback) {
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
int ctx_end(call_ctx *ctx) {
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

/* ---- text of any size ---- */

PyObject *read_text(text_fn fn, void *handle) {
    char err[ERR_LEN] = "";
    size_t needed = 0;
    int32_t rc = fn(handle, NULL, 0, &needed, err, sizeof err);
    if (rc != MS_OK && rc != MS_ERR_BUFFER_TOO_SMALL) return raise_status(rc, err);
    if (needed == 0) return raise_status(MS_ERR_RUNTIME, "the engine reported no text size");
    char *buf = PyMem_Malloc(needed);
    if (!buf) return PyErr_NoMemory();
    rc = fn(handle, buf, needed, &needed, err, sizeof err);
    PyObject *result = rc ? raise_status(rc, err) : PyUnicode_FromString(buf);
    PyMem_Free(buf);
    return result;
}

/* ---- handles ---- */

static void capsule_destroy(PyObject *capsule) {
    const handle_kind *kind = PyCapsule_GetContext(capsule);
    void *handle = kind ? PyCapsule_GetPointer(capsule, kind->capsule) : NULL;
    if (handle) kind->destroy(handle);
}

PyObject *wrap_handle(void *handle, const handle_kind *kind) {
    PyObject *capsule = PyCapsule_New(handle, kind->capsule, capsule_destroy);
    if (!capsule) {
        kind->destroy(handle);
        return NULL;
    }
    PyCapsule_SetContext(capsule, (void *)kind);
    return capsule;
}

void *unwrap_handle(PyObject *capsule, const handle_kind *kind) {
    if (!PyCapsule_IsValid(capsule, kind->capsule)) {
        PyErr_Format(PyExc_TypeError, "expected a medsynth %s handle", kind->what);
        return NULL;
    }
    return PyCapsule_GetPointer(capsule, kind->capsule);
}

PyObject *handle_create(PyObject *args, const handle_kind *kind) {
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

PyObject *handle_load(PyObject *args, const handle_kind *kind) {
    PyObject *path_obj;
    char err[ERR_LEN] = "";
    void *handle = NULL;
    if (!PyArg_ParseTuple(args, "O&", path_converter, &path_obj)) return NULL;
    int32_t rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = kind->load(path, &handle, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc) return raise_status(rc, err);
    return wrap_handle(handle, kind);
}

PyObject *handle_save(PyObject *args, const handle_kind *kind) {
    PyObject *cap, *path_obj;
    const char *options = NULL;
    char err[ERR_LEN] = "";
    if (!PyArg_ParseTuple(args, "OO&|z", &cap, path_converter, &path_obj, &options)) return NULL;
    void *handle = unwrap_handle(cap, kind);
    if (!handle) {
        Py_DECREF(path_obj);
        return NULL;
    }
    int32_t rc;
    const char *path = PyBytes_AS_STRING(path_obj);
    Py_BEGIN_ALLOW_THREADS
    rc = kind->save(handle, path, options, err, sizeof err);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (rc) return raise_status(rc, err);
    Py_RETURN_NONE;
}

static PyObject *handle_text(PyObject *args, const handle_kind *kind, text_fn fn) {
    PyObject *cap;
    if (!PyArg_ParseTuple(args, "O", &cap)) return NULL;
    void *handle = unwrap_handle(cap, kind);
    return handle ? read_text(fn, handle) : NULL;
}

PyObject *handle_config(PyObject *args, const handle_kind *kind) { return handle_text(args, kind, kind->config); }
PyObject *handle_result(PyObject *args, const handle_kind *kind) { return handle_text(args, kind, kind->result); }
