"""Studies: measurements across every registered implementation that the suites do not make.

    python -m bench.studies NAME [options]        # make study NAME=... ARGS="..."
    python -m bench.studies --list

A study is one module here defining ``STUDY = Study(...)``: its name, title, options and a
``run(ctx)`` that returns Markdown (and plots). It runs for every available implementation
(``--impl`` narrows the list or adds your own) and skips, saying why, what does not apply to
one. Before timing anything it validates through the shared checks (``impls.core.check``,
via the phase declarations). The runner writes ``<name>.md`` and its plots into ``--out``
(``out/studies/``, ignored by git, unless ``results/studies`` is asked for) through the report's
writer -- atomically, with the machine and the reproducing command in the file -- so adding a
study is adding one module. docs/studies.md explains each study's method.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Output:
    markdown: str
    plots: dict[str, bytes] = field(default_factory=dict)     # file name -> PNG


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    summary: str                                 # one line for --list and the README
    add_arguments: Callable                      # (argparse parser) -> None
    run: Callable                                # (Context) -> Output


def studies() -> dict[str, Study]:
    """Every module in this package that declares ``STUDY``, by name."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        study = getattr(importlib.import_module(f"{__name__}.{info.name}"), "STUDY", None)
        if study is not None:
            found[study.name] = study
    return dict(sorted(found.items()))


def user_failure(exc: BaseException) -> str:
    """One line for an exception raised by an implementation's code: which implementation, which of
    its methods, and the error (the innermost frame whose ``self`` is a Network names them)."""
    from impls.core.base import Network
    where, tb = None, exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, Network):
            where = f"implementation {getattr(owner, 'name', type(owner).__name__)!r}: " \
                    f"{type(owner).__name__}.{tb.tb_frame.f_code.co_name}"
        tb = tb.tb_next
    return f"{where or 'the run'} raised {type(exc).__name__}: {exc}"
