# nnbench: `make test` and `make bench` work from a fresh clone; the first run builds .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
IMPL   ?= numpy
PRESET ?= nielsen
ARGS   ?=

.PHONY: setup test train bench clean

# torch is installed first and pinned: the CPU build, so the unpinned range in
# pyproject.toml is already satisfied and pip does not pull several GB of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,plots]'
	@touch $@

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

train: $(STAMP)
	$(VENV)/bin/nnbench train --impl $(IMPL) --preset $(PRESET) $(ARGS)

# Interim until the pytest-benchmark suites land: every preset on every available
# implementation through the CLI, summarized with tabulate.
bench: $(STAMP)
	$(PY) bench/presets_table.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks
