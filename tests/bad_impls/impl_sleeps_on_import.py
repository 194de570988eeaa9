"""Importing the module never finishes (a download, a lock, a prompt waiting for input)."""
import time

from impls.numpy_impl import NumpyNetwork

time.sleep(3600)


class SleepsOnImport(NumpyNetwork):
    pass
