"""Vectorized NumPy: the same equations with the mini-batch as a matrix.

Where the reference loops over examples, this stacks a mini-batch of m examples
as the rows of A (m x n) so each layer is one matrix product, z = A @ W.T + b,
and BP2/BP4 become delta_prev = (delta @ W) * sigma'(z), nabla_W = delta.T @ A / m.
The work moves from the Python interpreter into BLAS; with batch 10 and a
784-30-10 network the matrices are tiny, so per-call overhead still matters.
"""
import numpy as np

from .activations import HIDDEN, sigmoid, sigmoid_prime, softmax
from .base import Network, minibatches


class NumpyNetwork(Network):
    dtypes = ("float32", "float64")

    def _set_params(self, params):
        self.weights = [np.array(W, dtype=self.np_dtype) for W, _ in params]
        self.biases = [np.array(b, dtype=self.np_dtype) for _, b in params]

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in zip(self.weights, self.biases)]

    def _forward(self, A):
        """Forward pass keeping every z and activation, as backprop needs them."""
        sigma, _ = HIDDEN[self.spec.hidden]
        zs, activations = [], [A]
        last = len(self.weights) - 1
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = A @ W.T + b
            if layer < last:
                A = sigma(z)
            elif self.spec.output == "softmax_crossentropy":
                A = softmax(z)
            else:
                A = sigmoid(z)
            zs.append(z)
            activations.append(A)
        return zs, activations

    def feedforward(self, X):
        return self._forward(X)[1][-1]

    def backprop(self, X, y):
        zs, activations = self._forward(X)
        m = X.shape[0]
        rows = np.arange(m)
        a = activations[-1]
        if self.spec.output == "softmax_crossentropy":
            # ln a_y straight from the logits (log-softmax) stays finite when a_y underflows.
            z = zs[-1]
            z_max = z.max(axis=1)
            log_sum = z_max + np.log(np.exp(z - z_max[:, None]).sum(axis=1))
            cost = np.mean(log_sum - z[rows, y])
            delta = a.copy()
            delta[rows, y] -= 1                               # BP1: a - y
        else:
            diff = a.copy()
            diff[rows, y] -= 1                                # a - y
            cost = 0.5 * np.mean(np.sum(diff * diff, axis=1))
            delta = diff * sigmoid_prime(zs[-1])              # BP1
        delta /= m                                            # gradient of the *mean* cost
        _, sigma_prime = HIDDEN[self.spec.hidden]
        nablas = [None] * len(self.weights)
        for layer in range(len(self.weights) - 1, -1, -1):
            nablas[layer] = (delta.T @ activations[layer], delta.sum(axis=0))   # BP4, BP3
            if layer:
                delta = (delta @ self.weights[layer]) * sigma_prime(zs[layer - 1])   # BP2
        return cost, nablas

    def update_mini_batch(self, X, y, lr):
        cost, nablas = self.backprop(X, y)
        for W, b, (nabla_W, nabla_b) in zip(self.weights, self.biases, nablas):
            W -= lr * nabla_W
            b -= lr * nabla_b
        return cost

    def train_epoch(self, order, batch_size, lr):
        total = 0.0
        batches = minibatches(len(order), batch_size)
        for start, stop in batches:
            idx = order[start:stop]
            total += self.update_mini_batch(self.X_train[idx], self.y_train[idx], lr)
        return total / len(batches)
