"""The whole training step in two GPU kernels, written in Triton.

On an H100, torch-fast-cuda's batch-10 step was almost all its 18 kernels' fixed costs, even
replayed from a CUDA graph (docs/measurements.md, "torch"): a step of a few microseconds of
arithmetic made of launches. Here a step -- fetch the mini-batch by index from the training set held on the
device, forward, backward (BP1-BP4), SGD update -- is two kernels. Not one: every example's
delta must exist before any weight may change, and only a kernel boundary waits for all of them.

  forward_backward  one program per BLOCK_M examples: gathers their inputs through the example
                    order; z1 = x W1^T + b1, BLOCK_K inputs at a time; a1; z2; the output error
                    delta2 (BP1); delta1 = (delta2 W2) * sigma'(z1) (BP2, W2 not yet updated).
                    Leaves a1, delta1, delta2 and each example's cost in a small scratch.
  update            one program per BLOCK_K input columns: nabla_W1[:, cols] = delta1^T x over
                    the mini-batch (BP4), W1[:, cols] += scale * nabla_W1; program 0 also does
                    W2, b2, b1 (BP3, BP4) and adds the batch's mean cost to a running total.

The hidden and output layers are one block each (padded to a power of two, at most MAX_WIDTH),
so networks with exactly one hidden layer -- both presets' -- are computed, deeper ones declined.
Products are tl.dot in IEEE float32 (never TF32, so the CPU's tolerances hold), summed in a fixed
order with no atomics: the same inputs give the same bits.

A mini-batch is examples order[start:start + m] with m = min(batch, n - start), and scale =
-rate/m, both computed in the kernels: the book's short last mini-batch is the same two launches
with rows masked, and an epoch is n_batches steps that differ only in ``start``. On CUDA an
epoch's launches are captured once into one CUDA graph (per n, batch size and rate); an epoch is
then the order copied into the graph's buffer and one replay, with no Python between steps.

Why Triton rather than Numba's CUDA target: a Triton program computes on blocks, so the kernels
read like the matrix equations, where a Numba CUDA kernel is written per thread, its tiling in
shared memory and its reductions by hand; Triton comes with CUDA builds of torch, takes torch
tensors and launches on torch's stream, so torch's CUDA graphs capture it; and its interpreter
runs these very kernels on CPU tensors, which is how the tests check them without a GPU.

``triton-fused-cuda`` runs on a CUDA device. ``interpreted`` (device "cpu", for checking, never
for timing: ``nnbench check impls.triton_fused:interpreted``) runs the kernels in Triton's
interpreter, which Triton picks when it decorates them, at import: so only in a process started
with TRITON_INTERPRET=1.
"""
from types import SimpleNamespace

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from .core.base import minibatches
from .core.errors import UnavailableError
from .core.registry import Implementation
from .core.torch_base import TorchNetwork

BLOCK_M = 16        # examples per block: tl.dot's smallest dimension
BLOCK_K = 64        # input columns per block (and per program of ``update``)
MAX_WIDTH = 256     # hidden and output layers are one block each


