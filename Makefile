# Incident Engine. `make run` starts the local stack; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/dependencies/requirements.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

# The Lambda runtime's Python, for cold-start figures (found on PATH or through pyenv).
PY313  ?= $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || \
                  PYENV_VERSION=3.13.0 pyenv which python3 2>/dev/null)
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed-$(shell cat layers/dependencies/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: help venv run test test-unit test-integration test-e2e lint build deploy bench bench-quick clean

help:
	@echo "make run      start the local stack (emulated AWS + API + pollers + reconciler)"
	@echo "make test     create the virtualenv if needed, then run every test"
	@echo "make lint     ruff, mypy and cfn-lint"
	@echo "make bench    every benchmark (a few minutes); rewrites docs/benchmarks.md"
	@echo "make bench-quick  the same at small sizes, under a minute; prints only"
	@echo "make build    sam build (needs the SAM CLI)"
	@echo "make deploy   sam deploy --guided (needs the SAM CLI and AWS credentials)"

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

run: venv
	$(BIN)/python -m local.stack

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint -c I -- template.yaml  # informational checks too

# Only the runtime's libraries (the dependencies layer), under the runtime's Python.
$(LAMBDA_STAMP): layers/dependencies/requirements.txt
	@if [ -z "$(PY313)" ]; then echo "python3.13 not found: cold starts will be measured with $(PYTHON)"; \
	  $(PYTHON) -m venv $(LAMBDA_VENV); else $(PY313) -m venv $(LAMBDA_VENV); fi
	$(LAMBDA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r layers/dependencies/requirements.txt
	@rm -f $(LAMBDA_VENV)/.installed-*
	@touch $@

bench: venv $(LAMBDA_STAMP)
	BENCH_PYTHON=$(CURDIR)/$(LAMBDA_VENV)/bin/python PYTHONPATH=shared:. $(BIN)/python -m bench

bench-quick: venv $(LAMBDA_STAMP)
	BENCH_PYTHON=$(CURDIR)/$(LAMBDA_VENV)/bin/python PYTHONPATH=shared:. $(BIN)/python -m bench --quick

build:
	@command -v sam >/dev/null || { echo "sam not found: install the AWS SAM CLI (pip install aws-sam-cli)"; exit 2; }
	sam build

deploy: build
	sam deploy --guided

clean:
	rm -rf $(VENV) $(LAMBDA_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
