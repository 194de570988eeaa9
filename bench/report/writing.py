"""Writing results: every file of a report to a temporary name, renamed into place only once
everything rendered, so results/ never holds a half-written file and a failed render leaves it
as it was. The profiler and the studies write through here too."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_all(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary name in out_dir, then rename each into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            staged.append((tmp, out_dir / name))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for tmp, final in staged:
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)


