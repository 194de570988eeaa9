"""Data-parallel SGD on torch.distributed: W ranks, each computing 1/W of every mini-batch.

The algorithm is the book's, exactly. Every rank holds the same weights and the whole training
set, walks the same example order and the same mini-batches, and takes its own contiguous share
of each one (``share``: sizes differ by at most one, and a rank may get none when the book's
short last mini-batch has fewer examples than there are ranks). A rank computes the gradient of
its share's *summed* cost divided by the true mini-batch size m; an all-reduce adds the W of them
into the gradient of the mini-batch's mean cost -- the single-process gradient up to the order
of the additions -- and every rank applies the same SGD step, so the replicas never drift apart.
Nothing is dropped and nothing is averaged over ranks, so an uneven split is exact.

Two ways to get the gradients there, the option ``sync``:

- ``"flat"`` (the default; the faster -- the scaling study, ``make study NAME=scaling``, times
  both): torch-fast's hand-written backpropagation writes every nabla into views of *one* flat
  buffer and every weight lives in views of another, so a step is one all-reduce of that buffer
  and one ``params -= lr * grads`` over all layers. Nothing is allocated or hooked per step.
- ``"ddp"`` (the one that teaches how people do it): torch-idiomatic's ``nn.Module`` wrapped in
  ``DistributedDataParallel``, whose autograd hooks all-reduce gradient buckets while backward
  is still running. DDP *averages* over ranks, so each rank's loss is its summed cost times W/m.
  For this network the overlap buys little (two layers, a backward of microseconds), and the
  hooks, buckets and autograd cost per step what the flat version does not.

The network object you hold is the *driver* (``impls.core.distributed``): it starts W ranks on
this machine (option ``world``; default the usable CPUs, at most the first mini-batch) and
ships each call to them; the training set goes once, as shared memory. Under ``torchrun`` the
same object makes its own process one rank of the job instead, so ``torchrun --nnodes N ...
nnbench train --impl torch-ddp-cpu`` trains one network over several machines (docs/distributed.md).
A rank that raises or dies stops every rank with one error naming it; every collective times out.
"""
from __future__ import annotations

import itertools
import os
import weakref

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .core import distributed
from .core.base import Network, minibatches
from .core.errors import ConfigError, UnavailableError
from .core.registry import Implementation
from .core.threads import usable_cpus
from .torch_fast import FastTorchNetwork
from .torch_idiomatic import IdiomaticTorchNetwork

SYNCS = ("flat", "ddp")


def share(m: int, rank: int, world: int) -> tuple[int, int]:
    """(lo, hi): the rows of an m-example mini-batch that ``rank`` of ``world`` computes."""
    return rank * m // world, (rank + 1) * m // world


def summed_cost(z, y, output):
    """The cost summed (not averaged) over the examples, from logits z and integer labels y."""
    if output == "softmax_crossentropy":
        return F.cross_entropy(z, y, reduction="sum")
    return 0.5 * F.mse_loss(torch.sigmoid(z), F.one_hot(y, z.shape[1]).to(z.dtype), reduction="sum")


class Replica:
    """One rank's copy of the network (mixed into a single-process torch implementation)."""

    def join(self, ctx):
        self.ctx, self.rank, self.world = ctx, ctx.rank, ctx.world

    def shard(self, X, y):
        lo, hi = share(len(X), self.rank, self.world)
        return self.asarray(X[lo:hi]), self.aslabels(y[lo:hi])

    def step(self, x, y, m: int, lr: float):
        """SGD on this rank's share x of an m-example mini-batch; returns its part of the mean cost."""
        cost = self.share_gradients(x, y, m)
        self.apply(lr)
        return cost

    def update(self, X, y, lr):
        cost = self.step(*self.shard(X, y), len(X), lr)
        dist.all_reduce(cost)
        return float(cost)

    def reduced_gradients(self, X, y):
        cost = self.share_gradients(*self.shard(X, y), len(X))
        dist.all_reduce(cost)
        return float(cost), [(self.to_numpy(W), self.to_numpy(b)) for W, b in self.gradient_tensors()]

    def epoch(self, order, batch_size: int, lr: float):
        order = self.aslabels(order)
        batches = minibatches(len(order), batch_size)
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        for start, stop in batches:
            lo, hi = share(stop - start, self.rank, self.world)
            idx = order[start + lo:start + hi]
            total += self.step(self.X_train[idx], self.y_train[idx], stop - start, lr)
        dist.all_reduce(total)      # each rank summed its parts of every mini-batch's mean cost
        return float(total) / len(batches)

    def run_here(self, fn, *args):
        return fn(self.ctx, self, *args)

    def forward(self, X):
        return self.to_numpy(self.feedforward(self.asarray(X)))


