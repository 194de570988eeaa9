"""PyTorch without autograd: backpropagation by hand, in place, into buffers allocated once.

The mathematics is the ``numpy`` implementation's (rows are examples, z = a W.T + b),
but each equation is one PyTorch call writing into a preallocated tensor (``out=``),
and the SGD step is folded into backprop: BP4 becomes ``W.addmm_(delta.T, a, alpha=-lr/m)``,
adding -lr/m times the gradient straight into W, and BP3 ``b.addmv_(delta.T, ones, ...)``.
No autograd graph is recorded and nothing is allocated per step, so what remains of
PyTorch's cost at batch 10 is its per-call dispatch (a few microseconds per call,
~25 calls per step); the step-overhead study compares that with the idiomatic version.

An epoch is designed for the GPU. The example order is copied to the device once, a
step counter ``k`` lives on the device, and one step -- gather mini-batch k from the
resident training set into static buffers, forward, backward + update, add the cost to
a device accumulator, k += 1 -- never needs the host. On CUDA that step is captured once
into a CUDA graph and replayed, one launch per mini-batch, with no host synchronization
in the epoch. On the CPU the same step runs as plain calls, so the CPU tests exercise
the very code the graph captures.
"""
from types import SimpleNamespace

import torch

from .core.base import minibatches
from .core.registry import Implementation
from .core.torch_base import TorchNetwork

# The derivative kernels autograd itself uses, each one call writing into its output:
# sigmoid_backward(g, a) = g * a * (1 - a), from the sigmoid's output a = sigma(z);
# threshold_backward(g, a, 0) = g where a > 0, else 0 (ReLU; a > 0 exactly when z > 0).
sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
threshold_backward = torch.ops.aten.threshold_backward.grad_input


def gather_rows(source, index, out):
    """out[i] = source[index[i]], as one elementwise gather over ``out``.

    Not ``index_select``: for 16 indices or fewer its CUDA kernel (indexSelectSmallIndex) has each
    thread loop over the indices, the most expensive kernel of a batch-10 step on an H100; the
    gather took a third of its time and cut the captured step by about a fifth (docs/measurements.md,
    "torch"; the step-overhead study counts a step's kernels and their time on a GPU). On the CPU
    the two cost the same.
    """
    torch.gather(source, 0, index.view(-1, 1).expand(-1, source.shape[1]), out=out)


WARMUP_STEPS = 3            # before capture: cuBLAS creates its handle and workspace lazily
MAX_CACHED_BATCH_SIZES = 4  # evaluate() and tests use a few sizes; an epoch uses at most two


class Buffers:
    """Every intermediate of one forward + backward pass on m examples, allocated once."""

    def __init__(self, sizes, output, m, dtype, device):
        def new(*shape):
            return torch.empty(shape, dtype=dtype, device=device)
        self.z = [new(m, n) for n in sizes[1:]]
        self.a = [new(m, n) for n in sizes[1:]]        # a[-1]: sigma(z^L), or log softmax(z^L)
        self.delta = [new(m, n) for n in sizes[1:]]
        self.yhot = new(m, sizes[-1])
        self.ones = torch.ones(m, dtype=dtype, device=device)
        # The batch's summed cost as one matrix-vector product, through views made once:
        # sum ||a - y||^2 = (a - y) . (a - y), and sum -ln a_y = -(log a) . yhot.
        left = self.delta[-1] if output == "sigmoid_quadratic" else self.a[-1]
        right = self.delta[-1] if output == "sigmoid_quadratic" else self.yhot
        self.cost_row, self.cost_col = left.view(1, -1), right.view(-1)


