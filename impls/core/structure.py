"""The structure every check verifies before it compares a single value (``impls.core.check``).

A value comparison cannot see what is not there, or what it was not given to compare:

- layers: as many (W, b) pairs as the network has layers. ``zip`` stops at the shorter list, so
  gradients of one layer of two, or of three, passed every comparison;
- dtypes: each array an implementation returns is in its own dtype. One that declares float32
  but computes in float64 passed (the float32 tolerance is looser) and would be timed as float32;
- inputs: every call leaves its arguments as they were. The caller's batch, labels, example
  order and parameters are compared, exactly, with copies taken before the call; a
  ``feedforward`` that zeroed its input returned correct values and then trained to chance.

Each finding is a ``Comparison.problem``: a failure with a note, and no error to measure.
"""
from __future__ import annotations

import numpy as np


def _problem(label: str, note: str):
    from .check import Comparison          # check imports this module; Comparison lives there
    return Comparison.problem(label, note)


def dtype_comparison(net, array, label: str) -> list:
    """An array ``net`` returned must be in its dtype (the reference, float64 whatever it is
    asked, is not held to a dtype it does not declare)."""
    dtype = getattr(array, "dtype", None)
    if dtype is None or str(dtype).rsplit(".", 1)[-1] == net.spec.dtype:
        return []
    return [_problem(label, f"dtype {str(dtype).rsplit('.', 1)[-1]}, but the implementation "
                            f"declares {net.spec.dtype}")]


def layers_comparison(pairs, expected, label: str) -> list:
    """One (W, b) pair per layer: ``zip`` alone would compare the layers both lists have and
    pass a list that lacks one, or has one too many."""
    try:
        ok = len(pairs) == len(expected) and all(len(pair) == 2 for pair in pairs)
    except TypeError:
        ok = False
    if ok:
        return []
    try:
        n = f"{len(pairs)} entries"
    except TypeError:
        n = f"a {type(pairs).__name__}"
    return [_problem(label, f"{n}, expected {len(expected)} (W, b) pairs, one per layer")]


class Untouched:
    """Copies of a call's inputs, taken before it, to prove afterwards that it left them alone.
    ``to_numpy`` reads native (device) arrays; the comparison is exact."""

    def __init__(self, net, **inputs):
        self.net, self.inputs = net, inputs
        self.before = {name: self._host(value) for name, value in inputs.items()}

    def _host(self, value):
        if isinstance(value, (list, tuple)):
            return [self._host(v) for v in value]
        return np.array(self.net.to_numpy(value), copy=True)

    def comparisons(self, method: str) -> list:
        out = []
        for name, value in self.inputs.items():
            now, before = self._host(value), self.before[name]
            flat_now = [a for pair in now for a in pair] if isinstance(now, list) else [now]
            flat_before = [a for pair in before for a in pair] if isinstance(before, list) else [before]
            same = all(a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
                       for a, b in zip(flat_now, flat_before))
            if not same:
                out.append(_problem(f"{method}'s input {name}",
                                    "modified by the call (an implementation must not write to its arguments)"))
        return out
