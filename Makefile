# Two commands do all the set-up themselves: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench golden install clean serve

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/adflywheel demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Uses the local PostgreSQL and Redis when they answer (CI requires them: see .ci/run).
export ADFLYWHEEL_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export ADFLYWHEEL_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

# On every core (pytest-xdist): each worker has its own databases and Redis database.
test: lint
	$(BIN)/python -m pytest -n auto

# The pure tier: no database, no Redis, nothing slow (seconds, not minutes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not db and not slow"

# Rewrite the golden outputs (tests/golden) from the current code: commit them on their own, so a
# change of behaviour shows up as a reviewed diff.
golden: $(STAMP)
	$(BIN)/python -m tests.golden.regenerate $(CASES)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH)

serve: $(STAMP)
	$(BIN)/adflywheel db upgrade
	$(BIN)/adflywheel serve

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
