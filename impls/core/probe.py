"""What ``nnbench list`` says about each implementation: quickly without importing it, or by
importing each in a supervised child process (``--probe``).

Importing every implementation to ask whether it can run imports torch, jax, numba and
scikit-learn -- seconds each on a small machine -- and runs whatever a user's module does on
import (hang, exit, crash). So the default listing reads instead of running: it finds each
module's file without executing it, parses the imports at its top level and looks each package
up (``importlib.util.find_spec`` on a top-level name imports nothing), and reads a literal
``device=`` option (``cuda = Implementation(Net, device="cuda")``) to compare with the NVIDIA
devices the kernel shows. What only running can tell (a CUDA build of torch, an import that
fails) is left to ``--probe``, which imports each in a child process under the import limit:
one that hangs, exits or crashes is reported on its own row and the others still are.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
from importlib.machinery import PathFinder
from pathlib import Path

from .errors import NnbenchError
from .isolation import Limits, StoppedError, supervise
from .registry import Entry, registry

#: option values that need an NVIDIA GPU: a device, or a collective backend (NCCL) that runs only on one
GPU_DEVICES = ("cuda", "gpu", "nccl")
DEVICE_OPTIONS = ("device", "backend")
NVIDIA = Path("/proc/driver/nvidia/gpus")


def _module_file(module: str) -> Path | None:
    """The source file of ``module``, found along sys.path without importing it or its parents."""
    top, *parts = module.split(".")
    try:
        spec = importlib.util.find_spec(top)       # a top-level name: found, not imported
    except (ImportError, ValueError):
        return None
    for part in parts:                             # below it, along the package's own path
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = PathFinder.find_spec(f"{spec.name}.{part}", spec.submodule_search_locations)
    if spec is None:
        return None
    origin = spec.origin
    return Path(origin) if origin and origin.endswith(".py") else None


def _top_level_imports(tree: ast.Module):
    """Absolute imports executed when the module loads (not those inside functions or classes)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack += getattr(node, field, [])
        elif isinstance(node, ast.ExceptHandler):
            stack += node.body


def _literal_device(tree: ast.Module, attr: str):
    """``device=...`` (or ``backend=...``) of ``attr = Implementation(Class, device="cuda")`` in the
    module, if literal."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in node.targets)
                and isinstance(node.value, ast.Call)):
            for kw in node.value.keywords:
                if kw.arg in DEVICE_OPTIONS and isinstance(kw.value, ast.Constant):
                    return kw.value.value
    return None


def gpu_visible() -> bool:
    return NVIDIA.is_dir() and any(NVIDIA.iterdir())


def static_reason(entry: Entry) -> str | None:
    """Why ``entry`` cannot run here, as far as reading (not running) its module tells; None if
    its module and every package it imports are installed."""
    module, _, attr = entry.target.partition(":")
    path = _module_file(module)
    if path is None:
        return f"cannot find module {module!r} on the Python path"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        return f"cannot read {path}: {exc}"
    own = module.split(".")[0]
    for name in _top_level_imports(tree):
        top = name.split(".")[0]
        if top == own or top in sys.stdlib_module_names or top == "__future__":
            continue
        if importlib.util.find_spec(top) is None:
            return f"needs the Python package {top!r} (pip install {top})"
    device = next((entry.options[k] for k in DEVICE_OPTIONS if k in entry.options), None) or _literal_device(tree, attr)
    if device in GPU_DEVICES and not gpu_visible():
        return f"no CUDA device: the kernel shows no NVIDIA GPU ({NVIDIA} is {'empty' if NVIDIA.is_dir() else 'absent'})"
    return None


def probe_job(channel, names: list[str]) -> None:
    """In the supervised child: import each implementation in turn and ask it."""
    for name in names:
        channel.phase(f"importing {registry().entries[name].target}", "imports")
        channel.send("row", (name, registry().load(name)[2]))


def probed(names: list[str], limits: Limits) -> dict[str, str | None]:
    """name -> None or why it cannot run, by importing each in a child process; one that hangs,
    exits or crashes gets that as its reason, and a new child goes on with the rest."""
    reasons: dict[str, str | None] = {}
    while len(reasons) < len(names):
        todo = [n for n in names if n not in reasons]
        try:
            supervise(todo[0], "impls.core.probe.probe_job", {"names": todo}, limits,
                      lambda kind, row: reasons.__setitem__(*row) if kind == "row" else None)
        except StoppedError as exc:
            culprit = next(n for n in names if n not in reasons)
            reasons[culprit] = str(exc).split(": ", 1)[1] if str(exc).startswith(f"{todo[0]}: ") else str(exc)
        except NnbenchError as exc:
            reasons.update({n: str(exc) for n in todo if n not in reasons})
    return reasons


def listing(probe: bool, limits: Limits, names=None) -> dict[str, str | None]:
    """name -> None or why it cannot run here, for ``names`` (default: every registered one)."""
    names = list(dict.fromkeys(names or registry().entries))
    if probe:
        return probed(names, limits)
    return {name: static_reason(registry().entries[name]) for name in names}

