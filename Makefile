# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv when it is absent.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-lowest lint format bench vendor translations

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/otkuda demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(STAMP)
	@sh scripts/ensure-test-services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

# The same code on the lowest release of every direct dependency that pyproject.toml allows, in a venv of its
# own: module imports plus the connector and telephony tests on SQLite. Catches a floor set too low.
LOWEST_VENV ?= .venv-lowest
LOWEST_TESTS ?= tests/test_imports.py tests/connectors tests/test_telephony_adapters.py tests/test_webhooks.py

test-lowest:
	@test -x $(LOWEST_VENV)/bin/python || python3 -m venv $(LOWEST_VENV)
	python3 scripts/lowest-constraints > $(LOWEST_VENV)/constraints.txt
	$(LOWEST_VENV)/bin/python -m pip install -q -c $(LOWEST_VENV)/constraints.txt -e '.[postgres,google]' pytest
	OTKUDA_TEST_BACKENDS=sqlite $(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Re-fetch the vendored CSS framework and API-reference viewer (versions pinned in the script).
vendor:
	sh scripts/refresh-vendor

# Re-extract the UI's strings, merge them into the Russian catalogue and compile it. Translate the new
# entries in hub/translations/ru/LC_MESSAGES/messages.po, then run this again.
translations: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o hub/translations/messages.pot \
		--no-location --sort-output --project=Otkuda --omit-header .
	$(VENV)/bin/pybabel update -i hub/translations/messages.pot -d hub/translations -l ru --no-fuzzy-matching \
		--ignore-obsolete
	$(VENV)/bin/pybabel compile -d hub/translations -l ru
