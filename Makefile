# smartgate — one command surface: make run | test | lint | bench | loadtest | sim
# Works on a fresh Debian/Ubuntu machine with Python 3.11+: every target sets up what it needs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export SMARTGATE_VAR_DIR ?= var

.PHONY: help setup lock system-deps run run-distributed run-pair test lint format bench loadtest sim migrate clean images \
	compose-test messages

help:
	@echo "make run       set up, migrate, seed demo keys and start the platform on http://$(HOST):$(PORT) (docs at /docs)"
	@echo "make run-distributed  one process per service + the gateway, on local PostgreSQL and NATS (see docs/deployment.md)"
	@echo "make run-pair  both sides (Kim Thành vn-kimthanh on :8000, Hekou cn-hekou on :8001), each witnessing the other's ledger"
	@echo "make test      set up, lint, and run the whole test suite (PostgreSQL too when SMARTGATE_TEST_DATABASE_URL is set)"
	@echo "make lint      ruff format --check, ruff check, mypy, and the import contracts (lint-imports)"
	@echo "make bench     run the benchmarks under benchmarks/"
	@echo "make loadtest  a bounded locust run against a local platform"
	@echo "make sim       run the baseline gate scenario"
	@echo "make images   build every image compose.yaml needs from Debian packages (no registry needed; cached)"
	@echo "make compose-test  run compose.yaml for real: up, health checks, end-to-end and fault tests, down"
	@echo "make messages  re-extract the translatable texts into the .pot files and merge them into each .po (docs/i18n.md)"
	@echo "make lock      re-resolve requirements.lock from pyproject.toml (then run make test and commit both)"

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "smartgate needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The versions CI tested (requirements.lock; `make lock` regenerates it), exactly: --no-deps, because
	@# rapidocr-onnxruntime asks for opencv-python (GUI build) and the lock holds only the headless wheel.
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

system-deps:
	@scripts/system-deps.sh

lock:
	scripts/lock.sh

setup: system-deps $(STAMP)

migrate: setup
	$(BIN)/smartgate migrate

run: setup
	$(BIN)/smartgate migrate
	$(BIN)/smartgate demo seed
	$(BIN)/smartgate serve --host $(HOST) --port $(PORT)

run-distributed: setup
	scripts/run-distributed.sh

run-pair: setup
	scripts/run-pair.sh

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy ledger ocr simulator riskmodel services api
	$(BIN)/lint-imports

# The catalogs (docs/i18n.md): problems (services/kernel/locale) and console (api/console/locale). New or changed
# texts land in each .po with an empty msgstr, to translate; tests/services/kernel/test_i18n.py fails until they are.
messages: setup
	$(BIN)/pybabel extract -F services/kernel/locale/babel.cfg --no-location --sort-output --omit-header \
		-o services/kernel/locale/problems.pot services api
	$(BIN)/pybabel extract -F api/console/locale/babel.cfg --no-location --sort-output --omit-header \
		-o api/console/locale/console.pot api/console
	$(BIN)/pybabel update -D problems -i services/kernel/locale/problems.pot -d services/kernel/locale \
		--no-fuzzy-matching --ignore-obsolete -w 120
	$(BIN)/pybabel update -D console -i api/console/locale/console.pot -d api/console/locale \
		--no-fuzzy-matching --ignore-obsolete -w 120

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint
	@BROWSER=1 NGINX=1 scripts/system-deps.sh
	$(BIN)/pytest -q -n 2 --dist loadgroup

bench: setup
	@FONTS=1 NGINX=1 scripts/system-deps.sh
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

loadtest: setup
	$(BIN)/python loadtests/run.py

sim: setup
	$(BIN)/smartgate sim run baseline-2025 --replications 30 --days 30 --out out/baseline-2025

images:
	scripts/images.sh

compose-test: setup
	scripts/compose-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache out
