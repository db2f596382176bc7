# The portal's commands. `make run` and `make test` work on a fresh machine
# with only Python 3.11: each creates .venv and installs what it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_CONCURRENCY ?= 4
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint format bench serve worker migrate demo system-deps clean

## make: installs the requirements this release pins into .venv (after a git pull, before make migrate)
.DEFAULT_GOAL := install
install: $(VENV)/.runtime

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --no-input

demo: migrate
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py ensure_admin --host $(HOST) --port $(PORT)

## make run: the portal with demo content on http://127.0.0.1:8000
# collectstatic fills STATIC_ROOT, which WhiteNoise serves (and warns about when missing).
run: demo
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

# A setting as the portal reads it, from the environment or .env (a value the
# settings refuse stops here, with their message).
setting = $(BIN)/python -c 'import os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings"); \
	from django.conf import settings; print(settings.$(1))'

## make serve: gunicorn with several workers (run `make migrate` first, once per release)
# Its --timeout is PORTAL_WEB_TIMEOUT_SECONDS, which the settings check the
# longest wait of a rendition on demand against.
serve: $(VENV)/.runtime
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	timeout=$$($(call setting,WEB_TIMEOUT_SECONDS)) && exec $(BIN)/gunicorn portal.wsgi:application \
		--bind $(HOST):$(PORT) --workers $(WEB_CONCURRENCY) --access-logfile - --timeout "$$timeout" \
		--max-requests 2000 --max-requests-jitter 200

## make worker: a Celery worker with the beat schedule (needs CELERY_BROKER_URL);
## `make worker BEAT=no` on every other worker host, as one beat runs the schedule
BEAT ?= yes
worker: $(VENV)/.runtime
	$(BIN)/celery -A portal worker $(if $(filter yes,$(BEAT)),--beat )--loglevel=INFO --concurrency=$${CELERY_CONCURRENCY:-2}

system-deps:
	bash scripts/install-system-deps.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make test: everything, including real servers and the browser
test: $(VENV)/.dev system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: the unit tests only (no servers, no browser)
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not integration and not browser and not slow" $(PYTEST_ARGS)

## make fuzz: the schema fuzzer alone, with new examples each run (FUZZ_EXAMPLES per operation and caller)
.PHONY: fuzz
fuzz: $(VENV)/.dev
	PORTAL_FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} PORTAL_FUZZ_RANDOM=1 $(BIN)/python -m pytest tests/test_schema.py $(PYTEST_ARGS)

## make bench: benchmarks, printing ratios measured side by side
bench: $(VENV)/.dev system-deps
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
