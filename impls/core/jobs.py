"""What the supervised child process (``impls.core.isolation``) runs for ``nnbench check`` and
``nnbench train``: the same steps as in-process, each announced as a phase before it starts so
that the parent can bound it and name it if the process hangs or dies there.

The order is the user's: the data first (a directory the user named is refused before anything
runs), then the implementation's import (under the import limit), then construction (announced
as compiling, with its measured time, for an implementation that compiles), then the work.
An exception from the implementation's own code becomes one line naming the implementation, the
method it came out of, and the error.
"""
from __future__ import annotations

import dataclasses

from .errors import ImplementationError, NnbenchError, UnsupportedError
from .isolation import compiling, where_it_raised
from .registry import create, default_dtype, registry, unsupported


def _import(channel, name: str):
    channel.phase(f"importing {registry().entries[name].target}", "imports")
    cls, _, reason = registry().load(name)
    if reason:
        raise NnbenchError(f"implementation {name!r} is unavailable: {reason}")
    return cls


def _overrides_warm_up(cls) -> bool:
    from .base import Network
    return getattr(cls, "warm_up", None) is not Network.warm_up


def check(channel, name: str, data_dir=None, mnist: bool = True):
    """``nnbench check``: every conformance line (``impls.core.conformance``)."""
    from .conformance import load_mnist, run_checks
    data = None
    if mnist:
        channel.phase("loading MNIST")
        data = load_mnist(data_dir)
    cls = _import(channel, name)
    channel.send("ready", None)
    compiled = set()

    def construct(name, spec):
        # an implementation that compiles when constructed (Numba) does so once per dtype
        if spec.dtype in compiled or _overrides_warm_up(cls):
            return create(name, spec)
        compiled.add(spec.dtype)
        with compiling(channel, name, cls, f"for {spec.dtype}"):
            return create(name, spec)
    return run_checks(name, data, mnist, channel.phase, construct)


def train(channel, impl: str, preset: str, changes: dict, dtype, threads, data_dir, seed: int, epochs):
    """``nnbench train``: the header lines, one row per epoch (``say``), and the summary's numbers."""
    from . import threads as thread_pools
    from .mnist import load_dataset
    from .presets import get_preset
    from .train import pin_threads, train as run
    preset = dataclasses.replace(get_preset(preset), **changes)
    cls = _import(channel, impl)
    spec = preset.spec(dtype or default_dtype(impl))
    why = unsupported(impl, spec)           # before the data: a refusal needs no MNIST
    if why:
        raise UnsupportedError(f"implementation {impl!r} declines {spec.describe()}: {why}")
    channel.phase("loading MNIST")
    data = load_dataset(data_dir)
    channel.phase(f"constructing it for {spec.describe()}")
    net = None
    try:
        if _overrides_warm_up(cls):
            net = create(impl, spec)
        else:
            with compiling(channel, impl, cls, f"for {spec.dtype}"):
                net = create(impl, spec)
        pin_threads(net, threads)
        channel.say(f"{net.name} on {preset.name} (seed {seed}, batch {preset.batch_size or 'full'}, "
                    f"lr {preset.lr}, dtype {net.spec.dtype})")
        channel.say("threads: " + ", ".join(f"{k}={v}" for k, v in thread_pools.info(net).items()))
        channel.say(f"data: {data.source} ({len(data.X_train):,} training and {len(data.X_test):,} test images)")

        def show(r):
            if r.epoch == 1:        # not before: a refused training set or a first epoch's NaN has no rows
                channel.say(f"{'epoch':>5} {'seconds':>9} {'cost':>10} {'test acc':>9}")
            channel.say(f"{r.epoch:>5} {r.seconds:>9.3f} {r.cost:>10.5f} {r.accuracy:>9.2%}")

        def warm_up(net, batch, n):
            if not _overrides_warm_up(cls):
                return net.warm_up(batch, n)
            with compiling(channel, impl, cls, f"the epoch at batch {batch}"):
                return net.warm_up(batch, n)

        result = run(net, preset, data, seed=seed, epochs=epochs, on_epoch=show, progress=channel.phase,
                     warm_up=warm_up)
    except NnbenchError:
        raise
    except Exception as exc:        # noqa: BLE001 -- the implementation's, reported in one line
        method = where_it_raised(exc, net) if net is not None else "its constructor"
        said = " ".join(str(exc).split())         # one line, whatever the message holds
        raise ImplementationError(f"{impl}: {method or 'its code'} raised {type(exc).__name__}: {said}") from None
    return {"final_accuracy": result.final_accuracy, "target": preset.target, "met": result.met_target,
            "seconds": result.train_seconds, "reached": result.time_to_target}
