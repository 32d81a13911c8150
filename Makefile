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

.PHONY: help setup test test-all lint demo lumbar-t2 round1 round2 analyze bench sync clean slurm-up slurm-down test-slurm gpu-check

# The paper's two tuning rounds (experiments/round1, experiments/round2). SCALE selects conf/scale:
# cpu (default): phantoms, 64 px, 10 epochs, the model family at 8 first-level filters, 3 seeds, one
# process after another on this machine; paper: 512 px, 2000 epochs, 8 seeds on MANIFEST (your labelled
# scans with a split column), bf16 on GPUs through SLURM, logged to W&B.
# The scale itself (image size, epochs, model widths) is the config group conf/scale, which SCALE only
# selects; the rest of this block is where the runs go (data, seeds, trainer, logger, launcher).
SCALE ?= cpu
ROUNDS := experiments/work/$(SCALE)
ifeq ($(SCALE),paper)
MANIFEST ?= $(CURDIR)/data/subjects.csv
SEEDS ?= 8
LAUNCHER ?= hydra/launcher=submitit_slurm
ROUND_ARGS := scale=paper data.manifest=$(MANIFEST) trainer=gpu logger=wandb $(LAUNCHER)
ROUND_DATA :=
# Labelled scans never used in training (with grades), for the disc-level analysis of the round-2 winner.
TEST_MANIFEST ?= $(CURDIR)/data/test/subjects.csv
else
MANIFEST := $(CURDIR)/experiments/work/phantoms/subjects.csv
SEEDS ?= 3
ROUND_ARGS := scale=cpu data.manifest=$(MANIFEST) paths.cache_dir=$(CURDIR)/experiments/work/cache
ROUND_DATA := $(MANIFEST)
TEST_MANIFEST := $(CURDIR)/experiments/work/test-phantoms/subjects.csv
endif

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install discnet with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# Quiet unless something fails: pip's log (and setuptools' editable-install notice) is kept in
	@# $(VENV)/setup.log and printed only when an install step fails.
	@$(BIN)/pip install -q --upgrade pip > $(VENV)/setup.log 2>&1 || { cat $(VENV)/setup.log; exit 1; }
	@$(BIN)/pip install -q -e '.[dev]' >> $(VENV)/setup.log 2>&1 || { cat $(VENV)/setup.log; exit 1; }
	@echo "installed discnet and its dev tools into $(VENV) (log: $(VENV)/setup.log)"
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
		--levels $(DEMO)/heldout/levels.csv --out-dir $(DEMO)/predict --qc
	$(BIN)/discnet evaluate --pred $(DEMO)/predict --subjects $(DEMO)/heldout/subjects.csv \
		--levels $(DEMO)/heldout/levels.csv -o $(DEMO)/predict/metrics.csv
	@echo "Outputs: model $(DEMO)/train/checkpoints/best.ckpt, masks + volumes.csv + QC in $(DEMO)/predict"

lumbar-t2: $(STAMP)  ## leave-one-out on ../shared/data/lumbar-t2: recipe vs MONAI peer, ablations, seeds, final models; ~7 h CPU
	$(BIN)/python experiments/lumbar_t2/run.py
	$(BIN)/python experiments/lumbar_t2/seeds_x2.py --settings augmented_bg_x2 --peer-seeds 0 1 2
	$(BIN)/python experiments/lumbar_t2/longer.py --preset-epochs 108 --seeds 0 1 2 --final

$(CURDIR)/experiments/work/phantoms/subjects.csv: | $(STAMP)
	$(BIN)/discnet synth $(@D) --subjects 10 --sessions 2 --slice-count 16 20 --size 128 88 --spacing 2.08 2.08 3.0 --seed 0
	$(BIN)/discnet split $@ --val 3 --seed 0

round1: $(STAMP) $(ROUND_DATA)  ## round 1 (Table 2): 10 versions x SEEDS seeds (SCALE=cpu|paper)
	$(BIN)/python train.py -m '+experiment/round1=glob(*)' 'seed=range($(SEEDS))' $(ROUND_ARGS) \
		hydra.sweep.dir=$(ROUNDS)/round1

