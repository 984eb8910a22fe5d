# `make run`: set up everything and serve the app on the embedded default (SQLite, eager Celery).
# `make test`: set up and run the whole test suite (ruff + pytest, browser tests included).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: run test setup lint chromium messages

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py seed_demo
	@echo "Serving on http://$(HOST)/  (Ctrl-C to stop)"
	$(PY) manage.py runserver $(HOST)

lint: setup
	$(VENV)/bin/ruff check .

# Browser tests drive Debian's chromium; never a downloaded browser.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Debian's chromium: sudo apt-get install -y chromium"; fi; }

test: setup chromium lint
	$(VENV)/bin/pytest

messages: setup
	$(PY) manage.py makemessages -l en --ignore=.venv --ignore=var --ignore=tests
	$(PY) manage.py compilemessages --ignore=.venv
