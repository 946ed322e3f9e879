# Quick start:  make demo   (runs the engine on sample data)
#               make test   (installs everything and runs the tests)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# PostgreSQL for the event-store contract tests (CI requires it; set empty to skip locally).
COLLECTIONS_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export COLLECTIONS_TEST_POSTGRES_URL

.PHONY: install demo up test test-fast clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python starter.py up --demo

up: install
	$(BIN)/python starter.py up

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis
