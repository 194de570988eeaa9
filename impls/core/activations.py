"""Elementwise functions of the network, in NumPy, for any array shape.

Shared by the per-example ``reference`` (vectors) and the vectorized ``numpy``
implementation (batches whose rows are examples).
"""
import numpy as np


def sigmoid(z):
    # exp(-z) overflows to inf for very negative z, and 1/(1+inf) = 0 is the right
    # limit, so silence the warning instead of clipping (clipping would change results).
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z):
    return np.maximum(z, 0)


def relu_prime(z):
    # The derivative at exactly 0 is taken as 0, as PyTorch does.
    return (z > 0).astype(z.dtype)


def softmax(z):
    """Softmax over the last axis; subtracting the max keeps exp() finite."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


HIDDEN = {"sigmoid": (sigmoid, sigmoid_prime), "relu": (relu, relu_prime)}
