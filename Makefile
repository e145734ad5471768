# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV      := .venv
PY        := $(VENV)/bin/python
# The package (all `make demo` needs), then the tests' tools and the Ray backend on top: a
# first `make demo` skips their install (about 35 s of its budget).
STAMP     := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.installed-dev-stamp

# Dagster reads dagster.yaml from DAGSTER_HOME: the repository root.
export DAGSTER_HOME := $(CURDIR)
# wandb keeps its runs on disk unless turned on.
export WANDB_MODE ?= offline
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-cluster test-learning ui ui-screenshots lint browser sample-portfolio base-model clean bench smoke

# The demo, the tests and the benchmarks download nothing. `make ui` may: a user's spec can
# name a hub model (pinned with base_model_revision) or BIOART_CAPTION_MODEL a hub id.
demo test test-cluster test-learning ui-screenshots bench smoke base-model: export HF_HUB_OFFLINE := 1
demo test test-cluster test-learning ui-screenshots bench smoke base-model: export TRANSFORMERS_OFFLINE := 1

$(STAMP): pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $@

## demo: materialize every asset of the sample LoRAs on the tiny model, offline, on CPU
demo: $(STAMP)
	$(VENV)/bin/bioart demo

## test: the definitions as Dagster loads them (`dg check defs`), then the test suite but the
## learning proofs (`test-learning`) and the Ray cluster (`test-cluster`); the real-browser UI
## and every model family's chain to a release included
test: $(DEV_STAMP) browser
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg check defs
	$(PY) -m pytest -q -m "not learning and not ray"

## test-cluster: the remote compute path on a real local Ray cluster the tests start on
## 127.0.0.1: captioning, training (also as two processes) and the XY plot there, crashes,
## divergence and cancellation (about 5 min; CI runs it after `test`)
test-cluster: $(DEV_STAMP)
	$(PY) -m pytest -q -m ray

## test-learning: the embedded default learns: the four demo LoRAs (SDXL, SD 1.5, Flux) trained
## in full and scored by the XY plot's rule, and a memorizing LoRA refused (about 9 min; CI
## runs it after `test`)
test-learning: $(DEV_STAMP)
	$(PY) -m pytest -q -m learning

## ui: the Dagster UI on http://127.0.0.1:3000 (loopback only)
ui: $(STAMP)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## ui-screenshots: the README's UI pictures, retaken by the browser test into docs/ui/
ui-screenshots: $(DEV_STAMP) browser
	BIOART_UI_SHOTS=$(CURDIR)/docs/ui $(PY) -m pytest -q tests/test_dagster_ui.py

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check bioart_pipeline tests benchmarks

# Debian's chromium for the browser test (Playwright's own browser download is not possible).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

## sample-portfolio: regenerate data/portfolio deterministically
sample-portfolio: $(STAMP)
	$(PY) -m bioart_pipeline.sample_portfolio

## base-model: pretrain an embedded tiny base model, FAMILY=sdxl (default, committed), sd15 or
## flux (about two hours on 2 cores, resumable: run it again after an interruption)
FAMILY ?= sdxl
base-model: $(STAMP)
	$(VENV)/bin/bioart build-base --family $(FAMILY)

# clean keeps what people wrote (reviews, captions with their edits) and base-model
# pretraining's resumable work folders (hours of CPU)
clean:
	chmod -R u+w data/outputs 2>/dev/null || true
	test ! -d data/outputs || find data/outputs -mindepth 1 -maxdepth 1 ! -name reviews \
		! -name captions ! -name 'base_model_work*' -exec rm -rf {} +
	rm -rf storage history logs schedules .logs_queue .nux .telemetry wandb

## bench: benchmarks that print figures (not part of make test)
bench: $(DEV_STAMP)
	$(PY) benchmarks/preprocessing.py
	$(PY) benchmarks/near_duplicates.py
	$(PY) benchmarks/captioning.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/xy_plot.py
	$(PY) benchmarks/compute.py

## smoke: full-size SDXL and SD 1.5 (random weights) through the real training, resume and XY
## code, and a Flux.1-dev-width step (one double, one single block) at 1024 px with its export
## checked; prints time and peak memory (several minutes on 2 CPU cores, 24 GB RAM)
smoke: $(STAMP)
	$(PY) benchmarks/full_size_smoke.py --family sdxl
	$(PY) benchmarks/full_size_smoke.py --family sd15
	$(PY) benchmarks/flux_smoke.py
