# leadcrm developer commands. `make demo` serves the demo; `make test` runs the tests.
# Both set up .venv themselves; the stamps below make re-runs skip the install.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
BIN    := $(VENV)/bin

# Runtime dependencies only (demo, web, worker, beat, bench) vs. runtime + dev extras (test, lint).
STAMP     := $(VENV)/.installed
STAMP_DEV := $(VENV)/.installed-dev

PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
.PHONY: help demo test lint worker beat web bench chromium

help:
	@echo "make demo    set up .venv, migrate, seed the demo, serve on http://127.0.0.1:8000"
	@echo "make test    set up .venv with dev extras (+ Debian chromium) and run pytest (PYTEST_ARGS=...)"
	@echo "make lint    ruff check, ruff format --check, mypy"
	@echo "make web     gunicorn on 127.0.0.1:8000 (2 workers)"
	@echo "make worker  celery worker      make beat  celery beat"
	@echo "make bench   API benchmark (bench/api_bench.py)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(STAMP_DEV): $(STAMP) pyproject.toml
	$(PIP) install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py runserver 127.0.0.1:8000

# Browser tests drive Debian's chromium (Playwright's own browser download cannot work here).
chromium:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "NOTE: /usr/bin/chromium is missing and we are not root: browser tests will skip" \
			"(install the Debian package 'chromium')"; \
	fi

test: $(STAMP_DEV) chromium
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

worker: $(STAMP)
	$(BIN)/celery -A leadcrm worker -l info

beat: $(STAMP)
	$(BIN)/celery -A leadcrm beat -l info

# collectstatic first: with DJANGO_DEBUG=false WhiteNoise serves only the collected, hashed files.
web: $(STAMP)
	$(PY) manage.py collectstatic --noinput -v 0
	$(BIN)/gunicorn leadcrm.wsgi:application -b 127.0.0.1:8000 -w 2

bench: $(STAMP)
	$(PY) bench/api_bench.py
