"""``get_params`` returning live views of weights that ``set_params`` overwrites in place, and a
timed epoch whose weights drift from the untimed one's (after ``evaluate``, as a stateful bug
might): the bench's after-timing weight check must snapshot the expected weights, or it compares
the weights with themselves and passes. ``Copying`` is the control: the same bug, copies given."""
import numpy as np

from impls.numpy_impl import NumpyNetwork


class Copying(NumpyNetwork):
    _evaluated = False

    def _set_params(self, params):
        if not hasattr(self, "weights"):
            return super()._set_params(params)
        for W, b, (W0, b0) in zip(self.weights, self.biases, params):
            W[...], b[...] = W0, b0

    def evaluate(self, X, y):
        self._evaluated = True
        return super().evaluate(X, y)

    def train_epoch(self, order, batch_size, lr):
        cost = super().train_epoch(order, batch_size, lr)
        if self._evaluated:
            self.weights[0] += np.asarray(0.01, dtype=self.weights[0].dtype)
        return cost


class LiveViews(Copying):
    def get_params(self):
        return list(zip(self.weights, self.biases))
