"""PyTorch as most people write it: an ``nn.Module``, autograd, ``torch.optim.SGD``.

This is the network as a tutorial or the seed's PyTorch re-implementation builds it:
``nn.Linear`` layers, a loss from ``torch.nn.functional``, ``loss.backward()`` to get
the gradients and an optimizer to apply them. Nothing is hand-tuned, so it shows what
that convenience costs: every ``nn.Linear`` call, every autograd node and every
optimizer step goes through PyTorch's dispatcher, which at batch 10 with a 784-30-10
network takes longer than the arithmetic (the step-overhead study counts the operators a
step dispatches and times it: ``make study NAME=step-overhead``).

Two things are not what a tutorial does, because the benchmark requires them: the
training set lives on the device and mini-batches are indexed there (no DataLoader,
no host copy per batch), and the epoch's cost is summed on the device instead of
calling ``loss.item()`` after every batch (which would synchronize a GPU each step).
The epoch itself is the book's loop, the base class's ``train_epoch``, which does both.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from .core.registry import Implementation
from .core.torch_base import TorchNetwork


class Perceptron(nn.Module):
    """Fully connected layers; the hidden activation between them, none after the last."""

    def __init__(self, spec, device, dtype):
        super().__init__()
        # skip_init: the weights come from set_params, and nn.Linear's own initialization
        # would draw from torch's random generator, which nnbench never uses.
        self.layers = nn.ModuleList(skip_init(nn.Linear, n_in, n_out, device=device, dtype=dtype)
                                    for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:]))
        self.hidden = torch.sigmoid if spec.hidden == "sigmoid" else F.relu

    def forward(self, x):
        """The output layer's weighted input z^L (logits); the cost applies its non-linearity."""
        for layer in self.layers[:-1]:
            x = self.hidden(layer(x))
        return self.layers[-1](x)


class IdiomaticTorchNetwork(TorchNetwork):
    def __init__(self, spec, device="cpu"):
        super().__init__(spec, device)
        self.model = Perceptron(spec, self.device, self.dtype)
        # The learning rate is set per step (update_mini_batch receives it).
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.0)

    def parameter_tensors(self):
        return [(layer.weight, layer.bias) for layer in self.model.layers]

    def loss(self, z, y):
        """Mean cost over the batch from the logits z and integer labels y."""
        if self.spec.output == "softmax_crossentropy":
            return F.cross_entropy(z, y)                       # mean of -ln softmax(z)_y
        a = torch.sigmoid(z)
        target = F.one_hot(y, a.shape[1]).to(a.dtype)
        return F.mse_loss(a, target, reduction="sum") / (2 * len(y))   # mean of ||a - y||^2 / 2

    def feedforward(self, X):
        with torch.no_grad():
            z = self.model(X)
            return torch.softmax(z, dim=1) if self.spec.output == "softmax_crossentropy" else torch.sigmoid(z)

    def backprop(self, X, y):
        self.optimizer.zero_grad()
        cost = self.loss(self.model(X), y)
        cost.backward()
        return cost.detach(), [(layer.weight.grad, layer.bias.grad) for layer in self.model.layers]

    def update_mini_batch(self, X, y, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        cost = self.loss(self.model(X), y)
        cost.backward()
        self.optimizer.step()
        return cost.detach()


# The names users type (entry points in pyproject.toml): the same class on either device.
cpu = Implementation(IdiomaticTorchNetwork, device="cpu")
cuda = Implementation(IdiomaticTorchNetwork, device="cuda")
