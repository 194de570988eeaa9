import sys

from . import main
from .writing import WriteError

try:
    code = main()
except WriteError as exc:        # a full disk, a read-only folder: one line, nothing written
    print(f"bench.report: error: {exc}", file=sys.stderr)
    code = 1
sys.exit(code)
