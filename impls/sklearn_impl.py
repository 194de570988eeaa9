"""scikit-learn's ``MLPClassifier``: the network as someone who "would just use sklearn" trains it.

Configured as this network and nothing more: the preset's hidden layers and activation
(``relu`` or ``logistic``), softmax output with log-loss (what MLPClassifier always uses for
three or more classes), ``solver="sgd"`` with ``momentum=0``, ``alpha=0`` (no L2 penalty), a
constant learning rate and ``shuffle=False``, because the epoch's order is nnbench's. An
epoch is ``partial_fit`` over the training set taken in that order: scikit-learn then walks it
in mini-batches of ``batch_size`` (``gen_batches``: consecutive slices, the last one short, as
in the book) and after each applies ``W -= lr * grad`` with the gradient averaged over the
batch (``_compute_loss_grad`` divides by the batch's size). That is exactly nnbench's update.

Where scikit-learn differs, and what this module does about it:

- It cannot express the book's sigmoid output with quadratic cost, so it declines the
  ``nielsen`` network (``unsupported_reason``) and every nielsen row says why.
- ``partial_fit`` reports one cost per call: the mean over *examples*, not over mini-batches.
  With a short last batch the two differ, so ``train_epoch`` fits the full batches and the
  short one in two calls and weighs them into nnbench's mean of mini-batch costs.
- Its log-loss clips probabilities to [eps, 1 - eps]; this moves the reported cost only where
  an output falls below float eps (never the gradient, which is ``a - y``).
- Its first ``partial_fit`` allocates the model, draws Glorot weights from its own generator
  (``random_state=0``, never nnbench's) and takes one step on a zero image; ``set_params``
  overwrites those weights before anything trains, so they never reach a result.
- The learning rate lives in the optimizer that first call creates (a private object), so a
  new rate is written there too; the pinned minor version (pyproject.toml) keeps that stable
  and the equivalence tests would catch a change.

Threads: scikit-learn's products are NumPy's (OpenBLAS), pinned like every other BLAS pool.
"""
import numpy as np

from .core.base import Network

try:
    from sklearn.neural_network import MLPClassifier
except ImportError as exc:          # an optional extra: unavailable, never an import error
    MLPClassifier, _MISSING = None, f"needs scikit-learn: pip install 'nnbench[sklearn]' ({exc})"
else:
    _MISSING = None

ACTIVATIONS = {"relu": "relu", "sigmoid": "logistic"}


class SklearnNetwork(Network):
    dtypes = ("float32", "float64")

    @classmethod
    def unavailable_reason(cls, **options):
        return _MISSING

    @classmethod
    def unsupported_reason(cls, spec, **options):
        if spec.output != "softmax_crossentropy":
            return ("cannot express this network: MLPClassifier's output is softmax with log-loss, "
                    "not the book's sigmoid output with quadratic cost")
        if spec.sizes[-1] < 3:
            return "needs 3 or more classes (with 2, MLPClassifier switches to one logistic output)"
        if spec.hidden not in ACTIVATIONS:
            return f"has no {spec.hidden} activation"
        return super().unsupported_reason(spec)

    def __init__(self, spec):
        super().__init__(spec)
        self.model = MLPClassifier(
            hidden_layer_sizes=spec.sizes[1:-1], activation=ACTIVATIONS[spec.hidden], solver="sgd",
            alpha=0.0, learning_rate="constant", learning_rate_init=1.0, momentum=0.0,
            nesterovs_momentum=False, shuffle=False, early_stopping=False, random_state=0)
        self.classes = np.arange(spec.sizes[-1])
        # The first partial_fit builds the model's state; its step moves only the throwaway
        # initial weights, which set_params replaces before anything is trained or checked.
        n_in = spec.sizes[0]
        self.model.set_params(batch_size=1)
        self.model.partial_fit(np.zeros((1, n_in), self.np_dtype), self.classes[:1], classes=self.classes)

    # -- parameters: coefs_[l] is (fan_in, fan_out), the transpose of nnbench's W ----------------
    def _set_params(self, params):
        # In place: the optimizer updates the very arrays it was created with.
        for (W, b), coef, intercept in zip(params, self.model.coefs_, self.model.intercepts_):
            coef[...] = W.T
            intercept[...] = b

    def get_params(self):
        return [(coef.T.copy(), intercept.copy())
                for coef, intercept in zip(self.model.coefs_, self.model.intercepts_)]

    def _configure(self, batch_size: int, lr: float) -> None:
        model = self.model
        if model.batch_size != batch_size:
            model.set_params(batch_size=batch_size)
        if model.learning_rate_init != lr:
            model.set_params(learning_rate_init=lr)
            model._optimizer.learning_rate = lr     # partial_fit reuses the optimizer it made first

    # -- the mathematics -----------------------------------------------------------------------
    def feedforward(self, X):
        return self.model.predict_proba(X)

    def backprop(self, X, y):
        """scikit-learn's own backpropagation (``_backprop``) on one batch, without a step."""
        model = self.model
        activations = [X] + [None] * (model.n_layers_ - 1)
        deltas = [None] * (model.n_layers_ - 1)
        coef_grads = [np.empty_like(c) for c in model.coefs_]
        intercept_grads = [np.empty_like(b) for b in model.intercepts_]
        Y = model._label_binarizer.transform(y).astype(X.dtype)
        cost, coef_grads, intercept_grads = model._backprop(X, Y, None, activations, deltas, coef_grads,
                                                            intercept_grads)
        return cost, [(g.T, gb) for g, gb in zip(coef_grads, intercept_grads)]

    def update_mini_batch(self, X, y, lr):
        self._configure(len(X), lr)
        self.model.partial_fit(X, y)
        return self.model.loss_

    def train_epoch(self, order, batch_size, lr):
        """``partial_fit`` over the examples in ``order``: its mini-batches are the book's."""
        order = np.asarray(order)
        full = len(order) - len(order) % batch_size     # examples in full mini-batches
        costs, weights = [], []
        for part, size in ((order[:full], batch_size), (order[full:], len(order) - full)):
            if len(part):
                self._configure(size, lr)
                self.model.partial_fit(self.X_train[part], self.y_train[part])
                costs.append(self.model.loss_)              # mean over this part's examples...
                weights.append(len(part) // size)           # ...= mean over its equal-size batches
        return float(np.dot(costs, weights) / sum(weights))
