"""The parts of ``python -m bench.gpu_run`` (``make gpu-run``): everything a GPU machine can tell
us, in one prepared run that writes a handful of files.

- ``steps``: one step is one child process with its own time budget; a step that runs out is
  cut (its whole process group killed) and says so, a failing one is recorded, and the run goes
  on either way.
- ``facts``: the environment (GPU, driver, CUDA, library versions, which implementations can
  run here and why not), written before anything else runs.
- ``plan``: the steps after the facts, from what they found (or the dry run's CPU stand-ins).
- ``fused``: the fused Triton step against the three targets set when it was built.
- ``outcome``: several ``python -m bench.run`` runs as one machine's ``benchmark.json``, the
  tests' JUnit counts, and the summary (Markdown and JSON).

GPU time is rare and short, so the run must work the first time: ``--dry-run`` takes every one
of these paths on the CPU (``tests/test_gpu_run.py`` runs it in CI).
"""
