# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs hf-rerank, runs the main job on the bundled model and sample
#   make test   creates .venv, installs hf-rerank with test extras, runs the test suite
#   make lint   ruff: lint and formatting (CI runs it before the tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# On a machine without an NVIDIA GPU, torch comes from TORCH_CPU_INDEX when set (for example
# https://download.pytorch.org/whl/cpu); left empty, pip's configured indexes are used (on the
# project's build machines the CPU wheel of torch==$(TORCH_VERSION) lies on disk).
TORCH_CPU_INDEX ?=

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"; \
	else \
	  echo "no NVIDIA GPU found: installing the CPU build of torch $(TORCH_VERSION)"; \
	  $(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_CPU_INDEX),--index-url $(TORCH_CPU_INDEX)); \
	fi
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/hf-rerank train --config recipes/configs/demo_sample.yaml

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q --durations=15 tests

# ruff (configured in pyproject.toml): lint, and formatting checked, not applied
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) outputs
