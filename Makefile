# ostwatch — `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := ostwatch schemas producers streams sinks dashboards infra

.PHONY: help demo test lint typecheck unit integration browser bench bench-reports bench-freshness bench-load bench-replay bench-audit bench-compare bench-judge bench-monthly bench-restart clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: $(BIN)/.installed ## Run the stack on embedded defaults, fed by the simulator, with a live view
	$(BIN)/ostwatch up --simulate

browser: ## Debian's chromium for the live-view browser test (idempotent; apt as root)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Three pytest-xdist workers on two cores, a test file each at a time (a module's stack or
# harness is built once), in file order (integration first, the many short unit files fill in
# at the end). Three, not two: with two the suite kept 1.25 cores busy on average (user CPU
# 15 min 38 s over 12 min 31 s), the rest of the time its tests wait for stacks, supervisors
# and back-offs. pytest exits 5 when no test ran, so an empty run fails here too.
PARALLEL := -n 3 --dist loadfile --no-loadscope-reorder

test: $(BIN)/.installed browser lint typecheck ## Lint, type-check and run every test (what CI runs)
	$(BIN)/pytest -q -p no:cacheprovider $(PARALLEL)

lint: $(BIN)/.installed ## ruff lint and format check, and the import contract (pyproject's [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(BIN)/.installed ## mypy over every package
	$(BIN)/mypy $(PACKAGES) bench

unit: $(BIN)/.installed ## Only the tests that need no services
	$(BIN)/pytest -q -p no:cacheprovider $(PARALLEL) tests/unit

integration: $(BIN)/.installed browser ## Only the tests against the real broker and ClickHouse engine
	$(BIN)/pytest -q -p no:cacheprovider tests/integration

bench: $(BIN)/.installed ## Benchmarks (not tests): ingest throughput end to end
	$(BIN)/python -m bench.ingest_throughput

bench-reports: $(BIN)/.installed ## Report latency over a national year (~18M doses), vs the archive
	$(BIN)/python -m bench.report_latency

bench-freshness: $(BIN)/.installed ## Freshness p50/p99: published event → visible in reports
	$(BIN)/python -m bench.freshness

bench-load: $(BIN)/.installed ## Sustained load: national mornings compressed 60x for 10+ min; memory, backlog, freshness
	$(BIN)/python -m bench.load

bench-compare: $(BIN)/.installed ## Throughput and freshness p50/p99 vs a plain consumer and Quix Streams
	$(BIN)/python -m bench.compare

bench-judge: $(BIN)/.installed ## Alerts with two workers (one judge sweeping) vs one worker: cost, same alerts
	$(BIN)/python -m bench.judge_sweep --scale 2 --days 4 --batch 200

bench-restart: $(BIN)/.installed ## A worker restarted on a national year: seconds to ready, to the first decided event; memory
	$(BIN)/python -m bench.restart

bench-replay: $(BIN)/.installed ## Replay throughput on ≥1M events: archive rebuild and Avro import, vs Python
	$(BIN)/python -m bench.replay

bench-monthly: $(BIN)/.installed ## report monthly (json, xlsx, one province) over a national year, vs recomputing from the archive
	$(BIN)/python -m bench.monthly

bench-audit: $(BIN)/.installed ## Hash chain: build, live extension and `audit verify` events/s on ~2.2M events
	$(BIN)/python -m bench.chain_verify

clean: ## Remove the virtualenv and caches (not your data directory)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
