"""The pytest-benchmark suites, one per phase declared in ``bench/harness/phases.py``."""
