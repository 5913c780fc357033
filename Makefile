# jobstream: `make run` brings everything up, `make test` runs every check.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format lock chromium bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt $(VENV)/.run-deps
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The locks (README: Dependencies): pip-tools compiles requirements.in to requirements.txt, then
# requirements-dev.in on those pins to requirements-dev.txt, and scripts/lock.py leaves in the latter only
# what the former lacks. Pins stay as they are unless asked: `make lock LOCK_ARGS=--upgrade-package=NAME`
# (or --upgrade). Resolved from the package index alone (PIP_INDEX_URL, else PyPI), not from a machine's
# pip.conf extras or local wheel folders, so the locks install anywhere.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
  $(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(VENV)/.dev-deps
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --output-file=requirements-dev.txt requirements-dev.in
	$(PY) scripts/lock.py

# The jobstream command: a script in the venv that runs this checkout's cli/ with the venv's Python
# (the checkout's path goes in as argv[1], so no quoting of it in Python code; sys.path gets it first).
$(VENV)/bin/jobstream: Makefile | $(PY)
	printf '#!/bin/sh\nexec "%s" -c "import sys; sys.path.insert(0, sys.argv.pop(1)); from cli import main; main()" "%s" "$$@"\n' \
	  "$(abspath $(PY))" "$(CURDIR)" > $@.tmp
	chmod +x $@.tmp && mv $@.tmp $@

run: $(VENV)/.run-deps $(VENV)/bin/jobstream
	$(PY) scripts/run.py

# The browser tests drive Debian's chromium; install it when missing and we may.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "jobstream: the browser tests need Chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two test processes (pytest-xdist), a test file to each at a time: the suite's time nearly halves on
# 2 cores, and a file's fixtures stay with it. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(VENV)/.dev-deps $(VENV)/bin/jobstream chromium lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15

bench: $(VENV)/.dev-deps
	$(PY) -m bench.sse_fanout --help

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
