"""nnbench's benchmarks: the pytest-benchmark suites (``suites/``), what they share (``harness/``:
phase and mode declarations, timing, the machine record, the pytest plugin), the results
renderer (``report/``), the studies (``studies/``) and the profiler (``profiling``).

Run from the repository root: ``pytest bench``, ``python -m bench.report``,
``python -m bench.studies``, ``python -m bench.profiling`` (the Makefile's ``bench``,
``compare``, ``study`` and ``profile`` targets).
"""