@triton.jit(do_not_specialize=["start", "n"])
def forward_backward(X, labels, order, start, n, batch, W1, b1, W2, b2, A1, DELTA1, DELTA2, COST, OUT,
                     n_in, n_hidden, n_out, RELU: tl.constexpr, SOFTMAX: tl.constexpr, BLOCK_M: tl.constexpr,
                     BLOCK_K: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_O: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)          # positions in the mini-batch
    live = rows < tl.minimum(batch, n - start)
    example = tl.load(order + start + rows, mask=live, other=0)
    hidden, outs = tl.arange(0, BLOCK_H), tl.arange(0, BLOCK_O)
    h_ok, o_ok = hidden < n_hidden, outs < n_out
    z1 = tl.zeros([BLOCK_M, BLOCK_H], tl.float32)
    for k in range(0, n_in, BLOCK_K):
        cols = k + tl.arange(0, BLOCK_K)
        x = tl.load(X + example[:, None] * n_in + cols[None, :], mask=live[:, None] & (cols[None, :] < n_in), other=0.0)
        W1_T = tl.load(W1 + hidden[None, :] * n_in + cols[:, None], mask=h_ok[None, :] & (cols[:, None] < n_in), other=0.0)
        z1 = tl.dot(x, W1_T, z1, input_precision="ieee")
    z1 += tl.load(b1 + hidden, mask=h_ok, other=0.0)[None, :]
    if RELU:
        a1 = tl.maximum(z1, 0.0)
        slope = tl.where(z1 > 0, 1.0, 0.0)                            # relu'(0) taken as 0, as PyTorch does
    else:
        a1 = tl.sigmoid(z1)
        slope = a1 * (1.0 - a1)
    a1 = tl.where(h_ok[None, :], a1, 0.0)                              # padding units: sigmoid(0) would be 1/2
    w2 = tl.load(W2 + outs[:, None] * n_hidden + hidden[None, :], mask=o_ok[:, None] & h_ok[None, :], other=0.0)
    z2 = tl.dot(a1, tl.trans(w2), input_precision="ieee") + tl.load(b2 + outs, mask=o_ok, other=0.0)[None, :]
    y = tl.where(outs[None, :] == tl.load(labels + example, mask=live, other=0)[:, None], 1.0, 0.0)
    if SOFTMAX:
        z2 = tl.where(o_ok[None, :], z2, float("-inf"))
        shifted = z2 - tl.max(z2, axis=1)[:, None]
        log_a2 = shifted - tl.log(tl.sum(tl.exp(shifted), axis=1))[:, None]
        a2 = tl.exp(log_a2)
        cost = -tl.sum(tl.where(y > 0, log_a2, 0.0), axis=1)           # -ln a_y, finite where a_y underflows
        delta2 = a2 - y                                                # BP1
    else:
        a2 = tl.sigmoid(z2)
        cost = 0.5 * tl.sum(tl.where(o_ok[None, :], (a2 - y) * (a2 - y), 0.0), axis=1)
        delta2 = (a2 - y) * a2 * (1.0 - a2)                            # BP1
    delta2 = tl.where(live[:, None] & o_ok[None, :], delta2, 0.0)
    delta1 = tl.dot(delta2, w2, input_precision="ieee") * slope       # BP2
    tl.store(A1 + rows[:, None] * BLOCK_H + hidden[None, :], a1, mask=live[:, None])
    tl.store(DELTA1 + rows[:, None] * BLOCK_H + hidden[None, :], delta1, mask=live[:, None])
    tl.store(DELTA2 + rows[:, None] * BLOCK_O + outs[None, :], delta2, mask=live[:, None])
    tl.store(OUT + rows[:, None] * BLOCK_O + outs[None, :], a2, mask=live[:, None])
    tl.store(COST + rows, cost, mask=live)


@triton.jit(do_not_specialize=["start", "n"])
def update(X, order, start, n, batch, A1, DELTA1, DELTA2, COST, W1, b1, W2, b2, total_cost, rate,
           n_in, n_hidden, n_out, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_H: tl.constexpr,
           BLOCK_O: tl.constexpr):
    m = tl.minimum(batch, n - start)
    scale = -rate / m
    cols = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    hidden, outs = tl.arange(0, BLOCK_H), tl.arange(0, BLOCK_O)
    h_ok, o_ok = hidden < n_hidden, outs < n_out
    nabla_W1 = tl.zeros([BLOCK_H, BLOCK_K], tl.float32)
    for r in range(0, batch, BLOCK_M):
        rows = r + tl.arange(0, BLOCK_M)
        live = rows < m
        example = tl.load(order + start + rows, mask=live, other=0)
        x = tl.load(X + example[:, None] * n_in + cols[None, :], mask=live[:, None] & (cols[None, :] < n_in), other=0.0)
        delta1 = tl.load(DELTA1 + rows[:, None] * BLOCK_H + hidden[None, :], mask=live[:, None], other=0.0)
        nabla_W1 = tl.dot(tl.trans(delta1), x, nabla_W1, input_precision="ieee")    # BP4
    w1 = W1 + hidden[:, None] * n_in + cols[None, :]
    w1_ok = h_ok[:, None] & (cols[None, :] < n_in)
    tl.store(w1, tl.load(w1, mask=w1_ok) + scale * nabla_W1, mask=w1_ok)
    if tl.program_id(0) == 0:
        nabla_W2 = tl.zeros([BLOCK_O, BLOCK_H], tl.float32)
        nabla_b2, nabla_b1 = tl.zeros([BLOCK_O], tl.float32), tl.zeros([BLOCK_H], tl.float32)
        costs = tl.zeros([BLOCK_M], tl.float32)
        for r in range(0, batch, BLOCK_M):
            rows = r + tl.arange(0, BLOCK_M)
            live = rows < m
            delta2 = tl.load(DELTA2 + rows[:, None] * BLOCK_O + outs[None, :], mask=live[:, None], other=0.0)
            a1 = tl.load(A1 + rows[:, None] * BLOCK_H + hidden[None, :], mask=live[:, None], other=0.0)
            nabla_W2 = tl.dot(tl.trans(delta2), a1, nabla_W2, input_precision="ieee")   # BP4
            nabla_b2 += tl.sum(delta2, axis=0)                                            # BP3
            nabla_b1 += tl.sum(tl.load(DELTA1 + rows[:, None] * BLOCK_H + hidden[None, :], mask=live[:, None],
                                       other=0.0), axis=0)
            costs += tl.load(COST + rows, mask=live, other=0.0)
        w2 = W2 + outs[:, None] * n_hidden + hidden[None, :]
        w2_ok = o_ok[:, None] & h_ok[None, :]
        tl.store(w2, tl.load(w2, mask=w2_ok) + scale * nabla_W2, mask=w2_ok)
        tl.store(b2 + outs, tl.load(b2 + outs, mask=o_ok) + scale * nabla_b2, mask=o_ok)
        tl.store(b1 + hidden, tl.load(b1 + hidden, mask=h_ok) + scale * nabla_b1, mask=h_ok)
        tl.store(total_cost, tl.load(total_cost) + tl.sum(costs, axis=0) / m)


