"""``python -m bench.make_args PROGRAM [ARG ...]``: run PROGRAM with ARGs, then with ``$ARGS`` split
into words as a shell would split them (``shlex``: quotes group, ``-k "a or b"`` is two words),
but never evaluated: a ``;``, ``$(...)`` or backquote in it is text, not a command.

The Makefile's recipes take user variables from the environment, quoted (``"$$IMPL"``), so that a
spec such as ``mynet:MyNetwork(device="cuda")`` is one argument whatever it holds; ``ARGS`` is a
list of arguments by design, and comes through here."""
from __future__ import annotations

import os
import shlex
import sys


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m bench.make_args PROGRAM [ARG ...]  (appends the words of $ARGS)")
    text = os.environ.get("ARGS", "")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        sys.exit(f"make: ARGS={text!r}: {exc}: quote as in a shell, e.g. ARGS='-k \"forward or epoch\"'")
    try:
        os.execvp(argv[0], [*argv, *words])
    except OSError as exc:
        sys.exit(f"make: cannot run {argv[0]}: {exc.strerror or exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
