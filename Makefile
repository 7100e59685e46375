# olive-workflows: the two set-up commands of the README, and the developer checks.
#   make demo   install, build the tiny model, run the embedded default recipe, ask the model
#   make test   install, then the whole test suite (slow end-to-end tests included)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check bench clean

# torch==2.13.0 first: it takes the CPU wheel on this machine's disk. Any other torch spec
# (or none, pulled in by olive-ai) downloads a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -c constraints/cpu.txt -e ".[olive,azure,dev]"
	# autoawq (pure Python) without its dependencies, whose pins would replace transformers and
	# torch: tests/test_awq_pack.py checks awq_compat's packing against AutoAWQ's own code.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
		-c constraints/cpu.txt autoawq
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/olive-workflows tiny-model
	$(BIN)/olive-workflows run workflows/tiny-travel-cpu.yaml
	$(BIN)/olive-workflows chat models/tiny-travel-cpu --compare \
		--adapter travel=adapter_weights.onnx_adapter \
		--prompt "what is the best thing to see in chicago"

test: install
	$(BIN)/python -m pytest

check: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

bench: install
	$(BIN)/python scripts/bench_render.py
	$(BIN)/python scripts/bench_run.py

clean:
	rm -rf models/tiny-travel-cpu models/tiny-search-cpu .olive-cache
