"""JAX as its users write it: pure functions, ``jax.value_and_grad``, ``jax.jit``, and the
whole epoch as one compiled program.

The parameters are a list of ``(W, b)`` arrays (a pytree) and every function of them is
pure: ``feedforward`` maps them and a batch to the output activations, ``mean_cost`` to the
batch's mean cost, and ``jax.value_and_grad(mean_cost)`` gives the cost with every
gradient -- backpropagation derived by JAX, not written by hand. An SGD step is a
``tree.map`` of ``p - lr * g`` over parameters and gradients.

An epoch is ``lax.scan`` of that step over the mini-batches' example indices: one XLA
program gathers each mini-batch from the training set held on the device, steps, and
carries the parameters to the next, with no return to Python between steps. ``scan``
needs equal-size steps, so the book's short last mini-batch is the same program run once
more over a (1, r) index array. XLA compiles a program per shape, so ``warm_up`` compiles
both ahead of time (``jit(...).lower(...).compile()``) and records the seconds; an epoch of
shapes not warmed compiles on its first call, outside any benchmark's timer (the suites
warm up first). JAX's persistent cache (``JAX_COMPILATION_CACHE_DIR``) keeps compiled
programs across processes.

Threads: XLA sizes its CPU thread pool when jax is imported and offers no call to change
it later, so nnbench does not pin it: ``threads()`` says "not pinned", and every table
marks this implementation's timings so.

float32 only: float64 in JAX is a process-wide switch (``jax_enable_x64``) that would change
every other JAX computation in the process.
"""
import math
import os
import time

import numpy as np

from .core.base import Network
from .core.registry import Implementation

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:            # an optional extra: unavailable, never an import error
    jax, _MISSING = None, f"needs jax: pip install 'nnbench[jax]' ({exc})"
else:
    _MISSING = None


# -- the mathematics: pure functions of (params, batch) ----------------------------------------
#: float32 products computed in float32 on every device. JAX's default precision lets XLA use
#: TF32 on a GPU from Ampere on (a 10-bit mantissa), which the reference's float32 tolerances
#: refuse; torch keeps TF32 off for the same reason (impls/core/torch_base.py). Gradients derived
#: by jax.grad inherit it. On the CPU it changes nothing.
PRECISION = "highest"


def weighted_output(params, X, hidden):
    """Output layer's weighted input z^L for a batch X (rows are examples)."""
    a = X
    for W, b in params[:-1]:
        z = jnp.matmul(a, W.T, precision=PRECISION) + b
        a = jax.nn.relu(z) if hidden == "relu" else jax.nn.sigmoid(z)
    W, b = params[-1]
    return jnp.matmul(a, W.T, precision=PRECISION) + b


def feedforward(params, X, hidden, output):
    """Output activations a^L: the cost's non-linearity applied to z^L."""
    z = weighted_output(params, X, hidden)
    return jax.nn.softmax(z) if output == "softmax_crossentropy" else jax.nn.sigmoid(z)


def mean_cost(params, X, y, hidden, output):
    z = weighted_output(params, X, hidden)
    if output == "softmax_crossentropy":
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1))
    a = jax.nn.sigmoid(z)
    return 0.5 * jnp.mean(jnp.sum((a - jax.nn.one_hot(y, a.shape[1], dtype=a.dtype)) ** 2, axis=1))


def sgd_step(params, X, y, lr, hidden, output):
    cost, nabla = jax.value_and_grad(mean_cost)(params, X, y, hidden, output)
    return jax.tree.map(lambda p, g: p - lr * g, params, nabla), cost


def train_batches(params, X_train, y_train, batches, lr, hidden, output):
    """SGD over ``batches`` (k, m) of example indices, in order: (params, summed batch costs)."""
    def step(params, idx):
        return sgd_step(params, X_train[idx], y_train[idx], lr, hidden, output)
    params, costs = jax.lax.scan(step, params, batches)
    return params, jnp.sum(costs)


STATIC = ("hidden", "output")


