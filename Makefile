# Every target creates .venv and installs into it; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

STAMP_DOCS := $(VENV)/.installed-docs
STAMP_SIM  := $(VENV)/.installed-sim

.PHONY: demo test lint bench diagrams docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

$(STAMP_SIM): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[sim]'
	touch $@ $(STAMP_RUN)

## demo: run the simulation on its embedded default (SQLite), with a rich progress bar
demo: $(STAMP_SIM)
	$(VENV)/bin/ecommerce-core simulate

## test: the whole suite with branch coverage (fails below 90 %)
test: $(STAMP_TEST)
	$(PY) -m pytest --cov --cov-report=term --cov-fail-under=90

## lint: ruff and mypy --strict
lint: $(STAMP_TEST)
	$(PY) -m ruff check src tests benchmarks tools
	$(PY) -m ruff format --check src tests benchmarks tools
	$(PY) -m mypy --strict src

## bench: side-by-side benchmarks with ratios against plain baselines
bench: $(STAMP_TEST)
	$(PY) benchmarks/bench.py

$(STAMP_DOCS): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

## docs: build the MkDocs site (Material theme) into site/
docs: $(STAMP_DOCS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## diagrams: regenerate docs/diagrams from the process definitions
diagrams: $(STAMP_RUN)
	$(VENV)/bin/ecommerce-core diagram --all --write docs/diagrams

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
