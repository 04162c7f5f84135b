# Incident Engine. `make run` starts the local stack; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/dependencies/requirements.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

# The Lambda runtime's Python (sam build, make invoke, the built-artifact test, cold starts):
# python3.13 on PATH, else the newest 3.13 pyenv has.
ifndef PY313
PY313 := $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | tail -n 1) \
	pyenv which python3.13 2>/dev/null)
endif
export PYTHON313 := $(PY313)
# The SAM CLI: yours when it is on PATH, else one installed in .venv-sam (see requirements-sam.txt).
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cat requirements-sam.txt | cksum | cut -d' ' -f1)
SAM ?= $(or $(shell command -v sam 2>/dev/null),$(SAM_VENV)/bin/sam)
FUNCTION ?=
EVENT ?=
STACK ?=

.PHONY: help venv run test test-unit test-integration test-e2e lint build deploy bench bench-quick clean \
        py313 invoke env-vars fuzz soak

help:
	@echo "make run      start the local stack (emulated AWS + API + pollers + reconciler)"
	@echo "make test     create the virtualenv if needed, then run every test"
	@echo "make lint     ruff, mypy and cfn-lint"
	@echo "make fuzz     schemathesis, every check, 200 examples per operation, on a fresh local stack"
	@echo "make soak     incidents, alerts and acks at a steady rate while the worker is killed (minutes)"
	@echo "make bench    every benchmark (a few minutes); rewrites docs/benchmarks.md"
	@echo "make bench-quick  the same at small sizes, under a minute; prints only"
	@echo "make build    sam build with Python 3.13 (installs the SAM CLI in .venv-sam if none is on PATH)"
	@echo "make invoke FUNCTION=ApiFunction EVENT=events/api_create_incident.json"
	@echo "             run one built function as Lambda would, against the local stack (no Docker)"
	@echo "make env-vars [STACK=<deployed stack>]  an --env-vars file for sam local invoke"
	@echo "make deploy   sam deploy --guided (needs AWS credentials)"

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

# The long runs of what tests/e2e/test_schemathesis.py and tests/e2e/test_soak.py do briefly.
FUZZ_EXAMPLES ?= 200
fuzz: venv
	$(BIN)/python -m tests.fuzz.run --examples $(FUZZ_EXAMPLES) $(if $(SEED),--seed $(SEED))

SOAK_SECONDS ?= 180
soak: venv
	$(BIN)/python -m tests.soak --seconds $(SOAK_SECONDS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint -c I -- template.yaml  # informational checks too

# Cold starts are measured on the built artifact (local/build.py) under Python 3.13.
bench: venv
	PYTHONPATH=shared:. $(BIN)/python -m bench

bench-quick: venv
	PYTHONPATH=shared:. $(BIN)/python -m bench --quick

py313:
	@test -n "$(PY313)" || { \
	  echo "error: Python 3.13 (the Lambda runtime's version) was not found on PATH or in pyenv."; \
	  echo "  Install it, e.g. 'pyenv install 3.13' or your system's python3.13 package, or pass PY313=/path/to/python3.13."; \
	  exit 2; }

$(SAM_STAMP): requirements-sam.txt
	@echo "sam not found on PATH: installing the AWS SAM CLI into $(SAM_VENV) (about a minute, once)"
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	@rm -f $(SAM_VENV)/.installed-*
	@touch $@

# sam build finds the runtime's python on PATH; the layers' Makefiles read PYTHON313.
build: py313 $(if $(filter $(SAM_VENV)/bin/sam,$(SAM)),$(SAM_STAMP))
	PATH="$(dir $(PY313)):$$PATH" $(SAM) build

deploy: build
	$(SAM) deploy --guided

invoke: venv py313
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { \
	  echo "usage: make invoke FUNCTION=<logical id in template.yaml> EVENT=events/<file>.json [INCIDENT=<id>]"; exit 2; }
	@$(BIN)/python -m local.invoke "$(FUNCTION)" "$(EVENT)"

env-vars: venv
	@$(BIN)/python -m local.env_vars $(if $(STACK),--stack "$(STACK)") $(if $(AWS_ENDPOINT),--aws-endpoint "$(AWS_ENDPOINT)")

clean:
	rm -rf $(VENV) $(SAM_VENV) .venv-lambda .aws-sam .pytest_cache .mypy_cache .ruff_cache
