# Two entry points that work on a fresh machine with python3 and make:
#   make demo   - run the whole pipeline on the embedded synthetic data
#   make test   - lint and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= lifecircle-demo

.PHONY: demo test lint format bench bench-quick bench-e2e bench-e2e-quick bench-taxonomy data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/lifecircle demo --out $(OUT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# two workers: the machines have two cores
test: lint
	$(BIN)/python -m pytest -n 2

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_engine.py

bench-quick: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_engine.py --quick

bench-e2e: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_end_to_end.py

bench-e2e-quick: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_end_to_end.py --quick

bench-taxonomy: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_taxonomy.py

data: $(VENV)/.installed
	$(BIN)/python scripts/make_demo_data.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
