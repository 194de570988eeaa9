"""What the suites, the report, the profiler and the studies share: phase and mode
declarations (``phases``), how a timing is taken (``timing``), the host on record
(``host``) and the pytest hooks that make a run an nnbench record (``plugin``)."""
