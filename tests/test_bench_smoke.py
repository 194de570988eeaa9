"""CI runs the benchmark code in smoke mode (tiny sizes, minimal timing) so a broken
benchmark, plugin or renderer fails `make test`. The full bench never runs here."""
import pytest

from impls import available
from impls.core.registry import built_in

from conftest import python


def test_bench_smoke_mode_runs_and_renders(tmp_path, mnist, smoke_bench):
    proc = smoke_bench.proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert list(smoke_bench.storage.glob("*/0001_*.json")), "a passing session is saved as the baseline"

    from bench import report
    assert report.main([str(smoke_bench.json), "--out", str(tmp_path / "results")]) == 0
    readme = (tmp_path / "results" / "README.md").read_text()
    assert "`smoke test`" in readme and report.FAILED not in readme
    rows = {cells[0]: cells[1] for line in readme.splitlines()
            if len(cells := [c.strip() for c in line.split("|")[1:3]]) == 2}
    assert rows["MNIST from"].startswith(f"{mnist.source} (") and "MB in memory, held once" in rows["MNIST from"]
    assert rows["peak resident memory"].endswith("every implementation in turn)")       # the session's, recorded
    assert "## Peak resident memory" not in readme and "**Peak resident memory**" in readme
    # nnbench's own: an implementation another test registered in this process is not the run's.
    for impl, reason in available().items():
        if reason is None and built_in(impl):
            headline = readme[readme.index("## Headline"):]
            assert f"| {impl} " in headline, f"{impl} missing from the headline table"


@pytest.mark.usefixtures("isolated_env")
def test_without_mnist_the_benchmarks_stop_at_once_saying_why(tmp_path):
    """They used to skip every benchmark and exit 0, the reason only under -rs. (``--bench-only``:
    collecting every implementation would import every framework first, for nothing.)"""
    proc = python("-m", "pytest", "bench", "--bench-mode=smoke", "-q", "-p", "no:cacheprovider", "--bench-only=numpy",
                  "-k", "test_forward", f"--benchmark-json={tmp_path / 'run.json'}", timeout=300)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "nnbench: the benchmarks need MNIST: MNIST not found in the cache" in out, out[-2000:]
    assert "missing train-images-idx3-ubyte(.gz)" in out and " passed" not in out and " skipped" not in out