class FlatReplica(Replica, FastTorchNetwork):
    """torch-fast's backprop into one flat gradient buffer, summed by one all-reduce."""

    def __init__(self, spec, ctx):
        FastTorchNetwork.__init__(self, spec, ctx.device)
        self.join(ctx)
        self.flat_params, self.flat_grads = self._new(spec.n_params), self._new(spec.n_params)
        self.weights, self.biases = self._views(self.flat_params)
        self.grads = list(zip(*self._views(self.flat_grads)))
        self.cost = self._new(1)

    def _views(self, flat):
        weights, biases, k = [], [], 0
        for (n_out, n_in), _ in self.spec.shapes:
            weights.append(flat[k:k + n_out * n_in].view(n_out, n_in))
            biases.append(flat[k + n_out * n_in:k + n_out * n_in + n_out])
            k += n_out * n_in + n_out
        return weights, biases

    def local_gradients(self, x, y, m):
        """This rank's share alone into the flat buffer (no communication); its part of the cost."""
        self.flat_grads.zero_()
        self.cost.zero_()
        if len(x):
            buf = self.buffers(len(x))
            self._forward(x, buf)
            # scale 1/m: the share's summed gradient over the whole mini-batch's size
            self._backward(x, self._one_hot(y, buf.yhot), buf, self.cost, self.grads, 1.0 / m)
        return self.cost[0] * (len(x) / m)      # _backward averaged the cost over the share

    def share_gradients(self, x, y, m):
        cost = self.local_gradients(x, y, m)
        dist.all_reduce(self.flat_grads)        # the one collective of a step
        return cost

    def apply(self, lr):
        self.flat_params.add_(self.flat_grads, alpha=-lr)

    def gradient_tensors(self):
        return self.grads


