"""nnbench's benchmarks: pytest-benchmark suites (``bench_*.py``), the results renderer
(``report``) and the profiling entry point (``profiling``).

Run from the repository root: ``pytest bench``, ``python -m bench.report``,
``python -m bench.profiling`` (the Makefile's ``bench``, ``compare`` and ``profile`` targets).
"""