def _jit(fn, static=STATIC):
    return jax.jit(fn, static_argnames=static) if jax else None


jit_feedforward = _jit(feedforward)
jit_value_and_grad = _jit(jax.value_and_grad(mean_cost) if jax else None)
jit_sgd_step = _jit(sgd_step)
jit_train_batches = _jit(train_batches)


class JaxNetwork(Network):
    dtypes = ("float32",)
    compile_cache_env = "JAX_COMPILATION_CACHE_DIR"

    @classmethod
    def unavailable_reason(cls, device="cpu", **options):
        if _MISSING:
            return _MISSING
        if not _devices(device):
            return f"no {device} device in this jax ({jax.__version__}, backend {jax.default_backend()})"
        return None

    def __init__(self, spec, device="cpu"):
        super().__init__(spec)
        self.device = _devices(device)[0]
        self.static = {"hidden": spec.hidden, "output": spec.output}
        self.compile_seconds = 0.0
        self._epochs = {}          # (k, m, n) -> the program for k mini-batches of m from n examples
        self._last = None          # the latest result, for sync()

    def _put(self, a, dtype):
        return jax.device_put(np.asarray(a, dtype=dtype), self.device)

    def _set_params(self, params):
        self.params = [(self._put(W, self.np_dtype), self._put(b, self.np_dtype)) for W, b in params]
        self._last = self.params

    def get_params(self):
        return [(np.array(W), np.array(b)) for W, b in self.params]

    def asarray(self, X):
        return self._put(X, self.np_dtype)

    def aslabels(self, y):
        return self._put(y, np.int32)

    def to_numpy(self, a):
        return np.array(a)

    def sync(self):
        jax.block_until_ready(self._last)

    # -- the mathematics ---------------------------------------------------------------------------
    def feedforward(self, X):
        self._last = jit_feedforward(self.params, X, **self.static)
        return self._last

    def backprop(self, X, y):
        self._last = jit_value_and_grad(self.params, X, y, **self.static)
        return self._last

    def update_mini_batch(self, X, y, lr):
        self.params, cost = jit_sgd_step(self.params, X, y, lr, **self.static)
        self._last = cost
        return cost

    # -- an epoch: one compiled program for the full mini-batches, one for the short last ---------
    def _program(self, k, m):
        """The compiled epoch over k mini-batches of m examples, compiled on first use."""
        key = (k, m, self.n_train)
        if key not in self._epochs:
            start = time.perf_counter()
            batches = jax.ShapeDtypeStruct((k, m), jnp.int32)
            self._epochs[key] = jit_train_batches.lower(self.params, self.X_train, self.y_train, batches,
                                                         np.float32(0), **self.static).compile()
            self.compile_seconds += time.perf_counter() - start
        return self._epochs[key]

    def _shapes(self, n, batch_size):
        k, r = divmod(n, batch_size)
        return [(k, batch_size)] * bool(k) + [(1, r)] * bool(r)

    def warm_up(self, batch_size, n=None):
        start = time.perf_counter()
        for k, m in self._shapes(n or self.n_train, batch_size):
            self._program(k, m)
        return time.perf_counter() - start

    def train_epoch(self, order, batch_size, lr):
        order = np.asarray(order, dtype=np.int32)
        total, done = 0.0, 0
        for k, m in self._shapes(len(order), batch_size):
            batches = jax.device_put(order[done:done + k * m].reshape(k, m), self.device)
            self.params, cost = self._program(k, m)(self.params, self.X_train, self.y_train, batches,
                                                    np.float32(lr))
            total, done = total + cost, done + k * m
        self._last = total
        return total / math.ceil(len(order) / batch_size)

    def threads(self):
        return {"xla": "not pinned: XLA sizes its CPU pool when jax is imported "
                       f"(XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r})"}


def _devices(platform):
    try:
        return jax.devices(platform)
    except RuntimeError:       # jax has no backend for that platform here
        return []


cpu = Implementation(JaxNetwork, device="cpu")
cuda = Implementation(JaxNetwork, device="gpu")
