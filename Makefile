# Set-up and entry points. `make demo` and `make test` create the virtual
# environment on first use and reuse it afterwards (rebuilt when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Installed before the package so that its `torch>=2.4` is already met: on the
# development machines this pin resolves to a CPU build on local disk; elsewhere
# it is PyPI's torch (CUDA on Linux). Override with e.g. `make TORCH=torch demo`.
TORCH ?= torch==2.13.0

export MUJOCO_GL ?= egl

.PHONY: demo test lint bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/worldenv demo --out demo

# Lint, format and types first (seconds), then the documentation site built strictly,
# then the tests.
test: lint docs
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/worldenv bench scenes

# The documentation site into site/; a broken link or reference fails the build.
docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) demo .pytest_cache
