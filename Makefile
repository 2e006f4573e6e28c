# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv system-deps demo test lint bench clean

$(BIN)/tether: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/tether

venv: $(BIN)/tether

# Debian packages the tests use as real peers (git http-backend, GnuPG for PGP keys, age).
system-deps:
	@bash scripts/system-deps.sh

demo: venv
	$(BIN)/tether demo

test: venv system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
