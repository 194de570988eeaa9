"""A module written as a script: `sys.exit(main())` runs on import."""
import sys

from impls.numpy_impl import NumpyNetwork


class ExitsOnImport(NumpyNetwork):
    pass


def main():
    return 0


sys.exit(main())
