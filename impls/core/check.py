"""Checks one implementation against another: forward, every gradient, an SGD step, an epoch.

Written once, used by ``nnbench check``, by the tests (parametrized over the registry) and by
the benchmarks and studies (validate before timing). Each check takes ready implementations,
gives them identical parameters and inputs, and returns a ``Result``: every comparison it
made with its worst error and the tolerance there. By default a failed check raises
AssertionError naming what differs (``strict=False`` returns it for a report instead).

Tolerances depend on the dtype of the implementation under test (the oracle is float64):
- float64: both sides compute the same sums in a different order (BLAS blocking vs a
  per-example loop), which perturbs results by a few ulps times the condition of the
  sums; 1e-9 relative is ~10^7 ulps of headroom yet catches any real formula error.
- float32: unit roundoff is 6e-8, and a 784-long dot product of terms of mixed sign loses
  up to sqrt(784) * 6e-8 ~ 2e-6 of the largest partial sums. Forward outputs lie in
  [0, 1], so 1e-4 relative with 1e-5 absolute leaves ~10x margin; gradients are further
  sums of products of those (and divide by the batch), so they get 1e-3 relative with
  an absolute floor of 1e-4 of the largest entry, below which float32 cancellation
  makes relative error meaningless.
- finite differences (float64 only): central differences with eps = 1e-6 are accurate to
  O(eps^2) truncation plus ~1e-16/eps rounding, ~1e-9 absolute on these O(1) gradients, so
  1e-5 relative with a floor of 1e-8 of the largest entry is far below any real error.
- same seed twice: the same arithmetic on the same inputs, so exactly equal (tolerance 0).
Absolute floors are scaled by the largest |expected| entry so they mean the same for
a gradient of size 1e-3 as for one of size 10.

Before any value is compared, its structure is (``impls.core.structure``): layer counts,
shapes, dtypes, and inputs the call must have left untouched.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ImplementationError
from .spec import NetworkSpec, init_params
from .structure import Untouched, dtype_comparison, layers_comparison

TOLERANCES = {
    # dtype: {what: (rtol, atol as a fraction of max |expected|)}
    "float64": {"forward": (1e-9, 1e-12), "gradient": (1e-9, 1e-12), "params": (1e-9, 1e-12),
                "finite_difference": (1e-5, 1e-8), "identical": (0.0, 0.0)},
    "float32": {"forward": (1e-4, 1e-5), "gradient": (1e-3, 1e-4), "params": (1e-4, 1e-5),
                "identical": (0.0, 0.0)},
}
FD_EPS = 1e-6


@dataclass
class Comparison:
    """One array against its expected value: the worst entry's error and what was allowed there."""
    label: str
    error: float            # |actual - expected| at the entry closest to (or furthest past) its bound
    allowed: float          # atol + rtol * |expected| at that entry
    ok: bool
    note: str = ""          # a shape mismatch, NaN where a number was expected, ...

    @classmethod
    def problem(cls, label: str, note: str) -> Comparison:
        """A structural failure (a missing layer, a wrong dtype, a modified input): no error to measure."""
        return cls(label, float("inf"), 0.0, False, note)

    @property
    def structural(self) -> bool:
        return not self.ok and self.allowed == 0 and self.error == float("inf") and bool(self.note)

    def describe(self) -> str:
        if self.structural:
            return f"{self.label}: {self.note}"
        return (f"{self.label} differs beyond tolerance: worst |error| {self.error:.3g}, allowed {self.allowed:.3g}"
                + (f" ({self.note})" if self.note else ""))

    @property
    def ratio(self) -> float:
        if not self.ok and self.allowed == 0:
            return float("inf")
        return self.error / self.allowed if self.allowed else 0.0


