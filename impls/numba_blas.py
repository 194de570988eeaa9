"""Numba + BLAS: ``numba``'s compiled whole epoch, with BLAS's kernels for the products.

``numba`` writes every product as its own blocked loops; at batch >= 128 NumPy overtakes
it because OpenBLAS's SGEMM kernels are better than those loops, while at batch 10 NumPy
loses because it pays Python for every mini-batch. This keeps what each does well: the
mini-batch loop is ONE compiled call (no Python per step) and each product inside it is
one BLAS ``gemm`` call, made from Numba through SciPy's ``cython_blas`` (``gemm`` below):

- forward: ``Z[:, j0:j1] = A W[j0:j1]^T``, then bias and activation in a loop;
- BP2: ``delta_prev[:, k0:k1] = delta W[:, k0:k1]``, then sigma' in a loop;
- BP4 and the SGD step in ONE call: ``W[j0:j1] += (-eta) delta[:, j0:j1]^T A`` (gemm's
  alpha and beta), so the gradient is never written out and read back (``backprop``,
  which must return it, writes it instead: eta = 0).

What is not a product stays in loops: gathering the mini-batch's rows into one block (the
layout BLAS needs), softmax and BP1 (``numba``'s ``output_layer``), BP3.

Threads are ``numba``'s: each layer's neurons (BP2: its inputs) are split between Numba's
threads with ``prange``, and each thread calls BLAS on its share with BLAS's own pool held
at one thread for the call. As in ``numba``, the thread that updates rows of W_1 also
feeds the next mini-batch through them in the same parallel region (its inputs gathered
beforehand into a second buffer).

NOT bit-for-bit across thread counts: BLAS picks its kernel by block shape, so a neuron's
sums can round differently when the split moves (at some batch sizes they happen to agree).
The shared tests check it against the reference within tolerance.

How each step was chosen, by A/B epochs on the relu network (the figures, with machine, date
and commit: docs/measurements.md, "numba-blas"):

- products by BLAS instead of ``numba``'s loops: faster at every batch size (kept);
- the SGD step inside BP4's gemm (alpha = -eta, beta = 1) against the gradient then a loop:
  faster on 1 thread, mixed on 2 (kept);
- on 2 threads, neurons split between Numba's threads with BLAS at one thread, against one
  Numba thread calling a 2-thread BLAS: kept, because two spinning pools on two cores starve
  each other (an epoch many times slower), hence BLAS's limit inside every call;
- the gather of the mini-batch's rows split between threads (randomly ordered rows wait on
  memory): slightly faster (kept);
- dropped: ``numba``'s loops instead of BLAS for layers under its parallel threshold (a BLAS
  call's fixed cost on 10 x 30 x 10): better only at batch 10 on 1 thread, worse on 2.

What bounds it: BLAS itself on these shapes. On one thread the batch-32 forward and BP4 reach
well under half of the SGEMM peak: small products spend much of their time packing their
operands, and those two products are most of a batch-32 epoch.
"""
from __future__ import annotations

import time

import numba
import numpy as np
from numba import prange
from threadpoolctl import ThreadpoolController

from .numba_impl import NumbaNetwork, kernels as K

try:
    import llvmlite.binding
    from numba import types
    from numba.extending import get_cython_function_address
    # Each gemm is declared to LLVM by a symbol name bound to SciPy's function in this process
    # (a ctypes pointer instead would be a constant in the code, which Numba cannot cache).
    for _name in ("sgemm", "dgemm"):
        llvmlite.binding.add_symbol(f"nnbench_{_name}", get_cython_function_address("scipy.linalg.cython_blas", _name))
    _sgemm, _dgemm = (types.ExternalFunction(f"nnbench_{n}", types.void(*[types.voidptr] * 13)) for n in ("sgemm", "dgemm"))
    _MISSING = None
except ImportError as exc:      # no SciPy: this implementation is unavailable, the rest are not
    _MISSING = f"needs scipy (its BLAS, scipy.linalg.cython_blas, does the products): {exc}"

