# discnet — developer entry points. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline

.PHONY: help setup test test-all lint demo clean

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install discnet with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)  ## run the default test suite (slow tests excluded)
	$(BIN)/pytest -q

test-all: $(STAMP)  ## run every test, slow ones included
	$(BIN)/pytest -q -m ''

lint: $(STAMP)  ## ruff check and format check
	$(BIN)/ruff check discnet tests train.py
	$(BIN)/ruff format --check discnet tests train.py

clean:  ## remove generated outputs (keeps .venv)
	rm -rf outputs multirun demo_out wandb logs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
