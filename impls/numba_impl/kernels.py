"""The compiled loops behind ``impls.numba_impl``: BP1-BP4 as explicit loops, no BLAS.

All parameters live in one flat vector ``theta``, layer by layer ``W_1 (n_1 x n_0), b_1,
W_2, b_2, ...``; ``grad`` has the same layout. A mini-batch's activations and errors
live in flat buffers too, and ``layout`` (one row per layer: n_in, n_out and the offsets
of W, b and the layer's activations) lets every kernel cut out its 2-D views. That is
how one compiled function handles any depth without lists of arrays. Layer 1 reads its
inputs straight out of the training set through ``rows`` (the mini-batch's indices).

Parallelism splits each layer's *neurons* between threads: neuron j's z, its row of
nabla_W and its row of W belong to one thread (the same one in the forward and the
backward pass, so the row stays in that core's cache), and every sum is taken in the
same order however the neurons are split. So the results are bit-for-bit the same for
any thread count. In ``train_epoch`` the thread that updates a row of W_1 also feeds
the next mini-batch through that row, in the same region: one region per mini-batch.
Work too small to pay for a parallel region (a few microseconds: docs/measurements.md) runs serially.
"""
import warnings

import numpy as np
from numba import njit, prange

# LLVM fast-math flags, chosen one by one. 'reassoc' lets LLVM reorder a dot product's
# sum, without which it cannot vectorize it; 'contract' fuses a*b + c into one FMA.
# Deliberately NOT 'nnan'/'ninf' (part of fastmath=True): they let LLVM assume that no
# NaN or inf exists, so an overflowing exp or a NaN test becomes undefined behaviour
# and a diverging run can report a finite cost.
FASTMATH = frozenset({"reassoc", "contract"})


def jit(parallel=False):
    """``njit`` with the flags above, cached on disk where Numba finds a writable place:
    ``$NUMBA_CACHE_DIR`` if set, else the package's ``__pycache__``, else the per-user
    cache (``~/.cache/numba``), so a read-only install still caches. With nowhere
    writable, Numba refuses ``cache=True`` at decoration; then compile in each process."""
    def decorate(fn):
        options = dict(parallel=parallel, fastmath=set(FASTMATH), nogil=True)
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            # one message for every kernel, so Python shows it once
            warnings.warn(f"Numba finds no writable cache directory for {__file__}: the kernels are "
                          "compiled afresh in every process; set NUMBA_CACHE_DIR to keep them",
                          RuntimeWarning, stacklevel=1)
            return njit(cache=False, **options)(fn)
    return decorate


IDENTITY, SIGMOID, RELU = 0, 1, 2                 # a layer's non-linearity
SIGMOID_QUADRATIC, SOFTMAX_CROSSENTROPY = 0, 1    # the output/cost pair
N_IN, N_OUT, W_OFF, B_OFF, A_OFF = range(5)       # columns of ``layout``
#: a layer with fewer multiply-adds per mini-batch than this runs serially: splitting
#: ~150k multiply-adds (a few us of work) only just pays for a parallel region. Against
#: 50k, relu's epochs at batch 64/128 on 2 threads got faster (its 100->10 layer now serial),
#: nielsen's stayed the same (docs/measurements.md, "numba").
PARALLEL_MIN_MACS = 150_000
#: examples per block: 8 input rows (25 KB at 784 float32) stay in L1 while W streams
BLOCK = 8


@jit()
def make_layout(sizes, batch):
    """One row per layer: n_in, n_out, offset of W and of b in theta, offset of the
    layer's (batch x n_out) activations (and errors) in their buffers."""
    layout = np.empty((sizes.size - 1, 5), np.int64)
    p = a = 0
    for l in range(sizes.size - 1):
        layout[l] = (sizes[l], sizes[l + 1], p, p + sizes[l + 1] * sizes[l], a)
        p += sizes[l + 1] * (sizes[l] + 1)
        a += batch * sizes[l + 1]
    return layout


@jit()
def _matrix(buf, off, rows, cols):
    return buf[off:off + rows * cols].reshape((rows, cols))


