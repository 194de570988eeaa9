"""nnbench's machinery, apart from the implementations it runs (``impls/``).

``spec`` (what to compute) · ``base`` (the ``Network`` interface) · ``check`` (comparisons
with justified tolerances) · ``conformance`` (``nnbench check``) · ``train`` (the one setup
path, the timed epoch, the training loop) · ``mnist`` (data) · ``presets`` · ``registry``
(entry points and ad hoc specs) · ``cli`` and ``argtypes`` · ``threads`` · ``testing``
(pytest helpers) · ``activations`` and ``torch_base`` (what several implementations share).
"""
