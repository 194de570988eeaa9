"""The idiomatic PyTorch network and training step, compiled with ``torch.compile``.

The model, loss and optimizer are ``torch_idiomatic``'s, unchanged; what PyTorch's
documentation recommends on top is to compile the training step -- forward, loss,
``loss.backward()`` and ``optimizer.step()`` -- as one function. TorchDynamo captures it as
graphs (the forward with its backward through AOTAutograd, and the optimizer's update),
and Inductor generates code for them: C++ with OpenMP on the CPU, Triton kernels on CUDA.
``feedforward`` and ``backprop`` are compiled the same way.

What had to be decided, and why:

- **Static shapes** (``dynamic=False``): one program per batch size. With a symbolic batch
  dimension the CPU step measured over twice as slow (an A/B of relu steps at batch 32:
  docs/measurements.md, "torch"), and PyTorch's default would switch to that the moment a second size appears (the
  book's short last mini-batch). So ``warm_up`` compiles both sizes an epoch uses before it is
  timed, and no timed epoch ever recompiles.
- **The learning rate is a tensor** in the optimizer, written in place before a step: a
  Python float would be baked into the graph, and a new rate would recompile.
- **Recompiles never fall back silently.** Every batch size a process meets is a graph, and
  Dynamo's default limit of 8 per function would, once reached, quietly run the rest
  uncompiled; the limit is raised and hitting it is made an error.
- **CUDA**: ``mode="reduce-overhead"`` replays the compiled step from CUDA graphs, since at
  these sizes a step is launch-bound (the step-overhead study); unmeasured until a GPU run.

Compiling is expensive on this network: a first compile in a fresh process takes tens of
seconds (Inductor's C++ build; cached in ``TORCHINDUCTOR_CACHE_DIR``), a new batch size a few
more. ``compile_seconds`` adds up what compiling the training step cost this process for the
batch sizes ``warm_up`` was given (the first call of each, whichever network made it).
"""
import time

import torch
import torch._dynamo

from .core.registry import Implementation
from .torch_idiomatic import IdiomaticTorchNetwork

torch._dynamo.config.recompile_limit = 64
torch._dynamo.config.fail_on_recompile_limit_hit = True

#: (function, network, device, batch size) -> seconds its first call took in this process: the
#: compile. Dynamo keeps compiled graphs per process, shared by every network of the same shapes,
#: so a network that reuses one records what it cost the process, not zero.
FIRST_CALL_SECONDS = {}


class CompiledTorchNetwork(IdiomaticTorchNetwork):
    compile_cache_env = "TORCHINDUCTOR_CACHE_DIR"
    #: each new batch size is a compile of seconds (tests/conftest.py runs fewer shapes by default)
    compiles_per_shape = True

    def __init__(self, spec, device="cpu", mode=None):
        super().__init__(spec, device)
        self.lr = torch.zeros((), dtype=self.dtype, device=self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr)
        compile = dict(mode=mode, dynamic=False)
        self._train_step = torch.compile(self.train_step, **compile)
        self._feedforward = torch.compile(self.output_activations, **compile)
        self._backprop = torch.compile(self.cost_and_gradients, **compile)
        self._warm = set()      # the batch sizes warm_up compiled the step for
        self.compile_seconds = 0.0

    # -- the functions compiled: plain PyTorch, as torch_idiomatic writes it -----------------------
    def train_step(self, X, y):
        self.optimizer.zero_grad(set_to_none=True)
        cost = self.loss(self.model(X), y)
        cost.backward()
        self.optimizer.step()
        return cost.detach()

    def output_activations(self, X):
        with torch.no_grad():
            z = self.model(X)
            return torch.softmax(z, dim=1) if self.spec.output == "softmax_crossentropy" else torch.sigmoid(z)

    def cost_and_gradients(self, X, y):
        self.optimizer.zero_grad(set_to_none=True)
        cost = self.loss(self.model(X), y)
        cost.backward()
        return cost.detach(), [(layer.weight.grad, layer.bias.grad) for layer in self.model.layers]

    # -- the interface ------------------------------------------------------------------------------
    def call(self, fn, X, *args):
        """``fn(X, *args)``, timing the first call of each batch size in this process (it compiles)."""
        key = (fn.__name__, self.spec, self.device.type, X.shape[0])
        if key in FIRST_CALL_SECONDS:
            return fn(X, *args)
        start = time.perf_counter()
        out = fn(X, *args)
        self.sync()
        FIRST_CALL_SECONDS[key] = time.perf_counter() - start
        return out

    def feedforward(self, X):
        return self.call(self._feedforward, X)

    def backprop(self, X, y):
        return self.call(self._backprop, X, y)

    def update_mini_batch(self, X, y, lr):
        self.lr.fill_(lr)
        return self.call(self._train_step, X, y)

    def warm_up(self, batch_size, n=None):
        """Compile the step for a full mini-batch and the short last one, then put back the
        parameters the compiling steps moved."""
        n = n or self.n_train
        sizes = {min(batch_size, n), n % batch_size} - {0} - self._warm
        if not sizes:
            return 0.0
        params = self.get_params()
        for m in sizes:
            self.update_mini_batch(self.X_train[:m], self.y_train[:m], 0.0)
        self.set_params(params)
        self._warm |= sizes
        seconds = sum(FIRST_CALL_SECONDS[self._train_step.__name__, self.spec, self.device.type, m] for m in sizes)
        self.compile_seconds += seconds
        return seconds


cpu = Implementation(CompiledTorchNetwork, device="cpu")
cuda = Implementation(CompiledTorchNetwork, device="cuda", mode="reduce-overhead")
