# The two commands of the README: `make run` and `make test`. Everything else is their set-up.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
JS_DIR := tests/js
WEB_DIR := web

.PHONY: setup setup-python setup-bench setup-js setup-web setup-browser run test test-fast test-lowest test-python check bench

setup: setup-python setup-js setup-web

# --inexact: `make run` keeps what `make test` installed (the bench group) instead of removing it.
setup-python:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --inexact

# The benchmark's own dependencies (psutil, moto). The checks and the tests
# cover bench/ too, so `make test` installs them.
setup-bench: setup-python
	$(UV) sync --frozen --group bench

setup-js:
	@if [ -f $(JS_DIR)/package.json ]; then \
		command -v npm >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nodejs npm); \
		cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	fi

# The upload page's tus-js-client (served at /ui/vendor/tus.min.js), Swagger UI's assets for
# /docs (swagger-ui-dist, under /ui/vendor/ too) and the browser test's playwright-core, from
# web/package-lock.json.
setup-web:
	@command -v npm >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error

# Only for the tests: the browser test drives Debian's Chromium (browsers cannot be downloaded).
setup-browser:
	@[ -x /usr/bin/chromium ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

run: setup-python
	@$(MAKE) --no-print-directory setup-web || echo "warning: the upload page at / needs npm (make setup-web); the API works without it"
	$(UV) run --frozen video-upload serve --host 127.0.0.1 --port 8000

# Lint, types, and the layer contracts of pyproject.toml's [tool.importlinter].
check: setup-bench
	$(UV) run --frozen --group bench ruff check src tests bench
	$(UV) run --frozen --group bench ruff format --check src tests bench
	$(UV) run --frozen --group bench mypy
	$(UV) run --frozen lint-imports --no-cache

# The single CI command (.ci/run): the checks, the unit layer, the unit layer again on the lowest
# versions pyproject.toml allows, then the whole suite. Every pytest run names a directory of
# tests and no marker filter, so none can end on "no tests ran" (exit 5, a failure here).
test: setup setup-bench setup-browser check test-fast test-lowest
	$(UV) run --frozen --group bench pytest -q -p no:cacheprovider

# The unit layer alone: pure logic, no server, database or S3; seconds.
test-fast: setup-python
	$(UV) run --frozen pytest -q -p no:cacheprovider tests/unit

# Every lower bound in pyproject.toml is a version the unit layer passes on: the project and its
# dev group resolved to the lowest versions allowed for direct dependencies (the newest that fit
# for the rest), in a venv of their own. Resolved afresh each time (not from uv.lock), then
# synced exactly, so a changed bound never leaves an older or newer version installed.
LOWEST := .venv-lowest
test-lowest: setup-python
	$(UV) venv --quiet --allow-existing $(LOWEST)
	$(UV) pip compile --quiet --python $(LOWEST)/bin/python --resolution lowest-direct \
		--group dev pyproject.toml -o $(LOWEST)/requirements.txt
	$(UV) pip sync --quiet --python $(LOWEST)/bin/python $(LOWEST)/requirements.txt
	$(UV) pip install --quiet --python $(LOWEST)/bin/python --no-deps -e .
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider tests/unit
	$(LOWEST)/bin/lint-imports --no-cache

# The test suite on another installed CPython (CI runs the default one), in a venv of its own:
# make test-python PY=/path/to/python3.13
ifneq ($(filter test-python,$(MAKECMDGOALS)),)
ifndef PY
$(error usage: make test-python PY=/path/to/python3.X)
endif
endif
test-python: setup setup-browser
	UV_PROJECT_ENVIRONMENT=.venv-$(notdir $(PY)) $(UV) run --frozen --group bench --python $(PY) pytest -q -p no:cacheprovider

bench: setup-bench
	$(UV) run --frozen --group bench python -m bench $(BENCH_ARGS)