class DDPReplica(Replica, IdiomaticTorchNetwork):
    """torch-idiomatic's module inside DistributedDataParallel, stepped by torch.optim.SGD."""

    def __init__(self, spec, ctx):
        IdiomaticTorchNetwork.__init__(self, spec, ctx.device)
        self.join(ctx)
        self.ddp = DistributedDataParallel(self.model)

    def share_gradients(self, x, y, m):
        self.optimizer.zero_grad()
        cost = summed_cost(self.ddp(x), y, self.spec.output) / m
        (cost * self.world).backward()      # DDP divides the all-reduced sum by W
        return cost.detach()

    def local_gradients(self, x, y, m):
        with self.ddp.no_sync():                # DDP's switch for its all-reduce
            return self.share_gradients(x, y, m)

    def apply(self, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()

    def gradient_tensors(self):
        return [(layer.weight.grad, layer.bias.grad) for layer in self.model.layers]


# -- what the driver ships to the ranks: module functions, so that they pickle by name ----------
def _create(ctx, key, dropped, spec, sync, threads, params, data):
    _forget(ctx, dropped)
    replica = (FlatReplica if sync == "flat" else DDPReplica)(spec, ctx)
    if ctx.device == "cpu":
        torch.set_num_threads(threads)
    replica.set_params(params)
    if data is not None:
        replica.set_training_data(*data)
    ctx.state[key] = replica


def _call(ctx, key, dropped, method, *args):
    _forget(ctx, dropped)
    return getattr(ctx.state[key], method)(*args)


def _forget(ctx, keys):
    for key in keys:
        ctx.state.pop(key, None)


_keys = itertools.count()
_dropped: list = []     # instances garbage-collected since the last call: their replicas go next time


class DataParallelNetwork(Network):
    dtypes = ("float32", "float64")

    @classmethod
    def unavailable_reason(cls, backend: str = "gloo", **options) -> str | None:
        return distributed.backend_unavailable_reason(backend)

    def __init__(self, spec, backend="gloo", world=None, sync="flat", port=0, timeout=distributed.DEFAULT_TIMEOUT):
        super().__init__(spec)
        if sync not in SYNCS:
            raise ConfigError(f"sync={sync!r}: choose one of {', '.join(map(repr, SYNCS))}")
        if world is not None and (not isinstance(world, int) or world < 1):
            raise ConfigError(f"world={world!r}: the number of ranks must be an integer >= 1")
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise ConfigError(f"port={port!r}: choose a TCP port 1-65535, or 0 (the default) to pick a free one")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"timeout={timeout!r}: seconds a collective may wait, > 0")
        reason = distributed.backend_unavailable_reason(backend)
        if reason:
            raise UnavailableError(f"{type(self).__name__} with {backend}: {reason}")
        limit = torch.cuda.device_count() if backend == "nccl" else usable_cpus()
        if world is not None and world > limit and not distributed.launched_by_torchrun():
            raise ConfigError(f"world={world} ranks cannot run here: this process may use {limit} "
                              f"{'GPU' if backend == 'nccl' else 'CPU'}{'s' if limit > 1 else ''}, so choose "
                              f"1 to {limit} (a rank beyond that only waits, and every all-reduce waits for it)")
        self.backend, self.world, self.sync_mode, self.port, self.timeout = backend, world, sync, port, timeout
        self.rank_threads, self._ranks, self._params, self._data = 1, None, None, None
        self.key = next(_keys)
        weakref.finalize(self, _dropped.append, self.key)

    # -- the ranks, started on the first call that needs them ------------------------------
    def _run(self, method, *args, m=None, everywhere=True):
        if self._ranks is None:
            self._start(m)
        elif not self._ranks.alive:
            raise distributed.RankError(f"{self.name}: its ranks were stopped (by an earlier failure, or a "
                                        "network with another world size); create it again")
        if m is not None and m < self._ranks.world:
            raise ConfigError(f"a mini-batch of {m} example{'s' if m > 1 else ''} cannot be shared by "
                              f"{self._ranks.world} ranks: choose world <= {m}")
        dropped = _take_dropped()
        return self._ranks.run(_call, self.key, dropped, method, *args, everywhere=everywhere, doing=method)

    def _start(self, m):
        world = self.world
        if distributed.launched_by_torchrun():
            world = int(os.environ["WORLD_SIZE"])
            if self.world not in (None, world):
                raise ConfigError(f"world={self.world}, but torchrun started WORLD_SIZE={world} ranks")
        elif world is None:
            world = min(usable_cpus() if self.backend == "gloo" else torch.cuda.device_count(), m or usable_cpus())
        self._ranks = distributed.ranks(world, self.backend, self.port, self.timeout)
        self._ranks.run(_create, self.key, _take_dropped(), self.spec, self.sync_mode, self.rank_threads,
                        self._params, self._data, doing="creating the replicas")

    # -- the interface: every call goes to the ranks ------------------------------------------
    def _set_params(self, params):
        self._params = [(np.array(W, dtype=self.np_dtype), np.array(b, dtype=self.np_dtype)) for W, b in params]
        if self._ranks is not None:
            self._run("set_params", self._params)

    def get_params(self):
        if self._ranks is None:
            return [(W.copy(), b.copy()) for W, b in self._params]
        return self._run("get_params", everywhere=False)

    def set_training_data(self, X, y):
        X, y = self.check_batch(X, y)
        # Shared memory: the pipe to each rank then carries a handle, not the 60,000 images.
        self._data = (torch.from_numpy(np.ascontiguousarray(X, dtype=self.np_dtype)).share_memory_(),
                      torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).share_memory_())
        self.n_train = len(y)
        if self._ranks is not None:
            self._run("set_training_data", *self._data)

    def feedforward(self, X):
        return self._run("forward", X, everywhere=False)

    def backprop(self, X, y):
        cost, nablas = self._run("reduced_gradients", X, y, m=len(X))
        return np.asarray(cost), nablas

    def update_mini_batch(self, X, y, lr):
        return self._run("update", X, y, lr, m=len(X))

    def train_epoch(self, order, batch_size, lr):
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        return self._run("epoch", np.asarray(order, dtype=np.int64), batch_size, lr,
                         m=min(batch_size, len(order)))

    def run_on_ranks(self, fn, *args):
        """``fn(ctx, replica, *args)`` on every rank, with this network's replica there; rank 0's
        result (the scaling study times steps inside the ranks this way)."""
        return self._run("run_here", fn, *args)

    def threads(self) -> dict:
        ranks = self._ranks.world if self._ranks is not None else (self.world or f"up to {usable_cpus()}")
        return {"ranks": ranks, "backend": self.backend, "sync": self.sync_mode, "torch_per_rank": self.rank_threads}

    def set_threads(self, n: int) -> None:
        """n CPUs for the whole network: each of the W ranks runs n // W torch threads (at least one)."""
        world = self._ranks.world if self._ranks is not None else (self.world or usable_cpus())
        self.rank_threads = max(1, n // world)
        if self._ranks is not None:
            self._ranks.run(_set_threads, self.rank_threads, doing="setting threads")


def _set_threads(ctx, n):
    if ctx.device == "cpu":
        torch.set_num_threads(n)


def _take_dropped() -> list:
    keys = list(_dropped)
    del _dropped[:len(keys)]
    return keys


cpu = Implementation(DataParallelNetwork, backend="gloo")
cuda = Implementation(DataParallelNetwork, backend="nccl")
