# One entry point for people and CI. `make check` is the test command README.md gives.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: check lint types test test-tools schemas bench e2e deploy-dev destroy-dev

check: lint types test

$(STAMP): requirements.txt requirements-dev.txt policies/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) test-tools
	$(BIN)/pytest

# promtool and a Prometheus server for the rule and usage-export tests.
test-tools:
	scripts/install-test-tools.sh

# The CRD schemas the tests validate against, from the upstream CRDs at the pinned releases.
schemas: $(STAMP)
	$(BIN)/python -m harness.crd_schemas --out .schemas

bench: $(STAMP)
	$(BIN)/python -m harness.bench

e2e: $(STAMP)
	scripts/e2e.sh

deploy-dev:
	scripts/deploy-dev.sh

destroy-dev:
	scripts/destroy-dev.sh
