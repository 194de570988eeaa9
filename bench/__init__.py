"""nnbench's benchmarks: the pytest-benchmark suites (``suites/``), what they share (``harness/``:
phase and mode declarations, timing, memory, the machine record, compare, the pytest plugin), the
runner that gives each implementation processes of its own (``run``), the results renderer
(``report/``), the studies (``studies/``) and the profiler (``profiling``).

Run from the repository root: ``python -m bench.run`` (or ``pytest bench``, one process),
``python -m bench.report``, ``python -m bench.studies``, ``python -m bench.profiling`` (the
Makefile's ``bench``, ``compare``, ``study`` and ``profile`` targets).
"""
