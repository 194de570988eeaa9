"""Importing the module crashes the interpreter (a broken native extension)."""
import ctypes

from impls.numpy_impl import NumpyNetwork

ctypes.string_at(0)


class SegfaultsOnImport(NumpyNetwork):
    pass
