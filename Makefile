# Two entry points for a fresh machine (see README):
#   make demo   set everything up, run the example supervisor on the embedded defaults
#   make test   set everything up, run ruff, mypy --strict and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint typecheck pytest services bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python examples/supervisor.py

test: $(BIN)/.installed services lint typecheck pytest

services:
	bash scripts/services.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check agentkit agents examples tests
	$(BIN)/ruff format --check agentkit

typecheck: $(BIN)/.installed
	$(BIN)/mypy --strict agentkit

pytest: $(BIN)/.installed
	$(BIN)/pytest -q

bench: $(BIN)/.installed services
	for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
