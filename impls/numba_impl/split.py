"""The split epoch (``NNBENCH_NUMBA_PROFILE=1``): the fused epoch's arithmetic, one named call per equation.

A sampling profiler such as py-spy sees Python frames only; the fused ``kernels.train_epoch``
is one compiled call, so every sample lands on it and the hot loop stays invisible. Here the
mini-batch loop runs in Python and every step of the algorithm is a Python function of its own
that makes one compiled call, so a profile names each of them:

    feedforward_layer          z^l = W^l a^(l-1) + b^l, a^l = sigma(z^l), one layer
    bp1_output_error           delta^L (and the cost) from the output layer
    bp2_backpropagate_error    delta^l = ((W^(l+1))^T delta^(l+1)) * sigma'(z^l)
    bp3_bias_gradient          dC/db^l = delta^l, summed over the mini-batch
    bp4_weight_gradient        dC/dW^l = delta^l (a^(l-1))^T, summed over the mini-batch
    sgd_update                 W -= eta dC/dW, b -= eta dC/db

The results are bit-for-bit those of the fused epoch (tests/test_numba.py checks it): every
number is computed by the same inner loops (``kernels._forward_rows``, ``_delta_cols``,
``_gradient_pair``/``_gradient_row``, ``_sgd``) in the same order; only the loops around
them differ. What splitting costs -- a Python call and a parallel region per step instead of
one region per mini-batch, and no overlap of the next mini-batch's first layer with the update
-- is measured by ``bench.profiling --split`` and printed in each profile's report.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..core.base import minibatches
from . import kernels as K


# -- the two kernels the fused epoch does not have on their own: BP3 and BP4 apart ---------------
@K.jit()
def _bias_gradient(delta, gb):
    for j in range(gb.size):
        gb[j] = delta[:, j].sum()


@K.jit()
def _weight_rows(A_in, rows, delta, gW, j0, j1):
    """``kernels._gradient_rows``'s BP4 loop for neurons j0..j1, without BP3 and the step."""
    for e0, e1 in K._blocks(rows.size):
        block = rows[e0:e1]
        for j in range(j0, j1 - 1, 2):
            K._gradient_pair(A_in, block, delta[e0:e1, j], delta[e0:e1, j + 1], gW[j:j + 2], e0 == 0)
        if (j1 - j0) % 2:
            K._gradient_row(A_in, block, delta[e0:e1, j1 - 1], gW[j1 - 1], e0 == 0)


@K.jit(parallel=True)
def _weight_gradient(A_in, rows, delta, gW, lay, n_chunks):
    if K._serial(n_chunks, rows.size, lay):
        _weight_rows(A_in, rows, delta, gW, 0, gW.shape[0])
        return
    for c in prange(n_chunks):
        j0, j1 = K._chunk(c, n_chunks, gW.shape[0])
        _weight_rows(A_in, rows, delta, gW, j0, j1)


@K.jit()
def _update(W, b, gW, gb, step):
    for j in range(W.shape[0]):
        K._sgd(W[j], gW[j], step)
    K._sgd(b, gb, step)


# -- one Python function per equation: what the profile names --------------------------------------
def feedforward_layer(A_in, rows, W, b, A_out, kind, lay, n):
    K._dense_forward(A_in, rows, W, b, A_out, kind, lay, n)


def bp1_output_error(Z, output, y_rows, delta):
    return K.output_layer(Z, output, y_rows, delta)


def bp2_backpropagate_error(delta, W, A_prev, hidden, delta_prev, lay, n):
    K._backpropagate_delta(delta, W, A_prev, hidden, delta_prev, lay, n)


def bp3_bias_gradient(delta, gb):
    _bias_gradient(delta, gb)


def bp4_weight_gradient(A_in, rows, delta, gW, lay, n):
    _weight_gradient(A_in, rows, delta, gW, lay, n)


def sgd_update(W, b, gW, gb, step):
    _update(W, b, gW, gb, step)


def _matrix(buf, off, rows, cols):
    return buf[off:off + rows * cols].reshape(rows, cols)


def _layer(flat, lay):
    return _matrix(flat, lay[K.W_OFF], lay[K.N_OUT], lay[K.N_IN]), flat[lay[K.B_OFF]:lay[K.B_OFF] + lay[K.N_OUT]]


def train_epoch(theta, sizes, hidden, output, X, y, order, batch_size, lr, n):
    """``kernels.train_epoch`` with its loops in Python: the same mean of mini-batch costs. The
    views into theta and the buffers are cut once per epoch (and once more for a short last
    mini-batch), so the Python left in the loop is the calls themselves."""
    batch = min(batch_size, order.size)
    layout = K.make_layout(sizes, batch)
    acts, deltas, grad = K.buffers(theta, layout, batch)
    step, L = theta.dtype.type(lr), layout.shape[0]
    params, grads = [_layer(theta, lay) for lay in layout], [_layer(grad, lay) for lay in layout]
    kinds = [hidden] * (L - 1) + [K.IDENTITY]
    views = {}                                   # B -> (activations, errors, arange(B)) per layer

    def cut(B):
        return ([_matrix(acts, lay[K.A_OFF], B, lay[K.N_OUT]) for lay in layout],
                [_matrix(deltas, lay[K.A_OFF], B, lay[K.N_OUT]) for lay in layout], np.arange(B))

    total, spans = 0.0, minibatches(len(order), batch_size)
    for start, stop in spans:
        rows = order[start:stop]
        A, D, everyone = views.get(rows.size) or views.setdefault(rows.size, cut(rows.size))
        for l in range(L):
            W, b = params[l]
            feedforward_layer(A[l - 1] if l else X, everyone if l else rows, W, b, A[l], kinds[l], layout[l], n)
        total += bp1_output_error(A[L - 1], output, y[rows], D[L - 1]) / rows.size
        for l in range(L - 1, -1, -1):
            (W, b), (gW, gb) = params[l], grads[l]
            if l:      # BP2 first: it needs this layer's weights before their update
                bp2_backpropagate_error(D[l], W, A[l - 1], hidden, D[l - 1], layout[l], n)
            bp3_bias_gradient(D[l], gb)
            bp4_weight_gradient(A[l - 1] if l else X, everyone if l else rows, D[l], gW, layout[l], n)
            if step != 0:
                sgd_update(W, b, gW, gb, step)
    return total / len(spans)
