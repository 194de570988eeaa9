"""The studies runner (bench/studies): each study runs end to end on real MNIST at a tiny size,
writes its file atomically with the machine and the command, and refuses bad requests in one line --
zero batch sizes or repeats, a batch larger than the data, only unavailable implementations, an
implementation that raises (tests/bad_impls/tool_raising.py) -- writing nothing."""
from pathlib import Path

import pytest

from bench import studies
from bench.studies.__main__ import build_parser, main

BAD_IMPLS = Path(__file__).parent / "bad_impls"


def test_every_study_module_declares_itself():
    assert set(studies.studies()) == {"cost-model", "duet", "epoch-grid", "roofline", "scaling", "step-overhead"}


def test_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "epoch-grid" in out and "step-overhead" in out


def test_step_overhead_runs_and_writes(tmp_path, capsys, mnist):
    assert main(["step-overhead", "--impl", "numpy", "--impl", "torch-fast-cpu", "--presets", "nielsen",
                 "--batch-sizes", "10", "--seconds", "0.01", "--repeats", "1", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "step-overhead.md").read_text()
    assert "python -m bench.studies step-overhead --impl numpy" in text and "| CPU " in text
    rows = [line for line in text.splitlines() if line.startswith("| nielsen")]
    assert [r.split("|")[2].strip() for r in rows] == ["numpy", "torch-fast-cpu"]
    assert rows[1].split("|")[8].strip().isdigit()          # torch operators counted for torch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-overhead.md"]   # no temporary files left


def test_epoch_grid_runs_and_finds_crossovers(tmp_path, mnist):
    assert main(["epoch-grid", "--impl", "numpy", "--impl", "reference", "--presets", "nielsen", "--batch-sizes",
                 "100", "1000", "--repeats", "1", "--threads", "1", "--reference-examples", "500",
                 "--no-compile-time", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "epoch-grid.md").read_text()
    assert "| reference † " in text and "timed on its first 500 examples and scaled" in text
    assert "Crossovers" in text
    assert (tmp_path / "epoch-grid-nielsen.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("argv,message", [
    (["no-such-study"], "invalid choice: 'no-such-study'"),
    (["step-overhead", "--impl", "nope"], "unknown implementation 'nope'"),
    (["epoch-grid", "--threads", "0"], "must be >= 1"),
    (["epoch-grid", "--impl", "numpy", "--batch-sizes", "0"], "must be >= 1"),
    (["cost-model", "--impl", "numpy", "--batch-sizes", "10", "-5"], "must be >= 1"),
    (["cost-model", "--impl", "numpy", "--repeats", "0"], "must be >= 1"),
    (["step-overhead", "--impl", "numpy", "--seconds", "0"], "must be > 0"),
    (["roofline", "--impl", "numpy", "--reference-examples", "0"], "must be >= 1"),
])
def test_bad_requests_are_usage_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_data_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("NNBENCH_DATA", raising=False)
    monkeypatch.setenv("NNBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NNBENCH_MNIST_MIRRORS", "http://127.0.0.1:9/")
    assert main(["step-overhead", "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"python -m bench.studies: error: --data {tmp_path}: missing train-images-idx3-ubyte(.gz)")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_implementation_that_declines_a_network_is_skipped_saying_why(tmp_path, monkeypatch, mnist):
    (tmp_path / "decline_mod.py").write_text(
        "from impls.numpy_impl import NumpyNetwork\n\n\n"
        "class ReluOnly(NumpyNetwork):\n"
        "    @classmethod\n"
        "    def unsupported_reason(cls, spec, **options):\n"
        "        return 'no quadratic cost here' if spec.output == 'sigmoid_quadratic' else None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["step-overhead", "--impl", "numpy", "--impl", "relu-only=decline_mod:ReluOnly", "--presets",
                 "nielsen", "relu", "--batch-sizes", "10", "--seconds", "0.01", "--repeats", "1",
                 "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "step-overhead.md").read_text()
    assert "Skipped: `relu-only`: implementation 'relu-only' declines 784-30-10" in text and "no quadratic cost" in text
    assert "| relu     | relu-only " in text and "| nielsen  | relu-only " not in text


def test_the_default_output_folder_is_not_tracked():
    args = build_parser(studies.studies()).parse_args(["step-overhead"])
    assert args.out == "out/studies"


def assert_one_line_and_nothing_written(capsys, out, *messages):
    err = capsys.readouterr().err
    assert err.startswith("python -m bench.studies: error: ") and len(err.strip().splitlines()) == 1, err
    assert all(m in err for m in messages), err
    assert not out.exists()


def test_only_unavailable_implementations_is_an_error(tmp_path, capsys):
    assert main(["step-overhead", "--impl", "ghost=nnbench_ghost_package.module:Net", "--out", str(tmp_path / "o")]) == 1
    assert_one_line_and_nothing_written(capsys, tmp_path / "o", "no implementation asked for is available here",
                                        "ghost (cannot import nnbench_ghost_package.module:Net")


@pytest.mark.parametrize("argv", [["step-overhead", "--batch-sizes", "10", "100000"],
                                  ["epoch-grid", "--batch-sizes", "100000", "--no-compile-time"],
                                  ["roofline", "--batch-sizes", "20000"]])
def test_a_batch_larger_than_the_data_is_refused(tmp_path, capsys, argv, mnist):
    assert main(argv + ["--impl", "numpy", "--presets", "nielsen", "--out", str(tmp_path / "o")]) == 1
    assert_one_line_and_nothing_written(capsys, tmp_path / "o", f"--batch-sizes {argv[2 if argv[0] != 'step-overhead' else 3]}")


def test_an_implementation_that_raises_is_one_line(tmp_path, capsys, monkeypatch, mnist):
    monkeypatch.syspath_prepend(str(BAD_IMPLS))
    assert main(["step-overhead", "--impl", "raiser=tool_raising:RaisesInBackprop", "--presets", "nielsen",
                 "--batch-sizes", "10", "--seconds", "0.01", "--repeats", "1", "--out", str(tmp_path / "o")]) == 1
    assert_one_line_and_nothing_written(capsys, tmp_path / "o", "implementation 'raiser': RaisesInBackprop.backprop "
                                        "raised RuntimeError: deliberately broken backprop")


# -- the cost model's honesty: synthetic epochs with known parameters -----------------------------
N, BATCHES = 60_000, [10, 16, 32, 64, 128, 256, 512, 1024]


def epochs(c_step, c_example, batches=BATCHES):
    return [N / b * c_step + N * c_example for b in batches]


def test_a_negative_fixed_cost_is_flagged_as_non_physical():
    from bench.studies.cost_model import fit
    model = fit(N, BATCHES, epochs(-1.1e-6, 2e-6))
    assert model.c_step < 0 and abs(model.worst) < 1e-9            # it fits perfectly, and still explains nothing
    assert any("non-physical" in why for why in model.problems(BATCHES))


def test_two_regimes_are_fitted_piecewise_and_predict_the_crossover():
    """Small batches with one per-example cost, large ones with a cheaper one (BLAS changing kernels):
    two parameters miss it by more than 15%, the piecewise fit recovers both regimes, and the crossover
    with a steady implementation is predicted where the measurement has it."""
    from bench.studies.cost_model import choose, explains, predicted_crossovers, agrees, Piecewise
    regime = epochs(150e-6, 9e-6, BATCHES[:4]) + epochs(300e-6, 3e-6, BATCHES[4:])
    steady = epochs(20e-6, 3.4e-6)
    two, alternative = choose(N, BATCHES, regime)
    assert any("residual beyond" in why for why in two.problems(BATCHES))
    assert isinstance(alternative, Piecewise) and alternative.problems(BATCHES) == []
    assert 64 < alternative.boundary < 128 and abs(alternative.large.c_example - 3e-6) < 1e-9
    used = explains(two, alternative, BATCHES)
    assert used is alternative
    faster = ["steady" if s < r else "regime" for s, r in zip(steady, regime)]
    measured = [(BATCHES[i], BATCHES[i + 1]) for i in range(len(BATCHES) - 1) if faster[i] != faster[i + 1]]
    assert measured == [(512, 1024)]
    assert agrees(predicted_crossovers(explains(*choose(N, BATCHES, steady), BATCHES), used, N, BATCHES),
                  measured, BATCHES)
    assert not agrees(predicted_crossovers(choose(N, BATCHES, steady)[0], two, N, BATCHES), measured, BATCHES)


def test_cost_model_page_flags_and_explains(tmp_path):
    """The page from synthetic measurements (measure() itself is the epoch grid's, run above): the
    two-parameter fit flagged with its reason, the piecewise row used, the crossover agreeing."""
    from types import SimpleNamespace
    from impls.core.presets import PRESETS
    from bench.studies.cost_model import choose, plot, preset_section
    from bench.studies.epoch_grid import Grid
    times = {"steady": epochs(20e-6, 3.4e-6), "regime": epochs(150e-6, 9e-6, BATCHES[:4]) + epochs(300e-6, 3e-6, BATCHES[4:])}
    spec = PRESETS["relu"].spec("float32")
    g = Grid(PRESETS["relu"], {name: SimpleNamespace(net=SimpleNamespace(spec=spec)) for name in times}, {}, N,
             {(name, 1, b): [t] for name, ts in times.items() for b, t in zip(BATCHES, ts)})
    fits = {name: choose(N, BATCHES, ts) for name, ts in times.items()}
    text = preset_section(g, fits, 1, BATCHES)
    regime_rows = [line for line in text.splitlines() if line.startswith(("| regime", "| ↳"))]
    assert "**flagged**: residual beyond ±15%" in regime_rows[0] and "(used)" not in regime_rows[0]
    assert "piecewise, split at b≈91 (used)" in regime_rows[1] and regime_rows[1].rstrip(" |").endswith("fits")
    assert "| `steady` vs `regime` |" in text and "| 512–1024 " in text and "| yes " in text and "1 of 1 agree" in text
    assert plot(g, fits, {n: ts for n, ts in times.items()}, BATCHES).startswith(b"\x89PNG")
