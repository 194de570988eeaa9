"""Numba: the same equations as explicit loops, compiled by LLVM, a whole epoch per call.

``numpy`` hands each layer to BLAS as a matrix product and pays Python and call
overhead for every mini-batch: at batch 10 that overhead is most of an epoch. Here the
loops of BP1-BP4 are written out (``impls.numba_impl.kernels``, no BLAS), Numba compiles
them, and ``train_epoch`` is ONE compiled call that walks every mini-batch itself.
The loops are blocked so each loaded number feeds several multiply-adds, and each
layer's neurons are split between threads with ``prange``.

Threads: Numba's threading layer is chosen as OpenMP first (a parallel region starts about
seventy times faster than with 'workqueue', which is too slow for regions per mini-batch:
docs/measurements.md, "numba"; the step-overhead study shows what a step costs). That
is the system's libgomp, which torch also binds to if it is imported after Numba has
started its threads (otherwise torch keeps the copy it bundles); OpenBLAS, behind
``numpy``, runs its own pthreads. Numba hands its own thread count to every region, so
``torch.set_num_threads`` and threadpoolctl limits do not change it: ``set_threads(n)``
does, and the kernels split work into exactly n parts. Results do not depend on n.

Profiling: py-spy cannot see inside compiled code. With ``NNBENCH_NUMBA_PROFILE=1``
(or ``profile=True``) ``train_epoch`` runs the split epoch (``impls.numba_impl.split``): the
mini-batch loop in Python, each of BP1-BP4, the forward layers and the SGD update a Python
function of its own making one compiled call, so a profile names every one. The results are
bit-for-bit those of the fused epoch, which also starts the next mini-batch's first layer inside
the update (one parallel region per mini-batch instead of one per step); what splitting costs
is measured by ``bench.profiling --split`` (docs/profiling.md).
"""
from __future__ import annotations

import os
import time

import numba
import numpy as np

from ..core.base import Network
from ..core.errors import ConfigError

# Prefer OpenMP unless the user chose a layer (must happen before Numba starts threads).
if numba.config.THREADING_LAYER == "default" and "NUMBA_THREADING_LAYER_PRIORITY" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

from . import kernels as K  # noqa: E402  (after the threading-layer choice)
from . import split  # noqa: E402

PROFILE_ENV = "NNBENCH_NUMBA_PROFILE"
#: seconds the first calls of each dtype's kernels took in this process: compiling them,
#: or loading them from Numba's disk cache. Users pay this once per process.
first_call_seconds: dict[str, float] = {}


