"""Prints to stdout on import, without a newline: the answer of the process that lists the
implementations must not be read from stdout (python -m bench.run: a JSONDecodeError once)."""
import sys

from impls.numpy_impl import NumpyNetwork

sys.stdout.write("hello from a chatty module")


class Chatty(NumpyNetwork):
    pass
