# discnet — developer entry points. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline
# Text files and console output in UTF-8 whatever the locale (CI machines may have none).
export PYTHONUTF8 := 1

DEMO := demo_out
DEMO_SUBJECTS := 12
# Half-resolution phantoms (1.04 mm in-plane) keep the demo to a few CPU minutes.
DEMO_SYNTH := --size 256 176 --spacing 1.04 1.04 3.0

.PHONY: help setup test test-all lint demo lumbar-t2 sync clean

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
	$(BIN)/ruff check discnet tests experiments train.py
	$(BIN)/ruff format --check discnet tests experiments train.py

demo: $(STAMP)  ## synthetic phantoms -> train a small U-Net -> predict a held-out phantom -> its Dice
	$(BIN)/discnet synth $(DEMO)/data --subjects $(DEMO_SUBJECTS) --seed 0 $(DEMO_SYNTH) --overwrite
	$(BIN)/discnet split $(DEMO)/data/subjects.csv --val 2 --seed 0
	$(BIN)/discnet synth $(DEMO)/heldout --subjects 1 --seed 1000 $(DEMO_SYNTH) --overwrite
	rm -rf $(DEMO)/train
	$(BIN)/python train.py experiment=demo data.manifest=$(CURDIR)/$(DEMO)/data/subjects.csv \
		hydra.run.dir=$(DEMO)/train paths.cache_dir=$(DEMO)/cache skip_complete=false
	$(BIN)/discnet predict --ckpt $(DEMO)/train/checkpoints/best.ckpt $(DEMO)/heldout/subjects.csv \
		--levels $(DEMO)/heldout/levels.csv -o $(DEMO)/predict --qc
	$(BIN)/discnet evaluate --pred $(DEMO)/predict --subjects $(DEMO)/heldout/subjects.csv \
		--levels $(DEMO)/heldout/levels.csv -o $(DEMO)/predict/metrics.csv
	@echo "Outputs: model $(DEMO)/train/checkpoints/best.ckpt, masks + volumes.csv + QC in $(DEMO)/predict"

lumbar-t2: $(STAMP)  ## leave-one-out on ../shared/data/lumbar-t2 (raw vs stretched) + a final model; ~1 h CPU
	$(BIN)/python experiments/lumbar_t2/run.py

sync: $(STAMP)  ## upload offline W&B runs (needs WANDB_API_KEY)
	find . -path ./.venv -prune -o -type d -name 'offline-run-*' -print | xargs -r $(BIN)/wandb sync

clean:  ## remove generated outputs (keeps .venv)
	rm -rf outputs multirun $(DEMO) wandb logs .cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
