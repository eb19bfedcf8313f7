# One command to run the exchange, one to test it. Both build .venv from the pinned
# requirements first, so a fresh clone needs nothing but Python 3.11: PostgreSQL and Redis
# come from the machine when they answer, else from wheels (devservers/).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm ci writes this file; the pages serve lightweight-charts from node_modules (no build step).
NODE_STAMP := node_modules/.package-lock.json

.PHONY: run test bench bench-full bench-smoke lint format migrate venv clean

venv: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; \
	else echo "WARNING: npm not found; the trading page will have no chart (install Node.js, then make)." >&2; fi

run: venv
	$(BIN)/python scripts/run.py

test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	scripts/ensure_chromium.sh
	scripts/ensure_haproxy.sh
	$(BIN)/python scripts/test.py $(PYTEST_ARGS)

# Every benchmark, a few minutes (quick) or the headline runs (full): bench/results/ and the
# generated table of docs/PERFORMANCE.md. bench-smoke only proves they run and count right.
bench: venv
	$(BIN)/python bench/run.py --mode quick

bench-full: venv
	$(BIN)/python bench/run.py --mode full

bench-smoke: venv
	$(BIN)/python bench/run.py --mode smoke

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: venv
	$(BIN)/python manage.py migrate

clean:
	rm -rf $(VENV) var node_modules
