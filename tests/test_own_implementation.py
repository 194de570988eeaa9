"""A user's own implementation, from docs/your-implementation.md's example, end to end
with no nnbench file edited: written outside the repository, registered both ways (an entry
point of an installed package, and module:Class), listed, checked, trained, benchmarked in
smoke mode and rendered; a copy with one wrong gradient fails `nnbench check` naming it."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from background import Background

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_FILE = re.compile(r"<!-- file: (?P<name>[\w.]+) -->\n```\w*\n(?P<body>.*?)```", re.S)


def readme_files() -> dict[str, str]:
    files = {m["name"]: m["body"] for m in EXAMPLE_FILE.finditer((REPO / "docs" / "your-implementation.md").read_text())}
    assert {"mynet.py", "pyproject.toml"} <= set(files), "docs/your-implementation.md lost its example"
    return files


@pytest.fixture(scope="session")
def user(tmp_path_factory):
    """run(*argv, pythonpath=...) -> CompletedProcess, in a directory outside the repository that
    holds the documented example as a package source, installed into ``site`` with pip. For the
    session: the test that awaits its smoke benchmark runs last, after the other modules' tests."""
    root = tmp_path_factory.mktemp("user")
    src = root / "mynet-demo"
    src.mkdir()
    for name, body in readme_files().items():
        (src / name).write_text(body)
    site = root / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                          "--no-build-isolation", "--disable-pip-version-check", "--target", str(site), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("mynet_demo-*.dist-info/entry_points.txt"))

    def run(*argv, pythonpath, env=None, timeout=600):
        environ = dict(os.environ, **(env or {}))
        environ["PYTHONPATH"] = os.pathsep.join([str(pythonpath), str(REPO)])
        return subprocess.run([sys.executable, *argv], cwd=root, env=environ, capture_output=True, text=True,
                              timeout=timeout)

    run.root, run.src, run.site = root, src, site
    # The smoke benchmark of both registrations starts now and runs beside every test until the
    # last one, which awaits it.
    (root / "decline.py").write_text(DECLINER)
    run.smoke = Background("own-smoke", "-m", "pytest", REPO / "bench", "--rootdir", REPO, "-c", REPO / "pyproject.toml",
                           "--bench-mode=smoke", "-q", "-p", "no:cacheprovider", "-k", "my-net or relu-only or numpy",
                           "--bench-impl", "relu-only=decline:ReluOnly", "--benchmark-max-time=0.002",
                           "--benchmark-min-rounds=1", "--benchmark-json={root}/run.json", cwd=root,
                           env={"NNBENCH_COMMAND": "own implementation smoke",
                                "PYTHONPATH": os.pathsep.join([str(site), str(src), str(root)])}).start()
    yield run
    run.smoke.stop()


def nnbench(user, *argv, pythonpath, **kw):
    return user("-m", "impls.core.cli", *argv, pythonpath=pythonpath, **kw)


def test_entry_point_of_an_installed_package_is_listed_and_conforms(user, mnist):
    listing = nnbench(user, "list", pythonpath=user.site)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("my-net "))
    assert " yes " in row and "mynet-demo" in row, row
    check = nnbench(user, "check", "my-net", pythonpath=user.site)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "my-net: all" in check.stdout and "FAIL" not in check.stdout
    assert "MNIST, 1 epoch" in check.stdout and "finite differences" in check.stdout


def test_module_class_spec_checks_and_trains(user, mnist):
    check = nnbench(user, "check", "mynet:MyNetwork", "--no-mnist", pythonpath=user.src)
    assert check.returncode == 0, check.stdout + check.stderr
    train = nnbench(user, "train", "--impl", "mine=mynet:MyNetwork", "--preset", "relu", "--epochs", "1",
                    pythonpath=user.src)
    assert train.returncode == 3, train.stderr          # one epoch cannot meet the 10-epoch target
    assert train.stdout.startswith("mine on relu") and "final test accuracy" in train.stdout


def test_a_wrong_gradient_fails_check_naming_it(user, tmp_path):
    body = readme_files()["mynet.py"]
    wrong = body.replace("(delta.T @ acts[layer], delta.sum(axis=0))",
                         "(delta.T @ acts[layer] * (1.01 if layer == 0 else 1.0), delta.sum(axis=0))")
    assert wrong != body
    (tmp_path / "mynet_wrong.py").write_text(wrong)
    check = nnbench(user, "check", "mynet_wrong:MyNetwork", "--no-mnist", pythonpath=tmp_path)
    assert check.returncode == 1
    assert "nabla_W of layer 1 differs" in check.stdout
    assert "nabla_W of layer 2" not in check.stdout and "nabla_b of layer 1 differs" not in check.stdout
    assert "FAILED" in check.stderr and "gradients (20-16-10 sigmoid/sigmoid_quadratic float32)" in check.stderr
    assert "finite differences (6-5-4" in check.stderr


DECLINER = '''
from mynet import MyNetwork


class ReluOnly(MyNetwork):
    @classmethod
    def unsupported_reason(cls, spec, **options):
        if spec.output != "softmax_crossentropy":
            return "this library has no quadratic cost"
        return super().unsupported_reason(spec, **options)
'''


@pytest.mark.background        # started by ``user``, awaited last
def test_smoke_benchmark_runs_and_renders_both_registrations(user, tmp_path, mnist):
    """The installed entry point and an ad hoc spec (which declines nielsen's quadratic cost)
    in one smoke run: both in the JSON and the tables; the declined pairs skipped, saying why."""
    proc, run_json = user.smoke.result(timeout=600), user.smoke.root / "run.json"
    assert proc.returncode == 0, proc.stdout[-6000:]
    data = json.loads(run_json.read_text())
    ran = {b["extra_info"]["impl"] for b in data["benchmarks"]}
    assert {"my-net", "relu-only", "numpy"} <= ran
    assert "mynet-demo" in data["nnbench"]["sources"]["my-net"]
    declined = [o for o in data["nnbench"]["outcomes"] if o.get("impl") == "relu-only" and o["status"] == "skipped"]
    assert declined and all("no quadratic cost" in o["message"] for o in declined)

    from bench import report
    assert report.main([str(run_json), "--out", str(tmp_path / "results")]) == 0
    readme = (tmp_path / "results" / "README.md").read_text()
    headline = readme[readme.index("## Headline"):readme.index("## Forward")]
    assert "| my-net " in headline and "| relu-only " in headline
    assert "Skipped: `relu-only`: implementation 'relu-only' declines" in readme
    assert "relu-only" in readme[readme.index("Implementations not built into nnbench"):]
