"""The textbook network: per-example backpropagation in float64.

This is chapter 1 of Nielsen's *Neural Networks and Deep Learning* written out:
each example is fed forward alone, its error is propagated back with the four
backpropagation equations, and the gradients are summed over the mini-batch.
It is the oracle every other implementation is checked against, so it stays
plain and untuned: no vectorization over examples, no clever tricks.

    BP1  delta^L = grad_a C * sigma'(z^L)      (= a - y for softmax + cross-entropy)
    BP2  delta^l = (W^{l+1}.T delta^{l+1}) * sigma'(z^l)
    BP3  dC/db^l = delta^l
    BP4  dC/dW^l = delta^l (a^{l-1}).T
"""
import numpy as np

from .core.activations import HIDDEN, sigmoid, sigmoid_prime, softmax
from .core.base import Network


class ReferenceNetwork(Network):
    dtypes = ("float64",)

    def _set_params(self, params):
        self.weights = [W.astype(np.float64) for W, _ in params]
        self.biases = [b.astype(np.float64) for _, b in params]

    def get_params(self):
        return [(W.copy(), b.copy()) for W, b in zip(self.weights, self.biases)]

    def asarray(self, X):
        # No cast: float32 pixels times float64 weights is computed in float64 anyway,
        # and a float64 copy of MNIST would hold the data twice.
        return np.asarray(X)

    # -- one example at a time ---------------------------------------------------------
    def _layer_activation(self, layer):
        """(sigma, sigma') of a layer; the last layer's belongs to the output/cost pair."""
        if layer < len(self.weights) - 1:
            return HIDDEN[self.spec.hidden]
        return (softmax, None) if self.spec.output == "softmax_crossentropy" else (sigmoid, sigmoid_prime)

    def feedforward_one(self, a):
        """Output activation for one input vector a."""
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            sigma, _ = self._layer_activation(layer)
            a = sigma(W @ a + b)
        return a

    def backprop_one(self, x, label):
        """(cost, nabla_w, nabla_b) of one example, by BP1-BP4."""
        activation, activations, zs = x, [x], []
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = W @ activation + b
            activation = self._layer_activation(layer)[0](z)
            zs.append(z)
            activations.append(activation)
        a = activations[-1]
        y = np.zeros_like(a)
        y[label] = 1.0
        if self.spec.output == "softmax_crossentropy":
            cost = -np.log(a[label])                      # C = -ln a_y
            delta = a - y                                 # BP1 for softmax + cross-entropy
        else:
            cost = 0.5 * np.sum((a - y) ** 2)             # C = ||a - y||^2 / 2
            delta = (a - y) * sigmoid_prime(zs[-1])       # BP1
        nabla_w = [None] * len(self.weights)
        nabla_b = [None] * len(self.weights)
        nabla_b[-1] = delta                               # BP3
        nabla_w[-1] = np.outer(delta, activations[-2])    # BP4
        for layer in range(len(self.weights) - 2, -1, -1):
            sigma_prime = self._layer_activation(layer)[1]
            delta = (self.weights[layer + 1].T @ delta) * sigma_prime(zs[layer])   # BP2
            nabla_b[layer] = delta
            nabla_w[layer] = np.outer(delta, activations[layer])
        return cost, nabla_w, nabla_b

    # -- the shared interface ------------------------------------------------------------
    def feedforward(self, X):
        return np.array([self.feedforward_one(x) for x in X])

    def backprop(self, X, y):
        """Sum the per-example gradients over the batch, then divide by its size."""
        total_cost = 0.0
        nabla_w = [np.zeros_like(W) for W in self.weights]
        nabla_b = [np.zeros_like(b) for b in self.biases]
        for x, label in zip(X, y):
            cost, delta_nabla_w, delta_nabla_b = self.backprop_one(x, label)
            total_cost += cost
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
        m = len(X)
        return total_cost / m, [(nw / m, nb / m) for nw, nb in zip(nabla_w, nabla_b)]

    def update_mini_batch(self, X, y, lr):
        cost, nablas = self.backprop(X, y)
        self.weights = [W - lr * nw for W, (nw, _) in zip(self.weights, nablas)]
        self.biases = [b - lr * nb for b, (_, nb) in zip(self.biases, nablas)]
        return cost
