# One virtual environment for everything, installed once from the pinned constraints.
# `make test` and `make demo` share it: whichever runs first installs, the other reuses it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-packages test test-deep lint format demo bench docs dist clean

$(STAMP): setup.py constraints-3.11.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints-3.11.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

system-packages:
	bash scripts/install-system-packages.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite waits on servers more than it computes: two pytest-xdist workers halve its time on 2 cores. Work
# stealing keeps both busy to the end: a few tests take minutes (deployment, hostile), and the default split left one
# worker with a long tail (the whole suite here: 865 s split by load, 708 s with worksteal).
PYTEST_WORKERS ?= 2

test: lint system-packages
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The property tests with a larger, random Hypothesis draw (CI's profile is fixed: see tests/conftest.py), and
# SMSNEXUS_SCENARIOS random fault scenarios instead of CI's fixed seeds (tests/hostile/test_hostile_scenarios.py,
# about 20 s each: 2,000 take hours). The seeds come from SMSNEXUS_SCENARIO_BASE (random unless given; every
# xdist worker draws the same), and each failure prints the seed that replays it (SMSNEXUS_SCENARIO_SEED=...).
SMSNEXUS_SCENARIOS ?= 2000
SMSNEXUS_SCENARIO_BASE ?= $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
test-deep: install
	HYPOTHESIS_PROFILE=deep SMSNEXUS_SCENARIOS=$(SMSNEXUS_SCENARIOS) SMSNEXUS_SCENARIO_BASE=$(SMSNEXUS_SCENARIO_BASE) \
		$(BIN)/python -m pytest -k "propert or hostile" $(PYTEST_ARGS)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python bench/run_all.py

# The Sphinx site under docs/ into docs/_build/html; any warning (a broken reference or link) fails the build.
docs: install
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# A wheel of the provider in dist/ (it is not on PyPI yet), built in an isolated environment from pyproject.toml;
# build/ goes first, so that no module deleted since the last build rides along.
# Install it with: pip install -c constraints-3.11.txt dist/airflow_provider_smsnexus-*.whl (add "[emulator]" after the
# file name for the local emulator)
dist:
	rm -rf build dist
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) .demo build dist *.egg-info docs/_build docs/api/_generated
