"""Vectorized NumPy: the same equations with the mini-batch as a matrix.

Where the reference loops over examples, this stacks a mini-batch of m examples
as the rows of A (m x n) so each layer is one matrix product, z = A @ W.T + b,
and BP2/BP4 become delta_prev = (delta @ W) * sigma'(z), nabla_W = delta.T @ A / m.
The work moves from the Python interpreter into BLAS; with batch 10 and a
784-30-10 network the matrices are tiny, so per-call overhead (a few microseconds
per NumPy call, ~20 calls per step) is most of an epoch.
"""
import numpy as np

from .core.activations import softmax
from .core.base import Network


def _sigmoid(z):
    """1 / (1 + exp(-z)), computed as (1 + tanh(z / 2)) / 2: the same function, but tanh cannot
    overflow where exp(-z) does (z < -88 in float32, common with N(0, 1) weights), so no
    ``np.errstate`` is needed to keep the step quiet. Entering one per step slowed a batch-10
    nielsen epoch measurably (A/B in one process, NumPy 2.4); tanh costs no more than exp."""
    a = np.tanh(z * 0.5)
    a *= 0.5
    a += 0.5
    return a


# sigma'(z) written in terms of the activation a = sigma(z), which the forward pass kept:
# sigmoid' = a (1 - a), relu' = [a > 0]. Saves recomputing exp() in the backward pass.
_HIDDEN = {
    "sigmoid": (_sigmoid, lambda a: a * (1.0 - a)),
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
}


class NumpyNetwork(Network):
    dtypes = ("float32", "float64")

    def _set_params(self, params):
        self.weights = [np.array(W, dtype=self.np_dtype) for W, _ in params]
        self.biases = [np.array(b, dtype=self.np_dtype) for _, b in params]
        # rows of the identity are the one-hot targets y; indexing beats building them
        self._eye = np.eye(self.spec.sizes[-1], dtype=self.np_dtype)

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in zip(self.weights, self.biases)]

    def _forward(self, A):
        """Activations of every layer (input first), as backprop needs them."""
        sigma, _ = _HIDDEN[self.spec.hidden]
        activations = [A]
        last = len(self.weights) - 1
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = A @ W.T + b
            if layer < last:
                A = sigma(z)
            elif self.spec.output == "softmax_crossentropy":
                A = softmax(z)
            else:
                A = _sigmoid(z)
            activations.append(A)
        return activations

    def feedforward(self, X):
        return self._forward(X)[-1]

    def backprop(self, X, y):
        activations = self._forward(X)
        m = X.shape[0]
        a = activations[-1]
        diff = a - self._eye[y]                               # a - y
        if self.spec.output == "softmax_crossentropy":
            # -ln a_y. In float32 a_y underflows to 0 for a confidently wrong example (true
            # cost > 87); the floor keeps that one example from making the batch cost inf,
            # which the training loop would report as divergence.
            cost = -np.mean(np.log(np.maximum(a[np.arange(m), y], np.finfo(a.dtype).tiny)))
            delta = diff                                      # BP1 for softmax + cross-entropy
        else:
            cost = 0.5 * np.vdot(diff, diff) / m              # mean of ||a - y||^2 / 2
            delta = diff * (a * (1.0 - a))                    # BP1: (a - y) * sigma'(z)
        delta /= m                                            # gradient of the *mean* cost
        _, sigma_prime = _HIDDEN[self.spec.hidden]
        nablas = [None] * len(self.weights)
        for layer in range(len(self.weights) - 1, -1, -1):
            nablas[layer] = (delta.T @ activations[layer], delta.sum(axis=0))   # BP4, BP3
            if layer:
                delta = (delta @ self.weights[layer]) * sigma_prime(activations[layer])   # BP2
        return cost, nablas

    def update_mini_batch(self, X, y, lr):
        cost, nablas = self.backprop(X, y)
        for W, b, (nabla_W, nabla_b) in zip(self.weights, self.biases, nablas):
            W -= lr * nabla_W
            b -= lr * nabla_b
        return cost

