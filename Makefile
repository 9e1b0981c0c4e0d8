# The two commands of the README: `make run` and `make test`. Everything else is their set-up.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
JS_DIR := tests/js

.PHONY: setup setup-python setup-js run test check lint bench

setup: setup-python setup-js

setup-python:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

setup-js:
	@if [ -f $(JS_DIR)/package.json ]; then \
		command -v npm >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nodejs npm); \
		cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	fi

run: setup-python
	$(UV) run video-upload serve --host 127.0.0.1 --port 8000

check: setup-python
	$(UV) run ruff check src tests
	$(UV) run ruff format --check src tests
	$(UV) run mypy

test: setup check
	$(UV) run pytest -q -p no:cacheprovider

bench: setup-python
	$(UV) run python -m bench
