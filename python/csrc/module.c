/* module.c: the module `medsynth._engine`, gathering the method table of every file. A new file
   of bindings adds its table to `tables` (and its declaration to glue.h). */
#include "glue.h"

static PyMethodDef *const tables[] = {library_methods, model_methods, data_methods, ops_methods, explain_methods};

static PyMethodDef methods[128];

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "medsynth._engine",
                                    "Low-level bindings to the medsynth engine's C ABI.", -1, methods};

PyMODINIT_FUNC PyInit__engine(void) {
    size_t count = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (PyMethodDef *m = tables[t]; m->ml_name; m++) {
            if (count + 1 >= sizeof methods / sizeof methods[0]) {
                PyErr_SetString(PyExc_ImportError, "medsynth._engine: too many methods for the table in module.c");
                return NULL;
            }
            methods[count++] = *m;
        }
    }
    methods[count] = (PyMethodDef){NULL, NULL, 0, NULL};

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