class NumbaNetwork(Network):
    dtypes = ("float32", "float64")
    #: where Numba caches compiled kernels: the epoch-grid study points it at an empty
    #: directory to measure a cold start
    compile_cache_env = "NUMBA_CACHE_DIR"

    def __init__(self, spec, profile: bool | None = None):
        super().__init__(spec)
        self.sizes = np.array(spec.sizes, dtype=np.int64)
        self.hidden = K.SIGMOID if spec.hidden == "sigmoid" else K.RELU
        self.output = K.SIGMOID_QUADRATIC if spec.output == "sigmoid_quadratic" else K.SOFTMAX_CROSSENTROPY
        if profile is None:
            profile = os.environ.get(PROFILE_ENV, "0") not in ("", "0")
        self.profile = profile
        self.n_threads = numba.get_num_threads()   # also starts the threading layer
        n_params = sum(n_out * (n_in + 1) for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:]))
        self.theta = np.zeros(n_params, self.np_dtype)
        self.compile_seconds = self._compile()

    def _compile(self) -> float:
        """Call every kernel once on two examples, with the argument types real calls
        use, so no epoch ever waits for the compiler. Returns the first call's seconds."""
        if self.spec.dtype in first_call_seconds:
            return first_call_seconds[self.spec.dtype]
        start = time.perf_counter()
        theta = np.full_like(self.theta, 0.01)
        X, y = np.zeros((2, self.spec.sizes[0]), self.np_dtype), np.zeros(2, np.int64)
        order = np.arange(2, dtype=np.int64)
        K.train_epoch(theta, self.sizes, self.hidden, self.output, X, y, order, 1, 0.1, self.n_threads)
        K.feedforward(theta, self.sizes, self.hidden, self.output, X, self.n_threads)
        K.minibatch(theta, self.sizes, self.hidden, self.output, X, y, 0.1, self.n_threads)
        split.train_epoch(theta, self.sizes, self.hidden, self.output, X, y, order, 1, 0.1, self.n_threads)
        first_call_seconds[self.spec.dtype] = time.perf_counter() - start
        return first_call_seconds[self.spec.dtype]

    # -- parameters: views into one flat vector ----------------------------------------------
    def _views(self, flat):
        views, p = [], 0
        for (n_out, n_in), _ in self.spec.shapes:
            views.append((flat[p:p + n_out * n_in].reshape(n_out, n_in), flat[p + n_out * n_in:p + n_out * (n_in + 1)]))
            p += n_out * (n_in + 1)
        return views

    def _set_params(self, params):
        for (W, b), (W_new, b_new) in zip(self._views(self.theta), params):
            W[...], b[...] = W_new, b_new

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in self._views(self.theta)]

    # -- arrays: C-contiguous and writable, as the kernels were compiled for ------------------
    def asarray(self, X):
        # Numba types a read-only array differently, which would mean a fresh compile
        X = np.ascontiguousarray(X, dtype=self.np_dtype)
        return X if X.flags.writeable else X.copy()

    def aslabels(self, y):
        y = np.ascontiguousarray(y, dtype=np.int64)
        return y if y.flags.writeable else y.copy()

    # -- the mathematics (in impls.numba_impl.kernels) ------------------------------------------------
    # Compiled loops do not check bounds: a wrong width, label or index would read past an
    # array instead of raising, so they are checked here (O(batch), outside the loops).
    def feedforward(self, X):
        self.check_batch(X)
        numba.set_num_threads(self.n_threads)
        return K.feedforward(self.theta, self.sizes, self.hidden, self.output, X, self.n_threads)

    def backprop(self, X, y):
        self.check_batch(X, y)
        numba.set_num_threads(self.n_threads)
        cost, grad = K.minibatch(self.theta, self.sizes, self.hidden, self.output, X, y, 0.0, self.n_threads)
        return cost, self._views(grad)

    def update_mini_batch(self, X, y, lr):
        self.check_batch(X, y)
        numba.set_num_threads(self.n_threads)
        return K.minibatch(self.theta, self.sizes, self.hidden, self.output, X, y, float(lr), self.n_threads)[0]

    def check_order(self, order, batch_size):
        """The epoch's example order as the kernels take it, checked."""
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        order = self.aslabels(order)
        if order.size and (order.min() < 0 or order.max() >= self.n_train):
            raise ConfigError(f"example order must index the {self.n_train} training examples, "
                              f"got values {order.min()}..{order.max()}")
        return order

    def train_epoch(self, order, batch_size, lr):
        order = self.check_order(order, batch_size)
        numba.set_num_threads(self.n_threads)
        epoch = split.train_epoch if self.profile else K.train_epoch
        return epoch(self.theta, self.sizes, self.hidden, self.output, self.X_train, self.y_train,
                     order, batch_size, float(lr), self.n_threads)

    # -- threads ---------------------------------------------------------------------------------
    def threads(self):
        return {"numba": self.n_threads, "numba_layer": numba.threading_layer()}

    def set_threads(self, n):
        limit = numba.config.NUMBA_NUM_THREADS
        if not 1 <= n <= limit:
            raise ConfigError(f"numba can use 1 to {limit} threads here (NUMBA_NUM_THREADS, "
                              f"fixed when it starts), not {n}")
        numba.set_num_threads(n)
        self.n_threads = n