round2: $(STAMP) $(ROUND_DATA)  ## round 2 (Table 3): 4 versions x SEEDS seeds (SCALE=cpu|paper)
	$(BIN)/python train.py -m '+experiment/round2=glob(*)' 'seed=range($(SEEDS))' $(ROUND_ARGS) \
		hydra.sweep.dir=$(ROUNDS)/round2

# The disc-level analysis uses the final model as the paper chose it (discnet.analysis.runs.final_model): the
# version with the best mean orphan-removed Dice, then that version's best run (final_model.json).
analyze: $(STAMP) $(TEST_MANIFEST)  ## leaderboards, statistics, figures of both rounds + disc-level analysis -> experiments/roundN/results-$(SCALE)
	$(BIN)/discnet report $(ROUNDS)/round1 --factors params,input --out-dir experiments/round1/results-$(SCALE)
	$(BIN)/discnet leaderboard $(ROUNDS)/round2 -n 1 --out-dir $(ROUNDS)/round2-leader
	final=$$($(BIN)/python -c "import json; print(json.load(open('$(ROUNDS)/round2-leader/final_model.json'))['checkpoint'])") && \
	$(BIN)/discnet predict --ckpt "$$final" $(TEST_MANIFEST) --out-dir $(ROUNDS)/test-predictions \
		--levels $(dir $(TEST_MANIFEST))levels.csv
	$(BIN)/discnet evaluate --pred $(ROUNDS)/test-predictions --subjects $(TEST_MANIFEST) \
		--levels $(dir $(TEST_MANIFEST))levels.csv -o experiments/round2/results-$(SCALE)/discs.csv
	$(BIN)/discnet report $(ROUNDS)/round2 --factors version --metrics experiments/round2/results-$(SCALE)/discs.csv \
		--out-dir experiments/round2/results-$(SCALE)

$(CURDIR)/experiments/work/test-phantoms/subjects.csv: | $(STAMP)
	$(BIN)/discnet synth $(@D) --subjects 8 --sessions 1 --slice-count 16 20 --size 128 88 --spacing 2.08 2.08 3.0 --seed 1000

# `make bench` measures at the paper's geometry; on a small CPU pass fewer slices, e.g.
# make bench BENCH_ARGS="--slices 4 --bf16-slices 1 --bf16-repeats 1 --memory-batches 1 2 --memory-models unet75"
BENCH_ARGS ?=
bench: $(STAMP)  ## speed measured side by side -> experiments/benchmarks/results-<device>.{json,md}
	$(BIN)/python experiments/benchmarks/bench.py $(BENCH_ARGS)

slurm-up:  ## a one-node SLURM cluster on this machine (root; installs slurm-wlm + munge if missing)
	scripts/slurm-local.sh start

slurm-down:  ## stop the one-node SLURM cluster
	scripts/slurm-local.sh stop

test-slurm: $(STAMP)  ## the SLURM tests (sweeps through submitit_slurm) on the running cluster
	$(BIN)/pytest -q -m slurm tests/test_slurm.py

# GPU_CHECK_ARGS="--data /path/to/lumbar-t2" when ../shared is not beside the repository.
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)  ## one CUDA GPU, <= 5 min: bench fp32+bf16, training steps, predict vs CPU, DDP -> experiments/benchmarks/results-cuda.{json,md}
	$(BIN)/python experiments/benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

sync: $(STAMP)  ## upload offline W&B runs (needs WANDB_API_KEY)
	find . -path ./.venv -prune -o -type d -name 'offline-run-*' -print | xargs -r $(BIN)/wandb sync

clean:  ## remove generated outputs (keeps .venv)
	rm -rf outputs multirun $(DEMO) wandb logs .cache .pytest_cache .ruff_cache experiments/work experiments/*/work data/synthetic
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
