# hwc-risk: `make demo` runs the sample pipeline, `make test` runs lint, types and tests,
# `make test-fast` the same without the slow and browser tiers (the edit loop).
# Both create the virtual environment (.venv) and install the package first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

WEB_STAMP := web/node_modules/.installed-stamp

.PHONY: demo test test-fast lint typecheck pytest pytest-fast format sample-data web-assets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Leaflet and its plugins from the npm registry, for offline maps and the browser tests.
# Optional: without npm, online maps still work and those tests are skipped locally.
web-assets: $(WEB_STAMP)

$(WEB_STAMP): web/package.json
	@if command -v npm >/dev/null 2>&1; then \
		cd web && npm install --no-package-lock --no-audit --no-fund --silent && \
		touch node_modules/.installed-stamp; \
	else \
		echo "npm not found: offline maps (--offline) and the browser tests need 'make web-assets'"; \
	fi

demo: $(STAMP) web-assets
	$(BIN)/hwc-risk run pipelines/sample.yaml

test: lint typecheck pytest

# the tiers are pytest markers; tests/conftest.py says how a test picks its tier
test-fast: lint typecheck pytest-fast

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) web-assets
	$(BIN)/pytest

pytest-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not browser"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sample-data: $(STAMP)
	$(BIN)/python sample_data/make_sample_data.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache web/node_modules test-artifacts
