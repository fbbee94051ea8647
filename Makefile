# One virtual environment for everything, installed once from the pinned constraints.
# `make test` and `make demo` share it: whichever runs first installs, the other reuses it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-packages test test-deep lint format demo bench docs clean

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

# The suite waits on servers more than it computes: two pytest-xdist workers halve its time on 2 cores.
PYTEST_WORKERS ?= 2

test: lint system-packages
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The property tests with a larger, random Hypothesis draw (CI's profile is fixed: see tests/conftest.py).
test-deep: install
	HYPOTHESIS_PROFILE=deep $(BIN)/python -m pytest -k "propert or hostile" $(PYTEST_ARGS)

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

clean:
	rm -rf $(VENV) .demo build *.egg-info docs/_build docs/api/_generated
