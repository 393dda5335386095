# attrsearch developer commands. `make install` is idempotent: it reinstalls only when
# pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart quickstart-check test format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# A second `make quickstart` continues (or just reprints) the sweep in results/quickstart; both end by
# writing results/quickstart/report.html.
quickstart: install
	$(BIN)/attrsearch sweep sweeps/quickstart.yaml $(if $(wildcard results/quickstart/sweep.yaml),--resume,)
	$(BIN)/attrsearch report results/quickstart

# The quickstart's results and report checked as a new user reads them (every section has content, curves
# converged, headless-browser render, a screenshot at results/quickstart/report.png): after `make quickstart`.
quickstart-check: install
	ATTRSEARCH_QUICKSTART=results/quickstart $(BIN)/python -m pytest -p no:cacheprovider tests/analysis/test_quickstart_report.py

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache results