@jit()
def _layer(theta, lay):
    """(W, b) views of one layer."""
    return _matrix(theta, lay[W_OFF], lay[N_OUT], lay[N_IN]), theta[lay[B_OFF]:lay[B_OFF] + lay[N_OUT]]


@jit()
def _chunk(c, n_chunks, n):
    return c * n // n_chunks, (c + 1) * n // n_chunks


@jit()
def _blocks(B):
    """Start and end of each block of examples: BLOCK long, except that the last one takes
    in the remainder (up to 2 BLOCK - 1 long). At batch 10 that is one block, so W
    streams through the cache once instead of a second time for two examples."""
    n = max(1, B // BLOCK)
    bounds = np.empty((n, 2), np.int64)
    for i in range(n):
        bounds[i, 0], bounds[i, 1] = i * BLOCK, B if i == n - 1 else (i + 1) * BLOCK
    return bounds


@jit()
def _serial(n_chunks, B, lay):
    return n_chunks == 1 or B * lay[N_IN] * lay[N_OUT] < PARALLEL_MIN_MACS


# -- forward: z = W a + b, a' = sigma(z) ----------------------------------------------------
@jit()
def _activate(A_out, m, j, z, kind):
    one, zero = A_out.dtype.type(1), A_out.dtype.type(0)
    if kind == SIGMOID:
        z = one / (one + np.exp(-z))    # exp overflow -> 1/inf = 0, the right limit
    elif kind == RELU and z < zero:     # not max(z, 0), which could turn a NaN into 0
        z = zero
    A_out[m, j] = z


@jit()
def _forward_rows(A_in, rows, W, b, A_out, kind, j0, j1):
    """Neurons j0..j1 for examples A_in[rows], four neurons times two examples per pass
    over the inputs, so each loaded input feeds four multiply-adds and each weight two
    (instead of two loads per multiply-add). Indices past the end are clamped to the
    last neuron/example, which recomputes and rewrites the same value."""
    zero = W.dtype.type(0)
    B, n_in = rows.size, W.shape[1]
    for e0, e1 in _blocks(B):
        for j in range(j0, j1, 4):
            w0, w1, w2, w3 = W[j], W[min(j + 1, j1 - 1)], W[min(j + 2, j1 - 1)], W[min(j + 3, j1 - 1)]
            for m in range(e0, e1, 2):
                m1 = min(m + 1, B - 1)
                x0, x1 = A_in[rows[m]], A_in[rows[m1]]
                s00 = s10 = s20 = s30 = s01 = s11 = s21 = s31 = zero
                for k in range(n_in):
                    s00 += w0[k] * x0[k]
                    s10 += w1[k] * x0[k]
                    s20 += w2[k] * x0[k]
                    s30 += w3[k] * x0[k]
                    s01 += w0[k] * x1[k]
                    s11 += w1[k] * x1[k]
                    s21 += w2[k] * x1[k]
                    s31 += w3[k] * x1[k]
                for i, s0, s1 in ((0, s00, s01), (1, s10, s11), (2, s20, s21), (3, s30, s31)):
                    ji = min(j + i, j1 - 1)
                    _activate(A_out, m, ji, s0 + b[ji], kind)
                    _activate(A_out, m1, ji, s1 + b[ji], kind)


@jit(parallel=True)
def _dense_forward(A_in, rows, W, b, A_out, kind, lay, n_chunks):
    if _serial(n_chunks, rows.size, lay):
        _forward_rows(A_in, rows, W, b, A_out, kind, 0, W.shape[0])
        return
    for c in prange(n_chunks):
        j0, j1 = _chunk(c, n_chunks, W.shape[0])
        _forward_rows(A_in, rows, W, b, A_out, kind, j0, j1)


@jit()
def forward(theta, layout, hidden, X, rows, acts, n_chunks, first):
    """Feed the examples X[rows] forward, keeping every layer's activations in ``acts``
    (the last layer's are its logits z until ``output_layer`` is applied). Layers before
    ``first`` are taken as done (``backward`` can do layer 1 of the next mini-batch)."""
    B, L = rows.size, layout.shape[0]
    A_in, in_rows = X, rows
    if first > 0:
        A_in, in_rows = _matrix(acts, layout[first - 1, A_OFF], B, layout[first - 1, N_OUT]), np.arange(B)
    for l in range(first, L):
        lay = layout[l]
        W, b = _layer(theta, lay)
        A_out = _matrix(acts, lay[A_OFF], B, lay[N_OUT])
        _dense_forward(A_in, in_rows, W, b, A_out, hidden if l < L - 1 else IDENTITY, lay, n_chunks)
        A_in, in_rows = A_out, np.arange(B)


@jit()
def output_layer(Z, output, y, delta):
    """Turn logits Z (in place) into outputs a. If ``delta`` has rows, also write BP1's
    error of the *mean* cost into it and return the batch's summed cost (float64)."""
    one = Z.dtype.type(1)
    B, n = Z.shape
    inv_B = one / Z.dtype.type(B)
    total = 0.0
    for m in range(B):
        z = Z[m]
        if output == SOFTMAX_CROSSENTROPY:
            z_max = z.max()
            # -ln a_y from the logits (log-softmax) stays finite when a_y underflows
            z_y = z[y[m]] if delta.shape[0] else z_max
            e_sum = Z.dtype.type(0)
            for i in range(n):
                z[i] = np.exp(z[i] - z_max)
                e_sum += z[i]
            total += z_max + np.log(e_sum) - z_y
            for i in range(n):
                z[i] /= e_sum
        else:
            for i in range(n):
                z[i] = one / (one + np.exp(-z[i]))
        if delta.shape[0]:
            for i in range(n):
                diff = z[i] - one if i == y[m] else z[i]
                if output == SOFTMAX_CROSSENTROPY:
                    delta[m, i] = diff * inv_B
                else:
                    total += 0.5 * diff * diff
                    delta[m, i] = diff * z[i] * (one - z[i]) * inv_B
    return total


# -- backward: BP2 for delta, BP3/BP4 for the gradients, and the SGD step -------------------
@jit()
def _delta_cols(delta, W, A_prev, hidden, delta_prev, k0, k1):
    """BP2 for the layer's inputs k0..k1: delta_prev = (delta W) * sigma'(z_prev), with
    sigma' from the stored activation (a(1 - a) for sigmoid, [a > 0] for ReLU)."""
    one = W.dtype.type(1)
    for m in range(delta.shape[0]):
        # views indexed from 0: a possibly negative index (k0 + k) costs a wraparound
        # test per element, which stops LLVM from vectorizing the loop
        out, a = delta_prev[m, k0:k1], A_prev[m, k0:k1]
        out[:] = 0
        for j in range(W.shape[0]):
            d, w = delta[m, j], W[j, k0:k1]
            for k in range(out.size):
                out[k] += d * w[k]
        for k in range(out.size):
            if hidden == SIGMOID:
                out[k] *= a[k] * (one - a[k])
            elif a[k] <= 0:
                out[k] = 0


@jit(parallel=True)
def _backpropagate_delta(delta, W, A_prev, hidden, delta_prev, lay, n_chunks):
    if _serial(n_chunks, delta.shape[0], lay):
        _delta_cols(delta, W, A_prev, hidden, delta_prev, 0, W.shape[1])
        return
    for c in prange(n_chunks):
        k0, k1 = _chunk(c, n_chunks, W.shape[1])
        _delta_cols(delta, W, A_prev, hidden, delta_prev, k0, k1)


@jit()
def _gradient_pair(A_in, rows, d0, d1, G, first):
    """Two neurons' rows of nabla_W, G[i] (+)= sum_m d_i[m] a_m (BP4), four examples per
    pass: each loaded input feeds eight multiply-adds, each row of G is loaded and
    stored once per four. A short last pass repeats the last example with error 0
    (adding exact zeros). ``first``: assign instead of add."""
    zero, last = G.dtype.type(0), rows.size - 1
    for m in range(0, rows.size, 4):
        i1, i2, i3 = min(m + 1, last), min(m + 2, last), min(m + 3, last)
        x0, x1, x2, x3 = A_in[rows[m]], A_in[rows[i1]], A_in[rows[i2]], A_in[rows[i3]]
        a0, c0 = d0[m], d1[m]
        a1, c1 = (d0[i1], d1[i1]) if m + 1 <= last else (zero, zero)
        a2, c2 = (d0[i2], d1[i2]) if m + 2 <= last else (zero, zero)
        a3, c3 = (d0[i3], d1[i3]) if m + 3 <= last else (zero, zero)
        if first and m == 0:
            for k in range(G.shape[1]):
                G[0, k] = a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k]
                G[1, k] = c0 * x0[k] + c1 * x1[k] + c2 * x2[k] + c3 * x3[k]
        else:
            for k in range(G.shape[1]):
                G[0, k] += a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k]
                G[1, k] += c0 * x0[k] + c1 * x1[k] + c2 * x2[k] + c3 * x3[k]


