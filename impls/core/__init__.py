"""nnbench's machinery, apart from the implementations it runs (``impls/``).

``spec`` (what to compute) · ``base`` (the ``Network`` interface) · ``check`` (comparisons
with justified tolerances) · ``structure`` (layers, dtypes, untouched inputs) · ``conformance``
(``nnbench check``) · ``isolation`` and ``jobs`` (the supervised child process that runs a
user's code, with time limits) · ``train`` (the one setup path, the timed epoch, the training
loop) · ``mnist`` (data) · ``presets`` · ``registry`` (entry points and ad hoc specs) · ``probe``
(``nnbench list``, without importing) · ``cli`` and ``argtypes`` · ``threads`` · ``testing``
(pytest helpers) · ``activations`` and ``torch_base`` (what several implementations share).
"""
