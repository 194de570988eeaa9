"""A script that was made importable by accident: ``sys.exit(main())`` runs on import."""
import sys


def main():
    return 0


sys.exit(main())
