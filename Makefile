# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: demo test bench clean install browser

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/llmobs demo --serve

# The dashboard's browser tests drive Debian's chromium (never a downloaded browser); installed when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "chromium is not installed and this is not root: the browser tests will be skipped"

test: $(STAMP) browser
	LLMOBS_TEST_POSTGRES_URL="$${LLMOBS_TEST_POSTGRES_URL:-$$(bash .ci/postgres_url.sh)}" \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	LLMOBS_TEST_POSTGRES_URL="$${LLMOBS_TEST_POSTGRES_URL:-$$(bash .ci/postgres_url.sh)}" \
		sh -c 'for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done'

clean:
	rm -rf $(VENV) data/*.db* .pytest_cache
