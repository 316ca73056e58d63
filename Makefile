# scorm-appliance: every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CHROMIUM ?= /usr/bin/chromium

.PHONY: help serve test test-fast conformance lint fmt browser clients bench dist clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP) ## Install and start the server on 127.0.0.1:8080 (data in the platform's user data dir)
	$(BIN)/scorm-appliance serve $(ARGS)

browser: ## Install Debian's chromium for the browser tests when it is missing
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "chromium is missing: install Debian's chromium package (browser tests need $(CHROMIUM))"; exit 1; fi; \
	fi

# apt-get as root, else through sudo (the client tests need Debian's PHP, and Node.js when it is missing).
APT_INSTALL = if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	else echo "missing: install Debian's $(1)"; exit 1; fi

clients: ## Install what the client-library tests need: Debian's php-cli and php-curl, Node.js, TypeScript in clients/typescript
	@if ! command -v php >/dev/null || ! php -m | grep -qx curl; then $(call APT_INSTALL,php-cli php-curl); fi
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then $(call APT_INSTALL,nodejs npm); fi
	@if [ ! -x clients/typescript/node_modules/.bin/tsc ] || [ clients/typescript/package-lock.json -nt clients/typescript/node_modules/.package-lock.json ]; then \
		cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error; \
	fi

test: $(STAMP) browser clients ## Install everything, lint, and run the full test suite (the ADL conformance suite included)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(ARGS)

conformance: $(STAMP) browser ## Run only the ADL conformance suites: SCORM 2004 4th Ed. and the xAPI LRS (writes docs/conformance.md, docs/xapi-conformance.md)
	$(BIN)/pytest tests/conformance $(ARGS)

test-fast: $(STAMP) clients ## Run the tests that need no browser
	$(BIN)/pytest -m "not browser and not conformance" $(ARGS)

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## Run the benchmarks (prints figures; see bench/README.md)
	$(BIN)/python -m bench

dist: $(STAMP) ## Build the wheel, the sdist and the single-file zipapps into dist/ (see docs/install.md)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python packaging/build_zipapp.py --wheel "$$(ls dist/scorm_appliance-*.whl)" --target linux-x86_64
	$(BIN)/python packaging/build_zipapp.py --wheel "$$(ls dist/scorm_appliance-*.whl)" --target linux-aarch64
	@host=scorm-appliance-linux-$$(uname -m).pyz; if [ -f "dist/$$host" ]; then ln -sf "$$host" dist/scorm-appliance.pyz; fi
	@ls -l dist

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