@jit()
def _gradient_row(A_in, rows, d, g, first):
    """One row, with the same sums as ``_gradient_pair`` (so a row's value does not
    depend on whether it was paired), for an odd one out."""
    zero, last = g.dtype.type(0), rows.size - 1
    for m in range(0, rows.size, 4):
        i1, i2, i3 = min(m + 1, last), min(m + 2, last), min(m + 3, last)
        x0, x1, x2, x3 = A_in[rows[m]], A_in[rows[i1]], A_in[rows[i2]], A_in[rows[i3]]
        a0 = d[m]
        a1 = d[i1] if m + 1 <= last else zero
        a2 = d[i2] if m + 2 <= last else zero
        a3 = d[i3] if m + 3 <= last else zero
        if first and m == 0:
            for k in range(g.size):
                g[k] = a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k]
        else:
            for k in range(g.size):
                g[k] += a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k]


@jit()
def _sgd(p, g, step):
    for i in range(p.size):
        p[i] -= step * g[i]


@jit()
def _gradient_rows(A_in, rows, delta, W, b, gW, gb, step, j0, j1):
    """BP3 and BP4 for neurons j0..j1, a block of examples at a time so the block's
    inputs stay in L1 across neurons; then, if step != 0, their SGD step while the rows
    are still in this core's cache."""
    for j in range(j0, j1):
        gb[j] = delta[:, j].sum()
    for e0, e1 in _blocks(rows.size):
        block = rows[e0:e1]
        for j in range(j0, j1 - 1, 2):
            _gradient_pair(A_in, block, delta[e0:e1, j], delta[e0:e1, j + 1], gW[j:j + 2], e0 == 0)
        if (j1 - j0) % 2:
            _gradient_row(A_in, block, delta[e0:e1, j1 - 1], gW[j1 - 1], e0 == 0)
    if step != 0:
        for j in range(j0, j1):
            _sgd(W[j], gW[j], step)
        _sgd(b[j0:j1], gb[j0:j1], step)


