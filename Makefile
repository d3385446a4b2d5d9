# batchlens — every command a user or CI needs. `make demo` and `make test` set up everything
# they need on a fresh machine: uv (installed with pip if missing), Python 3.13 (.python-version)
# and the locked environment (uv.lock).

PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen
# aws-sam-cli and checkov pin their own boto3/botocore, so they run isolated from the project.
SAM := $(UV) tool run --from aws-sam-cli sam
CHECKOV := BC_SKIP_MAPPING=TRUE $(UV) tool run --from checkov checkov
# Offline targets (moto, sam validate) need some Region; `deploy` keeps the operator's own (botocore
# puts AWS_DEFAULT_REGION before the profile's region, so exporting it would redirect the stack).
ifeq ($(filter deploy,$(MAKECMDGOALS)),)
export AWS_DEFAULT_REGION ?= us-east-1
endif
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup demo demo-up demo-down test unit integration lint typecheck template-lint \
        checkov validate build layer-requirements deploy bench chaos clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## install uv (if missing) and the locked environment
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv || \
	  { echo "make: could not install uv with $(PYTHON)'s pip (an externally managed Python refuses):" \
	    "install uv yourself (pipx install uv) and run make UV=uv $(MAKECMDGOALS)" >&2; exit 1; }
	@$(UV) sync --frozen --quiet

demo: setup  ## run the real pipeline against a local AWS stand-in (moto server on loopback)
	$(RUN) batchlens demo $(DEMO_ARGS)

demo-up: setup  ## like demo, but leave the local stack running for queries (stop with demo-down)
	$(RUN) batchlens demo --keep-running $(DEMO_ARGS)

demo-down: setup  ## stop a stack left running by demo-up
	$(RUN) batchlens demo --stop

test: setup lint typecheck template-lint checkov validate build  ## everything CI runs
	$(RUN) pytest -n 2 --dist loadfile -q

unit: setup  ## unit and contract tests only (no network)
	$(RUN) pytest -q tests/unit tests/contract

integration: setup  ## integration tests only (moto in-process, and its server on loopback)
	$(RUN) pytest -n 2 --dist loadfile -q tests/integration

lint: setup  ## ruff lint + format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup  ## mypy --strict
	$(RUN) mypy layers/batchlens/batchlens functions tests bench

template-lint: setup  ## cfn-lint on the SAM template
	$(RUN) cfn-lint template.yaml

checkov: setup  ## checkov (offline); every skip is justified in the template's Metadata
	$(CHECKOV) --quiet --compact --skip-download -f template.yaml --framework cloudformation

validate: setup  ## sam validate --lint (isolated aws-sam-cli)
	$(SAM) validate --lint --template template.yaml

# The layer's Makefile installs with this Python's pip: the project environment's Python 3.13
# (uv installed it from .python-version; pip is a dev dependency), so no other Python 3.13 need be
# on PATH. Inside `uv tool run`, `python3.13` on PATH would be aws-sam-cli's own, which has no pip.
LAYER_PYTHON ?= $(abspath .venv/bin/python)

layer-requirements: setup  ## pin the layer's dependencies to uv.lock (run after changing the lock)
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project \
	  --output-file layers/batchlens/requirements.txt --quiet

build: setup  ## sam build (the layer is built with the project environment's Python 3.13 and pip)
	LAYER_PYTHON="$(LAYER_PYTHON)" $(SAM) build --template template.yaml

deploy: build  ## sam deploy of the build (CONFIG_ENV=dev|prod picks a samconfig.toml environment)
	$(SAM) deploy $(if $(CONFIG_ENV),--config-env $(CONFIG_ENV))

bench: build  ## benchmarks against moto (on the sam build output): writes bench/results.json, bench/results.md, bench/batch-time.png
	$(RUN) python -m bench

chaos: setup  ## fault-injection soak: writes reports/chaos.json (CHAOS_ARGS=--small: the make-test variant)
	$(RUN) python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache reports
