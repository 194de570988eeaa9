"""What the suites, the report, the profiler and the studies share: phase and mode
declarations (``phases``), how a timing is taken (``timing``), the machine on record
(``machine``) and the pytest hooks that make a run an nnbench record (``plugin``)."""