class FastTorchNetwork(TorchNetwork):
    def __init__(self, spec, device="cpu"):
        super().__init__(spec, device)
        self.weights = [torch.empty(w, dtype=self.dtype, device=self.device) for w, _ in spec.shapes]
        self.biases = [torch.empty(b, dtype=self.dtype, device=self.device) for _, b in spec.shapes]
        self.quadratic = spec.output == "sigmoid_quadratic"
        self._buffers = {}   # m -> Buffers
        self._plan = None    # the last epoch's static state (and CUDA graph), reused while it fits

    def parameter_tensors(self):
        return list(zip(self.weights, self.biases))

    def set_training_data(self, X, y):
        super().set_training_data(X, y)
        # One-hot targets made once, so a step gathers them like the inputs.
        self.Y_train = self._one_hot(self.y_train, torch.empty(len(self.y_train), self.spec.sizes[-1],
                                                                dtype=self.dtype, device=self.device))
        self._plan = None    # a captured graph reads the old data's addresses

    @staticmethod
    def _one_hot(y, out):
        return out.zero_().scatter_(1, y.view(-1, 1), 1)

    def buffers(self, m):
        buf = self._buffers.get(m)
        if buf is None:
            if len(self._buffers) >= MAX_CACHED_BATCH_SIZES:
                self._buffers.pop(next(iter(self._buffers)))
            buf = self._buffers[m] = Buffers(self.spec.sizes, self.spec.output, m, self.dtype, self.device)
        return buf

    # -- the mathematics, one call per equation ------------------------------------------
    def _forward(self, x, buf):
        """z^l = a^{l-1} W^l.T + b^l and a^l = sigma(z^l) for the hidden layers; returns z^L."""
        a = x
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            torch.addmm(b, a, W.t(), out=buf.z[layer])
            if layer < len(self.weights) - 1:
                a = buf.a[layer]
                if self.spec.hidden == "sigmoid":
                    torch.sigmoid(buf.z[layer], out=a)
                else:
                    torch.clamp(buf.z[layer], min=0, out=a)
        return buf.z[-1]

    def _backward(self, x, yhot, buf, cost, targets, scale):
        """Output error, the batch's mean cost added into ``cost``, then BP2-BP4 layer by layer,
        adding ``scale`` times each gradient of the *summed* cost into ``targets``.

        targets = the parameters with scale = -lr/m is an SGD step; zeroed tensors with
        scale = 1/m receive the gradients of the mean cost.
        """
        m = x.shape[0]
        zL, aL, deltaL = buf.z[-1], buf.a[-1], buf.delta[-1]
        if self.quadratic:
            torch.sigmoid(zL, out=aL)
            torch.sub(aL, yhot, out=deltaL)                               # a - y
            cost.addmv_(buf.cost_row, buf.cost_col, alpha=0.5 / m)
            sigmoid_backward(deltaL, aL, grad_input=deltaL)               # BP1: (a - y) * sigma'(z)
        else:
            torch.log_softmax(zL, 1, out=aL)                              # finite even where a_y underflows
            cost.addmv_(buf.cost_row, buf.cost_col, alpha=-1.0 / m)
            torch.exp(aL, out=deltaL).sub_(yhot)                          # BP1: a - y
        for layer in range(len(self.weights) - 1, -1, -1):
            delta = buf.delta[layer]
            a_prev = buf.a[layer - 1] if layer else x
            if layer:
                # BP2 reads W^l, so it comes before W^l is updated below.
                torch.mm(delta, self.weights[layer], out=buf.delta[layer - 1])
                if self.spec.hidden == "sigmoid":
                    sigmoid_backward(buf.delta[layer - 1], a_prev, grad_input=buf.delta[layer - 1])
                else:
                    threshold_backward(buf.delta[layer - 1], a_prev, 0, grad_input=buf.delta[layer - 1])
            target_W, target_b = targets[layer]
            target_W.addmm_(delta.t(), a_prev, alpha=scale)               # BP4
            target_b.addmv_(delta.t(), buf.ones, alpha=scale)             # BP3

    def _new(self, *shape, zeros=True):
        return (torch.zeros if zeros else torch.empty)(shape, dtype=self.dtype, device=self.device)

    # -- the shared interface ------------------------------------------------------------------
    def feedforward(self, X):
        z = self._forward(X, self.buffers(X.shape[0]))
        return torch.softmax(z, dim=1) if not self.quadratic else torch.sigmoid(z)

    def backprop(self, X, y):
        m = X.shape[0]
        buf = self.buffers(m)
        self._forward(X, buf)
        cost = self._new(1)
        nablas = [(torch.zeros_like(W), torch.zeros_like(b)) for W, b in self.parameter_tensors()]
        self._backward(X, self._one_hot(y, buf.yhot), buf, cost, nablas, 1.0 / m)
        return cost[0], nablas

    def update_mini_batch(self, X, y, lr):
        m = X.shape[0]
        buf = self.buffers(m)
        self._forward(X, buf)
        cost = self._new(1)
        self._backward(X, self._one_hot(y, buf.yhot), buf, cost, self.parameter_tensors(), -lr / m)
        return cost[0]

    # -- an epoch: device-resident order, device step counter, graph-captured step ----------
    def _make_plan(self, n, batch_size, lr):
        p = SimpleNamespace(key=(n, batch_size, lr))
        p.n_full, p.n_batches = n // batch_size, len(minibatches(n, batch_size))
        p.order = torch.zeros(n, dtype=torch.int64, device=self.device)   # zeros: valid indices for warm-up
        p.batches = p.order[:p.n_full * batch_size].view(p.n_full, batch_size)
        p.tail = p.order[p.n_full * batch_size:]
        p.k = torch.zeros(1, dtype=torch.int64, device=self.device)
        p.idx = torch.empty(1, batch_size, dtype=torch.int64, device=self.device)
        p.x = self._new(batch_size, self.spec.sizes[0], zeros=False)
        p.tail_x = self._new(len(p.tail), self.spec.sizes[0], zeros=False)
        p.buf, p.cost = self.buffers(batch_size), self._new(1)
        p.params, p.scale = self.parameter_tensors(), -lr / batch_size
        p.step = lambda: self._counted_step(p)
        if self.device.type == "cuda" and p.n_full:
            p.step = self._capture(p)
        return p

    def _counted_step(self, p):
        """Train mini-batch k (k read on the device) and advance k: the step a CUDA graph captures."""
        gather_rows(p.batches, p.k, p.idx)
        idx = p.idx.view(-1)
        gather_rows(self.X_train, idx, p.x)
        gather_rows(self.Y_train, idx, p.buf.yhot)
        self._forward(p.x, p.buf)
        self._backward(p.x, p.buf.yhot, p.buf, p.cost, p.params, p.scale)
        p.k.add_(1)

    def _capture(self, p):
        """Record ``_counted_step`` into a CUDA graph; returns its replay."""
        saved = [t.clone() for pair in p.params for t in pair]
        stream = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(stream)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                p.k.zero_()
                self._counted_step(p)
        stream.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._counted_step(p)
        # Warm-up trained on real data: put the parameters back (capture itself runs nothing).
        for t, s in zip((t for pair in p.params for t in pair), saved):
            t.copy_(s)
        p.graph = graph
        return graph.replay

    def train_epoch(self, order, batch_size, lr):
        n = len(order)
        if self._plan is None or self._plan.key != (n, batch_size, lr):
            self._plan = None   # free the old graph's memory pool before capturing a new one
            self._plan = self._make_plan(n, batch_size, lr)
        p = self._plan
        p.order.copy_(torch.as_tensor(order))    # the epoch's one host -> device copy
        p.k.zero_()
        p.cost.zero_()
        for _ in range(p.n_full):
            p.step()
        if len(p.tail):   # the book's short last mini-batch, as plain calls
            m = len(p.tail)
            buf = self.buffers(m)
            gather_rows(self.X_train, p.tail, p.tail_x)
            gather_rows(self.Y_train, p.tail, buf.yhot)
            self._forward(p.tail_x, buf)
            self._backward(p.tail_x, buf.yhot, buf, p.cost, p.params, -lr / m)
        return p.cost[0] / p.n_batches


# The names users type (entry points in pyproject.toml): the same class on either device.
cpu = Implementation(FastTorchNetwork, device="cpu")
cuda = Implementation(FastTorchNetwork, device="cuda")
