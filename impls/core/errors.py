"""Errors nnbench reports to a user as one readable line.

Everything the CLI can explain (bad data, bad arguments, divergence, a missing
optional dependency) is raised as a subclass of ``NnbenchError``; the CLI prints
``nnbench: error: <message>`` and exits non-zero. Any other exception is a bug.
"""


class NnbenchError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class DataError(NnbenchError):
    """MNIST is missing, corrupt, truncated, or of the wrong shape/dtype."""


class ConfigError(NnbenchError):
    """An impossible combination of settings (unknown preset, bad batch size...)."""


class DivergedError(NnbenchError):
    """Training produced a NaN/inf cost."""


class UnavailableError(NnbenchError):
    """An implementation cannot run here (missing package, no CUDA, failed to import or construct)."""


class UnsupportedError(ConfigError):
    """An implementation declines a network it cannot express (a dtype, an output/cost pair).

    The one refusal that suites, tests and tables turn into a skip with the reason:
    raise it from ``Network.unsupported_reason`` (preferred: asked before constructing)
    or from the constructor. Any other exception from a constructor is a failure."""


class ImplementationError(NnbenchError):
    """An implementation broke the interface: raised in a method, returned what no caller can use
    (a ``None`` cost), or declares nothing it could run. The message names the implementation
    and the method."""
