# Lethe: `make run` (dev server + outbox worker), `make test`, `make lint`, `make bench`.
# Needs only Python 3.11+ on PATH; everything else comes from requirements-dev.txt (the runtime's
# requirements.txt plus the tools, every package pinned with its hashes) into .venv.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
FLASK := $(BIN)/flask --app app
HOST ?= 127.0.0.1
PORT ?= 5000
# The demo's webhook receiver (demo/receiver.py): the brand and a disclosure-list consumer.
RECEIVER_PORT ?= 5001
RECEIVER_URL := http://127.0.0.1:$(RECEIVER_PORT)
PYTEST_ARGS ?=
BENCH_ARGS ?=
# `make run` serves with gunicorn as production does (gunicorn.conf.py: threads, preload_app),
# not Flask's development server: the embedded SQLite default takes concurrent clients (one
# writer at a time, BEGIN IMMEDIATE and a busy timeout: storage/db.py) without an error.
# The outbox worker (emails, erasures, webhooks, sweeps) is forked by gunicorn from the loaded
# app (LETHE_JOB_WORKERS, gunicorn.conf.py), sharing its memory, and stops with it.
RUN_WORKERS ?= 1
RUN_THREADS ?= 16
RUN_JOB_WORKERS ?= 1
# make bench-dsr: PostgreSQL server where the benchmark makes its own two databases.
BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: help install run test lint bench bench-dsr lock messages translations

# The catalogues (translations/<language>/LC_MESSAGES/messages.po, in the repository) compile
# to .mo files, which are not: every target that runs Lethe builds them when a .po changed.
PO := $(wildcard translations/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

help:
	@echo "make run    gunicorn on http://$(HOST):$(PORT) with its outbox worker + demo webhook receiver (demo data loaded)"
	@echo "make test   the test suite, one pytest-xdist worker per CPU (PYTEST_ARGS='-k access' to pass options to pytest, '-n 0' for one process)"
	@echo "make lint   ruff + import-linter contracts"
	@echo "make messages      extract the words of public pages and emails into translations/messages.pot, update each language's .po"
	@echo "make translations  compile the .po catalogues (make run / make test do it when needed)"
	@echo "make lock   compile requirements.in / requirements-dev.in into the hashed lock files"
	@echo "make bench  scripts/bench_access.py, bench_erasure.py, bench_dashboard.py, bench_incident.py (BENCH_ARGS='--records 1000')"
	@echo "make bench-dsr  the rights-request workload against gunicorn + workers on SQLite and PostgreSQL (rate, p50/p99, memory, start-up)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a lock file is newer than the stamp. --require-hashes: a package whose
# bytes differ from the ones locked is refused, whatever index served it.
$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements-dev.txt

	@touch $@

# axe-core for the accessibility tests (package.json): `npm ci` again only when the lock file
# changed. Without npm this does not fail: those tests skip then (CI installs npm, never skips).
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: the axe-core accessibility tests will skip (apt-get install npm)"; \
	fi

install: $(STAMP) $(NODE_STAMP) $(MO)

# Extract every marked string (babel.cfg says where) and merge it into each language's
# catalogue; new entries arrive empty, changed ones fuzzy: translate them, then make test
# (tests/test_translations.py fails while one is missing).
messages: $(STAMP)
	PYTHONPATH=. $(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
		--project Lethe -k _l -k lazy_gettext -k N_ -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations \
		--ignore-obsolete

translations: $(MO)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@

# Development only: the demo's receiver listens on 127.0.0.1, which Lethe refuses to call unless
# private targets are allowed (rights/recipients/outbound_http.py). Set for this target alone,
# for the demo load, the worker and the server; never in a deployment's configuration.
run: export LETHE_WEBHOOK_ALLOW_PRIVATE_TARGETS = true
run: $(STAMP) $(MO)
	$(FLASK) db upgrade
	$(FLASK) demo load --receiver $(RECEIVER_URL)
	@echo
	@echo "  Lethe on http://$(HOST):$(PORT)/   (Ctrl-C stops the server, the worker and the receiver)"
	@echo "  Emails (MAIL_BACKEND=file) are written as .eml files to instance/mail/"
	@echo "  Webhooks to the demo's brand and list consumer: receiver on $(RECEIVER_URL)/hooks/"
	@echo "  API key for the platform:  $(FLASK) apikeys create my-service --scopes '*'"
	@echo "  Officers' dashboard on http://$(HOST):$(PORT)/dashboard/ (demo sign-ins: see README)"
	@echo
	@trap 'kill $$server $$receiver 2>/dev/null; wait $$server $$receiver 2>/dev/null' EXIT; \
	trap 'exit 0' INT TERM; \
	$(BIN)/python -m demo.receiver --port $(RECEIVER_PORT) --lethe-url http://127.0.0.1:$(PORT) & receiver=$$!; \
	LETHE_BIND=$(HOST):$(PORT) LETHE_WORKERS=$(RUN_WORKERS) LETHE_THREADS=$(RUN_THREADS) \
	LETHE_JOB_WORKERS=$(RUN_JOB_WORKERS) \
		$(BIN)/gunicorn --config gunicorn.conf.py 'app:create_app()' & server=$$!; \
	wait $$server

test: $(STAMP) $(NODE_STAMP) $(MO)
	$(BIN)/pytest $(PYTEST_ARGS)

# After editing requirements.in or requirements-dev.in: every transitive package pinned, with
# the hashes of every file PyPI has for it (any platform), for Python 3.11 and up.
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in --generate-hashes --universal --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o requirements.txt
	$(BIN)/uv pip compile requirements.in requirements-dev.in -c requirements.txt --generate-hashes --universal \
		--python-version 3.11 --custom-compile-command "make lock" --quiet -o requirements-dev.txt

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Issue 17's table, redone: access and erasure requests end to end against Lethe as deployed
# (gunicorn + `flask worker`), on the embedded SQLite default and on PostgreSQL
# (BENCH_POSTGRES_URL; the script makes databases lethe_bench_dsr and lethe_bench_dsr_keys).
bench-dsr: $(STAMP) $(MO)
	$(BIN)/python scripts/bench_dsr.py --postgres-url $(BENCH_POSTGRES_URL) \
		--sqlite-workers $(RUN_WORKERS) --sqlite-threads $(RUN_THREADS) $(BENCH_ARGS)

bench: $(STAMP)
	$(BIN)/python scripts/bench_access.py $(BENCH_ARGS)
	$(BIN)/python scripts/bench_erasure.py $(BENCH_ARGS)
	$(BIN)/python scripts/bench_dashboard.py
	$(BIN)/python scripts/bench_incident.py
	$(BIN)/python scripts/bench_webhooks.py
	$(BIN)/python scripts/bench_webhooks.py --events 400 --latency 20
	$(BIN)/python scripts/bench_retention.py --rows 100000
