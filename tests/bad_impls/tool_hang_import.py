"""A tool case: a module whose import hangs (a network call, a lock, a prompt). Whoever imports it to
profile it must be bounded by a timeout and say so in one line."""
import time

from impls.numpy_impl import NumpyNetwork

time.sleep(3600)


class NeverImported(NumpyNetwork):
    pass
