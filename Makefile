# Two entry points for a fresh machine: `make run` and `make test`.
# Each bootstraps .venv from pyproject.toml pinned by constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/liqbot run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff over code and tests, then mypy (strict on the data and signal packages, default on the service).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict feeds signals backtests
	$(BIN)/mypy bot

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
