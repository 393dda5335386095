# attrsearch developer commands. `make install` is idempotent: it reinstalls only when
# pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test format clean

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

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache results
