# petitionbot: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PO := $(wildcard locales/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

.PHONY: run test lint format install compile i18n-extract i18n-update bench bench-quick bench-faq bench-trust bench-admin bench-broadcast clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --statistics -d locales -D messages -l $*

compile: $(MO)

run: install compile
	$(BIN)/petitionbot run

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install compile lint
	$(BIN)/pytest

# Translations: extract msgids from the code, merge them into every catalog, compile.
i18n-extract: install
	$(BIN)/pybabel extract -F locales/babel.cfg -k _ -k N_ --no-location --sort-output \
		--project petitionbot -o locales/messages.pot .

i18n-update: i18n-extract
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete

bench: install compile
	$(BIN)/python -m bench.signing --signers $${SIGNERS:-2000} --concurrency $${CONCURRENCY:-200}

# The property-based hostile-input test with 10,000 generated conversations, then the figures.
bench-trust: install compile
	HOSTILE_EXAMPLES=10000 $(BIN)/pytest -q -p no:randomly tests/test_hostile_input.py
	$(BIN)/python -m bench.trust

bench-faq: install
	$(BIN)/python -m bench.faq

# 100,000 signatures: /stats with its chart, CSV and XLSX exports, peak memory.
bench-admin: install compile
	$(BIN)/python -m bench.admin

# 100,000 recipients against a fake Bot API: rate, duplicates, losses, and a SIGKILL mid-way.
bench-broadcast: install compile
	$(BIN)/python -m bench.broadcast

bench-quick: install compile
	$(BIN)/python -m bench.signing --signers 200 --concurrency 50

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
