"""argparse types shared by every command line (``nnbench``, the profiler, the studies,
the benchmark plugin's options): the same words for the same mistakes everywhere."""
from __future__ import annotations

import argparse
import math

from .errors import NnbenchError


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _integer(text, 1)


def seed(text: str) -> int:
    """A seed for ``numpy.random.default_rng``, which takes any non-negative integer (and
    raises a bare ValueError on a negative one, after the run has started)."""
    return _integer(text, 0)


def thread_count(text: str) -> int:
    """A positive integer this machine can honour (``impls.core.threads.check``)."""
    from .threads import check
    value = positive_int(text)
    try:
        check(value)
    except NnbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def implementation(text: str) -> str:
    """A registered name, or ``[NAME=]module:Class[(options)]`` registered here; returns the name."""
    from .registry import register
    try:
        return register(text, "--impl")
    except NnbenchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def preset(text: str) -> str:
    from .presets import PRESETS
    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"unknown preset {text!r}; choose one of {', '.join(PRESETS)}")
    return text
