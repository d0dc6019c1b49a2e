# Two commands do all the set-up themselves: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench golden install install-lean install-full lock clean serve

# The locks (`make lock`, with hashes): requirements.lock is the lean service,
# requirements-full.lock adds the extras (dna, dask, plots), requirements-dev.lock adds the dev
# tools to those. Each install takes a lock whole, then the project itself without dependencies.
define install_lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(1)
	$(BIN)/python -m pip install --quiet --no-deps -e .
endef

# Everything `make test`, `make demo` and `make bench` need: .[dev,dna,dask,plots].
$(STAMP): pyproject.toml requirements-dev.lock
	$(call install_lock,requirements-dev.lock)
	touch $(STAMP)

install: $(STAMP)

# A service that analyses no video: no av, OpenCV, librosa (numba, llvmlite), dask or matplotlib.
install-lean:
	$(call install_lock,requirements.lock)

# The service with every extra, without the dev tools.
install-full:
	$(call install_lock,requirements-full.lock)

# Regenerate the locks from pyproject.toml. uv keeps each lock's current pins unless
# UPGRADE='--upgrade' (or '--upgrade-package NAME') is given; the extras' locks follow the lean one.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --quiet \
	--custom-compile-command 'make lock' $(UPGRADE)
lock: $(STAMP)
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra dna --extra dask --extra plots -c requirements.lock \
		-o requirements-full.lock
	$(UV_COMPILE) --all-extras -c requirements.lock -o requirements-dev.lock

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
	bash scripts/ensure-browser.sh
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
