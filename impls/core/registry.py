"""Where implementations come from: one way in, for nnbench's own and for anyone's.

An implementation is a subclass of ``impls.Network``. It is registered under a name by:

- an **entry point** in the group ``nnbench.implementations`` of any installed package,
  ``name = "module:attr"``, where ``attr`` is the class or an ``Implementation`` (the class
  plus constructor options). nnbench's own implementations are declared exactly so, in its
  ``pyproject.toml``; or
- an **ad hoc spec**, ``[NAME=]module:Class[(option=value, ...)]``, given to
  ``nnbench --impl``, to ``pytest bench --bench-impl``, or in ``$NNBENCH_IMPLS`` (several
  separated by commas). Without ``NAME=`` the name is the spec itself.

Nothing is imported until it is asked for, so a missing package (or GPU) makes that one
implementation *unavailable*, with the reason, and leaves the rest alone. One name from
two sources is an error naming both.
"""
from __future__ import annotations

import ast
import importlib
import importlib.metadata
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, ImplementationError, UnavailableError, UnsupportedError

GROUP = "nnbench.implementations"
ENV = "NNBENCH_IMPLS"
#: nnbench's own declarations, read directly when nnbench runs from a checkout it was not
#: installed from (PYTHONPATH=. on a GPU machine): the same table pip turns into entry points
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
_SPEC = re.compile(r"^\s*(?:(?P<name>[^=():\s]+)\s*=\s*)?(?P<module>[\w.]+):(?P<attr>[\w.]+)\s*(?P<call>\(.*\))?\s*$",
                   re.S)


class Implementation:
    """What an entry point names when the class needs constructor options::

        cuda = Implementation(MyNetwork, device="cuda")     # entry point: my-net-cuda = "mypkg.net:cuda"
    """

    def __init__(self, factory, **options):
        self.factory, self.options = factory, options

    def __repr__(self):
        return f"Implementation({getattr(self.factory, '__qualname__', self.factory)}, {self.options})"


@dataclass
class Entry:
    name: str
    target: str                  # "module:attr"
    source: str                  # where it was declared, for messages
    options: dict = field(default_factory=dict)
    origin: str = ""             # short form for tables: the package, or the option/variable
    spec: str = ""               # an ad hoc entry's text: what registers it again in another process


def parse_spec(text: str, source: str) -> Entry:
    """``[NAME=]module:Class[(k=v, ...)]`` -> Entry; option values are Python literals."""
    m = _SPEC.match(text)
    if not m:
        raise ConfigError(f"{source}: {text!r} is not an implementation spec: expected "
                          "[NAME=]module:Class or module:Class(option=value, ...)")
    options = {}
    if m["call"]:
        try:
            call = ast.parse(f"f{m['call']}", mode="eval").body
            if not isinstance(call, ast.Call) or call.args:
                raise ValueError("options must be keyword=value")
            options = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as exc:
            raise ConfigError(f"{source}: bad options in {text!r} ({exc}); write them as "
                              "module:Class(device=\"cuda\", n=2)") from None
    target = f"{m['module']}:{m['attr']}"
    return Entry(m["name"] or text.strip(), target, source, options, source, text.strip())


def split_specs(text: str) -> list[str]:
    """Comma-separated specs; commas and parentheses inside the options' parentheses, or inside
    a quoted option value (``label="a,b)"``), belong to the options."""
    parts, depth, start, quote, escaped = [], 0, 0, None, False
    for i, ch in enumerate(text):
        if quote:                       # inside a string literal: only its closing quote counts
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _entry_points() -> list[Entry]:
    entries, seen = [], set()
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = getattr(ep.dist, "name", None) or "?"
        if (ep.name, ep.value) in seen:        # one package seen twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        entries.append(Entry(ep.name, ep.value, f"entry point {ep.name!r} of package {dist!r}", origin=dist))
    if not any(e.origin == "nnbench" for e in entries) and PYPROJECT.is_file():
        table = tomllib.loads(PYPROJECT.read_text()).get("project", {}).get("entry-points", {}).get(GROUP, {})
        entries[:0] = [Entry(name, value, f"{PYPROJECT.name} of nnbench (not installed)", origin="nnbench")
                       for name, value in table.items()]
    return entries


