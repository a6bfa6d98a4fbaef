# Convoke: `make run` serves the embedded default, `make test` runs the whole suite.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTHON := .venv/bin/python
PORT ?= 8000
PYTEST_WORKERS ?= 2

.PHONY: install clients run test lint format stack-check bench-callback bench-render bench-push bench-hostile bench-embedded clean

install: ## Install uv when missing, then the locked dependencies into .venv
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install ## Serve on 127.0.0.1:$(PORT) with SQLite, a Celery worker and beat, mail to var/mail/
	PORT=$(PORT) $(PYTHON) -m calendars.devserver

clients: ## ical.js (tests/clients' lock) for the real clients' parser tests, when npm is there
	@if command -v npm >/dev/null 2>&1 && \
	  [ tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]; then \
	  npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error || \
	  echo "ical.js could not be installed: its parser tests will be skipped"; fi

test: install clients ## The whole test suite
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: install ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

stack-check: ## Boot compose.yml for real: images, docker compose up, https callback, email, admin CSS (root)
	python3 deploy/stack-check/stack_check.py

bench-callback: install ## The delivery engine end to end: acks/s and p99, delivered/s, CPU per invitation per tier, slow relay, RSS (BENCH_ARGS="--servers --memory-minutes 10")
	$(PYTHON) bench/callback.py $(BENCH_ARGS)

bench-render: install ## Emails built per second per core, sabre-sized and corpus-wide, and the slowest files (BENCH_ARGS="--rounds 3")
	$(PYTHON) bench/render.py $(BENCH_ARGS)

bench-embedded: install ## make run under steady callbacks for an hour: crashes, lost emails (BENCH_ARGS="--minutes 60 --rate 2")
	$(PYTHON) bench/embedded.py $(BENCH_ARGS)

bench-push: install ## Webhook acks/s and p99, Google list calls per 1,000 notifications, renewal of 10,000 channels (BENCH_ARGS="--renew-channels 2000")
	$(PYTHON) bench/push.py $(BENCH_ARGS)

bench-hostile: install ## Worst callback latency and render time over the corpus, the hostile corpus and mutations (BENCH_ARGS="--mutations 300")
	$(PYTHON) bench/hostile.py $(BENCH_ARGS)

clean:
	rm -rf var/celery var/mail .pytest_cache
