# technic — set-up and the two main commands (see README.md).
# Every target installs what it needs: a fresh machine with Python >= 3.11 is enough.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint bench install clean up evaluation-docs

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "technic needs Python >= 3.11, found " + sys.version)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## The main job: db init, ingest the bundled real data, refresh features, scan, print results.
demo: $(STAMP)
	$(BIN)/technic demo

## The test suite (real PostgreSQL: a fresh database per run, dropped at the end).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -ra

## Style (ruff) and static types (mypy, configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check technic flows tests benchmarks
	$(BIN)/mypy

## docs/evaluation from the real bar files in ../shared/data (the default-rank study; minutes).
evaluation-docs: $(STAMP)
	nice -n 10 $(BIN)/technic evaluate --write-docs

## Benchmarks (full real universe from ../shared/data and synthetic 6,000 x 504).
bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/scan.py
	$(BIN)/python benchmarks/indicators.py
	$(BIN)/python benchmarks/portfolio.py

## The deployment stack of docker-compose.yml (docs/operations.md): build, start and wait for
## every health check, create the work pool and the "database" concurrency limit, register the
## deployments of prefect.yaml and their run forms' sector choices. `make up GPU=1` adds the
## GPU Dask worker (profile gpu).
COMPOSE ?= docker compose
GPU     ?=
up:
	@$(COMPOSE) version >/dev/null 2>&1 || { echo "make up: '$(COMPOSE)' is not available on this machine; it needs Docker Engine with the compose plugin (https://docs.docker.com/compose/install/). See docs/operations.md." >&2; exit 1; }
	$(COMPOSE) $(if $(filter 1 yes true,$(GPU)),--profile gpu )up -d --build --wait
	$(COMPOSE) exec -T prefect-worker python -m flows.bootstrap
	$(COMPOSE) exec -T prefect-worker prefect --no-prompt deploy --all
	$(COMPOSE) exec -T prefect-worker python -m flows.bootstrap --choices

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
