"""A control that conforms but compiles for a while when constructed, as Numba does: `nnbench`
must say it is compiling and how long that took (measured, not a figure written down). As
Numba's kernels, it compiles once per dtype in a process; later networks of that dtype reuse it."""
import time

from impls.numpy_impl import NumpyNetwork

COMPILE_SECONDS = 0.3
#: the dtypes compiled in this process
compiled: set[str] = set()


class CompilesSlowly(NumpyNetwork):
    compile_cache_env = "SLOW_COMPILE_CACHE_DIR"

    def __init__(self, spec):
        super().__init__(spec)
        if spec.dtype not in compiled:
            time.sleep(COMPILE_SECONDS)     # stands for the compiler
            compiled.add(spec.dtype)
        self.compile_seconds = COMPILE_SECONDS