jit = K.jit
NO, TRANSPOSE = ord("N"), ord("T")
#: a gather of fewer elements than this is copied by one thread
PARALLEL_MIN_COPY = 4096


@jit()
def gemm(A, trans_a, B, trans_b, C, alpha, beta):
    """C = alpha op(A) op(B) + beta C, for row-major 2-D views whose rows may be strided
    (a block of columns of a wider matrix). BLAS is column-major, where a row-major
    matrix reads as its transpose, so it is asked for C^T = op(B)^T op(A)^T."""
    m, n = C.shape
    k = A.shape[0] if trans_a else A.shape[1]
    if m == 0 or n == 0:
        return
    size = C.itemsize
    flags = np.array([TRANSPOSE if trans_b else NO, TRANSPOSE if trans_a else NO], np.uint8)
    dims = np.array([n, m, k, max(1, B.strides[0] // size), max(1, A.strides[0] // size), C.strides[0] // size],
                    np.int32)
    scalars = np.array([alpha, beta], C.dtype)
    args = (flags.ctypes, flags[1:].ctypes, dims.ctypes, dims[1:].ctypes, dims[2:].ctypes, scalars.ctypes,
            B.ctypes, dims[3:].ctypes, A.ctypes, dims[4:].ctypes, scalars[1:].ctypes, C.ctypes, dims[5:].ctypes)
    if size == 4:
        _sgemm(*args)
    else:
        _dgemm(*args)


@jit()
def _forward_cols(A_in, W, b, Z, kind, j0, j1):
    """Neurons j0..j1 of a layer: z = W a + b, a' = sigma(z), for every row of A_in."""
    gemm(A_in, False, W[j0:j1], True, Z[:, j0:j1], 1.0, 0.0)
    for m in range(Z.shape[0]):
        for j in range(j0, j1):
            K._activate(Z, m, j, Z[m, j] + b[j], kind)


@jit()
def _backward_cols(A_in, delta, W, b, gW, gb, lr, A_next, Z_next, kind, j0, j1):
    """BP3 and BP4 for neurons j0..j1; with lr != 0 the SGD step instead (W takes
    -lr delta^T A straight from gemm), then, given A_next, those neurons' forward pass."""
    step = W.dtype.type(lr)
    for j in range(j0, j1):
        s = delta[:, j].sum()
        if lr != 0:
            b[j] -= step * s
        else:
            gb[j] = s
    if lr != 0:
        gemm(delta[:, j0:j1], True, A_in, False, W[j0:j1], -step, 1.0)
    else:
        gemm(delta[:, j0:j1], True, A_in, False, gW[j0:j1], 1.0, 0.0)
    if A_next.shape[0]:
        _forward_cols(A_next, W, b, Z_next, kind, j0, j1)


@jit(parallel=True)
def _layer_forward(A_in, W, b, Z, kind, lay, n_chunks):
    if K._serial(n_chunks, A_in.shape[0], lay):
        _forward_cols(A_in, W, b, Z, kind, 0, W.shape[0])
        return
    for c in prange(n_chunks):
        j0, j1 = K._chunk(c, n_chunks, W.shape[0])
        _forward_cols(A_in, W, b, Z, kind, j0, j1)


@jit(parallel=True)
def _layer_backward(A_in, delta, W, b, gW, gb, lr, lay, n_chunks, A_next, Z_next, kind):
    if K._serial(n_chunks, A_in.shape[0], lay):
        _backward_cols(A_in, delta, W, b, gW, gb, lr, A_next, Z_next, kind, 0, W.shape[0])
        return
    for c in prange(n_chunks):
        j0, j1 = K._chunk(c, n_chunks, W.shape[0])
        _backward_cols(A_in, delta, W, b, gW, gb, lr, A_next, Z_next, kind, j0, j1)


@jit(parallel=True)
def _backpropagate_delta(delta, W, A_prev, hidden, delta_prev, lay, n_chunks):
    """BP2: delta_prev = (delta W) * sigma'(z_prev), split over the inputs k."""
    one = W.dtype.type(1)
    n = 1 if K._serial(n_chunks, delta.shape[0], lay) else n_chunks
    for c in prange(n):
        k0, k1 = K._chunk(c, n, W.shape[1])
        gemm(delta, False, W[:, k0:k1], False, delta_prev[:, k0:k1], 1.0, 0.0)
        for m in range(delta.shape[0]):
            for k in range(k0, k1):
                a = A_prev[m, k]
                if hidden == K.SIGMOID:
                    delta_prev[m, k] *= a * (one - a)
                elif a <= 0:
                    delta_prev[m, k] = 0


@jit()
def forward(theta, layout, hidden, A0, acts, n_chunks, first):
    """Every layer's activations (the last layer's: logits) for the rows of A0, from
    layer ``first`` on (the layers before it are done)."""
    B, L = A0.shape[0], layout.shape[0]
    for l in range(first, L):
        lay = layout[l]
        W, b = K._layer(theta, lay)
        A_in = A0 if l == 0 else K._matrix(acts, layout[l - 1, K.A_OFF], B, lay[K.N_IN])
        _layer_forward(A_in, W, b, K._matrix(acts, lay[K.A_OFF], B, lay[K.N_OUT]),
                       hidden if l < L - 1 else K.IDENTITY, lay, n_chunks)


@jit()
def backward(theta, layout, hidden, output, A0, y, acts, deltas, grad, lr, n_chunks, A_next):
    """BP1-BP4 after ``forward``, each layer's step taken once BP2 has used its W; layer 1
    then feeds A_next forward. Returns the mean cost."""
    B, L = A0.shape[0], layout.shape[0]
    lay = layout[L - 1]
    delta = K._matrix(deltas, lay[K.A_OFF], B, lay[K.N_OUT])
    cost = K.output_layer(K._matrix(acts, lay[K.A_OFF], B, lay[K.N_OUT]), output, y, delta) / B
    for l in range(L - 1, -1, -1):
        lay = layout[l]
        W, b = K._layer(theta, lay)
        gW, gb = K._layer(grad, lay)
        delta = K._matrix(deltas, lay[K.A_OFF], B, lay[K.N_OUT])
        if l == 0:
            Z_next = K._matrix(acts, lay[K.A_OFF], A_next.shape[0], lay[K.N_OUT])
            _layer_backward(A0, delta, W, b, gW, gb, lr, lay, n_chunks, A_next, Z_next,
                            hidden if L > 1 else K.IDENTITY)
        else:
            A_prev = K._matrix(acts, layout[l - 1, K.A_OFF], B, lay[K.N_IN])
            _backpropagate_delta(delta, W, A_prev, hidden, K._matrix(deltas, layout[l - 1, K.A_OFF], B, lay[K.N_IN]),
                                 lay, n_chunks)
            _layer_backward(A_prev, delta, W, b, gW, gb, lr, lay, n_chunks, A_prev[:0], A_prev[:0], K.IDENTITY)
    return cost


@jit(parallel=True)
def _gather(X, rows, A0, n_chunks):
    """The mini-batch's inputs X[rows] as one contiguous block, the layout BLAS reads; the
    rows split between the threads (the copy waits on memory for randomly ordered rows)."""
    n = 1 if n_chunks == 1 or rows.size * X.shape[1] < PARALLEL_MIN_COPY else n_chunks
    for c in prange(n):
        m0, m1 = K._chunk(c, n, rows.size)
        for m in range(m0, m1):
            A0[m] = X[rows[m]]
    return A0[:rows.size]


@jit()
def train_epoch(theta, sizes, hidden, output, X, y, order, batch_size, lr, n_chunks):
    """One epoch of mini-batch SGD in one compiled call; the mean of the mini-batch costs."""
    batch = min(batch_size, order.size)
    layout = K.make_layout(sizes, batch)
    acts, deltas, grad = K.buffers(theta, layout, batch)
    inputs = np.empty((2, batch, X.shape[1]), theta.dtype)      # this mini-batch's and the next's
    A0 = _gather(X, order[:batch_size], inputs[0], n_chunks)
    forward(theta, layout, hidden, A0, acts, n_chunks, 0)
    total, n_batches = 0.0, 0
    for start in range(0, order.size, batch_size):
        rows, next_rows = order[start:start + batch_size], order[start + batch_size:start + 2 * batch_size]
        A_next = _gather(X, next_rows, inputs[(n_batches + 1) % 2], n_chunks)
        total += backward(theta, layout, hidden, output, A0, y[rows], acts, deltas, grad, lr, n_chunks, A_next)
        if next_rows.size:
            forward(theta, layout, hidden, A_next, acts, n_chunks, 1)
        A0, n_batches = A_next, n_batches + 1
    return total / n_batches


@jit()
def minibatch(theta, sizes, hidden, output, X, y, lr, n_chunks):
    """Forward and backward over X: (mean cost, gradient vector; with lr != 0 the step is
    taken instead and the gradient vector is not filled)."""
    B = X.shape[0]
    layout = K.make_layout(sizes, B)
    acts, deltas, grad = K.buffers(theta, layout, B)
    forward(theta, layout, hidden, X, acts, n_chunks, 0)
    return backward(theta, layout, hidden, output, X, y, acts, deltas, grad, lr, n_chunks, X[:0]), grad


@jit()
def feedforward(theta, sizes, hidden, output, X, n_chunks):
    B = X.shape[0]
    layout = K.make_layout(sizes, B)
    acts = np.empty(layout[:, K.N_OUT].sum() * B, theta.dtype)
    forward(theta, layout, hidden, X, acts, n_chunks, 0)
    lay = layout[-1]
    out = K._matrix(acts, lay[K.A_OFF], B, lay[K.N_OUT])
    K.output_layer(out, output, np.empty(0, np.int64), np.empty((0, lay[K.N_OUT]), theta.dtype))
    return out.copy()


class NumbaBlasNetwork(NumbaNetwork):
    """``numba``'s parameter layout, checks and threads; the compiled epoch above."""

    @classmethod
    def unavailable_reason(cls, **options):
        return _MISSING

    def __init__(self, spec):
        self.blas = ThreadpoolController().select(user_api="blas").lib_controllers
        super().__init__(spec)

    def _compile(self) -> float:
        """Call every function once on two examples, so no epoch waits for the compiler."""
        start = time.perf_counter()
        theta = np.full_like(self.theta, 0.01)
        X, y = np.zeros((2, self.spec.sizes[0]), self.np_dtype), np.zeros(2, np.int64)
        self._call(train_epoch, theta, self.sizes, self.hidden, self.output, X, y, np.arange(2), 1, 0.1)
        self._call(minibatch, theta, self.sizes, self.hidden, self.output, X, y, 0.1)
        self._call(feedforward, theta, self.sizes, self.hidden, self.output, X)
        return time.perf_counter() - start

    def _call(self, kernel, *args):
        """Run a kernel on Numba's threads with BLAS's own pools at one thread (restored after).
        Set directly: ``threadpoolctl``'s ``limit()`` costs several times as much a call, a sizeable
        share of a batch-10 ``backprop`` (docs/measurements.md, "numba-blas")."""
        numba.set_num_threads(self.n_threads)
        before = [blas.num_threads for blas in self.blas]
        for blas in self.blas:
            blas.set_num_threads(1)
        try:
            return kernel(*args, self.n_threads)
        finally:
            for blas, n in zip(self.blas, before):
                blas.set_num_threads(n)

    def feedforward(self, X):
        self.check_batch(X)
        return self._call(feedforward, self.theta, self.sizes, self.hidden, self.output, X)

    def backprop(self, X, y):
        self.check_batch(X, y)
        cost, grad = self._call(minibatch, self.theta, self.sizes, self.hidden, self.output, X, y, 0.0)
        return cost, self._views(grad)

    def update_mini_batch(self, X, y, lr):
        self.check_batch(X, y)
        return self._call(minibatch, self.theta, self.sizes, self.hidden, self.output, X, y, float(lr))[0]

    def train_epoch(self, order, batch_size, lr):
        order = self.check_order(order, batch_size)
        return self._call(train_epoch, self.theta, self.sizes, self.hidden, self.output, self.X_train,
                          self.y_train, order, batch_size, float(lr))
