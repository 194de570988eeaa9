"""train_epoch forgets to return the epoch's mean cost (it returns None)."""
from impls.numpy_impl import NumpyNetwork


class NoneCost(NumpyNetwork):
    def train_epoch(self, order, batch_size, lr):
        self.epochs_seen = getattr(self, "epochs_seen", 0) + 1      # ... and no `return`