@jit()
def _backward_rows(A_in, rows, delta, W, b, gW, gb, step, next_rows, A_next, kind, j0, j1):
    _gradient_rows(A_in, rows, delta, W, b, gW, gb, step, j0, j1)
    if next_rows.size:
        _forward_rows(A_in, next_rows, W, b, A_next, kind, j0, j1)


@jit(parallel=True)
def _dense_backward(A_in, rows, delta, W, b, gW, gb, step, lay, n_chunks, next_rows, A_next, kind):
    """BP3, BP4 and the SGD step of one layer; given ``next_rows``, also the layer's
    forward pass for those examples with the new weights, by the same thread while
    its rows of W are in cache, and in the same parallel region (one region per
    mini-batch instead of two: at batch 10 a region's start costs as much as its work)."""
    if _serial(n_chunks, rows.size, lay):
        _backward_rows(A_in, rows, delta, W, b, gW, gb, step, next_rows, A_next, kind, 0, W.shape[0])
        return
    for c in prange(n_chunks):
        j0, j1 = _chunk(c, n_chunks, W.shape[0])
        _backward_rows(A_in, rows, delta, W, b, gW, gb, step, next_rows, A_next, kind, j0, j1)


@jit()
def backward(theta, layout, hidden, output, X, y, rows, acts, deltas, grad, lr, n_chunks, next_rows):
    """BP1-BP4 for the mini-batch X[rows] after ``forward``: the gradients of the mean
    cost go into ``grad`` and, if lr != 0, each layer takes its SGD step as soon as its
    error has been propagated below it. Layer 1 then feeds X[next_rows] forward (see
    ``_dense_backward``), leaving ``forward(..., first=1)`` to finish that mini-batch.
    Returns the mean cost."""
    B, L = rows.size, layout.shape[0]
    step = theta.dtype.type(lr)
    lay = layout[L - 1]
    delta = _matrix(deltas, lay[A_OFF], B, lay[N_OUT])
    cost = output_layer(_matrix(acts, lay[A_OFF], B, lay[N_OUT]), output, y[rows], delta) / B
    for l in range(L - 1, -1, -1):
        lay = layout[l]
        W, b = _layer(theta, lay)
        gW, gb = _layer(grad, lay)
        delta = _matrix(deltas, lay[A_OFF], B, lay[N_OUT])
        if l == 0:
            A_next = _matrix(acts, lay[A_OFF], next_rows.size, lay[N_OUT])
            _dense_backward(X, rows, delta, W, b, gW, gb, step, lay, n_chunks, next_rows, A_next,
                            hidden if L > 1 else IDENTITY)
        else:
            A_prev = _matrix(acts, layout[l - 1, A_OFF], B, lay[N_IN])
            # BP2 first: it needs this layer's weights before their update
            _backpropagate_delta(delta, W, A_prev, hidden, _matrix(deltas, layout[l - 1, A_OFF], B, lay[N_IN]),
                                 lay, n_chunks)
            _dense_backward(A_prev, np.arange(B), delta, W, b, gW, gb, step, lay, n_chunks, rows[:0], A_prev, IDENTITY)
    return cost


