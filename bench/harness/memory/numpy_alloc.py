"""NumPy's allocations: every array buffer NumPy allocates, counted with their sizes through NumPy's
own memory-handler API (NEP 49, ``PyDataMem_SetHandler``), a counting handler installed for the
counted call only."""
from __future__ import annotations

import ctypes


class NumpyCounter:
    """A NEP 49 memory handler that counts and forwards to the C library's allocator.

    Arrays allocated under it keep a reference to it and free through it for the rest of
    their lives, so the handler and its callbacks live for the whole process."""
    _malloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _calloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
    _realloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _free = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

    def __init__(self):
        import numpy as np
        libc = ctypes.CDLL(None)
        for name, res, args in (("malloc", ctypes.c_void_p, [ctypes.c_size_t]),
                                ("calloc", ctypes.c_void_p, [ctypes.c_size_t, ctypes.c_size_t]),
                                ("realloc", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t]),
                                ("free", None, [ctypes.c_void_p])):
            getattr(libc, name).restype, getattr(libc, name).argtypes = res, args
        self.count = self.bytes = 0

        def on_malloc(ctx, size):
            self.count, self.bytes = self.count + 1, self.bytes + size
            return libc.malloc(size)

        def on_calloc(ctx, n, size):
            self.count, self.bytes = self.count + 1, self.bytes + n * size
            return libc.calloc(n, size)

        def on_realloc(ctx, ptr, size):
            self.count, self.bytes = self.count + 1, self.bytes + size
            return libc.realloc(ptr, size)

        self.callbacks = (self._malloc(on_malloc), self._calloc(on_calloc), self._realloc(on_realloc),
                          self._free(lambda ctx, ptr, size: libc.free(ptr)))

        class Allocator(ctypes.Structure):
            _fields_ = [("ctx", ctypes.c_void_p), ("malloc", self._malloc), ("calloc", self._calloc),
                        ("realloc", self._realloc), ("free", self._free)]

        class Handler(ctypes.Structure):
            _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", Allocator)]

        self.handler = Handler(b"nnbench_counting", 1, Allocator(None, *self.callbacks))
        api = ctypes.pythonapi
        api.PyCapsule_New.restype, api.PyCapsule_New.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p,
                                                                                   ctypes.c_void_p]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        self.capsule = api.PyCapsule_New(ctypes.addressof(self.handler), b"mem_handler", None)
        # NumPy's C-API table; slot 304 is PyDataMem_SetHandler (numpy/_core/include/numpy/__multiarray_api.h)
        table = ctypes.cast(api.PyCapsule_GetPointer(np._core._multiarray_umath._ARRAY_API, None),
                            ctypes.POINTER(ctypes.c_void_p))
        self.set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[304])

    def __call__(self, fn):
        start = (self.count, self.bytes)
        previous = self.set_handler(self.capsule)
        try:
            fn()
        finally:
            self.set_handler(previous)
        return self.count - start[0], self.bytes - start[1]


_counter: NumpyCounter | None = None


def count(fn) -> tuple[int, int]:
    """(allocations, bytes) NumPy made during ``fn()``. One handler serves the whole process
    (the arrays it allocated free through it), made on first use."""
    global _counter
    _counter = _counter or NumpyCounter()
    return _counter(fn)
