"""Each phase, preset and suite declared once, and everything that lists them reads the declaration."""
from pathlib import Path

import pytest

from bench.harness.phases import BATCH_PHASES, MODES, PHASES
from bench.profiling import PROFILED
from impls.core.cli import build_parser
from impls.core.presets import PRESETS

SUITES = Path(__file__).resolve().parents[1] / "bench" / "suites"


def test_every_phase_has_one_suite_and_every_suite_a_phase():
    declared = {}
    for path in SUITES.glob("bench_*.py"):
        line = next(line for line in path.read_text().splitlines() if line.startswith("PHASE = "))
        declared[line.split("=", 1)[1].strip().strip('"')] = path.name
    assert set(declared) == set(PHASES)


@pytest.mark.parametrize("phase", BATCH_PHASES, ids=lambda p: p.name)
def test_every_batch_phase_is_complete_in_every_mode(phase):
    assert set(phase.batches) == set(MODES)
    assert phase.flops and phase.workload and phase.validate
    assert phase.name in PROFILED


@pytest.mark.parametrize("preset", PRESETS.values(), ids=lambda p: p.name)
def test_every_preset_shrinks_for_smoke_mode(preset):
    small = preset.shrunk()
    assert small.name == f"{preset.name}@smoke" and small.n_train < preset.n_train and small.epochs <= 3


def test_cli_preset_choices_come_from_the_presets(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--impl", "numpy", "--preset", "nope"])
    assert ", ".join(f"'{p}'" for p in PRESETS) in capsys.readouterr().err