class Registry:
    """Names -> entries, in the order declared: nnbench's, other packages', then ad hoc."""

    def __init__(self):
        self.entries: dict[str, Entry] = {}
        self._loaded: dict[str, tuple] = {}
        for entry in _entry_points():
            self._add(entry)
        for text in split_specs(os.environ.get(ENV, "")):
            self._add(parse_spec(text, f"${ENV}"))

    def _add(self, entry: Entry) -> str:
        old = self.entries.get(entry.name)
        if old is not None:
            if (old.target, old.options) == (entry.target, entry.options):
                return entry.name          # the same thing asked for twice
            raise ConfigError(f"implementation name {entry.name!r} is declared twice: by {old.source} "
                              f"({old.target}) and by {entry.source} ({entry.target}); rename one")
        self.entries[entry.name] = entry
        return entry.name

    def add_spec(self, text: str, source: str) -> str:
        """Register an ad hoc spec (or accept a registered name); returns the name."""
        if text in self.entries:
            return text
        if ":" not in text:
            raise ConfigError(f"unknown implementation {text!r}; choose one of {', '.join(self.entries)}, "
                              "or give your own as module:Class")
        return self._add(parse_spec(text, source))

    def load(self, name: str):
        """(class, options, reason it cannot run here or None); imports on first use."""
        if name not in self.entries:
            raise ConfigError(f"unknown implementation {name!r}; choose one of {', '.join(self.entries)}")
        if name not in self._loaded:
            self._loaded[name] = self._resolve(self.entries[name])
        return self._loaded[name]

    @staticmethod
    def _resolve(entry: Entry):
        from .base import Network
        module, _, attr = entry.target.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attr.split("."):
                if not hasattr(obj, part):
                    return None, entry.options, f"cannot import {entry.target}: {module} has no attribute {part!r}"
                obj = getattr(obj, part)
        except ImportError as exc:
            missing = exc.name and not exc.name.startswith(module.split(".")[0])
            why = (f"needs the Python package {exc.name!r} (pip install {exc.name.split('.')[0]})" if missing
                   else f"cannot import {entry.target}: {exc}")
            return None, entry.options, why
        except Exception as exc:       # noqa: BLE001 -- a user's module may raise anything on import
            return None, entry.options, f"importing {entry.target} raised {type(exc).__name__}: {exc}"
        options = dict(entry.options)
        if isinstance(obj, Implementation):
            options = {**obj.options, **options}
            obj = obj.factory
        if not (isinstance(obj, type) and issubclass(obj, Network)):
            return None, options, f"{entry.target} is not a subclass of impls.Network (it is {obj!r})"
        try:
            reason = obj.unavailable_reason(**options)
        except Exception as exc:       # noqa: BLE001
            reason = f"{obj.__name__}.unavailable_reason raised {type(exc).__name__}: {exc}"
        return obj, options, reason


_registry: Registry | None = None


def registry() -> Registry:
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def names() -> list[str]:
    return list(registry().entries)


def register(spec: str, source: str = "--impl") -> str:
    """Register ``[NAME=]module:Class[(options)]`` (or accept a known name) for this process."""
    return registry().add_spec(spec, source)


def available(among=None) -> dict[str, str | None]:
    """Every registered name (or those of ``among``) -> None if it can run here, else the reason it
    cannot. Asking imports the implementation's module and its framework."""
    return {name: registry().load(name)[2] for name in names() if among is None or name in among}


def unsupported(name: str, spec) -> str | None:
    """Why implementation ``name`` declines the network ``spec``, or None (it must be available)."""
    cls, options, _ = registry().load(name)
    return cls.unsupported_reason(spec, **options)


def create(name: str, spec):
    """A new instance of ``name`` for ``spec``.

    UnavailableError if it cannot run here or its constructor fails; UnsupportedError if it
    declines the network (the one refusal suites and tests skip)."""
    cls, options, reason = registry().load(name)
    if reason:
        raise UnavailableError(f"implementation {name!r} is unavailable: {reason}")
    why = cls.unsupported_reason(spec, **options)
    if why:
        raise UnsupportedError(f"implementation {name!r} declines {spec.describe()}: {why}")
    try:
        net = cls(spec, **options)
    except (UnsupportedError, UnavailableError):
        raise
    except Exception as exc:           # noqa: BLE001 -- reported as a reason, the cause chained
        raise UnavailableError(f"implementation {name!r} failed to construct: {type(exc).__name__}: {exc}") from exc
    net.name = name
    return net


def default_dtype(name: str) -> str:
    """The dtype an implementation trains in unless told otherwise (its first supported)."""
    cls, _, reason = registry().load(name)
    if cls is None:
        raise UnavailableError(f"implementation {name!r} is unavailable: {reason}")
    if not cls.dtypes:
        raise ImplementationError(f"implementation {name!r} declares no dtypes ({cls.__name__}.dtypes is empty): "
                                  "nothing it could be trained in")
    return cls.dtypes[0]


def built_in(name: str) -> bool:
    return registry().entries[name].origin == "nnbench"


def source(name: str) -> str:
    entry = registry().entries[name]
    return f"{entry.source}: {entry.target}" + (f" {entry.options}" if entry.options else "")
