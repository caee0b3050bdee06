# tickfleet — `make run` starts the whole fleet, `make test` runs the whole suite.
# Both create .venv and install the project first; nothing else needs to be installed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run logs test test-unit test-integration lint bench redis venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tickfleet needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

redis: venv
	@scripts/ensure-redis.sh

run: venv redis
	@scripts/run-fleet.sh

# Follow the logs of the fleet `make run` started (supervisord's own: starts, exits, restarts)
FLEET_LOGS := supervisord stream control beat api flower
logs:
	@d="$${TICKFLEET_RUN_DIR:-var}/log"; tail -n 20 -F $(foreach p,$(FLEET_LOGS),"$$d/$(p).log")

test: venv redis
	scripts/run-tests.sh tests

test-unit: venv
	scripts/run-tests.sh tests/unit

test-integration: venv redis
	scripts/run-tests.sh tests/integration

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tickfleet workers producers celeryconfig.py tests

bench: venv redis
	$(BIN)/python bench/reload_burst.py
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/breaker.py
	$(BIN)/python bench/monitor.py
	$(BIN)/python bench/greeks.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