# Triton chose when it decorated them: compiled for a GPU, or run by its interpreter.
INTERPRETED = isinstance(forward_backward, InterpretedFunction)


class TritonFusedNetwork(TorchNetwork):
    dtypes = ("float32",)

    @classmethod
    def unavailable_reason(cls, device="cuda", **options):
        if device == "cpu" and not INTERPRETED:
            return ("runs Triton kernels on the CPU only in Triton's interpreter: start the process with "
                    "TRITON_INTERPRET=1 (for checking, not timing)")
        return super().unavailable_reason(device=device)

    @classmethod
    def unsupported_reason(cls, spec, **options):
        if len(spec.sizes) != 3:
            return f"fuses networks with exactly one hidden layer, not {len(spec.sizes) - 2}"
        if max(spec.sizes[1:]) > MAX_WIDTH:
            return f"holds the hidden and output layers in one block each, of at most {MAX_WIDTH} units"
        return super().unsupported_reason(spec)

    def __init__(self, spec, device="cuda"):
        reason = type(self).unavailable_reason(device)
        if reason:
            raise UnavailableError(f"{type(self).__name__} on {device}: {reason}")
        super().__init__(spec, device)
        n_in, n_hidden, n_out = spec.sizes
        self.weights = [torch.empty(shape, dtype=self.dtype, device=self.device) for shape, _ in spec.shapes]
        self.biases = [torch.empty(shape, dtype=self.dtype, device=self.device) for _, shape in spec.shapes]
        self.widths = dict(n_in=n_in, n_hidden=n_hidden, n_out=n_out, BLOCK_M=BLOCK_M, BLOCK_K=BLOCK_K,
                           BLOCK_H=max(16, triton.next_power_of_2(n_hidden)),
                           BLOCK_O=max(16, triton.next_power_of_2(n_out)))
        self.kind = dict(RELU=spec.hidden == "relu", SOFTMAX=spec.output == "softmax_crossentropy")
        self._scratch = None   # for the last batch size feedforward, backprop or update_mini_batch saw
        self._plan = None      # the last epoch's order buffer, scratch and CUDA graph, reused while they fit

    def parameter_tensors(self):
        return list(zip(self.weights, self.biases))

    def set_training_data(self, X, y):
        super().set_training_data(X, y)
        self._plan = None      # a captured graph reads the old data's addresses

    def _new_scratch(self, rows):
        """What forward_backward leaves for update, for mini-batches of up to ``rows`` examples."""
        def zeros(*shape, dtype=self.dtype):
            return torch.zeros(shape, dtype=dtype, device=self.device)
        w = self.widths
        return SimpleNamespace(rows=rows, a1=zeros(rows, w["BLOCK_H"]), delta1=zeros(rows, w["BLOCK_H"]),
                               delta2=zeros(rows, w["BLOCK_O"]), out=zeros(rows, w["BLOCK_O"]), cost=zeros(rows),
                               index=torch.arange(rows, device=self.device), no_labels=zeros(rows, dtype=torch.int64))

    def scratch(self, m):
        if self._scratch is None or self._scratch.rows != m:    # a benchmark times one size at a time
            self._scratch = self._new_scratch(m)
        return self._scratch

    def _step(self, s, X, labels, order, start, n, targets=None, rate=0.0, total=None):
        """forward_backward on examples order[start:start + s.rows] (fewer at the end of n); then, given
        ``targets`` [(W, b)], update adds -rate/m times the gradient of the mean cost into them."""
        W1, W2 = self.weights
        b1, b2 = self.biases
        forward_backward[(triton.cdiv(s.rows, BLOCK_M),)](
            X, labels, order, start, n, s.rows, W1, b1, W2, b2, s.a1, s.delta1, s.delta2, s.cost, s.out,
            **self.widths, **self.kind)
        if targets is not None:
            (tW1, tb1), (tW2, tb2) = targets
            update[(triton.cdiv(self.widths["n_in"], BLOCK_K),)](
                X, order, start, n, s.rows, s.a1, s.delta1, s.delta2, s.cost, tW1, tb1, tW2, tb2, total, rate,
                **self.widths)

    # -- the shared interface ---------------------------------------------------------------
    def feedforward(self, X):
        s = self.scratch(X.shape[0])
        self._step(s, X, s.no_labels, s.index, 0, s.rows)
        return s.out[:, :self.spec.sizes[-1]].clone()

    def backprop(self, X, y):
        s = self.scratch(X.shape[0])
        cost, nablas = self._zeros(1), [(torch.zeros_like(W), torch.zeros_like(b)) for W, b in self.parameter_tensors()]
        self._step(s, X, y, s.index, 0, s.rows, nablas, -1.0, cost)     # rate -1: + (1/m) * gradient into zeros
        return cost[0], nablas

    def update_mini_batch(self, X, y, lr):
        s = self.scratch(X.shape[0])
        cost = self._zeros(1)
        self._step(s, X, y, s.index, 0, s.rows, self.parameter_tensors(), lr, cost)
        return cost[0]

    def _zeros(self, *shape):
        return torch.zeros(shape, dtype=self.dtype, device=self.device)

    # -- an epoch: the order on the device, every step's launches replayed from one CUDA graph ---
    def _make_plan(self, n, batch_size, lr):
        p = SimpleNamespace(key=(n, batch_size, lr), n_batches=len(minibatches(n, batch_size)))
        p.order = torch.zeros(n, dtype=torch.int64, device=self.device)   # zeros: valid indices for warm-up
        p.scratch, p.cost = self._new_scratch(min(batch_size, n)), self._zeros(1)

        def epoch(targets=self.parameter_tensors(), total=p.cost):
            for k in range(p.n_batches):
                self._step(p.scratch, self.X_train, self.y_train, p.order, k * p.scratch.rows, n, targets, lr, total)
        p.run = epoch
        if self.device.type == "cuda":
            # A kernel's first launch compiles and loads it, which capture must not see: one step
            # into throwaway targets compiles both and leaves the parameters as they were.
            throwaway = [(torch.zeros_like(W), torch.zeros_like(b)) for W, b in self.parameter_tensors()]
            self._step(p.scratch, self.X_train, self.y_train, p.order, 0, n, throwaway, lr, self._zeros(1))
            torch.cuda.synchronize(self.device)
            p.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(p.graph):
                epoch()
            p.run = p.graph.replay
        return p

    def train_epoch(self, order, batch_size, lr):
        n = len(order)
        if self._plan is None or self._plan.key != (n, batch_size, lr):
            self._plan = None   # free the old graph before capturing a new one
            self._plan = self._make_plan(n, batch_size, lr)
        p = self._plan
        p.order.copy_(torch.as_tensor(order))    # the epoch's one host -> device copy
        p.cost.zero_()
        p.run()
        return p.cost[0] / p.n_batches


# The names users type: `triton-fused-cuda` is an entry point in pyproject.toml; ``interpreted``
# is given ad hoc (impls.triton_fused:interpreted) under TRITON_INTERPRET=1 to check the kernels.
cuda = Implementation(TritonFusedNetwork, device="cuda")
interpreted = Implementation(TritonFusedNetwork, device="cpu")
