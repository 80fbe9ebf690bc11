# interfuse: `make demo` runs the main job, `make test` runs every check.
# Both create .venv if it is missing and install what they need (torch pinned first,
# so pip never resolves a CUDA build; the project's own requirement is a range).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: test lint typecheck unit docs demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PIP) "$(TORCH_SPEC)"
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.torch
	$(PIP) -e ".[test,docs]"
	touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.torch
	$(PIP) -e ".[demo,bench]"
	touch $@

lint: $(VENV)/.test
	$(VENV)/bin/ruff check src tests conftest.py
	$(VENV)/bin/ruff format --check src tests conftest.py

typecheck: $(VENV)/.test
	$(VENV)/bin/mypy src

unit: $(VENV)/.test
	$(PY) -m pytest

docs: $(VENV)/.test
	$(VENV)/bin/mkdocs build --strict --site-dir site

test: lint typecheck unit docs

demo: $(VENV)/.demo
	$(VENV)/bin/interfuse demo

# tinyBIG 0.2.1 pins torch==2.2.2 (and torchvision), so it is installed without its
# dependencies; the bench loads only its fusion and interdependence modules.
$(VENV)/.bench: pyproject.toml $(VENV)/.torch
	$(PIP) -e ".[bench]"
	$(PIP) --no-deps tinybig==0.2.1
	touch $@

bench: $(VENV)/.bench
	$(VENV)/bin/interfuse bench

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
