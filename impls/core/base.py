"""The one interface every implementation provides: ``impls.Network``.

An implementation is constructed from a ``NetworkSpec``, receives its parameters in
canonical form (``set_params``) and its training data once (``set_training_data``),
then trains an epoch at a time from an example order it is given. It never draws
random numbers itself: weights and shuffles come from the caller's seeded generator.

Arrays come in two forms. *Canonical* arrays are NumPy. *Native* arrays are whatever
the implementation computes on (NumPy for CPU code, a device tensor for CUDA);
``asarray``/``to_numpy`` convert. Hot methods (``feedforward``, ``backprop``,
``update_mini_batch``, ``train_epoch``) accept and return native arrays so that a
benchmark can time them without host copies; ``gradients`` and ``evaluate`` return
host values for checking and reporting.
"""
from __future__ import annotations

import abc

import numpy as np

from .errors import ConfigError, UnsupportedError
from .spec import NetworkSpec, check_params


class Network(abc.ABC):
    #: filled in by the registry: the name users type (``--impl``)
    name: str = "?"
    #: dtypes this implementation supports; the first is its default
    dtypes: tuple[str, ...] = ("float32", "float64")
    #: optional, for one that compiles when constructed (never inside a timed call): set
    #: ``self.compile_seconds`` there, and name the environment variable that locates its
    #: compile cache here, so the epoch-grid study can time a cold start and a cached one
    compile_cache_env: str | None = None
    #: seconds spent compiling so far: at construction and in ``warm_up`` (0 for one that never does)
    compile_seconds: float = 0.0

    @classmethod
    def unavailable_reason(cls, **options) -> str | None:
        """Why this implementation cannot run here (e.g. no CUDA device), or None."""
        return None

    @classmethod
    def unsupported_reason(cls, spec: NetworkSpec, **options) -> str | None:
        """Why this implementation declines the network ``spec``, or None if it computes it.

        Override to decline what the implementation cannot express (a library without a
        quadratic cost, say): every check, test, suite and table then skips that pair with
        this reason. The default declines dtypes not in ``dtypes``."""
        if spec.dtype not in cls.dtypes:
            return f"supports dtype {', '.join(cls.dtypes)}, not {spec.dtype}"
        return None

    def __init__(self, spec: NetworkSpec):
        reason = type(self).unsupported_reason(spec)
        if reason:
            raise UnsupportedError(f"{type(self).__name__} {reason}")
        self.spec = spec
        self.np_dtype = np.dtype(spec.dtype)

    # -- parameters ---------------------------------------------------------------
    def set_params(self, params) -> None:
        """Load canonical [(W, b)] parameters (copied and cast to this dtype)."""
        check_params(self.spec, params)
        self._set_params([(np.asarray(W), np.asarray(b)) for W, b in params])

    @abc.abstractmethod
    def _set_params(self, params) -> None: ...

    @abc.abstractmethod
    def get_params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """A canonical copy of the current parameters."""

    # -- data ---------------------------------------------------------------------
    def check_batch(self, X, y=None):
        """Validate a host batch: 2-D float rows of the input width, labels in range."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.spec.sizes[0]:
            raise ConfigError(f"inputs must be shaped (n, {self.spec.sizes[0]}), got {X.shape}")
        if X.dtype.kind != "f":
            raise ConfigError(f"inputs must be floating point (scaled to [0, 1]), got {X.dtype}")
        if y is not None:
            y = np.asarray(y)
            if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
                raise ConfigError(f"labels must be {X.shape[0]} integers, got shape {y.shape} dtype {y.dtype}")
            if y.size and (y.min() < 0 or y.max() >= self.spec.sizes[-1]):
                raise ConfigError(f"labels must lie in 0..{self.spec.sizes[-1] - 1}")
        return X, y

    def asarray(self, X):
        """A host batch as this implementation's native input array."""
        return np.ascontiguousarray(X, dtype=self.np_dtype)

    def aslabels(self, y):
        """Host labels as this implementation's native integer array."""
        return np.ascontiguousarray(y, dtype=np.int64)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def set_training_data(self, X, y) -> None:
        """Receive the training set once; ``train_epoch`` indexes into it.

        Implementations keep it in native form (a CUDA one keeps it on the device),
        so no epoch copies data.
        """
        X, y = self.check_batch(X, y)
        self.X_train, self.y_train = self.asarray(X), self.aslabels(y)
        self.n_train = X.shape[0]

    # -- the mathematics ------------------------------------------------------------
    @abc.abstractmethod
    def feedforward(self, X):
        """Output activations (rows are examples) for a native batch ``X``."""

    @abc.abstractmethod
    def backprop(self, X, y):
        """Forward + backward on a native batch: ``(cost, [(nabla_W, nabla_b)])``.

        ``cost`` is the mean cost over the batch and the nablas are its gradients,
        so an SGD step is ``W -= lr * nabla_W`` (Nielsen's eta/m times the summed
        per-example gradients). Both may be native (device) values.
        """

    @abc.abstractmethod
    def update_mini_batch(self, X, y, lr):
        """One SGD step on a native batch; returns the batch's mean cost (native)."""

    def train_epoch(self, order, batch_size: int, lr: float):
        """One epoch over the training data in ``order``, mini-batches of ``batch_size``
        (the last may be smaller, as in the book). Returns the mean of the mini-batch
        costs, possibly as a device scalar: the caller converts it after timing.

        This is the book's loop (network.py's ``SGD``), written once: slice the shuffled
        order into mini-batches and call ``update_mini_batch`` on each. The order becomes a
        native index array once (for a device implementation, the epoch's one host-to-device
        copy) and the costs are summed as native values, so nothing waits for a device
        mid-epoch. Override it only to do something else: one compiled call for the whole
        epoch, a device-resident loop.
        """
        order = self.aslabels(order)
        batches = minibatches(len(order), batch_size)
        total = 0.0
        for start, stop in batches:
            idx = order[start:stop]
            total = total + self.update_mini_batch(self.X_train[idx], self.y_train[idx], lr)
        return total / len(batches)

    def warm_up(self, batch_size: int, n: int | None = None) -> float:
        """Compile (or capture) now whatever an epoch of ``n`` examples (default: the training
        set) at ``batch_size`` will need, so that none of it lands inside a timed epoch; returns
        the seconds it took and adds them to ``compile_seconds``. The harness calls it before
        it times an epoch and ``train`` before its first; the default has nothing to do."""
        return 0.0

    # -- host-side views ---------------------------------------------------------------
    def gradients(self, X, y):
        """``backprop`` on a host batch, returning ``(float cost, canonical nablas)``."""
        X, y = self.check_batch(X, y)
        cost, nablas = self.backprop(self.asarray(X), self.aslabels(y))
        return float(cost), [(self.to_numpy(nW), self.to_numpy(nb)) for nW, nb in nablas]

    def evaluate(self, X, y, chunk: int = 10_000) -> float:
        """Fraction of examples whose largest output is the label."""
        X, y = self.check_batch(X, y)
        correct = 0
        for start in range(0, X.shape[0], chunk):
            out = self.to_numpy(self.feedforward(self.asarray(X[start:start + chunk])))
            correct += int(np.count_nonzero(out.argmax(axis=1) == y[start:start + chunk]))
        return correct / max(X.shape[0], 1)

    def sync(self) -> None:
        """Wait for queued device work (a no-op on the CPU); call before reading a timer."""

    def threads(self) -> dict:
        """Thread counts this implementation runs with, for the record."""
        return {}

    def set_threads(self, n: int) -> None:
        """Pin the implementation's own thread pool (BLAS is pinned by ``impls.core.threads``)."""


def minibatches(n: int, batch_size: int):
    """(start, stop) of each mini-batch of an n-example epoch; the last may be short."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    return [(k, min(k + batch_size, n)) for k in range(0, n, batch_size)]
