# petitionbot: `make run` and `make test` are all a fresh machine needs.
# `make run` installs what the bot runs on; `make test` adds the development tools. Both
# install the exact versions pinned, with hashes, in requirements/ (refresh: `make lock`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_LOCK := requirements/run.txt
DEV_LOCK := requirements/dev.txt
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp
TOOLS := .venv-tools
PO := $(wildcard locales/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

.PHONY: run test lint format install install-dev lock compile i18n-extract i18n-update bench bench-quick bench-faq bench-trust bench-admin bench-broadcast bench-http bench-startup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml $(RUN_LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(RUN_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP) $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	touch $@

install: $(RUN_STAMP)

install-dev: $(DEV_STAMP)

# Pin the newest versions pyproject.toml allows, with their hashes (uv, in a venv of its own).
lock:
	test -x $(TOOLS)/bin/uv || ($(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet uv)
	$(TOOLS)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
		--no-header --output-file $(RUN_LOCK) pyproject.toml
	$(TOOLS)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
		--no-header --extra dev --constraint $(RUN_LOCK) --output-file $(DEV_LOCK) pyproject.toml

locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(RUN_STAMP)
	$(BIN)/pybabel compile --statistics -d locales -D messages -l $*

compile: $(MO)

run: install compile
	$(BIN)/petitionbot run

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install-dev compile lint
	$(BIN)/pytest

# Translations: extract msgids from the code, merge them into every catalog, compile.
i18n-extract: install-dev
	$(BIN)/pybabel extract -F locales/babel.cfg -k _ -k N_ --no-location --sort-output \
		--project petitionbot -o locales/messages.pot .

i18n-update: i18n-extract
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete

bench: install-dev compile
	$(BIN)/python -m bench.signing_scale --signers $${SIGNERS:-400} --concurrency $${CONCURRENCY:-200} \
		--paced-concurrency $${PACED_CONCURRENCY:-50} --preload $${PRELOAD:-100000}

# The property-based hostile-input test with 10,000 generated conversations, then the figures.
bench-trust: install-dev compile
	HOSTILE_EXAMPLES=10000 $(BIN)/pytest -q -p no:randomly tests/test_hostile_input.py
	$(BIN)/python -m bench.trust

bench-faq: install-dev
	$(BIN)/python -m bench.faq

# 100,000 signatures: /stats with its chart, CSV and XLSX exports, peak memory.
bench-admin: install-dev compile
	$(BIN)/python -m bench.admin

# 100,000 recipients against a fake Bot API: rate, duplicates, losses, and a SIGKILL mid-way.
bench-broadcast: install-dev compile
	$(BIN)/python -m bench.broadcast --engine $${ENGINE:-both}

# The bot over HTTP webhooks on PostgreSQL, 1 and 2 processes, 200 signers, beside an echo bot.
bench-http: install-dev compile
	$(BIN)/python -m bench.http

# Launch to first update (the bot) and to first send (the broadcast worker), real processes.
bench-startup: install-dev compile
	$(BIN)/python -m bench.startup

bench-quick: install-dev compile
	$(BIN)/python -m bench.signing --signers 200 --concurrency 50

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