@jit()
def feedforward(theta, sizes, hidden, output, X, n_threads):
    """Outputs a^L for every row of X (evaluation: no cost, no gradients)."""
    B = X.shape[0]
    layout = make_layout(sizes, B)
    acts = np.empty(layout[:, N_OUT].sum() * B, theta.dtype)
    forward(theta, layout, hidden, X, np.arange(B), acts, n_threads, 0)
    lay = layout[-1]
    out = _matrix(acts, lay[A_OFF], B, lay[N_OUT])
    output_layer(out, output, np.empty(0, np.int64), np.empty((0, lay[N_OUT]), theta.dtype))
    return out.copy()


@jit()
def minibatch(theta, sizes, hidden, output, X, y, lr, n_threads):
    """Forward and backward over the whole of X: (mean cost, gradient vector). With
    lr != 0 the SGD step is taken too (fused into the backward pass)."""
    B = X.shape[0]
    layout = make_layout(sizes, B)
    acts, deltas, grad = buffers(theta, layout, B)
    rows = np.arange(B)
    forward(theta, layout, hidden, X, rows, acts, n_threads, 0)
    cost = backward(theta, layout, hidden, output, X, y, rows, acts, deltas, grad, lr, n_threads, rows[:0])
    return cost, grad


@jit()
def buffers(theta, layout, batch):
    """Activation, error and gradient buffers for mini-batches of up to ``batch``."""
    n = layout[:, N_OUT].sum() * batch
    return np.empty(n, theta.dtype), np.empty(n, theta.dtype), np.empty(theta.size, theta.dtype)


@jit()
def train_epoch(theta, sizes, hidden, output, X, y, order, batch_size, lr, n_threads):
    """One epoch of mini-batch SGD in one compiled call: no Python per mini-batch.
    Returns the mean of the mini-batch costs (NaN or inf reach the caller unchanged).
    The caller sets Numba's thread count (``numba.set_num_threads``, which cannot be
    called here without making the function uncacheable) to ``n_threads``."""
    batch = min(batch_size, order.size)
    layout = make_layout(sizes, batch)
    acts, deltas, grad = buffers(theta, layout, batch)
    total, n_batches = 0.0, 0
    forward(theta, layout, hidden, X, order[:batch_size], acts, n_threads, 0)
    for start in range(0, order.size, batch_size):
        rows, next_rows = order[start:start + batch_size], order[start + batch_size:start + 2 * batch_size]
        total += backward(theta, layout, hidden, output, X, y, rows, acts, deltas, grad, lr, n_threads, next_rows)
        if next_rows.size:
            forward(theta, layout, hidden, X, next_rows, acts, n_threads, 1)
        n_batches += 1
    return total / n_batches
