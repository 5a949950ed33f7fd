# make train: set up and train on IMDB; make test: the test suite. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that this machine's pip finds on disk; a GPU machine gets a CUDA build of the same release.
TORCH ?= torch==2.13.0
# A local copy of IMDB laid out like the hub's stanfordnlp/imdb (placed under data/ by `make data`).
IMDB_DIR ?= $(firstword $(HDC_IMDB_DIR) $(wildcard ../shared/data/imdb))
ARGS ?=

.PHONY: install data train test test-fast test-full bench bench-gpu time-to-accuracy reproduce proxies memory scaling scale format lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"

data:
	@if [ -n "$(IMDB_DIR)" ]; then \
		mkdir -p data/stanfordnlp && ln -sfn "$(abspath $(IMDB_DIR))" data/stanfordnlp/imdb && \
		echo "data/stanfordnlp/imdb -> $(abspath $(IMDB_DIR))"; \
	else echo "No local IMDB copy: stanfordnlp/imdb will be streamed from the Hugging Face Hub"; fi

train: install data
	$(BIN)/python train.py experiment=imdb $(ARGS)

# Tiers (markers set in tests/conftest.py): make test-fast: in-process tests on small data (no interpreter,
# server or browser started, not all of IMDB read); make test: those too (what CI runs); make test-full: also
# the slow tests (learning real IMDB to an accuracy, the measurement scripts run end to end). Each spreads the
# tests over one worker per core (at most 4; pytest-xdist, an idle worker taking queued tests from a busy
# one), one torch thread each.
PYTEST = HDC_IMDB_DIR="$(IMDB_DIR)" $(BIN)/python -m pytest -n auto --maxprocesses 4 --dist worksteal
test:
	$(PYTEST) -m "not slow" $(ARGS)

test-fast:
	$(PYTEST) -m "not slow and not entry and not server and not imdb" $(ARGS)

test-full:
	$(PYTEST) $(ARGS)

# make proxies: build the proxy corpora (data/proxies/), then train the default recipe, the fastText baseline and
# the paper's recipe on each (scripts/reproduce/proxies.yaml) -> results/PROXIES.md; resumes where it stopped
proxies: data
	$(BIN)/python scripts/proxies.py
	$(BIN)/python scripts/multilabel_proxies.py
	$(BIN)/python scripts/reproduce.py proxies --results results/PROXIES.md
	$(BIN)/python scripts/reproduce.py multilabel --results results/MULTILABEL.md

# make bench [ARGS="data.max_sentences=15 data.max_words=20"] [OUT=bench.json]
bench: data
	$(BIN)/python scripts/benchmark.py $(ARGS) $(if $(OUT),--out $(OUT))

# make bench-gpu [PART=1|2]: every GPU figure of docs/PERFORMANCE.md#gpu on a machine with a CUDA GPU
# -> logs/bench_gpu/out/bench_gpu_$(PART).tgz (scripts/bench_gpu.sh says what each part measures)
PART ?= 1
bench-gpu: data
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/bench_gpu.sh $(PART)

# make time-to-accuracy [ARGS="seed=1"] [OUT=results/time_to_accuracy.json]: raw text to tested model, empty caches
time-to-accuracy: data
	$(BIN)/python scripts/time_to_accuracy.py $(ARGS) $(if $(OUT),--out $(OUT))

# make reproduce [LIST=imdb]: the experiments of scripts/reproduce/$(LIST).yaml -> results/RESULTS.md
LIST ?= imdb
reproduce: data
	$(BIN)/python scripts/reproduce.py $(LIST) $(ARGS)

# make memory: peak RSS of the worst inputs (longest IMDB reviews, a 100,000-word document) -> results/memory.json
memory:
	$(BIN)/python scripts/memory_bound.py $(if $(IMDB_DIR),--imdb $(IMDB_DIR))

# make scaling: time and memory of one forward + backward as documents grow to 100,000 words -> results/scaling.{json,png}
scaling:
	$(BIN)/python scripts/scaling.py $(ARGS)

# make scale [SCALE_DIR=/tmp/hdc_scale] [ARGS="data.max_sentences=15 data.max_words=20"]: stand-ins of
# 100k, 300k and 1M documents (IMDB repeated, outside the repo), encoding time, memory and cache size of
# each, one training epoch on the largest -> results/scale.json
SCALE_DIR ?= /tmp/hdc_scale
scale: data
	for n in 100000 300000 1000000; do $(BIN)/python scripts/scale_standin.py $(IMDB_DIR) $(SCALE_DIR)/$$n --documents $$n; done
	$(BIN)/python scripts/scale.py $(SCALE_DIR)/100000 $(SCALE_DIR)/300000 $(SCALE_DIR)/1000000 --train $(ARGS)

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint:
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

clean:
	rm -rf logs data/cache .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
