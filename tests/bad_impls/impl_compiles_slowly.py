"""A control that conforms but compiles for a while when constructed, as Numba does: `nnbench`
must say it is compiling and how long that took (measured, not a figure written down)."""
import time

from impls.numpy_impl import NumpyNetwork

COMPILE_SECONDS = 0.3


class CompilesSlowly(NumpyNetwork):
    compile_cache_env = "SLOW_COMPILE_CACHE_DIR"

    def __init__(self, spec):
        super().__init__(spec)
        time.sleep(COMPILE_SECONDS)         # stands for the compiler
        self.compile_seconds = COMPILE_SECONDS
