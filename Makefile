# Two commands do all the set-up on a fresh machine:
#   make demo   - the product end to end on a private Redis and the broker simulator
#   make test   - the whole test suite (it starts its own redis-server and simulator)
# .ci/run runs `make check test`.

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check bench bench-quick redis-server

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The tests start their own redis-server (and Sentinels, a Cluster) on free ports; they
# need the binaries, redis-cli to join a Cluster and openssl for the TLS test's CA.
redis-server:
	@(command -v redis-server && command -v redis-cli && command -v openssl) >/dev/null || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server redis-tools openssl)

demo: $(STAMP) redis-server
	$(BIN)/order-worker demo

test: $(STAMP) redis-server
	$(BIN)/pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The benchmark's peers: streaq in this environment (taskiq gets one of its own).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) redis-server
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP) redis-server
	$(BIN)/python -m benchmarks --quick