def compare(actual, expected, dtype: str, what: str, label: str) -> Comparison:
    rtol, atol_frac = TOLERANCES[dtype][what]
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Comparison.problem(label, f"shape {actual.shape}, expected {expected.shape}")
    atol = atol_frac * float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0))
    actual, expected = np.atleast_1d(actual), np.atleast_1d(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(actual - expected)
        error[(actual == expected) | (np.isnan(actual) & np.isnan(expected))] = 0.0   # equal infinities, NaNs
        error[np.isnan(error)] = np.inf                                                # NaN vs a number
        allowed = atol + rtol * np.abs(expected)
        ratio = np.zeros_like(error)
        past = error > 0
        ratio[past] = np.where(allowed[past] > 0, error[past] / np.where(allowed[past] > 0, allowed[past], 1.0), np.inf)
    if error.size == 0:
        return Comparison(label, 0.0, atol, True)
    i = int(np.argmax(ratio))
    worst, bound = float(error.flat[i]), float(allowed.flat[i])
    ok = bool(np.all(error <= allowed))
    note = "" if ok or np.isfinite(worst) else "NaN or inf where a finite number was expected"
    return Comparison(label, worst, bound, ok, note)


@dataclass
class Result:
    """A check's comparisons; ``worst`` is the one nearest to (or furthest past) its tolerance."""
    name: str
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    @property
    def failed(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.ok]

    @property
    def worst(self) -> Comparison | None:
        return max(self.comparisons, key=lambda c: c.ratio, default=None)

    def message(self) -> str:
        return "; ".join(c.describe() for c in self.failed)

    def require(self) -> Result:
        if not self.ok:
            raise AssertionError(f"{self.name}: {self.message()}" if self.name else self.message())
        return self


def _finish(result: Result, strict: bool) -> Result:
    return result.require() if strict else result


def assert_close(actual, expected, dtype: str, what: str, label: str) -> None:
    Result("", [compare(actual, expected, dtype, what, label)]).require()


def random_problem(spec: NetworkSpec, seed: int, batch: int, init: str = "scaled"):
    """(params, X, y): canonical parameters and an MNIST-like batch (pixels in [0, 1])."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng, init)
    X = rng.random((batch, spec.sizes[0]))
    y = rng.integers(0, spec.sizes[-1], size=batch)
    return params, X, y


def gradient_comparisons(net, actual, expected, label: str = "", what: str = "gradient") -> list[Comparison]:
    """Host ``(cost, [(nabla_W, nabla_b)])`` of ``net`` against expected ones, one comparison each."""
    (cost, grads), (cost_ref, grads_ref) = actual, expected
    dtype = net.spec.dtype
    out = [] if cost_ref is None else [compare(cost, cost_ref, dtype, "forward", f"cost{label}")]
    out += layers_comparison(grads, grads_ref, f"gradients{label}")
    if out and out[-1].structural:
        return out
    for layer, ((nW, nb), (rW, rb)) in enumerate(zip(grads, grads_ref), start=1):
        for name, a, r in ((f"nabla_W of layer {layer}{label}", nW, rW), (f"nabla_b of layer {layer}{label}", nb, rb)):
            out += dtype_comparison(net, a, name) + [compare(a, r, dtype, what, name)]
    return out


def params_comparisons(net, params, expected, label: str, what: str = "params") -> list[Comparison]:
    out = layers_comparison(params, expected, f"get_params {label}")
    if out:
        return out
    for layer, ((W, b), (rW, rb)) in enumerate(zip(params, expected), start=1):
        for name, a, r in ((f"W of layer {layer} {label}", W, rW), (f"b of layer {layer} {label}", b, rb)):
            out += dtype_comparison(net, a, name) + [compare(a, r, net.spec.dtype, what, name)]
    return out


def assert_gradients_close(net, actual, expected, label: str = "") -> None:
    Result(f"{net.name} gradients", gradient_comparisons(net, actual, expected, label)).require()


def assert_params_close(net, params, expected, label: str, what: str = "params") -> None:
    Result(f"{net.name} parameters", params_comparisons(net, params, expected, label, what)).require()


# -- the checks ------------------------------------------------------------------------------------
def check_forward(net, ref, params, X, label="forward", strict=True) -> Result:
    for n in (net, ref):
        n.set_params(params)
    expected = ref.to_numpy(ref.feedforward(ref.asarray(X.copy())))
    native = net.asarray(X)
    watch = Untouched(net, X=native)
    actual = net.to_numpy(net.feedforward(native))
    comparisons = dtype_comparison(net, actual, "output activations")
    comparisons += [compare(actual, expected, net.spec.dtype, "forward", "output activations")]
    return _finish(Result(f"{net.name} {label}", comparisons + watch.comparisons("feedforward")), strict)


def check_gradients(net, ref, params, X, y, strict=True) -> Result:
    for n in (net, ref):
        n.set_params(params)
    expected = ref.gradients(X.copy(), y.copy())
    watch = Untouched(net, X=X, y=y, params=params)
    comparisons = gradient_comparisons(net, net.gradients(X, y), expected)
    return _finish(Result(f"{net.name} gradients", comparisons + watch.comparisons("backprop")), strict)


def check_sgd_step(net, ref, params, X, y, lr: float, strict=True) -> Result:
    ref.set_params(params)
    ref.update_mini_batch(ref.asarray(X.copy()), ref.aslabels(y.copy()), lr)
    net.set_params(params)
    native_X, native_y = net.asarray(X), net.aslabels(y)
    watch = Untouched(net, X=native_X, y=native_y, params=params)
    net.update_mini_batch(native_X, native_y, lr)
    comparisons = params_comparisons(net, net.get_params(), ref.get_params(), "after one SGD step")
    return _finish(Result(f"{net.name} SGD step", comparisons + watch.comparisons("update_mini_batch")), strict)


def check_epoch(net, ref, params, X, y, order, batch_size: int, lr: float, strict=True) -> Result:
    """One epoch over (X, y) in ``order`` from ``params``; pass an order whose length is not a
    multiple of ``batch_size`` to include the book's short last mini-batch."""
    costs = []
    watch = Untouched(net, X=X, y=y, order=order, params=params)
    for n, (Xn, yn, on) in ((ref, (X.copy(), y.copy(), order.copy())), (net, (X, y, order))):
        n.set_params(params)
        n.set_training_data(Xn, yn)
        cost = n.train_epoch(on, batch_size, lr)
        n.sync()
        costs.append(cost_value(n, cost, "train_epoch"))
    # Differences compound over the epoch's steps, so compare with the gradient tolerance.
    comparisons = [compare(costs[1], costs[0], net.spec.dtype, "gradient", "epoch cost")]
    comparisons += params_comparisons(net, net.get_params(), ref.get_params(), "after one epoch", "gradient")
    return _finish(Result(f"{net.name} epoch", comparisons + watch.comparisons("train_epoch")), strict)


def cost_value(net, cost, method: str) -> float:
    """A cost an implementation returned, as a float; ImplementationError naming the method
    otherwise (``None`` from a ``train_epoch`` that forgot its ``return``, a list, a string)."""
    try:
        return float(net.to_numpy(cost) if cost is not None and not isinstance(cost, (int, float)) else cost)
    except (TypeError, ValueError):
        raise ImplementationError(f"{net.name}: {method} returned {repr(cost)[:60]}, not the mean cost "
                                  "(a number)") from None


def check_finite_differences(net, params, X, y, strict=True) -> Result:
    """``net``'s backprop (float64) against central differences of its own mean cost."""
    net.set_params(params)
    actual = net.gradients(X, y)
    numeric = finite_difference_gradients(net, params, X, y)
    comparisons = gradient_comparisons(net, actual, (None, numeric), " (vs finite differences)", "finite_difference")
    return _finish(Result(f"{net.name} finite differences", comparisons), strict)


def finite_difference_gradients(net, params, X, y, eps: float = FD_EPS):
    """Central differences (C(p + eps) - C(p - eps)) / 2 eps of the batch's mean cost
    for every parameter; O(eps^2) truncation plus ~1e-16/eps rounding in float64."""
    grads = []
    for layer, (W, b) in enumerate(params):
        pair = []
        for which, arr in ((0, W), (1, b)):
            g = np.zeros_like(arr, dtype=np.float64)
            for idx in np.ndindex(arr.shape):
                costs = []
                for sign in (1.0, -1.0):
                    bumped = [(w.copy(), c.copy()) for w, c in params]
                    bumped[layer][which][idx] += sign * eps
                    net.set_params(bumped)
                    costs.append(net.gradients(X, y)[0])
                g[idx] = (costs[0] - costs[1]) / (2 * eps)
            pair.append(g)
        grads.append(tuple(pair))
    net.set_params(params)
    return grads
