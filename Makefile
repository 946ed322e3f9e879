# Quick start:  make demo   (runs the engine on sample data)
#               make test   (installs everything and runs the tests)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# PostgreSQL for the event-store contract tests (CI requires it; set empty to skip locally).
COLLECTIONS_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export COLLECTIONS_TEST_POSTGRES_URL

.PHONY: install messages catalogues bytecode demo up web test test-fast lint clean faults histories audit bench bench-quick

# Browser tests drive Debian's chromium (never a downloaded browser): `make install` adds it
# with apt when it is missing (plus a CJK font for readable Chinese screenshots).
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# PDF letters (WeasyPrint) need Pango and fonts, CJK included: added with apt when missing.
PDF_FONTS := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc

install: $(STAMP) $(CHROMIUM) $(PDF_FONTS) catalogues bytecode

# The project's own modules compiled ahead: this environment sets PYTHONDONTWRITEBYTECODE, so
# without it every `collections` command compiles them again (pip does the same for the
# dependencies). compileall rewrites only what changed; a stale file is never used (mtime check).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q domain store activities workflows app api cli starter.py worker.py

# Message catalogues (docs/LANGUAGES.md): the .po files are in the repository, the .mo files are
# compiled here (and in memory on first use when missing or older than their .po).
catalogues: $(STAMP)
	$(BIN)/pybabel compile --domain messages --directory translations --statistics

# After changing words: extract the keys the code and templates use, check them against the
# English catalogue (the source wording), bring every language's .po up to date with it (new keys
# arrive empty for the translator), and compile.
messages: $(STAMP)
	$(BIN)/pybabel extract --mapping-file babel.cfg --keyword t --no-location --omit-header --output-file translations/used.pot api app activities cli templates
	$(BIN)/python -m activities.catalogue template translations/used.pot translations/messages.pot
	$(BIN)/pybabel update --domain messages --input-file translations/messages.pot --output-dir translations --no-fuzzy-matching --ignore-obsolete
	$(MAKE) catalogues

$(PDF_FONTS):
	@echo "$(PDF_FONTS) is missing: installing Pango and Debian's fonts with apt (for PDF letters)"
	-$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-zenhei fonts-dejavu-core

$(CHROMIUM):
	@echo "$(CHROMIUM) is missing: installing Debian's chromium with apt (browser tests skip without it)"
	-$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python starter.py up --demo

up: install
	$(BIN)/python starter.py up

web: install
	$(BIN)/python starter.py web

# Three processes, one test file each at a time (module fixtures stay in one process): most
# tests wait on servers, timers and subprocesses, so two cores keep three busy. On 2026-12-07,
# on a clean clone with nothing else running, the same suite took 15.5 min with three against
# 19.9 with two (1.6 cores used instead of 1.1); on 2026-12-06 three had gained little
# (20.0 and 21.7 against 22.5), before the acceptance modules' waits grew.
TEST_WORKERS ?= 3
# Files that run on a Temporal server are handed out first (tests/conftest.py).
# The watchdog fault jams a worker's CPU on purpose: it runs alone afterwards, so the other
# process's tests are not starved into Temporal's 2-second deadlock detector.
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--ignore=tests/faults/test_watchdog.py
	$(BIN)/python -m pytest tests/faults/test_watchdog.py

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check --select F,E9 domain store activities workflows app api cli tests worker.py starter.py

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis

# Fault injection, full scenarios (200 cases each, ~20-30 min on 2 cores): prints the table
# and writes it into docs/RELIABILITY.md. `make test` runs the reduced scenarios, and fuzzes
# the API once per phase; here the fuzzing goes on with new data for five minutes.
faults: install
	COLLECTIONS_FAULTS=full $(BIN)/python -m pytest tests/faults -q -p no:cacheprovider
	COLLECTIONS_FUZZ_SECONDS=300 $(BIN)/python -m pytest tests/web/test_api_fuzz.py -q -p no:cacheprovider

# Re-record the histories the replay test replays (only on purpose: see docs/UPGRADES.md).
histories: install
	$(BIN)/python -m tests.histories.record

# Known vulnerabilities in the installed dependencies (needs the network to reach PyPI's advisory data).
audit: install
	$(BIN)/pip-audit --progress-spinner off --skip-editable

# Benchmarks (docs/PERFORMANCE.md): a table, and bench/results.json with every figure's
# baseline and ratio measured in the same run. Full: under 20 minutes; quick: under 3.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python -m bench --quick $(BENCH_ARGS)
