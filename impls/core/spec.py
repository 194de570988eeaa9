"""The network every implementation computes, and its canonical parameters.

A ``NetworkSpec`` says *what* to compute (layer sizes, activations, cost, dtype);
an implementation says *how*. Parameters travel between implementations in one
canonical NumPy form so that any two can start from identical weights:

    params = [(W_1, b_1), ..., (W_L, b_L)],  W_l shaped (n_out, n_in), b_l shaped (n_out,)

so layer l computes z_l = a_{l-1} @ W_l.T + b_l for a batch whose rows are examples
(for one example, z = W a + b exactly as in Nielsen's chapter 1).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import ConfigError

HIDDEN_ACTIVATIONS = ("sigmoid", "relu")
# The output non-linearity and the cost come as a pair: each pair has the simple
# output error delta^L = (a - y) * sigma'(z) or delta^L = a - y that backprop relies on.
OUTPUTS = ("sigmoid_quadratic", "softmax_crossentropy")
DTYPES = ("float32", "float64")
INITS = ("normal", "scaled")


@dataclass(frozen=True)
class NetworkSpec:
    """Layer sizes (input first, any depth >= 1 weight layer), hidden activation,
    output+cost pair and floating-point dtype."""

    sizes: tuple[int, ...]
    hidden: str = "sigmoid"
    output: str = "sigmoid_quadratic"
    dtype: str = "float32"

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"layer sizes must be >= 2 positive integers, got {self.sizes}")
        object.__setattr__(self, "sizes", sizes)
        for value, allowed, what in ((self.hidden, HIDDEN_ACTIVATIONS, "hidden activation"),
                                     (self.output, OUTPUTS, "output/cost pair"),
                                     (self.dtype, DTYPES, "dtype")):
            if value not in allowed:
                raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")

    def describe(self) -> str:
        """e.g. ``784-30-10 sigmoid/sigmoid_quadratic float32``"""
        return f"{'-'.join(map(str, self.sizes))} {self.hidden}/{self.output} {self.dtype}"

    def with_dtype(self, dtype: str) -> NetworkSpec:
        return replace(self, dtype=dtype)

    @property
    def shapes(self) -> list[tuple[tuple[int, int], tuple[int]]]:
        """[(W shape, b shape)] per layer."""
        return [((n_out, n_in), (n_out,)) for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def macs_per_example(self) -> int:
        """Multiply-adds of one forward pass (the matrix products; elementwise work is O(n))."""
        return sum(n_in * n_out for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def backprop_macs_per_example(self) -> int:
        """Multiply-adds of forward + backward for one example: the forward products, one
        nabla_W = delta a^T per layer, and delta carried back (BP2) through every layer but the first."""
        return 3 * self.macs_per_example - self.sizes[0] * self.sizes[1]

    @property
    def n_params(self) -> int:
        return sum(n_in * n_out + n_out for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))


def init_params(spec: NetworkSpec, rng: np.random.Generator, init: str = "normal"):
    """Initial parameters in canonical form (float64), drawn from ``rng`` only.

    ``normal``: every weight and bias ~ N(0, 1), as in Nielsen's network.py. With 784
    inputs this puts many sigmoid units deep in saturation, which is why some seeds stall.
    ``scaled``: weights ~ N(0, 2/n_in) into a ReLU (He et al.) and N(0, 1/n_in) into a
    sigmoid/softmax (LeCun/Xavier-style); biases zero, so activations start at unit scale.
    Draw order (layer by layer, W then b) is fixed so the same seed gives the same network.
    """
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    params = []
    n_layers = len(spec.sizes) - 1
    for layer, ((n_out, n_in), _) in enumerate(spec.shapes):
        if init == "normal":
            W = rng.standard_normal((n_out, n_in))
            b = rng.standard_normal(n_out)
        else:
            feeds_relu = spec.hidden == "relu" and layer < n_layers - 1
            W = rng.standard_normal((n_out, n_in)) * np.sqrt((2.0 if feeds_relu else 1.0) / n_in)
            b = np.zeros(n_out)
        params.append((W, b))
    return params


def check_params(spec: NetworkSpec, params) -> None:
    """Raise ConfigError unless ``params`` matches ``spec`` layer for layer."""
    try:
        layers = list(params)
    except TypeError:
        raise ConfigError("parameters must be a list of (W, b) pairs") from None
    if len(layers) != len(spec.shapes):
        raise ConfigError(f"expected {len(spec.shapes)} (W, b) layers for sizes {spec.sizes}, got {len(layers)}")
    for layer, (pair, (w_shape, b_shape)) in enumerate(zip(layers, spec.shapes), start=1):
        try:
            W, b = pair
        except (TypeError, ValueError):
            raise ConfigError(f"layer {layer}: expected a (W, b) pair") from None
        for name, arr, shape in (("W", W, w_shape), ("b", b, b_shape)):
            arr = np.asarray(arr)
            if arr.shape != shape:
                raise ConfigError(f"layer {layer}: {name} has shape {arr.shape}, expected {shape}")
            if arr.dtype.kind != "f":
                raise ConfigError(f"layer {layer}: {name} has dtype {arr.dtype}, expected floating point")
