# Framewise: `make run` serves the embedded system; `make test` runs the suite. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv run test lint fmt bench chaos worker migrations-check check-deploy clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt requirements/production.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt -r requirements/production.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

test: venv
	mkdir -p var
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: venv
	$(PY) manage.py makemigrations --check --dry-run

bench: venv
	mkdir -p bench/results
	$(PY) bench/bench_vision.py --mb 100
	$(PY) bench/bench_scoring.py
	$(PY) bench/bench_upload.py --mb 100
	$(PY) bench/bench_sessions.py
	$(PY) bench/bench_dashboard.py
	$(PY) bench/bench_http.py --side-by-side --workers 2

# Reliability/security scenarios with real processes (tests/reliability); CHAOS_SCALE=10 for nightly sizes.
chaos: venv
	mkdir -p var bench/results
	$(BIN)/pytest -m chaos tests/reliability $(PYTEST_ARGS)
	$(PY) bench/chaos_report.py

worker: venv
	$(PY) manage.py rundramatiq --processes 1 --threads 2

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
